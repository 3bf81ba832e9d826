"""Where the time goes: a per-op profiler.

    with minigen.profile() as prof:
        for _ in range(10):
            loss = model(x).sum()
            loss.backward()
            optimizer.step()
    print(prof.table())                  # per Function: calls, total and mean time, bytes
    prof.chrome_trace("trace.json")      # open in chrome://tracing or ui.perfetto.dev

What is timed, and how the rows add up to the block's wall time:

* every ``Function.apply`` (the op's **forward**), counted when it runs at the top level
  (not inside another op's backward);
* every ``backward`` the engine calls, *including* the ops that backward runs (the rows
  read like PyTorch's ``MulBackward0``: the cost of the gradient of ``Mul``);
* the **autograd engine** itself: the graph walk and the sums of gradients that meet;
* each optimizer's ``step`` (``Adam.step``), and any ``record_function(name)`` block of
  your own (its time outside the ops it contains);
* **outside ops**: everything else in the block -- Python, NumPy on raw arrays, data
  handling -- so that the rows sum to the wall time exactly and nothing is hidden;
* **JIT compile**: the first call of a Numba kernel compiles it (or loads it from the
  cache), which can take seconds; that time is taken out of the op that triggered it and
  shown apart, so a first pass does not mislead.

Bytes are those of each op's newly allocated output (forward) or gradients (backward);
views (reshape, transpose, slicing) allocate nothing and count 0.

Cost: nothing when off -- ``Function.apply`` and ``backprop`` test one list
(``autograd._RECORDERS``) and go on; the engine's loop has no hook at all (an op recorded
inside the block carries a timed stand-in for its ``backward``). When on, a few microseconds
per op. A graph built before the block and walked inside it shows its backwards as engine
time.
"""
import json
import time
import weakref
from collections import defaultdict
from dataclasses import dataclass

from . import autograd
_now = time.perf_counter


@dataclass
class OpStats:
    """One row of the profile. ``kind``: "op" (a Function), "engine", "optimizer",
    "region" (a record_function block), "outside", "jit". Times in seconds, steady-state
    (JIT compilation excluded, reported in ``jit_time``)."""
    name: str
    kind: str
    module: str = ""
    fwd_calls: int = 0
    fwd_time: float = 0.0
    bwd_calls: int = 0
    bwd_time: float = 0.0
    bytes: int = 0
    jit_time: float = 0.0

    @property
    def total(self):
        return self.fwd_time + self.bwd_time


class _Frame:
    """An open timed call: when it started, how much of it was spent in children that have
    rows of their own, and how much in JIT compilation not claimed by such a child."""
    __slots__ = ("kind", "t0", "child", "jit")

    def __init__(self, kind, t0):
        self.kind, self.t0, self.child, self.jit = kind, t0, 0.0, 0.0


class profile:
    """Context manager: profile the ops run inside it (see the module docstring).

    ``trace=False`` keeps only the table (no per-call events for ``chrome_trace``)."""

    def __init__(self, trace=True):
        self.trace = trace
        self.stats = {}                  # (name, kind) -> OpStats
        self.events = []                 # (name, category, start, duration) for the trace
        self.wall = 0.0
        self._stack = []
        self._loose_jit = 0.0            # JIT outside any timed call
        self._start = None

    # ------------------------------------------------------------ on and off
    def __enter__(self):
        if self._start is not None:
            raise RuntimeError("minigen.profile: this profiler was used already; make a new one")
        self._listener = _JitListener(self)
        self._listener.install()
        self._patched = _patch_optimizers(self)
        autograd._RECORDERS.append(self)
        self._start = _now()
        return self

    def __exit__(self, *exc):
        self.wall = _now() - self._start
        autograd._RECORDERS.remove(self)
        _unpatch_optimizers(self._patched)
        self._listener.uninstall()
        return False

    # ------------------------------------------------------------ the hooks
    def forward(self, cls, inputs, kwargs):
        """Function.apply, timed; the op it records gets a timed backward."""
        stack = self._stack
        if stack and stack[-1].kind != "region":
            # inside another timed call (an op run by a backward, a gradient sum of the
            # engine): part of that call's time; only the trace keeps it, as a nested slice
            start = _now()
            out = autograd.apply_unrecorded(self, cls, inputs, kwargs)
            if self.trace:
                self.events.append((cls.__name__, "forward", start - self._start,
                                    _now() - start))
            _TimedBackward.attach(self, out._ctx)   # (double backward: its graph is walked too)
            return out
        frame = _Frame("forward", _now())
        stack.append(frame)
        try:
            out = autograd.apply_unrecorded(self, cls, inputs, kwargs)
        finally:
            end = _now()
            stack.pop()
        self._record(cls.__name__, "forward", frame, end, cls.__module__,
                     _allocated((out,), inputs))
        _TimedBackward.attach(self, out._ctx)
        return out

    def backprop(self, run, roots, root_grads, create_graph, retain_graph, inputs,
                 allow_unused):
        """The engine's walk, timed (each backward in it is timed by its _TimedBackward)."""
        frame = self._open("engine")
        try:
            return run(roots, root_grads, create_graph, retain_graph, inputs, allow_unused)
        finally:
            end = self._close(frame)
            self._record("autograd engine", "engine", frame, end)

    def backward(self, fn, g):
        """``fn.backward(g)``, timed (called by the op's _TimedBackward)."""
        frame = _Frame("backward", _now())
        self._stack.append(frame)
        try:
            grads = type(fn).backward(fn, g)
        finally:
            end = _now()
            self._stack.pop()
        result = grads if isinstance(grads, (tuple, list)) else (grads,)
        self._record(fn.name, "backward", frame, end, type(fn).__module__,
                     _allocated(result, (g,)))
        return grads

    def step(self, optimizer, run, closure):
        """An optimizer's step, timed."""
        frame = self._open("optimizer")
        try:
            return run(optimizer, closure)
        finally:
            end = self._close(frame)
            self._record(f"{type(optimizer).__name__}.step", "optimizer", frame, end,
                         type(optimizer).__module__)

    def record_function(self, name):
        """A named block of your own: ``with prof.record_function("sgd update"): ...``."""
        return _Region(self, name)

    # ------------------------------------------------------------ bookkeeping
    def _open(self, kind):
        frame = _Frame(kind, _now())
        self._stack.append(frame)
        return frame

    def _close(self, frame):
        end = _now()
        self._stack.pop()
        return end

    def _record(self, name, kind, frame, end, module="", nbytes=0):
        duration = end - frame.t0
        if self.trace:
            self.events.append((name, kind, frame.t0 - self._start, duration))
        parent = self._stack[-1] if self._stack else None
        # a row of its own: a backward always; anything else at the top level or directly
        # inside a record_function block (an op run by a backward belongs to that backward)
        if kind == "backward" or parent is None or parent.kind == "region":
            key = (name, "op" if kind in ("forward", "backward") else kind)
            row = self.stats.get(key)
            if row is None:
                row = self.stats[key] = OpStats(name, key[1], module)
            steady = duration - frame.child - frame.jit
            if kind == "backward":
                row.bwd_calls += 1
                row.bwd_time += steady
            else:
                row.fwd_calls += 1
                row.fwd_time += steady
            row.bytes += nbytes
            row.jit_time += frame.jit
            if parent is not None:
                parent.child += duration
        else:
            parent.jit += frame.jit

    def _jit(self, start, duration):
        """Called by the Numba listener: ``duration`` seconds of compilation just ended."""
        if self._stack:
            self._stack[-1].jit += duration
        else:
            self._loose_jit += duration
        if self.trace:
            self.events.append(("JIT compile (Numba)", "jit", start - self._start, duration))

    # ------------------------------------------------------------ results
    def rows(self):
        """Every row, ops by total time (largest first), then the engine, optimizers, your
        regions, "outside ops" and "JIT compile": their ``total``s plus JIT sum to ``wall``."""
        ops = sorted((s for s in self.stats.values() if s.kind == "op"),
                     key=lambda s: -s.total)
        others = sorted((s for s in self.stats.values() if s.kind != "op"),
                        key=lambda s: ("engine", "optimizer", "region").index(s.kind))
        jit = self._loose_jit + sum(s.jit_time for s in self.stats.values())
        timed = sum(s.total for s in self.stats.values())
        outside = OpStats("outside ops (Python, raw NumPy)", "outside",
                          fwd_time=max(0.0, self.wall - timed - jit))
        return ops + others + [outside, OpStats("JIT compile (Numba, first calls)", "jit",
                                                jit_time=jit)]

    def table(self, limit=None):
        """The profile as text, ops sorted by total time."""
        rows = self.rows()
        wall = self.wall or 1e-12
        head = (f"{'op':<34}{'fwd calls':>10}{'fwd ms':>9}{'mean us':>9}{'bwd calls':>10}"
                f"{'bwd ms':>9}{'mean us':>9}{'total ms':>10}{'%':>7}{'MB out':>8}{'jit ms':>8}")
        lines = [f"minigen.profile: {1e3 * self.wall:.1f} ms wall in the block", head,
                 "-" * len(head)]
        ops = [r for r in rows if r.kind == "op"]
        shown = ops if limit is None else ops[:limit]
        for r in shown + [r for r in rows if r.kind != "op"]:
            if r.kind == "jit":
                total = r.jit_time
            else:
                total = r.total
            fwd = (f"{r.fwd_calls:>10}{1e3 * r.fwd_time:>9.2f}"
                   f"{1e6 * r.fwd_time / r.fwd_calls:>9.1f}") if r.fwd_calls else " " * 28
            bwd = (f"{r.bwd_calls:>10}{1e3 * r.bwd_time:>9.2f}"
                   f"{1e6 * r.bwd_time / r.bwd_calls:>9.1f}") if r.bwd_calls else " " * 28
            mb = f"{r.bytes / 2 ** 20:>8.1f}" if r.bytes else " " * 8
            jit = f"{1e3 * r.jit_time:>8.1f}" if r.jit_time and r.kind != "jit" else " " * 8
            lines.append(f"{r.name[:33]:<34}{fwd}{bwd}{1e3 * total:>10.2f}"
                         f"{100 * total / wall:>6.1f}%{mb}{jit}")
        if limit is not None and len(ops) > limit:
            rest = ops[limit:]
            total = sum(r.total for r in rest)
            lines.insert(3 + limit, f"{f'({len(rest)} more ops)':<34}{'':>56}"
                                    f"{1e3 * total:>10.2f}{100 * total / wall:>6.1f}%")
        lines.append("-" * len(head))
        lines.append(f"{'total (= wall)':<34}{'':>56}{1e3 * self.wall:>10.2f}{100.0:>6.1f}%")
        return "\n".join(lines)

    def __str__(self):
        return self.table()

    def chrome_trace(self, path):
        """Write the calls as a Chrome trace (chrome://tracing, ui.perfetto.dev): one slice
        per forward, backward, engine walk, optimizer step, region and JIT compilation,
        nested as they ran."""
        if not self.trace:
            raise RuntimeError("chrome_trace: this profile was made with trace=False")
        events = [{"name": name, "cat": cat, "ph": "X", "ts": 1e6 * start, "dur": 1e6 * dur,
                   "pid": 0, "tid": 0} for name, cat, start, dur in self.events]
        events.append({"name": "process_name", "ph": "M", "pid": 0,
                       "args": {"name": "minigen"}})
        with open(path, "w") as f:
            json.dump({"traceEvents": events, "displayTimeUnit": "ms"}, f)
        return path


class _TimedBackward:
    """Stands in for ``fn.backward`` on an op recorded while a profile is on, so the engine's
    own loop needs no hook: it calls ``fn.backward(g)`` as always and this times it. Holds
    the op weakly (no reference cycle keeps the graph's arrays alive); once the profile is
    over it just calls the op's backward."""
    __slots__ = ("prof", "fn")

    def __init__(self, prof, fn):
        self.prof, self.fn = prof, weakref.ref(fn)

    @classmethod
    def attach(cls, prof, fn):
        if fn is not None:
            fn.backward = cls(prof, fn)   # an instance attribute shadows the class's method

    def __call__(self, g):
        fn = self.fn()
        if self.prof not in autograd._RECORDERS:
            return type(fn).backward(fn, g)
        return self.prof.backward(fn, g)


class _Region:
    def __init__(self, prof, name):
        self.prof, self.name = prof, name

    def __enter__(self):
        self.frame = self.prof._open("region")
        return self

    def __exit__(self, *exc):
        end = self.prof._close(self.frame)
        self.prof._record(self.name, "region", self.frame, end)
        return False


class record_function:
    """``with minigen.profiler.record_function("sgd update"):`` -- a named row in the active
    profile (PyTorch's name); does nothing when no profile is on."""

    def __init__(self, name):
        self.name = name
        self.region = None

    def __enter__(self):
        active = [r for r in autograd._RECORDERS if isinstance(r, profile)]
        if active:
            self.region = active[-1].record_function(self.name)
            self.region.__enter__()
        return self

    def __exit__(self, *exc):
        if self.region is not None:
            self.region.__exit__(*exc)
        return False


def _owner(array):
    """The array that owns the memory ``array`` sees (itself, unless it is a view)."""
    while getattr(array, "base", None) is not None:
        array = array.base
    return array


def _allocated(outputs, inputs):
    """Bytes of the arrays in ``outputs`` that are new memory, not views of an input's."""
    owners = {id(_owner(t.data)) for t in inputs if hasattr(t, "data")}
    return sum(t.data.nbytes for t in outputs
               if t is not None and hasattr(t, "data") and id(_owner(t.data)) not in owners)


# ------------------------------------------------------------------ optimizers
def _patch_optimizers(prof):
    """Time every optimizer's step while the profile is on (restored on exit), so the
    optimizer gets its row without a test in ``Optimizer.step`` when profiling is off."""
    from .optim import Optimizer
    classes, todo = [], [Optimizer]
    while todo:
        cls = todo.pop()
        classes.append(cls)
        todo.extend(cls.__subclasses__())
    patched = []
    for cls in classes:
        if "step" in cls.__dict__:
            original = cls.__dict__["step"]

            def timed(self, closure=None, _original=original):
                return prof.step(self, _original, closure)

            setattr(cls, "step", timed)
            patched.append((cls, original))
    return patched


def _unpatch_optimizers(patched):
    for cls, original in patched:
        setattr(cls, "step", original)


# ------------------------------------------------------------------ Numba compilation
class _JitListener:
    """Times Numba's compiler lock: held while a kernel compiles or loads from the cache.
    Nested acquisitions (a kernel calling another) count once."""

    def __init__(self, prof):
        self.prof = prof
        self.depth = 0
        self.start = None
        self.listener = None

    def install(self):
        try:
            from numba.core import event
        except ImportError:  # pragma: no cover - numba is a dependency
            return
        outer = self

        class Listener(event.Listener):
            def on_start(self, ev):
                if outer.depth == 0:
                    outer.start = _now()
                outer.depth += 1

            def on_end(self, ev):
                outer.depth -= 1
                if outer.depth == 0:
                    outer.prof._jit(outer.start, _now() - outer.start)

        self.listener = Listener()
        event.register("numba:compiler_lock", self.listener)

    def uninstall(self):
        if self.listener is not None:
            from numba.core import event
            event.unregister("numba:compiler_lock", self.listener)
