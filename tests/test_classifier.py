"""The feature classifier (minigen.metrics.classifier): it learns, it is seeded, it saves.

The data are generated: 12x12 images of a bar in one of four orientations (the class),
at a random offset, with noise -- a few hundred of them train in a few seconds.
"""
import numpy as np
import pytest

import minigen as mg
from minigen.metrics import (ConvClassifier, evaluate, extract_features, load_classifier,
                             predict_logits, save_classifier, train_classifier)
from minigen.serialization import CheckpointError

SIZE = 12
SMALL = dict(channels=(8, 16), hidden=32, dropout=0.1, num_classes=4)


def bars(n, seed):
    """n noisy 1x12x12 images of a bar: horizontal, vertical, diagonal or anti-diagonal."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    X = rng.normal(0.0, 0.15, (n, 1, SIZE, SIZE)).astype(np.float32)
    idx = np.arange(SIZE)
    for i, (label, shift) in enumerate(zip(y, rng.integers(-3, 4, n))):
        rows, cols = {0: (np.full(SIZE, SIZE // 2 + shift), idx),
                      1: (idx, np.full(SIZE, SIZE // 2 + shift)),
                      2: (idx, (idx + shift) % SIZE),
                      3: (idx, (SIZE - 1 - idx + shift) % SIZE)}[label]
        X[i, 0, rows, cols] += 1.0
    return X, y


@pytest.fixture(scope="module")
def trained():
    X, y = bars(320, seed=0)
    model, history = train_classifier(X, y, epochs=3, batch_size=32, lr=3e-3, seed=1,
                                      progress=False, eval_data=bars(200, seed=5), **SMALL)
    return X, y, model, history


def test_loss_falls_and_accuracy_beats_chance(trained):
    X, y, model, history = trained
    assert [r["epoch"] for r in history] == [1, 2, 3]
    losses = [r["loss"] for r in history]
    assert losses[0] > 0.6  # it starts near chance: ln 4 = 1.39 ...
    assert losses[-1] < 0.4 * losses[0], losses  # ... and falls markedly
    assert evaluate(model, X, y) > 0.9  # chance is 0.25
    assert history[-1]["test_acc"] > 0.9  # unseen bars (other offsets and noise) too
    assert not model.training  # returned ready for evaluation


def test_same_seed_same_run_other_seed_other_run():
    X, y = bars(64, seed=2)
    runs = [train_classifier(X, y, epochs=1, batch_size=16, seed=s, progress=False, **SMALL)
            for s in (3, 3, 4)]
    (m1, h1), (m2, h2), (m3, h3) = runs
    assert h1[0]["loss"] == h2[0]["loss"]
    np.testing.assert_array_equal(predict_logits(m1, X), predict_logits(m2, X))
    assert h1[0]["loss"] != h3[0]["loss"]


def test_features_are_the_penultimate_layer(trained):
    X, _, model, _ = trained
    feats = extract_features(model, X[:10], batch_size=4)
    assert feats.shape == (10, SMALL["hidden"]) and feats.dtype == np.float32
    assert (feats >= 0).all()  # after the ReLU
    # the logits are the head applied to the features (dropout is off in eval mode)
    with mg.no_grad():
        logits = model.head(mg.tensor(feats)).numpy()
    np.testing.assert_allclose(predict_logits(model, X[:10]), logits, rtol=1e-5, atol=1e-5)


def test_flat_rows_and_images_give_the_same_logits(trained):
    X, _, model, _ = trained
    np.testing.assert_array_equal(predict_logits(model, X[:8]),
                                  predict_logits(model, X[:8].reshape(8, -1)))


def test_evaluate_restores_training_mode_and_counts_correctly(trained):
    X, y, model, _ = trained
    model.train()
    acc = evaluate(model, X, y)
    assert model.training
    wrong = (y + 1) % 4
    assert evaluate(model, X, wrong) <= 1 - acc + 1e-12
    model.eval()


def test_checkpoint_round_trip(trained, tmp_path):
    X, _, model, _ = trained
    path = str(tmp_path / "clf.npz")
    save_classifier(model, path, accuracy=0.5)
    again = load_classifier(path)
    assert isinstance(again, ConvClassifier) and not again.training
    assert again.config == model.config
    np.testing.assert_array_equal(predict_logits(again, X[:16]), predict_logits(model, X[:16]))
    assert mg.load(path)["accuracy"] == 0.5


def test_load_rejects_other_checkpoints(tmp_path):
    path = str(tmp_path / "other.npz")
    mg.save({"model": {}}, path)
    with pytest.raises(CheckpointError, match="not a classifier checkpoint"):
        load_classifier(path)


def test_default_network_shapes_and_bad_input():
    mg.manual_seed(0)
    model = ConvClassifier()
    x = mg.randn(2, 1, 28, 28)
    assert model(x).shape == (2, 10)
    assert model.features(x).shape == (2, 128)
    with pytest.raises(ValueError, match=r"ConvClassifier: expected images of shape"):
        model(mg.randn(2, 1, 27, 27))
    with pytest.raises(ValueError, match="divisible by 4"):
        ConvClassifier(image_shape=(1, 30, 30))
