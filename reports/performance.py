"""The performance pages: pytest-benchmark's quick side-by-side, asv's history.

Reads pytest-benchmark's JSON (``--benchmark-json``): every benchmark's
``params`` (``backend`` among them), ``extra_info`` (``throughput`` and
``throughput_unit``, or ``flops``/``bytes`` per call) and ``stats`` (the
median is the figure used). A kernel is the benchmark function (``test_conv2d``
-> ``conv2d``), split by its ``direction`` parameter where it has one; its
cases are the other parameters (the layer shape, the optimizer and size).
``extra_info["kernel"]`` and ``extra_info["shape"]`` override both.

Every timing is read three ways: its spread (interquartile range over the
median; above :data:`benchmarks.common.NOISE_THRESHOLD` the timing is *noisy*
and marked so, as is every ratio made from it), its time over each anchor's
on the same case (the torch backend, and torch's own best calls where they
were timed: ``torch[aten]``'s conv backward, ``torch[fused]`` and
``torch[foreach]`` optimizer steps; below 1 is faster), and its throughput as
a fraction of the machine's measured limit (:mod:`reports.limits`). Each
kernel gets a table and a figure (SVG, with a PNG copy), drawn with
matplotlib's Agg backend; the figure's labels divide by the fairest anchor
timed (:data:`FAIR_ANCHORS`).

The JSON's ``nnspec`` section (written by ``benchmarks/quick/conftest.py``)
gives the machine's load before and after the run and the compute environment
(BLAS library, kernel and threads, torch's threads, the variables set).

asv's published site (``asv publish``) is copied beside the pages and linked
for history; its ``regressions.json`` is summarised here.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import anchors as benchmark_anchors
from benchmarks.common import NOISE_THRESHOLD
from benchmarks.summary import ANCHORS
from reports import limits as machine_limits

BASELINE = "torch"
#: The anchors the figures divide by, fairest first: torch's own best call
#: where it was timed, else the torch backend.
FAIR_ANCHORS: tuple[str, ...] = (*ANCHORS[1:], BASELINE)
#: What each anchor is, for the tables' notes.
ANCHOR_DESCRIPTIONS: dict[str, str] = {
    BASELINE: "the torch backend (backwards through autograd, which runs "
    "the forward again; optimizers on torch.optim's single-tensor path)",
    **{
        f"{BASELINE}[{name}]": text
        for name, text in benchmark_anchors.DESCRIPTIONS.items()
    },
}
KERNEL_PARAMETERS: tuple[str, ...] = ("direction",)
GPU_HINTS = ("cuda", "cupy", "gpu")


@dataclass
class Timing:
    """One benchmark: a kernel, a case, a backend, and what was measured."""

    kernel: str
    case: str
    backend: str
    seconds: float | None
    iqr: float | None
    rounds: int | None
    throughput: float | None
    unit: str
    device: str
    dtype: str
    name: str
    extra: dict[str, Any] = field(default_factory=dict)
    #: The time over the fairest anchor timed on this case (the figure's label).
    ratio_to_baseline: float | None = None
    #: Which anchor that is.
    baseline: str | None = None
    #: The time over each anchor timed on this case, in :data:`ANCHORS` order;
    #: each with whether either timing is noisy.
    ratios: dict[str, tuple[float, bool]] = field(default_factory=dict)
    fraction_of_limit: float | None = None
    limit: float | None = None
    noise_threshold: float = NOISE_THRESHOLD

    @property
    def spread(self) -> float | None:
        """The interquartile range over the median."""
        if self.seconds and self.iqr is not None:
            return self.iqr / self.seconds
        return None

    @property
    def noisy(self) -> bool:
        spread = self.spread
        return spread is not None and spread > self.noise_threshold


@dataclass
class Kernel:
    name: str
    timings: list[Timing]
    figure_svg: str | None = None
    figure_png: str | None = None
    figure_error: str | None = None

    @property
    def cases(self) -> list[str]:
        return list(dict.fromkeys(t.case for t in self.timings))

    @property
    def backends(self) -> list[str]:
        found = list(dict.fromkeys(t.backend for t in self.timings))
        return sorted(
            found,
            key=lambda b: (
                ANCHORS.index(b) if b in ANCHORS else len(ANCHORS),
                found.index(b),
            ),
        )

    @property
    def anchors(self) -> list[str]:
        """The anchors timed on at least one case, in :data:`ANCHORS` order."""
        found = {t.backend for t in self.timings}
        return [anchor for anchor in ANCHORS if anchor in found]

    @property
    def noisy(self) -> list[Timing]:
        return [t for t in self.timings if t.noisy]

    def timing(self, case: str, backend: str) -> Timing | None:
        for timing in self.timings:
            if timing.case == case and timing.backend == backend:
                return timing
        return None

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-") or "kernel"


@dataclass
class Benchmarks:
    kernels: list[Kernel]
    machine: dict[str, Any]
    commit: dict[str, Any]
    date: str | None
    source: str | None
    problem: str | None = None
    #: The ``nnspec`` section: load before and after, compute environment.
    run: dict[str, Any] = field(default_factory=dict)

    @property
    def noisy(self) -> list[Timing]:
        return [t for kernel in self.kernels for t in kernel.noisy]

    @property
    def noise_threshold(self) -> float:
        return _number(self.run.get("noise_threshold")) or NOISE_THRESHOLD

    @property
    def anchor_descriptions(self) -> dict[str, str]:
        return ANCHOR_DESCRIPTIONS

    @property
    def busy(self) -> bool:
        """Whether the load before or after exceeded the usable cores."""
        for key in ("load_before", "load_after"):
            load = self.run.get(key) or {}
            if load.get("cores") and load.get("load_1m", 0) > load["cores"]:
                return True
        return False


def device_of(backend: str, devices: dict[str, str]) -> str:
    if devices.get(backend):
        return devices[backend]
    return "gpu" if any(hint in backend.lower() for hint in GPU_HINTS) else "cpu"


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _case_of(entry: dict[str, Any], backend: str, params: dict[str, Any]) -> str:
    extra = entry.get("extra_info") or {}
    if extra.get("shape"):
        return str(extra["shape"])
    rest = {
        k: v for k, v in params.items() if k != "backend" and k not in KERNEL_PARAMETERS
    }
    param = entry.get("param")
    if isinstance(param, str) and param:
        tokens = [t for t in param.split("-") if t]
        text = "-".join(tokens)
        for candidate in (f"-{backend}", f"{backend}-"):
            if text.endswith(candidate) or text.startswith(candidate):
                text = text.removesuffix(candidate).removeprefix(candidate)
                break
        for key in KERNEL_PARAMETERS:
            if key in params:
                text = re.sub(rf"(^|\s){re.escape(str(params[key]))}(\s|$)", " ", text)
        text = text.strip(" -")
        if text:
            missing = [str(v) for v in rest.values() if str(v) not in text]
            return " ".join([text, *missing])
    return " ".join(str(v) for v in rest.values()) or "default"


def timing_from_entry(entry: dict[str, Any], devices: dict[str, str]) -> Timing | None:
    """A :class:`Timing` from one of pytest-benchmark's ``benchmarks`` entries."""
    if not isinstance(entry, dict):
        return None
    params = dict(entry.get("params") or {})
    extra = dict(entry.get("extra_info") or {})
    stats = dict(entry.get("stats") or {})
    name = str(entry.get("name") or entry.get("fullname") or "?")
    backend = str(
        extra.get("backend") or params.get("backend") or entry.get("group") or "?"
    )
    base = name.partition("[")[0].removeprefix("test_").removeprefix("bench_")
    kernel = str(extra.get("kernel") or base)
    if not extra.get("kernel"):
        for key in KERNEL_PARAMETERS:
            if key in params:
                kernel = f"{kernel} {params[key]}"
    seconds = _number(stats.get("median"))
    unit = str(extra.get("throughput_unit") or "")
    throughput = _number(extra.get("throughput"))
    if throughput is None and seconds:
        if _number(extra.get("flops")):
            throughput, unit = extra["flops"] / seconds / 1e9, "GFLOP/s"
        elif _number(extra.get("bytes")):
            throughput, unit = extra["bytes"] / seconds / 1e9, "GB/s"
    return Timing(
        kernel=kernel,
        case=_case_of(entry, backend, params),
        backend=backend,
        seconds=seconds,
        iqr=_number(stats.get("iqr")),
        rounds=int(stats["rounds"]) if isinstance(stats.get("rounds"), int) else None,
        throughput=throughput,
        unit=unit,
        device=str(extra.get("device") or device_of(backend, devices)),
        dtype=str(extra.get("dtype") or params.get("dtype") or "float32"),
        name=name,
        extra=extra,
    )


def annotate(kernels: list[Kernel], limits: dict[str, Any]) -> None:
    """Fill in each timing's ratios to the anchors and fraction of the limit."""
    for kernel in kernels:
        for timing in kernel.timings:
            for anchor in ANCHORS:
                reference = kernel.timing(timing.case, anchor)
                if reference and reference.seconds and timing.seconds:
                    timing.ratios[anchor] = (
                        timing.seconds / reference.seconds,
                        timing.noisy or reference.noisy,
                    )
            for anchor in FAIR_ANCHORS:
                if anchor in timing.ratios:
                    timing.ratio_to_baseline = timing.ratios[anchor][0]
                    timing.baseline = anchor
                    break
            limit = machine_limits.limit_for(
                limits, timing.device, timing.unit, timing.dtype
            )
            timing.limit = limit
            if limit and timing.throughput is not None:
                timing.fraction_of_limit = timing.throughput / limit


def load_benchmarks(
    path: Path | str | None,
    limits: dict[str, Any],
    devices: dict[str, str] | None = None,
) -> Benchmarks:
    """Read pytest-benchmark's JSON; a missing or broken file gives an explained gap."""
    if path is None:
        return Benchmarks([], {}, {}, None, None, problem="no benchmark results given")
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Benchmarks(
            [], {}, {}, None, str(path), problem=f"no benchmark file at {path}"
        )
    except (OSError, ValueError) as error:
        return Benchmarks(
            [], {}, {}, None, str(path), problem=f"cannot read {path}: {error}"
        )
    if not isinstance(document, dict):
        return Benchmarks([], {}, {}, None, str(path), problem=f"{path}: not an object")
    run = document.get("nnspec")
    run = run if isinstance(run, dict) else {}
    threshold = Benchmarks([], {}, {}, None, None, run=run).noise_threshold
    timings = [
        timing
        for entry in document.get("benchmarks") or []
        if (timing := timing_from_entry(entry, devices or {})) is not None
    ]
    for timing in timings:
        timing.noise_threshold = threshold
    kernels: dict[str, Kernel] = {}
    for timing in timings:
        kernels.setdefault(timing.kernel, Kernel(timing.kernel, [])).timings.append(
            timing
        )
    ordered = list(kernels.values())
    annotate(ordered, limits)
    return Benchmarks(
        kernels=ordered,
        machine=dict(document.get("machine_info") or {}),
        commit=dict(document.get("commit_info") or {}),
        date=document.get("datetime"),
        source=str(path),
        problem=None if ordered else f"{path} holds no benchmarks",
        run=run,
    )


# --------------------------------------------------------------------------- #
# Figures
# --------------------------------------------------------------------------- #

#: One colour per backend, stable across kernels (torch first).
PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3")


def _short_case(case: str, width: int = 22) -> str:
    return case if len(case) <= width else case[: width - 1] + "\u2026"


def _ratio_label(timing: Timing) -> str | None:
    """``time / baseline's``, with ``?`` where the baseline's timing is noisy."""
    if timing.ratio_to_baseline is None:
        return None
    doubt = "?" if timing.ratios[timing.baseline][1] else ""
    return f"{timing.ratio_to_baseline:.2f}\u00d7{doubt}"


def _grouped_bars(
    axis: Any,
    kernel: Kernel,
    width: float,
    *,
    height: Callable[[Timing], float],
    label: Callable[[Timing], str | None],
    legend: bool,
) -> None:
    """A group of bars per case, one per backend: ``height(timing)`` (0 where
    the case has no timing), ``label(timing)`` written above the bar where it
    has one; ``legend``: each backend's bars carry its name."""
    for index, backend in enumerate(kernel.backends):
        offsets = [p - 0.4 + width * (index + 0.5) for p in range(len(kernel.cases))]
        timings = [kernel.timing(case, backend) for case in kernel.cases]
        values = [height(timing) if timing else 0.0 for timing in timings]
        named = {"label": backend} if legend else {}
        color = PALETTE[index % len(PALETTE)]
        bars = axis.bar(offsets, values, width, color=color, **named)
        for bar, timing in zip(bars, timings, strict=True):
            text = label(timing) if timing else None
            if text is not None:
                axis.annotate(
                    text,
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )


def draw_kernel(kernel: Kernel, directory: Path) -> None:
    """Time and throughput bars per case and backend; ratios written on the bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = kernel.cases
    backends = kernel.backends
    has_throughput = any(t.throughput is not None for t in kernel.timings)
    rows = 2 if has_throughput else 1
    figure, axes = plt.subplots(
        rows,
        1,
        figsize=(
            max(6.0, 1.4 * len(cases) * max(1, len(backends)) / 2 + 3),
            3.2 * rows,
        ),
    )
    axes = list(axes) if rows > 1 else [axes]
    width = 0.8 / max(1, len(backends))
    positions = range(len(cases))

    time_axis = axes[0]
    _grouped_bars(
        time_axis,
        kernel,
        width,
        height=lambda t: t.seconds * 1e3 if t.seconds else 0.0,
        label=_ratio_label,
        legend=True,
    )
    time_axis.set_ylabel("median time (ms)")
    fair = next((a for a in FAIR_ANCHORS if a in kernel.anchors), BASELINE)
    time_axis.set_title(
        f"{kernel.name}: time (labels: time \u00f7 {fair}'s; ? from a noisy timing)",
        fontsize=10,
    )
    positive = [t.seconds for t in kernel.timings if t.seconds]
    if positive and max(positive) / min(positive) > 50:
        time_axis.set_yscale("log")
    time_axis.set_xticks(list(positions))
    time_axis.set_xticklabels([_short_case(c) for c in cases], fontsize=8)
    time_axis.legend(fontsize=8, ncols=min(4, len(backends)))

    if has_throughput:
        axis = axes[1]
        units = sorted({t.unit for t in kernel.timings if t.unit}) or [""]
        _grouped_bars(
            axis,
            kernel,
            width,
            height=lambda t: t.throughput or 0.0,
            label=lambda t: (
                f"{100 * t.fraction_of_limit:.0f}%"
                if t.fraction_of_limit is not None
                else None
            ),
            legend=False,
        )
        seen_limits: dict[str, float] = {}
        for timing in kernel.timings:
            if timing.limit:
                seen_limits.setdefault(timing.device, timing.limit)
        for device, limit in seen_limits.items():
            axis.axhline(limit, linestyle="--", color="0.3", linewidth=1)
            axis.annotate(
                f"{device} limit {limit:.3g} {units[0]}",
                (len(cases) - 0.5, limit),
                ha="right",
                va="bottom",
                fontsize=7,
                color="0.3",
            )
        axis.set_ylabel(" / ".join(units))
        axis.set_title(
            f"{kernel.name}: throughput (labels: % of the machine's measured limit)",
            fontsize=10,
        )
        axis.set_xticks(list(positions))
        axis.set_xticklabels([_short_case(c) for c in cases], fontsize=8)
    figure.tight_layout()
    directory.mkdir(parents=True, exist_ok=True)
    svg = directory / f"{kernel.slug}.svg"
    png = directory / f"{kernel.slug}.png"
    figure.savefig(svg)
    figure.savefig(png, dpi=110)
    plt.close(figure)
    kernel.figure_svg = f"{directory.name}/{svg.name}"
    kernel.figure_png = f"{directory.name}/{png.name}"


def draw_all(benchmarks: Benchmarks, directory: Path) -> None:
    """Every kernel's figure; a figure that cannot be drawn says why on its page."""
    for kernel in benchmarks.kernels:
        try:
            draw_kernel(kernel, directory)
        except Exception as error:
            kernel.figure_error = f"{type(error).__name__}: {error}"


# --------------------------------------------------------------------------- #
# asv
# --------------------------------------------------------------------------- #


@dataclass
class AsvSite:
    """asv's published site, copied beside the pages, and its regressions."""

    link: str | None
    regressions: list[dict[str, Any]]
    problem: str | None = None


def asv_regressions(html_dir: Path) -> list[dict[str, Any]]:
    """asv's detected regressions (``regressions.json`` of ``asv publish``).

    Each: the benchmark, its parameters, the value before and after the last
    step, the factor, the commit range where it happened, and whether that range
    ends at the newest commit asv has results for (``new``).
    """
    try:
        data = json.loads((html_dir / "regressions.json").read_text())
    except (OSError, ValueError):
        return []
    try:
        index = json.loads((html_dir / "index.json").read_text())
    except (OSError, ValueError):
        index = {}
    revisions = index.get("revision_to_hash") or {}
    newest = max((int(r) for r in revisions), default=None)
    found = []
    for entry in data.get("regressions") or []:
        if not isinstance(entry, list) or len(entry) < 7:
            continue
        name, _graph, params, _param_index, latest, best, jumps = entry[:7]
        if not jumps:
            continue
        before_rev, after_rev, before, after = jumps[-1][:4]
        factor = after / before if before else None
        found.append(
            {
                "benchmark": name,
                "params": params,
                "before": before,
                "after": after,
                "latest": latest,
                "best": best,
                "factor": factor,
                # asv leaves the first revision out (None) when the step is one commit.
                "commits": (
                    "" if before_rev is None else revisions.get(str(before_rev), ""),
                    revisions.get(str(after_rev), str(after_rev)),
                ),
                "new": newest is not None and after_rev == newest,
            }
        )
    return found


def publish_asv(html_dir: Path | None, out: Path) -> AsvSite:
    """Copy asv's site to ``out/asv`` and read its regressions."""
    if html_dir is None:
        return AsvSite(None, [], problem="no asv site given (run `nox -s nightly`)")
    if not (html_dir / "index.html").is_file():
        return AsvSite(
            None, [], problem=f"no asv site at {html_dir} (run `asv publish`)"
        )
    target = out / "asv"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(html_dir, target)
    return AsvSite("asv/index.html", asv_regressions(html_dir))


# --------------------------------------------------------------------------- #
# Formatting for the pages
# --------------------------------------------------------------------------- #


def format_seconds(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "\u2013"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("\u00b5s", 1e-6), ("ns", 1e-9)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def format_number(value: float | None, unit: str = "") -> str:
    if value is None or not math.isfinite(value):
        return "\u2013"
    return f"{value:.3g} {unit}".strip()


def format_ratio(value: float | None) -> str:
    return "\u2013" if value is None else f"{value:.2f}\u00d7"


def format_percent(value: float | None) -> str:
    return "\u2013" if value is None else f"{100 * value:.0f}%"
