"""In-place operations: ``x.add_(y)``, ``x -= y``, ``x[mask] = 0``, ``x.zero_()``, ...

PyTorch's rules, which training loops rely on:

* Where no gradient is being recorded (under ``no_grad``, or when nothing involved requires
  grad) the op writes into the tensor's own array: every view of that memory sees the change
  (``from_numpy``, ``detach()``, a parameter held by a model and an optimizer). This is how
  ``with no_grad(): p -= lr * p.grad`` trains a model.
* A leaf that requires grad (a parameter) may not be changed in place while gradients are
  recorded: the error says to wrap the update in ``no_grad()``.
* Otherwise (a non-leaf in the graph, e.g. ``h += residual``) the op is recorded: the tensor
  becomes the output of the new op, and its old value lives on, under the hood, as that
  op's input. Its array is then a new one (views of the old array do not follow).

Every in-place change bumps the tensor's ``_version``. A Function records the versions of
its inputs and output; if one changed before the backward runs, the backward refuses
("modified by an in-place operation") instead of computing a wrong gradient.
"""
import weakref

import numpy as np

from .. import backend
from ..autograd import is_grad_enabled, no_grad
from ..backend import get_array_module
from ..tensor import Tensor


def _alias(t):
    """A new Tensor object that takes ``t``'s place in the graph (its value before the op)."""
    alias = Tensor.__new__(Tensor)
    alias.data, alias.grad, alias._ctx = t.data, None, t._ctx
    alias.requires_grad, alias._retains_grad, alias._version = t.requires_grad, False, t._version
    if t._ctx is not None:
        t._ctx._output_ref = weakref.ref(alias)
    return alias


def _write(t, result, op):
    """Copy ``result``'s array into ``t``'s own memory (same shape; cast to t's dtype)."""
    if result.shape != t.shape:
        raise RuntimeError(f"{op}: the result has shape {result.shape}, which cannot be written "
                           f"into a tensor of shape {t.shape} in place")
    if result.dtype != t.dtype and result.dtype.kind == "f" and t.dtype.kind in "iub":
        raise TypeError(f"{op}: a {result.dtype} result cannot be written into a {t.dtype} "
                        "tensor in place; convert the tensor with .float() first")
    get_array_module(t.data).copyto(t.data, result.data, casting="unsafe")


def inplace(t, op, compute, *others):
    """Make ``t`` hold ``compute(t, *others)``, following the rules in this module's docstring."""
    recording = is_grad_enabled() and (
        t.requires_grad or any(isinstance(o, Tensor) and o.requires_grad for o in others))
    if not recording:
        with no_grad():
            _write(t, compute(t, *others), op)
        t._version += 1
        return t
    if t.is_leaf and t.requires_grad:
        raise RuntimeError(f"{op}: a leaf tensor that requires grad (a parameter?) is being "
                           "changed in place while gradients are recorded; do it under "
                           "`with minigen.no_grad():` (optimizer steps, weight clipping)")
    old = _alias(t)
    result = compute(old, *others)
    if any(result is o for o in (old, *others)):  # e.g. a no-op broadcast: t needs its own node
        result = _ops().astype(result, result.dtype, copy=True)
    if result.shape != t.shape:
        raise RuntimeError(f"{op}: the result has shape {result.shape}, which cannot be written "
                           f"into a tensor of shape {t.shape} in place")
    if result.dtype != t.dtype:
        result = result.to(dtype=t.dtype)
    t.data, t._ctx, t.requires_grad = result.data, result._ctx, result.requires_grad
    t._version += 1
    if result._ctx is not None:
        result._ctx._output_ref = weakref.ref(t)
        result._ctx.output_version = t._version
    return t


def _ops():
    from .. import ops
    return ops


# ------------------------------------------------------------------ arithmetic
def add_(t, other, *, alpha=1):
    return inplace(t, "add_", lambda a, b: _ops().add(a, b, alpha=alpha), other)


def sub_(t, other, *, alpha=1):
    return inplace(t, "sub_", lambda a, b: _ops().sub(a, b, alpha=alpha), other)


def mul_(t, other):
    return inplace(t, "mul_", lambda a, b: _ops().mul(a, b), other)


def div_(t, other):
    return inplace(t, "div_", lambda a, b: _ops().div(a, b), other)


def pow_(t, exponent):
    return inplace(t, "pow_", lambda a, e: _ops().pow(a, e), exponent)


def lerp_(t, end, weight):
    return inplace(t, "lerp_", lambda a, b: _ops().lerp(a, b, weight), end)


def clamp_(t, min=None, max=None):
    return inplace(t, "clamp_", lambda a: _ops().clamp(a, min, max))


clip_ = clamp_


def masked_fill_(t, mask, value):
    return inplace(t, "masked_fill_", lambda a: _ops().masked_fill(a, mask, value))


def copy_(t, src):
    """Write ``src`` (broadcast to ``t``'s shape, cast to its dtype) into ``t``."""
    src = src if isinstance(src, Tensor) else Tensor(np.asarray(src))
    return inplace(t, "copy_", lambda a, s: _ops().broadcast_to(s.to(a.device), a.shape), src)


def _unary(name):
    def method(t):
        return inplace(t, name + "_", getattr(_ops(), name))
    method.__name__ = name + "_"
    method.__doc__ = f"``{name}`` in place."
    return method


neg_, abs_, exp_, log_, sqrt_, sigmoid_, tanh_, relu_ = (
    _unary(n) for n in ("neg", "abs", "exp", "log", "sqrt", "sigmoid", "tanh", "relu"))


# ------------------------------------------------------------------ fills (never recorded)
def _fill(t, op, values):
    """Write constant ``values`` into ``t`` (an array of its shape, or a number). Not recorded:
    filling a tensor that a graph still needs makes that graph's backward fail, by name."""
    if is_grad_enabled() and t.requires_grad and t.is_leaf:
        raise RuntimeError(f"{op}: a leaf tensor that requires grad is being changed in place "
                           "while gradients are recorded; do it under `with minigen.no_grad():`")
    t.data[...] = values
    t._version += 1  # a graph that used the old values now refuses to run backward
    return t


def zero_(t):
    return _fill(t, "zero_", 0)


def fill_(t, value):
    return _fill(t, "fill_", value.item() if isinstance(value, Tensor) else value)


def normal_(t, mean=0.0, std=1.0):
    """Fill with N(mean, std^2) from minigen's generator."""
    z = backend.rng(t.device).standard_normal(t.shape, dtype=t.dtype)
    return _fill(t, "normal_", mean + std * z)


def uniform_(t, a=0.0, b=1.0):
    """Fill with U(a, b) from minigen's generator."""
    u = backend.rng(t.device).random(t.shape, dtype=t.dtype)
    return _fill(t, "uniform_", a + (b - a) * u)


def bernoulli_(t, p=0.5):
    u = backend.rng(t.device).random(t.shape, dtype=t.dtype)
    probs = p.data if isinstance(p, Tensor) else p
    return _fill(t, "bernoulli_", u < probs)


def exponential_(t, lambd=1.0):
    e = backend.rng(t.device).standard_exponential(t.shape, dtype=t.dtype)
    return _fill(t, "exponential_", e / lambd)


# ------------------------------------------------------------------ item assignment
def setitem_(t, index, value):
    """``t[index] = value``: an in-place op (recorded in the graph when it must be)."""
    ops = _ops()
    if not isinstance(value, Tensor):
        value = ops.as_tensor(value, like=t)
    return inplace(t, "setitem", lambda a, v: ops.index_put(a, index, v), value)
