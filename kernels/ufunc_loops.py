"""NumPy's own inner loops, callable from Numba kernels: ``exp`` on each thread's block.

``np.exp`` on float32 runs a SIMD loop (AVX-512 or AVX2, chosen when NumPy loads): ~0.4 ns
per element, where the scalar ``math.exp`` a Numba loop calls costs ~2.5-3.7 (measured). A
kernel that needs exp and wants NumPy's bits (the RBM's sigmoid-and-draw: its draws must equal
the NumPy reference's, bit for bit) can still run in parallel: each thread calls that very
loop on its own block. A ufunc keeps its loops in a C table -- ``functions[i]``, for the
``i``-th of ``ufunc.types`` -- with the signature

    void loop(char **args, npy_intp const *dimensions, npy_intp const *steps, void *data)

(``args``: the input and output pointers, ``dimensions[0]``: the element count, ``steps``:
the byte strides). ``loop(ufunc, char)`` reads the table through ctypes, at the offsets of
NumPy's public ``PyUFuncObject`` (``numpy/ufuncobject.h``); the table is trusted only if the
ufunc's name, argument counts and type list read back as Python sees them, and the loop it
finds computes ``np.exp``'s very bits on a test vector (overflow, underflow, NaN and the
infinities included). Anything else returns None and the caller keeps NumPy's own call.
"""
import ctypes

import numpy as np

# loop(char **args, npy_intp *dimensions, npy_intp *steps, void *data) as a ctypes type Numba
# can call: the three arrays passed as ``array.ctypes``, the data pointer as an integer (the
# same register on every 64-bit ABI)
LOOP = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                        ctypes.c_ssize_t)


class _UFuncHead(ctypes.Structure):
    """The leading fields of NumPy's ``PyUFuncObject`` (ufuncobject.h), in its order."""
    _fields_ = [("ob_refcnt", ctypes.c_ssize_t), ("ob_type", ctypes.c_void_p),
                ("nin", ctypes.c_int), ("nout", ctypes.c_int), ("nargs", ctypes.c_int),
                ("identity", ctypes.c_int),
                ("functions", ctypes.POINTER(ctypes.c_void_p)),
                ("data", ctypes.POINTER(ctypes.c_void_p)),
                ("ntypes", ctypes.c_int), ("reserved1", ctypes.c_int),
                ("name", ctypes.c_char_p), ("types", ctypes.POINTER(ctypes.c_char))]


_found = {}


def loop(ufunc, char):
    """(ctypes function, its data pointer as int) for the unary ``ufunc``'s loop on the
    type ``char`` ("f" float32, "d" float64), or None where it cannot be found and checked."""
    key = (ufunc.__name__, char)
    if key not in _found:
        _found[key] = _find(ufunc, char)
    return _found[key]


def _find(ufunc, char):
    if ufunc.nin != 1 or ufunc.nout != 1:
        return None
    head = _UFuncHead.from_address(id(ufunc))
    # the numbers first: reading ``name`` follows a pointer, safe only once the layout is known
    if ((head.nin, head.nout, head.nargs) != (1, 1, 2) or head.ntypes != ufunc.ntypes
            or head.name != ufunc.__name__.encode()):
        return None
    nums = [ord(head.types[k]) for k in range(2 * head.ntypes)]
    if nums != [np.dtype(c).num for t in ufunc.types for c in t.replace("->", "")]:
        return None
    want = np.dtype(char).num
    for i in range(head.ntypes):
        if nums[2 * i] == nums[2 * i + 1] == want:   # the first, as NumPy's own type resolution
            found = LOOP(head.functions[i]), head.data[i] or 0
            return found if _computes(ufunc, char, *found) else None
    return None


def _computes(ufunc, char, function, data):
    """True when ``function`` gives ``ufunc``'s bits, in place and into another array."""
    x = np.concatenate([[-np.inf, -1e4, -104.0, -88.7, -1e-3, 0.0, 1e-3, 1.0, 88.7, 89.0, 1e4,
                         np.inf, np.nan],
                        np.random.default_rng(0).normal(0, 30, 1000)]).astype(char)
    with np.errstate(all="ignore"):
        want = ufunc(x)
    out, inplace = np.empty_like(x), x.copy()
    for src, dst in ((x, out), (inplace, inplace)):
        call(function, data, src, dst, src.size)
    return np.array_equal(out, want, equal_nan=True) and \
        np.array_equal(inplace, want, equal_nan=True)


def call(function, data, src, dst, n):
    """The loop on n contiguous elements of src into dst, from Python (the tests' way in;
    Numba kernels make the same call with the arrays' addresses)."""
    pointers = (ctypes.c_void_p * 2)(src.ctypes.data, dst.ctypes.data)
    dims = (ctypes.c_ssize_t * 1)(n)
    steps = (ctypes.c_ssize_t * 2)(src.itemsize, dst.itemsize)
    function(pointers, dims, steps, data)
