"""VAE-GAN: a VAE whose reconstruction error is measured by a GAN's discriminator (Larsen,
Sønderby, Larochelle & Winther 2016, "Autoencoding beyond pixels using a learned similarity
metric"; seed 001 "Соединяя VAE и GAN").

A pixel-wise error calls an image shifted by one pixel far from itself, and a blurred copy
close (seed 001's three images (a), (b), (c)): the VAE's reconstructions and samples come out
blurred. VAE-GAN keeps the VAE -- encoder q(z|x), decoder (= the GAN's generator) -- and adds
a discriminator Dis that judges three batches: data x, reconstructions x~ = Dec(z), z ~ q(z|x),
and samples x_p = Dec(z_p), z_p ~ N(0, I). The reconstruction error is moved into Dis's
feature space: with Dis_l(x) the activations of Dis's l-th layer (here: its last hidden layer,
``DCGANDiscriminator.features``),

    p(Dis_l(x) | z) = N(Dis_l(x) | Dis_l(x~), I)                                   (Larsen eq. 6)
    L_llike  = -E_q(z|x) log p(Dis_l(x) | z) = 1/2 |Dis_l(x) - Dis_l(x~)|^2 + d/2 log 2 pi
    L_prior  = KL(q(z | x) || N(0, I))                                   (the VAE's, closed form)
    L_GAN    = log Dis(x) + log(1 - Dis(x~)) + log(1 - Dis(x_p))                  (Larsen eq. 9)

and each network descends its own combination (Larsen et al., Algorithm 1 and section 2.2):

    encoder        L_prior + L_llike            (no GAN term: it would only distort the code)
    decoder        gamma L_llike - L_GAN        (gamma weighs reconstructing against fooling Dis)
    discriminator  -L_GAN                       (Dis ascends L_GAN)

``gan_loss="minimax"`` is that decoder loss as written; the default ``"ns"`` replaces -L_GAN by
the non-saturating -log Dis(x~) - log Dis(x_p) (seed 000, "Более хорошее поочередное
обучение"), as DCGAN-style training does: the saturating form gives the decoder no gradient
while Dis rejects its images confidently.

``train_step`` follows the GAN steps' rules (``gan.training``) for which weights a loss may
reach: Dis's loss is taken on detached x~ and x_p (its graph ends there), and while the
encoder's and decoder's losses pass through Dis, Dis is ``frozen``; then each of the two takes
``grad`` of *its own* loss with respect to *its own* parameters only, so the encoder never
sees the GAN term, and gamma weighs only the decoder's reconstruction signal. All three
gradients are taken at the same weights and the three optimizers step at the end, as in
Algorithm 1.

Dis_l for L_llike is taken from a pass of Dis over x and x~ alone, never with x_p in the batch:
with batch norm in Dis, the features of x and x~ would otherwise depend on x_p, and the decoder
could lower L_llike by blowing x_p up (``autoencoder_losses``).
``margin`` adds the reference implementation's balancing of the game (``equilibrium_updates``),
off by default.
"""
from ..autograd import grad, no_grad
from ..nn import functional as F
from ..ops import cat
from ..tensor import full_like, randn_like, tensor, zeros, zeros_like
from .gan.losses import minimax_g_loss, ns_g_loss
from .gan.nets import DCGANDiscriminator
from .gan.training import frozen
from .vae import ConvVAE, MeanKL, gaussian_log_prob, reparameterize

GAN_LOSSES = ("ns", "minimax")


def build_vaegan(config):
    """(vae, dis) from a plain config dict (as stored in checkpoints): ``image_shape``,
    ``hidden``, ``latent`` of the ``ConvVAE`` (the same networks as ``minigen train vae --conv``)
    and ``width``, ``d_norm`` of the DCGAN discriminator (weights N(0, 0.02^2))."""
    from .. import nn
    shape = tuple(config["image_shape"])
    vae = ConvVAE(image_shape=shape, hidden=config["hidden"], latent=config["latent"])
    dis = DCGANDiscriminator(shape, config["width"], norm=config.get("d_norm", "batch"))
    nn.init.dcgan_init_(dis)
    return vae, dis


# ============================================================== the losses
def feature_nll(real_features, recon_features):
    """L_llike = -log N(Dis_l(x); Dis_l(x~), I) per example, averaged over the batch:

        1/2 sum_j (f_j - f~_j)^2 + d/2 log 2 pi          (Larsen et al. eq. 6-7)

    the Gaussian log-likelihood of the VAE (``vae.gaussian_log_prob``) with unit variance,
    taken of features instead of pixels. Flattened features (N, d)."""
    unit = zeros(1, dtype=recon_features.dtype, device=recon_features.device)  # log sigma^2 = 0
    return -gaussian_log_prob(real_features, recon_features, unit).mean()


def gan_value_terms(real_logits, recon_logits, prior_logits):
    """The three terms of -L_GAN, each a batch mean: BCE(l_x, 1) = -log Dis(x),
    BCE(l_x~, 0) = -log(1 - Dis(x~)), BCE(l_p, 0) = -log(1 - Dis(x_p))."""
    bce = F.binary_cross_entropy_with_logits
    return (bce(real_logits, full_like(real_logits, 1.0)),
            bce(recon_logits, zeros_like(recon_logits)),
            bce(prior_logits, zeros_like(prior_logits)))


def gan_value_loss(real_logits, recon_logits, prior_logits):
    """-L_GAN = -[log Dis(x) + log(1 - Dis(x~)) + log(1 - Dis(x_p))], each term a batch mean:
    the discriminator's loss, BCE(l_x, 1) + BCE(l_x~, 0) + BCE(l_p, 0) on the logits."""
    real, recon, prior = gan_value_terms(real_logits, recon_logits, prior_logits)
    return real + recon + prior


def equilibrium_updates(real_cost, fake_cost, margin, equilibrium=0.68):
    """(update decoder?, update Dis?) from Dis's two BCE costs of this step, the rule of Larsen
    et al.'s reference implementation for keeping the game balanced: Dis rests while it wins
    (either cost below equilibrium - margin), the decoder rests while it wins (either cost
    above equilibrium + margin); if both would rest, both update. 0.68 ~ log 2 is the cost
    of a Dis that cannot tell. ``margin=None`` updates both always (plain Algorithm 1)."""
    if margin is None:
        return True, True
    dis = not (real_cost < equilibrium - margin or fake_cost < equilibrium - margin)
    dec = not (real_cost > equilibrium + margin or fake_cost > equilibrium + margin)
    return (dec, dis) if (dec or dis) else (True, True)


def decoder_gan_loss(recon_logits, prior_logits, gan_loss="ns"):
    """The decoder's GAN term. "minimax": -L_GAN without Dis's own term, i.e.
    log(1 - Dis(x~)) + log(1 - Dis(x_p)) (Larsen's Algorithm 1); "ns": -log Dis(x~) -
    log Dis(x_p), the non-saturating form (the GAN family's ``ns_g_loss``)."""
    if gan_loss == "ns":
        return ns_g_loss(recon_logits) + ns_g_loss(prior_logits)
    if gan_loss == "minimax":
        return minimax_g_loss(recon_logits) + minimax_g_loss(prior_logits)
    raise ValueError(f"gan_loss must be one of {GAN_LOSSES}, got {gan_loss!r}")


def discriminator_loss(dis, x, x_recon, x_prior):
    """-L_GAN for Dis: x, x~ and x_p in one batch of 3N (its batch norm sees the three kinds
    together, as in the pass for the decoder's GAN term). Returns (the three terms of -L_GAN,
    ``gan_value_terms``; the logits of each batch)."""
    n = x.shape[0]
    logits = dis(cat([x, x_recon, x_prior], dim=0))
    real, recon, prior = logits[:n], logits[n:2 * n], logits[2 * n:]
    return gan_value_terms(real, recon, prior), (real, recon, prior)


def autoencoder_losses(vae, dis, x, mu, logvar, x_recon, x_prior, gamma=1.0, gan_loss="ns"):
    """The encoder's loss L_prior + L_llike and the decoder's gamma L_llike + GAN term.

    Two passes of Dis. L_llike compares Dis_l(x) and Dis_l(x~) from a pass over x and x~ only:
    a batch-norm Dis normalises each feature with its batch's statistics, so with x_p in that
    batch L_llike would depend on x_p, and the decoder would lower it by making x_p extreme
    (a huge batch variance squeezes all normalised features, hence their differences, towards
    0) -- samples collapse to one saturated pattern that Dis rejects. The GAN term's logits
    come from a pass over x, x~ and x_p, the batch Dis itself is trained on."""
    n = x.shape[0]
    features = dis.features(cat([x, x_recon], dim=0))                 # Dis_l of x and x~, (2N, d)
    logits = dis(cat([x, x_recon, x_prior], dim=0))                   # Dis's logits, (3N,)
    prior = MeanKL.apply(mu, logvar)  # L_prior = kl_standard_normal(mu, logvar).mean(), one op
    llike = feature_nll(features[:n], features[n:])                   # L_llike^Dis_l
    g_loss = decoder_gan_loss(logits[n:2 * n], logits[2 * n:], gan_loss)
    return {"encoder": prior + llike, "decoder": gamma * llike + g_loss,
            "prior": prior, "llike": llike, "gan_g": g_loss}


def _set_grads(loss, params, retain_graph):
    """params' .grad = d loss / d params, and nothing else touched."""
    for p, g in zip(params, grad(loss, params, retain_graph=retain_graph)):
        p.grad = g


def train_step(vae, dis, opt_enc, opt_dec, opt_dis, x, gamma=1.0, gan_loss="ns", eps=None,
               z_prior=None, margin=None, equilibrium=0.68):
    """One iteration of Larsen et al.'s Algorithm 1 on a batch x (N, D) in [0, 1]: every
    network's gradient of its own loss, all taken at the same weights, then the three updates.

    ``opt_enc`` holds ``vae.encoder_parameters()``, ``opt_dec`` ``vae.decoder_parameters()``,
    ``opt_dis`` ``dis.parameters()``. ``eps`` fixes the reparameterisation noise, ``z_prior``
    the prior samples (both (N, latent); drawn from minigen's generator when None).
    ``margin`` (e.g. 0.35) turns on the reference implementation's balancing of the game
    (``equilibrium_updates``): the decoder's or Dis's update is skipped this step when Dis's
    costs say that side is winning; the encoder always updates.
    Returns the step's numbers as scalar Tensors (the losses, Dis's mean verdicts)."""
    # 1. encode, reparameterise, decode the code and a prior sample
    mu, logvar = vae.encode(x)
    z = reparameterize(mu, logvar, eps)
    if z_prior is None:
        z_prior = randn_like(mu)
    x_recon = vae.mean_image(vae.decode(z))         # x~ = Dec(z), z ~ q(z | x)
    x_prior = vae.mean_image(vae.decode(z_prior))   # x_p = Dec(z_p), z_p ~ p(z)
    # 2. Dis: -L_GAN on the three batches; x~ and x_p are detached, so the graph ends at
    #    them and the gradient reaches Dis's parameters only
    d_terms, (real, recon, prior) = discriminator_loss(dis, x, x_recon.detach(),
                                                       x_prior.detach())
    d_loss = d_terms[0] + d_terms[1] + d_terms[2]
    update_dec, update_dis = equilibrium_updates(
        d_terms[0].item(), (d_terms[1].item() + d_terms[2].item()) / 2, margin, equilibrium)
    _set_grads(d_loss, list(dis.parameters()), retain_graph=False)
    # 3. encoder and decoder, Dis frozen (its weights get no gradient from their losses); each
    #    network takes the gradient of its own loss with respect to its own parameters only
    with frozen(dis):
        losses = autoencoder_losses(vae, dis, x, mu, logvar, x_recon, x_prior, gamma, gan_loss)
        _set_grads(losses["encoder"], opt_params(opt_enc), retain_graph=True)
        _set_grads(losses["decoder"], opt_params(opt_dec), retain_graph=False)
    # 4. the updates (all three unless the game is being balanced)
    for opt, update in ((opt_enc, True), (opt_dec, update_dec), (opt_dis, update_dis)):
        if update:
            opt.step()
    with no_grad():
        return {"prior": losses["prior"], "llike": losses["llike"], "gan_d": d_loss,
                "gan_g": losses["gan_g"], "d_real": real.sigmoid().mean(),
                "d_recon": recon.sigmoid().mean(), "d_prior": prior.sigmoid().mean(),
                "dec_updated": tensor(float(update_dec)), "dis_updated": tensor(float(update_dis))}


def opt_params(opt):
    return [p for group in opt.param_groups for p in group["params"]]


def reconstruction_mse(vae, x):
    """Pixel MSE of the reconstruction through the posterior mean, Dec(mu(x)) (no sampling),
    per pixel averaged over the batch: the yardstick both the VAE and VAE-GAN are read by."""
    mu, _ = vae.encode(x)
    return ((vae.mean_image(vae.decode(mu)) - x) ** 2).mean()

