"""minigen.data: the IDX reader, dataset lookup and download, toy sets, DataLoader.

No test needs the real data: every IDX file here is a tiny one the test writes itself,
and downloads come from a file:// "mirror" in a temporary folder (or a fake opener).
"""
import dataclasses
import gzip
import hashlib
import os
import sys
import urllib.error

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigen as mg
from minigen.data import datasets
from minigen.data import (ChecksumError, DataLoader, DataNotFoundError, FashionMNIST, IDXError,
                          MNIST, TensorDataset, load_dataset, load_fashion_mnist, read_idx,
                          write_idx)
from minigen.data import toy

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


# ------------------------------------------------------------------ IDX format
@given(st.sampled_from(["u1", "i1", ">i2", "<i4", "f4", "f8"]),
       st.lists(st.integers(0, 4), min_size=1, max_size=4), st.booleans())
def test_idx_round_trip(tmp_path_factory, dtype, shape, gz):
    rng = np.random.default_rng(len(shape))
    array = (rng.standard_normal(shape) * 100).astype(dtype)
    path = tmp_path_factory.mktemp("idx") / ("a.idx.gz" if gz else "a.idx")
    write_idx(path, array)
    back = read_idx(path)
    assert back.shape == array.shape
    assert back.dtype == array.dtype.newbyteorder("=")  # native byte order in memory
    np.testing.assert_array_equal(back, array)
    assert back.flags.writeable


def test_idx_bytes_are_the_documented_layout(tmp_path):
    path = write_idx(tmp_path / "a", np.array([[1, 2, 3], [4, 5, 6]], np.int16))
    raw = open(path, "rb").read()
    # 0 0 | dtype 0x0B (short) | ndim 2 | 2, 3 as big-endian int32 | big-endian shorts
    assert raw == bytes([0, 0, 0x0B, 2, 0, 0, 0, 2, 0, 0, 0, 3,
                         0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6])


def test_gzip_is_detected_by_magic_bytes_not_name(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "gz_without_suffix", array, compress=True)
    write_idx(tmp_path / "raw_with_suffix.gz", array, compress=False)
    assert open(tmp_path / "gz_without_suffix", "rb").read(2) == b"\x1f\x8b"
    np.testing.assert_array_equal(read_idx(tmp_path / "gz_without_suffix"), array)
    np.testing.assert_array_equal(read_idx(tmp_path / "raw_with_suffix.gz"), array)


def test_write_idx_is_deterministic(tmp_path):
    a = np.arange(10, dtype=np.uint8)
    write_idx(tmp_path / "1.gz", a)
    write_idx(tmp_path / "2.gz", a)
    assert open(tmp_path / "1.gz", "rb").read() == open(tmp_path / "2.gz", "rb").read()


def _images_bytes(n=3):
    """A valid raw IDX file of n 28x28 ubyte images."""
    header = bytes([0, 0, 0x08, 3]) + np.array([n, 28, 28], ">u4").tobytes()
    return header + (np.arange(n * 784) % 256).astype(np.uint8).tobytes()


def _write(path, data, gz=False):
    with open(path, "wb") as f:
        f.write(gzip.compress(data, mtime=0) if gz else data)
    return str(path)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("damage, message", [
    (lambda b: b"\x08\x03" + b[2:], "magic number starts with bytes 0x08 0x03, expected 0x00 0x00"),
    (lambda b: b[:2] + b"\x0a" + b[3:], "unknown IDX dtype code 0x0A, expected one of 0x08"),
    (lambda b: b[:-52], "truncated: header says 3x28x28 = 2352 bytes of data, file holds 2300"),
    (lambda b: b + b"\x00" * 7, "trailing bytes: header says 3x28x28 = 2352 bytes of data, "
                                "file holds 2359"),
    # dimensions that do not match the payload: the header claims 4 images, 3 are there
    (lambda b: b[:4] + np.array([4, 28, 28], ">u4").tobytes() + b[16:],
     "truncated: header says 4x28x28 = 3136 bytes of data, file holds 2352"),
    (lambda b: b[:2] + b"\x08\x00" + b[4:], "header says 0 dimensions, expected at least 1"),
    (lambda b: b[:10], "truncated header: 3 dimensions need 16 header bytes, file holds 10"),
    (lambda b: b[:3], "3 bytes, shorter than the 4-byte magic number"),
])
def test_corrupt_idx_gives_a_clear_error(tmp_path, gz, damage, message):
    path = _write(tmp_path / ("images.gz" if gz else "images"), damage(_images_bytes()), gz)
    with pytest.raises(IDXError) as info:
        read_idx(path)
    assert message in str(info.value)
    assert str(info.value).startswith(path + ": ")  # the error names the file


def test_truncated_gzip_stream_gives_a_clear_error(tmp_path):
    path = _write(tmp_path / "images.gz", _images_bytes(), gz=True)
    whole = open(path, "rb").read()
    _write(path, whole[:len(whole) // 2])  # a download cut in half
    with pytest.raises(IDXError, match=r"images.gz: corrupt gzip data .*fetch it again"):
        read_idx(path)


def test_write_idx_refuses_dtypes_idx_cannot_hold(tmp_path):
    with pytest.raises(IDXError, match="dtype uint16 has no IDX code"):
        write_idx(tmp_path / "a", np.zeros(3, np.uint16))
    with pytest.raises(IDXError, match="1 to 255 dimensions"):
        write_idx(tmp_path / "a", np.float32(1.0))


# ------------------------------------------------------------------ datasets
def write_split_files(folder, n_train=5, n_test=3, offset=0, gz=True, classes=10):
    """The four IDX files of a tiny MNIST-format dataset; returns the arrays written."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(offset)
    arrays = {}
    for stem, n in zip(FILES, (n_train, n_train, n_test, n_test)):
        if "images" in stem:
            a = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
            a[:, 0, 0] = offset  # marks which folder the file came from
        else:
            a = rng.integers(0, classes, n, dtype=np.uint8)
        arrays[stem] = a
        write_idx(os.path.join(folder, stem + (".gz" if gz else "")), a)
    return arrays


@pytest.fixture
def places(tmp_path, monkeypatch):
    """Empty $MINIGEN_DATA, system folder, cache and mirror, all inside tmp_path."""
    dirs = {k: tmp_path / k for k in ("env", "system", "cache", "mirror")}
    for d in dirs.values():
        d.mkdir()
    monkeypatch.setenv("MINIGEN_DATA", str(dirs["env"]))
    monkeypatch.setenv("MINIGEN_CACHE", str(dirs["cache"]))
    for name in ("fashion-mnist", "mnist"):  # keep the machine's real folders out of it
        source = dataclasses.replace(datasets.SOURCES[name], system_dirs=(str(dirs["system"]),),
                                     mirrors=("file://" + str(dirs["mirror"]) + "/",))
        monkeypatch.setitem(datasets.SOURCES, name, source)
    return dirs


def test_lookup_order_env_then_system_then_cache(places):
    write_split_files(places["env"], offset=1)
    write_split_files(places["system"], offset=2)
    write_split_files(places["cache"] / "fashion-mnist", offset=3)

    def origin():
        return int(FashionMNIST(download=False).data[0, 0, 0])

    assert origin() == 1
    write_split_files(places["env"] / "fashion-mnist", offset=4)
    assert origin() == 4  # $MINIGEN_DATA/fashion-mnist/ comes before $MINIGEN_DATA/
    for stem in FILES:
        os.remove(places["env"] / (stem + ".gz"))
        os.remove(places["env"] / "fashion-mnist" / (stem + ".gz"))
    assert origin() == 2
    os.remove(places["system"] / "train-labels-idx1-ubyte.gz")  # half a split does not count
    assert origin() == 3
    explicit = places["env"] / "mine"
    write_split_files(explicit, offset=5)
    assert int(FashionMNIST(root=explicit, download=False).data[0, 0, 0]) == 5


def test_uncompressed_files_are_found(places):
    arrays = write_split_files(places["env"], gz=False)
    ds = FashionMNIST(train=False, download=False)
    np.testing.assert_array_equal(ds.data, arrays["t10k-images-idx3-ubyte"])


def test_mnist_needs_its_own_subfolder(places):
    write_split_files(places["env"], offset=1)  # flat: taken as Fashion-MNIST only
    with pytest.raises(DataNotFoundError):
        MNIST(download=False)
    write_split_files(places["env"] / "mnist", offset=2)
    assert MNIST(download=False).data[0, 0, 0] == 2
    assert FashionMNIST(download=False).data[0, 0, 0] == 1


def test_dataset_api(places):
    arrays = write_split_files(places["env"], n_train=5, n_test=3)
    train, test = FashionMNIST(), FashionMNIST(train=False)
    assert (len(train), len(test)) == (5, 3)
    assert train.data.dtype == np.uint8 and train.data.shape == (5, 28, 28)
    assert train.targets.dtype == np.int64
    np.testing.assert_array_equal(train.targets, arrays["train-labels-idx1-ubyte"])
    assert train.classes[0] == "T-shirt/top" and train.classes[9] == "Ankle boot"
    image, label = train[2]
    np.testing.assert_array_equal(image, arrays["train-images-idx3-ubyte"][2])
    assert label == arrays["train-labels-idx1-ubyte"][2]

    x, y = load_fashion_mnist("test")
    assert x.dtype == np.float32 and x.shape == (3, 784) and y.dtype == np.int64
    np.testing.assert_allclose(x, arrays["t10k-images-idx3-ubyte"].reshape(3, -1) / 255.0,
                               rtol=1e-6)
    x4, _ = load_dataset("Fashion_MNIST", split="train", flatten=False)
    assert x4.shape == (5, 1, 28, 28) and 0.0 <= x4.min() and x4.max() <= 1.0


def test_unknown_dataset_and_split_are_named(places):
    with pytest.raises(ValueError, match="unknown dataset 'cifar': known datasets are "
                                         "fashion-mnist, mnist, digits"):
        load_dataset("cifar")
    with pytest.raises(ValueError, match="unknown split 'val': expected one of train, test"):
        load_dataset("fashion-mnist", split="val")


@pytest.mark.parametrize("bad, message", [
    ({"t10k-images-idx3-ubyte": np.zeros((3, 27, 28), np.uint8)},
     r"expected uint8 images of shape \(N, 28, 28\), found uint8 \(3, 27, 28\)"),
    ({"t10k-images-idx3-ubyte": np.zeros((3, 28, 28), np.float32)},
     r"expected uint8 images of shape \(N, 28, 28\), found float32"),
    ({"t10k-labels-idx1-ubyte": np.zeros(4, np.uint8)},
     r"expected 3 uint8 labels \(one per image"),
    ({"t10k-labels-idx1-ubyte": np.array([0, 10, 1], np.uint8)}, "label 10 out of range 0..9"),
])
def test_wrong_dataset_contents_are_reported(places, bad, message):
    write_split_files(places["env"])
    for stem, array in bad.items():
        write_idx(places["env"] / (stem + ".gz"), array)
    with pytest.raises(ValueError, match=message):
        FashionMNIST(train=False, download=False)


def test_missing_data_offline_says_where_it_looked_and_what_to_do(places):
    with pytest.raises(DataNotFoundError) as info:
        FashionMNIST(download=False)
    text = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    for where in (places["env"] / "fashion-mnist", places["env"], places["system"],
                  places["cache"] / "fashion-mnist"):
        assert str(where) in text
    assert "sudo apt-get install dataset-fashion-mnist" in text
    assert "set MINIGEN_DATA=D" in text
    for stem in FILES:
        assert stem + ".gz" in text
    assert "download=False" in text


def test_missing_mnist_does_not_suggest_apt(places, monkeypatch):
    monkeypatch.delenv("MINIGEN_DATA")
    with pytest.raises(DataNotFoundError) as info:
        MNIST(download=False)
    assert "$MINIGEN_DATA/mnist: not set" in str(info.value)
    assert "apt-get" not in str(info.value) and "D/mnist/" in str(info.value)


# ------------------------------------------------------------------ downloading
def _serve(places, name="fashion-mnist", corrupt=None, monkeypatch=None):
    """Put gzipped tiny files on the file:// mirror; point the checksums at them."""
    arrays = write_split_files(places["mirror"], n_train=4, n_test=2)
    md5 = {s + ".gz": hashlib.md5(open(places["mirror"] / (s + ".gz"), "rb").read()).hexdigest()
           for s in FILES}
    if corrupt:
        md5[corrupt] = "0" * 32
    monkeypatch.setitem(datasets.SOURCES, name,
                        dataclasses.replace(datasets.SOURCES[name], md5=md5))
    return arrays


def test_download_to_cache_with_checksum(places, monkeypatch):
    arrays = _serve(places, monkeypatch=monkeypatch)
    ds = FashionMNIST(train=True, download=True)
    np.testing.assert_array_equal(ds.data, arrays["train-images-idx3-ubyte"])
    cached = sorted(os.listdir(places["cache"] / "fashion-mnist"))
    assert cached == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]  # no .part
    os.remove(places["mirror"] / "train-images-idx3-ubyte.gz")  # now served from the cache
    np.testing.assert_array_equal(FashionMNIST(download=False).data, ds.data)


def test_download_with_wrong_checksum_keeps_nothing(places, monkeypatch):
    _serve(places, corrupt="train-images-idx3-ubyte.gz", monkeypatch=monkeypatch)
    with pytest.raises(ChecksumError, match=r"train-images-idx3-ubyte.gz: MD5 checksum "
                                            r"mismatch: expected 0{32}, downloaded file has"):
        FashionMNIST(train=True, download=True)
    assert os.listdir(places["cache"] / "fashion-mnist") == []


def test_download_tries_the_next_mirror_and_reports_all_failures(places, monkeypatch):
    arrays = _serve(places, name="mnist", monkeypatch=monkeypatch)
    real = datasets._urlopen
    calls = []

    def opener(url, timeout):
        calls.append(url)
        if url.startswith("https://down.example/"):
            raise urllib.error.URLError("no route to host")
        return real(url, timeout=timeout)

    monkeypatch.setattr(datasets, "_urlopen", opener)
    source = datasets.SOURCES["mnist"]
    mirrors = ("https://down.example/",) + source.mirrors
    monkeypatch.setitem(datasets.SOURCES, "mnist", dataclasses.replace(source, mirrors=mirrors))
    ds = MNIST(train=False)
    np.testing.assert_array_equal(ds.targets, arrays["t10k-labels-idx1-ubyte"])
    assert calls[0] == "https://down.example/t10k-images-idx3-ubyte.gz"

    offline = dataclasses.replace(source, mirrors=("https://down.example/",))
    monkeypatch.setitem(datasets.SOURCES, "mnist", offline)
    with pytest.raises(DataNotFoundError, match=r"could not download it: https://down.example/"
                                                r"train-images-idx3-ubyte.gz: no route to host"):
        MNIST(train=True)


# ------------------------------------------------------------------ digits
def test_digits():
    pytest.importorskip("sklearn", reason="scikit-learn not installed: digits not checked")
    x, y = load_dataset("digits", "train")
    xt, yt = load_dataset("digits", "test", flatten=False)
    assert x.shape == (1500, 64) and xt.shape == (297, 1, 8, 8)
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0 and set(np.unique(y)) == set(range(10))


def test_digits_without_sklearn_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # makes the import fail
    with pytest.raises(ImportError, match="pip install scikit-learn"):
        load_dataset("digits")


# ------------------------------------------------------------------ toy sets
@pytest.mark.parametrize("make", [toy.ring_of_gaussians, toy.grid_of_gaussians, toy.two_moons])
def test_toy_sets_shapes_and_seeding(make):
    x, labels = make(500, seed=3)
    assert x.shape == (500, 2) and x.dtype == np.float32 and labels.dtype == np.int64
    np.testing.assert_array_equal(make(500, seed=3)[0], x)
    assert not np.array_equal(make(500, seed=4)[0], x)
    mg.manual_seed(7)
    a = make(50)[0]
    mg.manual_seed(7)
    np.testing.assert_array_equal(make(50)[0], a)  # seed=None follows minigen.manual_seed


def test_ring_points_sit_at_their_mode():
    x, mode = toy.ring_of_gaussians(4000, seed=0)
    centers = toy.ring_centers()
    np.testing.assert_allclose(np.linalg.norm(centers, axis=1), 2.0, rtol=1e-6)
    offset = x - centers[mode]
    assert np.abs(offset.std(0) - 0.02).max() < 0.002  # std 0.02 per axis
    assert np.bincount(mode, minlength=8).min() > 400  # all 8 modes used, about equally


def test_grid_is_5x5_from_minus4_to_4():
    centers = toy.grid_centers()
    assert centers.shape == (25, 2)
    np.testing.assert_array_equal(np.unique(centers[:, 0]), [-4, -2, 0, 2, 4])
    x, mode = toy.grid_of_gaussians(2000, seed=1)
    assert np.abs(x - centers[mode]).max() < 6 * 0.05


def test_two_moons_shape():
    x, moon = toy.two_moons(2000, noise=0.0, seed=0)
    upper, lower = x[moon == 0], x[moon == 1]
    np.testing.assert_allclose(np.linalg.norm(upper, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(lower - [1.0, 0.5], axis=1), 1.0, rtol=1e-5)
    assert upper[:, 1].min() >= 0 and lower[:, 1].max() <= 0.5


def test_colours():
    c = toy.colours(1000, seed=0)
    assert c.shape == (1000, 3) and c.dtype == np.float32
    assert c.min() >= 0 and c.max() <= 1 and c.std(0).min() > 0.25


# ------------------------------------------------------------------ DataLoader
def _batches(loader):
    """Each batch as a tuple of NumPy copies (the loader yields tensors, as PyTorch's)."""
    out = []
    for b in loader:
        b = b if isinstance(b, tuple) else (b,)
        assert all(isinstance(a, mg.Tensor) for a in b)
        out.append(tuple(a.numpy().copy() for a in b))
    return out


def test_loader_batches_in_order():
    x, y = np.arange(10 * 2).reshape(10, 2), np.arange(10)
    loader = DataLoader((x, y), batch_size=4)
    batches = _batches(loader)
    assert len(loader) == 3 and [len(b[1]) for b in batches] == [4, 4, 2]
    xb, yb = next(iter(DataLoader((x.astype(np.float32), y), batch_size=4)))
    assert xb.dtype == np.float32 and yb.dtype == np.int64 and xb.size() == (4, 2)
    assert isinstance(next(iter(DataLoader(x, batch_size=4))), mg.Tensor)  # a single array:
    # batches are tensors, not 1-tuples (PyTorch's DataLoader over a plain array)
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), x)
    dropped = DataLoader((x, y), batch_size=4, drop_last=True)
    assert len(dropped) == 2 and [len(b[1]) for b in _batches(dropped)] == [4, 4]
    assert len(DataLoader(x, batch_size=20, drop_last=True)) == 0
    assert _batches(DataLoader(x, batch_size=20, drop_last=True)) == []


def test_loader_shuffles_reproducibly_and_differently_each_epoch():
    y = np.arange(50)
    loader = DataLoader(y, batch_size=8, shuffle=True, seed=1)
    first = np.concatenate([b.numpy() for b in loader])
    second = np.concatenate([b.numpy() for b in loader])
    np.testing.assert_array_equal(np.sort(first), y)  # each epoch: every example once
    assert not np.array_equal(first, second) and not np.array_equal(first, y)
    again = DataLoader(y, batch_size=8, shuffle=True, seed=1)
    np.testing.assert_array_equal(np.concatenate([b.numpy() for b in again]), first)
    other = DataLoader(y, batch_size=8, shuffle=True, seed=2)
    assert not np.array_equal(np.concatenate([b.numpy() for b in other]), first)


@pytest.mark.parametrize("stop_after", [1, 3, 4, 6])  # mid-epoch, end of epoch, next epoch
def test_loader_resumes_exactly_from_its_state(stop_after):
    y = np.arange(13)
    reference = DataLoader(y, batch_size=4, shuffle=True, seed=5)  # 4 batches per epoch
    expected = [b.numpy() for epoch in range(3) for b in reference]

    run = DataLoader(y, batch_size=4, shuffle=True, seed=5)
    seen, state = [], None
    for _ in range(3):
        for batch in run:
            seen.append(batch.numpy())
            if len(seen) == stop_after:
                state = run.state_dict()  # saved while the batch is in use
        if state is not None:
            break
    assert all(type(v) is int for v in state.values())

    resumed = DataLoader(y, batch_size=4, shuffle=True, seed=999)
    resumed.load_state_dict(state)
    rest = [b.numpy() for _ in range(3) for b in resumed]
    for got, want in zip(seen[:stop_after] + rest, expected):
        np.testing.assert_array_equal(got, want)


def test_loader_state_after_an_epoch_points_to_the_next():
    loader = DataLoader(np.arange(8), batch_size=4, shuffle=True, seed=0)
    it = iter(loader)
    next(it), next(it)  # the last batch taken: the generator has not finished yet
    assert loader.state_dict() == {"seed": 0, "epoch": 1, "batch": 0}
    with pytest.raises(ValueError, match="batch 5 is outside this loader's epoch of 2"):
        loader.load_state_dict({"seed": 0, "epoch": 0, "batch": 5})


def test_tensor_dataset_checks_lengths():
    with pytest.raises(ValueError, match=r"share their first dimension .* got shapes "
                                         r"\(3, 2\), \(4,\)"):
        TensorDataset(np.zeros((3, 2)), np.zeros(4))
    ds = TensorDataset(mg.tensor(np.arange(6.0).reshape(3, 2)), np.arange(3))
    assert len(ds) == 3 and ds[1][1] == 1
    np.testing.assert_array_equal(ds[1][0], [2.0, 3.0])


def test_loader_collates_datasets_without_batch_indexing():
    class Squares:
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return np.full(2, i * i), i

    batches = _batches(DataLoader(Squares(), batch_size=2))
    np.testing.assert_array_equal(batches[1][0], [[4, 4], [9, 9]])
    np.testing.assert_array_equal(batches[2][1], [4])


def test_loader_over_a_dataset(places):
    arrays = write_split_files(places["env"], n_train=5)
    batches = _batches(DataLoader(FashionMNIST(), batch_size=2))
    assert [b[0].shape for b in batches] == [(2, 28, 28), (2, 28, 28), (1, 28, 28)]
    np.testing.assert_array_equal(batches[2][1], arrays["train-labels-idx1-ubyte"][4:])
