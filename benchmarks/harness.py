"""Side-by-side timing: minigen and a peer (PyTorch, scikit-learn, MiniSom) in one process.

The rules that make a ratio honest on a shared, noisy machine:

* both run in the same process on the same float32 data with the same number of threads;
* they alternate (minigen, peer, minigen, peer, ...) so a slow patch of the machine hits both;
* after warm-up runs (JIT compilation, caches), each pair gives a ratio minigen/peer and the
  table reports the median of those ratios, not seconds;
* with more than one thread, each timed call comes after ``SETTLE`` seconds of untimed calls
  of the same library. A library's idle threads keep spinning for a while after its call
  (GNU OpenMP's for up to about 15 ms here), on the cores the other library's next call
  needs: timed straight after each other, each call also paid for the other library's
  spinning threads (2 threads, minigen and torch on the same step: MLP batch 512 9.0 and
  4.6 ms, timed after 60 ms of their own calls 4.8 and 3.6 ms; torch's MLP VAE step 33 ms
  after minigen's calls, 5 ms after its own). A training loop runs one library's steps back
  to back, and that is what is timed. (Calls of over 10 x SETTLE are timed directly.)
"""
import os
import statistics
import time

# PyTorch is imported before minigen, as in a PyTorch user's process. Imported after it,
# torch's OpenMP code bound to the GNU OpenMP runtime Numba had loaded (minigen's kernels),
# and with 2 threads torch's MLP VAE step took 20-30 ms instead of 5-6 (1 thread: the same
# 8 ms either way): ratios at 2 threads measured that way flattered minigen.
try:
    import torch  # noqa: F401
except ImportError:
    pass


SETTLE = 0.03  # seconds of untimed calls before each timed one, with more than one thread
_threads = 1    # what set_threads set


def set_threads(n=None):
    """Give NumPy's BLAS (via threadpoolctl when installed), Numba and torch ``n`` threads
    (default: $BENCH_THREADS, else every core)."""
    global _threads
    n = n or int(os.environ.get("BENCH_THREADS", 0)) or os.cpu_count()
    _threads = n
    try:
        import numba
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    except ImportError:
        pass
    try:
        import torch
        torch.set_num_threads(n)
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(n)
    except ImportError:
        pass
    return n


def _time(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _time_settled(fn, settle):
    """Time one call of ``fn`` after ``settle`` seconds of untimed ones (see the module text)."""
    end = time.perf_counter() + settle
    while time.perf_counter() < end:
        fn()
    return _time(fn)


def compare(name, ours, peer, repeats=15, warmup=2, gemms=None):
    """Time ``ours()`` and ``peer()`` alternately; return a result row (median ratio ours/peer).

    ``gemms``: the matrix products one call of ``ours`` performs, as (m, k, n) triples (see
    ``gemm_rate``); the row then also says how close minigen came to the machine's ceiling.
    """
    longest = 0.0
    for _ in range(warmup):  # the last round's times: the first one compiles
        longest = max(_time(ours), _time(peer))
    # (a call of many times SETTLE is timed directly: the spinning is a few % of it)
    settle = SETTLE if _threads > 1 and longest < 10 * SETTLE else 0.0
    t_ours, t_peer = [], []
    for _ in range(repeats):
        t_ours.append(_time_settled(ours, settle))
        t_peer.append(_time_settled(peer, settle))
    ratios = [a / b for a, b in zip(t_ours, t_peer)]
    row = {"case": name, "minigen_ms": 1e3 * statistics.median(t_ours),
           "peer_ms": 1e3 * statistics.median(t_peer), "ratio": statistics.median(ratios)}
    if gemms:
        row.update(gemm_rate(gemms, row["minigen_ms"] / 1e3))
    return row


# ---------------------------------------------------------------- the physical limit
def gemm_flops(gemms):
    """Floating-point operations of the products (m, k, n) -> (m, k) @ (k, n): 2 m k n each
    (one multiply and one add per term). A triple may carry a 4th element, a repeat count."""
    return sum(2 * g[0] * g[1] * g[2] * (g[3] if len(g) > 3 else 1) for g in gemms)


def gemm_ceiling(gemms, repeats=7, seconds=0.3):
    """This machine's float32 GEMM rate (GFLOP/s) at the given shapes, measured now with
    NumPy's own matmul (its BLAS, the current thread count): the median over ``repeats`` of
    the time to run every product once (each shape timed ``count`` times in a row, on
    operands made once)."""
    import numpy as np
    rng = np.random.default_rng(0)
    shapes = {}
    for g in gemms:
        m, k, n = g[:3]
        shapes[m, k, n] = shapes.get((m, k, n), 0) + (g[3] if len(g) > 3 else 1)
    operands = [(rng.random((m, k), dtype=np.float32), rng.random((k, n), dtype=np.float32),
                 np.empty((m, n), dtype=np.float32), count)
                for (m, k, n), count in shapes.items()]

    def all_products():
        for a, b, out, count in operands:
            for _ in range(count):
                np.matmul(a, b, out=out)

    all_products()  # warm-up: BLAS threads awake, operands in cache as in a training loop
    budget = time.perf_counter() + seconds
    times = []
    while len(times) < repeats or (time.perf_counter() < budget and len(times) < 10 * repeats):
        times.append(_time(all_products))
    return gemm_flops(gemms) / statistics.median(times) / 1e9


def gemm_rate(gemms, seconds, ceiling=None):
    """Row fields for work with these products done in ``seconds``: achieved GFLOP/s, the
    ceiling at the same shapes (measured now unless given) and the fraction of it."""
    ceiling = gemm_ceiling(gemms) if ceiling is None else ceiling
    achieved = gemm_flops(gemms) / seconds / 1e9
    return {"gflops": achieved, "ceiling_gflops": ceiling, "of_ceiling": achieved / ceiling}


def print_table(rows, peer="torch", goals=None):
    """Print rows from ``compare``; ``goals`` maps case -> the largest acceptable ratio.

    The rows are also stamped with ``peer``, ``goal`` and ``met`` (what ``benchmarks/run.py``
    records), so a benchmark's ``run()`` can return them as they are. A row whose goal is a
    fraction of the GEMM ceiling instead (``goal_of_ceiling``, e.g. 0.8) is met when
    ``of_ceiling`` reaches it."""
    goals = goals or {}
    for r in rows:
        r.setdefault("peer", peer)
        if r["case"] in goals:
            r["goal"] = goals[r["case"]]
        if r.get("goal") is not None:
            r["met"] = bool(r["ratio"] <= r["goal"])
        elif r.get("goal_of_ceiling") is not None:
            r["met"] = bool(r["of_ceiling"] >= r["goal_of_ceiling"])
    width = max(len(r["case"]) for r in rows) + 2
    gemm = any("gflops" in r for r in rows)
    extra = f"{'GFLOP/s':>9}{'ceiling':>9}{'of it':>7}" if gemm else ""
    print(f"{'case':<{width}}{'minigen ms':>12}{peer + ' ms':>12}{'ratio':>8}{extra}  goal")
    for r in rows:
        verdict = "" if "met" not in r else \
            (f"<= {r['goal']}" if r.get("goal") is not None else
             f">= {r['goal_of_ceiling']:.0%} of ceiling") + f"  {'met' if r['met'] else 'MISSED'}"
        rate = ""
        if gemm:
            rate = (f"{r['gflops']:>9.1f}{r['ceiling_gflops']:>9.1f}{r['of_ceiling']:>7.0%}"
                    if "gflops" in r else " " * 25)
        print(f"{r['case']:<{width}}{r['minigen_ms']:>12.2f}{r['peer_ms']:>12.2f}"
              f"{r['ratio']:>#8.3g}{rate}  {verdict}")
    print(f"(ratio = median over alternating pairs of minigen time / {peer} time; "
          f"times are medians, for orientation only" +
          ("; GFLOP/s: minigen's matrix-product work per second, ceiling: NumPy's own matmul "
           "at the same shapes, timed now)" if gemm else ")"))
