r"""Losses and weight penalties: the readable reference (NumPy, float64).

Every loss returns a 0-d float64 ``ndarray``; its ``_backward`` takes the upstream
gradient ``dout`` (a Python float or a 0-d array) and returns a tuple with one
gradient per array argument, in order, shaped like that argument (``None`` for
integer labels).

Reduction convention (chosen by the reference; backends adapt)
---------------------------------------------------------------
A loss SUMS over every non-batch axis and takes the MEAN OVER THE BATCH (axis 0):

.. math::

    L = \frac{1}{N} \sum_{n=1}^{N} \sum_{k} \ell(\hat y_{nk}, y_{nk})

This is the :math:`\frac{1}{N}\sum_i L_i` of the lecture notes (the SVM loss of
notes 001 and the log-losses of notes 002). It differs from ``torch``'s defaults:
``F.mse_loss`` and ``F.binary_cross_entropy`` divide by the element count and
``F.multi_margin_loss`` also divides by the class count, so the torch backend
rescales. The penalties are not losses over a batch: they sum over every weight.

Subgradients
------------
Where a loss has a kink (``|w|`` at 0, the hinge at a zero margin) the backward
returns the subgradient of the one-sided choice documented in the function:
``sign(0) = 0`` for ``|w|`` and ``1[margin > 0]`` (strict) for the hinge.

The lecture notes cited as "notes 000" … "notes 004" are described in
``docs/bibliography.md``, with the papers.
"""

from __future__ import annotations

import numpy as np

from reference._checks import (
    as_float64,
    require_labels,
    require_non_negative,
    require_probabilities,
    require_shape,
)
from reference.shapes import require_batch, require_scores

__all__ = [
    "LOG_CLAMP",
    "binary_cross_entropy",
    "binary_cross_entropy_backward",
    "binary_cross_entropy_with_logits",
    "binary_cross_entropy_with_logits_backward",
    "elastic_net_penalty",
    "elastic_net_penalty_backward",
    "l1_penalty",
    "l1_penalty_backward",
    "l2_penalty",
    "l2_penalty_backward",
    "mse_loss",
    "mse_loss_backward",
    "multiclass_hinge_loss",
    "multiclass_hinge_loss_backward",
    "softmax_cross_entropy",
    "softmax_cross_entropy_backward",
]

#: ``log`` inside binary cross-entropy is clamped below at ``-100``, as torch does,
#: so that probabilities of exactly 0 or 1 give a finite loss.
LOG_CLAMP = -100.0
_SMALLEST_PROB = float(np.exp(LOG_CLAMP))


def _batched(name: str, value: object) -> np.ndarray:
    """``value`` as float64 with a non-empty batch axis 0."""
    array = as_float64(name, value)
    require_batch(name, array.shape)
    return array


def _pair(
    first_name: str, first: object, second_name: str, second: object
) -> tuple[np.ndarray, np.ndarray]:
    """Two float64 arrays of one shape with a batch axis (prediction, target)."""
    a = _batched(first_name, first)
    b = as_float64(second_name, second)
    require_shape(second_name, b, a.shape)
    return a, b


def _upstream(dout: object) -> np.ndarray:
    """The scalar upstream gradient of a loss, as a 0-d float64 array."""
    return as_float64("dout", dout, ndim=0)


def _probabilities(name: str, array: np.ndarray) -> np.ndarray:
    """Raise unless every entry lies in [0, 1] (NaN included in the refusal)."""
    require_probabilities(name, bool(np.all((array >= 0.0) & (array <= 1.0))))
    return array


def _scores_and_labels(
    scores_name: str, scores: object, labels: object
) -> tuple[np.ndarray, np.ndarray]:
    """Scores ``(N, C)`` with ``N, C >= 1`` and integer labels ``(N,)`` in [0, C)."""
    z = as_float64(scores_name, scores, ndim=2)
    require_scores(scores_name, z.shape)
    y = require_labels("labels", labels, z.shape[0], z.shape[1])
    return z, y


# --------------------------------------------------------------------------- MSE


def mse_loss(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    r"""Squared error, summed over features and averaged over the batch.

    .. math::

        L = \frac{1}{N} \sum_{n} \sum_{k} (\hat y_{nk} - y_{nk})^2

    Parameters
    ----------
    pred : ndarray of shape `(N, *)`
        Predictions; axis 0 is the batch.
    target : ndarray of shape `(N, *)`
        Targets, the same shape as ``pred``.

    Returns
    -------
    loss : 0-d ndarray
        The loss, float64.

    Notes
    -----
    Convention: mean over the batch only (``torch.nn.functional.mse_loss`` with
    ``reduction="mean"`` divides by every element, ``N * K``). Notes 002 write the
    regression loss as the plain sum :math:`\sum_i (y_i - \hat y_i)^2` over the
    points; the mean over the batch differs from it by the constant :math:`1/N`.
    """
    pred, target = _pair("pred", pred, "target", target)
    n = pred.shape[0]
    residual = pred - target
    return np.asarray(np.sum(residual**2) / n)


def mse_loss_backward(
    dout: float | np.ndarray, pred: np.ndarray, target: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    r"""Gradient of :func:`mse_loss`.

    .. math::

        \frac{\partial L}{\partial \hat y_{nk}} = \frac{2}{N} (\hat y_{nk} - y_{nk})

        \frac{\partial L}{\partial y_{nk}} = -\frac{2}{N} (\hat y_{nk} - y_{nk})

    Returns
    -------
    (dpred, dtarget) : tuple of ndarray, each of shape `(N, *)`
    """
    dout = _upstream(dout)
    pred, target = _pair("pred", pred, "target", target)
    n = pred.shape[0]
    dpred = dout * 2.0 * (pred - target) / n
    return dpred, -dpred


# ------------------------------------------------------------ binary cross-entropy


def binary_cross_entropy(prob: np.ndarray, target: np.ndarray) -> np.ndarray:
    r"""Binary cross-entropy (log-loss) of probabilities, averaged over the batch.

    .. math::

        L = -\frac{1}{N} \sum_{n} \sum_{k}
            \left[ t_{nk} \log p_{nk} + (1 - t_{nk}) \log(1 - p_{nk}) \right]

    with each :math:`\log` clamped below at :data:`LOG_CLAMP` ``= -100``.

    Parameters
    ----------
    prob : ndarray of shape `(N, *)`
        Predicted probabilities :math:`p \in [0, 1]` (meant to lie in (0, 1);
        the end points are accepted and handled by the clamp).
    target : ndarray of shape `(N, *)`
        Targets :math:`t \in [0, 1]` (hard 0/1 labels or soft labels).

    Returns
    -------
    loss : 0-d ndarray

    Raises
    ------
    ValueError
        If ``prob`` or ``target`` has an entry outside [0, 1] (or NaN), or their
        shapes differ.

    Notes
    -----
    The "2 class log-loss" of notes 002. Convention: mean over the batch, sum over
    the other axes. The clamp :math:`\log p \ge -100` is torch's
    (``F.binary_cross_entropy``); it only matters at :math:`p = 0`, :math:`p = 1`
    or :math:`p < e^{-100}`. For logits, prefer
    :func:`binary_cross_entropy_with_logits` (notes 004: "prefer logits").
    """
    prob, target = _pair("prob", prob, "target", target)
    _probabilities("prob", prob)
    _probabilities("target", target)
    n = prob.shape[0]
    log_p = np.log(np.maximum(prob, _SMALLEST_PROB))
    log_1mp = np.log(np.maximum(1.0 - prob, _SMALLEST_PROB))
    return np.asarray(-np.sum(target * log_p + (1.0 - target) * log_1mp) / n)


def binary_cross_entropy_backward(
    dout: float | np.ndarray, prob: np.ndarray, target: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    r"""Gradient of :func:`binary_cross_entropy`.

    .. math::

        \frac{\partial L}{\partial p} = -\frac{1}{N}
            \left[ \frac{t}{p} \, 1[p > e^{-100}]
                 - \frac{1 - t}{1 - p} \, 1[1 - p > e^{-100}] \right]

        \frac{\partial L}{\partial t} = -\frac{1}{N} \left[ \log p - \log(1 - p) \right]

    (logs clamped at -100). Where a clamp is active the clamped log is constant,
    so its term contributes 0: the exact derivative of the forward.

    Returns
    -------
    (dprob, dtarget) : tuple of ndarray, each of shape `(N, *)`
    """
    dout = _upstream(dout)
    prob, target = _pair("prob", prob, "target", target)
    _probabilities("prob", prob)
    _probabilities("target", target)
    n = prob.shape[0]
    p_safe = np.maximum(prob, _SMALLEST_PROB)
    q_safe = np.maximum(1.0 - prob, _SMALLEST_PROB)
    d_log_p = np.where(prob > _SMALLEST_PROB, 1.0 / p_safe, 0.0)
    d_log_1mp = np.where(1.0 - prob > _SMALLEST_PROB, 1.0 / q_safe, 0.0)
    dprob = -dout * (target * d_log_p - (1.0 - target) * d_log_1mp) / n
    dtarget = -dout * (np.log(p_safe) - np.log(q_safe)) / n
    return dprob, dtarget


def binary_cross_entropy_with_logits(
    logits: np.ndarray, target: np.ndarray
) -> np.ndarray:
    r"""Binary cross-entropy of :math:`\sigma(z)`, computed stably from logits.

    .. math::

        L = \frac{1}{N} \sum_{n} \sum_{k}
            \left[ \max(z_{nk}, 0) - z_{nk} t_{nk} + \log(1 + e^{-|z_{nk}|}) \right]

    which equals :math:`-[t \log\sigma(z) + (1 - t)\log(1 - \sigma(z))]` summed
    the same way, without overflow: finite and exact for :math:`|z|` up to 1e4
    and beyond (``log1p(exp(-|z|))`` never exponentiates a positive number).

    Parameters
    ----------
    logits : ndarray of shape `(N, *)`
        Logits :math:`z` (any real numbers).
    target : ndarray of shape `(N, *)`
        Targets :math:`t \in [0, 1]`.

    Returns
    -------
    loss : 0-d ndarray

    Notes
    -----
    Convention: mean over the batch, sum over the other axes (torch's
    ``F.binary_cross_entropy_with_logits`` divides by the element count). The
    form is the one of TensorFlow's ``sigmoid_cross_entropy_with_logits``.
    """
    logits, target = _pair("logits", logits, "target", target)
    _probabilities("target", target)
    n = logits.shape[0]
    per_element = (
        np.maximum(logits, 0.0) - logits * target + np.log1p(np.exp(-np.abs(logits)))
    )
    return np.asarray(np.sum(per_element) / n)


def binary_cross_entropy_with_logits_backward(
    dout: float | np.ndarray, logits: np.ndarray, target: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    r"""Gradient of :func:`binary_cross_entropy_with_logits`.

    .. math::

        \frac{\partial L}{\partial z} = \frac{1}{N} (\sigma(z) - t)

        \frac{\partial L}{\partial t} = -\frac{1}{N} z

    with :math:`\sigma(z) = 1 / (1 + e^{-|z|})` for :math:`z \ge 0` and
    :math:`e^{-|z|} / (1 + e^{-|z|})` for :math:`z < 0` (no overflow).

    Returns
    -------
    (dlogits, dtarget) : tuple of ndarray, each of shape `(N, *)`
    """
    dout = _upstream(dout)
    logits, target = _pair("logits", logits, "target", target)
    _probabilities("target", target)
    n = logits.shape[0]
    e = np.exp(-np.abs(logits))
    sigmoid = np.where(logits >= 0.0, 1.0 / (1.0 + e), e / (1.0 + e))
    dlogits = dout * (sigmoid - target) / n
    dtarget = -dout * logits / n
    return dlogits, dtarget


# ------------------------------------------------------------------ softmax + CE


def _log_softmax_rows(z: np.ndarray) -> np.ndarray:
    """Stable log-softmax over axis 1: ``z - max - log(sum(exp(z - max)))``."""
    shifted = z - np.max(z, axis=1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    r"""Cross-entropy of the softmax of the logits against integer labels.

    .. math::

        \log p_{nc} = z_{nc} - \max_j z_{nj}
            - \log \sum_j e^{z_{nj} - \max_{j'} z_{nj'}}

        L = -\frac{1}{N} \sum_{n} \log p_{n, y_n}

    Parameters
    ----------
    logits : ndarray of shape `(N, C)`
        Unnormalised class scores.
    labels : integer ndarray of shape `(N,)`
        Class ids in ``[0, C)``.

    Returns
    -------
    loss : 0-d ndarray

    Notes
    -----
    The "multi class log-loss" :math:`-\frac1N \sum_i \sum_j y_{ij} \log p_{ij}`
    of notes 002 with one-hot :math:`y`. The log-softmax subtracts the row maximum
    first, so logits of magnitude 1e4 give a finite loss. Convention: mean over the
    batch (as ``torch.nn.functional.cross_entropy``).
    """
    z, y = _scores_and_labels("logits", logits, labels)
    n = z.shape[0]
    log_p = _log_softmax_rows(z)
    return np.asarray(-np.sum(log_p[np.arange(n), y]) / n)


def softmax_cross_entropy_backward(
    dout: float | np.ndarray, logits: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, None]:
    r"""Gradient of :func:`softmax_cross_entropy`.

    .. math::

        \frac{\partial L}{\partial z_{nc}} = \frac{1}{N} (p_{nc} - 1[c = y_n])

    with :math:`p = \mathrm{softmax}(z) = \exp(\log p)` from the stable
    log-softmax.

    Returns
    -------
    (dlogits, None) : dlogits of shape `(N, C)`; ``None`` for the integer labels.
    """
    dout = _upstream(dout)
    z, y = _scores_and_labels("logits", logits, labels)
    n = z.shape[0]
    p = np.exp(_log_softmax_rows(z))
    one_hot = np.zeros_like(z)
    one_hot[np.arange(n), y] = 1.0
    dlogits = dout * (p - one_hot) / n
    return dlogits, None


# ---------------------------------------------------------------- multiclass SVM


def _hinge_margins(z: np.ndarray, y: np.ndarray, margin: float) -> np.ndarray:
    """``max(0, s_j - s_y + margin)`` for every class, 0 in the true class."""
    n = z.shape[0]
    correct = z[np.arange(n), y][:, None]
    margins = np.maximum(0.0, z - correct + margin)
    margins[np.arange(n), y] = 0.0
    return margins


def multiclass_hinge_loss(
    scores: np.ndarray, labels: np.ndarray, *, margin: float = 1.0
) -> np.ndarray:
    r"""Multiclass SVM (Weston-Watkins) hinge loss, averaged over the batch.

    .. math::

        L = \frac{1}{N} \sum_{n} \sum_{j \ne y_n} \max(0, s_{nj} - s_{n y_n} + \Delta)

    Parameters
    ----------
    scores : ndarray of shape `(N, C)`
        Class scores :math:`s = f(x; W)`.
    labels : integer ndarray of shape `(N,)`
        Class ids in ``[0, C)``.
    margin : float, default 1.0
        :math:`\Delta \ge 0`, the notes' "+1".

    Returns
    -------
    loss : 0-d ndarray

    Notes
    -----
    The data term of notes 001 ("Regularization: add term to loss") and of cs231n
    (linear classification). Convention: sum over the wrong classes, mean over the
    batch; ``torch.nn.functional.multi_margin_loss`` also divides by the class
    count :math:`C`. cs231n's worked example (scores cat 3.2, car 5.1, frog -1.7
    for a cat; ...) gives per-sample losses 2.9, 0 and 12.9, mean 5.27.
    """
    margin = require_non_negative("margin", margin)
    z, y = _scores_and_labels("scores", scores, labels)
    n = z.shape[0]
    return np.asarray(np.sum(_hinge_margins(z, y, margin)) / n)


def multiclass_hinge_loss_backward(
    dout: float | np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    *,
    margin: float = 1.0,
) -> tuple[np.ndarray, None]:
    r"""(Sub)gradient of :func:`multiclass_hinge_loss`.

    .. math::

        a_{nj} = 1[s_{nj} - s_{n y_n} + \Delta > 0] \quad (j \ne y_n)

        \frac{\partial L}{\partial s_{nj}} = \frac{1}{N} a_{nj} \quad (j \ne y_n)

        \frac{\partial L}{\partial s_{n y_n}} = -\frac{1}{N} \sum_{j \ne y_n} a_{nj}

    Convention: at a margin of exactly 0 (the kink) the subgradient taken is 0
    (strict inequality), as in cs231n's ``svm_loss_vectorized``.

    Returns
    -------
    (dscores, None) : dscores of shape `(N, C)`; ``None`` for the integer labels.
    """
    dout = _upstream(dout)
    margin = require_non_negative("margin", margin)
    z, y = _scores_and_labels("scores", scores, labels)
    n = z.shape[0]
    active = (_hinge_margins(z, y, margin) > 0.0).astype(np.float64)
    active[np.arange(n), y] = -np.sum(active, axis=1)
    dscores = dout * active / n
    return dscores, None


# --------------------------------------------------------------------- penalties


def l1_penalty(w: np.ndarray) -> np.ndarray:
    r"""L1 (lasso) penalty, summed over every weight.

    .. math::

        R(W) = \sum_{k} \sum_{l} |W_{kl}|

    Parameters
    ----------
    w : ndarray of any shape
        The weights.

    Returns
    -------
    penalty : 0-d ndarray

    Notes
    -----
    Notes 001 (L1 regularization); the strength :math:`\lambda` multiplies it
    outside. No batch: a sum, not a mean.
    """
    w = as_float64("w", w)
    return np.asarray(np.sum(np.abs(w)))


def l1_penalty_backward(dout: float | np.ndarray, w: np.ndarray) -> tuple[np.ndarray]:
    r"""Subgradient of :func:`l1_penalty`.

    .. math::

        \frac{\partial R}{\partial W_{kl}} = \operatorname{sign}(W_{kl})

    Convention: :math:`\operatorname{sign}(0) = 0` (the subgradient of minimal
    norm, ``np.sign`` and ``torch.sign``).

    Returns
    -------
    (dw,) : tuple of one ndarray shaped like ``w``
    """
    dout = _upstream(dout)
    w = as_float64("w", w)
    return (dout * np.sign(w),)


def l2_penalty(w: np.ndarray) -> np.ndarray:
    r"""L2 (ridge, weight decay) penalty: the sum of squares of every weight.

    .. math::

        R(W) = \sum_{k} \sum_{l} W_{kl}^2

    Parameters
    ----------
    w : ndarray of any shape

    Returns
    -------
    penalty : 0-d ndarray

    Notes
    -----
    Notes 001. No factor 1/2 (some texts use :math:`\frac12 \sum W^2`), so an
    SGD step on :math:`\lambda R` is weight decay with coefficient
    :math:`2\lambda`.
    """
    w = as_float64("w", w)
    return np.asarray(np.sum(w**2))


def l2_penalty_backward(dout: float | np.ndarray, w: np.ndarray) -> tuple[np.ndarray]:
    r"""Gradient of :func:`l2_penalty`.

    .. math::

        \frac{\partial R}{\partial W_{kl}} = 2 W_{kl}

    Returns
    -------
    (dw,) : tuple of one ndarray shaped like ``w``
    """
    dout = _upstream(dout)
    w = as_float64("w", w)
    return (dout * 2.0 * w,)


def elastic_net_penalty(w: np.ndarray, *, beta: float) -> np.ndarray:
    r"""Elastic net (L1 + L2) penalty, summed over every weight.

    .. math::

        R(W) = \sum_{k} \sum_{l} \left( \beta W_{kl}^2 + |W_{kl}| \right)

    Parameters
    ----------
    w : ndarray of any shape
    beta : float
        Weight :math:`\beta \ge 0` of the squared term, relative to the L1 term.

    Returns
    -------
    penalty : 0-d ndarray

    Notes
    -----
    Exactly the form of notes 001 (cs231n): :math:`\beta` scales the L2 part and
    the L1 part has weight 1.
    """
    beta = require_non_negative("beta", beta)
    w = as_float64("w", w)
    return np.asarray(np.sum(beta * w**2 + np.abs(w)))


def elastic_net_penalty_backward(
    dout: float | np.ndarray, w: np.ndarray, *, beta: float
) -> tuple[np.ndarray]:
    r"""Subgradient of :func:`elastic_net_penalty`.

    .. math::

        \frac{\partial R}{\partial W_{kl}} = 2 \beta W_{kl} + \mathrm{sign}(W_{kl})

    Convention: :math:`\operatorname{sign}(0) = 0`, as in :func:`l1_penalty_backward`.

    Returns
    -------
    (dw,) : tuple of one ndarray shaped like ``w``
    """
    dout = _upstream(dout)
    beta = require_non_negative("beta", beta)
    w = as_float64("w", w)
    return (dout * (2.0 * beta * w + np.sign(w)),)
