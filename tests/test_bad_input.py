"""Bad input is refused before work starts, in one line, exit status 2: numeric options of
every command (``minigen.options``), output paths, non-finite data in every model's ``fit``;
and training that *becomes* non-finite stops at the first NaN loss, its last checkpoint intact.
"""
import argparse
import json
import os

import numpy as np
import pytest

from minigen import options
from minigen.cli import build_parser, main
from minigen.data import write_idx
from minigen.runs import NonFiniteLoss, check_finite_loss

SMALL = ["--latent", "3", "--hidden", "16", "--batch-size", "16", "--iwae-k", "0",
         "--figures-every", "0"]


def one_line_error(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert err.startswith("minigen: error:") and "\n" not in err and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.mark.parametrize("argv, needle", [
    (["train", "vae", "--lr", "nan"], "--lr: must be a finite number, got 'nan'"),
    (["train", "vae", "--lr", "-0.001"], "--lr: must be a number > 0"),
    (["train", "vae", "--subset", "-5"], "--subset: must be an integer >= 1, got -5"),
    (["train", "vae", "--latent", "-1"], "--latent: must be an integer >= 1"),
    (["train", "vae", "--epochs", "0"], "--epochs: must be an integer >= 1"),
    (["train", "vae", "--batch-size", "2.5"], "--batch-size: must be an integer >= 1, got '2.5'"),
    (["train", "vae", "--beta", "inf"], "--beta: must be a finite number"),
    (["train", "vae", "--seed", "-1"], "--seed: must be an integer >= 0"),
    (["train", "rbm", "--momentum", "1.5"], "--momentum: must be a number in [0, 1)"),
    (["train", "rbm", "--ais-betas", "-3"], "--ais-betas: must be an integer >= 0"),
    (["train", "som", "--sigma", "-1"], "--sigma: must be a number >= 0"),
    (["train", "som", "--dataset", "colours", "--n-toy", "1"], "--n-toy: must be an integer >= 2"),
    (["train", "kmeans", "--tol", "nan"], "--tol: must be a finite number"),
    (["train", "gmm", "--reg-covar", "-1"], "--reg-covar: must be a number >= 0"),
    (["sample", "runs/x", "-n", "0"], "-n: must be an integer >= 1"),
])
def test_bad_numbers_are_refused_in_one_line(argv, needle, capsys, tmp_path):
    assert main(argv + ["--out", str(tmp_path / "out")]) == 2
    one_line_error(capsys, "argument " + needle)
    assert not (tmp_path / "out").exists()


def test_every_numeric_option_of_every_command_is_checked():
    """The policy covers every option declared anywhere in the parser tree, so a command
    added later (train gan, eval ...) with plain type=int/float gets it without a line."""
    plain = []

    def walk(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, path + [name])
            elif action.type in (int, float):
                plain.append(" ".join(path + [action.dest]))
            elif isinstance(action.type, options.Number) and action.default is not None:
                # each default obeys the option's own rule
                action.type(str(action.default))
    walk(build_parser(), ["minigen"])
    assert plain == []


def test_a_command_added_later_gets_the_policy(capsys):
    parser = options.Parser(prog="minigen")
    sub = parser.add_subparsers(dest="command").add_parser("gan")
    sub.add_argument("--n-critic", type=int, default=5)
    sub.add_argument("--seed", type=int, default=0)
    group = sub.add_argument_group("optimisation")  # options in groups are covered too
    group.add_argument("--gp-weight", type=float, default=10.0)
    options.apply_policy(parser)
    assert parser.parse_args(["gan", "--seed", "0", "--gp-weight", "-2"]).gp_weight == -2.0
    for bad in (["--n-critic", "0"], ["--seed", "-1"], ["--gp-weight", "nan"]):
        with pytest.raises(SystemExit) as e:
            parser.parse_args(["gan"] + bad)
        assert e.value.code == 2
        one_line_error(capsys, "argument " + bad[0])


def test_number_types_describe_their_range():
    assert options.count.describe() == "an integer >= 1"
    assert options.below_one.describe() == "a number in [0, 1)"
    assert options.positive("1e-3") == 1e-3 and options.natural("0") == 0
    for t, bad in ((options.positive, "0"), (options.unit_interval, "1.01"),
                   (options.count, "x"), (options.finite, "-inf")):
        with pytest.raises(argparse.ArgumentTypeError):
            t(bad)


def test_output_paths_are_checked_before_work(tmp_path, capsys):
    blocker = tmp_path / "F"
    blocker.write_text("a file")
    assert main(["sample", str(tmp_path), "--out", str(blocker / "x.png")]) == 2
    one_line_error(capsys, "--out: cannot write", f"{blocker} is a file, not a folder")
    assert main(["sample", str(tmp_path), "--out", str(tmp_path)]) == 2
    one_line_error(capsys, "is a folder; give a file name")
    assert main(["train", "kmeans", "--dataset", "ring", "--out", str(blocker / "run")]) == 2
    one_line_error(capsys, "cannot create output folder", "is a file, not a folder")
    assert options.path_problem(str(tmp_path / "new" / "deeper" / "x.png"), folder=False) is None


# ------------------------------------------------------------------ models refuse non-finite data
@pytest.mark.parametrize("make", [lambda M: M.KMeans(3), lambda M: M.GaussianMixture(2),
                                  lambda M: M.SOM(3, 3), lambda M: M.RBM(4)],
                         ids=["KMeans", "GaussianMixture", "SOM", "RBM"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_fit_refuses_non_finite_data_naming_the_entry(make, bad):
    import minigen.models as M
    X = np.random.default_rng(0).random((40, 3)).astype(np.float32)
    X[17, 2] = bad
    with pytest.raises(ValueError, match=rf"X\[17, 2\] is {bad} \(row 17, column 2\)"):
        make(M).fit(X)


# ------------------------------------------------------------------ training that turns NaN
def test_check_finite_loss():
    assert check_finite_loss(np.float32(2.5), 1, 3) == 2.5
    with pytest.raises(NonFiniteLoss, match=r"loss became nan at epoch 4, step 12: .*--lr.*"
                                            r"detect_anomaly"):
        check_finite_loss(float("nan"), 4, 12)
    with pytest.raises(NonFiniteLoss, match="test loss became inf at the end of epoch 2"):
        check_finite_loss(float("inf"), 2, name="test loss")


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    folder = tmp_path / "data"
    folder.mkdir()
    for stem, n in (("train", 64), ("t10k", 32)):
        write_idx(str(folder / f"{stem}-images-idx3-ubyte.gz"),
                  rng.integers(0, 255, (n, 28, 28)).astype(np.uint8))
        write_idx(str(folder / f"{stem}-labels-idx1-ubyte.gz"),
                  rng.integers(0, 10, n).astype(np.uint8))
    monkeypatch.setenv("MINIGEN_DATA", str(folder))
    monkeypatch.delenv("MINIGEN_DEBUG", raising=False)
    return folder


def _vae(out, *extra):
    return main(["train", "vae", "--dataset", "fashion-mnist", "--out", str(out), *SMALL, *extra])


def test_nan_stops_training_and_the_checkpoint_still_resumes(data_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert _vae(run, "--epochs", "1") == 0
    checkpoint = (run / "checkpoint.npz").read_bytes()
    capsys.readouterr()
    with np.errstate(all="ignore"):
        assert _vae(run, "--epochs", "2", "--resume", "--lr", "1e4") == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("minigen: error: the loss became") and "at epoch 2, step " in err
    assert "detect_anomaly" in err and "smaller --lr" in err
    assert (run / "checkpoint.npz").read_bytes() == checkpoint       # untouched
    assert len(json.loads((run / "metrics.json").read_text())) == 1
    assert _vae(run, "--epochs", "2", "--resume") == 0                # and it resumes
    straight = tmp_path / "straight"
    assert _vae(straight, "--epochs", "2") == 0
    from minigen.serialization import load
    a, b = load(str(run / "checkpoint.npz")), load(str(straight / "checkpoint.npz"))
    for key in a["params"]:
        np.testing.assert_array_equal(a["params"][key], b["params"][key])
    assert os.path.exists(run / "metrics.csv")
