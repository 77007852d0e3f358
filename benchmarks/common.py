"""What the asv suite and the pytest-benchmark side-by-side share.

The workloads (conv layer shapes, optimizer configurations and sizes), the
backends and thread counts they run on, loading a backend so that a backend that
cannot run here is *skipped* (asv's convention: ``NotImplementedError`` raised
in ``setup``), pinning the thread pools, and timing a callable for the
throughput (``track_``) companions.

Environment variables (the parameter lists are read when the module is
imported; the selection and the smoke switch when a benchmark is set up, so a
test can set them):

``NNSPEC_BACKENDS``
    Comma-separated backend specs to run (the suite's own variable). The
    built-in backends are always asv parameters, so results stay comparable
    across runs; a built-in left out is skipped. A spec that is not built-in
    (``package.module:attribute``) is added as a parameter.
``NNSPEC_BENCH_THREADS``
    Comma-separated thread counts (default: 1 and every core this process may
    use).
``NNSPEC_BENCH_SMOKE``
    ``1`` shrinks every workload to at most a few thousand elements and times
    one call, so that every benchmark can run once as a correctness check.

This module defines no ``time_``/``track_`` names: asv imports it while it
discovers the suite.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from backends import contract

SMOKE_VARIABLE = "NNSPEC_BENCH_SMOKE"
THREADS_VARIABLE = "NNSPEC_BENCH_THREADS"

#: The backend parameter of every benchmark; fixed (not "what is available
#: here") so that results recorded on different machines line up.
BACKENDS: tuple[str, ...] = tuple(contract.BUILTIN) + tuple(
    spec for spec in contract.selected() if spec not in contract.BUILTIN
)

#: The backend every other one is compared against in the summaries.
BASELINE_BACKEND = "torch"


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # honours taskset and container limits
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _thread_counts() -> tuple[int, ...]:
    text = os.environ.get(THREADS_VARIABLE, "")
    if text.strip():
        counts = [int(part) for part in text.split(",") if part.strip()]
        if not counts or min(counts) < 1:
            raise ValueError(f"{THREADS_VARIABLE}={text!r}: thread counts must be >= 1")
    else:
        counts = [1, _usable_cores()]
    return tuple(sorted(set(counts)))


#: The thread-count parameter: every CPU benchmark runs with its thread pools
#: pinned to each of these.
THREADS: tuple[int, ...] = _thread_counts()


def smoke_mode() -> bool:
    """Whether workloads are shrunk to a correctness check (``NNSPEC_BENCH_SMOKE``)."""
    return os.environ.get(SMOKE_VARIABLE, "").strip() not in ("", "0")


# --------------------------------------------------------------------------- #
# Workloads
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class ConvLayer:
    """One conv2d workload: input (N, C, H, W), weight (K, C, kH, kW)."""

    batch: int
    in_channels: int
    height: int
    width: int
    out_channels: int
    kernel_size: int
    stride: int
    padding: int

    @property
    def out_height(self) -> int:
        return (self.height + 2 * self.padding - self.kernel_size) // self.stride + 1

    @property
    def out_width(self) -> int:
        return (self.width + 2 * self.padding - self.kernel_size) // self.stride + 1

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.batch, self.in_channels, self.height, self.width)

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return (self.out_channels, self.in_channels, self.kernel_size, self.kernel_size)

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        return (self.batch, self.out_channels, self.out_height, self.out_width)

    def forward_flops(self) -> int:
        """``2·N·K·Ho·Wo·C·kH·kW``: one multiply and one add per multiply-add."""
        return (
            2
            * self.batch
            * self.out_channels
            * self.out_height
            * self.out_width
            * self.in_channels
            * self.kernel_size**2
        )

    def flops(self, direction: str) -> int:
        """Floating-point operations of one call in ``direction``.

        The backward computes dx and dw, each as many multiply-adds as the
        forward (db is a sum, negligible), so it counts twice the forward.
        """
        if direction == "forward":
            return self.forward_flops()
        if direction == "backward":
            return 2 * self.forward_flops()
        raise ValueError(
            f"direction must be 'forward' or 'backward', got {direction!r}"
        )

    def shrunk(self) -> ConvLayer:
        """The same kernel, stride and padding on a tiny input (smoke mode)."""
        size = max(self.kernel_size + 3, 8)
        return replace(
            self,
            batch=1,
            in_channels=min(self.in_channels, 3),
            out_channels=min(self.out_channels, 4),
            height=size,
            width=size,
        )


def _resnet(channels: int, size: int, out_channels: int, kernel: int, stride: int):
    return ConvLayer(
        batch=8,
        in_channels=channels,
        height=size,
        width=size,
        out_channels=out_channels,
        kernel_size=kernel,
        stride=stride,
        padding=kernel // 2,
    )


#: The conv workloads by name: ResNet stages (3x3 stride 1 and 2, 1x1
#: projections and bottleneck reductions, 64 to 256 channels, 56x56 down to
#: 14x14, batch 8) and LeNet-5's two convolutions (batch 64).
CONV_LAYERS: dict[str, ConvLayer] = {
    "resnet 3x3 64->64 56px": _resnet(64, 56, 64, 3, 1),
    "resnet 3x3/2 64->128 56px": _resnet(64, 56, 128, 3, 2),
    "resnet 1x1/2 64->128 56px": _resnet(64, 56, 128, 1, 2),
    "resnet 1x1 256->64 56px": _resnet(256, 56, 64, 1, 1),
    "resnet 3x3 128->128 28px": _resnet(128, 28, 128, 3, 1),
    "resnet 3x3/2 128->256 28px": _resnet(128, 28, 256, 3, 2),
    "resnet 3x3 256->256 14px": _resnet(256, 14, 256, 3, 1),
    "lenet C1 1->6 32px": ConvLayer(64, 1, 32, 32, 6, 5, 1, 0),
    "lenet C3 6->16 14px": ConvLayer(64, 6, 14, 14, 16, 5, 1, 0),
}

CONV_DIRECTIONS: tuple[str, ...] = ("forward", "backward")
CONV_DTYPES: tuple[str, ...] = ("float32", "float64")

#: The conv algorithm parameter. "default" is the backend's own choice (the
#: array backends' ``conv_algorithm = "auto"``, which picks per shape); the
#: other names are the algorithms a backend registers in its
#: ``conv_algorithms`` table and selects with ``conv_algorithm = name``. A
#: backend runs "default" and the names it offers; the rest are skipped. Fixed
#: here rather than read from the backends, so that the parameter grid does not
#: depend on what is installed (the smoke test checks that it covers every
#: algorithm a built-in backend offers).
CONV_ALGORITHMS: tuple[str, ...] = ("default", "im2col", "offsets")


def conv_layer(name: str) -> ConvLayer:
    layer = CONV_LAYERS[name]
    return layer.shrunk() if smoke_mode() else layer


@dataclass(frozen=True)
class OptimizerConfig:
    """One optimizer workload: the step to call, its hyperparameters, its traffic."""

    name: str
    hyper: dict[str, Any]
    #: Arrays of ``size`` elements a step must move through memory: reads of
    #: param, grad and each state array, writes of param and each state array.
    arrays_moved: int


#: SGD with momentum, Nesterov, Adagrad, RMSProp, Adadelta, Adam (torch.optim
#: formulas and defaults, as the reference).
OPTIMIZERS: dict[str, OptimizerConfig] = {
    "sgd-momentum": OptimizerConfig(
        "sgd", {"lr": 0.01, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0}, 5
    ),
    "nesterov": OptimizerConfig(
        "sgd", {"lr": 0.01, "momentum": 0.9, "nesterov": True, "weight_decay": 0.0}, 5
    ),
    "adagrad": OptimizerConfig("adagrad", {"lr": 0.01, "eps": 1e-10}, 5),
    "rmsprop": OptimizerConfig("rmsprop", {"lr": 0.01, "alpha": 0.99, "eps": 1e-8}, 5),
    "adadelta": OptimizerConfig("adadelta", {"lr": 1.0, "rho": 0.9, "eps": 1e-6}, 7),
    "adam": OptimizerConfig(
        "adam",
        {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0},
        7,
    ),
}

#: Parameter counts of the optimizer benchmarks.
OPTIMIZER_SIZES: dict[str, int] = {"1M": 1_000_000, "10M": 10_000_000}
OPTIMIZER_DTYPE = "float32"


def optimizer_size(name: str) -> int:
    size = OPTIMIZER_SIZES[name]
    return size // 1000 if smoke_mode() else size


# --------------------------------------------------------------------------- #
# Backends
# --------------------------------------------------------------------------- #


def load_backend(
    spec: str, *, operations: tuple[str, ...] = (), dtype: str | None = None
) -> Any:
    """The backend named ``spec``, or ``NotImplementedError`` saying why it cannot run.

    asv records a benchmark whose setup raises ``NotImplementedError`` as
    skipped: a GPU backend without a GPU, a backend left out by
    ``NNSPEC_BACKENDS``, an older commit without the backend module, a missing
    operation or dtype.
    """
    if spec not in contract.selected():
        raise NotImplementedError(
            f"backend {spec!r} not selected (${contract.ENVIRONMENT_VARIABLE})"
        )
    try:
        backend = contract.load(spec)
    except contract.BackendError as error:
        raise NotImplementedError(
            f"backend {spec!r} cannot be loaded: {error}"
        ) from None
    reason = contract.unavailable_reason(backend)
    if reason is not None:
        raise NotImplementedError(f"backend {spec!r} unavailable: {reason}")
    for operation in operations:
        if not contract.implements(backend, operation):
            raise NotImplementedError(
                f"backend {spec!r} does not implement {operation}"
            )
    if dtype is not None and dtype not in backend.dtypes:
        raise NotImplementedError(f"backend {spec!r} does not support {dtype}")
    return backend


def require_thread_count(backend: Any, threads: int) -> None:
    """Skip thread counts that would only repeat a GPU benchmark."""
    if backend.device != "cpu" and threads != THREADS[0]:
        raise NotImplementedError(
            f"{backend.name} runs on the GPU: only threads={THREADS[0]} is timed"
        )


def conv_algorithms(backend: Any) -> tuple[str, ...]:
    """The conv algorithms ``backend`` lets a caller choose, by name (may be none)."""
    return tuple(getattr(backend, "conv_algorithms", None) or ())


class ConvAlgorithmChoice:
    """Makes ``backend`` use conv ``algorithm`` until :meth:`restore`.

    "default" leaves the backend's own choice alone. A name the backend does not
    offer raises ``NotImplementedError`` (asv's skip).
    """

    def __init__(self, backend: Any, algorithm: str) -> None:
        self._backend = backend
        self._previous: str | None = None
        if algorithm == "default":
            return
        offered = conv_algorithms(backend)
        if algorithm not in offered:
            raise NotImplementedError(
                f"backend {backend.name!r} has no conv algorithm {algorithm!r} "
                f"(it offers {', '.join(offered) or 'no choice'})"
            )
        self._previous = backend.conv_algorithm
        backend.conv_algorithm = algorithm

    def restore(self) -> None:
        if self._previous is not None:
            self._backend.conv_algorithm = self._previous
            self._previous = None


def random_array(
    seed: int, shape: tuple[int, ...], *, scale: float = 1.0
) -> np.ndarray:
    """Normal(0, scale²) float64 values, reproducible from ``seed``."""
    return np.random.default_rng(seed).normal(0.0, scale, size=shape)


# --------------------------------------------------------------------------- #
# Threads
# --------------------------------------------------------------------------- #


class ThreadPin:
    """Pins the BLAS/OpenMP pools (threadpoolctl) and torch's pool to ``threads``.

    Made after the backend and its inputs exist: threadpoolctl only sees the
    libraries already loaded. :meth:`restore` puts the previous limits back
    (asv runs each benchmark in a fresh process, the smoke test does not).
    """

    def __init__(self, threads: int) -> None:
        from threadpoolctl import threadpool_limits

        self.threads = threads
        self._limits = threadpool_limits(limits=threads)
        self._torch_threads: int | None = None
        torch = sys.modules.get("torch")
        if torch is not None:
            self._torch_threads = torch.get_num_threads()
            torch.set_num_threads(threads)

    def restore(self) -> None:
        torch = sys.modules.get("torch")
        if torch is not None and self._torch_threads is not None:
            torch.set_num_threads(self._torch_threads)
            self._torch_threads = None
        if self._limits is not None:
            self._limits.restore_original_limits()
            self._limits = None


def restore(owner: Any, *attributes: str) -> None:
    """Teardown helper: ``restore()`` each of ``owner``'s ``attributes`` that is set.

    asv calls teardown even after setup raised ``NotImplementedError`` (or
    failed half-way), so whatever is missing is passed over.
    """
    for attribute in attributes:
        value = getattr(owner, attribute, None)
        if value is not None:
            value.restore()
            setattr(owner, attribute, None)


def describe_threads(threads: int) -> str:
    return f"{threads} thread" if threads == 1 else f"{threads} threads"


# --------------------------------------------------------------------------- #
# Timing for the throughput companions
# --------------------------------------------------------------------------- #


def median_seconds(
    call: Callable[[], object], *, min_time: float = 0.25, min_calls: int = 3
) -> float:
    """Median wall-clock seconds of ``call`` (which synchronises a GPU itself).

    Calls it at least ``min_calls`` times and for at least ``min_time``
    seconds; once in smoke mode.
    """
    if smoke_mode():
        min_time, min_calls = 0.0, 1
    durations: list[float] = []
    started = time.perf_counter()
    while len(durations) < min_calls or time.perf_counter() - started < min_time:
        before = time.perf_counter()
        call()
        durations.append(time.perf_counter() - before)
        if len(durations) >= 1000:
            break
    return statistics.median(durations)


def rate(amount: float, seconds: float) -> float:
    """``amount / seconds / 1e9`` (GFLOP/s, GB/s), NaN for an impossible zero time."""
    if seconds <= 0:
        return math.nan
    return amount / seconds / 1e9
