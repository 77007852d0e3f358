"""Convention mutants: the NumPy backend wrong exactly at a kink or an end.

The generic properties keep their inputs away from kinks and ends (inputs at
least 1e-3 from 0, probabilities in [0.05, 0.95]), so these bugs pass them;
``properties/test_conventions.py`` puts its inputs exactly there.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from backends.numpy_backend import NumpyBackend

__all__ = ["BceWithoutClamp", "ReluGradientOneAtZero"]


class ReluGradientOneAtZero(NumpyBackend):
    """relu_backward lets the gradient through at 0: ``where(x >= 0, dout, 0)``.

    The bug: ``>=`` for ``>``, the subgradient 1 at the kink where the
    convention (torch's) is 0. Invisible on any input away from 0.

    Caught by: conventions ('relu subgradient at 0 is 0').
    """

    name = "mutant-relu-gradient-one-at-zero"
    family = "activations"
    expected_killers = ("conventions",)

    @staticmethod
    def live_call(backend: NumpyBackend) -> Any:
        return backend.relu_backward(np.ones(3), np.array([-1.0, 0.0, 1.0]))

    def relu_backward(self, dout: Any, x: Any) -> tuple[Any]:
        x = self._float("x", x)
        dout = self._upstream(dout, x.shape)
        return (np.where(x >= 0, dout, 0).astype(x.dtype),)


class BceWithoutClamp(NumpyBackend):
    """binary_cross_entropy with plain logs: ``-mean(t log p + (1 - t) log(1 - p))``.

    The bug: the logs are not clamped at -100, so ``p = 0`` with ``t = 1``
    gives ``inf`` (and ``t = 0`` gives ``0 * -inf = NaN``) where the contract
    (torch's) gives a finite loss. Exact for probabilities away from 0 and 1.

    Caught by: conventions ('bce logs clamped at -100').
    """

    name = "mutant-bce-without-clamp"
    family = "losses"
    expected_killers = ("conventions",)

    @staticmethod
    def live_call(backend: NumpyBackend) -> Any:
        return backend.binary_cross_entropy(
            np.array([[0.0, 0.5]]), np.array([[1.0, 0.0]])
        )

    def binary_cross_entropy(self, prob: Any, target: Any) -> Any:
        prob, target = self._loss_pair("prob", prob, "target", target)
        self._check_probabilities("prob", prob)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = target * np.log(prob) + (1 - target) * np.log1p(-prob)
        return self._scalar(-terms.sum() / prob.shape[0], prob.dtype)


relu_gradient_one_at_zero = ReluGradientOneAtZero()
bce_without_clamp = BceWithoutClamp()
