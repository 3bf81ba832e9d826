"""A small convolutional classifier for 28x28 grey images: the feature network of FID.

Inception Score and FID judge generated images through a classifier: IS through its
class probabilities p(y|x), FID through its penultimate activations (the "features").
The original metrics use Inception-v3 on ImageNet; for Fashion-MNIST a small network
trained on Fashion-MNIST itself plays that role (the usual substitute for 28x28 data).

The network (about 0.4 M weights)::

    x (N, 1, 28, 28)
    conv 3x3, 1 -> 32, pad 1  - batch norm - ReLU - max-pool 2   -> (N, 32, 14, 14)
    conv 3x3, 32 -> 64, pad 1 - batch norm - ReLU - max-pool 2   -> (N, 64, 7, 7)
    flatten - linear 3136 -> 128 - ReLU                          -> features (N, 128)
    dropout - linear 128 -> 10                                   -> logits (N, 10)

Trained with Adam on cross entropy it passes 90 % test accuracy on Fashion-MNIST in a
couple of epochs (``benchmarks/bench_classifier.py`` measures it).

    from minigen.metrics import train_classifier, evaluate, save_classifier
    model, history = train_classifier(X_train, y_train, epochs=3,
                                      eval_data=(X_test, y_test))
    save_classifier(model, "classifier.npz")
"""
import time

import numpy as np

from .. import backend, nn, optim
from ..autograd import no_grad
from ..data import DataLoader
from ..nn import functional as F
from ..tensor import Tensor

FORMAT = "minigen-classifier"


def _conv_block(c_in, c_out):
    """conv 3x3 (same size) - batch norm - ReLU - max-pool 2: halves height and width.

    The convolution has no bias: batch norm subtracts the per-channel mean right after,
    which would cancel any bias (its own shift ``beta`` takes the bias's place)."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2))


class ConvClassifier(nn.Module):
    """Two conv blocks and two linear layers; ``features(x)`` is the penultimate layer.

    ``image_shape`` is (C, H, W) with H and W divisible by 4 (two poolings). Inputs may
    be images (N, C, H, W) or flat rows (N, C*H*W), as ``load_dataset`` returns them.
    """

    def __init__(self, image_shape=(1, 28, 28), num_classes=10, channels=(32, 64), hidden=128,
                 dropout=0.25):
        super().__init__()
        image_shape, channels = tuple(image_shape), tuple(channels)
        C, H, W = image_shape
        if len(channels) != 2 or H % 4 or W % 4:
            raise ValueError(f"ConvClassifier: needs two conv channel counts and an image "
                             f"height and width divisible by 4, got channels={channels}, "
                             f"image_shape={image_shape}")
        self.config = dict(image_shape=image_shape, num_classes=num_classes, channels=channels,
                           hidden=hidden, dropout=dropout)
        self.image_shape = image_shape
        self.body = nn.Sequential(
            _conv_block(C, channels[0]),
            _conv_block(channels[0], channels[1]),
            nn.Flatten(),
            nn.Linear(channels[1] * (H // 4) * (W // 4), hidden),
            nn.ReLU())
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, num_classes)

    def _images(self, x):
        x = x if isinstance(x, Tensor) else Tensor(x)
        if x.ndim == 2:  # flat rows (N, C*H*W) -> images
            x = x.reshape((x.shape[0],) + self.image_shape)
        if x.shape[1:] != self.image_shape:
            raise ValueError(f"ConvClassifier: expected images of shape (N, "
                             f"{', '.join(map(str, self.image_shape))}) or flat rows of "
                             f"{int(np.prod(self.image_shape))} pixels, got {x.shape}")
        return x

    def features(self, x):
        """The penultimate activations (N, hidden): FID compares their statistics."""
        return self.body(self._images(x))

    def forward(self, x):
        """Class scores (logits) (N, num_classes); softmax gives p(y|x) for the IS."""
        return self.head(self.dropout(self.features(x)))


# ------------------------------------------------------------------ training and evaluation
def _batches(model, X, batch_size, fn):
    """``fn(model, batch)`` over X in eval mode without a graph; results stacked as NumPy."""
    was_training = model.training
    model.eval()  # batch norm uses its running statistics, dropout is off
    try:
        with no_grad():
            out = [backend.to_numpy(fn(model, X[i:i + batch_size]).data)
                   for i in range(0, len(X), batch_size)]
    finally:
        model.train(was_training)
    return np.concatenate(out)


def predict_logits(model, X, batch_size=1000):
    """Logits (N, num_classes) for the images X (NumPy, eval mode, in batches)."""
    return _batches(model, X, batch_size, lambda m, x: m(x))


def extract_features(model, X, batch_size=1000):
    """Penultimate activations (N, hidden) for the images X (NumPy, eval mode, in batches)."""
    return _batches(model, X, batch_size, lambda m, x: m.features(x))


def evaluate(model, X, y, batch_size=1000):
    """Accuracy: the fraction of X whose highest-scoring class is the label y."""
    logits = predict_logits(model, X, batch_size)
    return float(np.mean(logits.argmax(axis=1) == np.asarray(y)))


def train_classifier(X, y, epochs=3, batch_size=128, lr=1e-3, seed=0, progress=True,
                     model=None, eval_data=None, on_epoch=None, **model_kwargs):
    """Train a ConvClassifier (or ``model``) on images X and integer labels y with Adam.

    ``seed`` fixes the weights, the batch order and the dropout masks. After each epoch
    a record {epoch, loss (mean over the epoch), train_acc (on the batches as they were
    trained, dropout on), test_acc (on ``eval_data`` = (X_test, y_test), if given),
    seconds} is appended to the history and passed to ``on_epoch``.
    Returns (model, history).
    """
    from ..runs import progress as progress_bar
    backend.manual_seed(seed)
    if model is None:
        image_shape = model_kwargs.pop("image_shape", None) or (
            X.shape[1:] if np.ndim(X) == 4 else (1, 28, 28))
        model = ConvClassifier(image_shape=image_shape, **model_kwargs)
    opt = optim.Adam(model.parameters(), lr=lr)
    loader = DataLoader((X, np.asarray(y)), batch_size=batch_size, shuffle=True, seed=seed)
    history = []
    for epoch in range(1, epochs + 1):
        model.train()
        start, total_loss, correct, seen = time.perf_counter(), 0.0, 0, 0
        bar = progress_bar(loader, total=len(loader), desc=f"epoch {epoch}/{epochs}") \
            if progress else loader
        for xb, yb in bar:
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total_loss += loss.item() * len(yb)
            correct += (logits.argmax(dim=1) == yb).sum().item()
            seen += len(yb)
        record = dict(epoch=epoch, loss=total_loss / seen, train_acc=correct / seen,
                      seconds=time.perf_counter() - start)
        if eval_data is not None:
            record["test_acc"] = evaluate(model, *eval_data)
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
    model.eval()
    return model, history


# ------------------------------------------------------------------ checkpoints
def save_classifier(model, path, **extra):
    """Write the weights and the architecture (so ``load_classifier`` can rebuild it)."""
    from ..serialization import save
    config = dict(model.config, image_shape=list(model.config["image_shape"]),
                  channels=list(model.config["channels"]))
    save({"format": FORMAT, "config": config, "model": model.state_dict(), **extra}, path)


def load_classifier(path, device="cpu"):
    """The ConvClassifier saved by ``save_classifier``, in eval mode, on ``device``."""
    from ..serialization import CheckpointError, load
    ckpt = load(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"load_classifier: {path} is not a classifier checkpoint "
                              f"(written by save_classifier)")
    model = ConvClassifier(**ckpt["config"])
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval()
