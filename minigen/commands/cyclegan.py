"""CycleGAN: unpaired translation between two classes of Fashion-MNIST (sneakers <-> ankle boots).

    minigen train cyclegan                                   # Sneaker <-> Ankle boot
    minigen train cyclegan --domains Shirt Pullover --out runs/shirts
    minigen train cyclegan --out runs/cyclegan --epochs 12 --resume
    minigen sample runs/cyclegan -n 16 --out translations.png     # test images translated
    minigen sample runs/cyclegan -n 1000 --format npy --out gx.npy   # G(x), flattened

The two domains are two classes of the training set, unpaired: domain X takes its images
from the first half of the training set, domain Y from the second half, so no garment is
seen in both (and nothing tells the model which sneaker "goes with" which boot). Zhu et al.
2017's recipe (``minigen/models/cyclegan/``): LSGAN adversarial losses, cycle consistency
(lambda 10), identity loss (0.5 lambda), Adam(2e-4, betas 0.5 / 0.999), a history of 50
generated images per discriminator, the learning rate constant for the first half of the
epochs and falling linearly to 0 over the second; networks scaled to 28x28 (a ResNet
generator of width 8 with 3 residual blocks at 7x7, a PatchGAN discriminator scoring 49
patches of 18x18 pixels).

An epoch is one pass over the larger of the two domains (the smaller one is cycled), in
batches of 16 from each. Each epoch ends with the test set's cycle errors |F(G(x)) - x|
and |G(F(y)) - y| (mean absolute pixel difference, pixels in [0, 1]) over every test image
of the two classes, and the shipped Fashion-MNIST classifier's view (``minigen.metrics``):
the fraction of translated test images it assigns to the target class. Then a line, a
record in metrics.json/.csv, an atomic checkpoint (the four networks, both optimizers, both
image pools, both loaders' positions, the random generators, the curves) and the figures:
``translations.png`` (x -> G(x) -> F(G(x)) and y -> F(y) -> G(F(y)) on fixed test images),
``evolution.png`` (the same test images translated after each epoch), ``losses.png`` and
``cycle_losses.png`` (per iteration).

``minigen sample`` translates test images: the PNG holds, for ``-n`` test images of each
domain (chosen by ``--seed``), the rows x, G(x), F(G(x)) and y, F(y), G(F(y)). ``draw`` (and
``--format npy``, ``minigen eval``) returns G(x) for test images of domain X: a CycleGAN
has no noise to sample from, its outputs are translations, and G(X) is the distribution
it was trained to make look like Y.
"""
import json
import time

import numpy as np

import minigen as mg

from ..options import below_one, natural, nonnegative, positive
from ..runs import (CLIError, Run, announce_resume, check_finite_loss, checkpoint_for_resume,
                    progress)
from . import _state
from .gan import _eval_rng, _one_line, _pick_panels, _text, _to_unit

DATASETS = ("fashion-mnist", "mnist")
DEFAULT_DOMAINS = ("Sneaker", "Ankle boot")
# settings a resumed run must share with its checkpoint (all but how long to train)
RESUME_KEYS = ("dataset", "domains", "image_shape", "width", "blocks", "d_width", "batch_size",
               "lr", "betas", "cycle_weight", "identity", "pool_size", "decay_epochs", "subset")
FIGURES = ("translations.png", "evolution.png", "losses.png", "cycle_losses.png")
BETAS = (0.5, 0.999)  # Adam's, the paper's (as DCGAN's)
SHOWN = 8  # fixed test images per direction in the figures


def add_arguments(p):
    p.add_argument("--dataset", default="fashion-mnist", choices=DATASETS,
                   help="where the two domains come from (default fashion-mnist)")
    p.add_argument("--domains", nargs=2, default=list(DEFAULT_DOMAINS), metavar=("X", "Y"),
                   help="the two classes to translate between, by name or index "
                        "(default: Sneaker 'Ankle boot')")
    p.add_argument("--epochs", type=int, default=10, help="total epochs (default 10)")
    p.add_argument("--decay-epochs", type=natural, default=None,
                   help="the learning rate falls linearly to 0 over the last N epochs "
                        "(default: half of --epochs, as the paper's 100 + 100)")
    p.add_argument("--width", type=int, default=8,
                   help="generator base channels (default 8; the paper: 64)")
    p.add_argument("--blocks", type=int, default=3,
                   help="residual blocks in each generator (default 3; the paper: 6 or 9)")
    p.add_argument("--d-width", type=int, default=8,
                   help="discriminator base channels (default 8; the paper: 64)")
    p.add_argument("--batch-size", type=int, default=16,
                   help="images of each domain per step (default 16; the paper: 1)")
    p.add_argument("--lr", type=positive, default=2e-4, help="Adam learning rate (default 2e-4)")
    p.add_argument("--betas", type=below_one, nargs=2, default=None, metavar=("B1", "B2"),
                   help="Adam's betas (default 0.5 0.999)")
    p.add_argument("--cycle-weight", type=nonnegative, default=10.0,
                   help="lambda, the weight of the cycle-consistency loss (default 10)")
    p.add_argument("--identity", type=nonnegative, default=0.5,
                   help="weight of the identity loss as a fraction of lambda (default 0.5; "
                        "0: off)")
    p.add_argument("--pool-size", type=natural, default=50,
                   help="generated images kept for the discriminators (default 50; 0: off)")
    _state.add_run_arguments(p, "cyclegan")


# ============================================================== data and settings
def class_index(name, classes):
    """A class given by index or by name (case and '-'/'_' ignored) -> its index."""
    if name.isdigit() and int(name) < len(classes):
        return int(name)
    wanted = name.lower().replace("-", " ").replace("_", " ")
    for k, c in enumerate(classes):
        if c.lower() == wanted:
            return k
    raise CLIError(f"--domains: no class {name!r}; the classes are "
                   f"{', '.join(f'{k} {c!r}' for k, c in enumerate(classes))}")


def load_domains(dataset, domains, subset=None):
    """{"X": (train, test), "Y": (train, test)} images as float32 rows in [-1, 1], and the
    two class indices. X's training images come from the first half of the training set,
    Y's from the second: unpaired, no garment in both."""
    from ..data import SOURCES
    from . import load_images
    classes = tuple(SOURCES[dataset].classes)
    a, b = (class_index(d, classes) for d in domains)
    if a == b:
        raise CLIError(f"--domains: X and Y are the same class ({classes[a]!r})")
    x, y, xt, yt = load_images(dataset, subset)
    half = len(x) // 2
    first, second = np.arange(len(x)) < half, np.arange(len(x)) >= half
    scale = lambda images: (2 * images - 1).astype(np.float32)  # noqa: E731  tanh's range
    data = {"X": (scale(x[(y == a) & first]), scale(xt[yt == a])),
            "Y": (scale(x[(y == b) & second]), scale(xt[yt == b]))}
    return data, (a, b), classes


def config_from_args(args, domains, classes):
    epochs = args.epochs
    decay = args.decay_epochs if args.decay_epochs is not None else epochs // 2
    return {"dataset": args.dataset, "domains": list(domains),
            "domain_names": [classes[d] for d in domains], "image_shape": [1, 28, 28],
            "width": args.width, "blocks": args.blocks, "d_width": args.d_width,
            "batch_size": args.batch_size, "lr": args.lr, "betas": list(args.betas or BETAS),
            "cycle_weight": args.cycle_weight, "identity": args.identity,
            "pool_size": args.pool_size, "decay_epochs": decay, "subset": args.subset,
            "seed": args.seed}


def _weights(config):
    from ..models.cyclegan import Weights
    return Weights(cycle=config["cycle_weight"], identity=config["identity"])


def build(config, device="cpu"):
    """The four networks and the two optimizers (Adam over G and F, Adam over D_X and D_Y)."""
    from ..models.cyclegan import build_cyclegan
    from ..optim import Adam
    nets = build_cyclegan(config)
    if device != "cpu":
        for net in nets.values():
            net.to(device)
    betas = tuple(config["betas"])
    opt_G = Adam([p for k in ("G", "F") for p in nets[k].parameters()], config["lr"], betas)
    opt_D = Adam([p for k in ("D_X", "D_Y") for p in nets[k].parameters()], config["lr"], betas)
    return nets, opt_G, opt_D


def nets_from_checkpoint(state, where, device="cpu"):
    """G and F of a CycleGAN checkpoint, in evaluation mode, or a clear CLIError."""
    from ..models.cyclegan import build_cyclegan
    if _text(state.get("model")) != "cyclegan":
        raise CLIError(f"{where}: checkpoint is of model {_text(state.get('model'))!r}, "
                       f"not 'cyclegan'")
    rng_state = mg.get_rng_state()  # building the networks draws initial weights: undo that
    try:
        config = json.loads(_text(state["config"]))
        nets = build_cyclegan(config)
        for name in ("G", "F"):
            nets[name].load_state_dict(state[name])
    except (KeyError, ValueError, TypeError, RuntimeError) as e:
        raise CLIError(f"{where}: not a usable CycleGAN checkpoint ({_one_line(e)})") from None
    finally:
        mg.set_rng_state(rng_state)
    if device != "cpu":
        for name in ("G", "F"):
            nets[name].to(device)
    return nets["G"].eval(), nets["F"].eval(), config


# ============================================================== training
def train(args):
    from ..data import DataLoader
    from ..models.cyclegan import ImagePool, lr_factor
    run = Run(args.out, resume=args.resume)
    data, domains, classes = load_domains(args.dataset, args.domains, args.subset)
    config = config_from_args(args, domains, classes)
    if config["decay_epochs"] > args.epochs:
        raise CLIError(f"--decay-epochs {config['decay_epochs']} is more than --epochs "
                       f"{args.epochs}")
    for key, name in zip("XY", config["domain_names"]):
        train_x, test_x = data[key]
        if len(train_x) < args.batch_size or len(test_x) == 0:
            raise CLIError(f"domain {key} ({name!r}) has {len(train_x)} training and "
                           f"{len(test_x)} test images: fewer than one batch of "
                           f"{args.batch_size}, or none to test on; lower --batch-size or "
                           f"raise --subset")
    device = mg.backend.check_device(args.device)
    mg.manual_seed(args.seed)
    nets, opt_G, opt_D = build(config, device)
    loaders = {k: DataLoader(data[k][0], batch_size=args.batch_size, shuffle=True,
                             drop_last=True, seed=args.seed + i) for i, k in enumerate("XY")}
    pools = {"fake_x": ImagePool(args.pool_size, seed=[args.seed, 1]),
             "fake_y": ImagePool(args.pool_size, seed=[args.seed, 2])}
    state = {"iterations": 0, "trace": {}, "panels": []}

    start = 0
    if args.resume:
        start = _restore(run, nets, opt_G, opt_D, loaders, pools, config, state, device)
        if not announce_resume(run, start, args.epochs):
            return
    else:
        print(_describe(config, nets, args.epochs, loaders, data))

    for epoch in range(start + 1, args.epochs + 1):
        t0 = time.perf_counter()
        lr = config["lr"] * lr_factor(epoch - 1, args.epochs - config["decay_epochs"],
                                      config["decay_epochs"])
        for opt in (opt_G, opt_D):
            for group in opt.param_groups:
                group["lr"] = lr
        record = {"epoch": epoch, "lr": lr,
                  **train_epoch(nets, opt_G, opt_D, pools, loaders, config, state, device,
                                epoch, desc=f"epoch {epoch}/{args.epochs}")}
        record.update(test_metrics(nets["G"], nets["F"], data, config, device))
        for key in ("cycle_error_X", "cycle_error_Y"):
            check_finite_loss(record[key], epoch, name=f"test {key}")
        state["panels"].append(_panel(nets["G"], nets["F"], data, epoch, device))
        record["seconds"] = time.perf_counter() - t0
        run.log(**record)
        run.save_checkpoint(checkpoint_state(nets, opt_G, opt_D, pools, loaders, config, epoch,
                                             run, state))
        print(_epoch_line(record, args.epochs, config), flush=True)
        every = args.figures_every
        if every > 0 and (epoch == args.epochs or epoch % every == 0):
            written = draw_figures(nets["G"], nets["F"], run, data, config, state, device)
    if args.figures_every > 0:
        print(f"figures in {run.out}/: {', '.join(written)}")
    print(f"metrics in {run.path('metrics.json')} (and .csv); checkpoint {run.checkpoint_path}")


def _describe(config, nets, epochs, loaders, data):
    from ..models.cyclegan.nets import count_parameters
    x_name, y_name = config["domain_names"]
    steps = max(len(loader) for loader in loaders.values())
    decay = (f" falling to 0 over the last {config['decay_epochs']} epochs"
             if config["decay_epochs"] else " (constant)")
    return (f"CycleGAN {x_name} (X, {len(data['X'][0])} images) <-> {y_name} (Y, "
            f"{len(data['Y'][0])} images) on {config['dataset']}: G and F "
            f"{count_parameters(nets['G'])} weights each (width {config['width']}, "
            f"{config['blocks']} blocks), D_X and D_Y {count_parameters(nets['D_X'])} each; "
            f"{epochs} epoch{'s' if epochs > 1 else ''} of {steps} steps of "
            f"{config['batch_size']} + {config['batch_size']} images, lr {config['lr']:g}"
            f"{decay}; cycle weight {config['cycle_weight']:g}, identity "
            f"{config['identity']:g} of it, pool {config['pool_size']}")


def _next_batch(loader, device):
    """The next batch of ``loader``, starting a new pass when one ends (the smaller domain is
    cycled); the loader's counters say where it is, so a resumed run continues exactly."""
    return next(iter(loader)).to(device)


def train_epoch(nets, opt_G, opt_D, pools, loaders, config, state, device, epoch=1,
                desc="epoch"):
    """One epoch: a pass over the larger domain, one CycleGAN iteration per batch pair.
    ``state`` (iterations, trace) is updated in place. Returns the epoch's mean losses."""
    from ..models.cyclegan import cyclegan_step
    weights = _weights(config)
    steps = max(len(loader) for loader in loaders.values())
    trace_every = max(1, steps // 50)  # ~50 points per epoch on the curves
    sums = {}
    for net in nets.values():
        net.train()
    bar = progress(range(1, steps + 1), total=steps, desc=desc)
    for step in bar:
        x, y = _next_batch(loaders["X"], device), _next_batch(loaders["Y"], device)
        out = cyclegan_step(nets, opt_G, opt_D, pools, x, y, weights)
        state["iterations"] += 1
        # the one place where the losses become numbers; a NaN/inf stops the run here, before
        # the epoch's checkpoint is written, so the last good checkpoint stays untouched
        numbers = {key: check_finite_loss(value.item(), epoch, step, name=key)
                   for key, value in out.items()}
        for key, value in numbers.items():
            sums[key] = sums.get(key, 0.0) + value
        if state["iterations"] % trace_every == 0:
            for key, value in numbers.items():
                state["trace"].setdefault(key, []).append(value)
            state["trace"].setdefault("iteration", []).append(state["iterations"])
            bar.set_postfix({"G": f"{numbers['g_loss']:.3f}", "D": f"{numbers['d_loss']:.3f}",
                             "cyc": f"{numbers['cycle_X'] + numbers['cycle_Y']:.3f}"})
    return {key: total / steps for key, total in sums.items()}


def _epoch_line(r, epochs, config):
    x_name, y_name = config["domain_names"]
    line = (f"epoch {r['epoch']}/{epochs}  G+F loss {r['g_loss']:.3f}  D loss {r['d_loss']:.3f}  "
            f"test cycle error X {r['cycle_error_X']:.4f}  Y {r['cycle_error_Y']:.4f}")
    if "as_target_X" in r:
        line += (f"  classifier: G(x) '{y_name}' {100 * r['as_target_X']:.1f}%, "
                 f"F(y) '{x_name}' {100 * r['as_target_Y']:.1f}%")
    return line + f"  [{r['seconds']:.1f} s]"


# ============================================================== evaluation
def translate(net, images, device, batch_size=500):
    """net(images) in evaluation mode, as a NumPy array, in batches (no graph)."""
    was_training = net.training
    net.eval()
    try:
        with mg.no_grad():
            return np.concatenate([net(mg.tensor(images[s:s + batch_size], device=device)).numpy()
                                   for s in range(0, len(images), batch_size)])
    finally:
        net.train(was_training)


def test_metrics(G, F, data, config, device):
    """Cycle errors on every test image of both domains, mean |F(G(x)) - x| per pixel with
    pixels in [0, 1] (half the error in G's [-1, 1] range), identity errors |G(y) - y| and
    |F(x) - x| likewise; on Fashion-MNIST also the classifier's view: the fraction of G(x)
    it calls class Y (``as_target_X``) and of F(y) it calls class X (``as_target_Y``), and
    the same fractions for the untranslated images (``originals_as_target_*``), for scale."""
    x, y = data["X"][1], data["Y"][1]
    gx, fy = translate(G, x, device), translate(F, y, device)
    out = {"cycle_error_X": float(np.abs(translate(F, gx, device) - x).mean() / 2),
           "cycle_error_Y": float(np.abs(translate(G, fy, device) - y).mean() / 2),
           "identity_error_G": float(np.abs(translate(G, y, device) - y).mean() / 2),
           "identity_error_F": float(np.abs(translate(F, x, device) - x).mean() / 2)}
    if config["dataset"] == "fashion-mnist":
        a, b = config["domains"]
        out.update(as_target_X=_fraction_called(gx, b), as_target_Y=_fraction_called(fy, a),
                   originals_as_target_X=_fraction_called(x, b),
                   originals_as_target_Y=_fraction_called(y, a))
    return out


def _fraction_called(images, label):
    """The fraction of ``images`` (rows in [-1, 1]) the shipped classifier assigns to ``label``."""
    from ..metrics.classifier import predict_logits
    from ..metrics.features import feature_network
    logits = predict_logits(feature_network("cpu"), _to_unit(images))
    return float(np.mean(logits.argmax(axis=1) == label))


# ============================================================== checkpoints
def checkpoint_state(nets, opt_G, opt_D, pools, loaders, config, epoch, run, state):
    """Everything a resumed run needs to continue bit for bit."""
    return {"model": "cyclegan", "config": json.dumps(config), "epoch": epoch,
            **{name: net.state_dict() for name, net in nets.items()},
            "opt_G": opt_G.state_dict(), "opt_D": opt_D.state_dict(),
            "pools": {k: pool.state_dict() for k, pool in pools.items()},
            "loaders": {k: loader.state_dict() for k, loader in loaders.items()},
            "rng": json.dumps(mg.get_rng_state()), "iterations": state["iterations"],
            "trace": {k: np.asarray(v, dtype=np.float64) for k, v in state["trace"].items()},
            "panels": state["panels"], "history": json.dumps(run.history)}


def _restore(run, nets, opt_G, opt_D, loaders, pools, config, state, device):
    """Load the checkpoint in ``run`` into the fresh objects; return its epoch."""
    ckpt = checkpoint_for_resume(run, "cyclegan", config, RESUME_KEYS)
    try:
        for name, net in nets.items():
            net.load_state_dict(ckpt[name])
        opt_G.load_state_dict(ckpt["opt_G"])
        opt_D.load_state_dict(ckpt["opt_D"])
        for k, pool in pools.items():
            pool.load_state_dict(ckpt["pools"][k], device)
        for k, loader in loaders.items():
            loader.load_state_dict(ckpt["loaders"][k])
    except (KeyError, ValueError, RuntimeError) as e:
        raise CLIError(f"--resume: {run.checkpoint_path} does not fit these networks "
                       f"({_one_line(e)})") from None
    mg.set_rng_state(json.loads(_text(ckpt["rng"])))
    state["iterations"] = int(ckpt["iterations"])
    state["trace"] = {k: [float(v) for v in np.asarray(a)] for k, a in ckpt["trace"].items()}
    state["panels"] = [{"epoch": int(p["epoch"]), "gx": np.asarray(p["gx"]),
                        "fy": np.asarray(p["fy"])} for p in ckpt["panels"]]
    run.history = json.loads(_text(ckpt["history"]))
    return int(ckpt["epoch"])


# ============================================================== figures
def _shown(data):
    """The fixed test images of the figures: the first SHOWN of each domain's test set."""
    return data["X"][1][:SHOWN], data["Y"][1][:SHOWN]


def _panel(G, F, data, epoch, device):
    """This epoch's translations of the fixed test images (for evolution.png)."""
    x, y = _shown(data)
    return {"epoch": epoch, "gx": _to_unit(translate(G, x, device)),
            "fy": _to_unit(translate(F, y, device))}


def cycle_rows(G, F, x, y, device):
    """(images, row labels): x, G(x), F(G(x)) then y, F(y), G(F(y)), pixels in [0, 1]."""
    gx, fy = translate(G, x, device), translate(F, y, device)
    rows = [x, gx, translate(F, gx, device), y, fy, translate(G, fy, device)]
    return np.concatenate([_to_unit(r) for r in rows])


def draw_figures(G, F, run, data, config, state, device):
    """Write every figure of the run; returns the file names written."""
    from .. import viz
    written = []

    def out(name):
        written.append(name)
        return run.path(name)

    x_name, y_name = config["domain_names"]
    x, y = _shown(data)
    labels = ["x", "G(x)", "F(G(x))", "y", "F(y)", "G(F(y))"]
    viz.save_image_grid(cycle_rows(G, F, x, y, device), out("translations.png"), nrow=len(x),
                        row_labels=labels,
                        title=f"X = {x_name}, Y = {y_name}: translation and cycle back "
                              f"(test images)")
    panels = _pick_panels(state["panels"], most=10)
    grid = [np.concatenate([_to_unit(x), _to_unit(y)])]
    grid += [np.concatenate([p["gx"], p["fy"]]) for p in panels]
    viz.save_image_grid(np.concatenate(grid), out("evolution.png"), nrow=len(x) + len(y),
                        row_labels=["input"] + [f"epoch {p['epoch']}" for p in panels],
                        title=f"left: G(x), {x_name} -> {y_name}; right: F(y), "
                              f"{y_name} -> {x_name}; after each epoch")
    trace, steps = state["trace"], state["trace"].get("iteration", [])
    viz.save_step_curves(steps, {"D_X": trace.get("d_X", []), "D_Y": trace.get("d_Y", []),
                                 "G adversarial": trace.get("adv_G", []),
                                 "F adversarial": trace.get("adv_F", [])},
                         out("losses.png"), xlabel="iteration",
                         title="LSGAN losses (faint: raw, bold: moving average)")
    viz.save_step_curves(steps, {"|F(G(x)) - x|": trace.get("cycle_X", []),
                                 "|G(F(y)) - y|": trace.get("cycle_Y", []),
                                 "|G(y) - y|": trace.get("identity_G", []),
                                 "|F(x) - x|": trace.get("identity_F", [])},
                         out("cycle_losses.png"), xlabel="iteration",
                         ylabel="mean |difference| in [-1, 1] units",
                         title="cycle-consistency and identity losses (training batches)")
    return written


# ============================================================== sampling
def _test_domain(config, key):
    """The test images of domain ``key`` ("X" or "Y") of a run, rows in [-1, 1]."""
    data, _, _ = load_domains(config["dataset"], [str(d) for d in config["domains"]])
    return data[key][1]


def draw(state, n, seed=0, device="cpu"):
    """``n`` translations G(x) of test images x of domain X (float32 (n, 784), pixels in
    [0, 1]): the test images in an order drawn from ``seed``, repeated when ``n`` exceeds
    them. Deterministic; minigen's random stream is not touched."""
    G, _, config = nets_from_checkpoint(state, "checkpoint", mg.backend.check_device(device))
    x = _test_domain(config, "X")
    order = np.random.default_rng(seed).permutation(len(x))
    index = np.resize(order, n)
    if n == 0:
        return np.zeros((0, x.shape[1]), np.float32)
    return _to_unit(translate(G, x[index], device))


def image_shape(state):
    return tuple(json.loads(_text(state["config"]))["image_shape"])


def sample(args, state):
    """``minigen sample RUN -n N --out FILE.png``: N test images of each domain (drawn by
    --seed), with their translations and cycles: rows x, G(x), F(G(x)), y, F(y), G(F(y))."""
    from .. import viz
    if args.n < 1:
        raise CLIError(f"-n must be at least 1, got {args.n}")
    device = mg.backend.check_device(args.device)
    G, F, config = nets_from_checkpoint(state, "checkpoint", device)
    gen = _eval_rng(args.seed, 1)
    picked = []
    for key in "XY":
        images = _test_domain(config, key)
        picked.append(images[gen.choice(len(images), min(args.n, len(images)), replace=False)])
    m = min(len(p) for p in picked)
    nrow = min(m, 8)
    blocks, labels = [], []
    for s in range(0, m, nrow):
        chunk = cycle_rows(G, F, picked[0][s:s + nrow], picked[1][s:s + nrow], device)
        if len(chunk) < 6 * nrow:  # a last, shorter chunk: pad its rows with blank images
            chunk = np.concatenate([np.concatenate([r, np.ones((nrow - len(r), r.shape[1]))])
                                    for r in np.split(chunk, 6)])
        blocks.append(chunk)
        labels += ["x", "G(x)", "F(G(x))", "y", "F(y)", "G(F(y))"]
    x_name, y_name = config["domain_names"]
    viz.save_image_grid(np.concatenate(blocks), args.out, nrow=nrow, row_labels=labels,
                        title=f"X = {x_name}, Y = {y_name}")
    print(f"wrote {m} test images of each domain, translated and cycled back, to {args.out}")
