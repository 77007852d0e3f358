"""What the asv suite and the pytest-benchmark side-by-side share.

The workloads (conv layer shapes, optimizer configurations and sizes,
layer_norm and GELU at transformer shapes), the
parameter grids built from them, loading a backend so that a backend that
cannot run here is *skipped* (asv's convention: ``NotImplementedError`` raised
in ``setup``), pinning the thread pools, how asv samples a timing
(:class:`AsvTiming`), and timing a callable for the throughput (``track_``)
companions.

The grids hold only the combinations worth timing. asv runs each combination
of a class's ``params`` in a fresh interpreter (``launch_method`` "spawn"), so
even one that its setup skips costs an interpreter start and the imports (two
seconds with torch). Hence:

* one conv ``implementation`` parameter: ``"numpy"`` (the backend's own
  choice per shape, ``conv_algorithm = "auto"``), ``"numpy[im2col]"``,
  ``"numpy[winograd]"``, ... (an algorithm forced), ``"torch"``,
  ``"torch-cuda"``, ``"cupy"``, ``"cupy[im2col]"``, ... Built from the fixed
  built-in list and the array backend's algorithm table
  (:data:`backends.array.CONV_ALGORITHMS`, importable without torch or
  CuPy), never from what is installed, so that results recorded on different
  machines line up (:func:`conv_grid`);
* the implementations that compute only some layers (the Winograd algorithms:
  3x3 kernels at stride 1) in classes of their own, over those layers;
* the GPU backends in classes of their own, timed at one thread count (host
  threads do not matter to a GPU kernel), which asv does not even discover
  where no GPU backend can run (:data:`GPU_MAY_RUN`).

Environment variables (the parameter lists are read when the module is
imported; the selection and the smoke switch when a benchmark is set up, so a
test can set them):

``NNSPEC_BACKENDS``
    Comma-separated backend specs to run (the suite's own variable). The
    built-in backends are always asv parameters, so results stay comparable
    across runs; a built-in left out is skipped. A spec that is not built-in
    (``package.module:attribute``) is loaded when this module is imported, and
    added as a parameter with the conv algorithms it offers, in the CPU or GPU
    classes as its ``device`` says.
``NNSPEC_BENCH_THREADS``
    Comma-separated thread counts (default: 1 and every core this process may
    use). GPU benchmarks run with the first only.
``NNSPEC_BENCH_SMOKE``
    ``1`` shrinks every workload to at most a few thousand elements and times
    one call, so that every benchmark can run once as a correctness check.
``NNSPEC_BENCH_SLOWDOWN``
    A known slowdown of chosen calls, to prove that a regression is caught
    (:class:`Slowdown`): ``conv2d@numpy[im2col]:1.3,adam@numpy:1.3``. Unset,
    the timed calls are the backends' own, untouched.

This module defines no ``time_``/``track_`` names: asv imports it while it
discovers the suite.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from backends import contract
from backends.array import CONV_ALGORITHMS, ConvGeometry

SMOKE_VARIABLE = "NNSPEC_BENCH_SMOKE"
THREADS_VARIABLE = "NNSPEC_BENCH_THREADS"
SLOWDOWN_VARIABLE = "NNSPEC_BENCH_SLOWDOWN"

#: A timing whose spread, the interquartile range of its samples over their
#: median, exceeds this is *noisy*: the machine was busy, or the call's time
#: varies by itself, and the figure (and any ratio made from it) is not to be
#: trusted. One tenth: a quiet machine keeps the suite's timings to a few
#: percent, and the regression check flags changes of 20%.
NOISE_THRESHOLD = 0.10

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

    def geometry(self, itemsize: int = 4) -> ConvGeometry:
        """The array backend's description of this call (what its algorithms test)."""
        return ConvGeometry(
            batch=self.batch,
            in_channels=self.in_channels,
            out_channels=self.out_channels,
            height=self.height,
            width=self.width,
            kernel=(self.kernel_size, self.kernel_size),
            stride=(self.stride, self.stride),
            padding=(self.padding, self.padding),
            out_height=self.out_height,
            out_width=self.out_width,
            itemsize=itemsize,
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


#: SGD with momentum, Nesterov, Adagrad, RMSProp, Adadelta, Adam, AdamW
#: (torch.optim formulas and defaults, as the reference).
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
    "adamw": OptimizerConfig(
        "adamw",
        {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01},
        7,
    ),
}

#: Parameter counts of the optimizer benchmarks.
OPTIMIZER_SIZES: dict[str, int] = {"1M": 1_000_000, "10M": 10_000_000}
OPTIMIZER_DTYPE = "float32"


def optimizer_size(name: str) -> int:
    size = OPTIMIZER_SIZES[name]
    return size // 1000 if smoke_mode() else size


@dataclass(frozen=True)
class TransformerWorkload:
    """One call of a transformer block's memory-bound ops: layer_norm or gelu.

    The inputs are ``x`` of ``shape`` and, after it, one array per name in
    ``parameters`` shaped like the last ``hyper["normalized_ndim"]`` axes
    (layer_norm's gamma and beta); the backward takes an upstream gradient
    of ``shape`` first.
    """

    operation: str
    shape: tuple[int, ...]
    hyper: dict[str, Any]
    parameters: tuple[str, ...] = ()

    @property
    def parameter_shape(self) -> tuple[int, ...]:
        return self.shape[len(self.shape) - self.hyper.get("normalized_ndim", 0) :]

    @property
    def input_shapes(self) -> tuple[tuple[int, ...], ...]:
        return (self.shape, *(self.parameter_shape for _ in self.parameters))

    def arrays_moved(self, direction: str) -> int:
        """Arrays of ``shape`` a call must move through memory.

        Forward: read x, write the output; backward: read the upstream
        gradient and x, write dx (the parameters and their gradients are one
        row, negligible).
        """
        if direction == "forward":
            return 2
        if direction == "backward":
            return 3
        raise ValueError(
            f"direction must be 'forward' or 'backward', got {direction!r}"
        )

    def bytes_moved(self, direction: str, itemsize: int) -> int:
        return self.arrays_moved(direction) * math.prod(self.shape) * itemsize

    def shrunk(self) -> TransformerWorkload:
        """The same operation on at most a few thousand elements (smoke mode)."""
        shape = tuple(min(size, 4) for size in self.shape[:-1])
        return replace(self, shape=(*shape, min(self.shape[-1], 64)))


def _layer_norm(*shape: int) -> TransformerWorkload:
    return TransformerWorkload(
        "layer_norm", shape, {"normalized_ndim": 1, "eps": 1e-5}, ("gamma", "beta")
    )


#: layer_norm over the features of a BERT-base-sized activation (batch 32,
#: sequence 128, 768 features) and of a small model's, and the exact (erf)
#: GELU on 1M elements.
TRANSFORMER_WORKLOADS: dict[str, TransformerWorkload] = {
    "layer_norm 32x128x768": _layer_norm(32, 128, 768),
    "layer_norm 8x128x256": _layer_norm(8, 128, 256),
    "gelu 1M": TransformerWorkload("gelu", (1_000_000,), {"approximate": "none"}),
}
TRANSFORMER_DIRECTIONS: tuple[str, ...] = ("forward", "backward")
TRANSFORMER_DTYPE = "float32"


def transformer_workload(name: str) -> TransformerWorkload:
    workload = TRANSFORMER_WORKLOADS[name]
    return workload.shrunk() if smoke_mode() else workload


# --------------------------------------------------------------------------- #
# Parameter grids
# --------------------------------------------------------------------------- #

#: Built-in backends written over :mod:`backends.array`: the conv
#: algorithms they let a caller choose are its table.
ARRAY_BACKENDS: tuple[str, ...] = ("numpy", "cupy")
#: Built-in backends that run on a GPU.
GPU_BACKENDS: tuple[str, ...] = ("torch-cuda", "cupy")


@dataclass(frozen=True)
class GridBackend:
    """What the parameter grids need to know about one backend."""

    spec: str
    device: str  # "cpu" or "gpu"
    #: The conv algorithms it lets a caller choose (``conv_algorithm = name``).
    conv_algorithms: tuple[str, ...]
    #: False only where it certainly cannot run (a GPU backend without its
    #: library); True where only loading it would tell.
    may_run: bool = True


def _torch_gpu_build() -> bool:
    """Whether the installed torch is a CUDA or ROCm build, without importing it.

    ``torch.version.cuda`` and ``.hip`` are None in a CPU-only build; reading
    them from the source of ``torch/version.py`` spares every spawned benchmark
    the two seconds of ``import torch``. Anything unexpected answers True (the
    benchmarks' setup then decides).
    """
    spec = importlib.util.find_spec("torch")
    if spec is None:
        return False
    locations = list(spec.submodule_search_locations or [])
    try:
        tree = ast.parse((Path(locations[0]) / "version.py").read_text())
    except (IndexError, OSError, SyntaxError, ValueError):
        return True
    builds = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in ("cuda", "hip"):
            try:
                builds[target.id] = ast.literal_eval(value)
            except ValueError:
                return True
    return not builds or any(build is not None for build in builds.values())


def _builtin_backend(spec: str) -> GridBackend:
    algorithms = tuple(CONV_ALGORITHMS) if spec in ARRAY_BACKENDS else ()
    if spec == "torch-cuda":
        may_run = _torch_gpu_build()
    elif spec == "cupy":
        may_run = importlib.util.find_spec("cupy") is not None
    else:
        may_run = True
    device = "gpu" if spec in GPU_BACKENDS else "cpu"
    return GridBackend(spec, device, algorithms, may_run)


def conv_algorithms(backend: Any) -> tuple[str, ...]:
    """The conv algorithms ``backend`` lets a caller choose, by name (may be none)."""
    return tuple(getattr(backend, "conv_algorithms", None) or ())


def _other_backend(spec: str) -> GridBackend:
    """A backend named by ``NNSPEC_BACKENDS`` that is not built-in: loaded to see."""
    try:
        backend = contract.load(spec)
    except contract.BackendError:
        # A CPU parameter whose setup says why it cannot be loaded.
        return GridBackend(spec, "cpu", (), may_run=False)
    return GridBackend(
        spec,
        "gpu" if backend.device == "gpu" else "cpu",
        conv_algorithms(backend),
        contract.unavailable_reason(backend) is None,
    )


#: Every backend of the grids: the built-ins always (what is installed or
#: selected does not change the grids, so results line up across machines),
#: then the other backends ``NNSPEC_BACKENDS`` names.
GRID_BACKENDS: tuple[GridBackend, ...] = tuple(
    _builtin_backend(spec) for spec in contract.BUILTIN
) + tuple(
    _other_backend(spec) for spec in contract.selected() if spec not in contract.BUILTIN
)

#: The backend specs, in grid order (the pytest-benchmark side-by-side's
#: parameter).
BACKENDS: tuple[str, ...] = tuple(entry.spec for entry in GRID_BACKENDS)


def backends_on(device: str) -> tuple[str, ...]:
    """The backend specs of the grids that run on ``device`` ("cpu" or "gpu")."""
    return tuple(entry.spec for entry in GRID_BACKENDS if entry.device == device)


def thread_counts(device: str) -> tuple[int, ...]:
    """The thread-count parameter on ``device``: the first count only on a GPU."""
    return THREADS if device == "cpu" else THREADS[:1]


def implementation_name(backend: str, algorithm: str | None = None) -> str:
    """``"numpy"`` (the backend's own choice) or ``"numpy[winograd]"``."""
    return backend if algorithm is None else f"{backend}[{algorithm}]"


def split_implementation(implementation: str) -> tuple[str, str | None]:
    """The backend and the algorithm of an implementation name.

    ``"numpy[winograd]"`` -> ``("numpy", "winograd")``; ``"torch"`` ->
    ``("torch", None)`` (the backend's own choice).
    """
    backend, bracket, algorithm = implementation.partition("[")
    if bracket and algorithm.endswith("]"):
        return backend, algorithm[:-1]
    return implementation, None


def conv_applies(implementation: str, layer: ConvLayer) -> bool:
    """Whether ``implementation`` computes ``layer`` at all.

    A backend's own choice always does; an algorithm of a built-in array
    backend as its table says (Winograd: 3x3 kernels at stride 1 only); another
    backend's algorithm is assumed to (its setup skips the shapes it refuses).
    """
    backend, algorithm = split_implementation(implementation)
    if algorithm is None or backend not in ARRAY_BACKENDS:
        return True
    entry = CONV_ALGORITHMS.get(algorithm)
    return entry is None or entry.supports(layer.geometry())


@dataclass(frozen=True)
class ConvGrid:
    """The conv implementations on one device, split by the layers they compute."""

    #: Those that compute every layer: a backend's own choice, im2col, offsets.
    general: tuple[str, ...]
    #: Those that compute only some layers (today the Winograd algorithms).
    specialised: tuple[str, ...]
    #: The layers that at least one of ``specialised`` computes.
    specialised_layers: tuple[str, ...]


def conv_grid(device: str) -> ConvGrid:
    """The conv implementations of the backends on ``device``.

    Each backend's own choice, then each algorithm it offers. An
    implementation that computes no layer of :data:`CONV_LAYERS` is left out.
    """
    general: list[str] = []
    specialised: list[str] = []
    for entry in GRID_BACKENDS:
        if entry.device != device:
            continue
        names = [entry.spec] + [
            implementation_name(entry.spec, algorithm)
            for algorithm in entry.conv_algorithms
        ]
        for name in names:
            applies = [conv_applies(name, layer) for layer in CONV_LAYERS.values()]
            if all(applies):
                general.append(name)
            elif any(applies):
                specialised.append(name)
    layers = tuple(
        layer_name
        for layer_name, layer in CONV_LAYERS.items()
        if any(conv_applies(name, layer) for name in specialised)
    )
    return ConvGrid(tuple(general), tuple(specialised), layers)


#: The conv grids by device.
CONV_GRIDS: dict[str, ConvGrid] = {
    device: conv_grid(device) for device in ("cpu", "gpu")
}

#: Whether a selected GPU backend may run here. Where none can, asv does not
#: discover the GPU classes (:func:`discovered_by_asv_if`) instead of starting
#: an interpreter for every one of their combinations only to skip it.
GPU_MAY_RUN: bool = any(
    entry.may_run and entry.spec in contract.selected()
    for entry in GRID_BACKENDS
    if entry.device == "gpu"
)

BENCHMARK_PREFIXES: tuple[str, ...] = ("time_", "track_")


def discovered_by_asv_if(condition: bool) -> Callable[[type], type]:
    """Class decorator: unless ``condition``, asv does not discover the benchmarks.

    Each ``time_``/``track_`` method gets asv_runner's ``skip_benchmark`` mark
    (what its ``skip_benchmark_if`` sets), on a copy of its own, so that a base
    class shared with other benchmark classes stays unmarked. The class itself
    stays: the smoke test and the side-by-side call it, and its setup skips.
    """

    def decorate(cls: type) -> type:
        if condition:
            return cls
        for name in dir(cls):
            if not name.startswith(BENCHMARK_PREFIXES):
                continue
            method = getattr(cls, name)

            @functools.wraps(method)
            def hidden(self, *params, _method=method):
                return _method(self, *params)

            hidden.skip_benchmark = True
            setattr(cls, name, hidden)
        return cls

    return decorate


# --------------------------------------------------------------------------- #
# Backends
# --------------------------------------------------------------------------- #


class NotApplicable(NotImplementedError):
    """asv's skip for a combination that computes nothing.

    An algorithm the backend does not offer, or one that refuses the layer's
    shape. The grids leave these out (:func:`conv_grid`); the smoke test fails
    on one they hold by mistake.
    """


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


class ConvAlgorithmChoice:
    """Makes ``backend`` use conv ``algorithm`` until :meth:`restore`.

    ``None`` leaves the backend's own choice alone. A name the backend does not
    offer raises :class:`NotApplicable` (asv's skip).
    """

    def __init__(self, backend: Any, algorithm: str | None) -> None:
        self._backend = backend
        self._previous: str | None = None
        if algorithm is None:
            return
        offered = conv_algorithms(backend)
        if algorithm not in offered:
            raise NotApplicable(
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
# How asv samples, and timing for the throughput companions
# --------------------------------------------------------------------------- #


class AsvTiming:
    """How asv samples the suite's timings; every benchmark class inherits it.

    asv runs a ``time_`` benchmark of one parameter combination in a fresh
    interpreter per round, and a ``track_`` benchmark in one more, so a
    combination costs its interpreter starts (0.2 s, 2 s with torch) and
    setups besides its sampling. One round (asv's default is two, each in an
    interpreter of its own); in it, 0.1 s of warm-up calls, then samples of
    one call each (asv_runner re-runs ``setup`` before every sample: the
    classes build their inputs once and only re-pin the threads then), at
    least 5 and at most 10, stopping after 3 s once 5 are taken: 10 samples of
    every call up to 0.3 s (the slowest, a float64 backward on one core).
    """

    # Wall clock, not process time: GPU work and worker threads must count.
    timer = time.perf_counter
    rounds = 1
    repeat = (5, 10, 3.0)
    warmup_time = 0.1
    timeout = 180.0


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


def spread(median: float | None, iqr: float | None) -> float | None:
    """The interquartile range over the median (None where either is unknown)."""
    if median is None or iqr is None or not median > 0 or not math.isfinite(iqr):
        return None
    return iqr / median


def is_noisy(median: float | None, iqr: float | None) -> bool:
    """Whether a timing's spread exceeds :data:`NOISE_THRESHOLD`."""
    ratio = spread(median, iqr)
    return ratio is not None and ratio > NOISE_THRESHOLD


def machine_load() -> dict[str, Any]:
    """The load averages (1, 5, 15 minutes) and the cores this process may use.

    A load above the core count means other work competed for the CPUs while
    the timings ran. Empty where the platform has no load average.
    """
    try:
        one, five, fifteen = os.getloadavg()
    except (AttributeError, OSError):
        return {}
    return {
        "load_1m": round(one, 2),
        "load_5m": round(five, 2),
        "load_15m": round(fifteen, 2),
        "cores": _usable_cores(),
    }


# --------------------------------------------------------------------------- #
# A known slowdown, to prove that regressions are caught
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Slowdown:
    """Makes chosen benchmarked calls slower by a known factor.

    ``NNSPEC_BENCH_SLOWDOWN`` lists ``OPERATION[@IMPLEMENTATION]:FACTOR``
    entries, comma-separated: the operation is ``conv2d``, ``layer_norm`` or
    ``gelu`` (forward and backward) or an optimizer of :data:`OPTIMIZERS`
    (``adam``, ``sgd-momentum``, ...); the implementation, when given, is the
    benchmark's first parameter (``numpy``, ``numpy[im2col]``,
    ``torch[fused]``), else every implementation is slowed. A slowed call runs
    the real call, then waits busily for ``FACTOR - 1`` times what the call
    took, so its time is the factor times the real one whatever the machine.
    The benchmarks wrap their call only where an entry matches: with the
    variable unset nothing is wrapped and the timed call is the backend's own.
    """

    factors: tuple[tuple[str, str | None, float], ...]

    @classmethod
    def from_environment(cls) -> Slowdown:
        return cls.parse(os.environ.get(SLOWDOWN_VARIABLE, ""))

    @classmethod
    def parse(cls, text: str) -> Slowdown:
        factors = []
        for item in text.split(","):
            item = item.strip()
            if not item:
                continue
            target, colon, number = item.rpartition(":")
            operation, _, implementation = target.partition("@")
            try:
                factor = float(number)
            except ValueError:
                factor = math.nan
            if not colon or not operation or not factor >= 1.0:
                raise ValueError(
                    f"{SLOWDOWN_VARIABLE}: {item!r} is not "
                    "OPERATION[@IMPLEMENTATION]:FACTOR with a FACTOR >= 1"
                )
            factors.append((operation, implementation or None, factor))
        return cls(tuple(factors))

    def factor(self, operation: str, implementation: str) -> float:
        """The slowdown of ``operation`` on ``implementation`` (1.0: none)."""
        for wanted_operation, wanted_implementation, factor in self.factors:
            if wanted_operation == operation and wanted_implementation in (
                None,
                implementation,
            ):
                return factor
        return 1.0

    def wrap(
        self, function: Callable[..., Any], operation: str, implementation: str
    ) -> Callable[..., Any]:
        """``function`` itself, or ``function`` slowed by its factor."""
        factor = self.factor(operation, implementation)
        if factor == 1.0:
            return function
        return functools.partial(slowed_call, function, factor)


def slowed_call(function: Callable[..., Any], factor: float, *args, **kwargs) -> Any:
    """``function(*args, **kwargs)``, then a busy wait of ``factor - 1`` times
    what it took."""
    clock = time.perf_counter
    started = clock()
    value = function(*args, **kwargs)
    finished = clock()
    until = finished + (factor - 1.0) * (finished - started)
    while clock() < until:
        pass
    return value
