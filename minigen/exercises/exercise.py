"""What an exercise is: its statement, its stub and solution (assembled from the library's
source), and the checks its entry points must pass."""
import textwrap
from dataclasses import dataclass, field

from .source import assemble


@dataclass
class OpPart:
    """One differentiable entry point, checked by ``minigen.testing.check_op``.

    ``entry`` is the name the student's file defines (a Function class, whose ``apply`` is
    checked, or a function) and ``library`` the library's object of the same shape, the
    reference its forward values are compared with. ``call(fn)`` adapts an entry to the
    form ``check_op`` calls, ``fn(*inputs, *noise, **kwargs)`` (the gradient penalty takes a
    critic, Gumbel-softmax its noise by keyword). ``inputs`` are the fixed shapes (filled
    with seeded values of ``kind``) or a function ``rng -> arrays``; ``sweep`` the
    hypothesis strategy of the property run; ``torch`` builds the PyTorch twin (called
    only when torch imports). ``extremes``: inputs ``(arrays, noise, kwargs)`` far out
    (|x| ~ 1000) where the forward must still equal the library's -- the stability check.
    ``straight_through``: check ``hard=True`` of Gumbel-softmax (values and gradients
    against the library's; finite differences cannot see a straight-through estimator)."""
    entry: str
    library: object
    inputs: object
    kind: str = "smooth"
    noise: object = ()
    noise_kind: str = "normal"
    kwargs: dict = field(default_factory=dict)
    sweep: object = None
    torch: object = None
    call: object = None
    extremes: list = field(default_factory=list)
    straight_through: bool = False


@dataclass
class Exercise:
    """One rung of the ladder.

    ``writes`` says in a few words what the student writes; ``statement`` gives the formula,
    ``source`` the seed slide or paper it comes from, ``hint`` the way in. ``stub`` and
    ``solution`` are lists of source pieces (``minigen.exercises.source``); ``hide`` are
    names the stub must not import. ``parts`` are the entry points checked: ``OpPart``s (through
    ``minigen.testing.check_op``), or ``classical.ClassicalPart``s for the NumPy exercises.
    ``note`` is put in the solution's header (how the library's code answers the exercise).
    """
    name: str
    title: str
    writes: str
    statement: str
    source: str
    hint: str
    stub: list
    solution: list
    parts: list
    note: str = ""
    hide: tuple = ()
    number: int = 0
    total: int = 0

    # ------------------------------------------------------------------ files
    def _header(self, what, body):
        lines = [f'"""minigen exercise {self.number}/{self.total} -- {self.name}: {what}', ""]
        lines += [body.strip("\n"), ""]
        lines.append(f'"""\nEXERCISE = "{self.name}"')
        return "\n".join(lines)

    def stub_text(self):
        body = "\n\n".join([
            _paragraphs(self.statement),
            "Source: " + _wrap(self.source, 8),
            "Hint: " + _wrap(self.hint, 6),
            f"What to write: {self.writes} (each raises NotImplementedError until you do).\n"
            f"Check it:       minigen exercises check {self.name}.py\n"
            f"Compare:        minigen exercises solution {self.name}"])
        return assemble(self._header(self.title, body), self.stub, blank=True, hide=self.hide)

    def solution_text(self):
        intro = ("The reference solution: minigen's own code, copied from the library when this "
                 "file was printed, so `minigen exercises check` runs it exactly as it runs "
                 "yours.")
        body = "\n\n".join(filter(None, [_paragraphs(intro), _paragraphs(self.note),
                                         "Source: " + _wrap(self.source, 8)]))
        return assemble(self._header(self.title, body), self.solution, blank=False)

    def describe(self):
        """The statement as the terminal shows it (``minigen exercises show``)."""
        return "\n\n".join([f"{self.number}/{self.total} {self.name} -- {self.title}",
                            _paragraphs(self.statement), "Source: " + _wrap(self.source, 8),
                            "Hint: " + _wrap(self.hint, 6), f"You write: {self.writes}"])


def _paragraphs(text):
    """Prose paragraphs wrapped at 92 columns; indented lines (formulas) kept as they are."""
    out = []
    for block in textwrap.dedent(text or "").strip("\n").split("\n\n"):
        if not block:
            continue
        if block.startswith(" "):
            out.append(block)
        else:
            out.append(textwrap.fill(" ".join(block.split()), 92, break_long_words=False,
                                     break_on_hyphens=False))
    return "\n\n".join(out)


def _wrap(text, first_indent):
    """One paragraph wrapped at 92 columns after a label of ``first_indent`` characters."""
    wrapped = textwrap.fill(" ".join(text.split()), 92, initial_indent=" " * first_indent,
                            break_long_words=False, break_on_hyphens=False)
    return wrapped[first_indent:]
