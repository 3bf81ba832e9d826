"""Numba kernels for the classical models: K-means, SOM, RBM (seed lecture 002).

Each kernel here has a plain NumPy reference in the model module that calls it
(``minigen/models/distances.py``, ``som.py``, ``kmeans.py``, ``rbm.py``); the tests check
kernel == reference. The kernels are used only for NumPy arrays and when
``minigen.kernels.use_kernels()`` is True.

What pays, and why:

* best-matching-unit / nearest-centre search: the matrix product ``X @ W.T`` is left to
  BLAS; the kernel fuses ``||x||^2 - 2 x.w + ||w||^2``, the arg-min and the distance in one
  pass over the (N, K) product, in parallel over samples (NumPy needs four passes and
  three temporaries). Manhattan and supremum distances have no matrix-product form, so the
  kernel computes them directly, in parallel over samples.
* the online SOM epoch: a sequential loop over samples (each update changes the weights the
  next winner is chosen from), so NumPy pays interpreter overhead per sample. The kernel
  fuses "update unit j for sample t" with "distance of sample t+1 to unit j" in one pass
  over the weights, with the distance summed in float32 (eight SIMD lanes) for float32 maps.
* per-cluster sums (K-means centres, batch SOM): one pass, per-thread partial sums; for
  K-means fused with the arg-min over BLAS's product (``lloyd_from_gram``).
* RBM: AIS needs ``sum_j softplus(beta * x_ij)`` per chain, accumulated in float64, and a
  Bernoulli draw (uniforms from the seeded NumPy generator, so runs are repeatable
  whatever the thread count). The training step's sigmoid-and-draw keeps NumPy's SIMD exp
  (~0.4 ns per float32 against ~3.7 ns for the scalar exp a Numba loop calls) and fuses
  what follows it -- 1 / (1 + e), the uniforms from raw random bits, the comparison -- in
  one pass (``sigmoid_bernoulli``).

Metric codes (shared with ``minigen.models.distances``): 0 Euclidean, 1 dot product,
2 Manhattan, 3 supremum.
"""
import contextlib
import math

import numba
import numpy as np
from numba import njit, prange

from . import pcg64

EUCLIDEAN, DOT, MANHATTAN, SUPREMUM = 0, 1, 2, 3

# Below this many element operations a parallel kernel runs on one thread: waking the
# others costs ~0.1-1 ms per call (far more when the cores are shared), more than the work.
PARALLEL_MIN_WORK = 2_000_000


@contextlib.contextmanager
def threads_for(work):
    """Run the enclosed parallel kernels on one thread when ``work`` is small."""
    if work >= PARALLEL_MIN_WORK:
        yield
        return
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(before)


# ---------------------------------------------------------------- nearest unit / centre
@njit(parallel=True, cache=True)
def nearest_from_gram(gram, x_sq, w_sq, metric):
    """Nearest unit for each row of ``gram = X @ W.T`` (N, K).

    metric 0: d = sqrt(max(|x|^2 - 2 x.w + |w|^2, 0)); metric 1: d = 1 - x.w.
    Returns (index int64 (N,), distance float64 (N,)).
    """
    n, k = gram.shape
    index = np.empty(n, dtype=np.int64)
    dist = np.empty(n, dtype=np.float64)
    for i in prange(n):
        best = np.inf
        arg = 0
        for j in range(k):
            if metric == 0:
                d = w_sq[j] - 2.0 * gram[i, j]   # |x|^2 is the same for every j: add it later
            else:
                d = 1.0 - gram[i, j]
            if d < best:
                best = d
                arg = j
        index[i] = arg
        if metric == 0:
            dist[i] = math.sqrt(max(best + x_sq[i], 0.0))
        else:
            dist[i] = best
    return index, dist


@njit(inline="always")
def _distance(x, w, metric):
    """One distance of the lecture between two vectors (Euclidean returned squared).
    Euclidean, Manhattan and supremum sum in the vectors' own precision (a float32 sum
    vectorises eight lanes wide; converting each term to float64 halves that), as NumPy's
    reference and the CUDA kernel do. The dot product sums in float64, as
    ``distances.to_one`` and the CUDA kernel do, so near-ties break the same way."""
    if metric == 1:
        dot = 0.0
        for f in range(x.shape[0]):
            dot += np.float64(x[f]) * np.float64(w[f])
        return 1.0 - dot
    acc = x.dtype.type(0)
    if metric == 0:
        for f in range(x.shape[0]):
            t = x[f] - w[f]
            acc += t * t
    elif metric == 2:
        for f in range(x.shape[0]):
            acc += abs(x[f] - w[f])
    else:
        for f in range(x.shape[0]):
            acc = max(acc, abs(x[f] - w[f]))
    return acc


@njit(parallel=True, fastmath=True, cache=True)
def nearest_direct(X, W, metric):
    """Nearest row of W for each row of X by a direct loop (any metric code 0..3)."""
    n = X.shape[0]
    k = W.shape[0]
    index = np.empty(n, dtype=np.int64)
    dist = np.empty(n, dtype=np.float64)
    for i in prange(n):
        best = np.inf
        arg = 0
        for j in range(k):
            d = _distance(X[i], W[j], metric)
            if d < best:
                best = d
                arg = j
        index[i] = arg
        dist[i] = math.sqrt(best) if metric == 0 else best
    return index, dist


# ---------------------------------------------------------------- per-cluster sums
@njit(parallel=True, cache=True)
def cluster_sums(X, labels, k, weights, n_blocks):
    """sums[c] = sum_{i: labels_i = c} weights_i x_i and counts[c] = sum weights_i (float64).

    Each of ``n_blocks`` (= the thread count) blocks of rows is summed into a private
    (k, D) buffer; the buffers are added at the end (no two threads write the same memory).
    """
    n, d = X.shape
    n_blocks = max(min(n, n_blocks), 1)
    part = np.zeros((n_blocks, k, d), dtype=np.float64)
    part_n = np.zeros((n_blocks, k), dtype=np.float64)
    step = (n + n_blocks - 1) // n_blocks
    for b in prange(n_blocks):
        for i in range(b * step, min(n, (b + 1) * step)):
            c = labels[i]
            wi = weights[i]
            part_n[b, c] += wi
            for f in range(d):
                part[b, c, f] += wi * X[i, f]
    sums = np.zeros((k, d), dtype=np.float64)
    counts = np.zeros(k, dtype=np.float64)
    for b in range(n_blocks):
        sums += part[b]
        counts += part_n[b]
    return sums, counts


# ---------------------------------------------------------------- one Lloyd step
@njit(parallel=True, cache=True)
def lloyd_from_gram(X, gram, x_sq, c_sq, labels, sums, counts, n_blocks):
    """K-means steps 4-8 after the product ``gram = X @ C.T`` (N, K), done by BLAS:

    * for each row the nearest centre (argmin |c|^2 - 2 x.c) and its squared distance
      |x|^2 - 2 x.c + |c|^2 -- a parallel pass over ``gram`` only;
    * the per-cluster sums and counts of the new centres, *updated* rather than recomputed:
      ``labels`` (N,) int64 holds the previous assignment (-1: none yet) and ``sums`` (K, D),
      ``counts`` (K,) (float64) its sums; only the rows that changed cluster are read,
      added to their new cluster and taken from their old one. After the first iterations
      few rows move, so X is read once per iteration (by the product), not twice.
      float64 sums of float32 rows are exact while their bits span less than 53 (pixel
      data: ~47), so updating them gives the recomputed sums; otherwise they agree to
      ~1e-16 relative.

    Why split the product out: BLAS's register-blocked float32 GEMM does the N K D
    multiply-adds ~1.8x faster than a Numba dot loop (measured on 60000x784, K = 10).

    Updates labels, sums and counts in place; returns (squared distances float64 (N,),
    the number of rows that changed cluster).
    """
    n, d = X.shape
    k = gram.shape[1]
    dist2 = np.empty(n, dtype=np.float64)
    nearest = np.empty(n, dtype=np.int64)
    for i in prange(n):
        best = np.inf
        arg = 0
        for j in range(k):
            score = c_sq[j] - 2.0 * gram[i, j]   # |x|^2 is the same for every j
            if score < best:
                best = score
                arg = j
        nearest[i] = arg
        dist2[i] = max(best + x_sq[i], 0.0)
    n_blocks = max(min(n, n_blocks), 1)
    part = np.zeros((n_blocks, k, d), dtype=np.float64)
    part_n = np.zeros((n_blocks, k), dtype=np.float64)
    moved = np.zeros(n_blocks, dtype=np.int64)
    step = (n + n_blocks - 1) // n_blocks
    for b in prange(n_blocks):
        for i in range(b * step, min(n, (b + 1) * step)):
            old = labels[i]
            new = nearest[i]
            if old == new:
                continue
            moved[b] += 1
            labels[i] = new
            part_n[b, new] += 1.0
            into = part[b, new]
            for f in range(d):
                into[f] += X[i, f]
            if old >= 0:
                part_n[b, old] -= 1.0
                out = part[b, old]
                for f in range(d):
                    out[f] -= X[i, f]
    for b in range(n_blocks):
        sums += part[b]
        counts += part_n[b]
    return dist2, moved.sum()


# ---------------------------------------------------------------- online SOM
@njit(inline="always")
def _neighbourhood(d2, sigma, kind):
    """h(d) for squared lateral distance d2: 0 Gaussian exp(-d^2/(2 sigma^2)), 1 bubble.
    sigma = 0 is winner-take-all: only the winner (d = 0) moves."""
    if sigma <= 0.0:
        return 1.0 if d2 == 0.0 else 0.0
    if kind == 0:
        return math.exp(-d2 / (2.0 * sigma * sigma))
    return 1.0 if d2 <= sigma * sigma else 0.0


@njit(inline="always")
def _move_and_measure(w, x, rate, nxt, metric):
    """Adaptation of one unit, w += rate (x - w) in place, and the distance d(nxt, w) of the
    next sample to the moved unit, which the next competition needs.

    Euclidean (the default): one pass over w -- each moved weight is still in a register
    when its term of ||nxt - w||^2 is added, so w is read and written once per sample
    instead of read twice. A unit with rate 0 (beyond a bubble, or a subnormal rate set to
    0 by ``som.unit_rates``) gets its values stored back unchanged: skipping its store in a
    branch of its own cost more than it saved (Numba then kept the reference counts of w,
    x and nxt per unit: 6 calls, +25 % on the epoch, measured). Other metrics: the move,
    then ``_distance``."""
    if metric != EUCLIDEAN:
        if rate != 0.0:
            for f in range(w.shape[0]):
                w[f] += rate * (x[f] - w[f])
        return _distance(nxt, w, metric)
    acc = w.dtype.type(0)
    for f in range(w.shape[0]):
        moved = w[f] + rate * (x[f] - w[f])
        w[f] = moved
        t = nxt[f] - moved
        acc += t * t
    return acc


# fastmath: the sums over features may be reordered (vectorised) and rate * (x - w) + w
# contracted to one fused multiply-add. Both are fixed by the code, not by the data or the
# thread count, so a run repeats bit for bit; against the NumPy reference (pairwise sums,
# two roundings) the weights agree to float32 rounding and the winners exactly (tests).
@njit(fastmath=True, cache=True)
def som_online_epoch(X, order, W, grid_d2, alphas, sigmas, metric, kind):
    """One pass of online Kohonen learning over ``X[order]``; updates W in place.

    For t = 0, 1, ...: winner c = argmin_j d(x_t, w_j), then for every unit j
    w_j += alpha_t h(d_jc, sigma_t) (x_t - w_j). Returns the winner of each sample.

    Per sample the cost is one pass over W (K x D): the update for x_t is fused with the
    distance of x_{t+1} to the freshly updated w_j (``_move_and_measure``); the K rates
    alpha_t h_jc are computed first, rounded to W's precision and subnormal ones set to 0, as
    the reference does (``som.unit_rates``). Every other unit moves, as in the reference and
    MiniSom (the Gaussian is not truncated).

    Serial on purpose: one sample's work (K x D) is too small to share between threads --
    measured, a parallel loop over units per sample was 2-4x slower than this one.
    """
    k = W.shape[0]
    n = order.shape[0]
    winners = np.empty(n, dtype=np.int64)
    dist = np.empty(k, dtype=np.float64)
    rates = np.empty(k, dtype=W.dtype)
    tiny = np.finfo(W.dtype).tiny
    for j in range(k):
        dist[j] = _distance(X[order[0]], W[j], metric)
    for t in range(n):
        c = 0
        for j in range(1, k):
            if dist[j] < dist[c]:
                c = j
        winners[t] = c
        for j in range(k):
            rates[j] = alphas[t] * _neighbourhood(grid_d2[c, j], sigmas[t], kind)
            if rates[j] < tiny:   # subnormal: moves nothing, costs ~100 cycles a use
                rates[j] = 0.0
        x = X[order[t]]
        nxt = X[order[t + 1]] if t + 1 < n else x   # the last step's distances go unused
        for j in range(k):
            dist[j] = _move_and_measure(W[j], x, rates[j], nxt, metric)
    return winners


# ---------------------------------------------------------------- RBM (AIS)
# Serial on purpose: elementwise passes over (chains, units) arrays; waking threads for
# each one cost more than it saved (measured, and much more so when the cores are shared).
@njit(inline="always")
def _sigmoid(z):
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@njit(inline="always")
def _softplus(z):
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


@njit(fastmath=True, cache=True)
def ais_hidden(pre, bias, beta, beta_prev, uniform, h):
    """The AIS inner loop over hidden units, for every chain i:

    returns delta_i = sum_j softplus(beta x_ij) - softplus(beta_prev x_ij)  (float64),
    the hidden part of log p*_beta(v_i) - log p*_beta_prev(v_i), with x = pre + bias;
    and writes h_ij ~ Bernoulli(sigmoid(beta x_ij)), the Gibbs draw at temperature beta.
    """
    n, m = pre.shape
    out = np.empty(n, dtype=np.float64)
    for i in prange(n):
        acc = 0.0
        for j in range(m):
            x = pre[i, j] + bias[j]
            acc += _softplus(beta * x) - _softplus(beta_prev * x)
            h[i, j] = 1.0 if uniform[i, j] < _sigmoid(beta * x) else 0.0
        out[i] = acc
    return out


# ---------------------------------------------------------------- RBM (Gibbs step)
# error_model="numpy": without it Numba checks every float division for a zero divisor (to
# raise ZeroDivisionError), and the check keeps LLVM from vectorising the loop: 67 against
# 18 us for a (64, 784) batch (measured). 1 + e >= 1 is never zero anyway.
@njit(cache=True, error_model="numpy")
def sigmoid_bernoulli(ep, bits, sample):
    """The training step's sigmoid and draw, finished in one pass over flat arrays:

        ep = 1 / (1 + ep)            in: e = exp(-(pre + bias)) from NumPy's SIMD exp,
                                     out: the probabilities, rounded to sample's dtype
        sample = 1[u < ep]           with u = (bits >> 8) / 2^24, bits uint32

    (``rbm.bernoulli_reference``: its last passes -- add 1, reciprocal, the uniforms,
    the comparison -- fused; each rounding as there, so the results are bit-equal). u is
    the float32 uniform NumPy's ``Generator.random`` makes from the same 32 bits. In place:
    one array read and written (a separate output aliasing it would make LLVM's overlap
    check choose the scalar loop). Serial: ``gibbs_rows`` runs it on each thread's block.
    """
    for k in range(ep.size):
        _sigmoid_draw(ep, k, bits[k], sample)


@njit(error_model="numpy", inline="always")
def _sigmoid_draw(ep, k, bits, sample):
    """One element of the draw: ep[k] = 1 / (1 + ep[k]), sample[k] = 1[u < ep[k]] with
    u = (bits >> 8) / 2^24 from the element's 32 random bits."""
    one = ep.dtype.type(1)
    p = sample.dtype.type(one / (one + ep[k]))     # rounded as the reference's astype
    ep[k] = p
    u = np.float32(np.int32(bits >> np.uint32(8))) * np.float32(1.0 / 16777216.0)  # exact
    sample[k] = one if u < p else ep.dtype.type(0)


# From this many elements the training step's sigmoid-and-draw runs on every thread (one
# parallel region costs ~3 us; a (64, 256) block ~10 us of work)
GIBBS_PARALLEL_MIN = 1 << 13

def exp_loop(dtype):
    """(function, data) of NumPy's own exp loop for float32 or float64 (``ufunc_loops.loop``),
    which ``gibbs_rows`` calls on each thread's block; None where it cannot be found (the
    caller keeps the serial passes)."""
    dtype = np.dtype(dtype)
    if dtype.char not in "fd":
        return None
    from . import ufunc_loops
    return ufunc_loops.loop(np.exp, dtype.char)


# gibbs_rows' draws: none (probabilities only), from given random bits, or from the PCG64
# stream itself (``kernels/pcg64.py``: each thread makes the words of its rows)
NO_DRAW, DRAW_BITS, DRAW_PCG64 = 0, 1, 2
_NO_BITS, _NO_STREAM = np.zeros(0, np.uint32), np.zeros(0, np.uint64)  # unused arguments


def sigmoid_rows(pre, bias):
    """pre = sigma(pre + bias) in place on Numba's threads (``gibbs_rows``, the bits of
    ``rbm.sigmoid_bias_reference``); False, pre untouched, where the kernel does not apply."""
    loop = _exp_loop_for(pre, bias)
    if loop is None:
        return False
    gibbs_rows(*loop, pre, bias, NO_DRAW, _NO_BITS, _NO_STREAM, pre, _parts(pre))
    return True


def bernoulli_rows(pre, bias, rng, random_bits):
    """pre = sigma(pre + bias) in place and a 0/1 draw from it (returned) on Numba's threads:
    ``rbm.bernoulli_reference``'s bits from ``random_bits(rng, shape)``'s uniforms. For
    NumPy's PCG64 the threads make those words themselves (its 62 us on one thread per
    Fashion-MNIST mini-batch were the last serial pass), then the generator is moved on past
    them, as ``random_bits`` moves it. None, pre untouched, where the kernel does not apply."""
    loop = _exp_loop_for(pre, bias)
    if loop is None:
        return None
    sample = np.empty(pre.shape, pre.dtype)
    if type(getattr(rng, "bit_generator", None)) is np.random.PCG64:
        gibbs_rows(*loop, pre, bias, DRAW_PCG64, _NO_BITS, pcg64.stream_of(rng.bit_generator),
                   sample, _parts(pre))
        pcg64.move_on(rng.bit_generator, (pre.size + 1) // 2)   # 32 bits an element
    else:
        gibbs_rows(*loop, pre, bias, DRAW_BITS, random_bits(rng, pre.shape), _NO_STREAM,
                   sample, _parts(pre))
    return sample


def _exp_loop_for(pre, bias):
    """NumPy's exp loop for ``gibbs_rows`` on an (n, m) C-ordered NumPy pre and an (m,) bias
    of its dtype, else None."""
    if not (isinstance(pre, np.ndarray) and pre.ndim == 2 and pre.flags.c_contiguous
            and isinstance(bias, np.ndarray) and bias.dtype == pre.dtype
            and bias.shape == pre.shape[1:] and bias.flags.c_contiguous):
        return None
    return exp_loop(pre.dtype)


def _parts(array):
    """Every Numba thread from GIBBS_PARALLEL_MIN elements, else one."""
    return numba.get_num_threads() if array.size >= GIBBS_PARALLEL_MIN else 1


@njit(parallel=True, nogil=True, cache=True)
def gibbs_rows(exp_loop, exp_data, pre, bias, draw, bits, stream, sample, parts):
    """The sigmoid (and draw) of a training step's product on Numba's threads, one block of
    rows each, with ``exp_loop`` -- NumPy's own SIMD exp loop for the dtype (``exp_loop``),
    passed in as a ctypes function -- so the bits are the NumPy reference's:

        pre = exp(-(pre + bias))  as (-bias) - pre, then NumPy's exp in place
        pre = 1 / (1 + pre)       the probabilities
        sample = 1[u < pre]       u from 32 random bits per element (``draw``): given in
                                  ``bits``, or made here from the PCG64 ``stream``

    Each thread reads and writes only its rows, just made by a product; the serial passes
    before were ~130 us of a 1.3 ms mini-batch (Fashion-MNIST, 2 threads, measured)."""
    n, m = pre.shape
    flat = pre.reshape(-1)
    flat_bits, flat_sample = bits.reshape(-1), sample.reshape(-1)
    for p in prange(parts):
        r0, r1 = n * p // parts, n * (p + 1) // parts
        for i in range(r0, r1):
            for j in range(m):
                pre[i, j] = -bias[j] - pre[i, j]
        k0, k1 = r0 * m, r1 * m
        args = np.empty(2, np.intp)
        args[0] = args[1] = flat[k0:].ctypes.data
        dims = np.full(1, k1 - k0, np.intp)
        steps = np.full(2, flat.itemsize, np.intp)
        exp_loop(args.ctypes, dims.ctypes, steps.ctypes, exp_data)
        if draw == DRAW_BITS:
            sigmoid_bernoulli(flat[k0:k1], flat_bits[k0:k1], flat_sample[k0:k1])
        elif draw == DRAW_PCG64:
            _sigmoid_bernoulli_pcg64(flat[k0:k1], k0, stream, flat_sample[k0:k1])
        else:
            _sigmoid_of_exp(flat[k0:k1])


@njit(error_model="numpy", inline="always")
def _sigmoid_of_exp(ep):
    """ep = 1 / (1 + ep) in place (``sigmoid_bias_reference``'s last two passes)."""
    one = ep.dtype.type(1)
    for k in range(ep.size):
        ep[k] = one / (one + ep[k])


@njit(error_model="numpy", inline="always")
def _sigmoid_bernoulli_pcg64(ep, k0, stream, sample):
    """``sigmoid_bernoulli`` for elements k0, k0 + 1, ... of a draw whose bits come from the
    PCG64 ``stream``: element k takes the low (k even) or high (k odd) 32 bits of word k // 2,
    the bits ``rbm.random_bits`` takes from ``random_raw``."""
    word, hi, lo = pcg64.word_after(stream, k0 // 2)
    for k in range(ep.size):
        if (k0 + k) % 2 == 0:
            if k > 0:
                word, hi, lo = pcg64.next_word(hi, lo, stream)
            bits = np.uint32(word & np.uint64(0xFFFFFFFF))
        else:
            bits = np.uint32(word >> np.uint64(32))
        _sigmoid_draw(ep, k, bits, sample)
