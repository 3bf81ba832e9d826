"""PyTorch idioms side by side: each idiom is written once, as PyTorch code, and run twice --
with PyTorch and with minigen as the library (``T.torch`` is ``torch`` or ``minigen``, ``T.nn``,
``T.F``, ``T.optim``, ``T.sched``, ``T.data`` likewise) -- and the two results must agree:
the same values, shapes and dtypes, or both runs raising.

``IDIOMS`` are the everyday lines of training scripts (pytorch/examples' MNIST and VAE, a
WGAN-GP penalty, DCGAN-style initialisation ...). ``DIFFERENCES`` are the few places where
minigen deliberately differs: there the test checks that minigen fails with the documented
error and that README.md's "Differences from PyTorch" section explains it.

Run this file as a script to count how many idioms behave the same (the number quoted in
the README and in issue 13's report):  python tests/test_pytorch_idioms.py
"""
import importlib
import math
import os
import sys
from types import SimpleNamespace

import numpy as np
import pytest

import minigen as mg

try:
    import torch
except ImportError:  # pragma: no cover - depends on the machine
    torch = None

A = (np.arange(12, dtype=np.float32).reshape(3, 4) - 5.5) / 4   # a float32 matrix, no ties
B = np.cos(np.arange(12, dtype=np.float32)).reshape(3, 4)        # another one
P = np.abs(A) + 0.25                                              # positive entries
LABELS = np.array([2, 0, 3], dtype=np.int64)

IDIOMS, DIFFERENCES = [], []


def idiom(fn):
    IDIOMS.append(fn)
    return fn


def difference(error, match, readme):
    """A documented difference: minigen raises ``error`` matching ``match``; README.md names it
    with the phrase ``readme``."""
    def register(fn):
        fn.expected = (error, match, readme)
        DIFFERENCES.append(fn)
        return fn
    return register


class _Missing:
    """Stands for a module the library lacks (so older minigens can be counted too)."""

    def __init__(self, name):
        self.name = name

    def __getattr__(self, attr):
        raise AttributeError(f"{self.name} is missing")


def _module(name):
    try:
        return importlib.import_module(name)
    except ImportError:
        return _Missing(name)


def libraries():
    """The two namespaces every idiom is run against."""
    mine = SimpleNamespace(torch=mg, nn=mg.nn, F=mg.nn.functional, optim=mg.optim,
                           sched=_module("minigen.optim.lr_scheduler"),
                           data=_module("minigen.utils.data"), name="minigen")
    if torch is None:
        return mine, None
    theirs = SimpleNamespace(torch=torch, nn=torch.nn, F=torch.nn.functional, optim=torch.optim,
                             sched=torch.optim.lr_scheduler,
                             data=importlib.import_module("torch.utils.data"), name="torch")
    return mine, theirs


# ====================================================================== helpers used by idioms
def t(T, array):
    return T.torch.tensor(array)


def filled(T, model, seed=0):
    """Give ``model`` deterministic weights (the same in both libraries), PyTorch's way."""
    rng = np.random.default_rng(seed)
    with T.torch.no_grad():
        for p in model.parameters():
            p.copy_(T.torch.tensor(rng.uniform(-0.3, 0.3, tuple(p.shape)).astype(np.float32)))
    return model


# ====================================================================== creation and dtypes
@idiom
def tensor_from_float_list(T):
    return T.torch.tensor([1.0, 2.5, -3.0])


@idiom
def tensor_from_int_list(T):
    return T.torch.tensor([[1, 2], [3, 4]])


@idiom
def tensor_from_bool_list(T):
    return T.torch.tensor([True, False])


@idiom
def tensor_keeps_float64_array(T):
    return T.torch.tensor(np.linspace(0, 1, 5))


@idiom
def tensor_keeps_float32_array(T):
    return T.torch.tensor(A)


@idiom
def tensor_with_dtype(T):
    return T.torch.tensor([1, 2], dtype=T.torch.float32)


@idiom
def tensor_of_numpy_scalar(T):
    return T.torch.tensor(np.float64(3.0))


@idiom
def from_numpy_shares_memory(T):
    a = np.zeros(3)
    x = T.torch.from_numpy(a)
    a[0] = 5
    x.add_(1)
    return x, T.torch.tensor(a)


@idiom
def as_tensor_shares_memory(T):
    a = np.ones(4, dtype=np.float32)
    x = T.torch.as_tensor(a)
    a[1] = 7
    return x


@idiom
def zeros_ones_full(T):
    return (T.torch.zeros(2, 3), T.torch.ones((2, 3)), T.torch.full((2, 2), 7),
            T.torch.full((2,), 1.5), T.torch.zeros(2, dtype=T.torch.long))


@idiom
def eye_arange_linspace(T):
    return (T.torch.eye(3), T.torch.arange(5), T.torch.arange(0, 1, 0.25),
            T.torch.linspace(0, 1, 5))


@idiom
def like_constructors(T):
    x = t(T, A)
    return T.torch.zeros_like(x), T.torch.ones_like(x), T.torch.full_like(x, 2.0)


@idiom
def random_shapes_and_dtypes(T):
    x = t(T, A)
    outs = [T.torch.randn(2, 3), T.torch.rand(4), T.torch.rand_like(x), T.torch.randn_like(x),
            T.torch.randint(0, 10, (3,)), T.torch.randint(10, (2, 2)), T.torch.randperm(5),
            T.torch.empty(2, 3)]
    return [(tuple(o.shape), str(o.dtype).replace("torch.", "")) for o in outs]


@idiom
def new_constructors(T):
    x = t(T, A)
    return (x.new_zeros(2), x.new_ones((2, 3)), x.new_full((2,), 3.0), x.new_tensor([1.0, 2.0]),
            x.new_zeros(3, dtype=T.torch.long))


@idiom
def dtype_names(T):
    x = t(T, A)
    return (x.dtype == T.torch.float32, x.double().dtype == T.torch.float64,
            T.torch.get_default_dtype() == T.torch.float32, x.long().dtype == T.torch.int64,
            T.torch.is_floating_point(x))


@idiom
def to_dtype(T):
    x = t(T, A)
    return x.to(T.torch.float64), x.to(dtype=T.torch.float64), x.to(T.torch.int64)


@idiom
def conversions(T):
    x = t(T, A)
    return x.long(), x.float(), x.int(), x.bool(), x.double(), x.type_as(t(T, LABELS))


@idiom
def item_float_int(T):
    x = T.torch.tensor(2.5)
    return x.item(), float(x), int(T.torch.tensor(3)), T.torch.tensor([[4]]).item()


@idiom
def tolist_and_numpy(T):
    x = t(T, A)
    return x.tolist(), x.cpu().numpy(), x.detach().numpy()


@idiom
def format_a_loss(T):
    return f"{T.torch.tensor(0.123456):.4f}", "{:.2f}".format(T.torch.tensor(1.5))


# ====================================================================== devices
@idiom
def device_objects(T):
    d = T.torch.device("cpu")
    return str(d), d.type, T.torch.device("cuda" if T.torch.cuda.is_available() else "cpu").type


@idiom
def cuda_is_available(T):
    return T.torch.cuda.is_available(), T.torch.backends.mps.is_available()


@idiom
def tensor_to_device(T):
    device = T.torch.device("cpu")
    x = t(T, A).to(device)
    return x, str(x.device), x.device == T.torch.device("cpu"), x.is_cuda, x.to("cpu")


@idiom
def model_to_device(T):
    device = T.torch.device("cpu")
    model = T.nn.Linear(4, 2).to(device)
    return str(next(model.parameters()).device), isinstance(model, T.nn.Module)


@idiom
def to_another_tensor(T):
    return t(T, LABELS).to(t(T, A))


@idiom
def cuda_without_gpu_fails(T):
    if T.torch.cuda.is_available():  # pragma: no cover - only on a GPU machine
        raise RuntimeError("skip")
    return t(T, A).cuda()


# ====================================================================== shapes
@idiom
def size_and_shape(T):
    x = t(T, A)
    return x.size(), x.size(0), x.size(-1), x.shape, tuple(x.shape), x.shape[1]


@idiom
def numel_and_dim(T):
    x = t(T, A)
    return x.numel(), T.torch.numel(x), x.dim(), x.ndim, len(x)


@idiom
def view_and_reshape(T):
    x = t(T, A)
    return x.view(-1, 2), x.view(6, 2), x.reshape(2, -1), x.view(-1), x.contiguous().view(12)


@idiom
def view_as_reshape_as(T):
    x, y = t(T, A), T.torch.zeros(4, 3)
    return x.view_as(y), x.reshape_as(y)


@idiom
def transposes(T):
    x = t(T, A)
    return x.t(), x.T, x.transpose(0, 1), x.permute(1, 0), T.torch.t(x)


@idiom
def squeeze_unsqueeze(T):
    x = t(T, A)
    return (x.unsqueeze(1).shape, x.unsqueeze(0).squeeze(), x[None].shape, x[:, None].shape,
            x.unsqueeze(-1).squeeze(-1))


@idiom
def flatten_from_dim_1(T):
    x = t(T, np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    return T.torch.flatten(x, 1), x.flatten(), x.flatten(0, 1).shape


@idiom
def cat_and_stack(T):
    a, b = t(T, A), t(T, B)
    return (T.torch.cat([a, b], dim=1), T.torch.cat((a, b), 0), T.torch.stack([a, b]),
            T.torch.stack((a, b), dim=2).shape)


@idiom
def chunk_and_split(T):
    x = t(T, A)
    return x.chunk(2, dim=1), x.split(1, dim=0), T.torch.split(x, [1, 2]), T.torch.chunk(x, 3)


@idiom
def expand_repeat(T):
    row = T.torch.tensor([[1.0, 2.0]])
    return row.expand(3, -1), row.repeat(2, 3), row.expand_as(T.torch.zeros(4, 2))


@idiom
def flip_unbind_narrow(T):
    x = t(T, A)
    return x.flip(0), x.flip(0, 1), x.unbind(1), x.narrow(1, 1, 2)


@idiom
def iterate_rows(T):
    return [row.sum().item() for row in t(T, A)]


@idiom
def basic_indexing(T):
    x = t(T, A)
    return x[0], x[:, 1], x[..., -1], x[1:, ::2], x[-1, -1].item()


@idiom
def mask_and_index_tensor_indexing(T):
    x = t(T, A)
    return x[x > 0], x[T.torch.tensor([2, 0])], x[:, T.torch.tensor([1, 3])]


@idiom
def index_select_and_gather(T):
    x = t(T, A)
    idx = T.torch.tensor([[0, 1], [3, 3], [2, 0]])
    return (x.index_select(0, T.torch.tensor([2, 0])), T.torch.gather(x, 1, idx),
            x.gather(1, idx))


# ====================================================================== reductions
@idiom
def sums(T):
    x = t(T, A)
    return x.sum(), x.sum(dim=1), x.sum(1, keepdim=True), x.sum(axis=0), T.torch.sum(x, 0)


@idiom
def means_and_spread(T):
    x = t(T, A)
    return x.mean(), x.mean(0), x.mean(dim=(0, 1)), x.std(), x.var(dim=1, unbiased=False)


@idiom
def max_of_all(T):
    x = t(T, A)
    return x.max(), x.min(), T.torch.max(x), x.abs().max().item()


@idiom
def max_dim_unpacks(T):
    v, i = t(T, B).max(dim=1)
    return v, i


@idiom
def max_keepdim_indices(T):
    return t(T, B).max(1, keepdim=True)[1]


@idiom
def min_dim_named_fields(T):
    r = t(T, B).min(dim=0)
    return r.values, r.indices, r[0]


@idiom
def max_of_two_tensors(T):
    a, b = t(T, A), t(T, B)
    return T.torch.max(a, b), T.torch.min(a, b), T.torch.maximum(a, b), a.max(b)


@idiom
def argmax_argmin(T):
    x = t(T, B)
    return x.argmax(dim=1), x.argmax(dim=1, keepdim=True), x.argmax(), x.argmin(1)


@idiom
def norms(T):
    x = t(T, A)
    return x.norm(), x.norm(2, dim=1), x.norm(p=1, dim=0), T.torch.norm(x), x.norm(dim=1)


@idiom
def prod_logsumexp_amax(T):
    x = t(T, A)
    return x.prod(1), x.logsumexp(1), T.torch.logsumexp(x, dim=0), x.amax(dim=1)


@idiom
def all_any(T):
    a, b = t(T, A), t(T, A)
    return (a == b).all(), (a == b).any(), (a > 0).any(), T.torch.all(a > -2), (a > 0).all(dim=1)


@idiom
def eq_sum_item_accuracy(T):
    output = t(T, B)
    target = t(T, np.array([2, 0, 3]))
    pred = output.argmax(dim=1, keepdim=True)
    return pred.eq(target.view_as(pred)).sum().item()


@idiom
def topk_and_sort(T):
    x = t(T, B)
    values, indices = T.torch.topk(x, 2, dim=1)
    s = x.sort(dim=1, descending=True)
    return values, indices, s.values, s.indices, T.torch.argsort(x, dim=1)


@idiom
def equal_allclose_isclose(T):
    a = t(T, A)
    return (T.torch.equal(a, a + 0), T.torch.allclose(a, a + 1e-7),
            T.torch.isclose(a, a + 1e-3).all().item())


# ====================================================================== elementwise
@idiom
def arithmetic(T):
    a, b = t(T, A), t(T, B)
    return a + b, a - 1, 2 * a, a / 3, 1 / (a + 10), a @ b.t(), a.matmul(b.T), -a


@idiom
def methods_with_alpha(T):
    a, b = t(T, A), t(T, B)
    return a.add(b, alpha=2), T.torch.add(a, b), a.mul(2), a.div(2), a.sub(b), T.torch.sub(a, b)


@idiom
def neg_and_pow(T):
    x = t(T, A)
    return x.neg(), T.torch.neg(x), x.pow(2), x ** 3, T.torch.pow(x, 2), 2 ** x, x.square()


@idiom
def exp_log_sqrt(T):
    p = t(T, P)
    return (p.exp(), p.log(), T.torch.log1p(p), p.sqrt(), T.torch.rsqrt(p), p.reciprocal(),
            T.torch.exp(p))


@idiom
def clamp_forms(T):
    x = t(T, A)
    return x.clamp(min=0), T.torch.clamp(x, -0.1, 0.1), x.clamp(max=0.2), x.clip(-1, 1)


@idiom
def activations_as_functions(T):
    x = t(T, A)
    return (x.sigmoid(), T.torch.sigmoid(x), T.torch.tanh(x), x.relu(), T.torch.relu(x),
            x.softmax(dim=1), x.log_softmax(1))


@idiom
def where_and_masked_fill(T):
    x = t(T, A)
    return T.torch.where(x > 0, x, T.torch.zeros_like(x)), x.masked_fill(x < 0, 0.0)


@idiom
def lerp_for_moving_averages(T):
    a, b = t(T, A), t(T, B)
    return T.torch.lerp(a, b, 0.3), a.lerp(b, 0.5)


@idiom
def rounding_and_sign(T):
    x = t(T, A) * 3
    return x.sign(), x.floor(), x.ceil(), x.round(), x.abs(), abs(x)


@idiom
def logical_masks(T):
    x, y = t(T, A), t(T, B)
    m = (x > 0) & (y < 0.5)
    return m, ~m, m | (x < -1), m ^ (y > 0), m.float(), m.sum(), x[~m]


@idiom
def nan_checks(T):
    x = T.torch.tensor([1.0, float("nan"), float("inf")])
    return T.torch.isnan(x), T.torch.isfinite(x), T.torch.isinf(x), x.isnan().any().item()


@idiom
def sin_cos(T):
    x = t(T, A)
    return T.torch.sin(x), x.cos()


@idiom
def comparisons_as_methods(T):
    a, b = t(T, A), t(T, B)
    return a.eq(b), a.ne(b), a.lt(b), a.le(0), a.gt(b), a.ge(0), T.torch.eq(a, a)


@idiom
def scalar_tensor_arithmetic(T):
    x = T.torch.tensor(2.0)
    return x * t(T, A), t(T, A) + x, float(x * 3)


# ====================================================================== in-place updates and autograd
@idiom
def sgd_by_hand_under_no_grad(T):
    w = T.torch.tensor(A, requires_grad=True)
    (w * w).sum().backward()
    with T.torch.no_grad():
        for p in [w]:
            p -= 0.1 * p.grad
    return w.detach(), w.requires_grad, w.is_leaf


@idiom
def inplace_methods_return_self(T):
    x = t(T, A)
    y = x.add_(1)
    x.mul_(2).sub_(0.5).div_(4)
    return y is x, x, x.clone().zero_(), x.clone().fill_(3), x.clone().clamp_(-0.1, 0.1)


@idiom
def copy_and_setitem(T):
    x = T.torch.zeros(3, 4)
    x.copy_(t(T, B))
    x[0] = 1.0
    x[:, 1] = t(T, np.array([7.0, 8.0, 9.0], dtype=np.float32))
    x[x < 0] = 0
    return x


@idiom
def augmented_assignment_is_in_place(T):
    x = t(T, A)
    alias = x
    x += 1
    x *= 2
    x -= t(T, B)
    x /= 4
    return alias is x, alias


@idiom
def backward_fills_grad(T):
    x = T.torch.tensor(A, requires_grad=True)
    y = (x * x).sum()
    y.backward()
    g = x.grad.clone()
    x.grad.zero_()
    return g, x.grad, y.requires_grad, x.is_leaf, y.grad_fn is not None


@idiom
def no_grad_context_and_decorator(T):
    x = T.torch.tensor(A, requires_grad=True)
    with T.torch.no_grad():
        y = x * 2
        with T.torch.enable_grad():
            z = x * 2

    @T.torch.no_grad()
    def infer(v):
        return v * 3
    return y.requires_grad, z.requires_grad, infer(x).requires_grad, x.detach().requires_grad


@idiom
def backward_with_gradient_argument(T):
    x = T.torch.tensor(A, requires_grad=True)
    y = x * 3
    y.backward(T.torch.ones_like(y))
    return x.grad


@idiom
def retain_grad_on_a_non_leaf(T):
    x = T.torch.tensor(A, requires_grad=True)
    h = x * 2
    h.retain_grad()
    (h * h).sum().backward()
    return h.grad, x.grad


@idiom
def gradient_penalty_the_pytorch_way(T):
    """WGAN-GP (Gulrajani et al. 2017): (||grad_x D(x_hat)||_2 - 1)^2 on interpolates."""
    critic = filled(T, T.nn.Sequential(T.nn.Linear(4, 8), T.nn.LeakyReLU(0.2), T.nn.Linear(8, 1)))
    real, fake = t(T, A), t(T, B)
    alpha = T.torch.tensor(np.array([[0.2], [0.5], [0.9]], dtype=np.float32))
    interpolates = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    d = critic(interpolates)
    grads = T.torch.autograd.grad(outputs=d, inputs=interpolates,
                                  grad_outputs=T.torch.ones(real.size(0), 1),
                                  create_graph=True, retain_graph=True, only_inputs=True)[0]
    penalty = ((grads.view(grads.size(0), -1).norm(2, dim=1) - 1) ** 2).mean() * 10
    loss = critic(fake).mean() - critic(real).mean() + penalty
    loss.backward()
    return penalty, loss, [p.grad for p in critic.parameters()]


@idiom
def residual_add_in_place_keeps_the_graph(T):
    x = T.torch.tensor(A, requires_grad=True)
    h = x * 2
    h += x.exp()
    h.sum().backward()
    return h, x.grad


@idiom
def leaf_in_place_under_grad_fails(T):
    x = T.torch.tensor(A, requires_grad=True)
    x.add_(1)
    return x


@idiom
def modified_saved_tensor_fails_backward(T):
    x = T.torch.tensor(A, requires_grad=True)
    y = x.exp()
    z = (y * 2).sum()
    with T.torch.no_grad():
        y.mul_(2)
    z.backward()
    return x.grad


@idiom
def manual_seed_repeats(T):
    T.torch.manual_seed(0)
    a = T.torch.randn(3)
    T.torch.manual_seed(0)
    return T.torch.equal(a, T.torch.randn(3))


@idiom
def detach_shares_memory(T):
    x = t(T, A)
    d = x.detach()
    d.zero_()
    return x


# ====================================================================== nn
@idiom
def linear_layer_shapes(T):
    layer = T.nn.Linear(4, 3)
    return tuple(layer.weight.shape), tuple(layer.bias.shape), layer.weight.requires_grad


@idiom
def sequential_forward(T):
    model = filled(T, T.nn.Sequential(T.nn.Linear(4, 5), T.nn.ReLU(), T.nn.Linear(5, 2)))
    return model(t(T, A))


@idiom
def parameter_names_and_state_dict(T):
    model = T.nn.Sequential(T.nn.Linear(4, 5), T.nn.BatchNorm1d(5), T.nn.Linear(5, 2))
    return ([n for n, _ in model.named_parameters()], list(model.state_dict().keys()),
            sum(p.numel() for p in model.parameters()))


@idiom
def train_eval_flags(T):
    model = T.nn.Sequential(T.nn.Linear(4, 5), T.nn.Dropout(0.5))
    model.eval()
    flags = [m.training for m in model.modules()]
    model.train()
    return flags, [m.training for m in model.modules()], model(t(T, A)).shape


class _NetFactory:
    """The CNN of pytorch/examples' mnist/main.py, shrunk to 10x10 inputs."""

    @staticmethod
    def build(T):
        class Net(T.nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1 = T.nn.Conv2d(1, 4, 3, 1)
                self.conv2 = T.nn.Conv2d(4, 8, 3, 1)
                self.dropout1 = T.nn.Dropout(0.25)
                self.fc1 = T.nn.Linear(8 * 3 * 3, 16)
                self.fc2 = T.nn.Linear(16, 10)

            def forward(self, x):
                x = T.F.relu(self.conv1(x))
                x = T.F.max_pool2d(T.F.relu(self.conv2(x)), 2)
                x = self.dropout1(x)
                x = T.torch.flatten(x, 1)
                x = self.fc2(T.F.relu(self.fc1(x)))
                return T.F.log_softmax(x, dim=1)
        return Net()


@idiom
def cnn_forward_eval(T):
    model = filled(T, _NetFactory.build(T)).eval()
    x = t(T, np.sin(np.arange(200, dtype=np.float32)).reshape(2, 1, 10, 10))
    with T.torch.no_grad():
        return model(x)


@idiom
def batchnorm_running_stats(T):
    bn = T.nn.BatchNorm1d(4)
    y = bn(t(T, A))
    return y, bn.running_mean, bn.running_var, bn.num_batches_tracked


@idiom
def dropout_identity_in_eval(T):
    x = t(T, A)
    return T.F.dropout(x, 0.5, training=False), T.nn.Dropout(0.3).eval()(x)


@idiom
def embedding_lookup(T):
    emb = filled(T, T.nn.Embedding(5, 3))
    return emb(T.torch.tensor([[0, 4], [2, 2]]))


@idiom
def layer_norm_forward(T):
    return filled(T, T.nn.LayerNorm(4))(t(T, A))


@idiom
def conv_transpose_forward(T):
    layer = filled(T, T.nn.ConvTranspose2d(2, 3, 4, 2, 1))
    return layer(t(T, np.cos(np.arange(32, dtype=np.float32)).reshape(1, 2, 4, 4)))


@idiom
def functional_activations(T):
    x = t(T, A)
    return (T.F.relu(x), T.F.leaky_relu(x, 0.2), T.F.softmax(x, dim=1), T.F.log_softmax(x, dim=1),
            T.F.sigmoid(x), T.F.softplus(x), T.F.elu(x), T.F.silu(x), T.F.logsigmoid(x))


@idiom
def relu_inplace(T):
    x = t(T, A)
    T.F.relu(x, inplace=True)
    return x


@idiom
def classification_losses(T):
    logits, target = t(T, B), t(T, LABELS)
    return (T.F.cross_entropy(logits, target), T.F.nll_loss(T.F.log_softmax(logits, 1), target),
            T.F.cross_entropy(logits, target, reduction="sum"),
            T.nn.CrossEntropyLoss()(logits, target), T.nn.NLLLoss(reduction="none")(logits, target))


@idiom
def regression_and_binary_losses(T):
    x, y, p = t(T, A), t(T, B), t(T, P / 4)
    return (T.F.mse_loss(x, y), T.F.l1_loss(x, y), T.F.smooth_l1_loss(x, y),
            T.F.binary_cross_entropy(p, (y > 0).float()),
            T.F.binary_cross_entropy_with_logits(x, (y > 0).float(), reduction="sum"),
            T.nn.MSELoss(reduction="sum")(x, y), T.nn.BCEWithLogitsLoss()(x, (y > 0).float()))


@idiom
def kl_div_batchmean(T):
    log_q = T.F.log_softmax(t(T, A), dim=1)
    p = T.F.softmax(t(T, B), dim=1)
    return T.F.kl_div(log_q, p, reduction="batchmean"), T.nn.KLDivLoss(reduction="sum")(log_q, p)


@idiom
def one_hot_and_pad(T):
    return (T.F.one_hot(t(T, LABELS), 4), T.F.one_hot(T.torch.tensor([0, 2])),
            T.F.pad(t(T, A), (1, 2)), T.F.pad(t(T, A), (1, 1, 2, 0), value=9.0))


@idiom
def normalize_and_cosine(T):
    a, b = t(T, A), t(T, B)
    return T.F.normalize(a, dim=1), T.F.cosine_similarity(a, b, dim=1)


@idiom
def clip_grad_norm(T):
    model = filled(T, T.nn.Linear(4, 2))
    model(t(T, A)).pow(2).sum().backward()
    total = T.nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.5)
    return total, [p.grad for p in model.parameters()]


@idiom
def init_functions(T):
    layer = T.nn.Linear(4, 3)
    T.nn.init.zeros_(layer.bias)
    T.nn.init.constant_(layer.weight, 0.5)
    conv = T.nn.Conv2d(1, 2, 3)
    T.nn.init.normal_(conv.weight, 0.0, 0.02)
    return layer.weight, layer.bias, tuple(conv.weight.shape)


@idiom
def module_apply_init(T):
    def weights_init(m):
        if isinstance(m, T.nn.Linear):
            T.nn.init.ones_(m.weight)
            T.nn.init.constant_(m.bias.data, 0.25)   # DCGAN's weights_init writes .data
    model = T.nn.Sequential(T.nn.Linear(4, 2), T.nn.Tanh())
    model.apply(weights_init)
    with T.torch.no_grad():
        return model(t(T, A))


@idiom
def custom_module_with_parameter(T):
    class Scale(T.nn.Module):
        def __init__(self):
            super().__init__()
            self.s = T.nn.Parameter(T.torch.ones(4) * 2)

        def forward(self, x):
            return x * self.s
    m = Scale()
    return m(t(T, A)), [n for n, _ in m.named_parameters()]


# ====================================================================== optim
def _one_step(T, make_optimizer, steps=3):
    model = filled(T, T.nn.Linear(4, 2))
    opt = make_optimizer(model.parameters())
    for _ in range(steps):
        opt.zero_grad()
        T.F.mse_loss(model(t(T, A)), t(T, B[:, :2])).backward()
        opt.step()
    return [p.detach() for p in model.parameters()]


@idiom
def sgd_momentum_steps(T):
    return _one_step(T, lambda ps: T.optim.SGD(ps, lr=0.1, momentum=0.9))


@idiom
def adam_steps(T):
    return _one_step(T, lambda ps: T.optim.Adam(ps, lr=0.01, betas=(0.5, 0.999)))


@idiom
def adadelta_steps(T):
    return _one_step(T, lambda ps: T.optim.Adadelta(ps, lr=1.0))


@idiom
def rmsprop_and_adagrad_steps(T):
    return (_one_step(T, lambda ps: T.optim.RMSprop(ps, lr=0.01)),
            _one_step(T, lambda ps: T.optim.Adagrad(ps, lr=0.1)))


@idiom
def zero_grad_and_param_groups(T):
    model = T.nn.Linear(4, 2)
    opt = T.optim.SGD(model.parameters(), lr=0.1)
    model(t(T, A)).sum().backward()
    opt.zero_grad()
    return [p.grad for p in model.parameters()], opt.param_groups[0]["lr"]


def _lrs(T, make, epochs=8, metric=None):
    opt = T.optim.SGD(T.nn.Linear(2, 1).parameters(), lr=0.5)
    scheduler = make(opt)
    out = []
    for epoch in range(epochs):
        opt.step()
        scheduler.step() if metric is None else scheduler.step(metric[epoch])
        out.append(opt.param_groups[0]["lr"])
    return out, scheduler.get_last_lr()


@idiom
def step_lr(T):
    return _lrs(T, lambda o: T.sched.StepLR(o, step_size=2, gamma=0.7))


@idiom
def exponential_and_multistep_lr(T):
    return (_lrs(T, lambda o: T.sched.ExponentialLR(o, gamma=0.9)),
            _lrs(T, lambda o: T.sched.MultiStepLR(o, milestones=[2, 5], gamma=0.1)))


@idiom
def cosine_and_lambda_lr(T):
    return (_lrs(T, lambda o: T.sched.CosineAnnealingLR(o, T_max=5, eta_min=0.01), epochs=12),
            _lrs(T, lambda o: T.sched.LambdaLR(o, lambda e: 0.95 ** e)))


@idiom
def reduce_lr_on_plateau(T):
    metric = [1.0, 0.9, 0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8]
    return _lrs(T, lambda o: T.sched.ReduceLROnPlateau(o, patience=1, factor=0.5),
                epochs=10, metric=metric)


# ====================================================================== data
@idiom
def dataloader_yields_tensors(T):
    ds = T.data.TensorDataset(t(T, A), t(T, LABELS))
    loader = T.data.DataLoader(ds, batch_size=2)
    device = T.torch.device("cpu")
    out = []
    for data, target in loader:
        data, target = data.to(device), target.to(device)
        out.append((data, target, data.size(0)))
    return out, len(loader), len(loader.dataset)


@idiom
def dataloader_shuffle_covers_everything(T):
    loader = T.data.DataLoader(T.data.TensorDataset(T.torch.arange(10)), batch_size=3,
                               shuffle=True)
    seen = sorted(int(v) for (batch,) in loader for v in batch)
    return seen, len(loader)


@idiom
def dataloader_over_a_custom_dataset(T):
    class Squares(T.data.Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return np.full(2, i * i, dtype=np.float32), i

    loader = T.data.DataLoader(Squares(), batch_size=2, num_workers=0)
    return [(x, y) for x, y in loader]


# ====================================================================== documented differences
@difference(AttributeError, "ndarray", "`.data` is the array itself")
def data_attribute_is_a_tensor(T):
    layer = T.nn.Linear(4, 3)
    layer.weight.data.normal_(0.0, 0.02)       # DCGAN's weights_init
    return tuple(layer.weight.shape)


@difference(TypeError, r"dtypes differ \(float32 and float64\).*\.float\(\)",
            "no silent type promotion")
def float32_plus_float64_promotes(T):
    return t(T, A) + T.torch.tensor(np.ones(4))


@difference(ValueError, r"input shape \(3, 1\) and target shape \(3,\) differ",
            "losses do not broadcast")
def loss_broadcasts_mismatched_shapes(T):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns and broadcasts (3, 1) against (3,)
        return T.F.mse_loss(t(T, A[:, :1]), t(T, A[:, 0]))


@difference(AttributeError, "register_hook", "no tensor hooks")
def tensor_hooks(T):
    x = T.torch.tensor(A, requires_grad=True)
    x.register_hook(lambda g: g * 2)
    (x * 1).sum().backward()
    return x.grad


# ====================================================================== comparing results
def _plain(v):
    """A result in library-neutral form: tensors -> ('tensor', dtype, shape, values)."""
    if torch is not None and isinstance(v, torch.Tensor):
        return ("tensor", str(v.dtype).replace("torch.", ""), tuple(v.shape),
                v.detach().cpu().numpy())
    if isinstance(v, mg.Tensor):
        return ("tensor", str(v.dtype), tuple(v.shape), v.numpy())
    if torch is not None and isinstance(v, torch.dtype):
        return ("dtype", str(v).replace("torch.", ""))
    if isinstance(v, np.dtype):
        return ("dtype", str(v))
    if isinstance(v, (tuple, list)):
        return tuple(_plain(x) for x in v)
    if isinstance(v, np.ndarray):
        return ("array", str(v.dtype), v.shape, v)
    if isinstance(v, (np.generic,)):
        return v.item()
    return v


def _same(a, b, path="result"):
    """None when ``a`` and ``b`` (plain forms) agree, else the first difference."""
    if isinstance(a, tuple) and a and a[0] in ("tensor", "array"):
        if not (isinstance(b, tuple) and b and b[0] == a[0]):
            return f"{path}: {a[0]} vs {b!r:.80}"
        if a[1:3] != b[1:3]:
            return f"{path}: dtype/shape {a[1:3]} vs {b[1:3]}"
        x, y = np.asarray(a[3]), np.asarray(b[3])
        if x.dtype.kind == "f":
            ok = np.allclose(x, y, rtol=2e-5, atol=2e-6, equal_nan=True)
        else:
            ok = np.array_equal(x, y)
        return None if ok else f"{path}: values differ, max |diff| " \
                               f"{np.max(np.abs(x.astype(float) - y.astype(float))):.3g}"
    if isinstance(a, tuple) and isinstance(b, tuple):
        if len(a) != len(b):
            return f"{path}: lengths {len(a)} vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            problem = _same(x, y, f"{path}[{i}]")
            if problem:
                return problem
        return None
    if isinstance(a, float) and isinstance(b, (int, float)):
        return None if math.isclose(a, b, rel_tol=2e-6, abs_tol=1e-9) else f"{path}: {a} vs {b}"
    return None if a == b and type(a) is type(b) else f"{path}: {a!r:.80} vs {b!r:.80}"


def run(fn, T):
    """('ok', plain result) or ('raised', exception)."""
    try:
        return "ok", _plain(fn(T))
    except Exception as e:  # noqa: BLE001 - any failure is a result here
        return "raised", e


def compare(fn):
    """None when minigen behaves as torch on ``fn``, else what differs."""
    mine, theirs = libraries()
    (k1, r1), (k2, r2) = run(fn, mine), run(fn, theirs)
    if k1 == k2 == "raised":
        return None
    if k1 != k2:
        what = r1 if k1 == "raised" else r2
        who = "minigen" if k1 == "raised" else "torch"
        return f"only {who} raised {type(what).__name__}: {what}"
    return _same(r1, r2)


needs_torch = pytest.mark.skipif(torch is None, reason="torch not installed: nothing to compare")


@needs_torch
@pytest.mark.parametrize("fn", IDIOMS, ids=lambda f: f.__name__)
def test_idiom_behaves_as_in_pytorch(fn):
    problem = compare(fn)
    assert problem is None, problem


@needs_torch
@pytest.mark.parametrize("fn", DIFFERENCES, ids=lambda f: f.__name__)
def test_documented_difference(fn):
    error, match, readme_phrase = fn.expected
    mine, theirs = libraries()
    kind, _ = run(fn, theirs)
    assert kind == "ok", "torch runs this idiom"
    with pytest.raises(error, match=match):
        fn(mine)
    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md")).read()
    section = readme.split("## Differences from PyTorch", 1)[-1].split("\n## ", 1)[0]
    assert readme_phrase in section, f"README's Differences section must explain {fn.__name__}"


@needs_torch
def test_the_comparison_catches_a_difference():
    """The harness itself: a planted difference (values, dtype, one side raising) is caught."""
    assert compare(lambda T: T.torch.tensor([1.0, 2.0]) * (1 if T.name == "torch" else 1.01))
    assert compare(lambda T: T.torch.tensor([1.0], dtype=T.torch.float64 if T.name == "torch"
                                            else T.torch.float32))
    assert compare(lambda T: T.torch.tensor([1.0]).no_such_method() if T.name == "minigen"
                   else 1)
    assert compare(lambda T: T.torch.tensor(1.0).item() + (0 if T.name == "torch" else 1e-3))
    assert compare(lambda T: T.torch.tensor([1.0]) + 0) is None


def test_there_are_at_least_100_idioms():
    assert len(IDIOMS) >= 100


def main():
    """Count idioms that behave the same (each function counts once)."""
    same = [fn.__name__ for fn in IDIOMS + DIFFERENCES if compare(fn) is None]
    total = len(IDIOMS) + len(DIFFERENCES)
    print(f"{len(same)} of {total} idiom groups behave as in PyTorch")
    for fn in IDIOMS + DIFFERENCES:
        problem = compare(fn)
        if problem:
            print(f"  {fn.__name__}: {problem[:150]}")


if __name__ == "__main__":
    sys.exit(main())
