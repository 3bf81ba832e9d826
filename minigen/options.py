"""Checked command-line options: the one place where every ``minigen`` option is validated.

``cli.build_parser`` passes its finished parser tree through ``apply_policy``, so each
subcommand -- ``train MODEL``, ``sample``, and any command added later -- gets this policy for
every option it declares with a plain ``type=int`` or ``type=float``, in any argument group:

* every number must be finite: ``nan``, ``inf`` are refused;
* an integer option is a count: at least 1, or at least 0 when its default is 0 (seeds,
  "0 = off" switches);
* a float option may be any finite number unless it declares a range.

A command declares a tighter range in one word, ``type=positive`` (learning rates, widths),
``nonnegative`` (weights, decays, tolerances), ``unit_interval``, ``below_one`` (momentum),
``natural`` (an integer where 0 means "off"), or any ``number(...)``/``integer(...)``.
Output files are checked by ``type=output_file`` before any work starts.

A bad value stops the command with exit status 2 and one line naming the option and why::

    minigen: error: argument --lr: must be a number > 0, got nan (see: minigen train vae --help)
"""
import argparse
import math
import os


class Number:
    """An argparse ``type``: a finite int or float, optionally within bounds."""

    def __init__(self, kind, low=None, high=None, low_open=False, high_open=False):
        self.kind, self.low, self.high = kind, low, high
        self.low_open, self.high_open = low_open, high_open
        self.__name__ = self.describe()  # argparse names the type by it in some messages

    def describe(self):
        what = "an integer" if self.kind is int else "a number"
        lo = None if self.low is None else f"{'>' if self.low_open else '>='} {self.low:g}"
        hi = None if self.high is None else f"{'<' if self.high_open else '<='} {self.high:g}"
        if lo and hi:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"{what} in {left}{self.low:g}, {self.high:g}{right}"
        if lo or hi:
            return f"{what} {lo or hi}"
        return "a finite integer" if self.kind is int else "a finite number"

    def __call__(self, text):
        try:
            value = self.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {self.describe()}, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        too_low = self.low is not None and (value < self.low or
                                            (self.low_open and value == self.low))
        too_high = self.high is not None and (value > self.high or
                                              (self.high_open and value == self.high))
        if too_low or too_high:
            raise argparse.ArgumentTypeError(f"must be {self.describe()}, got {text}")
        return value

    def __repr__(self):
        return f"Number({self.describe()})"


def integer(low=None, high=None):
    return Number(int, low, high)


def number(low=None, high=None, low_open=False, high_open=False):
    return Number(float, low, high, low_open, high_open)


count = integer(low=1)            # epochs, batch sizes, layer widths, samples
natural = integer(low=0)          # seeds; counts where 0 means "off"
finite = number()                 # any finite float
positive = number(low=0, low_open=True)       # learning rates, widths, temperatures
nonnegative = number(low=0)       # loss weights, decays, tolerances
unit_interval = number(0, 1)      # probabilities
below_one = number(0, 1, high_open=True)      # momentum, decay factors


def default_type(kind, default):
    """The checked type a plain ``type=int`` / ``type=float`` option gets (the policy above)."""
    if kind is int:
        return natural if default == 0 else count
    if kind is float:
        return finite
    return kind


def path_problem(path, folder):
    """Why ``path`` cannot be written as a file (``folder=False``) or created as a folder, or
    None when it can -- checked before a command starts its work."""
    path = os.path.abspath(path)
    if os.path.exists(path):
        if folder and not os.path.isdir(path):
            return f"{path} is a file, not a folder"
        if not folder and os.path.isdir(path):
            return f"{path} is a folder; give a file name"
        target = path if folder else os.path.dirname(path)
        return None if os.access(target, os.W_OK) else f"{target} is not writable"
    parent = os.path.dirname(path)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        return f"{parent} is a file, not a folder"
    if not os.access(parent, os.W_OK):
        return f"{parent} is not writable"
    return None


def output_file(text):
    """An argparse ``type`` for an output file: refused at once if it cannot be written."""
    problem = path_problem(text, folder=False)
    if problem:
        raise argparse.ArgumentTypeError(f"cannot write {text}: {problem}")
    return text


def output_folder(text):
    """An argparse ``type`` for an output folder (created later by the command)."""
    problem = path_problem(text, folder=True)
    if problem:
        raise argparse.ArgumentTypeError(f"cannot use {text} as a folder: {problem}")
    return text


def apply_policy(parser):
    """Give every option declared with a plain ``type=int`` / ``type=float`` anywhere in the
    parser tree -- subcommands, argument groups, mutually exclusive groups -- its checked type
    (``default_type``). ``cli.build_parser`` calls it once, on the finished tree, so a command
    added later needs no line of its own."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                apply_policy(sub)
        elif action.type in (int, float):
            action.type = default_type(action.type, action.default)
    return parser


class Parser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` that reports a bad option on one line, status 2 (its
    subparsers are of this class too)."""

    def error(self, message):
        self.exit(2, f"minigen: error: {message} (see: {self.prog} --help)\n")
