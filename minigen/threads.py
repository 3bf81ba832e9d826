"""How many CPU threads minigen uses: ``set_num_threads(n)`` / ``get_num_threads()``,
PyTorch's names (``torch.set_num_threads(1)`` ports by changing the import).

Two thread pools do the work on the CPU: Numba's, for the kernels in ``kernels/cpu.py`` and
``kernels/classical.py``, and the BLAS library behind NumPy's matmul (OpenBLAS in NumPy's
wheels). Both start with one thread per core. That is right on an idle machine. On one whose
cores are busy with other work it is not: a parallel region ends when its slowest thread
does, and a thread that is not scheduled holds up the others for a whole time slice. Then
one thread is much faster (measured on 2 cores busy with other jobs: one CycleGAN iteration
3.95 s with 2 threads, 0.24 s with 1). ``minigen train MODEL --threads 1`` sets it for a run.

The BLAS library is found among the shared libraries this process has loaded and told through
its own ``*set_num_threads*`` function (the way threadpoolctl does it, without the
dependency). Where no known BLAS is found, only Numba's pool is set and ``blas_threads()``
returns None; ``OPENBLAS_NUM_THREADS=n`` before starting Python still works everywhere.
"""
import ctypes
import os

# the setter / getter names of the OpenBLAS builds NumPy ships (scipy-openblas, 64-bit ints)
# and of a plain system OpenBLAS
_OPENBLAS_FUNCTIONS = (("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
                       ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
                       ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
                       ("openblas_set_num_threads", "openblas_get_num_threads"))
_blas = None  # (set, get) once found; False when none was found


def _loaded_libraries():
    try:
        with open("/proc/self/maps") as maps:
            return sorted({line.split()[-1] for line in maps if ".so" in line})
    except OSError:  # not Linux
        return []


def _blas_functions():
    global _blas
    if _blas is None:
        import numpy  # noqa: F401  (loads the BLAS library we look for)
        _blas = False
        for path in _loaded_libraries():
            if "blas" not in os.path.basename(path).lower():
                continue
            library = ctypes.CDLL(path)
            for set_name, get_name in _OPENBLAS_FUNCTIONS:
                if hasattr(library, set_name) and hasattr(library, get_name):
                    _blas = (getattr(library, set_name), getattr(library, get_name))
                    break
            if _blas:
                break
    return _blas or None


def blas_threads():
    """The BLAS library's thread count, or None when minigen cannot reach it."""
    functions = _blas_functions()
    return None if functions is None else int(functions[1]())


def get_num_threads():
    """The number of threads minigen's CPU kernels use (Numba's pool)."""
    import numba
    return numba.get_num_threads()


def set_num_threads(n):
    """Use ``n`` CPU threads in minigen's kernels and in NumPy's BLAS (see the module's text
    for when 1 is faster). ``n`` at most Numba's pool size (the number of cores, or
    ``NUMBA_NUM_THREADS``)."""
    import numba
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive int, got {n!r}")
    most = numba.config.NUMBA_NUM_THREADS
    if n > most:
        raise ValueError(f"set_num_threads: n={n} is more than the {most} threads Numba "
                         f"started with (the cores, or NUMBA_NUM_THREADS)")
    numba.set_num_threads(n)
    functions = _blas_functions()
    if functions is not None:
        functions[0](n)
