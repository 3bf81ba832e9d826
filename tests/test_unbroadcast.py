"""``unbroadcast``: the one place a gradient is summed back to its input's shape (DESIGN 4).

Broadcasting copies every entry of ``x`` to many places; its adjoint therefore *adds*
the gradient from all those places. Checked three ways: against an independent NumPy
oracle (``np.add.at`` through the broadcast index map), by the adjoint identity
<broadcast_to(x), g> = <x, unbroadcast(g)>, and through the binary ops whose backward
calls it.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigen as mg
from minigen.ops.shape import unbroadcast
from minigen.testing import (TOL, as_inputs, broadcast_pairs, broadcast_shape_pair,
                             interleaved_pair, lay_out, values)


def oracle_unbroadcast(g, shape):
    """Sum g back to ``shape`` by following each broadcast entry to the entry it copies."""
    source = np.broadcast_to(np.arange(int(np.prod(shape))).reshape(shape), g.shape)
    out = np.zeros(int(np.prod(shape)))
    np.add.at(out, source.ravel(), g.ravel())
    return out.reshape(shape)


def _f64(a):
    return mg.tensor(a, dtype="float64")


def assert_sum_close(got, terms, shape, magnitude=None):
    """got == oracle_unbroadcast(terms, shape) up to rounding: summing n terms in another
    order changes the result by at most ~n eps sum|terms| (``magnitude``: |terms| when the
    terms are themselves sums)."""
    want = oracle_unbroadcast(terms, shape)
    magnitude = np.abs(terms) if magnitude is None else magnitude
    fin = np.finfo(np.float64)
    bound = 32 * (fin.eps * oracle_unbroadcast(magnitude, shape) + fin.tiny)  # tiny: underflow
    assert got.shape == shape
    assert (np.abs(got.numpy() - want) <= bound).all(), (got.numpy(), want)


@given(shapes_=broadcast_shape_pair(), data=st.data())
def test_unbroadcast_matches_numpy_oracle(shapes_, data):
    target, big = shapes_
    g = data.draw(values(big))
    assert_sum_close(unbroadcast(_f64(g), target), g, target)


@given(shapes_=broadcast_shape_pair(), data=st.data())
def test_adjoint_identity(shapes_, data):
    """<broadcast_to(x), g> == <x, unbroadcast(g)>: unbroadcast is broadcast's transpose."""
    target, big = shapes_
    x, g = data.draw(values(target)), data.draw(values(big))
    lhs = float((mg.broadcast_to(_f64(x), big).numpy() * g).sum())
    rhs = float((x * unbroadcast(_f64(g), target).numpy()).sum())
    assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-12)


@given(shapes_=broadcast_shape_pair(), data=st.data())
def test_unbroadcast_is_differentiable(shapes_, data):
    target, big = shapes_
    g = data.draw(values(big))
    (gt,) = as_inputs([lay_out(g, data.draw(st.sampled_from(["contiguous", "strided"])))])
    assert mg.gradcheck(lambda t: unbroadcast(t, target), [gt], **TOL)
    assert mg.gradgradcheck(lambda t: unbroadcast(t, target), [gt], **TOL)


def test_unbroadcast_same_shape_is_identity_and_scalar_sums_all():
    g = _f64(np.arange(6.0).reshape(2, 3))
    assert unbroadcast(g, (2, 3)) is g
    assert unbroadcast(g, ()).item() == 15.0
    np.testing.assert_array_equal(unbroadcast(g, (1, 3)).numpy(), [[3, 5, 7]])
    np.testing.assert_array_equal(unbroadcast(g, (2, 1)).numpy(), [[3], [12]])
    np.testing.assert_array_equal(unbroadcast(_f64(np.ones((4, 2, 3))), (3,)).numpy(), [8, 8, 8])


# ------------------------------------------------------------------ binary ops on broadcast pairs
BINARY = {
    "add": (lambda a, b: a + b, lambda a, b, g: (g, g)),
    "sub": (lambda a, b: a - b, lambda a, b, g: (g, -g)),
    "mul": (lambda a, b: a * b, lambda a, b, g: (g * b, g * a)),
    "div": (lambda a, b: a / b, lambda a, b, g: (g / b, -g * a / b ** 2)),
    "maximum": (mg.maximum, lambda a, b, g: (g * (a > b), g * (b > a))),
}


@pytest.mark.parametrize("op", sorted(BINARY))
@given(pair=broadcast_pairs(), data=st.data())
def test_binary_op_gradients_on_broadcast_pairs(op, pair, data):
    """Each input's gradient is the elementwise partial, summed over the axes it was
    broadcast along (oracle in NumPy); the tie-free, zero-free values keep it exact."""
    f, partials = BINARY[op]
    sa, sb = pair
    a, b = data.draw(interleaved_pair(sa, sb))  # never tied, |b| >= 0.05
    ta, tb = as_inputs([a, b])
    out = f(ta, tb)
    g = data.draw(hnp.arrays(np.float64, out.shape, elements=st.floats(-2, 2)))
    out.backward(_f64(g))
    A, B = np.broadcast_to(a, out.shape), np.broadcast_to(b, out.shape)
    ga, gb = partials(A, B, g)
    assert_sum_close(ta.grad, ga, sa)
    assert_sum_close(tb.grad, gb, sb)


@given(pair=broadcast_pairs(), data=st.data())
def test_where_gradients_on_broadcast_pairs(pair, data):
    sa, sb = pair
    out_shape = np.broadcast_shapes(sa, sb)
    cond = data.draw(hnp.arrays(np.bool_, out_shape))
    ta, tb = as_inputs([data.draw(values(sa)), data.draw(values(sb))])
    mg.where(cond, ta, tb).sum().backward()
    np.testing.assert_array_equal(ta.grad.numpy(), oracle_unbroadcast(cond * 1.0, sa))
    np.testing.assert_array_equal(tb.grad.numpy(), oracle_unbroadcast(~cond * 1.0, sb))


@given(batch=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=1, max_dims=2, max_side=3),
       data=st.data())
def test_matmul_batch_broadcast_gradients(batch, data):
    """dA = G B^T and dB = A^T G, each summed over the batch dims it was broadcast along."""
    ba, bb = batch.input_shapes
    n, k, m = 2, 3, 2
    a, b = data.draw(values(ba + (n, k))), data.draw(values(bb + (k, m)))
    ta, tb = as_inputs([a, b])
    out = ta @ tb
    g = data.draw(hnp.arrays(np.float64, out.shape, elements=st.floats(-2, 2)))
    out.backward(_f64(g))
    A, B = np.broadcast_to(a, out.shape[:-2] + (n, k)), np.broadcast_to(b, out.shape[:-2] + (k, m))
    T = lambda M: np.swapaxes(M, -1, -2)  # noqa: E731
    assert_sum_close(ta.grad, g @ T(B), a.shape, magnitude=np.abs(g) @ T(np.abs(B)))
    assert_sum_close(tb.grad, T(A) @ g, b.shape, magnitude=T(np.abs(A)) @ np.abs(g))
