"""Reductions: sum, mean, var, max/min, logsumexp, and the (non-differentiable) arg-reductions.

``dim`` and ``keepdim`` are PyTorch's names. A reduction's backward broadcasts the
gradient back over the reduced axes.
"""
import builtins

from ..autograd import Function
from ..backend import get_array_module
from ..tensor import Tensor
from .shape import broadcast_to, reshape


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


def sum(x, dim=None, keepdim=False):
    return Sum.apply(x, axes=_axes(dim, x.ndim, "sum"), keepdim=keepdim)


def mean(x, dim=None, keepdim=False):
    return Mean.apply(x, axes=_axes(dim, x.ndim, "mean"), keepdim=keepdim)


def var(x, dim=None, unbiased=True, keepdim=False):
    """Variance; ``unbiased=True`` divides by n - 1 (torch's default)."""
    axes = _axes(dim, x.ndim, "var")
    n = _count(x.shape, axes)
    centred = x - mean(x, dim=axes, keepdim=True)
    return sum(centred * centred, dim=axes, keepdim=keepdim) / (n - 1 if unbiased else n)


def std(x, dim=None, unbiased=True, keepdim=False):
    return var(x, dim, unbiased, keepdim).sqrt()


def max(x, dim=None, keepdim=False):
    """Largest value (values only, like torch.amax; use ``argmax`` for indices).

    Tie rule: when several entries share the maximum, each gets an equal share of the
    gradient.
    """
    return Max.apply(x, axes=_axes(dim, x.ndim, "max"), keepdim=keepdim, largest=True)


def min(x, dim=None, keepdim=False):
    """Smallest value; ties share the gradient equally (see ``max``)."""
    return Max.apply(x, axes=_axes(dim, x.ndim, "min"), keepdim=keepdim, largest=False)


amax, amin = max, min


def logsumexp(x, dim=None, keepdim=False):
    return LogSumExp.apply(x, axes=_axes(dim, x.ndim, "logsumexp"), keepdim=keepdim)


def argmax(x, dim=None, keepdim=False):
    """Index of the largest entry (first one on ties); an integer Tensor, not differentiable."""
    out = x.data.argmax(axis=dim)
    if keepdim and dim is not None:
        out = get_array_module(out).expand_dims(out, dim)
    return Tensor(out)


def argmin(x, dim=None, keepdim=False):
    out = x.data.argmin(axis=dim)
    if keepdim and dim is not None:
        out = get_array_module(out).expand_dims(out, dim)
    return Tensor(out)
