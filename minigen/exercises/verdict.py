"""What ``minigen exercises check`` found, and how it says it to a student.

A verdict names the check that failed, quotes the checker's report (for gradcheck: the first
disagreeing Jacobian entry with its analytic and numerical values; for a comparison: the first
entry that differs and both values), says on which inputs (in the property sweep: hypothesis's
shrunk counterexample) and adds one line on what such a failure usually means.
"""
import os
import traceback
from dataclasses import dataclass, field

from ..gradcheck import GradcheckError

ADVICE = {
    "entry": "the file must define it under that name (the stub does).",
    "forward": "the forward raised, or returned something other than float64 Tensors: the "
               "message says where.",
    "reference": "the forward computes a different function from the library's: compare it "
                 "with the formula in the statement.",
    "gradcheck": "the backward's first derivatives are wrong at the entry above (d output / d "
                 "input, with both values): compare your formula with the statement's.",
    "gradgradcheck": "the backward gives the right numbers but is not differentiable as "
                     "written: build it from Tensor operations on self.inputs / self.output (no "
                     ".data, no NumPy, no Tensor(array) of a computed value), so that gradients "
                     "of gradients flow.",
    "layouts": "the results change when an input is not C-contiguous (transposed, reversed, a "
               "strided view): do not assume a memory layout.",
    "torch parity": "finite differences agree, PyTorch does not: the op computes another "
                    "function than torch's at these inputs (a convention: an axis, a "
                    "reduction, a scale).",
    "stability": "far from 0 the forward overflows or loses its digits: rewrite it so that no "
                 "exponent is positive (subtract the max; log(1 + e^-|x|)).",
    "straight-through": "hard=True must return the one-hot vector of the argmax with the soft "
                        "sample's gradient: y_hard - y.detach() + y.",
    "shapes": "return the arrays in the order and with the shapes the statement gives.",
    "exact gradient (W = 0)": "at W = 0 one Gibbs step already reaches the model's "
                              "distribution, so CD-1 equals the exact gradient: look for a "
                              "sign, a missing 1/N, or a sample where a probability belongs "
                              "(only h0 is sampled).",
    "reference (random W)": "with the same hidden sample your CD-1 differs from minigen's RBM: "
                            "v1 = P(v | h0) from the sample h0, then ph1 = P(h | v1).",
    "winner": "the winner is the unit nearest to x: argmin_j ||x - W_j||.",
    "neighbourhood": "each unit moves by alpha h (x - W_j) with h = exp(-d^2 / (2 sigma^2)), d "
                     "its distance to the winner on the grid (not in input space); sigma = 0 "
                     "moves the winner alone.",
    "closed form": "compare each entry with the formula in the statement.",
}
SWEEP_ADVICE = ("it passes at the fixed inputs and fails at these (hypothesis's smallest "
                "failing example): look for a hard-coded shape, axis or size.")
RAISED = ("your code raised the exception above on these inputs (a check disagreeing would say "
          "'failed'): the line it names is where to look.")
DETACHED = ("the analytic derivative is 0 where the numerical one is not: in the graph the "
            "output does not depend on this input (a detached tensor: .data, .detach(), a "
            "Tensor built from an array; or a gradient taken without create_graph=True).")


@dataclass
class Failure:
    """The first failed check of a part: ``check`` its name, ``message`` the checker's report,
    ``where`` the inputs it failed on, ``inner`` the check that failed inside a property sweep."""
    check: str
    message: str
    error: BaseException = None
    where: str = ""
    inner: str = None

    def advice(self):
        what = self.inner or self.check
        if isinstance(self.error, GradcheckError) and self.error.analytic == 0 \
                and self.error.numerical not in (0, None):
            line = DETACHED
        else:
            line = ADVICE.get(what, ADVICE.get(what.split(" (")[0], ""))
        if type(self.error).__name__ == "BackwardError":
            line = "the engine's message above says what the backward returned wrongly."
        elif self.error is not None and not isinstance(self.error, AssertionError):
            line = RAISED
        if self.check == "property sweep":
            line = SWEEP_ADVICE + (" " + line[0].upper() + line[1:] if line else "")
        return line


@dataclass
class PartResult:
    """The checks of one entry point (a Function, a function)."""
    entry: str
    passed: list = field(default_factory=list)
    skipped: dict = field(default_factory=dict)
    failure: Failure = None
    info: list = field(default_factory=list)

    @property
    def ok(self):
        return self.failure is None

    def not_implemented(self, path):
        """(what, line) when the failure is a stub's NotImplementedError, else None."""
        error = self.failure.error if self.failure else None
        while error is not None and not isinstance(error, NotImplementedError):
            error = error.__cause__ or error.__context__
        if error is None:
            return None
        return (str(error) or self.entry), line_in(error, path)


def line_in(error, path):
    """The last line of ``path`` in the traceback of ``error`` (None when it is not there)."""
    line = None
    for frame in traceback.extract_tb(error.__traceback__):
        if os.path.abspath(frame.filename) == os.path.abspath(path):
            line = frame.lineno
    return line


@dataclass
class Verdict:
    """The outcome of ``minigen exercises check FILE``; ``str()`` is what the student reads."""
    name: str
    number: int
    total: int
    path: str
    parts: list = field(default_factory=list)

    @property
    def ok(self):
        return all(p.ok for p in self.parts)

    @property
    def failed_check(self):
        """The name of the first failed check ("not implemented" for a stub), or None."""
        for p in self.parts:
            if not p.ok:
                return "not implemented" if p.not_implemented(self.path) else p.failure.check
        return None

    def __str__(self):
        head = f"{os.path.basename(self.path)} -- exercise {self.number}/{self.total} " \
               f"\"{self.name}\""
        lines = []
        todo = [p.not_implemented(self.path) for p in self.parts]
        if self.ok:
            lines.append(f"{head}: every check passed")
        elif any(todo) and all(t or p.ok for t, p in zip(todo, self.parts)):
            lines.append(f"{head}: not implemented yet")
        else:
            lines.append(f"{head}: FAILED at {self.failed_check}")
        for part, missing in zip(self.parts, todo):
            lines += ["  " + line for line in self._part(part, missing)]
        if self.ok and self.number < self.total:
            lines.append("  next: minigen exercises list   (then: minigen exercises start NAME)")
        return "\n".join(lines)

    def _part(self, part, missing):
        label = f"{part.entry}: "
        skipped = [f"{name} skipped ({why})" for name, why in part.skipped.items()]
        if part.ok:
            return [label + ", ".join(part.passed + skipped)] + part.info
        if missing:
            what, line = missing
            where = f" ({os.path.basename(self.path)}, line {line})" if line else ""
            return [f"{label}{what} is not implemented yet{where}: write it, then run "
                    f"`minigen exercises check {self.path}` again"]
        f = part.failure
        out = [label + f"FAILED at {f.check}" + (f" ({f.inner})" if f.inner else "")
               + (f"; passed before it: {', '.join(part.passed)}" if part.passed else "")]
        if f.where:
            out.append("  " + f.where)
        out += ["  " + line for line in f.message.splitlines()]
        if f.error is not None and not isinstance(f.error, AssertionError) \
                and line_in(f.error, self.path):
            out.append(f"  raised at {os.path.basename(self.path)}, line "
                       f"{line_in(f.error, self.path)}")
        advice = f.advice()
        if advice:
            out.append("  what it means: " + advice)
        return out
