"""Side-by-side tables a person reads: time, spread, throughput, time relative to torch.

``python -m benchmarks.summary`` prints the asv results of one commit (default:
the newest in ``.asv/results``; ``--machine`` and ``--commit`` choose), one
block per workload, one line per backend (and conv algorithm), with the median
time in its unit, its spread (interquartile range over the median; above
:data:`benchmarks.common.NOISE_THRESHOLD` the line is marked ``NOISY``), the
throughput (GFLOP/s or GB/s) and the time divided by each anchor's on the same
workload: the torch backend's, and torch's own best calls where they were
timed (``torch[aten]``, ``torch[fused]``, ``torch[foreach]``,
:mod:`benchmarks.anchors`). The pytest-benchmark side-by-side
(``benchmarks/quick``) prints the same table.

This module defines no ``time_``/``track_`` names (asv imports it while it
discovers the suite) and imports asv only when reading asv results.
"""

from __future__ import annotations

import argparse
import ast
import itertools
import json
import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from benchmarks import anchors
from benchmarks.common import (
    BASELINE_BACKEND,
    NOISE_THRESHOLD,
    describe_threads,
    is_noisy,
    spread,
)

#: The implementations every other one is divided by, in column order: the
#: torch backend, then torch's own best calls.
ANCHORS: tuple[str, ...] = (
    BASELINE_BACKEND,
    *(f"{BASELINE_BACKEND}[{anchor}]" for anchor in anchors.DESCRIPTIONS),
)


@dataclass(frozen=True)
class Entry:
    """One backend's figures on one workload."""

    workload: str
    implementation: str  # backend name, with the conv algorithm when one is chosen
    seconds: float | None  # None: skipped or failed
    throughput: float | None = None
    unit: str = ""
    iqr: float | None = None  # interquartile range of the samples, seconds

    @property
    def backend(self) -> str:
        return self.implementation.split("[", 1)[0]

    @property
    def spread(self) -> float | None:
        return spread(self.seconds, self.iqr)

    @property
    def noisy(self) -> bool:
        return is_noisy(self.seconds, self.iqr)


def format_seconds(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def format_throughput(value: float | None, unit: str) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.3g} {unit}"


def render(entries: Iterable[Entry], *, title: str) -> str:
    """The table: a block per workload, a line per implementation, ratios to anchors.

    A ratio made from a noisy timing (either side) ends in ``?``.
    """
    by_workload: dict[str, list[Entry]] = {}
    for entry in entries:
        by_workload.setdefault(entry.workload, []).append(entry)
    if not by_workload:
        return f"{title}\n(no results)"
    present = {entry.implementation for entry in itertools.chain(*by_workload.values())}
    anchor_columns = [anchor for anchor in ANCHORS if anchor in present] or [
        BASELINE_BACKEND
    ]

    header = (
        "workload",
        "backend",
        "median time",
        "spread",
        "",
        "throughput",
        *(f"÷ {anchor}" for anchor in anchor_columns),
    )
    rows: list[tuple[str, ...]] = []
    noisy = 0
    for workload, group in by_workload.items():
        measured = {e.implementation: e for e in group if e.seconds is not None}
        for position, entry in enumerate(sorted(group, key=_implementation_order)):
            noisy += entry.noisy
            ratios = []
            for anchor in anchor_columns:
                reference = measured.get(anchor)
                if entry.seconds is None or reference is None:
                    ratios.append("-")
                    continue
                doubt = "?" if entry.noisy or reference.noisy else ""
                ratios.append(f"{entry.seconds / reference.seconds:.2f}x{doubt}")
            rows.append(
                (
                    workload if position == 0 else "",
                    entry.implementation,
                    format_seconds(entry.seconds),
                    format_spread(entry.spread),
                    "NOISY" if entry.noisy else "",
                    format_throughput(entry.throughput, entry.unit),
                    *ratios,
                )
            )
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        left = [row[i].ljust(widths[i]) for i in (0, 1)]
        right = [row[i].rjust(widths[i]) for i in (2, 3)]
        flag = [row[4].ljust(widths[4])]
        rest = [row[i].rjust(widths[i]) for i in range(5, len(row))]
        return "  ".join(left + right + flag + rest).rstrip()

    notes = [
        "(÷ X: this line's time over X's on the same workload; below 1 is faster. "
        f"X is {_describe_anchors(anchor_columns)})",
        f"(spread: interquartile range over the median; above "
        f"{NOISE_THRESHOLD:.0%} the line is NOISY and a ratio made from it ends "
        "in ?)",
    ]
    if noisy:
        notes.append(
            f"WARNING: {noisy} noisy timing(s): the machine was busy or the call's "
            "time varies; do not trust those figures"
        )
    body = [line(header), line(tuple("-" * w for w in widths))]
    previous = None
    for row in rows:
        if row[0] and previous is not None:
            body.append("")
        body.append(line(row))
        previous = row
    return "\n".join([title, *notes, "", *body])


def _describe_anchors(columns: list[str]) -> str:
    described = []
    for column in columns:
        _, _, anchor = column.partition("[")
        what = anchors.DESCRIPTIONS.get(anchor.rstrip("]"))
        described.append(
            f"{column}: {what}" if what else f"{column}: the {column} backend"
        )
    return "; ".join(described)


def format_spread(value: float | None) -> str:
    return "-" if value is None else f"±{100 * value:.0f}%"


def _implementation_order(entry: Entry) -> tuple[int, str]:
    # The anchors first (torch, then its best calls), then the others by name.
    if entry.implementation in ANCHORS:
        return (ANCHORS.index(entry.implementation), "")
    return (len(ANCHORS), entry.implementation)


# --------------------------------------------------------------------------- #
# asv results
# --------------------------------------------------------------------------- #

#: What to call the workloads of each benchmark module ("": its ``workload``
#: parameter names the operation itself, "layer_norm 8x128x256").
OPERATIONS: dict[str, str] = {
    "bench_conv": "conv2d",
    "bench_optim": "optimizer step",
    "bench_transformer": "",
}


def asv_pairs(benchmarks: dict) -> dict[str, tuple[str | None, str]]:
    """time_ benchmark -> its track_ companion (or None) and the workload's name.

    Every class of the suite (``bench_conv.Conv2d``, ``Conv2dSpecialised``,
    the GPU classes where asv found them, ...) pairs its ``time_`` benchmark
    with its ``track_`` one; the classes of one module make one set of
    workloads, so that a backend's own choice, its forced algorithms and the
    other backends meet in one block.
    """
    pairs: dict[str, tuple[str | None, str]] = {}
    for key in sorted(benchmarks):
        owner, _, method = key.rpartition(".")
        module = owner.split(".", 1)[0]
        if not method.startswith("time_") or module not in OPERATIONS:
            continue
        tracks = [
            other
            for other in sorted(benchmarks)
            if other.rpartition(".")[0] == owner
            and other.rpartition(".")[2].startswith("track_")
        ]
        pairs[key] = (tracks[0] if tracks else None, OPERATIONS[module])
    return pairs


def _values(result, key: str) -> dict[tuple, tuple[float | None, float | None]]:
    """``{param values: (value, interquartile range)}`` of one asv benchmark."""
    try:
        params = result.get_result_params(key)
        values = result.get_result_value(key, params)
        stats = result.get_result_stats(key, params)
    except KeyError:
        return {}
    parsed = [[ast.literal_eval(p) for p in axis] for axis in params]
    combos = itertools.product(*parsed)
    out = {}
    for combo, value, stat in zip(combos, values, stats, strict=True):
        if value is None or not math.isfinite(value):
            out[combo] = (None, None)
            continue
        stat = stat or {}
        low, high = stat.get("q_25"), stat.get("q_75")
        iqr = high - low if low is not None and high is not None else None
        out[combo] = (value, iqr)
    return out


def asv_entries(
    results_dir: Path, machine: str | None, commit: str | None
) -> tuple[list[Entry], str, str]:
    """The entries of one asv result file: the newest for ``machine`` and ``commit``.

    asv writes one file per machine, commit and environment, and merges later
    runs of the same ones into it; of several environments the newest wins.
    """
    from asv import results as asv_results

    catalog = results_dir / "benchmarks.json"
    if not catalog.is_file():
        raise SystemExit(f"no asv results in {results_dir}: run `nox -s bench` first")
    benchmarks = json.loads(catalog.read_text())
    files = [
        path
        for path in results_dir.glob("*/*.json")
        if path.name != "machine.json" and (path.parent / "machine.json").is_file()
    ]
    if machine is not None:
        files = [path for path in files if path.parent.name == machine]
    if commit is not None:
        files = [path for path in files if path.name.split("-", 1)[0] == commit[:8]]
    if not files:
        raise SystemExit(
            f"no asv results in {results_dir} for machine {machine or 'any'}, "
            f"commit {commit or 'any'}"
        )
    path = max(files, key=lambda path: path.stat().st_mtime)
    machine, commit = path.parent.name, path.name.split("-", 1)[0]

    entries: list[Entry] = []
    result = asv_results.Results.load(str(path), machine_name=machine)
    for time_key, (track_key, operation) in asv_pairs(benchmarks).items():
        names = benchmarks[time_key]["param_names"]
        unit = benchmarks.get(track_key, {}).get("unit", "") if track_key else ""
        times = _values(result, time_key)
        tracks = _values(result, track_key) if track_key else {}
        for combo, (seconds, iqr) in times.items():
            described = dict(zip(names, combo, strict=True))
            throughput = tracks.get(combo, (None, None))[0]
            if seconds is None and throughput is None:
                continue  # skipped here (unavailable, not offered)
            entries.append(_entry(operation, described, seconds, throughput, unit, iqr))
    return entries, machine, commit


def _entry(
    operation: str,
    described: dict,
    seconds: float | None,
    throughput: float | None,
    unit: str,
    iqr: float | None = None,
) -> Entry:
    if "implementation" in described:  # "numpy", "numpy[winograd]", "torch"
        implementation = str(described.pop("implementation"))
    else:  # a backend (the optimizers), or results from before the implementations
        backend = described.pop("backend")
        algorithm = described.pop("algorithm", "default")
        implementation = (
            backend if algorithm == "default" else f"{backend}[{algorithm}]"
        )
    threads = described.pop("threads", None)
    named = [operation] if operation else []
    workload = " ".join([*named, *(str(value) for value in described.values())])
    if threads is not None:
        workload += f", {describe_threads(threads)}"
    return Entry(workload, implementation, seconds, throughput, unit, iqr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path(".asv/results"))
    parser.add_argument("--machine", default=None, help="asv machine name")
    parser.add_argument("--commit", default=None, help="commit hash (or 8-char prefix)")
    args = parser.parse_args(argv)
    entries, machine, commit = asv_entries(args.results, args.machine, args.commit)
    print(
        render(entries, title=f"nnspec asv results: machine {machine}, commit {commit}")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
