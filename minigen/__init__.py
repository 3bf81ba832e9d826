"""minigen: generative models written by hand on NumPy (CuPy on a GPU).

Start with ``minigen/tensor.py`` and ``minigen/autograd.py`` (the whole autograd), then
``minigen/ops/`` (one Function per op), then ``minigen/gradcheck.py`` (how every gradient
here is checked).
"""
import importlib

from . import autograd
from .autograd import (BackwardError, Function, detect_anomaly, enable_grad, grad,
                       is_grad_enabled, no_grad, set_grad_enabled)
from .backend import (cuda_available, device, get_array_module, get_default_dtype,
                      get_rng_state, manual_seed, set_default_dtype, set_rng_state)
from .dtypes import *  # noqa: F401,F403  (minigen.float32, minigen.long, ...)
from .dtypes import is_floating_point
from .ops import *  # noqa: F401,F403  (minigen.exp, minigen.matmul, ...)
from .ops import TENSOR_METHODS as _TENSOR_METHODS  # noqa: F401
from .tensor import (Tensor, _install_methods, arange, as_tensor, empty, empty_like, eye,
                     from_numpy, full, full_like, linspace, numel, ones, ones_like, rand,
                     rand_like, randint, randn, randn_like, randperm, tensor, zeros, zeros_like)
from .gradcheck import GradcheckError, gradcheck, gradgradcheck, numerical_grad
from .threads import get_num_threads, set_num_threads

_install_methods()

__version__ = "0.1.0"

# Submodules imported on first use, so `minigen.nn`, `minigen.optim` ... work after
# `import minigen` without making the core import slow. `cuda`, `backends` and `utils`
# are PyTorch's namespaces (torch.cuda.is_available(), torch.utils.data.DataLoader).
_LAZY = ("nn", "optim", "data", "models", "metrics", "viz", "cli", "kernels", "serialization",
         "interop", "cuda", "backends", "utils", "runs", "testing", "profiler", "dot")


def __getattr__(name):
    if name in _LAZY:
        return importlib.import_module(f"{__name__}.{name}")
    if name in ("save", "load"):
        return getattr(importlib.import_module(f"{__name__}.serialization"), name)
    if name == "profile":  # with minigen.profile() as prof: ... (minigen/profiler.py)
        return importlib.import_module(f"{__name__}.profiler").profile
    raise AttributeError(f"module 'minigen' has no attribute {name!r}")
