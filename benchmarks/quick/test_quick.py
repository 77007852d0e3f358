"""A quick side-by-side of the backends in one pytest-benchmark run.

A few of the asv workloads (float32 conv layers forward and backward with each
backend's default algorithm: every 3x3 ResNet layer and both LeNet ones;
every optimizer on 1M parameters; layer_norm and GELU forward and backward
at transformer shapes), on every backend and on
torch's own best calls, the anchors (``torch[aten]``'s conv backward and
layer_norm and GELU kernels without autograd, ``torch[fused]`` and
``torch[foreach]`` optimizer steps, see
:mod:`benchmarks.anchors`), through the asv classes themselves (same inputs,
warm-up, thread pinning and synchronisation), with every thread pool pinned
to the largest count of ``NNSPEC_BENCH_THREADS`` (the GPU backends too, whose
asv classes time the first count only: host threads do not matter to them).
Run it with ``nox -s bench-quick``; see the noxfile for saving a baseline and
comparing against it.
"""

from __future__ import annotations

import pytest

from benchmarks import anchors, bench_conv, bench_optim, bench_transformer, common

THREADS = common.THREADS[-1]

#: Every 3x3 ResNet layer and both LeNet layers, forward and backward (the
#: layers the kernels are held to), and one 1x1 layer forward.
CONV_CASES = [
    (layer, direction)
    for layer in common.CONV_LAYERS
    if "3x3" in layer or "lenet" in layer
    for direction in ("forward", "backward")
] + [("resnet 1x1 256->64 56px", "forward")]
OPTIMIZER_CASES = [(name, "1M") for name in common.OPTIMIZERS]

ATEN_ANCHORS = anchors.anchor_names("cpu", (anchors.ATEN_ANCHOR,)) + (
    anchors.anchor_names("gpu", (anchors.ATEN_ANCHOR,))
)
OPTIMIZER_BACKENDS = (
    common.BACKENDS
    + anchors.anchor_names("cpu", anchors.OPTIMIZER_ANCHORS)
    + anchors.anchor_names("gpu", anchors.OPTIMIZER_ANCHORS)
)
#: (implementation, workload, direction): every backend and the aten anchors
#: on every layer_norm and GELU workload, both directions.
TRANSFORMER_PARAMS = [
    pytest.param(backend, workload, direction, id=f"{direction} {workload}-{backend}")
    for workload in common.TRANSFORMER_WORKLOADS
    for direction in common.TRANSFORMER_DIRECTIONS
    for backend in common.BACKENDS + ATEN_ANCHORS
]
#: (implementation, layer, direction): every backend on every case, the conv
#: anchors on the backward cases (they time nothing else).
CONV_PARAMS = [
    pytest.param(backend, layer, direction, id=f"{direction} {layer}-{backend}")
    for layer, direction in CONV_CASES
    for backend in common.BACKENDS
] + [
    pytest.param(anchor, layer, direction, id=f"{direction} {layer}-{anchor}")
    for layer, direction in CONV_CASES
    if direction == "backward"
    for anchor in ATEN_ANCHORS
]


def _set_up(benchmark_class: type, params: tuple):
    instance = benchmark_class()
    try:
        instance.setup(*params)
    except NotImplementedError as skip:
        instance.teardown(*params)
        pytest.skip(str(skip))
    return instance


@pytest.mark.parametrize(("backend", "layer", "direction"), CONV_PARAMS)
def test_conv2d(benchmark, side_by_side, backend: str, layer: str, direction: str):
    # The implementation named after the backend alone: its own choice.
    params = (backend, layer, direction, "float32", THREADS)
    conv = _set_up(bench_conv.benchmark_class(backend, layer), params)
    benchmark.group = backend
    # What the performance report reads (reports/performance.py).
    benchmark.extra_info.update(
        backend=backend,
        device=conv.backend.device,
        dtype="float32",
        kernel=f"conv2d {direction}",
        shape=layer,
        algorithm="default",
        threads=THREADS,
        flops=conv.flops,
    )
    try:
        benchmark(conv.time_conv2d, *params)
    finally:
        conv.teardown(*params)
    side_by_side(
        benchmark,
        f"conv2d {direction} float32 {layer}, {common.describe_threads(THREADS)}",
        backend,
        conv.flops,
        "GFLOP/s",
    )


@pytest.mark.parametrize("backend", OPTIMIZER_BACKENDS)
@pytest.mark.parametrize(
    ("optimizer", "size"), OPTIMIZER_CASES, ids=[n for n, _ in OPTIMIZER_CASES]
)
def test_optimizer_step(
    benchmark, side_by_side, backend: str, optimizer: str, size: str
):
    params = (backend, optimizer, size, THREADS)
    step = _set_up(bench_optim.benchmark_class(backend), params)
    benchmark.group = backend
    benchmark.extra_info.update(
        backend=backend,
        device=step.backend.device,
        dtype=common.OPTIMIZER_DTYPE,
        kernel="optimizer step",
        shape=f"{optimizer} {size}",
        threads=THREADS,
        bytes=step.bytes_moved,
    )
    try:
        benchmark(step.time_step, *params)
    finally:
        step.teardown(*params)
    side_by_side(
        benchmark,
        f"{optimizer} step float32 {size}, {common.describe_threads(THREADS)}",
        backend,
        step.bytes_moved,
        "GB/s",
    )


@pytest.mark.parametrize(("backend", "workload", "direction"), TRANSFORMER_PARAMS)
def test_transformer(
    benchmark, side_by_side, backend: str, workload: str, direction: str
):
    params = (backend, workload, direction, THREADS)
    call = _set_up(bench_transformer.benchmark_class(backend), params)
    operation, _, shape = workload.partition(" ")
    benchmark.group = backend
    benchmark.extra_info.update(
        backend=backend,
        device=call.backend.device,
        dtype=common.TRANSFORMER_DTYPE,
        kernel=f"{operation} {direction}",
        shape=shape,
        threads=THREADS,
        bytes=call.bytes_moved,
    )
    try:
        benchmark(call.time_call, *params)
    finally:
        call.teardown(*params)
    side_by_side(
        benchmark,
        f"{workload} {direction} {common.TRANSFORMER_DTYPE}, "
        f"{common.describe_threads(THREADS)}",
        backend,
        call.bytes_moved,
        "GB/s",
    )
