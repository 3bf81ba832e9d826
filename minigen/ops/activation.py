"""Activations and the softmax family, each numerically stable where it matters."""
from ..autograd import Function
from ..backend import get_array_module
from .elementwise import _constant
from .reduce import _axes, sum


class Sigmoid(Function):
    def forward(self, a):
        # sigma(x) = (1 + tanh(x/2)) / 2: the same function, but no exp() to overflow
        return (get_array_module(a).tanh(a * 0.5) + 1) * 0.5

    def backward(self, g):
        s = self.output
        return g * s * (1 - s)  # sigma' = sigma (1 - sigma)


class Tanh(Function):
    def forward(self, a):
        return get_array_module(a).tanh(a)

    def backward(self, g):
        t = self.output
        return g * (1 - t * t)


class ReLU(Function):
    def forward(self, a):
        return get_array_module(a).maximum(a, 0)

    def backward(self, g):
        return g * _constant(self.inputs[0].data > 0, g)  # relu'(0) = 0, as torch


class LeakyReLU(Function):
    def forward(self, a, negative_slope):
        self.slope = negative_slope
        return get_array_module(a).where(a > 0, a, a * negative_slope)

    def backward(self, g):
        xp = get_array_module(g.data)
        return g * _constant(xp.where(self.inputs[0].data > 0, 1.0, self.slope), g)


class Softplus(Function):
    def forward(self, a):
        xp = get_array_module(a)
        # log(1 + e^x) = max(x, 0) + log1p(e^-|x|): exact, and e^-|x| <= 1 never overflows
        return xp.maximum(a, 0) + xp.log1p(xp.exp(-xp.abs(a)))

    def backward(self, g):
        return g * sigmoid(self.inputs[0])  # softplus' = sigmoid


class ELU(Function):
    def forward(self, a, alpha):
        xp = get_array_module(a)
        self.alpha = alpha
        return xp.where(a > 0, a, alpha * xp.expm1(xp.minimum(a, 0)))

    def backward(self, g):
        # elu'(x) = 1 for x > 0, alpha e^x = elu(x) + alpha otherwise
        pos = _constant(self.inputs[0].data > 0, g)
        return g * (pos + (1 - pos) * (self.output + self.alpha))


class Softmax(Function):
    def forward(self, a, axis):
        xp = get_array_module(a)
        self.axis = axis
        e = xp.exp(a - a.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)

    def backward(self, g):
        s = self.output  # Jacobian-vector product: s * (g - <g, s>)
        return s * (g - sum(g * s, dim=self.axis, keepdim=True))


class LogSoftmax(Function):
    def forward(self, a, axis):
        xp = get_array_module(a)
        self.axis = axis
        shifted = a - a.max(axis=axis, keepdims=True)
        return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))

    def backward(self, g):
        return g - self.output.exp() * sum(g, dim=self.axis, keepdim=True)


def sigmoid(x):
    return Sigmoid.apply(x)


def tanh(x):
    return Tanh.apply(x)


def relu(x):
    return ReLU.apply(x)


def leaky_relu(x, negative_slope=0.01):
    return LeakyReLU.apply(x, negative_slope=negative_slope)


def softplus(x):
    return Softplus.apply(x)


def elu(x, alpha=1.0):
    return ELU.apply(x, alpha=alpha)


def softmax(x, dim=-1):
    return Softmax.apply(x, axis=_axes(dim, x.ndim)[0])


def log_softmax(x, dim=-1):
    return LogSoftmax.apply(x, axis=_axes(dim, x.ndim)[0])
