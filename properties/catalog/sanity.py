"""The distribution sanity checks of the random ops (``dropout_mask``, ``initialize``).

A random op's values are never compared with the reference's: each example
instead checks shape and dtype and a statistic of the draw against a bound that
a correct implementation exceeds with probability at most ``1e-9``
(:data:`properties.statistics.EXAMPLE_FAILURE_PROBABILITY`). Each check has the
signature of :attr:`properties.catalog.OpInfo.sanity`:
``(sample, result, dtype, rerun) -> problems``, ``rerun(**hyper)`` calling the
op again with some hyperparameters changed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from properties import statistics
from reference.initializers import UNIFORM_INITIALIZERS, expected_moments

if TYPE_CHECKING:
    from properties.catalog import Sample


def dropout_mask_sanity(
    sample: Sample, mask: np.ndarray, dtype: str, rerun: Callable[..., np.ndarray]
) -> list[str]:
    """Shape, bool dtype, ``p = 0`` keeps all, the kept count is binomial.

    Every example also draws the mask again with ``p = 0``, which must keep
    every unit.

    The kept count is binomial: Bernstein's inequality bounds
    ``|kept - n (1 - p)|`` by ``t = x / 3 + sqrt(x**2 / 9 + 2 x n p (1 - p))``
    except with probability ``2 exp(-x)``; ``x = ln(2 / 1e-9)`` (a false
    alarm below 1e-9 per example for every ``n`` and ``p``, 3e-7 per test at
    the nightly profile's 300 examples, where a normal approximation would
    fail small ``n p``).
    A mask that keeps with probability p (the classic inversion) fails it
    for p >= 0.8 on 100 units, one that keeps everything for p >= 0.5 on 200.
    """
    (shape,) = sample.arguments
    p = sample.hyper["p"]
    problems = []
    if mask.dtype != np.bool_:
        problems.append(f"dtype: the mask has dtype {mask.dtype}, expected bool")
    if mask.shape != tuple(shape):
        problems.append(
            f"shape: the mask has shape {mask.shape}, expected {tuple(shape)}"
        )
        return problems
    n = mask.size
    kept = int(np.count_nonzero(mask))
    everything = rerun(p=0.0)
    if everything.shape != mask.shape or not np.all(everything):
        problems.append(
            f"p = 0 must keep every unit: the mask keeps "
            f"{int(np.count_nonzero(everything))} of {everything.size}"
        )
    allowed = statistics.bernstein_deviation(
        n * p * (1 - p), 1.0, statistics.EXAMPLE_FAILURE_PROBABILITY
    )
    if abs(kept - n * (1 - p)) > allowed:
        problems.append(
            f"kept {kept} of {n} units with p = {p}: expected {n * (1 - p):.1f} "
            f"+- {allowed:.1f} (Bernstein's bound, false alarm below 1e-9)"
        )
    return problems


#: The false-alarm budget of each of the two statistical checks of
#: :func:`initialize_sanity`, per example.
INITIALIZE_SANITY_DELTA = statistics.split(statistics.EXAMPLE_FAILURE_PROBABILITY, 2)


def initialize_sanity_bounds(
    name: str, n: int, variance: float, delta: float = INITIALIZE_SANITY_DELTA
) -> tuple[float, float, float]:
    """``(low, high, mean_bound)``: the mean-square interval and the mean's bound.

    See :func:`initialize_sanity`; each bound fails a correct draw of ``n``
    weights with probability at most ``delta``.
    """
    if name in UNIFORM_INITIALIZERS:
        a = math.sqrt(3.0 * variance)
        mean_bound = statistics.bernstein_deviation(n * variance, a, delta) / n
        spread = statistics.bernstein_deviation(
            n * 4.0 * a**4 / 45.0, 2.0 * a * a / 3.0, delta
        )
        return variance - spread / n, variance + spread / n, mean_bound
    z = statistics.normal_two_sided_quantile(delta)
    chi_low, chi_high = statistics.chi_square_acceptance(n, delta)
    return variance * chi_low / n, variance * chi_high / n, z * math.sqrt(variance / n)


def initialize_sanity(
    sample: Sample, w: np.ndarray, dtype: str, rerun: Callable[..., np.ndarray]
) -> list[str]:
    r"""Shape, dtype, bounds, the sample mean and mean square, and the seed's effect.

    Two statistical checks per example, each at
    :math:`\delta = 5 \cdot 10^{-10}` (:data:`INITIALIZE_SANITY_DELTA`): a
    correct initializer fails an example with probability at most
    :math:`10^{-9}`, a test of the nightly profile's 300 examples at most
    :math:`3 \cdot 10^{-7}` (the union bound;
    ``test_statistical_checks_false_alarm_bounds`` recomputes it):

    * mean: normal draws have an exactly normal mean, accepted within
      :math:`z(\delta)\sigma/\sqrt n`; uniform ones, within Bernstein's
      deviation (terms of variance :math:`\sigma^2`, bounded by
      :math:`a = \sqrt 3 \sigma`);
    * mean square: for normal draws :math:`\sum w^2/\sigma^2` is
      :math:`\chi^2_n`, accepted in the Laurent-Massart interval
      (:func:`~properties.statistics.chi_square_acceptance`); for uniform
      ones Bernstein's inequality for the sum of the :math:`w^2` (variance
      :math:`4a^4/45` each, within :math:`2a^2/3` of their mean).

    The samples (``properties/catalog/initializers.py``) have at least 2304
    weights, so the mean-square floor is above :math:`0.80\sigma^2`: a normal
    truncated at :math:`2\sigma` without rescaling (:math:`0.774\sigma^2`)
    fails, as do a missing gain or a wrong fan. Uniform draws must also lie in
    ``[-a, a]``, and another seed must give another draw (identical
    continuous draws have probability 0). The shape of the distribution is
    ``properties/test_variance.py``'s (a Kolmogorov test).
    """
    name, shape = sample.arguments
    hyper = {k: v for k, v in sample.hyper.items() if k != "seed"}
    mean, variance = expected_moments(name, shape, **hyper)
    problems = []
    if w.dtype != np.dtype(dtype):
        problems.append(f"dtype: the weights have dtype {w.dtype}, expected {dtype}")
    if w.shape != tuple(shape):
        problems.append(
            f"shape: the weights have shape {w.shape}, expected {tuple(shape)}"
        )
        return problems
    values = w.astype(np.float64)
    if not np.all(np.isfinite(values)):
        problems.append("the weights hold NaN or inf")
        return problems
    n = values.size
    if variance == 0:
        if np.any(values != 0):
            problems.append(f"{name} must give zeros, max |w| = {np.abs(values).max()}")
        return problems
    sigma = math.sqrt(variance)
    low, high, mean_bound = initialize_sanity_bounds(name, n, variance)
    sample_mean = float(values.mean())
    slack = 1e-6 * variance  # float32 rounding of the draws
    if abs(sample_mean - mean) > mean_bound + 1e-6 * sigma:
        problems.append(
            f"sample mean {sample_mean:.4g} of {n} weights is more than "
            f"{mean_bound:.3g} from {mean} (false alarm <= {INITIALIZE_SANITY_DELTA:g})"
        )
    mean_square = float(np.mean((values - mean) ** 2))
    if not low - slack <= mean_square <= high + slack:
        problems.append(
            f"mean square {mean_square:.4g} of {n} weights lies outside "
            f"[{low:.4g}, {high:.4g}] around the expected variance {variance:.4g} "
            f"(false alarm <= {INITIALIZE_SANITY_DELTA:g})"
        )
    if n >= 2 and np.array_equal(rerun(seed=sample.hyper["seed"] + 1), w):
        problems.append("seeds seed and seed + 1 gave the same weights")
    if name in UNIFORM_INITIALIZERS:
        bound = math.sqrt(3 * variance) * (1 + 1e-6)
        if np.abs(values).max() > bound:
            problems.append(
                f"uniform draws must lie in [-{bound:.6g}, {bound:.6g}], "
                f"max |w| = {np.abs(values).max():.6g}"
            )
    return problems
