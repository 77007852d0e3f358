"""Convolution mutants: the NumPy backend with one bug in ``conv2d`` or its backward."""

from __future__ import annotations

from typing import Any

import numpy as np

from backends.mutants.probes import W4, X4
from backends.numpy_backend import NumpyBackend

__all__ = ["BiasGradientAveraged", "FlippedKernel", "OneSidedPadding"]


class FlippedKernel(NumpyBackend):
    """conv2d computes a true convolution: the kernel is flipped in both axes.

    The bug: the textbook definition of convolution (``scipy.signal.convolve2d``)
    where deep learning means cross-correlation (``correlate2d``, what every
    framework computes). Invisible for symmetric kernels and 1x1 kernels.

    Caught by: agreement (``conv2d`` forward against the reference) and models
    (the residual block's output).
    """

    name = "mutant-conv-flipped-kernel"
    family = "conv"
    expected_killers = ("agreement", "models")

    @staticmethod
    def live_call(backend: NumpyBackend) -> Any:
        return backend.conv2d(X4, W4, np.zeros(3))

    def conv2d(
        self, x: Any, w: Any, b: Any, *, stride: Any = 1, padding: Any = 0
    ) -> Any:
        w = self._float("w", w, ndim=4)
        return super().conv2d(x, w[:, :, ::-1, ::-1], b, stride=stride, padding=padding)


class OneSidedPadding(NumpyBackend):
    """conv2d pads only the top and the left (``padding`` rows once, not twice).

    The bug: padding applied as ``np.pad(x, ((0, 0), (0, 0), (p, 0), (p, 0)))``,
    as when porting TensorFlow's asymmetric "SAME" padding; the output has
    ``floor((H + p - k) / s) + 1`` rows instead of ``floor((H + 2p - k) / s) + 1``.

    Caught by: agreement (shape of ``conv2d``'s output), identities (the output
    size formula, the notes' multiply-add count read off the layer) and models
    (the residual block's shapes no longer line up).
    """

    name = "mutant-conv-one-sided-padding"
    family = "conv"
    expected_killers = ("agreement", "identities", "models")

    @staticmethod
    def live_call(backend: NumpyBackend) -> Any:
        return backend.conv2d(X4, W4, np.zeros(3), padding=1)

    def conv2d(
        self, x: Any, w: Any, b: Any, *, stride: Any = 1, padding: Any = 0
    ) -> Any:
        x, w, b, geometry = self._check_conv2d(x, w, b, stride, padding)
        ph, pw = geometry.padding
        if ph or pw:
            n, c, h, width = x.shape
            padded = self.xp.zeros((n, c, h + ph, width + pw), dtype=x.dtype)
            padded[:, :, ph:, pw:] = x
            x = padded
        return super().conv2d(x, w, b, stride=stride, padding=0)


class BiasGradientAveraged(NumpyBackend):
    """conv2d_backward averages the bias gradient over the batch instead of summing.

    The bug: ``db = dout.sum(axis=(2, 3)).mean(axis=0)``, the loss's batch mean
    applied a second time (the upstream gradient already carries the 1/N of a
    mean-reduced loss). Invisible with a batch of one.

    Caught by: agreement (``conv2d_backward``'s ``db``) and models (the residual
    block's ``db1``, ``db2`` with two samples).
    """

    name = "mutant-conv-bias-grad-averaged"
    family = "conv"
    expected_killers = ("agreement", "models")

    @staticmethod
    def live_call(backend: NumpyBackend) -> Any:
        return backend.conv2d_backward(np.ones((2, 3, 3, 3)), X4, W4, np.zeros(3))

    def conv2d_backward(
        self, dout: Any, x: Any, w: Any, b: Any, *, stride: Any = 1, padding: Any = 0
    ) -> tuple[Any, Any, Any]:
        dx, dw, db = super().conv2d_backward(
            dout, x, w, b, stride=stride, padding=padding
        )
        return dx, dw, db / self._float("x", x).shape[0]


flipped_kernel = FlippedKernel()
one_sided_padding = OneSidedPadding()
bias_grad_averaged = BiasGradientAveraged()
