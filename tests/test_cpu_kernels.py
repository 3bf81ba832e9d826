"""The fused Numba kernels of kernels/cpu.py outside convolution (batch norm, ...) against
their plain NumPy references, and the library's wiring of them (gradients, planted bugs).

The conv and pooling kernels are checked in test_conv.py, beside their CUDA twins.
"""
import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigen as mg
from cuda_backends import kernels_mode
import minigen.nn.functional as F
from minigen.kernels import cpu
from minigen.nn.functional import Normalize, _moments

both_dtypes = pytest.mark.parametrize("dtype", [np.dtype(np.float32), np.dtype(np.float64)],
                                      ids=["f32", "f64"])
# (N, C, *spatial) with up to two spatial dims, big enough now and then to use both threads
BN_SHAPES = st.tuples(st.integers(1, 5), st.integers(1, 4),
                      st.lists(st.integers(1, 6), max_size=2)).map(lambda s: s[:2] + tuple(s[2]))
# the kernels sum in float64 and the references in the input's dtype (NumPy, pairwise): the
# two agree to the reference's own rounding -- a few ulp of float32, ~1e-13 in float64
CLOSE = {np.dtype(np.float32): dict(rtol=2e-5, atol=2e-6),
         np.dtype(np.float64): dict(rtol=1e-12, atol=1e-13)}


def batch_norm_data(shape, dtype, seed, affine):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    stat = (1, shape[1]) + (1,) * (len(shape) - 2)
    w, b = (rng.standard_normal(stat).astype(dtype) for _ in range(2)) if affine else (None, None)
    return x, g, w, b, stat


@both_dtypes
@given(shape=BN_SHAPES, affine=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_batch_norm_kernels_equal_their_references(dtype, shape, affine, seed):
    x, g, w, b, stat = batch_norm_data(shape, dtype, seed, affine)
    axes = (0,) + tuple(range(2, len(shape)))
    # statistics: _moments to rounding (float64 sums against the reference's own dtype)
    mean, var = cpu.batch_norm_stats(x)
    assert mean.dtype == var.dtype == dtype and mean.shape == (shape[1],)
    m_ref, v_ref = _moments(x, axes)
    np.testing.assert_allclose(mean, m_ref.reshape(-1), **CLOSE[dtype])
    np.testing.assert_allclose(var, v_ref.reshape(-1), **CLOSE[dtype])
    # normalisation: Normalize.forward given the same statistics, bit for bit
    ref = Normalize()
    y_ref = ref.forward(x, w, b, axes=axes, eps=1e-5, mean=mean.reshape(stat),
                        var=var.reshape(stat))
    xhat, y = cpu.batch_norm_normalize(x, mean, ref.inv_std, w, b)
    np.testing.assert_array_equal(xhat, ref.xhat)
    np.testing.assert_array_equal(y if affine else xhat, y_ref)
    assert (y is None) == (not affine)
    # backward: Normalize.backward's formula (its means in the input's dtype) to rounding
    gx, gw, gb = cpu.batch_norm_backward(g, xhat, ref.inv_std, w)
    gh = g if w is None else g * w
    gx_ref = ref.inv_std * (gh - gh.mean(axis=axes, keepdims=True)
                            - xhat * (gh * xhat).mean(axis=axes, keepdims=True))
    scale = np.abs(gx_ref).max() + 1
    np.testing.assert_allclose(gx / scale, gx_ref / scale, **CLOSE[dtype])
    assert gx.dtype == dtype and gx.shape == shape
    if affine:
        np.testing.assert_allclose(gw, (g * xhat).sum(axis=axes), **CLOSE[dtype])
        np.testing.assert_allclose(gb, g.sum(axis=axes), **CLOSE[dtype])
    else:
        assert gw is None and gb is None


def test_batch_norm_statistics_survive_a_large_mean():
    """Two passes: the variance of 1e4 + N(0, 1) is ~1, where E[x^2] - mean^2 in float32
    would be dominated by rounding."""
    x = (1e4 + np.random.default_rng(0).standard_normal((64, 3, 5, 5))).astype(np.float32)
    _, var = cpu.batch_norm_stats(x)
    np.testing.assert_allclose(var, x.astype(np.float64).var(axis=(0, 2, 3)), rtol=1e-5)


def bn_layer_inputs(seed=0, shape=(4, 3, 2, 2)):
    rng = np.random.default_rng(seed)
    x = mg.tensor(rng.standard_normal(shape) * 2 + 1, requires_grad=True)
    w = mg.tensor(rng.standard_normal(shape[1]) + 1, requires_grad=True)
    b = mg.tensor(rng.standard_normal(shape[1]), requires_grad=True)
    return x, w, b


def train_bn(x, w, b):
    return F.batch_norm(x, None, None, w, b, training=True)


def test_batch_norm_layer_runs_the_kernels_and_passes_gradcheck(monkeypatch):
    calls = []
    for name in ("batch_norm_stats", "batch_norm_normalize", "batch_norm_backward"):
        real = getattr(cpu, name)
        monkeypatch.setattr(cpu, name, lambda *a, _real=real, _name=name, **k:
                            calls.append(_name) or _real(*a, **k))
    inputs = bn_layer_inputs()
    assert mg.gradcheck(train_bn, inputs)
    assert {"batch_norm_stats", "batch_norm_normalize", "batch_norm_backward"} <= set(calls)
    # second derivatives are taken through the array formulas (create_graph), not the kernels
    assert mg.gradgradcheck(train_bn, inputs)


def test_gradcheck_catches_a_planted_bug_in_the_fused_backward(monkeypatch):
    real = cpu.batch_norm_backward

    def off_by_a_little(g, xhat, inv_std, weight=None):
        gx, gw, gb = real(g, xhat, inv_std, weight)
        return gx * 1.01, gw, gb
    monkeypatch.setattr(cpu, "batch_norm_backward", off_by_a_little)
    assert not mg.gradcheck(train_bn, bn_layer_inputs(), raise_exception=False)


def test_batch_norm_kernels_match_the_reference_path(monkeypatch):
    """The whole layer, forward, backward and running statistics: the same numbers (to the
    statistics' rounding) with the kernels as with MINIGEN_KERNELS=reference."""
    def run():
        x, w, b = bn_layer_inputs(1, (6, 4, 3, 3))
        rm, rv = mg.zeros(4, dtype="float64"), mg.ones(4, dtype="float64")
        y = F.batch_norm(x, rm, rv, w, b, training=True)
        y.backward(mg.tensor(np.random.default_rng(2).standard_normal(y.shape)))
        return [a.numpy() for a in (y, x.grad, w.grad, b.grad, rm, rv)]
    monkeypatch.delenv("MINIGEN_KERNELS", raising=False)
    fast = run()
    monkeypatch.setenv("MINIGEN_KERNELS", "reference")
    monkeypatch.setattr(cpu, "_channel_moments", None)  # would fail if still used
    for a, b in zip(fast, run()):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


# ------------------------------------------------------------------ (leaky) ReLU
SPECIAL = st.sampled_from([0.0, -0.0, 1.5, -2.5, np.inf, -np.inf, np.nan])


@both_dtypes
@given(data=st.data(), size=st.integers(0, 40), slope=st.sampled_from([0.0, 0.01, 0.2, -1.0]))
def test_leaky_relu_kernels_equal_the_reference(dtype, data, size, slope):
    from minigen.ops.activation import LeakyReLU, LeakyReLUBackward, ReLU
    x, g = (np.array(data.draw(st.lists(SPECIAL | st.floats(-3, 3), min_size=size,
                                        max_size=size)), dtype=dtype) for _ in range(2))
    y, gx = cpu.leaky_relu(x, slope), cpu.leaky_relu_backward(g, x, slope)
    with kernels_mode("reference"), np.errstate(invalid="ignore"):  # inf * 0 is NaN there too
        y_ref, gx_ref = LeakyReLU().forward(x, slope), LeakyReLUBackward().forward(g, x, slope)
        r_ref = ReLU().forward(x)
    for a, b in ((y, y_ref), (gx, gx_ref), (cpu.relu(x), r_ref)):  # bit for bit: signs of
        # zeros and NaNs included
        assert a.dtype == dtype and a.shape == b.shape
        np.testing.assert_array_equal(a.view(f"u{dtype.itemsize}"), b.view(f"u{dtype.itemsize}"))


def test_relu_gradients_of_gradients_through_the_kernels():
    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal((5, 7)), requires_grad=True)
    for f in (lambda t: (t.relu() * t).sum(dim=1), lambda t: F.leaky_relu(t, 0.2) ** 2):
        assert mg.gradcheck(f, [x]) and mg.gradgradcheck(f, [x])


# ------------------------------------------------------------------ Adam
def train_adam(mode, dtype=np.float32, opt="Adam", **kwargs):
    """Parameters and moments after 4 steps on random gradients, with MINIGEN_KERNELS=mode."""
    rng = np.random.default_rng(0)
    with kernels_mode(mode):
        ps = [mg.tensor(rng.standard_normal(s).astype(dtype), requires_grad=True)
              for s in ((5, 3), (7,), (300, 300))]
        o = getattr(mg.optim, opt)(ps, lr=1e-2, **kwargs)
        for _ in range(4):
            for p in ps:  # a transposed (non-contiguous) gradient too
                p.grad = mg.tensor(rng.standard_normal(p.shape[::-1]).astype(dtype).T)
            o.step()
    return [p.numpy() for p in ps] + [a for st in o.state.values() for a in
                                       (st["exp_avg"], st["exp_avg_sq"])]


@both_dtypes
@pytest.mark.parametrize("opt, kwargs", [("Adam", {}), ("Adam", dict(weight_decay=0.1)),
                                         ("AdamW", {}), ("Adam", dict(betas=(0.0, 0.9)))])
def test_fused_adam_equals_the_array_code_bit_for_bit(dtype, opt, kwargs):
    for a, b in zip(train_adam("fast", dtype, opt, **kwargs), train_adam("reference", dtype, opt,
                                                                         **kwargs)):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, b)


def test_fused_adam_is_used_and_a_planted_error_is_caught(monkeypatch):
    real = cpu.adam_update
    calls = []
    monkeypatch.setattr(cpu, "adam_update", lambda x, *a: calls.append(x.size) or real(x, *a))
    train_adam("fast")
    assert calls[:3] == [15, 7, 90000]
    # a kernel that forgets the first bias correction: the comparison must see it
    monkeypatch.setattr(cpu, "adam_update", lambda *a: real(*a[:7], 1.0, *a[8:]))
    assert not all(np.array_equal(a, b) for a, b in zip(train_adam("fast"),
                                                        train_adam("reference")))


# ------------------------------------------------------------------ a convolution's bias
@both_dtypes
@given(shape=BN_SHAPES, seed=st.integers(0, 2 ** 16))
def test_channel_bias_kernels_equal_their_references(dtype, shape, seed):
    x, g, _, _, stat = batch_norm_data(shape, dtype, seed, affine=False)
    b = np.random.default_rng(seed + 1).standard_normal(shape[1]).astype(dtype)
    np.testing.assert_array_equal(cpu.channel_bias(x, b), x + b.reshape(stat))  # one add
    axes = (0,) + tuple(range(2, len(shape)))
    total = cpu.channel_sum(g)
    assert total.dtype == dtype and total.shape == (shape[1],)
    np.testing.assert_allclose(total, g.sum(axis=axes), **CLOSE[dtype])


def test_conv_bias_gradients_through_the_kernels(monkeypatch):
    """gradcheck and gradgradcheck of conv2d / conv_transpose2d with a bias; a planted error in
    the bias-gradient kernel fails gradcheck."""
    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal((2, 3, 5, 5)), requires_grad=True)
    w = mg.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    b = mg.tensor(rng.standard_normal(4), requires_grad=True)

    def convs(x, w, b):
        h = mg.conv2d(x, w, b, padding=1)
        return mg.conv_transpose2d(h * h, w, b[:3], stride=2)
    assert mg.gradcheck(convs, [x, w, b]) and mg.gradgradcheck(convs, [x, w, b])
    def conv(x, w, b):
        return mg.conv2d(x, w, b, padding=1)
    # conv_transpose2d's bias gradient is channel_sum's, conv2d's swap01_sums'
    real = cpu.channel_sum
    monkeypatch.setattr(cpu, "channel_sum", lambda g: real(g) * 1.01)
    assert not mg.gradcheck(convs, [x, w, b], raise_exception=False)
    assert mg.gradcheck(conv, [x, w, b])
    monkeypatch.setattr(cpu, "channel_sum", real)
    real_swap = cpu.swap01_sums
    monkeypatch.setattr(cpu, "swap01_sums", lambda g: (real_swap(g)[0], real_swap(g)[1] * 1.01))
    assert not mg.gradcheck(conv, [x, w, b], raise_exception=False)


# ------------------------------------------------------------------ sigmoid-BCE
@both_dtypes
@given(data=st.data(), size=st.integers(1, 40), per_element=st.booleans())
def test_bce_with_logits_backward_kernel_equals_the_reference(dtype, data, size, per_element):
    from minigen.nn.functional import BCEWithLogits
    values = st.floats(-30, 30) | st.sampled_from([0.0, -0.0, 1e-8, -1e-8, 80.0, -80.0])
    x = np.array(data.draw(st.lists(values, min_size=size, max_size=size)), dtype=dtype)
    t = np.array(data.draw(st.lists(st.floats(0, 1), min_size=size, max_size=size)), dtype=dtype)
    g = np.random.default_rng(size).standard_normal(size if per_element else 1).astype(dtype)
    ref = BCEWithLogits()
    ref.forward(x, t, reduction="none")
    gx = cpu.bce_with_logits_backward(g, x, t, ref.e)
    s = np.where(x >= 0, 1.0, ref.e) / (1 + ref.e)  # BCEWithLogits.backward's array code
    np.testing.assert_array_equal(gx, g * (s - t))
    assert gx.dtype == dtype


def test_bce_with_logits_gradients_through_the_kernels(monkeypatch):
    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal((4, 5)) * 3, requires_grad=True)
    t = mg.tensor(rng.random((4, 5)), requires_grad=True)
    for reduction in ("mean", "sum", "batchmean", "none"):
        def f(x, t):
            return F.binary_cross_entropy_with_logits(x, t, reduction=reduction)
        assert mg.gradcheck(f, [x, t]) and mg.gradgradcheck(f, [x, t])
    real = cpu.bce_with_logits_backward
    monkeypatch.setattr(cpu, "bce_with_logits_backward", lambda g, x, t, e: real(g, x, t, e * 1.1))
    assert not mg.gradcheck(lambda x, t: F.binary_cross_entropy_with_logits(x, t), [x, t],
                            raise_exception=False)


@both_dtypes
@given(data=st.data(), size=st.integers(1, 300),
       reduction=st.sampled_from(["sum", "mean", "batchmean"]))
def test_bce_with_logits_summed_forward_equals_the_reference(dtype, data, size, reduction):
    """The kernel's log of products against the reference's log1p per element (in float64,
    where the reference's own rounding is far below the float32 bound); sizes cross the
    kernel's 64-element blocks."""
    values = st.floats(-30, 30) | st.sampled_from([0.0, -0.0, 1e-8, 80.0, -80.0])
    x = np.array(data.draw(st.lists(values, min_size=size, max_size=size)), dtype=dtype)
    t = np.array(data.draw(st.lists(st.floats(0, 1), min_size=size, max_size=size)), dtype=dtype)

    def loss(mode, x, t):
        with kernels_mode(mode):
            return F.binary_cross_entropy_with_logits(mg.tensor(x), mg.tensor(t),
                                                      reduction=reduction).data

    fast, ref = loss("fast", x, t), loss("reference", x.astype(np.float64), t.astype(np.float64))
    assert fast.dtype == dtype
    bound = np.sum(np.abs(x) + np.log(2)) / (size if reduction != "sum" else 1)
    assert abs(float(fast) - float(ref)) <= 4 * np.finfo(dtype).eps * bound


def test_bce_with_logits_summed_forward_catches_a_wrong_block():
    """Large enough for both threads, NaN kept; a planted error in one block is seen."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(70001) * 4).astype(np.float32)
    t = rng.random(70001).astype(np.float32)
    e = np.exp(-np.abs(x))
    ref = np.sum(np.maximum(x, 0.0) - x * t.astype(np.float64) + np.log1p(e.astype(np.float64)))
    assert cpu.bce_with_logits_sum(x, t, e) == pytest.approx(ref, rel=1e-6)
    for k in (0, 64 * 500 + 3, 70000):  # the first block, one inside, the short last one
        planted = e.copy()
        planted[k] = 1.0 if planted[k] < 0.5 else 0.0  # log1p of it off by more than 0.2
        assert cpu.bce_with_logits_sum(x, t, planted) != pytest.approx(ref, abs=0.2)
    x[5] = np.nan
    assert np.isnan(cpu.bce_with_logits_sum(x, t, e))


def test_swap01_is_the_transposing_copy():
    """With a bias, the copy plus bias[i] on what comes from a[i] (conv.py's reference: the
    copy, then one add); without, the bare copy (-0.0 stays -0.0)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 5, 7)).astype(np.float32)
    a[0, 0, :3] = [-0.0, np.nan, np.inf]
    b = rng.standard_normal(3).astype(np.float32)
    for view in (a, a[:, ::2], a[::-1]):  # any strides
        out = cpu.swap01(view)
        assert out.flags.c_contiguous
        bits = view.transpose(1, 0, 2).view(np.uint32)
        np.testing.assert_array_equal(out.view(np.uint32), bits)
        expected = np.ascontiguousarray(view.transpose(1, 0, 2))
        expected += b.reshape(1, 3, 1)
        np.testing.assert_array_equal(cpu.swap01(view, b), expected)
        assert not np.array_equal(cpu.swap01(view, b[::-1]), expected)  # a wrong channel's bias
        out, sums = cpu.swap01_sums(view)  # the copy, and the sums over axes 0 and 2
        np.testing.assert_array_equal(out.view(np.uint32), bits)
        assert sums.dtype == np.float32
        np.testing.assert_allclose(sums, view.sum(axis=(0, 2)), rtol=1e-6)


# ------------------------------------------------------------------ serial twins
def _kernel_results(x, g):
    """Every elementwise and per-channel kernel once, on x and g of shape (N, C, L)."""
    m, v = np.zeros_like(x), np.zeros_like(x)
    p = x.copy()
    cpu.adam_update(p, g, m, v, 0.9, 0.999, 1e-8, 0.1, 0.9995, 1e-3)
    e = np.exp(-np.abs(x))
    return [cpu.relu(x), cpu.leaky_relu(x, 0.1), cpu.leaky_relu_backward(g, x, 0.0), p, m, v,
            cpu.bce_with_logits_backward(g, x, np.abs(g) / 4, e), cpu.channel_sum(g),
            np.array(cpu.bce_with_logits_sum(x, np.abs(g) / 4, e)),
            cpu.channel_bias(x, g[0, :, 0]), cpu.swap01(x, g[:, 0, 0]), *cpu.swap01_sums(x),
            *cpu.batch_norm_stats(x),
            *cpu.batch_norm_backward(g, x, np.ones(x.shape[1], x.dtype), g[1, :, 1])]


def test_small_jobs_run_serial_twins_with_the_parallel_kernels_bits(monkeypatch, dtype=np.float32):
    """Below PARALLEL_MIN_ELEMENTS a kernel runs as its serial twin (the same loops compiled
    without ``parallel``); above it, as itself. Both give the same bits, and a twin that
    computes something else is caught. (float32 only: compiling every parallel kernel for
    both dtypes would cost CI seconds, and the twin does not depend on the dtype.)"""
    rng = np.random.default_rng(4)
    x, g = (rng.standard_normal((6, 5, 40)).astype(dtype) for _ in range(2))
    x[0, 0, :4] = [0.0, -0.0, np.nan, -np.inf]

    def same(a, b):
        return all(u.dtype == w.dtype and np.array_equal(u.view(f"u{u.itemsize}"),
                                                         w.view(f"u{w.itemsize}"))
                   for u, w in zip(a, b))

    monkeypatch.setattr(cpu, "PARALLEL_MIN_ELEMENTS", 1 << 62)
    serial = _kernel_results(x, g)
    twin = cpu._SERIAL[cpu._relu_forward]
    assert twin is not cpu._relu_forward and twin.targetoptions["parallel"] is False
    monkeypatch.setattr(cpu, "PARALLEL_MIN_ELEMENTS", 0)
    assert same(serial, _kernel_results(x, g))
    # a planted error: a "twin" that is the leaky ReLU must not pass for the ReLU's
    monkeypatch.setattr(cpu, "PARALLEL_MIN_ELEMENTS", 1 << 62)
    monkeypatch.setitem(cpu._SERIAL, cpu._relu_forward,
                        lambda a, zero: cpu.leaky_relu(a, 0.1).reshape(-1))
    assert not same(serial, _kernel_results(x, g))


def _parallel_callees(namespace):
    """{kernel: the parallel kernels its body calls by name} for the Numba kernels of a module
    namespace (only those that call any)."""
    from numba.core.registry import CPUDispatcher
    kernels = {n: f for n, f in namespace.items() if isinstance(f, CPUDispatcher)}
    parallel = {n for n, f in kernels.items() if f.targetoptions.get("parallel")}
    calls = {n: sorted(parallel & set(f.py_func.__code__.co_names)) for n, f in kernels.items()}
    return {n: c for n, c in calls.items() if c}


def test_no_kernel_calls_a_parallel_kernel():
    """A serial twin runs its callees as they were compiled: a call to a parallel kernel would
    wake Numba's threads on every 'serial' call (batch norm's moments once did, through
    _channel_sum). Kernels share plain functions instead; a planted offender is caught."""
    namespace = vars(cpu)
    assert _parallel_callees(namespace) == {}

    def offender(g):
        return _channel_sum(g)  # noqa: F821  (the name is what the check reads)

    planted = dict(namespace, _offender=numba.njit(parallel=True)(offender))
    assert _parallel_callees(planted) == {"_offender": ["_channel_sum"]}
