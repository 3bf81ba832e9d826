"""Issue 12's speed goals in one short run: one training step of each model against PyTorch.

    python benchmarks/bench_steps.py                 # every row (about a minute on 2 cores)
    python benchmarks/bench_steps.py mlp classifier  # some of them
    BENCH_THREADS=1 python benchmarks/bench_steps.py

Every row reuses the step and the PyTorch twin of the model's own benchmark (bench_mlp,
bench_conv, bench_classifier, bench_vae, bench_gan), on fixed float32 batches instead of a
data set, so that the whole table takes a minute rather than the epochs those benchmarks
train; the ratio is ``harness.compare``'s median over alternating pairs.
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import compare, print_table, set_threads  # noqa: E402

import minigen as mg  # noqa: E402

GOALS = {
    "mlp batch 64": 1.5, "mlp batch 512": 1.0,
    "conv2d D fwd+bwd": 1.3, "conv_transpose2d G fwd+bwd": 1.3,
    "classifier step, batch 128": 1.5,
    "MLP VAE step, batch 128": 1.0, "conv VAE step, batch 128": 1.5,
    "ns: D step + G step": 1.3, "wgan-gp: D step + G step": 1.6,
}


def mlp_rows(repeats):
    import torch
    from bench_mlp import minigen_step, torch_step, twins
    rows = []
    for batch in (64, 512):
        ours, theirs, xm, xt, y, yt = twins(batch)
        rows.append(compare(f"mlp batch {batch}", lambda: minigen_step(ours, xm, y),
                            lambda: torch_step(torch, theirs, xt, yt), repeats=repeats))
    return rows


def conv_rows(repeats):
    import torch
    import torch.nn.functional as F
    from bench_conv import arrays, clear, two_layers
    rows = []
    for net, data in arrays().items():
        grads = ("w1", "b1", "w2", "b2")
        ours = {k: mg.tensor(v, requires_grad=k in grads) for k, v in data.items()}
        theirs = {k: torch.tensor(v, requires_grad=k in grads) for k, v in data.items()}
        conv_mg, conv_t = ((mg.conv2d, F.conv2d) if net == "D" else
                           (mg.conv_transpose2d, F.conv_transpose2d))

        def step(conv, tensors):
            clear([tensors[k] for k in grads])
            two_layers(conv, **tensors)

        name = "conv2d D fwd+bwd" if net == "D" else "conv_transpose2d G fwd+bwd"
        rows.append(compare(name, lambda: step(conv_mg, ours), lambda: step(conv_t, theirs),
                            repeats=repeats))
    return rows


def classifier_rows(repeats, batch=128):
    import torch
    from bench_classifier import LR, mg_step, torch_step, torch_twin
    from minigen.metrics import ConvClassifier
    mg.manual_seed(0)
    model = ConvClassifier()
    twin = torch_twin(model)
    opt, topt = mg.optim.Adam(model.parameters(), lr=LR), torch.optim.Adam(twin.parameters(),
                                                                         lr=LR)
    rng = np.random.default_rng(0)
    x = rng.random((batch, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, batch)
    xm, xt, yt = mg.tensor(x), torch.from_numpy(x), torch.from_numpy(y)
    return [compare(f"classifier step, batch {batch}", lambda: mg_step(model, opt, xm, y),
                    lambda: torch_step(twin, topt, xt, yt), repeats=repeats)]


def vae_rows(repeats, batch=128):
    from bench_vae import step_ours, step_theirs, twins
    rng = np.random.default_rng(5)
    x = rng.random((batch, 784), dtype=np.float32)
    eps = rng.standard_normal((batch, 20), dtype=np.float32)
    rows = []
    for conv in (False, True):
        ours, theirs, opt_ours, opt_theirs = twins(conv=conv)
        name = f"{'conv' if conv else 'MLP'} VAE step, batch {batch}"
        rows.append(compare(name, lambda: step_ours(ours, opt_ours, x, eps),
                            lambda: step_theirs(theirs, opt_theirs, x, eps), repeats=repeats))
    return rows


def gan_rows(repeats):
    from bench_gan import speed
    return speed(repeats=repeats)


PARTS = {"mlp": mlp_rows, "conv": conv_rows, "classifier": classifier_rows, "vae": vae_rows,
         "gan": gan_rows}


def run(parts=tuple(PARTS), repeats=15):
    threads = set_threads()
    rows = []
    for part in parts:
        rows += PARTS[part](repeats)
    print(f"\nthreads: {threads}; load average (1 min) {os.getloadavg()[0]:.2f}")
    print_table(rows, goals=GOALS)
    return rows


if __name__ == "__main__":
    unknown = [a for a in sys.argv[1:] if a not in PARTS]
    if unknown:
        sys.exit(f"unknown part(s) {unknown}; known: {list(PARTS)}")
    run(sys.argv[1:] or tuple(PARTS))
