"""Issue 2's benchmark: an MLP 784-256-256-10 written with raw ops, forward + backward + SGD step.

Goal (issue 12): ratio minigen/torch <= 1.5 at batch 64 and <= 1.0 at batch 512 (CPU, same
threads). The step is GEMM-bound: the table also gives minigen's GFLOP/s in its matrix
products against NumPy's own matmul at the same shapes (``mlp_gemms``).
Run: python benchmarks/bench_mlp.py
"""
import contextlib
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from harness import compare, print_table, set_threads  # noqa: E402

import minigen as mg  # noqa: E402

SIZES = [784, 256, 256, 10]
LR = 0.01


def init_weights(seed=0):
    """Float32 weights shared by both libraries (Glorot-scaled normals, zero biases)."""
    rng = np.random.default_rng(seed)
    ws = []
    for n_in, n_out in zip(SIZES[:-1], SIZES[1:]):
        scale = np.sqrt(2 / (n_in + n_out))
        ws.append((rng.standard_normal((n_in, n_out)) * scale).astype(np.float32))
        ws.append(np.zeros(n_out, dtype=np.float32))
    return ws


def minigen_step(params, x, y, update=contextlib.nullcontext):
    """Forward, backward, SGD; ``update`` wraps the SGD update (a profiler's named region)."""
    h = x
    for i in range(0, len(params), 2):
        h = h @ params[i] + params[i + 1]
        if i + 2 < len(params):
            h = h.relu()
    loss = -h.log_softmax(dim=1)[np.arange(len(y)), y].mean()
    loss.backward()
    with update(), mg.no_grad():
        for p in params:
            p.data -= LR * p.grad.data
            p.grad = None
    return loss


def torch_step(torch, params, x, y, update=contextlib.nullcontext):
    h = x
    for i in range(0, len(params), 2):
        h = h @ params[i] + params[i + 1]
        if i + 2 < len(params):
            h = h.relu()
    loss = -h.log_softmax(dim=1)[torch.arange(len(y)), y].mean()
    loss.backward()
    with update(), torch.no_grad():
        for p in params:
            p -= LR * p.grad
            p.grad = None
    return loss


def mlp_gemms(batch, sizes=SIZES):
    """The matrix products (m, k, n) of one training step: forward h @ W per layer, the
    weight gradients h^T @ g, and the input gradients g @ W^T of every layer but the first
    (the data need none)."""
    layers = list(zip(sizes[:-1], sizes[1:]))
    return ([(batch, i, o) for i, o in layers] + [(i, batch, o) for i, o in layers] +
            [(batch, o, i) for i, o in layers[1:]])


def twins(batch):
    """The same float32 weights and batch for both: (ours, theirs, x ours, x theirs, y, y torch)."""
    import torch
    rng = np.random.default_rng(1)
    x = rng.random((batch, SIZES[0]), dtype=np.float32)
    y = rng.integers(0, SIZES[-1], batch)
    ws = init_weights()
    ours = [mg.tensor(w, requires_grad=True) for w in ws]
    theirs = [torch.tensor(w, requires_grad=True) for w in ws]
    return ours, theirs, mg.tensor(x), torch.tensor(x), y, torch.tensor(y)


def run(batches=(64, 512), repeats=30):
    import torch
    threads = set_threads()
    rows = []
    for batch in batches:
        ours, theirs, xm, xt, y, yt = twins(batch)
        # same data, same weights: the first losses must agree before timing means anything
        lm, lt = minigen_step(ours, xm, y).item(), torch_step(torch, theirs, xt, yt).item()
        assert abs(lm - lt) < 1e-4 * max(1, abs(lt)), (lm, lt)
        rows.append(compare(f"mlp 784-256-256-10 batch {batch}",
                            lambda: minigen_step(ours, xm, y),
                            lambda: torch_step(torch, theirs, xt, yt), repeats=repeats,
                            gemms=mlp_gemms(batch)))
    print(f"threads: {threads}")
    print_table(rows, goals={"mlp 784-256-256-10 batch 64": 1.5,
                             "mlp 784-256-256-10 batch 512": 1.0})
    return rows


if __name__ == "__main__":
    run()
