r"""Every contract operation, written once over an array namespace ``xp``.

:class:`ArrayBackend` holds the fast implementation shared by the NumPy backend
(``xp = numpy``) and the CuPy backend (``xp = cupy``): vectorised, float32-first
(outputs keep the dtype of the float inputs: Python scalars only, never float64
NumPy scalars, meet the arrays), no Python loop over pixels or batch elements.
The only loops are over the kernel offsets of a window (pooling, col2im), the
phases of an upsampling factor and the arrays of a list (gradient clipping).

Subclasses override only what differs between array libraries: moving arrays
between host and device (:meth:`ArrayBackend.asarray`,
:meth:`ArrayBackend.to_numpy`, :meth:`ArrayBackend._from_host`), waiting for the
device (:meth:`ArrayBackend.synchronize`), strided views
(:meth:`ArrayBackend._as_strided`), the random generator
(:meth:`ArrayBackend._uniform`) and the optimizer updates (``_<name>_update``),
which here are the kernels of :mod:`backends.blocked` (``out=`` ufuncs, in
place, run block by block so that a step's passes stay in the L2 cache, on
as many threads as NumPy's BLAS), or, where numba is installed
(``accelerator = "numba"``), the same updates compiled into one pass per
block (:mod:`backends.fused`), and on a GPU one fused kernel each.

Convolution is a small dispatch table of algorithms (:data:`CONV_ALGORITHMS`);
each pads the input itself and, for large batches, works through it in chunks
of a few MiB of workspace (``conv_chunk_bytes``) so that its copies and GEMMs
stay in cache:

* ``im2col``: the input windows as one strided view, copied into columns
  ``(C kH kW, N H_out W_out)`` (channels and taps outermost, so one GEMM with
  the ``(C_out, C kH kW)`` weights covers the chunk), the result scattered to
  NCHW with the bias in the same pass. 1x1 kernels without padding use the
  input itself (a batched GEMM, no copy). Backward: ``dW`` from the same
  columns (one GEMM reducing over the chunk), ``dx`` by ``W^T dY`` and col2im
  (a loop over the taps, each clipped to the input: no padded buffer).
  With numba (``accelerator = "numba"``) the gather and col2im are compiled
  loops, and a stride-1 forward with few output channels
  (:data:`DIRECT_MAX_OUT_CHANNELS`) sums the same products without the
  columns: blocks of output pixels and channels summed in vector registers
  over every tap (:func:`backends.fused.direct_conv`), where the columns
  would cost more to copy than the GEMM saves.
* ``winograd`` and ``winograd2x2``: Winograd F(4x4, 3x3) and F(2x2, 3x3) for
  3x3 kernels at stride 1 (:mod:`backends.winograd`): 2.25 and 4 multiplies
  per output instead of 9, the transforms as GEMMs; ``dx`` is the same
  algorithm on the flipped kernel, ``dw`` its adjoint. Chosen automatically:
  F(4x4) from 32 channels in and out and 8x8 outputs, F(2x2) from 8 channels
  and 4x4 outputs (see :data:`WINOGRAD_MIN_CHANNELS` for the accuracy side).
* ``offsets``: one GEMM per kernel offset ``(i, j)`` accumulated into the
  output, never holding more than one offset's slice of the input: the
  low-memory fallback when the others' workspace would be too large.

:meth:`ArrayBackend.select_conv_algorithm` picks one per shape (the first of
``conv_preference`` that supports the shape and is worthwhile there, within
``conv_workspace_limit`` bytes), or the one named by ``conv_algorithm``;
:func:`register_conv_algorithm` adds one.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from backends import blocked, fused, winograd
from reference import initializers, optimizers
from reference._checks import (
    require_array_fits,
    require_bool_kind,
    require_fits,
    require_float_kind,
    require_given,
    require_integer_kind,
    require_labels_in_range,
    require_labels_shape,
    require_ndim,
    require_non_negative,
    require_non_negative_values,
    require_positive,
    require_probabilities,
    require_shape,
)
from reference.initializers import HYPER_DEFAULTS, UNIFORM_INITIALIZERS
from reference.shapes import (
    BATCH_NORM_PARAMETERS,
    batch_norm_hyper,
    conv2d_geometry,
    dropout_hyper,
    dropout_mask_hyper,
    linear_shapes,
    max_pool2d_geometry,
    maxout_shapes,
    pool2d_geometry,
    prelu_alpha_shape,
    require_batch,
    require_min_ndim,
    require_scores,
    softmax_axis,
    upsample2d_geometry,
)

__all__ = [
    "CONV_ALGORITHMS",
    "ArrayBackend",
    "ConvAlgorithm",
    "ConvGeometry",
    "register_conv_algorithm",
]

Array = Any

#: SELU constants of Klambauer et al. (2017), eq. (14), as torch.
SELU_SCALE = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717

#: Binary cross-entropy clamps each log at -100 (as torch and the reference).
LOG_CLAMP = -100.0
_SMALLEST_PROB = math.exp(LOG_CLAMP)

#: The initializers' hyperparameters and defaults: the reference's table.
INITIALIZER_HYPER = HYPER_DEFAULTS
_UNIFORM_INITIALIZERS = UNIFORM_INITIALIZERS

#: The state arrays of each optimizer (torch's names) besides scratch buffers.
OPTIMIZER_BUFFERS: dict[str, tuple[str, ...]] = {
    "sgd": ("momentum_buffer",),
    "adagrad": ("sum",),
    "rmsprop": ("square_avg",),
    "adadelta": ("square_avg", "acc_delta"),
    "adam": ("exp_avg", "exp_avg_sq"),
}
# ---------------------------------------------------------------------------
# Convolution algorithms
# ---------------------------------------------------------------------------


class ConvGeometry(NamedTuple):
    """Everything about one conv2d call but the values."""

    batch: int
    in_channels: int
    out_channels: int
    height: int
    width: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    out_height: int
    out_width: int
    itemsize: int

    @property
    def padded_shape(self) -> tuple[int, int, int, int]:
        return (
            self.batch,
            self.in_channels,
            self.height + 2 * self.padding[0],
            self.width + 2 * self.padding[1],
        )

    @property
    def columns(self) -> int:
        """``C_in kH kW``: the GEMM's reduction length."""
        return self.in_channels * self.kernel[0] * self.kernel[1]

    @property
    def pixels(self) -> int:
        """``H_out W_out``."""
        return self.out_height * self.out_width

    @property
    def pixels_shape(self) -> tuple[int, int]:
        """``(H_out, W_out)``."""
        return (self.out_height, self.out_width)

    @property
    def pointwise(self) -> bool:
        """A 1x1 kernel without padding: the input itself is the GEMM operand."""
        return self.kernel == (1, 1) and self.padding == (0, 0)


def _always(geometry: ConvGeometry) -> bool:
    return True


def _empty_conv(g: ConvGeometry) -> bool:
    """No products at all: an empty batch or no channels in or out."""
    return min(g.batch, g.in_channels, g.out_channels) == 0


@dataclass(frozen=True)
class ConvAlgorithm:
    """One way to compute conv2d.

    ``forward(backend, x, w, b, geometry)`` returns ``y`` (N, C_out, H_out,
    W_out) with the bias ``b`` added (``b`` may be ``None``);
    ``backward(backend, dout, x, w, geometry)`` returns ``(dx, dw)``. Both take
    the unpadded input and apply ``geometry.padding`` themselves (each lays the
    padded copy out as its own GEMMs want it). ``supports(geometry)`` says
    whether it can compute that shape at all; ``worthwhile(geometry)`` whether
    automatic selection should use it there (Winograd pays only where the
    GEMM dominates); ``workspace_bytes(geometry)`` is the extra memory its
    larger pass needs, which automatic selection weighs against the backend's
    ``conv_workspace_limit``.
    """

    name: str
    forward: Callable[..., Array]
    backward: Callable[..., tuple[Array, Array]]
    supports: Callable[[ConvGeometry], bool] = _always
    workspace_bytes: Callable[[ConvGeometry], int] = lambda geometry: 0
    worthwhile: Callable[[ConvGeometry], bool] = _always


#: Workspace of one batch chunk of the im2col and Winograd algorithms (see
#: :func:`_chunks`); ``None`` runs the whole batch at once.
CONV_CHUNK_BYTES = 4 << 20
#: Fewest GEMM columns (output pixels, or Winograd tiles) in a chunk.
CONV_CHUNK_MIN_COLUMNS = 128
#: im2col gathers in two steps (rows, then windows) for output rows this short
#: or shorter: LeNet's 10-wide rows gather 35% faster, 28-wide ones no faster.
SHORT_ROWS = 16
#: Copies of fewer elements run on one thread: waking one costs tens of
#: microseconds, about what copying 2**17 float32 in cache takes.
PARALLEL_MIN_ELEMENTS = 1 << 17

#: The registered algorithms, by name.
CONV_ALGORITHMS: dict[str, ConvAlgorithm] = {}


def register_conv_algorithm(algorithm: ConvAlgorithm) -> ConvAlgorithm:
    """Add ``algorithm`` to :data:`CONV_ALGORITHMS` (replacing one of the same name)."""
    CONV_ALGORITHMS[algorithm.name] = algorithm
    return algorithm


def _offset_index(i: int, j: int, stride: tuple[int, int], size_out: tuple[int, int]):
    """The input rows and columns that offset ``(i, j)`` meets in every window."""
    rows = slice(i, i + stride[0] * (size_out[0] - 1) + 1, stride[0])
    cols = slice(j, j + stride[1] * (size_out[1] - 1) + 1, stride[1])
    return (slice(None), slice(None), rows, cols)


def _clipped(
    offset: int, padding: int, stride: int, size_out: int, size_in: int
) -> tuple[slice, slice] | None:
    """Outputs ``o`` whose input ``o stride + offset - padding`` lies in the input.

    Returns ``(outputs, inputs)`` as slices, or ``None`` when kernel tap
    ``offset`` only ever meets padding.
    """
    first = max(0, -((offset - padding) // stride))
    last = min(size_out, (size_in - 1 + padding - offset) // stride + 1)
    if last <= first:
        return None
    start = first * stride + offset - padding
    return slice(first, last), slice(
        start, start + (last - first - 1) * stride + 1, stride
    )


def _tap_regions(g: ConvGeometry):
    """For every kernel tap meeting the input: ``(i, j, output index, input index)``."""
    for i in range(g.kernel[0]):
        rows = _clipped(i, g.padding[0], g.stride[0], g.out_height, g.height)
        if rows is None:
            continue
        for j in range(g.kernel[1]):
            cols = _clipped(j, g.padding[1], g.stride[1], g.out_width, g.width)
            if cols is None:
                continue
            out_index = (slice(None), slice(None), rows[0], cols[0])
            in_index = (slice(None), slice(None), rows[1], cols[1])
            yield i, j, out_index, in_index


def _add_bias(xp: Any, y_view: Array, b: Array | None, out: Array) -> Array:
    """``out[...] = y_view + b`` (per channel, axis 1) in one pass."""
    if b is None:
        out[...] = y_view
    else:
        xp.add(y_view, b.reshape((1, -1) + (1,) * (y_view.ndim - 2)), out=out)
    return out


def _strided_input(x: Array, g: ConvGeometry) -> Array:
    """The pixels a 1x1 kernel meets at ``g.stride``: (N, C, H_out, W_out)."""
    sh, sw = g.stride
    return x[
        :, :, : sh * (g.out_height - 1) + 1 : sh, : sw * (g.out_width - 1) + 1 : sw
    ]


def _im2col_columns(backend: ArrayBackend, x: Array, g: ConvGeometry) -> Array:
    """The windows of ``x`` (any batch) as columns ``(C kH kW, n H_out W_out)``.

    Channels and kernel taps outermost: one GEMM with the ``(C_out, C kH kW)``
    weights covers the whole chunk, and the copy reads each input row once
    per tap with the output width as its inner loop.
    """
    xp = backend.xp
    batch = x.shape[0]
    x_padded = backend._pad(x, g.padding)
    s_n, s_c, s_h, s_w = x_padded.strides
    shape = (g.in_channels, *g.kernel, batch, g.out_height, g.out_width)
    columns = xp.empty(shape, dtype=x.dtype)
    parts = backend._split(g.in_channels, columns.size)
    if _compiled(backend, x):
        gather = functools.partial(fused.gather_windows, x_padded, g.stride, columns)
        backend._parallel([functools.partial(gather, part) for part in parts])
        return columns.reshape(g.columns, batch * g.pixels)
    if _short_rows(g):
        # Short output rows: copy each column tap's rows once, (C, kW, n, H_p,
        # W_out); every (c, i, j, n) window is then H_out W_out contiguous
        # values of it, a long inner loop instead of W_out-long ones.
        hp = g.padded_shape[2]
        row_shape = (g.in_channels, g.kernel[1], batch, hp, g.out_width)
        row_strides = (s_c, s_w, s_n, s_h, s_w * g.stride[1])
        rows = xp.empty(row_shape, dtype=x.dtype)
        source = backend._as_strided(x_padded, row_shape, row_strides)

        def copy_rows(part: slice) -> None:
            rows[part] = source[part]

        backend._parallel([functools.partial(copy_rows, part) for part in parts])
        r_c, r_j, r_n, r_h, r_w = rows.strides
        windows = backend._as_strided(rows, shape, (r_c, r_h, r_j, r_n, r_h, r_w))
    else:
        strides = (s_c, s_h, s_w, s_n, s_h * g.stride[0], s_w * g.stride[1])
        windows = backend._as_strided(x_padded, shape, strides)

    def gather(part: slice) -> None:
        columns[part] = windows[part]

    backend._parallel([functools.partial(gather, part) for part in parts])
    return columns.reshape(g.columns, batch * g.pixels)


def _chunks(backend: ArrayBackend, g: ConvGeometry, per_image_bytes: int):
    """Batch slices holding at most ``backend.conv_chunk_bytes`` of workspace each.

    Past the last-level cache a pass over the columns runs at memory speed,
    and past malloc's mmap threshold (32 MiB) every call pays page faults
    for them: chunks of a few MiB keep both away. A chunk keeps at least
    ``backend.conv_chunk_min_columns`` GEMM columns, below which the GEMMs lose
    more than the cache saves.
    """
    step = winograd.chunk_images(
        g.batch,
        per_image_bytes,
        g.pixels,
        backend.conv_chunk_bytes,
        backend.conv_chunk_min_columns,
    )
    for start in range(0, g.batch, step):
        yield slice(start, min(start + step, g.batch))


def _im2col_forward(
    backend: ArrayBackend, x: Array, w: Array, b: Array | None, g: ConvGeometry
) -> Array:
    xp = backend.xp
    if _direct_applies(backend, x, w, b, g):
        return _direct_forward(backend, x, w, b, g)
    w2 = w.reshape(g.out_channels, g.columns)
    dtype = xp.result_type(x.dtype, w.dtype)
    if g.pointwise:
        # No copy of the input: a batched GEMM, already NCHW.
        pixels = _strided_input(x, g).reshape(g.batch, g.in_channels, g.pixels)
        y = xp.matmul(w2, pixels)
        if b is not None:
            y += b.reshape(-1, 1)
        return y.reshape(g.batch, g.out_channels, g.out_height, g.out_width)
    y = xp.empty((g.batch, g.out_channels, g.out_height, g.out_width), dtype=dtype)
    per_image = (g.columns + g.out_channels) * g.pixels * g.itemsize
    for part in _chunks(backend, g, per_image):
        y2 = xp.matmul(w2, _im2col_columns(backend, x[part], g))  # (C_out, n H W)
        y2 = y2.reshape(g.out_channels, -1, g.out_height, g.out_width)
        _scatter_nchw(backend, y2, b, y[part])
    return y


def _scatter_nchw(backend: ArrayBackend, y2: Array, b: Array | None, y: Array) -> None:
    """``y[...] = y2`` (C_out, n, H, W) as NCHW, plus the bias, over the channels."""

    def scatter(part: slice) -> None:
        bias = None if b is None else b[part]
        _add_bias(backend.xp, y2[part].transpose(1, 0, 2, 3), bias, y[:, part])

    parts = backend._split(y2.shape[0], y2.size)
    backend._parallel([functools.partial(scatter, part) for part in parts])


def _col2im(
    backend: ArrayBackend, dwindows: Array, g: ConvGeometry, dx: Array
) -> Array:
    """``dx[...] =`` window gradients ``(n, C, kH, kW, H_out, W_out)`` summed.

    Only the part of each tap that meets the input is added: no padded
    buffer, no crop. The images are split over ``backend``'s threads.
    """

    def add(part: slice) -> None:
        target = dx[part]
        target[...] = 0
        for i, j, out_index, in_index in _tap_regions(g):
            target[in_index] += dwindows[part, :, i, j][out_index]

    parts = backend._split(dx.shape[0], dwindows.size)
    backend._parallel([functools.partial(add, part) for part in parts])
    return dx


def _short_rows(g: ConvGeometry) -> bool:
    """Whether im2col goes by rows (see :data:`SHORT_ROWS`)."""
    return g.stride[0] == 1 and g.out_width <= SHORT_ROWS and g.kernel[0] > 1


def _col2im_by_rows(
    backend: ArrayBackend, dcolumns: Array, g: ConvGeometry, dx: Array
) -> Array:
    """:func:`_col2im` for short output rows, from ``(C, kH, kW, n, H_out, W_out)``.

    First the kernel rows: each ``(c, i, j, n)`` window adds ``H_out W_out``
    contiguous values into rows ``(C, kW, n, H_padded, W_out)``; then the
    kernel columns, clipped to the input. Long inner loops, as the gather's.
    """
    xp = backend.xp
    n = dx.shape[0]
    hp = g.padded_shape[2]
    ph, pw = g.padding

    def add(part: slice) -> None:
        rows = xp.zeros(
            (part.stop - part.start, g.kernel[1], n, hp, g.out_width), dx.dtype
        )
        for i in range(g.kernel[0]):
            rows[:, :, :, i : i + g.out_height] += dcolumns[part, i]
        target = dx[:, part]
        target[...] = 0
        for j in range(g.kernel[1]):
            cols = _clipped(j, pw, g.stride[1], g.out_width, g.width)
            if cols is None:
                continue
            source = rows[:, j, :, ph : ph + g.height, cols[0]]
            target[:, :, :, cols[1]] += source.transpose(1, 0, 2, 3)

    parts = backend._split(g.in_channels, dcolumns.size)
    backend._parallel([functools.partial(add, part) for part in parts])
    return dx


def _im2col_backward(
    backend: ArrayBackend, dout: Array, x: Array, w: Array, g: ConvGeometry
) -> tuple[Array, Array]:
    xp = backend.xp
    w2 = w.reshape(g.out_channels, g.columns)
    dtype = xp.result_type(dout.dtype, x.dtype, w.dtype)
    if g.pointwise:
        dout3 = dout.reshape(g.batch, g.out_channels, g.pixels)
        pixels = _strided_input(x, g).reshape(g.batch, g.in_channels, g.pixels)
        dw = xp.matmul(dout3, pixels.transpose(0, 2, 1)).sum(axis=0)
        dpixels = xp.matmul(w2.T, dout3)
        if g.stride == (1, 1):
            dx = dpixels.reshape(g.batch, g.in_channels, g.height, g.width)
        else:
            dx = xp.zeros((g.batch, g.in_channels, g.height, g.width), dpixels.dtype)
            _strided_input(dx, g)[...] = dpixels.reshape(
                g.batch, g.in_channels, g.out_height, g.out_width
            )
        return dx, dw.reshape(w.shape)
    dx = xp.empty((g.batch, g.in_channels, g.height, g.width), dtype=dtype)
    dw = None
    per_image = (2 * g.columns + g.out_channels) * g.pixels * g.itemsize
    for part in _chunks(backend, g, per_image):
        columns = _im2col_columns(backend, x[part], g)
        dout2 = xp.ascontiguousarray(dout[part].transpose(1, 0, 2, 3)).reshape(
            g.out_channels, -1
        )
        term = xp.matmul(dout2, columns.T)  # one GEMM reducing over the chunk
        del columns
        if dw is None:
            dw = term
        else:
            dw += term
        dcolumns = xp.matmul(w2.T, dout2).reshape(
            g.in_channels, *g.kernel, -1, g.out_height, g.out_width
        )
        if _compiled(backend, dcolumns, dx):
            add = functools.partial(
                fused.add_windows, dcolumns, g.padding, g.stride, dx[part]
            )
            parts = backend._split(g.in_channels, dcolumns.size)
            backend._parallel([functools.partial(add, p) for p in parts])
        elif _short_rows(g):
            _col2im_by_rows(backend, dcolumns, g, dx[part])
        else:
            _col2im(backend, dcolumns.transpose(3, 0, 1, 2, 4, 5), g, dx[part])
    if dw is None:  # an empty batch
        dw = xp.zeros((g.out_channels, g.columns), dtype=dtype)
    return dx, dw.reshape(w.shape)


def _im2col_workspace(g: ConvGeometry) -> int:
    # Backward holds the columns, then their gradient, each C kH kW N H_out W_out.
    if g.pointwise:
        return g.batch * (g.in_channels + g.out_channels) * g.pixels * g.itemsize
    return g.batch * g.columns * g.pixels * g.itemsize


def _offsets_forward(
    backend: ArrayBackend, x: Array, w: Array, b: Array | None, g: ConvGeometry
) -> Array:
    xp = backend.xp
    x_padded = backend._pad(x, g.padding)
    size_out = (g.out_height, g.out_width)
    w_offsets = xp.ascontiguousarray(w.transpose(2, 3, 0, 1))  # (kH, kW, C_out, C)
    dtype = xp.result_type(x.dtype, w.dtype)
    y = xp.zeros((g.batch, g.out_channels, g.pixels), dtype=dtype)
    term = None
    for i in range(g.kernel[0]):
        for j in range(g.kernel[1]):
            patch = x_padded[_offset_index(i, j, g.stride, size_out)].reshape(
                g.batch, g.in_channels, g.pixels
            )
            term = xp.matmul(w_offsets[i, j], patch, out=term)
            y += term
    if b is not None:
        y += b.reshape(-1, 1)
    return y.reshape(g.batch, g.out_channels, g.out_height, g.out_width)


def _offsets_backward(
    backend: ArrayBackend, dout: Array, x: Array, w: Array, g: ConvGeometry
) -> tuple[Array, Array]:
    xp = backend.xp
    x_padded = backend._pad(x, g.padding)
    size_out = (g.out_height, g.out_width)
    dout3 = xp.ascontiguousarray(dout).reshape(g.batch, g.out_channels, g.pixels)
    w_offsets = xp.ascontiguousarray(w.transpose(2, 3, 0, 1))  # (kH, kW, C_out, C)
    dw_offsets = xp.empty_like(w_offsets)
    for i in range(g.kernel[0]):
        for j in range(g.kernel[1]):
            index = _offset_index(i, j, g.stride, size_out)
            patch = x_padded[index].reshape(g.batch, g.in_channels, g.pixels)
            dw_offsets[i, j] = xp.matmul(dout3, patch.transpose(0, 2, 1)).sum(axis=0)
    dx = xp.zeros((g.batch, g.in_channels, g.height, g.width), dtype=dout3.dtype)
    for i, j, out_index, in_index in _tap_regions(g):
        dpatch = xp.matmul(w_offsets[i, j].T, dout3).reshape(
            g.batch, g.in_channels, g.out_height, g.out_width
        )
        dx[in_index] += dpatch[out_index]
    return dx, xp.ascontiguousarray(dw_offsets.transpose(2, 3, 0, 1))


def _offsets_workspace(g: ConvGeometry) -> int:
    return g.batch * (g.in_channels + g.out_channels) * g.pixels * g.itemsize


def _winograd_supports(g: ConvGeometry) -> bool:
    return g.kernel == (3, 3) and g.stride == (1, 1)


#: Automatic selection uses a Winograd tiling from this many input and output
#: channels on. Below 8, the transforms cost more than the multiplies they
#: save (a 3 to 64 channel first layer runs 2.5x faster as im2col). F(4x4)
#: waits for 32: its float32 error, about 30 times the direct sum's at worst
#: (amplification 114 against 4), stays within the suite's agreement
#: tolerance (2 u n sum|terms|, n = 9 C + 1) by a factor of 3 from 32
#: channels on in random trials, but exceeded it once in 200 at 9 channels;
#: F(2x2) stays 30 times below it.
WINOGRAD_MIN_CHANNELS = {"winograd": 32, "winograd2x2": 8}
#: ... and for outputs of at least this many tiles per side (F(4x4) on a 7x7
#: output computes 8x8 and loses to im2col; F(2x2) ties it).
WINOGRAD_MIN_TILES = 2


def _winograd_algorithm(name: str, tiling: winograd.WinogradTiling) -> ConvAlgorithm:
    def forward(backend, x, w, b, g):
        chunk = (backend.conv_chunk_bytes, backend.conv_chunk_min_columns)
        return winograd.conv2d_forward(backend, x, w, b, g, tiling, chunk)

    def backward(backend, dout, x, w, g):
        chunk = (backend.conv_chunk_bytes, backend.conv_chunk_min_columns)
        return winograd.conv2d_backward(backend, dout, x, w, g, tiling, chunk)

    def workspace(g: ConvGeometry) -> int:
        th, tw = winograd.tile_counts(g.out_height, g.out_width, tiling)
        tiles = g.batch * th * tw
        alpha2 = tiling.alpha**2
        channels = g.in_channels + g.out_channels
        # Gathered tiles and V (input side), M and the output tiles, U.
        elements = tiles * (2 * alpha2 * channels + tiling.m**2 * channels)
        elements += alpha2 * g.in_channels * g.out_channels
        return elements * g.itemsize

    def worthwhile(g: ConvGeometry) -> bool:
        size = WINOGRAD_MIN_TILES * tiling.m
        return (
            min(g.in_channels, g.out_channels) >= WINOGRAD_MIN_CHANNELS[name]
            and min(g.out_height, g.out_width) >= size
        )

    return ConvAlgorithm(
        name, forward, backward, _winograd_supports, workspace, worthwhile
    )


#: With numba, the im2col forward sums a stride-1 conv directly for at most
#: this many output channels: LeNet's two layers (1 -> 6 and 6 -> 16
#: channels, 5x5, batch 64) run 1.8 and 2 times as fast so (one thread).
DIRECT_MAX_OUT_CHANNELS = 16


def _compiled(backend: ArrayBackend, *arrays: Array) -> bool:
    """Whether ``backend`` runs :mod:`backends.fused` kernels on ``arrays``."""
    return (
        backend.accelerator == "numba"
        and backend.xp is np
        and fused.same_float_dtype(*arrays)
    )


def _direct_applies(
    backend: ArrayBackend, x: Array, w: Array, b: Array | None, g: ConvGeometry
) -> bool:
    """Whether the im2col forward runs as :func:`backends.fused.direct_conv`."""
    return (
        _compiled(backend, x, w, *(() if b is None else (b,)))
        and g.stride == (1, 1)
        and g.out_channels <= DIRECT_MAX_OUT_CHANNELS
    )


def _direct_forward(
    backend: ArrayBackend, x: Array, w: Array, b: Array | None, g: ConvGeometry
) -> Array:
    dtype = np.result_type(x.dtype, w.dtype)
    x_padded = np.ascontiguousarray(backend._pad(x, g.padding), dtype=dtype)
    bias = np.zeros(g.out_channels, dtype) if b is None else b
    w_tiles, bias = fused.direct_weights(w.astype(dtype), bias.astype(dtype))
    y = np.empty((g.batch, g.out_channels, g.out_height, g.out_width), dtype)
    products = y.size * g.columns
    calls = [
        functools.partial(fused.direct_conv, x_padded, w_tiles, bias, y, part)
        for part in backend._split(g.batch, products)
    ]
    backend._parallel(calls, products)
    return y


register_conv_algorithm(
    ConvAlgorithm(
        "im2col", _im2col_forward, _im2col_backward, _always, _im2col_workspace
    )
)
register_conv_algorithm(
    ConvAlgorithm(
        "offsets", _offsets_forward, _offsets_backward, _always, _offsets_workspace
    )
)
#: F(4x4, 3x3): 2.25 multiplies per output instead of 9 (float32 error about
#: 1e2 times the direct sum's, see :mod:`backends.winograd`).
register_conv_algorithm(_winograd_algorithm("winograd", winograd.F4X4_3X3))
#: F(2x2, 3x3): 4 multiplies per output, every transform entry 0 or +-1.
register_conv_algorithm(_winograd_algorithm("winograd2x2", winograd.F2X2_3X3))


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------


def _axis_index(ndim: int, axis: int, index: Any) -> tuple[Any, ...]:
    """A tuple index applying ``index`` along ``axis`` of an ``ndim``-d array."""
    return (slice(None),) * axis + (index,) + (slice(None),) * (ndim - axis - 1)


class _Unavailable:
    """Stands in for an array namespace that cannot be used here."""

    def __init__(self, reason: str) -> None:
        self._reason = reason

    def __getattr__(self, attribute: str) -> Any:
        raise RuntimeError(f"backend unavailable: {self._reason}")


# ---------------------------------------------------------------------------
# The backend
# ---------------------------------------------------------------------------


class ArrayBackend:
    """The contract's operations over the array namespace ``xp``.

    Attributes that tune it (instance attributes, safe to change):

    * ``conv_algorithm``: ``"auto"`` (default) or the name of a registered conv
      algorithm to use for every shape;
    * ``conv_preference``: the order in which ``"auto"`` tries the algorithms
      (each only where ``worthwhile``, unless none is);
    * ``conv_workspace_limit``: the most extra bytes ``"auto"`` lets an
      algorithm use; when every algorithm needs more, the one needing least wins;
    * ``conv_chunk_bytes``, ``conv_chunk_min_columns``: the workspace of one
      batch chunk of im2col and Winograd, and the fewest GEMM columns a chunk
      keeps (``conv_chunk_bytes = None``: the whole batch at once);
    * ``threads``: threads for what BLAS does not run (the optimizer passes,
      the copies of the conv algorithms), ``None`` (default) for as many as
      NumPy's BLAS uses now (:func:`backends.blocked.blas_threads`);
      ``parallel_min_elements``: copies smaller than this stay on one thread;
    * ``optimizer_block_bytes``: bytes of each array in one optimizer block;
    * ``accelerator``: ``"numba"`` runs the optimizer updates and im2col's
      copies (and its forward for few output channels) as the compiled
      kernels of :mod:`backends.fused` (the default on NumPy where numba is
      installed, unless ``NNSPEC_NUMPY_ACCEL=0``), ``None`` the plain NumPy
      path. The optimizer updates give the same bits either way.
    """

    name: str = "array"
    device: str = "cpu"
    dtypes: tuple[str, ...] = ("float32", "float64")
    unavailable_reason: str | None = None
    #: Whether the optimizer states carry scratch rows (the ufunc updates).
    scratch_buffers: bool = True

    def __init__(self, xp: Any) -> None:
        self.xp = xp
        self.conv_algorithms: dict[str, ConvAlgorithm] = dict(CONV_ALGORITHMS)
        self.conv_algorithm = "auto"
        self.accelerator: str | None = fused.default_accelerator() if xp is np else None
        self.conv_preference: tuple[str, ...] = (
            "winograd",
            "winograd2x2",
            "im2col",
            "offsets",
        )
        self.conv_workspace_limit = 1 << 30
        self.conv_chunk_bytes: int | None = CONV_CHUNK_BYTES
        self.conv_chunk_min_columns = CONV_CHUNK_MIN_COLUMNS
        self.threads: int | None = None
        self.parallel_min_elements = PARALLEL_MIN_ELEMENTS
        self.optimizer_block_bytes = blocked.BLOCK_BYTES

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} device={self.device!r}>"

    # -- moving arrays ------------------------------------------------------

    def asarray(self, a: np.ndarray, dtype: str) -> Array:
        """A new native array holding ``a`` as ``dtype`` (never a view of ``a``)."""
        return self.xp.array(a, dtype=dtype, copy=True)

    def to_numpy(self, a: Array) -> np.ndarray:
        """A new host array holding ``a`` (never a view of ``a``)."""
        return np.array(a, copy=True)

    def synchronize(self) -> None:
        """Wait for queued device work: nothing to wait for on the CPU."""

    def _from_host(self, a: np.ndarray) -> Array:
        return self.xp.asarray(a)

    def _as_strided(self, a: Array, shape: tuple[int, ...], strides: tuple[int, ...]):
        return np.lib.stride_tricks.as_strided(
            a, shape=shape, strides=strides, writeable=False
        )

    def _uniform(self, seed: int, shape: tuple[int, ...]) -> Array:
        """``U[0, 1)`` draws (float64) from a generator seeded by ``seed``."""
        return np.random.default_rng(seed).random(shape)

    # -- argument checks ------------------------------------------------------

    def _float(self, name: str, value: Any, ndim: int | Sequence[int] | None = None):
        """``value`` as a native floating-point array (the shared checks)."""
        require_given(name, value)
        array = self.xp.asarray(value)
        require_float_kind(name, array.dtype.kind, array.dtype)
        if ndim is not None:
            require_ndim(name, array.shape, ndim)
        require_array_fits(name, array.shape, array.dtype.itemsize)
        return array

    def _all(self, condition: Array) -> bool:
        """Whether ``condition`` holds everywhere (one read-back on a GPU)."""
        return bool(self.xp.all(condition))

    def _upstream(self, dout: Any, shape: tuple[int, ...]) -> Array:
        dout = self._float("dout", dout)
        require_shape("dout", dout, shape)
        return dout

    def _scalar_upstream(self, dout: Any, dtype: Any) -> Array:
        """A loss's upstream gradient (a 0-d array or a float) as 0-d ``dtype``."""
        return self._float("dout", dout, ndim=0).astype(dtype, copy=False)

    def _scalar(self, value: Any, dtype: Any) -> Array:
        return self.xp.asarray(value, dtype=dtype)

    # -- activations --------------------------------------------------------

    def relu(self, x: Array) -> Array:
        x = self._float("x", x)
        return self.xp.maximum(x, 0)

    def relu_backward(self, dout: Array, x: Array) -> tuple[Array]:
        x = self._float("x", x)
        dout = self._upstream(dout, x.shape)
        return (self.xp.where(x > 0, dout, 0),)

    def leaky_relu(self, x: Array, *, alpha: float = 0.01) -> Array:
        x = self._float("x", x)
        alpha = require_non_negative("alpha", alpha)
        return self.xp.where(x > 0, x, x * alpha)

    def leaky_relu_backward(
        self, dout: Array, x: Array, *, alpha: float = 0.01
    ) -> tuple[Array]:
        x = self._float("x", x)
        alpha = require_non_negative("alpha", alpha)
        dout = self._upstream(dout, x.shape)
        return (self.xp.where(x > 0, dout, dout * alpha),)

    def _prelu_slope(self, x: Array, alpha: Any) -> Array:
        alpha = self._float("alpha", alpha, ndim=1)
        prelu_alpha_shape(x.shape, alpha.shape)
        if alpha.shape == (1,):
            return alpha.reshape((1,) * x.ndim)
        return alpha.reshape((1, -1) + (1,) * (x.ndim - 2))

    def prelu(self, x: Array, alpha: Array) -> Array:
        x = self._float("x", x)
        slope = self._prelu_slope(x, alpha)
        return self.xp.where(x > 0, x, x * slope)

    def prelu_backward(
        self, dout: Array, x: Array, alpha: Array
    ) -> tuple[Array, Array]:
        xp = self.xp
        x = self._float("x", x)
        slope = self._prelu_slope(x, alpha)
        dout = self._upstream(dout, x.shape)
        positive = x > 0
        dx = xp.where(positive, dout, dout * slope)
        dslope = xp.where(positive, 0, dout * x)
        summed = tuple(axis for axis in range(x.ndim) if slope.shape[axis] == 1)
        return dx, dslope.sum(axis=summed).reshape(-1)

    def elu(self, x: Array, *, alpha: float = 1.0) -> Array:
        xp = self.xp
        x = self._float("x", x)
        alpha = require_non_negative("alpha", alpha)
        return xp.where(x > 0, x, xp.expm1(xp.minimum(x, 0)) * alpha)

    def elu_backward(
        self, dout: Array, x: Array, *, alpha: float = 1.0
    ) -> tuple[Array]:
        xp = self.xp
        x = self._float("x", x)
        alpha = require_non_negative("alpha", alpha)
        dout = self._upstream(dout, x.shape)
        return (xp.where(x > 0, dout, dout * (xp.exp(xp.minimum(x, 0)) * alpha)),)

    def selu(self, x: Array) -> Array:
        xp = self.xp
        x = self._float("x", x)
        negative = xp.expm1(xp.minimum(x, 0)) * (SELU_SCALE * SELU_ALPHA)
        return xp.where(x > 0, x * SELU_SCALE, negative)

    def selu_backward(self, dout: Array, x: Array) -> tuple[Array]:
        xp = self.xp
        x = self._float("x", x)
        dout = self._upstream(dout, x.shape)
        negative = xp.exp(xp.minimum(x, 0)) * (SELU_SCALE * SELU_ALPHA)
        return (dout * xp.where(x > 0, SELU_SCALE, negative),)

    def _sigmoid(self, x: Array) -> Array:
        # Both branches written with e = exp(-|x|) in (0, 1]: nothing overflows.
        xp = self.xp
        e = xp.exp(-xp.abs(x))
        reciprocal = 1 / (1 + e)
        return xp.where(x >= 0, reciprocal, e * reciprocal)

    def sigmoid(self, x: Array) -> Array:
        return self._sigmoid(self._float("x", x))

    def sigmoid_backward(self, dout: Array, x: Array) -> tuple[Array]:
        x = self._float("x", x)
        dout = self._upstream(dout, x.shape)
        s = self._sigmoid(x)
        return (dout * s * (1 - s),)

    def tanh(self, x: Array) -> Array:
        return self.xp.tanh(self._float("x", x))

    def tanh_backward(self, dout: Array, x: Array) -> tuple[Array]:
        x = self._float("x", x)
        dout = self._upstream(dout, x.shape)
        t = self.xp.tanh(x)
        return (dout * (1 - t * t),)

    def _softplus(self, x: Array) -> Array:
        xp = self.xp
        return xp.log1p(xp.exp(-xp.abs(x))) + xp.maximum(x, 0)

    def softplus(self, x: Array) -> Array:
        return self._softplus(self._float("x", x))

    def softplus_backward(self, dout: Array, x: Array) -> tuple[Array]:
        x = self._float("x", x)
        dout = self._upstream(dout, x.shape)
        return (dout * self._sigmoid(x),)

    def abs_rectify(self, x: Array) -> Array:
        return self.xp.abs(self._float("x", x))

    def abs_rectify_backward(self, dout: Array, x: Array) -> tuple[Array]:
        x = self._float("x", x)
        dout = self._upstream(dout, x.shape)
        return (dout * self.xp.sign(x),)

    # -- linear ---------------------------------------------------------------

    def _check_linear(self, x: Any, w: Any, b: Any) -> tuple[Array, Array, Array]:
        x = self._float("x", x, ndim=2)
        w = self._float("w", w, ndim=2)
        b = self._float("b", b, ndim=1)
        linear_shapes(x.shape, w.shape, b.shape, x.dtype.itemsize)
        return x, w, b

    def linear(self, x: Array, w: Array, b: Array) -> Array:
        x, w, b = self._check_linear(x, w, b)
        y = x @ w.T
        y += b
        return y

    def linear_backward(
        self, dout: Array, x: Array, w: Array, b: Array
    ) -> tuple[Array, Array, Array]:
        x, w, b = self._check_linear(x, w, b)
        dout = self._upstream(dout, (x.shape[0], w.shape[0]))
        return dout @ w, dout.T @ x, dout.sum(axis=0)

    # -- conv2d ---------------------------------------------------------------

    def _check_conv2d(
        self, x: Any, w: Any, b: Any, stride: Any, padding: Any
    ) -> tuple[Array, Array, Array, ConvGeometry]:
        x = self._float("x", x, ndim=4)
        w = self._float("w", w, ndim=4)
        b = self._float("b", b, ndim=1)
        stride, padding, (out_height, out_width) = conv2d_geometry(
            x.shape, w.shape, b.shape, stride, padding, x.dtype.itemsize
        )
        geometry = ConvGeometry(
            batch=int(x.shape[0]),
            in_channels=int(x.shape[1]),
            out_channels=int(w.shape[0]),
            height=int(x.shape[2]),
            width=int(x.shape[3]),
            kernel=(int(w.shape[2]), int(w.shape[3])),
            stride=stride,
            padding=padding,
            out_height=out_height,
            out_width=out_width,
            itemsize=int(np.result_type(x.dtype, w.dtype).itemsize),
        )
        return x, w, b, geometry

    def select_conv_algorithm(self, geometry: ConvGeometry) -> ConvAlgorithm:
        """The conv algorithm used for ``geometry`` (see the class docstring)."""
        if self.conv_algorithm != "auto":
            algorithm = self.conv_algorithms.get(self.conv_algorithm)
            if algorithm is None:
                raise ValueError(
                    f"conv_algorithm must be 'auto' or one of "
                    f"{sorted(self.conv_algorithms)}, got {self.conv_algorithm!r}"
                )
            if not algorithm.supports(geometry):
                raise ValueError(
                    f"conv algorithm {algorithm.name!r} does not support {geometry}"
                )
            return algorithm
        candidates = [
            self.conv_algorithms[name]
            for name in self.conv_preference
            if self.conv_algorithms[name].supports(geometry)
        ]
        if not candidates:
            raise ValueError(f"no conv algorithm supports {geometry}")
        # Worthwhile ones first, each group in preference order.
        ranked = [a for a in candidates if a.worthwhile(geometry)]
        ranked += [a for a in candidates if not a.worthwhile(geometry)]
        for algorithm in ranked:
            if algorithm.workspace_bytes(geometry) <= self.conv_workspace_limit:
                return algorithm
        least = min(ranked, key=lambda algorithm: algorithm.workspace_bytes(geometry))
        require_fits(
            "x",
            f"the smallest conv2d workspace ({least.name})",
            least.workspace_bytes(geometry),
        )
        return least

    def _pad(self, x: Array, padding: tuple[int, int], value: float = 0.0) -> Array:
        """``x`` (NCHW) with ``padding`` rows and columns of ``value`` on both sides."""
        ph, pw = padding
        if ph == 0 and pw == 0:
            return x
        n, c, h, w = x.shape
        padded = self.xp.full((n, c, h + 2 * ph, w + 2 * pw), value, dtype=x.dtype)

        def copy(part: slice) -> None:
            padded[part, :, ph : ph + h, pw : pw + w] = x[part]

        parts = self._split(n, padded.size)
        self._parallel([functools.partial(copy, part) for part in parts])
        return padded

    # -- parallel copies --------------------------------------------------------

    def _split(self, length: int, elements: int) -> list[slice]:
        """An axis of ``length`` cut for :meth:`_parallel` (``elements``: the work).

        One slice unless this is NumPy, more than one thread is allowed and
        the work reaches ``parallel_min_elements``; else twice as many
        slices as threads, so that a thread slowed by a busy core takes fewer.
        """
        if self.xp is not np or elements < self.parallel_min_elements:
            return [slice(0, length)]
        threads = self.thread_count()
        if threads <= 1:
            return [slice(0, length)]
        return blocked.split(length, 2 * threads)

    def _parallel(self, calls: Sequence[Callable[[], object]], elements=None) -> None:
        """Run independent NumPy copies or ufunc passes on :meth:`thread_count` threads.

        (Never BLAS calls: BLAS has threads of its own.) With ``elements``
        below ``parallel_min_elements``, or on another array library, in
        order on this thread.
        """
        small = elements is not None and elements < self.parallel_min_elements
        if self.xp is not np or small or len(calls) < 2:
            for call in calls:
                call()
            return
        blocked.parallel(calls, self.thread_count())

    @staticmethod
    def _crop(x_padded: Array, padding: tuple[int, int], height: int, width: int):
        ph, pw = padding
        return x_padded[:, :, ph : ph + height, pw : pw + width]

    def conv2d(
        self, x: Array, w: Array, b: Array, *, stride: Any = 1, padding: Any = 0
    ) -> Array:
        x, w, b, geometry = self._check_conv2d(x, w, b, stride, padding)
        if _empty_conv(geometry):  # every sum is empty: the bias alone
            shape = (geometry.batch, geometry.out_channels, *geometry.pixels_shape)
            dtype = self.xp.result_type(x.dtype, w.dtype, b.dtype)
            y = self.xp.zeros(shape, dtype=dtype)
            y += b.reshape(1, -1, 1, 1)
            return y
        algorithm = self.select_conv_algorithm(geometry)
        return algorithm.forward(self, x, w, b, geometry)

    def conv2d_backward(
        self,
        dout: Array,
        x: Array,
        w: Array,
        b: Array,
        *,
        stride: Any = 1,
        padding: Any = 0,
    ) -> tuple[Array, Array, Array]:
        x, w, b, g = self._check_conv2d(x, w, b, stride, padding)
        dout = self._upstream(
            dout, (g.batch, g.out_channels, g.out_height, g.out_width)
        )
        if _empty_conv(g):
            dtype = self.xp.result_type(dout.dtype, x.dtype, w.dtype)
            dx = self.xp.zeros(x.shape, dtype=dtype)
            dw = self.xp.zeros(w.shape, dtype=dtype)
        else:
            algorithm = self.select_conv_algorithm(g)
            dx, dw = algorithm.backward(self, dout, x, w, g)
        return dx, dw, dout.sum(axis=(0, 2, 3))

    # -- pooling --------------------------------------------------------------

    def _check_pool(
        self, x: Any, kernel_size: Any, stride: Any, padding: Any
    ) -> tuple[
        Array, tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int]
    ]:
        x = self._float("x", x, ndim=4)
        geometry = pool2d_geometry(x.shape, kernel_size, stride, padding, x.itemsize)
        return (x, *geometry)

    def _check_max_pool(
        self, x: Any, kernel_size: Any, stride: Any, padding: Any
    ) -> tuple[
        Array, tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int]
    ]:
        x = self._float("x", x, ndim=4)
        geometry = max_pool2d_geometry(
            x.shape, kernel_size, stride, padding, x.itemsize
        )
        return (x, *geometry)

    def max_pool2d(
        self, x: Array, *, kernel_size: Any, stride: Any = None, padding: Any = 0
    ) -> Array:
        x, kernel, stride, padding, size_out = self._check_max_pool(
            x, kernel_size, stride, padding
        )
        x_padded = self._pad(x, padding, value=-math.inf)
        y = x_padded[_offset_index(0, 0, stride, size_out)].copy()
        for i in range(kernel[0]):
            for j in range(kernel[1]):
                if i or j:
                    window = x_padded[_offset_index(i, j, stride, size_out)]
                    self.xp.maximum(y, window, out=y)
        return y

    def max_pool2d_backward(
        self,
        dout: Array,
        x: Array,
        *,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
    ) -> tuple[Array]:
        xp = self.xp
        x, kernel, stride, padding, size_out = self._check_max_pool(
            x, kernel_size, stride, padding
        )
        dout = self._upstream(dout, (*x.shape[:2], *size_out))
        x_padded = self._pad(x, padding, value=-math.inf)
        # The first maximum in row-major order: later offsets win only if larger.
        best = x_padded[_offset_index(0, 0, stride, size_out)].copy()
        winner = xp.zeros(best.shape, dtype=xp.int32)
        offsets = [(i, j) for i in range(kernel[0]) for j in range(kernel[1])]
        for k, (i, j) in enumerate(offsets[1:], start=1):
            window = x_padded[_offset_index(i, j, stride, size_out)]
            larger = window > best
            xp.copyto(best, window, where=larger)
            xp.copyto(winner, k, where=larger)
        del best
        dx_padded = xp.zeros(x_padded.shape, dtype=dout.dtype)
        for k, (i, j) in enumerate(offsets):
            dx_padded[_offset_index(i, j, stride, size_out)] += xp.where(
                winner == k, dout, 0
            )
        return (xp.ascontiguousarray(self._crop(dx_padded, padding, *x.shape[2:])),)

    def avg_pool2d(self, x: Array, *, kernel_size: Any, stride: Any = None) -> Array:
        x, kernel, stride, _, size_out = self._check_pool(x, kernel_size, stride, 0)
        y = x[_offset_index(0, 0, stride, size_out)].copy()
        for i in range(kernel[0]):
            for j in range(kernel[1]):
                if i or j:
                    y += x[_offset_index(i, j, stride, size_out)]
        y /= kernel[0] * kernel[1]
        return y

    def avg_pool2d_backward(
        self, dout: Array, x: Array, *, kernel_size: Any, stride: Any = None
    ) -> tuple[Array]:
        x, kernel, stride, _, size_out = self._check_pool(x, kernel_size, stride, 0)
        dout = self._upstream(dout, (*x.shape[:2], *size_out))
        share = dout / (kernel[0] * kernel[1])
        dx = self.xp.zeros(x.shape, dtype=dout.dtype)
        for i in range(kernel[0]):
            for j in range(kernel[1]):
                dx[_offset_index(i, j, stride, size_out)] += share
        return (dx,)

    # -- batch norm -----------------------------------------------------------

    def _check_batch_norm(
        self,
        x: Any,
        gamma: Any,
        beta: Any,
        running_mean: Any,
        running_var: Any,
        training: Any,
        momentum: float,
        eps: float,
    ) -> tuple[Array, ...]:
        x = self._float("x", x, ndim=(2, 4))
        params = [
            self._float(name, value)
            for name, value in zip(
                BATCH_NORM_PARAMETERS,
                (gamma, beta, running_mean, running_var),
                strict=True,
            )
        ]
        batch_norm_hyper(x.shape, [p.shape for p in params], training, momentum, eps)
        require_non_negative_values("running_var", self._all(params[3] >= 0))
        return (x, *params)

    @staticmethod
    def _channel_axes(x: Array) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The reduced axes and the broadcast shape of a per-channel vector."""
        if x.ndim == 2:
            return (0,), (1, x.shape[1])
        return (0, 2, 3), (1, x.shape[1], 1, 1)

    def batch_norm(
        self,
        x: Array,
        gamma: Array,
        beta: Array,
        running_mean: Array,
        running_var: Array,
        *,
        training: bool,
        momentum: float = 0.1,
        eps: float = 1e-5,
    ) -> tuple[Array, Array, Array]:
        xp = self.xp
        x, gamma, beta, running_mean, running_var = self._check_batch_norm(
            x, gamma, beta, running_mean, running_var, training, momentum, eps
        )
        axes, shape = self._channel_axes(x)
        if not training:
            scale = gamma / xp.sqrt(running_var + eps)
            y = x - running_mean.reshape(shape)
            y *= scale.reshape(shape)
            y += beta.reshape(shape)
            return y, running_mean.copy(), running_var.copy()
        count = x.size // x.shape[1]
        mean = x.mean(axis=axes)
        y = x - mean.reshape(shape)
        var = xp.square(y).mean(axis=axes)
        y *= (gamma / xp.sqrt(var + eps)).reshape(shape)
        y += beta.reshape(shape)
        new_mean = running_mean * (1 - momentum) + mean * momentum
        new_var = running_var * (1 - momentum) + var * (momentum * count / (count - 1))
        return y, new_mean, new_var

    def batch_norm_backward(
        self,
        dout: Array,
        x: Array,
        gamma: Array,
        beta: Array,
        running_mean: Array,
        running_var: Array,
        *,
        training: bool,
        momentum: float = 0.1,
        eps: float = 1e-5,
    ) -> tuple[Array, Array, Array]:
        xp = self.xp
        x, gamma, beta, running_mean, running_var = self._check_batch_norm(
            x, gamma, beta, running_mean, running_var, training, momentum, eps
        )
        dout = self._upstream(dout, x.shape)
        axes, shape = self._channel_axes(x)
        if training:
            count = x.size // x.shape[1]
            mean = x.mean(axis=axes)
            x_hat = x - mean.reshape(shape)
            inv_std = 1 / xp.sqrt(xp.square(x_hat).mean(axis=axes) + eps)
        else:
            x_hat = x - running_mean.reshape(shape)
            inv_std = 1 / xp.sqrt(running_var + eps)
        x_hat *= inv_std.reshape(shape)
        dbeta = dout.sum(axis=axes)
        dgamma = (dout * x_hat).sum(axis=axes)
        scale = (gamma * inv_std).reshape(shape)
        if not training:
            return dout * scale, dgamma, dbeta
        # dx = gamma/sigma * (dy - mean(dy) - x_hat * mean(dy * x_hat))
        x_hat *= (dgamma / count).reshape(shape)
        dx = dout - (dbeta / count).reshape(shape)
        dx -= x_hat
        dx *= scale
        return dx, dgamma, dbeta

    # -- dropout --------------------------------------------------------------

    def dropout_mask(self, shape: Any, *, p: float, seed: int) -> Array:
        dims, p, seed = dropout_mask_hyper(shape, p, seed)
        return self._uniform(seed, dims) >= p

    def _check_dropout(self, x: Any, mask: Any, p: float, training: Any):
        x = self._float("x", x)
        require_given("mask", mask)
        mask = self.xp.asarray(mask)
        require_bool_kind("mask", mask.dtype.kind, mask.dtype)
        require_shape("mask", mask, x.shape)
        return (x, mask, *dropout_hyper(p, training))

    def dropout(self, x: Array, mask: Array, *, p: float, training: bool) -> Array:
        x, mask, p, training = self._check_dropout(x, mask, p, training)
        if not training:
            return x.copy()
        y = x * mask
        y /= 1 - p
        return y

    def dropout_backward(
        self, dout: Array, x: Array, mask: Array, *, p: float, training: bool
    ) -> tuple[Array, None]:
        x, mask, p, training = self._check_dropout(x, mask, p, training)
        dout = self._upstream(dout, x.shape)
        if not training:
            return dout.copy(), None
        dx = dout * mask
        dx /= 1 - p
        return dx, None

    # -- reshaping, softmax, maxout, upsampling ------------------------------

    def flatten(self, x: Array) -> Array:
        x = self._float("x", x)
        require_min_ndim("x", x.shape, 2)
        return x.reshape(x.shape[0], math.prod(x.shape[1:])).copy()

    def flatten_backward(self, dout: Array, x: Array) -> tuple[Array]:
        x = self._float("x", x)
        require_min_ndim("x", x.shape, 2)
        dout = self._upstream(dout, (x.shape[0], math.prod(x.shape[1:])))
        return (dout.reshape(x.shape).copy(),)

    def _check_axis(self, x: Any, axis: Any) -> tuple[Array, int]:
        x = self._float("x", x)
        return x, softmax_axis(x.shape, axis)

    def _log_softmax(self, x: Array, axis: int) -> Array:
        xp = self.xp
        shifted = x - x.max(axis=axis, keepdims=True)
        shifted -= xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
        return shifted

    def _softmax(self, x: Array, axis: int) -> Array:
        e = self.xp.exp(x - x.max(axis=axis, keepdims=True))
        e /= e.sum(axis=axis, keepdims=True)
        return e

    def softmax(self, x: Array, *, axis: int = -1) -> Array:
        return self._softmax(*self._check_axis(x, axis))

    def softmax_backward(
        self, dout: Array, x: Array, *, axis: int = -1
    ) -> tuple[Array]:
        x, axis = self._check_axis(x, axis)
        dout = self._upstream(dout, x.shape)
        s = self._softmax(x, axis)
        dx = dout - (dout * s).sum(axis=axis, keepdims=True)
        dx *= s
        return (dx,)

    def log_softmax(self, x: Array, *, axis: int = -1) -> Array:
        return self._log_softmax(*self._check_axis(x, axis))

    def log_softmax_backward(
        self, dout: Array, x: Array, *, axis: int = -1
    ) -> tuple[Array]:
        x, axis = self._check_axis(x, axis)
        dout = self._upstream(dout, x.shape)
        s = self.xp.exp(self._log_softmax(x, axis))
        s *= dout.sum(axis=axis, keepdims=True)
        return (dout - s,)

    def _check_maxout(self, x: Any, w: Any, b: Any) -> tuple[Array, Array, Array]:
        x = self._float("x", x, ndim=2)
        w = self._float("w", w, ndim=3)
        b = self._float("b", b, ndim=2)
        maxout_shapes(x.shape, w.shape, b.shape, x.dtype.itemsize)
        return x, w, b

    def _maxout_pieces(self, x: Array, w: Array, b: Array) -> Array:
        """``x @ w[k].T + b[k]`` for every piece: ``(k, N, D_out)``."""
        pieces = self.xp.matmul(x, w.transpose(0, 2, 1))
        pieces += b[:, None, :]
        return pieces

    def maxout(self, x: Array, w: Array, b: Array) -> Array:
        x, w, b = self._check_maxout(x, w, b)
        return self._maxout_pieces(x, w, b).max(axis=0)

    def maxout_backward(
        self, dout: Array, x: Array, w: Array, b: Array
    ) -> tuple[Array, Array, Array]:
        xp = self.xp
        x, w, b = self._check_maxout(x, w, b)
        dout = self._upstream(dout, (x.shape[0], w.shape[1]))
        winner = self._maxout_pieces(x, w, b).argmax(axis=0)  # the first maximum
        pieces = xp.arange(w.shape[0]).reshape(-1, 1, 1)
        dpieces = xp.where(winner[None] == pieces, dout[None], 0)  # (k, N, D_out)
        dx = xp.tensordot(dpieces, w, axes=([0, 2], [0, 1]))
        dw = xp.matmul(dpieces.transpose(0, 2, 1), x)
        return dx, dw, dpieces.sum(axis=1)

    def _check_upsample(self, x: Any, scale_factor: Any, mode: Any) -> Array:
        x = self._float("x", x, ndim=4)
        upsample2d_geometry(x.shape, scale_factor, mode, x.dtype.itemsize)
        return x

    @staticmethod
    def _bilinear_phases(scale: int):
        """For each phase ``r`` of output ``o = s k + r``: offset and weight.

        The half-pixel source of ``o`` is ``k + delta_r``, ``delta_r = (r + 1/2)/s
        - 1/2`` in ``(-1/2, 1/2)``: output ``k`` blends the edge-padded input at
        ``k + first`` and ``k + first + 1`` (indices into ``[x_0, x, x_{H-1}]``)
        with weights ``1 - weight`` and ``weight``. The edge padding implements
        the clamp of the source at 0 and of the upper neighbour at ``H - 1``.
        """
        for r in range(scale):
            delta = (r + 0.5) / scale - 0.5
            if delta >= 0:
                yield r, 1, delta
            else:
                yield r, 0, 1.0 + delta

    def _upsample_axis(self, x: Array, axis: int, scale: int) -> Array:
        """Bilinear (half-pixel) upsampling of ``x`` by ``scale`` along ``axis``."""
        xp = self.xp
        size, ndim = x.shape[axis], x.ndim
        extended = xp.concatenate(
            [
                x[_axis_index(ndim, axis, slice(0, 1))],
                x,
                x[_axis_index(ndim, axis, slice(size - 1, size))],
            ],
            axis=axis,
        )
        out = xp.empty((*x.shape[: axis + 1], scale, *x.shape[axis + 1 :]), x.dtype)
        for r, first, weight in self._bilinear_phases(scale):
            low = extended[_axis_index(ndim, axis, slice(first, first + size))]
            high = extended[_axis_index(ndim, axis, slice(first + 1, first + 1 + size))]
            target = out[_axis_index(ndim + 1, axis + 1, r)]
            xp.multiply(low, 1 - weight, out=target)
            target += high * weight
        return out.reshape((*x.shape[:axis], size * scale, *x.shape[axis + 1 :]))

    def _upsample_axis_backward(self, dout: Array, axis: int, scale: int) -> Array:
        """The transpose of :meth:`_upsample_axis`."""
        xp = self.xp
        size, ndim = dout.shape[axis] // scale, dout.ndim
        phases = dout.reshape(
            (*dout.shape[:axis], size, scale, *dout.shape[axis + 1 :])
        )
        extended_shape = (*dout.shape[:axis], size + 2, *dout.shape[axis + 1 :])
        dextended = xp.zeros(extended_shape, dtype=dout.dtype)
        for r, first, weight in self._bilinear_phases(scale):
            dphase = phases[_axis_index(ndim + 1, axis + 1, r)]
            dextended[_axis_index(ndim, axis, slice(first, first + size))] += dphase * (
                1 - weight
            )
            dextended[_axis_index(ndim, axis, slice(first + 1, first + 1 + size))] += (
                dphase * weight
            )
        dx = dextended[_axis_index(ndim, axis, slice(1, size + 1))].copy()
        dx[_axis_index(ndim, axis, slice(0, 1))] += dextended[
            _axis_index(ndim, axis, slice(0, 1))
        ]
        dx[_axis_index(ndim, axis, slice(size - 1, size))] += dextended[
            _axis_index(ndim, axis, slice(size + 1, size + 2))
        ]
        return dx

    def upsample2d(self, x: Array, *, scale_factor: int, mode: str) -> Array:
        x = self._check_upsample(x, scale_factor, mode)
        n, c, h, w = x.shape
        s = int(scale_factor)
        if mode == "nearest":
            repeated = self.xp.broadcast_to(
                x[:, :, :, None, :, None], (n, c, h, s, w, s)
            )
            return repeated.reshape(n, c, h * s, w * s)
        return self._upsample_axis(self._upsample_axis(x, 2, s), 3, s)

    def upsample2d_backward(
        self, dout: Array, x: Array, *, scale_factor: int, mode: str
    ) -> tuple[Array]:
        x = self._check_upsample(x, scale_factor, mode)
        n, c, h, w = x.shape
        s = int(scale_factor)
        dout = self._upstream(dout, (n, c, h * s, w * s))
        if mode == "nearest":
            return (dout.reshape(n, c, h, s, w, s).sum(axis=(3, 5)),)
        dx = self._upsample_axis_backward(
            self._upsample_axis_backward(dout, 3, s), 2, s
        )
        return (dx,)

    # -- losses ---------------------------------------------------------------

    def _batched(self, name: str, value: Any) -> Array:
        array = self._float(name, value)
        require_batch(name, array.shape)
        return array

    def _loss_pair(
        self, first_name: str, first: Any, second_name: str, second: Any
    ) -> tuple[Array, Array]:
        a = self._batched(first_name, first)
        b = self._float(second_name, second)
        require_shape(second_name, b, a.shape)
        return a, b

    def _scores_and_labels(self, name: str, scores: Any, labels: Any):
        z = self._float(name, scores, ndim=2)
        n, classes = require_scores(name, z.shape)
        require_given("labels", labels)
        y = self.xp.asarray(labels)
        require_labels_shape("labels", y.shape, n)
        require_integer_kind("labels", y.dtype.kind, y.dtype)
        require_labels_in_range("labels", self._all((y >= 0) & (y < classes)), classes)
        return z, y

    def mse_loss(self, pred: Array, target: Array) -> Array:
        pred, target = self._loss_pair("pred", pred, "target", target)
        residual = pred - target
        return self._scalar(self.xp.square(residual).sum() / pred.shape[0], pred.dtype)

    def mse_loss_backward(
        self, dout: Any, pred: Array, target: Array
    ) -> tuple[Array, Array]:
        pred, target = self._loss_pair("pred", pred, "target", target)
        dout = self._scalar_upstream(dout, pred.dtype)
        dpred = pred - target
        dpred *= dout * (2 / pred.shape[0])
        return dpred, -dpred

    def _clamped_logs(self, prob: Array) -> tuple[Array, Array, Array, Array]:
        """``log p`` and ``log(1 - p)`` clamped at -100, and where each is unclamped."""
        xp = self.xp
        q = 1 - prob
        p_live = prob > _SMALLEST_PROB
        q_live = q > _SMALLEST_PROB
        log_p = xp.where(p_live, xp.log(xp.where(p_live, prob, 1)), LOG_CLAMP)
        log_q = xp.where(q_live, xp.log(xp.where(q_live, q, 1)), LOG_CLAMP)
        return log_p, log_q, p_live, q_live

    def _check_probabilities(self, name: str, prob: Array) -> None:
        require_probabilities(name, self._all((prob >= 0) & (prob <= 1)))

    def binary_cross_entropy(self, prob: Array, target: Array) -> Array:
        prob, target = self._loss_pair("prob", prob, "target", target)
        self._check_probabilities("prob", prob)
        self._check_probabilities("target", target)
        log_p, log_q, _, _ = self._clamped_logs(prob)
        # t log p + (1 - t) log q = log q + t (log p - log q)
        log_p -= log_q
        log_p *= target
        log_p += log_q
        return self._scalar(-log_p.sum() / prob.shape[0], prob.dtype)

    def binary_cross_entropy_backward(
        self, dout: Any, prob: Array, target: Array
    ) -> tuple[Array, Array]:
        xp = self.xp
        prob, target = self._loss_pair("prob", prob, "target", target)
        self._check_probabilities("prob", prob)
        self._check_probabilities("target", target)
        dout = self._scalar_upstream(dout, prob.dtype)
        log_p, log_q, p_live, q_live = self._clamped_logs(prob)
        q = 1 - prob
        d_log_p = xp.where(p_live, 1 / xp.where(p_live, prob, 1), 0)
        d_log_q = xp.where(q_live, 1 / xp.where(q_live, q, 1), 0)
        scale = dout / prob.shape[0]
        dprob = (1 - target) * d_log_q - target * d_log_p
        dprob *= scale
        dtarget = log_q - log_p
        dtarget *= scale
        return dprob, dtarget

    def binary_cross_entropy_with_logits(self, logits: Array, target: Array) -> Array:
        logits, target = self._loss_pair("logits", logits, "target", target)
        self._check_probabilities("target", target)
        per_element = self._softplus(logits) - logits * target
        return self._scalar(per_element.sum() / logits.shape[0], logits.dtype)

    def binary_cross_entropy_with_logits_backward(
        self, dout: Any, logits: Array, target: Array
    ) -> tuple[Array, Array]:
        logits, target = self._loss_pair("logits", logits, "target", target)
        self._check_probabilities("target", target)
        dout = self._scalar_upstream(dout, logits.dtype)
        scale = dout / logits.shape[0]
        dlogits = self._sigmoid(logits) - target
        dlogits *= scale
        return dlogits, logits * -scale

    def softmax_cross_entropy(self, logits: Array, labels: Array) -> Array:
        xp = self.xp
        z, y = self._scores_and_labels("logits", logits, labels)
        n = z.shape[0]
        log_p = self._log_softmax(z, 1)
        return self._scalar(-log_p[xp.arange(n), y].sum() / n, z.dtype)

    def softmax_cross_entropy_backward(
        self, dout: Any, logits: Array, labels: Array
    ) -> tuple[Array, None]:
        xp = self.xp
        z, y = self._scores_and_labels("logits", logits, labels)
        dout = self._scalar_upstream(dout, z.dtype)
        n = z.shape[0]
        dlogits = self._softmax(z, 1)
        dlogits[xp.arange(n), y] -= 1
        dlogits *= dout / n
        return dlogits, None

    def _hinge_margins(self, z: Array, y: Array, margin: float) -> Array:
        xp = self.xp
        rows = xp.arange(z.shape[0])
        margins = z - z[rows, y][:, None]
        margins += margin
        xp.maximum(margins, 0, out=margins)
        margins[rows, y] = 0
        return margins

    def multiclass_hinge_loss(
        self, scores: Array, labels: Array, *, margin: float = 1.0
    ) -> Array:
        margin = require_non_negative("margin", margin)
        z, y = self._scores_and_labels("scores", scores, labels)
        margins = self._hinge_margins(z, y, margin)
        return self._scalar(margins.sum() / z.shape[0], z.dtype)

    def multiclass_hinge_loss_backward(
        self, dout: Any, scores: Array, labels: Array, *, margin: float = 1.0
    ) -> tuple[Array, None]:
        xp = self.xp
        margin = require_non_negative("margin", margin)
        z, y = self._scores_and_labels("scores", scores, labels)
        dout = self._scalar_upstream(dout, z.dtype)
        active = (self._hinge_margins(z, y, margin) > 0).astype(z.dtype)
        active[xp.arange(z.shape[0]), y] = -active.sum(axis=1)
        active *= dout / z.shape[0]
        return active, None

    def l1_penalty(self, w: Array) -> Array:
        w = self._float("w", w)
        return self._scalar(self.xp.abs(w).sum(), w.dtype)

    def l1_penalty_backward(self, dout: Any, w: Array) -> tuple[Array]:
        w = self._float("w", w)
        dout = self._scalar_upstream(dout, w.dtype)
        return (self.xp.sign(w) * dout,)

    def l2_penalty(self, w: Array) -> Array:
        w = self._float("w", w)
        return self._scalar(self.xp.square(w).sum(), w.dtype)

    def l2_penalty_backward(self, dout: Any, w: Array) -> tuple[Array]:
        w = self._float("w", w)
        dout = self._scalar_upstream(dout, w.dtype)
        return (w * (dout * 2),)

    def elastic_net_penalty(self, w: Array, *, beta: float) -> Array:
        beta = require_non_negative("beta", beta)
        w = self._float("w", w)
        xp = self.xp
        per_weight = xp.square(w)
        per_weight *= beta
        per_weight += xp.abs(w)
        return self._scalar(per_weight.sum(), w.dtype)

    def elastic_net_penalty_backward(
        self, dout: Any, w: Array, *, beta: float
    ) -> tuple[Array]:
        beta = require_non_negative("beta", beta)
        w = self._float("w", w)
        dout = self._scalar_upstream(dout, w.dtype)
        dw = w * (2 * beta)
        dw += self.xp.sign(w)
        dw *= dout
        return (dw,)

    # -- initializers ---------------------------------------------------------

    def initialize(
        self, name: str, shape: Sequence[int], *, seed: int, dtype: str, **hyper: float
    ) -> Array:
        """Weights drawn on the host by ``numpy.random.default_rng(seed)`` in float64.

        The draw is the reference's, rounded to ``dtype``: the same seed gives
        the same weights on every backend built on this class.
        """
        name, dims, seed, dtype, values = initializers.check_arguments(
            name, shape, seed, dtype, hyper, self.dtypes
        )
        receptive_field = math.prod(dims[2:])
        fan_in, fan_out = dims[1] * receptive_field, dims[0] * receptive_field
        gain = 1.0
        if "negative_slope" in values:
            gain = math.sqrt(2.0 / (1.0 + values["negative_slope"] ** 2))
        scale = {
            "zeros": 0.0,
            "normal": values.get("std", 0.0),
            "uniform_fan_in": 1.0 / math.sqrt(fan_in),
            "lecun_normal": 1.0 / math.sqrt(fan_in),
            "xavier_normal": math.sqrt(2.0 / (fan_in + fan_out)),
            "xavier_uniform": math.sqrt(6.0 / (fan_in + fan_out)),
            "he_normal": gain / math.sqrt(fan_in),
            "he_uniform": gain * math.sqrt(3.0 / fan_in),
        }[name]
        if name == "zeros":
            return self.xp.zeros(dims, dtype=dtype)
        rng = np.random.default_rng(seed)
        if name in _UNIFORM_INITIALIZERS:
            draw = rng.uniform(-scale, scale, size=dims)
        else:
            draw = scale * rng.standard_normal(size=dims)
        return self._from_host(draw.astype(dtype))

    # -- optimizers -----------------------------------------------------------

    def init_state(self, name: str, param: Array) -> dict[str, Array]:
        """Zero buffers shaped like ``param`` (torch's names), Adam's step count.

        ``step`` is a 0-d int64 host array updated in place (the bias
        correction is computed on the host). Where the updates are ufunc
        passes (``scratch_buffers``), ``scratch`` holds each thread's block
        of scratch rows, ``(threads, rows, block)``: a few hundred KiB
        whatever the size of ``param``, never a full-size temporary.
        """
        if name not in OPTIMIZER_BUFFERS:
            raise ValueError(
                f"name must be one of {', '.join(OPTIMIZER_BUFFERS)}, got {name!r}"
            )
        param = self._float("param", param)
        state: dict[str, Array] = {
            key: self.xp.zeros_like(param) for key in OPTIMIZER_BUFFERS[name]
        }
        if self.scratch_buffers:
            self._block_scratch(state, name, param)
        if name == "adam":
            state["step"] = np.zeros((), dtype=np.int64)
        return state

    def _check_step(
        self, name: str, param: Any, grad: Any, state: Any
    ) -> tuple[Array, Array]:
        param = self._float("param", param)
        grad = self._float("grad", grad)
        require_shape("grad", grad, param.shape)
        if not isinstance(state, dict):
            raise ValueError(f"state must be the dict of init_state({name!r}, param)")
        for key in OPTIMIZER_BUFFERS[name]:
            if key not in state:
                raise ValueError(
                    f"state must be the dict of init_state({name!r}, param): "
                    f"missing {key!r}"
                )
            require_shape(f"state[{key!r}]", state[key], param.shape)
        return param, grad

    # -- running the updates ----------------------------------------------------

    def thread_count(self) -> int:
        """Threads for the optimizer passes: ``threads``, else NumPy's BLAS count."""
        if self.threads is not None:
            return max(1, int(self.threads))
        return blocked.blas_threads()

    def _block_length(self, param: Array) -> int:
        return blocked.block_length(param.dtype.itemsize, self.optimizer_block_bytes)

    def _block_scratch(
        self, state: dict[str, Array], name: str, param: Array, threads: int = 0
    ) -> Array:
        """``state["scratch"]``: ``(threads, rows, block)`` rows, made or enlarged here.

        init_state makes it; a state built elsewhere (holding only the
        optimizer's own buffers), a larger thread count or another dtype
        replace it on the next step.
        """
        threads = max(threads, self.thread_count())
        rows = blocked.SCRATCH_ROWS[name]
        length = max(1, min(self._block_length(param), param.size))
        scratch = state.get("scratch")
        fits = (
            isinstance(scratch, np.ndarray)
            and scratch.ndim == 3
            and scratch.dtype == param.dtype
            and scratch.shape[0] >= threads
            and scratch.shape[1] >= rows
            and scratch.shape[2] >= length
        )
        if not fits:
            scratch = state["scratch"] = np.empty((threads, rows, length), param.dtype)
        return scratch

    def _update(
        self,
        name: str,
        param: Array,
        grad: Array,
        state: dict[str, Array],
        buffers: tuple[Array, ...],
        args: tuple,
    ) -> None:
        """Apply ``blocked.KERNELS[name]`` to param, grad and ``buffers`` in place.

        NumPy arrays that are C-contiguous go block by block (on
        :meth:`thread_count` threads); anything else (strided views,
        another array library) takes the same kernel over the whole arrays,
        with full-size scratch made for the call.
        """
        kernel = blocked.KERNELS[name]
        rows = blocked.SCRATCH_ROWS[name]
        arrays = (param, grad, *buffers)
        flat = self.xp is np and all(
            isinstance(a, np.ndarray) and a.flags.c_contiguous for a in arrays
        )
        if not flat or param.size == 0:
            scratch = [self.xp.empty_like(param) for _ in range(rows)]
            kernel(*arrays, *scratch, *args)
            return
        threads = self.thread_count()
        flat_arrays = [a.reshape(-1) for a in arrays]
        compiled = None
        if self.accelerator == "numba" and fused.same_float_dtype(*arrays):
            compiled = fused.optimizer_kernel(name, param.dtype, args)
        if compiled is not None:
            # One compiled pass per block, no scratch rows.
            kernel, args = compiled
            no_rows = np.empty((threads, 0, 0), param.dtype)
            length = self._block_length(param)
            blocked.run(
                kernel, flat_arrays, no_rows, args, block=length, threads=threads
            )
            return
        scratch = self._block_scratch(state, name, param, threads)
        length = min(self._block_length(param), scratch.shape[2])
        blocked.run(
            kernel,
            flat_arrays,
            scratch[:threads, :rows, :length],
            args,
            block=length,
            threads=threads,
        )

    def sgd_step(
        self,
        param: Array,
        grad: Array,
        state: dict[str, Array],
        *,
        lr: float,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> tuple[Array, dict[str, Array]]:
        param, grad = self._check_step("sgd", param, grad, state)
        lr, momentum, nesterov, weight_decay = optimizers.sgd_hyperparameters(
            lr, momentum, nesterov, weight_decay
        )
        self._sgd_update(param, grad, state, lr, momentum, nesterov, weight_decay)
        return param, state

    def _sgd_update(
        self,
        param: Array,
        grad: Array,
        state: dict[str, Array],
        lr: float,
        momentum: float,
        nesterov: bool,
        weight_decay: float,
    ) -> None:
        buffer = state["momentum_buffer"]
        args = (lr, momentum, nesterov, weight_decay)
        self._update("sgd", param, grad, state, (buffer,), args)

    def adagrad_step(
        self,
        param: Array,
        grad: Array,
        state: dict[str, Array],
        *,
        lr: float,
        eps: float = 1e-10,
    ) -> tuple[Array, dict[str, Array]]:
        param, grad = self._check_step("adagrad", param, grad, state)
        lr, eps = optimizers.adagrad_hyperparameters(lr, eps)
        self._adagrad_update(param, grad, state, lr, eps)
        return param, state

    def _adagrad_update(
        self, param: Array, grad: Array, state: dict[str, Array], lr: float, eps: float
    ) -> None:
        self._update("adagrad", param, grad, state, (state["sum"],), (lr, eps))

    def rmsprop_step(
        self,
        param: Array,
        grad: Array,
        state: dict[str, Array],
        *,
        lr: float,
        alpha: float = 0.99,
        eps: float = 1e-8,
    ) -> tuple[Array, dict[str, Array]]:
        param, grad = self._check_step("rmsprop", param, grad, state)
        lr, alpha, eps = optimizers.rmsprop_hyperparameters(lr, alpha, eps)
        self._rmsprop_update(param, grad, state, lr, alpha, eps)
        return param, state

    def _rmsprop_update(
        self,
        param: Array,
        grad: Array,
        state: dict[str, Array],
        lr: float,
        alpha: float,
        eps: float,
    ) -> None:
        buffers = (state["square_avg"],)
        self._update("rmsprop", param, grad, state, buffers, (lr, alpha, eps))

    def adadelta_step(
        self,
        param: Array,
        grad: Array,
        state: dict[str, Array],
        *,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
    ) -> tuple[Array, dict[str, Array]]:
        param, grad = self._check_step("adadelta", param, grad, state)
        lr, rho, eps = optimizers.adadelta_hyperparameters(lr, rho, eps)
        self._adadelta_update(param, grad, state, lr, rho, eps)
        return param, state

    def _adadelta_update(
        self,
        param: Array,
        grad: Array,
        state: dict[str, Array],
        lr: float,
        rho: float,
        eps: float,
    ) -> None:
        buffers = (state["square_avg"], state["acc_delta"])
        self._update("adadelta", param, grad, state, buffers, (lr, rho, eps))

    def adam_step(
        self,
        param: Array,
        grad: Array,
        state: dict[str, Array],
        *,
        lr: float,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> tuple[Array, dict[str, Array]]:
        param, grad = self._check_step("adam", param, grad, state)
        lr, beta1, beta2, eps, weight_decay = optimizers.adam_hyperparameters(
            lr, beta1, beta2, eps, weight_decay
        )
        step = state.get("step")
        if step is None or np.ndim(step) != 0 or int(step) < 0:
            raise ValueError(
                f"state['step'] must be a non-negative count, got {step!r}"
            )
        state["step"] += 1
        t = int(state["step"])
        # As torch: step_size = lr / (1 - beta1^t), denominator
        # sqrt(v) / sqrt(1 - beta2^t) + eps.
        step_size = lr / (1.0 - beta1**t)
        bias_correction2_sqrt = math.sqrt(1.0 - beta2**t)
        self._adam_update(
            param,
            grad,
            state,
            step_size,
            beta1,
            beta2,
            eps,
            bias_correction2_sqrt,
            weight_decay,
        )
        return param, state

    def _adam_update(
        self,
        param: Array,
        grad: Array,
        state: dict[str, Array],
        step_size: float,
        beta1: float,
        beta2: float,
        eps: float,
        bias_correction2_sqrt: float,
        weight_decay: float,
    ) -> None:
        buffers = (state["exp_avg"], state["exp_avg_sq"])
        args = (step_size, beta1, beta2, eps, bias_correction2_sqrt, weight_decay)
        self._update("adam", param, grad, state, buffers, args)

    def clip_grad_norm(self, grads: list, *, max_norm: float) -> tuple[list, float]:
        """Scale by ``max_norm / total_norm`` when the global norm exceeds ``max_norm``.

        Returns new arrays (the inputs are not modified) and the global L2 norm,
        accumulated in float64.
        """
        xp = self.xp
        max_norm = require_positive("max_norm", max_norm)
        grads = optimizers.require_gradient_list(grads)
        arrays = [self._float(f"grads[{i}]", g) for i, g in enumerate(grads)]
        # Squared in float64: float32 squares overflow from |g| ~ 2e19 on.
        squares = [xp.square(g, dtype=xp.float64).sum() for g in arrays]
        total_norm = math.sqrt(float(sum(squares))) if squares else 0.0
        if total_norm > max_norm:
            scale = max_norm / total_norm
            return [g * scale for g in arrays], total_norm
        return [g.copy() for g in arrays], total_norm
