"""The differentiable rungs of the ladder: from one-line backwards to the seeds' ideas.

Each exercise names the library code that answers it (the solution is that code, see
``source.py``), the formula and where it comes from, and how its entry point is checked:
fixed shapes first, then a hypothesis sweep over shapes, memory layouts and the op's
arguments (the strategies of ``minigen.testing``, mapped to the arguments the library's
Functions take), then PyTorch.
"""
import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ..models import vae
from ..models.gan import losses as gan_losses
from ..nn import functional as F
from ..ops import activation, conv, elementwise, linalg, reduce, shape
from ..testing import (binary, conv2d_inputs, distinct_values, laid_out, matmul_inputs, noise,
                       pool_inputs, reduction, shapes, unary, values, with_noise)
from . import solutions
from .exercise import Exercise, OpPart
from .source import Lib, Text

BACKPROP = ("seed 000, slide \"Обучение GANов обратным распространением ошибки\" (every "
            "network here is trained by back-propagation); Goodfellow, Bengio & Courville, "
            "Deep Learning (2016), section 6.5")


def _torch():
    import torch
    return torch


# ------------------------------------------------------------------ strategies for the sweeps
def _with_axes(strategy):
    """``reduction`` draws ``dim`` as a user writes it (None, -1, (0, 2)); the reduce Functions
    take it normalised: ``axes`` a sorted tuple of non-negative dims."""
    def to_axes(example):
        (x,), kw = example
        return (x,), {"axes": reduce._axes(kw["dim"], x.ndim), "keepdim": kw["keepdim"]}
    return strategy.map(to_axes)


def _with_axis(strategy):
    """One axis (softmax's ``axis``), from ``reduction(single=True)``."""
    return strategy.map(lambda ex: (ex[0], {"axis": ex[1]["dim"] % ex[0][0].ndim}))


def conv_geometry(x_shape, w_shape, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
    """conv2d's window geometry for these shapes, as ``minigen.ops.conv2d`` builds it."""
    kernel = tuple(w_shape[2:])
    out = tuple(conv.conv_output_size(*a) for a in
                zip(x_shape[2:], kernel, stride, padding, dilation))
    return conv.Geometry(kernel, tuple(stride), tuple(padding), tuple(dilation),
                         tuple(x_shape[2:]), out)


def _conv_geometries(example):
    (x, w), kw = example
    return (x, w), {"geom": conv_geometry(x.shape, w.shape, kw["stride"], kw["padding"],
                                          kw["dilation"])}


def _pool_geometries(example):
    (x,), kw = example
    return (x,), {"geom": conv._pool_geometry(x, kw["kernel_size"], kw["stride"],
                                             kw["padding"], "max_pool2d")}


@st.composite
def _same_shape(draw, n, **kw):
    """``n`` arrays of one drawn shape (mu and logvar), and keywords drawn from ``kw``."""
    shape = draw(shapes(min_dims=1))
    arrays = tuple(draw(laid_out(draw(values(shape)))) for _ in range(n))
    return arrays, {k: draw(v) for k, v in kw.items()}


@st.composite
def _layer_norm_inputs(draw):
    lead = draw(shapes(min_dims=1, max_dims=2, max_side=3))
    d = draw(st.integers(2, 5))
    x = draw(laid_out(draw(distinct_values(lead + (d,)))))
    w, b = (draw(laid_out(draw(values((d,))))) for _ in range(2))
    return (x, w, b), {"eps": draw(st.sampled_from([1e-5, 0.1]))}


@st.composite
def _bce_inputs(draw):
    shape = draw(shapes(min_dims=1))
    x = draw(laid_out(draw(values(shape))))
    t = draw(laid_out(draw(hnp.arrays(np.float64, shape, elements=st.floats(0.0, 1.0)))))
    return (x, t), {"reduction": draw(st.sampled_from(["mean", "sum", "none"]))}


@st.composite
def _critic_inputs(draw):
    """A small critic's weights (N examples of D features, H hidden units) and the fixed
    noise of the penalty: real and fake batches, and the interpolation weights alpha."""
    n, d, h = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    # nonzero weights: at a zero gradient the norm has no derivative (torch takes 0 there)
    w1 = draw(laid_out(draw(values((d, h), "nonzero"))))
    w2 = draw(laid_out(draw(values((h, 1), "nonzero"))))
    fixed = [draw(noise((n, d))), draw(noise((n, d))), draw(noise((n, 1), "uniform"))]
    return (w1, w2), {}, fixed


# ------------------------------------------------------------------ adapters and twins
def critic_penalty_of(gradient_penalty):
    """The gradient penalty of the critic f(x) = tanh(x w1) w2 as a function of its weights,
    the inputs gradcheck differentiates (real, fake and alpha are held fixed)."""
    def critic_penalty(w1, w2, real, fake, alpha):
        return gradient_penalty(lambda x: (x @ w1).tanh() @ w2, real, fake, alpha=alpha)
    return critic_penalty


def _torch_penalty():
    torch = _torch()

    def penalty(w1, w2, real, fake, alpha):
        x_hat = (alpha * real + (1 - alpha) * fake).detach().requires_grad_(True)
        scores = torch.tanh(x_hat @ w1) @ w2
        g, = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
        return 10.0 * ((g.reshape(len(g), -1).norm(dim=1) - 1) ** 2).mean()
    return penalty


def gumbel_with_noise_of(gumbel_softmax):
    """Gumbel-softmax with its noise as the second positional input (check_op passes fixed
    noise after the differentiable inputs); the library's signature takes it by keyword."""
    def gumbel_softmax_with_noise(logits, gumbel_noise, tau=1.0, hard=False):
        return gumbel_softmax(logits, tau=tau, hard=hard, noise=gumbel_noise)
    return gumbel_softmax_with_noise


def _torch_kl():
    torch = _torch()

    def kl(mu, logvar, reduction="sum"):
        terms = -0.5 * (1 + logvar - mu * mu - torch.exp(logvar))
        return {"none": terms, "sum": terms.sum(), "mean": terms.mean(),
                "batchmean": terms.sum() / mu.shape[0]}[reduction]
    return kl


def _fixed_bce(rng):
    return [rng.standard_normal((3, 4)), rng.uniform(0.0, 1.0, (3, 4))]


def _fixed_penalty_noise(rng):
    return [rng.standard_normal((3, 2)), rng.standard_normal((3, 2)), rng.uniform(0, 1, (3, 1))]


LSE_EXTREMES = np.array([[1000.0, 999.0, 998.5, 1001.0], [-1000.0, -1001.0, -999.0, -1000.5],
                         [0.5, -700.0, 710.0, 2.0]])


# ------------------------------------------------------------------ the exercises
def elementwise_exercises():
    return [
        Exercise(
            name="sigmoid", title="the logistic sigmoid", writes="Sigmoid.backward",
            statement="""
                The sigmoid turns a logit into a probability:

                    sigma(x) = 1 / (1 + e^(-x)),        d sigma / dx = sigma(x) (1 - sigma(x))

                The forward is given (one formula for each sign of x, so no exponent is
                positive and nothing overflows). Write the backward: given grad = dL/dsigma,
                return dL/dx. Write it with Tensor operations, not NumPy on .data: then the
                backward can itself be differentiated, which gradgradcheck checks.""",
            source="seed 002, slide \"Идея РВМ\": P(h_k = 1 | v) = sigma(-b - sum_i v_i w_ik); "
                   "Goodfellow, Bengio & Courville, Deep Learning (2016), section 6.5",
            hint="self.output is sigma(x), already computed: the derivative needs nothing else.",
            stub=[Lib(activation.Sigmoid, {"backward": "return grad * d sigma/dx, a Tensor "
                                                       "expression in self.output"})],
            solution=[Lib(activation.Sigmoid)],
            parts=[OpPart("Sigmoid", activation.Sigmoid, [(3, 4)], sweep=unary("smooth"),
                          torch=lambda: _torch().sigmoid)]),
        Exercise(
            name="tanh", title="the hyperbolic tangent", writes="Tanh.backward",
            statement="""
                DCGAN's generator ends in tanh, so its images lie in (-1, 1):

                    tanh(x) = (e^x - e^-x) / (e^x + e^-x),        d tanh / dx = 1 - tanh(x)^2

                The forward is given; write the backward with Tensor operations.""",
            source="seed 000, slide \"DCGAN\" (\"ReLU в генераторе на всех слоях и tanh на "
                   "выходе\"); Radford, Metz & Chintala 2016",
            hint="as for the sigmoid, the derivative is a function of the output (self.output).",
            stub=[Lib(activation.Tanh, {"backward": "return grad * d tanh/dx"})],
            solution=[Lib(activation.Tanh)],
            parts=[OpPart("Tanh", activation.Tanh, [(3, 4)], sweep=unary("smooth"),
                          torch=lambda: _torch().tanh)]),
        Exercise(
            name="softplus", title="softplus, the logistic losses' building block",
            writes="Softplus.backward",
            statement="""
                With D = sigma(l) for a discriminator's logit l, the GAN losses are softplus
                functions: log D = -softplus(-l) and log(1 - D) = -softplus(l), where

                    softplus(x) = log(1 + e^x),        d softplus / dx = e^x / (1 + e^x) = sigma(x)

                The forward is given (max(x, 0) + log1p(e^-|x|): exact and overflow-free).
                Write the backward.""",
            source="seed 000, slide \"Минимаксная игра\" (E log D(x) + E log(1 - D(G(z)))); "
                   "seed 002, slide \"Идея РВМ\" (p(v) = 1/Z sum_t e^(-E(v, h_t)): the sum over "
                   "h gives the free energy's softplus terms)",
            hint="the derivative is the sigmoid of the input, self.inputs[0]; minigen's sigmoid "
                 "(imported) is a Tensor op, so the backward stays differentiable.",
            stub=[Lib(activation.Softplus, {"backward": "return grad * d softplus/dx"})],
            solution=[Lib(activation.Softplus)],
            parts=[OpPart("Softplus", activation.Softplus, [(3, 4)], sweep=unary("smooth"),
                          torch=lambda: _torch().nn.functional.softplus)]),
    ]


def linear_algebra_exercises():
    return [
        Exercise(
            name="add", title="a broadcasting add: the unbroadcast rule",
            writes="unbroadcast and Add.backward",
            statement="""
                c = a + b broadcasts like NumPy: a of shape (2, 3, 1) and b of shape (3, 4) give
                c of shape (2, 3, 4). Broadcasting copies an input along new leading axes and
                along its axes of size 1, and a value used k times receives the sum of its k
                gradients; so

                    dL/da = unbroadcast(dL/dc, a.shape),     dL/db = unbroadcast(dL/dc, b.shape)

                where unbroadcast sums over exactly the copied axes and reshapes to the input's
                shape. Write unbroadcast(grad, shape) and Add.backward.""",
            source=BACKPROP + "; NumPy's broadcasting rules; minigen DESIGN.md, principle 4",
            hint="the leading axes are the grad.ndim - len(shape) first ones; the grown axes are "
                 "those where shape has 1 and grad does not. minigen's sum(grad, dim=axes) and "
                 "reshape are Tensor ops (import them from minigen.ops).",
            stub=[Lib(shape.unbroadcast, {"": "sum grad over the axes broadcasting added or "
                                                "grew, then reshape it to shape"}),
                  Lib(elementwise.Add, {"backward": "one gradient per input, each summed back "
                                                    "to its input's shape"})],
            solution=[Lib(shape.unbroadcast), Lib(elementwise.Add)],
            parts=[OpPart("Add", elementwise.Add, [(2, 3, 1), (3, 4)], sweep=binary(),
                          torch=lambda: _torch().add)]),
        Exercise(
            name="matmul", title="matrix multiplication, batched", writes="MatMul.backward",
            statement="""
                C = A @ B on (..., n, k) @ (..., k, m), the batch dimensions broadcast:

                    dL/dA = dL/dC @ B^T,        dL/dB = A^T @ dL/dC

                each summed back over the batch dimensions its operand was broadcast along
                (B of shape (4, 2) is used by every matrix of a batch A of shape (2, 3, 4)).
                The forward is given; write the backward.""",
            source=BACKPROP + "; seed 002, slide \"Архитектура GAN\" (G: Z -> R^n and D: R^n -> "
                              "[0; 1] are such products, layer by layer)",
            hint="transpose(x) swaps the last two axes; matmul and unbroadcast are the "
                 "library's (you wrote unbroadcast in the exercise add).",
            stub=[Lib(linalg.MatMul, {"backward": "dL/dA and dL/dB, each unbroadcast to its "
                                                  "input's shape"})],
            solution=[Lib(linalg.MatMul)],
            parts=[OpPart("MatMul", linalg.MatMul, [(2, 3, 4), (4, 2)],
                          sweep=st.one_of(matmul_inputs("2d"), matmul_inputs("batched")),
                          torch=lambda: _torch().matmul)]),
        Exercise(
            name="sum", title="sum over axes", writes="_expand_back and Sum.backward",
            statement="""
                y = sum of x over some axes. Every summed entry has derivative 1, so

                    dL/dx = dL/dy, broadcast back over the summed axes

                With keepdim=False the summed axes are gone from y: put them back with size 1
                (reshape to the "kept" shape), then broadcast to the input's shape. Write
                _expand_back(g, shape, axes) and Sum.backward.""",
            source="seed 000, slide \"Wasserstein loss\" (the critic's gradient of "
                   "1/m sum_i [f(x_i) - f(G(z_i))]: sums over a batch); " + BACKPROP,
            hint="_kept_shape(shape, axes) (given) is the shape with 1 on the summed axes; "
                 "reshape and broadcast_to are Tensor ops.",
            stub=[Lib(reduce._kept_shape),
                  Lib(reduce._expand_back, {"": "g reshaped to the kept shape, then broadcast "
                                                "to shape"}),
                  Lib(reduce.Sum, {"backward": "dL/dx: g expanded back to the input's shape"})],
            solution=[Lib(reduce._kept_shape), Lib(reduce._expand_back), Lib(reduce.Sum)],
            parts=[OpPart("Sum", reduce.Sum, [(3, 4)], kwargs={"axes": (1,), "keepdim": False},
                          sweep=_with_axes(reduction()),
                          torch=lambda: lambda x, axes, keepdim: _torch().sum(x, dim=axes,
                                                                               keepdim=keepdim))]),
        Exercise(
            name="mean", title="mean over axes", writes="Mean.backward",
            statement="""
                y = mean of x over some axes, n entries reduced into each output entry:

                    y = (1/n) sum x,        dL/dx = expand_back(dL/dy) / n

                The expectations of the GAN objectives are such batch means. The forward (which
                keeps n) and _expand_back are given; write the backward.""",
            source="seed 000, slides \"Минимаксная игра\" (E_x as a mean over the batch) and "
                   "\"Wasserstein loss\" (1/m sum_i)",
            hint="n is the product of the reduced axes' sizes, not the input's size (unless "
                 "every axis is reduced): the forward keeps it as self.count.",
            stub=[Lib(reduce._kept_shape), Lib(reduce._expand_back),
                  Lib(reduce.Mean, {"backward": "dL/dx"})],
            solution=[Lib(reduce._kept_shape), Lib(reduce._expand_back), Lib(reduce.Mean)],
            parts=[OpPart("Mean", reduce.Mean, [(3, 4)], kwargs={"axes": (1,), "keepdim": True},
                          sweep=_with_axes(reduction()),
                          torch=lambda: lambda x, axes, keepdim: _torch().mean(
                              x, dim=axes, keepdim=keepdim))]),
    ]


def stable_exercises():
    return [
        Exercise(
            name="logsumexp", title="log-sum-exp, stable", writes="LogSumExp.forward and .backward",
            statement="""
                A mixture's log-likelihood ln sum_j w_j F(x, q_j) is a log-sum-exp of
                ln w_j + ln F(x, q_j): densities of 784 pixels underflow any float, their
                logarithms do not. Computed as written, e^1000 overflows; with m = max_i x_i,

                    lse(x) = log sum_i e^(x_i) = m + log sum_i e^(x_i - m)     (every exponent <= 0)
                    d lse / dx_i = e^(x_i) / sum_j e^(x_j) = e^(x_i - lse(x))     (the softmax)

                Write the forward (on NumPy arrays, over ``axes``, keeping them when
                ``keepdim``) and the backward. The check also runs the forward at |x| ~ 1000.""",
            source="seed 002, slides \"ЕМ-алгоритм\" (ln P(X) = sum_i ln sum_j w_j F(X_i, q_j)) "
                   "and \"Идея РВМ\" (ln Z)",
            hint="a.max(axis=axes, keepdims=True) is m; a row of -inf only has m = -inf (use 0 "
                 "there). In the backward self.output is lse; reshape it to the kept shape "
                 "(keepdim may have dropped axes) and reuse _expand_back.",
            stub=[Lib(reduce._kept_shape), Lib(reduce._expand_back),
                  Lib(reduce.LogSumExp, {"forward": "m + log sum exp(a - m) over axes",
                                         "backward": "dL/dx = expand_back(g) * softmax(x)"})],
            solution=[Lib(reduce._kept_shape), Lib(reduce._expand_back), Lib(reduce.LogSumExp)],
            parts=[OpPart("LogSumExp", reduce.LogSumExp, [(3, 4)],
                          kwargs={"axes": (1,), "keepdim": False},
                          sweep=_with_axes(reduction()),
                          torch=lambda: lambda x, axes, keepdim: _torch().logsumexp(
                              x, dim=axes, keepdim=keepdim),
                          extremes=[([LSE_EXTREMES], [], {"axes": (1,), "keepdim": False}),
                                    ([LSE_EXTREMES], [], {"axes": (0, 1), "keepdim": True})])]),
        Exercise(
            name="log_softmax", title="log-softmax, stable",
            writes="LogSoftmax.forward and .backward",
            statement="""
                EM's E-step is a softmax: g_i(j) = w_j F(X_i, q_j) / sum_l w_l F(X_i, q_l), and in
                logarithms log g_i = log_softmax over j of ln w_j + ln F(X_i, q_j). Along ``axis``:

                    log_softmax(x)_i = x_i - lse(x) = (x_i - m) - log sum_j e^(x_j - m)
                    dL/dx = g - softmax(x) * sum_j g_j          (softmax(x) = e^log_softmax(x))

                Write the forward (stable: subtract the max first) and the backward.""",
            source="seed 002, slide \"ЕМ-алгоритм\" (E-step g_i(j) = P(j | X_i)); seed 000, "
                   "slide \"Inception score\" (the classifier's p(y | x))",
            hint="self.output is log_softmax(x), so softmax(x) = self.output.exp(); "
                 "sum(g, dim=self.axis, keepdim=True) is a Tensor op.",
            stub=[Lib(activation.LogSoftmax, {"forward": "(a - m) - log sum exp(a - m) along "
                                                         "axis",
                                              "backward": "dL/dx"})],
            solution=[Lib(activation.LogSoftmax)],
            parts=[OpPart("LogSoftmax", activation.LogSoftmax, [(3, 4)], kwargs={"axis": 1},
                          sweep=_with_axis(reduction(single=True, keepdim=False)),
                          torch=lambda: lambda x, axis: _torch().log_softmax(x, dim=axis),
                          extremes=[([LSE_EXTREMES], [], {"axis": 1}),
                                    ([LSE_EXTREMES], [], {"axis": 0})])]),
        Exercise(
            name="layer_norm", title="layer norm as one Function", writes="LayerNorm.backward",
            statement="""
                Over the last axis of x: mu = mean x, var = mean (x - mu)^2,
                xhat = (x - mu) / sqrt(var + eps), y = xhat * weight + bias. Every xhat of a
                row depends on every x of that row (through mu and var), so dL/dx is not just
                g * weight / std. With gh = g * weight, derive

                    dL/dx      = (gh - mean(gh) - xhat * mean(gh * xhat)) / sqrt(var + eps)
                    dL/dweight = sum over the rows of g * xhat,      dL/dbias = sum over the rows of g

                (means over the last axis). The forward is given; write the backward. It must
                be differentiable (gradgradcheck): self.xhat and self.inv_std are arrays,
                constants to autograd.""",
            source="Ba, Kiros & Hinton 2016 (layer normalisation); the gradient as in Ioffe & "
                   "Szegedy 2015, section 3 (batch norm's, over the features instead of the "
                   "batch); seed 000, slides \"DCGAN\" (batch normalisation in G and D) and "
                   "\"Архитектура и обучение ProGAN\" (pixel normalisation instead)",
            hint="under create_graph (is_grad_enabled() is True) recompute xhat and 1/std from "
                 "the input Tensor with Tensor ops: _standardize(x, self.axes, self.eps) does "
                 "it. unbroadcast sums the weight's and bias's gradients over the rows.",
            stub=[Text('''
                class LayerNorm(Function):
                    def forward(self, x, weight, bias, eps=1e-5):
                        # given: the statistics over the last axis, and what the backward needs
                        self.axes, self.eps = (x.ndim - 1,), eps
                        mean, var = _moments(x, self.axes)
                        self.inv_std = 1.0 / np.sqrt(var + eps)
                        self.xhat = (x - mean) * self.inv_std
                        return self.xhat * weight + bias

                    def backward(self, grad):
                        # TO WRITE: (dL/dx, dL/dweight, dL/dbias), with Tensor operations
                        raise NotImplementedError("LayerNorm.backward")
                ''', "minigen.nn.functional",
                uses=("Tensor", "is_grad_enabled", "mean", "sum", "unbroadcast", "_standardize"))],
            solution=[Lib(F._standardize), Lib(F.Normalize), Lib(solutions.LayerNorm)],
            note="""
                The library has one fused Function for batch norm and layer norm,
                minigen.nn.functional.Normalize (its caller passes the axes and the statistics;
                batch norm also passes the fused CUDA kernels). LayerNorm below is the few lines
                that call it the way F.layer_norm does (minigen/exercises/solutions.py).""",
            parts=[OpPart("LayerNorm", solutions.LayerNorm, [(3, 5), (5,), (5,)],
                          kwargs={"eps": 1e-5}, sweep=_layer_norm_inputs(),
                          torch=lambda: lambda x, w, b, eps: _torch().nn.functional.layer_norm(
                              x, (x.shape[-1],), w, b, eps))]),
        Exercise(
            name="bce_with_logits", title="binary cross-entropy on logits, stable",
            writes="BCEWithLogits.forward and .backward",
            statement="""
                The discriminator's loss on a logit x with target t (1: real, 0: fake):

                    l(x, t) = -[t log sigma(x) + (1 - t) log(1 - sigma(x))]
                            = max(x, 0) - x t + log(1 + e^(-|x|))
                    dl/dx = sigma(x) - t,        dl/dt = -x

                then reduced: 'mean' over every entry, 'sum', or 'none'. Write the forward (the
                second form: it never exponentiates a positive number nor takes log 0) and the
                backward, for both inputs. The check also runs the forward at |x| = 800.""",
            source="seed 001, slide \"Генеративные сети\" (L_D = -y ln p - (1 - y) ln(1 - p)); "
                   "seed 000, slide \"Минимаксная игра\"",
            hint="sigma(800) rounds to 1 and log(1 - 1) is -inf: use the second form. With "
                 "'mean' each entry's gradient is scaled by 1 / x.numel(). minigen's sigmoid keeps "
                 "the backward differentiable.",
            stub=[Lib(F.BCEWithLogits, {"forward": "the loss, reduced as self.reduction says",
                                        "backward": "(dL/dx, dL/dt)"})],
            solution=[Lib(F._log1p_unit), Lib(F.BCEWithLogits)],
            parts=[OpPart("BCEWithLogits", F.BCEWithLogits, _fixed_bce,
                          kwargs={"reduction": "mean"}, sweep=_bce_inputs(),
                          torch=lambda: lambda x, t, reduction: _torch().nn.functional.
                          binary_cross_entropy_with_logits(x, t, reduction=reduction),
                          extremes=[([np.array([[800.0, -800.0, 40.0, -40.0],
                                                [1e-3, -1e-3, 0.5, -0.5]]),
                                      np.array([[0.0, 1.0, 0.3, 1.0], [0.0, 1.0, 1.0, 0.0]])],
                                     [], {"reduction": "none"})])]),
    ]


def network_exercises():
    fixed_conv = conv_geometry((1, 2, 5, 4), (3, 2, 2, 2), stride=(2, 1), padding=(1, 0))
    fixed_pool = conv._pool_geometry(np.zeros((1, 2, 4, 4)), 2, 1, 0, "max_pool2d")
    return [
        Exercise(
            name="conv2d", title="conv2d through im2col", writes="Conv2d.forward and .backward",
            statement="""
                For x (N, C, H, W) and w (O, C, kH, kW), stride s, padding p, dilation d:

                    y[n, o, oh, ow] = sum_{c,i,j} w[o, c, i, j] x[n, c, oh s + i d - p, ow s + j d - p]

                im2col copies every window into a column: X = im2col(x), shape
                (C kH kW, N oH oW); then the convolution is ONE product Y = W X (W: w as an
                (O, C kH kW) matrix; Y: the output as (O, N oH oW)). Both steps are linear, so
                with G = dL/dY

                    dL/dW = G X^T,        dL/dx = im2col^T(W^T G) = col2im(W^T G)

                Write the forward (im2col is given) and the backward. The two products of the
                backward are Functions of the library: ConvTranspose2d (col2im(W^T G)) and
                Conv2dWeight (G X^T); calling them keeps your backward differentiable.""",
            source="seed 000, slide \"DCGAN\" (strided convolutions instead of pooling); seed "
                   "003, slide \"Deep Convolutional GANs\"; im2col + GEMM: Chellapilla, Puri & "
                   "Simard 2006",
            hint="im2col(x, geom) has shape (C, kH, kW, N, oH, oW): reshape it to "
                 "(C kH kW, N oH oW) and w to (O, C kH kW); the product reshaped to (O, N, oH, "
                 "oW) is y with N and O swapped. Keep the columns (self.cols): "
                 "Conv2dWeight.apply(x, g, geom=..., cols=self.cols) reuses them.",
            stub=[Lib(conv.Conv2d, {"forward": "self.geom = geom; self.cols = im2col(x, geom); "
                                               "y = one GEMM, laid out as (N, O, oH, oW) "
                                               "(+ bias[o] on channel o when a bias is given)",
                                    "backward": "(dL/dx, dL/dw) with ConvTranspose2d.apply and "
                                                "Conv2dWeight.apply (and dL/dbias, g summed "
                                                "over every dim but 1, with a bias)"})],
            solution=[Lib(conv._conv), Lib(conv.Conv2d)], hide=("_conv",),
            note="""
                Its backward calls the two other bilinear maps of minigen/ops/conv.py, whose own
                backwards are the three maps again; that module's docstring derives them.""",
            parts=[OpPart("Conv2d", conv.Conv2d, [(1, 2, 5, 4), (3, 2, 2, 2)],
                          kwargs={"geom": fixed_conv}, sweep=conv2d_inputs().map(_conv_geometries),
                          torch=lambda: lambda x, w, geom: _torch().nn.functional.conv2d(
                              x, w, stride=geom.stride, padding=geom.padding,
                              dilation=geom.dilation))]),
        Exercise(
            name="max_pool2d", title="max-pooling: scatter and gather",
            writes="MaxPoolScatter.forward and the backwards of MaxPool2d, MaxPoolScatter, "
                   "MaxPoolGather",
            statement="""
                y = the largest pixel of each window. Only the winner depends on x (the forward
                keeps its position, argmax: the flat index h W + w in its plane), so

                    dL/dx[p] = sum of dL/dy over the windows whose maximum is at pixel p

                a scatter-add; windows overlap when the stride is smaller than the kernel, so a
                pixel may win several. The scatter is linear in the gradient: its backward is
                the gather at argmax (MaxPoolGather), whose backward is the scatter again.
                Write MaxPoolScatter.forward (NumPy) and the three backwards.""",
            source="seed 000, slide \"DCGAN\" (\"Нет пулинга (вместо него свертки)\": what "
                   "DCGAN removes); seed 003, slide \"Deep Convolutional GANs\"",
            hint="np.add.at(target, index, values) adds at repeated indices (target[index] += "
                 "values does not). Work on g reshaped to (N, C, oH*oW) and a zero array "
                 "(N, C, H*W), (H, W) = geom.image. _gather is the gather on arrays.",
            stub=[Lib(conv.MaxPool2d, {"backward": "the scatter of g (a Function call)"}),
                  Lib(conv.MaxPoolScatter, {"forward": "add g onto the argmax pixels of an "
                                                       "(N, C, H, W) array of zeros",
                                            "backward": "the gather of gg at argmax"},
                      uses=("np",)),
                  Lib(conv.MaxPoolGather, {"backward": "the scatter of g"})],
            solution=[Lib(conv.MaxPool2d), Lib(conv.MaxPoolScatter), Lib(conv.MaxPoolGather)],
            hide=("_max_pool_backward",),
            parts=[OpPart("MaxPool2d", conv.MaxPool2d, [(1, 2, 4, 4)], kind="distinct",
                          kwargs={"geom": fixed_pool}, sweep=pool_inputs().map(_pool_geometries),
                          torch=lambda: lambda x, geom: _torch().nn.functional.max_pool2d(
                              x, geom.kernel, geom.stride, geom.padding))]),
    ]


def generative_exercises():
    return [
        Exercise(
            name="reparameterize", title="the reparameterisation trick and the Gaussian KL",
            writes="Reparameterize.backward and kl_normal",
            statement="""
                A VAE's encoder gives mu and logvar; z ~ N(mu, sigma^2) is drawn as a
                differentiable function of them, the randomness moved into eps (an input
                without gradient, fixed here):

                    z = mu + sigma eps,   sigma = exp(logvar / 2)
                    dz/dmu = 1,   dz/dlogvar = sigma eps / 2,   dz/deps = sigma

                and the ELBO's regulariser has a closed form:

                    KL(N(mu, sigma^2) || N(0, 1)) = -1/2 sum (1 + logvar - mu^2 - exp(logvar))

                Write Reparameterize.backward (the forward is given) and kl_normal(mu, logvar,
                reduction) with Tensor operations (its gradient is then autograd's).""",
            source="seed 000, slides \"Репараметризационный трюк\" and \"Нижние границы\" (the KL "
                   "term \"has nice closed-form solution\"); Kingma & Welling 2014, eq. 10 and "
                   "appendix B",
            hint="return one gradient per input, None where self.needs_input_grad says none is "
                 "needed (eps). Build sigma from logvar (self.inputs[1]) with Tensor ops so the "
                 "backward is differentiable. _reduce(terms, reduction, 'kl_normal') reduces.",
            stub=[Lib(vae.Reparameterize, {"backward": "(dL/dmu, dL/dlogvar, dL/deps or None)"}),
                  Lib(F.kl_normal, {"": "the closed form, reduced by _reduce"})],
            solution=[Lib(vae.Reparameterize), Lib(F.kl_normal)],
            parts=[OpPart("Reparameterize", vae.Reparameterize, [(3, 2), (3, 2)],
                          noise=[(3, 2)], sweep=with_noise(_same_shape(2)),
                          torch=lambda: lambda mu, logvar, eps: mu + _torch().exp(0.5 * logvar) * eps),
                   OpPart("kl_normal", F.kl_normal, [(3, 2), (3, 2)], kwargs={"reduction": "sum"},
                          sweep=_same_shape(2, reduction=st.sampled_from(
                              ["sum", "none", "mean", "batchmean"])),
                          torch=_torch_kl)]),
        Exercise(
            name="gradient_penalty", title="WGAN-GP's gradient penalty: a gradient of a gradient",
            writes="gradient_penalty",
            statement="""
                On interpolates between real x and generated x~ (alpha given, one per example):

                    x^ = alpha x + (1 - alpha) x~
                    GP = lambda * mean over the examples of (||grad_x^ f(x^)||_2 - 1)^2

                The penalty depends on the critic's weights through the gradient grad f: the
                critic's update differentiates a gradient. The check calls your function with a
                small critic f(x) = tanh(x W1) W2 and checks GP's first and second derivatives
                in W1 and W2, and its value against the library's.""",
            source="seed 000, slide \"WGAN-GP\"; Gulrajani et al. 2017, eq. 3 and Algorithm 1",
            hint="minigen.grad(scores.sum(), x_hat, create_graph=True) gives every example's "
                 "gradient at once (examples do not mix); without create_graph it is a constant "
                 "and the penalty never reaches the weights. x^ is a fresh leaf: "
                 "(...).detach().requires_grad_(True). The norm is per example.",
            stub=[Lib(gan_losses.gradient_penalty, {"": "weight * mean((||grad f(x_hat)|| - "
                                                         "1)^2), the norm per example"})],
            solution=[Lib(gan_losses.gradient_penalty)],
            parts=[OpPart("gradient_penalty", gan_losses.gradient_penalty, [(2, 3), (3, 1)],
                          noise=_fixed_penalty_noise, sweep=_critic_inputs(),
                          call=critic_penalty_of, torch=_torch_penalty)]),
        Exercise(
            name="gumbel_softmax", title="Gumbel-softmax with fixed noise",
            writes="Softmax.backward and gumbel_softmax",
            statement="""
                A differentiable sample of a categorical distribution: with Gumbel noise g
                (given, fixed),

                    y = softmax((logits + g) / tau)

                and softmax's backward is the Jacobian-vector product s * (gs - sum_j gs_j s_j)
                along the axis (gs = dL/ds). hard=True returns the one-hot vector of the argmax
                with the soft sample's gradient (straight-through: y_hard - y.detach() + y).
                Write Softmax.backward and gumbel_softmax (a composition: the division by tau
                gets its gradient from division's backward).""",
            source="seed 003, slide \"Генерация текстов\" (\"Categorical Reparameterization "
                   "with Gumbel-Softmax\", Jang, Gu & Poole 2017); seed 004, lecture 12",
            hint="sum(g * s, dim=self.axis, keepdim=True); with noise given draw nothing. For "
                 "hard: compare the positions along dim with the argmax (a constant Tensor).",
            stub=[Lib(activation.Softmax, {"backward": "s * (g - <g, s>) along self.axis"}),
                  Lib(activation.softmax),
                  Lib(F.gumbel_softmax, {"": "softmax((logits + noise) / tau, dim); hard=True: "
                                             "straight-through"})],
            solution=[Lib(activation.Softmax), Lib(activation.softmax), Lib(F.gumbel_softmax)],
            parts=[OpPart("gumbel_softmax", F.gumbel_softmax, [(3, 4)], noise=[(3, 4)],
                          noise_kind="gumbel", kwargs={"tau": 0.7},
                          sweep=with_noise(shapes(min_dims=1).flatmap(lambda shape: unary(
                              "smooth", shape, tau=st.sampled_from([0.5, 1.0, 2.0]))),
                              kind="gumbel"),
                          call=gumbel_with_noise_of, straight_through=True,
                          torch=lambda: lambda logits, g, tau: _torch().softmax(
                              (logits + g) / tau, dim=-1))]),
    ]
