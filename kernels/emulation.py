"""The CUDA C kernels run on the CPU: each ``kernels/*.cu`` compiled by g++ with
``cuda_host.h`` in front of it (see that header for how, and why the result is the GPU's).

``load(source)`` returns an object that quacks like CuPy's ``RawModule``: its
``get_function(name)`` gives a kernel that is called as CuPy calls one,
``kernel(grid, block, args)``, with NumPy arrays where CuPy takes device arrays. So the CuPy
glue in ``cuda.py`` runs unchanged on NumPy arrays (``MINIGEN_KERNELS=emulate``), and the
tests prove kernels *and* glue without a GPU.

The emulated launch is stricter than a GPU, on purpose:

* every argument is checked against the kernel's C signature (count, scalar type, array
  dtype, C-contiguity); CuPy would pass a wrong one through and the kernel would read garbage;
* every array is run inside a copy with guard bytes before and after it: a write past either
  end, or any write into a ``const`` argument, is an error naming the kernel and argument
  (reads past the end see NaN / -1 and spoil the result instead);
* threads may run backwards (``thread_order("backwards")``): a result that depends on the
  order in which threads run is a race.

Each source is compiled once; the shared library is cached in the temp directory under a
hash of the header, the source and the compiler, so later sessions (and parallel test
workers) load it without compiling.
"""
import collections
import contextlib
import ctypes
import functools
import glob
import hashlib
import os
import re
import shutil
import subprocess
import tempfile

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
HEADER = os.path.join(_HERE, "cuda_host.h")
# -ffp-contract=off: no fused multiply-add, as nvcc --fmad=false (see cuda.py), so that both
# round a * b + c twice, as NumPy does
FLAGS = ("-std=c++14", "-O1", "-fPIC", "-shared", "-ffp-contract=off")
_GUARD = 256                       # guard bytes on each side of every array argument
_NULL = np.zeros(1, dtype=np.uintp)
_order = ["forwards"]
launched = collections.Counter()   # kernel name -> launches in this process (for the tests)


def compiler():
    """Path of the C++ compiler (``$CXX`` or g++), or None."""
    return shutil.which(os.environ.get("CXX", "g++"))


@contextlib.contextmanager
def thread_order(order):
    """Run the emulated threads 'forwards' (block 0 thread 0 first) or 'backwards'."""
    if order not in ("forwards", "backwards"):
        raise ValueError(f"thread_order: 'forwards' or 'backwards', got {order!r}")
    _order.append(order)
    try:
        yield
    finally:
        _order.pop()


def _path(source):
    return source if os.path.isabs(source) else os.path.join(_HERE, source)


def kernel_names(source):
    """The ``__global__`` functions of a source, in order (the preprocessor expands macros
    like conv.cu's CONV_KERNELS, so instantiated names such as ``im2col_f32`` are listed)."""
    out = _run([compiler(), "-E", "-P", "-x", "c++", "-std=c++14", "-DMINIGEN_EMULATION_SCAN",
                f"-I{_HERE}", "-include", HEADER, _path(source)])
    return tuple(re.findall(r"\bminigen_kernel\s+void\s+(\w+)\s*\(", out))


@functools.lru_cache(maxsize=None)
def load(source):
    """The emulated module of ``kernels/<source>`` (or of a .cu file at an absolute path)."""
    if compiler() is None:
        raise RuntimeError("CUDA emulation needs a C++ compiler: g++ not found (set CXX)")
    return Module(_shared_library(_path(source)))


def _shared_library(path):
    """Compile the source into a cached shared library (the same bytes are never compiled
    twice) and return its path."""
    key = hashlib.sha256(" ".join(FLAGS + (_run([compiler(), "--version"]),)).encode())
    for part in [HEADER, path, *sorted(glob.glob(os.path.join(_HERE, "*.cuh")))]:
        with open(part, "rb") as f:
            key.update(f.read())
    key = key.hexdigest()[:20]
    cache = os.path.join(tempfile.gettempdir(), f"minigen-cuda-emulation-{os.getuid()}")
    os.makedirs(cache, exist_ok=True)
    library = os.path.join(cache, f"{os.path.splitext(os.path.basename(path))[0]}-{key}.so")
    if os.path.exists(library):
        return library
    names = kernel_names(path)
    unit = os.path.join(cache, f"{key}-{os.getpid()}.cpp")
    with open(unit, "w") as f:
        f.write(f'#include "{HEADER}"\n#include "{path}"\n')
        f.writelines(f"MINIGEN_EMULATE({name})\n" for name in names)
    partial = f"{library}.{os.getpid()}.tmp"
    try:
        _run([compiler(), *FLAGS, f"-I{_HERE}", "-o", partial, unit])
        os.replace(partial, library)       # atomic: a parallel worker sees all of it or none
    finally:
        for leftover in (unit, partial):
            if os.path.exists(leftover):
                os.remove(leftover)
    return library


def _run(command):
    out = subprocess.run(command, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{out.stderr}")
    return out.stdout


class Module:
    """An emulated ``cupy.RawModule``: ``get_function(name)``."""

    def __init__(self, library):
        self.library = ctypes.CDLL(library)

    def get_function(self, name):
        try:
            launch = getattr(self.library, f"minigen_launch_{name}")
            signature = getattr(self.library, f"minigen_signature_{name}")
        except AttributeError:
            raise AttributeError(f"no CUDA kernel named {name!r} in {self.library._name}") \
                from None
        signature.restype = ctypes.c_char_p
        launch.restype = None
        params = signature().decode()
        return Kernel(name, params.split(",") if params else [], launch)


class Kernel:
    """One emulated kernel, called like a CuPy kernel: ``kernel(grid, block, args)``."""

    def __init__(self, name, params, launch):
        self.name, self.params, self._launch = name, params, launch

    def __call__(self, grid, block, args, shared_mem=0, stream=None):
        if shared_mem:
            raise ValueError(f"{self.name}: shared memory is not emulated (see cuda_host.h)")
        grid, block = self._dims(grid, "grid"), self._dims(block, "block")
        args = tuple(args)
        if len(args) != len(self.params):
            raise TypeError(f"{self.name} takes {len(self.params)} arguments "
                            f"({', '.join(self.params)}), got {len(args)}")
        guarded = _Guarded(self.name)
        values = [self._value(i, p, a, guarded) for i, (p, a) in enumerate(zip(self.params, args))]
        params = (ctypes.c_void_p * max(len(values), 1))(*[v.ctypes.data for v in values])
        dims = [(ctypes.c_uint * 3)(*d) for d in (grid, block)]
        self._launch(dims[0], dims[1], int(_order[-1] == "backwards"), params)
        guarded.finish()
        launched[self.name] += 1

    def _dims(self, dims, what):
        dims = tuple(int(d) for d in (tuple(dims) + (1, 1))[:3])
        if min(dims) < 1:
            raise ValueError(f"{self.name}: {what} dimensions must be >= 1, got {dims}")
        return dims

    def _value(self, i, param, arg, guarded):
        """A one-element array holding argument ``i`` as the kernel's C type (a pointer is held
        as an address), after checking it as a strict CuPy would."""
        where = f"{self.name}: argument {i} ({param})"
        if param.endswith("*"):
            if arg is None:
                return _NULL                                   # CuPy passes None as NULL
            if not isinstance(arg, np.ndarray):
                raise TypeError(f"{where} needs an array, got {type(arg).__name__}")
            dtype = np.dtype(param.split()[-1][:-1])
            if arg.dtype != dtype:
                raise TypeError(f"{where} needs {dtype} data, got {arg.dtype}")
            if not arg.flags.c_contiguous:
                raise TypeError(f"{where}: the array is not C-contiguous (a kernel reads it "
                                "as flat memory)")
            return np.array([guarded.address(i, arg, const=param.startswith("const"))],
                            dtype=np.uintp)
        dtype = np.dtype(param)
        if isinstance(arg, bool) or not isinstance(arg, (int, float, np.generic)):
            raise TypeError(f"{where} needs a {dtype} scalar, got {type(arg).__name__}")
        # CuPy sends a Python int as a 64-bit integer and a Python float as a double
        given = np.dtype(np.int64 if isinstance(arg, int) else np.float64) \
            if isinstance(arg, (int, float)) else arg.dtype
        if given != dtype:
            raise TypeError(f"{where} needs a {dtype} scalar, got {given} ({arg!r}); pass "
                            f"np.{dtype}(...)")
        return np.array([arg], dtype=dtype)


class _Guarded:
    """Copies of a launch's array arguments with guard bytes before and after each; ``finish``
    checks the guards and the const arrays, and copies the results back."""

    FILL = 0xFF   # a float or double of these bytes is NaN, an integer is -1

    def __init__(self, kernel):
        self.kernel = kernel
        self.copies = {}   # data address -> [argument index, original, guarded buffer, const]

    def address(self, i, array, const):
        start = array.ctypes.data
        if start in self.copies and self.copies[start][1].nbytes == array.nbytes:
            self.copies[start][3] &= const             # the same array passed twice: one copy
            return self.copies[start][2].ctypes.data + _GUARD
        for j, original, _, _ in self.copies.values():
            if np.shares_memory(original, array):
                raise ValueError(f"{self.kernel}: arguments {j} and {i} overlap in memory")
        buffer = np.full(array.nbytes + 2 * _GUARD, self.FILL, dtype=np.uint8)
        buffer[_GUARD:_GUARD + array.nbytes] = array.reshape(-1).view(np.uint8)
        self.copies[start] = [i, array, buffer, const]
        return buffer.ctypes.data + _GUARD

    def finish(self):
        for i, original, buffer, const in self.copies.values():
            where = f"{self.kernel}: argument {i} ({original.dtype} array {original.shape})"
            inside = buffer[_GUARD:_GUARD + original.nbytes]
            if (buffer[:_GUARD] != self.FILL).any():
                raise RuntimeError(f"{where}: the kernel wrote before its first element")
            if (buffer[_GUARD + original.nbytes:] != self.FILL).any():
                raise RuntimeError(f"{where}: the kernel wrote past its last element")
            if const and (inside != original.reshape(-1).view(np.uint8)).any():
                raise RuntimeError(f"{where}: the kernel wrote into a const argument")
        for i, original, buffer, const in self.copies.values():
            if not const:
                original.reshape(-1).view(np.uint8)[:] = buffer[_GUARD:_GUARD + original.nbytes]
