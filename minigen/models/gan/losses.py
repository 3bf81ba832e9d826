"""The GAN family's losses, one small function each, every one a quantity to *minimise*.

All of them take the discriminator's raw output -- logits for the logistic GANs, scores for
the critics -- so no sigmoid is ever rounded to 0 or 1 before a log is taken.

    loss        discriminator / critic (minimised)            generator (minimised)
    minimax     -[E log D(x) + E log(1 - D(G(z)))]             E log(1 - D(G(z)))       (saturating)
    ns          (the same)                                     -E log D(G(z))
    wgan        E f(G(z)) - E f(x)        (+ weight clipping)  -E f(G(z))
    wgan-gp     E f(G(z)) - E f(x) + lambda E (|grad f(x^)| - 1)^2       -E f(G(z))
    lsgan       E (D(x) - b)^2 + E (D(G(z)) - a)^2             E (D(G(z)) - c)^2
    hinge       E max(0, 1 - D(x)) + E max(0, 1 + D(G(z)))     -E D(G(z))

Sources: seed 000, slides "Минимаксная игра", "Поочередное обучение" and "Более хорошее
поочередное обучение" (Goodfellow et al. 2014, eq. 1 and section 3); slides "Wasserstein
loss" and "WGAN-GP" (Arjovsky et al. 2017, Algorithm 1; Gulrajani et al. 2017, eq. 3 and
Algorithm 1); slide "LSGAN" (Mao et al. 2017, eq. 8-10); hinge: Lim & Ye 2017, Miyato et
al. 2018 (eq. 16-17).

With D = sigmoid(l) for a logit l, the logs are softplus functions, which never overflow:

    log D = log sigmoid(l) = -softplus(-l),     log(1 - D) = log sigmoid(-l) = -softplus(l)

and the binary cross entropy on logits, BCE(l, t) = -[t log D + (1 - t) log(1 - D)], is the
fused, stable op that computes them (``minigen.nn.functional.binary_cross_entropy_with_logits``).
"""
from ...autograd import grad
from ...nn import functional as F
from ...tensor import full_like, rand, zeros_like


# ------------------------------------------------------------------ the logistic GAN
def minimax_d_loss(real_logits, fake_logits, real_label=1.0):
    """The discriminator's loss: minus the value function V(D, G) of the minimax game,

        -[E_x log D(x) + E_z log(1 - D(G(z)))]  =  E BCE(l_real, 1) + E BCE(l_fake, 0)

    (seed 000, "Минимаксная игра"; Goodfellow et al. 2014, eq. 1). D ascends V: it
    minimises this. ``real_label`` < 1 is one-sided label smoothing (Salimans et al. 2016,
    section 3.4): the real target becomes e.g. 0.9, the fake target stays 0, so D is not
    rewarded for ever more confident "real" verdicts but G's samples are not pulled towards
    the fakes' side either.
    """
    real = F.binary_cross_entropy_with_logits(real_logits, full_like(real_logits, real_label))
    fake = F.binary_cross_entropy_with_logits(fake_logits, zeros_like(fake_logits))
    return real + fake


def minimax_g_loss(fake_logits):
    """The generator's side of the minimax game, E_z log(1 - D(G(z))) = -E softplus(l_fake)
    (seed 000, "Поочередное обучение", step 2).

    It *saturates*: when D rejects the fakes confidently (l << 0, early in training), its
    gradient sigmoid(l) is ~0 and G learns nothing. Kept to show that failure."""
    return -F.binary_cross_entropy_with_logits(fake_logits, zeros_like(fake_logits))


def ns_g_loss(fake_logits):
    """The non-saturating generator loss, -E_z log D(G(z)) = E softplus(-l_fake) (seed 000,
    "Более хорошее поочередное обучение"; Goodfellow et al. 2014, section 3): the same fixed
    point as the minimax game, but a gradient 1 - sigmoid(l) ~ 1 exactly where G is worst."""
    return F.binary_cross_entropy_with_logits(fake_logits, full_like(fake_logits, 1.0))


# ------------------------------------------------------------------ Wasserstein GAN
def wasserstein_d_loss(real_scores, fake_scores):
    """The critic's loss, E f(G(z)) - E f(x): minus the Kantorovich-Rubinstein estimate of
    the Wasserstein-1 distance, W = sup_{|f|_L <= 1} E f(x) - E f(G(z)) (seed 000, "Расстояние
    Вассерштейна", "Wasserstein loss"; Arjovsky et al. 2017, eq. 3). The supremum is only
    over 1-Lipschitz f: weight clipping (WGAN, ``minigen.optim.clamp_weights_``) or the
    gradient penalty (WGAN-GP, ``gradient_penalty``) keeps the critic near that set.
    ``-wasserstein_d_loss`` is the running estimate of W shown during training."""
    return fake_scores.mean() - real_scores.mean()


def wasserstein_g_loss(fake_scores):
    """The generator's loss, -E f(G(z)): G moves its samples up the critic's slope."""
    return -fake_scores.mean()


def gradient_penalty(critic, real, fake, alpha=None, weight=10.0, labels=None):
    """WGAN-GP's penalty, lambda E_x^ (||grad_x^ f(x^)||_2 - 1)^2 (seed 000, "WGAN-GP";
    Gulrajani et al. 2017, eq. 3 and Algorithm 1, lines 6-7), on random interpolates

        x^ = alpha x + (1 - alpha) x~,   alpha ~ U[0, 1], one per example,

    between real samples x and generated ones x~. The optimal critic has gradient norm 1
    almost everywhere on the lines between the two distributions; the penalty asks for that.

    The gradient grad_x^ f(x^) is built with ``create_graph=True``: it is itself a function
    of the critic's weights, and the penalty's own gradient (the critic's update) must
    differentiate through it -- a double backward. Without create_graph the penalty would
    be a constant to the optimizer, and the critic would never be penalised.

    ``critic(x)`` (or ``critic(x, labels)``) returns one score per example; ``real`` and
    ``fake`` are (N, ...) batches; ``alpha`` (N, 1, ...) fixes the interpolation weights
    (drawn from minigen's generator when None). x^ is a fresh leaf: the penalty constrains
    the critic, not the generator.
    """
    n = real.shape[0]
    if alpha is None:
        alpha = rand(n, *([1] * (real.ndim - 1)), dtype=real.dtype, device=real.device)
    x_hat = (alpha * real + (1 - alpha) * fake).detach().requires_grad_(True)
    scores = critic(x_hat) if labels is None else critic(x_hat, labels)
    (g,) = grad(scores.sum(), x_hat, create_graph=True)  # per-example gradients: rows don't mix
    norm = (g * g).reshape(n, -1).sum(dim=1).sqrt()      # ||grad||_2 of each example
    return weight * ((norm - 1) ** 2).mean()


# ------------------------------------------------------------------ least squares GAN
# (a, b, c) of seed 000's slide "LSGAN" (Mao et al. 2017, eq. 9 and 10)
LSGAN_PEARSON = (-1.0, 1.0, 0.0)  # b - c = 1, b - a = 2: minimises the Pearson chi^2 divergence
LSGAN_BINARY = (0.0, 1.0, 1.0)    # the 0-1 coding: G wants its samples called "real"


def lsgan_d_loss(real_scores, fake_scores, a=0.0, b=1.0):
    """E (D(x) - b)^2 + E (D(G(z)) - a)^2: D regresses reals to b and fakes to a (seed 000,
    "LSGAN", step 1). Mao et al. write a factor 1/2 in front; it only rescales the loss
    (and Adam's steps do not depend on the scale), so the seed's form is used. A sample far
    on the correct side of the boundary is still penalised, which keeps gradients alive."""
    return ((real_scores - b) ** 2).mean() + ((fake_scores - a) ** 2).mean()


def lsgan_g_loss(fake_scores, c=1.0):
    """E (D(G(z)) - c)^2: G wants D to output c for its samples (seed 000, "LSGAN", step 2)."""
    return ((fake_scores - c) ** 2).mean()


# ------------------------------------------------------------------ hinge loss
def hinge_d_loss(real_scores, fake_scores):
    """E max(0, 1 - D(x)) + E max(0, 1 + D(G(z))): a margin classifier; examples beyond the
    margin (D(x) > 1, D(G(z)) < -1) contribute nothing (Lim & Ye 2017; Miyato et al. 2018)."""
    return (1 - real_scores).relu().mean() + (1 + fake_scores).relu().mean()


def hinge_g_loss(fake_scores):
    """-E D(G(z)): the same generator loss as WGAN's."""
    return wasserstein_g_loss(fake_scores)
