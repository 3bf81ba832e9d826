"""Improved precision and recall (Kynkäänniemi et al. 2019, "Improved precision and recall
metric for assessing generative models", sec. 2, eqs. (1)-(3)).

FID mixes two failures into one number: samples that look wrong (low fidelity) and parts
of the data that are never generated (low diversity, mode collapse). Precision and recall
separate them. Each set of feature vectors Phi estimates its manifold as a union of balls,
one around each vector, of radius its distance to its k-th nearest neighbour in the set:

    f(phi, Phi) = 1  if  ||phi - phi'|| <= ||phi' - NN_k(phi')||  for some phi' in Phi   (1)

    precision = 1/|Phi_g| sum_{phi_g} f(phi_g, Phi_r)    share of samples on the data manifold (2)
    recall    = 1/|Phi_r| sum_{phi_r} f(phi_r, Phi_g)    share of data on the samples' manifold (3)

The paper uses k = 3 (robust to outliers, yet tight) and equal set sizes.
"""
from ..backend import get_array_module
from ..models.distances import pairwise


def knn_radii(feats, k=3, chunk=500):
    """Distance from each row of ``feats`` to its k-th nearest other row (float64, (N,))."""
    xp = get_array_module(feats)
    feats = xp.asarray(feats, dtype=xp.float64)
    if not 1 <= k < len(feats):
        raise ValueError(f"knn_radii: k must be between 1 and N - 1 = {len(feats) - 1}, got {k}")
    radii = []
    for s in range(0, len(feats), chunk):
        d = pairwise(feats[s:s + chunk], feats)
        # sorted distances of a row: [0 (itself), 1st neighbour, ..., k-th neighbour, ...]
        radii.append(xp.partition(d, k, axis=1)[:, k])
    return xp.concatenate(radii)


def inside_manifold(query, feats, radii, chunk=500):
    """f(q, Phi) of eq. (1) for each row q of ``query``: is it within some ball of ``feats``?"""
    xp = get_array_module(query, feats)
    query = xp.asarray(query, dtype=xp.float64)
    feats = xp.asarray(feats, dtype=xp.float64)
    return xp.concatenate([(pairwise(query[s:s + chunk], feats) <= radii[None, :]).any(axis=1)
                           for s in range(0, len(query), chunk)])


def precision_recall(feats_real, feats_fake, k=3):
    """(precision, recall) of generated features against real ones, eqs. (2) and (3)."""
    xp = get_array_module(feats_real, feats_fake)
    real, fake = xp.asarray(feats_real), xp.asarray(feats_fake)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"precision_recall: expected features (N, d) and (M, d), got shapes "
                         f"{tuple(real.shape)} and {tuple(fake.shape)}")
    precision = inside_manifold(fake, real, knn_radii(real, k)).mean()
    recall = inside_manifold(real, fake, knn_radii(fake, k)).mean()
    return float(precision), float(recall)
