"""Run every benchmark (or those named): python benchmarks/run.py [mlp conv vae classical ...]

Each benchmarks/bench_NAME.py defines ``run()`` that prints its table. Peers come from the
`bench` extra (torch 2.13.0 CPU, scikit-learn, MiniSom).
"""
import glob
import importlib
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def main(names):
    found = sorted(os.path.basename(p)[6:-3] for p in glob.glob(os.path.join(HERE, "bench_*.py")))
    unknown = [n for n in names if n not in found]
    if unknown:
        sys.exit(f"unknown benchmark(s) {unknown}; known: {found}")
    for name in names or found:
        print(f"\n=== {name} ===", flush=True)
        start = time.perf_counter()
        importlib.import_module(f"bench_{name}").run()
        print(f"({name}: {time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
