"""Pooling mutants: the NumPy backend with one bug in max or average pooling."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from backends.array.core import offset_index
from backends.mutants.probes import NEGATIVE, TIES, X4
from backends.numpy_backend import NumpyBackend

__all__ = [
    "AveragePoolGradientNotDivided",
    "MaxPoolGradientToEveryTie",
    "MaxPoolZeroPadding",
]


class MaxPoolGradientToEveryTie(NumpyBackend):
    """max_pool2d_backward sends the window's gradient to every cell equal to its max.

    The bug: the mask ``x == max(window)`` used as the routing, as in the
    cs231n-style ``dx[window] += (window == window.max()) * dout``; with ties
    (ReLU outputs are full of zeros) the window's gradient is counted once per
    tied maximum. Invisible without ties, where every test input of the
    agreement suite lives (its max-pool inputs are separated).

    Caught by: identities (max-pool routing: the window's total is preserved,
    on inputs full of ties).
    """

    name = "mutant-maxpool-grad-to-every-tie"
    family = "pooling"
    expected_killers = ("identities",)

    @staticmethod
    def live_call(backend: NumpyBackend) -> Any:
        return backend.max_pool2d_backward(np.ones((1, 1, 1, 2)), TIES, kernel_size=2)

    def max_pool2d_backward(
        self,
        dout: Any,
        x: Any,
        *,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
    ) -> tuple[Any]:
        xp = self.xp
        x, kernel, stride, padding, size_out = self._check_max_pool(
            x, kernel_size, stride, padding
        )
        dout = self._upstream(dout, (*x.shape[:2], *size_out))
        x_padded = self._pad(x, padding, value=-math.inf)
        best = self.max_pool2d(x, kernel_size=kernel, stride=stride, padding=padding)
        dx_padded = xp.zeros(x_padded.shape, dtype=dout.dtype)
        for i in range(kernel[0]):
            for j in range(kernel[1]):
                index = offset_index(i, j, stride, size_out)
                dx_padded[index] += xp.where(x_padded[index] == best, dout, 0)
        return (xp.ascontiguousarray(self._crop(dx_padded, padding, *x.shape[2:])),)


class MaxPoolZeroPadding(NumpyBackend):
    """max_pool2d pads with zeros instead of -inf.

    The bug: reusing the conv's zero padding for max pooling; a border window
    whose values are all negative then has maximum 0, taken from the padding.
    Invisible for non-negative inputs (after a ReLU) and without padding.

    Caught by: agreement (``max_pool2d`` forward with padding) and identities
    (each output is the maximum of its window's real cells).
    """

    name = "mutant-maxpool-zero-padding"
    family = "pooling"
    expected_killers = ("agreement", "identities")

    @staticmethod
    def live_call(backend: NumpyBackend) -> Any:
        return backend.max_pool2d(NEGATIVE, kernel_size=3, stride=1, padding=1)

    def max_pool2d(
        self, x: Any, *, kernel_size: Any, stride: Any = None, padding: Any = 0
    ) -> Any:
        x, kernel, stride, padding, size_out = self._check_max_pool(
            x, kernel_size, stride, padding
        )
        x_padded = self._pad(x, padding, value=0.0)
        y = x_padded[offset_index(0, 0, stride, size_out)].copy()
        for i in range(kernel[0]):
            for j in range(kernel[1]):
                self.xp.maximum(
                    y, x_padded[offset_index(i, j, stride, size_out)], out=y
                )
        return y


class AveragePoolGradientNotDivided(NumpyBackend):
    """avg_pool2d_backward forgets to divide by the window size.

    The bug: the missing rescale, ``dx[window] += dout`` instead of ``dout / (kH
    kW)``: the backward of a sum pool paired with the forward of an average pool.

    Caught by: agreement (``avg_pool2d_backward``).
    """

    name = "mutant-avgpool-grad-not-divided"
    family = "pooling"
    expected_killers = ("agreement",)

    @staticmethod
    def live_call(backend: NumpyBackend) -> Any:
        return backend.avg_pool2d_backward(np.ones((2, 2, 2, 2)), X4, kernel_size=2)

    def avg_pool2d_backward(
        self, dout: Any, x: Any, *, kernel_size: Any, stride: Any = None
    ) -> tuple[Any]:
        (dx,) = super().avg_pool2d_backward(
            dout, x, kernel_size=kernel_size, stride=stride
        )
        kernel_h, kernel_w = self._check_pool(x, kernel_size, stride, 0)[1]
        dx *= kernel_h * kernel_w
        return (dx,)


every_tie = MaxPoolGradientToEveryTie()
zero_padding = MaxPoolZeroPadding()
avgpool_not_divided = AveragePoolGradientNotDivided()
