"""Activations on torch: ``torch.nn.functional`` and the ``torch`` elementwise ops.

Each forward is the torch function; each backward is autograd's
vector-Jacobian product of that same function (:meth:`TorchCore._backward`).
Where torch's convention differs from the contract:

* ``softplus``: ``F.softplus`` returns ``x`` past ``threshold=20``, off by up to
  ``2e-9`` in float64; float64 uses ``threshold=40``, where it is exact.

Measured against the reference and left as torch computes them (outside every
input the suite draws, or inside the contract's tolerance):

* ``gelu`` with ``approximate="tanh"``: torch's backward is NaN once ``x**3``
  overflows (``|x|`` past about 7e12 in float32, 5e102 in float64), where the
  derivative is 1 (or 0); the reference clips ``x`` where its factor is
  exactly 0 or 1, and so does the array backend.
* ``gelu`` (both forms): torch's far left tail loses its relative accuracy
  (``1 + erf`` cancels below about -5) and reaches 0 before the reference's
  subnormals; the values there are far below ``atol``.
"""

from __future__ import annotations

from collections.abc import Callable

from backends.torch.core import F, Tensor, TorchCore, torch
from reference._checks import require_non_negative
from reference.shapes import gelu_hyper, prelu_alpha_shape


def _softplus(x: Tensor) -> Tensor:
    # F.softplus returns x itself (derivative 1) above its threshold, 20 by
    # default, where the contract's log(1 + e^x) differs by e^-x: below float32's
    # resolution, but up to 2e-9 (1e-9 relative, in the gradient) in float64. A
    # threshold of 40 for float64 puts the switch where e^-40 < 2**-53 and
    # e^40 is still far from overflow, so both branches agree to the last bit.
    threshold = 40.0 if x.dtype == torch.float64 else 20.0
    return F.softplus(x, beta=1.0, threshold=threshold)


class Activations(TorchCore):
    """relu, leaky_relu, prelu, elu, selu, sigmoid, tanh, softplus, abs_rectify,
    gelu, silu."""

    def relu(self, x: Tensor) -> Tensor:
        return self._forward(F.relu, self._float_tensor("x", x))

    def relu_backward(self, dout: Tensor, x: Tensor) -> tuple[Tensor]:
        return self._backward(F.relu, dout, self._float_tensor("x", x))

    def _leaky_relu_args(self, x: Tensor, alpha: float) -> tuple[Tensor, Callable]:
        alpha = require_non_negative("alpha", alpha)

        def function(x: Tensor) -> Tensor:
            return F.leaky_relu(x, negative_slope=alpha)

        return self._float_tensor("x", x), function

    def leaky_relu(self, x: Tensor, *, alpha: float = 0.01) -> Tensor:
        x, function = self._leaky_relu_args(x, alpha)
        return self._forward(function, x)

    def leaky_relu_backward(
        self, dout: Tensor, x: Tensor, *, alpha: float = 0.01
    ) -> tuple[Tensor]:
        x, function = self._leaky_relu_args(x, alpha)
        return self._backward(function, dout, x)

    def _prelu_args(self, x: Tensor, alpha: Tensor) -> tuple[Tensor, Tensor]:
        x = self._float_tensor("x", x)
        alpha = self._float_tensor("alpha", alpha, ndim=1)
        # F.prelu applies a (C,) alpha over axis 1.
        prelu_alpha_shape(tuple(x.shape), tuple(alpha.shape))
        return x, alpha

    def prelu(self, x: Tensor, alpha: Tensor) -> Tensor:
        return self._forward(F.prelu, *self._prelu_args(x, alpha))

    def prelu_backward(
        self, dout: Tensor, x: Tensor, alpha: Tensor
    ) -> tuple[Tensor, Tensor]:
        return self._backward(F.prelu, dout, *self._prelu_args(x, alpha))

    def _elu_args(self, x: Tensor, alpha: float) -> tuple[Tensor, Callable]:
        alpha = require_non_negative("alpha", alpha)
        return self._float_tensor("x", x), lambda x: F.elu(x, alpha=alpha)

    def elu(self, x: Tensor, *, alpha: float = 1.0) -> Tensor:
        x, function = self._elu_args(x, alpha)
        return self._forward(function, x)

    def elu_backward(
        self, dout: Tensor, x: Tensor, *, alpha: float = 1.0
    ) -> tuple[Tensor]:
        x, function = self._elu_args(x, alpha)
        return self._backward(function, dout, x)

    def selu(self, x: Tensor) -> Tensor:
        return self._forward(F.selu, self._float_tensor("x", x))

    def selu_backward(self, dout: Tensor, x: Tensor) -> tuple[Tensor]:
        return self._backward(F.selu, dout, self._float_tensor("x", x))

    def sigmoid(self, x: Tensor) -> Tensor:
        return self._forward(torch.sigmoid, self._float_tensor("x", x))

    def sigmoid_backward(self, dout: Tensor, x: Tensor) -> tuple[Tensor]:
        return self._backward(torch.sigmoid, dout, self._float_tensor("x", x))

    def tanh(self, x: Tensor) -> Tensor:
        return self._forward(torch.tanh, self._float_tensor("x", x))

    def tanh_backward(self, dout: Tensor, x: Tensor) -> tuple[Tensor]:
        return self._backward(torch.tanh, dout, self._float_tensor("x", x))

    def softplus(self, x: Tensor) -> Tensor:
        return self._forward(_softplus, self._float_tensor("x", x))

    def softplus_backward(self, dout: Tensor, x: Tensor) -> tuple[Tensor]:
        return self._backward(_softplus, dout, self._float_tensor("x", x))

    def abs_rectify(self, x: Tensor) -> Tensor:
        return self._forward(torch.abs, self._float_tensor("x", x))

    def abs_rectify_backward(self, dout: Tensor, x: Tensor) -> tuple[Tensor]:
        # autograd's derivative of |x| is sign(x), 0 at x = 0.
        return self._backward(torch.abs, dout, self._float_tensor("x", x))

    def _gelu_args(self, x: Tensor, approximate: str) -> tuple[Tensor, Callable]:
        approximate = gelu_hyper(approximate)
        return self._float_tensor("x", x), lambda x: F.gelu(x, approximate=approximate)

    def gelu(self, x: Tensor, *, approximate: str = "none") -> Tensor:
        x, function = self._gelu_args(x, approximate)
        return self._forward(function, x)

    def gelu_backward(
        self, dout: Tensor, x: Tensor, *, approximate: str = "none"
    ) -> tuple[Tensor]:
        x, function = self._gelu_args(x, approximate)
        return self._backward(function, dout, x)

    def silu(self, x: Tensor) -> Tensor:
        return self._forward(F.silu, self._float_tensor("x", x))

    def silu_backward(self, dout: Tensor, x: Tensor) -> tuple[Tensor]:
        return self._backward(F.silu, dout, self._float_tensor("x", x))
