"""``F.gumbel_softmax``: PyTorch's signature and semantics, with fixed noise for repeatability.

* gradients (soft sample) against finite differences, with the Gumbel noise fixed;
* ``hard=True``: exact one-hot vectors whose gradient is the soft sample's (straight-through);
* the Gumbel-max trick: the hard samples are distributed as softmax(logits) (chi-square test on
  many draws), whatever the temperature -- and the test rejects a wrong distribution;
* as tau -> 0 the soft samples become those one-hot vectors;
* parity with torch's own ``F.gumbel_softmax`` given the same noise.
"""
import numpy as np
import pytest

import minigen as mg
import minigen.nn.functional as F
from minigen.ops.random import standard_gumbel

LOGITS = np.log(np.array([[0.1, 0.2, 0.3, 0.4], [0.7, 0.1, 0.1, 0.1]]))
CHI2_999 = {3: 16.27, 4: 18.47}  # chi-square quantiles at 0.999 (df 3, 4)


def noise_like(a, seed=0):
    return mg.tensor(-np.log(np.random.default_rng(seed).standard_exponential(np.shape(a))))


def leaf(a):
    return mg.tensor(np.array(a, dtype=np.float64), requires_grad=True)


@pytest.mark.parametrize("tau", [1.0, 0.5, 3.0])
def test_soft_sample_gradients(tau):
    g = noise_like(LOGITS)
    f = lambda x: F.gumbel_softmax(x, tau=tau, noise=g)  # noqa: E731
    assert mg.gradcheck(f, [leaf(LOGITS)])
    assert mg.gradgradcheck(f, [leaf(LOGITS)])


def test_hard_sample_is_one_hot_with_the_soft_gradient():
    g = noise_like(LOGITS, seed=3)
    w = mg.tensor(np.arange(8.0).reshape(2, 4))        # a loss that weights each entry
    x_hard, x_soft = leaf(LOGITS), leaf(LOGITS)
    hard = F.gumbel_softmax(x_hard, tau=0.7, hard=True, noise=g)
    soft = F.gumbel_softmax(x_soft, tau=0.7, noise=g)
    y = hard.numpy()
    assert set(np.unique(y)) <= {0.0, 1.0} and (y.sum(axis=1) == 1).all()
    np.testing.assert_array_equal(y.argmax(1), soft.numpy().argmax(1))
    (hard * w).sum().backward()
    (soft * w).sum().backward()
    np.testing.assert_allclose(x_hard.grad.numpy(), x_soft.grad.numpy(), rtol=1e-12, atol=1e-15)
    assert np.abs(x_hard.grad.numpy()).max() > 0


def test_dim_argument():
    g = noise_like(LOGITS.T, seed=1)
    by_columns = F.gumbel_softmax(mg.tensor(LOGITS.T), dim=0, noise=g)
    by_rows = F.gumbel_softmax(mg.tensor(LOGITS), dim=1, noise=g.t())
    np.testing.assert_allclose(by_columns.numpy(), by_rows.numpy().T, rtol=1e-12)


def _chi_square(samples, probs):
    counts = samples.sum(axis=0)
    expected = probs * len(samples)
    return float(((counts - expected) ** 2 / expected).sum())


@pytest.mark.parametrize("tau", [1.0, 0.1, 1e-3])
def test_hard_samples_follow_softmax_of_the_logits(tau):
    """Gumbel-max: argmax(logits + g) ~ softmax(logits). 20000 draws, 5 categories."""
    mg.manual_seed(11)
    probs = np.array([0.05, 0.1, 0.15, 0.3, 0.4])
    logits = mg.tensor(np.tile(np.log(probs) + 2.0, (20000, 1)))   # shifted: logits, not log p
    samples = F.gumbel_softmax(logits, tau=tau, hard=True).numpy()
    assert _chi_square(samples, probs) < CHI2_999[4]
    wrong = np.array([0.07, 0.1, 0.15, 0.3, 0.38])                  # 2 points moved
    assert _chi_square(samples, wrong) > CHI2_999[4]               # the test has power


def test_soft_samples_become_one_hot_as_tau_goes_to_zero():
    mg.manual_seed(5)
    logits = mg.tensor(np.tile(LOGITS[0], (1000, 1)))
    g = standard_gumbel(logits.shape, dtype=logits.dtype)
    hard = F.gumbel_softmax(logits, tau=1.0, hard=True, noise=g).numpy()
    gaps = [np.abs(F.gumbel_softmax(logits, tau=tau, noise=g).numpy() - hard).max(axis=1)
            for tau in (1.0, 0.1, 0.01)]
    assert np.median(gaps[0]) > np.median(gaps[1]) > np.median(gaps[2])
    assert np.median(gaps[2]) < 1e-3


def test_default_noise_comes_from_minigens_generator():
    x = mg.tensor(LOGITS)
    mg.manual_seed(2)
    a = F.gumbel_softmax(x)
    mg.manual_seed(2)
    np.testing.assert_array_equal(a.numpy(), F.gumbel_softmax(x).numpy())
    assert not np.array_equal(a.numpy(), F.gumbel_softmax(x).numpy())


def test_errors():
    x = mg.tensor(LOGITS)
    with pytest.raises(ValueError, match="tau must be positive"):
        F.gumbel_softmax(x, tau=0)
    with pytest.raises(ValueError, match=r"noise of shape \(4,\)"):
        F.gumbel_softmax(x, noise=mg.zeros(4, dtype="float64"))


@pytest.mark.parametrize("hard", [False, True])
def test_same_as_torch_given_the_same_noise(hard):
    torch = pytest.importorskip("torch", reason="torch not installed: no parity check")
    logits_t = torch.tensor(LOGITS, requires_grad=True)
    torch.manual_seed(4)   # torch draws its noise as -log(Exponential(1)); draw it ourselves...
    g = -torch.empty_like(logits_t).exponential_().log()
    torch.manual_seed(4)   # ...then let torch.nn.functional.gumbel_softmax draw the same numbers
    y_t = torch.nn.functional.gumbel_softmax(logits_t, tau=0.6, hard=hard)
    x = leaf(LOGITS)
    y = F.gumbel_softmax(x, tau=0.6, hard=hard, noise=mg.tensor(g.numpy()))
    np.testing.assert_allclose(y.numpy(), y_t.detach().numpy(), rtol=1e-12, atol=1e-15)
    w = np.arange(8.0).reshape(2, 4)
    (y_t * torch.tensor(w)).sum().backward()
    (y * mg.tensor(w)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), logits_t.grad.numpy(), rtol=1e-10, atol=1e-14)
