"""The computation graph behind a tensor, drawn as Graphviz DOT text.

``draw_graph(loss)`` walks the graph that autograd recorded (each tensor's ``_ctx`` is the
Function that made it, each Function's ``inputs`` are its input tensors) and writes

* one box per op, named by its Function class (``MatMul``, ``Conv2d``, ``LogSoftmax``);
* one record per tensor: its name when it has one (a parameter of ``params``, "output"),
  shape, dtype, and whether it requires a gradient -- and, with ``grads=True`` after a
  backward, the norm of its ``.grad``;
* an edge from each input tensor to the op, and from the op to the tensor it made.

Leaves that need a gradient (the weights) are green, constants grey, the output yellow.

Big graphs stay legible with module collapsing: run the forward inside
``trace_modules(model)``, which notes in which module call each op was made, and pass
the trace as ``collapse=``; each call of a sub-module (at ``depth`` 1: the model's direct
children) becomes one node naming the module, its class, its ops and its parameters::

    with mg.viz.trace_modules(model) as trace:
        loss = model.elbo_parts(x)["loss"]
    dot = mg.viz.draw_graph(loss, collapse=trace)               # DOT text
    mg.viz.draw_graph(loss, "vae.svg", collapse=trace)          # needs Graphviz's `dot`

Rendering to SVG/PNG/PDF runs Graphviz's ``dot`` program (``apt-get install graphviz``);
the DOT text alone needs nothing. After ``backward()`` the graph is freed unless
``retain_graph=True`` was passed: draw before, or keep it.
"""
import os
import shutil
import subprocess
from collections import Counter, defaultdict

import numpy as np

from . import autograd
from .backend import to_numpy
from .tensor import Tensor

COLORS = {"param": "#d9f2d9", "const": "#eeeeee", "output": "#fff3b0", "op": "#dbe8ff",
          "module": "#f6e0ff"}


# ------------------------------------------------------------------ module scopes
class ModuleTrace:
    """Which module call made each op (filled by ``trace_modules``).

    ``calls`` lists the module calls in order, each ``(qualified name, class name)``;
    ``scope[id(fn)]`` is the tuple of call indices (outermost first) open when ``fn`` ran.
    """

    def __init__(self, model):
        self.model = model
        self.calls = []
        self.scope = {}
        self.param_names = {id(p): name for name, p in model.named_parameters()}
        self._stack = []
        self._keep = []   # the traced Functions, kept alive so that their ids stay unique

    # called by Function.apply while the trace is on (autograd._RECORDERS)
    def forward(self, cls, inputs, kwargs):
        out = autograd.apply_unrecorded(self, cls, inputs, kwargs)
        if out._ctx is not None:
            self.scope[id(out._ctx)] = tuple(self._stack)
            self._keep.append(out._ctx)
        return out

    def backprop(self, run, *args):
        # nothing to note here; a recorder started before this trace still sees the walk
        autograd._RECORDERS.pop()
        try:
            return autograd.backprop(*args)
        finally:
            autograd._RECORDERS.append(self)

    def group(self, fn, depth):
        """The call that owns ``fn`` at nesting ``depth`` (1 = a child of the model), or None."""
        stack = self.scope.get(id(fn), ())
        return stack[depth - 1] if len(stack) >= depth else None


class trace_modules:
    """Context manager: note, for every op made inside it, which sub-module calls were open.

    Each module of ``model`` (the model itself excepted) gets a thin wrapper around its
    ``forward`` for the duration of the block; the ops it runs are tagged through the hook
    every ``Function.apply`` offers (``autograd._RECORDERS``). Returns a ``ModuleTrace``.
    Not to be combined with ``minigen.profile()`` in the same block (the innermost one sees
    the ops)."""

    def __init__(self, model):
        self.trace = ModuleTrace(model)

    def __enter__(self):
        trace = self.trace
        self._wrapped = []
        for name, module in trace.model.named_modules():
            if not name:
                continue
            original = module.forward

            def wrapper(*args, _original=original, _name=name, _cls=type(module).__name__,
                        **kwargs):
                trace.calls.append((_name, _cls))
                trace._stack.append(len(trace.calls) - 1)
                try:
                    return _original(*args, **kwargs)
                finally:
                    trace._stack.pop()

            object.__setattr__(module, "forward", wrapper)  # an instance attribute shadows
            self._wrapped.append(module)
        autograd._RECORDERS.append(trace)
        return trace

    def __exit__(self, *exc):
        autograd._RECORDERS.remove(self.trace)
        for module in self._wrapped:
            object.__delattr__(module, "forward")
        return False


# ------------------------------------------------------------------ the graph
def _graph(roots):
    """Ops (consumers first) and tensors of the recorded graph behind ``roots``."""
    ops, tensors, seen = [], {}, set()
    stack = list(roots)
    for r in roots:
        tensors[id(r)] = r
    while stack:
        t = stack.pop()
        fn = t._ctx
        if fn is None or id(fn) in seen:
            continue
        if fn.inputs is None:
            raise RuntimeError(
                f"draw_graph: the graph through {fn.name} was freed by backward(); call "
                f"backward(retain_graph=True) to draw it afterwards, or draw it before")
        seen.add(id(fn))
        ops.append((fn, t))
        for parent in fn.inputs:
            if id(parent) not in tensors:
                tensors[id(parent)] = parent
            stack.append(parent)
    return ops, tensors


def _escape(text):
    """Text safe inside a DOT record label."""
    for ch in "\\{}|<>\"":
        text = text.replace(ch, "\\" + ch)
    return text


def _shape(shape):
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _tensor_label(t, name, grads):
    fields = [name] if name else []
    if t._ctx is None and not t.requires_grad and t.data.size == 1:  # a constant: its value
        fields.append(f"= {to_numpy(t.data).reshape(()).item():.4g}")
    fields += [f"{_shape(t.shape)} {t.dtype}", "requires_grad" if t.requires_grad else "no grad"]
    if grads and t.grad is not None:
        norm = float(np.linalg.norm(to_numpy(t.grad.data).astype(np.float64)))
        fields.append(f"|grad| = {norm:.4g}")
    return "{" + "|".join(_escape(f) for f in fields) + "}"


def draw_graph(tensor, path=None, *, params=None, grads=False, collapse=None, depth=1,
               rankdir="TB", title=None):
    """The computation graph behind ``tensor`` (or a list of tensors) as Graphviz DOT text.

    * ``params`` names tensors: a Module (its ``named_parameters()``) or a dict name ->
      Tensor. With ``collapse`` the traced model's parameters are named already.
    * ``grads=True`` adds the norm of each tensor's ``.grad`` (after ``backward(...,
      retain_graph=True)``; leaves keep their gradient, intermediates need ``retain_grad()``).
    * ``collapse`` -- a ``ModuleTrace`` from ``trace_modules(model)``: every call of a
      module at nesting ``depth`` (1 = the model's children) becomes one node; the tensors
      inside it and the parameters only it uses are folded into its label.
    * ``path`` -- also write the drawing: ``.dot`` (the text), or ``.svg`` / ``.png`` /
      ``.pdf`` rendered by Graphviz's ``dot`` (a clear error says how to install it).
    * ``rankdir`` -- "TB" (inputs at the top) or "LR" (inputs on the left); ``title``.

    Returns the DOT text.
    """
    roots = [tensor] if isinstance(tensor, Tensor) else list(tensor)
    ops, tensors = _graph(roots)
    names = _param_names(params, collapse)
    for k, r in enumerate(roots):
        names.setdefault(id(r), "output" if len(roots) == 1 else f"output {k}")

    # which node each op is drawn in: its own box, or its module call's box
    owner = {}
    for fn, _ in ops:
        group = collapse.group(fn, depth) if collapse is not None else None
        owner[id(fn)] = ("call", group) if group is not None else ("op", id(fn))
    consumers = defaultdict(set)   # tensor id -> nodes reading it
    for fn, _ in ops:
        for parent in fn.inputs:
            consumers[id(parent)].add(owner[id(fn)])
    made_by = {id(out): owner[id(fn)] for fn, out in ops}
    root_ids = {id(r) for r in roots}

    def hidden(tid):
        """A tensor that lives inside one collapsed call only: folded into its node."""
        node = made_by.get(tid)
        readers = consumers.get(tid, set())
        if tid in root_ids:
            return False
        if node is not None:
            return node[0] == "call" and readers <= {node}
        # a weight that only this call uses (its own parameter); data stays visible
        return tensors[tid].requires_grad and len(readers) == 1 and \
            next(iter(readers))[0] == "call"

    ids = {}

    def node_id(key):
        return ids.setdefault(key, f"n{len(ids)}")

    lines = [f"digraph minigen {{", f'  graph [rankdir={rankdir}, fontname="Helvetica"'
             + (f', label="{_escape(title)}", labelloc=t' if title else "") + "];",
             '  node [fontname="Helvetica", fontsize=10];', '  edge [color="#555555"];']
    # tensors
    for tid, t in reversed(list(tensors.items())):
        if hidden(tid):
            continue
        if tid in root_ids:
            color = COLORS["output"]
        elif t._ctx is None:
            color = COLORS["param"] if t.requires_grad else COLORS["const"]
        else:
            color = "white"
        lines.append(f'  {node_id(("t", tid))} [shape=record, style=filled, fillcolor="{color}", '
                     f'label="{_tensor_label(t, names.get(tid), grads)}"];')
    # ops and module calls
    members = defaultdict(list)
    for fn, _ in reversed(ops):
        members[owner[id(fn)]].append(fn)
    for key, fns in members.items():
        if key[0] == "op":
            lines.append(f'  {node_id(key)} [shape=box, style="rounded,filled", '
                         f'fillcolor="{COLORS["op"]}", label="{_escape(fns[0].name)}"];')
        else:
            lines.append(f'  {node_id(key)} [shape=box, style="filled,bold", '
                         f'fillcolor="{COLORS["module"]}", '
                         f'label="{_escape(_call_label(collapse, key[1], fns, tensors, names, hidden))}"];')
    # edges: input tensor -> node -> output tensor
    edges = []
    for fn, out in reversed(ops):
        node = owner[id(fn)]
        for parent in fn.inputs:
            if not hidden(id(parent)):
                edges.append((node_id(("t", id(parent))), node_id(node)))
        if not hidden(id(out)):
            edges.append((node_id(node), node_id(("t", id(out)))))
    for a, b in dict.fromkeys(edges):   # once each, in order
        lines.append(f"  {a} -> {b};")
    lines.append("}")
    dot = "\n".join(lines) + "\n"
    if path is not None:
        render(dot, path)
    return dot


def _param_names(params, collapse):
    names = {}
    if collapse is not None:
        names.update(collapse.param_names)
    if params is not None:
        items = params.named_parameters() if hasattr(params, "named_parameters") else \
            params.items()
        names.update({id(p): name for name, p in items})
    return names


def _call_label(trace, call, fns, tensors, names, hidden):
    """'fc1: Linear' / '2 ops: MatMul, Add' / 'params: fc1.weight (400, 784), ...'."""
    name, cls = trace.calls[call]
    repeat = sum(1 for c in trace.calls[:call] if c[0] == name)
    head = f"{name}: {cls}" + (f" (call {repeat + 1})" if repeat else "")
    counts = Counter(fn.name for fn in fns)
    ops = ", ".join(f"{op} x{n}" if n > 1 else op for op, n in counts.items())
    lines = [head, f"{len(fns)} op{'s' * (len(fns) != 1)}: {ops}"]
    inner = {id(p) for fn in fns for p in fn.inputs}
    folded = [tensors[tid] for tid in inner if tid in tensors and hidden(tid)
              and tensors[tid]._ctx is None and tid in names]
    if folded:
        lines.append("params: " + ", ".join(f"{names[id(p)]} {_shape(p.shape)}" for p in folded))
    return "\n".join(lines)


# ------------------------------------------------------------------ rendering
FORMATS = ("svg", "png", "pdf")


def render(dot, path):
    """Write DOT text to ``path``: as is for ``.dot``, else rendered by Graphviz's ``dot``."""
    fmt = os.path.splitext(path)[1].lstrip(".").lower()
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    if fmt in ("dot", "gv"):
        with open(path, "w") as f:
            f.write(dot)
        return path
    if fmt not in FORMATS:
        raise ValueError(f"draw_graph: cannot write {path!r}: use a .dot, .svg, .png or .pdf path")
    program = shutil.which("dot")
    if program is None:
        raise RuntimeError(
            f"draw_graph: rendering {path!r} needs Graphviz's `dot` program, which is not "
            f"installed (Debian/Ubuntu: sudo apt-get install graphviz; macOS: brew install "
            f"graphviz). The DOT text needs nothing: draw_graph(...) returns it, and a .dot "
            f"path writes it")
    result = subprocess.run([program, f"-T{fmt}", "-o", path], input=dot.encode(),
                            capture_output=True)
    if result.returncode != 0:
        raise RuntimeError(f"draw_graph: dot failed on {path!r}: "
                           f"{result.stderr.decode(errors='replace').strip()}")
    return path
