"""Batch and layer normalization and dropout in the array backend.

batch_norm normalizes over the batch (and the pixels of NCHW inputs) in
training, with the running statistics in evaluation, and returns the updated
running statistics (the unbiased variance, as torch); its backward is the
closed form over ``x_hat``. layer_norm normalizes each sample over its last
``normalized_ndim`` axes, in two passes (the mean, then the mean square of the
centred values: no cancellation of ``E[x^2] - E[x]^2``); its backward is the
same closed form with the sums over a sample's normalized axes, on NumPy run
on cache-sized blocks of rows (:data:`LAYER_NORM_BLOCK`), each block's passes
in place out of the cache, ``dgamma`` and ``dbeta`` summed block by block. dropout_mask
draws its mask from the backend's seeded generator; dropout and its backward
scale the kept units by ``1 / (1 - p)``.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from backends.array.core import Array, ArrayCore
from reference._checks import (
    require_bool_kind,
    require_given,
    require_non_negative_values,
    require_shape,
)
from reference.shapes import (
    BATCH_NORM_PARAMETERS,
    LAYER_NORM_PARAMETERS,
    batch_norm_hyper,
    dropout_hyper,
    dropout_mask_hyper,
    layer_norm_hyper,
)

__all__ = ["NormalizationOps"]

#: Elements per block of rows of the NumPy layer_norm (``layer_norm_backward``):
#: a block and its scratch stay in a core's L2 cache.
LAYER_NORM_BLOCK = 16384


def _row_dots(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Each row's dot product, as a column (``np.vecdot`` where NumPy has it)."""
    vecdot = getattr(np, "vecdot", None)
    if vecdot is not None:
        return vecdot(a, b)[:, None]
    return np.einsum("ij,ij->i", a, b)[:, None]


def _normalize_rows(x_hat: np.ndarray, x: np.ndarray, eps: float) -> np.ndarray:
    """``x_hat = (x - mean) / sqrt(var + eps)`` row by row; returns ``1/sqrt``.

    Two passes as :meth:`NormalizationOps._layer_statistics`: the mean, then
    the mean square of the centred values (a row-wise dot product).
    """
    width = x.shape[1]
    mean = np.add.reduce(x, axis=1, keepdims=True)
    mean /= width
    np.subtract(x, mean, out=x_hat)
    variance = _row_dots(x_hat, x_hat)
    variance /= width
    variance += eps
    inverse_std = np.sqrt(variance, out=variance)
    np.divide(1, inverse_std, out=inverse_std)
    x_hat *= inverse_std
    return inverse_std


def _layer_norm_backward_rows(dx, dout, x, gamma, eps, x_hat, dgamma, dbeta) -> None:
    """dx of the rows; their parts of ``dgamma`` and ``dbeta`` added in."""
    width = x.shape[1]
    inverse_std = _normalize_rows(x_hat, x, eps)
    dbeta += np.add.reduce(dout, axis=0)
    np.multiply(dout, x_hat, out=dx)
    dgamma += np.add.reduce(dx, axis=0)
    # dx = s * (g - mean(g) - x_hat * mean(g * x_hat)), g = gamma * dout
    np.multiply(dout, gamma, out=dx)
    mean_g = np.add.reduce(dx, axis=1, keepdims=True)
    mean_g /= width
    mean_g_x_hat = _row_dots(dx, x_hat)
    mean_g_x_hat /= width
    dx -= mean_g
    x_hat *= mean_g_x_hat
    dx -= x_hat
    dx *= inverse_std


class NormalizationOps(ArrayCore):
    """batch_norm, layer_norm, dropout_mask and dropout, with their backwards."""

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

    # -- layer norm -----------------------------------------------------------

    def _check_layer_norm(
        self, x: Any, gamma: Any, beta: Any, normalized_ndim: Any, eps: float
    ) -> tuple[Array, Array, Array, tuple[int, ...], float]:
        """The arrays, the normalized axes of ``x`` and ``eps``, checked."""
        x = self._float("x", x)
        gamma, beta = (
            self._float(name, value)
            for name, value in zip(LAYER_NORM_PARAMETERS, (gamma, beta), strict=True)
        )
        normalized_ndim, eps = layer_norm_hyper(
            x.shape, (gamma.shape, beta.shape), normalized_ndim, eps
        )
        axes = tuple(range(x.ndim - normalized_ndim, x.ndim))
        return x, gamma, beta, axes, eps

    def _layer_statistics(
        self, x: Array, axes: tuple[int, ...], eps: float
    ) -> tuple[Array, Array]:
        """Each sample's ``x_hat`` and ``1 / sqrt(var + eps)`` (biased variance)."""
        x_hat = x - x.mean(axis=axes, keepdims=True)
        inverse_std = 1 / self.xp.sqrt(
            self.xp.square(x_hat).mean(axis=axes, keepdims=True) + eps
        )
        x_hat *= inverse_std
        return x_hat, inverse_std

    def layer_norm(
        self,
        x: Array,
        gamma: Array,
        beta: Array,
        *,
        normalized_ndim: int,
        eps: float = 1e-5,
    ) -> Array:
        x, gamma, beta, axes, eps = self._check_layer_norm(
            x, gamma, beta, normalized_ndim, eps
        )
        y, _ = self._layer_statistics(x, axes, eps)
        y *= gamma
        y += beta
        return y

    def layer_norm_backward(
        self,
        dout: Array,
        x: Array,
        gamma: Array,
        beta: Array,
        *,
        normalized_ndim: int,
        eps: float = 1e-5,
    ) -> tuple[Array, Array, Array]:
        x, gamma, beta, axes, eps = self._check_layer_norm(
            x, gamma, beta, normalized_ndim, eps
        )
        dout = self._upstream(dout, x.shape)
        if self._numpy_rows(dout, x, gamma, beta):
            return self._layer_norm_backward_numpy(dout, x, gamma, eps)
        x_hat, inverse_std = self._layer_statistics(x, axes, eps)
        leading = tuple(range(x.ndim - len(axes)))
        dgamma = (dout * x_hat).sum(axis=leading)
        dbeta = dout.sum(axis=leading)
        # dx = s * (g - mean(g) - x_hat * mean(g * x_hat)), g = gamma * dout,
        # the means over each sample's normalized axes.
        g = dout * gamma
        mean_g_x_hat = (g * x_hat).mean(axis=axes, keepdims=True)
        dx = g - g.mean(axis=axes, keepdims=True)
        x_hat *= mean_g_x_hat
        dx -= x_hat
        dx *= inverse_std
        return dx, dgamma, dbeta

    def _numpy_rows(self, *arrays: Array) -> bool:
        """Whether layer_norm runs on blocks of rows: NumPy arrays of one dtype."""
        return self.xp is np and len({a.dtype for a in arrays}) == 1

    def _rows(
        self, kernel, arrays: list, arguments: tuple, sums: int = 0
    ) -> list[list]:
        """``kernel(*row_blocks, *arguments, *state)`` over blocks of rows.

        ``arrays`` (the output first) are seen as rows of one sample's
        normalized elements (``arguments[0]``, gamma, sets the width), cut
        into blocks of :data:`LAYER_NORM_BLOCK` elements among the backend's
        threads. With ``sums``, ``state`` is one block of scratch and
        ``sums`` zeroed accumulators of the width, which each thread's part
        returns (summed by the caller); else empty.
        """
        width = arguments[0].size
        rows = arrays[0].size // width if width else 0
        row_views = [np.ascontiguousarray(a).reshape(rows, width) for a in arrays]
        block = max(1, LAYER_NORM_BLOCK // max(width, 1))

        def run(part: slice, state: list) -> None:
            if sums:
                rows_held = min(block, part.stop - part.start)
                state += [np.empty((rows_held, width), arrays[0].dtype)]
                state += [np.zeros(width, arrays[0].dtype) for _ in range(sums)]
            for start in range(part.start, part.stop, block):
                stop = min(start + block, part.stop)
                blocks = [view[start:stop] for view in row_views]
                work = [state[0][: stop - start], *state[1:]] if sums else []
                kernel(*blocks, *arguments, *work)

        parts = self._split(rows, arrays[0].size)
        states: list[list] = [[] for _ in parts]
        self._parallel(
            [functools.partial(run, p, st) for p, st in zip(parts, states, strict=True)]
        )
        return [state[1:] for state in states]

    def _layer_norm_backward_numpy(self, dout, x, gamma, eps) -> tuple:
        """layer_norm_backward on blocks of rows (:meth:`_rows`)."""
        dx = np.empty_like(x)
        flat_gamma = gamma.reshape(-1)
        sums = self._rows(
            _layer_norm_backward_rows, [dx, dout, x], (flat_gamma, eps), sums=2
        )
        dgamma = functools.reduce(
            np.add, (s[0] for s in sums), np.zeros_like(flat_gamma)
        )
        dbeta = functools.reduce(
            np.add, (s[1] for s in sums), np.zeros_like(flat_gamma)
        )
        return dx, dgamma.reshape(gamma.shape), dbeta.reshape(gamma.shape)

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
