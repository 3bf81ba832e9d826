"""Domain-adversarial training (DANN): a discriminator on the features, behind a gradient
reversal layer (Ganin & Lempitsky 2015, "Unsupervised Domain Adaptation by Backpropagation";
seed 003, "Доменная адаптация").

Labelled images come from a *source* domain, unlabelled ones from a *target* domain (here:
Fashion-MNIST and a shifted copy of it, ``shift_images``). One network, three parts:

    x -> G_f (features f) -> G_y (class logits)                  trained on source labels
                         \\-> R_lambda -> G_d (domain logit)       source (0) or target (1)?

and one objective, the paper's eq. 1, a saddle point:

    E(theta_f, theta_y, theta_d) = L_y(theta_f, theta_y) - lambda L_d(theta_f, theta_d)
    (theta_f, theta_y) = argmin E,       theta_d = argmax E

G_d learns to tell the domains apart from f; G_f learns features that predict the class
*and* leave G_d guessing. The gradient reversal layer R_lambda (``F.grad_reverse``: the
identity forward, -lambda times the gradient backward) lets one ordinary backward pass of

    L_y + L_d(G_d(R_lambda(f)))                                   (the paper's section 3.2)

give theta_y and theta_d the gradients of their own losses and theta_f the gradient of
L_y - lambda L_d: the saddle point is then sought by plain SGD (their eq. 4-6).

The schedules of the paper (section 5.2.2), with p the training progress from 0 to 1:

    lambda_p = 2 / (1 + exp(-gamma p)) - 1,  gamma = 10    ``grl_lambda``: 0 at the start,
                                                           when G_d's verdicts are noise
    mu_p = mu_0 / (1 + alpha p) ** beta,     mu_0 = 0.01,  ``annealed_lr``
             alpha = 10, beta = 0.75

The network is the paper's for MNIST (its appendix): G_f = conv 5x5 (32) - ReLU - max-pool
2 - conv 5x5 (48) - ReLU - max-pool 2 (768 features for 28x28); G_y = 100 - 100 - 10
(ReLU); G_d = 100 - 1 (ReLU). No batch norm: the source and target halves of a batch go
through G_f together, and batch statistics would mix the domains.

The source-only baseline is the same network trained with lambda = 0: its features see only
the label loss (the reversed domain gradient is exactly zero), while its domain classifier
still trains on them -- and so measures how far apart the domains stay without adaptation.
"""
import math

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..backend import get_array_module
from ..nn import functional as F
from ..ops import cat
from ..tensor import Tensor

SHIFTS = ("noise", "invert", "texture", "rotate-noise")


# ============================================================== the schedules
def grl_lambda(progress, gamma=10.0, max_value=1.0):
    """lambda_p = 2 / (1 + exp(-gamma p)) - 1 (Ganin & Lempitsky 2015, section 5.2.2), scaled
    by ``max_value``: from 0 at p = 0 (the domain classifier is still random, its gradient
    noise) towards ``max_value`` at p = 1 (0.9999 of it for gamma = 10)."""
    return max_value * (2.0 / (1.0 + math.exp(-gamma * progress)) - 1.0)


def annealed_lr(progress, lr0=0.01, alpha=10.0, beta=0.75):
    """mu_p = mu_0 / (1 + alpha p) ** beta (Ganin & Lempitsky 2015, section 5.2.2): from
    mu_0 down to mu_0 / 11 ** 0.75 ~ mu_0 / 6 at the end of training."""
    return lr0 / (1.0 + alpha * progress) ** beta


# ============================================================== the target domain
def shift_images(x, kind, seed=0):
    """The target domain: a shifted copy of images ``x`` (N, 784) with pixels in [0, 1].

    * ``noise``: Gaussian noise of std 0.5 added to every pixel, clipped to [0, 1].
    * ``invert``: 1 - x. White background, dark garments: every pixel moves, the shapes stay.
    * ``texture``: |x - b| with b a smooth random background per image (a sum of a few
      random plane waves, values in [0, 1]), the blend MNIST-M uses with photo patches
      (Ganin & Lempitsky 2015, section 5.1): where the background is bright the garment is
      inverted, where it is dark it is kept.
    * ``rotate-noise``: rotated by 90 degrees and Gaussian noise (std 0.3) added, clipped.

    Deterministic given ``seed``; returns float32.
    """
    x = np.asarray(x, dtype=np.float32)
    n, d = x.shape
    side = int(round(math.sqrt(d)))
    rng = np.random.default_rng(seed)
    if kind == "invert":
        return (1.0 - x).astype(np.float32)
    if kind == "texture":
        return np.abs(x - _smooth_backgrounds(n, side, rng)).astype(np.float32)
    if kind == "noise":
        noisy = x + 0.5 * rng.standard_normal((n, d), dtype=np.float32)
        return np.clip(noisy, 0.0, 1.0).astype(np.float32)
    if kind == "rotate-noise":
        rotated = np.rot90(x.reshape(n, side, side), k=1, axes=(1, 2)).reshape(n, d)
        noisy = rotated + 0.3 * rng.standard_normal((n, d), dtype=np.float32)
        return np.clip(noisy, 0.0, 1.0).astype(np.float32)
    raise ValueError(f"shift must be one of {SHIFTS}, got {kind!r}")


def _smooth_backgrounds(n, side, rng, waves=3):
    """(n, side * side) smooth random images in [0, 1]: sums of ``waves`` plane waves of random
    direction, wavelength (1 to 3 image widths... down to half a width) and phase, rescaled
    to [lo, hi] with lo in [0, 0.3] and hi in [0.7, 1]."""
    t = np.arange(side, dtype=np.float32) / side
    yy, xx = np.meshgrid(t, t, indexing="ij")
    angle = rng.uniform(0, 2 * np.pi, (n, waves, 1, 1)).astype(np.float32)
    freq = rng.uniform(0.3, 2.0, (n, waves, 1, 1)).astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, (n, waves, 1, 1)).astype(np.float32)
    b = np.sin(2 * np.pi * freq * (np.cos(angle) * xx + np.sin(angle) * yy) + phase).sum(axis=1)
    b = b.reshape(n, -1)
    b -= b.min(axis=1, keepdims=True)
    b /= np.maximum(b.max(axis=1, keepdims=True), 1e-6)
    lo = rng.uniform(0.0, 0.3, (n, 1)).astype(np.float32)
    hi = rng.uniform(0.7, 1.0, (n, 1)).astype(np.float32)
    return lo + (hi - lo) * b


# ============================================================== the network
class DANN(nn.Module):
    """Feature extractor G_f, label predictor G_y, domain classifier G_d (module docstring).

    ``forward(x)`` gives class logits (N, num_classes) -- what the model is for at test time;
    ``features(x)`` the (N, 768) features; ``domain_logits(f, lambda_)`` G_d's logit for
    each row of f, reached through the gradient reversal layer.
    """

    def __init__(self, image_shape=(1, 28, 28), num_classes=10, channels=(32, 48), hidden=100):
        super().__init__()
        c, h, w = image_shape
        self.image_shape = tuple(image_shape)
        self.feature_extractor = nn.Sequential(
            nn.Conv2d(c, channels[0], 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(channels[0], channels[1], 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
        side_h, side_w = ((h - 4) // 2 - 4) // 2, ((w - 4) // 2 - 4) // 2
        self.num_features = channels[1] * side_h * side_w
        self.label_predictor = nn.Sequential(
            nn.Linear(self.num_features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, num_classes))
        self.domain_classifier = nn.Sequential(
            nn.Linear(self.num_features, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def features(self, x):
        """G_f(x) for images (N, C, H, W) or flat rows (N, C*H*W), Tensors or arrays."""
        x = x if isinstance(x, Tensor) else Tensor(x)
        return self.feature_extractor(x.reshape(x.shape[0], *self.image_shape))

    def forward(self, x):
        return self.label_predictor(self.features(x))

    def domain_logits(self, f, lambda_=1.0):
        """G_d(R_lambda(f)), one logit per row (> 0: "target")."""
        return self.domain_classifier(F.grad_reverse(f, lambda_)).reshape(f.shape[0])


# ============================================================== one training step
def dann_losses(model, xs, ys, xt, lambda_):
    """The pseudo-objective of one batch: source images ``xs`` with labels ``ys``, target
    images ``xt`` (no labels). Returns (total, parts): total = L_y + L_d, whose gradient is
    that of L_y - lambda L_d for G_f (through the reversal layer) and of L_d for G_d.

    L_y: cross entropy of G_y on the source half. L_d: binary cross entropy of G_d on both
    halves (source labelled 0, target 1), averaged over all 2N rows (the paper's L_d^i
    summed over the source and the target examples of the batch, per example).
    """
    n = xs.shape[0]
    f = model.features(cat([xs, xt], dim=0))   # one pass: no batch norm, the halves don't mix
    class_logits = model.label_predictor(f[:n])
    label_loss = F.cross_entropy(class_logits, ys)
    domain = model.domain_logits(f, lambda_)
    xp = get_array_module(xs.data)
    is_target = Tensor(xp.concatenate([xp.zeros(n, xs.dtype), xp.ones(xt.shape[0], xs.dtype)]))
    domain_loss = F.binary_cross_entropy_with_logits(domain, is_target)
    with no_grad():
        parts = {"label_loss": label_loss, "domain_loss": domain_loss,
                 "source_acc": (class_logits.argmax(dim=1) == ys).float().mean(),
                 "domain_acc": ((domain > 0) == (is_target > 0.5)).float().mean()}
    return label_loss + domain_loss, parts


def dann_step(model, optimizer, xs, ys, xt, lambda_):
    """One SGD step on a source batch and a target batch (the paper's eq. 4-6 by one backward
    through the reversal layer). Returns the dict of ``dann_losses`` (scalar Tensors and
    numbers; read them with ``float``/``.item()``) plus ``loss``, the total."""
    loss, parts = dann_losses(model, xs, ys, xt, lambda_)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return {"loss": loss, **parts}


# ============================================================== evaluation
def evaluate(model, xs, ys, xt, yt):
    """Accuracies on labelled source images (xs, ys) and target images (xt, yt) -- the target
    labels are used here only, to measure, never in training -- and the domain classifier's
    accuracy at telling xs from xt (0.5: the features no longer show the domain, when the
    two sets are equally large). Arrays in, floats out (in batches, no graph)."""
    from ..metrics.classifier import extract_features
    from ..tensor import tensor
    fs, ft = extract_features(model, xs), extract_features(model, xt)
    device = next(iter(model.parameters())).device
    with no_grad():
        def predicted(f):
            return model.label_predictor(tensor(f, device=device)).argmax(dim=1).numpy()

        def said_target(f):
            return model.domain_classifier(tensor(f, device=device)).numpy()[:, 0] > 0

        correct_domain = np.concatenate([~said_target(fs), said_target(ft)])
        return {"source_acc": float(np.mean(predicted(fs) == np.asarray(ys))),
                "target_acc": float(np.mean(predicted(ft) == np.asarray(yt))),
                "domain_acc": float(np.mean(correct_domain))}
