"""The NumPy and CuPy backends' shared implementation (:mod:`backends.array.core`)."""

from backends.array.core import (
    CONV_ALGORITHMS,
    ArrayBackend,
    ConvAlgorithm,
    ConvGeometry,
    register_conv_algorithm,
)

__all__ = [
    "CONV_ALGORITHMS",
    "ArrayBackend",
    "ConvAlgorithm",
    "ConvGeometry",
    "register_conv_algorithm",
]
