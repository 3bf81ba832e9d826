"""Gaussian mixture by EM: the log-likelihood never decreases (drawn data); densities are
right; parity with scikit-learn from the same start; sampling."""
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from minigen.models import GaussianMixture


def mixture_data(seed, n, k, d):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (k, d))
    y = rng.integers(0, k, n)
    scales = rng.uniform(0.3, 1.5, (k, d))
    return centres[y] + rng.normal(0, 1, (n, d)) * scales[y], y


@given(seed=st.integers(0, 2 ** 20), k=st.integers(1, 4), d=st.integers(1, 3),
       n=st.integers(40, 120), covariance_type=st.sampled_from(["full", "diag"]),
       init=st.sampled_from(["kmeans", "random"]))
@settings(max_examples=15)
def test_em_log_likelihood_never_decreases(seed, k, d, n, covariance_type, init):
    X, _ = mixture_data(seed, n, k, d)
    # reg_covar = 0: the M-step is then the exact maximiser, so the lecture's bound
    # ln P(X) >= L(g, w, q) makes every EM step an ascent step
    gmm = GaussianMixture(k, covariance_type=covariance_type, reg_covar=0.0, tol=0,
                          max_iter=25, init_params=init, random_state=seed)
    try:
        gmm.fit(X)
    except ValueError as e:  # a component collapsed on < d+1 points: no density to compare
        assert "not positive definite" in str(e)
        return
    # A component collapsed onto one point has variance -> 0 and ln P(X) -> +inf: the
    # likelihood is unbounded there, no maximiser exists, and the numbers are rounding noise.
    variances = gmm.covariances_ if covariance_type == "diag" else \
        np.diagonal(gmm.covariances_, axis1=1, axis2=2)
    assume(variances.min() > 1e-10 * X.var())
    ll = np.array(gmm.log_likelihoods_)
    assert np.all(np.diff(ll) >= -1e-9 * np.maximum(1.0, np.abs(ll[1:])))


def test_single_component_density_is_the_gaussian_formula():
    rng = np.random.default_rng(0)
    X = rng.normal(0, 1, (200, 3)) @ np.array([[1, 0, 0], [0.5, 1, 0], [0.2, 0.3, 2]])
    gmm = GaussianMixture(1, reg_covar=0.0, max_iter=5).fit(X)
    mu, S = X.mean(0), np.cov(X.T, bias=True)
    np.testing.assert_allclose(gmm.means_[0], mu, atol=1e-12)
    np.testing.assert_allclose(gmm.covariances_[0], S, atol=1e-12)
    diff = X - mu
    expected = -0.5 * (3 * math.log(2 * math.pi) + np.linalg.slogdet(S)[1]
                       + np.einsum("ij,jk,ik->i", diff, np.linalg.inv(S), diff))
    np.testing.assert_allclose(gmm.score_samples(X), expected, rtol=1e-10)
    assert gmm.score(X) == pytest.approx(expected.mean(), rel=1e-12)


def test_log_sum_exp_keeps_far_points_finite():
    X, _ = mixture_data(1, 200, 2, 2)
    gmm = GaussianMixture(2, random_state=0).fit(X)
    far = np.array([[1e4, -1e4]])
    assert np.isfinite(gmm.score_samples(far)).all()
    np.testing.assert_allclose(gmm.predict_proba(far).sum(), 1.0)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_same_log_likelihood_as_scikit_learn_from_the_same_start(covariance_type):
    sk = pytest.importorskip("sklearn.mixture", reason="scikit-learn not installed: parity "
                             "not checked")
    X, _ = mixture_data(4, 400, 3, 4)
    rng = np.random.default_rng(0)
    init = dict(weights_init=np.full(3, 1 / 3), means_init=X[rng.choice(400, 3)],
                precisions_init=np.stack([np.eye(4)] * 3) if covariance_type == "full"
                else np.ones((3, 4)))
    ours = GaussianMixture(3, covariance_type=covariance_type, tol=0, max_iter=40, **init).fit(X)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = sk.GaussianMixture(3, covariance_type=covariance_type, tol=0, max_iter=40,
                                    **init).fit(X)
    assert ours.score(X) == pytest.approx(theirs.score(X), rel=1e-8)
    np.testing.assert_allclose(ours.means_, theirs.means_, atol=1e-6)


def test_sampling_follows_the_fitted_mixture():
    X, y = mixture_data(7, 3000, 2, 2)
    gmm = GaussianMixture(2, random_state=0).fit(X)
    S, comp = gmm.sample(20000)
    assert S.shape == (20000, 2) and set(np.unique(comp)) <= {0, 1}
    np.testing.assert_allclose(np.bincount(comp) / 20000, gmm.weights_, atol=0.02)
    for j in range(2):
        np.testing.assert_allclose(S[comp == j].mean(0), gmm.means_[j], atol=0.06)
        np.testing.assert_allclose(np.cov(S[comp == j].T), gmm.covariances_[j], atol=0.12)
    # the fitted model recovers the generating partition
    agree = (gmm.predict(X) == y).mean()
    assert max(agree, 1 - agree) > 0.95


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="covariance_type"):
        GaussianMixture(2, covariance_type="spherical-ish")
    with pytest.raises(RuntimeError, match="call fit"):
        GaussianMixture(2).score(np.zeros((2, 2)))
    gmm = GaussianMixture(1).fit(np.random.default_rng(0).normal(size=(20, 2)))
    with pytest.raises(ValueError, match="3 features, the model 2"):
        gmm.score(np.zeros((2, 3)))
