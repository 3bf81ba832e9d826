"""The autograd machinery itself: accumulation, modes, errors, higher-order gradients."""
import numpy as np
import pytest

import minigen as mg


def f64(*shape, grad=True):
    return mg.randn(*shape, dtype="float64", requires_grad=grad)


def test_gradient_accumulates_over_paths_and_calls():
    x = f64(3)
    y = (x * x + x).sum()          # dy/dx = 2x + 1, reached along two paths
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy() + 1)
    (x * 3).sum().backward()        # a second backward adds to .grad, as torch
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy() + 4)


def test_no_grad_records_nothing():
    x = f64(2)
    with mg.no_grad():
        y = x * 2
    assert not y.requires_grad and y.is_leaf
    with mg.no_grad():
        with mg.enable_grad():
            assert (x * 2).requires_grad


def test_detach_cuts_the_graph():
    x = f64(2)
    y = (x.detach() * x).sum()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), x.numpy())


def test_backward_twice_on_freed_graph_raises():
    x = f64(2)
    y = (x.exp() * 2).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()
    z = (x.exp() * 2).sum()
    z.backward(retain_graph=True)
    z.backward()  # allowed: the graph was kept


def test_backward_on_non_scalar_needs_grad():
    x = f64(2, 3)
    with pytest.raises(RuntimeError, match="not a scalar"):
        (x * 2).backward()
    (x * 2).backward(mg.ones(2, 3, dtype="float64"))
    np.testing.assert_allclose(x.grad.numpy(), 2.0)


def test_shape_mismatch_names_op_and_shapes():
    with pytest.raises(ValueError, match=r"add: shapes \(2, 3\) and \(4,\)"):
        mg.zeros(2, 3) + mg.zeros(4)
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\)"):
        mg.zeros(2, 3) @ mg.zeros(4, 5)


def test_mixing_float_dtypes_is_an_error():
    with pytest.raises(TypeError, match="mul: dtypes differ"):
        mg.zeros(2) * mg.zeros(2, dtype="float64")


def test_python_scalars_keep_float32():
    x = mg.ones(3)
    assert (x * 2.5 + 1).dtype == np.float32
    assert (2.0 ** x).dtype == np.float32
    assert x.sum().dtype == np.float32


def test_anomaly_mode_names_the_op():
    x = mg.tensor([-1.0, 1.0], requires_grad=True)
    with mg.detect_anomaly():
        with pytest.raises(FloatingPointError, match="Log .forward. produced nan"):
            with np.errstate(invalid="ignore"):
                x.log()
    y = mg.tensor([0.0, 1.0], requires_grad=True)
    with mg.detect_anomaly():
        z = y.sqrt().sum()          # forward is finite; d sqrt at 0 is inf
        with pytest.raises(FloatingPointError, match="Sqrt .backward. produced inf"):
            with np.errstate(divide="ignore"):
                z.backward()


def test_grad_of_grad():
    x = f64(4)
    y = (x ** 3).sum()
    (g,) = mg.grad(y, [x], create_graph=True)       # 3x^2
    np.testing.assert_allclose(g.numpy(), 3 * x.numpy() ** 2)
    (gg,) = mg.grad(g.sum(), [x])                    # 6x
    np.testing.assert_allclose(gg.numpy(), 6 * x.numpy())
    assert x.grad is None  # grad() returns, it does not accumulate


def test_grad_unused_input():
    x, y = f64(2), f64(2)
    with pytest.raises(RuntimeError, match="not used"):
        mg.grad((x * 2).sum(), [x, y])
    gx, gy = mg.grad((x * 2).sum(), [x, y], allow_unused=True)
    assert gy is None and np.allclose(gx.numpy(), 2)


def test_retain_grad_on_intermediate():
    x = f64(3)
    h = (x * 2).retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), 2 * h.numpy())


def test_only_float_tensors_require_grad():
    with pytest.raises(TypeError, match="floating-point"):
        mg.tensor([1, 2], requires_grad=True)


class _WrongSquare(mg.Function):
    """x^2 with a planted bug: the backward forgets the factor 2."""

    def forward(self, x):
        return x * x

    def backward(self, g):
        return g * self.inputs[0]


class _RightSquare(_WrongSquare):
    def backward(self, g):
        return g * 2 * self.inputs[0]


def test_gradcheck_catches_a_wrong_backward():
    x = f64(3, 2)
    with pytest.raises(mg.GradcheckError, match=r"analytic .*\n.*numerical"):
        mg.gradcheck(_WrongSquare.apply, [x])
    assert mg.gradcheck(_WrongSquare.apply, [x], raise_exception=False) is False
    assert mg.gradcheck(_WrongSquare.apply, [x], fast_mode=True, raise_exception=False) is False
    assert mg.gradcheck(_RightSquare.apply, [x])
    assert mg.gradcheck(_RightSquare.apply, [x], fast_mode=True)


def test_gradgradcheck_catches_a_non_differentiable_backward():
    class DetachedBackward(mg.Function):
        """Right first derivative, but computed on raw arrays: the second derivative is lost."""

        def forward(self, x):
            return x ** 3

        def backward(self, g):
            return g * mg.Tensor(3 * self.inputs[0].data ** 2)

    x = f64(3)
    assert mg.gradcheck(DetachedBackward.apply, [x])
    with pytest.raises(mg.GradcheckError):
        mg.gradgradcheck(DetachedBackward.apply, [x])


def test_gradcheck_refuses_float32():
    with pytest.raises(TypeError, match="float64"):
        mg.gradcheck(lambda a: a * 2, [mg.randn(2, requires_grad=True)])


def test_numerical_grad_matches_known_derivative():
    x = f64(5)
    (num,) = mg.numerical_grad(lambda a: a.tanh(), [x])
    np.testing.assert_allclose(num, 1 - np.tanh(x.numpy()) ** 2, rtol=1e-6)


def test_seeded_creation_is_repeatable():
    mg.manual_seed(3)
    a = mg.randn(4)
    mg.manual_seed(3)
    np.testing.assert_array_equal(a.numpy(), mg.randn(4).numpy())
    assert a.dtype == np.float32 and mg.randn(2, dtype="float64").dtype == np.float64
