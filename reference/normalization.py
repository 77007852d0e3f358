r"""Normalization and dropout: batch norm, layer norm, dropout.

Batch norm and dropout behave differently in training, so both take an
explicit ``training`` flag; neither keeps hidden state: batch norm receives the
running statistics and returns their update, dropout receives its mask (drawn
by :func:`dropout_mask` from an integer ``seed``). Layer norm normalizes each
sample by its own statistics, the same in training and evaluation. Each
forward is followed by its backward, which takes ``dout`` and the forward's own
inputs.

The lecture notes cited as "notes 000" … "notes 004" are described in
``docs/bibliography.md``, with the papers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from reference._checks import (
    as_float64,
    require_bool_kind,
    require_given,
    require_non_negative_values,
    require_shape,
    upstream,
)
from reference.shapes import (
    batch_norm_hyper,
    dropout_hyper,
    dropout_mask_hyper,
    layer_norm_hyper,
)

__all__ = [
    "batch_norm",
    "batch_norm_backward",
    "dropout",
    "dropout_backward",
    "dropout_mask",
    "layer_norm",
    "layer_norm_backward",
]


# ---------------------------------------------------------------------------
# Batch normalization
# ---------------------------------------------------------------------------


def _check_batch_norm(
    x: ArrayLike,
    gamma: ArrayLike,
    beta: ArrayLike,
    running_mean: ArrayLike,
    running_var: ArrayLike,
    training: bool,
    momentum: float,
    eps: float,
) -> tuple[np.ndarray, ...]:
    x = as_float64("x", x, ndim=(2, 4))
    gamma = as_float64("gamma", gamma)
    beta = as_float64("beta", beta)
    running_mean = as_float64("running_mean", running_mean)
    running_var = as_float64("running_var", running_var)
    params = (gamma, beta, running_mean, running_var)
    batch_norm_hyper(x.shape, [p.shape for p in params], training, momentum, eps)
    require_non_negative_values("running_var", bool(np.all(running_var >= 0)))
    return x, gamma, beta, running_mean, running_var


def _channel_axes(x: np.ndarray) -> tuple[int, ...]:
    """The axes a channel's statistics run over: (N,) or (N, H, W)."""
    return (0,) if x.ndim == 2 else (0, 2, 3)


def _per_channel(values: np.ndarray, x: np.ndarray) -> np.ndarray:
    """A ``(C,)`` vector shaped to broadcast against ``x`` along axis 1."""
    return values.reshape((1, -1) + (1,) * (x.ndim - 2))


def _batch_statistics(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel batch mean and *biased* variance, both ``(C,)``."""
    axes = _channel_axes(x)
    mean = x.mean(axis=axes)
    variance = ((x - _per_channel(mean, x)) ** 2).mean(axis=axes)
    return mean, variance


def batch_norm(
    x: ArrayLike,
    gamma: ArrayLike,
    beta: ArrayLike,
    running_mean: ArrayLike,
    running_var: ArrayLike,
    *,
    training: bool,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Batch normalization, per feature ``(N, D)`` or per channel ``(N, C, H, W)``.

    For each channel :math:`c`, over its :math:`m` values (:math:`m = N`, or
    :math:`m = N H W` for images: notes 004, "E and Var computed over
    (N, H, W) slices"):

    .. math::

        \mu_{c} = \frac{1}{m} \sum_{i} x_{i,c}

        \sigma^{2}_{c} = \frac{1}{m} \sum_{i} (x_{i,c} - \mu_{c})^{2}

        \hat{x}_{i,c} = \frac{x_{i,c} - \mu_{c}}{\sqrt{\sigma^{2}_{c} + \varepsilon}}

        y_{i,c} = \gamma_{c} \hat{x}_{i,c} + \beta_{c}

        \text{running\_mean}' = (1 - \text{momentum}) \, \text{running\_mean}
            + \text{momentum} \, \mu_{c}

        \text{running\_var}' = (1 - \text{momentum}) \, \text{running\_var}
            + \text{momentum} \, \frac{m}{m - 1} \sigma^{2}_{c}

    In eval mode :math:`\mu, \sigma^{2}` are replaced by ``running_mean`` and
    ``running_var``, and the returned running statistics are copies of the
    inputs (nothing is learned at test time).

    Conventions (torch's): training normalises by the *biased* batch variance
    (divide by :math:`m`) but updates ``running_var`` with the *unbiased* one
    (divide by :math:`m - 1`), so training needs :math:`m \ge 2` values per
    channel (an ``(N, C, H, W)`` batch with ``N = 1`` is fine when
    :math:`H W \ge 2`). ``momentum`` weighs the *new* batch statistic (Keras
    uses the complement).

    The notes' algorithm box (notes 002, after Ioffe and Szegedy) reuses
    :math:`x_i` for the normalised value and then writes
    :math:`\tilde{x}_i = \gamma x_i + \beta`; it means
    :math:`y_i = \gamma \hat{x}_i + \beta` with :math:`\hat{x}_i` as above.

    Parameters
    ----------
    x : array_like, shape ``(N, C)`` or ``(N, C, H, W)``
        The activations.
    gamma : array_like, shape ``(C,)``
        Learned scale.
    beta : array_like, shape ``(C,)``
        Learned shift.
    running_mean : array_like, shape ``(C,)``
        Running mean (read, never modified).
    running_var : array_like, shape ``(C,)``
        Running variance, non-negative (read, never modified).
    training : bool
        Batch statistics and an update of the running ones (True) or the running
        statistics (False).
    momentum : float in [0, 1], default 0.1
        Weight of the batch statistic in the running update.
    eps : float > 0, default 1e-5
        Added to the variance before the square root.

    Returns
    -------
    y : ndarray, shape of ``x``, float64
    new_running_mean : ndarray, shape ``(C,)``
    new_running_var : ndarray, shape ``(C,)``

    References
    ----------
    notes 001, notes 002, notes 004. Ioffe, S. and Szegedy, C. (2015).
    "Batch normalization: accelerating deep network training by reducing
    internal covariate shift." ICML, Algorithms 1 and 2.
    """
    x, gamma, beta, running_mean, running_var = _check_batch_norm(
        x, gamma, beta, running_mean, running_var, training, momentum, eps
    )
    if training:
        mean, variance = _batch_statistics(x)
        m = x.size // x.shape[1]
        new_running_mean = (1 - momentum) * running_mean + momentum * mean
        new_running_var = (1 - momentum) * running_var + momentum * variance * m / (
            m - 1
        )
    else:
        mean, variance = running_mean, running_var
        new_running_mean = running_mean.copy()
        new_running_var = running_var.copy()
    x_hat = (x - _per_channel(mean, x)) / np.sqrt(_per_channel(variance, x) + eps)
    y = _per_channel(gamma, x) * x_hat + _per_channel(beta, x)
    return y, new_running_mean, new_running_var


def batch_norm_backward(
    dout: ArrayLike,
    x: ArrayLike,
    gamma: ArrayLike,
    beta: ArrayLike,
    running_mean: ArrayLike,
    running_var: ArrayLike,
    *,
    training: bool,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Gradient of :func:`batch_norm` (of ``y``; the running statistics have none).

    In the notation of the forward, for each channel over its :math:`m` values:

    .. math::

        \frac{\partial L}{\partial \gamma_{c}} = \sum_{i}
            \frac{\partial L}{\partial y_{i,c}} \hat{x}_{i,c}

        \frac{\partial L}{\partial \beta_{c}} = \sum_{i}
            \frac{\partial L}{\partial y_{i,c}}

        \frac{\partial L}{\partial \hat{x}_{i,c}}
            = \gamma_{c} \frac{\partial L}{\partial y_{i,c}}

    Training (the batch statistics depend on every :math:`x_{i,c}`):

    .. math::

        \frac{\partial L}{\partial x_{i,c}}
            = \frac{1}{m \sqrt{\sigma^{2}_{c} + \varepsilon}} \Big(
            m \frac{\partial L}{\partial \hat{x}_{i,c}}
            - \sum_{j} \frac{\partial L}{\partial \hat{x}_{j,c}}
            - \hat{x}_{i,c} \sum_{j} \frac{\partial L}{\partial \hat{x}_{j,c}}
              \hat{x}_{j,c} \Big)

    Eval (the running statistics are constants):

    .. math::

        \frac{\partial L}{\partial x_{i,c}}
            = \frac{\gamma_{c}}{\sqrt{\text{running\_var}_{c} + \varepsilon}}
            \frac{\partial L}{\partial y_{i,c}}

    Parameters
    ----------
    dout : array_like, shape of ``x``
        Upstream gradient of ``y`` only.
    x, gamma, beta, running_mean, running_var, training, momentum, eps
        The forward's arguments (see :func:`batch_norm`).

    Returns
    -------
    (dx, dgamma, dbeta) : tuple of ndarrays, shapes ``x.shape``, ``(C,)``, ``(C,)``
        (no entries for the running statistics, which are not differentiated).

    References
    ----------
    Ioffe and Szegedy (2015), section 3 (the chain rule through
    :math:`\mu_{\mathcal{B}}` and :math:`\sigma^{2}_{\mathcal{B}}`).
    """
    x, gamma, beta, running_mean, running_var = _check_batch_norm(
        x, gamma, beta, running_mean, running_var, training, momentum, eps
    )
    dout = upstream(dout, x.shape)
    axes = _channel_axes(x)
    if training:
        mean, variance = _batch_statistics(x)
    else:
        mean, variance = running_mean, running_var
    inverse_std = 1.0 / np.sqrt(_per_channel(variance, x) + eps)
    x_hat = (x - _per_channel(mean, x)) * inverse_std
    dgamma = (dout * x_hat).sum(axis=axes)
    dbeta = dout.sum(axis=axes)
    dx_hat = _per_channel(gamma, x) * dout
    if not training:
        return dx_hat * inverse_std, dgamma, dbeta
    m = x.size // x.shape[1]
    sum_dx_hat = dx_hat.sum(axis=axes, keepdims=True)
    sum_dx_hat_x_hat = (dx_hat * x_hat).sum(axis=axes, keepdims=True)
    dx = inverse_std / m * (m * dx_hat - sum_dx_hat - x_hat * sum_dx_hat_x_hat)
    return dx, dgamma, dbeta


# ---------------------------------------------------------------------------
# Layer normalization
# ---------------------------------------------------------------------------


def _check_layer_norm(
    x: ArrayLike,
    gamma: ArrayLike,
    beta: ArrayLike,
    normalized_ndim: int,
    eps: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, ...], float]:
    """The arrays as float64, the normalized axes of ``x`` and ``eps``, checked."""
    x = as_float64("x", x)
    gamma = as_float64("gamma", gamma)
    beta = as_float64("beta", beta)
    normalized_ndim, eps = layer_norm_hyper(
        x.shape, (gamma.shape, beta.shape), normalized_ndim, eps
    )
    axes = tuple(range(x.ndim - normalized_ndim, x.ndim))
    return x, gamma, beta, axes, eps


def _layer_statistics(
    x: np.ndarray, axes: tuple[int, ...], eps: float
) -> tuple[np.ndarray, np.ndarray]:
    r"""Each sample's :math:`\hat{x}` and :math:`1 / \sqrt{\sigma^{2} + \varepsilon}`.

    The mean and the *biased* variance run over ``axes``; both results keep
    those axes (of length 1 in the inverse standard deviation).
    """
    centred = x - x.mean(axis=axes, keepdims=True)
    variance = (centred**2).mean(axis=axes, keepdims=True)
    inverse_std = 1.0 / np.sqrt(variance + eps)
    return centred * inverse_std, inverse_std


def layer_norm(
    x: ArrayLike,
    gamma: ArrayLike,
    beta: ArrayLike,
    *,
    normalized_ndim: int,
    eps: float = 1e-5,
) -> np.ndarray:
    r"""Layer normalization over the last ``normalized_ndim`` axes of ``x``.

    Each sample (an index :math:`n` into the leading axes) is normalized by the
    mean and the *biased* variance of its own :math:`M` values :math:`x_{n,j}`
    (:math:`j` runs over the last ``normalized_ndim`` axes, whose shape
    ``x.shape[-normalized_ndim:]`` is torch's ``normalized_shape``), then scaled
    and shifted elementwise:

    .. math::

        \mu_{n} = \frac{1}{M} \sum_{j} x_{n,j}

        \sigma^{2}_{n} = \frac{1}{M} \sum_{j} (x_{n,j} - \mu_{n})^{2}

        \hat{x}_{n,j} = \frac{x_{n,j} - \mu_{n}}{\sqrt{\sigma^{2}_{n} + \varepsilon}}

        y_{n,j} = \gamma_{j} \hat{x}_{n,j} + \beta_{j}

    Unlike :func:`batch_norm`, the statistics never mix samples: there are no
    running statistics, training and evaluation compute the same thing, and a
    batch of one is fine. :math:`\gamma` and :math:`\beta` have one entry per
    normalized *element* (torch's ``elementwise_affine``), not one per channel.
    With :math:`\gamma = 1, \beta = 0` every sample of ``y`` has mean 0 and
    biased variance :math:`\sigma^{2}_{n} / (\sigma^{2}_{n} + \varepsilon)`,
    just under 1. The conventions are torch's ``F.layer_norm``: biased variance,
    :math:`\varepsilon` inside the square root.

    Parameters
    ----------
    x : array_like, shape ``(*leading, *normalized_shape)``
        The activations; ``leading`` may be empty (one sample).
    gamma : array_like, shape ``normalized_shape``
        Learned scale.
    beta : array_like, shape ``normalized_shape``
        Learned shift.
    normalized_ndim : int in ``[1, x.ndim]``
        How many trailing axes the statistics run over (they must hold at least
        one value).
    eps : float > 0, default 1e-5
        Added to the variance before the square root.

    Returns
    -------
    y : ndarray, shape of ``x``, float64

    References
    ----------
    Ba, J., Kiros, J. and Hinton, G. (2016). "Layer normalization."
    arXiv:1607.06450, section 3 (the statistics of one layer's summed inputs,
    eq. 3, and the per-unit gain and bias).
    """
    x, gamma, beta, axes, eps = _check_layer_norm(x, gamma, beta, normalized_ndim, eps)
    x_hat, _ = _layer_statistics(x, axes, eps)
    return gamma * x_hat + beta


def layer_norm_backward(
    dout: ArrayLike,
    x: ArrayLike,
    gamma: ArrayLike,
    beta: ArrayLike,
    *,
    normalized_ndim: int,
    eps: float = 1e-5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Gradient of :func:`layer_norm` with respect to ``x``, ``gamma`` and ``beta``.

    The parameters are shared by every sample, so their gradients sum over the
    leading axes:

    .. math::

        \frac{\partial L}{\partial \gamma_{j}} = \sum_{n}
            \frac{\partial L}{\partial y_{n,j}} \hat{x}_{n,j}
        \qquad
        \frac{\partial L}{\partial \beta_{j}} = \sum_{n}
            \frac{\partial L}{\partial y_{n,j}}
        \qquad
        \frac{\partial L}{\partial \hat{x}_{n,j}}
            = \gamma_{j} \frac{\partial L}{\partial y_{n,j}}

    Each sample's statistics depend on all of its :math:`M` values. Write
    :math:`g_{j} = \partial L / \partial \hat{x}_{n,j}` and
    :math:`s = 1 / \sqrt{\sigma^{2}_{n} + \varepsilon}` for one sample. From
    :math:`\partial \mu / \partial x_{k} = 1 / M` and
    :math:`\partial \sigma^{2} / \partial x_{k} = 2 (x_{k} - \mu) / M`
    (its part through :math:`\mu` vanishes, as :math:`\sum_{j} (x_{j} - \mu) = 0`),

    .. math::

        \frac{\partial \hat{x}_{j}}{\partial x_{k}}
            = s \Big(\delta_{jk} - \frac{1}{M}\Big)
            - \frac{s}{M} \hat{x}_{j} \hat{x}_{k}

    and summing :math:`g_{j}` against it:

    .. math::

        \frac{\partial L}{\partial x_{n,k}}
            = \frac{s}{M} \Big(M g_{k} - \sum_{j} g_{j}
            - \hat{x}_{n,k} \sum_{j} g_{j} \hat{x}_{n,j}\Big)

    the formula of :func:`batch_norm_backward` in training, with the sum over
    a sample's normalized axes in place of the sum over the batch.

    Parameters
    ----------
    dout : array_like, shape of ``x``
        Upstream gradient.
    x, gamma, beta, normalized_ndim, eps
        The forward's arguments (see :func:`layer_norm`).

    Returns
    -------
    (dx, dgamma, dbeta) : tuple of ndarrays, shapes of ``x``, ``gamma``, ``beta``

    References
    ----------
    Ba, Kiros and Hinton (2016); the chain rule is that of Ioffe and Szegedy
    (2015), section 3, with the roles of the batch and the features exchanged.
    """
    x, gamma, beta, axes, eps = _check_layer_norm(x, gamma, beta, normalized_ndim, eps)
    dout = upstream(dout, x.shape)
    x_hat, inverse_std = _layer_statistics(x, axes, eps)
    leading_axes = tuple(range(x.ndim - len(axes)))
    dgamma = (dout * x_hat).sum(axis=leading_axes)
    dbeta = dout.sum(axis=leading_axes)
    dx_hat = gamma * dout
    m = gamma.size
    sum_dx_hat = dx_hat.sum(axis=axes, keepdims=True)
    sum_dx_hat_x_hat = (dx_hat * x_hat).sum(axis=axes, keepdims=True)
    dx = inverse_std / m * (m * dx_hat - sum_dx_hat - x_hat * sum_dx_hat_x_hat)
    return dx, dgamma, dbeta


# ---------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------


def dropout_mask(shape: Sequence[int] | int, *, p: float, seed: int) -> np.ndarray:
    r"""The keep mask of dropout: True where a unit is kept, with probability 1 - p.

    .. math::

        u \sim \mathcal{U}[0, 1) \text{ (i.i.d.)}, \qquad
        \text{mask} = (u \ge p), \qquad P(\text{mask} = \text{True}) = 1 - p

    with :math:`u` drawn by ``np.random.default_rng(seed).random(shape)``: the
    same ``seed`` gives the same mask, and ``p = 0`` keeps everything.

    Parameters
    ----------
    shape : int or sequence of int
        The shape of the activations to mask.
    p : float in [0, 1)
        Probability of *dropping* a unit (the notes' "dropout rate",
        usually 0.5).
    seed : int >= 0
        Seed of NumPy's default generator (PCG64).

    Returns
    -------
    mask : ndarray of bool, shape ``shape``

    References
    ----------
    notes 001, notes 002 ("Dropout Rate: in a particular layer what percent
    of neurons will be inactive"). Srivastava, N., Hinton, G., Krizhevsky, A.,
    Sutskever, I. and Salakhutdinov, R. (2014). "Dropout: a simple way to
    prevent neural networks from overfitting." JMLR 15.
    """
    dims, p, seed = dropout_mask_hyper(shape, p, seed)
    u = np.random.default_rng(seed).random(dims)
    return u >= p


def _check_dropout(
    x: ArrayLike, mask: ArrayLike, p: float, training: bool
) -> tuple[np.ndarray, np.ndarray, float]:
    x = as_float64("x", x)
    require_given("mask", mask)
    mask = np.asarray(mask)
    require_bool_kind("mask", mask.dtype.kind, mask.dtype)
    require_shape("mask", mask, x.shape)
    p, _ = dropout_hyper(p, training)
    return x, mask, p


def dropout(x: ArrayLike, mask: ArrayLike, *, p: float, training: bool) -> np.ndarray:
    r"""Inverted dropout: drop units in training and rescale, identity in eval.

    .. math::

        y = \frac{x \odot \text{mask}}{1 - p} \quad \text{(training)},
        \qquad y = x \quad \text{(eval)}

    Dividing by the keep probability :math:`1 - p` at training time makes
    :math:`E[y] = x`, so test time needs no scaling ("output at test time =
    expected output at training time", notes 001). notes 001's worked
    example has a typo: the test-time activation is
    :math:`E[a] = w_1 x + w_2 y`, not :math:`w_1 x + w_2 x`; with
    :math:`p = 0.5` the training expectation is half of it, which inverted
    dropout undoes by the factor :math:`1 / (1 - p) = 2`.

    Parameters
    ----------
    x : array_like of any shape
        The activations.
    mask : array_like of bool, shape of ``x``
        True where kept (from :func:`dropout_mask`); checked but unused in eval.
    p : float in [0, 1)
        Drop probability the mask was drawn with.
    training : bool

    Returns
    -------
    y : ndarray, shape of ``x``, float64 (a new array in both modes)

    References
    ----------
    notes 001, notes 002. Srivastava et al. (2014); the inverted form is
    that of cs231n and of ``torch.nn.functional.dropout``.
    """
    x, mask, p = _check_dropout(x, mask, p, training)
    if not training:
        return x.copy()
    return x * mask / (1.0 - p)


def dropout_backward(
    dout: ArrayLike, x: ArrayLike, mask: ArrayLike, *, p: float, training: bool
) -> tuple[np.ndarray, None]:
    r"""Gradient of :func:`dropout`: the same mask and the same scale.

    .. math::

        \frac{\partial L}{\partial x} = \frac{\partial L}{\partial y}
            \odot \frac{\text{mask}}{1 - p} \quad \text{(training)},
        \qquad \frac{\partial L}{\partial x} = \frac{\partial L}{\partial y}
            \quad \text{(eval)}

    Parameters
    ----------
    dout : array_like, shape of ``x``
        Upstream gradient.
    x, mask, p, training
        The forward's arguments (see :func:`dropout`).

    Returns
    -------
    (dx, None) : tuple
        ``dx`` shaped like ``x``; ``None`` for the bool ``mask``.
    """
    x, mask, p = _check_dropout(x, mask, p, training)
    dout = upstream(dout, x.shape)
    if not training:
        return dout.copy(), None
    return dout * mask / (1.0 - p), None
