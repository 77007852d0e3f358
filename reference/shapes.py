"""Shape-level argument checks shared by the reference and every backend.

These depend only on shapes (tuples of ints) and hyperparameters, never on an
array library, so the reference and the backends (NumPy, CuPy, torch) call the
same functions and raise the same ``ValueError`` (naming the argument) for the
same invalid arguments. Each returns the normalised hyperparameters and the
output geometry the op needs.

The callers convert their arrays first (with their own dtype checks, and the
number of dimensions); the shapes passed here are checked again for the number
of dimensions so that each function stands on its own.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

from reference._checks import pair, require_in_range, require_positive

Shape = Sequence[int]
IntPair = int | Sequence[int]
Pair = tuple[int, int]


def require_ndim(name: str, shape: Shape, ndim: int | Sequence[int]) -> None:
    """Raise unless ``shape`` has ``ndim`` entries (or one of several counts)."""
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if len(shape) not in allowed:
        expected = " or ".join(str(n) for n in allowed)
        raise ValueError(
            f"{name} must have {expected} dimensions, got shape {tuple(shape)}"
        )


def require_shape_of(name: str, shape: Shape, expected: Shape) -> None:
    """Raise unless ``shape == expected``."""
    if tuple(shape) != tuple(expected):
        raise ValueError(
            f"{name} must have shape {tuple(expected)}, got {tuple(shape)}"
        )


def output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    r""":math:`\lfloor (H + 2p - k) / s \rfloor + 1` (notes 002, combined)."""
    return (size + 2 * padding - kernel) // stride + 1


def require_window_fits(name: str, kernel: Pair, x_shape: Shape, padding: Pair) -> None:
    """Raise unless the window fits in the padded NCHW input in both directions."""
    kernel = (int(kernel[0]), int(kernel[1]))
    padded = (x_shape[2] + 2 * padding[0], x_shape[3] + 2 * padding[1])
    if kernel[0] > padded[0] or kernel[1] > padded[1]:
        raise ValueError(
            f"{name}: the kernel {kernel} is larger than the padded input "
            f"{padded} (input {tuple(x_shape[2:])}, padding {padding})"
        )


def window_output_hw(
    x_shape: Shape, kernel: Pair, stride: Pair, padding: Pair
) -> tuple[int, int]:
    """``(H_out, W_out)`` of a sliding window over the padded NCHW input."""
    return (
        output_size(int(x_shape[2]), kernel[0], stride[0], padding[0]),
        output_size(int(x_shape[3]), kernel[1], stride[1], padding[1]),
    )


# ---------------------------------------------------------------- linear


def linear_shapes(x_shape: Shape, w_shape: Shape, b_shape: Shape) -> tuple[int, int]:
    """Check ``x (N, D_in)``, ``w (D_out, D_in)``, ``b (D_out,)``; ``(N, D_out)``."""
    require_ndim("x", x_shape, 2)
    require_ndim("w", w_shape, 2)
    require_ndim("b", b_shape, 1)
    if w_shape[1] != x_shape[1]:
        raise ValueError(
            f"w must have shape (D_out, D_in) with D_in = x.shape[1] = "
            f"{x_shape[1]}, got {tuple(w_shape)}"
        )
    require_shape_of("b", b_shape, (w_shape[0],))
    return int(x_shape[0]), int(w_shape[0])


# ---------------------------------------------------------------- conv2d


def conv2d_geometry(
    x_shape: Shape, w_shape: Shape, b_shape: Shape, stride: IntPair, padding: IntPair
) -> tuple[Pair, Pair, tuple[int, int]]:
    """Check a conv2d's shapes and hyperparameters.

    Returns ``(stride, padding, (H_out, W_out))`` with stride and padding as pairs.
    """
    require_ndim("x", x_shape, 4)
    require_ndim("w", w_shape, 4)
    require_ndim("b", b_shape, 1)
    stride = pair("stride", stride, minimum=1)
    padding = pair("padding", padding, minimum=0)
    if w_shape[1] != x_shape[1]:
        raise ValueError(
            f"w must have C_in = x.shape[1] = {x_shape[1]} input channels "
            f"(shape (C_out, C_in, kH, kW)), got {tuple(w_shape)}"
        )
    if w_shape[2] < 1 or w_shape[3] < 1:
        raise ValueError(
            f"w must have a kernel of at least 1 x 1, got {tuple(w_shape)}"
        )
    require_shape_of("b", b_shape, (w_shape[0],))
    kernel = (int(w_shape[2]), int(w_shape[3]))
    require_window_fits("w", kernel, x_shape, padding)
    return stride, padding, window_output_hw(x_shape, kernel, stride, padding)


# ---------------------------------------------------------------- pooling


def pool2d_geometry(
    x_shape: Shape, kernel_size: IntPair, stride: IntPair | None, padding: IntPair
) -> tuple[Pair, Pair, Pair, tuple[int, int]]:
    """Check a pooling window; ``(kernel, stride, padding, (H_out, W_out))``.

    ``stride=None`` means the kernel size (as torch).
    """
    require_ndim("x", x_shape, 4)
    kernel = pair("kernel_size", kernel_size, minimum=1)
    stride = kernel if stride is None else pair("stride", stride, minimum=1)
    padding = pair("padding", padding, minimum=0)
    require_window_fits("kernel_size", kernel, x_shape, padding)
    return kernel, stride, padding, window_output_hw(x_shape, kernel, stride, padding)


def max_pool2d_geometry(
    x_shape: Shape, kernel_size: IntPair, stride: IntPair | None, padding: IntPair
) -> tuple[Pair, Pair, Pair, tuple[int, int]]:
    """:func:`pool2d_geometry` plus the limit ``padding <= kernel_size // 2``."""
    geometry = pool2d_geometry(x_shape, kernel_size, stride, padding)
    kernel, padding = geometry[0], geometry[2]
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(
            f"padding must be at most kernel_size // 2 = "
            f"({kernel[0] // 2}, {kernel[1] // 2}), got {padding}"
        )
    return geometry


# ---------------------------------------------------------------- batch norm

BATCH_NORM_PARAMETERS = ("gamma", "beta", "running_mean", "running_var")


def require_flag(name: str, value: object) -> bool:
    """Raise unless ``value`` is a Python or NumPy bool."""
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def batch_norm_hyper(
    x_shape: Shape,
    parameter_shapes: Sequence[Shape],
    training: object,
    momentum: float,
    eps: float,
) -> tuple[bool, float, float]:
    """Check batch norm's shapes and hyperparameters; ``(training, momentum, eps)``.

    ``x`` is ``(N, C)`` or ``(N, C, H, W)``; ``parameter_shapes`` are the shapes
    of gamma, beta, running_mean and running_var, each ``(C,)``. In training
    there must be at least 2 values per channel (the unbiased running variance
    divides by ``m - 1``).
    """
    require_ndim("x", x_shape, (2, 4))
    channels = (int(x_shape[1]),)
    for name, shape in zip(BATCH_NORM_PARAMETERS, parameter_shapes, strict=True):
        require_shape_of(name, shape, channels)
    training = require_flag("training", training)
    momentum = require_in_range("momentum", momentum, 0.0, 1.0, high_inclusive=True)
    eps = require_positive("eps", eps)
    size = 1
    for n in x_shape:
        size *= int(n)
    if training and size // max(channels[0], 1) < 2:
        raise ValueError(
            f"x must hold at least 2 values per channel in training (the unbiased "
            f"batch variance divides by m - 1), got shape {tuple(x_shape)}"
        )
    return training, momentum, eps


# ---------------------------------------------------------------- maxout


def maxout_shapes(x_shape: Shape, w_shape: Shape, b_shape: Shape) -> tuple[int, int]:
    """Check ``x (N, D_in)``, ``w (k, D_out, D_in)``, ``b (k, D_out)``, k >= 1.

    Returns the output shape ``(N, D_out)``.
    """
    require_ndim("x", x_shape, 2)
    require_ndim("w", w_shape, 3)
    require_ndim("b", b_shape, 2)
    if w_shape[0] < 1 or w_shape[2] != x_shape[1]:
        raise ValueError(
            f"w must have shape (k, D_out, D_in) with k >= 1 and "
            f"D_in = x.shape[1] = {x_shape[1]}, got {tuple(w_shape)}"
        )
    require_shape_of("b", b_shape, tuple(w_shape[:2]))
    return int(x_shape[0]), int(w_shape[1])


# ---------------------------------------------------------------- upsample

UPSAMPLE_MODES: tuple[str, ...] = ("nearest", "bilinear")


def upsample2d_hyper(scale_factor: object, mode: object) -> tuple[int, str]:
    """Check ``scale_factor`` (a positive int) and ``mode``; both normalised."""
    if (
        isinstance(scale_factor, bool)
        or not isinstance(scale_factor, numbers.Integral)
        or scale_factor < 1
    ):
        raise ValueError(f"scale_factor must be a positive int, got {scale_factor!r}")
    if mode not in UPSAMPLE_MODES:
        raise ValueError(f"mode must be one of {UPSAMPLE_MODES}, got {mode!r}")
    return int(scale_factor), str(mode)
