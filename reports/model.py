"""The verification results, read from the file the suite writes, shaped for the pages.

``properties/results.py`` writes one record per test (family, op, backend, dtype,
outcome, examples, failure text). Here the records become the verification
matrix: one row per op, one column per backend, and in each cell one verdict
per property family, with the counts behind it. A record the builder does not
understand (a missing key, an unknown outcome) is shown as it is, never a
reason not to build the site.

Nothing collected is lost: the counts by outcome always add up to the number
of checks the run collected. A check that never produced a report has a
``not-run`` record saying why; a file with fewer records than ``collected``
(cut short, or written by an older plugin) has the difference counted as
not run too (:data:`UNRECORDED_REASON`).

Layouts read: schema 1, and schema 2, which adds per record ``kind`` (a
backend's check, or the suite's own test), ``precision`` (the worst error seen
relative to the error allowed), ``declined`` (examples the backend declined)
and ``uses`` (the ops a composite check runs), and at the top ``not_run``,
``not_run_reasons`` and ``interrupted`` (the signal that stopped the run). A
schema 1 record's kind is derived from whether it names a backend.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Outcomes as the suite records them, and how the pages name them.
LABELS: dict[str, str] = {
    "failed": "fail",
    "timeout": "timed out",
    "error": "error",
    "not-run": "not run",
    "passed": "pass",
    "unsupported": "unsupported",
    "skipped-not-implemented": "not implemented",
    "skipped-unavailable": "unavailable",
    "skipped-other": "skipped",
}

#: A cell's verdict is the first of these that any of its checks has: one
#: failure makes the cell fail; a check that never ran keeps it from passing;
#: a pass beats the declines and skips around it.
PRECEDENCE: tuple[str, ...] = (
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

#: Outcomes that link to a diagnosis.
PROBLEMS: frozenset[str] = frozenset({"failed", "timeout", "error"})

#: The results file layouts this builder reads.
SCHEMAS: tuple[int, ...] = (1, 2)

#: Why checks counted in ``collected`` have no record at all.
UNRECORDED_REASON = "the run ended without a result for these checks"

#: Record kinds: a check that runs a backend, or one of the suite's own tests.
KINDS: tuple[str, ...] = ("backend", "suite")

SYMBOLS: dict[str, str] = {
    "failed": "\u2717",  # ballot x
    "timeout": "\u25d4",  # circle with a quarter filled: a clock run out
    "error": "!",
    "not-run": "\u2205",  # empty set: no result
    "passed": "\u2713",  # check mark
    "unsupported": "\u2298",  # circled slash: declined by the backend
    "skipped-not-implemented": "\u2013",  # en dash
    "skipped-unavailable": "\u00b7",  # middle dot
    "skipped-other": "\u2218",  # ring operator
}


#: The column of the checks that run on no backend: the reference's own
#: properties (its gradients against finite differences, its identities).
REFERENCE_COLUMN = "reference"


class ResultsError(ValueError):
    """A results file that cannot be read at all."""


def anchor(nodeid: str) -> str:
    """A stable HTML id for a test, from its node id."""
    return "f-" + hashlib.sha1(nodeid.encode()).hexdigest()[:12]


def reason_anchor(reason: str) -> str:
    """A stable HTML id for a group of checks that never ran for one reason."""
    return "nr-" + hashlib.sha1(reason.encode()).hexdigest()[:12]


def not_run_reason(check: Check) -> str:
    return check.reason or "no reason recorded"


def ops_of(checks: list[Check]) -> list[str]:
    """The ops of some checks, each once, in order."""
    return list(dict.fromkeys(check.op for check in checks if check.op))


def css_class(outcome: str) -> str:
    return "s-" + re.sub(r"[^a-z0-9]+", "-", outcome.lower()).strip("-")


_INPUT_START = re.compile(
    r"(Falsifying example|Failing test case|Falsifying explicit example)"
)
_REPRODUCE = re.compile(r"@reproduce_failure\([^)]*\)")
_SEED = re.compile(r"(@seed\(\d+\)|--hypothesis-seed=\d+)")


def _unprefixed(line: str) -> str:
    """A traceback line without pytest's ``E   `` marker."""
    if line.startswith("E   ") or line == "E":
        return line[4:]
    return line


def falsifying_inputs(text: str) -> str | None:
    """The inputs Hypothesis reports for a failure ("Falsifying example: ...")."""
    lines = (text or "").splitlines()
    for index, line in enumerate(lines):
        plain = _unprefixed(line)
        if _INPUT_START.search(plain):
            block = [plain.strip()]
            if plain.rstrip().endswith("("):
                for following in lines[index + 1 :]:
                    content = _unprefixed(following)
                    block.append(content)
                    if content.strip() == ")":
                        break
            return "\n".join(block)
    return None


def error_summary(message: str | None, longrepr: str | None) -> str:
    """The error itself: the crash message without Hypothesis' inputs block."""
    text = message or ""
    if not text and longrepr:
        error_lines = [
            _unprefixed(x) for x in longrepr.splitlines() if x.startswith("E ")
        ]
        text = "\n".join(error_lines) or longrepr.strip().splitlines()[-1]
    match = _INPUT_START.search(text)
    if match:
        text = text[: match.start()]
    return text.strip()


def hypothesis_reproduction(text: str) -> list[str]:
    """``@reproduce_failure(...)`` and ``@seed(...)`` lines Hypothesis printed."""
    found = _REPRODUCE.findall(text or "") + _SEED.findall(text or "")
    return list(dict.fromkeys(found))


@dataclass(frozen=True)
class Precision:
    """The worst error a check saw, as a multiple of the error it allows."""

    worst_ratio: float
    output: str

    @property
    def failed(self) -> bool:
        return not self.worst_ratio <= 1  # NaN included

    @classmethod
    def from_record(cls, value: Any) -> Precision | None:
        if not isinstance(value, dict):
            return None
        ratio = value.get("worst_ratio")
        if not isinstance(ratio, (int, float)) or isinstance(ratio, bool):
            return None
        return cls(float(ratio), str(value.get("output") or ""))


@dataclass
class Check:
    """One test of the suite: one property, on one op, backend and dtype."""

    nodeid: str
    family: str
    test: str
    op: str | None
    backend: str | None
    dtype: str | None
    outcome: str
    reason: str
    message: str
    longrepr: str
    sections: dict[str, str]
    duration: float
    examples: int | None
    reproduce: str | None
    raw: dict[str, Any]
    kind: str = "suite"
    precision: Precision | None = None
    declined: int | None = None
    uses: tuple[str, ...] = ()
    #: Failing checks of ops in :attr:`uses`, same backend (and dtype): where
    #: to look first (set by :func:`results_from_document`).
    blame: list[Check] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return anchor(self.nodeid)

    @property
    def blamed_ops(self) -> list[str]:
        return ops_of(self.blame)

    @property
    def blame_text(self) -> str:
        return "; ".join(
            f"look first at op {op}: its own check fails" for op in self.blamed_ops
        )

    @property
    def label(self) -> str:
        return LABELS.get(self.outcome, self.outcome)

    @property
    def css(self) -> str:
        return css_class(self.outcome)

    @property
    def column(self) -> str:
        """The matrix column: the backend, or the reference for backend-free checks."""
        return self.backend or REFERENCE_COLUMN

    @property
    def row(self) -> str:
        """The matrix row: the op, or for a test without one, the test's name."""
        if self.op:
            return self.op
        return f"{self.family}: {self.test.removeprefix('test_')}"

    @property
    def inputs(self) -> str | None:
        return falsifying_inputs(self.longrepr) or falsifying_inputs(self.message)

    @property
    def error(self) -> str:
        return error_summary(self.message, self.longrepr)

    @property
    def hypothesis_lines(self) -> list[str]:
        texts = [self.longrepr, *self.sections.values()]
        return hypothesis_reproduction("\n".join(texts))

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Check:
        nodeid = str(record.get("nodeid") or "?")
        family = record.get("family") or Path(nodeid.split("::")[0]).stem.removeprefix(
            "test_"
        )
        test = record.get("test") or nodeid.split("::")[-1].partition("[")[0]
        examples = record.get("examples")
        sections = record.get("sections") or {}
        backend = str(record["backend"]) if record.get("backend") else None
        kind = record.get("kind")
        if kind not in KINDS:  # schema 1: a check with a backend runs it
            kind = "backend" if backend else "suite"
        declined = record.get("declined")
        uses = record.get("uses")
        return cls(
            nodeid=nodeid,
            family=str(family),
            test=str(test),
            op=str(record["op"]) if record.get("op") else None,
            backend=backend,
            dtype=str(record["dtype"]) if record.get("dtype") else None,
            outcome=str(record.get("outcome") or "skipped-other"),
            reason=str(record.get("reason") or ""),
            message=str(record.get("message") or ""),
            longrepr=str(record.get("longrepr") or ""),
            sections={str(k): str(v) for k, v in dict(sections).items()},
            duration=float(record.get("duration") or 0.0),
            examples=int(examples) if isinstance(examples, (int, float)) else None,
            reproduce=record.get("reproduce"),
            raw=record,
            kind=str(kind),
            precision=Precision.from_record(record.get("precision")),
            declined=int(declined) if isinstance(declined, (int, float)) else None,
            uses=tuple(str(op) for op in uses if op)
            if isinstance(uses, (list, tuple))
            else (),
        )


class _Checks:
    """What a group of checks (a cell, the whole run) sums up from its ``checks``."""

    checks: list[Check]

    @property
    def examples(self) -> int:
        return sum(check.examples or 0 for check in self.checks)

    @property
    def problems(self) -> list[Check]:
        return [check for check in self.checks if check.outcome in PROBLEMS]


@dataclass
class Cell(_Checks):
    """The checks of one property family on one op and one backend."""

    row: str
    backend: str
    family: str
    checks: list[Check] = field(default_factory=list)

    @property
    def counts(self) -> Counter[str]:
        return Counter(check.outcome for check in self.checks)

    @property
    def status(self) -> str:
        counts = self.counts
        for outcome in PRECEDENCE:
            if counts[outcome]:
                return outcome
        return next(iter(counts), "skipped-other")

    @property
    def label(self) -> str:
        return LABELS.get(self.status, self.status)

    @property
    def symbol(self) -> str:
        return SYMBOLS.get(self.status, "?")

    @property
    def css(self) -> str:
        return css_class(self.status)

    @property
    def link(self) -> str | None:
        """The diagnosis of its first problem, or why its checks never ran."""
        problems = self.problems
        if problems:
            return f"failures.html#{problems[0].anchor}"
        not_run = [check for check in self.checks if check.outcome == "not-run"]
        if not_run:
            return f"failures.html#{reason_anchor(not_run_reason(not_run[0]))}"
        return None

    @property
    def blame(self) -> list[Check]:
        """Failing checks of the ops its failing composite checks use."""
        found: dict[str, Check] = {}
        for check in self.problems:
            for culprit in check.blame:
                found.setdefault(culprit.nodeid, culprit)
        return list(found.values())

    @property
    def blamed_ops(self) -> list[str]:
        return ops_of(self.blame)

    @property
    def partial(self) -> bool:
        """Passed where it ran, with some dtype or case declined or not implemented."""
        counts = self.counts
        return self.status == "passed" and (
            counts["skipped-not-implemented"] > 0 or counts["unsupported"] > 0
        )

    @property
    def declined(self) -> int:
        """Examples the backend declined (raised NotImplementedError) in its checks."""
        return sum(check.declined or 0 for check in self.checks)

    @property
    def title(self) -> str:
        """The tooltip: every count behind the verdict."""
        counts = self.counts
        parts = [
            f"{counts[outcome]} {LABELS.get(outcome, outcome)}"
            for outcome in [*PRECEDENCE, *sorted(set(counts) - set(PRECEDENCE))]
            if counts[outcome]
        ]
        text = f"{self.family} on {self.backend}: {', '.join(parts)}"
        if self.examples:
            text += f"; {self.examples} Hypothesis examples"
        if self.declined:
            text += f"; {self.declined} examples declined by the backend"
        for op in self.blamed_ops:
            text += f"\nlook first at op {op}: its own check fails"
        reasons = sorted(
            {c.reason for c in self.checks if c.reason and c.outcome != "passed"}
        )
        if reasons:
            text += "\n" + "\n".join(reasons[:4])
        return text


@dataclass
class BackendColumn:
    """A backend as the suite saw it: usable, unavailable here, or not loadable."""

    id: str
    spec: str | None = None
    device: str | None = None
    dtypes: list[str] = field(default_factory=list)
    status: str = "available"
    reason: str | None = None
    counts: Counter[str] = field(default_factory=Counter)

    @property
    def css(self) -> str:
        return css_class(
            {"available": "passed", "unavailable": "skipped-unavailable"}.get(
                self.status, "error"
            )
        )


@dataclass
class Results(_Checks):
    """The whole run: environment, backends, checks, and the matrix built from them."""

    document: dict[str, Any]
    checks: list[Check]
    backends: list[BackendColumn]
    collection_errors: list[dict[str, Any]]

    @property
    def environment(self) -> dict[str, Any]:
        return dict(self.document.get("environment") or {})

    @property
    def families(self) -> list[str]:
        order = ["agreement", "gradients"]
        found = {check.family for check in self.checks}
        return [f for f in order if f in found] + sorted(found - set(order))

    @property
    def rows(self) -> list[str]:
        """Ops in the contract's order, then the rest; property-level rows last."""
        try:
            from backends.contract import BACKWARD_OPERATIONS, OPERATIONS

            known = list(OPERATIONS) + list(BACKWARD_OPERATIONS)
        except Exception:  # the report still builds without the package
            known = []
        rank = {name: index for index, name in enumerate(known)}
        rows = {check.row for check in self.checks}
        ops = {check.op for check in self.checks if check.op}
        return sorted(
            rows,
            key=lambda row: (
                0 if row in rank else 1 if row in ops else 2,
                rank.get(row, 0),
                row,
            ),
        )

    def cells(self) -> dict[tuple[str, str], list[Cell]]:
        """(row, backend) -> one cell per family, in :attr:`families` order."""
        grouped: dict[tuple[str, str, str], Cell] = {}
        for check in self.checks:
            key = (check.row, check.column, check.family)
            cell = grouped.get(key)
            if cell is None:
                cell = grouped[key] = Cell(check.row, check.column, check.family)
            cell.checks.append(check)
        families = self.families
        result: dict[tuple[str, str], list[Cell]] = {}
        for (row, backend, _), cell in grouped.items():
            result.setdefault((row, backend), []).append(cell)
        for cells in result.values():
            cells.sort(key=lambda cell: families.index(cell.family))
        return result

    def family_summary(self) -> dict[tuple[str, str], Counter[str]]:
        """(family, column) -> outcome counts."""
        summary: dict[tuple[str, str], Counter[str]] = {}
        for check in self.checks:
            summary.setdefault((check.family, check.column), Counter())[
                check.outcome
            ] += 1
        return summary

    @property
    def collected(self) -> int:
        """How many checks the run collected (at least as many as it recorded)."""
        declared = self.document.get("collected")
        if not isinstance(declared, int) or isinstance(declared, bool):
            declared = 0
        return max(declared, len(self.checks))

    @property
    def unrecorded(self) -> int:
        """Checks collected without any record: the file ends before their results."""
        return self.collected - len(self.checks)

    @property
    def counts(self) -> Counter[str]:
        """Checks by outcome; they add up to :attr:`collected`."""
        counts = Counter(check.outcome for check in self.checks)
        if self.unrecorded:
            counts["not-run"] += self.unrecorded
        return counts

    @property
    def not_run(self) -> int:
        return self.counts["not-run"]

    def not_run_groups(self) -> list[NotRunGroup]:
        """The checks that never ran, grouped by why, the largest group first."""
        groups: dict[str, list[Check]] = {}
        for check in self.checks:
            if check.outcome == "not-run":
                groups.setdefault(not_run_reason(check), []).append(check)
        found = [NotRunGroup(reason, len(g), g) for reason, g in groups.items()]
        if self.unrecorded:
            found.append(NotRunGroup(UNRECORDED_REASON, self.unrecorded, []))
        return sorted(found, key=lambda group: (-group.count, group.reason))

    def unsupported_groups(self) -> list[NotRunGroup]:
        """Checks whose every example the backend declined, by backend and reason."""
        groups: dict[str, list[Check]] = {}
        for check in self.checks:
            if check.outcome == "unsupported":
                reason = check.reason.removeprefix("unsupported:").strip()
                groups.setdefault(f"{check.column}: {reason}", []).append(check)
        return [NotRunGroup(reason, len(g), g) for reason, g in sorted(groups.items())]

    @property
    def interruption(self) -> str | None:
        """What stopped the run and how many checks it left unrun, if it was."""
        cause = self.document.get("interrupted")
        if not cause:
            return None
        cause = str(cause).strip().splitlines()[0] if str(cause).strip() else "?"
        how = f"by {cause}" if re.fullmatch(r"SIG[A-Z0-9]+", cause) else f"({cause})"
        return (
            f"run interrupted {how}: {self.not_run} of {self.collected} "
            "checks never ran"
        )

    def column_rank(self, column: str) -> int:
        """Where a backend's column stands in the matrix (unknown ones last)."""
        order = [backend.id for backend in self.backends]
        return order.index(column) if column in order else len(order)

    def headline(self) -> list[Tally]:
        """Outcome counts per backend (its checks), then the suite's own tests.

        A backend's verdict is its own checks' alone: the reference's and the
        suite's self-tests (``kind == "suite"``) are counted apart, so they
        cannot pad a backend's passes.
        """
        by_column: dict[str, Counter[str]] = {}
        suite: Counter[str] = Counter()
        for check in self.checks:
            if check.kind == "backend":
                by_column.setdefault(check.column, Counter())[check.outcome] += 1
            else:
                suite[check.outcome] += 1
        tallies = [
            Tally(column, by_column[column])
            for column in sorted(by_column, key=lambda c: (self.column_rank(c), c))
        ]
        if suite:
            tallies.append(Tally("the suite's own tests", suite))
        if self.unrecorded:
            tallies.append(
                Tally("checks with no record", Counter({"not-run": self.unrecorded}))
            )
        return tallies

    def headline_text(self) -> str:
        return " \u00b7 ".join(tally.text for tally in self.headline())

    def precision_table(self) -> PrecisionTable:
        """Per row and (backend, dtype), the worst error relative to the allowed."""
        cells: dict[tuple[str, str, str], PrecisionCell] = {}
        for check in self.checks:
            if check.precision is None:
                continue
            key = (check.row, check.column, check.dtype or "")
            cell = cells.get(key)
            if cell is None:
                cells[key] = PrecisionCell(check.precision, check, 1)
                continue
            cell.checks += 1
            if _severity(check.precision) > _severity(cell.precision):
                cell.precision, cell.check = check.precision, check
        columns = sorted(
            {(backend, dtype) for _, backend, dtype in cells},
            key=lambda c: (self.column_rank(c[0]), c[0], c[1]),
        )
        rows = [row for row in self.rows if any(k[0] == row for k in cells)]
        return PrecisionTable(rows, columns, cells)

    @property
    def failed(self) -> bool:
        """Whether the run should fail a CI job: a failure, a check that never
        ran, or pytest said so."""
        if self.document.get("missing"):
            return True
        exitstatus = self.document.get("exitstatus")
        return bool(
            self.problems or self.collection_errors or self.not_run
        ) or exitstatus not in (0, None)


#: How the headline words each outcome ("numpy: 340 passed, 2 unsupported").
HEADLINE_WORDS: dict[str, str] = {
    "failed": "failed",
    "timeout": "timed out",
    "error": "errored",
    "not-run": "not run",
    "passed": "passed",
    "unsupported": "unsupported",
    "skipped-not-implemented": "not implemented",
    "skipped-unavailable": "unavailable",
    "skipped-other": "skipped",
}


@dataclass
class Tally:
    """The outcome counts of one part of the run: a backend, or the suite's tests."""

    label: str
    counts: Counter[str]

    @property
    def outcomes(self) -> list[str]:
        """Its outcomes, most serious first, unknown ones last."""
        known = [o for o in PRECEDENCE if self.counts[o]]
        return known + sorted(o for o in self.counts if o not in PRECEDENCE)

    @property
    def text(self) -> str:
        parts = [f"{self.counts[o]} {HEADLINE_WORDS.get(o, o)}" for o in self.outcomes]
        return f"{self.label}: {', '.join(parts)}"


@dataclass
class NotRunGroup:
    """Checks that share one reason (for never running, or for being declined)."""

    reason: str
    count: int
    checks: list[Check]

    @property
    def anchor(self) -> str:
        return reason_anchor(self.reason)


def _severity(precision: Precision) -> float:
    """A ratio to compare by; NaN (an output that is not a number) is the worst."""
    ratio = precision.worst_ratio
    return float("inf") if ratio != ratio else ratio


@dataclass
class PrecisionCell:
    """The worst precision among one row's checks on one backend and dtype."""

    precision: Precision
    check: Check
    checks: int

    @property
    def css(self) -> str:
        """Its colour: from green (far below the allowed error) to red (over it)."""
        ratio = _severity(self.precision)
        if ratio > 1:
            return "p-over"
        if ratio > 0.9:
            return "p-edge"
        if ratio > 0.5:
            return "p-near"
        if ratio > 0.1:
            return "p-fair"
        return "p-far"

    @property
    def title(self) -> str:
        output = f" in {self.precision.output}" if self.precision.output else ""
        return (
            f"worst error {self.precision.worst_ratio:.3g} \u00d7 the allowed"
            f"{output}, {self.check.nodeid} (of {self.checks} checks)"
        )


@dataclass
class PrecisionTable:
    rows: list[str]
    columns: list[tuple[str, str]]
    cells: dict[tuple[str, str, str], PrecisionCell]

    def get(self, row: str, column: tuple[str, str]) -> PrecisionCell | None:
        return self.cells.get((row, *column))

    @property
    def groups(self) -> list[tuple[str, int]]:
        """Each backend with its number of dtype columns, in the columns' order."""
        groups: list[tuple[str, int]] = []
        for backend, _ in self.columns:
            if groups and groups[-1][0] == backend:
                groups[-1] = (backend, groups[-1][1] + 1)
            else:
                groups.append((backend, 1))
        return groups


def _backend_columns(
    document: dict[str, Any], checks: list[Check]
) -> list[BackendColumn]:
    columns: dict[str, BackendColumn] = {}
    for entry in document.get("backends") or []:
        if not isinstance(entry, dict) or not entry.get("id"):
            continue
        column = BackendColumn(
            id=str(entry["id"]),
            spec=entry.get("spec"),
            device=entry.get("device"),
            dtypes=[str(d) for d in entry.get("dtypes") or []],
            status=str(entry.get("status") or "available"),
            reason=entry.get("reason"),
        )
        columns[column.id] = column
    if any(not check.backend for check in checks):
        reference = BackendColumn(
            id=REFERENCE_COLUMN,
            device="cpu",
            dtypes=["float64"],
            reason="the reference's own properties, on no backend",
        )
        columns = {REFERENCE_COLUMN: reference, **columns}
    for check in checks:
        if check.column not in columns:
            columns[check.column] = BackendColumn(id=check.column, spec=check.column)
        columns[check.column].counts[check.outcome] += 1
    return list(columns.values())


def load_results(path: Path | str) -> Results:
    """Read the suite's results file; raise :class:`ResultsError` if it is unusable.

    The error's message is one line saying what is wrong and where. A run that
    died (a crash, a kill) left its journal beside ``path`` and no results
    file: the file is written from the journal first (the checks that never
    ran become ``not-run`` records), as ``python -m properties.results
    finalize`` does.
    """
    path = Path(path)
    _recover_from_journal(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise ResultsError(f"no results file at {path}") from error
    except IsADirectoryError as error:
        raise ResultsError(f"results file {path} is a folder") from error
    except UnicodeDecodeError as error:
        raise ResultsError(f"results file {path} is not UTF-8 text: {error}") from error
    except OSError as error:
        raise ResultsError(
            f"cannot read results file {path}: {error.strerror or error}"
        ) from error
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno} column {error.colno}"
        # An unterminated string runs to the end of the text: cut short too.
        at_end = error.pos >= len(text.rstrip())
        if at_end or error.msg.startswith("Unterminated string"):
            raise ResultsError(
                f"results file {path} is cut short: its JSON ends at {where} "
                "before the document is complete"
            ) from error
        raise ResultsError(
            f"results file {path} is not valid JSON: {error.msg} at {where}"
        ) from error
    return results_from_document(document, source=f"results file {path}")


def _recover_from_journal(path: Path) -> None:
    from properties.results import finalize, journal_path

    if not journal_path(path).is_file():
        return
    try:
        finalize(path)
    except (OSError, ValueError) as error:
        raise ResultsError(
            f"cannot recover the results file {path} from the journal of the run "
            f"that died: {error}"
        ) from error


def results_from_document(document: Any, source: str = "results file") -> Results:
    """Results from a parsed document; :class:`ResultsError` if not one we read."""
    if not isinstance(document, dict) or not isinstance(
        document.get("tests", []), list
    ):
        raise ResultsError(f"{source}: expected an object with a list of 'tests'")
    kind = document.get("kind")
    if kind not in (None, "nnspec-results"):
        raise ResultsError(f"{source}: not an nnspec results file (kind {kind!r})")
    schema = document.get("schema", 1)
    if isinstance(schema, bool) or schema not in SCHEMAS:
        known = " and ".join(str(version) for version in SCHEMAS)
        raise ResultsError(
            f"{source}: schema {schema!r} is not one this builder reads "
            f"(it reads schema {known}); build it with the nnspec that wrote it"
        )
    checks = [
        Check.from_record(record)
        for record in document.get("tests", [])
        if isinstance(record, dict)
    ]
    _assign_blame(checks)
    errors = [e for e in document.get("collection_errors") or [] if isinstance(e, dict)]
    return Results(document, checks, _backend_columns(document, checks), errors)


def _assign_blame(checks: list[Check]) -> None:
    """Point each failing composite check at the failing checks of the ops it uses.

    A composite check (``uses`` names its ops) that fails on a backend whose
    own check of one of those ops fails too (same dtype, where both have one)
    most likely fails because of that op: that is where to look first.
    """
    failing: dict[tuple[str | None, str], list[Check]] = {}
    for check in checks:
        if check.op and check.outcome in PROBLEMS:
            failing.setdefault((check.backend, check.op), []).append(check)
    for check in checks:
        if not check.uses or check.outcome not in PROBLEMS:
            continue
        check.blame = [
            culprit
            for op in dict.fromkeys(check.uses)
            for culprit in failing.get((check.backend, op), [])
            if culprit is not check
            and (not check.dtype or not culprit.dtype or culprit.dtype == check.dtype)
        ]


def empty_results(reason: str, environment: dict[str, Any] | None = None) -> Results:
    """Results standing in for a missing file: the site says why it has no matrix."""
    document = {
        "environment": environment or {},
        "exitstatus": None,
        "tests": [],
        "missing": reason,
    }
    return Results(document, [], [], [])
