"""``minigen.backends``: PyTorch's ``torch.backends`` flags that training scripts query.

minigen has a CPU (NumPy) and a CUDA (CuPy) back end only, so ``backends.mps.is_available()``
is False; the cuDNN switches are accepted and have no effect (no cuDNN here: convolutions
are im2col + GEMM, deterministic on both devices).
"""
from types import SimpleNamespace

mps = SimpleNamespace(is_available=lambda: False, is_built=lambda: False)
cudnn = SimpleNamespace(deterministic=True, benchmark=False, enabled=False,
                        is_available=lambda: False)
