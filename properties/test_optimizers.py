r"""Optimizer trajectories, clipping and learning-rate schedules.

The contract: ``init_state(name, param)`` and
``<name>_step(param, grad, state, **hyper) -> (param, state)`` with
``torch.optim``'s formulas for ``sgd`` (momentum, Nesterov, weight decay),
``adagrad``, ``rmsprop``, ``adadelta``, ``adam`` and ``adamw`` (decoupled
weight decay); ``clip_grad_norm(grads,
*, max_norm) -> (grads, total_norm)`` scales by ``max_norm / total_norm``
only when the global norm exceeds ``max_norm``. The schedules of
``reference/schedules.py`` are reference-only.

The properties, each with the bug it catches (in its docstring):

* every backend's trajectory over :data:`properties.catalog.TRAJECTORY_STEPS`
  (50) steps, with the gradients and hyperparameters the catalog's optimizer
  entries draw, equals the reference's, step by step (and clipping is drawn
  by the catalog's clipping entry);
* SGD with momentum 0 (explicit or the default) is ``w -= lr (g + wd w)``;
* the notes' momentum ``v = gamma v + eta g; w -= v`` equals the torch form at
  a constant learning rate, and under a decaying one the backend follows the
  torch form (the two forms then differ, which the reference test proves);
* Adam's first step moves every coordinate by ``lr`` (bias correction);
* AdamW with weight decay 0 is Adam; scaling the gradients changes its steps
  only through ``eps``; and it is not Adam with an L2 term (the decay is
  decoupled);
* the catalog's hyperparameter strategy draws the cases where the formulas
  differ (Nesterov, momentum with weight decay: :mod:`properties.draws`);
* every optimizer decreases a convex quadratic from any start;
* global-norm clipping caps the norm at ``max_norm`` and keeps the direction;
* the learning-rate schedules are non-increasing, start at ``lr0`` and end
  where they should.

Nothing here is statistical. Tolerances are rounding bounds from
:mod:`properties.tolerance`: the dtype's ``atol + rtol |expected|`` plus
:math:`8u` times the magnitudes summed along the trajectory
(:func:`properties.tolerance.trajectory`), and a relative :math:`8u(n + 2)` for
a global norm of ``n`` entries (:func:`properties.tolerance.norm_relative`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from properties import catalog, draws, strategies
from properties import tolerance as tol
from properties.assertions import (
    Context,
    assert_close,
    assert_unchanged,
    call_backend,
    expect_native,
    expect_tuple,
    fixtures_shared,
    flush_subnormals,
    init_state,
    require_operations,
    to_numpy,
)
from properties.catalog import TRAJECTORY_STEPS, OpInfo, Sample
from properties.catalog.optimizers import OPTIMIZER_HYPER, adam_moments
from properties.reference_backend import REFERENCE
from reference import optimizers as reference_optimizers
from reference import schedules

#: The catalog's optimizer steps, one per optimizer (``init_state``'s cases
#: draw the same trajectories: each step entry runs ``init_state`` first).
OPTIMIZER_STEPS: dict[str, OpInfo] = {
    case.optimizer: case for case in catalog.cases("optimizer") if case.optimizer
}

#: The catalog's one clipping entry.
(CLIPPING,) = catalog.cases("clipping")


def _rounded(a: np.ndarray, dtype: str) -> np.ndarray:
    """``a`` rounded to ``dtype`` (as float64), subnormals flushed to 0.

    A float64 draw of 1e-44 is a float32 subnormal: multiplied by a weight
    decay it underflows to 0 in float32 and not in float64, and Adam, whose
    step is ``lr g / (|g| + eps)``, turns that absolute difference into a
    relative one of order 1 (the float64 run grows by ``lr wd / eps`` per
    step from 1e-44 to 1). Subnormal inputs test the hardware's gradual
    underflow, not the optimizer; GPUs flush them anyway.
    """
    return flush_subnormals(a, dtype)


def run_trajectory(
    impl: Any,
    dtype: str,
    name: str,
    param: np.ndarray,
    grads: Sequence[np.ndarray] | Callable[[np.ndarray], np.ndarray],
    hyper: dict[str, Any],
    context: Context,
    *,
    steps: int = TRAJECTORY_STEPS,
    learning_rates: Sequence[float] | None = None,
) -> list[np.ndarray]:
    """The parameter after each of ``steps`` steps, on the host.

    ``grads`` is a list (one gradient per step) or a function of the current
    parameter (a loss's gradient). The state and the parameter returned by a
    step are passed to the next one (a backend may update them in place);
    ``learning_rates``, if given, replaces ``lr`` step by step.

    Checked on the way: ``init_state`` leaves the parameter alone, every step
    returns a native parameter of the right shape and dtype and a ``dict``
    state, and leaves the gradient alone.
    """
    # Copies in: the step may update the native param in place, and asarray
    # may wrap the host array. Copies out: to_numpy copies (it may be a view).
    native = impl.asarray(np.array(param, copy=True), dtype)
    native_type = type(native)
    state = init_state(impl, name, native, hyper, context)
    assert_unchanged(
        np.asarray(param).astype(dtype),
        to_numpy(impl, native, "param after init_state", context),
        "param (init_state)",
        impl.name,
        context,
    )
    history = []
    current = param
    for t in range(steps):
        gradient = grads(current) if callable(grads) else grads[t]
        step_hyper = dict(hyper)
        if learning_rates is not None:
            step_hyper["lr"] = learning_rates[t]
        native_gradient = impl.asarray(np.array(gradient, copy=True), dtype)
        result = call_backend(
            impl,
            f"{name}_step",
            (native, native_gradient, state),
            step_hyper,
            context,
        )
        native, state = expect_tuple(
            result, 2, f"{name}_step", impl.name, f"{name}_step", context
        )
        if not isinstance(state, dict):
            raise context.fail(
                f"{name}_step: backend {impl.name} returned a state of type "
                f"{type(state).__name__} at step {t + 1}, not a dict"
            )
        expect_native(
            native, native_type, f"param after step {t + 1}", impl.name, context
        )
        assert_unchanged(
            np.asarray(gradient).astype(dtype),
            to_numpy(impl, native_gradient, f"grad of step {t + 1}", context),
            f"grad (step {t + 1})",
            impl.name,
            context,
        )
        current = to_numpy(impl, native, f"param after step {t + 1}", context)
        if current.shape != param.shape or current.dtype != np.dtype(dtype):
            raise context.fail(
                f"{name}_step returned a parameter of {current.dtype}"
                f"{list(current.shape)}, expected {dtype}{list(param.shape)}"
            )
        history.append(current)
    return history


def compare_trajectories(
    actual: Sequence[np.ndarray],
    expected: Sequence[np.ndarray],
    start: np.ndarray,
    dtype: str,
    context: Context,
    *,
    expected_label: str = "reference",
) -> None:
    for t, (got, want, allowed) in enumerate(
        zip(actual, expected, tol.trajectory(start, expected, dtype), strict=True),
        start=1,
    ):
        assert_close(
            got,
            want,
            dtype=dtype,
            what=f"param after step {t} of {len(expected)}",
            context=context,
            allowed=allowed,
            expected_label=expected_label,
            explain="tolerance: atol + rtol |w_t| + 8 u sum over steps of "
            "(|w| + (tau + 4) |update|) (rounding accumulated along the trajectory)",
        )


# ---------------------------------------------------------------------------
# Trajectories equal the reference's
# ---------------------------------------------------------------------------


def trajectory_inputs(sample: Sample, dtype: str) -> tuple[np.ndarray, list]:
    """The parameter and the gradients of an optimizer sample, rounded to ``dtype``."""
    (param,) = sample.arguments
    return _rounded(param, dtype), [_rounded(g, dtype) for g in sample.steps]


def check_trajectory(impl: Any, dtype: str, name: str, sample: Sample) -> None:
    r"""``TRAJECTORY_STEPS`` steps of the backend equal the reference's, step by step.

    Gradients and the starting parameter are rounded to the dtype first, so
    both runs see the same numbers; the reference runs in float64. Compared
    after every step within :func:`properties.tolerance.trajectory`.

    Bugs caught: Adam without bias correction or with AdamW's decoupled decay,
    a step counter that does not advance, SGD momentum with dampening, a
    Nesterov step on the old buffer, weight decay dropped or applied after
    the momentum, Adagrad's accumulator excluding the current gradient (the
    notes' off-by-one), RMSprop or Adadelta with ``alpha``/``rho`` and its
    complement swapped, ``eps`` inside instead of outside the square root
    (where it shows), state not carried from step to step.
    """
    param, grads = trajectory_inputs(sample, dtype)
    hyper = dict(sample.hyper)
    context = Context(
        op=f"{name}_step",
        backend=impl.name,
        dtype=dtype,
        inputs={"param": param.shape},
        hyper={**hyper, "steps": TRAJECTORY_STEPS},
    )
    actual = run_trajectory(impl, dtype, name, param, grads, hyper, context)
    expected = run_trajectory(REFERENCE, "float64", name, param, grads, hyper, context)
    compare_trajectories(actual, expected, param, dtype, context)


@pytest.mark.parametrize("op", OPTIMIZER_STEPS.values(), ids=lambda op: op.id)
@fixtures_shared
@given(data=st.data())
def test_optimizer_trajectory(backend: Any, dtype: str, op: OpInfo, data) -> None:
    """See :func:`check_trajectory` (``op`` is the catalog's step entry)."""
    require_operations(backend, "init_state", op.name)
    check_trajectory(backend, dtype, op.optimizer, data.draw(op.strategy()))


#: Draws per optimizer in the coverage test of the strategies.
COVERAGE_DRAWS = 300


@pytest.mark.parametrize("name", sorted(draws.CATEGORIES))
def test_strategy_reaches_what_matters(name: str) -> None:
    """The hyperparameter strategy draws the cases where the formulas differ.

    ``COVERAGE_DRAWS`` derandomized draws of ``optimizer_hyper(name)`` (the
    strategy of every trajectory check) are
    sorted into :data:`properties.draws.CATEGORIES`; each category must get
    at least its :data:`~properties.draws.MINIMUM_FRACTIONS` share (Nesterov
    with momentum >= 0.1, momentum with weight decay >= 1e-3, ...) and none
    may draw a momentum or a weight decay too small to change a trajectory.
    Every trajectory takes ``TRAJECTORY_STEPS`` steps: at least 3, so that a momentum
    buffer or an accumulator is read after it was written.

    Bugs caught (in the suite): a strategy that draws Nesterov only with a
    momentum of 1e-180, or never momentum together with weight decay, so
    that a backend wrong exactly there passes.
    """
    drawn: list[dict[str, Any]] = []

    @settings(
        max_examples=COVERAGE_DRAWS, derandomize=True, database=None, deadline=None
    )
    @given(hyper=OPTIMIZER_HYPER[name]())
    def collect(hyper: dict[str, Any]) -> None:
        drawn.append(hyper)

    collect()
    tally: Counter = Counter()
    for hyper in drawn:
        tally[(name, "total")] += 1
        tally.update((name, category) for category in draws.categories(name, hyper))
    shares = draws.fractions(tally)
    report = "\n".join(draws.table(tally))
    for (optimizer, category), least in draws.MINIMUM_FRACTIONS.items():
        if optimizer == name:
            share = shares.get((name, category), 0.0)
            assert share >= least, (
                f"{name}: only {share:.1%} of {len(drawn)} draws are "
                f"'{category}' (at least {least:.0%} needed)\n{report}"
            )
    for (optimizer, category), most in draws.MAXIMUM_FRACTIONS.items():
        if optimizer == name:
            share = shares.get((name, category), 0.0)
            assert share <= most, (
                f"{name}: {share:.1%} of the draws are '{category}'\n{report}"
            )
    assert TRAJECTORY_STEPS >= 3


# ---------------------------------------------------------------------------
# Plain SGD
# ---------------------------------------------------------------------------


def check_sgd_without_momentum(
    impl: Any, dtype: str, sample: Sample, explicit: bool
) -> None:
    r"""With momentum 0, every SGD step is :math:`w \leftarrow w - \eta(g + \lambda w)`.

    Checked one step at a time from the backend's own previous parameter, so
    the tolerance is a single step's rounding: the dtype's, plus
    :math:`2uB` (:func:`properties.tolerance.rounding_term`) with
    :math:`B = 2(|w| + |\eta(g + \lambda w)| + \eta|g|)`, two roundings
    (a product, a sum) of each magnitude involved, for ``momentum=0`` passed
    explicitly and for the default.

    Bugs caught: a default momentum other than 0 (the notes' 0.9), a momentum
    buffer that leaks into plain SGD, the update added instead of subtracted,
    ``lr`` ignored or squared, weight decay ignored.
    """
    param, grads = trajectory_inputs(sample, dtype)
    hyper = {k: v for k, v in sample.hyper.items() if k in ("lr", "weight_decay")}
    if explicit:
        hyper["momentum"] = 0.0
    context = Context(
        op="sgd_step",
        backend=impl.name,
        dtype=dtype,
        inputs={"param": param.shape},
        hyper={**hyper, "steps": TRAJECTORY_STEPS},
        variant="momentum=0" if explicit else "momentum default",
    )
    history = run_trajectory(impl, dtype, "sgd", param, grads, hyper, context)
    lr, decay = hyper["lr"], hyper.get("weight_decay", 0.0)
    previous = param
    for t, (g, current) in enumerate(zip(grads, history, strict=True), start=1):
        previous64 = previous.astype(np.float64)
        update = lr * (g + decay * previous64)
        expected = previous64 - update
        allowed = tol.allowed(
            dtype,
            expected,
            rounding=2 * (np.abs(previous64) + np.abs(update) + lr * np.abs(g)),
        )
        assert_close(
            current,
            expected,
            dtype=dtype,
            what=f"step {t}: w - lr (g + weight_decay w) from the previous w",
            context=context,
            allowed=allowed,
            expected_label="plain SGD",
        )
        previous = current


@pytest.mark.reference_too
@pytest.mark.parametrize("explicit", [True, False], ids=["momentum0", "default"])
@fixtures_shared
@given(data=st.data())
def test_sgd_momentum_zero_is_plain_sgd(
    backend: Any, dtype: str, explicit, data
) -> None:
    """See :func:`check_sgd_without_momentum`."""
    require_operations(backend, "init_state", "sgd_step")
    check_sgd_without_momentum(
        backend, dtype, data.draw(OPTIMIZER_STEPS["sgd"].strategy()), explicit
    )


# ---------------------------------------------------------------------------
# The notes' momentum form
# ---------------------------------------------------------------------------


@st.composite
def momentum_cases(draw: st.DrawFn) -> dict[str, Any]:
    """A parameter, generic gradients (never zero), lr, momentum, a step schedule."""
    shape = draw(strategies.shapes(max_dims=2, max_side=4))
    rng = np.random.default_rng(draw(strategies.seeds()))
    return {
        "param": draw(strategies.arrays(shape)),
        "grads": [rng.standard_normal(shape) for _ in range(TRAJECTORY_STEPS)],
        "lr": draw(strategies.floats(1e-2, 0.5)),
        "momentum": draw(strategies.floats(0.5, 0.95)),
        "step_size": draw(st.integers(5, 20)),
        "gamma": draw(strategies.floats(0.1, 0.5)),
    }


def _notes_trajectory(param, grads, lr, momentum, learning_rates=None) -> list:
    """The notes' form ``v = gamma v + eta g; w -= v`` (reference, float64)."""
    state = reference_optimizers.init_state("sgd_momentum_notes", param)
    history, current = [], param
    for t, g in enumerate(grads):
        eta = lr if learning_rates is None else learning_rates[t]
        current, state = reference_optimizers.sgd_momentum_notes_step(
            current, g, state, lr=eta, momentum=momentum
        )
        history.append(current)
    return history


def check_notes_momentum(impl: Any, dtype: str, case: dict[str, Any]) -> None:
    r"""The notes' momentum equals the torch form at constant lr; not under a schedule.

    Notes 002: :math:`v_t = \gamma v_{t-1} + \eta g_t,\ w_t = w_{t-1} - v_t`;
    torch: :math:`b_t = \mu b_{t-1} + g_t,\ w_t = w_{t-1} - \eta b_t`. With a
    constant :math:`\eta`, :math:`v_t = \eta b_t` and the iterates agree: the
    backend's ``sgd_step`` over ``TRAJECTORY_STEPS`` steps must equal
    ``reference.optimizers.sgd_momentum_notes_step``. Under a step-decay
    schedule (``lr0 * gamma**(t // step_size)``) the forms differ, and the
    backend must follow the torch form (the reference ``sgd_step``).

    Bugs caught: a momentum buffer that is not carried between steps, that
    starts from something other than 0 (or the first gradient), that is
    scaled by ``lr`` twice; a backend that implements the notes' form (it
    stores :math:`\eta b` and keeps the old learning rate in the buffer, which
    the schedule exposes).
    """
    param = _rounded(case["param"], dtype)
    grads = [_rounded(g, dtype) for g in case["grads"]]
    lr, momentum = case["lr"], case["momentum"]
    context = Context(
        op="sgd_step",
        backend=impl.name,
        dtype=dtype,
        inputs={"param": param.shape},
        hyper={"lr": lr, "momentum": momentum, "steps": TRAJECTORY_STEPS},
        variant="notes' momentum form",
    )
    actual = run_trajectory(
        impl, dtype, "sgd", param, grads, {"lr": lr, "momentum": momentum}, context
    )
    notes = _notes_trajectory(param, grads, lr, momentum)
    compare_trajectories(
        actual,
        notes,
        param,
        dtype,
        context,
        expected_label="notes' form v = gamma v + eta g; w -= v",
    )
    learning_rates = [
        schedules.step_decay(
            t, lr0=lr, step_size=case["step_size"], gamma=case["gamma"]
        )
        for t in range(TRAJECTORY_STEPS)
    ]
    context = Context(
        op="sgd_step",
        backend=impl.name,
        dtype=dtype,
        inputs={"param": param.shape},
        hyper={
            "lr0": lr,
            "momentum": momentum,
            "step_size": case["step_size"],
            "gamma": case["gamma"],
            "steps": TRAJECTORY_STEPS,
        },
        variant="torch momentum form under step decay",
    )
    actual = run_trajectory(
        impl,
        dtype,
        "sgd",
        param,
        grads,
        {"lr": lr, "momentum": momentum},
        context,
        learning_rates=learning_rates,
    )
    torch_form = run_trajectory(
        REFERENCE,
        "float64",
        "sgd",
        param,
        grads,
        {"lr": lr, "momentum": momentum},
        context,
        learning_rates=learning_rates,
    )
    compare_trajectories(
        actual,
        torch_form,
        param,
        dtype,
        context,
        expected_label="reference sgd_step (torch form) with the same schedule",
    )


@pytest.mark.reference_too
@fixtures_shared
@given(case=momentum_cases())
def test_notes_momentum_equals_torch_form(backend: Any, dtype: str, case) -> None:
    """See :func:`check_notes_momentum`."""
    require_operations(backend, "init_state", "sgd_step")
    check_notes_momentum(backend, dtype, case)


@given(case=momentum_cases())
def test_notes_momentum_forms_differ_under_a_schedule_on_the_reference(case) -> None:
    """Under a schedule, the reference's two forms differ enough to tell apart.

    The difference must exceed the float32 trajectory tolerance tenfold at
    some step, so that :func:`test_notes_momentum_equals_torch_form` can tell
    a backend's torch form from the notes' form.
    """
    param, grads = case["param"], case["grads"]
    learning_rates = [
        schedules.step_decay(
            t, lr0=case["lr"], step_size=case["step_size"], gamma=case["gamma"]
        )
        for t in range(TRAJECTORY_STEPS)
    ]
    context = Context(
        op="sgd_momentum_notes_step", backend="reference", dtype="float32"
    )
    torch_form = run_trajectory(
        REFERENCE,
        "float64",
        "sgd",
        param,
        grads,
        {"lr": case["lr"], "momentum": case["momentum"]},
        context,
        learning_rates=learning_rates,
    )
    notes = _notes_trajectory(
        param, grads, case["lr"], case["momentum"], learning_rates
    )
    allowed = tol.trajectory(param, torch_form, "float32")
    ratio = max(
        float(np.max(np.abs(a - b) / bound))
        for a, b, bound in zip(notes, torch_form, allowed, strict=True)
    )
    assert ratio > 10, (
        f"under step decay (lr0={case['lr']}, momentum={case['momentum']}, "
        f"step_size={case['step_size']}, gamma={case['gamma']}) the notes' and the "
        f"torch momentum forms never differ by more than {ratio:.3g} times the "
        "float32 trajectory tolerance (10 needed): the backend test could not tell "
        "them apart"
    )


# ---------------------------------------------------------------------------
# Adam's first step
# ---------------------------------------------------------------------------


@st.composite
def adam_first_steps(draw: st.DrawFn) -> dict[str, Any]:
    """A parameter in [-1, 1], gradients with 1e-3 <= |g| <= 1e3, Adam's betas."""
    shape = draw(strategies.shapes(max_dims=2, max_side=5))
    grad = draw(strategies.signed_magnitudes(shape, -3.0, 3.0))
    hyper = {"lr": draw(strategies.floats(1e-3, 1.0))} | draw(
        strategies.hyperparameters(**adam_moments(1e-10, 1e-6))
    )
    return {
        "param": draw(strategies.arrays(shape, -1.0, 1.0)),
        "grad": grad,
        "hyper": hyper,
    }


def check_adam_first_step(impl: Any, dtype: str, case: dict[str, Any]) -> None:
    r"""Adam's first step moves every coordinate by ``lr``, against its gradient.

    After one step, :math:`\hat m_1 = g`, :math:`\hat v_1 = g^2`, so
    :math:`w_1 - w_0 = -\eta\, g/(|g| + \epsilon)`: magnitude :math:`\eta`
    up to :math:`\eta\epsilon/|g| \le 10^{-3}\eta` (as
    :math:`|g| \ge 10^{-3}`, :math:`\epsilon \le 10^{-6}`), whatever
    :math:`\beta_1, \beta_2` and the gradient's scale. Tolerance: that, plus
    the rounding of :math:`w_0, w_1` and the dtype's ``rtol`` on :math:`\eta`.

    Bugs caught: the forgotten bias correction (the first step is
    :math:`\eta (1-\beta_1)/\sqrt{1-\beta_2}`: 3.16 :math:`\eta` at the
    defaults), a correction of one moment only, a step counter starting at 0
    (:math:`1 - \beta^0 = 0`: division by zero), the update's sign.
    """
    param = _rounded(case["param"], dtype)
    grad = _rounded(case["grad"], dtype)
    hyper = case["hyper"]
    lr, eps = hyper["lr"], hyper.get("eps", 1e-8)
    context = Context(
        op="adam_step",
        backend=impl.name,
        dtype=dtype,
        inputs={"param": param.shape},
        hyper=hyper,
        variant="first step",
    )
    (after,) = run_trajectory(
        impl, dtype, "adam", param, [grad], hyper, context, steps=1
    )
    step = after.astype(np.float64) - param
    allowed = (
        lr * eps / np.abs(grad)
        + tol.rounding_term(dtype, np.abs(param) + np.abs(after))
        + tol.RTOL[dtype] * lr
        + tol.ATOL[dtype] * lr
    )
    wrong = (np.abs(np.abs(step) - lr) > allowed) | (step * grad > 0)
    if wrong.any():
        index = tuple(int(i) for i in np.argwhere(wrong)[0])
        raise context.fail(
            f"Adam's first step must move each coordinate by lr = {lr:g} against its "
            f"gradient: {int(wrong.sum())} of {wrong.size} coordinates do not",
            f"at index {index}: gradient {grad[index]:.6g}, step {step[index]:.6g} "
            f"(|step|/lr = {abs(step[index]) / lr:.6g}), allowed |step| in "
            f"lr +- {allowed[index]:.3g}",
            "with bias correction m_hat = g and v_hat = g**2 after one step, so "
            "the step is -lr g / (|g| + eps)",
        )


@pytest.mark.reference_too
@fixtures_shared
@given(case=adam_first_steps())
def test_adam_first_step_is_lr(backend: Any, dtype: str, case) -> None:
    """See :func:`check_adam_first_step`."""
    require_operations(backend, "init_state", "adam_step")
    check_adam_first_step(backend, dtype, case)


# ---------------------------------------------------------------------------
# AdamW: Adam with the weight decay taken out of the gradient
# ---------------------------------------------------------------------------


def _same_numbers(
    actual: Sequence[np.ndarray],
    expected: Sequence[np.ndarray],
    context: Context,
    what: str,
) -> None:
    """Every step's parameter equal, number for number (NaN where NaN)."""
    for t, (got, want) in enumerate(zip(actual, expected, strict=True), start=1):
        if not np.array_equal(got, want, equal_nan=True):
            differ = np.argwhere(~((got == want) | (np.isnan(got) & np.isnan(want))))
            index = tuple(int(i) for i in differ[0])
            raise context.fail(
                f"{what}: the parameters differ after step {t} of {len(expected)} "
                f"({len(differ)} of {got.size} elements)",
                f"at index {index}: {got[index]!r} against {want[index]!r}",
            )


def check_adamw_without_decay_is_adam(impl: Any, dtype: str, sample: Sample) -> None:
    r"""AdamW with ``weight_decay = 0`` is Adam with ``weight_decay = 0``, exactly.

    With :math:`\lambda = 0` AdamW's decay factor :math:`1 - \eta\lambda` is 1
    and Adam adds no L2 term, so the two rules are one rule: the same
    implementation of it gives the same numbers, step after step (``TRAJECTORY_STEPS``
    steps, Adam's hyperparameters drawn as for its trajectory, both with
    ``weight_decay=0`` explicitly).

    Bugs caught: an AdamW whose moments, bias correction or ``eps`` differ from
    the backend's own Adam (a second, subtly different copy of the update), a
    decay factor applied even at ``weight_decay = 0`` (``1 - lr`` in place of
    ``1 - lr wd``), AdamW's default decay (0.01) used where 0 was passed.
    """
    param, grads = trajectory_inputs(sample, dtype)
    hyper = {**sample.hyper, "weight_decay": 0.0}
    context = Context(
        op="adamw_step",
        backend=impl.name,
        dtype=dtype,
        inputs={"param": param.shape},
        hyper={**hyper, "steps": TRAJECTORY_STEPS},
        variant="weight_decay=0 against adam_step",
    )
    adamw = run_trajectory(impl, dtype, "adamw", param, grads, hyper, context)
    adam = run_trajectory(impl, dtype, "adam", param, grads, hyper, context)
    _same_numbers(adamw, adam, context, "adamw_step against adam_step")


@pytest.mark.reference_too
@fixtures_shared
@given(data=st.data())
def test_adamw_without_decay_is_adam(backend: Any, dtype: str, data) -> None:
    """See :func:`check_adamw_without_decay_is_adam`."""
    require_operations(backend, "init_state", "adam_step", "adamw_step")
    check_adamw_without_decay_is_adam(
        backend, dtype, data.draw(OPTIMIZER_STEPS["adam"].strategy())
    )


#: Steps of the gradient-scale property: its bound grows with each step.
SCALE_STEPS = 10


@st.composite
def adamw_scale_cases(draw: st.DrawFn) -> dict[str, Any]:
    """A parameter, ``SCALE_STEPS`` gradients with 0.1 <= |g| <= 10, a scale 2^k.

    ``k`` in [-8, 8] but 0, so scaling a gradient is exact in either dtype; the
    decay is at least 0.01, ``eps`` at most 1e-8 (its default).
    """
    shape = draw(strategies.shapes(max_dims=2, max_side=4))
    grads = draw(strategies.signed_magnitudes((SCALE_STEPS, *shape), -1.0, 1.0))
    hyper = {
        "lr": draw(strategies.floats(1e-3, 0.1)),
        "weight_decay": draw(strategies.floats(1e-2, 0.1)),
    } | draw(strategies.hyperparameters(**adam_moments(1e-10, 1e-8)))
    return {
        "param": draw(strategies.arrays(shape)),
        "grads": list(grads),
        "scale": 2.0 ** draw(st.integers(-8, 8).filter(bool)),
        "hyper": hyper,
    }


def check_adamw_gradient_scale(impl: Any, dtype: str, case: dict[str, Any]) -> None:
    r"""Scaling every gradient by :math:`c > 0` changes AdamW's steps only via ``eps``.

    The moments of :math:`c g` are :math:`c \hat m` and :math:`c^2 \hat v`, so
    the Adam part of the step is :math:`\hat m / (\sqrt{\hat v} +
    \epsilon/c)`: the same as for :math:`g` but with :math:`\epsilon/c`, and
    the decay :math:`(1 - \eta\lambda) w` does not see the gradient at all. If
    every :math:`|g_\tau|` of a coordinate lies in :math:`[\gamma, G]` then
    :math:`|\hat m_t| \le G` and :math:`\hat v_t \ge \gamma^2` (both are
    weighted means of the gradients, resp. their squares, with weights summing
    to 1), so each step's direction moves by at most

    .. math::

        \frac{|\hat m|\,|\epsilon - \epsilon/c|}
             {(\sqrt{\hat v} + \epsilon)(\sqrt{\hat v} + \epsilon/c)}
        \le \frac{G}{\gamma^2}\,\epsilon\,|1 - 1/c|

    and, the decay being a contraction (:math:`0 < 1 - \eta\lambda \le 1`),
    the parameter after :math:`t` steps by at most :math:`t\eta` times that.
    The backend runs both trajectories (:math:`c = 2^k`: the scaled
    gradients are exact); each may be off its exact value by the trajectory
    tolerance (:func:`properties.tolerance.trajectory`), which is added. With the drawn
    ranges the ``eps`` term is at most :math:`2.6 \cdot 10^{-3}\,t\eta`.

    Bugs caught: Adam's L2 decay in AdamW (``g + wd w`` fed to the moments:
    the decay's weight relative to the gradient then changes with :math:`c`),
    ``eps`` inside the square root or scaled wrongly where it matters, a
    decay multiplied by the gradient.
    """
    param = _rounded(case["param"], dtype)
    grads = [_rounded(g, dtype) for g in case["grads"]]
    c, hyper = case["scale"], case["hyper"]
    lr, eps = hyper["lr"], hyper.get("eps", 1e-8)
    context = Context(
        op="adamw_step",
        backend=impl.name,
        dtype=dtype,
        inputs={"param": param.shape},
        hyper={**hyper, "scale": c, "steps": SCALE_STEPS},
        variant="gradients scaled by c",
    )
    plain = run_trajectory(
        impl, dtype, "adamw", param, grads, hyper, context, steps=SCALE_STEPS
    )
    scaled = run_trajectory(
        impl, dtype, "adamw", param, [c * g for g in grads], hyper, context,
        steps=SCALE_STEPS,
    )  # fmt: skip
    magnitudes = np.abs(np.stack(grads))
    per_step = (
        magnitudes.max(axis=0) / magnitudes.min(axis=0) ** 2 * eps * abs(1 - 1 / c)
    )
    rounding = zip(
        tol.trajectory(param, plain, dtype),
        tol.trajectory(param, scaled, dtype),
        strict=True,
    )
    for t, (got, want, (slack_plain, slack_scaled)) in enumerate(
        zip(scaled, plain, rounding, strict=True), start=1
    ):
        assert_close(
            got,
            want,
            dtype=dtype,
            what=f"param after step {t} of {SCALE_STEPS}, gradients times {c:g}",
            context=context,
            allowed=t * lr * per_step + slack_plain + slack_scaled,
            expected_label="the same backend's AdamW on the unscaled gradients",
            explain="tolerance: t lr (G / gamma^2) eps |1 - 1/c| (the eps term) plus "
            "each trajectory's rounding",
        )


@pytest.mark.reference_too
@fixtures_shared
@given(case=adamw_scale_cases())
def test_adamw_step_ignores_gradient_scale(backend: Any, dtype: str, case) -> None:
    """See :func:`check_adamw_gradient_scale`."""
    require_operations(backend, "init_state", "adamw_step")
    check_adamw_gradient_scale(backend, dtype, case)


@st.composite
def adamw_first_steps(draw: st.DrawFn) -> dict[str, Any]:
    """0.5 <= |w| <= 1, 1 <= |g| <= 100, lr in [0.01, 1], decay in [0.01, 0.1]."""
    shape = draw(strategies.shapes(max_dims=2, max_side=5))
    hyper = {
        "lr": draw(strategies.floats(1e-2, 1.0)),
        "weight_decay": draw(strategies.floats(1e-2, 0.1)),
    } | draw(strategies.hyperparameters(**adam_moments(1e-10, 1e-6)))
    return {
        "param": draw(strategies.signed_magnitudes(shape, math.log10(0.5), 0.0)),
        "grad": draw(strategies.signed_magnitudes(shape, 0.0, 2.0)),
        "hyper": hyper,
    }


def check_adamw_is_not_adam_l2(impl: Any, dtype: str, case: dict[str, Any]) -> None:
    r"""AdamW's first step differs from Adam's with L2 decay by :math:`-\eta\lambda w`.

    From a fresh state both steps are :math:`-\eta\, h/(|h| + \epsilon)`
    for the gradient :math:`h` that enters the moments, plus AdamW's decay:
    AdamW's :math:`h = g` and :math:`w_1 = (1 - \eta\lambda) w_0 - \eta\,
    g/(|g| + \epsilon)`; Adam's :math:`h = g + \lambda w_0`, which has
    :math:`g`'s sign as :math:`|\lambda w_0| \le 0.1 < 1 \le |g|`. So
    ``adamw_step`` minus the reference's ``adam_step(weight_decay=wd)`` is
    :math:`-\eta\lambda w_0` up to :math:`\eta\epsilon (1/|g| + 1/|h|)`, while
    :math:`\eta\lambda|w_0| \ge 5 \cdot 10^{-5}`. Tolerance: that, plus the
    rounding of :math:`w_0` and of both results (:math:`4u` each) and the
    dtype's ``rtol`` on the difference.

    Bugs caught: AdamW computed as Adam with L2 decay (``g + wd w`` in the
    moments), the decay applied after the update (off by
    :math:`\eta^2\lambda\, g/|g|`) or twice, the decay factor :math:`1 -
    \lambda` without the learning rate.
    """
    param = _rounded(case["param"], dtype)
    grad = _rounded(case["grad"], dtype)
    hyper = case["hyper"]
    lr, decay, eps = hyper["lr"], hyper["weight_decay"], hyper.get("eps", 1e-8)
    context = Context(
        op="adamw_step",
        backend=impl.name,
        dtype=dtype,
        inputs={"param": param.shape},
        hyper=hyper,
        variant="first step against adam_step with L2 decay",
    )
    (adamw,) = run_trajectory(
        impl, dtype, "adamw", param, [grad], hyper, context, steps=1
    )
    # Adam with L2 decay from the reference: the property is about the
    # backend's AdamW, so a backend that declines Adam's L2 decay still gets it.
    (adam,) = run_trajectory(
        REFERENCE, "float64", "adam", param, [grad], hyper, context, steps=1
    )
    coupled = grad + decay * param
    u = tol.UNIT_ROUNDOFF[dtype]
    expected = -lr * decay * param
    allowed = (
        lr * eps * (1 / np.abs(grad) + 1 / np.abs(coupled))
        + 4 * u * (np.abs(param) + np.abs(adamw) + np.abs(adam))
        + tol.RTOL[dtype] * np.abs(expected)
    )
    assert_close(
        adamw.astype(np.float64) - adam,  # the difference, computed in float64
        expected,
        dtype="float64",
        what="adamw_step - adam_step(weight_decay=wd) after one step",
        context=context,
        allowed=allowed,
        expected_label="-lr wd w (the decoupled decay)",
        explain="tolerance: lr eps (1/|g| + 1/|g + wd w|) + 4u (|w0| + |w_adamw| + "
        "|w_adam|) + rtol lr wd |w0|",
    )


@pytest.mark.reference_too
@fixtures_shared
@given(case=adamw_first_steps())
def test_adamw_is_not_adam_with_l2(backend: Any, dtype: str, case) -> None:
    """See :func:`check_adamw_is_not_adam_l2`."""
    require_operations(backend, "init_state", "adam_step", "adamw_step")
    check_adamw_is_not_adam_l2(backend, dtype, case)


# ---------------------------------------------------------------------------
# A convex quadratic
# ---------------------------------------------------------------------------

#: Optimizer variants and the hyperparameter ranges that make them decrease a
#: quadratic with curvatures in [0.5, 2] from a start at least 1 from the
#: minimum in every coordinate (the SGD rates are below 1/L = 0.5).
QUADRATIC_VARIANTS: dict[str, tuple[str, Callable[[], st.SearchStrategy[dict]]]] = {
    "sgd": (
        "sgd",
        lambda: strategies.hyperparameters(lr=strategies.floats(0.025, 0.5)),
    ),
    "sgd-momentum": (
        "sgd",
        lambda: strategies.hyperparameters(
            lr=strategies.floats(0.025, 0.5), momentum=strategies.floats(0.0, 0.9)
        ),
    ),
    "sgd-nesterov": (
        "sgd",
        lambda: strategies.hyperparameters(
            lr=strategies.floats(0.025, 0.5),
            momentum=strategies.floats(0.01, 0.9),
            nesterov=st.just(True),
        ),
    ),
    "adagrad": (
        "adagrad",
        lambda: strategies.hyperparameters(lr=strategies.floats(0.01, 1.0)),
    ),
    "rmsprop": (
        "rmsprop",
        lambda: strategies.hyperparameters(
            lr=strategies.floats(1e-3, 0.1),
            alpha=strategies.optional(strategies.floats(0.5, 0.999)),
        ),
    ),
    "adadelta": (
        "adadelta",
        lambda: strategies.hyperparameters(
            lr=strategies.optional(strategies.floats(0.1, 2.0)),
            rho=strategies.optional(strategies.floats(0.5, 0.99)),
        ),
    ),
    "adam": (
        "adam",
        lambda: strategies.hyperparameters(
            lr=strategies.floats(1e-3, 0.2),
            beta1=strategies.optional(strategies.floats(0.0, 0.99)),
            beta2=strategies.optional(strategies.floats(0.9, 0.9999)),
        ),
    ),
}
QUADRATIC_STEPS = 100
#: The smallest relative decrease accepted after QUADRATIC_STEPS steps.
QUADRATIC_DECREASE = 1e-3


@st.composite
def quadratics(draw: st.DrawFn, variant: str) -> dict[str, Any]:
    """Curvatures in [0.5, 2], a minimum in [-5, 5], a start 1 to 10 away per axis."""
    size = draw(st.integers(1, 5))

    def vector(low: float, high: float) -> np.ndarray:
        return np.array(
            draw(st.lists(strategies.floats(low, high), min_size=size, max_size=size))
        )

    curvature = vector(0.5, 2.0)
    minimum = vector(-5.0, 5.0)
    signs = np.array(
        draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=size, max_size=size))
    )
    start = minimum + signs * vector(1.0, 10.0)
    return {
        "curvature": curvature,
        "minimum": minimum,
        "start": start,
        "hyper": draw(QUADRATIC_VARIANTS[variant][1]()),
    }


def check_quadratic(impl: Any, dtype: str, variant: str, case: dict[str, Any]) -> None:
    r"""Every optimizer decreases :math:`f(w) = \tfrac12 \sum_i a_i (w_i - c_i)^2`.

    From a start at least 1 from the minimum in every coordinate, with the
    hyperparameter ranges of :data:`QUADRATIC_VARIANTS`, after
    ``QUADRATIC_STEPS = 100`` steps of the gradient :math:`a(w - c)` (computed
    in float64 from the backend's parameter), :math:`f(w_{100}) \le (1 -
    10^{-3}) f(w_0)`. For plain SGD with :math:`\eta \le 1/L` the descent
    lemma also makes every step non-increasing, which is asserted (to the
    float rounding of :math:`f`). A 3000-run simulation of the reference over
    these ranges found at worst :math:`f(w_{100}) = 0.989 f(w_0)` (Adadelta,
    whose first steps are about :math:`\sqrt{\epsilon/(1-\rho)}`) and at best
    0.01 for the SGD variants.

    Bugs caught: an update with the wrong sign (ascent), a gradient read from
    the wrong place (a stale or zero gradient), a state that is reset every
    step where that stalls the method, Adam's or RMSprop's square root
    forgotten (steps of size :math:`\eta/|g|` overshoot).
    """
    name = QUADRATIC_VARIANTS[variant][0]
    a = case["curvature"]
    c = _rounded(case["minimum"], dtype)
    start = _rounded(case["start"], dtype)
    hyper = case["hyper"]

    def loss(w: np.ndarray) -> float:
        return 0.5 * float(np.sum(a * (w.astype(np.float64) - c) ** 2))

    def gradient(w: np.ndarray) -> np.ndarray:
        return a * (w.astype(np.float64) - c)

    context = Context(
        op=f"{name}_step",
        backend=impl.name,
        dtype=dtype,
        inputs={"param": start.shape},
        hyper={
            **hyper,
            "curvature": a.tolist(),
            "minimum": c.tolist(),
            "steps": QUADRATIC_STEPS,
        },
        variant=f"{variant} on a convex quadratic",
    )
    history = run_trajectory(
        impl, dtype, name, start, gradient, hyper, context, steps=QUADRATIC_STEPS
    )
    losses = np.array([loss(start)] + [loss(w) for w in history])
    rounding = (
        tol.DERIVED_FACTOR
        * tol.UNIT_ROUNDOFF[dtype]
        * (float(np.sum(a * (np.abs(c) + np.abs(start)) ** 2)) + losses)
    )
    trace = " ".join(f"{value:.3g}" for value in losses[:: QUADRATIC_STEPS // 10])
    if not losses[-1] <= (1 - QUADRATIC_DECREASE) * losses[0]:
        raise context.fail(
            f"{variant}: f after {QUADRATIC_STEPS} steps is {losses[-1]:.6g}, not "
            "below "
            f"(1 - {QUADRATIC_DECREASE:g}) f(start) = {losses[0]:.6g}",
            f"f every {QUADRATIC_STEPS // 10} steps: {trace}",
        )
    if variant == "sgd":
        rises = np.diff(losses) > rounding[1:]
        if rises.any():
            t = int(np.argmax(rises)) + 1
            raise context.fail(
                f"plain SGD with lr <= 1/L must not increase f: step {t} took it from "
                f"{losses[t - 1]:.6g} to {losses[t]:.6g}",
                f"f every {QUADRATIC_STEPS // 10} steps: {trace}",
            )


@pytest.mark.reference_too
@pytest.mark.parametrize("variant", list(QUADRATIC_VARIANTS))
@settings(fixtures_shared, max_examples=10)
@given(data=st.data())
def test_optimizer_decreases_convex_quadratic(
    backend: Any, dtype: str, variant: str, data
) -> None:
    """See :func:`check_quadratic` (10 examples: each runs 100 steps)."""
    require_operations(backend, "init_state", f"{QUADRATIC_VARIANTS[variant][0]}_step")
    check_quadratic(backend, dtype, variant, data.draw(quadratics(variant)))


# ---------------------------------------------------------------------------
# Gradient clipping
# ---------------------------------------------------------------------------


def _squarable(a: np.ndarray, dtype: str) -> np.ndarray:
    r"""``a`` rounded to ``dtype``, with the values whose square underflows set to 0.

    Below :math:`\sqrt{\text{tiny}}` (1.1e-19 in float32, 1.5e-154 in
    float64) a square is subnormal or 0, and a norm computed as
    :math:`\sqrt{\sum g^2}` loses every digit; a gradient that small carries
    no direction worth keeping, so the property does not ask for it.
    """
    rounded = np.asarray(a, dtype=np.float64).astype(dtype)
    rounded[np.abs(rounded) < math.sqrt(np.finfo(dtype).tiny)] = 0
    return rounded.astype(np.float64)


def check_clipping(impl: Any, dtype: str, sample: Sample) -> None:
    r"""Clipping caps the global norm at ``max_norm`` and keeps the direction.

    With :math:`\|G\|` the L2 norm over all the gradients and :math:`\tau` =
    ``max_norm``: ``total_norm`` is a Python ``float`` equal to :math:`\|G\|`
    (relative tolerance :func:`properties.tolerance.norm_relative`,
    :math:`8u(n+2)` for a sum of :math:`n` squares); ``clipped`` is a list of
    native arrays, one per gradient; if :math:`\|G\| > \tau`, every clipped
    gradient is :math:`g_i \tau/\|G\|` (one common factor: the direction is
    kept; the dtype's tolerance with the rounding bound :math:`B = (n + 2)
    |g_i \tau/\|G\||`, as the factor inherits the computed norm's relative
    error of up to :math:`(n + 2) u`) and their global norm is :math:`\tau`;
    otherwise each comes back unchanged. The inputs are not modified.
    ``max_norm`` is kept at least 5% away from :math:`\|G\|`, so rounding
    never decides which case applies. Gradients reach 1e30 (exploding
    gradients, what clipping is for): a float32 backend must not square them
    in float32, where they overflow to inf and the "clipped" gradients become
    0.

    Bugs caught: clipping each gradient by its own norm (per-tensor instead
    of global), the notes' unconditional :math:`g \tau/\|G\|` (scales small
    gradients up), the clipped norm returned instead of the original one,
    torch's :math:`\tau/(\|G\| + 10^{-6})` (visible at norms of 1e-3), an L1 or
    max norm, clipping in place, a norm that overflows (squares in float32).
    """
    (drawn,) = sample.arguments
    grads = [_squarable(g, dtype) for g in drawn]
    max_norm = sample.hyper["max_norm"]
    total = math.sqrt(sum(float(np.sum(g**2)) for g in grads))
    context = Context(
        op="clip_grad_norm",
        backend=impl.name,
        dtype=dtype,
        inputs={f"grads[{i}]": g.shape for i, g in enumerate(grads)},
        hyper={"max_norm": max_norm, "global norm": total},
    )
    natives = [impl.asarray(g, dtype) for g in grads]
    result = call_backend(
        impl, "clip_grad_norm", (natives,), {"max_norm": max_norm}, context
    )
    clipped, total_norm = expect_tuple(
        result, 2, "clip_grad_norm", impl.name, "clip_grad_norm", context
    )
    if not isinstance(total_norm, float):
        raise context.fail(
            f"clip_grad_norm: total_norm must be a Python float, backend "
            f"{impl.name} returned a {type(total_norm).__name__}"
        )
    if not isinstance(clipped, (list, tuple)):
        raise context.fail(
            f"clip_grad_norm: backend {impl.name} returned a "
            f"{type(clipped).__name__} as the gradients, expected a list"
        )
    for i, (native, g) in enumerate(zip(natives, grads, strict=True)):
        assert_unchanged(
            g.astype(dtype),
            to_numpy(impl, native, f"grads[{i}]", context),
            f"grads[{i}]",
            impl.name,
            context,
        )
    if len(clipped) != len(grads):
        raise context.fail(
            f"clip_grad_norm returned {len(clipped)} gradients for {len(grads)}"
        )
    n = sum(g.size for g in grads)
    relative = tol.norm_relative(dtype, n)
    if not abs(total_norm - total) <= relative * total + 1e-300:
        raise context.fail(
            f"clip_grad_norm total_norm = {total_norm!r}, the global L2 norm "
            f"of the gradients before clipping is {total!r}",
            f"relative tolerance {relative:.3g}",
        )
    outputs = []
    for i, value in enumerate(clipped):
        expect_native(value, type(natives[0]), f"clipped[{i}]", impl.name, context)
        outputs.append(to_numpy(impl, value, f"clipped[{i}]", context))
    if total > max_norm:
        factor = max_norm / total
        for i, (out, g) in enumerate(zip(outputs, grads, strict=True)):
            assert_close(
                out,
                g * factor,
                dtype=dtype,
                what=f"clipped[{i}] = grads[{i}] * max_norm / global norm "
                f"(factor {factor:.6g})",
                context=context,
                rounding=(n + 2) * g * factor,
                expected_label="rescaled input",
            )
        clipped_norm = math.sqrt(
            sum(float(np.sum(o.astype(np.float64) ** 2)) for o in outputs)
        )
        if not abs(clipped_norm - max_norm) <= relative * max_norm + tol.ATOL[
            dtype
        ] * math.sqrt(n):
            raise context.fail(
                f"after clipping, the global norm is {clipped_norm!r}, not max_norm "
                f"= {max_norm!r}",
            )
    else:
        for i, (out, g) in enumerate(zip(outputs, grads, strict=True)):
            assert_close(
                out,
                g,
                dtype=dtype,
                what=f"clipped[{i}] with the global norm {total:.6g} <= max_norm "
                f"{max_norm:.6g} must be unchanged",
                context=context,
                allowed=np.zeros(g.shape),
                expected_label="input",
                explain="below max_norm nothing is scaled (tolerance 0)",
            )


@pytest.mark.reference_too
@fixtures_shared
@given(sample=CLIPPING.strategy())
@example(
    sample=Sample(([np.full((2, 2), 5e-4), np.full(3, -5e-4)],), {"max_norm": 1e-4})
)
@example(sample=Sample(([np.array([3e19, -4e19])],), {"max_norm": 1.0}))
def test_clip_grad_norm(backend: Any, dtype: str, sample: Sample) -> None:
    """See :func:`check_clipping` (``sample`` drawn by the catalog's entry)."""
    require_operations(backend, "clip_grad_norm")
    check_clipping(backend, dtype, sample)


# ---------------------------------------------------------------------------
# Learning-rate schedules (reference only: no backend implements them)
# ---------------------------------------------------------------------------


def _schedule_values(name: str, hyper: dict[str, Any], steps: int) -> np.ndarray:
    function = getattr(schedules, name)
    return np.array([function(t, **hyper) for t in range(steps + 1)])


SCHEDULE_CASES: dict[str, Callable[[], st.SearchStrategy[dict]]] = {
    "step_decay": lambda: strategies.hyperparameters(
        lr0=strategies.floats(1e-4, 10.0),
        step_size=st.integers(1, 10),
        gamma=strategies.optional(strategies.floats(0.01, 1.0)),
    ),
    "exponential_decay": lambda: strategies.hyperparameters(
        lr0=strategies.floats(1e-4, 10.0), decay_rate=strategies.floats(0.0, 1.0)
    ),
    "inverse_time_decay": lambda: strategies.hyperparameters(
        lr0=strategies.floats(1e-4, 10.0), decay_rate=strategies.floats(0.0, 1.0)
    ),
    "cosine_annealing": lambda: st.fixed_dictionaries(
        {
            "lr0": strategies.floats(1e-4, 10.0),
            "total_steps": st.integers(1, 40),
            "fraction": strategies.floats(0.0, 1.0),
        }
    ).map(
        lambda h: {
            "lr0": h["lr0"],
            "total_steps": h["total_steps"],
            "lr_min": h["lr0"] * h["fraction"],
        }
    ),
}


@pytest.mark.parametrize("schedule", list(SCHEDULE_CASES))
@given(data=st.data())
def test_learning_rate_schedule_is_monotone(schedule: str, data) -> None:
    r"""Each schedule starts at ``lr0``, never increases, and ends where it should.

    * all: :math:`\eta_0 = \eta_{lr0}`, :math:`\eta_{t+1} \le \eta_t`, every
      :math:`\eta_t > 0` (``cosine_annealing``: :math:`\ge \eta_{min}`);
    * ``step_decay``: constant within each window of ``step_size`` steps,
      :math:`\eta_{ks} = \eta_0\gamma^k`;
    * ``exponential_decay``, ``inverse_time_decay``: strictly decreasing for
      a positive rate, and :math:`\eta_t = \eta_0 e^{-kt}`, resp.
      :math:`\eta_0/(1 + kt)`, at :math:`t = 10`;
    * ``cosine_annealing``: :math:`\eta_T = \eta_{min}`, and
      :math:`\eta_{T/2} = (\eta_0 + \eta_{min})/2` for even :math:`T`.

    Bugs caught: a sign error in an exponent (a growing rate), ``ceil``
    instead of ``floor`` in step decay (the first decay one step early),
    ``1 - cos`` in the cosine (rising), a cosine over :math:`2T` (not at
    :math:`\eta_{min}` at :math:`T`), ``lr_min`` ignored.
    """
    hyper = data.draw(SCHEDULE_CASES[schedule]())
    steps = hyper.get("total_steps", 40)
    values = _schedule_values(schedule, hyper, steps)
    lr0 = hyper["lr0"]
    where = f"schedule {schedule} (reference) with {hyper}"
    assert math.isclose(values[0], lr0, rel_tol=1e-12), (
        f"{where}: eta_0 = {values[0]!r}, expected lr0 = {lr0!r}"
    )
    rises = np.diff(values) > 1e-12 * lr0
    assert not rises.any(), (
        f"{where}: increases at step {int(np.argmax(rises)) + 1}: "
        f"{values[int(np.argmax(rises))]!r} -> {values[int(np.argmax(rises)) + 1]!r}"
    )
    if schedule != "cosine_annealing":  # the cosine may reach lr_min = 0 at T
        assert np.all(values > 0), f"{where}: a rate <= 0: {values.min()!r}"
    if schedule == "step_decay":
        size, gamma = hyper["step_size"], hyper.get("gamma", 0.1)
        for t in range(steps + 1):
            expected = lr0 * gamma ** (t // size)
            assert math.isclose(values[t], expected, rel_tol=1e-12), (
                f"{where}: eta_{t} = {values[t]!r}, expected lr0 gamma**floor(t/"
                f"step_size) = {expected!r}"
            )
    elif schedule in ("exponential_decay", "inverse_time_decay"):
        k = hyper["decay_rate"]
        if schedule == "exponential_decay":
            expected = lr0 * math.exp(-10 * k)
        else:
            expected = lr0 / (1 + 10 * k)
        assert math.isclose(values[10], expected, rel_tol=1e-12), (
            f"{where}: eta_10 = {values[10]!r}, expected {expected!r}"
        )
        if k > 1e-6:
            assert np.all(np.diff(values) < 0), f"{where}: not strictly decreasing"
    else:
        lr_min, total = hyper["lr_min"], hyper["total_steps"]
        assert math.isclose(values[total], lr_min, rel_tol=1e-9, abs_tol=1e-12 * lr0), (
            f"{where}: eta_T = {values[total]!r}, expected lr_min = {lr_min!r}"
        )
        assert np.all(values >= lr_min - 1e-12 * lr0), f"{where}: below lr_min"
        if total % 2 == 0:
            middle = 0.5 * (lr0 + lr_min)
            assert math.isclose(values[total // 2], middle, rel_tol=1e-9), (
                f"{where}: eta_(T/2) = {values[total // 2]!r}, expected {middle!r}"
            )
