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
from benchmarks import bench_conv, bench_optim, common

ROOT = Path(__file__).resolve().parent.parent
ASV_MODULES: tuple[ModuleType, ...] = (bench_conv, bench_optim)


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
    assert BENCHMARK_CLASSES, "no asv benchmark class found in bench_conv/bench_optim"
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
    """GFLOP/s and GB/s divide the figures the issue defines."""
    layer = common.CONV_LAYERS["resnet 3x3/2 64->128 56px"]
    assert (layer.out_height, layer.out_width) == (28, 28), layer
    expected = 2 * 8 * 128 * 28 * 28 * 64 * 3 * 3  # 2·N·K·Ho·Wo·C·kH·kW
    assert layer.flops("forward") == expected, (layer, layer.flops("forward"))
    assert layer.flops("backward") == 2 * expected, (layer, layer.flops("backward"))
    for name, config in common.OPTIMIZERS.items():
        # param and grad, plus each state array, read; param and state written.
        states = {"sgd": 1, "adagrad": 1, "rmsprop": 1, "adadelta": 2, "adam": 2}
        assert config.arrays_moved == 3 + 2 * states[config.name], (name, config)
    for name in common.CONV_LAYERS:
        shrunk = common.CONV_LAYERS[name].shrunk()
        assert min(shrunk.output_shape) >= 1, (name, shrunk)


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
