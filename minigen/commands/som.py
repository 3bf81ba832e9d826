"""SOM: Kohonen self-organising map (colours or images); U-matrix, hit map, evolution.

    minigen train som --dataset colours --rows 20 --cols 20 --epochs 30 --out runs/som
    minigen train som --dataset fashion-mnist --mode batch --epochs 20 --out runs/som-fm
    minigen train som --metric manhattan --neighbourhood bubble --topology hexagonal

Each epoch: one pass (online: sample by sample, batch: one update), quantisation and
topographic errors on train and test data logged to metrics.json/.csv, an atomic
checkpoint, and the map redrawn. Snapshots of the map after epochs 10, 20 and 30 (as in
the lecture's figure) go into evolution.png.
"""
import time

import numpy as np

from ..options import nonnegative, positive
from ..runs import CLIError, Run, check_finite_loss, progress
from . import _classical as C

SNAPSHOT_EPOCHS = (1, 10, 20, 30)


def add_arguments(p):
    C.add_data_arguments(p, default="colours")
    p.add_argument("--rows", type=int, default=20)
    p.add_argument("--cols", type=int, default=20)
    p.add_argument("--epochs", type=int, default=30, help="total epochs (default 30)")
    p.add_argument("--mode", default="online", choices=("online", "batch"))
    p.add_argument("--metric", default="euclidean",
                   choices=("euclidean", "dot", "manhattan", "supremum"))
    p.add_argument("--neighbourhood", default="gaussian", choices=("gaussian", "bubble"))
    p.add_argument("--topology", default="rectangular", choices=("rectangular", "hexagonal"))
    p.add_argument("--lr", type=positive, default=0.5, help="alpha0 (default 0.5)")
    p.add_argument("--lr-final", type=positive, default=0.01, help="alpha at the end (0.01)")
    p.add_argument("--sigma", type=nonnegative, default=None,
                   help="initial neighbourhood width (default max(rows, cols)/2; 0 = WTA)")
    p.add_argument("--sigma-final", type=nonnegative, default=1.0)
    p.add_argument("--init", default="sample", choices=("sample", "random", "pca"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/som", help="run folder (default runs/som)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")


def build(args):
    from ..models.som import SOM
    return SOM(args.rows, args.cols, topology=args.topology, metric=args.metric,
               neighbourhood=args.neighbourhood, learning_rate=args.lr,
               learning_rate_final=args.lr_final, sigma=args.sigma,
               sigma_final=args.sigma_final, mode=args.mode, n_epochs=args.epochs,
               init=args.init, random_state=args.seed)


def train(args):
    run = Run(args.out, resume=args.resume)
    x, y, xt, yt, shape = C.load_data(args)
    som = build(args).initialise(x, total_epochs=args.epochs)
    start = _restore(run, som) if args.resume else 0
    snapshots = {}
    for epoch in range(start + 1, args.epochs + 1):
        t0 = time.perf_counter()
        qe = check_finite_loss(_epoch(som, x, epoch, args.epochs), epoch,
                               name="quantisation error")
        record = {"epoch": epoch, "alpha": float(som.alpha(som.n_steps_)),
                  "sigma": float(som.width(som.n_steps_)), "train_qe": qe,
                  "train_te": som.topographic_error(x), "test_qe": som.quantization_error(xt),
                  "test_te": som.topographic_error(xt), "seconds": time.perf_counter() - t0}
        run.log(**record)
        run.save_checkpoint(checkpoint_state(som, args, epoch))
        print(f"epoch {epoch}/{args.epochs}  QE {qe:.4f} (test {record['test_qe']:.4f})  "
              f"TE {record['train_te']:.3f}  sigma {record['sigma']:.2f}  "
              f"[{record['seconds']:.1f} s]", flush=True)
        if epoch in SNAPSHOT_EPOCHS or epoch == args.epochs:
            snapshots[epoch] = som.codebook_.copy()
    written = draw_figures(som, run, x, shape, snapshots)
    print(f"figures in {run.out}/: {', '.join(written)}")
    print(f"metrics in {run.path('metrics.json')} (and .csv); checkpoint {run.checkpoint_path}")


def _epoch(som, x, epoch, epochs):
    """One epoch; the online pass runs in chunks so the progress bar moves."""
    if som.mode == "batch":
        return som.train_epoch(x)
    order = som._rng.permutation(len(x))
    from ..models.som import som_online_epoch
    chunk = max(len(x) // 20, 1)
    for s in progress(range(0, len(x), chunk), desc=f"epoch {epoch}/{epochs}"):
        idx = order[s:s + chunk]
        steps = som.n_steps_ + np.arange(len(idx))
        som_online_epoch(x, idx, som.codebook_, som.grid_d2, som.alpha(steps),
                         som.width(steps), som.metric_code, som._kind)
        som.n_steps_ += len(idx)
    som.epochs_ += 1
    qe = som.quantization_error(x)
    som.quantization_errors_.append(qe)
    return qe


def draw_figures(som, run, x, shape, snapshots):
    from .. import viz
    from ..models import som as S
    S.plot_codebook(som, run.path("map.png"), title=f"SOM {som.rows}x{som.cols}",
                    image_shape=shape)
    S.plot_u_matrix(som, run.path("u_matrix.png"))
    S.plot_hit_map(som, x, run.path("hit_map.png"))
    names = ["red", "green", "blue"] if x.shape[1] == 3 else None
    feats = None if x.shape[1] <= 16 else np.linspace(0, x.shape[1] - 1, 16).astype(int)
    S.plot_component_planes(som, run.path("component_planes.png"), features=feats, names=names)
    viz.save_curves({"train QE": run.series("train_qe"), "test QE": run.series("test_qe")},
                    run.path("quantization_error.png"), ylabel="quantisation error")
    viz.save_curves({"train TE": run.series("train_te"), "test TE": run.series("test_te")},
                    run.path("topographic_error.png"), ylabel="topographic error")
    written = ["map.png", "u_matrix.png", "hit_map.png", "component_planes.png",
               "quantization_error.png", "topographic_error.png"]
    if snapshots:
        _plot_evolution(som, snapshots, run.path("evolution.png"), shape)
        written.append("evolution.png")
    return written


def _plot_evolution(som, snapshots, path, shape):
    """The map after each snapshot epoch, side by side (the lecture's 10/20/30 figure)."""
    from ..viz import _save, plt, tile
    epochs = sorted(snapshots)
    fig, axes = plt.subplots(1, len(epochs), figsize=(3.2 * len(epochs), 3.4), dpi=100,
                             squeeze=False)
    for ax, e in zip(axes[0], epochs):
        W = snapshots[e]
        if W.shape[1] == 3:
            img = np.clip(W.reshape(som.rows, som.cols, 3), 0, 1)
        else:
            lo, hi = W.min(), W.max()
            img = tile((W - lo) / max(hi - lo, 1e-12), som.cols, image_shape=shape)
        ax.imshow(img, cmap="gray", interpolation="nearest")
        ax.set_title(f"epoch {e}")
        ax.axis("off")
    fig.suptitle("self-organisation over the epochs")
    _save(fig, path)


def checkpoint_state(som, args, epoch):
    return {"model": "som", "epoch": epoch, "codebook": np.asarray(som.codebook_),
            "n_steps": int(som.n_steps_), "tau": [som._tau_alpha, som._tau_sigma],
            "rng": C.rng_state(som._rng), "rows": som.rows, "cols": som.cols,
            "config": {k: getattr(args, k) for k in ("mode", "metric", "neighbourhood",
                                                      "topology", "dataset")}}


def _restore(run, som):
    state = run.load_checkpoint()
    C.check_model(state, "som", run.checkpoint_path)
    codebook = np.asarray(state["codebook"])
    if codebook.shape != som.codebook_.shape:
        raise CLIError(f"--resume: checkpoint map is {codebook.shape}, the command's "
                       f"{som.codebook_.shape}; use the same --rows/--cols/--dataset")
    som.codebook_ = codebook.astype(som.codebook_.dtype)
    som.n_steps_ = int(state["n_steps"])
    som._tau_alpha, som._tau_sigma = (float(t) for t in state["tau"])
    C.set_rng_state(som._rng, state["rng"])
    som.epochs_ = int(state["epoch"])
    print(f"resuming {run.out} after epoch {som.epochs_}")
    return som.epochs_
