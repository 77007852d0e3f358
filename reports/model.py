"""The verification results, read from the file the suite writes, shaped for the pages.

``properties/results.py`` writes one record per test (family, op, backend, dtype,
outcome, examples, failure text). Here the records become the verification
matrix: one row per op, one column per backend, and in each cell one verdict
per property family, with the counts behind it. A record the builder does not
understand (a missing key, an unknown outcome) is shown as it is, never a
reason not to build the site.
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
    "passed": "pass",
    "skipped-not-implemented": "not implemented",
    "skipped-unavailable": "unavailable",
    "skipped-other": "skipped",
}

#: A cell's verdict is the first of these that any of its checks has: one
#: failure makes the cell fail; a pass beats the skips around it.
PRECEDENCE: tuple[str, ...] = (
    "failed",
    "timeout",
    "error",
    "passed",
    "skipped-not-implemented",
    "skipped-unavailable",
    "skipped-other",
)

#: Outcomes that link to a diagnosis.
PROBLEMS: frozenset[str] = frozenset({"failed", "timeout", "error"})

SYMBOLS: dict[str, str] = {
    "failed": "\u2717",  # ballot x
    "timeout": "\u25d4",  # circle with a quarter filled: a clock run out
    "error": "!",
    "passed": "\u2713",  # check mark
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

    @property
    def anchor(self) -> str:
        return anchor(self.nodeid)

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
        return cls(
            nodeid=nodeid,
            family=str(family),
            test=str(test),
            op=str(record["op"]) if record.get("op") else None,
            backend=str(record["backend"]) if record.get("backend") else None,
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
        )


@dataclass
class Cell:
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
    def examples(self) -> int:
        return sum(check.examples or 0 for check in self.checks)

    @property
    def problems(self) -> list[Check]:
        return [check for check in self.checks if check.outcome in PROBLEMS]

    @property
    def link(self) -> str | None:
        problems = self.problems
        return f"failures.html#{problems[0].anchor}" if problems else None

    @property
    def partial(self) -> bool:
        """Passed where it ran, with some dtype or case not implemented."""
        return self.status == "passed" and self.counts["skipped-not-implemented"] > 0

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
class Results:
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
    def counts(self) -> Counter[str]:
        return Counter(check.outcome for check in self.checks)

    @property
    def examples(self) -> int:
        return sum(check.examples or 0 for check in self.checks)

    @property
    def problems(self) -> list[Check]:
        return [check for check in self.checks if check.outcome in PROBLEMS]

    @property
    def failed(self) -> bool:
        """Whether the run should fail a CI job: a failure, or pytest said so."""
        if self.document.get("missing"):
            return True
        exitstatus = self.document.get("exitstatus")
        return bool(self.problems or self.collection_errors) or exitstatus not in (
            0,
            None,
        )


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
    """Read the suite's results file; raise :class:`ResultsError` if it is unusable."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ResultsError(f"no results file at {path}") from error
    except (OSError, ValueError) as error:
        raise ResultsError(f"cannot read results file {path}: {error}") from error
    return results_from_document(document)


def results_from_document(document: Any) -> Results:
    if not isinstance(document, dict) or not isinstance(
        document.get("tests", []), list
    ):
        raise ResultsError("results file: expected an object with a list of 'tests'")
    checks = [
        Check.from_record(record)
        for record in document.get("tests", [])
        if isinstance(record, dict)
    ]
    errors = [e for e in document.get("collection_errors") or [] if isinstance(e, dict)]
    return Results(document, checks, _backend_columns(document, checks), errors)


def empty_results(reason: str, environment: dict[str, Any] | None = None) -> Results:
    """Results standing in for a missing file: the site says why it has no matrix."""
    document = {
        "environment": environment or {},
        "exitstatus": None,
        "tests": [],
        "missing": reason,
    }
    return Results(document, [], [], [])
