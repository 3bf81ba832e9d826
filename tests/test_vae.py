"""The VAE family: the formulas (reparameterisation, KL, likelihoods, IWAE) and the models."""
import math

import numpy as np
import pytest

import minigen as mg
from minigen.models.vae import (VAE, ConditionalVAE, ConvVAE, bernoulli_log_prob, bernoulli_nll,
                                build_vae, gaussian_log_prob, kl_standard_normal, one_hot, reparameterize,
                                standard_normal_log_prob)


def f64(a, requires_grad=True):
    return mg.tensor(np.asarray(a), dtype="float64", requires_grad=requires_grad)


# ------------------------------------------------------------------ reparameterisation
def test_reparameterize_is_mu_plus_sigma_eps():
    rng = np.random.default_rng(1)
    mu, logvar, eps = (rng.standard_normal((4, 3)).astype(np.float32) for _ in range(3))
    z = reparameterize(mg.tensor(mu), mg.tensor(logvar), mg.tensor(eps))
    np.testing.assert_allclose(z.numpy(), mu + np.exp(0.5 * logvar) * eps, rtol=1e-6)


def test_reparameterize_gradcheck_with_fixed_eps():
    rng = np.random.default_rng(2)
    mu, logvar = f64(rng.standard_normal((3, 4))), f64(rng.standard_normal((3, 4)))
    eps = f64(rng.standard_normal((3, 4)), requires_grad=False)
    f = lambda m, lv: reparameterize(m, lv, eps)  # noqa: E731
    assert mg.gradcheck(f, [mu, logvar], atol=1e-7, rtol=1e-6)
    assert mg.gradgradcheck(f, [mu, logvar], atol=1e-7, rtol=1e-6)
    # the derivatives themselves: dz/dmu = 1, dz/dlogvar = sigma * eps / 2
    reparameterize(mu, logvar, eps).sum().backward()
    np.testing.assert_allclose(mu.grad.numpy(), 1.0)
    np.testing.assert_allclose(logvar.grad.numpy(),
                               0.5 * np.exp(0.5 * logvar.numpy()) * eps.numpy(), rtol=1e-12)


def test_reparameterize_draws_from_the_posterior():
    mg.manual_seed(3)
    mu = mg.full((20000, 2), 1.5)
    logvar = mg.tensor(np.tile(np.log([0.25, 4.0]).astype(np.float32), (20000, 1)))
    z = reparameterize(mu, logvar).numpy()
    np.testing.assert_allclose(z.mean(axis=0), 1.5, atol=0.05)
    np.testing.assert_allclose(z.std(axis=0), [0.5, 2.0], rtol=0.03)


# ------------------------------------------------------------------ KL and likelihoods
def test_kl_matches_torch_and_is_zero_at_the_prior():
    torch = pytest.importorskip("torch", reason="torch not installed: PyTorch parity not checked")
    rng = np.random.default_rng(4)
    mu, logvar = rng.standard_normal((5, 6)), rng.standard_normal((5, 6))
    ours = kl_standard_normal(f64(mu, False), f64(logvar, False)).numpy()
    q = torch.distributions.Normal(torch.tensor(mu), torch.tensor(np.exp(0.5 * logvar)))
    p = torch.distributions.Normal(torch.zeros(5, 6, dtype=torch.float64), 1.0)
    ref = torch.distributions.kl_divergence(q, p).sum(-1).numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)
    assert kl_standard_normal(mg.zeros(2, 3), mg.zeros(2, 3)).numpy().tolist() == [0.0, 0.0]


def test_kl_gradcheck():
    rng = np.random.default_rng(5)
    assert mg.gradcheck(kl_standard_normal, [f64(rng.standard_normal((3, 4))),
                                             f64(rng.standard_normal((3, 4)))],
                        atol=1e-7, rtol=1e-6)


def test_mean_kl_is_the_batch_mean_of_kl_as_one_op(monkeypatch):
    """MeanKL against its reference kl_standard_normal(...).mean() on (N, latent) and on a
    leading sample dim (m, N, latent); its gradients and their gradients (create_graph);
    a planted error in its plain backward fails gradcheck."""
    from minigen.models import vae
    rng = np.random.default_rng(6)
    for shape in ((4, 3), (2, 4, 3)):
        mu, logvar = f64(rng.standard_normal(shape)), f64(rng.standard_normal(shape))
        ref = kl_standard_normal(mu, logvar).mean()
        kl = vae.MeanKL.apply(mu, logvar)
        assert kl.dtype == np.float64 and kl.shape == ()
        np.testing.assert_allclose(kl.item(), ref.item(), rtol=1e-14)
        assert mg.gradcheck(vae.MeanKL.apply, [mu, logvar], atol=1e-7, rtol=1e-6)
        assert mg.gradgradcheck(vae.MeanKL.apply, [mu, logvar], atol=1e-7, rtol=1e-6)
    kl32 = vae.MeanKL.apply(mg.zeros(2, 3), mg.zeros(2, 3))
    assert kl32.item() == 0.0 and kl32.dtype == np.float32  # the prior against itself
    monkeypatch.setattr(vae.MeanKL, "backward", lambda self, g: (
        mg.tensor(self.inputs[0].data * g.data / self.n),
        mg.tensor(self.var * g.data / (2 * self.n))))  # forgot the -1 of dKL/dlogvar
    assert not mg.gradcheck(vae.MeanKL.apply, [mu, logvar], raise_exception=False)


def test_bernoulli_log_prob_matches_torch_and_stays_finite():
    torch = pytest.importorskip("torch", reason="torch not installed: PyTorch parity not checked")
    rng = np.random.default_rng(6)
    logits = rng.standard_normal((4, 10)) * 5
    logits[0, :3] = [-200.0, 200.0, 80.0]  # sigmoid saturates: log(0) must never appear
    x = rng.random((4, 10))
    ours = bernoulli_log_prob(f64(logits, False), f64(x, False)).numpy()
    ref = -torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor(logits), torch.tensor(x), reduction="none").sum(-1).numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-12)
    assert mg.gradcheck(lambda lg: bernoulli_log_prob(lg, f64(x, False)),
                        [f64(rng.standard_normal((4, 10)))], atol=1e-7, rtol=1e-6)


def test_bernoulli_nll_is_the_batch_mean_of_minus_log_prob():
    """The fused reconstruction term (one BCE summed over the batch, / N) is the mean of the
    per-example -log p(x | z), in value and in gradient; a sum without the / N is caught."""
    rng = np.random.default_rng(7)
    logits, x = rng.standard_normal((5, 12)) * 4, rng.random((5, 12))
    per_example = -bernoulli_log_prob(f64(logits, False), f64(x, False)).numpy()
    fused = bernoulli_nll(f64(logits, False), f64(x, False)).item()
    assert fused == pytest.approx(per_example.mean(), rel=1e-14)
    assert fused != pytest.approx(per_example.sum(), rel=1e-3)  # the planted error: no / N
    assert mg.gradcheck(lambda lg: bernoulli_nll(lg, f64(x, False)), [f64(logits)],
                        atol=1e-7, rtol=1e-6)
    g_fused, = mg.grad(bernoulli_nll(lg := f64(logits), f64(x, False)), lg)
    g_mean, = mg.grad(-bernoulli_log_prob(lg, f64(x, False)).mean(), lg)
    np.testing.assert_allclose(g_fused.numpy(), g_mean.numpy(), rtol=1e-14, atol=0)


def test_gaussian_log_probs_match_torch():
    torch = pytest.importorskip("torch", reason="torch not installed: PyTorch parity not checked")
    rng = np.random.default_rng(7)
    x, mean, logvar = rng.standard_normal((3, 5)), rng.standard_normal((3, 5)), rng.standard_normal(5)
    ours = gaussian_log_prob(f64(x, False), f64(mean, False), f64(logvar, False)).numpy()
    ref = torch.distributions.Normal(torch.tensor(mean), torch.tensor(np.exp(0.5 * logvar))
                                     ).log_prob(torch.tensor(x)).sum(-1).numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-12)
    std = standard_normal_log_prob(f64(x, False)).numpy()
    np.testing.assert_allclose(std, torch.distributions.Normal(0.0, 1.0).log_prob(
        torch.tensor(x)).sum(-1).numpy(), rtol=1e-12)


def test_one_hot_checks_its_labels():
    like = mg.zeros(1)
    np.testing.assert_array_equal(one_hot(np.array([2, 0]), 3, like).numpy(),
                                  [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(ValueError, match="0..2"):
        one_hot(np.array([3]), 3, like)


# ------------------------------------------------------------------ the ELBO
def _data(n=64, side=4, seed=0):
    """Tiny structured images: a bright bar in one of ``side`` rows, plus a little noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, side, n)
    x = np.full((n, side, side), 0.05, dtype=np.float32)
    x[np.arange(n), y, :] = 0.95
    x += rng.uniform(0, 0.05, x.shape).astype(np.float32)
    return x.reshape(n, -1), y


def test_elbo_parts_are_the_formulas():
    x, _ = _data(8)
    model = VAE(16, hidden=8, latent=3)
    eps = mg.randn(8, 3)
    parts = model.elbo_parts(mg.tensor(x), eps=eps, beta=2.5)
    mu, logvar = model.encode(mg.tensor(x))
    logits = model.decode(reparameterize(mu, logvar, eps)).numpy().astype(np.float64)
    recon = -(x * logits - np.logaddexp(0, logits)).sum(1).mean()
    m, lv = mu.numpy().astype(np.float64), logvar.numpy().astype(np.float64)
    kl = (0.5 * (m ** 2 + np.exp(lv) - 1 - lv)).sum(1).mean()
    np.testing.assert_allclose(parts["recon"].item(), recon, rtol=1e-5)
    np.testing.assert_allclose(parts["kl"].item(), kl, rtol=1e-5)
    np.testing.assert_allclose(parts["loss"].item(), recon + 2.5 * kl, rtol=1e-5)


def _fit(model, x, y=None, steps=150, lr=1e-2, beta=1.0):
    from minigen.optim import Adam
    opt = Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        parts = model.elbo_parts(mg.tensor(x), y, beta=beta)
        opt.zero_grad()
        parts["loss"].backward()
        opt.step()
        losses.append(parts["loss"].item())
    return losses


def test_training_lowers_the_negative_elbo():
    x, _ = _data(64)
    model = VAE(16, hidden=32, latent=2)
    eps = mg.randn(64, 2)
    before = model.elbo_parts(mg.tensor(x), eps=eps)["loss"].item()
    _fit(model, x)
    after = model.elbo_parts(mg.tensor(x), eps=eps)["loss"].item()
    assert after < 0.75 * before, (before, after)


def test_gaussian_decoder_learned_and_fixed_variance():
    x, _ = _data(64)
    learned = VAE(16, hidden=16, latent=2, likelihood="gaussian")
    assert "dec_logvar" in dict(learned.named_parameters())
    losses = _fit(learned, x, steps=100)
    assert losses[-1] < losses[0] - 5  # the variance shrinks: log-likelihood of the data rises
    assert learned.dec_logvar.numpy().mean() < -0.5
    fixed = VAE(16, hidden=16, latent=2, likelihood="gaussian", sigma=0.1)
    assert "dec_logvar" not in dict(fixed.named_parameters())
    out = fixed.decode(mg.zeros(1, 2))
    expect = gaussian_log_prob(mg.tensor(x[:1]), out, mg.full((16,), 2 * math.log(0.1))).item()
    np.testing.assert_allclose(fixed.log_likelihood(mg.tensor(x[:1]), out).item(), expect, rtol=1e-6)
    with pytest.raises(ValueError, match="likelihood"):
        VAE(16, likelihood="poisson")


def test_beta_weighs_the_kl():
    x, _ = _data(64)
    mg.manual_seed(0)
    plain = VAE(16, hidden=32, latent=2)
    _fit(plain, x, steps=100)
    mg.manual_seed(0)
    heavy = VAE(16, hidden=32, latent=2)
    _fit(heavy, x, steps=100, beta=8.0)
    eps = mg.randn(64, 2)
    kl_plain = plain.elbo_parts(mg.tensor(x), eps=eps)["kl"].item()
    kl_heavy = heavy.elbo_parts(mg.tensor(x), eps=eps)["kl"].item()
    assert kl_heavy < 0.5 * kl_plain, (kl_plain, kl_heavy)


# ------------------------------------------------------------------ IWAE
def test_iwae_converges_to_the_exact_log_likelihood():
    """1-D latent, 2 pixels: log p(x) = log integral N(z; 0, 1) p(x | z) dz by quadrature."""
    model = VAE(2, hidden=4, latent=1).double()
    with mg.no_grad():
        model.fc4.weight.data *= 6.0  # a decoder that really depends on z
    x = mg.tensor(np.array([[1.0, 0.0], [0.0, 1.0], [0.8, 0.9]]), dtype="float64")
    z = np.linspace(-12, 12, 24001)[:, None]
    logits = model.decode(mg.tensor(z, dtype="float64")).numpy()
    exact = []
    for row in x.numpy():
        log_px_z = (row * logits - np.logaddexp(0, logits)).sum(1)
        log_joint = log_px_z - 0.5 * (math.log(2 * math.pi) + z[:, 0] ** 2)
        exact.append(np.log(np.trapezoid(np.exp(log_joint), z[:, 0])))
    mg.manual_seed(1)
    l1 = np.mean([model.iwae_bound(x, k=1).numpy() for _ in range(400)], axis=0)
    l_big = model.iwae_bound(x, k=20000).numpy()
    np.testing.assert_allclose(l_big, exact, atol=0.02)
    assert np.all(l1 < np.asarray(exact) + 0.01)   # L_1 (the ELBO) lies below log p(x)
    assert np.all(l1 <= l_big + 0.01)


def test_iwae_with_one_sample_is_the_single_sample_elbo():
    x, _ = _data(5)
    model = VAE(16, hidden=8, latent=3)
    eps = mg.randn(1, 5, 3)
    mu, logvar = model.encode(mg.tensor(x))
    z = reparameterize(mu, logvar, eps[0])
    expect = (bernoulli_log_prob(model.decode(z), mg.tensor(x)) + standard_normal_log_prob(z)
              - gaussian_log_prob(z, mu, logvar)).numpy()
    got = model.iwae_bound(mg.tensor(x), k=1, eps=eps).numpy()
    np.testing.assert_allclose(got, expect, rtol=1e-5)
    # chunking over samples must not change the estimate
    eps = mg.randn(7, 5, 3)
    np.testing.assert_allclose(model.iwae_bound(mg.tensor(x), k=7, eps=eps, chunk=5).numpy(),
                               model.iwae_bound(mg.tensor(x), k=7, eps=eps).numpy(), rtol=1e-6)


# ------------------------------------------------------------------ conditional and conv
def test_conditional_vae_uses_the_label():
    x, y = _data(64)
    model = ConditionalVAE(16, hidden=16, latent=2, num_classes=4)
    assert model.fc1.weight.shape[1] == 16 + 4 and model.fc3.weight.shape[1] == 2 + 4
    z = mg.zeros(4, 2)
    images = model.sample(y=np.arange(4), z=z).numpy()
    assert not np.allclose(images[0], images[1])  # same z, other class, other image
    with pytest.raises(ValueError, match="needs labels"):
        model.encode(mg.tensor(x))
    losses = _fit(model, x, y, steps=60)
    assert losses[-1] < losses[0]


def test_conv_vae_shapes_and_gradients():
    model = ConvVAE(image_shape=(1, 8, 8), hidden=16, latent=3, channels=(4, 8))
    x = mg.rand(5, 64)
    parts = model.elbo_parts(x)
    assert parts["loss"].shape == () and np.isfinite(parts["loss"].item())
    parts["loss"].backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, name
    assert model.sample(6).shape == (6, 64)
    with pytest.raises(ValueError, match="divisible by 4"):
        ConvVAE(image_shape=(1, 10, 10))


def test_build_vae_from_config():
    cfg = {"conv": False, "image_shape": [1, 4, 4], "hidden": 8, "latent": 2,
           "num_classes": 3, "likelihood": "bernoulli", "sigma": None}
    model = build_vae(cfg)
    assert isinstance(model, VAE) and model.num_classes == 3 and model.image_shape == (1, 4, 4)
    assert isinstance(build_vae(dict(cfg, conv=True, image_shape=[1, 8, 8])), ConvVAE)
