r"""Variance preservation: initializer moments, and deep stacks that keep or lose it.

Two families of properties: each initializer draws the variance it promises,
and the matched initializer keeps a deep stack's variance where a mismatched one
loses it.

Initializer moments
    Each random initializer's sample mean and mean square match its formula
    (the contract's table, restated below in :data:`FORMULAS` independently of
    the reference) within exact or non-asymptotic bounds from
    :mod:`properties.statistics`, for linear shapes ``(out, in)`` and conv
    shapes ``(C_out, C_in, kH, kW)`` (whose fans include the receptive field
    ``kH kW``). Split between the two checks, a correct initializer fails an
    example with probability below 1e-9, a test of up to 1000 examples below
    1e-6.

Deep stacks
    A stack of ``DEPTH = 20`` linear layers of width ``WIDTH = 256`` (no bias)
    with an activation between them: the second moment of the pre-activations
    layer by layer (forward) and of the gradient with respect to each layer's
    input (backward) follow the mean-field recursion of the initializer's
    variance within a band justified by the finite-width fluctuations. With
    the matched pairs (He + ReLU, Xavier + tanh) the signal survives 20
    layers; with the pairs the notes warn about (``0.01 * N(0, 1)`` in a deep
    net, Xavier with ReLU) it collapses, and with a too-large ``normal`` it
    explodes; each is asserted.

The lecture notes (notes 001, "Weight initialization": "w = 0.01 *
np.random.randn(Din, Dout) works for small networks, but has problems with
deeper networks"; notes 002: Xavier/Glorot for sigmoid/tanh, He for ReLU) give
the claims; the mean-field recursion (Poole et al. 2016, Schoenholz et al.
2017) gives the numbers. Both are described in ``docs/bibliography.md``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from numpy.polynomial.hermite_e import hermegauss

from backends import contract
from properties import strategies
from properties.assertions import (
    Context,
    call_backend,
    fixtures_shared,
    require_operations,
    to_numpy,
)
from properties.statistics import (
    EXAMPLE_FAILURE_PROBABILITY,
    FAILURE_PROBABILITY,
    bernstein_deviation,
    chi_square_acceptance,
    dkw_epsilon,
    ks_distance,
    normal_two_sided_quantile,
    split,
)
from reference import initializers as reference_initializers

# ---------------------------------------------------------------------------
# The formulas (the table in reference/initializers.py's docstring), restated
# here so that the reference's own expected_moments is checked too.
# ---------------------------------------------------------------------------

UNIFORM_INITIALIZERS = reference_initializers.UNIFORM_INITIALIZERS
RANDOM_INITIALIZERS = tuple(n for n in contract.INITIALIZER_NAMES if n != "zeros")


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """``(fan_in, fan_out)``: ``(in, out)`` or ``(C_in kH kW, C_out kH kW)``."""
    receptive_field = math.prod(shape[2:])
    return shape[1] * receptive_field, shape[0] * receptive_field


def _gain(hyper: dict[str, float]) -> float:
    return math.sqrt(2.0 / (1.0 + hyper.get("negative_slope", 0.0) ** 2))


#: The variance of each initializer's distribution: name -> f(fan_in, fan_out,
#: hyper). A uniform U(-a, a) has variance a**2 / 3.
FORMULAS: dict[str, Callable[[int, int, dict[str, float]], float]] = {
    "normal": lambda fan_in, fan_out, h: h.get("std", 0.01) ** 2,
    "uniform_fan_in": lambda fan_in, fan_out, h: (1 / math.sqrt(fan_in)) ** 2 / 3,
    "lecun_normal": lambda fan_in, fan_out, h: 1 / fan_in,
    "xavier_normal": lambda fan_in, fan_out, h: 2 / (fan_in + fan_out),
    "xavier_uniform": lambda fan_in, fan_out, h: 6 / (fan_in + fan_out) / 3,
    "he_normal": lambda fan_in, fan_out, h: _gain(h) ** 2 / fan_in,
    "he_uniform": lambda fan_in, fan_out, h: (
        (_gain(h) * math.sqrt(3 / fan_in)) ** 2 / 3
    ),
}


def formula_variance(
    name: str, shape: tuple[int, ...], hyper: dict[str, float]
) -> float:
    fan_in, fan_out = fans(shape)
    return FORMULAS[name](fan_in, fan_out, hyper)


def _hyper_for(name: str, std: float | None, negative_slope: float | None) -> dict:
    """The drawn hyperparameters the initializer takes (``None``: left at default)."""
    hyper: dict[str, float] = {}
    if name == "normal" and std is not None:
        hyper["std"] = std
    if name in ("he_normal", "he_uniform") and negative_slope is not None:
        hyper["negative_slope"] = negative_slope
    return hyper


# ---------------------------------------------------------------------------
# Initializer moments
# ---------------------------------------------------------------------------


@st.composite
def weight_shapes(draw: st.DrawFn) -> tuple[int, ...]:
    """Linear ``(out, in)`` with sides 64..384, or conv ``(C_out, C_in, kH, kW)``.

    At least 4096 weights for a linear shape and 1024 for a conv shape, at
    most 147,456: enough for the bounds to be a few percent, cheap to draw.
    Conv kernels are often non-square, so a fan that forgets ``kH kW`` (or one
    of them) is off by a factor the bound sees.
    """
    if draw(st.booleans()):
        return (draw(st.integers(64, 384)), draw(st.integers(64, 384)))
    return (
        draw(st.integers(32, 128)),
        draw(st.integers(32, 128)),
        draw(st.integers(1, 3)),
        draw(st.integers(1, 3)),
    )


def _draw(
    impl: Any,
    dtype: str,
    name: str,
    shape: tuple[int, ...],
    seed: int,
    hyper: dict[str, float],
    check: str,
) -> tuple[np.ndarray, Context]:
    """``initialize(name, shape)`` on ``impl`` as float64, with the failure context.

    A draw of the wrong shape or dtype, or holding NaN or inf, fails the
    initializer ``check`` (named in the message) before any statistics.
    """
    context = Context(
        op="initialize",
        backend=impl.name,
        dtype=dtype,
        inputs={"shape": shape},
        hyper={"name": name, "seed": seed, **hyper},
        variant=name,
    )
    native = call_backend(
        impl,
        "initialize",
        (name, shape),
        {"seed": seed, "dtype": dtype, **hyper},
        context,
    )
    weights = to_numpy(impl, native, "weights", context)
    if weights.shape != tuple(shape) or weights.dtype != np.dtype(dtype):
        raise context.fail(
            f"initializer {check}: wrong shape or dtype",
            f"got {weights.dtype}{list(weights.shape)}, expected {dtype}{list(shape)}",
        )
    values = weights.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise context.fail(f"initializer {check}: the weights hold NaN or inf")
    return values, context


def check_initializer_moments(
    impl: Any,
    dtype: str,
    name: str,
    shape: tuple[int, ...],
    seed: int,
    hyper: dict[str, float],
) -> None:
    r"""Sample mean and mean square of ``initialize(name, shape)`` match the formula.

    With :math:`n` weights, :math:`\sigma^2` the formula's variance and
    :math:`\delta = 5 \cdot 10^{-10}` per check (two checks: 1e-9 per
    example, so below 1e-6 for a test of up to 1000 examples):

    * normal initializers: the sample mean is exactly
      :math:`N(0, \sigma^2/n)`, accepted within :math:`z\sigma/\sqrt n` with
      :math:`z = z(\delta) = 6.22`; :math:`\sum w^2/\sigma^2 \sim \chi^2_n`,
      accepted within the Laurent-Massart interval
      :math:`[n - 2\sqrt{nx},\ n + 2\sqrt{nx} + 2x]`,
      :math:`x = \ln(2/\delta) = 22.1` (for :math:`n = 32768`: the mean square
      within [-5.2%, +5.3%] of :math:`\sigma^2`);
    * uniform :math:`U(-a, a)`: Bernstein's inequality for the sum of the
      :math:`w` (variance :math:`a^2/3` each, :math:`|w| \le a`) and for the
      sum of :math:`w^2` (mean :math:`a^2/3`, variance :math:`4a^4/45`,
      :math:`|w^2 - a^2/3| \le 2a^2/3`), and every :math:`|w| \le a`.

    The rounding of a float32 draw moves each :math:`w^2` by at most
    :math:`2^{-23} w^2`; a relative slack of 1e-6 on the mean square covers
    it. Statistics are computed in float64 on the host.

    Bugs caught: a std off by :math:`\sqrt 2` (He's gain forgotten: variance
    halved), fan_in and fan_out swapped (a factor ``out/in``), a conv fan
    without the receptive field (a factor ``kH kW``), the notes' Xavier typo
    :math:`\sqrt 2/(\text{fan\_in}+\text{fan\_out})` (variance off by a factor
    :math:`(\text{fan\_in}+\text{fan\_out})`), a uniform bound used as a std (a
    factor 3), the leaky gain :math:`\sqrt{2/(1+a)}` instead of
    :math:`\sqrt{2/(1+a^2)}`, ``normal`` ignoring ``std``, a non-zero mean.
    """
    values, context = _draw(impl, dtype, name, shape, seed, hyper, "moments")
    n = values.size
    fan_in, fan_out = fans(shape)
    variance = formula_variance(name, shape, hyper)
    delta = split(EXAMPLE_FAILURE_PROBABILITY, 2)
    sample_mean = float(values.mean())
    mean_square = float(np.mean(values**2))
    if name in UNIFORM_INITIALIZERS:
        a = math.sqrt(3.0 * variance)
        mean_bound = bernstein_deviation(n * a * a / 3.0, a, delta) / n
        square_bound = bernstein_deviation(
            n * 4.0 * a**4 / 45.0, 2.0 * a * a / 3.0, delta
        )
        low = variance - square_bound / n
        high = variance + square_bound / n
        how = (
            f"Bernstein, delta={delta:g}: |mean| <= {mean_bound:.4g}, "
            f"mean square in [{low:.6g}, {high:.6g}]"
        )
        largest = float(np.abs(values).max())
        if largest > a * (1.0 + 1e-6):
            raise context.fail(
                f"initializer moments: a U(-a, a) draw left [-a, a]: max |w| = "
                f"{largest:.6g} > a = {a:.6g}",
                f"fan_in={fan_in}, fan_out={fan_out}, formula variance a**2/3 = "
                f"{variance:.6g}",
            )
    else:
        z = normal_two_sided_quantile(delta)
        mean_bound = z * math.sqrt(variance / n)
        chi_low, chi_high = chi_square_acceptance(n, delta)
        low, high = variance * chi_low / n, variance * chi_high / n
        how = (
            f"normal z={z:.4f} and Laurent-Massart chi-square, delta={delta:g}: "
            f"|mean| <= {mean_bound:.4g}, mean square in [{low:.6g}, {high:.6g}]"
        )
    slack = 1e-6 * variance
    details = (
        f"{n} weights, fan_in={fan_in}, fan_out={fan_out}",
        f"formula: mean 0, variance {variance:.6g} (std {math.sqrt(variance):.6g})",
        f"sample: mean {sample_mean:.6g}, mean square {mean_square:.6g} "
        f"(ratio to the formula {mean_square / variance:.4f})",
        f"acceptance region ({how}); a correct initializer leaves it with "
        f"probability < {EXAMPLE_FAILURE_PROBABILITY:g}",
    )
    if abs(sample_mean) > mean_bound + 1e-6 * math.sqrt(variance):
        raise context.fail(
            f"initializer moments: {name} sample mean {sample_mean:.6g} is outside "
            f"+-{mean_bound:.4g}",
            *details,
        )
    if not low - slack <= mean_square <= high + slack:
        raise context.fail(
            f"initializer moments: {name} mean square {mean_square:.6g} is outside "
            f"[{low:.6g}, {high:.6g}] around the variance {variance:.6g}",
            *details,
        )


#: Shapes that make the classic fan bugs visible whatever Hypothesis draws:
#: fans 8x apart (swapped fans), a 3x3 and a 1x3 conv kernel (fans without
#: the receptive field, or with only kH).
_FAN_EXAMPLES = ((64, 512), (512, 64), (32, 16, 3, 3), (64, 96, 1, 3))


def _moment_examples(test: Callable) -> Callable:
    for shape in _FAN_EXAMPLES:
        test = example(shape=shape, seed=0, std=None, negative_slope=None)(test)
    # A leaky slope where sqrt(2/(1+a)) and sqrt(2/(1+a**2)) differ by 20%.
    return example(shape=(256, 128), seed=1, std=0.05, negative_slope=0.5)(test)


def _initializer_draws(
    shapes: st.SearchStrategy[tuple[int, ...]],
) -> dict[str, st.SearchStrategy]:
    """The drawn arguments of an initializer test: a weight shape from
    ``shapes``, a seed, and optional ``std`` and ``negative_slope``."""
    return {
        "shape": shapes,
        "seed": strategies.seeds(),
        "std": st.one_of(st.none(), strategies.floats(1e-3, 2.0)),
        "negative_slope": st.one_of(st.none(), strategies.floats(0.0, 1.0)),
    }


@pytest.mark.reference_too
@pytest.mark.parametrize("name", RANDOM_INITIALIZERS)
@fixtures_shared
@_moment_examples
@given(**_initializer_draws(weight_shapes()))
def test_initializer_moments(
    backend: Any,
    dtype: str,
    name: str,
    shape: tuple[int, ...],
    seed: int,
    std: float | None,
    negative_slope: float | None,
) -> None:
    """Each backend initializer's mean and variance match its formula.

    See :func:`check_initializer_moments` for the bounds and the bugs caught.
    """
    require_operations(backend, "initialize")
    check_initializer_moments(
        backend, dtype, name, shape, seed, _hyper_for(name, std, negative_slope)
    )


@given(shape=weight_shapes(), seed=strategies.seeds())
@settings(fixtures_shared, max_examples=5)
def test_zeros_initializer_is_zero(backend: Any, dtype: str, shape, seed) -> None:
    """``zeros`` gives exactly 0 everywhere, in the requested dtype.

    Bugs caught: ``zeros`` drawing small random values, ignoring ``dtype``.
    """
    require_operations(backend, "initialize")
    context = Context(
        op="initialize",
        backend=backend.name,
        dtype=dtype,
        inputs={"shape": shape},
        hyper={"name": "zeros", "seed": seed},
        variant="zeros",
    )
    native = call_backend(
        backend, "initialize", ("zeros", shape), {"seed": seed, "dtype": dtype}, context
    )
    weights = to_numpy(backend, native, "weights", context)
    if weights.shape != shape or weights.dtype != np.dtype(dtype) or np.any(weights):
        raise context.fail(
            "zeros initializer: expected exact zeros of the requested shape and dtype",
            f"got {weights.dtype}{list(weights.shape)}, "
            f"{int(np.count_nonzero(weights))} non-zero values",
        )


@pytest.mark.parametrize("name", contract.INITIALIZER_NAMES)
@given(
    shape=weight_shapes(),
    std=st.one_of(st.none(), strategies.floats(1e-3, 2.0)),
    negative_slope=st.one_of(st.none(), strategies.floats(-2.0, 2.0)),
)
@settings(max_examples=10)
def test_reference_expected_moments_match_the_formulas(
    name: str, shape, std, negative_slope
) -> None:
    """``reference.initializers.expected_moments`` and ``fans`` state the contract.

    The moment property compares draws against :data:`FORMULAS`; this ties the
    reference's own description to the same table, so a typo in either (the
    notes' Xavier std, a receptive field left out of ``fans``) fails here.
    """
    hyper = _hyper_for(name, std, negative_slope)
    expected_variance = 0.0 if name == "zeros" else formula_variance(name, shape, hyper)
    mean, variance = reference_initializers.expected_moments(name, shape, **hyper)
    assert reference_initializers.fans(shape) == fans(shape), (
        f"reference fans{shape} = {reference_initializers.fans(shape)}, "
        f"contract {fans(shape)}"
    )
    assert mean == 0.0 and math.isclose(variance, expected_variance, rel_tol=1e-12), (
        f"reference expected_moments({name!r}, {shape}, {hyper}) = ({mean}, "
        f"{variance}); the contract's formula gives (0, {expected_variance})"
    )


# ---------------------------------------------------------------------------
# Initializer distributions: the shape, not only the moments
# ---------------------------------------------------------------------------


@st.composite
def large_weight_shapes(draw: st.DrawFn) -> tuple[int, ...]:
    """Linear ``(out, in)`` or 3x3 conv shapes with 147,456 to 331,776 weights.

    Enough for the DKW band (:func:`check_initializer_distribution`) to be
    0.0085 at most, half the Kolmogorov distance of a 2-sigma-truncated
    normal rescaled to the right variance (0.0167).
    """
    if draw(st.booleans()):
        return (draw(st.integers(384, 512)), draw(st.integers(384, 512)))
    return (draw(st.integers(128, 192)), draw(st.integers(128, 192)), 3, 3)


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * np.vectorize(math.erfc, otypes=[np.float64])(-x / math.sqrt(2.0))


def _uniform_cdf(x: np.ndarray) -> np.ndarray:
    """The CDF of U(-sqrt 3, sqrt 3): a standardized uniform."""
    a = math.sqrt(3.0)
    return np.clip((x + a) / (2.0 * a), 0.0, 1.0)


def check_initializer_distribution(
    impl: Any,
    dtype: str,
    name: str,
    shape: tuple[int, ...],
    seed: int,
    hyper: dict[str, float],
) -> None:
    r"""The draw of ``initialize(name, shape)`` has its distribution's shape.

    The weights, divided by the formula's standard deviation :math:`\sigma`,
    must follow :math:`N(0, 1)` (normal initializers) or
    :math:`U(-\sqrt 3, \sqrt 3)` (uniform ones): their Kolmogorov distance
    :math:`D_n = \sup_x |F_n(x) - F(x)|` (:func:`ks_distance`) must be at
    most :math:`\varepsilon = \sqrt{\ln(2/\delta)/(2n)}`, which a correct
    initializer exceeds with probability at most
    :math:`2e^{-2n\varepsilon^2} = \delta` (Dvoretzky-Kiefer-Wolfowitz,
    Massart's constant: exact for every ``n``). One check per example,
    :math:`\delta = 10^{-9}`: at most :math:`3 \cdot 10^{-7}` per test at
    the nightly profile's 300 examples
    (``test_statistical_checks_false_alarm_bounds`` recomputes it).

    Rounding: a float32 draw moves each standardized weight by at most
    :math:`2^{-24}` relative, which moves :math:`F` by less than
    :math:`10^{-7}`; the band gets that slack.

    Bugs caught: a normal truncated at :math:`2\sigma` and rescaled to the
    right variance (:math:`D \approx 0.0167` against
    :math:`\varepsilon \le 0.0085`; its moments pass), or not rescaled
    (:math:`D \approx 0.023`), a uniform initializer drawing a normal of the
    right variance or the reverse (:math:`D \approx 0.03`), a sum of two
    uniforms (triangular).
    """
    values, context = _draw(impl, dtype, name, shape, seed, hyper, "distribution")
    sigma = math.sqrt(formula_variance(name, shape, hyper))
    standardized = values.ravel() / sigma
    uniform = name in UNIFORM_INITIALIZERS
    distance = ks_distance(standardized, _uniform_cdf if uniform else _normal_cdf)
    n = standardized.size
    epsilon = dkw_epsilon(n, EXAMPLE_FAILURE_PROBABILITY)
    if distance > epsilon + 1e-7:
        largest = float(np.abs(standardized).max())
        raise context.fail(
            f"initializer distribution: {name} is not "
            f"{'uniform' if uniform else 'normal'}: Kolmogorov distance {distance:.5f}"
            f" > {epsilon:.5f} from "
            + ("U(-sqrt 3, sqrt 3)" if uniform else "N(0, 1)")
            + " after dividing by the formula's std",
            f"{n} weights, formula std {sigma:.6g}; max |w| / std = {largest:.3f}",
            f"a correct initializer exceeds {epsilon:.5f} with probability "
            f"<= {EXAMPLE_FAILURE_PROBABILITY:g} (DKW, 2 exp(-2 n eps^2))",
        )


@pytest.mark.reference_too
@pytest.mark.parametrize("name", RANDOM_INITIALIZERS)
@settings(fixtures_shared, max_examples=10)
@given(**_initializer_draws(large_weight_shapes()))
def test_initializer_distribution(
    backend: Any,
    dtype: str,
    name: str,
    shape: tuple[int, ...],
    seed: int,
    std: float | None,
    negative_slope: float | None,
) -> None:
    """Each backend initializer draws from a normal or a uniform, not only with
    the right moments (10 examples: each draws up to 331,776 weights).

    See :func:`check_initializer_distribution`.
    """
    require_operations(backend, "initialize")
    check_initializer_distribution(
        backend, dtype, name, shape, seed, _hyper_for(name, std, negative_slope)
    )


def test_distribution_check_rejects_truncated_normals() -> None:
    """The band is tight enough: 2-sigma-truncated normals fail at the smallest n.

    The Kolmogorov distance of the truncated normal (rescaled to variance 1
    or not) from N(0, 1), computed exactly on a fine grid, is well above the
    DKW band at the smallest shape :func:`large_weight_shapes` draws.
    """
    x = np.linspace(-6.0, 6.0, 120_001)
    mass = _normal_cdf(np.array([2.0]))[0] - _normal_cdf(np.array([-2.0]))[0]
    variance = 1.0 - 4.0 * math.exp(-2.0) / math.sqrt(2.0 * math.pi) / mass
    smallest = min(384 * 384, 128 * 128 * 9)
    epsilon = dkw_epsilon(smallest, EXAMPLE_FAILURE_PROBABILITY)
    for scale in (1.0, 1.0 / math.sqrt(variance)):
        inside = np.clip(x / scale, -2.0, 2.0)
        truncated = (_normal_cdf(inside) - _normal_cdf(np.array([-2.0]))) / mass
        distance = float(np.max(np.abs(truncated - _normal_cdf(x))))
        assert distance > 1.5 * epsilon, (scale, distance, epsilon)


# ---------------------------------------------------------------------------
# Deep stacks
# ---------------------------------------------------------------------------

WIDTH = 256
DEPTH = 20
BATCH = 32
#: Acceptance half-width of ln(observed / mean field), in conservative
#: standard deviations (see check_deep_stack).
BAND_SIGMAS = 6.0
#: Per-layer variance of ln(second moment): ReLU's 5/n (Hanin & Nica 2019),
#: tanh's 2/n (a linear layer's ln(chi2_n / n); tanh fluctuates less).
FLUCTUATION = {"relu": 5.0, "tanh": 2.0}
#: What a healthy stack keeps after DEPTH layers, and what a broken one
#: falls below (collapse) or rises above (explosion): see check_deep_stack.
HEALTHY_RATIO = 1e-3

_NODES, _WEIGHTS = hermegauss(96)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


def _gaussian_mean(function: Callable[[np.ndarray], np.ndarray], q: float) -> float:
    """E[f(z)] for z ~ N(0, q), by 96-point Gauss-Hermite quadrature."""
    return float(np.sum(_WEIGHTS * function(math.sqrt(q) * _NODES)))


ACTIVATION_MOMENTS: dict[str, Callable[[float], tuple[float, float]]] = {
    # (E[act(z)**2], E[act'(z)**2]) for z ~ N(0, q)
    "relu": lambda q: (q / 2.0, 0.5),
    "tanh": lambda q: (
        _gaussian_mean(lambda z: np.tanh(z) ** 2, q),
        _gaussian_mean(lambda z: (1.0 - np.tanh(z) ** 2) ** 2, q),
    ),
}


def mean_field(
    activation: str, weight_variance: float, input_square: float, top_square: float
) -> tuple[np.ndarray, np.ndarray]:
    r"""Predicted forward and backward second moments of the stack.

    Forward, with :math:`\sigma^2` the weight variance and ``n = WIDTH``:

    .. math::

        q_1 = n \sigma^2 E[x^2], \qquad
        q_{l+1} = n \sigma^2 E_{z \sim N(0, q_l)}[\phi(z)^2]

    Backward, from ``top_square`` :math:`= E[(\partial L/\partial h_L)^2]`
    down to the input of layer :math:`l`:

    .. math::

        r_l = r_{l+1} \, n \sigma^2 \, E_{z \sim N(0, q_l)}[\phi'(z)^2]

    Returns ``(q[0..DEPTH-1], r[0..DEPTH-1])``: ``q[l-1]`` the pre-activation
    second moment of layer ``l``, ``r[l-1]`` that of the gradient with respect
    to the input of layer ``l`` (``r[0]``: the network's input).
    """
    gain = WIDTH * weight_variance
    moments = ACTIVATION_MOMENTS[activation]
    q = np.empty(DEPTH)
    chi = np.empty(DEPTH)
    q[0] = gain * input_square
    for layer in range(DEPTH):
        square, chi[layer] = moments(q[layer])
        if layer + 1 < DEPTH:
            q[layer + 1] = gain * square
    r = top_square * np.cumprod((gain * chi)[::-1])[::-1]
    return q, r


def band(activation: str, layers: int) -> float:
    r"""Half-width of the accepted ``ln(observed / mean field)`` after ``layers``.

    :math:`6 \sqrt{c\,l/n} + c\,l/(2n)`: six conservative standard deviations
    of the log of a second moment after :math:`l` layers of width :math:`n`,
    plus its downward drift (for a log-normal with mean preserved,
    :math:`E\ln = -\mathrm{Var}/2`).
    """
    c = FLUCTUATION[activation]
    return BAND_SIGMAS * math.sqrt(c * layers / WIDTH) + c * layers / (2 * WIDTH)


@dataclass(frozen=True)
class StackCase:
    """An initializer, an activation, and what must happen to the signal."""

    initializer: str
    activation: str
    expectation: str  # "preserved", "collapses" or "explodes"
    hyper: dict[str, float] = field(default_factory=dict)

    @property
    def weight_variance(self) -> float:
        return formula_variance(self.initializer, (WIDTH, WIDTH), self.hyper)


STACK_CASES: dict[str, StackCase] = {
    # The matched pairs of notes 002 ("He-init works well for ReLU", "Xavier /
    # Glorot -> sigmoid / tanh"), one normal and one uniform draw.
    "he_normal-relu": StackCase("he_normal", "relu", "preserved"),
    "xavier_uniform-tanh": StackCase("xavier_uniform", "tanh", "preserved"),
    # notes 001: w = 0.01 * randn "has problems with deeper networks"
    "normal0.01-tanh": StackCase("normal", "tanh", "collapses", {"std": 0.01}),
    # Xavier's variance is half of what ReLU needs: 2**-20 after 20 layers
    "xavier_normal-relu": StackCase("xavier_normal", "relu", "collapses"),
    # n * std**2 / 2 = 5.12 per layer
    "normal0.2-relu": StackCase("normal", "relu", "explodes", {"std": 0.2}),
}


def _ratio_limits(case: StackCase) -> tuple[tuple[float, float], tuple[float, float]]:
    """The accepted ranges of q_L / q_1 and r_input / r_top implied by the bands."""
    q, r = mean_field(case.activation, case.weight_variance, 1.0, 1.0)
    forward_band = band(case.activation, DEPTH) + band(case.activation, 1)
    backward_band = band(case.activation, DEPTH)
    forward = q[-1] / q[0]
    backward = r[0]
    return (
        (forward * math.exp(-forward_band), forward * math.exp(forward_band)),
        (backward * math.exp(-backward_band), backward * math.exp(backward_band)),
    )


def test_stack_bands_separate_healthy_from_broken() -> None:
    """The bands leave no overlap: a broken pair cannot pass for a healthy one.

    For every case, the whole range of ``q_L / q_1`` and ``r_input / r_top``
    that the band accepts lies on the side of :data:`HEALTHY_RATIO` its
    expectation names: inside ``[1e-3, 1e3]`` for the matched pairs, below
    ``1e-3`` for a collapse, above ``1e3`` for an explosion. So the deep-stack
    property cannot pass a He initializer whose gain is missing (it behaves as
    Xavier with ReLU) or a ReLU backward that forgets its mask (gradients grow
    by 2 per layer).
    """
    for name, case in STACK_CASES.items():
        for what, (low, high) in zip(
            ("forward q_L/q_1", "backward r_input/r_top"),
            _ratio_limits(case),
            strict=True,
        ):
            if case.expectation == "preserved":
                ok = HEALTHY_RATIO <= low and high <= 1 / HEALTHY_RATIO
            elif case.expectation == "collapses":
                ok = high < HEALTHY_RATIO
            else:
                ok = low > 1 / HEALTHY_RATIO
            assert ok, (
                f"deep stack {name}: the band accepts {what} in "
                f"[{low:.3g}, {high:.3g}], "
                f"which does not separate '{case.expectation}' at {HEALTHY_RATIO:g}"
            )


def check_deep_stack(impl: Any, dtype: str, case_name: str, seed: int) -> None:
    r"""Forward and backward second moments through 20 layers follow the mean field.

    The stack: ``x`` of shape ``(BATCH, WIDTH)`` with N(0, 1) entries;
    ``z_l = linear(h_{l-1}, W_l, 0)``, ``h_l = act(z_l)``, ``DEPTH = 20``
    layers, ``W_l = initialize(name, (WIDTH, WIDTH), seed=seed + l)``; then
    backward from an N(0, 1) upstream gradient of ``h_L`` through
    ``act_backward`` and ``linear_backward``. Measured per layer: ``q_l``, the
    mean of ``z_l**2``, and ``r_l``, the mean square of the gradient with
    respect to the layer's input.

    The band. Over random weights, :math:`\ln q_l` is close to normal around
    its mean-field value :func:`mean_field` with variance about
    :math:`c\,l/n` (Hanin & Nica 2019, "Products of many large random
    matrices and gradients in deep neural networks": :math:`c = 5` for ReLU;
    :math:`c = 2` for tanh, the :math:`\ln(\chi^2_n/n)` of a linear layer, an
    upper bound since tanh contracts). A 400-network simulation at
    :math:`n = 256`, ``BATCH = 32`` measured standard deviations of
    :math:`\ln(q_{20}/q^{MF}_{20})` of 0.52 (He + ReLU) and 0.07
    (Xavier + tanh), and of :math:`\ln(r/r^{MF})` of 0.25 and 0.10, against
    the conservative :math:`\sqrt{c\,l/n}` = 0.63 and 0.40. The band
    :func:`band` is 6 conservative standard deviations plus the drift, at
    least 7 measured ones. A normal variable leaves 4.89 standard deviations
    with probability 1e-6 and 7 with 2.6e-12; over the 40 layer checks of one
    test that is below 1e-10, leaving a margin of many orders of magnitude
    for the tails of :math:`\ln q` being heavier than normal. The stack is
    fixed by the seed, so a test is deterministic.

    Then the expectation. He + ReLU keeps the mean field at 1 (forward and
    backward); Xavier + tanh decays polynomially (mean field 0.027 forward and
    0.036 backward after 20 layers, like :math:`1/(2l)`: tanh's slope is below
    1); both stay within :data:`HEALTHY_RATIO` .. its inverse. Xavier with ReLU
    halves per layer (:math:`2^{-20}`), ``0.01 N(0, 1)`` at width 256
    multiplies by :math:`256 \cdot 10^{-4}` (and by 1/2 with ReLU): collapse
    below 1e-3. ``normal(0.2)`` with ReLU multiplies by 5.12: explosion above
    1e3. :func:`test_stack_bands_separate_healthy_from_broken` proves the
    bands keep these apart.

    Bugs caught: He without its gain of :math:`\sqrt 2` (the stack collapses
    like Xavier + ReLU), a normal initializer that ignores ``std``,
    ``relu_backward`` that does not mask (gradient doubles per layer),
    ``tanh_backward`` as :math:`1 - \tanh` or :math:`1 - x^2` (wrong slope),
    and any per-layer scale error of the forward or the backward (a factor
    dropped or doubled in ``linear`` or ``linear_backward``), compounded 20
    times.
    """
    case = STACK_CASES[case_name]
    activation = case.activation
    require_operations(
        impl,
        "initialize",
        "linear",
        "linear_backward",
        activation,
        f"{activation}_backward",
    )
    hyper = {
        "initializer": case.initializer,
        **case.hyper,
        "width": WIDTH,
        "depth": DEPTH,
        "batch": BATCH,
        "seed": seed,
    }
    context = Context(
        op="deep stack",
        backend=impl.name,
        dtype=dtype,
        inputs={"x": (BATCH, WIDTH)},
        hyper=hyper,
        variant=case_name,
    )
    # Not default_rng(seed): a backend drawing its weights from that same stream
    # would make W_1 a multiple of x (the input and the weights must be
    # independent).
    rng = np.random.default_rng([seed, 2**32 - 1])
    x_host = rng.standard_normal((BATCH, WIDTH)).astype(dtype).astype(np.float64)
    top_host = rng.standard_normal((BATCH, WIDTH)).astype(dtype).astype(np.float64)
    bias = impl.asarray(np.zeros(WIDTH), dtype)

    def call(operation: str, *arguments: Any) -> Any:
        return call_backend(impl, operation, arguments, {}, context)

    weights = [
        call_backend(
            impl,
            "initialize",
            (case.initializer, (WIDTH, WIDTH)),
            {"seed": seed + layer, "dtype": dtype, **case.hyper},
            context,
        )
        for layer in range(DEPTH)
    ]
    inputs = [impl.asarray(x_host, dtype)]
    pre_activations = []
    q = np.empty(DEPTH)
    for layer in range(DEPTH):
        z = call("linear", inputs[-1], weights[layer], bias)
        pre_activations.append(z)
        q[layer] = np.mean(
            to_numpy(impl, z, "pre-activation", context).astype(np.float64) ** 2
        )
        inputs.append(call(activation, z))
    r = np.empty(DEPTH)
    gradient = impl.asarray(top_host, dtype)
    for layer in reversed(range(DEPTH)):
        (gradient,) = call(f"{activation}_backward", gradient, pre_activations[layer])
        gradient, _, _ = call(
            "linear_backward", gradient, inputs[layer], weights[layer], bias
        )
        r[layer] = np.mean(
            to_numpy(impl, gradient, "gradient", context).astype(np.float64) ** 2
        )

    q_mf, r_mf = mean_field(
        activation,
        case.weight_variance,
        float(np.mean(x_host**2)),
        float(np.mean(top_host**2)),
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        forward_log = np.log(q / q_mf)
        backward_log = np.log(r / r_mf)
    forward_band = np.array([band(activation, layer + 1) for layer in range(DEPTH)])
    backward_band = np.array(
        [band(activation, DEPTH - layer) for layer in range(DEPTH)]
    )

    def trace(values: np.ndarray) -> str:
        return " ".join(f"{v:.2g}" for v in values)

    details = (
        f"forward q_l (mean of z_l**2), layers 1..{DEPTH}: {trace(q)}",
        f"  mean field: {trace(q_mf)}",
        f"backward r_l (gradient mean square at the input of layer l): {trace(r)}",
        f"  mean field: {trace(r_mf)}",
        f"weight variance {case.weight_variance:.4g}, n * variance = "
        f"{WIDTH * case.weight_variance:.4g}; band on |ln(observed/mean field)| "
        f"after l layers: {BAND_SIGMAS:g} sqrt({FLUCTUATION[activation]:g} l / "
        f"{WIDTH}) + drift = {forward_band[0]:.3g} (l=1) .. {forward_band[-1]:.3g} "
        f"(l={DEPTH}); a correct backend leaves it with probability < "
        f"{FAILURE_PROBABILITY:g}",
    )
    for what, logs, bands in (
        ("forward", forward_log, forward_band),
        ("backward", backward_log, backward_band),
    ):
        bad = ~(np.abs(logs) <= bands)
        if bad.any():
            layer = int(
                np.argmax(np.where(np.isfinite(logs), np.abs(logs) - bands, np.inf))
            )
            raise context.fail(
                f"deep stack {case_name}: {what} second moment leaves the mean-field "
                f"band at layer {layer + 1}: ln(observed/mean field) = "
                f"{logs[layer]:.3g}, allowed +-{bands[layer]:.3g}",
                *details,
            )
    forward_ratio = q[-1] / q[0]
    backward_ratio = r[0] / float(np.mean(top_host**2))
    for what, ratio in (
        ("forward q_L/q_1", forward_ratio),
        ("backward r_input/r_top", backward_ratio),
    ):
        if case.expectation == "preserved":
            ok = HEALTHY_RATIO <= ratio <= 1 / HEALTHY_RATIO
            claim = f"stay within [{HEALTHY_RATIO:g}, {1 / HEALTHY_RATIO:g}]"
        elif case.expectation == "collapses":
            ok = ratio < HEALTHY_RATIO
            claim = f"collapse below {HEALTHY_RATIO:g}"
        else:
            ok = ratio > 1 / HEALTHY_RATIO
            claim = f"explode above {1 / HEALTHY_RATIO:g}"
        if not ok:
            raise context.fail(
                f"deep stack {case_name}: {what} = {ratio:.3g} after {DEPTH} layers; "
                f"it must {claim}",
                *details,
            )


# Plain parametrised tests with fixed seeds: one stack costs ~40 forward and
# backward GEMMs of 32x256x256, and the bound holds for every seed, so drawing
# seeds with Hypothesis would multiply the cost by the number of examples and
# find nothing a fixed seed does not (a seed does not shrink). The seed differs
# per case so the cases do not share weights.
_STACK_SEEDS = {name: 1000 * (index + 1) for index, name in enumerate(STACK_CASES)}


@pytest.mark.reference_too
@pytest.mark.nnspec_ops("initialize", "linear", "relu", "tanh")
@pytest.mark.parametrize("case", list(STACK_CASES))
def test_deep_stack_variance(backend: Any, dtype: str, case: str) -> None:
    """Each backend's initializer + activation stack keeps, loses or blows up a signal.

    See :func:`check_deep_stack`.
    """
    check_deep_stack(backend, dtype, case, _STACK_SEEDS[case])


# ---------------------------------------------------------------------------
# The false-alarm bound of every statistical check
# ---------------------------------------------------------------------------


def _chi_square_tails(n: int, low: float, high: float) -> float:
    """Laurent-Massart's bound on ``P(Q < low) + P(Q > high)``, ``Q ~ chi2_n``.

    ``low = n - 2 sqrt(n x)`` and ``high = n + 2 sqrt(n y) + 2 y`` solved for
    ``x`` and ``y``; the bound is ``exp(-x) + exp(-y)``.
    """
    x = ((n - low) / (2.0 * math.sqrt(n))) ** 2 if low > 0 else math.inf
    root_y = (-math.sqrt(n) + math.sqrt(n + 2.0 * (high - n))) / 2.0
    return math.exp(-x) + math.exp(-(root_y**2))


def _bernstein_tail(variance_sum: float, bound: float, t: float) -> float:
    """Bernstein's ``2 exp(-(t^2 / 2) / (V + M t / 3))``."""
    return 2.0 * math.exp(-(t * t / 2.0) / (variance_sum + bound * t / 3.0))


def _normal_tail(z: float) -> float:
    return math.erfc(z / math.sqrt(2.0))


def _initializer_bounds(kind: str, n: int, check: Callable) -> float:
    """The false alarm of one example of a mean + mean-square check on ``n`` draws."""
    variance = 1.0
    low, high, mean_bound = check(n)
    if kind == "uniform":
        a = math.sqrt(3.0)
        mean = _bernstein_tail(n * variance, a, mean_bound * n)
        square = _bernstein_tail(n * 4 * a**4 / 45, 2 * a * a / 3, (high - 1.0) * n)
        return mean + square
    mean = _normal_tail(mean_bound * math.sqrt(n))
    return mean + _chi_square_tails(n, low * n, high * n)


def _variance_check(kind: str) -> Callable[[int], tuple[float, float, float]]:
    """check_initializer_moments' bounds at variance 1 (same formulas, same delta)."""
    delta = split(EXAMPLE_FAILURE_PROBABILITY, 2)

    def bounds(n: int) -> tuple[float, float, float]:
        if kind == "uniform":
            a = math.sqrt(3.0)
            mean_bound = bernstein_deviation(n * a * a / 3.0, a, delta) / n
            spread = bernstein_deviation(
                n * 4.0 * a**4 / 45.0, 2.0 * a * a / 3.0, delta
            )
            return 1 - spread / n, 1 + spread / n, mean_bound
        z = normal_two_sided_quantile(delta)
        chi_low, chi_high = chi_square_acceptance(n, delta)
        return chi_low / n, chi_high / n, z / math.sqrt(n)

    return bounds


def _false_alarms() -> dict[str, float]:
    """Each statistical check: its false-alarm probability per example, recomputed.

    Computed from the checks' own parameters (intervals, bands) through the
    inequality each rests on, at the sizes the strategies draw (the worst
    over the range's ends and a middle).
    """
    from properties.catalog.sanity import initialize_sanity_bounds
    from properties.test_dropout import DROP_PROBABILITIES

    alarms: dict[str, float] = {}
    for kind, name in (("normal", "he_normal"), ("uniform", "he_uniform")):
        sizes = (2304, 4096, 32 * 32 * 25)
        alarms[f"catalog initialize sanity ({kind})"] = max(
            _initializer_bounds(
                kind,
                n,
                lambda n, name=name: initialize_sanity_bounds(name, n, 1.0),
            )
            for n in sizes
        )
        alarms[f"test_variance initializer moments ({kind})"] = max(
            _initializer_bounds(kind, n, _variance_check(kind))
            for n in (1024, 4096, 147_456)
        )
    alarms["test_variance initializer distribution (DKW)"] = max(
        2 * math.exp(-2 * n * dkw_epsilon(n, EXAMPLE_FAILURE_PROBABILITY) ** 2)
        for n in (147_456, 331_776)
    )
    from properties.statistics import binomial_acceptance, binomial_cdf

    rows = max(
        2 * math.exp(-2 * r * dkw_epsilon(r, EXAMPLE_FAILURE_PROBABILITY) ** 2)
        for r in (1024, 4096)
    )
    alarms["test_dropout row counts (DKW)"] = rows
    worst = 0.0
    for p in DROP_PROBABILITIES:
        for n in (2000, 40_000):
            low, high = binomial_acceptance(
                n, 1 - p, split(EXAMPLE_FAILURE_PROBABILITY, 2)
            )
            cdf = binomial_cdf(n, 1 - p)
            outside = (cdf[low - 1] if low > 0 else 0.0) + (1.0 - cdf[high])
            worst = max(worst, 2 * outside)  # two such checks per example
    alarms["test_dropout keep fraction (exact binomial)"] = worst
    sanity = 0.0
    for p in (0.01, 0.5, 0.98):
        for n in (1, 100, 1728):
            variance = n * p * (1 - p)
            t = bernstein_deviation(variance, 1.0, EXAMPLE_FAILURE_PROBABILITY)
            sanity = max(sanity, _bernstein_tail(variance, 1.0, t))
    alarms["catalog dropout_mask sanity (Bernstein)"] = sanity
    kept_mean = 0.0
    for p in DROP_PROBABILITIES:
        ratio = p / (1.0 - p)
        for n in (1, 100, 40_000):
            x = np.linspace(0.5, 1.5, n)  # the check's x ~ U(0.5, 1.5), any scale
            variance = float(np.sum(x**2)) * ratio
            bound = float(x.max()) * max(1.0, ratio)
            t = bernstein_deviation(variance, bound, EXAMPLE_FAILURE_PROBABILITY)
            kept_mean = max(kept_mean, _bernstein_tail(variance, bound, t))
    alarms["test_dropout inverted scaling keeps the mean (Bernstein)"] = kept_mean
    return alarms


def test_statistical_checks_false_alarm_bounds() -> None:
    """Every statistical check fails a correct backend w.p. <= 1e-6 per test.

    Per test: the per-example probability (recomputed by :func:`_false_alarms`
    from each check's parameters) times the nightly profile's
    ``NIGHTLY_EXAMPLES = 300`` examples (the union bound).
    """
    from properties.statistics import NIGHTLY_EXAMPLES

    too_loose = {
        name: per_example * NIGHTLY_EXAMPLES
        for name, per_example in _false_alarms().items()
        if per_example * NIGHTLY_EXAMPLES > FAILURE_PROBABILITY
    }
    assert not too_loose, f"false alarms above 1e-6 per test: {too_loose}"
