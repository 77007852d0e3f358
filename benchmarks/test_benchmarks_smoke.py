"""Every benchmark runs once, for correctness, not timing (part of ``nox -s tests``).

* ``asv check`` imports the asv suite and checks its benchmarks' signatures.
* Every asv benchmark class, for every parameter combination, on shrunk
  workloads (``NNSPEC_BENCH_SMOKE=1``): ``setup``, the ``time_`` method once,
  the ``track_`` method once (its value must be a positive finite number),
  ``teardown``. A combination whose ``setup`` raises ``NotImplementedError``
  is what asv records as skipped (an algorithm the backend does not offer, a
  GPU backend's extra thread counts); a backend that cannot run here is
  skipped with its reason, and one that cannot even be loaded fails.
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
    classes = []
    for module in ASV_MODULES:
        for _, value in inspect.getmembers(module, inspect.isclass):
            if value.__module__ == module.__name__ and _methods(value, "time_"):
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


def test_conv_algorithms_cover_every_backend() -> None:
    """A conv algorithm a backend offers but the asv grid lacks would go untimed."""
    for spec in contract.selected():
        backend = contract.load(spec)
        missing = set(common.conv_algorithms(backend)) - set(common.CONV_ALGORITHMS)
        assert not missing, (
            f"backend {spec!r} offers conv algorithms {sorted(missing)} that "
            f"benchmarks.common.CONV_ALGORITHMS {common.CONV_ALGORITHMS} lacks"
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


def _run_once(cls: type, params: tuple[Any, ...]) -> str | None:
    """setup, each time_ and track_ once, teardown; the skip reason if setup skips."""
    instance = cls()
    try:
        try:
            instance.setup(*params)
        except NotImplementedError as skip:
            return str(skip)
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


@pytest.mark.parametrize("spec", contract.selected())
@pytest.mark.parametrize("cls", BENCHMARK_CLASSES, ids=lambda cls: cls.__qualname__)
def test_every_benchmark_runs_once(cls: type, spec: str) -> None:
    backend = contract.load(spec)  # a spec that cannot load fails here
    reason = contract.unavailable_reason(backend)
    if reason is not None:
        pytest.skip(f"backend {spec!r} unavailable: {reason}")

    backend_index = cls.param_names.index("backend")
    grid = [values for values in cls.params]
    grid[backend_index] = [spec]
    ran, skipped, failures = 0, {}, []
    for params in itertools.product(*grid):
        described = dict(zip(cls.param_names, params, strict=True))
        try:
            reason = _run_once(cls, params)
        except Exception as error:  # collect them all, report them together
            failures.append(f"{described}: {type(error).__name__}: {error}")
            continue
        if reason is None:
            ran += 1
        else:
            skipped.setdefault(reason, []).append(described)

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
