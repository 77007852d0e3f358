"""Op-level argument checks shared by the reference and every backend.

These depend only on shapes (tuples of ints) and hyperparameters, never on an
array library, so the reference and the backends (NumPy, CuPy, torch) call the
same functions and raise the same exception (naming the argument, see
:mod:`reference._checks` for which type when) for the same invalid arguments.
Each returns the normalised hyperparameters and the output geometry the op
needs, after checking that its output and the copies it makes fit in the
memory limit (:func:`reference._checks.max_bytes`): the callers pass
``itemsize``, the bytes per element of their floats.

The callers convert their arrays first (with the shared dtype checks, and the
number of dimensions); the shapes passed here are checked again for the number
of dimensions so that each function stands on its own.

The lecture notes cited as "notes 000" … "notes 004" are described in
``docs/bibliography.md``, with the papers.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

from reference._checks import (
    ArgumentKindError,
    pair,
    require_array_fits,
    require_flag,
    require_in_range,
    require_int,
    require_ndim,
    require_positive,
    require_seed,
)

__all__ = [
    "BATCH_NORM_PARAMETERS",
    "GELU_APPROXIMATIONS",
    "LAYER_NORM_PARAMETERS",
    "UPSAMPLE_MODES",
    "batch_norm_hyper",
    "conv2d_geometry",
    "dropout_hyper",
    "dropout_mask_shape",
    "gelu_hyper",
    "layer_norm_hyper",
    "linear_shapes",
    "max_pool2d_geometry",
    "maxout_shapes",
    "pool2d_geometry",
    "prelu_alpha_shape",
    "require_batch",
    "require_flag",
    "require_min_ndim",
    "require_ndim",
    "require_shape_of",
    "softmax_axis",
    "upsample2d_geometry",
    "upsample2d_hyper",
]

Shape = Sequence[int]
IntPair = int | Sequence[int]
Pair = tuple[int, int]


def require_min_ndim(name: str, shape: Shape, ndim: int) -> None:
    """Raise unless ``shape`` has at least ``ndim`` entries."""
    if len(shape) < ndim:
        raise ValueError(
            f"{name} must have at least {ndim} dimensions, got shape {tuple(shape)}"
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


# ---------------------------------------------------------------- prelu


def prelu_alpha_shape(x_shape: Shape, alpha_shape: Shape) -> None:
    """``alpha`` is ``(1,)`` (one slope) or ``(C,)`` with ``C = x.shape[1]``."""
    require_ndim("alpha", alpha_shape, 1)
    if tuple(alpha_shape) == (1,):
        return
    if len(x_shape) < 2 or tuple(alpha_shape) != (x_shape[1],):
        raise ValueError(
            f"alpha must have shape (1,) or (C,) with C = x.shape[1] for x of "
            f"shape {tuple(x_shape)}, got {tuple(alpha_shape)}"
        )


# ---------------------------------------------------------------- gelu

#: GELU's forms: the exact one (``"none"``, no approximation) and torch's tanh one.
GELU_APPROXIMATIONS: tuple[str, ...] = ("none", "tanh")


def gelu_hyper(approximate: object) -> str:
    """Check GELU's ``approximate``: one of :data:`GELU_APPROXIMATIONS`."""
    if not isinstance(approximate, str) or approximate not in GELU_APPROXIMATIONS:
        raise ValueError(
            f"approximate must be one of {GELU_APPROXIMATIONS}, got {approximate!r}"
        )
    return approximate


# ---------------------------------------------------------------- linear


def linear_shapes(
    x_shape: Shape, w_shape: Shape, b_shape: Shape, itemsize: int = 8
) -> tuple[int, int]:
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
    out = (int(x_shape[0]), int(w_shape[0]))
    require_array_fits("x", out, itemsize, f"the output of shape {out}")
    return out


# ---------------------------------------------------------------- windows


def _require_window_memory(
    x_shape: Shape, padding: Pair, out_shape: Shape, itemsize: int
) -> None:
    """The output and the padded copy of the input of a window op fit in memory."""
    out_shape = tuple(int(d) for d in out_shape)
    require_array_fits("x", out_shape, itemsize, f"the output of shape {out_shape}")
    if padding != (0, 0):
        padded = (
            int(x_shape[0]),
            int(x_shape[1]),
            int(x_shape[2]) + 2 * padding[0],
            int(x_shape[3]) + 2 * padding[1],
        )
        require_array_fits("padding", padded, itemsize, f"the padded input {padded}")


# ---------------------------------------------------------------- conv2d


def conv2d_geometry(
    x_shape: Shape,
    w_shape: Shape,
    b_shape: Shape,
    stride: IntPair,
    padding: IntPair,
    itemsize: int = 8,
) -> tuple[Pair, Pair, tuple[int, int]]:
    """Check a conv2d's shapes and hyperparameters.

    Returns ``(stride, padding, (H_out, W_out))`` with stride and padding as pairs.
    There must be at least one channel in and out: a conv with none has nothing
    to compute, and array libraries disagree on what it returns.
    """
    require_ndim("x", x_shape, 4)
    require_ndim("w", w_shape, 4)
    require_ndim("b", b_shape, 1)
    stride = pair("stride", stride, minimum=1)
    padding = pair("padding", padding, minimum=0)
    if x_shape[1] < 1:
        raise ValueError(
            f"x must have at least one channel (axis 1), got shape {tuple(x_shape)}"
        )
    if w_shape[1] != x_shape[1]:
        raise ValueError(
            f"w must have C_in = x.shape[1] = {x_shape[1]} input channels "
            f"(shape (C_out, C_in, kH, kW)), got {tuple(w_shape)}"
        )
    if w_shape[0] < 1:
        raise ValueError(
            f"w must have at least one output channel (axis 0), got {tuple(w_shape)}"
        )
    if w_shape[2] < 1 or w_shape[3] < 1:
        raise ValueError(
            f"w must have a kernel of at least 1 x 1, got {tuple(w_shape)}"
        )
    require_shape_of("b", b_shape, (w_shape[0],))
    kernel = (int(w_shape[2]), int(w_shape[3]))
    require_window_fits("w", kernel, x_shape, padding)
    size_out = window_output_hw(x_shape, kernel, stride, padding)
    out_shape = (x_shape[0], w_shape[0], *size_out)
    _require_window_memory(x_shape, padding, out_shape, itemsize)
    return stride, padding, size_out


# ---------------------------------------------------------------- pooling


def pool2d_geometry(
    x_shape: Shape,
    kernel_size: IntPair,
    stride: IntPair | None,
    padding: IntPair,
    itemsize: int = 8,
) -> tuple[Pair, Pair, Pair, tuple[int, int]]:
    """Check a pooling window; ``(kernel, stride, padding, (H_out, W_out))``.

    ``stride=None`` means the kernel size (as torch).
    """
    require_ndim("x", x_shape, 4)
    kernel = pair("kernel_size", kernel_size, minimum=1)
    stride = kernel if stride is None else pair("stride", stride, minimum=1)
    padding = pair("padding", padding, minimum=0)
    require_window_fits("kernel_size", kernel, x_shape, padding)
    size_out = window_output_hw(x_shape, kernel, stride, padding)
    _require_window_memory(x_shape, padding, (*x_shape[:2], *size_out), itemsize)
    return kernel, stride, padding, size_out


def max_pool2d_geometry(
    x_shape: Shape,
    kernel_size: IntPair,
    stride: IntPair | None,
    padding: IntPair,
    itemsize: int = 8,
) -> tuple[Pair, Pair, Pair, tuple[int, int]]:
    """:func:`pool2d_geometry` plus the limit ``padding <= kernel_size // 2``."""
    require_ndim("x", x_shape, 4)
    kernel = pair("kernel_size", kernel_size, minimum=1)
    checked_padding = pair("padding", padding, minimum=0)
    if checked_padding[0] > kernel[0] // 2 or checked_padding[1] > kernel[1] // 2:
        raise ValueError(
            f"padding must be at most kernel_size // 2 = "
            f"({kernel[0] // 2}, {kernel[1] // 2}), got {checked_padding}"
        )
    return pool2d_geometry(x_shape, kernel_size, stride, padding, itemsize)


# ---------------------------------------------------------------- batch norm

BATCH_NORM_PARAMETERS = ("gamma", "beta", "running_mean", "running_var")


def batch_norm_hyper(
    x_shape: Shape,
    parameter_shapes: Sequence[Shape],
    training: object,
    momentum: float,
    eps: float,
) -> tuple[bool, float, float]:
    """Check batch norm's shapes and hyperparameters; ``(training, momentum, eps)``.

    ``x`` is ``(N, C)`` or ``(N, C, H, W)`` with ``C >= 1``; ``parameter_shapes``
    are the shapes of gamma, beta, running_mean and running_var, each ``(C,)``.
    In training there must be at least 2 values per channel (the unbiased
    running variance divides by ``m - 1``).
    """
    require_ndim("x", x_shape, (2, 4))
    if x_shape[1] < 1:
        raise ValueError(
            f"x must have at least one channel (axis 1), got shape {tuple(x_shape)}"
        )
    channels = (int(x_shape[1]),)
    for name, shape in zip(BATCH_NORM_PARAMETERS, parameter_shapes, strict=True):
        require_shape_of(name, shape, channels)
    training = require_flag("training", training)
    momentum = require_in_range("momentum", momentum, 0.0, 1.0, high_inclusive=True)
    eps = require_positive("eps", eps)
    if training and math.prod(int(n) for n in x_shape) // channels[0] < 2:
        raise ValueError(
            f"x must hold at least 2 values per channel in training (the unbiased "
            f"batch variance divides by m - 1), got shape {tuple(x_shape)}"
        )
    return training, momentum, eps


# ---------------------------------------------------------------- layer norm

LAYER_NORM_PARAMETERS = ("gamma", "beta")


def layer_norm_hyper(
    x_shape: Shape,
    parameter_shapes: Sequence[Shape],
    normalized_ndim: object,
    eps: float,
) -> tuple[int, float]:
    """Check layer norm's shapes and hyperparameters; ``(normalized_ndim, eps)``.

    ``normalized_ndim`` is an int in ``[1, x.ndim]``: the statistics run over
    the last ``normalized_ndim`` axes of ``x``, which must hold at least one
    value, and ``parameter_shapes`` (of gamma and beta) are each that trailing
    shape, ``x.shape[-normalized_ndim:]``.
    """
    normalized_ndim = require_int("normalized_ndim", normalized_ndim, minimum=1)
    if normalized_ndim > len(x_shape):
        raise ValueError(
            f"normalized_ndim must be at most x.ndim = {len(x_shape)} for x of "
            f"shape {tuple(x_shape)}, got {normalized_ndim}"
        )
    normalized_shape = tuple(int(n) for n in x_shape[len(x_shape) - normalized_ndim :])
    if math.prod(normalized_shape) < 1:
        raise ValueError(
            f"x must hold at least one value in its last {normalized_ndim} axes "
            f"(the normalized ones), got shape {tuple(x_shape)}"
        )
    for name, shape in zip(LAYER_NORM_PARAMETERS, parameter_shapes, strict=True):
        require_shape_of(name, shape, normalized_shape)
    return normalized_ndim, require_positive("eps", eps)


# ---------------------------------------------------------------- dropout


def dropout_mask_shape(shape: object) -> tuple[int, ...]:
    """The shape of a dropout mask: an int or a sequence of non-negative ints.

    The mask is drawn as float64 uniforms: those must fit in memory.
    """
    if isinstance(shape, Sequence) and not isinstance(shape, str):
        dims: tuple = tuple(shape)
    else:
        dims = (shape,)
    dims = tuple(require_int("shape", d, minimum=0, maximum=None) for d in dims)
    require_array_fits("shape", dims, 8, f"the uniform draws of shape {dims}")
    return dims


def dropout_hyper(p: object, training: object) -> tuple[float, bool]:
    """Check dropout's ``p`` (in [0, 1)) and ``training`` flag."""
    return require_in_range("p", p, 0.0, 1.0), require_flag("training", training)


def dropout_mask_hyper(shape: object, p: object, seed: object) -> tuple:
    """``(dims, p, seed)`` of a dropout mask, each checked."""
    p = require_in_range("p", p, 0.0, 1.0)
    return dropout_mask_shape(shape), p, require_seed(seed)


# ---------------------------------------------------------------- softmax


def softmax_axis(x_shape: Shape, axis: object) -> int:
    """Check ``axis`` (an int in ``[-ndim, ndim)``) for ``x`` of at least 1 dim."""
    ndim = len(x_shape)
    require_min_ndim("x", x_shape, 1)
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise ArgumentKindError(
            f"axis must be an int in [{-ndim}, {ndim}) for x of shape "
            f"{tuple(x_shape)}, got {axis!r}"
        )
    if not -ndim <= int(axis) < ndim:
        raise ValueError(
            f"axis must be an int in [{-ndim}, {ndim}) for x of shape "
            f"{tuple(x_shape)}, got {axis!r}"
        )
    return int(axis)


# ---------------------------------------------------------------- losses


def require_batch(name: str, shape: Shape) -> int:
    """The batch size (axis 0) of a loss input, which must be at least 1."""
    if len(shape) < 1 or shape[0] < 1:
        raise ValueError(
            f"{name} must have a batch axis of length >= 1, got shape {tuple(shape)}"
        )
    return int(shape[0])


def require_scores(name: str, shape: Shape) -> tuple[int, int]:
    """Scores ``(N, C)`` with ``N, C >= 1``; ``(N, C)``."""
    require_ndim(name, shape, 2)
    if shape[0] < 1 or shape[1] < 1:
        raise ValueError(f"{name} must have N >= 1 and C >= 1, got {tuple(shape)}")
    return int(shape[0]), int(shape[1])


# ---------------------------------------------------------------- maxout


def maxout_shapes(
    x_shape: Shape, w_shape: Shape, b_shape: Shape, itemsize: int = 8
) -> tuple[int, int]:
    """Check ``x (N, D_in)``, ``w (k, D_out, D_in)``, ``b (k, D_out)``, k >= 1.

    Returns the output shape ``(N, D_out)``; the ``k`` pieces ``(k, N, D_out)``
    must fit in memory.
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
    pieces = (int(w_shape[0]), int(x_shape[0]), int(w_shape[1]))
    require_array_fits("x", pieces, itemsize, f"the maxout pieces {pieces}")
    return int(x_shape[0]), int(w_shape[1])


# ---------------------------------------------------------------- upsample

UPSAMPLE_MODES: tuple[str, ...] = ("nearest", "bilinear")


def upsample2d_hyper(scale_factor: object, mode: object) -> tuple[int, str]:
    """Check ``scale_factor`` (a positive int) and ``mode``; both normalised."""
    factor = require_int("scale_factor", scale_factor, minimum=1)
    if mode not in UPSAMPLE_MODES:
        raise ValueError(f"mode must be one of {UPSAMPLE_MODES}, got {mode!r}")
    return factor, str(mode)


def upsample2d_geometry(
    x_shape: Shape, scale_factor: object, mode: object, itemsize: int = 8
) -> tuple[int, str]:
    """:func:`upsample2d_hyper` for NCHW ``x``, whose output must fit in memory."""
    require_ndim("x", x_shape, 4)
    factor, mode = upsample2d_hyper(scale_factor, mode)
    n, c, h, w = (int(d) for d in x_shape)
    out = (n, c, h * factor, w * factor)
    require_array_fits("scale_factor", out, itemsize, f"the output of shape {out}")
    return factor, mode
