"""conv2d forward and backward on ResNet- and LeNet-shaped layers.

``time_conv2d`` is the wall-clock time of one call (forward: ``conv2d``;
backward: ``conv2d_backward``, which returns dx, dw and db), synchronised with
the device before the clock stops. ``track_gflops`` is the same call's
throughput, ``2·N·K·Ho·Wo·C·kH·kW`` per forward and twice that per backward
(dx and dw each cost one forward), over the median of repeated calls.

Parameters: the ``implementation`` (``"numpy"``, the backend's own choice per
shape; ``"numpy[winograd]"``, one algorithm forced; ``"torch"``; see
:func:`benchmarks.common.conv_grid`), the ``layer``, the ``direction``, the
``dtype`` and the ``threads`` the pools are pinned to. Four classes hold only
the combinations that compute something, each a full grid as asv wants it:

* :class:`Conv2d`: the CPU implementations that compute every layer;
* :class:`Conv2dSpecialised`: the CPU algorithms that compute only some
  layers (Winograd F(4x4, 3x3) and F(2x2, 3x3): 3x3 kernels at stride 1),
  on those layers;
* :class:`Conv2dAnchor`: torch's own conv2d backward,
  ``aten.convolution_backward`` (``"torch[aten]"``, see
  :mod:`benchmarks.anchors`), the fair anchor of every backward: the torch
  backend's runs the forward again inside autograd;
* :class:`Conv2dGPU`, :class:`Conv2dGPUSpecialised`, :class:`Conv2dAnchorGPU`:
  the same on the GPU backends, at the first thread count only, and not
  discovered by asv where no GPU backend can run.

``NNSPEC_BENCH_SLOWDOWN`` (``conv2d@numpy[im2col]:1.3``) slows the chosen
implementations' calls by a known factor (:class:`benchmarks.common.Slowdown`).
"""

from __future__ import annotations

from . import anchors, common

_CPU = common.CONV_GRIDS["cpu"]
_GPU = common.CONV_GRIDS["gpu"]


class _Conv2dBenchmark(common.AsvTiming):
    """One conv2d call per implementation, layer, direction, dtype, threads.

    The subclasses set ``params``; asv discovers no name starting with ``_``.
    """

    param_names = ("implementation", "layer", "direction", "dtype", "threads")
    #: The combination whose inputs this instance holds: asv re-runs setup
    #: before every sample, which then only re-applies the algorithm and the
    #: thread pinning (teardown undid them).
    _prepared: tuple | None = None

    def setup(
        self,
        implementation: str,
        layer: str,
        direction: str,
        dtype: str,
        threads: int,
    ) -> None:
        params = (implementation, layer, direction, dtype, threads)
        backend_spec, algorithm = common.split_implementation(implementation)
        if not common.conv_applies(implementation, common.CONV_LAYERS[layer]):
            raise common.NotApplicable(f"{implementation} does not compute {layer}")
        if self._prepared != params:
            self._prepared = None
            operation = "conv2d" if direction == "forward" else "conv2d_backward"
            self.backend = common.load_backend(
                backend_spec, operations=(operation,), dtype=dtype
            )
        if anchors.is_anchor(implementation):
            self.algorithm_choice = None
        else:
            self.algorithm_choice = common.ConvAlgorithmChoice(self.backend, algorithm)
        if self._prepared is None:
            self._build_call(implementation, layer, direction, dtype)
        self.thread_pin = common.ThreadPin(threads)
        if self._prepared is None:
            # Warm-up: first-call costs (allocator, kernel selection, page
            # faults) stay out of the timings.
            try:
                self.call()
            except ValueError as error:
                # An algorithm of another backend that refuses this shape:
                # not applicable, not a failure.
                if algorithm is not None and "does not support" in str(error):
                    raise common.NotApplicable(str(error)) from None
                raise
            self.backend.synchronize()
            self._prepared = params

    def _build_call(
        self, implementation: str, layer_name: str, direction: str, dtype: str
    ) -> None:
        self.layer = common.conv_layer(layer_name)
        forward, backward = self.backend.conv2d, self.backend.conv2d_backward
        if anchors.is_anchor(implementation):
            backward = anchors.conv2d_backward(self.backend, self.layer)
            hyper = {}
        else:
            hyper = {"stride": self.layer.stride, "padding": self.layer.padding}
        slowdown = common.Slowdown.from_environment()
        forward = slowdown.wrap(forward, "conv2d", implementation)
        backward = slowdown.wrap(backward, "conv2d", implementation)
        self.flops = self.layer.flops(direction)
        fan_in = self.layer.in_channels * self.layer.kernel_size**2
        x = self.backend.asarray(common.random_array(0, self.layer.input_shape), dtype)
        w = self.backend.asarray(
            common.random_array(1, self.layer.weight_shape, scale=fan_in**-0.5), dtype
        )
        b = self.backend.asarray(
            common.random_array(2, (self.layer.out_channels,)), dtype
        )
        if direction == "forward":
            self.call = lambda: forward(x, w, b, **hyper)
        else:
            dout = self.backend.asarray(
                common.random_array(3, self.layer.output_shape), dtype
            )
            self.call = lambda: backward(dout, x, w, b, **hyper)

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


def _params(
    implementations, layers, device: str, directions=common.CONV_DIRECTIONS
) -> tuple[list, ...]:
    return (
        list(implementations),
        list(layers),
        list(directions),
        list(common.CONV_DTYPES),
        list(common.thread_counts(device)),
    )


@common.discovered_by_asv_if(bool(_CPU.general))
class Conv2d(_Conv2dBenchmark):
    """The CPU implementations that compute every layer, on every layer."""

    params = _params(_CPU.general, common.CONV_LAYERS, "cpu")


@common.discovered_by_asv_if(bool(_CPU.specialised))
class Conv2dSpecialised(_Conv2dBenchmark):
    """The CPU algorithms that compute only some layers, on those layers."""

    params = _params(_CPU.specialised, _CPU.specialised_layers, "cpu")


_CPU_ANCHORS = anchors.anchor_names("cpu", (anchors.ATEN_ANCHOR,))
_GPU_ANCHORS = anchors.anchor_names("gpu", (anchors.ATEN_ANCHOR,))


@common.discovered_by_asv_if(bool(_CPU_ANCHORS))
class Conv2dAnchor(_Conv2dBenchmark):
    """torch's conv2d backward without the forward, on every layer."""

    params = _params(_CPU_ANCHORS, common.CONV_LAYERS, "cpu", ("backward",))


@common.discovered_by_asv_if(common.GPU_MAY_RUN and bool(_GPU.general))
class Conv2dGPU(_Conv2dBenchmark):
    """The GPU implementations that compute every layer, on every layer."""

    params = _params(_GPU.general, common.CONV_LAYERS, "gpu")


@common.discovered_by_asv_if(common.GPU_MAY_RUN and bool(_GPU.specialised))
class Conv2dGPUSpecialised(_Conv2dBenchmark):
    """The GPU algorithms that compute only some layers, on those layers."""

    params = _params(_GPU.specialised, _GPU.specialised_layers, "gpu")


@common.discovered_by_asv_if(common.GPU_MAY_RUN and bool(_GPU_ANCHORS))
class Conv2dAnchorGPU(_Conv2dBenchmark):
    """torch's conv2d backward without the forward (cuDNN), on every layer."""

    params = _params(_GPU_ANCHORS, common.CONV_LAYERS, "gpu", ("backward",))


#: The classes, for the side-by-side and the smoke test.
CLASSES: tuple[type[_Conv2dBenchmark], ...] = (
    Conv2d,
    Conv2dSpecialised,
    Conv2dAnchor,
    Conv2dGPU,
    Conv2dGPUSpecialised,
    Conv2dAnchorGPU,
)


def benchmark_class(implementation: str, layer: str) -> type[_Conv2dBenchmark]:
    """The class whose grid holds ``implementation`` on ``layer``."""
    for cls in CLASSES:
        if implementation in cls.params[0] and layer in cls.params[1]:
            return cls
    raise KeyError(f"no conv2d benchmark times {implementation} on {layer}")
