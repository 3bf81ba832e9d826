"""CycleGAN: instance norm, the image pool, the schedule, which network each loss reaches and
each step updates (with planted mistakes caught), and parity with a PyTorch twin."""
import numpy as np
import pytest
from test_gan_training import assert_step_touches

import minigen as mg
import minigen.nn.functional as F
from minigen import nn
from minigen.models.cyclegan import (ImagePool, Weights, build_cyclegan, discriminator_step,
                                     generator_losses, generator_step, lr_factor)
from minigen.models.cyclegan import torch_twin
from minigen.optim import Adam

TINY = {"image_shape": (1, 8, 8), "width": 2, "blocks": 1, "d_width": 2}


# ------------------------------------------------------------------ instance norm
def test_instance_norm_normalises_each_image_and_channel_alone():
    x = mg.tensor(np.random.default_rng(0).normal(3.0, 2.0, (2, 3, 5, 4)))
    y = nn.InstanceNorm2d(3)(x).numpy()
    np.testing.assert_allclose(y.mean(axis=(2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(2, 3)), 1 / (1 + 1e-5 / x.numpy().var(axis=(2, 3))),
                               rtol=1e-10)
    # the second image does not change the first one's output (batch norm would)
    np.testing.assert_array_equal(nn.InstanceNorm2d(3)(x[:1]).numpy(), y[:1])


def test_instance_norm_gradients():
    rng = np.random.default_rng(1)
    x = mg.tensor(rng.standard_normal((2, 2, 3, 3)), requires_grad=True)
    w = mg.tensor(rng.standard_normal(2), requires_grad=True)
    b = mg.tensor(rng.standard_normal(2), requires_grad=True)
    f = lambda x, w, b: F.instance_norm(x, weight=w, bias=b)  # noqa: E731
    assert mg.gradcheck(f, [x, w, b])
    assert mg.gradgradcheck(f, [x, w, b])
    assert mg.gradcheck(lambda x: F.instance_norm(x), [x])


def test_instance_norm_equals_torch():
    torch = pytest.importorskip("torch", reason="torch not installed: PyTorch parity not checked")
    rng = np.random.default_rng(2)
    a, g = rng.standard_normal((3, 4, 5, 5)), rng.standard_normal((3, 4, 5, 5))
    x, tx = mg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    layer, t_layer = nn.InstanceNorm2d(4, affine=True), torch.nn.InstanceNorm2d(4, affine=True)
    layer.to(dtype="float64")
    with torch.no_grad():
        t_layer.weight.copy_(torch.tensor(rng.standard_normal(4)))
        t_layer.bias.copy_(torch.tensor(rng.standard_normal(4)))
    layer.load_state_dict({k: v.double().numpy() for k, v in t_layer.state_dict().items()})
    y, ty = layer(x), t_layer.double()(tx)
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    (y * mg.tensor(g)).sum().backward()
    (ty * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.weight.grad.numpy(), t_layer.weight.grad.numpy(), rtol=1e-10)
    with pytest.raises(ValueError, match="track_running_stats=True is not supported"):
        nn.InstanceNorm2d(4, track_running_stats=True)


# ------------------------------------------------------------------ pool and schedule
def test_image_pool_follows_the_papers_rule():
    pool = ImagePool(size=3, seed=0)
    first = np.arange(2 * 4, dtype=np.float32).reshape(2, 4)
    np.testing.assert_array_equal(pool.query(first), first)       # filling: the new images
    second = first + 100
    out = pool.query(second)                                      # one more fills it
    np.testing.assert_array_equal(out[0], second[0])
    assert len(pool) == 3
    stored = {tuple(i) for i in pool.images}
    third = first + 200
    out = pool.query(third)
    for new, got in zip(third, out):   # each: the new image, or a stored one swapped for it
        # (stored before this batch, or by an earlier image of it: the rule runs per image)
        assert tuple(got) == tuple(new) or tuple(got) in stored | {tuple(i) for i in third}
    twin = ImagePool(size=3, seed=0)
    for batch in (first, second):
        twin.query(batch)
    np.testing.assert_array_equal(twin.query(third), out)        # the same seed, the same picks
    # a state dict round trip continues with the same picks
    saved = pool.state_dict()
    copy = ImagePool(size=3, seed=99)
    copy.load_state_dict(saved)
    fourth = first + 300
    np.testing.assert_array_equal(copy.query(fourth), pool.query(fourth))
    assert ImagePool(size=0).query(first) is first
    with pytest.raises(ValueError, match="size 3 cannot be loaded into one of size 4"):
        ImagePool(size=4).load_state_dict(saved)


def test_image_pool_swaps_about_half_the_time():
    pool = ImagePool(size=50, seed=1)
    pool.query(np.zeros((50, 2)))
    out = pool.query(np.ones((2000, 2)))
    old = (out[:, 0] == 0).sum()       # stored zeros handed out (each at most once)
    assert old == 50                   # every zero left the pool long before 2000 queries
    pool = ImagePool(size=50, seed=1)
    pool.query(np.zeros((50, 2)))
    picks = [pool.query(np.full((1, 2), k + 1.0))[0, 0] != k + 1.0 for k in range(4000)]
    assert 0.46 < np.mean(picks) < 0.54   # p = 1/2


def test_the_papers_learning_rate_schedule():
    assert [lr_factor(e, 100, 100) for e in (0, 99)] == [1.0, 1.0]
    assert lr_factor(100, 100, 100) == pytest.approx(1 - 1 / 101)
    assert lr_factor(199, 100, 100) == pytest.approx(1 / 101)
    assert [lr_factor(e, 2, 2) for e in range(4)] == pytest.approx([1, 1, 2 / 3, 1 / 3])


# ------------------------------------------------------------------ networks
def test_networks_shapes_and_the_paper_layout():
    nets = build_cyclegan({"image_shape": (1, 28, 28), "width": 4, "blocks": 2, "d_width": 4})
    x = mg.randn(3, 784)
    y = nets["G"](x)
    assert y.shape == (3, 784) and np.abs(y.numpy()).max() <= 1
    assert nets["G"](x.reshape(3, 1, 28, 28)).shape == (3, 1, 28, 28)
    assert nets["D_X"](x).shape == (3, 1, 7, 7)                     # 49 patch verdicts
    kinds = [type(m).__name__ for m in nets["G"].net]
    assert kinds.count("ResidualBlock") == 2 and kinds[-1] == "Tanh"
    assert kinds.count("InstanceNorm2d") == 5 and "BatchNorm2d" not in kinds
    body = [type(m).__name__ for m in nets["D_Y"].net]
    assert body == ["Conv2d", "LeakyReLU", "Conv2d", "InstanceNorm2d", "LeakyReLU", "Conv2d"]
    w = nets["G"].net[0].weight.numpy()
    assert abs(w.std() - 0.02) < 0.005                              # N(0, 0.02^2)


# ------------------------------------------------------------------ which network each loss reaches
def _setup(seed=0, pool=0):
    mg.manual_seed(seed)
    nets = build_cyclegan(TINY)
    opt_G = Adam([p for k in ("G", "F") for p in nets[k].parameters()], 1e-2, (0.5, 0.999))
    opt_D = Adam([p for k in ("D_X", "D_Y") for p in nets[k].parameters()], 1e-2, (0.5, 0.999))
    rng = np.random.default_rng(seed)
    x, y = (mg.tensor(rng.uniform(-1, 1, (2, 64)).astype(np.float32)) for _ in range(2))
    return nets, opt_G, opt_D, x, y


def _reached(nets, loss):
    for net in nets.values():
        net.zero_grad()
    loss.backward()
    return {name for name, net in nets.items()
            if any(p.grad is not None and np.any(p.grad.numpy() != 0) for p in net.parameters())}


@pytest.mark.parametrize("term, reached", [
    ("adv_G", {"G", "D_Y"}), ("adv_F", {"F", "D_X"}),     # D reached unless frozen (the step)
    ("cycle_X", {"G", "F"}), ("cycle_Y", {"G", "F"}),     # a cycle trains both translators
    ("identity_G", {"G"}), ("identity_F", {"F"}),
])
def test_each_generator_term_reaches_its_networks(term, reached):
    nets, _, _, x, y = _setup()
    _, parts, _ = generator_losses(nets, x, y, Weights())
    assert _reached(nets, parts[term]) == reached


def test_each_step_updates_only_its_networks():
    nets, opt_G, opt_D, x, y = _setup()
    generators, discriminators = nn.ModuleList([nets["G"], nets["F"]]), \
        nn.ModuleList([nets["D_X"], nets["D_Y"]])
    fakes = {}

    def g_step():
        fakes.update(generator_step(nets, opt_G, x, y, Weights())[1])

    assert_step_touches(g_step, generators, discriminators)
    assert all(p.requires_grad for p in discriminators.parameters())   # unfrozen afterwards
    assert isinstance(fakes["fake_x"], np.ndarray)                     # arrays: no graph
    assert_step_touches(lambda: discriminator_step(nets, opt_D, x, y, fakes["fake_x"],
                                                   fakes["fake_y"]), discriminators, generators)
    # each discriminator's loss reaches that discriminator only
    from minigen.models.cyclegan import discriminator_losses
    parts = discriminator_losses(nets, x, y, fakes["fake_x"], fakes["fake_y"])
    assert _reached(nets, parts["d_X"]) == {"D_X"} and _reached(nets, parts["d_Y"]) == {"D_Y"}


def test_a_discriminator_step_on_undetached_fakes_is_caught():
    nets, opt_G, opt_D, x, y = _setup()
    generators, discriminators = nn.ModuleList([nets["G"], nets["F"]]), \
        nn.ModuleList([nets["D_X"], nets["D_Y"]])
    from minigen.models.gan import lsgan_d_loss

    def careless_discriminator_step():   # planted: the fakes keep their graph through G and F
        loss = 0.5 * (lsgan_d_loss(nets["D_X"](x), nets["D_X"](nets["F"](y))) +
                      lsgan_d_loss(nets["D_Y"](y), nets["D_Y"](nets["G"](x))))
        opt_D.zero_grad()
        loss.backward()
        opt_D.step()

    with pytest.raises(AssertionError, match="received a gradient"):
        assert_step_touches(careless_discriminator_step, discriminators, generators)


def test_a_generator_step_that_moves_the_discriminators_is_caught():
    nets, _, _, x, y = _setup()
    everything = Adam([p for net in nets.values() for p in net.parameters()], 1e-2)
    generators, discriminators = nn.ModuleList([nets["G"], nets["F"]]), \
        nn.ModuleList([nets["D_X"], nets["D_Y"]])

    def careless_generator_step():       # planted: D not frozen, one optimizer over everything
        everything.zero_grad()
        generator_losses(nets, x, y, Weights())[0].backward()
        everything.step()

    with pytest.raises(AssertionError, match="changed but must not"):
        assert_step_touches(careless_generator_step, generators, discriminators)


# ------------------------------------------------------------------ parity with PyTorch
def _run_twins(steps=4, weights=None, pool=3):
    torch = pytest.importorskip("torch", reason="torch not installed: PyTorch parity not checked")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        twins = torch_twin.Twins(TINY, pool_size=pool, weights=weights)
        rng, worst = np.random.default_rng(0), 0.0
        for _ in range(steps):   # batches of 2 and a pool of 3: the pool is full from step 2 on
            twins.step(rng.uniform(-1, 1, (2, 64)), rng.uniform(-1, 1, (2, 64)))
            worst = max(worst, twins.max_relative_difference())
    finally:
        torch.set_num_threads(threads)
    return worst, twins


def test_steps_equal_the_pytorch_twin():
    worst, twins = _run_twins()
    assert worst <= 1e-9
    assert len(twins.pools["fake_x"]) == 3
    moved = [name for name, diff in twins.relative_differences()]
    assert len(moved) == sum(len(n.state_dict()) for n in twins.nets.values())


def test_the_parity_check_catches_a_planted_difference(monkeypatch):
    # the twin quietly leaves out the identity loss: parity must fail
    real = torch_twin.generator_step
    monkeypatch.setattr(torch_twin, "generator_step",
                        lambda nets, opt, x, y, cycle=10.0, identity=0.5:
                        real(nets, opt, x, y, cycle, 0.0))
    worst, _ = _run_twins(steps=2)
    assert worst > 1e-6
