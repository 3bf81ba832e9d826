"""VAE-GAN: each loss exactly on tiny inputs and under gradcheck / gradgradcheck, which loss
reaches which network in the training step, and three steps equal to a PyTorch twin in
float64 -- which catches a decoder loss without gamma."""
import math

import numpy as np
import pytest

import minigen as mg
from minigen.models import vaegan
from minigen.models.gan import DCGANDiscriminator
from minigen.models.vae import ConvVAE
from minigen.models.vaegan import (decoder_gan_loss, equilibrium_updates, feature_nll,
                                   gan_value_loss, train_step)
from minigen.optim import Adam

SHAPE = (1, 8, 8)   # the smallest images both networks take (sides divisible by 4)


def leaf(a):
    return mg.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def softplus(v):
    return np.log1p(np.exp(v))


# ------------------------------------------------------------------ the losses
def test_feature_nll_exact():
    f = np.array([[1.0, 2.0, 0.0], [0.5, -1.0, 3.0]])
    f_rec = np.array([[0.0, 2.5, 1.0], [0.5, 0.0, 1.0]])
    by_hand = np.mean(0.5 * ((f - f_rec) ** 2).sum(1) + 1.5 * math.log(2 * math.pi))
    assert feature_nll(mg.tensor(f), mg.tensor(f_rec)).item() == pytest.approx(by_hand, rel=1e-14)
    same = feature_nll(mg.tensor(f), mg.tensor(f)).item()
    assert same == pytest.approx(1.5 * math.log(2 * math.pi))


def test_gan_losses_exact():
    real, recon, prior = np.array([2.0, -1.0]), np.array([0.5, -3.0]), np.array([1.0, 0.0])
    T = mg.tensor
    # -L_GAN = -log D(x) - log(1 - D(x~)) - log(1 - D(x_p)), D = sigmoid
    by_hand = softplus(-real).mean() + softplus(recon).mean() + softplus(prior).mean()
    assert gan_value_loss(T(real), T(recon), T(prior)).item() == pytest.approx(by_hand, rel=1e-14)
    ns = softplus(-recon).mean() + softplus(-prior).mean()        # -log D(x~) - log D(x_p)
    minimax = -(softplus(recon).mean() + softplus(prior).mean())  # log(1-D(x~)) + log(1-D(x_p))
    assert decoder_gan_loss(T(recon), T(prior), "ns").item() == pytest.approx(ns, rel=1e-14)
    assert decoder_gan_loss(T(recon), T(prior), "minimax").item() == \
        pytest.approx(minimax, rel=1e-14)
    with pytest.raises(ValueError, match="gan_loss must be one of"):
        decoder_gan_loss(T(recon), T(prior), "wgan")


def test_losses_gradients_and_second_derivatives():
    rng = np.random.default_rng(0)
    a, b, c = (leaf(rng.standard_normal(4)) for _ in range(3))
    for f, inputs in ((lambda u, v: feature_nll(u.reshape(2, 2), v.reshape(2, 2)), [a, b]),
                      (gan_value_loss, [a, b, c]),
                      (lambda u, v: decoder_gan_loss(u, v, "ns"), [a, b]),
                      (lambda u, v: decoder_gan_loss(u, v, "minimax"), [a, b])):
        assert mg.gradcheck(f, inputs)
        assert mg.gradgradcheck(f, inputs)


def test_llike_gradient_through_the_discriminator_features():
    """L_llike as a function of the reconstruction, through Dis_l (conv, batch norm, leaky
    ReLU): the gradient the decoder gets, and its derivative."""
    mg.manual_seed(0)
    dis = DCGANDiscriminator(SHAPE, width=2, norm="batch").double()
    x = mg.tensor(np.random.default_rng(1).random((2, 64)))

    def f(x_recon):
        feats = dis.features(mg.cat([x, x_recon], dim=0))
        return feature_nll(feats[:2], feats[2:])

    assert mg.gradcheck(f, [leaf(np.random.default_rng(2).random((2, 64)))])
    assert mg.gradgradcheck(f, [leaf(np.random.default_rng(3).random((2, 64)))])


def test_llike_does_not_depend_on_the_prior_samples():
    """L_llike compares x and x~ only. With a batch-norm Dis, a Dis_l pass that also holds x_p
    normalises by x_p's statistics too, and the decoder learns to blow x_p up to squeeze the
    feature differences (the collapse of the samples this test was written for)."""
    vae, dis = _tiny(norm="batch")
    rng = np.random.default_rng(6)
    x, xr = mg.tensor(rng.random((4, 64))), mg.tensor(rng.random((4, 64)))
    mu, logvar = mg.tensor(rng.standard_normal((4, 3))), mg.tensor(rng.standard_normal((4, 3)))
    xp = leaf(rng.random((4, 64)))
    losses = vaegan.autoencoder_losses(vae, dis, x, mu, logvar, xr, xp, gamma=0.5)
    (g,) = mg.grad(losses["llike"], [xp], allow_unused=True)
    assert g is None or np.abs(g.numpy()).max() == 0.0
    far = vaegan.autoencoder_losses(vae, dis, x, mu, logvar, xr, xp * 100.0, gamma=0.5)
    assert far["llike"].item() == losses["llike"].item()
    assert far["gan_g"].item() != losses["gan_g"].item()    # x_p does reach the GAN term


# ------------------------------------------------------------------ which loss reaches what
def _tiny(seed=0, norm="batch"):
    mg.manual_seed(seed)
    vae = ConvVAE(image_shape=SHAPE, hidden=6, latent=3, channels=(2, 4)).double()
    dis = DCGANDiscriminator(SHAPE, width=2, norm=norm).double()
    mg.nn.init.dcgan_init_(dis)
    return vae, dis


def _grads_of(loss, params):
    return [g.numpy() for g in mg.grad(loss, params, retain_graph=True)]


def test_each_network_gets_the_gradient_of_its_own_loss():
    """The gradients train_step hands to the optimizers, against the formulas of Algorithm 1
    built by hand from the same forward passes: encoder <- d(L_prior + L_llike), decoder <- d(gamma L_llike + GAN term),
    Dis <- d(-L_GAN); the GAN term never reaches the encoder."""
    gamma, rng = 0.3, np.random.default_rng(4)
    x = mg.tensor(rng.random((4, 64)))
    eps, zp = mg.tensor(rng.standard_normal((4, 3))), mg.tensor(rng.standard_normal((4, 3)))
    vae, dis = _tiny(norm="none")
    enc, dec, dparams = vae.encoder_parameters(), vae.decoder_parameters(), list(dis.parameters())
    # by hand
    mu, logvar = vae.encode(x)
    z = mu + (0.5 * logvar).exp() * eps
    xr, xp = vae.decode(z).sigmoid(), vae.decode(zp).sigmoid()
    feats = dis.features(mg.cat([x, xr], dim=0))
    logits = dis(mg.cat([x, xr, xp], dim=0))
    prior = 0.5 * (mu * mu + logvar.exp() - 1 - logvar).sum(dim=1).mean()
    llike = feature_nll(feats[:4], feats[4:])
    gan_g = decoder_gan_loss(logits[4:8], logits[8:])
    gan_d = gan_value_loss(logits[:4], logits[4:8], logits[8:])
    want_enc = [a + b for a, b in zip(_grads_of(prior, enc), _grads_of(llike, enc))]
    want_dec = [gamma * a + b for a, b in zip(_grads_of(llike, dec), _grads_of(gan_g, dec))]
    want_dis = _grads_of(gan_d, dparams)
    # the GAN term does reach the encoder through x~ -- which is why Algorithm 1 keeps it out
    assert max(np.abs(g).max() for g in _grads_of(gan_g, enc)) > 1e-9
    # what the step hands to its optimizers (an lr of 0 keeps the weights)
    opts = [Adam(p, lr=1e-300) for p in (enc, dec, dparams)]
    train_step(vae, dis, *opts, x, gamma=gamma, eps=eps, z_prior=zp)
    for params, want in ((enc, want_enc), (dec, want_dec), (dparams, want_dis)):
        for p, w in zip(params, want):
            np.testing.assert_allclose(p.grad.numpy(), w, rtol=1e-10, atol=1e-13)
    assert all(p.requires_grad for p in dparams)   # frozen() gave them back


# ------------------------------------------------------------------ parity with PyTorch
def _torch_convvae(torch, vae):
    nn = torch.nn
    c, h, w = SHAPE
    c1, c2 = vae.conv1.out_channels, vae.conv2.out_channels
    flat = c2 * (h // 4) * (w // 4)

    class TorchConvVAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(c, c1, 4, stride=2, padding=1)
            self.conv2 = nn.Conv2d(c1, c2, 4, stride=2, padding=1)
            self.fc1 = nn.Linear(flat, vae.hidden)
            self.fc_mu = nn.Linear(vae.hidden, vae.latent)
            self.fc_logvar = nn.Linear(vae.hidden, vae.latent)
            self.fc3 = nn.Linear(vae.latent, vae.hidden)
            self.fc4 = nn.Linear(vae.hidden, flat)
            self.deconv1 = nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1)
            self.deconv2 = nn.ConvTranspose2d(c1, c, 4, stride=2, padding=1)

        def encode(self, x):
            r = torch.relu
            t = r(self.conv2(r(self.conv1(x.reshape(len(x), *SHAPE))))).reshape(len(x), -1)
            t = r(self.fc1(t))
            return self.fc_mu(t), self.fc_logvar(t)

        def decode(self, z):
            r = torch.relu
            t = r(self.fc4(r(self.fc3(z)))).reshape(len(z), c2, h // 4, w // 4)
            return self.deconv2(r(self.deconv1(t))).reshape(len(z), -1)

    return TorchConvVAE()


def _torch_step(torch, vae, dis, opts, x, eps, zp, gamma, margin=None):
    """Algorithm 1 in torch: Dis on detached x~ and x_p, then Dis frozen, each network's
    gradient of its own loss, then the three updates -- the decoder's and Dis's skipped by the
    reference implementation's balance rule when ``margin`` is given. Returns which of
    (decoder, Dis) updated."""
    F = torch.nn.functional
    bce = F.binary_cross_entropy_with_logits
    n = len(x)
    mu, logvar = vae.encode(x)
    xr = torch.sigmoid(vae.decode(mu + torch.exp(0.5 * logvar) * eps))
    xp = torch.sigmoid(vae.decode(zp))
    dparams = list(dis.parameters())
    logits = dis(torch.cat([x, xr.detach(), xp.detach()]))
    real_cost = bce(logits[:n], torch.ones(n, dtype=x.dtype))
    fake_costs = (bce(logits[n:2 * n], torch.zeros(n, dtype=x.dtype)),
                  bce(logits[2 * n:], torch.zeros(n, dtype=x.dtype)))
    d_loss = real_cost + fake_costs[0] + fake_costs[1]
    costs = (real_cost.item(), (fake_costs[0].item() + fake_costs[1].item()) / 2)
    update = [True, True]                                   # decoder, Dis
    if margin is not None:
        update = [max(costs) <= 0.68 + margin, min(costs) >= 0.68 - margin]
        if not any(update):
            update = [True, True]
    d_grads = torch.autograd.grad(d_loss, dparams)
    for p in dparams:
        p.requires_grad_(False)
    feats = dis.features(torch.cat([x, xr]))          # Dis_l of x and x~ only
    logits = dis(torch.cat([x, xr, xp])).reshape(3 * n)
    prior = (0.5 * (mu ** 2 + logvar.exp() - 1 - logvar)).sum(1).mean()
    llike = (0.5 * (feats[:n] - feats[n:]) ** 2 + 0.5 * math.log(2 * math.pi)).sum(1).mean()
    gan_g = bce(logits[n:2 * n], torch.ones(n, dtype=x.dtype)) + \
        bce(logits[2 * n:], torch.ones(n, dtype=x.dtype))
    enc = [p for k, p in vae.named_parameters() if k.split(".")[0] in ConvVAE.ENCODER_LAYERS]
    dec = [p for k, p in vae.named_parameters() if k.split(".")[0] not in ConvVAE.ENCODER_LAYERS]
    e_grads = torch.autograd.grad(prior + llike, enc, retain_graph=True)
    g_grads = torch.autograd.grad(gamma * llike + gan_g, dec)
    for p in dparams:
        p.requires_grad_(True)
    for params, grads in ((enc, e_grads), (dec, g_grads), (dparams, d_grads)):
        for p, g in zip(params, grads):
            p.grad = g
    for opt, on in zip(opts, (True, *update)):
        if on:
            opt.step()
    return tuple(update)


def run_twins(steps=3, gamma=0.3, margin=None, skipped=None):
    """Train the twins side by side; the worst relative difference of their weights after.
    ``skipped`` (a list) collects the steps where the torch twin rested the decoder or Dis."""
    torch = pytest.importorskip("torch", reason="torch not installed: PyTorch parity not checked")
    from minigen.models.gan.torch_twin import copy_weights, dcgan_pair
    vae, dis = _tiny(seed=1)
    t_vae = _torch_convvae(torch, vae).double()
    _, t_dis = dcgan_pair(latent=1, image_shape=SHAPE, width=2, norm="batch")
    t_dis.double()
    copy_weights(vae, t_vae)
    copy_weights(dis, t_dis)
    betas = (0.5, 0.999)
    ours = [Adam(p, 2e-4, betas) for p in (vae.encoder_parameters(), vae.decoder_parameters(),
                                          list(dis.parameters()))]
    enc = [p for k, p in t_vae.named_parameters() if k.split(".")[0] in ConvVAE.ENCODER_LAYERS]
    dec = [p for k, p in t_vae.named_parameters() if k.split(".")[0] not in ConvVAE.ENCODER_LAYERS]
    theirs = [torch.optim.Adam(p, 2e-4, betas) for p in (enc, dec, list(t_dis.parameters()))]
    rng = np.random.default_rng(5)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(steps):
            x, eps, zp = rng.random((4, 64)), rng.standard_normal((4, 3)), \
                rng.standard_normal((4, 3))
            train_step(vae, dis, *ours, mg.tensor(x), gamma, "ns", mg.tensor(eps), mg.tensor(zp),
                       margin=margin)
            T = torch.from_numpy
            done = _torch_step(torch, t_vae, t_dis, theirs, T(x), T(eps), T(zp), gamma, margin)
            if skipped is not None and not all(done):
                skipped.append(done)
    finally:
        torch.set_num_threads(threads)
    worst = 0.0
    for a_mod, b_mod in ((vae, t_vae), (dis, t_dis)):
        ref = b_mod.state_dict()
        for name, a in a_mod.state_dict().items():
            b = ref[name].detach().numpy().astype(np.float64)
            worst = max(worst, float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300)))
    return worst


def test_three_steps_equal_the_pytorch_twin():
    assert run_twins() <= 1e-9


def test_the_parity_check_catches_a_decoder_loss_without_gamma(monkeypatch):
    real = vaegan.autoencoder_losses

    def no_gamma(vae, dis, x, mu, logvar, x_recon, x_prior, gamma=1.0, gan_loss="ns"):
        out = real(vae, dis, x, mu, logvar, x_recon, x_prior, gamma, gan_loss)
        out["decoder"] = out["llike"] + out["gan_g"]   # gamma forgotten
        return out

    monkeypatch.setattr(vaegan, "autoencoder_losses", no_gamma)
    assert run_twins(steps=2) > 1e-6


# ------------------------------------------------------------------ balancing the game
def test_equilibrium_rule_exact():
    """Dis rests while it wins (a cost below 0.68 - margin), the decoder while it loses (a
    cost above 0.68 + margin), both update if both would rest; no margin: both always."""
    m = 0.35
    assert equilibrium_updates(0.7, 0.6, m) == (True, True)
    assert equilibrium_updates(0.2, 0.6, m) == (True, False)     # Dis sure of the data
    assert equilibrium_updates(0.6, 0.1, m) == (True, False)     # ... or of the fakes
    assert equilibrium_updates(1.2, 0.6, m) == (False, True)     # Dis fooled: decoder rests
    assert equilibrium_updates(0.6, 1.1, m) == (False, True)
    assert equilibrium_updates(0.2, 1.2, m) == (True, True)      # both would rest
    assert equilibrium_updates(0.01, 9.0, None) == (True, True)


def test_twins_agree_with_the_balance_rule_and_it_is_exercised():
    """A tight margin makes the rule rest a network on some of the steps; the weights still
    equal the torch twin's, which applies the rule written out independently."""
    skipped = []
    assert run_twins(steps=4, margin=0.005, skipped=skipped) <= 1e-9
    assert skipped, "the margin never rested a network: the rule went untested"


def test_the_parity_check_catches_a_balance_rule_that_never_rests(monkeypatch):
    monkeypatch.setattr(vaegan, "equilibrium_updates", lambda *a, **k: (True, True))
    assert run_twins(steps=4, margin=0.005) > 1e-6
