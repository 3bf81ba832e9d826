"""CUDA kernels for CuPy arrays: the CUDA C sources ``kernels/*.cu`` loaded with CuPy's RawModule.

The functions here have the same names, arguments and results as those of ``cpu.py``, so
``minigen/ops/conv.py`` picks a module and calls it. CuPy is imported only when a kernel is
first used (this module imports on machines without CuPy).
"""
import functools
import os

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}
_THREADS = 256


@functools.lru_cache(maxsize=None)
def _module(source):
    """Compile ``kernels/<source>`` once per process (CuPy also caches the binary on disk)."""
    import cupy
    with open(os.path.join(_HERE, source)) as f:
        return cupy.RawModule(code=f.read(), options=("--std=c++14",))


def _launch(name, dtype, total, *args):
    """Run ``<name>_f32`` or ``<name>_f64`` with one thread per written element (the kernels
    loop with a grid stride, so a capped grid still covers everything)."""
    dtype = np.dtype(dtype)
    if dtype not in _SUFFIX:
        raise TypeError(f"CUDA kernel {name}: only float32 and float64 arrays, got {dtype}")
    kernel = _module("conv.cu").get_function(f"{name}_{_SUFFIX[dtype]}")
    blocks = max(1, min((total + _THREADS - 1) // _THREADS, 65535))
    ints = tuple(np.int32(a) if isinstance(a, (int, np.integer)) else a for a in args)
    kernel((blocks,), (_THREADS,), ints + (np.int64(total),))


def im2col(x, kernel, stride, padding, dilation, out_size):
    """(N, C, H, W) -> columns (C, kH, kW, N, oH, oW); zero where a window meets the padding."""
    import cupy
    x = cupy.ascontiguousarray(x)
    N, C, H, W = x.shape
    cols = cupy.empty((C, *kernel, N, *out_size), dtype=x.dtype)
    _launch("im2col", x.dtype, cols.size, x, cols, N, C, H, W, *kernel, *stride, *padding,
            *dilation, *out_size)
    return cols


def col2im(cols, image_size, kernel, stride, padding, dilation):
    """The adjoint of ``im2col``: each pixel sums the column entries that read it."""
    import cupy
    cols = cupy.ascontiguousarray(cols)
    C, kH, kW, N, oH, oW = cols.shape
    x = cupy.empty((N, C, *image_size), dtype=cols.dtype)
    _launch("col2im", cols.dtype, x.size, cols, x, N, C, *image_size, kH, kW, *stride,
            *padding, *dilation, oH, oW)
    return x


def max_pool2d_forward(x, kernel, stride, padding, out_size):
    """Window maxima and where they are (flat index in the input plane)."""
    import cupy
    x = cupy.ascontiguousarray(x)
    N, C, H, W = x.shape
    out = cupy.empty((N, C, *out_size), dtype=x.dtype)
    arg = cupy.empty((N, C, *out_size), dtype=cupy.int64)
    _launch("max_pool_forward", x.dtype, out.size, x, out, arg, N, C, H, W, *kernel, *stride,
            *padding, *out_size)
    return out, arg


def max_pool2d_backward(g, argmax, image_size, kernel, stride, padding):
    """Each output gradient added onto the input pixel that won its window."""
    import cupy
    g = cupy.ascontiguousarray(g)
    argmax = cupy.ascontiguousarray(argmax, dtype=cupy.int64)
    N, C, oH, oW = g.shape
    gx = cupy.empty((N, C, *image_size), dtype=g.dtype)
    _launch("max_pool_backward", g.dtype, gx.size, g, argmax, gx, N, C, *image_size, *kernel,
            *stride, *padding, oH, oW)
    return gx
