"""Elementwise arithmetic: each op is a Function whose backward is the chain rule, d/dx f.

Binary ops broadcast their inputs like NumPy; their gradients are summed back to each
input's shape by ``unbroadcast``.
"""
import numbers

import numpy as np

from ..autograd import Function
from ..backend import get_array_module
from ..tensor import Tensor
from .shape import as_tensor, unbroadcast


def _binary(a, b, op, broadcast=True):
    """Both arguments as Tensors on one device and of one float dtype, or a clear error.

    With ``broadcast`` their shapes must also broadcast together."""
    if not isinstance(a, Tensor):
        a = as_tensor(a, like=b)
    if not isinstance(b, Tensor):
        b = as_tensor(b, like=a)
    if type(a.data) is not type(b.data) and a.device != b.device:  # one array type: one device
        raise RuntimeError(f"{op}: tensors on different devices ({a.device} and {b.device}); "
                           "move one with .to(device)")
    if a.dtype != b.dtype:
        fa, fb = a.dtype.kind == "f", b.dtype.kind == "f"
        if fa and fb:
            raise TypeError(f"{op}: dtypes differ ({a.dtype} and {b.dtype}); convert one with "
                            ".float() or .double()")
        if fa:  # an integer/bool tensor meets a float one: it takes the float dtype
            b = Tensor(b.data.astype(a.dtype))
        elif fb:
            a = Tensor(a.data.astype(b.dtype))
    if broadcast and a.shape != b.shape and not _broadcastable(a.shape, b.shape):
        raise ValueError(f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast together")
    return a, b


def _broadcastable(shape_a, shape_b):
    """NumPy's broadcasting rule: aligned from the right, each pair of sizes is equal or one
    of them is 1. (Asked in Python: ``numpy.broadcast_shapes`` takes 3 us, more than the add
    of a (64, 256) batch it guards.)"""
    return all(m == n or m == 1 or n == 1 for m, n in zip(shape_a[::-1], shape_b[::-1]))


class Add(Function):
    def forward(self, a, b):
        return a + b

    def backward(self, g):
        a, b = self.inputs
        return unbroadcast(g, a.shape), unbroadcast(g, b.shape)


class Sub(Function):
    def forward(self, a, b):
        return a - b

    def backward(self, g):
        a, b = self.inputs
        return unbroadcast(g, a.shape), unbroadcast(-g, b.shape)


class Mul(Function):
    def forward(self, a, b):
        return a * b

    def backward(self, g):
        a, b = self.inputs
        ga = unbroadcast(g * b, a.shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(g * a, b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    def forward(self, a, b):
        return a / b

    def backward(self, g):
        a, b = self.inputs
        ga = g / b
        gb = unbroadcast(-ga * a / b, b.shape) if self.needs_input_grad[1] else None
        return unbroadcast(ga, a.shape), gb


class Neg(Function):
    def forward(self, a):
        return -a

    def backward(self, g):
        return -g


class PowScalar(Function):
    """x ** p for a constant exponent p: d/dx = p x^(p-1)."""

    def forward(self, a, p):
        self.p = p
        return a ** p

    def backward(self, g):
        a, = self.inputs
        if self.p == 0:
            return g * 0
        if self.p == 1:
            return g
        if self.p == 2:
            return g * (2 * a)
        return g * (self.p * a ** (self.p - 1))


class Pow(Function):
    """a ** b for two tensors: d/da = b a^(b-1), d/db = a^b log a."""

    def forward(self, a, b):
        return a ** b

    def backward(self, g):
        a, b = self.inputs
        ga = unbroadcast(g * b * a ** (b - 1), a.shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(g * self.output * log(a), b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Exp(Function):
    def forward(self, a):
        return get_array_module(a).exp(a)

    def backward(self, g):
        return g * self.output  # d/dx e^x = e^x


class Log(Function):
    def forward(self, a):
        return get_array_module(a).log(a)

    def backward(self, g):
        return g / self.inputs[0]


class Log1p(Function):
    def forward(self, a):
        return get_array_module(a).log1p(a)

    def backward(self, g):
        return g / (self.inputs[0] + 1)


class Sqrt(Function):
    def forward(self, a):
        return get_array_module(a).sqrt(a)

    def backward(self, g):
        return g / (2 * self.output)


class Sin(Function):
    def forward(self, a):
        return get_array_module(a).sin(a)

    def backward(self, g):
        return g * cos(self.inputs[0])


class Cos(Function):
    def forward(self, a):
        return get_array_module(a).cos(a)

    def backward(self, g):
        return -(g * sin(self.inputs[0]))


def _python_scalar(v):
    """A NumPy scalar as the Python number it holds: a Python number is 'weak' in NumPy's
    type promotion, so float32 ** np.float64(2) stays float32 instead of turning float64."""
    return v.item() if isinstance(v, np.generic) else v


def _constant(array, like):
    """A non-differentiable Tensor of ``like``'s dtype (masks, signs)."""
    return Tensor(array.astype(like.dtype, copy=False))


class Abs(Function):
    def forward(self, a):
        return get_array_module(a).abs(a)

    def backward(self, g):
        a, = self.inputs
        return g * _constant(get_array_module(a.data).sign(a.data), g)  # sign(0) = 0, as torch


class Clamp(Function):
    """Gradient passes where min <= x <= max (bounds included, as torch.clamp)."""

    def forward(self, a, min, max):
        self.bounds = (min, max)
        return get_array_module(a).clip(a, min, max)

    def backward(self, g):
        x = self.inputs[0].data
        lo, hi = self.bounds
        mask = (x >= (lo if lo is not None else -float("inf"))) & \
               (x <= (hi if hi is not None else float("inf")))
        return g * _constant(mask, g)


class Maximum(Function):
    """Elementwise max; at a tie each input gets half the gradient (torch.maximum's rule)."""

    def forward(self, a, b):
        return get_array_module(a).maximum(a, b)

    def backward(self, g):
        a, b = self.inputs
        w = (a.data > b.data) + 0.5 * (a.data == b.data)
        wa = _constant(w, g)
        return unbroadcast(g * wa, a.shape), unbroadcast(g * (1 - wa), b.shape)


class Minimum(Function):
    """Elementwise min; at a tie each input gets half the gradient."""

    def forward(self, a, b):
        return get_array_module(a).minimum(a, b)

    def backward(self, g):
        a, b = self.inputs
        w = (a.data < b.data) + 0.5 * (a.data == b.data)
        wa = _constant(w, g)
        return unbroadcast(g * wa, a.shape), unbroadcast(g * (1 - wa), b.shape)


class Where(Function):
    """cond ? a : b; the gradient goes to the branch that was chosen."""

    def forward(self, a, b, cond):
        self.cond = cond
        return get_array_module(a).where(cond, a, b)

    def backward(self, g):
        a, b = self.inputs
        mask = _constant(self.cond, g)
        return unbroadcast(g * mask, a.shape), unbroadcast(g * (1 - mask), b.shape)


# ------------------------------------------------------------------ public functions
def add(a, b, *, alpha=1):
    """``a + alpha * b`` (``torch.add``)."""
    return Add.apply(*_binary(a, b if alpha == 1 else b * alpha, "add"))


def sub(a, b, *, alpha=1):
    """``a - alpha * b`` (``torch.sub``)."""
    return Sub.apply(*_binary(a, b if alpha == 1 else b * alpha, "sub"))


def mul(a, b):
    return Mul.apply(*_binary(a, b, "mul"))


def div(a, b, *, rounding_mode=None):
    if rounding_mode is not None:
        raise NotImplementedError(f"div: rounding_mode={rounding_mode!r} is not implemented "
                                  "(it has no gradient); use (a / b).floor() on the values")
    return Div.apply(*_binary(a, b, "div"))


def neg(x):
    return Neg.apply(x)


def pow(a, b):
    """``a ** b``; a constant scalar exponent uses the cheaper PowScalar."""
    if isinstance(a, Tensor) and isinstance(b, (numbers.Number, np.generic)):
        return PowScalar.apply(a, p=_python_scalar(b))
    return Pow.apply(*_binary(a, b, "pow"))  # an array exponent is a constant Tensor here


def exp(x):
    return Exp.apply(x)


def log(x):
    return Log.apply(x)


def log1p(x):
    return Log1p.apply(x)


def sqrt(x):
    return Sqrt.apply(x)


def sin(x):
    return Sin.apply(x)


def cos(x):
    return Cos.apply(x)


def square(x):
    return x * x


def reciprocal(x):
    return 1 / x


def rsqrt(x):
    return PowScalar.apply(x, p=-0.5)


def lerp(start, end, weight):
    """``start + weight * (end - start)`` (``torch.lerp``: exponential moving averages)."""
    return start + weight * (end - start)


def abs(x):
    return Abs.apply(x)


def clamp(x, min=None, max=None):
    if min is None and max is None:
        raise ValueError("clamp: give at least one of min and max")
    return Clamp.apply(x, min=_python_scalar(min), max=_python_scalar(max))


clip = clamp


def maximum(a, b):
    return Maximum.apply(*_binary(a, b, "maximum"))


def minimum(a, b):
    return Minimum.apply(*_binary(a, b, "minimum"))


def where(cond, a, b):
    """Pick ``a`` where ``cond`` holds, else ``b`` (cond: a bool Tensor or array)."""
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        a = as_tensor(a)  # two Python numbers: a tensor of the default dtype, as torch.where
    a, b = _binary(a, b, "where")
    cond = cond.data if isinstance(cond, Tensor) else cond
    xp = get_array_module(a.data)
    shape = xp.broadcast_shapes(cond.shape, a.shape, b.shape)
    if a.shape != shape:
        a = a.broadcast_to(shape)
    if b.shape != shape:
        b = b.broadcast_to(shape)
    return Where.apply(a, b, cond=xp.broadcast_to(cond, shape))


def sign(x):
    """-1, 0 or 1 elementwise; not differentiable (its derivative is 0 almost everywhere)."""
    return Tensor(get_array_module(x.data).sign(x.data))


def compare(a, b, op):
    """Elementwise comparison (op: 'less', 'equal', ...); a bool Tensor, never differentiable."""
    a, b = _binary(a, b, op)
    return Tensor(getattr(get_array_module(a.data), op)(a.data, b.data))


def _comparison(name, op):
    def method(a, b):
        return compare(a, b, op)
    method.__name__, method.__doc__ = name, f"``a {name} b`` elementwise: ``compare(a, b, {op!r})``."
    return method


# torch's method names of ==, !=, <, <=, >, >=
eq, ne, lt, le, gt, ge = (_comparison(n, op) for n, op in (
    ("eq", "equal"), ("ne", "not_equal"), ("lt", "less"), ("le", "less_equal"),
    ("gt", "greater"), ("ge", "greater_equal")))


def equal(a, b):
    """True when both tensors have one shape and the same entries (a Python bool)."""
    return a.shape == b.shape and bool(compare(a, b, "equal").data.all())


def isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    a, b = _binary(a, b, "isclose")
    xp = get_array_module(a.data)
    return Tensor(xp.isclose(a.data, b.data, rtol=rtol, atol=atol, equal_nan=equal_nan))


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    return bool(isclose(a, b, rtol, atol, equal_nan).data.all())


def _constant_of(x, fn):
    """An elementwise function with no useful gradient (rounding, tests): a constant Tensor."""
    return Tensor(getattr(get_array_module(x.data), fn)(x.data))


def isnan(x):
    return _constant_of(x, "isnan")


def isinf(x):
    return _constant_of(x, "isinf")


def isfinite(x):
    return _constant_of(x, "isfinite")


def floor(x):
    """Rounded down; a constant (its derivative is 0 almost everywhere), as ``sign``."""
    return _constant_of(x, "floor")


def ceil(x):
    return _constant_of(x, "ceil")


def round(x):
    return _constant_of(x, "round")


def logical(a, b, op):
    """``&``, ``|``, ``^``, ``~`` on bool (or integer) tensors: masks, never differentiable."""
    if b is None:
        operands = (a,)
    else:
        a, b = (t if isinstance(t, Tensor) else as_tensor(t, like=o) for t, o in ((a, b), (b, a)))
        operands = (a, b)
    for t in operands:
        if t.dtype.kind not in "biu":
            raise TypeError(f"{op}: only bool and integer tensors, got {t.dtype} (compare first, "
                            "e.g. (x > 0) & (y < 1))")
    xp = get_array_module(a.data)
    return Tensor(getattr(xp, op)(*(t.data for t in operands)))


def logical_and(a, b):
    return logical(a.bool(), b.bool(), "logical_and")


def logical_or(a, b):
    return logical(a.bool(), b.bool(), "logical_or")


def logical_not(a):
    return logical(a.bool(), None, "logical_not")


def masked_fill(x, mask, value):
    """``x`` with ``value`` where ``mask`` is True (``torch.Tensor.masked_fill``)."""
    mask = mask.data if isinstance(mask, Tensor) else mask
    if getattr(mask, "dtype", None) != np.bool_:
        raise TypeError("masked_fill: the mask must be a bool tensor")
    xp = get_array_module(x.data)
    mask = xp.broadcast_to(mask, x.shape)
    return where(mask, value, x)
