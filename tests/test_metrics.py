"""IS, FID, KID, precision/recall and KL (minigen.metrics) against their formulas and references.

FID is compared with pytorch-fid's own ``calculate_frechet_distance``, run from its installed
source (see ``pytorch_fid_frechet``); KID with a direct O(n^2) double sum; IS with its
formula on hand-made probabilities. Each comparison also catches a planted error.
"""
import ast
import importlib.util
import itertools
import math
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigen as mg
from minigen.metrics import (frechet_distance, gaussian_statistics, inception_score, kid,
                             kl_divergence, precision_recall)
from minigen.metrics import mmd as kid_module
from minigen.metrics.frechet import sqrtm_psd, trace_sqrt_product
from minigen.metrics.knn_manifold import knn_radii


# ------------------------------------------------------------------ KL divergence
def test_kl_divergence_known_values():
    p, q = np.array([0.5, 0.5]), np.array([0.9, 0.1])
    expected = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    assert kl_divergence(p, q) == pytest.approx(expected, rel=1e-14)
    assert kl_divergence(p, p) == 0.0
    # p(y) = 0 terms vanish; q(y) = 0 < p(y) makes it infinite; rows broadcast against q
    assert kl_divergence([0.0, 1.0], [0.5, 0.5]) == pytest.approx(math.log(2), rel=1e-14)
    assert kl_divergence([0.5, 0.5], [1.0, 0.0]) == np.inf
    np.testing.assert_allclose(kl_divergence(np.eye(3), np.full(3, 1 / 3)), [math.log(3)] * 3)
    with pytest.raises(ValueError, match="same number of classes"):
        kl_divergence(np.ones((2, 3)) / 3, np.ones(4) / 4)


# ------------------------------------------------------------------ Inception Score
def test_inception_score_is_one_for_identical_rows():
    row = np.array([0.7, 0.2, 0.05, 0.05])
    mean, std = inception_score(np.tile(row, (50, 1)), splits=5)
    assert mean == pytest.approx(1.0, abs=1e-14) and std == pytest.approx(0.0, abs=1e-14)


def test_inception_score_is_the_class_count_for_one_hot_rows_with_uniform_marginal():
    C = 10
    probs = np.eye(C)[np.arange(200) % C]  # every split of 20 rows holds each class twice
    mean, std = inception_score(probs, splits=10)
    assert mean == pytest.approx(C, rel=1e-13) and std == pytest.approx(0.0, abs=1e-12)
    # half the classes, each as often: IS = 5
    assert inception_score(np.eye(C)[np.arange(100) % 5], splits=2)[0] == pytest.approx(5, rel=1e-13)


def _is_formula(probs):
    """exp(1/N sum_i sum_y p(y|x_i) log(p(y|x_i) / p(y))), p(y) = 1/N sum_i p(y|x_i), by loops."""
    n, c = probs.shape
    marginal = [math.fsum(probs[i, y] for i in range(n)) / n for y in range(c)]
    kl = [math.fsum(probs[i, y] * math.log(probs[i, y] / marginal[y]) for y in range(c)
                    if probs[i, y] > 0) for i in range(n)]
    return math.exp(math.fsum(kl) / n)


def test_inception_score_equals_its_formula_and_splits_are_parts():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (60, 6))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert inception_score(probs, splits=1) == pytest.approx((_is_formula(probs), 0.0), rel=1e-12)
    parts = [_is_formula(probs[k * 20:(k + 1) * 20]) for k in range(3)]
    mean, std = inception_score(probs, splits=3)
    assert mean == pytest.approx(np.mean(parts), rel=1e-12)
    assert std == pytest.approx(np.std(parts), rel=1e-9)
    assert 1.0 < mean < 6.0  # between its bounds
    with pytest.raises(ValueError, match="softmax outputs, not logits"):
        inception_score(logits)
    with pytest.raises(ValueError, match="splits"):
        inception_score(probs, splits=61)


# ------------------------------------------------------------------ Fréchet distance
def pytorch_fid_frechet():
    """pytorch-fid's own ``calculate_frechet_distance``, taken from its installed source.

    Importing ``pytorch_fid.fid_score`` imports torchvision, and PyPI's torchvision (a CUDA
    build) does not import beside the CPU build of torch 2.13.0 that minigen's tests use.
    The function itself needs only NumPy and ``scipy.linalg``, so its definition is read
    from the installed file and run unchanged with those two names (``make deps`` installs
    pytorch-fid with --no-deps for this).
    """
    spec = importlib.util.find_spec("pytorch_fid")  # finds the package without importing it
    if spec is None or spec.origin is None:
        pytest.skip("pytorch-fid is not installed (make deps installs it with --no-deps)")
    scipy_linalg = pytest.importorskip("scipy.linalg", reason="scipy is absent (bench extra)")
    path = os.path.join(os.path.dirname(spec.origin), "fid_score.py")
    with open(path) as f:
        tree = ast.parse(f.read(), filename=path)
    [node] = [n for n in tree.body
              if isinstance(n, ast.FunctionDef) and n.name == "calculate_frechet_distance"]
    namespace = {"np": np, "linalg": scipy_linalg}
    exec(compile(ast.Module(body=[node], type_ignores=[]), path, "exec"), namespace)
    return namespace["calculate_frechet_distance"]


def _features(rng, n, d, shift=0.0):
    """ReLU features of correlated Gaussians (like a classifier's penultimate layer)."""
    mix = rng.normal(0, 1, (d, d)) / math.sqrt(d)
    return np.maximum(rng.normal(shift, 1, (n, d)) @ mix + 0.3, 0.0)


def _statistics_pairs():
    rng = np.random.default_rng(7)
    yield gaussian_statistics(_features(rng, 400, 32)) + gaussian_statistics(
        _features(rng, 300, 32, shift=0.5))
    yield gaussian_statistics(_features(rng, 2000, 128)) + gaussian_statistics(
        _features(rng, 2000, 128, shift=0.2))
    a = rng.normal(0, 1, (8, 8))  # small, dense, non-commuting covariances
    b = rng.normal(0, 1, (8, 8))
    yield rng.normal(0, 1, 8), a @ a.T + 0.1 * np.eye(8), rng.normal(0, 1, 8), b @ b.T


@pytest.mark.filterwarnings("ignore:The `disp` argument is deprecated")
def test_frechet_distance_equals_pytorch_fid():
    reference = pytorch_fid_frechet()
    for stats in _statistics_pairs():
        ours, theirs = frechet_distance(*stats), reference(*stats)
        assert ours == pytest.approx(theirs, rel=1e-6), (ours, theirs)


def _frechet_commuting_square_roots(mu1, s1, mu2, s2):
    """A planted error: Tr(S1^1/2 S2^1/2) in place of Tr((S1 S2)^1/2) -- equal only when the
    covariances commute."""
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2)
                 - 2 * np.trace(sqrtm_psd(s1) @ sqrtm_psd(s2)))


@pytest.mark.filterwarnings("ignore:The `disp` argument is deprecated")
def test_the_pytorch_fid_comparison_catches_a_planted_error():
    reference = pytorch_fid_frechet()
    stats = next(_statistics_pairs())
    assert _frechet_commuting_square_roots(*stats) != pytest.approx(reference(*stats), rel=1e-6)


def test_frechet_distance_closed_form_with_singular_commuting_covariances():
    """S1 = Q D1 Q^T, S2 = Q D2 Q^T commute, so Tr (S1 S2)^1/2 = sum sqrt(d1 d2) exactly --
    here with zero variances (dead features), where a general sqrtm struggles."""
    rng = np.random.default_rng(3)
    d = 40
    q, _ = np.linalg.qr(rng.normal(0, 1, (d, d)))
    d1, d2 = rng.uniform(0, 4, d), rng.uniform(0, 4, d)
    d1[:10] = 0.0
    d2[5:15] = 0.0
    mu1, mu2 = rng.normal(0, 1, d), rng.normal(0, 1, d)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(d1) - np.sqrt(d2)) ** 2)
    got = frechet_distance(mu1, q @ np.diag(d1) @ q.T, mu2, q @ np.diag(d2) @ q.T)
    assert got == pytest.approx(expected, rel=1e-7)
    # fewer samples than features: rank-deficient covariances, still finite and accurate
    few = gaussian_statistics(rng.normal(0, 1, (20, 64)))
    assert frechet_distance(*few, *few) == pytest.approx(0.0, abs=1e-9)


@given(d=st.integers(1, 12), seed=st.integers(0, 2**16), n=st.integers(2, 30))
def test_frechet_distance_properties(d, seed, n):
    rng = np.random.default_rng(seed)
    s1 = gaussian_statistics(rng.normal(0, 1, (n, d)) * rng.uniform(0.1, 3, d))
    s2 = gaussian_statistics(rng.normal(1, 1, (n + 3, d)) @ rng.normal(0, 1, (d, d)))
    scale = 1.0 + np.trace(s1[1]) + np.trace(s2[1])
    assert abs(frechet_distance(*s1, *s1)) < 1e-9 * scale           # d(P, P) = 0
    ab, ba = frechet_distance(*s1, *s2), frechet_distance(*s2, *s1)
    assert ab == pytest.approx(ba, rel=1e-8, abs=1e-9 * scale)      # symmetric
    assert ab >= -1e-9 * scale                                       # a squared distance
    # the trace of the square root via eigh equals the sum of sqrt(eigenvalues of S1 S2)
    lam = np.linalg.eigvals(s1[1] @ s2[1]).real
    assert trace_sqrt_product(s1[1], s2[1]) == pytest.approx(
        np.sqrt(np.clip(lam, 0, None)).sum(), rel=1e-6, abs=1e-6 * scale)


def test_frechet_distance_rejects_bad_statistics():
    with pytest.raises(ValueError, match=r"\(D,\)"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.zeros(2), np.eye(2) * np.nan, np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="N >= 2"):
        gaussian_statistics(np.zeros((1, 5)))


# ------------------------------------------------------------------ KID
def _mmd2_reference(x, y):
    """The unbiased MMD^2 of the cubic kernel by a direct double sum over pairs (O(n^2))."""
    d = x.shape[1]

    def k(a, b):
        return (math.fsum(a * b) / d + 1.0) ** 3
    m, n = len(x), len(y)
    xx = math.fsum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2))
    yy = math.fsum(k(y[i], y[j]) for i, j in itertools.permutations(range(n), 2))
    xy = math.fsum(k(x[i], y[j]) for i in range(m) for j in range(n))
    return xx / (m * (m - 1)) + yy / (n * (n - 1)) - 2 * xy / (m * n)


def _check_kid_exact(kid_fn):
    rng = np.random.default_rng(11)
    x, y = rng.normal(0, 1, (13, 5)), rng.normal(0.3, 1.2, (17, 5))
    mean, std = kid_fn(x, y, subsets=1, subset_size=17)
    assert mean == pytest.approx(_mmd2_reference(x, y), rel=1e-12, abs=1e-14) and std == 0.0


def test_kid_equals_the_direct_reference():
    _check_kid_exact(kid)


def _mmd2_biased(x, y):
    """A planted error: the V-statistic, diagonal k(x_i, x_i) terms included."""
    k = kid_module.polynomial_kernel
    return float(k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean())


def test_the_exactness_check_catches_a_biased_estimator(monkeypatch):
    monkeypatch.setattr(kid_module, "mmd2_unbiased", _mmd2_biased)
    with pytest.raises(AssertionError):
        _check_kid_exact(kid_module.kid)


def test_mmd_with_the_gaussian_kernel_by_hand():
    """The Gaussian kernel (for low-dimensional codes, e.g. an AAE's against its prior) and
    the median heuristic, against direct sums over pairs."""
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    y = np.array([[1.0, 1.0], [3.0, 0.0]])
    # distances within x: 1, 2, sqrt(5) -> median 2
    assert kid_module.median_bandwidth(x) == pytest.approx(2.0, rel=1e-14)
    k = lambda a, b: math.exp(-math.fsum((a - b) ** 2) / (2 * 1.5 ** 2))  # noqa: E731
    got = kid_module.gaussian_kernel(x, y, 1.5)
    np.testing.assert_allclose(got, [[k(a, b) for b in y] for a in x], rtol=1e-14)
    xx = math.fsum(k(x[i], x[j]) for i, j in itertools.permutations(range(3), 2)) / 6
    yy = 2 * k(y[0], y[1]) / 2
    xy = math.fsum(k(a, b) for a in x for b in y) / 6
    mmd = kid_module.mmd2_unbiased(x, y, lambda a, b: kid_module.gaussian_kernel(a, b, 1.5))
    assert mmd == pytest.approx(xx + yy - 2 * xy, rel=1e-13)
    rng = np.random.default_rng(3)
    same = kid_module.mmd2_unbiased(rng.normal(size=(400, 2)), rng.normal(size=(400, 2)),
                                    lambda a, b: kid_module.gaussian_kernel(a, b, 1.0))
    moved = kid_module.mmd2_unbiased(rng.normal(size=(400, 2)), rng.normal(0.5, 1, (400, 2)),
                                     lambda a, b: kid_module.gaussian_kernel(a, b, 1.0))
    assert abs(same) < 0.01 < moved


def _kid_of_same_distribution(seed, d, shift, scale):
    """z-score of the mean MMD^2_u over 200 independent pairs of samples of one distribution."""
    rng = np.random.default_rng(seed)
    values = [kid(*(np.maximum(rng.normal(shift, scale, (2, 15, d)), 0.0)),
                  subsets=1, subset_size=15)[0] for _ in range(200)]
    if np.std(values) == 0:  # every feature clipped to 0 (shift far below 0): MMD^2_u is 0 exactly
        return 0.0 if np.mean(values) == 0 else math.inf
    return np.mean(values) / (np.std(values) / math.sqrt(len(values)))


@given(seed=st.integers(0, 2**16), d=st.integers(1, 6), shift=st.floats(-1, 1),
       scale=st.floats(0.2, 3))
def test_kid_averages_to_zero_on_one_distribution(seed, d, shift, scale):
    assert abs(_kid_of_same_distribution(seed, d, shift, scale)) < 5


def test_the_zero_mean_property_catches_a_biased_estimator(monkeypatch):
    monkeypatch.setattr(kid_module, "mmd2_unbiased", _mmd2_biased)
    assert _kid_of_same_distribution(0, 3, 0.0, 1.0) > 5


def test_kid_subsets_are_seeded_and_leave_the_global_stream_alone():
    rng = np.random.default_rng(1)
    x, y = rng.normal(0, 1, (300, 4)), rng.normal(0.5, 1, (250, 4))
    state = mg.get_rng_state()
    first = kid(x, y, subsets=20, subset_size=50, seed=3)
    assert mg.get_rng_state() == state
    assert kid(x, y, subsets=20, subset_size=50, seed=3) == first
    assert kid(x, y, subsets=20, subset_size=50, seed=4) != first
    mean, std = first
    exact = kid(x, y, subsets=1, subset_size=300)[0]
    assert std > 0 and abs(mean - exact) < 4 * std  # subsets estimate the same quantity
    with pytest.raises(ValueError, match="features"):
        kid(x, y[:, :3])


# ------------------------------------------------------------------ precision / recall
def _precision_recall_reference(real, fake, k):
    def radius(s, i):
        return sorted(np.linalg.norm(s[i] - s[j]) for j in range(len(s)) if j != i)[k - 1]

    def inside(q, s):
        r = [radius(s, i) for i in range(len(s))]
        return np.mean([any(np.linalg.norm(p - s[i]) <= r[i] for i in range(len(s))) for p in q])
    return inside(fake, real), inside(real, fake)


def test_precision_recall_equals_the_direct_reference():
    rng = np.random.default_rng(5)
    real, fake = rng.normal(0, 1, (40, 3)), rng.normal(0.7, 0.6, (35, 3))
    for k in (1, 3):
        got = precision_recall(real, fake, k=k)
        assert got == pytest.approx(_precision_recall_reference(real, fake, k), abs=1e-12)
    # the radius is the k-th *other* row: the zero distance to itself does not count
    line = np.arange(6.0)[:, None]
    np.testing.assert_array_equal(knn_radii(line, k=1), [1, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(knn_radii(line, k=2), [2, 1, 1, 1, 1, 2])


def test_precision_recall_separate_fidelity_from_diversity():
    rng = np.random.default_rng(2)
    modes = np.array([[0.0, 0.0], [20.0, 0.0]])
    real = np.concatenate([rng.normal(m, 1, (200, 2)) for m in modes])
    same = np.concatenate([rng.normal(m, 1, (200, 2)) for m in modes])
    collapsed = rng.normal(modes[0], 1, (400, 2))     # one mode only
    far = rng.normal((0.0, 50.0), 1, (400, 2))        # off the data
    p, r = precision_recall(real, same)
    assert p > 0.9 and r > 0.9
    p, r = precision_recall(real, collapsed)
    assert p > 0.9 and 0.4 < r < 0.6                  # faithful, half the data missing
    assert precision_recall(real, far) == (0.0, 0.0)
