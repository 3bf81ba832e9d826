"""MNIST, Fashion-MNIST and scikit-learn's 8x8 digits, as NumPy arrays.

Where the IDX files are looked for, in this order (the first folder holding both files
of the requested split wins):

1. ``root``, when given (and nothing else: an explicit folder is never second-guessed);
2. ``$MINIGEN_DATA/<name>/`` (``<name>`` is ``fashion-mnist`` or ``mnist``), and for
   Fashion-MNIST also ``$MINIGEN_DATA/`` itself. MNIST and Fashion-MNIST use the same
   file names, so MNIST must sit in its own ``mnist/`` sub-folder;
3. the folder a system package installs: Debian's ``dataset-fashion-mnist`` puts the four
   files in ``/usr/share/datasets/fashion-mnist/`` (Debian has no MNIST package);
4. the cache, ``$MINIGEN_CACHE/<name>/`` (default ``~/.cache/minigen/<name>/``);
5. a download into the cache (or into ``root``) from the dataset's public mirror, with a
   progress bar and an MD5 check against the published checksum.

If all of that fails, `DataNotFoundError` lists every place it looked and says how to get
the files. Each file may be gzipped or not (``train-images-idx3-ubyte.gz`` or
``train-images-idx3-ubyte``).

Why files found on disk are not MD5-checked: Debian re-gzips the upstream files, so its
``.gz`` files differ byte for byte from the published ones although the arrays inside are
the same. The IDX reader's own checks (magic number, dtype, dimensions, exact length)
plus the shape and label checks below catch a damaged file; the MD5 guards downloads.
"""
import dataclasses
import hashlib
import os
import tempfile
import urllib.request

import numpy as np

from .idx import read_idx

# ------------------------------------------------------------------ the data sources
SPLITS = {  # split -> (images file, labels file), without the .gz suffix
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGE_SIZE = (28, 28)


@dataclasses.dataclass(frozen=True)
class Source:
    """Everything needed to find or fetch one IDX dataset."""
    name: str          # folder name under $MINIGEN_DATA and the cache
    title: str         # how people write it
    mirrors: tuple     # base URLs, tried in order until one answers
    md5: dict          # "<file>.gz" -> MD5 of the published gzipped file
    system_dirs: tuple  # where an OS package installs the files
    apt_package: str   # that package's name ("" when there is none)
    flat_env: bool     # may $MINIGEN_DATA itself (not only $MINIGEN_DATA/<name>) hold the files?
    classes: tuple     # label index -> class name


SOURCES = {
    "fashion-mnist": Source(
        name="fashion-mnist",
        title="Fashion-MNIST",
        # the canonical links in github.com/zalandoresearch/fashion-mnist's README
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        md5={  # the MD5 column of that README
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        system_dirs=("/usr/share/datasets/fashion-mnist",),
        apt_package="dataset-fashion-mnist",
        flat_env=True,
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    ),
    "mnist": Source(
        name="mnist",
        title="MNIST",
        # the mirrors torchvision uses (yann.lecun.com itself now often refuses downloads)
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "https://storage.googleapis.com/cvdf-datasets/mnist/"),
        md5={
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        system_dirs=(),
        apt_package="",
        flat_env=False,
        classes=tuple(str(d) for d in range(10)),
    ),
}


class DataNotFoundError(FileNotFoundError):
    """The dataset is nowhere on this machine and could not be downloaded."""


class ChecksumError(ValueError):
    """A downloaded file's MD5 is not the published one (the file is not kept)."""


def cache_dir():
    """Where downloads go: ``$MINIGEN_CACHE``, else ``$XDG_CACHE_HOME/minigen``, else
    ``~/.cache/minigen``."""
    if os.environ.get("MINIGEN_CACHE"):
        return os.environ["MINIGEN_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "minigen")


# ------------------------------------------------------------------ finding the files
def search_dirs(source, root=None):
    """The folders to look in, in order, as (description, folder or None when unset)."""
    if root is not None:
        return [("root argument", os.fspath(root))]
    env = os.environ.get("MINIGEN_DATA")
    dirs = [("$MINIGEN_DATA/" + source.name, env and os.path.join(env, source.name))]
    if source.flat_env:
        dirs.append(("$MINIGEN_DATA", env))
    dirs += [(f"package {source.apt_package or 'folder'}", d) for d in source.system_dirs]
    dirs.append(("cache", os.path.join(cache_dir(), source.name)))
    return dirs


def _find(folder, stem):
    """``folder/stem.gz`` or ``folder/stem``, whichever exists, else None."""
    for name in (stem + ".gz", stem):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    return None


def locate(name, split="train", root=None, download=True):
    """Paths (images, labels) of a split of dataset ``name``, downloading if needed."""
    source, stems = SOURCES[name], SPLITS[_check_split(split)]
    looked = []
    for label, folder in search_dirs(source, root):
        if folder is None:
            looked.append(f"{label}: not set")
            continue
        paths = [_find(folder, stem) for stem in stems]
        if all(paths):
            return tuple(paths)
        looked.append(f"{label}: {folder}")
    if not download:
        raise DataNotFoundError(_not_found_message(source, split, looked, ["download=False"]))
    target = os.fspath(root) if root is not None else os.path.join(cache_dir(), source.name)
    try:
        return tuple(_find(target, stem) or fetch(source, stem + ".gz", target) for stem in stems)
    except _DownloadFailed as e:
        raise DataNotFoundError(_not_found_message(source, split, looked, e.reasons)) from None


def _not_found_message(source, split, looked, download_notes):
    files = " ".join(stem + ".gz" for pair in SPLITS.values() for stem in pair)
    stems = SPLITS[split]
    lines = [f"{source.title} ({split} split) not found: looked for {stems[0]}[.gz] and "
             f"{stems[1]}[.gz] in"]
    lines += [f"  - {where}" for where in looked]
    lines.append("and could not download it: " + "; ".join(download_notes))
    lines.append("To get the data, either:")
    if source.apt_package:
        lines.append(f"  - on Debian/Ubuntu: sudo apt-get install {source.apt_package}"
                     f"  (installs the files in {source.system_dirs[0]}/), or")
    where = "a folder D/" if source.flat_env else f"a folder D/{source.name}/"
    lines.append(f"  - download the four files {files} (gzipped or not) from "
                 f"{source.mirrors[0]} into {where} and set MINIGEN_DATA=D, or")
    lines.append("  - run once on a machine that is online (they are cached in "
                 f"{os.path.join(cache_dir(), source.name)}/).")
    return "\n".join(lines)


def _check_split(split):
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")
    return split


# ------------------------------------------------------------------ downloading
_urlopen = urllib.request.urlopen  # a module attribute, so tests can put a fake opener here


class _DownloadFailed(Exception):
    def __init__(self, reasons):
        super().__init__("; ".join(reasons))
        self.reasons = reasons


def fetch(source, filename, folder):
    """Download ``filename`` of ``source`` into ``folder``, trying each mirror in turn."""
    reasons = []
    for base in source.mirrors:
        url = base + filename
        try:
            return download_file(url, os.path.join(folder, filename), source.md5[filename])
        except OSError as e:  # no network, DNS failure, HTTP error, unwritable folder ...
            reasons.append(f"{url}: {getattr(e, 'reason', None) or e}")
    raise _DownloadFailed(reasons)


def download_file(url, path, md5, progress=True, chunk_size=1 << 16):
    """Stream ``url`` to ``path`` with a progress bar; keep it only if its MD5 is ``md5``.

    The bytes go to a temporary file beside ``path`` that is renamed only after the
    checksum matches, so an interrupted or corrupt download never looks like a good file.
    """
    from tqdm import tqdm

    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path), suffix=".part")
    try:
        digest = hashlib.md5()
        with os.fdopen(fd, "wb") as out, _urlopen(url, timeout=30) as response:
            total = response.headers.get("Content-Length") if response.headers else None
            with tqdm(total=int(total) if total else None, unit="B", unit_scale=True,
                      unit_divisor=1024, desc=os.path.basename(path),
                      disable=not progress) as bar:
                while chunk := response.read(chunk_size):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
        if digest.hexdigest() != md5:
            raise ChecksumError(f"{url}: MD5 checksum mismatch: expected {md5}, downloaded file "
                                f"has {digest.hexdigest()}; it was not kept (a bad mirror or a "
                                f"damaged transfer): try again later")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


# ------------------------------------------------------------------ loading
def _load_split(name, split, root, download):
    """(images uint8 (N, 28, 28), labels int64 (N,)) after checking shapes and labels."""
    image_path, label_path = locate(name, split, root, download)
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != IMAGE_SIZE:
        raise ValueError(f"{image_path}: expected uint8 images of shape (N, 28, 28), found "
                         f"{images.dtype} {images.shape}")
    if labels.dtype != np.uint8 or labels.shape != images.shape[:1]:
        raise ValueError(f"{label_path}: expected {len(images)} uint8 labels (one per image in "
                         f"{image_path}), found {labels.dtype} {labels.shape}")
    n_classes = len(SOURCES[name].classes)
    if labels.size and labels.max() >= n_classes:
        raise ValueError(f"{label_path}: label {labels.max()} out of range 0..{n_classes - 1}")
    return images, labels.astype(np.int64)


class MNIST:
    """MNIST digits: ``.data`` uint8 (N, 28, 28), ``.targets`` int64 (N,), ``.classes``.

    ``train=True`` gives the 60000 training images, ``False`` the 10000 test images.
    ``dataset[i]`` is ``(image, label)``; ``dataset[index_array]`` gives a whole batch.
    """
    source_name = "mnist"

    def __init__(self, root=None, train=True, download=True):
        self.train = train
        self.split = "train" if train else "test"
        self.data, self.targets = _load_split(self.source_name, self.split, root, download)
        self.classes = list(SOURCES[self.source_name].classes)

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        return self.data[index], self.targets[index]

    __getitems__ = __getitem__  # batched fetch, as in PyTorch's DataLoader protocol

    def __repr__(self):
        return f"{type(self).__name__}(split={self.split!r}, n={len(self)})"


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST: 28x28 grey images of 10 kinds of clothing, same format."""
    source_name = "fashion-mnist"


def _as_float(images, flatten):
    """uint8 images -> float32 in [0, 1], (N, H*W) when flatten else (N, 1, H, W)."""
    x = images.astype(np.float32) / np.float32(255.0)
    return x.reshape(len(x), -1) if flatten else x[:, None, :, :]


def load_fashion_mnist(split="train", flatten=True, root=None, download=True):
    """Fashion-MNIST as (X float32 in [0, 1], y int64); X is (N, 784) or (N, 1, 28, 28)."""
    data = FashionMNIST(root, train=_check_split(split) == "train", download=download)
    return _as_float(data.data, flatten), data.targets


def load_mnist(split="train", flatten=True, root=None, download=True):
    """MNIST as (X float32 in [0, 1], y int64); X is (N, 784) or (N, 1, 28, 28)."""
    data = MNIST(root, train=_check_split(split) == "train", download=download)
    return _as_float(data.data, flatten), data.targets


DIGITS_TEST_SIZE = 297  # scikit-learn's 1797 digits: the last 297 are our test split


def load_digits(split="train", flatten=True):
    """scikit-learn's 8x8 digits (ships with scikit-learn, no download) as (X, y).

    X is float32 in [0, 1] (the raw values run 0..16), (N, 64) or (N, 1, 8, 8); the
    first 1500 images are the train split, the last 297 the test split, "all" gives all.
    """
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError:
        raise ImportError("the 'digits' dataset comes with scikit-learn, which is not "
                          "installed: pip install scikit-learn (or pip install "
                          "'minigen[bench]')") from None
    bunch = sk_load_digits()
    x = (bunch.images / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    cut = len(x) - DIGITS_TEST_SIZE
    if split == "train":
        x, y = x[:cut], y[:cut]
    elif split == "test":
        x, y = x[cut:], y[cut:]
    elif split != "all":
        raise ValueError(f"unknown split {split!r} for digits: expected train, test or all")
    return (x.reshape(len(x), -1) if flatten else x[:, None]), y


def _digits(split, flatten, root, download):
    return load_digits(split, flatten)  # bundled with scikit-learn: no folder, no download


LOADERS = {"fashion-mnist": load_fashion_mnist, "mnist": load_mnist, "digits": _digits}


def load_dataset(name, split="train", flatten=True, root=None, download=True):
    """Load a dataset by name as (X float32 in [0, 1], y int64).

    ``name`` is one of "fashion-mnist", "mnist", "digits" (case and ``_`` vs ``-`` do
    not matter). ``flatten=False`` gives images as (N, 1, H, W).
    """
    key = str(name).lower().replace("_", "-")
    if key not in LOADERS:
        raise ValueError(f"unknown dataset {name!r}: known datasets are "
                         f"{', '.join(LOADERS)}")
    return LOADERS[key](split, flatten, root, download)
