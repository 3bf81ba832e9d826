"""VAE: variational autoencoder on Fashion-MNIST / MNIST / digits (figures in the run folder).

    minigen train vae --dataset fashion-mnist --epochs 10 --latent 20 --out runs/vae
    minigen train vae --latent 2          # adds the 2-D latent scatter and the decoded manifold
    minigen train vae --conditional       # label-conditioned VAE: samples one row per class
    minigen train vae --out runs/vae --epochs 20 --resume    # continue a stopped run exactly
    minigen sample runs/vae -n 64 --out samples.png

Each epoch: one pass over the training set (a progress bar shows the loss parts live),
the test set's negative ELBO, a line on the terminal, a record in metrics.json/.csv, an
atomic checkpoint (model, optimizer, random generator, data loader position, history)
and the figures, redrawn. After the last epoch, the test log-likelihood is estimated by
importance sampling (IWAE bound, k samples) in nats, comparable with the literature.
"""
import json
import math
import time

import numpy as np

import minigen as mg

from ..options import natural, nonnegative, positive
from ..runs import CLIError, Run, announce_resume, check_finite_loss, progress

DATASETS = ("fashion-mnist", "mnist", "digits")
# what must match between a checkpoint and the command that resumes it
ARCHITECTURE = ("dataset", "conv", "image_shape", "hidden", "latent", "num_classes",
                "likelihood", "sigma", "batch_size", "subset")
FIGURES = ("samples.png", "reconstructions.png", "latent_traversal.png", "interpolation.png",
           "loss_curves.png", "loss_parts.png")
FIGURES_2D = ("latent_scatter.png", "manifold.png")


def add_arguments(p):
    p.add_argument("--dataset", default="fashion-mnist", choices=DATASETS,
                   help="training data (default fashion-mnist)")
    p.add_argument("--epochs", type=int, default=10, help="total epochs (default 10)")
    p.add_argument("--latent", type=int, default=20, help="latent dimension (default 20)")
    p.add_argument("--hidden", type=int, default=None,
                   help="hidden units (default 400 for the MLP, 256 for --conv)")
    p.add_argument("--beta", type=nonnegative, default=1.0,
                   help="weight of the KL term: 1 = VAE, >1 = beta-VAE (default 1)")
    p.add_argument("--conditional", action="store_true",
                   help="conditional VAE: the class label is fed to encoder and decoder")
    p.add_argument("--conv", action="store_true", help="convolutional encoder and decoder")
    p.add_argument("--likelihood", default="bernoulli", choices=("bernoulli", "gaussian"),
                   help="decoder distribution (default bernoulli)")
    p.add_argument("--sigma", type=positive, default=None,
                   help="gaussian decoder: fixed pixel std (default: learned per pixel)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=positive, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--iwae-k", type=natural, default=100,
                   help="importance samples for the final test log-likelihood (0: skip)")
    p.add_argument("--iwae-n", type=int, default=1000,
                   help="test images used for the IWAE estimate (default 1000)")
    p.add_argument("--figures-every", type=natural, default=1, metavar="N",
                   help="redraw the figures every N epochs and after the last (default 1; "
                        "0: no figures)")
    p.add_argument("--subset", type=int, default=None,
                   help="use only the first N training and test images (quick trials)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/vae", help="run folder (default runs/vae)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the checkpoint in --out up to --epochs")


# ============================================================== data and model
def load_data(name, subset=None):
    """(train X, train y, test X, test y, class names, image shape), or a one-line CLIError."""
    from ..data import SOURCES
    from . import load_images
    x, y, xt, yt = load_images(name, subset)
    classes = SOURCES[name].classes if name in SOURCES else tuple(str(d) for d in range(10))
    side = int(round(math.sqrt(x.shape[1])))
    return x, y, xt, yt, tuple(classes), (1, side, side)


def config_from_args(args, image_shape):
    hidden = args.hidden or (256 if args.conv else 400)
    return {"dataset": args.dataset, "conv": bool(args.conv), "image_shape": list(image_shape),
            "hidden": hidden, "latent": args.latent,
            "num_classes": 10 if args.conditional else 0, "likelihood": args.likelihood,
            "sigma": args.sigma, "batch_size": args.batch_size, "subset": args.subset,
            "beta": args.beta, "lr": args.lr, "seed": args.seed}


def _text(value):
    """A string stored in a checkpoint (np.str_ / 0-d array / str) -> str."""
    return str(value.item() if hasattr(value, "item") else value)


def _one_line(error):
    return " ".join(str(error).split())


def model_from_checkpoint(state, where):
    """Rebuild the VAE a checkpoint describes and load its weights, or a clear CLIError."""
    from ..models.vae import build_vae
    if _text(state.get("model")) != "vae":
        raise CLIError(f"{where}: checkpoint is of model {_text(state.get('model'))!r}, not 'vae'")
    try:
        config = json.loads(_text(state["config"]))
        model = build_vae(config)
        model.load_state_dict(state["params"])
    except (KeyError, ValueError, TypeError, RuntimeError) as e:
        raise CLIError(f"{where}: not a usable VAE checkpoint ({_one_line(e)})") from None
    return model, config


# ============================================================== training
def train(args):
    run = Run(args.out, resume=args.resume)
    x, y, xt, yt, classes, image_shape = load_data(args.dataset, args.subset)
    config = config_from_args(args, image_shape)
    device = mg.backend.check_device(args.device)
    mg.manual_seed(args.seed)

    from ..data import DataLoader
    from ..models.vae import build_vae
    from ..optim import Adam
    model = build_vae(config)
    if device != "cpu":
        model.to(device)
    optimizer = Adam(model.parameters(), lr=args.lr)
    loader = DataLoader((x, y), batch_size=args.batch_size, shuffle=True, seed=args.seed)

    start = 0
    if args.resume:
        start = _restore(run, model, optimizer, loader, config)
        if not announce_resume(run, start, args.epochs):
            return

    cond = config["num_classes"] > 0
    for epoch in range(start + 1, args.epochs + 1):
        t0 = time.perf_counter()
        tr = train_epoch(model, optimizer, loader, args.beta, device, cond,
                         desc=f"epoch {epoch}/{args.epochs}", epoch=epoch)
        te = evaluate(model, xt, yt if cond else None, device, seed=args.seed)
        check_finite_loss(te["recon"] + te["kl"], epoch, name="test loss")
        record = {"epoch": epoch, "train_loss": tr["loss"], "train_recon": tr["recon"],
                  "train_kl": tr["kl"], "test_neg_elbo": te["recon"] + te["kl"],
                  "test_recon": te["recon"], "test_kl": te["kl"]}
        if epoch == args.epochs and args.iwae_k > 0:
            n = min(args.iwae_n, len(xt))
            record["test_neg_iwae"] = -float(np.mean(iwae(
                model, xt[:n], yt[:n] if cond else None, args.iwae_k, device, seed=args.seed)))
            record["iwae_k"], record["iwae_n"] = args.iwae_k, n
        record["seconds"] = time.perf_counter() - t0
        run.log(**record)
        run.save_checkpoint(checkpoint_state(model, optimizer, loader, config, epoch, run))
        print(_epoch_line(record, args.epochs), flush=True)
        every = args.figures_every
        if every > 0 and (epoch == args.epochs or epoch % every == 0):
            written = draw_figures(model, run, xt, yt, classes, seed=args.seed)
    if args.figures_every > 0:
        print(f"figures in {run.out}/: {', '.join(written)}")
    print(f"metrics in {run.path('metrics.json')} (and .csv); checkpoint {run.checkpoint_path}")


def _epoch_line(r, epochs):
    line = (f"epoch {r['epoch']}/{epochs}  train loss {r['train_loss']:.2f} "
            f"(recon {r['train_recon']:.2f} + KL {r['train_kl']:.2f})  "
            f"test -ELBO {r['test_neg_elbo']:.2f} nats")
    if "test_neg_iwae" in r:
        line += f"  test -log p(x) <= {r['test_neg_iwae']:.2f} (IWAE k={r['iwae_k']})"
    return line + f"  [{r['seconds']:.1f} s]"


def train_epoch(model, optimizer, loader, beta, device, conditional, desc="epoch", epoch=None):
    """One pass over ``loader``: Adam steps on the (beta-)negative ELBO; mean loss parts.
    Stops (``NonFiniteLoss``) at the first non-finite loss, before it reaches the weights."""
    totals, seen = {"loss": 0.0, "recon": 0.0, "kl": 0.0}, 0
    bar = progress(loader, total=len(loader), desc=desc)
    for step, (xb, yb) in enumerate(bar):
        x = xb.to(device)
        parts = model.elbo_parts(x, yb if conditional else None, beta=beta)
        check_finite_loss(parts["loss"].item(), epoch, step)
        optimizer.zero_grad()
        parts["loss"].backward()
        optimizer.step()
        seen += len(xb)
        for key in totals:
            totals[key] += parts[key].item() * len(xb)
        if step % 10 == 0:
            bar.set_postfix(loss=f"{parts['loss'].item():.1f}", recon=f"{parts['recon'].item():.1f}",
                            kl=f"{parts['kl'].item():.1f}")
    return {key: total / max(seen, 1) for key, total in totals.items()}


def _eval_rng(seed, purpose):
    """A generator of its own for evaluation and figures: they never move the training
    stream, so a resumed run draws exactly the noise an uninterrupted one would."""
    return np.random.default_rng([seed, purpose])


def evaluate(model, x, y, device, seed=0, batch_size=1000):
    """Test reconstruction term and KL (beta = 1: the true ELBO), averaged over ``x``."""
    gen = _eval_rng(seed, 1)
    recon = kl = 0.0
    with mg.no_grad():
        for s in range(0, len(x), batch_size):
            xb = mg.tensor(x[s:s + batch_size], device=device)
            eps = gen.standard_normal((len(xb), model.latent), dtype=np.float32)
            parts = model.elbo_parts(xb, None if y is None else y[s:s + batch_size],
                                     eps=mg.tensor(eps, device=device))
            recon += parts["recon"].item() * len(xb)
            kl += parts["kl"].item() * len(xb)
    return {"recon": recon / len(x), "kl": kl / len(x)}


def iwae(model, x, y, k, device, seed=0, batch_size=100):
    """IWAE estimates of log p(x) (nats), one per row of ``x`` (see ``VAE.iwae_bound``)."""
    gen, out = _eval_rng(seed, 2), []
    for s in range(0, len(x), batch_size):
        xb = mg.tensor(x[s:s + batch_size], device=device)
        eps = mg.tensor(gen.standard_normal((k, len(xb), model.latent), dtype=np.float32),
                        device=device)
        yb = None if y is None else y[s:s + batch_size]
        out.append(model.iwae_bound(xb, yb, k=k, eps=eps).numpy())
    return np.concatenate(out)


# ============================================================== checkpoints
def checkpoint_state(model, optimizer, loader, config, epoch, run):
    """Everything a resumed run needs to continue bit for bit."""
    return {"model": "vae", "config": json.dumps(config), "epoch": epoch,
            "params": model.state_dict(), "optimizer": optimizer.state_dict(),
            # the generator state holds 128-bit integers: JSON keeps them exactly
            "rng": json.dumps(mg.get_rng_state()), "loader": loader.state_dict(),
            "history": json.dumps(run.history)}


def _restore(run, model, optimizer, loader, config):
    """Load the checkpoint in ``run`` into the fresh objects; return its epoch."""
    state = run.load_checkpoint()
    where = run.checkpoint_path
    if _text(state.get("model")) != "vae":
        raise CLIError(f"--resume: {where} is a checkpoint of model "
                       f"{_text(state.get('model'))!r}, not 'vae'; use another --out")
    saved = json.loads(_text(state["config"]))
    differ = [f"{key} {saved.get(key)!r} (now {config[key]!r})" for key in ARCHITECTURE
              if saved.get(key) != config[key]]
    if differ:
        raise CLIError(f"--resume: the run in {run.out} was trained with other settings: "
                       f"{'; '.join(differ)}")
    try:
        model.load_state_dict(state["params"])
        optimizer.load_state_dict(state["optimizer"])
        loader.load_state_dict(state["loader"])
    except (KeyError, ValueError, RuntimeError) as e:
        raise CLIError(f"--resume: {where} does not fit this model ({_one_line(e)})") from None
    mg.set_rng_state(json.loads(_text(state["rng"])))
    run.history = json.loads(_text(state["history"]))
    for group in optimizer.param_groups:  # --lr on --resume wins (e.g. after a NaN stop)
        if group["lr"] != config["lr"]:
            print(f"learning rate {group['lr']} -> {config['lr']}")
            group["lr"] = config["lr"]
    return int(state["epoch"])


# ============================================================== figures
def draw_figures(model, run, xt, yt, classes, seed=0):
    """Write every figure of the run; returns the file names written."""
    from .. import viz
    gen = _eval_rng(seed, 3)  # the same z in every epoch: the figures show learning, not noise
    latent, shape = model.latent, model.image_shape
    cond = model.num_classes > 0
    written = []

    def out(name):
        written.append(name)
        return run.path(name)

    with mg.no_grad():
        # random samples (conditional: one row per class, the same z down each column)
        if cond:
            z = np.tile(gen.standard_normal((10, latent), dtype=np.float32), (model.num_classes, 1))
            labels = np.repeat(np.arange(model.num_classes), 10)
            viz.save_class_rows(_decode(model, z, labels), classes[:model.num_classes],
                                out("samples.png"), image_shape=shape,
                                title="samples: one row per class, one z per column")
        else:
            z = gen.standard_normal((64, latent), dtype=np.float32)
            viz.save_image_grid(_decode(model, z), out("samples.png"), nrow=8, image_shape=shape,
                                title="samples: mean image E[x | z] for z ~ N(0, I)")
        # reconstructions of test images (through the posterior mean)
        x32, y32 = xt[:32], yt[:32] if cond else None
        mu, logvar = model.encode(_t(model, x32), y32)
        viz.save_reconstructions(x32, _decode(model, mu.numpy(), y32), out("reconstructions.png"),
                                 image_shape=shape)
        # latent traversal (seed 002): coordinate j sweeps -3..3, the others stay at 0
        _traversal(model, mu, logvar, yt[:1] if cond else None, classes, out("latent_traversal.png"))
        # interpolation between pairs of test images
        _interpolation(model, xt[:8], yt[:8] if cond else None, out("interpolation.png"))
        # loss curves. A train value is the mean over the epoch's batches, taken while the
        # weights were still improving: it belongs mid-epoch, and early on it sits above the
        # test -ELBO of the end-of-epoch weights (not a sign of a bug or of underfitting).
        epochs = run.series("epoch")
        mid = {name: [e - 0.5 for e in epochs] for name in
               ("train loss", "train reconstruction", "train KL")}
        note = ("train: mean over the epoch's batches while the weights still improve (drawn "
                "mid-epoch); test: the weights at the end of the epoch")
        viz.save_curves({"train loss": run.series("train_loss"),
                         "test -ELBO": run.series("test_neg_elbo")}, out("loss_curves.png"),
                        ylabel="nats per image", title="negative ELBO = reconstruction + KL",
                        x=mid, note=note)
        viz.save_curves({"train reconstruction": run.series("train_recon"),
                         "test reconstruction": run.series("test_recon"),
                         "train KL": run.series("train_kl"), "test KL": run.series("test_kl")},
                        out("loss_parts.png"), ylabel="nats per image (log scale)", logy=True,
                        title="the ELBO's parts: -log p(x|z) and KL(q(z|x) || p(z)), in nats",
                        x=mid, note=note)
        if latent == 2:
            n = min(len(xt), 5000)
            mu_all = np.concatenate([model.encode(_t(model, xt[s:s + 1000]),
                                                  yt[s:s + 1000] if cond else None)[0].numpy()
                                     for s in range(0, n, 1000)])
            viz.save_scatter(mu_all, yt[:n], out("latent_scatter.png"), class_names=classes,
                             title="test images' posterior means in the 2-D latent space")
            values = np.linspace(-3, 3, 15)
            grid = np.array([[a, b] for b in values[::-1] for a in values], dtype=np.float32)
            labels = np.zeros(len(grid), dtype=np.int64) if cond else None
            viz.save_manifold(_decode(model, grid, labels), values, out("manifold.png"),
                              image_shape=shape, title="decoded latent plane"
                              + (f" (class {classes[0]})" if cond else ""))
    return written


def _t(model, array):
    return mg.tensor(np.asarray(array, dtype=np.float32), device=model._device())


def _decode(model, z, labels=None):
    """z (N, latent) as arrays -> mean images (N, D) as a NumPy array."""
    return model.mean_image(model.decode(_t(model, z), labels)).numpy()


def _traversal(model, mu, logvar, label, classes, path):
    from .. import viz
    latent = model.latent
    # how much each coordinate is used: its KL (3), per coordinate, averaged over the images
    kl = 0.5 * (mu * mu + logvar.exp() - 1.0 - logvar).numpy().mean(axis=0)
    rows = np.arange(latent) if latent <= 32 else np.sort(np.argsort(-kl)[:32])
    values = np.linspace(-3, 3, 13)
    z = np.zeros((len(rows), len(values), latent), dtype=np.float32)
    for r, j in enumerate(rows):
        z[r, :, j] = values
    z = z.reshape(-1, latent)
    labels = None if label is None else np.repeat(label, len(z))
    title = "latent traversal: row j sweeps z_j from -3 to 3, the other coordinates at 0"
    if label is not None:
        title += f" (class {classes[int(label[0])]})"
    viz.save_latent_traversal(_decode(model, z, labels), values, path,
                              [f"z{j} (KL {kl[j]:.1f} nats)" for j in rows],
                              image_shape=model.image_shape, title=title)


def _interpolation(model, x8, y8, path, n_steps=10):
    from .. import viz
    mu = model.encode(_t(model, x8), y8)[0].numpy()
    rows = []
    for a, b in zip(range(0, len(x8), 2), range(1, len(x8), 2)):
        t = np.linspace(0, 1, n_steps - 2, dtype=np.float32)[:, None]
        z = (1 - t) * mu[a] + t * mu[b]
        labels = None if y8 is None else np.repeat(y8[a:a + 1], len(z))
        rows += [x8[a:a + 1], _decode(model, z, labels), x8[b:b + 1]]
    viz.save_interpolations(np.concatenate(rows), n_steps, path, image_shape=model.image_shape)


# ============================================================== sampling
def image_shape(state):
    """(C, H, W) of the images a VAE checkpoint draws (the sampling contract)."""
    return tuple(json.loads(_text(state["config"]))["image_shape"])


def draw(state, n, seed=0, device="cpu", batch_size=1000):
    """n decoder mean images E[x | z], z ~ N(0, I), flattened, float32 in [0, 1] (the sampling
    contract). z comes from a generator of its own (the global stream does not move); a
    conditional VAE draws the classes in turn, image i with label i mod C."""
    rng_state = mg.get_rng_state()  # building the model draws initial weights: undo that
    try:
        model, _ = model_from_checkpoint(state, "checkpoint")
    finally:
        mg.set_rng_state(rng_state)
    device = mg.backend.check_device(device)
    if device != "cpu":
        model.to(device)
    z = np.random.default_rng(seed).standard_normal((n, model.latent), dtype=np.float32)
    labels = np.arange(n) % model.num_classes if model.num_classes else None
    with mg.no_grad():
        images = [_decode(model, z[s:s + batch_size], None if labels is None else
                          labels[s:s + batch_size]) for s in range(0, n, batch_size)]
    return np.concatenate(images).reshape(n, -1).astype(np.float32)


def sample(args, state):
    """``minigen sample RUN -n N --out FILE.png``: N images from a trained VAE."""
    from .. import viz
    model, config = model_from_checkpoint(state, args.checkpoint)
    device = mg.backend.check_device(args.device)
    if device != "cpu":
        model.to(device)
    if args.n < 1:
        raise CLIError(f"-n must be at least 1, got {args.n}")
    mg.manual_seed(args.seed)
    labels, nrow = None, int(math.ceil(math.sqrt(args.n)))
    if model.num_classes:
        # columns are classes: image i has label i mod C
        labels, nrow = np.arange(args.n) % model.num_classes, model.num_classes
    images = model.sample(args.n, labels).numpy()
    viz.save_image_grid(images, args.out, nrow=nrow, image_shape=model.image_shape)
    print(f"wrote {args.n} samples to {args.out}")
