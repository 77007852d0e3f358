r"""Statistical bounds for the randomised properties.

Every bound here is an *acceptance region* that a correct implementation leaves
with probability at most ``probability`` (by default
:data:`EXAMPLE_FAILURE_PROBABILITY` = 1e-9 per Hypothesis example, so that a
test of at most :data:`MAX_EXAMPLES_PER_TEST` = 1000 examples fails a correct
implementation with probability below :data:`FAILURE_PROBABILITY` = 1e-6),
computed from an exact
distribution or from a non-asymptotic inequality, never from a rule of thumb.
The regions are deterministic functions of the sample size and the
distribution: the randomness of a property is only in its draws (seeds that
Hypothesis picks), so a failing example replays exactly.

The tools, each with its guarantee:

``normal_two_sided_quantile(delta)``
    ``z`` with :math:`P(|Z| > z) = \delta` for :math:`Z \sim N(0, 1)`, by
    bisection on ``math.erfc`` (exact up to float rounding):
    ``z(1e-6) = 4.8916``, ``z(5e-10) = 6.2191``.
``binomial_acceptance(n, p, delta)``
    ``[low, high]`` with :math:`P(K < low) \le \delta/2` and
    :math:`P(K > high) \le \delta/2` for :math:`K \sim \mathrm{Bin}(n, p)`,
    summed from the exact probability mass function (no normal approximation,
    so it is right for small ``n`` and for ``p`` near 0 or 1).
``chi_square_acceptance(dof, delta)``
    ``[low, high]`` for :math:`X \sim \chi^2_k` from Laurent and Massart
    (2000, Lemma 1): :math:`P(X - k \ge 2\sqrt{kx} + 2x) \le e^{-x}` and
    :math:`P(k - X \ge 2\sqrt{kx}) \le e^{-x}`; with :math:`x = \ln(2/\delta)`
    each tail is at most :math:`\delta/2`. The sum of squares of ``k`` draws
    of :math:`N(0, \sigma^2)` is :math:`\sigma^2 \chi^2_k`.
``bernstein_deviation(variance_sum, bound, delta)``
    ``t`` with :math:`P(|S - E S| \ge t) \le \delta` for a sum ``S`` of
    independent terms, each within ``bound`` of its mean, whose variances sum
    to ``variance_sum`` (Bernstein's inequality,
    :math:`P(|S - ES| \ge t) \le 2\exp(-\tfrac{t^2/2}{V + Mt/3})`, solved for
    ``t``): :math:`t = ML/3 + \sqrt{(ML/3)^2 + 2VL}` with
    :math:`L = \ln(2/\delta)`.

``dkw_epsilon(n, delta)`` and ``ks_distance(values, cdf)``
    The shape of a distribution, not only its moments: the empirical
    distribution function :math:`F_n` of ``n`` independent draws from
    :math:`F` satisfies :math:`P(\sup_x |F_n(x) - F(x)| > \varepsilon) \le
    2 e^{-2n\varepsilon^2}` (Dvoretzky-Kiefer-Wolfowitz with Massart's
    constant, 1990), for every ``n``. Massart proves it for a continuous
    :math:`F`; for a discrete one (binomial counts) the supremum runs over a
    subset of the points of the continuous case, so the bound still holds.
    ``dkw_epsilon`` solves :math:`2e^{-2n\varepsilon^2} = \delta` for
    :math:`\varepsilon`; ``ks_distance`` computes the supremum exactly (at
    the jumps of :math:`F_n`, from both sides).
``binomial_cdf(n, p)``
    :math:`P(K \le k)` for every ``k``, from the same exact mass function.

A property that makes several such checks in one example splits the
example's budget between them (:func:`split`): by the union bound the total
stays at most 1e-9 per example, 1e-6 per test.

Rounding. The bounds are for exact arithmetic; a property adds the rounding
error of its statistic (a few units of roundoff of the dtype times the sum of
the magnitudes involved) to the region, so float32 never tips a correct
implementation over.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

__all__ = [
    "EXAMPLE_FAILURE_PROBABILITY",
    "FAILURE_PROBABILITY",
    "MAX_EXAMPLES_PER_TEST",
    "bernstein_deviation",
    "binomial_acceptance",
    "binomial_cdf",
    "chi_square_acceptance",
    "dkw_epsilon",
    "ks_distance",
    "ks_distance_counts",
    "normal_two_sided_quantile",
    "split",
]

#: The largest probability with which a statistical property may fail a
#: correct implementation, per test (all the examples of one test together).
FAILURE_PROBABILITY = 1e-6
#: The most examples a test may run: the ``nightly`` profile runs 300, and
#: explicit ``@example`` s and replays add a few.
MAX_EXAMPLES_PER_TEST = 1000
#: The budget of one example, :math:`10^{-6} / 1000 = 10^{-9}`: by the union
#: bound over its examples, a whole test stays below FAILURE_PROBABILITY.
EXAMPLE_FAILURE_PROBABILITY = FAILURE_PROBABILITY / MAX_EXAMPLES_PER_TEST
#: Examples per test under the ``nightly`` profile, the largest the suite runs.
NIGHTLY_EXAMPLES = 300


def split(probability: float, parts: int) -> float:
    """Each of ``parts`` checks gets ``probability / parts`` (the union bound)."""
    if parts < 1:
        raise ValueError(f"parts must be >= 1, got {parts}")
    return probability / parts


def _require_probability(probability: float) -> float:
    if not 0.0 < probability < 1.0:
        raise ValueError(f"probability must lie in (0, 1), got {probability!r}")
    return float(probability)


def normal_two_sided_quantile(
    probability: float = EXAMPLE_FAILURE_PROBABILITY,
) -> float:
    r"""``z`` with :math:`P(|Z| > z) = ` ``probability`` for a standard normal ``Z``.

    :math:`P(|Z| > z) = \mathrm{erfc}(z / \sqrt 2)`, decreasing in ``z``;
    solved by bisection to 1e-12. ``normal_two_sided_quantile(1e-6)`` is
    4.8916, ``normal_two_sided_quantile(1e-9)`` 6.1094.
    """
    probability = _require_probability(probability)
    low, high = 0.0, 40.0
    for _ in range(200):
        middle = 0.5 * (low + high)
        if math.erfc(middle / math.sqrt(2.0)) > probability:
            low = middle
        else:
            high = middle
        if high - low < 1e-12:
            break
    return high


def _binomial_pmf(n: int, p: float) -> np.ndarray:
    """``P(K = k)`` for ``k = 0..n``, built in log space (``0 < p < 1``)."""
    k = np.arange(n, dtype=np.float64)
    log_ratio = np.log((n - k) / (k + 1.0)) + (math.log(p) - math.log1p(-p))
    log_pmf = np.concatenate([[0.0], np.cumsum(log_ratio)])
    pmf = np.exp(log_pmf - log_pmf.max())
    return pmf / pmf.sum()


def binomial_cdf(n: int, p: float) -> np.ndarray:
    """``P(K <= k)`` for ``k = 0..n``, ``K ~ Binomial(n, p)``, exact."""
    if n < 0 or not 0.0 <= p <= 1.0:
        raise ValueError(f"need n >= 0 and p in [0, 1], got n={n}, p={p}")
    if p in (0.0, 1.0) or n == 0:
        cdf = np.zeros(n + 1)
        cdf[0 if p == 0.0 else n :] = 1.0
        return cdf
    return np.minimum(np.cumsum(_binomial_pmf(n, p)), 1.0)


def dkw_epsilon(n: int, probability: float = EXAMPLE_FAILURE_PROBABILITY) -> float:
    r"""``eps`` with :math:`P(\sup|F_n - F| > \varepsilon) \le` ``probability``.

    :math:`2e^{-2n\varepsilon^2} = \delta` gives
    :math:`\varepsilon = \sqrt{\ln(2/\delta) / (2n)}`: 0.0131 for
    ``n = 65536`` and :math:`\delta = 3.3 \cdot 10^{-10}`.
    """
    probability = _require_probability(probability)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return math.sqrt(math.log(2.0 / probability) / (2.0 * n))


def dkw_probability(n: int, epsilon: float) -> float:
    """The DKW bound ``2 exp(-2 n eps**2)`` itself (the false-alarm rate)."""
    return min(1.0, 2.0 * math.exp(-2.0 * n * epsilon * epsilon))


def ks_distance(values: np.ndarray, cdf: Callable[[np.ndarray], np.ndarray]) -> float:
    """``sup_x |F_n(x) - F(x)|`` of ``values`` against a continuous ``cdf``.

    At the ``i``-th smallest of the ``n`` values :math:`F_n` jumps from
    ``(i - 1) / n`` to ``i / n``; the supremum is reached at a jump, from one
    side or the other, so it is the largest of ``|i/n - F(x_i)|`` and
    ``|(i-1)/n - F(x_i)|``.
    """
    ordered = np.sort(np.asarray(values, dtype=np.float64).ravel())
    n = ordered.size
    at = np.asarray(cdf(ordered), dtype=np.float64)
    rank = np.arange(1, n + 1) / n
    return float(max(np.max(np.abs(rank - at)), np.max(np.abs(rank - 1.0 / n - at))))


def ks_distance_counts(counts: np.ndarray, cdf: np.ndarray) -> float:
    """``sup_x |F_n(x) - F(x)|`` of integer ``counts`` against ``cdf[k] = P(K <= k)``.

    Both distribution functions are constant on each ``[k, k + 1)``, so the
    supremum is the largest difference at the integers ``0..len(cdf) - 1``.
    """
    counts = np.asarray(counts).ravel()
    empirical = np.cumsum(np.bincount(counts, minlength=cdf.size)[: cdf.size])
    return float(np.max(np.abs(empirical / counts.size - cdf)))


def binomial_acceptance(
    n: int, p: float, probability: float = EXAMPLE_FAILURE_PROBABILITY
) -> tuple[int, int]:
    r"""Counts ``[low, high]`` a ``Binomial(n, p)`` draw leaves w.p. <= ``probability``.

    Exact: the probability mass function
    :math:`P(K = k) = \binom{n}{k} p^k (1-p)^{n-k}` is built in log space from
    the ratio :math:`P(k+1)/P(k) = \frac{n-k}{k+1}\frac{p}{1-p}`, normalised,
    and summed from each end; ``low`` is the largest count with
    :math:`P(K < low) \le \delta/2`, ``high`` the smallest with
    :math:`P(K > high) \le \delta/2`.

    >>> binomial_acceptance(10_000, 0.5, 1e-6)
    (4755, 5245)
    """
    probability = _require_probability(probability)
    if n < 0 or p < 0.0 or p > 1.0:
        raise ValueError(f"need n >= 0 and p in [0, 1], got n={n}, p={p}")
    if n == 0 or p == 0.0:
        return 0, 0
    if p == 1.0:
        return n, n
    pmf = _binomial_pmf(n, p)
    half = probability / 2.0
    at_most = np.cumsum(pmf)  # P(K <= k)
    at_least = np.cumsum(pmf[::-1])[::-1]  # P(K >= k)
    low = int(np.count_nonzero(at_most <= half))
    high = n - int(np.count_nonzero(at_least <= half))
    return low, high


def chi_square_acceptance(
    dof: int, probability: float = EXAMPLE_FAILURE_PROBABILITY
) -> tuple[float, float]:
    r"""``[low, high]`` that :math:`\chi^2_{dof}` leaves w.p. <= ``probability``.

    Laurent and Massart (2000), Lemma 1, with :math:`x = \ln(2/\delta)`:

    .. math::

        low = k - 2\sqrt{kx}, \qquad high = k + 2\sqrt{kx} + 2x

    For ``dof = 32768`` and :math:`\delta = 5 \cdot 10^{-10}`
    (:math:`x = 22.1`): ``[0.948 k, 1.053 k]``.
    """
    probability = _require_probability(probability)
    if dof < 1:
        raise ValueError(f"dof must be >= 1, got {dof}")
    x = math.log(2.0 / probability)
    spread = 2.0 * math.sqrt(dof * x)
    return max(dof - spread, 0.0), dof + spread + 2.0 * x


def bernstein_deviation(
    variance_sum: float, bound: float, probability: float = EXAMPLE_FAILURE_PROBABILITY
) -> float:
    r"""``t`` with :math:`P(|S - ES| \ge t) \le` ``probability`` (Bernstein).

    ``S`` is a sum of independent terms :math:`X_i` with
    :math:`|X_i - EX_i| \le M` (``bound``) and
    :math:`\sum \mathrm{Var} X_i = V` (``variance_sum``). Bernstein's inequality
    :math:`P(|S - ES| \ge t) \le 2\exp\big(-\tfrac{t^2/2}{V + Mt/3}\big)`
    equals ``probability`` at

    .. math::

        t = \frac{ML}{3} + \sqrt{\Big(\frac{ML}{3}\Big)^2 + 2VL},
        \qquad L = \ln\frac{2}{\delta}
    """
    probability = _require_probability(probability)
    if variance_sum < 0 or bound < 0:
        raise ValueError(
            f"need variance_sum >= 0 and bound >= 0, got {variance_sum}, {bound}"
        )
    log_term = math.log(2.0 / probability)
    third = bound * log_term / 3.0
    return third + math.sqrt(third * third + 2.0 * variance_sum * log_term)
