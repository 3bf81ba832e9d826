"""Optimizers: step-by-step parity with torch.optim, state dicts, clipping, errors."""
import numpy as np
import pytest

import minigen as mg
from minigen import nn, optim

SHAPES = [(3, 4), (4,), (2, 1, 3)]

CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
    ("Adam", dict()),
    ("Adam", dict(lr=2e-4, betas=(0.5, 0.999))),                      # DCGAN
    ("Adam", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.3, amsgrad=True, eps=1e-6)),
    ("RMSprop", dict(lr=5e-5)),                                       # WGAN
    ("RMSprop", dict(lr=0.01, momentum=0.9, weight_decay=0.05)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5, alpha=0.9)),
]


def _torch():
    return pytest.importorskip("torch", reason="torch not installed: PyTorch parity not checked")


def _grads(step, dtype):
    rng = np.random.default_rng(100 + step)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


def _run_ours(name, kwargs, dtype, steps, start=None):
    rng = np.random.default_rng(0)
    params = [nn.Parameter(mg.tensor(rng.standard_normal(s), dtype=dtype)) for s in SHAPES]
    opt = getattr(optim, name)(params, **kwargs)
    for step in range(steps):
        for p, g in zip(params, _grads(step, dtype)):
            p.grad = mg.tensor(g, dtype=dtype)
        opt.step()
    return params, opt


@pytest.mark.parametrize("name, kwargs", CONFIGS)
@pytest.mark.parametrize("dtype, tol", [(np.float64, dict(rtol=1e-12, atol=1e-14)),
                                        (np.float32, dict(rtol=1e-6, atol=1e-7))])
def test_steps_match_torch(name, kwargs, dtype, tol):
    torch = _torch()
    steps = 6
    ours, _ = _run_ours(name, kwargs, dtype, steps)
    rng = np.random.default_rng(0)
    theirs = [torch.tensor(rng.standard_normal(s).astype(dtype), requires_grad=True)
              for s in SHAPES]
    opt = getattr(torch.optim, name)(theirs, **kwargs)
    for step in range(steps):
        for p, g in zip(theirs, _grads(step, dtype)):
            p.grad = torch.tensor(g)
        opt.step()
    for k, (a, b) in enumerate(zip(ours, theirs)):
        assert a.dtype == dtype
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), err_msg=f"param {k}", **tol)


def test_parameter_groups_match_torch():
    torch = _torch()
    rng = np.random.default_rng(1)
    init = [rng.standard_normal(s) for s in SHAPES]
    ours = [nn.Parameter(mg.tensor(a, dtype=np.float64)) for a in init]
    theirs = [torch.tensor(a, requires_grad=True) for a in init]

    def groups(ps):
        return [{"params": ps[:2]}, {"params": ps[2:], "lr": 0.5, "momentum": 0.0}]

    opt_m = optim.SGD(groups(ours), lr=0.1, momentum=0.9)
    opt_t = torch.optim.SGD(groups(theirs), lr=0.1, momentum=0.9)
    for step in range(3):
        for pm, pt, g in zip(ours, theirs, _grads(step, np.float64)):
            pm.grad, pt.grad = mg.tensor(g, dtype=np.float64), torch.tensor(g)
        opt_m.step(), opt_t.step()
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("name, kwargs", [CONFIGS[2], CONFIGS[6], CONFIGS[11]])
def test_state_dict_resume_equals_uninterrupted(name, kwargs, tmp_path):
    full, _ = _run_ours(name, kwargs, np.float64, 5)
    params, opt = _run_ours(name, kwargs, np.float64, 3)
    mg.save({"params": [p.numpy() for p in params], "opt": opt.state_dict()}, tmp_path / "c.npz")
    saved = mg.load(tmp_path / "c.npz")
    # a fresh optimizer over fresh parameters, restored from the file
    params2 = [nn.Parameter(mg.tensor(a, dtype=np.float64)) for a in saved["params"]]
    opt2 = getattr(optim, name)(params2, lr=123.0)   # the saved hyper-parameters win
    opt2.load_state_dict(saved["opt"])
    assert opt2.param_groups[0]["lr"] == kwargs.get("lr", 1e-3)
    for step in (3, 4):
        for p, g in zip(params2, _grads(step, np.float64)):
            p.grad = mg.tensor(g, dtype=np.float64)
        opt2.step()
    for a, b in zip(params2, full):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_state_dict_contents_and_load_errors():
    params, opt = _run_ours("Adam", dict(lr=0.01), np.float32, 2)
    sd = opt.state_dict()
    assert sd["param_groups"][0]["params"] == [0, 1, 2]
    assert sd["param_groups"][0]["betas"] == (0.9, 0.999)
    assert sd["state"][0]["step"] == 2 and sd["state"][1]["exp_avg"].shape == SHAPES[1]
    sd["state"][0]["exp_avg"] += 1     # a copy: the optimizer is unchanged
    assert not np.any(opt.state[id(params[0])]["exp_avg"] == sd["state"][0]["exp_avg"])
    other = optim.Adam([nn.Parameter(mg.zeros(2))])
    with pytest.raises(ValueError, match="group 0 has 3 parameters in the saved state, 1 here"):
        other.load_state_dict(sd)
    wrong = optim.Adam([nn.Parameter(mg.zeros(*s)) for s in [(3, 4), (5,), (2, 1, 3)]])
    with pytest.raises(ValueError, match=r"shape \(4,\), the parameter \(5,\)"):
        wrong.load_state_dict(sd)


def test_zero_grad_step_skips_missing_grads_and_closure():
    w = nn.Parameter(mg.ones(3))
    b = nn.Parameter(mg.ones(1))
    opt = optim.SGD([w, b], lr=0.5)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 3.0
    np.testing.assert_allclose(w.numpy(), 0.0)   # w - 0.5 * 2w
    np.testing.assert_allclose(b.numpy(), 1.0)   # no gradient: untouched
    opt.zero_grad()
    assert w.grad is None
    w.grad = mg.ones(3)
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(w.grad.numpy(), 0)


def test_optimizer_trains_a_model():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3)).astype(np.float32)
    y = X @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32) + 0.3
    model = nn.Linear(3, 1)
    opt = optim.Adam(model.parameters(), lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(mg.tensor(X)), mg.tensor(y))
        loss.backward()
        opt.step()
    assert loss.item() < 1e-4
    np.testing.assert_allclose(model.weight.numpy(), [[1.0, -2.0, 0.5]], atol=1e-2)


def test_optimizer_argument_errors():
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="iterable of Tensors"):
        optim.SGD(nn.Parameter(mg.zeros(2)), lr=0.1)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([nn.Parameter(mg.zeros(2))], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="invalid lr"):
        optim.Adam([nn.Parameter(mg.zeros(2))], lr=-1)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([nn.Parameter(mg.zeros(2))], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([nn.Parameter(mg.zeros(2)) * 2], lr=0.1)
    p = nn.Parameter(mg.zeros(2))
    with pytest.raises(ValueError, match="more than one group"):
        optim.SGD([p, p], lr=0.1)


def test_gradient_is_not_modified_by_a_step():
    p = nn.Parameter(mg.ones(3))
    g = mg.tensor([1.0, 2.0, 3.0])
    for opt in (optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.1),
                optim.Adam([p], weight_decay=0.1), optim.RMSprop([p], momentum=0.5)):
        p.grad = g
        opt.step()
        opt.step()
        np.testing.assert_array_equal(g.numpy(), [1.0, 2.0, 3.0])


# ================================================================== clipping
@pytest.mark.parametrize("max_norm, norm_type", [(0.5, 2.0), (100.0, 2.0), (0.3, float("inf")),
                                                 (1.0, 1.0)])
def test_clip_grad_norm_matches_torch(max_norm, norm_type):
    torch = _torch()
    grads = _grads(0, np.float64)
    ours = [nn.Parameter(mg.zeros(*s, dtype=np.float64)) for s in SHAPES]
    theirs = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in SHAPES]
    for pm, pt, g in zip(ours, theirs, grads):
        pm.grad, pt.grad = mg.tensor(g, dtype=np.float64), torch.tensor(g)
    total = optim.clip_grad_norm_(ours, max_norm, norm_type)
    total_t = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert isinstance(total, mg.Tensor)
    assert total.item() == pytest.approx(total_t.item(), rel=1e-12)
    for pm, pt in zip(ours, theirs):
        np.testing.assert_allclose(pm.grad.numpy(), pt.grad.numpy(), rtol=1e-12)


def test_clip_grad_norm_is_safe_with_shared_gradient_arrays():
    a, b = nn.Parameter(mg.zeros(2)), nn.Parameter(mg.zeros(2))
    shared = mg.tensor([3.0, 4.0])
    a.grad = b.grad = shared                  # backward can hand one array to two tensors
    total = optim.clip_grad_norm_([a, b], 1.0)
    assert total.item() == pytest.approx(np.sqrt(50), rel=1e-6)
    np.testing.assert_allclose(a.grad.numpy(), [3 / np.sqrt(50), 4 / np.sqrt(50)], rtol=1e-5)
    np.testing.assert_allclose(b.grad.numpy(), a.grad.numpy())   # scaled once, not twice
    with pytest.raises(RuntimeError, match="non-finite"):
        a.grad = mg.tensor([np.inf, 0.0])
        optim.clip_grad_norm_([a], 1.0, error_if_nonfinite=True)
    assert optim.clip_grad_norm_([nn.Parameter(mg.zeros(2))], 1.0).item() == 0.0


def test_clamp_weights_and_clip_grad_value():
    critic = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 1))
    before = [p for p in critic.parameters()]
    optim.clamp_weights_(critic.parameters(), 0.01)          # WGAN: [-0.01, 0.01]
    for p, same in zip(critic.parameters(), before):
        assert p is same and np.abs(p.numpy()).max() <= 0.01
        assert np.abs(p.numpy()).max() == pytest.approx(0.01)   # the big weights hit the bound
    optim.clamp_weights_(critic.parameters(), -0.5, 0.002)
    assert max(p.numpy().max() for p in critic.parameters()) <= 0.002
    with pytest.raises(ValueError, match="above high"):
        optim.clamp_weights_(critic.parameters(), 1.0, -1.0)
    p = nn.Parameter(mg.zeros(3))
    p.grad = mg.tensor([-5.0, 0.5, 5.0])
    nn.clip_grad_value_([p], 1.0)
    np.testing.assert_array_equal(p.grad.numpy(), [-1.0, 0.5, 1.0])


@pytest.mark.gpu
@pytest.mark.parametrize("name, kwargs", CONFIGS)
def test_optimizers_on_gpu_match_cpu(name, kwargs, tmp_path):
    cpu, opt_cpu = _run_ours(name, kwargs, np.float32, 4)
    gpu = [nn.Parameter(mg.tensor(p0, dtype=np.float32, device="cuda")) for p0 in
           [np.random.default_rng(0).standard_normal(s) for s in SHAPES]]
    opt = getattr(optim, name)(gpu, **kwargs)
    for step in range(4):
        for p, g in zip(gpu, _grads(step, np.float32)):
            p.grad = mg.tensor(g, device="cuda")
        opt.step()
    for a, b in zip(cpu, gpu):
        assert b.device == "cuda"
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    mg.save(opt.state_dict(), tmp_path / "o.npz")      # GPU state is written as NumPy
    opt.load_state_dict(mg.load(tmp_path / "o.npz"))
    total = optim.clip_grad_norm_(gpu, 0.1)
    assert total.device == "cuda" and total.item() > 0.1
    optim.clamp_weights_(gpu, 0.01)
    assert max(float(abs(p.numpy()).max()) for p in gpu) <= 0.01
