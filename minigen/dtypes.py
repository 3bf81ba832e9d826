"""PyTorch's dtype names (``minigen.float32``, ``minigen.long`` ...) as NumPy dtypes.

A tensor's ``dtype`` is a ``numpy.dtype``; these names let PyTorch code such as
``x.to(mg.float64)``, ``x.dtype == mg.float32`` or ``mg.zeros(3, dtype=mg.long)`` run
unchanged. NumPy dtypes compare equal to their names, so ``dtype="float64"`` works too.
"""
import numpy as np

float16 = half = np.dtype(np.float16)
float32 = np.dtype(np.float32)
float64 = double = np.dtype(np.float64)
uint8 = np.dtype(np.uint8)
int8 = np.dtype(np.int8)
int16 = short = np.dtype(np.int16)
int32 = np.dtype(np.int32)
int64 = long = np.dtype(np.int64)
bool = np.dtype(np.bool_)  # noqa: A001  (torch.bool)
float = float32            # noqa: A001  (torch.float is float32)
int = int32                # noqa: A001  (torch.int is int32)

__all__ = ["float16", "half", "float32", "float64", "double", "uint8", "int8", "int16", "short",
           "int32", "int64", "long", "bool", "float", "int"]


def is_floating_point(x):
    """True for a tensor of a floating-point dtype (``torch.is_floating_point``)."""
    return x.dtype.kind == "f"
