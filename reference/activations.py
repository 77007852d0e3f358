r"""Elementwise activation functions, each followed by its derivative.

Every forward ``f(x, ...)`` maps an array of any shape to an array of the same
shape; its ``f_backward(dout, x, ...)`` takes the upstream gradient
:math:`\partial L / \partial y` (``dout``, shaped like ``x``) and the forward's own
inputs, and returns a tuple with one gradient per array argument:
``relu_backward(dout, x) -> (dx,)``, ``prelu_backward(dout, x, alpha) ->
(dx, dalpha)``.

Convention at the kinks (the derivative is undefined there; we pick torch's
one-sided value so that backends agree exactly):

* ``relu``: :math:`f'(0) = 0`;
* ``leaky_relu`` and ``prelu``: :math:`f'(0) = \alpha`;
* ``elu`` and ``selu``: the negative branch at 0;
* ``abs_rectify``: :math:`f'(0) = \operatorname{sign}(0) = 0`.

The lecture notes cited as "notes 000" … "notes 004" are described in
``docs/bibliography.md``, with the papers.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from reference._checks import as_float64, require_non_negative, upstream
from reference.shapes import prelu_alpha_shape

__all__ = [
    "abs_rectify",
    "abs_rectify_backward",
    "elu",
    "elu_backward",
    "leaky_relu",
    "leaky_relu_backward",
    "prelu",
    "prelu_backward",
    "relu",
    "relu_backward",
    "selu",
    "selu_backward",
    "sigmoid",
    "sigmoid_backward",
    "softplus",
    "softplus_backward",
    "tanh",
    "tanh_backward",
]

#: The SELU scale :math:`\lambda` of Klambauer et al. (2017), eq. (14).
SELU_LAMBDA = 1.0507009873554804934193349852946
#: The SELU negative saturation :math:`\alpha` of Klambauer et al. (2017), eq. (14).
SELU_ALPHA = 1.6732632423543772848170429916717


# ---------------------------------------------------------------------------
# ReLU
# ---------------------------------------------------------------------------


def relu(x: ArrayLike) -> np.ndarray:
    r"""Rectified linear unit.

    .. math::

        \operatorname{relu}(x) = \max(0, x)

    Parameters
    ----------
    x : array_like of any shape
        The pre-activations.

    Returns
    -------
    y : ndarray, shape of ``x``, float64

    References
    ----------
    notes 000, notes 001, notes 002 (``f(z) = max(0, z)``).
    Nair, V. and Hinton, G. (2010). "Rectified linear units improve restricted
    Boltzmann machines." ICML.
    """
    x = as_float64("x", x)
    return np.maximum(x, 0.0)


def relu_backward(dout: ArrayLike, x: ArrayLike) -> tuple[np.ndarray]:
    r"""Gradient of :func:`relu`.

    .. math::

        \frac{\partial L}{\partial x} = \frac{\partial L}{\partial y}
            \cdot \mathbb{1}[x > 0]

    Convention: the derivative at ``x = 0`` is 0 (as torch).

    Parameters
    ----------
    dout : array_like, shape of ``x``
        Upstream gradient :math:`\partial L / \partial y`.
    x : array_like of any shape
        The forward's input.

    Returns
    -------
    (dx,) : tuple of one ndarray, shape of ``x``
    """
    x = as_float64("x", x)
    dout = upstream(dout, x.shape)
    return (dout * (x > 0),)


# ---------------------------------------------------------------------------
# Leaky ReLU
# ---------------------------------------------------------------------------


def leaky_relu(x: ArrayLike, *, alpha: float = 0.01) -> np.ndarray:
    r"""Leaky rectified linear unit.

    .. math::

        \operatorname{leaky\_relu}(x) = x \quad \text{if } x > 0,
            \qquad \alpha x \quad \text{otherwise}

    For :math:`0 \le \alpha \le 1` this is the notes' :math:`\max(\alpha x, x)`
    (notes 000, notes 001 with :math:`\alpha = 0.01`) and
    :math:`\alpha \min(0, x) + \max(0, x)` (notes 004).

    Parameters
    ----------
    x : array_like of any shape
        The pre-activations.
    alpha : float, default 0.01
        The slope for negative inputs; must be non-negative (the notes call it
        "a small positive constant").

    Returns
    -------
    y : ndarray, shape of ``x``, float64

    References
    ----------
    Maas, A., Hannun, A. and Ng, A. (2013). "Rectifier nonlinearities improve
    neural network acoustic models." ICML workshop.
    """
    x = as_float64("x", x)
    alpha = require_non_negative("alpha", alpha)
    return np.where(x > 0, x, alpha * x)


def leaky_relu_backward(
    dout: ArrayLike, x: ArrayLike, *, alpha: float = 0.01
) -> tuple[np.ndarray]:
    r"""Gradient of :func:`leaky_relu`.

    .. math::

        \frac{\partial L}{\partial x} = \frac{\partial L}{\partial y}
            \cdot (1 \text{ if } x > 0 \text{ else } \alpha)

    Convention: the derivative at ``x = 0`` is :math:`\alpha` (as torch).

    Parameters
    ----------
    dout : array_like, shape of ``x``
        Upstream gradient.
    x : array_like of any shape
        The forward's input.
    alpha : float, default 0.01
        The slope for negative inputs.

    Returns
    -------
    (dx,) : tuple of one ndarray, shape of ``x``
    """
    x = as_float64("x", x)
    alpha = require_non_negative("alpha", alpha)
    dout = upstream(dout, x.shape)
    return (dout * np.where(x > 0, 1.0, alpha),)


# ---------------------------------------------------------------------------
# PReLU
# ---------------------------------------------------------------------------


def _prelu_slope(x: np.ndarray, alpha: ArrayLike) -> np.ndarray:
    """``alpha`` checked to be ``(1,)`` or ``(C,)``, shaped to broadcast on axis 1."""
    alpha = as_float64("alpha", alpha, ndim=1)
    prelu_alpha_shape(x.shape, alpha.shape)
    if alpha.shape == (1,):
        return alpha.reshape((1,) * x.ndim)
    return alpha.reshape((1, -1) + (1,) * (x.ndim - 2))


def prelu(x: ArrayLike, alpha: ArrayLike) -> np.ndarray:
    r"""Parametric rectified linear unit: a leaky ReLU with a learned slope.

    .. math::

        \operatorname{prelu}(x)_{n,c,\dots} = x_{n,c,\dots}
            \quad \text{if } x_{n,c,\dots} > 0,
            \qquad \alpha_c \, x_{n,c,\dots} \quad \text{otherwise}

    Parameters
    ----------
    x : array_like, shape ``(N, C, ...)``
        The pre-activations; the channel axis is axis 1.
    alpha : array_like, shape ``(C,)`` or ``(1,)``
        One slope per channel, or one slope shared by all (then ``x`` may have
        any shape).

    Returns
    -------
    y : ndarray, shape of ``x``, float64

    References
    ----------
    notes 001 ("Parametric Rectifier (PReLU)"), notes 003.
    He, K., Zhang, X., Ren, S. and Sun, J. (2015). "Delving deep into
    rectifiers: surpassing human-level performance on ImageNet classification."
    ICCV, eq. (1).
    """
    x = as_float64("x", x)
    slope = _prelu_slope(x, alpha)
    return np.where(x > 0, x, slope * x)


def prelu_backward(
    dout: ArrayLike, x: ArrayLike, alpha: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    r"""Gradient of :func:`prelu` with respect to ``x`` and to ``alpha``.

    .. math::

        \frac{\partial L}{\partial x} = \frac{\partial L}{\partial y}
            \cdot (1 \text{ if } x > 0 \text{ else } \alpha_c)

        \frac{\partial L}{\partial \alpha_c} = \sum_{n,\dots}
            \frac{\partial L}{\partial y_{n,c,\dots}}
            \, x_{n,c,\dots} \, \mathbb{1}[x_{n,c,\dots} \le 0]

    (He et al. 2015, eq. (4)); with ``alpha`` of shape ``(1,)`` the sum runs
    over every element.

    Parameters
    ----------
    dout : array_like, shape of ``x``
        Upstream gradient.
    x : array_like, shape ``(N, C, ...)``
        The forward's input.
    alpha : array_like, shape ``(C,)`` or ``(1,)``
        The forward's slopes.

    Returns
    -------
    (dx, dalpha) : tuple of ndarrays, shapes of ``x`` and ``alpha``
    """
    x = as_float64("x", x)
    slope = _prelu_slope(x, alpha)
    dout = upstream(dout, x.shape)
    dx = dout * np.where(x > 0, 1.0, slope)
    dslope = dout * np.where(x > 0, 0.0, x)
    summed_axes = tuple(axis for axis in range(x.ndim) if slope.shape[axis] == 1)
    dalpha = dslope.sum(axis=summed_axes).reshape(-1)
    return dx, dalpha


# ---------------------------------------------------------------------------
# ELU
# ---------------------------------------------------------------------------


def elu(x: ArrayLike, *, alpha: float = 1.0) -> np.ndarray:
    r"""Exponential linear unit.

    .. math::

        \operatorname{elu}(x) = x \quad \text{if } x > 0,
            \qquad \alpha (e^{x} - 1) \quad \text{if } x \le 0

    :math:`e^{x} - 1` is computed as ``expm1`` of :math:`\min(x, 0)`, which is
    accurate near 0 and never overflows on the unused positive branch.

    Parameters
    ----------
    x : array_like of any shape
        The pre-activations.
    alpha : float, default 1.0
        The negative saturation value; must be non-negative.

    Returns
    -------
    y : ndarray, shape of ``x``, float64

    References
    ----------
    notes 001 ("Exponential Linear Units").
    Clevert, D.-A., Unterthiner, T. and Hochreiter, S. (2016). "Fast and
    accurate deep network learning by exponential linear units (ELUs)." ICLR.
    """
    x = as_float64("x", x)
    alpha = require_non_negative("alpha", alpha)
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


def elu_backward(
    dout: ArrayLike, x: ArrayLike, *, alpha: float = 1.0
) -> tuple[np.ndarray]:
    r"""Gradient of :func:`elu`.

    .. math::

        \frac{\partial L}{\partial x} = \frac{\partial L}{\partial y}
            \cdot (1 \text{ if } x > 0 \text{ else } \alpha e^{x})

    Convention: at ``x = 0`` the negative branch, :math:`\alpha` (as torch).

    Parameters
    ----------
    dout : array_like, shape of ``x``
        Upstream gradient.
    x : array_like of any shape
        The forward's input.
    alpha : float, default 1.0
        The negative saturation value.

    Returns
    -------
    (dx,) : tuple of one ndarray, shape of ``x``
    """
    x = as_float64("x", x)
    alpha = require_non_negative("alpha", alpha)
    dout = upstream(dout, x.shape)
    return (dout * np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0.0))),)


# ---------------------------------------------------------------------------
# SELU
# ---------------------------------------------------------------------------


def selu(x: ArrayLike) -> np.ndarray:
    r"""Scaled exponential linear unit: :math:`\lambda` times an ELU.

    .. math::

        \operatorname{selu}(x) = \lambda x \quad \text{if } x > 0,
            \qquad \lambda \alpha (e^{x} - 1) \quad \text{if } x \le 0

    with the exact constants of Klambauer et al. (2017), eq. (14):
    :math:`\lambda = 1.0507009873554804934193349852946`,
    :math:`\alpha = 1.6732632423543772848170429916717` (the fixed point of
    zero mean and unit variance; in float64 they round to ``SELU_LAMBDA`` and
    ``SELU_ALPHA``).

    Parameters
    ----------
    x : array_like of any shape
        The pre-activations.

    Returns
    -------
    y : ndarray, shape of ``x``, float64

    References
    ----------
    notes 001 (mentions SELU). Klambauer, G., Unterthiner, T., Mayr, A. and
    Hochreiter, S. (2017). "Self-normalizing neural networks." NeurIPS.
    """
    x = as_float64("x", x)
    return SELU_LAMBDA * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0.0)))


def selu_backward(dout: ArrayLike, x: ArrayLike) -> tuple[np.ndarray]:
    r"""Gradient of :func:`selu`.

    .. math::

        \frac{\partial L}{\partial x} = \frac{\partial L}{\partial y}
            \cdot \lambda \, (1 \text{ if } x > 0 \text{ else } \alpha e^{x})

    Convention: at ``x = 0`` the negative branch, :math:`\lambda \alpha`.

    Parameters
    ----------
    dout : array_like, shape of ``x``
        Upstream gradient.
    x : array_like of any shape
        The forward's input.

    Returns
    -------
    (dx,) : tuple of one ndarray, shape of ``x``
    """
    x = as_float64("x", x)
    dout = upstream(dout, x.shape)
    slope = np.where(x > 0, 1.0, SELU_ALPHA * np.exp(np.minimum(x, 0.0)))
    return (dout * SELU_LAMBDA * slope,)


# ---------------------------------------------------------------------------
# Sigmoid
# ---------------------------------------------------------------------------


def sigmoid(x: ArrayLike) -> np.ndarray:
    r"""Logistic sigmoid, computed without overflow.

    .. math::

        \sigma(x) = \frac{1}{1 + e^{-x}} = \frac{e^{x}}{1 + e^{x}}

    The first form is used for :math:`x \ge 0` and the second for
    :math:`x < 0`; both are written with :math:`z = e^{-|x|} \in (0, 1]`,
    so no exponential overflows (``x`` of magnitude 1e4 gives exactly 0 or 1
    with no warning).

    Parameters
    ----------
    x : array_like of any shape
        The pre-activations (logits).

    Returns
    -------
    y : ndarray, shape of ``x``, float64, in [0, 1]

    References
    ----------
    notes 000, notes 001, notes 003. notes 004 writes
    ``logistic(z) = e^z / e^z``, an OCR slip for :math:`e^{z} / (e^{z} + 1)`.
    """
    x = as_float64("x", x)
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z))


def sigmoid_backward(dout: ArrayLike, x: ArrayLike) -> tuple[np.ndarray]:
    r"""Gradient of :func:`sigmoid`.

    .. math::

        \frac{\partial L}{\partial x} = \frac{\partial L}{\partial y}
            \cdot \sigma(x) \, (1 - \sigma(x))

    (notes 002: "derivative of sigmoid can be expressed in terms of sigmoid
    itself").

    Parameters
    ----------
    dout : array_like, shape of ``x``
        Upstream gradient.
    x : array_like of any shape
        The forward's input.

    Returns
    -------
    (dx,) : tuple of one ndarray, shape of ``x``
    """
    x = as_float64("x", x)
    dout = upstream(dout, x.shape)
    s = sigmoid(x)
    return (dout * s * (1.0 - s),)


# ---------------------------------------------------------------------------
# tanh
# ---------------------------------------------------------------------------


def tanh(x: ArrayLike) -> np.ndarray:
    r"""Hyperbolic tangent.

    .. math::

        \tanh(x) = \frac{e^{x} - e^{-x}}{e^{x} + e^{-x}} = 2 \sigma(2x) - 1

    (computed by ``np.tanh``, which does not overflow).

    Parameters
    ----------
    x : array_like of any shape
        The pre-activations.

    Returns
    -------
    y : ndarray, shape of ``x``, float64, in [-1, 1]

    References
    ----------
    notes 000, notes 001, notes 003 (the identity with the sigmoid).
    """
    x = as_float64("x", x)
    return np.tanh(x)


def tanh_backward(dout: ArrayLike, x: ArrayLike) -> tuple[np.ndarray]:
    r"""Gradient of :func:`tanh`.

    .. math::

        \frac{\partial L}{\partial x} = \frac{\partial L}{\partial y}
            \cdot (1 - \tanh^{2}(x))

    (notes 002: :math:`a = \tanh(z) \Rightarrow da/dz = 1 - a^2`).

    Parameters
    ----------
    dout : array_like, shape of ``x``
        Upstream gradient.
    x : array_like of any shape
        The forward's input.

    Returns
    -------
    (dx,) : tuple of one ndarray, shape of ``x``
    """
    x = as_float64("x", x)
    dout = upstream(dout, x.shape)
    t = np.tanh(x)
    return (dout * (1.0 - t * t),)


# ---------------------------------------------------------------------------
# Softplus
# ---------------------------------------------------------------------------


def softplus(x: ArrayLike) -> np.ndarray:
    r"""Softplus, the smooth approximation of the rectifier, computed stably.

    .. math::

        \operatorname{softplus}(x) = \log(1 + e^{x})
            = \log(1 + e^{-|x|}) + \max(x, 0)

    The second form never overflows (``x`` of magnitude 1e4 gives ``x`` or 0).

    Convention: exact for every ``x``; torch's ``softplus`` (``beta=1``,
    ``threshold=20``) returns ``x`` itself above 20, which differs from this by
    less than :math:`e^{-20} \approx 2 \cdot 10^{-9}`.

    Parameters
    ----------
    x : array_like of any shape
        The pre-activations.

    Returns
    -------
    y : ndarray, shape of ``x``, float64, positive

    References
    ----------
    notes 002 ("Smooth approximation of rectifier").
    Dugas, C. et al. (2001). "Incorporating second-order functional knowledge
    for better option pricing." NeurIPS.
    """
    x = as_float64("x", x)
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0.0)


def softplus_backward(dout: ArrayLike, x: ArrayLike) -> tuple[np.ndarray]:
    r"""Gradient of :func:`softplus`: the logistic sigmoid.

    .. math::

        \frac{\partial L}{\partial x} = \frac{\partial L}{\partial y}
            \cdot \sigma(x) = \frac{\partial L}{\partial y}
            \cdot \frac{1}{1 + e^{-x}}

    (notes 002).

    Parameters
    ----------
    dout : array_like, shape of ``x``
        Upstream gradient.
    x : array_like of any shape
        The forward's input.

    Returns
    -------
    (dx,) : tuple of one ndarray, shape of ``x``
    """
    x = as_float64("x", x)
    dout = upstream(dout, x.shape)
    return (dout * sigmoid(x),)


# ---------------------------------------------------------------------------
# Absolute value rectification
# ---------------------------------------------------------------------------


def abs_rectify(x: ArrayLike) -> np.ndarray:
    r"""Absolute value rectification.

    .. math::

        \operatorname{abs\_rectify}(x) = |x|

    Parameters
    ----------
    x : array_like of any shape
        The pre-activations.

    Returns
    -------
    y : ndarray, shape of ``x``, float64, non-negative

    References
    ----------
    notes 004 ("used sometimes in object recognition in images, might want
    invariance to image reversal"). Jarrett, K., Kavukcuoglu, K., Ranzato, M.
    and LeCun, Y. (2009). "What is the best multi-stage architecture for object
    recognition?" ICCV.
    """
    x = as_float64("x", x)
    return np.abs(x)


def abs_rectify_backward(dout: ArrayLike, x: ArrayLike) -> tuple[np.ndarray]:
    r"""Gradient of :func:`abs_rectify`.

    .. math::

        \frac{\partial L}{\partial x} = \frac{\partial L}{\partial y}
            \cdot \operatorname{sign}(x)

    Convention: :math:`\operatorname{sign}(0) = 0` (as torch).

    Parameters
    ----------
    dout : array_like, shape of ``x``
        Upstream gradient.
    x : array_like of any shape
        The forward's input.

    Returns
    -------
    (dx,) : tuple of one ndarray, shape of ``x``
    """
    x = as_float64("x", x)
    dout = upstream(dout, x.shape)
    return (dout * np.sign(x),)
