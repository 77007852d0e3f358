r"""Dropout in training and in eval.

The contract: ``dropout_mask(shape, *, p, seed)`` keeps each unit (True) with
probability :math:`1 - p`, independently, from the integer ``seed`` only;
``dropout(x, mask, *, p, training)`` is inverted dropout,
:math:`x \odot \text{mask} / (1 - p)` in training and :math:`x` in eval;
``dropout_backward`` applies the same mask and scale (training) or passes
``dout`` through (eval).

The properties, each with the bug it catches:

* the kept count passes an exact binomial test for several ``p``, and so
  does the agreement of paired rows (a mask shared across the batch fails);
* each row's kept count follows the binomial law (a Kolmogorov test with
  the exact DKW bound): a fixed count per row, with the right rate, fails;
* masks from one seed are equal, from two seeds differ;
* inverted scaling keeps the mean (Bernstein bound);
* backward uses the same mask and the same scale as the forward;
* eval is the identity (forward and backward), whatever the mask;
* ``p = 0`` keeps everything and is the identity in training too.

Statistical checks fail a correct implementation with probability below
1e-9 per example, so below 1e-6 per test of up to 1000 examples (the
computation is in each docstring). Every property runs on
each backend and on the reference
(``@pytest.mark.reference_too``, :mod:`properties.reference_backend`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from properties import strategies
from properties import tolerance as tol
from properties.assertions import (
    Context,
    assert_close,
    call_backend,
    fixtures_shared,
    flush_subnormals,
    require_operations,
    to_numpy,
)
from properties.statistics import (
    EXAMPLE_FAILURE_PROBABILITY,
    bernstein_deviation,
    binomial_acceptance,
    binomial_cdf,
    dkw_epsilon,
    ks_distance_counts,
    split,
)

#: Drop probabilities of the binomial test: both sides of 1/2 (keeping with
#: probability p instead of 1 - p is invisible at p = 1/2 only), a small and
#: a large one.
DROP_PROBABILITIES = (0.1, 0.25, 0.5, 0.8, 0.95)


@st.composite
def mask_shapes(draw: st.DrawFn) -> tuple[int, ...]:
    """2-d to 4-d shapes ``(N, ...)`` with 2000 to 40,000 units, ``N`` even, >= 2."""
    batch = 2 * draw(st.integers(1, 16))
    rest_dims = draw(st.integers(1, 3))
    rest = [draw(st.integers(1, 40)) for _ in range(rest_dims)]
    size = batch * math.prod(rest)
    if size < 2000:  # widen the last axis instead of rejecting the draw
        rest[-1] = math.ceil(rest[-1] * 2000 / size)
    return (batch, *rest)


def _mask(impl: Any, shape: tuple[int, ...], p: float, seed: int, context: Context):
    native = call_backend(
        impl, "dropout_mask", (shape,), {"p": p, "seed": seed}, context
    )
    mask = to_numpy(impl, native, "mask", context)
    if mask.shape != tuple(shape) or mask.dtype != np.bool_:
        raise context.fail(
            "dropout_mask: wrong shape or dtype",
            f"got {mask.dtype}{list(mask.shape)}, expected bool{list(shape)}",
        )
    return native, mask


# ---------------------------------------------------------------------------
# The mask
# ---------------------------------------------------------------------------


def check_keep_fraction(impl: Any, shape: tuple[int, ...], p: float, seed: int) -> None:
    r"""The kept count, and the agreement of paired rows, pass exact binomial tests.

    With :math:`n` units kept independently with probability :math:`q = 1 - p`,
    the kept count is :math:`\mathrm{Bin}(n, q)`. Rows :math:`2i` and
    :math:`2i + 1` (disjoint pairs, so independent) agree at a position with
    probability :math:`p^2 + q^2`: the agreements over the :math:`n/2`
    positions of the pairs are :math:`\mathrm{Bin}(n/2, p^2 + q^2)`. Each
    count must lie in its exact binomial acceptance region
    (:func:`~properties.statistics.binomial_acceptance`) at
    :math:`\delta = 5 \cdot 10^{-10}`; two checks, so a correct mask fails an
    example with probability below 1e-9 and a test of up to 1000 examples
    below 1e-6. For :math:`n = 10^4`, :math:`p = 0.5` the kept count must lie
    in [4689, 5311].

    Bugs caught: keeping with probability ``p`` instead of ``1 - p`` (for
    every ``p`` here but 1/2), ``p`` read as a percentage, a mask of all True
    or all False, one draw broadcast over the whole batch (every pair agrees:
    the agreement count is ``n/2``, far above :math:`(p^2+q^2) n/2`), and
    uniforms compared in the wrong precision or direction.
    """
    context = Context(
        op="dropout_mask",
        backend=impl.name,
        dtype="bool",
        inputs={"shape": shape},
        hyper={"p": p, "seed": seed},
    )
    _, mask = _mask(impl, shape, p, seed, context)
    q = 1.0 - p
    delta = split(EXAMPLE_FAILURE_PROBABILITY, 2)
    n = mask.size
    kept = int(np.count_nonzero(mask))
    low, high = binomial_acceptance(n, q, delta)
    if not low <= kept <= high:
        raise context.fail(
            f"dropout keep fraction: kept {kept} of {n} units ({kept / n:.4f}); "
            f"keep probability 1 - p = {q}",
            f"exact Binomial({n}, {q}) acceptance region [{low}, {high}] at "
            f"delta = {delta:g}: a correct mask leaves it with probability < {delta:g}",
        )
    rows = mask.reshape(mask.shape[0] // 2, 2, -1)
    agreements = int(np.count_nonzero(rows[:, 0] == rows[:, 1]))
    pairs = rows[:, 0].size
    agree_probability = p * p + q * q
    low, high = binomial_acceptance(pairs, agree_probability, delta)
    if not low <= agreements <= high:
        raise context.fail(
            f"dropout mask independence: samples 2i and 2i+1 agree at {agreements} "
            f"of {pairs} positions ({agreements / pairs:.4f}); independent units "
            f"agree with probability p**2 + (1-p)**2 = {agree_probability:.4f}",
            f"exact Binomial({pairs}, {agree_probability:.4f}) acceptance region "
            f"[{low}, {high}] at delta = {delta:g}",
            "a mask drawn once and shared by every sample of the batch agrees "
            "everywhere",
        )


_KEEP_DRAWS = {"shape": mask_shapes(), "seed": strategies.seeds()}


@pytest.mark.reference_too
@pytest.mark.parametrize("p", DROP_PROBABILITIES)
@fixtures_shared
@given(**_KEEP_DRAWS)
@example(shape=(32, 40, 40), seed=0)
def test_dropout_mask_keep_fraction(
    backend: Any, p: float, shape: tuple[int, ...], seed: int
) -> None:
    """See :func:`check_keep_fraction`."""
    require_operations(backend, "dropout_mask")
    check_keep_fraction(backend, shape, p, seed)


@st.composite
def row_shapes(draw: st.DrawFn) -> tuple[int, int]:
    """``(rows, units)``: 1024 to 4096 rows of 4 to 64 units."""
    return (draw(st.integers(1024, 4096)), draw(st.integers(4, 64)))


def check_mask_row_counts(
    impl: Any, shape: tuple[int, int], p: float, seed: int
) -> None:
    r"""The kept count of each row follows :math:`\mathrm{Bin}(C, 1 - p)`.

    Independent units make the counts of the ``R`` rows (``C`` units each)
    ``R`` independent :math:`\mathrm{Bin}(C, 1 - p)` draws. Their empirical
    distribution function must lie within
    :math:`\varepsilon = \sqrt{\ln(2/\delta)/(2R)}` of the exact binomial
    one (:func:`~properties.statistics.ks_distance_counts` against
    :func:`~properties.statistics.binomial_cdf`), which a correct mask leaves
    with probability at most :math:`2e^{-2R\varepsilon^2} = \delta`
    (Dvoretzky-Kiefer-Wolfowitz, valid for a discrete distribution too). One
    check per example, :math:`\delta = 10^{-9}`: at most
    :math:`3 \cdot 10^{-7}` per test at the nightly profile's 300 examples.
    For ``R = 1024`` the band is 0.102.

    Bugs caught: the right keep rate with the wrong shape: exactly
    ``round((1 - p) C)`` units kept in every row (a shuffled fixed count: no
    row-to-row variance; the total count passes the binomial test), whole
    rows kept or dropped together, units correlated along a row.
    """
    context = Context(
        op="dropout_mask",
        backend=impl.name,
        dtype="bool",
        inputs={"shape": shape},
        hyper={"p": p, "seed": seed},
    )
    _, mask = _mask(impl, shape, p, seed, context)
    rows, units = shape
    counts = np.count_nonzero(mask, axis=1)
    distance = ks_distance_counts(counts, binomial_cdf(units, 1.0 - p))
    epsilon = dkw_epsilon(rows, EXAMPLE_FAILURE_PROBABILITY)
    if distance > epsilon:
        spread = np.bincount(counts, minlength=units + 1)
        raise context.fail(
            f"dropout mask shape: the kept counts of the {rows} rows of {units} "
            f"units are not Binomial({units}, {1.0 - p:g}): Kolmogorov distance "
            f"{distance:.4f} > {epsilon:.4f}",
            f"rows keeping 0..{units} units: {spread.tolist()}",
            f"a correct mask exceeds {epsilon:.4f} with probability <= "
            f"{EXAMPLE_FAILURE_PROBABILITY:g} (DKW, 2 exp(-2 R eps^2))",
        )


_ROW_DRAWS = {"shape": row_shapes(), "seed": strategies.seeds()}


@pytest.mark.reference_too
@pytest.mark.parametrize("p", DROP_PROBABILITIES)
@fixtures_shared
@given(**_ROW_DRAWS)
def test_dropout_mask_row_counts(
    backend: Any, p: float, shape: tuple[int, int], seed: int
) -> None:
    """See :func:`check_mask_row_counts`."""
    require_operations(backend, "dropout_mask")
    check_mask_row_counts(backend, shape, p, seed)


_SEED_DRAWS = {
    "shape": mask_shapes(),
    "p": st.sampled_from(DROP_PROBABILITIES),
    "seeds": st.lists(strategies.seeds(), min_size=2, max_size=2, unique=True),
}


def check_mask_seeds(
    impl: Any, shape: tuple[int, ...], p: float, seeds: list[int]
) -> None:
    first, second = seeds
    context = Context(
        op="dropout_mask",
        backend=impl.name,
        dtype="bool",
        inputs={"shape": shape},
        hyper={"p": p, "seeds": seeds},
    )
    _, mask = _mask(impl, shape, p, first, context)
    _, again = _mask(impl, shape, p, first, context)
    _, other = _mask(impl, shape, p, second, context)
    if not np.array_equal(mask, again):
        raise context.fail(
            f"dropout_mask reproducibility: seed {first} gave two different masks "
            f"({int(np.count_nonzero(mask != again))} of {mask.size} units differ)",
            "randomness must come from the integer seed only",
        )
    if np.array_equal(mask, other):
        raise context.fail(
            f"dropout_mask seeds: seeds {first} and {second} gave the same mask of "
            f"{mask.size} units (probability < 1e-86 for independent masks)",
            "the seed must select the random stream",
        )


@pytest.mark.reference_too
@fixtures_shared
@given(**_SEED_DRAWS)
def test_dropout_mask_seeds(backend: Any, shape, p, seeds) -> None:
    """See :func:`check_mask_seeds`."""
    require_operations(backend, "dropout_mask")
    check_mask_seeds(backend, shape, p, seeds)


# ---------------------------------------------------------------------------
# The layer
# ---------------------------------------------------------------------------


def _values(shape: tuple[int, ...], seed: int, low: float, high: float) -> np.ndarray:
    return np.random.default_rng([seed, 1]).uniform(low, high, size=shape)


def check_inverted_scaling_keeps_mean(
    impl: Any, dtype: str, shape: tuple[int, ...], p: float, seed: int, scale: float
) -> None:
    r"""The training output's sum is the input's sum up to a Bernstein bound.

    With :math:`x > 0` fixed and the mask from ``dropout_mask``, the terms
    :math:`Y_i = y_i - x_i = x_i(m_i/q - 1)` are independent with mean 0,
    variance :math:`x_i^2 p/q` and :math:`|Y_i| \le x_i \max(1, p/q)`; by
    Bernstein (:func:`~properties.statistics.bernstein_deviation`),
    :math:`|\sum y_i - \sum x_i| \le t` except with probability
    :math:`\delta = 10^{-9}` per example (1e-6 per test of up to 1000). For
    :math:`n = 10^4`, :math:`x \sim U(0.5, 1.5)`, :math:`p = 0.1`:
    :math:`t = 238`, while a missing rescale is off by
    :math:`p \sum x \approx 1000`. The rounding of :math:`y` in the dtype
    (two operations, :math:`2u |y_i|` each) is added to :math:`t`.

    Bugs caught: the missing :math:`1/(1-p)` rescale (the notes' un-inverted
    dropout, which scales at test time instead), a rescale by :math:`1/p`, a
    multiplication by :math:`1 - p`, a mask applied inverted.
    """
    context = Context(
        op="dropout",
        backend=impl.name,
        dtype=dtype,
        inputs={"x": shape},
        hyper={"p": p, "training": True, "seed": seed, "x scale": scale},
        variant="train",
    )
    x_host = (scale * _values(shape, seed, 0.5, 1.5)).astype(dtype).astype(np.float64)
    mask_native, mask = _mask(impl, shape, p, seed, context)
    y_native = call_backend(
        impl,
        "dropout",
        (impl.asarray(x_host, dtype), mask_native),
        {"p": p, "training": True},
        context,
    )
    y = to_numpy(impl, y_native, "output", context).astype(np.float64)
    q = 1.0 - p
    deviation = float(y.sum() - x_host.sum())
    bound = bernstein_deviation(
        float(np.sum(x_host**2)) * p / q,
        float(x_host.max()) * max(1.0, p / q),
        EXAMPLE_FAILURE_PROBABILITY,
    )
    rounding = float(tol.rounding_term(dtype, np.abs(y).sum()))
    if not abs(deviation) <= bound + rounding:
        raise context.fail(
            f"inverted dropout mean: sum(y) - sum(x) = {deviation:.6g}, allowed "
            f"+-{bound + rounding:.6g}",
            f"sum(x) = {x_host.sum():.6g}, sum(y) = {y.sum():.6g}, "
            f"sum(y)/sum(x) = {y.sum() / x_host.sum():.5f}, kept fraction "
            f"{mask.mean():.4f} (expected 1 - p = {q})",
            f"Bernstein bound at delta = {EXAMPLE_FAILURE_PROBABILITY:g}: "
            f"{bound:.6g}, "
            f"rounding {rounding:.3g}; expected y = x * mask / (1 - p)",
        )


_MEAN_DRAWS = {
    "shape": mask_shapes(),
    "p": st.sampled_from(DROP_PROBABILITIES),
    "seed": strategies.seeds(),
    "scale": st.sampled_from([1e-3, 1.0, 1e3]),
}


@pytest.mark.reference_too
@fixtures_shared
@given(**_MEAN_DRAWS)
def test_dropout_inverted_scaling_keeps_mean(
    backend: Any, dtype: str, shape, p, seed, scale
) -> None:
    """See :func:`check_inverted_scaling_keeps_mean`."""
    require_operations(backend, "dropout_mask", "dropout")
    check_inverted_scaling_keeps_mean(backend, dtype, shape, p, seed, scale)


@st.composite
def dropout_inputs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``x``, ``mask`` and ``dout`` of one small shape; any bool mask."""
    shape = draw(strategies.shapes(min_dims=1, max_dims=4, max_side=5))
    x = draw(strategies.arrays(shape, -10.0, 10.0))
    mask = draw(
        st.one_of(strategies.masks(shape), st.just(np.zeros(shape, dtype=bool)))
    )
    dout = draw(strategies.upstream(shape))
    return x, mask, dout


def _forward_backward(
    impl: Any, dtype: str, x, mask, dout, p: float, training: bool, context: Context
) -> tuple[np.ndarray, np.ndarray]:
    x_native = impl.asarray(x, dtype)
    mask_native = impl.asarray(mask, "bool")
    hyper = {"p": p, "training": training}
    y = call_backend(impl, "dropout", (x_native, mask_native), hyper, context)
    result = call_backend(
        impl,
        "dropout_backward",
        (impl.asarray(dout, dtype), x_native, mask_native),
        hyper,
        context,
    )
    if not isinstance(result, tuple) or len(result) != 2 or result[1] is not None:
        raise context.fail(
            "dropout_backward must return the tuple (dx, None) (no gradient for the "
            f"bool mask), got {type(result).__name__}"
            + (f" of length {len(result)}" if isinstance(result, tuple) else ""),
        )
    return (
        to_numpy(impl, y, "output", context),
        to_numpy(impl, result[0], "dx", context, gradient=True),
    )


def check_backward_same_mask_and_scale(
    impl: Any, dtype: str, x, mask, dout, p: float
) -> None:
    r"""Training: ``y = x * s`` and ``dx = dout * s`` with one ``s = mask / (1 - p)``.

    Deterministic (the mask is given): both equal the formula within the
    dtype's tolerance (two roundings per element).

    Bugs caught: a backward that forgets the :math:`1/(1-p)` scale, draws a
    fresh mask, ignores the mask, or scales by :math:`1 - p`; a forward that
    ignores the mask passed in.
    """
    context = Context(
        op="dropout_backward",
        backend=impl.name,
        dtype=dtype,
        inputs={"x": x.shape, "mask": mask.shape},
        hyper={"p": p, "training": True},
        variant="train",
    )
    x = x.astype(dtype).astype(np.float64)
    dout = dout.astype(dtype).astype(np.float64)
    y, dx = _forward_backward(impl, dtype, x, mask, dout, p, True, context)
    scale = mask / (1.0 - p)
    assert_close(
        y,
        x * scale,
        dtype=dtype,
        what="forward y = x * mask / (1 - p)",
        context=context,
        expected_label="formula",
    )
    assert_close(
        dx,
        dout * scale,
        dtype=dtype,
        what="backward dx = dout * mask / (1 - p) (the forward's mask and scale)",
        context=context,
        expected_label="formula",
    )


_LAYER_DRAWS = {"inputs": dropout_inputs(), "p": strategies.floats(0.0, 0.95)}


@pytest.mark.reference_too
@fixtures_shared
@given(**_LAYER_DRAWS)
def test_dropout_backward_same_mask_and_scale(
    backend: Any, dtype: str, inputs, p
) -> None:
    """See :func:`check_backward_same_mask_and_scale`."""
    require_operations(backend, "dropout", "dropout_backward")
    check_backward_same_mask_and_scale(backend, dtype, *inputs, p)


def _assert_identity(
    actual: np.ndarray, expected: np.ndarray, what: str, context: Context
) -> None:
    """Exactly ``expected`` (the identity involves no arithmetic), same dtype."""
    assert_close(
        actual,
        expected,
        dtype=context.dtype,
        what=what,
        context=context,
        allowed=np.zeros(expected.shape),
        expected_label="input",
        explain="the identity must return the input exactly (tolerance 0)",
    )


def check_eval_is_identity(impl: Any, dtype: str, x, mask, dout, p: float) -> None:
    r"""Eval: ``y == x`` and ``dx == dout`` exactly, whatever the mask and ``p``.

    The masks drawn include all-False ones: eval must not read the mask.

    Bugs caught: eval that still applies the mask, eval that scales by
    :math:`1 - p` (the notes' test-time scaling on top of inverted dropout, a
    double correction) or by :math:`1/(1-p)`, a backward that masks in eval.
    """
    context = Context(
        op="dropout",
        backend=impl.name,
        dtype=dtype,
        inputs={"x": x.shape, "mask": mask.shape},
        hyper={"p": p, "training": False},
        variant="eval",
    )
    x = x.astype(dtype).astype(np.float64)
    dout = dout.astype(dtype).astype(np.float64)
    y, dx = _forward_backward(impl, dtype, x, mask, dout, p, False, context)
    _assert_identity(y, x, "eval forward y must equal x", context)
    _assert_identity(dx, dout, "eval backward dx must equal dout", context)


@pytest.mark.reference_too
@fixtures_shared
@given(**_LAYER_DRAWS)
def test_dropout_eval_is_identity(backend: Any, dtype: str, inputs, p) -> None:
    """See :func:`check_eval_is_identity`."""
    require_operations(backend, "dropout", "dropout_backward")
    check_eval_is_identity(backend, dtype, *inputs, p)


def check_p_zero_is_identity(impl: Any, dtype: str, x, dout, seed: int) -> None:
    r"""``p = 0``: the mask keeps every unit, and training is the identity exactly.

    Bugs caught: a mask that drops units at ``p = 0`` (a comparison the wrong
    way round, ``u <= p`` or ``u < 1 - p``), a scale other than 1 at
    ``p = 0`` (``1/p`` is infinite), a backward that differs from the
    forward at ``p = 0``.
    """
    context = Context(
        op="dropout",
        backend=impl.name,
        dtype=dtype,
        inputs={"x": x.shape},
        hyper={"p": 0.0, "training": True, "seed": seed},
        variant="train",
    )
    _, mask = _mask(impl, x.shape, 0.0, seed, context)
    if not mask.all():
        raise context.fail(
            f"dropout_mask with p = 0 dropped {int(np.count_nonzero(~mask))} of "
            f"{mask.size} units; it must keep every unit",
        )
    # Exact identity, within the contract's precision: no subnormal inputs
    # (a backend may flush them to zero).
    x = flush_subnormals(x, dtype)
    dout = flush_subnormals(dout, dtype)
    y, dx = _forward_backward(impl, dtype, x, mask, dout, 0.0, True, context)
    _assert_identity(y, x, "p = 0 forward y must equal x", context)
    _assert_identity(dx, dout, "p = 0 backward dx must equal dout", context)


_ZERO_DRAWS = {"inputs": dropout_inputs(), "seed": strategies.seeds()}


@pytest.mark.reference_too
@fixtures_shared
@given(**_ZERO_DRAWS)
def test_dropout_p_zero_is_identity(backend: Any, dtype: str, inputs, seed) -> None:
    """See :func:`check_p_zero_is_identity`."""
    require_operations(backend, "dropout_mask", "dropout", "dropout_backward")
    x, _, dout = inputs
    check_p_zero_is_identity(backend, dtype, x, dout, seed)
