"""The NumPy backend: :class:`~backends.array.ArrayBackend` over ``numpy``.

Vectorised and float32-first: conv2d picks its algorithm per shape from the
table of :mod:`backends.array.conv` (im2col from strided views and one GEMM,
or Winograd for 3x3 stride-1 layers), the optimizer steps update ``param``
and their state in place. Importing it needs only NumPy.
"""

from __future__ import annotations

import numpy as np

from backends.array import ArrayBackend

__all__ = ["NumpyBackend", "backend"]


class NumpyBackend(ArrayBackend):
    """The contract's operations in NumPy, on the CPU, in float32 and float64."""

    name = "numpy"
    device = "cpu"
    dtypes = ("float32", "float64")
    unavailable_reason = None

    def __init__(self) -> None:
        super().__init__(np)


backend = NumpyBackend()
