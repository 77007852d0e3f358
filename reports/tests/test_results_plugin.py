"""The results plugin (``properties/results.py``) on a small suite of its own.

Each test writes a suite to a temporary folder (a conftest with the same
``backend``/``dtype`` fixtures as the real one, a backend that cannot be
loaded and one that is unavailable) and runs pytest on it in a subprocess, as
a user would, with and without pytest-xdist, then reads the results file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CONFTEST = """
import pytest

pytest_plugins = ["properties.results"]


class Loaded:
    def __init__(self, spec, skip=None, error=None):
        self.spec, self.skip_reason, self.error, self.backend = spec, skip, error, None

    @property
    def id(self):
        return self.spec


LOADED = [
    Loaded("good"),
    Loaded("gone", skip="backend 'gone' unavailable: no GPU here"),
    Loaded("broken", error="cannot load backend 'broken': ImportError: <boom> & co"),
]


def pytest_configure(config):
    config._nnspec_backends = LOADED


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        ids = [b.id for b in LOADED]
        metafunc.parametrize("backend", LOADED, ids=ids, indirect=True)
    if "dtype" in metafunc.fixturenames:
        metafunc.parametrize("dtype", ["float32", "float64"], indirect=True)


@pytest.fixture
def backend(request):
    if request.param.error:
        pytest.fail(request.param.error, pytrace=False)
    if request.param.skip_reason:
        pytest.skip(request.param.skip_reason)
    return request.param


@pytest.fixture
def dtype(request):
    return request.param
"""

AGREEMENT = """
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st


class Op:
    def __init__(self, name):
        self.name = name


OPS = [Op("relu"), Op("sigmoid"), Op("tanh"), Op("hang")]


@pytest.mark.parametrize("op", OPS, ids=[op.name for op in OPS])
@settings(max_examples=10, database=None, suppress_health_check=list(HealthCheck))
@given(x=st.floats(-10, 10))
def test_forward(op, backend, dtype, x):
    if op.name == "sigmoid" and dtype == "float64":
        pytest.skip("not implemented: sigmoid in float64")
    if op.name == "tanh" and dtype == "float64":
        pytest.skip("needs a <special> machine")
    if op.name == "relu" and dtype == "float32":
        assert x < 1, f"relu <mismatch> & x={x}"
    if op.name == "hang":
        while True:
            time.sleep(0.01)


def test_without_backend():
    pass
"""

STUCK = """
import signal
import time


def test_stuck(backend):
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])
    time.sleep(60)


def test_after(backend):
    pass
"""


def _run_suite(
    directory: Path, *arguments: str, grace: str = "10"
) -> tuple[subprocess.CompletedProcess[str], dict]:
    results = directory / "results.json"
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "NNSPEC_TIMEOUT_GRACE": grace,
    }
    environment.pop("PYTEST_ADDOPTS", None)
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            f"--nnspec-results={results}",
            *arguments,
        ],
        cwd=directory,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert results.is_file(), completed.stdout + completed.stderr
    return completed, json.loads(results.read_text())


def _suite(tmp_path: Path, **modules: str) -> Path:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    for name, source in modules.items():
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    return tmp_path


@pytest.mark.parametrize("distribution", [["-p", "no:xdist"], ["-n", "2"]])
def test_every_outcome_is_recorded_with_its_metadata(tmp_path: Path, distribution):
    directory = _suite(tmp_path, test_agreement=AGREEMENT)
    completed, document = _run_suite(
        directory,
        "--timeout=2",
        "--nnspec-progress",
        "--nnspec-progress-interval=0",
        *distribution,
    )
    output = completed.stdout + completed.stderr
    records = {record["nodeid"].split("::")[-1]: record for record in document["tests"]}
    outcomes = {name: record["outcome"] for name, record in records.items()}
    assert outcomes == {
        "test_forward[good-float32-relu]": "failed",
        "test_forward[good-float64-relu]": "passed",
        "test_forward[good-float32-sigmoid]": "passed",
        "test_forward[good-float64-sigmoid]": "skipped-not-implemented",
        "test_forward[good-float32-tanh]": "passed",
        "test_forward[good-float64-tanh]": "skipped-other",
        "test_forward[good-float32-hang]": "timeout",
        "test_forward[good-float64-hang]": "timeout",
        **{
            f"test_forward[gone-{d}-{o}]": "skipped-unavailable"
            for d in ("float32", "float64")
            for o in ("relu", "sigmoid", "tanh", "hang")
        },
        **{
            f"test_forward[broken-{d}-{o}]": "error"
            for d in ("float32", "float64")
            for o in ("relu", "sigmoid", "tanh", "hang")
        },
        "test_without_backend": "passed",
    }, output

    passed = records["test_forward[good-float64-relu]"]
    assert passed["family"] == "agreement"
    assert (passed["op"], passed["backend"], passed["dtype"]) == (
        "relu",
        "good",
        "float64",
    )
    assert passed["examples"] == 10, "the examples Hypothesis ran"

    failed = records["test_forward[good-float32-relu]"]
    assert "relu <mismatch> & x=" in failed["message"]
    assert (
        "Falsifying example" in failed["longrepr"]
        or "Failing test case" in failed["longrepr"]
    )
    assert (
        " -m pytest 'test_agreement.py::test_forward[good-float32-relu]'"
        in failed["reproduce"]
    )
    assert "--backend=good" in failed["reproduce"]

    hung = records["test_forward[good-float32-hang]"]
    assert "Timeout (>2s) from pytest-timeout" in hung["message"]
    assert hung["duration"] < 30, "stopped at its limit, not replayed by Hypothesis"

    broken = records["test_forward[broken-float32-relu]"]
    assert "cannot load backend 'broken'" in broken["message"]
    assert broken["when"] == "setup"
    assert records["test_forward[gone-float32-relu]"]["reason"].startswith(
        "backend 'gone' unavailable"
    )
    assert records["test_without_backend"]["backend"] is None

    assert document["exitstatus"] == 1
    assert document["collected"] == len(records)
    assert document["timeout"] == 2.0
    assert {b["id"]: b["status"] for b in document["backends"]} == {
        "good": "available",
        "gone": "unavailable",
        "broken": "error",
    }
    assert document["environment"]["versions"]["pytest"]
    assert f"nnspec: 0/{len(records)}" not in output
    assert f"nnspec: {len(records)}/{len(records)} (100%)" in output, output
    assert "now: " in output and "agreement" in output
    assert "nnspec results" in output and "timeout" in output


@pytest.mark.parametrize("distribution", [["-p", "no:xdist"], ["-n", "1"]])
def test_a_check_stuck_where_signals_wait_is_ended_and_recorded(
    tmp_path: Path, distribution
):
    directory = _suite(tmp_path, test_native=STUCK)
    _, document = _run_suite(
        directory, "--timeout=1", "-k", "good", *distribution, grace="1"
    )
    records = {record["nodeid"].split("::")[-1]: record for record in document["tests"]}
    stuck = records["test_stuck[good]"]
    assert stuck["outcome"] == "timeout", stuck
    assert "still running 3s after it started" in stuck["message"]
    assert stuck["backend"] == "good"
    if "-n" in distribution:
        assert records["test_after[good]"]["outcome"] == "passed", "the run went on"
    else:
        assert document["interrupted"], "the results say the run was cut short"


RECORDED = """
import os

import pytest


@pytest.mark.nnspec_ops("linear", "relu")
def test_model(backend, record_property):
    record_property("nnspec-precision", {"worst_ratio": 0.25, "output": "dx"})
    record_property("nnspec-precision", {"worst_ratio": 0.5, "output": "y"})
    record_property("nnspec-declined", 3)


def test_declined(backend):
    pytest.skip("unsupported: backend good declined every example of pool: no")


def test_reference():
    pass
"""

DYING = """
import os


def test_first():
    pass


def test_dies():
    os._exit(7)


def test_never_started():
    pass
"""


def _by_name(document: dict) -> dict[str, dict]:
    return {record["nodeid"].split("::")[-1]: record for record in document["tests"]}


def test_fields_of_schema_2_and_the_headline(tmp_path: Path):
    directory = _suite(tmp_path, test_recorded=RECORDED)
    completed, document = _run_suite(directory, "-k", "good or reference")
    records = _by_name(document)
    assert document["schema"] == 2
    model = records["test_model[good]"]
    assert model["kind"] == "backend" and model["outcome"] == "passed"
    assert model["uses"] == ["linear", "relu"]
    assert model["precision"] == {"worst_ratio": 0.5, "output": "y"}
    assert model["declined"] == 3
    declined = records["test_declined[good]"]
    assert declined["outcome"] == "unsupported", declined
    assert declined["reason"].startswith("unsupported: backend good declined")
    reference = records["test_reference"]
    assert reference["kind"] == "suite" and reference["uses"] == []
    assert (reference["precision"], reference["declined"]) == (None, None)
    assert document["summary_by_kind"]["backend"] == {"passed": 1, "unsupported": 1}
    assert document["not_run"] == 0 and document["interrupted"] is None
    assert "backend checks: 2 (1 passed, 1 unsupported)" in completed.stdout
    assert "the suite's own tests (reference, harness): 1 (1 passed)" in (
        completed.stdout
    )


@pytest.mark.parametrize("distribution", [["-p", "no:xdist"], ["-n", "2"]])
def test_checks_past_the_budget_are_recorded_as_not_run(tmp_path: Path, distribution):
    directory = _suite(tmp_path, test_agreement=AGREEMENT)
    completed, document = _run_suite(
        directory, "--nnspec-budget=0.001", "-k", "not hang", *distribution
    )
    assert document["collected"] == len(document["tests"]) > 0
    assert sum(document["summary"].values()) == document["collected"]
    assert set(document["summary"]) == {"not-run"}, document["summary"]
    assert document["not_run_reasons"] == {
        "not run: the run's time budget was exhausted": document["collected"]
    }
    assert all(t["reproduce"] for t in document["tests"])
    assert completed.returncode == 1, "checks that never ran fail the run"
    assert "NOT RUN: " in completed.stdout


def test_a_run_that_dies_leaves_a_journal_that_finalize_completes(tmp_path: Path):
    from properties import results

    directory = _suite(tmp_path, test_dying=DYING)
    path = directory / "results.json"
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    environment.pop("PYTEST_ADDOPTS", None)
    completed = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-p", "no:cacheprovider"),
            *("-p", "no:xdist", f"--nnspec-results={path}"),
        ],
        cwd=directory,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 7, completed.stdout + completed.stderr
    assert not path.exists() and results.journal_path(path).is_file()
    document = results.finalize(path)
    assert path.is_file() and not results.journal_path(path).exists()
    assert document == json.loads(path.read_text())
    outcomes = {name: record["outcome"] for name, record in _by_name(document).items()}
    assert outcomes == {
        "test_first": "passed",
        "test_dies": "error",
        "test_never_started": "not-run",
    }
    assert document["collected"] == 3 and document["interrupted"] == "died"
    records = _by_name(document)
    assert (
        "died while running test_dying.py::test_dies" in records["test_dies"]["message"]
    )
    assert records["test_never_started"]["reason"] == (
        "not run: the pytest process died while running test_dying.py::test_dies"
    )
