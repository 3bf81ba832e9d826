"""Every op's gradient against finite differences, and its gradient's gradient.

The op table and the input strategies are in ``strategies.py``: each op gets float64
inputs away from its kinks, in contiguous, transposed, reversed and strided layouts.
Then the conventions *at* the kinks (ties, bounds, zero) are pinned down by exact values,
and the stable formulas are checked where naive ones overflow.
"""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigen as mg
from minigen.testing import TOL, as_inputs, distinct_values, lay_out, shapes
from strategies import OP_CASES, per_op_settings


def _f(case, kw):
    return lambda *ts: case.fn(mg, *ts, **kw)


@pytest.mark.parametrize("case", OP_CASES, ids=str)
@per_op_settings(0.4, at_least=10)
@given(data=st.data())
def test_gradcheck(case, data):
    arrays, kw = data.draw(case.inputs, label="inputs")
    before = [a.copy() for a in arrays]
    assert mg.gradcheck(_f(case, kw), as_inputs(arrays), **TOL)
    for a, b in zip(arrays, before):  # gradcheck puts every perturbed entry back
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("case", OP_CASES, ids=str)
@per_op_settings(0.2, at_least=5)  # each example: a full Jacobian of a backward pass
@given(data=st.data())
def test_gradgradcheck(case, data):
    arrays, kw = data.draw(case.inputs, label="inputs")
    assert mg.gradgradcheck(_f(case, kw), as_inputs(arrays), **TOL)


@pytest.mark.parametrize("layout", ["transposed", "reversed", "strided"])
def test_strided_layouts_are_views(layout):
    """The layouts really exercise non-contiguous memory (else the above proves less)."""
    a = np.arange(12.0).reshape(3, 4)
    v = lay_out(a, layout)
    np.testing.assert_array_equal(v, a)
    assert not v.flags.c_contiguous and v.base is not None


# ------------------------------------------------------------------ rules at the kinks
def _grad(f, x):
    x = mg.tensor(x, dtype="float64", requires_grad=True)
    f(x).backward()
    return x.grad.numpy()


def test_max_min_ties_share_the_gradient_equally():
    x = [1.0, 3.0, 3.0, 2.0]
    np.testing.assert_array_equal(_grad(lambda t: t.max(), x), [0, 0.5, 0.5, 0])
    np.testing.assert_array_equal(_grad(lambda t: t.min(), [2.0, 1.0, 5.0, 1.0]),
                                  [0, 0.5, 0, 0.5])
    three_way = [[4.0, 4.0, 4.0], [0.0, 1.0, 1.0]]
    weights = mg.tensor([1.0, 6.0], dtype="float64")
    np.testing.assert_allclose(_grad(lambda t: (t.amax(dim=1) * weights).sum(), three_way),
                               [[1 / 3, 1 / 3, 1 / 3], [0, 3, 3]], rtol=1e-15)
    np.testing.assert_array_equal(
        _grad(lambda t: t.amax(dim=0, keepdim=True).sum(), [[1.0, 7.0], [1.0, 2.0]]),
        [[0.5, 1.0], [0.5, 0.0]])
    np.testing.assert_array_equal(_grad(lambda t: t.amax(dim=(0, 1)), [[2.0, 1.0], [2.0, 2.0]]),
                                  [[1 / 3, 0], [1 / 3, 1 / 3]])
    # max(dim) picks one index (the first of a tie) and gives it the whole gradient
    np.testing.assert_array_equal(
        _grad(lambda t: (t.max(dim=1).values * weights).sum(), three_way), [[1, 0, 0], [0, 6, 0]])


def test_elementwise_ties_and_kinks_follow_torch():
    # maximum/minimum: half the gradient to each side of a tie
    a = mg.tensor([1.0, 2.0, 3.0], dtype="float64", requires_grad=True)
    b = mg.tensor([1.0, 5.0, 0.0], dtype="float64", requires_grad=True)
    (mg.maximum(a, b) + 10 * mg.minimum(a, b)).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [5.5, 10, 1])
    np.testing.assert_array_equal(b.grad.numpy(), [5.5, 1, 10])
    # clamp passes the gradient at its bounds; relu'(0) = abs'(0) = 0
    np.testing.assert_array_equal(_grad(lambda t: t.clamp(-1, 1).sum(), [-1.0, 1.0, 2.0, -3.0]),
                                  [1, 1, 0, 0])
    np.testing.assert_array_equal(_grad(lambda t: t.relu().sum(), [0.0, 1.0]), [0, 1])
    np.testing.assert_array_equal(_grad(lambda t: t.abs().sum(), [0.0, -2.0]), [0, -1])


def test_repeated_integer_indices_accumulate():
    g = _grad(lambda t: (t[[0, 0, 2, 0]] * mg.tensor([1.0, 2.0, 3.0, 4.0], dtype="float64")).sum(),
              [10.0, 20.0, 30.0])
    np.testing.assert_array_equal(g, [7, 0, 3])
    g = _grad(lambda t: t[[1, 1], [0, 0]].sum(), [[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(g, [[0, 0], [2, 0]])


def test_boolean_mask_gradient():
    x = np.array([[1.0, -2.0], [3.0, -4.0]])
    np.testing.assert_array_equal(_grad(lambda t: (t[t > 0] ** 2).sum(), x), [[2, 0], [6, 0]])


def test_astype_gradient_returns_in_the_input_dtype():
    x = mg.tensor([1.5, -2.0], dtype="float64", requires_grad=True)
    y = mg.astype(x, "float32")
    assert y.dtype == np.float32
    (y * mg.tensor([2.0, 3.0])).sum().backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_array_equal(x.grad.numpy(), [2, 3])


def test_pow_with_array_exponent():
    """A NumPy array exponent is a constant like a Python number, elementwise."""
    x = mg.tensor([1.5, 2.0, 3.0], dtype="float64", requires_grad=True)
    p = np.array([0.0, 1.0, 2.5])
    y = x ** p
    np.testing.assert_allclose(y.numpy(), x.numpy() ** p, rtol=1e-15)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), p * x.numpy() ** (p - 1), rtol=1e-15)
    assert mg.gradgradcheck(lambda t: t ** p, [x], **TOL)


# ------------------------------------------------------------------ numerical stability
BIG = [-1000.0, -30.0, 0.0, 30.0, 1000.0]


def _exact_sigmoid(v):
    return 1 / (1 + math.exp(-v)) if v >= 0 else math.exp(v) / (1 + math.exp(v))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_sigmoid_is_accurate_in_both_tails(dtype):
    x = mg.tensor(BIG + [-40.0, -80.0, -700.0], dtype=dtype, requires_grad=True)
    s = mg.sigmoid(x)
    want = np.array([_exact_sigmoid(v) for v in x.numpy().astype(float)])
    want = want.astype(dtype)  # 1e-305 is 0 in float32
    rtol = 1e-15 if dtype == "float64" else 1e-6
    np.testing.assert_allclose(s.numpy(), want, rtol=rtol, atol=0)  # relative, even at 1e-300
    s.sum().backward()
    g, v = x.grad.numpy(), x.numpy().astype(float)
    exact = np.array([math.exp(-abs(t)) / (1 + math.exp(-abs(t))) ** 2 for t in v]).astype(dtype)
    left = v <= 0  # sigma' = sigma (1 - sigma): relative accuracy where sigma is tiny ...
    np.testing.assert_allclose(g[left], exact[left], rtol=rtol, atol=0)
    # ... and absolute accuracy where 1 - sigma cancels (PyTorch's formula does the same)
    np.testing.assert_allclose(g[~left], exact[~left], rtol=0, atol=np.finfo(dtype).eps)


def test_softplus_is_stable():
    x = mg.tensor(BIG, dtype="float64", requires_grad=True)
    y = mg.softplus(x)
    want = [math.log1p(math.exp(v)) if v < 30 else v + math.log1p(math.exp(-v)) for v in BIG]
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-15)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [_exact_sigmoid(v) for v in BIG], rtol=1e-15)


def test_log_softmax_and_logsumexp_are_stable():
    x = mg.tensor([[1000.0, 0.0, -1000.0], [-1000.0, -1000.0, -1000.0]], dtype="float64",
                  requires_grad=True)
    ls = mg.log_softmax(x, dim=1)
    np.testing.assert_allclose(ls.numpy(), [[0, -1000, -2000], [-math.log(3)] * 3], rtol=1e-15)
    lse = mg.logsumexp(x, dim=1)
    np.testing.assert_allclose(lse.numpy(), [1000, -1000 + math.log(3)], rtol=1e-15)
    sm = mg.softmax(x, dim=1)
    np.testing.assert_allclose(sm.numpy(), [[1, 0, 0], [1 / 3] * 3], rtol=1e-15)
    (ls[:, 0].sum() + lse.sum() + sm[:, 1].sum()).backward()
    g = x.grad.numpy()
    assert np.isfinite(g).all()
    # d log_softmax_0 = e0 - p ; d lse = p ; d softmax_1 = p1 (e1 - p). Entries of size
    # 1000 are themselves only known to ulp(1000) = 1.1e-13, which bounds the accuracy of
    # anything computed from x - lse (torch's formula too).
    p = np.array([[1, 0, 0], [1 / 3] * 3])
    want = (np.eye(3)[0] - p) + p + p[:, 1:2] * (np.eye(3)[1] - p)
    np.testing.assert_allclose(g, want, rtol=0, atol=4 * np.spacing(1000.0))


def test_logsumexp_of_all_minus_infinity():
    x = mg.tensor([-np.inf, -np.inf], dtype="float64")
    with np.errstate(divide="ignore"):  # log(0) = -inf is the right answer here
        assert mg.logsumexp(x).item() == -np.inf


@given(shape=shapes(min_dims=1), data=st.data())
def test_max_min_forward_match_numpy(shape, data):
    x = data.draw(distinct_values(shape))
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    values, indices = mg.tensor(x).max(dim=dim)
    np.testing.assert_array_equal(values.numpy(), x.max(axis=dim))
    np.testing.assert_array_equal(indices.numpy(), x.argmax(axis=dim))
    np.testing.assert_array_equal(mg.tensor(x).min(dim=dim, keepdim=True).values.numpy(),
                                  x.min(axis=dim, keepdims=True))
