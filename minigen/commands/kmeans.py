"""K-means: Lloyd iterations from k-means++ seeds, several restarts; centres and clusters.

    minigen train kmeans --dataset fashion-mnist --k 10 --n-init 3 --out runs/kmeans
    minigen train kmeans --dataset ring --k 8 --out runs/kmeans-ring

Each restart is one record in metrics.json/.csv (inertia, iterations, purity against the
labels when the data have them); the best restart is kept in the checkpoint. Figures: the
centres as images (image data) or the clusters coloured in the plane (2-D data).
"""
import time

import numpy as np

from ..options import nonnegative
from ..runs import CLIError, Run, progress
from . import _classical as C


def add_arguments(p):
    C.add_data_arguments(p, default="fashion-mnist")
    p.add_argument("--k", type=int, default=10, help="clusters (default 10)")
    p.add_argument("--n-init", type=int, default=3, help="restarts (default 3)")
    p.add_argument("--max-iter", type=int, default=300)
    p.add_argument("--tol", type=nonnegative, default=1e-4,
                   help="delta of step 9, relative to the mean feature variance")
    p.add_argument("--init", default="k-means++", choices=("k-means++", "random"))
    p.add_argument("--metric", default="euclidean",
                   choices=("euclidean", "dot", "manhattan", "supremum"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/kmeans", help="run folder (default runs/kmeans)")


def train(args):
    from ..models.kmeans import KMeans
    run = Run(args.out)
    x, y, xt, yt, shape = C.load_data(args)
    if len(x) < args.k:
        raise CLIError(f"--k {args.k} is more than the {len(x)} training rows")
    best = None
    for restart in progress(range(1, args.n_init + 1), desc="restarts"):
        t0 = time.perf_counter()
        km = KMeans(args.k, init=args.init, n_init=1, max_iter=args.max_iter, tol=args.tol,
                    metric=args.metric, random_state=args.seed + restart).fit(x)
        record = {"restart": restart, "inertia": km.inertia_, "n_iter": km.n_iter_,
                  "test_inertia": -km.score(xt), "purity": C.purity(km.labels_, y),
                  "test_purity": C.purity(km.predict(xt), yt),
                  "seconds": time.perf_counter() - t0}
        run.log(**{k: v for k, v in record.items() if v is not None})
        print(f"restart {restart}/{args.n_init}  inertia {km.inertia_:.6g}  "
              f"{km.n_iter_} iterations  [{record['seconds']:.2f} s]", flush=True)
        if best is None or km.inertia_ < best.inertia_:
            best = km
    run.save_checkpoint({"model": "kmeans", "centres": best.cluster_centers_,
                         "inertia": best.inertia_, "metric": args.metric,
                         "dataset": args.dataset})
    written = draw_figures(best, run, x, y, shape)
    print(f"best inertia {best.inertia_:.6g}; figures in {run.out}/: {', '.join(written)}")


def draw_figures(km, run, x, y, shape):
    from .. import viz
    if shape is not None:
        c = km.cluster_centers_
        viz.save_image_grid(np.clip(c, 0, 1), run.path("centres.png"), nrow=min(len(c), 10),
                            title="cluster centres", image_shape=shape)
        return ["centres.png"]
    if x.shape[1] == 2:
        viz.save_scatter(x, km.labels_, run.path("clusters.png"), title="K-means clusters")
        return ["clusters.png"]
    if x.shape[1] == 3:  # colours: the centres as swatches
        viz.save_image_grid(np.clip(km.cluster_centers_, 0, 1)[:, None, None, :],
                            run.path("centres.png"), nrow=min(len(km.cluster_centers_), 10),
                            title="cluster centres")
        return ["centres.png"]
    return []
