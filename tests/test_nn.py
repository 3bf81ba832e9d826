"""Modules, layers and init: the Module tree, state dicts, gradient checks, PyTorch parity."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigen as mg
from minigen import nn
from minigen.nn import functional as F
from minigen.nn import init

F64 = np.float64
TIGHT = dict(rtol=1e-10, atol=1e-12)      # float64 parity with PyTorch
CHECK = dict(atol=1e-6, rtol=1e-5)        # float64 finite differences


def _torch():
    return pytest.importorskip("torch", reason="torch not installed: PyTorch parity not checked")


def t64(shape, grad=True, seed=0):
    return mg.tensor(np.random.default_rng(seed).standard_normal(shape), dtype=F64,
                     requires_grad=grad)


# ================================================================== Module tree
class _Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.scale = nn.Parameter(np.ones(4))
        self.register_buffer("count", mg.zeros(1))
        self.act = nn.ReLU()
        self.note = "plain attribute"

    def forward(self, x):
        return self.act(self.fc(x)) * self.scale


def test_attributes_are_registered_in_order():
    b = _Block()
    # own parameters first, then the children's (torch's order)
    assert [n for n, _ in b.named_parameters()] == ["scale", "fc.weight", "fc.bias"]
    assert [n for n, _ in b.named_buffers()] == ["count"]
    assert [n for n, _ in b.named_children()] == ["fc", "act"]
    assert [n for n, _ in b.named_modules()] == ["", "fc", "act"]
    assert b.note == "plain attribute" and isinstance(b.scale, nn.Parameter)
    assert b.scale.requires_grad and b.scale.dtype == np.float32
    assert list(b.state_dict()) == ["scale", "count", "fc.weight", "fc.bias"]
    del b.scale
    assert [n for n, _ in b.named_parameters()] == ["fc.weight", "fc.bias"]


def test_shared_parameter_is_listed_once():
    lin = nn.Linear(2, 2)
    model = nn.Sequential(lin, nn.Tanh(), lin)
    assert len(list(model.parameters())) == 2
    x = mg.randn(5, 2)
    model(x).sum().backward()
    assert lin.weight.grad.shape == (2, 2)


def test_setattr_errors_are_clear():
    class Forgetful(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.zeros(2))

    with pytest.raises(AttributeError, match="super\\(\\).__init__"):
        Forgetful()
    lin = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="Parameter slot"):
        lin.weight = mg.zeros(2, 2)
    lin.bias = None  # allowed: "no bias"
    assert [n for n, _ in lin.named_parameters()] == ["weight"]


def test_train_eval_propagate_and_zero_grad():
    model = nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.Dropout(0.5), nn.BatchNorm1d(3)))
    model.eval()
    assert all(not m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    model(mg.randn(4, 2)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    model.requires_grad_(False)
    assert not any(p.requires_grad for p in model.parameters())


def test_apply_and_repr():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    seen = []
    model.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "ReLU", "Sequential"]
    text = repr(model)
    assert "(0): Linear(in_features=2, out_features=3, bias=True)" in text and "(1): ReLU()" in text


def test_containers():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear) and len(seq[:2]) == 2
    with pytest.raises(IndexError, match="out of range"):
        seq[3]
    seq.append(nn.Sigmoid())
    assert seq(mg.randn(4, 2)).shape == (4, 1)
    ml = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(list(ml.parameters())) == 6
    assert next(iter(ml.named_parameters()))[0] == "0.weight"
    md = nn.ModuleDict({"enc": nn.Linear(2, 2)})
    assert "enc" in md and list(md.state_dict()) == ["enc.weight", "enc.bias"]


def test_to_dtype_keeps_parameter_objects():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    w = model[0].weight
    model.double()
    assert model[0].weight is w and w.dtype == np.float64
    assert model[1].running_mean.dtype == np.float64
    assert model[1].num_batches_tracked.dtype == np.int64   # integer buffers keep their type
    model.to("cpu")
    with pytest.raises(ValueError, match="unknown device"):
        model.to("tpu")


# ================================================================== state dicts
def test_state_dict_is_a_snapshot_and_round_trips():
    a, b = _Block(), _Block()
    sd = a.state_dict()
    assert all(isinstance(v, np.ndarray) for v in sd.values())
    a.fc.weight.data += 1                      # training goes on...
    assert not np.allclose(sd["fc.weight"], a.fc.weight.numpy())  # ...the snapshot stays
    w = b.fc.weight
    b.load_state_dict(sd)
    assert b.fc.weight is w                    # copied in place
    for k, v in b.state_dict().items():
        np.testing.assert_array_equal(v, sd[k])


def test_load_state_dict_reports_every_problem_at_once():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    sd = model.state_dict()
    del sd["0.bias"], sd["1.bias"]
    sd["0.weight"] = np.zeros((3, 4))
    sd["2.weight"] = np.zeros(1)
    with pytest.raises(RuntimeError) as err:
        model.load_state_dict(sd)
    msg = str(err.value)
    assert '"0.bias", "1.bias"' in msg and "Missing" in msg
    assert 'Unexpected key(s) in state_dict: "2.weight"' in msg
    assert "size mismatch for 0.weight" in msg and "(3, 4)" in msg and "(4, 3)" in msg
    before = model[1].weight.numpy().copy()
    with pytest.raises(RuntimeError, match="size mismatch"):   # shapes are checked even non-strict
        model.load_state_dict(sd, strict=False)
    np.testing.assert_array_equal(model[1].weight.numpy(), before)  # nothing half-loaded
    sd["0.weight"] = np.ones((4, 3))
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert missing == ["0.bias", "1.bias"] and unexpected == ["2.weight"]
    np.testing.assert_array_equal(model[0].weight.numpy(), 1)


def test_torch_state_dict_loads_with_the_same_keys():
    torch = _torch()
    tm = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.BatchNorm1d(5), torch.nn.ReLU(),
                             torch.nn.Linear(5, 2)).double()
    tm.train()
    tm(torch.randn(8, 3, dtype=torch.float64))   # non-trivial running stats
    ours = nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 2)).double()
    assert list(ours.state_dict()) == list(tm.state_dict())
    ours.load_state_dict(tm.state_dict())       # torch tensors are accepted as values
    tm.eval(), ours.eval()
    x = np.random.default_rng(1).standard_normal((4, 3))
    np.testing.assert_allclose(ours(mg.tensor(x, dtype=F64)).numpy(),
                               tm(torch.tensor(x)).detach().numpy(), **TIGHT)


# ================================================================== parity helpers
def _copy(ours, theirs):
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})


def _compare(ours, theirs, x, seed=0, tol=TIGHT):
    """Forward, then backward of a random cotangent, in both libraries: outputs, input
    gradients and every parameter gradient must agree."""
    torch = _torch()
    xm = mg.tensor(x, dtype=F64, requires_grad=True)
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    ym, yt = ours(xm), theirs(xt)
    np.testing.assert_allclose(ym.numpy(), yt.detach().numpy(), **tol)
    g = np.random.default_rng(seed + 7).standard_normal(ym.shape)
    ym.backward(mg.tensor(g, dtype=F64))
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(xm.grad.numpy(), xt.grad.numpy(), **tol)
    tp = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tp[name].grad.numpy(), err_msg=name, **tol)
    return ym


# ================================================================== Linear
@settings(max_examples=15)
@given(batch=st.integers(1, 5), fin=st.integers(1, 6), fout=st.integers(1, 6),
       bias=st.booleans(), lead=st.sampled_from([(), (2,), (2, 3)]))
def test_linear_matches_torch(batch, fin, fout, bias, lead):
    torch = _torch()
    tl = torch.nn.Linear(fin, fout, bias=bias).double()
    ours = nn.Linear(fin, fout, bias=bias, dtype=F64)
    _copy(ours, tl)
    x = np.random.default_rng(batch).standard_normal(lead + (batch, fin))
    _compare(ours, tl, x)


def test_linear_on_a_single_vector_and_errors():
    lin = nn.Linear(3, 2)
    assert lin(mg.randn(3)).shape == (2,)
    with pytest.raises(ValueError, match=r"linear: input of shape \(4, 5\).*3 features"):
        lin(mg.randn(4, 5))
    with pytest.raises(TypeError, match="linear: dtypes differ"):
        lin(mg.randn(4, 3, dtype=F64))


def test_linear_gradcheck_and_gradgradcheck():
    x, w, b = t64((4, 3)), t64((2, 3), seed=1), t64((2,), seed=2)
    assert mg.gradcheck(F.linear, [x, w, b], **CHECK)
    assert mg.gradgradcheck(F.linear, [x, w, b], **CHECK)
    # the plain backward (products on arrays) and create_graph's (ops) give the same numbers
    g = t64((4, 2), seed=3)
    plain = mg.autograd.grad(F.linear(x, w, b), [x, w, b], g)
    graph = mg.autograd.grad(F.linear(x, w, b), [x, w, b], g, create_graph=True)
    for p, q in zip(plain, graph):
        assert not p.requires_grad and q.requires_grad
        np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-15)


def test_default_init_is_torchs():
    lin = nn.Linear(50, 400)
    bound = 1 / math.sqrt(50)                  # kaiming_uniform(a=sqrt(5)) = U(-1/sqrt(fan_in), ..)
    w, b = lin.weight.numpy(), lin.bias.numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.98 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.02 * bound
    assert np.abs(b).max() <= bound and w.dtype == np.float32
    conv = nn.Conv2d(4, 6, 3)
    assert np.abs(conv.weight.numpy()).max() <= 1 / math.sqrt(36)
    deconv = nn.ConvTranspose2d(4, 6, 3)       # torch takes fan_in from dim 1: 6 * 9
    assert np.abs(deconv.weight.numpy()).max() <= 1 / math.sqrt(54)
    mg.manual_seed(5)
    a = nn.Linear(3, 3).weight.numpy()
    mg.manual_seed(5)
    np.testing.assert_array_equal(a, nn.Linear(3, 3).weight.numpy())  # seeded


# ================================================================== init
@pytest.mark.parametrize("shape", [(3, 5), (8, 4, 3, 3), (4, 2, 5)])
def test_fans_and_gains_match_torch(shape):
    torch = _torch()
    t = torch.empty(shape)
    assert init._calculate_fan_in_and_fan_out(mg.zeros(*shape)) == \
        torch.nn.init._calculate_fan_in_and_fan_out(t)
    for nl, param in [("linear", None), ("tanh", None), ("relu", None), ("leaky_relu", 0.2),
                      ("leaky_relu", None), ("sigmoid", None), ("conv2d", None), ("selu", None)]:
        expected = torch.nn.init.calculate_gain(nl, param)
        assert init.calculate_gain(nl, param) == pytest.approx(expected)
    with pytest.raises(ValueError, match="fan in and fan out"):
        init.xavier_uniform_(mg.zeros(5))


@pytest.mark.parametrize("fn, kwargs, kind, expected_std", [
    (init.xavier_uniform_, {}, "uniform", math.sqrt(2 / (200 + 300))),
    (init.xavier_normal_, {"gain": 2.0}, "normal", 2 * math.sqrt(2 / (200 + 300))),
    (init.kaiming_uniform_, {"nonlinearity": "relu"}, "uniform", math.sqrt(2 / 200)),
    (init.kaiming_normal_, {"mode": "fan_out", "nonlinearity": "relu"}, "normal",
     math.sqrt(2 / 300)),
    (lambda t: init.normal_(t, 0.0, 0.02), {}, "normal", 0.02),
])
def test_init_scales(fn, kwargs, kind, expected_std):
    w = mg.zeros(300, 200)
    fn(w, **kwargs)
    a = w.numpy()
    assert abs(a.mean()) < 0.02 * expected_std * 10 / math.sqrt(6)
    assert a.std() == pytest.approx(expected_std, rel=0.02)
    if kind == "uniform":  # U(-b, b): all inside b = sqrt(3) std, and the edges reached
        b = math.sqrt(3) * expected_std
        assert np.abs(a).max() <= b + 1e-7 and np.abs(a).max() > 0.99 * b


def test_dcgan_init():
    model = nn.Sequential(nn.ConvTranspose2d(8, 4, 4, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Conv2d(4, 64, 4), nn.Linear(100, 100))
    init.dcgan_init_(model)
    for m in (model[0], model[3], model[4]):
        assert m.weight.numpy().std() == pytest.approx(0.02, rel=0.15)
        assert abs(m.weight.numpy().mean()) < 0.005
    assert np.all(model[3].bias.numpy() == 0) and model[0].bias is None
    assert model[1].weight.numpy().mean() == pytest.approx(1.0, abs=0.05)
    assert np.all(model[1].bias.numpy() == 0)


# ================================================================== convolution and pooling
@pytest.mark.parametrize("cfg", [
    dict(kernel_size=3),
    dict(kernel_size=(3, 2), stride=2, padding=1),
    dict(kernel_size=3, stride=(2, 1), padding=(2, 1), dilation=2, bias=False),
    dict(kernel_size=4, stride=2, padding=1),
])
def test_conv2d_matches_torch(cfg):
    torch = _torch()
    tl = torch.nn.Conv2d(3, 4, **cfg).double()
    ours = nn.Conv2d(3, 4, dtype=F64, **cfg)
    _copy(ours, tl)
    _compare(ours, tl, np.random.default_rng(0).standard_normal((2, 3, 9, 8)))


@pytest.mark.parametrize("cfg", [
    dict(kernel_size=3),
    dict(kernel_size=4, stride=2, padding=1),                  # DCGAN's generator block
    dict(kernel_size=3, stride=2, padding=1, output_padding=1, bias=False),
    dict(kernel_size=(3, 2), stride=(3, 2), padding=(0, 1), output_padding=(2, 0)),
])
def test_conv_transpose2d_matches_torch(cfg):
    torch = _torch()
    tl = torch.nn.ConvTranspose2d(3, 2, **cfg).double()
    ours = nn.ConvTranspose2d(3, 2, dtype=F64, **cfg)
    _copy(ours, tl)
    _compare(ours, tl, np.random.default_rng(1).standard_normal((2, 3, 5, 4)))


@pytest.mark.parametrize("cls, cfg", [
    ("MaxPool2d", dict(kernel_size=2)),
    ("MaxPool2d", dict(kernel_size=3, stride=2, padding=1)),
    ("AvgPool2d", dict(kernel_size=2)),
    ("AvgPool2d", dict(kernel_size=3, stride=2, padding=1)),
])
def test_pooling_matches_torch(cls, cfg):
    torch = _torch()
    _compare(getattr(nn, cls)(**cfg), getattr(torch.nn, cls)(**cfg),
             np.random.default_rng(2).standard_normal((2, 3, 6, 7)))


def test_conv_layer_errors():
    with pytest.raises(NotImplementedError, match="groups"):
        nn.Conv2d(4, 4, 3, groups=2)
    with pytest.raises(ValueError, match="conv2d"):
        nn.Conv2d(3, 4, 3)(mg.randn(2, 5, 8, 8))   # 5 channels for a 3-channel layer


# ================================================================== batch norm
@pytest.mark.parametrize("cls, shape", [("BatchNorm1d", (6, 4)), ("BatchNorm1d", (5, 4, 3)),
                                        ("BatchNorm2d", (3, 4, 5, 2))])
@pytest.mark.parametrize("momentum", [0.1, 0.3, None])
def test_batch_norm_matches_torch_in_train_and_eval(cls, shape, momentum):
    torch = _torch()
    tl = getattr(torch.nn, cls)(4, momentum=momentum).double()
    ours = getattr(nn, cls)(4, momentum=momentum, dtype=F64)
    with torch.no_grad():
        tl.weight.uniform_(0.5, 1.5)
        tl.bias.uniform_(-0.5, 0.5)
    _copy(ours, tl)
    rng = np.random.default_rng(3)
    for step in range(3):   # running statistics follow torch's step by step
        _compare(ours, tl, 2 + 3 * rng.standard_normal(shape), seed=step)
        for name in ("running_mean", "running_var"):
            np.testing.assert_allclose(getattr(ours, name).numpy(), getattr(tl, name).numpy(),
                                       **TIGHT)
    assert int(ours.num_batches_tracked.item()) == 3
    ours.eval(), tl.eval()
    _compare(ours, tl, rng.standard_normal(shape), seed=9)


def test_batch_norm_without_affine_or_running_stats():
    torch = _torch()
    for kwargs in (dict(affine=False), dict(track_running_stats=False)):
        tl = torch.nn.BatchNorm2d(3, **kwargs).double()
        ours = nn.BatchNorm2d(3, dtype=F64, **kwargs)
        x = np.random.default_rng(4).standard_normal((4, 3, 2, 2))
        _compare(ours, tl, x)
        ours.eval(), tl.eval()
        _compare(ours, tl, x)


def test_batch_norm_errors():
    bn = nn.BatchNorm1d(3)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(mg.randn(1, 3))
    with pytest.raises(ValueError, match="BatchNorm1d: expected a 2 or 3-D input"):
        bn(mg.randn(2, 3, 4, 5))
    with pytest.raises(ValueError, match="batch_norm: weight of shape"):
        F.batch_norm(mg.randn(4, 3), None, None, mg.ones(2), None, training=True)


@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 2, 2)])
def test_batch_norm_gradcheck_and_gradgradcheck_training(shape):
    C = shape[1]
    x, w, b = t64(shape), t64((C,), seed=1), t64((C,), seed=2)

    def f(x, w, b):
        return F.batch_norm(x, None, None, w, b, training=True)

    assert mg.gradcheck(f, [x, w, b], **CHECK)
    assert mg.gradgradcheck(f, [x, w, b], **CHECK)
    assert mg.gradgradcheck(lambda x: F.batch_norm(x, None, None, training=True), [x], **CHECK)


def test_batch_norm_gradcheck_and_gradgradcheck_eval():
    x, w, b = t64((4, 3)), t64((3,), seed=1), t64((3,), seed=2)
    rm, rv = mg.tensor([0.1, -0.2, 0.3], dtype=F64), mg.tensor([1.5, 0.5, 2.0], dtype=F64)

    def f(x, w, b):
        return F.batch_norm(x, rm, rv, w, b, training=False)

    assert mg.gradcheck(f, [x, w, b], **CHECK)
    assert mg.gradgradcheck(f, [x, w, b], **CHECK)


def test_batch_norm_double_backward_matches_torch():
    """A gradient penalty through batch norm (what WGAN-GP computes) agrees with torch."""
    torch = _torch()
    x_np = np.random.default_rng(5).standard_normal((5, 3))
    w_np = np.array([0.5, 1.5, -1.0])
    x, w = mg.tensor(x_np, dtype=F64, requires_grad=True), mg.tensor(w_np, dtype=F64,
                                                                     requires_grad=True)
    xt, wt = torch.tensor(x_np, requires_grad=True), torch.tensor(w_np, requires_grad=True)
    y = (F.batch_norm(x, None, None, w, None, training=True) ** 3).sum()
    yt = (torch.nn.functional.batch_norm(xt, None, None, wt, None, training=True) ** 3).sum()
    (gx,) = mg.grad(y, [x], create_graph=True)
    (gxt,) = torch.autograd.grad(yt, [xt], create_graph=True)
    (gx * gx).sum().backward()
    (gxt * gxt).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(w.grad.numpy(), wt.grad.numpy(), rtol=1e-9, atol=1e-11)


# ================================================================== layer norm
@pytest.mark.parametrize("shape, norm", [((4, 5), 5), ((2, 3, 4), (3, 4)), ((3, 2, 4), 4)])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_matches_torch(shape, norm, affine):
    torch = _torch()
    tl = torch.nn.LayerNorm(norm, elementwise_affine=affine).double()
    if affine:
        with torch.no_grad():
            tl.weight.uniform_(0.5, 1.5)
            tl.bias.uniform_(-0.5, 0.5)
    ours = nn.LayerNorm(norm, elementwise_affine=affine, dtype=F64)
    _copy(ours, tl)
    _compare(ours, tl, 1 + 2 * np.random.default_rng(6).standard_normal(shape))


def test_layer_norm_gradcheck_and_gradgradcheck():
    x, w, b = t64((3, 4)), t64((4,), seed=1), t64((4,), seed=2)

    def f(x, w, b):
        return F.layer_norm(x, (4,), w, b)

    assert mg.gradcheck(f, [x, w, b], **CHECK)
    assert mg.gradgradcheck(f, [x, w, b], **CHECK)
    x3 = t64((2, 2, 3))
    assert mg.gradgradcheck(lambda x: F.layer_norm(x, (2, 3)), [x3], **CHECK)
    with pytest.raises(ValueError, match="normalized_shape"):
        F.layer_norm(x, (3,))


# ================================================================== dropout, embedding, shapes
def test_dropout():
    x = mg.ones(200, 100)
    drop = nn.Dropout(0.3)
    drop.eval()
    assert drop(x) is x
    drop.train()
    y = drop(x).numpy()
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.7)}
    assert (y == 0).mean() == pytest.approx(0.3, abs=0.01)
    assert y.mean() == pytest.approx(1.0, abs=0.02)           # expectation kept
    assert np.all(F.dropout(x, 1.0).numpy() == 0)
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\]"):
        nn.Dropout(1.5)
    xg = t64((4, 5))

    def f(x):
        mg.manual_seed(11)   # the same mask at every evaluation
        return F.dropout(x, 0.4)

    y = f(xg)
    y.backward(mg.ones(4, 5, dtype=F64))
    np.testing.assert_allclose(xg.grad.numpy(), y.numpy() / xg.numpy())  # mask / (1-p)
    assert mg.gradcheck(f, [xg], **CHECK) and mg.gradgradcheck(f, [xg], **CHECK)


def test_embedding_matches_torch_with_repeats_and_padding():
    torch = _torch()
    idx = np.array([[1, 3, 1], [0, 3, 3]])
    for padding_idx in (None, 3):
        tl = torch.nn.Embedding(5, 4, padding_idx=padding_idx).double()
        ours = nn.Embedding(5, 4, padding_idx=padding_idx, dtype=F64)
        if padding_idx is not None:
            assert np.all(ours.weight.numpy()[padding_idx] == 0)
        _copy(ours, tl)
        ym, yt = ours(mg.tensor(idx)), tl(torch.tensor(idx))
        np.testing.assert_allclose(ym.numpy(), yt.detach().numpy(), **TIGHT)
        g = np.random.default_rng(0).standard_normal(ym.shape)
        ym.backward(mg.tensor(g, dtype=F64))
        yt.backward(torch.tensor(g))
        np.testing.assert_allclose(ours.weight.grad.numpy(), tl.weight.grad.numpy(), **TIGHT)
    with pytest.raises(IndexError, match="index 5 is out of range for 5 embeddings"):
        ours(mg.tensor([0, 5]))
    with pytest.raises(TypeError, match="integers"):
        ours(mg.tensor([0.0, 1.0]))
    w = t64((4, 3))
    assert mg.gradcheck(lambda w: F.embedding(mg.tensor([0, 2, 2]), w), [w], **CHECK)
    assert mg.gradgradcheck(lambda w: F.embedding(mg.tensor([0, 2, 2]), w), [w], **CHECK)


def test_flatten_unflatten():
    x = mg.randn(2, 3, 4, 5)
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(0, 2)(x).shape == (24, 5)
    assert nn.Unflatten(1, (1, 28, 28))(mg.randn(2, 784)).shape == (2, 1, 28, 28)
    y = nn.Unflatten(-1, (2, 2))(mg.randn(3, 4))
    assert y.shape == (3, 2, 2)


@pytest.mark.parametrize("kwargs, shape", [
    (dict(scale_factor=2), (2, 3, 3, 4)),
    (dict(scale_factor=(2, 3)), (1, 2, 2, 3)),
    (dict(size=(5, 7)), (1, 2, 3, 4)),      # not a multiple: torch's floor(i * in/out) rule
    (dict(scale_factor=3), (2, 2, 5)),      # 1-D signals too
])
def test_upsample_matches_torch(kwargs, shape):
    torch = _torch()
    _compare(nn.Upsample(**kwargs), torch.nn.Upsample(mode="nearest", **kwargs),
             np.random.default_rng(7).standard_normal(shape))


def test_upsample_gradcheck_and_errors():
    x = t64((1, 2, 2, 3))
    for kw in (dict(scale_factor=2), dict(size=(3, 5))):
        assert mg.gradcheck(lambda x: F.upsample_nearest(x, **kw), [x], **CHECK)
        assert mg.gradgradcheck(lambda x: F.upsample_nearest(x, **kw), [x], **CHECK)
    with pytest.raises(ValueError, match="exactly one of size and scale_factor"):
        F.upsample_nearest(x)
    with pytest.raises(NotImplementedError, match="bilinear"):
        nn.Upsample(scale_factor=2, mode="bilinear")


@pytest.mark.parametrize("ours, theirs", [
    (lambda: nn.ReLU(), "ReLU()"),
    (lambda: nn.LeakyReLU(0.2, inplace=True), "LeakyReLU(0.2)"),
    (lambda: nn.Sigmoid(), "Sigmoid()"),
    (lambda: nn.Tanh(), "Tanh()"),
    (lambda: nn.Softplus(), "Softplus()"),
    (lambda: nn.Softplus(beta=2.0, threshold=5.0), "Softplus(beta=2.0, threshold=5.0)"),
    (lambda: nn.ELU(0.5), "ELU(0.5)"),
    (lambda: nn.Softmax(dim=1), "Softmax(dim=1)"),
    (lambda: nn.LogSoftmax(dim=-1), "LogSoftmax(dim=-1)"),
])
def test_activation_modules_match_torch(ours, theirs):
    torch = _torch()
    x = 4 * np.random.default_rng(8).standard_normal((5, 6))
    x[0, :3] = [25.0, -30.0, 3.0]    # beyond Softplus's threshold
    _compare(ours(), eval(f"torch.nn.{theirs}"), x)


def test_deepcopy_makes_an_independent_model():
    import copy
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    twin = copy.deepcopy(model)
    assert isinstance(twin[0].weight, nn.Parameter) and twin[0].weight is not model[0].weight
    twin[0].weight.data += 1
    assert not np.allclose(twin[0].weight.numpy(), model[0].weight.numpy())


# ================================================================== GPU
@pytest.mark.gpu
def test_model_on_gpu_matches_cpu():
    mg.manual_seed(0)
    cpu = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.LeakyReLU(0.2),
                        nn.Dropout(0.0), nn.Flatten(), nn.Linear(4 * 6 * 6, 3), nn.LayerNorm(3))
    gpu = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.LeakyReLU(0.2),
                        nn.Dropout(0.0), nn.Flatten(), nn.Linear(4 * 6 * 6, 3),
                        nn.LayerNorm(3)).to("cuda")
    assert all(p.device == "cuda" for p in gpu.parameters())
    gpu.load_state_dict(cpu.state_dict())
    x = np.random.default_rng(0).standard_normal((5, 1, 6, 6)).astype(np.float32)
    labels = np.array([0, 2, 1, 1, 0])
    outs = []
    for model, device in ((cpu, "cpu"), (gpu, "cuda")):
        loss = F.cross_entropy(model(mg.tensor(x, device=device)), mg.tensor(labels, device=device))
        loss.backward()
        outs.append((loss.item(), model.state_dict(), [p.grad.numpy() for p in model.parameters()]))
    assert outs[0][0] == pytest.approx(outs[1][0], rel=1e-5)
    for k in outs[0][1]:
        np.testing.assert_allclose(outs[0][1][k], outs[1][1][k], rtol=1e-5, atol=1e-6, err_msg=k)
    for a, b in zip(outs[0][2], outs[1][2]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    init.dcgan_init_(gpu)
    assert gpu[0].weight.device == "cuda"
