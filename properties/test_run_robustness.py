"""A run of the suite survives hostile backends and ends with every check accounted for.

Each test runs the agreement checks (``properties/test_agreement.py``) in a
pytest subprocess, as a CI job would, against the healthy NumPy backend and
backends that attack the run (:mod:`properties.hostile_backends`: an op that
hangs, one that hangs where the alarm cannot stop it, one that ends its
process, one that aborts, a spec that fails to import, an ``asarray`` that
spoils everything, an op that changes its input) or break their results
(:mod:`properties.broken_backends`: a NaN, a wrong shape). Then it reads the
results file and asserts that

* the run ended, with pytest's exit status for failures (1) or an interruption (2);
* every collected check has exactly one record, and the counts by outcome add
  up to the number collected;
* the blame is right: the hostile backend's misbehaving op is the one that
  failed, timed out or crashed, with a message naming it; the checks the
  hostile backend never ran are "not run" with the reason; and NumPy's checks
  all passed, whatever ran beside them;
* SIGTERM (what ``timeout`` and a CI cancel send) and SIGINT both leave a
  results file that says how many checks never ran and why.

The runs are kept small (a few ops, two workers, a 2 s time limit) so the
module takes well under a minute.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from properties import broken_backends, hostile_backends
from properties.results import OUTCOMES, journal_path

ROOT = Path(__file__).resolve().parents[1]
HEALTHY = "numpy"
#: The checks a run selects (-k): forward and backward of three ops.
OPS = (
    "(relu or tanh or linear) and not leaky and not prelu and not bilinear and not gelu"
)
FORWARD_OPS = f"test_forward and ({OPS})"
LIMIT = 2  # seconds a check may run (--timeout)
GRACE = 1  # NNSPEC_TIMEOUT_GRACE: a native hang is ended at 2 * 2 + 1 s


@dataclass
class Run:
    """One subprocess run: exit status, output and the results file."""

    returncode: int
    output: str
    document: dict
    seconds: float

    def of(self, backend: str, op: str | None = None) -> list[dict]:
        return [
            record
            for record in self.document["tests"]
            if record["backend"] == backend and (op is None or record["op"] == op)
        ]

    def context(self) -> str:
        counts = {
            backend: dict(Counter(record["outcome"] for record in self.of(backend)))
            for backend in {record["backend"] for record in self.document["tests"]}
        }
        return f"\noutcomes: {counts}\n--- output tail ---\n{self.output[-4000:]}"


def _command(results: Path, backends: list[str], arguments: list[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest",
        str(ROOT / "properties" / "test_agreement.py"),
        "-p",
        "no:cacheprovider",
        "-q",
        f"--nnspec-results={results}",
        *(f"--backend={spec}" for spec in backends),
        *arguments,
    ]


def _environment() -> dict[str, str]:
    environment = {**os.environ, "NNSPEC_TIMEOUT_GRACE": str(GRACE)}
    for name in ("PYTEST_ADDOPTS", "NNSPEC_BACKENDS", "HYPOTHESIS_PROFILE"):
        environment.pop(name, None)
    return environment


def run_suite(
    tmp_path: Path,
    backends: list[str],
    *,
    keyword: str = OPS,
    workers: int = 2,
    profile: str = "ci",
) -> Run:
    results = tmp_path / "results.json"
    arguments = ["-k", keyword, f"--timeout={LIMIT}", f"--hypothesis-profile={profile}"]
    arguments += ["-n", str(workers)] if workers else ["-p", "no:xdist"]
    started = time.monotonic()
    completed = subprocess.run(
        _command(results, [HEALTHY, *backends], arguments),
        cwd=ROOT,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    seconds = time.monotonic() - started
    output = completed.stdout + completed.stderr
    assert results.is_file(), f"no results file\n{output[-4000:]}"
    document = json.loads(results.read_text())
    return Run(completed.returncode, output, document, seconds)


def assert_accounted(run: Run) -> None:
    """One record per collected check, a known outcome each; the counts add up."""
    document = run.document
    tests = document["tests"]
    assert len({t["nodeid"] for t in tests}) == len(tests), "duplicate records"
    assert document["collected"] == len(tests) > 0, run.context()
    assert sum(document["summary"].values()) == len(tests), run.context()
    unknown = [t["nodeid"] for t in tests if t["outcome"] not in OUTCOMES]
    assert not unknown, f"records without a known outcome: {unknown}" + run.context()
    not_run = [t for t in tests if t["outcome"] == "not-run"]
    assert document["not_run"] == len(not_run)
    assert all(t["reason"].startswith("not run:") for t in not_run), run.context()


def assert_healthy_passed(run: Run) -> None:
    records = run.of(HEALTHY)
    assert records, "no check of the healthy backend ran" + run.context()
    problems = [
        f"{r['nodeid']}: {r['outcome']}" for r in records if r["outcome"] != "passed"
    ]
    assert not problems, (
        "the healthy backend's checks suffered:\n" + "\n".join(problems) + run.context()
    )


def _name(attribute: str) -> str:
    return getattr(hostile_backends, attribute).name


def test_crashing_backends_are_quarantined_and_the_others_run(tmp_path: Path):
    """``os._exit`` and ``os.abort`` in relu: an error each, then quarantine."""
    run = run_suite(tmp_path, [hostile_backends.SPECS[a] for a in ("exit", "abort")])
    assert run.returncode == 1, run.context()
    assert_accounted(run)
    assert_healthy_passed(run)
    for attribute in ("exit", "abort"):
        name = _name(attribute)
        crashed = [r for r in run.of(name) if r["outcome"] == "error"]
        assert crashed, f"no crash recorded for {name}" + run.context()
        for record in crashed:
            assert record["op"] == "relu", f"{name} blamed for {record['nodeid']}"
            assert "crashed while running" in record["message"], record["message"]
            assert f"backend {name}" in record["message"], record["message"]
            assert " -m pytest " in record["reproduce"], record["reproduce"]
        for record in run.of(name):
            if record["outcome"] == "not-run":
                assert f"(backend {name}); {name}'s remaining" in record["reason"]
            else:
                assert record["outcome"] in ("passed", "error"), record
                assert record["outcome"] == "passed" or record["op"] == "relu"
        assert name in run.document["quarantined"], run.context()


def test_hanging_ops_time_out_with_their_name_and_the_run_ends(tmp_path: Path):
    """A sleeping relu is stopped at the limit; one deaf to the alarm is ended."""
    specs = [hostile_backends.SPECS[a] for a in ("hang", "native_hang")]
    run = run_suite(tmp_path, specs, keyword=f"test_forward and ({OPS})")
    assert run.returncode == 1, run.context()
    assert_accounted(run)
    assert_healthy_passed(run)
    for attribute in ("hang", "native_hang"):
        name = _name(attribute)
        for record in run.of(name):
            if record["op"] != "relu":
                assert record["outcome"] in ("passed", "not-run"), record
                continue
            if record["outcome"] == "not-run":  # quarantined after two hangs
                assert attribute == "native_hang", record
                continue
            assert record["outcome"] == "timeout", record
            message = record["message"]
            expected = f"(backend {name}, op relu, dtype {record['dtype']})"
            assert f"Timeout (>{LIMIT}s)" in message and expected in message, message
            if attribute == "native_hang":
                assert "still running" in message, message


#: Backends whose results are wrong (and one that cannot be loaded), run
#: together: attribute -> the (test, op) pairs that must fail (None: every
#: check), the rest must pass.
WRONG_RESULTS: dict[str, tuple[str, set[tuple[str, str]] | None]] = {
    "asarray": (hostile_backends.SPECS["asarray"], None),
    "mutation": (hostile_backends.SPECS["mutation"], {("test_forward", "relu")}),
    "nan": (broken_backends.SPECS["nan"], {("test_forward", "tanh")}),
    "wrong_shape": (
        broken_backends.SPECS["wrong_shape"],
        {("test_forward", "linear"), ("test_backward", "tanh")},
    ),
}


@pytest.fixture(scope="module")
def wrong_results_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    specs = [spec for spec, _ in WRONG_RESULTS.values()]
    specs.append(hostile_backends.SPECS["import_error"])
    run = run_suite(tmp_path_factory.mktemp("wrong-results"), specs)
    assert run.returncode == 1, run.context()
    assert_accounted(run)
    assert_healthy_passed(run)
    return run


def test_a_spec_that_fails_to_import_errors_every_check(wrong_results_run: Run):
    spec = hostile_backends.SPECS["import_error"]
    records = wrong_results_run.of(spec)
    assert records, "no record of the spec that fails to import"
    problems = [
        f"{r['nodeid']}: {r['outcome']}: {r['message']}"
        for r in records
        if r["outcome"] != "error" or "libhostile.so" not in r["message"]
    ]
    assert not problems, "\n".join(problems) + wrong_results_run.context()


@pytest.mark.parametrize("attribute", list(WRONG_RESULTS))
def test_wrong_results_fail_only_where_they_are_wrong(
    wrong_results_run: Run, attribute: str
):
    spec, broken = WRONG_RESULTS[attribute]
    module = (
        broken_backends
        if spec.startswith(broken_backends.__name__)
        else (hostile_backends)
    )
    records = wrong_results_run.of(getattr(module, attribute).name)
    assert records, f"no record of {spec}" + wrong_results_run.context()
    problems = []
    for record in records:
        expected = (
            "failed"
            if broken is None or (record["test"], record["op"]) in broken
            else "passed"
        )
        if record["outcome"] != expected:
            problems.append(f"{record['nodeid']}: {record['outcome']}, not {expected}")
    assert not problems, "\n".join(problems) + wrong_results_run.context()


@pytest.mark.parametrize(
    ("name", "workers"), [("SIGTERM", 2), ("SIGINT", 0)], ids=["SIGTERM", "SIGINT"]
)
def test_an_interrupted_run_leaves_results_that_say_what_never_ran(
    tmp_path: Path, name: str, workers: int
):
    """The signal arrives while a hanging op holds the run up."""
    results = tmp_path / "results.json"
    arguments = ["-k", OPS, "--timeout=30", "--hypothesis-profile=ci"]
    arguments += ["-n", str(workers)] if workers else ["-p", "no:xdist"]
    process = subprocess.Popen(
        _command(results, [HEALTHY, hostile_backends.SPECS["hang"]], arguments),
        cwd=ROOT,
        env=_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        journal = journal_path(results)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            lines = journal.read_text().splitlines() if journal.is_file() else []
            if any(line.startswith('{"record"') for line in lines) and any(
                line.startswith('{"start"') and "hostile_hang" in line for line in lines
            ):
                break  # a check has finished and a hanging one has started
            time.sleep(0.2)
        assert process.poll() is None, "the run ended before the signal"
        process.send_signal(getattr(signal, name))
        output, _ = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 2, output[-4000:]
    document = json.loads(results.read_text())
    run = Run(process.returncode, output, document, 0.0)
    assert_accounted(run)
    assert document["interrupted"] == name
    assert document["not_run"] > 0, run.context()
    reason = f"not run: the run was interrupted ({name})"
    assert set(document["not_run_reasons"]) <= {reason, f"{reason} (while it ran)"}
    assert f"NOT RUN: {document['not_run']} checks never ran" in output
    assert not journal.exists()
