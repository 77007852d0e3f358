"""The pytest-benchmark side-by-side: run only on request, print a table at the end.

These are timings, not tests: they run with ``--benchmark-only`` (what
``nox -s bench-quick`` passes), once each with an explicit
``--benchmark-disable`` (the smoke test), and are skipped otherwise, so a plain
``pytest benchmarks`` stays a test run. The ``side_by_side`` fixture records
each timing; the terminal summary prints them as one table per workload with
the time relative to torch's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.summary import Entry, render

HERE = Path(__file__).resolve().parent
_ENTRIES: list[Entry] = []


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    # --benchmark-disable given explicitly: each benchmark runs once, untimed
    # (the correctness check of benchmarks/test_benchmarks_smoke.py).
    if config.getoption("benchmark_only", default=False) or config.getoption(
        "benchmark_disable", default=False
    ):
        return
    skip = pytest.mark.skip(
        reason="timings: run with `nox -s bench-quick` "
        "(or `pytest benchmarks/quick --benchmark-only`)"
    )
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(skip)


@pytest.fixture
def side_by_side():
    """``record(benchmark, workload, implementation, amount, unit)`` after a timing."""

    def record(benchmark, workload: str, implementation: str, amount: float, unit: str):
        stats = getattr(benchmark, "stats", None)
        if stats is None:  # --benchmark-disable: called once, not timed
            return
        seconds = stats.stats.median
        throughput = amount / seconds / 1e9 if seconds > 0 else None
        benchmark.extra_info["throughput"] = throughput
        benchmark.extra_info["throughput_unit"] = unit
        _ENTRIES.append(Entry(workload, implementation, seconds, throughput, unit))

    return record


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's own tables
def pytest_terminal_summary(terminalreporter) -> None:
    if _ENTRIES:
        terminalreporter.write_line("")
        for line in render(_ENTRIES, title="nnspec side by side").splitlines():
            terminalreporter.write_line(line)
