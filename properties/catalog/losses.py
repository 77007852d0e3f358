"""Catalog entries of the losses and penalties (``reference/losses.py``).

Every loss and penalty is a sum of terms of one sign, so its rounding bound is
:func:`~properties.catalog.bounds.same_sign_sum_bound` of the reference's value,
plus the errors of the terms themselves (a log, an exp) where there are any;
the gradients are elementwise apart from the ``1 / N`` scaling and, for the
cross-entropy, the softmax's normalizing sum.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import strategies as st

from properties import strategies
from properties.catalog.activations import AWAY_FROM_KINK
from properties.catalog.bounds import same_sign_sum_bound
from properties.catalog.entry import OpInfo, Sample
from reference import losses as reference_losses


def _batched_shapes() -> st.SearchStrategy[tuple[int, ...]]:
    return strategies.shapes(min_dims=1, max_dims=3, max_side=4)


# -- mse_loss ----------------------------------------------------------------


@st.composite
def _mse_samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
    shape = draw(_batched_shapes())
    return Sample((draw(strategies.arrays(shape)), draw(strategies.arrays(shape))))


def _mse_rounding(sample: Sample, dout: np.ndarray | None) -> dict[str, Any]:
    pred, target = sample.arguments
    loss = reference_losses.mse_loss(pred, target)
    return {"output": same_sign_sum_bound(loss, pred.size + 1)}


MSE_LOSS = OpInfo(
    name="mse_loss",
    family="loss",
    kind="deterministic",
    arguments=("pred", "target"),
    gradients=("pred", "target"),
    samples=_mse_samples,
    domain="(N, ...) with 1 to 3 axes, values in [-3, 3]",
    rounding=_mse_rounding,
)


# -- binary_cross_entropy ----------------------------------------------------


@st.composite
def _bce_samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
    shape = draw(_batched_shapes())
    prob = draw(strategies.arrays(shape, 0.05, 0.95))
    return Sample((prob, draw(strategies.binary_or_soft_targets(shape))))


def _bce_rounding(sample: Sample, dout: np.ndarray | None) -> dict[str, Any]:
    prob, target = sample.arguments
    n = prob.shape[0]
    logs = np.abs(np.log(prob)) + np.abs(np.log1p(-prob)) + 2
    loss = reference_losses.binary_cross_entropy(prob, target)
    bounds: dict[str, Any] = {"output": same_sign_sum_bound(loss, prob.size, logs / n)}
    if dout is not None:
        scale = np.abs(dout) / n
        bounds["dprob"] = 4 * scale * (target / prob + (1 - target) / (1 - prob))
        bounds["dtarget"] = 2 * scale * logs
    return bounds


BINARY_CROSS_ENTROPY = OpInfo(
    name="binary_cross_entropy",
    family="loss",
    kind="deterministic",
    arguments=("prob", "target"),
    gradients=("prob", "target"),
    samples=_bce_samples,
    domain="prob in [0.05, 0.95] (away from the log's poles); target 0/1 or in [0, 1]",
    rounding=_bce_rounding,
    argument_ranges={"prob": (0.0, 1.0), "target": (0.0, 1.0)},
)


# -- binary_cross_entropy_with_logits ----------------------------------------


@st.composite
def _bce_logits_samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
    shape = draw(_batched_shapes())
    logits = draw(strategies.arrays(shape, -8.0, 8.0))
    return Sample((logits, draw(strategies.binary_or_soft_targets(shape))))


def _bce_logits_rounding(sample: Sample, dout: np.ndarray | None) -> dict[str, Any]:
    logits, target = sample.arguments
    n = logits.shape[0]
    terms = 2 * (np.abs(logits) * (1 + np.abs(target)) + 1)
    loss = reference_losses.binary_cross_entropy_with_logits(logits, target)
    bounds: dict[str, Any] = {
        "output": same_sign_sum_bound(loss, logits.size, terms / n)
    }
    if dout is not None:
        sigmoid = 0.5 * (1 + np.tanh(logits / 2))  # no overflow for any logit
        bounds["dlogits"] = 4 * np.abs(dout) / n * (sigmoid + np.abs(target))
    return bounds


BINARY_CROSS_ENTROPY_WITH_LOGITS = OpInfo(
    name="binary_cross_entropy_with_logits",
    family="loss",
    kind="deterministic",
    arguments=("logits", "target"),
    gradients=("logits", "target"),
    samples=_bce_logits_samples,
    domain="logits in [-8, 8]; target 0/1 or in [0, 1]",
    rounding=_bce_logits_rounding,
    argument_ranges={"target": (0.0, 1.0)},
)


# -- softmax_cross_entropy ---------------------------------------------------


@st.composite
def _cross_entropy_samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
    n, classes = draw(st.integers(1, 5)), draw(st.integers(1, 6))
    logits = draw(strategies.arrays((n, classes), -6.0, 6.0))
    return Sample((logits, draw(strategies.labels(n, classes))))


def _cross_entropy_rounding(sample: Sample, dout: np.ndarray | None) -> dict[str, Any]:
    logits, labels = sample.arguments
    n, classes = logits.shape
    rows = classes + 2 * np.abs(logits).max(axis=1) + 2
    loss = reference_losses.softmax_cross_entropy(logits, labels)
    bounds: dict[str, Any] = {"output": same_sign_sum_bound(loss, n, rows / n)}
    if dout is not None:
        softmax = np.exp(logits - logits.max(axis=1, keepdims=True))
        softmax /= softmax.sum(axis=1, keepdims=True)
        one_hot = np.eye(classes)[labels]
        bounds["dlogits"] = (classes + 2) * np.abs(dout) / n * (softmax + one_hot)
    return bounds


SOFTMAX_CROSS_ENTROPY = OpInfo(
    name="softmax_cross_entropy",
    family="loss",
    kind="deterministic",
    arguments=("logits", "labels"),
    gradients=("logits", None),
    samples=_cross_entropy_samples,
    domain="N in 1..5, C in 1..6, logits in [-6, 6], int64 labels",
    rounding=_cross_entropy_rounding,
)


# -- multiclass_hinge_loss ---------------------------------------------------


@st.composite
def _hinge_samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
    n, classes = draw(st.integers(1, 5)), draw(st.integers(1, 6))
    labels = draw(strategies.labels(n, classes))
    hyper = draw(
        strategies.hyperparameters(
            margin=strategies.optional(strategies.floats(0.0, 2.0))
        )
    )
    scores = draw(strategies.arrays((n, classes)))
    scores = strategies.separate_hinge(scores, labels, hyper.get("margin", 1.0))
    return Sample((scores, labels), hyper)


def _hinge_rounding(sample: Sample, dout: np.ndarray | None) -> dict[str, Any]:
    scores, labels = sample.arguments
    margin = sample.hyper.get("margin", 1.0)
    n = scores.shape[0]
    correct = np.abs(scores[np.arange(n), labels])[:, None]
    terms = 2 * (np.abs(scores) + correct + margin)
    loss = reference_losses.multiclass_hinge_loss(scores, labels, **sample.hyper)
    return {"output": same_sign_sum_bound(loss, scores.size, terms / n)}


MULTICLASS_HINGE_LOSS = OpInfo(
    name="multiclass_hinge_loss",
    family="loss",
    kind="deterministic",
    arguments=("scores", "labels"),
    gradients=("scores", None),
    samples=_hinge_samples,
    domain="no term s_j - s_y + margin within 1e-3 of its kink; margin in [0, 2]",
    rounding=_hinge_rounding,
)


# -- the penalties: l1, l2, elastic net --------------------------------------


def _penalty_samples(*, kink: bool, **hyper: st.SearchStrategy[Any]):
    """Weights of any small shape; ``kink``: at least 1e-3 from 0 (``|w|``)."""

    @st.composite
    def samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
        w = draw(strategies.arrays(draw(strategies.shapes(max_dims=4, max_side=3))))
        if kink:
            w = strategies.away_from(w)
        return Sample((w,), draw(strategies.hyperparameters(**hyper)))

    return samples


def _penalty(
    penalty: Callable[..., np.ndarray],
    samples: Callable[[str | None], st.SearchStrategy[Sample]],
    domain: str,
    term_roundings: int,
) -> OpInfo:
    """A penalty: the sum over every weight of a nonnegative term.

    Its rounding bound is :func:`same_sign_sum_bound` with the term count
    raised by ``term_roundings``, a margin of ``term_roundings u`` relative
    error for each term's own computation (``|w|``: 1, ``w**2``: 2,
    ``beta w**2 + |w|``: 3).
    """

    def rounding(sample: Sample, dout: np.ndarray | None) -> dict[str, Any]:
        (w,) = sample.arguments
        value = penalty(w, **sample.hyper)
        return {"output": same_sign_sum_bound(value, w.size + term_roundings)}

    return OpInfo(
        name=penalty.__name__,
        family="penalty",
        kind="deterministic",
        arguments=("w",),
        gradients=("w",),
        samples=samples,
        domain=domain,
        rounding=rounding,
    )


ENTRIES: tuple[OpInfo, ...] = (
    MSE_LOSS,
    BINARY_CROSS_ENTROPY,
    BINARY_CROSS_ENTROPY_WITH_LOGITS,
    SOFTMAX_CROSS_ENTROPY,
    MULTICLASS_HINGE_LOSS,
    _penalty(
        reference_losses.l1_penalty, _penalty_samples(kink=True), AWAY_FROM_KINK, 1
    ),
    _penalty(
        reference_losses.l2_penalty,
        _penalty_samples(kink=False),
        "values in [-3, 3]",
        2,
    ),
    _penalty(
        reference_losses.elastic_net_penalty,
        _penalty_samples(kink=True, beta=strategies.floats(0.0, 2.0)),
        AWAY_FROM_KINK + " (|w|); beta in [0, 2]",
        3,
    ),
)
