"""The adversarial autoencoder (Makhzani, Shlens, Jaitly, Goodfellow & Frey 2015, "Adversarial
Autoencoders"; seed 001 "GAN + VAE", seed 003 "Состязательный Автокодировщик").

A *deterministic* autoencoder z = enc(x), x^ = dec(z) whose codes are pushed towards a chosen
prior p(z) by a GAN played on the code, not on the images:

    q(z) = E_x [delta(z - enc(x))]          the aggregated posterior: the codes of the data
    D(z) -> a logit: "z was drawn from p(z)" (positive) or "z is the code of some x" (negative)

Training alternates two phases on every mini-batch (Makhzani et al., section 2):

    1. reconstruction phase   encoder + decoder descend   -log p(x | dec(enc(x)))
    2. regularisation phase   D descends                  BCE(D(z ~ p), 1) + BCE(D(enc(x)), 0)
                              the encoder (= generator)   BCE(D(enc(x)), 1)    (non-saturating)

so the encoder is trained by two losses, each with its own optimizer (its own learning rate),
and D never sees an image. When D cannot tell the codes from prior samples, q(z) = p(z): any
z drawn from the prior decodes to a plausible image, and the decoder is a generative model.
The losses are the GAN family's (``gan.losses``): D's is ``minimax_d_loss``, the encoder's
``ns_g_loss``; which parameters each step may move is the GAN steps' rule (``gan.training``):
D's step encodes under ``no_grad``, the encoder's step runs D ``frozen``.

Priors (``GaussianPrior``, ``CircleMixturePrior``): N(0, I), and the paper's figure 4 prior,
a mixture of 10 two-dimensional Gaussians on a circle, each stretched along its radius.

Labels in the regularisation (``labels=``):

* ``"none"``: the unsupervised AAE above.
* ``"independent"`` -- seed 003's variant ("подавать метку на Дискриминатор"): D also sees a
  label. Negatives are (enc(x), label of x); positives are prior samples paired with labels
  drawn *independently* of them. D wins whenever the code says something about the label, so
  the encoder learns codes independent of the class: the code carries style only, and the
  decoder, which gets the label beside the code, supplies the class (Makhzani et al.,
  section 5, "disentangling style and content", with the independence enforced by D).
* ``"component"`` -- Makhzani et al., section 2.3 ("incorporating label information"): the
  positives of class k are drawn from mixture component k, so each class owns its component
  and the position inside a component is the style; the decoder gets the code alone.
"""
import math

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..backend import get_array_module
from ..tensor import Tensor, randint, randn
from .gan.losses import minimax_d_loss, ns_g_loss
from .gan.nets import MLPDiscriminator, MLPGenerator
from .gan.training import frozen
from .vae import bernoulli_log_prob

LABELS = ("none", "independent", "component")
PRIORS = ("gaussian", "mixture")


# ============================================================== priors
class GaussianPrior:
    """p(z) = N(0, I) in ``dim`` dimensions. ``transform(eps)`` is eps itself."""

    name, components = "gaussian", 1

    def __init__(self, dim):
        self.dim = dim

    def transform(self, eps, components=None):
        """Prior samples from standard normal noise ``eps`` (n, dim): z = eps."""
        return eps

    def log_density(self, z):
        """log p(z) for the rows of a NumPy array z (n, dim)."""
        z = np.asarray(z, dtype=np.float64)
        return -0.5 * (self.dim * math.log(2 * math.pi) + (z * z).sum(axis=1))

    def extent(self):
        """A square (lo, hi) holding nearly all of the prior's mass (for the figures)."""
        return (-3.5, 3.5)


class CircleMixturePrior:
    """The mixture of ``k`` 2-D Gaussians on a circle of Makhzani et al.'s figure 4:

        p(z) = 1/k sum_j N(z; m_j, S_j),   m_j = r (cos a_j, sin a_j),   a_j = 2 pi j / k
        S_j = U_j diag(s_r^2, s_t^2) U_j^T,   U_j = [radial, tangential] unit vectors at a_j

    each component a "petal" stretched along its radius (s_r > s_t). A sample of component j
    from noise eps ~ N(0, I_2) is z = m_j + eps_1 s_r u_j + eps_2 s_t v_j: eps is the position
    inside the component (the "style" of the labelled AAE), j the component.
    """

    name, dim = "mixture", 2

    def __init__(self, components=10, radius=2.0, radial_std=0.5, tangential_std=0.1):
        self.components = components
        self.radius, self.radial_std, self.tangential_std = radius, radial_std, tangential_std
        angles = 2 * np.pi * np.arange(components) / components
        self.radial = np.stack([np.cos(angles), np.sin(angles)], axis=1)        # u_j (k, 2)
        self.tangential = np.stack([-np.sin(angles), np.cos(angles)], axis=1)   # v_j (k, 2)

    def transform(self, eps, components):
        """Samples z (n, 2) of the components ``components`` (n,) from noise ``eps`` (n, 2);
        NumPy or CuPy arrays, in eps's dtype."""
        xp = get_array_module(eps)
        c = xp.asarray(components)
        u = xp.asarray(self.radial, dtype=eps.dtype)[c]
        v = xp.asarray(self.tangential, dtype=eps.dtype)[c]
        return (self.radius + self.radial_std * eps[:, :1]) * u + \
            (self.tangential_std * eps[:, 1:]) * v

    def log_density(self, z):
        """log p(z) for the rows of a NumPy array z (n, 2): the log-mean of the k densities."""
        z = np.asarray(z, dtype=np.float64)
        d = z[:, None, :] - self.radius * self.radial[None]                  # (n, k, 2)
        a = (d * self.radial[None]).sum(-1) / self.radial_std                # radial, in stds
        b = (d * self.tangential[None]).sum(-1) / self.tangential_std
        log_n = -0.5 * (a * a + b * b) - math.log(2 * math.pi * self.radial_std *
                                                  self.tangential_std)
        top = log_n.max(axis=1, keepdims=True)
        return (top + np.log(np.exp(log_n - top).mean(axis=1, keepdims=True)))[:, 0]

    def extent(self):
        r = self.radius + 3 * self.radial_std
        return (-r, r)


def build_prior(name, dim):
    if name == "gaussian":
        return GaussianPrior(dim)
    if name == "mixture":
        if dim != 2:
            raise ValueError(f"the mixture prior lives in 2 dimensions, got latent {dim}")
        return CircleMixturePrior()
    raise ValueError(f"prior must be one of {PRIORS}, got {name!r}")


def draw_positives(prior, n, labels, num_classes, device="cpu", dtype=None):
    """D's positives, drawn from minigen's generator: (z (n, dim) Tensor, their labels or None).

    ``labels`` "none": z ~ p(z), no label. "independent": z ~ p(z) and a label ~ U{0..C-1}
    drawn apart from it. "component": a label k ~ U{0..C-1}, then z from mixture component k.
    """
    eps = randn(n, prior.dim, device=device, dtype=dtype).data
    if labels == "component":
        y = randint(0, num_classes, (n,), device=device).data
        return Tensor(prior.transform(eps, y)), y
    components = randint(0, prior.components, (n,), device=device).data \
        if prior.components > 1 else None
    z = Tensor(prior.transform(eps, components))
    if labels == "independent":
        return z, randint(0, num_classes, (n,), device=device).data
    return z, None


# ============================================================== networks
class AdversarialAutoencoder(nn.Module):
    """Encoder x (N, D) -> [Linear -> ReLU] x 2 -> Linear -> z (N, latent): deterministic.
    Decoder z (+ one-hot y) -> [Linear -> ReLU] x 2 -> Linear -> Bernoulli logits (N, D).

    ``num_classes > 0`` gives the decoder the label (the "independent" variant: the code holds
    the style, the label the class). The decoder is ``gan.MLPGenerator`` without its tanh: a
    decoder *is* a generator of images from codes."""

    def __init__(self, in_features=784, hidden=512, latent=2, num_classes=0):
        super().__init__()
        self.in_features, self.latent, self.num_classes = in_features, latent, num_classes
        self.encoder = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(),
                                     nn.Linear(hidden, hidden), nn.ReLU(),
                                     nn.Linear(hidden, latent))
        self.decoder = MLPGenerator(latent, in_features, (hidden, hidden), num_classes,
                                    tanh=False)

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z, y=None):
        """Bernoulli logits of the pixels; sigmoid of them is the mean image."""
        return self.decoder(z, y if self.num_classes else None)

    def forward(self, x, y=None):
        return self.decode(self.encode(x), y)


def build_aae(config):
    """(autoencoder, discriminator) from a plain config dict (as stored in checkpoints):
    ``in_features``, ``hidden``, ``latent``, ``d_hidden``, ``labels``, ``num_classes``."""
    labels, classes = config.get("labels", "none"), config.get("num_classes", 10)
    if labels not in LABELS:
        raise ValueError(f"labels must be one of {LABELS}, got {labels!r}")
    ae = AdversarialAutoencoder(config["in_features"], config["hidden"], config["latent"],
                                classes if labels == "independent" else 0)
    D = MLPDiscriminator(config["latent"], (config["d_hidden"],) * 2,
                         classes if labels != "none" else 0)
    return ae, D


# ============================================================== losses
def reconstruction_loss(logits, x):
    """-log p(x | z) with Bernoulli pixels, summed over pixels, averaged over the batch (nats
    per image): the binary cross entropy of the decoder's logits against x."""
    return -bernoulli_log_prob(logits, x).mean()


# ============================================================== the two phases
def reconstruction_step(ae, opt_ae, x, y=None):
    """Phase 1: one step of ``opt_ae`` (over encoder and decoder) on the reconstruction error.
    D plays no part. Returns {"recon": loss}."""
    loss = reconstruction_loss(ae(x, y), x)
    opt_ae.zero_grad()
    loss.backward()
    opt_ae.step()
    return {"recon": loss}


def discriminator_step(ae, D, opt_D, x, prior_z, prior_labels=None, code_labels=None):
    """Phase 2a: D learns to tell prior samples from codes. The codes are computed under
    ``no_grad``: the graph ends at them, so only D's parameters get gradients."""
    with no_grad():
        codes = ae.encode(x)
    # prior samples are "real", codes "fake"; with labels each side keeps its own:
    # positives (z_p, y_p), negatives (enc(x), label of x)
    prior_scores, code_scores = D(prior_z, prior_labels), D(codes, code_labels)
    loss = minimax_d_loss(prior_scores, code_scores)   # BCE(D(z_p), 1) + BCE(D(enc(x)), 0)
    opt_D.zero_grad()
    loss.backward()
    opt_D.step()
    with no_grad():  # the numbers shown during training: D's verdicts before its step
        return {"d_loss": loss, "d_prior": prior_scores.sigmoid().mean(),
                "d_code": code_scores.sigmoid().mean()}


def encoder_step(ae, D, opt_G, x, code_labels=None):
    """Phase 2b: the encoder, as the generator, moves its codes to where D says "prior". D is
    ``frozen``; ``opt_G`` holds the encoder's parameters only (the decoder is not in the
    graph: it gets no gradient either)."""
    with frozen(D):
        loss = ns_g_loss(D(ae.encode(x), code_labels))     # BCE(D(enc(x)), 1)
        opt_G.zero_grad()
        loss.backward()
        opt_G.step()
    return {"g_loss": loss}


def train_step(ae, D, opt_ae, opt_D, opt_G, prior, x, y=None, labels="none", num_classes=10):
    """One mini-batch of Makhzani et al.'s algorithm: the reconstruction phase, then the
    regularisation phase (D, then the encoder). ``y``: the batch's labels (needed unless
    ``labels`` is "none"). Returns the step's numbers as scalar Tensors."""
    if labels != "none" and y is None:
        raise ValueError(f"labels={labels!r} needs the batch's labels y")
    y_x = None if labels == "none" else y
    out = reconstruction_step(ae, opt_ae, x, y if labels == "independent" else None)
    prior_z, prior_y = draw_positives(prior, x.shape[0], labels, num_classes, x.device, x.dtype)
    out.update(discriminator_step(ae, D, opt_D, x, prior_z, prior_y, y_x))
    out.update(encoder_step(ae, D, opt_G, x, y_x))
    return out
