"""GAN: minimax / non-saturating GAN, WGAN, WGAN-GP, LSGAN, hinge; DCGAN or MLP; CGAN.

    minigen train gan                                      # NS-DCGAN on Fashion-MNIST
    minigen train gan --loss wgan-gp --out runs/wgan-gp    # Gulrajani et al.'s recipe
    minigen train gan --loss wgan-gp --dataset ring        # mode coverage on the ring of 8
    minigen train gan --loss minimax --dataset grid        # watch the saturating GAN collapse
    minigen train gan --conditional                        # CGAN: one sample row per class
    minigen train gan --minibatch discrimination --feature-matching --instance-noise 0.1
    minigen train gan --out runs/gan --epochs 10 --resume  # continue a stopped run exactly
    minigen sample runs/gan -n 64 --out samples.png        # or --format npy: the raw samples

Each loss comes with its paper's hyper-parameters unless overridden: Adam(2e-4, betas 0.5 /
0.999) and one D step per G step for minimax, ns, lsgan and hinge (DCGAN); RMSprop(5e-5),
clip 0.01 and 5 critic steps for wgan (Arjovsky et al.); Adam(1e-4, betas 0 / 0.9),
lambda 10, 5 critic steps and no batch norm in the critic for wgan-gp (Gulrajani et al.).

An epoch is one pass over the real data; every batch is one D (critic) step and every
n_critic-th is followed by one G step. Each epoch ends with a line on the terminal, a record
in metrics.json/.csv, an atomic checkpoint (both networks, both optimizers, the random
generator, the loader's position, the curves) and the figures: samples from a fixed z, loss
curves, D(x) and D(G(z)), latent interpolation (images) or real vs generated points over D's
contour, one panel per few epochs, with the modes captured (2-D data).
"""
import json
import math
import time

import numpy as np

import minigen as mg

from ..options import below_one, natural, nonnegative, positive
from ..runs import CLIError, Run, announce_resume, check_finite_loss, progress

IMAGE_DATASETS = ("fashion-mnist", "mnist")
TOY_DATASETS = ("ring", "grid")
DATASETS = IMAGE_DATASETS + TOY_DATASETS
LOSSES = ("minimax", "ns", "wgan", "wgan-gp", "lsgan", "hinge")
LSGAN_CODINGS = {"binary": (0.0, 1.0, 1.0), "pearson": (-1.0, 1.0, 0.0)}

# the papers' settings, per loss (DCGAN for the logistic, least-squares and hinge GANs)
DCGAN_ADAM = {"optimizer": "adam", "lr": 2e-4, "betas": [0.5, 0.999], "n_critic": 1,
              "d_norm": "batch"}
LOSS_DEFAULTS = {
    "minimax": DCGAN_ADAM, "ns": DCGAN_ADAM, "lsgan": DCGAN_ADAM, "hinge": DCGAN_ADAM,
    "wgan": {"optimizer": "rmsprop", "lr": 5e-5, "betas": None, "n_critic": 5, "d_norm": "batch"},
    "wgan-gp": {"optimizer": "adam", "lr": 1e-4, "betas": [0.0, 0.9], "n_critic": 5,
                "d_norm": "none"},
}
# per kind of data: the architecture and its size, the batch, how long to train
DATA_DEFAULTS = {
    "image": {"arch": "dcgan", "latent": 100, "width": {"dcgan": 32, "mlp": 256},
              "batch_size": 64, "epochs": 5},
    # the papers' learning rates need ~100k iterations on the 2-D sets (Gulrajani et al.'s
    # toy runs): 1e-3 gets there in minutes
    "toy": {"arch": "mlp", "latent": 16, "width": {"mlp": 128}, "batch_size": 256,
            "epochs": 50, "lr": 1e-3},
}
TOY_SIZE = 50000  # points drawn once for a toy dataset (one epoch = a pass over them)
COVERAGE_SAMPLES = 2500  # the VEEGAN / PacGAN protocol
# settings a resumed run must share with its checkpoint (all but how long to train)
RESUME_KEYS = ("dataset", "arch", "data_shape", "latent", "width", "num_classes", "d_norm",
               "minibatch", "minibatch_kernels", "loss", "lsgan_abc", "optimizer", "lr", "betas",
               "n_critic", "gp_weight", "clip", "label_smoothing", "feature_matching",
               "instance_noise", "noise_epochs", "batch_size", "subset")
FIGURES = ("samples.png", "interpolation.png", "loss_curves.png", "d_outputs.png")
FIGURES_TOY = ("evolution.png", "loss_curves.png", "d_outputs.png")


def add_arguments(p):
    p.add_argument("--dataset", default="fashion-mnist", choices=DATASETS,
                   help="training data (default fashion-mnist); ring: 8 Gaussians, grid: 25")
    p.add_argument("--loss", default="ns", choices=LOSSES,
                   help="minimax (saturating), ns (non-saturating, default), wgan, wgan-gp, "
                        "lsgan, hinge")
    p.add_argument("--arch", default=None, choices=("mlp", "dcgan"),
                   help="networks (default dcgan for images, mlp for the 2-D sets)")
    p.add_argument("--conditional", action="store_true",
                   help="CGAN: the class (or the mode of a toy mixture) is fed to G and D")
    p.add_argument("--epochs", type=int, default=None,
                   help="total epochs, passes over the real data (default 5 for images, "
                        "50 for the toy sets)")
    p.add_argument("--latent", type=int, default=None,
                   help="dimension of z (default 100 for images, 16 for the toy sets)")
    p.add_argument("--width", type=int, default=None,
                   help="network width: DCGAN base channels (default 32), MLP hidden units "
                        "(default 256 for images, 128 for the toy sets)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="batch size (default 64 for images, 256 for the toy sets)")
    g = p.add_argument_group("optimisation (defaults: the paper of each --loss)")
    g.add_argument("--lr", type=positive, default=None,
                   help="learning rate of G and D (default: the paper's; 1e-3 on the toy sets)")
    g.add_argument("--betas", type=below_one, nargs=2, default=None, metavar=("B1", "B2"),
                   help="Adam's betas")
    g.add_argument("--n-critic", type=int, default=None,
                   help="D (critic) steps per G step (default 5 for wgan / wgan-gp, else 1)")
    g.add_argument("--clip", type=positive, default=0.01,
                   help="wgan: critic weights are clipped to [-c, c] (default 0.01)")
    g.add_argument("--gp-weight", type=nonnegative, default=10.0,
                   help="wgan-gp: lambda, the penalty's weight (default 10)")
    g.add_argument("--lsgan-coding", default="binary", choices=tuple(LSGAN_CODINGS),
                   help="lsgan: (a, b, c) = (0, 1, 1) binary (default) or (-1, 1, 0) pearson")
    g.add_argument("--d-norm", default=None, choices=("batch", "layer", "none"),
                   help="normalisation in DCGAN's D (default batch; none for wgan-gp)")
    s = p.add_argument_group("stabilisers (seed 000, 'Проблемы GANов')")
    s.add_argument("--feature-matching", action="store_true",
                   help="G matches the mean features of D's last hidden layer")
    s.add_argument("--minibatch", default="none", choices=("none", "discrimination", "stddev"),
                   help="minibatch discrimination (Salimans et al.) or minibatch stddev (ProGAN)")
    s.add_argument("--minibatch-kernels", type=int, nargs=2, default=None, metavar=("B", "C"),
                   help="minibatch discrimination's B kernels of dimension C (default 16 8 for "
                        "DCGAN, 8 2 for the MLP: the cost grows as batch^2 * B * C)")
    s.add_argument("--instance-noise", type=nonnegative, default=0.0, metavar="STD",
                   help="Gaussian noise on D's inputs, annealed linearly to 0 (default 0: off)")
    s.add_argument("--noise-epochs", type=int, default=None,
                   help="epochs over which the instance noise falls to 0 (default: the "
                        "default --epochs of the data)")
    s.add_argument("--label-smoothing", type=below_one, default=0.0, metavar="S",
                   help="one-sided: D's target for real data is 1 - S (minimax / ns; e.g. 0.1)")
    p.add_argument("--figures-every", type=natural, default=1, metavar="N",
                   help="redraw the figures every N epochs and after the last (0: none): "
                        f"{', '.join(FIGURES)} (samples from a fixed z, one row per class "
                        f"with --conditional); on the 2-D sets {', '.join(FIGURES_TOY)} "
                        "(real vs generated points over D's output, one panel per few "
                        "epochs, with the modes captured)")
    p.add_argument("--subset", type=int, default=None,
                   help="use only the first N training images or points (quick trials)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/gan", help="run folder (default runs/gan)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the checkpoint in --out up to --epochs")


# ============================================================== data and settings
def load_data(name, subset=None, seed=0):
    """(x (N, D) float32, y (N,) int64, class names, data shape). Images are scaled to
    [-1, 1], the range of G's tanh output; toy points are used as they are."""
    if name in TOY_DATASETS:
        from ..data import toy
        make = toy.ring_of_gaussians if name == "ring" else toy.grid_of_gaussians
        x, y = make(TOY_SIZE, seed=seed)
        k = 8 if name == "ring" else 25
        return x[:subset], y[:subset], tuple(f"mode {i}" for i in range(k)), (2,)
    from ..data import SOURCES
    from . import load_images
    x, y, _, _ = load_images(name, subset)
    side = int(round(math.sqrt(x.shape[1])))
    return (2 * x - 1).astype(np.float32), y, tuple(SOURCES[name].classes), (1, side, side)


def config_from_args(args, classes, data_shape):
    """Every setting of the run, with the per-loss and per-data defaults filled in."""
    kind = "toy" if args.dataset in TOY_DATASETS else "image"
    data = DATA_DEFAULTS[kind]
    paper = LOSS_DEFAULTS[args.loss]
    arch = args.arch or data["arch"]
    if arch not in data["width"]:
        raise CLIError(f"--arch {arch} needs image data; {args.dataset} is 2-D points")
    if args.label_smoothing and args.loss not in ("minimax", "ns"):
        raise CLIError(f"--label-smoothing applies to the logistic losses (minimax, ns), "
                       f"not --loss {args.loss}")
    config = {
        "dataset": args.dataset, "arch": arch, "data_shape": list(data_shape),
        "latent": args.latent or data["latent"], "width": args.width or data["width"][arch],
        "num_classes": len(classes) if args.conditional else 0,
        "d_norm": args.d_norm or paper["d_norm"], "minibatch": args.minibatch,
        "minibatch_kernels": list(args.minibatch_kernels or
                                  ((16, 8) if arch == "dcgan" else (8, 2))),
        "loss": args.loss, "lsgan_abc": list(LSGAN_CODINGS[args.lsgan_coding]),
        "optimizer": paper["optimizer"], "lr": args.lr or data.get("lr", paper["lr"]),
        "betas": list(args.betas) if args.betas else paper["betas"],
        "n_critic": args.n_critic or paper["n_critic"], "gp_weight": args.gp_weight,
        "clip": args.clip, "label_smoothing": args.label_smoothing,
        "feature_matching": bool(args.feature_matching), "instance_noise": args.instance_noise,
        "noise_epochs": args.noise_epochs or data["epochs"],
        "batch_size": args.batch_size or data["batch_size"], "subset": args.subset,
        "seed": args.seed,
    }
    if config["optimizer"] == "rmsprop" and args.betas:
        raise CLIError("--betas applies to Adam; --loss wgan uses RMSprop")
    return config


def recipe_from_config(config):
    from ..models.gan import Recipe
    return Recipe(loss=config["loss"], lsgan_abc=tuple(config["lsgan_abc"]),
                  gp_weight=config["gp_weight"], clip=config["clip"],
                  real_label=1.0 - config["label_smoothing"],
                  feature_matching=config["feature_matching"])


def optimizers(G, D, config):
    from ..optim import Adam, RMSprop
    if config["optimizer"] == "rmsprop":
        return RMSprop(G.parameters(), lr=config["lr"]), RMSprop(D.parameters(), lr=config["lr"])
    betas = tuple(config["betas"])
    return (Adam(G.parameters(), lr=config["lr"], betas=betas),
            Adam(D.parameters(), lr=config["lr"], betas=betas))


def _text(value):
    """A string stored in a checkpoint (np.str_ / 0-d array / str) -> str."""
    return str(value.item() if hasattr(value, "item") else value)


def _one_line(error):
    return " ".join(str(error).split())


def generator_from_checkpoint(state, where):
    """Rebuild the generator a checkpoint describes, in evaluation mode, or a clear CLIError."""
    from ..models.gan import build_gan
    if _text(state.get("model")) != "gan":
        raise CLIError(f"{where}: checkpoint is of model {_text(state.get('model'))!r}, not 'gan'")
    rng_state = mg.get_rng_state()  # building the networks draws initial weights: undo that
    try:
        config = json.loads(_text(state["config"]))
        G, _ = build_gan(config)
        G.load_state_dict(state["G"])
    except (KeyError, ValueError, TypeError, RuntimeError) as e:
        raise CLIError(f"{where}: not a usable GAN checkpoint ({_one_line(e)})") from None
    finally:
        mg.set_rng_state(rng_state)
    return G.eval(), config


# ============================================================== training
def train(args):
    from ..data import DataLoader
    from ..models.gan import build_gan
    if args.epochs is not None and args.epochs < 1:
        raise CLIError(f"--epochs must be at least 1, got {args.epochs}")
    run = Run(args.out, resume=args.resume)
    x, y, classes, data_shape = load_data(args.dataset, args.subset, args.seed)
    config = config_from_args(args, classes, data_shape)
    epochs = args.epochs or DATA_DEFAULTS["toy" if len(data_shape) == 1 else "image"]["epochs"]
    device = mg.backend.check_device(args.device)
    if len(x) < config["batch_size"]:
        raise CLIError(f"{len(x)} training rows are fewer than one batch of "
                       f"{config['batch_size']}; lower --batch-size")
    mg.manual_seed(args.seed)
    G, D = build_gan(config)
    if device != "cpu":
        G.to(device)
        D.to(device)
    opt_G, opt_D = optimizers(G, D, config)
    # equal batches (drop_last): batch norm and the per-example penalty see the same m
    loader = DataLoader((x, y), batch_size=config["batch_size"], shuffle=True, drop_last=True,
                        seed=args.seed)
    progress_state = {"critic_steps": 0, "g_steps": 0, "trace": {}, "panels": []}

    start = 0
    if args.resume:
        start = _restore(run, G, D, opt_G, opt_D, loader, config, progress_state)
        if not announce_resume(run, start, epochs):
            return
    else:
        print(_describe(config, epochs, len(loader)))

    toy = len(data_shape) == 1
    for epoch in range(start + 1, epochs + 1):
        t0 = time.perf_counter()
        record = {"epoch": epoch, **train_epoch(G, D, opt_G, opt_D, loader, config, progress_state,
                                                device, epoch, desc=f"epoch {epoch}/{epochs}")}
        if toy:
            record.update(_coverage_record(G, config, seed=args.seed, device=device))
            progress_state["panels"].append(_toy_panel(G, D, config, epoch, args.seed, device))
        record["seconds"] = time.perf_counter() - t0
        run.log(**record)
        run.save_checkpoint(checkpoint_state(G, D, opt_G, opt_D, loader, config, epoch, run,
                                             progress_state))
        print(_epoch_line(record, epochs, config), flush=True)
        every = args.figures_every
        if every > 0 and (epoch == epochs or epoch % every == 0):
            written = draw_figures(G, D, run, x, y, classes, config, progress_state,
                                   seed=args.seed, device=device)
    if args.figures_every > 0:
        print(f"figures in {run.out}/: {', '.join(written)}")
    print(f"metrics in {run.path('metrics.json')} (and .csv); checkpoint {run.checkpoint_path}")


def _describe(config, epochs, batches):
    n_critic = config["n_critic"]
    g_steps = "one G step" if n_critic == 1 else f"a G step after every {n_critic}"
    return (f"{config['loss']} GAN, {config['arch']} (width {config['width']}, z in "
            f"R^{config['latent']}{', conditional' if config['num_classes'] else ''}) on "
            f"{config['dataset']}: {epochs} epoch{'s' if epochs > 1 else ''} of {batches} D steps, "
            f"{g_steps}; {config['optimizer']} lr {config['lr']:g}")


def train_epoch(G, D, opt_G, opt_D, loader, config, state, device, epoch=1, desc="epoch"):
    """One pass over ``loader``: a D step per batch, a G step after every n_critic of them.

    ``state`` (critic_steps, g_steps, trace) is updated in place. Returns the epoch's means
    of the numbers each generator iteration reports."""
    from ..models.gan import annealed_noise_std, discriminator_step, generator_step
    recipe = recipe_from_config(config)
    cond = config["num_classes"] > 0
    n_critic, latent = config["n_critic"], config["latent"]
    noise_horizon = config["noise_epochs"] * len(loader)  # critic steps until the noise is 0
    trace_every = max(1, len(loader) // n_critic // 100)  # ~100 points per epoch on the curves
    sums, count = {}, 0
    G.train()
    D.train()
    bar = progress(loader, total=len(loader), desc=desc)
    for step, (xb, yb) in enumerate(bar, 1):
        real = mg.tensor(xb, device=device)
        labels = yb if cond else None
        noise_std = annealed_noise_std(config["instance_noise"],
                                       state["critic_steps"] / noise_horizon)
        z = mg.randn(len(xb), latent, device=device)
        d = discriminator_step(G, D, opt_D, real, z, recipe, labels, noise_std)
        state["critic_steps"] += 1
        if state["critic_steps"] % n_critic:
            continue
        z = mg.randn(len(xb), latent, device=device)
        g = generator_step(G, D, opt_G, z, recipe, labels, noise_std, real=real)
        state["g_steps"] += 1
        # the one place where the losses become numbers; a NaN/inf stops the run here, before
        # the epoch's checkpoint is written, so the last good checkpoint stays untouched
        numbers = {key: check_finite_loss(value.item(), epoch, step, name=key)
                   for key, value in {**d, **g}.items()}
        count += 1
        for key, value in numbers.items():
            sums[key] = sums.get(key, 0.0) + value
        if state["g_steps"] % trace_every == 0:
            for key, value in numbers.items():
                state["trace"].setdefault(key, []).append(value)
            state["trace"].setdefault("g_step", []).append(state["g_steps"])
            shown = {"D": f"{numbers['d_loss']:.3f}", "G": f"{numbers['g_loss']:.3f}"}
            if config["loss"] in ("wgan", "wgan-gp"):
                shown["W"] = f"{numbers['wasserstein']:.3f}"
            bar.set_postfix(shown)
    return {key: total / max(count, 1) for key, total in sums.items()}


def _epoch_line(r, epochs, config):
    line = (f"epoch {r['epoch']}/{epochs}  D loss {r['d_loss']:.3f}  G loss {r['g_loss']:.3f}  "
            f"D(x) {r['d_real']:.3f}  D(G(z)) {r['d_fake']:.3f}")
    if config["loss"] in ("wgan", "wgan-gp"):
        line += f"  W estimate {r['wasserstein']:.3f}"
    if "modes" in r:
        line += (f"  modes {r['modes']}/{r['total_modes']}, high quality "
                 f"{100 * r['high_quality']:.1f}%")
    return line + f"  [{r['seconds']:.1f} s]"


# ============================================================== checkpoints
def checkpoint_state(G, D, opt_G, opt_D, loader, config, epoch, run, progress_state):
    """Everything a resumed run needs to continue bit for bit."""
    return {"model": "gan", "config": json.dumps(config), "epoch": epoch,
            "G": G.state_dict(), "D": D.state_dict(),
            "opt_G": opt_G.state_dict(), "opt_D": opt_D.state_dict(),
            # the generator state holds 128-bit integers: JSON keeps them exactly
            "rng": json.dumps(mg.get_rng_state()), "loader": loader.state_dict(),
            "critic_steps": progress_state["critic_steps"], "g_steps": progress_state["g_steps"],
            "trace": {k: np.asarray(v, dtype=np.float64)
                      for k, v in progress_state["trace"].items()},
            "panels": progress_state["panels"], "history": json.dumps(run.history)}


def _restore(run, G, D, opt_G, opt_D, loader, config, progress_state):
    """Load the checkpoint in ``run`` into the fresh objects; return its epoch."""
    state = run.load_checkpoint()
    where = run.checkpoint_path
    if _text(state.get("model")) != "gan":
        raise CLIError(f"--resume: {where} is a checkpoint of model "
                       f"{_text(state.get('model'))!r}, not 'gan'; use another --out")
    saved = json.loads(_text(state["config"]))
    differ = [f"{key} {saved.get(key)!r} (now {config[key]!r})" for key in RESUME_KEYS
              if saved.get(key) != config[key]]
    if differ:
        raise CLIError(f"--resume: the run in {run.out} was trained with other settings: "
                       f"{'; '.join(differ)}")
    try:
        G.load_state_dict(state["G"])
        D.load_state_dict(state["D"])
        opt_G.load_state_dict(state["opt_G"])
        opt_D.load_state_dict(state["opt_D"])
        loader.load_state_dict(state["loader"])
    except (KeyError, ValueError, RuntimeError) as e:
        raise CLIError(f"--resume: {where} does not fit these networks ({_one_line(e)})") from None
    mg.set_rng_state(json.loads(_text(state["rng"])))
    progress_state["critic_steps"] = int(state["critic_steps"])
    progress_state["g_steps"] = int(state["g_steps"])
    progress_state["trace"] = {k: [float(v) for v in np.asarray(a)]
                               for k, a in state["trace"].items()}
    progress_state["panels"] = [{k: (np.asarray(v) if k in ("fake", "grid") else v)
                                 for k, v in panel.items()} for panel in state["panels"]]
    run.history = json.loads(_text(state["history"]))
    return int(state["epoch"])


# ============================================================== evaluation and figures
def _eval_rng(seed, purpose):
    """A generator of its own for evaluation and figures: they never move the training
    stream, so a resumed run draws exactly the noise an uninterrupted one would."""
    return np.random.default_rng([seed, purpose])


def _generate(G, z, labels, device):
    """G(z) in evaluation mode (batch norm with its running statistics), as a NumPy array;
    the networks' modes are restored afterwards."""
    was_training = G.training
    G.eval()
    try:
        with mg.no_grad():
            return G(mg.tensor(np.asarray(z, np.float32), device=device), labels).numpy()
    finally:
        G.train(was_training)


def _to_unit(images):
    """G's tanh output in [-1, 1] -> pixel values in [0, 1]."""
    return np.clip((images + 1) / 2, 0, 1).astype(np.float32)


def _coverage_record(G, config, seed, device):
    from ..models.gan import toy_coverage
    points = _sample_points(G, config, COVERAGE_SAMPLES, _eval_rng(seed, 4), device)
    cov = toy_coverage(points, config["dataset"])
    return {"modes": cov.modes, "total_modes": cov.total_modes, "high_quality": cov.high_quality}


def _sample_points(G, config, n, gen, device):
    z = gen.standard_normal((n, config["latent"]), dtype=np.float32)
    labels = np.arange(n) % config["num_classes"] if config["num_classes"] else None
    return _generate(G, z, labels, device)


TOY_EXTENT = {"ring": (-3.0, 3.0), "grid": (-5.5, 5.5)}


def _toy_panel(G, D, config, epoch, seed, device, k=60):
    """Generated points and D's output on a k x k grid (eval mode), for the evolution figure."""
    from ..models.gan import Recipe
    lo, hi = TOY_EXTENT[config["dataset"]]
    fake = _sample_points(G, config, 1000, _eval_rng(seed, 5), device)
    ticks = np.linspace(lo, hi, k, dtype=np.float32)
    gx, gy = np.meshgrid(ticks, ticks)
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
    classes, recipe = config["num_classes"], Recipe(config["loss"])
    D.eval()
    with mg.no_grad():
        pts = mg.tensor(grid, device=device)
        outputs = [recipe.d_output(D(pts, np.full(len(grid), c) if classes else None)).numpy()
                   for c in range(max(classes, 1))]
    D.train()
    # a conditional D is drawn averaged over the classes
    return {"epoch": epoch, "fake": fake.astype(np.float32), "extent": [lo, hi],
            "grid": np.mean(outputs, axis=0).reshape(k, k).astype(np.float32)}


def draw_figures(G, D, run, x, y, classes, config, state, seed=0, device="cpu"):
    """Write every figure of the run; returns the file names written."""
    from .. import viz
    written = []

    def out(name):
        written.append(name)
        return run.path(name)

    trace, steps = state["trace"], state["trace"].get("g_step", [])
    loss_curves = {"D loss": trace.get("d_loss", []), "G loss": trace.get("g_loss", [])}
    if config["loss"] in ("wgan", "wgan-gp"):
        loss_curves["W estimate: E f(x) - E f(G(z))"] = trace.get("wasserstein", [])
    if config["loss"] == "wgan-gp":
        loss_curves["gradient penalty"] = trace.get("penalty", [])
    viz.save_step_curves(steps, loss_curves, out("loss_curves.png"),
                         title=f"{config['loss']} GAN: losses (faint: raw, bold: moving average)")
    logistic = config["loss"] in ("minimax", "ns")
    viz.save_step_curves(steps, {"D(x), real": trace.get("d_real", []),
                                 "D(G(z)), generated": trace.get("d_fake", [])},
                         out("d_outputs.png"),
                         ylabel="probability 'real'" if logistic else "D's output",
                         title="what D says about real and generated samples")
    if len(config["data_shape"]) == 1:
        panels = _pick_panels(state["panels"])
        viz.save_toy_panels(panels, x[:2000], out("evolution.png"),
                            levels_label="D(x)" if logistic else "D's output",
                            title=f"{config['loss']} GAN on the {config['dataset']}: real (grey) "
                                  f"and generated (red) points over D's output")
        return written
    shape = tuple(config["data_shape"])
    gen = _eval_rng(seed, 3)  # the same z in every epoch: the grids show learning, not noise
    k = config["num_classes"]
    if k:
        z = np.tile(gen.standard_normal((10, config["latent"]), dtype=np.float32), (k, 1))
        images = _to_unit(_generate(G, z, np.repeat(np.arange(k), 10), device))
        viz.save_class_rows(images, classes[:k], out("samples.png"), image_shape=shape,
                            title="samples: one row per class, the same z down each column")
    else:
        z = gen.standard_normal((64, config["latent"]), dtype=np.float32)
        viz.save_image_grid(_to_unit(_generate(G, z, None, device)), out("samples.png"), nrow=8,
                            image_shape=shape, title="samples G(z) from a fixed z")
    # latent interpolation between fixed pairs of z (CGAN: each row keeps one class)
    za, zb = (gen.standard_normal((6, config["latent"]), dtype=np.float32) for _ in range(2))
    t = np.linspace(0, 1, 10, dtype=np.float32)[None, :, None]
    zs = ((1 - t) * za[:, None] + t * zb[:, None]).reshape(-1, config["latent"])
    labels = np.repeat(np.arange(6) % k, 10) if k else None
    viz.save_interpolation_rows(_to_unit(_generate(G, zs, labels, device)), 10,
                                out("interpolation.png"), image_shape=shape)
    return written


def _pick_panels(panels, most=8):
    """At most ``most`` snapshots, evenly spread, always the last one."""
    if len(panels) <= most:
        return panels
    pick = np.unique(np.round(np.linspace(0, len(panels) - 1, most)).astype(int))
    return [panels[i] for i in pick]


# ============================================================== the sampling contract
def draw(state, n, seed=0, device="cpu"):
    """``n`` samples from a GAN checkpoint: float32 (n, D), images flattened with pixels in
    [0, 1] (G's tanh output mapped by (x + 1) / 2), or (n, 2) points for the toy sets.

    G runs in evaluation mode (batch norm with its running statistics), so each sample
    depends on its z alone. z comes from a generator seeded by ``seed``: deterministic, and
    minigen's global random stream is not touched. A conditional G gets label i mod C for
    sample i.
    """
    G, config = generator_from_checkpoint(state, "checkpoint")
    device = mg.backend.check_device(device)
    if device != "cpu":
        G.to(device)
    gen, chunks = np.random.default_rng(seed), []
    for start in range(0, n, 1000):
        m = min(1000, n - start)
        z = gen.standard_normal((m, config["latent"]), dtype=np.float32)
        labels = (np.arange(start, start + m) % config["num_classes"]
                  if config["num_classes"] else None)
        chunks.append(_generate(G, z, labels, device))
    if not chunks:
        return np.zeros((0, int(np.prod(config["data_shape"]))), np.float32)
    samples = np.concatenate(chunks)
    return _to_unit(samples) if len(config["data_shape"]) == 3 else samples.astype(np.float32)


def image_shape(state):
    """(C, H, W) of the images a GAN checkpoint generates, or None for 2-D points."""
    shape = json.loads(_text(state["config"]))["data_shape"]
    return tuple(shape) if len(shape) == 3 else None


def sample(args, state):
    """``minigen sample RUN -n N --out FILE.png``: a grid of images, or a scatter of points."""
    from .. import viz
    if args.n < 1:
        raise CLIError(f"-n must be at least 1, got {args.n}")
    samples = draw(state, args.n, seed=args.seed, device=args.device)
    config = json.loads(_text(state["config"]))
    if len(config["data_shape"]) == 1:
        k = config["num_classes"]
        viz.save_scatter(samples, np.arange(args.n) % k if k else np.zeros(args.n), args.out,
                         title=f"{args.n} samples of the {config['loss']} GAN")
    else:
        nrow = config["num_classes"] or int(math.ceil(math.sqrt(args.n)))
        viz.save_image_grid(samples, args.out, nrow=nrow, image_shape=image_shape(state))
    print(f"wrote {args.n} samples to {args.out}")
