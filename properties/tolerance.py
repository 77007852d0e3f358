r"""Every comparison tolerance of the suite, and why it is what it is.

The model
---------
A backend's output passes where, elementwise,

.. math::

    |\text{actual} - \text{expected}| \le
        \text{atol} + \text{rtol}\,|\text{expected}| + 2\,u\,B

* ``rtol``, ``atol``: the precision the contract promises
  (:data:`backends.contract.RTOL`, :data:`backends.contract.ATOL`, imported
  here: the contract states the public numbers, this module applies them).
  float32's are those of ``torch.testing.assert_close`` (1.3e-6 and 1e-5,
  about 22 and 168 units of roundoff at 1), enough for an elementwise op
  computed in the dtype; float64's are the same counts of float64's units of
  roundoff (2.42e-15 and 1.86e-14). torch's float64 default (1e-7) would pass
  a float64 column computed in float32 (errors of 6e-8): the float64
  tolerance must sit below float32's precision to hold a backend to the
  float64 it declares.
* ``u``: the unit roundoff of the dtype (:data:`UNIT_ROUNDOFF`: 2**-24 for
  float32, 2**-53 for float64).
* ``B``: the op's rounding bound (the catalog's ``rounding`` field), ``n
  sum(|terms|)`` for the longest sum of ``n`` terms the output involves. Any
  order of summation (sequential, pairwise, blocked, a BLAS kernel) of ``n``
  terms errs by at most ``(n - 1) u sum(|terms|) + O(u^2)`` (Higham,
  *Accuracy and Stability of Numerical Algorithms*, 2002, eq. 4.4), and a
  dot product by ``n u sum(|a_i b_i|)`` (eq. 3.5); the factor 2
  (:data:`ROUNDING_FACTOR`) covers the rounding of the products, of a bias
  added and of a final scaling. The bound grows with the reduction length and
  the magnitude of the summands, not with the result: a conv output that
  cancels to almost 0 is still allowed the error of the sum that produced it,
  while a wrong term (an error of the size of a summand) stays far above it.

:func:`allowed` is that formula; :mod:`properties.assertions` compares with it.

Special cases
-------------
A few properties compare with something other than one call of the reference;
each has its own bound here, derived in its docstring:

* :data:`DERIVED_FACTOR`: first-order bounds derived by hand for a composition
  of operations (a running statistic, an identity between two ops, a norm);
* :func:`trajectory`: an optimizer's parameters after ``t`` steps;
* :func:`norm_relative`: a global L2 norm (gradient clipping);
* :func:`finite_difference`: the reference's backward against central
  differences of its forward;
* :data:`REORDERED_SUMS`, :data:`HAND_COMPUTED`: a backend's internal code
  paths against each other or against a few hand-computed values, where no
  per-element bound is derived.

Statistical properties (random ops) have no tolerance of this kind: they
accept at a stated false-alarm probability (:mod:`properties.statistics`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from backends.contract import ATOL, DTYPES, RTOL

__all__ = [
    "ATOL",
    "DERIVED_FACTOR",
    "FINITE_DIFFERENCE_ATOL_PER_UNIT",
    "FINITE_DIFFERENCE_RTOL",
    "FINITE_DIFFERENCE_STEP",
    "HAND_COMPUTED",
    "REORDERED_SUMS",
    "ROUNDING_FACTOR",
    "RTOL",
    "UNIT_ROUNDOFF",
    "allowed",
    "describe",
    "finite_difference",
    "norm_relative",
    "rounding_term",
    "trajectory",
]

#: Unit roundoff of each dtype: half the distance from 1 to the next number.
UNIT_ROUNDOFF: dict[str, float] = {
    dtype: float(np.finfo(dtype).eps) / 2 for dtype in DTYPES
}

#: Multiplies ``u B`` in :func:`allowed` (see the module docstring).
ROUNDING_FACTOR = 2.0


def rounding_term(dtype: str, bound: Any) -> Any:
    """``2 u B``: the rounding a computation with rounding bound ``B`` may add."""
    return ROUNDING_FACTOR * UNIT_ROUNDOFF[dtype] * np.abs(bound)


def allowed(dtype: str, expected: np.ndarray, rounding: Any = None) -> np.ndarray:
    """The allowed ``|actual - expected|`` of each element: the module's formula.

    ``rounding``: the bound ``B`` (elementwise or a scalar), or ``None`` for an
    elementwise op (``B = 0``).
    """
    expected = np.asarray(expected, dtype=np.float64)
    bound = ATOL[dtype] + RTOL[dtype] * np.abs(expected)
    if rounding is not None:
        bound = bound + rounding_term(dtype, rounding)
    return np.broadcast_to(bound, expected.shape)


def describe(dtype: str, expected_label: str, *, rounding: bool) -> str:
    """The formula of :func:`allowed` with the dtype's numbers, for a message."""
    text = f"tolerance: atol {ATOL[dtype]:g} + rtol {RTOL[dtype]:g} |{expected_label}|"
    if rounding:
        text += f" + {ROUNDING_FACTOR:g} u B (u = {UNIT_ROUNDOFF[dtype]:.3g})"
    return text


# -- special cases -------------------------------------------------------------

#: Multiplies a first-order rounding bound that a property derives by hand for a
#: composition of operations (a running statistic over several steps, an
#: identity such as ``tanh(x) = 2 sigmoid(2x) - 1`` between two ops, a norm, a
#: loss evaluated along a trajectory). Such a count bounds each operation's
#: relative error by ``u`` and adds them; ``ROUNDING_FACTOR`` covers the
#: second-order terms of a single sum, and a composition has more of them
#: (each step's error feeds the next) plus the roundings a hand count lumps
#: into one (a division and a square root per step, the conversion of a
#: result): four times that factor. A wrong formula errs by the size of an
#: update or a term, orders of magnitude above ``8 u`` times the magnitudes.
DERIVED_FACTOR = 8.0


def trajectory(
    start: np.ndarray, expected: Sequence[np.ndarray], dtype: str
) -> list[np.ndarray]:
    r"""Allowed ``|backend - reference|`` of an optimizer's parameter after each step.

    .. math::

        \text{atol} + \text{rtol}\,|w_t| + 8u \sum_{\tau \le t}
            \big(|w_{\tau-1}| + (\tau + 4)\,|w_\tau - w_{\tau-1}|\big)

    from the reference trajectory :math:`w_\tau` (``expected``, from
    ``start`` = :math:`w_0`): each step rounds the parameter (:math:`u|w|`)
    and computes an update whose relative error grows with the rounding
    accumulated in the state (at most :math:`\tau + 4` roundings after
    :math:`\tau` steps: the averages and sums of squares have recurrence
    coefficients at most 1, so earlier errors are carried, not amplified), and
    those errors add up; ``8`` is :data:`DERIVED_FACTOR`. A wrong formula is
    off by the size of an update, which this stays far below.
    """
    u = UNIT_ROUNDOFF[dtype]
    accumulated = np.zeros_like(start, dtype=np.float64)
    previous = start
    bounds = []
    for tau, current in enumerate(expected, start=1):
        accumulated = (
            accumulated + np.abs(previous) + (tau + 4) * np.abs(current - previous)
        )
        bounds.append(
            ATOL[dtype]
            + RTOL[dtype] * np.abs(current)
            + DERIVED_FACTOR * u * accumulated
        )
        previous = current
    return bounds


def norm_relative(dtype: str, count: int) -> float:
    r"""Allowed relative error of a global L2 norm of ``count`` entries.

    :math:`\sqrt{\sum g_i^2}`: the squares round by :math:`u`, their sum in any
    order by :math:`(n - 1) u` relative (all terms are positive, so relative to
    the sum itself), the square root halves that and adds :math:`u`: at most
    :math:`(n + 2) u` to first order, times :data:`DERIVED_FACTOR`. No
    absolute part: the norm is compared relative to itself at every scale
    (gradients of 1e-4 and of 1e30 alike).
    """
    return DERIVED_FACTOR * UNIT_ROUNDOFF[dtype] * (count + 2)


#: The finite-difference step, relative to ``max(1, |a_i|)``.
FINITE_DIFFERENCE_STEP = 1e-6
#: Relative tolerance of a finite-difference gradient element (see
#: :func:`finite_difference`).
FINITE_DIFFERENCE_RTOL = 1e-6
#: Absolute tolerance of a finite-difference gradient element per unit of
#: ``S = sum |dout| (|f| + 1)`` (see :func:`finite_difference`).
FINITE_DIFFERENCE_ATOL_PER_UNIT = 1e-7


def finite_difference(numeric: np.ndarray, scale: float) -> np.ndarray:
    r"""Allowed ``|analytic - numeric|`` for a central-difference gradient.

    ``1e-6 |numeric| + 1e-7 S`` with ``S = sum_j |dout_j| (|f_j| + 1)``, the
    magnitude of what is differenced (``scale``), for the reference's
    ``<dout, f>`` differenced in float64 with step ``h = 1e-6 max(1, |a_i|)``
    (:data:`FINITE_DIFFERENCE_STEP`). Rounding in ``f`` (at most ``c u`` times
    the magnitude of its terms, ``c`` below ~100 for these small sums) enters
    the quotient as ``c u S / h <= 1.1e-8 S``; the truncation error ``h^2 / 6
    sum_j |dout_j| |f_j'''|`` stays below ``1e-9 S`` in the catalog's domains
    (probabilities >= 0.05, batch-norm channels with std >= 0.3, everything
    else smooth with third derivatives of order 1), since the domains keep the
    inputs at least 1e-3 from any kink or tie. ``1e-7 S`` is ten times the
    larger; a wrong gradient errs by the size of the gradient itself.
    """
    return FINITE_DIFFERENCE_RTOL * np.abs(numeric) + (
        FINITE_DIFFERENCE_ATOL_PER_UNIT * scale
    )


#: ``(rtol, atol per unit of max |expected|)`` when the numpy backend's
#: algorithms are compared with each other (a blocked or compiled kernel against
#: the plain path): two algorithms summing the same products in different
#: orders, with sums of up to a few hundred terms of magnitude at most the
#: largest output's, so each errs by up to ``n u`` of that magnitude (about
#: 3e-5 in float32 at ``n`` = 500, 6e-14 in float64; the float64 numbers sit
#: above that by a factor of 20 and far below a wrong term).
REORDERED_SUMS: dict[str, tuple[float, float]] = {
    "float32": (1e-5, 1e-4),
    "float64": (1e-12, 1e-12),
}

#: Relative tolerance, per unit of ``1 + |expected|``, when the torch backend's
#: output is compared with values computed by hand in float64 (a composed
#: formula, ``dout @ w``, a closed form): the backend computes in the dtype
#: with short sums (at most a few dozen terms), so float32 errs by a few dozen
#: ``u`` (6e-8 each); ``2e-5`` is about 300 ``u`` and ``1e-12`` about 4500
#: float64 ``u``, far below the error of a wrong term or formula.
HAND_COMPUTED: dict[str, float] = {"float32": 2e-5, "float64": 1e-12}
