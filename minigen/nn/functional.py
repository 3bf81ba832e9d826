"""Stateless layer and loss functions (``torch.nn.functional``'s names and arguments).

The layer classes in ``layers.py`` hold parameters and call these. Three of them are
fused Functions because they sit on every training step (``linear``, the normalisation
of ``batch_norm``/``layer_norm``, ``binary_cross_entropy[_with_logits]``); their
backward is still written with Tensor ops, so ``gradgradcheck`` passes through them
(the WGAN-GP penalty differentiates a critic's gradient). The rest are compositions of
differentiable ops.

Losses take ``reduction``:

* ``'mean'`` -- the mean over every element (PyTorch's default);
* ``'sum'`` -- the sum over every element;
* ``'none'`` -- the elementwise (per-sample for cross entropy / nll) losses;
* ``'batchmean'`` -- the sum divided by the batch size ``input.shape[0]``: the
  per-example total, averaged over the batch. This is the natural scale for an ELBO
  (reconstruction summed over pixels, KL summed over latent dimensions).
"""
import builtins
import math

import numpy as np

from .. import backend
from ..autograd import Function, is_grad_enabled
from ..backend import get_array_module
from ..kernels import cuda_for, hot_loops
from ..kernels import matmul as array_matmul
from .. import ops
from ..ops import (clamp, exp, getitem, log, log_softmax, matmul, mean, pad, permute, reshape,
                   sigmoid, softmax, sum, tanh, transpose, unbroadcast, where)
from ..ops import softplus as _softplus
from ..ops.inplace import inplace as _inplace
from ..ops.random import standard_gumbel
from ..ops.shape import as_tensor, broadcast_to
from ..tensor import Tensor

__all__ = [
    "linear", "batch_norm", "layer_norm", "dropout", "embedding", "upsample_nearest",
    "interpolate", "relu", "leaky_relu", "sigmoid", "tanh", "softplus", "elu", "softmax",
    "log_softmax", "conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d",
    "mse_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy",
    "nll_loss", "kl_normal", "gaussian_nll_loss", "bernoulli_log_likelihood",
    "mse", "bce", "bce_with_logits", "nll", "gaussian_nll",
    "pad", "one_hot", "gumbel_softmax", "l1_loss", "smooth_l1_loss", "kl_div", "logsigmoid",
    "silu", "normalize", "cosine_similarity", "dropout2d",
    "grad_reverse", "instance_norm",
]


# ================================================================== linear
class Linear(Function):
    """y = x W^T + b for x (N, in), W (out, in), b (out,): one GEMM and one in-place add.

    dL/dx = g W,  dL/dW = g^T x,  dL/db = sum_n g  (g = dL/dy, shape (N, out)).
    """

    def forward(self, x, weight, bias=None):
        y = array_matmul(x, weight.T)  # BLAS reads the transposed view directly: no copy
        if bias is not None:
            y += bias               # broadcast over rows, in place: no second (N, out) array
        return y

    def backward(self, g):
        x, w = self.inputs[0], self.inputs[1]
        need = self.needs_input_grad
        if is_grad_enabled():  # create_graph: the products as ops, differentiable again
            gx = matmul(g, w) if need[0] else None
            gw = matmul(transpose(g), x) if need[1] else None
            gb = sum(g, dim=0) if len(need) == 3 and need[2] else None
        else:  # the same products on the arrays: no graph to record, no op per product
            gx = Tensor(array_matmul(g.data, w.data)) if need[0] else None
            gw = Tensor(array_matmul(g.data.T, x.data)) if need[1] else None
            gb = Tensor(g.data.sum(axis=0)) if len(need) == 3 and need[2] else None
        return (gx, gw) if len(self.inputs) == 2 else (gx, gw, gb)


def _same_place(op, *tensors):
    """All tensors on one device with one dtype, or an error naming the op."""
    first = tensors[0]
    for t in tensors[1:]:
        if t is None:
            continue
        if t.device != first.device:
            raise RuntimeError(f"{op}: tensors on different devices ({first.device} and "
                               f"{t.device}); move the model or the data with .to(device)")
        if t.dtype != first.dtype:
            raise TypeError(f"{op}: dtypes differ ({first.dtype} and {t.dtype}); convert the "
                            "input or the model with .float() / .double()")


def linear(input, weight, bias=None):
    """``input @ weight.T + bias`` over the last dimension of ``input`` (any leading dims)."""
    out_features, in_features = weight.shape
    if input.ndim == 0 or input.shape[-1] != in_features:
        raise ValueError(f"linear: input of shape {input.shape} does not end in {in_features} "
                         f"features, as the weight of shape {weight.shape} (out, in) expects")
    _same_place("linear", input, weight, bias)
    x2 = input if input.ndim == 2 else reshape(input, (-1, in_features))
    y = Linear.apply(x2, weight) if bias is None else Linear.apply(x2, weight, bias)
    return y if input.ndim == 2 else reshape(y, input.shape[:-1] + (out_features,))


# ================================================================== normalisation
def _moments(x, axes):
    """Mean and biased variance of the array ``x`` over ``axes`` (keepdims)."""
    xp = get_array_module(x)
    m = x.mean(axis=axes, keepdims=True)
    return m, xp.square(x - m).mean(axis=axes, keepdims=True)


def _standardize(x, axes, eps):
    """(x - mean) / sqrt(var + eps) and 1 / sqrt(var + eps) as differentiable Tensor ops."""
    centred = x - mean(x, dim=axes, keepdim=True)
    inv_std = (mean(centred * centred, dim=axes, keepdim=True) + eps) ** -0.5
    return centred * inv_std, inv_std


class Normalize(Function):
    """y = xhat * weight + bias with xhat = (x - mean) / sqrt(var + eps), the statistics taken
    over ``axes`` of x itself (batch norm: batch and space; layer norm: the feature dims).

    Because mean and var depend on every x in the group, the input gradient is not just
    g * weight / std but (Ioffe & Szegedy 2015, eq. in section 3)::

        dx = inv_std * (gh - mean(gh) - xhat * mean(gh * xhat)),   gh = g * weight

    ``mean``/``var`` are passed in (the caller needs them for running statistics).
    ``kernels``: batch norm passes ``minigen.kernels.cpu`` (Numba) or ``.cuda`` (kernels/norm.cu),
    whose fused kernels do the forward in one pass and the backward in two, instead of the
    four and eleven passes (with their temporaries) of the array code below.
    """

    def forward(self, x, weight=None, bias=None, *, axes, eps, mean, var, kernels=None):
        xp = get_array_module(x)
        self.axes, self.eps, self.kernels = axes, eps, kernels
        self.inv_std = 1.0 / xp.sqrt(var + eps)
        if kernels is not None:  # xhat and y in one pass
            self.xhat, y = kernels.batch_norm_normalize(x, mean, self.inv_std, weight, bias)
            return self.xhat if y is None else y
        self.xhat = x - mean
        self.xhat *= self.inv_std
        if weight is None:
            return self.xhat
        y = self.xhat * weight
        y += bias
        return y

    def backward(self, g):
        x = self.inputs[0]
        if self.kernels is not None and not is_grad_enabled():
            return self._fused_backward(g)
        if is_grad_enabled():
            # create_graph: rebuild xhat and inv_std from x so their dependence on x is
            # recorded too (a constant xhat would give wrong second derivatives)
            xhat, inv_std = _standardize(x, self.axes, self.eps)
        else:
            xhat, inv_std = Tensor(self.xhat), Tensor(self.inv_std)
        affine = len(self.inputs) == 3
        gh = g * self.inputs[1] if affine else g
        need = self.needs_input_grad
        gx = None
        if need[0]:
            gx = inv_std * (gh - mean(gh, dim=self.axes, keepdim=True)
                            - xhat * mean(gh * xhat, dim=self.axes, keepdim=True))
        if not affine:
            return gx
        w, b = self.inputs[1], self.inputs[2]
        gw = unbroadcast(g * xhat, w.shape) if need[1] else None
        gb = unbroadcast(g, b.shape) if need[2] else None
        return gx, gw, gb

    def _fused_backward(self, g):
        """The same three gradients from the fused kernels (Numba or kernels/norm.cu)."""
        affine = len(self.inputs) == 3
        w = self.inputs[1] if affine else None
        grads = self.kernels.batch_norm_backward(g.data, self.xhat, self.inv_std,
                                              w.data if affine else None)
        grads = [Tensor(a if i == 0 else a.reshape(w.shape)) if need else None
                 for i, (a, need) in enumerate(zip(grads, self.needs_input_grad))]
        return tuple(grads) if affine else grads[0]


def _affine_pair(weight, bias, shape, like):
    """(weight, bias) reshaped to broadcast against the input; one given alone is completed
    with a constant (ones or zeros) so the fused op has a single form."""
    if weight is None and bias is None:
        return ()
    xp = get_array_module(like.data)
    weight = Tensor(xp.ones(shape, like.dtype)) if weight is None else reshape(weight, shape)
    bias = Tensor(xp.zeros(shape, like.dtype)) if bias is None else reshape(bias, shape)
    return weight, bias


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalisation over every dimension but the channels (dim 1).

    Training: normalise with the batch's mean and biased variance, and update the
    running statistics in place, ``r = (1 - momentum) r + momentum * stat`` -- the
    running variance takes the *unbiased* batch variance, as PyTorch does.
    Evaluation: normalise with the running statistics (an affine map per channel).
    """
    if input.ndim < 2:
        raise ValueError(f"batch_norm: expected input of shape (N, C, ...), got {input.shape}")
    C = input.shape[1]
    axes = (0,) + tuple(range(2, input.ndim))
    stat_shape = (1, C) + (1,) * (input.ndim - 2)
    for name, t in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                    ("running_var", running_var)):
        if t is not None and t.shape != (C,):
            raise ValueError(f"batch_norm: {name} of shape {t.shape} does not match the "
                             f"{C} channels of input {input.shape}")
    if training:
        count = input.numel() // C
        if count <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when "
                             f"training, got input of shape {input.shape}")
        kernels = hot_loops(input.data)
        if kernels is not None:  # Numba or kernels/norm.cu: two-pass sums in float64
            m, v = (s.reshape(stat_shape) for s in kernels.batch_norm_stats(input.data))
        else:
            m, v = _moments(input.data, axes)
        if running_mean is not None:
            running_mean.data *= 1 - momentum
            running_mean.data += momentum * m.reshape(C)
        if running_var is not None:
            running_var.data *= 1 - momentum
            running_var.data += (momentum * count / (count - 1)) * v.reshape(C)
        return Normalize.apply(input, *_affine_pair(weight, bias, stat_shape, input),
                               axes=axes, eps=eps, mean=m, var=v, kernels=kernels)
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm: evaluation mode needs running_mean and running_var "
                         "(or pass training=True to use the batch statistics)")
    xp = get_array_module(input.data)
    scale = Tensor(1.0 / xp.sqrt(running_var.data + eps))
    if weight is not None:
        scale = weight * scale
    shift = Tensor(-running_mean.data) * scale
    if bias is not None:
        shift = bias + shift
    return input * reshape(scale, stat_shape) + reshape(shift, stat_shape)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalise each sample over its last ``len(normalized_shape)`` dimensions (Ba et al. 2016)."""
    normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) \
        else tuple(normalized_shape)
    k = len(normalized_shape)
    if input.shape[input.ndim - k:] != normalized_shape or input.ndim < k:
        raise ValueError(f"layer_norm: input of shape {input.shape} does not end in the "
                         f"normalized_shape {normalized_shape}")
    axes = tuple(range(input.ndim - k, input.ndim))
    m, v = _moments(input.data, axes)
    return Normalize.apply(input, *_affine_pair(weight, bias, normalized_shape, input),
                           axes=axes, eps=eps, mean=m, var=v)


# ================================================================== dropout, embedding, upsampling
def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-5):
    """Normalise each channel of each sample over its own pixels (Ulyanov et al. 2016): the
    mean and variance of x[n, c] over (H, W), so an image's contrast does not leak into the
    next one's -- the normalisation of style transfer and CycleGAN's generators.

    PyTorch's signature; running statistics (``track_running_stats=True``) are not kept here:
    only ``use_input_stats=True`` with no running buffers, the default of ``InstanceNorm2d``.
    """
    if running_mean is not None or running_var is not None or not use_input_stats:
        raise ValueError("instance_norm: running statistics are not supported; normalise "
                         "with the input's own statistics (use_input_stats=True)")
    if input.ndim < 3:
        raise ValueError(f"instance_norm: expected input of shape (N, C, ...), got {input.shape}")
    C = input.shape[1]
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.shape != (C,):
            raise ValueError(f"instance_norm: {name} of shape {t.shape} does not match the "
                             f"{C} channels of input {input.shape}")
    axes = tuple(range(2, input.ndim))
    stat_shape = (1, C) + (1,) * (input.ndim - 2)
    m, v = _moments(input.data, axes)
    return Normalize.apply(input, *_affine_pair(weight, bias, stat_shape, input),
                           axes=axes, eps=eps, mean=m, var=v)


def dropout(input, p=0.5, training=True):
    """Zero each entry with probability ``p`` and scale the rest by 1/(1-p) (inverted
    dropout: the expected value is unchanged, so evaluation needs no rescaling)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return input
    u = backend.rng(input.device).random(input.shape, dtype=input.dtype)
    mask = (u >= p).astype(input.dtype)
    if p < 1.0:
        mask *= 1.0 / (1.0 - p)
    return input * Tensor(mask)


def _index_array(indices, like, op):
    xp = get_array_module(like.data)
    idx = indices.data if isinstance(indices, Tensor) else xp.asarray(indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{op}: indices must be integers, got dtype {idx.dtype}")
    return idx


def embedding(input, weight, padding_idx=None):
    """Rows of ``weight`` picked by the integer ``input``: shape ``input.shape + (dim,)``.

    The gradient of a row used several times is the sum of its uses (scatter-add).
    The row ``padding_idx`` gets no gradient.
    """
    idx = _index_array(input, weight, "embedding")
    n = weight.shape[0]
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= n):
        bad = int(idx.min()) if int(idx.min()) < 0 else int(idx.max())
        raise IndexError(f"embedding: index {bad} is out of range for {n} embeddings")
    out = getitem(weight, idx)
    if padding_idx is not None:
        keep = Tensor((idx != padding_idx)[..., None])
        out = where(keep, out, out.detach())
    return out


def _spatial_tuple(value, n, op, name):
    t = tuple(value) if isinstance(value, (tuple, list)) else (value,) * n
    if len(t) != n:
        raise ValueError(f"{op}: {name} {value} must give one value per spatial dim ({n})")
    return t


def upsample_nearest(input, size=None, scale_factor=None):
    """Nearest-neighbour upsampling of (N, C, *spatial): output[i] = input[floor(i * in/out)].

    An integer factor is a broadcast (each pixel copied into a k x k block) and its
    gradient sums the block; other sizes gather rows with an index array.
    """
    op = "upsample_nearest"
    n_sp = input.ndim - 2
    if n_sp < 1:
        raise ValueError(f"{op}: expected input of shape (N, C, ...spatial), got {input.shape}")
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: give exactly one of size and scale_factor")
    in_sizes = input.shape[2:]
    if size is not None:
        out_sizes = tuple(int(s) for s in _spatial_tuple(size, n_sp, op, "size"))
    else:
        factors = _spatial_tuple(scale_factor, n_sp, op, "scale_factor")
        out_sizes = tuple(int(math.floor(n * f)) for n, f in zip(in_sizes, factors))
    if all(o % i == 0 for o, i in zip(out_sizes, in_sizes)):
        ks = [o // i for o, i in zip(out_sizes, in_sizes)]
        lead = input.shape[:2]
        spread = lead + tuple(d for n in in_sizes for d in (n, 1))
        blocks = lead + tuple(d for n, k in zip(in_sizes, ks) for d in (n, k))
        return reshape(broadcast_to(reshape(input, spread), blocks), lead + out_sizes)
    xp = get_array_module(input.data)
    out = input
    for axis, (n_in, n_out) in enumerate(zip(in_sizes, out_sizes)):
        src = xp.minimum(xp.floor(xp.arange(n_out) * (n_in / n_out)).astype(np.int64), n_in - 1)
        out = getitem(out, (slice(None),) * (axis + 2) + (src,))
    return out


def interpolate(input, size=None, scale_factor=None, mode="nearest"):
    """``torch.nn.functional.interpolate``; only ``mode='nearest'`` is implemented."""
    if mode != "nearest":
        raise NotImplementedError(f"interpolate: mode {mode!r} is not implemented (only 'nearest')")
    return upsample_nearest(input, size=size, scale_factor=scale_factor)


# ================================================================== activations
def _maybe_inplace(input, op, fn, inplace):
    """``fn(input)``, or -- with ``inplace=True``, as PyTorch's ``F.relu(x, inplace=True)`` --
    written into ``input`` itself (see ``minigen.ops.inplace`` for the rules)."""
    return _inplace(input, op + "_", fn) if inplace else fn(input)


def relu(input, inplace=False):
    return _maybe_inplace(input, "relu", ops.relu, inplace)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    return _maybe_inplace(input, "leaky_relu",
                          lambda x: ops.leaky_relu(x, negative_slope), inplace)


def elu(input, alpha=1.0, inplace=False):
    return _maybe_inplace(input, "elu", lambda x: ops.elu(x, alpha), inplace)


def logsigmoid(input):
    """log sigmoid(x) = -softplus(-x), stable for large |x|."""
    return -_softplus(-input)


def silu(input, inplace=False):
    """x * sigmoid(x) (the swish of Ramachandran et al. 2017)."""
    return _maybe_inplace(input, "silu", lambda x: x * sigmoid(x), inplace)


def softplus(input, beta=1.0, threshold=20.0):
    """log(1 + exp(beta x)) / beta; where beta x > threshold it is x itself (as torch)."""
    y = _softplus(input) if beta == 1 else _softplus(input * beta) / beta
    if threshold is None:
        return y
    return where((input.data * beta) > threshold, input, y)


# ================================================================== convolution and pooling
def _conv_module():
    try:
        from ..ops import conv
    except ModuleNotFoundError as e:  # pragma: no cover - only while ops/conv.py is missing
        if e.name != "minigen.ops.conv":
            raise
        raise ImportError("convolution and pooling need minigen/ops/conv.py, which is not "
                          "installed in this copy of minigen") from None
    return conv


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1):
    """2-D cross-correlation: (N, C_in, H, W) * (C_out, C_in, kh, kw) -> (N, C_out, H', W')."""
    return _conv_module().conv2d(input, weight, bias, stride=stride, padding=padding,
                                 dilation=dilation)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     dilation=1):
    """The adjoint of conv2d (weight (C_in, C_out, kh, kw)): the generator's upsampling layer."""
    return _conv_module().conv_transpose2d(input, weight, bias, stride=stride, padding=padding,
                                           output_padding=output_padding, dilation=dilation)


def max_pool2d(input, kernel_size, stride=None, padding=0):
    return _conv_module().max_pool2d(input, kernel_size, stride=stride, padding=padding)


def avg_pool2d(input, kernel_size, stride=None, padding=0):
    return _conv_module().avg_pool2d(input, kernel_size, stride=stride, padding=padding)


# ================================================================== losses
_REDUCTIONS = ("mean", "sum", "none", "batchmean")


def _check_reduction(reduction, op):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {', '.join(map(repr, _REDUCTIONS))}, "
                         f"got {reduction!r}")


def _reduced_count(shape, reduction):
    """What a reduction divides the sum of the losses by: 1 ('sum', 'none'), the number of
    elements ('mean') or the batch size, the first dimension ('batchmean')."""
    if reduction == "mean":
        return math.prod(shape)
    return shape[0] if reduction == "batchmean" and shape else 1


def _divide(total, shape, reduction):
    """The sum of the losses of an array of ``shape``, divided as ``reduction`` says."""
    return total / total.dtype.type(_reduced_count(shape, reduction))


def _reduce(loss, reduction, op):
    _check_reduction(reduction, op)
    if reduction == "mean":
        return mean(loss)
    if reduction == "sum":
        return sum(loss)
    if reduction == "batchmean":
        return sum(loss) / _reduced_count(loss.shape, reduction)
    return loss


def _target(input, target, op):
    """``target`` as a Tensor of ``input``'s float dtype and exactly its shape.

    Silent broadcasting of (N, 1) against (N,) is the classic loss bug, so a shape
    difference is an error here (PyTorch only warns).
    """
    target = as_tensor(target, like=input)
    if target.dtype != input.dtype:
        if target.dtype.kind == "f" and input.dtype.kind == "f" and target.requires_grad:
            raise TypeError(f"{op}: dtypes differ (input {input.dtype}, target {target.dtype})")
        target = Tensor(target.data.astype(input.dtype))
    if target.shape != input.shape:
        raise ValueError(f"{op}: input shape {input.shape} and target shape {target.shape} "
                         "differ (reshape one of them; losses do not broadcast)")
    return target


def mse_loss(input, target, reduction="mean"):
    """Mean squared error (input - target)^2."""
    _check_reduction(reduction, "mse_loss")
    diff = input - _target(input, target, "mse_loss")
    return _reduce(diff * diff, reduction, "mse_loss")


class BinaryCrossEntropy(Function):
    """-(t log x + (1 - t) log(1 - x)) on probabilities x, each log clamped at -100 (as torch),
    so x = 0 or 1 gives a finite loss.

    dL/dx = (x - t) / max(x (1 - x), 1e-12): also finite when a sigmoid has saturated to
    exactly 0 or 1 in float32 (a confident GAN discriminator does that).
    """

    def forward(self, x, t):
        xp = get_array_module(x)
        with np.errstate(divide="ignore"):
            log_x = xp.maximum(xp.log(x), -100.0)
            log_1mx = xp.maximum(xp.log(1 - x), -100.0)
        return -(t * log_x + (1 - t) * log_1mx)

    def backward(self, g):
        x, t = self.inputs
        gx = gt = None
        if self.needs_input_grad[0]:
            gx = g * (x - t) / clamp((1 - x) * x, min=1e-12)
        if self.needs_input_grad[1]:
            with np.errstate(divide="ignore"):
                gt = g * (clamp(log(1 - x), min=-100.0) - clamp(log(x), min=-100.0))
        return gx, gt


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """Binary cross entropy of probabilities ``input`` in [0, 1] against ``target``.

    Prefer ``binary_cross_entropy_with_logits`` on the pre-sigmoid values: it is exact
    where sigmoid rounds to 0 or 1.
    """
    op = "binary_cross_entropy"
    _check_reduction(reduction, op)
    target = _target(input, target, op)
    lo, hi = (float(input.data.min()), float(input.data.max())) if input.numel() else (0.0, 1.0)
    if not (0.0 <= lo and hi <= 1.0):
        raise ValueError(f"{op}: input values must lie in [0, 1] (probabilities), found "
                         f"[{lo:.4g}, {hi:.4g}]; for raw scores use "
                         "binary_cross_entropy_with_logits")
    loss = BinaryCrossEntropy.apply(input, target)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, op)


def _log1p_unit(u):
    """log(1 + u) for u in [0, 1], to within a few ulps (as accurate as NumPy's float32 log).

    NumPy's float32 ``log1p`` is a scalar loop, several times slower than its vectorised
    ``log``; so for float32 we take log(w) with w = 1 + u and remove the rounding error
    of w (Goldberg 1991, "What every computer scientist should know...", thm. 4):
    log1p(u) = log(w) - ((w - 1) - u) / w. Tiny u, where w rounds to 1, gives u exactly.
    """
    xp = get_array_module(u)
    if xp is not np or u.dtype != np.float32:
        return xp.log1p(u)
    w = 1 + u
    out = np.log(w)
    error = w - 1  # in place from here: each fresh temporary is a pass over memory of its own
    error -= u
    error /= w
    out -= error
    return out


class BCEWithLogits(Function):
    """BCE on logits x: -(t log sigma(x) + (1 - t) log(1 - sigma(x))), written as

        max(x, 0) - x t + log(1 + exp(-|x|))

    which never exponentiates a positive number (no overflow) and never takes log(0).
    Its derivative is simply dL/dx = sigma(x) - t, and dL/dt = -x.

    The 'sum'/'mean'/'batchmean' reduction happens inside, as in torch: the backward then
    scales by one number instead of expanding a gradient array first, and on the CPU the
    sum is one Numba pass (``kernels/cpu.py: bce_with_logits_sum``; the code below is its
    reference). sigma(x) for the backward is rebuilt from the saved e = exp(-|x|):
    sigma(x) = 1/(1+e) for x >= 0, e/(1+e) for x < 0 (under create_graph it is the
    differentiable op instead).
    """

    def forward(self, x, t, reduction):
        xp = get_array_module(x)
        self.reduction = reduction
        if cuda_for(x) is not None:  # loss and e in one pass (kernels/elementwise.cu)
            loss, self.e = cuda_for(x).bce_with_logits(x, t)
        else:
            self.e = xp.abs(x)
            xp.negative(self.e, out=self.e)
            xp.exp(self.e, out=self.e)
            k = hot_loops(x)
            if k is not None and reduction != "none":
                return _divide(k.bce_with_logits_sum(x, t, self.e), x.shape, reduction)
            # the same operations as max(x, 0) - x t + log1p(exp(-|x|)), in place where they
            # can be (128 x 784 logits, 2 threads: 550 -> 345 us)
            loss = xp.maximum(x, 0)
            loss -= x * t
            loss += _log1p_unit(self.e)
        return loss if reduction == "none" else _divide(loss.sum(), x.shape, reduction)

    def backward(self, g):
        x, t = self.inputs
        if self.reduction == "mean":
            g = g / x.numel()
        elif self.reduction == "batchmean":
            g = g / _reduced_count(x.shape, "batchmean")
        gx = gt = None
        k = hot_loops(x.data)  # one pass: Numba, or kernels/elementwise.cu
        if self.needs_input_grad[0] and k is not None and not is_grad_enabled():
            gx = Tensor(k.bce_with_logits_backward(g.data, x.data, t.data, self.e))
        elif self.needs_input_grad[0]:
            if is_grad_enabled():
                s = sigmoid(x)
            else:
                xp = get_array_module(x.data)
                s = Tensor(xp.where(x.data >= 0, 1.0, self.e) / (1 + self.e))
            gx = g * (s - t)
        if self.needs_input_grad[1]:
            gt = -(g * x)
        return gx, gt


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean",
                                     pos_weight=None):
    """Binary cross entropy on logits (numerically stable; see ``BCEWithLogits``).

    ``pos_weight`` multiplies the positive term: loss = (1 - t) x + (1 + (p - 1) t) softplus(-x).
    """
    op = "binary_cross_entropy_with_logits"
    _check_reduction(reduction, op)
    target = _target(input, target, op)
    if pos_weight is None and weight is None:
        return BCEWithLogits.apply(input, target, reduction=reduction)
    if pos_weight is None:
        loss = BCEWithLogits.apply(input, target, reduction="none")
    else:
        log_weight = (pos_weight - 1) * target + 1
        loss = (1 - target) * input + log_weight * _softplus(-input)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, op)


def _class_targets(input, target, op):
    """Integer class targets as an array of shape (N, *spatial), checked against input."""
    idx = _index_array(target, input, op)
    expected = (input.shape[0],) + input.shape[2:]
    if idx.shape != expected:
        raise ValueError(f"{op}: input of shape {input.shape} (N, C, ...) needs an integer "
                         f"target of shape {expected}, got {idx.shape}")
    return idx


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood of integer classes given log-probabilities ``input``.

    ``input`` is (N, C) or (N, C, d1, ...) (or (C,) with a scalar target); the loss of
    sample n is ``-weight[c] * input[n, c]`` with ``c = target[n]``. ``'mean'`` divides
    by the total weight of the non-ignored targets (PyTorch's weighted mean).
    """
    op = "nll_loss"
    _check_reduction(reduction, op)
    if input.ndim == 0:
        raise ValueError(f"{op}: expected input of shape (N, C, ...) or (C,), got a scalar")
    if input.ndim == 1:  # one sample: (C,) with a scalar target
        t = _index_array(target, input, op)
        loss = nll_loss(reshape(input, (1, -1)), t.reshape(1), weight, ignore_index, reduction)
        return reshape(loss, ()) if reduction == "none" else loss
    t = _class_targets(input, target, op)
    xp = get_array_module(input.data)
    C = input.shape[1]
    valid = t != ignore_index
    bad = valid & ((t < 0) | (t >= C))
    if bool(bad.any()):
        raise IndexError(f"{op}: target {int(t[bad].reshape(-1)[0])} is out of range for "
                         f"{C} classes")
    logp = input if input.ndim == 2 else permute(input, 0, *range(2, input.ndim), 1)
    flat_t = xp.where(valid, t, 0).reshape(-1)
    picked = getitem(reshape(logp, (-1, C)), (xp.arange(flat_t.size), flat_t))
    plain = weight is None and bool(valid.all())
    if plain:
        loss = -picked
    else:
        w = valid.reshape(-1).astype(input.dtype)
        if weight is not None:
            w = w * (weight.data if isinstance(weight, Tensor) else xp.asarray(weight))[flat_t]
        loss = -picked * Tensor(w.astype(input.dtype))
    loss = reshape(loss, t.shape)
    if reduction == "mean" and not plain:
        return sum(loss) / Tensor(w.sum(dtype=input.dtype))
    return _reduce(loss, reduction, op)


def _is_float(values):
    data = values.data if isinstance(values, Tensor) else values
    dtype = data.dtype if hasattr(data, "dtype") else np.asarray(data).dtype
    return dtype.kind == "f"


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Cross entropy from unnormalised scores (logits): ``nll_loss(log_softmax(input, 1), target)``.

    ``target`` holds integer class indices, or class probabilities of ``input``'s shape
    (soft labels), in which case the loss of a sample is ``-sum_c w_c p_c log q_c``.
    """
    op = "cross_entropy"
    _check_reduction(reduction, op)
    class_dim = 0 if input.ndim == 1 else 1
    logp = log_softmax(input, dim=class_dim)
    if not _is_float(target):
        return nll_loss(logp, target, weight, ignore_index, reduction)
    target = _target(input, target, op)
    terms = target * logp
    if weight is not None:
        w_shape = (-1,) + (1,) * (input.ndim - 1 - class_dim)
        terms = terms * reshape(as_tensor(weight, like=input), w_shape)
    loss = -sum(terms, dim=class_dim)
    return _reduce(loss, reduction, op)


def kl_normal(mu, logvar, reduction="sum"):
    """KL( N(mu, diag(exp(logvar))) || N(0, I) ) in closed form (Kingma & Welling 2014, app. B)::

        KL = -1/2 * sum_j (1 + logvar_j - mu_j^2 - exp(logvar_j))

    Arguments: the encoder's mean ``mu`` and its LOG-variance ``logvar`` (not sigma, not
    the variance), both of shape (N, latent_dim).

    ``reduction``: ``'none'`` gives the elementwise terms (shape of mu); ``'sum'`` (the
    default, as in the classic VAE code) sums over everything -- batch and latent dims;
    ``'batchmean'`` sums and divides by N, i.e. the per-sample KL averaged over the
    batch; ``'mean'`` is the mean over every element.
    """
    op = "kl_normal"
    _check_reduction(reduction, op)
    if mu.shape != logvar.shape:
        raise ValueError(f"{op}: mu shape {mu.shape} and logvar shape {logvar.shape} differ")
    terms = -0.5 * (1 + logvar - mu * mu - exp(logvar))
    return _reduce(terms, reduction, op)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """Gaussian negative log-likelihood, exactly ``torch.nn.functional.gaussian_nll_loss``::

        loss = 1/2 (log(max(var, eps)) + (input - target)^2 / max(var, eps))
               [+ 1/2 log(2 pi) if full]

    ``var`` (variances, not log-variances) has input's shape, or one dimension fewer, or
    a size-1 dimension where input has more (one variance shared), or is a float.
    As in torch the clamp at ``eps`` is done without gradient: the gradient flows to
    ``var`` as if it were not clamped.
    """
    op = "gaussian_nll_loss"
    _check_reduction(reduction, op)
    target = _target(input, target, op)
    xp = get_array_module(input.data)
    if not isinstance(var, Tensor):
        if float(var) < 0:
            raise ValueError(f"{op}: var has negative entry/entries ({var})")
        var = Tensor(xp.full(input.shape, float(var), dtype=input.dtype))
    elif bool((var.data < 0).any()):
        raise ValueError(f"{op}: var has negative entry/entries")
    if var.shape != input.shape:
        if input.shape[:-1] == var.shape:
            var = reshape(var, var.shape + (1,))
        elif var.ndim != input.ndim or builtins.sum(
                b for a, b in zip(input.shape, var.shape) if a != b) != 1:
            raise ValueError(f"{op}: var of shape {var.shape} does not fit input of shape "
                             f"{input.shape}")
    # clamp without gradient: value max(var, eps), derivative 1 (torch's no_grad clamp_)
    var = var + Tensor(xp.maximum(var.data, eps) - var.data)
    diff = input - target
    loss = 0.5 * (log(var) + diff * diff / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction, op)


def bernoulli_log_likelihood(logits, target, reduction="sum"):
    """log p(target | logits) for independent Bernoulli pixels: sum t log p + (1-t) log(1-p)
    with p = sigmoid(logits) -- the reconstruction term of a VAE's ELBO on binary(ised)
    images. It is ``-binary_cross_entropy_with_logits``; higher is better.

    ``reduction`` as ``kl_normal`` (default ``'sum'``), so that
    ``bernoulli_log_likelihood(logits, x) - kl_normal(mu, logvar)`` is the ELBO of the
    batch and the same with ``reduction='batchmean'`` is its per-sample average.
    """
    return -binary_cross_entropy_with_logits(logits, target, reduction=reduction)


# short names used in the issue and the lectures
mse = mse_loss
bce = binary_cross_entropy
bce_with_logits = binary_cross_entropy_with_logits
nll = nll_loss
gaussian_nll = gaussian_nll_loss


# ================================================================== more losses
def l1_loss(input, target, reduction="mean"):
    """Mean absolute error |input - target|."""
    return _reduce((input - _target(input, target, "l1_loss")).abs(), reduction, "l1_loss")


def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    """Huber-like loss: 0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (torch's)."""
    d = (input - _target(input, target, "smooth_l1_loss")).abs()
    if beta == 0:
        return _reduce(d, reduction, "smooth_l1_loss")
    loss = where(Tensor(d.data < beta), 0.5 * d * d / beta, d - 0.5 * beta)
    return _reduce(loss, reduction, "smooth_l1_loss")


def kl_div(input, target, reduction="mean", log_target=False):
    """KL(target || q) with ``input`` = log q (log-probabilities), as ``torch.nn.functional
    .kl_div``: pointwise ``target * (log target - input)``; use ``reduction='batchmean'`` for
    the true KL per sample ('mean' divides by every element, PyTorch's default)."""
    target = _target(input, target, "kl_div")
    if log_target:
        loss = exp(target) * (target - input)
    else:  # t log t is taken as 0 where t = 0
        log_t = log(where(Tensor(target.data > 0), target, 1.0))
        loss = target * (log_t - input)
    return _reduce(loss, reduction, "kl_div")


# ================================================================== vectors
def normalize(input, p=2.0, dim=1, eps=1e-12):
    """x / max(||x||_p, eps) along ``dim`` (unit vectors)."""
    n = ops.norm(input, p, dim=dim, keepdim=True)
    return input / ops.clamp(n, min=eps)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """<x1, x2> / (max(||x1||, eps) max(||x2||, eps)) along ``dim``."""
    n1 = ops.clamp(ops.norm(x1, dim=dim), min=eps)
    n2 = ops.clamp(ops.norm(x2, dim=dim), min=eps)
    return sum(x1 * x2, dim=dim) / (n1 * n2)


def dropout2d(input, p=0.5, training=True):
    """Zero whole channels (N, C, H, W) with probability ``p``, scale the rest by 1/(1-p)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout2d: probability p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return input
    if input.ndim not in (3, 4):
        raise ValueError(f"dropout2d: expected (N, C, H, W) or (C, H, W), got {input.shape}")
    shape = input.shape[:-2] + (1, 1)
    u = backend.rng(input.device).random(shape, dtype=input.dtype)
    mask = (u >= p).astype(input.dtype)
    if p < 1.0:
        mask *= 1.0 / (1.0 - p)
    return input * Tensor(mask)


# ================================================================== categorical
def one_hot(tensor, num_classes=-1):
    """Integer class indices (any shape) -> int64 one-hot vectors along a new last dim of
    length ``num_classes`` (the largest index + 1 when -1), as ``torch.nn.functional.one_hot``."""
    idx = _index_array(tensor, tensor if isinstance(tensor, Tensor) else Tensor(
        np.asarray(tensor)), "one_hot")
    xp = get_array_module(idx)
    if num_classes == -1:
        num_classes = int(idx.max()) + 1 if idx.size else 0
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= num_classes):
        raise ValueError(f"one_hot: class values must lie in 0..{num_classes - 1}, found "
                         f"{int(idx.min())}..{int(idx.max())}")
    return Tensor(xp.eye(num_classes, dtype=np.int64)[idx])


def gumbel_softmax(logits, tau=1.0, hard=False, eps=1e-10, dim=-1, *, noise=None):
    """A differentiable sample of a categorical distribution (Jang, Gu & Poole 2017;
    Maddison, Mnih & Teh 2017), with PyTorch's signature::

        y = softmax((logits + g) / tau),   g ~ Gumbel(0, 1) i.i.d.

    ``logits`` are unnormalised log-probabilities (log p up to a constant). As tau -> 0, y
    approaches the one-hot vector of argmax(logits + g), which is distributed exactly as
    softmax(logits) (the Gumbel-max trick). ``hard=True`` returns that one-hot vector while
    the gradient is the soft sample's (straight-through: ``y_hard - y.detach() + y``).

    ``noise`` fixes g (a tensor of ``logits``' shape, e.g. from ``ops.standard_gumbel``) so
    tests and exercises are repeatable; by default it is drawn from minigen's generator.
    ``eps`` is accepted for PyTorch's signature (it is unused there too).
    """
    if tau <= 0:
        raise ValueError(f"gumbel_softmax: tau must be positive, got {tau}")
    if noise is None:
        noise = standard_gumbel(logits.shape, dtype=logits.dtype, device=logits.device)
    elif noise.shape != logits.shape:
        raise ValueError(f"gumbel_softmax: noise of shape {noise.shape} for logits of shape "
                         f"{logits.shape}")
    y = softmax((logits + noise) / tau, dim=dim)
    if not hard:
        return y
    xp = get_array_module(y.data)
    axis = dim % y.ndim
    index = xp.expand_dims(y.data.argmax(axis=axis), axis)
    positions = xp.arange(y.shape[axis]).reshape([-1 if k == axis else 1 for k in range(y.ndim)])
    y_hard = Tensor((positions == index).astype(y.dtype))
    return y_hard - y.detach() + y


# ================================================================== gradient reversal
class GradReverse(Function):
    """The gradient reversal layer of Ganin & Lempitsky 2015 (section 3.2, "R_lambda"; seed
    003, "Доменная адаптация"):

        forward:  R(x) = x                 backward:  dR/dx = -lambda I

    Put between a feature extractor and a domain classifier, one backward pass trains the
    classifier to *tell* the domains apart (its own gradient is untouched) while the
    features receive the *reversed* gradient, -lambda dL_d/df, and move to make the domains
    indistinguishable. That is the saddle point of E = L_y - lambda L_d (their eq. 1)
    reached with an ordinary optimizer on L_y + L_d(R(f)), instead of two alternating ones.

    The forward returns a view of x (as torch's ``view_as``): no copy. The backward is a
    Tensor op (a product with the constant -lambda), so the layer is differentiable again:
    its second derivative is zero, and a gradient through it can itself be differentiated.
    """

    def forward(self, x, lambda_):
        self.lambda_ = lambda_
        return x.view()

    def backward(self, g):
        return g * -self.lambda_


def grad_reverse(input, lambda_=1.0):
    """Identity on the way forward; the gradient is multiplied by ``-lambda_`` on the way
    back (``GradReverse``). ``lambda_`` is a number (DANN anneals it from 0 to 1 during
    training, ``minigen.models.dann.grl_lambda``); ``lambda_=0`` passes zero gradients."""
    lambda_ = float(lambda_)
    if not math.isfinite(lambda_):
        raise ValueError(f"grad_reverse: lambda_ must be a finite number, got {lambda_}")
    return GradReverse.apply(input, lambda_=lambda_)
