"""Activations and the softmax family, each numerically stable where it matters."""
from ..autograd import Function
from ..backend import get_array_module
from ..kernels import hot_loops
from .elementwise import _constant, _python_scalar, exp
from .reduce import _axes, sum


class Sigmoid(Function):
    def forward(self, a):
        # sigma(x) = 1 / (1 + e^-x) for x >= 0 and e^x / (1 + e^x) for x < 0: one formula
        # per side keeps the exponent <= 0, so nothing overflows, and the left tail keeps its
        # relative accuracy (sigma(-40) = 4.2e-18, where 1 - ... or (1 + tanh(x/2)) / 2 give 0)
        xp = get_array_module(a)
        e = xp.exp(-xp.abs(a))
        return xp.where(a >= 0, 1, e) / (1 + e)

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
        k = hot_loops(a)
        if k is not None and hasattr(k, "relu"):  # one pass on every thread (kernels/cpu.py);
            return k.relu(a)  # on a GPU CuPy's maximum below is one pass already
        return get_array_module(a).maximum(a, 0)

    def backward(self, g):
        # relu'(x) = 1 for x > 0, else 0 (relu'(0) = 0, as torch): the leaky form with slope 0
        return LeakyReLUBackward.apply(g, x=self.inputs[0].data, slope=0.0)


class LeakyReLU(Function):
    def forward(self, a, negative_slope):
        self.slope = negative_slope
        k = hot_loops(a)
        if k is not None:  # one pass: Numba (kernels/cpu.py) or CUDA (kernels/elementwise.cu)
            return k.leaky_relu(a, negative_slope)
        return get_array_module(a).where(a > 0, a, a * negative_slope)

    def backward(self, g):
        return LeakyReLUBackward.apply(g, x=self.inputs[0].data, slope=self.slope)


class LeakyReLUBackward(Function):
    """dx = g * (1 where x > 0, else slope): the backward of (leaky) ReLU as one op, one pass
    with the kernels (the array code below makes the mask, casts it, then multiplies).

    Linear in g and diagonal, so it is its own adjoint: its backward is itself with the same
    x (held fixed -- the derivative of the step x > 0 is 0 almost everywhere), which is what
    a gradient of a gradient through a ReLU needs."""

    def forward(self, g, x, slope):
        self.x, self.slope = x, slope
        k = hot_loops(g)
        if k is not None:
            return k.leaky_relu_backward(g, x, slope)
        xp = get_array_module(g)
        return g * xp.where(x > 0, 1.0, slope).astype(g.dtype)

    def backward(self, gg):
        return LeakyReLUBackward.apply(gg, x=self.x, slope=self.slope)


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
        # elu'(x) = 1 for x > 0, alpha e^x otherwise -- computed as such: elu(x) + alpha is
        # the same number in exact arithmetic but cancels to 0 for x << 0 (elu'(-80) = 1.8e-35).
        # exp(x * neg) is e^x where x <= 0 and 1 elsewhere, so it never overflows.
        x = self.inputs[0]
        neg = _constant(x.data <= 0, g)
        return g * (1 - neg + neg * (self.alpha * exp(x * neg)))


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
    return LeakyReLU.apply(x, negative_slope=_python_scalar(negative_slope))


def softplus(x):
    return Softplus.apply(x)


def elu(x, alpha=1.0):
    return ELU.apply(x, alpha=_python_scalar(alpha))


def softmax(x, dim=-1):
    return Softmax.apply(x, axis=_axes(dim, x.ndim, "softmax")[0])


def log_softmax(x, dim=-1):
    return LogSoftmax.apply(x, axis=_axes(dim, x.ndim, "log_softmax")[0])
