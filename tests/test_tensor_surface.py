"""The PyTorch-shaped surface added for issue 13: gradients of the new differentiable ops
(gradcheck and gradgradcheck, float64), and the semantics that training loops rely on --
in-place updates, version counting, dtype rules, ``size``/``numel``, ``to``, devices,
optimizers and schedulers (against PyTorch where installed).
"""
import numpy as np
import pytest

import minigen as mg
import minigen.nn.functional as F
from minigen.ops.reduce import Norm2

try:
    import torch
except ImportError:  # pragma: no cover - depends on the machine
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="torch not installed: no parity check")

RNG = np.random.default_rng(7)
X = RNG.standard_normal((3, 4)) + np.arange(12).reshape(3, 4) * 0.37   # distinct entries
Y = RNG.standard_normal((3, 4))
POS = np.abs(X) + 0.5


def leaf(a):
    return mg.tensor(np.array(a, dtype=np.float64), requires_grad=True)


def _residual_in_place(x):
    h = x * 2
    h += x.exp()          # recorded: h becomes the output of the add ...
    h *= x                # ... then of the mul, the old values living on inside the graph
    return h.tanh_()


def _setitem(x, v):
    h = x * 1
    h[:, 1] = v           # index_put, recorded
    h[h.detach() > 2.5] = 0.0
    return h


# name -> (function of tensors, input arrays)
CASES = {
    "max_dim_values": (lambda x: x.max(dim=1).values, [X]),
    "min_dim_keepdim": (lambda x: x.min(0, keepdim=True)[0], [X]),
    "gather": (lambda x: x.gather(1, mg.tensor([[0, 0, 3], [2, 1, 1], [3, 3, 3]])), [X]),
    "index_select": (lambda x: x.index_select(1, mg.tensor([3, 0, 3])), [X]),
    "sort_values": (lambda x: x.sort(dim=1, descending=True).values, [X]),
    "topk_values": (lambda x: x.topk(2, dim=0).values, [X]),
    "norm_all": (lambda x: x.norm(), [X]),
    "norm_dim": (lambda x: x.norm(2, dim=1, keepdim=True), [X]),
    "norm_p1": (lambda x: x.norm(p=1, dim=0), [X]),
    "norm_p3": (lambda x: x.norm(p=3, dim=1), [X]),
    "sin_cos": (lambda x: x.sin() * x.cos(), [X]),
    "square_reciprocal_rsqrt": (lambda p: p.square() + p.reciprocal() + p.rsqrt(), [POS]),
    "lerp": (lambda a, b: mg.lerp(a, b, 0.3), [X, Y]),
    "add_alpha": (lambda a, b: a.add(b, alpha=-2.5), [X, Y]),
    "repeat": (lambda x: x.repeat(2, 1, 3), [X]),
    "expand_minus_one": (lambda x: x[:1].expand(4, -1), [X]),
    "flip": (lambda x: x.flip(0, 1), [X]),
    "narrow_unbind": (lambda x: mg.stack(x.narrow(1, 1, 2).unbind(1)), [X]),
    "t_view_as": (lambda x: x.t().view_as(mg.zeros(2, 6)), [X]),
    "masked_fill": (lambda x: x.masked_fill(mg.tensor(X > 1), -1.0), [X]),
    "prod": (lambda x: x.prod(1), [X]),
    "setitem": (_setitem, [X, Y[:, 0]]),
    "residual_in_place": (_residual_in_place, [X]),
    "normalize": (lambda x: F.normalize(x, dim=1), [X]),
    "cosine_similarity": (lambda a, b: F.cosine_similarity(a, b, dim=1), [X, Y]),
    "kl_div": (lambda q, p: F.kl_div(F.log_softmax(q, 1), F.softmax(p, 1),
                                     reduction="batchmean"), [X, Y]),
    "smooth_l1": (lambda a, b: F.smooth_l1_loss(a, b), [X, Y + 3]),
    "logsigmoid_silu": (lambda x: F.logsigmoid(x) + F.silu(x), [X]),
    "leaky_relu_inplace": (lambda x: F.leaky_relu(x * 1, 0.2, inplace=True), [X]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_new_ops_gradcheck_and_gradgradcheck(name):
    fn, arrays = CASES[name]
    assert mg.gradcheck(fn, [leaf(a) for a in arrays])
    assert mg.gradgradcheck(fn, [leaf(a) for a in arrays])


def test_gradcheck_catches_a_wrong_norm_backward():
    class BadNorm(Norm2):
        def backward(self, g):  # a factor 2 too much, as from d(x^2) = 2x
            return super().backward(g) * 2

    with pytest.raises(mg.GradcheckError, match="analytic"):
        mg.gradcheck(lambda x: BadNorm.apply(x, axes=(1,), keepdim=False), [leaf(X)])


def test_norm_gradient_at_zero_is_zero_not_nan():
    """WGAN-GP can meet a zero gradient: d||x||/dx there is taken as 0 (PyTorch's choice)."""
    x = mg.zeros(2, 3, dtype="float64", requires_grad=True)
    x.norm(dim=1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((2, 3)))


# ------------------------------------------------------------------ max / min forms
def test_max_forms():
    x = mg.tensor([[1.0, 5.0, 5.0], [7.0, 0.0, 2.0]])
    r = x.max(dim=1)
    assert type(r).__name__ == "max" and r._fields == ("values", "indices")
    np.testing.assert_array_equal(r.values.numpy(), [5, 7])
    np.testing.assert_array_equal(r.indices.numpy(), [1, 0])   # the first of a tie
    assert r.indices.dtype == np.int64
    assert x.max().item() == 7.0 and mg.max(x).item() == 7.0
    np.testing.assert_array_equal(mg.max(x, mg.full((2, 3), 3.0)).numpy(),
                                  [[3, 5, 5], [7, 3, 3]])
    with pytest.raises(TypeError, match="amax"):
        x.max(dim=(0, 1))


# ------------------------------------------------------------------ size, numel, dtypes
def test_size_is_a_method():
    x = mg.zeros(2, 3, 4)
    assert x.size() == (2, 3, 4) and x.size(1) == 3 and x.size(-1) == 4
    assert x.numel() == 24 and mg.numel(x) == 24 and x.dim() == 3
    with pytest.raises(IndexError, match="size: dim 3 is out of range"):
        x.size(3)


@pytest.mark.parametrize("data, dtype", [
    ([1.0, 2.0], np.float32), (2.5, np.float32), ([1, 2], np.int64), ([True], np.bool_),
    (np.zeros(2), np.float64), (np.zeros(2, np.float32), np.float32), (np.float64(1.0), np.float64),
    (np.arange(3), np.int64), (np.zeros(2, np.uint8), np.uint8),
])
def test_tensor_dtype_rule_is_pytorchs(data, dtype):
    assert mg.tensor(data).dtype == dtype


def test_from_numpy_shares_and_tensor_copies():
    a = np.zeros(3, np.float32)
    shared, copied = mg.from_numpy(a), mg.tensor(a)
    a[0] = 1
    assert shared[0].item() == 1 and copied[0].item() == 0
    assert mg.as_tensor(a).data is a and mg.as_tensor(a, dtype=mg.float64).data is not a
    with pytest.raises(TypeError, match="from_numpy: expected a numpy.ndarray, got list"):
        mg.from_numpy([1.0])


def test_to_accepts_pytorchs_forms():
    x = mg.tensor([1.5, 2.5])
    assert x.to(mg.float64).dtype == np.float64 and x.to("float64").dtype == np.float64
    assert x.to(mg.device("cpu")) is x and x.to("cpu", mg.float32) is x
    assert x.to(mg.tensor([1])).dtype == np.int64
    assert x.to(dtype=mg.float64, copy=True).dtype == np.float64
    assert x.to(copy=True) is not x
    with pytest.raises(ValueError, match="unknown device 'mps'"):
        x.to("mps")
    with pytest.raises(TypeError, match="expected a device"):
        x.to(3.5)


def test_device_objects():
    d = mg.device("cpu")
    assert d == "cpu" and d.type == "cpu" and d.index is None and str(d) == "cpu"
    assert mg.device("cuda:0").index == 0 and mg.device("cuda:0") == "cuda"
    assert repr(mg.device("cuda", 0)) == "device(type='cuda', index=0)"
    assert mg.zeros(1).device == mg.device("cpu") and not mg.zeros(1).is_cuda
    with pytest.raises(ValueError, match="single GPU"):
        mg.device("cuda:1")
    if not mg.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA device is usable"):
            mg.zeros(1).to(mg.device("cuda"))


# ------------------------------------------------------------------ in-place semantics
def test_in_place_under_no_grad_updates_the_parameter_itself():
    model = mg.nn.Linear(3, 1)
    p = model.weight
    before = p.numpy().copy()
    model(mg.ones(2, 3)).sum().backward()
    with mg.no_grad():
        for q in model.parameters():
            q -= 0.1 * q.grad
    assert model.weight is p
    np.testing.assert_allclose(p.numpy(), before - 0.1 * 2, rtol=1e-6)


def test_in_place_writes_shared_memory():
    a = np.zeros(4, np.float32)
    t = mg.from_numpy(a)
    t.add_(1).mul_(3)
    t[1] = 7.0
    t.clamp_(max=5.0)
    np.testing.assert_array_equal(a, [3, 5, 3, 3])
    d = t.detach()
    d.zero_()
    np.testing.assert_array_equal(a, 0)


def test_in_place_on_a_parameter_needs_no_grad():
    w = mg.nn.Parameter(mg.ones(2))
    with pytest.raises(RuntimeError, match="no_grad"):
        w.add_(1)
    with pytest.raises(RuntimeError, match="no_grad"):
        w.zero_()
    with mg.no_grad():
        w.add_(1)
    np.testing.assert_array_equal(w.numpy(), [2, 2])


def test_changed_tensor_stops_the_backward():
    x = leaf([1.0, 2.0])
    y = x.exp()
    z = (y * y).sum()
    with mg.no_grad():
        y.add_(1)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        z.backward()


def test_optimizer_step_before_backward_is_caught():
    """forward, step, then backward would use the new weights: refused, as in PyTorch."""
    model = mg.nn.Linear(2, 1)
    opt = mg.optim.SGD(model.parameters(), lr=0.1)
    model(mg.ones(1, 2)).sum().backward()
    loss = model(mg.ones(1, 2)).sum()
    opt.step()
    with pytest.raises(RuntimeError, match="in-place"):
        loss.backward()


def test_in_place_shape_and_dtype_errors():
    x = mg.zeros(3)
    with pytest.raises(RuntimeError, match=r"shape \(2, 3\).*shape \(3,\) in place"):
        x.add_(mg.zeros(2, 3))
    with pytest.raises(TypeError, match="cannot be written into a int64 tensor"):
        mg.arange(3).add_(0.5)


def test_logical_operators_need_masks():
    a = mg.tensor([1.0, -1.0])
    np.testing.assert_array_equal(((a > 0) | (a < -0.5)).numpy(), [True, True])
    with pytest.raises(TypeError, match="only bool and integer tensors"):
        a & a


# ------------------------------------------------------------------ random sampling
def test_bernoulli_and_multinomial():
    mg.manual_seed(3)
    p = mg.full((20000,), 0.3, dtype=mg.float64)
    assert abs(mg.bernoulli(p).mean().item() - 0.3) < 0.02
    w = mg.tensor([[0.0, 1.0, 3.0], [5.0, 0.0, 0.0]])
    draws = mg.multinomial(w, 4000, replacement=True)
    assert draws.shape == (2, 4000) and draws.dtype == np.int64
    counts = np.bincount(draws[0].numpy(), minlength=3)
    assert counts[0] == 0 and abs(counts[2] / 4000 - 0.75) < 0.03
    assert (draws[1].numpy() == 0).all()
    no_repeat = mg.multinomial(mg.ones(5), 5).numpy()
    assert sorted(no_repeat) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="without replacement"):
        mg.multinomial(w, 3)


# ------------------------------------------------------------------ optimizers and schedules
@needs_torch
@pytest.mark.parametrize("name, kwargs", [("Adadelta", {"lr": 1.0}),
                                          ("Adadelta", {"lr": 0.5, "rho": 0.8,
                                                        "weight_decay": 0.1}),
                                          ("Adagrad", {"lr": 0.1, "lr_decay": 0.01})])
def test_new_optimizers_follow_torch_step_by_step(name, kwargs):
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((4, 3))
    targets = [rng.standard_normal((4, 3)) for _ in range(15)]
    w_mg = mg.nn.Parameter(mg.tensor(w0))
    w_t = torch.nn.Parameter(torch.tensor(w0))
    opt_mg = getattr(mg.optim, name)([w_mg], **kwargs)
    opt_t = getattr(torch.optim, name)([w_t], **kwargs)
    for target in targets:
        for w, opt, lib in ((w_mg, opt_mg, mg), (w_t, opt_t, torch)):
            opt.zero_grad()
            ((w - lib.tensor(target)) ** 2).sum().backward()
            opt.step()
    np.testing.assert_allclose(w_mg.numpy(), w_t.detach().numpy(), rtol=1e-12, atol=1e-13)


def test_schedulers_save_and_restore_their_state():
    opt = mg.optim.SGD(mg.nn.Linear(2, 1).parameters(), lr=1.0)
    sched = mg.optim.lr_scheduler.MultiStepLR(opt, milestones=[1, 3, 3], gamma=0.5)
    for _ in range(2):
        sched.step()
    state = sched.state_dict()
    fresh_opt = mg.optim.SGD(mg.nn.Linear(2, 1).parameters(), lr=1.0)
    fresh = mg.optim.lr_scheduler.MultiStepLR(fresh_opt, milestones=[9], gamma=0.5)
    fresh.load_state_dict(state)
    fresh_opt.param_groups[0]["lr"] = opt.param_groups[0]["lr"]
    sched.step(), fresh.step()
    assert sched.get_last_lr() == fresh.get_last_lr() == [0.125]
