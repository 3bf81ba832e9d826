"""conv2d, conv_transpose2d, max_pool2d, avg_pool2d: PyTorch parity, gradients of gradients,
Numba and CUDA kernels (emulated, and on a GPU) against the NumPy references, and clear errors.

Shapes, strides, paddings, dilations and output paddings are drawn by hypothesis, small
enough that a full float64 Jacobian stays cheap.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigen as mg
from cuda_backends import (BACKENDS, LAUNCHES, ORDERS, device, exercises, host, kernels_of, on,
                           running)
from minigen.kernels import cpu, cuda
from minigen.ops import conv as C
from minigen.testing import (TOL, conv_cases, conv_transpose_cases, distinct_values,
                             lay_out, pool_cases)

PARITY = dict(rtol=1e-10, atol=1e-12)  # float64: only summation order differs from torch


def normal(shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ------------------------------------------------------------------ PyTorch parity
def import_torch():
    return pytest.importorskip("torch", reason="torch not installed: PyTorch parity not checked")


def run_both(torch, mg_fn, torch_fn, arrays, seed=1):
    """Forward and backward from one random output gradient in both libraries; returns
    [(minigen, torch)] for the output and every input's gradient."""
    ours = [mg.tensor(a, dtype=a.dtype, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, yt = mg_fn(*ours), torch_fn(*theirs)
    assert y.shape == tuple(yt.shape)
    g = normal(y.shape, seed)
    y.backward(mg.tensor(g, dtype=y.dtype))
    yt.backward(torch.tensor(g))
    return [(y.numpy(), yt.detach().numpy())] + [(a.grad.numpy(), b.grad.numpy())
                                                   for a, b in zip(ours, theirs)]


def assert_pairs_close(pairs_):
    for k, (ours, theirs) in enumerate(pairs_):
        np.testing.assert_allclose(ours, theirs, **PARITY, err_msg=f"item {k} (0 = output)")


@given(case=conv_cases(), bias=st.booleans())
def test_conv2d_matches_torch(case, bias):
    torch = import_torch()
    n, c, o, size, kernel, stride, padding, dilation = case
    arrays = [normal((n, c, *size), 2), normal((o, c, *kernel), 3)] + \
        ([normal(o, 4)] if bias else [])
    kw = dict(stride=stride, padding=padding, dilation=dilation)
    assert_pairs_close(run_both(
        torch, lambda *t: mg.conv2d(*t, **kw),
        lambda *t: torch.nn.functional.conv2d(*t, **kw), arrays))


@given(case=conv_transpose_cases(), bias=st.booleans())
def test_conv_transpose2d_matches_torch(case, bias):
    torch = import_torch()
    n, o, c, size, kernel, stride, padding, out_pad, dilation = case
    arrays = [normal((n, o, *size), 2), normal((o, c, *kernel), 3)] + \
        ([normal(c, 4)] if bias else [])
    kw = dict(stride=stride, padding=padding, output_padding=out_pad, dilation=dilation)
    assert_pairs_close(run_both(
        torch, lambda *t: mg.conv_transpose2d(*t, **kw),
        lambda *t: torch.nn.functional.conv_transpose2d(*t, **kw), arrays))


@pytest.mark.parametrize("name", ["max_pool2d", "avg_pool2d"])
@given(case=pool_cases(), data=st.data())
def test_pools_match_torch(name, case, data):
    torch = import_torch()
    shape, kernel, stride, padding = case
    x = data.draw(distinct_values(shape), label="x")  # no ties: one argmax per window
    kw = dict(kernel_size=kernel, stride=stride, padding=padding)
    assert_pairs_close(run_both(
        torch, lambda t: getattr(mg, name)(t, **kw),
        lambda t: getattr(torch.nn.functional, name)(t, **kw), [x]))


@pytest.mark.parametrize("name", ["conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d"])
def test_unbatched_input_matches_torch(name):
    """A (C, H, W) input is a batch of one, as in torch."""
    torch = import_torch()
    x = normal((2, 5, 6))
    args = {"conv2d": (normal((3, 2, 2, 3)),), "conv_transpose2d": (normal((2, 3, 2, 3)),),
            "max_pool2d": (2,), "avg_pool2d": (2,)}[name]
    ours = getattr(mg, name)(mg.Tensor(x), *[mg.Tensor(a) if isinstance(a, np.ndarray) else a
                                             for a in args])
    theirs = getattr(torch.nn.functional, name)(
        torch.tensor(x), *[torch.tensor(a) if isinstance(a, np.ndarray) else a for a in args])
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), **PARITY)


def test_dcgan_shapes_match_torch_in_float32():
    """The benchmark's shapes (kernel 4, stride 2, padding 1), float32, as training runs."""
    torch = import_torch()
    x, w = normal((4, 8, 14, 14), dtype=np.float32), normal((16, 8, 4, 4), 1, np.float32)
    kw = dict(stride=2, padding=1)
    pairs_ = run_both(torch, lambda a, b: mg.conv2d(a, b, **kw),
                      lambda a, b: torch.nn.functional.conv2d(a, b, **kw), [x, w])
    pairs_ += run_both(torch, lambda a, b: mg.conv_transpose2d(a, b, **kw),
                       lambda a, b: torch.nn.functional.conv_transpose2d(a, b, **kw),
                       [normal((4, 16, 7, 7), 2, np.float32), w])
    for ours, theirs in pairs_:
        assert ours.dtype == np.float32
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------ finite differences
def leaves(*arrays, layout="contiguous"):
    return [mg.Tensor(lay_out(a, layout), requires_grad=True) for a in arrays]


@settings(max_examples=6)  # a full second-order Jacobian per example
@given(case=conv_cases(max_batch=1, max_channels=2, max_extra=2),
       layout=st.sampled_from(["contiguous", "transposed", "strided"]))
def test_conv2d_gradcheck_and_gradgradcheck(case, layout):
    n, c, o, size, kernel, stride, padding, dilation = case
    ts = leaves(normal((n, c, *size)), normal((o, c, *kernel), 1), normal(o, 2), layout=layout)
    f = lambda x, w, b: mg.conv2d(x, w, b, stride, padding, dilation)  # noqa: E731
    assert mg.gradcheck(f, ts, **TOL)
    assert mg.gradgradcheck(f, ts, **TOL)  # second derivatives in input AND weight


@settings(max_examples=6)
@given(case=conv_transpose_cases(max_batch=1, max_channels=2, max_size=3),
       layout=st.sampled_from(["contiguous", "transposed", "strided"]))
def test_conv_transpose2d_gradcheck_and_gradgradcheck(case, layout):
    n, o, c, size, kernel, stride, padding, out_pad, dilation = case
    ts = leaves(normal((n, o, *size)), normal((o, c, *kernel), 1), normal(c, 2), layout=layout)
    f = lambda y, w, b: mg.conv_transpose2d(y, w, b, stride, padding, out_pad,  # noqa: E731
                                            dilation)
    assert mg.gradcheck(f, ts, **TOL)
    assert mg.gradgradcheck(f, ts, **TOL)


@settings(max_examples=8)
@given(case=pool_cases(), data=st.data())
def test_pools_gradcheck_and_gradgradcheck(case, data):
    shape, kernel, stride, padding = case
    x = data.draw(distinct_values(shape), label="x")  # gaps >> eps: argmax never flips
    for pool in (mg.max_pool2d, mg.avg_pool2d):
        f = lambda t: pool(t, kernel, stride, padding)  # noqa: E731
        assert mg.gradcheck(f, leaves(x), **TOL)
        assert mg.gradgradcheck(f, leaves(x), **TOL)


def test_weight_gradient_op_is_differentiable():
    """Conv2dWeight (the weight gradient as an op) checked on its own, both arguments."""
    geom = C.Geometry((2, 3), (2, 1), (1, 1), (1, 2), (5, 4), (3, 2))
    ts = leaves(normal((2, 2, 5, 4)), normal((2, 3, 3, 2), 1))
    f = lambda x, g: C.Conv2dWeight.apply(x, g, geom=geom)  # noqa: E731
    assert mg.gradcheck(f, ts, **TOL)
    assert mg.gradgradcheck(f, ts, **TOL)


@given(case=conv_transpose_cases(max_batch=4))
def test_conv_transpose_in_blocks_of_samples_equals_one_block(case):
    """_conv_transpose makes its columns a block of samples at a time (BLOCK_BYTES): with one
    sample per block the result and gradients are those of one block for the whole batch."""
    n, o, c, size, kernel, stride, padding, out_pad, dilation = case
    arrays = [normal((n, o, *size), 2), normal((o, c, *kernel), 3)]
    kw = dict(stride=stride, padding=padding, output_padding=out_pad, dilation=dilation)

    def run(block_bytes):
        calls = []
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(C, "BLOCK_BYTES", block_bytes)
            mp.setattr(C, "col2im", lambda cols, geom, out=None: calls.append(1) or
                       col2im(cols, geom, out))
            y, w = leaves(*arrays)
            x = mg.conv_transpose2d(y, w, **kw)
            x.backward(mg.tensor(normal(x.shape, 4)))
        return [x.numpy(), y.grad.numpy(), w.grad.numpy()], len(calls)

    col2im = C.col2im
    (whole, one_call), (blocked, calls) = run(1 << 40), run(1)
    assert one_call == 1 and calls == n  # the forward's col2im, once per block
    for a, b in zip(blocked, whole):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)


def test_max_pool_gradient_goes_to_the_argmax_and_overlaps_add():
    """Overlapping windows (stride < kernel) that share a winner add their gradients."""
    x = mg.tensor(np.array([[[[0.0, 5.0, 1.0, 2.0]]]]), requires_grad=True)
    y = mg.max_pool2d(x, (1, 2), stride=1)          # windows [0,5] [5,1] [1,2]
    np.testing.assert_array_equal(y.numpy().ravel(), [5.0, 5.0, 2.0])
    y.backward(mg.tensor(np.array([[[[1.0, 10.0, 100.0]]]])))
    np.testing.assert_array_equal(x.grad.numpy().ravel(), [0.0, 11.0, 0.0, 100.0])


# ------------------------------------------------------------------ kernels == references
both_dtypes = pytest.mark.parametrize("dtype", [np.dtype(np.float32), np.dtype(np.float64)],
                                     ids=["f32", "f64"])


def _geometry(case):
    n, c, o, size, kernel, stride, padding, dilation = case
    out = tuple(C.conv_output_size(*a) for a in zip(size, kernel, stride, padding, dilation))
    return C.Geometry(kernel, stride, padding, dilation, size, out), (n, c)


# Each kernel test runs three times: the Numba kernels (cpu.py), the CUDA kernels of conv.cu
# under host emulation (`pytest -k emulat`), and the CUDA kernels on a GPU (marked gpu). The
# CUDA runs draw the launch shape (grid far smaller or far larger than the work) and, under
# emulation, the order in which threads run.
KERNELS = [pytest.param("numba")] + BACKENDS


@exercises("conv.cu", "im2col", "col2im")
@pytest.mark.parametrize("kind", KERNELS)
@both_dtypes
@given(case=conv_cases(max_batch=3, max_channels=4), launch=LAUNCHES, order=ORDERS)
def test_im2col_and_col2im_kernels_equal_reference(kind, dtype, case, launch, order):
    with kernels_of(kind, launch, order) as k:
        check_im2col_col2im(k, kind, dtype, case)


def check_im2col_col2im(k, kind, dtype, case):
    geom, (n, c) = _geometry(case)
    x = normal((n, c, *geom.image), dtype=dtype)[..., ::-1]  # a view: the wrapper copies it
    args = (geom.kernel, geom.stride, geom.padding, geom.dilation)
    cols = host(k.im2col(on(kind, x), *args, geom.out))
    assert cols.dtype == dtype
    np.testing.assert_array_equal(cols, C.im2col_reference(x, *args, geom.out))
    # col2im sums overlapping windows: bit-equal because both add in the same order
    cols = normal(cols.shape, 1, dtype)
    back = host(k.col2im(on(kind, cols), geom.image, *args))
    assert back.dtype == dtype
    np.testing.assert_array_equal(back, C.col2im_reference(cols, geom.image, *args))


@given(case=conv_cases(max_batch=3, max_channels=4))
def test_im2col_and_col2im_on_every_thread_equal_reference(case):
    """The Numba kernels themselves, not through kernels.cpu's wrappers (which run small jobs on
    one thread): each thread of the pool takes some rows (im2col) or channels (col2im)."""
    geom, (n, c) = _geometry(case)
    x = normal((n, c, *geom.image), dtype=np.float32)
    flat = [v for pair in (geom.kernel, geom.stride, geom.padding, geom.dilation) for v in pair]
    args = (geom.kernel, geom.stride, geom.padding, geom.dilation)
    cols = np.full((c, *geom.kernel, n, geom.out[0] * geom.out[1]), np.nan, np.float32)
    cpu._im2col(x, cols, *flat[2:], *geom.out)  # every entry written, none read
    cols = cols.reshape(c, *geom.kernel, n, *geom.out)
    np.testing.assert_array_equal(cols, C.im2col_reference(x, *args, geom.out))
    cols = normal(cols.shape, 1, np.float32)
    image = np.full((n, c, *geom.image), np.nan, np.float32)  # overwritten, never read
    np.testing.assert_array_equal(cpu._col2im(cols, image, *flat[2:]),
                                  C.col2im_reference(cols, geom.image, *args))


@given(case=conv_cases(max_batch=2, max_channels=2))
def test_col2im_is_the_adjoint_of_im2col(case):
    """<im2col(x), c> == <x, col2im(c)>: the identity every conv gradient relies on."""
    geom, (n, c) = _geometry(case)
    args = (geom.kernel, geom.stride, geom.padding, geom.dilation)
    x = normal((n, c, *geom.image))
    cols = normal((c, *geom.kernel, n, *geom.out), 1)
    lhs = np.vdot(cpu.im2col(x, *args, geom.out), cols)
    rhs = np.vdot(x, cpu.col2im(cols, geom.image, *args))
    assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-12)


# pooling data with ties, -inf and NaN: the kernel must pick exactly the reference's winner
POOL_VALUES = st.sampled_from([0.0, 1.0, 2.0, -1.0, -np.inf, np.nan])


@exercises("conv.cu", "max_pool_forward", "max_pool_backward")
@pytest.mark.parametrize("kind", KERNELS)
@both_dtypes
@given(case=pool_cases(), data=st.data(), launch=LAUNCHES, order=ORDERS)
def test_max_pool_kernels_equal_reference(kind, dtype, case, data, launch, order):
    with kernels_of(kind, launch, order) as k:
        check_max_pool(k, kind, dtype, case, data)


def check_max_pool(k, kind, dtype, case, data):
    shape, kernel, stride, padding = case
    stride = kernel if stride is None else stride
    out = tuple(C.conv_output_size(n, k, s, p) for n, k, s, p in
                zip(shape[2:], kernel, stride, padding))
    plain = data.draw(st.booleans(), label="plain values")
    x = normal(shape, dtype=dtype) if plain else np.array(
        data.draw(st.lists(POOL_VALUES, min_size=int(np.prod(shape)),
                           max_size=int(np.prod(shape))), label="values"),
        dtype=dtype).reshape(shape)
    args = (kernel, stride, padding, out)
    y, arg = host(*k.max_pool2d_forward(on(kind, x), *args))
    y_ref, arg_ref = C.max_pool2d_forward_reference(x, *args)
    np.testing.assert_array_equal(arg, arg_ref)
    assert np.array_equal(y, y_ref, equal_nan=True) and y.dtype == dtype
    assert ((arg >= 0) & (arg < shape[2] * shape[3])).all()  # never a padding pixel
    g = normal(y.shape, 1, dtype)
    gx = host(k.max_pool2d_backward(*on(kind, g, arg), shape[2:], kernel, stride, padding))
    np.testing.assert_array_equal(
        gx, C.max_pool2d_backward_reference(g, arg, shape[2:], kernel, stride, padding))


def test_all_minus_inf_window_picks_its_first_real_pixel():
    x = np.full((1, 1, 2, 2), -np.inf)
    for pool in (cpu.max_pool2d_forward, C.max_pool2d_forward_reference):
        _, arg = pool(x, (2, 2), (1, 1), (1, 1), (3, 3))
        np.testing.assert_array_equal(arg[0, 0], [[0, 0, 1], [0, 0, 1], [2, 2, 3]])


def test_kernel_selection_follows_minigen_kernels(monkeypatch):
    """Numba by default; MINIGEN_KERNELS=reference gives the same numbers without it."""
    monkeypatch.delenv("MINIGEN_KERNELS", raising=False)
    assert C.hot_loops(np.zeros(1)) is cpu
    x = mg.tensor(normal((2, 3, 6, 5)), dtype="float64", requires_grad=True)
    w = mg.tensor(normal((4, 3, 3, 2), 1), dtype="float64", requires_grad=True)

    def everything():
        x.grad = w.grad = None
        y = mg.max_pool2d(mg.conv_transpose2d(mg.conv2d(x, w, padding=1), w, stride=2), 2)
        y.backward(mg.tensor(normal(y.shape, 2), dtype="float64"))
        return [y.numpy(), x.grad.numpy(), w.grad.numpy()]

    fast = everything()
    monkeypatch.setenv("MINIGEN_KERNELS", "reference")
    assert C.hot_loops(np.zeros(1)) is None
    monkeypatch.setattr(cpu, "_im2col", None)  # would fail if the kernels were still used
    for a, b in zip(fast, everything()):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ errors
def t(*shape):
    return mg.zeros(*shape)


@pytest.mark.parametrize("call, match", [
    (lambda: mg.conv2d(t(3, 5, 5), t(2, 3, 3, 3)), None),  # unbatched is fine
    (lambda: mg.conv2d(t(5, 5), t(2, 3, 3, 3)), r"conv2d: expected a 4-D input .*\(5, 5\)"),
    (lambda: mg.conv2d(t(1, 4, 5, 5), t(2, 3, 3, 3)),
     r"conv2d: input of shape \(1, 4, 5, 5\) has 4 channels, but weight of shape "
     r"\(2, 3, 3, 3\)"),
    (lambda: mg.conv_transpose2d(t(1, 3, 5, 5), t(2, 3, 3, 3)),
     r"conv_transpose2d: input of shape \(1, 3, 5, 5\) has 3 channels, but weight of shape "
     r"\(2, 3, 3, 3\) \(O, C, kH, kW\) = \(in, out, kH, kW\) expects 2"),
    (lambda: mg.conv2d(t(1, 3, 2, 5), t(2, 3, 3, 3)),
     r"conv2d: kernel \(3, 3\) .* bigger than the padded input \(2, 5\)"),
    (lambda: mg.conv2d(t(1, 3, 4, 4), t(2, 3, 3, 3), dilation=2),
     r"conv2d: kernel \(3, 3\) \(dilated to \(5, 5\)\) is bigger"),
    (lambda: mg.conv2d(t(1, 3, 4, 4), t(2, 3, 3)), r"conv2d: weight must be 4-D"),
    (lambda: mg.conv2d(t(1, 3, 4, 4), t(2, 3, 1, 1), t(3)), r"conv2d: bias must .* \(2,\)"),
    (lambda: mg.conv2d(t(1, 3, 4, 4), t(2, 3, 1, 1), stride=0), r"conv2d: stride must be >= 1"),
    (lambda: mg.conv2d(t(1, 3, 4, 4), t(2, 3, 1, 1), padding=(1, 2, 3)),
     r"conv2d: padding must be an int or a pair"),
    (lambda: mg.conv_transpose2d(t(1, 2, 3, 3), t(2, 3, 3, 3), stride=2, output_padding=2),
     r"conv_transpose2d: output_padding \(2, 2\) must be smaller than either stride \(2, 2\) "
     r"or dilation \(1, 1\)"),
    (lambda: mg.conv_transpose2d(t(1, 2, 1, 1), t(2, 3, 1, 1), padding=1),
     r"conv_transpose2d: .* gives an empty output"),
    (lambda: mg.max_pool2d(t(1, 1, 4, 4), 2, padding=2),
     r"max_pool2d: padding \(2, 2\) must be at most half of kernel_size \(2, 2\)"),
    (lambda: mg.avg_pool2d(t(1, 1, 2, 2), 3), r"avg_pool2d: kernel \(3, 3\) .* bigger"),
    (lambda: mg.max_pool2d(t(4, 4), 2), r"max_pool2d: expected a 4-D input"),
])
def test_errors_name_the_op_and_shapes(call, match):
    if match is None:
        assert call().shape == (2, 3, 3)
        return
    with pytest.raises(ValueError, match=match):
        call()


def test_dtype_mismatch_is_a_clear_error():
    with pytest.raises(TypeError, match="conv2d: input is float32 but weight is float64"):
        mg.conv2d(t(1, 1, 3, 3), mg.zeros(1, 1, 2, 2, dtype="float64"))
    with pytest.raises(TypeError, match="max_pool2d: needs float32 or float64 tensors, got int64"):
        mg.max_pool2d(mg.tensor(np.zeros((1, 1, 2, 2), dtype=np.int64)), 2)


# ------------------------------------------------------------------ the CUDA path of the ops
@pytest.mark.parametrize("backend", BACKENDS)
def test_conv_ops_on_the_cuda_path_equal_cpu(backend):
    """Forward and all gradients through the CUDA kernels match the CPU path (float64):
    bit for bit under emulation (the same BLAS does the GEMMs), to rounding on a GPU -- but
    for the bias gradient, a sum taken in another order on each path (the CPU's Numba
    kernel adds in float64 vector lanes, the array code pairwise): equal to rounding."""
    arrays = [normal((2, 3, 9, 8)), normal((4, 3, 3, 2), 1), normal(4, 2)]

    def everything(device):
        ts = [mg.tensor(a, dtype=a.dtype, device=device, requires_grad=True) for a in arrays]
        x, w, b = ts
        h = mg.conv2d(x, w, b, stride=2, padding=1, dilation=(1, 2))
        y = mg.avg_pool2d(mg.max_pool2d(mg.conv_transpose2d(h, w, stride=2), 2, 1, 1), 2)
        y.backward(mg.ones_like(y))
        return [y.numpy()] + [t_.grad.numpy() for t_ in ts]

    with running(backend):
        assert C.hot_loops(on(backend, np.zeros(1))) is cuda
        fast = everything(device(backend))
    tol = 0 if backend == "emulated" else 1e-12
    for k, (a, b) in enumerate(zip(fast, everything("cpu"))):
        bias_tol = 1e-14 if k == 3 else tol  # (y, x.grad, w.grad, b.grad)
        np.testing.assert_allclose(a, b, rtol=max(tol, bias_tol), atol=max(tol, bias_tol))


@given(n=st.integers(1, 3), c=st.integers(1, 3), kh=st.integers(1, 4), kw=st.integers(1, 4))
def test_one_window_geometry_is_a_transpose_equal_to_the_reference(n, c, kh, kw):
    """kernel = image, no padding: im2col is a view and col2im a transposing copy, with the
    references' numbers; a geometry that only looks alike (padding) takes the kernels."""
    geom = C.Geometry((kh, kw), (1, 1), (0, 0), (1, 1), (kh, kw), (1, 1))
    assert C._one_window(geom) and not C._one_window(geom._replace(padding=(1, 0)))
    x = normal((n, c, kh, kw))
    cols = C.im2col(x, geom)
    assert np.shares_memory(cols, x)
    args = (geom.kernel, geom.stride, geom.padding, geom.dilation)
    np.testing.assert_array_equal(cols, C.im2col_reference(x, *args, geom.out))
    cols = normal(cols.shape, 1)
    np.testing.assert_array_equal(C.col2im(cols, geom),
                                  C.col2im_reference(cols, geom.image, *args))
