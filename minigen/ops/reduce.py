"""Reductions: sum, mean, var, max/min, norm, logsumexp, sort/topk, and the
(non-differentiable) arg-reductions and all/any.

``dim`` and ``keepdim`` are PyTorch's names (``axis`` is accepted for ``dim``, as PyTorch
does). A reduction's backward broadcasts the gradient back over the reduced axes.

``max``/``min`` follow PyTorch's three forms: ``x.max()`` is the largest value (ties share
the gradient, as ``amax``); ``x.max(dim)`` is a pair ``(values, indices)``, the values
gathered at the indices (so the gradient goes to that one entry); ``max(a, b)`` with two
tensors is the elementwise ``maximum``.
"""
import builtins
from collections import namedtuple

from ..autograd import Function
from ..backend import get_array_module
from ..tensor import Tensor
from .shape import broadcast_to, gather, reshape, squeeze

# what max(dim) / min(dim) / sort / topk return: tuples with PyTorch's field names
MaxResult = namedtuple("max", ["values", "indices"])
MinResult = namedtuple("min", ["values", "indices"])
SortResult = namedtuple("sort", ["values", "indices"])
TopkResult = namedtuple("topk", ["values", "indices"])


def _dim(dim, axis, op):
    """``dim``, or NumPy's name ``axis`` for it (PyTorch accepts both)."""
    if axis is not None:
        if dim is not None:
            raise TypeError(f"{op}: give dim or axis, not both")
        return axis
    return dim


def _axes(dim, ndim, op="reduction"):
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    for d in dims:
        if not -ndim <= d < builtins.max(ndim, 1):
            raise IndexError(f"{op}: dim {d} is out of range for {ndim} dimensions")
    axes = tuple(sorted(d % builtins.max(ndim, 1) for d in dims))
    if len(set(axes)) != len(axes):
        raise ValueError(f"{op}: dim {dim} names a dimension twice")
    return axes


def _kept_shape(shape, axes):
    """The shape the output would have with keepdim=True."""
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _expand_back(g, shape, axes):
    """Broadcast a reduced gradient back to the input's shape."""
    return broadcast_to(reshape(g, _kept_shape(shape, axes)), shape)


def _count(shape, axes):
    """How many entries are reduced into each output entry."""
    n = 1
    for a in axes:
        n *= shape[a]
    return n


class Sum(Function):
    def forward(self, a, axes, keepdim):
        self.axes = axes
        return a.sum(axis=axes, keepdims=keepdim)

    def backward(self, g):
        return _expand_back(g, self.inputs[0].shape, self.axes)


class Mean(Function):
    def forward(self, a, axes, keepdim):
        self.axes = axes
        self.count = _count(a.shape, axes)
        return a.mean(axis=axes, keepdims=keepdim)

    def backward(self, g):
        return _expand_back(g, self.inputs[0].shape, self.axes) / self.count


class Max(Function):
    """max over ``axes``; ties share the gradient equally (as torch.amax)."""

    def forward(self, a, axes, keepdim, largest):
        self.axes = axes
        reduce = a.max if largest else a.min
        self.kept = reduce(axis=axes, keepdims=True)
        return self.kept if keepdim else self.kept.reshape(
            tuple(n for i, n in enumerate(a.shape) if i not in axes))

    def backward(self, g):
        a = self.inputs[0].data
        hit = a == self.kept
        share = (hit / hit.sum(axis=self.axes, keepdims=True)).astype(a.dtype)
        return _expand_back(g, a.shape, self.axes) * Tensor(share)


class LogSumExp(Function):
    """log sum exp x, computed as m + log sum exp(x - m) with m = max x (no overflow)."""

    def forward(self, a, axes, keepdim):
        xp = get_array_module(a)
        self.axes = axes
        m = a.max(axis=axes, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)
        out = m + xp.log(xp.exp(a - m).sum(axis=axes, keepdims=True))
        return out if keepdim else out.reshape(
            tuple(n for i, n in enumerate(a.shape) if i not in axes))

    def backward(self, g):
        # d/dx logsumexp(x) = softmax(x) = exp(x - logsumexp(x))
        a = self.inputs[0]
        lse = reshape(self.output, _kept_shape(a.shape, self.axes))
        return _expand_back(g, a.shape, self.axes) * (a - lse).exp()


def sum(x, dim=None, keepdim=False, *, axis=None, dtype=None):
    if dtype is not None:
        x = x.to(dtype=dtype)
    return Sum.apply(x, axes=_axes(_dim(dim, axis, "sum"), x.ndim, "sum"), keepdim=keepdim)


def mean(x, dim=None, keepdim=False, *, axis=None, dtype=None):
    if dtype is not None:
        x = x.to(dtype=dtype)
    if x.dtype.kind not in "fc":
        raise TypeError(f"mean: input dtype must be floating point, got {x.dtype} (convert "
                        "with .float())")
    return Mean.apply(x, axes=_axes(_dim(dim, axis, "mean"), x.ndim, "mean"), keepdim=keepdim)


def _correction(unbiased, correction):
    if correction is not None:
        return correction
    return 1 if unbiased else 0


def var(x, dim=None, unbiased=True, keepdim=False, *, correction=None, axis=None):
    """Variance; divides by n - correction: ``unbiased=True`` (correction 1) is torch's default."""
    axes = _axes(_dim(dim, axis, "var"), x.ndim, "var")
    n = _count(x.shape, axes)
    centred = x - mean(x, dim=axes, keepdim=True)
    return sum(centred * centred, dim=axes, keepdim=keepdim) / (n - _correction(unbiased,
                                                                                  correction))


def std(x, dim=None, unbiased=True, keepdim=False, *, correction=None, axis=None):
    return var(x, dim, unbiased, keepdim, correction=correction, axis=axis).sqrt()


def amax(x, dim=None, keepdim=False, *, axis=None):
    """Largest value over one or several dims; when several entries share the maximum, each
    gets an equal share of the gradient (torch.amax)."""
    return Max.apply(x, axes=_axes(_dim(dim, axis, "amax"), x.ndim, "amax"), keepdim=keepdim,
                     largest=True)


def amin(x, dim=None, keepdim=False, *, axis=None):
    """Smallest value; ties share the gradient equally (see ``amax``)."""
    return Max.apply(x, axes=_axes(_dim(dim, axis, "amin"), x.ndim, "amin"), keepdim=keepdim,
                     largest=False)


def _extreme(x, dim, keepdim, axis, largest):
    op = "max" if largest else "min"
    if isinstance(dim, Tensor):  # torch.max(a, b): elementwise
        from .elementwise import maximum, minimum
        return (maximum if largest else minimum)(x, dim)
    dim = _dim(dim, axis, op)
    if dim is None:
        if keepdim:
            raise TypeError(f"{op}(): keepdim needs a dim")
        return (amax if largest else amin)(x)
    if not isinstance(dim, int):
        raise TypeError(f"{op}(dim={dim!r}): PyTorch's {op} takes one dim and returns (values, "
                        f"indices); for the {op}imum over several dims use {'a' + op}(dim=...)")
    index = (argmax if largest else argmin)(x, dim, keepdim=True)
    values = gather(x, dim, index)  # the gradient flows to the entry that was picked
    if not keepdim:
        values, index = squeeze(values, dim), squeeze(index, dim)
    return (MaxResult if largest else MinResult)(values, index)


def max(x, dim=None, keepdim=False, *, axis=None):
    """``x.max()``: the largest value (ties share the gradient). ``x.max(dim)``: the pair
    ``(values, indices)`` along ``dim``. ``max(a, b)``: elementwise ``maximum`` (PyTorch's
    three forms)."""
    return _extreme(x, dim, keepdim, axis, largest=True)


def min(x, dim=None, keepdim=False, *, axis=None):
    """``x.min()``, ``x.min(dim)`` -> (values, indices), ``min(a, b)``: see ``max``."""
    return _extreme(x, dim, keepdim, axis, largest=False)


def logsumexp(x, dim=None, keepdim=False, *, axis=None):
    return LogSumExp.apply(x, axes=_axes(_dim(dim, axis, "logsumexp"), x.ndim, "logsumexp"),
                           keepdim=keepdim)


def _arg(x, dim, keepdim, axis, op):
    dim = _dim(dim, axis, op)
    if dim is not None:
        dim = _axes(dim, x.ndim, op)[0]
    out = getattr(x.data, op)(axis=dim)
    if keepdim and dim is not None:
        out = get_array_module(out).expand_dims(out, dim)
    return Tensor(get_array_module(x.data).asarray(out, dtype="int64"))


def argmax(x, dim=None, keepdim=False, *, axis=None):
    """Index of the largest entry (first one on ties); an int64 Tensor, not differentiable."""
    return _arg(x, dim, keepdim, axis, "argmax")


def argmin(x, dim=None, keepdim=False, *, axis=None):
    return _arg(x, dim, keepdim, axis, "argmin")


def _truth(x, dim, keepdim, axis, op):
    dim = _dim(dim, axis, op)
    axes = None if dim is None else _axes(dim, x.ndim, op)
    return Tensor(getattr(x.data.astype(bool, copy=False), op)(axis=axes, keepdims=keepdim))


def all(x, dim=None, keepdim=False, *, axis=None):
    """True where every entry (along ``dim``) is non-zero; a bool Tensor."""
    return _truth(x, dim, keepdim, axis, "all")


def any(x, dim=None, keepdim=False, *, axis=None):
    """True where some entry (along ``dim``) is non-zero; a bool Tensor."""
    return _truth(x, dim, keepdim, axis, "any")


class Norm2(Function):
    """The Euclidean norm ||x||_2 over ``axes``: d||x||/dx = x / ||x||, taken as 0 where
    ||x|| = 0 (PyTorch's subgradient, so a zero gradient in WGAN-GP's penalty gives no NaN)."""

    def forward(self, a, axes, keepdim):
        xp = get_array_module(a)
        self.axes = axes
        out = xp.sqrt((a * a).sum(axis=axes, keepdims=True))
        return out if keepdim else out.reshape(
            tuple(n for i, n in enumerate(a.shape) if i not in axes))

    def backward(self, g):
        from .elementwise import where
        x = self.inputs[0]
        n = reshape(self.output, _kept_shape(x.shape, self.axes))
        zero = n.data == 0
        safe = where(Tensor(zero), Tensor(n.data * 0 + 1), n)
        return _expand_back(g, x.shape, self.axes) * x / safe


def norm(x, p="fro", dim=None, keepdim=False, *, axis=None):
    """Vector norm over ``dim`` (all entries by default): p = 2 / 'fro' (Euclidean), 1,
    inf, -inf or any other number: (sum |x|^p)^(1/p)."""
    dims = _axes(_dim(dim, axis, "norm"), x.ndim, "norm")
    if p in ("fro", 2, 2.0):
        return Norm2.apply(x, axes=dims, keepdim=keepdim)
    if p == float("inf"):
        return amax(x.abs(), dim=dims, keepdim=keepdim)
    if p == -float("inf"):
        return amin(x.abs(), dim=dims, keepdim=keepdim)
    if p == 1:
        return sum(x.abs(), dim=dims, keepdim=keepdim)
    if isinstance(p, str):
        raise ValueError(f"norm: p={p!r} is not implemented (numbers and 'fro' are)")
    return sum(x.abs() ** p, dim=dims, keepdim=keepdim) ** (1.0 / p)


def sort(x, dim=-1, descending=False, stable=False):
    """(values, indices) sorted along ``dim``; the values are gathered, so differentiable."""
    xp = get_array_module(x.data)
    dim = _axes(dim, x.ndim, "sort")[0]
    key = -x.data if descending else x.data
    index = Tensor(xp.argsort(key, axis=dim, kind="stable").astype("int64"))
    return SortResult(gather(x, dim, index), index)


def argsort(x, dim=-1, descending=False, stable=False):
    return sort(x, dim, descending, stable).indices


def topk(x, k, dim=-1, largest=True, sorted=True):
    """The ``k`` largest (or smallest) entries along ``dim`` and their indices."""
    dim = _axes(dim, x.ndim, "topk")[0]
    if not 0 <= k <= x.shape[dim]:
        raise ValueError(f"topk: k={k} is out of range for dim {dim} of size {x.shape[dim]}")
    index = sort(x, dim, descending=largest).indices
    index = Tensor(index.data[(slice(None),) * dim + (slice(0, k),)])
    return TopkResult(gather(x, dim, index), index)


def prod(x, dim=None, keepdim=False, *, axis=None):
    """Product of the entries along ``dim`` (all by default), as a chain of ``mul``: exact
    zeros and signs are kept and the gradient of each entry is the product of the others.
    The graph grows with the reduced length: meant for short dims (shapes, small factors)."""
    dims = _axes(_dim(dim, axis, "prod"), x.ndim, "prod")
    out = x
    for d in sorted(dims, reverse=True):
        acc = None
        for i in range(out.shape[d]):
            piece = out[(slice(None),) * d + (i,)]
            acc = piece if acc is None else acc * piece
        if acc is None:  # an empty dim: the product is 1 everywhere
            xp = get_array_module(out.data)
            acc = Tensor(xp.ones(out.shape[:d] + out.shape[d + 1:], dtype=out.dtype))
        out = acc.unsqueeze(d) if keepdim else acc
    return out
