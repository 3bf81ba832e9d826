"""`minigen train rbm|som|kmeans|gmm`: runs end to end on tiny data, writes metrics,
checkpoint and figures; `minigen sample`; resume; one-line errors."""
import json
import os

import pytest

from minigen.cli import main

pytest.importorskip("sklearn", reason="scikit-learn not installed: the digits set needs it")


def run(argv):
    return main([str(a) for a in argv])


def files(folder):
    return set(os.listdir(folder))


def test_som_colours_with_resume(tmp_path):
    out = tmp_path / "som"
    base = ["train", "som", "--dataset", "colours", "--n-toy", 200, "--rows", 5, "--cols", 6,
            "--out", out]
    assert run(base + ["--epochs", 2]) == 0
    assert {"map.png", "u_matrix.png", "hit_map.png", "component_planes.png", "evolution.png",
            "quantization_error.png", "checkpoint.npz", "metrics.json"} <= files(out)
    assert run(base + ["--epochs", 3, "--resume"]) == 0
    records = json.loads((out / "metrics.json").read_text())
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert all(0 <= r["train_te"] <= 1 for r in records)


def test_kmeans_and_gmm_on_toy_sets(tmp_path):
    assert run(["train", "kmeans", "--dataset", "ring", "--n-toy", 400, "--k", 8,
                "--n-init", 2, "--out", tmp_path / "km"]) == 0
    assert {"clusters.png", "checkpoint.npz"} <= files(tmp_path / "km")
    km = json.loads((tmp_path / "km" / "metrics.json").read_text())
    assert len(km) == 2 and km[0]["purity"] > 0.9
    assert run(["train", "gmm", "--dataset", "ring", "--n-toy", 400, "--k", 8,
                "--out", tmp_path / "gmm"]) == 0
    gm = json.loads((tmp_path / "gmm" / "metrics.json").read_text())
    lls = [r["train_log_likelihood"] for r in gm[:-1]]
    assert all(b >= a - 1e-9 for a, b in zip(lls, lls[1:]))
    assert "test_log_likelihood" in gm[-1]
    assert run(["sample", tmp_path / "gmm", "-n", 50, "--out", tmp_path / "g.png"]) == 0
    assert (tmp_path / "g.png").exists()


def test_rbm_digits_train_and_sample(tmp_path):
    out = tmp_path / "rbm"
    assert run(["train", "rbm", "--dataset", "digits", "--subset", 300, "--hidden", 16,
                "--epochs", 2, "--batch-size", 20, "--ais-chains", 20, "--ais-betas", 200,
                "--gibbs-steps", 16, "--eval-n", 100, "--out", out]) == 0
    assert {"filters.png", "samples.png", "chain.png", "curves.png"} <= files(out)
    last = json.loads((out / "metrics.json").read_text())[-1]
    assert last["test_log_likelihood"] < 0 and last["log_z_low"] <= last["log_z_ais"]
    assert run(["sample", out, "-n", 4, "--out", tmp_path / "s.png"]) == 0
    assert (tmp_path / "s.png").exists()


def test_errors_are_one_line(tmp_path, capsys):
    assert run(["train", "kmeans", "--dataset", "colours", "--n-toy", 5, "--k", 9,
                "--out", tmp_path / "k"]) == 2
    assert "--k 9 is more than the 5 training rows" in capsys.readouterr().err
    assert run(["train", "som", "--dataset", "colours", "--epochs", 0,
                "--out", tmp_path / "s"]) == 2
    assert run(["train", "som", "--dataset", "colours", "--n-toy", 50, "--epochs", 1,
                "--out", tmp_path / "s2"]) == 0
    assert run(["train", "rbm", "--dataset", "digits", "--subset", 50, "--hidden", 8,
                "--epochs", 1, "--out", tmp_path / "s2", "--resume"]) == 2
    assert "not 'rbm'" in capsys.readouterr().err
