"""Side-by-side timing: minigen and a peer (PyTorch, scikit-learn, MiniSom) in one process.

The rules that make a ratio honest on a shared, noisy machine:

* both run in the same process on the same float32 data with the same number of threads;
* they alternate (minigen, peer, minigen, peer, ...) so a slow patch of the machine hits both;
* after warm-up runs (JIT compilation, caches), each pair gives a ratio minigen/peer and the
  table reports the median of those ratios, not seconds.
"""
import os
import statistics
import time


def set_threads(n=None):
    """Give NumPy's BLAS (via threadpoolctl when installed), Numba and torch ``n`` threads
    (default: $BENCH_THREADS, else every core)."""
    n = n or int(os.environ.get("BENCH_THREADS", 0)) or os.cpu_count()
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


def compare(name, ours, peer, repeats=15, warmup=2):
    """Time ``ours()`` and ``peer()`` alternately; return a result row (median ratio ours/peer)."""
    for _ in range(warmup):
        ours()
        peer()
    t_ours, t_peer = [], []
    for _ in range(repeats):
        t_ours.append(_time(ours))
        t_peer.append(_time(peer))
    ratios = [a / b for a, b in zip(t_ours, t_peer)]
    return {"case": name, "minigen_ms": 1e3 * statistics.median(t_ours),
            "peer_ms": 1e3 * statistics.median(t_peer), "ratio": statistics.median(ratios)}


def print_table(rows, peer="torch", goals=None):
    """Print rows from ``compare``; ``goals`` maps case -> the largest acceptable ratio."""
    goals = goals or {}
    width = max(len(r["case"]) for r in rows) + 2
    print(f"{'case':<{width}}{'minigen ms':>12}{peer + ' ms':>12}{'ratio':>8}  goal")
    for r in rows:
        goal = goals.get(r["case"])
        verdict = "" if goal is None else f"<= {goal}  {'met' if r['ratio'] <= goal else 'MISSED'}"
        print(f"{r['case']:<{width}}{r['minigen_ms']:>12.2f}{r['peer_ms']:>12.2f}"
              f"{r['ratio']:>8.2f}  {verdict}")
    print(f"(ratio = median over alternating pairs of minigen time / {peer} time; "
          f"times are medians, for orientation only)")
