"""Every op of ``strategies.OP_CASES`` against PyTorch: same float64 inputs, same outputs,
same gradients -- to rounding, not to a loose tolerance. Skipped when torch is absent.

Each case is written once against a library ``L``; here ``L`` is ``TorchLib``, which maps
minigen's names onto PyTorch's where they differ (amax for max, F.pad for pad, ...).
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigen as mg
from minigen.testing import as_inputs
from strategies import OP_CASES, per_op_settings

torch = pytest.importorskip("torch", reason="torch not installed: PyTorch parity not checked")
F = torch.nn.functional

RTOL, ATOL = 1e-10, 1e-12  # float64 both sides: only rounding may differ


def _flipped_index(x, index):
    """PyTorch has no negative slice steps: flip those dims first, then slice forwards."""
    parts = index if isinstance(index, tuple) else (index,)
    dim, flips, new = 0, [], []
    for p in parts:
        if p is None or p is Ellipsis:
            new.append(p)
            continue
        if isinstance(p, slice) and (p.step or 1) < 0:
            n = x.shape[dim]
            start, stop, step = p.indices(n)
            flips.append(dim)
            p = slice(n - 1 - start, n - 1 - stop, -step)
        new.append(p)
        dim += 1
    return (x.flip(flips) if flips else x), tuple(new)


class TorchLib:
    """minigen's op names on PyTorch."""

    def __getattr__(self, name):
        return getattr(torch, name) if hasattr(torch, name) else getattr(F, name)

    @staticmethod
    def amax(x, dim=None, keepdim=False):  # torch.amax wants dim=() for "all dims"
        return torch.amax(x, dim=() if dim is None else dim, keepdim=keepdim)

    @staticmethod
    def amin(x, dim=None, keepdim=False):
        return torch.amin(x, dim=() if dim is None else dim, keepdim=keepdim)

    @staticmethod
    def var(x, dim=None, unbiased=True, keepdim=False):
        return torch.var(x, dim=dim, correction=int(unbiased), keepdim=keepdim)

    @staticmethod
    def std(x, dim=None, unbiased=True, keepdim=False):
        return torch.std(x, dim=dim, correction=int(unbiased), keepdim=keepdim)

    @staticmethod
    def logsumexp(x, dim=None, keepdim=False):
        return torch.logsumexp(x, dim=tuple(range(x.ndim)) if dim is None else dim, keepdim=keepdim)

    @staticmethod
    def where(cond, a, b):
        return torch.where(torch.as_tensor(cond), a, b)

    @staticmethod
    def astype(x, dtype):
        return x.to(getattr(torch, dtype))

    @staticmethod
    def getitem(x, index):
        x, index = _flipped_index(x, index)
        return x[index]


TL = TorchLib()


def _outputs(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _run(lib, leaves, case, kw, weights):
    """Outputs of the op and the gradients of sum_k <w_k, out_k> for each input."""
    outs = _outputs(case.fn(lib, *leaves, **kw))
    if weights is None:
        weights = [np.random.default_rng(k).standard_normal(o.shape) for k, o in enumerate(outs)]
    loss = 0
    for o, w in zip(outs, weights):
        w = mg.tensor(w, dtype="float64") if lib is mg else torch.tensor(w)
        loss = loss + (o * w).sum()
    loss.backward()
    grads = [np.zeros(t.shape) if t.grad is None else np.asarray(t.grad.numpy())
             for t in leaves]
    return [np.asarray(o.detach().numpy()) for o in outs], grads, weights


def _close(got, want, what):
    assert len(got) == len(want), what
    for k, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape, f"{what}[{k}]: shape {g.shape} vs torch {w.shape}"
        np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL, err_msg=f"{what}[{k}]")


@pytest.mark.parametrize("case", OP_CASES, ids=str)
@per_op_settings(0.3, at_least=8)
@given(data=st.data())
def test_forward_and_gradients_match_torch(case, data):
    arrays, kw = data.draw(case.inputs, label="inputs")
    out_mg, grads_mg, weights = _run(mg, as_inputs(arrays), case, kw, None)
    leaves = [torch.tensor(np.array(a), requires_grad=True) for a in arrays]
    out_t, grads_t, _ = _run(TL, leaves, case, kw, weights)
    _close(out_mg, out_t, f"{case.name} forward")
    _close(grads_mg, grads_t, f"{case.name} gradient")
    # and in float32, the default: the op keeps float32 exactly where PyTorch does
    outs_mg = _outputs(case.fn(mg, *[mg.tensor(a, dtype="float32") for a in arrays], **kw))
    outs_t = _outputs(case.fn(TL, *[torch.tensor(np.array(a), dtype=torch.float32)
                                    for a in arrays], **kw))
    for o_mg, o_t in zip(outs_mg, outs_t):
        assert f"torch.{o_mg.dtype}" == str(o_t.dtype), case.name
        np.testing.assert_allclose(o_mg.numpy(), o_t.numpy(), rtol=1e-5, atol=1e-5)




# ------------------------------------------------------------------ ties and extremes
def _both(f_mg, f_t, values):
    x_mg = mg.tensor(values, dtype="float64", requires_grad=True)
    x_t = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    y_mg, y_t = f_mg(x_mg), f_t(x_t)
    np.testing.assert_allclose(y_mg.numpy(), y_t.detach().numpy(), rtol=1e-14, atol=0)
    w = np.arange(1.0, y_t.numel() + 1).reshape(tuple(y_t.shape))
    (y_mg * mg.tensor(w, dtype="float64")).sum().backward()
    (y_t * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(x_mg.grad.numpy(), x_t.grad.numpy(), rtol=1e-14, atol=0)


def test_ties_match_torch():
    tied = [[3.0, 1.0, 3.0], [2.0, 2.0, 2.0]]
    _both(lambda x: x.max(), lambda x: x.amax(), tied)
    _both(lambda x: x.amin(dim=1), lambda x: x.amin(dim=1), tied)
    _both(lambda x: x.amax(dim=0, keepdim=True), lambda x: x.amax(dim=0, keepdim=True), tied)
    # max(dim) / min(dim): the gradient goes to the one index returned, as in torch
    _both(lambda x: x.max(dim=1).values, lambda x: x.max(dim=1).values, tied)
    _both(lambda x: x.min(0, keepdim=True)[0], lambda x: x.min(0, keepdim=True)[0], tied)
    _both(lambda x: mg.maximum(x, mg.tensor(2.0, dtype="float64")),
          lambda x: torch.maximum(x, torch.tensor(2.0, dtype=torch.float64)), tied)
    _both(lambda x: x.clamp(1.0, 2.0), lambda x: x.clamp(1.0, 2.0), tied)
    _both(lambda x: x.relu() + x.abs() - 1, lambda x: x.relu() + x.abs() - 1, [[0.0, -1.0, 1.0]])


@pytest.mark.parametrize("name", ["sigmoid", "softplus", "tanh", "elu", "log_softmax",
                                  "softmax", "logsumexp"])
def test_extremes_match_torch(name):
    values = [[-1000.0, -80.0, -30.0, 0.0, 30.0, 80.0, 1000.0]]
    if name == "softplus":  # torch returns x (gradient 1) above its threshold 20; minigen
        values[0].remove(30.0)  # keeps the exact value (checked in test_ops_grad)
    f_t = {"softplus": F.softplus, "elu": F.elu, "logsumexp": lambda x: torch.logsumexp(x, 1),
           "log_softmax": lambda x: F.log_softmax(x, 1), "softmax": lambda x: F.softmax(x, 1)}.get(
        name, getattr(torch, name, None))
    f_mg = {"logsumexp": lambda x: mg.logsumexp(x, 1),
            "log_softmax": lambda x: mg.log_softmax(x, 1),
            "softmax": lambda x: mg.softmax(x, 1)}.get(name, getattr(mg, name))
    _both(f_mg, f_t, values)
