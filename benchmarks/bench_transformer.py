"""layer_norm and GELU, forward and backward, at transformer shapes, float32.

``time_call`` is the wall-clock time of one call (forward: ``layer_norm`` or
``gelu``; backward: ``layer_norm_backward``, which gets x and computes the
statistics again before dx, dgamma and dbeta, or ``gelu_backward``),
synchronised with the device before the clock stops.
``track_gbytes_per_second`` is the memory traffic the call cannot avoid (read
x and write the output; backward: read the upstream gradient and x, write dx)
over the median call time: these ops are memory-bound, so this reads against
the machine's memory bandwidth.

Parameters: the ``implementation`` (a backend, or ``"torch[aten]"``), the
``workload`` (:data:`benchmarks.common.TRANSFORMER_WORKLOADS`: layer_norm over
the 768 features of a (32, 128, 768) activation and the 256 of an
(8, 128, 256) one, the exact erf GELU on 1M elements), the ``direction`` and
the ``threads`` the pools are pinned to.

* :class:`Transformer`: the CPU backends, at every thread count;
* :class:`TransformerAnchor`: torch's own kernels without autograd or input
  checks, ``"torch[aten]"`` (``aten.native_layer_norm`` and
  ``native_layer_norm_backward``, ``aten.gelu`` and ``aten.gelu_backward``,
  :mod:`benchmarks.anchors`): the torch backend's backward runs the forward
  again inside autograd;
* :class:`TransformerGPU`, :class:`TransformerAnchorGPU`: the same on the GPU
  backends, at the first thread count only, and not discovered by asv where
  no GPU backend can run.

``NNSPEC_BENCH_SLOWDOWN`` (``layer_norm@numpy:1.3``) slows the chosen calls by
a known factor (:class:`benchmarks.common.Slowdown`).
"""

from __future__ import annotations

import numpy as np

from . import anchors, common


class _TransformerBenchmark(common.AsvTiming):
    """One call per implementation, workload, direction, threads.

    The subclasses set ``params``; asv discovers no name starting with ``_``.
    """

    param_names = ("implementation", "workload", "direction", "threads")
    #: The combination whose inputs this instance holds: asv re-runs setup
    #: before every sample, which then only re-pins the threads.
    _prepared: tuple | None = None

    def setup(
        self, implementation: str, workload: str, direction: str, threads: int
    ) -> None:
        params = (implementation, workload, direction, threads)
        if self._prepared != params:
            self._prepared = None
            self._build_call(implementation, workload, direction)
        self.thread_pin = common.ThreadPin(threads)
        if self._prepared is None:
            # Warm-up: first-call costs (allocator, page faults) stay out of
            # the timings.
            self._synchronised_call()
            self._prepared = params

    def _build_call(self, implementation: str, name: str, direction: str) -> None:
        workload = common.transformer_workload(name)
        dtype = common.TRANSFORMER_DTYPE
        operation = workload.operation
        if direction == "backward":
            operation += "_backward"
        spec, _ = common.split_implementation(implementation)
        self.backend = common.load_backend(spec, operations=(operation,), dtype=dtype)
        if anchors.is_anchor(implementation):
            function = anchors.transformer_call(self.backend, workload, direction)
            hyper = {}
        else:
            function = getattr(self.backend, operation)
            hyper = workload.hyper
        function = common.Slowdown.from_environment().wrap(
            function, workload.operation, implementation
        )
        shapes = workload.input_shapes
        if direction == "backward":
            shapes = (workload.shape, *shapes)
        arrays = [
            self.backend.asarray(common.random_array(seed, shape), dtype)
            for seed, shape in enumerate(shapes)
        ]
        self.bytes_moved = workload.bytes_moved(direction, np.dtype(dtype).itemsize)
        self.call = lambda: function(*arrays, **hyper)

    def teardown(self, *params: object) -> None:
        common.restore(self, "thread_pin")

    def time_call(self, *params: object) -> None:
        self._synchronised_call()

    def track_gbytes_per_second(self, *params: object) -> float:
        return common.rate(
            self.bytes_moved, common.median_seconds(self._synchronised_call)
        )

    track_gbytes_per_second.unit = "GB/s"

    def _synchronised_call(self) -> None:
        self.call()
        self.backend.synchronize()


def _params(implementations, device: str) -> tuple[list, ...]:
    return (
        list(implementations),
        list(common.TRANSFORMER_WORKLOADS),
        list(common.TRANSFORMER_DIRECTIONS),
        list(common.thread_counts(device)),
    )


class Transformer(_TransformerBenchmark):
    """The CPU backends, at every thread count."""

    params = _params(common.backends_on("cpu"), "cpu")


@common.discovered_by_asv_if(common.GPU_MAY_RUN)
class TransformerGPU(_TransformerBenchmark):
    """The GPU backends, at the first thread count."""

    params = _params(common.backends_on("gpu"), "gpu")


_CPU_ANCHORS = anchors.anchor_names("cpu", (anchors.ATEN_ANCHOR,))
_GPU_ANCHORS = anchors.anchor_names("gpu", (anchors.ATEN_ANCHOR,))


@common.discovered_by_asv_if(bool(_CPU_ANCHORS))
class TransformerAnchor(_TransformerBenchmark):
    """torch's aten kernels without autograd on the CPU, at every thread count."""

    params = _params(_CPU_ANCHORS, "cpu")


@common.discovered_by_asv_if(common.GPU_MAY_RUN and bool(_GPU_ANCHORS))
class TransformerAnchorGPU(_TransformerBenchmark):
    """torch's aten kernels without autograd on the GPU, at the first thread count."""

    params = _params(_GPU_ANCHORS, "gpu")


#: The classes, for the side-by-side and the smoke test.
CLASSES: tuple[type[_TransformerBenchmark], ...] = (
    Transformer,
    TransformerGPU,
    TransformerAnchor,
    TransformerAnchorGPU,
)


def benchmark_class(implementation: str) -> type[_TransformerBenchmark]:
    """The class whose grid holds ``implementation``."""
    for cls in CLASSES:
        if implementation in cls.params[0]:
            return cls
    raise KeyError(f"no transformer benchmark times {implementation}")
