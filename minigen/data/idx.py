"""The IDX file format (MNIST, Fashion-MNIST): read it, check it, write it.

An IDX file is a tiny header followed by the raw array, all big-endian
(LeCun's format, http://yann.lecun.com/exdb/mnist/):

    bytes 0-1   two zero bytes
    byte  2     dtype code (see IDX_DTYPES below)
    byte  3     ndim, the number of dimensions
    then        ndim big-endian uint32 sizes, e.g. 60000, 28, 28
    then        prod(sizes) items of that dtype, row-major (C order)

The distributed files are gzipped; a gzip stream is recognised by its two magic
bytes 0x1f 0x8b, not by the file name, so a renamed or decompressed file still reads.
Every way a file can be broken gets an `IDXError` that names the file and says what
the header promised and what the file holds, e.g.

    train-images-idx3-ubyte.gz: truncated: header says 60000x28x28 = 47040000 bytes
    of data, file holds 1234
"""
import gzip
import math
import os
import zlib

import numpy as np

# dtype code -> element type (big-endian, as stored on disk)
IDX_DTYPES = {
    0x08: np.dtype(">u1"),  # unsigned byte
    0x09: np.dtype(">i1"),  # signed byte
    0x0B: np.dtype(">i2"),  # short
    0x0C: np.dtype(">i4"),  # int
    0x0D: np.dtype(">f4"),  # float
    0x0E: np.dtype(">f8"),  # double
}
_CODE_OF = {dt.newbyteorder("="): code for code, dt in IDX_DTYPES.items()}

GZIP_MAGIC = b"\x1f\x8b"


class IDXError(ValueError):
    """A file that is not a valid IDX file; the message says what was expected and found."""


def _read_bytes(path):
    """The file's bytes, gunzipped when it starts with the gzip magic number."""
    with open(path, "rb") as f:
        raw = f.read()
    if not raw.startswith(GZIP_MAGIC):
        return raw, False
    try:
        return gzip.decompress(raw), True
    except (EOFError, OSError, zlib.error) as e:  # truncated or damaged gzip stream
        raise IDXError(f"{path}: corrupt gzip data ({e}); the file is damaged or was only "
                       f"partly downloaded: delete it and fetch it again") from None


def _shape_text(dims):
    return "x".join(str(d) for d in dims) if dims else "()"


def _parse_header(path, buf):
    """Return (dtype, dims, header_length) after checking every header field."""
    if len(buf) < 4:
        raise IDXError(f"{path}: not an IDX file: {len(buf)} bytes, shorter than the "
                       f"4-byte magic number")
    if buf[0] != 0 or buf[1] != 0:
        raise IDXError(f"{path}: not an IDX file: magic number starts with bytes "
                       f"0x{buf[0]:02x} 0x{buf[1]:02x}, expected 0x00 0x00")
    code, ndim = buf[2], buf[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise IDXError(f"{path}: unknown IDX dtype code 0x{code:02X}, expected one of {known}")
    if ndim == 0:
        raise IDXError(f"{path}: IDX header says 0 dimensions, expected at least 1")
    header_len = 4 + 4 * ndim
    if len(buf) < header_len:
        raise IDXError(f"{path}: truncated header: {ndim} dimensions need {header_len} "
                       f"header bytes, file holds {len(buf)}")
    dims = tuple(int(d) for d in np.frombuffer(buf, ">u4", count=ndim, offset=4))
    return IDX_DTYPES[code], dims, header_len


def read_idx(path):
    """Read an IDX file (gzipped or raw) into a native-endian NumPy array.

    Raises `IDXError` when the magic number, dtype code, dimensions or length are wrong.
    """
    path = os.fspath(path)
    buf, _ = _read_bytes(path)
    dtype, dims, header_len = _parse_header(path, buf)
    expected = math.prod(dims) * dtype.itemsize  # Python ints: no overflow
    found = len(buf) - header_len
    if found != expected:
        what = "truncated" if found < expected else "trailing bytes"
        raise IDXError(f"{path}: {what}: header says {_shape_text(dims)} = {expected} bytes "
                       f"of data, file holds {found}")
    array = np.frombuffer(buf, dtype, offset=header_len).reshape(dims)
    return array.astype(dtype.newbyteorder("="))  # a writable copy in the machine's order


def write_idx(path, array, compress=None):
    """Write ``array`` as an IDX file; gzipped when ``compress`` is True or, by default,
    when ``path`` ends in ``.gz``. The gzip header carries no time stamp, so the same
    array always gives the same bytes (and checksum)."""
    path = os.fspath(path)
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _CODE_OF:
        names = ", ".join(str(d.newbyteorder("=")) for d in IDX_DTYPES.values())
        raise IDXError(f"write_idx: dtype {array.dtype} has no IDX code; use one of {names}")
    if array.ndim == 0 or array.ndim > 255:
        raise IDXError(f"write_idx: IDX holds 1 to 255 dimensions, got shape {array.shape}")
    code = _CODE_OF[native]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    payload = header + np.ascontiguousarray(array, IDX_DTYPES[code]).tobytes()
    if compress is None:
        compress = path.endswith(".gz")
    if compress:
        payload = gzip.compress(payload, mtime=0)
    with open(path, "wb") as f:
        f.write(payload)
    return path
