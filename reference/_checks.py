"""Argument checks shared by the reference.

Each raises ``ValueError`` naming the argument.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np


def as_float64(
    name: str, value: object, *, ndim: int | Sequence[int] | None = None
) -> np.ndarray:
    """``value`` as a float64 array with ``ndim`` dimensions (or one of several)."""
    array = np.asarray(value, dtype=np.float64)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if array.ndim not in allowed:
            expected = " or ".join(str(n) for n in allowed)
            raise ValueError(
                f"{name} must have {expected} dimensions, got shape {array.shape}"
            )
    return array


def require_shape(name: str, array: np.ndarray, shape: tuple[int, ...]) -> None:
    """Raise unless ``array.shape == shape``."""
    if tuple(array.shape) != tuple(shape):
        raise ValueError(
            f"{name} must have shape {tuple(shape)}, got {tuple(array.shape)}"
        )


def require_positive(name: str, value: float) -> float:
    """Raise unless ``value`` is a finite number > 0."""
    if not isinstance(value, numbers.Real) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def require_non_negative(name: str, value: float) -> float:
    """Raise unless ``value`` is a finite number >= 0."""
    if not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    return float(value)


def require_in_range(
    name: str,
    value: float,
    low: float,
    high: float,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = False,
) -> float:
    """Raise unless ``value`` lies in the interval from ``low`` to ``high``."""
    ok = isinstance(value, numbers.Real) and np.isfinite(value)
    if ok:
        ok = (value >= low if low_inclusive else value > low) and (
            value <= high if high_inclusive else value < high
        )
    if not ok:
        left = "[" if low_inclusive else "("
        right = "]" if high_inclusive else ")"
        interval = f"{left}{low}, {high}{right}"
        raise ValueError(f"{name} must lie in {interval}, got {value!r}")
    return float(value)


def pair(name: str, value: int | Sequence[int], *, minimum: int = 0) -> tuple[int, int]:
    """An int or an ``(h, w)`` pair of ints, each at least ``minimum``, as a pair."""
    if isinstance(value, numbers.Integral):
        values: tuple = (value, value)
    elif isinstance(value, Sequence) and not isinstance(value, str):
        values = tuple(value)
    else:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    if len(values) != 2 or not all(isinstance(v, numbers.Integral) for v in values):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    if any(v < minimum for v in values):
        raise ValueError(f"{name} must be at least {minimum}, got {value!r}")
    return int(values[0]), int(values[1])


def require_labels(name: str, labels: object, batch: int, classes: int) -> np.ndarray:
    """Integer class ids of shape ``(batch,)`` in ``[0, classes)``."""
    array = np.asarray(labels)
    if array.ndim != 1 or array.shape[0] != batch:
        raise ValueError(f"{name} must have shape ({batch},), got {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class ids, got dtype {array.dtype}")
    if array.size and (array.min() < 0 or array.max() >= classes):
        raise ValueError(f"{name} must lie in [0, {classes}), got values out of range")
    return array.astype(np.intp)


def upstream(dout: object, shape: tuple[int, ...]) -> np.ndarray:
    """``dout`` as float64, checked to have the forward output's ``shape``."""
    array = as_float64("dout", dout)
    require_shape("dout", array, shape)
    return array
