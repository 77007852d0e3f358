"""Give every check of the suite an outcome: record it, show progress, stop hangs.

A pytest plugin, loaded by pyproject's ``addopts`` (``-p properties.results``).
Its options:

``--nnspec-results PATH``
    Write one record per collected check to ``PATH`` (JSON): the property
    family (the test module without ``test_``), the op, the backend, the dtype,
    the outcome, the duration, how many Hypothesis examples ran, and the
    failure text with a command that reproduces it. ``python -m reports build``
    turns the file into the HTML report. While the run goes on, every finished
    record is appended to ``PATH.journal``; a run that dies before it writes
    ``PATH`` (a crash without pytest-xdist, ``kill -9``) leaves the journal,
    and :func:`finalize` (``python -m properties.results finalize PATH``, and
    the report builder) turns it into the results file.
``--nnspec-progress``
    Print a line every ``--nnspec-progress-interval`` seconds (and one at the
    end): how many checks are done of how many, the backend and family of the
    latest one, and the tallies so far.
``--nnspec-budget SECONDS``
    Start no check after ``SECONDS`` of the run (default ``$NNSPEC_RUN_BUDGET``,
    else none); the checks left are recorded as "not run" with that reason.

Outcomes (:data:`OUTCOMES`): ``failed``, ``timeout`` (stopped at its time
limit), ``error`` (setup or teardown failed, the backend could not be loaded,
the process running it died), ``not-run`` (collected, never run: see below),
``passed``, ``unsupported`` (the backend declined every example: a skip whose
reason starts with "unsupported:") and three other kinds of skip:
``skipped-not-implemented`` (the reason starts with "not implemented"),
``skipped-unavailable`` (it mentions "unavailable": the backend cannot run
here) and ``skipped-other``. A record's ``kind`` is ``backend`` for a check of
a backend (its ``backend`` parameter is a loaded spec), ``suite`` for the
reference's checks (the ``reference`` entry of that parameter, which has no
spec) and the suite's own tests; the terminal summary counts them apart.

Nothing is lost: every collected check ends with an outcome, and the counts
add up to the number collected. A check that never ran is ``not-run``, with
the reason: the run was interrupted (``SIGINT``, or ``SIGTERM``, which this
plugin turns into the same clean stop), its time budget ran out, or its
backend crashed a worker: under pytest-xdist, a worker that dies running a
check of backend X (``os._exit``, an abort, a segmentation fault) makes that
check an ``error`` naming the worker, and X is quarantined: the workers start
none of X's remaining checks, which are recorded as not run with the reason.
The other backends' checks run on, on a replacement worker (this plugin raises
xdist's default ``--max-worker-restart`` to allow for a few crashes per
backend). Without xdist a crash ends pytest; the journal keeps what finished.

Under pytest-xdist, each worker attaches a test's metadata to its reports'
``user_properties``, which travel to the controller with the reports; only the
controller records, so the file is the same with or without ``-n``.

Timeouts: every check has a time limit, pyproject's ``timeout`` (pytest-timeout;
``--timeout`` and ``$NNSPEC_CHECK_TIMEOUT`` override it). pytest-timeout decides
*when* a check has run too long; for its default ``signal`` method this plugin
decides *how* to stop it. pytest-timeout's own handler calls ``pytest.fail``,
which Hypothesis takes for a failing example and replays while shrinking, with
no alarm left: an op that hangs would then hang the whole run. Here the alarm
raises :class:`CheckTimeout`, a ``BaseException`` that Hypothesis does not
catch, and repeats until the check stops; its message names the backend, the
op and the dtype. A process stuck in native code, where signals wait, is ended
by a watchdog after twice the limit (plus ``NNSPEC_TIMEOUT_GRACE`` seconds,
default 10); the check is then recorded as timed out all the same (under
xdist, the worker is replaced and the run goes on; a backend that hangs so
twice is quarantined as a crashing one is).
"""

from __future__ import annotations

import faulthandler
import hashlib
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from properties.reproduce import reproduce_command

#: Every outcome a record can have, most serious first.
OUTCOMES: tuple[str, ...] = (
    "failed",
    "timeout",
    "error",
    "not-run",
    "passed",
    "unsupported",
    "skipped-not-implemented",
    "skipped-unavailable",
    "skipped-other",
)

#: Outcomes that fail a run and come with a command that reproduces them.
PROBLEMS: tuple[str, ...] = ("failed", "timeout", "error", "not-run")

#: The version of the results file's layout; the report builder checks it.
SCHEMA_VERSION = 2

#: The key of this plugin's entries in ``report.user_properties``.
METADATA_KEY = "nnspec"
STATISTICS_KEY = "nnspec-hypothesis"
#: Entries the checks themselves add to ``user_properties``: the worst
#: ``|actual - expected| / allowed`` seen, and the examples the backend declined.
PRECISION_KEY = "nnspec-precision"
DECLINED_KEY = "nnspec-declined"

#: How a skip reason marks a check that never ran, and one the backend declined.
NOT_RUN_PREFIX = "not run:"
UNSUPPORTED_PREFIX = "unsupported:"

#: The marker of a composite check: the ops it uses (``uses`` in its record).
OPS_MARKER = "nnspec_ops"

#: Parameter names whose value names the op under test: catalog-driven tests
#: take ``op`` (an entry with ``.name``); others may take a plain name. A test
#: with neither is a property of its own (a row named after the test).
OP_PARAMETERS: tuple[str, ...] = ("op", "operation")

#: How much of a failure's text a record keeps (the head and the tail).
TEXT_HEAD = 8_000
TEXT_TAIL = 32_000
SECTION_LIMIT = 8_000

#: Environment variables: a check's time limit, the run's budget (seconds).
TIMEOUT_VARIABLE = "NNSPEC_CHECK_TIMEOUT"
BUDGET_VARIABLE = "NNSPEC_RUN_BUDGET"

#: Crashes each backend may cost before pytest-xdist gives up replacing
#: workers, on top of xdist's own allowance (4 per worker).
CRASHES_PER_BACKEND = 2

JOURNAL_SUFFIX = ".journal"

TIMEOUT_MESSAGE = "Timeout (>{limit:g}s) from pytest-timeout"
_TIMEOUT_PATTERN = re.compile(r"Timeout \(>[0-9.e+-]+s\) from pytest-timeout")


class CheckTimeout(BaseException):
    """A check ran past its time limit.

    A ``BaseException`` on purpose: Hypothesis treats ``Exception`` (and
    ``pytest.fail``) as a failing example to replay and shrink, which for a hung
    op means hanging again; this one it lets through.
    """


# --------------------------------------------------------------------------- #
# Options and registration
# --------------------------------------------------------------------------- #


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("nnspec-results", "nnspec results and progress")
    group.addoption(
        "--nnspec-results",
        metavar="PATH",
        default=None,
        help="write every check's outcome to PATH (JSON) for `python -m reports`",
    )
    group.addoption(
        "--nnspec-progress",
        action="store_true",
        default=False,
        help="print progress lines: checks done of total, backend, family, tallies",
    )
    group.addoption(
        "--nnspec-progress-interval",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="seconds between progress lines (default 15)",
    )
    group.addoption(
        "--nnspec-budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help=(
            "start no check after SECONDS of the run; the rest are recorded as "
            f"not run (default ${BUDGET_VARIABLE}, else no budget)"
        ),
    )


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _number(text: str | None, what: str) -> float | None:
    if text is None or not text.strip():
        return None
    try:
        return float(text)
    except ValueError:
        raise pytest.UsageError(
            f"{what} must be a number of seconds, got {text!r}"
        ) from None


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{OPS_MARKER}(*names): the ops a composite check uses, recorded as "
        "`uses` so that the report can point at an op whose own check fails",
    )
    # Before pytest-timeout reads it: $NNSPEC_CHECK_TIMEOUT beats the ini value,
    # an explicit --timeout beats both.
    if getattr(config.option, "timeout", "absent") is None:
        limit = _number(os.environ.get(TIMEOUT_VARIABLE), TIMEOUT_VARIABLE)
        if limit is not None:
            config.option.timeout = limit
    if _is_worker(config):
        config._nnspec_deadline = config.workerinput.get("nnspec_deadline")  # type: ignore[attr-defined]
        return
    budget = config.getoption("nnspec_budget")
    if budget is None:
        budget = _number(os.environ.get(BUDGET_VARIABLE), BUDGET_VARIABLE)
    config._nnspec_budget = budget  # type: ignore[attr-defined]
    config._nnspec_deadline = time.time() + budget if budget else None  # type: ignore[attr-defined]
    _allow_crashes(config)
    path = config.getoption("nnspec_results")
    recorder = Recorder(config, Path(path) if path else None)
    config.pluginmanager.register(recorder, "nnspec-results-recorder")


def _allow_crashes(config: pytest.Config) -> None:
    """Raise xdist's default worker-restart allowance by a few crashes a backend.

    A crashing backend is quarantined after its first crash, but the checks of
    it already running on other workers may crash them too. An explicit
    ``--max-worker-restart`` is left as it is.
    """
    workers = getattr(config.option, "numprocesses", None)
    if not isinstance(workers, int) or workers <= 0:
        return
    if getattr(config.option, "maxworkerrestart", "absent") is not None:
        return
    try:
        from backends import contract

        specs = config.getoption("backend")
        backends = len(contract.selected(specs or None))
    except (ImportError, ValueError):
        backends = 1
    allowance = workers * 4 + backends * max(CRASHES_PER_BACKEND, workers)
    config.option.maxworkerrestart = str(allowance)


# --------------------------------------------------------------------------- #
# What a test is: family, op, backend, dtype (computed where the test runs)
# --------------------------------------------------------------------------- #


def family_of(nodeid: str) -> str:
    """The property family of a test: its module's name without ``test_``."""
    stem = Path(nodeid.split("::", 1)[0]).stem
    return stem.removeprefix("test_")


def _name_of(value: Any) -> str | None:
    name = getattr(value, "name", None)
    if isinstance(name, str):
        return name
    if isinstance(value, str):
        return value
    return None


def item_metadata(item: pytest.Item) -> dict[str, Any]:
    """The family, op, backend, dtype and kind of ``item``, as JSON-able data."""
    callspec = getattr(item, "callspec", None)
    params: dict[str, Any] = dict(callspec.params) if callspec is not None else {}
    op = None
    for parameter in OP_PARAMETERS:
        if parameter in params:
            op = _name_of(params[parameter])
            if op:
                break
    backend = params.get("backend")
    backend_id = getattr(backend, "id", None) if backend is not None else None
    if backend_id is None and isinstance(backend, str):
        backend_id = backend
    dtype = params.get("dtype")
    uses: list[str] = []
    for marker in item.iter_markers(OPS_MARKER):
        uses += [str(name) for name in marker.args if str(name) not in uses]
    return {
        "family": family_of(item.nodeid),
        "test": getattr(item, "originalname", None) or item.name,
        "op": op,
        "backend": backend_id,
        "backend_spec": getattr(backend, "spec", backend_id),
        "dtype": dtype if isinstance(dtype, str) else None,
        "params": callspec.id if callspec is not None else "",
        # A check of a backend takes the suite's ``backend`` fixture (a loaded
        # spec); the reference's entry in that parametrization has no spec, and
        # a test of the suite's own that merely has a parameter named backend
        # (the report builder's, say) is the suite's too.
        "kind": "backend" if getattr(backend, "spec", None) else "suite",
        "uses": uses,
    }


def _metadata(item: pytest.Item) -> dict[str, Any]:
    """:func:`item_metadata`, computed once per item, never raising."""
    metadata = getattr(item, "_nnspec_metadata", None)
    if metadata is None:
        try:
            metadata = item_metadata(item)
        except Exception as error:  # metadata must never break the run
            metadata = {"family": family_of(item.nodeid), "metadata_error": repr(error)}
        item._nnspec_metadata = metadata  # type: ignore[attr-defined]
    return metadata


def describe_check(metadata: dict[str, Any]) -> str:
    """``backend tiny, op relu, dtype float32`` (the parts the check has)."""
    parts = [
        f"{key} {metadata[key]}"
        for key in ("backend", "op", "dtype")
        if metadata.get(key)
    ]
    return ", ".join(parts) or "no backend"


def parse_hypothesis_statistics(text: str) -> dict[str, Any]:
    """Examples run, from the statistics Hypothesis' pytest plugin attaches to an item.

    The plugin sets ``item.hypothesis_statistics`` (the text that
    ``--hypothesis-show-statistics`` prints) for every ``@given`` test. Each
    phase has a line "N passing, M failing, and K invalid test cases";
    ``examples`` counts the valid test cases of every phase except shrinking,
    ``shrinks`` those of the shrink phase.
    """
    examples = invalid = shrinks = 0
    found = False
    phase_pattern = re.compile(
        r"during (\w+) phase.*?(\d+) passing, (\d+) failing, and (\d+) invalid",
        re.DOTALL,
    )
    for match in phase_pattern.finditer(text):
        found = True
        phase = match.group(1)
        valid = int(match.group(2)) + int(match.group(3))
        if phase == "shrink":
            shrinks += valid
        else:
            examples += valid
            invalid += int(match.group(4))
    stopped = re.search(r"Stopped because (.+)", text)
    if not found:
        return {}
    return {
        "examples": examples,
        "invalid_examples": invalid,
        "shrinks": shrinks,
        "stop_reason": stopped.group(1).strip() if stopped else None,
    }


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Attach the metadata (and at teardown the Hypothesis statistics) to the report.

    ``user_properties`` travel with the report from an xdist worker to the
    controller, where :class:`Recorder` reads them.

    The check's alarm is paused while pytest writes the report: the alarm
    repeats until the check is over, and one raised inside pytest's own
    formatting of a long failure (``ast.parse`` of the traceback's source, on
    a loaded machine) broke the worker with a ``SystemError`` (an internal
    error, exit status 3) instead of stopping the check.
    """
    paused = _pause_alarm(item)
    try:
        report = yield
    finally:
        _resume_alarm(item, paused)
    report.user_properties.append((METADATA_KEY, _metadata(item)))
    statistics = getattr(item, "hypothesis_statistics", None)
    if report.when == "teardown" and isinstance(statistics, str):
        parsed = parse_hypothesis_statistics(statistics)
        if parsed:
            report.user_properties.append((STATISTICS_KEY, parsed))
    return report


# --------------------------------------------------------------------------- #
# Checks that are not started: the budget ran out, the backend is quarantined
# --------------------------------------------------------------------------- #


def _quarantine_file(directory: Path, backend: str) -> Path:
    digest = hashlib.sha1(backend.encode()).hexdigest()[:16]
    return directory / "quarantine" / f"{digest}.json"


def quarantine_reason(config: pytest.Config, backend: str | None) -> str | None:
    """Why ``backend``'s checks are no longer started, if it is quarantined."""
    if backend is None or not _is_worker(config):
        return None
    directory = config.workerinput.get("nnspec_state_dir")  # type: ignore[attr-defined]
    if not directory:
        return None
    try:
        data = json.loads(_quarantine_file(Path(directory), backend).read_text())
    except (OSError, ValueError):
        return None
    return str(data.get("reason"))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip, as "not run", a check past the budget or of a quarantined backend."""
    deadline = getattr(item.config, "_nnspec_deadline", None)
    if deadline is not None and time.time() > deadline:
        pytest.skip(f"{NOT_RUN_PREFIX} the run's time budget was exhausted")
    reason = quarantine_reason(item.config, _metadata(item).get("backend"))
    if reason:
        pytest.skip(reason)


# --------------------------------------------------------------------------- #
# Timeouts: pytest-timeout says when, this says how
# --------------------------------------------------------------------------- #


def _hard_limit(limit: float) -> float:
    """When the watchdog ends a process whose check ignores the alarm.

    Twice the limit, plus ``NNSPEC_TIMEOUT_GRACE`` seconds (default 10).
    """
    try:
        grace = float(os.environ.get("NNSPEC_TIMEOUT_GRACE", "10"))
    except ValueError:
        grace = 10.0
    return 2 * limit + grace


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> bool | None:
    """pytest-timeout's signal method: an alarm Hypothesis lets through, a watchdog."""
    if settings.method != "signal" or not hasattr(signal, "setitimer"):
        return None
    if threading.current_thread() is not threading.main_thread():
        return None
    limit = float(settings.timeout)
    message = (
        f"{TIMEOUT_MESSAGE.format(limit=limit)}: {item.nodeid} "
        f"({describe_check(_metadata(item))})"
    )

    def on_alarm(signum: int, frame: Any) -> None:
        raise CheckTimeout(f"{message} was stopped")

    watchdog = threading.Timer(_hard_limit(limit), _hard_stop, (item, limit, message))
    watchdog.daemon = True
    watchdog.name = f"nnspec watchdog {item.nodeid}"
    previous = signal.signal(signal.SIGALRM, on_alarm)
    # Fires at the limit, then again every few seconds until the check is over,
    # in case the first one is swallowed on the way out.
    signal.setitimer(signal.ITIMER_REAL, limit, max(5.0, limit / 4))
    watchdog.start()

    def cancel() -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous or signal.SIG_DFL)
        watchdog.cancel()

    item.cancel_timeout = cancel  # type: ignore[attr-defined]
    return True


def _pause_alarm(item: pytest.Item) -> tuple[float, float] | None:
    """Stop the check's alarm (set above) for a moment; what to resume it with."""
    if getattr(item, "cancel_timeout", None) is None:
        return None
    if threading.current_thread() is not threading.main_thread():
        return None
    remaining, interval = signal.setitimer(signal.ITIMER_REAL, 0)
    return (remaining, interval) if remaining > 0 else None


def _resume_alarm(item: pytest.Item, paused: tuple[float, float] | None) -> None:
    if paused is not None and getattr(item, "cancel_timeout", None) is not None:
        signal.setitimer(signal.ITIMER_REAL, *paused)


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_timeout_cancel_timer(item: pytest.Item) -> bool | None:
    cancel = getattr(item, "cancel_timeout", None)
    if cancel is None:
        return None
    cancel()
    del item.cancel_timeout  # type: ignore[attr-defined]
    return True


def _hard_stop(item: pytest.Item, limit: float, message: str) -> None:
    """The watchdog: record the hung check as timed out, then end the process."""
    text = (
        f"{message}: still running {_hard_limit(limit):g}s after it started "
        "(stuck where the alarm cannot interrupt it, e.g. in native code); "
        "the process running it was ended."
    )
    try:
        sys.stderr.write(f"\n+++ nnspec: {text}\n")
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        sys.stderr.flush()
    except Exception:
        pass
    try:
        metadata = _metadata(item)
        config = item.config
        if _is_worker(config):
            directory = config.workerinput.get("nnspec_state_dir")  # type: ignore[attr-defined]
            if directory:
                marker = Path(directory) / f"{os.getpid()}-{time.time_ns()}.json"
                marker.write_text(
                    json.dumps(
                        {"nodeid": item.nodeid, "metadata": metadata, "text": text}
                    )
                )
        else:
            recorder = config.pluginmanager.get_plugin("nnspec-results-recorder")
            if isinstance(recorder, Recorder):
                recorder.record_hard_timeout(item.nodeid, metadata, text)
    finally:
        os._exit(1)


# --------------------------------------------------------------------------- #
# Records
# --------------------------------------------------------------------------- #


def skip_outcome(reason: str) -> str:
    """The outcome a skip stands for, from its reason.

    ``not-run``, ``unsupported``, ``skipped-not-implemented``,
    ``skipped-unavailable`` or ``skipped-other``.
    """
    text = reason.strip()
    if text.lower().startswith("skipped:"):
        text = text[len("skipped:") :].strip()
    lowered = text.lower()
    if lowered.startswith(NOT_RUN_PREFIX):
        return "not-run"
    if lowered.startswith(UNSUPPORTED_PREFIX):
        return "unsupported"
    if lowered.startswith("not implemented"):
        return "skipped-not-implemented"
    if "unavailable" in lowered:
        return "skipped-unavailable"
    return "skipped-other"


def skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = str(longrepr[2])
    else:
        reason = str(longrepr or "")
    return reason.removeprefix("Skipped: ").strip()


def is_timeout(text: str) -> bool:
    return bool(_TIMEOUT_PATTERN.search(text or ""))


def _clip(text: str, head: int = TEXT_HEAD, tail: int = TEXT_TAIL) -> str:
    if len(text) <= head + tail:
        return text
    cut = len(text) - head - tail
    return f"{text[:head]}\n\n[... {cut} characters cut ...]\n\n{text[-tail:]}"


def _crash_message(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    message = getattr(crash, "message", None)
    if message:
        return str(message)
    text = report.longreprtext or ""
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _format_duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def new_record(nodeid: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """A record with no outcome yet (every field the results file has)."""
    return {
        "nodeid": nodeid,
        "family": metadata.get("family") or family_of(nodeid),
        "test": metadata.get("test"),
        "op": metadata.get("op"),
        "backend": metadata.get("backend"),
        "backend_spec": metadata.get("backend_spec"),
        "dtype": metadata.get("dtype"),
        "params": metadata.get("params", ""),
        "kind": metadata.get("kind")
        or ("backend" if metadata.get("backend") else "suite"),
        "uses": list(metadata.get("uses") or []),
        "outcome": None,
        "when": None,
        "reason": None,
        "message": None,
        "longrepr": None,
        "sections": {},
        "duration": 0.0,
        "examples": None,
        "invalid_examples": None,
        "shrinks": None,
        "stop_reason": None,
        "precision": None,
        "declined": None,
        "worker": None,
        "reproduce": None,
    }


def guess_metadata(nodeid: str, backends: Iterable[str]) -> dict[str, Any]:
    """Best effort for a check no report described (it crashed, or never ran)."""
    inside = nodeid.partition("[")[2].rstrip("]")
    parts = f"-{inside}-"
    backend = next(
        (b for b in sorted(backends, key=len, reverse=True) if f"-{b}-" in parts),
        None,
    )
    dtype = next((d for d in ("float32", "float64") if f"-{d}-" in parts), None)
    rest = parts
    for known in (backend, dtype):
        if known:
            rest = rest.replace(f"-{known}-", "-", 1)
    rest = rest.strip("-")
    name = nodeid.split("::")[-1].partition("[")[0]
    return {
        "family": family_of(nodeid),
        "test": name,
        "op": rest or None,
        "backend": backend,
        "backend_spec": backend,
        "dtype": dtype,
        "params": inside,
        "kind": "backend" if backend else "suite",
        "uses": [],
    }


def _worst_precision(entries: list[Any]) -> dict[str, Any] | None:
    worst = None
    for entry in entries:
        if not isinstance(entry, dict) or "worst_ratio" not in entry:
            continue
        try:
            ratio = float(entry["worst_ratio"])
        except (TypeError, ValueError):
            continue
        if worst is None or ratio > worst["worst_ratio"]:
            worst = {"worst_ratio": ratio, "output": str(entry.get("output", ""))}
    return worst


def reproduce(record: dict[str, Any], profile: str | None) -> str:
    """The command that reruns the check of ``record``."""
    return reproduce_command(
        record["nodeid"], backend_spec=record.get("backend_spec"), profile=profile
    )


def complete(
    records: dict[str, dict[str, Any]],
    collected: Iterable[str],
    backends: Iterable[str],
    reason: str,
    profile: str | None,
) -> None:
    """Give every collected check without an outcome the outcome ``not-run``.

    A record whose check started but never finished keeps what it has, and
    says it was running at the time.
    """
    backends = list(backends)
    running = {nodeid for nodeid, r in records.items() if r["outcome"] is None}
    for nodeid in collected:
        if nodeid not in records:
            records[nodeid] = new_record(nodeid, guess_metadata(nodeid, backends))
    for nodeid, record in records.items():
        if record["outcome"] is not None:
            continue
        record["outcome"] = "not-run"
        record["reason"] = f"{reason} (while it ran)" if nodeid in running else reason
        record["reproduce"] = reproduce(record, profile)


def summarise(tests: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts by outcome, overall and by kind; not-run reasons."""
    not_run = Counter(t["reason"] for t in tests if t["outcome"] == "not-run")
    by_kind: dict[str, Counter[str]] = {"backend": Counter(), "suite": Counter()}
    for test in tests:
        by_kind.setdefault(test.get("kind") or "suite", Counter())[test["outcome"]] += 1
    return {
        "summary": dict(Counter(test["outcome"] for test in tests)),
        "summary_by_kind": {kind: dict(counts) for kind, counts in by_kind.items()},
        "not_run": sum(not_run.values()),
        "not_run_reasons": dict(not_run),
    }


def _write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(document, indent=1, default=str))
    temporary.replace(path)


def journal_path(path: Path | str) -> Path:
    path = Path(path)
    return path.with_name(path.name + JOURNAL_SUFFIX)


def finalize(path: Path | str) -> dict[str, Any] | None:
    """The results file at ``path``, written from its journal if the run died.

    A run that ends (failures, interruptions and worker crashes included)
    writes ``path`` and removes the journal. If the journal is still there, the
    pytest process died first: the records it holds are kept, the check that
    was running is an ``error`` ("the pytest process died while running it"),
    and the checks never started are ``not-run``. Returns the document, or
    ``None`` if there is neither file.
    """
    path = Path(path)
    journal = journal_path(path)
    if not journal.is_file():
        return json.loads(path.read_text()) if path.is_file() else None
    header: dict[str, Any] = {}
    records: dict[str, dict[str, Any]] = {}
    running: dict[str, float] = {}
    for line in journal.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # the line being written when the process died
        if "header" in entry:
            header = entry["header"]
        elif "start" in entry:
            running[entry["start"]] = entry.get("at", 0.0)
        elif "record" in entry:
            record = entry["record"]
            records[record["nodeid"]] = record
            running.pop(record["nodeid"], None)
    profile = header.get("hypothesis_profile")
    backend_ids = [entry["id"] for entry in header.get("backends", [])]
    died = "the pytest process died"
    for nodeid in running:
        record = new_record(nodeid, guess_metadata(nodeid, backend_ids))
        text = (
            f"{died} while running {nodeid}: a crash (os._exit, abort, "
            "segmentation fault) or a kill; run it alone to see it"
        )
        record.update(outcome="error", when="???", message=text, longrepr=text)
        record["reproduce"] = reproduce(record, profile)
        records[nodeid] = record
    cause = f"while running {', '.join(running)}" if running else "between two checks"
    complete(
        records,
        header.get("collected", []),
        backend_ids,
        f"{NOT_RUN_PREFIX} {died} {cause}",
        profile,
    )
    tests = [records[nodeid] for nodeid in sorted(records)]
    started = header.get("started_at")
    document = {
        "schema": SCHEMA_VERSION,
        "kind": "nnspec-results",
        "environment": _environment(),
        "hypothesis_profile": profile,
        "timeout": header.get("timeout"),
        "budget": header.get("budget"),
        "arguments": header.get("arguments", []),
        "exitstatus": None,
        "interrupted": "died",
        "duration": round(time.time() - started, 3) if started else None,
        "collected": len(header.get("collected", [])) or len(tests),
        "backends": header.get("backends", []),
        "collection_errors": header.get("collection_errors", []),
        **summarise(tests),
        "tests": tests,
    }
    _write_json(path, document)
    journal.unlink()
    return document


def _environment() -> dict[str, Any]:
    try:  # the report's own description of a machine, versions, commit, date
        from reports import environment

        return environment.describe()
    except Exception as error:  # never lose the results for want of it
        return {"error": f"{type(error).__name__}: {error}"}


# --------------------------------------------------------------------------- #
# Recording (on the controller, from the reports)
# --------------------------------------------------------------------------- #


class Recorder:
    """One record per check from its reports; progress; the summary; the JSON."""

    def __init__(self, config: pytest.Config, path: Path | None) -> None:
        self.config = config
        self.path = path
        self.progress = bool(config.getoption("nnspec_progress"))
        self.interval = float(config.getoption("nnspec_progress_interval"))
        self.records: dict[str, dict[str, Any]] = {}
        self.finished: set[str] = set()
        self.collected: list[str] = []
        self.collection_errors: list[dict[str, Any]] = []
        self.total: int | None = None
        self.family_totals: Counter[str] = Counter()
        self.family_done: Counter[str] = Counter()
        self.tallies: Counter[str] = Counter()
        self.started = time.monotonic()
        self.started_at = time.time()
        self.last_line = self.started
        self.latest: tuple[str | None, str | None] = (None, None)
        #: The signal that interrupted the run, or how it was cut short.
        self.interrupted: str | None = None
        self.hard_stopped: str | None = None
        self.crashes: list[str] = []
        self.native_hangs: Counter[str] = Counter()
        self.quarantined: dict[str, str] = {}
        self.state_dir: Path | None = None
        self.journal = None
        self._lock = threading.RLock()
        self._previous_sigterm: Any = None
        if path is not None:
            journal_path(path).unlink(missing_ok=True)
        if threading.current_thread() is threading.main_thread():
            self._previous_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)

    # -- signals ---------------------------------------------------------- #

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        """Stop as on Ctrl-C, so the session finishes and the results are written.

        A second SIGTERM ends the process at once.
        """
        self.interrupted = "SIGTERM"
        signal.signal(signal.SIGTERM, self._previous_sigterm or signal.SIG_DFL)
        raise KeyboardInterrupt("SIGTERM")

    def pytest_keyboard_interrupt(self, excinfo: Any) -> None:
        if self.interrupted is None:
            self.interrupted = "SIGINT"

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
        if self.journal is not None:
            self.journal.close()
            self.journal = None

    # -- xdist plumbing --------------------------------------------------- #

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        if self.state_dir is None:
            self.state_dir = Path(tempfile.mkdtemp(prefix="nnspec-run-"))
            (self.state_dir / "quarantine").mkdir()
        node.workerinput["nnspec_state_dir"] = str(self.state_dir)
        node.workerinput["nnspec_deadline"] = getattr(
            self.config, "_nnspec_deadline", None
        )

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        if self.total is None:
            self._set_collected(ids)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if self.total is None and not self.config.pluginmanager.has_plugin("dsession"):
            self._set_collected([item.nodeid for item in session.items])

    def _set_collected(self, nodeids: list[str]) -> None:
        self.collected = list(nodeids)
        self.total = len(nodeids)
        self.family_totals = Counter(family_of(nodeid) for nodeid in nodeids)
        self._open_journal()
        if self.progress:
            families = ", ".join(
                f"{family} {count}"
                for family, count in sorted(self.family_totals.items())
            )
            self._write_line(f"nnspec: {self.total} checks to run ({families})")

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collection_errors.append(
                {
                    "nodeid": report.nodeid,
                    "family": family_of(report.nodeid) if report.nodeid else None,
                    "longrepr": _clip(str(report.longrepr)),
                }
            )

    # -- the journal: what survives a process that dies ------------------- #

    def _open_journal(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.journal = journal_path(self.path).open("w", encoding="utf-8")
        header = {
            "collected": self.collected,
            "started_at": self.started_at,
            "arguments": list(self.config.invocation_params.args),
            "hypothesis_profile": self._hypothesis_profile(),
            "timeout": _timeout_setting(self.config),
            "budget": getattr(self.config, "_nnspec_budget", None),
            "backends": self._backend_entries(),
            "collection_errors": self.collection_errors,
        }
        self._journal({"header": header})

    def _journal(self, entry: dict[str, Any]) -> None:
        if self.journal is None:
            return
        self.journal.write(json.dumps(entry, default=str) + "\n")
        self.journal.flush()

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        self._journal({"start": nodeid, "at": time.time()})

    # -- one record per check --------------------------------------------- #

    def _backend_ids(self) -> list[str]:
        return [entry["id"] for entry in self._backend_entries()]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        with self._lock:
            self._update(report)

    def _update(self, report: pytest.TestReport) -> None:
        if report.nodeid in self.finished:
            return
        properties: dict[str, Any] = {}
        precision: list[Any] = []
        for entry in report.user_properties:
            if isinstance(entry, tuple) and len(entry) == 2:
                properties[entry[0]] = entry[1]
                if entry[0] == PRECISION_KEY:
                    precision.append(entry[1])
        record = self.records.get(report.nodeid)
        if record is None:
            metadata = properties.get(METADATA_KEY) or guess_metadata(
                report.nodeid, self._backend_ids()
            )
            record = new_record(report.nodeid, metadata)
            self.records[report.nodeid] = record
        record["duration"] += float(getattr(report, "duration", 0.0) or 0.0)
        worker = getattr(getattr(report, "node", None), "gateway", None)
        if worker is not None:
            record["worker"] = getattr(worker, "id", None)
        if report.failed:  # what the check printed, kept only where it helps
            for title, content in report.sections:
                if not title.startswith("Captured log"):
                    record["sections"][title] = _clip(content, 0, SECTION_LIMIT)

        when = report.when
        if report.skipped:
            if record["outcome"] in (None, "passed"):
                reason = skip_reason(report)
                wasxfail = getattr(report, "wasxfail", None)
                record["outcome"] = (
                    "skipped-other" if wasxfail else skip_outcome(reason)
                )
                record["reason"] = f"xfail: {wasxfail}" if wasxfail else reason
                record["when"] = when
        elif report.failed:
            text = report.longreprtext or str(report.longrepr or "")
            if when == "???":
                text = self._crashed(record, text)
            if is_timeout(text):
                outcome = "timeout"
            elif when == "call":
                outcome = "failed"
            else:
                outcome = "error"
            if record["outcome"] not in ("failed", "timeout", "error"):
                record["outcome"] = outcome
                record["when"] = when
                record["message"] = _crash_message(report) if when != "???" else text
                record["longrepr"] = _clip(text)
            else:  # a teardown error after a failure: keep both texts
                record["longrepr"] = _clip(f"{record['longrepr']}\n\n[{when}]\n{text}")
        elif when == "call" and record["outcome"] is None:
            record["outcome"] = "passed"
            record["when"] = when

        statistics = properties.get(STATISTICS_KEY)
        if isinstance(statistics, dict):
            for key in ("examples", "invalid_examples", "shrinks", "stop_reason"):
                record[key] = statistics.get(key)
        worst = _worst_precision([record["precision"], *precision])
        if worst is not None:
            record["precision"] = worst
        if isinstance(properties.get(DECLINED_KEY), int):
            record["declined"] = properties[DECLINED_KEY]

        if when in ("teardown", "???"):
            self._finish(record)

    def _crashed(self, record: dict[str, Any], text: str) -> str:
        """A worker died running ``record``'s check: say why; quarantine its backend.

        Returns the text of the record: the watchdog's when it ended a hang,
        else the crash, named with the backend, the op and the dtype.
        """
        nodeid, backend = record["nodeid"], record["backend"]
        worker = record["worker"] or "?"
        hang = self._watchdog_text(nodeid)
        if hang is not None:
            if backend is not None:
                self.native_hangs[backend] += 1
                if self.native_hangs[backend] >= 2:
                    self._quarantine(
                        backend,
                        f"{NOT_RUN_PREFIX} backend {backend} hung twice where the "
                        f"time limit's alarm could not stop it (last on {nodeid}); "
                        f"{backend}'s remaining checks were not run",
                    )
            return hang
        self.crashes.append(nodeid)
        if backend is not None:
            self._quarantine(
                backend,
                f"{NOT_RUN_PREFIX} worker {worker} crashed on {nodeid} (backend "
                f"{backend}); {backend}'s remaining checks were not run",
            )
        return (
            f"{text}\nThe process running {nodeid} ({describe_check(record)}) died: "
            "the check crashed it (os._exit, abort, segmentation fault, or killed "
            "for memory)."
            + (
                f" The remaining checks of backend {backend} were not run."
                if backend is not None
                else ""
            )
        )

    def _quarantine(self, backend: str, reason: str) -> None:
        if backend in self.quarantined:
            return
        self.quarantined[backend] = reason
        if self.state_dir is not None:
            target = _quarantine_file(self.state_dir, backend)
            temporary = target.with_suffix(".tmp")
            temporary.write_text(json.dumps({"backend": backend, "reason": reason}))
            temporary.replace(target)
        self._write_line(f"nnspec: quarantined backend {backend}: {reason}")

    def _watchdog_text(self, nodeid: str) -> str | None:
        if self.state_dir is None:
            return None
        for marker in sorted(self.state_dir.glob("*.json")):
            try:
                data = json.loads(marker.read_text())
            except (OSError, ValueError):
                continue
            if data.get("nodeid") == nodeid:
                return str(data.get("text"))
        return None

    def record_hard_timeout(
        self, nodeid: str, metadata: dict[str, Any], text: str
    ) -> None:
        """Called by the watchdog, in this process, just before it ends it."""
        with self._lock:
            record = self.records.get(nodeid) or new_record(nodeid, metadata)
            self.records[nodeid] = record
            record.update(outcome="timeout", when="call", message=text, longrepr=text)
            self._finish(record)
            self.hard_stopped = nodeid
            self.interrupted = "hard timeout"
            self.write(exitstatus=int(pytest.ExitCode.INTERRUPTED))

    def _finish(self, record: dict[str, Any]) -> None:
        if record["outcome"] is None:
            record["outcome"] = "skipped-other"
            record["reason"] = record["reason"] or "no outcome reported"
        if record["outcome"] in PROBLEMS:
            record["reproduce"] = reproduce(record, self._hypothesis_profile())
        self.finished.add(record["nodeid"])
        self._journal({"record": record})
        self.tallies[record["outcome"]] += 1
        self.family_done[record["family"]] += 1
        self.latest = (record["backend"], record["family"])
        if self.progress:
            now = time.monotonic()
            if now - self.last_line >= self.interval:
                self.last_line = now
                self._write_line(self.progress_line())

    def _hypothesis_profile(self) -> str | None:
        try:
            profile = self.config.getoption("hypothesis_profile")
        except ValueError:
            profile = None
        return profile or os.environ.get("HYPOTHESIS_PROFILE")

    def _missing_reason(self) -> str:
        """Why checks that were collected have no outcome at the end."""
        if self.interrupted in ("SIGINT", "SIGTERM"):
            return f"{NOT_RUN_PREFIX} the run was interrupted ({self.interrupted})"
        if self.hard_stopped:
            return (
                f"{NOT_RUN_PREFIX} the run was ended after {self.hard_stopped} hung "
                "where the time limit's alarm could not stop it"
            )
        if self.crashes:
            return (
                f"{NOT_RUN_PREFIX} pytest-xdist stopped replacing crashed workers "
                f"after {len(self.crashes)} crashes (--max-worker-restart), the "
                f"last on {self.crashes[-1]}"
            )
        session = getattr(self.config, "_nnspec_session", None)
        stop = getattr(session, "shouldstop", None) or getattr(
            session, "shouldfail", None
        )
        if stop:
            return f"{NOT_RUN_PREFIX} the run stopped early: {stop}"
        return f"{NOT_RUN_PREFIX} no outcome was reported for it"

    # -- progress ----------------------------------------------------------- #

    def progress_line(self) -> str:
        done = len(self.finished)
        total = self.total or done
        percent = f" ({100 * done / total:.0f}%)" if total else ""
        backend, family = self.latest
        where = ""
        if family is not None:
            family_total = self.family_totals.get(family)
            family_count = (
                f" {self.family_done[family]}/{family_total}" if family_total else ""
            )
            where = f" | now: {backend or 'reference'} / {family}{family_count}"
        tallies = ", ".join(
            f"{self.tallies[outcome]} {outcome.removeprefix('skipped-')}"
            for outcome in OUTCOMES
            if self.tallies[outcome]
        )
        elapsed = _format_duration(time.monotonic() - self.started)
        return f"nnspec: {done}/{total}{percent} in {elapsed}{where} | {tallies}"

    def _write_line(self, line: str) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(line)
        else:
            print(line, file=sys.stderr, flush=True)

    # -- output ------------------------------------------------------------- #

    def _backend_entries(self) -> list[dict[str, Any]]:
        cached = getattr(self, "_backends", None)
        if cached is not None:
            return cached
        entries: list[dict[str, Any]] = []
        loaded = getattr(self.config, "_nnspec_backends", None)
        if loaded is None:
            loaded = _load_backends(self.config)
        for item in loaded:
            backend = getattr(item, "backend", None)
            error = getattr(item, "error", None)
            skip = getattr(item, "skip_reason", None)
            entries.append(
                {
                    "id": getattr(item, "id", None) or getattr(item, "spec", "?"),
                    "spec": getattr(item, "spec", None),
                    "name": getattr(backend, "name", None),
                    "device": getattr(backend, "device", None),
                    "dtypes": list(getattr(backend, "dtypes", ()) or ()),
                    "status": "error"
                    if error
                    else "unavailable"
                    if skip
                    else "available",
                    "reason": error or skip,
                }
            )
        self._backends = entries
        return entries

    def complete_records(self) -> None:
        """Record every collected check that has no outcome as not run."""
        complete(
            self.records,
            self.collected,
            self._backend_ids(),
            self._missing_reason(),
            self._hypothesis_profile(),
        )

    def document(self, exitstatus: int | None) -> dict[str, Any]:
        self.complete_records()
        tests = [self.records[nodeid] for nodeid in sorted(self.records)]
        return {
            "schema": SCHEMA_VERSION,
            "kind": "nnspec-results",
            "environment": _environment(),
            "hypothesis_profile": self._hypothesis_profile(),
            "timeout": _timeout_setting(self.config),
            "budget": getattr(self.config, "_nnspec_budget", None),
            "arguments": list(self.config.invocation_params.args),
            "exitstatus": exitstatus,
            "interrupted": self.interrupted,
            "duration": round(time.monotonic() - self.started, 3),
            "collected": self.total if self.total is not None else len(tests),
            "backends": self._backend_entries(),
            "collection_errors": self.collection_errors,
            "quarantined": dict(self.quarantined),
            **summarise(tests),
            "tests": tests,
        }

    def write(self, exitstatus: int | None) -> None:
        if self.path is None:
            return
        _write_json(self.path, self.document(exitstatus))
        if self.journal is not None:
            self.journal.close()
            self.journal = None
        journal_path(self.path).unlink(missing_ok=True)

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.config._nnspec_session = session  # type: ignore[attr-defined]

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        with self._lock:
            self.complete_records()
            not_run = sum(r["outcome"] == "not-run" for r in self.records.values())
            if not_run and session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
            self.write(int(session.exitstatus))
        if self.state_dir is not None:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.progress:
            terminalreporter.write_line(self.progress_line())
        records = list(self.records.values())
        if not records:
            return
        terminalreporter.section("nnspec results")
        backend_records = [r for r in records if r["kind"] == "backend"]
        if backend_records:
            self._write_table(terminalreporter, backend_records)
        for line in headline(records):
            terminalreporter.write_line(line)
        if self.path is not None:
            terminalreporter.write_line(f"results: {self.path}")

    def _write_table(self, terminalreporter: Any, records: list[dict]) -> None:
        groups: dict[tuple[str, str], Counter[str]] = {}
        for record in records:
            key = (record["backend"] or "-", record["family"])
            groups.setdefault(key, Counter())[record["outcome"]] += 1
        width = max(14, *(len(backend) for backend, _ in groups))
        columns = [outcome.removeprefix("skipped-")[:11] for outcome in OUTCOMES]
        terminalreporter.write_line(
            f"{'backend':<{width}} {'family':<18}"
            + "".join(f" {column:>11}" for column in columns)
        )
        for (backend, family), counts in sorted(groups.items()):
            terminalreporter.write_line(
                f"{backend:<{width}} {family:<18}"
                + "".join(f" {counts[outcome]:>11}" for outcome in OUTCOMES)
            )


def _counts(records: list[dict[str, Any]]) -> str:
    counts = Counter(record["outcome"] for record in records)
    return ", ".join(
        f"{counts[outcome]} {outcome}" for outcome in OUTCOMES if counts[outcome]
    )


def headline(records: list[dict[str, Any]]) -> list[str]:
    """The summary's lines: backend checks, then the suite's own, then not-run."""
    backend = [r for r in records if r["kind"] == "backend"]
    suite = [r for r in records if r["kind"] != "backend"]
    lines = [
        f"backend checks: {len(backend)}"
        + (f" ({_counts(backend)})" if backend else ""),
        f"the suite's own tests (reference, harness): {len(suite)}"
        + (f" ({_counts(suite)})" if suite else ""),
    ]
    reasons = Counter(r["reason"] for r in records if r["outcome"] == "not-run")
    if reasons:
        lines.append(f"NOT RUN: {sum(reasons.values())} checks never ran:")
        lines += [f"  {count:>5} {reason}" for reason, count in reasons.most_common()]
    return lines


def _timeout_setting(config: pytest.Config) -> float | None:
    value = getattr(config, "_env_timeout", None)  # pytest-timeout's, resolved
    if value is None:
        try:
            value = config.getoption("timeout")
        except ValueError:
            return None
    try:
        return float(value) if value else None
    except (TypeError, ValueError):
        return None


def _load_backends(config: pytest.Config) -> list[Any]:
    """The selected backends, loaded as the conftest does (when it has not yet)."""
    try:
        specs = config.getoption("backend")
    except ValueError:  # a suite without the --backend option: no backends
        return []
    from backends import contract

    class Loaded:
        def __init__(self, spec: str) -> None:
            self.spec = spec
            self.backend: Any = None
            self.error: str | None = None
            self.skip_reason: str | None = None
            try:
                self.backend = contract.load(spec)
            except Exception as error:
                self.error = (
                    f"cannot load backend {spec!r}: {type(error).__name__}: {error}"
                )
                return
            reason = contract.unavailable_reason(self.backend)
            if reason:
                self.skip_reason = (
                    f"backend {self.backend.name!r} unavailable: {reason}"
                )

        @property
        def id(self) -> str:
            return self.backend.name if self.backend is not None else self.spec

    return [Loaded(spec) for spec in contract.selected(specs or None)]


def main(arguments: list[str] | None = None) -> int:
    """``python -m properties.results finalize PATH``: see :func:`finalize`."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m properties.results")
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser(
        "finalize", help="write PATH from its journal if the run that wrote it died"
    )
    command.add_argument("path", type=Path)
    options = parser.parse_args(arguments)
    document = finalize(options.path)
    if document is None:
        print(f"no results at {options.path} and no journal", file=sys.stderr)
        return 1
    counts = ", ".join(f"{n} {o}" for o, n in sorted(document["summary"].items()))
    print(f"{options.path}: {document['collected']} collected: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
