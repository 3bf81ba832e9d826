"""Random sampling: Bernoulli, categorical (multinomial), normal, exponential draws.

All draws come from minigen's seeded generator (``minigen.manual_seed``), on the device of
their input. None of them is differentiable: a sample is a constant. (Gradients through
sampling come from reparameterisation -- ``z = mu + sigma * eps`` in the VAE, the
Gumbel-softmax of ``nn.functional.gumbel_softmax`` -- not from these functions.)
"""
import numpy as np

from .. import backend
from ..backend import get_array_module
from ..tensor import Tensor, _dtype, _shape


def _probabilities(p, op):
    data = p.data if isinstance(p, Tensor) else np.asarray(p)
    if data.dtype.kind != "f":
        raise TypeError(f"{op}: probabilities must be a float tensor, got {data.dtype}")
    return data


def bernoulli(input, p=None):
    """0/1 samples, 1 with probability ``input`` (entrywise), of ``input``'s dtype.
    ``bernoulli(x, p)`` uses the number ``p`` for every entry instead."""
    probs = _probabilities(input, "bernoulli")
    if p is not None:
        probs = get_array_module(probs).full(probs.shape, p, dtype=probs.dtype)
    xp = get_array_module(probs)
    if bool(((probs < 0) | (probs > 1) | xp.isnan(probs)).any()):
        raise ValueError("bernoulli: probabilities must lie in [0, 1]")
    u = backend.rng(backend.device_of(probs)).random(probs.shape, dtype=probs.dtype)
    return Tensor((u < probs).astype(probs.dtype))


def multinomial(input, num_samples, replacement=False):
    """Category indices drawn with probabilities proportional to the rows of ``input``
    ((C,) -> (num_samples,), (N, C) -> (N, num_samples)); without replacement no index
    repeats within a row. int64, as ``torch.multinomial``."""
    weights = backend.to_numpy(_probabilities(input, "multinomial")).astype(np.float64)
    rows = weights.reshape(-1, weights.shape[-1]) if weights.ndim else None
    if rows is None or weights.ndim > 2:
        raise ValueError(f"multinomial: expected a 1-D or 2-D tensor of weights, got "
                         f"shape {weights.shape}")
    if (rows < 0).any() or not np.isfinite(rows).all() or (rows.sum(1) <= 0).any():
        raise ValueError("multinomial: weights must be finite, non-negative and have a "
                         "positive sum in every row")
    if not replacement and num_samples > (rows > 0).sum(1).min():
        raise ValueError(f"multinomial: cannot draw {num_samples} samples without replacement "
                         f"from a row with fewer non-zero weights")
    gen = backend.rng("cpu")
    out = np.stack([gen.choice(len(r), size=num_samples, replace=replacement, p=r / r.sum())
                    for r in rows]).astype(np.int64)
    out = out.reshape(weights.shape[:-1] + (num_samples,))
    return Tensor(backend.to_device(out, backend.device_of(getattr(input, "data", input))))


def normal(mean=0.0, std=1.0, size=None, dtype=None, device=None):
    """Normal samples: ``normal(mean, std, size)`` with numbers, or tensors ``mean``/``std``
    (broadcast together) giving one sample per entry, as ``torch.normal``."""
    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        like = mean if isinstance(mean, Tensor) else std
        m = mean.data if isinstance(mean, Tensor) else mean
        s = std.data if isinstance(std, Tensor) else std
        shape = get_array_module(like.data).broadcast_shapes(np.shape(m), np.shape(s))
        z = backend.rng(like.device).standard_normal(shape, dtype=like.dtype)
        return Tensor(m + s * z)
    if size is None:
        raise TypeError("normal: with numbers for mean and std, give the size")
    size = (size,) if isinstance(size, int) else _shape((size,))
    z = backend.rng(device or "cpu").standard_normal(size, dtype=_dtype(dtype))
    return Tensor(mean + std * z)


def standard_gumbel(shape, dtype=None, device="cpu", generator=None):
    """Gumbel(0, 1) samples g = -log(E), E ~ Exponential(1) (the noise of the Gumbel-max
    trick: argmax(log p + g) is distributed as p). ``generator``: a NumPy (or CuPy) Generator
    to draw from instead of minigen's (evaluation noise that leaves the training stream alone).

    A float32 exponential sample is exactly 0 with probability about 2^-24 (a categorical VAE
    draws millions per epoch): its g would be +inf and the softmax of it NaN. E is floored at
    the smallest normal number, which makes that g large (87 in float32) but finite."""
    gen = backend.rng(device) if generator is None else generator
    e = gen.standard_exponential(tuple(shape), dtype=_dtype(dtype))
    xp = get_array_module(e)
    return Tensor(-xp.log(xp.maximum(e, xp.finfo(e.dtype).tiny)))
