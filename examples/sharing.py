"""A correct backend that shares memory wherever the contract allows it.

The NumPy backend with the two conveniences a thin adapter over a NumPy-based
library takes: ``asarray`` wraps the host array without copying when the
dtype already matches, and ``to_numpy`` returns the native array itself (a
view, no copy). Its optimizer steps update ``param`` and the state in place,
as the NumPy backend's do. All three are allowed by the contract, so the suite
must pass this backend exactly as it passes the NumPy one: a test that keeps
an output without copying it, or hands the same host array to a backend and to
the reference, would see values change under its feet.
"""

from __future__ import annotations

import numpy as np

from backends.numpy_backend import NumpyBackend


class SharingBackend(NumpyBackend):
    """The NumPy backend, without the defensive copies at its boundary."""

    name = "numpy_sharing"

    def asarray(self, a: np.ndarray, dtype: str) -> np.ndarray:
        return np.asarray(a, dtype=dtype)

    def to_numpy(self, a: np.ndarray) -> np.ndarray:
        return np.asarray(a)


backend = SharingBackend()
