"""NumPy's PCG64 stream, made where the words are used: each of Numba's threads in the RBM's
Gibbs kernel (``classical.gibbs_rows``) jumps to the words of its own rows and makes them,
the very words ``bit_generator.random_raw`` would give, and ``move_on`` then leaves the
generator where ``random_raw`` leaves it.

PCG64 (O'Neill 2014; NumPy's default bit generator) is a 128-bit linear congruential
generator with a permuted output:

    state <- state * MULT + inc   (mod 2^128)
    word   = rotr64(hi(state) xor lo(state), hi(state) >> 58)      ("XSL-RR")

An LCG can jump ahead: k steps are one step of the LCG with multiplier MULT^k and increment
inc (MULT^(k-1) + ... + 1), both found in log2(k) squarings (Brown 1994, "Random number
generation with arbitrary strides"; ``pcg_advance_lcg_128`` in NumPy's pcg64.c). So thread p
jumps to word n p / parts and makes its stretch from there. An RBM's training step draws 32
bits per unit, 33,280 words per Fashion-MNIST mini-batch: 62 us on the calling thread, while
the other one waited (measured).

Numba has no 128-bit integers; ``_mul_add`` writes the one 128-bit operation the generator
needs, a * b + c, in LLVM's own i128 arithmetic, on (high, low) pairs of uint64.
"""
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

MULT = 0x2360ED051FC65DA44385DF649FCCF645   # PCG's default 128-bit multiplier (NumPy's)
_MASK64 = (1 << 64) - 1


@intrinsic
def _mul_add(typingctx, a_hi, a_lo, b_hi, b_lo, c_hi, c_lo):
    """(a * b + c) mod 2^128 on (high, low) uint64 halves, as a (high, low) pair."""
    u64 = types.uint64
    signature = types.UniTuple(u64, 2)(u64, u64, u64, u64, u64, u64)

    def codegen(context, builder, sig, args):
        i128, i64 = ir.IntType(128), ir.IntType(64)
        shift = ir.Constant(i128, 64)

        def joined(hi, lo):
            return builder.or_(builder.shl(builder.zext(hi, i128), shift), builder.zext(lo, i128))

        a, b, c = (joined(args[k], args[k + 1]) for k in (0, 2, 4))
        r = builder.add(builder.mul(a, b), c)
        hi, lo = builder.trunc(builder.lshr(r, shift), i64), builder.trunc(r, i64)
        return context.make_tuple(builder, sig.return_type, (hi, lo))
    return signature, codegen


_M_HI, _M_LO = np.uint64(MULT >> 64), np.uint64(MULT & _MASK64)
_ZERO, _ONE = np.uint64(0), np.uint64(1)


@njit(inline="always")
def _output(hi, lo):
    """XSL-RR: the high and low halves xor-ed, rotated right by the top 6 bits."""
    x = hi ^ lo
    r = hi >> np.uint64(58)
    return (x >> r) | (x << ((np.uint64(64) - r) & np.uint64(63)))


@njit(cache=True)
def _jump(s_hi, s_lo, i_hi, i_lo, k):
    """The state k steps on: one step of the LCG with multiplier MULT^k and increment
    inc (MULT^(k-1) + ... + 1), built by squaring (NumPy's pcg_advance_lcg_128)."""
    m_hi, m_lo = _M_HI, _M_LO        # MULT^(2^j)
    c_hi, c_lo = i_hi, i_lo          # its increment
    am_hi, am_lo = _ZERO, _ONE       # the multiplier and increment of the steps so far
    ac_hi, ac_lo = _ZERO, _ZERO
    k = np.uint64(k)
    while k > _ZERO:
        if k & _ONE:
            am_hi, am_lo = _mul_add(am_hi, am_lo, m_hi, m_lo, _ZERO, _ZERO)
            ac_hi, ac_lo = _mul_add(ac_hi, ac_lo, m_hi, m_lo, c_hi, c_lo)
        # (m + 1) c: the increment of twice as many steps
        p_hi, p_lo = _mul_add(m_hi, m_lo, _ZERO, _ONE, _ZERO, _ONE)
        c_hi, c_lo = _mul_add(p_hi, p_lo, c_hi, c_lo, _ZERO, _ZERO)
        m_hi, m_lo = _mul_add(m_hi, m_lo, m_hi, m_lo, _ZERO, _ZERO)
        k >>= _ONE
    return _mul_add(am_hi, am_lo, s_hi, s_lo, ac_hi, ac_lo)


@njit(inline="always")
def word_after(stream, k):
    """(word, state) of the k-th word (from 0) after ``stream`` = [state hi, state lo,
    inc hi, inc lo]: a jump of k steps, then one."""
    hi, lo = _jump(stream[0], stream[1], stream[2], stream[3], k)
    hi, lo = _mul_add(hi, lo, _M_HI, _M_LO, stream[2], stream[3])
    return _output(hi, lo), hi, lo


@njit(inline="always")
def next_word(hi, lo, stream):
    """(word, state) one step on from the state (hi, lo)."""
    hi, lo = _mul_add(hi, lo, _M_HI, _M_LO, stream[2], stream[3])
    return _output(hi, lo), hi, lo


def stream_of(bit_generator):
    """[state hi, state lo, inc hi, inc lo] (uint64) of a ``numpy.random.PCG64``: where the
    kernels start the stream."""
    inner = bit_generator.state["state"]
    s, inc = inner["state"], inner["inc"]
    return np.array([s >> 64, s & _MASK64, inc >> 64, inc & _MASK64], np.uint64)


def move_on(bit_generator, k):
    """Advance the generator by k words, as ``random_raw(k)`` would. (Not ``PCG64.advance``:
    that also drops the half word ``random(dtype=float32)`` may have kept for later, which
    ``random_raw`` leaves alone.)"""
    state = bit_generator.state
    s, inc = state["state"]["state"], state["state"]["inc"]
    hi, lo = _jump(np.uint64(s >> 64), np.uint64(s & _MASK64), np.uint64(inc >> 64),
                   np.uint64(inc & _MASK64), k)
    state["state"]["state"] = (int(hi) << 64) | int(lo)
    bit_generator.state = state


def random_raw(bit_generator, n):
    """``bit_generator.random_raw(n)`` (a ``numpy.random.PCG64``) made from the state by the
    kernels' own steps, on the calling thread, and the generator moved on by n: the words the
    Gibbs kernel draws from, laid out for a test against NumPy's."""
    out = _words(stream_of(bit_generator), n)
    move_on(bit_generator, n)
    return out


@njit(cache=True)
def _words(stream, n):
    """The first n words after ``stream``'s state."""
    out = np.empty(n, np.uint64)
    hi, lo = stream[0], stream[1]
    for k in range(n):
        out[k], hi, lo = next_word(hi, lo, stream)
    return out
