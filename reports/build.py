"""Build the static site: matrix, failures, precision, coverage, performance.

Every page is a plain HTML file (CSS inline, figures and equations as SVG
files beside it), so the site works opened from disk, without a server, and
can be published as it is. Pages are jinja2 templates (``reports/templates``)
rendered with autoescaping on: every text that comes from a test, an error or
a backend is escaped. A part that cannot be built (a figure, a missing file, a
page whose data is broken) is replaced by a message saying why; the rest of the
site is still written. A results file that cannot be read still gives a site
(saying why it has no matrix), and :attr:`BuildOutcome.results_error` says
what is wrong with the file. A site that cannot be written at all (the output
is a file, a folder cannot be written, the disk is full) raises
:class:`SiteError`, whose message is one line naming the path.
"""

from __future__ import annotations

import errno
import shutil
import traceback
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import jinja2

from reports import coverage as coverage_module
from reports import environment, performance
from reports import limits as machine_limits
from reports.model import (
    LABELS,
    PRECEDENCE,
    PROBLEMS,
    REFERENCE_COLUMN,
    SYMBOLS,
    Results,
    ResultsError,
    css_class,
    empty_results,
    load_results,
)

PAGES: tuple[str, ...] = ("index", "failures", "precision", "coverage", "performance")


class SiteError(Exception):
    """The site cannot be written where asked; the message says what and where."""


@dataclass
class BuildOutcome:
    """Where the site is, and what a CI job should make of it."""

    index: Path
    results: Results
    new_regressions: list[dict[str, Any]]
    problems: list[str] = field(default_factory=list)
    #: Why the results file given could not be used (missing, cut short,
    #: not JSON, a schema this builder does not read), or ``None``.
    results_error: str | None = None

    @property
    def failed(self) -> bool:
        return self.results.failed or bool(self.new_regressions) or bool(self.problems)

    def verdict(self) -> str:
        counts = self.results.counts
        parts = []
        if self.results.document.get("missing"):
            parts.append(f"no results ({self.results.document['missing']})")
        words = {"failed": "failed", "timeout": "timed out", "error": "errors"}
        problems = [f"{counts[o]} {words[o]}" for o in words if counts[o]]
        if counts["not-run"] and not self.results.interruption:
            problems.append(f"{counts['not-run']} not run")
        if problems:
            parts.append(", ".join(problems))
        if self.results.interruption:
            parts.append(self.results.interruption)
        if self.results.collection_errors:
            parts.append(f"{len(self.results.collection_errors)} modules not collected")
        exitstatus = self.results.document.get("exitstatus")
        if exitstatus not in (0, None):
            parts.append(f"pytest exit status {exitstatus}")
        if self.new_regressions:
            parts.append(f"{len(self.new_regressions)} new asv regressions")
        parts.extend(self.problems)
        if parts:
            return "; ".join(parts)
        return self.results.headline_text() or f"{counts['passed']} checks passed"


def _environment(templates: jinja2.Environment) -> jinja2.Environment:
    templates.globals.update(
        labels=LABELS,
        symbols=SYMBOLS,
        outcomes=PRECEDENCE,
        problem_outcomes=PROBLEMS,
        css=css_class,
        seconds=performance.format_seconds,
        number=performance.format_number,
        ratio=performance.format_ratio,
        percent=performance.format_percent,
        verdict_label=coverage_module.verdict_label,
        verdict_css=coverage_module.verdict_css,
    )
    return templates


def template_environment() -> jinja2.Environment:
    """jinja2 with autoescaping on for every template (they are all HTML)."""
    return _environment(
        jinja2.Environment(
            loader=jinja2.PackageLoader("reports", "templates"),
            autoescape=True,
            extensions=["jinja2.ext.do"],
            undefined=jinja2.ChainableUndefined,
            trim_blocks=False,
        )
    )


def _error_page(page: str, error: BaseException, common: dict[str, Any]) -> str:
    """A page standing in for one that failed to render (everything escaped)."""
    details = "".join(traceback.format_exception(error))
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(page)} (not built)</title></head><body>"
        f"<h1>The {escape(page)} page could not be built</h1>"
        "<p><a href='index.html'>Back to the matrix</a></p>"
        f"<pre>{escape(details)}</pre>"
        f"<p>Built {escape(str(common.get('built')))}</p></body></html>"
    )


def write_text(path: Path, text: str) -> None:
    """Write one file of the site (the one place pages are written)."""
    path.write_text(text, encoding="utf-8")


def _site_problem(error: OSError, out: Path) -> str:
    """One line: why the site cannot be written into ``out``, naming the path."""
    for folder in (out, *out.parents):
        if folder.exists():
            if not folder.is_dir():
                return (
                    f"cannot write the site into {out}: "
                    f"{folder} is a file, not a folder"
                )
            break
    if error.errno == errno.ENOSPC:
        reason = "the disk is full (no space left on device)"
    else:
        reason = error.strerror or str(error) or type(error).__name__
    where = f" ({error.filename})" if error.filename else ""
    return f"cannot write the site into {out}: {reason}{where}"


def build(
    results_path: Path | str | None,
    out: Path | str,
    *,
    bench_path: Path | str | None = None,
    asv_html: Path | str | None = None,
    limits_path: Path | str | None = None,
    draw_equations: bool = True,
    reference_modules: list[str] | None = None,
) -> BuildOutcome:
    """Write the site into ``out``; return where its index is and how the run went.

    Raises :class:`SiteError` if the site cannot be written.
    """
    out = Path(out)
    try:
        return _build(
            results_path,
            out,
            bench_path=bench_path,
            asv_html=asv_html,
            limits_path=limits_path,
            draw_equations=draw_equations,
            reference_modules=reference_modules,
        )
    except OSError as error:
        raise SiteError(_site_problem(error, out)) from error


def _build(
    results_path: Path | str | None,
    out: Path,
    *,
    bench_path: Path | str | None,
    asv_html: Path | str | None,
    limits_path: Path | str | None,
    draw_equations: bool,
    reference_modules: list[str] | None,
) -> BuildOutcome:
    out.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []

    results_error = None
    try:
        if results_path is None:
            raise ResultsError("no results file given")
        results = load_results(results_path)
        env_source = None
    except ResultsError as error:
        results = empty_results(str(error))
        env_source = "machine details are the builder's (no results file)"
        results_error = str(error) if results_path is not None else None
    env = results.environment or environment.describe()
    if not results.environment and env_source is None:
        env_source = "machine details are the builder's (the results file has none)"

    limits = machine_limits.load(limits_path)
    devices = {column.id: column.device or "" for column in results.backends}
    bench = performance.load_benchmarks(bench_path, limits, devices)
    performance.draw_all(bench, out / "figures")
    asv = performance.publish_asv(Path(asv_html) if asv_html else None, out)
    new_regressions = [r for r in asv.regressions if r.get("new")]

    try:
        coverage = coverage_module.collect(
            results,
            out / "math" if draw_equations else None,
            modules=reference_modules,
        )
    except Exception as error:  # the reference package itself is broken
        problems.append(f"coverage: {type(error).__name__}: {error}")
        coverage = coverage_module.Coverage([], [], f"not built: {error}", [])

    cells = results.cells()
    components = {c.name for c in coverage.components}
    common: dict[str, Any] = {
        "env": env,
        "env_source": env_source,
        "built": environment.now(),
        "results": results,
        "counts": results.counts,
        "problem_count": len(results.problems) + len(results.collection_errors),
        "not_run_count": results.not_run,
        "asv_link": asv.link,
        "missing": results.document.get("missing"),
    }
    contexts: dict[str, dict[str, Any]] = {
        "index": {
            "title": "Verification matrix",
            "rows": results.rows,
            "cells": cells,
            "summary": results.family_summary(),
            "components": components,
            "property_rows": {c.row for c in results.checks if not c.op},
            "headline": results.headline(),
            "not_run_groups": results.not_run_groups(),
            "unsupported_groups": results.unsupported_groups(),
        },
        "failures": {
            "title": "Failures",
            "problems": sorted(
                results.problems,
                key=lambda c: (
                    PRECEDENCE.index(c.outcome) if c.outcome in PRECEDENCE else 99,
                    c.backend or "",
                    c.family,
                    c.row,
                    c.dtype or "",
                    c.nodeid,
                ),
            ),
            "not_run_groups": results.not_run_groups(),
        },
        "precision": {
            "title": "Precision",
            "table": results.precision_table(),
            "property_rows": {c.row for c in results.checks if not c.op},
            "reference_column": REFERENCE_COLUMN,
        },
        "coverage": {
            "title": "Coverage of the notes",
            "coverage": coverage,
            "contract_count": sum(c.in_contract for c in coverage.components),
            "verified_count": sum(bool(c.verdicts) for c in coverage.components),
        },
        "performance": {
            "title": "Performance",
            "bench": bench,
            "asv": asv,
            "limits": limits,
        },
    }
    templates = template_environment()
    for page in PAGES:
        context = {**common, **contexts[page], "page": page}
        try:
            html = templates.get_template(f"{page}.html").render(context)
        except Exception as error:
            problems.append(f"page {page}: {type(error).__name__}: {error}")
            html = _error_page(page, error, common)
        write_text(out / f"{page}.html", html)

    data = out / "data"
    data.mkdir(exist_ok=True)
    for source in (results_path, bench_path, limits_path):
        if source and Path(source).is_file():
            target = data / Path(source).name
            if Path(source).resolve() != target.resolve():
                shutil.copyfile(source, target)
    return BuildOutcome(
        out / "index.html", results, new_regressions, problems, results_error
    )


def markdown_summary(outcome: BuildOutcome, limit: int = 25) -> str:
    """A Markdown verdict for a CI run's summary page (``GITHUB_STEP_SUMMARY``)."""
    results = outcome.results
    mark = "\u274c" if outcome.failed else "\u2705"
    lines = [f"## {mark} nnspec report: {outcome.verdict()}", ""]
    headline = results.headline_text()
    if headline:
        lines += [_markdown_cell(headline), ""]
    not_run = results.not_run_groups()
    for group in not_run:
        lines.append(f"- {group.count} not run: {_markdown_cell(group.reason)}")
    if not_run:
        lines.append("")
    problems = results.problems
    if problems:
        lines += [
            "| outcome | op | backend | dtype | family | error |",
            "|---|---|---|---|---|---|",
        ]
        for check in problems[:limit]:
            error = check.error.splitlines()[0] if check.error else ""
            cells = [
                check.label,
                check.row,
                check.column,
                check.dtype or "",
                check.family,
            ]
            if check.blame_text:
                error = f"{check.blame_text}. {error}"
            cells.append(error[:200])
            lines.append("| " + " | ".join(_markdown_cell(c) for c in cells) + " |")
        if len(problems) > limit:
            lines.append(f"\n... and {len(problems) - limit} more: see the report.")
    for regression in outcome.new_regressions:
        lines.append(
            f"- asv regression: `{regression['benchmark']}` "
            f"{performance.format_ratio(regression.get('factor'))} slower"
        )
    return "\n".join(lines) + "\n"


def _markdown_cell(text: str) -> str:
    return escape(text, quote=False).replace("|", "\\|").replace("\n", " ")
