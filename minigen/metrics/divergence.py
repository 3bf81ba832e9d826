"""Kullback-Leibler divergence of discrete distributions (seed 000, "Дивергенция Кульбака-Лейблера").

    D_KL(P || Q) = sum_y p(y) log (p(y) / q(y))

(the lecture writes the integral for densities; for the class probabilities of the
Inception Score it is this sum). It is >= 0, zero only when P = Q, and not symmetric, so
not a distance. Terms with p(y) = 0 contribute 0 (the limit p log p -> 0); a class with
p(y) > 0 but q(y) = 0 makes the divergence infinite.
"""
from ..backend import get_array_module


def kl_divergence(p, q, axis=-1):
    """D_KL(p || q) in nats along ``axis`` (rows of probabilities), summed in float64.

    ``p`` and ``q`` broadcast against each other (e.g. p (N, C) against q (C,)). Each
    is taken as given: normalise them first if they are not distributions.
    """
    xp = get_array_module(p, q)
    p = xp.asarray(p, dtype=xp.float64)
    q = xp.asarray(q, dtype=xp.float64)
    if p.ndim == 0 or (q.ndim and p.shape[axis] != q.shape[axis]):
        raise ValueError(f"kl_divergence: p and q must have the same number of classes along "
                         f"axis {axis}, got shapes {tuple(p.shape)} and {tuple(q.shape)}")
    positive = p > 0
    # where p = 0 the term is 0 whatever q is: take the log of 1 there instead of 0 / q
    with _quiet(xp):
        ratio = xp.where(positive, p, 1.0) / xp.where(positive, q, 1.0)
        terms = xp.where(positive, p * xp.log(ratio), 0.0)
    return terms.sum(axis=axis)


def _quiet(xp):
    """NumPy warns on log(p / 0) = inf (a true infinite divergence); CuPy never warns."""
    import contextlib
    return xp.errstate(divide="ignore") if hasattr(xp, "errstate") else contextlib.nullcontext()
