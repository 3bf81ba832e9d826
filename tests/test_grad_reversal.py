"""The gradient reversal layer (Ganin & Lempitsky 2015) and the DANN built on it: exact values,
the reversed Jacobian against finite differences, second derivatives, the paper's objective
recovered by one backward, planted mistakes caught, and a DANN step equal to a PyTorch twin."""
import math

import numpy as np
import pytest

import minigen as mg
import minigen.nn.functional as F
from minigen import nn
from minigen.gradcheck import GradcheckError, analytic_jacobian, numerical_grad, numerical_jacobian
from minigen.models import dann
from minigen.optim import SGD


def _x(*shape, seed=0):
    rng = np.random.default_rng(seed)
    return mg.tensor(rng.standard_normal(shape), requires_grad=True)


# ------------------------------------------------------------------ the layer itself
def test_forward_is_the_identity_and_backward_multiplies_by_minus_lambda():
    x = mg.tensor(np.array([[1.0, -2.0, 3.0]]), requires_grad=True)
    y = F.grad_reverse(x, 0.25)
    np.testing.assert_array_equal(y.numpy(), x.numpy())
    assert np.shares_memory(y.data, x.data)            # a view, as torch's view_as: no copy
    w = mg.tensor(np.array([[2.0, 4.0, -8.0]]))
    (y * w).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[-0.5, -1.0, 2.0]])   # -lambda * w, exactly
    layer = nn.GradientReversal(lambda_=3.0)
    x.grad = None
    (layer(x) * w).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[-6.0, -12.0, 24.0]])
    layer.lambda_ = 0.0                                  # an annealed lambda starts at 0
    x.grad = None
    (layer(x) * w).sum().backward()
    assert not x.grad.numpy().any()
    assert "lambda_=0.0" in repr(layer)
    with pytest.raises(ValueError, match="lambda_ must be a finite number"):
        F.grad_reverse(x, float("nan"))


@pytest.mark.parametrize("lambda_", [1.0, 0.3, 2.5])
def test_its_jacobian_is_the_numerical_jacobian_of_minus_lambda_x(lambda_):
    # the layer reports the derivative of x -> -lambda x while computing x: checked entry by
    # entry against central differences of the function it claims to differentiate
    x = _x(3, 4)
    (J_reported,) = analytic_jacobian(lambda a: F.grad_reverse(a, lambda_), [x])
    (J_claimed,) = numerical_jacobian(lambda a: -lambda_ * a, [x])
    np.testing.assert_allclose(J_reported, J_claimed, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(J_reported, -lambda_ * np.eye(12))


def test_gradcheck_sees_the_reversal_and_passes_only_when_it_is_honest():
    x = _x(2, 3)
    # lambda = 1: the gradient's sign is reversed on purpose, so finite differences disagree
    with pytest.raises(GradcheckError, match=r"analytic  = -1\b[\s\S]*numerical = 1"):
        mg.gradcheck(lambda a: F.grad_reverse(a, 1.0), [x])
    # lambda = -1: backward multiplies by +1, the layer is an honest identity
    assert mg.gradcheck(lambda a: F.grad_reverse(a, -1.0), [x])


@pytest.mark.parametrize("lambda_", [1.0, 0.7])
def test_gradgradcheck_the_backward_is_differentiable(lambda_):
    x = _x(3, 2)
    # the reversal's backward is deliberately not the derivative of its forward, so the
    # first-order comparison (run first by default) must be skipped: only the backward's own
    # derivative is checked here, against finite differences of the backward
    assert mg.gradgradcheck(lambda a: F.grad_reverse(a, lambda_), [x], first_order=False)
    # with a gradient built through it (create_graph), the reversal is itself a graph node
    (g,) = mg.grad((F.grad_reverse(x, lambda_) ** 3).sum(), x, create_graph=True)
    np.testing.assert_allclose(g.numpy(), -lambda_ * 3 * x.numpy() ** 2, rtol=1e-12)
    (gg,) = mg.grad(g.sum(), x)
    # d/dx of -lambda 3 R(x)^2 = -lambda * 6 R(x) * dR/dx = -lambda * 6 x * (-lambda)
    np.testing.assert_allclose(gg.numpy(), lambda_ ** 2 * 6 * x.numpy(), rtol=1e-12)


def test_a_backward_on_raw_arrays_is_caught_by_gradgradcheck():
    class ArrayReverse(mg.Function):  # planted: the backward leaves the graph
        def forward(self, x):
            return x.copy()

        def backward(self, g):
            return mg.Tensor(-g.data)

    x = _x(2, 2)
    with pytest.raises(GradcheckError):
        mg.gradgradcheck(ArrayReverse.apply, [x], first_order=False)


def _torch_reverse(torch):
    """The gradient reversal layer in torch (it has none built in): the usual few lines."""
    class TorchReverse(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, lambda_):
            ctx.lambda_ = lambda_
            return x.view_as(x)

        @staticmethod
        def backward(ctx, g):
            return g * -ctx.lambda_, None

    return TorchReverse


def test_second_derivatives_through_the_layer_equal_a_torch_twin():
    torch = pytest.importorskip("torch", reason="torch not installed: PyTorch parity not checked")
    TorchReverse = _torch_reverse(torch)
    a = np.random.default_rng(1).standard_normal((4, 3))
    x, tx = mg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    (g,) = mg.grad((F.grad_reverse(x, 0.6).tanh() * x).sum(), x, create_graph=True)
    (gg,) = mg.grad((g * g).sum(), x)
    (tg,) = torch.autograd.grad((TorchReverse.apply(tx, 0.6).tanh() * tx).sum(), tx,
                                create_graph=True)
    (tgg,) = torch.autograd.grad((tg * tg).sum(), tx)
    np.testing.assert_allclose(g.numpy(), tg.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(gg.numpy(), tgg.numpy(), rtol=1e-12)


# ------------------------------------------------------------------ the schedules and the shift
def test_the_papers_schedules():
    assert dann.grl_lambda(0.0) == 0.0
    assert dann.grl_lambda(0.5) == pytest.approx(2 / (1 + math.exp(-5)) - 1, rel=1e-15)
    assert dann.grl_lambda(1.0) == pytest.approx(0.99990920, rel=1e-7)
    assert dann.grl_lambda(1.0, max_value=0.5) == pytest.approx(0.4999546, rel=1e-6)
    assert dann.annealed_lr(0.0) == 0.01
    assert dann.annealed_lr(1.0) == pytest.approx(0.01 / 11 ** 0.75, rel=1e-15)


def test_shifted_domains():
    rng = np.random.default_rng(0)
    x = rng.random((5, 784), dtype=np.float32)
    np.testing.assert_array_equal(dann.shift_images(x, "invert"), 1 - x)
    t = dann.shift_images(x, "texture", seed=3)
    assert t.dtype == np.float32 and t.shape == x.shape and 0 <= t.min() and t.max() <= 1
    np.testing.assert_array_equal(t, dann.shift_images(x, "texture", seed=3))   # deterministic
    background = np.abs(dann.shift_images(np.zeros_like(x), "texture", seed=3))
    np.testing.assert_allclose(t, np.abs(x - background), atol=1e-7)          # |x - b|
    noisy = dann.shift_images(x, "noise", seed=1)
    assert 0 <= noisy.min() and noisy.max() <= 1
    assert 0.2 < np.abs(noisy - x).mean() < 0.4     # N(0, 0.5^2) (E|n| = 0.4), clipped
    r = dann.shift_images(x, "rotate-noise", seed=1)
    assert 0 <= r.min() and r.max() <= 1
    rotated = np.rot90(x.reshape(5, 28, 28), 1, axes=(1, 2)).reshape(5, 784)
    assert np.corrcoef(r.ravel(), rotated.ravel())[0, 1] > 0.5
    with pytest.raises(ValueError, match="shift must be one of"):
        dann.shift_images(x, "blur")


# ------------------------------------------------------------------ the DANN objective
def _tiny_dann(seed=0):
    mg.manual_seed(seed)
    model = dann.DANN(image_shape=(1, 16, 16), channels=(2, 3), hidden=4, num_classes=3)
    return model.to(dtype="float64")


def _batch(seed=0, n=3):
    rng = np.random.default_rng(seed)
    return (mg.tensor(rng.random((n, 256))), mg.tensor(rng.integers(0, 3, n)),
            mg.tensor(rng.random((n, 256))))


def _objective_gradients(model, lambda_, reverse):
    """One backward of the pseudo-objective L_y + L_d(R(f)) (with ``reverse`` as R), and the
    finite-difference gradients of the paper's E = L_y - lambda L_d and of L_d."""
    xs, ys, xt = _batch()
    f_params = list(model.feature_extractor.parameters())[:2]   # the first conv's weight, bias
    d_params = list(model.domain_classifier.parameters())[-2:]
    model.zero_grad()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(F, "grad_reverse", reverse)
        dann.dann_losses(model, xs, ys, xt, lambda_)[0].backward()

    def part(name):
        return lambda *_: dann.dann_losses(model, xs, ys, xt, lambda_)[1][name]

    E = lambda *_: part("label_loss")() - lambda_ * part("domain_loss")()  # noqa: E731
    return ([p.grad.numpy() for p in f_params], numerical_grad(E, f_params),
            [p.grad.numpy() for p in d_params], numerical_grad(part("domain_loss"), d_params))


def test_one_backward_gives_the_features_the_gradient_of_ly_minus_lambda_ld():
    model = _tiny_dann()
    f_got, f_want, d_got, d_want = _objective_gradients(model, 0.7, F.grad_reverse)
    for got, want in zip(f_got, f_want):         # theta_f: d(L_y - lambda L_d), eq. 4
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)
    for got, want in zip(d_got, d_want):         # theta_d: d L_d, its own loss, eq. 6
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)
    assert np.abs(f_got[0]).max() > 1e-4 and np.abs(d_got[0]).max() > 1e-4


def test_a_reversal_with_the_wrong_sign_is_caught():
    def wrong_sign(x, lambda_=1.0):   # planted: the gradient scaled by +lambda, not -lambda
        return F.GradReverse.apply(x, lambda_=-lambda_)

    model = _tiny_dann()
    f_got, f_want, d_got, d_want = _objective_gradients(model, 0.7, wrong_sign)
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(f_got[0], f_want[0], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(d_got[0], d_want[0], rtol=1e-6, atol=1e-9)   # G_d is unaffected


def test_lambda_zero_is_source_only_training_for_the_features():
    model = _tiny_dann()
    xs, ys, xt = _batch()
    model.zero_grad()
    dann.dann_losses(model, xs, ys, xt, 0.0)[0].backward()
    with_domain = [p.grad.numpy().copy() for p in model.feature_extractor.parameters()]
    model.zero_grad()
    dann.dann_losses(model, xs, ys, xt, 0.0)[1]["label_loss"].backward()
    for a, b in zip(with_domain, [p.grad.numpy() for p in model.feature_extractor.parameters()]):
        np.testing.assert_array_equal(a, b)   # the reversed domain gradient is exactly zero


def test_dann_steps_equal_a_torch_twin():
    torch = pytest.importorskip("torch", reason="torch not installed: PyTorch parity not checked")
    from minigen import interop
    Reverse = _torch_reverse(torch)
    tnn = torch.nn

    class Twin(tnn.Module):   # dann.DANN in torch, the same module names
        def __init__(self):
            super().__init__()
            self.feature_extractor = tnn.Sequential(
                tnn.Conv2d(1, 2, 5), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Conv2d(2, 3, 5), tnn.ReLU(),
                tnn.MaxPool2d(2), tnn.Flatten())
            self.label_predictor = tnn.Sequential(tnn.Linear(3 * 16, 4), tnn.ReLU(),
                                                  tnn.Linear(4, 4), tnn.ReLU(), tnn.Linear(4, 3))
            self.domain_classifier = tnn.Sequential(tnn.Linear(3 * 16, 4), tnn.ReLU(),
                                                    tnn.Linear(4, 1))

    def twin_step(twin, opt, xs, ys, xt, lambda_):
        n = len(xs)
        f = twin.feature_extractor(torch.cat([xs, xt]).reshape(-1, 1, 28, 28))
        label = tnn.functional.cross_entropy(twin.label_predictor(f[:n]), ys)
        domain = twin.domain_classifier(Reverse.apply(f, lambda_)).reshape(-1)
        target = torch.cat([torch.zeros(n), torch.ones(len(xt))]).double()
        loss = label + tnn.functional.binary_cross_entropy_with_logits(domain, target)
        opt.zero_grad()
        loss.backward()
        opt.step()

    mg.manual_seed(0)
    model = dann.DANN(channels=(2, 3), hidden=4, num_classes=3).to(dtype="float64")
    twin = Twin().double()
    interop.copy_weights(model, twin)
    initial = {k: v.copy() for k, v in model.state_dict().items()}
    opt, t_opt = SGD(model.parameters(), lr=0.05, momentum=0.9), \
        torch.optim.SGD(twin.parameters(), lr=0.05, momentum=0.9)
    rng = np.random.default_rng(0)
    for step in range(4):
        xs, xt = rng.random((6, 784)), rng.random((6, 784))
        ys = rng.integers(0, 3, 6)
        lam = dann.grl_lambda(step / 4)
        dann.dann_step(model, opt, mg.tensor(xs), mg.tensor(ys), mg.tensor(xt), lam)
        twin_step(twin, t_opt, torch.from_numpy(xs), torch.from_numpy(ys), torch.from_numpy(xt),
                  lam)
    ref = twin.state_dict()
    worst = max(np.abs(a - ref[k].numpy()).max() / np.abs(ref[k].numpy()).max()
                for k, a in model.state_dict().items())
    assert worst <= 1e-9, worst
    for key, value in model.state_dict().items():   # and every part of the network moved
        assert not np.array_equal(value, initial[key]), key
