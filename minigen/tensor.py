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
    """``Tensor(array)`` wraps an array as it is: no copy, its dtype kept (Python numbers and
    lists: floats take the default dtype). To build tensors use ``minigen.tensor`` (a copy),
    ``minigen.from_numpy`` (shares memory) or ``minigen.as_tensor``, as in PyTorch.

    ``_version`` counts in-place changes; a backward that needs a tensor changed since the
    forward fails instead of using the wrong numbers (PyTorch's rule).
    """
    __slots__ = ("data", "requires_grad", "grad", "_ctx", "_retains_grad", "_version",
                 "__weakref__")
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
        self._version = 0
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

    def size(self, dim=None):
        """The shape (``x.size()``), or the length of one dimension (``x.size(0)``), as torch."""
        if dim is None:
            return self.data.shape
        return self.data.shape[_dim_index(dim, self.ndim, "size")]

    def numel(self):
        """The number of elements (NumPy's ``array.size``)."""
        return self.data.size

    nelement = numel

    def dim(self):
        return self.data.ndim

    ndimension = dim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self):
        return backend.device_of(self.data)

    @property
    def is_cuda(self):
        return self.device == "cuda"

    def is_floating_point(self):
        return self.dtype.kind == "f"

    @property
    def is_leaf(self):
        return self._ctx is None

    @property
    def grad_fn(self):
        """The Function that made this tensor (None for a leaf): PyTorch's name for ``_ctx``."""
        return self._ctx

    @property
    def T(self):
        return self.permute(*reversed(range(self.ndim)))

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

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
        if self.numel() != 1:
            raise ValueError(f"item(): tensor of shape {self.shape} has {self.numel()} elements, "
                             "not 1")
        return self.data.reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def to(self, *args, **kwargs):
        """``to(device)``, ``to(dtype)``, ``to(device, dtype)``, ``to(other_tensor)``, or the
        keywords ``device=``/``dtype=``: this tensor when nothing changes, else a converted
        copy (differentiable), as ``torch.Tensor.to``."""
        from . import ops
        device, dtype, copy = parse_to(args, kwargs)
        out = self
        if dtype is not None and dtype != self.dtype:
            out = ops.astype(out, dtype)
        if device is not None and backend.check_device(device) != self.device:
            out = ops.to_device(out, device)
        return ops.astype(out, out.dtype, copy=True) if copy and out is self else out

    def float(self):
        return self.to(dtype=np.float32)

    def double(self):
        return self.to(dtype=np.float64)

    def half(self):
        return self.to(dtype=np.float16)

    def long(self):
        return self.to(dtype=np.int64)

    def int(self):
        return self.to(dtype=np.int32)

    def bool(self):
        return self.to(dtype=np.bool_)

    def type_as(self, other):
        return self.to(dtype=other.dtype)

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None):
        return self.to("cuda" if device is None else device)

    def contiguous(self):
        """This tensor (minigen's ops accept any memory layout)."""
        return self

    def detach(self):
        """The same data (shared memory), cut from the graph."""
        return Tensor(self.data)

    def detach_(self):
        """Cut this tensor from the graph, in place: it becomes a leaf."""
        self._ctx = None
        self.requires_grad = False
        return self

    # ------------------------------------------------------------ new tensors like this one
    def new_tensor(self, data, dtype=None, device=None, requires_grad=False):
        return tensor(data, dtype=dtype or self.dtype, device=device or self.device,
                      requires_grad=requires_grad)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad=False):
        return zeros(*size, dtype=dtype or self.dtype, device=device or self.device,
                     requires_grad=requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad=False):
        return ones(*size, dtype=dtype or self.dtype, device=device or self.device,
                    requires_grad=requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad=False):
        return empty(*size, dtype=dtype or self.dtype, device=device or self.device,
                     requires_grad=requires_grad)

    def new_full(self, size, fill_value, dtype=None, device=None, requires_grad=False):
        return full(size, fill_value, dtype=dtype or self.dtype, device=device or self.device,
                    requires_grad=requires_grad)

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
            if self.numel() != 1:
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
    def __setitem__(self, index, value): _ops()._inplace.setitem_(self, index, value)

    # augmented assignment works in place, as in PyTorch: `p -= lr * p.grad` under no_grad
    # updates the parameter itself instead of rebinding the name to a new tensor
    def __iadd__(self, other): return self.add_(other)
    def __isub__(self, other): return self.sub_(other)
    def __imul__(self, other): return self.mul_(other)
    def __itruediv__(self, other): return self.div_(other)

    # logical operators on bool (and integer) tensors: masks, never differentiable
    def __and__(self, other): return _ops().logical(self, other, "bitwise_and")
    def __rand__(self, other): return _ops().logical(other, self, "bitwise_and")
    def __or__(self, other): return _ops().logical(self, other, "bitwise_or")
    def __ror__(self, other): return _ops().logical(other, self, "bitwise_or")
    def __xor__(self, other): return _ops().logical(self, other, "bitwise_xor")
    def __invert__(self): return _ops().logical(self, None, "invert")

    # comparisons: elementwise, boolean, never differentiable
    def __lt__(self, other): return _ops().compare(self, other, "less")
    def __le__(self, other): return _ops().compare(self, other, "less_equal")
    def __gt__(self, other): return _ops().compare(self, other, "greater")
    def __ge__(self, other): return _ops().compare(self, other, "greater_equal")
    def __eq__(self, other): return _ops().compare(self, other, "equal")
    def __ne__(self, other): return _ops().compare(self, other, "not_equal")

    def __bool__(self):
        if self.numel() != 1:
            raise RuntimeError(f"the truth value of a tensor of shape {self.shape} is ambiguous")
        return bool(self.data.reshape(()))

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self.dtype.kind not in "iub":
            raise TypeError(f"only integer tensors of a single element can be used as an "
                            f"index, not {self.dtype}")
        return int(self.item())

    def __format__(self, spec):
        """f"{loss:.4f}" formats a one-element tensor's number, as in PyTorch."""
        if self.numel() == 1 and spec:
            return format(self.item(), spec)
        return format(repr(self), spec)

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a if dtype is None else a.astype(dtype)


_OPS = []  # minigen.ops, once imported (tensor.py is imported first, so ops cannot be at the top)


def _ops():
    return _OPS[0]


def _install_methods():
    """Tensor methods that are plain calls of ``minigen.ops`` functions (x.exp() == ops.exp(x)),
    and the in-place methods of ``minigen.ops.inplace`` (x.add_(y))."""
    from . import ops
    _OPS.append(ops)
    for name in ops.TENSOR_METHODS:
        setattr(Tensor, name, getattr(ops, name))
    for name in ops.INPLACE_METHODS:
        setattr(Tensor, name, getattr(ops._inplace, name))


# ------------------------------------------------------------------ helpers
def _dim_index(dim, ndim, op):
    if not -ndim <= dim < ndim:
        raise IndexError(f"{op}: dim {dim} is out of range for a tensor with {ndim} dimensions")
    return dim % ndim


def parse_to(args, kwargs):
    """(device, dtype, copy) from the arguments of ``Tensor.to`` / ``Module.to``: a device, a
    dtype, both, or a tensor whose device and dtype are taken (PyTorch's overloads)."""
    device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
    copy = bool(kwargs.pop("copy", False))
    kwargs.pop("non_blocking", None)  # transfers are synchronous here
    kwargs.pop("memory_format", None)
    if kwargs:
        raise TypeError(f"to(): unexpected keyword argument(s) {', '.join(kwargs)}")
    for arg in args:
        if arg is None:
            continue
        if isinstance(arg, Tensor):
            device, dtype = arg.device, arg.dtype
        elif backend.is_device(arg):
            device = arg
        else:
            try:
                dtype = np.dtype(arg)
            except TypeError:
                if isinstance(arg, str):  # not a dtype name: a device name (or an error
                    device = backend.device(arg)  # naming the unknown device)
                    continue
                raise TypeError(f"to(): expected a device ('cpu', 'cuda'), a dtype "
                                f"(minigen.float64 ...) or a tensor, got {arg!r}") from None
    return device, (None if dtype is None else np.dtype(dtype)), copy


# ------------------------------------------------------------------ creation
def _dtype(dtype):
    return backend.get_default_dtype() if dtype is None else np.dtype(dtype)


def _is_array(data):
    return isinstance(data, (np.ndarray, np.generic)) or backend.device_of(data) == "cuda"


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new leaf tensor holding a copy of ``data`` (PyTorch's ``torch.tensor`` rules).

    The dtype, unless given: a NumPy/CuPy array or scalar (or a tensor) keeps its own --
    a float64 array stays float64 (use ``.astype(np.float32)`` or ``dtype=`` for float32);
    Python floats take the default dtype (float32); Python ints give int64, bools bool.
    """
    if isinstance(data, Tensor):
        data = data.data
    if device is None:
        device = backend.device_of(data) if _is_array(data) else "cpu"
    xp = backend.xp_for(device)
    if _is_array(data):
        arr = xp.array(backend.to_device(data, device))  # a copy: optimizer steps never
    else:                                                 # write into the caller's array
        arr = np.array(data)
        if arr.dtype.kind == "f" and dtype is None:
            arr = arr.astype(backend.get_default_dtype())
        elif arr.dtype.kind == "O":
            raise TypeError(f"tensor(): cannot build a tensor from {type(data).__name__} "
                            "holding objects of mixed kinds or ragged lengths")
        arr = xp.asarray(arr)
    if dtype is not None:
        arr = arr.astype(np.dtype(dtype), copy=False)
    return Tensor(arr, requires_grad=requires_grad)


def numel(t):
    return t.numel()


def from_numpy(array):
    """A tensor sharing ``array``'s memory and dtype: changes to one show in the other."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    return Tensor(array)


def as_tensor(data, dtype=None, device=None):
    """``data`` as a tensor, sharing memory when it already has the dtype and device
    (a tensor is returned as it is); otherwise a converted copy."""
    if isinstance(data, Tensor):
        return data.to(device=device, dtype=dtype)
    if _is_array(data) and not isinstance(data, np.generic):
        same_device = device is None or backend.check_device(device) == backend.device_of(data)
        if same_device and (dtype is None or np.dtype(dtype) == data.dtype):
            return Tensor(data)
    return tensor(data, dtype=dtype, device=device)


def _shape(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(n) for n in shape)


def _new(fill, shape, dtype, device, requires_grad):
    xp = backend.xp_for(device or "cpu")
    return Tensor(fill(xp, _shape(shape), _dtype(dtype)), requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    return _new(lambda xp, s, d: xp.zeros(s, d), size, dtype, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False):
    return _new(lambda xp, s, d: xp.ones(s, d), size, dtype, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False):
    """Uninitialised memory, as ``torch.empty`` (here: zeros, so nothing random leaks in)."""
    return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def _fill_dtype(fill_value):
    """torch.full's inference: a bool gives bool, an int int64, a float the default dtype."""
    if isinstance(fill_value, (bool, np.bool_)):
        return np.dtype(np.bool_)
    if isinstance(fill_value, (int, np.integer)):
        return np.dtype(np.int64)
    return backend.get_default_dtype()


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    size = (size,) if isinstance(size, int) else tuple(size)
    dtype = _fill_dtype(fill_value) if dtype is None else dtype
    return _new(lambda xp, s, d: xp.full(s, fill_value, d), (size,), dtype, device,
                requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    return _new(lambda xp, s, d: xp.eye(n, m, dtype=d), (), dtype, device, requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    """Like ``torch.arange``: integers give int64, any float argument gives the default float."""
    if end is None:
        start, end = 0, start
    xp = backend.xp_for(device or "cpu")
    if dtype is None and all(isinstance(v, int) for v in (start, end, step)):
        dtype = np.int64
    return Tensor(xp.arange(start, end, step, dtype=_dtype(dtype)), requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    xp = backend.xp_for(device or "cpu")
    return Tensor(xp.linspace(start, end, int(steps), dtype=_dtype(dtype)), requires_grad)


def randn(*size, dtype=None, device=None, requires_grad=False):
    """Standard normal samples from minigen's seeded generator (see ``manual_seed``)."""
    gen = backend.rng(device or "cpu")
    return Tensor(gen.standard_normal(_shape(size), dtype=_dtype(dtype)), requires_grad)


def rand(*size, dtype=None, device=None, requires_grad=False):
    """Uniform [0, 1) samples from minigen's seeded generator."""
    gen = backend.rng(device or "cpu")
    return Tensor(gen.random(_shape(size), dtype=_dtype(dtype)), requires_grad)


def randint(low, high=None, size=None, dtype=None, device=None):
    """Integers uniform in [low, high): ``randint(high, size)`` or ``randint(low, high, size)``
    (PyTorch's two forms); int64 unless ``dtype``."""
    if size is None:  # randint(high, size)
        low, high, size = 0, low, high
    if size is None:
        raise TypeError("randint: give the size, e.g. randint(10, (3,)) or randint(0, 10, (3,))")
    size = (size,) if isinstance(size, int) else tuple(size)
    values = backend.rng(device or "cpu").integers(low, high, size=size)
    return Tensor(values.astype(np.int64 if dtype is None else np.dtype(dtype)))


def randperm(n, dtype=None, device=None):
    """A random permutation of 0 .. n-1 (int64)."""
    values = backend.rng(device or "cpu").permutation(int(n))
    return Tensor(values.astype(np.int64 if dtype is None else np.dtype(dtype)))


def _like(fn, t, dtype, device, requires_grad):
    return fn(*t.shape, dtype=dtype or t.dtype, device=device or t.device,
              requires_grad=requires_grad)


def zeros_like(t, dtype=None, device=None, requires_grad=False):
    return _like(zeros, t, dtype, device, requires_grad)


def ones_like(t, dtype=None, device=None, requires_grad=False):
    return _like(ones, t, dtype, device, requires_grad)


def empty_like(t, dtype=None, device=None, requires_grad=False):
    return _like(empty, t, dtype, device, requires_grad)


def randn_like(t, dtype=None, device=None, requires_grad=False):
    return _like(randn, t, dtype, device, requires_grad)


def rand_like(t, dtype=None, device=None, requires_grad=False):
    return _like(rand, t, dtype, device, requires_grad)


def full_like(t, fill_value, dtype=None, device=None, requires_grad=False):
    return full(t.shape, fill_value, dtype=dtype or t.dtype, device=device or t.device,
                requires_grad=requires_grad)

