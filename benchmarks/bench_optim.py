"""Optimizer steps on 1M and 10M float32 parameters.

``time_step`` is the wall-clock time of one ``<optimizer>_step`` (synchronised
with the device before the clock stops). ``track_gbytes_per_second`` is the
memory traffic a step cannot avoid (read param, grad and every state array,
write param and every state array) over the median step time: optimizer steps
are memory-bound, so this reads against the machine's memory bandwidth.

The state and one warm-up step are built in the first ``setup``; the timed
steps keep updating the same param and state (a constant gradient keeps every
value finite and away from denormals over many thousands of steps).

:class:`OptimizerStep` runs the CPU backends at every thread count,
:class:`OptimizerStepGPU` the GPU backends at the first only (and is not
discovered by asv where no GPU backend can run). :class:`OptimizerStepAnchor`
and :class:`OptimizerStepAnchorGPU` time what a user would pick instead,
``torch.optim`` with ``fused=True`` (``"torch[fused]"``) and ``foreach=True``
(``"torch[foreach]"``), on the same param, gradient and hyperparameters
(:mod:`benchmarks.anchors`).

``NNSPEC_BENCH_SLOWDOWN`` (``adam@numpy:1.3``) slows the chosen steps by a
known factor (:class:`benchmarks.common.Slowdown`).
"""

from __future__ import annotations

import numpy as np

from . import anchors, common


class _OptimizerStepBenchmark(common.AsvTiming):
    """One optimizer step per backend, optimizer, parameter count, threads.

    The subclasses set ``params``; asv discovers no name starting with ``_``.
    """

    param_names = ("backend", "optimizer", "size", "threads")
    #: The combination whose param and state this instance holds: asv re-runs
    #: setup before every sample, which then only re-pins the threads.
    _prepared: tuple | None = None

    def setup(self, backend: str, optimizer: str, size: str, threads: int) -> None:
        params = (backend, optimizer, size, threads)
        if self._prepared != params:
            self._prepared = None
            config = common.OPTIMIZERS[optimizer]
            dtype = common.OPTIMIZER_DTYPE
            spec, anchor = common.split_implementation(backend)
            self.backend = common.load_backend(
                spec, operations=("init_state", f"{config.name}_step"), dtype=dtype
            )
            count = common.optimizer_size(size)
            self.bytes_moved = config.arrays_moved * count * np.dtype(dtype).itemsize
            self.param = self.backend.asarray(common.random_array(0, (count,)), dtype)
            self.grad = self.backend.asarray(common.random_array(1, (count,)), dtype)
            if anchor is None:
                self.state = self.backend.init_state(config.name, self.param)
                step_function = getattr(self.backend, f"{config.name}_step")
            else:
                anchor_step = anchors.optimizer_step(
                    self.backend, anchor, config, self.param, self.grad
                )
                self.state = None

                def step_function(param, grad, state, **hyper):
                    anchor_step()
                    return param, state

            self.step_function = common.Slowdown.from_environment().wrap(
                step_function, optimizer, backend
            )
            self.hyper = config.hyper

        self.thread_pin = common.ThreadPin(threads)
        if self._prepared is None:
            # Warm-up: the first step allocates lazily created state in some
            # backends; it stays out of the timings.
            self._step()
            self._prepared = params

    def teardown(self, *params: object) -> None:
        common.restore(self, "thread_pin")

    def _step(self) -> None:
        # A backend may update in place or return new arrays: keep what it returns.
        self.param, self.state = self.step_function(
            self.param, self.grad, self.state, **self.hyper
        )
        self.backend.synchronize()

    def time_step(self, *params: object) -> None:
        self._step()

    def track_gbytes_per_second(self, *params: object) -> float:
        return common.rate(self.bytes_moved, common.median_seconds(self._step))

    track_gbytes_per_second.unit = "GB/s"


def _params(device: str, backends=None) -> tuple[list, ...]:
    return (
        list(common.backends_on(device) if backends is None else backends),
        list(common.OPTIMIZERS),
        list(common.OPTIMIZER_SIZES),
        list(common.thread_counts(device)),
    )


class OptimizerStep(_OptimizerStepBenchmark):
    """The CPU backends, at every thread count."""

    params = _params("cpu")


@common.discovered_by_asv_if(common.GPU_MAY_RUN)
class OptimizerStepGPU(_OptimizerStepBenchmark):
    """The GPU backends, at the first thread count."""

    params = _params("gpu")


_CPU_ANCHORS = anchors.anchor_names("cpu", anchors.OPTIMIZER_ANCHORS)
_GPU_ANCHORS = anchors.anchor_names("gpu", anchors.OPTIMIZER_ANCHORS)


@common.discovered_by_asv_if(bool(_CPU_ANCHORS))
class OptimizerStepAnchor(_OptimizerStepBenchmark):
    """torch.optim fused and foreach on the CPU, at every thread count."""

    params = _params("cpu", _CPU_ANCHORS)


@common.discovered_by_asv_if(common.GPU_MAY_RUN and bool(_GPU_ANCHORS))
class OptimizerStepAnchorGPU(_OptimizerStepBenchmark):
    """torch.optim fused and foreach on the GPU, at the first thread count."""

    params = _params("gpu", _GPU_ANCHORS)


#: The classes, for the side-by-side and the smoke test.
CLASSES: tuple[type[_OptimizerStepBenchmark], ...] = (
    OptimizerStep,
    OptimizerStepGPU,
    OptimizerStepAnchor,
    OptimizerStepAnchorGPU,
)


def benchmark_class(backend: str) -> type[_OptimizerStepBenchmark]:
    """The class whose grid holds ``backend``."""
    for cls in CLASSES:
        if backend in cls.params[0]:
            return cls
    raise KeyError(f"no optimizer benchmark times {backend}")
