"""The shipped feature network: minigen's Fashion-MNIST classifier, weights fixed, SHA-256 checked.

FID, KID and precision/recall compare images through the penultimate activations of a fixed
classifier, and the Inception Score through its class probabilities. The numbers mean
something across machines and runs only if every user has the very same weights -- as
pytorch-fid pins one Inception-v3 file. minigen ships its own (the Inception weights cannot
be downloaded here, and Fashion-MNIST images are best judged by a Fashion-MNIST model):

    minigen/metrics/weights/fashion_classifier.npz    the ConvClassifier (float32)
    minigen/metrics/weights/fashion_classifier.json   how it was made (command, seed, test
                                                      accuracy, library versions) and the
                                                      npz's SHA-256

``load_feature_network`` refuses a weights file whose SHA-256 differs from the manifest's.
``minigen train classifier`` retrains the network from scratch and reports how far its
weights are from the shipped ones (``--ship`` replaces them and rewrites the manifest).
"""
import hashlib
import json
import os

import numpy as np

from .. import backend
from ..serialization import CheckpointError

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")
WEIGHTS = os.path.join(WEIGHTS_DIR, "fashion_classifier.npz")
MANIFEST = os.path.join(WEIGHTS_DIR, "fashion_classifier.json")
IMAGE_SHAPE = (1, 28, 28)


class WeightsChecksumError(CheckpointError):
    """The feature network's weights are not the ones the manifest describes."""


def sha256_file(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(path=None):
    """The manifest beside the weights (default: the shipped one): a dict with ``sha256``."""
    path = path or MANIFEST
    try:
        with open(path) as f:
            info = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"feature network: no manifest at {path} (the package is "
                                "incomplete; reinstall minigen)") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"feature network: manifest {path} is not valid JSON ({e})") from None
    if not isinstance(info, dict) or not isinstance(info.get("sha256"), str):
        raise CheckpointError(f"feature network: manifest {path} has no 'sha256' entry")
    return info


def verify_weights(weights=None, manifest=None):
    """Check the weights file against the manifest's SHA-256 (default: the shipped pair);
    returns the manifest."""
    weights, manifest = weights or WEIGHTS, manifest or MANIFEST
    info = read_manifest(manifest)
    if not os.path.exists(weights):
        raise FileNotFoundError(f"feature network: no weights at {weights} (the package is "
                                "incomplete; reinstall minigen)")
    found = sha256_file(weights)
    if found != info["sha256"]:
        raise WeightsChecksumError(
            f"feature network: {weights} has SHA-256 {found}, but {os.path.basename(manifest)} "
            f"expects {info['sha256']}: the file is damaged or was replaced, so FIDs computed "
            "with it would not compare with anyone else's. Reinstall minigen, or ship new "
            "weights with `minigen train classifier --ship` (which rewrites the manifest)")
    return info


def load_feature_network(weights=None, manifest=None, device="cpu"):
    """The ConvClassifier in ``weights`` (default: the shipped one), in eval mode on
    ``device``, after its SHA-256 check against ``manifest``."""
    from .classifier import load_classifier
    verify_weights(weights, manifest)
    return load_classifier(weights or WEIGHTS, device=device)


_LOADED = {}


def feature_network(device="cpu"):
    """The shipped network on ``device``, loaded (and checked) once per process."""
    device = backend.check_device(device)
    if device not in _LOADED:
        _LOADED[device] = load_feature_network(device=device)
    return _LOADED[device]


def shipped_sha256():
    """The SHA-256 the manifest records (names caches of features computed with it)."""
    return read_manifest()["sha256"]


def check_images(images, where="images"):
    """``images`` as a float32 array (N, 784): accepts (N, 784), (N, 28, 28) or (N, 1, 28, 28)
    with finite pixel values in [0, 1]; anything else is a ValueError that says what it got."""
    xp = backend.get_array_module(images)
    x = xp.asarray(images)
    n_pixels = int(np.prod(IMAGE_SHAPE))
    if x.ndim < 2 or int(np.prod(x.shape[1:])) != n_pixels or x.shape[0] < 1 \
            or x.shape[1:] not in ((n_pixels,), (28, 28), IMAGE_SHAPE):
        raise ValueError(f"{where}: expected 28x28 grey images as (N, 784), (N, 28, 28) or "
                         f"(N, 1, 28, 28), got shape {tuple(x.shape)}")
    if x.dtype.kind not in "fiub":
        raise ValueError(f"{where}: expected numbers, got dtype {x.dtype}")
    x = x.reshape(len(x), n_pixels).astype(np.float32, copy=False)
    if not bool(xp.isfinite(x).all()):
        raise ValueError(f"{where}: contains NaN or infinity")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        hint = " (bytes 0..255? divide by 255)" if hi > 1.0 and hi <= 255.0 else \
            " (a tanh output in [-1, 1]? map it with (x + 1) / 2)" if lo >= -1.0 else ""
        raise ValueError(f"{where}: pixel values must lie in [0, 1], found [{lo:.4g}, {hi:.4g}]"
                         f"{hint}")
    return x


def embed(images, model=None, batch_size=500, progress=None):
    """(features (N, 128) float32, class probabilities p(y|x) (N, 10) float64) of ``images``.

    Runs the shipped network (or ``model``) in eval mode, in batches, on the device of
    ``images`` (NumPy -> CPU, CuPy -> GPU); results are arrays of that device.
    ``progress``: a description to show a progress bar with.
    """
    from ..autograd import no_grad
    from ..runs import progress as progress_bar
    from ..tensor import Tensor
    x = check_images(images)
    xp = backend.get_array_module(x)
    model = model or feature_network(backend.device_of(x))
    starts = range(0, len(x), batch_size)
    if progress:
        starts = progress_bar(starts, total=len(starts), desc=progress)
    feats, probs = [], []
    was_training = model.training
    model.eval()  # batch norm on its running statistics, no dropout
    try:
        with no_grad():
            for s in starts:
                f = model.features(Tensor(x[s:s + batch_size]))
                logits = model.head(f).data.astype(xp.float64)  # the head, as forward() has it
                feats.append(f.data)
                probs.append(Tensor(logits).softmax(dim=1).data)
    finally:
        model.train(was_training)
    return xp.concatenate(feats), xp.concatenate(probs)
