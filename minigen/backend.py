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


def device_of(array):
    """'cuda' for a CuPy array, 'cpu' otherwise."""
    return "cuda" if (_cupy is not None and isinstance(array, _cupy.ndarray)) else "cpu"


def check_device(device):
    """Normalise a device name and fail clearly when it cannot be used."""
    device = "cpu" if device is None else str(device)
    if device.startswith("cuda"):
        if not _CUDA_OK:
            raise RuntimeError(
                "device 'cuda' requested but no CUDA device is usable: install CuPy "
                "(pip install 'minigen[cuda12]' or '[cuda13]') on a machine with an NVIDIA GPU")
        return "cuda"
    if device != "cpu":
        raise ValueError(f"unknown device {device!r}: expected 'cpu' or 'cuda'")
    return "cpu"


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
