"""Inception Score (Salimans et al. 2016, "Improved techniques for training GANs", sec. 4;
seed 000, "Inception score").

    IS(G) = exp( E_{x ~ p_G} D_KL( p(y | x) || p(y) ) ),     p(y) = E_{x ~ p_G} p(y | x)

A good generator makes each p(y | x) confident (low entropy: the image looks like one
class) and the marginal p(y) spread (high entropy: all classes appear), so the KL is large.
IS ranges from 1 (every image gets the same class distribution) to the number of classes
C (one-hot predictions, every class equally often). Since
E_x KL(p(y|x) || p(y)) = H(y) - E_x H(y | x) is the mutual information between image and
label, IS = exp I(x; y) <= exp H(y) <= C.

As in the paper's code, the N samples are cut into ``splits`` equal parts; each part gets
its own marginal and its own score, and the mean and standard deviation over the parts are
returned. p(y | x) comes from a classifier: Inception-v3 for ImageNet, minigen's own
Fashion-MNIST classifier here (``minigen.metrics.features``). IS never looks at real
images, so it cannot see a generator that copies the training set or draws the classes
in the wrong proportions; FID and KID can.
"""
from ..backend import get_array_module
from .divergence import kl_divergence


def inception_score(probs, splits=10):
    """(mean, std) of exp(E_x KL(p(y|x) || p(y))) over ``splits`` parts of the rows of ``probs``.

    ``probs``: (N, C) class probabilities p(y | x), one row per image (softmax outputs).
    The std is the population standard deviation over the parts (ddof 0, as in the
    reference code); with ``splits=1`` it is 0.
    """
    xp = get_array_module(probs)
    probs = xp.asarray(probs, dtype=xp.float64)
    if probs.ndim != 2 or probs.shape[0] < 1 or probs.shape[1] < 1:
        raise ValueError(f"inception_score: expected probabilities (N, C), got shape "
                         f"{tuple(probs.shape)}")
    n = probs.shape[0]
    if not 1 <= splits <= n:
        raise ValueError(f"inception_score: splits must be between 1 and the {n} rows, got {splits}")
    if not bool(xp.all(probs >= 0)) or not bool(xp.allclose(probs.sum(1), 1.0, atol=1e-4)):
        raise ValueError("inception_score: rows of probs must be probability distributions "
                         "(non-negative, summing to 1): pass softmax outputs, not logits")
    scores = []
    for k in range(splits):  # parts as in the reference code: [k N / splits, (k+1) N / splits)
        part = probs[k * n // splits:(k + 1) * n // splits]
        marginal = part.mean(axis=0)                       # p(y) over this part
        scores.append(xp.exp(kl_divergence(part, marginal[None, :]).mean()))
    scores = xp.stack(scores)
    return float(scores.mean()), float(scores.std())
