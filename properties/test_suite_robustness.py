"""The suite treats backends fairly: it fails what is broken, and only that.

Each test runs the catalog-driven agreement tests
(``properties/test_agreement.py``; for the broken optimizer step also the
trajectory test of ``properties/test_optimizers.py``) in a pytest subprocess
(``pytester``) against backends whose behaviour is known: the correct
third-party example :mod:`examples.tiny`, and the backends of
:mod:`properties.broken_backends`, each the tiny one with one kind of bug in one
or two operations. A small plugin in the subprocess records, for every test, its
``op``, backend and dtype parameters and its outcome, so the assertions here
speak of operations, not of test ids.

What the runs prove:

* a broken operation fails with an ``AssertionError`` whose own message (not
  only Hypothesis's notes on the test's arguments) names the operation, the
  backend and the problem (the exception raised, the shape, the dtype, the
  NaN, the backward that returned no tuple);
* the healthy operations of the same backend pass, in every dtype (a float32
  bug does not fail float64);
* the operations a backend lacks are skipped as "not implemented";
* the run completes: exit code 1 for failures, never a collection error (2) or
  an internal error (3);
* a spec that cannot be loaded fails its tests with the loading error;
* an unavailable backend is skipped with its own reason;
* ``--backend`` and ``NNSPEC_BACKENDS`` each select a third-party backend, and
  ``--backend`` wins over the environment variable.

To stay quick, the subprocess runs only the operations that matter (selected
exactly by the plugin's ``--nnspec-ops``, as ``-k`` would select by substring),
under the ``dev`` profile's 10 examples without shrinking (a failure is kept as
found: the outcome is the same, minimising it costs seconds per test), and the
broken backends share one run. About 10 s of CPU for the module.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from backends.contract import (
    DTYPES,
    ENVIRONMENT_VARIABLE,
    NOT_DIFFERENTIABLE,
    OPERATIONS,
)
from properties import broken_backends

# pytester is not loaded by default; a test module may require it (a non-root
# conftest.py may not), and this keeps it out of every other module.
pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
AGREEMENT = ROOT / "properties" / "test_agreement.py"
#: Where the optimizer steps are held to the reference (the trajectory test).
OPTIMIZERS = ROOT / "properties" / "test_optimizers.py"

DIFFERENTIABLE = [op for op in OPERATIONS if op not in NOT_DIFFERENTIABLE]
TINY_SPEC = "examples.tiny:backend"
#: The operations examples.tiny implements (each with its backward).
TINY_OPERATIONS = ("relu", "sigmoid", "tanh", "linear", "softmax", "mse_loss")
#: Operations tiny lacks, selected to prove they are skipped as "not implemented".
LACKED_OPERATIONS = ("elu", "conv2d", "softmax_cross_entropy")
#: Operations a broken backend adds to tiny's (the optimizer step that mutates
#: its gradient).
BROKEN_EXTRA_OPERATIONS = ("sgd_step",)

#: backend attribute in properties.broken_backends -> its name, and for each
#: broken operation the dtypes in which it is broken and a word the failure
#: message must contain (compared case-insensitively).
BROKEN: dict[str, tuple[str, dict[str, tuple[tuple[str, ...], str]]]] = {
    "raises": (
        "broken_raises",
        {"relu": (DTYPES, "TypeError"), "sigmoid": (DTYPES, "TypeError")},
    ),
    "wrong_shape": (
        "broken_shape",
        {"linear": (DTYPES, "shape"), "tanh": (DTYPES, "shape")},
    ),
    "wrong_dtype": (
        "broken_dtype",
        {"sigmoid": (("float32",), "dtype"), "mse_loss": (("float32",), "dtype")},
    ),
    "nan": (
        "broken_nan",
        {"tanh": (DTYPES, "nan"), "softmax": (DTYPES, "nan")},
    ),
    "bare_backward": (
        "broken_tuple",
        {"relu": (DTYPES, "tuple"), "softmax": (DTYPES, "tuple")},
    ),
    "mutates_dout": ("broken_mutates_dout", {"relu": (DTYPES, "'dout' in place")}),
    "mutates_grad": ("broken_mutates_grad", {"sgd_step": (DTYPES, "'grad")}),
}
UNAVAILABLE_NAME = broken_backends.unavailable.name
UNAVAILABLE_REASON = broken_backends.unavailable.unavailable_reason

#: The Hypothesis profile of the subprocess, registered by its plugin.
PROFILE = "nnspec_robustness"

# The plugin loaded into the subprocess (as ``-p nnspec_outcomes``): it registers
# the profile, keeps only the tests of the operations named by --nnspec-ops, and
# writes one JSON line per test phase with the test's parameters and outcome.
RECORDER = """
import json

import pytest
from hypothesis import HealthCheck, Phase, settings

OUTPUT = "nnspec_outcomes.jsonl"
_PARAMETERS = {}

# The dev profile without shrinking and explaining: a broken op fails on its
# first failing example instead of spending seconds minimising it, and the
# outcome, which is all these tests look at, is the same.
settings.register_profile(
    "PROFILE_NAME",
    max_examples=10,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Three examples: enough for a bug that shows on every example (aliasing),
# where the whole suite runs.
settings.register_profile(
    "PROFILE_NAME_quick",
    max_examples=3,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def pytest_addoption(parser):
    parser.addoption("--nnspec-ops", default="", help="comma-separated op names")


def _name(value):
    for attribute in ("name", "id"):
        found = getattr(value, attribute, None)
        if isinstance(found, str):
            return found
    return str(value)


def pytest_collection_modifyitems(config, items):
    wanted = {op for op in config.getoption("nnspec_ops").split(",") if op}
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        parameters = {}
        if callspec is not None:
            parameters = {key: _name(value) for key, value in callspec.params.items()}
        _PARAMETERS[item.nodeid] = parameters
        if wanted and parameters.get("op") not in wanted:
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    # The exception itself: its type and its own message, without the notes
    # Hypothesis attaches (they name the test's arguments, the op included).
    report = yield
    if call.excinfo is not None:
        error = call.excinfo.value
        report.user_properties.append(
            ("nnspec_exception", [type(error).__name__, str(error)])
        )
    return report


def pytest_runtest_logreport(report):
    if report.passed and report.when != "call":
        return
    exception_type, message = "", ""
    if report.skipped and isinstance(report.longrepr, tuple):
        message = report.longrepr[2].removeprefix("Skipped: ")
    elif report.failed:
        properties = dict(report.user_properties)
        exception_type, message = properties.get("nnspec_exception", ["", ""])
        message = message or report.longreprtext
    record = {
        "declined": dict(report.user_properties).get("nnspec-declined", 0),
        "nodeid": report.nodeid,
        "when": report.when,
        "outcome": report.outcome,
        "parameters": _PARAMETERS.get(report.nodeid, {}),
        "exception": exception_type,
        "message": message,
        "text": report.longreprtext if report.failed else "",
    }
    with open(OUTPUT, "a", encoding="utf-8") as output:
        output.write(json.dumps(record) + "\\n")
""".replace("PROFILE_NAME", PROFILE)


@dataclass
class Outcome:
    """One test of the subprocess: its parameters and how it ended."""

    nodeid: str
    op: str | None
    backend: str | None
    dtype: str | None
    outcome: str  # passed, failed, skipped, or error (a setup/teardown failure)
    exception: str  # the type of the exception of a failure
    message: str  # a failure's exception message, or a skip's reason
    text: str  # a failure's full report
    declined: int = 0  # examples the backend declined

    def describe(self) -> str:
        exception = f"{self.exception}: " if self.exception else ""
        return f"{self.nodeid}: {self.outcome}: {exception}{self.message[:300]}"


@dataclass
class SuiteRun:
    """The exit code, the per-test outcomes and the output of one subprocess run."""

    args: tuple[str, ...]
    ret: int
    outcomes: list[Outcome]
    output: str

    def of(self, backend: str, op: str | None = None) -> list[Outcome]:
        return [
            outcome
            for outcome in self.outcomes
            if outcome.backend == backend and (op is None or outcome.op == op)
        ]

    def context(self) -> str:
        """What an assertion message appends: the command and the output's tail."""
        return (
            f"\nrun: pytest {' '.join(self.args)}\n--- output tail ---\n"
            + (self.output[-3000:])
        )

    def assert_no_problems(self, heading: str, problems: list[str]) -> None:
        """Fail with ``heading``, one problem a line, and :meth:`context`."""
        assert not problems, f"{heading}:\n  " + "\n  ".join(problems) + self.context()


def _read_outcomes(path: Path) -> list[Outcome]:
    by_test: dict[str, list[dict]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        by_test.setdefault(record["nodeid"], []).append(record)
    outcomes = []
    for nodeid, records in by_test.items():
        failed = [r for r in records if r["outcome"] == "failed"]
        skipped = [r for r in records if r["outcome"] == "skipped"]
        if failed:
            first = failed[0]
            outcome = "failed" if first["when"] == "call" else "error"
        elif skipped:
            first, outcome = skipped[0], "skipped"
        else:
            first, outcome = records[0], "passed"
        parameters = first["parameters"]
        outcomes.append(
            Outcome(
                nodeid=nodeid,
                op=parameters.get("op"),
                backend=parameters.get("backend"),
                dtype=parameters.get("dtype"),
                outcome=outcome,
                exception=first["exception"],
                message=first["message"],
                text=first["text"],
                declined=max(r.get("declined", 0) for r in records),
            )
        )
    return outcomes


# One subprocess run serves every test that needs the same arguments.
_RUNS: dict[tuple[tuple[str, ...], tuple[tuple[str, str | None], ...]], SuiteRun] = {}


def run_suite(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    *,
    backends: Iterable[str] = (),
    ops: Iterable[str] = (),
    environment: dict[str, str | None] | None = None,
    paths: Iterable[Path] = (AGREEMENT,),
    profile: str = PROFILE,
    extra: Iterable[str] = (),
) -> SuiteRun:
    """Run the agreement tests (or ``paths``) in a subprocess, for ``backends``."""
    if not AGREEMENT.exists():
        pytest.fail(f"{AGREEMENT} does not exist: nothing to run the backends through")
    environment = {ENVIRONMENT_VARIABLE: None, "HYPOTHESIS_PROFILE": None} | (
        environment or {}
    )
    args = (
        *(str(path) for path in paths),
        f"--rootdir={ROOT}",
        "-c",
        str(ROOT / "pyproject.toml"),
        "-p",
        "no:cacheprovider",
        "-p",
        "nnspec_outcomes",
        f"--hypothesis-profile={profile}",
        "-q",
        "--nnspec-ops=" + ",".join(ops),
        *(f"--backend={spec}" for spec in backends),
        *extra,
    )
    key = (args, tuple(sorted(environment.items())))
    if key in _RUNS:
        return _RUNS[key]
    for name, value in environment.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    pytester.makepyfile(nnspec_outcomes=RECORDER)
    result = pytester.runpytest_subprocess(*args, timeout=600)
    output = "\n".join(result.outlines + result.errlines)
    records = pytester.path / "nnspec_outcomes.jsonl"
    outcomes = _read_outcomes(records) if records.exists() else []
    run = SuiteRun(args=args, ret=int(result.ret), outcomes=outcomes, output=output)
    _RUNS[key] = run
    return run


def _broken_run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> SuiteRun:
    """Every broken backend, the unavailable one and an unloadable spec, in one run."""
    return run_suite(
        pytester,
        monkeypatch,
        backends=[
            *(broken_backends.SPECS[attribute] for attribute in BROKEN),
            broken_backends.SPECS["unavailable"],
            broken_backends.NONEXISTENT_SPEC,
        ],
        ops=TINY_OPERATIONS + LACKED_OPERATIONS + BROKEN_EXTRA_OPERATIONS,
        paths=(AGREEMENT, OPTIMIZERS),
    )


def _problems_with_lacked(
    run: SuiteRun, backend: str, has: Iterable[str] = ()
) -> list[str]:
    """The operations ``backend`` lacks must be skipped as "not implemented"."""
    problems = []
    implemented = {*TINY_OPERATIONS, *has}
    lacked = [o for o in run.of(backend) if o.op not in implemented]
    if not lacked:
        problems.append(f"no test of an operation {backend!r} lacks was run")
    for outcome in lacked:
        if outcome.outcome != "skipped" or not outcome.message.startswith(
            "not implemented"
        ):
            problems.append(
                f"lacked op {outcome.op!r} not skipped as 'not implemented': "
                + outcome.describe()
            )
    return problems


# -- the tests ------------------------------------------------------------------


def test_broken_backends_run_completes(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Failing backends make failures (exit 1), not collection or internal errors."""
    run = _broken_run(pytester, monkeypatch)
    assert run.ret == 1, (
        f"exit code {run.ret}: expected 1 (test failures); 2 is a collection "
        f"error, 3 an internal error, 4 a usage error" + run.context()
    )
    assert "ERROR collecting" not in run.output, "collection error" + run.context()
    names = [name for name, _ in BROKEN.values()]
    for name in [*names, UNAVAILABLE_NAME, broken_backends.NONEXISTENT_SPEC]:
        assert run.of(name), f"no test ran for backend {name!r}" + run.context()
    ops = {outcome.op for outcome in run.outcomes}
    assert set(TINY_OPERATIONS) <= ops, (
        f"the agreement tests cover only {sorted(ops)} of {TINY_OPERATIONS}"
        + run.context()
    )


@pytest.mark.parametrize("attribute", list(BROKEN))
def test_broken_backend_fails_only_its_broken_ops(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, attribute: str
) -> None:
    """The broken ops fail, naming op, backend and problem; the rest pass or skip."""
    run = _broken_run(pytester, monkeypatch)
    name, broken = BROKEN[attribute]
    problems = []
    for op in dict.fromkeys([*TINY_OPERATIONS, *broken]):
        dtypes, word = broken.get(op, ((), ""))
        for outcome in run.of(name, op):
            if outcome.dtype in dtypes:
                continue  # checked below: at least one of them fails
            if outcome.outcome != "passed":
                problems.append(f"healthy op {op!r} did not pass: {outcome.describe()}")
        for dtype in dtypes:
            tests = [o for o in run.of(name, op) if o.dtype in (dtype, None)]
            failed = [o for o in tests if o.outcome == "failed"]
            if not failed:
                problems.append(
                    f"broken op {op!r} ({word}) in {dtype} did not fail: "
                    + "; ".join(o.describe() for o in tests)
                )
            for outcome in failed:
                message = outcome.message
                missing = [
                    what
                    for what, found in (
                        ("an AssertionError", outcome.exception == "AssertionError"),
                        (f"the op {op!r}", op in message),
                        (f"the backend {name!r}", name in message),
                        (f"the problem {word!r}", word.lower() in message.lower()),
                    )
                    if not found
                ]
                if missing:
                    problems.append(
                        f"failure of {outcome.nodeid} is not {', '.join(missing)}: "
                        f"{outcome.exception}: {message[:500]!r}"
                    )
    problems += _problems_with_lacked(run, name, has=broken)
    run.assert_no_problems(
        f"backend {name!r} (properties.broken_backends:{attribute})", problems
    )


def test_unloadable_spec_fails_with_the_loading_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A nonexistent import path fails every test of it, with the import error."""
    run = _broken_run(pytester, monkeypatch)
    spec = broken_backends.NONEXISTENT_SPEC
    outcomes = run.of(spec)
    assert outcomes, f"no test was run for {spec!r}" + run.context()
    module = spec.partition(":")[0]
    problems = [
        outcome.describe()
        for outcome in outcomes
        if outcome.outcome not in ("failed", "error")
        or "cannot load backend" not in outcome.message
        or spec not in outcome.message
        or module.split(".")[0] not in outcome.message
    ]
    run.assert_no_problems(
        f"tests of the unloadable spec {spec!r} must fail with the loading error",
        problems,
    )


def test_unavailable_backend_is_skipped_with_its_reason(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _broken_run(pytester, monkeypatch)
    outcomes = run.of(UNAVAILABLE_NAME)
    assert outcomes, f"no test was run for {UNAVAILABLE_NAME!r}" + run.context()
    problems = [
        outcome.describe()
        for outcome in outcomes
        if outcome.outcome != "skipped" or UNAVAILABLE_REASON not in outcome.message
    ]
    run.assert_no_problems(
        f"tests of the unavailable backend must be skipped with {UNAVAILABLE_REASON!r}",
        problems,
    )


def test_third_party_backend_by_option_passes_and_skips_the_rest(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--backend examples.tiny:backend`` over the whole catalog: pass or skip.

    ``NNSPEC_BACKENDS`` names an unloadable spec meanwhile: ``--backend`` must win,
    so that spec never runs.
    """
    run = run_suite(
        pytester,
        monkeypatch,
        backends=[TINY_SPEC],
        environment={ENVIRONMENT_VARIABLE: broken_backends.NONEXISTENT_SPEC},
    )
    _check_tiny(run, every_operation=True)


def test_third_party_backend_by_environment(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``NNSPEC_BACKENDS`` selects tiny and an unavailable backend; nothing else."""
    run = run_suite(
        pytester,
        monkeypatch,
        ops=("relu", "mse_loss", "conv2d"),
        environment={
            ENVIRONMENT_VARIABLE: f"{TINY_SPEC},{broken_backends.SPECS['unavailable']}"
        },
    )
    _check_tiny(run, every_operation=False, also={UNAVAILABLE_NAME})
    skipped = run.of(UNAVAILABLE_NAME)
    assert skipped and all(o.outcome == "skipped" for o in skipped), (
        "the unavailable backend named in NNSPEC_BACKENDS was not skipped"
        + run.context()
    )


def _check_tiny(run: SuiteRun, *, every_operation: bool, also: set[str] = frozenset()):
    assert run.ret == 0, (
        f"exit code {run.ret}: the correct tiny backend must pass" + run.context()
    )
    backends = {outcome.backend for outcome in run.outcomes}
    assert backends == {"tiny", *also}, (
        f"backends run: {sorted(map(str, backends))}, expected only tiny and "
        f"{sorted(also)}" + run.context()
    )
    problems = []
    for outcome in run.of("tiny"):
        if outcome.op in TINY_OPERATIONS and outcome.outcome != "passed":
            problems.append("implemented op did not pass: " + outcome.describe())
    problems += _problems_with_lacked(run, "tiny")
    passed = {o.op for o in run.of("tiny") if o.outcome == "passed"}
    expected = set(TINY_OPERATIONS) if every_operation else {"relu", "mse_loss"}
    if passed != expected:
        problems.append(
            f"ops passed: {sorted(map(str, passed))}, not {sorted(expected)}"
        )
    if every_operation:
        # Every differentiable operation is checked for agreement, so each one
        # tiny lacks must show up as a "not implemented" skip.
        seen = {o.op for o in run.of("tiny")}
        unseen = [op for op in DIFFERENTIABLE if op not in seen]
        if unseen:
            problems.append(f"operations never tried on tiny: {unseen}")
    run.assert_no_problems("backend 'tiny'", problems)


# -- declined options ------------------------------------------------------------

DECLINING_SPEC = "examples.declining:backend"
DECLINING_OPERATIONS = ("softmax", "mse_loss", "tanh", "relu")


def _declining_run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    return run_suite(
        pytester,
        monkeypatch,
        backends=[DECLINING_SPEC, broken_backends.SPECS["declining_bug"]],
        ops=DECLINING_OPERATIONS,
    )


def test_declined_options_are_unsupported_not_failed(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """examples.declining: its fully declined check is "unsupported", the rest pass.

    ``tanh_backward`` declines every example: skipped with the ``unsupported:``
    reason naming it and the backend's message. ``softmax`` declines every
    axis but the last: it passes on the examples it supports, with the
    declined ones counted. ``mse_loss_backward`` gives no target gradient: the
    check passes on the gradient it gives.
    """
    run = _declining_run(pytester, monkeypatch)
    problems = []
    for outcome in run.of("tiny_declining"):
        declined_everything = (
            outcome.nodeid.startswith("properties/test_agreement.py::test_backward")
            and outcome.op == "tanh"
        )
        if declined_everything:
            expected = (
                "unsupported: backend tiny_declining declined every example of "
                "tanh_backward"
            )
            if outcome.outcome != "skipped" or not outcome.message.startswith(expected):
                problems.append(f"not {expected!r}: {outcome.describe()}")
            elif "no derivative of tanh" not in outcome.message:
                problems.append(f"the backend's message is lost: {outcome.describe()}")
        elif outcome.outcome != "passed":
            problems.append(f"supported check did not pass: {outcome.describe()}")
    softmax = [o for o in run.of("tiny_declining", "softmax") if o.outcome == "passed"]
    if not any(o.declined for o in softmax):
        problems.append(
            "no softmax check counted a declined example (nnspec-declined): "
            + "; ".join(o.describe() for o in softmax)
        )
    run.assert_no_problems("examples.declining", problems)


def test_bug_in_the_supported_space_is_still_found(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Declined examples do not stop the search: the bugs where it supports fail.

    ``broken_declining`` is the declining example with a wrong softmax (found
    among the last-axis examples, all others declined) and a wrong ``dpred``
    in the backward that gives no target gradient.
    """
    run = _declining_run(pytester, monkeypatch)
    problems = []
    for op, word in (("softmax", "values differ"), ("mse_loss", "gradient wrt pred")):
        for dtype in DTYPES:
            failed = [
                o
                for o in run.of("broken_declining", op)
                if o.dtype == dtype and o.outcome == "failed"
            ]
            if not any(word in o.message for o in failed):
                problems.append(
                    f"{op} in {dtype}: no failure saying {word!r}: "
                    + "; ".join(o.describe() for o in run.of("broken_declining", op))
                )
    run.assert_no_problems("broken_declining", problems)


# -- aliasing --------------------------------------------------------------------


def test_backend_sharing_memory_passes_every_module(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A correct backend whose arrays alias (examples.sharing) passes everything.

    Its ``asarray`` wraps the host array, its ``to_numpy`` returns views and
    its optimizer steps update ``param`` in place, as the contract allows: no
    check of any property module may fail it. Three examples per check (an
    aliasing false alarm shows on every example).
    """
    modules = backend_modules()
    run = run_suite(
        pytester,
        monkeypatch,
        backends=["examples.sharing:backend"],
        paths=[ROOT / module for module in modules],
        profile=PROFILE + "_quick",
        extra=("-k", "numpy_sharing"),
    )
    bad = [o.describe() for o in run.outcomes if o.outcome in ("failed", "error")]
    assert run.ret == 0 and not bad, (
        "the sharing backend (correct, views and in-place steps) failed:\n  "
        + "\n  ".join(bad)
        + run.context()
    )
    ran = {o.nodeid.partition("::")[0] for o in run.of("numpy_sharing")}
    assert ran == set(modules), (
        f"modules with no check run on the sharing backend: "
        f"{sorted(set(modules) - ran)}" + run.context()
    )


def backend_modules() -> list[str]:
    """The property modules with checks of a backend (the ``backend`` fixture).

    The meta-test modules, which run the suite in subprocesses, are left out.
    """
    meta = {"test_suite_robustness.py", "test_run_robustness.py"}
    return [
        f"properties/{path.name}"
        for path in sorted(ROOT.glob("properties/test_*.py"))
        if path.name not in meta
        and re.search(r"\bbackend: Any\b", path.read_text(encoding="utf-8"))
    ]


# -- reproduce commands ----------------------------------------------------------


def test_printed_reproduce_commands_rerun_exactly_one_failing_check(
    tmp_path: Path,
) -> None:
    """Every failure ends with a command that, run as printed, reruns that check.

    The backend's name holds spaces, parentheses, ``<``, ``::`` and brackets.
    Failures from several modules are collected; a sample of their reproduce
    lines is run through a shell from the repository root: each must select
    exactly one check, and fail it.
    """
    spec = broken_backends.SPECS["oddly_named"]
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in (ENVIRONMENT_VARIABLE, "HYPOTHESIS_PROFILE", "PYTEST_ADDOPTS")
    }
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}" + (
        environment.get("PATH", "")
    )
    first = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "properties/test_agreement.py",
            "properties/test_identities.py",
            "properties/test_stability.py",
            f"--backend={spec}",
            "--hypothesis-profile=dev",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            "-q",
            "-k",
            "relu or sigmoid",
        ],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = first.stdout + first.stderr
    lines = sorted(
        {
            line.split("reproduce: ", 1)[1].strip()
            for line in output.splitlines()
            if "reproduce: " in line and " -m pytest " in line
        }
    )
    modules = {line.split()[3].partition("::")[0] for line in lines}
    assert len(modules) >= 2, (
        f"reproduce lines from only {sorted(modules)}:\n" + output[-3000:]
    )
    sample = lines[:: max(1, len(lines) // 4)][:4]
    problems = []
    for line in sample:
        rerun = subprocess.run(
            ["bash", "-c", line],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
        )
        summary = (rerun.stdout.strip().splitlines() or [""])[-1].strip("= ")
        if rerun.returncode != 1 or not re.fullmatch(r"1 failed in .*", summary):
            problems.append(
                f"{line}\n    exit {rerun.returncode}, summary {summary!r}\n"
                + rerun.stdout[-800:]
                + rerun.stderr[-800:]
            )
    assert not problems, "reproduce lines that do not rerun one failing check:\n" + (
        "\n".join(problems)
    )
