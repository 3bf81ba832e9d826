"""The four distances of seed lecture 002 ("Меры расстояния"), shared by K-means and SOM.

    Euclidean     d(X, W) = sqrt(sum_j (x_j - w_j)^2)
    dot product   d(X, W) = 1 - <X | W>          (|X| |W| cos(X, W) subtracted from 1)
    Manhattan     d(X, W) = sum_j |x_j - w_j|
    supremum      d(X, W) = max_j |x_j - w_j|

The dot-product "distance" is a similarity turned upside down: it ranks units by
<x, w>, which is the cosine ranking only when the vectors are normalised (the lecture's
``|X| |W| cos``) -- normalise the data and the weights to use it as an angle.

``pairwise`` is the plain NumPy reference (it also runs on CuPy arrays); ``nearest`` is
what the models call: for NumPy arrays it uses BLAS for ``X @ W.T`` plus a fused Numba
arg-min (Euclidean, dot) or a direct Numba loop (Manhattan, supremum); for CuPy arrays the
same two ways as CUDA kernels (``kernels/classical.cu``).
"""
import numpy as np

from ..backend import get_array_module
from ..kernels import matmul

METRICS = ("euclidean", "dot", "manhattan", "supremum")
_ALIASES = {"l2": "euclidean", "inner": "dot", "cosine": "dot", "l1": "manhattan",
            "cityblock": "manhattan", "chebyshev": "supremum", "max": "supremum",
            "linf": "supremum"}


def metric_code(metric):
    """'euclidean' | 'dot' | 'manhattan' | 'supremum' (or an alias) -> 0..3."""
    name = _ALIASES.get(str(metric).lower(), str(metric).lower())
    if name not in METRICS:
        raise ValueError(f"unknown distance {metric!r}: expected one of {', '.join(METRICS)}")
    return METRICS.index(name)


def pairwise(X, W, metric="euclidean", chunk=1024):
    """Distance matrix D[i, j] = d(X_i, W_j), shape (N, K) -- the NumPy reference.

    Euclidean and dot product go through the matrix product (||x||^2 - 2 x.w + ||w||^2);
    Manhattan and supremum broadcast (N, 1, D) - (1, K, D) in chunks of rows to bound memory.
    """
    code = metric_code(metric)
    xp = get_array_module(X, W)
    X = xp.asarray(X)
    W = xp.asarray(W)
    _check_shapes(X, W)
    if code == 0:
        sq = (X * X).sum(1)[:, None] - 2.0 * (X @ W.T) + (W * W).sum(1)[None, :]
        return xp.sqrt(xp.maximum(sq, 0.0))
    if code == 1:
        return 1.0 - X @ W.T
    out = xp.empty((X.shape[0], W.shape[0]), dtype=xp.result_type(X, W))
    for s in range(0, X.shape[0], chunk):
        diff = xp.abs(X[s:s + chunk, None, :] - W[None, :, :])
        out[s:s + chunk] = diff.sum(-1) if code == 2 else diff.max(-1)
    return out


def to_one(x, W, metric="euclidean"):
    """d(x, W_j) for one vector x (D,) and every row of W, computed directly from the
    definitions (no matrix-product shortcut, so no cancellation): shape (K,)."""
    code = metric_code(metric)
    xp = get_array_module(x, W)
    if code == 1:  # accumulate in float64, as the kernels do: near-ties break the same way
        return 1.0 - W.astype(xp.float64) @ x.astype(xp.float64)
    diff = W - x[None, :]
    if code == 0:
        return xp.sqrt((diff * diff).sum(1))
    return xp.abs(diff).sum(1) if code == 2 else xp.abs(diff).max(1)


def nearest_reference(X, W, metric="euclidean"):
    """(index of the nearest row of W, its distance) for each row of X -- NumPy reference."""
    xp = get_array_module(X, W)
    D = pairwise(X, W, metric)
    index = D.argmin(1)
    return index, D[xp.arange(D.shape[0]), index].astype(xp.float64)


def nearest(X, W, metric="euclidean"):
    """Winner / nearest centre: l(x) = argmin_j d(X, W_j) (the lecture's "Конкуренция").

    Returns (index int64 (N,), distance float64 (N,)).
    """
    from ..kernels import cuda_for, use_kernels
    cuda = cuda_for(X)
    if cuda is not None:  # kernels/classical.cu
        _check_shapes(X, W)
        return cuda.nearest(X, W, metric_code(metric))
    xp = get_array_module(X, W)
    if xp is not np or not use_kernels():
        return nearest_reference(X, W, metric)
    from ..kernels import classical as K
    code = metric_code(metric)
    _check_shapes(X, W)
    X = np.ascontiguousarray(X)
    W = np.ascontiguousarray(W, dtype=X.dtype)
    if code in (0, 1):  # BLAS does the heavy product; the kernel does the rest in one pass
        gram = matmul(X, W.T)  # on minigen's threads (kernels/blas.py)
        x_sq = np.einsum("ij,ij->i", X, X) if code == 0 else np.zeros(1, X.dtype)
        w_sq = np.einsum("ij,ij->i", W, W) if code == 0 else np.zeros(1, X.dtype)
        with K.threads_for(gram.size):
            return K.nearest_from_gram(gram, x_sq, w_sq, code)
    with K.threads_for(X.size * W.shape[0]):
        return K.nearest_direct(X, W, code)


def _check_shapes(X, W):
    if X.ndim != 2 or W.ndim != 2 or X.shape[1] != W.shape[1]:
        raise ValueError(f"distance: expected X (N, D) and W (K, D), got X {tuple(X.shape)} "
                         f"and W {tuple(W.shape)}")
