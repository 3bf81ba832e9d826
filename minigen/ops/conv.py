"""Convolution and pooling: conv2d, conv_transpose2d, max_pool2d, avg_pool2d.

Letters
-------
``N`` batch; ``C`` the channels of the *image* side (conv2d's input, conv_transpose2d's
output) and ``H, W`` its size; ``O`` the channels of the *window* side (conv2d's output,
conv_transpose2d's input) and ``oH, oW`` its grid of window positions; ``kH, kW`` the kernel.
Both ops take the same weight array ``w`` of shape ``(O, C, kH, kW)``: for conv2d that is
PyTorch's ``(out_channels, in_channels, kH, kW)``, for conv_transpose2d PyTorch's
``(in_channels, out_channels, kH, kW)`` -- one layout read from the two ends, because
conv_transpose2d is conv2d run backwards (its adjoint, below) with the same weight.

How a convolution is computed -- im2col + one GEMM
--------------------------------------------------
``conv2d`` slides a ``kH x kW`` window over the (zero-padded) input and takes, at every
window position, the dot product of the window with each filter::

    y[n, o, oh, ow] = sum_{c, i, j} w[o, c, i, j] * x[n, c, oh*sH + i*dH - pH, ow*sW + j*dW - pW]

``im2col`` copies every window into a column of a matrix ``cols`` of shape
``(C*kH*kW, N*oH*oW)``; then the whole convolution is ONE matrix product
``w.reshape(O, C*kH*kW) @ cols``, which BLAS runs at close to the machine's peak.

The backward in three lines
---------------------------
Write the forward as two linear steps: ``X = im2col(x)`` (a copy: every entry of ``X`` is a
pixel of ``x``, or a zero of the padding), then ``Y = W X`` (``W`` is ``w`` as an
``(O, C*kH*kW)`` matrix, ``Y`` the output as ``(O, N*oH*oW)``). With ``G = dL/dY``::

    dL/dW = G X^T                                    (a GEMM: the weight gradient)
    dL/dX = W^T G                                    (a GEMM)
    dL/dx = im2col^T(dL/dX) = col2im(W^T G)          (the chain rule through im2col)

The third line is the chain rule for a linear map: if ``X = A x`` then ``dL/dx = A^T dL/dX``.
For a map that is not stored as a matrix, ``A^T`` means its *adjoint*: the linear map
``A*`` with ``<A x, c> = <x, A* c>`` for every ``x`` and ``c`` (the dot products of the two
spaces). im2col copies pixels into columns, so its adjoint *adds* every column entry back
onto the pixel it was copied from -- ``col2im``; a pixel read by k windows receives the sum
of the k gradients. ``tests/test_conv.py::test_col2im_is_the_adjoint_of_im2col`` checks
``<im2col(x), c> == <x, col2im(c)>`` for random x, c and geometries, and the gradient tests
check the three lines end to end against finite differences.

Three bilinear maps, each the others' adjoint
---------------------------------------------
Write ``B(x, w, g) = <g, conv2d(x, w)>``. Its three partial gradients are

* ``d B / d x = conv_transpose2d(g, w)`` -- GEMM ``w^T @ g``, then ``col2im`` (the line above);
* ``d B / d w = conv2d_weight(x, g)``    -- GEMM ``g @ cols^T`` (correlate input and gradient);
* ``d B / d g = conv2d(x, w)``.

So the gradient of each of the three ops is again one of the three ops (``Conv2d``,
``ConvTranspose2d``, ``Conv2dWeight`` below), and gradients of gradients -- WGAN-GP's
penalty through a convolutional critic -- come for free.

Layouts between the GEMMs
-------------------------
The images are ``(N, O, oH, oW)`` but the GEMMs want ``G`` as an ``(O, N*oH*oW)`` matrix, so
every product is framed by a copy that swaps the first two axes (``_gemm_rows``, and back in
``_conv``). Such a copy costs about as much as reading the columns once, so each is made
once: conv2d's backward swaps ``g`` for both of its GEMMs, and conv_transpose2d keeps its
swapped input for its weight gradient. conv2d's bias rides on these copies too: it is added
while the output is swapped, and its gradient is summed while ``g`` is. ``W^T G``, which only
col2im reads, is made a block of samples at a time (``BLOCK_BYTES``) and never exists whole.

Pooling
-------
``max_pool2d`` gathers the largest pixel of each window; its backward scatters the gradient
back to where the maximum was, and the backward of that scatter is the gather again (the same
pair as GetItem / IndexAdd in ``shape.py``). ``avg_pool2d`` is a convolution of each channel
with a constant ``1 / (kH*kW)`` filter, so its backward is conv_transpose2d.

The hot loops (im2col, col2im, max-pool) run as Numba kernels on NumPy arrays
(``kernels/cpu.py``) and CUDA kernels on CuPy arrays (``kernels/conv.cu``); the plain
NumPy references below are the definition, used when ``MINIGEN_KERNELS=reference`` and by
the tests as the oracle for the kernels.
"""
from typing import NamedTuple

import numpy as np

from .. import backend
from ..autograd import Function, is_grad_enabled
from ..backend import get_array_module
from ..kernels import hot_loops, use_numba
from ..kernels import matmul as array_matmul
from ..tensor import Tensor
from .shape import reshape, unbroadcast


# ------------------------------------------------------------------ window geometry
class Geometry(NamedTuple):
    """Where the windows of a convolution (or pooling) lie, all as (height, width) pairs.

    ``image`` is the big side (conv2d's input, conv_transpose2d's output) and ``out`` the
    grid of window positions (conv2d's output, conv_transpose2d's input). Window ``(oh, ow)``
    tap ``(i, j)`` reads image pixel ``(oh*sH + i*dH - pH, ow*sW + j*dW - pW)``.
    """
    kernel: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    image: tuple
    out: tuple


def conv_output_size(size, kernel, stride=1, padding=0, dilation=1):
    """How many window positions fit along one axis (conv2d's and the pools' output size).

    The dilated window spans ``d*(k-1) + 1`` pixels. Window ``o`` starts at pixel ``o*s`` of
    the padded axis (length ``size + 2p``) and ends at ``o*s + d*(k-1)``; it fits when
    ``o*s + d*(k-1) <= size + 2p - 1``. Counting ``o = 0, 1, ...`` up to that bound::

        out = floor((size + 2p - d*(k-1) - 1) / s) + 1
    """
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def conv_transpose_output_size(size, kernel, stride=1, padding=0, output_padding=0,
                               dilation=1):
    """conv_transpose2d's output size along one axis: the image whose conv2d has ``size``
    windows. Solving ``conv_output_size(out) == size`` for the smallest ``out``::

        out = (size - 1)*s - 2p + d*(k-1) + 1  (+ output_padding)

    The floor in ``conv_output_size`` forgets up to ``s - 1`` trailing pixels, so several
    image sizes give the same window count; ``output_padding`` says how many of them to add
    back (at the bottom / right), exactly as PyTorch."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def _pair(value, name, op, minimum):
    """An int or a pair of ints as a pair, checked against ``minimum``."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) for v in pair):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return tuple(int(v) for v in pair)


# ------------------------------------------------------------------ NumPy references
def _as_strided(a, shape, strides):
    xp = get_array_module(a)
    return xp.lib.stride_tricks.as_strided(a, shape=shape, strides=strides)


def im2col_reference(x, kernel, stride, padding, dilation, out_size):
    """(N, C, H, W) -> columns (C, kH, kW, N, oH, oW), by a strided view of the padded input.

    Moving one tap down reads ``dH`` rows further, moving one window down reads ``sH`` rows
    further: so all windows at once are a *view* of the padded array with those strides (no
    data is copied), and one copy lays the columns out for the GEMM.
    """
    xp = get_array_module(x)
    (kH, kW), (sH, sW), (pH, pW), (dH, dW), (oH, oW) = kernel, stride, padding, dilation, out_size
    N, C = x.shape[:2]
    padded = xp.pad(x, ((0, 0), (0, 0), (pH, pH), (pW, pW)))
    st_n, st_c, st_h, st_w = padded.strides
    windows = _as_strided(padded, (C, kH, kW, N, oH, oW),
                          (st_c, dH * st_h, dW * st_w, st_n, sH * st_h, sW * st_w))
    return xp.ascontiguousarray(windows)


def col2im_reference(cols, image_size, kernel, stride, padding, dilation):
    """The adjoint of im2col: add every column entry back onto the pixel it was copied from.

    Tap ``(i, j)`` of all windows reads a strided slice of the padded image (rows ``i*dH``,
    ``i*dH + sH``, ...), so one ``+=`` per tap does it; within a tap no pixel repeats, and
    across taps the sums accumulate. Then the padding is cut off.
    """
    xp = get_array_module(cols)
    C, kH, kW, N, oH, oW = cols.shape
    (H, W), (sH, sW), (pH, pW), (dH, dW) = image_size, stride, padding, dilation
    padded = xp.zeros((N, C, H + 2 * pH, W + 2 * pW), dtype=cols.dtype)
    for i in range(kH):
        for j in range(kW):
            rows = slice(i * dH, i * dH + sH * (oH - 1) + 1, sH)
            columns = slice(j * dW, j * dW + sW * (oW - 1) + 1, sW)
            padded[:, :, rows, columns] += cols[:, i, j].transpose(1, 0, 2, 3)
    return xp.ascontiguousarray(padded[:, :, pH:pH + H, pW:pW + W])


def max_pool2d_forward_reference(x, kernel, stride, padding, out_size):
    """Window maxima and their positions (flat index ``h*W + w`` in the input plane).

    The input is padded with -inf (padding never wins), the windows are a strided view as in
    im2col, and ``argmax`` takes the first largest entry (a NaN counts as the largest).
    """
    xp = get_array_module(x)
    (kH, kW), (sH, sW), (pH, pW), (oH, oW) = kernel, stride, padding, out_size
    N, C, H, W = x.shape
    padded = xp.pad(x, ((0, 0), (0, 0), (pH, pH), (pW, pW)), constant_values=-np.inf)
    st_n, st_c, st_h, st_w = padded.strides
    windows = _as_strided(padded, (N, C, oH, oW, kH, kW),
                          (st_n, st_c, sH * st_h, sW * st_w, st_h, st_w))
    tap = windows.reshape(N, C, oH, oW, kH * kW).argmax(axis=-1)
    h = xp.arange(oH).reshape(oH, 1) * sH - pH + tap // kW
    w = xp.arange(oW) * sW - pW + tap % kW
    # A window whose real pixels are all -inf ties with its padding; argmax then picks tap 0,
    # which may be padding: clipping moves it to the window's first real pixel.
    h, w = xp.clip(h, 0, H - 1), xp.clip(w, 0, W - 1)
    argmax = h * W + w
    return _gather(x, argmax), argmax


def max_pool2d_backward_reference(g, argmax, image_size, kernel=None, stride=None,
                                  padding=None):
    """Scatter-add each window's gradient onto its argmax (windows may share a pixel)."""
    xp = get_array_module(g)
    N, C = g.shape[:2]
    H, W = image_size
    gx = xp.zeros((N, C, H * W), dtype=g.dtype)
    planes = (xp.arange(N).reshape(N, 1, 1, 1), xp.arange(C).reshape(1, C, 1, 1), argmax)
    backend.scatter_add(gx, planes, g)
    return gx.reshape(N, C, H, W)


def _gather(x, argmax):
    """x[n, c].flat[argmax[n, c, oh, ow]] for every window: the max-pool forward, given argmax."""
    xp = get_array_module(x)
    N, C, H, W = x.shape
    flat = xp.take_along_axis(x.reshape(N, C, H * W), argmax.reshape(N, C, -1), axis=2)
    return flat.reshape(argmax.shape)


# ------------------------------------------------------------------ kernel selection


def _one_window(geom):
    """True when a single window covers the image exactly (kernel = image, no padding, no
    dilation): DCGAN's projection of z (a 7x7 conv_transpose2d of a 1x1 input) and a critic's
    last 7x7 conv2d. The columns are then the image itself, as an (N, C*kH*kW) matrix
    transposed, and im2col / col2im are only that transpose -- the conv is a Linear layer."""
    return geom.out == (1, 1) and geom.padding == (0, 0) and geom.dilation == (1, 1) and \
        tuple(geom.kernel) == tuple(geom.image)


def im2col(x, geom):
    if _one_window(geom):  # a view of x: no copy at all
        N, C = x.shape[:2]
        return x.reshape(N, -1).T.reshape(C, *geom.kernel, N, 1, 1)
    k = hot_loops(x)
    args = (geom.kernel, geom.stride, geom.padding, geom.dilation, geom.out)
    return k.im2col(x, *args) if k else im2col_reference(x, *args)


def col2im(cols, geom, out=None):
    """The image of the columns ``cols``; ``out``, when given, is a contiguous array to write
    it into (the Numba kernel writes there directly; other results are copied in)."""
    k = hot_loops(cols)
    args = (geom.image, geom.kernel, geom.stride, geom.padding, geom.dilation)
    if _one_window(geom):  # one transposing copy (no sums: every pixel is in one window)
        C, N = cols.shape[0], cols.shape[3]
        xp = get_array_module(cols)
        image = xp.ascontiguousarray(cols.reshape(-1, N).T).reshape(N, C, *geom.image)
    elif k is not None and use_numba(cols):
        return k.col2im(cols, *args, out=out)
    else:
        image = k.col2im(cols, *args) if k else col2im_reference(cols, *args)
    if out is None:
        return image
    out[...] = image
    return out


def _max_pool_forward(x, geom):
    k = hot_loops(x)
    args = (geom.kernel, geom.stride, geom.padding, geom.out)
    return k.max_pool2d_forward(x, *args) if k else max_pool2d_forward_reference(x, *args)


def _max_pool_backward(g, argmax, geom):
    k = hot_loops(g)
    args = (argmax, geom.image, geom.kernel, geom.stride, geom.padding)
    return k.max_pool2d_backward(g, *args) if k else max_pool2d_backward_reference(g, *args)


# ------------------------------------------------------------------ the three GEMMs
def _swap_batch_and_channels(a, bias=None):
    """(A, B, ...) -> a contiguous (B, A, ...): between the GEMMs' (O, N*oH*oW) layout and
    the images' (N, O, oH, oW). With ``bias`` (A,), bias[i] is added to every entry that
    comes from a[i] -- a convolution's bias, on the same pass over memory."""
    A, B = a.shape[:2]
    a3 = a.reshape(A, B, -1)
    if use_numba(a):  # a copy on every thread (kernels/cpu.py)
        from ..kernels import cpu
        out = cpu.swap01(a3, bias)
    else:
        out = get_array_module(a).ascontiguousarray(a3.transpose(1, 0, 2))
        if bias is not None:
            out += bias.reshape(1, A, 1)
    return out.reshape(B, A, *a.shape[2:])


def _gemm_rows(g):
    """An image-side (N, O, oH, oW) array as the GEMMs' (O, N*oH*oW) matrix (a copy)."""
    return _swap_batch_and_channels(g).reshape(g.shape[1], -1)


def _gemm_rows_and_bias_grad(g):
    """_gemm_rows of the Tensor g's array, and dL/dbias of a conv2d's bias (g summed over every
    dim but 1, a Tensor). On the CPU one pass over g makes both: each channel's sum is taken
    while the channel is copied into its row (summing the rows in a pass of their own made
    benchmarks/bench_conv.py's discriminator step 0.25 ms slower at 1 thread)."""
    if use_numba(g.data) and not is_grad_enabled():
        from ..kernels import cpu
        N, O = g.shape[:2]
        rows, sums = cpu.swap01_sums(g.data.reshape(N, O, -1))
        return rows.reshape(O, -1), Tensor(sums)
    return _gemm_rows(g.data), _bias_grad(g)


def _conv(x, w, geom, cols, bias=None):
    """conv2d on arrays: y = w(O, C*kH*kW) @ cols(C*kH*kW, N*oH*oW), then (O, N) -> (N, O),
    plus ``bias`` (O,) on each channel when given; ``cols`` is im2col(x)."""
    N, O = x.shape[0], w.shape[0]
    y = array_matmul(w.reshape(O, -1), cols.reshape(-1, N * geom.out[0] * geom.out[1]))
    # the bias rides on the copy that lays y out as (N, O, oH, oW) (a pass of its own cost
    # 0.25 ms on the 64-channel 14x14 layer of benchmarks/bench_conv.py, 1 thread)
    return _swap_batch_and_channels(y.reshape(O, N, *geom.out), bias)


# conv_transpose2d's columns w^T G are a temporary that col2im reads once, so on the CPU they
# are made a block of samples at a time, each about this many bytes (half a core's L2 cache here):
# col2im then reads them from the cache, and the step never holds the whole matrix (12.8 MB for
# a 64 -> 128 channel layer at batch 64). A fresh array that size costs page faults each time
# it is made -- measured at 1 thread on benchmarks/bench_conv.py's discriminator step: 36.5 ms
# with the whole matrix, 29-32 ms in blocks.
BLOCK_BYTES = 1 << 21


def _conv_transpose(g, w, geom, g_rows):
    """conv_transpose2d on arrays: cols = w^T(C*kH*kW, O) @ g(O, N*oH*oW), then col2im,
    for a block of samples at a time; ``g_rows`` is _gemm_rows(g)."""
    N = g.shape[0]
    O, C = w.shape[:2]
    L = geom.out[0] * geom.out[1]
    w_t = w.reshape(O, -1).T
    xp = get_array_module(g)
    # (on a GPU one big product is faster, and there is no such cache to fit)
    step = max(1, BLOCK_BYTES // (w_t.shape[0] * L * g.itemsize)) if xp is np else N
    if step >= N:
        return col2im(array_matmul(w_t, g_rows).reshape(C, *geom.kernel, N, *geom.out), geom)
    # each block's image goes straight into its samples of the output (no concatenation:
    # one copy of the image less)
    image = xp.empty((N, C, *geom.image), dtype=g.dtype)
    for n0 in range(0, N, step):
        n = min(step, N - n0)
        cols = array_matmul(w_t, g_rows[:, n0 * L:(n0 + n) * L])
        col2im(cols.reshape(C, *geom.kernel, n, *geom.out), geom, out=image[n0:n0 + n])
    return image


def _conv_weight(x, g, geom, cols, g_rows):
    """The weight gradient on arrays: g(O, N*oH*oW) @ cols^T(N*oH*oW, C*kH*kW); ``cols`` is
    im2col(x) and ``g_rows`` is _gemm_rows(g)."""
    C = x.shape[1]
    O = g.shape[1]
    cols = cols.reshape(C * geom.kernel[0] * geom.kernel[1], -1)
    if cols.shape[0] > O:
        # the same product, transposed: (cols @ g^T)^T. OpenBLAS runs it faster with the tall
        # (C*kH*kW, O) result than with the wide (O, C*kH*kW) one (1 thread, the 64 -> 128
        # channel layer of benchmarks/bench_conv.py: 6.5 ms instead of 7.3); the result is
        # a transposed view, which nothing downstream needs contiguous. With fewer rows than
        # filters (a first layer, C*kH*kW = 16 < 64) the wide one wins: 0.45 ms against 0.64.
        return array_matmul(cols, g_rows.T).T.reshape(O, C, *geom.kernel)
    return array_matmul(g_rows, cols.T).reshape(O, C, *geom.kernel)


# ------------------------------------------------------------------ differentiable ops
class Conv2d(Function):
    """y = conv2d(x, w) (+ bias) for x (N, C, H, W), w (O, C, kH, kW), bias (O,): bilinear in
    (x, w), so each gradient is the op with the other argument fixed:
    dx = conv_transpose2d(g, w), dw = conv2d_weight(x, g); and dbias = g summed over all
    dims but 1 (as PyTorch, the bias is part of the op: both of its passes share the layout
    copies of the GEMMs)."""

    def forward(self, x, w, bias=None, *, geom, cols=None):
        self.geom = geom
        # the columns of x are kept: the weight gradient is a GEMM with the very same columns
        self.cols = im2col(x, geom) if cols is None else cols
        return _conv(x, w, geom, self.cols, bias)

    def backward(self, g):
        x, w = self.inputs[:2]
        # both gradients are GEMMs with this matrix: made once; the bias gradient, when one
        # is wanted, is summed on the same pass over g
        bias_grad = len(self.inputs) == 3 and self.needs_input_grad[2]
        g_rows, gb = _gemm_rows_and_bias_grad(g) if bias_grad else (_gemm_rows(g.data), None)
        gx = ConvTranspose2d.apply(g, w, geom=self.geom, rows=g_rows) \
            if self.needs_input_grad[0] else None
        gw = Conv2dWeight.apply(x, g, geom=self.geom, cols=self.cols, g_rows=g_rows) \
            if self.needs_input_grad[1] else None
        return (gx, gw) if len(self.inputs) == 2 else (gx, gw, gb)


class ConvTranspose2d(Function):
    """x = conv_transpose2d(y, w) for y (N, O, oH, oW), w (O, C, kH, kW): the adjoint of
    conv2d in its input, so dy = conv2d(g, w), and dw = conv2d_weight(g, y)."""

    def forward(self, y, w, geom, rows=None):
        self.geom = geom
        # y as the GEMM's (O, N*oH*oW) matrix, kept: the weight gradient multiplies it again
        self.rows = _gemm_rows(y) if rows is None else rows
        return _conv_transpose(y, w, geom, self.rows)

    def backward(self, g):
        y, w = self.inputs
        cols = im2col(g.data, self.geom)  # both gradients read g's windows: build them once
        gy = Conv2d.apply(g, w, geom=self.geom, cols=cols) if self.needs_input_grad[0] else None
        gw = Conv2dWeight.apply(g, y, geom=self.geom, cols=cols, g_rows=self.rows) \
            if self.needs_input_grad[1] else None
        return gy, gw


class Conv2dWeight(Function):
    """dw = conv2d_weight(x, g): the gradient of <g, conv2d(x, w)> in w, a correlation of the
    input with the output gradient. Linear in x and in g: for a gradient ``gw`` of dw,
    dx = conv_transpose2d(g, gw) and dg = conv2d(x, gw)."""

    def forward(self, x, g, geom, cols=None, g_rows=None):
        self.geom = geom
        self.cols = im2col(x, geom) if cols is None else cols
        self.g_rows = _gemm_rows(g) if g_rows is None else g_rows
        return _conv_weight(x, g, geom, self.cols, self.g_rows)

    def backward(self, gw):
        x, g = self.inputs
        gx = ConvTranspose2d.apply(g, gw, geom=self.geom, rows=self.g_rows) \
            if self.needs_input_grad[0] else None
        gg = Conv2d.apply(x, gw, geom=self.geom, cols=self.cols) \
            if self.needs_input_grad[1] else None
        return gx, gg


class MaxPool2d(Function):
    """The largest pixel of each window. Only the winner depends on the input, so the
    gradient goes to it alone (a scatter to argmax)."""

    def forward(self, x, geom):
        self.geom = geom
        out, self.argmax = _max_pool_forward(x, geom)
        return out

    def backward(self, g):
        return MaxPoolScatter.apply(g, argmax=self.argmax, geom=self.geom)


class MaxPoolScatter(Function):
    """Max-pool's backward: window gradients added onto their argmax pixels. Linear in g;
    its adjoint (and so its backward) is the gather at argmax."""

    def forward(self, g, argmax, geom):
        self.argmax = argmax
        self.geom = geom
        return _max_pool_backward(g, argmax, geom)

    def backward(self, gg):
        return MaxPoolGather.apply(gg, argmax=self.argmax, geom=self.geom)


class MaxPoolGather(Function):
    """x at the argmax of each window (max-pool with its winners fixed); backward: scatter."""

    def forward(self, x, argmax, geom):
        self.argmax = argmax
        self.geom = geom
        return _gather(x, argmax)

    def backward(self, g):
        return MaxPoolScatter.apply(g, argmax=self.argmax, geom=self.geom)


# ------------------------------------------------------------------ argument checks
def _batched(x, op):
    """(N, C, H, W) as is, (C, H, W) with a batch of one added (as torch), else an error."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(x).__name__}")
    if x.ndim == 4:
        return x, False
    if x.ndim == 3:
        return reshape(x, (1,) + x.shape), True
    raise ValueError(f"{op}: expected a 4-D input (batch, channels, height, width) or a 3-D "
                     f"one (channels, height, width), got shape {x.shape}")


def _unbatched(y, was_unbatched):
    return reshape(y, y.shape[1:]) if was_unbatched else y


def _check_weight(x, w, op, channel_axis):
    if not isinstance(w, Tensor):
        raise TypeError(f"{op}: weight must be a Tensor, got {type(w).__name__}")
    if w.ndim != 4:
        raise ValueError(f"{op}: weight must be 4-D, got shape {w.shape}")
    if x.shape[1] != w.shape[channel_axis]:
        layout = "(O, C, kH, kW) = (out, in, kH, kW)" if channel_axis == 1 else \
            "(O, C, kH, kW) = (in, out, kH, kW)"
        raise ValueError(f"{op}: input of shape {x.shape} has {x.shape[1]} channels, but weight "
                         f"of shape {w.shape} {layout} expects {w.shape[channel_axis]}")
    _check_same_kind(x, w, op, "weight")


def _check_same_kind(x, t, op, name):
    if t.device != x.device:
        raise RuntimeError(f"{op}: input is on {x.device} but {name} on {t.device}")
    if t.dtype != x.dtype:
        raise TypeError(f"{op}: input is {x.dtype} but {name} is {t.dtype}; convert one "
                        "with .float() or .double()")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{op}: needs float32 or float64 tensors, got {x.dtype}")


def _check_bias(bias, channels, x, op):
    if not isinstance(bias, Tensor) or bias.shape != (channels,):
        raise ValueError(f"{op}: bias must be a Tensor of shape ({channels},), got "
                         f"{getattr(bias, 'shape', type(bias).__name__)}")
    _check_same_kind(x, bias, op, "bias")


def _add_bias(y, bias, op):
    if bias is None:
        return y
    _check_bias(bias, y.shape[1], y, op)
    return ChannelBias.apply(y, bias)


def _bias_grad(g):
    """dL/dbias for y + bias[c]: the Tensor g (N, C, ...) summed over every dim but 1."""
    C = g.shape[1]
    if use_numba(g.data) and not is_grad_enabled():
        from ..kernels import cpu
        return Tensor(cpu.channel_sum(g.data))
    # differentiable (create_graph), or on CuPy / the reference path
    return unbroadcast(g, (1, C) + (1,) * (g.ndim - 2)).reshape(C)


class ChannelBias(Function):
    """y + bias[c] on every pixel of channel c: conv_transpose2d's bias, as one op (conv2d adds
    its own inside Conv2d).

    It is ``y + reshape(bias, (1, C, 1, 1))``, whose broadcasting add and (in the backward)
    sum over the batch and the pixels NumPy runs in several short strided passes; the Numba
    kernels do each in one pass. Gradients: dy = g, dbias = g summed over all dims but 1."""

    def forward(self, y, bias):
        if use_numba(y):
            from ..kernels import cpu
            return cpu.channel_bias(y, bias)
        return y + bias.reshape(1, -1, *(1,) * (y.ndim - 2))

    def backward(self, g):
        return g, (_bias_grad(g) if self.needs_input_grad[1] else None)


def _check_fits(x, kernel, padding, dilation, op):
    padded = tuple(n + 2 * p for n, p in zip(x.shape[2:], padding))
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    if any(s > n for s, n in zip(span, padded)):
        raise ValueError(f"{op}: kernel {kernel} (dilated to {span}) is bigger than the padded "
                         f"input {padded} (input shape {x.shape}, padding {padding})")


# ---------------------------------------------------------- public API (as torch.nn.functional)
def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1):
    """2-D cross-correlation of ``input`` (N, C, H, W) with ``weight`` (O, C, kH, kW), plus
    ``bias`` (O,): output (N, O, oH, oW) with oH = floor((H + 2p - d(kH-1) - 1) / s) + 1."""
    op = "conv2d"
    x, unbatched = _batched(input, op)
    _check_weight(x, weight, op, channel_axis=1)
    stride, dilation = _pair(stride, "stride", op, 1), _pair(dilation, "dilation", op, 1)
    padding = _pair(padding, "padding", op, 0)
    kernel = weight.shape[2:]
    _check_fits(x, kernel, padding, dilation, op)
    out = tuple(conv_output_size(*a) for a in zip(x.shape[2:], kernel, stride, padding, dilation))
    geom = Geometry(kernel, stride, padding, dilation, x.shape[2:], out)
    if bias is not None:
        _check_bias(bias, weight.shape[0], x, op)
    y = Conv2d.apply(x, weight, *(() if bias is None else (bias,)), geom=geom)
    return _unbatched(y, unbatched)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     dilation=1):
    """The adjoint of conv2d in its input (the "fractionally strided" convolution that DCGAN's
    generator upsamples with): ``input`` (N, O, oH, oW), ``weight`` (O, C, kH, kW) as torch's
    (in, out, kH, kW); output (N, C, H, W) with
    H = (oH - 1)*s - 2p + d(kH - 1) + output_padding + 1."""
    op = "conv_transpose2d"
    y, unbatched = _batched(input, op)
    _check_weight(y, weight, op, channel_axis=0)
    stride, dilation = _pair(stride, "stride", op, 1), _pair(dilation, "dilation", op, 1)
    padding = _pair(padding, "padding", op, 0)
    output_padding = _pair(output_padding, "output_padding", op, 0)
    for extra, s, d in zip(output_padding, stride, dilation):
        if extra >= max(s, d):
            raise ValueError(f"{op}: output_padding {output_padding} must be smaller than "
                             f"either stride {stride} or dilation {dilation}")
    kernel = weight.shape[2:]
    image = tuple(conv_transpose_output_size(*a) for a in
                  zip(y.shape[2:], kernel, stride, padding, output_padding, dilation))
    if min(image) < 1:
        raise ValueError(f"{op}: input of shape {y.shape} with kernel {kernel}, stride {stride}, "
                         f"padding {padding}, dilation {dilation} gives an empty output {image}")
    geom = Geometry(kernel, stride, padding, dilation, image, y.shape[2:])
    x = _add_bias(ConvTranspose2d.apply(y, weight, geom=geom), bias, op)
    return _unbatched(x, unbatched)


def _pool_geometry(x, kernel_size, stride, padding, op):
    """Windows of a pooling op; torch's rule: padding at most half the kernel, so that every
    window holds at least one real pixel."""
    kernel = _pair(kernel_size, "kernel_size", op, 1)
    no_stride = stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0)
    stride = kernel if no_stride else _pair(stride, "stride", op, 1)  # torch: default = kernel
    padding = _pair(padding, "padding", op, 0)
    if any(2 * p > k for p, k in zip(padding, kernel)):
        raise ValueError(f"{op}: padding {padding} must be at most half of kernel_size {kernel}")
    _check_fits(x, kernel, padding, (1, 1), op)
    out = tuple(conv_output_size(n, k, s, p) for n, k, s, p in
                zip(x.shape[2:], kernel, stride, padding))
    return Geometry(kernel, stride, padding, (1, 1), x.shape[2:], out)


def max_pool2d(input, kernel_size, stride=None, padding=0):
    """The largest value in each ``kernel_size`` window (stride defaults to the kernel size;
    padding is -inf, so it never wins)."""
    op = "max_pool2d"
    x, unbatched = _batched(input, op)
    _check_same_kind(x, x, op, "input")
    geom = _pool_geometry(x, kernel_size, stride, padding, op)
    return _unbatched(MaxPool2d.apply(x, geom=geom), unbatched)


def avg_pool2d(input, kernel_size, stride=None, padding=0):
    """The mean of each window, zero padding included in the count (torch's default
    count_include_pad=True): every channel convolved with a ones filter, divided by kH*kW."""
    op = "avg_pool2d"
    x, unbatched = _batched(input, op)
    _check_same_kind(x, x, op, "input")
    geom = _pool_geometry(x, kernel_size, stride, padding, op)
    N, C, H, W = x.shape
    kH, kW = geom.kernel
    ones = Tensor(get_array_module(x.data).ones((1, 1, kH, kW), dtype=x.dtype))
    # channels become batch entries so that one single-channel filter serves them all
    planes = reshape(x, (N * C, 1, H, W))
    sums = Conv2d.apply(planes, ones, geom=geom)
    return _unbatched(reshape(sums, (N, C, *geom.out)) / (kH * kW), unbatched)
