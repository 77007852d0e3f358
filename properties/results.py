"""Record every check of the property suite to JSON, show progress, stop hung checks.

A pytest plugin, registered by ``properties/conftest.py``. Its options:

``--nnspec-results PATH``
    Write one record per test to ``PATH`` (JSON): the property family (the test
    module without ``test_``), the op, the backend, the dtype, the outcome, the
    duration, how many Hypothesis examples ran, and the failure text with a
    command that reproduces it. ``python -m reports build`` turns the file into
    the HTML report.
``--nnspec-progress``
    Print a line every ``--nnspec-progress-interval`` seconds (and one at the
    end): how many checks are done of how many, the backend and family of the
    latest one, and the tallies so far.

Outcomes (:data:`OUTCOMES`): ``passed``, ``failed``, ``timeout`` (stopped by
pytest-timeout), ``error`` (setup or teardown failed, the backend could not be
loaded, a worker crashed), and three kinds of skip, told apart by the reason:
``skipped-not-implemented`` (the reason starts with "not implemented"),
``skipped-unavailable`` (it mentions "unavailable": the backend cannot run
here) and ``skipped-other``.

Under pytest-xdist, each worker attaches a test's metadata to its reports'
``user_properties``, which travel to the controller with the reports; only the
controller records, so the file is the same with or without ``-n``.

Timeouts: pytest-timeout decides *when* a check has run too long (``--timeout``,
the ``timeout`` marker); for its default ``signal`` method this plugin decides
*how* to stop it. pytest-timeout's own handler calls ``pytest.fail``, which
Hypothesis takes for a failing example and replays while shrinking, with no
alarm left: an op that hangs would then hang the whole run. Here the alarm
raises :class:`CheckTimeout`, a ``BaseException`` that Hypothesis does not
catch, and repeats until the check stops. A process stuck in native code, where
signals wait, is ended by a watchdog after twice the limit (plus
``NNSPEC_TIMEOUT_GRACE`` seconds, default 10); the check is then recorded as
timed out all the same (under xdist, the worker is replaced and the run goes on).
"""

from __future__ import annotations

import faulthandler
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
from pathlib import Path
from typing import Any

import pytest

#: Every outcome a record can have, most serious first.
OUTCOMES: tuple[str, ...] = (
    "failed",
    "timeout",
    "error",
    "passed",
    "skipped-not-implemented",
    "skipped-unavailable",
    "skipped-other",
)

#: The version of the results file's layout; the report builder checks it.
SCHEMA_VERSION = 1

#: The key of this plugin's entries in ``report.user_properties``.
METADATA_KEY = "nnspec"
STATISTICS_KEY = "nnspec-hypothesis"

#: Parameter names whose value names the op under test: catalog-driven tests
#: take ``op`` (an entry with ``.name``); others may take a plain name. A test
#: with neither is a property of its own (a row named after the test).
OP_PARAMETERS: tuple[str, ...] = ("op", "operation")

#: How much of a failure's text a record keeps (the head and the tail).
TEXT_HEAD = 8_000
TEXT_TAIL = 32_000
SECTION_LIMIT = 8_000

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


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    if _is_worker(config):
        return
    path = config.getoption("nnspec_results")
    progress = config.getoption("nnspec_progress")
    if path or progress:
        recorder = Recorder(config, Path(path) if path else None, progress)
        config.pluginmanager.register(recorder, "nnspec-results-recorder")


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
    """The family, op, backend and dtype of ``item``, as JSON-able data."""
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
    return {
        "family": family_of(item.nodeid),
        "test": getattr(item, "originalname", None) or item.name,
        "op": op,
        "backend": backend_id,
        "backend_spec": getattr(backend, "spec", backend_id),
        "dtype": dtype if isinstance(dtype, str) else None,
        "params": callspec.id if callspec is not None else "",
    }


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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Attach the metadata (and at teardown the Hypothesis statistics) to the report.

    ``user_properties`` travel with the report from an xdist worker to the
    controller, where :class:`Recorder` reads them.
    """
    report = yield
    metadata = getattr(item, "_nnspec_metadata", None)
    if metadata is None:
        try:
            metadata = item_metadata(item)
        except Exception as error:  # metadata must never break the run
            metadata = {"family": family_of(item.nodeid), "metadata_error": repr(error)}
        item._nnspec_metadata = metadata  # type: ignore[attr-defined]
    report.user_properties.append((METADATA_KEY, metadata))
    statistics = getattr(item, "hypothesis_statistics", None)
    if report.when == "teardown" and isinstance(statistics, str):
        parsed = parse_hypothesis_statistics(statistics)
        if parsed:
            report.user_properties.append((STATISTICS_KEY, parsed))
    return report


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
    message = TIMEOUT_MESSAGE.format(limit=limit)

    def on_alarm(signum: int, frame: Any) -> None:
        raise CheckTimeout(f"{message}: {item.nodeid} was stopped")

    watchdog = threading.Timer(
        _hard_limit(limit), _hard_stop, (item, limit, f"{message}: {item.nodeid}")
    )
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
        metadata = getattr(item, "_nnspec_metadata", None) or item_metadata(item)
        config = item.config
        if _is_worker(config):
            directory = config.workerinput.get("nnspec_watchdog_dir")  # type: ignore[attr-defined]
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
# Recording (on the controller, from the reports)
# --------------------------------------------------------------------------- #


def skip_outcome(reason: str) -> str:
    """``skipped-not-implemented``, ``skipped-unavailable`` or ``skipped-other``."""
    text = reason.strip()
    if text.lower().startswith("skipped:"):
        text = text[len("skipped:") :].strip()
    if text.lower().startswith("not implemented"):
        return "skipped-not-implemented"
    if "unavailable" in text.lower():
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


class Recorder:
    """Builds one record per test from its reports; prints progress; writes JSON."""

    def __init__(
        self, config: pytest.Config, path: Path | None, progress: bool
    ) -> None:
        self.config = config
        self.path = path
        self.progress = progress
        self.interval = float(config.getoption("nnspec_progress_interval"))
        self.records: dict[str, dict[str, Any]] = {}
        self.finished: set[str] = set()
        self.collection_errors: list[dict[str, Any]] = []
        self.total: int | None = None
        self.family_totals: Counter[str] = Counter()
        self.family_done: Counter[str] = Counter()
        self.tallies: Counter[str] = Counter()
        self.started = time.monotonic()
        self.last_line = self.started
        self.latest: tuple[str | None, str | None] = (None, None)
        self.interrupted: str | None = None
        self.watchdog_dir: Path | None = None
        self._lock = threading.Lock()

    # -- xdist plumbing --------------------------------------------------- #

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        if self.watchdog_dir is None:
            self.watchdog_dir = Path(tempfile.mkdtemp(prefix="nnspec-watchdog-"))
        node.workerinput["nnspec_watchdog_dir"] = str(self.watchdog_dir)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        if self.total is None:
            self._set_collected(ids)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if self.total is None and not self.config.pluginmanager.has_plugin("dsession"):
            self._set_collected([item.nodeid for item in session.items])

    def _set_collected(self, nodeids: list[str]) -> None:
        self.total = len(nodeids)
        self.family_totals = Counter(family_of(nodeid) for nodeid in nodeids)
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

    # -- one record per test ---------------------------------------------- #

    def _new_record(
        self, nodeid: str, metadata: dict[str, Any] | None
    ) -> dict[str, Any]:
        metadata = metadata or self._guess_metadata(nodeid)
        return {
            "nodeid": nodeid,
            "family": metadata.get("family") or family_of(nodeid),
            "test": metadata.get("test"),
            "op": metadata.get("op"),
            "backend": metadata.get("backend"),
            "backend_spec": metadata.get("backend_spec"),
            "dtype": metadata.get("dtype"),
            "params": metadata.get("params", ""),
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
            "worker": None,
            "reproduce": None,
        }

    def _guess_metadata(self, nodeid: str) -> dict[str, Any]:
        """Best effort for a test whose reports carry no metadata (a crashed worker)."""
        backends = [entry["id"] for entry in self._backend_entries()]
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
        }

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        with self._lock:
            self._update(report)

    def _update(self, report: pytest.TestReport) -> None:
        if report.nodeid in self.finished:
            return
        properties = dict(
            entry for entry in report.user_properties if isinstance(entry, tuple)
        )
        record = self.records.get(report.nodeid)
        if record is None:
            record = self._new_record(report.nodeid, properties.get(METADATA_KEY))
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
                text = self._watchdog_text(report.nodeid) or (
                    f"{text}\n(the process running the check died: a hang ended "
                    "by a hard timeout, a segmentation fault, or os._exit)"
                )
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

        if when in ("teardown", "???"):
            self._finish(record)

    def _watchdog_text(self, nodeid: str) -> str | None:
        if self.watchdog_dir is None:
            return None
        for marker in sorted(self.watchdog_dir.glob("*.json")):
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
        record = self.records.get(nodeid) or self._new_record(nodeid, metadata)
        self.records[nodeid] = record
        record.update(outcome="timeout", when="call", message=text, longrepr=text)
        self._finish(record)
        self.interrupted = text
        self.write(exitstatus=int(pytest.ExitCode.INTERRUPTED))

    def _finish(self, record: dict[str, Any]) -> None:
        if record["outcome"] is None:
            record["outcome"] = "skipped-other"
            record["reason"] = record["reason"] or "no outcome reported"
        if record["outcome"] in ("failed", "timeout", "error"):
            record["reproduce"] = self._reproduce(record)
        self.finished.add(record["nodeid"])
        self.tallies[record["outcome"]] += 1
        self.family_done[record["family"]] += 1
        self.latest = (record["backend"], record["family"])
        if self.progress:
            now = time.monotonic()
            if now - self.last_line >= self.interval:
                self.last_line = now
                self._write_line(self.progress_line())

    def _reproduce(self, record: dict[str, Any]) -> str:
        command = ["python", "-m", "pytest", _shell_quote(record["nodeid"])]
        spec = record.get("backend_spec")
        if spec:
            command += ["--backend", _shell_quote(spec)]
        profile = self._hypothesis_profile()
        if profile:
            command.append(f"--hypothesis-profile={profile}")
        return " ".join(command)

    def _hypothesis_profile(self) -> str | None:
        try:
            profile = self.config.getoption("hypothesis_profile")
        except ValueError:
            profile = None
        return profile or os.environ.get("HYPOTHESIS_PROFILE")

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

    def document(self, exitstatus: int | None) -> dict[str, Any]:
        try:  # the report's own description of a machine, versions, commit, date
            from reports import environment

            described = environment.describe()
        except Exception as error:  # never lose the results for want of it
            described = {"error": f"{type(error).__name__}: {error}"}
        tests = [self.records[nodeid] for nodeid in sorted(self.records)]
        return {
            "schema": SCHEMA_VERSION,
            "kind": "nnspec-results",
            "environment": described,
            "hypothesis_profile": self._hypothesis_profile(),
            "timeout": _timeout_setting(self.config),
            "arguments": list(self.config.invocation_params.args),
            "exitstatus": exitstatus,
            "interrupted": self.interrupted,
            "duration": round(time.monotonic() - self.started, 3),
            "collected": self.total,
            "backends": self._backend_entries(),
            "collection_errors": self.collection_errors,
            "summary": dict(Counter(test["outcome"] for test in tests)),
            "tests": tests,
        }

    def write(self, exitstatus: int | None) -> None:
        if self.path is None:
            return
        document = self.document(exitstatus)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(json.dumps(document, indent=1, default=str))
        temporary.replace(self.path)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        with self._lock:
            self.write(int(exitstatus))
        if self.watchdog_dir is not None:
            shutil.rmtree(self.watchdog_dir, ignore_errors=True)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.progress:
            terminalreporter.write_line(self.progress_line())
        groups: dict[tuple[str, str], Counter[str]] = {}
        for record in self.records.values():
            key = (record["backend"] or "-", record["family"])
            groups.setdefault(key, Counter())[record["outcome"]] += 1
        if not groups:
            return
        terminalreporter.section("nnspec results")
        header = f"{'backend':<14} {'family':<18}" + "".join(
            f" {outcome.removeprefix('skipped-')[:9]:>9}" for outcome in OUTCOMES
        )
        terminalreporter.write_line(header)
        for (backend, family), counts in sorted(groups.items()):
            terminalreporter.write_line(
                f"{backend:<14} {family:<18}"
                + "".join(f" {counts[outcome]:>9}" for outcome in OUTCOMES)
            )
        if self.path is not None:
            terminalreporter.write_line(f"results: {self.path}")


def _timeout_setting(config: pytest.Config) -> float | None:
    try:
        value = config.getoption("timeout")
    except ValueError:
        return None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _load_backends(config: pytest.Config) -> list[Any]:
    """The selected backends, loaded as the conftest does (when it has not yet)."""
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

    try:
        specs = config.getoption("backend")
    except ValueError:
        specs = None
    return [Loaded(spec) for spec in contract.selected(specs or None)]


def _shell_quote(text: str) -> str:
    if re.fullmatch(r"[\w./:=@+-]+", text):
        return text
    return "'" + text.replace("'", "'\"'\"'") + "'"
