"""Optimizer steps on 1M and 10M float32 parameters.

``time_step`` is the wall-clock time of one ``<optimizer>_step`` (synchronised
with the device before the clock stops). ``track_gbytes_per_second`` is the
memory traffic a step cannot avoid (read param, grad and every state array,
write param and every state array) over the median step time: optimizer steps
are memory-bound, so this reads against the machine's memory bandwidth.

The state and one warm-up step are built in ``setup``; the timed steps keep
updating the same param and state (a constant gradient keeps every value
finite and away from denormals over many thousands of steps).
"""

from __future__ import annotations

import time

import numpy as np

from . import common


class OptimizerStep:
    """One optimizer step per backend, optimizer, parameter count, threads."""

    params = (
        list(common.BACKENDS),
        list(common.OPTIMIZERS),
        list(common.OPTIMIZER_SIZES),
        list(common.THREADS),
    )
    param_names = ("backend", "optimizer", "size", "threads")
    # Wall clock, not process time: GPU work and worker threads must count.
    timer = time.perf_counter
    timeout = 180.0

    def setup(self, backend: str, optimizer: str, size: str, threads: int) -> None:
        config = common.OPTIMIZERS[optimizer]
        dtype = common.OPTIMIZER_DTYPE
        self.backend = common.load_backend(
            backend, operations=("init_state", f"{config.name}_step"), dtype=dtype
        )
        common.require_thread_count(self.backend, threads)

        count = common.optimizer_size(size)
        self.bytes_moved = config.arrays_moved * count * np.dtype(dtype).itemsize
        self.param = self.backend.asarray(common.random_array(0, (count,)), dtype)
        self.grad = self.backend.asarray(common.random_array(1, (count,)), dtype)
        self.state = self.backend.init_state(config.name, self.param)
        self.step_function = getattr(self.backend, f"{config.name}_step")
        self.hyper = config.hyper

        self.thread_pin = common.ThreadPin(threads)
        # Warm-up: the first step allocates lazily created state in some
        # backends; it stays out of the timings.
        self._step()

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
