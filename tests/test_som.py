"""Kohonen SOM: the online kernel equals the lecture's NumPy loop for every distance and
neighbourhood; QE falls; a 1-D map on a line orders itself; WTA; grid geometry."""
import numpy as np
import pytest

from minigen.models import SOM
from minigen.models import distances as D
from minigen.models.som import (grid_positions, neighbourhood, som_online_epoch,
                                som_online_epoch_reference, unit_rates)


def colours(n=300, seed=0):
    return np.random.default_rng(seed).random((n, 3), dtype=np.float32)


@pytest.mark.parametrize("metric", D.METRICS)
@pytest.mark.parametrize("kind", ["gaussian", "bubble"])
def test_online_kernel_equals_reference(metric, kind):
    X = colours(200, seed=1)
    som = SOM(4, 5, metric=metric, neighbourhood=kind, sigma=2.0, random_state=0)
    som.initialise(X, total_epochs=1)
    steps = np.arange(len(X))
    order = np.random.default_rng(2).permutation(len(X))
    W1, W2 = som.codebook_.copy(), som.codebook_.copy()
    args = (som.grid_d2, som.alpha(steps), som.width(steps), som.metric_code, som._kind)
    win1 = som_online_epoch(X, order, W1, *args)
    win2 = som_online_epoch_reference(X, order, W2, *args)
    np.testing.assert_array_equal(win1, win2)
    np.testing.assert_allclose(W1, W2, rtol=1e-5, atol=1e-6)



@pytest.mark.parametrize("sigma", [3.0, 0.0])
def test_online_kernel_equals_reference_on_long_vectors(sigma):
    """D = 45 features: the kernel's Euclidean pass runs its vectorised body and a remainder,
    summing in another order than NumPy and fusing rate * (x - w) + w into one rounding --
    the winners still agree exactly and the weights to float32 rounding. sigma = 0 (WTA)
    passes rate 0 to every unit but the winner, which must leave them as they are. The
    tolerance is tight enough to catch a real slip: alpha off by 1e-4 fails it."""
    rng = np.random.default_rng(5)
    X = rng.random((300, 45), dtype=np.float32)
    som = SOM(6, 7, sigma=sigma, random_state=0).initialise(X, total_epochs=1)
    steps = np.arange(len(X))
    order = rng.permutation(len(X))
    args = (som.grid_d2, som.alpha(steps), som.width(steps), som.metric_code, som._kind)
    W1, W2, W3 = (som.codebook_.copy() for _ in range(3))
    win1 = som_online_epoch(X, order, W1, *args)
    win2 = som_online_epoch_reference(X, order, W2, *args)
    np.testing.assert_array_equal(win1, win2)
    np.testing.assert_allclose(W1, W2, rtol=1e-5, atol=1e-6)
    slipped = (args[0], args[1] * (1 + 1e-4)) + args[2:]
    som_online_epoch_reference(X, order, W3, *slipped)
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(W1, W3, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("epoch", [som_online_epoch, som_online_epoch_reference])
def test_subnormal_rates_are_set_to_zero(epoch):
    """On a 1x40 line with sigma 1 and alpha 0.5 the unit 13 steps from the winner gets
    rate 0.5 e^-84.5 ~ 1e-37, a normal float32, and moves a zero weight off 0; the unit 14
    steps away gets 0.5 e^-98 ~ 1e-43, subnormal, which ``unit_rates`` sets to 0, so its
    zero weight stays 0 -- in the kernel and the reference alike."""
    line = SOM(1, 40, random_state=0)
    W = np.zeros((40, 2), np.float32)
    W[0] = 1.0                                       # the winner for x = (1, 1)
    X = np.ones((1, 2), np.float32)
    winners = epoch(X, np.zeros(1, np.int64), W, line.grid_d2, np.array([0.5]),
                    np.array([1.0]), 0, 0)
    assert winners[0] == 0
    assert (W[13] > 0).all() and (W[13] < 1e-36).all()
    assert (W[14:] == 0).all()
    rates = unit_rates(0.5, neighbourhood(line.grid_d2[0], 1.0), np.float32)
    assert rates[13] > 0 and (rates[14:] == 0).all()
    assert np.float32(0.5 * neighbourhood(line.grid_d2[0, 14], 1.0)) > 0   # without the rule

def test_batch_mode_same_with_kernels_and_reference(monkeypatch):
    X = colours(200, seed=3)
    fast = SOM(5, 5, mode="batch", n_epochs=4, random_state=0).fit(X)
    monkeypatch.setenv("MINIGEN_KERNELS", "reference")
    ref = SOM(5, 5, mode="batch", n_epochs=4, random_state=0).fit(X)
    np.testing.assert_allclose(fast.codebook_, ref.codebook_, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["online", "batch"])
@pytest.mark.parametrize("topology", ["rectangular", "hexagonal"])
def test_quantisation_error_falls_over_training(mode, topology):
    X = colours(400)
    som = SOM(8, 8, mode=mode, topology=topology, n_epochs=8, init="random",
              random_state=0).fit(X)
    # the wide early neighbourhood first pulls the map together; then, as sigma(n) and
    # alpha(n) decay, the map unfolds and E_q falls epoch after epoch
    qe = np.array(som.quantization_errors_)
    assert qe[-1] < 0.65 * qe[0]
    assert (np.diff(qe) <= 1e-3).all(), qe
    assert 0.0 <= som.topographic_error(X) <= 0.2


def test_one_dimensional_map_orders_itself_on_a_line():
    x = np.random.default_rng(0).random((500, 1), dtype=np.float32)
    som = SOM(1, 12, sigma=4.0, sigma_final=0.5, n_epochs=10, init="random",
              random_state=1).fit(x)
    w = som.codebook_[:, 0]
    steps = np.diff(w)
    assert (steps > 0).all() or (steps < 0).all(), w   # ordered (either direction)
    assert w.min() < 0.1 and w.max() > 0.9              # and spread over the line


def test_winner_take_all_moves_only_the_winner():
    X = colours(1, seed=4)
    som = SOM(3, 3, sigma=0.0, random_state=0).initialise(colours(20), total_epochs=1)
    before = som.codebook_.copy()
    c = int(D.nearest(X, before)[0][0])
    som.train_epoch(X)
    moved = np.nonzero((som.codebook_ != before).any(1))[0]
    assert list(moved) == [c]
    expected = before[c] + som.learning_rate * (X[0] - before[c])
    np.testing.assert_allclose(som.codebook_[c], expected, rtol=1e-6)


def test_decays_and_neighbourhoods_are_the_lectures():
    som = SOM(4, 4, learning_rate=0.5, learning_rate_final=0.05, sigma=2.0, sigma_final=0.5,
              n_epochs=3).initialise(colours(10))
    T = 30  # 3 epochs x 10 samples, online
    assert som.alpha(0) == pytest.approx(0.5)
    assert som.alpha(T) == pytest.approx(0.05)
    assert som.alpha(7) == pytest.approx(0.5 * np.exp(-7 / som._tau_alpha))
    assert som.width(T) == pytest.approx(0.5)
    d2 = np.array([0.0, 1.0, 4.0, 9.0])
    np.testing.assert_allclose(neighbourhood(d2, 2.0), np.exp(-d2 / 8.0))
    np.testing.assert_array_equal(neighbourhood(d2, 2.0, "bubble"), [1, 1, 1, 0])
    np.testing.assert_array_equal(neighbourhood(d2, 0.0), [1, 0, 0, 0])


def test_hexagonal_inner_unit_has_six_neighbours_at_distance_one():
    pos = grid_positions(5, 5, "hexagonal")
    d = np.sqrt(((pos[:, None] - pos[None]) ** 2).sum(-1))
    inner = 2 * 5 + 2
    assert np.isclose(d[inner], 1.0).sum() == 6
    assert (d[inner][d[inner] > 0] >= 1 - 1e-12).all()


def test_maps_and_errors():
    X = colours(300)
    som = SOM(6, 7, n_epochs=3, random_state=0).fit(X)
    assert som.u_matrix().shape == (6, 7) and (som.u_matrix() >= 0).all()
    assert som.hit_map(X).sum() == 300
    assert som.component_planes().shape == (3, 6, 7)
    assert som.weights_.shape == (6, 7, 3)
    assert som.winner(X[:4]).shape == (4, 2)
    np.testing.assert_allclose(som.score(X), -som.quantization_error(X))
    # topographic error counts samples whose two best units are not grid neighbours
    far = SOM(1, 3, sigma=0.0).initialise(X)
    far.codebook_ = np.array([[0, 0, 0], [1, 1, 1], [0.1, 0.1, 0.1]], np.float32)
    assert far.topographic_error(np.zeros((5, 3), np.float32)) == 1.0
    with pytest.raises(ValueError, match="topology"):
        SOM(2, 2, topology="toroidal")
    with pytest.raises(ValueError, match="X has 4 features, the map 3"):
        som.predict(np.zeros((2, 4), np.float32))
