"""Activation mutants: the NumPy backend with one activation (or its backward) wrong."""

from __future__ import annotations

from typing import Any

import numpy as np

from backends.mutants.probes import LOGITS, X4
from backends.numpy_backend import NumpyBackend

__all__ = [
    "GeluExactAsTanh",
    "LeakyReluBackwardAsRelu",
    "SigmoidBackwardFromInput",
    "SiluBackwardSigmoidNotComplemented",
    "SoftmaxWithoutMaxShift",
    "SoftplusNaive",
]


class SoftmaxWithoutMaxShift(NumpyBackend):
    """softmax as ``exp(x) / sum(exp(x))``, without subtracting the max.

    The bug: the unstable formula straight from the definition: ``exp``
    overflows to inf past 88 (float32) or 709 (float64) and the output is
    ``inf / inf = NaN``. Exact for the small logits of the agreement tests.

    Caught by: stability (finite and accurate at magnitude 1e4, shift
    invariance, sums to 1).
    """

    name = "mutant-softmax-no-max-shift"
    family = "activations"
    expected_killers = ("stability",)

    @staticmethod
    def live_call(backend: NumpyBackend) -> Any:
        return backend.softmax(LOGITS)

    def softmax(self, x: Any, *, axis: int = -1) -> Any:
        x, axis = self._check_axis(x, axis)
        e = self.xp.exp(x)
        return e / e.sum(axis=axis, keepdims=True)


class SoftplusNaive(NumpyBackend):
    """softplus as ``log(1 + exp(x))``.

    The bug: the unstable formula: ``exp(x)`` overflows past 88 (float32),
    giving inf where softplus(x) is x. Exact enough for small inputs.

    Caught by: stability (finite and accurate at magnitude 1e4).
    """

    name = "mutant-softplus-naive"
    family = "activations"
    expected_killers = ("stability",)

    @staticmethod
    def live_call(backend: NumpyBackend) -> Any:
        return backend.softplus(LOGITS)

    def softplus(self, x: Any) -> Any:
        xp = self.xp
        x = self._float("x", x)
        return xp.log(1 + xp.exp(x))


class SigmoidBackwardFromInput(NumpyBackend):
    """sigmoid_backward computes ``dout * x * (1 - x)``: s(1 - s) with s = x.

    The bug: the derivative written in terms of the output, ``s (1 - s)``,
    but fed the input (the cache mix-up of a layer that stores ``x`` where its
    backward expects ``sigmoid(x)``).

    Caught by: agreement (``sigmoid_backward``) and identities (sigmoid' = s (1 - s)
    from the backend's own forward).
    """

    name = "mutant-sigmoid-backward-from-input"
    family = "activations"
    expected_killers = ("agreement", "identities")

    @staticmethod
    def live_call(backend: NumpyBackend) -> Any:
        return backend.sigmoid_backward(np.ones((2, 3)), LOGITS / 500)

    def sigmoid_backward(self, dout: Any, x: Any) -> tuple[Any]:
        x = self._float("x", x)
        dout = self._upstream(dout, x.shape)
        return (dout * x * (1 - x),)


class LeakyReluBackwardAsRelu(NumpyBackend):
    """leaky_relu_backward passes no gradient for x < 0, as ReLU's does.

    The bug: the backward copied from ReLU and not adapted: the forward leaks,
    the backward does not, so negative units still "die".

    Caught by: agreement (``leaky_relu_backward``) and identities (leaky
    ReLU's gradient is never 0).
    """

    name = "mutant-leaky-relu-backward-as-relu"
    family = "activations"
    expected_killers = ("agreement", "identities")

    @staticmethod
    def live_call(backend: NumpyBackend) -> Any:
        return backend.leaky_relu_backward(np.ones((2, 3)), LOGITS)

    def leaky_relu_backward(
        self, dout: Any, x: Any, *, alpha: float = 0.01
    ) -> tuple[Any]:
        (dx,) = super().relu_backward(dout, x)
        return (dx,)


class GeluExactAsTanh(NumpyBackend):
    """gelu with ``approximate="none"`` computes the tanh approximation.

    The bug: the cheap form ``x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``
    served for both modes (a kernel that ignores its mode flag). The two
    differ by up to about 2e-4 near ``|x| = 2``, far above float32's
    tolerance; both are odd-symmetric in the same way, so only a comparison
    with the exact form sees it.

    Caught by: agreement (``gelu`` in its ``none`` variant) and conventions
    (gelu's default ``approximate="none"``).
    """

    name = "mutant-gelu-exact-as-tanh"
    family = "activations"
    expected_killers = ("agreement", "conventions")

    @staticmethod
    def live_call(backend: NumpyBackend) -> Any:
        return backend.gelu(X4)

    def gelu(self, x: Any, *, approximate: str = "none") -> Any:
        return super().gelu(x, approximate="tanh")


class SiluBackwardSigmoidNotComplemented(NumpyBackend):
    """silu_backward computes ``sigmoid(x) (1 + x sigmoid(x))``.

    The bug: the derivative ``sigmoid(x) (1 + x (1 - sigmoid(x)))`` with the
    complement ``1 - sigmoid(x) = sigmoid(-x)`` dropped. Exact at ``x = 0``
    only.

    Caught by: agreement (``silu_backward``) and identities
    (``f'(x) + f'(-x) = 1``).
    """

    name = "mutant-silu-backward-sigmoid-not-complemented"
    family = "activations"
    expected_killers = ("agreement", "identities")

    @staticmethod
    def live_call(backend: NumpyBackend) -> Any:
        return backend.silu_backward(np.ones_like(X4), X4)

    def silu_backward(self, dout: Any, x: Any) -> tuple[Any]:
        x = self._float("x", x)
        dout = self._upstream(dout, x.shape)
        s = self._sigmoid(x)
        return (dout * s * (1 + x * s),)


softmax_no_max_shift = SoftmaxWithoutMaxShift()
softplus_naive = SoftplusNaive()
sigmoid_backward_from_input = SigmoidBackwardFromInput()
leaky_relu_backward_as_relu = LeakyReluBackwardAsRelu()
gelu_exact_as_tanh = GeluExactAsTanh()
silu_backward_sigmoid_not_complemented = SiluBackwardSigmoidNotComplemented()
