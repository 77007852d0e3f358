"""Argument checks shared by the reference and every backend.

One validation, called by every implementation: the reference (NumPy arrays),
the array backend (NumPy and CuPy) and the torch backend (tensors) raise the
same exception, naming the same argument, for the same invalid input. Nothing
here imports an array library other than NumPy, and nothing here looks inside
a backend's arrays: each caller passes what it read from its own array (the
dtype's kind, the shape, a ``bool`` from its own reduction), so the rule is
written once and the array libraries only answer questions about their arrays.

Error types (every message starts with the argument's name):

* :class:`ArgumentKindError` for the wrong kind of argument: ``None`` where an
  array is required, a bool, complex, integer or object array where floats are
  required (or a float array where integer class ids are), a bool or a float
  where an int is required, a string where a number is. It is a ``TypeError``
  and also a ``ValueError``, so that "every invalid argument raises
  ``ValueError``" stays true for callers that catch only that.
* ``ValueError`` for a wrong value or shape: NaN or out-of-range
  probabilities and targets, negative variances, a hyperparameter out of its
  range, an integer hyperparameter too large to mean anything (rather than the
  ``OverflowError`` an array library would raise for it), and an op whose
  output or workspace would exceed the memory limit (:func:`max_bytes`).

Value checks read the values (probabilities, variances): on a GPU backend that
is one reduction and a read-back of one bool per check, a device
synchronisation that a reference-faithful validation accepts.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence

import numpy as np


class ArgumentKindError(TypeError, ValueError):
    """An argument of the wrong kind (see the module docstring)."""


#: Largest integer hyperparameter (window size, stride, padding, scale): larger
#: values describe no array that fits in memory and overflow C integers.
MAX_INT = 2**31 - 1

#: The environment variable holding the memory limit, in bytes.
MAX_BYTES_VARIABLE = "NNSPEC_MAX_BYTES"
#: The memory limit when :data:`MAX_BYTES_VARIABLE` is unset: 2 GiB.
DEFAULT_MAX_BYTES = 2 << 30


# ---------------------------------------------------------------- array kinds


def require_given(name: str, value: object) -> None:
    """Raise :class:`ArgumentKindError` if ``value`` is ``None``."""
    if value is None:
        raise ArgumentKindError(f"{name} must be an array, got None")


def require_float_kind(name: str, kind: str, dtype: object) -> None:
    """Raise unless the dtype kind (NumPy's letter: ``"f"`` for floats) is float.

    ``dtype`` is only quoted in the message; each array library passes its own.
    """
    if kind != "f":
        raise ArgumentKindError(
            f"{name} must be a floating-point array, got dtype {dtype}"
        )


def require_integer_kind(name: str, kind: str, dtype: object) -> None:
    """Raise unless the dtype kind is a signed or unsigned integer (not bool)."""
    if kind not in ("i", "u"):
        raise ArgumentKindError(
            f"{name} must hold integer class ids, got dtype {dtype}"
        )


def require_bool_kind(name: str, kind: str, dtype: object) -> None:
    """Raise unless the dtype kind is bool."""
    if kind != "b":
        raise ArgumentKindError(f"{name} must be a bool array, got dtype {dtype}")


def as_float64(
    name: str, value: object, *, ndim: int | Sequence[int] | None = None
) -> np.ndarray:
    """``value`` (a floating-point array) as float64 with ``ndim`` dimensions.

    The reference's conversion: ``None``, bool, complex, integer and object
    arrays are refused (:class:`ArgumentKindError`) instead of being turned
    into numbers, and so is an array whose float64 copy would exceed the
    memory limit.
    """
    require_given(name, value)
    array = np.asarray(value)
    require_float_kind(name, array.dtype.kind, array.dtype)
    if ndim is not None:
        require_ndim(name, array.shape, ndim)
    require_array_fits(name, array.shape, 8)
    return array.astype(np.float64, copy=False)


def require_ndim(name: str, shape: Sequence[int], ndim: int | Sequence[int]) -> None:
    """Raise unless ``shape`` has ``ndim`` entries (or one of several counts)."""
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if len(shape) not in allowed:
        expected = " or ".join(str(n) for n in allowed)
        raise ValueError(
            f"{name} must have {expected} dimensions, got shape {tuple(shape)}"
        )


def require_shape(name: str, array: object, shape: tuple[int, ...]) -> None:
    """Raise unless ``array.shape == shape`` (any array library)."""
    if tuple(array.shape) != tuple(shape):
        raise ValueError(
            f"{name} must have shape {tuple(shape)}, got {tuple(array.shape)}"
        )


# ---------------------------------------------------------------- array values


def require_probabilities(name: str, all_in_unit_interval: bool) -> None:
    """Raise unless every entry lies in [0, 1].

    The caller computes ``all_in_unit_interval`` as ``all((a >= 0) & (a <= 1))``
    with its own array library, which is False for NaN.
    """
    if not all_in_unit_interval:
        raise ValueError(f"{name} must lie in [0, 1], got values outside (or NaN)")


def require_non_negative_values(name: str, all_non_negative: bool) -> None:
    """Raise unless every entry is >= 0 (``all(a >= 0)``, False for NaN)."""
    if not all_non_negative:
        raise ValueError(f"{name} must be non-negative, got negative values (or NaN)")


# ---------------------------------------------------------------- scalars


def _require_real(name: str, value: object, requirement: str) -> float:
    """``value`` as a float; a bool, a string or ``None`` is the wrong kind."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise ArgumentKindError(f"{name} must be {requirement}, got {value!r}")
    return float(value)


def require_finite(name: str, value: object) -> float:
    """Raise unless ``value`` is a finite real number."""
    number = _require_real(name, value, "a finite number")
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return number


def require_positive(name: str, value: object) -> float:
    """Raise unless ``value`` is a finite number > 0."""
    number = _require_real(name, value, "a positive number")
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return number


def require_non_negative(name: str, value: object) -> float:
    """Raise unless ``value`` is a finite number >= 0."""
    number = _require_real(name, value, "a non-negative number")
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    return number


def require_in_range(
    name: str,
    value: object,
    low: float,
    high: float,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = False,
) -> float:
    """Raise unless ``value`` lies in the interval from ``low`` to ``high``."""
    left = "[" if low_inclusive else "("
    right = "]" if high_inclusive else ")"
    interval = f"{left}{low}, {high}{right}"
    number = _require_real(name, value, f"a number in {interval}")
    ok = math.isfinite(number) and (
        (number >= low if low_inclusive else number > low)
        and (number <= high if high_inclusive else number < high)
    )
    if not ok:
        raise ValueError(f"{name} must lie in {interval}, got {value!r}")
    return number


def require_int(
    name: str, value: object, *, minimum: int = 0, maximum: int | None = MAX_INT
) -> int:
    """Raise unless ``value`` is an int (not a bool) in ``[minimum, maximum]``."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise ArgumentKindError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum}, got {value!r}")
    return int(value)


def require_flag(name: str, value: object) -> bool:
    """Raise unless ``value`` is a Python or NumPy bool (both accepted everywhere)."""
    if not isinstance(value, bool | np.bool_):
        raise ArgumentKindError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def require_seed(seed: object) -> int:
    """A seed: a non-negative int of any size (not a bool)."""
    return require_int("seed", seed, minimum=0, maximum=None)


def pair(name: str, value: int | Sequence[int], *, minimum: int = 0) -> tuple[int, int]:
    """An int or an ``(h, w)`` pair of ints, each in ``[minimum, MAX_INT]``."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        values = tuple(value)
        if len(values) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    elif isinstance(value, numbers.Integral) and not isinstance(value, bool):
        values = (value, value)
    else:
        raise ArgumentKindError(
            f"{name} must be an int or a pair of ints, got {value!r}"
        )
    first, second = (require_int(name, v, minimum=minimum) for v in values)
    return first, second


def require_labels(name: str, labels: object, batch: int, classes: int) -> np.ndarray:
    """Integer class ids of shape ``(batch,)`` in ``[0, classes)`` (the reference's)."""
    require_given(name, labels)
    array = np.asarray(labels)
    require_labels_shape(name, array.shape, batch)
    require_integer_kind(name, array.dtype.kind, array.dtype)
    require_labels_in_range(
        name, not array.size or (array.min() >= 0 and array.max() < classes), classes
    )
    return array.astype(np.intp)


def require_labels_shape(name: str, shape: Sequence[int], batch: int) -> None:
    """Raise unless the labels' ``shape`` is ``(batch,)``."""
    if tuple(shape) != (batch,):
        raise ValueError(f"{name} must have shape ({batch},), got {tuple(shape)}")


def require_labels_in_range(name: str, in_range: bool, classes: int) -> None:
    """Raise unless every label lies in ``[0, classes)`` (``in_range``)."""
    if not in_range:
        raise ValueError(f"{name} must lie in [0, {classes}), got values out of range")


def upstream(dout: object, shape: tuple[int, ...]) -> np.ndarray:
    """``dout`` as float64, checked to have the forward output's ``shape``."""
    array = as_float64("dout", dout)
    require_shape("dout", array, shape)
    return array


# ---------------------------------------------------------------- memory


def max_bytes() -> int:
    """The most bytes one output or workspace may take: ``NNSPEC_MAX_BYTES``.

    Read at every call, so that a test or a caller can change it; 2 GiB when
    the variable is unset.
    """
    text = os.environ.get(MAX_BYTES_VARIABLE, "").strip()
    if not text:
        return DEFAULT_MAX_BYTES
    try:
        limit = int(text)
    except ValueError:
        limit = -1
    if limit < 1:
        raise ValueError(
            f"{MAX_BYTES_VARIABLE} must be a positive number of bytes, got {text!r}"
        )
    return limit


def _describe_bytes(count: int) -> str:
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} bytes"


def require_fits(name: str, what: str, count: int) -> None:
    """Raise before allocating when ``count`` bytes would exceed :func:`max_bytes`.

    ``name`` is the argument responsible, ``what`` says what would be allocated.
    """
    limit = max_bytes()
    if count > limit:
        raise ValueError(
            f"{name}: {what} would need {count} bytes ({_describe_bytes(count)}), "
            f"over the limit of {limit} bytes ({_describe_bytes(limit)}; set "
            f"{MAX_BYTES_VARIABLE} to change it)"
        )


def require_array_fits(
    name: str, shape: Sequence[int], itemsize: int, what: str = ""
) -> None:
    """:func:`require_fits` for an array of ``shape`` and ``itemsize`` bytes each.

    Without ``what``: an op's output or copy the size of the argument itself
    (an array view with zero strides can describe far more than it holds).
    """
    count = math.prod(int(n) for n in shape) * int(itemsize)
    if count > max_bytes():  # the message only then: this runs on every call
        description = what or f"an array of its shape {tuple(int(n) for n in shape)}"
        require_fits(name, description, count)
