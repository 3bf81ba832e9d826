"""Numba CPU kernels for convolution, pooling, batch normalisation, the (leaky) ReLU,
sigmoid-BCE and the Adam update.

Each function here does exactly what its plain NumPy reference in
``minigen/ops/conv.py`` does (the tests check ``np.array_equal``), only without the
temporaries: one pass over memory, parallel over independent pieces. The batch-norm
kernels (at the end) mirror ``kernels/norm.cu`` and its references in
``minigen/nn/functional.py``; their sums run in float64, so they agree with the float32
references to rounding, not bit for bit (the elementwise parts are bit-equal).

Which pieces: ``col2im`` and the max-pool backward *accumulate* into an image, and two
threads adding into one pixel at once would race. Every pixel belongs to exactly one
(sample, channel) plane, so giving each thread whole planes makes the sums race-free and
keeps each pixel's additions in the reference's order (so the results are bit-equal).
``im2col`` only copies, a row ``(c, i, j)`` of the columns at a time.

Layouts (shared with the reference and the CUDA kernels):

* image    ``(N, C, H, W)``
* columns  ``(C, kH, kW, N, oH, oW)`` -- reshaped to ``(C*kH*kW, N*oH*oW)`` it is the right
  operand of the single GEMM ``weight(O, C*kH*kW) @ columns``.
* argmax   ``(N, C, oH, oW)`` int64, the flat index ``h * W + w`` inside the input plane (as
  PyTorch's ``return_indices``).

Only float32 and float64 arrays reach these functions and the integer arguments are always
Python ints, so each kernel compiles at most twice, and as many times for its serial twin
(``_serial``: what small jobs run); ``cache=True`` keeps the machine code on disk between runs.
"""
import types

import numba
import numpy as np

from . import reuse

_JIT = dict(parallel=True, cache=True, nogil=True)

# The loops below are plain scalar loops on purpose: array expressions inside a prange body
# become nested parallel loops, which Numba takes several seconds to compile.

# Sums (per channel: batch norm, a convolution's bias) run in float64, and
# ``fastmath={"reassoc"}`` lets LLVM split them into vector lanes (without it every addition
# waits for the previous one); the order is then fixed by the machine's vector width, still the
# same on every run. Only the sums carry it: the elementwise kernels do the references' float
# roundings in their order.
_SUMS = dict(_JIT, fastmath={"reassoc"})

# Kernels that divide floats: NumPy's error model, where x / 0 is inf or NaN as in the
# references, instead of Numba's default (Python's), which tests every divisor for zero to
# raise ZeroDivisionError -- a branch per element that keeps LLVM from vectorising the loop.
# Adam's update over 313,600 float32 weights: 850 us with the test, 180 us without (same bits).
_DIVIDES = dict(_JIT, error_model="numpy")


@numba.njit(cache=True)
def _tap_offsets(kH, kW, sH, sW, pH, pW, dH, dW, oH, oW, H, W):
    """(kH, kW, oH*oW): the pixel that tap (i, j) of window (oh, ow) reads, as the offset
    h*W + w in its (H, W) plane, or -1 where it lies in the zero padding. The same for every
    (sample, channel) plane, so im2col and col2im look it up instead of testing bounds per
    entry."""
    taps = np.empty((kH, kW, oH * oW), dtype=np.int64)
    for i in range(kH):
        for j in range(kW):
            for oh in range(oH):
                for ow in range(oW):
                    h, w = oh * sH + i * dH - pH, ow * sW + j * dW - pW
                    inside = 0 <= h < H and 0 <= w < W
                    taps[i, j, oh * oW + ow] = h * W + w if inside else -1
    return taps


# im2col and col2im walk each (C, kH, kW) row of the columns with one flat loop over its
# N * oH*oW entries, reading the tap table, on (N, C, H*W) planes: 3.4x faster than a loop per
# window row with a bounds test per entry (DCGAN's 64 x 32 x 14 x 14 input: 0.51 ms instead of
# 1.75; col2im 0.82 instead of 1.64; one thread).
@numba.njit(**_JIT)
def _im2col(x, cols, sH, sW, pH, pW, dH, dW, oH, oW):
    N, C, H, W = x.shape
    kH, kW = cols.shape[1:3]
    L = oH * oW
    planes = x.reshape(N, C, H * W)
    taps = _tap_offsets(kH, kW, sH, sW, pH, pW, dH, dW, oH, oW, H, W)
    for row in numba.prange(C * kH * kW):
        c, i, j = row // (kH * kW), row // kW % kH, row % kW
        for n in range(N):
            for k in range(L):
                t = taps[i, j, k]
                cols[c, i, j, n, k] = planes[n, c, t] if t >= 0 else 0  # -1: the padding


# col2im's unit of work: one channel of this many samples
COL2IM_SAMPLES = 16


@numba.njit(**_JIT)
def _col2im(cols, image, sH, sW, pH, pW, dH, dW):
    C, kH, kW, N, oH, oW = cols.shape
    H, W = image.shape[2:]
    L = oH * oW
    rows = cols.reshape(C, kH, kW, N, L)
    taps = _tap_offsets(kH, kW, sH, sW, pH, pW, dH, dW, oH, oW, H, W)
    x = image.reshape(N, C, H * W)  # (N, C, H, W), contiguous: overwritten
    blocks = (N + COL2IM_SAMPLES - 1) // COL2IM_SAMPLES
    # one channel of COL2IM_SAMPLES samples per step: it reads runs of COL2IM_SAMPLES*oH*oW
    # values from each row (c, i, j) of the (C*kH*kW, N*oH*oW) matrix (one plane at a time
    # read runs of oH*oW, and took up to twice as long)
    for piece in numba.prange(C * blocks):
        c, n0 = piece // blocks, piece % blocks * COL2IM_SAMPLES
        for n in range(n0, min(N, n0 + COL2IM_SAMPLES)):  # zeroed here, then kept in cache
            for k in range(H * W):
                x[n, c, k] = 0
        # kernel taps outermost: every pixel receives its terms in (i, j) order, as in the
        # reference's loop, so the float sums agree bit for bit
        for i in range(kH):
            for j in range(kW):
                for n in range(n0, min(N, n0 + COL2IM_SAMPLES)):
                    for k in range(L):
                        t = taps[i, j, k]
                        if t >= 0:  # entries over the padding are dropped
                            x[n, c, t] += rows[c, i, j, n, k]
    return image


@numba.njit(**_JIT)
def _max_pool_forward(x, kH, kW, sH, sW, pH, pW, oH, oW):
    N, C, H, W = x.shape
    out = np.empty((N, C, oH, oW), dtype=x.dtype)
    arg = np.empty((N, C, oH, oW), dtype=np.int64)
    for plane in numba.prange(N * C):
        n, c = plane // C, plane % C
        for oh in range(oH):
            h0 = oh * sH - pH
            h_lo, h_hi = max(h0, 0), min(h0 + kH, H)
            for ow in range(oW):
                w0 = ow * sW - pW
                w_lo, w_hi = max(w0, 0), min(w0 + kW, W)
                # start from the first real pixel (padding is never chosen); then the first
                # strictly larger value wins, and the first NaN beats everything -- the
                # rule of np.argmax that the reference uses. Written as selects, not an
                # ``if``: on real data "is v larger?" is a coin toss that a branch predictor
                # loses half the time (this halves the kernel's time).
                best, best_at = x[n, c, h_lo, w_lo], h_lo * W + w_lo
                for h in range(h_lo, h_hi):
                    for w in range(w_lo, w_hi):
                        v = x[n, c, h, w]
                        take = (v > best) | ((v != v) & (best == best))  # v != v: v is NaN
                        best = v if take else best
                        best_at = h * W + w if take else best_at
                out[n, c, oh, ow] = best
                arg[n, c, oh, ow] = best_at
    return out, arg


@numba.njit(**_JIT)
def _max_pool_backward(g, arg, H, W):
    N, C, oH, oW = g.shape
    gx = np.empty((N, C, H * W), dtype=g.dtype)
    for plane in numba.prange(N * C):
        n, c = plane // C, plane % C
        for k in range(H * W):
            gx[n, c, k] = 0
        for oh in range(oH):
            for ow in range(oW):
                gx[n, c, arg[n, c, oh, ow]] += g[n, c, oh, ow]
    return gx


@numba.njit(**_JIT)
def _swap01(a, bias, add):
    A, B, L = a.shape
    out = np.empty((B, A, L), dtype=a.dtype)
    for row in numba.prange(A * B):
        i, j = row // B, row % B
        b = bias[i]
        for k in range(L):
            out[j, i, k] = a[i, j, k] + b if add else a[i, j, k]
    return out


@numba.njit(**_SUMS)
def _swap01_sums(a):
    A, B, L = a.shape
    out = np.empty((B, A, L), dtype=a.dtype)
    sums = np.empty(B, dtype=np.float64)
    for j in numba.prange(B):  # a whole row of the result per step: its sum has one owner
        total = 0.0
        for i in range(A):
            for k in range(L):
                v = a[i, j, k]
                out[j, i, k] = v
                total += np.float64(v)
        sums[j] = total
    return out, sums


# ---------------------------------------------------------------- elementwise (flat arrays)
@numba.njit(**_JIT)
def _relu_forward(x, zero):
    y = np.empty_like(x)
    for k in numba.prange(x.size):
        v = x[k]
        y[k] = v if v > 0 or v != v else zero  # np.maximum(x, 0): NaN stays, -0.0 gives +0.0
    return y


@numba.njit(**_JIT)
def _leaky_relu_forward(x, slope):
    y = np.empty_like(x)
    for k in numba.prange(x.size):
        v = x[k]
        y[k] = v if v > 0 else v * slope  # a NaN is not > 0: NaN * slope stays NaN
    return y


@numba.njit(**_JIT)
def _leaky_relu_backward(g, x, slope):
    gx = np.empty_like(g)
    for k in numba.prange(g.size):
        gx[k] = g[k] if x[k] > 0 else g[k] * slope  # g * 1 is g: the reference's bits
    return gx


@numba.njit(**_DIVIDES)
def _adam_update(x, g, m, v, one_minus_beta1, beta2, one_minus_beta2, bc2_sqrt, eps, step):
    # Adam._update's eleven array passes as one, each rounding in the same order (the scalars
    # arrive in x's dtype, as NumPy casts Python floats), so the result is bit-equal
    for k in numba.prange(x.size):
        gk = g[k]
        m[k] += (gk - m[k]) * one_minus_beta1
        v[k] = v[k] * beta2 + gk * one_minus_beta2 * gk
        x[k] -= m[k] / (np.sqrt(v[k]) / bc2_sqrt + eps) * step


# (sigmoid-BCE's elementwise forward stays NumPy's: a Numba loop calls the C library's exp and
# log1p one number at a time, slower than NumPy's vectorised ones; its summed forward, at the
# end of this file, needs no log1p. The backward has none, and its "1 or e" -- np.where on a
# random sign -- is a select here, not a mispredicted branch)
@numba.njit(**_DIVIDES)
def _bce_with_logits_backward(g, g_stride, x, t, e, one):
    gx = np.empty_like(x)
    for k in numba.prange(x.size):
        s = (one if x[k] >= 0 else e[k]) / (one + e[k])  # sigmoid(x) from e = exp(-|x|)
        gx[k] = g[k * g_stride] * (s - t[k])
    return gx


# ---------------------------------------------------------------- a convolution's bias, (N, C, L)
@numba.njit(**_JIT)
def _channel_bias(x, b):
    N, C, L = x.shape
    y = np.empty_like(x)
    for plane in numba.prange(N * C):
        n, c = plane // C, plane % C
        bc = b[c]
        for k in range(L):
            y[n, c, k] = x[n, c, k] + bc
    return y


# A plain (not parallel) function, called inside the kernels' prange loops. A kernel must not
# call another *parallel* kernel: its serial twin (``_serial`` below) would still run the
# callee's parallel loop. _channel_moments once called _channel_sum that way, so every batch
# norm woke Numba's worker threads, which then spun on the core OpenBLAS needed (with 2
# threads: 28 ms of CPU per DCGAN step; tests/test_cpu_kernels.py checks no kernel does).
@numba.njit(cache=True, nogil=True, fastmath={"reassoc"})
def _sum_of_channel(g, c):
    total = 0.0
    for n in range(g.shape[0]):
        for k in range(g.shape[2]):
            total += np.float64(g[n, c, k])
    return total


@numba.njit(**_SUMS)
def _channel_sum(g):
    C = g.shape[1]
    out = np.empty(C, dtype=np.float64)
    for c in numba.prange(C):
        out[c] = _sum_of_channel(g, c)
    return out


# ---------------------------------------------------------------- the interface
# Waking the other threads and waiting for them at the end costs microseconds on an idle
# machine but milliseconds on a busy one (one thread that is not scheduled holds up the rest),
# so small jobs -- gradient checks, tests, tiny layers -- run on the calling thread alone, and
# with one thread every kernel does. The bar was a million elements while NumPy's BLAS ran
# the products on a pool of its own: every parallel kernel then woke a second pool, whose
# threads spun on the cores the products' threads wanted. Since the large products run on
# Numba's threads too (kernels/blas.py), the threads a kernel needs are the ones the last
# product left spinning, and far smaller kernels gain. Medians of one step in ms, 2 threads,
# each setting in turn on every call, on the 2-vCPU VM of the benchmarks (load about 2):
#
#     step                       two pools, 2**20   one pool: 2**20   2**18   2**16
#     DCGAN NS iteration, b. 64       115.5              97.8          85.6    78.1
#     conv VAE, batch 128              83.2              72.6          67.6    64.4
#     MLP VAE, batch 128               11.9               8.2           7.3     7.0
#     MLP, batch 512                   11.3               7.3           7.0     6.6
#
# (On a machine whose cores are busy with other jobs, one thread is faster: see threads.py.)
PARALLEL_MIN_ELEMENTS = 1 << 16


def _run(kernel, n_elements, *args):
    if n_elements >= PARALLEL_MIN_ELEMENTS and numba.get_num_threads() > 1:
        return kernel(*args)
    return _serial(kernel)(*args)


# Below the bar a kernel runs as its serial twin: the same loops compiled without
# ``parallel`` (a prange is then a plain range), on the calling thread. Narrowing the parallel
# version to one thread instead (numba.set_num_threads(1) around the call, as this did before)
# costs more than the work: just asking Numba for its thread count in the middle of an MLP
# training step (batch 512, one thread) took 30 us, and the ReLU kernel after it 160 us; the
# twin took 65 us there (20 us when called again at once, the data in cache).
_SERIAL = {}


def _serial(kernel):
    twin = _SERIAL.get(kernel)
    if twin is None:
        fn = kernel.py_func
        # a copy of the function under its own name, so that the on-disk cache (keyed by
        # the function's name, not by the compile options) keeps the two apart
        copy = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_serial",
                                  fn.__defaults__, fn.__closure__)
        copy.__qualname__ = fn.__qualname__ + "_serial"
        options = {k: v for k, v in kernel.targetoptions.items() if k != "nopython"}
        twin = _SERIAL[kernel] = numba.njit(**dict(options, parallel=False, cache=True))(copy)
    return twin


def _c(a):
    return np.ascontiguousarray(a)


def _size(*dims):
    n = 1
    for d in dims:
        n *= d
    return n


def im2col(x, kernel, stride, padding, dilation, out_size):
    """(N, C, H, W) -> columns (C, kH, kW, N, oH, oW); zero where a window meets the padding.
    The columns are made in an array kept from an earlier step when one is free (reuse.py:
    a fresh one of megabytes costs page faults)."""
    N, C = x.shape[:2]
    cols = reuse.take((C, *kernel, N, out_size[0] * out_size[1]), x.dtype)
    _run(_im2col, cols.size, _c(x), cols, *stride, *padding, *dilation, *out_size)
    return cols.reshape((C, *kernel, N, *out_size))


def col2im(cols, image_size, kernel, stride, padding, dilation, out=None):
    """The adjoint of ``im2col``: every column entry is added back onto the pixel it came from.
    ``out``: a contiguous (N, C, H, W) array to write the image into (its values are not
    read), e.g. a block of samples of a bigger image; by default a new one."""
    C, N = cols.shape[0], cols.shape[3]
    if out is None:
        out = np.empty((N, C, *image_size), dtype=cols.dtype)
    return _run(_col2im, cols.size, _c(cols), out, *stride, *padding, *dilation)


def swap01(a, bias=None):
    """(A, B, L) -> a new contiguous (B, A, L): the conv GEMMs' (channels, batch, pixels)
    layout to the images' (batch, channels, pixels) and back; with ``bias`` (A,), plus
    bias[i] on every entry that comes from a[i] (a convolution's bias, added on the way).
    NumPy's copy runs on one thread; this one on all of them."""
    add = bias is not None  # without a bias no addition at all: x + 0 turns -0.0 into +0.0
    b = _per_channel(bias, a.shape[0], a.dtype) if add else np.zeros(a.shape[0], a.dtype)
    return _run(_swap01, a.size, a, b, add)


def swap01_sums(a):
    """swap01(a), and the sum over A and L for each b in float64, returned in a's dtype (B,):
    a conv2d's output gradient laid out for the GEMMs, and its bias gradient, in one pass."""
    out, sums = _run(_swap01_sums, a.size, a)
    return out, sums.astype(a.dtype)


def max_pool2d_forward(x, kernel, stride, padding, out_size):
    """Window maxima and where they are (flat index in the input plane)."""
    work = _size(*x.shape[:2], *kernel, *out_size)
    return _run(_max_pool_forward, work, _c(x), *kernel, *stride, *padding, *out_size)


def max_pool2d_backward(g, argmax, image_size, kernel=None, stride=None, padding=None):
    """Each output gradient added onto the input pixel that won its window. (The window
    geometry is unused here -- a scatter needs only ``argmax`` -- but the CUDA kernel, a
    gather, needs it.)"""
    N, C = g.shape[:2]
    gx = _run(_max_pool_backward, g.size + _size(N, C, *image_size), _c(g), _c(argmax),
              *image_size)
    return gx.reshape(N, C, *image_size)


# ---------------------------------------------------------------- batch normalisation
# Layout (N, C, L) as in kernels/norm.cu: channel c holds the N * L values x[:, c, :]. Every
# channel is one thread's work (prange over C), so each per-channel sum is taken by one thread
# in one fixed order -- the same bits for any number of threads.
# The sums run in float64 (_SUMS, at the top).


@numba.njit(**_SUMS)
def _channel_moments(x):
    N, C, L = x.shape
    mean = np.empty(C, dtype=np.float64)
    var = np.empty(C, dtype=np.float64)
    # two-pass, as _moments: E[x^2] - mean^2 cancels catastrophically when |mean| >> std
    for c in numba.prange(C):
        m = _sum_of_channel(x, c) / (N * L)
        mean[c], squares = m, 0.0
        for n in range(N):
            for k in range(L):
                d = np.float64(x[n, c, k]) - m
                squares += d * d
        var[c] = squares / (N * L)
    return mean, var


@numba.njit(**_JIT)
def _batch_norm_normalize(x, mean, inv_std, weight, bias, affine):
    N, C, L = x.shape
    xhat = np.empty_like(x)
    y = np.empty_like(x) if affine else xhat
    for plane in numba.prange(N * C):
        n, c = plane // C, plane % C
        m, s, w, b = mean[c], inv_std[c], weight[c], bias[c]
        for k in range(L):
            h = (x[n, c, k] - m) * s        # Normalize.forward: xhat = x - mean; xhat *= inv_std
            xhat[n, c, k] = h
            if affine:
                y[n, c, k] = h * w + b      # y = xhat * weight; y += bias
    return xhat, y


@numba.njit(**_SUMS)
def _batch_norm_grad_sums(g, xhat):
    N, C, L = g.shape
    sum_g = np.empty(C, dtype=np.float64)
    sum_gx = np.empty(C, dtype=np.float64)
    for c in numba.prange(C):
        a, b = 0.0, 0.0
        for n in range(N):
            for k in range(L):
                gk = np.float64(g[n, c, k])
                a += gk
                b += gk * np.float64(xhat[n, c, k])
        sum_g[c], sum_gx[c] = a, b
    return sum_g, sum_gx


@numba.njit(**_JIT)
def _batch_norm_backward_input(g, xhat, inv_std, weight, mean_gh, mean_ghx, affine):
    N, C, L = g.shape
    gx = np.empty_like(g)
    for plane in numba.prange(N * C):
        n, c = plane // C, plane % C
        s, w, mg, mgx = inv_std[c], weight[c], mean_gh[c], mean_ghx[c]
        for k in range(L):
            gh = g[n, c, k] * w if affine else g[n, c, k]
            gx[n, c, k] = s * (gh - mg - xhat[n, c, k] * mgx)
    return gx


def _channels(x):
    """x (N, C, ...) as a contiguous (N, C, L) array."""
    return _c(x).reshape(x.shape[0], x.shape[1], -1)


def _per_channel(a, C, dtype):
    return np.ones(C, dtype) if a is None else _c(a).reshape(C).astype(dtype, copy=False)


def batch_norm_stats(x):
    """Per-channel mean and biased variance of x (N, C, ...) over every dim but 1, two-pass
    in float64, returned in x's dtype, shape (C,) -- ``_moments`` of ``nn/functional.py``."""
    mean, var = _run(_channel_moments, x.size, _channels(x))
    return mean.astype(x.dtype), var.astype(x.dtype)


def batch_norm_normalize(x, mean, inv_std, weight=None, bias=None):
    """xhat = (x - mean) * inv_std and y = xhat * weight + bias (None without weight), as
    ``Normalize.forward``; mean, inv_std, weight, bias hold one number per channel."""
    C = x.shape[1]
    affine = weight is not None
    xhat, y = _run(_batch_norm_normalize, x.size, _channels(x), _per_channel(mean, C, x.dtype),
                   _per_channel(inv_std, C, x.dtype), _per_channel(weight, C, x.dtype),
                   np.zeros(C, x.dtype) if bias is None else _per_channel(bias, C, x.dtype),
                   affine)
    return xhat.reshape(x.shape), (y.reshape(x.shape) if affine else None)


def batch_norm_backward(g, xhat, inv_std, weight=None):
    """(dx, dweight, dbias) of batch norm in training mode, as ``Normalize.backward``
    (dweight and dbias have shape (C,); both None without weight)."""
    C = g.shape[1]
    count = g.size // C
    g3, xhat3 = _channels(g), _channels(xhat)
    sum_g, sum_gx = _run(_batch_norm_grad_sums, g.size, g3, xhat3)
    w = 1.0 if weight is None else _per_channel(weight, C, np.float64)
    # the means of gh = g * weight and of gh * xhat, as kernels/cuda.py's batch_norm_backward
    mean_gh, mean_ghx = ((w * s / count).astype(g.dtype) for s in (sum_g, sum_gx))
    gx = _run(_batch_norm_backward_input, g.size, g3, xhat3, _per_channel(inv_std, C, g.dtype),
              _per_channel(weight, C, g.dtype), mean_gh, mean_ghx, weight is not None)
    gx = gx.reshape(g.shape)
    if weight is None:
        return gx, None, None
    return gx, sum_gx.astype(g.dtype), sum_g.astype(g.dtype)


def _flat(a, dtype=None):
    return _c(a).reshape(-1) if dtype is None else _c(a).astype(dtype, copy=False).reshape(-1)


def relu(x):
    """max(x, 0) (``ReLU.forward``, NumPy's ``maximum``), in one pass on every thread."""
    return _run(_relu_forward, x.size, _flat(x), x.dtype.type(0)).reshape(x.shape)


def leaky_relu(x, slope):
    """x for x > 0, slope * x otherwise (``LeakyReLU.forward``), in one pass."""
    return _run(_leaky_relu_forward, x.size, _flat(x), x.dtype.type(slope)).reshape(x.shape)


def leaky_relu_backward(g, x, slope):
    """g * (1 for x > 0, slope otherwise) (``LeakyReLUBackward``; slope 0: ReLU's), in one pass."""
    return _run(_leaky_relu_backward, g.size, _flat(g), _flat(x, g.dtype),
                g.dtype.type(slope)).reshape(g.shape)


def adam_update(x, g, m, v, beta1, beta2, eps, bias_correction1, bias_correction2_sqrt, lr):
    """One Adam step in place on x, m, v (contiguous arrays of one dtype; g of any layout):
    ``Adam._update`` without amsgrad, in one pass."""
    t = x.dtype.type
    _run(_adam_update, x.size, x.reshape(-1), _flat(g, x.dtype), m.reshape(-1), v.reshape(-1),
         t(1 - beta1), t(beta2), t(1 - beta2), t(bias_correction2_sqrt), t(eps),
         t(lr / bias_correction1))


def channel_bias(x, b):
    """x (N, C, ...) + b (C,) along dim 1, in one pass: a convolution's bias."""
    C = x.shape[1]
    return _run(_channel_bias, x.size, _channels(x), _per_channel(b, C, x.dtype)).reshape(x.shape)


def channel_sum(g):
    """The sum of g (N, C, ...) over every dim but 1, in float64, returned in g's dtype (C,):
    the gradient of a convolution's bias."""
    return _run(_channel_sum, g.size, _channels(g)).astype(g.dtype)


def bce_with_logits_backward(g, x, t, e):
    """g * (sigmoid(x) - t) from the saved e (``BCEWithLogits.backward``); g is one number or
    one per element."""
    g = _flat(g, x.dtype)
    return _run(_bce_with_logits_backward, x.size, g, 0 if g.size == 1 else 1, _flat(x),
                _flat(t, x.dtype), _flat(e), x.dtype.type(1)).reshape(x.shape)


# ---------------------------------------------------------------- sigmoid-BCE summed
# The VAE's reconstruction loss is one number, sum_k max(x_k, 0) - x_k t_k + log1p(e_k) with
# e = exp(-|x|) (``BCEWithLogits``). NumPy makes e (its exp is vectorised; a Numba loop calls
# the C library's, one number at a time), and this kernel adds up the rest in one pass without
# a log per element: a sum of logs is the log of a product. Each factor 1 + e_k lies in [1, 2],
# so a block of 64 of them multiplies to at most 2^64, inside even float32's range (2^128):
# one log per block, and the blocks' sums are added in float64, in block order (the same
# bits on any number of threads). 128 x 784 float32 logits, 2 threads, load 1.4-2.2: the NumPy
# reference (``BCEWithLogits.forward``) 811 us, e and this kernel 124-138 us, torch 118-125 us.
_LOG_BLOCK = 64


@numba.njit(**_SUMS)
def _bce_with_logits_sum(x, t, e, zero, one):
    n = x.size
    blocks = (n + _LOG_BLOCK - 1) // _LOG_BLOCK
    partial = np.empty(blocks, dtype=np.float64)
    for b in numba.prange(blocks):
        linear, product = zero, one  # in x's dtype: eight float32 lanes per instruction
        for k in range(b * _LOG_BLOCK, min(n, (b + 1) * _LOG_BLOCK)):
            v = x[k]
            linear += max(v, zero) - v * t[k]
            product *= one + e[k]
        partial[b] = np.float64(linear) + np.log(np.float64(product))
    total = 0.0
    for b in range(blocks):
        total += partial[b]
    return total


def bce_with_logits_sum(x, t, e):
    """The sum over every element of max(x, 0) - x t + log1p(e), e = exp(-|x|) given
    (``BCEWithLogits.forward`` with reduction 'sum'), summed in float64, returned in x's dtype."""
    zero, one = x.dtype.type(0), x.dtype.type(1)
    return x.dtype.type(_run(_bce_with_logits_sum, x.size, _flat(x), _flat(t, x.dtype), _flat(e),
                             zero, one))
