"""Input checks shared by the classical models (scikit-learn's X of shape (N, D))."""
import numpy as np

from ..backend import get_array_module


def as_data_matrix(X, where, dtype=None, n_features=None, fitted_on="the model",
                   check_finite=True):
    """X as a 2-D float array on its own backend (float32 unless it is float64, or ``dtype``),
    or a ValueError naming the method; ``n_features`` is what the fitted model expects.
    ``check_finite=False`` leaves the finiteness check to a caller that makes it anyway
    (``require_finite``)."""
    xp = get_array_module(X)
    X = xp.asarray(X)
    if dtype is not None:
        X = X.astype(dtype, copy=False)
    elif X.dtype not in (xp.float32, xp.float64):
        X = X.astype(xp.float32)
    if X.ndim != 2:
        raise ValueError(f"{where}: expected X of shape (N, D), got {tuple(X.shape)}")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"{where}: X has {X.shape[1]} features, {fitted_on} {n_features}")
    return require_finite(X, where) if check_finite else X


def require_finite(X, where):
    """X itself, or a ValueError naming its first NaN/inf entry: NaN/inf would spread
    silently through every distance and mean. The sum is finite when every entry is (one
    fast pass, no (N, D) mask; scikit-learn's test); only when it is not -- a bad entry, or
    a sum that overflowed -- are the entries checked one by one."""
    xp = get_array_module(X)
    with np.errstate(over="ignore", invalid="ignore"):
        if bool(xp.isfinite(X.sum())):
            return X
    finite = xp.isfinite(X)
    if not bool(finite.all()):
        i, j = (int(v) for v in xp.argwhere(~finite)[0])
        raise ValueError(f"{where}: X[{i}, {j}] is {float(X[i, j])} (row {i}, column {j}); "
                         f"the data must be finite: drop or impute that row first")
    return X
