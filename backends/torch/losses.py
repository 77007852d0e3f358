"""Losses and penalties on torch: ``torch.nn.functional``'s losses, tensor ops.

Each forward is the torch loss (plain tensor ops for the penalties); each
backward is autograd's vector-Jacobian product of that same forward. Where
torch's convention differs from the contract:

* ``mse_loss`` and both binary cross-entropies: torch means over every element;
  the contract sums over the non-batch axes and means over the batch, so they
  use ``reduction="sum"`` divided by ``N``.
* ``binary_cross_entropy_backward``: torch's gradient divides by
  ``max(p (1 - p), 1e-12)``, which is not the derivative of its clamped forward
  within 1e-12 of 0 and 1; the backward differentiates the same clamped logs
  written in torch ops instead.
* ``multiclass_hinge_loss``: ``F.multi_margin_loss`` (``p=1``) divides each
  sample's sum over the wrong classes by the class count ``C``; the contract does
  not, so the sum is multiplied back by ``C`` (and divided by ``N``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from backends.torch.core import (
    F,
    Tensor,
    TorchCore,
    holds_everywhere,
    numpy_kind,
    torch,
)
from reference._checks import (
    require_integer_kind,
    require_labels_in_range,
    require_labels_shape,
    require_non_negative,
    require_probabilities,
    require_shape,
)
from reference.shapes import require_batch, require_scores

# Binary cross-entropy clamps log p at -100 (torch's and the contract's choice).
_LOG_CLAMP = -100.0
_SMALLEST_PROBABILITY = math.exp(_LOG_CLAMP)


def _mse_loss(pred: Tensor, target: Tensor) -> Tensor:
    # torch's default reduction="mean" divides by the element count; the contract
    # sums over the non-batch axes and means over the batch.
    return F.mse_loss(pred, target, reduction="sum") / pred.shape[0]


def _binary_cross_entropy(prob: Tensor, target: Tensor) -> Tensor:
    # Same adaptation as mse_loss: sum, then divide by the batch size. torch
    # clamps each log at -100, as the contract does.
    return F.binary_cross_entropy(prob, target, reduction="sum") / prob.shape[0]


def _binary_cross_entropy_for_gradient(prob: Tensor, target: Tensor) -> Tensor:
    """The function of :func:`_binary_cross_entropy`, written for its gradient.

    F.binary_cross_entropy's backward is ``(p - t) / max(p (1 - p), 1e-12)``: not
    the derivative of its forward where ``p`` or ``1 - p`` is below 1e-12 (at
    ``p = 0`` and ``t = 1`` it gives -1e12, where the clamped log is constant and
    the contract's derivative is 0). The same clamped logs in torch ops give
    autograd the exact derivative: ``t / p`` while ``p >= e^-100``, else 0.

    The log is clamped, not the probability: in float32, ``e^-100`` is a
    subnormal (3.7e-44 held with 6 significant bits), whose log is -99.983, so
    clamping ``p`` at it gave a target gradient of 99.983 instead of 100 at
    ``p = 0`` and ``p = 1``. The ``where`` feeds the log 1 where the clamp
    applies, so its unselected branch has a finite gradient (no 0 * inf).
    """
    return (
        -(target * _clamped_log(prob) + (1.0 - target) * _clamped_log(1.0 - prob)).sum()
        / prob.shape[0]
    )


def _clamped_log(p: Tensor) -> Tensor:
    """``max(log p, -100)``, differentiable everywhere with derivative 0 below."""
    above = p >= _SMALLEST_PROBABILITY
    return torch.where(above, torch.log(torch.where(above, p, 1.0)), _LOG_CLAMP)


def _binary_cross_entropy_with_logits(logits: Tensor, target: Tensor) -> Tensor:
    # Same adaptation as mse_loss: sum, then divide by the batch size.
    return (
        F.binary_cross_entropy_with_logits(logits, target, reduction="sum")
        / logits.shape[0]
    )


def _softmax_cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    return F.cross_entropy(logits, labels, reduction="sum") / logits.shape[0]


def _multiclass_hinge_loss(scores: Tensor, labels: Tensor, margin: float) -> Tensor:
    # F.multi_margin_loss with p=1 is, per sample,
    # sum_{j != y} max(0, margin - s_y + s_j) / C: the hinge of the notes divided
    # by the class count C. The contract has no 1/C, so multiply it back, and
    # mean over the batch.
    batch, classes = scores.shape
    total = F.multi_margin_loss(scores, labels, p=1, margin=margin, reduction="sum")
    return total * classes / batch


def _l1_penalty(w: Tensor) -> Tensor:
    return w.abs().sum()


def _l2_penalty(w: Tensor) -> Tensor:
    return (w * w).sum()


def _elastic_net_penalty(w: Tensor, beta: float) -> Tensor:
    return (beta * (w * w) + w.abs()).sum()


def _require_probabilities(name: str, array: Tensor) -> None:
    require_probabilities(name, holds_everywhere((array >= 0) & (array <= 1)))


class Losses(TorchCore):
    """mse_loss, the cross-entropies, multiclass_hinge_loss and the penalties."""

    def _with_target_args(
        self, name: str, value: Tensor, target: Tensor
    ) -> list[Tensor]:
        """``value`` (batch first) and a ``target`` of the same shape."""
        value = self._float_tensor(name, value)
        require_batch(name, tuple(value.shape))
        target = self._float_tensor("target", target)
        require_shape("target", target, tuple(value.shape))
        return [value, target]

    def mse_loss(self, pred: Tensor, target: Tensor) -> Tensor:
        return self._forward(_mse_loss, *self._with_target_args("pred", pred, target))

    def mse_loss_backward(
        self, dout: Tensor, pred: Tensor, target: Tensor
    ) -> tuple[Tensor, Tensor]:
        return self._backward(
            _mse_loss, dout, *self._with_target_args("pred", pred, target)
        )

    def _binary_cross_entropy_args(self, prob: Tensor, target: Tensor) -> list[Tensor]:
        prob, target = self._with_target_args("prob", prob, target)
        # F.binary_cross_entropy raises RuntimeError for prob outside [0, 1] and
        # accepts any target; the reference refuses both with a ValueError.
        _require_probabilities("prob", prob)
        _require_probabilities("target", target)
        return [prob, target]

    def _binary_cross_entropy_with_logits_args(
        self, logits: Tensor, target: Tensor
    ) -> list[Tensor]:
        logits, target = self._with_target_args("logits", logits, target)
        _require_probabilities("target", target)
        return [logits, target]

    def binary_cross_entropy(self, prob: Tensor, target: Tensor) -> Tensor:
        return self._forward(
            _binary_cross_entropy, *self._binary_cross_entropy_args(prob, target)
        )

    def binary_cross_entropy_backward(
        self, dout: Tensor, prob: Tensor, target: Tensor
    ) -> tuple[Tensor, Tensor]:
        return self._backward(
            _binary_cross_entropy_for_gradient,
            dout,
            *self._binary_cross_entropy_args(prob, target),
        )

    def binary_cross_entropy_with_logits(
        self, logits: Tensor, target: Tensor
    ) -> Tensor:
        return self._forward(
            _binary_cross_entropy_with_logits,
            *self._binary_cross_entropy_with_logits_args(logits, target),
        )

    def binary_cross_entropy_with_logits_backward(
        self, dout: Tensor, logits: Tensor, target: Tensor
    ) -> tuple[Tensor, Tensor]:
        return self._backward(
            _binary_cross_entropy_with_logits,
            dout,
            *self._binary_cross_entropy_with_logits_args(logits, target),
        )

    def _labels(self, name: str, value: object, batch: int, classes: int) -> Tensor:
        """Class ids in ``[0, classes)``, one per sample, as int64."""
        labels = self._tensor(name, value)
        require_labels_shape(name, tuple(labels.shape), batch)
        require_integer_kind(name, numpy_kind(labels), labels.dtype)
        require_labels_in_range(
            name, holds_everywhere((labels >= 0) & (labels < classes)), classes
        )
        # F.cross_entropy and F.multi_margin_loss want int64 class ids.
        return labels.to(torch.long)

    def _classification_args(
        self, name: str, scores: Tensor, labels: Tensor
    ) -> list[Tensor]:
        scores = self._float_tensor(name, scores, ndim=2)
        batch, classes = require_scores(name, tuple(scores.shape))
        return [scores, self._labels("labels", labels, batch, classes)]

    def softmax_cross_entropy(self, logits: Tensor, labels: Tensor) -> Tensor:
        return self._forward(
            _softmax_cross_entropy,
            *self._classification_args("logits", logits, labels),
        )

    def softmax_cross_entropy_backward(
        self, dout: Tensor, logits: Tensor, labels: Tensor
    ) -> tuple[Tensor, None]:
        return self._backward(
            _softmax_cross_entropy,
            dout,
            *self._classification_args("logits", logits, labels),
        )

    def _multiclass_hinge_args(
        self, scores: Tensor, labels: Tensor, margin: float
    ) -> tuple[list[Tensor], Callable]:
        arrays = self._classification_args("scores", scores, labels)
        margin = require_non_negative("margin", margin)

        def function(scores: Tensor, labels: Tensor) -> Tensor:
            return _multiclass_hinge_loss(scores, labels, margin)

        return arrays, function

    def multiclass_hinge_loss(
        self, scores: Tensor, labels: Tensor, *, margin: float = 1.0
    ) -> Tensor:
        arrays, function = self._multiclass_hinge_args(scores, labels, margin)
        return self._forward(function, *arrays)

    def multiclass_hinge_loss_backward(
        self, dout: Tensor, scores: Tensor, labels: Tensor, *, margin: float = 1.0
    ) -> tuple[Tensor, None]:
        arrays, function = self._multiclass_hinge_args(scores, labels, margin)
        return self._backward(function, dout, *arrays)

    def l1_penalty(self, w: Tensor) -> Tensor:
        return self._forward(_l1_penalty, self._float_tensor("w", w))

    def l1_penalty_backward(self, dout: Tensor, w: Tensor) -> tuple[Tensor]:
        # autograd's derivative of |w| is sign(w), 0 at w = 0.
        return self._backward(_l1_penalty, dout, self._float_tensor("w", w))

    def l2_penalty(self, w: Tensor) -> Tensor:
        return self._forward(_l2_penalty, self._float_tensor("w", w))

    def l2_penalty_backward(self, dout: Tensor, w: Tensor) -> tuple[Tensor]:
        return self._backward(_l2_penalty, dout, self._float_tensor("w", w))

    def _elastic_net_args(self, w: Tensor, beta: float) -> tuple[Tensor, Callable]:
        beta = require_non_negative("beta", beta)
        return self._float_tensor("w", w), lambda w: _elastic_net_penalty(w, beta)

    def elastic_net_penalty(self, w: Tensor, *, beta: float) -> Tensor:
        w, function = self._elastic_net_args(w, beta)
        return self._forward(function, w)

    def elastic_net_penalty_backward(
        self, dout: Tensor, w: Tensor, *, beta: float
    ) -> tuple[Tensor]:
        w, function = self._elastic_net_args(w, beta)
        return self._backward(function, dout, w)
