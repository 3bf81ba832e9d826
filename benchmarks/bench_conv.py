"""Issue 3's benchmark: convolutions on DCGAN's MNIST shapes, forward + backward.

* discriminator: x (64, 1, 28, 28) -> conv2d 1->64 -> (64, 64, 14, 14) -> conv2d 64->128 ->
  (64, 128, 7, 7); kernel 4, stride 2, padding 1, with biases;
* generator, the mirror image: (64, 128, 7, 7) -> conv_transpose2d 128->64 -> (64, 64, 14, 14)
  -> conv_transpose2d 64->1 -> (64, 1, 28, 28).

Each step runs the forward and a backward from a fixed output gradient that reaches every
weight, bias and intermediate activation (not the data itself). Goal (issue 12): ratio
minigen/torch <= 1.3 (CPU, float32, same threads). The convolutions are GEMMs on im2col
columns, so those rows also give minigen's GFLOP/s against NumPy's matmul at the same
shapes (``conv_gemms``). Max-pool and avg-pool rows are for orientation.
Run: python benchmarks/bench_conv.py
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from harness import compare, print_table, set_threads  # noqa: E402

import minigen as mg  # noqa: E402

BATCH = 64
CONV = dict(stride=2, padding=1)
GOAL = 1.3


def conv_gemms(net):
    """The matrix products (m, k, n) of one fwd+bwd step, convolution as GEMM: a layer with
    c_in channels, c_out filters of 4x4 and P output positions per image is
    (B P, 16 c_in) @ (16 c_in, c_out) forward, the same count again for the weight gradient,
    and once more for the input gradient where the input needs one (not the data).
    A transposed convolution is the adjoint: its forward is the input-gradient product of
    the convolution it mirrors, and the other way round."""
    def conv(c_in, c_out, positions, input_grad, transposed=False):
        m, k = BATCH * positions, 16 * c_in
        direct, adjoint = (m, k, c_out), (m, c_out, k)
        forward, backward = (adjoint, direct) if transposed else (direct, adjoint)
        return [forward, (k, m, c_out)] + ([backward] if input_grad else [])
    if net == "D":   # 28x28 -> 14x14 (196 positions) -> 7x7 (49)
        return conv(1, 64, 196, False) + conv(64, 128, 49, True)
    # G mirrors D: convT 128->64 is the adjoint of a conv 64->128 with 49 output positions
    return conv(64, 128, 49, False, transposed=True) + conv(1, 64, 196, True, transposed=True)


def arrays(seed=0):
    """float32 data, weights (DCGAN init N(0, 0.02)) and output gradients for both nets."""
    rng = np.random.default_rng(seed)

    def normal(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    return {
        "D": dict(x=normal(BATCH, 1, 28, 28), w1=normal(64, 1, 4, 4, scale=0.02),
                  b1=normal(64, scale=0.02), w2=normal(128, 64, 4, 4, scale=0.02),
                  b2=normal(128, scale=0.02), g=normal(BATCH, 128, 7, 7)),
        "G": dict(x=normal(BATCH, 128, 7, 7), w1=normal(128, 64, 4, 4, scale=0.02),
                  b1=normal(64, scale=0.02), w2=normal(64, 1, 4, 4, scale=0.02),
                  b2=normal(1, scale=0.02), g=normal(BATCH, 1, 28, 28)),
    }


def two_layers(conv, x, w1, b1, w2, b2, g):
    """conv(conv(x)) forward, then backward from the output gradient g."""
    y = conv(conv(x, w1, b1, **CONV), w2, b2, **CONV)
    y.backward(g)
    return y


def clear(params):
    for p in params:
        p.grad = None


def run(repeats=20):
    import torch
    import torch.nn.functional as F
    threads = set_threads()
    rows = []
    for net, data in arrays().items():
        ours = {k: mg.tensor(v, requires_grad=k in ("w1", "b1", "w2", "b2")) for k, v in
                data.items()}
        theirs = {k: torch.tensor(v, requires_grad=k in ("w1", "b1", "w2", "b2")) for k, v in
                  data.items()}
        conv_mg, conv_t = ((mg.conv2d, F.conv2d) if net == "D" else
                           (mg.conv_transpose2d, F.conv_transpose2d))
        params_mg = [ours[k] for k in ("w1", "b1", "w2", "b2")]
        params_t = [theirs[k] for k in ("w1", "b1", "w2", "b2")]
        # same data, same weights: outputs and gradients must agree before timing means anything
        y_mg, y_t = two_layers(conv_mg, **ours), two_layers(conv_t, **theirs)
        np.testing.assert_allclose(y_mg.numpy(), y_t.detach().numpy(), rtol=1e-4, atol=1e-5)
        for p, q in zip(params_mg, params_t):
            np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-3, atol=1e-4)

        def step_mg():
            clear(params_mg)
            two_layers(conv_mg, **ours)

        def step_t():
            clear(params_t)
            two_layers(conv_t, **theirs)

        name = ("conv2d D 1->64->128 28x28 fwd+bwd" if net == "D" else
                "conv_transpose2d G 128->64->1 7x7 fwd+bwd")
        rows.append(compare(name, step_mg, step_t, repeats=repeats, gemms=conv_gemms(net)))

    # pooling, for orientation: forward + backward on a (64, 64, 14, 14) activation
    x = np.random.default_rng(1).standard_normal((BATCH, 64, 14, 14)).astype(np.float32)
    for name, pool_mg, pool_t in (("max_pool2d 2x2 64x64x14x14 fwd+bwd", mg.max_pool2d,
                                   F.max_pool2d),
                                  ("avg_pool2d 2x2 64x64x14x14 fwd+bwd", mg.avg_pool2d,
                                   F.avg_pool2d)):
        xm, xt = mg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)

        def pool_step(pool, t, gfn):
            t.grad = None
            y = pool(t, 2)
            y.backward(gfn(y))

        rows.append(compare(name, lambda: pool_step(pool_mg, xm, mg.ones_like),
                            lambda: pool_step(pool_t, xt, torch.ones_like), repeats=repeats))
    print(f"threads: {threads}, kernels: {'numba' if mg.kernels.use_kernels() else 'reference'}")
    print_table(rows, goals={rows[0]["case"]: GOAL, rows[1]["case"]: GOAL})
    return rows


if __name__ == "__main__":
    run()
