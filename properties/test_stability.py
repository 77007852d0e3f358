"""Numerical stability: the exp/log ops stay finite and accurate at magnitude 1e4.

The generic agreement tests draw moderate inputs (logits within a few units),
where a textbook formula and a careful one agree to the last bit. A backend
that computes ``exp(x) / sum(exp(x))`` or ``log(1 + exp(x))`` literally passes
them and still returns ``nan`` or ``inf`` on the first logit above 88 (float32)
or 709 (float64), which a network in training produces routinely. Here the
inputs reach magnitude :data:`LARGE` (1e4), mixed with small values in the same
row, and every output and gradient must be finite and equal the reference
(which is written in the stable forms) within the dtype's tolerance, widened
by the catalog's rounding bound: the error allowed grows with the magnitude of
the terms summed, never with how small the result is.

Also here, the two invariants of softmax that a stable implementation keeps
at any magnitude: each slice sums to 1, and adding a constant to a slice
changes nothing. The reference itself is held to formulas built on
``numpy.logaddexp`` at the same magnitudes, since every backend is judged
against it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from backends import contract
from properties import assertions, strategies
from properties import tolerance as tol
from properties.assertions import fixtures_shared
from properties.catalog import BY_NAME, Sample

#: The largest input magnitude drawn.
LARGE = 1e4

#: Magnitudes that make a naive exp overflow (float32 beyond ~88, float64 beyond
#: ~709) or a naive log(1 + exp(-x)) lose every digit, next to ordinary values.
_EXTREMES = (-LARGE, -1e3, -100.0, -30.0, -1.0, 0.0, 1.0, 30.0, 100.0, 1e3, LARGE)


def large_arrays(shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    """float64 arrays of ``shape`` with values in ``[-LARGE, LARGE]``.

    Three kinds of draw: Hypothesis' own elements (it shrinks towards simple
    numbers), a generic cloud ``offset + scale * U(-1, 1)`` at a random scale
    and offset (ordinary spreads at huge magnitude: what the max-shift
    protects), and a mixture of extreme and ordinary values in one slice.
    """
    shape = tuple(int(d) for d in shape)
    elementwise = hnp.arrays(
        np.float64, shape, elements=strategies.floats(-LARGE, LARGE)
    )

    def cloud(draw: tuple[int, float, float]) -> np.ndarray:
        seed, scale, offset = draw
        values = offset + scale * np.random.default_rng(seed).uniform(-1, 1, shape)
        return np.clip(values, -LARGE, LARGE)

    generic = st.tuples(
        strategies.seeds(),
        st.sampled_from([1.0, 30.0, 1e3, LARGE]),
        strategies.floats(-LARGE, LARGE),
    ).map(cloud)
    extremes = hnp.arrays(np.float64, shape, elements=st.sampled_from(_EXTREMES))
    return st.one_of(elementwise, generic, extremes)


@st.composite
def axis_samples(draw: st.DrawFn) -> Sample:
    """An input of 1 to 3 dimensions at large magnitude, and an axis (or none)."""
    shape = draw(strategies.shapes(min_dims=1, max_dims=3, max_side=5))
    x = draw(large_arrays(shape))
    axis = draw(strategies.optional(st.integers(-len(shape), len(shape) - 1)))
    return Sample((x,), {} if axis is strategies.OMITTED else {"axis": axis})


@st.composite
def elementwise_samples(draw: st.DrawFn) -> Sample:
    shape = draw(strategies.shapes(min_dims=1, max_dims=3, max_side=5))
    return Sample((draw(large_arrays(shape)),))


@st.composite
def cross_entropy_samples(draw: st.DrawFn) -> Sample:
    n, classes = draw(st.integers(1, 5)), draw(st.integers(1, 6))
    logits = draw(large_arrays((n, classes)))
    return Sample((logits, draw(strategies.labels(n, classes))))


@st.composite
def bce_logits_samples(draw: st.DrawFn) -> Sample:
    shape = draw(strategies.shapes(min_dims=1, max_dims=3, max_side=5))
    logits = draw(large_arrays(shape))
    return Sample((logits, draw(strategies.binary_or_soft_targets(shape))))


#: The op each Hypothesis sample strategy feeds.
STRATEGIES: dict[str, st.SearchStrategy[Sample]] = {
    "softmax": axis_samples(),
    "log_softmax": axis_samples(),
    "softplus": elementwise_samples(),
    "softmax_cross_entropy": cross_entropy_samples(),
    "binary_cross_entropy_with_logits": bce_logits_samples(),
}

#: One row that breaks every naive formula, whatever the profile draws.
_WORST_ROW = np.array([[LARGE, -LARGE, 0.0, 1.0], [-LARGE, -LARGE + 1.0, -LARGE, 3.0]])
_WORST: dict[str, Sample] = {
    "softmax": Sample((_WORST_ROW,), {"axis": -1}),
    "log_softmax": Sample((_WORST_ROW,), {"axis": -1}),
    "softplus": Sample((_WORST_ROW,)),
    "softmax_cross_entropy": Sample((_WORST_ROW, np.array([1, 0]))),
    "binary_cross_entropy_with_logits": Sample(
        (_WORST_ROW, np.array([[0.0, 1.0, 0.5, 1.0], [1.0, 0.0, 1.0, 0.25]]))
    ),
}


# -- running one op against the reference ------------------------------------


def _require_finite_reference(
    value: np.ndarray, what: str, context: assertions.Context
) -> None:
    """A NaN in the reference would let a NaN from the backend pass: refuse it."""
    if not np.all(np.isfinite(value)):
        raise context.fail(
            f"{what}: the REFERENCE is not finite at this input (a bug in reference/, "
            "not in the backend)",
            f"reference value: {value!r}",
        )


def _native(backend: Any, value: Any, dtype: str) -> Any:
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return backend.asarray(value, dtype)
    if isinstance(value, np.ndarray) and value.dtype.kind in "iu":
        return backend.asarray(value, "int64")
    return value


def check_against_reference(
    backend: Any, dtype: str, name: str, sample: Sample, dout_seed: int
) -> None:
    """Forward and backward of ``name`` on ``sample`` equal the reference's.

    Finiteness is part of the comparison: :func:`properties.assertions.assert_close`
    fails on a NaN or an inf wherever the reference is finite (it always is here).
    """
    assertions.require_operations(backend, name)
    entry = BY_NAME[name]
    sample = sample.rounded(dtype)
    context = assertions.Context(
        op=name,
        backend=backend.name,
        dtype=dtype,
        inputs={
            arg: value
            for arg, value in zip(entry.arguments, sample.arguments, strict=True)
        },
        hyper=dict(sample.hyper),
        variant=f"magnitude up to {LARGE:g}",
    )
    arguments = [_native(backend, value, dtype) for value in sample.arguments]
    (expected,) = entry.reference_outputs(sample)
    _require_finite_reference(expected, "forward", context)
    output = assertions.call_backend(backend, name, arguments, sample.hyper, context)
    actual = assertions.to_numpy(backend, output, "forward", context)
    bounds = entry.rounding_bounds(sample, None)
    assertions.assert_close(
        actual,
        expected,
        dtype=dtype,
        what="forward",
        context=context,
        rounding=bounds.get("output"),
    )

    backward = entry.backward_name
    assert backward is not None
    if not contract.implements(backend, backward):
        return  # the forward was checked; the missing backward is reported elsewhere
    rng = np.random.default_rng(dout_seed)
    dout = np.asarray(rng.standard_normal(np.shape(expected))).astype(dtype)
    dout = dout.astype(np.float64)
    expected_gradients = entry.reference_gradients(dout, sample)
    for argument, gradient in zip(entry.gradients, expected_gradients, strict=True):
        if argument is not None:
            _require_finite_reference(gradient, f"gradient d{argument}", context)
    bounds = entry.rounding_bounds(sample, dout)
    result = assertions.call_backend(
        backend,
        backward,
        [backend.asarray(dout, dtype), *arguments],
        sample.hyper,
        context,
    )
    gradients = assertions.expect_tuple(
        result, len(entry.gradients), "backward", backend.name, backward, context
    )
    for argument, gradient, expected_gradient in zip(
        entry.gradients, gradients, expected_gradients, strict=True
    ):
        if argument is None:
            continue
        assertions.assert_close(
            assertions.to_numpy(
                backend, gradient, f"d{argument}", context, gradient=True
            ),
            expected_gradient,
            dtype=dtype,
            what=f"gradient with respect to {argument} (backward)",
            context=context,
            rounding=bounds.get(f"d{argument}"),
        )


# -- the properties ------------------------------------------------------------


@pytest.mark.parametrize("op", list(STRATEGIES))
@fixtures_shared
@given(data=st.data(), dout_seed=strategies.seeds())
def test_stable_at_large_magnitude(
    backend: Any, dtype: str, op: str, data: st.DataObject, dout_seed: int
) -> None:
    """softmax, log_softmax, softplus and the two logit losses at magnitude 1e4.

    Forward and backward are finite and equal the reference within the dtype's
    tolerance (plus the catalog's rounding bound, which scales with the
    magnitude of the terms).

    Catches the unstable textbook formulas: ``exp(x) / sum(exp(x))`` without
    subtracting the max (inf / inf = NaN past 88 in float32), ``log(softmax)``
    (log 0 = -inf for a logit 100 below the max), ``-log(softmax[y])`` as the
    cross-entropy, ``log(1 + exp(x))`` as softplus (inf past 88), and binary
    cross-entropy with logits as ``-t log(sigmoid(z)) - (1 - t) log(1 -
    sigmoid(z))`` (log 0 once sigmoid rounds to 1, or a value clamped at 100
    where the loss is 1e4).
    """
    sample = data.draw(STRATEGIES[op], label="sample")
    check_against_reference(backend, dtype, op, sample, dout_seed)


@pytest.mark.parametrize("op", list(_WORST))
def test_stable_on_the_worst_row(backend: Any, dtype: str, op: str) -> None:
    """The same check on one fixed input that breaks every naive formula.

    ``[[1e4, -1e4, 0, 1], [-1e4, -1e4 + 1, -1e4, 3]]``: the first row overflows
    ``exp``, the second underflows every entry but one. Whatever the Hypothesis
    profile draws, this example runs (the ``dev`` profile's 10 examples might not
    reach 1e4).
    """
    check_against_reference(backend, dtype, op, _WORST[op], dout_seed=0)


@fixtures_shared
@given(sample=axis_samples())
def test_softmax_sums_to_one(backend: Any, dtype: str, sample: Sample) -> None:
    """Every softmax slice lies in [0, 1] and sums to 1, at any magnitude.

    Catches normalising over the wrong axis (a slice then sums to anything),
    overflow (NaN sums), and a max subtracted over the whole array instead of
    per slice (a slice far below the global max underflows to 0 / 0).
    """
    assertions.require_operations(backend, "softmax")
    sample = sample.rounded(dtype)
    (x,) = sample.arguments
    axis = sample.hyper.get("axis", -1)
    context = assertions.Context(
        "softmax", backend.name, dtype, {"x": x}, dict(sample.hyper), "sums to 1"
    )
    output = assertions.call_backend(
        backend, "softmax", [backend.asarray(x, dtype)], sample.hyper, context
    )
    y = assertions.to_numpy(backend, output, "forward", context)
    if y.shape != x.shape:
        raise context.fail(f"softmax output has shape {y.shape}, expected {x.shape}")
    expected = np.ones_like(x)
    if np.any(y < 0) or np.any(y > 1):
        raise context.fail(
            "softmax output outside [0, 1]",
            f"min {float(y.min())!r}, max {float(y.max())!r}",
        )
    classes = x.shape[axis]
    totals = np.broadcast_to(
        y.astype(np.float64).sum(axis=axis, keepdims=True), x.shape
    )
    # Each of the C outputs errs by (C + 2) u relative, so their sum by 2 (C + 2) u:
    # the rounding term with B = C + 2, the sum being 1.
    allowed = tol.rounding_term(dtype, classes + 2) + tol.ATOL["float64"]
    assertions.assert_close(
        totals,
        expected,
        dtype="float64",
        what=f"sum over axis {axis}",
        context=context,
        allowed=np.full(x.shape, allowed),
        actual_label="sum of the backend's softmax",
        expected_label="1",
        explain=f"allowed |sum - 1| <= 2 (C + 2) u = {allowed:.3g} with C = {classes}",
    )


@st.composite
def shifted_samples(draw: st.DrawFn) -> tuple[Sample, np.ndarray]:
    """An input on a grid of 1/64 in [-8, 8], and an integer shift per slice.

    Both ``x`` and ``x + c`` (``|c| <= 1e4``) are exact in float32 (at most 20
    significant bits), and so is ``(x + c) - max(x + c) = x - max(x)``: a
    max-shifted softmax gives bit-identical results, any other form does not.
    """
    sample = draw(axis_samples())
    (x,) = sample.arguments
    axis = sample.hyper.get("axis", -1)
    grid = np.round(np.clip(x, -8, 8) * 64) / 64
    shift_shape = list(x.shape)
    shift_shape[axis] = 1
    shift = draw(
        hnp.arrays(
            np.float64,
            tuple(shift_shape),
            elements=st.integers(-int(LARGE), int(LARGE)).map(float),
        )
    )
    return Sample((grid,), dict(sample.hyper)), shift


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@fixtures_shared
@given(drawn=shifted_samples())
def test_softmax_is_shift_invariant(
    backend: Any, dtype: str, op: str, drawn: tuple[Sample, np.ndarray]
) -> None:
    """softmax(x + c) = softmax(x) and log_softmax(x + c) = log_softmax(x), per slice.

    Catches a softmax that does not subtract the max (exp(x + 1e4) overflows),
    one that subtracts the max of the whole array rather than of each slice
    (slices shifted far below the global max underflow to 0 / 0), and
    ``log(softmax(x))`` (an entry far below its slice's max gives -inf where the
    log-softmax is a finite number).
    """
    assertions.require_operations(backend, op)
    sample, shift = drawn
    (x,) = sample.arguments
    shifted = x + shift
    context = assertions.Context(
        op,
        backend.name,
        dtype,
        {"x": x, "c": shift},
        dict(sample.hyper),
        "shift invariance: f(x + c) against f(x)",
    )
    plain = assertions.call_backend(
        backend, op, [backend.asarray(x, dtype)], sample.hyper, context
    )
    moved = assertions.call_backend(
        backend, op, [backend.asarray(shifted, dtype)], sample.hyper, context
    )
    expected = assertions.to_numpy(backend, plain, "f(x)", context).astype(np.float64)
    if not np.all(np.isfinite(expected)):
        raise context.fail(
            f"{op}(x) is not finite for |x| <= 8", f"{op}(x) = {expected!r}"
        )
    assertions.assert_close(
        assertions.to_numpy(backend, moved, "f(x + c)", context),
        expected,
        dtype=dtype,
        what=f"{op}(x + c)",
        context=context,
        actual_label=f"{op}(x + c)",
        expected_label=f"{op}(x)",
    )


# -- the reference against independent formulas ---------------------------------


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    return np.logaddexp.reduce(x, axis=axis, keepdims=True)


def _independent(name: str, sample: Sample) -> np.ndarray:
    """Each op from NumPy's ``logaddexp``: stable by construction, no max-shift."""
    arguments = sample.arguments
    if name in ("softmax", "log_softmax"):
        (x,) = arguments
        axis = sample.hyper.get("axis", -1)
        log_p = x - _logsumexp(x, axis)
        return np.exp(log_p) if name == "softmax" else log_p
    if name == "softplus":
        return np.logaddexp(0.0, arguments[0])
    if name == "softmax_cross_entropy":
        z, labels = arguments
        picked = z[np.arange(z.shape[0]), labels]
        return np.asarray(np.mean(_logsumexp(z, 1)[:, 0] - picked))
    z, target = arguments
    return np.asarray(np.sum(np.logaddexp(0.0, z) - z * target) / z.shape[0])


@pytest.mark.parametrize("op", list(STRATEGIES))
@given(data=st.data())
def test_reference_is_stable_at_large_magnitude(op: str, data: st.DataObject) -> None:
    """The reference itself: finite at magnitude 1e4 and equal to ``logaddexp`` forms.

    Every backend is judged against the reference, so a reference that lost
    its max-shift would make the backend tests compare NaN with NaN; here it
    is held to formulas built on ``numpy.logaddexp`` instead.
    """
    sample = data.draw(STRATEGIES[op], label="sample")
    entry = BY_NAME[op]
    context = assertions.Context(
        op,
        "reference",
        "float64",
        dict(zip(entry.arguments, sample.arguments, strict=True)),
        dict(sample.hyper),
        "reference against logaddexp",
    )
    (actual,) = entry.reference_outputs(sample)
    _require_finite_reference(actual, "forward", context)
    independent = _independent(op, sample)
    bound = entry.rounding_bounds(sample, None).get("output")
    assertions.assert_close(
        np.asarray(actual),
        independent,
        dtype="float64",
        what="forward",
        context=context,
        rounding=(0 if bound is None else bound)
        + _formula_error(op, sample, independent),
        actual_label="reference",
        expected_label="logaddexp formula",
    )


def _formula_error(op: str, sample: Sample, value: np.ndarray) -> np.ndarray:
    """The rounding bound (in units of ``2u``) of :func:`_independent` itself.

    Its formulas subtract terms as large as ``M = max |x|`` (``x - lse``,
    ``lse - picked``, ``logaddexp(0, z) - z t``), each rounded to ``u M``: the
    result carries an absolute error of a few ``u M`` (times ``y`` after
    softmax's ``exp``, summed over the elements of a row for BCE), which the
    reference's max-shifted form does not have.
    """
    x = sample.arguments[0]
    magnitude = 2 * float(np.max(np.abs(x))) if x.size else 0.0
    if op == "softmax":
        return magnitude * np.abs(value)
    if op == "binary_cross_entropy_with_logits":
        return np.asarray(magnitude * x.size / x.shape[0])
    return np.full(np.shape(value), magnitude)
