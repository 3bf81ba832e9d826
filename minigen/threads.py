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

**How long an idle BLAS thread spins.** After each matrix product OpenBLAS's worker threads
busy-wait for new work for 2**28 TSC cycles (0.1 s at 2.6 GHz) before they sleep. Between two
products a training step runs Numba's parallel kernels, whose worker (GNU OpenMP, which spins
too) then shares a core with a spinning BLAS thread, and the next product's BLAS thread shares
one with a spinning OpenMP worker: with two threads on two cores each pool steals the core the
other needs, and two threads were slower than one. So at import minigen lets NumPy's OpenBLAS
threads spin only 2**20 cycles (0.4 ms, ``BLAS_SPIN``). Medians in ms on the 2-vCPU VM of the
benchmarks (load 1.2-1.6, minigen alone in its process, the spins alternated in it):

    step                         1 thread   2 threads, 2**28   2 threads, 2**20
    MLP, batch 64                   1.6          1.4               1.5
    MLP, batch 512                  6.0          4.2               4.3
    CNN classifier, batch 128       111          140-230           73-79
    MLP VAE, batch 128              6.5          5.3               5.4
    conv VAE, batch 128              89           97                70
    DCGAN NS iteration, batch 64    114          115-175           87-94

Shorter is worse where products come fast: with 2**4 cycles (sleep at once) the MLP step
took 4.8 ms at batch 512 and 1.5-1.6 at 64 (each wake-up costs). OpenBLAS reads its timeout
(``OPENBLAS_THREAD_TIMEOUT``, log2 of the cycles) only when it starts its threads, so minigen
sets the variable, has the library read it again and restarts the threads
(``set_blas_spin``). PyTorch does not use NumPy's OpenBLAS, so it keeps its own behaviour.
The OpenMP side is left alone: libgomp reads ``OMP_WAIT_POLICY`` once, when it loads, and
PyTorch shares the copy Numba loads first (same soname), so setting it would change PyTorch
too (with ``OMP_WAIT_POLICY=PASSIVE`` as well the classifier step took 65 ms).
``MINIGEN_BLAS_SPIN=default`` (or an ``OPENBLAS_THREAD_TIMEOUT`` of your own) before
importing minigen keeps OpenBLAS's 2**28; ``MINIGEN_BLAS_SPIN=N`` asks for 2**N cycles.

**One pool.** Shorter spinning only softens the clash. With more than one thread minigen's
large products no longer use OpenBLAS's threads at all: ``kernels/blas.py`` cuts each into one
block per Numba thread and has every thread make a single-threaded BLAS call on its block
(``one_blas_thread``), so the products and the kernels run on the same threads, which are
already awake when the next one starts. Medians in ms, 2 threads, each setting in turn on
every call (minigen's kernels from 2**16 elements in parallel with one pool, kernels/cpu.py):
DCGAN NS iteration 115.5 with two pools, 78.1 with one; conv VAE 83.2 / 64.4; MLP VAE 11.9 /
7.0; MLP batch 512 11.3 / 6.6. OpenBLAS's own threads still serve the products minigen does
not split (batched, or in strides BLAS cannot read).
"""
import ctypes
import os

# OpenBLAS's exported names come in four spellings: NumPy's wheels ship scipy-openblas, whose
# names carry a "scipy_" prefix and, built for 64-bit integers, a "64_" suffix; a plain system
# OpenBLAS has neither (or only the suffix)
_SPELLINGS = ("scipy_{}64_", "scipy_{}", "{}64_", "{}")


def openblas_function(library, name):
    """``library``'s function ``name`` (e.g. "cblas_sgemm") under whichever spelling it
    exports, or None."""
    for spelling in _SPELLINGS:
        function = getattr(library, spelling.format(name), None)
        if function is not None:
            return function
    return None


_blas = None  # (set, get, library) once found; False when none was found
BLAS_SPIN = 20  # log2 of the TSC cycles an idle OpenBLAS thread spins before it sleeps (its own: 28)


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
            setter = openblas_function(library, "openblas_set_num_threads")
            getter = openblas_function(library, "openblas_get_num_threads")
            if setter is not None and getter is not None:
                _blas = (setter, getter, library)
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


class one_blas_thread:
    """``with one_blas_thread():`` NumPy's BLAS uses one thread inside the block (then the
    count it had): for products that minigen itself spreads over Numba's threads, each
    thread calling BLAS on its own block (``kernels/blas.py``)."""

    def __enter__(self):
        functions = _blas_functions()
        self.before = None if functions is None else int(functions[1]())
        if self.before is not None and self.before > 1:
            functions[0](1)

    def __exit__(self, *exc):
        if self.before is not None and self.before > 1:
            _blas_functions()[0](self.before)


def _spin_functions():
    """OpenBLAS's (read_env, thread_timeout, thread_shutdown), or None (no OpenBLAS found, or
    one built without its own thread server)."""
    functions = _blas_functions()
    if functions is None:
        return None
    found = tuple(openblas_function(functions[2], name) for name in
                  ("openblas_read_env", "openblas_thread_timeout", "blas_thread_shutdown_"))
    return None if None in found else found


def blas_spin():
    """log2 of the cycles NumPy's OpenBLAS threads spin when idle, as the library reports it
    (0: its built-in 2**28), or None when minigen cannot reach it."""
    functions = _spin_functions()
    return None if functions is None else int(functions[1]())


def set_blas_spin(log2_cycles):
    """Let NumPy's OpenBLAS threads spin 2**log2_cycles cycles after a product before they sleep
    (the module's text says why); OpenBLAS takes 4 to 30. Returns False where no OpenBLAS with
    that setting is found. Restarts the BLAS threads: call it while no other thread is inside
    NumPy's BLAS."""
    if isinstance(log2_cycles, bool) or not isinstance(log2_cycles, int) \
            or not 4 <= log2_cycles <= 30:
        raise ValueError(f"set_blas_spin: log2_cycles must be an int in [4, 30], "
                         f"got {log2_cycles!r}")
    functions = _spin_functions()
    if functions is None:
        return False
    read_env, _, shutdown = functions
    before = os.environ.get("OPENBLAS_THREAD_TIMEOUT")
    os.environ["OPENBLAS_THREAD_TIMEOUT"] = str(log2_cycles)
    try:
        read_env()  # OpenBLAS keeps its own copy of its variables, taken at load
    finally:  # child processes get the environment this one started with
        if before is None:
            del os.environ["OPENBLAS_THREAD_TIMEOUT"]
        else:
            os.environ["OPENBLAS_THREAD_TIMEOUT"] = before
    shutdown()  # the next product starts the threads again, with the new timeout
    return True


def _default_blas_spin():
    """At import: BLAS_SPIN unless the user chose (MINIGEN_BLAS_SPIN, OPENBLAS_THREAD_TIMEOUT)."""
    choice = os.environ.get("MINIGEN_BLAS_SPIN", "")
    if choice == "default" or (not choice and "OPENBLAS_THREAD_TIMEOUT" in os.environ):
        return
    try:
        set_blas_spin(int(choice) if choice else BLAS_SPIN)
    except ValueError:
        raise ValueError(f"MINIGEN_BLAS_SPIN must be 'default' or an int in [4, 30], "
                         f"got {choice!r}") from None


_default_blas_spin()
