"""DANN: domain-adversarial training through a gradient reversal layer, vs source-only training.

    minigen train dann                          # Fashion-MNIST -> a noisy copy; + baseline
    minigen train dann --shift texture          # MNIST-M-style backgrounds instead
    minigen train dann --no-baseline            # the domain-adversarial network alone
    minigen train dann --out runs/dann --resume # continue an interrupted run exactly

The source domain is labelled Fashion-MNIST; the target domain is a shifted copy of it
(``--shift``; ``minigen.models.dann.shift_images``) whose labels are never used for
training. The training set is split in two halves so that no garment appears in both
domains: the first half is the labelled source, the second half, shifted, the unlabelled
target. The test sets are the 10 000 test images, as they are (source) and shifted (target).

The default shift, Gaussian noise of std 0.5 (clipped to [0, 1]), is one where training on
the source alone really fails on the target -- the garments are still plain to a person,
but a source-only network drops by over 20 points (83 % -> 59 % in the default run) --
and where domain-adversarial training recovers a good part of it (71 %; the README has the
numbers). The shifts that invert the contrast (``invert``; ``texture``, which inverts it
wherever its background is bright) are harder still: there source-only training falls
below chance, and in this budget the adversarial features do not learn to ignore the
polarity either (README).

Two networks with the same architecture, the same initial weights, the same batches and the
same learning-rate schedule are trained side by side, an epoch each in turn:

* DANN (Ganin & Lempitsky 2015): label loss on source batches + domain loss on source and
  target batches, the features receiving the domain gradient reversed and scaled by
  lambda_p = 2 / (1 + exp(-10 p)) - 1;
* the source-only baseline: lambda = 0, so its features learn from the labels alone (its
  domain classifier still trains, on features it cannot change: it measures how well the
  domains can be told apart without adaptation).

SGD with momentum 0.9 and the annealed rate mu_p = 0.01 / (1 + 10 p)^0.75, p the progress
from 0 to 1 over all epochs (the paper's settings). Each epoch ends with the accuracies of
both networks on the whole source and target test sets and their domain classifiers'
accuracy, a line, a record in metrics.json/.csv, an atomic checkpoint and the figures:
``accuracy.png`` (source, target and domain-classifier accuracy during training, measured
``--evals-per-epoch`` times an epoch on 1000 test images of each domain), ``features.png``
(a PCA projection of source and target test features, source-only vs DANN), ``domains.png``
(source test images above their shifted copies) and ``losses.png``.
"""
import json
import time

import numpy as np

import minigen as mg

from ..options import below_one, nonnegative, positive
from ..runs import (CLIError, Run, announce_resume, check_finite_loss, checkpoint_for_resume,
                    progress)
from . import _state
from .gan import _one_line, _text

DATASETS = ("fashion-mnist", "mnist")
MODELS = ("dann", "baseline")   # the two networks of a run, in training order
LABELS = {"dann": "DANN", "baseline": "source only"}
CHANNELS = (32, 48)             # the paper's MNIST feature extractor
CURVE_N = 1000                  # test images per domain for the curves' evaluation points
# settings a resumed run must share with its checkpoint: the schedules depend on --epochs
RESUME_KEYS = ("dataset", "shift", "epochs", "batch_size", "channels", "hidden", "lr",
               "momentum", "alpha", "beta", "gamma", "lambda_max", "baseline",
               "evals_per_epoch", "subset")
FIGURES = ("accuracy.png", "features.png", "domains.png", "losses.png")


def add_arguments(p):
    from ..models.dann import SHIFTS
    p.add_argument("--dataset", default="fashion-mnist", choices=DATASETS,
                   help="the labelled source domain (default fashion-mnist)")
    p.add_argument("--shift", default="noise", choices=SHIFTS,
                   help="how the target domain differs: noise (Gaussian, std 0.5, default), "
                        "invert (1 - x), texture (|x - smooth random background|, as "
                        "MNIST-M), rotate-noise (90 degrees and noise)")
    p.add_argument("--epochs", type=int, default=5,
                   help="passes over the labelled half of the training set (default 5)")
    p.add_argument("--batch-size", type=int, default=64,
                   help="source images per step, and as many target images (default 64)")
    p.add_argument("--channels", type=int, nargs=2, default=None, metavar=("C1", "C2"),
                   help="channels of the feature extractor's two convolutions (default 32 48, "
                        "the paper's MNIST network)")
    p.add_argument("--hidden", type=int, default=100,
                   help="units of the classifiers' hidden layers (default 100)")
    g = p.add_argument_group("optimisation (defaults: Ganin & Lempitsky 2015, section 5.2.2)")
    g.add_argument("--lr", type=positive, default=0.01, help="mu_0 of the annealed SGD rate")
    g.add_argument("--momentum", type=below_one, default=0.9, help="SGD momentum (default 0.9)")
    g.add_argument("--alpha", type=nonnegative, default=10.0,
                   help="mu_p = mu_0 / (1 + alpha p)^beta (default 10)")
    g.add_argument("--beta", type=nonnegative, default=0.75, help="(default 0.75)")
    g.add_argument("--gamma", type=positive, default=10.0,
                   help="lambda_p = 2 / (1 + exp(-gamma p)) - 1 (default 10)")
    g.add_argument("--lambda-max", type=nonnegative, default=1.0,
                   help="lambda_p is scaled by this (default 1)")
    p.add_argument("--no-baseline", action="store_true",
                   help="train only the domain-adversarial network, not the source-only one")
    p.add_argument("--evals-per-epoch", type=int, default=4,
                   help="points per epoch on the accuracy curves (default 4)")
    _state.add_run_arguments(p, "dann")


# ============================================================== data and settings
def load_domains(dataset, shift, subset=None, seed=0):
    """{"source": (train x, train y, test x, test y), "target": (...)}: the first half of
    the training images as they are, the second half shifted; the test images as they are
    and shifted (the target's labels are for measuring only)."""
    from ..models.dann import shift_images
    from . import load_images
    x, y, xt, yt = load_images(dataset, subset)
    half = len(x) // 2
    return {"source": (x[:half], y[:half], xt, yt),
            "target": (shift_images(x[half:], shift, seed=[seed, 1]), y[half:],
                       shift_images(xt, shift, seed=[seed, 2]), yt)}


def config_from_args(args):
    return {"dataset": args.dataset, "shift": args.shift, "epochs": args.epochs,
            "batch_size": args.batch_size, "channels": list(args.channels or CHANNELS),
            "hidden": args.hidden, "lr": args.lr, "momentum": args.momentum,
            "alpha": args.alpha, "beta": args.beta, "gamma": args.gamma,
            "lambda_max": args.lambda_max, "baseline": not args.no_baseline,
            "evals_per_epoch": args.evals_per_epoch, "subset": args.subset, "seed": args.seed,
            "image_shape": [1, 28, 28]}


def build(config):
    from ..models.dann import DANN
    return DANN(tuple(config["image_shape"]), 10, tuple(config["channels"]), config["hidden"])


class Trainee:
    """One of the two networks of a run with everything it trains with: its optimizer and
    its own source and target loaders (both networks see the same batches in the same order)."""

    def __init__(self, name, model, config, data, device):
        from ..data import DataLoader
        from ..optim import SGD
        self.name, self.model = name, model
        self.optimizer = SGD(model.parameters(), lr=config["lr"], momentum=config["momentum"])
        bs, seed = config["batch_size"], config["seed"]
        self.source = DataLoader(data["source"][:2], batch_size=bs, shuffle=True, drop_last=True,
                                 seed=seed)
        self.target = DataLoader(data["target"][0], batch_size=bs, shuffle=True, drop_last=True,
                                 seed=seed + 1)
        self.steps = 0
        self.trace = {}  # evaluation points: progress, source/target/domain accuracy

    def state_dict(self):
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "source": self.source.state_dict(), "target": self.target.state_dict(),
                "steps": self.steps,
                "trace": {k: np.asarray(v, np.float64) for k, v in self.trace.items()}}

    def load_state_dict(self, state):
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.source.load_state_dict(state["source"])
        self.target.load_state_dict(state["target"])
        self.steps = int(state["steps"])
        self.trace = {k: [float(v) for v in np.asarray(a)] for k, a in state["trace"].items()}


# ============================================================== training
def train(args):
    run = Run(args.out, resume=args.resume)
    config = config_from_args(args)
    data = load_domains(args.dataset, args.shift, args.subset, args.seed)
    if len(data["source"][0]) < args.batch_size:
        raise CLIError(f"{len(data['source'][0])} labelled training images (half of the "
                       f"training set) are fewer than one batch of {args.batch_size}; lower "
                       f"--batch-size")
    device = mg.backend.check_device(args.device)
    mg.manual_seed(args.seed)
    first = build(config)
    trainees = []
    for name in MODELS[:2 if config["baseline"] else 1]:
        model = build(config)
        model.load_state_dict(first.state_dict())   # the same initial weights for both
        trainees.append(Trainee(name, model.to(device), config, data, device))

    start = 0
    if args.resume:
        start = _restore(run, trainees, config)
        if not announce_resume(run, start, args.epochs):
            return
    else:
        print(_describe(config, trainees[0], data))

    total_steps = args.epochs * len(trainees[0].source)
    curve_sets = _curve_sets(data)
    for epoch in range(start + 1, args.epochs + 1):
        t0 = time.perf_counter()
        record = {"epoch": epoch}
        for trainee in trainees:
            numbers = train_epoch(trainee, config, total_steps, curve_sets, device, epoch,
                                  desc=f"epoch {epoch}/{args.epochs} {LABELS[trainee.name]}")
            numbers.update(_test_accuracies(trainee.model, data))
            record.update({f"{trainee.name}_{k}": v for k, v in numbers.items()})
        record["seconds"] = time.perf_counter() - t0
        run.log(**record)
        run.save_checkpoint(checkpoint_state(trainees, config, epoch, run))
        print(_epoch_line(record, args.epochs, config), flush=True)
        every = args.figures_every
        if every > 0 and (epoch == args.epochs or epoch % every == 0):
            written = draw_figures(trainees, run, data, config)
    if args.figures_every > 0:
        print(f"figures in {run.out}/: {', '.join(written)}")
    _summary(run.history[-1], config)
    print(f"metrics in {run.path('metrics.json')} (and .csv); checkpoint {run.checkpoint_path}")


def _describe(config, trainee, data):
    steps = len(trainee.source)
    both = "DANN and the source-only baseline" if config["baseline"] else "DANN"
    return (f"{both} on {config['dataset']} -> {config['shift']}: "
            f"{len(data['source'][0])} labelled source and {len(data['target'][0])} "
            f"unlabelled target images; {config['epochs']} epoch{'s' if config['epochs'] > 1 else ''} "
            f"of {steps} steps of "
            f"{config['batch_size']} + {config['batch_size']} images; SGD lr "
            f"{config['lr']:g} / (1 + {config['alpha']:g} p)^{config['beta']:g}, momentum "
            f"{config['momentum']:g}; lambda up to {config['lambda_max']:g}")


def schedule(config, progress_):
    """(learning rate, DANN's lambda) at training progress p in [0, 1]."""
    from ..models.dann import annealed_lr, grl_lambda
    return (annealed_lr(progress_, config["lr"], config["alpha"], config["beta"]),
            grl_lambda(progress_, config["gamma"], config["lambda_max"]))


def train_epoch(trainee, config, total_steps, curve_sets, device, epoch=1, desc="epoch"):
    """One pass over the source loader, one step per batch (with a target batch); returns
    the epoch's mean losses and training accuracies, and the schedule's values at its end."""
    from ..models.dann import dann_step
    steps = len(trainee.source)
    evals = {round(k * steps / config["evals_per_epoch"])
             for k in range(1, config["evals_per_epoch"] + 1)}
    sums, count = {}, 0
    since = {"label_loss": 0.0, "domain_loss": 0.0, "steps": 0}   # since the last curve point
    trainee.model.train()
    bar = progress(range(1, steps + 1), total=steps, desc=desc)
    for step in bar:
        p = trainee.steps / total_steps
        lr, lambda_ = schedule(config, p)
        if trainee.name == "baseline":
            lambda_ = 0.0   # the features learn from the labels alone
        for group in trainee.optimizer.param_groups:
            group["lr"] = lr
        xs, ys = next(iter(trainee.source))
        xt = next(iter(trainee.target))
        out = dann_step(trainee.model, trainee.optimizer, xs.to(device), ys.to(device),
                        xt.to(device), lambda_)
        trainee.steps += 1
        # the one place where the losses become numbers (a NaN/inf stops the run here)
        numbers = {key: check_finite_loss(float(value.item()), epoch, step, name=key)
                   for key, value in out.items()}
        count += 1
        for key, value in numbers.items():
            sums[key] = sums.get(key, 0.0) + value
        since = {"label_loss": since["label_loss"] + numbers["label_loss"],
                 "domain_loss": since["domain_loss"] + numbers["domain_loss"],
                 "steps": since["steps"] + 1}
        if step % 10 == 0:
            bar.set_postfix({"label": f"{numbers['label_loss']:.3f}",
                             "domain": f"{numbers['domain_loss']:.3f}",
                             "dom acc": f"{numbers['domain_acc']:.2f}", "lambda": f"{lambda_:.2f}"})
        if step in evals:
            epochs_done = trainee.steps / total_steps * config["epochs"]
            losses = {k: since[k] / since["steps"] for k in ("label_loss", "domain_loss")}
            _trace_point(trainee, curve_sets, losses, epochs_done)
            since = {"label_loss": 0.0, "domain_loss": 0.0, "steps": 0}
    means = {f"train_{key}": total / max(count, 1) for key, total in sums.items()}
    return {**means, "lr": lr, "lambda": lambda_}


def _curve_sets(data):
    """The fixed test images of the curves' evaluation points: the first CURVE_N of each."""
    s, t = data["source"], data["target"]
    return s[2][:CURVE_N], s[3][:CURVE_N], t[2][:CURVE_N], t[3][:CURVE_N]


def _trace_point(trainee, curve_sets, losses, epochs_done):
    """A point of the curves: accuracies on the curve sets now, and the training losses
    averaged over the steps since the previous point."""
    from ..models.dann import evaluate
    acc = evaluate(trainee.model, *curve_sets)
    trainee.model.train()
    point = {"epoch": epochs_done, **acc, **losses}
    for key, value in point.items():
        trainee.trace.setdefault(key, []).append(value)


def _test_accuracies(model, data):
    """Accuracy on the whole source and target test sets, and the domain classifier's."""
    from ..models.dann import evaluate
    s, t = data["source"], data["target"]
    return {f"test_{k}": v for k, v in evaluate(model, s[2], s[3], t[2], t[3]).items()}


def _epoch_line(r, epochs, config):
    parts = [f"epoch {r['epoch']}/{epochs}"]
    for name in MODELS[:2 if config["baseline"] else 1]:
        parts.append(f"{LABELS[name]}: source {100 * r[f'{name}_test_source_acc']:.1f}% "
                     f"target {100 * r[f'{name}_test_target_acc']:.1f}% "
                     f"domain clf {100 * r[f'{name}_test_domain_acc']:.1f}%")
    return "  ".join(parts) + f"  (lambda {r['dann_lambda']:.3f}) [{r['seconds']:.1f} s]"


def _summary(r, config):
    line = (f"test accuracy on the target ({config['shift']}): DANN "
            f"{100 * r['dann_test_target_acc']:.1f}%")
    if config["baseline"]:
        line += f", source only {100 * r['baseline_test_target_acc']:.1f}%"
    print(line + f" (on the source: DANN {100 * r['dann_test_source_acc']:.1f}%" +
          (f", source only {100 * r['baseline_test_source_acc']:.1f}%)" if config["baseline"]
           else ")"))


# ============================================================== checkpoints
def checkpoint_state(trainees, config, epoch, run):
    """Everything a resumed run needs to continue bit for bit."""
    return {"model": "dann", "config": json.dumps(config), "epoch": epoch,
            **{t.name: t.state_dict() for t in trainees},
            "rng": json.dumps(mg.get_rng_state()), "history": json.dumps(run.history)}


def _restore(run, trainees, config):
    """Load the checkpoint in ``run`` into the fresh trainees; return its epoch."""
    state = checkpoint_for_resume(run, "dann", config, RESUME_KEYS)
    try:
        for trainee in trainees:
            trainee.load_state_dict(state[trainee.name])
    except (KeyError, ValueError, RuntimeError) as e:
        raise CLIError(f"--resume: {run.checkpoint_path} does not fit these networks "
                       f"({_one_line(e)})") from None
    mg.set_rng_state(json.loads(_text(state["rng"])))
    run.history = json.loads(_text(state["history"]))
    return int(state["epoch"])


# ============================================================== figures
def pca_2d(features):
    """The first two principal components of the rows of ``features`` (centred SVD)."""
    centred = features - features.mean(axis=0)
    _, _, vt = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
    return centred @ vt[:2].T


def draw_figures(trainees, run, data, config):
    """Write every figure of the run; returns the file names written."""
    from .. import viz
    from ..data import SOURCES
    from ..metrics.classifier import extract_features
    written = []

    def out(name):
        written.append(name)
        return run.path(name)

    curves = {}
    for t in trainees:
        for key, what in (("source_acc", "source"), ("target_acc", "target"),
                          ("domain_acc", "domain classifier")):
            curves[f"{LABELS[t.name]}: {what}"] = (t.trace.get("epoch", []), t.trace.get(key, []))
    viz.save_xy_curves(curves, out("accuracy.png"), xlabel="epoch", ylabel="accuracy",
                       title=f"{config['dataset']} -> {config['shift']}: test accuracy "
                             f"({CURVE_N} images per domain) during training",
                       dashed=[k for k in curves if k.startswith(LABELS["baseline"])])
    losses = {}
    for t in trainees:
        losses[f"{LABELS[t.name]}: label loss"] = (t.trace.get("epoch", []),
                                                   t.trace.get("label_loss", []))
        losses[f"{LABELS[t.name]}: domain loss"] = (t.trace.get("epoch", []),
                                                    t.trace.get("domain_loss", []))
    viz.save_xy_curves(losses, out("losses.png"), xlabel="epoch",
                       ylabel="training loss (mean since the previous point)",
                       title="label and domain losses (log(2) = 0.693: the domain classifier "
                             "guesses)",
                       dashed=[k for k in losses if k.startswith(LABELS["baseline"])])
    xs, ys, xt, yt = _curve_sets(data)
    n = min(500, len(xs), len(xt))
    panels = []
    for t in reversed(trainees):   # source-only first: "before" and "after" adaptation
        f = extract_features(t.model, np.concatenate([xs[:n], xt[:n]]))
        z = pca_2d(f)
        panels.append({"title": LABELS[t.name], "source": z[:n], "target": z[n:],
                       "source_labels": ys[:n], "target_labels": yt[:n]})
    classes = list(SOURCES[config["dataset"]].classes)
    viz.save_domain_projections(panels, out("features.png"), class_names=classes,
                                title=f"PCA of the features G_f(x) of {n} source and {n} target "
                                      f"test images")
    viz.save_image_grid(np.concatenate([xs[:10], xt[:10]]), out("domains.png"), nrow=10,
                        row_labels=["source", "target"],
                        title=f"the same test images in the source and the target "
                              f"({config['shift']}) domain")
    return written
