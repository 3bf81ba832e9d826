"""Issue 8's evidence for the GAN family: speed and parity against the PyTorch twin.

    python benchmarks/bench_gan.py                  # speed, then parity
    python benchmarks/bench_gan.py speed            # one training iteration, NS and WGAN-GP
    BENCH_THREADS=1 python benchmarks/bench_gan.py parity

* speed: one DCGAN training iteration -- a D step and a G step, batch 64, 28x28, float32 --
  of ``minigen train gan``'s default DCGAN (width 32, z in R^100) against its PyTorch twin
  (``minigen.models.gan.torch_twin``: the same layers, steps and frozen D in the G step), same
  threads, alternating (``harness.compare``). Goals: ratio <= 1.3 for NS, <= 1.6 for WGAN-GP
  (its D step adds the gradient penalty, a double backward through the critic).
* parity: the same full-size DCGAN in both libraries, same initial weights, same batches, z
  and alpha; 20 iterations (n_critic D steps and a G step each) for NS, WGAN-GP and LSGAN.
  Prints the largest relative difference of any parameter or batch-norm statistic over all
  steps, in float64 (the test suite asks <= 1e-9 of a narrow DCGAN) and in float32 (the drift
  that rounding alone produces).
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import compare, print_table, set_threads  # noqa: E402

import minigen as mg  # noqa: E402
from minigen.models.gan import Recipe, discriminator_step, generator_step  # noqa: E402
from minigen.models.gan import torch_twin  # noqa: E402

BATCH = 64
CONFIG = {"arch": "dcgan", "data_shape": (1, 28, 28), "latent": 100, "width": 32}
# the papers' settings: (lr, betas, n_critic, D's normalisation)
PAPER = {"ns": (2e-4, (0.5, 0.999), 1, "batch"), "lsgan": (2e-4, (0.5, 0.999), 1, "batch"),
         "wgan-gp": (1e-4, (0.0, 0.9), 5, "none")}
GOALS = {"ns": 1.3, "wgan-gp": 1.6}


def speed(repeats=15):
    import torch
    rng = np.random.default_rng(0)
    x = (rng.random((BATCH, 784), dtype=np.float32) * 2 - 1)
    z1, z2 = (rng.standard_normal((BATCH, CONFIG["latent"]), dtype=np.float32) for _ in range(2))
    rows = []
    for loss in ("ns", "wgan-gp"):
        lr, betas, _, norm = PAPER[loss]
        twins = torch_twin.Twins({**CONFIG, "d_norm": norm}, Recipe(loss), lr, betas,
                                 dtype="float32")
        recipe = twins.recipe
        mx, mz1, mz2 = mg.tensor(x), mg.tensor(z1), mg.tensor(z2)
        tx, tz1, tz2 = torch.from_numpy(x), torch.from_numpy(z1), torch.from_numpy(z2)

        def ours():
            discriminator_step(twins.G, twins.D, twins.opt_D, mx, mz1, recipe)
            generator_step(twins.G, twins.D, twins.opt_G, mz2, recipe)

        def theirs():
            torch_twin.discriminator_step(twins.tG, twins.tD, twins.t_opt_D, tx, tz1, recipe)
            torch_twin.generator_step(twins.tG, twins.tD, twins.t_opt_G, tz2, recipe)

        row = compare(f"{loss}: D step + G step", ours, theirs, repeats=repeats, warmup=3)
        rows.append(row)
        GOALS[row["case"]] = GOALS[loss]
    print(f"\none DCGAN training iteration (width {CONFIG['width']}, batch {BATCH}, float32)")
    print_table(rows, goals=GOALS)
    return rows


def parity(iterations=20, dtypes=("float64", "float32")):
    """Relative parameter differences minigen vs torch over ``iterations``."""
    print(f"\nparity: full-size DCGAN (width {CONFIG['width']}, z in R^{CONFIG['latent']}, batch "
          f"{BATCH}), {iterations} iterations, every step compared")
    print(f"{'loss':<9}{'dtype':<9}{'max, all steps':>15}{'max, at the end':>17}"
          f"{'median, at the end':>20}  worst tensor at the end")
    results = {}
    for loss in ("ns", "wgan-gp", "lsgan"):
        lr, betas, n_critic, norm = PAPER[loss]
        for dtype in dtypes:
            twins = torch_twin.Twins({**CONFIG, "d_norm": norm}, Recipe(loss), lr, betas,
                                     dtype=dtype)
            rng, worst = np.random.default_rng(1), 0.0
            for _ in range(iterations):
                for _ in range(n_critic):
                    twins.d_step((rng.random((BATCH, 784)) * 2 - 1).astype(dtype),
                                 rng.standard_normal((BATCH, CONFIG["latent"])).astype(dtype),
                                 alpha=rng.random((BATCH, 1)).astype(dtype))
                    worst = max(worst, twins.max_relative_difference())
                twins.g_step(rng.standard_normal((BATCH, CONFIG["latent"])).astype(dtype))
                worst = max(worst, twins.max_relative_difference())
            rows = twins.relative_differences()
            name, end, _ = max(rows, key=lambda r: r[1])
            median = float(np.median([r[2] for r in rows]))
            results[loss, dtype] = worst
            print(f"{loss:<9}{dtype:<9}{worst:>15.3e}{end:>17.3e}{median:>20.3e}  {name}",
                  flush=True)
    print("(max: max|minigen - torch| / max|torch| per tensor, the largest over tensors; "
          "median: ||minigen - torch|| / ||torch||, the median over tensors)")
    return results


def run(parts=("speed", "parity")):
    # BENCH_THREADS=1 on a shared, overloaded machine (spinning BLAS threads distort timings)
    threads = set_threads(int(os.environ.get("BENCH_THREADS", 0)) or None)
    print(f"threads: {threads}; load average: {os.getloadavg()[0]:.2f}")
    rows = speed() if "speed" in parts else []
    if "parity" in parts:
        parity()
    return rows


if __name__ == "__main__":
    run(sys.argv[1:] or ("speed", "parity"))
