"""Hot loops, importable as ``minigen.kernels``.

``cpu.py`` and ``classical.py`` hold Numba ``@njit`` kernels for NumPy arrays, ``cuda.py``
launches the CUDA C sources ``*.cu`` on CuPy arrays. Every kernel has a plain NumPy reference
in the module that uses it; ``MINIGEN_KERNELS`` chooses what runs:

* unset (or ``fast``): Numba kernels on NumPy arrays, CUDA kernels on CuPy arrays;
* ``reference``: the plain NumPy references everywhere (the tests compare kernels with them);
* ``emulate``: the CUDA kernels on NumPy arrays, compiled for the CPU by g++ through host
  emulation (``emulation.py``, ``cuda_host.h``) -- slow, but it runs the whole GPU path of
  the library, glue included, on a machine without a GPU (the tests use it; so can you, to
  step through a kernel).
"""
import importlib
import os

import numpy as np


def _submodule(name):
    """``minigen.kernels.NAME``, imported on its first use: Numba (``cpu``, ``blas``) and CuPy
    (``cuda``) take a second to import, which ``import minigen`` should not pay. Then a
    dictionary lookup: the ``from . import cpu`` this replaces cost a microsecond per call
    (importlib's Python code, run at every op of a training step)."""
    module = _loaded.get(name)
    if module is None:
        module = _loaded[name] = importlib.import_module(f"{__name__}.{name}")
    return module


_loaded = {}


def _mode():
    return os.environ.get("MINIGEN_KERNELS", "fast").lower()


def use_kernels():
    """False when MINIGEN_KERNELS=reference asks for the plain NumPy references."""
    return _mode() != "reference"


def emulating():
    """True when MINIGEN_KERNELS=emulate runs the CUDA kernels on NumPy arrays."""
    return _mode() == "emulate"


def use_numba(array):
    """True when the Numba kernels should process ``array``: a NumPy array, kernels on and
    not emulating the GPU path. (One read of the environment: a training step asks this
    dozens of times, and each read costs a microsecond and a half.)"""
    return isinstance(array, np.ndarray) and _mode() not in ("reference", "emulate")


def cuda_for(array):
    """``minigen.kernels.cuda`` when the CUDA kernels should process ``array`` -- a float32 or
    float64 CuPy array (kernels on), or a NumPy one under MINIGEN_KERNELS=emulate -- else None."""
    if not use_kernels() or getattr(array, "dtype", None) not in (np.float32, np.float64):
        return None
    from ..backend import get_array_module
    if emulating() or get_array_module(array) is not np:
        return _submodule("cuda")
    return None


def hot_loops(array):
    """The kernel module for a float32 or float64 ``array``: ``kernels.cpu`` (Numba) for NumPy
    arrays, ``kernels.cuda`` for CuPy arrays (or emulated, MINIGEN_KERNELS=emulate); None for
    the NumPy references (MINIGEN_KERNELS=reference, or any other dtype). Both modules offer
    the same functions."""
    if getattr(array, "dtype", None) not in (np.float32, np.float64):
        return None
    if use_numba(array):
        return _submodule("cpu")
    return cuda_for(array)


def matmul(a, b):
    """``a @ b`` on arrays. On NumPy arrays (kernels on), large 2-D products run on Numba's
    threads (``blas.py``: one pool of threads for products and kernels); otherwise it is the
    array library's own matmul."""
    if use_numba(a):
        return _submodule("blas").matmul(a, b)
    from ..backend import get_array_module
    return get_array_module(a).matmul(a, b)


def addmm_(c, a, b, beta=1.0, alpha=1.0):
    """``c = beta c + alpha (a @ b)`` in place, BLAS accumulating the product into ``c``
    (``blas.addmm_``: every array kind; Numba is imported on the first call, as for
    ``matmul``)."""
    return _submodule("blas").addmm_(c, a, b, beta, alpha)
