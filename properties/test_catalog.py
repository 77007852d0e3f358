"""The op catalog itself: complete, consistent, and drawing valid inputs.

* its names are exactly the contract's operations (no missing, no extra);
* every entry is well formed (family, kind, gradients among the arguments,
  a sanity check for the random ops, unique case ids);
* every reference function the contract names exists in the reference
  modules, every differentiable op has a reference backward and the others
  have none;
* every strategy draws inputs the reference accepts, in float64 and rounded to
  float32, with finite outputs, and every variant draws what its name says
  (batch norm 1d/2d x train/eval, dropout train/eval, each upsampling mode,
  each initializer and optimizer).
"""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from backends.contract import (
    BACKWARD_OPERATIONS,
    INITIALIZER_NAMES,
    NOT_DIFFERENTIABLE,
    OPERATIONS,
    OPTIMIZER_NAMES,
)
from properties.catalog import (
    BY_NAME,
    CASES,
    CATALOG,
    FAMILIES,
    KINDS,
    OpInfo,
    Sample,
    reference_function,
)
from properties.strategies import upstream


def case_id(op: OpInfo) -> str:
    return op.id


def test_names_are_exactly_the_contract_operations() -> None:
    names = [op.name for op in CATALOG]
    duplicated = sorted(name for name, count in Counter(names).items() if count > 1)
    missing = [name for name in OPERATIONS if name not in names]
    extra = [name for name in names if name not in OPERATIONS]
    assert not (duplicated or missing or extra), (
        f"the catalog must hold each contract operation once: missing {missing}, "
        f"extra {extra}, duplicated {duplicated}"
    )
    assert set(BY_NAME) == set(OPERATIONS), "BY_NAME does not index every entry"


@pytest.mark.parametrize("op", CATALOG, ids=lambda op: op.name)
def test_entry_is_well_formed(op: OpInfo) -> None:
    problems = []
    if op.family not in FAMILIES:
        problems.append(f"family {op.family!r} is not one of {FAMILIES}")
    if op.kind not in KINDS:
        problems.append(f"kind {op.kind!r} is not one of {KINDS}")
    unknown = [g for g in op.differentiable if g not in op.arguments]
    if unknown:
        problems.append(f"gradients {unknown} are not arguments {op.arguments}")
    if len(set(op.differentiable)) != len(op.differentiable):
        problems.append(f"gradients {op.gradients} name an argument twice")
    if (op.name in NOT_DIFFERENTIABLE) == bool(op.gradients):
        problems.append(
            f"gradients {op.gradients} disagree with the contract "
            f"({'not ' if op.name in NOT_DIFFERENTIABLE else ''}differentiable)"
        )
    if op.gradients and op.kind != "deterministic":
        problems.append(f"a {op.kind} op cannot have gradients")
    if op.kind == "random" and op.sanity is None:
        problems.append("a random op needs a sanity check")
    if set(op.argument_ranges) - set(op.arguments):
        problems.append(
            f"argument_ranges {sorted(op.argument_ranges)} name unknown arguments"
        )
    if len(set(op.variants)) != len(op.variants):
        problems.append(f"variants {op.variants} repeat")
    if not op.outputs or not op.domain:
        problems.append("outputs and domain must be given")
    assert not problems, f"catalog entry {op.name!r}: " + "; ".join(problems)


def test_case_ids_are_unique() -> None:
    ids = [case.id for case in CASES]
    repeated = sorted(i for i, count in Counter(ids).items() if count > 1)
    assert not repeated, f"case ids repeat: {repeated}"


@pytest.mark.parametrize("name", OPERATIONS + BACKWARD_OPERATIONS)
def test_reference_function_exists(name: str) -> None:
    try:
        function = reference_function(name)
    except LookupError as error:
        pytest.fail(str(error), pytrace=False)
    assert callable(function)


@pytest.mark.parametrize("op", CATALOG, ids=lambda op: op.name)
def test_reference_backward_matches_differentiability(op: OpInfo) -> None:
    name = f"{op.name}_backward"
    if op.gradients:
        assert callable(op.backward), f"{op.name} is differentiable: needs {name}"
        return
    with pytest.raises(LookupError):
        reference_function(name)


def _run_reference(op: OpInfo, sample: Sample, dout_seed: int) -> list[np.ndarray]:
    """Every output the tests compute from ``sample`` with the reference."""
    if op.kind == "deterministic":
        outputs = list(op.reference_outputs(sample))
        dout = np.asarray(
            np.random.default_rng(dout_seed).standard_normal(outputs[0].shape)
        )
        if op.gradients:
            gradients = op.reference_gradients(dout, sample)
            outputs += [g for g in gradients if g is not None]
        return outputs
    if op.kind == "random":
        extra = {"dtype": "float64"} if op.takes_dtype else {}
        return [op.forward(*sample.arguments, **sample.hyper, **extra)]
    if op.kind == "optimizer":
        name = op.optimizer or op.variant
        (param,) = sample.arguments
        state = reference_function("init_state")(name, param)
        step = reference_function(f"{name}_step")
        params = []
        for grad in sample.steps:
            param, state = step(param, grad, state, **sample.hyper)
            params.append(param)
        return params
    grads, total_norm = op.forward(*sample.arguments, **sample.hyper)
    return [*grads, np.asarray(total_norm)]


@pytest.mark.parametrize("op", CASES, ids=case_id)
@given(data=st.data())
def test_strategy_draws_inputs_the_reference_accepts(
    op: OpInfo, data: st.DataObject
) -> None:
    """Drawn samples, as drawn and rounded to float32, run through the reference."""
    sample = data.draw(op.strategy(), label="sample")
    seed = data.draw(st.integers(0, 2**32 - 1), label="dout seed")
    for dtype in ("float64", "float32"):
        rounded = sample.rounded(dtype)
        note(f"{op.id}, inputs rounded to {dtype}")
        try:
            outputs = _run_reference(op, rounded, seed)
        except Exception as error:
            raise AssertionError(
                f"the reference rejects a sample drawn for {op.id} (rounded to "
                f"{dtype}): {type(error).__name__}: {error}"
            ) from error
        for i, output in enumerate(outputs):
            values = np.asarray(output, dtype=np.float64)
            assert np.all(np.isfinite(values)), (
                f"{op.id}: output {i} of the reference is not finite on a drawn "
                f"sample (rounded to {dtype})"
            )


def _batch_norm_variant(sample: Sample, variant: str) -> bool:
    layout, mode = variant.split("-")
    x = sample.arguments[0]
    return x.ndim == (2 if layout == "1d" else 4) and sample.hyper["training"] == (
        mode == "train"
    )


#: What each variant must draw, by op name.
VARIANT_CHECKS: dict[str, Callable[[Sample, str], bool]] = {
    "batch_norm": _batch_norm_variant,
    "dropout": lambda sample, variant: sample.hyper["training"] == (variant == "train"),
    "upsample2d": lambda sample, variant: sample.hyper["mode"] == variant,
    "initialize": lambda sample, variant: sample.arguments[0] == variant,
    "init_state": lambda sample, variant: all(
        key in _optimizer_keys(variant) for key in sample.hyper
    ),
}


def _optimizer_keys(name: str) -> set[str]:
    step = reference_function(f"{name}_step")
    return {
        p.name
        for p in inspect.signature(step).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def test_variants_cover_the_required_cases() -> None:
    assert BY_NAME["batch_norm"].variants == (
        "1d-train",
        "1d-eval",
        "2d-train",
        "2d-eval",
    )
    assert set(BY_NAME["initialize"].variants) == set(INITIALIZER_NAMES)
    assert set(BY_NAME["init_state"].variants) == set(OPTIMIZER_NAMES)
    assert set(BY_NAME["upsample2d"].variants) == {"nearest", "bilinear"}
    assert set(BY_NAME["dropout"].variants) == {"train", "eval"}
    steps = {op.optimizer for op in CATALOG if op.optimizer}
    assert steps == set(OPTIMIZER_NAMES), f"optimizer steps {steps}"


@pytest.mark.parametrize(
    "op", [case for case in CASES if case.name in VARIANT_CHECKS], ids=case_id
)
@given(data=st.data())
def test_variant_draws_what_it_names(op: OpInfo, data: st.DataObject) -> None:
    sample: Any = data.draw(op.strategy(), label="sample")
    assert VARIANT_CHECKS[op.name](sample, op.variant), (
        f"{op.id}: the sample does not match the variant {op.variant!r}: {sample!r}"
    )


@given(data=st.data())
def test_upstream_gradients_are_never_constant(data: st.DataObject) -> None:
    shape = data.draw(st.tuples(st.integers(2, 4), st.integers(1, 3)))
    dout = data.draw(upstream(shape))
    assert np.unique(dout).size > 1, f"constant upstream gradient {dout}"
