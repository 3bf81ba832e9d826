"""Losses: PyTorch parity (values and gradients, float64), gradient and second-gradient
checks for every loss, numerical stability, and errors."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigen as mg
from minigen import nn
from minigen.nn import functional as F

F64 = np.float64
TIGHT = dict(rtol=1e-10, atol=1e-12)
CHECK = dict(atol=1e-6, rtol=1e-5)
REDUCTIONS = ["mean", "sum", "none"]


def _torch():
    return pytest.importorskip("torch", reason="torch not installed: PyTorch parity not checked")


def arr(shape, seed=0, lo=None, hi=None):
    rng = np.random.default_rng(seed)
    return rng.uniform(lo, hi, shape) if lo is not None else rng.standard_normal(shape)


def m64(a, grad=True):
    return mg.tensor(a, dtype=F64, requires_grad=grad)


def _parity(ours, theirs, arrays, grad_mask, tol=TIGHT):
    """ours(*minigen tensors) vs theirs(*torch tensors): value and every input gradient."""
    torch = _torch()
    ms = [m64(a, g) if a.dtype.kind == "f" else mg.tensor(a) for a, g in zip(arrays, grad_mask)]
    ts = [torch.tensor(a, requires_grad=g and a.dtype.kind == "f")
          for a, g in zip(arrays, grad_mask)]
    ym, yt = ours(*ms), theirs(*ts)
    np.testing.assert_allclose(ym.numpy(), yt.detach().numpy(), **tol)
    g = np.random.default_rng(99).standard_normal(ym.shape) if ym.ndim else np.array(1.0)
    ym.backward(mg.tensor(g, dtype=F64))
    yt.backward(torch.tensor(g))
    for k, (m, t, need) in enumerate(zip(ms, ts, grad_mask)):
        if need:
            np.testing.assert_allclose(m.grad.numpy(), t.grad.numpy(), err_msg=f"input {k}", **tol)


def _checks(fn, tensors):
    assert mg.gradcheck(fn, tensors, **CHECK)
    assert mg.gradgradcheck(fn, tensors, **CHECK)


# ================================================================== mse
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_matches_torch(reduction):
    torch = _torch()
    _parity(lambda x, y: F.mse_loss(x, y, reduction), lambda x, y:
            torch.nn.functional.mse_loss(x, y, reduction=reduction),
            [arr((4, 3)), arr((4, 3), 1)], [True, True])


def test_mse_checks_and_shape_error():
    _checks(lambda x, y: F.mse_loss(x, y), [m64(arr((3, 2))), m64(arr((3, 2), 1))])
    with pytest.raises(ValueError, match=r"mse_loss: input shape \(4, 1\) and target shape \(4,\)"):
        F.mse_loss(mg.zeros(4, 1), mg.zeros(4))
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.mse_loss(mg.zeros(4), mg.zeros(4), reduction="avg")


# ================================================================== binary cross entropy
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_bce_matches_torch(reduction, weighted):
    torch = _torch()
    w = arr((4, 3), 5, 0.5, 2.0) if weighted else None
    _parity(lambda p, t: F.binary_cross_entropy(p, t, None if w is None else m64(w, False),
                                                reduction),
            lambda p, t: torch.nn.functional.binary_cross_entropy(
                p, t, None if w is None else torch.tensor(w), reduction=reduction),
            [arr((4, 3), 0, 0.05, 0.95), arr((4, 3), 1, 0, 1)], [True, True])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("pos_weight", [None, [0.5, 2.0, 3.0]])
def test_bce_with_logits_matches_torch(reduction, weighted, pos_weight):
    torch = _torch()
    w = arr((3,), 2, 0.5, 1.5) if weighted else None
    pw = None if pos_weight is None else np.array(pos_weight)

    def opt(a, lib):
        return None if a is None else (m64(a, False) if lib is mg else torch.tensor(a))

    _parity(lambda x, t: F.binary_cross_entropy_with_logits(
                x, t, opt(w, mg), reduction, opt(pw, mg)),
            lambda x, t: torch.nn.functional.binary_cross_entropy_with_logits(
                x, t, opt(w, torch), reduction=reduction, pos_weight=opt(pw, torch)),
            [3 * arr((4, 3)), arr((4, 3), 1, 0, 1)], [True, True])


def test_bce_checks():
    p, t = m64(arr((3, 2), 0, 0.1, 0.9)), m64(arr((3, 2), 1, 0, 1))
    _checks(F.binary_cross_entropy, [p, t])
    x = m64(2 * arr((3, 2)))
    for reduction in REDUCTIONS:
        _checks(lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction=reduction), [x, t])
    _checks(lambda x, t: F.binary_cross_entropy_with_logits(x, t, pos_weight=mg.tensor(
        [2.0, 0.5], dtype=F64)), [x, t])


def test_bce_with_logits_is_stable_where_sigmoid_saturates():
    x = mg.tensor([-1000.0, -40.0, 0.0, 40.0, 1000.0], requires_grad=True)
    t = mg.tensor([1.0, 1.0, 0.5, 0.0, 0.0])
    loss = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    np.testing.assert_allclose(loss.numpy(), [1000.0, 40.0, math.log(2), 40.0, 1000.0], rtol=1e-6)
    loss.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [-1.0, -1.0, 0.0, 1.0, 1.0], atol=1e-6)


def test_fast_float32_log1p_is_accurate():
    u = np.concatenate([np.logspace(-44, 0, 2000), np.linspace(0, 1, 2001),
                        np.random.default_rng(0).random(20000)]).astype(np.float32)
    ours = F._log1p_unit(u)
    exact = np.log1p(u.astype(np.float64))
    ulps = np.abs(ours.astype(np.float64) - exact) / np.spacing(exact.astype(np.float32))
    assert ours.dtype == np.float32 and ulps.max() <= 4   # tiny u included: relative accuracy
    # the loss of a confident right answer keeps its relative precision in float32
    x = mg.tensor([30.0, -30.0])
    loss = F.binary_cross_entropy_with_logits(x, mg.tensor([1.0, 0.0]), reduction="none")
    np.testing.assert_allclose(loss.numpy(), np.exp(-30.0), rtol=1e-6)


def test_bce_on_saturated_probabilities_is_finite_like_torch():
    torch = _torch()
    p = np.array([0.0, 1.0, 1.0, 0.0, 0.3], dtype=np.float32)
    t = np.array([0.0, 1.0, 0.0, 1.0, 1.0], dtype=np.float32)
    pm = mg.tensor(p, requires_grad=True)
    pt = torch.tensor(p, requires_grad=True)
    lm = F.binary_cross_entropy(pm, mg.tensor(t), reduction="sum")
    lt = torch.nn.functional.binary_cross_entropy(pt, torch.tensor(t), reduction="sum")
    np.testing.assert_allclose(lm.item(), lt.item(), rtol=1e-6)   # log clamped at -100
    lm.backward()
    lt.backward()
    assert np.all(np.isfinite(pm.grad.numpy()))
    np.testing.assert_allclose(pm.grad.numpy(), pt.grad.numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match=r"values must lie in \[0, 1\]"):
        F.binary_cross_entropy(mg.tensor([1.5]), mg.tensor([1.0]))


# ================================================================== cross entropy and nll
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", ["plain", "weight", "ignore", "spatial", "single"])
def test_cross_entropy_and_nll_match_torch(reduction, case):
    torch = _torch()
    shape, labels = ((5, 4), np.array([0, 3, 1, 1, 2]))
    kw_ours, kw_torch = {}, {}
    if case == "weight":
        w = np.array([0.5, 1.0, 2.0, 1.5])
        kw_ours, kw_torch = dict(weight=mg.tensor(w, dtype=F64)), dict(weight=torch.tensor(w))
    if case == "ignore":
        labels = np.array([0, -100, 1, 3, -100])
    if case == "spatial":
        shape, labels = (2, 3, 2, 2), np.random.default_rng(3).integers(0, 3, (2, 2, 2))
    if case == "single":
        shape, labels = (4,), np.array(2)
    x = 2 * arr(shape)
    tf = torch.nn.functional
    _parity(lambda x, y: F.cross_entropy(x, y, reduction=reduction, **kw_ours),
            lambda x, y: tf.cross_entropy(x, y, reduction=reduction, **kw_torch),
            [x, labels], [True, False])
    _parity(lambda x, y: F.nll_loss(F.log_softmax(x, dim=0 if x.ndim == 1 else 1), y,
                                    reduction=reduction, **kw_ours),
            lambda x, y: tf.nll_loss(tf.log_softmax(x, dim=0 if x.ndim == 1 else 1), y,
                                     reduction=reduction, **kw_torch),
            [x, labels], [True, False])


def test_cross_entropy_with_probabilities_matches_torch():
    torch = _torch()
    p = np.random.default_rng(1).dirichlet(np.ones(4), size=5)
    for reduction in REDUCTIONS:
        _parity(lambda x, y: F.cross_entropy(x, y, reduction=reduction),
                lambda x, y: torch.nn.functional.cross_entropy(x, y, reduction=reduction),
                [arr((5, 4)), p], [True, True])


def test_cross_entropy_and_nll_checks():
    x = m64(arr((4, 3)))
    y = mg.tensor([0, 2, 1, 2])
    _checks(lambda x: F.cross_entropy(x, y), [x])
    _checks(lambda x: F.cross_entropy(x, y, weight=mg.tensor([1.0, 2.0, 0.5], dtype=F64)), [x])
    _checks(lambda x: F.nll_loss(x, y, reduction="sum"), [x])


def test_cross_entropy_errors():
    x = mg.randn(3, 4)
    with pytest.raises(IndexError, match="target 4 is out of range for 4 classes"):
        F.cross_entropy(x, mg.tensor([0, 4, 1]))
    with pytest.raises(ValueError, match=r"needs an integer target of shape \(3,\)"):
        F.cross_entropy(x, mg.tensor([0, 1]))
    with pytest.raises(TypeError, match="integer"):
        F.nll_loss(x, mg.tensor([0.0, 1.0, 2.0]))


# ================================================================== VAE terms
@pytest.mark.parametrize("reduction", ["sum", "mean", "batchmean", "none"])
def test_kl_normal_is_the_closed_form_kl(reduction):
    torch = _torch()
    D = torch.distributions
    mu, logvar = arr((4, 3)), arr((4, 3), 1)

    def theirs(mu, logvar):
        terms = D.kl_divergence(D.Normal(mu, (0.5 * logvar).exp()), D.Normal(0.0, 1.0))
        return {"sum": terms.sum(), "mean": terms.mean(), "batchmean": terms.sum() / 4,
                "none": terms}[reduction]

    _parity(lambda mu, lv: F.kl_normal(mu, lv, reduction), theirs, [mu, logvar], [True, True])


def test_kl_normal_checks_and_errors():
    _checks(F.kl_normal, [m64(arr((2, 3))), m64(arr((2, 3), 1))])
    assert F.kl_normal(mg.zeros(5, 2), mg.zeros(5, 2)).item() == 0.0   # N(0, I) vs itself
    with pytest.raises(ValueError, match="mu shape"):
        F.kl_normal(mg.zeros(5, 2), mg.zeros(5, 3))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("var_shape", [(4, 3), (4,), (4, 1), "float"])
def test_gaussian_nll_matches_torch(reduction, full, var_shape):
    torch = _torch()
    x, y = arr((4, 3)), arr((4, 3), 1)
    if var_shape == "float":
        _parity(lambda x, y: F.gaussian_nll_loss(x, y, 0.7, full, reduction=reduction),
                lambda x, y: torch.nn.functional.gaussian_nll_loss(
                    x, y, 0.7, full, reduction=reduction), [x, y], [True, True])
        return
    var = arr(var_shape, 2, 0.2, 2.0)
    var.flat[0] = 1e-9   # below eps: clamped, and the gradient still flows (torch's rule)
    _parity(lambda x, y, v: F.gaussian_nll_loss(x, y, v, full, reduction=reduction),
            lambda x, y, v: torch.nn.functional.gaussian_nll_loss(x, y, v, full,
                                                                  reduction=reduction),
            [x, y, var], [True, True, True])


def test_gaussian_nll_checks_and_errors():
    x, y, v = m64(arr((3, 2))), m64(arr((3, 2), 1)), m64(arr((3, 2), 2, 0.5, 2.0))
    _checks(lambda x, y, v: F.gaussian_nll_loss(x, y, v, full=True), [x, y, v])
    with pytest.raises(ValueError, match="negative"):
        F.gaussian_nll_loss(x, y, mg.tensor(-np.ones((3, 2)), dtype=F64))
    with pytest.raises(ValueError, match="does not fit"):
        F.gaussian_nll_loss(x, y, mg.ones(2, 2, dtype=F64))


def test_bernoulli_log_likelihood():
    torch = _torch()
    logits, x = 3 * arr((4, 5)), (arr((4, 5), 1, 0, 1) > 0.5).astype(F64)

    def theirs(logits, x):
        return torch.distributions.Bernoulli(logits=logits).log_prob(x).sum()

    _parity(lambda lg, x: F.bernoulli_log_likelihood(lg, x), theirs, [logits, x], [True, False])
    _checks(lambda lg: F.bernoulli_log_likelihood(lg, m64(x[:2, :3], False), "batchmean"),
            [m64(arr((2, 3)))])
    per_sample = F.bernoulli_log_likelihood(m64(logits), m64(x), "batchmean").item()
    assert per_sample == pytest.approx(F.bernoulli_log_likelihood(m64(logits), m64(x)).item() / 4)


# ================================================================== module forms
@settings(max_examples=10)
@given(reduction=st.sampled_from(["mean", "sum", "none"]), seed=st.integers(0, 100))
def test_module_forms_equal_functional_forms(reduction, seed):
    x, y = m64(arr((3, 4), seed), False), m64(arr((3, 4), seed + 1, 0, 1), False)
    p = m64(arr((3, 4), seed + 2, 0.05, 0.95), False)
    labels = mg.tensor([0, 3, 1])
    pairs = [
        (nn.MSELoss(reduction)(x, y), F.mse_loss(x, y, reduction)),
        (nn.BCELoss(reduction=reduction)(p, y), F.binary_cross_entropy(p, y, reduction=reduction)),
        (nn.BCEWithLogitsLoss(reduction=reduction)(x, y),
         F.binary_cross_entropy_with_logits(x, y, reduction=reduction)),
        (nn.CrossEntropyLoss(reduction=reduction)(x, labels),
         F.cross_entropy(x, labels, reduction=reduction)),
        (nn.NLLLoss(reduction=reduction)(x, labels), F.nll_loss(x, labels, reduction=reduction)),
        (nn.GaussianNLLLoss(reduction=reduction)(x, y, p),
         F.gaussian_nll_loss(x, y, p, reduction=reduction)),
        (nn.KLNormalLoss(reduction)(x, y), F.kl_normal(x, y, reduction)),
        (nn.BernoulliLogLikelihood(reduction)(x, y), F.bernoulli_log_likelihood(x, y, reduction)),
    ]
    for ours, expected in pairs:
        np.testing.assert_array_equal(ours.numpy(), expected.numpy())
    with pytest.raises(ValueError, match="MSELoss: reduction"):
        nn.MSELoss("avg")
