"""`minigen train dann`, `minigen train cyclegan` and `minigen sample` on tiny IDX files:
figures, metrics, samples, one-line errors, and resuming an interrupted run bit for bit."""
import inspect
import json

import numpy as np
import pytest
from test_gan_cli import _png
from test_vae_cli import _one_line_error, assert_same_checkpoints, data_dir  # noqa: F401

import minigen as mg
from minigen.cli import main
from minigen.serialization import load

TINY_DANN = ["--batch-size", "8", "--evals-per-epoch", "2", "--channels", "4", "6",
             "--hidden", "8"]
# the tiny data hold 3 sneakers in the first half of the training set, 6 ankle boots in the
# second, and 2 of each among the test images
TINY_CYCLEGAN = ["--batch-size", "2", "--width", "2", "--blocks", "1", "--d-width", "2",
                 "--pool-size", "3"]


def _train(model, out, *args, epochs=2):
    return main(["train", model, "--out", str(out), "--epochs", str(epochs), *args])


def _interrupted(monkeypatch, module, model, out, *args, epochs=2):
    """Train ``epochs`` but stop (Ctrl-C) when epoch 2 starts: the checkpoint holds epoch 1."""
    real = module.train_epoch

    def train_epoch(*a, **kw):
        if inspect.signature(real).bind(*a, **kw).arguments["epoch"] == 2:
            raise KeyboardInterrupt
        return real(*a, **kw)

    with monkeypatch.context() as m:
        m.setattr(module, "train_epoch", train_epoch)
        assert _train(model, out, *args, epochs=epochs) == 130


# ------------------------------------------------------------------ DANN
@pytest.mark.usefixtures("data_dir")
def test_dann_run_trains_both_networks_and_draws_its_figures(tmp_path, capsys):
    out = tmp_path / "dann"
    assert _train("dann", out, *TINY_DANN, "--figures-every", "2") == 0
    printed = capsys.readouterr().out
    assert "DANN and the source-only baseline on fashion-mnist -> noise" in printed
    assert "test accuracy on the target (noise): DANN" in printed and "source only" in printed
    from minigen.commands.dann import FIGURES
    for name in FIGURES:
        assert _png(out / name), name
    record = json.loads((out / "metrics.json").read_text())[-1]
    for model in ("dann", "baseline"):
        for key in ("test_source_acc", "test_target_acc", "test_domain_acc"):
            assert 0 <= record[f"{model}_{key}"] <= 1
    assert record["baseline_lambda"] == 0.0 and 0.9 < record["dann_lambda"] < 1.0
    assert record["dann_lr"] < 0.01
    state = load(str(out / "checkpoint.npz"))
    assert state["dann"]["trace"]["epoch"].tolist() == [0.5, 1.0, 1.5, 2.0]


@pytest.mark.usefixtures("data_dir")
def test_dann_resumes_an_interrupted_run_bit_for_bit(tmp_path, monkeypatch, capsys):
    from minigen.commands import dann
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    fast = [*TINY_DANN, "--figures-every", "0", "--shift", "texture"]
    assert _train("dann", straight, *fast) == 0
    _interrupted(monkeypatch, dann, "dann", stopped, *fast)
    assert _train("dann", stopped, *fast, "--resume") == 0
    assert "resuming" in capsys.readouterr().out
    assert_same_checkpoints(straight, stopped)
    assert _train("dann", stopped, *fast, "--resume", "--shift", "invert") == 2
    _one_line_error(capsys, "shift 'texture' (now 'invert')")


@pytest.mark.usefixtures("data_dir")
def test_dann_without_baseline_and_its_errors(tmp_path, capsys):
    out = tmp_path / "alone"
    assert _train("dann", out, *TINY_DANN, "--no-baseline", "--figures-every", "0",
                  epochs=1) == 0
    record = json.loads((out / "metrics.json").read_text())[-1]
    assert "dann_test_target_acc" in record and "baseline_test_target_acc" not in record
    assert _train("dann", tmp_path / "b", "--batch-size", "64") == 2
    _one_line_error(capsys, "fewer than one batch of 64")
    assert _train("dann", tmp_path / "c", "--momentum", "1.5") == 2
    _one_line_error(capsys, "argument --momentum")
    assert main(["sample", str(out), "--out", str(tmp_path / "s.png")]) == 2
    _one_line_error(capsys, "model 'dann' cannot draw samples")


# ------------------------------------------------------------------ CycleGAN
@pytest.mark.usefixtures("data_dir")
def test_cyclegan_run_figures_metrics_and_translations(tmp_path, capsys):
    out = tmp_path / "cyclegan"
    assert _train("cyclegan", out, *TINY_CYCLEGAN) == 0
    printed = capsys.readouterr().out
    assert "CycleGAN Sneaker (X, 3 images) <-> Ankle boot (Y, 6 images)" in printed
    assert "test cycle error X" in printed
    from minigen.commands.cyclegan import FIGURES
    for name in FIGURES:
        assert _png(out / name), name
    history = json.loads((out / "metrics.json").read_text())
    assert [r["lr"] for r in history] == [2e-4, 2e-4 / 2]     # halved: 1 of 1 decay epochs
    for key in ("cycle_error_X", "cycle_error_Y", "identity_error_G", "as_target_X",
                "originals_as_target_Y", "adv_G", "cycle_X", "identity_F", "d_X"):
        assert np.isfinite(history[-1][key]), key
    assert 0 < history[-1]["cycle_error_X"] < 1
    # minigen sample: translated test images, and G(x) as raw samples
    assert main(["sample", str(out), "-n", "3", "--out", str(tmp_path / "t.png")]) == 0
    assert _png(tmp_path / "t.png")
    assert "wrote 2 test images of each domain" in capsys.readouterr().out
    rng_state = mg.get_rng_state()
    npy = tmp_path / "gx.npy"
    assert main(["sample", str(out), "-n", "5", "--format", "npy", "--out", str(npy)]) == 0
    assert mg.get_rng_state() == rng_state
    gx = np.load(npy)
    assert gx.shape == (5, 784) and gx.dtype == np.float32 and 0 <= gx.min() and gx.max() <= 1
    from minigen.commands import cyclegan
    ckpt = load(str(out / "checkpoint.npz"))
    np.testing.assert_array_equal(cyclegan.draw(ckpt, 5, seed=0), gx)
    assert cyclegan.image_shape(ckpt) == (1, 28, 28)
    # the two test sneakers, translated: 5 draws go through them in turn (equal up to the
    # rounding of batched float32 products)
    np.testing.assert_allclose(gx[[2, 3, 4]], gx[[0, 1, 0]], atol=1e-5)
    assert not np.allclose(gx[0], gx[1], atol=1e-3)


@pytest.mark.usefixtures("data_dir")
def test_cyclegan_resumes_an_interrupted_run_bit_for_bit(tmp_path, monkeypatch, capsys):
    from minigen.commands import cyclegan
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    fast = [*TINY_CYCLEGAN, "--figures-every", "0"]
    assert _train("cyclegan", straight, *fast) == 0
    _interrupted(monkeypatch, cyclegan, "cyclegan", stopped, *fast)
    assert _train("cyclegan", stopped, *fast, "--resume") == 0
    assert "resuming" in capsys.readouterr().out
    assert_same_checkpoints(straight, stopped)
    state = load(str(stopped / "checkpoint.npz"))
    assert len(state["pools"]["fake_x"]["images"]) == 3       # the pools were carried over
    assert _train("cyclegan", stopped, *fast, "--resume") == 0
    assert "nothing to do" in capsys.readouterr().out


@pytest.mark.usefixtures("data_dir")
def test_cyclegan_refuses_domains_that_do_not_fit(tmp_path, capsys):
    assert _train("cyclegan", tmp_path / "a", *TINY_CYCLEGAN, "--domains", "7", "sneaker") == 2
    _one_line_error(capsys, "X and Y are the same class ('Sneaker')")
    assert _train("cyclegan", tmp_path / "b", *TINY_CYCLEGAN, "--domains", "Sneaker", "Boot") == 2
    _one_line_error(capsys, "no class 'Boot'", "9 'Ankle boot'")
    assert _train("cyclegan", tmp_path / "c", "--batch-size", "16") == 2
    _one_line_error(capsys, "fewer than one batch of 16")
    assert _train("cyclegan", tmp_path / "d", *TINY_CYCLEGAN, "--decay-epochs", "5") == 2
    _one_line_error(capsys, "--decay-epochs 5 is more than --epochs 2")
    gan = tmp_path / "gan"
    gan.mkdir()
    mg.save({"model": "gan", "epoch": 1}, str(gan / "checkpoint.npz"))
    assert _train("cyclegan", gan, *TINY_CYCLEGAN, "--resume") == 2
    _one_line_error(capsys, "'gan', not 'cyclegan'")
