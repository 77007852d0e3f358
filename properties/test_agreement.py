"""Every backend agrees with the reference, op by op, in every dtype it has.

Catalog-driven (``properties/catalog/``): each test is parametrised over the
selected backends (``backend``), their dtypes (``dtype``) and the catalog's
cases (``op``), so a test id reads ``test_forward[numpy-float32-conv2d]``.

* ``test_forward`` / ``test_backward``: the deterministic ops. The drawn
  inputs are rounded to the dtype first, so the backend and the reference see
  the same numbers; the reference computes in float64 and the backend's
  forward output (each output: batch norm also returns its running
  statistics) and every backward output must equal it within the dtype's
  tolerance, widened by the rounding of the sums involved
  (``properties/tolerance.py``). The upstream gradient is random (never all
  ones). Inputs must come back unmodified.
* ``test_random``: ``dropout_mask`` and ``initialize`` are checked by shape,
  dtype, determinism in the seed and a loose distributional bound (the
  thorough statistics belong to their own module).

The optimizers (``init_state``, the steps) and ``clip_grad_norm`` are held to
the reference in ``test_optimizers.py``: trajectories of many steps need their
own tolerance (:func:`properties.tolerance.trajectory`).

An operation the backend lacks (its forward or its backward) is skipped with
the reason "not implemented: <backend> has no <op>", never failed. An option it declines
(``NotImplementedError``, or ``None`` for a gradient) rejects that example
only; a check with every example declined is "unsupported"
(:mod:`properties.checks`).

No input may change: every array argument (``dout``, labels and masks
included) is compared with its drawn value after the call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from properties.assertions import (
    Context,
    assert_close,
    assert_unchanged,
    call_backend,
    decline_gradient,
    expect_native,
    expect_tuple,
    fixtures_shared,
    require_operations,
    to_numpy,
)
from properties.catalog import OpInfo, Sample, cases, summarize
from properties.strategies import upstream

DETERMINISTIC = cases("deterministic")
DIFFERENTIABLE = cases("deterministic", differentiable=True)
RANDOM = cases("random")

# The backend and dtype fixtures are immutable per test: sharing them across
# the examples of one test is intended.


def case_id(op: OpInfo) -> str:
    return op.id


#: The backend operations each test needs, by test name.
REQUIRED: dict[str, Callable[[OpInfo], list[str]]] = {
    "test_forward": lambda op: [op.name],
    "test_backward": lambda op: [op.backward_name],
    "test_random": lambda op: [op.name],
}


@pytest.fixture(autouse=True)
def _skip_not_implemented(request: pytest.FixtureRequest) -> None:
    """Skip, with the contract's reason, a test of an op the backend lacks."""
    required = REQUIRED.get(request.node.originalname)
    if required is None or "backend" not in request.fixturenames:
        return
    backend = request.getfixturevalue("backend")
    op: OpInfo = request.node.callspec.params["op"]
    require_operations(backend, *required(op))


class SampleOnBackend:
    """One sample of one op on one backend: conversion, context, checks."""

    def __init__(self, backend: Any, dtype: str, op: OpInfo, sample: Sample) -> None:
        self.backend = backend
        self.dtype = dtype
        self.op = op
        self.sample = sample
        self.context = Context(
            op=op.name,
            backend=backend.name,
            dtype=dtype,
            inputs=dict(zip(op.arguments, sample.arguments, strict=True)),
            hyper=dict(sample.hyper),
            variant=op.variant,
        )
        note(
            f"{op.id} on {backend.name} {dtype}: inputs "
            + ", ".join(
                f"{name} {summarize(value)}"
                for name, value in zip(op.arguments, sample.arguments, strict=True)
            )
            + f"; hyperparameters {dict(sample.hyper)}"
        )
        self.native_type = type(self.native(np.zeros(1), "probe"))

    def native(self, value: Any, name: str) -> Any:
        """``value`` as the backend's array (float arrays in ``dtype``)."""
        if isinstance(value, list):
            return [self.native(item, f"{name}[{i}]") for i, item in enumerate(value)]
        if not isinstance(value, np.ndarray):
            return value
        dtype = self.dtype if value.dtype.kind == "f" else value.dtype.name
        try:
            # A copy: asarray may wrap the host array without copying, and a
            # backend that modified its input would then change the drawn value
            # that check_unchanged compares with.
            return self.backend.asarray(np.array(value, copy=True), dtype)
        except Exception as error:
            raise self.context.fail(
                f"backend {self.backend.name} could not convert the input {name!r} "
                f"({summarize(value)}) with asarray(a, {dtype!r}): "
                f"{type(error).__name__}: {error}"
            ) from error

    def arguments(self) -> list[Any]:
        return [
            self.native(value, name)
            for name, value in zip(
                self.op.arguments, self.sample.arguments, strict=True
            )
        ]

    def call(self, operation: str, arguments: list[Any], **hyper: Any) -> Any:
        merged = dict(self.sample.hyper) | hyper
        return call_backend(self.backend, operation, arguments, merged, self.context)

    def output(self, value: Any, what: str) -> np.ndarray:
        """A native output on the host, after checking it is a native array."""
        expect_native(value, self.native_type, what, self.backend.name, self.context)
        return to_numpy(self.backend, value, what, self.context)

    def check_unchanged(self, natives: list[Any]) -> None:
        """The native inputs still hold the drawn values."""
        for name, value, native in zip(
            self.op.arguments, self.sample.arguments, natives, strict=True
        ):
            originals = value if isinstance(value, list) else [value]
            converted = native if isinstance(value, list) else [native]
            for original, after in zip(originals, converted, strict=True):
                if isinstance(original, np.ndarray):
                    current = to_numpy(
                        self.backend, after, f"input {name}", self.context
                    )
                    expected = original.astype(current.dtype)
                    assert_unchanged(
                        expected, current, name, self.backend.name, self.context
                    )


# -- deterministic ops -------------------------------------------------------


@pytest.mark.parametrize("op", DETERMINISTIC, ids=case_id)
@fixtures_shared
@given(data=st.data())
def test_forward(backend: Any, dtype: str, op: OpInfo, data: st.DataObject) -> None:
    """Each forward output equals the reference's on the same (rounded) inputs."""
    sample = data.draw(op.strategy(), label="sample").rounded(dtype)
    call = SampleOnBackend(backend, dtype, op, sample)
    expected = op.reference_outputs(sample)
    natives = call.arguments()
    result = call.call(op.name, natives)
    if len(op.outputs) > 1:
        result = expect_tuple(
            result,
            len(op.outputs),
            f"{op.name} forward",
            backend.name,
            op.name,
            call.context,
        )
    else:
        result = (result,)
    bounds = op.rounding_bounds(sample, None)
    for name, value, reference in zip(op.outputs, result, expected, strict=True):
        what = f"{op.name} forward" + (
            f" output {name!r}" if len(op.outputs) > 1 else ""
        )
        actual = call.output(value, what)
        assert_close(
            actual,
            reference,
            dtype=dtype,
            what=what,
            context=call.context,
            rounding=bounds.get(name),
        )
    call.check_unchanged(natives)


@pytest.mark.parametrize("op", DIFFERENTIABLE, ids=case_id)
@fixtures_shared
@given(data=st.data())
def test_backward(backend: Any, dtype: str, op: OpInfo, data: st.DataObject) -> None:
    """Each backward output equals the reference's, for a random upstream gradient."""
    sample = data.draw(op.strategy(), label="sample").rounded(dtype)
    call = SampleOnBackend(backend, dtype, op, sample)
    output_shape = op.reference_outputs(sample)[0].shape
    dout = (
        data.draw(upstream(output_shape), label="dout").astype(dtype).astype(np.float64)
    )
    expected = op.reference_gradients(dout, sample)
    natives = call.arguments()
    native_dout = call.native(dout, "dout")
    name = op.backward_name
    result = expect_tuple(
        call.call(name, [native_dout, *natives]),
        len(op.gradients),
        f"{name}",
        backend.name,
        name,
        call.context,
    )
    bounds = op.rounding_bounds(sample, dout)
    if all(
        value is None
        for argument, value in zip(op.gradients, result, strict=True)
        if argument is not None
    ):
        # Not one gradient given: the backward declines this example.
        decline_gradient(backend, f"{name}: every gradient", call.context)
    for argument, value, reference in zip(op.gradients, result, expected, strict=True):
        if argument is None:
            if value is not None:
                raise call.context.fail(
                    f"{name}: the entry for a non-float argument must be None, got "
                    f"{type(value).__name__}"
                )
            continue
        if value is None:
            continue  # this gradient is declined; the others are checked
        what = f"{name}: gradient wrt {argument}"
        assert_close(
            call.output(value, what),
            reference,
            dtype=dtype,
            what=what,
            context=call.context,
            rounding=bounds.get(f"d{argument}"),
        )
    call.check_unchanged(natives)
    after = to_numpy(backend, native_dout, "dout", call.context)
    original = dout.astype(after.dtype)
    assert_unchanged(original, after, "dout", backend.name, call.context)


# -- random ops --------------------------------------------------------------


@pytest.mark.parametrize("op", RANDOM, ids=case_id)
@fixtures_shared
@given(data=st.data())
def test_random(backend: Any, dtype: str, op: OpInfo, data: st.DataObject) -> None:
    """Shape, dtype, determinism in the seed and a loose distributional check."""
    sample = data.draw(op.strategy(), label="sample")
    call = SampleOnBackend(backend, dtype, op, sample)
    extra = {"dtype": dtype} if op.takes_dtype else {}

    def run(**hyper: Any) -> np.ndarray:
        value = call.call(op.name, list(sample.arguments), **extra, **hyper)
        return call.output(value, f"{op.name} output").copy()

    first = run()
    problems = op.sanity(sample, first, dtype, run) if op.sanity else []
    problems += _narrower_than(first, dtype)
    if not problems:
        again = run()
        if not np.array_equal(first, again):
            problems.append("the same seed gave different values")
    if problems:
        raise call.context.fail(
            f"{op.name} ({op.variant or 'draw'}): backend {backend.name} fails the "
            "sanity checks of a random op",
            *problems,
        )


def _narrower_than(values: np.ndarray, dtype: str) -> list[str]:
    """A float64 draw whose every value is a float32 number was drawn in float32.

    Of 8 or more continuous float64 draws, the chance that all are exactly
    float32 numbers is below 2**-200: a backend that draws in float32 and
    widens the result gives float64 weights with float32's resolution.
    """
    if dtype != "float64" or values.dtype.kind != "f":
        return []
    nonzero = values[values != 0]
    if nonzero.size < 8 or np.any(nonzero != nonzero.astype(np.float32)):
        return []
    return [
        f"every one of the {nonzero.size} non-zero float64 values is a float32 "
        "number: drawn in float32 and widened, not drawn in float64"
    ]
