"""Comparison helpers with readable failures, after ``torch.testing.assert_close``.

A comparison checks, in order, and stops at the first problem:

1. the type (a native array of the backend, a tuple for a backward, the
   right number of entries),
2. the shape,
3. the dtype,
4. NaN and inf where the reference is finite,
5. the values, within dtype-aware tolerances.

Every failure is an ``AssertionError`` whose message names the op, the
backend, the dtype, which output (the forward, or the gradient with respect
to which argument), the shapes of the inputs and the hyperparameters, the
largest absolute and relative errors, the worst index with both values, and a
command that reruns the test (Hypothesis adds the falsifying example, and
under the ``ci`` and ``nightly`` profiles a ``@reproduce_failure`` blob).

A backend that raises, or returns the wrong kind of object, is reported the
same way (:func:`call_backend`, :func:`expect_tuple`): "backend <name> op <op>
raised <Type>: <message>" followed by the inputs, never a bare traceback from
deep inside the test.

Tolerances
----------
``|actual - expected| <= atol + rtol |expected| + 2 u B`` elementwise: the
model, its numbers and its special cases are in :mod:`properties.tolerance`.
:func:`assert_close` takes ``B`` as ``rounding=``, or an ``allowed`` array
derived by a property from one of the special cases.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from backends import contract
from properties import checks
from properties import tolerance as tol

#: Settings for a Hypothesis test that takes the ``backend`` and ``dtype``
#: fixtures: they hold no state an example could change, so sharing them across
#: the examples of a test is safe. A backend may decline most of a test's
#: examples (``NotImplementedError`` for options it lacks): the search goes on
#: in the space it supports instead of failing a health check. Built when a test
#: module imports this module, after conftest has loaded the Hypothesis profile
#: (conftest must not import it).
fixtures_shared = settings(
    suppress_health_check=[
        *settings.default.suppress_health_check,
        HealthCheck.function_scoped_fixture,
        HealthCheck.filter_too_much,
    ]
)

# -- context -----------------------------------------------------------------


def _format_hyper(hyper: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in hyper.items()) or "(none)"


def _summary(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype.name}{list(value.shape)}"
    if (
        isinstance(value, (list, tuple))
        and value
        and all(isinstance(v, np.ndarray) for v in value)
    ):
        return "[" + ", ".join(_summary(v) for v in value) + "]"
    return repr(value)


@dataclass
class Context:
    """What a failure message says about the call that failed."""

    op: str
    backend: str
    dtype: str
    inputs: Mapping[str, Any] = field(default_factory=dict)
    hyper: Mapping[str, Any] = field(default_factory=dict)
    variant: str | None = None
    reproduce: str | None = None

    def where(self) -> str:
        variant = f" [{self.variant}]" if self.variant else ""
        return f"op {self.op}{variant}, backend {self.backend}, dtype {self.dtype}"

    def describe(self) -> str:
        lines = [
            f"  op: {self.op}" + (f" (case {self.variant})" if self.variant else ""),
            f"  backend: {self.backend}",
            f"  dtype: {self.dtype}",
            "  inputs: "
            + (
                ", ".join(f"{name} {_summary(v)}" for name, v in self.inputs.items())
                or "(none)"
            ),
            f"  hyperparameters: {_format_hyper(self.hyper)}",
            f"  reproduce: {self.reproduce or checks.reproduce()}",
        ]
        return "\n".join(lines)

    def fail(self, title: str, *details: str) -> AssertionError:
        """An ``AssertionError`` with ``title``, ``details`` and this context."""
        body = "\n".join(f"  {line}" for line in details if line)
        text = f"{title}\n" + (body + "\n" if body else "") + self.describe()
        return AssertionError(text)


# -- calling a backend -------------------------------------------------------


def call_backend(
    backend: Any,
    operation: str,
    arguments: Sequence[Any],
    hyper: Mapping[str, Any],
    context: Context,
) -> Any:
    """``backend.<operation>(*arguments, **hyper)``; an exception becomes a failure.

    ``NotImplementedError`` is the backend declining this option (a
    hyperparameter value, a mode, a shape it does not support): the example is
    rejected, not failed, and counted (:func:`properties.checks.decline`).
    """
    method = getattr(backend, operation)
    try:
        return method(*arguments, **hyper)
    except NotImplementedError as error:
        checks.decline(backend.name, operation, error)
        raise  # not reached: decline rejects the example
    except Exception as error:
        raise context.fail(
            f"backend {backend.name} op {operation} raised "
            f"{type(error).__name__}: {error}",
        ) from error


def init_state(
    backend: Any,
    name: str,
    param: Any,
    hyper: Mapping[str, Any],
    context: Context,
) -> dict:
    """``backend.init_state(name, param[, **hyper])``, checked to be a ``dict``.

    The step's hyperparameters are passed as keywords when ``init_state``
    accepts them (a ``**hyper`` parameter, or keywords of those names): a
    backend whose state layout depends on them (momentum buffers only with
    momentum, Nesterov) may use them, and one that does not need them keeps
    ``init_state(name, param)``.
    """
    given = dict(hyper)
    try:
        parameters = inspect.signature(backend.init_state).parameters
    except (TypeError, ValueError):
        parameters = {}
    kinds = {p.kind for p in parameters.values()}
    if inspect.Parameter.VAR_KEYWORD not in kinds:
        given = {key: value for key, value in given.items() if key in parameters}
    state = call_backend(backend, "init_state", [name, param], given, context)
    if not isinstance(state, dict):
        raise context.fail(
            f"init_state({name!r}): backend {backend.name} returned a "
            f"{type(state).__name__}, not a dict",
            "the contract: the optimizer state is a dict (of native arrays)",
        )
    return state


def require_operations(backend: Any, *operations: str) -> None:
    """Skip as "not implemented" unless ``backend`` has every one of ``operations``.

    A backend may leave out any op of the contract: its checks of that op are
    skipped with this reason, never failed.
    """
    for operation in operations:
        if not contract.implements(backend, operation):
            pytest.skip(f"not implemented: {backend.name} has no {operation}")


def decline_gradient(backend: Any, what: str, context: Context) -> None:
    """Reject the example: the backward gave ``None`` for a gradient it needs.

    A backward may provide only some gradients (a library without the
    gradient with respect to a loss's target): a ``None`` for a float argument
    declines that gradient. The gradients it does give are still checked; an
    example that needs a declined one is rejected like any declined option.
    """
    checks.decline(
        backend.name,
        f"{context.op}_backward",
        NotImplementedError(f"{what}: the backward returned None"),
    )


def to_numpy(
    backend: Any,
    value: Any,
    what: str,
    context: Context,
    *,
    gradient: bool = False,
) -> np.ndarray:
    """A backend's output on the host, as a copy of its own.

    The copy matters: ``to_numpy`` may return a view of the native array (the
    contract allows it), and an optimizer step may then update that array in
    place; a kept view would change under the test's feet.

    ``gradient``: ``value`` is an entry of a backward's tuple for a float
    argument, where ``None`` declines that gradient (the example is rejected,
    :func:`call_backend`). Elsewhere ``None`` is an output the backend failed to
    produce. A failure of ``to_numpy`` itself is reported.
    """
    if value is None and gradient:
        decline_gradient(backend, what, context)
    try:
        return np.array(backend.to_numpy(value), copy=True)
    except Exception as error:
        raise context.fail(
            f"{what}: backend {backend.name} could not convert the output of op "
            f"{context.op} with to_numpy: {type(error).__name__}: {error}",
            f"the output was {type(value).__name__}: {value!r:.200}",
        ) from error


def expect_tuple(
    result: Any, length: int, what: str, backend: str, operation: str, context: Context
) -> tuple[Any, ...]:
    """``result`` if it is a tuple of ``length`` entries, else a failure."""
    if not isinstance(result, tuple):
        kind = type(result).__name__
        shape = getattr(result, "shape", None)
        detail = f" of shape {tuple(shape)}" if shape is not None else ""
        raise context.fail(
            f"{what}: backend {backend} op {operation} returned a {kind}{detail}, "
            f"not a tuple of {length} entries",
            "the contract: every backward returns a tuple with one entry per array "
            "argument, in order, even for one input (relu_backward -> (dx,))",
        )
    if len(result) != length:
        raise context.fail(
            f"{what}: backend {backend} op {operation} returned a tuple of "
            f"{len(result)} entries, expected {length}",
        )
    return result


def expect_native(
    value: Any, native_type: type, what: str, backend: str, context: Context
) -> None:
    """Fail unless ``value`` is one of the backend's native arrays."""
    if not isinstance(value, native_type):
        raise context.fail(
            f"{what}: backend {backend} op {context.op} returned a "
            f"{type(value).__name__}, not a native array ({native_type.__name__})",
        )


# -- comparing values --------------------------------------------------------


def flush_subnormals(a: Any, dtype: str) -> np.ndarray:
    """``a`` rounded to ``dtype`` (returned as float64), its subnormals set to 0.

    The contract's precision stops at the normal numbers of the dtype: a
    backend may flush subnormal inputs and results to zero (GPUs and
    ``-ffast-math`` kernels do). A property that demands exact values (an
    identity, a step that must not move) therefore draws no subnormal inputs.
    """
    rounded = np.asarray(a, dtype=np.float64).astype(dtype)
    rounded[np.abs(rounded) < np.finfo(dtype).tiny] = 0
    return rounded.astype(np.float64)


def _index(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(flat, shape)) if shape else ()


def assert_close(
    actual: Any,
    expected: np.ndarray,
    *,
    dtype: str,
    what: str,
    context: Context,
    rounding: Any = None,
    allowed: np.ndarray | None = None,
    actual_label: str = "backend",
    expected_label: str = "reference",
    explain: str = "",
) -> None:
    """Fail unless ``actual`` matches ``expected`` in type, shape, dtype and value.

    ``rounding``: the rounding bound ``B`` of :func:`properties.tolerance.allowed`.
    ``allowed`` (elementwise ``|actual - expected|`` bounds) replaces that
    tolerance where a property derives its own (a special case of
    :mod:`properties.tolerance`).
    """
    expected = np.asarray(expected, dtype=np.float64)
    if not isinstance(actual, np.ndarray):
        raise context.fail(
            f"{what}: {actual_label} gave a {type(actual).__name__}, not an array",
        )
    if actual.shape != expected.shape:
        raise context.fail(
            f"{what}: shape mismatch: {actual_label} shape {actual.shape}, "
            f"{expected_label} shape {expected.shape}",
        )
    if actual.dtype != np.dtype(dtype):
        raise context.fail(
            f"{what}: dtype mismatch: {actual_label} dtype {actual.dtype}, "
            f"expected {dtype} (outputs have the dtype of the float inputs)",
        )
    values = actual.astype(np.float64)
    finite = np.isfinite(expected)
    bad = finite & ~np.isfinite(values)
    if bad.any():
        index = _index(int(np.flatnonzero(bad)[0]), expected.shape)
        raise context.fail(
            f"{what}: NaN or inf where the {expected_label} is finite "
            f"({int(bad.sum())} of {bad.size} elements)",
            f"first at index {index}: {actual_label} {float(values[index])!r}, "
            f"{expected_label} {float(expected[index])!r}",
        )
    odd = ~finite & ~((values == expected) | (np.isnan(values) & np.isnan(expected)))
    if odd.any():
        index = _index(int(np.flatnonzero(odd)[0]), expected.shape)
        raise context.fail(
            f"{what}: the {expected_label} is not finite and the {actual_label} "
            "differs there",
            f"index {index}: {actual_label} {float(values[index])!r}, "
            f"{expected_label} {float(expected[index])!r}",
        )
    if allowed is None:
        allowed = tol.allowed(dtype, expected, rounding)
    allowed = np.broadcast_to(np.asarray(allowed, dtype=np.float64), expected.shape)
    error = np.where(finite, np.abs(values - expected), 0.0)
    failing = error > allowed
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(error == 0, 0.0, error / allowed)
    if ratios.size:
        checks.observe(float(ratios.max()), what)
    if not failing.any():
        return
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(error == 0, 0.0, error / np.abs(expected))
        excess = np.where(failing, ratios, 0.0)
    worst = _index(int(np.argmax(excess)), expected.shape)
    largest = _index(int(np.argmax(error)), expected.shape)
    raise context.fail(
        f"{what}: values differ ({context.where()})",
        f"output shape: {expected.shape}",
        f"mismatched elements: {int(failing.sum())} of {failing.size}",
        f"max abs error: {float(error.max()):.6g} at index {largest}",
        f"max rel error: {float(relative.max()):.6g}",
        f"worst index {worst}: {actual_label} {float(values[worst])!r}, "
        f"{expected_label} {float(expected[worst])!r}, |difference| "
        f"{error[worst]:.6g} > allowed "
        f"{allowed[worst]:.6g}",
        explain or tol.describe(dtype, expected_label, rounding=rounding is not None),
    )


def assert_unchanged(
    original: np.ndarray, after: np.ndarray, name: str, backend: str, context: Context
) -> None:
    """Fail if an input array was modified by the call (no op mutates its inputs)."""
    same = original.shape == after.shape and np.array_equal(
        original, after, equal_nan=original.dtype.kind == "f"
    )
    if not same:
        raise context.fail(
            f"backend {backend} op {context.op} modified its input {name!r} in place",
            "the contract: no op modifies its inputs; an optimizer step may update "
            "param and its state in place, never grad",
        )
