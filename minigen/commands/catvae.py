"""Categorical VAE: 20 categorical variables of 10 classes, trained through the Gumbel-softmax
(Jang et al. 2017; Maddison et al. 2017; seed 003) on Fashion-MNIST / MNIST.

    minigen train catvae                                  # 20 x 10 code, tau annealed 1 -> 0.5
    minigen train catvae --straight-through               # the decoder sees one-hot samples
    minigen train catvae --variables 30 --classes 10      # Jang et al.'s MNIST code size
    minigen train catvae --out runs/catvae --epochs 30 --resume    # continue a stopped run exactly
    minigen sample runs/catvae -n 64 --out samples.png    # codes drawn from the uniform prior

The temperature follows Jang et al.'s schedule tau = max(tau_min, tau0 exp(-r t)) of the global
step t, updated every N steps; the defaults tau0 = 1, tau_min = 0.5, r = 1e-4, N = 500 are in
the paper's grid (r in {1e-5, 1e-4}, N in {500, 1000}) and reach 0.5 after 7000 steps (12
epochs of 600 batches of 100). Adam lr 1e-3, as the paper.

Each epoch ends with a line on the terminal, a record in metrics.json/.csv -- the training loss
(relaxed samples, exact KL) and the *test* ELBO of the discrete model (one exact categorical
sample per image, exact KL: ``CategoricalVAE.discrete_elbo``) -- an atomic checkpoint and the
figures: samples from the prior, reconstructions through the most probable code, a code
traversal (each row sets one variable to each of its classes), the loss curves and the
temperature.
"""

import numpy as np

import minigen as mg

from ..options import positive, unit_interval
from ..runs import CLIError, Run, check_finite_loss
from . import _state
from .gan import _eval_rng

DATASETS = ("fashion-mnist", "mnist")
RESUME_KEYS = ("dataset", "image_shape", "hidden", "variables", "classes", "straight_through",
               "tau0", "tau_min", "anneal_rate", "anneal_every", "lr", "batch_size", "subset")
FIGURES = ("samples.png", "reconstructions.png", "code_traversal.png", "loss_curves.png",
           "temperature.png")


def add_arguments(p):
    p.add_argument("--dataset", default="fashion-mnist", choices=DATASETS,
                   help="training data (default fashion-mnist)")
    p.add_argument("--epochs", type=int, default=20, help="total epochs (default 20)")
    p.add_argument("--variables", type=int, default=20,
                   help="categorical variables in the code (default 20)")
    p.add_argument("--classes", type=int, default=10,
                   help="classes of each variable (default 10)")
    p.add_argument("--hidden", type=int, nargs=2, default=None, metavar=("H1", "H2"),
                   help="hidden widths of the encoder (the decoder mirrors them; default 512 256)")
    p.add_argument("--straight-through", action="store_true",
                   help="hard one-hot samples forward, the soft sample's gradient backward")
    g = p.add_argument_group("temperature: tau = max(tau_min, tau0 exp(-r t)), t the step "
                             "rounded down to a multiple of N")
    g.add_argument("--tau0", type=positive, default=1.0, help="initial temperature (default 1)")
    g.add_argument("--tau-min", type=positive, default=0.5, help="lowest temperature (default 0.5)")
    g.add_argument("--anneal-rate", type=unit_interval, default=1e-4, metavar="R",
                   help="r (default 1e-4; 0 keeps tau0)")
    g.add_argument("--anneal-every", type=int, default=500, metavar="N",
                   help="steps between temperature updates (default 500)")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--lr", type=positive, default=1e-3, help="Adam learning rate (default 1e-3)")
    _state.add_run_arguments(p, "catvae")


def config_from_args(args, image_shape):
    if args.classes < 2:
        raise CLIError(f"--classes must be at least 2 (a categorical variable of one class "
                       f"holds nothing), got {args.classes}")
    if args.tau_min > args.tau0:
        raise CLIError(f"--tau-min {args.tau_min} is above --tau0 {args.tau0}")
    return {"dataset": args.dataset, "image_shape": list(image_shape),
            "in_features": int(np.prod(image_shape)), "hidden": list(args.hidden or (512, 256)),
            "variables": args.variables, "classes": args.classes,
            "straight_through": bool(args.straight_through), "tau0": args.tau0,
            "tau_min": args.tau_min, "anneal_rate": args.anneal_rate,
            "anneal_every": args.anneal_every, "lr": args.lr, "batch_size": args.batch_size,
            "subset": args.subset, "seed": args.seed}


def tau_at(config, step):
    from ..models.catvae import temperature
    return temperature(step, config["tau0"], config["anneal_rate"], config["tau_min"],
                       config["anneal_every"])


# ============================================================== training
def train(args):
    from ..data import DataLoader
    from ..models.catvae import build_catvae
    from ..optim import Adam
    from .vae import load_data
    run = Run(args.out, resume=args.resume)
    x, y, xt, yt, classes, image_shape = load_data(args.dataset, args.subset)
    config = config_from_args(args, image_shape)
    _state.check_batch(len(x), config["batch_size"])
    mg.manual_seed(args.seed)
    model = build_catvae(config)
    device = _state.to_device(args.device, model)
    optimizer = Adam(model.parameters(), lr=config["lr"])
    loader = DataLoader((x, y), batch_size=config["batch_size"], shuffle=True, drop_last=True,
                        seed=args.seed)
    modules, opts = {"params": model}, {"optimizer": optimizer}
    begun = _state.start_or_resume(
        run, args, "catvae", config, RESUME_KEYS, loader, modules, opts,
        f"categorical VAE, {config['variables']} variables of {config['classes']} classes"
        f"{' (straight-through)' if config['straight_through'] else ''}, on "
        f"{config['dataset']}: {args.epochs} epochs of {len(loader)} steps, tau from "
        f"{config['tau0']:g} to {config['tau_min']:g}")
    if begun is None:
        return
    first, steps, trace = begun

    def step(xb, _, taken):
        """One Adam step on the relaxed negative ELBO at the scheduled temperature."""
        tau = tau_at(config, taken)
        parts = model.elbo_parts(xb.to(device), tau, hard=config["straight_through"])
        optimizer.zero_grad()
        parts["loss"].backward()
        optimizer.step()
        return {**parts, "tau": np.float64(tau)}

    def epoch(n):
        nonlocal steps
        model.train()
        tr, steps = _state.train_batches(
            loader, step, trace, steps, n, f"epoch {n}/{args.epochs}",
            {"loss": ("loss", "{:.1f}"), "KL": ("kl", "{:.1f}"), "tau": ("tau", "{:.3f}")})
        te = evaluate(model, xt, seed=args.seed, device=device)
        check_finite_loss(te["test_neg_elbo"], n, name="test -ELBO")
        del tr["train_tau"]
        return {**tr, "tau": tau_at(config, steps), **te}

    _state.run_epochs(
        run, args, first, epoch,
        lambda n: _state.checkpoint_state("catvae", config, n, run, loader, modules, opts,
                                          trace, steps=steps),
        lambda: draw_figures(model, run, xt, config, trace, seed=args.seed, device=device),
        lambda r: _epoch_line(r, args.epochs))


def _epoch_line(r, epochs):
    return (f"epoch {r['epoch']}/{epochs}  train loss {r['train_loss']:.2f} (recon "
            f"{r['train_recon']:.2f} + KL {r['train_kl']:.2f}, relaxed, tau {r['tau']:.3f})  "
            f"test -ELBO {r['test_neg_elbo']:.2f} nats (discrete: recon {r['test_recon']:.2f}"
            f" + KL {r['test_kl']:.2f})  [{r['seconds']:.1f} s]")


def evaluate(model, xt, seed=0, device="cpu", batch_size=1000):
    """The test set's negative ELBO of the discrete model (``discrete_elbo``: one exact sample
    per image, noise from a generator of its own), and its two parts, in nats per image."""
    from ..models.catvae import kl_categorical_uniform
    from ..ops.random import standard_gumbel
    gen = _eval_rng(seed, 1)
    elbo = kl = 0.0
    with mg.no_grad():
        for s in range(0, len(xt), batch_size):
            xb = mg.tensor(xt[s:s + batch_size], device=device)
            noise = standard_gumbel((len(xb), model.variables, model.classes), xb.dtype,
                                    generator=gen).to(device)
            elbo += float(model.discrete_elbo(xb, noise).sum().item())
            kl += float(kl_categorical_uniform(model.encode(xb)).sum().item())
    n = len(xt)
    return {"test_neg_elbo": -elbo / n, "test_recon": (-elbo - kl) / n, "test_kl": kl / n}


# ============================================================== figures
def _decode(model, codes, device):
    """One-hot codes (B, N, K) as an array -> mean images (B, D) as a NumPy array."""
    with mg.no_grad():
        return model.decode(mg.tensor(np.asarray(codes, np.float32), device=device)) \
            .sigmoid().numpy()


def prior_codes(n, variables, classes, gen):
    """n codes from the uniform prior: every variable an independent uniform class, one-hot."""
    return np.eye(classes, dtype=np.float32)[gen.integers(0, classes, (n, variables))]


def draw_figures(model, run, xt, config, trace, seed=0, device="cpu"):
    """Write every figure of the run; returns the file names written."""
    from .. import viz
    shape, n_vars, k = tuple(config["image_shape"]), config["variables"], config["classes"]
    written = []

    def out(name):
        written.append(name)
        return run.path(name)

    gen = _eval_rng(seed, 3)  # the same codes every epoch: the figures show learning
    viz.save_image_grid(_decode(model, prior_codes(64, n_vars, k, gen), device),
                        out("samples.png"), nrow=8, image_shape=shape,
                        title="samples: codes from the uniform prior, decoded")
    x32 = xt[:32]
    with mg.no_grad():
        logits = model.encode(mg.tensor(x32, device=device)).numpy()
    best = np.eye(k, dtype=np.float32)[logits.argmax(-1)]          # the most probable code
    viz.save_reconstructions(x32, _decode(model, best, device), out("reconstructions.png"),
                             image_shape=shape,
                             title="test images and their reconstructions through the most "
                                   "probable code argmax q(y | x)")
    # traversal: from the first test image's code, variable n takes each class in turn
    rows = min(n_vars, 20)
    codes = np.repeat(best[:1], rows * k, axis=0).reshape(rows, k, n_vars, k)
    for n in range(rows):
        codes[n, :, n, :] = np.eye(k, dtype=np.float32)
    viz.save_labelled_rows(_decode(model, codes.reshape(-1, n_vars, k), device), k,
                           out("code_traversal.png"), col_labels=[str(c) for c in range(k)],
                           row_labels=[f"y{n}" for n in range(rows)], image_shape=shape,
                           xlabel="class of the variable",
                           title="code traversal: row n sets variable y_n to each class, the "
                                 "others as in the first test image's code")
    viz.save_curves({"train loss (relaxed, tau annealed)": run.series("train_loss"),
                     "test -ELBO (discrete)": run.series("test_neg_elbo")}, out("loss_curves.png"),
                    ylabel="nats per image", title="negative ELBO")
    viz.save_step_curves(trace.get("step", []), {"tau": trace.get("tau", [])},
                         out("temperature.png"), xlabel="step", ylabel="temperature",
                         title="the Gumbel-softmax temperature", smooth=1)
    return written


# ============================================================== the sampling contract
def _model(state, where="checkpoint"):
    from ..models.catvae import build_catvae
    (model,), config = _state.rebuild(state, "catvae", where, lambda c: (build_catvae(c),),
                                      ("params",))
    return model.eval(), config


def draw(state, n, seed=0, device="cpu", batch_size=1000):
    """``n`` mean images sigmoid(dec(y)) of codes y from the uniform prior: float32 (n, D) in
    [0, 1]. The codes come from a generator seeded by ``seed`` (minigen's stream stays)."""
    model, config = _model(state)
    device = _state.to_device(device, model)
    codes = prior_codes(n, config["variables"], config["classes"], np.random.default_rng(seed))
    if n == 0:
        return np.zeros((0, config["in_features"]), np.float32)
    return np.concatenate([_decode(model, codes[s:s + batch_size], device)
                           for s in range(0, n, batch_size)]).astype(np.float32)


image_shape = _state.image_shape  # (C, H, W) of the decoded images (the sampling contract)


def sample(args, state):
    """``minigen sample RUN -n N --out FILE.png``: a grid of samples (see ``draw``)."""
    _state.sample_grid(args, state, draw)
