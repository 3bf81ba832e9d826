"""The shipped feature network, the sampling contract (draw / image_shape) and `minigen eval`.

Runs are trained in-process on tiny generated IDX files (as in test_vae_cli); the feature
network is the shipped one, so these tests also prove the package carries it intact.
"""
import json
import os
import shutil

import numpy as np
import pytest
from test_vae_cli import _one_line_error
from test_vae_cli import data_dir  # noqa: F401 (the fixture: tiny IDX files, a private cache)

import minigen as mg
from minigen.cli import main
from minigen.metrics import extract_features, fid, predict_logits
from minigen.metrics import features as F
from minigen.serialization import load


# ------------------------------------------------------------------ the shipped network
def test_the_shipped_weights_match_their_manifest():
    info = F.verify_weights()
    assert info["command"].startswith("minigen train classifier") and info["seed"] == 0
    assert info["test_accuracy"] >= 0.9 and info["train_images"] == 60000
    assert {"minigen", "numpy", "python"} <= set(info["versions"])
    assert os.path.getsize(F.WEIGHTS) < 2.5e6  # float32, small
    net = F.feature_network()
    assert not net.training
    params = net.state_dict()
    assert all(np.asarray(v).dtype == np.float32 for k, v in params.items()
               if np.asarray(v).dtype.kind == "f")
    assert F.feature_network() is net  # loaded once per process


def test_a_changed_weights_file_is_refused(tmp_path):
    copy = tmp_path / "weights.npz"
    shutil.copy(F.WEIGHTS, copy)
    F.load_feature_network(weights=str(copy))  # intact: loads
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 1  # one bit
    copy.write_bytes(bytes(data))
    with pytest.raises(F.WeightsChecksumError, match="SHA-256 .* expects"):
        F.load_feature_network(weights=str(copy))
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(dict(F.read_manifest(), sha256="0" * 64)))
    with pytest.raises(F.WeightsChecksumError, match="damaged or was replaced"):
        F.load_feature_network(manifest=str(manifest))


def test_images_are_checked_with_clear_errors():
    ok = np.zeros((2, 28, 28), np.float64)
    assert F.check_images(ok).shape == (2, 784) and F.check_images(ok).dtype == np.float32
    with pytest.raises(ValueError, match="divide by 255"):
        F.check_images(ok + 200)
    with pytest.raises(ValueError, match=r"\(x \+ 1\) / 2"):
        F.check_images(ok - 0.5)
    with pytest.raises(ValueError, match=r"got shape \(2, 8, 8\)"):
        F.check_images(np.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match="NaN"):
        F.check_images(ok * np.nan)


def test_embed_is_the_classifier_and_fid_sees_differences():
    rng = np.random.default_rng(0)
    x = np.clip(rng.normal(0.3, 0.3, (60, 784)), 0, 1).astype(np.float32)
    x[:, 300:500] = 0.9  # some structure
    feats, probs = F.embed(x, batch_size=25)
    net = F.feature_network()
    np.testing.assert_allclose(feats, extract_features(net, x), rtol=1e-5, atol=1e-5)
    logits = predict_logits(net, x).astype(np.float64)
    expected = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(probs, expected / expected.sum(1, keepdims=True), rtol=1e-5,
                               atol=1e-7)
    assert abs(fid(x, x)) < 1e-6
    noisy = np.clip(x + rng.normal(0, 0.3, x.shape), 0, 1)
    assert fid(x, noisy) > 2 * fid(x[:30], x[30:]) > 0  # noise vs two halves of one set


def test_train_classifier_reports_its_distance_and_ships(data_dir, tmp_path, monkeypatch,
                                                        capsys):
    argv = ["train", "classifier", "--epochs", "1", "--batch-size", "32"]
    assert main(argv + ["--out", str(tmp_path / "a")]) == 0
    report = json.loads((tmp_path / "a" / "vs_shipped.json").read_text())
    assert report["comparable"] and not report["identical"] and report["relative"] > 0.1
    assert "vs the shipped weights: relative distance" in capsys.readouterr().out
    # --ship: weights and manifest replaced (here in a scratch folder, not the package)
    monkeypatch.setattr(F, "WEIGHTS", str(tmp_path / "w.npz"))
    monkeypatch.setattr(F, "MANIFEST", str(tmp_path / "w.json"))
    assert main(argv + ["--out", str(tmp_path / "b"), "--ship"]) == 0
    info = F.verify_weights()
    assert info["command"] == "minigen train classifier --epochs 1 --batch-size 32 --lr 0.001 --seed 0"
    assert info["train_images"] == 64 and info["test_accuracy"] == json.loads(
        (tmp_path / "b" / "metrics.json").read_text())[-1]["test_acc"]
    # the same command again, on the same machine: bit for bit the weights just shipped
    assert main(argv + ["--out", str(tmp_path / "c")]) == 0
    assert json.loads((tmp_path / "c" / "vs_shipped.json").read_text())["identical"]
    assert "bit for bit the shipped ones" in capsys.readouterr().out
    assert main(argv + ["--subset", "10", "--ship"]) == 2
    _one_line_error(capsys, "--ship needs the full training set")


# ------------------------------------------------------------------ the sampling contract
def _train(*argv):
    assert main(["train", *argv]) == 0


def _check_draw(module, state, n, d):
    before = mg.get_rng_state()
    a = module.draw(state, n, seed=1)
    assert mg.get_rng_state() == before  # the global stream did not move
    assert a.shape == (n, d) and a.dtype == np.float32
    assert a.min() >= 0 and a.max() <= 1
    np.testing.assert_array_equal(a, module.draw(state, n, seed=1))  # deterministic
    assert not np.array_equal(a, module.draw(state, n, seed=2))
    return a


def test_vae_and_conditional_vae_draw(data_dir, tmp_path):
    from minigen.commands import vae
    small = ["--latent", "3", "--hidden", "16", "--batch-size", "32", "--iwae-k", "0",
             "--figures-every", "0", "--epochs", "1"]
    _train("vae", *small, "--out", str(tmp_path / "vae"))
    _train("vae", *small, "--conditional", "--out", str(tmp_path / "cvae"))
    for run in ("vae", "cvae"):
        state = load(tmp_path / run / "checkpoint.npz")
        assert vae.image_shape(state) == (1, 28, 28)
        images = _check_draw(vae, state, 25, 784)
        # the decoder's mean images: in batches or not, the same numbers
        np.testing.assert_allclose(vae.draw(state, 25, seed=1, batch_size=7), images, rtol=1e-6)
    # conditional: image i is decoded with label i mod 10 from z ~ N(0, I) of the seed
    model, _ = vae.model_from_checkpoint(load(tmp_path / "cvae" / "checkpoint.npz"), "cvae")
    z = np.random.default_rng(1).standard_normal((25, 3), dtype=np.float32)
    with mg.no_grad():
        expected = model.sample(z=mg.tensor(z), y=np.arange(25) % 10).numpy()
    np.testing.assert_allclose(images, expected, rtol=1e-6)


def test_rbm_draws_images_and_points(data_dir, tmp_path):
    from minigen.commands import rbm
    _train("rbm", "--dataset", "fashion-mnist", "--hidden", "8", "--epochs", "1", "--ais-betas",
           "0", "--gibbs-steps", "2", "--out", str(tmp_path / "rbm"))
    state = load(tmp_path / "rbm" / "checkpoint.npz")
    assert rbm.image_shape(state) == (1, 28, 28)
    _check_draw(rbm, state, 6, 784)
    # a Gaussian RBM on 2-D points: no image shape, samples in data units (not clipped)
    _train("rbm", "--dataset", "ring", "--visible", "gaussian", "--hidden", "4", "--epochs", "1",
           "--n-toy", "64", "--ais-betas", "0", "--out", str(tmp_path / "ring"))
    ring = load(tmp_path / "ring" / "checkpoint.npz")
    assert rbm.image_shape(ring) is None
    points = rbm.draw(ring, 5, seed=0, steps=3)
    assert points.shape == (5, 2) and points.dtype == np.float32


# ------------------------------------------------------------------ minigen eval
EVAL = ["-n", "40", "--kid-subsets", "3", "--kid-subset-size", "20"]


@pytest.fixture
def runs(data_dir, tmp_path):
    _train("vae", "--latent", "3", "--hidden", "16", "--batch-size", "32", "--iwae-k", "4",
           "--iwae-n", "8", "--figures-every", "0", "--epochs", "1", "--out", str(tmp_path / "vae"))
    _train("rbm", "--dataset", "fashion-mnist", "--hidden", "8", "--epochs", "1", "--ais-betas",
           "20", "--ais-chains", "4", "--gibbs-steps", "2", "--out", str(tmp_path / "rbm"))
    return tmp_path / "vae", tmp_path / "rbm"


def test_eval_scores_runs_writes_eval_json_table_and_chart(runs, tmp_path, capsys):
    vae_run, rbm_run = runs
    chart, rows = tmp_path / "chart.png", tmp_path / "rows.json"
    capsys.readouterr()
    assert main(["eval", str(vae_run), str(rbm_run), *EVAL, "--chart", str(chart),
                 "--json", str(rows)]) == 0
    out = capsys.readouterr().out
    for run in runs:
        row = json.loads((run / "eval.json").read_text())
        assert row["n"] == 40 and row["reference"] == "fashion-mnist test (32)"
        for key in ("is_mean", "fid", "kid_mean", "precision", "recall"):
            assert np.isfinite(row[key]), key
        assert 1 <= row["is_mean"] <= 10 and 0 <= row["precision"] <= 1
        assert row["feature_network_sha256"] == F.read_manifest()["sha256"]
        assert run.name in out
    # the likelihoods come from the runs' metrics.json
    vae_row, rbm_row = json.loads(rows.read_text())
    history = json.loads((vae_run / "metrics.json").read_text())
    assert vae_row["test_nll"] == history[-1]["test_neg_iwae"]
    assert vae_row["test_neg_elbo"] == history[-1]["test_neg_elbo"]
    assert rbm_row["test_nll"] == -json.loads((rbm_run / "metrics.json").read_text())[-1][
        "test_log_likelihood"]
    assert "FID" in out and "IWAE bound" in out and "AIS" in out
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # same seed, same samples, same numbers (the test-set features now come from the cache)
    assert main(["eval", str(vae_run), *EVAL]) == 0
    again = json.loads((vae_run / "eval.json").read_text())
    assert again["fid"] == vae_row["fid"] and again["kid_mean"] == vae_row["kid_mean"]


def test_eval_samples_file_and_its_errors(data_dir, tmp_path, capsys):
    from minigen.data import load_dataset
    xt = load_dataset("fashion-mnist", "test")[0]
    good = tmp_path / "good.npy"
    np.save(good, xt.reshape(-1, 28, 28))
    assert main(["eval", "--samples", str(good), *EVAL]) == 0
    out = capsys.readouterr().out
    assert "good.npy" in out and "32" in out  # a copy of the test set itself: FID about 0
    bytes_ = tmp_path / "bytes.npy"
    np.save(bytes_, (xt * 255).astype(np.uint8))
    assert main(["eval", "--samples", str(bytes_)]) == 2
    _one_line_error(capsys, "[0, 1]", "divide by 255")
    flat = tmp_path / "flat.npy"
    np.save(flat, np.zeros((4, 100)))
    assert main(["eval", "--samples", str(flat)]) == 2
    _one_line_error(capsys, "(4, 100)")
    assert main(["eval", "--samples", str(tmp_path / "missing.npy")]) == 2
    _one_line_error(capsys, "no file")
    assert main(["eval"]) == 2
    _one_line_error(capsys, "nothing to score")


def test_eval_refuses_runs_it_cannot_score(data_dir, tmp_path, capsys):
    assert main(["train", "kmeans", "--dataset", "fashion-mnist", "--k", "2", "--n-init", "1",
                 "--out", str(tmp_path / "km")]) == 0
    assert main(["eval", str(tmp_path / "km")]) == 2
    _one_line_error(capsys, "cannot draw samples")
    assert main(["train", "vae", "--dataset", "digits", "--latent", "2", "--hidden", "8",
                 "--epochs", "1", "--iwae-k", "0", "--figures-every", "0",
                 "--out", str(tmp_path / "digits")]) == 0
    assert main(["eval", str(tmp_path / "digits")]) == 2
    _one_line_error(capsys, "28x28", "(1, 8, 8)")
    assert main(["eval", str(tmp_path / "nowhere")]) == 2
    _one_line_error(capsys, "no checkpoint")
    from minigen.metrics import ConvClassifier, save_classifier
    save_classifier(ConvClassifier(channels=(2, 2), hidden=4), str(tmp_path / "clf.npz"))
    assert main(["eval", str(tmp_path / "clf.npz")]) == 2
    _one_line_error(capsys, "not a checkpoint of a minigen model that can sample (model=None)")


def test_reference_rows_are_trained_once_then_cached(data_dir, tmp_path, capsys, monkeypatch):
    from minigen.commands import evaluate
    monkeypatch.setattr(evaluate, "REFERENCE_RUNS", {
        "kmeans": ["train", "kmeans", "--k", "3", "--n-init", "1"],
        "rbm": ["train", "rbm", "--epochs", "1", "--hidden", "8", "--ais-betas", "0",
                "--gibbs-steps", "2"],
        "vae": ["train", "vae", "--epochs", "1", "--latent", "2", "--hidden", "8", "--iwae-k",
                "0", "--figures-every", "0"]})
    argv = ["eval", "--reference", *EVAL, "--reference-dir", str(tmp_path / "ref"), "--chart", ""]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert first.count("reference: minigen train") == 3
    for label in ("train images (40): the floor", "K-means centres (k=3)", "RBM samples",
                  "VAE samples"):
        assert label in first
    assert main(argv) == 0
    second = capsys.readouterr().out
    assert "reference: minigen train" not in second  # nothing retrained ...
    assert second.splitlines()[-4:] == first.splitlines()[-4:]  # ... the same rows
