"""Every reference backward equals central finite differences of its forward.

For every catalog case with a backward (activations, layers, batch norm in
both layouts and modes with ``dgamma`` and ``dbeta``, dropout with its fixed
mask, losses and penalties), in float64 and with a *random* upstream gradient
``dout`` (never all ones: ``sum(softmax)`` has gradient 0, so ``dout = 1``
would pass a softmax backward that returns zeros), the gradient with respect
to each differentiable argument ``a`` must equal, element by element,

    d/da_i <dout, f(a)>  ~=  <dout, f(a + h e_i) - f(a - h e_i)> / (2 h)

with ``h = 1e-6 max(1, |a_i|)``. Only the outputs that depend on ``a_i``
change, so the difference is taken output by output before the dot product,
and the outputs that do not depend on ``a_i`` contribute exactly 0.

Tolerance: ``|analytic - numeric| <= 1e-6 |numeric| + 1e-7 S`` with
``S = sum_j |dout_j| (|f_j| + 1)`` (:func:`properties.tolerance.finite_difference`
derives it). A wrong gradient (a missing term, a wrong sign or factor, a
transposed axis) errs by the size of the gradient itself, orders of magnitude
above.

At the closed end of an argument's domain (``OpInfo.argument_ranges``: a target of 0
or 1) the difference is one-sided; the catalog declares bounds only where the
forward is linear in that argument, so the one-sided quotient is exact too.

This test uses no backend: it holds the reference to the calculus.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from properties.assertions import Context, assert_close
from properties.catalog import OpInfo, Sample, cases, summarize
from properties.strategies import upstream
from properties.tolerance import (
    FINITE_DIFFERENCE_ATOL_PER_UNIT,
    FINITE_DIFFERENCE_RTOL,
    FINITE_DIFFERENCE_STEP,
    finite_difference,
)

DIFFERENTIABLE = cases("deterministic", differentiable=True)


def case_id(op: OpInfo) -> str:
    return op.id


def _output_at(
    op: OpInfo, sample: Sample, argument: int, value: np.ndarray
) -> np.ndarray:
    """The output ``dout`` applies to (``y`` for batch norm) at a perturbed input."""
    arguments = list(sample.arguments)
    arguments[argument] = value
    return op.reference_outputs(Sample(tuple(arguments), sample.hyper))[0]


def finite_differences(
    op: OpInfo, sample: Sample, argument: str, dout: np.ndarray
) -> np.ndarray:
    """``d <dout, f> / d a`` for the argument named ``argument``, element by element."""
    position = op.arguments.index(argument)
    a = sample.arguments[position]
    low, high = op.argument_ranges.get(argument, (-np.inf, np.inf))
    gradient = np.zeros_like(a)
    for index in np.ndindex(a.shape):
        h = FINITE_DIFFERENCE_STEP * max(1.0, abs(a[index]))
        plus, minus = a.copy(), a.copy()
        if a[index] + h <= high:
            plus[index] = a[index] + h
        if a[index] - h >= low:
            minus[index] = a[index] - h
        step = plus[index] - minus[index]  # the step actually represented
        change = _output_at(op, sample, position, plus) - _output_at(
            op, sample, position, minus
        )
        gradient[index] = np.sum(dout * change) / step
    return gradient


@pytest.mark.parametrize("op", DIFFERENTIABLE, ids=case_id)
@given(data=st.data())
def test_backward_matches_finite_differences(op: OpInfo, data: st.DataObject) -> None:
    """The reference backward is the derivative of the reference forward."""
    sample = data.draw(op.strategy(), label="sample")
    note(
        f"{op.id}: inputs "
        + ", ".join(
            f"{name} {summarize(value)}"
            for name, value in zip(op.arguments, sample.arguments, strict=True)
        )
        + f"; hyperparameters {dict(sample.hyper)}"
    )
    context = Context(
        op=op.name,
        backend="reference",
        dtype="float64",
        inputs=dict(zip(op.arguments, sample.arguments, strict=True)),
        hyper=dict(sample.hyper),
        variant=op.variant,
    )
    output = op.reference_outputs(sample)[0]
    dout = data.draw(upstream(output.shape), label="dout")
    result: Any = op.backward(dout, *sample.arguments, **sample.hyper)
    if not isinstance(result, tuple) or len(result) != len(op.gradients):
        raise context.fail(
            f"{op.backward_name}: the reference returned {type(result).__name__} "
            f"of length {len(result) if hasattr(result, '__len__') else '?'}, "
            f"expected a tuple of {len(op.gradients)} (one per {op.gradients})"
        )
    scale = float(np.sum(np.abs(dout) * (np.abs(output) + 1)))
    for argument, analytic in zip(op.gradients, result, strict=True):
        if argument is None:
            if analytic is not None:
                raise context.fail(
                    f"{op.backward_name}: the entry of a non-float argument must be "
                    f"None, got {type(analytic).__name__}"
                )
            continue
        numeric = finite_differences(op, sample, argument, dout)
        allowed = finite_difference(numeric, scale)
        assert_close(
            analytic,
            numeric,
            dtype="float64",
            what=f"{op.backward_name}: gradient wrt {argument}",
            context=context,
            allowed=allowed,
            actual_label="reference backward",
            expected_label="finite differences",
            explain=(
                f"tolerance: {FINITE_DIFFERENCE_RTOL:g} |numeric| + "
                f"{FINITE_DIFFERENCE_ATOL_PER_UNIT:g} S, "
                f"S = sum |dout| (|f| + 1) = {scale:.6g}"
            ),
        )
