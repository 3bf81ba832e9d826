"""Mode coverage of every GAN loss, with and without each stabiliser, on the 2-D mixtures.

    python benchmarks/gan_modes.py                          # the whole table (takes hours)
    python benchmarks/gan_modes.py --datasets ring --losses wgan-gp --stabilisers none
    python benchmarks/gan_modes.py --table-only             # print and draw what is stored

The protocol of VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018), as computed by
``minigen.models.gan.coverage``: 2500 samples from G; a sample is high quality within 3 std of
a centre; a mode is captured when it holds at least one of them. Ring: 8 Gaussians, radius
2, std 0.02; grid: 25 Gaussians, std 0.05. Every cell is ``minigen train gan`` with its
defaults (or ``--epochs``) and one stabiliser switched on, for each of ``--seeds``; the table
gives the mean, the spread (standard deviation) and the range over the seeds, and a PNG draws
it. Runs go two at a time (``--workers``), each on one BLAS thread; finished runs are kept in
``results.json`` so an interrupted table resumes where it stopped.
"""
import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time

import numpy as np

LOSSES = ("minimax", "ns", "wgan", "wgan-gp", "lsgan", "hinge")
STABILISERS = {
    "none": [],
    "feature matching": ["--feature-matching"],
    "minibatch discr.": ["--minibatch", "discrimination"],
    "minibatch stddev": ["--minibatch", "stddev"],
    "instance noise 0.1": ["--instance-noise", "0.1"],
    "label smoothing 0.1": ["--label-smoothing", "0.1"],   # logistic losses only
}
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "gan_modes")


def applies(loss, stabiliser):
    return stabiliser != "label smoothing 0.1" or loss in ("minimax", "ns")


def one_run(job):
    """Train one GAN (in this worker process) and return its last epoch's coverage."""
    dataset, loss, stabiliser, seed, epochs = job
    from minigen.cli import main
    with tempfile.TemporaryDirectory() as out:
        argv = ["train", "gan", "--dataset", dataset, "--loss", loss, "--seed", str(seed),
                "--out", out, "--figures-every", "0", *STABILISERS[stabiliser]]
        if epochs:
            argv += ["--epochs", str(epochs)]
        start = time.perf_counter()
        with open(os.devnull, "w") as quiet:
            stdout, sys.stdout = sys.stdout, quiet
            try:
                status = main(argv)
            finally:
                sys.stdout = stdout
        if status != 0:
            raise RuntimeError(f"minigen {' '.join(argv)} exited with {status}")
        with open(os.path.join(out, "metrics.json")) as f:
            last = json.load(f)[-1]
    return {"dataset": dataset, "loss": loss, "stabiliser": stabiliser, "seed": seed,
            "epochs": last["epoch"], "modes": last["modes"], "total_modes": last["total_modes"],
            "high_quality": last["high_quality"], "seconds": time.perf_counter() - start}


def _key(r):
    return f"{r['dataset']}|{r['loss']}|{r['stabiliser']}|{r['seed']}|{r['epochs_asked']}"


def run_all(jobs, path, workers):
    done = {}
    if os.path.exists(path):
        with open(path) as f:
            done = {_key(r): r for r in json.load(f)}
    todo = [j for j in jobs if _key(dict(zip(("dataset", "loss", "stabiliser", "seed",
                                               "epochs_asked"), j))) not in done]
    print(f"{len(jobs) - len(todo)} runs stored, {len(todo)} to go", flush=True)
    # one BLAS thread per worker: tiny matrices, and two workers share the two cores
    os.environ.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                      NUMBA_NUM_THREADS="1")
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        for job, r in zip(todo, pool.imap(one_run, todo)):
            r["epochs_asked"] = job[4]
            done[_key(r)] = r
            with open(path + ".tmp", "w") as f:
                json.dump(list(done.values()), f, indent=1)
            os.replace(path + ".tmp", path)
            print(f"{r['dataset']:<5} {r['loss']:<8} {r['stabiliser']:<20} seed {r['seed']}: "
                  f"{r['modes']}/{r['total_modes']} modes, {100 * r['high_quality']:.1f}% high "
                  f"quality, {r['seconds']:.0f} s", flush=True)
    return list(done.values())


def summarise(results):
    """{(dataset, loss, stabiliser): stats over seeds} for the table and the figure."""
    cells = {}
    for r in results:
        cells.setdefault((r["dataset"], r["loss"], r["stabiliser"]), []).append(r)
    stats = {}
    for key, rs in cells.items():
        modes = np.array([r["modes"] for r in rs], dtype=float)
        hq = np.array([r["high_quality"] for r in rs])
        stats[key] = {"n": len(rs), "total": rs[0]["total_modes"], "modes": modes.mean(),
                      "modes_sd": modes.std(), "min": modes.min(), "max": modes.max(),
                      "hq": hq.mean(), "hq_sd": hq.std(), "epochs": rs[0]["epochs"],
                      "seconds": np.mean([r["seconds"] for r in rs])}
    return stats


def print_table(stats):
    print(f"\n{'data':<5} {'loss':<8} {'stabiliser':<20} {'seeds':>5} {'modes: mean ± sd':>17} "
          f"{'range':>7} {'high quality':>15} {'epochs':>6} {'s/run':>6}")
    for (dataset, loss, stab), s in sorted(stats.items(), key=lambda kv: (
            kv[0][0], LOSSES.index(kv[0][1]), list(STABILISERS).index(kv[0][2]))):
        print(f"{dataset:<5} {loss:<8} {stab:<20} {s['n']:>5} "
              f"{s['modes']:>7.2f} ± {s['modes_sd']:4.2f} /{s['total']:<2} "
              f"{int(s['min']):>3}-{int(s['max']):<3} "
              f"{100 * s['hq']:>6.1f} ± {100 * s['hq_sd']:4.1f}% "
              f"{s['epochs']:>6} {s['seconds']:>6.0f}")


def draw(stats, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    datasets = [d for d in ("ring", "grid") if any(k[0] == d for k in stats)]
    stabs = [s for s in STABILISERS if any(k[2] == s for k in stats)]
    fig, axes = plt.subplots(2, len(datasets), figsize=(7.5 * len(datasets), 8), squeeze=False)
    width = 0.8 / max(len(stabs), 1)
    for col, dataset in enumerate(datasets):
        for row, (field, sd, label) in enumerate((("modes", "modes_sd", "modes captured"),
                                                  ("hq", "hq_sd", "high-quality fraction"))):
            ax = axes[row, col]
            for k, stab in enumerate(stabs):
                xs, ys, es = [], [], []
                for i, loss in enumerate(LOSSES):
                    s = stats.get((dataset, loss, stab))
                    if s:
                        xs.append(i + (k - (len(stabs) - 1) / 2) * width)
                        ys.append(s[field])
                        es.append(s[sd])
                ax.bar(xs, ys, width, yerr=es, capsize=2, label=stab, color=f"C{k}")
            total = next(s["total"] for key, s in stats.items() if key[0] == dataset)
            if field == "modes":
                ax.axhline(total, color="k", lw=0.8, ls="--")
            ax.set_xticks(range(len(LOSSES)))
            ax.set_xticklabels(LOSSES)
            ax.set_ylabel(label)
            ax.set_title(f"{dataset}: {label} (mean ± sd over seeds)", fontsize=10)
            ax.grid(axis="y", alpha=0.3)
    axes[0, 0].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"figure: {path}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=["ring", "grid"], choices=("ring", "grid"))
    p.add_argument("--losses", nargs="+", default=list(LOSSES), choices=LOSSES)
    p.add_argument("--stabilisers", nargs="+", default=list(STABILISERS), choices=list(STABILISERS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=None, help="default: the command's default")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", default=DEFAULT_OUT)
    p.add_argument("--table-only", action="store_true")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "results.json")
    jobs = [(d, loss, stab, seed, args.epochs) for d in args.datasets for loss in args.losses
            for stab in args.stabilisers if applies(loss, stab) for seed in args.seeds]
    if args.table_only:
        with open(path) as f:
            results = json.load(f)
    else:
        results = run_all(jobs, path, args.workers)
    wanted = {(d, loss, stab, seed, args.epochs) for d, loss, stab, seed, _ in jobs} \
        if not args.table_only else None
    if wanted is not None:
        results = [r for r in results if (r["dataset"], r["loss"], r["stabiliser"], r["seed"],
                                          r["epochs_asked"]) in wanted]
    stats = summarise(results)
    print_table(stats)
    draw(stats, os.path.join(args.out, "mode_coverage.png"))


if __name__ == "__main__":
    main()
