"""K-means (seed lecture 002, "Алгоритм к-средних"), with k-means++ initialisation.

The lecture's steps, and where each one lives below:

  1-3. iteration s = 0; give each cluster an object of the training set   -> ``_init_centres``
       (at random, or by k-means++: each next centre drawn with probability proportional
       to the squared distance to the nearest centre chosen so far -- Arthur & Vassilvitskii)
  4-6. distances from every object to every centre; attach X_i to the      -> ``_assign``
       nearest centre C_k
  7-8. new centre = mean of its N_b members                                -> ``_update``
  9.   repeat from 4 while a centre moves by more than delta               -> ``_lloyd``

Several restarts (``n_init``) keep the run with the smallest inertia (the sum of squared
distances to the nearest centre, the criterion E = min sum rho(X, W_k) of the lecture).
"""
import numpy as np

from ..backend import get_array_module
from ..kernels import matmul
from . import distances
from ._checks import as_data_matrix


class KMeans:
    """K-means clustering, scikit-learn style.

    Args:
        n_clusters: number of clusters K.
        init: 'k-means++', 'random' (K distinct objects, the lecture's step 2) or an
            array (K, D) of starting centres.
        n_init: restarts; the run with the lowest inertia is kept.
        max_iter: Lloyd iterations per restart.
        tol: the lecture's delta, relative to the data's scale: stop when the summed squared
            centre shift is <= tol * (mean feature variance), or when no object changed
            cluster. ``tol=0`` runs until the partition is stable.
        metric: distance used to attach objects ('euclidean' | 'dot' | 'manhattan' |
            'supremum'); centres are always means (step 7), so only the Euclidean metric
            is guaranteed to lower the inertia at every step.
        random_state / seed: int seed of the initialisation.

    Fitted: ``cluster_centers_`` (K, D), ``labels_``, ``inertia_``, ``n_iter_``.
    """

    def __init__(self, n_clusters=8, init="k-means++", n_init=1, max_iter=300, tol=1e-4,
                 metric="euclidean", random_state=None, seed=None):
        if n_clusters < 1:
            raise ValueError(f"KMeans: n_clusters must be >= 1, got {n_clusters}")
        self.n_clusters = int(n_clusters)
        self.init = init
        self.n_init = int(n_init)
        self.max_iter = int(max_iter)
        self.tol = float(tol)
        self.metric = metric
        distances.metric_code(metric)  # fail early on an unknown name
        self.random_state = seed if random_state is None else random_state

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None):
        X = as_data_matrix(X, "KMeans.fit")
        if X.shape[0] < self.n_clusters:
            raise ValueError(f"KMeans.fit: {X.shape[0]} samples for {self.n_clusters} clusters")
        rng = np.random.default_rng(self.random_state)
        xp = get_array_module(X)
        # tol = 0 needs no scale: skip the column variances (several passes over X, 0.7 s on
        # 60000x784 -- a third of a whole fit), as scikit-learn does
        scale = (float(xp.var(X, axis=0).mean()) or 1.0) if self.tol else 1.0
        best = None
        n_init = 1 if not isinstance(self.init, str) else self.n_init
        for _ in range(n_init):
            centres = self._init_centres(X, rng)
            run = self._lloyd(X, centres, self.tol * scale)
            if best is None or run[2] < best[2]:
                best = run
        self.cluster_centers_, self.labels_, self.inertia_, self.n_iter_ = best
        return self

    def _init_centres(self, X, rng):
        """Steps 1-3: one object per cluster."""
        k = self.n_clusters
        if not isinstance(self.init, str):
            centres = np.asarray(self.init, dtype=X.dtype)
            if centres.shape != (k, X.shape[1]):
                raise ValueError(f"KMeans: init array has shape {centres.shape}, expected "
                                 f"({k}, {X.shape[1]})")
            return get_array_module(X).asarray(centres).copy()
        if self.init == "random":
            return X[rng.choice(X.shape[0], size=k, replace=False)].copy()
        if self.init == "k-means++":
            return kmeans_plusplus(X, k, rng)
        raise ValueError(f"KMeans: init must be 'k-means++', 'random' or an array, got {self.init!r}")

    def _lloyd(self, X, centres, delta):
        """Steps 4-9 until the centres stop moving (by more than delta) or max_iter."""
        labels = None
        state = {}   # what the fused Euclidean step carries from one iteration to the next
        for it in range(1, self.max_iter + 1):
            new_labels, dist, sums, counts = self._step(X, centres, state)  # steps 4-6, sums
            new_centres = self._update(X, sums, counts, dist)         # steps 7-8
            shift = float(((new_centres - centres) ** 2).sum())
            stable = labels is not None and bool((new_labels == labels).all())
            centres, labels = new_centres, new_labels
            if stable or shift <= delta:                              # step 9
                break
        labels, dist = self._assign(X, centres)  # labels and inertia of the final centres
        return centres, labels, self._inertia(dist), it

    def _step(self, X, centres, state=None):
        """Nearest centre of every object, its distance, and the per-cluster sums and counts.

        Euclidean on NumPy: the product X C^T by BLAS, then one Numba pass for the arg-min
        and the distances, and the sums updated by the rows that changed cluster only
        (kernels.classical.lloyd_from_gram). ``state`` (a dict, empty at the first
        iteration) keeps the rows' squared norms, the assignment and its sums in between."""
        from ..kernels import use_numba
        if distances.metric_code(self.metric) == 0 and use_numba(X):
            import numba
            from ..kernels.classical import lloyd_from_gram, threads_for
            X = np.ascontiguousarray(X)
            state = {} if state is None else state
            if not state:
                k = centres.shape[0]
                state.update(x_sq=_row_norms_sq(X), labels=np.full(X.shape[0], -1, np.int64),
                             sums=np.zeros((k, X.shape[1])), counts=np.zeros(k))
            centres = centres.astype(X.dtype)
            gram = matmul(X, centres.T)  # on minigen's threads (kernels/blas.py)
            with threads_for(X.size):
                d2, _ = lloyd_from_gram(X, gram, state["x_sq"], _row_norms_sq(centres),
                                        state["labels"], state["sums"], state["counts"],
                                        numba.get_num_threads())
            return (state["labels"].copy(), np.sqrt(d2), state["sums"].copy(),
                    state["counts"].copy())
        labels, dist = self._assign(X, centres)
        return (labels, dist) + tuple(cluster_sums(X, labels, self.n_clusters))

    def _assign(self, X, centres):
        return distances.nearest(X, centres, self.metric)

    def _update(self, X, sums, counts, dist):
        """c_b = (1 / N_b) sum_{X in C_b} X; an emptied cluster takes the farthest object."""
        xp = get_array_module(X)
        centres = (sums / xp.maximum(counts, 1)[:, None]).astype(X.dtype)
        empty = xp.nonzero(counts == 0)[0]
        if len(empty):
            far = xp.argsort(-dist)[:len(empty)]
            centres[empty] = X[far]
        return centres

    def _inertia(self, dist):
        # Euclidean: sum of squared distances (scikit-learn's inertia); other metrics: sum d
        return float((dist ** 2).sum() if distances.metric_code(self.metric) == 0 else dist.sum())

    # ------------------------------------------------------------------ use
    def predict(self, X):
        """Index of the nearest centre for each row."""
        self._check_fitted()
        return self._assign(as_data_matrix(X, "KMeans.predict"), self.cluster_centers_)[0]

    def fit_predict(self, X, y=None):
        return self.fit(X).labels_

    def transform(self, X):
        """Distances (N, K) from each row to every centre."""
        self._check_fitted()
        return distances.pairwise(as_data_matrix(X, "KMeans.transform"), self.cluster_centers_,
                                  self.metric)

    def score(self, X, y=None):
        """Minus the inertia of X (larger is better, as scikit-learn)."""
        self._check_fitted()
        X = as_data_matrix(X, "KMeans.score")
        return -self._inertia(self._assign(X, self.cluster_centers_)[1])

    def _check_fitted(self):
        if not hasattr(self, "cluster_centers_"):
            raise RuntimeError("KMeans: call fit(X) before using the model")


def kmeans_plusplus(X, k, rng, n_local_trials=None):
    """k-means++ seeding (greedy variant, as scikit-learn): the first centre uniformly, each
    next one among ``2 + log k`` candidates drawn with probability ~ D(x)^2, keeping the
    candidate that lowers the potential sum D(x)^2 most."""
    xp = get_array_module(X)
    n = X.shape[0]
    trials = n_local_trials or 2 + int(np.log(k))
    centres = xp.empty((k, X.shape[1]), dtype=X.dtype)
    centres[0] = X[rng.integers(n)]
    closest = distances.pairwise(X, centres[:1]).astype(np.float64)[:, 0] ** 2
    for c in range(1, k):
        potential = float(closest.sum())
        if potential <= 0:  # all remaining objects sit on a centre already
            centres[c] = X[rng.integers(n)]
            continue
        cumulative = np.cumsum(_numpy(closest))
        picks = np.searchsorted(cumulative, rng.random(trials) * cumulative[-1])
        picks = np.minimum(picks, n - 1)
        cand = distances.pairwise(X, X[xp.asarray(picks)]).astype(np.float64) ** 2
        cand = xp.minimum(closest[:, None], cand)
        best = int(cand.sum(0).argmin())
        centres[c] = X[int(picks[best])]
        closest = cand[:, best]
    return centres


def cluster_sums(X, labels, k, weights=None):
    """Per-cluster sums of rows and their counts (float64): the Numba kernel for NumPy
    arrays, else the reference."""
    from ..kernels import use_numba
    if use_numba(X):
        import numba
        from ..kernels.classical import cluster_sums as kernel, threads_for
        w = np.ones(X.shape[0]) if weights is None else np.asarray(weights, np.float64)
        with threads_for(X.size):
            return kernel(np.ascontiguousarray(X), np.asarray(labels, np.int64), k, w,
                          numba.get_num_threads())
    return cluster_sums_reference(X, labels, k, weights)


def cluster_sums_reference(X, labels, k, weights=None):
    """sums[c] = sum_{labels_i = c} w_i X_i, counts[c] = sum w_i, via a one-hot product."""
    xp = get_array_module(X)
    onehot = xp.zeros((X.shape[0], k), dtype=xp.float64)
    onehot[xp.arange(X.shape[0]), labels] = 1.0 if weights is None else weights
    return onehot.T @ X.astype(xp.float64), onehot.sum(0)


def _row_norms_sq(X):
    """|x_i|^2 for every row, in X's precision (as the product X C^T is)."""
    return get_array_module(X).einsum("ij,ij->i", X, X)


def _numpy(a):
    from ..backend import to_numpy
    return to_numpy(a)
