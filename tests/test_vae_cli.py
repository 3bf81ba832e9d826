"""`minigen train vae` and `minigen sample` in-process, on tiny generated IDX files."""
import json
import os

import numpy as np
import pytest

from minigen.cli import main
from minigen.data import write_idx

SMALL = ["--latent", "3", "--hidden", "16", "--batch-size", "16", "--iwae-k", "4", "--iwae-n", "8"]


def _write_split(folder, images_stem, labels_stem, n, seed):
    """Tiny Fashion-MNIST-like images: class k lights up a band of rows, plus noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n).astype(np.uint8)
    x = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
    for i, k in enumerate(y):
        x[i, 2 * k + 3: 2 * k + 8, 4:24] = 230
    write_idx(os.path.join(folder, images_stem + ".gz"), x)
    write_idx(os.path.join(folder, labels_stem + ".gz"), y)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    folder = tmp_path / "data"
    folder.mkdir()
    _write_split(str(folder), "train-images-idx3-ubyte", "train-labels-idx1-ubyte", 64, 1)
    _write_split(str(folder), "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 32, 2)
    monkeypatch.setenv("MINIGEN_DATA", str(folder))
    monkeypatch.setenv("MINIGEN_CACHE", str(tmp_path / "cache"))  # never the user's cache
    monkeypatch.delenv("MINIGEN_DEBUG", raising=False)
    return folder


def _train(out, *extra, epochs=1):
    return main(["train", "vae", "--dataset", "fashion-mnist", "--epochs", str(epochs),
                 "--out", str(out), *SMALL, *extra])  # a later --dataset / --latent wins


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert err.startswith("minigen: error:") and "\n" not in err, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


def test_train_writes_metrics_checkpoint_and_every_figure(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(out, "--latent", "2", "--figures-every", "2", epochs=2) == 0
    printed = capsys.readouterr().out
    assert f"figures in {out}" in printed and "test -ELBO" in printed
    from minigen.commands.vae import FIGURES, FIGURES_2D
    for name in FIGURES + FIGURES_2D:
        path = out / name
        assert path.is_file() and path.stat().st_size > 1000, name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    history = json.loads((out / "metrics.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2]
    assert history[-1]["iwae_k"] == 4 and np.isfinite(history[-1]["test_neg_iwae"])
    assert "test_neg_iwae" not in history[0]
    # the loss went down and the parts add up
    assert history[1]["train_loss"] < history[0]["train_loss"]
    r = history[1]
    assert r["test_neg_elbo"] == pytest.approx(r["test_recon"] + r["test_kl"])
    assert (out / "metrics.csv").read_text().splitlines()[0].startswith("epoch,")
    assert (out / "checkpoint.npz").is_file()


def _checkpoint(folder):
    from minigen.serialization import load
    return load(os.path.join(folder, "checkpoint.npz"))


def _flat(state, prefix=""):
    """Nested checkpoint (dicts and lists) -> {path: array} for bit-for-bit comparison."""
    items = state.items() if isinstance(state, dict) else enumerate(state)
    out = {}
    for key, value in items:
        if isinstance(value, (dict, list)):
            out.update(_flat(value, f"{prefix}{key}/"))
        else:
            out[f"{prefix}{key}"] = np.asarray(value)
    return out


def assert_same_checkpoints(run_a, run_b):
    """The checkpoints of two runs equal bit for bit (the history: but for the timings)."""
    a, b = _flat(_checkpoint(run_a)), _flat(_checkpoint(run_b))
    assert a.keys() == b.keys()
    for key in a:
        if key != "history":
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert strip(json.loads(str(a["history"]))) == strip(json.loads(str(b["history"])))


def test_resume_continues_bit_for_bit(data_dir, tmp_path, capsys):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    fast = ["--iwae-k", "0", "--figures-every", "0"]
    assert _train(straight, *fast, epochs=2) == 0
    assert _train(stopped, *fast, epochs=1) == 0
    assert _train(stopped, *fast, "--resume", epochs=2) == 0
    assert "resuming" in capsys.readouterr().out
    assert_same_checkpoints(straight, stopped)
    assert len(json.loads((stopped / "metrics.json").read_text())) == 2
    # a finished run resumed again has nothing left to do
    assert _train(stopped, *fast, "--resume", epochs=2) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_conditional_conv_run_and_sample(data_dir, tmp_path, capsys):
    out = tmp_path / "cvae"  # scikit-learn's 8x8 digits: small enough for a conv run in a test
    assert _train(out, "--conditional", "--conv", "--dataset", "digits", "--subset", "64") == 0
    assert (out / "samples.png").stat().st_size > 1000
    png = tmp_path / "s.png"
    assert main(["sample", str(out), "-n", "20", "--out", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert f"wrote 20 samples to {png}" in capsys.readouterr().out


def test_sample_from_checkpoint_file(data_dir, tmp_path):
    out = tmp_path / "run"
    assert _train(out, "--iwae-k", "0", "--figures-every", "0") == 0
    assert not (out / "samples.png").exists()
    png = tmp_path / "nested" / "grid.png"
    assert main(["sample", str(out / "checkpoint.npz"), "-n", "9", "--out", str(png)]) == 0
    assert png.stat().st_size > 500


# ------------------------------------------------------------------ errors: one line, exit 2
def test_unknown_dataset_is_refused(capsys):
    assert main(["train", "vae", "--dataset", "cifar10"]) == 2
    _one_line_error(capsys, "invalid choice: 'cifar10'")


@pytest.mark.parametrize("dataset, hint", [("fashion-mnist", "apt-get install dataset-fashion-mnist"),
                                           ("mnist", "MINIGEN_DATA")])
def test_missing_data_says_how_to_get_it(dataset, hint, tmp_path, monkeypatch, capsys):
    import dataclasses

    import minigen.data.datasets as datasets

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")
    monkeypatch.setattr(datasets, "_urlopen", offline)
    # this machine may have Debian's package installed: look elsewhere
    nowhere = str(tmp_path / "nowhere")
    sources = {k: dataclasses.replace(v, system_dirs=tuple(nowhere for _ in v.system_dirs))
               for k, v in datasets.SOURCES.items()}
    monkeypatch.setattr(datasets, "SOURCES", sources)
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("MINIGEN_DATA", str(empty))
    monkeypatch.setenv("MINIGEN_CACHE", str(tmp_path / "cache"))
    assert main(["train", "vae", "--dataset", dataset, "--out", str(tmp_path / "r")]) == 2
    _one_line_error(capsys, f"{dataset} data not found", hint)


def test_unwritable_out_folder(data_dir, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert _train(blocker / "run") == 2
    _one_line_error(capsys, "cannot create output folder")


def test_resume_refuses_a_checkpoint_of_another_model(data_dir, tmp_path, capsys):
    from minigen.serialization import save
    out = tmp_path / "rbm_run"
    out.mkdir()
    save({"model": "rbm", "epoch": 1, "params": {"W": np.zeros((2, 2), np.float32)}},
         str(out / "checkpoint.npz"))
    assert _train(out, "--resume", epochs=2) == 2
    _one_line_error(capsys, "'rbm', not 'vae'")


def test_resume_refuses_other_settings(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(out, "--iwae-k", "0", "--figures-every", "0") == 0
    capsys.readouterr()
    assert _train(out, "--iwae-k", "0", "--latent", "5", "--resume", epochs=2) == 2
    _one_line_error(capsys, "latent 3 (now 5)")


def test_resume_without_checkpoint(data_dir, tmp_path, capsys):
    assert _train(tmp_path / "fresh", "--resume") == 2
    _one_line_error(capsys, "no checkpoint")


def test_sample_refuses_a_broken_vae_checkpoint(tmp_path, capsys):
    from minigen.serialization import save
    path = tmp_path / "bad.npz"
    save({"model": "vae", "config": json.dumps({"conv": False, "image_shape": [1, 4, 4],
                                                "hidden": 8, "latent": 2}),
          "params": {"fc1.weight": np.zeros((3, 3), np.float32)}}, str(path))
    assert main(["sample", str(path), "--out", str(tmp_path / "x.png")]) == 2
    _one_line_error(capsys, "not a usable VAE checkpoint")
