"""Invalid input: the reference, the NumPy backend and the torch backend agree.

One validation layer (:mod:`reference._checks`, :mod:`reference.shapes`) is
called by all three, so for every invalid argument they must raise the same
exception type with a message that starts with the same argument's name. The
table :data:`INVALID` lists, per kind of argument, values that are wrong
(``None``, bool, complex and integer arrays where floats are required, NaN or
out-of-range probabilities and targets, negative variances, bools and absurd
values for integers, zero channels); :data:`OPS` lists ops with a valid call
and the kind of each argument. A Hypothesis property draws an op, an argument
and a wrong value for it; a plain test walks the whole table once.

The memory limit: ops whose input, output or workspace would exceed
``NNSPEC_MAX_BYTES`` refuse with a ``ValueError`` giving the bytes they would
need, before allocating (huge inputs are zero-stride views; tracemalloc sees
that the reference and the NumPy backend allocate nothing large).
"""

from __future__ import annotations

import math
import re
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import reference
from backends import contract
from reference import _checks

# ---------------------------------------------------------------- implementations


def _torch_backend() -> Any:
    backend = contract.load("torch")
    return None if contract.unavailable_reason(backend) else backend


NUMPY = contract.load("numpy")
TORCH = _torch_backend()
IMPLEMENTATIONS = ("reference", "numpy", "torch")


class State:
    """Stands for an optimizer state: each implementation makes its own."""

    def __init__(self, optimizer: str, param: np.ndarray) -> None:
        self.optimizer, self.param = optimizer, param


def native(implementation: str, value: Any) -> Any:
    """``value`` as the implementation takes it (arrays of any dtype kept as is)."""
    if implementation == "reference":
        if isinstance(value, State):
            return reference.init_state(value.optimizer, value.param)
        return value
    backend = NUMPY if implementation == "numpy" else TORCH
    if isinstance(value, State):
        return backend.init_state(value.optimizer, native(implementation, value.param))
    if isinstance(value, list):
        return [native(implementation, v) for v in value]
    if not isinstance(value, np.ndarray):
        return value
    if value.dtype.kind == "f":
        return backend.asarray(value, "float64")
    if implementation == "numpy":
        return value.copy()
    import torch

    return torch.from_numpy(value.copy())


def call(implementation: str, op: str, positional: tuple, keywords: dict) -> Any:
    if implementation == "reference":
        function = getattr(reference, op)
    else:
        function = getattr(NUMPY if implementation == "numpy" else TORCH, op)
    args = [native(implementation, v) for v in positional]
    kwargs = {k: native(implementation, v) for k, v in keywords.items()}
    return function(*args, **kwargs)


# ---------------------------------------------------------------- the ops

_RNG = np.random.default_rng(0)


def _floats(*shape: int) -> np.ndarray:
    return _RNG.standard_normal(shape)


def _unit(*shape: int) -> np.ndarray:
    return _RNG.uniform(0.1, 0.9, shape)


@dataclass(frozen=True)
class Op:
    """A valid call of ``name`` and the kind of each argument."""

    name: str
    positional: tuple[str, ...]
    arguments: dict[str, tuple[str, Any]]  # name -> (kind, valid value)

    def split(self, values: dict[str, Any]) -> tuple[tuple, dict]:
        positional = tuple(values[n] for n in self.positional)
        keywords = {n: v for n, v in values.items() if n not in self.positional}
        return positional, keywords


def _op(op: str, positional: str, /, **arguments: tuple[str, Any]) -> Op:
    return Op(op, tuple(positional.split()), arguments)


OPS: tuple[Op, ...] = (
    _op("relu", "x", x=("float", _floats(3, 4))),
    _op(
        "sigmoid_backward",
        "dout x",
        dout=("float", _floats(3, 4)),
        x=("float", _floats(3, 4)),
    ),
    _op(
        "linear",
        "x w b",
        x=("float", _floats(2, 3)),
        w=("float", _floats(4, 3)),
        b=("float", _floats(4)),
    ),
    _op(
        "conv2d",
        "x w b",
        x=("float channels", _floats(2, 3, 6, 6)),
        w=("float", _floats(4, 3, 3, 3)),
        b=("float", _floats(4)),
        stride=("int", 1),
        padding=("int or zero", 1),
    ),
    _op(
        "max_pool2d",
        "x",
        x=("float", _floats(1, 2, 6, 6)),
        kernel_size=("int", 2),
        stride=("int or None", 2),
        padding=("int or zero", 1),
    ),
    _op(
        "avg_pool2d",
        "x",
        x=("float", _floats(1, 2, 6, 6)),
        kernel_size=("int", 2),
        stride=("int or None", 2),
    ),
    _op(
        "batch_norm",
        "x gamma beta running_mean running_var",
        x=("float channels", _floats(4, 3)),
        gamma=("float", _floats(3)),
        beta=("float", _floats(3)),
        running_mean=("float", _floats(3)),
        running_var=("variance", _unit(3)),
        training=("flag", False),
        momentum=("unit real", 0.1),
        eps=("positive real", 1e-5),
    ),
    _op(
        "dropout_mask",
        "",
        shape=("shape", (3, 4)),
        p=("unit real", 0.5),
        seed=("seed", 1),
    ),
    _op(
        "dropout",
        "x mask",
        x=("float", _floats(3, 4)),
        mask=("mask", _floats(3, 4) > 0),
        p=("unit real", 0.5),
        training=("flag", True),
    ),
    _op("softmax", "x", x=("float", _floats(3, 4)), axis=("axis", 1)),
    _op(
        "upsample2d",
        "x",
        x=("float", _floats(1, 2, 3, 3)),
        scale_factor=("positive int", 2),
        mode=("mode", "bilinear"),
    ),
    _op(
        "binary_cross_entropy",
        "prob target",
        prob=("probability", _unit(3, 2)),
        target=("probability", _unit(3, 2)),
    ),
    _op(
        "binary_cross_entropy_with_logits",
        "logits target",
        logits=("float", _floats(3, 2)),
        target=("probability", _unit(3, 2)),
    ),
    _op(
        "softmax_cross_entropy",
        "logits labels",
        logits=("float", _floats(3, 4)),
        labels=("labels", np.array([0, 3, 1])),
    ),
    _op(
        "multiclass_hinge_loss",
        "scores labels",
        scores=("float", _floats(3, 4)),
        labels=("labels", np.array([0, 3, 1])),
        margin=("non-negative real", 1.0),
    ),
    _op(
        "mse_loss_backward",
        "dout pred target",
        dout=("float", np.array(1.0)),
        pred=("float", _floats(3, 2)),
        target=("float", _floats(3, 2)),
    ),
    _op(
        "initialize",
        "name shape",
        name=("initializer", "he_normal"),
        shape=("shape", (4, 3)),
        seed=("seed", 2),
        dtype=("dtype", "float64"),
    ),
    _op(
        "sgd_step",
        "param grad state",
        param=("float", _floats(5)),
        grad=("float", _floats(5)),
        state=("state", State("sgd", np.zeros(5))),
        lr=("positive real", 0.1),
        momentum=("unit real", 0.9),
        nesterov=("flag", True),
        weight_decay=("non-negative real", 0.0),
    ),
    _op(
        "adam_step",
        "param grad state",
        param=("float", _floats(5)),
        grad=("float", _floats(5)),
        state=("state", State("adam", np.zeros(5))),
        lr=("positive real", 0.01),
        beta1=("unit real", 0.9),
        eps=("positive real", 1e-8),
    ),
    _op(
        "clip_grad_norm",
        "grads",
        grads=("grads", [_floats(3), _floats(2, 2)]),
        max_norm=("positive real", 1.0),
    ),
)


# ---------------------------------------------------------------- invalid values


def _with(array: np.ndarray, value: float) -> np.ndarray:
    """``array`` with its first entry replaced by ``value``."""
    array = array.copy()
    array.flat[0] = value
    return array


def _no_channels(array: np.ndarray) -> np.ndarray:
    return np.zeros((array.shape[0], 0, *array.shape[2:]))


_FLOAT_KINDS: dict[str, Callable[[np.ndarray], Any]] = {
    "None": lambda a: None,
    "bool array": lambda a: a > 0,
    "complex array": lambda a: a + 1j,
    "int array": lambda a: np.round(a).astype(np.int64),
}
_REAL: dict[str, Callable[[Any], Any]] = {
    "NaN": lambda v: math.nan,
    "inf": lambda v: math.inf,
    "bool": lambda v: True,
    "None": lambda v: None,
    "string": lambda v: "0.1",
}

#: kind of argument -> {description: function of the valid value -> invalid value}
INVALID: dict[str, dict[str, Callable[[Any], Any]]] = {
    "float": _FLOAT_KINDS,
    "float channels": {**_FLOAT_KINDS, "zero channels": _no_channels},
    "probability": {
        **_FLOAT_KINDS,
        "NaN entry": lambda a: _with(a, math.nan),
        "negative entry": lambda a: _with(a, -0.5),
        "entry above 1": lambda a: _with(a, 1.5),
    },
    "variance": {
        **_FLOAT_KINDS,
        "negative entry": lambda a: _with(a, -1.0),
        "NaN entry": lambda a: _with(a, math.nan),
    },
    "labels": {
        "None": lambda a: None,
        "float labels": lambda a: a.astype(np.float64),
        "bool labels": lambda a: a > 0,
        "label out of range": lambda a: _with(a, 99),
        "negative label": lambda a: _with(a, -1),
    },
    "mask": {
        "None": lambda a: None,
        "float mask": lambda a: a.astype(np.float64),
        "int mask": lambda a: a.astype(np.int64),
    },
    "int": {
        "True": lambda v: True,
        "2**63": lambda v: 2**63,
        "float": lambda v: 1.5,
        "zero": lambda v: 0,
        "None": lambda v: None,
    },
    "int or None": {
        "True": lambda v: True,
        "2**63": lambda v: 2**63,
        "float": lambda v: 1.5,
        "zero": lambda v: 0,
    },
    "int or zero": {
        "True": lambda v: True,
        "2**63": lambda v: 2**63,
        "negative": lambda v: -1,
        "float": lambda v: 1.0,
    },
    "positive int": {
        "True": lambda v: True,
        "2**63": lambda v: 2**63,
        "zero": lambda v: 0,
        "float": lambda v: 2.0,
    },
    "flag": {"int": lambda v: 1, "string": lambda v: "yes", "None": lambda v: None},
    "seed": {
        "True": lambda v: True,
        "negative": lambda v: -1,
        "float": lambda v: 1.0,
        "None": lambda v: None,
    },
    "shape": {
        "bool size": lambda v: (True, *v[1:]),
        "negative size": lambda v: (-1, *v[1:]),
        "float size": lambda v: (2.0, *v[1:]),
        "None": lambda v: None,
    },
    "axis": {
        "True": lambda v: True,
        "float": lambda v: 1.0,
        "out of range": lambda v: 5,
        "2**63": lambda v: 2**63,
    },
    "mode": {"unknown": lambda v: "cubic", "None": lambda v: None},
    "initializer": {"unknown": lambda v: "glorot"},
    "dtype": {"unknown": lambda v: "float16"},
    "state": {"not a dict": lambda v: [1, 2]},
    "grads": {"an array": lambda v: v[0], "None": lambda v: None},
    "unit real": {**_REAL, "negative": lambda v: -0.1, "one": lambda v: 1.5},
    "positive real": {**_REAL, "zero": lambda v: 0.0, "negative": lambda v: -1.0},
    "non-negative real": {**_REAL, "negative": lambda v: -1.0},
}

#: Every (op, argument, invalid value) of the tables.
CASES: tuple[tuple[Op, str, str], ...] = tuple(
    (op, argument, description)
    for op in OPS
    for argument, (kind, _) in op.arguments.items()
    for description in INVALID[kind]
)


def _leading_name(message: str) -> str:
    """The argument a message names first (``state['step']`` included)."""
    match = re.match(r"[A-Za-z_][\w]*(\[[^\]]*\])?", message)
    return match.group(0) if match else ""


def outcomes(op: Op, argument: str, description: str) -> dict[str, BaseException]:
    """What each implementation raises for ``op`` with ``argument`` made invalid."""
    kind, valid = op.arguments[argument]
    values = {name: value for name, (_, value) in op.arguments.items()}
    values[argument] = INVALID[kind][description](valid)
    if kind == "float channels" and description == "zero channels":
        # Keep the other arguments consistent with the missing channels.
        if op.name == "conv2d":
            values["w"] = np.zeros((4, 0, 3, 3))
        else:
            values["x"] = np.zeros((4, 0))
    positional, keywords = op.split(values)
    raised: dict[str, BaseException] = {}
    for implementation in IMPLEMENTATIONS:
        if implementation == "torch" and TORCH is None:
            continue
        try:
            call(implementation, op.name, positional, keywords)
        except Exception as error:  # every type counts: the test compares them
            raised[implementation] = error
        else:
            raised[implementation] = None  # type: ignore[assignment]
    return raised


def check_agreement(op: Op, argument: str, description: str) -> None:
    where = f"{op.name}({argument} = {description})"
    raised = outcomes(op, argument, description)
    accepted = [name for name, error in raised.items() if error is None]
    assert not accepted, f"{where}: accepted by {accepted}; raised {raised}"
    for name, error in raised.items():
        assert isinstance(error, ValueError), (
            f"{where}: {name} raised {type(error).__name__}: {error}"
        )
        assert _leading_name(str(error)) == argument or (
            argument == "shape" and op.name == "initialize"
        ), f"{where}: {name}'s message does not start with {argument!r}: {error}"
    types = {name: type(error) for name, error in raised.items()}
    assert len(set(types.values())) == 1, f"{where}: different exceptions {types}"
    names = {name: _leading_name(str(error)) for name, error in raised.items()}
    assert len(set(names.values())) == 1, f"{where}: different arguments {names}"


@given(st.sampled_from(CASES))
def test_the_three_reject_invalid_input_alike(case: tuple[Op, str, str]) -> None:
    """A drawn op, argument and invalid value: same exception, same argument."""
    check_agreement(*case)


def test_every_invalid_input_of_the_table_is_rejected_alike() -> None:
    """The whole table once: no row is left to chance."""
    failures = []
    for case in CASES:
        try:
            check_agreement(*case)
        except AssertionError as error:
            failures.append(str(error))
    assert not failures, f"{len(failures)} of {len(CASES)} rows:\n" + "\n".join(
        failures
    )


def test_wrong_kinds_are_type_errors_and_wrong_values_value_errors() -> None:
    """None, bool, complex and integer arrays: TypeError (and ValueError)."""
    relu = next(op for op in OPS if op.name == "relu")
    for description in _FLOAT_KINDS:
        for error in outcomes(relu, "x", description).values():
            assert isinstance(error, TypeError), f"relu(x = {description}): {error!r}"
    bce = next(op for op in OPS if op.name == "binary_cross_entropy")
    for error in outcomes(bce, "prob", "NaN entry").values():
        assert type(error) is ValueError, f"bce(prob = NaN entry): {error!r}"


# ---------------------------------------------------------------- memory limit


def _huge(shape: tuple[int, ...]) -> np.ndarray:
    """A float64 array of ``shape`` that holds one value (a zero-stride view)."""
    return np.broadcast_to(np.zeros(1), shape)


def _native_huge(implementation: str, shape: tuple[int, ...]) -> Any:
    if implementation == "reference":
        return _huge(shape)
    if implementation == "numpy":
        return _huge(shape)
    import torch

    return torch.zeros(1, dtype=torch.float64).expand(*shape)


def _small(shape: tuple[int, ...]) -> np.ndarray:
    return np.ones(shape)


HUGE = 10**6
#: op, its arguments (``huge`` shapes become zero-stride views), the argument
#: the message names, and the bytes it would need.
MEMORY_CASES: tuple[tuple[str, tuple, dict, str, int], ...] = (
    ("relu", (("huge", (HUGE, HUGE)),), {}, "x", 8 * HUGE**2),
    (
        "conv2d",
        (("huge", (1, 1, HUGE, HUGE)), ("small", (1, 1, 1, 1)), ("small", (1,))),
        {},
        "x",
        8 * HUGE**2,
    ),
    (
        "conv2d",
        (("small", (1, 1, 4, 4)), ("small", (1, 1, 1, 1)), ("small", (1,))),
        {"padding": 2**20, "stride": 2**20},
        "padding",
        8 * (4 + 2**21) ** 2,
    ),
    (
        "linear",
        (("small", (10**5, 1)), ("small", (10**5, 1)), ("small", (10**5,))),
        {},
        "x",
        8 * 10**10,
    ),
    (
        "upsample2d",
        (("small", (1, 1, 100, 100)),),
        {"scale_factor": 10**4, "mode": "nearest"},
        "scale_factor",
        8 * 10**12,
    ),
    (
        "max_pool2d",
        (("small", (1, 1, 4, 4)),),
        {"kernel_size": 2**21, "padding": 2**20},
        "padding",
        8 * (4 + 2**21) ** 2,
    ),
    (
        "dropout_mask",
        (),
        {"shape": (HUGE, HUGE), "p": 0.5, "seed": 0},
        "shape",
        8 * HUGE**2,
    ),
    (
        "initialize",
        ("normal", (HUGE, HUGE)),
        {"seed": 0, "dtype": "float64"},
        "shape",
        8 * HUGE**2,
    ),
)


def _memory_arguments(implementation: str, arguments: tuple, keywords: dict):
    args = []
    for argument in arguments:
        if isinstance(argument, tuple) and argument and argument[0] == "huge":
            args.append(_native_huge(implementation, argument[1]))
        elif isinstance(argument, tuple) and argument and argument[0] == "small":
            args.append(native(implementation, _small(argument[1])))
        else:
            args.append(argument)
    return args, keywords


@pytest.mark.parametrize(
    "case", MEMORY_CASES, ids=[f"{c[0]}-{c[3]}" for c in MEMORY_CASES]
)
def test_ops_refuse_before_allocating_past_the_memory_limit(case: tuple) -> None:
    """A ValueError naming the argument and the bytes needed; nothing large made."""
    op, arguments, keywords, argument, need = case
    for implementation in IMPLEMENTATIONS:
        if implementation == "torch" and TORCH is None:
            continue
        args, kwargs = _memory_arguments(implementation, arguments, keywords)
        if implementation == "reference":
            function = getattr(reference, op)
        else:
            function = getattr(NUMPY if implementation == "numpy" else TORCH, op)
        where = f"{op} on {implementation}"
        tracemalloc.start()
        try:
            with pytest.raises(ValueError) as raised:
                function(*args, **kwargs)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        message = str(raised.value)
        assert _leading_name(message) == argument, f"{where}: {message}"
        assert f"would need {need} bytes" in message, f"{where}: {message}"
        assert _checks.MAX_BYTES_VARIABLE in message, f"{where}: {message}"
        assert peak < 64 << 20, f"{where}: allocated {peak} bytes before refusing"


def test_the_limit_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    """NNSPEC_MAX_BYTES lowers the limit for every implementation; junk is refused."""
    x = np.ones((4, 4))
    monkeypatch.setenv(_checks.MAX_BYTES_VARIABLE, "64")
    for implementation in IMPLEMENTATIONS:
        if implementation == "torch" and TORCH is None:
            continue
        with pytest.raises(ValueError, match=r"^x: .* would need 128 bytes"):
            call(implementation, "relu", (x,), {})
    monkeypatch.setenv(_checks.MAX_BYTES_VARIABLE, "128")
    reference.relu(x)
    NUMPY.relu(x)
    monkeypatch.setenv(_checks.MAX_BYTES_VARIABLE, "two gigabytes")
    with pytest.raises(ValueError, match=_checks.MAX_BYTES_VARIABLE):
        reference.relu(x)
