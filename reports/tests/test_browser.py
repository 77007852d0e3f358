"""End to end: run a small report and read it in a real headless Chromium.

The suite runs (two workers) on numpy, torch, cupy (unavailable without a GPU)
and a deliberately broken backend written here: its ``relu`` raises an error
full of HTML and its ``sigmoid`` never returns, so the report must show a
failure with its diagnosis and a check stopped by its time limit, and still be
built. Then ``python -m reports build`` makes the site, and Chromium loads the
pages from disk (``file://``, no server), dumps the DOM it rendered and takes
a screenshot of the matrix.

Chromium is Debian's ``chromium`` package (``.ci/run`` installs it); set
``NNSPEC_CHROMIUM`` to use another binary. Set ``NNSPEC_SCREENSHOT_DIR`` to
keep the screenshots.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reports.tests.conftest import DATA, Element, find, parse

ROOT = Path(__file__).resolve().parents[2]


def _chromium() -> str | None:
    for candidate in (
        os.environ.get("NNSPEC_CHROMIUM"),
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
        "/usr/bin/chromium",
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


CHROMIUM = _chromium()

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium: install Debian's `chromium` package (.ci/run does) "
    "or set NNSPEC_CHROMIUM",
)

BROKEN_BACKEND = '''
"""A backend for the end-to-end test: numpy's, with relu broken and sigmoid hung."""

import time

from backends import contract


class BrokenExample:
    name = "broken_example"

    def __init__(self):
        self._numpy = contract.load("numpy")
        self.dtypes = self._numpy.dtypes
        self.device = self._numpy.device

    def __getattr__(self, name):
        return getattr(self._numpy, name)

    def relu(self, x):
        raise ValueError("<b>relu</b> & friends: not today")

    def sigmoid(self, x):
        while True:
            time.sleep(0.05)


backend = BrokenExample()
'''

PROPERTY_MODULES = ("test_agreement.py", "test_gradients.py", "test_identities.py")


def _browse(url: str, profile: Path, *arguments: str) -> str:
    completed = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            *arguments,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small report, built the way `nox -s report` builds it."""
    work = tmp_path_factory.mktemp("browser-report")
    (work / "e2e_backends.py").write_text(BROKEN_BACKEND)
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(work), str(ROOT), os.environ.get("PYTHONPATH", "")]
        ),
    }
    environment.pop("PYTEST_ADDOPTS", None)
    modules = [
        f"properties/{name}"
        for name in PROPERTY_MODULES
        if (ROOT / "properties" / name).is_file()
    ] or ["properties"]
    results = work / "results.json"
    suite = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *modules,
            "-k",
            "relu or sigmoid",
            "--backend=numpy",
            "--backend=torch",
            "--backend=cupy",
            "--backend=e2e_backends:backend",
            "--hypothesis-profile=dev",
            "--timeout=3",
            "-n",
            "2",
            "-p",
            "no:cacheprovider",
            f"--nnspec-results={results}",
            "--nnspec-progress",
        ],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = suite.stdout[-5000:] + suite.stderr[-5000:]
    assert results.is_file(), output
    assert suite.returncode == 1, f"the broken backend fails the run:\n{output}"
    assert "nnspec: " in suite.stdout, "progress lines are printed"
    site = work / "site"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "reports",
            "build",
            f"--results={results}",
            f"--bench={DATA / 'bench.json'}",
            f"--limits={DATA / 'limits.json'}",
            f"--out={site}",
            "--check",
        ],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert build.returncode == 1, build.stdout + build.stderr
    assert f"report written to {site / 'index.html'}" in build.stdout
    return site


def _rendered(site: Path, page: str, tmp_path: Path) -> list[Element]:
    html = _browse((site / f"{page}.html").as_uri(), tmp_path / "profile", "--dump-dom")
    assert "</footer>" in html, f"{page}: Chromium rendered no footer"
    return parse(html)


def _chips(elements: list[Element], op: str, backend: str) -> dict[str, str]:
    rows = find(elements, "tr", data_op=op)
    assert rows, f"no matrix row for {op}"
    cells = [c for c in rows[0].children if c.attributes.get("data-backend") == backend]
    assert cells, f"no cell for {op} on {backend}"
    return {
        chip.attributes["data-family"]: chip.attributes["data-status"]
        for chip in cells[0].children
        if "data-family" in chip.attributes
    }


def test_matrix_renders_with_the_expected_cells(report: Path, tmp_path: Path):
    elements = _rendered(report, "index", tmp_path)
    relu_numpy = _chips(elements, "relu", "numpy")
    assert relu_numpy.get("agreement") == "passed", relu_numpy
    assert _chips(elements, "relu", "torch").get("agreement") == "passed"
    assert _chips(elements, "relu", "broken_example").get("agreement") == "failed"
    assert _chips(elements, "sigmoid", "broken_example").get("agreement") == "timeout"
    cupy = set(_chips(elements, "relu", "cupy").values())
    assert cupy <= {"skipped-unavailable", "passed"}, cupy
    footer = find(elements, "footer")[0].text
    assert "numpy" in footer and "Commit" in footer and "logical cores" in footer

    screenshots = Path(os.environ.get("NNSPEC_SCREENSHOT_DIR", tmp_path))
    screenshots.mkdir(parents=True, exist_ok=True)
    screenshot = screenshots / "report-matrix.png"
    _browse(
        (report / "index.html").as_uri(),
        tmp_path / "profile",
        f"--screenshot={screenshot}",
        "--window-size=1280,1100",
    )
    data = screenshot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 20_000, "a screenshot was taken"


def test_failure_links_to_an_escaped_diagnosis(report: Path, tmp_path: Path):
    index = _rendered(report, "index", tmp_path)
    rows = find(index, "tr", data_op="relu")
    links = [
        chip.attributes["href"]
        for cell in rows[0].children
        if cell.attributes.get("data-backend") == "broken_example"
        for chip in cell.children
        if chip.tag == "a"
    ]
    assert links and links[0].startswith("failures.html#"), links
    failures = _rendered(report, "failures", tmp_path)
    target = find(failures, "section", id=links[0].split("#", 1)[1])
    assert target, "the link lands on the failure's section"
    errors = [
        e
        for e in target[0].children
        if e.tag == "pre" and "error" in e.attributes.get("class", "")
    ]
    assert errors and "<b>relu</b> & friends: not today" in errors[0].text
    assert not errors[0].children, "the error's HTML is text, not markup"
    reproduce = [
        e for e in target[0].children if "reproduce" in e.attributes.get("class", "")
    ]
    assert "--backend=e2e_backends:backend" in reproduce[0].text
    timeouts = [
        s
        for s in find(failures, "section")
        if s.attributes.get("data-outcome") == "timeout"
    ]
    assert timeouts and "Timeout (>3s) from pytest-timeout" in timeouts[0].text


def test_performance_page_renders_tables_and_figures(report: Path, tmp_path: Path):
    elements = _rendered(report, "performance", tmp_path)
    kernels = {
        t.attributes["data-kernel"]
        for t in find(elements, "table")
        if "data-kernel" in t.attributes
    }
    assert {"conv2d forward", "conv2d backward"} <= kernels
    rows = [
        r
        for r in find(elements, "tr")
        if r.attributes.get("data-backend") in {"numpy", "torch"}
    ]
    assert len(rows) >= 4
    images = find(elements, "img")
    assert images and all((report / i.attributes["src"]).is_file() for i in images)
    assert find(elements, "table", id="limits"), "the machine's limits are shown"


def test_coverage_page_renders_the_reference(report: Path, tmp_path: Path):
    elements = _rendered(report, "coverage", tmp_path)
    assert find(elements, "section", id="c-relu")
    assert any(
        e.tag == "img" and e.attributes.get("src", "").startswith("math/")
        for e in elements
    ), "equations are drawn"
