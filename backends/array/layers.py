"""The layers of the array backend besides conv2d, each forward with its backward.

linear; max_pool2d and avg_pool2d (a loop over the kernel offsets, each a
strided window of the whole batch); flatten; softmax and log_softmax along an
axis; maxout; upsample2d (nearest, or bilinear with half-pixel centres, one
axis at a time, a loop over the phases of the factor). The stable softmax and
log-softmax are the private :meth:`LayerOps._softmax` and
:meth:`LayerOps._log_softmax`, which the cross-entropy loss reuses.
"""

from __future__ import annotations

import math
from typing import Any

from backends.array.core import Array, ArrayCore, offset_index
from reference.shapes import (
    linear_shapes,
    max_pool2d_geometry,
    maxout_shapes,
    pool2d_geometry,
    require_min_ndim,
    softmax_axis,
    upsample2d_geometry,
)

__all__ = ["LayerOps"]


def _axis_index(ndim: int, axis: int, index: Any) -> tuple[Any, ...]:
    """A tuple index applying ``index`` along ``axis`` of an ``ndim``-d array."""
    return (slice(None),) * axis + (index,) + (slice(None),) * (ndim - axis - 1)


class LayerOps(ArrayCore):
    """The layers but conv2d, and their backwards (see the module)."""

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

    @staticmethod
    def _crop(x_padded: Array, padding: tuple[int, int], height: int, width: int):
        ph, pw = padding
        return x_padded[:, :, ph : ph + height, pw : pw + width]

    def max_pool2d(
        self, x: Array, *, kernel_size: Any, stride: Any = None, padding: Any = 0
    ) -> Array:
        x, kernel, stride, padding, size_out = self._check_max_pool(
            x, kernel_size, stride, padding
        )
        x_padded = self._pad(x, padding, value=-math.inf)
        y = x_padded[offset_index(0, 0, stride, size_out)].copy()
        for i in range(kernel[0]):
            for j in range(kernel[1]):
                if i or j:
                    window = x_padded[offset_index(i, j, stride, size_out)]
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
        best = x_padded[offset_index(0, 0, stride, size_out)].copy()
        winner = xp.zeros(best.shape, dtype=xp.int32)
        offsets = [(i, j) for i in range(kernel[0]) for j in range(kernel[1])]
        for k, (i, j) in enumerate(offsets[1:], start=1):
            window = x_padded[offset_index(i, j, stride, size_out)]
            larger = window > best
            xp.copyto(best, window, where=larger)
            xp.copyto(winner, k, where=larger)
        del best
        dx_padded = xp.zeros(x_padded.shape, dtype=dout.dtype)
        for k, (i, j) in enumerate(offsets):
            dx_padded[offset_index(i, j, stride, size_out)] += xp.where(
                winner == k, dout, 0
            )
        return (xp.ascontiguousarray(self._crop(dx_padded, padding, *x.shape[2:])),)

    def avg_pool2d(self, x: Array, *, kernel_size: Any, stride: Any = None) -> Array:
        x, kernel, stride, _, size_out = self._check_pool(x, kernel_size, stride, 0)
        y = x[offset_index(0, 0, stride, size_out)].copy()
        for i in range(kernel[0]):
            for j in range(kernel[1]):
                if i or j:
                    y += x[offset_index(i, j, stride, size_out)]
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
                dx[offset_index(i, j, stride, size_out)] += share
        return (dx,)

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
