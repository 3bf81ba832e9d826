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
    mg.gradcheck(Square.apply, [x])        # True, or a GradcheckError naming the entry
    mg.gradgradcheck(Square.apply, [x])    # the backward is differentiable too

A failure reads like this (a backward that forgot the factor 2)::

    gradcheck failed for Square at input 0 (x), shape (3, 4), float64:
        entry     d output[0, 0] / d x[0, 0]
        analytic  = 0.1257302211
        numerical = 0.2514604422
        |error|   = 0.126 > atol + rtol*|numerical| = 3.51e-06
        all 12 non-zero entries of d output / d x disagree (144 entries; 132 zero in
        both); largest |error| 1.3

The op is named by its Function class (or, for a function that composes ops, by its name and
the ops in its graph), the input by its role and its name in ``forward``; the count is of
the Jacobian's *non-zero* entries, so "all 12" says every derivative is wrong, not that a
few of 144 are.

The tolerances (``atol=1e-6, rtol=1e-5``) are the ones the project's own tests use: with
``eps = 1e-6`` the central difference is off by about ``eps^2 |f'''| + 1e-16 |f| / eps``,
far below them, so a looser tolerance would only hide small mistakes (a wrong constant
inside a square root, an epsilon off by a factor of 3).

For large inputs ``fast_mode=True`` checks one random directional derivative instead of
the whole Jacobian: two forward passes and one backward (Chainer's ``check_backward``).
"""
import functools
import inspect
from dataclasses import dataclass

import numpy as np

from .autograd import Function, describe_input, input_names
from .autograd import grad as autograd_grad
from .backend import get_array_module, to_numpy
from .tensor import Tensor

ATOL, RTOL, EPS = 1e-6, 1e-5, 1e-6


class GradcheckError(AssertionError):
    """Raised by ``gradcheck`` / ``gradgradcheck`` with a report of the first mismatch.

    Besides the message, the fields say what failed, for programs that grade a check:

    * ``check`` -- ``"gradcheck"`` or ``"gradgradcheck"`` (the function that raised);
    * ``order`` -- 1 when first derivatives are wrong, 2 when only second derivatives are;
    * ``op`` -- the op's name (the Function class, or the last op of ``f``'s graph);
    * ``wrt`` -- the input by role: ``"input 0 (x)"``, ``"grad_output 0"``;
    * ``output`` -- the output by role: ``"output 0"``, ``"gradient of input 0 (x)"``;
    * ``entry`` -- ``(output index, input index)`` of the first disagreeing Jacobian entry
      (None in fast mode and for a linearity failure);
    * ``analytic``, ``numerical`` -- the two values there;
    * ``n_bad``, ``n_nonzero``, ``n_entries`` -- how many entries of that input's Jacobian
      disagree, how many are non-zero in either, and how many there are.
    """

    def __init__(self, message, **fields):
        super().__init__(message)
        self.check = fields.get("check", "gradcheck")
        self.order = fields.get("order", 1)
        for name in ("op", "wrt", "output", "entry", "analytic", "numerical", "n_bad",
                     "n_nonzero", "n_entries"):
            setattr(self, name, fields.get(name))


# ------------------------------------------------------------------ naming what is checked
@dataclass
class _Names:
    """How a check names the op, its inputs and its outputs in messages."""
    check: str        # "gradcheck" / "gradgradcheck"
    order: int
    op: str           # "Softsign", or "<lambda> (last op Mul)"
    inputs: list      # each input's role: "input 0 (x)", "grad_output"
    symbols: list     # and the short name used in a derivative: "x", "input0", "grad_output"
    outputs: list     # each output's short name: "output", "output1", "grad_x"
    header: str = ""  # a line put before the report (gradgradcheck's explanation)


def _function_class(f):
    """The Function subclass when ``f`` is ``SomeFunction.apply`` (or a ``functools.partial``
    of it that fixes keyword arguments), else None."""
    while isinstance(f, functools.partial):
        f = f.func
    owner = getattr(f, "__self__", None)
    return owner if isinstance(owner, type) and issubclass(owner, Function) else None


def _graph_ops(outs):
    """The names of the ops in the graph behind ``outs``, inputs first, each once."""
    from .autograd import _topological_order
    names = []
    for t in reversed(_topological_order([o for o in outs if o.requires_grad])):
        if t._ctx is not None and t._ctx.name not in names:
            names.append(t._ctx.name)
    return names


def op_name(f, outs=()):
    """How messages name the op ``f``: ``Softsign`` for ``Softsign.apply``; for a function
    that composes ops, its name and the ops of the graph behind its outputs ``outs``:
    ``loss (last op Mul; ops Softsign, Mul)``."""
    cls = _function_class(f)
    if cls is not None:
        return cls.__name__
    while isinstance(f, functools.partial):
        f = f.func
    name = getattr(f, "__name__", None) or type(f).__name__
    last = [o._ctx.name for o in outs if o._ctx is not None]
    if not last:
        return name
    ops = _graph_ops(outs)
    shown = ", ".join(ops[:8]) + (", ..." if len(ops) > 8 else "")
    return f"{name} (last op {', '.join(dict.fromkeys(last))}" + \
        (f"; ops {shown})" if len(ops) > 1 else ")")


def _parameter_names(f):
    """The names of a plain function's positional parameters, after those a
    ``functools.partial`` has already filled: ``('mu', 'logvar')`` for ``kl(mu, logvar)``."""
    bound = 0
    while isinstance(f, functools.partial):
        bound += len(f.args)
        f = f.func
    try:
        params = list(inspect.signature(f).parameters.values())
    except (TypeError, ValueError):  # a builtin
        return ()
    names = []
    for p in params:
        if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            break  # *args: the rest have no names
        names.append(p.name)
    return tuple(names[bound:])


def _names(f, inputs, outs, check="gradcheck"):
    cls = _function_class(f)
    arg_names = input_names(cls) if cls else _parameter_names(f)
    roles = [describe_input(cls, k) if cls else
             f"input {k}" + (f" ({arg_names[k]})" if k < len(arg_names) else "")
             for k in range(len(inputs))]
    symbols = [arg_names[k] if k < len(arg_names) else f"input{k}" for k in range(len(inputs))]
    outputs = ["output"] if len(outs) == 1 else [f"output{k}" for k in range(len(outs))]
    return _Names(check, 1, op_name(f, outs), roles, symbols, outputs)


# ------------------------------------------------------------------ the two Jacobians
def _outputs(f, inputs):
    out = f(*inputs)
    outs = [out] if isinstance(out, Tensor) else [o for o in out]
    return [o for o in outs if o is not None]


def _flat_outputs(f, inputs):
    """f(*inputs) as one flat float64 NumPy vector."""
    return np.concatenate([to_numpy(o.data).astype(np.float64).ravel() for o in _outputs(f, inputs)])


def _checked_inputs(inputs, check="gradcheck"):
    inputs = list(inputs)
    for i, t in enumerate(inputs):
        if isinstance(t, Tensor) and t.requires_grad and t.dtype != np.float64:
            raise TypeError(f"{check}: input {i} is {t.dtype}; use float64 inputs "
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


def numerical_jacobian(f, inputs, eps=EPS):
    """One (n_outputs, n_entries) matrix per differentiable input, by central differences."""
    inputs = _checked_inputs(inputs)
    jacobians = []
    for i in _differentiable(inputs):
        t = inputs[i]
        cols = [_perturbed(f, inputs, t, idx, eps) for idx in np.ndindex(*t.shape)]
        n_out = len(cols[0]) if cols else _flat_outputs(f, inputs).size
        jacobians.append(np.stack(cols, axis=1) if cols else np.zeros((n_out, 0)))
    return jacobians


def _backward(outs, wanted, grad_outputs):
    """The gradients of sum_k <grad_outputs[k], outs[k]> in ``wanted`` (zeros where unused)."""
    pairs = [(o, g) for o, g in zip(outs, grad_outputs) if o.requires_grad]
    if not pairs:
        return [None] * len(wanted)
    return autograd_grad([o for o, _ in pairs], wanted, [g for _, g in pairs],
                         retain_graph=True, allow_unused=True)


def analytic_jacobian(f, inputs):
    """The same matrices from backward: row j is the gradient of output entry j."""
    inputs = _checked_inputs(inputs)
    wanted = [inputs[i] for i in _differentiable(inputs)]
    outs = _outputs(f, inputs)
    jac = [np.zeros((sum(o.data.size for o in outs), t.data.size)) for t in wanted]
    row = 0
    for o in outs:
        xp = get_array_module(o.data)
        for j in range(o.data.size):
            onehot = xp.zeros(o.data.size, dtype=o.dtype)
            onehot[j] = 1
            for col, g in enumerate(_backward([o], wanted, [Tensor(onehot.reshape(o.shape))])):
                if g is not None:
                    jac[col][row] = to_numpy(g.data).astype(np.float64).ravel()
            row += 1
    return jac


def numerical_grad(f, inputs, grad_output=None, eps=EPS):
    """Finite-difference gradient of ``sum(grad_output * f(*inputs))`` for each differentiable
    input: the numbers ``.grad`` should hold after ``f(*inputs).backward(grad_output)``."""
    inputs = _checked_inputs(inputs)
    out = _flat_outputs(f, inputs)
    w = np.ones_like(out) if grad_output is None else \
        to_numpy(getattr(grad_output, "data", grad_output)).astype(np.float64).ravel()
    return [(w @ J).reshape(inputs[i].shape)
            for i, J in zip(_differentiable(inputs), numerical_jacobian(f, inputs, eps))]


# ------------------------------------------------------------------ reports
def _locate(shapes, flat):
    """(which tensor, its multi-index) for a flat position in a concatenation."""
    for k, shape in enumerate(shapes):
        n = int(np.prod(shape))
        if flat < n:
            return k, tuple(int(v) for v in np.unravel_index(flat, shape)) if shape else ()
        flat -= n
    return len(shapes) - 1, ()


def _index(idx):
    return f"[{', '.join(map(str, idx))}]" if idx else ""


def _report(names, inputs, outs, i_pos, J_a, J_n, atol, rtol):
    """None when the Jacobians of input ``i_pos`` agree, else the GradcheckError."""
    err = np.abs(J_a - J_n)
    bad = err > atol + rtol * np.abs(J_n)
    if not bad.any():
        return None
    # the first disagreeing entry in reading order (output-major), as a student scans them
    r, c = np.argwhere(bad)[0]
    t = inputs[i_pos]
    out_k, out_idx = _locate([o.shape for o in outs], r)
    in_idx = tuple(int(v) for v in np.unravel_index(c, t.shape)) if t.shape else ()
    # "non-zero": above atol/2 in either Jacobian; two entries below it cannot disagree, so
    # every disagreeing entry is a non-zero one
    nonzero = (np.abs(J_a) > atol / 2) | (np.abs(J_n) > atol / 2)
    n_bad, n_nonzero = int(bad.sum()), int(nonzero.sum())
    share = (f"all {n_nonzero} non-zero entries" if n_bad == n_nonzero else
             f"{n_bad} of the {n_nonzero} non-zero entries")
    if n_nonzero == 1:
        share = "the one non-zero entry"
    role, x, y = names.inputs[i_pos], names.symbols[i_pos], names.outputs[out_k]
    worst = float(err[bad].max())
    message = (
        f"{names.header}{names.check} failed for {names.op} at {role}, "
        f"shape {tuple(t.shape)}, {t.dtype}:\n"
        f"    entry     d {y}{_index(out_idx)} / d {x}{_index(in_idx)}\n"
        f"    analytic  = {J_a[r, c]:.10g}\n"
        f"    numerical = {J_n[r, c]:.10g}\n"
        f"    |error|   = {err[r, c]:.3g} > atol + rtol*|numerical| = "
        f"{atol + rtol * abs(J_n[r, c]):.3g}\n"
        f"    {share} of d {y} / d {x} disagree{'s' * (n_nonzero == 1)} ({bad.size} "
        f"entr{'ies' if bad.size != 1 else 'y'}; {bad.size - n_nonzero} zero in both)"
        + (f"; largest |error| {worst:.3g}" if n_bad > 1 else ""))
    return GradcheckError(message, check=names.check, order=names.order, op=names.op,
                          wrt=role, output=y, entry=(out_idx, in_idx),
                          analytic=float(J_a[r, c]), numerical=float(J_n[r, c]), n_bad=n_bad,
                          n_nonzero=n_nonzero, n_entries=int(bad.size))


def _linearity_report(names, f, inputs, outs, positions, jacobians, atol, rtol, seed):
    """A backward must be linear in the output gradient: backward(u) == u^T J.

    The Jacobian rows come from one-hot output gradients, which never show a backward that
    mishandles a negative or fractional gradient (``g.abs()``, ``g ** 2`` agree with ``g``
    on 0 and 1); one random signed ``u`` does."""
    rng = np.random.default_rng(seed + 2)
    us = [rng.standard_normal(o.shape) for o in outs]
    u_flat = np.concatenate([u.ravel() for u in us])
    xp = get_array_module(outs[0].data)
    grads = _backward(outs, [inputs[i] for i in positions],
                      [Tensor(xp.asarray(u, dtype=o.dtype)) for u, o in zip(us, outs)])
    for i_pos, J_n, g in zip(positions, jacobians, grads):
        expected = u_flat @ J_n
        got = np.zeros_like(expected) if g is None else to_numpy(g.data).astype(np.float64).ravel()
        bad = np.abs(got - expected) > atol + rtol * np.abs(expected)
        if bad.any():
            c = int(np.argwhere(bad)[0][0])
            t = inputs[i_pos]
            in_idx = tuple(int(v) for v in np.unravel_index(c, t.shape)) if t.shape else ()
            role, x = names.inputs[i_pos], names.symbols[i_pos]
            return GradcheckError(
                f"{names.header}{names.check} failed for {names.op} at {role}: the backward is "
                f"not linear in the output gradient. Every Jacobian entry agrees (they are "
                f"computed with one-hot output gradients), but for a random signed output "
                f"gradient u the gradient of {x} is wrong (does the backward take the abs, "
                f"square or sign of the incoming gradient?)\n"
                f"    entry     d <u, output> / d {x}{_index(in_idx)}\n"
                f"    analytic  = {got[c]:.10g}   (backward(u))\n"
                f"    numerical = {expected[c]:.10g}   (u^T J)",
                check=names.check, order=names.order, op=names.op, wrt=role,
                output="output gradient", analytic=float(got[c]), numerical=float(expected[c]),
                n_bad=int(bad.sum()), n_nonzero=int(bad.size), n_entries=int(bad.size))
    return None


# ------------------------------------------------------------------ gradcheck
def gradcheck(f, inputs, eps=EPS, atol=ATOL, rtol=RTOL, fast_mode=False,
              raise_exception=True, seed=0):
    """True when backward agrees with central differences for every differentiable input.

    ``f`` takes the ``inputs`` (Tensors; those with ``requires_grad`` are checked, in
    float64; others, such as fixed noise, are held constant) and returns a Tensor or a
    tuple of Tensors. An entry passes when ``|analytic - numerical| <= atol + rtol *
    |numerical|``. The backward is also checked to be linear in the output gradient.

    On failure a ``GradcheckError`` names the op (the Function class when ``f`` is
    ``SomeFunction.apply``, else the last op of ``f``'s graph), the input by role, the first
    disagreeing entry, both values, and how many of the Jacobian's non-zero entries
    disagree; with ``raise_exception=False`` False is returned instead. A malformed
    backward result (a list, a missing gradient, a NumPy array, a wrong shape or dtype)
    raises ``minigen.BackwardError`` from the engine, naming the op and the input.
    """
    inputs = _checked_inputs(inputs)
    error = _gradcheck(f, inputs, eps, atol, rtol, fast_mode, seed, None)
    if error is None:
        return True
    if raise_exception:
        raise error
    return False


def _gradcheck(f, inputs, eps, atol, rtol, fast_mode, seed, names):
    """The GradcheckError for ``f`` at ``inputs``, or None when its gradients are right."""
    positions = _differentiable(inputs)
    check = names.check if names else "gradcheck"
    if not positions:
        raise ValueError(f"{check}: no input has requires_grad=True")
    outs = _outputs(f, inputs)
    names = names or _names(f, inputs, outs)
    if fast_mode:
        return _fast_check(names, f, inputs, outs, positions, eps, atol, rtol, seed)
    numerical = numerical_jacobian(f, inputs, eps)
    for i_pos, J_a, J_n in zip(positions, analytic_jacobian(f, inputs), numerical):
        error = _report(names, inputs, outs, i_pos, J_a, J_n, atol, rtol)
        if error is not None:
            return error
    return _linearity_report(names, f, inputs, outs, positions, numerical, atol, rtol, seed)


def _fast_check(names, f, inputs, outs, positions, eps, atol, rtol, seed):
    """Compare one directional derivative: <grad L, v> vs (L(x + eps v) - L(x - eps v)) / 2eps,
    with L = <u, f(x)> for random u and v."""
    rng = np.random.default_rng(seed)
    us = [Tensor(get_array_module(o.data).asarray(rng.standard_normal(o.shape), dtype=o.dtype))
          for o in outs]
    u_flat = np.concatenate([to_numpy(u.data).ravel() for u in us])
    wanted = [inputs[i] for i in positions]
    grads = _backward(outs, wanted, us)
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
    roles = ", ".join(names.inputs[i] for i in positions)
    return GradcheckError(
        f"{names.header}{names.check} (fast mode) failed for {names.op}: the directional "
        f"derivative along a random direction of {roles} disagrees (run without fast_mode to "
        f"see which entry)\n"
        f"    analytic  = {analytic:.10g}\n    numerical = {numerical:.10g}\n"
        f"    |error|   = {abs(analytic - numerical):.3g}",
        check=names.check, order=names.order, op=names.op, wrt=roles, output="all outputs",
        analytic=analytic, numerical=numerical)


# ------------------------------------------------------------------ gradgradcheck
def gradgradcheck(f, inputs, grad_outputs=None, eps=EPS, atol=ATOL, rtol=RTOL,
                  fast_mode=False, raise_exception=True, seed=0, first_order=True):
    """Check first AND second derivatives of ``f``.

    Second derivatives are the derivatives of the backward pass. The backward is run with
    ``create_graph=True``, which makes the map ``(inputs, grad_outputs) -> gradients`` an
    ordinary differentiable function; ``gradcheck`` of that map compares its analytic
    Jacobian (a backward of the backward) with finite differences of the backward itself.
    It catches a backward that is right in value but not differentiable as written
    (computed on raw arrays or detached tensors, so its own gradient is lost), and a
    backward whose own backward is wrong.

    That comparison alone cannot see a wrong first derivative: a wrong backward is still
    a function, and its own derivative may be computed correctly. So ``gradcheck(f,
    inputs)`` runs first (``first_order=False`` skips it when the caller has just run it),
    and its failure is reported under this function's name.

    ``grad_outputs`` (one per output of ``f``; random normal by default, seeded) are the
    output gradients the backward is taken at; they are inputs of the checked map, named
    ``grad_output k`` in messages. The gradients it returns are named ``gradient of input k``.
    """
    inputs = _checked_inputs(inputs, "gradgradcheck")
    positions = _differentiable(inputs)
    if not positions:
        raise ValueError("gradgradcheck: no input has requires_grad=True")
    outs = _outputs(f, inputs)
    first = _names(f, inputs, outs, check="gradgradcheck")
    error = None
    if first_order:
        first.header = (f"gradgradcheck: the first derivatives of {first.op} are already wrong "
                        f"(second derivatives are only meaningful once they are right):\n")
        error = _gradcheck(f, inputs, eps, atol, rtol, fast_mode, seed, first)
    if error is None:
        error = _second_order(f, inputs, outs, positions, first, grad_outputs, eps, atol, rtol,
                              fast_mode, seed, first_order)
    if error is None:
        return True
    if raise_exception:
        raise error
    return False


def _second_order(f, inputs, outs, positions, first, grad_outputs, eps, atol, rtol, fast_mode,
                  seed, first_order):
    if grad_outputs is None:
        rng = np.random.default_rng(seed + 1)
        grad_outputs = [Tensor(get_array_module(o.data).asarray(rng.standard_normal(o.shape)),
                               requires_grad=True) for o in outs]
    n = len(inputs)

    def first_grads(*args):
        xs, gos = list(args[:n]), list(args[n:])
        wanted = [xs[i] for i in positions]
        ys = _outputs(f, xs)
        pairs = [(y, g) for y, g in zip(ys, gos) if y.requires_grad]
        gs = autograd_grad([y for y, _ in pairs], wanted, [g for _, g in pairs],
                           create_graph=True, allow_unused=True) if pairs else [None] * len(wanted)
        # an input that does not reach the output has gradient 0
        return tuple(g if g is not None else Tensor(w.data * 0) for g, w in zip(gs, wanted))

    go_roles = ["grad_output"] if len(outs) == 1 else [f"grad_output{k}" for k in range(len(outs))]
    known = (f"the first derivatives of {first.op} are right, but its backward pass"
             if first_order else f"the backward pass of {first.op}")
    x = first.symbols[positions[0]]  # the first differentiable input, to explain the naming
    names = _Names(
        "gradgradcheck", 2, first.op, first.inputs + go_roles, first.symbols + go_roles,
        [f"grad_{first.symbols[i]}" for i in positions],
        header=(f"gradgradcheck: {known} is not correctly differentiable (is part of it "
                f"computed on raw arrays or detached tensors?); grad_{x} below is the "
                f"gradient the backward returns for {x}.\n"))
    return _gradcheck(first_grads, inputs + list(grad_outputs), eps, atol, rtol, fast_mode, seed,
                      names)
