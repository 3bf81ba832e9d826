"""Run every benchmark (or those named) and keep the record:

    python benchmarks/run.py [mlp conv vae classical ...] [--readme] [--no-plot]

Each benchmarks/bench_NAME.py defines ``run()``, which prints its table and returns its rows
(the dicts of ``harness.compare``, stamped by ``harness.print_table`` with peer, goal and
met). The rows of this run, with the machine, its load, the thread count, the peers' versions
and the git commit, go to ``benchmarks/results/<UTC timestamp>.json``; then
``benchmarks/plot.py`` redraws ``benchmarks/results/chart.png`` (the latest ratios and their
history) and, with ``--readme``, the table in README.md. Peers come from the `bench` extra
(torch 2.13.0 CPU, scikit-learn, MiniSom).
"""
import argparse
import datetime
import glob
import importlib
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
sys.path.insert(0, HERE)

# what a result file records about the software (the installed distributions' versions)
PACKAGES = ("numpy", "numba", "torch", "scikit-learn", "minisom", "scipy", "threadpoolctl")
# the fields of a row that a result file keeps (a benchmark may add others: they are kept too)
ROW_FIELDS = ("benchmark", "case", "ratio", "goal", "goal_of_ceiling", "met", "peer",
              "minigen_ms", "peer_ms", "gflops", "ceiling_gflops", "of_ceiling")


def known():
    return sorted(os.path.basename(p)[6:-3] for p in glob.glob(os.path.join(HERE, "bench_*.py")))


def cpu_model():
    """The CPU's marketing name from /proc/cpuinfo (Linux), else platform's guess."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions(packages=PACKAGES):
    from importlib.metadata import PackageNotFoundError, version
    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def git_commit(root=ROOT):
    """HEAD's hash, with '+dirty' when tracked files differ from it (None outside git)."""
    def git(*args):
        return subprocess.run(["git", "-C", root, *args], capture_output=True, text=True,
                              check=True).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("+dirty" if dirty else "")


def load_average():
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def machine(threads):
    return {"host": platform.node(), "machine": platform.machine(), "cpu": cpu_model(),
            "cores": os.cpu_count(), "threads": threads, "system": platform.platform()}


def clean_row(row, benchmark):
    """A row as JSON keeps it: plain floats/bools (NumPy scalars converted), benchmark first."""
    out = {"benchmark": benchmark}
    for key, value in row.items():
        if getattr(value, "shape", None) == ():  # a NumPy scalar
            value = value.item()
        if isinstance(value, (str, int, float, bool)) or value is None:
            out[key] = value
    return {**{k: out[k] for k in ROW_FIELDS if k in out},
            **{k: v for k, v in out.items() if k not in ROW_FIELDS}}


def rows_of(result):
    """The ratio rows a benchmark's ``run()`` returned (a list of rows, or a dict holding
    some); anything else -- a quality study, a profile -- records no row."""
    if isinstance(result, dict):
        result = [v for v in result.values() if isinstance(v, dict) and "ratio" in v] or \
                 [r for v in result.values() if isinstance(v, list) for r in v]
    if not isinstance(result, list):
        return []
    return [r for r in result if isinstance(r, dict) and "ratio" in r and "case" in r]


def record(rows, threads, started, load_before, finished=None, names=()):
    """The JSON document of one run."""
    return {"date": started.isoformat(timespec="seconds"),
            "finished": (finished or datetime.datetime.now(datetime.timezone.utc)).isoformat(
                timespec="seconds"),
            "benchmarks": list(names), "commit": git_commit(), "machine": machine(threads),
            "load_average": {"start": load_before, "end": load_average()},
            "versions": versions(), "rows": rows}


def write(doc, folder=RESULTS):
    """Write a record to ``folder/<date as YYYYmmdd-HHMMSS>.json``; returns the path."""
    os.makedirs(folder, exist_ok=True)
    stamp = datetime.datetime.fromisoformat(doc["date"]).strftime("%Y%m%d-%H%M%S")
    path = os.path.join(folder, f"{stamp}.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {known()})")
    parser.add_argument("--out", default=RESULTS, help="folder of the result files")
    parser.add_argument("--no-plot", action="store_true", help="do not redraw the chart")
    # a plain flag: with an optional value, `run.py --readme classical` took the benchmark's
    # name for the README's path
    parser.add_argument("--readme", action="store_true",
                        help="rewrite the benchmark table of README.md (of --readme-file)")
    parser.add_argument("--readme-file", default=os.path.join(ROOT, "README.md"),
                        help="the file whose table --readme rewrites (default README.md)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in known()]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; known: {known()}")
    from harness import set_threads
    threads = set_threads()
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = load_average()
    print(f"threads: {threads}; load average: {load_before}", flush=True)
    rows = []
    for name in args.names or known():
        print(f"\n=== {name} ===", flush=True)
        start = time.perf_counter()
        result = importlib.import_module(f"bench_{name}").run()
        rows += [clean_row(r, name) for r in rows_of(result)]
        print(f"({name}: {time.perf_counter() - start:.0f} s)", flush=True)
    path = write(record(rows, threads, started, load_before, names=args.names or known()),
                 args.out)
    print(f"\nresults: {os.path.relpath(path)} ({len(rows)} rows)")
    import plot
    if not args.no_plot:
        print(f"chart: {os.path.relpath(plot.chart(args.out))}")
    if args.readme:
        plot.update_readme(args.readme_file, path)
        print(f"table: {os.path.relpath(args.readme_file)}")
    return path


if __name__ == "__main__":
    main()
