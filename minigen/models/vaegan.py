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
"""
from ..autograd import grad, no_grad
from ..nn import functional as F
from ..ops import cat
from ..tensor import full_like, randn_like, zeros, zeros_like
from .gan.losses import minimax_g_loss, ns_g_loss
from .gan.nets import DCGANDiscriminator
from .gan.training import frozen
from .vae import ConvVAE, gaussian_log_prob, kl_standard_normal, reparameterize

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


def gan_value_loss(real_logits, recon_logits, prior_logits):
    """-L_GAN = -[log Dis(x) + log(1 - Dis(x~)) + log(1 - Dis(x_p))], each term a batch mean:
    the discriminator's loss, BCE(l_x, 1) + BCE(l_x~, 0) + BCE(l_p, 0) on the logits."""
    bce = F.binary_cross_entropy_with_logits
    return (bce(real_logits, full_like(real_logits, 1.0)) +
            bce(recon_logits, zeros_like(recon_logits)) +
            bce(prior_logits, zeros_like(prior_logits)))


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
    together, as in the encoder and decoder's pass). Returns (loss, logits of each batch)."""
    n = x.shape[0]
    logits = dis(cat([x, x_recon, x_prior], dim=0))
    real, recon, prior = logits[:n], logits[n:2 * n], logits[2 * n:]
    return gan_value_loss(real, recon, prior), (real, recon, prior)


def autoencoder_losses(vae, dis, x, mu, logvar, x_recon, x_prior, gamma=1.0, gan_loss="ns"):
    """The encoder's loss L_prior + L_llike and the decoder's gamma L_llike + GAN term, from one
    pass of Dis over x, x~ and x_p (Dis_l for the features, its logits for the GAN term)."""
    n = x.shape[0]
    features = dis.features(cat([x, x_recon, x_prior], dim=0))        # Dis_l, (3N, d)
    logits = dis.head(dis.minibatch(features)).reshape(3 * n)         # Dis's logits
    prior = kl_standard_normal(mu, logvar).mean()                     # L_prior
    llike = feature_nll(features[:n], features[n:2 * n])              # L_llike^Dis_l
    g_loss = decoder_gan_loss(logits[n:2 * n], logits[2 * n:], gan_loss)
    return {"encoder": prior + llike, "decoder": gamma * llike + g_loss,
            "prior": prior, "llike": llike, "gan_g": g_loss}


def _set_grads(loss, params, retain_graph):
    """params' .grad = d loss / d params, and nothing else touched."""
    for p, g in zip(params, grad(loss, params, retain_graph=retain_graph)):
        p.grad = g


def train_step(vae, dis, opt_enc, opt_dec, opt_dis, x, gamma=1.0, gan_loss="ns", eps=None,
               z_prior=None):
    """One iteration of Larsen et al.'s Algorithm 1 on a batch x (N, D) in [0, 1]: every
    network's gradient of its own loss, all taken at the same weights, then the three updates.

    ``opt_enc`` holds ``vae.encoder_parameters()``, ``opt_dec`` ``vae.decoder_parameters()``,
    ``opt_dis`` ``dis.parameters()``. ``eps`` fixes the reparameterisation noise, ``z_prior``
    the prior samples (both (N, latent); drawn from minigen's generator when None).
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
    d_loss, (real, recon, prior) = discriminator_loss(dis, x, x_recon.detach(),
                                                      x_prior.detach())
    _set_grads(d_loss, list(dis.parameters()), retain_graph=False)
    # 3. encoder and decoder, Dis frozen (its weights get no gradient from their losses); each
    #    network takes the gradient of its own loss with respect to its own parameters only
    with frozen(dis):
        losses = autoencoder_losses(vae, dis, x, mu, logvar, x_recon, x_prior, gamma, gan_loss)
        _set_grads(losses["encoder"], opt_params(opt_enc), retain_graph=True)
        _set_grads(losses["decoder"], opt_params(opt_dec), retain_graph=False)
    # 4. the three updates
    for opt in (opt_enc, opt_dec, opt_dis):
        opt.step()
    with no_grad():
        return {"prior": losses["prior"], "llike": losses["llike"], "gan_d": d_loss,
                "gan_g": losses["gan_g"], "d_real": real.sigmoid().mean(),
                "d_recon": recon.sigmoid().mean(), "d_prior": prior.sigmoid().mean()}


def opt_params(opt):
    return [p for group in opt.param_groups for p in group["params"]]


def reconstruction_mse(vae, x):
    """Pixel MSE of the reconstruction through the posterior mean, Dec(mu(x)) (no sampling),
    per pixel averaged over the batch: the yardstick both the VAE and VAE-GAN are read by."""
    mu, _ = vae.encode(x)
    return ((vae.mean_image(vae.decode(mu)) - x) ** 2).mean()

