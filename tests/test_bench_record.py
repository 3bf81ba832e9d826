"""The benchmark record: result files, the chart, README's generated table, GFLOP/s counts.

Nothing here times anything that matters: a tiny fake benchmark goes through the same
writer and plotter as ``make bench``.
"""
import json
import os
import sys

import numpy as np
import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import harness  # noqa: E402
import plot  # noqa: E402
import run as bench_run  # noqa: E402

FAKE = '''
import numpy as np
from harness import compare, print_table

def run():
    a, b = np.ones((8, 16), np.float32), np.ones((16, 4), np.float32)
    rows = [compare("tiny product", lambda: a @ b, lambda: a @ b, repeats=3, warmup=1,
                    gemms=[(8, 16, 4)]),
            compare("no goal", lambda: None, lambda: None, repeats=3, warmup=1)]
    print_table(rows, peer="numpy", goals={"tiny product": 1e9})
    return rows
'''


# ------------------------------------------------------------------ README <-> result file
def readme_parts():
    with open(os.path.join(ROOT, "README.md")) as f:
        _, body, _ = plot.readme_section(f.read())
    source = plot.named_source(body)
    with open(os.path.join(ROOT, source)) as f:
        return body, source, json.load(f)


def test_readme_table_is_generated_from_the_result_file_it_names():
    body, source, doc = readme_parts()
    assert body.strip() == plot.readme_table(doc, source), \
        "README's benchmark table is stale: run `python benchmarks/plot.py --readme`"
    assert doc["rows"], "the named result file has no rows"


def test_readme_check_catches_an_edited_ratio():
    """The comparison above can fail: one ratio changed in the document changes the table."""
    body, source, doc = readme_parts()
    doc["rows"][0]["ratio"] *= 1.5
    assert body.strip() != plot.readme_table(doc, source)


def test_readme_section_needs_its_markers():
    with pytest.raises(ValueError, match="bench-table"):
        plot.readme_section("# a README without the generated section\n")


# ------------------------------------------------------------------ writer, chart, table
def test_run_records_a_fake_benchmark(tmp_path, monkeypatch):
    (tmp_path / "bench_fake.py").write_text(FAKE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(bench_run, "known", lambda: ["fake"])
    monkeypatch.setattr(harness, "set_threads", lambda n=None: 1)  # leave the worker's threads
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{plot.START}\nold table\n{plot.END}\noutro\n")
    out = tmp_path / "results"
    # --readme before the names: a flag, it must not take "fake" for the README's path
    first = bench_run.main(["--readme", "fake", "--out", str(out), "--readme-file", str(readme)])
    doc = json.loads(open(first).read())

    assert [r["case"] for r in doc["rows"]] == ["tiny product", "no goal"]
    tiny, plain = doc["rows"]
    assert tiny["benchmark"] == "fake" and tiny["peer"] == "numpy"
    assert tiny["goal"] == 1e9 and tiny["met"] is True
    assert tiny["gflops"] == pytest.approx(2 * 8 * 16 * 4 / (tiny["minigen_ms"] / 1e3) / 1e9)
    assert tiny["of_ceiling"] == pytest.approx(tiny["gflops"] / tiny["ceiling_gflops"])
    assert "goal" not in plain and "met" not in plain and "gflops" not in plain
    assert doc["machine"]["threads"] == 1 and doc["machine"]["cores"] == os.cpu_count()
    assert doc["versions"]["numpy"] == np.__version__
    assert len(doc["load_average"]["start"]) == 3 and doc["date"] <= doc["finished"]
    assert doc["commit"] is None or len(doc["commit"].split("+")[0]) == 40

    chart = out / "chart.png"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("\noutro\n") and "old table" not in text
    assert "| fake | tiny product vs numpy |" in text and "results/" in text

    # a second run: the history has two files, the README names the newer one
    later = dict(doc, date="2999-01-01T00:00:00+00:00", rows=[dict(tiny, ratio=2.0)])
    second = bench_run.write(later, str(out))
    assert [p for p, _ in plot.history(str(out))] == [first, second]
    plot.main(["--results", str(out), "--readme", str(readme)])
    assert os.path.basename(second) in readme.read_text()
    assert "| 2.00 |" in readme.read_text()  # trailing zeros kept: 1.00 against a goal of 1


def test_a_missed_goal_and_a_ceiling_goal_are_recorded():
    rows = [{"case": "slow", "minigen_ms": 2.0, "peer_ms": 1.0, "ratio": 2.0},
            {"case": "near the limit", "minigen_ms": 1.0, "peer_ms": 1.0, "ratio": 1.0,
             "goal_of_ceiling": 0.8, **harness.gemm_rate([(10, 10, 10)], 1e-6, ceiling=4.0)}]
    harness.print_table(rows, goals={"slow": 1.5})
    assert rows[0]["met"] is False
    assert rows[1]["gflops"] == pytest.approx(2.0) and rows[1]["of_ceiling"] == 0.5
    assert rows[1]["met"] is False  # 50 % of the ceiling < 80 %
    table = plot.readme_table({"date": "2026-01-01T00:00", "commit": None, "rows": [
        bench_run.clean_row(r, "x") for r in rows], "machine": bench_run.machine(2),
        "versions": bench_run.versions(), "load_average": {"start": [0.5, 0, 0]}}, "r.json")
    assert "**missed**" in table and ">= 80% of ceiling" in table and "2.0 (4.0, 50%)" in table


def test_rows_of_reads_lists_and_dicts_and_ignores_the_rest():
    row = {"case": "a", "ratio": 1.0}
    assert bench_run.rows_of([row, {"no": "ratio"}]) == [row]
    assert bench_run.rows_of({"speed": row, "history": [1, 2]}) == [row]
    assert bench_run.rows_of(None) == [] and bench_run.rows_of(0.5) == []


def test_clean_row_keeps_plain_json_values():
    row = bench_run.clean_row({"case": "c", "ratio": np.float32(0.5), "met": np.bool_(True),
                               "arrays": np.ones(3)}, "b")
    assert row == {"benchmark": "b", "case": "c", "ratio": 0.5, "met": True}
    json.dumps(row)


# ------------------------------------------------------------------ FLOP counts
def test_gemm_flops_counts_two_per_multiply_add():
    assert harness.gemm_flops([(2, 3, 4), (1, 1, 1, 5)]) == 2 * 24 + 2 * 5


def test_gemm_ceiling_measures_a_positive_rate():
    assert harness.gemm_ceiling([(16, 16, 16)], repeats=2, seconds=0) > 0


def test_benchmark_gemm_lists_match_hand_counts():
    from bench_classical import rbm_gemms
    from bench_conv import conv_gemms
    from bench_mlp import mlp_gemms
    # MLP 784-256-256-10, batch 64: forward + weight grads (3 layers) + input grads (2 layers)
    forward = 2 * 64 * (784 * 256 + 256 * 256 + 256 * 10)
    assert harness.gemm_flops(mlp_gemms(64)) == 2 * forward + 2 * 64 * (256 * 256 + 256 * 10)
    # RBM: 4 products per mini-batch, the gradient's twice the others (2b rows: both phases)
    per_batch = lambda b: 5 * 2 * b * 784 * 256  # noqa: E731
    assert harness.gemm_flops(rbm_gemms(100, batch=64)) == per_batch(64) + per_batch(36)
    assert 120e9 < harness.gemm_flops(rbm_gemms(60000)) < 121e9  # issue 12's "about 120 GFLOP"
    # conv: the layer that reads the data needs no input gradient (D's small first layer,
    # G's big first layer)
    small, big = 196 * 16 * 64, 49 * 1024 * 128
    assert harness.gemm_flops(conv_gemms("D")) == 2 * 64 * (2 * small + 3 * big)
    assert harness.gemm_flops(conv_gemms("G")) == 2 * 64 * (2 * big + 3 * small)


def test_with_threads_each_timed_call_follows_untimed_calls_of_its_own_library(monkeypatch):
    import itertools
    calls = []
    ours, peer = (lambda: calls.append("minigen")), (lambda: calls.append("peer"))
    monkeypatch.setattr(harness, "SETTLE", 0.002)
    monkeypatch.setattr(harness, "_threads", 2)
    harness.compare("settled", ours, peer, repeats=3, warmup=1)
    runs = [(name, len(list(group))) for name, group in itertools.groupby(calls[2:])]
    assert [name for name, _ in runs] == ["minigen", "peer"] * 3  # still alternating
    assert all(length > 1 for _, length in runs)  # each timed call after untimed ones
    calls.clear()
    monkeypatch.setattr(harness, "_threads", 1)  # one thread: no spinning pool to wait out
    harness.compare("direct", ours, peer, repeats=3, warmup=1)
    assert calls == ["minigen", "peer"] * 4
