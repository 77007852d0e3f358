"""The mutant registry: enough mutants, each loadable, each exactly one bug.

``backends/mutants`` holds the NumPy backend with one realistic bug per
mutant; ``nox -s mutants`` runs the property suite against each. These tests
keep the registry honest without running the suite: at least 15 mutants
across every family of op, each a subclass of the NumPy backend that
overrides exactly one operation of the contract (so a kill points at one
bug), with a distinct ``mutant-`` name, a docstring that says what the bug is
and what should catch it, and expected killers that are real property
modules; and each bug is live: on the input of its ``live_call``, the mutant
answers differently from the NumPy backend.

A mutant declares all of this beside its class, in its family module
(``backends/mutants/<module>.py``); ``backends.mutants.MUTANTS`` collects the
instances of those modules, so adding a mutant touches that one file.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import numpy as np
import pytest

import backends.mutants
from backends import contract
from backends.mutants import FAMILIES, MUTANTS
from backends.numpy_backend import NumpyBackend

PROPERTIES = Path(__file__).resolve().parent
CONTRACT_OPERATIONS = frozenset(contract.OPERATIONS + contract.BACKWARD_OPERATIONS)
#: Class attributes a mutant sets besides its one operation.
MUTANT_ATTRIBUTES = frozenset({"name", "family", "expected_killers", "live_call"})


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


def test_every_mutant_class_is_registered() -> None:
    """A mutant class in any module of the package has its instance in MUTANTS.

    Catches a mutant written without its module-level instance, or in a module
    missing from ``FAMILY_MODULES``: it would silently never run.
    """
    registered = set(MUTANTS)
    unregistered = []
    for module_info in pkgutil.iter_modules(backends.mutants.__path__):
        module = importlib.import_module(f"backends.mutants.{module_info.name}")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, NumpyBackend)
                and value.__module__ == module.__name__
                and getattr(value, "name", "") not in registered
            ):
                unregistered.append(f"{module.__name__}.{value.__qualname__}")
    assert not unregistered, (
        f"mutant classes not in MUTANTS: {unregistered}; give each an instance at "
        "the end of its module, and list the module in FAMILY_MODULES"
    )


# -- each mutant is live: it differs from the NumPy backend on its live call ----


def _flat(result: object) -> list[np.ndarray]:
    if isinstance(result, (tuple, list)):
        return [array for item in result for array in _flat(item)]
    return [] if result is None else [np.asarray(result, dtype=np.float64)]


@pytest.mark.parametrize("name", list(MUTANTS))
def test_mutant_differs_from_the_numpy_backend(name: str) -> None:
    """The bug is live: on an input that exercises it, the mutant's answer changes.

    Also catches a mutant broken by a refactoring of the NumPy backend's private
    helpers (it then raises here, instead of failing every test of the run).
    """
    backend = contract.load(MUTANTS[name])
    assert "live_call" in overridden(type(backend)), (
        f"mutant {name!r} ({MUTANTS[name]}) has no live_call of its own: give its "
        "class a static method live_call(backend) that calls the operation it "
        "breaks on an input that exercises the bug"
    )
    call = type(backend).live_call
    with np.errstate(all="ignore"):
        mutant = _flat(call(backend))
        original = _flat(call(NumpyBackend()))
    same = len(mutant) == len(original) and all(
        m.shape == o.shape and np.allclose(m, o, rtol=1e-6, atol=1e-9, equal_nan=True)
        for m, o in zip(mutant, original, strict=True)
    )
    assert not same, (
        f"mutant {name!r} ({MUTANTS[name]}) gives the NumPy backend's answer on its "
        "live call: its bug does not show (or the call does not exercise it)"
    )
