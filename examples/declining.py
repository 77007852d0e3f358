"""A backend that declines the options it lacks, as an adapter to a real library would.

A library rarely has every option of the contract: a softmax only over the
last axis, no gradient with respect to a loss's target, no derivative for one
activation. Its adapter says so by raising ``NotImplementedError`` from the
operation, for exactly the inputs or hyperparameters it cannot handle:

* the suite then *declines* that example instead of failing it: Hypothesis
  rejects it and keeps searching the inputs the backend does support, so a
  real difference there is still found;
* a check whose every example was declined is reported as **unsupported**
  (its own outcome, never a failure), with the backend's message;
* a backward may return ``None`` for a gradient it cannot compute (here the
  gradient of ``mse_loss`` with respect to its target): the gradients it does
  return are checked.

Raise ``NotImplementedError`` only for what the library lacks. A wrong shape,
an invalid hyperparameter or a bug must raise what it raises (``ValueError``,
``TypeError``...), which the suite reports as a failure.

    pytest properties/test_agreement.py --backend examples.declining:backend
"""

from __future__ import annotations

import numpy as np

from examples.tiny import TinyBackend


def _last_axis_only(x: np.ndarray, axis: int) -> None:
    if axis not in (-1, x.ndim - 1):
        raise NotImplementedError(
            f"softmax only over the last axis (axis=-1), not axis={axis}"
        )


class DecliningBackend(TinyBackend):
    """The tiny backend with three options declined."""

    name = "tiny_declining"

    def softmax(self, x: np.ndarray, *, axis: int = -1) -> np.ndarray:
        _last_axis_only(x, axis)
        return super().softmax(x, axis=axis)

    def softmax_backward(
        self, dout: np.ndarray, x: np.ndarray, *, axis: int = -1
    ) -> tuple[np.ndarray]:
        _last_axis_only(x, axis)
        return super().softmax_backward(dout, x, axis=axis)

    def mse_loss_backward(
        self, dout: np.ndarray | float, pred: np.ndarray, target: np.ndarray
    ) -> tuple[np.ndarray, None]:
        """Only the gradient with respect to ``pred``: targets are constants here."""
        dpred, _ = super().mse_loss_backward(dout, pred, target)
        return dpred, None

    def tanh_backward(self, dout: np.ndarray, x: np.ndarray) -> tuple[np.ndarray]:
        raise NotImplementedError("this library has no derivative of tanh")


backend = DecliningBackend()
