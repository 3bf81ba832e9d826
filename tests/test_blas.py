"""kernels/blas.py: large matrix products cut into one block per Numba thread, each block a
BLAS call. Every layout BLAS reads in place (contiguous, transposed, a block of columns) and
both split directions give numpy.matmul's matrix to rounding; what cannot be split falls back
to numpy.matmul itself; the BLAS library's thread count is back afterwards; and the check
catches a block written from the wrong place."""
import contextlib

import numba
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minigen import threads
from minigen.kernels import blas, matmul

needs_threads = pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2,
                                   reason="one core: Numba's pool has a single thread")
needs_cblas = pytest.mark.skipif(not blas._kernels(), reason="no BLAS with the C interface "
                                 "among this process's libraries (NumPy built on another BLAS)")


@pytest.fixture
def two_threads():
    before = numba.get_num_threads()
    numba.set_num_threads(2)
    yield
    numba.set_num_threads(before)


def assert_product(c, a, b):
    """c is a @ b to rounding: each entry is a sum of K products, so it may differ from the
    exact value by about K * eps * sum_k |a_ik b_kj| (and a wrong entry by far more)."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    bound = a.shape[1] * np.finfo(a.dtype).eps * (np.abs(a64) @ np.abs(b64))
    assert c.shape == (a.shape[0], b.shape[1]) and c.dtype == a.dtype
    assert (np.abs(c - a64 @ b64) <= bound).all()


def _laid_out(rng, shape, dtype, layout):
    """A (rows, cols) matrix stored C-ordered, transposed (F-ordered), or as a block of columns
    (of a wider C matrix) or of rows (of a taller transposed one): every layout BLAS reads."""
    rows, cols = shape
    if layout == "C":
        return rng.standard_normal(shape).astype(dtype)
    if layout == "F":
        return rng.standard_normal((cols, rows)).astype(dtype).T
    if layout == "C block":
        return rng.standard_normal((rows, cols + 5)).astype(dtype)[:, 2:cols + 2]
    return rng.standard_normal((cols + 5, rows)).astype(dtype)[3:cols + 3].T


layouts = st.sampled_from(["C", "F", "C block", "F block"])


@contextlib.contextmanager
def split_everything(threads):
    """``threads`` Numba threads, and every product split over them, however small or thin
    (the bars that keep small products on one thread are for speed, not for correctness)."""
    before = numba.get_num_threads(), blas.SPLIT_MIN_WORK, blas.SPLIT_MIN_WORK_COLUMNS
    numba.set_num_threads(threads)
    blas.SPLIT_MIN_WORK, blas.SPLIT_MIN_WORK_COLUMNS = 1, 1
    try:
        yield
    finally:
        numba.set_num_threads(before[0])
        blas.SPLIT_MIN_WORK, blas.SPLIT_MIN_WORK_COLUMNS = before[1:]


@needs_threads
@needs_cblas
@settings(max_examples=25, deadline=None)
@given(m=st.integers(1, 300), k=st.integers(1, 300), n=st.integers(1, 300),
       dtype=st.sampled_from([np.float32, np.float64]), la=layouts, lb=layouts,
       seed=st.integers(0, 2 ** 16))
def test_split_products_are_the_product(m, k, n, dtype, la, lb, seed):
    rng = np.random.default_rng(seed)
    a, b = _laid_out(rng, (m, k), dtype, la), _laid_out(rng, (k, n), dtype, lb)
    with split_everything(2):
        assert_product(blas.matmul(a, b), a, b)


@needs_cblas
@settings(max_examples=25, deadline=None)
@given(m=st.integers(1, 200), k=st.integers(1, 200), n=st.integers(1, 200),
       dtype=st.sampled_from([np.float32, np.float64]), la=layouts, lb=layouts,
       lc=st.sampled_from(["C", "C block"]), beta=st.sampled_from([0.0, 1.0, 0.9]),
       alpha=st.sampled_from([1.0, -0.25]), threads_=st.sampled_from([1, 2]),
       seed=st.integers(0, 2 ** 16))
def test_addmm_accumulates_the_product_in_place(m, k, n, dtype, la, lb, lc, beta, alpha,
                                                threads_, seed):
    """addmm_(c, a, b, beta, alpha) is beta c + alpha a @ b, written into c itself (a C-ordered
    array or a block of columns of one), split over the threads or not; beta = 0 ignores
    what c held, NaN included."""
    rng = np.random.default_rng(seed)
    a, b = _laid_out(rng, (m, k), dtype, la), _laid_out(rng, (k, n), dtype, lb)
    c = _laid_out(rng, (m, n), dtype, lc)
    c0 = c.astype(np.float64)
    if beta == 0:
        c[0, 0] = np.nan
    with split_everything(min(threads_, numba.config.NUMBA_NUM_THREADS)):
        assert blas.addmm_(c, a, b, beta=beta, alpha=alpha) is c
    # the sum's rounding bound (assert_product's) plus one rounding of the scaled c
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    eps = np.finfo(dtype).eps
    bound = (k + 2) * eps * (abs(alpha) * (np.abs(a64) @ np.abs(b64)) + abs(beta) * np.abs(c0))
    assert (np.abs(c - (beta * c0 + alpha * (a64 @ b64))) <= bound).all()


def test_addmm_reference_is_the_formula():
    """Where BLAS is not called (the references, CuPy) addmm_ is the same formula in array
    operations; and the check catches a wrong beta."""
    rng = np.random.default_rng(3)
    a, b, c = (rng.standard_normal(s).astype(np.float32) for s in ((5, 4), (4, 3), (5, 3)))
    want = 0.5 * c + 2.0 * (a @ b)
    got = blas._addmm_reference(c.copy(), a, b, 0.5, 2.0)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    c[0, 0] = np.nan
    np.testing.assert_allclose(blas._addmm_reference(c.copy(), a, b, 0.0, 1.0), a @ b,
                               rtol=1e-6)
    assert not np.allclose(blas._addmm_reference(c.copy(), a, b, 1.0, 2.0), want, atol=1e-3)


@needs_threads
@needs_cblas
@pytest.mark.parametrize("shape", [(300, 200, 50), (50, 400, 300)], ids=["by rows", "by columns"])
def test_large_products_take_the_split_path_and_give_blas_its_threads_back(shape, two_threads,
                                                                         monkeypatch):
    calls, kernel = [], blas._kernels()[np.dtype(np.float32)]
    monkeypatch.setitem(blas._kernels(), np.dtype(np.float32),
                        lambda *args: calls.append(args[-1]) or kernel(*args))
    m, k, n = shape
    rng = np.random.default_rng(0)
    a, b = rng.random((m, k), dtype=np.float32), rng.random((k, n), dtype=np.float32)
    blas_before = threads.blas_threads()
    c = matmul(a, b)  # the dispatcher minigen's ops call
    assert calls == [m >= n]  # one split call, in the direction of C's longer side
    assert threads.blas_threads() == blas_before
    assert_product(c, a, b)


@pytest.mark.parametrize("a, b", [
    (np.ones((4, 3, 5), np.float32), np.ones((5, 2), np.float32)),   # batched: not 2-D
    (np.ones((300, 300), np.int64), np.ones((300, 300), np.int64)),  # integers: no BLAS
    (np.ones((300, 300), np.float32), np.ones((300, 300))),          # mixed dtypes
    (np.ones((600, 600), np.float32)[::2, ::2], np.ones((300, 300), np.float32)),  # strided
])
def test_what_cannot_be_split_is_numpys_product(a, b, two_threads):
    np.testing.assert_array_equal(blas.matmul(a, b), np.matmul(a, b))


def test_one_thread_is_numpys_product_bit_for_bit():
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        rng = np.random.default_rng(1)
        a, b = rng.random((512, 784), dtype=np.float32), rng.random((784, 256), dtype=np.float32)
        np.testing.assert_array_equal(blas.matmul(a, b), np.matmul(a, b))
    finally:
        numba.set_num_threads(before)


@needs_threads
@needs_cblas
def test_the_check_catches_a_block_read_from_the_wrong_place(two_threads):
    # the split kernel run by hand with A's leading dimension off by one: every row after the
    # first starts one element late, as an off-by-one in a block's offset would
    rng = np.random.default_rng(2)
    a, b = rng.random((64, 33), dtype=np.float32), rng.random((32, 40), dtype=np.float32)
    c = np.empty((64, 40), np.float32)
    kernel = blas._kernels()[np.dtype(np.float32)]
    kernel(blas._NO_TRANS, blas._NO_TRANS, 64, 40, 32, 1.0, a.reshape(-1), 33, b.reshape(-1),
           40, 0.0, c.reshape(-1), 40, 2, True)
    assert_product(c, a[:, :32], b)  # the right leading dimension (33) passes
    kernel(blas._NO_TRANS, blas._NO_TRANS, 64, 40, 32, 1.0, a.reshape(-1), 32, b.reshape(-1),
           40, 0.0, c.reshape(-1), 40, 2, True)
    with pytest.raises(AssertionError):
        assert_product(c, a[:, :32], b)


@needs_threads
@pytest.mark.parametrize("a, b", [(np.ones((8, 16), np.float32), np.ones((16, 4), np.float32)),
                                  (np.ones(128, np.float32), np.ones((128, 784), np.float32))],
                         ids=["small", "vector"])
def test_small_products_keep_blas_to_the_calling_thread(a, b, two_threads, monkeypatch):
    entered = []

    class recording(threads.one_blas_thread):
        def __enter__(self):
            entered.append(True)
            return super().__enter__()

    monkeypatch.setattr(blas, "one_blas_thread", recording)
    blas_before = threads.blas_threads()
    np.testing.assert_array_equal(blas.matmul(a, b), np.matmul(a, b))
    assert entered == [True] and threads.blas_threads() == blas_before


class _FakeLibrary:
    """A BLAS library as ctypes shows it: only a configuration string."""

    def __init__(self, config):
        def openblas_get_config():
            return config
        self.openblas_get_config = openblas_get_config


@pytest.mark.parametrize("config, integer", [
    (b"OpenBLAS 0.3.31  USE64BITINT DYNAMIC_ARCH", "c_int64"),
    (b"OpenBLAS 0.3.26 DYNAMIC_ARCH NO_AFFINITY", "c_int32"),
])
def test_the_integer_width_comes_from_the_library(config, integer):
    # a wrong width would hand the library garbage sizes: read it, never guess it
    import ctypes
    assert blas._blas_integer(_FakeLibrary(config)) is getattr(ctypes, integer)
    assert blas._blas_integer(object()) is None  # no OpenBLAS configuration: no split
    assert blas._gemm_function(object(), "s", ctypes.c_float) is None


def test_small_products_split_by_columns_stay_on_one_thread():
    """Which products are split (the measurements are in blas.py): not the small ones, and a
    split by columns only from SPLIT_MIN_WORK_COLUMNS multiply-adds on."""
    assert not blas._splits(64, 64, 63)                  # below SPLIT_MIN_WORK
    assert blas._splits(512, 20, 256)                    # by rows, 2.6 M
    assert not blas._splits(128, 20, 400)                # by columns, 1 M
    assert blas._splits(64, 16, 12544)                   # by columns, 12.8 M
