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
    if a.device != b.device:
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
    if broadcast and a.shape != b.shape:
        try:
            get_array_module(a.data).broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise ValueError(f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast "
                             "together") from None
    return a, b


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
def add(a, b):
    return Add.apply(*_binary(a, b, "add"))


def sub(a, b):
    return Sub.apply(*_binary(a, b, "sub"))


def mul(a, b):
    return Mul.apply(*_binary(a, b, "mul"))


def div(a, b):
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
