"""Mode coverage on the 2-D mixtures: the protocol of VEEGAN (Srivastava et al. 2017) and
PacGAN (Lin et al. 2018), used to show mode collapse in numbers (seed 000, "Mode collapse").

Draw 2500 samples from the generator. A sample is *high quality* when it lies within
3 standard deviations of some mode's centre (ring of 8: std 0.02, so 0.06; grid of 25: std
0.05, so 0.15). A mode is *captured* when at least one high-quality sample is nearest to it.
Report the number of modes captured and the fraction of high-quality samples: a collapsed
generator scores few modes, a blurry one a low fraction.
"""
from dataclasses import dataclass

import numpy as np

from ...data.toy import grid_centers, ring_centers


@dataclass
class Coverage:
    modes: int              # modes captured
    total_modes: int
    high_quality: float     # fraction of samples within 3 std of a centre
    counts: np.ndarray      # high-quality samples per mode


def mode_coverage(samples, centers, std, threshold=3.0, min_count=1):
    """``Coverage`` of the points ``samples`` (n, 2) for modes at ``centers`` (k, 2) of
    standard deviation ``std``: each sample is assigned to its nearest centre and counts
    when its distance is at most ``threshold * std``; a mode with >= ``min_count`` such
    samples is captured."""
    samples = np.asarray(samples, dtype=np.float64)
    centers = np.asarray(centers, dtype=np.float64)
    dist = np.linalg.norm(samples[:, None, :] - centers[None, :, :], axis=2)   # (n, k)
    nearest = dist.argmin(axis=1)
    good = dist[np.arange(len(samples)), nearest] <= threshold * std
    counts = np.bincount(nearest[good], minlength=len(centers))
    return Coverage(modes=int((counts >= min_count).sum()), total_modes=len(centers),
                    high_quality=float(good.mean()) if len(samples) else 0.0, counts=counts)


# the two benchmark mixtures of ``minigen.data.toy``, with their standard deviations
TOY_MODES = {"ring": (ring_centers(8, 2.0), 0.02), "grid": (grid_centers(5, 2.0), 0.05)}


def toy_coverage(samples, dataset):
    """``mode_coverage`` on "ring" (8 Gaussians, radius 2, std 0.02) or "grid" (25, std 0.05)."""
    centers, std = TOY_MODES[dataset]
    return mode_coverage(samples, centers, std)
