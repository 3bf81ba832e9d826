"""CUDA kernels: the CUDA C sources ``kernels/*.cu`` launched through CuPy's RawModule.

Every function takes and returns arrays of one backend: CuPy arrays on a GPU -- or NumPy
arrays under ``MINIGEN_KERNELS=emulate``, where the same sources, compiled for the CPU by g++,
run through ``emulation.py``. That is how the tests prove this file and the kernels without a
GPU. The conv functions have the names and results of ``cpu.py``'s; each of the others
replaces the NumPy reference its docstring names.

One launcher runs any kernel: every kernel ends in ``long long total``, its number of work
items, and loops over them with a grid stride (see ``common.cuh``), so one thread per item, in
blocks of THREADS threads and at most MAX_BLOCKS blocks, covers any size.
"""
import functools
import os
import re

import numpy as np

from ..backend import get_array_module
from . import emulating

_HERE = os.path.dirname(os.path.abspath(__file__))
_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}
# No fused multiply-add: a * b + c rounds twice, as in NumPy (and in the emulation's g++)
NVRTC_OPTIONS = ("--std=c++14", "--fmad=false")
THREADS = 256
MAX_BLOCKS = 65535


# ------------------------------------------------------------------ compiling and launching
def source_text(source):
    """The text of ``kernels/<source>`` with each ``#include "name.cuh"`` replaced by that file:
    one self-contained string, so CuPy's compile cache (keyed by the string) sees header edits."""
    path = os.path.join(_HERE, source)
    with open(path) as f:
        lines = f.readlines()
    for n, line in enumerate(lines):
        header = re.match(r'\s*#include\s+"(\w+\.cuh)"', line)
        if header:
            lines[n] = (f'#line 1 "{header[1]}"\n' + source_text(header[1])
                        + f'#line {n + 2} "{source}"\n')
    return "".join(lines)


@functools.lru_cache(maxsize=None)
def _compiled(source):
    import cupy
    return cupy.RawModule(code=source_text(source), options=NVRTC_OPTIONS)


def module(source):
    """``kernels/<source>`` compiled once per process: for the GPU by CuPy (which also keeps the
    binary on disk), or for the CPU by the emulation."""
    if emulating():
        from . import emulation
        return emulation.load(source)
    return _compiled(source)


def launch_shape(total):
    """(blocks, threads per block) for ``total`` work items."""
    return max(1, min(-(-total // THREADS), MAX_BLOCKS)), THREADS


def launch(source, name, dtype, total, *args):
    """Run kernel ``name`` of ``kernels/<source>`` over ``total`` work items.

    ``dtype`` picks the instantiation, ``<name>_f32`` or ``<name>_f64`` (None: a kernel with
    one form), and is the C type of Python float arguments (the kernel's ``T``); Python ints
    are passed as C ``int``. Other scalars must already be NumPy scalars of the C type.
    """
    if dtype is not None:
        dtype = np.dtype(dtype)
        if dtype not in _SUFFIX:
            raise TypeError(f"CUDA kernel {name}: only float32 and float64 arrays, got {dtype}")
        name = f"{name}_{_SUFFIX[dtype]}"
    args = tuple(np.int32(a) if isinstance(a, int) else
                 (dtype or np.dtype(np.float64)).type(a) if isinstance(a, float) else a
                 for a in args)
    blocks, threads = launch_shape(total)
    module(source).get_function(name)((blocks,), (threads,), args + (np.int64(total),))


def _contiguous(*arrays, dtype=None):
    return [None if a is None else get_array_module(a).ascontiguousarray(a, dtype=dtype)
            for a in arrays]


# ------------------------------------------------------------------ conv.cu
def im2col(x, kernel, stride, padding, dilation, out_size):
    """(N, C, H, W) -> columns (C, kH, kW, N, oH, oW); zero where a window meets the padding."""
    x, = _contiguous(x)
    N, C, H, W = x.shape
    cols = get_array_module(x).empty((C, *kernel, N, *out_size), dtype=x.dtype)
    launch("conv.cu", "im2col", x.dtype, cols.size, x, cols, N, C, H, W, *kernel, *stride,
           *padding, *dilation, *out_size)
    return cols


def col2im(cols, image_size, kernel, stride, padding, dilation):
    """The adjoint of ``im2col``: each pixel sums the column entries that read it."""
    cols, = _contiguous(cols)
    C, kH, kW, N, oH, oW = cols.shape
    x = get_array_module(cols).empty((N, C, *image_size), dtype=cols.dtype)
    launch("conv.cu", "col2im", cols.dtype, x.size, cols, x, N, C, *image_size, kH, kW,
           *stride, *padding, *dilation, oH, oW)
    return x


def max_pool2d_forward(x, kernel, stride, padding, out_size):
    """Window maxima and where they are (flat index in the input plane)."""
    x, = _contiguous(x)
    xp = get_array_module(x)
    N, C, H, W = x.shape
    out = xp.empty((N, C, *out_size), dtype=x.dtype)
    arg = xp.empty((N, C, *out_size), dtype=xp.int64)
    launch("conv.cu", "max_pool_forward", x.dtype, out.size, x, out, arg, N, C, H, W, *kernel,
           *stride, *padding, *out_size)
    return out, arg


def max_pool2d_backward(g, argmax, image_size, kernel, stride, padding):
    """Each output gradient added onto the input pixel that won its window."""
    g, = _contiguous(g)
    argmax, = _contiguous(argmax, dtype=np.int64)
    N, C, oH, oW = g.shape
    gx = get_array_module(g).empty((N, C, *image_size), dtype=g.dtype)
    launch("conv.cu", "max_pool_backward", g.dtype, gx.size, g, argmax, gx, N, C, *image_size,
           *kernel, *stride, *padding, oH, oW)
    return gx


# ------------------------------------------------------------------ norm.cu
def channel_partials(count):
    """Threads per channel for the partial sums: up to 256, each adding at least 32 values."""
    return max(1, min(256, count // 32))


def _channel_sums(name, x, *args, parts, outputs):
    """Per-channel sums of x (N, C, ...) in two launches (see norm.cu): the partial sums into
    ``outputs`` arrays of (C, parts) float64, then each row added up; returns the (C,) sums."""
    xp = get_array_module(x)
    N, C = x.shape[:2]
    L = int(np.prod(x.shape[2:]))
    part = [xp.empty(C * parts, dtype=xp.float64) for _ in range(outputs)]
    launch("norm.cu", name, x.dtype, C * parts, x, *args, *part, C, np.int64(L),
           np.int64(N * L), parts)
    sums = [xp.empty(C, dtype=xp.float64) for _ in part]
    for p, s in zip(part, sums):
        launch("norm.cu", "combine_partials", None, C, p, s, parts)
    return sums


def batch_norm_stats(x, parts=None):
    """Per-channel mean and biased variance of x (N, C, ...) over every dim but 1, two-pass
    in float64 (see norm.cu), returned in x's dtype, shape (C,) -- ``_moments`` of
    ``minigen/nn/functional.py``."""
    x, = _contiguous(x)
    count = x.size // x.shape[1]
    parts = parts or channel_partials(count)
    total, = _channel_sums("channel_partial_sums", x, None, parts=parts, outputs=1)
    mean = total / count
    squares, = _channel_sums("channel_partial_sums", x, mean, parts=parts, outputs=1)
    return mean.astype(x.dtype), (squares / count).astype(x.dtype)


def batch_norm_normalize(x, mean, inv_std, weight=None, bias=None):
    """xhat = (x - mean) * inv_std and y = xhat * weight + bias (None without weight), as
    ``Normalize.forward``; mean, inv_std, weight, bias hold one number per channel."""
    x, = _contiguous(x)
    xp = get_array_module(x)
    C = x.shape[1]
    mean, inv_std, weight, bias = (None if a is None else a.reshape(C) for a in
                                   _contiguous(mean, inv_std, weight, bias, dtype=x.dtype))
    xhat = xp.empty_like(x)
    y = None if weight is None else xp.empty_like(x)
    launch("norm.cu", "batch_norm_normalize", x.dtype, x.size, x, mean, inv_std, weight, bias,
           xhat, y, C, np.int64(np.prod(x.shape[2:])))
    return xhat, y


def batch_norm_backward(g, xhat, inv_std, weight=None, parts=None):
    """(dx, dweight, dbias) of batch norm in training mode, as ``Normalize.backward``
    (dweight and dbias have shape (C,); both None without weight)."""
    g, xhat = _contiguous(g, xhat)
    xp = get_array_module(g)
    C = g.shape[1]
    count = g.size // C
    parts = parts or channel_partials(count)
    sum_g, sum_gx = _channel_sums("channel_partial_grad_sums", g, xhat, parts=parts, outputs=2)
    inv_std, weight = (None if a is None else a.reshape(C) for a in
                       _contiguous(inv_std, weight, dtype=g.dtype))
    w = 1.0 if weight is None else weight.astype(xp.float64)
    mean_gh, mean_ghx = ((w * s / count).astype(g.dtype) for s in (sum_g, sum_gx))
    gx = xp.empty_like(g)
    launch("norm.cu", "batch_norm_backward_input", g.dtype, g.size, g, xhat, inv_std, weight,
           mean_gh, mean_ghx, gx, C, np.int64(np.prod(g.shape[2:])))
    if weight is None:
        return gx, None, None
    return gx, sum_gx.astype(g.dtype), sum_g.astype(g.dtype)


# ------------------------------------------------------------------ elementwise.cu
def _elementwise(name, first, *arrays, scalars=(), outputs=1):
    """Launch an elementwise kernel of elementwise.cu over ``first`` and same-shaped ``arrays``,
    returning ``outputs`` new arrays of that shape."""
    first, = _contiguous(first)
    arrays = _contiguous(*arrays, dtype=first.dtype)
    out = [get_array_module(first).empty_like(first) for _ in range(outputs)]
    launch("elementwise.cu", name, first.dtype, first.size, first, *arrays, *out, *scalars)
    return out[0] if outputs == 1 else tuple(out)


def leaky_relu(x, slope):
    """x for x > 0, slope * x otherwise (``LeakyReLU.forward``)."""
    return _elementwise("leaky_relu_forward", x, scalars=(float(slope),))


def leaky_relu_backward(g, x, slope):
    """g * (1 for x > 0, slope otherwise) (``LeakyReLU.backward``)."""
    return _elementwise("leaky_relu_backward", g, x, scalars=(float(slope),))


def bce_with_logits(x, t):
    """(elementwise loss, e = exp(-|x|)) of ``BCEWithLogits.forward``, before the reduction."""
    return _elementwise("bce_with_logits_forward", x, t, outputs=2)


def bce_with_logits_backward(g, x, t, e):
    """g * (sigmoid(x) - t) from the saved e (``BCEWithLogits.backward``); g is one number or
    one per element."""
    g, x, t, e = _contiguous(g, x, t, e, dtype=x.dtype)
    gx = get_array_module(x).empty_like(x)
    launch("elementwise.cu", "bce_with_logits_backward", x.dtype, x.size, g,
           np.int64(0 if g.size == 1 else 1), x, t, e, gx)
    return gx


def reparameterize(mu, logvar, eps):
    """(z = mu + exp(logvar / 2) * eps, sigma = exp(logvar / 2)) (``models.vae.reparameterize``)."""
    return _elementwise("reparameterize_forward", mu, logvar, eps, outputs=2)


def reparameterize_backward(g, eps, sigma):
    """dL/dlogvar = g * eps * sigma / 2 (dL/dmu is g)."""
    return _elementwise("reparameterize_backward", g, eps, sigma)


# ------------------------------------------------------------------ classical.cu
def nearest(X, W, metric):
    """(index int64 (N,), distance float64 (N,)) of the nearest row of W for each row of X
    (``distances.nearest_reference``); metric codes as ``distances.metric_code``."""
    X, = _contiguous(X)
    W, = _contiguous(W, dtype=X.dtype)
    xp = get_array_module(X)
    N, K = X.shape[0], W.shape[0]
    index, dist = xp.empty(N, dtype=xp.int64), xp.empty(N, dtype=xp.float64)
    if metric in (0, 1):
        # the terms of distances.pairwise, computed as it computes them (X W^T by cuBLAS), so
        # the distances are its distances bit for bit
        x_sq, w_sq = ((X * X).sum(1), (W * W).sum(1)) if metric == 0 else (None, None)
        launch("classical.cu", "nearest_from_gram", X.dtype, N, X @ W.T, x_sq, w_sq, metric,
               index, dist, K)
    else:
        launch("classical.cu", "nearest_direct", X.dtype, N, X, W, metric, index, dist, K,
               X.shape[1])
    return index, dist


def som_online_epoch(X, order, W, grid_d2, alphas, sigmas, metric, kind):
    """One online pass over X[order] updating W in place; returns the winners
    (``som.som_online_epoch_reference``). One launch per sample: a sample's update must be
    complete before the next winner is chosen, and the end of a launch is the barrier."""
    xp = get_array_module(W)
    if not W.flags.c_contiguous:
        raise ValueError("som_online_epoch: the codebook must be C-contiguous (updated in place)")
    K, D = W.shape
    n = len(order)
    X, = _contiguous(X, dtype=W.dtype)
    order, = _contiguous(xp.asarray(order), dtype=np.int64)
    grid_d2, alphas, sigmas = _contiguous(*map(xp.asarray, (grid_d2, alphas, sigmas)),
                                          dtype=np.float64)
    dist = [xp.empty(K, dtype=xp.float64) for _ in range(2)]
    winners = xp.empty(n, dtype=xp.int64)
    if n:
        launch("classical.cu", "som_distances", W.dtype, K, X, order, np.int64(0), W, dist[0],
               D, metric)
    for t in range(n):
        launch("classical.cu", "som_update", W.dtype, K, X, order, np.int64(t), np.int64(n), W,
               grid_d2, alphas, sigmas, metric, kind, dist[t % 2], dist[1 - t % 2], winners, D)
    return winners


def sigmoid_bias(pre, bias):
    """sigmoid(pre + bias), bias added to each row (``rbm.sigmoid_bias_reference``)."""
    pre, = _contiguous(pre)
    bias, = _contiguous(bias, dtype=pre.dtype)
    probs = get_array_module(pre).empty_like(pre)
    launch("classical.cu", "sigmoid_bias", pre.dtype, pre.size, pre, bias, probs, pre.shape[-1])
    return probs


def sigmoid_bernoulli(pre, bias, u):
    """(sigmoid(pre + bias), 1[u < it]) for uniforms u (``rbm.bernoulli_reference``)."""
    pre, = _contiguous(pre)
    bias, = _contiguous(bias, dtype=pre.dtype)
    u, = _contiguous(u, dtype=np.float32)
    xp = get_array_module(pre)
    probs, sample = xp.empty_like(pre), xp.empty_like(pre)
    launch("classical.cu", "sigmoid_bernoulli", pre.dtype, pre.size, pre, bias, u, probs,
           sample, pre.shape[-1])
    return probs, sample
