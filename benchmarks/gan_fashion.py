"""Fashion-MNIST GANs for the report: ``minigen train gan`` with its defaults and the PyTorch
twin trained for the same number of steps, 10000 samples of each saved for FID.

    python benchmarks/gan_fashion.py ns wgan-gp lsgan --samples-dir /work/artifacts/gan
    python benchmarks/gan_fashion.py ns --only torch          # just the twin
    python benchmarks/gan_fashion.py ns --epochs 1            # a shorter trial

For each loss:

1. minigen: ``minigen train gan --loss LOSS --out RUNS/gan-LOSS`` (skipped when that run has
   already finished its epochs), then ``minigen sample RUN -n 10000 --format npy``;
2. torch: the twin DCGAN (``minigen.models.gan.torch_twin``) built from the same config and the
   same initial weights, trained with the same hyper-parameters on the same batches (a
   ``minigen.data.DataLoader`` with the same seed), the same n_critic schedule, z from torch's
   generator; then 10000 samples from G in evaluation mode, like ``draw``.

Samples are float32 (10000, 784) in [0, 1] (``LOSS_minigen.npy``, ``LOSS_torch.npy``), with a
64-sample grid PNG of each. Epoch times of both are printed (an epoch-time ratio, same threads).
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from harness import set_threads  # noqa: E402

N_SAMPLES = 10000


def _options(epochs, subset):
    return (["--epochs", str(epochs)] if epochs else []) + \
        (["--subset", str(subset)] if subset else [])


def minigen_run(loss, runs, samples_dir, epochs=None, subset=None):
    out = os.path.join(runs, f"gan-{loss}")
    minigen = os.path.join(os.path.dirname(sys.executable), "minigen")
    train = [minigen, "train", "gan", "--loss", loss, "--out", out, *_options(epochs, subset)]
    if os.path.exists(os.path.join(out, "checkpoint.npz")):
        train.append("--resume")  # finishes a stopped run; a finished one has nothing to do
    env = dict(os.environ)
    if os.environ.get("BENCH_THREADS"):  # the same thread count as the twin
        n = os.environ["BENCH_THREADS"]
        env.update(OPENBLAS_NUM_THREADS=n, OMP_NUM_THREADS=n, NUMBA_NUM_THREADS=n)
    start = time.perf_counter()
    subprocess.run(train, check=True, env=env)
    print(f"minigen {loss}: {time.perf_counter() - start:.0f} s", flush=True)
    npy = os.path.join(samples_dir, f"{loss}_minigen.npy")
    subprocess.run([minigen, "sample", out, "-n", str(N_SAMPLES), "--format", "npy", "--out",
                    npy], check=True)
    subprocess.run([minigen, "sample", out, "-n", "64", "--out",
                    os.path.join(samples_dir, f"{loss}_minigen.png")], check=True)
    with open(os.path.join(out, "metrics.json")) as f:
        return json.load(f)


def torch_run(loss, samples_dir, epochs=None, seed=0, subset=None):
    import torch

    import minigen as mg
    from minigen import viz
    from minigen.cli import build_parser
    from minigen.commands import gan
    from minigen.data import DataLoader
    from minigen.models.gan import build_gan, torch_twin

    argv = ["train", "gan", "--loss", loss, "--seed", str(seed), *_options(epochs, subset)]
    args = build_parser().parse_args(argv)
    x, y, classes, shape = gan.load_data(args.dataset, args.subset, args.seed)
    config = gan.config_from_args(args, classes, shape)
    epochs = args.epochs or gan.DATA_DEFAULTS["image"]["epochs"]
    recipe = gan.recipe_from_config(config)
    mg.manual_seed(seed)                      # the same initial weights as minigen's run
    G, D = build_gan(config)
    tG, tD = torch_twin.dcgan_pair(config["latent"], shape, config["width"],
                                   config["num_classes"], config["d_norm"])
    torch_twin.copy_weights(G, tG)
    torch_twin.copy_weights(D, tD)
    betas = tuple(config["betas"])
    opt_G = torch.optim.Adam(tG.parameters(), lr=config["lr"], betas=betas)
    opt_D = torch.optim.Adam(tD.parameters(), lr=config["lr"], betas=betas)
    loader = DataLoader((x, y), batch_size=config["batch_size"], shuffle=True, drop_last=True,
                        seed=seed)
    torch.manual_seed(seed)
    critic_steps, latent = 0, config["latent"]
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        for xb, _ in loader:
            real = torch.from_numpy(xb.numpy())  # the DataLoader yields minigen tensors
            torch_twin.discriminator_step(tG, tD, opt_D, real, torch.randn(len(xb), latent), recipe)
            critic_steps += 1
            if critic_steps % config["n_critic"] == 0:
                torch_twin.generator_step(tG, tD, opt_G, torch.randn(len(xb), latent), recipe)
        print(f"torch {loss}: epoch {epoch}/{epochs} {time.perf_counter() - start:.1f} s",
              flush=True)
    tG.eval()
    gen = np.random.default_rng(seed)
    with torch.no_grad():
        chunks = [tG(torch.from_numpy(gen.standard_normal((1000, latent), dtype=np.float32)))
                  .numpy() for _ in range(N_SAMPLES // 1000)]
    samples = np.clip((np.concatenate(chunks) + 1) / 2, 0, 1).astype(np.float32)
    np.save(os.path.join(samples_dir, f"{loss}_torch.npy"), samples)
    viz.save_image_grid(samples[:64], os.path.join(samples_dir, f"{loss}_torch.png"), nrow=8,
                        image_shape=shape, title=f"PyTorch twin, {loss}, {epochs} epochs")
    return samples


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("losses", nargs="+", choices=("minimax", "ns", "wgan", "wgan-gp", "lsgan",
                                                 "hinge"))
    p.add_argument("--only", choices=("minigen", "torch"), default=None)
    p.add_argument("--epochs", type=int, default=None, help="default: the command's default")
    p.add_argument("--subset", type=int, default=None, help="first N images only (trials)")
    p.add_argument("--runs", default=os.path.join(ROOT, "runs"))
    p.add_argument("--samples-dir", default=os.path.join(HERE, "results", "gan_fashion"))
    args = p.parse_args(argv)
    os.makedirs(args.samples_dir, exist_ok=True)
    threads = set_threads(int(os.environ.get("BENCH_THREADS", 0)) or None)
    print(f"threads: {threads}; load average {os.getloadavg()[0]:.2f}", flush=True)
    for loss in args.losses:
        if args.only != "torch":
            minigen_run(loss, args.runs, args.samples_dir, args.epochs, args.subset)
        if args.only != "minigen":
            torch_run(loss, args.samples_dir, args.epochs, subset=args.subset)


if __name__ == "__main__":
    main()
