"""Kohonen's self-organising map (seed lecture 002, "Модель сети Кохонена").

One layer of units on a 2-D grid (rectangular or hexagonal), each with a weight vector
W_j in input space. Training, as the lecture lists it:

    competition   winner  c(x) = argmin_j d(X, W_j)        (any of the four distances)
    cooperation   neighbourhood of the winner on the grid:
                  h_jc = exp(-d_jc^2 / (2 sigma^2))          (Gaussian; or bubble: d_jc <= sigma)
                  d_jc = |r_j - r_c|, r_j the unit's position on the grid
    adaptation    W_j <- W_j + alpha h_jc (X - W_j)
    decays        alpha(n) = alpha0 exp(-n / tau_alpha),  sigma(n) = sigma0 exp(-n / tau_sigma)

With sigma = 0 only the winner moves: the lecture's winner-take-all neuron (WTA).
Online training presents one sample at a time (n counts presentations); batch training
(Kohonen 2013) replaces each weight by the h-weighted mean of all samples at once
(n counts epochs). Quality: quantisation error E_q = (1/p) sum_k d(X^k, W_c(k)) (the
lecture's criterion) and topographic error (share of samples whose two best units are not
grid neighbours). Pictures: U-matrix, component planes, hit map, the codebook itself.
"""
import math

import numpy as np

from ..backend import get_array_module, to_numpy
from . import distances
from ._checks import as_data_matrix
from .kmeans import cluster_sums

NEIGHBOURHOODS = ("gaussian", "bubble")
TOPOLOGIES = ("rectangular", "hexagonal")


class SOM:
    """Self-organising map, scikit-learn style.

    Args:
        rows, cols: grid size.
        topology: 'rectangular' or 'hexagonal' (odd rows shifted by half a unit).
        metric: winner distance, 'euclidean' | 'dot' | 'manhattan' | 'supremum'.
        neighbourhood: 'gaussian' or 'bubble'.
        learning_rate, learning_rate_final: alpha0 and the value alpha(n) reaches at the
            end of training; they fix tau_alpha = T / ln(alpha0 / alpha_final) (T = total
            steps) unless ``alpha_tau`` is given.
        sigma, sigma_final: the neighbourhood width at the start (default max(rows, cols)/2)
            and end; likewise fix tau_sigma unless ``sigma_tau`` is given. sigma=0: WTA.
        mode: 'online' (per sample, the lecture's rule) or 'batch'.
        n_epochs: passes over the data in ``fit``.
        init: 'sample' (random training samples), 'random' (uniform in the data's box)
            or 'pca' (a plane spanned by the two leading principal components).
        random_state / seed: int seed (init and sample order).

    Fitted: ``codebook_`` (rows*cols, D), ``weights_`` (rows, cols, D) view of it,
    ``quantization_errors_`` (one per epoch), ``n_steps_``.
    """

    def __init__(self, rows=10, cols=10, topology="rectangular", metric="euclidean",
                 neighbourhood="gaussian", learning_rate=0.5, learning_rate_final=0.01,
                 sigma=None, sigma_final=1.0, alpha_tau=None, sigma_tau=None, mode="online",
                 n_epochs=10, init="sample", random_state=None, seed=None):
        if topology not in TOPOLOGIES:
            raise ValueError(f"SOM: topology must be one of {TOPOLOGIES}, got {topology!r}")
        if neighbourhood not in NEIGHBOURHOODS:
            raise ValueError(f"SOM: neighbourhood must be one of {NEIGHBOURHOODS}, "
                             f"got {neighbourhood!r}")
        if mode not in ("online", "batch"):
            raise ValueError(f"SOM: mode must be 'online' or 'batch', got {mode!r}")
        if rows < 1 or cols < 1:
            raise ValueError(f"SOM: grid must be at least 1x1, got {rows}x{cols}")
        self.rows, self.cols = int(rows), int(cols)
        self.topology = topology
        self.metric = metric
        self.metric_code = distances.metric_code(metric)
        self.neighbourhood = neighbourhood
        self.learning_rate = float(learning_rate)
        self.learning_rate_final = float(learning_rate_final)
        self.sigma = float(max(rows, cols) / 2 if sigma is None else sigma)
        self.sigma_final = float(min(sigma_final, self.sigma))
        self.alpha_tau = alpha_tau
        self.sigma_tau = sigma_tau
        self.mode = mode
        self.n_epochs = int(n_epochs)
        self.init = init
        self.random_state = seed if random_state is None else random_state
        self.positions = grid_positions(self.rows, self.cols, topology)
        diff = self.positions[:, None, :] - self.positions[None, :, :]
        self.grid_d2 = (diff ** 2).sum(-1)  # squared lateral distances d_jc^2, (K, K)

    @property
    def n_units(self):
        return self.rows * self.cols

    @property
    def weights_(self):
        return self.codebook_.reshape(self.rows, self.cols, -1)

    # ------------------------------------------------------------------ training
    def fit(self, X, y=None, epochs=None):
        """Initialise, then ``epochs`` (default n_epochs) passes of training."""
        X = self._check_X(X, "fit", fitted=False)
        epochs = self.n_epochs if epochs is None else int(epochs)
        self.initialise(X, total_epochs=epochs)
        for _ in range(epochs):
            self.train_epoch(X)
        return self

    def initialise(self, X, total_epochs=None):
        """Starting codebook and the decay constants for a run of ``total_epochs``."""
        X = self._check_X(X, "initialise", fitted=False)
        self._rng = np.random.default_rng(self.random_state)
        self.codebook_ = initial_codebook(X, self.n_units, self.init, self._rng,
                                          self.positions)
        epochs = self.n_epochs if total_epochs is None else int(total_epochs)
        total = epochs * (X.shape[0] if self.mode == "online" else 1)
        self._tau_alpha, self._tau_sigma = self._time_constants(max(total, 1))
        self.n_steps_ = 0
        self.epochs_ = 0
        self.quantization_errors_ = []
        return self

    def _time_constants(self, total):
        """tau such that alpha(T) = alpha_final and sigma(T) = sigma_final (unless given)."""
        ta = self.alpha_tau
        if ta is None:
            ratio = self.learning_rate / max(self.learning_rate_final, 1e-12)
            ta = total / math.log(ratio) if ratio > 1 else math.inf
        ts = self.sigma_tau
        if ts is None:
            ratio = self.sigma / max(self.sigma_final, 1e-12)
            ts = total / math.log(ratio) if ratio > 1 else math.inf
        return float(ta), float(ts)

    def alpha(self, n):
        """alpha(n) = alpha0 exp(-n / tau) (the lecture's decay); n may be an array."""
        return self.learning_rate * np.exp(-np.asarray(n, np.float64) / self._tau_alpha)

    def width(self, n):
        """sigma(n) = sigma0 exp(-n / tau_sigma)."""
        if self.sigma == 0:
            return np.zeros_like(np.asarray(n, np.float64))
        return self.sigma * np.exp(-np.asarray(n, np.float64) / self._tau_sigma)

    def train_epoch(self, X):
        """One pass over X (online: in a random order; batch: one batch update).
        Returns the quantisation error measured after the pass."""
        X = self._check_X(X, "train_epoch")
        if self.mode == "online":
            order = self._rng.permutation(X.shape[0])
            steps = self.n_steps_ + np.arange(X.shape[0])
            som_online_epoch(X, order, self.codebook_, self.grid_d2, self.alpha(steps),
                             self.width(steps), self.metric_code, self._kind)
            self.n_steps_ += X.shape[0]
        else:
            self.codebook_ = self._batch_update(X, float(self.width(self.n_steps_)))
            self.n_steps_ += 1
        self.epochs_ += 1
        qe = self.quantization_error(X)
        self.quantization_errors_.append(qe)
        return qe

    @property
    def _kind(self):
        return NEIGHBOURHOODS.index(self.neighbourhood)

    def _batch_update(self, X, sigma):
        """W_j = sum_i h_{j c(i)} x_i / sum_i h_{j c(i)}: per-unit sums of the samples each
        unit won, then one product with the neighbourhood matrix H (K, K)."""
        xp = get_array_module(X)
        winners, _ = distances.nearest(X, self.codebook_, self.metric)
        sums, counts = cluster_sums(X, winners, self.n_units)
        H = xp.asarray(neighbourhood(self.grid_d2, sigma, self.neighbourhood))
        num, den = H @ sums, H @ counts
        new = self.codebook_.copy()
        moved = den > 1e-12  # a unit far from every winner keeps its weights
        new[moved] = (num[moved] / den[moved, None]).astype(X.dtype)
        return new

    # ------------------------------------------------------------------ use
    def predict(self, X):
        """Flat index of each row's winning unit (row * cols + col)."""
        return distances.nearest(self._check_X(X, "predict"), self.codebook_, self.metric)[0]

    def winner(self, X):
        """Grid coordinates (row, col) of each row's winning unit, shape (N, 2)."""
        j = to_numpy(self.predict(X))
        return np.stack([j // self.cols, j % self.cols], axis=1)

    def transform(self, X):
        """Distances (N, rows*cols) from each row to every unit."""
        return distances.pairwise(self._check_X(X, "transform"), self.codebook_, self.metric)

    def quantization_error(self, X):
        """E_q = (1/p) sum_k d(X^k, W_c(k)), with the map's distance."""
        return float(distances.nearest(self._check_X(X, "quantization_error"),
                                       self.codebook_, self.metric)[1].mean())

    def score(self, X, y=None):
        """Minus the quantisation error (larger is better, scikit-learn's convention)."""
        return -self.quantization_error(X)

    def topographic_error(self, X, chunk=4096):
        """Share of samples whose best and second-best units are not grid neighbours
        (8-neighbourhood on a rectangular grid, 6 on a hexagonal one)."""
        X = self._check_X(X, "topographic_error")
        if self.n_units < 2:
            return float("nan")
        limit = 2.0 + 1e-6 if self.topology == "rectangular" else 1.0 + 1e-6  # d^2 limits
        errors = 0
        for s in range(0, X.shape[0], chunk):
            D = to_numpy(distances.pairwise(X[s:s + chunk], self.codebook_, self.metric))
            two = np.argpartition(D, 1, axis=1)[:, :2]
            first = np.where(D[np.arange(len(D)), two[:, 0]] <= D[np.arange(len(D)), two[:, 1]],
                             two[:, 0], two[:, 1])
            second = two.sum(1) - first
            errors += int((self.grid_d2[first, second] > limit).sum())
        return errors / X.shape[0]

    def hit_map(self, X):
        """How many samples each unit wins, shape (rows, cols)."""
        j = to_numpy(self.predict(X))
        return np.bincount(j, minlength=self.n_units).reshape(self.rows, self.cols)

    def u_matrix(self):
        """Mean Euclidean distance from each unit's weights to its grid neighbours' weights,
        shape (rows, cols): high ridges separate clusters."""
        self._check_fitted()
        W = to_numpy(self.codebook_).astype(np.float64)
        limit = 2.0 + 1e-6 if self.topology == "rectangular" else 1.0 + 1e-6
        adjacent = (self.grid_d2 <= limit) & (self.grid_d2 > 0)
        out = np.zeros(self.n_units)
        for j in range(self.n_units):
            nb = np.nonzero(adjacent[j])[0]
            out[j] = np.sqrt(((W[nb] - W[j]) ** 2).sum(1)).mean() if len(nb) else 0.0
        return out.reshape(self.rows, self.cols)

    def component_planes(self):
        """Each input feature's weight over the grid, shape (D, rows, cols)."""
        self._check_fitted()
        return np.moveaxis(to_numpy(self.weights_), -1, 0)

    # ------------------------------------------------------------------ helpers
    def _check_fitted(self):
        if not hasattr(self, "codebook_"):
            raise RuntimeError("SOM: call fit(X) (or initialise(X)) before using the map")

    def _check_X(self, X, where, fitted=True):
        if fitted:
            self._check_fitted()
        X = as_data_matrix(X, f"SOM.{where}", None, self.codebook_.shape[1] if fitted else None,
                           fitted_on="the map")
        if fitted:
            X = X.astype(self.codebook_.dtype, copy=False)
        return X


# ---------------------------------------------------------------------- grid geometry
def grid_positions(rows, cols, topology="rectangular"):
    """Position r_j of unit j = row * cols + col in the plane, shape (K, 2) as (x, y).
    Hexagonal: odd rows shift right by 1/2 and rows sit sqrt(3)/2 apart, so each inner
    unit has six neighbours at distance 1."""
    r, c = np.divmod(np.arange(rows * cols), cols)
    if topology == "rectangular":
        return np.stack([c, r], 1).astype(np.float64)
    return np.stack([c + 0.5 * (r % 2), r * math.sqrt(3) / 2], 1)


def neighbourhood(d2, sigma, kind="gaussian"):
    """h for squared lateral distances d2: exp(-d^2/(2 sigma^2)) or bubble 1[d <= sigma];
    sigma = 0 gives winner-take-all (h = 1 at d = 0 only)."""
    d2 = np.asarray(d2, np.float64)
    if sigma <= 0:
        return (d2 == 0).astype(np.float64)
    if kind == "gaussian":
        return np.exp(-d2 / (2.0 * sigma * sigma))
    return (d2 <= sigma * sigma).astype(np.float64)


def initial_codebook(X, k, init, rng, positions=None):
    xp = get_array_module(X)
    if init == "sample":
        return X[xp.asarray(rng.choice(X.shape[0], size=k, replace=X.shape[0] < k))].copy()
    if init == "random":
        lo, hi = to_numpy(X.min(0)), to_numpy(X.max(0))
        return xp.asarray(lo + rng.random((k, X.shape[1])) * (hi - lo)).astype(X.dtype)
    if init == "pca":
        Xn = to_numpy(X).astype(np.float64)
        mean = Xn.mean(0)
        _, s, vt = np.linalg.svd(Xn - mean, full_matrices=False)
        pos = positions - positions.mean(0)
        pos = pos / np.maximum(np.abs(pos).max(0), 1e-12)   # each grid axis to [-1, 1]
        scale = s[:2] / math.sqrt(max(len(Xn) - 1, 1))       # one standard deviation
        basis = vt[:2] * scale[:len(vt[:2]), None]
        return xp.asarray(mean + pos[:, :len(basis)] @ basis).astype(X.dtype)
    raise ValueError(f"SOM: init must be 'sample', 'random' or 'pca', got {init!r}")


# ---------------------------------------------------------------------- the online epoch
def som_online_epoch(X, order, W, grid_d2, alphas, sigmas, metric, kind):
    """Online Kohonen pass over X[order], updating W in place; returns the winners.
    The Numba kernel for NumPy arrays, the CUDA kernels for CuPy arrays, else the reference."""
    from ..kernels import cuda_for, use_kernels
    if cuda_for(W) is not None:  # kernels/classical.cu
        return cuda_for(W).som_online_epoch(X, order, W, grid_d2, alphas, sigmas, metric, kind)
    if get_array_module(X) is np and use_kernels():
        from ..kernels.classical import som_online_epoch as kernel
        return kernel(X, np.asarray(order, np.int64), W, grid_d2, alphas, sigmas, metric, kind)
    return som_online_epoch_reference(X, order, W, grid_d2, alphas, sigmas, metric, kind)


def unit_rates(alpha, h, dtype):
    """The learning rates alpha h_jc of the units, rounded to the map's precision, with
    subnormal values (below the smallest normal number, 2^-126 in float32) set to 0; the
    Numba and CUDA kernels do the same.

    Such a rate moves no weight that matters: |rate (x - w)| < 2^-126 |x - w| is under half
    an ulp of w unless |w| < 2^-101 |x - w| (float32), a weight that is already ~0. But on
    x86 every SIMD instruction with a subnormal operand takes a microcode assist (~100
    cycles): in an epoch of the benchmark (20x20 map, sigma 10 -> 1) 1.4 % of the rates are
    subnormal, all once sigma is small, and they made the Numba kernel's updates 1.7x
    slower (measured). MiniSom's float64
    Gaussian has no subnormal values on such maps, so the comparison stays the same
    algorithm."""
    rate = np.asarray(alpha * np.asarray(h), dtype=dtype)
    rate[rate < np.finfo(dtype).tiny] = 0
    return rate


def som_online_epoch_reference(X, order, W, grid_d2, alphas, sigmas, metric, kind):
    """The lecture's loop, one sample at a time, in NumPy (the rates alpha h_jc as
    ``unit_rates`` gives them, in W's precision)."""
    xp = get_array_module(W)
    name = distances.METRICS[metric]
    winners = np.empty(len(order), dtype=np.int64)
    for t, i in enumerate(to_numpy(order)):
        x = X[int(i)]
        c = int(distances.to_one(x, W, name).argmin())                # competition
        h = neighbourhood(grid_d2[c], float(sigmas[t]), NEIGHBOURHOODS[kind])  # cooperation
        rate = xp.asarray(unit_rates(alphas[t], h, W.dtype))
        W += rate[:, None] * (x[None, :] - W)                          # adaptation
        winners[t] = c
    return winners


# ---------------------------------------------------------------------- figures
def plot_u_matrix(som, path, title="U-matrix"):
    _plot_grid(som.u_matrix(), path, title, cmap="bone_r", label="mean distance to neighbours")


def plot_hit_map(som, X, path, title="hit map"):
    _plot_grid(som.hit_map(X), path, title, cmap="viridis", label="samples won")


def plot_component_planes(som, path, features=None, names=None, max_planes=16):
    """One small map per input feature (its weight across the grid)."""
    from ..viz import _save, plt
    planes = som.component_planes()
    features = list(range(min(len(planes), max_planes))) if features is None else list(features)
    ncol = min(4, len(features))
    nrow = -(-len(features) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(2.6 * ncol, 2.4 * nrow), dpi=100,
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, f in zip(axes.flat, features):
        im = ax.imshow(planes[f], cmap="coolwarm", interpolation="nearest")
        ax.set_title(names[f] if names else f"feature {f}", fontsize=8)
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle("component planes")
    _save(fig, path)


def plot_codebook(som, path, title=None, image_shape=None):
    """The map itself: colours as an RGB picture, images as a grid of tiles."""
    from ..viz import _save, plt, save_image_grid
    W = to_numpy(som.codebook_)
    if W.shape[1] == 3:
        fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
        ax.imshow(np.clip(W.reshape(som.rows, som.cols, 3), 0, 1), interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        if title:
            ax.set_title(title)
        _save(fig, path)
    else:
        lo, hi = W.min(), W.max()
        save_image_grid((W - lo) / max(hi - lo, 1e-12), path, nrow=som.cols, title=title,
                        image_shape=image_shape)


def _plot_grid(values, path, title, cmap, label):
    from ..viz import _save, plt
    fig, ax = plt.subplots(figsize=(5, 4.3), dpi=100)
    im = ax.imshow(values, cmap=cmap, interpolation="nearest")
    fig.colorbar(im, ax=ax, label=label)
    ax.set_title(title)
    ax.set_xlabel("column")
    ax.set_ylabel("row")
    _save(fig, path)
