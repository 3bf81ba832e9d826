"""What the classical-model commands (rbm, som, kmeans, gmm) share: data and small helpers.

Image data come from ``minigen.data.load_dataset``; the toy sets (colours for maps,
2-D mixtures for clustering) from ``minigen.data.toy``.
"""
import math

import numpy as np

from ..options import integer
from ..runs import CLIError

IMAGE_DATASETS = ("fashion-mnist", "mnist", "digits")
TOY_DATASETS = ("colours", "ring", "grid", "moons")
DATASETS = IMAGE_DATASETS + TOY_DATASETS


def add_data_arguments(p, default):
    p.add_argument("--dataset", default=default, choices=DATASETS,
                   help=f"training data (default {default}); colours/ring/grid/moons are toy sets")
    p.add_argument("--subset", type=int, default=None,
                   help="use only the first N training and test rows (quick trials)")
    p.add_argument("--n-toy", type=integer(low=2), default=2000,
                   help="rows drawn for a toy dataset (default 2000)")


def load_data(args):
    """(X train, y train or None, X test, y test or None, image shape or None)."""
    name = args.dataset
    if name in IMAGE_DATASETS:
        from . import load_images
        x, y, xt, yt = load_images(name)
        side = int(round(math.sqrt(x.shape[1])))
        shape = (side, side)
    else:
        from ..data import toy
        n = args.n_toy
        make = {"colours": lambda n, s: toy.colours(n, seed=s),
                "ring": lambda n, s: toy.ring_of_gaussians(n, seed=s),
                "grid": lambda n, s: toy.grid_of_gaussians(n, seed=s),
                "moons": lambda n, s: toy.two_moons(n, seed=s)}[name]
        x, y = _split(make(n, args.seed))
        xt, yt = _split(make(max(n // 4, 2), args.seed + 1))
        shape = None
    if args.subset:
        x, xt = x[:args.subset], xt[:args.subset]
        y = None if y is None else y[:args.subset]
        yt = None if yt is None else yt[:args.subset]
    return np.asarray(x, np.float32), y, np.asarray(xt, np.float32), yt, shape


def _split(data):
    """Toy makers return X, or (X, y) for the mixtures: -> (X, y or None)."""
    return (data[0], data[1]) if isinstance(data, tuple) else (data, None)


def rng_state(rng):
    return rng.bit_generator.state


def set_rng_state(rng, state):
    rng.bit_generator.state = _plain(state)


def _plain(obj):
    """Checkpoint values back to plain Python (dicts of str/int), as the generator wants."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:
        return obj.item()
    return obj


def text(value):
    """A string stored in a checkpoint (np.str_ / 0-d array / str) -> str."""
    return str(value.item() if hasattr(value, "item") else value)


def check_model(state, name, where):
    if text(state.get("model")) != name:
        raise CLIError(f"{where}: checkpoint is of model {text(state.get('model'))!r}, "
                       f"not {name!r}")


def purity(labels, y):
    """Share of rows whose cluster's majority class is their own class (needs labels)."""
    if y is None:
        return None
    labels, y = np.asarray(labels), np.asarray(y)
    total = 0
    for c in np.unique(labels):
        total += np.bincount(y[labels == c]).max()
    return total / len(y)
