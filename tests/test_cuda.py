"""The CUDA path, proved without a GPU (``pytest -k emulat``).

* Every kernel of ``kernels/*.cu`` runs under host emulation -- the source compiled by g++,
  its threads run one by one, forwards or backwards, on grids far smaller and far larger
  than the work -- through the glue of ``kernels/cuda.py``, and equals its NumPy reference
  on hypothesis-drawn shapes: bit for bit, or within the few units in the last place by
  which math libraries' exp and log1p differ (each test says which). conv.cu's kernels are
  checked in test_conv.py, beside their Numba twins.
* The library's wiring of those kernels (batch norm, leaky ReLU, sigmoid-BCE, the VAE's
  reparameterisation, K-means, SOM, RBM) runs under ``MINIGEN_KERNELS=emulate``: gradcheck
  on that path, and the same numbers as the CPU path.
* The emulator is stricter than a GPU, and a planted indexing bug fails a kernel test.
* nvcc compiles every source as CuPy will, with exactly the kernels the emulation found.

Every test taking ``backend`` runs twice: ``emulated`` here, ``gpu`` (marked) on a device.
"""
import glob
import importlib
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigen as mg
import minigen.nn.functional as F
from cuda_backends import (BACKENDS, COVERED, LAUNCHES, ORDERS, device, exercises, host,
                           kernels_mode, needs_compiler, on, running)
from minigen.kernels import cuda, cuda_for, emulation
from minigen.models import KMeans, RBM, SOM, distances
from minigen.models import rbm as R
from minigen.models import som as S
from minigen.models.vae import reparameterize
from minigen.nn.functional import Normalize
from minigen.testing import TOL

KERNELS_DIR = os.path.dirname(emulation.HEADER)
SOURCES = sorted(os.path.basename(p) for p in glob.glob(os.path.join(KERNELS_DIR, "*.cu")))
both_dtypes = pytest.mark.parametrize("dtype", [np.dtype(np.float32), np.dtype(np.float64)],
                                      ids=["f32", "f64"])
# exp, log1p and the sigmoid built on them: NumPy's vectorised loops, glibc (emulation) and
# CUDA each round a little differently. Measured here over 2e5 values: exp 2 ulp apart in
# float32 (1 in float64), 1 / (1 + exp(-z)) 4 ulp; allowed: 8 ulp, still ~1e-6 relative.
EXP_ULP = 8


def rng_for(seed):
    return np.random.default_rng(seed)


# ====================================================================== norm.cu
def channel_values(a):
    """(N, C, ...) -> (C, N * L) float64: each channel's values in the kernels' order."""
    N, C = a.shape[:2]
    return a.astype(np.float64).reshape(N, C, -1).transpose(1, 0, 2).reshape(C, -1)


def ordered_sums(values, parts):
    """What norm.cu's two launches add, in NumPy: thread p of a channel adds values p,
    p + parts, ... one after another (np.cumsum adds strictly left to right), then the
    channel's partial sums are added in order p = 0, 1, ... (trailing zeros change no sum)."""
    C, count = values.shape
    rows = -(-count // parts)
    padded = np.zeros((C, rows * parts))
    padded[:, :count] = values
    partial = np.cumsum(padded.reshape(C, rows, parts), axis=1)[:, -1]
    return np.cumsum(partial, axis=1)[:, -1]


def check_batch_norm(backend, dtype, shape, parts, affine, seed, launch="one per item",
                     order="forwards"):
    """The fused batch norm of norm.cu, forward and backward, against NumPy doing the same
    additions in the same order -- bit for bit -- and ``Normalize`` for the elementwise part."""
    rng = rng_for(seed)
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    C, count = shape[1], x.size // shape[1]
    stat = (1, C) + (1,) * (len(shape) - 2)
    w, b = (rng.standard_normal(stat).astype(dtype) for _ in range(2)) if affine else (None, None)
    with running(backend, launch, order):
        mean, var = host(*cuda.batch_norm_stats(on(backend, x), parts))
    # statistics: two passes of ordered float64 sums
    mean64 = ordered_sums(channel_values(x), parts) / count
    np.testing.assert_array_equal(mean, mean64.astype(dtype))
    var64 = ordered_sums((channel_values(x) - mean64[:, None]) ** 2, parts) / count
    np.testing.assert_array_equal(var, var64.astype(dtype))
    # normalisation: Normalize.forward given these statistics
    ref = Normalize()
    y_ref = ref.forward(x, w, b, axes=(0,) + tuple(range(2, len(shape))), eps=1e-5,
                        mean=mean.reshape(stat), var=var.reshape(stat))
    with running(backend, launch, order):
        xhat, y = host(*cuda.batch_norm_normalize(*on(backend, x, mean, ref.inv_std, w, b)))
        gx, gw, gb = host(*cuda.batch_norm_backward(*on(backend, g, xhat, ref.inv_std, w),
                                                    parts=parts))
    np.testing.assert_array_equal(xhat, ref.xhat)
    np.testing.assert_array_equal(y if affine else xhat, y_ref)
    # backward: the two ordered sums, then Normalize.backward's formula with those means
    sum_g = ordered_sums(channel_values(g), parts)
    sum_gx = ordered_sums(channel_values(g) * channel_values(xhat), parts)
    w64 = 1.0 if w is None else w.reshape(C).astype(np.float64)
    mean_gh, mean_ghx = ((w64 * s / count).astype(dtype).reshape(stat) for s in (sum_g, sum_gx))
    gh = g if w is None else g * w
    np.testing.assert_array_equal(gx, ref.inv_std * (gh - mean_gh - xhat * mean_ghx))
    if affine:
        np.testing.assert_array_equal(gw, sum_gx.astype(dtype))
        np.testing.assert_array_equal(gb, sum_g.astype(dtype))
    else:
        assert gw is None and gb is None


BN_SHAPES = st.tuples(st.integers(1, 4), st.integers(1, 4),
                      st.lists(st.integers(1, 5), max_size=2)).map(lambda s: s[:2] + tuple(s[2]))


@exercises("norm.cu", "channel_partial_sums", "combine_partials", "channel_partial_grad_sums",
           "batch_norm_normalize", "batch_norm_backward_input")
@pytest.mark.parametrize("backend", BACKENDS)
@both_dtypes
@given(shape=BN_SHAPES, parts=st.integers(1, 40), affine=st.booleans(),
       seed=st.integers(0, 2 ** 16), launch=LAUNCHES, order=ORDERS)
def test_cuda_batch_norm_equals_its_reference(backend, dtype, shape, parts, affine, seed,
                                              launch, order):
    check_batch_norm(backend, dtype, shape, parts, affine, seed, launch, order)


@pytest.mark.parametrize("backend", BACKENDS)
@both_dtypes
@given(shape=BN_SHAPES.filter(lambda s: np.prod(s) > s[1]), seed=st.integers(0, 2 ** 16))
@settings(max_examples=max(5, settings.default.max_examples // 4))
def test_batch_norm_layer_on_the_cuda_path_matches_the_library(backend, dtype, shape, seed):
    """``batch_norm`` in training mode as the library runs it -- forward, running statistics,
    all gradients -- on the CUDA path against the NumPy path. Tolerance: the NumPy path adds
    float32 in float32 (pairwise), the kernels in float64, so the float32 statistics differ
    by the reference's own rounding, ~1e-6 relative; float64 agrees to ~1e-15."""
    rng = rng_for(seed)
    C = shape[1]
    arrays = [(rng.standard_normal(shape) * 3 + 1).astype(dtype),
              rng.standard_normal(C).astype(dtype), rng.standard_normal(C).astype(dtype)]
    g = rng.standard_normal(shape).astype(dtype)

    def run(dev):
        x, w, b = (mg.tensor(a, dtype=dtype, device=dev, requires_grad=True) for a in arrays)
        stats = [mg.zeros(C, dtype=dtype, device=dev), mg.ones(C, dtype=dtype, device=dev)]
        y = F.batch_norm(x, *stats, w, b, training=True)
        y.backward(mg.tensor(g, dtype=dtype, device=dev))
        return [y.numpy(), x.grad.numpy(), w.grad.numpy(), b.grad.numpy()] + \
            [s.numpy() for s in stats]

    with running(backend):
        fast = run(device(backend))
    with kernels_mode("reference"):
        slow = run("cpu")
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for name, a, r in zip(["y", "dx", "dweight", "dbias", "running_mean", "running_var"],
                          fast, slow):
        np.testing.assert_allclose(a, r, rtol=tol, atol=tol, err_msg=name)


# ====================================================================== elementwise.cu
def values(dtype, lo=-40.0, hi=40.0, special=()):
    """Small arrays of finite values (and the given special ones)."""
    finite = st.floats(lo, hi, width=32)
    return hnp.arrays(dtype, hnp.array_shapes(max_dims=3, max_side=6),
                      elements=st.one_of(finite, st.sampled_from(special)) if special else finite)


@exercises("elementwise.cu", "leaky_relu_forward", "leaky_relu_backward")
@pytest.mark.parametrize("backend", BACKENDS)
@both_dtypes
@given(data=st.data(), slope=st.sampled_from([0.01, 0.2, 1.5]), launch=LAUNCHES, order=ORDERS)
def test_cuda_leaky_relu_equals_reference(backend, dtype, data, slope, launch, order):
    """Bit for bit, NaN, infinities and signed zeros included: no transcendental involved."""
    x = data.draw(values(dtype, special=(0.0, -0.0, np.inf, -np.inf, np.nan)), label="x")
    g = data.draw(hnp.arrays(dtype, x.shape, elements=st.floats(-5, 5, width=32)), label="g")
    with running(backend, launch, order):
        y = host(cuda.leaky_relu(on(backend, x), slope))
        gx = host(cuda.leaky_relu_backward(*on(backend, g, x), slope))
    with kernels_mode("reference"):
        t = mg.tensor(x, dtype=dtype, requires_grad=True)
        out = mg.leaky_relu(t, slope)
        out.backward(mg.tensor(g, dtype=dtype))
    assert y.dtype == gx.dtype == dtype
    assert np.array_equal(y, out.numpy(), equal_nan=True)
    assert np.array_equal(gx, t.grad.numpy(), equal_nan=True)


@exercises("elementwise.cu", "bce_with_logits_forward", "bce_with_logits_backward")
@pytest.mark.parametrize("backend", BACKENDS)
@both_dtypes
@given(data=st.data(), reduction=st.sampled_from(["mean", "sum", "none"]), launch=LAUNCHES,
       order=ORDERS)
def test_cuda_bce_with_logits_equals_reference(backend, dtype, data, reduction, launch, order):
    """e = exp(-|x|) within EXP_ULP; the loss within 4 eps (its log1p term is < log 2, so a
    few ulp of it are a few eps at most); the backward, given the reference's e, bit for bit."""
    x = data.draw(values(dtype), label="x")
    t = data.draw(hnp.arrays(dtype, x.shape, elements=st.floats(0, 1, width=32)), label="t")
    with kernels_mode("reference"):
        xt = mg.tensor(x, dtype=dtype, requires_grad=True)
        loss = F.binary_cross_entropy_with_logits(xt, mg.tensor(t, dtype=dtype),
                                                  reduction=reduction)
        e_ref = loss._ctx.e
        elementwise = F.binary_cross_entropy_with_logits(mg.tensor(x, dtype=dtype),
                                                         mg.tensor(t, dtype=dtype),
                                                         reduction="none").numpy()
        g = np.ones(loss.shape, dtype) * 0.75
        loss.backward(mg.tensor(g, dtype=dtype))
    g_kernel = g / x.size if reduction == "mean" else g   # as BCEWithLogits.backward scales it
    with running(backend, launch, order):
        loss_k, e = host(*cuda.bce_with_logits(*on(backend, x, t)))
        gx = host(cuda.bce_with_logits_backward(*on(backend, g_kernel.astype(dtype), x, t,
                                                    e_ref)))
    np.testing.assert_array_max_ulp(e, e_ref, EXP_ULP)
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(loss_k, elementwise, rtol=4 * eps, atol=4 * eps)
    np.testing.assert_array_equal(gx, xt.grad.numpy())


@exercises("elementwise.cu", "reparameterize_forward", "reparameterize_backward")
@pytest.mark.parametrize("backend", BACKENDS)
@both_dtypes
@given(data=st.data(), launch=LAUNCHES, order=ORDERS)
def test_cuda_reparameterize_equals_reference(backend, dtype, data, launch, order):
    """sigma = exp(logvar / 2) within EXP_ULP; given it, z and the backward bit for bit
    (the backward in autograd's order of products)."""
    mu = data.draw(values(dtype, -5, 5), label="mu")
    logvar, eps, g = (data.draw(hnp.arrays(dtype, mu.shape, elements=st.floats(-8, 8, width=32)),
                                label=name) for name in ("logvar", "eps", "g"))
    with kernels_mode("reference"):
        m, lv = (mg.tensor(a, dtype=dtype, requires_grad=True) for a in (mu, logvar))
        z_ref = reparameterize(m, lv, mg.tensor(eps, dtype=dtype))
        z_ref.backward(mg.tensor(g, dtype=dtype))
        sigma_ref = (0.5 * mg.tensor(logvar, dtype=dtype)).exp().numpy()
    with running(backend, launch, order):
        z, sigma = host(*cuda.reparameterize(*on(backend, mu, logvar, eps)))
        g_logvar = host(cuda.reparameterize_backward(*on(backend, g, eps, sigma_ref)))
    np.testing.assert_array_max_ulp(sigma, sigma_ref, EXP_ULP)
    np.testing.assert_array_equal(z, mu + sigma * eps)
    np.testing.assert_array_equal(g_logvar, lv.grad.numpy())
    np.testing.assert_array_equal(z_ref.numpy(), mu + sigma_ref * eps)


# ====================================================================== classical.cu
@exercises("classical.cu", "nearest_from_gram", "nearest_direct")
@pytest.mark.parametrize("backend", BACKENDS)
@both_dtypes
@given(n=st.integers(1, 12), k=st.integers(1, 6), d=st.integers(1, 12), metric=st.integers(0, 3),
       exact=st.booleans(), tie=st.booleans(), seed=st.integers(0, 2 ** 16), launch=LAUNCHES,
       order=ORDERS)
def test_cuda_nearest_equals_reference(backend, dtype, n, k, d, metric, exact, tie, seed, launch,
                                       order):
    """Bit for bit, ties (a repeated unit: the first wins) included. Manhattan adds one
    feature after another where NumPy adds pairwise, so it is checked on values whose sums
    are exact in any order (multiples of 1/4)."""
    rng = rng_for(seed)
    X, W = (rng.standard_normal(s).astype(dtype) for s in ((n, d), (k, d)))
    if exact or metric == 2:
        X, W = (np.round(a * 4) / 4 for a in (X, W))
    if tie:
        W[-1] = W[0]
    with running(backend, launch, order):
        index, dist = host(*cuda.nearest(*on(backend, X, W), metric))
    # the reference on the backend's arrays: the same X W^T (BLAS or cuBLAS) on both sides
    index_ref, dist_ref = host(*distances.nearest_reference(*on(backend, X, W),
                                                            distances.METRICS[metric]))
    np.testing.assert_array_equal(index, index_ref)
    np.testing.assert_array_equal(dist, dist_ref)
    assert index.dtype == np.int64 and dist.dtype == np.float64


@exercises("classical.cu", "som_distances", "som_update")
@pytest.mark.parametrize("backend", BACKENDS)
@both_dtypes
@given(metric=st.integers(0, 3), kind=st.sampled_from(["gaussian", "bubble", "winner"]),
       grid=st.tuples(st.integers(1, 4), st.integers(1, 4)), d=st.integers(1, 6),
       n=st.integers(1, 20), seed=st.integers(0, 2 ** 16), launch=LAUNCHES, order=ORDERS)
def test_cuda_som_epoch_equals_reference(backend, dtype, metric, kind, grid, d, n, seed, launch,
                                         order):
    """The same winners; the same codebook bit for bit, except that the Gaussian
    neighbourhood's exp may round the learning rate one ulp apart (then within a few eps per
    step). Fewer than 8 features: NumPy then adds them one after another too, so the
    distances are equal and no near-tie can split the winners."""
    rng = rng_for(seed)
    X = rng.random((n, d)).astype(dtype)
    W0 = rng.random((grid[0] * grid[1], d)).astype(dtype)
    pos = S.grid_positions(*grid)
    grid_d2 = ((pos[:, None] - pos[None]) ** 2).sum(-1)
    steps = np.arange(n)
    alphas = 0.5 * np.exp(-steps / 10.0)
    sigmas = np.zeros(n) if kind == "winner" else 1.5 * np.exp(-steps / 10.0)
    code = S.NEIGHBOURHOODS.index("bubble" if kind == "bubble" else "gaussian")
    order_ = rng.permutation(n)
    W_ref = W0.copy()
    winners_ref = S.som_online_epoch_reference(X, order_, W_ref, grid_d2, alphas, sigmas, metric,
                                               code)
    W = on(backend, W0.copy())
    with running(backend, launch, order):
        winners = host(cuda.som_online_epoch(on(backend, X), order_, W, grid_d2, alphas, sigmas,
                                             metric, code))
    np.testing.assert_array_equal(winners, winners_ref)
    if kind == "gaussian":
        atol = 4 * n * np.finfo(dtype).eps
        np.testing.assert_allclose(host(W), W_ref, rtol=0, atol=atol)
    else:
        np.testing.assert_array_equal(host(W), W_ref)


@exercises("classical.cu", "sigmoid_bias", "sigmoid_bernoulli")
@pytest.mark.parametrize("backend", BACKENDS)
@both_dtypes
@given(n=st.integers(1, 9), m=st.integers(1, 9), seed=st.integers(0, 2 ** 16), launch=LAUNCHES,
       order=ORDERS)
def test_cuda_rbm_sampling_equals_reference(backend, dtype, n, m, seed, launch, order):
    """Probabilities within EXP_ULP of the reference; the draw exactly 1[u < p] of the
    kernel's p, hence the reference's draw wherever u is not within those ulps of p."""
    rng = rng_for(seed)
    pre = rng.uniform(-20, 20, (n, m)).astype(dtype)
    bias = rng.standard_normal(m).astype(dtype)
    u = rng.random((n, m), dtype=np.float32)
    with running(backend, launch, order):
        probs = host(cuda.sigmoid_bias(*on(backend, pre, bias)))
        drawn_p, sample = host(*cuda.sigmoid_bernoulli(*on(backend, pre, bias, u)))
    p_ref, s_ref = R.bernoulli_reference(pre, bias, u)
    np.testing.assert_array_max_ulp(probs, p_ref, EXP_ULP)
    np.testing.assert_array_equal(drawn_p, probs)
    np.testing.assert_array_equal(sample, (u < drawn_p).astype(dtype))
    clear = np.abs(u - p_ref) > EXP_ULP * np.spacing(p_ref)
    np.testing.assert_array_equal(sample[clear], s_ref[clear])


# ====================================================================== the library's wiring
def _ops():
    """Ops whose CUDA path calls the kernels: (function, input arrays, kernels it launches)."""
    r = rng_for(7)
    x = r.standard_normal((4, 3, 2)) * 2 + 1
    return {
        "batch_norm": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                       [x, r.standard_normal(3), r.standard_normal(3)],
                       ["batch_norm_normalize", "batch_norm_backward_input"]),
        "batch_norm_plain": (lambda x: F.batch_norm(x, None, None, training=True),
                             [r.standard_normal((5, 2))], ["batch_norm_normalize"]),
        "leaky_relu": (lambda x: mg.leaky_relu(x, 0.2), [x],
                       ["leaky_relu_forward", "leaky_relu_backward"]),
        "bce_mean": (lambda x, t: F.binary_cross_entropy_with_logits(x, t), [x, r.random(x.shape)],
                     ["bce_with_logits_forward", "bce_with_logits_backward"]),
        "bce_none": (lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction="none"),
                     [x, r.random(x.shape)], ["bce_with_logits_forward"]),
        "reparameterize": (reparameterize, [r.standard_normal((3, 4)) for _ in range(3)],
                           ["reparameterize_forward", "reparameterize_backward"]),
    }


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", list(_ops()))
def test_ops_on_the_cuda_path_pass_gradcheck_and_match_the_cpu(backend, op):
    """The kernels as the library calls them (float64): the first derivatives come from the
    fused backward kernels, the second ones (gradgradcheck) from the Tensor-op backward the
    op keeps for create_graph; forward and gradients equal the CPU path's to rounding."""
    fn, arrays, kernels = _ops()[op]

    def tensors(dev):
        return [mg.tensor(a, dtype="float64", device=dev, requires_grad=True) for a in arrays]

    def forward_backward(dev):
        ts = tensors(dev)
        y = fn(*ts)
        y.backward(mg.ones_like(y))
        return [y.numpy()] + [t.grad.numpy() for t in ts]

    before = emulation.launched.copy()
    with running(backend):
        assert mg.gradcheck(fn, tensors(device(backend)), **TOL)
        assert mg.gradgradcheck(fn, tensors(device(backend)), **TOL)
        fast = forward_backward(device(backend))
    if backend == "emulated":
        ran = {re.sub(r"_f(32|64)$", "", name) for name in emulation.launched - before}
        assert set(kernels) <= ran, f"{op} did not take the CUDA path: ran {sorted(ran)}"
    for a, b in zip(fast, forward_backward("cpu")):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_classical_models_on_the_cuda_path_match_the_cpu(backend):
    """K-means, SOM (online and batch) and an RBM fitted on the CUDA path and on the NumPy
    references: the same fits (the RBM's uniforms come from the same seeded generator)."""
    rng = rng_for(3)
    centres = np.array([[0, 0, 0], [4, 4, 0], [0, 4, 4]], np.float32)
    X = (centres[rng.integers(0, 3, 60)] + 0.3 * rng.standard_normal((60, 3))).astype(np.float32)
    V = (rng.random((32, 6)) < 0.4).astype(np.float32)

    def fits(X, V):
        km = KMeans(3, random_state=0).fit(X)
        maps = [SOM(3, 3, mode=mode, n_epochs=2, random_state=0).fit(X)
                for mode in ("online", "batch")]
        rbm = RBM(4, batch_size=16, n_epochs=2, random_state=0).fit(V)
        return [km.labels_, km.cluster_centers_] + [m.codebook_ for m in maps] + [rbm.W, rbm.b]

    with running(backend):
        fast = [host(a) for a in fits(*on(backend, X, V))]
    with kernels_mode("reference"):
        slow = fits(X, V)
    np.testing.assert_array_equal(fast[0], slow[0])
    for a, b in zip(fast[1:], slow[1:]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


# ====================================================================== the emulator itself
@needs_compiler
def test_emulated_tests_cover_every_kernel():
    """Every __global__ function of every source is declared by some test (``exercises``),
    which checks under emulation that it really launched."""
    importlib.import_module("test_conv")     # conv.cu's tests live there
    found = {(source, re.sub(r"_f(32|64)$", "", name)) for source in SOURCES
             for name in emulation.kernel_names(source)}
    assert found == COVERED, (f"kernels without a test: {sorted(found - COVERED)}; "
                              f"declared but absent: {sorted(COVERED - found)}")


def test_emulate_mode_routes_float_arrays_to_the_cuda_kernels():
    x = np.zeros(3)
    with kernels_mode("emulate"):
        assert cuda_for(x) is cuda and cuda_for(x.astype(np.float32)) is cuda
        assert cuda_for(np.zeros(3, np.int64)) is None       # kernels exist for float data only
    with kernels_mode("fast"):
        assert cuda_for(x) is None                           # NumPy arrays take Numba
    with kernels_mode("reference"):
        assert cuda_for(x) is None


@needs_compiler
def test_emulated_launch_checks_arguments_like_a_strict_cupy():
    kernel = emulation.load("elementwise.cu").get_function("leaky_relu_forward_f32")
    assert kernel.params == ["const f*", "f*", "f", "q"]
    x, y = np.arange(-2, 3, dtype=np.float32), np.zeros(5, np.float32)
    kernel((2,), (2,), (x, y, np.float32(0.5), 5))    # a Python int is a long long, as in CuPy
    np.testing.assert_array_equal(y, [-1, -0.5, 0, 1, 2])
    for args, message in [((x, y, np.float32(0.5)), "takes 4 arguments"),
                          ((x.astype(np.float64), y, np.float32(0.5), 5), "needs float32 data"),
                          ((x, y, 0.5, 5), "needs a float32 scalar, got float64"),
                          ((x, y, np.float32(0.5), np.int32(5)), "needs a int64 scalar"),
                          ((x[::2], y[:3], np.float32(0.5), 3), "not C-contiguous"),
                          ((x, x, np.float32(0.5), 5), None)]:
        if message is None:   # the same array twice is one buffer (an in-place launch)
            kernel((1,), (1,), args)
            continue
        with pytest.raises(TypeError, match=message):
            kernel((1,), (1,), args)


def _mutant(tmp_path, source, old, new):
    """``source`` with ``old`` replaced by ``new``, written beside the tests' temp files."""
    text = open(os.path.join(KERNELS_DIR, source)).read()
    assert text.count(old) == 1, f"the planted change must match one place of {source}"
    path = tmp_path / source
    path.write_text(text.replace(old, new))
    return emulation.load(str(path))


@needs_compiler
def test_emulated_launch_catches_writes_out_of_bounds_and_into_inputs(tmp_path):
    bad = _mutant(tmp_path, "elementwise.cu", "{ y[k] = x[k] > 0", "{ y[k + 1] = x[k] > 0")
    x = np.ones(6, np.float32)
    with pytest.raises(RuntimeError, match=r"argument 1 .* wrote past its last element"):
        bad.get_function("leaky_relu_forward_f32")((1,), (8,), (x, np.empty_like(x),
                                                               np.float32(0.1), 6))
    (tmp_path / "sneaky.cu").write_text(
        '#include "common.cuh"\nextern "C" __global__ void sneaky(const float* x, '
        'long long total) { GRID_STRIDE_LOOP(k, total) { const_cast<float*>(x)[k] = 0; } }\n')
    with pytest.raises(RuntimeError, match=r"argument 0 .* wrote into a const argument"):
        emulation.load(str(tmp_path / "sneaky.cu")).get_function("sneaky")((1,), (1,), (x, 6))


@needs_compiler
def test_emulation_refuses_shared_memory_and_barriers(tmp_path):
    """Avoided by design (see cuda_host.h): such a kernel must not compile under emulation."""
    (tmp_path / "barrier.cu").write_text(
        '#include "common.cuh"\nextern "C" __global__ void reduce(float* x, long long total) {\n'
        '    __shared__ float partial[256];\n    __syncthreads();\n}\n')
    with pytest.raises(RuntimeError) as caught:
        emulation.load(str(tmp_path / "barrier.cu"))
    assert "__shared__ memory is not emulated" in str(caught.value)
    assert "__syncthreads() is not emulated" in str(caught.value)


# A planted indexing bug in a kernel must fail the test of that kernel. Each mutation is a
# plausible slip; the check is the very function the kernel's test runs.
PLANTED = {
    "col2im: window row and column swapped": (
        "conv.cu", "(long long)oh * oW + ow", "(long long)ow * oH + oh"),
    "batch norm: channel value read at n instead of l": (
        "norm.cu", "return (k / L * C + c) * L + k % L;", "return (k / L * C + c) * L + k / L;"),
}


@needs_compiler
@pytest.mark.parametrize("bug", list(PLANTED))
def test_emulated_planted_indexing_bug_fails_the_kernel_test(bug, tmp_path, monkeypatch):
    source, old, new = PLANTED[bug]
    mutant = _mutant(tmp_path, source, old, new)
    conv_test = importlib.import_module("test_conv")
    case = (2, 2, 1, (5, 4), (2, 2), (1, 1), (0, 0), (1, 1))   # 4 x 3 windows: oH != oW

    def check():
        if source == "conv.cu":
            conv_test.check_im2col_col2im(cuda, "emulated", np.dtype(np.float64), case)
        else:
            check_batch_norm("emulated", np.dtype(np.float64), (2, 3, 4), 3, True, 0)

    with running("emulated"):
        check()                                         # the real kernel passes
        real = cuda.module
        monkeypatch.setattr(cuda, "module", lambda s: mutant if s == source else real(s))
        with pytest.raises(AssertionError, match="Arrays are not equal"):
            check()                                     # the mutant fails


# ====================================================================== nvcc
@pytest.mark.parametrize("source", SOURCES)
def test_cuda_sources_compile_with_nvcc(source, tmp_path):
    """What CuPy will compile -- the source with its headers pasted in, CuPy's options -- and
    its entry points are exactly the kernels the emulation runs."""
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc not installed: the CUDA sources are not compiled")
    (tmp_path / "k.cu").write_text(cuda.source_text(source))
    out = subprocess.run([nvcc, "--ptx", *cuda.NVRTC_OPTIONS, "-o", str(tmp_path / "k.ptx"),
                          str(tmp_path / "k.cu")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    entries = re.findall(r"\.entry\s+(\w+)\(", (tmp_path / "k.ptx").read_text())
    if emulation.compiler() is not None:
        assert sorted(entries) == sorted(emulation.kernel_names(source))
    assert entries
