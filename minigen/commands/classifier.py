"""Feature classifier: retrain the CNN whose features FID, KID and precision/recall use.

    minigen train classifier                  # from scratch, the shipped recipe; compares the
                                              # result with the shipped weights
    minigen train classifier --ship           # ... and replaces the shipped weights (maintainers)

The shipped network (``minigen/metrics/weights/``) was made by this very command; its
manifest records the command line, seed, test accuracy and library versions. Retraining
with the same seed on another machine gives nearly, not exactly, the same weights (BLAS
and thread counts change the rounding), which is why FID is always computed with the
shipped file, never with a local retrain. The report after training says how far apart
the two are: per-tensor relative differences, and how often they predict the same class.

A training command rather than an option of ``minigen eval`` because it is one: a run
folder with metrics.json, an atomic checkpoint every epoch and a progress bar, like every
other ``minigen train MODEL``.
"""
import datetime
import json
import os
import platform
import shlex

import numpy as np

from ..runs import CLIError, Run, _atomic_write

# the recipe of the shipped weights (the defaults of this command)
RECIPE = {"epochs": 5, "batch_size": 128, "lr": 1e-3, "seed": 0}


def add_arguments(p):
    p.add_argument("--dataset", default="fashion-mnist", choices=("fashion-mnist",),
                   help="training data (the feature network judges Fashion-MNIST images)")
    p.add_argument("--epochs", type=int, default=RECIPE["epochs"],
                   help=f"passes over the 60k training images (default {RECIPE['epochs']})")
    p.add_argument("--batch-size", type=int, default=RECIPE["batch_size"])
    p.add_argument("--lr", type=float, default=RECIPE["lr"], help="Adam learning rate")
    p.add_argument("--seed", type=int, default=RECIPE["seed"])
    p.add_argument("--subset", type=int, default=None,
                   help="use only the first N training and test images (quick trials)")
    p.add_argument("--out", default="runs/classifier", help="run folder (default runs/classifier)")
    p.add_argument("--ship", action="store_true",
                   help="replace the shipped weights and manifest in the installed package")


def command_line(args):
    """The canonical command that reproduces this run (recorded in the manifest)."""
    parts = ["minigen", "train", "classifier", "--epochs", str(args.epochs), "--batch-size",
             str(args.batch_size), "--lr", repr(args.lr), "--seed", str(args.seed)]
    if args.subset:
        parts += ["--subset", str(args.subset)]
    return " ".join(shlex.quote(p) for p in parts)


def train(args):
    from ..metrics.classifier import ConvClassifier, save_classifier, train_classifier
    from . import load_images
    if args.epochs < 1 or args.batch_size < 1:
        raise CLIError(f"--epochs and --batch-size must be at least 1, got {args.epochs} "
                       f"and {args.batch_size}")
    if args.ship and args.subset:
        raise CLIError("--ship needs the full training set: drop --subset")
    run = Run(args.out)
    x, y, xt, yt = load_images(args.dataset, args.subset)

    def after_epoch(record):
        run.log(**record)
        save_classifier(model, run.checkpoint_path, epoch=record["epoch"],
                        test_accuracy=record["test_acc"], command=command_line(args))
        print(f"epoch {record['epoch']}/{args.epochs}  loss {record['loss']:.4f}  train acc "
              f"{record['train_acc']:.4f}  test acc {record['test_acc']:.4f}  "
              f"[{record['seconds']:.0f} s]", flush=True)

    import minigen as mg
    mg.manual_seed(args.seed)
    model = ConvClassifier()
    _, history = train_classifier(x, y, epochs=args.epochs, batch_size=args.batch_size,
                                  lr=args.lr, seed=args.seed, model=model,
                                  eval_data=(xt, yt), on_epoch=after_epoch)
    accuracy = history[-1]["test_acc"]
    comparison = compare_with_shipped(model, xt, yt)
    if comparison is not None:
        _atomic_write(run.path("vs_shipped.json"), json.dumps(comparison, indent=1))
        print(describe(comparison))
    if args.ship:
        ship(model, args, accuracy, len(x))
    print(f"test accuracy {accuracy:.4f}; checkpoint {run.checkpoint_path}")


# ------------------------------------------------------------------ retrain vs shipped
def weight_distance(new, old):
    """How far two state dicts are apart: per tensor max |new - old| and ||new - old|| / ||old||,
    and the relative distance of all weights together."""
    per, num, den = {}, 0.0, 0.0
    for name, ref in old.items():
        a, b = np.asarray(new[name], np.float64), np.asarray(ref, np.float64)
        diff = float(np.linalg.norm(a - b))
        norm = float(np.linalg.norm(b))
        per[name] = {"max_abs": float(np.abs(a - b).max()) if a.size else 0.0,
                     "relative": diff / norm if norm else diff}
        num, den = num + diff ** 2, den + norm ** 2
    return {"identical": all(v["max_abs"] == 0.0 for v in per.values()),
            "relative": (num / den) ** 0.5 if den else num ** 0.5, "tensors": per}


def compare_with_shipped(model, xt, yt):
    """The distance report between ``model`` and the shipped network (None if none is shipped)."""
    from ..metrics.classifier import evaluate, predict_logits
    from ..metrics.features import MANIFEST, WEIGHTS, load_feature_network, read_manifest
    if not (os.path.exists(WEIGHTS) and os.path.exists(MANIFEST)):
        return None
    shipped = load_feature_network()
    old, new = shipped.state_dict(), model.state_dict()
    if set(old) != set(new):
        return {"comparable": False, "reason": "the architectures differ"}
    report = weight_distance(new, old)
    agree = float(np.mean(predict_logits(model, xt).argmax(1) == predict_logits(shipped, xt).argmax(1)))
    report.update(comparable=True, prediction_agreement=agree,
                  test_accuracy=evaluate(model, xt, yt), shipped_test_accuracy=evaluate(shipped, xt, yt),
                  shipped_command=read_manifest().get("command"))
    return report


def describe(r):
    if not r.get("comparable"):
        return f"not comparable with the shipped network: {r['reason']}"
    if r["identical"]:
        return "the weights are bit for bit the shipped ones"
    worst = max(r["tensors"].items(), key=lambda kv: kv[1]["relative"])
    return (f"vs the shipped weights: relative distance {r['relative']:.3g} "
            f"(largest {worst[1]['relative']:.3g} in {worst[0]}); same predicted class on "
            f"{100 * r['prediction_agreement']:.2f} % of the test images; test accuracy "
            f"{r['test_accuracy']:.4f} (shipped {r['shipped_test_accuracy']:.4f})")


def versions():
    import numba

    import minigen
    return {"minigen": minigen.__version__, "python": platform.python_version(),
            "numpy": np.__version__, "numba": numba.__version__,
            "machine": f"{platform.system()} {platform.machine()}"}


def ship(model, args, accuracy, n_train):
    """Write the weights into the package and the manifest beside them (both atomically)."""
    from ..metrics.classifier import save_classifier
    from ..metrics.features import MANIFEST, WEIGHTS, sha256_file
    save_classifier(model, WEIGHTS)
    manifest = {"file": os.path.basename(WEIGHTS), "sha256": sha256_file(WEIGHTS),
                "command": command_line(args), "seed": args.seed, "epochs": args.epochs,
                "batch_size": args.batch_size, "lr": args.lr, "train_images": n_train,
                "test_accuracy": accuracy, "dtype": "float32",
                "features": model.config["hidden"], "versions": versions(),
                "created": datetime.date.today().isoformat()}
    _atomic_write(MANIFEST, json.dumps(manifest, indent=1) + "\n")
    print(f"shipped: {WEIGHTS} (sha256 {manifest['sha256'][:16]}...) and {MANIFEST}")
