"""Backend selection, dtypes and Hypothesis profiles for the property suite.

Backends come from ``--backend SPEC`` (repeatable), else the comma-separated
environment variable ``NNSPEC_BACKENDS``, else every built-in backend. A
backend that cannot run here (no GPU, library not installed) is skipped with
its reason; a spec that cannot be loaded fails every test that uses it with
the loading error, so a typo never passes silently.

A test takes the ``backend`` fixture to run once per selected backend, and
``dtype`` to run once per dtype (skipped where the backend lacks the dtype).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings

from backends import contract

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
)
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


def pytest_configure(config: pytest.Config) -> None:
    # Under pytest-xdist every worker already has a core to itself: torch's
    # intra-op thread pool would oversubscribe them (a training-mode batch norm
    # call went from 20 us to 27 ms on 2 cores).
    if os.environ.get("PYTEST_XDIST_WORKER"):
        try:
            import torch
        except ImportError:
            return
        torch.set_num_threads(1)


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
    if "backend" in metafunc.fixturenames:
        loaded = loaded_backends(metafunc.config)
        metafunc.parametrize(
            "backend", loaded, ids=[item.id for item in loaded], indirect=True
        )
    if "dtype" in metafunc.fixturenames:
        metafunc.parametrize("dtype", contract.DTYPES, indirect=True)


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
