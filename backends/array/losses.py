"""The losses and weight penalties of the array backend.

mse_loss, binary_cross_entropy (each log clamped at :data:`LOG_CLAMP`, as
torch and the reference), binary_cross_entropy_with_logits,
softmax_cross_entropy, multiclass_hinge_loss, and the l1, l2 and elastic-net
penalties: each returns a 0-d array of the input's dtype, and each backward
takes the upstream gradient as a 0-d array or a float. The batch losses
divide by the batch size. The stable sigmoid and softplus come from
:class:`~backends.array.activations.ActivationOps`, the stable (log-)softmax
from :class:`~backends.array.layers.LayerOps`.
"""

from __future__ import annotations

import math
from typing import Any

from backends.array.activations import ActivationOps
from backends.array.core import Array
from backends.array.layers import LayerOps
from reference._checks import (
    require_given,
    require_integer_kind,
    require_labels_in_range,
    require_labels_shape,
    require_non_negative,
    require_probabilities,
    require_shape,
)
from reference.losses import LOG_CLAMP
from reference.shapes import require_batch, require_scores

__all__ = ["LossOps"]

#: Below this a probability's log is clamped (``log p < LOG_CLAMP``).
_SMALLEST_PROB = math.exp(LOG_CLAMP)


class LossOps(ActivationOps, LayerOps):
    """The losses and penalties, and their backwards (see the module)."""

    # -- scalar results -------------------------------------------------------

    def _scalar_upstream(self, dout: Any, dtype: Any) -> Array:
        """A loss's upstream gradient (a 0-d array or a float) as 0-d ``dtype``."""
        return self._float("dout", dout, ndim=0).astype(dtype, copy=False)

    def _scalar(self, value: Any, dtype: Any) -> Array:
        return self.xp.asarray(value, dtype=dtype)

    # -- losses ---------------------------------------------------------------

    def _batched(self, name: str, value: Any) -> Array:
        array = self._float(name, value)
        require_batch(name, array.shape)
        return array

    def _loss_pair(
        self, first_name: str, first: Any, second_name: str, second: Any
    ) -> tuple[Array, Array]:
        a = self._batched(first_name, first)
        b = self._float(second_name, second)
        require_shape(second_name, b, a.shape)
        return a, b

    def _scores_and_labels(self, name: str, scores: Any, labels: Any):
        z = self._float(name, scores, ndim=2)
        n, classes = require_scores(name, z.shape)
        require_given("labels", labels)
        y = self.xp.asarray(labels)
        require_labels_shape("labels", y.shape, n)
        require_integer_kind("labels", y.dtype.kind, y.dtype)
        require_labels_in_range("labels", self._all((y >= 0) & (y < classes)), classes)
        return z, y

    def mse_loss(self, pred: Array, target: Array) -> Array:
        pred, target = self._loss_pair("pred", pred, "target", target)
        residual = pred - target
        return self._scalar(self.xp.square(residual).sum() / pred.shape[0], pred.dtype)

    def mse_loss_backward(
        self, dout: Any, pred: Array, target: Array
    ) -> tuple[Array, Array]:
        pred, target = self._loss_pair("pred", pred, "target", target)
        dout = self._scalar_upstream(dout, pred.dtype)
        dpred = pred - target
        dpred *= dout * (2 / pred.shape[0])
        return dpred, -dpred

    def _clamped_logs(self, prob: Array) -> tuple[Array, Array, Array, Array]:
        """``log p`` and ``log(1 - p)`` clamped at -100, and where each is unclamped."""
        xp = self.xp
        q = 1 - prob
        p_live = prob > _SMALLEST_PROB
        q_live = q > _SMALLEST_PROB
        log_p = xp.where(p_live, xp.log(xp.where(p_live, prob, 1)), LOG_CLAMP)
        log_q = xp.where(q_live, xp.log(xp.where(q_live, q, 1)), LOG_CLAMP)
        return log_p, log_q, p_live, q_live

    def _check_probabilities(self, name: str, prob: Array) -> None:
        require_probabilities(name, self._all((prob >= 0) & (prob <= 1)))

    def binary_cross_entropy(self, prob: Array, target: Array) -> Array:
        prob, target = self._loss_pair("prob", prob, "target", target)
        self._check_probabilities("prob", prob)
        self._check_probabilities("target", target)
        log_p, log_q, _, _ = self._clamped_logs(prob)
        # t log p + (1 - t) log q = log q + t (log p - log q)
        log_p -= log_q
        log_p *= target
        log_p += log_q
        return self._scalar(-log_p.sum() / prob.shape[0], prob.dtype)

    def binary_cross_entropy_backward(
        self, dout: Any, prob: Array, target: Array
    ) -> tuple[Array, Array]:
        xp = self.xp
        prob, target = self._loss_pair("prob", prob, "target", target)
        self._check_probabilities("prob", prob)
        self._check_probabilities("target", target)
        dout = self._scalar_upstream(dout, prob.dtype)
        log_p, log_q, p_live, q_live = self._clamped_logs(prob)
        q = 1 - prob
        d_log_p = xp.where(p_live, 1 / xp.where(p_live, prob, 1), 0)
        d_log_q = xp.where(q_live, 1 / xp.where(q_live, q, 1), 0)
        scale = dout / prob.shape[0]
        dprob = (1 - target) * d_log_q - target * d_log_p
        dprob *= scale
        dtarget = log_q - log_p
        dtarget *= scale
        return dprob, dtarget

    def binary_cross_entropy_with_logits(self, logits: Array, target: Array) -> Array:
        logits, target = self._loss_pair("logits", logits, "target", target)
        self._check_probabilities("target", target)
        per_element = self._softplus(logits) - logits * target
        return self._scalar(per_element.sum() / logits.shape[0], logits.dtype)

    def binary_cross_entropy_with_logits_backward(
        self, dout: Any, logits: Array, target: Array
    ) -> tuple[Array, Array]:
        logits, target = self._loss_pair("logits", logits, "target", target)
        self._check_probabilities("target", target)
        dout = self._scalar_upstream(dout, logits.dtype)
        scale = dout / logits.shape[0]
        dlogits = self._sigmoid(logits) - target
        dlogits *= scale
        return dlogits, logits * -scale

    def softmax_cross_entropy(self, logits: Array, labels: Array) -> Array:
        xp = self.xp
        z, y = self._scores_and_labels("logits", logits, labels)
        n = z.shape[0]
        log_p = self._log_softmax(z, 1)
        return self._scalar(-log_p[xp.arange(n), y].sum() / n, z.dtype)

    def softmax_cross_entropy_backward(
        self, dout: Any, logits: Array, labels: Array
    ) -> tuple[Array, None]:
        xp = self.xp
        z, y = self._scores_and_labels("logits", logits, labels)
        dout = self._scalar_upstream(dout, z.dtype)
        n = z.shape[0]
        dlogits = self._softmax(z, 1)
        dlogits[xp.arange(n), y] -= 1
        dlogits *= dout / n
        return dlogits, None

    def _hinge_margins(self, z: Array, y: Array, margin: float) -> Array:
        xp = self.xp
        rows = xp.arange(z.shape[0])
        margins = z - z[rows, y][:, None]
        margins += margin
        xp.maximum(margins, 0, out=margins)
        margins[rows, y] = 0
        return margins

    def multiclass_hinge_loss(
        self, scores: Array, labels: Array, *, margin: float = 1.0
    ) -> Array:
        margin = require_non_negative("margin", margin)
        z, y = self._scores_and_labels("scores", scores, labels)
        margins = self._hinge_margins(z, y, margin)
        return self._scalar(margins.sum() / z.shape[0], z.dtype)

    def multiclass_hinge_loss_backward(
        self, dout: Any, scores: Array, labels: Array, *, margin: float = 1.0
    ) -> tuple[Array, None]:
        xp = self.xp
        margin = require_non_negative("margin", margin)
        z, y = self._scores_and_labels("scores", scores, labels)
        dout = self._scalar_upstream(dout, z.dtype)
        active = (self._hinge_margins(z, y, margin) > 0).astype(z.dtype)
        active[xp.arange(z.shape[0]), y] = -active.sum(axis=1)
        active *= dout / z.shape[0]
        return active, None

    def l1_penalty(self, w: Array) -> Array:
        w = self._float("w", w)
        return self._scalar(self.xp.abs(w).sum(), w.dtype)

    def l1_penalty_backward(self, dout: Any, w: Array) -> tuple[Array]:
        w = self._float("w", w)
        dout = self._scalar_upstream(dout, w.dtype)
        return (self.xp.sign(w) * dout,)

    def l2_penalty(self, w: Array) -> Array:
        w = self._float("w", w)
        return self._scalar(self.xp.square(w).sum(), w.dtype)

    def l2_penalty_backward(self, dout: Any, w: Array) -> tuple[Array]:
        w = self._float("w", w)
        dout = self._scalar_upstream(dout, w.dtype)
        return (w * (dout * 2),)

    def elastic_net_penalty(self, w: Array, *, beta: float) -> Array:
        beta = require_non_negative("beta", beta)
        w = self._float("w", w)
        xp = self.xp
        per_weight = xp.square(w)
        per_weight *= beta
        per_weight += xp.abs(w)
        return self._scalar(per_weight.sum(), w.dtype)

    def elastic_net_penalty_backward(
        self, dout: Any, w: Array, *, beta: float
    ) -> tuple[Array]:
        beta = require_non_negative("beta", beta)
        w = self._float("w", w)
        dout = self._scalar_upstream(dout, w.dtype)
        dw = w * (2 * beta)
        dw += self.xp.sign(w)
        dw *= dout
        return (dw,)
