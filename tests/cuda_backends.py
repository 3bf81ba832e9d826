"""Running the CUDA path in the tests: emulated on the CPU, or on a GPU.

``BACKENDS`` parametrizes a test over two ways of running ``minigen.kernels.cuda``:

* ``emulated`` -- the kernels compiled by g++ and run thread by thread on NumPy arrays
  (``MINIGEN_KERNELS=emulate``, see ``kernels/emulation.py``); ``pytest -k emulat`` selects
  these tests; they skip, saying so, where no C++ compiler exists;
* ``gpu`` -- the same test on CuPy arrays, marked ``gpu`` (skipped without a device).

Inside ``running(backend, launch, order)`` the library's CUDA path is the backend's, with a
chosen launch shape -- the grid-stride loops must give the same answer whether the grid is
far smaller than the work or far larger -- and, under emulation, the threads run forwards or
backwards (a race would show as a difference).
"""
import contextlib
import functools
import os
import re

import pytest
from hypothesis import strategies as st

from minigen.backend import to_device, to_numpy
from minigen.kernels import cpu, cuda, emulation

needs_compiler = pytest.mark.skipif(
    emulation.compiler() is None, reason="no C++ compiler (g++): CUDA kernels not emulated")
BACKENDS = [pytest.param("emulated", marks=needs_compiler),
            pytest.param("gpu", marks=pytest.mark.gpu)]

# 'few threads': one block of 3 threads, each looping over a third of the work;
# 'one per item': cuda.launch_shape's own choice; 'idle threads': 4x more blocks than needed
LAUNCHES = st.sampled_from(["few threads", "one per item", "idle threads"])
ORDERS = st.sampled_from(["forwards", "backwards"])
_SHAPES = {"few threads": lambda total, default: (1, 3),
           "one per item": lambda total, default: default(total),
           "idle threads": lambda total, default: (4 * -(-total // 32) + 3, 32)}


COVERED = set()   # (source, kernel without _f32/_f64): declared by the tests that run it


def exercises(source, *kernels):
    """Declare that the decorated test runs these kernels of ``source`` (test_cuda.py checks
    that every kernel is declared somewhere). Its emulated runs check that they launched."""
    COVERED.update((source, k) for k in kernels)

    def decorate(test):
        @functools.wraps(test)
        def run(*args, **kwargs):
            before = emulation.launched.copy()
            test(*args, **kwargs)
            if "emulated" in (kwargs.get("backend"), kwargs.get("kind")):
                ran = {re.sub(r"_f(32|64)$", "", k) for k in emulation.launched - before}
                missing = set(kernels) - ran
                assert not missing, f"{test.__name__} never launched {sorted(missing)}"
        return run
    return decorate


@contextlib.contextmanager
def running(backend, launch="one per item", order="forwards"):
    """The library's CUDA path on ``backend`` ('emulated' or 'gpu'), launched as ``launch``."""
    default = cuda.launch_shape
    cuda.launch_shape = lambda total: _SHAPES[launch](total, default)
    mode = "emulate" if backend == "emulated" else os.environ.get("MINIGEN_KERNELS", "fast")
    try:
        with kernels_mode(mode), emulation.thread_order(order):
            yield
    finally:
        cuda.launch_shape = default


@contextlib.contextmanager
def kernels_of(kind, launch="one per item", order="forwards"):
    """The kernel module of ``kind``: 'numba' -> ``kernels.cpu``; 'emulated' or 'gpu' ->
    ``kernels.cuda``, run as ``running`` says."""
    if kind == "numba":
        yield cpu
        return
    with running(kind, launch, order):
        yield cuda


def on(backend, *arrays):
    """NumPy arrays as the backend's arrays (CuPy on the GPU, unchanged elsewhere)."""
    moved = [to_device(a, "cuda") if backend == "gpu" and a is not None else a for a in arrays]
    return moved[0] if len(moved) == 1 else moved


def host(*arrays):
    """Arrays back as NumPy arrays."""
    moved = [None if a is None else to_numpy(a) for a in arrays]
    return moved[0] if len(moved) == 1 else moved


def device(backend):
    """The minigen device whose tensors take the backend's CUDA path."""
    return "cpu" if backend == "emulated" else "cuda"


@contextlib.contextmanager
def kernels_mode(value):
    """MINIGEN_KERNELS=value for the duration ('reference': the plain NumPy references)."""
    before = os.environ.get("MINIGEN_KERNELS")
    os.environ["MINIGEN_KERNELS"] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MINIGEN_KERNELS", None)
        else:
            os.environ["MINIGEN_KERNELS"] = before
