"""The builder on fixed results: the matrix, the failures, coverage, performance.

``data/results_mixed.json`` holds a run with every outcome: passes, a failure
whose text is full of HTML (``<script>``, ``&``), skips of each kind, a check
stopped by its time limit, a worker that crashed, a backend that could not be
loaded, a module that could not be collected, and checks of the reference on
no backend. ``data/bench.json`` is a pytest-benchmark file, ``data/asv_html`` a
stand-in for asv's published site with one regression at its newest commit.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from reports.build import build, markdown_summary
from reports.tests.conftest import DATA, Site, find, parse

ROOT = Path(__file__).resolve().parents[2]
PAGES = ("index", "failures", "coverage", "performance")


def _cell_chips(site: Site, op: str, backend: str) -> list:
    rows = find(site.elements("index"), "tr", data_op=op)
    assert len(rows) == 1, f"expected one matrix row for op {op!r}, found {len(rows)}"
    cells = [c for c in rows[0].children if c.attributes.get("data-backend") == backend]
    assert len(cells) == 1, f"no cell for op {op!r} on backend {backend!r}"
    return [c for c in cells[0].children if "data-family" in c.attributes]


def _chip(site: Site, op: str, backend: str, family: str):
    chips = [
        c
        for c in _cell_chips(site, op, backend)
        if c.attributes["data-family"] == family
    ]
    assert len(chips) == 1, f"no {family} chip for {op} on {backend}"
    return chips[0]


def test_every_page_is_written_with_machine_versions_commit_and_date(mixed_site: Site):
    for page in PAGES:
        html = mixed_site.html(page)
        footers = find(parse(html), "footer")
        assert len(footers) == 1, f"{page}: expected one footer"
        text = footers[0].text
        for expected in (
            "Test CPU 9000 <fast> & cool",
            "8 logical cores",
            "numpy 2.4.6",
            "hypothesis 6.170.15",
            "0123456789",
            "2026-01-02T03:04:05",
        ):
            assert expected in text, f"{page}: footer lacks {expected!r}: {text!r}"
        assert "Test CPU 9000 &lt;fast&gt; &amp; cool" in html, (
            f"{page}: machine not escaped"
        )


@pytest.mark.parametrize(
    ("op", "backend", "family", "status"),
    [
        ("relu", "numpy", "agreement", "failed"),
        ("relu", "torch", "agreement", "passed"),
        ("relu", "cupy", "agreement", "skipped-unavailable"),
        ("relu", "crashy", "agreement", "error"),
        ("relu", "reference", "gradients", "passed"),
        ("conv2d", "numpy", "agreement", "passed"),
        ("conv2d", "torch", "agreement", "timeout"),
        ("dropout", "numpy", "agreement", "skipped-other"),
        ("variance: initializer_variance", "torch", "variance", "passed"),
    ],
)
def test_matrix_cell_has_the_verdict_of_its_checks(
    mixed_site: Site, op: str, backend: str, family: str, status: str
):
    chip = _chip(mixed_site, op, backend, family)
    assert chip.attributes["data-status"] == status, (
        f"{op} on {backend}, {family}: status {chip.attributes['data-status']!r}, "
        f"expected {status!r}"
    )


def test_matrix_counts_examples_and_marks_partial_cells(mixed_site: Site):
    torch_relu = _chip(mixed_site, "relu", "torch", "agreement")
    assert torch_relu.attributes["data-examples"] == "50"
    assert "50" in torch_relu.text
    numpy_conv = _chip(mixed_site, "conv2d", "numpy", "agreement")
    assert "*" in numpy_conv.text, (
        "a pass with a dtype not implemented is marked partial"
    )
    assert "1 not implemented" in numpy_conv.attributes["title"]


def test_matrix_columns_say_which_backends_are_unavailable_or_broken(mixed_site: Site):
    index = mixed_site.html("index")
    rows = {
        r.attributes["data-backend"]: r
        for r in find(parse(index), "tr")
        if "data-backend" in r.attributes
    }
    assert "CuPy is not installed" in rows["cupy"].text
    assert "unavailable" in rows["cupy"].text
    assert "cannot load backend 'crashy'" in rows["crashy"].text
    assert "&lt;cannot open&gt;" in index


def test_every_failure_links_to_its_diagnosis(mixed_site: Site):
    index = mixed_site.elements("index")
    failures = mixed_site.elements("failures")
    ids = {e.attributes["id"] for e in failures if "id" in e.attributes}
    links = [
        e.attributes["href"]
        for e in index
        if e.tag == "a" and e.attributes.get("href", "").startswith("failures.html#")
    ]
    assert links, "failing cells link to failures.html"
    for link in links:
        assert link.split("#", 1)[1] in ids, f"{link} has no target in failures.html"
    outcomes = sorted(
        s.attributes["data-outcome"]
        for s in find(failures, "section")
        if "data-outcome" in s.attributes
    )
    assert outcomes == ["error", "error", "failed", "timeout"], outcomes


def test_failure_shows_error_inputs_and_how_to_reproduce(mixed_site: Site):
    failures = mixed_site.elements("failures")
    section = next(
        s
        for s in find(failures, "section")
        if "test_forward[relu-numpy-float32]" in s.text
    )
    pres = {
        c.attributes.get("class"): c.text
        for c in _descendants(section)
        if c.tag == "pre"
    }
    assert pres["error"].startswith(
        "AssertionError: relu on numpy float32: output <mismatch>"
    )
    assert "Falsifying example" not in pres["error"]
    assert pres["inputs"].startswith("Falsifying example: test_forward(")
    assert "op=relu," in pres["inputs"] and pres["inputs"].rstrip().endswith(")")
    assert (
        "python -m pytest "
        "'properties/test_agreement.py::test_forward[relu-numpy-float32]'"
        in pres["reproduce"]
    )
    assert "@reproduce_failure('6.170.15', b'AXicY2BgAAAABAAB')" in pres["reproduce"]
    assert "examples run" in section.text and "12" in section.text


def _descendants(element):
    for child in element.children:
        yield child
        yield from _descendants(child)


def test_text_from_errors_is_escaped_everywhere(mixed_site: Site):
    for page in PAGES:
        html = mixed_site.html(page)
        assert "<script" not in html.lower(), f"{page}: a <script> got through"
        assert "<b>bold</b>" not in html, f"{page}: captured output not escaped"
    failures = mixed_site.html("failures")
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in failures
    assert "printed &lt;b&gt;bold&lt;/b&gt;" in failures
    assert "&lt;module &#39;x&#39;&gt; &amp; friends" in failures


def test_timeouts_and_crashes_are_diagnosed(mixed_site: Site):
    failures = mixed_site.html("failures")
    assert "Timeout (&gt;300s) from pytest-timeout" in failures
    assert "crashed while running" in failures


def test_verdict_fails_on_failures_collection_errors_and_new_regressions(
    mixed_site: Site,
):
    outcome = mixed_site.outcome
    assert outcome.failed
    verdict = outcome.verdict()
    for expected in ("1 failed", "1 timed out", "2 errors", "1 modules not collected"):
        assert expected in verdict, f"{expected!r} not in {verdict!r}"
    assert "pytest exit status 1" in verdict
    assert "1 new asv regressions" in verdict
    assert [r["benchmark"] for r in outcome.new_regressions] == [
        "bench_conv.Conv2d.time_conv2d"
    ]


def test_markdown_summary_lists_the_problems_escaped(mixed_site: Site):
    summary = markdown_summary(mixed_site.outcome)
    assert summary.startswith("## \u274c nnspec report")
    assert "| fail | relu | numpy | float32 | agreement |" in summary
    assert "&lt;mismatch&gt;" in summary
    assert "bench_conv.Conv2d.time_conv2d" in summary


def test_an_all_passing_run_passes(tmp_path: Path):
    outcome = build(
        DATA / "results_pass.json", tmp_path, reference_modules=[], draw_equations=False
    )
    assert not outcome.failed, outcome.verdict()
    banner = find(parse((tmp_path / "index.html").read_text()), id="status")
    assert banner and "ok" in banner[0].attributes["class"]
    assert "No failures" in (tmp_path / "failures.html").read_text()


@pytest.mark.parametrize("content", [None, "{not json", '{"tests": "nope"}', "[]"])
def test_a_missing_or_broken_results_file_still_builds_the_site(
    tmp_path: Path, content: str | None
):
    results = tmp_path / "results.json"
    if content is not None:
        results.write_text(content)
    out = tmp_path / "site"
    outcome = build(results, out, reference_modules=[], draw_equations=False)
    assert outcome.failed
    for page in PAGES:
        assert (out / f"{page}.html").is_file(), f"{page}.html not written"
    status = find(parse((out / "index.html").read_text()), id="status")
    assert status and "No results" in status[0].text


def test_records_with_missing_keys_and_unknown_outcomes_are_shown(tmp_path: Path):
    document = {
        "tests": [
            {"nodeid": "properties/test_odd.py::test_x[numpy]", "backend": "numpy"},
            {
                "nodeid": "properties/test_odd.py::test_y[numpy]",
                "backend": "numpy",
                "op": "relu",
                "outcome": "weird",
                "examples": "many",
            },
            "not a record",
        ]
    }
    results = tmp_path / "results.json"
    results.write_text(json.dumps(document))
    build(results, tmp_path / "site", reference_modules=[], draw_equations=False)
    elements = parse((tmp_path / "site" / "index.html").read_text())
    statuses = {
        c.attributes["data-status"] for c in elements if "data-status" in c.attributes
    }
    assert statuses == {"skipped-other", "weird"}


def test_performance_tables_ratios_limits_and_figures(mixed_site: Site):
    elements = mixed_site.elements("performance")
    tables = {
        t.attributes["data-kernel"]: t
        for t in find(elements, "table")
        if "data-kernel" in t.attributes
    }
    assert set(tables) == {"conv2d forward", "conv2d backward", "optimizer_step"}
    bench = json.loads((DATA / "bench.json").read_text())
    medians = {
        (
            b["params"]["backend"],
            b["name"].split("[")[0],
            b["params"].get("direction"),
        ): b
        for b in bench["benchmarks"]
    }
    numpy_entry = medians[("numpy", "test_conv2d", "forward")]
    torch_entry = medians[("torch", "test_conv2d", "forward")]
    ratio = numpy_entry["stats"]["median"] / torch_entry["stats"]["median"]
    share = numpy_entry["extra_info"]["throughput"] / 100.0  # limits.json: 100 GFLOP/s
    row = next(
        r
        for r in _descendants(tables["conv2d forward"])
        if r.tag == "tr" and r.attributes.get("data-backend") == "numpy"
    )
    header = next(r for r in _descendants(tables["conv2d forward"]) if r.tag == "tr")
    columns = [c.text for c in header.children if c.tag == "th"]
    cells = dict(
        zip(columns, [c.text for c in row.children if c.tag == "td"], strict=True)
    )
    assert cells["case"] == "lenet C1 1->6 32px"
    # A noisy timing (its IQR is half its median) is marked, and so is its ratio.
    spread = numpy_entry["stats"]["iqr"] / numpy_entry["stats"]["median"]
    assert spread > 0.1
    assert cells["spread"] == f"{100 * spread:.0f}% noisy", cells
    assert cells["\u00f7 torch"] == f"{ratio:.2f}\u00d7?", cells
    assert cells["% of limit"] == f"{100 * share:.0f}%", cells
    optimizer_row = next(
        r
        for r in _descendants(tables["optimizer_step"])
        if r.tag == "tr" and r.attributes.get("data-backend") == "numpy"
    )
    assert "GB/s" in optimizer_row.text
    assert "sgd-momentum" in optimizer_row.text
    images = [e.attributes["src"] for e in find(elements, "img")]
    assert len(images) == 3
    for source in images:
        assert (mixed_site.out / source).is_file(), f"figure {source} missing"
        assert (mixed_site.out / source).with_suffix(".png").is_file()


def test_asv_site_is_copied_linked_and_its_regressions_listed(mixed_site: Site):
    assert (mixed_site.out / "asv" / "index.html").is_file()
    for page in PAGES:
        assert 'href="asv/index.html"' in mixed_site.html(page)
    table = find(mixed_site.elements("performance"), "table", id="regressions")
    assert table and "bench_conv.Conv2d.time_conv2d" in table[0].text
    new = [e for e in _descendants(table[0]) if e.tag == "span" and e.text == "new"]
    assert len(new) == 1, "only the regression at the newest commit is new"


def test_performance_page_without_benchmarks_says_so(tmp_path: Path):
    build(
        DATA / "results_pass.json", tmp_path, reference_modules=[], draw_equations=False
    )
    page = (tmp_path / "performance.html").read_text()
    status = find(parse(page), id="bench-status")
    assert status and "No quick benchmarks" in status[0].text
    assert "no asv site given" in page


def test_coverage_renders_reference_docstrings_with_equations(mixed_site: Site):
    elements = mixed_site.elements("coverage")
    section = find(elements, "section", id="c-relu")
    assert section, "relu has a section"
    assert "Rectified linear unit" in section[0].text
    images = [e for e in _descendants(section[0]) if e.tag == "img"]
    assert images, "relu's equation is drawn"
    for image in images:
        assert (mixed_site.out / image.attributes["src"]).is_file()
    assert r"\max(0, x)" in images[0].attributes["alt"], (
        "the TeX is the image's alt text"
    )
    assert any(r"\partial" in image.attributes["alt"] for image in images[1:]), (
        "relu_backward's equation is drawn too"
    )
    row = find(elements, "tr", data_component="relu")[0]
    verdicts = [c.text for c in _descendants(row) if c.tag == "span"]
    assert verdicts[:5] == ["pass", "fail", "pass", "unavailable", "error"], verdicts


def test_coverage_links_each_cited_notes_to_its_source(mixed_site: Site):
    """The notes column links "notes 00N" to its entry of docs/bibliography.md."""
    elements = mixed_site.elements("coverage")
    row = find(elements, "tr", data_component="relu")[0]
    links = [e.attributes["href"] for e in _descendants(row) if e.tag == "a"]
    cited = [link for link in links if link.startswith("#notes-")]
    assert cited, f"relu cites the notes; its row links none: {links}"
    for link in cited:
        entry = find(elements, "section", id=link[1:])
        assert entry, f"{link} has no entry in the page's Sources"
        assert entry[0].text.strip(), f"{link}'s entry is empty"
    assert find(elements, "h2", id="sources"), "the page has its Sources section"


def test_command_line_builds_and_checks(tmp_path: Path):
    summary = tmp_path / "summary.md"
    environment = {**os.environ, "GITHUB_STEP_SUMMARY": str(summary)}

    def run(results: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "reports",
                "build",
                f"--results={DATA / results}",
                f"--out={tmp_path / results}",
                "--no-equations",
                "--check",
            ],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    failing = run("results_mixed.json")
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert re.search(r"report written to .*index\.html", failing.stdout)
    assert (tmp_path / "results_mixed.json" / "index.html").is_file()
    passing = run("results_pass.json")
    assert passing.returncode == 0, passing.stdout + passing.stderr
    text = summary.read_text()
    assert "\u274c nnspec report" in text and "\u2705 nnspec report" in text
