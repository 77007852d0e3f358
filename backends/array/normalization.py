"""Batch and layer normalization and dropout in the array backend.

batch_norm normalizes over the batch (and the pixels of NCHW inputs) in
training, with the running statistics in evaluation, and returns the updated
running statistics (the unbiased variance, as torch); its backward is the
closed form over ``x_hat``. layer_norm normalizes each sample over its last
``normalized_ndim`` axes, in two passes (the mean, then the mean square of the
centred values: no cancellation of ``E[x^2] - E[x]^2``); its backward is the
same closed form with the sums over a sample's normalized axes. dropout_mask
draws its mask from the backend's seeded generator; dropout and its backward
scale the kept units by ``1 / (1 - p)``.
"""

from __future__ import annotations

from typing import Any

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
