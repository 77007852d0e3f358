r"""The activations of the array backend, each forward with its backward.

relu, leaky_relu, prelu, elu, selu, sigmoid, tanh, softplus, abs_rectify,
gelu and silu, elementwise over any shape (prelu's slope one for all, or one
per channel on axis 1). The numerically stable forms (sigmoid and softplus
through ``exp(-|x|)``, which never overflows) are the private
:meth:`ActivationOps._sigmoid` and :meth:`ActivationOps._softplus`, which the
losses reuse. GELU's exact form evaluates the normal CDF as
:math:`\tfrac12 \operatorname{erfc}(-x / \sqrt{2})` (:mod:`backends.array.special`),
accurate in the left tail where :math:`1 + \operatorname{erf}` cancels; its tanh
form is :math:`x \, \sigma(2u)`, again without the cancellation of
:math:`1 + \tanh u`. Where ``x`` is squared or cubed it is clipped to
:data:`reference.activations._GELU_CLIP` first, as in the reference (the
factors it multiplies are exactly 0 or 1 there), so nothing overflows.

On float32 NumPy arrays the exact GELU and its backward run on cache-sized
blocks (:data:`GELU_BLOCK`) in place, with float32's own rational erf
(:func:`backends.array.special.erf_float32_into`, absolute error under
5e-7): ``Phi = (1 + erf) / 2`` then errs by under 2.5e-7, inside the float32
contract (``rtol`` where ``Phi >= 1/2``, ``atol`` in the left tail), in a
tenth of the time of Cody's float64-grade evaluation.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from backends.array import special
from backends.array.core import Array, ArrayCore
from reference._checks import require_non_negative
from reference.activations import (
    _GELU_CLIP,
    GELU_TANH_CUBIC,
    GELU_TANH_SCALE,
    SELU_ALPHA,
    SELU_LAMBDA,
)
from reference.shapes import gelu_hyper, prelu_alpha_shape

__all__ = ["ActivationOps"]

#: Elements per block of the float32 GELU passes (:meth:`ActivationOps._blockwise`):
#: a block and its scratch stay in a core's L2 cache.
GELU_BLOCK = 16384
_HALF = np.float32(0.5)
_ONE_OVER_SQRT2 = np.float32(1 / math.sqrt(2.0))
_ONE_OVER_SQRT_2PI = np.float32(1 / math.sqrt(2 * math.pi))


def _normal_cdf_float32_block(cdf, x, work) -> None:
    """``cdf = Phi(x) = (1 + erf(x / sqrt 2)) / 2`` in float32 (absolute error)."""
    np.multiply(x, _ONE_OVER_SQRT2, out=work[3])
    special.erf_float32_into(work[3], cdf, work[:3])
    cdf *= _HALF
    cdf += _HALF


def _gelu_float32_block(y, x, work) -> None:
    """``y = x Phi(x)`` in float32."""
    _normal_cdf_float32_block(y, x, work)
    y *= x


def _gelu_backward_float32_block(dx, dout, x, work) -> None:
    """``dx = dout (Phi(x) + x phi(x))`` in float32 (phi is 0 past ``|x| = 16``)."""
    _normal_cdf_float32_block(dx, x, work)
    density = work[0]
    np.clip(x, -16, 16, out=density)
    density *= density
    density *= -0.5
    np.exp(density, out=density)
    density *= _ONE_OVER_SQRT_2PI
    density *= x
    dx += density
    dx *= dout


class ActivationOps(ArrayCore):
    """The activations and their backwards (see the module)."""

    def _float32_numpy(self, *arrays: Array) -> bool:
        """Whether the arrays are all float32 NumPy arrays (the blocked GELU)."""
        return self.xp is np and all(a.dtype == np.float32 for a in arrays)

    def _blockwise(self, kernel: Callable, *inputs: Array) -> Array:
        """``kernel(out, *inputs, work)`` over blocks of :data:`GELU_BLOCK` elements.

        The inputs flattened (C order), the output a new float32 array of
        their shape, ``work`` four blocks of scratch; the blocks are cut
        among the backend's threads (:meth:`ArrayCore._parallel`).
        """
        shape = inputs[0].shape
        flat = [np.ascontiguousarray(a).reshape(-1) for a in inputs]
        out = np.empty(shape, np.float32)
        flat_out = out.reshape(-1)

        def run(part: slice) -> None:
            work = np.empty((4, min(GELU_BLOCK, part.stop - part.start)), np.float32)
            for start in range(part.start, part.stop, GELU_BLOCK):
                stop = min(start + GELU_BLOCK, part.stop)
                n = stop - start
                kernel(
                    flat_out[start:stop], *(a[start:stop] for a in flat), work[:, :n]
                )

        parts = self._split(out.size, out.size)
        self._parallel([functools.partial(run, part) for part in parts])
        return out

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
        negative = xp.expm1(xp.minimum(x, 0)) * (SELU_LAMBDA * SELU_ALPHA)
        return xp.where(x > 0, x * SELU_LAMBDA, negative)

    def selu_backward(self, dout: Array, x: Array) -> tuple[Array]:
        xp = self.xp
        x = self._float("x", x)
        dout = self._upstream(dout, x.shape)
        negative = xp.exp(xp.minimum(x, 0)) * (SELU_LAMBDA * SELU_ALPHA)
        return (dout * xp.where(x > 0, SELU_LAMBDA, negative),)

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

    def _gelu_tanh_inner(self, x: Array) -> tuple[Array, Array]:
        """The tanh form's ``u = sqrt(2/pi) (x + 0.044715 x^3)`` and ``du/dx``."""
        clipped = self.xp.clip(x, -_GELU_CLIP, _GELU_CLIP)
        square = clipped * clipped
        u = clipped * (1 + square * GELU_TANH_CUBIC) * GELU_TANH_SCALE
        du = (1 + square * (3 * GELU_TANH_CUBIC)) * GELU_TANH_SCALE
        return u, du

    def _normal_cdf(self, x: Array) -> Array:
        return special.erfc(-x / math.sqrt(2.0), self.xp) * 0.5

    def gelu(self, x: Array, *, approximate: str = "none") -> Array:
        x = self._float("x", x)
        approximate = gelu_hyper(approximate)
        if approximate == "tanh":
            u, _ = self._gelu_tanh_inner(x)
            return x * self._sigmoid(2 * u)
        if self._float32_numpy(x):
            return self._blockwise(_gelu_float32_block, x)
        return x * self._normal_cdf(x)

    def gelu_backward(
        self, dout: Array, x: Array, *, approximate: str = "none"
    ) -> tuple[Array]:
        xp = self.xp
        x = self._float("x", x)
        approximate = gelu_hyper(approximate)
        dout = self._upstream(dout, x.shape)
        if approximate == "tanh":
            u, du = self._gelu_tanh_inner(x)
            s = self._sigmoid(2 * u)
            return (dout * (s + x * (2 * s * self._sigmoid(-2 * u) * du)),)
        if self._float32_numpy(dout, x):
            return (self._blockwise(_gelu_backward_float32_block, dout, x),)
        clipped = xp.clip(x, -_GELU_CLIP, _GELU_CLIP)
        density = xp.exp(clipped * clipped * -0.5) * (1 / math.sqrt(2 * math.pi))
        return (dout * (self._normal_cdf(x) + x * density),)

    def silu(self, x: Array) -> Array:
        x = self._float("x", x)
        return x * self._sigmoid(x)

    def silu_backward(self, dout: Array, x: Array) -> tuple[Array]:
        x = self._float("x", x)
        dout = self._upstream(dout, x.shape)
        return (dout * self._sigmoid(x) * (1 + x * self._sigmoid(-x)),)
