"""Every benchmark runs once, for correctness, not timing (part of ``nox -s tests``).

* ``asv check`` imports the asv suite and checks its benchmarks' signatures.
* The parameter grids hold only combinations that compute something: every
  conv algorithm a backend offers is timed, on the layers it computes and no
  others, GPU backends at one thread count, and the GPU classes are hidden
  from asv only where no GPU backend can run.
* Every asv benchmark class, for every parameter combination, on shrunk
  workloads (``NNSPEC_BENCH_SMOKE=1``): ``setup``, the ``time_`` method once,
  the ``track_`` method once (its value must be a positive finite number),
  ``teardown``. A combination whose ``setup`` raises ``NotImplementedError``
  is what asv records as skipped; a backend that cannot run here is skipped
  with its reason, one that cannot even be loaded fails, and a combination of
  a built-in backend skipped as not applicable (``common.NotApplicable``)
  where the grid expected it to compute fails.
* The pytest-benchmark side-by-side, each benchmark called once.

Shrunk workloads keep each layer's kernel, stride and padding, so every code
path a timing takes is exercised in a few seconds.
"""

from __future__ import annotations

import inspect
import itertools
import math
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from backends import contract
from benchmarks import bench_conv, bench_optim, bench_transformer, common

ROOT = Path(__file__).resolve().parent.parent
ASV_MODULES: tuple[ModuleType, ...] = (bench_conv, bench_optim, bench_transformer)


def _benchmark_classes() -> list[type]:
    """The benchmark classes, as asv finds them (public names), hidden ones too."""
    classes = []
    for module in ASV_MODULES:
        for name, value in inspect.getmembers(module, inspect.isclass):
            if (
                not name.startswith("_")
                and value.__module__ == module.__name__
                and _methods(value, "time_")
            ):
                classes.append(value)
    return classes


def _methods(cls: type, prefix: str) -> list[str]:
    return sorted(name for name in dir(cls) if name.startswith(prefix))


BENCHMARK_CLASSES = _benchmark_classes()


@pytest.fixture(autouse=True)
def _smoke_sizes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(common.SMOKE_VARIABLE, "1")


def test_every_timing_has_a_throughput_companion() -> None:
    assert {cls.__module__ for cls in BENCHMARK_CLASSES} == {
        module.__name__ for module in ASV_MODULES
    }, "an asv benchmark module without a benchmark class"
    for cls in BENCHMARK_CLASSES:
        timings, tracks = _methods(cls, "time_"), _methods(cls, "track_")
        assert len(timings) == len(tracks) >= 1, (
            f"{cls.__qualname__}: time_ methods {timings} and track_ methods "
            f"{tracks} must pair up"
        )
        for name in tracks:
            unit = getattr(getattr(cls, name), "unit", None)
            assert unit in ("GFLOP/s", "GB/s"), (
                f"{cls.__qualname__}.{name}: unit {unit!r}, expected GFLOP/s or GB/s"
            )
        assert len(cls.params) == len(cls.param_names), (
            f"{cls.__qualname__}: {len(cls.params)} params for "
            f"{len(cls.param_names)} param_names {cls.param_names}"
        )


def test_throughput_accounting() -> None:
    """The work GFLOP/s and GB/s divide: 2 N K Ho Wo C kH kW flops, arrays moved."""
    layer = common.CONV_LAYERS["resnet 3x3/2 64->128 56px"]
    assert (layer.out_height, layer.out_width) == (28, 28), layer
    expected = 2 * 8 * 128 * 28 * 28 * 64 * 3 * 3  # 2·N·K·Ho·Wo·C·kH·kW
    assert layer.flops("forward") == expected, (layer, layer.flops("forward"))
    assert layer.flops("backward") == 2 * expected, (layer, layer.flops("backward"))
    for name, config in common.OPTIMIZERS.items():
        # param and grad, plus each state array, read; param and state written.
        states = {
            "sgd": 1,
            "adagrad": 1,
            "rmsprop": 1,
            "adadelta": 2,
            "adam": 2,
            "adamw": 2,
        }
        assert config.arrays_moved == 3 + 2 * states[config.name], (name, config)
    for name in common.CONV_LAYERS:
        shrunk = common.CONV_LAYERS[name].shrunk()
        assert min(shrunk.output_shape) >= 1, (name, shrunk)
    layer_norm = common.TRANSFORMER_WORKLOADS["layer_norm 32x128x768"]
    assert layer_norm.input_shapes == ((32, 128, 768), (768,), (768,)), layer_norm
    # forward: x read, y written; backward: dout and x read, dx written.
    assert layer_norm.bytes_moved("forward", 4) == 2 * 32 * 128 * 768 * 4
    assert layer_norm.bytes_moved("backward", 4) == 3 * 32 * 128 * 768 * 4
    for name, workload in common.TRANSFORMER_WORKLOADS.items():
        shrunk = workload.shrunk()
        assert len(shrunk.shape) == len(workload.shape), (name, shrunk)
        assert math.prod(shrunk.shape) <= 4096, (name, shrunk)


def _conv_classes() -> list[type]:
    return [cls for cls in BENCHMARK_CLASSES if cls.__module__ == bench_conv.__name__]


def _grid_pairs(cls: type) -> list[tuple[str, str]]:
    """The (implementation, layer) pairs of a conv class's grid."""
    implementations, layers = cls.params[0], cls.params[1]
    return [(i, layer) for i in implementations for layer in layers]


def test_conv_algorithms_cover_every_backend() -> None:
    """A conv algorithm a backend offers but the asv grids lack would go untimed."""
    in_grids = {
        implementation for cls in _conv_classes() for implementation in cls.params[0]
    }
    for spec in contract.selected():
        backend = contract.load(spec)
        expected = {spec} | {
            common.implementation_name(spec, algorithm)
            for algorithm in common.conv_algorithms(backend)
        }
        missing = expected - in_grids
        assert not missing, (
            f"backend {spec!r} offers conv implementations {sorted(missing)} that "
            f"no conv benchmark class times (their implementations: "
            f"{sorted(in_grids)})"
        )


def test_grid_backends_match_the_backends() -> None:
    """The grids' fixed description of each backend agrees with the loaded one."""
    for entry in common.GRID_BACKENDS:
        try:
            backend = contract.load(entry.spec)
        except contract.BackendError:
            continue  # a spec that cannot load: its benchmarks skip, saying why
        described = (entry.device, entry.conv_algorithms)
        actual = (backend.device, common.conv_algorithms(backend))
        assert described == actual, (
            f"backend {entry.spec!r}: the grids take (device, conv algorithms) "
            f"{described}, the backend has {actual} (benchmarks/common.py "
            "ARRAY_BACKENDS, GPU_BACKENDS)"
        )
        if contract.unavailable_reason(backend) is None:
            assert entry.may_run, (
                f"backend {entry.spec!r} runs here but the grids say it cannot "
                "(benchmarks.common._builtin_backend)"
            )
            if entry.device == "gpu" and entry.spec in contract.selected():
                assert common.GPU_MAY_RUN, (
                    f"GPU backend {entry.spec!r} runs here, yet the GPU classes "
                    "are hidden from asv"
                )


def test_grids_hold_only_combinations_that_compute() -> None:
    """No algorithm on a layer it refuses; GPU classes at one thread count."""
    for cls in _conv_classes():
        pairs = _grid_pairs(cls)
        refused = [
            (i, layer)
            for i, layer in pairs
            if not common.conv_applies(i, common.CONV_LAYERS[layer])
        ]
        implementations, layers = cls.params[0], cls.params[1]
        for implementation in implementations:
            assert any(
                common.conv_applies(implementation, common.CONV_LAYERS[layer])
                for layer in layers
            ), f"{cls.__name__}: {implementation} computes none of {layers}"
        for layer in layers:
            assert any(
                common.conv_applies(i, common.CONV_LAYERS[layer])
                for i in implementations
            ), f"{cls.__name__}: none of {implementations} computes {layer}"
        if set(layers) == set(common.CONV_LAYERS):
            assert not refused, (
                f"{cls.__name__} times every layer but holds pairs that compute "
                f"nothing: {refused}"
            )
        # Skips cost an interpreter start each under asv: a few at most.
        assert len(refused) * 4 <= len(pairs), (
            f"{cls.__name__}: {len(refused)} of {len(pairs)} (implementation, "
            f"layer) pairs compute nothing: {refused}"
        )
    for cls in BENCHMARK_CLASSES:
        backend_names = [common.split_implementation(v)[0] for v in cls.params[0]]
        devices = {
            entry.device
            for entry in common.GRID_BACKENDS
            if entry.spec in backend_names
        }
        assert len(devices) == 1, (cls.__name__, backend_names, devices)
        threads = cls.params[cls.param_names.index("threads")]
        assert tuple(threads) == common.thread_counts(devices.pop()), (
            cls.__name__,
            threads,
        )


def test_gpu_classes_hidden_from_asv_only_without_a_gpu() -> None:
    for cls in BENCHMARK_CLASSES:
        gpu = cls.__name__.endswith(("GPU", "GPUSpecialised"))
        for name in _methods(cls, "time_") + _methods(cls, "track_"):
            hidden = getattr(getattr(cls, name), "skip_benchmark", False)
            assert hidden == (gpu and not common.GPU_MAY_RUN), (
                f"{cls.__qualname__}.{name}: hidden from asv {hidden}, "
                f"GPU class {gpu}, a GPU backend may run here "
                f"{common.GPU_MAY_RUN}"
            )


def test_asv_check() -> None:
    """``asv check`` in this interpreter: the suite imports and the signatures fit."""
    command = [
        sys.executable,
        "-m",
        "asv",
        "check",
        "--config",
        str(ROOT / "asv.conf.json"),
        "--environment",
        f"existing:{sys.executable}",
    ]
    completed = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0 and "No problems found" in output, (
        f"`{' '.join(command)}` exited {completed.returncode} (the asv suite fails "
        f"to import or has a bad signature; asv is in the `bench` extra):\n{output}"
    )


def _run_once(cls: type, params: tuple[Any, ...]) -> NotImplementedError | None:
    """setup, each time_ and track_ once, teardown; the skip if setup skips."""
    instance = cls()
    try:
        try:
            instance.setup(*params)
        except NotImplementedError as skip:
            return skip
        for name in _methods(cls, "time_"):
            getattr(instance, name)(*params)
        for name in _methods(cls, "track_"):
            value = getattr(instance, name)(*params)
            unit = getattr(getattr(cls, name), "unit", "")
            described = dict(zip(cls.param_names, params, strict=True))
            assert isinstance(value, float) and math.isfinite(value) and value > 0, (
                f"{cls.__qualname__}.{name}{described}: {value!r} {unit}, "
                "expected a positive finite float"
            )
    finally:
        instance.teardown(*params)
    return None


def _timed_backends(cls: type) -> list[str]:
    """The backends in a class's first parameter (backend or "backend[algorithm]")."""
    return list(dict.fromkeys(common.split_implementation(v)[0] for v in cls.params[0]))


#: (class, backend spec) for every selected backend a class times.
CLASS_BACKENDS = [
    pytest.param(cls, spec, id=f"{cls.__qualname__}-{spec}")
    for cls in BENCHMARK_CLASSES
    for spec in _timed_backends(cls)
    if spec in contract.selected()
]


def test_every_selected_backend_is_timed() -> None:
    timed = {spec for cls in BENCHMARK_CLASSES for spec in _timed_backends(cls)}
    missing = [spec for spec in contract.selected() if spec not in timed]
    assert not missing, f"selected backends in no benchmark class: {missing}"


@pytest.mark.parametrize(("cls", "spec"), CLASS_BACKENDS)
def test_every_benchmark_runs_once(cls: type, spec: str) -> None:
    backend = contract.load(spec)  # a spec that cannot load fails here
    reason = contract.unavailable_reason(backend)
    if reason is not None:
        pytest.skip(f"backend {spec!r} unavailable: {reason}")

    grid = [list(values) for values in cls.params]
    grid[0] = [v for v in grid[0] if common.split_implementation(v)[0] == spec]
    ran, skipped, failures = 0, {}, []
    for params in itertools.product(*grid):
        described = dict(zip(cls.param_names, params, strict=True))
        try:
            skip = _run_once(cls, params)
        except Exception as error:  # collect them all, report them together
            failures.append(f"{described}: {type(error).__name__}: {error}")
            continue
        if skip is None:
            ran += 1
            continue
        expected = "layer" not in described or not common.conv_applies(
            params[0], common.CONV_LAYERS[described["layer"]]
        )
        if (
            isinstance(skip, common.NotApplicable)
            and spec in contract.BUILTIN
            and not expected
        ):
            failures.append(
                f"{described}: in the grid but not applicable: {skip} "
                "(benchmarks.common.conv_grid)"
            )
            continue
        skipped.setdefault(str(skip), []).append(described)

    assert not failures, (
        f"{cls.__qualname__} on {spec!r}: {len(failures)} parameter combinations "
        "fail:\n" + "\n".join(failures[:20])
    )
    if ran == 0:
        pytest.skip(
            f"{cls.__qualname__} on {spec!r}: every combination skipped: "
            + "; ".join(sorted(skipped))
        )


def test_quick_side_by_side_runs_once() -> None:
    """The pytest-benchmark suite, each benchmark called once (no timing)."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(ROOT / "benchmarks" / "quick"),
        "--benchmark-disable",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:xdist",
        "-q",
    ]
    # A fresh pytest, not an xdist worker of this one.
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST_XDIST", "PYTEST_CURRENT_TEST"))
    }
    environment[common.SMOKE_VARIABLE] = "1"
    completed = subprocess.run(
        command,
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, (
        f"`{' '.join(command)}` exited {completed.returncode}:\n"
        f"{completed.stdout[-6000:]}\n{completed.stderr[-3000:]}"
    )


# --------------------------------------------------------------------------- #
# Noise, anchors and the regression proof's pieces (no timing asserted)
# --------------------------------------------------------------------------- #


def test_slowdown_parses_and_matches() -> None:
    slowdown = common.Slowdown.parse("conv2d@numpy[im2col]:1.3, adam:1.5")
    assert slowdown.factor("conv2d", "numpy[im2col]") == 1.3
    assert slowdown.factor("conv2d", "numpy") == 1.0
    assert slowdown.factor("adam", "torch[fused]") == 1.5
    assert slowdown.factor("sgd-momentum", "numpy") == 1.0
    for bad in ("conv2d", "conv2d:fast", "conv2d:0.5", ":1.3"):
        with pytest.raises(ValueError, match=common.SLOWDOWN_VARIABLE):
            common.Slowdown.parse(bad)


def test_slowdown_off_leaves_the_call_itself() -> None:
    """Unset, nothing wraps the timed call: the switch costs nothing."""

    def call() -> None:
        return None

    assert common.Slowdown.parse("").wrap(call, "conv2d", "numpy") is call
    assert common.Slowdown.parse("adam:1.3").wrap(call, "conv2d", "numpy") is call


def test_slowed_call_waits_its_factor(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a clock that the call itself advances by 10, the wait adds 3."""
    clock = [0.0]

    def perf_counter() -> float:
        clock[0] += 0.001  # every reading costs a little, like a real clock
        return clock[0]

    def call(value: int) -> int:
        clock[0] += 10.0
        return value

    monkeypatch.setattr(common.time, "perf_counter", perf_counter)
    wrapped = common.Slowdown.parse("adam:1.3").wrap(call, "adam", "numpy")
    assert wrapped(7) == 7
    assert 13.0 <= clock[0] < 13.1, clock[0]


def test_slowdown_reaches_the_benchmarked_calls(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(common.SLOWDOWN_VARIABLE, "conv2d@numpy:1.3,adam@numpy:1.3")
    conv = bench_conv.Conv2d()
    params = ("numpy", "lenet C3 6->16 14px", "forward", "float32", 1)
    conv.setup(*params)
    try:
        assert conv.call.__closure__ is not None
        slowed = [
            cell.cell_contents
            for cell in conv.call.__closure__
            if callable(cell.cell_contents)
        ]
        assert any(getattr(f, "func", None) is common.slowed_call for f in slowed)
    finally:
        conv.teardown(*params)
    step = bench_optim.OptimizerStep()
    params = ("numpy", "adam", "1M", 1)
    step.setup(*params)
    try:
        assert step.step_function.func is common.slowed_call
    finally:
        step.teardown(*params)


def test_noise_verdict() -> None:
    assert common.is_noisy(1.0, 0.2) and not common.is_noisy(1.0, 0.05)
    assert not common.is_noisy(None, 0.2) and not common.is_noisy(1.0, None)
    from benchmarks.summary import Entry, render

    table = render(
        [
            Entry("w", "torch", 1.0, iqr=0.01),
            Entry("w", "torch[aten]", 0.8, iqr=0.01),
            Entry("w", "numpy", 2.0, iqr=1.0),
        ],
        title="t",
    )
    numpy_line = next(line for line in table.splitlines() if " numpy " in line)
    assert "NOISY" in numpy_line and "2.00x?" in numpy_line and "2.50x?" in numpy_line
    assert "÷ torch[aten]" in table and "aten.convolution_backward" in table
    assert "WARNING: 1 noisy" in table


_LENET = "'lenet C3 6->16 14px', 'forward', 'float32', 1"
#: ``asv compare``'s table as asv 0.6 prints it (one row made significant).
ASV_COMPARE_SAMPLE = "\n".join(
    [
        "All benchmarks:",
        "",
        "| Change | Before [a0cc06cb] <main~2> | After [7e5374df] <main> | Ratio "
        "| Benchmark (Parameter) |",
        "|--------|------|------|-------|------|",
        "|   | 1.05±0.01ms | 1.06±0.01ms | 1.01  "
        f"| bench_conv.Conv2d.time_conv2d('numpy', {_LENET}) |",
        "| + | 1.18±0.01ms | 1.54±0.02ms | 1.30  "
        f"| bench_conv.Conv2d.time_conv2d('numpy[im2col]', {_LENET}) |",
        "|   | 3.28±0.2ms  | 4.27±1ms    | ~1.30 "
        "| bench_optim.OptimizerStep.time_step('numpy', 'adam', '1M', 1) |",
        "|   | n/a         | n/a         | n/a   "
        "| bench_optim.OptimizerStep.time_step('numpy', 'adam', '10M', 1) |",
    ]
)


def test_regression_proof_reads_asv_compare() -> None:
    from benchmarks import regression_proof as proof

    changes = proof.parse_compare(ASV_COMPARE_SAMPLE)
    assert [c.mark for c in changes] == ["", "+", ""], changes
    problems = proof.verdict(changes, [])
    assert len(problems) == 1 and "'adam'" in problems[0], problems
    assert "not significant" in problems[0]
    flagged = [proof.Change("+", name, "1.30") for name in proof.SLOWED]
    assert proof.verdict(flagged, changes[:1]) == []
    assert proof.verdict(flagged, changes[1:2]), "a no-op flagged must fail the proof"
    extra = [*flagged, proof.Change("+", changes[0].name, "1.25")]
    assert proof.verdict(extra, []), "an unslowed benchmark flagged must fail it"


def test_regression_proof_selection_names_the_slowed_benchmarks() -> None:
    """Every slowed benchmark is selected, and the slowdown slows exactly them."""
    import re

    from benchmarks import regression_proof as proof

    slowdown = common.Slowdown.parse(proof.SLOWDOWN)
    for name in proof.SLOWED:
        assert any(re.search(p, name) for p in proof.SELECTION), name
        implementation = name.split("('", 1)[1].split("'", 1)[0]
        operation = "conv2d" if "time_conv2d" in name else name.split("', '")[1]
        assert slowdown.factor(operation, implementation) > proof.FACTOR, name
