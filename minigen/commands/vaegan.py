"""VAE-GAN (Larsen et al. 2016; seed 001): a convolutional VAE whose reconstruction error is
measured in a DCGAN discriminator's feature space, on Fashion-MNIST / MNIST.

    minigen train vae --conv --epochs 5 --out runs/vae-conv     # the pixel VAE of the same size
    minigen train vaegan --vae runs/vae-conv                     # ... set beside it in the figures
    minigen train vaegan --gamma 0.1 --gan-loss minimax    # the paper's decoder loss as written
    minigen train vaegan --out runs/vaegan --epochs 10 --resume  # continue a stopped run exactly
    minigen eval runs/vae-conv runs/vaegan                       # FID etc. with the same features
    minigen sample runs/vaegan -n 64 --out samples.png

The encoder and decoder are ``ConvVAE``'s (the networks of ``minigen train vae --conv``), the
discriminator is ``train gan``'s DCGAN one; Dis_l is its last hidden layer (after the second
convolution, batch norm and LeakyReLU). Every step is Larsen et al.'s Algorithm 1
(``minigen.models.vaegan.train_step``): encoder on L_prior + L_llike, decoder on gamma L_llike
+ GAN term, discriminator on -L_GAN, each with its own optimizer. Optimizers: Adam(2e-4, betas
0.5 / 0.999) for all three, the DCGAN setting of ``train gan`` (Larsen et al. used RMSProp;
the two networks' game is the same, and the GAN family's Adam setting is the one measured
here).

Each epoch ends with a line on the terminal, a record in metrics.json/.csv (the losses, and on
the test set the pixel MSE of the reconstruction through the posterior mean and the KL), an
atomic checkpoint and the figures: samples from a fixed z, reconstructions, the losses and
Dis's verdicts on data, reconstructions and samples; with ``--vae RUN``, the same test images
reconstructed by the pixel VAE and by the VAE-GAN side by side, and samples of both from the
same z.
"""

import numpy as np

import minigen as mg

from ..options import below_one, nonnegative, positive
from ..runs import CLIError, Run, check_finite_loss, resolve_checkpoint
from . import _state
from .gan import _eval_rng

DATASETS = ("fashion-mnist", "mnist")
RESUME_KEYS = ("dataset", "image_shape", "hidden", "latent", "width", "d_norm", "gamma",
               "gan_loss", "margin", "lr", "betas", "batch_size", "subset")
FIGURES = ("samples.png", "reconstructions.png", "loss_curves.png", "d_outputs.png",
           "vae_terms.png")
FIGURES_COMPARE = ("vae_vs_vaegan.png",)


def add_arguments(p):
    p.add_argument("--dataset", default="fashion-mnist", choices=DATASETS,
                   help="training data (default fashion-mnist)")
    p.add_argument("--epochs", type=int, default=5, help="total epochs (default 5)")
    p.add_argument("--latent", type=int, default=20, help="latent dimension (default 20)")
    p.add_argument("--hidden", type=int, default=256,
                   help="ConvVAE's hidden units (default 256, as train vae --conv)")
    p.add_argument("--width", type=int, default=32,
                   help="discriminator base channels (default 32, as train gan)")
    p.add_argument("--d-norm", default="batch", choices=("batch", "layer", "none"),
                   help="normalisation in the discriminator (default batch)")
    p.add_argument("--gamma", type=nonnegative, default=1e-2,
                   help="weight of L_llike against the GAN term in the decoder's loss "
                        "(default 0.01)")
    p.add_argument("--gan-loss", default="ns", choices=("ns", "minimax"),
                   help="decoder's GAN term: ns (non-saturating, default) or minimax "
                        "(-L_GAN as in Larsen et al.'s Algorithm 1)")
    p.add_argument("--margin", type=nonnegative, default=0.0,
                   help="balance the game as Larsen et al.'s reference code does: skip Dis's "
                        "update while its BCE costs are below 0.68 - margin, the decoder's "
                        "while above 0.68 + margin (e.g. 0.35; default 0: off, every network "
                        "updates every step as in Algorithm 1)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=positive, default=2e-4,
                   help="Adam's learning rate of all three networks (default 2e-4)")
    p.add_argument("--betas", type=below_one, nargs=2, default=None,
                   metavar=("B1", "B2"), help="Adam's betas (default 0.5 0.999)")
    p.add_argument("--vae", default=None, metavar="RUN",
                   help="a trained VAE run (minigen train vae --conv) to set beside the VAE-GAN "
                        "in vae_vs_vaegan.png")
    _state.add_run_arguments(p, "vaegan")


def config_from_args(args, image_shape):
    return {"dataset": args.dataset, "image_shape": list(image_shape),
            "hidden": args.hidden, "latent": args.latent, "width": args.width,
            "d_norm": args.d_norm, "gamma": args.gamma, "gan_loss": args.gan_loss,
            "margin": args.margin, "lr": args.lr, "betas": list(args.betas or (0.5, 0.999)), "batch_size": args.batch_size,
            "subset": args.subset, "seed": args.seed}


def optimizers(vae, dis, config):
    """One optimizer per network: each descends its own loss (Algorithm 1)."""
    from ..optim import Adam
    betas = tuple(config["betas"])
    return (Adam(vae.encoder_parameters(), lr=config["lr"], betas=betas),
            Adam(vae.decoder_parameters(), lr=config["lr"], betas=betas),
            Adam(dis.parameters(), lr=config["lr"], betas=betas))


def load_baseline(path, image_shape, latent):
    """The pixel VAE of a ``minigen train vae`` run, for the comparison figure, or a CLIError.
    Checked before training starts: its images and latent size must be the VAE-GAN's (the
    figure decodes the same z with both decoders)."""
    from ..serialization import load
    from .vae import model_from_checkpoint
    state = load(resolve_checkpoint(path))
    model, config = model_from_checkpoint(state, path)
    if tuple(config["image_shape"]) != tuple(image_shape) or config.get("num_classes"):
        raise CLIError(f"--vae {path}: an unconditional VAE of {tuple(image_shape)} images is "
                       f"needed, this one has image_shape {tuple(config['image_shape'])}"
                       f"{' and is conditional' if config.get('num_classes') else ''}")
    if config["latent"] != latent:
        raise CLIError(f"--vae {path}: its latent size is {config['latent']}, the VAE-GAN's "
                       f"{latent} (the figure decodes the same z with both); pass --latent "
                       f"{config['latent']} or train the VAE with --latent {latent}")
    return model.eval()


# ============================================================== training
def train(args):
    from ..data import DataLoader
    from ..models.vaegan import build_vaegan
    from .vae import load_data
    run = Run(args.out, resume=args.resume)
    x, y, xt, yt, classes, image_shape = load_data(args.dataset, args.subset)
    config = config_from_args(args, image_shape)
    baseline = load_baseline(args.vae, image_shape, config["latent"]) if args.vae else None
    _state.check_batch(len(x), config["batch_size"])
    mg.manual_seed(args.seed)
    vae, dis = build_vaegan(config)
    device = _state.to_device(args.device, vae, dis, *([baseline] if baseline else []))
    opt_enc, opt_dec, opt_dis = optimizers(vae, dis, config)
    # equal batches: batch norm in Dis always normalises 3 x batch-size images
    loader = DataLoader((x, y), batch_size=config["batch_size"], shuffle=True, drop_last=True,
                        seed=args.seed)
    modules = {"vae": vae, "dis": dis}
    opts = {"opt_enc": opt_enc, "opt_dec": opt_dec, "opt_dis": opt_dis}
    begun = _state.start_or_resume(
        run, args, "vaegan", config, RESUME_KEYS, loader, modules, opts,
        f"VAE-GAN (ConvVAE, z in R^{config['latent']}; DCGAN discriminator width "
        f"{config['width']}; gamma {config['gamma']:g}, {config['gan_loss']} GAN term) on "
        f"{config['dataset']}: {args.epochs} epochs of {len(loader)} steps")
    if begun is None:
        return
    first, steps, trace = begun

    def epoch(n):
        nonlocal steps
        from ..models.vaegan import train_step
        vae.train()
        dis.train()
        tr, steps = _state.train_batches(
            loader, lambda xb, _, __: train_step(vae, dis, opt_enc, opt_dec, opt_dis, xb.to(device),
                                             config["gamma"], config["gan_loss"],
                                             margin=config.get("margin") or None),
            trace, steps, n, f"epoch {n}/{args.epochs}",
            {"KL": ("prior", "{:.1f}"), "llike": ("llike", "{:.0f}"), "D": ("gan_d", "{:.3f}"),
             "G": ("gan_g", "{:.3f}")})
        te = evaluate(vae, xt, device)
        check_finite_loss(te["test_mse"], n, name="test reconstruction error")
        return {**tr, **te}

    _state.run_epochs(
        run, args, first, epoch,
        lambda n: _state.checkpoint_state("vaegan", config, n, run, loader, modules, opts,
                                          trace, steps=steps),
        lambda: draw_figures(vae, run, xt, config, trace, baseline, seed=args.seed,
                             device=device),
        lambda r: _epoch_line(r, args.epochs))


def _epoch_line(r, epochs):
    return (f"epoch {r['epoch']}/{epochs}  KL {r['train_prior']:.2f}  Dis_l llike "
            f"{r['train_llike']:.1f}  D loss {r['train_gan_d']:.3f}  G loss {r['train_gan_g']:.3f}"
            f"  D(x) {r['train_d_real']:.3f}  D(x~) {r['train_d_recon']:.3f}  D(x_p) "
            f"{r['train_d_prior']:.3f}  test MSE {r['test_mse']:.4f}, KL {r['test_kl']:.2f}  "
            f"[{r['seconds']:.1f} s]")


def evaluate(vae, xt, device, batch_size=1000):
    """Test pixel MSE of Dec(mu(x)) (per pixel) and KL(q(z|x) || p(z)) (nats per image)."""
    from ..models.vae import kl_standard_normal
    from ..models.vaegan import reconstruction_mse
    mse = kl = 0.0
    with mg.no_grad():
        for s in range(0, len(xt), batch_size):
            xb = mg.tensor(xt[s:s + batch_size], device=device)
            mse += reconstruction_mse(vae, xb).item() * len(xb)
            kl += kl_standard_normal(*vae.encode(xb)).sum().item()
    return {"test_mse": mse / len(xt), "test_kl": kl / len(xt)}


# ============================================================== figures
def _decode(vae, z, device):
    with mg.no_grad():
        return vae.mean_image(vae.decode(mg.tensor(np.asarray(z, np.float32), device=device))) \
            .numpy()


def _reconstruct(vae, x, device):
    """Dec(mu(x)): the reconstruction through the posterior mean, as a NumPy array."""
    with mg.no_grad():
        mu, _ = vae.encode(mg.tensor(x, device=device))
        return vae.mean_image(vae.decode(mu)).numpy()


def draw_figures(vae, run, xt, config, trace, baseline=None, seed=0, device="cpu"):
    """Write every figure of the run; returns the file names written."""
    from .. import viz
    shape = tuple(config["image_shape"])
    written = []

    def out(name):
        written.append(name)
        return run.path(name)

    gen = _eval_rng(seed, 3)  # the same z every epoch (and for the baseline)
    z = gen.standard_normal((64, config["latent"]), dtype=np.float32)
    viz.save_image_grid(_decode(vae, z, device), out("samples.png"), nrow=8, image_shape=shape,
                        title="VAE-GAN samples Dec(z), z ~ N(0, I), from a fixed z")
    x32 = xt[:32]
    viz.save_reconstructions(x32, _reconstruct(vae, x32, device), out("reconstructions.png"),
                             image_shape=shape)
    step = trace.get("step", [])
    viz.save_step_curves(step, {"Dis: -L_GAN": trace.get("gan_d", []),
                                "decoder: GAN term": trace.get("gan_g", [])},
                         out("loss_curves.png"), xlabel="step",
                         title="VAE-GAN: the GAN losses (faint: raw, bold: moving average)")
    viz.save_step_curves(step, {"Dis(x), data": trace.get("d_real", []),
                                "Dis(x~), reconstructions": trace.get("d_recon", []),
                                "Dis(x_p), samples": trace.get("d_prior", [])},
                         out("d_outputs.png"), xlabel="step", ylabel="probability 'real'",
                         title="what Dis says about data, reconstructions and samples")
    viz.save_curves({"L_prior = KL(q(z|x) || p(z))": run.series("train_prior"),
                     "L_llike (Dis_l feature space)": run.series("train_llike"),
                     "test KL": run.series("test_kl")}, out("vae_terms.png"),
                    ylabel="nats per image", logy=True, title="the encoder's two terms")
    if baseline is not None:
        _comparison(vae, baseline, xt[:10], z[:10], shape, device, out("vae_vs_vaegan.png"))
    return written


def _comparison(vae, baseline, x, z, shape, device, path):
    """Rows: test images, the pixel VAE's reconstructions, the VAE-GAN's; then samples of both
    from the same z."""
    from .. import viz
    rows = [x, _reconstruct(baseline, x, device), _reconstruct(vae, x, device),
            _decode(baseline, z, device), _decode(vae, z, device)]
    viz.save_labelled_rows(np.concatenate(rows), len(x), path, image_shape=shape,
                           row_labels=["test image", "VAE recon.", "VAE-GAN recon.",
                                       "VAE sample", "VAE-GAN sample"],
                           title="the pixel VAE and the VAE-GAN: reconstructions of the same "
                                 "test images (through the posterior mean), samples of the "
                                 "same z")


# ============================================================== the sampling contract
def _model(state, where="checkpoint"):
    from ..models.vaegan import build_vaegan
    (vae, _), config = _state.rebuild(state, "vaegan", where, build_vaegan, ("vae", "dis"))
    return vae.eval(), config


def draw(state, n, seed=0, device="cpu", batch_size=1000):
    """``n`` samples Dec(z), z ~ N(0, I) (the decoder's mean images): float32 (n, D) in [0, 1].
    z comes from a generator seeded by ``seed``: minigen's stream does not move."""
    vae, config = _model(state)
    device = _state.to_device(device, vae)
    z = np.random.default_rng(seed).standard_normal((n, config["latent"]), dtype=np.float32)
    if n == 0:
        return np.zeros((0, int(np.prod(config["image_shape"]))), np.float32)
    return np.concatenate([_decode(vae, z[s:s + batch_size], device)
                           for s in range(0, n, batch_size)]).astype(np.float32)


image_shape = _state.image_shape  # (C, H, W) of the decoded images (the sampling contract)


def sample(args, state):
    """``minigen sample RUN -n N --out FILE.png``: a grid of samples (see ``draw``)."""
    _state.sample_grid(args, state, draw)
