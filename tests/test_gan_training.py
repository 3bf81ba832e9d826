"""GAN networks and training steps: which parameters each step may touch (and a planted
mistake caught), parity with a PyTorch twin step for step, mode coverage by hand."""
import numpy as np
import pytest

import minigen as mg
from minigen.models.gan import (DCGANDiscriminator, DCGANGenerator, MLPDiscriminator,
                                MLPGenerator, Recipe, build_gan, discriminator_step, frozen,
                                generator_step, mode_coverage, toy_coverage)
from minigen.models.gan import torch_twin
from minigen.optim import Adam, SGD

SMALL_DCGAN = {"arch": "dcgan", "data_shape": (1, 28, 28), "latent": 8, "width": 4}


# ------------------------------------------------------------------ networks
@pytest.mark.parametrize("arch, shape", [("mlp", (2,)), ("mlp", (1, 28, 28)),
                                         ("dcgan", (1, 28, 28))])
@pytest.mark.parametrize("minibatch", ["none", "discrimination", "stddev"])
def test_shapes_flat_rows_in_and_out(arch, shape, minibatch):
    G, D = build_gan({"arch": arch, "data_shape": shape, "latent": 6, "width": 4,
                      "num_classes": 3, "minibatch": minibatch})
    y = np.array([0, 1, 2, 2])
    x = G(mg.randn(4, 6), y)
    assert x.shape == (4, int(np.prod(shape)))
    assert D(x, y).shape == (4,)
    assert D.features(x, y).ndim == 2
    if len(shape) == 3:  # tanh images
        assert np.abs(x.numpy()).max() <= 1.0


def test_dcgan_follows_the_seed_rules():
    G, D = build_gan({**SMALL_DCGAN, "width": 32, "latent": 100})
    layers = [type(m).__name__ for m in G.net]
    assert layers == ["ConvTranspose2d", "BatchNorm2d", "ReLU", "ConvTranspose2d", "BatchNorm2d",
                      "ReLU", "ConvTranspose2d", "Tanh"]          # no BN at G's output
    body = [type(m).__name__ for m in D.body]
    assert body == ["Conv2d", "LeakyReLU", "Conv2d", "BatchNorm2d", "LeakyReLU", "Flatten"]
    assert all(m.negative_slope == 0.2 for m in D.body if type(m).__name__ == "LeakyReLU")
    assert G.net[0].weight.shape == (100, 128, 7, 7)             # the projection of z
    assert D.body[0].stride == (2, 2) and D.body[2].stride == (2, 2)   # strides, no pooling
    w = np.concatenate([G.net[0].weight.numpy().ravel(), G.net[3].weight.numpy().ravel()])
    assert w.mean() == pytest.approx(0.0, abs=1e-3) and w.std() == pytest.approx(0.02, rel=0.01)
    assert D.head.bias.numpy().tolist() == [0.0]
    critic = DCGANDiscriminator(width=4, norm="none")
    assert [type(m).__name__ for m in critic.body][3] == "Identity"
    assert type(DCGANDiscriminator(width=4, norm="layer").body[3]).__name__ == "LayerNorm"


def test_conditional_networks_use_the_label():
    G = MLPGenerator(4, 2, hidden=(8,), num_classes=3, tanh=False)
    D = MLPDiscriminator(2, hidden=(8,), num_classes=3)
    z = mg.randn(2, 4)
    a, b = G(z, np.array([0, 0])).numpy(), G(z, np.array([1, 2])).numpy()
    assert not np.allclose(a, b)
    x = mg.randn(2, 2)
    assert not np.allclose(D(x, np.array([0, 0])).numpy(), D(x, np.array([1, 2])).numpy())
    with pytest.raises(ValueError, match="needs the labels"):
        G(z)
    cG = DCGANGenerator(latent=4, width=2, num_classes=10)
    cD = DCGANDiscriminator(width=2, num_classes=10)
    assert cG.net[0].weight.shape[0] == 14 and cD.body[0].weight.shape[1] == 11  # one-hot in


def test_build_gan_refuses_a_dcgan_on_points():
    with pytest.raises(ValueError, match="DCGAN needs image data"):
        build_gan({"arch": "dcgan", "data_shape": (2,), "latent": 2, "width": 2})


# ------------------------------------------------------------------ which parameters move
def _snapshot(module):
    return [p.data.copy() for p in module.parameters()]


def assert_step_touches(step, moves, keeps):
    """Run ``step()``: every parameter of ``moves`` gets a gradient and changes where that is
    not zero (a critic's output bias cancels out of E f(G(z)) - E f(x)); ``keeps`` must stay
    bit for bit and receive no gradient (its .grad stays None)."""
    for p in list(keeps.parameters()) + list(moves.parameters()):
        p.grad = None
    before_moves, before_keeps = _snapshot(moves), _snapshot(keeps)
    step()
    for (name, p), old in zip(moves.named_parameters(), before_moves):
        assert p.grad is not None, f"{name} received no gradient"
        if np.any(p.grad.data != 0):
            assert not np.array_equal(p.data, old), f"{name} was not updated"
    for (name, p), old in zip(keeps.named_parameters(), before_keeps):
        assert np.array_equal(p.data, old), f"{name} changed but must not"
        assert p.grad is None, f"{name} received a gradient"


def _toy_pair(seed=0, **kw):
    mg.manual_seed(seed)
    G, D = build_gan({"arch": "mlp", "data_shape": (2,), "latent": 3, "width": 8, **kw})
    return G, D, Adam(G.parameters(), 1e-2), Adam(D.parameters(), 1e-2)


@pytest.mark.parametrize("loss", ["minimax", "ns", "wgan", "wgan-gp", "lsgan", "hinge"])
def test_d_step_trains_d_only_and_g_step_trains_g_only(loss):
    G, D, opt_G, opt_D = _toy_pair()
    recipe = Recipe(loss)
    real, z = mg.randn(16, 2), mg.randn(16, 3)
    assert_step_touches(lambda: discriminator_step(G, D, opt_D, real, z, recipe), D, G)
    assert_step_touches(lambda: generator_step(G, D, opt_G, z, recipe), G, D)
    assert all(p.requires_grad for p in D.parameters())  # frozen() gave them back


def test_stabilised_steps_keep_the_rules():
    G, D, opt_G, opt_D = _toy_pair(minibatch="discrimination")
    recipe = Recipe("ns", real_label=0.9, feature_matching=True)
    real, z = mg.randn(16, 2), mg.randn(16, 3)
    step = lambda: discriminator_step(G, D, opt_D, real, z, recipe, noise_std=0.1)  # noqa: E731
    assert_step_touches(step, D, G)
    # feature matching does not use D's head: its weights get no gradient either way
    assert_step_touches(lambda: generator_step(G, D, opt_G, z, recipe, noise_std=0.1, real=real),
                        G, D)


def test_a_g_step_that_updates_d_is_caught():
    G, D, opt_G, opt_D = _toy_pair()
    both = SGD(list(G.parameters()) + list(D.parameters()), lr=0.1)
    recipe = Recipe("ns")
    z = mg.randn(16, 3)

    def careless_generator_step():  # no frozen(D), and an optimizer over both networks
        both.zero_grad()
        recipe.g_loss(D(G(z))).backward()
        both.step()

    with pytest.raises(AssertionError, match="changed but must not"):
        assert_step_touches(careless_generator_step, G, D)


def test_a_d_step_that_backpropagates_into_g_is_caught():
    G, D, opt_G, opt_D = _toy_pair()
    recipe = Recipe("ns")
    real, z = mg.randn(16, 2), mg.randn(16, 3)

    def careless_discriminator_step():  # the fakes keep their graph through G
        opt_D.zero_grad()
        recipe.d_loss(D(real), D(G(z))).backward()
        opt_D.step()

    with pytest.raises(AssertionError, match="received a gradient"):
        assert_step_touches(careless_discriminator_step, D, G)


def test_wgan_clips_the_critic_and_frozen_restores_flags():
    G, D, opt_G, opt_D = _toy_pair()
    discriminator_step(G, D, opt_D, mg.randn(16, 2), mg.randn(16, 3), Recipe("wgan", clip=0.01))
    assert max(np.abs(p.data).max() for p in D.parameters()) <= 0.01
    D.head.bias.requires_grad = False
    with frozen(D):
        assert not any(p.requires_grad for p in D.parameters())
    assert D.head.bias.requires_grad is False and D.head.weight.requires_grad is True


def test_step_reports_the_wasserstein_estimate_and_penalty():
    G, D, opt_G, opt_D = _toy_pair()
    out = discriminator_step(G, D, opt_D, mg.randn(16, 2), mg.randn(16, 3), Recipe("wgan-gp"))
    d_loss, w, pen = out["d_loss"].item(), out["wasserstein"].item(), out["penalty"].item()
    assert pen > 0 and d_loss == pytest.approx(-w + pen, rel=1e-5)
    assert out["d_real"].item() - out["d_fake"].item() == pytest.approx(w, rel=1e-5)


# ------------------------------------------------------------------ parity with PyTorch
# (lr, betas, n_critic, D's normalisation): the papers' settings
PAPER = {"ns": (2e-4, (0.5, 0.999), 1, "batch"), "lsgan": (2e-4, (0.5, 0.999), 1, "batch"),
         "wgan-gp": (1e-4, (0.0, 0.9), 5, "none")}


def run_twins(loss, iterations=20, batch=8, seed=0):
    """A narrow DCGAN in minigen and torch (weights copied), the same batches, z and alpha;
    ``iterations`` of n_critic D steps and one G step, in float64. Returns the largest
    relative difference of any parameter or batch-norm statistic, checked after every step."""
    torch = pytest.importorskip("torch", reason="torch not installed: PyTorch parity not checked")
    lr, betas, n_critic, norm = PAPER[loss]
    twins = torch_twin.Twins({**SMALL_DCGAN, "d_norm": norm}, Recipe(loss), lr, betas)
    rng, worst = np.random.default_rng(seed), 0.0
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: a thread pool only waits (and CI has 2 cores)
    try:
        for _ in range(iterations):
            for _ in range(n_critic):
                twins.d_step(rng.random((batch, 784)) * 2 - 1, rng.standard_normal((batch, 8)),
                             alpha=rng.random((batch, 1)))
                worst = max(worst, twins.max_relative_difference())
            twins.g_step(rng.standard_normal((batch, 8)))
            worst = max(worst, twins.max_relative_difference())
    finally:
        torch.set_num_threads(threads)
    return worst


@pytest.mark.parametrize("loss", ["ns", "wgan-gp", "lsgan"])
def test_twenty_alternating_steps_equal_the_pytorch_twin(loss):
    assert run_twins(loss) <= 1e-9


def test_the_parity_check_catches_a_planted_difference(monkeypatch):
    # the twin's generator loss quietly becomes the saturating one: parity must fail
    saturating = {"ns": "minimax"}
    real_g_loss = torch_twin.g_loss
    monkeypatch.setattr(torch_twin, "g_loss", lambda recipe, fake: real_g_loss(
        Recipe(saturating.get(recipe.loss, recipe.loss)), fake))
    assert run_twins("ns", iterations=2) > 1e-6


# ------------------------------------------------------------------ mode coverage
def test_mode_coverage_by_hand():
    from minigen.data import ring_centers
    c = ring_centers()                         # 8 modes on a circle of radius 2, std 0.02
    points = np.array([c[0], c[0], c[1],      # exactly on modes 0 and 1
                       c[2] + [0.05, 0.0],    # 2.5 std from mode 2: high quality
                       c[3] + [0.0, 0.07],    # 3.5 std from mode 3: not
                       [0.0, 0.0]])           # between modes: not
    cov = mode_coverage(points, c, std=0.02)
    assert (cov.modes, cov.total_modes) == (3, 8)
    assert cov.high_quality == pytest.approx(4 / 6)
    assert cov.counts.tolist() == [2, 1, 1, 0, 0, 0, 0, 0]
    assert mode_coverage(points, c, std=0.02, min_count=2).modes == 1
    assert toy_coverage(points, "ring").modes == 3


def test_mode_coverage_of_the_data_itself_and_of_a_collapse():
    from minigen.data import grid_of_gaussians, ring_of_gaussians
    x, _ = ring_of_gaussians(2500, seed=1)
    cov = toy_coverage(x, "ring")
    assert cov.modes == 8 and cov.high_quality > 0.98    # 3 std holds 98.9% of a 2-D Gaussian
    x, _ = grid_of_gaussians(2500, seed=1)
    assert toy_coverage(x, "grid").modes == 25
    collapsed = np.tile(x[:1], (2500, 1))
    assert toy_coverage(collapsed, "grid").modes == 1
