"""FID under disturbances: Heusel et al. 2017 (their Fig. 1 and appendix A1) on Fashion-MNIST.

10 000 training images are disturbed at increasing levels and scored against the test set
with minigen's shipped feature network, as FID and, for contrast, as IS:

    Gaussian noise     (1 - a) x + a N, N Gaussian noise min-max scaled to [0, 1]
    Gaussian blur      convolution with a Gaussian of std a pixels
    black rectangles   five black squares of side a * 28 at random places
    salt and pepper    a fraction a of the pixels set to 0 or 1 (half each)
    contamination      a fraction a of the images replaced by other data: scikit-learn's
                       8x8 digits, upsampled (bilinear) to 20x20 and padded to 28x28 as
                       MNIST is (MNIST itself is not installed here)

Heusel et al.'s point: FID rises steadily with every disturbance, whereas IS does not track
them (noise can even raise it). The script checks that each FID curve is monotone and says
so. Level 0 is the undisturbed training images: the floor, FID(train, test).

Run: python benchmarks/run.py fid_disturbance  (a few minutes on 2 cores; the figure goes
to benchmarks/figures/fid_disturbance.png, the numbers to benchmarks/results/disturbance.json)
"""
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import set_threads  # noqa: E402

N, SIDE, SEED = 10000, 28, 0
LEVELS = {
    "Gaussian noise": [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75],
    "Gaussian blur": [0.0, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0],
    "black rectangles": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75],
    "salt and pepper": [0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5],
    "digits contamination": [0.0, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0],
}
LEVEL_NAMES = {"Gaussian noise": "a (noise weight)", "Gaussian blur": "std (pixels)",
               "black rectangles": "a (side / image side)", "salt and pepper": "fraction of pixels",
               "digits contamination": "fraction of images"}


# ------------------------------------------------------------------ the disturbances
def gaussian_noise(x, a, rng):
    noise = rng.standard_normal(x.shape)
    noise = (noise - noise.min()) / (noise.max() - noise.min())  # "scaled to [0, 255]"
    return (1 - a) * x + a * noise


def blur_matrix(size, std):
    """B with B x = x convolved with a Gaussian of ``std`` (zero padding: the black border)."""
    if std == 0:
        return np.eye(size)
    offsets = np.arange(size)[:, None] - np.arange(size)[None, :]
    radius = int(np.ceil(4 * std))
    full = np.exp(-0.5 * (np.arange(-radius, radius + 1) / std) ** 2).sum()
    return np.exp(-0.5 * (offsets / std) ** 2) / full


def gaussian_blur(x, std, rng):
    b = blur_matrix(SIDE, std)
    return np.einsum("ij,njk,lk->nil", b, x, b)  # separable: rows, then columns


def black_rectangles(x, a, rng):
    out = x.copy()
    side = int(round(a * SIDE))
    if side == 0:
        return out
    for img in out:
        for top, left in rng.integers(0, SIDE - side + 1, (5, 2)):
            img[top:top + side, left:left + side] = 0.0
    return out


def salt_and_pepper(x, a, rng):
    out = x.copy()
    hit = rng.random(x.shape) < a
    out[hit] = (rng.random(int(hit.sum())) < 0.5).astype(x.dtype)
    return out


def bilinear_matrix(out_size, in_size):
    """U with U v = v resampled from in_size to out_size points (pixel centres aligned)."""
    pos = np.clip((np.arange(out_size) + 0.5) * in_size / out_size - 0.5, 0, in_size - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, in_size - 1)
    u = np.zeros((out_size, in_size))
    u[np.arange(out_size), lo] += 1 - (pos - lo)
    u[np.arange(out_size), hi] += pos - lo
    return u


def digits_28():
    """scikit-learn's 1797 8x8 digits as 28x28 images in [0, 1], drawn like MNIST (20x20
    digit in a 4-pixel black frame)."""
    from minigen.data.datasets import load_digits
    d = load_digits("all", flatten=False)[0].reshape(-1, 8, 8).astype(np.float64)  # in [0, 1]
    u = bilinear_matrix(20, 8)
    out = np.zeros((len(d), SIDE, SIDE))
    out[:, 4:24, 4:24] = np.einsum("ij,njk,lk->nil", u, d, u)
    return out


def contamination(x, a, rng, other):
    out = x.copy()
    which = rng.choice(len(x), int(round(a * len(x))), replace=False)
    out[which] = other[rng.integers(0, len(other), len(which))]
    return out


# ------------------------------------------------------------------ the experiment
def run():
    from minigen.data import load_dataset
    from minigen.metrics import frechet_distance, gaussian_statistics, inception_score
    from minigen.metrics.features import embed, read_manifest
    from minigen.metrics.scoring import real_set
    threads = set_threads(int(os.environ.get("BENCH_THREADS", 0)) or None)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"threads: {threads}, load average (1 min): {load:.1f}; feature network sha256 "
          f"{read_manifest()['sha256'][:16]}...", flush=True)
    real = real_set("fashion-mnist", "test", progress="features: test set")
    x_train = load_dataset("fashion-mnist", "train", flatten=False)[0].astype(np.float64)
    rng = np.random.default_rng(SEED)
    base = x_train[np.sort(rng.choice(len(x_train), N, replace=False))].reshape(N, SIDE, SIDE)
    other = digits_28()
    disturb = {"Gaussian noise": gaussian_noise, "Gaussian blur": gaussian_blur,
               "black rectangles": black_rectangles, "salt and pepper": salt_and_pepper,
               "digits contamination": lambda x, a, r: contamination(x, a, r, other)}
    results, examples = {}, {}
    for name, levels in LEVELS.items():
        results[name] = {"levels": levels, "fid": [], "is": [], "is_std": []}
        examples[name] = []
        for level in levels:
            images = np.clip(disturb[name](base, level, np.random.default_rng([SEED, 1])), 0, 1)
            feats, probs = embed(images.reshape(N, -1).astype(np.float32),
                                 progress=f"{name} {level}")
            fid = frechet_distance(real.mu, real.sigma, *gaussian_statistics(feats))
            is_mean, is_std = inception_score(probs)
            results[name]["fid"].append(fid)
            results[name]["is"].append(is_mean)
            results[name]["is_std"].append(is_std)
            examples[name].append(images[0 if name != "digits contamination" else
                                         _contaminated_index(base, images)])
            print(f"{name:22s} level {level:<5}  FID {fid:8.2f}   IS {is_mean:.3f} ± {is_std:.3f}",
                  flush=True)
        fids = results[name]["fid"]
        results[name]["monotone"] = bool(all(b > a for a, b in zip(fids, fids[1:])))
        print(f"{name}: FID {'rises monotonically' if results[name]['monotone'] else 'is NOT monotone'}"
              f" ({fids[0]:.2f} -> {fids[-1]:.2f})", flush=True)
    out_dir = os.path.join(HERE, "results")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "disturbance.json"), "w") as f:
        json.dump(results, f, indent=1)
    path = os.path.join(HERE, "figures", "fid_disturbance.png")
    plot(results, examples, path)
    print(f"figure: {path}")
    return results


def _contaminated_index(base, images):
    """An image that was replaced (so the example strip shows the contamination), else 0."""
    changed = np.flatnonzero(np.abs(images - base).reshape(len(base), -1).max(1) > 0)
    return int(changed[0]) if len(changed) else 0


def plot(results, examples, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = list(results)
    fig, axes = plt.subplots(3, len(names), figsize=(3.2 * len(names), 7.6), dpi=110,
                             gridspec_kw={"height_ratios": [0.55, 1, 1]})
    for col, name in enumerate(names):
        r = results[name]
        strip = np.concatenate([np.pad(e, 1, constant_values=1.0) for e in examples[name]], axis=1)
        ax = axes[0, col]
        ax.imshow(strip, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_xticks([(i + 0.5) * (SIDE + 2) for i in range(len(r["levels"]))])
        ax.set_xticklabels([f"{v:g}" for v in r["levels"]], fontsize=6)
        ax.set_yticks([])
        ax.set_title(name, fontsize=10)
        ax = axes[1, col]
        ax.plot(r["levels"], r["fid"], "o-", color="tab:red", markersize=4)
        ax.set_ylabel("FID" if col == 0 else "")
        ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
        ax.text(0.03, 0.95, "monotone" if r["monotone"] else "NOT monotone",
                transform=ax.transAxes, va="top", fontsize=8,
                color="tab:green" if r["monotone"] else "tab:red")
        ax = axes[2, col]
        ax.errorbar(r["levels"], r["is"], yerr=r["is_std"], fmt="s-", color="tab:blue",
                    markersize=4, capsize=2)
        ax.set_ylabel("Inception Score" if col == 0 else "")
        ax.set_xlabel(LEVEL_NAMES[name], fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle("FID (log scale) and IS of 10 000 disturbed Fashion-MNIST training images vs "
                 "the test set (minigen's shipped feature network; Heusel et al. 2017)",
                 fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    run()
