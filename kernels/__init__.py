"""Hot loops, importable as ``minigen.kernels``.

``cpu.py`` holds Numba ``@njit`` kernels for NumPy arrays, ``cuda.py`` loads the CUDA C
sources ``*.cu`` with CuPy's RawModule. Every kernel has a plain NumPy reference in the
module that uses it; ``MINIGEN_KERNELS=reference`` makes the library use the references
(the tests compare kernels against them).
"""
import os


def use_kernels():
    """False when MINIGEN_KERNELS=reference asks for the plain NumPy references."""
    return os.environ.get("MINIGEN_KERNELS", "fast").lower() != "reference"
