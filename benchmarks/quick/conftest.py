"""The pytest-benchmark side-by-side: run only on request, print a table at the end.

These are timings, not tests: they run with ``--benchmark-only`` (what
``nox -s bench-quick`` passes), once each with an explicit
``--benchmark-disable`` (the smoke test), and are skipped otherwise, so a plain
``pytest benchmarks`` stays a test run. The ``side_by_side`` fixture records
each timing; the terminal summary prints them as one table per workload with
the spread of each timing (``NOISY`` above the threshold) and the time
relative to torch's and to torch's own best calls.

The machine's load is read when this file is loaded (before the first timing)
and again when pytest-benchmark writes its JSON, which gets an ``nnspec``
section: the load before and after, the noise threshold, and the compute
environment (BLAS library, kernel and threads, torch's threads, the
``OPENBLAS_*``/``OMP_*``/``MKL_*`` variables) that the performance report shows.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.common import NOISE_THRESHOLD, machine_load
from benchmarks.summary import Entry, render
from reports import environment

HERE = Path(__file__).resolve().parent
_ENTRIES: list[Entry] = []
_LOAD_BEFORE = machine_load()


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
        seconds, iqr = stats.stats.median, stats.stats.iqr
        throughput = amount / seconds / 1e9 if seconds > 0 else None
        benchmark.extra_info["throughput"] = throughput
        benchmark.extra_info["throughput_unit"] = unit
        _ENTRIES.append(
            Entry(workload, implementation, seconds, throughput, unit, iqr=iqr)
        )

    return record


def pytest_benchmark_update_json(config, benchmarks, output_json) -> None:
    """The load before and after the timings, and the compute environment."""
    output_json["nnspec"] = {
        "load_before": _LOAD_BEFORE,
        "load_after": machine_load(),
        "noise_threshold": NOISE_THRESHOLD,
        "compute": environment.compute(),
    }


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's own tables
def pytest_terminal_summary(terminalreporter) -> None:
    if _ENTRIES:
        terminalreporter.write_line("")
        for line in render(_ENTRIES, title="nnspec side by side").splitlines():
            terminalreporter.write_line(line)
        terminalreporter.write_line(
            f"machine load before: {_describe_load(_LOAD_BEFORE)}; "
            f"after: {_describe_load(machine_load())}"
        )


def _describe_load(load: dict) -> str:
    if not load:
        return "unknown"
    busy = " (busy: above the core count)" if load["load_1m"] > load["cores"] else ""
    return (
        f"{load['load_1m']} over 1 min, {load['load_5m']} over 5 min, "
        f"{load['cores']} cores{busy}"
    )
