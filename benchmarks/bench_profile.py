"""Where minigen is slower than PyTorch: minigen.profile beside torch.profiler, per op family.

    python benchmarks/bench_profile.py            # or: python benchmarks/run.py profile
    STEPS=10 BENCH_THREADS=1 python benchmarks/bench_profile.py

Three training steps, each built the same way in both libraries from the same float32 data
and weights: the MLP of bench_mlp (raw ops, SGD by hand), a DCGAN-like step (a strided-conv
discriminator with batch norm and LeakyReLU, a transposed-conv generator with batch norm,
ReLU and tanh; the discriminator step on real and fake images, then the non-saturating
generator step; Adam 2e-4, betas 0.5/0.999) and the conv VAE of bench_vae (Adam 1e-3).

Each step runs a few times unprofiled (warm-up: Numba compilation, allocator caches), then
STEPS times under each profiler. Every op is put in a family -- GEMM, convolution/im2col,
elementwise, normalisation, reductions (sums, softmax, the losses), shape & memory
(reshape, slicing, copies), optimizer, autograd engine -- and the table gives ms per step in
each family for both libraries, then their ratio. Times are *self* times (torch: an op's own
time without the ops it calls; minigen: a backward includes the ops it runs, as PyTorch's
``...Backward0`` nodes plus their aten children), so each column adds up to the profiled
step; "python / outside ops" is the rest of the wall time.

Both profilers cost time per op (torch's more than minigen's), so the profiled totals sit
above the unprofiled step times; the last line gives those, and their ratio, for scale.
"""
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import compare, set_threads  # noqa: E402

import minigen as mg  # noqa: E402
from minigen import nn  # noqa: E402
from minigen.profiler import record_function  # noqa: E402

FAMILIES = ("GEMM", "convolution/im2col", "elementwise", "normalisation", "reductions",
            "shape & memory", "optimizer", "autograd engine", "python / outside ops")

# ------------------------------------------------------------------ minigen ops -> families
MINIGEN_FAMILY = {
    "GEMM": {"MatMul", "Linear", "Outer"},
    "convolution/im2col": {"Conv2d", "ConvTranspose2d", "Conv2dWeight", "MaxPool2d",
                           "MaxPoolScatter", "MaxPoolGather"},
    "normalisation": {"Normalize"},
    "reductions": {"Sum", "Mean", "Var", "Std", "Max", "Min", "Amax", "Amin", "LogSumExp",
                   "Softmax", "LogSoftmax", "BCEWithLogits", "BinaryCrossEntropy"},
}


def minigen_family(row):
    if row.kind == "optimizer" or (row.kind == "region" and row.name.startswith("optimizer")):
        return "optimizer"
    if row.kind == "engine":
        return "autograd engine"
    if row.kind in ("outside", "region", "jit"):
        return "python / outside ops"
    for family, names in MINIGEN_FAMILY.items():
        if row.name in names:
            return family
    if row.module.endswith("ops.shape"):
        return "shape & memory"
    return "elementwise"


# ------------------------------------------------------------------ torch ops -> families
TORCH_PATTERNS = [
    ("optimizer", ("Optimizer.", "optimizer")),
    # the engine's own nodes ("autograd::engine::evaluate_function: MmBackward0",
    # "MmBackward0", "AccumulateGrad"): their self time is the engine's; the aten ops they
    # call are counted in their own families
    ("autograd engine", ("autograd::", "Backward0", "Backward1", "AccumulateGrad")),
    ("convolution/im2col", ("conv", "im2col", "col2im", "max_pool", "pool2d")),
    ("GEMM", ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear",
              "aten::dot", "aten::mv", "aten::baddbmm")),
    ("normalisation", ("batch_norm", "layer_norm")),
    ("reductions", ("aten::sum", "aten::mean", "softmax", "aten::max", "aten::amax",
                    "logsumexp", "binary_cross_entropy", "nll_loss", "aten::var", "aten::std")),
    ("shape & memory", ("aten::view", "aten::reshape", "aten::t", "aten::transpose",
                        "aten::permute", "aten::expand", "aten::as_strided", "aten::empty",
                        "aten::zeros", "aten::contiguous", "aten::clone", "aten::copy_",
                        "aten::cat", "aten::slice", "aten::select", "aten::index",
                        "aten::_unsafe_view", "aten::_reshape_alias", "aten::resize_",
                        "aten::detach", "aten::unsqueeze", "aten::squeeze", "aten::flatten",
                        "aten::stack", "aten::to", "aten::_to_copy", "aten::lift",
                        "aten::alias", "aten::numpy_T", "aten::unbind", "aten::new_empty",
                        "aten::empty_like", "aten::zeros_like", "aten::ones_like",
                        "aten::full", "aten::fill_", "aten::zero_", "aten::scalar_tensor",
                        "aten::result_type", "aten::item", "aten::_local_scalar_dense")),
]


def torch_family(name, ancestors):
    """The family of a torch event, by its own name or an enclosing annotation."""
    for anc in ancestors:
        if anc.startswith("Optimizer.") or anc.startswith("optimizer"):
            return "optimizer"
    for family, patterns in TORCH_PATTERNS:
        if any(p.lower() in name.lower() for p in patterns):
            return family
    if name.startswith("aten::"):
        return "elementwise"
    return "python / outside ops"


# ------------------------------------------------------------------ the three steps
def mlp_pair(batch=64):
    import torch
    from bench_mlp import minigen_step, torch_step, twins
    ours, theirs, xm, xt, y, yt = twins(batch)
    name = "optimizer (SGD by hand)"    # the update on raw arrays, named in both profiles
    return (f"MLP 784-256-256-10, batch {batch}",
            lambda: minigen_step(ours, xm, y, update=lambda: record_function(name)),
            lambda: torch_step(torch, theirs, xt, yt,
                               update=lambda: torch.profiler.record_function(name)))


def dcgan_models(lib, nz=64, ngf=32, ndf=32):
    """DCGAN for 1x28x28 (Radford et al. 2016): no pooling, batch norm in both nets but not
    on G's output nor D's input, ReLU + tanh in G, LeakyReLU(0.2) in D."""
    L = lib.nn
    generator = L.Sequential(
        L.ConvTranspose2d(nz, 2 * ngf, 7, 1, 0, bias=False), L.BatchNorm2d(2 * ngf), L.ReLU(),
        L.ConvTranspose2d(2 * ngf, ngf, 4, 2, 1, bias=False), L.BatchNorm2d(ngf), L.ReLU(),
        L.ConvTranspose2d(ngf, 1, 4, 2, 1), L.Tanh())
    discriminator = L.Sequential(
        L.Conv2d(1, ndf, 4, 2, 1), L.LeakyReLU(0.2),
        L.Conv2d(ndf, 2 * ndf, 4, 2, 1, bias=False), L.BatchNorm2d(2 * ndf), L.LeakyReLU(0.2),
        L.Conv2d(2 * ndf, 1, 7, 1, 0))
    return generator, discriminator


def dcgan_pair(batch=64, nz=64):
    import torch
    from minigen.optim import Adam
    mg.manual_seed(0)
    g_ours, d_ours = dcgan_models(mg, nz)
    g_theirs, d_theirs = dcgan_models(torch, nz)
    for ours, theirs in ((g_ours, g_theirs), (d_ours, d_theirs)):
        ours.apply(lambda m: _dcgan_init(m))
        theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    rng = np.random.default_rng(2)
    real = (rng.random((batch, 1, 28, 28), dtype=np.float32) * 2 - 1)
    z = rng.standard_normal((batch, nz, 1, 1), dtype=np.float32)
    ones, zeros = np.ones((batch, 1, 1, 1), np.float32), np.zeros((batch, 1, 1, 1), np.float32)
    adam = dict(lr=2e-4, betas=(0.5, 0.999))
    opt_g, opt_d = Adam(g_ours.parameters(), **adam), Adam(d_ours.parameters(), **adam)
    topt_g = torch.optim.Adam(g_theirs.parameters(), **adam)
    topt_d = torch.optim.Adam(d_theirs.parameters(), **adam)
    F, TF = mg.nn.functional, torch.nn.functional

    def gan_step(lib, Fn, G, D, og, od, x, zz, one, zero):
        fake = G(zz)
        d_loss = Fn.binary_cross_entropy_with_logits(D(x), one) + \
            Fn.binary_cross_entropy_with_logits(D(fake.detach()), zero)
        od.zero_grad()
        d_loss.backward()
        od.step()
        g_loss = Fn.binary_cross_entropy_with_logits(D(fake), one)   # non-saturating
        og.zero_grad()
        g_loss.backward()
        og.step()

    args_ours = [mg.tensor(a) for a in (real, z, ones, zeros)]
    args_theirs = [torch.tensor(a) for a in (real, z, ones, zeros)]
    return (f"DCGAN step (D on real+fake, then G), batch {batch}",
            lambda: gan_step(mg, F, g_ours, d_ours, opt_g, opt_d, *args_ours),
            lambda: gan_step(torch, TF, g_theirs, d_theirs, topt_g, topt_d, *args_theirs))


def _dcgan_init(m):
    """N(0, 0.02) for conv weights, N(1, 0.02) for batch-norm scales (DCGAN, section 4)."""
    name = type(m).__name__
    if "Conv" in name:
        m.weight.data[...] = np.random.default_rng(3).normal(0, 0.02, m.weight.shape)
    elif "BatchNorm" in name:
        m.weight.data[...] = np.random.default_rng(4).normal(1, 0.02, m.weight.shape)


def vae_pair(batch=128):
    from bench_vae import step_ours, step_theirs, twins
    ours, theirs, opt_ours, opt_theirs = twins(conv=True)
    rng = np.random.default_rng(5)
    x = rng.random((batch, 784), dtype=np.float32)
    eps = rng.standard_normal((batch, 20), dtype=np.float32)
    return (f"conv VAE, batch {batch}", lambda: step_ours(ours, opt_ours, x, eps),
            lambda: step_theirs(theirs, opt_theirs, x, eps))


# ------------------------------------------------------------------ profiling
def profile_minigen(step, steps):
    with mg.profile(trace=False) as prof:
        for _ in range(steps):
            step()
    families = dict.fromkeys(FAMILIES, 0.0)
    for row in prof.rows():
        families[minigen_family(row)] += row.total + (row.jit_time if row.kind == "jit" else 0)
    timed = sum(r.total for r in prof.rows() if r.kind not in ("outside", "jit"))
    families["(timed rows)"] = timed     # ops, engine, optimizer, regions: all but "outside"
    return {k: v / steps for k, v in families.items()}, prof.wall / steps


def profile_torch(step, steps):
    import torch
    from torch.profiler import ProfilerActivity
    start = time.perf_counter()
    with torch.profiler.profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    wall = time.perf_counter() - start
    families = dict.fromkeys(FAMILIES, 0.0)
    for ev in prof.events():
        ancestors, parent = [], ev.cpu_parent
        while parent is not None:
            ancestors.append(parent.name)
            parent = parent.cpu_parent
        families[torch_family(ev.name, ancestors)] += ev.self_cpu_time_total / 1e6
    inside = sum(families.values()) - families["python / outside ops"]
    families["python / outside ops"] = max(0.0, wall - inside)
    return {k: v / steps for k, v in families.items()}, wall / steps


def side_by_side(name, ours, theirs, wall_ours, wall_theirs, plain):
    print(f"\n{name}")
    print(f"{'family':<24}{'minigen ms':>12}{'torch ms':>10}{'ratio':>8}{'minigen %':>11}"
          f"{'torch %':>9}")
    for family in FAMILIES:
        a, b = 1e3 * ours[family], 1e3 * theirs[family]
        ratio = f"{a / b:>8.2f}" if b > 1e-3 else f"{'-':>8}"
        print(f"{family:<24}{a:>12.3f}{b:>10.3f}{ratio}{100 * a / (1e3 * wall_ours):>10.1f}%"
              f"{100 * b / (1e3 * wall_theirs):>8.1f}%")
    print(f"{'profiled step (sum)':<24}{1e3 * wall_ours:>12.3f}{1e3 * wall_theirs:>10.3f}"
          f"{wall_ours / wall_theirs:>8.2f}")
    print(f"{'unprofiled step':<24}{plain['minigen_ms']:>12.3f}{plain['peer_ms']:>10.3f}"
          f"{plain['ratio']:>8.2f}   (median of alternating pairs)")
    timed = 1e3 * ours["(timed rows)"]
    print(f"minigen: the timed rows (ops, engine, optimizer) sum to {timed:.3f} ms per step = "
          f"{100 * timed / plain['minigen_ms']:.1f}% of the unprofiled step; profiling made the "
          f"step {100 * (1e3 * wall_ours / plain['minigen_ms'] - 1):+.1f}% longer")


def run(steps=None, warmup=3):
    import torch  # noqa: F401  (the peer; the `bench` extra installs it)
    steps = steps or int(os.environ.get("STEPS", 20))
    threads = set_threads()
    print(f"threads: {threads}; {steps} profiled steps per library after {warmup} warm-up steps")
    for make in (mlp_pair, dcgan_pair, vae_pair):
        name, ours, theirs = make()
        for _ in range(warmup):
            ours()
            theirs()
        plain = compare(name, ours, theirs, repeats=max(5, steps // 2), warmup=0)
        fam_ours, wall_ours = _median_profile(profile_minigen, ours, steps)
        fam_theirs, wall_theirs = _median_profile(profile_torch, theirs, steps)
        side_by_side(name, fam_ours, fam_theirs, wall_ours, wall_theirs, plain)
    print("\n(ms per step, self time per family; ratio = minigen / torch; the profilers' own "
          "cost is inside the profiled totals)")


def _median_profile(profiler, step, steps, rounds=3):
    """The round (of ``steps`` steps) with the median wall time: one noisy round on a shared
    machine does not decide the table."""
    results = sorted((profiler(step, steps) for _ in range(rounds)), key=lambda r: r[1])
    return results[len(results) // 2]


if __name__ == "__main__":
    run()
