"""Backend selection, dtypes and Hypothesis profiles for the property suite.

Backends come from ``--backend SPEC`` (repeatable), else the comma-separated
environment variable ``NNSPEC_BACKENDS``, else every built-in backend. A
backend that cannot run here (no GPU, library not installed) is skipped with
its reason; a spec that cannot be loaded fails every test that uses it with
the loading error, so a typo never passes silently.

A test takes the ``backend`` fixture to run once per selected backend, and
``dtype`` to run once per dtype (skipped where the backend lacks the dtype).
A test marked ``@pytest.mark.reference_too`` runs on the reference as well
(:mod:`properties.reference_backend`; id ``reference``, float64 only), whatever
``--backend`` selects: a property of the contract holds for the oracle too.

Hypothesis profiles: ``dev`` (10 examples, the default), ``ci`` (25,
derandomized; what CI runs) and ``nightly`` (300). A failing check costs more
than a passing one: Hypothesis minimises the counterexample. The ``ci``
profile keeps that cost bounded, so that a backend that fails everywhere
finishes about as fast as a healthy one: it skips the ``explain`` phase (which
reruns a failure many times to say which parts of it matter: 95 s instead of
6 s for a backend failing all six ops of examples.tiny) and stops shrinking a
counterexample after ``NNSPEC_SHRINK_SECONDS`` (default 5) and reports the
smallest found by then.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.internal.conjecture import engine as hypothesis_engine

from backends import contract
from properties.reference_backend import MARKER, REFERENCE, REFERENCE_ENTRY

_SUPPRESSED = [HealthCheck.too_slow, HealthCheck.data_too_large]

settings.register_profile(
    "dev",
    max_examples=10,
    deadline=None,
    suppress_health_check=_SUPPRESSED,
)
settings.register_profile(
    "ci",
    max_examples=25,
    derandomize=True,
    deadline=None,
    print_blob=True,
    database=None,
    suppress_health_check=_SUPPRESSED,
    phases=[phase for phase in Phase if phase is not Phase.explain],
)
#: Profiles whose shrinking stops after NNSPEC_SHRINK_SECONDS per check.
SHRINK_CAPPED_PROFILES = ("ci",)
SHRINK_SECONDS_VARIABLE = "NNSPEC_SHRINK_SECONDS"
DEFAULT_SHRINK_SECONDS = 5.0
settings.register_profile(
    "nightly",
    max_examples=300,
    deadline=None,
    print_blob=True,
    suppress_health_check=_SUPPRESSED,
    phases=list(Phase),
)
# --hypothesis-profile overrides this; HYPOTHESIS_PROFILE picks one too.
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.hookimpl(trylast=True)  # after Hypothesis loads --hypothesis-profile
def pytest_configure(config: pytest.Config) -> None:
    _cap_shrinking()
    # Under pytest-xdist every worker already has a core to itself: torch's
    # intra-op thread pool would oversubscribe them (a training-mode batch norm
    # call went from 20 us to 27 ms on 2 cores).
    if os.environ.get("PYTEST_XDIST_WORKER"):
        try:
            import torch
        except ImportError:
            return
        torch.set_num_threads(1)


def _cap_shrinking() -> None:
    """Stop shrinking one counterexample after a few seconds (``ci`` profile).

    Hypothesis has no setting for it: its engine stops shrinking after the
    module constant ``MAX_SHRINKING_SECONDS`` (300 s), then reports the
    smallest failing example found so far. Shrinking a typical failure here
    takes well under a second, so the cap binds only on slow ops and the
    derandomized ``ci`` profile stays reproducible in practice.
    """
    if settings.get_current_profile_name() not in SHRINK_CAPPED_PROFILES:
        return
    if not hasattr(hypothesis_engine, "MAX_SHRINKING_SECONDS"):
        return  # a Hypothesis without it: its own limit stands
    text = os.environ.get(SHRINK_SECONDS_VARIABLE, "")
    try:
        seconds = float(text) if text.strip() else DEFAULT_SHRINK_SECONDS
    except ValueError:
        raise pytest.UsageError(
            f"{SHRINK_SECONDS_VARIABLE} must be a number of seconds, got {text!r}"
        ) from None
    hypothesis_engine.MAX_SHRINKING_SECONDS = seconds


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("nnspec")
    group.addoption(
        "--backend",
        action="append",
        default=[],
        metavar="SPEC",
        help=(
            "backend to verify: a built-in name "
            f"({', '.join(contract.BUILTIN)}) or 'package.module:attribute'; "
            f"repeatable; default: ${contract.ENVIRONMENT_VARIABLE} or every "
            "built-in backend"
        ),
    )


class LoadedBackend:
    """The outcome of loading one spec: the backend, or why it cannot run."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.backend: Any = None
        self.error: str | None = None
        self.skip_reason: str | None = None
        try:
            self.backend = contract.load(spec)
        except Exception as error:  # any failure to load is reported, not raised
            kind = type(error).__name__
            self.error = f"cannot load backend {spec!r}: {kind}: {error}"
            return
        reason = contract.unavailable_reason(self.backend)
        if reason:
            self.skip_reason = f"backend {self.backend.name!r} unavailable: {reason}"

    @property
    def id(self) -> str:
        return self.backend.name if self.backend is not None else self.spec


def loaded_backends(config: pytest.Config) -> list[LoadedBackend]:
    """Every selected backend, loaded once per session."""
    cache = getattr(config, "_nnspec_backends", None)
    if cache is None:
        specs = contract.selected(config.getoption("backend"))
        cache = [LoadedBackend(spec) for spec in specs]
        config._nnspec_backends = cache  # type: ignore[attr-defined]
    return cache


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = []
    for loaded in loaded_backends(config):
        if loaded.error:
            lines.append(f"nnspec backend {loaded.spec}: LOAD ERROR: {loaded.error}")
        elif loaded.skip_reason:
            lines.append(f"nnspec backend {loaded.spec}: skipped: {loaded.skip_reason}")
        else:
            b = loaded.backend
            lines.append(
                f"nnspec backend {loaded.spec}: name={b.name} device={b.device} "
                f"dtypes={','.join(b.dtypes)}"
            )
    return lines


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    names = metafunc.fixturenames
    if "backend" not in names:
        if "dtype" in names:
            metafunc.parametrize("dtype", contract.DTYPES, indirect=True)
        return
    entries: list[Any] = list(loaded_backends(metafunc.config))
    reference_too = metafunc.definition.get_closest_marker(MARKER) is not None
    if "dtype" not in names:
        if reference_too:
            entries.append(REFERENCE_ENTRY)
        metafunc.parametrize(
            "backend", entries, ids=[entry.id for entry in entries], indirect=True
        )
        return
    # One parametrization of both, so that the reference gets float64 alone
    # (a float32 reference check is not generated, rather than skipped).
    cases = [(entry, name) for entry in entries for name in contract.DTYPES]
    if reference_too:
        cases += [(REFERENCE_ENTRY, name) for name in REFERENCE.dtypes]
    metafunc.parametrize(
        ("backend", "dtype"),
        cases,
        ids=[f"{entry.id}-{name}" for entry, name in cases],
        indirect=True,
    )


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Any:
    loaded: LoadedBackend = request.param
    if loaded.error:
        pytest.fail(loaded.error, pytrace=False)
    if loaded.skip_reason:
        pytest.skip(loaded.skip_reason)
    return loaded.backend


@pytest.fixture
def dtype(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if "backend" in request.fixturenames:
        backend = request.getfixturevalue("backend")
        if name not in backend.dtypes:
            pytest.skip(f"not implemented: backend {backend.name!r} has no {name}")
    return name
