"""Hypothesis strategies for minigen's gradient tests, and the table of ops they feed.

Three things are drawn here:

* shapes -- small (at most 3 dims, 4 when broadcasting, of sizes 1..4 and at most
  ``MAX_SIZE`` entries), because a
  full gradcheck runs one backward per output entry and two forwards per input entry;
* values -- float64, kept away from every point where an op is not differentiable
  (relu/abs/leaky_relu/elu at 0, max/min ties, clamp bounds, log/sqrt near 0, division by
  near-zero, pow with a negative base), since finite differences across a kink disagree
  with any one-sided derivative and a failure there says nothing about the code;
* layouts -- the same values stored contiguously, transposed, reversed (negative strides)
  or as a strided view of a larger NaN-filled buffer, so an op that silently assumes a
  C-contiguous input (or reads past its view) is caught. ``gradcheck`` perturbs
  ``t.data[index]`` in place, which works on a view.

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

import minigen as mg

MAX_SIZE = 24        # entries per drawn tensor
MARGIN = 0.1         # distance kept from every kink (finite differences use eps = 1e-6)

# Tight tolerances for float64 central differences (error ~ eps^2 f''' + 1e-16 |f| / eps);
# gradcheck's own defaults (atol 1e-5, rtol 1e-3) would hide small mistakes.
TOL = dict(atol=1e-6, rtol=1e-5)


def per_op_settings(fraction, at_least):
    """Settings for a test that runs once per op of ``OP_CASES`` (~60 times): ``fraction``
    of the active hypothesis profile's examples (but ``at_least``), so the profile still
    scales the work (ci < dev < thorough) and the file stays within its time budget."""
    return settings(max_examples=max(at_least, round(settings.default.max_examples * fraction)))


# ------------------------------------------------------------------ shapes
def shapes(min_dims=0, max_dims=3, min_side=1, max_side=4, max_size=MAX_SIZE):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side).filter(lambda s: int(np.prod(s)) <= max_size)


def broadcast_pairs(min_dims=0, max_dims=3, max_side=4):
    """Two shapes that broadcast together: (shape_a, shape_b)."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=2, min_dims=min_dims, max_dims=max_dims, max_side=max_side).filter(
        lambda b: int(np.prod(b.result_shape)) <= MAX_SIZE).map(lambda b: b.input_shapes)


@st.composite
def broadcast_shape_pair(draw, max_dims=4):
    """(small, big): a shape and a shape it broadcasts to. Drawn big first, then small keeps
    its trailing dims with some of them set to 1, so both kinds of broadcasting (new
    leading axes, grown size-1 axes) are common."""
    big = draw(shapes(max_dims=max_dims))
    kept = big[len(big) - draw(st.integers(0, len(big))):]
    return tuple(1 if draw(st.booleans()) else n for n in kept), big


def reduce_dims(ndim):
    """A ``dim=`` argument: None, one int (maybe negative), or a tuple of distinct dims."""
    if ndim == 0:
        return st.just(None)
    one = st.integers(-ndim, ndim - 1)
    several = st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(
        tuple)
    return st.one_of(st.just(None), one, several)


def _axes(dim, ndim):
    if dim is None:
        return tuple(range(ndim))
    return tuple(d % ndim for d in ((dim,) if isinstance(dim, int) else dim))


# ------------------------------------------------------------------ values
def _away_from_zero(lo=MARGIN, hi=2.0):
    return st.one_of(st.floats(-hi, -lo), st.floats(lo, hi))


ELEMENTS = {
    "smooth": st.floats(-3.0, 3.0),          # ops smooth everywhere (exp, tanh, softmax...)
    "nonzero": _away_from_zero(),            # kinks at 0 (abs, relu, elu), denominators
    "positive": st.floats(0.2, 3.0),         # log, sqrt, fractional powers, pow bases
    "above_minus_one": st.floats(-0.8, 3.0),  # log1p
    "unclamped": st.floats(-2.0, 2.0).filter(lambda v: abs(abs(v) - 0.5) > MARGIN),
}


def values(shape, kind="smooth"):
    """A float64 array of ``shape`` whose entries suit ops of ``kind`` (see ``ELEMENTS``)."""
    if kind == "distinct":
        return distinct_values(shape)
    return hnp.arrays(np.float64, shape, elements=ELEMENTS[kind])


@st.composite
def distinct_values(draw, shape):
    """Entries at least 0.15 apart: no max/min ties, and a variance well away from 0."""
    n = int(np.prod(shape))
    ranks = np.array(draw(st.permutations(range(n))), dtype=np.float64)
    jitter = draw(hnp.arrays(np.float64, n, elements=st.floats(0.0, 0.4)))
    return ((ranks + jitter) * 0.25 - n / 8).reshape(shape)


@st.composite
def interleaved_pair(draw, shape_a, shape_b):
    """Two arrays whose entries never tie: a = k + [0.05, 0.45], b = k + [0.55, 0.95]."""
    ka = draw(hnp.arrays(np.float64, shape_a, elements=st.integers(-2, 1).map(float)))
    kb = draw(hnp.arrays(np.float64, shape_b, elements=st.integers(-2, 1).map(float)))
    fa = draw(hnp.arrays(np.float64, shape_a, elements=st.floats(0.05, 0.45)))
    fb = draw(hnp.arrays(np.float64, shape_b, elements=st.floats(0.55, 0.95)))
    return ka + fa, kb + fb


# ------------------------------------------------------------------ layouts
LAYOUTS = ("contiguous", "transposed", "reversed", "strided")


def lay_out(array, layout):
    """The same values stored in ``layout``; every layout but 'contiguous' is a view."""
    array = np.asarray(array, dtype=np.float64)
    if layout == "contiguous" or array.ndim == 0:
        return array.copy(order="C")  # (not ascontiguousarray: it turns 0-d into 1-d)
    if layout == "transposed":                    # a Fortran-order view
        return array.T.copy(order="C").T
    if layout == "reversed":                      # negative strides on every axis
        flip = (slice(None, None, -1),) * array.ndim
        return array[flip].copy(order="C")[flip]
    # every other entry of a bigger buffer whose gaps hold NaN: reading outside the
    # view poisons the result
    big = np.full(tuple(2 * n + 1 for n in array.shape), np.nan)
    view = big[(slice(1, None, 2),) * array.ndim]
    view[...] = array
    return view


@st.composite
def laid_out(draw, array):
    return lay_out(array, draw(st.sampled_from(LAYOUTS)))


def as_inputs(arrays):
    """minigen leaves (requires_grad, float64) sharing the arrays' memory, views included."""
    return [mg.Tensor(a, requires_grad=True) for a in arrays]


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
def unary(draw, kind="smooth", shape=None, **kw):
    shape = draw(shapes()) if shape is None else shape
    x = draw(laid_out(draw(values(shape, kind))))
    return (x,), {k: draw(v) for k, v in kw.items()}


@st.composite
def binary(draw, kind_a="smooth", kind_b="smooth"):
    sa, sb = draw(broadcast_pairs())
    a = draw(values(sa, kind_a))
    b = draw(values(sb, kind_b))
    return (draw(laid_out(a)), draw(laid_out(b))), {}


@st.composite
def no_tie_pair(draw):
    sa, sb = draw(broadcast_pairs())
    a, b = draw(interleaved_pair(sa, sb))
    if draw(st.booleans()):
        a, b = b, a
    return (draw(laid_out(a)), draw(laid_out(b))), {}


@st.composite
def where_inputs(draw):
    sa, sb = draw(broadcast_pairs())
    a, b = draw(values(sa)), draw(values(sb))
    out = np.broadcast_shapes(sa, sb)
    cond_shape = out[draw(st.integers(0, len(out))):]  # cond may broadcast too
    cond = draw(hnp.arrays(np.bool_, cond_shape))
    return (draw(laid_out(a)), draw(laid_out(b))), {"cond": cond}


@st.composite
def reduction(draw, kind="smooth", min_count=1, single=False, keepdim=True, unbiased=False):
    shape = draw(shapes(min_dims=1))
    dim = draw(st.integers(-len(shape), len(shape) - 1) if single else reduce_dims(len(shape)))
    count = int(np.prod([shape[a] for a in _axes(dim, len(shape))]))
    if count < min_count:  # var/std need two entries; grow the first reduced axis
        axis = _axes(dim, len(shape))[0]
        shape = shape[:axis] + (min_count,) + shape[axis + 1:]
    x = draw(laid_out(draw(values(shape, kind))))
    kw = {"dim": dim}
    if keepdim:
        kw["keepdim"] = draw(st.booleans())
    if unbiased:
        kw["unbiased"] = draw(st.booleans())
    return (x,), kw


@st.composite
def matmul_inputs(draw, form):
    n, k, m = (draw(st.integers(1, 4)) for _ in range(3))
    if form == "2d":
        sa, sb = (n, k), (k, m)
    elif form == "batched":
        ba, bb = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=1, max_dims=2,
                                                        max_side=3)).input_shapes
        sa, sb = ba + (n, k), bb + (k, m)
    else:  # the 1-D forms of numpy.matmul, and outer(a, b) of two vectors
        batch = tuple(draw(st.lists(st.integers(1, 2), max_size=1)))
        sa, sb = {"1d@2d": ((k,), batch + (k, m)), "2d@1d": (batch + (n, k), (k,)),
                  "1d@1d": ((k,), (k,)), "outer": ((n,), (m,))}[form]
    a, b = draw(values(sa)), draw(values(sb))
    return (draw(laid_out(a)), draw(laid_out(b))), {}


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
