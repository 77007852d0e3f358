"""Mutant backends: the NumPy backend with one realistic bug each.

Every mutant subclasses :class:`backends.numpy_backend.NumpyBackend` and
overrides exactly one operation of the contract (the precision mutant: every
one, with the same bug) with a bug of the kind people ship (a train/eval
mix-up, a biased running variance, a missing rescale, a forgotten bias
correction, a standard deviation off by a constant, an unstable formula).
Its docstring says what the bug is and which property should catch it; its
class attributes say the same for tools:

* ``name``: ``"mutant-..."``, the backend name in test ids;
* ``family``: one of :data:`FAMILIES`, the kind of op it breaks;
* ``expected_killers``: the property families (test modules without
  ``test_``) expected to fail on it;
* ``live_call``: a static method ``live_call(backend)`` making one call of the
  contract on an input that exercises the bug (shared inputs are in
  :mod:`backends.mutants.probes`); on it the mutant must answer differently
  from the NumPy backend.

To add a mutant, write its class in the module of :data:`FAMILY_MODULES` that
holds its kind of bug, with those attributes, and an instance of it at the
module's end; :data:`MUTANTS` picks it up, and
``properties/test_mutants_registry.py`` checks it. A new module also needs its
line in :data:`FAMILY_MODULES`.

The property suite must fail every mutant: ``python -m backends.mutants.run``
(or ``nox -s mutants``) runs the suite against each and prints which
properties killed it.
"""

from __future__ import annotations

import importlib

from backends.numpy_backend import NumpyBackend

#: The kinds of op the mutants break; every one has at least one mutant.
FAMILIES: tuple[str, ...] = (
    "conv",
    "pooling",
    "batchnorm",
    "dropout",
    "initializers",
    "optimizers",
    "clipping",
    "losses",
    "activations",
    "precision",  # every operation, computed in a narrower dtype than promised
)

#: The modules of ``backends.mutants`` that hold mutants: one named after each
#: family, then those grouping mutants by a subtler kind of bug. Within a
#: family, mutants are listed in this order of modules, then in definition order.
FAMILY_MODULES: tuple[str, ...] = (
    *FAMILIES,
    "distributions",  # sampling: dropout masks, initializers' normal draws
    "optimizer_forms",  # SGD wrong only where momentum matters
    "conventions",  # wrong only at a kink or an end of the domain
)


def _collect() -> dict[str, str]:
    """Every mutant instance of :data:`FAMILY_MODULES`: name -> ``--backend`` spec.

    Ordered by family (as in :data:`FAMILIES`), then by module, then by
    definition. Only instances of classes defined in the module itself count,
    so a mutant imported from another module is not listed twice.
    """
    found: list[tuple[str, str, str]] = []
    for module_name in FAMILY_MODULES:
        module = importlib.import_module(f"{__name__}.{module_name}")
        for attribute, value in vars(module).items():
            if (
                isinstance(value, NumpyBackend)
                and type(value).__module__ == module.__name__
            ):
                found.append(
                    (value.family, value.name, f"{module.__name__}:{attribute}")
                )
    rank = {family: index for index, family in enumerate(FAMILIES)}
    found.sort(key=lambda entry: rank.get(entry[0], len(rank)))
    mutants: dict[str, str] = {}
    for _, name, spec in found:
        if name in mutants:
            raise RuntimeError(
                f"two mutants are named {name!r}: {mutants[name]} and {spec}"
            )
        mutants[name] = spec
    return mutants


#: Every mutant: backend name -> import path (``--backend`` spec).
MUTANTS: dict[str, str] = _collect()
