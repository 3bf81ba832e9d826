"""``minigen.cuda``: PyTorch's ``torch.cuda`` questions, answered for minigen's one GPU (CuPy).

    device = mg.device("cuda" if mg.cuda.is_available() else "cpu")
"""
from . import backend


def is_available():
    """True when CuPy imports and sees a CUDA device."""
    return backend.cuda_available()


def device_count():
    """1 with a usable GPU (minigen drives one), else 0."""
    return 1 if backend.cuda_available() else 0


def current_device():
    if not backend.cuda_available():
        raise RuntimeError("minigen.cuda.current_device(): no CUDA device is usable")
    return 0


def manual_seed(seed):
    """Seed the generators (minigen's one ``manual_seed`` seeds CPU and GPU together)."""
    backend.manual_seed(seed)


manual_seed_all = manual_seed


def synchronize():
    """Wait for the GPU to finish its queued work (no-op without one)."""
    if backend.cuda_available():
        import cupy
        cupy.cuda.Device().synchronize()
