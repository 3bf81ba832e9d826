"""The training step of every GAN here, in the order of the papers' algorithm boxes.

    Goodfellow et al. 2014, Algorithm 1          Gulrajani et al. 2017, Algorithm 1 (WGAN-GP)
    for each training iteration:                 while G has not converged:
        for k steps (k = n_critic):                  for t = 1, ..., n_critic:
            sample z_1..z_m, x_1..x_m                    sample x, z, alpha ~ U[0, 1]
            ascend D's gradient of V                     L = f(G(z)) - f(x) + penalty(x^)
                                                         w <- Adam(grad_w L)
        sample z_1..z_m                              sample z_1..z_m
        descend G's gradient                         theta <- Adam(grad_theta -f(G(z)))

``discriminator_step`` is one pass of the inner loop, ``generator_step`` the outer step; the
caller runs n_critic of the first, then one of the second (``minigen train gan`` does it
over a DataLoader: every batch is one critic step). WGAN (Arjovsky et al. 2017, Algorithm 1)
is the same loop with RMSprop and the critic's weights clipped after each of its steps.

Which parameters each ``backward`` may touch -- the two rules that make it a game:

* the D step must not train G: the fakes are made under ``no_grad``, so the loss's graph
  ends at them and ``backward`` reaches D's parameters only (a ``detach()`` does the same,
  after recording a graph through G for nothing);
* the G step must not train D: D's parameters are ``frozen`` (requires_grad off) while G's
  loss goes back through D to G, so ``backward`` fills G's gradients only, and only G's
  optimizer steps. (D still runs in training mode: its batch-norm statistics move, as in
  every DCGAN implementation.)
"""
import contextlib
from dataclasses import dataclass

from ...autograd import no_grad
from ...optim import clamp_weights_
from . import losses as L
from .stabilizers import add_instance_noise, feature_matching_loss

LOSSES = ("minimax", "ns", "wgan", "wgan-gp", "lsgan", "hinge")
# losses whose D outputs a logit (D(x) = sigmoid(logit) is a probability); the rest: a score
LOGISTIC = ("minimax", "ns")


@dataclass
class Recipe:
    """What a step needs to know besides the networks: the loss and its constants.

    ``loss``: one of LOSSES. ``lsgan_abc``: LSGAN's (a, b, c). ``gp_weight``: WGAN-GP's
    lambda. ``clip``: WGAN's weight-clipping bound c. ``real_label``: 1, or e.g. 0.9 for
    one-sided label smoothing (logistic losses). ``feature_matching``: G's loss is
    ``feature_matching_loss`` instead of the loss's own generator term.
    """

    loss: str = "ns"
    lsgan_abc: tuple = L.LSGAN_BINARY
    gp_weight: float = 10.0
    clip: float = 0.01
    real_label: float = 1.0
    feature_matching: bool = False

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")

    def d_loss(self, real_scores, fake_scores):
        """The discriminator's (critic's) loss, without WGAN-GP's penalty."""
        if self.loss in LOGISTIC:
            return L.minimax_d_loss(real_scores, fake_scores, self.real_label)
        if self.loss in ("wgan", "wgan-gp"):
            return L.wasserstein_d_loss(real_scores, fake_scores)
        if self.loss == "lsgan":
            a, b, _ = self.lsgan_abc
            return L.lsgan_d_loss(real_scores, fake_scores, a, b)
        return L.hinge_d_loss(real_scores, fake_scores)

    def g_loss(self, fake_scores):
        """The generator's loss given D's output on its samples."""
        if self.loss == "minimax":
            return L.minimax_g_loss(fake_scores)
        if self.loss == "ns":
            return L.ns_g_loss(fake_scores)
        if self.loss in ("wgan", "wgan-gp"):
            return L.wasserstein_g_loss(fake_scores)
        if self.loss == "lsgan":
            return L.lsgan_g_loss(fake_scores, self.lsgan_abc[2])
        return L.hinge_g_loss(fake_scores)

    def d_output(self, scores):
        """What the D(x) / D(G(z)) curves show: a probability for the logistic GANs, the raw
        score (critic value, regression output) for the others."""
        return scores.sigmoid() if self.loss in LOGISTIC else scores


@contextlib.contextmanager
def frozen(module):
    """Inside the block ``module``'s parameters do not require grad: a backward through the
    module computes no gradient for them (and costs nothing for them)."""
    params = list(module.parameters())
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad = False
    try:
        yield module
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad = flag


def discriminator_step(G, D, opt_D, real, z, recipe, labels=None, noise_std=0.0, alpha=None):
    """One critic iteration: update D on a real batch ``real`` and the fakes G(z).

    Returns a dict of scalar Tensors (read them with ``.item()``): ``d_loss`` (with the
    penalty for WGAN-GP), ``d_real`` and ``d_fake`` (mean D output, see Recipe.d_output),
    ``wasserstein`` (mean f(x) - mean f(G(z)), the critic's estimate of W for the WGANs),
    ``penalty`` (WGAN-GP). ``labels``: the CGAN's classes, used for the reals and the fakes.
    ``noise_std``: instance noise. ``alpha``: WGAN-GP's interpolation weights (drawn when None).
    """
    # 1. G only supplies data here: no graph through G, so no gradient can reach it
    with no_grad():
        fake = G(z, labels)
    # 2. (instance noise) D sees blurred reals and fakes
    real_in = add_instance_noise(real, noise_std)
    fake_in = add_instance_noise(fake, noise_std)
    # 3. D's loss on both batches (two forward passes, as in DCGAN: batch norm sees each alone)
    real_scores, fake_scores = D(real_in, labels), D(fake_in, labels)
    loss = recipe.d_loss(real_scores, fake_scores)
    out = {}
    if recipe.loss == "wgan-gp":
        out["penalty"] = L.gradient_penalty(D, real_in, fake_in, alpha, recipe.gp_weight, labels)
        loss = loss + out["penalty"]
    # 4. backward reaches D's parameters only; step D's optimizer
    opt_D.zero_grad()
    loss.backward()
    opt_D.step()
    # 5. (WGAN) clip the critic's weights to [-c, c]: a crude Lipschitz constraint
    if recipe.loss == "wgan":
        clamp_weights_(D.parameters(), recipe.clip)
    with no_grad():  # the numbers shown during training
        out.update(d_loss=loss, d_real=recipe.d_output(real_scores).mean(),
                   d_fake=recipe.d_output(fake_scores).mean(),
                   wasserstein=real_scores.mean() - fake_scores.mean())
    return out


def generator_step(G, D, opt_G, z, recipe, labels=None, noise_std=0.0, real=None):
    """One generator update on fresh noise ``z``: D is frozen, G descends its loss.

    ``real`` (a real batch) is needed only for feature matching. Returns ``{"g_loss": ...}``.
    """
    with frozen(D):
        fake_in = add_instance_noise(G(z, labels), noise_std)
        if recipe.feature_matching:
            with no_grad():  # the real features are the target, a constant
                target = D.features(add_instance_noise(real, noise_std), labels)
            loss = feature_matching_loss(target, D.features(fake_in, labels))
        else:
            loss = recipe.g_loss(D(fake_in, labels))
        opt_G.zero_grad()
        loss.backward()  # through D (frozen) into G: only G's parameters get gradients
        opt_G.step()
    return {"g_loss": loss}
