"""The categorical VAE: discrete latent variables trained through the Gumbel-softmax (Concrete)
relaxation (Jang, Gu & Poole 2017, "Categorical Reparameterization with Gumbel-Softmax";
Maddison, Mnih & Teh 2017, "The Concrete Distribution"; seed 003 "Генерация текстов").

The latent code is N categorical variables of K classes each, y = (y_1 .. y_N), y_n one-hot:

    p(y) = prod_n Cat(y_n; 1/K)                      the uniform prior
    q(y | x) = prod_n Cat(y_n; softmax(l_n(x)))      the encoder's logits l (N, K) per image
    p(x | y) = Bernoulli(sigmoid(decoder(y)))

A categorical sample has no reparameterisation: argmax is flat almost everywhere. The
Gumbel-softmax replaces the one-hot sample by its relaxation

    y_n = softmax((l_n + g_n) / tau),   g ~ Gumbel(0, 1)        (``F.gumbel_softmax``)

which is differentiable in l, a point of the simplex that tends to the exact sample
one_hot(argmax(l_n + g_n)) (the Gumbel-max trick) as the temperature tau -> 0. Training
minimises the relaxed negative ELBO of Jang et al.:

    loss = -log p(x | y~) + KL(q(y | x) || p(y)),   y~ the relaxed sample        (1)
    KL(q || U) = sum_n sum_k q_nk log(q_nk K)      exact: q is a categorical distribution  (2)

with tau annealed from 1 towards 0.5 (``temperature``). With ``hard=True`` (straight-through
Gumbel-softmax) the decoder sees the exact one-hot sample, and the gradient is the soft one's.

The relaxed reconstruction term is not the model's: it decodes points inside the simplex that
the discrete model never produces. The *test* ELBO is therefore taken of the discrete model
itself (``discrete_elbo``): y sampled exactly (Gumbel-max, i.e. hard samples) and the exact
KL (2) -- an unbiased estimate of a true lower bound on log p(x).
"""
import math

from .. import nn
from ..autograd import no_grad
from ..nn import functional as F
from .vae import bernoulli_log_prob


def temperature(step, tau0=1.0, rate=1e-4, tau_min=0.5, every=500):
    """The annealing schedule of Jang et al. (section 4.2): tau = max(tau_min, tau0 exp(-r t)),
    with t the global step rounded down to a multiple of ``every`` (tau changes every
    ``every`` steps; they used r in {1e-5, 1e-4}, every in {500, 1000}, tau_min 0.5)."""
    t = (step // every) * every
    return max(tau_min, tau0 * math.exp(-rate * t))


def kl_categorical_uniform(logits):
    """KL(q || U) per example, summed over the N variables: logits (B, N, K) ->  (B,)

        sum_n sum_k q_nk (log q_nk + log K),   q_n = softmax(l_n)                      (2)

    log q is taken by log_softmax (no log 0); 0 <= KL <= N log K."""
    log_q = F.log_softmax(logits, dim=-1)
    k = logits.shape[-1]
    return (log_q.exp() * (log_q + math.log(k))).reshape(logits.shape[0], -1).sum(dim=1)


class CategoricalVAE(nn.Module):
    """x (B, D) -> [Linear -> ReLU] x 2 -> logits (B, N, K) -> y (B, N, K) -> flat (B, N K)
    -> [Linear -> ReLU] x 2 -> Bernoulli logits (B, D). The MLP of Jang et al.'s experiment:
    hidden (512, 256) in the encoder, mirrored in the decoder."""

    def __init__(self, in_features=784, hidden=(512, 256), variables=20, classes=10):
        super().__init__()
        self.in_features, self.variables, self.classes = in_features, variables, classes
        h1, h2 = hidden
        code = variables * classes
        self.encoder = nn.Sequential(nn.Linear(in_features, h1), nn.ReLU(),
                                     nn.Linear(h1, h2), nn.ReLU(), nn.Linear(h2, code))
        self.decoder = nn.Sequential(nn.Linear(code, h2), nn.ReLU(),
                                     nn.Linear(h2, h1), nn.ReLU(), nn.Linear(h1, in_features))

    def encode(self, x):
        """The logits of q(y | x), (B, N, K)."""
        return self.encoder(x).reshape(x.shape[0], self.variables, self.classes)

    def decode(self, y):
        """Bernoulli logits of the pixels for codes y (B, N, K): one-hot, or relaxed."""
        return self.decoder(y.reshape(y.shape[0], -1))

    def forward(self, x, tau=1.0, hard=False, noise=None):
        """x -> (decoder logits, encoder logits), through a Gumbel-softmax sample of y."""
        logits = self.encode(x)
        y = F.gumbel_softmax(logits, tau=tau, hard=hard, dim=-1, noise=noise)
        return self.decode(y), logits

    def elbo_parts(self, x, tau=1.0, hard=False, noise=None):
        """The training loss (1), by its parts, averaged over the batch (nats per image):
        ``recon`` = -log p(x | y~) with the relaxed (or straight-through) sample, ``kl`` the
        exact KL (2), ``loss`` = recon + kl. ``noise``: the Gumbel noise (B, N, K), drawn
        from minigen's generator when None."""
        out, logits = self(x, tau, hard, noise)
        recon = -bernoulli_log_prob(out, x).mean()
        kl = kl_categorical_uniform(logits).mean()
        return {"loss": recon + kl, "recon": recon, "kl": kl}

    def discrete_elbo(self, x, noise=None):
        """The ELBO of the discrete model per example (B,), no graph:

            log p(x | y) - KL(q(y | x) || p(y)),   y_n = one_hot(argmax(l_n + g_n)) ~ q(y_n | x)

        one exact categorical sample per image (Gumbel-max: ``gumbel_softmax(hard=True)``'s
        forward value, which does not depend on tau) and the exact KL (2)."""
        with no_grad():
            logits = self.encode(x)
            y = F.gumbel_softmax(logits, tau=1.0, hard=True, dim=-1, noise=noise)
            return bernoulli_log_prob(self.decode(y), x) - kl_categorical_uniform(logits)


def build_catvae(config):
    """A CategoricalVAE from a plain config dict: ``in_features``, ``hidden`` (two widths),
    ``variables``, ``classes``."""
    return CategoricalVAE(config["in_features"], tuple(config["hidden"]), config["variables"],
                          config["classes"])
