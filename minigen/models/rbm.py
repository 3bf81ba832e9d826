"""Restricted Boltzmann machine (seed lecture 002, "RBM Restricted Boltzmann machine").

Visible units v (n), hidden units h (m), weights w_ij, visible biases a, hidden biases b:

    E(v, h) = - sum_i a_i v_i - sum_j b_j h_j - sum_ij w_ij v_i h_j
    p(v, h) = exp(-E(v, h)) / Z,     p(v) = sum_h p(v, h) = exp(-F(v)) / Z
    F(v)    = - a.v - sum_j log(1 + exp(b_j + (v W)_j))              (free energy)

No connections inside a layer, so the conditionals factorise:

    P(h_j = 1 | v) = sigma(b_j + sum_i v_i w_ij),   P(v_i = 1 | h) = sigma(a_i + sum_j w_ij h_j)

(the lecture writes sigma(-b - ...) with its energy's sign folded in; with E as above the
signs are +). The log-likelihood gradient is  d ln P(v)/d w_ij = <v_i h_j>_data - <v_i h_j>_model.
The model expectation needs Z; contrastive divergence (CD-k) replaces it by k steps of
block Gibbs sampling started at the data, exactly as the lecture lists:

    1. visible states := the input image
    2. hidden probabilities P(h | v)
    3. each hidden unit set to 1 with that probability
    4. visible probabilities P(v | h)
    5. while the step count is below k, back to 2
    6. hidden probabilities from the last visible state
    then  Delta W = eta (v0^T P(h|v0) - vk^T P(h|vk)) / batch.

Persistent CD (Tieleman 2008) keeps the negative chain running between updates instead of
restarting it at the data. Gaussian-Bernoulli variant (real-valued data, unit variance:
standardise the data first): E = |v - a|^2 / 2 - b.h - v W h, so P(v | h) = N(a + W h, I).

Monitoring: reconstruction error; pseudo-log-likelihood as scikit-learn's BernoulliRBM
reports it; and the log-likelihood itself, ln p(v) = -F(v) - ln Z, with ln Z estimated by
annealed importance sampling (Salakhutdinov & Murray 2008) -- or computed exactly by
enumeration for tiny models (the tests check one against the other).
"""
import math

import numpy as np

from ..backend import get_array_module, to_numpy
from ..kernels import addmm_, cuda_for, matmul, use_numba
from ._checks import as_data_matrix, require_finite

VISIBLE_TYPES = ("bernoulli", "gaussian")


class RBM:
    """Restricted Boltzmann machine trained by CD-k or persistent CD, scikit-learn style.

    Args:
        n_hidden: hidden units m.
        visible: 'bernoulli' (data in [0, 1]) or 'gaussian' (standardised real data).
        learning_rate: eta (per-example average gradient, so independent of batch_size).
        batch_size, n_epochs: mini-batches and passes in ``fit``.
        k: Gibbs steps per update (CD-k / PCD-k).
        persistent: True for persistent CD (one chain per batch row, kept across updates).
        momentum: velocity <- momentum velocity + eta grad.
        weight_decay: L2 penalty on W (adds -weight_decay W to the gradient).
        lr_schedule: 'constant' or 'exponential' (eta(n) = eta0 exp(-n / lr_tau), n the
            epoch, the lecture's decay law; lr_tau defaults to n_epochs).
        sample_visible: draw binary visible states in the negative phase (True) or use the
            visible probabilities (False, step 4 of the lecture). Persistent chains always
            sample, to stay a true Markov chain.
        track_reconstruction: with PCD, spend one extra product per batch to report the
            reconstruction error (CD gets it for free from its first Gibbs step).
        random_state / seed: int seed.

    Fitted: ``W`` (n, m), ``a`` (n,), ``b`` (m,); scikit-learn names ``components_`` (m, n),
    ``intercept_visible_``, ``intercept_hidden_``.
    """

    def __init__(self, n_hidden=256, visible="bernoulli", learning_rate=0.1, batch_size=64,
                 n_epochs=10, k=1, persistent=False, momentum=0.5, weight_decay=0.0,
                 lr_schedule="constant", lr_tau=None, sample_visible=False, init_std=0.01,
                 track_reconstruction=True, random_state=None, seed=None):
        if visible not in VISIBLE_TYPES:
            raise ValueError(f"RBM: visible must be one of {VISIBLE_TYPES}, got {visible!r}")
        if lr_schedule not in ("constant", "exponential"):
            raise ValueError(f"RBM: lr_schedule must be 'constant' or 'exponential', "
                             f"got {lr_schedule!r}")
        if k < 1:
            raise ValueError(f"RBM: k (Gibbs steps) must be >= 1, got {k}")
        self.n_hidden = int(n_hidden)
        self.visible = visible
        self.learning_rate = float(learning_rate)
        self.batch_size = int(batch_size)
        self.n_epochs = int(n_epochs)
        self.k = int(k)
        self.persistent = bool(persistent)
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self.lr_schedule = lr_schedule
        self.lr_tau = lr_tau
        self.sample_visible = bool(sample_visible)
        self.init_std = float(init_std)
        self.track_reconstruction = bool(track_reconstruction)
        self.random_state = seed if random_state is None else random_state

    # ------------------------------------------------------------------ sklearn names
    @property
    def components_(self):
        return self.W.T

    @property
    def intercept_visible_(self):
        return self.a

    @property
    def intercept_hidden_(self):
        return self.b

    # ------------------------------------------------------------------ energies
    def energy(self, v, h):
        """E(v, h) per row (float64)."""
        v, h = _f64(v), _f64(h)
        W, a, b = _f64(self.W), _f64(self.a), _f64(self.b)
        return self._visible_energy(v, a) - h @ b - ((v @ W) * h).sum(1)

    def free_energy(self, v):
        """F(v) = E_vis(v) - sum_j softplus(b_j + (v W)_j), per row (float64):
        p(v) = exp(-F(v)) / Z."""
        v = _f64(v)
        W, a, b = _f64(self.W), _f64(self.a), _f64(self.b)
        return self._visible_energy(v, a) - _softplus(v @ W + b).sum(1)

    def _visible_energy(self, v, a):
        """-a.v (Bernoulli) or |v - a|^2 / 2 (Gaussian)."""
        if self.visible == "bernoulli":
            return -(v @ a)
        return 0.5 * ((v - a) ** 2).sum(1)

    # ------------------------------------------------------------------ conditionals
    def hidden_probs(self, v):
        """P(h_j = 1 | v) = sigma(b_j + sum_i v_i w_ij)."""
        return sigmoid_bias(matmul(v, self.W), self.b, overwrite_pre=True)

    def sample_hidden(self, v, rng=None):
        """(P(h | v), a binary draw from it)."""
        return bernoulli(matmul(v, self.W), self.b, rng or self._rng, overwrite_pre=True)

    def visible_mean(self, h):
        """E[v | h]: sigma(a + W h) (Bernoulli) or a + W h (Gaussian)."""
        pre = matmul(h, self.W.T)
        return sigmoid_bias(pre, self.a) if self.visible == "bernoulli" else pre + self.a

    def sample_visible_(self, h, rng=None):
        """(E[v | h], a draw from P(v | h))."""
        rng = rng or self._rng
        pre = matmul(h, self.W.T)
        if self.visible == "bernoulli":
            return bernoulli(pre, self.a, rng, overwrite_pre=True)
        mean = pre + self.a
        xp = get_array_module(mean)
        noise = xp.asarray(rng.standard_normal(mean.shape, dtype=np.float32)).astype(mean.dtype)
        return mean, mean + noise

    def gibbs(self, v, n_steps=1, rng=None):
        """n_steps of block Gibbs sampling v -> h -> v; returns (E[v|h], v sample)."""
        mean = v
        for _ in range(n_steps):
            _, h = self.sample_hidden(v, rng)
            mean, v = self.sample_visible_(h, rng)
        return mean, v

    def transform(self, X):
        """Hidden-unit probabilities P(h | v), the learned features (as scikit-learn)."""
        self._check_fitted()
        return self.hidden_probs(self._check_X(X, "transform"))

    # ------------------------------------------------------------------ training
    def fit(self, X, y=None):
        """``n_epochs`` passes of CD-k / PCD-k over X."""
        X = self._check_X(X, "fit", fitted=False)
        self.initialise(X)
        for _ in range(self.n_epochs):
            self.train_epoch(X)
        return self

    def initialise(self, X):
        """W ~ N(0, init_std^2); a from the data (Hinton's practical guide: log p/(1-p) of
        each pixel's mean, so the visible units start at the data's marginals); b = 0."""
        X = self._check_X(X, "initialise", fitted=False)
        xp = get_array_module(X)
        self._rng = np.random.default_rng(self.random_state)
        n = X.shape[1]
        self.W = xp.asarray(self._rng.normal(0, self.init_std, (n, self.n_hidden))
                            ).astype(np.float32)
        self.a = xp.asarray(self.base_visible_bias(X)).astype(np.float32)
        self.b = xp.zeros(self.n_hidden, dtype=np.float32)
        self._velocity = [xp.zeros_like(self.W), xp.zeros_like(self.a), xp.zeros_like(self.b)]
        self._chain = None  # persistent hidden states, created on first use
        self.epochs_ = 0
        return self

    def base_visible_bias(self, X):
        """Data-based visible biases: logit of each unit's mean (Bernoulli, clipped), the
        mean itself (Gaussian). Also the AIS base model's biases."""
        mean = to_numpy(X).astype(np.float64).mean(0)
        if self.visible == "gaussian":
            return mean
        p = np.clip(mean, 1e-3, 1 - 1e-3)
        return np.log(p / (1 - p))

    def current_learning_rate(self):
        if self.lr_schedule == "constant":
            return self.learning_rate
        tau = self.lr_tau or max(self.n_epochs, 1)
        return self.learning_rate * math.exp(-self.epochs_ / tau)

    def train_epoch(self, X, progress=None):
        """One pass over X in shuffled mini-batches. Returns the mean reconstruction error
        (squared error of E[v | h ~ P(h | v)] against v, per example) of the pass."""
        X = self._check_X(X, "train_epoch")
        xp = get_array_module(X)
        self._base_bias = self.base_visible_bias(X) if not hasattr(self, "_base_bias") \
            else self._base_bias
        lr = self.current_learning_rate()
        order = xp.asarray(self._rng.permutation(X.shape[0]))
        total = 0.0
        starts = range(0, X.shape[0], self.batch_size)
        for s in (progress(starts) if progress else starts):
            total += self.partial_fit_batch(X[order[s:s + self.batch_size]], lr)
        self.epochs_ += 1
        return total / X.shape[0]

    def partial_fit_batch(self, v0, lr=None):
        """One CD-k (or PCD-k) update on a mini-batch; returns its summed reconstruction error."""
        lr = self.current_learning_rate() if lr is None else lr
        rng = self._rng
        if self.persistent and not self.track_reconstruction and self._chains_ready(len(v0)):
            # PCD needs the data's hidden draw only to start the chains and to measure the
            # reconstruction; the gradient's data term takes P(h | v0) (as scikit-learn):
            # no draw here saves a (batch, H) uniform fill and a pass per mini-batch
            ph0, h = self.hidden_probs(v0), None
        else:
            ph0, h = self.sample_hidden(v0, rng)              # steps 1-3
        mean1 = None
        if self.persistent:
            h_data = h
            h = self._persistent_start(v0.shape[0], h)
        for step in range(self.k):                            # steps 4-5
            mean, v = self.sample_visible_(h, rng)
            if mean1 is None:
                mean1 = mean
            if not (self.sample_visible or self.persistent):
                v = mean                                      # step 4: probabilities
            if step + 1 < self.k or self.persistent:
                phk, h = self.sample_hidden(v, rng)           # step 2 again
            else:
                phk = self.hidden_probs(v)                    # step 6
        if self.persistent:
            # the chains go on next time; a short last batch advanced only the first n of
            # them, and the others must survive it (rebinding would drop them: the chains
            # restarted from the data at every epoch when N was not a multiple of the batch)
            self._chain[:len(h)] = h
            # the negative phase did not reconstruct v0; that costs one more product
            mean1 = self.visible_mean(h_data) if self.track_reconstruction else None
        self._apply_gradient(v0, ph0, v, phk, lr)
        return float(((v0 - mean1) ** 2).sum()) if mean1 is not None else float("nan")

    def _chains_ready(self, n):
        """True when the persistent chains exist for a batch of n rows."""
        return self._chain is not None and self._chain.shape[0] >= n

    def _persistent_start(self, n, h_data):
        """The persistent chains' hidden states (initialised from the first batch's draw);
        a last batch smaller than the rest uses the first n chains."""
        if not self._chains_ready(n):
            self._chain = h_data.copy()
        return self._chain[:n]

    def _apply_gradient(self, v0, ph0, vk, phk, lr):
        """Delta = (<v h>_data - <v h>_model) / batch with momentum and weight decay."""
        n = v0.shape[0]
        # One GEMM for both phases, the step folded into the small factor (no pass over the
        # (D, H) result to scale it). With V = [v0; vk], P = [ph0; phk] and s = +lr/n on
        # the data's rows, -lr/n on the chains' (P scaled row by row by s):
        #     V^T P = lr (v0^T ph0 - vk^T phk) / n          (dW)
        #     s^T V = lr (sum v0 - sum vk) / n,  1^T P = lr (sum ph0 - sum phk) / n  (da, db)
        # -- a bias is the weight of a unit that is always on.
        # s^T V is one matrix-vector product: 8 against 21 us for the four column sums it
        # replaces on a (64, 784) batch (measured).
        V, P, s = self._phases(v0, ph0, lr)
        V[:n], V[n:], P[:n], P[n:] = v0, vk, ph0, phk
        P *= s[:, None]
        delta_a, delta_b = matmul(s, V), P.sum(0)
        # BLAS adds V^T P to W (or to the velocity) as it makes it: C = alpha A B + beta C
        # with beta = 1 (1 - lr weight_decay: the decay's -lr wd W folded in), no (D, H)
        # array for dW and no pass to add it (an epoch of Fashion-MNIST: 68 ms less, measured)
        decay = 1.0 - lr * self.weight_decay
        if not self.momentum:
            addmm_(self.W, V.T, P, beta=decay)
            self.a += delta_a
            self.b += delta_b
            return
        # vel = momentum vel + lr grad;  param += vel
        vel_W, vel_a, vel_b = self._velocity
        addmm_(vel_W, V.T, P, beta=self.momentum)
        if self.weight_decay:
            vel_W -= (lr * self.weight_decay) * self.W
        for vel, delta in ((vel_a, delta_a), (vel_b, delta_b)):
            vel *= self.momentum
            vel += delta
        for param, vel in zip((self.W, self.a, self.b), self._velocity):
            param += vel

    def _phases(self, v0, ph0, lr):
        """Buffers V (2n, D) and P (2n, H) for [v0; vk] and [ph0; phk], and s (2n,): +lr/n on
        the data's rows, -lr/n on the chains'; kept from one mini-batch to the next (new
        arrays each time cost page faults) and made again when n, lr or the arrays change."""
        xp = get_array_module(v0)
        n, (D, H) = v0.shape[0], (v0.shape[1], ph0.shape[1])
        kept = getattr(self, "_phase_buffers", None)
        if kept is None or kept[0].shape != (2 * n, D) or kept[1].shape != (2 * n, H) \
                or kept[0].dtype != v0.dtype or get_array_module(kept[0]) is not xp \
                or kept[3] != lr:
            s = xp.full(2 * n, lr / n, dtype=v0.dtype)
            s[n:] *= -1
            kept = (xp.empty((2 * n, D), v0.dtype), xp.empty((2 * n, H), ph0.dtype), s, lr)
            self._phase_buffers = kept
        return kept[:3]

    # ------------------------------------------------------------------ monitoring
    def reconstruction_error(self, X):
        """Mean over rows of |v - E[v | h]|^2, h drawn from P(h | v)."""
        X = self._check_X(X, "reconstruction_error")
        return float(((X - self.visible_mean(self.sample_hidden(X)[1])) ** 2).sum() / len(X))

    def score_samples(self, X, rng=None):
        """Pseudo-log-likelihood per row, as scikit-learn's BernoulliRBM: flip one random
        visible unit i per row and return n * log sigma(F(v_flipped) - F(v))."""
        X = to_numpy(self._check_X(X, "score_samples"))
        rng = rng or self._rng
        n, d = X.shape
        idx = (np.arange(n), rng.integers(0, d, n))
        flipped = X.copy()
        flipped[idx] = 1 - flipped[idx]
        return -d * np.logaddexp(0, -(self.free_energy(flipped) - self.free_energy(X)))

    def score(self, X, y=None):
        """Mean pseudo-log-likelihood (larger is better)."""
        return float(np.mean(self.score_samples(X)))

    def log_likelihood(self, X, log_z):
        """Mean ln p(v) = -F(v) - ln Z over the rows of X, for a given ln Z."""
        return float(-self.free_energy(self._check_X(X, "log_likelihood")).mean() - log_z)

    def log_partition_exact(self, max_units=20):
        """ln Z by enumerating every state of the smaller layer (2^min(n, m) terms)."""
        self._check_fitted()
        W, a, b = _f64(self.W), _f64(self.a), _f64(self.b)
        n, m = W.shape
        if self.visible == "gaussian":  # integrate v out analytically: sum over h only
            if m > max_units:
                raise ValueError(f"RBM.log_partition_exact: 2^{m} hidden states is too many")
            H = _all_states(m)
            Wh = H @ W.T
            terms = H @ b + Wh @ a + 0.5 * (Wh ** 2).sum(1)
            return float(_logsumexp(terms) + 0.5 * n * math.log(2 * math.pi))
        if min(n, m) > max_units:
            raise ValueError(f"RBM.log_partition_exact: 2^{min(n, m)} states is too many "
                             f"(n={n}, m={m}); use log_partition_ais")
        if m <= n:  # ln Z = logsumexp_h [b.h + sum_i softplus(a_i + (W h)_i)]
            H = _all_states(m)
            terms = H @ b + _softplus(H @ W.T + a).sum(1)
        else:
            terms = -self.free_energy(_all_states(n))
        return float(_logsumexp(terms))

    def log_partition_ais(self, n_chains=100, n_betas=10000, betas=None, base_bias=None,
                          rng=None, return_bounds=False):
        """ln Z by annealed importance sampling from a base RBM with W = 0.

        The base model A has visible biases a_A (default: fitted to the data marginals)
        and no weights, so ln Z_A is closed-form. The intermediate models

            p*_beta(v) = exp(-(1 - beta) E_A(v) - beta E_vis(v)) prod_j (1 + exp(beta x_j)),
            x = b + v W,

        run from beta = 0 (A) to 1 (this RBM). Each chain's log importance weight adds
        ln p*_beta_k(v) - ln p*_beta_{k-1}(v) before a Gibbs step at beta_k; then
        ln Z ~= ln Z_A + ln mean(exp(log w)). With ``return_bounds``, also ln(mean w -/+ 3
        std err) (the bracket Salakhutdinov & Murray report).
        """
        self._check_fitted()
        rng = rng or np.random.default_rng(self.random_state)
        if betas is None:
            betas = ais_betas(n_betas)
        betas = np.asarray(betas, np.float64)
        W = to_numpy(self.W).astype(np.float32)
        a = to_numpy(self.a).astype(np.float64)
        b = to_numpy(self.b).astype(np.float32)
        a_base = np.asarray(base_bias if base_bias is not None else
                            getattr(self, "_base_bias", np.zeros_like(a)), np.float64)
        n, m = W.shape
        gauss = self.visible == "gaussian"
        if gauss:
            log_z_base = 0.5 * n * math.log(2 * math.pi) + m * math.log(2)
            v = (a_base + rng.standard_normal((n_chains, n))).astype(np.float32)
        else:
            log_z_base = float(_softplus(a_base).sum() + m * math.log(2))
            v = (rng.random((n_chains, n)) < _sigmoid64(a_base)).astype(np.float32)
        log_w = np.zeros(n_chains)
        for beta_prev, beta in zip(betas[:-1], betas[1:]):
            # visible part of ln p*_beta(v) - ln p*_beta_prev(v)
            log_w += (beta - beta_prev) * self._ais_visible_term(v, a, a_base)
            u = rng.random((n_chains, m), dtype=np.float32)
            h = np.empty((n_chains, m), dtype=np.float32)
            log_w += ais_hidden(v @ W, b, beta, beta_prev, u, h)   # hidden part + h draw
            # v ~ p(v | h) at temperature beta: biases (1 - beta) a_A + beta (a + W h)
            mix = ((1 - beta) * a_base + beta * a).astype(np.float32)
            pre = beta * (h @ W.T)
            if gauss:
                v = (pre + mix + rng.standard_normal(pre.shape, dtype=np.float32))
            else:
                v = bernoulli(pre, mix, rng)[1]
        log_z = log_z_base + _logmeanexp(log_w)
        if not return_bounds:
            return float(log_z)
        shift = log_w.max()
        w = np.exp(log_w - shift)
        err = 3 * w.std() / math.sqrt(n_chains)
        lo = log_z_base + shift + math.log(max(w.mean() - err, 1e-300))
        hi = log_z_base + shift + math.log(w.mean() + err)
        return float(log_z), float(lo), float(hi)

    def _ais_visible_term(self, v, a, a_base):
        """d/dbeta of the visible part of ln p*_beta(v): E_A(v) - E_vis(v)."""
        v = v.astype(np.float64)
        if self.visible == "bernoulli":
            return v @ (a - a_base)
        return 0.5 * (((v - a_base) ** 2).sum(1) - ((v - a) ** 2).sum(1))

    # ------------------------------------------------------------------ generation
    def sample(self, n_samples=64, n_steps=1000, v0=None, record_every=None, rng=None):
        """Run n_samples Gibbs chains for n_steps and return E[v | h] of the last step.

        Chains start from ``v0`` (e.g. data) or from the visible biases' distribution.
        With ``record_every``, also return the list of snapshots (for chain figures).
        """
        self._check_fitted()
        rng = rng or np.random.default_rng(self.random_state)
        xp = get_array_module(self.W)
        if v0 is None:
            a = to_numpy(self.a).astype(np.float64)
            if self.visible == "bernoulli":
                v0 = (rng.random((n_samples, len(a))) < _sigmoid64(a)).astype(np.float32)
            else:
                v0 = (a + rng.standard_normal((n_samples, len(a)))).astype(np.float32)
        v = xp.asarray(v0, dtype=np.float32)
        mean = v
        snapshots = []
        for step in range(1, n_steps + 1):
            mean, v = self.gibbs(v, 1, rng)
            if record_every and (step % record_every == 0 or step == 1):
                snapshots.append(to_numpy(mean).copy())
        return (mean, snapshots) if record_every else mean

    # ------------------------------------------------------------------ state
    def state_dict(self):
        return {"W": to_numpy(self.W), "a": to_numpy(self.a), "b": to_numpy(self.b),
                "base_bias": np.asarray(getattr(self, "_base_bias", to_numpy(self.a))),
                "visible": self.visible, "n_hidden": self.n_hidden,
                "epochs": int(getattr(self, "epochs_", 0))}

    def load_state_dict(self, state):
        self.W = np.asarray(state["W"], np.float32)
        self.a = np.asarray(state["a"], np.float32)
        self.b = np.asarray(state["b"], np.float32)
        self._base_bias = np.asarray(state["base_bias"], np.float64)
        self.epochs_ = int(state.get("epochs", 0))
        self._rng = np.random.default_rng(self.random_state)
        self._velocity = [np.zeros_like(self.W), np.zeros_like(self.a), np.zeros_like(self.b)]
        self._chain = None
        return self

    def _check_fitted(self):
        if not hasattr(self, "W"):
            raise RuntimeError("RBM: call fit(X) before using the model")

    def _check_X(self, X, where, fitted=True):
        if fitted:
            self._check_fitted()
        bernoulli = self.visible == "bernoulli"
        X = as_data_matrix(X, f"RBM.{where}", np.float32, self.W.shape[0] if fitted else None,
                           check_finite=not bernoulli)
        if bernoulli and X.size:
            # min and max propagate NaN and show inf, so the range check sees non-finite
            # data too; the finite check then only names the entry. Two passes over X
            # instead of three: train_epoch's check of Fashion-MNIST took 24 ms, not 55
            # (~2 % of an epoch, measured)
            lo, hi = float(X.min()), float(X.max())
            if not (math.isfinite(lo) and math.isfinite(hi)):
                require_finite(X, f"RBM.{where}")
            if lo < 0 or hi > 1:
                raise ValueError(f"RBM.{where}: Bernoulli visible units need data in [0, 1], "
                                 f"got [{lo:.3g}, {hi:.3g}]; use visible='gaussian' for "
                                 "real-valued data")
        return X


# ---------------------------------------------------------------------- AIS schedule
def ais_betas(n_betas=10000):
    """Inverse temperatures 0 -> 1, denser near 1 where the distributions change fastest:
    the 500 / 4000 / 10000 split over [0, .5], [.5, .9], [.9, 1] of Salakhutdinov & Murray,
    scaled to ``n_betas`` in total."""
    n1, n2 = max(2, n_betas * 500 // 14500), max(2, n_betas * 4000 // 14500)
    n3 = max(2, n_betas - n1 - n2)
    return np.concatenate([np.linspace(0, 0.5, n1, endpoint=False),
                           np.linspace(0.5, 0.9, n2, endpoint=False), np.linspace(0.9, 1, n3)])


# ---------------------------------------------------------------------- elementwise
def bernoulli(pre, bias, rng, overwrite_pre=False):
    """(sigma(pre + bias), a 0/1 draw from it) in the dtype of ``pre``. The uniforms come
    from the seeded NumPy generator (``random_bits``), so every path draws the same sample.

    ``overwrite_pre=True``: pre is a temporary (a fresh product) the probabilities may be
    computed in, as the training step's are -- no new buffer between two products, 66 ms
    less on a Fashion-MNIST epoch of 1.57 s (measured)."""
    if overwrite_pre and use_numba(pre):  # kernels/classical.py: on Numba's threads, same bits
        from ..kernels.classical import bernoulli_rows
        sample = bernoulli_rows(pre, bias, rng, random_bits)
        if sample is not None:
            return pre, sample
    bits = random_bits(rng, pre.shape)
    if use_numba(pre):  # kernels/classical.py: the passes after the exp, fused
        from ..kernels.classical import sigmoid_bernoulli
        e = _exp_neg_sum(pre, bias, out=pre if overwrite_pre else None)
        sample = np.empty(pre.shape, pre.dtype)
        sigmoid_bernoulli(e.reshape(-1), bits.reshape(-1), sample.reshape(-1))
        return e.astype(pre.dtype, copy=False), sample
    cuda = cuda_for(pre)
    if cuda is not None:  # kernels/classical.cu
        return cuda.sigmoid_bernoulli(pre, bias, get_array_module(pre).asarray(uniforms(bits)))
    return bernoulli_reference(pre, bias, uniforms(bits))


def bernoulli_reference(pre, bias, u):
    xp = get_array_module(pre)
    probs = sigmoid_bias_reference(pre, bias)
    sample = xp.empty_like(probs)
    xp.less(u, probs, out=sample)   # 1[u < p], written as 0.0 / 1.0
    return probs, sample


def random_bits(rng, shape):
    """32 random bits per element (uint32 array of ``shape``) from the generator ``rng``.

    The draws compare against u = (bits >> 8) / 2^24 (``uniforms``): the very float32
    uniforms ``rng.random(shape, dtype=np.float32)`` returns, which NumPy makes from the
    generator's 64-bit outputs a 32-bit half at a time, low half first. Taking the 64-bit
    words whole (``random_raw``) costs 60 us against 99 us for a (64, 784) batch (measured,
    PCG64): the uniforms were ~9 % of a training epoch. Other generators -- MT19937, whose
    raw words hold 32 random bits in 64, or a stand-in such as the exercises' -- go through
    ``integers``."""
    if not isinstance(getattr(rng, "bit_generator", None), _WORDS_OF_64_BITS):
        return rng.integers(0, 2 ** 32, size=shape, dtype=np.uint32)
    n = math.prod(shape)
    return rng.bit_generator.random_raw((n + 1) // 2).view(np.uint32)[:n].reshape(shape)


_WORDS_OF_64_BITS = (np.random.PCG64, np.random.PCG64DXSM, np.random.SFC64, np.random.Philox)


def uniforms(bits):
    """Float32 uniforms in [0, 1) from 32 random bits each: the top 24 bits / 2^24 (exact;
    float32 has a 24-bit significand), NumPy's own float32 ``random``."""
    return (bits >> 8).astype(np.float32) * np.float32(2.0 ** -24)


def sigmoid_bias(pre, bias, overwrite_pre=False):
    """sigma(pre + bias); ``overwrite_pre=True`` lets it be computed in pre's buffer (pre a
    temporary, as in ``bernoulli``)."""
    cuda = cuda_for(pre)
    if cuda is not None:  # kernels/classical.cu
        return cuda.sigmoid_bias(pre, bias)
    if overwrite_pre and use_numba(pre):  # kernels/classical.py: on Numba's threads, same bits
        from ..kernels.classical import sigmoid_rows
        if sigmoid_rows(pre, bias):
            return pre
    return sigmoid_bias_reference(pre, bias, out=pre if overwrite_pre else None)


def sigmoid_bias_reference(pre, bias, out=None):
    """sigma(pre + bias) = 1 / (1 + exp(-(pre + bias))) in the dtype of ``pre``.

    Four ufunc passes in place in one buffer (``out`` if ``_exp_neg_sum`` can use it). This
    is also the CPU's fast path for the probabilities alone: NumPy's SIMD exp costs ~0.4 ns
    per float32 against ~3.7 ns for the scalar exp a Numba loop calls (a fused Numba sigmoid
    was 2.5x slower on (64, 784), measured). With a draw, ``bernoulli`` keeps the exp here
    and fuses what follows it."""
    z = _exp_neg_sum(pre, bias, out)
    z += 1.0
    get_array_module(z).reciprocal(z, out=z)
    return z.astype(pre.dtype, copy=False)


def _exp_neg_sum(pre, bias, out=None):
    """exp(-(pre + bias)) in dtype result_type(pre, bias): two ufunc passes, in ``out`` if
    that has the dtype (``pre`` itself may be it) and a C-contiguous new buffer if not.
    -(pre + bias) is computed as (-bias) - pre: the same bits, IEEE rounding being
    symmetric in sign. exp overflows harmlessly to inf (sigma = 0) for very negative
    pre + bias."""
    xp = get_array_module(pre)
    dtype = xp.result_type(pre, bias)
    z = out if out is not None and out.dtype == dtype and out.flags.c_contiguous else \
        xp.empty(pre.shape, dtype=dtype)
    xp.subtract(-bias, pre, out=z)
    with np.errstate(over="ignore"):
        xp.exp(z, out=z)
    return z


def _kernels():
    """minigen.kernels.classical when kernels are on (MINIGEN_KERNELS != reference), else None."""
    from ..kernels import classical, use_kernels
    return classical if use_kernels() else None


def ais_hidden(pre, bias, beta, beta_prev, u, h):
    """AIS hidden-layer step (see kernels.classical.ais_hidden): returns the float64 log
    weight increment and writes the hidden draw into h."""
    K = _kernels()
    if K is not None:
        return K.ais_hidden(pre, bias, float(beta), float(beta_prev), u, h)
    return ais_hidden_reference(pre, bias, beta, beta_prev, u, h)


def ais_hidden_reference(pre, bias, beta, beta_prev, u, h):
    x = (pre + bias).astype(np.float64)
    delta = _softplus(beta * x).sum(1) - _softplus(beta_prev * x).sum(1)
    h[...] = (u < _sigmoid64(beta * x)).astype(h.dtype)
    return delta


# ---------------------------------------------------------------------- float64 helpers
def _f64(x):
    return to_numpy(x).astype(np.float64)


def _softplus(x):
    return np.logaddexp(0.0, x)


def _sigmoid64(x):
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, np.float64)))


def _logsumexp(x):
    m = np.max(x)
    return m + math.log(np.exp(x - m).sum())


def _logmeanexp(x):
    return _logsumexp(x) - math.log(len(x))


def _all_states(n):
    """Every binary vector of length n, shape (2^n, n), float64."""
    return ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1).astype(np.float64)


# ---------------------------------------------------------------------- figures
def plot_filters(rbm, path, n=64, image_shape=None, title="RBM filters (columns of W)"):
    """Each hidden unit's weights as an image, each scaled to [0, 1] on its own."""
    from ..viz import save_image_grid
    W = to_numpy(rbm.W).T[:n].astype(np.float64)
    lo, hi = W.min(1, keepdims=True), W.max(1, keepdims=True)
    save_image_grid((W - lo) / np.maximum(hi - lo, 1e-12), path, nrow=int(math.ceil(math.sqrt(len(W)))),
                    title=title, image_shape=image_shape)


def plot_chain(snapshots, steps, path, image_shape=None, n_chains=8):
    """Chain evolution: one row per recorded step, one column per chain."""
    from ..viz import save_image_grid
    rows = [np.asarray(s[:n_chains]) for s in snapshots]
    images = np.concatenate(rows)
    lo, hi = images.min(), images.max()
    if lo < 0 or hi > 1:
        images = (images - lo) / max(hi - lo, 1e-12)
    save_image_grid(images, path, nrow=len(rows[0]), title="Gibbs chains",
                    image_shape=image_shape, row_labels=[f"step {s}" for s in steps])
