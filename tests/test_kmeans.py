"""K-means: kernels equal their NumPy references; Lloyd recovers clusters; parity with
scikit-learn from the same initial centres; the four distances."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minigen.models import KMeans
from minigen.models import distances as D
from minigen.models.kmeans import cluster_sums, cluster_sums_reference, kmeans_plusplus


def blobs(seed, k=4, n=60, d=3, spread=20.0):
    rng = np.random.default_rng(seed)
    while True:  # "well separated": every pair of centres at least 12 noise sds apart
        centres = rng.normal(0, spread, (k, d))
        gaps = np.linalg.norm(centres[:, None] - centres[None], axis=-1)[np.triu_indices(k, 1)]
        if gaps.min() >= 12:
            break
    y = np.repeat(np.arange(k), n)
    return (centres[y] + rng.normal(0, 1, (k * n, d))).astype(np.float32), y


@pytest.mark.parametrize("metric", D.METRICS)
def test_nearest_kernel_equals_reference(metric):
    rng = np.random.default_rng(1)
    X = rng.random((257, 7), dtype=np.float32)
    W = rng.random((13, 7), dtype=np.float32)
    i_fast, d_fast = D.nearest(X, W, metric)
    i_ref, d_ref = D.nearest_reference(X, W, metric)
    np.testing.assert_array_equal(i_fast, i_ref)
    np.testing.assert_allclose(d_fast, d_ref, rtol=1e-5, atol=1e-5)


def test_distances_follow_the_lecture():
    x = np.array([[1.0, 2.0, 3.0]])
    w = np.array([[0.0, 4.0, 3.5]])
    assert D.pairwise(x, w, "euclidean")[0, 0] == pytest.approx(np.sqrt(1 + 4 + 0.25))
    assert D.pairwise(x, w, "dot")[0, 0] == pytest.approx(1 - (0 + 8 + 10.5))
    assert D.pairwise(x, w, "manhattan")[0, 0] == pytest.approx(1 + 2 + 0.5)
    assert D.pairwise(x, w, "supremum")[0, 0] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="unknown distance"):
        D.pairwise(x, w, "hamming")


@given(seed=st.integers(0, 2 ** 16), k=st.integers(1, 6))
@settings(max_examples=10)
def test_cluster_sums_kernel_equals_reference(seed, k):
    rng = np.random.default_rng(seed)
    X = rng.random((50, 5), dtype=np.float32)
    labels = rng.integers(0, k, 50)
    s1, c1 = cluster_sums(X, labels, k)
    s2, c2 = cluster_sums_reference(X, labels, k)
    np.testing.assert_allclose(s1, s2, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(c1, c2)


@given(seed=st.integers(0, 2 ** 16))
@settings(max_examples=8)
def test_recovers_well_separated_clusters(seed):
    X, y = blobs(seed)
    km = KMeans(4, n_init=3, random_state=seed).fit(X)
    # each true cluster lands in one found cluster, and no two share one
    mapping = {t: set(km.labels_[y == t]) for t in range(4)}
    assert all(len(v) == 1 for v in mapping.values())
    assert len(set.union(*mapping.values())) == 4
    assert km.inertia_ == pytest.approx(((X - km.cluster_centers_[km.labels_]) ** 2).sum(),
                                        rel=1e-4)
    np.testing.assert_array_equal(km.predict(X), km.labels_)


def test_kmeans_plusplus_picks_distinct_data_points():
    X, _ = blobs(3)
    C = kmeans_plusplus(X, 4, np.random.default_rng(0))
    assert len({tuple(c) for c in C}) == 4
    assert all((X == c).all(1).any() for c in C)


def test_reference_path_gives_the_same_fit(monkeypatch):
    X, _ = blobs(5, k=3)
    fast = KMeans(3, random_state=0, tol=0).fit(X)
    monkeypatch.setenv("MINIGEN_KERNELS", "reference")
    ref = KMeans(3, random_state=0, tol=0).fit(X)
    np.testing.assert_array_equal(fast.labels_, ref.labels_)
    np.testing.assert_allclose(fast.cluster_centers_, ref.cluster_centers_, rtol=1e-5)


def test_same_inertia_as_scikit_learn_from_the_same_start():
    sk = pytest.importorskip("sklearn.cluster", reason="scikit-learn not installed: parity "
                             "not checked")
    rng = np.random.default_rng(0)
    X = rng.random((600, 6), dtype=np.float32)   # no clear clusters: many Lloyd steps
    init = X[:5].copy()
    ours = KMeans(5, init=init, tol=0, max_iter=500).fit(X)
    theirs = sk.KMeans(5, init=init, n_init=1, tol=0, max_iter=500).fit(X)
    assert ours.inertia_ == pytest.approx(theirs.inertia_, rel=1e-4)
    np.testing.assert_allclose(ours.cluster_centers_, theirs.cluster_centers_, atol=1e-4)


@pytest.mark.parametrize("metric", ["manhattan", "supremum", "dot"])
def test_other_metrics_run_and_assign_to_nearest(metric):
    X, _ = blobs(2, k=3)
    km = KMeans(3, metric=metric, random_state=0).fit(X)
    Dm = D.pairwise(X, km.cluster_centers_, metric)
    np.testing.assert_array_equal(km.labels_, Dm.argmin(1))


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="5 samples for 8 clusters"):
        KMeans(8).fit(np.zeros((5, 2), np.float32))
    with pytest.raises(ValueError, match="init array has shape"):
        KMeans(2, init=np.zeros((3, 2))).fit(np.random.rand(10, 2))
    with pytest.raises(RuntimeError, match="call fit"):
        KMeans(2).predict(np.zeros((1, 2)))


@pytest.mark.parametrize("n_blocks", [1, 2, 7])
def test_fused_lloyd_kernel_equals_reference(n_blocks):
    """From no assignment (labels -1), then from the previous one: each time the labels,
    distances, sums and counts of the reference recomputed from scratch. The sums are
    updated by the moved rows only; with values k/64 in [0, 1) every float64 sum is exact,
    so the update must give the recomputed sums bit for bit."""
    from minigen.kernels.classical import lloyd_from_gram
    rng = np.random.default_rng(4)
    X = (rng.integers(0, 64, (301, 9)) / 64).astype(np.float32)
    labels, sums, counts = np.full(301, -1), np.zeros((6, 9)), np.zeros(6)
    moved_before = None
    for C in (X[:6].copy(), X[10:16] * 0.9 + 0.05):
        d2, moved = lloyd_from_gram(X, X @ C.T, (X * X).sum(1), (C * C).sum(1), labels,
                                    sums, counts, n_blocks)
        i_ref, d_ref = D.nearest_reference(X, C)
        s_ref, c_ref = cluster_sums_reference(X, i_ref, 6)
        np.testing.assert_array_equal(labels, i_ref)
        # squared distances by |x|^2 - 2 x.c + |c|^2 in float32: absolute error ~ 1e-6 |x|^2
        np.testing.assert_allclose(d2, d_ref.astype(np.float64) ** 2, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(sums, s_ref)
        np.testing.assert_array_equal(counts, c_ref)
        assert 0 < moved < 301 if moved_before is not None else moved == 301
        moved_before = moved
    # the check can fail: sums left as they were (a row's move not taken from its old
    # cluster) differ from the recomputed ones
    stale = sums.copy()
    labels[:] = -1
    lloyd_from_gram(X, X @ C.T, (X * X).sum(1), (C * C).sum(1), labels, stale, counts, 1)
    assert not np.array_equal(stale, s_ref)


def test_non_finite_data_are_refused_and_an_overflowing_sum_is_not():
    """The classical models' input check: a NaN/inf entry is named; finite data whose sum
    overflows float32 (the check's fast path) still pass."""
    from minigen.models._checks import as_data_matrix
    X = np.ones((5, 4), np.float32)
    X[2, 3] = np.nan
    with pytest.raises(ValueError, match=r"X\[2, 3\] is nan"):
        KMeans(2).fit(X)
    X[2, 3] = -np.inf
    with pytest.raises(ValueError, match=r"X\[2, 3\] is -inf"):
        as_data_matrix(X, "check")
    huge = np.full((4, 3), 3e38, np.float32)
    with np.errstate(over="ignore"):
        assert np.isinf(huge.sum())
    assert as_data_matrix(huge, "check") is huge
