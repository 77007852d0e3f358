"""The pytest plugin of the mutant runner: keep the backend tests, record outcomes.

Loaded with ``-p backends.mutants.plugin`` by :mod:`backends.mutants.run`.

* Deselects every test that does not take the ``backend`` fixture (the
  reference's own properties, the counts of the notes): they cannot fail on
  a mutant, and running them once per mutant costs time.
* ``--mutant-max-examples N`` caps the examples of every Hypothesis test at
  ``N``: the profile chosen with ``--hypothesis-profile`` (derandomization,
  deadline, database) is kept, with ``max_examples=N`` on top. Tests that set
  fewer examples themselves keep theirs.
* ``--mutant-no-shrink`` drops Hypothesis' shrink phase: a kill needs one
  failing example, not the smallest one, and shrinking every failure of 40-odd
  mutants would cost more than finding them.
* ``--mutant-report PATH`` writes one record per test to ``PATH`` (JSON): node
  id, property family (the module without ``test_``), the backend it ran
  against, outcome (``passed``, ``failed``, ``error``, ``skipped``), the phase
  of a failure and its short message, plus the collection errors and pytest's
  exit status. Under pytest-xdist only the controller writes; the backend of
  each test travels from the worker in the report's ``user_properties``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

#: How much of a failure's message a record keeps.
MESSAGE_LIMIT = 600
#: The key of the backend's name in ``report.user_properties``.
BACKEND_KEY = "nnspec-mutant-backend"


def family_of(nodeid: str) -> str:
    """The property family of a test: its module's name without ``test_``."""
    return Path(nodeid.split("::", 1)[0]).stem.removeprefix("test_")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("nnspec-mutants")
    group.addoption(
        "--mutant-report",
        metavar="PATH",
        default=None,
        help="write every backend test's outcome to PATH (JSON) for the mutant runner",
    )
    group.addoption(
        "--mutant-max-examples",
        metavar="N",
        type=int,
        default=None,
        help="cap every Hypothesis test at N examples (on top of the profile)",
    )
    group.addoption(
        "--mutant-no-shrink",
        dest="mutant_shrink",
        action="store_false",
        default=True,
        help="report the first failing example of each test without shrinking it",
    )


@pytest.hookimpl(trylast=True)  # after Hypothesis has loaded --hypothesis-profile
def pytest_configure(config: pytest.Config) -> None:
    cap = config.getoption("mutant_max_examples")
    shrink = config.getoption("mutant_shrink")
    if cap is not None or not shrink:
        from hypothesis import Phase, settings

        changes: dict[str, Any] = {}
        name = settings.get_current_profile_name()
        if cap is not None:
            changes["max_examples"] = cap
            name += f"-max-{cap}-examples"
        if not shrink:
            changes["phases"] = [
                phase for phase in settings.default.phases if phase is not Phase.shrink
            ]
            name += "-no-shrink"
        settings.register_profile(name, parent=settings.default, **changes)
        settings.load_profile(name)
    path = config.getoption("mutant_report")
    if path and not hasattr(config, "workerinput"):  # the controller (or no xdist)
        config.pluginmanager.register(Recorder(Path(path)), "nnspec-mutant-recorder")


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    kept, dropped = [], []
    for item in items:
        takes_backend = "backend" in getattr(item, "fixturenames", ())
        (kept if takes_backend else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def _backend_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    loaded = callspec.params.get("backend") if callspec is not None else None
    return getattr(loaded, "id", None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    report.user_properties.append((BACKEND_KEY, _backend_of(item)))
    return report


class Recorder:
    """Collects every test's outcome on the controller; writes the JSON at the end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tests: dict[str, dict[str, Any]] = {}
        self.collection_errors: list[dict[str, str]] = []

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collection_errors.append(
                {"nodeid": report.nodeid, "message": str(report.longrepr)[-2000:]}
            )

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        properties = dict(
            entry for entry in report.user_properties if isinstance(entry, tuple)
        )
        record = self.tests.setdefault(
            report.nodeid,
            {
                "nodeid": report.nodeid,
                "family": family_of(report.nodeid),
                "backend": properties.get(BACKEND_KEY),
                "outcome": None,
                "when": None,
                "message": None,
            },
        )
        if report.failed:
            if record["outcome"] in ("failed", "error"):
                return
            record["outcome"] = "failed" if report.when == "call" else "error"
            record["when"] = report.when
            crash = getattr(report.longrepr, "reprcrash", None)
            text = str(report.longrepr)
            message = getattr(crash, "message", None) or text
            if "RecursionError" in text:  # inside Hypothesis: see run.py's --batch
                message = f"RecursionError (in the traceback): {message}"
            record["message"] = message[:MESSAGE_LIMIT]
        elif report.skipped and record["outcome"] is None:
            record["outcome"] = "skipped"
        elif report.when == "call" and record["outcome"] is None:
            record["outcome"] = "passed"

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        document = {
            "exitstatus": int(exitstatus),
            "collection_errors": self.collection_errors,
            "tests": sorted(self.tests.values(), key=lambda record: record["nodeid"]),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(document, indent=1))
