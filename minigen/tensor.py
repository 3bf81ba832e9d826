"""The Tensor: an array (NumPy or CuPy), a gradient, and the op that made it.

A Tensor holds

* ``data`` -- the array itself (``numpy.ndarray`` on 'cpu', ``cupy.ndarray`` on 'cuda');
* ``requires_grad`` -- whether gradients should flow to it;
* ``grad`` -- the accumulated gradient (a Tensor), filled in by ``backward`` on leaves;
* ``_ctx`` -- the ``Function`` that produced it (None for leaves): the autograd graph.

All arithmetic lives in ``minigen.ops``; the methods here only forward to it, so that
``x.exp()`` and ``minigen.exp(x)`` are one piece of code.
"""
import numpy as np

from . import backend
from .autograd import backprop
from .backend import get_array_module


class Tensor:
    __slots__ = ("data", "requires_grad", "grad", "_ctx", "_retains_grad", "__weakref__")
    __array_ufunc__ = None  # numpy_scalar * tensor defers to Tensor.__rmul__ (keeps the graph)

    def __init__(self, data, requires_grad=False):
        if isinstance(data, Tensor):
            data = data.data
        xp = get_array_module(data)
        if not isinstance(data, xp.ndarray):
            numpy_scalar = isinstance(data, np.generic)  # keeps its dtype (a float64 sum stays float64)
            data = np.asarray(data)
            if not numpy_scalar and data.dtype.kind == "f":
                data = data.astype(backend.get_default_dtype())  # Python floats -> default dtype
        self.data = data
        self.grad = None
        self._ctx = None
        self._retains_grad = False
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # ------------------------------------------------------------ attributes
    @property
    def shape(self):
        return self.data.shape

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def size(self):
        return self.data.size

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self):
        return backend.device_of(self.data)

    @property
    def is_leaf(self):
        return self._ctx is None

    @property
    def T(self):
        return self.permute(*reversed(range(self.ndim)))

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        dev = ", device='cuda'" if self.device == "cuda" else ""
        body = np.array2string(backend.to_numpy(self.data), separator=", ", precision=4,
                               threshold=50, prefix="tensor(")
        return f"tensor({body}, dtype={self.dtype}{dev}{grad})"

    # hashing by identity (== is elementwise, as in NumPy/PyTorch)
    __hash__ = object.__hash__

    # ------------------------------------------------------------ conversion
    def numpy(self):
        """The data as a NumPy array (copied from the GPU if needed). No gradient flows."""
        return backend.to_numpy(self.data)

    def item(self):
        if self.size != 1:
            raise ValueError(f"item(): tensor of shape {self.shape} has {self.size} elements, not 1")
        return self.data.reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def to(self, device=None, dtype=None):
        """A copy on ``device`` and/or of ``dtype``; differentiable."""
        from . import ops
        out = self
        if dtype is not None and np.dtype(dtype) != self.dtype:
            out = ops.astype(out, dtype)
        if device is not None and backend.check_device(device) != self.device:
            out = ops.to_device(out, device)
        return out

    def float(self):
        return self.to(dtype=np.float32)

    def double(self):
        return self.to(dtype=np.float64)

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def detach(self):
        """The same data, cut from the graph."""
        return Tensor(self.data)

    def clone(self):
        from . import ops
        return ops.astype(self, self.dtype, copy=True)

    # ------------------------------------------------------------ autograd
    def requires_grad_(self, flag=True):
        if flag and self.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, not {self.dtype}")
        self.requires_grad = flag
        return self

    def retain_grad(self):
        """Keep ``.grad`` on this non-leaf tensor after backward (leaves always keep it)."""
        self._retains_grad = True
        return self

    def zero_grad_(self):
        self.grad = None
        return self

    def backward(self, grad=None, retain_graph=None, create_graph=False):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        ``grad`` is d(loss)/d(self); it may be omitted only for a single-element tensor.
        """
        if not self.requires_grad:
            raise RuntimeError("backward(): this tensor does not require grad (no graph was "
                               "recorded; was it computed under no_grad?)")
        if grad is None:
            if self.size != 1:
                raise RuntimeError(f"backward(): tensor of shape {self.shape} is not a scalar; "
                                   "pass grad= of the same shape")
            grad = ones_like(self)
        elif not isinstance(grad, Tensor):
            grad = Tensor(get_array_module(self.data).asarray(grad, dtype=self.dtype))
        if grad.shape != self.shape:
            raise ValueError(f"backward(): grad of shape {grad.shape} for a tensor of shape {self.shape}")
        backprop([self], [grad], create_graph=create_graph, retain_graph=retain_graph)

    # ------------------------------------------------------------ operators
    def __add__(self, other): return _ops().add(self, other)
    def __radd__(self, other): return _ops().add(other, self)
    def __sub__(self, other): return _ops().sub(self, other)
    def __rsub__(self, other): return _ops().sub(other, self)
    def __mul__(self, other): return _ops().mul(self, other)
    def __rmul__(self, other): return _ops().mul(other, self)
    def __truediv__(self, other): return _ops().div(self, other)
    def __rtruediv__(self, other): return _ops().div(other, self)
    def __pow__(self, other): return _ops().pow(self, other)
    def __rpow__(self, other): return _ops().pow(other, self)
    def __matmul__(self, other): return _ops().matmul(self, other)
    def __rmatmul__(self, other): return _ops().matmul(other, self)
    def __neg__(self): return _ops().neg(self)
    def __pos__(self): return self
    def __abs__(self): return _ops().abs(self)
    def __getitem__(self, index): return _ops().getitem(self, index)

    # comparisons: elementwise, boolean, never differentiable
    def __lt__(self, other): return _ops().compare(self, other, "less")
    def __le__(self, other): return _ops().compare(self, other, "less_equal")
    def __gt__(self, other): return _ops().compare(self, other, "greater")
    def __ge__(self, other): return _ops().compare(self, other, "greater_equal")
    def __eq__(self, other): return _ops().compare(self, other, "equal")
    def __ne__(self, other): return _ops().compare(self, other, "not_equal")

    def __bool__(self):
        if self.size != 1:
            raise RuntimeError(f"the truth value of a tensor of shape {self.shape} is ambiguous")
        return bool(self.data.reshape(()))

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a if dtype is None else a.astype(dtype)


_OPS = []  # minigen.ops, once imported (tensor.py is imported first, so ops cannot be at the top)


def _ops():
    return _OPS[0]


def _install_methods():
    """Tensor methods that are plain calls of ``minigen.ops`` functions (x.exp() == ops.exp(x))."""
    from . import ops
    _OPS.append(ops)
    for name in ops.TENSOR_METHODS:
        setattr(Tensor, name, getattr(ops, name))


# ------------------------------------------------------------------ creation
def _array(xp, data, dtype):
    return xp.asarray(data, dtype=dtype)


def _dtype(dtype):
    return backend.get_default_dtype() if dtype is None else np.dtype(dtype)


def tensor(data, dtype=None, device="cpu", requires_grad=False):
    """A new leaf tensor from a list, scalar or array. Floats become float32 by default."""
    if isinstance(data, Tensor):
        data = data.data
    xp = backend.xp_for(device)
    # a copy, as torch.tensor makes: in-place optimizer steps never write into the caller's array
    arr = xp.array(backend.to_device(data, device) if hasattr(data, "shape") else data)
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    elif arr.dtype.kind == "f":
        arr = arr.astype(backend.get_default_dtype(), copy=False)
    return Tensor(arr, requires_grad=requires_grad)


def _shape(shape):
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape


def zeros(*shape, dtype=None, device="cpu", requires_grad=False):
    return Tensor(backend.xp_for(device).zeros(_shape(shape), _dtype(dtype)), requires_grad)


def ones(*shape, dtype=None, device="cpu", requires_grad=False):
    return Tensor(backend.xp_for(device).ones(_shape(shape), _dtype(dtype)), requires_grad)


def full(shape, fill_value, dtype=None, device="cpu", requires_grad=False):
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return Tensor(backend.xp_for(device).full(shape, fill_value, _dtype(dtype)), requires_grad)


def arange(start, end=None, step=1, dtype=None, device="cpu", requires_grad=False):
    """Like ``torch.arange``: integers give int64, any float argument gives the default float."""
    if end is None:
        start, end = 0, start
    xp = backend.xp_for(device)
    if dtype is None and all(isinstance(v, int) for v in (start, end, step)):
        dtype = np.int64
    return Tensor(xp.arange(start, end, step, dtype=_dtype(dtype)), requires_grad)


def randn(*shape, dtype=None, device="cpu", requires_grad=False):
    """Standard normal samples from minigen's seeded generator (see ``manual_seed``)."""
    gen = backend.rng(device)
    return Tensor(gen.standard_normal(_shape(shape), dtype=_dtype(dtype)), requires_grad)


def rand(*shape, dtype=None, device="cpu", requires_grad=False):
    """Uniform [0, 1) samples from minigen's seeded generator."""
    gen = backend.rng(device)
    return Tensor(gen.random(_shape(shape), dtype=_dtype(dtype)), requires_grad)


def randint(low, high, shape, device="cpu"):
    return Tensor(backend.rng(device).integers(low, high, size=shape))


def _like(fn, t, dtype, requires_grad, **kw):
    return fn(*t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad, **kw)


def zeros_like(t, dtype=None, requires_grad=False):
    return _like(zeros, t, dtype, requires_grad)


def ones_like(t, dtype=None, requires_grad=False):
    return _like(ones, t, dtype, requires_grad)


def randn_like(t, dtype=None, requires_grad=False):
    return _like(randn, t, dtype, requires_grad)


def rand_like(t, dtype=None, requires_grad=False):
    return _like(rand, t, dtype, requires_grad)


def full_like(t, fill_value, dtype=None, requires_grad=False):
    return full(t.shape, fill_value, dtype=dtype or t.dtype, device=t.device,
                requires_grad=requires_grad)
