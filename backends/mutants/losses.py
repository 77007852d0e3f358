"""Loss mutants: the NumPy backend with one loss (or its backward) wrong."""

from __future__ import annotations

from typing import Any

import numpy as np

from backends.mutants.probes import BN_X, LABELS, LOGITS
from backends.numpy_backend import NumpyBackend
from reference._checks import require_non_negative

__all__ = [
    "BinaryCrossEntropyWithLogitsNaive",
    "CrossEntropySummedOverBatch",
    "HingeCountsCorrectClass",
    "MseMeanOverElements",
]


class BinaryCrossEntropyWithLogitsNaive(NumpyBackend):
    """BCE with logits as ``-t log(sigmoid(z)) - (1 - t) log(1 - sigmoid(z))``.

    The bug: the unstable formula, the probability form composed with a
    sigmoid instead of ``softplus(z) - t z``. Once ``sigmoid(z)`` rounds to 1
    (z > 17 in float32, 37 in float64) ``log(1 - sigmoid(z))`` is ``log 0``: the
    loss is inf where it is a finite ``z``. Exact enough for small logits.

    Caught by: stability (finite and accurate at magnitude 1e4); in float32
    sometimes also agreement, where ``1 - sigmoid(z)`` already loses digits
    for logits near 8.
    """

    name = "mutant-bce-logits-naive"
    family = "losses"
    expected_killers = ("stability",)

    @staticmethod
    def live_call(backend: NumpyBackend) -> Any:
        return backend.binary_cross_entropy_with_logits(
            LOGITS, np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 1.0]])
        )

    def binary_cross_entropy_with_logits(self, logits: Any, target: Any) -> Any:
        xp = self.xp
        logits, target = self._loss_pair("logits", logits, "target", target)
        prob = 1 / (1 + xp.exp(-logits))
        per_element = -(target * xp.log(prob) + (1 - target) * xp.log(1 - prob))
        return self._scalar(per_element.sum() / logits.shape[0], logits.dtype)


class CrossEntropySummedOverBatch(NumpyBackend):
    """softmax_cross_entropy sums over the batch instead of taking the mean.

    The bug: ``reduction="sum"`` where the contract means over the batch; the
    loss (and, with it, the effective learning rate) grows with the batch size.
    Invisible with a batch of one.

    Caught by: agreement (``softmax_cross_entropy`` forward), models (the
    two-layer MLP's loss) and stability (the loss at large logits).
    """

    name = "mutant-cross-entropy-summed"
    family = "losses"
    expected_killers = ("agreement", "models", "stability")

    @staticmethod
    def live_call(backend: NumpyBackend) -> Any:
        return backend.softmax_cross_entropy(LOGITS[:1].repeat(2, axis=0), LABELS)

    def softmax_cross_entropy(self, logits: Any, labels: Any) -> Any:
        mean = super().softmax_cross_entropy(logits, labels)
        return self._scalar(mean * self._float("logits", logits).shape[0], mean.dtype)


class MseMeanOverElements(NumpyBackend):
    """mse_loss divides by the number of elements instead of the batch size.

    The bug: torch's ``F.mse_loss`` default (a mean over every element) where
    the contract sums over the non-batch axes and means over the batch.
    Invisible for one value per sample.

    Caught by: agreement (``mse_loss`` forward with more than one value per
    sample).
    """

    name = "mutant-mse-mean-over-elements"
    family = "losses"
    expected_killers = ("agreement",)

    @staticmethod
    def live_call(backend: NumpyBackend) -> Any:
        return backend.mse_loss(BN_X, np.zeros_like(BN_X))

    def mse_loss(self, pred: Any, target: Any) -> Any:
        pred, target = self._loss_pair("pred", pred, "target", target)
        residual = pred - target
        return self._scalar(self.xp.square(residual).sum() / pred.size, pred.dtype)


class HingeCountsCorrectClass(NumpyBackend):
    """multiclass_hinge_loss includes the correct class in the sum over classes.

    The bug: the ``if j == y[i]: continue`` of cs231n's ``svm_loss_naive``
    forgotten: every sample adds ``max(0, s_y - s_y + margin) = margin``.

    Caught by: agreement (``multiclass_hinge_loss`` forward with margin > 0).
    """

    name = "mutant-hinge-counts-correct-class"
    family = "losses"
    expected_killers = ("agreement",)

    @staticmethod
    def live_call(backend: NumpyBackend) -> Any:
        return backend.multiclass_hinge_loss(LOGITS[:1], LABELS[:1])

    def multiclass_hinge_loss(
        self, scores: Any, labels: Any, *, margin: float = 1.0
    ) -> Any:
        loss = super().multiclass_hinge_loss(scores, labels, margin=margin)
        return self._scalar(loss + require_non_negative("margin", margin), loss.dtype)


bce_logits_naive = BinaryCrossEntropyWithLogitsNaive()
cross_entropy_summed = CrossEntropySummedOverBatch()
mse_mean_over_elements = MseMeanOverElements()
hinge_counts_correct_class = HingeCountsCorrectClass()
