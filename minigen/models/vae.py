"""Variational autoencoders: the MLP VAE, the convolutional VAE, the conditional VAE.

A VAE (Kingma & Welling, "Auto-Encoding Variational Bayes", 2014; seed lectures 000-002)
is a latent-variable model

    p(z) = N(0, I),        p(x | z) = decoder(z)           (Bernoulli or Gaussian pixels)

trained together with an encoder q(z | x) = N(mu(x), diag sigma^2(x)) by maximising the
evidence lower bound (ELBO) on log p(x):

    log p(x) >= ELBO(x) = E_{q(z|x)} [log p(x | z)]  -  KL(q(z | x) || p(z))       (1)
                          `---- reconstruction ---'     `-- regulariser, closed form --'

The expectation is estimated with one sample z drawn by the reparameterisation trick (2),
so the gradient flows through mu and sigma. Everything a reader wants is in this file:

* ``reparameterize``       z = mu + sigma * eps                                  (2)
* ``kl_standard_normal``   KL(N(mu, sigma^2) || N(0, I)) in closed form          (3)
* ``bernoulli_log_prob``, ``gaussian_log_prob``: the two decoders' log p(x | z)
* ``VAE.elbo_parts``       the loss, by its parts (reconstruction, KL), with beta (4)
* ``VAE.iwae_bound``       log p(x) estimated by importance sampling, in nats    (5)

Numbers are in nats per example (summed over pixels, averaged over the batch), the unit
of the literature (e.g. -log p(x) ~ 230-240 nats on Fashion-MNIST for a small MLP VAE).
"""
import math

import numpy as np

from .. import nn
from ..autograd import Function, is_grad_enabled, no_grad
from ..backend import get_array_module
from ..kernels import cuda_for
from ..nn import functional as F
from ..nn.functional import kl_normal
from ..ops import cat, logsumexp
from ..tensor import Tensor, randn, randn_like

LOG_2PI = math.log(2.0 * math.pi)


# ============================================================== the formulas
def reparameterize(mu, logvar, eps=None):
    """Draw z ~ N(mu, diag exp(logvar)) as a differentiable function of mu and logvar:

        z = mu + sigma * eps,   sigma = exp(logvar / 2),   eps ~ N(0, I)            (2)

    (Kingma & Welling 2014, eq. 10). The randomness sits in eps, which does not depend
    on the parameters, so dz/dmu = 1 and dz/dlogvar = sigma * eps / 2 are ordinary
    derivatives. Pass ``eps`` to fix the noise (tests, parity with PyTorch).
    """
    if eps is None:
        eps = randn_like(mu)
    if cuda_for(mu.data) is not None and isinstance(eps, Tensor) \
            and mu.shape == logvar.shape == eps.shape:
        return Reparameterize.apply(mu, logvar, eps)  # on the GPU: one fused pass
    sigma = (0.5 * logvar).exp()  # logvar, not sigma, is predicted: any real number is valid
    return mu + sigma * eps


class Reparameterize(Function):
    """``reparameterize`` as one op: one CUDA pass each way (kernels/elementwise.cu) for CuPy
    arrays, where ``reparameterize`` uses it; NumPy otherwise (the gradient-checking exercise
    ``reparameterize`` is this class). The composition above is its reference.

        z = mu + sigma eps:   dz/dmu = 1,   dz/dlogvar = sigma eps / 2,   dz/deps = sigma
    """

    def forward(self, mu, logvar, eps):
        cuda = cuda_for(mu)
        if cuda is not None:
            z, self.sigma = cuda.reparameterize(mu, logvar, eps)
            return z
        self.sigma = get_array_module(mu).exp(0.5 * logvar)
        return mu + self.sigma * eps

    def backward(self, g):
        mu, logvar, eps = self.inputs
        need = self.needs_input_grad
        cuda = cuda_for(g.data)
        if is_grad_enabled():  # create_graph: sigma as a function of logvar, differentiably
            sigma = (0.5 * logvar).exp()
        else:
            sigma = Tensor(self.sigma)
        if cuda is not None and not is_grad_enabled():
            g_logvar = Tensor(cuda.reparameterize_backward(g.data, eps.data, self.sigma))
        else:
            g_logvar = g * eps * sigma * 0.5
        return (g if need[0] else None, g_logvar if need[1] else None,
                g * sigma if need[2] else None)


def kl_standard_normal(mu, logvar):
    """KL(N(mu, diag sigma^2) || N(0, I)) per example, summed over the latent coordinates:

        KL = 1/2 * sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2)                   (3)

    (Kingma & Welling 2014, appendix B). Closed form: no sampling noise in this term.
    The formula itself lives in ``minigen.nn.functional.kl_normal``; here it is summed per example.
    """
    return kl_normal(mu, logvar, reduction="none").sum(dim=-1)


class MeanKL(Function):
    """``kl_standard_normal(mu, logvar).mean()``, the KL term of the loss (4), as one op each
    way instead of eight small ones (that composition is its reference). With the derivatives
    of (3), for N examples:

        KL = 1/(2N) sum_{n,j} (mu^2 + exp(logvar) - 1 - logvar)
        dKL/dmu = mu / N,   dKL/dlogvar = (exp(logvar) - 1) / (2N)

    (An MLP VAE step, batch 128, 2 threads: 0.30-0.37 ms less, the cost of the eight ops
    themselves and of their nodes in the graph, not of arithmetic on (128, 20) arrays.)
    """

    def forward(self, mu, logvar):
        self.n = mu.size // mu.shape[-1]  # examples: every dim but the latent one
        self.var = get_array_module(mu).exp(logvar)
        terms = mu * mu
        terms += self.var
        terms -= 1
        terms -= logvar
        return terms.sum() / mu.dtype.type(2 * self.n)

    def backward(self, g):
        mu, logvar = self.inputs
        need = self.needs_input_grad
        if is_grad_enabled():  # create_graph: exp(logvar) as an op, differentiable again
            return (g * mu / self.n if need[0] else None,
                    g * (logvar.exp() - 1) / (2 * self.n) if need[1] else None)
        s = g.data / self.n
        return (Tensor(mu.data * s) if need[0] else None,
                Tensor((self.var - 1) * (s / 2)) if need[1] else None)


def bernoulli_log_prob(logits, x):
    """log p(x | z) for independent Bernoulli pixels with p = sigmoid(logits), per example:

        sum_i x_i log p_i + (1 - x_i) log(1 - p_i)  =  sum_i x_i l_i - softplus(l_i)

    The right-hand form never takes log(0). Intensities x in [0, 1] are allowed, as in the
    classic PyTorch example. It is minus the binary cross entropy on logits, summed over
    pixels; that fused op (one pass over the pixels, backward sigmoid(l) - x) is used.
    The minus comes after the sum over pixels, on one number per example (the same bits as
    negating every pixel's term first, without a pass over the pixels each way).
    """
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=-1)


def bernoulli_nll(logits, x):
    """-log p(x | z) for Bernoulli pixels, summed over the pixels and averaged over the batch:
    the reconstruction term of the loss (4). It is ``-bernoulli_log_prob(logits, x).mean()``
    (up to float rounding) computed as the classic PyTorch example does, one binary cross
    entropy summed over the whole batch, divided by N (inside the op: 'batchmean'): no
    per-example sums to make and to send the gradient back through (0.45 instead of 0.55 ms,
    forward and backward, for a batch of 128 Fashion-MNIST images).
    """
    return F.binary_cross_entropy_with_logits(logits, x, reduction="batchmean")


def gaussian_log_prob(x, mean, logvar):
    """log N(x; mean, diag exp(logvar)) per example (summed over the last dimension):

        -1/2 * sum_i (log 2 pi + logvar_i + (x_i - mean_i)^2 / exp(logvar_i))
    """
    return -0.5 * (LOG_2PI + logvar + (x - mean) ** 2 / logvar.exp()).sum(dim=-1)


def standard_normal_log_prob(z):
    """log N(z; 0, I) per example: -1/2 * sum_j (log 2 pi + z_j^2)."""
    return -0.5 * (LOG_2PI + z * z).sum(dim=-1)


def one_hot(y, num_classes, like):
    """Labels (N,) -> float one-hot rows (N, num_classes), on ``like``'s device and dtype
    (``nn.functional.one_hot``, converted for the conditional VAE's inputs)."""
    labels = y if isinstance(y, Tensor) else Tensor(np.asarray(y))
    return F.one_hot(labels.long().to(like.device), num_classes).to(like.dtype)


# ============================================================== the models
class _VAE(nn.Module):
    """What every VAE here shares: the decoder likelihood, the ELBO, the IWAE bound, sampling.

    A subclass defines ``_encode(x, c)`` -> (mu, logvar) and ``_decode(z, c)`` -> decoder
    output (Bernoulli logits, or the Gaussian mean), with ``c`` the one-hot label or None.
    Inputs and outputs are flat: x is (N, D) with D = prod(image_shape).
    """

    def __init__(self, image_shape, latent, num_classes, likelihood, sigma):
        super().__init__()
        if likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"VAE: likelihood must be 'bernoulli' or 'gaussian', got {likelihood!r}")
        self.image_shape = tuple(image_shape)
        self.in_features = int(np.prod(self.image_shape))
        self.latent = latent
        self.num_classes = num_classes
        self.likelihood = likelihood
        self.sigma = sigma
        if likelihood == "gaussian" and sigma is None:
            # learned variance: one log-variance per pixel, shared by all z
            self.dec_logvar = nn.Parameter(np.zeros(self.in_features, dtype=np.float32))

    # ---------------------------------------------------------- the two halves
    # layers of q(z | x); every other parameter belongs to the decoder p(x | z). VAE-GAN
    # (models/vaegan.py) updates the two halves with different losses.
    ENCODER_LAYERS = ("conv1", "conv2", "fc1", "fc_mu", "fc_logvar")

    def encoder_parameters(self):
        """The parameters of the encoder q(z | x), in ``parameters()`` order."""
        return [p for name, p in self.named_parameters()
                if name.split(".")[0] in self.ENCODER_LAYERS]

    def decoder_parameters(self):
        """The parameters of the decoder p(x | z) (with a learned pixel variance, if any)."""
        return [p for name, p in self.named_parameters()
                if name.split(".")[0] not in self.ENCODER_LAYERS]

    # ---------------------------------------------------------- conditioning
    def _label(self, y, like):
        if not self.num_classes:
            return None
        if y is None:
            raise ValueError(f"{type(self).__name__}: this conditional VAE needs labels y")
        return one_hot(y, self.num_classes, like)

    def encode(self, x, y=None):
        """q(z | x[, y]): returns (mu, logvar), each (N, latent)."""
        return self._encode(x, self._label(y, x))

    def decode(self, z, y=None):
        """The decoder's output for z: Bernoulli logits, or the Gaussian mean; (N, D)."""
        return self._decode(z, self._label(y, z))

    def forward(self, x, y=None, eps=None):
        """x -> (decoder output, mu, logvar), with z drawn by reparameterisation."""
        mu, logvar = self.encode(x, y)
        z = reparameterize(mu, logvar, eps)
        return self.decode(z, y), mu, logvar

    # ---------------------------------------------------------- likelihood
    def _logvar(self, like):
        if self.sigma is None:
            return self.dec_logvar
        return Tensor(get_array_module(like.data).full(
            (1,), 2.0 * math.log(self.sigma), dtype=like.dtype))

    def log_likelihood(self, x, out):
        """log p(x | z) per example, from the decoder output ``out``."""
        if self.likelihood == "bernoulli":
            return bernoulli_log_prob(out, x)
        return gaussian_log_prob(x, out, self._logvar(out))

    def reconstruction_loss(self, x, out):
        """-log p(x | z) averaged over the batch: the reconstruction term of the loss (4)."""
        if self.likelihood == "bernoulli":
            return bernoulli_nll(out, x)
        return -self.log_likelihood(x, out).mean()

    def mean_image(self, out):
        """The decoder's mean E[x | z] in [0, 1] (what the figures show)."""
        return out.sigmoid() if self.likelihood == "bernoulli" else out.clamp(0.0, 1.0)

    # ---------------------------------------------------------- the loss
    def elbo_parts(self, x, y=None, beta=1.0, eps=None):
        """The negative ELBO (1) of a batch, by its parts, averaged over the batch:

            recon = -log p(x | z),  z = mu + sigma * eps    (one-sample estimate)
            kl    = KL(q(z | x) || N(0, I))                 (closed form (3))
            loss  = recon + beta * kl                       (4)

        beta = 1 is the VAE; beta > 1 is the beta-VAE (Higgins et al. 2017), which trades
        reconstruction for a more factorised latent code. Returns a dict of scalar
        Tensors; ``loss`` is the one to minimise, ``-(recon + kl)`` is the ELBO.
        """
        out, mu, logvar = self(x, y, eps)
        recon = self.reconstruction_loss(x, out)
        kl = MeanKL.apply(mu, logvar)  # kl_standard_normal(mu, logvar).mean(), one op
        # (1 * kl is kl: with beta = 1 the multiplication, an op each way, is left out)
        return {"loss": recon + (kl if beta == 1 else beta * kl), "recon": recon, "kl": kl}

    def iwae_bound(self, x, y=None, k=100, eps=None, chunk=20000):
        """Importance-sampled estimate of log p(x) per example, in nats (Burda et al. 2016):

            log p(x) >= L_k = log 1/k sum_{i=1..k} p(x | z_i) p(z_i) / q(z_i | x),
                              z_i ~ q(z | x)                                         (5)

        L_1 is the ELBO; L_k grows with k towards log p(x) (k = 5000 is the usual "true"
        log-likelihood estimate, k = 100 is close). The log-mean of k weights is taken as
        logsumexp(log w) - log k, which never overflows although each w is tiny
        (around e^-250). ``eps`` (k, N, latent) fixes the noise. No gradient is recorded.
        """
        with no_grad():
            mu, logvar = self.encode(x, y)
            n, d = mu.shape
            if eps is None:
                eps = randn(k, n, d, dtype=mu.dtype, device=mu.device)
            log_w = []
            per = max(1, chunk // max(n, 1))  # samples decoded together: bounded memory
            for start in range(0, k, per):
                e = eps[start:start + per]
                m = e.shape[0]
                z = mu + (0.5 * logvar).exp() * e                      # (m, N, latent)
                zs = z.reshape(m * n, d)
                ys = None if y is None else np.tile(_labels(y), m)
                out = self.decode(zs, ys)
                xs = x.reshape(1, n, -1).broadcast_to(m, n, x.shape[-1]).reshape(m * n, -1)
                log_px_z = self.log_likelihood(xs, out).reshape(m, n)
                log_pz = standard_normal_log_prob(z)
                log_qz = gaussian_log_prob(z, mu, logvar)
                log_w.append(log_px_z + log_pz - log_qz)               # (m, N)
            log_w = cat(log_w, dim=0)
            return logsumexp(log_w, dim=0) - math.log(k)

    # ---------------------------------------------------------- generation
    def sample(self, n=None, y=None, z=None):
        """Images from the prior: z ~ N(0, I) (or the given z), decoded to mean images (n, D)."""
        with no_grad():
            if z is None:
                z = randn(n, self.latent, device=self._device())
            return self.mean_image(self.decode(z, y))

    def _device(self):
        return next(iter(self.parameters())).device


def _labels(y):
    return np.asarray(y.numpy() if isinstance(y, Tensor) else y)


class VAE(_VAE):
    """The MLP VAE of the classic PyTorch example: 784 -> 400 -> (mu, logvar) in R^20 ->
    400 -> 784, ReLU hidden layers.

    ``likelihood``: "bernoulli" (the decoder gives logits; right for intensities in [0, 1])
    or "gaussian" (the decoder gives the mean; ``sigma`` fixes the pixel standard
    deviation, ``sigma=None`` learns one variance per pixel). ``num_classes > 0`` makes it a
    conditional VAE: the one-hot label is appended to the encoder's input and to z.
    """

    def __init__(self, in_features=784, hidden=400, latent=20, num_classes=0,
                 likelihood="bernoulli", sigma=None, image_shape=None):
        side = int(round(math.sqrt(in_features)))
        if image_shape is None:
            image_shape = (1, side, side) if side * side == in_features else (in_features,)
        super().__init__(image_shape, latent, num_classes, likelihood, sigma)
        self.hidden = hidden
        self.fc1 = nn.Linear(in_features + num_classes, hidden)
        self.fc_mu = nn.Linear(hidden, latent)
        self.fc_logvar = nn.Linear(hidden, latent)
        self.fc3 = nn.Linear(latent + num_classes, hidden)
        self.fc4 = nn.Linear(hidden, in_features)

    def _encode(self, x, c):
        h = self.fc1(x if c is None else cat([x, c], dim=1)).relu()
        return self.fc_mu(h), self.fc_logvar(h)

    def _decode(self, z, c):
        h = self.fc3(z if c is None else cat([z, c], dim=1)).relu()
        return self.fc4(h)


class ConditionalVAE(VAE):
    """The conditional VAE (Sohn et al. 2015): VAE with the label fed to encoder and decoder."""

    def __init__(self, in_features=784, hidden=400, latent=20, num_classes=10, **kwargs):
        super().__init__(in_features, hidden, latent, num_classes, **kwargs)


class ConvVAE(_VAE):
    """A convolutional VAE for (C, H, W) images with H and W divisible by 4.

    encoder: conv 4x4/2 (32) -> conv 4x4/2 (64) -> linear (hidden) -> mu, logvar
    decoder: linear (hidden) -> linear (64 x H/4 x W/4) -> deconv 4x4/2 (32) -> deconv 4x4/2 (C)
    The strided (de)convolutions halve (double) the image side, as in DCGAN. Takes and
    returns flat (N, C*H*W) arrays like ``VAE``, so the loss and the figures are shared.
    """

    def __init__(self, image_shape=(1, 28, 28), hidden=256, latent=20, num_classes=0,
                 likelihood="bernoulli", sigma=None, channels=(32, 64)):
        super().__init__(image_shape, latent, num_classes, likelihood, sigma)
        c, h, w = self.image_shape
        if h % 4 or w % 4:
            raise ValueError(f"ConvVAE: image sides must be divisible by 4, got {h}x{w}")
        c1, c2 = channels
        self.hidden = hidden
        self.feature_shape = (c2, h // 4, w // 4)
        flat = int(np.prod(self.feature_shape))
        self.conv1 = nn.Conv2d(c, c1, 4, stride=2, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 4, stride=2, padding=1)
        self.fc1 = nn.Linear(flat + num_classes, hidden)
        self.fc_mu = nn.Linear(hidden, latent)
        self.fc_logvar = nn.Linear(hidden, latent)
        self.fc3 = nn.Linear(latent + num_classes, hidden)
        self.fc4 = nn.Linear(hidden, flat)
        self.deconv1 = nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1)
        self.deconv2 = nn.ConvTranspose2d(c1, c, 4, stride=2, padding=1)

    def _encode(self, x, c):
        h = x.reshape(x.shape[0], *self.image_shape)
        h = self.conv2(self.conv1(h).relu()).relu().reshape(x.shape[0], -1)
        h = self.fc1(h if c is None else cat([h, c], dim=1)).relu()
        return self.fc_mu(h), self.fc_logvar(h)

    def _decode(self, z, c):
        h = self.fc3(z if c is None else cat([z, c], dim=1)).relu()
        h = self.fc4(h).relu().reshape(z.shape[0], *self.feature_shape)
        return self.deconv2(self.deconv1(h).relu()).reshape(z.shape[0], -1)


def build_vae(config):
    """A VAE from a plain config dict (as stored in checkpoints): keys ``conv``,
    ``image_shape``, ``hidden``, ``latent``, ``num_classes``, ``likelihood``, ``sigma``."""
    common = dict(hidden=config["hidden"], latent=config["latent"],
                  num_classes=config.get("num_classes", 0),
                  likelihood=config.get("likelihood", "bernoulli"), sigma=config.get("sigma"))
    shape = tuple(config["image_shape"])
    if config.get("conv"):
        return ConvVAE(image_shape=shape, **common)
    return VAE(in_features=int(np.prod(shape)), image_shape=shape, **common)
