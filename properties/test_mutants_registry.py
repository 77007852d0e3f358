"""The mutant registry: enough mutants, each loadable, each exactly one bug.

``backends/mutants`` holds the NumPy backend with one realistic bug per
mutant; ``nox -s mutants`` runs the property suite against each. These tests
keep the registry honest without running the suite: at least 15 mutants
across every family of op, each a subclass of the NumPy backend that
overrides exactly one operation of the contract (so a kill points at one
bug), with a distinct ``mutant-`` name, a docstring that says what the bug is
and what should catch it, and expected killers that are real property
modules; and each bug is live: on an input that exercises it, the mutant
answers differently from the NumPy backend.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest

from backends import contract
from backends.mutants import FAMILIES, MUTANTS
from backends.numpy_backend import NumpyBackend

PROPERTIES = Path(__file__).resolve().parent
CONTRACT_OPERATIONS = frozenset(contract.OPERATIONS + contract.BACKWARD_OPERATIONS)
#: Class attributes a mutant sets besides its one operation.
MUTANT_ATTRIBUTES = frozenset({"name", "family", "expected_killers"})


def overridden(cls: type) -> dict[str, object]:
    """Everything ``cls`` defines on top of :class:`NumpyBackend` (dunders aside)."""
    names: dict[str, object] = {}
    for klass in cls.__mro__:
        if klass is NumpyBackend:
            break
        for key, value in vars(klass).items():
            if not (key.startswith("__") and key.endswith("__")):
                names.setdefault(key, value)
    return names


def test_at_least_fifteen_mutants_with_distinct_names() -> None:
    assert len(MUTANTS) >= 15, f"only {len(MUTANTS)} mutants registered, need 15"
    names = [contract.load(spec).name for spec in MUTANTS.values()]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    assert not duplicates, f"mutant names used twice: {duplicates}"


@pytest.mark.parametrize("name", list(MUTANTS))
def test_mutant_loads_and_breaks_exactly_one_operation(name: str) -> None:
    spec = MUTANTS[name]
    backend = contract.load(spec)
    where = f"mutant {name!r} ({spec})"
    assert backend.name == name, f"{where}: its name is {backend.name!r}"
    assert name.startswith("mutant-"), f"{where}: the name must start with 'mutant-'"
    assert isinstance(backend, NumpyBackend), f"{where}: not a NumpyBackend subclass"
    assert contract.unavailable_reason(backend) is None, (
        f"{where}: unavailable: {contract.unavailable_reason(backend)}"
    )
    assert contract.missing_operations(backend) == [], (
        f"{where}: lacks {contract.missing_operations(backend)}"
    )
    extra = overridden(type(backend))
    operations = sorted(key for key in extra if key in CONTRACT_OPERATIONS)
    others = sorted(set(extra) - CONTRACT_OPERATIONS - MUTANT_ATTRIBUTES)
    if backend.family == "precision":
        # One bug in every operation: the dtype they compute in.
        assert len(operations) >= len(CONTRACT_OPERATIONS) - 1 and not others, (
            f"{where}: a precision mutant wraps every operation and nothing else; "
            f"it wraps {len(operations)}, and defines {others}"
        )
        return
    assert len(operations) == 1, (
        f"{where}: overrides {len(operations)} contract operations {operations}, "
        "must override exactly one"
    )
    assert not others, (
        f"{where}: defines {others} besides its operation {operations[0]}: a mutant "
        "changes one operation and nothing else"
    )
    assert callable(extra[operations[0]]), f"{where}: {operations[0]} is not a method"


@pytest.mark.parametrize("name", list(MUTANTS))
def test_mutant_documents_its_bug_and_its_killers(name: str) -> None:
    backend = contract.load(MUTANTS[name])
    where = f"mutant {name!r}"
    doc = inspect.getdoc(type(backend)) or ""
    assert "Caught by" in doc and len(doc.splitlines()) >= 3, (
        f"{where}: the class docstring must describe the bug and say what catches "
        f"it ('Caught by: ...'); got {doc!r}"
    )
    family = getattr(backend, "family", None)
    assert family in FAMILIES, f"{where}: family {family!r} is not one of {FAMILIES}"
    killers = tuple(getattr(backend, "expected_killers", ()))
    assert killers, f"{where}: no expected_killers"
    for killer in killers:
        assert (PROPERTIES / f"test_{killer}.py").is_file(), (
            f"{where}: expected killer {killer!r} is not a property module "
            f"(no properties/test_{killer}.py)"
        )


def test_every_family_has_a_mutant() -> None:
    required = {
        "conv",
        "pooling",
        "batchnorm",
        "dropout",
        "initializers",
        "optimizers",
        "losses",
        "activations",
        "clipping",
    }
    assert required <= set(FAMILIES), (
        f"FAMILIES lacks {sorted(required - set(FAMILIES))}"
    )
    covered = {contract.load(spec).family for spec in MUTANTS.values()}
    assert covered >= set(FAMILIES), f"no mutant for {sorted(set(FAMILIES) - covered)}"


# -- each mutant is live: it differs from the NumPy backend on a known input ----

_RNG = np.random.default_rng(0)
_X4 = _RNG.standard_normal((2, 2, 5, 5))  # NCHW, generic values
_W4 = _RNG.standard_normal((3, 2, 3, 3))  # an asymmetric kernel
_TIES = np.array([[[[1.0, 1.0, 0.0, -1.0], [1.0, 0.5, -1.0, -1.0]]]])
_NEGATIVE = -np.abs(_RNG.standard_normal((1, 1, 4, 4))) - 0.5
_BN_X = _RNG.standard_normal((4, 3)) * 2 + 1
_BN_PARAMS = (np.ones(3), np.zeros(3), np.zeros(3), np.ones(3))
_MASK = np.array([[True, False, True], [False, True, True]])
_LOGITS = np.array([[3.0, -1.0, 0.5], [1000.0, -1000.0, 0.0]])
_LABELS = np.array([0, 2])


def _steps(optimizer: str, **hyper: float):
    """Two steps of ``optimizer`` from its initial state: the parameters after each."""

    def run(backend: NumpyBackend) -> list[np.ndarray]:
        param = np.array([1.0, -2.0, 0.5])
        state = backend.init_state(optimizer, param)
        trajectory = []
        for grad in (np.array([0.3, -0.1, 2.0]), np.array([-0.2, 0.4, 1.0])):
            param, state = getattr(backend, f"{optimizer}_step")(
                param, grad, state, **hyper
            )
            trajectory.append(np.array(param, copy=True))
        return trajectory

    return run


#: For each mutant, a call on which its bug shows: backend -> output(s).
LIVE_CALLS = {
    "mutant-conv-flipped-kernel": lambda b: b.conv2d(_X4, _W4, np.zeros(3)),
    "mutant-conv-one-sided-padding": lambda b: b.conv2d(
        _X4, _W4, np.zeros(3), padding=1
    ),
    "mutant-conv-bias-grad-averaged": lambda b: b.conv2d_backward(
        np.ones((2, 3, 3, 3)), _X4, _W4, np.zeros(3)
    ),
    "mutant-maxpool-grad-to-every-tie": lambda b: b.max_pool2d_backward(
        np.ones((1, 1, 1, 2)), _TIES, kernel_size=2
    ),
    "mutant-maxpool-zero-padding": lambda b: b.max_pool2d(
        _NEGATIVE, kernel_size=3, stride=1, padding=1
    ),
    "mutant-avgpool-grad-not-divided": lambda b: b.avg_pool2d_backward(
        np.ones((2, 2, 2, 2)), _X4, kernel_size=2
    ),
    "mutant-bn-biased-running-var": lambda b: b.batch_norm(
        _BN_X, *_BN_PARAMS, training=True
    ),
    "mutant-bn-eval-uses-batch-stats": lambda b: b.batch_norm(
        _BN_X, *_BN_PARAMS, training=False
    ),
    "mutant-bn-momentum-swapped": lambda b: b.batch_norm(
        _BN_X, *_BN_PARAMS, training=True
    ),
    "mutant-bn-backward-no-variance-term": lambda b: b.batch_norm_backward(
        _BN_X[::-1] ** 2, _BN_X, *_BN_PARAMS, training=True
    ),
    "mutant-layer-norm-unbiased-variance": lambda b: b.layer_norm(
        _BN_X, np.ones(_BN_X.shape[1:]), np.zeros(_BN_X.shape[1:]), normalized_ndim=1
    ),
    "mutant-gelu-exact-as-tanh": lambda b: b.gelu(_X4),
    "mutant-silu-backward-sigmoid-not-complemented": lambda b: b.silu_backward(
        np.ones_like(_X4), _X4
    ),
    "mutant-dropout-not-rescaled": lambda b: b.dropout(
        np.ones((2, 3)), _MASK, p=0.5, training=True
    ),
    "mutant-dropout-eval-applies-mask": lambda b: b.dropout(
        np.ones((2, 3)), _MASK, p=0.5, training=False
    ),
    "mutant-dropout-mask-keeps-p": lambda b: b.dropout_mask((64,), p=0.2, seed=1),
    "mutant-dropout-backward-not-rescaled": lambda b: b.dropout_backward(
        np.ones((2, 3)), np.ones((2, 3)), _MASK, p=0.5, training=True
    ),
    "mutant-init-xavier-normal-notes-typo": lambda b: b.initialize(
        "xavier_normal", (8, 8), seed=1, dtype="float64"
    ),
    "mutant-init-he-normal-no-gain": lambda b: b.initialize(
        "he_normal", (8, 8), seed=1, dtype="float64"
    ),
    "mutant-init-xavier-uniform-bound-as-std": lambda b: b.initialize(
        "xavier_uniform", (8, 8), seed=1, dtype="float64"
    ),
    "mutant-init-normal-truncated": lambda b: b.initialize(
        "he_normal", (64, 64), seed=1, dtype="float64"
    ),
    "mutant-init-normal-truncated-rescaled": lambda b: b.initialize(
        "he_normal", (64, 64), seed=1, dtype="float64"
    ),
    "mutant-dropout-mask-fixed-count-per-row": lambda b: b.dropout_mask(
        (64, 8), p=0.5, seed=1
    ),
    "mutant-sgd-nesterov-old-buffer": _steps(
        "sgd", lr=0.1, momentum=0.9, nesterov=True
    ),
    "mutant-sgd-decay-outside-momentum": _steps(
        "sgd", lr=0.1, momentum=0.9, weight_decay=0.1
    ),
    "mutant-relu-gradient-one-at-zero": lambda b: b.relu_backward(
        np.ones(3), np.array([-1.0, 0.0, 1.0])
    ),
    "mutant-bce-without-clamp": lambda b: b.binary_cross_entropy(
        np.array([[0.0, 0.5]]), np.array([[1.0, 0.0]])
    ),
    "mutant-adam-no-bias-correction": _steps("adam", lr=0.1),
    "mutant-adamw-decay-in-gradient": _steps("adamw", lr=0.1, weight_decay=0.1),
    "mutant-sgd-momentum-dampened": _steps("sgd", lr=0.1, momentum=0.9),
    "mutant-adagrad-accumulates-after-step": _steps("adagrad", lr=0.1),
    "mutant-rmsprop-decay-complement": _steps("rmsprop", lr=0.1),
    "mutant-clip-per-tensor": lambda b: b.clip_grad_norm(
        [np.array([3.0, 4.0]), np.array([0.1])], max_norm=1.0
    )[0],
    "mutant-clip-always-rescales": lambda b: b.clip_grad_norm(
        [np.array([0.3, 0.4])], max_norm=1.0
    )[0],
    "mutant-bce-logits-naive": lambda b: b.binary_cross_entropy_with_logits(
        _LOGITS, np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 1.0]])
    ),
    "mutant-cross-entropy-summed": lambda b: b.softmax_cross_entropy(
        _LOGITS[:1].repeat(2, axis=0), _LABELS
    ),
    "mutant-mse-mean-over-elements": lambda b: b.mse_loss(_BN_X, np.zeros_like(_BN_X)),
    "mutant-hinge-counts-correct-class": lambda b: b.multiclass_hinge_loss(
        _LOGITS[:1], _LABELS[:1]
    ),
    "mutant-softmax-no-max-shift": lambda b: b.softmax(_LOGITS),
    "mutant-softplus-naive": lambda b: b.softplus(_LOGITS),
    "mutant-sigmoid-backward-from-input": lambda b: b.sigmoid_backward(
        np.ones((2, 3)), _LOGITS / 500
    ),
    "mutant-leaky-relu-backward-as-relu": lambda b: b.leaky_relu_backward(
        np.ones((2, 3)), _LOGITS
    ),
    # 1e8 + 1 is not a float32: computed in float32, the sum cancels to 0, not 1.
    "mutant-float64-in-float32": lambda b: b.linear(
        np.array([[1e8 + 1]]), np.ones((1, 1)), np.array([-1e8])
    ),
}


def _flat(result: object) -> list[np.ndarray]:
    if isinstance(result, (tuple, list)):
        return [array for item in result for array in _flat(item)]
    return [] if result is None else [np.asarray(result, dtype=np.float64)]


def test_every_mutant_has_a_live_call() -> None:
    assert set(LIVE_CALLS) == set(MUTANTS), (
        f"LIVE_CALLS lacks {sorted(set(MUTANTS) - set(LIVE_CALLS))} and has stale "
        f"{sorted(set(LIVE_CALLS) - set(MUTANTS))}"
    )


@pytest.mark.parametrize("name", list(MUTANTS))
def test_mutant_differs_from_the_numpy_backend(name: str) -> None:
    """The bug is live: on an input that exercises it, the mutant's answer changes.

    Also catches a mutant broken by a refactoring of the NumPy backend's private
    helpers (it then raises here, instead of failing every test of the run).
    """
    call = LIVE_CALLS[name]
    with np.errstate(all="ignore"):
        mutant = _flat(call(contract.load(MUTANTS[name])))
        original = _flat(call(NumpyBackend()))
    same = len(mutant) == len(original) and all(
        m.shape == o.shape and np.allclose(m, o, rtol=1e-6, atol=1e-9, equal_nan=True)
        for m, o in zip(mutant, original, strict=True)
    )
    assert not same, (
        f"mutant {name!r} ({MUTANTS[name]}) gives the NumPy backend's answer on its "
        "live call: its bug does not show (or the call does not exercise it)"
    )
