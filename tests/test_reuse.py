"""kernels/reuse.py: a large temporary is handed out again only once nobody holds it -- not
while a Function keeps it, nor while a view of it lives -- so two convolutions of one shape in
one graph get their own columns; and the check catches a pool that hands out a held array."""
import numpy as np
import pytest

import minigen as mg
from minigen.kernels import cpu, reuse
from minigen.ops import conv as C

SHAPE = (8, 4, 4, 64, 49)  # im2col's columns of 8 channels, 4x4 taps, 64 images of 7x7: 1.6 MB


@pytest.fixture(autouse=True)
def empty_pool():
    reuse.clear()
    yield
    reuse.clear()


def test_a_free_array_is_handed_out_again_and_a_held_one_is_not():
    a = reuse.take(SHAPE, np.float32)
    b = reuse.take(SHAPE, np.float32)
    assert b is not a  # `a` is held here
    a_id, view = id(a), a[1:]
    del a
    c = reuse.take(SHAPE, np.float32)
    assert id(c) != a_id  # a view of it still lives (and b, c are held)
    del view
    assert id(reuse.take(SHAPE, np.float32)) == a_id  # nobody holds it now: handed out again
    assert reuse.take((4, 4), np.float32).shape == (4, 4)  # small: made, not kept
    assert len(reuse._kept) == 3 and all(k.nbytes >= reuse.MIN_BYTES for k in reuse._kept)


def test_two_convolutions_of_one_shape_in_one_graph_keep_their_own_columns():
    rng = np.random.default_rng(0)
    x1, x2 = (rng.standard_normal((64, 8, 14, 14), dtype=np.float32) for _ in range(2))
    cols1 = cpu.im2col(x1, (4, 4), (2, 2), (1, 1), (1, 1), (7, 7))
    cols2 = cpu.im2col(x2, (4, 4), (2, 2), (1, 1), (1, 1), (7, 7))
    reference = C.im2col_reference(x1, (4, 4), (2, 2), (1, 1), (1, 1), (7, 7))
    np.testing.assert_array_equal(cols1, reference)  # not overwritten by the second
    w = mg.tensor(rng.standard_normal((5, 8, 4, 4), dtype=np.float32), requires_grad=True)
    loss = (mg.conv2d(mg.tensor(x1), w, stride=2, padding=1).sum()
            + mg.conv2d(mg.tensor(x2), w, stride=2, padding=1).sum())
    loss.backward()
    expected = sum(np.einsum("ckln,o->ockl", C.im2col_reference(x, (4, 4), (2, 2), (1, 1), (1, 1),
                                                                (7, 7)).reshape(8, 4, 4, -1),
                             np.ones(5, np.float32)) for x in (x1, x2))
    np.testing.assert_allclose(w.grad.numpy(), expected, rtol=1e-4, atol=1e-3)


def test_the_check_catches_a_pool_that_hands_out_a_held_array(monkeypatch):
    def careless(shape, dtype):  # the refcount test left out
        for a in reuse._kept:
            if a.shape == shape and a.dtype == dtype:
                return a
        reuse._kept.append(np.empty(shape, dtype))
        return reuse._kept[-1]
    monkeypatch.setattr(reuse, "take", careless)
    with pytest.raises(AssertionError):
        test_two_convolutions_of_one_shape_in_one_graph_keep_their_own_columns()
