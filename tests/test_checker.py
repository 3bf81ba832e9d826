"""The checker a student meets: malformed backward results fail at the engine with the op and
the input named, and gradcheck / gradgradcheck catch planted bugs in three hand-written ops
(softsign, a one-Function layer norm, Gumbel-softmax with fixed noise), each by the right
check, with messages that name the op, the input by role and the entry."""
import numpy as np
import pytest

import minigen as mg
from minigen import Tensor


def f64(*shape, seed=0, scale=1.0, requires_grad=True):
    rng = np.random.default_rng(seed)
    return mg.tensor(scale * rng.standard_normal(shape), dtype="float64",
                     requires_grad=requires_grad)


# ================================================================== malformed backward results
class Scale2(mg.Function):
    """y = 2 a + b (two inputs); ``result`` says what backward returns."""
    result = None

    def forward(self, a, b):
        return 2 * a + b

    def backward(self, g):
        return type(self).result(self, g)


def _backward_with(result):
    a, b = f64(3), f64(3, seed=1)
    op = type("Scale2", (Scale2,), {"result": staticmethod(result)})
    op.apply(a, b).sum().backward()


@pytest.mark.parametrize("result, pattern", [
    (lambda fn, g: [g * 2, g], r"Scale2\.backward returned a list of 2 for 2 inputs \(input 0 "
                               r"\(a\), input 1 \(b\)\); return a tuple"),
    (lambda fn, g: (g * 2,), r"Scale2\.backward returned 1 gradient for 2 inputs"),
    (lambda fn, g: (g * 2, g, g), r"Scale2\.backward returned 3 gradients for 2 inputs"),
    (lambda fn, g: (g.data * 2, g), r"gradient for input 0 \(a\) is a numpy\.ndarray, not a "
                                    r"Tensor; build it with Tensor operations"),
    (lambda fn, g: (g * 2, g.to(dtype="float32")),
     r"gradient for input 1 \(b\) is float32, but the input is float64"),
    (lambda fn, g: (g * 2, g.sum()), r"gradient for input 1 \(b\) has shape \(\), but the "
                                     r"input has shape \(3,\)"),
    (lambda fn, g: g * 2, r"Scale2\.backward returned a single Tensor for 2 inputs .*; return a tuple"),
])
def test_malformed_backward_names_the_op_and_the_input(result, pattern):
    with pytest.raises(mg.BackwardError, match=pattern) as info:
        _backward_with(result)
    assert info.value.op == "Scale2"


def test_backward_error_says_to_unbroadcast():
    with pytest.raises(mg.BackwardError, match="unbroadcast") as info:
        _backward_with(lambda fn, g: (g * 2, g.reshape(1, 3) + Tensor(np.zeros((2, 3)))))
    assert info.value.input_index == 1


@pytest.mark.parametrize("value, kind", [(2.0, "a float"), (np.ones(3), "a numpy.ndarray")])
def test_apply_refuses_a_positional_non_tensor(value, kind):
    with pytest.raises(TypeError, match=rf"Scale2\.apply: input 1 is {kind}, not a Tensor\. "
                                        r".*keywords"):
        Scale2.apply(f64(3), value)


# ================================================================== three ops, seven bugs
class Softsign(mg.Function):
    """y = x / (1 + |x|);  dy/dx = 1 / (1 + |x|)^2."""

    def forward(self, x):
        return x / (1 + np.abs(x))

    def backward(self, g):
        x, = self.inputs
        return g / (1 + x.abs()) ** 2


class SoftsignNoSquare(Softsign):          # bug 1: a dropped square
    def backward(self, g):
        x, = self.inputs
        return g / (1 + x.abs())


class SoftsignRawArrays(Softsign):         # bug 2: right values, built on raw arrays
    def backward(self, g):
        x, = self.inputs
        return g * Tensor(1 / (1 + np.abs(x.data)) ** 2)


class LayerNorm(mg.Function):
    """y = (x - mean) / sqrt(var + eps) over the last axis, as one Function:
    dx = (g - mean(g) - y mean(g y)) / sqrt(var + eps)."""
    eps_factor = 1.0

    def forward(self, x, eps=1e-5):
        self.eps = eps
        self.sigma = np.sqrt(x.var(axis=-1, keepdims=True) + eps)
        self.xhat = (x - x.mean(axis=-1, keepdims=True)) / self.sigma
        return self.xhat

    def _parts(self):
        x, = self.inputs
        centred = x - x.mean(dim=-1, keepdim=True)
        sigma = ((centred * centred).mean(dim=-1, keepdim=True) + self.eps * self.eps_factor).sqrt()
        return centred / sigma, sigma

    def backward(self, g):
        y, sigma = self._parts()
        return (g - g.mean(dim=-1, keepdim=True)
                - y * (g * y).mean(dim=-1, keepdim=True)) / sigma


class LayerNormEps3(LayerNorm):            # bug 3: epsilon three times too big in backward
    eps_factor = 3.0


class LayerNormDroppedTerm(LayerNorm):     # bug 4: the y mean(g y) term dropped
    def backward(self, g):
        _, sigma = self._parts()
        return (g - g.mean(dim=-1, keepdim=True)) / sigma


class LayerNormRawArrays(LayerNorm):       # bug 5: y and sigma from forward's arrays
    def backward(self, g):
        y, sigma = Tensor(self.xhat), Tensor(self.sigma)
        return (g - g.mean(dim=-1, keepdim=True)
                - y * (g * y).mean(dim=-1, keepdim=True)) / sigma


class GumbelSoftmax(mg.Function):
    """y = softmax((logits + noise) / tau) with the Gumbel noise fixed (an input that needs no
    gradient): dlogits = y (g - <g, y>) / tau."""

    def forward(self, logits, noise, tau=0.5):
        self.tau = tau
        z = (logits + noise) / tau
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    def backward(self, g):
        y = self.output
        return y * (g - (g * y).sum(dim=-1, keepdim=True)) / self.tau, None


class GumbelNoTau(GumbelSoftmax):          # bug 6: the 1/tau forgotten
    def backward(self, g):
        y = self.output
        return y * (g - (g * y).sum(dim=-1, keepdim=True)), None


class GumbelDetached(GumbelSoftmax):       # bug 7: y detached from the graph
    def backward(self, g):
        y = Tensor(self.output.data)
        return y * (g - (g * y).sum(dim=-1, keepdim=True)) / self.tau, None


def _gumbel_noise(shape, seed=3):
    u = np.random.default_rng(seed).uniform(1e-3, 1 - 1e-3, shape)
    return mg.tensor(-np.log(-np.log(u)), dtype="float64")


# (op, its inputs, the check that must catch it: 1 = gradcheck, 2 = only gradgradcheck)
SCENARIO = {
    "softsign: dropped square": (SoftsignNoSquare, lambda: [f64(3, 4)], 1),
    "softsign: raw arrays": (SoftsignRawArrays, lambda: [f64(3, 4)], 2),
    # rows with variance ~4: eps = 1e-5 three times over moves the derivative by ~1e-5
    "layer norm: eps x3": (LayerNormEps3, lambda: [f64(2, 5, scale=2.0)], 1),
    "layer norm: dropped term": (LayerNormDroppedTerm, lambda: [f64(2, 5)], 1),
    "layer norm: raw arrays": (LayerNormRawArrays, lambda: [f64(2, 5)], 2),
    "gumbel: no 1/tau": (GumbelNoTau, lambda: [f64(2, 4), _gumbel_noise((2, 4))], 1),
    "gumbel: detached y": (GumbelDetached, lambda: [f64(2, 4), _gumbel_noise((2, 4))], 2),
}
CORRECT = {"softsign": (Softsign, lambda: [f64(3, 4)]),
           "layer norm": (LayerNorm, lambda: [f64(2, 5, scale=2.0)]),
           "gumbel": (GumbelSoftmax, lambda: [f64(2, 4), _gumbel_noise((2, 4))])}


@pytest.mark.parametrize("name", CORRECT)
def test_the_correct_ops_pass_both_checks(name):
    op, inputs = CORRECT[name]
    assert mg.gradcheck(op.apply, inputs()) and mg.gradgradcheck(op.apply, inputs())


@pytest.mark.parametrize("bug", SCENARIO)
def test_each_planted_bug_is_caught_by_the_right_check(bug):
    op, inputs, order = SCENARIO[bug]
    if order == 1:
        with pytest.raises(mg.GradcheckError) as info:
            mg.gradcheck(op.apply, inputs())
        assert info.value.check == "gradcheck"
    else:  # a right first derivative: gradcheck passes, only the second-order check fails
        assert mg.gradcheck(op.apply, inputs())
    with pytest.raises(mg.GradcheckError) as info:
        mg.gradgradcheck(op.apply, inputs())
    error = info.value
    assert str(error).startswith("gradgradcheck") and error.check == "gradgradcheck"
    assert error.order == order and error.op == op.__name__
    assert f"failed for {op.__name__} at input 0 (" in str(error)  # the op and the input by role
    assert error.entry is not None and error.analytic != error.numerical


def test_strict_defaults_catch_what_loose_tolerances_pass():
    """The 3x epsilon is invisible at atol 1e-5 / rtol 1e-3 (the old defaults); the defaults
    now are the project's test tolerances."""
    op, inputs, _ = SCENARIO["layer norm: eps x3"]
    assert mg.gradcheck(op.apply, inputs(), atol=1e-5, rtol=1e-3)
    assert not mg.gradcheck(op.apply, inputs(), raise_exception=False)


def test_message_counts_non_zero_entries_and_names_the_entry():
    with pytest.raises(mg.GradcheckError) as info:
        mg.gradcheck(SoftsignNoSquare.apply, [f64(3, 4)])
    message = str(info.value)
    assert "gradcheck failed for SoftsignNoSquare at input 0 (x), shape (3, 4), float64" in message
    assert "entry     d output[0, 0] / d x[0, 0]" in message
    assert "all 12 non-zero entries of d output / d x disagree (144 entries; 132 zero in " \
           "both)" in message
    assert (info.value.n_bad, info.value.n_nonzero, info.value.n_entries) == (12, 12, 144)
    assert info.value.entry == ((0, 0), (0, 0))


def test_a_composed_function_is_named_by_its_ops():
    with pytest.raises(mg.GradcheckError, match=r"failed for loss \(last op Sum; ops "
                                                r"SoftsignNoSquare, Mul, Sum\) at input 0 \(x\),"):
        def loss(x):
            return (SoftsignNoSquare.apply(x) * 3).sum()
        mg.gradcheck(loss, [f64(3)])


def test_backward_nonlinear_in_the_output_gradient_fails_gradcheck():
    """abs(g) equals g on one-hot output gradients: only the random signed one shows it."""
    class AbsGrad(Softsign):
        def backward(self, g):
            x, = self.inputs
            return g.abs() / (1 + x.abs()) ** 2

    with pytest.raises(mg.GradcheckError, match="not linear in the output gradient"):
        mg.gradcheck(AbsGrad.apply, [f64(3, 4)])


def test_gradgradcheck_names_the_output_gradient_by_role():
    class DetachedGrad(Softsign):           # first derivative right; g cut from the graph
        def backward(self, g):
            x, = self.inputs
            return Tensor(g.data) / (1 + x.abs()) ** 2

    x = f64(3)
    assert mg.gradcheck(DetachedGrad.apply, [x])
    with pytest.raises(mg.GradcheckError, match=r"entry     d grad_x\[0\] / d grad_output\[0\]"):
        mg.gradgradcheck(DetachedGrad.apply, [x])


def test_gradcheck_lets_a_malformed_backward_speak_for_itself():
    class ListBackward(Softsign):
        def backward(self, g):
            return [g]

    with pytest.raises(mg.BackwardError, match="ListBackward.backward returned a list of 1 for "
                                               r"1 input \(input 0 \(x\)\)"):
        mg.gradcheck(ListBackward.apply, [f64(3)])
