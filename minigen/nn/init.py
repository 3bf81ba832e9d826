"""Weight initialisation, in place, with PyTorch's names and formulas (``torch.nn.init``).

Why the scale matters: a layer with ``fan_in`` inputs of unit variance and weights of
variance ``s^2`` gives outputs of variance ``fan_in * s^2``. Keeping that near 1, layer
after layer, keeps activations and gradients from exploding or vanishing:

* Glorot/Xavier (tanh/sigmoid nets): ``Var w = gain^2 * 2 / (fan_in + fan_out)``
* He/Kaiming (ReLU nets, ReLU halves the variance): ``Var w = gain^2 / fan``
* DCGAN (Radford et al. 2015): every weight ~ N(0, 0.02), batch-norm scale ~ N(1, 0.02).

A uniform distribution on [-b, b] has variance b^2 / 3, hence the sqrt(3) factors below.
All draws come from ``minigen.backend.rng``, so ``minigen.manual_seed`` makes them repeatable.
"""
import math

from ..autograd import no_grad
from ..tensor import Tensor


def calculate_gain(nonlinearity, param=None):
    """The factor that restores unit variance after ``nonlinearity`` (torch's table)."""
    linear = ("linear", "identity", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
              "conv_transpose2d", "conv_transpose3d", "sigmoid")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(tensor):
    """fan_in = in_features * kernel area, fan_out = out_features * kernel area.

    Dimension 1 counts as 'in' and dimension 0 as 'out', as in torch -- also for a
    ConvTranspose2d weight (in, out, kh, kw), so both libraries give it the same scale.
    """
    if tensor.ndim < 2:
        raise ValueError(f"init: fan in and fan out need a tensor with at least 2 dimensions, "
                         f"got shape {tensor.shape}")
    receptive = 1
    for n in tensor.shape[2:]:
        receptive *= n
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _fan(tensor, mode):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"init: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


# ------------------------------------------------------------------ basic fills
def _view(target):
    """A Tensor sharing ``target``'s memory: PyTorch code passes ``p.data``, which is the
    array itself here (``nn.init.normal_(m.weight.data, 0, 0.02)`` fills the weight)."""
    return target if isinstance(target, Tensor) else Tensor(target)


def uniform_(tensor, a=0.0, b=1.0):
    """Fill with U(a, b) (``Tensor.uniform_``)."""
    with no_grad():
        _view(tensor).uniform_(a, b)
    return tensor


def normal_(tensor, mean=0.0, std=1.0):
    """Fill with N(mean, std^2) (``Tensor.normal_``)."""
    with no_grad():
        _view(tensor).normal_(mean, std)
    return tensor


def constant_(tensor, val):
    with no_grad():
        _view(tensor).fill_(val)
    return tensor


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


# ------------------------------------------------------------------ scaled schemes
def xavier_uniform_(tensor, gain=1.0):
    """U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor, gain=1.0):
    """N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


glorot_uniform_ = xavier_uniform_
glorot_normal_ = xavier_normal_


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """U(-b, b) with b = sqrt(3) * gain / sqrt(fan) (He et al. 2015).

    ``a`` is the negative slope of the leaky ReLU that follows. Linear and Conv2d use
    ``a = sqrt(5)`` by default, which gives b = 1 / sqrt(fan_in) (PyTorch's default).
    """
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """N(0, std^2) with std = gain / sqrt(fan)."""
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return normal_(tensor, 0.0, std)


he_uniform_ = kaiming_uniform_
he_normal_ = kaiming_normal_


# ------------------------------------------------------------------ whole-model recipes
def dcgan_init_(module, std=0.02):
    """DCGAN's initialisation for every layer of ``module`` (recursively); returns it.

    Conv, ConvTranspose and Linear weights ~ N(0, std^2), their biases 0; batch-norm
    scales ~ N(1, std^2) and shifts 0 (Radford, Metz & Chintala 2015, section 4).
    """
    from .layers import BatchNorm1d, BatchNorm2d, Conv2d, ConvTranspose2d, Linear

    for m in module.modules():
        if isinstance(m, (Conv2d, ConvTranspose2d, Linear)):
            normal_(m.weight, 0.0, std)
            if m.bias is not None:
                zeros_(m.bias)
        elif isinstance(m, (BatchNorm1d, BatchNorm2d)) and m.weight is not None:
            normal_(m.weight, 1.0, std)
            zeros_(m.bias)
    return module
