"""Matrix products on Numba's threads: one pool of threads for a whole training step.

A training step alternates matrix products (BLAS: OpenBLAS in NumPy's wheels) with
elementwise and copy kernels (Numba, ``cpu.py``). Each library brings its own pool of
threads, and each pool's threads spin for a while after their work, waiting for more: with 2
threads on 2 cores, OpenBLAS's idle worker then holds the core a Numba kernel needs and
Numba's the core the next product needs (``minigen/threads.py`` measures it). So with more
than one thread minigen runs its large products on Numba's threads instead: ``C = A @ B`` is
cut into one block of rows (or of columns) per thread, and a Numba parallel loop has each
thread call the BLAS library's ``sgemm``/``dgemm`` on its block, with the library told to use
one thread meanwhile. The same threads then run the next kernel; no second pool wakes up.

The blocks are the product's own rows: ``C[m0:m1] = A[m0:m1] @ B`` (each thread reads all of
B) or, when C has few rows, ``C[:, n0:n1] = A @ B[:, n0:n1]``. Every entry of C is the same
dot product over K terms either way, but BLAS may choose another inner kernel for a smaller
block (it does for thin products, N = 5 or 10), so entries can differ from a single call's in
the last bits: the tests hold them to K * eps * (|A| @ |B|), the rounding bound of a sum.

``addmm_(c, a, b, beta, alpha)`` makes BLAS's whole formula, ``C = alpha A B + beta C``, in
place: a product accumulated into an array as it is made (an RBM's weight update).

With one thread, or for batched (3-D) operands, ``matmul`` is ``numpy.matmul``. With more,
a small product (or one with a vector) is ``numpy.matmul`` on the calling thread (BLAS told to
use one: woken for it, OpenBLAS's idle threads would spin on the cores Numba's threads need
next; an RBM epoch on 20000 images, 2 threads: 476 -> 457 ms), and a large one BLAS cannot
read in place (see ``_as_blas_operand``) keeps BLAS's own threads.
"""
import ctypes

import numba
import numpy as np

from minigen.threads import _blas_functions, one_blas_thread, openblas_function

from . import reuse, use_numba

# the C interface's constants (cblas.h): row-major storage, and "read this operand transposed"
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112

# Splitting pays from here on: M*N*K multiply-adds, OpenBLAS's own bar for using its threads
# (65536 * GEMM_MULTITHREAD_THRESHOLD 4).
SPLIT_MIN_WORK = 1 << 18
# ... and a split by columns (C wider than tall) from 16 times that: every thread packs all of
# A for its slice of B. Measured, 2 threads: (128, 20) @ (20, 400) (an MLP VAE's layer) took
# 50-90 us split, 28-37 on one thread, and M = 64-128, K = 32-64, N = 400-784 (2-3 M
# multiply-adds) lost too; (64, 16) @ (16, 12544) (a conv's first layer, 12 M) took 325-345
# against 440, and every 4 M product with N = 4096 won. A split by rows paid at every size.
SPLIT_MIN_WORK_COLUMNS = 1 << 22


def _splits(M, K, N):
    """True when C (M, N) = A (M, K) B (K, N) should be split over the threads (see above)."""
    return M * K * N >= (SPLIT_MIN_WORK if M >= N else SPLIT_MIN_WORK_COLUMNS)


_by_dtype = None  # {dtype: Numba function} once looked up; {} when no BLAS was found


def _blas_integer(library):
    """The C type of the library's integers, read from OpenBLAS's configuration string
    (USE64BITINT: the names alone do not say it), or None."""
    config = openblas_function(library, "openblas_get_config")
    if config is None:
        return None
    config.restype = ctypes.c_char_p
    return ctypes.c_int64 if b"USE64BITINT" in config() else ctypes.c_int32


def _gemm_function(library, prefix, scalar):
    """ctypes handle on ``cblas_?gemm`` (prefix "s" float32, "d" float64), or None."""
    integer = _blas_integer(library)
    gemm = openblas_function(library, f"cblas_{prefix}gemm") if integer is not None else None
    if gemm is None:
        return None
    signature = ctypes.CFUNCTYPE(
        None, ctypes.c_int, ctypes.c_int, ctypes.c_int,      # order, trans A, trans B
        integer, integer, integer, scalar,                   # M, N, K, alpha
        ctypes.c_void_p, integer, ctypes.c_void_p, integer,  # A, lda, B, ldb
        scalar, ctypes.c_void_p, integer)                    # beta, C, ldc
    return signature(ctypes.cast(gemm, ctypes.c_void_p).value)


def _blocks_kernel(gemm):
    """A Numba function running ``gemm`` on one block of C per thread (see the module text):
    C = alpha A B + beta C, BLAS's own form (beta = 0: C is only written).

    a, b, c are the flat data of A, B, C; (ta, lda), (tb, ldb) say how BLAS reads A and B, ldc
    is the distance between C's rows. A block of rows m0:m1 of C starts at row m0 of A: element
    m0*lda of a row-major A, or m0 of a transposed one (its rows are A's columns), and at
    element m0*ldc of C. A block of columns n0:n1 starts at column n0 of B (element n0, or
    n0*ldb transposed) and at element n0 of C."""

    @numba.njit(parallel=True, nogil=True)
    def blocks(ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc, parts, by_rows):
        for p in numba.prange(parts):
            if by_rows:
                m0, m1 = M * p // parts, M * (p + 1) // parts
                a0 = m0 * lda if ta == _NO_TRANS else m0
                gemm(_ROW_MAJOR, ta, tb, m1 - m0, N, K, alpha, a[a0:].ctypes, lda,
                     b.ctypes, ldb, beta, c[m0 * ldc:].ctypes, ldc)
            else:
                n0, n1 = N * p // parts, N * (p + 1) // parts
                b0 = n0 if tb == _NO_TRANS else n0 * ldb
                gemm(_ROW_MAJOR, ta, tb, M, n1 - n0, K, alpha, a.ctypes, lda,
                     b[b0:].ctypes, ldb, beta, c[n0:].ctypes, ldc)
    return blocks


def _kernels():
    global _by_dtype
    if _by_dtype is None:
        functions = _blas_functions()
        _by_dtype = {}
        if functions is not None:
            for dtype, prefix, scalar in ((np.float32, "s", ctypes.c_float),
                                          (np.float64, "d", ctypes.c_double)):
                gemm = _gemm_function(functions[2], prefix, scalar)
                if gemm is not None:
                    _by_dtype[np.dtype(dtype)] = _blocks_kernel(gemm)
    return _by_dtype


def _as_blas_operand(x):
    """(flat data, transposed?, leading dimension) of a 2-D array BLAS reads in place, or
    None. BLAS reads a matrix whose rows (or, transposed, columns) lie at a fixed distance
    apart, the leading dimension, each a contiguous run: a contiguous array, its transposed
    view, or a block of columns of either (``g[:, n0:n1]``)."""
    rows, cols = x.shape
    unit = x.itemsize
    if x.flags.c_contiguous:
        return x.reshape(-1), _NO_TRANS, max(1, cols)
    if x.flags.f_contiguous:
        return x.T.reshape(-1), _TRANS, max(1, rows)
    (s0, s1), extent = x.strides, None
    if s1 == unit and s0 % unit == 0 and s0 >= cols * unit:
        trans, ld, extent = _NO_TRANS, s0 // unit, (rows - 1) * (s0 // unit) + cols
    elif s0 == unit and s1 % unit == 0 and s1 >= rows * unit:
        trans, ld, extent = _TRANS, s1 // unit, (cols - 1) * (s1 // unit) + rows
    if extent is None:
        return None
    return np.lib.stride_tricks.as_strided(x, (extent,), (unit,)), trans, ld


def matmul(a, b):
    """``a @ b`` for NumPy arrays; large 2-D products run on Numba's threads (module text)."""
    parts = numba.get_num_threads()
    if parts == 1 or a.ndim > 2 or b.ndim > 2:
        return _product(a, b)
    if (a.ndim == 2 and b.ndim == 2 and a.dtype == b.dtype
            and _splits(a.shape[0], a.shape[1], b.shape[1])):
        c = _split(a, b, parts)
        return _product(a, b) if c is None else c  # not splittable: BLAS's own threads
    # a small product (or one with a vector) runs on the calling thread: woken for it,
    # OpenBLAS's idle threads would spin on the cores that Numba's threads need next
    with one_blas_thread():
        return _product(a, b)


def _product(a, b):
    """``numpy.matmul(a, b)``; a large matrix result is made in a kept array (reuse.py)."""
    if a.ndim == 2 and b.ndim == 2 and a.dtype == b.dtype and a.shape[1] == b.shape[0]:
        return np.matmul(a, b, out=reuse.take((a.shape[0], b.shape[1]), a.dtype))
    return np.matmul(a, b)


def _split(a, b, parts):
    """C = a @ b made by ``parts`` threads, one block each; None when BLAS cannot read an
    operand in place (or no BLAS is found)."""
    c = reuse.take((a.shape[0], b.shape[1]), a.dtype)
    return c if _gemm(c, a, b, 0.0, 1.0, parts) else None


def addmm_(c, a, b, beta=1.0, alpha=1.0):
    """``c = beta c + alpha (a @ b)`` in place, PyTorch's ``Tensor.addmm_``: the product
    accumulated into ``c`` by BLAS itself, as it makes it -- no array for ``a @ b``, no pass
    over it (an RBM's weight update ``W += V^T P``: beta = 1). beta = 0 only writes ``c``
    (what it held, NaN included, is ignored, as in BLAS). Returns ``c``.

    On NumPy arrays (kernels on) a large product is split over Numba's threads as in
    ``matmul``, a small one is one BLAS call on the calling thread; elsewhere (CuPy, the
    references, a layout BLAS cannot read or write in place) it is the array library's
    matmul and the same formula."""
    if (use_numba(c) and c.ndim == a.ndim == b.ndim == 2 and a.dtype == b.dtype == c.dtype
            and c.shape == (a.shape[0], b.shape[1]) and a.shape[1] == b.shape[0]):
        (M, K), N = a.shape, b.shape[1]
        parts = numba.get_num_threads() if _splits(M, K, N) else 1
        if _gemm(c, a, b, beta, alpha, parts):
            return c
    return _addmm_reference(c, a, b, beta, alpha)


def _addmm_reference(c, a, b, beta, alpha):
    """``addmm_`` in array operations: the product, then the two scalings and the sum."""
    from ..backend import get_array_module
    product = get_array_module(c).matmul(a, b)
    if alpha != 1:
        product *= alpha
    if beta == 0:
        c[...] = product
        return c
    if beta != 1:
        c *= beta
    c += product
    return c


def _gemm(c, a, b, beta, alpha, parts):
    """c = alpha a b + beta c on ``parts`` threads (one block each, one BLAS thread each);
    False when BLAS cannot read an operand or write c in place, or no BLAS is found. C's
    rows must be contiguous runs (C-ordered, or a block of columns of a C-ordered array)."""
    kernel = _kernels().get(a.dtype)
    A, B, C = _as_blas_operand(a), _as_blas_operand(b), _as_blas_operand(c)
    if kernel is None or A is None or B is None or C is None or C[1] != _NO_TRANS:
        return False
    (M, K), N = a.shape, b.shape[1]
    by_rows = M >= N
    parts = max(1, min(parts, M if by_rows else N))
    with one_blas_thread():
        kernel(A[1], B[1], M, N, K, alpha, A[0], A[2], B[0], B[2], beta, C[0], C[2], parts,
               by_rows)
    return True
