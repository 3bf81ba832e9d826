"""Checkpoints: exact round trips, atomic writes, and clear errors for bad files."""
import os
import pickle
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigen as mg
from minigen import nn, optim, serialization
from minigen.serialization import CheckpointError


def _same(a, b):
    """Structural equality that also compares array dtypes and container types."""
    assert type(a) is type(b) or isinstance(a, np.generic) and isinstance(b, np.generic), \
        (type(a), type(b))
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif isinstance(a, (np.ndarray, np.generic)):
        assert a.dtype == b.dtype and np.shape(a) == np.shape(b)
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b)
    else:
        assert a == b


# ------------------------------------------------------------------ round trips
_arrays = hnp.arrays(
    dtype=st.sampled_from([np.float32, np.float64, np.int64, np.uint8, np.bool_, np.float16]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3))
_leaves = st.one_of(
    st.none(), st.booleans(), st.integers(-2 ** 130, 2 ** 130),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8), _arrays)
_keys = st.one_of(st.text(min_size=0, max_size=6), st.integers(-5, 5))
_trees = st.recursive(_leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.lists(inner, max_size=3).map(tuple),
    st.dictionaries(_keys, inner, max_size=3)), max_leaves=12)


@settings(max_examples=15)
@given(tree=_trees)
def test_any_supported_structure_round_trips(tree, tmp_path_factory):
    path = tmp_path_factory.mktemp("rt") / "tree.npz"
    mg.save(tree, path)
    _same(tree, mg.load(path))


def test_special_values_round_trip(tmp_path):
    rng_state = np.random.default_rng(12345).bit_generator.state   # 128-bit Python ints
    obj = {"rng": rng_state, 0: "int key", "0": "str key", "scalar": np.float32(1.5),
           "tensor": mg.tensor([1.0, 2.0]), "nested": [(1, 2.5), {"x": np.arange(3)}],
           "empty": np.zeros((0, 3)), "text": np.array(["a", "bc"]), "none": None}
    mg.save(obj, tmp_path / "c")               # the path is used as given: no ".npz" added
    assert os.listdir(tmp_path) == ["c"]
    back = mg.load(tmp_path / "c")
    assert back["rng"] == rng_state and back[0] == "int key" and back["0"] == "str key"
    assert isinstance(back["scalar"], np.float32) and back["scalar"] == 1.5
    assert isinstance(back["tensor"], mg.Tensor) and back["tensor"].tolist() == [1.0, 2.0]
    assert back["nested"] == [(1, 2.5), {"x": back["nested"][1]["x"]}]
    np.testing.assert_array_equal(back["nested"][1]["x"], np.arange(3))
    assert back["empty"].shape == (0, 3) and list(back["text"]) == ["a", "bc"]
    with np.load(tmp_path / "c", allow_pickle=False) as plain:   # an ordinary npz
        assert "tensor" in plain.files and "__minigen__" in plain.files


def test_training_resumes_exactly_from_a_checkpoint(tmp_path):
    """model + optimizer + RNG state saved mid-run: resuming gives the uninterrupted result."""

    def make():
        mg.manual_seed(0)
        model = nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.2),
                              nn.Linear(8, 1))
        return model, optim.Adam(model.parameters(), lr=1e-2)

    def train(model, opt, steps):
        for _ in range(steps):
            x = mg.randn(16, 3)
            opt.zero_grad()
            loss = ((model(x) - x.sum(dim=1, keepdim=True)) ** 2).mean()
            loss.backward()
            opt.step()

    model, opt = make()
    train(model, opt, 6)
    expected = model.state_dict()

    model, opt = make()
    train(model, opt, 3)
    mg.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3,
             "rng": mg.get_rng_state()}, tmp_path / "ckpt.npz")
    model, opt = make()                        # a new process, in effect
    mg.manual_seed(999)
    state = mg.load(tmp_path / "ckpt.npz")
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    mg.set_rng_state(state["rng"])
    assert state["epoch"] == 3
    train(model, opt, 3)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, expected[k], err_msg=k)


def test_compressed_checkpoint(tmp_path):
    obj = {"w": np.zeros((100, 100), np.float32)}
    mg.save(obj, tmp_path / "a.npz")
    mg.save(obj, tmp_path / "b.npz", compress=True)
    assert os.path.getsize(tmp_path / "b.npz") < os.path.getsize(tmp_path / "a.npz") / 10
    _same(obj, mg.load(tmp_path / "b.npz"))


# ------------------------------------------------------------------ atomic writes
def test_a_crash_while_writing_leaves_the_old_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    mg.save({"epoch": 1, "w": np.ones(3)}, path)

    def crash(file, arrays, compress):
        file.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(serialization, "_write_npz", crash)
    with pytest.raises(KeyboardInterrupt):
        mg.save({"epoch": 2, "w": np.zeros(3)}, path)
    assert os.listdir(tmp_path) == ["ckpt.npz"]          # no temporary file left behind
    assert mg.load(path)["epoch"] == 1


def test_unsupported_values_are_refused_before_writing(tmp_path):
    path = tmp_path / "x.npz"
    with pytest.raises(TypeError, match=r"model/layer is a object"):
        mg.save({"model": {"layer": object()}}, path)
    with pytest.raises(TypeError, match="object array"):
        mg.save({"a": np.array([{}, 1], dtype=object)}, path)
    with pytest.raises(TypeError, match="keys must be str or int"):
        mg.save({(1, 2): 3}, path)
    assert not path.exists() and os.listdir(tmp_path) == []
    with pytest.raises(FileNotFoundError, match="folder .*no_such_dir.* does not exist"):
        mg.save({"a": 1}, tmp_path / "no_such_dir" / "x.npz")


# ------------------------------------------------------------------ bad files
@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.npz"
    mg.save({"model": nn.Linear(20, 30).state_dict(), "epoch": 7}, path)
    return path


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.999])
def test_truncated_checkpoint_gives_a_clear_error(good, keep):
    data = good.read_bytes()
    good.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(CheckpointError) as err:
        mg.load(good)
    msg = str(err.value)
    assert str(good) in msg and "truncated" in msg and "expected a minigen checkpoint" in msg


def test_corrupt_bytes_inside_an_array_give_a_clear_error(good):
    data = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as zf:      # where model/weight's bytes are stored
        info = zf.getinfo("model/weight.npy")
    # 30-byte local header + name + extra field, then the .npy header (128 bytes), then data
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 200
    data[start] ^= 0xFF
    good.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"good.npz.*is corrupt.*CRC"):
        mg.load(good)


def _written_by(fn, *args, **kwargs):
    """A writer for a file at an exact path (numpy adds ".npy"/".npz" to bare names)."""
    def make(path):
        with open(path, "wb") as f:
            fn(f, *args, **kwargs)
    return make


@pytest.mark.parametrize("make, found", [
    (_written_by(np.savez, weight=np.ones(3)), "npz without minigen metadata.*weight"),
    (_written_by(np.save, np.ones(3)), "single .npy array"),
    (lambda p: p.write_text("epoch: 3\n"), "text starting 'epoch: 3"),
    (lambda p: p.write_bytes(b""), "an empty file"),
    (lambda p: p.write_bytes(pickle.dumps({"a": 1})), "pickle"),
])
def test_foreign_files_give_a_clear_error(tmp_path, make, found):
    path = tmp_path / "other.bin"
    make(path)
    with pytest.raises(CheckpointError, match=found) as err:
        mg.load(path)
    assert str(path) in str(err.value)


def test_pickled_arrays_are_never_loaded(tmp_path):
    """A file that claims to be a checkpoint but holds an object array: refused, not run."""
    path = tmp_path / "evil.npz"
    meta = serialization.json.dumps({"format": "minigen-checkpoint", "version": 1,
                                     "tree": {"array": "a"}})
    with open(path, "wb") as f:
        np.savez(f, a=np.array([{"x": 1}], dtype=object),
                 __minigen__=np.frombuffer(meta.encode(), np.uint8))
    with pytest.raises(CheckpointError, match="allow_pickle=False"):
        mg.load(path)


def test_missing_file_and_newer_format(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at .*nothing.npz"):
        mg.load(tmp_path / "nothing.npz")
    with pytest.raises(IsADirectoryError):
        mg.load(tmp_path)
    path = tmp_path / "future.npz"
    meta = serialization.json.dumps({"format": "minigen-checkpoint", "version": 99, "tree": {}})
    with open(path, "wb") as f:
        np.savez(f, __minigen__=np.frombuffer(meta.encode(), np.uint8))
    with pytest.raises(CheckpointError, match="version 99"):
        mg.load(path)
