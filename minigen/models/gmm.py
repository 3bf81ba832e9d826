"""Gaussian mixture fitted by EM (seed lecture 002, "ЕМ-алгоритм").

The lecture maximises the log-likelihood of a mixture

    ln P(X) = sum_i ln sum_j w_j F(X_i, q_j),     here F = N(x | mu_j, Sigma_j),

by alternating

    E-step   g_i(j) = P(j | X_i) = w_j F(X_i, q_j) / sum_l w_l F(X_i, q_l)
    M-step   w_j = (1/N) sum_i g_i(j);   q_j = argmax sum_i g_i(j) ln F(X_i, q_j)
             which for a Gaussian is the g-weighted mean and covariance,

and stops when ln P(X) stabilises. The lecture's bound shows why it works: for any g,
ln P(X) = L(g, w, q) + sum_i KL(g_i || P(.|X_i)); the E-step makes the KL zero, the M-step
raises L, so ln P(X) never decreases (tests/test_gmm.py checks it on drawn data).

Numerics: everything in float64; the E-step works with log-densities and a log-sum-exp
(densities of 784-dimensional images underflow any float); a small ``reg_covar`` is added
to every covariance's diagonal so a component sitting on a few points stays invertible.
"""
import math

import numpy as np

from ..backend import get_array_module, to_numpy
from ._checks import as_data_matrix
from .kmeans import KMeans

COVARIANCE_TYPES = ("full", "diag")


class GaussianMixture:
    """Gaussian mixture model, scikit-learn style.

    Args:
        n_components: number of Gaussians K.
        covariance_type: 'full' (each component its own D x D matrix) or 'diag'.
        tol: stop when the mean log-likelihood per sample changes by less than tol.
        reg_covar: added to the covariance diagonals.
        max_iter: EM iterations per initialisation.
        n_init: initialisations; the one with the best final log-likelihood is kept.
        init_params: 'kmeans' (responsibilities from a K-means partition) or 'random'.
        weights_init, means_init, precisions_init: optional starting values (as
            scikit-learn; precisions are inverse covariances: (K, D, D) full, (K, D) diag).
        random_state / seed: int seed (initialisation and ``sample``).

    Fitted: ``weights_`` (K,), ``means_`` (K, D), ``covariances_``, ``precisions_cholesky_``,
    ``converged_``, ``n_iter_``, ``lower_bound_`` (final mean log-likelihood) and
    ``log_likelihoods_`` (its value after each E-step, the curve EM never lowers).
    """

    def __init__(self, n_components=1, covariance_type="full", tol=1e-3, reg_covar=1e-6,
                 max_iter=100, n_init=1, init_params="kmeans", weights_init=None,
                 means_init=None, precisions_init=None, random_state=None, seed=None):
        if covariance_type not in COVARIANCE_TYPES:
            raise ValueError(f"GaussianMixture: covariance_type must be one of "
                             f"{COVARIANCE_TYPES}, got {covariance_type!r}")
        if init_params not in ("kmeans", "random"):
            raise ValueError(f"GaussianMixture: init_params must be 'kmeans' or 'random', "
                             f"got {init_params!r}")
        self.n_components = int(n_components)
        self.covariance_type = covariance_type
        self.tol = float(tol)
        self.reg_covar = float(reg_covar)
        self.max_iter = int(max_iter)
        self.n_init = int(n_init)
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = seed if random_state is None else random_state

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None, callback=None):
        """EM from ``n_init`` initialisations; ``callback(iteration, mean_log_likelihood)``
        is called after each E-step (progress bars, logs)."""
        X = self._check_X(X, "fit", fitted=False)
        if X.shape[0] < self.n_components:
            raise ValueError(f"GaussianMixture.fit: {X.shape[0]} samples for "
                             f"{self.n_components} components")
        self._rng = np.random.default_rng(self.random_state)
        best = None
        for _ in range(self.n_init):
            self._initialise(X)
            history = self._em(X, callback)
            if best is None or history[-1] > best[0]:
                best = (history[-1], self._get_params(), history, self.converged_, self.n_iter_)
        self.lower_bound_, params, self.log_likelihoods_, self.converged_, self.n_iter_ = best
        self._set_params(*params)
        return self

    def _em(self, X, callback=None):
        """Alternate E and M steps; return ln P(X)/N after each E-step."""
        history = []
        self.converged_ = False
        for it in range(1, self.max_iter + 1):
            log_norm, log_resp = self._e_step(X)
            history.append(float(log_norm.mean()))
            if callback is not None:
                callback(it, history[-1])
            self._m_step(X, np.exp(log_resp))
            if len(history) > 1 and abs(history[-1] - history[-2]) < self.tol:
                self.converged_ = True  # ln P(X) has stabilised (the lecture's stop-condition)
                break
        self.n_iter_ = it
        return history

    def _e_step(self, X):
        """log P(X_i) and log g_i(j) = log w_j + log F(X_i, q_j) - log P(X_i)."""
        weighted = self._estimate_log_prob(X) + np.log(self.weights_)[None, :]
        log_norm = _logsumexp(weighted, axis=1)
        return log_norm, weighted - log_norm[:, None]

    def _m_step(self, X, resp):
        """w_j = mean_i g_i(j); mu_j and Sigma_j: the g-weighted mean and covariance."""
        # 10 eps keeps an empty component's weight positive (no log(0), no 0/0)
        nk = resp.sum(0) + 10 * np.finfo(np.float64).eps
        self.weights_ = nk / X.shape[0]
        self.means_ = (resp.T @ X) / nk[:, None]
        if self.covariance_type == "full":
            d = X.shape[1]
            cov = np.empty((self.n_components, d, d))
            for j in range(self.n_components):
                diff = X - self.means_[j]
                cov[j] = (resp[:, j, None] * diff).T @ diff / nk[j]
                cov[j].flat[::d + 1] += self.reg_covar
        else:
            # the same weighted average of (x - mu_j)^2, per coordinate, as E[x^2] - E[x]^2:
            # one GEMM for all components. Its rounding error is about eps * E[x^2], so where
            # the variance is not far above that (a shrinking component) the cancellation eats
            # the digits and EM's ascent (each M-step the exact maximiser) is lost: those
            # components are recomputed in two passes, which do not cancel.
            avg_x2 = (resp.T @ (X * X)) / nk[:, None]
            cov = avg_x2 - self.means_ ** 2
            for j in np.nonzero((cov < 1e-3 * avg_x2).any(axis=1))[0]:
                cov[j] = resp[:, j] @ (X - self.means_[j]) ** 2 / nk[j]
            cov += self.reg_covar
        self.covariances_ = cov
        self.precisions_cholesky_ = _precision_cholesky(cov, self.covariance_type)

    def _estimate_log_prob(self, X):
        """log N(X_i | mu_j, Sigma_j), shape (N, K), through the precision's Cholesky factor:
        Sigma^-1 = P P^T, so (x - mu)^T Sigma^-1 (x - mu) = |(x - mu)^T P|^2 and
        log det Sigma^-1 = 2 sum log diag P."""
        n, d = X.shape
        pc = self.precisions_cholesky_
        if self.covariance_type == "diag":
            # sum_f (x_f - mu_f)^2 p_f expanded into two matrix products for all components
            # at once: X^2 p^T - 2 X (mu p)^T + sum mu^2 p, with p = 1 / sigma^2
            p = pc ** 2
            maha = (X * X) @ p.T - 2.0 * (X @ (self.means_ * p).T) + (self.means_ ** 2 * p).sum(1)
            return -0.5 * (d * math.log(2 * math.pi) + maha) + np.log(pc).sum(1)
        out = np.empty((n, self.n_components))
        for j in range(self.n_components):
            y = (X - self.means_[j]) @ pc[j]
            log_det = np.log(np.diagonal(pc[j])).sum()
            out[:, j] = -0.5 * (d * math.log(2 * math.pi) + (y * y).sum(1)) + log_det
        return out

    def _initialise(self, X):
        """Responsibilities from K-means (or random), one M-step, then the given inits."""
        n, k = X.shape[0], self.n_components
        if self.init_params == "kmeans":
            seed = int(self._rng.integers(2 ** 31))
            labels = KMeans(k, n_init=1, random_state=seed).fit(X).labels_
            resp = np.zeros((n, k))
            resp[np.arange(n), labels] = 1.0
        else:
            resp = self._rng.random((n, k))
            resp /= resp.sum(1, keepdims=True)
        self._m_step(X, resp)
        if self.weights_init is not None:
            self.weights_ = np.asarray(self.weights_init, np.float64).copy()
        if self.means_init is not None:
            self.means_ = np.asarray(self.means_init, np.float64).copy()
        if self.precisions_init is not None:
            prec = np.asarray(self.precisions_init, np.float64)
            if self.covariance_type == "full":
                self.covariances_ = np.linalg.inv(prec)
                self.precisions_cholesky_ = np.linalg.cholesky(prec)
            else:
                self.covariances_ = 1.0 / prec
                self.precisions_cholesky_ = np.sqrt(prec)

    # ------------------------------------------------------------------ use
    def score_samples(self, X):
        """ln P(X_i) for each row."""
        return self._e_step(self._check_X(X, "score_samples"))[0]

    def score(self, X, y=None):
        """Mean log-likelihood per sample (as scikit-learn)."""
        return float(self.score_samples(X).mean())

    def predict_proba(self, X):
        """Responsibilities g_i(j) = P(j | X_i), shape (N, K)."""
        return np.exp(self._e_step(self._check_X(X, "predict_proba"))[1])

    def predict(self, X):
        """The most responsible component of each row."""
        return self.predict_proba(X).argmax(1)

    def fit_predict(self, X, y=None):
        return self.fit(X).predict(X)

    def sample(self, n_samples=1):
        """Draw from the fitted mixture: component j ~ Cat(w), then x ~ N(mu_j, Sigma_j).
        Returns (X (n, D), component labels (n,)), as scikit-learn."""
        self._check_fitted()
        rng = getattr(self, "_rng", np.random.default_rng(self.random_state))
        counts = rng.multinomial(n_samples, self.weights_ / self.weights_.sum())
        xs, ys = [], []
        for j, c in enumerate(counts):
            z = rng.standard_normal((c, self.means_.shape[1]))
            if self.covariance_type == "full":
                xs.append(self.means_[j] + z @ np.linalg.cholesky(self.covariances_[j]).T)
            else:
                xs.append(self.means_[j] + z * np.sqrt(self.covariances_[j]))
            ys.append(np.full(c, j))
        return np.concatenate(xs), np.concatenate(ys)

    def n_parameters(self):
        k, d = self.means_.shape
        cov = k * d * (d + 1) / 2 if self.covariance_type == "full" else k * d
        return int(cov + k * d + k - 1)

    def bic(self, X):
        """Bayesian information criterion: -2 ln P(X) + p ln N (lower is better)."""
        n = self._check_X(X, "bic").shape[0]
        return -2 * self.score(X) * n + self.n_parameters() * math.log(n)

    def aic(self, X):
        return -2 * self.score(X) * self._check_X(X, "aic").shape[0] + 2 * self.n_parameters()

    # ------------------------------------------------------------------ helpers
    def _get_params(self):
        return (self.weights_, self.means_, self.covariances_, self.precisions_cholesky_)

    def _set_params(self, weights, means, covariances, precisions_cholesky):
        self.weights_, self.means_ = weights, means
        self.covariances_, self.precisions_cholesky_ = covariances, precisions_cholesky

    def _check_fitted(self):
        if not hasattr(self, "means_"):
            raise RuntimeError("GaussianMixture: call fit(X) before using the model")

    def _check_X(self, X, where, fitted=True):
        if fitted:
            self._check_fitted()
        if get_array_module(X) is not np:
            X = to_numpy(X)  # EM here is NumPy float64: K small matrices, not a GPU workload
        return as_data_matrix(X, f"GaussianMixture.{where}", np.float64,
                              self.means_.shape[1] if fitted else None)


def _precision_cholesky(cov, covariance_type):
    """P with P P^T = Sigma^-1: for Sigma = L L^T, P = L^-T (upper triangular)."""
    if covariance_type == "diag":
        return 1.0 / np.sqrt(cov)
    out = np.empty_like(cov)
    eye = np.eye(cov.shape[1])
    for j in range(cov.shape[0]):
        try:
            L = np.linalg.cholesky(cov[j])
        except np.linalg.LinAlgError:
            raise ValueError(f"GaussianMixture: covariance of component {j} is not positive "
                             "definite (a component collapsed onto too few points); increase "
                             "reg_covar") from None
        out[j] = np.linalg.solve(L, eye).T
    return out


def _logsumexp(a, axis):
    m = a.max(axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return np.log(np.exp(a - m).sum(axis=axis)) + np.squeeze(m, axis=axis)
