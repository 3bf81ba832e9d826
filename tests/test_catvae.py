"""The categorical VAE: the temperature schedule and the KL to the uniform prior exactly, the
relaxed loss under gradcheck with the Gumbel noise fixed, the discrete test ELBO against
log p(x) computed by enumerating every code, three Adam steps equal to a PyTorch twin (soft
and straight-through), and the Gumbel noise that must never be infinite."""
import math

import numpy as np
import pytest

import minigen as mg
from minigen.models.catvae import CategoricalVAE, kl_categorical_uniform, temperature
from minigen.ops.random import standard_gumbel
from minigen.optim import Adam


def leaf(a):
    return mg.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def gumbel(shape, seed):
    return standard_gumbel(shape, mg.float64, generator=np.random.default_rng(seed))


def test_temperature_schedule():
    assert temperature(0) == 1.0
    assert temperature(499) == 1.0                             # changes every 500 steps
    assert temperature(500) == pytest.approx(math.exp(-0.05))
    assert temperature(1999, rate=1e-4, every=1000) == pytest.approx(math.exp(-0.1))
    assert temperature(10 ** 6) == 0.5                         # floored at tau_min
    assert temperature(3000, tau0=2.0, rate=1e-4, tau_min=0.1) == pytest.approx(2 * math.exp(-0.3))


def test_kl_to_the_uniform_prior_exact():
    logits = np.log(np.array([[[0.5, 0.25, 0.25], [1 / 3, 1 / 3, 1 / 3]],
                              [[0.8, 0.1, 0.1], [0.6, 0.3, 0.1]]]))
    q = np.exp(logits)
    by_hand = (q * np.log(q * 3)).sum(axis=(1, 2))
    got = kl_categorical_uniform(mg.tensor(logits + 5.0)).numpy()     # logits, not log q
    np.testing.assert_allclose(got, by_hand, rtol=1e-13)
    assert got[0] == pytest.approx(0.5 * math.log(1.5) + 0.5 * math.log(0.75))  # 2nd var: 0
    sure = np.full((1, 2, 3), -1e3)
    sure[..., 0] = 0.0                                                # q one-hot: KL = N log K
    assert kl_categorical_uniform(mg.tensor(sure)).item() == pytest.approx(2 * math.log(3))


def test_kl_gradients():
    logits = leaf(np.random.default_rng(0).standard_normal((2, 3, 4)))
    assert mg.gradcheck(kl_categorical_uniform, [logits])
    assert mg.gradgradcheck(kl_categorical_uniform, [logits])


def _tiny(seed=0, variables=2, classes=3, features=5):
    mg.manual_seed(seed)
    return CategoricalVAE(features, (6, 4), variables, classes).double()


def _relaxed_loss(model, x, g, hard, tau=0.7):
    """The training loss as a function of the encoder's logits (noise fixed)."""
    import minigen.nn.functional as F
    from minigen.models.vae import bernoulli_log_prob

    def loss(logits):
        y = F.gumbel_softmax(logits, tau=tau, hard=hard, noise=g)
        recon = -bernoulli_log_prob(model.decode(y), x).mean()
        return recon + kl_categorical_uniform(logits).mean()
    return loss


def test_relaxed_loss_gradients_with_the_noise_fixed():
    """The training loss with the relaxed sample, exact KL, in float64: first and second
    derivatives with respect to the encoder's logits; elbo_parts is that loss."""
    model = _tiny()
    x = mg.tensor(np.random.default_rng(1).random((2, 5)))
    g = gumbel((2, 2, 3), seed=2)
    loss = _relaxed_loss(model, x, g, hard=False)
    logits = leaf(np.random.default_rng(3).standard_normal((2, 2, 3)))
    assert mg.gradcheck(loss, [logits])
    assert mg.gradgradcheck(loss, [logits])
    parts = model.elbo_parts(x, 0.7, noise=g)
    assert parts["loss"].item() == pytest.approx(loss(model.encode(x)).item(), rel=1e-13)
    assert parts["loss"].item() == pytest.approx(parts["recon"].item() + parts["kl"].item())


def test_straight_through_gradient_is_the_soft_samples_at_the_hard_point():
    """hard=True: the decoder sees one-hot codes, and the gradient reaching the logits is
    d y_soft / d logits applied to the decoder's gradient at the one-hot point (not the
    gradient of the piecewise-constant forward, which gradcheck would see as 0)."""
    import minigen.nn.functional as F
    model = _tiny()
    x = mg.tensor(np.random.default_rng(1).random((2, 5)))
    g = gumbel((2, 2, 3), seed=2)
    logits = leaf(np.random.default_rng(3).standard_normal((2, 2, 3)))
    _relaxed_loss(model, x, g, hard=True)(logits).backward()
    # by hand: the decoder's gradient at y_hard, pulled back through the soft sample
    y_hard = leaf(F.gumbel_softmax(logits.detach(), tau=0.7, hard=True, noise=g).numpy())
    from minigen.models.vae import bernoulli_log_prob
    (-bernoulli_log_prob(model.decode(y_hard), x).mean()).backward()
    other = leaf(logits.numpy())
    surrogate = (F.gumbel_softmax(other, tau=0.7, noise=g) * y_hard.grad).sum() + \
        kl_categorical_uniform(other).mean()
    surrogate.backward()
    np.testing.assert_allclose(logits.grad.numpy(), other.grad.numpy(), rtol=1e-12, atol=1e-15)
    assert set(np.unique(y_hard.numpy())) == {0.0, 1.0}


def test_discrete_elbo_is_an_unbiased_estimate_of_a_bound_on_log_px():
    """2 variables of 3 classes: 9 codes, so log p(x) and the exact ELBO are sums."""
    model = _tiny(seed=2)
    x = mg.tensor(np.random.default_rng(4).random((1, 5)))
    from minigen.models.vae import bernoulli_log_prob
    with mg.no_grad():
        codes = np.array([np.eye(3)[[a, b]] for a in range(3) for b in range(3)])  # (9, 2, 3)
        log_px_y = bernoulli_log_prob(model.decode(mg.tensor(codes)),
                                      x.broadcast_to(9, 5)).numpy()
        log_q = np.log(model.encode(x).softmax(dim=-1).numpy()[0])            # (2, 3)
    log_q_y = np.array([log_q[0, a] + log_q[1, b] for a in range(3) for b in range(3)])
    log_py = 2 * math.log(1 / 3)
    log_px = np.logaddexp.reduce(log_px_y + log_py)
    exact_elbo = (np.exp(log_q_y) * (log_px_y + log_py - log_q_y)).sum()
    assert exact_elbo <= log_px
    # one exact sample per row, many rows: the mean converges to the exact ELBO
    n = 20000
    xs = x.broadcast_to(n, 5)
    estimates = model.discrete_elbo(xs, noise=gumbel((n, 2, 3), seed=5)).numpy()
    se = estimates.std() / math.sqrt(n)
    assert abs(estimates.mean() - exact_elbo) < 4 * se
    # every estimate is one of the 9 values log p(x|y) - KL(q || p)
    kl = kl_categorical_uniform(model.encode(x)).item()
    assert np.isin(np.round(estimates, 9), np.round(log_px_y - kl, 9)).all()
    # planted: the same estimate with the relaxed sample (tau 1) is off, and the check sees it
    import minigen.nn.functional as F
    with mg.no_grad():
        logits = model.encode(xs)
        y = F.gumbel_softmax(logits, tau=1.0, noise=gumbel((n, 2, 3), seed=5))
        relaxed = (bernoulli_log_prob(model.decode(y), xs) - kl_categorical_uniform(logits)).numpy()
    assert abs(relaxed.mean() - exact_elbo) > 4 * relaxed.std() / math.sqrt(n)


def test_gumbel_noise_is_finite_when_the_exponential_is_zero():
    class Zeros:   # a generator whose exponential draw is exactly 0 (probability ~2^-24 in float32)
        def standard_exponential(self, shape, dtype):
            return np.zeros(shape, dtype)

    g = standard_gumbel((3,), mg.float32, generator=Zeros()).numpy()
    assert np.isfinite(g).all() and g[0] == pytest.approx(-math.log(np.finfo(np.float32).tiny))
    state = mg.get_rng_state()
    standard_gumbel((3,), generator=np.random.default_rng(0))
    assert mg.get_rng_state() == state   # a given generator leaves minigen's stream alone


# ------------------------------------------------------------------ parity with PyTorch
def _torch_twin(torch, model):
    from minigen.models.gan.torch_twin import copy_weights
    nn = torch.nn
    h1, h2 = model.encoder[0].out_features, model.encoder[2].out_features
    code = model.variables * model.classes

    class Twin(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Sequential(nn.Linear(model.in_features, h1), nn.ReLU(),
                                         nn.Linear(h1, h2), nn.ReLU(), nn.Linear(h2, code))
            self.decoder = nn.Sequential(nn.Linear(code, h2), nn.ReLU(), nn.Linear(h2, h1),
                                         nn.ReLU(), nn.Linear(h1, model.in_features))

    twin = Twin().double()
    copy_weights(model, twin)
    return twin


def _torch_loss(torch, twin, x, g, tau, hard, shape):
    F = torch.nn.functional
    logits = twin.encoder(x).reshape(len(x), *shape)
    y = torch.softmax((logits + g) / tau, dim=-1)
    if hard:
        y = F.one_hot(y.argmax(-1), shape[1]).to(y.dtype) - y.detach() + y
    recon = F.binary_cross_entropy_with_logits(twin.decoder(y.reshape(len(x), -1)), x,
                                               reduction="sum") / len(x)
    log_q = torch.log_softmax(logits, -1)
    kl = (log_q.exp() * (log_q + math.log(shape[1]))).sum((1, 2)).mean()
    return recon + kl


@pytest.mark.parametrize("hard", [False, True])
def test_three_adam_steps_equal_the_pytorch_twin(hard):
    torch = pytest.importorskip("torch", reason="torch not installed: PyTorch parity not checked")
    model = _tiny(seed=3, variables=3, classes=4, features=7)
    twin = _torch_twin(torch, model)
    opt, t_opt = Adam(model.parameters(), 1e-3), torch.optim.Adam(twin.parameters(), 1e-3)
    rng = np.random.default_rng(6)
    for step in range(3):
        x = rng.random((5, 7))
        g = gumbel((5, 3, 4), seed=10 + step)
        tau = temperature(step * 500)
        parts = model.elbo_parts(mg.tensor(x), tau, hard, noise=g)
        opt.zero_grad()
        parts["loss"].backward()
        opt.step()
        loss = _torch_loss(torch, twin, torch.from_numpy(x), torch.from_numpy(g.numpy()), tau,
                           hard, (3, 4))
        t_opt.zero_grad()
        loss.backward()
        t_opt.step()
        assert parts["loss"].item() == pytest.approx(loss.item(), rel=1e-12)
    ref = twin.state_dict()
    for name, a in model.state_dict().items():
        b = ref[name].detach().numpy()
        assert np.abs(a - b).max() <= 1e-9 * np.abs(b).max(), name
