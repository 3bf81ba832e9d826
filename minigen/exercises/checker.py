"""``minigen exercises check FILE``: load a student's file and run its exercise's checks.

A differentiable entry point (``OpPart``) goes through ``minigen.testing.check_op`` -- its
forward values against the library's ("reference"), gradcheck and gradgradcheck in float64 at
the exercise's shapes, the memory layouts, a hypothesis sweep over shapes, layouts and
arguments, PyTorch parity when torch imports -- and then the exercise's own extras: the
forward far from 0 ("stability") and the straight-through estimator. A NumPy entry point
(``ClassicalPart``) is compared with closed forms and the library (``classical.check``).
"""
import importlib.util
import inspect
import os

import numpy as np

from ..autograd import Function, grad, no_grad
from ..tensor import Tensor
from ..testing import _first_difference, _outputs, check_op
from . import ExerciseError, classical, exercises, get
from .exercise import OpPart
from .verdict import Failure, PartResult, Verdict, line_in

PARITY_RTOL, PARITY_ATOL = 1e-9, 1e-12


def load_file(path):
    """The student's file run as a module (a fresh one on every call)."""
    if not os.path.isfile(path):
        raise ExerciseError(f"{path}: no such file (start one with `minigen exercises start NAME`)")
    stem = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(f"minigen_exercise_{stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # a syntax error, an import that fails: say where, in one line
        line = getattr(e, "lineno", None) or line_in(e, path)
        raise ExerciseError(f"{path}{f', line {line}' if line else ''}: the file does not run: "
                            f"{type(e).__name__}: {e}") from e
    return module


def exercise_of(module, path):
    """The exercise a file answers: its ``EXERCISE = "name"`` line, else its file name."""
    name = getattr(module, "EXERCISE", None) or os.path.splitext(os.path.basename(path))[0]
    try:
        return get(name)
    except ExerciseError:
        raise ExerciseError(f"{path}: not an exercise file (no EXERCISE = \"NAME\" line and the "
                            f"file name is none of: {', '.join(e.name for e in exercises())})")


def check_file(path, max_examples=20, seed=0):
    """Run every check of the file's exercise; return the ``Verdict``. Raises ``ExerciseError``
    when the file is missing, does not run, or lacks an entry point the exercise needs."""
    module = load_file(path)
    exercise = exercise_of(module, path)
    missing = [p.entry for p in exercise.parts if not hasattr(module, p.entry)]
    if missing:
        raise ExerciseError(f"{path}: defines no {' and no '.join(missing)} (exercise "
                            f"{exercise.name!r} checks it; the stub has it)")
    verdict = Verdict(exercise.name, exercise.number, exercise.total, path)
    for part in exercise.parts:
        result = PartResult(part.entry)
        fn = getattr(module, part.entry)
        with np.errstate(all="ignore"):
            if isinstance(part, OpPart):
                check_op_part(part, fn, max_examples, seed, result)
            else:
                classical.check(part, fn, max_examples, seed, result)
        verdict.parts.append(result)
    return verdict


def _entry_point(obj):
    """A Function class is checked through ``apply``; a function as it is."""
    return obj.apply if inspect.isclass(obj) and issubclass(obj, Function) else obj


def check_op_part(part, obj, max_examples, seed, result):
    fn, ref = _entry_point(obj), _entry_point(part.library)
    if part.call is not None:
        fn, ref = part.call(fn), part.call(ref)
    rng = np.random.default_rng(seed)
    inputs = part.inputs(rng) if callable(part.inputs) else part.inputs
    noise = part.noise(rng) if callable(part.noise) else part.noise
    torch_fn, no_torch = None, None
    if part.torch is not None:
        try:
            torch_fn = part.torch()
        except ImportError:
            no_torch = "torch is not installed"
    report = check_op(fn, inputs, noise=noise, kwargs=part.kwargs, kind=part.kind,
                      noise_kind=part.noise_kind, sweep=part.sweep, torch_fn=torch_fn,
                      reference=ref, max_examples=max_examples, seed=seed,
                      parity_rtol=PARITY_RTOL, parity_atol=PARITY_ATOL, raise_exception=False)
    result.passed, result.skipped = list(report.passed), dict(report.skipped)
    if no_torch:
        result.skipped["torch parity"] = no_torch
    if report.failure is not None:
        f = report.failure
        result.failure = Failure(f.check, f.message, f.error, _where(f),
                                 f.inner_check if f.inner_check != f.check else None)
        return
    extras = [("stability", lambda: _stability(part, fn, ref))] if part.extremes else []
    if part.straight_through:
        extras.append(("straight-through", lambda: _straight_through(part, fn, ref, rng)))
    for name, run in extras:
        try:
            run()
        except Exception as e:
            result.failure = Failure(name, str(e) if isinstance(e, AssertionError) else
                                     f"{name}: {type(e).__name__}: {e}", e)
            return
        result.passed.append(name)


def _where(f):
    """The inputs a check failed on, in words: shapes, layouts, arguments."""
    if f.shapes is None:
        return ""
    what = "hypothesis's shrunk counterexample" + \
        (f" (first failure at example {f.examples})" if f.examples else "") \
        if f.examples is not None else "at the exercise's fixed inputs"
    text = f"{what}: inputs of shapes {', '.join(str(tuple(s)) for s in f.shapes)}"
    if f.layouts and any(layout != "contiguous" for layout in f.layouts):
        text += f", layouts {', '.join(f.layouts)}"
    if f.noise_shapes:
        text += f"; fixed noise of shapes {', '.join(str(tuple(s)) for s in f.noise_shapes)}"
    if f.kwargs:
        text += f"; arguments {_arguments(f.kwargs)}"
    return text


def _arguments(kwargs):
    """Keyword arguments as a student reads them (a conv geometry by its fields)."""
    shown = []
    for k, v in kwargs.items():
        if hasattr(v, "_asdict"):
            v = ", ".join(f"{a}={b}" for a, b in v._asdict().items()
                          if a in ("kernel", "stride", "padding", "dilation"))
            v = f"({v})"
        shown.append(f"{k}={v}")
    return ", ".join(shown)


def _agree(check, name, ours, theirs):
    diff = _first_difference(name, ours, theirs, PARITY_RTOL, PARITY_ATOL, "yours",
                             "minigen's")
    if diff:
        raise AssertionError(f"{check} failed: {diff}")


def _stability(part, fn, ref):
    """Far from 0 (|x| ~ 1000) the forward must give the library's finite values."""
    for arrays, noise, kw in part.extremes:
        kwargs = {**part.kwargs, **kw}
        with no_grad():
            ours = _outputs(fn(*[Tensor(np.array(a)) for a in [*arrays, *noise]], **kwargs))
            theirs = _outputs(ref(*[Tensor(np.array(a)) for a in [*arrays, *noise]], **kwargs))
        for a, b in zip(ours, theirs):
            diff = _first_difference("output", a.numpy(), b.numpy(), PARITY_RTOL, PARITY_ATOL,
                                     "yours", "minigen's")
            if diff:
                raise AssertionError(f"stability failed at x = {np.array(arrays[0]).tolist()}, "
                                     f"{_arguments(kw)}:\n    {diff}")


def _straight_through(part, fn, ref, rng):
    """hard=True: the one-hot of the argmax forward, the soft sample's gradient backward."""
    logits = rng.standard_normal((3, 4))
    gumbel = -np.log(-np.log(rng.uniform(1e-12, 1.0, (3, 4))))
    weights = Tensor(rng.standard_normal((3, 4)))
    results = []
    for f in (fn, ref):
        x = Tensor(logits.copy(), requires_grad=True)
        y = f(x, Tensor(gumbel), **{**part.kwargs, "hard": True})
        g, = grad((y * weights).sum(), [x])
        results.append((y.numpy(), g.numpy()))
    (y, g), (y_ref, g_ref) = results
    _agree("straight-through", "output (hard=True)", y, y_ref)
    _agree("straight-through", "gradient of logits (hard=True)", g, g_ref)

