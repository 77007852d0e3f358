"""conv2d forward and backward on ResNet- and LeNet-shaped layers.

``time_conv2d`` is the wall-clock time of one call (forward: ``conv2d``;
backward: ``conv2d_backward``, which returns dx, dw and db), synchronised with
the device before the clock stops. ``track_gflops`` is the same call's
throughput, ``2·N·K·Ho·Wo·C·kH·kW`` per forward and twice that per backward
(dx and dw each cost one forward), over the median of repeated calls.
"""

from __future__ import annotations

import time

from . import common


class Conv2d:
    """One conv2d call per backend, layer, direction, dtype, algorithm, threads."""

    params = (
        list(common.BACKENDS),
        list(common.CONV_LAYERS),
        list(common.CONV_DIRECTIONS),
        list(common.CONV_DTYPES),
        list(common.CONV_ALGORITHMS),
        list(common.THREADS),
    )
    param_names = ("backend", "layer", "direction", "dtype", "algorithm", "threads")
    # Wall clock, not process time: GPU work and worker threads must count.
    timer = time.perf_counter
    timeout = 180.0

    def setup(
        self,
        backend: str,
        layer: str,
        direction: str,
        dtype: str,
        algorithm: str,
        threads: int,
    ) -> None:
        operation = "conv2d" if direction == "forward" else "conv2d_backward"
        self.backend = common.load_backend(
            backend, operations=(operation,), dtype=dtype
        )
        common.require_thread_count(self.backend, threads)
        self.algorithm_choice = common.ConvAlgorithmChoice(self.backend, algorithm)
        forward, backward = self.backend.conv2d, self.backend.conv2d_backward

        self.layer = common.conv_layer(layer)
        self.flops = self.layer.flops(direction)
        fan_in = self.layer.in_channels * self.layer.kernel_size**2
        x = self.backend.asarray(common.random_array(0, self.layer.input_shape), dtype)
        w = self.backend.asarray(
            common.random_array(1, self.layer.weight_shape, scale=fan_in**-0.5), dtype
        )
        b = self.backend.asarray(
            common.random_array(2, (self.layer.out_channels,)), dtype
        )
        hyper = {"stride": self.layer.stride, "padding": self.layer.padding}
        if direction == "forward":
            self.call = lambda: forward(x, w, b, **hyper)
        else:
            dout = self.backend.asarray(
                common.random_array(3, self.layer.output_shape), dtype
            )
            self.call = lambda: backward(dout, x, w, b, **hyper)

        self.thread_pin = common.ThreadPin(threads)
        # Warm-up: first-call costs (allocator, kernel selection, page faults)
        # stay out of the timings.
        try:
            self.call()
        except ValueError as error:
            # An algorithm restricted to some shapes (a Winograd for 3x3 stride
            # 1, say) refuses the others: not applicable, not a failure.
            if algorithm != "default" and "does not support" in str(error):
                raise NotImplementedError(str(error)) from None
            raise
        self.backend.synchronize()

    def teardown(self, *params: object) -> None:
        common.restore(self, "thread_pin", "algorithm_choice")

    def time_conv2d(self, *params: object) -> None:
        self.call()
        self.backend.synchronize()

    def track_gflops(self, *params: object) -> float:
        return common.rate(self.flops, common.median_seconds(self._synchronised_call))

    track_gflops.unit = "GFLOP/s"

    def _synchronised_call(self) -> None:
        self.call()
        self.backend.synchronize()
