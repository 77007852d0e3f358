"""Schema 2 results on the pages: declined, never run, blame, precision.

``data/results_schema2.json`` is the mixed run of ``results_mixed.json`` in
schema 2, stopped by SIGTERM: torch declines every example of one check
(``unsupported``) and some of another, three checks never ran (two for the
signal, one after a worker crash), a model check on numpy fails where numpy's
own relu fails (float32) and where it does not (float64), the suite's own
tests run beside the backends', and checks report their worst precision.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from reports.build import build, markdown_summary
from reports.model import (
    UNRECORDED_REASON,
    load_results,
    reason_anchor,
    results_from_document,
)
from reports.tests.conftest import DATA, Element, Site, find, parse

SCHEMA2 = DATA / "results_schema2.json"
SIGTERM_REASON = "not run: the run was interrupted (SIGTERM)"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    out = tmp_path_factory.mktemp("schema2-site")
    outcome = build(SCHEMA2, out, reference_modules=[], draw_equations=False)
    return Site(outcome, out)


def _descendants(element: Element):
    for child in element.children:
        yield child
        yield from _descendants(child)


def _cell(site: Site, op: str, backend: str, page: str = "index") -> Element:
    rows = find(site.elements(page), "tr", data_op=op)
    assert len(rows) == 1, f"expected one row for {op!r}, found {len(rows)}"
    cells = [c for c in rows[0].children if c.attributes.get("data-backend") == backend]
    assert len(cells) == 1, f"no cell for {op!r} on {backend!r}"
    return cells[0]


def _chip(site: Site, op: str, backend: str, family: str = "agreement") -> Element:
    chips = [
        c
        for c in _cell(site, op, backend).children
        if c.attributes.get("data-family") == family
    ]
    assert len(chips) == 1, f"no {family} chip for {op} on {backend}"
    return chips[0]


def _document(**changes: Any) -> dict[str, Any]:
    document = json.loads(SCHEMA2.read_text())
    document.update(changes)
    return document


def test_counts_by_outcome_add_up_to_the_checks_collected():
    results = load_results(SCHEMA2)
    assert sum(results.counts.values()) == results.collected == 26
    assert results.counts["not-run"] == 3
    assert results.counts["unsupported"] == 1


def test_unsupported_has_its_own_chip_count_and_reason(site: Site):
    chip = _chip(site, "avg_pool2d", "torch")
    assert chip.attributes["data-status"] == "passed", "a pass where it ran"
    assert "*" in chip.text, "marked partial: float64 was declined"
    title = chip.attributes["title"]
    assert "1 unsupported" in title and "ceil_mode=True is not supported" in title
    assert "32 examples declined by the backend" in title  # 25 + 7
    table = find(site.elements("index"), "table", id="unsupported-reasons")
    assert table, "the index lists what was declined"
    assert (
        "torch: backend torch declined every example of avg_pool2d: "
        "ceil_mode=True is not supported" in table[0].text
    )
    torch_row = find(site.elements("index"), "tr", data_backend="torch")[0]
    assert "unsupported 1" in torch_row.text, "the backend's tally counts it"
    chips = find(site.elements("index"), "span", **{"class": "chip s-unsupported"})
    assert chips, "the outcome has its own chip class (and colour)"


def test_a_cell_of_only_declined_checks_is_unsupported(tmp_path: Path):
    document = _document()
    for record in document["tests"]:
        if record["op"] == "avg_pool2d":
            record.update(outcome="unsupported", reason="unsupported: no pooling")
    results = tmp_path / "results.json"
    results.write_text(json.dumps(document))
    build(results, tmp_path / "site", reference_modules=[], draw_equations=False)
    chip = _chip(Site(None, tmp_path / "site"), "avg_pool2d", "torch")
    assert chip.attributes["data-status"] == "unsupported"
    assert chip.attributes["class"] == "chip s-unsupported"
    assert "\u2298" in chip.text


def test_interrupted_run_has_a_banner_with_what_never_ran(site: Site):
    banner = find(site.elements("index"), id="interrupted")
    assert banner, "an interrupted run says so at the top"
    assert banner[0].text.startswith(
        "run interrupted by SIGTERM: 3 of 26 checks never ran"
    )
    assert "run interrupted by SIGTERM: 3 of 26 checks never ran" in (
        site.outcome.verdict()
    )


def test_checks_that_never_ran_are_counted_and_grouped_by_reason(site: Site):
    index = site.elements("index")
    rows = {
        r.attributes["data-reason"]: r
        for r in find(index, "tr")
        if "data-reason" in r.attributes
    }
    assert set(rows) == {
        SIGTERM_REASON,
        "not run: worker gw1 crashed on "
        "properties/test_agreement.py::test_forward[relu-crashy-float32] "
        "(backend crashy); crashy's remaining checks were not run",
    }
    assert rows[SIGTERM_REASON].text.startswith("2")
    chip = _chip(site, "sigmoid", "numpy")
    assert chip.attributes["data-status"] == "not-run"
    assert chip.attributes["href"] == f"failures.html#{reason_anchor(SIGTERM_REASON)}"

    failures = site.elements("failures")
    group = find(failures, "section", id=reason_anchor(SIGTERM_REASON))
    assert group and group[0].attributes["data-count"] == "2"
    assert "test_forward[sigmoid-numpy-float32]" in group[0].text
    assert (
        "python -m pytest 'properties/test_agreement.py::test_forward"
        "[sigmoid-torch-float32]' --backend torch" in group[0].text
    ), "each check that never ran comes with the command that runs it"
    assert site.outcome.failed, "checks that never ran fail the run"


def test_headline_counts_backends_apart_from_the_suites_own_tests(site: Site):
    headline = find(site.elements("index"), id="headline")[0]
    parts = {
        e.attributes["data-part"]: e
        for e in _descendants(headline)
        if "data-part" in e.attributes
    }
    assert list(parts) == ["numpy", "torch", "cupy", "crashy", "the suite's own tests"]

    def tally(part: str) -> dict[str, str]:
        return {
            chip.attributes["data-outcome"]: chip.text.split()[0]
            for chip in parts[part].children
            if "data-outcome" in chip.attributes
        }

    assert tally("numpy") == {
        "failed": "3",
        "not-run": "1",
        "passed": "3",
        "skipped-not-implemented": "1",
        "skipped-other": "1",
    }
    assert tally("torch")["unsupported"] == "1"
    assert tally("the suite's own tests") == {"passed": "4"}
    summary = markdown_summary(site.outcome)
    assert "numpy: 3 failed, 1 not run, 3 passed" in summary
    assert "the suite's own tests: 4 passed" in summary


def test_schema_1_kinds_come_from_whether_a_backend_is_named():
    results = load_results(DATA / "results_mixed.json")
    kinds = Counter(check.kind for check in results.checks)
    assert kinds == {"backend": 14, "suite": 2}
    labels = [tally.label for tally in results.headline()]
    assert "the suite's own tests" in labels and "reference" not in labels


def test_a_file_with_fewer_records_than_collected_counts_the_rest_as_not_run(
    tmp_path: Path,
):
    document = _document(interrupted=None)
    del document["tests"][-4:]  # the file ends before their records
    results = results_from_document(document)
    assert results.collected == 26 and len(results.checks) == 22
    assert sum(results.counts.values()) == 26
    groups = {group.reason: group.count for group in results.not_run_groups()}
    assert groups[UNRECORDED_REASON] == 4
    path = tmp_path / "results.json"
    path.write_text(json.dumps(document))
    outcome = build(path, tmp_path / "site", reference_modules=[], draw_equations=False)
    assert outcome.failed
    failures = (tmp_path / "site" / "failures.html").read_text()
    section = find(parse(failures), "section", id=reason_anchor(UNRECORDED_REASON))
    assert section and section[0].attributes["data-count"] == "4"
    assert "22 records of 26 collected" in section[0].text


def test_schema_1_file_cut_short_keeps_its_missing_checks(mixed_site: Site):
    results = mixed_site.outcome.results
    assert results.collected == 17 and len(results.checks) == 16
    assert results.counts["not-run"] == 1
    assert "1 not run" in mixed_site.outcome.verdict()
    assert UNRECORDED_REASON in mixed_site.html("index")


def test_blame_points_a_failing_model_at_its_failing_op(site: Site):
    failures = site.elements("failures")
    sections = {
        s.attributes["id"]: s
        for s in find(failures, "section")
        if "data-outcome" in s.attributes
    }
    results = site.outcome.results
    by_nodeid = {check.nodeid: check for check in results.checks}
    mlp32 = by_nodeid["properties/test_models.py::test_mlp_training[numpy-float32]"]
    mlp64 = by_nodeid["properties/test_models.py::test_mlp_training[numpy-float64]"]
    relu32 = by_nodeid["properties/test_agreement.py::test_forward[relu-numpy-float32]"]
    note = [
        e
        for e in _descendants(sections[mlp32.anchor])
        if "blame-note" in e.attributes.get("class", "")
    ]
    assert note, "the model's failure says where to look first"
    assert "Look first at op relu: its own check fails" in note[0].text
    links = [e.attributes["href"] for e in _descendants(note[0]) if e.tag == "a"]
    assert links == [f"#{relu32.anchor}"]
    assert not [
        e
        for e in _descendants(sections[mlp64.anchor])
        if "blame-note" in e.attributes.get("class", "")
    ], "relu passes in float64: no blame for the float64 model"

    hints = [
        e
        for e in _cell(site, "models: mlp_training", "numpy").children
        if "data-blame" in e.attributes
    ]
    assert [h.attributes["data-blame"] for h in hints] == ["relu"]
    assert hints[0].attributes["href"] == f"failures.html#{relu32.anchor}"
    chip = _chip(site, "models: mlp_training", "numpy", family="models")
    assert "look first at op relu: its own check fails" in chip.attributes["title"]
    assert not [
        e
        for e in _cell(site, "models: mlp_training", "torch").children
        if "data-blame" in e.attributes
    ]
    assert "look first at op relu: its own check fails" in markdown_summary(
        site.outcome
    )


def test_precision_table_shows_the_worst_ratio_coloured_by_closeness_to_one(
    site: Site,
):
    def cell(op: str, backend: str, dtype: str) -> Element:
        rows = find(site.elements("precision"), "tr", data_op=op)
        assert rows, f"no precision row for {op}"
        found = [
            c
            for c in rows[0].children
            if c.attributes.get("data-backend") == backend
            and c.attributes.get("data-dtype") == dtype
        ]
        assert len(found) == 1, f"no precision cell {op} {backend} {dtype}"
        return found[0]

    over = cell("relu", "numpy", "float32")
    assert float(over.attributes["data-ratio"]) == 3.0e5
    assert "p-over" in over.attributes["class"], "over 1: failed"
    assert "in y" in over.attributes["title"]
    assert "p-edge" in cell("relu", "torch", "float32").attributes["class"]
    assert "p-far" in cell("relu", "numpy", "float64").attributes["class"]
    assert "p-near" in cell("conv2d", "numpy", "float32").attributes["class"]
    assert (
        "p-over" in cell("models: mlp_training", "numpy", "float64").attributes["class"]
    )
    assert "data-ratio" not in cell("conv2d", "torch", "float32").attributes
    assert 'href="precision.html"' in site.html("index")


def test_precision_headers_stand_over_their_backends_cells(site: Site):
    """Each backend's header spans exactly the columns of that backend's cells.

    The reference's column comes first (the matrix's order), not in the
    alphabetical order a template's ``groupby`` would impose.
    """
    elements = site.elements("precision")
    head = find(elements, "thead")[0]
    first, second = find(head.children, "tr")[:2]
    spans = [
        (cell.text.strip(), int(cell.attributes["colspan"]))
        for cell in first.children
        if "colspan" in cell.attributes
    ]
    expected = [name for name, span in spans for _ in range(span)]
    assert len(expected) == len(find(second.children, "th"))
    rows = [e for e in find(elements, "tr") if "data-op" in e.attributes]
    assert rows, "the precision table has rows"
    for row in rows:
        backends = [c.attributes.get("data-backend") for c in row.children][1:]
        assert backends == expected, (row.attributes["data-op"], backends, expected)


def test_precision_is_the_worst_over_an_ops_checks_and_nan_is_worst():
    def record(nodeid: str, family: str, ratio: float) -> dict[str, Any]:
        return {
            "nodeid": nodeid,
            "family": family,
            "op": "linear",
            "backend": "numpy",
            "dtype": "float32",
            "outcome": "passed",
            "precision": {"worst_ratio": ratio, "output": family},
        }

    results = results_from_document(
        {
            "schema": 2,
            "tests": [
                record("a::f[linear]", "agreement", 0.2),
                record("b::g[linear]", "gradients", 0.7),
                record("c::h[linear]", "stability", 0.1),
            ],
        }
    )
    table = results.precision_table()
    worst = table.get("linear", ("numpy", "float32"))
    assert worst.precision.worst_ratio == 0.7 and worst.checks == 3
    assert worst.check.nodeid == "b::g[linear]"
    with_nan = results_from_document(
        {
            "schema": 2,
            "tests": [
                record("a::f[linear]", "agreement", 0.2),
                record("b::g[linear]", "gradients", float("nan")),
            ],
        }
    )
    cell = with_nan.precision_table().get("linear", ("numpy", "float32"))
    assert cell.css == "p-over" and cell.precision.failed


def test_a_schema_1_file_has_no_precision_and_says_why(mixed_site: Site):
    status = find(mixed_site.elements("precision"), id="precision-status")
    assert status and "schema 1" in status[0].text
