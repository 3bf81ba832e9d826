"""The adversarial autoencoder: its priors and labelled positives by hand, the reconstruction
loss exactly and under gradcheck, which parameters each phase may move (and a planted
mistake caught), and three steps of both phases equal to a PyTorch twin in float64."""
import math

import numpy as np
import pytest
from test_gan_training import assert_step_touches

import minigen as mg
from minigen.models.aae import (AdversarialAutoencoder, CircleMixturePrior, GaussianPrior,
                                build_aae, discriminator_step, draw_positives, encoder_step,
                                reconstruction_loss, reconstruction_step, train_step)
from minigen.models.gan import minimax_d_loss
from minigen.optim import SGD, Adam


def leaf(a):
    return mg.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


# ------------------------------------------------------------------ priors
def test_mixture_components_by_hand():
    prior = CircleMixturePrior(components=4, radius=2.0, radial_std=0.5, tangential_std=0.1)
    eps = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [2.0, -1.0]])
    # component 0 points along +x, component 1 along +y: radial = the first noise coordinate
    z = prior.transform(eps, np.array([0, 0, 1, 1]))
    np.testing.assert_allclose(z, [[2.0, 0.0], [2.5, 0.0], [-0.1, 2.0], [0.1, 3.0]],
                               atol=1e-15)


def test_prior_densities_integrate_to_one():
    lo, hi, k = -4.5, 4.5, 451
    ticks = np.linspace(lo, hi, k)
    gx, gy = np.meshgrid(ticks, ticks)
    grid = np.stack([gx.ravel(), gy.ravel()], 1)
    cell = (ticks[1] - ticks[0]) ** 2
    for prior in (CircleMixturePrior(), GaussianPrior(2)):
        assert np.exp(prior.log_density(grid)).sum() * cell == pytest.approx(1.0, abs=2e-3)
    assert GaussianPrior(2).log_density(np.zeros((1, 2)))[0] == pytest.approx(-math.log(2 * np.pi))


@pytest.mark.parametrize("labels", ["none", "independent", "component"])
def test_positives_and_their_labels(labels):
    prior = CircleMixturePrior()
    z, y = draw_positives(prior, 4000, labels, 10)
    assert z.shape == (4000, 2) and z.dtype == np.float32
    angle = np.mod(np.arctan2(z.numpy()[:, 1], z.numpy()[:, 0]), 2 * np.pi)
    component = np.round(angle / (2 * np.pi / 10)).astype(int) % 10   # the nearest petal
    if labels == "none":
        assert y is None
        return
    assert y.shape == (4000,) and set(np.unique(y)) == set(range(10))
    agree = (component == y).mean()
    if labels == "component":  # class k's positives lie on petal k (but a few near the centre)
        assert agree > 0.998
    else:                                # independent: a label says nothing about the position
        assert agree == pytest.approx(0.1, abs=0.03)


# ------------------------------------------------------------------ the loss
def test_reconstruction_loss_exact_and_gradients():
    logits = np.array([[0.0, 2.0, -1.0], [1.5, -0.5, 0.3]])
    x = np.array([[1.0, 0.0, 0.25], [0.0, 1.0, 0.5]])
    p = 1 / (1 + np.exp(-logits))
    by_hand = -(x * np.log(p) + (1 - x) * np.log(1 - p)).sum(1).mean()
    assert reconstruction_loss(mg.tensor(logits), mg.tensor(x)).item() == \
        pytest.approx(by_hand, rel=1e-14)
    f = lambda l: reconstruction_loss(l, mg.tensor(x))  # noqa: E731
    assert mg.gradcheck(f, [leaf(logits)])
    assert mg.gradgradcheck(f, [leaf(logits)])


@pytest.mark.parametrize("labelled", [False, True])
def test_regularisation_loss_gradients_through_d(labelled):
    """D's loss on (prior, prior labels) vs (codes, their labels), as a function of the codes
    and of the prior samples: first and second derivatives through D, in float64."""
    mg.manual_seed(1)
    _, D = build_aae({"in_features": 4, "hidden": 3, "latent": 2, "d_hidden": 5,
                      "labels": "independent" if labelled else "none", "num_classes": 3})
    D.double()
    y_p, y_c = (np.array([0, 2, 1]), np.array([1, 1, 0])) if labelled else (None, None)
    f = lambda p, c: minimax_d_loss(D(p, y_p), D(c, y_c))  # noqa: E731
    inputs = [leaf(np.random.default_rng(2).standard_normal((3, 2))),
              leaf(np.random.default_rng(3).standard_normal((3, 2)))]
    assert mg.gradcheck(f, inputs)
    assert mg.gradgradcheck(f, inputs)


# ------------------------------------------------------------------ which parameters move
def _tiny(labels="none", seed=0):
    mg.manual_seed(seed)
    ae, D = build_aae({"in_features": 6, "hidden": 5, "latent": 2, "d_hidden": 5,
                       "labels": labels, "num_classes": 3})
    return ae, D, Adam(ae.parameters(), 1e-2), Adam(D.parameters(), 1e-2), \
        Adam(ae.encoder.parameters(), 1e-2)


def test_each_phase_moves_only_its_networks():
    ae, D, opt_ae, opt_D, opt_G = _tiny("independent")
    x, y = mg.rand(8, 6), np.array([0, 1, 2, 0, 1, 2, 0, 1])
    z, y_p = draw_positives(GaussianPrior(2), 8, "independent", 3)
    assert_step_touches(lambda: reconstruction_step(ae, opt_ae, x, y), ae, D)
    assert_step_touches(lambda: discriminator_step(ae, D, opt_D, x, z, y_p, y), D, ae)
    assert_step_touches(lambda: encoder_step(ae, D, opt_G, x, y), ae.encoder, D)
    before = [p.data.copy() for p in ae.decoder.parameters()]
    ae.zero_grad()
    encoder_step(ae, D, opt_G, x, y)   # the decoder is not in the regularisation phase at all
    assert all(np.array_equal(p.data, b) and p.grad is None
               for p, b in zip(ae.decoder.parameters(), before))
    assert all(p.requires_grad for p in D.parameters())   # frozen() gave them back


def test_an_encoder_phase_that_updates_d_is_caught():
    ae, D, *_ = _tiny()
    both = SGD(list(ae.encoder.parameters()) + list(D.parameters()), lr=0.1)
    x = mg.rand(8, 6)

    def careless_encoder_step():   # no frozen(D), and one optimizer over encoder and D
        from minigen.models.gan import ns_g_loss
        both.zero_grad()
        ns_g_loss(D(ae.encode(x))).backward()
        both.step()

    with pytest.raises(AssertionError, match="changed but must not"):
        assert_step_touches(careless_encoder_step, ae.encoder, D)


def test_train_step_is_the_two_phases_in_order():
    """train_step = reconstruction, positives from minigen's generator, D, encoder."""
    results = []
    for composed in (False, True):
        ae, D, opt_ae, opt_D, opt_G = _tiny("independent", seed=4)
        x, y = mg.rand(8, 6), np.array([0, 1, 2, 0, 1, 2, 0, 1])
        prior = CircleMixturePrior()
        mg.manual_seed(7)
        if composed:
            reconstruction_step(ae, opt_ae, x, y)
            z, y_p = draw_positives(prior, 8, "independent", 3)
            discriminator_step(ae, D, opt_D, x, z, y_p, y)
            encoder_step(ae, D, opt_G, x, y)
        else:
            train_step(ae, D, opt_ae, opt_D, opt_G, prior, x, y, "independent", 3)
        results.append([p.data.copy() for p in list(ae.parameters()) + list(D.parameters())])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="needs the batch's labels"):
        train_step(ae, D, opt_ae, opt_D, opt_G, prior, x, None, "independent", 3)


def test_the_decoder_uses_the_label_only_in_the_independent_variant():
    ae = AdversarialAutoencoder(6, 5, 2, num_classes=3)
    z = mg.randn(2, 2)
    assert not np.allclose(ae.decode(z, np.array([0, 0])).numpy(),
                           ae.decode(z, np.array([1, 2])).numpy())
    plain, D = build_aae({"in_features": 6, "hidden": 5, "latent": 2, "d_hidden": 5,
                          "labels": "component", "num_classes": 3})
    assert plain.num_classes == 0 and D.num_classes == 3


# ------------------------------------------------------------------ parity with PyTorch
def _torch_twin(torch, ae, D, labels, num_classes):
    """The same three networks in torch (same module names, weights copied)."""
    from minigen.models.gan.torch_twin import copy_weights
    nn = torch.nn
    k_dec = num_classes if labels == "independent" else 0
    k_d = num_classes if labels != "none" else 0

    def with_label(x, y, k):
        return x if not k else torch.cat([x, nn.functional.one_hot(y, k).to(x.dtype)], 1)

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            h = ae.decoder.net[0].out_features
            self.net = nn.Sequential(nn.Linear(ae.latent + k_dec, h), nn.ReLU(), nn.Linear(h, h),
                                     nn.ReLU(), nn.Linear(h, ae.in_features))

        def forward(self, z, y=None):
            return self.net(with_label(z, y, k_dec))

    class AE(nn.Module):
        def __init__(self):
            super().__init__()
            h = ae.encoder[0].out_features
            self.encoder = nn.Sequential(nn.Linear(ae.in_features, h), nn.ReLU(), nn.Linear(h, h),
                                         nn.ReLU(), nn.Linear(h, ae.latent))
            self.decoder = Decoder()

    class Disc(nn.Module):
        def __init__(self):
            super().__init__()
            h = D.body[0].out_features
            self.body = nn.Sequential(nn.Linear(ae.latent + k_d, h), nn.LeakyReLU(0.2),
                                      nn.Linear(h, h), nn.LeakyReLU(0.2))
            self.minibatch = nn.Identity()
            self.head = nn.Linear(h, 1)

        def forward(self, z, y=None):
            return self.head(self.body(with_label(z, y, k_d))).reshape(len(z))

    t_ae, t_D = AE().double(), Disc().double()
    copy_weights(ae, t_ae)
    copy_weights(D, t_D)
    return t_ae, t_D


def _torch_steps(torch, ae, D, opts, x, y, z, y_p, labels, pair_labels=True):
    """Both phases in torch. ``pair_labels=False`` plants a mistake: the positives get the
    codes' labels instead of their own."""
    F = torch.nn.functional
    opt_ae, opt_D, opt_G = opts
    y_dec = y if labels == "independent" else None
    y_x = None if labels == "none" else y
    y_p = y_p if pair_labels else y_x
    loss = F.binary_cross_entropy_with_logits(ae.decoder(ae.encoder(x), y_dec), x,
                                              reduction="sum") / len(x)
    opt_ae.zero_grad()
    loss.backward()
    opt_ae.step()
    with torch.no_grad():
        codes = ae.encoder(x)
    real, fake = D(z, y_p), D(codes, y_x)
    d_loss = (F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) +
              F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    opt_D.zero_grad()
    d_loss.backward()
    opt_D.step()
    for p in D.parameters():
        p.requires_grad_(False)
    out = D(ae.encoder(x), y_x)
    g_loss = F.binary_cross_entropy_with_logits(out, torch.ones_like(out))
    opt_G.zero_grad()
    g_loss.backward()
    opt_G.step()
    for p in D.parameters():
        p.requires_grad_(True)


def run_twins(labels, steps=3, pair_labels=True):
    torch = pytest.importorskip("torch", reason="torch not installed: PyTorch parity not checked")
    mg.manual_seed(0)
    config = {"in_features": 12, "hidden": 8, "latent": 2, "d_hidden": 8, "labels": labels,
              "num_classes": 3}
    ae, D = build_aae(config)
    ae.double()
    D.double()
    t_ae, t_D = _torch_twin(torch, ae, D, labels, 3)
    lr, betas = (1e-3, (0.9, 0.999)), (2e-4, (0.5, 0.999))
    ours = (Adam(ae.parameters(), *lr), Adam(D.parameters(), *betas),
            Adam(ae.encoder.parameters(), *betas))
    theirs = (torch.optim.Adam(t_ae.parameters(), *lr), torch.optim.Adam(t_D.parameters(), *betas),
              torch.optim.Adam(t_ae.encoder.parameters(), *betas))
    rng, prior = np.random.default_rng(1), CircleMixturePrior(components=3)
    for _ in range(steps):
        x = rng.random((6, 12))
        y = rng.integers(0, 3, 6)
        z = prior.transform(rng.standard_normal((6, 2)), rng.integers(0, 3, 6))
        y_p = rng.integers(0, 3, 6)
        y_x = None if labels == "none" else y
        y_prior = None if labels == "none" else y_p
        reconstruction_step(ae, ours[0], mg.tensor(x), y if labels == "independent" else None)
        discriminator_step(ae, D, ours[1], mg.tensor(x), mg.tensor(z), y_prior, y_x)
        encoder_step(ae, D, ours[2], mg.tensor(x), y_x)
        T = torch.from_numpy
        _torch_steps(torch, t_ae, t_D, theirs, T(x), T(y), T(z), T(y_p), labels, pair_labels)
    worst = 0.0
    for ours_m, theirs_m in ((ae, t_ae), (D, t_D)):
        ref = theirs_m.state_dict()
        for name, a in ours_m.state_dict().items():
            b = ref[name].detach().numpy()
            worst = max(worst, float(np.abs(a - b).max() / np.abs(b).max()))
    return worst


@pytest.mark.parametrize("labels", ["none", "independent"])
def test_three_steps_of_both_phases_equal_the_pytorch_twin(labels):
    assert run_twins(labels) <= 1e-9


def test_the_parity_check_catches_positives_paired_with_the_codes_labels():
    assert run_twins("independent", steps=2, pair_labels=False) > 1e-6
