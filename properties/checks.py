"""What one check of a backend saw: declined examples, worst error, how to rerun it.

A pytest plugin (loaded by ``-p properties.checks`` in pyproject's ``addopts``)
that keeps a record of the running check, which the helpers of
:mod:`properties.assertions` write to:

* **Declined examples.** A backend declines an option it does not have (an
  unequal stride pair, Nesterov momentum, a backward in eval mode) by raising
  ``NotImplementedError`` from the operation.
  :func:`properties.assertions.call_backend` then calls :func:`decline`: the
  example is counted and rejected (``hypothesis.reject()``), so Hypothesis
  keeps searching the space the backend does support and a real difference
  there is still found. A check whose every example was declined ends as a
  skip with the reason ``unsupported: backend <name> declined every example of
  <op>: <the backend's message>``; a check that checked some examples passes
  or fails on those, and the number it declined goes in the report's user
  properties as ``("nnspec-declined", n)``.
* **Precision.** :func:`properties.assertions.assert_close` reports the ratio
  ``max |actual - expected| / allowed`` of every comparison (:func:`observe`).
  The worst of the check goes in the user properties as ``("nnspec-precision",
  {"worst_ratio": r, "output": what})``, and the worst of each Hypothesis
  example is given to ``hypothesis.target``, which steers the search toward
  the inputs where the backend is least accurate.
* **Reproduce.** :func:`reproduce` is the command that reruns this check
  against this backend (:func:`properties.reproduce.reproduce_command`: the
  node id, the ``--backend`` spec it was loaded from, the profile, quoted for
  a shell; a check on the reference needs no ``--backend``). Every failure
  of a backend check or of a reference check ends with it: a failure whose
  text (message and Hypothesis's notes) does not already end with it gets it
  as a last note.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import reject, target
from hypothesis.errors import FailedHealthCheck, Unsatisfiable, UnsatisfiedAssumption

from properties.reproduce import reproduce_command

#: The skip reason's prefix that makes a check's outcome "unsupported".
UNSUPPORTED = "unsupported:"
#: A check that declined this many examples and checked none is unsupported:
#: it ends there rather than letting Hypothesis try hundreds more.
EVERY_EXAMPLE_DECLINED = 100
#: The ``hypothesis.target`` label of the worst error of an example.
TARGET_LABEL = "worst |error| / allowed"


@dataclass
class Check:
    """The running check: one pytest item, maybe of one backend."""

    nodeid: str
    backend_spec: str | None
    backend_name: str | None
    seed: Any
    item: pytest.Item | None = None
    declined: int = 0
    first_declined: str | None = None  # the backend's message
    declined_operation: str | None = None
    completed: int = 0  # examples that ran to their end without declining
    worst_ratio: float = -1.0
    worst_output: str = ""
    example_worst: float | None = None

    def reproduce(self) -> str:
        return reproduce_command(
            self.nodeid, backend_spec=self.backend_spec, seed=self.seed
        )

    def unsupported_reason(self) -> str:
        backend = self.backend_name or "under test"
        return (
            f"{UNSUPPORTED} backend {backend} declined every example of "
            f"{self.declined_operation} ({self.declined} tried): "
            f"{self.first_declined}"
        )


_current: Check | None = None


def reproduce() -> str:
    """The command that reruns the running check (falls back to its node id)."""
    if _current is not None:
        return _current.reproduce()
    return reproduce_command()


def decline(backend: str, operation: str, error: BaseException) -> None:
    """Record a ``NotImplementedError`` of ``operation`` and reject the example.

    After :data:`EVERY_EXAMPLE_DECLINED` declined examples and not one checked,
    the check ends as unsupported (a skip, which Hypothesis lets through).
    """
    check = _current
    if check is not None:
        check.backend_name = check.backend_name or backend
        check.declined += 1
        if check.first_declined is None:
            check.first_declined = str(error) or type(error).__name__
            check.declined_operation = operation
        if not check.completed and check.declined >= EVERY_EXAMPLE_DECLINED:
            pytest.skip(check.unsupported_reason())
    reject()


def observe(ratio: float, output: str) -> None:
    """Record one comparison's worst ``|actual - expected| / allowed``."""
    check = _current
    if check is None or math.isnan(ratio):
        return
    if check.example_worst is None or ratio > check.example_worst:
        check.example_worst = ratio
    if ratio > check.worst_ratio:
        check.worst_ratio = ratio
        check.worst_output = output
        if check.item is not None:
            entry = ("nnspec-precision", {"worst_ratio": ratio, "output": output})
            properties = check.item.user_properties
            properties[:] = [p for p in properties if p[0] != "nnspec-precision"]
            properties.append(entry)


def _counting(test: Callable[..., Any], check: Check) -> Callable[..., Any]:
    """Hypothesis's inner test, counting completed examples and targeting errors."""

    @functools.wraps(test)
    def run_example(*args: Any, **kwargs: Any) -> Any:
        check.example_worst = None
        try:
            result = test(*args, **kwargs)
        except UnsatisfiedAssumption:
            raise
        except BaseException:
            check.completed += 1
            raise
        check.completed += 1
        if check.example_worst is not None:
            target(min(check.example_worst, 1e300), label=TARGET_LABEL)
        return result

    return run_example


def _backend_of(item: pytest.Item) -> tuple[str | None, str | None]:
    callspec = getattr(item, "callspec", None)
    loaded = callspec.params.get("backend") if callspec is not None else None
    spec = getattr(loaded, "spec", None)
    inner = getattr(loaded, "backend", None)
    name = getattr(inner, "name", None) or getattr(loaded, "id", None)
    return spec, name


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    global _current
    spec, name = _backend_of(item)
    check = Check(
        nodeid=item.nodeid,
        backend_spec=spec,
        backend_name=name,
        seed=item.config.getoption("hypothesis_seed", None),
        item=item,
    )
    hypothesis_handle = getattr(getattr(item, "obj", None), "hypothesis", None)
    inner = getattr(hypothesis_handle, "inner_test", None)
    if inner is not None:
        hypothesis_handle.inner_test = _counting(inner, check)
    _current = check
    try:
        return (yield)
    except (Unsatisfiable, UnsatisfiedAssumption, FailedHealthCheck) as error:
        if check.declined and not check.completed:
            pytest.skip(check.unsupported_reason())
        _add_note(error, check)
        raise
    except BaseException as error:
        if not isinstance(error, (pytest.skip.Exception, KeyboardInterrupt)):
            _add_note(error, check)
        raise
    finally:
        _current = None
        if inner is not None:
            hypothesis_handle.inner_test = inner
        if check.declined:
            item.user_properties.append(("nnspec-declined", check.declined))


def _add_note(error: BaseException, check: Check) -> None:
    """End the failure's text with the command that reruns the check.

    A check of a loaded backend reruns with ``--backend``; one of the
    reference (which has no spec) without it, as the reference always runs.
    """
    if check.backend_spec is None and check.backend_name is None:
        return
    line = f"reproduce: {check.reproduce()}"
    text = "\n".join([str(error), *getattr(error, "__notes__", ())])
    if not text.rstrip().endswith(line):
        error.add_note(line)
