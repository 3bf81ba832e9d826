"""Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs", the KID of
their section on evaluation metrics).

KID is the squared maximum mean discrepancy between the feature distributions of real and
generated images, with the cubic polynomial kernel

    k(x, y) = (x . y / d + 1)^3                    (d = feature dimension)

estimated without bias (Gretton et al. 2012, "A kernel two-sample test", Lemma 6):

    MMD^2_u = 1 / (m (m-1)) sum_{i != j} k(x_i, x_j)
            + 1 / (n (n-1)) sum_{i != j} k(y_i, y_j)
            - 2 / (m n)     sum_{i, j}   k(x_i, y_j)

Dropping the diagonal terms k(x_i, x_i) is what makes it unbiased: the expectation is the
true MMD^2, so two samples of one distribution average to 0 (a single estimate can be
negative). Unlike FID it assumes no Gaussian shape and its estimate does not depend on
the sample size in expectation. As in the paper, it is averaged over random subsets
(drawn without replacement) and returned as (mean, std over subsets).

The kernel is not scale free: KID grows with the cube of the features' size. Inception's
2048 pool features are small (x . y / d well below 1), so Inception KIDs are quoted x 1e3;
the shipped Fashion-MNIST network's 128 ReLU features are larger, and its KIDs are quoted
as they are. Compare KIDs only within one feature network.
"""
import numpy as np

from ..backend import get_array_module


def polynomial_kernel(x, y):
    """k(x_i, y_j) = (x_i . y_j / d + 1)^3 for all pairs: (m, n) in float64."""
    xp = get_array_module(x, y)
    x = xp.asarray(x, dtype=xp.float64)
    y = xp.asarray(y, dtype=xp.float64)
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def gaussian_kernel(x, y, bandwidth):
    """k(x_i, y_j) = exp(-|x_i - y_j|^2 / (2 bandwidth^2)) for all pairs: (m, n) in float64.
    Characteristic (Gretton et al. 2012): MMD = 0 only for equal distributions, in any
    dimension -- the kernel for comparing low-dimensional codes with a prior."""
    xp = get_array_module(x, y)
    x = xp.asarray(x, dtype=xp.float64)
    y = xp.asarray(y, dtype=xp.float64)
    sq = (x * x).sum(1)[:, None] - 2.0 * x @ y.T + (y * y).sum(1)[None, :]
    return xp.exp(-xp.maximum(sq, 0.0) / (2.0 * bandwidth ** 2))


def median_bandwidth(x):
    """The median heuristic (Gretton et al. 2012): the median distance between distinct rows."""
    xp = get_array_module(x)
    x = xp.asarray(x, dtype=xp.float64)
    sq = (x * x).sum(1)[:, None] - 2.0 * x @ x.T + (x * x).sum(1)[None, :]
    upper = sq[xp.triu_indices(len(x), k=1)]
    return float(xp.sqrt(xp.median(xp.maximum(upper, 0.0))))


def mmd2_unbiased(x, y, kernel=polynomial_kernel):
    """The unbiased estimate MMD^2_u (module docstring) between the rows of x (m, d) and y (n, d),
    with ``kernel(a, b)`` -> the (len a, len b) kernel matrix (default: KID's cubic kernel;
    e.g. ``lambda a, b: gaussian_kernel(a, b, 1.0)``)."""
    xp = get_array_module(x, y)
    m, n = x.shape[0], y.shape[0]
    k_xx, k_yy, k_xy = kernel(x, x), kernel(y, y), kernel(x, y)
    within_x = (k_xx.sum() - xp.trace(k_xx)) / (m * (m - 1))   # i != j only
    within_y = (k_yy.sum() - xp.trace(k_yy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * k_xy.sum() / (m * n))


def kid(feats_a, feats_b, subsets=100, subset_size=1000, seed=0):
    """(mean, std) of MMD^2_u over ``subsets`` random subsets of ``subset_size`` rows of each set.

    A set with at most ``subset_size`` rows is used whole, in its order, in every subset
    (a permutation would not change the estimate), so one subset as large as both sets is
    the exact estimate over all rows. ``seed`` fixes the subsets (a generator of its own:
    minigen's random stream does not move). The std is over subsets (ddof 0).
    """
    xp = get_array_module(feats_a, feats_b)
    a, b = xp.asarray(feats_a), xp.asarray(feats_b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"kid: expected features (m, d) and (n, d), got shapes "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    if subsets < 1 or subset_size < 2 or min(len(a), len(b)) < 2:
        raise ValueError(f"kid: needs subsets >= 1 and at least 2 rows per subset, got "
                         f"subsets={subsets}, subset_size={subset_size}, sets of {len(a)} "
                         f"and {len(b)} rows")
    rng = np.random.default_rng(seed)

    def pick(f):
        if len(f) <= subset_size:
            return f
        return f[xp.asarray(rng.choice(len(f), subset_size, replace=False))]

    whole = len(a) <= subset_size and len(b) <= subset_size
    values = [mmd2_unbiased(pick(a), pick(b)) for _ in range(1 if whole else subsets)]
    values = np.array(values * (subsets if whole else 1))
    return float(values.mean()), float(values.std())
