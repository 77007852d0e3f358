"""Layers on torch: linear, conv2d, pooling, flatten, softmax, maxout, upsample2d.

Each forward is ``torch.nn.functional`` (or plain tensor ops where torch has no
primitive); each backward is autograd's vector-Jacobian product of that same
forward. conv2d is one ``F.conv2d`` call, so it lives here rather than in a
module of its own. Where torch's convention differs from the contract:

* ``maxout``: torch has no primitive; it is one ``F.linear`` over the stacked
  pieces and a max over them.
* ``flatten``: ``torch.flatten`` returns a view; the contract's output never
  aliases its input, so it is copied.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from backends.torch.core import F, Tensor, TorchCore, torch
from reference.shapes import (
    conv2d_geometry,
    linear_shapes,
    max_pool2d_geometry,
    maxout_shapes,
    pool2d_geometry,
    require_min_ndim,
    softmax_axis,
    upsample2d_geometry,
)


def _maxout(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    # No torch primitive: the k linear pieces as one F.linear over the stacked
    # (k * D_out, D_in) weights, then the max over k. torch.max over a dim sends
    # the gradient to the first maximal piece, as the contract says.
    pieces, out_features, in_features = w.shape
    stacked = F.linear(x, w.reshape(pieces * out_features, in_features), b.reshape(-1))
    return stacked.reshape(x.shape[0], pieces, out_features).max(dim=1).values


def _flatten(x: Tensor) -> Tensor:
    # A copy, not torch.flatten's view: the output never aliases the input.
    return torch.flatten(x, 1).clone()


class Layers(TorchCore):
    """linear, conv2d, the two pools, flatten, (log_)softmax, maxout, upsample2d."""

    def _linear_args(self, x: Tensor, w: Tensor, b: Tensor) -> list[Tensor]:
        x = self._float_tensor("x", x, ndim=2)
        w = self._float_tensor("w", w, ndim=2)
        b = self._float_tensor("b", b, ndim=1)
        linear_shapes(tuple(x.shape), tuple(w.shape), tuple(b.shape), x.element_size())
        return [x, w, b]

    def linear(self, x: Tensor, w: Tensor, b: Tensor) -> Tensor:
        return self._forward(F.linear, *self._linear_args(x, w, b))

    def linear_backward(
        self, dout: Tensor, x: Tensor, w: Tensor, b: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        return self._backward(F.linear, dout, *self._linear_args(x, w, b))

    def _conv2d_args(
        self, x: Tensor, w: Tensor, b: Tensor, stride: Any, padding: Any
    ) -> tuple[list[Tensor], Callable]:
        x = self._float_tensor("x", x, ndim=4)
        w = self._float_tensor("w", w, ndim=4)
        b = self._float_tensor("b", b, ndim=1)
        stride, padding, _ = conv2d_geometry(
            tuple(x.shape),
            tuple(w.shape),
            tuple(b.shape),
            stride,
            padding,
            x.element_size(),
        )

        def function(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
            return F.conv2d(x, w, b, stride=stride, padding=padding)

        return [x, w, b], function

    def conv2d(
        self, x: Tensor, w: Tensor, b: Tensor, *, stride: Any = 1, padding: Any = 0
    ) -> Tensor:
        arrays, function = self._conv2d_args(x, w, b, stride, padding)
        return self._forward(function, *arrays)

    def conv2d_backward(
        self,
        dout: Tensor,
        x: Tensor,
        w: Tensor,
        b: Tensor,
        *,
        stride: Any = 1,
        padding: Any = 0,
    ) -> tuple[Tensor, Tensor, Tensor]:
        arrays, function = self._conv2d_args(x, w, b, stride, padding)
        return self._backward(function, dout, *arrays)

    def _max_pool2d_args(
        self, x: Tensor, kernel_size: Any, stride: Any, padding: Any
    ) -> tuple[Tensor, Callable]:
        x = self._float_tensor("x", x, ndim=4)
        # stride None means the kernel size, as in torch.
        kernel, step, pad, _ = max_pool2d_geometry(
            tuple(x.shape), kernel_size, stride, padding, x.element_size()
        )

        # F.max_pool2d pads with -inf and sends the gradient to the first maximum
        # of each window in row-major order, as the contract says.
        def function(x: Tensor) -> Tensor:
            return F.max_pool2d(x, kernel, step, pad)

        return x, function

    def max_pool2d(
        self, x: Tensor, *, kernel_size: Any, stride: Any = None, padding: Any = 0
    ) -> Tensor:
        x, function = self._max_pool2d_args(x, kernel_size, stride, padding)
        return self._forward(function, x)

    def max_pool2d_backward(
        self,
        dout: Tensor,
        x: Tensor,
        *,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
    ) -> tuple[Tensor]:
        x, function = self._max_pool2d_args(x, kernel_size, stride, padding)
        return self._backward(function, dout, x)

    def _avg_pool2d_args(
        self, x: Tensor, kernel_size: Any, stride: Any
    ) -> tuple[Tensor, Callable]:
        x = self._float_tensor("x", x, ndim=4)
        kernel, step, _, _ = pool2d_geometry(
            tuple(x.shape), kernel_size, stride, 0, x.element_size()
        )

        def function(x: Tensor) -> Tensor:
            return F.avg_pool2d(x, kernel, step)

        return x, function

    def avg_pool2d(self, x: Tensor, *, kernel_size: Any, stride: Any = None) -> Tensor:
        x, function = self._avg_pool2d_args(x, kernel_size, stride)
        return self._forward(function, x)

    def avg_pool2d_backward(
        self, dout: Tensor, x: Tensor, *, kernel_size: Any, stride: Any = None
    ) -> tuple[Tensor]:
        x, function = self._avg_pool2d_args(x, kernel_size, stride)
        return self._backward(function, dout, x)

    def _flatten_args(self, x: Tensor) -> Tensor:
        x = self._float_tensor("x", x)
        require_min_ndim("x", tuple(x.shape), 2)
        return x

    def flatten(self, x: Tensor) -> Tensor:
        return self._forward(_flatten, self._flatten_args(x))

    def flatten_backward(self, dout: Tensor, x: Tensor) -> tuple[Tensor]:
        return self._backward(_flatten, dout, self._flatten_args(x))

    def _softmax_args(self, x: Tensor, axis: object) -> tuple[Tensor, int]:
        """``x`` and the checked axis, for softmax and log_softmax."""
        x = self._float_tensor("x", x)
        return x, softmax_axis(tuple(x.shape), axis)

    def softmax(self, x: Tensor, *, axis: int = -1) -> Tensor:
        x, axis = self._softmax_args(x, axis)
        return self._forward(lambda x: F.softmax(x, dim=axis), x)

    def softmax_backward(
        self, dout: Tensor, x: Tensor, *, axis: int = -1
    ) -> tuple[Tensor]:
        x, axis = self._softmax_args(x, axis)
        return self._backward(lambda x: F.softmax(x, dim=axis), dout, x)

    def log_softmax(self, x: Tensor, *, axis: int = -1) -> Tensor:
        x, axis = self._softmax_args(x, axis)
        return self._forward(lambda x: F.log_softmax(x, dim=axis), x)

    def log_softmax_backward(
        self, dout: Tensor, x: Tensor, *, axis: int = -1
    ) -> tuple[Tensor]:
        x, axis = self._softmax_args(x, axis)
        return self._backward(lambda x: F.log_softmax(x, dim=axis), dout, x)

    def _maxout_args(self, x: Tensor, w: Tensor, b: Tensor) -> list[Tensor]:
        x = self._float_tensor("x", x, ndim=2)
        w = self._float_tensor("w", w, ndim=3)
        b = self._float_tensor("b", b, ndim=2)
        maxout_shapes(tuple(x.shape), tuple(w.shape), tuple(b.shape), x.element_size())
        return [x, w, b]

    def maxout(self, x: Tensor, w: Tensor, b: Tensor) -> Tensor:
        return self._forward(_maxout, *self._maxout_args(x, w, b))

    def maxout_backward(
        self, dout: Tensor, x: Tensor, w: Tensor, b: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        return self._backward(_maxout, dout, *self._maxout_args(x, w, b))

    def _upsample2d_args(
        self, x: Tensor, scale_factor: object, mode: object
    ) -> tuple[Tensor, Callable]:
        x = self._float_tensor("x", x, ndim=4)
        factor, mode = upsample2d_geometry(
            tuple(x.shape), scale_factor, mode, x.element_size()
        )
        if mode == "bilinear":
            # Half-pixel centres, source coordinate clamped at 0: torch's
            # align_corners=False is the contract's convention.
            def function(x: Tensor) -> Tensor:
                return F.interpolate(
                    x, scale_factor=factor, mode="bilinear", align_corners=False
                )
        else:
            # "nearest" picks source floor(i / factor), i.e. each pixel repeated.
            def function(x: Tensor) -> Tensor:
                return F.interpolate(x, scale_factor=factor, mode="nearest")

        return x, function

    def upsample2d(self, x: Tensor, *, scale_factor: int, mode: str) -> Tensor:
        x, function = self._upsample2d_args(x, scale_factor, mode)
        return self._forward(function, x)

    def upsample2d_backward(
        self, dout: Tensor, x: Tensor, *, scale_factor: int, mode: str
    ) -> tuple[Tensor]:
        x, function = self._upsample2d_args(x, scale_factor, mode)
        return self._backward(function, dout, x)
