"""Small synthetic data sets that train in seconds and show failures plainly.

* `ring_of_gaussians`: 8 tight Gaussians on a circle, the classic mode-collapse test for
  GANs (radius 2, std 0.02, as in Metz et al. 2017, "Unrolled GANs"). A collapsed
  generator covers one or two modes; `ring_centers` lets you count the modes it hits.
* `grid_of_gaussians`: 25 Gaussians on a 5x5 grid at -4, -2, 0, 2, 4 (std 0.05, as in
  VEEGAN and PacGAN): a harder version of the same test.
* `two_moons`: two interleaved half circles (scikit-learn's ``make_moons`` shape).
* `colours`: random RGB triples, the classic demo for a self-organising map, which sorts
  them into a smooth colour map.

All return float32 arrays. ``seed`` makes them repeatable; ``seed=None`` draws from
minigen's global generator, so ``minigen.manual_seed`` makes them repeatable too.
"""
import numpy as np

from .. import backend


def _rng(seed):
    return backend.rng("cpu") if seed is None else np.random.default_rng(seed)


def ring_centers(modes=8, radius=2.0):
    """The ``modes`` centres, evenly spaced on a circle of ``radius``: (modes, 2) float32."""
    angle = 2 * np.pi * np.arange(modes) / modes
    return (radius * np.stack([np.cos(angle), np.sin(angle)], axis=1)).astype(np.float32)


def grid_centers(side=5, spacing=2.0):
    """The ``side`` x ``side`` grid centres, centred on 0: (side**2, 2) float32."""
    ticks = (np.arange(side) - (side - 1) / 2) * spacing  # side=5, spacing=2: -4 .. 4
    gx, gy = np.meshgrid(ticks, ticks, indexing="ij")
    return np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)


def _mixture(n, centers, std, seed):
    """n points from an equal-weight mixture of isotropic Gaussians: (points, component)."""
    rng = _rng(seed)
    labels = rng.integers(len(centers), size=n)
    points = centers[labels] + std * rng.standard_normal((n, centers.shape[1]))
    return points.astype(np.float32), labels.astype(np.int64)


def ring_of_gaussians(n, modes=8, radius=2.0, std=0.02, seed=None):
    """``n`` points from ``modes`` Gaussians on a circle: (X (n, 2) float32, mode int64)."""
    return _mixture(n, ring_centers(modes, radius), std, seed)


def grid_of_gaussians(n, side=5, spacing=2.0, std=0.05, seed=None):
    """``n`` points from a ``side`` x ``side`` grid of Gaussians: (X (n, 2), mode int64)."""
    return _mixture(n, grid_centers(side, spacing), std, seed)


def two_moons(n, noise=0.1, seed=None):
    """Two interleaved half circles: (X (n, 2) float32, moon 0 or 1 int64).

    Moon 0 is the upper half of the unit circle, moon 1 the lower half shifted to
    (1, 0.5); ``noise`` is the std of the Gaussian added to every point.
    """
    rng = _rng(seed)
    labels = rng.integers(2, size=n)
    t = rng.uniform(0.0, np.pi, size=n)
    upper = np.stack([np.cos(t), np.sin(t)], axis=1)
    lower = np.stack([1 - np.cos(t), 0.5 - np.sin(t)], axis=1)
    points = np.where(labels[:, None] == 0, upper, lower) + noise * rng.standard_normal((n, 2))
    return points.astype(np.float32), labels.astype(np.int64)


def colours(n, seed=None):
    """``n`` random colours, RGB in [0, 1]: (n, 3) float32."""
    return _rng(seed).random((n, 3), dtype=np.float32)
