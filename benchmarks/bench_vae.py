"""Issue 4's evidence for the VAE: parity with PyTorch, epoch-time ratios, quality in nats.

    python benchmarks/bench_vae.py                 # parity (100 steps + 10 epochs) and speed
    python benchmarks/bench_vae.py parity-steps speed
    python benchmarks/bench_vae.py quality         # minigen train vae, latent 2 and 20, 10 and 50 epochs
    PARITY_EPOCHS=3 MLP_STEPS=100 CONV_STEPS=20 BENCH_THREADS=1 python benchmarks/bench_vae.py
                                                   # shorter runs, for a busy machine

* parity-steps: the MLP VAE 784-400-20 built in PyTorch with minigen's initial weights,
  fed the same batches and the same eps, trained with Adam(1e-3): per-step losses over
  the first 100 steps must agree to float32 rounding.
* parity-epochs: the same pair trained for 10 epochs on Fashion-MNIST (alternating
  epochs, so the epoch times also give a ratio): test negative ELBO (same eps) of both,
  goal: they differ by < 1 %.
* speed: training-step time ratio minigen/torch (CPU, same threads, alternating), for
  the MLP VAE (whole epochs, goal <= 1.3) and the conv VAE (100-step slices, goal <= 2.0).
* quality: the project's own command, ``minigen train vae``, for latent 2 and 20: test
  negative ELBO and the IWAE (k=100) estimate of -log p(x) after 10 and 50 epochs.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import compare, print_table, set_threads  # noqa: E402

import minigen as mg  # noqa: E402
from minigen.models.vae import ConvVAE, VAE  # noqa: E402

BATCH, LR = 128, 1e-3


# ------------------------------------------------------------------ the PyTorch twins
def torch_models():
    import torch
    from torch import nn

    class TorchVAE(nn.Module):
        """The same layers and names as minigen.models.vae.VAE."""

        def __init__(self, d=784, hidden=400, latent=20):
            super().__init__()
            self.fc1 = nn.Linear(d, hidden)
            self.fc_mu = nn.Linear(hidden, latent)
            self.fc_logvar = nn.Linear(hidden, latent)
            self.fc3 = nn.Linear(latent, hidden)
            self.fc4 = nn.Linear(hidden, d)

        def encode(self, x):
            h = torch.relu(self.fc1(x))
            return self.fc_mu(h), self.fc_logvar(h)

        def decode(self, z):
            return self.fc4(torch.relu(self.fc3(z)))

    class TorchConvVAE(nn.Module):
        """The same layers and names as minigen.models.vae.ConvVAE (1x28x28)."""

        def __init__(self, hidden=256, latent=20):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 32, 4, 2, 1)
            self.conv2 = nn.Conv2d(32, 64, 4, 2, 1)
            self.fc1 = nn.Linear(64 * 7 * 7, hidden)
            self.fc_mu = nn.Linear(hidden, latent)
            self.fc_logvar = nn.Linear(hidden, latent)
            self.fc3 = nn.Linear(latent, hidden)
            self.fc4 = nn.Linear(hidden, 64 * 7 * 7)
            self.deconv1 = nn.ConvTranspose2d(64, 32, 4, 2, 1)
            self.deconv2 = nn.ConvTranspose2d(32, 1, 4, 2, 1)

        def encode(self, x):
            h = torch.relu(self.conv1(x.reshape(-1, 1, 28, 28)))
            h = torch.relu(self.conv2(h)).reshape(len(x), -1)
            h = torch.relu(self.fc1(h))
            return self.fc_mu(h), self.fc_logvar(h)

        def decode(self, z):
            h = torch.relu(self.fc4(torch.relu(self.fc3(z)))).reshape(len(z), 64, 7, 7)
            return self.deconv2(torch.relu(self.deconv1(h))).reshape(len(z), -1)

    return TorchVAE, TorchConvVAE


def torch_loss(model, x, eps=None):
    """The classic PyTorch example's loss, averaged over the batch: BCE(sum) + KL."""
    import torch
    import torch.nn.functional as F
    mu, logvar = model.encode(x)
    eps = torch.randn_like(mu) if eps is None else eps
    z = mu + torch.exp(0.5 * logvar) * eps
    recon = F.binary_cross_entropy_with_logits(model.decode(z), x, reduction="sum") / len(x)
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / len(x)
    return recon + kl, recon, kl


def twins(conv=False, seed=0):
    """A minigen VAE and its PyTorch copy (same initial weights), with their Adam optimizers."""
    import torch
    from minigen.optim import Adam
    TorchVAE, TorchConvVAE = torch_models()
    mg.manual_seed(seed)
    ours = ConvVAE() if conv else VAE()
    theirs = TorchConvVAE() if conv else TorchVAE()
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    return ours, theirs, Adam(ours.parameters(), lr=LR), torch.optim.Adam(theirs.parameters(), lr=LR)


def step_ours(model, opt, x, eps=None):
    parts = model.elbo_parts(mg.tensor(x), eps=None if eps is None else mg.tensor(eps))
    opt.zero_grad()
    parts["loss"].backward()
    opt.step()
    return parts["loss"].item()


def step_theirs(model, opt, x, eps=None):
    import torch
    loss = torch_loss(model, torch.from_numpy(x), None if eps is None else torch.from_numpy(eps))[0]
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


def load(name="fashion-mnist"):
    from minigen.data import load_dataset
    x, _ = load_dataset(name, "train")
    xt, _ = load_dataset(name, "test")
    return x, xt


def batches(x, epoch, seed=0):
    order = np.random.default_rng([seed, epoch]).permutation(len(x))
    for s in range(0, len(x), BATCH):
        yield x[order[s:s + BATCH]]


# ------------------------------------------------------------------ parity
def parity_steps(x, n_steps=100):
    ours, theirs, opt_o, opt_t = twins()
    gen = np.random.default_rng(1)
    rel = []
    for step, xb in enumerate(batches(x, 0)):
        if step == n_steps:
            break
        eps = gen.standard_normal((len(xb), 20), dtype=np.float32)
        lo, lt = step_ours(ours, opt_o, xb, eps), step_theirs(theirs, opt_t, xb, eps)
        rel.append(abs(lo - lt) / abs(lt))
    print(f"parity, first {n_steps} Adam steps (MLP VAE, same weights, batches and eps): "
          f"max relative loss difference {max(rel):.2e} (step 1: {rel[0]:.2e}, "
          f"step {n_steps}: {rel[-1]:.2e}); float32 epsilon is 1.19e-07")
    return max(rel)


def test_neg_elbo(xt, loss_fn):
    gen, total = np.random.default_rng(2), 0.0
    for s in range(0, len(xt), 1000):
        xb = xt[s:s + 1000]
        total += loss_fn(xb, gen.standard_normal((len(xb), 20), dtype=np.float32)) * len(xb)
    return total / len(xt)


def parity_epochs(x, xt, epochs=10):
    import torch
    ours, theirs, opt_o, opt_t = twins()
    gen_o, gen_t = np.random.default_rng(1), np.random.default_rng(1)
    times_o, times_t = [], []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        for xb in batches(x, epoch):
            step_ours(ours, opt_o, xb, gen_o.standard_normal((len(xb), 20), dtype=np.float32))
        times_o.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for xb in batches(x, epoch):
            step_theirs(theirs, opt_t, xb, gen_t.standard_normal((len(xb), 20), dtype=np.float32))
        times_t.append(time.perf_counter() - t0)
        print(f"  epoch {epoch + 1}: minigen {times_o[-1]:.2f} s, torch {times_t[-1]:.2f} s",
              flush=True)
    with mg.no_grad():
        ne_o = test_neg_elbo(xt, lambda xb, e: ours.elbo_parts(
            mg.tensor(xb), eps=mg.tensor(e))["loss"].item())
    with torch.no_grad():
        ne_t = test_neg_elbo(xt, lambda xb, e: torch_loss(
            theirs, torch.from_numpy(xb), torch.from_numpy(e))[0].item())
    diff = abs(ne_o - ne_t) / abs(ne_t)
    ratios = [a / b for a, b in zip(times_o, times_t)]
    print(f"parity after {epochs} epochs on Fashion-MNIST: test -ELBO minigen {ne_o:.3f}, "
          f"torch {ne_t:.3f} nats: difference {100 * diff:.3f} % (goal < 1 %)")
    print(f"MLP VAE epoch time (same eps fed to both): minigen {statistics.median(times_o):.2f} s, "
          f"torch {statistics.median(times_t):.2f} s, median ratio {statistics.median(ratios):.2f}")
    return diff


# ------------------------------------------------------------------ speed
def speed(x, mlp_steps=None, conv_steps=100, repeats=3):
    """Time slices of an epoch (``None``: the whole epoch); the per-step cost ratio is the
    epoch-time ratio, since both libraries see the same batches."""
    rows = []
    mlp_name = "one epoch (469 steps)" if mlp_steps is None else f"{mlp_steps} steps"
    for conv, name, goal in ((False, f"MLP VAE 784-400-20, {mlp_name}", 1.3),
                             (True, f"conv VAE, {conv_steps} steps", 2.0)):
        ours, theirs, opt_o, opt_t = twins(conv)
        n = mlp_steps if not conv else conv_steps

        def run_ours():
            for i, xb in enumerate(batches(x, 0)):
                if i == n:
                    break
                step_ours(ours, opt_o, xb)

        def run_theirs():
            for i, xb in enumerate(batches(x, 0)):
                if i == n:
                    break
                step_theirs(theirs, opt_t, xb)
        rows.append(dict(compare(name, run_ours, run_theirs, repeats=repeats, warmup=1), goal=goal))
    print_table(rows, goals={r["case"]: r["goal"] for r in rows})
    return rows


# ------------------------------------------------------------------ quality
def quality(latents=(2, 20), checkpoints=(10, 50), out_root=None):
    """Train with the CLI (resuming from 10 to 50 epochs) and read the IWAE line of each stage."""
    out_root = out_root or tempfile.mkdtemp(prefix="vae_quality_")
    results = []
    for latent in latents:
        out = os.path.join(out_root, f"latent{latent}")
        for i, epochs in enumerate(checkpoints):
            cmd = [sys.executable, "-m", "minigen.cli", "train", "vae", "--latent", str(latent),
                   "--epochs", str(epochs), "--out", out, "--iwae-k", "100", "--iwae-n", "10000"]
            if i:
                cmd.append("--resume")
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True)
            with open(os.path.join(out, "metrics.json")) as f:
                r = json.load(f)[-1]
            results.append((latent, epochs, r["test_neg_elbo"], r["test_neg_iwae"],
                            time.perf_counter() - t0))
            print(f"latent {latent}, {epochs} epochs: test -ELBO {r['test_neg_elbo']:.2f}, "
                  f"-log p(x) by IWAE k=100 {r['test_neg_iwae']:.2f} nats", flush=True)
    print(f"{'latent':>6} {'epochs':>6} {'-ELBO':>8} {'IWAE':>8}")
    for latent, epochs, elbo, iw, _ in results:
        print(f"{latent:>6} {epochs:>6} {elbo:>8.2f} {iw:>8.2f}")
    return results


def run(parts=("parity-steps", "parity-epochs", "speed")):
    # BENCH_THREADS=1 on a shared, overloaded machine (spinning BLAS threads distort timings)
    threads = set_threads(int(os.environ.get("BENCH_THREADS", 0)) or None)
    print(f"threads: {threads}")
    x, xt = load()
    if "parity-steps" in parts:
        parity_steps(x)
    env = os.environ.get
    if "parity-epochs" in parts:
        parity_epochs(x, xt, epochs=int(env("PARITY_EPOCHS", 10)))
    rows = []
    if "speed" in parts:
        rows = speed(x, mlp_steps=int(env("MLP_STEPS", 0)) or None,
                     conv_steps=int(env("CONV_STEPS", 100)))
    if "quality" in parts:
        quality()
    return rows


if __name__ == "__main__":
    run(sys.argv[1:] or ("parity-steps", "parity-epochs", "speed"))
