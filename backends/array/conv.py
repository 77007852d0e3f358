r"""conv2d and conv2d_backward of the array backend: a table of algorithms.

Convolution is a small dispatch table of algorithms (:data:`CONV_ALGORITHMS`);
each pads the input itself and, for large batches, works through it in chunks
of a few MiB of workspace (``conv_chunk_bytes``) so that its copies and GEMMs
stay in cache. The Winograd algorithms and im2col run their chunks on the
backend's threads, one chunk per thread with BLAS held to one thread
(:meth:`~backends.array.core.ArrayCore._blas_tasks`): a chunk's GEMMs are
too small for BLAS to split them itself. Their ``dW`` adds the chunks' terms
in fixed groups (:func:`backends.array.blocked.grouped_sum`): the same sum
whichever thread ran which chunk.

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
  over every tap (:func:`backends.array.fused.direct_conv`), where the columns
  would cost more to copy than the GEMM saves.
* ``winograd`` and ``winograd2x2``: Winograd F(4x4, 3x3) and F(2x2, 3x3) for
  3x3 kernels at stride 1 (:mod:`backends.array.winograd`): 2.25 and 4 multiplies
  per output instead of 9, the transforms as GEMMs; ``dx`` is the same
  algorithm on the flipped kernel, ``dw`` its adjoint. Chosen automatically:
  F(4x4) from 32 channels in and out and 8x8 outputs, F(2x2) from 8 channels
  and 4x4 outputs (see :data:`WINOGRAD_MIN_CHANNELS` for the accuracy side).
* ``offsets``: one GEMM per kernel offset ``(i, j)`` accumulated into the
  output, never holding more than one offset's slice of the input: the
  low-memory fallback when the others' workspace would be too large.

:meth:`ConvOps.select_conv_algorithm` picks one per shape (the first of
``conv_preference`` that supports the shape and is worthwhile there, within
``conv_workspace_limit`` bytes), or the one named by ``conv_algorithm``;
:func:`register_conv_algorithm` adds one. The algorithms' functions take the
backend (``backend``, for its namespace, threads and chunk sizes) and the
call's :class:`ConvGeometry` as ``g``, as :mod:`backends.array.winograd` does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from backends.array import blocked, fused, winograd
from backends.array.core import Array, ArrayCore, offset_index
from backends.array.workspace import Workspace, matmul_into, scratch
from reference._checks import require_fits
from reference.shapes import conv2d_geometry

__all__ = [
    "CONV_ALGORITHMS",
    "ConvAlgorithm",
    "ConvGeometry",
    "ConvOps",
    "register_conv_algorithm",
]


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
#: Fewest chunks the batch of a chunk-parallel algorithm (Winograd, im2col)
#: is cut into, where the columns allow: enough for two threads to
#: take two each. Not the thread count itself, so that the chunks, and so the
#: bits of dW, are the same at any thread count. Measured on LeNet's C3
#: backward (64 images, 2 chunks by the budget alone, 2 threads): 4 chunks
#: 1.47 ms, 2 chunks 2.09 ms, 8 chunks 1.90 ms.
CONV_CHUNK_PARTS = 4
#: im2col gathers in two steps (rows, then windows) for output rows this short
#: or shorter: LeNet's 10-wide rows gather 35% faster, 28-wide ones no faster.
SHORT_ROWS = 16

#: The registered algorithms, by name.
CONV_ALGORITHMS: dict[str, ConvAlgorithm] = {}


def register_conv_algorithm(algorithm: ConvAlgorithm) -> ConvAlgorithm:
    """Add ``algorithm`` to :data:`CONV_ALGORITHMS` (replacing one of the same name)."""
    CONV_ALGORITHMS[algorithm.name] = algorithm
    return algorithm


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


def _im2col_columns(
    backend: ConvOps, x: Array, g: ConvGeometry, ws: Workspace | None = None
) -> Array:
    """The windows of ``x`` (any batch) as columns ``(C kH kW, n H_out W_out)``.

    Channels and kernel taps outermost: one GEMM with the ``(C_out, C kH kW)``
    weights covers the whole chunk, and the copy reads each input row once
    per tap with the output width as its inner loop. The columns (and the
    rows of the two-step copy) come from ``ws``, fresh without it.
    """
    xp = backend.xp
    ws = ws if ws is not None else Workspace(xp)
    batch = x.shape[0]
    x_padded = backend._pad(x, g.padding)
    s_n, s_c, s_h, s_w = x_padded.strides
    shape = (g.in_channels, *g.kernel, batch, g.out_height, g.out_width)
    columns = ws.empty("columns", shape, x.dtype)
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
        rows = ws.empty("rows", row_shape, x.dtype)
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


def _chunks(backend: ConvOps, g: ConvGeometry, per_image_bytes: int):
    """Batch slices holding at most ``backend.conv_chunk_bytes`` of workspace each.

    Past the last-level cache a pass over the columns runs at memory speed:
    chunks of a few MiB keep away from it. A chunk keeps at least
    ``backend.conv_chunk_min_columns`` GEMM columns, below which the GEMMs lose
    more than the cache saves. The chunks run as tasks on the backend's
    threads, so there are at least ``backend.conv_chunk_parts`` where the
    columns allow (:data:`CONV_CHUNK_PARTS`).
    """
    settings = _chunking(backend)
    step = winograd.chunk_images(g.batch, per_image_bytes, g.pixels, *settings)
    for start in range(0, g.batch, step):
        yield slice(start, min(start + step, g.batch))


def _im2col_forward(
    backend: ConvOps, x: Array, w: Array, b: Array | None, g: ConvGeometry
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
    parts = _chunks(backend, g, per_image)

    def chunk(part: slice, worker: ConvOps) -> None:
        with scratch(xp) as ws:
            columns = _im2col_columns(worker, x[part], g, ws)
            y2 = ws.empty("product", (g.out_channels, columns.shape[1]), dtype)
            matmul_into(xp, w2, columns, y2)  # (C_out, n H W)
            y2 = y2.reshape(g.out_channels, -1, g.out_height, g.out_width)
            _scatter_nchw(worker, y2, b, y[part])

    backend._parallel_blas([functools.partial(chunk, part) for part in parts])
    return y


def _scatter_nchw(backend: ConvOps, y2: Array, b: Array | None, y: Array) -> None:
    """``y[...] = y2`` (C_out, n, H, W) as NCHW, plus the bias, over the channels."""

    def scatter(part: slice) -> None:
        bias = None if b is None else b[part]
        _add_bias(backend.xp, y2[part].transpose(1, 0, 2, 3), bias, y[:, part])

    parts = backend._split(y2.shape[0], y2.size)
    backend._parallel([functools.partial(scatter, part) for part in parts])


def _col2im(backend: ConvOps, dwindows: Array, g: ConvGeometry, dx: Array) -> Array:
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
    backend: ConvOps, dcolumns: Array, g: ConvGeometry, dx: Array
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
    backend: ConvOps, dout: Array, x: Array, w: Array, g: ConvGeometry
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
    per_image = (2 * g.columns + g.out_channels) * g.pixels * g.itemsize
    parts = list(_chunks(backend, g, per_image))

    def chunk(index: int, worker: ConvOps) -> Array:
        """Write the chunk's ``dx``; return its term of ``dw``."""
        with scratch(xp) as ws:
            return _im2col_backward_chunk(worker, ws, dout, x, w2, g, parts[index], dx)

    # The chunks on the backend's threads, dw's terms summed in fixed groups.
    tasks, dw_sum = blocked.grouped_sum(len(parts), chunk)
    backend._parallel_blas(tasks)
    dw = dw_sum()
    if dw is None:  # an empty batch
        dw = xp.zeros((g.out_channels, g.columns), dtype=dtype)
    return dx, dw.reshape(w.shape)


def _im2col_backward_chunk(
    worker: ConvOps,
    ws: Workspace,
    dout: Array,
    x: Array,
    w2: Array,
    g: ConvGeometry,
    part: slice,
    dx: Array,
) -> Array:
    """Write ``dx[part]``; return the images' term of ``dw``."""
    xp = worker.xp
    columns = _im2col_columns(worker, x[part], g, ws)
    source = dout[part].transpose(1, 0, 2, 3)
    dout2 = ws.empty("upstream", source.shape, source.dtype)
    dout2[...] = source
    dout2 = dout2.reshape(g.out_channels, -1)
    # One GEMM reducing over the chunk, the channels its short side (50-60%
    # faster than dout2 @ columns.T for LeNet's 16 channels by 150 columns).
    term = xp.matmul(columns, dout2.T).T
    dtype = xp.result_type(w2.dtype, dout2.dtype)
    dcolumns = ws.empty("dcolumns", (g.columns, dout2.shape[1]), dtype)
    matmul_into(xp, w2.T, dout2, dcolumns)
    dcolumns = dcolumns.reshape(g.in_channels, *g.kernel, -1, g.out_height, g.out_width)
    if _compiled(worker, dcolumns, dx):
        add = functools.partial(
            fused.add_windows, dcolumns, g.padding, g.stride, dx[part]
        )
        pieces = worker._split(g.in_channels, dcolumns.size)
        worker._parallel([functools.partial(add, p) for p in pieces])
    elif _short_rows(g):
        _col2im_by_rows(worker, dcolumns, g, dx[part])
    else:
        _col2im(worker, dcolumns.transpose(3, 0, 1, 2, 4, 5), g, dx[part])
    return term


def _im2col_workspace(g: ConvGeometry) -> int:
    # Backward holds the columns, then their gradient, each C kH kW N H_out W_out.
    if g.pointwise:
        return g.batch * (g.in_channels + g.out_channels) * g.pixels * g.itemsize
    return g.batch * g.columns * g.pixels * g.itemsize


def _offsets_forward(
    backend: ConvOps, x: Array, w: Array, b: Array | None, g: ConvGeometry
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
            patch = x_padded[offset_index(i, j, g.stride, size_out)].reshape(
                g.batch, g.in_channels, g.pixels
            )
            term = xp.matmul(w_offsets[i, j], patch, out=term)
            y += term
    if b is not None:
        y += b.reshape(-1, 1)
    return y.reshape(g.batch, g.out_channels, g.out_height, g.out_width)


def _offsets_backward(
    backend: ConvOps, dout: Array, x: Array, w: Array, g: ConvGeometry
) -> tuple[Array, Array]:
    xp = backend.xp
    x_padded = backend._pad(x, g.padding)
    size_out = (g.out_height, g.out_width)
    dout3 = xp.ascontiguousarray(dout).reshape(g.batch, g.out_channels, g.pixels)
    w_offsets = xp.ascontiguousarray(w.transpose(2, 3, 0, 1))  # (kH, kW, C_out, C)
    dw_offsets = xp.empty_like(w_offsets)
    for i in range(g.kernel[0]):
        for j in range(g.kernel[1]):
            index = offset_index(i, j, g.stride, size_out)
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


def _chunking(backend: ConvOps) -> tuple[int | None, int, int]:
    """The backend's ``(bytes, min_columns, parts)``: Winograd's ``chunk`` argument."""
    return (
        backend.conv_chunk_bytes,
        backend.conv_chunk_min_columns,
        backend.conv_chunk_parts,
    )


def _winograd_algorithm(name: str, tiling: winograd.WinogradTiling) -> ConvAlgorithm:
    def forward(backend, x, w, b, g):
        return winograd.conv2d_forward(backend, x, w, b, g, tiling, _chunking(backend))

    def backward(backend, dout, x, w, g):
        chunk = _chunking(backend)
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


def _compiled(backend: ConvOps, *arrays: Array) -> bool:
    """Whether ``backend`` runs :mod:`backends.array.fused` kernels on ``arrays``."""
    return (
        backend.accelerator == "numba"
        and backend.xp is np
        and fused.same_float_dtype(*arrays)
    )


def _direct_applies(
    backend: ConvOps, x: Array, w: Array, b: Array | None, g: ConvGeometry
) -> bool:
    """Whether the im2col forward runs as :func:`backends.array.fused.direct_conv`."""
    return (
        _compiled(backend, x, w, *(() if b is None else (b,)))
        and g.stride == (1, 1)
        and g.out_channels <= DIRECT_MAX_OUT_CHANNELS
    )


def _direct_forward(
    backend: ConvOps, x: Array, w: Array, b: Array | None, g: ConvGeometry
) -> Array:
    dtype = np.result_type(x.dtype, w.dtype)
    x_padded = np.ascontiguousarray(backend._pad(x, g.padding), dtype=dtype)
    bias = np.zeros(g.out_channels, dtype) if b is None else b
    lanes, pixels = fused.direct_shape(g.out_channels, g.out_width)
    w_tiles, bias = fused.direct_weights(w.astype(dtype), bias.astype(dtype), lanes)
    y = np.empty((g.batch, g.out_channels, g.out_height, g.out_width), dtype)
    products = y.size * g.columns
    run = functools.partial(fused.direct_conv, x_padded, w_tiles, bias, y)
    calls = [
        functools.partial(run, part, pixels)
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
#: 1e2 times the direct sum's, see :mod:`backends.array.winograd`).
register_conv_algorithm(_winograd_algorithm("winograd", winograd.F4X4_3X3))
#: F(2x2, 3x3): 4 multiplies per output, every transform entry 0 or +-1.
register_conv_algorithm(_winograd_algorithm("winograd2x2", winograd.F2X2_3X3))


class ConvOps(ArrayCore):
    """conv2d and its backward through :meth:`select_conv_algorithm`'s choice.

    Its tuning attributes (``conv_algorithm``, ``conv_preference``,
    ``conv_workspace_limit``, ``conv_chunk_bytes``, ``conv_chunk_min_columns``,
    ``conv_chunk_parts``) are described on :class:`backends.array.ArrayBackend`.
    """

    def __init__(self, xp: Any) -> None:
        super().__init__(xp)
        self.conv_algorithms: dict[str, ConvAlgorithm] = dict(CONV_ALGORITHMS)
        self.conv_algorithm = "auto"
        self.conv_preference: tuple[str, ...] = (
            "winograd",
            "winograd2x2",
            "im2col",
            "offsets",
        )
        self.conv_workspace_limit = 1 << 30
        self.conv_chunk_bytes: int | None = CONV_CHUNK_BYTES
        self.conv_chunk_min_columns = CONV_CHUNK_MIN_COLUMNS
        self.conv_chunk_parts = CONV_CHUNK_PARTS

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
