"""The Tensor itself: creation, conversion, comparisons, indexing, dtype rules, errors, repr."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigen as mg
from minigen.testing import shapes
from strategies import basic_index


# ------------------------------------------------------------------ creation
def test_tensor_from_data_and_default_dtype():
    assert mg.tensor([1.0, 2.0]).dtype == np.float32           # floats: float32 by default
    assert mg.tensor(np.array([1.0, 2.0])).dtype == np.float64  # arrays keep theirs (torch)
    assert mg.tensor(np.array([1.0], np.float32)).dtype == np.float32
    assert mg.tensor(np.float64(2.0)).dtype == np.float64
    assert mg.tensor([1, 2]).dtype == np.int64                 # integers stay integers
    assert mg.tensor([True, False]).dtype == np.bool_
    assert mg.tensor([1.0], dtype="float64").dtype == np.float64
    assert mg.tensor([1, 2], dtype="float64").dtype == np.float64
    assert mg.tensor(2.5).shape == () and mg.tensor(2.5).item() == 2.5
    t = mg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    assert t.requires_grad and t.is_leaf and t.grad is None
    assert t.shape == (2, 2) and t.ndim == 2 and t.numel() == 4 and len(t) == 2
    assert t.size() == (2, 2) and t.size(0) == 2 and t.size(-1) == 2 and t.dim() == 2
    assert t.device == "cpu"


def test_tensor_copies_its_input():
    """As torch.tensor: changing the source array later does not change the tensor."""
    a = np.ones(3)
    t = mg.tensor(a, dtype="float64")
    a[0] = 5
    np.testing.assert_array_equal(t.numpy(), [1, 1, 1])
    t2 = mg.tensor(t)
    t2.data[1] = 7
    assert t.numpy()[1] == 1


@pytest.mark.parametrize("make", ["zeros", "ones", "randn", "rand"])
def test_shape_forms_and_dtypes(make):
    f = getattr(mg, make)
    for t in (f(2, 3), f((2, 3)), f([2, 3])):
        assert t.shape == (2, 3) and t.dtype == np.float32 and not t.requires_grad
    assert f(4, dtype="float64").dtype == np.float64
    assert f(2, requires_grad=True).requires_grad
    assert f().shape == ()
    like = getattr(mg, make + "_like")(mg.zeros(3, 1, dtype="float64"))
    assert like.shape == (3, 1) and like.dtype == np.float64
    assert getattr(mg, make + "_like")(mg.zeros(2), dtype="float64").dtype == np.float64


def test_values_of_creation_functions():
    np.testing.assert_array_equal(mg.zeros(2, 2).numpy(), np.zeros((2, 2)))
    np.testing.assert_array_equal(mg.ones(3).numpy(), np.ones(3))
    full = mg.full((2, 3), 1.5)
    assert full.dtype == np.float32 and (full.numpy() == 1.5).all()
    assert mg.full(4, 2.0).shape == (4,)
    np.testing.assert_array_equal(mg.full_like(mg.zeros(2, dtype="float64"), 7).numpy(), [7, 7])
    assert mg.full_like(mg.zeros(2, dtype="float64"), 7).dtype == np.float64
    r = mg.rand(1000)
    assert 0 <= r.numpy().min() and r.numpy().max() < 1 and abs(r.numpy().mean() - 0.5) < 0.05
    n = mg.randn(4000, dtype="float64").numpy()
    assert abs(n.mean()) < 0.1 and abs(n.std() - 1) < 0.1


def test_arange():
    a = mg.arange(5)
    assert a.dtype == np.int64 and a.numpy().tolist() == [0, 1, 2, 3, 4]
    assert mg.arange(2, 8, 3).numpy().tolist() == [2, 5]
    f = mg.arange(0, 1, 0.25)
    assert f.dtype == np.float32 and f.numpy().tolist() == [0, 0.25, 0.5, 0.75]
    assert mg.arange(3, dtype="float64").dtype == np.float64


def test_seed_makes_random_tensors_repeatable():
    mg.manual_seed(11)
    a, b = mg.randn(3), mg.rand(3)
    mg.manual_seed(11)
    np.testing.assert_array_equal(a.numpy(), mg.randn(3).numpy())
    np.testing.assert_array_equal(b.numpy(), mg.rand(3).numpy())
    assert not np.array_equal(a.numpy(), mg.randn(3).numpy())


# ------------------------------------------------------------------ conversion
def test_numpy_item_detach():
    t = mg.tensor([[1.0, 2.0]], dtype="float64", requires_grad=True)
    assert isinstance(t.numpy(), np.ndarray) and t.numpy().dtype == np.float64
    assert mg.tensor([[3.5]]).item() == 3.5 and isinstance(mg.tensor([[3.5]]).item(), float)
    assert isinstance(mg.tensor([4]).item(), int)
    d = (t * 2).detach()
    assert not d.requires_grad and d.is_leaf and d._ctx is None
    np.testing.assert_array_equal(d.numpy(), [[2, 4]])
    assert np.asarray(t).shape == (1, 2)
    assert float(mg.tensor(2.0)) == 2.0 and int(mg.tensor(3)) == 3
    assert t.T.shape == (2, 1)
    assert t.tolist() == [[1.0, 2.0]]


def test_to_changes_dtype_differentiably():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = x.double()
    assert y.dtype == np.float64 and y.requires_grad
    (y * 3).sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.numpy().tolist() == [3, 3]
    assert x.to(dtype="float32") is x and x.float() is x


# ------------------------------------------------------------------ comparisons
@pytest.mark.parametrize("op", ["<", "<=", ">", ">=", "==", "!="])
def test_comparisons_are_boolean_and_not_differentiable(op):
    a = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = mg.tensor([2.0, 2.0, 2.0])
    got = eval(f"a {op} b")
    assert got.dtype == np.bool_ and not got.requires_grad and got.is_leaf
    np.testing.assert_array_equal(got.numpy(), eval(f"a.numpy() {op} b.numpy()"))
    np.testing.assert_array_equal(eval(f"a {op} 2").numpy(), eval(f"a.numpy() {op} 2"))
    np.testing.assert_array_equal(eval(f"2 {op} a").numpy(), eval(f"2 {op} a.numpy()"))


def test_tensors_hash_by_identity():
    a, b = mg.zeros(2), mg.zeros(2)
    assert len({a, b, a}) == 2
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(a == b)
    assert bool(mg.tensor([1.0]) == 1)


# ------------------------------------------------------------------ indexing
@given(shape=shapes(min_dims=1), data=st.data())
def test_basic_indexing_matches_numpy(shape, data):
    a = np.arange(float(np.prod(shape))).reshape(shape)
    index = data.draw(basic_index(shape))
    np.testing.assert_array_equal(mg.tensor(a, dtype="float64")[index].numpy(), a[index])


@given(shape=shapes(min_dims=1), data=st.data())
def test_advanced_indexing_matches_numpy(shape, data):
    a = np.arange(float(np.prod(shape))).reshape(shape)
    t = mg.tensor(a, dtype="float64")
    rows = data.draw(st.lists(st.integers(-shape[0], shape[0] - 1), min_size=1, max_size=5))
    np.testing.assert_array_equal(t[rows].numpy(), a[rows])                       # a list
    np.testing.assert_array_equal(t[mg.tensor(rows)].numpy(), a[rows])            # an int tensor
    mask = data.draw(hnp.arrays(np.bool_, shape))
    np.testing.assert_array_equal(t[mg.tensor(mask)].numpy(), a[mask])            # a bool tensor
    np.testing.assert_array_equal(t[t > a.mean()].numpy(), a[a > a.mean()])


def test_indexing_forms():
    t = mg.tensor(np.arange(24.0).reshape(2, 3, 4), dtype="float64")
    a = t.numpy()
    for index in [1, -1, (1, 2), (0, slice(None), 3), (Ellipsis, 1), (None, 0),
                  (slice(None, None, -1),), (slice(0, 2), [0, 2]), ([0, 1], [1, 2], [3, 0]), ()]:
        np.testing.assert_array_equal(t[index].numpy(), a[index], err_msg=str(index))
    assert t[1, 2, 3].item() == 23.0 and t[1, 2, 3].shape == ()


# ------------------------------------------------------------------ dtype rules
def test_float32_stays_float32():
    """NumPy scalars must not promote float32 to float64 (they are not 'weak' in NumPy 2)."""
    x = mg.randn(3)
    f64 = np.float64
    for y in (x * f64(2), f64(2) * x, x + f64(1), x / f64(3), x ** f64(2), x.abs() ** 2.5,
              f64(2) ** x, x.clamp(f64(-0.5), f64(0.5)), x.leaky_relu(f64(0.1)),
              x.elu(alpha=f64(1.0)), mg.maximum(x, f64(0)), mg.where(x > 0, x, f64(0)),
              mg.pad(x, (1, 1), value=f64(2)), x.mean(), x.var(), x.sigmoid(),
              x.abs() ** np.array([1.0, 2.0, 3.0])):
        assert y.dtype == np.float32, y


def test_integer_tensor_meets_floats():
    i = mg.arange(3)
    assert (i * 0.5).dtype == np.float32                      # Python float: default dtype
    assert (i * 2).dtype == np.int64
    assert (i + mg.ones(3, dtype="float64")).dtype == np.float64  # takes the float tensor's dtype
    assert mg.where(np.array([True, False]), 1.0, 0.0).dtype == np.float32
    np.testing.assert_array_equal(mg.where(np.array([True, False]), 1.0, 0.0).numpy(), [1, 0])


# ------------------------------------------------------------------ errors
def test_backward_on_non_scalar_without_grad():
    y = mg.randn(2, 3, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match=r"shape \(2, 3\) is not a scalar"):
        y.backward()
    with pytest.raises(ValueError, match=r"grad of shape \(3,\) for a tensor of shape \(2, 3\)"):
        y.backward(mg.ones(3))
    with pytest.raises(RuntimeError, match="does not require grad"):
        mg.ones(2).sum().backward()


@given(st.lists(st.integers(1, 3), max_size=4), st.lists(st.integers(1, 3), max_size=4))
def test_broadcast_check_is_numpys_rule(shape_a, shape_b):
    """The binary ops' own broadcast check (quicker than NumPy's) agrees with NumPy's."""
    from minigen.ops.elementwise import _broadcastable
    try:
        np.broadcast_shapes(tuple(shape_a), tuple(shape_b))
        numpy_says = True
    except ValueError:
        numpy_says = False
    assert _broadcastable(tuple(shape_a), tuple(shape_b)) == numpy_says


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "pow", "maximum", "minimum"])
def test_binary_errors_name_the_op_and_shapes(op):
    f = getattr(mg, op)
    with pytest.raises(ValueError, match=rf"{op}: shapes \(2, 3\) and \(4,\) cannot be broadcast"):
        f(mg.ones(2, 3), mg.ones(4))
    with pytest.raises(TypeError, match=rf"{op}: dtypes differ \(float32 and float64\)"):
        f(mg.ones(2), mg.ones(2, dtype="float64"))


def test_shape_errors_name_the_op():
    x = mg.zeros(2, 3)
    cases = [
        (lambda: x.reshape(4), ValueError,
         r"reshape: cannot view shape \(2, 3\) \(6 elements\) as \(4,\)"),
        (lambda: x @ mg.zeros(4, 5), ValueError, r"matmul: shapes \(2, 3\) and \(4, 5\)"),
        (lambda: mg.cat([x, mg.zeros(3, 2)]), ValueError, r"cat: shapes \(2, 3\), \(3, 2\)"),
        (lambda: mg.cat([x, mg.zeros(2, 3, dtype="float64")]), TypeError,
         "cat: .*float32.*float64"),
        (lambda: mg.stack([x, mg.zeros(3, 2)]), ValueError,
         "stack: all tensors must have one shape"),
        (lambda: x.broadcast_to((3, 3)), ValueError,
         r"broadcast_to: cannot broadcast shape \(2, 3\)"),
        (lambda: x.permute(0, 0), ValueError, "permute: .* not a permutation"),
        (lambda: x.sum(dim=2), IndexError, "sum: dim 2 is out of range"),
        (lambda: x.max(dim=-3), IndexError, "max: dim -3 is out of range"),
        (lambda: x.softmax(dim=3), IndexError, "softmax: dim 3 is out of range"),
        (lambda: x.mean(dim=(0, -2)), ValueError, "mean: dim .* twice"),
        (lambda: x[5], IndexError, r"getitem: index 5 on a tensor of shape \(2, 3\)"),
        (lambda: mg.split(x, [1, 1], dim=1), ValueError, "split: sizes .* but dim 1 has 3"),
        (lambda: mg.split(x, 0), ValueError, "split: split_size must be positive"),
        (lambda: x.chunk(0), ValueError, "chunk: chunks must be positive"),
        (lambda: mg.where(np.ones((2, 3), bool), x, mg.zeros(4)), ValueError, r"where: shapes"),
        (lambda: x.item(), ValueError, r"item\(\): tensor of shape \(2, 3\) has 6 elements"),
        (lambda: mg.clamp(x), ValueError, "clamp: give at least one"),
    ]
    for f, kind, pattern in cases:
        with pytest.raises(kind, match=pattern):
            f()


def test_only_floats_require_grad():
    with pytest.raises(TypeError, match="floating-point"):
        mg.arange(3, requires_grad=True)


# ------------------------------------------------------------------ repr
@pytest.mark.parametrize("t", [
    mg.tensor(1.5), mg.zeros(0), mg.tensor([True, False]), mg.arange(4),
    mg.randn(2, 3, dtype="float64", requires_grad=True), mg.randn(100, 100), mg.ones(1, 1, 1),
    mg.tensor([np.nan, np.inf, -np.inf]),
], ids=lambda t: f"{t.dtype}{t.shape}")
def test_repr_does_not_crash(t):
    text = repr(t)
    assert text.startswith("tensor(") and str(t.dtype) in text
    assert ("requires_grad=True" in text) == t.requires_grad
    assert len(text) < 2000  # big tensors are summarised
