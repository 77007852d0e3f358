"""Run the property suite against every mutant; print who killed whom.

Usage::

    python -m backends.mutants.run [--only NAME]... [--profile PROFILE]
        [--max-examples N] [--shrink] [--workers N] [--batch N] [--keep DIR]
        [--list]
        [-- PYTEST ARGS]

The suite is every ``properties/test_*.py`` but the modules that never take a
backend (the reference's own properties, the catalog's and the suite's
self-tests: :data:`EXCLUDED`), run with ``--backend <mutant>``, ``-q``,
``--hypothesis-profile``, ``-p no:cacheprovider`` and pytest-xdist's ``-n``.
The plugin :mod:`backends.mutants.plugin` keeps only the tests that take the
``backend`` fixture and records each test's outcome and backend.

The mutants go to pytest in batches of ``--batch`` (default 4) per session
(``--backend`` is repeatable; every test id names its mutant): a session per
mutant would pay a collection and an xdist start-up over 40 times (minutes
of the CI budget), while one session for all of them breaks Hypothesis'
pytest plugin, which wraps a parametrized test's settings in one more
``settings(parent=...)`` at every invocation: past about 900 invocations of
one test function in one worker (40-odd mutants x 30 ops x 2 dtypes is far
past it), reading the settings overflows the recursion limit and every later
example fails with a ``RecursionError`` inside Hypothesis. ``--batch 1`` gives
each mutant its own session, for debugging one.

The Hypothesis profile defaults to ``ci`` (derandomized: the same examples on
every run, so a kill is reproducible) capped at ``--max-examples`` (default
10, ``0`` for the profile's own count), without shrinking failing examples
(``--shrink`` restores it): a kill needs one failing example, and every
mutant here dies within a few; both keep the run within the CI budget.

Output: a kill matrix (one row per mutant, one column per property family,
the number of that family's tests that failed on the mutant) and the tests
that killed each mutant. The exit status is 1 if a mutant survived (no test
failed on it), if a session had an internal or collection error, or if a test
errored outside its body (a fixture, a backend that does not load); else 0.
Families that killed no mutant, and mutants that escaped a family their
docstring names, are printed as warnings.
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib.util
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backends import contract
from backends.mutants import MUTANTS

ROOT = Path(__file__).resolve().parents[2]
PROPERTIES = ROOT / "properties"

#: Property modules that never take a backend (or test the suite itself, or,
#: as test_invalid_input, the built-in backends by name).
EXCLUDED: tuple[str, ...] = (
    "test_gradients.py",
    "test_reference_*.py",
    "test_catalog.py",
    "test_contract.py",
    "test_suite_robustness.py",
    "test_run_robustness.py",
    "test_invalid_input.py",
    "test_backend_*_internals.py",
    "test_mutants_registry.py",
)

#: pytest's exit statuses of a run that worked (all passed / some failed).
RUN_OK = (0, 1)
#: Mutants per pytest session (see the module docstring for the limit).
BATCH = 4
#: The per-test time limit (pytest-timeout), against a mutant that hangs.
TEST_TIMEOUT_SECONDS = 300


def property_modules() -> list[Path]:
    """The property modules each mutant runs against, in name order."""
    return [
        path
        for path in sorted(PROPERTIES.glob("test_*.py"))
        if not any(fnmatch.fnmatch(path.name, pattern) for pattern in EXCLUDED)
    ]


def family_of_module(path: Path) -> str:
    return path.stem.removeprefix("test_")


@dataclass
class Session:
    """One pytest run, over one or several mutants."""

    names: list[str]
    seconds: float
    exitstatus: int
    log: str
    records: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    """What the suite did to one mutant."""

    name: str
    spec: str
    killers: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)

    @property
    def killed(self) -> bool:
        return bool(self.killers)

    def by_family(self) -> Counter:
        return Counter(record["family"] for record in self.killers)


def pytest_command(
    specs: list[str],
    modules: list[Path],
    options: argparse.Namespace,
    report: Path,
    extra: list[str],
) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "pytest",
        *(str(path.relative_to(ROOT)) for path in modules),
        *(f"--backend={spec}" for spec in specs),
        "-q",
        f"--hypothesis-profile={options.profile}",
        "-p",
        "no:cacheprovider",
        "-p",
        "backends.mutants.plugin",
        f"--mutant-report={report}",
        "-W",
        "ignore::RuntimeWarning",  # the unstable mutants overflow on purpose
    ]
    if options.max_examples:
        command.append(f"--mutant-max-examples={options.max_examples}")
    if not options.shrink:
        command.append("--mutant-no-shrink")
    if options.workers not in ("0", "1"):
        command += ["-n", options.workers]
    if importlib.util.find_spec("pytest_timeout") is not None:
        command.append(f"--timeout={TEST_TIMEOUT_SECONDS}")
    return command + extra


def run_session(
    names: list[str],
    modules: list[Path],
    options: argparse.Namespace,
    extra: list[str],
    directory: Path,
) -> Session:
    label = names[0] if len(names) == 1 else f"{names[0]}-and-{len(names) - 1}-more"
    report = directory / f"{label}.json"
    command = pytest_command(
        [MUTANTS[n] for n in names], modules, options, report, extra
    )
    python_path = os.pathsep.join(
        part for part in (str(ROOT), os.environ.get("PYTHONPATH", "")) if part
    )
    started = time.monotonic()
    completed = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": python_path},
    )
    session = Session(
        names=names,
        seconds=time.monotonic() - started,
        exitstatus=completed.returncode,
        log=completed.stdout + completed.stderr,
    )
    if options.keep:
        (directory / f"{label}.log").write_text(
            shlex.join(command) + "\n\n" + session.log
        )
    if completed.returncode not in RUN_OK:
        session.errors.append(
            f"pytest exited with status {completed.returncode} (an internal, usage or "
            "collection error, or an interruption)"
        )
    try:
        document = json.loads(report.read_text())
    except (OSError, ValueError) as error:
        session.errors.append(f"no readable report from the run: {error}")
        return session
    for failure in document.get("collection_errors", []):
        session.errors.append(
            f"collection error in {failure['nodeid']}: {failure['message']}"
        )
    session.records = document.get("tests", [])
    return session


def outcomes_of(session: Session) -> list[Outcome]:
    """Split a session's records by mutant (the backend each test ran against)."""
    outcomes = {name: Outcome(name, MUTANTS[name]) for name in session.names}
    for record in session.records:
        outcome = outcomes.get(record.get("backend"))
        if outcome is None:
            continue
        outcome.counts[record["outcome"]] += 1
        if record["outcome"] == "failed" and "RecursionError" in (
            record["message"] or ""
        ):
            # Not a kill: the session was too large for Hypothesis (see --batch).
            outcome.errors.append(f"{record['nodeid']}: {record['message']}")
        elif record["outcome"] == "failed":
            outcome.killers.append(record)
        elif record["outcome"] == "error":
            outcome.errors.append(
                f"{record['nodeid']} errored in {record['when']}: {record['message']}"
            )
    for outcome in outcomes.values():
        if not outcome.counts.get("passed") and not outcome.killers:
            outcome.errors.append("no test ran against this mutant")
    return list(outcomes.values())


# -- printing ------------------------------------------------------------------


def kill_matrix(outcomes: list[Outcome], families: list[str]) -> str:
    width = max(len(outcome.name) for outcome in outcomes) + 2
    sizes = [max(len(family), 3) for family in families]

    def row(label: str, cells: list[str], status: str = "") -> str:
        text = " ".join(c.rjust(s) for c, s in zip(cells, sizes, strict=True))
        return (label.ljust(width) + text + (f"  {status}" if status else "")).rstrip()

    header = row("mutant", families, "status")
    rule = "-" * len(header)
    lines = [header, rule]
    for outcome in outcomes:
        counts = outcome.by_family()
        cells = [str(counts[f]) if counts[f] else "." for f in families]
        status = "killed" if outcome.killed else "SURVIVED"
        lines.append(
            row(outcome.name, cells, status + (" +ERRORS" if outcome.errors else ""))
        )
    totals = Counter(family for outcome in outcomes for family in outcome.by_family())
    lines += [rule, row("mutants killed", [str(totals[f]) for f in families])]
    return "\n".join(lines)


def killer_details(outcome: Outcome) -> list[str]:
    grouped: dict[str, Counter] = defaultdict(Counter)
    for record in outcome.killers:
        test = record["nodeid"].split("::")[-1].partition("[")[0]
        grouped[record["family"]][test] += 1
    return [
        f"    {family}: "
        + ", ".join(
            f"{test} x{count}" if count > 1 else test
            for test, count in sorted(grouped[family].items())
        )
        for family in sorted(grouped)
    ]


def _expected_killers(spec: str) -> tuple[str, ...]:
    try:
        return tuple(getattr(contract.load(spec), "expected_killers", ()))
    except Exception:  # a mutant that does not load is reported by its run
        return ()


def _parse(
    argv: list[str],
) -> tuple[argparse.Namespace, list[str], argparse.ArgumentParser]:
    extra: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, extra = argv[:split], argv[split + 1 :]
    parser = argparse.ArgumentParser(
        prog="python -m backends.mutants.run",
        description="Run the property suite against every mutant backend.",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this mutant (repeatable; the 'mutant-' prefix may be left out)",
    )
    parser.add_argument(
        "--profile",
        default=os.environ.get("NNSPEC_MUTANTS_PROFILE", "ci"),
        help="Hypothesis profile (default: ci, or $NNSPEC_MUTANTS_PROFILE)",
    )
    parser.add_argument(
        "--max-examples",
        type=int,
        default=int(os.environ.get("NNSPEC_MUTANTS_MAX_EXAMPLES", "10")),
        help="cap on each test's examples, 0 for the profile's (default: 10, or "
        "$NNSPEC_MUTANTS_MAX_EXAMPLES)",
    )
    parser.add_argument(
        "--shrink",
        action="store_true",
        help="let Hypothesis shrink each failing example (slower; default: report "
        "the first failing example as found)",
    )
    parser.add_argument(
        "--workers",
        default="auto",
        help="pytest-xdist workers ('auto', a number, or 0 for no xdist)",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=BATCH,
        metavar="N",
        help=f"mutants per pytest session (default {BATCH}; 1: a session each)",
    )
    parser.add_argument(
        "--keep", metavar="DIR", default=None, help="keep the reports and logs in DIR"
    )
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    return parser.parse_args(argv), extra, parser


def main(argv: list[str] | None = None) -> int:
    options, extra, parser = _parse(list(sys.argv[1:] if argv is None else argv))
    if options.list:
        for name, spec in MUTANTS.items():
            print(f"{name:45} {spec}")
        return 0
    names = list(MUTANTS)
    if options.only:
        wanted = {n if n.startswith("mutant-") else f"mutant-{n}" for n in options.only}
        unknown = sorted(wanted - set(MUTANTS))
        if unknown:
            parser.error(f"unknown mutant(s): {', '.join(unknown)} (see --list)")
        names = [name for name in MUTANTS if name in wanted]
    if options.workers != "0" and importlib.util.find_spec("xdist") is None:
        parser.error("pytest-xdist is not installed: install it or pass --workers 0")

    modules = property_modules()
    families = [family_of_module(path) for path in modules]
    examples = options.max_examples or "the profile's"
    print(
        f"nnspec mutants: {len(names)} mutant(s) x {len(modules)} property modules "
        f"({', '.join(families)}); profile {options.profile}, {examples} examples "
        f"at most, workers {options.workers}, {options.batch} mutant(s) a session",
        flush=True,
    )
    started = time.monotonic()
    sessions: list[Session] = []
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="nnspec-mutants-") as temporary:
        directory = Path(options.keep or temporary)
        directory.mkdir(parents=True, exist_ok=True)
        size = max(1, options.batch)
        groups = [names[i : i + size] for i in range(0, len(names), size)]
        for group in groups:
            session = run_session(group, modules, options, extra, directory)
            sessions.append(session)
            for outcome in outcomes_of(session):
                outcomes.append(outcome)
                verdict = "killed" if outcome.killed else "SURVIVED"
                tally = ", ".join(f"{n} {k}" for k, n in sorted(outcome.counts.items()))
                print(f"  {outcome.name}: {verdict} [{tally}]", flush=True)
            print(
                f"  (session of {len(group)} took {session.seconds:.1f}s)", flush=True
            )
    total = time.monotonic() - started

    print("\nKill matrix (tests failing on each mutant, by property family):\n")
    print(kill_matrix(outcomes, families))
    print("\nKilled by:")
    for outcome in outcomes:
        print(f"  {outcome.name} ({outcome.spec})")
        print("\n".join(killer_details(outcome)) or "    nothing: SURVIVED")

    problems = 0
    print()
    for session in sessions:
        for error in session.errors:
            problems += 1
            print(f"FAIL: the session over {', '.join(session.names)}: {error}")
        if session.errors:
            tail = "\n".join(session.log.strip().splitlines()[-30:])
            print(f"  last lines of its output:\n{tail}")
    for outcome in outcomes:
        if not outcome.killed:
            problems += 1
            print(f"FAIL: {outcome.name} survived: no property failed on it")
        for error in outcome.errors:
            problems += 1
            print(f"FAIL: {outcome.name}: {error}")
        escaped = [
            family
            for family in _expected_killers(outcome.spec)
            if family in families and family not in outcome.by_family()
        ]
        if escaped:
            print(
                f"warning: {outcome.name} escaped {', '.join(escaped)}, which its "
                "docstring names as a killer"
            )
    if len(names) == len(MUTANTS):
        for family in families:
            if not any(family in outcome.by_family() for outcome in outcomes):
                print(
                    f"warning: property family {family!r} killed no mutant: its "
                    "docstring should say why, or its checks should be sharper"
                )
    killed = sum(outcome.killed for outcome in outcomes)
    print(
        f"\n{killed} of {len(outcomes)} mutants killed, {problems} problem(s), "
        f"{total:.0f}s in all"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
