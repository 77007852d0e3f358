"""``python -m reports build`` when it cannot do its job: one line, what and where.

A results file that is missing, cut short, not JSON or of a schema the
builder does not read, and a site that cannot be written (the output is a
file, a folder cannot be written, the disk is full) each end the command with
status 2 and one line on stderr naming the path, never a traceback. The tests
run as root, whom file permissions do not stop, so an unwritable folder and a
full disk are injected where the site is written (:func:`reports.build.write_text`).
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reports import build as build_module
from reports.__main__ import main
from reports.tests.conftest import DATA

ROOT = Path(__file__).resolve().parents[2]


def _run(
    capsys: pytest.CaptureFixture[str], results: Path, out: Path
) -> tuple[int, str]:
    status = main(
        ["build", f"--results={results}", f"--out={out}", "--no-equations", "--check"]
    )
    return status, capsys.readouterr().err


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {stderr!r}"
    assert "Traceback" not in stderr
    return lines[0]


def test_a_missing_results_file(capsys, tmp_path: Path):
    missing = tmp_path / "nowhere" / "results.json"
    status, stderr = _run(capsys, missing, tmp_path / "site")
    assert status == 2
    assert _one_line(stderr) == f"report: error: no results file at {missing}"
    assert "No results" in (tmp_path / "site" / "index.html").read_text(), (
        "the site is still built, saying why it has no matrix"
    )


@pytest.mark.parametrize(
    "cut",
    [
        pytest.param(lambda text: text.index('"nodeid"', 2000) + 4, id="in-a-string"),
        pytest.param(lambda text: text.index('"tests": [') + 10, id="after-a-bracket"),
        pytest.param(lambda text: text.index("}", 2000) + 1, id="after-a-record"),
        pytest.param(lambda text: 0, id="empty"),
    ],
)
def test_a_results_file_cut_short(capsys, tmp_path: Path, cut):
    results = tmp_path / "results.json"
    text = (DATA / "results_schema2.json").read_text()
    results.write_text(text[: cut(text)])
    status, stderr = _run(capsys, results, tmp_path / "site")
    assert status == 2
    line = _one_line(stderr)
    assert line.startswith(f"report: error: results file {results} is cut short")
    assert "line " in line and "column " in line


def test_a_results_file_that_is_not_json(capsys, tmp_path: Path):
    results = tmp_path / "results.json"
    results.write_text('{"schema": 2, "tests": [} trailing')
    status, stderr = _run(capsys, results, tmp_path / "site")
    assert status == 2
    line = _one_line(stderr)
    assert line.startswith(f"report: error: results file {results} is not valid JSON")
    assert "Expecting value at line 1 column 25" in line


@pytest.mark.parametrize("schema", [3, "2", None])
def test_a_schema_the_builder_does_not_read(capsys, tmp_path: Path, schema):
    document = json.loads((DATA / "results_schema2.json").read_text())
    document["schema"] = schema
    results = tmp_path / "results.json"
    results.write_text(json.dumps(document))
    status, stderr = _run(capsys, results, tmp_path / "site")
    assert status == 2
    line = _one_line(stderr)
    assert line.startswith(f"report: error: results file {results}: schema ")
    assert "is not one this builder reads (it reads schema 1 and 2)" in line


def test_a_file_where_the_output_folder_should_be(capsys, tmp_path: Path):
    out = tmp_path / "site"
    out.write_text("not a folder")
    status, stderr = _run(capsys, DATA / "results_schema2.json", out)
    assert status == 2
    assert _one_line(stderr) == (
        f"report: error: cannot write the site into {out}: "
        f"{out} is a file, not a folder"
    )


def test_an_output_folder_under_a_file(capsys, tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = blocker / "deeper" / "site"
    status, stderr = _run(capsys, DATA / "results_schema2.json", out)
    assert status == 2
    assert _one_line(stderr) == (
        f"report: error: cannot write the site into {out}: "
        f"{blocker} is a file, not a folder"
    )


@pytest.mark.parametrize(
    ("code", "said"),
    [
        (errno.EACCES, "Permission denied"),
        (errno.EROFS, "Read-only file system"),
        (errno.ENOSPC, "the disk is full (no space left on device)"),
    ],
)
def test_a_site_that_cannot_be_written(
    capsys, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, code: int, said: str
):
    def refuse(path: Path, text: str) -> None:
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(build_module, "write_text", refuse)
    out = tmp_path / "site"
    status, stderr = _run(capsys, DATA / "results_schema2.json", out)
    assert status == 2
    assert _one_line(stderr) == (
        f"report: error: cannot write the site into {out}: "
        f"{said} ({out / 'index.html'})"
    )


def test_the_command_itself_prints_one_line_and_no_traceback(tmp_path: Path):
    out = tmp_path / "site"
    out.write_text("")
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "reports",
            "build",
            f"--results={DATA / 'results_schema2.json'}",
            f"--out={out}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 2
    assert completed.stderr == (
        f"report: error: cannot write the site into {out}: "
        f"{out} is a file, not a folder\n"
    )
    assert completed.stdout == ""


def test_a_run_that_died_is_read_from_its_journal(capsys, tmp_path: Path):
    """No results file, only the journal of a run that died: nothing is lost.

    The check that finished keeps its outcome, the one running when the
    process died is an error, and the one never started is not-run; the site
    is built and ``--check`` fails.
    """
    from properties import results as plugin

    path = tmp_path / "results.json"
    names = [f"properties/test_x.py::test_{letter}" for letter in "abc"]
    finished = plugin.new_record(names[0], {})
    finished.update(outcome="passed", when="call")
    entries = [
        {"header": {"collected": names, "backends": []}},
        {"record": finished},
        {"start": names[1], "at": 0.0},
    ]
    plugin.journal_path(path).write_text(
        "".join(json.dumps(entry) + "\n" for entry in entries)
    )
    status, _ = _run(capsys, path, tmp_path / "site")
    assert status == 1
    document = json.loads(path.read_text())
    outcomes = {record["nodeid"]: record["outcome"] for record in document["tests"]}
    assert outcomes == dict(zip(names, ["passed", "error", "not-run"], strict=True))
    assert not plugin.journal_path(path).exists()
    assert (tmp_path / "site" / "index.html").is_file()
