"""Array backends: NumPy on the CPU, CuPy on a GPU, behind one code path.

Every op asks ``xp = get_array_module(x)`` and then writes ``xp.exp(x)``, ``xp.sum(x)``...
so the same line runs on both devices (the Chainer idiom). Only hot loops branch
(see ``minigen.kernels``).
"""
import numpy as np

try:  # CuPy is optional: the `cuda12` / `cuda13` extras install it.
    import cupy as _cupy
    try:
        _CUDA_OK = _cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # CuPy present but no driver / device
        _CUDA_OK = False
except ImportError:  # pragma: no cover - depends on the machine
    _cupy = None
    _CUDA_OK = False

_DEFAULT_DTYPE = np.dtype(np.float32)


def cuda_available():
    """True when CuPy imports and sees at least one CUDA device."""
    return _CUDA_OK


def get_array_module(*arrays):
    """Return ``cupy`` if any argument is a CuPy array, else ``numpy``."""
    if _cupy is not None:
        for a in arrays:
            if isinstance(a, _cupy.ndarray) or isinstance(getattr(a, "data", None), _cupy.ndarray):
                return _cupy  # a CuPy array, or a Tensor holding one
    return np


class device(str):
    """A device, as ``torch.device``: ``device("cpu")``, ``device("cuda")``, ``device("cuda:0")``.

    It is a ``str`` ('cpu' or 'cuda'), so ``x.device == "cpu"`` and ``f"{x.device}"`` work,
    and it has torch's ``.type`` and ``.index``. minigen drives one GPU, so "cuda:0" is
    "cuda" and other indices are refused. Creating a device never fails for lack of a GPU;
    moving a tensor there does (``check_device``), as in PyTorch.
    """

    def __new__(cls, type="cpu", index=None):
        if isinstance(type, device) and index is None:
            return type
        name, _, suffix = str(type).partition(":")
        if suffix:
            if index is not None or not suffix.isdigit():
                raise ValueError(f"invalid device string {type!r}")
            index = int(suffix)
        if name not in ("cpu", "cuda"):
            raise ValueError(f"unknown device {str(type)!r}: minigen has 'cpu' and 'cuda' "
                             "(CuPy); PyTorch's other back ends (mps, xpu, ...) do not exist here")
        if name == "cuda" and index not in (None, 0):
            raise ValueError(f"device cuda:{index}: minigen uses a single GPU, cuda:0")
        obj = super().__new__(cls, name)
        obj._index = index
        return obj

    @property
    def type(self):
        return str(self)

    @property
    def index(self):
        return self._index

    def __repr__(self):
        index = "" if self._index is None else f", index={self._index}"
        return f"device(type='{self}'{index})"

    __hash__ = str.__hash__


CPU, CUDA = device("cpu"), device("cuda")


def device_of(array):
    """device('cuda') for a CuPy array, device('cpu') otherwise."""
    return CUDA if (_cupy is not None and isinstance(array, _cupy.ndarray)) else CPU


def is_device(value):
    """True for a device object or a device string ('cpu', 'cuda', 'cuda:0', 'mps' ...)."""
    if isinstance(value, device):
        return True
    return isinstance(value, str) and value.partition(":")[0] in ("cpu", "cuda", "mps", "xpu",
                                                                  "meta")


def check_device(dev):
    """Normalise a device (name or object) to 'cpu' or 'cuda'; fail clearly when it cannot be used."""
    dev = CPU if dev is None else device(dev)
    if dev == "cuda" and not _CUDA_OK:
        raise RuntimeError(
            "device 'cuda' requested but no CUDA device is usable: install CuPy "
            "(pip install 'minigen[cuda12]' or '[cuda13]') on a machine with an NVIDIA GPU")
    return str(dev)


def xp_for(device):
    """The array module that holds arrays on ``device``."""
    return _cupy if check_device(device) == "cuda" else np


def to_device(array, device):
    """Copy ``array`` to ``device`` ('cpu' or 'cuda'); no copy when it is already there."""
    device = check_device(device)
    if device == device_of(array):
        return array
    if device == "cuda":
        return _cupy.asarray(array)
    return _cupy.asnumpy(array)


def to_numpy(array):
    """A NumPy view/copy of any backend array."""
    return array if isinstance(array, np.ndarray) else _cupy.asnumpy(array)


def get_default_dtype():
    return _DEFAULT_DTYPE


def set_default_dtype(dtype):
    """Set the float dtype of new tensors (float32 unless changed; float64 for gradient checks)."""
    global _DEFAULT_DTYPE
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"default dtype must be float32 or float64, got {dtype}")
    _DEFAULT_DTYPE = dtype


# ---------------------------------------------------------------- random numbers
# One seeded generator per backend, so `manual_seed(s)` makes a whole run repeatable.
_RNG = {"cpu": np.random.default_rng(0), "cuda": None}


def manual_seed(seed):
    """Seed minigen's random generators (NumPy, and CuPy when present)."""
    _RNG["cpu"] = np.random.default_rng(seed)
    if _CUDA_OK:
        _RNG["cuda"] = _cupy.random.default_rng(seed)


def rng(device="cpu"):
    """The generator for ``device``: ``numpy.random.Generator`` or CuPy's equivalent."""
    device = check_device(device)
    if device == "cuda" and _RNG["cuda"] is None:
        _RNG["cuda"] = _cupy.random.default_rng(0)
    return _RNG[device]


def get_rng_state():
    """The CPU generator's state (a dict of plain values), for exact resume from a checkpoint."""
    return _RNG["cpu"].bit_generator.state


def set_rng_state(state):
    _RNG["cpu"].bit_generator.state = state


def scatter_add(target, index, values):
    """``target[index] += values`` where repeated indices accumulate (np.add.at / cupyx)."""
    xp = get_array_module(target)
    if xp is np:
        np.add.at(target, index, values)
    else:
        import cupyx
        cupyx.scatter_add(target, index, values)
    return target
