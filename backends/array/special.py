r"""The error function and its complement for the array backend.

NumPy has no ``erf``; the NumPy backend must run with NumPy alone, so this
module evaluates W. J. Cody's rational Chebyshev approximations (Cody 1969,
the coefficients of his published ``CALERF`` routine), accurate to a few
units of roundoff in float64, elementwise on any array namespace. On CuPy
the library's own ``cupyx.scipy.special`` kernels are used instead.

Cody splits :math:`y = |x|` in three intervals:

* :math:`y \le 0.46875`: :math:`\operatorname{erf}(x) = x \, R_1(x^2)`;
* :math:`0.46875 < y \le 4`: :math:`\operatorname{erfc}(y) = e^{-y^2} R_2(y)`;
* :math:`y > 4`: :math:`\operatorname{erfc}(y) = \frac{e^{-y^2}}{y}
  \big(1/\sqrt{\pi} - y^{-2} R_3(y^{-2})\big)`;

with :math:`e^{-y^2}` computed as :math:`e^{-t^2} e^{-(y - t)(y + t)}`, where
:math:`t` is :math:`y` truncated to a multiple of 1/16 (:math:`t^2` exact), so
that the rounding of :math:`y^2` does not spoil the relative accuracy of the
right tail. Negative arguments use :math:`\operatorname{erfc}(-y) = 2 -
\operatorname{erfc}(y)` and :math:`\operatorname{erf}(-x) = -\operatorname{erf}(x)`.
Both functions compute in the dtype of their input (float32 stays float32).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["erf", "erfc"]

Array = Any

#: :math:`1 / \sqrt{\pi}`.
_ONE_OVER_SQRT_PI = 5.6418958354775628695e-1
#: Upper end of the first interval (erf by a rational function of x^2).
_SMALL = 0.46875
#: Upper end of the second interval (erfc by a rational function of y).
_MEDIUM = 4.0
#: Past this magnitude erfc is 0 in float64 (e^-900 underflows): arguments are
#: clipped here so that no square overflows.
_HUGE = 30.0

# Cody (1969), CALERF: erf on [0, 0.46875], numerator A and denominator B in
# powers of x^2 (highest-order numerator coefficient last, as published).
_A = (
    3.16112374387056560e00,
    1.13864154151050156e02,
    3.77485237685302021e02,
    3.20937758913846947e03,
    1.85777706184603153e-1,
)
_B = (
    2.36012909523441209e01,
    2.44024637934444173e02,
    1.28261652607737228e03,
    2.84423683343917062e03,
)
# erfc(y) e^{y^2} on [0.46875, 4], in powers of y.
_C = (
    5.64188496988670089e-1,
    8.88314979438837594e00,
    6.61191906371416295e01,
    2.98635138197400131e02,
    8.81952221241769090e02,
    1.71204761263407058e03,
    2.05107837782607147e03,
    1.23033935479799725e03,
    2.15311535474403846e-8,
)
_D = (
    1.57449261107098347e01,
    1.17693950891312499e02,
    5.37181101862009858e02,
    1.62138957456669019e03,
    3.29079923573345963e03,
    4.36261909014324716e03,
    3.43936767414372164e03,
    1.23033935480374942e03,
)
# erfc(y) y e^{y^2} on (4, inf), in powers of 1/y^2.
_P = (
    3.05326634961232344e-1,
    3.60344899949804439e-1,
    1.25781726111229246e-1,
    1.60837851487422766e-2,
    6.58749161529837803e-4,
    1.63153871373020978e-2,
)
_Q = (
    2.56852019228982242e00,
    1.87295284992346047e00,
    5.27905102951428412e-1,
    6.05183413124413191e-2,
    2.33520497626869185e-3,
)


def _rational(
    t: Array, numerator: tuple[float, ...], denominator: tuple[float, ...]
) -> Array:
    """Cody's nested evaluation: ``(... ((n[-1] t + n[0]) t + n[1]) ...) / (...)``.

    The numerator's last coefficient is its leading one, the denominator is
    monic; the final step adds the constant terms ``n[-2]`` and ``d[-1]``
    without a last multiplication by ``t``.
    """
    top = numerator[-1] * t
    bottom = t
    for a, b in zip(numerator[:-2], denominator[:-1], strict=True):
        top = (top + a) * t
        bottom = (bottom + b) * t
    return (top + numerator[-2]) / (bottom + denominator[-1])


def _small_erf(x: Array, xp: Any) -> Array:
    """erf(x) for |x| <= 0.46875 (any other x gives a finite, unused value)."""
    clipped = xp.clip(x, -_SMALL, _SMALL)
    return clipped * _rational(clipped * clipped, _A, _B)


def _tail_erfc(y: Array, xp: Any) -> Array:
    """erfc(y) for y = |x| > 0.46875, the second and third intervals."""
    y = xp.clip(y, _SMALL, _HUGE)
    medium = _rational(y, _C, _D)
    inverse_square = 1 / (y * y)
    large = (_ONE_OVER_SQRT_PI - inverse_square * _rational(inverse_square, _P, _Q)) / y
    ratio = xp.where(y <= _MEDIUM, medium, large)
    truncated = xp.trunc(16 * y) / 16
    return (
        xp.exp(-truncated * truncated)
        * xp.exp(-(y - truncated) * (y + truncated))
        * ratio
    )


def _cupy_special(xp: Any) -> Any:
    """``cupyx.scipy.special`` when ``xp`` is CuPy, else ``None``."""
    if getattr(xp, "__name__", "") != "cupy":
        return None
    import cupyx.scipy.special

    return cupyx.scipy.special


def erf(x: Array, xp: Any = np) -> Array:
    r""":math:`\operatorname{erf}(x) = \frac{2}{\sqrt{\pi}} \int_0^x e^{-t^2} dt`."""
    special = _cupy_special(xp)
    if special is not None:
        return special.erf(x)
    y = xp.abs(x)
    tail = 1 - _tail_erfc(y, xp)
    return xp.where(y <= _SMALL, _small_erf(x, xp), xp.where(x < 0, -tail, tail))


def erfc(x: Array, xp: Any = np) -> Array:
    r""":math:`\operatorname{erfc}(x) = 1 - \operatorname{erf}(x)`.

    (Relative accuracy in the right tail, where ``1 - erf`` would cancel.)
    """
    special = _cupy_special(xp)
    if special is not None:
        return special.erfc(x)
    y = xp.abs(x)
    tail = _tail_erfc(y, xp)
    return xp.where(y <= _SMALL, 1 - _small_erf(x, xp), xp.where(x < 0, 2 - tail, tail))


# ---------------------------------------------------------------------------
# float32: one rational function, in place, on blocks of a NumPy array
# ---------------------------------------------------------------------------

#: Past this magnitude erf is +-1 in float32: arguments are clipped here.
_FLOAT32_CLIP = np.float32(4.0)
# erf(x) = x P(x^2) / Q(x^2) on [-4, 4], the minimax fit of Eigen's and XLA's
# float32 erf; coefficients of P and Q highest power first.
_P32 = tuple(
    np.float32(c)
    for c in (
        -2.72614225801306e-10,
        2.77068142495902e-08,
        -2.10102402082508e-06,
        -5.69250639462346e-05,
        -7.34990630326855e-04,
        -2.95459980854025e-03,
        -1.60960333262415e-02,
    )
)
_Q32 = tuple(
    np.float32(c)
    for c in (
        -1.45660718464996e-05,
        -2.13374055278905e-04,
        -1.68282697438203e-03,
        -7.37332916720468e-03,
        -1.42647390514189e-02,
    )
)


def erf_float32_into(z: np.ndarray, out: np.ndarray, work: np.ndarray) -> None:
    """``out[...] = erf(z)`` for float32 NumPy arrays, within a few float32 ulps.

    In place: ``work`` is scratch of shape ``(3, *z.shape)``. On blocks that
    fit the cache each of its two dozen passes runs out of the cache.
    Absolute error under 1e-7 everywhere; ``1 - erf`` is not accurate in the
    right tail (:func:`erfc` is).
    """
    clipped, square, denominator = work
    np.clip(z, -_FLOAT32_CLIP, _FLOAT32_CLIP, out=clipped)
    np.multiply(clipped, clipped, out=square)
    np.multiply(square, _P32[0], out=out)
    for c in _P32[1:-1]:
        out += c
        out *= square
    out += _P32[-1]
    out *= clipped
    np.multiply(square, _Q32[0], out=denominator)
    for c in _Q32[1:-1]:
        denominator += c
        denominator *= square
    denominator += _Q32[-1]
    out /= denominator
