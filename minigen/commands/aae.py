"""AAE: the adversarial autoencoder (Makhzani et al. 2015) on Fashion-MNIST / MNIST.

    minigen train aae                                   # 2-D code, N(0, I) prior
    minigen train aae --prior mixture --out runs/aae-mix          # 10 Gaussians on a circle
    minigen train aae --prior mixture --labels independent   # seed 003: the code keeps the style
    minigen train aae --prior mixture --labels component          # each class its own component
    minigen train aae --out runs/aae --epochs 20 --resume         # continue a stopped run exactly
    minigen sample runs/aae -n 100 --out samples.png              # decoded prior samples

Every mini-batch runs the paper's two phases (``minigen.models.aae``): the reconstruction
phase (encoder + decoder, Adam lr 1e-3, betas 0.9 / 0.999: a plain regression problem, the
VAE's settings) and the regularisation phase (D, then the encoder as generator, each with its
own Adam at lr 2e-4, betas 0.5 / 0.999: a GAN game, so the DCGAN settings of ``train gan``,
whose smaller step and short momentum keep the game from oscillating). Makhzani et al. used
SGD with momentum 0.9 and a ten times larger rate for the regularisation than for the
reconstruction, over thousands of epochs; Adam gets there in a few.

Each epoch ends with a line on the terminal, a record in metrics.json/.csv (train and test
reconstruction error, and how well the test codes fit the prior: the kernel two-sample
statistic MMD^2 between the codes and prior samples, beside its floor, the same statistic
between two prior samples; the label accuracy of a 10-nearest-neighbour classifier on the
codes; D's accuracy), an atomic checkpoint and the figures: the 2-D code of the test set over
the prior's density, the plane of codes decoded, samples, reconstructions, for the labelled
variants the style held fixed across classes, and the loss curves.
"""

import numpy as np

import minigen as mg

from ..options import below_one, positive
from ..runs import CLIError, Run, check_finite_loss
from . import _state
from .gan import _eval_rng

DATASETS = ("fashion-mnist", "mnist")
LABELS = ("none", "independent", "component")
# settings a resumed run must share with its checkpoint (all but how long to train)
RESUME_KEYS = ("dataset", "image_shape", "hidden", "d_hidden", "latent", "prior", "labels",
               "num_classes", "lr", "reg_lr", "reg_betas", "batch_size", "subset")
FIGURES = ("samples.png", "reconstructions.png", "loss_curves.png", "d_outputs.png",
           "recon_curves.png")
FIGURES_2D = ("codes.png", "prior_grid.png")
FIGURES_LABELLED = ("style.png",)
FIT_SAMPLES = 2000  # test codes and prior samples compared by MMD^2


def add_arguments(p):
    p.add_argument("--dataset", default="fashion-mnist", choices=DATASETS,
                   help="training data (default fashion-mnist)")
    p.add_argument("--prior", default="gaussian", choices=("gaussian", "mixture"),
                   help="p(z): N(0, I) (default) or mixture: 10 Gaussians on a circle (2-D)")
    p.add_argument("--labels", default="none", choices=LABELS,
                   help="none: the unsupervised AAE (default); independent: D sees (code, "
                        "label), positives pair prior samples with independent labels, the "
                        "decoder gets the label (seed 003: the code keeps the style); "
                        "component: class k's positives come from mixture component k")
    p.add_argument("--epochs", type=int, default=10, help="total epochs (default 10)")
    p.add_argument("--latent", type=int, default=2, help="code dimension (default 2)")
    p.add_argument("--hidden", type=int, default=1000,
                   help="units of each of the 2 hidden layers of encoder and decoder "
                        "(default 1000, the paper's)")
    p.add_argument("--d-hidden", type=int, default=1000,
                   help="units of each of D's 2 hidden layers (default 1000)")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--lr", type=positive, default=1e-3,
                   help="reconstruction phase: Adam's learning rate (default 1e-3)")
    p.add_argument("--reg-lr", type=positive, default=2e-4,
                   help="regularisation phase: Adam's learning rate for D and for the encoder "
                        "as generator (default 2e-4)")
    p.add_argument("--reg-betas", type=below_one, nargs=2, default=None,
                   metavar=("B1", "B2"), help="regularisation phase: Adam's betas "
                                              "(default 0.5 0.999)")
    _state.add_run_arguments(p, "aae")


def config_from_args(args, image_shape, classes):
    if args.prior == "mixture" and args.latent != 2:
        raise CLIError(f"--prior mixture lives in 2 dimensions: use --latent 2, "
                       f"not {args.latent}")
    if args.labels == "component" and args.prior != "mixture":
        raise CLIError("--labels component gives each class a component of the mixture: "
                       "use --prior mixture")
    return {"dataset": args.dataset, "image_shape": list(image_shape),
            "in_features": int(np.prod(image_shape)), "hidden": args.hidden,
            "d_hidden": args.d_hidden, "latent": args.latent, "prior": args.prior,
            "labels": args.labels, "num_classes": len(classes), "lr": args.lr,
            "reg_lr": args.reg_lr, "reg_betas": list(args.reg_betas or (0.5, 0.999)),
            "batch_size": args.batch_size, "subset": args.subset, "seed": args.seed}


def optimizers(ae, D, config):
    """One optimizer per phase and network: the encoder is in two of them (each phase moves
    it with its own learning rate and its own Adam moments)."""
    from ..optim import Adam
    betas = tuple(config["reg_betas"])
    return (Adam(ae.parameters(), lr=config["lr"]),
            Adam(D.parameters(), lr=config["reg_lr"], betas=betas),
            Adam(ae.encoder.parameters(), lr=config["reg_lr"], betas=betas))


def _prior(config):
    from ..models.aae import build_prior
    return build_prior(config["prior"], config["latent"])


# ============================================================== training
def train(args):
    from ..data import DataLoader
    from ..models.aae import build_aae
    from .vae import load_data
    run = Run(args.out, resume=args.resume)
    x, y, xt, yt, classes, image_shape = load_data(args.dataset, args.subset)
    config = config_from_args(args, image_shape, classes)
    _state.check_batch(len(x), config["batch_size"])
    mg.manual_seed(args.seed)
    ae, D = build_aae(config)
    device = _state.to_device(args.device, ae, D)
    opt_ae, opt_D, opt_G = optimizers(ae, D, config)
    # equal batches: D sees as many codes as prior samples at every step
    loader = DataLoader((x, y), batch_size=config["batch_size"], shuffle=True, drop_last=True,
                        seed=args.seed)
    modules = {"ae": ae, "D": D}
    opts = {"opt_ae": opt_ae, "opt_D": opt_D, "opt_G": opt_G}
    begun = _state.start_or_resume(
        run, args, "aae", config, RESUME_KEYS, loader, modules, opts,
        f"adversarial autoencoder, code in R^{config['latent']}, {config['prior']} prior"
        f"{'' if config['labels'] == 'none' else ', labels ' + config['labels']}, on "
        f"{config['dataset']}: {args.epochs} epochs of {len(loader)} steps")
    if begun is None:
        return
    first, steps, trace = begun
    prior = _prior(config)

    def epoch(n):
        nonlocal steps
        from ..models.aae import train_step
        ae.train()
        D.train()
        tr, steps = _state.train_batches(
            loader, lambda xb, yb, _: train_step(ae, D, opt_ae, opt_D, opt_G, prior, xb.to(device),
                                              yb, config["labels"], config["num_classes"]),
            trace, steps, n, f"epoch {n}/{args.epochs}",
            {"recon": ("recon", "{:.1f}"), "D": ("d_loss", "{:.3f}"), "G": ("g_loss", "{:.3f}")})
        te = evaluate(ae, D, prior, xt, yt, config, seed=args.seed, device=device)
        check_finite_loss(te["test_recon"], n, name="test reconstruction error")
        return {**tr, **te}

    _state.run_epochs(
        run, args, first, epoch,
        lambda n: _state.checkpoint_state("aae", config, n, run, loader, modules, opts, trace,
                                          steps=steps),
        lambda: draw_figures(ae, D, prior, run, xt, yt, classes, config, trace, seed=args.seed,
                             device=device),
        lambda r: _epoch_line(r, args.epochs))


def _epoch_line(r, epochs):
    return (f"epoch {r['epoch']}/{epochs}  recon {r['train_recon']:.2f} (test "
            f"{r['test_recon']:.2f} nats, MSE {r['test_mse']:.4f})  D loss {r['train_d_loss']:.3f}"
            f"  G loss {r['train_g_loss']:.3f}  code vs prior: MMD^2 {r['code_mmd2']:.4f} "
            f"(floor {r['code_mmd2_floor']:.4f}), D accuracy {r['d_accuracy']:.3f}, label "
            f"from code {r['label_accuracy']:.3f}  [{r['seconds']:.1f} s]")


# ============================================================== evaluation
def _numpy_prior_samples(prior, n, gen, dtype=np.float32):
    eps = gen.standard_normal((n, prior.dim)).astype(dtype)
    return prior.transform(eps, gen.integers(0, prior.components, n)).astype(dtype)


def encode_all(ae, x, device, batch_size=1000):
    """The codes of the rows of ``x``, as a NumPy array (no graph)."""
    with mg.no_grad():
        return np.concatenate([ae.encode(mg.tensor(x[s:s + batch_size], device=device)).numpy()
                               for s in range(0, len(x), batch_size)])


def decode_all(ae, z, labels, device, batch_size=1000):
    """Mean images sigmoid(dec(z [, y])) of the codes ``z``, as a NumPy array."""
    with mg.no_grad():
        return np.concatenate([
            ae.decode(mg.tensor(np.asarray(z[s:s + batch_size], np.float32), device=device),
                      None if labels is None else labels[s:s + batch_size]).sigmoid().numpy()
            for s in range(0, len(z), batch_size)]).astype(np.float32)


def knn_accuracy(train_codes, train_labels, test_codes, test_labels, k=10):
    """Share of ``test_codes`` whose k nearest ``train_codes`` (Euclidean) vote for their label:
    how much of the label a code still carries (chance: 1 / number of classes)."""
    from ..models.distances import pairwise
    hits = 0
    for s in range(0, len(test_codes), 1000):
        d = pairwise(test_codes[s:s + 1000], train_codes)
        near = np.argpartition(d, k, axis=1)[:, :k]
        votes = np.asarray(train_labels)[near]
        predicted = np.array([np.bincount(v).argmax() for v in votes])
        hits += int((predicted == np.asarray(test_labels[s:s + 1000])).sum())
    return hits / len(test_codes)


def evaluate(ae, D, prior, xt, yt, config, seed=0, device="cpu"):
    """The test set's reconstruction error and its codes' fit to the prior.

    ``test_recon``: -log p(x | dec(enc(x))) in nats per image; ``test_mse``: per pixel.
    ``code_mmd2``: the unbiased MMD^2 (Gaussian kernel, median-heuristic bandwidth of the prior
    sample) between FIT_SAMPLES test codes and as many prior samples; ``code_mmd2_floor``: the
    same between two independent prior samples (what a perfect fit scores, +- noise).
    ``d_accuracy``: D's accuracy on those codes and samples (0.5: D is fooled).
    ``label_accuracy``: a 10-NN classifier on the codes of half the test set, scored on the
    other half.
    """
    from ..metrics.mmd import gaussian_kernel, median_bandwidth, mmd2_unbiased
    from ..models.aae import reconstruction_loss
    labels = config["labels"]
    codes = encode_all(ae, xt, device)
    recon_labels = yt if labels == "independent" else None
    with mg.no_grad():
        nll = mse = 0.0
        for s in range(0, len(xt), 1000):
            xb = mg.tensor(xt[s:s + 1000], device=device)
            logits = ae.decode(mg.tensor(codes[s:s + 1000], device=device),
                               None if recon_labels is None else recon_labels[s:s + 1000])
            nll += reconstruction_loss(logits, xb).item() * len(xb)
            mse += float(((logits.sigmoid() - xb) ** 2).mean().item()) * len(xb)
    gen = _eval_rng(seed, 1)
    n = min(FIT_SAMPLES, len(xt))
    sample_a, sample_b = (_numpy_prior_samples(prior, n, gen) for _ in range(2))
    bandwidth = median_bandwidth(sample_a)
    kernel = lambda a, b: gaussian_kernel(a, b, bandwidth)  # noqa: E731
    half = len(xt) // 2
    return {"test_recon": nll / len(xt), "test_mse": mse / len(xt),
           "code_mmd2": mmd2_unbiased(codes[:n], sample_a, kernel),
           "code_mmd2_floor": mmd2_unbiased(sample_b, sample_a, kernel),
           "mmd_bandwidth": bandwidth,
           "label_accuracy": knn_accuracy(codes[:half], yt[:half], codes[half:], yt[half:]),
           "d_accuracy": _d_accuracy(D, codes[:n], yt[:n], sample_a, gen, config, device)}


def _d_accuracy(D, codes, code_labels, prior_z, gen, config, device):
    """D's accuracy: prior samples called "prior" (logit > 0), codes called "code". With
    labels D judges pairs: codes with their images' labels, prior samples with labels drawn as
    in training (independent of them, or their component's)."""
    labels, n = config["labels"], len(codes)
    if labels == "none":
        y_code = y_prior = None
    else:
        y_code = code_labels
        y_prior = gen.integers(0, config["num_classes"], n)
        if labels == "component":  # the prior sample of class k comes from component k
            eps = gen.standard_normal((n, 2)).astype(np.float32)
            prior_z = _prior(config).transform(eps, y_prior).astype(np.float32)
    was = D.training
    D.eval()
    with mg.no_grad():
        real = D(mg.tensor(prior_z, device=device), y_prior).numpy() > 0
        fake = D(mg.tensor(codes, device=device), y_code).numpy() <= 0
    D.train(was)
    return float((real.sum() + fake.sum()) / (2 * n))


# ============================================================== figures
def draw_figures(ae, D, prior, run, xt, yt, classes, config, trace, seed=0, device="cpu"):
    """Write every figure of the run; returns the file names written."""
    from .. import viz
    shape, latent, labels = tuple(config["image_shape"]), config["latent"], config["labels"]
    written = []

    def out(name):
        written.append(name)
        return run.path(name)

    gen = _eval_rng(seed, 3)  # the same draws every epoch: the figures show learning, not noise
    k = config["num_classes"]
    # samples: decoded prior draws (independent labels: column j is class j)
    z = _numpy_prior_samples(prior, 100, gen)
    y = np.arange(100) % k if labels == "independent" else None
    viz.save_image_grid(decode_all(ae, z, y, device), out("samples.png"), nrow=10,
                        image_shape=shape, title="decoded prior samples z ~ p(z)" +
                        (" (column j: class j)" if y is not None else ""))
    # reconstructions of test images
    x32, y32 = xt[:32], (yt[:32] if labels == "independent" else None)
    viz.save_reconstructions(x32, decode_all(ae, encode_all(ae, x32, device), y32, device),
                             out("reconstructions.png"), image_shape=shape)
    # the curves
    step = trace.get("step", [])
    viz.save_step_curves(step, {"D loss": trace.get("d_loss", []),
                                "encoder (G) loss": trace.get("g_loss", [])},
                         out("loss_curves.png"), xlabel="step",
                         title="regularisation phase: losses (faint: raw, bold: moving average)")
    viz.save_step_curves(step, {"D(z ~ prior)": trace.get("d_prior", []),
                                "D(enc(x))": trace.get("d_code", [])}, out("d_outputs.png"),
                         xlabel="step", ylabel="probability 'prior'",
                         title="what D says about prior samples and codes (0.5: fooled)")
    viz.save_curves({"train": run.series("train_recon"), "test": run.series("test_recon")},
                    out("recon_curves.png"), ylabel="nats per image",
                    title="reconstruction error -log p(x | dec(enc(x)))")
    if latent == 2:
        _code_figures(ae, prior, xt, yt, classes, config, device, out)
    if labels != "none":
        _style_figure(ae, prior, xt, yt, classes, config, device, out)
    return written


def _code_figures(ae, prior, xt, yt, classes, config, device, out):
    from .. import viz
    shape = tuple(config["image_shape"])
    n = min(len(xt), 5000)
    lo, hi = prior.extent()
    ticks = np.linspace(lo, hi, 120)
    gx, gy = np.meshgrid(ticks, ticks)
    log_p = prior.log_density(np.stack([gx.ravel(), gy.ravel()], 1)).reshape(gx.shape)
    variant = {"none": "", "independent": ", labels independent of the prior (style only)",
               "component": ", class k on component k"}[config["labels"]]
    viz.save_codes_over_density(encode_all(ae, xt[:n], device), yt[:n], log_p, (lo, hi),
                                out("codes.png"), class_names=classes,
                                title=f"codes of {n} test images over the {config['prior']} "
                                      f"prior's density{variant}")
    values = np.linspace(lo, hi, 15)
    grid = np.array([[a, b] for b in values[::-1] for a in values], dtype=np.float32)
    label = np.zeros(len(grid), dtype=np.int64) if config["labels"] == "independent" else None
    viz.save_manifold(decode_all(ae, grid, label, device), values, out("prior_grid.png"),
                      image_shape=shape, title="the code plane decoded" +
                      (f" (class {classes[0]})" if label is not None else ""))


def _style_figure(ae, prior, xt, yt, classes, config, device, out):
    """The style held fixed across classes. independent: the code of a test image (its style)
    decoded with every label. component: one position inside a component (the style) placed
    in every class's component."""
    from .. import viz
    shape, k = tuple(config["image_shape"]), config["num_classes"]
    if config["labels"] == "independent":
        rows = xt[:8]
        codes = encode_all(ae, rows, device)
        z = np.repeat(codes, k, axis=0)
        images = decode_all(ae, z, np.tile(np.arange(k), len(rows)), device)
        images = images.reshape(len(rows), k, -1)
        grid = np.concatenate([rows[:, None], images], axis=1).reshape(-1, rows.shape[1])
        viz.save_labelled_rows(grid, k + 1, out("style.png"),
                               col_labels=["test image"] + list(classes[:k]),
                               row_labels=[f"style {i}" for i in range(len(rows))],
                               image_shape=shape,
                               title="each row: the code (style) of the test image on the left "
                                     "decoded with every class")
        return
    offsets = np.linspace(-2, 2, 9).astype(np.float32)       # radial position, in stds
    eps = np.stack([np.tile(offsets, k), np.zeros(k * len(offsets), np.float32)], axis=1)
    z = prior.transform(eps, np.repeat(np.arange(k), len(offsets))).astype(np.float32)
    viz.save_labelled_rows(decode_all(ae, z, None, device), len(offsets), out("style.png"),
                           col_labels=[f"{v:+.1f}" for v in offsets],
                           row_labels=list(classes[:k]), image_shape=shape,
                           xlabel="position along the component's radius (in its stds): the "
                                  "same in every row",
                           title="style held fixed across classes: row k decodes component k")


# ============================================================== the sampling contract
def _model(state, where="checkpoint"):
    from ..models.aae import build_aae
    (ae, _), config = _state.rebuild(state, "aae", where, build_aae, ("ae", "D"))
    return ae.eval(), config


def draw(state, n, seed=0, device="cpu"):
    """``n`` decoded prior samples sigmoid(dec(z)), z ~ p(z): float32 (n, D) in [0, 1]. z comes
    from a generator seeded by ``seed`` (minigen's stream does not move); with independent
    labels sample i gets class i mod C."""
    ae, config = _model(state)
    device = _state.to_device(device, ae)
    z = _numpy_prior_samples(_prior(config), n, np.random.default_rng(seed))
    labels = np.arange(n) % config["num_classes"] if config["labels"] == "independent" else None
    if n == 0:
        return np.zeros((0, config["in_features"]), np.float32)
    return decode_all(ae, z, labels, device)


image_shape = _state.image_shape  # (C, H, W) of the decoded images (the sampling contract)


def sample(args, state):
    """``minigen sample RUN -n N --out FILE.png``: a grid of samples (see ``draw``)."""
    _state.sample_grid(args, state, draw)
