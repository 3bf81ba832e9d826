"""Score generated images against real ones: IS, FID, KID, precision and recall in one call.

    from minigen.metrics.scoring import real_set, score_images
    real = real_set()                         # Fashion-MNIST's 10 000 test images, embedded once
    row = score_images(images, real)          # images (N, 784) in [0, 1]
    row["fid"], row["kid_mean"], row["precision"], row["recall"], row["is_mean"]

Every score goes through the shipped feature network (``minigen.metrics.features``); the
real images' features are cached on disk (``$MINIGEN_CACHE/metrics/``), keyed by the
network's and the images' SHA-256, so a second evaluation embeds only the generated images.
"""
import os

import numpy as np

from .features import embed, shipped_sha256
from .frechet import frechet_distance, gaussian_statistics
from .inception import inception_score
from .mmd import kid
from .knn_manifold import precision_recall

DEFAULTS = {"is_splits": 10, "kid_subsets": 100, "kid_subset_size": 1000, "k": 3}


class RealSet:
    """Features of real images, with their Gaussian statistics (the FID reference)."""

    def __init__(self, name, features, probs):
        self.name, self.features, self.probs = name, features, probs
        self.mu, self.sigma = gaussian_statistics(features)

    def __len__(self):
        return len(self.features)


def _cache_path(images):
    """Cache file of the features of ``images``: named by the network's and the images'
    SHA-256, so another network, another dataset or changed files never hit a stale entry."""
    import hashlib

    from ..data.datasets import cache_dir
    digest = hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()[:24]
    return os.path.join(cache_dir(), "metrics", shipped_sha256()[:16], f"{digest}.npz")


def embed_cached(images, cache=True, progress=None):
    """``embed(images)``, kept on disk for the next call with the same images."""
    from ..serialization import CheckpointError, load, save
    path = _cache_path(images)
    if cache and os.path.exists(path):
        try:
            stored = load(path)
            return stored["features"], stored["probs"]
        except (CheckpointError, KeyError):
            pass  # a damaged cache entry: compute it again
    feats, probs = embed(images, progress=progress)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        save({"features": feats, "probs": probs}, path)
    except OSError:
        pass  # an unwritable cache only costs time
    return feats, probs


def real_set(dataset="fashion-mnist", split="test", n=None, seed=0, cache=True, progress=None):
    """The real images to compare with: ``split`` of ``dataset`` (all of it, or ``n`` rows
    drawn without replacement with ``seed``), embedded by the shipped network (cached)."""
    from ..data import load_dataset
    x = load_dataset(dataset, split)[0]
    if n is not None and n < len(x):
        x = x[np.sort(np.random.default_rng(seed).choice(len(x), n, replace=False))]
    feats, probs = embed_cached(x, cache=cache, progress=progress)
    return RealSet(f"{dataset} {split} ({len(feats)})", feats, probs)


def score_features(feats, probs, real, is_splits=10, kid_subsets=100, kid_subset_size=1000, k=3):
    """The scores of generated features/probabilities against a ``RealSet`` (a dict)."""
    is_mean, is_std = inception_score(probs, splits=min(is_splits, len(probs)))
    kid_mean, kid_std = kid(real.features, feats, subsets=kid_subsets, subset_size=kid_subset_size)
    precision, recall = precision_recall(real.features, feats, k=k)
    return {"n": int(len(feats)), "is_mean": is_mean, "is_std": is_std,
            "fid": frechet_distance(real.mu, real.sigma, *gaussian_statistics(feats)),
            "kid_mean": kid_mean, "kid_std": kid_std, "precision": precision, "recall": recall,
            "reference": real.name, "feature_network_sha256": shipped_sha256(),
            "settings": {"is_splits": is_splits, "kid_subsets": kid_subsets,
                         "kid_subset_size": kid_subset_size, "k": k}}


def score_images(images, real, progress=None, **settings):
    """Embed ``images`` (N, 784) in [0, 1] and score them against ``real`` (see score_features)."""
    feats, probs = embed(images, progress=progress)
    return score_features(feats, probs, real, **settings)
