"""The table of ops the gradient and PyTorch-parity tests run on, with the strategies that
only this table needs (reshape, permute, getitem...).

The general strategies -- shapes, values away from kinks, memory layouts, unary / binary /
reduction / matmul inputs, fixed noise -- are public, in ``minigen.testing``, so students
property-test their own ops with them.

``OP_CASES`` lists every differentiable op with a strategy for its inputs. Each case's
``fn(L, *xs, **kw)`` is written once against a library ``L`` -- ``minigen`` itself, or the
PyTorch shim in ``test_torch_parity.py`` -- so gradient checks and PyTorch parity run on
one table.
"""
from dataclasses import dataclass
from typing import Callable

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minigen.testing import (binary, broadcast_pairs, broadcast_shape_pair, laid_out,
                             matmul_inputs, no_tie_pair, reduction, shapes, unary, values)


def per_op_settings(fraction, at_least):
    """Settings for a test that runs once per op of ``OP_CASES`` (~60 times): ``fraction``
    of the active hypothesis profile's examples (but ``at_least``), so the profile still
    scales the work (ci < dev < thorough) and the file stays within its time budget."""
    return settings(max_examples=max(at_least, round(settings.default.max_examples * fraction)))


# ------------------------------------------------------------------ op table
@dataclass(frozen=True)
class OpCase:
    """One op under test: ``fn(L, *xs, **kw)``. ``inputs`` draws ``(arrays, kw)``: the
    differentiable inputs as float64 arrays (in some layout) and the other arguments."""
    name: str
    fn: Callable
    inputs: st.SearchStrategy

    def __repr__(self):
        return self.name


@st.composite
def where_inputs(draw):
    sa, sb = draw(broadcast_pairs())
    a, b = draw(values(sa)), draw(values(sb))
    out = np.broadcast_shapes(sa, sb)
    cond_shape = out[draw(st.integers(0, len(out))):]  # cond may broadcast too
    cond = draw(hnp.arrays(np.bool_, cond_shape))
    return (draw(laid_out(a)), draw(laid_out(b))), {"cond": cond}


@st.composite
def factor_shape(draw, size):
    """A random shape with ``size`` entries (maybe with a -1 for one dim)."""
    factors, n = [], size
    for p in (2, 3, 5, 7, 11, 13, 17, 19, 23):
        while n % p == 0:
            factors.append(p)
            n //= p
    factors = draw(st.permutations(factors))
    ndim = draw(st.integers(1, 3))
    groups = [1] * ndim
    for f in factors:
        groups[draw(st.integers(0, ndim - 1))] *= f
    if draw(st.booleans()):
        groups[draw(st.integers(0, ndim - 1))] = -1
    return tuple(groups)


@st.composite
def reshape_inputs(draw):
    (x,), _ = draw(unary())
    return (x,), {"shape": draw(factor_shape(x.size))}


@st.composite
def permute_inputs(draw):
    (x,), _ = draw(unary(shape=draw(shapes(min_dims=1))))
    return (x,), {"dims": tuple(draw(st.permutations(range(x.ndim))))}


@st.composite
def transpose_inputs(draw):
    (x,), _ = draw(unary(shape=draw(shapes(min_dims=1))))
    d = st.integers(-x.ndim, x.ndim - 1)
    return (x,), {"dim0": draw(d), "dim1": draw(d)}


@st.composite
def broadcast_to_inputs(draw):
    small, big = draw(broadcast_shape_pair())
    (x,), _ = draw(unary(shape=small))
    return (x,), {"shape": big}


@st.composite
def squeeze_inputs(draw):
    shape = draw(shapes(min_dims=1, max_side=2))   # size 1 is common here
    (x,), _ = draw(unary(shape=shape))
    dim = draw(st.one_of(st.none(), st.integers(-x.ndim, x.ndim - 1)))
    return (x,), {"dim": dim}


@st.composite
def unsqueeze_inputs(draw):
    (x,), _ = draw(unary())
    return (x,), {"dim": draw(st.integers(-x.ndim - 1, x.ndim))}


@st.composite
def join_inputs(draw, stack):
    shape = draw(shapes(min_dims=1, max_size=8))
    count = draw(st.integers(1, 3))
    dim = draw(st.integers(-len(shape) - stack, len(shape) - 1 + stack))
    arrays = []
    for _ in range(count):
        s = list(shape)
        if not stack:
            s[dim] = draw(st.integers(1, 3))
        arrays.append(draw(laid_out(draw(values(tuple(s))))))
    return tuple(arrays), {"dim": dim}


@st.composite
def split_inputs(draw, chunk):
    (x,), _ = draw(unary(shape=draw(shapes(min_dims=1))))
    dim = draw(st.integers(-x.ndim, x.ndim - 1))
    n = x.shape[dim]
    if chunk:
        return (x,), {"chunks": draw(st.integers(1, n + 1)), "dim": dim}
    if draw(st.booleans()):
        sizes = draw(st.integers(1, n))
    else:
        cuts = sorted(draw(st.lists(st.integers(1, n - 1), max_size=2, unique=True))) if n > 1 \
            else []
        bounds = [0] + cuts + [n]
        sizes = [hi - lo for lo, hi in zip(bounds, bounds[1:])]
    return (x,), {"split_size_or_sections": sizes, "dim": dim}


@st.composite
def pad_inputs(draw):
    (x,), _ = draw(unary(shape=draw(shapes(min_dims=1, max_size=8))))
    pairs = draw(st.integers(1, x.ndim))
    pad = tuple(draw(st.integers(0, 2)) for _ in range(2 * pairs))
    return (x,), {"pad": pad, "value": draw(st.sampled_from([0.0, -1.5]))}


@st.composite
def flatten_inputs(draw):
    (x,), _ = draw(unary(shape=draw(shapes(min_dims=1))))
    s = draw(st.integers(0, x.ndim - 1))
    e = draw(st.integers(s, x.ndim - 1))
    # express either end as a negative dim sometimes
    s = s - x.ndim if draw(st.booleans()) else s
    e = e - x.ndim if draw(st.booleans()) else e
    return (x,), {"start_dim": s, "end_dim": e}


@st.composite
def basic_index(draw, shape):
    """A basic index: per leading dim an int or a slice (steps may be negative), maybe a
    None (new axis) and a trailing Ellipsis."""
    parts = []
    for n in shape[:draw(st.integers(0, len(shape)))]:
        if draw(st.booleans()):
            parts.append(draw(st.integers(-n, n - 1)))
        else:
            bound = st.one_of(st.none(), st.integers(-n - 1, n + 1))
            step = draw(st.one_of(st.none(), st.sampled_from([1, 2, -1, -2])))
            parts.append(slice(draw(bound), draw(bound), step))
    if draw(st.booleans()):
        parts.insert(draw(st.integers(0, len(parts))), None)
    if draw(st.booleans()):
        parts.append(Ellipsis)
    return tuple(parts)


@st.composite
def getitem_inputs(draw, form):
    (x,), _ = draw(unary(shape=draw(shapes(min_dims=1))))
    if form == "basic":
        index = draw(basic_index(x.shape))
    elif form == "int_array":  # repeated indices are likely: their gradients must add up
        n = x.shape[0]
        rows = np.array(draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=6)))
        if x.ndim > 1 and draw(st.booleans()):
            m = x.shape[1]
            cols = np.array(draw(st.lists(st.integers(0, m - 1), min_size=len(rows),
                                          max_size=len(rows))))
            index = (rows, cols)
        elif x.ndim > 1 and draw(st.booleans()):
            index = (slice(None), np.array(draw(st.lists(st.integers(0, x.shape[1] - 1),
                                                         min_size=1, max_size=4))))
        else:
            index = rows
    else:  # boolean mask over the leading dims
        k = draw(st.integers(1, x.ndim))
        index = draw(hnp.arrays(np.bool_, x.shape[:k]))
    return (x,), {"index": index}


def _cat(L, *xs, dim):
    return L.cat(list(xs), dim=dim)


def _stack(L, *xs, dim):
    return L.stack(list(xs), dim=dim)


def _where(L, a, b, cond):
    return L.where(cond, a, b)


def _getitem(L, x, index):  # L.getitem, not x[index]: PyTorch's shim must rewrite the index
    return L.getitem(x, index)


_ps = st.sampled_from
OP_CASES = [
    # ---------------------------------------------------------- elementwise arithmetic
    OpCase("add", lambda L, a, b: a + b, binary()),
    OpCase("sub", lambda L, a, b: a - b, binary()),
    OpCase("mul", lambda L, a, b: a * b, binary()),
    OpCase("div", lambda L, a, b: a / b, binary("smooth", "nonzero")),
    OpCase("rsub_scalar", lambda L, x: 2.5 - x, unary()),
    OpCase("rdiv_scalar", lambda L, x: 1.5 / x, unary("nonzero")),
    OpCase("pow_int", lambda L, x, p: x ** p, unary("nonzero", p=_ps([0, 1, 2, 3, -1, -2]))),
    OpCase("pow_frac", lambda L, x, p: x ** p, unary("positive", p=_ps([0.5, -0.5, 1.5, 2.5]))),
    OpCase("pow_tensor", lambda L, a, b: a ** b, binary("positive", "smooth")),
    OpCase("rpow_scalar", lambda L, x, base: base ** x, unary(base=_ps([2, 0.5, 3.7]))),
    OpCase("neg", lambda L, x: L.neg(x), unary()),
    OpCase("neg_operator", lambda L, x: -x, unary()),
    OpCase("exp", lambda L, x: L.exp(x), unary()),
    OpCase("log", lambda L, x: L.log(x), unary("positive")),
    OpCase("log1p", lambda L, x: L.log1p(x), unary("above_minus_one")),
    OpCase("sqrt", lambda L, x: L.sqrt(x), unary("positive")),
    OpCase("abs", lambda L, x: L.abs(x), unary("nonzero")),
    OpCase("clamp", lambda L, x, bounds: L.clamp(x, *bounds),
           unary("unclamped", bounds=_ps([(-0.5, 0.5), (None, 0.5), (-0.5, None)]))),
    OpCase("maximum", lambda L, a, b: L.maximum(a, b), no_tie_pair()),
    OpCase("minimum", lambda L, a, b: L.minimum(a, b), no_tie_pair()),
    OpCase("where", _where, where_inputs()),
    # ---------------------------------------------------------- activations
    OpCase("sigmoid", lambda L, x: L.sigmoid(x), unary()),
    OpCase("tanh", lambda L, x: L.tanh(x), unary()),
    OpCase("relu", lambda L, x: L.relu(x), unary("nonzero")),
    OpCase("leaky_relu", lambda L, x, s: L.leaky_relu(x, negative_slope=s),
           unary("nonzero", s=_ps([0.01, 0.2]))),
    OpCase("softplus", lambda L, x: L.softplus(x), unary()),
    OpCase("elu", lambda L, x, alpha: L.elu(x, alpha=alpha),
           unary("nonzero", alpha=_ps([1.0, 0.5]))),
    # ---------------------------------------------------------- reductions and softmax
    OpCase("sum", lambda L, x, dim, keepdim: L.sum(x, dim=dim, keepdim=keepdim),
           reduction()),
    OpCase("mean", lambda L, x, dim, keepdim: L.mean(x, dim=dim, keepdim=keepdim),
           reduction()),
    OpCase("var", lambda L, x, dim, keepdim, unbiased:
           L.var(x, dim=dim, unbiased=unbiased, keepdim=keepdim),
           reduction(min_count=2, unbiased=True)),
    OpCase("std", lambda L, x, dim, keepdim, unbiased:
           L.std(x, dim=dim, unbiased=unbiased, keepdim=keepdim),
           reduction("distinct", min_count=2, unbiased=True)),
    OpCase("max", lambda L, x, dim, keepdim: L.amax(x, dim=dim, keepdim=keepdim),
           reduction("distinct")),
    OpCase("min", lambda L, x, dim, keepdim: L.amin(x, dim=dim, keepdim=keepdim),
           reduction("distinct")),
    OpCase("logsumexp", lambda L, x, dim, keepdim: L.logsumexp(x, dim=dim, keepdim=keepdim),
           reduction()),
    OpCase("softmax", lambda L, x, dim: L.softmax(x, dim=dim),
           reduction(single=True, keepdim=False)),
    OpCase("log_softmax", lambda L, x, dim: L.log_softmax(x, dim=dim),
           reduction(single=True, keepdim=False)),
    # ---------------------------------------------------------- linear algebra
    OpCase("matmul_2d", lambda L, a, b: a @ b, matmul_inputs("2d")),
    OpCase("matmul_batched", lambda L, a, b: L.matmul(a, b), matmul_inputs("batched")),
    OpCase("matmul_1d@2d", lambda L, a, b: a @ b, matmul_inputs("1d@2d")),
    OpCase("matmul_2d@1d", lambda L, a, b: a @ b, matmul_inputs("2d@1d")),
    OpCase("matmul_1d@1d", lambda L, a, b: a @ b, matmul_inputs("1d@1d")),
    OpCase("outer", lambda L, a, b: L.outer(a, b), matmul_inputs("outer")),
    # ---------------------------------------------------------- shape ops
    OpCase("reshape", lambda L, x, shape: x.reshape(shape), reshape_inputs()),
    OpCase("permute", lambda L, x, dims: x.permute(*dims), permute_inputs()),
    OpCase("transpose", lambda L, x, dim0, dim1: x.transpose(dim0, dim1), transpose_inputs()),
    OpCase("broadcast_to", lambda L, x, shape: x.broadcast_to(shape), broadcast_to_inputs()),
    OpCase("squeeze", lambda L, x, dim: x.squeeze() if dim is None else x.squeeze(dim),
           squeeze_inputs()),
    OpCase("unsqueeze", lambda L, x, dim: x.unsqueeze(dim), unsqueeze_inputs()),
    OpCase("cat", _cat, join_inputs(stack=False)),
    OpCase("stack", _stack, join_inputs(stack=True)),
    OpCase("split", lambda L, x, split_size_or_sections, dim:
           L.split(x, split_size_or_sections, dim=dim), split_inputs(chunk=False)),
    OpCase("chunk", lambda L, x, chunks, dim: L.chunk(x, chunks, dim=dim),
           split_inputs(chunk=True)),
    OpCase("pad", lambda L, x, pad, value: L.pad(x, pad, value=value), pad_inputs()),
    OpCase("flatten", lambda L, x, start_dim, end_dim: x.flatten(start_dim, end_dim),
           flatten_inputs()),
    OpCase("getitem_basic", _getitem, getitem_inputs("basic")),
    OpCase("getitem_int_array", _getitem, getitem_inputs("int_array")),
    OpCase("getitem_mask", _getitem, getitem_inputs("mask")),
    OpCase("astype", lambda L, x: L.astype(x, "float64"), unary()),
]
