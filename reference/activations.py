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

``gelu`` and ``silu`` are smooth: no convention is needed.

The lecture notes cited as "notes 000" … "notes 004" are described in
``docs/bibliography.md``, with the papers.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from reference._checks import as_float64, require_non_negative, upstream
from reference.shapes import gelu_hyper, prelu_alpha_shape

__all__ = [
    "abs_rectify",
    "abs_rectify_backward",
    "elu",
    "elu_backward",
    "gelu",
    "gelu_backward",
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
    "silu",
    "silu_backward",
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


# ---------------------------------------------------------------------------
# GELU
# ---------------------------------------------------------------------------

#: :math:`\sqrt{2 / \pi}`, the slope at 0 of the inner polynomial of GELU's tanh form.
GELU_TANH_SCALE = math.sqrt(2.0 / math.pi)
#: The cubic coefficient of GELU's tanh form (Hendrycks and Gimpel 2016, section 2).
GELU_TANH_CUBIC = 0.044715

#: Where ``x`` enters a square or a cube, GELU uses it clipped to this magnitude.
#: Beyond :math:`|x| \approx 40` every Gaussian factor :math:`e^{-x^2/2}` of the
#: exact form and every sigmoid factor of the tanh form is exactly 0 or 1 in
#: float64, so the clipping changes no result; it keeps :math:`x^2` and
#: :math:`x^3` finite (they overflow past :math:`|x| \approx 10^{102}`).
_GELU_CLIP = 1e3

_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    r""":math:`\Phi(x) = \tfrac12 \operatorname{erfc}(-x / \sqrt{2})`, accurate in
    both tails (``1 + erf`` would lose every digit of :math:`\Phi` below -8)."""
    return 0.5 * _erfc(-x / math.sqrt(2.0))


def _normal_pdf(x: np.ndarray) -> np.ndarray:
    r""":math:`\varphi(x) = e^{-x^2/2} / \sqrt{2 \pi}` (0 in float64 past 39)."""
    clipped = np.clip(x, -_GELU_CLIP, _GELU_CLIP)
    return np.exp(-0.5 * clipped * clipped) / math.sqrt(2.0 * math.pi)


def _gelu_tanh_inner(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""The tanh form's :math:`u(x)` and its derivative :math:`u'(x)`."""
    clipped = np.clip(x, -_GELU_CLIP, _GELU_CLIP)
    square = clipped * clipped
    u = GELU_TANH_SCALE * clipped * (1.0 + GELU_TANH_CUBIC * square)
    du = GELU_TANH_SCALE * (1.0 + 3.0 * GELU_TANH_CUBIC * square)
    return u, du


def gelu(x: ArrayLike, *, approximate: str = "none") -> np.ndarray:
    r"""Gaussian error linear unit: the input weighted by its Gaussian CDF.

    .. math::

        \operatorname{gelu}(x) = x \, \Phi(x)
            = \frac{x}{2} \operatorname{erfc}\Big(-\frac{x}{\sqrt{2}}\Big)
            = \frac{x}{2} \Big(1 + \operatorname{erf}\frac{x}{\sqrt{2}}\Big)

    with :math:`\Phi` the standard normal CDF (``approximate="none"``). The
    paper motivates it as the expected value of a stochastic mask that keeps
    :math:`x` with probability :math:`\Phi(x)`: a smooth, non-monotone ReLU
    (it dips to about -0.17 near :math:`x = -0.75`). The reference evaluates
    :math:`\Phi` with ``erfc``, which keeps its relative accuracy in the left
    tail where :math:`1 + \operatorname{erf}` cancels.

    ``approximate="tanh"`` is the paper's cheaper approximation, torch's
    ``approximate="tanh"``:

    .. math::

        \operatorname{gelu}_{\tanh}(x) = \frac{x}{2} \big(1 + \tanh u\big)
            = x \, \sigma(2u), \qquad
        u = \sqrt{2/\pi} \, (x + 0.044715 \, x^{3})

    The reference uses the second form, :math:`\tfrac12 (1 + \tanh u) =
    \sigma(2u)` with the overflow-free :func:`sigmoid`, which again avoids the
    cancellation of :math:`1 + \tanh u` for negative :math:`x`. The two forms
    differ by at most about :math:`2 \cdot 10^{-4}`, so they are separate
    contracts, never interchangeable.

    Parameters
    ----------
    x : array_like of any shape
        The pre-activations.
    approximate : {"none", "tanh"}, default "none"
        The exact form or the tanh approximation (torch's names).

    Returns
    -------
    y : ndarray, shape of ``x``, float64

    References
    ----------
    Hendrycks, D. and Gimpel, K. (2016). "Gaussian error linear units (GELUs)."
    arXiv:1606.08415, section 2 (both forms).
    """
    x = as_float64("x", x)
    approximate = gelu_hyper(approximate)
    if approximate == "tanh":
        u, _ = _gelu_tanh_inner(x)
        return x * sigmoid(2.0 * u)
    return x * _normal_cdf(x)


def gelu_backward(
    dout: ArrayLike, x: ArrayLike, *, approximate: str = "none"
) -> tuple[np.ndarray]:
    r"""Gradient of :func:`gelu`.

    Exact form: by the product rule, with :math:`\Phi' = \varphi` the standard
    normal density,

    .. math::

        \frac{\partial L}{\partial x} = \frac{\partial L}{\partial y}
            \big(\Phi(x) + x \, \varphi(x)\big), \qquad
        \varphi(x) = \frac{e^{-x^{2}/2}}{\sqrt{2\pi}}

    Tanh form: with :math:`y = x \, \sigma(2u)` and
    :math:`\sigma' = \sigma (1 - \sigma)`, :math:`1 - \sigma(a) = \sigma(-a)`,

    .. math::

        \frac{\partial L}{\partial x} = \frac{\partial L}{\partial y}
            \big(\sigma(2u) + 2 x \, \sigma(2u) \, \sigma(-2u) \, u'(x)\big),
        \qquad u'(x) = \sqrt{2/\pi} \, (1 + 3 \cdot 0.044715 \, x^{2})

    which is torch's :math:`\tfrac12 (1 + \tanh u) + \tfrac12 x (1 - \tanh^2 u)
    u'(x)` term by term (:math:`\tfrac12 (1 - \tanh^2 u) = 2 \sigma(2u)
    \sigma(-2u)`).

    Parameters
    ----------
    dout : array_like, shape of ``x``
        Upstream gradient.
    x : array_like of any shape
        The forward's input.
    approximate : {"none", "tanh"}, default "none"
        The forward's form.

    Returns
    -------
    (dx,) : tuple of one ndarray, shape of ``x``
    """
    x = as_float64("x", x)
    approximate = gelu_hyper(approximate)
    dout = upstream(dout, x.shape)
    if approximate == "tanh":
        u, du = _gelu_tanh_inner(x)
        s = sigmoid(2.0 * u)
        return (dout * (s + x * (2.0 * s * sigmoid(-2.0 * u) * du)),)
    return (dout * (_normal_cdf(x) + x * _normal_pdf(x)),)


# ---------------------------------------------------------------------------
# SiLU
# ---------------------------------------------------------------------------


def silu(x: ArrayLike) -> np.ndarray:
    r"""Sigmoid-weighted linear unit (SiLU, also called swish).

    .. math::

        \operatorname{silu}(x) = x \, \sigma(x) = \frac{x}{1 + e^{-x}}

    with the overflow-free :func:`sigmoid`. Like GELU (which is
    :math:`x \, \Phi(x)`), the input is weighted by a CDF, here the logistic
    one; it is smooth, non-monotone, with its minimum of about -0.28 near
    :math:`x = -1.28`. Swish with :math:`\beta = 1` (the fixed-slope case
    torch's ``silu`` computes).

    Parameters
    ----------
    x : array_like of any shape
        The pre-activations.

    Returns
    -------
    y : ndarray, shape of ``x``, float64

    References
    ----------
    Elfwing, S., Uchibe, E. and Doya, K. (2018). "Sigmoid-weighted linear units
    for neural network function approximation in reinforcement learning."
    Neural Networks 107 (the SiL unit). Ramachandran, P., Zoph, B. and Le, Q.
    (2017). "Searching for activation functions." arXiv:1710.05941 (swish).
    """
    x = as_float64("x", x)
    return x * sigmoid(x)


def silu_backward(dout: ArrayLike, x: ArrayLike) -> tuple[np.ndarray]:
    r"""Gradient of :func:`silu`.

    By the product rule with :math:`\sigma' = \sigma (1 - \sigma)` and
    :math:`1 - \sigma(x) = \sigma(-x)`:

    .. math::

        \frac{\partial L}{\partial x} = \frac{\partial L}{\partial y}
            \big(\sigma(x) + x \, \sigma(x) \, \sigma(-x)\big)
            = \frac{\partial L}{\partial y} \, \sigma(x) \big(1 + x \, \sigma(-x)\big)

    (Elfwing et al. 2018, the derivative of the SiL unit; torch writes
    :math:`\sigma(x) (1 + x (1 - \sigma(x)))`, the same number up to rounding).

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
    return (dout * sigmoid(x) * (1.0 + x * sigmoid(-x)),)
