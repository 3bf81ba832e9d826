"""The three rungs without autograd: an RBM's CD-1 update, one SOM step, one EM M-step.

No gradient to check by finite differences here: each function returns arrays, and the
checker compares them with closed forms first (the exact log-likelihood gradient of a tiny
RBM, enumerated over all its states; the winner's move of a SOM whose neighbourhood is the
winner alone; a mixture's M-step with hard responsibilities, which is the per-cluster sample
mean and covariance), then with the library's own code at fixed inputs, then over random
shapes drawn by hypothesis (the shrunk counterexample is reported).
"""
from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st

from ..models import rbm, som
from ..models.gmm import GaussianMixture
from ..testing import _first_difference, run_property
from . import solutions
from .exercise import Exercise
from .source import Lib, Quote, Text

RTOL, ATOL = 1e-9, 1e-12


class Mismatch(AssertionError):
    """The student's arrays differ from the closed form or the library's (``check`` says
    which comparison)."""

    def __init__(self, message, check):
        super().__init__(message)
        self.check = check


@dataclass
class ClassicalPart:
    """A NumPy function ``entry(*args) -> tuple of arrays`` named ``outputs``.

    ``reference`` is the library's function of the same signature; ``fixed(rng)`` the fixed
    arguments, ``sweep`` a strategy drawing argument tuples; ``closed_forms`` are
    ``(check name, args(rng), expected(args) -> arrays or None for "skip")`` -- comparisons
    with a formula that needs no library code."""
    entry: str
    reference: object
    outputs: tuple
    fixed: object
    sweep: object
    closed_forms: list = field(default_factory=list)


def compare(check, outputs, ours, theirs, theirs_label):
    """Raise ``Mismatch`` at the first output entry where ``ours`` and ``theirs`` differ."""
    ours, theirs = _arrays(ours), _arrays(theirs)
    if len(ours) != len(theirs):
        raise Mismatch(f"{check}: returns {len(ours)} arrays, expected {len(theirs)} "
                       f"({', '.join(outputs)})", check)
    for name, a, b in zip(outputs, ours, theirs):
        diff = _first_difference(name, a, b, RTOL, ATOL, "yours", theirs_label)
        if diff:
            raise Mismatch(f"{check} failed: {diff}", check)


def _arrays(result):
    """A function's result as a tuple of arrays (one array alone, or a tuple or list)."""
    return tuple(result) if isinstance(result, (tuple, list)) else (result,)


def describe_args(names, args):
    return ", ".join(f"{n} {np.shape(a)}" if np.ndim(a) else f"{n} = {a:.4g}"
                     for n, a in zip(names, args))


# ------------------------------------------------------------------ RBM CD-1
def exact_rbm_gradient(v0, W, a, b):
    """d mean_n log p(v0_n) / d (W, a, b) of a Bernoulli RBM, E(v, h) = -v a - h b - v W h,
    by enumerating all 2^(n + m) joint states: <v h>_data - <v h>_model, where the data term
    uses P(h | v0) = sigma(b + v0 W) and the model term the exact joint p(v, h)."""
    V, H = rbm._all_states(W.shape[0]), rbm._all_states(W.shape[1])
    log_p = (V @ a)[:, None] + (H @ b)[None, :] + V @ W @ H.T      # -E(v, h), all pairs
    p = np.exp(log_p - log_p.max())
    p /= p.sum()
    ph0 = rbm._sigmoid64(v0 @ W + b)
    model_vh = V.T @ p @ H
    return (v0.T @ ph0 / len(v0) - model_vh, v0.mean(0) - p.sum(1) @ V, ph0.mean(0) - p.sum(0) @ H)


def _rbm_args(rng, n=4, nv=3, nh=2, scale=1.0):
    v0 = (rng.random((n, nv)) < 0.5).astype(np.float64)
    return (v0, scale * rng.standard_normal((nv, nh)), rng.standard_normal(nv),
            rng.standard_normal(nh), rng.random((n, nh)))


@st.composite
def _rbm_sweep(draw):
    n, nv, nh = draw(st.integers(1, 5)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    return _rbm_args(np.random.default_rng(draw(st.integers(0, 2 ** 16))), n, nv, nh)


# ------------------------------------------------------------------ SOM
def _grid(rows, cols):
    return np.array([[i, j] for i in range(rows) for j in range(cols)], dtype=np.float64)


def _som_args(rng, rows=2, cols=3, d=2, alpha=0.5, sigma=1.0):
    return (rng.standard_normal((rows * cols, d)), rng.standard_normal(d), _grid(rows, cols),
            alpha, sigma)


@st.composite
def _som_sweep(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    return _som_args(rng, draw(st.integers(1, 3)), draw(st.integers(1, 4)),
                     draw(st.integers(1, 3)), draw(st.sampled_from([0.1, 0.5, 1.0])),
                     draw(st.sampled_from([0.0, 0.5, 1.0, 2.0])))


def _winner_alone(args):
    """sigma = 0: the neighbourhood is the winner alone, which moves by alpha (x - W_c)."""
    W, x, positions, alpha, _ = args
    c = int(((W - x) ** 2).sum(1).argmin())
    expected = W.copy()
    expected[c] += alpha * (x - W[c])
    return (expected,)


# ------------------------------------------------------------------ EM M-step
def _em_args(rng, n=6, d=2, k=2):
    resp = rng.random((n, k)) + 0.1
    return rng.standard_normal((n, d)), resp / resp.sum(1, keepdims=True)


@st.composite
def _em_sweep(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    d = draw(st.integers(1, 3))
    # N > D + 1 points: every covariance is positive definite (the library's M-step also
    # factors it, and refuses a singular one)
    return _em_args(rng, draw(st.integers(d + 2, d + 5)), d, draw(st.integers(1, 3)))


def _hard_args(rng):
    """Responsibilities 0 or 1: each point belongs to one of two clusters of 4 points."""
    X = rng.standard_normal((8, 3))
    return X, np.repeat(np.eye(2), 4, axis=0)


def _hard_m_step(args):
    """With 0/1 responsibilities the M-step is each cluster's share of the points, its sample
    mean and its (biased, 1/N_k) sample covariance."""
    X, resp = args
    members = [X[resp[:, j] == 1] for j in range(resp.shape[1])]
    return (np.array([len(m) / len(X) for m in members]),
            np.array([m.mean(0) for m in members]),
            np.array([np.cov(m, rowvar=False, bias=True) for m in members]))


# ------------------------------------------------------------------ the exercises
CD1_STUB = '''
def cd1_update(v0, W, a, b, u):
    """One CD-1 step of a Bernoulli RBM on the batch v0 (N, n); W (n, m), a (n,), b (m,).
    The hidden sample is h0 = 1[u < P(h = 1 | v0)] for the given uniforms u (N, m).
    Returns (dW, da, db), the CD-1 estimate of the mean log-likelihood gradient."""
    # TO WRITE: ph0 = sigma(b + v0 W); h0 from u; v1 = sigma(a + h0 W^T) (probabilities, not
    #   a sample); ph1 = sigma(b + v1 W); then the positive minus the negative statistics,
    #   divided by N
    raise NotImplementedError("cd1_update")
'''

SOM_STUB = '''
def som_update(W, x, positions, alpha, sigma):
    """The codebook W (K, D) after one online Kohonen step for the sample x (D,): units on a
    grid at positions (K, 2), learning rate alpha, Gaussian neighbourhood of width sigma
    (sigma = 0: the winner alone). Returns the new codebook; W itself is left unchanged."""
    # TO WRITE: the winner c = argmin_j ||x - W_j||; d_j^2 = ||positions_j - positions_c||^2;
    #   h_j = exp(-d_j^2 / (2 sigma^2)); W_j + alpha h_j (x - W_j)
    raise NotImplementedError("som_update")
'''

EM_STUB = '''
def m_step(X, resp):
    """EM's M-step for a Gaussian mixture with full covariances: X (N, D), responsibilities
    resp (N, K) (rows sum to 1). Returns (weights (K,), means (K, D), covariances (K, D, D))."""
    # TO WRITE: N_j = sum_i resp_ij; w_j = N_j / N; mu_j = sum_i resp_ij X_i / N_j;
    #   Sigma_j = sum_i resp_ij (X_i - mu_j)(X_i - mu_j)^T / N_j
    raise NotImplementedError("m_step")
'''


def classical_exercises():
    return [
        Exercise(
            name="rbm_cd1", title="the RBM's CD-1 update, without autograd",
            writes="cd1_update",
            statement="""
                A Bernoulli RBM, E(v, h) = -sum_i a_i v_i - sum_j b_j h_j - sum_ij v_i w_ij h_j,
                has the log-likelihood gradient

                    d log p(v) / d w_ij = <v_i h_j>_data - <v_i h_j>_model

                The model's expectation needs Z; contrastive divergence replaces it by one
                Gibbs step from the data:

                    ph0 = sigma(b + v0 W),   h0 = 1[u < ph0],   v1 = sigma(a + h0 W^T),
                    ph1 = sigma(b + v1 W)
                    dW = (v0^T ph0 - v1^T ph1) / N,  da = mean(v0 - v1),  db = mean(ph0 - ph1)

                Write cd1_update with NumPy. The check enumerates all states of a tiny RBM for
                the exact gradient: at W = 0 one Gibbs step reaches the model's distribution,
                so CD-1 must equal it; at random W it compares with minigen's RBM given the
                same uniforms u.""",
            source="seed 002, slides \"Идея РВМ\" and \"Обучение Contrastive Divergence\" (steps 1-6); "
                   "Hinton 2002; Hinton, A Practical Guide to Training RBMs (2010), section 3",
            hint="v1 is the visible probabilities (the library's default, sample_visible=False), "
                 "h0 the only sample. Every statistic is a mean over the batch: divide by N.",
            stub=[Text(CD1_STUB, __name__, uses=("np",))],
            solution=[Lib(solutions.FixedUniforms), Lib(solutions.cd1_update),
                      Quote(rbm.RBM.partial_fit_batch, "what RBM.partial_fit_batch runs"),
                      Quote(rbm.RBM._apply_gradient, "and the update it applies")],
            note="""
                minigen's RBM does CD-k inside RBM.partial_fit_batch (minigen/models/rbm.py);
                cd1_update runs one step of it with learning rate 1 and no momentum, its
                hidden sample drawn from the uniforms u, and returns how far W, a, b moved.""",
            hide=("RBM",),
            parts=[ClassicalPart(
                "cd1_update", solutions.cd1_update, ("dW", "da", "db"), _rbm_args, _rbm_sweep(),
                closed_forms=[("exact gradient (W = 0)",
                               lambda rng: _rbm_args(rng, 5, 3, 2, scale=0.0),
                               lambda args: exact_rbm_gradient(*args[:4]))])]),
        Exercise(
            name="som_update", title="one step of a self-organising map", writes="som_update",
            statement="""
                Kohonen's online rule for one sample x: competition, cooperation, adaptation.

                    c = argmin_j ||x - W_j||                       (the winner)
                    h_j = exp(-||r_j - r_c||^2 / (2 sigma^2))      (r: positions on the grid)
                    W_j <- W_j + alpha h_j (x - W_j)

                The neighbourhood is measured on the map's grid, not in input space. Write
                som_update with NumPy; sigma = 0 moves the winner alone.""",
            source="seed 002, slides \"Конкуренция\", \"Кооперация\" and \"Адаптация\" "
                   "(\"Формирование сети Кохонена\"); Kohonen 1982",
            hint="copy W first (np.array(W)); with sigma = 0 use h = 1 at the winner and 0 "
                 "elsewhere rather than dividing by 0.",
            stub=[Text(SOM_STUB, __name__, uses=("np",))],
            solution=[Lib(solutions.som_update),
                      Quote(som.som_online_epoch_reference, "the library's loop it calls"),
                      Quote(som.neighbourhood, "the neighbourhood")],
            note="""
                minigen's SOM trains with som_online_epoch_reference (minigen/models/som.py,
                with Numba and CUDA twins); som_update presents one sample to it.""",
            parts=[ClassicalPart(
                "som_update", solutions.som_update, ("W",), _som_args, _som_sweep(),
                closed_forms=[("winner", lambda rng: _som_args(rng, 3, 3, 2, 0.7, 0.0),
                               _winner_alone)])]),
        Exercise(
            name="em_m_step", title="EM's M-step for a Gaussian mixture", writes="m_step",
            statement="""
                Given the E-step's responsibilities g_i(j) = P(j | X_i), the M-step maximises
                the expected complete log-likelihood in closed form:

                    N_j = sum_i g_i(j),    w_j = N_j / N,    mu_j = sum_i g_i(j) X_i / N_j
                    Sigma_j = sum_i g_i(j) (X_i - mu_j)(X_i - mu_j)^T / N_j

                Write m_step with NumPy. The check first gives hard responsibilities (0 or
                1), where the answer is each cluster's sample mean and 1/N_j covariance, then
                soft ones against minigen's GaussianMixture.""",
            source="seed 002, slide \"ЕМ-алгоритм\" (M-step: w_j = 1/N sum_i g_i(j), ...); "
                   "Dempster, Laird & Rubin 1977; Bishop, PRML (2006), eq. 9.24-9.27",
            hint="resp.T @ X gives every sum_i g_i(j) X_i at once; the covariance divides by "
                 "N_j, not N_j - 1.",
            stub=[Text(EM_STUB, __name__, uses=("np",))],
            solution=[Lib(solutions.m_step),
                      Quote(GaussianMixture._m_step, "the library's M-step")],
            note="""
                minigen's GaussianMixture (minigen/models/gmm.py) does the M-step in _m_step;
                m_step runs it on given responsibilities with reg_covar = 0.""",
            parts=[ClassicalPart(
                "m_step", solutions.m_step, ("weights", "means", "covariances"), _em_args,
                _em_sweep(), closed_forms=[("closed form (hard responsibilities)", _hard_args,
                                            _hard_m_step)])]),
    ]


def check(part, fn, max_examples, seed, result):
    """Run a ``ClassicalPart``'s checks on the student's ``fn``, filling ``result``
    (``verdict.PartResult``); the first failure stops them."""
    from .verdict import Failure
    names = fn.__code__.co_varnames[:fn.__code__.co_argcount] if hasattr(fn, "__code__") else ()

    def call(args):
        with np.errstate(all="ignore"):
            return fn(*[np.array(a) if np.ndim(a) else a for a in args])

    for name, make, expected in part.closed_forms:
        args = make(np.random.default_rng(seed))
        try:
            compare(name, part.outputs, call(args), expected(args), "the closed form")
        except Exception as e:
            result.failure = Failure(name, _message(e, part.entry), e,
                                     "at " + describe_args(names, args))
            return
        result.passed.append(name)
    args = part.fixed(np.random.default_rng(seed))
    try:
        compare("reference", part.outputs, call(args), part.reference(*args),
                "minigen's")
    except Exception as e:
        result.failure = Failure("reference", _message(e, part.entry), e,
                                 "at " + describe_args(names, args))
        return
    result.passed.append("reference")

    def body(example):
        compare("property sweep", part.outputs, call(example), part.reference(*example),
                "minigen's")

    run = run_property(body, part.sweep, max_examples, seed)
    if run.ok:
        result.passed.append(f"property sweep ({run.count} examples)")
        return
    where = "drawing an example failed" if run.example is None else \
        f"hypothesis's shrunk counterexample (first failure at example {run.failed_at}): " \
        + describe_args(names, run.example)
    result.failure = Failure("property sweep", _message(run.error, part.entry), run.error, where,
                             inner="reference")


def _message(error, entry):
    if isinstance(error, Mismatch):
        return str(error)
    return f"{entry} raised {type(error).__name__}: {error}"
