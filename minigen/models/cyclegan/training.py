"""CycleGAN's losses and its training step, in the order of the reference code.

Two domains X and Y, no pairs. Two translators, G: X -> Y and F: Y -> X, and two
discriminators, D_Y (real y or G(x)?) and D_X (real x or F(y)?). The full objective (Zhu et
al. 2017, eq. 3, with the identity term of section 5.2):

    L(G, F, D_X, D_Y) = L_GAN(G, D_Y) + L_GAN(F, D_X)                  adversarial, LSGAN
                      + lambda      (|F(G(x)) - x|_1 + |G(F(y)) - y|_1)    cycle consistency
                      + lambda_idt  (|G(y) - y|_1    + |F(x) - x|_1)       identity

with lambda = 10 and lambda_idt = 0.5 lambda. The adversarial terms are least squares
(section 4, "Training details"; Mao et al. 2017; ``minigen.models.gan.lsgan_*_loss`` with
the 0-1 coding): a generator minimises E (D(G(x)) - 1)^2, a discriminator
(E (D(y) - 1)^2 + E D(G(x))^2) / 2 -- halved, "which slows down the rate at which D learns
relative to G". Every score is a patch's (PatchGAN), so the means run over patches too.

Why the cycle: an adversarial loss alone only asks G(X) to look like Y as a whole; any
mapping onto Y would do, including one that forgets x. Asking F(G(x)) = x makes G keep what
identifies x. The identity term asks G to leave an image that is already in Y alone (it
keeps tones and proportions that the other losses do not pin down).

The step (the reference code's ``optimize_parameters``):

1. G and F together, with D_X and D_Y frozen: one forward of all six translations, one
   backward of the whole generator loss, one Adam step over G's and F's parameters.
   Both adversarial terms go back *through* the frozen discriminators into G and F; the
   cycle term x -> G -> F -> x trains both translators.
2. D_X and D_Y, from the fakes of step 1 (made before G and F moved), drawn through the
   image pools: they are arrays, constants to D's loss -- no gradient can reach G or F.
"""
from dataclasses import dataclass

from ...autograd import no_grad
from ...nn import functional as F_
from ...tensor import Tensor
from ..gan.losses import lsgan_d_loss, lsgan_g_loss
from ..gan.training import frozen

NETS = ("G", "F", "D_X", "D_Y")


@dataclass
class Weights:
    """lambda (cycle) and the identity weight as a fraction of it (the paper: 10 and 0.5)."""

    cycle: float = 10.0
    identity: float = 0.5


def cycle_loss(reconstructed, original):
    """|F(G(x)) - x|_1, the mean absolute difference per pixel (eq. 2 of the paper)."""
    return F_.l1_loss(reconstructed, original)


def identity_loss(kept, original):
    """|G(y) - y|_1: a translator shown an image of its own target domain should return it."""
    return F_.l1_loss(kept, original)


def generator_losses(nets, x, y, weights):
    """Every term of the generators' objective on a batch x (domain X) and y (domain Y).

    Returns (total, parts, fakes): ``parts`` the scalar Tensors by name, ``fakes`` the
    translations G(x) and F(y) as arrays for the discriminators (step 2)."""
    G, F, D_X, D_Y = (nets[k] for k in NETS)
    fake_y, fake_x = G(x), F(y)
    parts = {
        "adv_G": lsgan_g_loss(D_Y(fake_y), c=1.0),         # G wants D_Y to say "real"
        "adv_F": lsgan_g_loss(D_X(fake_x), c=1.0),
        "cycle_X": cycle_loss(F(fake_y), x),               # x -> G -> F -> x
        "cycle_Y": cycle_loss(G(fake_x), y),               # y -> F -> G -> y
    }
    total = parts["adv_G"] + parts["adv_F"] + weights.cycle * (parts["cycle_X"] + parts["cycle_Y"])
    if weights.identity > 0:
        parts["identity_G"] = identity_loss(G(y), y)
        parts["identity_F"] = identity_loss(F(x), x)
        total = total + (weights.cycle * weights.identity) * (parts["identity_G"] +
                                                              parts["identity_F"])
    return total, parts, {"fake_y": fake_y.data, "fake_x": fake_x.data}


def generator_step(nets, opt_G, x, y, weights):
    """Step 1: G and F descend their loss; D_X and D_Y are frozen (no gradient, no change).
    Returns (numbers: dict of scalar Tensors incl. ``g_loss``, fakes: dict of arrays)."""
    with frozen(nets["D_X"]), frozen(nets["D_Y"]):
        total, parts, fakes = generator_losses(nets, x, y, weights)
        opt_G.zero_grad()
        total.backward()   # through the frozen discriminators into G and F only
        opt_G.step()
    return {"g_loss": total, **parts}, fakes


def discriminator_losses(nets, x, y, fake_x, fake_y):
    """(E (D(real) - 1)^2 + E D(fake)^2) / 2 for D_X and D_Y; ``fake_x``, ``fake_y`` are
    arrays (from the pools): constants here."""
    real_x_scores, real_y_scores = nets["D_X"](x), nets["D_Y"](y)
    d_x = 0.5 * lsgan_d_loss(real_x_scores, nets["D_X"](Tensor(fake_x)), a=0.0, b=1.0)
    d_y = 0.5 * lsgan_d_loss(real_y_scores, nets["D_Y"](Tensor(fake_y)), a=0.0, b=1.0)
    return {"d_X": d_x, "d_Y": d_y}


def discriminator_step(nets, opt_D, x, y, fake_x, fake_y):
    """Step 2: D_X and D_Y descend their losses (one Adam step over both)."""
    parts = discriminator_losses(nets, x, y, fake_x, fake_y)
    opt_D.zero_grad()
    (parts["d_X"] + parts["d_Y"]).backward()
    opt_D.step()
    with no_grad():
        return {"d_loss": parts["d_X"] + parts["d_Y"], **parts}


def cyclegan_step(nets, opt_G, opt_D, pools, x, y, weights):
    """One training iteration: the generators' step, then the discriminators' on pooled
    fakes. ``pools`` = {"fake_x": ImagePool, "fake_y": ImagePool}. Returns the numbers of
    both steps (scalar Tensors; read them with ``.item()``)."""
    g_numbers, fakes = generator_step(nets, opt_G, x, y, weights)
    fake_x = pools["fake_x"].query(fakes["fake_x"])
    fake_y = pools["fake_y"].query(fakes["fake_y"])
    d_numbers = discriminator_step(nets, opt_D, x, y, fake_x, fake_y)
    return {**g_numbers, **d_numbers}


def lr_factor(epoch, constant_epochs, decay_epochs):
    """The paper's schedule (section 4), the factor on the learning rate in ``epoch``
    (0-based): 1 for ``constant_epochs`` (paper: 100), then falling linearly towards 0 over
    ``decay_epochs`` (paper: 100): 1 - max(0, epoch + 1 - constant) / (decay + 1)."""
    return 1.0 - max(0, epoch + 1 - constant_epochs) / float(decay_epochs + 1)
