"""The thin glue between the library's code and four exercises' entry points.

Most solutions are a library Function or function as it stands (``minigen exercises
solution sigmoid`` prints ``minigen.ops.activation.Sigmoid``). Four exercises ask for an entry
point the library does not have under that shape, because the library computes the same thing
inside a bigger object; their solutions are these few lines around the library's code, which
does the mathematics (no formula is written twice):

* ``LayerNorm`` -- layer norm as one Function over the last axis: the library's ``Normalize``
  (shared by batch norm and layer norm), with the statistics taken where ``F.layer_norm``
  takes them;
* ``cd1_update`` -- one CD-1 step of ``RBM.partial_fit_batch`` with a given hidden sample;
* ``som_update`` -- one online Kohonen step of ``som_online_epoch_reference``;
* ``m_step`` -- ``GaussianMixture._m_step`` on given responsibilities.

The exercise checker uses them as the references the students' code is compared with.
"""
import numpy as np

from ..models import distances
from ..models.gmm import GaussianMixture
from ..models.rbm import RBM
from ..models.som import NEIGHBOURHOODS, som_online_epoch_reference
from ..nn.functional import Normalize, _moments


class LayerNorm(Normalize):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, the statistics over the last axis of
    x (Ba et al. 2016): the library's fused ``Normalize`` with layer norm's axes, as
    ``minigen.nn.functional.layer_norm`` calls it. Its backward is ``Normalize.backward``."""

    def forward(self, x, weight, bias, eps=1e-5):
        axes = (x.ndim - 1,)
        mean, var = _moments(x, axes)
        return super().forward(x, weight, bias, axes=axes, eps=eps, mean=mean, var=var)


class FixedUniforms:
    """A stand-in for the RBM's random generator that hands out given uniforms first: CD-1's
    hidden sample is then h0 = 1[u < P(h | v0)] for the caller's u. The RBM draws 32 random
    bits per unit and compares P with their top 24 bits / 2^24 (``rbm.random_bits``), so u
    goes out as those bits: rounded down to a multiple of 2^-24, as every float32 uniform
    is. Later draws (the visible sample, which CD-1 with visible probabilities does not
    use) are zeros."""

    def __init__(self, u):
        self.queue = [np.asarray(u, dtype=np.float64)]

    def integers(self, low, high, size, dtype):
        u = self.queue.pop(0) if self.queue else np.zeros(size)
        return np.floor(u * 2.0 ** 24).astype(dtype) << 8


def cd1_update(v0, W, a, b, u):
    """The CD-1 estimate of d mean log p(v0) / d (W, a, b) by minigen's RBM: one update of
    ``RBM.partial_fit_batch`` with learning rate 1 and no momentum, its hidden sample drawn
    with the uniforms ``u`` (N, m); returns how much W, a and b moved."""
    rbm = RBM(n_hidden=W.shape[1], k=1, momentum=0.0).initialise(v0)
    rbm.W, rbm.a, rbm.b = W.copy(), a.copy(), b.copy()
    rbm._rng = FixedUniforms(u)
    rbm.partial_fit_batch(v0, lr=1.0)
    return rbm.W - W, rbm.a - a, rbm.b - b


def som_update(W, x, positions, alpha, sigma):
    """One online Kohonen step of minigen's SOM for the sample ``x``: the codebook ``W`` (K, D)
    after ``som_online_epoch_reference`` has presented x once, with learning rate ``alpha``
    and a Gaussian neighbourhood of width ``sigma`` on the grid ``positions`` (K, 2)."""
    W = np.array(W, dtype=np.float64)
    grid_d2 = ((positions[:, None, :] - positions[None, :, :]) ** 2).sum(-1)
    som_online_epoch_reference(np.asarray(x, np.float64)[None, :], np.zeros(1, np.int64), W,
                               grid_d2, [alpha], [sigma], distances.metric_code("euclidean"),
                               NEIGHBOURHOODS.index("gaussian"))
    return W


def m_step(X, resp):
    """EM's M-step for a Gaussian mixture with full covariances, by minigen's
    ``GaussianMixture._m_step`` (no ``reg_covar``): the weights (K,), means (K, D) and
    covariances (K, D, D) that maximise the expected log-likelihood for responsibilities
    ``resp`` (N, K)."""
    gm = GaussianMixture(n_components=resp.shape[1], covariance_type="full", reg_covar=0.0)
    gm._m_step(X, resp)
    return gm.weights_, gm.means_, gm.covariances_
