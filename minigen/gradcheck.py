"""Check analytic gradients against finite differences.

The derivative of ``f`` at ``x`` along a direction is approximated by the central difference

    (f(x + eps e) - f(x - eps e)) / (2 eps)          (error O(eps^2))

Doing this for every unit vector ``e`` gives the numerical Jacobian; doing backward once per
output element gives the analytic one. ``gradcheck`` compares the two entry by entry and,
when they disagree, says exactly where. Use float64 inputs: float32 rounding (about 1e-7)
divided by ``2 eps`` swamps the signal.

Exercise -- write an op and check it::

    import minigen as mg

    class Square(mg.Function):
        def forward(self, x):
            return x * x
        def backward(self, grad):
            x, = self.inputs
            return grad * 2 * x

    x = mg.randn(3, 4, dtype="float64", requires_grad=True)
    mg.gradcheck(Square.apply, [x])        # True, or a GradcheckError naming the element
    mg.gradgradcheck(Square.apply, [x])    # the backward is differentiable too

For large inputs ``fast_mode=True`` checks one random directional derivative instead of
the whole Jacobian: two forward passes and one backward (Chainer's ``check_backward``).
"""
import numpy as np

from .autograd import grad as autograd_grad
from .backend import get_array_module, to_numpy
from .tensor import Tensor


class GradcheckError(AssertionError):
    """Raised by ``gradcheck`` with a report of the first mismatching entry."""


def _outputs(f, inputs):
    out = f(*inputs)
    outs = [out] if isinstance(out, Tensor) else [o for o in out]
    return [o for o in outs if o is not None]


def _flat_outputs(f, inputs):
    """f(*inputs) as one flat float64 NumPy vector."""
    return np.concatenate([to_numpy(o.data).astype(np.float64).ravel() for o in _outputs(f, inputs)])


def _checked_inputs(inputs):
    inputs = list(inputs)
    for i, t in enumerate(inputs):
        if isinstance(t, Tensor) and t.requires_grad and t.dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} is {t.dtype}; use float64 inputs "
                            "(float32 rounding swamps finite differences)")
    return inputs


def _differentiable(inputs):
    return [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]


def _perturbed(f, inputs, t, index, eps):
    """(f(x + eps e_k) - f(x - eps e_k)) / (2 eps) for the entry ``index`` of tensor ``t``."""
    old = t.data[index].copy()
    t.data[index] = old + eps
    plus = _flat_outputs(f, inputs)
    t.data[index] = old - eps
    minus = _flat_outputs(f, inputs)
    t.data[index] = old
    return (plus - minus) / (2 * eps)


def numerical_jacobian(f, inputs, eps=1e-6):
    """One (n_outputs, n_entries) matrix per differentiable input, by central differences."""
    inputs = _checked_inputs(inputs)
    jacobians = []
    for i in _differentiable(inputs):
        t = inputs[i]
        cols = [_perturbed(f, inputs, t, idx, eps) for idx in np.ndindex(*t.shape)]
        n_out = len(cols[0]) if cols else _flat_outputs(f, inputs).size
        jacobians.append(np.stack(cols, axis=1) if cols else np.zeros((n_out, 0)))
    return jacobians


def analytic_jacobian(f, inputs):
    """The same matrices from backward: row j is the gradient of output entry j."""
    inputs = _checked_inputs(inputs)
    wanted = [inputs[i] for i in _differentiable(inputs)]
    outs = _outputs(f, inputs)
    sizes = [o.numel() for o in outs]
    jac = [np.zeros((sum(sizes), t.numel())) for t in wanted]
    row = 0
    for o in outs:
        xp = get_array_module(o.data)
        for j in range(o.numel()):
            if o.requires_grad:
                onehot = xp.zeros(o.numel(), dtype=o.dtype)
                onehot[j] = 1
                gs = autograd_grad([o], wanted, [Tensor(onehot.reshape(o.shape))],
                                   retain_graph=True, allow_unused=True)
                for k, g in enumerate(gs):
                    if g is not None:
                        jac[k][row] = to_numpy(g.data).astype(np.float64).ravel()
            row += 1
    return jac


def numerical_grad(f, inputs, grad_output=None, eps=1e-6):
    """Finite-difference gradient of ``sum(grad_output * f(*inputs))`` for each differentiable
    input: the numbers ``.grad`` should hold after ``f(*inputs).backward(grad_output)``."""
    inputs = _checked_inputs(inputs)
    out = _flat_outputs(f, inputs)
    w = np.ones_like(out) if grad_output is None else \
        to_numpy(getattr(grad_output, "data", grad_output)).astype(np.float64).ravel()
    return [(w @ J).reshape(inputs[i].shape)
            for i, J in zip(_differentiable(inputs), numerical_jacobian(f, inputs, eps))]


def _locate(sizes, flat):
    """(which tensor, its multi-index) for a flat position in a concatenation."""
    for k, shape in enumerate(sizes):
        n = int(np.prod(shape))
        if flat < n:
            return k, tuple(int(v) for v in np.unravel_index(flat, shape)) if shape else ()
        flat -= n
    return len(sizes) - 1, ()


def _report(inputs, outs, i_pos, J_a, J_n, atol, rtol):
    err = np.abs(J_a - J_n)
    bad = err > atol + rtol * np.abs(J_n)
    if not bad.any():
        return None
    r, c = np.unravel_index(np.argmax(np.where(bad, err, -1)), err.shape)
    t = inputs[i_pos]
    out_k, out_idx = _locate([o.shape for o in outs], r)
    in_idx = tuple(int(v) for v in np.unravel_index(c, t.shape)) if t.shape else ()
    return (f"gradcheck failed: d output[{out_k}]{list(out_idx)} / d input[{i_pos}]{list(in_idx)} "
            f"(input shape {t.shape})\n"
            f"    analytic  = {J_a[r, c]:.10g}\n"
            f"    numerical = {J_n[r, c]:.10g}\n"
            f"    |error|   = {err[r, c]:.3g} > atol + rtol*|numerical| = "
            f"{atol + rtol * abs(J_n[r, c]):.3g}\n"
            f"    {int(bad.sum())} of {bad.size} Jacobian entries of this input disagree")


def gradcheck(f, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, fast_mode=False,
              raise_exception=True, seed=0):
    """True when backward agrees with central differences for every differentiable input.

    ``f`` takes the ``inputs`` (Tensors; those with ``requires_grad`` are checked, in
    float64) and returns a Tensor or a tuple of Tensors. An entry passes when
    ``|analytic - numerical| <= atol + rtol * |numerical|``. On failure a ``GradcheckError``
    names the input, the entry, both values and the error (or False is returned when
    ``raise_exception=False``).
    """
    inputs = _checked_inputs(inputs)
    positions = _differentiable(inputs)
    if not positions:
        raise ValueError("gradcheck: no input has requires_grad=True")
    if fast_mode:
        message = _fast_check(f, inputs, positions, eps, atol, rtol, seed)
    else:
        outs = _outputs(f, inputs)
        message = None
        for i_pos, J_a, J_n in zip(positions, analytic_jacobian(f, inputs),
                                   numerical_jacobian(f, inputs, eps)):
            message = _report(inputs, outs, i_pos, J_a, J_n, atol, rtol)
            if message:
                break
    if message is None:
        return True
    if raise_exception:
        raise GradcheckError(message)
    return False


def _fast_check(f, inputs, positions, eps, atol, rtol, seed):
    """Compare one directional derivative: <grad L, v> vs (L(x + eps v) - L(x - eps v)) / 2eps,
    with L = <u, f(x)> for random u and v."""
    rng = np.random.default_rng(seed)
    outs = _outputs(f, inputs)
    us = [Tensor(get_array_module(o.data).asarray(rng.standard_normal(o.shape), dtype=o.dtype))
          for o in outs]
    u_flat = np.concatenate([to_numpy(u.data).ravel() for u in us])
    wanted = [inputs[i] for i in positions]
    diffable = [(o, u) for o, u in zip(outs, us) if o.requires_grad]
    grads = autograd_grad([o for o, _ in diffable], wanted, [u for _, u in diffable],
                          allow_unused=True) if diffable else [None] * len(wanted)
    vs = [rng.standard_normal(t.shape) for t in wanted]
    analytic = sum(float((to_numpy(g.data) * v).sum()) for g, v in zip(grads, vs) if g is not None)

    originals = [t.data.copy() for t in wanted]
    xp = get_array_module(wanted[0].data)

    def shifted(sign):
        for t, o, v in zip(wanted, originals, vs):
            t.data[...] = o + sign * eps * xp.asarray(v)
        return u_flat @ _flat_outputs(f, inputs)

    numerical = (shifted(+1) - shifted(-1)) / (2 * eps)
    for t, o in zip(wanted, originals):
        t.data[...] = o
    if abs(analytic - numerical) <= atol + rtol * abs(numerical):
        return None
    return (f"gradcheck (fast mode) failed: directional derivative along a random direction\n"
            f"    analytic  = {analytic:.10g}\n    numerical = {numerical:.10g}\n"
            f"    |error|   = {abs(analytic - numerical):.3g}")


def gradgradcheck(f, inputs, grad_outputs=None, eps=1e-6, atol=1e-5, rtol=1e-3,
                  fast_mode=False, raise_exception=True, seed=0):
    """Check second derivatives: gradcheck of the map (inputs, grad_outputs) -> gradients.

    The gradients are built with ``create_graph=True``, so this checks that every
    backward is itself correctly differentiable.
    """
    inputs = _checked_inputs(inputs)
    positions = _differentiable(inputs)
    outs = _outputs(f, inputs)
    if grad_outputs is None:
        rng = np.random.default_rng(seed + 1)
        grad_outputs = [Tensor(get_array_module(o.data).asarray(rng.standard_normal(o.shape)),
                               requires_grad=True) for o in outs]
    n = len(inputs)

    def first_grads(*args):
        xs, gos = list(args[:n]), list(args[n:])
        ys = _outputs(f, xs)
        pairs = [(y, g) for y, g in zip(ys, gos) if y.requires_grad]
        wanted = [xs[i] for i in positions]
        gs = autograd_grad([y for y, _ in pairs], wanted, [g for _, g in pairs],
                           create_graph=True, allow_unused=True)
        # an input that does not reach the output has gradient 0
        return tuple(g if g is not None else Tensor(w.data * 0) for g, w in zip(gs, wanted))

    return gradcheck(first_grads, inputs + list(grad_outputs), eps, atol, rtol, fast_mode,
                     raise_exception, seed)
