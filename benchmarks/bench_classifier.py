"""Issue 3's benchmark: the feature classifier (minigen.metrics.ConvClassifier) on Fashion-MNIST.

(a) Speed: the same network in PyTorch (minigen's initial weights copied in), the same
    float32 batches of 128, the same threads. Training segments of SEGMENT_BATCHES steps
    (forward, cross entropy, backward, Adam) alternate minigen / torch; the ratio is the
    median over the pairs of minigen time / torch time. Goal: ratio <= 2.0.
(b) Accuracy: minigen's classifier trained on all 60k training images for EPOCHS epochs,
    test accuracy after each (goal >= 90 %); the weights are saved for FID.
    BENCH_CLS_TORCH_EPOCH=1 also trains the torch twin for one full epoch on the same
    batches, for a whole-epoch time ratio and a reference accuracy.

Environment (all optional):
    BENCH_THREADS            threads for BLAS / Numba / torch (default: all cores)
    BENCH_CLS_EPOCHS         epochs of (b) (default 3; 0 skips it)
    BENCH_CLS_SEGMENTS       segment pairs of (a) (default 5; 0 skips it)
    BENCH_CLS_SEGMENT_BATCHES  steps per segment (default 50)
    BENCH_CLS_TORCH_EPOCH    1: time one full torch epoch in (b) too (default 0)
    BENCH_CLS_OUT            where (b) saves the weights
                             (default benchmarks/results/fashion_classifier.npz)
Run: BENCH_CLS_EPOCHS=1 BENCH_CLS_SEGMENTS=3 python benchmarks/run.py classifier
"""
import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import set_threads  # noqa: E402

import minigen as mg  # noqa: E402
from minigen.data import DataLoader, load_dataset  # noqa: E402
from minigen.metrics import (ConvClassifier, evaluate, save_classifier,  # noqa: E402
                             train_classifier)
from minigen.nn import functional as F  # noqa: E402

BATCH, LR, SEED = 128, 1e-3, 0
GOAL_RATIO, GOAL_ACC = 2.0, 0.90


def env_int(name, default):
    return int(os.environ.get(name, default))


# ------------------------------------------------------------------ the torch twin
def torch_twin(model):
    """The same architecture in PyTorch, with the same parameter names and minigen's weights."""
    import torch
    from torch import nn

    cfg = model.config
    (C, H, W), (c1, c2) = cfg["image_shape"], cfg["channels"]

    def block(c_in, c_out):
        return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                             nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2))

    class Twin(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(block(C, c1), block(c1, c2), nn.Flatten(),
                                      nn.Linear(c2 * (H // 4) * (W // 4), cfg["hidden"]),
                                      nn.ReLU())
            self.dropout = nn.Dropout(cfg["dropout"])
            self.head = nn.Linear(cfg["hidden"], cfg["num_classes"])

        def forward(self, x):
            return self.head(self.dropout(self.body(x)))

    twin = Twin()
    twin.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in model.state_dict().items()})
    return twin


def mg_step(model, opt, x, y):
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss


def torch_step(model, opt, x, y):
    import torch.nn.functional as TF
    loss = TF.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss


def check_twins(model, twin, x, y):
    """Same weights, same batch, dropout off: the losses and gradients must agree."""
    import torch
    p_mg, p_t = model.dropout.p, twin.dropout.p
    model.dropout.p = twin.dropout.p = 0.0
    loss_mg = F.cross_entropy(model(x), y)
    loss_mg.backward()
    loss_t = torch.nn.functional.cross_entropy(twin(torch.from_numpy(x)), torch.from_numpy(y))
    loss_t.backward()
    assert abs(loss_mg.item() - loss_t.item()) < 1e-4, (loss_mg.item(), loss_t.item())
    grads_t = dict(twin.named_parameters())
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), grads_t[name].grad.numpy(), rtol=1e-2,
                                   atol=1e-4, err_msg=name)
        p.grad, grads_t[name].grad = None, None
    model.dropout.p, twin.dropout.p = p_mg, p_t
    print(f"twins agree: loss minigen {loss_mg.item():.6f}, torch {loss_t.item():.6f}")


# ------------------------------------------------------------------ (a) speed
def time_segments(X, y, segments, per_segment):
    import torch
    mg.manual_seed(SEED)
    model = ConvClassifier()
    twin = torch_twin(model)
    check_twins(model, twin, X[:BATCH], y[:BATCH])
    opt_mg = mg.optim.Adam(model.parameters(), lr=LR)
    opt_t = torch.optim.Adam(twin.parameters(), lr=LR)
    model.train(), twin.train()
    batches = iter(DataLoader((X, y), batch_size=BATCH, shuffle=True, seed=SEED,
                              drop_last=True))

    def segment(n):
        """n batches, each trained by minigen then by torch, timed per library."""
        xs = [next(batches) for _ in range(n)]
        start = time.perf_counter()
        for xb, yb in xs:
            mg_step(model, opt_mg, xb, yb)
        t_mg = time.perf_counter() - start
        xs_t = [(torch.from_numpy(xb.numpy()), torch.from_numpy(yb.numpy())) for xb, yb in xs]
        start = time.perf_counter()
        for xb, yb in xs_t:
            torch_step(twin, opt_t, xb, yb)
        return t_mg, time.perf_counter() - start

    segment(3)  # warm-up: JIT compilation, allocator, caches
    pairs = [segment(per_segment) for _ in range(segments)]
    ratios = [a / b for a, b in pairs]
    ms = [1e3 * statistics.median(t) / per_segment for t in zip(*pairs)]
    print(f"(a) {segments} alternating segments of {per_segment} training steps, batch {BATCH}")
    print("    per segment minigen/torch: " + ", ".join(f"{r:.2f}" for r in ratios))
    print(f"    median ms/step: minigen {ms[0]:.1f}, torch {ms[1]:.1f}")
    verdict = "met" if statistics.median(ratios) <= GOAL_RATIO else "MISSED"
    print(f"    median ratio minigen/torch: {statistics.median(ratios):.2f}  "
          f"(goal <= {GOAL_RATIO}: {verdict})")
    return {"case": f"CNN classifier training step, batch {BATCH}", "peer": "torch",
            "minigen_ms": ms[0], "peer_ms": ms[1], "ratio": statistics.median(ratios),
            "goal": GOAL_RATIO, "met": verdict == "met"}


# ------------------------------------------------------------------ (b) accuracy
def torch_epoch(X, y, X_test, y_test):
    """One epoch of the torch twin on minigen's batches (same seed, same order)."""
    import torch
    mg.manual_seed(SEED)
    twin = torch_twin(ConvClassifier())  # the weights train_classifier starts from
    opt = torch.optim.Adam(twin.parameters(), lr=LR)
    twin.train()
    start = time.perf_counter()
    for xb, yb in DataLoader((X, y), batch_size=BATCH, shuffle=True, seed=SEED):
        torch_step(twin, opt, torch.from_numpy(xb.numpy()), torch.from_numpy(yb.numpy()))
    seconds = time.perf_counter() - start
    twin.eval()
    with torch.no_grad():
        pred = torch.cat([twin(torch.from_numpy(X_test[i:i + 1000])).argmax(1)
                          for i in range(0, len(X_test), 1000)])
    return seconds, float((pred.numpy() == y_test).mean())


def train_full(X, y, X_test, y_test, epochs, with_torch):
    print(f"(b) minigen's classifier on all {len(X)} training images, batch {BATCH}, "
          f"Adam lr {LR}, seed {SEED}", flush=True)

    out = os.environ.get("BENCH_CLS_OUT") or os.path.join(HERE, "results",
                                                          "fashion_classifier.npz")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    mg.manual_seed(SEED)
    model = ConvClassifier()  # the weights torch_epoch's twin starts from too

    def report(r):  # after every epoch: print, and save (a long run stopped early keeps them)
        print(f"    epoch {r['epoch']}: loss {r['loss']:.4f}, train acc {r['train_acc']:.4f}, "
              f"test acc {r['test_acc']:.4f}, {r['seconds']:.0f} s", flush=True)
        save_classifier(model, out, test_accuracy=r["test_acc"], epochs=r["epoch"])

    _, history = train_classifier(X, y, epochs=epochs, batch_size=BATCH, lr=LR, seed=SEED,
                                  progress=True, model=model, eval_data=(X_test, y_test),
                                  on_epoch=report)
    acc = history[-1]["test_acc"]
    print(f"    test accuracy {acc:.4f} (goal >= {GOAL_ACC}: "
          f"{'met' if acc >= GOAL_ACC else 'MISSED'})")
    assert abs(evaluate(mg.metrics.load_classifier(out), X_test, y_test) - acc) < 1e-9
    print(f"    weights saved to {out}")
    if with_torch:
        seconds, acc_t = torch_epoch(X, y, X_test, y_test)
        ratio = history[0]["seconds"] / seconds
        print(f"    torch twin, epoch 1 on the same batches: {seconds:.0f} s, test acc "
              f"{acc_t:.4f}; epoch-time ratio minigen/torch {ratio:.2f} (not alternated)")
    return history


def run():
    threads = set_threads(env_int("BENCH_THREADS", 0) or None)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"threads: {threads}, load average (1 min): {load:.1f}, cores: {os.cpu_count()}, "
          f"kernels: {'numba' if mg.kernels.use_kernels() else 'reference'}")
    X, y = load_dataset("fashion-mnist", "train", flatten=False)
    X_test, y_test = load_dataset("fashion-mnist", "test", flatten=False)
    result = {}
    segments = env_int("BENCH_CLS_SEGMENTS", 5)
    if segments:
        result["speed"] = time_segments(X, y, segments, env_int("BENCH_CLS_SEGMENT_BATCHES", 50))
    epochs = env_int("BENCH_CLS_EPOCHS", 3)
    if epochs:
        result["history"] = train_full(X, y, X_test, y_test, epochs,
                                       bool(env_int("BENCH_CLS_TORCH_EPOCH", 0)))
    return result


if __name__ == "__main__":
    run()
