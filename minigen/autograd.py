"""Reverse-mode automatic differentiation.

The whole mechanism is three ideas:

1. Every differentiable op is a ``Function`` subclass with ``forward`` (arrays in, an array
   out) and ``backward`` (the output's gradient in, one gradient per input out).
   ``Function.apply`` runs ``forward`` and, when a gradient is needed, records the
   function as the output tensor's ``_ctx`` -- that record *is* the graph.
2. ``backward`` is written with Tensor operations, not raw arrays. Run under ``no_grad``
   (the default) it builds no graph and costs nothing extra; run with
   ``create_graph=True`` it records its own graph, so a gradient can be differentiated
   again (WGAN-GP's gradient penalty, ``gradgradcheck``).
3. ``backprop`` sorts the graph topologically from the output and calls each
   ``backward`` once, summing the gradients that reach a tensor along several paths.

Writing a new op::

    class Cube(Function):
        def forward(self, x):               # arrays in, array out
            return x ** 3
        def backward(self, grad):           # Tensors in, Tensors out
            x, = self.inputs
            return grad * 3 * x ** 2

    y = Cube.apply(x)                       # x is a Tensor
    minigen.gradcheck(Cube.apply, [x64])    # check it against finite differences
"""
import contextlib
import inspect
import weakref

from .backend import get_array_module

# ------------------------------------------------------------------ global modes
_GRAD_ENABLED = [True]
_ANOMALY = [False]
_RUNNING_BACKWARD = []  # the Functions whose backward is running (anomaly reports name them)
# The active op recorder, when one is on: minigen.profile() (profiler.py) or
# minigen.viz.trace_modules() (dot.py). The last one started sees every Function.apply and
# backprop; when the list is empty (always, unless one is on) an op pays one test of it.
_RECORDERS = []


def is_grad_enabled():
    return _GRAD_ENABLED[-1]


@contextlib.contextmanager
def _grad_mode(enabled):
    _GRAD_ENABLED.append(enabled)
    try:
        yield
    finally:
        _GRAD_ENABLED.pop()


def no_grad():
    """Context manager: ops inside record no graph (inference, optimizer steps)."""
    return _grad_mode(False)


def enable_grad():
    """Context manager: record the graph again inside a ``no_grad`` block."""
    return _grad_mode(True)


def set_grad_enabled(enabled):
    return _grad_mode(bool(enabled))


@contextlib.contextmanager
def detect_anomaly():
    """Raise at the first op whose output (forward) or gradient (backward) holds NaN/inf.

    The error names the op, so a NaN is traced to where it was born instead of
    where it was noticed.
    """
    _ANOMALY.append(True)
    try:
        yield
    finally:
        _ANOMALY.pop()


def is_anomaly_enabled():
    return _ANOMALY[-1]


def _check_finite(array, what):
    xp = get_array_module(array)
    if array.dtype.kind == "f" and not bool(xp.isfinite(array).all()):
        kind = "nan" if bool(xp.isnan(array).any()) else "inf"
        raise FloatingPointError(f"detect_anomaly: {what} produced {kind}")


# ------------------------------------------------------------------ Function
class Function:
    """One differentiable op. Subclasses define ``forward`` and ``backward``.

    Inside ``backward``: ``self.inputs`` are the input Tensors (non-tensor arguments
    are passed to ``forward`` as keyword arguments and can be stored on ``self``),
    ``self.output`` is the output Tensor, ``self.needs_input_grad[i]`` tells whether
    input ``i`` wants a gradient. Return one gradient per input (a Tensor or None).
    """

    def forward(self, *arrays, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, grad):  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def name(self):
        return type(self).__name__

    @property
    def output(self):
        return self._output_ref()

    @classmethod
    def apply(cls, *inputs, **kwargs):
        """Run ``forward`` on the inputs' arrays; record the op when a gradient is needed.

        Positional arguments are the op's Tensor inputs (each gets a gradient from
        ``backward``); every other argument (a number, an array, a shape) is a keyword.
        """
        if _RECORDERS:  # minigen.profile() or viz.trace_modules() is on: it makes this call
            return _RECORDERS[-1].forward(cls, inputs, kwargs)
        arrays = [t.data for t in inputs if isinstance(t, Tensor)]
        if len(arrays) != len(inputs):
            raise _not_a_tensor(cls, inputs)
        fn = cls()
        out = Tensor(fn.forward(*arrays, **kwargs))
        if _ANOMALY[-1]:
            where = f"{_RUNNING_BACKWARD[-1].name} (backward)" if _RUNNING_BACKWARD else \
                f"{fn.name} (forward)"
            _check_finite(out.data, where)
        if _GRAD_ENABLED[-1]:
            needs = tuple([t.requires_grad for t in inputs])  # a list is quicker than a generator
            if True in needs:
                fn.inputs = inputs
                fn.needs_input_grad = needs
                fn.saved_versions = tuple([t._version for t in inputs])
                fn.output_version = 0
                # A weak reference: the output owns the function, not the reverse,
                # so no reference cycle keeps big arrays alive.
                fn._output_ref = weakref.ref(out)
                out.requires_grad = True
                out._ctx = fn
        return out


def apply_unrecorded(recorder, cls, inputs, kwargs):
    """``cls.apply(*inputs, **kwargs)`` as if ``recorder`` (the last of ``_RECORDERS``) were
    off: a recorder's ``forward`` wraps this with its timing or bookkeeping. A recorder
    started earlier (the profiler, around a module trace) still sees the call."""
    _RECORDERS.pop()
    try:
        return cls.apply(*inputs, **kwargs)
    finally:
        _RECORDERS.append(recorder)


# ------------------------------------------------------------------ errors that name the op
class BackwardError(RuntimeError):
    """A ``backward`` returned something that is not one gradient per input.

    ``op`` is the Function's name and ``input_index`` the input concerned (None when the
    result as a whole is wrong, e.g. too few gradients)."""

    def __init__(self, message, op=None, input_index=None):
        super().__init__(message)
        self.op = op
        self.input_index = input_index


def input_names(function_class):
    """The names of ``forward``'s positional parameters (``('x', 'w')`` for conv2d's
    ``forward(self, x, w, geom, cols=None)``), used to name an input by its role."""
    try:
        params = list(inspect.signature(function_class.forward).parameters.values())[1:]
    except (TypeError, ValueError):  # pragma: no cover - a builtin forward
        return ()
    return tuple(p.name for p in params
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


def describe_input(function_class, k, tensor=None):
    """'input 1 (w)' or, with the tensor, 'input 1 (w, shape (4, 3), float64)'."""
    names = input_names(function_class)
    parts = [names[k]] if k < len(names) else []
    if tensor is not None:
        parts += [f"shape {tuple(tensor.shape)}", str(tensor.dtype)]
    return f"input {k}" + (f" ({', '.join(parts)})" if parts else "")


def _not_a_tensor(cls, inputs):
    k = next(i for i, t in enumerate(inputs) if not isinstance(t, Tensor))
    return TypeError(
        f"{cls.__name__}.apply: input {k} is a {_type_name(inputs[k])}, not a Tensor. "
        f"Positional arguments of apply are the op's Tensor inputs (each gets a gradient); "
        f"pass other values as keywords, e.g. {cls.__name__}.apply(x, p=2.0), or make a "
        f"constant input a Tensor with minigen.tensor(value)")


def _type_name(value):
    """'float', 'numpy.ndarray', 'list': what a student wrote, as they would write it."""
    module = type(value).__module__
    return type(value).__name__ if module == "builtins" else \
        f"{module.split('.')[0]}.{type(value).__name__}"


def _bad_gradients(fn, result):
    """The error for a backward result that is not a tuple of one entry per input."""
    n = len(fn.inputs)
    roles = ", ".join(describe_input(type(fn), k) for k in range(n))
    if isinstance(result, list):
        what = f"a list of {len(result)}"
    elif isinstance(result, tuple):
        what = f"{len(result)} gradient{'s' * (len(result) != 1)}"
    elif isinstance(result, Tensor):
        what = "a single Tensor"
    else:
        what = f"a {_type_name(result)}"
    return BackwardError(
        f"{fn.name}.backward returned {what} for {n} input{'s' * (n != 1)} ({roles}); "
        f"return a tuple with one gradient (a Tensor, or None) per input, in order"
        + ("" if n != 1 else ", or the single Tensor itself"), op=fn.name)


def _bad_gradient(fn, k, parent, pg):
    """The error for a gradient of the wrong kind, shape or dtype for input ``k``."""
    role = f"{fn.name}.backward: the gradient for {describe_input(type(fn), k)}"
    if not isinstance(pg, Tensor):
        kind = _type_name(pg)
        hint = ("build it with Tensor operations (it then stays differentiable, which "
                "gradients of gradients need), or wrap it: minigen.Tensor(array)")
        return BackwardError(f"{role} is a {kind}, not a Tensor; {hint}", fn.name, k)
    if pg.shape != parent.shape:
        hint = ""
        if len(pg.shape) >= len(parent.shape):
            hint = ("; an input that was broadcast needs its gradient summed back to its shape "
                    "(minigen.ops.unbroadcast)")
        return BackwardError(f"{role} has shape {tuple(pg.shape)}, but the input has shape "
                             f"{tuple(parent.shape)}{hint}", fn.name, k)
    return BackwardError(f"{role} is {pg.dtype}, but the input is {parent.dtype}; a gradient "
                         "has its input's dtype", fn.name, k)


# ------------------------------------------------------------------ the graph walk
def _check_versions(fn, output):
    """Refuse to run ``fn.backward`` on tensors changed in place since its forward."""
    if output._version == fn.output_version and \
            tuple([t._version for t in fn.inputs]) == fn.saved_versions:
        return  # the usual case, asked once per op of every backward: one comparison
    changed = [i for i, (t, v) in enumerate(zip(fn.inputs, fn.saved_versions)) if t._version != v]
    if output._version != fn.output_version:
        what = f"the output of {fn.name}"
    elif changed:
        i = changed[0]
        what = f"input {i} of {fn.name} (shape {fn.inputs[i].shape})"
    else:
        return
    raise RuntimeError(f"one of the tensors needed for the gradient has been modified by an "
                       f"in-place operation: {what} changed after the forward pass. Make "
                       "that change out of place (y = y + 1 instead of y += 1), or do it "
                       "after backward()")


def _topological_order(roots):
    """Tensors reachable from ``roots`` through recorded ops, consumers before producers."""
    order, seen = [], set()
    for root in roots:
        stack = [(root, False)]
        while stack:  # iterative DFS: deep graphs (long RNN chains) must not hit recursion limits
            t, done = stack.pop()
            if done:
                order.append(t)
                continue
            if id(t) in seen:
                continue
            seen.add(id(t))
            stack.append((t, True))
            if t._ctx is not None:
                if t._ctx.inputs is None:
                    raise RuntimeError(
                        f"backward through {t._ctx.name} a second time: its graph was freed by the "
                        "first backward. Pass retain_graph=True to the first call to keep it.")
                for parent in t._ctx.inputs:
                    if parent.requires_grad and id(parent) not in seen:
                        stack.append((parent, False))
    order.reverse()
    return order


def backprop(roots, root_grads, create_graph=False, retain_graph=None, inputs=None,
             allow_unused=False):
    """Propagate ``root_grads`` back through the graph.

    With ``inputs=None`` gradients are accumulated into the ``.grad`` of the leaf tensors
    (``Tensor.backward``). With a list of ``inputs`` their gradients are returned instead and
    no ``.grad`` is touched (``minigen.grad``).
    """
    if _RECORDERS:  # minigen.profile() is on: it times the walk (it calls _backprop below)
        return _RECORDERS[-1].backprop(_backprop, roots, root_grads, create_graph, retain_graph,
                                       inputs, allow_unused)
    return _backprop(roots, root_grads, create_graph, retain_graph, inputs, allow_unused)


def _backprop(roots, root_grads, create_graph, retain_graph, inputs, allow_unused):
    if retain_graph is None:
        retain_graph = create_graph
    order = _topological_order(roots)
    grads = {}
    for root, g in zip(roots, root_grads):
        grads[id(root)] = g if id(root) not in grads else grads[id(root)] + g
    wanted = None if inputs is None else {id(t) for t in inputs}
    captured = {}

    with _grad_mode(create_graph):
        for t in order:
            g = grads.pop(id(t), None)
            if g is None:
                continue
            if wanted is not None and id(t) in wanted:
                captured[id(t)] = g
            if t._ctx is None:
                if wanted is None:
                    t.grad = g if t.grad is None else t.grad + g
                continue
            if wanted is None and t._retains_grad:
                t.grad = g if t.grad is None else t.grad + g
            fn = t._ctx
            _check_versions(fn, t)
            _RUNNING_BACKWARD.append(fn)
            try:
                in_grads = fn.backward(g)
            finally:
                _RUNNING_BACKWARD.pop()
            # One gradient per input, each a Tensor of its input's shape and dtype (or None):
            # anything else fails here, naming the op and the input, not far away later.
            if type(in_grads) is not tuple:
                if isinstance(in_grads, Tensor) and len(fn.inputs) == 1:
                    in_grads = (in_grads,)
                elif in_grads is None and len(fn.inputs) == 1:
                    in_grads = (None,)
                else:
                    raise _bad_gradients(fn, in_grads)
            if len(in_grads) != len(fn.inputs):
                raise _bad_gradients(fn, in_grads)
            for k, (parent, pg, needed) in enumerate(zip(fn.inputs, in_grads,
                                                         fn.needs_input_grad)):
                if pg is None:
                    continue
                if not isinstance(pg, Tensor):
                    raise _bad_gradient(fn, k, parent, pg)
                a, b = pg.data, parent.data
                if a.shape != b.shape or (a.dtype is not b.dtype and a.dtype != b.dtype):
                    raise _bad_gradient(fn, k, parent, pg)
                if not needed:
                    continue
                if _ANOMALY[-1]:
                    _check_finite(pg.data, f"{fn.name} (backward)")
                key = id(parent)
                grads[key] = pg if key not in grads else grads[key] + pg
            if not retain_graph:
                fn.inputs = None  # free the graph: a second backward raises clearly

    if inputs is None:
        return None
    result = []
    for t in inputs:
        g = captured.get(id(t))
        if g is None and not allow_unused:
            raise RuntimeError("grad: one of the inputs was not used to compute the outputs "
                               "(pass allow_unused=True to get None for it)")
        result.append(g)
    return tuple(result)


def grad(outputs, inputs, grad_outputs=None, create_graph=False, retain_graph=None,
         allow_unused=False, only_inputs=True):
    """Gradients of ``outputs`` with respect to ``inputs``, returned rather than accumulated.

    Mirrors ``torch.autograd.grad``. With ``create_graph=True`` the returned gradients are
    themselves differentiable (the gradient penalty of WGAN-GP is built this way).
    ``only_inputs`` is accepted for old PyTorch code (it has no effect there either).
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    roots, root_grads = [], []
    for out, g in zip(outputs, grad_outputs):
        if not out.requires_grad:
            raise RuntimeError("grad: an output does not require grad (was it computed under "
                               "no_grad, or from tensors without requires_grad=True?)")
        if g is None:
            if out.numel() != 1:
                raise RuntimeError(f"grad: output of shape {out.shape} is not a scalar; "
                                   "pass grad_outputs")
            g = ones_like(out)
        roots.append(out)
        root_grads.append(g)
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError("grad: an input does not require grad")
    return backprop(roots, root_grads, create_graph, retain_graph, inputs, allow_unused)


# tensor.py imports this module (backprop), so Tensor comes last: by now all of the above
# exists, and the hot paths (apply, the engine) find Tensor without an import per call.
from .tensor import Tensor, ones_like  # noqa: E402
