"""RBM: restricted Boltzmann machine by CD-k or persistent CD; filters, samples, AIS log-likelihood.

    minigen train rbm --dataset fashion-mnist --hidden 256 --epochs 10 --out runs/rbm
    minigen train rbm --k 10 --out runs/rbm-cd10          # CD-10
    minigen train rbm --pcd --out runs/rbm-pcd            # persistent CD
    minigen sample runs/rbm -n 64 --out samples.png       # long Gibbs chains

Images are binarised (pixel > 0.5) for Bernoulli visible units (the setting of the RBM
literature). Each epoch: a pass of CD-k updates (progress bar), reconstruction error and
pseudo-log-likelihood on train and test data in metrics.json/.csv, an atomic checkpoint,
the figures redrawn (filters, samples, chain evolution, curves). After the last epoch:
ln Z by annealed importance sampling and the test log-likelihood -F(v) - ln Z in nats.
"""
import time

import numpy as np

from ..options import below_one, natural, nonnegative, positive
from ..runs import CLIError, Run, check_finite_loss, progress
from . import _classical as C

FIGURES = ("filters.png", "samples.png", "chain.png", "curves.png")


def add_arguments(p):
    C.add_data_arguments(p, default="fashion-mnist")
    p.add_argument("--hidden", type=int, default=256, help="hidden units (default 256)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=positive, default=0.05, help="learning rate (default 0.05)")
    p.add_argument("--k", type=int, default=1, help="Gibbs steps per update: CD-k (default 1)")
    p.add_argument("--pcd", action="store_true", help="persistent contrastive divergence")
    p.add_argument("--momentum", type=below_one, default=0.5)
    p.add_argument("--weight-decay", type=nonnegative, default=1e-4)
    p.add_argument("--lr-schedule", default="constant", choices=("constant", "exponential"))
    p.add_argument("--visible", default="bernoulli", choices=("bernoulli", "gaussian"),
                   help="gaussian: real-valued (standardised) pixels")
    p.add_argument("--no-binarize", action="store_true",
                   help="Bernoulli units on grey levels instead of binarised pixels")
    p.add_argument("--ais-chains", type=int, default=100, help="AIS chains (default 100)")
    p.add_argument("--ais-betas", type=natural, default=10000,
                   help="AIS inverse temperatures (default 10000; 0 skips AIS)")
    p.add_argument("--gibbs-steps", type=int, default=1000,
                   help="Gibbs steps for the sample figures (default 1000)")
    p.add_argument("--eval-n", type=int, default=2000,
                   help="rows used for the per-epoch metrics (default 2000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/rbm", help="run folder (default runs/rbm)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")


def prepare(x, args, stats=None):
    """Binarise (Bernoulli) or standardise (Gaussian) the data; returns (x, stats)."""
    if args.visible == "gaussian":
        if stats is None:
            stats = (x.mean(0), x.std(0) + 1e-3)
        return ((x - stats[0]) / stats[1]).astype(np.float32), stats
    if args.no_binarize:
        return x.astype(np.float32), None
    return (x > 0.5).astype(np.float32), None


def build(args):
    from ..models.rbm import RBM
    return RBM(args.hidden, visible=args.visible, learning_rate=args.lr,
               batch_size=args.batch_size, n_epochs=args.epochs, k=args.k,
               persistent=args.pcd, momentum=args.momentum, weight_decay=args.weight_decay,
               lr_schedule=args.lr_schedule, random_state=args.seed)


def train(args):
    run = Run(args.out, resume=args.resume)
    x, _, xt, _, shape = C.load_data(args)
    x, stats = prepare(x, args)
    xt, _ = prepare(xt, args, stats)
    rbm = build(args).initialise(x)
    rbm._base_bias = rbm.base_visible_bias(x)
    start = _restore(run, rbm) if args.resume else 0
    ev, evt = x[:args.eval_n], xt[:args.eval_n]
    for epoch in range(start + 1, args.epochs + 1):
        t0 = time.perf_counter()
        bar = progress(total=-(-len(x) // args.batch_size), desc=f"epoch {epoch}/{args.epochs}")
        recon = rbm.train_epoch(x, progress=lambda it: _ticking(it, bar))
        bar.close()
        check_finite_loss(recon, epoch, name="reconstruction error")  # before the checkpoint
        record = {"epoch": epoch, "lr": rbm.current_learning_rate(), "train_recon": recon,
                  "test_recon": rbm.reconstruction_error(evt),
                  "seconds": time.perf_counter() - t0}
        if args.visible == "bernoulli":
            record["train_pseudo_ll"] = rbm.score(ev)
            record["test_pseudo_ll"] = rbm.score(evt)
        if epoch == args.epochs and args.ais_betas > 0:
            record.update(_ais(rbm, xt, args))
        run.log(**record)
        run.save_checkpoint(checkpoint_state(rbm, args, epoch, stats))
        print(_line(record, args.epochs), flush=True)
    written = draw_figures(rbm, run, shape, args)
    print(f"figures in {run.out}/: {', '.join(written)}")
    print(f"metrics in {run.path('metrics.json')} (and .csv); checkpoint {run.checkpoint_path}")


def _ticking(iterable, bar):
    for item in iterable:
        yield item
        bar.update(1)


def _ais(rbm, xt, args):
    t0 = time.perf_counter()
    log_z, lo, hi = rbm.log_partition_ais(n_chains=args.ais_chains, n_betas=args.ais_betas,
                                          return_bounds=True)
    return {"log_z_ais": log_z, "log_z_low": lo, "log_z_high": hi,
            "test_log_likelihood": rbm.log_likelihood(xt, log_z),
            "ais_seconds": time.perf_counter() - t0}


def _line(r, epochs):
    line = f"epoch {r['epoch']}/{epochs}  recon {r['train_recon']:.3f} (test {r['test_recon']:.3f})"
    if "train_pseudo_ll" in r:
        line += f"  pseudo-LL {r['train_pseudo_ll']:.2f} (test {r['test_pseudo_ll']:.2f})"
    if "test_log_likelihood" in r:
        line += (f"  AIS ln Z {r['log_z_ais']:.2f} [{r['log_z_low']:.2f}, {r['log_z_high']:.2f}]"
                 f"  test log p(v) {r['test_log_likelihood']:.2f} nats")
    return line + f"  [{r['seconds']:.1f} s]"


def draw_figures(rbm, run, shape, args):
    from .. import viz
    from ..models.rbm import plot_chain, plot_filters
    written = []
    if shape is not None:
        plot_filters(rbm, run.path("filters.png"), n=min(64, rbm.n_hidden), image_shape=shape)
        steps = max(args.gibbs_steps, 1)
        every = max(steps // 8, 1)
        final, snaps = rbm.sample(64, steps, record_every=every,
                                  rng=np.random.default_rng(args.seed))
        viz.save_image_grid(_show(final), run.path("samples.png"), nrow=8,
                            title=f"samples after {steps} Gibbs steps", image_shape=shape)
        recorded = [1] + [s for s in range(every, steps + 1, every)]
        plot_chain([_show(s) for s in snaps], recorded[:len(snaps)], run.path("chain.png"),
                   image_shape=shape)
        written += ["filters.png", "samples.png", "chain.png"]
    curves = {"train recon": run.series("train_recon"), "test recon": run.series("test_recon")}
    viz.save_curves(curves, run.path("curves.png"), ylabel="reconstruction error")
    written.append("curves.png")
    if run.series("train_pseudo_ll"):
        viz.save_curves({"train": run.series("train_pseudo_ll"),
                         "test": run.series("test_pseudo_ll")}, run.path("pseudo_ll.png"),
                        ylabel="pseudo-log-likelihood")
        written.append("pseudo_ll.png")
    return written


def _show(v):
    v = np.asarray(v)
    lo, hi = v.min(), v.max()
    return v if lo >= 0 and hi <= 1 else (v - lo) / max(hi - lo, 1e-12)


def checkpoint_state(rbm, args, epoch, stats):
    state = {"model": "rbm", "epoch": epoch, "rbm": rbm.state_dict(),
             "velocity": [np.asarray(v) for v in rbm._velocity],
             "rng": C.rng_state(rbm._rng), "dataset": args.dataset,
             "config": {"hidden": args.hidden, "visible": args.visible, "k": args.k,
                        "pcd": bool(args.pcd), "seed": args.seed}}
    if rbm._chain is not None:
        state["chain"] = np.asarray(rbm._chain)
    if stats is not None:
        state["stats"] = [np.asarray(stats[0]), np.asarray(stats[1])]
    return state


def _restore(run, rbm):
    state = run.load_checkpoint()
    C.check_model(state, "rbm", run.checkpoint_path)
    saved = state["rbm"]
    if tuple(np.shape(saved["W"])) != tuple(rbm.W.shape):
        raise CLIError(f"--resume: checkpoint W is {np.shape(saved['W'])}, the command's "
                       f"{rbm.W.shape}; use the same --hidden and --dataset")
    rbm.load_state_dict(saved)
    rbm._velocity = [np.asarray(v, np.float32) for v in state["velocity"]]
    rbm._chain = np.asarray(state["chain"], np.float32) if "chain" in state else None
    C.set_rng_state(rbm._rng, state["rng"])
    print(f"resuming {run.out} after epoch {rbm.epochs_}")
    return rbm.epochs_


def model_from_state(state, where):
    from ..models.rbm import RBM
    C.check_model(state, "rbm", where)
    saved = state["rbm"]
    rbm = RBM(int(saved["n_hidden"]), visible=C.text(saved["visible"]))
    return rbm.load_state_dict(saved)


def image_shape(state):
    """(1, H, W) for an RBM of images, None for one of points (the sampling contract)."""
    if C.text(state.get("dataset")) not in C.IMAGE_DATASETS:
        return None
    side = int(round(np.sqrt(np.shape(state["rbm"]["W"])[0])))
    return (1, side, side)


def draw(state, n, seed=0, device="cpu", steps=1000, chains=1000):
    """n samples from ``steps`` steps of block Gibbs sampling (``RBM.sample``: independent
    chains from random starts, the mean E[v | h] of the last step), flattened float32 (the
    sampling contract). Gaussian visible units are mapped back to pixel values (clipped to
    [0, 1] for images). The chains use a generator of their own, seeded by ``seed``, and run
    ``chains`` at a time (a progress bar counts them)."""
    from ..backend import check_device, to_device, to_numpy
    rbm = model_from_state(state, "checkpoint")
    if check_device(device) != "cpu":
        rbm.W, rbm.a, rbm.b = (to_device(p, device) for p in (rbm.W, rbm.a, rbm.b))
    gen = np.random.default_rng(seed)
    starts = range(0, n, chains)
    v = np.concatenate([to_numpy(rbm.sample(min(chains, n - s), steps, rng=gen)) for s in
                        progress(starts, total=len(starts), desc=f"Gibbs chains ({steps} steps)")])
    if "stats" in state:  # Gaussian visible units: back to pixel values
        v = v * np.asarray(state["stats"][1]) + np.asarray(state["stats"][0])
        if image_shape(state) is not None:
            v = np.clip(v, 0.0, 1.0)
    return v.reshape(n, -1).astype(np.float32)


def sample(args, state):
    """``minigen sample RUN``: n long Gibbs chains (1000 steps) from random starts."""
    from .. import viz
    model_from_state(state, args.checkpoint)  # a clear error for a checkpoint of another model
    if args.n < 1:
        raise CLIError(f"-n must be at least 1, got {args.n}")
    v = draw(state, args.n, args.seed)
    viz.save_image_grid(_show(v), args.out, nrow=int(np.ceil(np.sqrt(args.n))))
    print(f"wrote {args.n} samples to {args.out}")
