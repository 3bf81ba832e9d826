"""Checkpoints: ``minigen.save(obj, path)`` and ``minigen.load(path)``.

``obj`` is a nested structure of dicts (str or int keys), lists, tuples, arrays,
Tensors and plain values (numbers of any size, strings, bools, None), for example::

    minigen.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                  "epoch": 3, "rng": minigen.get_rng_state()}, "ckpt.npz")

The file is an ordinary ``.npz`` (a zip of ``.npy`` arrays, readable with
``numpy.load``): every array is one member named by its path in ``obj``
("model/0.weight"), and the member ``__minigen__`` holds the structure and every
non-array value as JSON (JSON keeps Python ints of any size exactly -- NumPy's RNG
state has 128-bit ones). Nothing is pickled, on writing or on reading: a checkpoint
cannot run code when loaded.

Nothing is lost on a crash: the archive is written to a temporary file in the same
folder, flushed to disk (fsync), then renamed over ``path`` in one atomic step, so
``path`` always holds either the old checkpoint or the complete new one.
"""
import json
import os
import secrets
import zipfile
import zlib

import numpy as np

from . import backend
from .tensor import Tensor

FORMAT = "minigen-checkpoint"
VERSION = 1
META = "__minigen__"


class CheckpointError(ValueError):
    """A file that is not a complete, readable minigen checkpoint."""


# ------------------------------------------------------------------ encoding
def _is_array(value):
    return isinstance(value, (np.ndarray, np.generic)) or backend.device_of(value) == "cuda"


def _encode(value, parts, arrays):
    """The JSON description of ``value``; its arrays go into ``arrays`` under path names."""
    where = "/".join(map(str, parts)) or "the object"
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            if isinstance(key, bool) or not isinstance(key, (str, int)):
                raise TypeError(f"minigen.save: key {key!r} in {where} is a "
                                f"{type(key).__name__}; keys must be str or int")
            items.append([key, _encode(item, parts + [key], arrays)])
        return {"dict": items}
    if isinstance(value, (list, tuple)):
        kind = "list" if isinstance(value, list) else "tuple"
        return {kind: [_encode(item, parts + [i], arrays) for i, item in enumerate(value)]}
    if isinstance(value, Tensor) or _is_array(value):
        if isinstance(value, Tensor):
            array = backend.to_numpy(value.data)
        elif isinstance(value, np.generic):  # a NumPy scalar keeps its dtype as a 0-d array
            array = np.asarray(value)
        else:
            array = backend.to_numpy(value)
        if array.dtype.hasobject:
            raise TypeError(f"minigen.save: {where} is an object array; only numeric, bool and "
                            "string arrays can be stored without pickle")
        name = where if parts else "root"
        while name in arrays:  # e.g. keys 0 and "0" side by side
            name += "'"
        arrays[name] = array
        kind = "tensor" if isinstance(value, Tensor) else \
            "scalar" if isinstance(value, np.generic) else "array"
        return {kind: name}
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"value": value}
    raise TypeError(f"minigen.save: {where} is a {type(value).__name__}; a checkpoint holds "
                    "dicts, lists, tuples, arrays, Tensors, numbers, strings, bools and None")


def _decode(node, npz, path):
    kind, body = next(iter(node.items()))
    if kind == "value":
        return body
    if kind == "dict":
        return {key: _decode(item, npz, path) for key, item in body}
    if kind in ("list", "tuple"):
        items = [_decode(item, npz, path) for item in body]
        return items if kind == "list" else tuple(items)
    if kind in ("array", "tensor", "scalar"):
        try:
            array = npz[body]
        except KeyError:
            raise CheckpointError(f"minigen.load: {path!r} is incomplete: its metadata names the "
                                  f"array {body!r}, which the archive does not hold") from None
        return Tensor(array) if kind == "tensor" else array[()] if kind == "scalar" else array
    raise CheckpointError(f"minigen.load: {path!r} has unknown entry kind {kind!r} in its "
                          "metadata (written by a newer minigen?)")


# ------------------------------------------------------------------ writing
def _write_npz(file, arrays, compress):
    """What numpy.savez does, spelled out: one ``name.npy`` zip member per array."""
    mode = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(file, mode="w", compression=mode, allowZip64=True) as zf:
        for name, array in arrays.items():
            with zf.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


def _fsync_directory(directory):
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save(obj, path, compress=False):
    """Write ``obj`` to ``path`` as an .npz checkpoint, atomically (see the module docstring).

    ``compress=True`` deflates the arrays (smaller, slower). ``path`` is used exactly as
    given (no ".npz" is appended).
    """
    path = os.fspath(path)
    arrays = {META: None}  # reserve the name; filled in last
    tree = _encode(obj, [], arrays)
    meta = json.dumps({"format": FORMAT, "version": VERSION, "tree": tree})
    arrays[META] = np.frombuffer(meta.encode("utf-8"), dtype=np.uint8)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"minigen.save: cannot write {path!r}: the folder {directory!r} "
                                "does not exist")
    tmp = f"{path}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
        with os.fdopen(fd, "wb") as f:
            _write_npz(f, arrays, compress)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


# ------------------------------------------------------------------ reading
def _describe(head, size):
    if size == 0:
        return "an empty file"
    if head.startswith(b"PK"):
        return f"a zip archive of {size} bytes whose end is missing or damaged (truncated?)"
    if head.startswith(b"\x93NUMPY"):
        return "a single .npy array"
    if head.startswith(b"\x80"):
        return "a Python pickle (refused: loading a pickle can run arbitrary code)"
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return f"text starting {head.decode('ascii')!r}"
    return f"{size} bytes of unknown content starting {head!r}"


def load(path):
    """Read a checkpoint written by ``save``: the same structure, with NumPy arrays.

    Raises ``FileNotFoundError`` for a missing file and ``CheckpointError`` (a
    ValueError) for a truncated, corrupt or foreign file, saying what was expected
    and what was found.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"minigen.load: no checkpoint at {path!r}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"minigen.load: {path!r} is a directory, not a checkpoint file")
    with open(path, "rb") as f:
        head = f.read(16)
    size = os.path.getsize(path)
    expected = "expected a minigen checkpoint (.npz zip archive written by minigen.save)"
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"minigen.load: {path!r}: {expected}, found {_describe(head, size)}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if META not in npz.files:
                names = ", ".join(sorted(npz.files)[:6]) + (", ..." if len(npz.files) > 6 else "")
                raise CheckpointError(
                    f"minigen.load: {path!r}: {expected}, found an .npz without minigen "
                    f"metadata (arrays: {names or 'none'}); read it with numpy.load instead")
            meta = _read_meta(npz[META], path)
            return _decode(meta["tree"], npz, path)
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError, KeyError) as e:
        raise CheckpointError(f"minigen.load: {path!r} is corrupt ({type(e).__name__}: {e}); "
                              f"{expected}") from e


def _read_meta(raw, path):
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"minigen.load: {path!r} has unreadable metadata ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or "tree" not in meta:
        raise CheckpointError(f"minigen.load: {path!r}: metadata is not in the {FORMAT!r} "
                              "format")
    if meta.get("version", 0) > VERSION:
        raise CheckpointError(f"minigen.load: {path!r} is format version {meta['version']}; "
                              f"this minigen reads up to version {VERSION} (upgrade minigen)")
    return meta
