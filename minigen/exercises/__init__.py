"""Gradient-checking exercises: a graded ladder from one-line backwards to the seeds' ideas.

Each exercise is a stub file to complete (``minigen exercises start NAME``), checked by
``minigen exercises check FILE`` (gradcheck and gradgradcheck in float64, a hypothesis sweep
over shapes and memory layouts, PyTorch parity) and answered by the library's own code
(``minigen exercises solution NAME``). ``ladder.py`` holds the differentiable rungs,
``classical.py`` the three without autograd (RBM, SOM, EM), ``checker.py`` runs the checks and
``verdict.py`` words the outcome.
"""
import functools


class ExerciseError(ValueError):
    """Bad input to the exercise tools (unknown name, missing file, missing entry point): the
    CLI prints its one line and exits with status 2."""


@functools.lru_cache(maxsize=None)
def exercises():
    """The ladder in order, each numbered ``number`` of ``total``."""
    from . import classical, ladder
    rungs = (ladder.elementwise_exercises() + ladder.linear_algebra_exercises()
             + ladder.stable_exercises() + ladder.network_exercises()
             + ladder.generative_exercises() + classical.classical_exercises())
    for number, exercise in enumerate(rungs, 1):
        exercise.number, exercise.total = number, len(rungs)
    return tuple(rungs)


def names():
    return [e.name for e in exercises()]


def get(name):
    """The exercise called ``name``; ``ExerciseError`` naming the choices otherwise."""
    for exercise in exercises():
        if exercise.name == name:
            return exercise
    raise ExerciseError(f"no exercise named {name!r}; the exercises are: {', '.join(names())}")
