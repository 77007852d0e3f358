"""Plain tests of the reference's training modules.

Losses, initializers, optimizers, learning-rate schedules, preprocessing and the
small models of the notes: hand-computed values, the counts quoted in the notes,
reproducibility, and a ``ValueError`` naming the argument for every validation.
The generic finite-difference gradient property lives elsewhere; these tests
check values a person can verify on paper.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from backends import contract
from reference import initializers, losses, models, optimizers, preprocessing, schedules


def assert_close(
    actual: Any, expected: Any, *, op: str, rtol: float = 1e-12, atol: float = 1e-12
) -> None:
    """``actual`` equals ``expected``; the message names the op and the mismatch."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (
        f"{op}: shape {actual.shape}, expected {expected.shape}"
    )
    np.testing.assert_allclose(
        actual,
        expected,
        rtol=rtol,
        atol=atol,
        err_msg=f"{op} (reference, float64): value mismatch",
    )


def naming(argument: str) -> re.Pattern[str]:
    """A message that starts with the argument's name."""
    return re.compile(rf"^{re.escape(argument)}(?!\w)")


def check_raises(call: Callable[[], Any], argument: str) -> None:
    with pytest.raises(ValueError, match=naming(argument)) as info:
        call()
    assert argument in str(info.value), f"message {info.value!r} lacks {argument!r}"


RNG_SEED = 20240712


def rng() -> np.random.Generator:
    return np.random.default_rng(RNG_SEED)


# ===================================================================== losses


def test_mse_loss_sums_features_and_averages_the_batch() -> None:
    pred = np.array([[1.0, 2.0], [3.0, 4.0]])
    target = np.zeros((2, 2))
    loss = losses.mse_loss(pred, target)
    assert (
        isinstance(loss, np.ndarray) and loss.shape == () and loss.dtype == np.float64
    ), f"mse_loss: expected a 0-d float64 ndarray, got {type(loss)} {np.shape(loss)}"
    assert_close(loss, (1 + 4 + 9 + 16) / 2, op="mse_loss")
    dpred, dtarget = losses.mse_loss_backward(1.0, pred, target)
    assert_close(dpred, pred, op="mse_loss_backward dpred")  # 2 (p - t) / N, N = 2
    assert_close(dtarget, -pred, op="mse_loss_backward dtarget")


def test_softmax_cross_entropy_two_samples_by_hand() -> None:
    logits = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    labels = np.array([2, 0])
    # sample 1: -log(e^3 / (e + e^2 + e^3)) = log(1 + e^-1 + e^-2); sample 2: log 3
    first = math.log(1.0 + math.exp(-1.0) + math.exp(-2.0))
    second = math.log(3.0)
    expected = (first + second) / 2
    assert abs(expected - 0.7531091266) < 1e-10, "hand value of the test itself"
    assert_close(
        losses.softmax_cross_entropy(logits, labels),
        expected,
        op="softmax_cross_entropy",
    )
    dlogits, dlabels = losses.softmax_cross_entropy_backward(2.0, logits, labels)
    z = np.exp(1.0) + np.exp(2.0) + np.exp(3.0)
    p1 = np.array([np.exp(1.0), np.exp(2.0), np.exp(3.0)]) / z
    p2 = np.full(3, 1.0 / 3.0)
    expected_grad = 2.0 * np.array([p1 - [0, 0, 1], p2 - [1, 0, 0]]) / 2
    assert_close(dlogits, expected_grad, op="softmax_cross_entropy_backward")
    assert dlabels is None, "softmax_cross_entropy_backward: labels get None"


def test_softmax_cross_entropy_is_finite_for_logits_of_1e4() -> None:
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]])
    labels = np.array([1, 2])
    # sample 1: the true class is 2e4 below the max: loss 2e4; sample 2: log 2
    assert_close(
        losses.softmax_cross_entropy(logits, labels),
        (2e4 + math.log(2.0)) / 2,
        op="softmax_cross_entropy at |logits| = 1e4",
    )


def test_multiclass_hinge_loss_cs231n_example() -> None:
    # cs231n, linear classification: three images (cat, car, frog), three classes.
    scores = np.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]])
    labels = np.array([0, 1, 2])
    # cat: max(0, 5.1 - 3.2 + 1) + max(0, -1.7 - 3.2 + 1) = 2.9
    # car: max(0, 1.3 - 4.9 + 1) + max(0, 2.0 - 4.9 + 1) = 0
    # frog: max(0, 2.2 + 3.1 + 1) + max(0, 2.5 + 3.1 + 1) = 12.9
    assert_close(
        losses.multiclass_hinge_loss(scores, labels),
        (2.9 + 0.0 + 12.9) / 3,
        op="multiclass_hinge_loss",
    )
    dscores, dlabels = losses.multiclass_hinge_loss_backward(1.0, scores, labels)
    expected = np.array([[-1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1.0, 1.0, -2.0]]) / 3
    assert_close(dscores, expected, op="multiclass_hinge_loss_backward")
    assert dlabels is None, "multiclass_hinge_loss_backward: labels get None"


def test_multiclass_hinge_subgradient_is_zero_at_a_zero_margin() -> None:
    scores = np.array([[2.0, 1.0]])  # s_1 - s_0 + 1 = 0 exactly
    dscores, _ = losses.multiclass_hinge_loss_backward(1.0, scores, np.array([0]))
    assert_close(dscores, np.zeros((1, 2)), op="multiclass_hinge_loss_backward kink")


def test_binary_cross_entropy_by_hand_and_at_the_end_points() -> None:
    prob = np.array([[0.5, 0.25]])
    target = np.array([[1.0, 0.0]])
    assert_close(
        losses.binary_cross_entropy(prob, target),
        -(math.log(0.5) + math.log(0.75)),
        op="binary_cross_entropy",
    )
    # p = 0 with t = 1: log clamped at -100, as torch
    assert_close(
        losses.binary_cross_entropy(np.array([[0.0, 1.0]]), np.array([[1.0, 1.0]])),
        100.0,
        op="binary_cross_entropy clamp",
    )


def test_binary_cross_entropy_with_logits_is_stable_at_1e4() -> None:
    logits = np.array([[1e4, -1e4], [1e4, -1e4]])
    target = np.array([[0.0, 1.0], [1.0, 0.0]])
    # wrong with margin 1e4 twice (sample 1), right twice (sample 2): (2e4 + 0) / 2
    assert_close(
        losses.binary_cross_entropy_with_logits(logits, target),
        1e4,
        op="binary_cross_entropy_with_logits at |z| = 1e4",
    )
    dlogits, _ = losses.binary_cross_entropy_with_logits_backward(1.0, logits, target)
    assert_close(
        dlogits,
        np.array([[0.5, -0.5], [0.0, 0.0]]),
        op="binary_cross_entropy_with_logits_backward at |z| = 1e4",
    )


def test_penalties_by_hand_with_sign_of_zero_zero() -> None:
    w = np.array([[-2.0, 0.0], [0.5, 3.0]])
    assert_close(losses.l1_penalty(w), 5.5, op="l1_penalty")
    assert_close(losses.l2_penalty(w), 4 + 0.25 + 9, op="l2_penalty")
    assert_close(
        losses.elastic_net_penalty(w, beta=0.5),
        0.5 * 13.25 + 5.5,
        op="elastic_net_penalty",
    )
    (dw,) = losses.l1_penalty_backward(1.0, w)
    assert_close(dw, [[-1.0, 0.0], [1.0, 1.0]], op="l1_penalty_backward sign(0) = 0")
    (dw,) = losses.l2_penalty_backward(0.5, w)
    assert_close(dw, w, op="l2_penalty_backward")
    (dw,) = losses.elastic_net_penalty_backward(1.0, w, beta=0.5)
    assert_close(dw, w + np.sign(w), op="elastic_net_penalty_backward")


def test_losses_do_not_mutate_their_inputs() -> None:
    logits = rng().normal(size=(4, 3))
    labels = np.array([0, 2, 1, 1])
    before = logits.copy()
    losses.softmax_cross_entropy_backward(1.0, logits, labels)
    losses.multiclass_hinge_loss_backward(1.0, logits, labels)
    assert np.array_equal(logits, before), "loss backward mutated its input"


LOSS_ERRORS: list[tuple[str, Callable[[], Any], str]] = [
    (
        "mse target shape",
        lambda: losses.mse_loss(np.ones((2, 3)), np.ones((3, 2))),
        "target",
    ),
    ("mse 0-d pred", lambda: losses.mse_loss(1.0, 1.0), "pred"),
    (
        "mse empty batch",
        lambda: losses.mse_loss(np.ones((0, 2)), np.ones((0, 2))),
        "pred",
    ),
    ("bce prob > 1", lambda: losses.binary_cross_entropy([[1.5]], [[1.0]]), "prob"),
    ("bce prob < 0", lambda: losses.binary_cross_entropy([[-0.1]], [[1.0]]), "prob"),
    ("bce prob nan", lambda: losses.binary_cross_entropy([[np.nan]], [[1.0]]), "prob"),
    ("bce target", lambda: losses.binary_cross_entropy([[0.5]], [[2.0]]), "target"),
    (
        "bce backward prob",
        lambda: losses.binary_cross_entropy_backward(1.0, [[1.5]], [[1.0]]),
        "prob",
    ),
    (
        "bce logits target",
        lambda: losses.binary_cross_entropy_with_logits([[0.5]], [[-1.0]]),
        "target",
    ),
    (
        "bce logits shape",
        lambda: losses.binary_cross_entropy_with_logits([[0.5, 1.0]], [[1.0]]),
        "target",
    ),
    (
        "ce labels range",
        lambda: losses.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3])),
        "labels",
    ),
    (
        "ce labels float",
        lambda: losses.softmax_cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.0])),
        "labels",
    ),
    (
        "ce labels shape",
        lambda: losses.softmax_cross_entropy(np.zeros((2, 3)), np.array([0])),
        "labels",
    ),
    (
        "ce logits 1-d",
        lambda: losses.softmax_cross_entropy(np.zeros(3), np.array([0])),
        "logits",
    ),
    (
        "hinge margin",
        lambda: losses.multiclass_hinge_loss(
            np.zeros((1, 2)), np.array([0]), margin=-1
        ),
        "margin",
    ),
    (
        "hinge scores",
        lambda: losses.multiclass_hinge_loss(np.zeros((0, 2)), np.array([], dtype=int)),
        "scores",
    ),
    ("elastic beta", lambda: losses.elastic_net_penalty(np.ones(2), beta=-0.1), "beta"),
    (
        "elastic backward beta",
        lambda: losses.elastic_net_penalty_backward(1.0, np.ones(2), beta=-1.0),
        "beta",
    ),
    (
        "dout not scalar",
        lambda: losses.l1_penalty_backward(np.ones(2), np.ones(2)),
        "dout",
    ),
    (
        "dout not scalar (ce)",
        lambda: losses.softmax_cross_entropy_backward(
            np.ones(2), np.zeros((2, 3)), np.array([0, 1])
        ),
        "dout",
    ),
]


@pytest.mark.parametrize(
    ("call", "argument"),
    [case[1:] for case in LOSS_ERRORS],
    ids=[case[0] for case in LOSS_ERRORS],
)
def test_losses_reject_invalid_input(call: Callable[[], Any], argument: str) -> None:
    check_raises(call, argument)


# =============================================================== initializers


def test_initializer_table_matches_the_contract() -> None:
    assert tuple(initializers.INITIALIZERS) == contract.INITIALIZER_NAMES, (
        f"INITIALIZERS {tuple(initializers.INITIALIZERS)} != contract "
        f"{contract.INITIALIZER_NAMES}"
    )


@pytest.mark.parametrize("shape", [(5, 7), (4, 3, 3, 2)], ids=["linear", "conv"])
@pytest.mark.parametrize("out_dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", contract.INITIALIZER_NAMES)
def test_initialize_shape_dtype_and_reproducibility(
    name: str, out_dtype: str, shape: tuple[int, ...]
) -> None:
    first = initializers.initialize(name, shape, seed=3, dtype=out_dtype)
    again = initializers.initialize(name, shape, seed=3, dtype=out_dtype)
    context = f"initialize({name!r}, {shape}, seed=3, dtype={out_dtype!r})"
    assert first.shape == shape and first.dtype == np.dtype(out_dtype), (
        f"{context}: got shape {first.shape} dtype {first.dtype}"
    )
    assert np.array_equal(first, again), f"{context}: two calls with one seed differ"
    as64 = initializers.initialize(name, shape, seed=3, dtype="float64")
    assert np.array_equal(first, as64.astype(out_dtype)), (
        f"{context}: not the float64 draw rounded to {out_dtype}"
    )
    other = initializers.initialize(name, shape, seed=4, dtype=out_dtype)
    if name == "zeros":
        assert not np.any(first), f"{context}: not all zeros"
    else:
        assert not np.array_equal(first, other), f"{context}: seeds 3 and 4 agree"


def test_fans_of_linear_and_conv_shapes() -> None:
    assert initializers.fans((10, 20)) == (20, 10), "fans of (out, in)"
    assert initializers.fans((64, 3, 3, 5)) == (3 * 15, 64 * 15), "fans of a conv"


def test_expected_moments_by_hand() -> None:
    shape = (30, 20)  # fan_in 20, fan_out 30
    cases = {
        ("zeros", ()): 0.0,
        ("normal", ()): 0.01**2,
        ("normal", (("std", 0.5),)): 0.25,
        ("uniform_fan_in", ()): (1 / math.sqrt(20)) ** 2 / 3,
        ("lecun_normal", ()): 1 / 20,
        ("xavier_normal", ()): 2 / 50,
        ("xavier_uniform", ()): 6 / 50 / 3,
        ("he_normal", ()): 2 / 20,
        ("he_uniform", ()): 2 / 20,
        ("he_normal", (("negative_slope", 1.0),)): 1 / 20,
        ("he_uniform", (("negative_slope", 0.5),)): 2 / 1.25 / 20,
    }
    for (name, hyper), variance in cases.items():
        mean, var = initializers.expected_moments(name, shape, **dict(hyper))
        assert mean == 0.0, f"expected_moments({name!r}): mean {mean}"
        assert math.isclose(var, variance, rel_tol=1e-12), (
            f"expected_moments({name!r}, {shape}, {dict(hyper)}): {var} != {variance}"
        )


def test_uniform_initializers_stay_inside_their_bound() -> None:
    w = initializers.initialize("xavier_uniform", (40, 60), seed=0)
    bound = math.sqrt(6 / 100)
    assert np.max(np.abs(w)) <= bound, f"xavier_uniform: |w| max {np.max(np.abs(w))}"


INITIALIZER_ERRORS: list[tuple[str, Callable[[], Any], str]] = [
    ("unknown name", lambda: initializers.initialize("glorot", (2, 2), seed=0), "name"),
    (
        "3-d shape",
        lambda: initializers.initialize("normal", (2, 2, 2), seed=0),
        "shape",
    ),
    ("int shape", lambda: initializers.initialize("normal", 4, seed=0), "shape"),
    ("zero size", lambda: initializers.initialize("normal", (0, 2), seed=0), "shape"),
    (
        "float size",
        lambda: initializers.initialize("normal", (2.0, 2), seed=0),
        "shape",
    ),
    ("float seed", lambda: initializers.initialize("normal", (2, 2), seed=1.0), "seed"),
    ("bool seed", lambda: initializers.initialize("normal", (2, 2), seed=True), "seed"),
    (
        "negative seed",
        lambda: initializers.initialize("normal", (2, 2), seed=-1),
        "seed",
    ),
    (
        "dtype",
        lambda: initializers.initialize("normal", (2, 2), seed=0, dtype="float16"),
        "dtype",
    ),
    (
        "unknown hyper",
        lambda: initializers.initialize("normal", (2, 2), seed=0, mean=1.0),
        "mean",
    ),
    (
        "std of xavier",
        lambda: initializers.initialize("xavier_normal", (2, 2), seed=0, std=1.0),
        "std",
    ),
    (
        "negative std",
        lambda: initializers.initialize("normal", (2, 2), seed=0, std=-0.1),
        "std",
    ),
    (
        "nan slope",
        lambda: initializers.initialize(
            "he_normal", (2, 2), seed=0, negative_slope=np.nan
        ),
        "negative_slope",
    ),
    ("fans shape", lambda: initializers.fans((3,)), "shape"),
    ("moments name", lambda: initializers.expected_moments("he", (2, 2)), "name"),
    (
        "moments std",
        lambda: initializers.expected_moments("normal", (2, 2), std=-1.0),
        "std",
    ),
]


@pytest.mark.parametrize(
    ("call", "argument"),
    [case[1:] for case in INITIALIZER_ERRORS],
    ids=[case[0] for case in INITIALIZER_ERRORS],
)
def test_initializers_reject_invalid_input(
    call: Callable[[], Any], argument: str
) -> None:
    check_raises(call, argument)


# ================================================================= optimizers


def test_adam_first_step_is_about_lr_times_sign_of_gradient() -> None:
    param = np.array([1.0, -1.0, 0.5, 2.0])
    grad = np.array([0.5, -2.0, 1e-3, -300.0])
    lr = 0.01
    state = optimizers.init_state("adam", param)
    new_param, new_state = optimizers.adam_step(param, grad, state, lr=lr)
    # m_hat = g, v_hat = g^2: the step is lr * g / (|g| + eps)
    assert_close(
        new_param - param,
        -lr * np.sign(grad),
        op="adam_step first step",
        atol=lr * 1e-4,
    )
    assert new_state["step"] == 1, f"adam_step: step counter {new_state['step']}"


def test_sgd_momentum_two_steps_by_hand() -> None:
    param = np.array([1.0, -2.0])
    g1 = np.array([0.5, 1.0])
    g2 = np.array([-1.0, 2.0])
    state = optimizers.init_state("sgd", param)
    p1, state = optimizers.sgd_step(param, g1, state, lr=0.1, momentum=0.9)
    # b1 = g1; w1 = w0 - 0.1 * g1
    assert_close(p1, [0.95, -2.1], op="sgd_step momentum step 1")
    p2, state = optimizers.sgd_step(p1, g2, state, lr=0.1, momentum=0.9)
    # b2 = 0.9 * [0.5, 1] + [-1, 2] = [-0.55, 2.9]; w2 = w1 - 0.1 * b2
    assert_close(state["momentum_buffer"], [-0.55, 2.9], op="sgd_step buffer step 2")
    assert_close(p2, [1.005, -2.39], op="sgd_step momentum step 2")


def test_sgd_nesterov_first_step_by_hand() -> None:
    param = np.array([1.0])
    grad = np.array([2.0])
    state = optimizers.init_state("sgd", param)
    new, _ = optimizers.sgd_step(
        param, grad, state, lr=0.1, momentum=0.5, nesterov=True
    )
    # b1 = g; direction g + 0.5 * b1 = 3
    assert_close(new, [1.0 - 0.1 * 3.0], op="sgd_step nesterov")


def test_sgd_weight_decay_adds_to_the_gradient() -> None:
    param = np.array([2.0, -1.0])
    grad = np.array([0.5, 0.5])
    state = optimizers.init_state("sgd", param)
    new, _ = optimizers.sgd_step(param, grad, state, lr=0.1, weight_decay=0.1)
    assert_close(new, param - 0.1 * (grad + 0.1 * param), op="sgd_step weight_decay")


def test_notes_momentum_form_equals_torch_form_at_constant_lr() -> None:
    generator = rng()
    param = generator.normal(size=5)
    torch_form, torch_state = param, optimizers.init_state("sgd", param)
    notes_form, notes_state = param, optimizers.init_state("sgd_momentum_notes", param)
    for step in range(8):
        grad = generator.normal(size=5)
        torch_form, torch_state = optimizers.sgd_step(
            torch_form, grad, torch_state, lr=0.05, momentum=0.9
        )
        notes_form, notes_state = optimizers.sgd_momentum_notes_step(
            notes_form, grad, notes_state, lr=0.05, momentum=0.9
        )
        assert_close(
            notes_form,
            torch_form,
            op=f"sgd_momentum_notes_step step {step}",
            atol=1e-14,
        )
        assert_close(
            notes_state["velocity"],
            0.05 * torch_state["momentum_buffer"],
            op=f"velocity = lr * momentum_buffer, step {step}",
            atol=1e-14,
        )


def test_adaptive_first_steps_by_hand() -> None:
    param = np.array([1.0, 1.0])
    grad = np.array([2.0, -0.5])
    new, _ = optimizers.adagrad_step(
        param, grad, optimizers.init_state("adagrad", param), lr=0.1
    )
    assert_close(new, param - 0.1 * np.sign(grad), op="adagrad_step first", atol=1e-9)
    new, _ = optimizers.rmsprop_step(
        param, grad, optimizers.init_state("rmsprop", param), lr=0.01
    )
    # s = 0.01 g^2: step lr * g / (0.1 |g| + eps) = 10 lr sign(g)
    assert_close(new, param - 0.1 * np.sign(grad), op="rmsprop_step first", atol=1e-7)
    new, state = optimizers.adadelta_step(
        param, grad, optimizers.init_state("adadelta", param)
    )
    delta = math.sqrt(1e-6) / np.sqrt(0.1 * grad**2 + 1e-6) * grad
    assert_close(new, param - delta, op="adadelta_step first")
    assert_close(state["acc_delta"], 0.1 * delta**2, op="adadelta_step acc_delta")


def test_optimizer_steps_do_not_mutate_their_inputs() -> None:
    param = np.array([1.0, -2.0, 3.0])
    grad = np.array([0.1, 0.2, -0.3])
    for name in contract.OPTIMIZER_NAMES:
        state = optimizers.init_state(name, param)
        step = getattr(optimizers, f"{name}_step")
        hyper = {} if name == "adadelta" else {"lr": 0.1}
        for _ in range(2):
            before = (
                param.copy(),
                grad.copy(),
                {k: np.copy(v) for k, v in state.items()},
            )
            _, new_state = step(param, grad, state, **hyper)
            assert np.array_equal(param, before[0]), f"{name}_step mutated param"
            assert np.array_equal(grad, before[1]), f"{name}_step mutated grad"
            for key, value in before[2].items():
                assert np.array_equal(state[key], value), f"{name}_step mutated {key}"
            state = new_state


def test_clip_grad_norm_by_hand() -> None:
    grads = [np.array([3.0]), np.array([[4.0]])]
    clipped, total = optimizers.clip_grad_norm(grads, max_norm=1.0)
    assert isinstance(total, float) and total == 5.0, f"clip_grad_norm total {total!r}"
    assert_close(clipped[0], [0.6], op="clip_grad_norm")
    assert_close(clipped[1], [[0.8]], op="clip_grad_norm")
    kept, total = optimizers.clip_grad_norm(grads, max_norm=5.0)
    assert total == 5.0 and all(
        np.array_equal(a, b) for a, b in zip(kept, grads, strict=True)
    ), "clip_grad_norm: a norm equal to max_norm must be left alone"
    assert all(a is not b for a, b in zip(kept, grads, strict=True)), (
        "clip_grad_norm: new arrays"
    )


def _sgd(**hyper: Any) -> Callable[[], Any]:
    param = np.zeros(3)
    return lambda: optimizers.sgd_step(
        param, np.zeros(3), optimizers.init_state("sgd", param), **hyper
    )


def _adam(**hyper: Any) -> Callable[[], Any]:
    param = np.zeros(3)
    hyper.setdefault("lr", 0.1)
    return lambda: optimizers.adam_step(
        param, np.zeros(3), optimizers.init_state("adam", param), **hyper
    )


def _step(name: str, grad: Any = None, **hyper: Any) -> Callable[[], Any]:
    param = np.zeros(3)
    grad = np.zeros(3) if grad is None else grad
    step = getattr(optimizers, f"{name}_step")
    return lambda: step(param, grad, optimizers.init_state(name, param), **hyper)


OPTIMIZER_ERRORS: list[tuple[str, Callable[[], Any], str]] = [
    ("sgd lr 0", _sgd(lr=0.0), "lr"),
    ("sgd lr negative", _sgd(lr=-0.1), "lr"),
    ("sgd momentum 1", _sgd(lr=0.1, momentum=1.0), "momentum"),
    ("sgd momentum negative", _sgd(lr=0.1, momentum=-0.1), "momentum"),
    ("sgd nesterov without momentum", _sgd(lr=0.1, nesterov=True), "nesterov"),
    ("sgd nesterov not bool", _sgd(lr=0.1, momentum=0.9, nesterov=1), "nesterov"),
    ("sgd weight_decay", _sgd(lr=0.1, weight_decay=-1.0), "weight_decay"),
    ("sgd grad shape", _step("sgd", grad=np.zeros(4), lr=0.1), "grad"),
    (
        "sgd state",
        lambda: optimizers.sgd_step(np.zeros(2), np.zeros(2), {}, lr=0.1),
        "state",
    ),
    (
        "sgd state shape",
        lambda: optimizers.sgd_step(
            np.zeros(2), np.zeros(2), {"momentum_buffer": np.zeros(3)}, lr=0.1
        ),
        "state['momentum_buffer']",
    ),
    ("adam beta1 1", _adam(beta1=1.0), "beta1"),
    ("adam beta2 negative", _adam(beta2=-0.1), "beta2"),
    ("adam eps 0", _adam(eps=0.0), "eps"),
    ("adam weight_decay", _adam(weight_decay=-0.1), "weight_decay"),
    ("adam lr", _adam(lr=0.0), "lr"),
    ("adam grad shape", _step("adam", grad=np.zeros((3, 1)), lr=0.1), "grad"),
    (
        "adam step",
        lambda: optimizers.adam_step(
            np.zeros(1),
            np.zeros(1),
            {"step": -1, "exp_avg": np.zeros(1), "exp_avg_sq": np.zeros(1)},
            lr=0.1,
        ),
        "state['step']",
    ),
    ("adagrad lr", _step("adagrad", lr=-1.0), "lr"),
    ("adagrad eps", _step("adagrad", lr=0.1, eps=0.0), "eps"),
    ("rmsprop alpha", _step("rmsprop", lr=0.1, alpha=1.0), "alpha"),
    ("rmsprop eps", _step("rmsprop", lr=0.1, eps=-1e-8), "eps"),
    ("adadelta rho", _step("adadelta", rho=1.0), "rho"),
    ("adadelta lr", _step("adadelta", lr=0.0), "lr"),
    ("adadelta eps", _step("adadelta", eps=0.0), "eps"),
    (
        "notes momentum",
        _step("sgd_momentum_notes", lr=0.1, momentum=1.5),
        "momentum",
    ),
    ("notes lr", _step("sgd_momentum_notes", lr=0.0, momentum=0.9), "lr"),
    ("unknown optimizer", lambda: optimizers.init_state("lamb", np.zeros(2)), "name"),
    (
        "clip max_norm",
        lambda: optimizers.clip_grad_norm([np.ones(2)], max_norm=0.0),
        "max_norm",
    ),
    (
        "clip grads",
        lambda: optimizers.clip_grad_norm(np.ones(2), max_norm=1.0),
        "grads",
    ),
]


@pytest.mark.parametrize(
    ("call", "argument"),
    [case[1:] for case in OPTIMIZER_ERRORS],
    ids=[case[0] for case in OPTIMIZER_ERRORS],
)
def test_optimizers_reject_invalid_input(
    call: Callable[[], Any], argument: str
) -> None:
    check_raises(call, argument)


# ================================================================== schedules


def test_schedules_by_hand() -> None:
    decay = [
        schedules.step_decay(t, lr0=1.0, step_size=10, gamma=0.5)
        for t in (0, 9, 10, 25)
    ]
    assert_close(decay, [1.0, 1.0, 0.5, 0.25], op="step_decay")
    assert_close(
        schedules.exponential_decay(3, lr0=2.0, decay_rate=0.5),
        2.0 * math.exp(-1.5),
        op="exponential_decay",
    )
    assert_close(
        schedules.inverse_time_decay(4, lr0=1.0, decay_rate=0.25),
        0.5,
        op="inverse_time_decay",
    )
    cosine = [
        schedules.cosine_annealing(t, lr0=1.0, total_steps=10, lr_min=0.2)
        for t in (0, 5, 10)
    ]
    assert_close(cosine, [1.0, 0.6, 0.2], op="cosine_annealing", atol=1e-15)


SCHEDULE_ERRORS: list[tuple[str, Callable[[], Any], str]] = [
    (
        "negative step",
        lambda: schedules.exponential_decay(-1, lr0=1.0, decay_rate=0.1),
        "step",
    ),
    (
        "float step",
        lambda: schedules.inverse_time_decay(1.5, lr0=1.0, decay_rate=0.1),
        "step",
    ),
    ("lr0", lambda: schedules.exponential_decay(1, lr0=0.0, decay_rate=0.1), "lr0"),
    (
        "decay_rate",
        lambda: schedules.inverse_time_decay(1, lr0=1.0, decay_rate=-0.1),
        "decay_rate",
    ),
    ("step_size", lambda: schedules.step_decay(1, lr0=1.0, step_size=0), "step_size"),
    (
        "gamma 0",
        lambda: schedules.step_decay(1, lr0=1.0, step_size=2, gamma=0.0),
        "gamma",
    ),
    (
        "gamma > 1",
        lambda: schedules.step_decay(1, lr0=1.0, step_size=2, gamma=2.0),
        "gamma",
    ),
    (
        "total_steps",
        lambda: schedules.cosine_annealing(0, lr0=1.0, total_steps=0),
        "total_steps",
    ),
    (
        "step past total",
        lambda: schedules.cosine_annealing(11, lr0=1.0, total_steps=10),
        "step",
    ),
    (
        "lr_min above lr0",
        lambda: schedules.cosine_annealing(1, lr0=1.0, total_steps=10, lr_min=2.0),
        "lr_min",
    ),
]


@pytest.mark.parametrize(
    ("call", "argument"),
    [case[1:] for case in SCHEDULE_ERRORS],
    ids=[case[0] for case in SCHEDULE_ERRORS],
)
def test_schedules_reject_invalid_input(call: Callable[[], Any], argument: str) -> None:
    check_raises(call, argument)


# ============================================================== preprocessing


def _correlated_data() -> np.ndarray:
    generator = rng()
    mixing = np.array([[2.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.5, -0.3, 0.2]])
    return generator.normal(size=(400, 3)) @ mixing + np.array([5.0, -1.0, 0.5])


def test_center_and_standardize() -> None:
    x = _correlated_data()
    assert_close(
        np.mean(preprocessing.center(x), axis=0), np.zeros(3), op="center", atol=1e-12
    )
    z = preprocessing.standardize(x)
    assert_close(np.mean(z, axis=0), np.zeros(3), op="standardize mean", atol=1e-12)
    assert_close(np.var(z, axis=0), np.ones(3), op="standardize variance")


def test_pca_of_data_along_a_known_direction() -> None:
    t = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    x = np.outer(t, [0.6, 0.8]) + np.array([10.0, 20.0])  # points on a line
    x_rot, components, variances = preprocessing.pca(x)
    assert_close(components[0], [0.6, 0.8], op="pca first component")
    assert_close(variances, [2.0, 0.0], op="pca variances (1/N)", atol=1e-12)
    assert_close(x_rot[:, 0], t, op="pca projection", atol=1e-12)


def test_pca_components_are_sorted_orthonormal_and_decorrelate() -> None:
    x = _correlated_data()
    x_rot, components, variances = preprocessing.pca(x)
    assert np.all(np.diff(variances) <= 0), f"pca: variances not sorted {variances}"
    assert_close(components @ components.T, np.eye(3), op="pca orthonormal", atol=1e-12)
    assert_close(
        x_rot.T @ x_rot / len(x), np.diag(variances), op="pca decorrelates", atol=1e-10
    )
    _, top, _ = preprocessing.pca(x, num_components=2)
    assert_close(top, components[:2], op="pca num_components")


@pytest.mark.parametrize("whiten", [preprocessing.pca_whiten, preprocessing.zca_whiten])
def test_whitening_gives_identity_covariance(whiten: Callable[..., np.ndarray]) -> None:
    x = _correlated_data()
    white = whiten(x, eps=0.0)
    assert_close(
        white.T @ white / len(x), np.eye(3), op=f"{whiten.__name__}(eps=0)", atol=1e-10
    )
    damped = whiten(x, eps=1e-2)
    _, _, variances = preprocessing.pca(x)
    expected = np.sort(variances / (variances + 1e-2))
    got = np.sort(np.linalg.eigvalsh(damped.T @ damped / len(x)))
    assert_close(
        got, expected, op=f"{whiten.__name__}(eps=1e-2) covariance", atol=1e-10
    )


def test_zca_is_symmetric_and_stays_close_to_the_data() -> None:
    x = _correlated_data()
    centered = preprocessing.center(x)
    zca = preprocessing.zca_whiten(x, eps=0.0)
    transform = np.linalg.lstsq(centered, zca, rcond=None)[0]
    assert_close(
        transform, transform.T, op="zca_whiten transform symmetric", atol=1e-10
    )
    pca_white = preprocessing.pca_whiten(x, eps=0.0)
    assert np.sum((zca - centered) ** 2) < np.sum((pca_white - centered) ** 2), (
        "zca_whiten: farther from the data than pca_whiten"
    )


PREPROCESSING_ERRORS: list[tuple[str, Callable[[], Any], str]] = [
    ("center 1-d", lambda: preprocessing.center(np.ones(3)), "x"),
    ("center empty", lambda: preprocessing.center(np.ones((0, 3))), "x"),
    ("standardize constant", lambda: preprocessing.standardize(np.ones((4, 2))), "x"),
    (
        "standardize eps",
        lambda: preprocessing.standardize(np.ones((4, 2)), eps=-1.0),
        "eps",
    ),
    (
        "pca num_components",
        lambda: preprocessing.pca(np.eye(3), num_components=4),
        "num_components",
    ),
    (
        "pca num_components 0",
        lambda: preprocessing.pca(np.eye(3), num_components=0),
        "num_components",
    ),
    ("pca_whiten eps", lambda: preprocessing.pca_whiten(np.eye(3), eps=-1.0), "eps"),
    (
        "pca_whiten singular",
        lambda: preprocessing.pca_whiten(np.ones((4, 2)), eps=0.0),
        "eps",
    ),
    ("zca_whiten eps", lambda: preprocessing.zca_whiten(np.eye(3), eps=-1e-5), "eps"),
    (
        "zca_whiten singular",
        lambda: preprocessing.zca_whiten(np.ones((4, 2)), eps=0.0),
        "eps",
    ),
]


@pytest.mark.parametrize(
    ("call", "argument"),
    [case[1:] for case in PREPROCESSING_ERRORS],
    ids=[case[0] for case in PREPROCESSING_ERRORS],
)
def test_preprocessing_rejects_invalid_input(
    call: Callable[[], Any], argument: str
) -> None:
    check_raises(call, argument)


# ===================================================================== models


def test_the_counts_of_the_notes() -> None:
    assert models.mlp_parameter_count([3, 4, 2]) == 26, "notes 003 two-layer net"
    assert models.mlp_parameter_count([3, 4, 4, 1]) == 41, "notes 003 three-layer net"
    assert models.parameter_count(models.lenet5_parameter_shapes()) == 61_706, "LeNet-5"
    assert models.mlp_parameter_count([4032 * 3024 * 3, 1000, 10]) == 36_578_315_010, (
        "notes 004's photograph exercise"
    )


def test_conv_multiply_adds_of_notes_000() -> None:
    macs = models.conv2d_multiply_adds((1, 3, 32, 32), (64, 3, 3, 3), padding=1)
    # the notes' product 32*32*3*3*3*64; they print its value as 1,179,648, which
    # is the same product with 2 input channels (an arithmetic slip in the notes)
    assert macs == 32 * 32 * 3 * 3 * 3 * 64 == 1_769_472, f"conv2d_multiply_adds {macs}"
    two_channels = models.conv2d_multiply_adds((1, 2, 32, 32), (64, 2, 3, 3), padding=1)
    assert two_channels == 1_179_648, f"the notes' printed number, got {two_channels}"
    strided = models.conv2d_multiply_adds((2, 3, 32, 32), (8, 3, 5, 5), stride=2)
    assert strided == 2 * 14 * 14 * 5 * 5 * 3 * 8, f"strided conv MACs {strided}"


def _mlp_params(sizes: list[int]) -> dict[str, np.ndarray]:
    generator = rng()
    shapes = models.mlp_parameter_shapes(sizes)
    return {name: generator.normal(size=shape) for name, shape in shapes.items()}


def test_two_layer_mlp_by_hand_and_backward_layout() -> None:
    params = {
        "w1": np.array([[1.0, -1.0], [0.5, 0.5]]),
        "b1": np.array([0.0, -1.0]),
        "w2": np.array([[2.0, 3.0]]),
        "b2": np.array([0.5]),
    }
    x = np.array([[2.0, 1.0]])
    # z1 = [2 - 1, 1 + 0.5 - 1] = [1, 0.5]; s = 2 + 1.5 + 0.5 = 4
    assert_close(models.two_layer_mlp(x, params), [[4.0]], op="two_layer_mlp")
    dx, grads = models.two_layer_mlp_backward(np.array([[1.0]]), x, params)
    assert_close(dx, [[2.0 + 1.5, -2.0 + 1.5]], op="two_layer_mlp_backward dx")
    assert set(grads) == set(params), f"two_layer_mlp_backward keys {sorted(grads)}"
    for name, grad in grads.items():
        assert grad.shape == params[name].shape, f"d{name} shape {grad.shape}"


def test_three_layer_mlp_shapes() -> None:
    params = _mlp_params([3, 4, 4, 1])
    x = rng().normal(size=(5, 3))
    scores = models.three_layer_mlp(x, params)
    assert scores.shape == (5, 1), f"three_layer_mlp shape {scores.shape}"
    dx, grads = models.three_layer_mlp_backward(np.ones((5, 1)), x, params)
    assert dx.shape == x.shape and set(grads) == set(params), "three_layer_mlp_backward"


def test_lenet5_forward_shape() -> None:
    generator = rng()
    shapes = models.lenet5_parameter_shapes(num_classes=7)
    params = {
        name: 0.1 * generator.normal(size=shape) for name, shape in shapes.items()
    }
    logits = models.lenet5(generator.normal(size=(2, 1, 32, 32)), params)
    assert logits.shape == (2, 7), f"lenet5 logits shape {logits.shape}"


def test_residual_block_with_zero_weights_is_relu_of_the_input() -> None:
    x = rng().normal(size=(2, 3, 5, 5))
    shapes = models.residual_block_parameter_shapes(3)
    params = {name: np.zeros(shape) for name, shape in shapes.items()}
    assert_close(
        models.residual_block(x, params), np.maximum(x, 0), op="residual_block"
    )
    dout = rng().normal(size=x.shape)
    dx, grads = models.residual_block_backward(dout, x, params)
    # the shortcut carries the gradient straight through the final ReLU
    assert_close(dx, dout * (x > 0), op="residual_block_backward shortcut")
    assert set(grads) == set(params), f"residual_block_backward keys {sorted(grads)}"


MODEL_ERRORS: list[tuple[str, Callable[[], Any], str]] = [
    (
        "mlp missing key",
        lambda: models.two_layer_mlp(np.ones((1, 3)), {"w1": np.ones((4, 3))}),
        "params['w2']",
    ),
    (
        "mlp extra key",
        lambda: models.two_layer_mlp(
            np.ones((1, 3)), {**_mlp_params([3, 4, 2]), "w3": 1}
        ),
        "params",
    ),
    (
        "mlp wrong w1",
        lambda: models.two_layer_mlp(np.ones((1, 5)), _mlp_params([3, 4, 2])),
        "params['w1']",
    ),
    (
        "mlp wrong b2",
        lambda: models.three_layer_mlp(
            np.ones((1, 3)), {**_mlp_params([3, 4, 4, 1]), "b2": np.ones(5)}
        ),
        "params['b2']",
    ),
    (
        "mlp x 1-d",
        lambda: models.two_layer_mlp(np.ones(3), _mlp_params([3, 4, 2])),
        "x",
    ),
    (
        "lenet x",
        lambda: models.lenet5(np.ones((1, 1, 28, 28)), {}),
        "x",
    ),
    (
        "lenet params",
        lambda: models.lenet5(np.ones((1, 1, 32, 32)), {"fc2_w": np.ones((10, 84))}),
        "params",
    ),
    (
        "lenet num_classes",
        lambda: models.lenet5_parameter_shapes(num_classes=0),
        "num_classes",
    ),
    ("block channels", lambda: models.residual_block_parameter_shapes(0), "channels"),
    (
        "block even kernel",
        lambda: models.residual_block_parameter_shapes(3, kernel_size=2),
        "kernel_size",
    ),
    (
        "block channel mismatch",
        lambda: models.residual_block(
            np.ones((1, 2, 4, 4)),
            {
                name: np.zeros(shape)
                for name, shape in models.residual_block_parameter_shapes(3).items()
            },
        ),
        "params['w1']",
    ),
    (
        "block even kernel in params",
        lambda: models.residual_block(
            np.ones((1, 2, 4, 4)),
            {"w1": np.zeros((2, 2, 2, 2)), "b1": 0, "w2": 0, "b2": 0},
        ),
        "params['w1']",
    ),
    ("layer_sizes short", lambda: models.mlp_parameter_count([3]), "layer_sizes"),
    ("layer_sizes zero", lambda: models.mlp_parameter_count([3, 0, 2]), "layer_sizes"),
    ("shapes", lambda: models.parameter_count([(2, -1)]), "shapes"),
    (
        "macs input_shape",
        lambda: models.conv2d_multiply_adds((3, 32, 32), (64, 3, 3, 3)),
        "input_shape",
    ),
    (
        "macs channels",
        lambda: models.conv2d_multiply_adds((1, 3, 32, 32), (64, 4, 3, 3)),
        "weight_shape",
    ),
    (
        "macs kernel too big",
        lambda: models.conv2d_multiply_adds((1, 3, 2, 2), (64, 3, 3, 3)),
        "weight_shape",
    ),
    (
        "macs stride",
        lambda: models.conv2d_multiply_adds((1, 3, 8, 8), (4, 3, 3, 3), stride=0),
        "stride",
    ),
    (
        "macs padding",
        lambda: models.conv2d_multiply_adds((1, 3, 8, 8), (4, 3, 3, 3), padding=-1),
        "padding",
    ),
]


@pytest.mark.parametrize(
    ("call", "argument"),
    [case[1:] for case in MODEL_ERRORS],
    ids=[case[0] for case in MODEL_ERRORS],
)
def test_models_reject_invalid_input(call: Callable[[], Any], argument: str) -> None:
    check_raises(call, argument)
