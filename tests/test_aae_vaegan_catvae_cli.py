"""`minigen train aae | vaegan | catvae`, `minigen sample` and `minigen eval` in-process, on
tiny generated IDX files: figures, metrics, the sampling contract, resume bit for bit, errors."""
import json

import numpy as np
import pytest
from test_gan_cli import _png
from test_vae_cli import _one_line_error, assert_same_checkpoints, data_dir  # noqa: F401

import minigen as mg
from minigen.cli import main
from minigen.serialization import load

TINY = {
    "aae": ["--hidden", "16", "--d-hidden", "16", "--batch-size", "16"],
    "vaegan": ["--latent", "3", "--hidden", "8", "--width", "4", "--batch-size", "16"],
    "catvae": ["--variables", "4", "--classes", "3", "--hidden", "16", "8", "--batch-size", "16"],
}


def _train(model, out, *args, epochs=1):
    return main(["train", model, "--out", str(out), "--epochs", str(epochs), *TINY[model], *args])


def _check_contract(module, out, tmp_path, capsys):
    """minigen sample (png, npy) and draw(): deterministic, [0, 1], minigen's stream untouched."""
    assert main(["sample", str(out), "-n", "9", "--out", str(tmp_path / "s.png")]) == 0
    assert _png(tmp_path / "s.png")
    state = mg.get_rng_state()
    npy = tmp_path / "s.npy"
    assert main(["sample", str(out), "-n", "10", "--format", "npy", "--out", str(npy)]) == 0
    assert mg.get_rng_state() == state
    x = np.load(npy)
    assert x.shape == (10, 784) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    ckpt = load(str(out / "checkpoint.npz"))
    np.testing.assert_array_equal(module.draw(ckpt, 10, seed=0), x)
    assert not np.array_equal(module.draw(ckpt, 10, seed=1), x)
    assert module.image_shape(ckpt) == (1, 28, 28)
    assert "wrote 10 samples" in capsys.readouterr().out


@pytest.mark.usefixtures("data_dir")
def test_aae_labelled_run_figures_metrics_and_samples(tmp_path, capsys):
    out = tmp_path / "aae"
    assert _train("aae", out, "--prior", "mixture", "--labels", "independent", epochs=2) == 0
    printed = capsys.readouterr().out
    assert "labels independent" in printed and "MMD^2" in printed
    from minigen.commands import aae
    for name in aae.FIGURES + aae.FIGURES_2D + aae.FIGURES_LABELLED:
        assert _png(out / name), name
    record = json.loads((out / "metrics.json").read_text())[-1]
    for key in ("train_recon", "train_d_loss", "train_g_loss", "test_recon", "test_mse",
                "code_mmd2", "code_mmd2_floor", "d_accuracy", "label_accuracy"):
        assert np.isfinite(record[key]), key
    assert 0 <= record["d_accuracy"] <= 1 and 0 <= record["label_accuracy"] <= 1
    _check_contract(aae, out, tmp_path, capsys)


@pytest.mark.usefixtures("data_dir")
def test_aae_component_variant_draws_the_style_rows(tmp_path):
    out = tmp_path / "aae-c"
    assert _train("aae", out, "--prior", "mixture", "--labels", "component") == 0
    assert _png(out / "style.png") and _png(out / "codes.png")
    config = json.loads(str(load(str(out / "checkpoint.npz"))["config"]))
    assert (config["prior"], config["labels"], config["latent"]) == ("mixture", "component", 2)


@pytest.mark.usefixtures("data_dir")
def test_vaegan_run_beside_a_pixel_vae(tmp_path, capsys):
    vae = tmp_path / "vae"
    assert main(["train", "vae", "--conv", "--latent", "3", "--hidden", "8", "--batch-size",
                 "16", "--epochs", "1", "--iwae-k", "0", "--figures-every", "0",
                 "--out", str(vae)]) == 0
    out = tmp_path / "vaegan"
    assert _train("vaegan", out, "--vae", str(vae), epochs=2) == 0
    assert "VAE-GAN" in capsys.readouterr().out
    from minigen.commands import vaegan
    for name in vaegan.FIGURES + vaegan.FIGURES_COMPARE:
        assert _png(out / name), name
    record = json.loads((out / "metrics.json").read_text())[-1]
    for key in ("train_prior", "train_llike", "train_gan_d", "train_gan_g", "train_d_real",
                "test_mse", "test_kl"):
        assert np.isfinite(record[key]), key
    _check_contract(vaegan, out, tmp_path, capsys)


@pytest.mark.usefixtures("data_dir")
def test_catvae_run_figures_test_elbo_and_samples(tmp_path, capsys):
    out = tmp_path / "catvae"
    assert _train("catvae", out, "--straight-through", "--anneal-every", "2", epochs=2) == 0
    assert "test -ELBO" in capsys.readouterr().out
    from minigen.commands import catvae
    for name in catvae.FIGURES:
        assert _png(out / name), name
    history = json.loads((out / "metrics.json").read_text())
    record = history[-1]
    assert record["test_neg_elbo"] == pytest.approx(record["test_recon"] + record["test_kl"])
    assert 0 <= record["test_kl"] <= 4 * np.log(3) + 1e-9
    # 4 steps an epoch, tau updated every 2: exp(-1e-4 * 8) after the second epoch
    assert record["tau"] == pytest.approx(np.exp(-8e-4))
    _check_contract(catvae, out, tmp_path, capsys)


@pytest.mark.parametrize("model, setting", [
    ("aae", ["--prior", "mixture", "--labels", "independent"]),
    ("vaegan", []),
    ("catvae", ["--anneal-every", "3"]),
])
@pytest.mark.usefixtures("data_dir")
def test_resume_continues_bit_for_bit(model, setting, tmp_path, capsys):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    fast = [*setting, "--figures-every", "0"]
    assert _train(model, straight, *fast, epochs=2) == 0
    assert _train(model, stopped, *fast, epochs=1) == 0
    assert _train(model, stopped, *fast, "--resume", epochs=2) == 0
    assert "resuming" in capsys.readouterr().out
    assert_same_checkpoints(straight, stopped)
    assert _train(model, stopped, *fast, "--resume", epochs=2) == 0
    assert "nothing to do" in capsys.readouterr().out


@pytest.mark.usefixtures("data_dir")
def test_eval_scores_the_three_models(tmp_path, capsys):
    runs = []
    for model in ("aae", "vaegan", "catvae"):
        runs.append(tmp_path / model)
        assert _train(model, runs[-1], "--figures-every", "0") == 0
    assert main(["eval", *map(str, runs), "-n", "40", "--kid-subsets", "2",
                 "--kid-subset-size", "20", "--chart", str(tmp_path / "chart.png")]) == 0
    for run in runs:
        row = json.loads((run / "eval.json").read_text())
        assert row["n"] == 40 and np.isfinite(row["fid"]), run.name
    catvae = json.loads((runs[2] / "eval.json").read_text())
    history = json.loads((runs[2] / "metrics.json").read_text())
    assert catvae["test_neg_elbo"] == history[-1]["test_neg_elbo"]
    assert _png(tmp_path / "chart.png")


@pytest.mark.usefixtures("data_dir")
def test_errors_are_one_line(tmp_path, capsys):
    assert _train("aae", tmp_path / "a", "--prior", "mixture", "--latent", "3") == 2
    _one_line_error(capsys, "--prior mixture lives in 2 dimensions")
    assert _train("aae", tmp_path / "b", "--labels", "component") == 2
    _one_line_error(capsys, "use --prior mixture")
    assert _train("catvae", tmp_path / "c", "--tau0", "0.5", "--tau-min", "0.7") == 2
    _one_line_error(capsys, "--tau-min 0.7 is above --tau0 0.5")
    assert _train("catvae", tmp_path / "d", "--classes", "1") == 2
    _one_line_error(capsys, "--classes must be at least 2")
    assert _train("vaegan", tmp_path / "e", "--vae", str(tmp_path / "nowhere")) == 2
    _one_line_error(capsys, "no checkpoint at")
    assert _train("vaegan", tmp_path / "f", "--gamma", "-1") == 2
    _one_line_error(capsys, "argument --gamma")
    # resume: another model's checkpoint, other settings
    assert _train("catvae", tmp_path / "g", "--figures-every", "0") == 0
    capsys.readouterr()
    assert _train("aae", tmp_path / "g", "--resume", epochs=2) == 2
    _one_line_error(capsys, "is a checkpoint of model 'catvae', not 'aae'")
    assert _train("catvae", tmp_path / "g", "--straight-through", "--resume", epochs=2) == 2
    _one_line_error(capsys, "straight_through False (now True)")
    assert _train("vaegan", tmp_path / "h", "--vae", str(tmp_path / "g")) == 2
    _one_line_error(capsys, "not 'vae'")
    # a VAE of another latent size: refused before training (it once crashed on the figure,
    # after a whole epoch)
    assert main(["train", "vae", "--latent", "2", "--hidden", "8", "--batch-size", "16",
                 "--epochs", "1", "--iwae-k", "0", "--figures-every", "0",
                 "--out", str(tmp_path / "v2")]) == 0
    capsys.readouterr()
    assert _train("vaegan", tmp_path / "i", "--vae", str(tmp_path / "v2")) == 2
    _one_line_error(capsys, "its latent size is 2, the VAE-GAN's 3")
    assert not (tmp_path / "i" / "metrics.json").exists()
