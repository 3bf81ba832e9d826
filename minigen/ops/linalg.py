"""Matrix multiplication, batched, with NumPy's rules for 1-D operands."""
from ..autograd import Function
from ..kernels import matmul as array_matmul
from .elementwise import _binary
from .shape import transpose, unbroadcast, unsqueeze, squeeze


class MatMul(Function):
    """C = A @ B on (..., n, k) @ (..., k, m); leading (batch) dims broadcast.

    dL/dA = dL/dC @ B^T and dL/dB = A^T @ dL/dC, summed over broadcast batch dims.
    """

    def forward(self, a, b):
        return array_matmul(a, b)

    def backward(self, g):
        a, b = self.inputs
        ga = unbroadcast(matmul(g, transpose(b)), a.shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(matmul(transpose(a), g), b.shape) if self.needs_input_grad[1] else None
        return ga, gb


def matmul(a, b):
    """``a @ b``. A 1-D ``a`` is a row vector and a 1-D ``b`` a column vector, and the added
    dimension is removed from the result, exactly as ``numpy.matmul``."""
    a, b = _binary(a, b, "matmul", broadcast=False)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: both operands need at least one dimension, got shapes "
                         f"{a.shape} and {b.shape}")
    if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not match: inner "
                         f"dimensions {a.shape[-1]} and {b.shape[-2 if b.ndim > 1 else 0]} differ")
    if a.ndim == 1 and b.ndim == 1:
        return squeeze(squeeze(MatMul.apply(unsqueeze(a, 0), unsqueeze(b, 1)), -1), -1)
    if a.ndim == 1:
        return squeeze(MatMul.apply(unsqueeze(a, 0), b), -2)
    if b.ndim == 1:
        return squeeze(MatMul.apply(a, unsqueeze(b, 1)), -1)
    return MatMul.apply(a, b)


def outer(a, b):
    return matmul(unsqueeze(a, 1), unsqueeze(b, 0))


def mm(a, b):
    """Matrix product of two 2-D tensors (``torch.mm``: no broadcasting, no 1-D operands)."""
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"mm: expects two matrices, got shapes {a.shape} and {b.shape} "
                         "(use matmul for batches and vectors)")
    return matmul(a, b)


def bmm(a, b):
    """Batched matrix product of (B, n, k) and (B, k, m) (``torch.bmm``)."""
    if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0]:
        raise ValueError(f"bmm: expects (B, n, k) and (B, k, m) with one B, got shapes "
                         f"{a.shape} and {b.shape}")
    return matmul(a, b)


def dot(a, b):
    """Inner product of two 1-D tensors of one length."""
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(f"dot: expects two 1-D tensors, got shapes {a.shape} and {b.shape}")
    return matmul(a, b)
