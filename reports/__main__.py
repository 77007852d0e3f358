"""``python -m reports``: build the HTML report, or measure the machine's limits.

``python -m reports build --results R.json --bench B.json --asv-html DIR --out DIR``
writes the site and prints where its index is. With ``--check`` it then exits
with status 1 if a check failed, timed out, errored or never ran, pytest's exit
status was not 0, the results are missing, or asv found a regression at the
newest commit, so a CI job fails visibly, after the site is built.

It exits with status 2 and one line on stderr saying what and where, without
a traceback, when the results file given cannot be used (missing, cut short,
not JSON, a schema it does not read; the site is still built, saying so) or
the site cannot be written (the output is a file, a folder is not writable,
the disk is full).

``python -m reports probe --out limits.json`` measures the machine's GEMM and
copy throughput (see :mod:`reports.limits`) for ``build --limits``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m reports", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build", help="build the static HTML site")
    build.add_argument(
        "--results", type=Path, help="the suite's results (--nnspec-results)"
    )
    build.add_argument(
        "--bench", type=Path, help="pytest-benchmark JSON (--benchmark-json)"
    )
    build.add_argument(
        "--asv-html", type=Path, help="asv's published site (asv publish)"
    )
    build.add_argument(
        "--limits", type=Path, help="the machine's limits (python -m reports probe)"
    )
    build.add_argument(
        "--out", type=Path, required=True, help="folder to write the site into"
    )
    build.add_argument(
        "--no-equations",
        action="store_true",
        help="keep equations as TeX source instead of drawing them",
    )
    build.add_argument(
        "--check",
        action="store_true",
        help="exit 1 after building if anything failed or regressed",
    )

    probe = commands.add_parser(
        "probe", help="measure the machine's GEMM and copy limits"
    )
    probe.add_argument("--out", type=Path, required=True, help="JSON file to write")
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    if arguments.command == "probe":
        from reports import limits

        measured = limits.probe()
        arguments.out.parent.mkdir(parents=True, exist_ok=True)
        arguments.out.write_text(json.dumps(measured, indent=1))
        cpu = measured.get("cpu") or {}
        print(
            f"limits: CPU {cpu.get('gflops_float32', 0):.3g} GFLOP/s float32, "
            f"{cpu.get('gbps', 0):.3g} GB/s"
            + (" (and the GPU's)" if measured.get("gpu") else "")
            + f" -> {arguments.out}"
        )
        return 0

    from reports.build import SiteError, build, markdown_summary

    try:
        outcome = build(
            arguments.results,
            arguments.out,
            bench_path=arguments.bench,
            asv_html=arguments.asv_html,
            limits_path=arguments.limits,
            draw_equations=not arguments.no_equations,
        )
    except SiteError as error:
        print(f"report: error: {error}", file=sys.stderr)
        return 2
    index = outcome.index.resolve()
    summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_file:  # in GitHub Actions: the verdict on the run's page
        try:
            with open(summary_file, "a", encoding="utf-8") as summary:
                summary.write(markdown_summary(outcome))
        except OSError as error:
            print(
                f"report: cannot write the summary to {summary_file}: "
                f"{error.strerror or error}",
                file=sys.stderr,
            )
    print(f"report: {outcome.verdict()}")
    print(f"report written to {index}")
    print(f"open {index.as_uri()}")
    if outcome.results_error:
        print(f"report: error: {outcome.results_error}", file=sys.stderr)
        return 2
    for problem in outcome.problems:
        print(f"report: {problem}", file=sys.stderr)
    if arguments.check and outcome.failed:
        print(f"report: failing: {outcome.verdict()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
