"""Shape ops: reshape, permute, broadcast, concatenate, pad, indexing, dtype/device moves.

None of these does arithmetic; their backward only moves gradient entries back to where
the input's entries came from.
"""
import numpy as np

from .. import backend
from ..autograd import Function
from ..backend import get_array_module
from ..tensor import Tensor


# ------------------------------------------------------------------ helpers
def as_tensor(x, like=None):
    """Wrap a Python/NumPy scalar or array as a constant Tensor, matching ``like``'s dtype/device."""
    if isinstance(x, Tensor):
        return x
    if like is None:
        return Tensor(x)
    xp = get_array_module(like.data)
    dtype = like.dtype if like.dtype.kind == "f" else None
    if dtype is None and isinstance(x, float):  # int tensor * 0.5: the default float, as torch
        dtype = backend.get_default_dtype()
    return Tensor(xp.asarray(backend.to_device(np.asarray(x), like.device), dtype=dtype))


def _norm_dim(dim, ndim, op):
    if not -ndim <= dim < max(ndim, 1):
        raise IndexError(f"{op}: dim {dim} is out of range for a tensor with {ndim} dimensions")
    return dim % max(ndim, 1)


def unbroadcast(grad, shape):
    """Sum ``grad`` down to ``shape``: the adjoint of broadcasting (DESIGN principle 4).

    Broadcasting copies an input along new leading axes and along its size-1 axes, so
    the gradient is the sum over exactly those axes.
    """
    if grad.shape == tuple(shape):
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1)
    from .reduce import sum as _sum
    return reshape(_sum(grad, dim=axes), shape)


# ------------------------------------------------------------------ reshape family
class Reshape(Function):
    def forward(self, a, shape):
        try:
            return a.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot view shape {a.shape} ({a.size} elements) "
                             f"as {shape}") from None

    def backward(self, g):
        return reshape(g, self.inputs[0].shape)


def reshape(x, *shape):
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    if tuple(shape) == x.shape:
        return x
    return Reshape.apply(x, shape=shape)


view = reshape


def flatten(x, start_dim=0, end_dim=-1):
    """Merge dims ``start_dim..end_dim`` into one (``torch.flatten``)."""
    if x.ndim == 0:
        return reshape(x, 1)
    s, e = _norm_dim(start_dim, x.ndim, "flatten"), _norm_dim(end_dim, x.ndim, "flatten")
    return reshape(x, x.shape[:s] + (-1,) + x.shape[e + 1:])


def squeeze(x, dim=None):
    """Remove size-1 dims (all of them, or ``dim`` only, as torch: a no-op if it is not 1)."""
    if dim is None:
        return reshape(x, tuple(n for n in x.shape if n != 1))
    dims = (dim,) if isinstance(dim, int) else dim
    dims = {_norm_dim(d, x.ndim, "squeeze") for d in dims}
    return reshape(x, tuple(n for i, n in enumerate(x.shape) if not (i in dims and n == 1)))


def unsqueeze(x, dim):
    dim = _norm_dim(dim, x.ndim + 1, "unsqueeze")
    return reshape(x, x.shape[:dim] + (1,) + x.shape[dim:])


class Permute(Function):
    def forward(self, a, dims):
        self.dims = dims
        return a.transpose(dims)

    def backward(self, g):
        return permute(g, *np.argsort(self.dims))


def permute(x, *dims):
    dims = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
    if sorted(d % max(x.ndim, 1) for d in dims) != list(range(x.ndim)):
        raise ValueError(f"permute: {dims} is not a permutation of the {x.ndim} dims of {x.shape}")
    dims = tuple(int(d) % x.ndim for d in dims)
    if dims == tuple(range(x.ndim)):
        return x
    return Permute.apply(x, dims=dims)


def transpose(x, dim0=-2, dim1=-1):
    d0, d1 = _norm_dim(dim0, x.ndim, "transpose"), _norm_dim(dim1, x.ndim, "transpose")
    if d0 == d1:
        return x
    dims = list(range(x.ndim))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    # a permutation by construction, so Permute directly: every matrix product's backward
    # transposes, and permute's checks of its argument cost as much as the op itself
    return Permute.apply(x, dims=tuple(dims))


class BroadcastTo(Function):
    def forward(self, a, shape):
        xp = get_array_module(a)
        try:
            return xp.broadcast_to(a, shape)
        except ValueError:
            raise ValueError(f"broadcast_to: cannot broadcast shape {a.shape} to {shape}") from None

    def backward(self, g):
        return unbroadcast(g, self.inputs[0].shape)


def broadcast_to(x, *shape):
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    if tuple(shape) == x.shape:
        return x
    return BroadcastTo.apply(x, shape=tuple(shape))


def expand(x, *sizes):
    """``broadcast_to`` where -1 keeps a dimension's size (``torch.Tensor.expand``)."""
    sizes = tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes
    lead = len(sizes) - x.ndim
    shape = tuple(x.shape[i - lead] if n == -1 and i >= lead else n for i, n in enumerate(sizes))
    return broadcast_to(x, shape)


def expand_as(x, other):
    return broadcast_to(x, other.shape)


def view_as(x, other):
    return reshape(x, other.shape)


reshape_as = view_as


def t(x):
    """Transpose of a matrix (a 0-D or 1-D tensor is returned as it is), as ``torch.t``."""
    if x.ndim > 2:
        raise ValueError(f"t: expects a tensor of at most 2 dimensions, got {x.shape}; use "
                         "transpose(dim0, dim1) or permute")
    return transpose(x, 0, 1) if x.ndim == 2 else x


def repeat(x, *sizes):
    """Tile ``x``: ``repeat(2, 3)`` stacks 2 copies along dim 0 and 3 along dim 1
    (``torch.Tensor.repeat``). A broadcast then a reshape, so the gradient sums the copies."""
    sizes = tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes
    if len(sizes) < x.ndim:
        raise ValueError(f"repeat: {len(sizes)} repeat counts for a tensor with {x.ndim} dims")
    shape = (1,) * (len(sizes) - x.ndim) + x.shape
    spread = tuple(d for n in shape for d in (1, n))
    tiled = tuple(d for r, n in zip(sizes, shape) for d in (r, n))
    return reshape(broadcast_to(reshape(x, spread), tiled),
                   tuple(r * n for r, n in zip(sizes, shape)))


# ------------------------------------------------------------------ joining and splitting
class Cat(Function):
    def forward(self, *arrays, dim):
        self.dim = dim
        xp = get_array_module(arrays[0])
        try:
            return xp.concatenate(arrays, axis=dim)
        except ValueError:
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise ValueError(f"cat: shapes {shapes} do not match outside dim {dim}") from None

    def backward(self, g):
        dim = self.dim
        grads, start = [], 0
        for t in self.inputs:
            index = (slice(None),) * dim + (slice(start, start + t.shape[dim]),)
            grads.append(getitem(g, index))
            start += t.shape[dim]
        return tuple(grads)


def cat(tensors, dim=0):
    """Concatenate along ``dim`` (``torch.cat``)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    if len({(t.dtype, t.device) for t in tensors}) > 1:  # as binary ops: no silent promotion
        kinds = ", ".join(f"{t.dtype} on {t.device}" for t in tensors)
        raise TypeError(f"cat: all tensors must share one dtype and device, got {kinds}")
    return Cat.apply(*tensors, dim=_norm_dim(dim, tensors[0].ndim, "cat"))


concatenate = cat


def stack(tensors, dim=0):
    """Join along a new ``dim`` (``torch.stack``)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    shapes = {t.shape for t in tensors}
    if len(shapes) > 1:
        raise ValueError(f"stack: all tensors must have one shape, got {sorted(shapes)}")
    return cat([unsqueeze(t, dim) for t in tensors], dim=dim)


def split(x, split_size_or_sections, dim=0):
    """Split into pieces along ``dim``: equal chunks of an int size, or the listed sizes."""
    dim = _norm_dim(dim, x.ndim, "split")
    n = x.shape[dim]
    if isinstance(split_size_or_sections, int):
        if split_size_or_sections <= 0:
            raise ValueError(f"split: split_size must be positive, got {split_size_or_sections}")
        sizes = [split_size_or_sections] * (n // split_size_or_sections)
        if n % split_size_or_sections:
            sizes.append(n % split_size_or_sections)
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != n:
            raise ValueError(f"split: sizes {sizes} sum to {sum(sizes)}, but dim {dim} has {n}")
    pieces, start = [], 0
    for size in sizes:
        pieces.append(getitem(x, (slice(None),) * dim + (slice(start, start + size),)))
        start += size
    return tuple(pieces)


def chunk(x, chunks, dim=0):
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    n = x.shape[_norm_dim(dim, x.ndim, "chunk")]
    return split(x, -(-n // chunks), dim)


class Pad(Function):
    """Constant padding; ``pad`` uses torch.nn.functional.pad's order (last dim first)."""

    def forward(self, a, pad, value):
        xp = get_array_module(a)
        if len(pad) % 2 or len(pad) // 2 > a.ndim:
            raise ValueError(f"pad: {pad} must hold (before, after) pairs for at most {a.ndim} dims")
        widths = [(0, 0)] * a.ndim
        for i in range(len(pad) // 2):
            widths[a.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
        if any(w < 0 for pair in widths for w in pair):
            raise ValueError(f"pad: negative padding {pad} is not supported")
        self.widths = widths
        return xp.pad(a, widths, mode="constant", constant_values=value)

    def backward(self, g):
        index = tuple(slice(lo, g.shape[i] - hi) for i, (lo, hi) in enumerate(self.widths))
        return getitem(g, index)


def pad(x, pad, value=0.0):
    return Pad.apply(x, pad=tuple(int(p) for p in pad), value=value)


# ------------------------------------------------------------------ indexing
def _raw_index(index):
    """Tensors inside an index become their arrays; lists become arrays."""
    if isinstance(index, tuple):
        return tuple(_raw_index(i) for i in index)
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, list):
        return np.asarray(index)
    return index


def _is_basic(index):
    """Basic indexing (ints, slices, None, ...) selects each element at most once."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (int, np.integer, slice)) for p in parts)


class GetItem(Function):
    def forward(self, a, index):
        self.index = index
        return a[index]

    def backward(self, g):
        return IndexAdd.apply(g, index=self.index, shape=self.inputs[0].shape)


class IndexAdd(Function):
    """zeros(shape)[index] += g -- the adjoint of indexing (repeated indices accumulate)."""

    def forward(self, g, index, shape):
        self.index = index
        xp = get_array_module(g)
        out = xp.zeros(shape, dtype=g.dtype)
        if _is_basic(index):
            out[index] = g
        else:
            backend.scatter_add(out, index, g)
        return out

    def backward(self, gg):
        return getitem(gg, self.index)


class IndexPut(Function):
    """``out = a`` with ``out[index] = v`` (v broadcast): the gradient of ``a`` is g with the
    written entries zeroed, that of ``v`` the gradient at the written entries."""

    def forward(self, a, v, index):
        self.index = index
        out = a.copy()
        out[index] = v
        return out

    def backward(self, g):
        a, v = self.inputs
        ga = gv = None
        if self.needs_input_grad[0]:
            keep = get_array_module(g.data).ones(a.shape, dtype=g.dtype)
            keep[self.index] = 0
            ga = g * Tensor(keep)
        if self.needs_input_grad[1]:
            gv = unbroadcast(getitem(g, self.index), v.shape)
        return ga, gv


def index_put(x, index, values):
    """A copy of ``x`` with ``values`` written at ``index`` (``x[index] = values`` as a
    differentiable op; ``Tensor.__setitem__`` uses it)."""
    index = _raw_index(index)
    if values.dtype != x.dtype:
        values = astype(values, x.dtype)
    try:
        return IndexPut.apply(x, values, index=index)
    except (IndexError, ValueError) as e:
        raise type(e)(f"setitem: cannot write values of shape {values.shape} at index "
                      f"{index!r} of a tensor of shape {x.shape}: {e}") from None


def getitem(x, index):
    index = _raw_index(index)
    try:
        return GetItem.apply(x, index=index)
    except IndexError as e:
        raise IndexError(f"getitem: index {index!r} on a tensor of shape {x.shape}: {e}") from None


def gather(x, dim, index):
    """``out[i][j] = x[i][index[i][j]]`` for dim=1 (and likewise for any dim), as
    ``torch.gather``. An advanced index, so the gradient is scattered back to the picked
    entries (repeated picks add up)."""
    idx = index.data if isinstance(index, Tensor) else get_array_module(x.data).asarray(index)
    if idx.ndim != x.ndim:
        raise ValueError(f"gather: index of shape {idx.shape} needs as many dims as the input "
                         f"{x.shape}")
    dim = _norm_dim(dim, x.ndim, "gather")
    xp = get_array_module(idx)
    parts = tuple(idx if d == dim else
                  xp.arange(idx.shape[d]).reshape([-1 if k == d else 1 for k in range(idx.ndim)])
                  for d in range(x.ndim))
    return getitem(x, parts)


def index_select(x, dim, index):
    """The entries of ``x`` at positions ``index`` (1-D integers) along ``dim``."""
    idx = index.data if isinstance(index, Tensor) else np.asarray(index)
    return getitem(x, (slice(None),) * _norm_dim(dim, x.ndim, "index_select") + (idx,))


def narrow(x, dim, start, length):
    return getitem(x, (slice(None),) * _norm_dim(dim, x.ndim, "narrow") +
                   (slice(start, start + length),))


def select(x, dim, index):
    return getitem(x, (slice(None),) * _norm_dim(dim, x.ndim, "select") + (index,))


def unbind(x, dim=0):
    """The slices of ``x`` along ``dim``, that dim removed."""
    dim = _norm_dim(dim, x.ndim, "unbind")
    return tuple(select(x, dim, i) for i in range(x.shape[dim]))


def flip(x, *dims):
    """Reverse the order of entries along ``dims``."""
    dims = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
    index = [slice(None)] * x.ndim
    for d in dims:
        index[_norm_dim(d, x.ndim, "flip")] = slice(None, None, -1)
    return getitem(x, tuple(index))


# ------------------------------------------------------------------ dtype and device
class AsType(Function):
    def forward(self, a, dtype, copy=False):
        return a.astype(dtype, copy=copy)

    def backward(self, g):
        return astype(g, self.inputs[0].dtype)


def astype(x, dtype, copy=False):
    return AsType.apply(x, dtype=np.dtype(dtype), copy=copy)


class ToDevice(Function):
    def forward(self, a, device):
        return backend.to_device(a, device)

    def backward(self, g):
        return to_device(g, self.inputs[0].device)


def to_device(x, device):
    return ToDevice.apply(x, device=device)
