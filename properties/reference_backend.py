"""The reference as a backend: the oracle run through the backend interface.

:data:`REFERENCE` wraps the ``reference`` package in the backend interface
(``name``, ``dtypes``, ``asarray``, ``to_numpy``, and every reference function
as a method), so that a property written against the contract also runs
against the oracle itself, in float64 only. Properties use it in two ways:

* as the expected value of a comparison (``run_trajectory(REFERENCE, ...)``);
* as one more entry of the ``backend`` parametrization: a test marked
  ``@pytest.mark.reference_too`` (:data:`MARKER`) runs on every selected
  backend and on the reference, whatever ``--backend`` selects
  (:data:`REFERENCE_ENTRY`, id ``reference``; with ``dtype``, float64 only).
  Its checks count with the suite's own tests, not as checks of a backend:
  the entry has no ``spec`` to load, so the results plugin records them with
  kind ``suite`` and a reproduce command without ``--backend``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["MARKER", "REFERENCE", "REFERENCE_ENTRY", "ReferenceImplementation"]

#: The marker that adds the reference to a test's ``backend`` parametrization.
MARKER = "reference_too"


class ReferenceImplementation:
    """The ``reference`` package with the backend interface (float64, NumPy).

    Operations are looked up by name in the reference modules, so a property
    calls ``impl.batch_norm(...)`` the same way on a backend and on the oracle.
    ``asarray`` copies, ``to_numpy`` copies: the reference is pure, and so are
    the arrays the property keeps.
    """

    name = "reference"
    dtypes: tuple[str, ...] = ("float64",)
    device = "cpu"
    unavailable_reason: str | None = None

    def __init__(self) -> None:
        # Imported here: the catalog imports modules that import this one.
        from properties.catalog.entry import REFERENCE_MODULES

        self._modules = [importlib.import_module(name) for name in REFERENCE_MODULES]

    def __repr__(self) -> str:
        return "<reference>"

    def asarray(self, a: np.ndarray, dtype: str = "float64") -> np.ndarray:
        if np.dtype(dtype).kind == "f" and dtype not in self.dtypes:
            raise ValueError(f"the reference computes in float64 only, got {dtype!r}")
        return np.array(a, dtype=dtype, copy=True)

    def to_numpy(self, a: Any) -> np.ndarray:
        return np.array(a, copy=True)

    def synchronize(self) -> None:
        """Nothing is queued: the reference runs eagerly on the host."""

    def __getattr__(self, operation: str) -> Callable[..., Any]:
        if operation.startswith("_"):
            raise AttributeError(operation)
        for module in self.__dict__.get("_modules", ()):
            function = getattr(module, operation, None)
            if callable(function) and operation in getattr(module, "__all__", ()):
                return function
        raise AttributeError(f"the reference has no operation {operation!r}")


#: The reference as an implementation the properties can run against.
REFERENCE = ReferenceImplementation()


class ReferenceEntry:
    """The reference's entry in the ``backend`` parametrization.

    It reads like a loaded backend spec (``id``, ``backend``, ``error``,
    ``skip_reason``) except that its ``spec`` is ``None``: there is nothing to
    load, and ``--backend`` cannot select or deselect it.
    """

    id = REFERENCE.name
    spec: str | None = None
    backend = REFERENCE
    error: str | None = None
    skip_reason: str | None = None

    def __repr__(self) -> str:
        return "<reference entry>"


REFERENCE_ENTRY = ReferenceEntry()
