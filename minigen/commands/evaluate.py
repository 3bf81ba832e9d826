"""``minigen eval``: score generated images with IS, FID, KID, precision and recall.

    minigen eval runs/vae                       # 10 000 samples vs the test set; eval.json in the run
    minigen eval runs/vae-z2 runs/vae runs/rbm  # one table and a bar chart (--chart)
    minigen eval --samples samples.npy          # any (N, 784) / (N, 28, 28) array in [0, 1]
    minigen eval --reference                    # the floor and simple baselines, for scale

Samples come from the run's own ``draw(state, n, seed, device)`` (the sampling contract of
``minigen/commands/<model>.py``), so every model that defines it can be scored. They are
compared with Fashion-MNIST's 10 000 test images through the shipped feature network
(``minigen.metrics.features``). Where the run has a likelihood, its test NLL (IWAE bound
for a VAE, AIS estimate for an RBM) and test -ELBO are read from its metrics.json.
"""
import json
import os
import time

import numpy as np

from ..runs import CLIError, _atomic_write, resolve_checkpoint

DATASET = "fashion-mnist"
IMAGE_SHAPE = (1, 28, 28)
# reference baselines: small and quick runs of the project's own commands (cached)
REFERENCE_RUNS = {
    "kmeans": ["train", "kmeans", "--k", "50", "--n-init", "1"],
    "rbm": ["train", "rbm", "--epochs", "5", "--ais-betas", "0", "--gibbs-steps", "100"],
    "vae": ["train", "vae", "--epochs", "5", "--latent", "20", "--iwae-k", "0",
            "--figures-every", "0"],
}
KMEANS_JITTER = 0.1  # pixel noise added to a K-means centre (std)
REFERENCE_VERSION = 1  # bump when the reference rows are computed differently


def add_arguments(p):
    p.add_argument("runs", nargs="*", metavar="RUN", help="run folders (or checkpoint.npz files)")
    p.add_argument("--samples", action="append", default=[], metavar="FILE.npy",
                   help="score the images in a .npy file (N, 784) or (N, 28, 28), values in "
                        "[0, 1]; may be given several times")
    p.add_argument("--reference", action="store_true",
                   help="also print the reference rows: train vs test (the floor), K-means "
                        "centres jittered, RBM and VAE samples (trained once, cached)")
    p.add_argument("-n", type=int, default=10000, help="samples drawn per run (default 10000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the samples (default 0)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--kid-subsets", type=int, default=100)
    p.add_argument("--kid-subset-size", type=int, default=1000)
    p.add_argument("--k", type=int, default=3, help="neighbours of precision/recall (default 3)")
    p.add_argument("--chart", default="eval.png",
                   help="bar chart written when there are several rows (default eval.png)")
    p.add_argument("--json", default=None, metavar="FILE", help="also write every row to FILE")
    p.add_argument("--reference-dir", default=None,
                   help="where --reference keeps its runs and results "
                        "(default $MINIGEN_CACHE/reference)")
    p.add_argument("--refresh", action="store_true",
                   help="recompute the cached reference rows and test-set features")


def run(args):
    if not (args.runs or args.samples or args.reference):
        raise CLIError("nothing to score: give run folders, --samples FILE.npy or --reference")
    if args.n < 2:
        raise CLIError(f"-n must be at least 2, got {args.n}")
    if args.k < 1 or args.kid_subsets < 1 or args.kid_subset_size < 2:
        raise CLIError("--k and --kid-subsets must be at least 1, --kid-subset-size at least 2")
    loaded = [_load_run(path) for path in args.runs]      # bad paths fail before any work
    arrays = [(path, _load_samples(path)) for path in args.samples]
    real = _real(args)
    rows = []
    for path, state, module in loaded:
        rows.append(evaluate_run(path, state, module, real, args))
    for path, images in arrays:
        row = _score(images, real, args, f"{os.path.basename(path)}")
        rows.append(dict(row, label=os.path.basename(path), source=os.path.abspath(path)))
    if args.reference:
        rows += reference_rows(real, args)
    print(table(rows))
    if args.json:
        _atomic_write(args.json, json.dumps(rows, indent=1))
        print(f"rows in {args.json}")
    if len(rows) > 1 and args.chart:
        chart(rows, args.chart)
        print(f"bar chart in {args.chart}")


def _settings(args):
    return {"kid_subsets": args.kid_subsets, "kid_subset_size": args.kid_subset_size, "k": args.k}


def _real(args):
    from ..metrics.scoring import real_set
    from . import load_images
    load_images(DATASET)  # a clear one-line error when the data are missing
    return real_set(DATASET, "test", cache=not args.refresh, progress="features: test set")


def _score(images, real, args, what):
    from ..metrics.scoring import score_images
    try:
        return score_images(images, real, progress=f"features: {what}", **_settings(args))
    except ValueError as e:
        raise CLIError(str(e)) from None


# ------------------------------------------------------------------ runs
def _load_run(path):
    """(path, checkpoint state, command module) of a run that can draw images, or a CLIError."""
    from .. import commands
    from ..serialization import load
    state = load(resolve_checkpoint(path))
    name = state.get("model") if isinstance(state, dict) else None
    name = name.item() if isinstance(name, np.ndarray) and name.ndim == 0 else name
    name = name if isinstance(name, str) else None  # e.g. a classifier's weights under "model"
    if name not in commands.MODELS:
        raise CLIError(f"{path}: not a checkpoint of a minigen model that can sample "
                       f"(model={name!r})")
    module = commands.load(name)
    if not hasattr(module, "draw"):
        raise CLIError(f"{path}: model {name!r} cannot draw samples (its command module "
                       f"minigen/commands/{name}.py defines no draw)")
    shape = module.image_shape(state)
    if shape is None or tuple(shape) != IMAGE_SHAPE:
        raise CLIError(f"{path}: minigen eval scores 28x28 grey images (the feature network "
                       f"is a Fashion-MNIST classifier), but this {name} draws "
                       f"{'2-D points' if shape is None else 'images of shape ' + str(tuple(shape))}")
    dataset = _dataset_of(state)
    if dataset is not None and dataset != DATASET:
        raise CLIError(f"{path}: trained on {dataset}; minigen eval compares samples with "
                       f"{DATASET}'s test set")
    return path, state, module


def _dataset_of(state):
    """The training set a checkpoint names (top-level "dataset" or its config's), if any."""
    config = state.get("config")
    if isinstance(config, (str, np.ndarray, np.str_)):
        try:
            config = json.loads(str(config.item() if hasattr(config, "item") else config))
        except (ValueError, TypeError):
            config = None
    for where in (state, config if isinstance(config, dict) else {}):
        value = where.get("dataset")
        if value is not None:
            return str(value.item() if hasattr(value, "item") else value)
    return None


def _run_folder(path):
    return path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))


def likelihood(folder):
    """Test NLL and -ELBO (nats per image) from the run's metrics.json, where it has them."""
    try:
        with open(os.path.join(folder, "metrics.json")) as f:
            history = json.load(f)
    except (OSError, ValueError):
        return {}
    out = {}
    for record in reversed(history if isinstance(history, list) else []):
        if "test_nll" in record:
            out.setdefault("test_nll", record["test_nll"])
            out.setdefault("test_nll_method", record.get("test_nll_method", "reported"))
        if "test_neg_iwae" in record:
            out.setdefault("test_nll", record["test_neg_iwae"])
            out.setdefault("test_nll_method", f"IWAE bound, k={record.get('iwae_k')}")
        if "test_log_likelihood" in record:
            out.setdefault("test_nll", -record["test_log_likelihood"])
            out.setdefault("test_nll_method", "AIS (binarised pixels)")
        if "test_neg_elbo" in record:
            out.setdefault("test_neg_elbo", record["test_neg_elbo"])
    return out


def evaluate_run(path, state, module, real, args):
    """Draw ``args.n`` samples from the run, score them, write eval.json into the run folder."""
    name = os.path.basename(os.path.normpath(_run_folder(path)))
    start = time.perf_counter()
    print(f"{name}: drawing {args.n} samples ...", flush=True)
    images = module.draw(state, args.n, seed=args.seed, device=args.device)
    seconds = time.perf_counter() - start
    row = _score(images, real, args, name)
    row.update(likelihood(_run_folder(path)))
    row.update(label=name, source=os.path.abspath(path), model=module.__name__.rsplit(".", 1)[-1],
               seed=args.seed, draw_seconds=seconds)
    out = os.path.join(_run_folder(path), "eval.json")
    try:
        _atomic_write(out, json.dumps(row, indent=1))
    except OSError as e:
        raise CLIError(f"cannot write {out}: {e.strerror}") from None
    return row


def _load_samples(path):
    if not os.path.isfile(path):
        raise CLIError(f"--samples: no file at {path}")
    try:
        images = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise CLIError(f"--samples: {path} is not a .npy array ({' '.join(str(e).split())})") from None
    if not isinstance(images, np.ndarray):
        raise CLIError(f"--samples: {path} holds several arrays (.npz); save one array with "
                       "numpy.save")
    from ..metrics.features import check_images
    try:
        return check_images(images, where=f"--samples {path}")
    except ValueError as e:
        raise CLIError(str(e)) from None


# ------------------------------------------------------------------ reference rows
def _reference_dir(args):
    from ..data.datasets import cache_dir
    return os.path.abspath(args.reference_dir or os.path.join(cache_dir(), "reference"))


def _ensure_run(folder, name):
    """Train the reference model ``name`` into ``folder`` with the project's command, once."""
    from ..cli import build_parser
    out = os.path.join(folder, name)
    if os.path.exists(os.path.join(out, "checkpoint.npz")):
        return out
    argv = REFERENCE_RUNS[name] + ["--dataset", DATASET, "--out", out]
    print(f"reference: minigen {' '.join(argv)}", flush=True)
    args = build_parser().parse_args(argv)
    args.handler(args)
    return out


def reference_rows(real, args):
    """The floor (training images vs the test set) and baselines, cached in --reference-dir."""
    from ..metrics.features import shipped_sha256
    folder = _reference_dir(args)
    os.makedirs(folder, exist_ok=True)
    key = {"version": REFERENCE_VERSION, "sha256": shipped_sha256(), "n": args.n,
           "seed": args.seed, "settings": _settings(args), "runs": REFERENCE_RUNS,
           "kmeans_jitter": KMEANS_JITTER}
    cached = os.path.join(folder, "reference.json")
    if not args.refresh and os.path.exists(cached):
        with open(cached) as f:
            stored = json.load(f)
        if stored.get("key") == json.loads(json.dumps(key)):
            return stored["rows"]
    from .. import commands
    from ..data import load_dataset
    from ..serialization import load
    x_train = load_dataset(DATASET, "train")[0]
    gen = np.random.default_rng(args.seed)
    rows = []
    floor = x_train[np.sort(gen.choice(len(x_train), min(args.n, len(x_train)), replace=False))]
    rows.append(dict(_score(floor, real, args, "training images"),
                     label=f"train images ({len(floor)}): the floor"))
    km = load(os.path.join(_ensure_run(folder, "kmeans"), "checkpoint.npz"))
    rows.append(dict(_score(jittered_centres(km["centres"], x_train, args.n, gen), real, args,
                            "K-means"),
                     label=f"K-means centres (k={len(km['centres'])}) + noise {KMEANS_JITTER}"))
    for name, label in (("rbm", "RBM samples"), ("vae", "VAE samples")):
        run = _ensure_run(folder, name)
        state = load(os.path.join(run, "checkpoint.npz"))
        images = commands.load(name).draw(state, args.n, seed=args.seed, device=args.device)
        epochs = len(json.load(open(os.path.join(run, "metrics.json"))))
        rows.append(dict(_score(images, real, args, label), **likelihood(run),
                         label=f"{label} ({epochs} epochs)"))
    _atomic_write(cached, json.dumps({"key": key, "rows": rows}, indent=1))
    return rows


def jittered_centres(centres, x_train, n, gen):
    """n images: a K-means centre chosen with its cluster's share of the training set, plus
    Gaussian pixel noise of std KMEANS_JITTER, clipped to [0, 1] -- a memorising baseline."""
    from ..models.distances import nearest
    centres = np.asarray(centres, np.float32)
    counts = np.bincount(nearest(x_train, centres)[0], minlength=len(centres))
    which = gen.choice(len(centres), n, p=counts / counts.sum())
    noise = gen.standard_normal((n, centres.shape[1]), dtype=np.float32) * KMEANS_JITTER
    return np.clip(centres[which] + noise, 0.0, 1.0)


# ------------------------------------------------------------------ output
COLUMNS = (("IS", "is_mean", "is_std", 1.0, "{:.2f}"), ("FID", "fid", None, 1.0, "{:.2f}"),
           ("KID", "kid_mean", "kid_std", 1.0, "{:.2f}"),
           ("precision", "precision", None, 1.0, "{:.3f}"), ("recall", "recall", None, 1.0, "{:.3f}"),
           ("test NLL", "test_nll", None, 1.0, "{:.1f}"), ("test -ELBO", "test_neg_elbo", None, 1.0, "{:.1f}"))


def _cell(row, key, err, scale, fmt):
    if row.get(key) is None:
        return "-"
    text = fmt.format(row[key] * scale)
    return text + (" ± " + fmt.format(row[err] * scale) if err and row.get(err) is not None else "")


def table(rows):
    """The rows as an aligned text table (NLL and -ELBO in nats per image)."""
    header = ["", "n"] + [c[0] for c in COLUMNS]
    body = [[r["label"], str(r["n"])] + [_cell(r, *c[1:]) for c in COLUMNS] for r in rows]
    widths = [max(len(line[i]) for line in [header] + body) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                       for i, (cell, w) in enumerate(zip(line, widths)))
             for line in [header] + body]
    notes = sorted({r["test_nll_method"] for r in rows if r.get("test_nll_method")})
    ref = rows[0]["reference"] if rows else ""
    foot = f"scored against {ref} through the shipped feature network; IS/KID: mean ± std"
    if notes:
        foot += f"; test NLL in nats per image: {', '.join(notes)}"
    return "\n".join([lines[0], "-" * len(lines[0])] + lines[1:] + [foot])


def chart(rows, path):
    from ..viz import save_bar_panels
    labels = [r["label"] for r in rows]
    panels = {"IS (higher: better)": [r["is_mean"] for r in rows],
              "FID (lower: better)": [r["fid"] for r in rows],
              "KID (lower: better)": [r["kid_mean"] for r in rows],
              "precision": [r["precision"] for r in rows], "recall": [r["recall"] for r in rows]}
    errors = {"IS (higher: better)": [r["is_std"] for r in rows],
              "KID (lower: better)": [r["kid_std"] for r in rows]}
    save_bar_panels(panels, labels, path, errors=errors,
                    title=f"minigen eval: {rows[0]['n']} samples each vs {rows[0]['reference']}")
