"""GMM: Gaussian mixture fitted by EM (full or diagonal covariances); samples, log-likelihood.

    minigen train gmm --dataset ring --k 8 --out runs/gmm-ring
    minigen train gmm --dataset fashion-mnist --k 10 --pca 40 --out runs/gmm-fm
    minigen sample runs/gmm -n 64 --out samples.png

Image data are first projected on their leading --pca principal components (a full
784 x 784 covariance per component is slow and ill-conditioned); samples are projected
back. Each EM iteration is one record in metrics.json/.csv (mean log-likelihood per
sample, which EM never lowers); the test log-likelihood is logged at the end.
"""
import time

import numpy as np

from ..options import natural, nonnegative
from ..runs import CLIError, Run, check_finite_loss, progress
from . import _classical as C


def add_arguments(p):
    C.add_data_arguments(p, default="ring")
    p.add_argument("--k", type=int, default=8, help="components (default 8)")
    p.add_argument("--covariance", default="full", choices=("full", "diag"))
    p.add_argument("--reg-covar", type=nonnegative, default=1e-6)
    p.add_argument("--max-iter", type=int, default=100)
    p.add_argument("--tol", type=nonnegative, default=1e-4)
    p.add_argument("--init", default="kmeans", choices=("kmeans", "random"))
    p.add_argument("--pca", type=natural, default=40,
                   help="for image data: principal components kept (default 40; 0 = none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/gmm", help="run folder (default runs/gmm)")


def train(args):
    from ..models.gmm import GaussianMixture
    run = Run(args.out)
    x, y, xt, yt, shape = C.load_data(args)
    mean, basis = np.zeros(x.shape[1]), None
    if shape is not None and args.pca:
        mean, basis = pca(x, args.pca)
    z, zt = project(x, mean, basis), project(xt, mean, basis)
    gmm = GaussianMixture(args.k, covariance_type=args.covariance, tol=args.tol,
                          reg_covar=args.reg_covar, max_iter=args.max_iter,
                          init_params=args.init, random_state=args.seed)
    t0 = time.perf_counter()
    bar = progress(total=args.max_iter, desc="EM")

    def log(iteration, ll):
        check_finite_loss(ll, iteration, name="log-likelihood")  # one EM iteration = one epoch
        bar.update(1)
        run.log(iteration=iteration, train_log_likelihood=ll,
                seconds=time.perf_counter() - t0)
    gmm.fit(z, callback=log)
    bar.close()
    test_ll = gmm.score(zt)
    run.log(iteration=gmm.n_iter_, train_log_likelihood=gmm.score(z), test_log_likelihood=test_ll,
            bic=gmm.bic(z), purity=C.purity(gmm.predict(z), y) if y is not None else -1.0,
            seconds=time.perf_counter() - t0)
    print(f"EM {'converged' if gmm.converged_ else 'stopped'} after {gmm.n_iter_} iterations: "
          f"train log-likelihood {gmm.score(z):.4f}, test {test_ll:.4f} nats per sample"
          + (f" (in {basis.shape[0]} PCA dimensions)" if basis is not None else ""))
    state = checkpoint_state(gmm, args, mean, basis, shape)
    run.save_checkpoint(state)
    written = draw_figures(gmm, run, z, shape, mean, basis, args.seed)
    print(f"figures in {run.out}/: {', '.join(written)}")


def pca(x, k):
    """(mean, top-k principal directions (k, D)) from an SVD of a subset of rows."""
    rows = x[:min(len(x), 10000)].astype(np.float64)
    mean = rows.mean(0)
    _, _, vt = np.linalg.svd(rows - mean, full_matrices=False)
    return mean, vt[:min(k, vt.shape[0])]


def project(x, mean, basis):
    x = np.asarray(x, np.float64)
    return x if basis is None else (x - mean) @ basis.T


def unproject(z, mean, basis):
    return z if basis is None else z @ basis + mean


def checkpoint_state(gmm, args, mean, basis, shape):
    return {"model": "gmm", "covariance_type": gmm.covariance_type,
            "weights": gmm.weights_, "means": gmm.means_, "covariances": gmm.covariances_,
            "pca_mean": np.asarray(mean), "pca_basis": np.zeros((0, 0)) if basis is None else basis,
            "image_shape": list(shape) if shape else [], "dataset": args.dataset}


def model_from_state(state, where):
    from ..models.gmm import GaussianMixture, _precision_cholesky
    C.check_model(state, "gmm", where)
    ct = C.text(state["covariance_type"])
    gmm = GaussianMixture(len(state["weights"]), covariance_type=ct)
    cov = np.asarray(state["covariances"], np.float64)
    gmm._set_params(np.asarray(state["weights"], np.float64),
                    np.asarray(state["means"], np.float64), cov, _precision_cholesky(cov, ct))
    basis = np.asarray(state["pca_basis"])
    basis = None if basis.size == 0 else basis
    shape = tuple(int(s) for s in state["image_shape"]) or None
    return gmm, np.asarray(state["pca_mean"]), basis, shape


def draw_figures(gmm, run, z, shape, mean, basis, seed):
    from .. import viz
    viz.save_curves({"train": run.series("train_log_likelihood")[:-1]},
                    run.path("log_likelihood.png"), xlabel="EM iteration",
                    ylabel="mean log-likelihood (nats)")
    written = ["log_likelihood.png"]
    gmm._rng = np.random.default_rng(seed)
    if shape is not None:
        samples, _ = gmm.sample(64)
        viz.save_image_grid(np.clip(unproject(samples, mean, basis), 0, 1),
                            run.path("samples.png"), nrow=8, title="samples from the mixture",
                            image_shape=shape)
        means = np.clip(unproject(gmm.means_, mean, basis), 0, 1)
        viz.save_image_grid(means, run.path("means.png"), nrow=min(len(means), 10),
                            title="component means", image_shape=shape)
        written += ["samples.png", "means.png"]
    elif z.shape[1] == 2:
        samples, comp = gmm.sample(len(z))
        viz.save_scatter(samples, comp, run.path("samples.png"), title="samples from the mixture")
        viz.save_scatter(z, gmm.predict(z), run.path("clusters.png"), title="EM clusters")
        written += ["samples.png", "clusters.png"]
    return written


def sample(args, state):
    """``minigen sample RUN``: rows drawn from the fitted mixture (an image grid)."""
    from .. import viz
    gmm, mean, basis, shape = model_from_state(state, args.checkpoint)
    if args.n < 1:
        raise CLIError(f"-n must be at least 1, got {args.n}")
    gmm._rng = np.random.default_rng(args.seed)
    z, comp = gmm.sample(args.n)
    if shape is not None:
        viz.save_image_grid(np.clip(unproject(z, mean, basis), 0, 1), args.out,
                            nrow=int(np.ceil(np.sqrt(args.n))), image_shape=shape)
    else:
        viz.save_scatter(z[:, :2], comp, args.out, title="samples from the mixture")
    print(f"wrote {args.n} samples to {args.out}")
