"""`minigen train gan` and `minigen sample` (png and npy) in-process, on tiny data."""
import json
import os

import numpy as np
import pytest

import minigen as mg
from minigen.cli import main
from minigen.serialization import load
from test_vae_cli import _one_line_error, assert_same_checkpoints, data_dir  # noqa: F401

TINY_DCGAN = ["--dataset", "fashion-mnist", "--latent", "8", "--width", "4", "--batch-size", "16"]
TINY_TOY = ["--dataset", "ring", "--subset", "1800", "--batch-size", "256", "--width", "8",
            "--latent", "4"]


def _train(out, *args, epochs=1):
    return main(["train", "gan", "--out", str(out), "--epochs", str(epochs), *args])


def _png(path):
    return path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and \
        path.stat().st_size > 1000


@pytest.mark.usefixtures("data_dir")
def test_image_run_figures_metrics_and_samples(tmp_path, capsys):
    out = tmp_path / "dcgan"
    assert _train(out, *TINY_DCGAN, epochs=2) == 0
    printed = capsys.readouterr().out
    assert "ns GAN, dcgan" in printed and "epoch 2/2" in printed and "D(G(z))" in printed
    from minigen.commands.gan import FIGURES
    for name in FIGURES:
        assert _png(out / name), name
    history = json.loads((out / "metrics.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2]
    for key in ("d_loss", "g_loss", "d_real", "d_fake"):
        assert np.isfinite(history[-1][key]), key
    assert 0 < history[-1]["d_real"] < 1   # a probability for the logistic losses
    # minigen sample: a PNG grid, and the raw samples as .npy
    assert main(["sample", str(out), "-n", "9", "--out", str(tmp_path / "s.png")]) == 0
    assert _png(tmp_path / "s.png")
    state = mg.get_rng_state()
    npy = tmp_path / "s.npy"
    assert main(["sample", str(out), "-n", "10", "--format", "npy", "--out", str(npy)]) == 0
    assert mg.get_rng_state() == state  # drawing samples does not move minigen's stream
    x = np.load(npy)
    assert x.shape == (10, 784) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    from minigen.commands import gan
    ckpt = load(str(out / "checkpoint.npz"))
    np.testing.assert_array_equal(gan.draw(ckpt, 10, seed=0), x)   # the same function
    assert not np.array_equal(gan.draw(ckpt, 10, seed=1), x)
    # each sample depends on its own z only (batch norm in evaluation mode)
    np.testing.assert_allclose(gan.draw(ckpt, 1500, seed=0)[:10], x, rtol=1e-5, atol=1e-6)
    assert gan.image_shape(ckpt) == (1, 28, 28)
    assert f"wrote 10 samples, array float32 (10, 784), to {npy}" in capsys.readouterr().out


@pytest.mark.usefixtures("data_dir")
def test_conditional_wgan_gp_run_draws_class_rows(tmp_path):
    out = tmp_path / "cgan"
    assert _train(out, *TINY_DCGAN, "--conditional", "--loss", "wgan-gp", "--n-critic", "2") == 0
    assert _png(out / "samples.png") and _png(out / "interpolation.png")
    record = json.loads((out / "metrics.json").read_text())[0]
    assert "wasserstein" in record and record["penalty"] > 0
    config = json.loads(str(load(str(out / "checkpoint.npz"))["config"]))
    assert config["num_classes"] == 10 and config["d_norm"] == "none"
    assert (config["lr"], config["betas"], config["n_critic"]) == (1e-4, [0.0, 0.9], 2)
    assert main(["sample", str(out), "-n", "20", "--out", str(tmp_path / "c.png")]) == 0


def test_toy_run_mode_coverage_evolution_and_point_samples(tmp_path, capsys):
    out = tmp_path / "ring"
    assert _train(out, *TINY_TOY, "--minibatch", "stddev", epochs=2) == 0
    assert "modes" in capsys.readouterr().out
    from minigen.commands.gan import FIGURES_TOY
    for name in FIGURES_TOY:
        assert _png(out / name), name
    record = json.loads((out / "metrics.json").read_text())[-1]
    assert record["total_modes"] == 8 and 0 <= record["modes"] <= 8
    assert 0 <= record["high_quality"] <= 1
    npy = tmp_path / "points.npy"
    assert main(["sample", str(out), "-n", "50", "--format", "npy", "--out", str(npy)]) == 0
    assert np.load(npy).shape == (50, 2)
    assert main(["sample", str(out), "-n", "50", "--out", str(tmp_path / "p.png")]) == 0
    assert _png(tmp_path / "p.png")
    from minigen.commands import gan
    assert gan.image_shape(load(str(out / "checkpoint.npz"))) is None



def test_help_names_every_figure_a_run_writes(capsys):
    from minigen.commands.gan import FIGURES, FIGURES_TOY
    assert main(["train", "gan", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())   # argparse wraps the lines
    missing = [name for name in FIGURES + FIGURES_TOY if name not in text]
    assert not missing, missing

@pytest.mark.parametrize("setting", [
    # toy: 7 batches an epoch with 3 critic steps per G step (the phase crosses epochs),
    # instance noise (annealed, drawn from the stream), feature matching, a penalty
    [*TINY_TOY, "--loss", "wgan-gp", "--n-critic", "3", "--instance-noise", "0.1",
     "--noise-epochs", "3", "--feature-matching"],
    # images: batch norm statistics, minibatch discrimination, label smoothing, a CGAN
    [*TINY_DCGAN, "--conditional", "--minibatch", "discrimination", "--label-smoothing", "0.1"],
], ids=["toy-wgan-gp", "dcgan-ns"])
@pytest.mark.usefixtures("data_dir")
def test_resume_continues_bit_for_bit(setting, tmp_path, capsys):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    fast = [*setting, "--figures-every", "0"]
    assert _train(straight, *fast, epochs=2) == 0
    assert _train(stopped, *fast, epochs=1) == 0
    assert _train(stopped, *fast, "--resume", epochs=2) == 0
    assert "resuming" in capsys.readouterr().out
    assert_same_checkpoints(straight, stopped)
    assert _train(stopped, *fast, "--resume", epochs=2) == 0
    assert "nothing to do" in capsys.readouterr().out


# ------------------------------------------------------------------ errors: one line, exit 2
def test_refuses_settings_that_do_not_fit(tmp_path, capsys):
    assert _train(tmp_path / "a", *TINY_TOY, "--arch", "dcgan") == 2
    _one_line_error(capsys, "--arch dcgan needs image data")
    assert _train(tmp_path / "b", *TINY_TOY, "--loss", "wgan", "--label-smoothing", "0.1") == 2
    _one_line_error(capsys, "--label-smoothing applies to the logistic losses")
    assert _train(tmp_path / "c", *TINY_TOY, "--batch-size", "5000") == 2
    _one_line_error(capsys, "fewer than one batch")
    assert _train(tmp_path / "d", *TINY_TOY, "--instance-noise", "-0.1") == 2
    _one_line_error(capsys, "argument --instance-noise: must be a number >= 0")


def test_resume_refuses_other_settings_and_other_models(tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(out, *TINY_TOY, "--figures-every", "0") == 0
    capsys.readouterr()
    assert _train(out, *TINY_TOY, "--loss", "lsgan", "--resume", epochs=2) == 2
    _one_line_error(capsys, "loss 'ns' (now 'lsgan')")
    vae = tmp_path / "vae"
    vae.mkdir()
    mg.save({"model": "vae", "epoch": 1}, str(vae / "checkpoint.npz"))
    assert _train(vae, *TINY_TOY, "--resume", epochs=2) == 2
    _one_line_error(capsys, "'vae', not 'gan'")


def test_npy_samples_need_a_model_that_can_draw(tmp_path, capsys):
    path = tmp_path / "kmeans.npz"
    mg.save({"model": "kmeans", "config": "{}"}, str(path))
    assert main(["sample", str(path), "--format", "npy", "--out", str(tmp_path / "k.npy")]) == 2
    _one_line_error(capsys, "model 'kmeans' has no raw samples to write")
    assert not os.path.exists(tmp_path / "k.npy")


@pytest.mark.usefixtures("data_dir")
def test_fashion_benchmark_trains_the_torch_twin_on_minigen_batches(tmp_path, monkeypatch):
    """benchmarks/gan_fashion.py's twin: minigen's DataLoader batches (tensors) fed to torch,
    the same n_critic schedule, samples saved in [0, 1] for FID."""
    pytest.importorskip("torch", reason="torch not installed: no twin to train")
    monkeypatch.syspath_prepend(os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
    import gan_fashion
    monkeypatch.setattr(gan_fashion, "N_SAMPLES", 1000)
    samples = gan_fashion.torch_run("wgan-gp", str(tmp_path), epochs=1)
    saved = np.load(tmp_path / "wgan-gp_torch.npy")
    np.testing.assert_array_equal(saved, samples)
    assert saved.shape == (1000, 784) and saved.dtype == np.float32
    assert 0 <= saved.min() and saved.max() <= 1 and saved.std() > 0
    assert _png(tmp_path / "wgan-gp_torch.png")
