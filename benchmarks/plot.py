"""The benchmark record as a picture and as README's table.

    python benchmarks/plot.py                  # redraw benchmarks/results/chart.png
    python benchmarks/plot.py --readme         # and rewrite README.md's table from the latest run

Left panel: the latest run's ratios minigen/peer, one bar per row, the goal marked on each
bar (green: met, red: missed, grey: no goal). Right panel: every result file in
``benchmarks/results/`` in date order, one line per row, so a speed-up or a regression shows
as a step. The README table is written between the marker comments below, from one result
file, which it names; ``tests/test_bench_record.py`` checks that it still matches that file.
"""
import argparse
import glob
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
START, END = "<!-- bench-table start -->", "<!-- bench-table end -->"


def history(folder=RESULTS):
    """Every result file of ``folder``, oldest first: a list of (path, document)."""
    docs = []
    for path in glob.glob(os.path.join(folder, "[0-9]*-[0-9]*.json")):  # run.write's names
        with open(path) as f:
            doc = json.load(f)
        if isinstance(doc, dict) and "rows" in doc and "date" in doc:
            docs.append((path, doc))
    return sorted(docs, key=lambda pd: pd[1]["date"])


def label(row):
    return f"{row['benchmark']}: {row['case']}"


def chart(folder=RESULTS, path=None):
    """Draw the latest ratios and their history to ``path`` (default folder/chart.png)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    docs = history(folder)
    if not docs:
        raise FileNotFoundError(f"no result files in {folder}: run benchmarks/run.py first")
    latest = docs[-1][1]
    rows = latest["rows"]
    path = path or os.path.join(folder, "chart.png")
    fig, (bars, lines) = plt.subplots(1, 2, figsize=(15, max(3.5, 0.38 * len(rows) + 1.5)),
                                      gridspec_kw={"width_ratios": [3, 2]})
    y = range(len(rows))
    colours = ["grey" if "met" not in r else ("tab:green" if r["met"] else "tab:red")
               for r in rows]
    ratios = [r["ratio"] for r in rows]
    goal_y = [i for i, r in enumerate(rows) if r.get("goal") is not None]
    # a log axis has no zero: the bars start a factor 2 below the smallest ratio or goal
    base = 0.5 * min(ratios + [rows[i]["goal"] for i in goal_y] + [1.0])
    bars.barh(y, [q - base for q in ratios], left=base, color=colours, alpha=0.8)
    for i, r in enumerate(rows):
        text = f" {r['ratio']:#.3g}" + (f"  ({r['of_ceiling']:.0%} of GEMM ceiling)"
                                       if r.get("of_ceiling") is not None else "")
        bars.text(r["ratio"], i, text, va="center", fontsize=7)
    bars.scatter([rows[i]["goal"] for i in goal_y], goal_y, marker="|", s=400, color="black",
                 zorder=3, label="goal (largest acceptable ratio)")
    bars.axvline(1.0, color="black", lw=0.8, ls=":")
    bars.set_yticks(list(y), [label(r) for r in rows], fontsize=8)
    bars.invert_yaxis()
    bars.set_xscale("log")
    bars.set_xlim(base, 3 * max(ratios + [1.0]))
    _plain_log_ticks(bars.xaxis)
    bars.set_xlabel("time ratio minigen / peer (log scale; < 1: minigen faster)")
    load = latest.get("load_average", {}).get("start")
    bars.set_title(f"{latest['date'][:16]} UTC, {latest['machine']['threads']} threads, "
                   f"load {load[0]:.1f}" if load else latest["date"][:16], fontsize=9)
    if goal_y:
        bars.legend(fontsize=8, loc="lower right")
    series = {}
    for i, (_, doc) in enumerate(docs):
        for r in doc["rows"]:
            series.setdefault(label(r), []).append((i, r["ratio"]))
    for name, points in series.items():
        lines.plot(*zip(*points), marker="o", ms=3, lw=1, label=name)
    lines.set_xticks(range(len(docs)), [d["date"][5:16].replace("T", "\n") for _, d in docs],
                     fontsize=7)
    lines.set_yscale("log")
    _plain_log_ticks(lines.yaxis)
    lines.axhline(1.0, color="black", lw=0.8, ls=":")
    lines.set_ylabel("ratio minigen / peer")
    lines.set_title(f"history: {len(docs)} result file(s)", fontsize=9)
    if len(series) <= 20:
        lines.legend(fontsize=6, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _plain_log_ticks(axis):
    """Ticks at 1-2-5 steps, written 0.2 rather than 2 x 10^-1."""
    import matplotlib.ticker as ticker
    axis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(ticker.NullFormatter())


# ------------------------------------------------------------------ README table
def _number(value, fmt):
    return "" if value is None else format(value, fmt)


def readme_table(doc, source):
    """The markdown table of one result document; ``source`` is its path as README names it."""
    m, load = doc["machine"], doc.get("load_average", {}).get("start")
    v = doc["versions"]
    lines = [f"Generated by `python benchmarks/plot.py --readme` from `{source}` "
             f"({doc['date'][:16].replace('T', ' ')} UTC, commit {str(doc['commit'])[:10]}): "
             f"{m['cpu']}, {m['cores']} cores, {m['threads']} threads, load average "
             f"{_number(load and load[0], '.2f') or '?'}; numpy {v.get('numpy')}, "
             f"torch {v.get('torch')}, scikit-learn {v.get('scikit-learn')}, "
             f"MiniSom {v.get('minisom')}, numba {v.get('numba')}.",
             "",
             "| benchmark | case | ratio | goal | | minigen ms | peer ms | GFLOP/s "
             "(ceiling) |",
             "|---|---|---:|---:|---|---:|---:|---:|"]
    for r in doc["rows"]:
        goal = (f"<= {r['goal']:g}" if r.get("goal") is not None else
                f">= {r['goal_of_ceiling']:.0%} of ceiling" if r.get("goal_of_ceiling") else "")
        verdict = "" if "met" not in r else ("met" if r["met"] else "**missed**")
        rate = "" if r.get("gflops") is None else \
            f"{r['gflops']:.1f} ({r['ceiling_gflops']:.1f}, {r['of_ceiling']:.0%})"
        lines.append(f"| {r['benchmark']} | {r['case']} vs {r.get('peer', '?')} | "
                     f"{r['ratio']:#.3g} | {goal} | {verdict} | {_number(r.get('minigen_ms'), '.1f')}"
                     f" | {_number(r.get('peer_ms'), '.1f')} | {rate} |")
    return "\n".join(lines)


def readme_section(readme):
    """(text before, the generated part, text after) of README text; ValueError without markers."""
    if START not in readme or END not in readme:
        raise ValueError(f"README has no '{START}' ... '{END}' section")
    head, rest = readme.split(START, 1)
    body, tail = rest.split(END, 1)
    return head, body, tail


def named_source(body):
    """The result file a generated README section names (the first `...json` in it)."""
    import re
    found = re.search(r"`([^`]+\.json)`", body)
    if not found:
        raise ValueError("the README's benchmark section names no result file")
    return found.group(1)


def update_readme(readme_path, result_path):
    """Rewrite the section between the markers of ``readme_path`` from ``result_path``."""
    with open(result_path) as f:
        doc = json.load(f)
    source = os.path.relpath(result_path, os.path.dirname(os.path.abspath(readme_path)))
    with open(readme_path) as f:
        head, _, tail = readme_section(f.read())
    text = f"{head}{START}\n{readme_table(doc, source)}\n{END}{tail}"
    tmp = readme_path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, readme_path)
    return readme_path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default=RESULTS, help="folder of the result files")
    parser.add_argument("--readme", nargs="?", const=os.path.join(ROOT, "README.md"),
                        help="also rewrite README.md's table from the latest result file")
    args = parser.parse_args(argv)
    print(f"chart: {chart(args.results)}")
    if args.readme:
        latest = history(args.results)[-1][0]
        update_readme(args.readme, latest)
        print(f"table: {args.readme} (from {latest})")


if __name__ == "__main__":
    main()
