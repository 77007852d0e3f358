"""The calls a user would time nnspec's backends against: torch's own best.

The torch backend is written to the contract, not for speed: its backwards
(``conv2d_backward``, ``layer_norm_backward``, ...) run the forward again
inside autograd to get the gradients, its calls check their inputs, and its
optimizer steps take torch.optim's single-tensor code path. A ratio against
it flatters the other backends. The anchors are what torch offers for the
same work:

``torch[aten]`` (``torch-cuda[aten]`` on a GPU)
    torch's kernels called through ``torch.ops.aten``, without autograd:
    conv2d backward through ``aten.convolution_backward``: dx, dw and db from
    the saved input and weight, no forward (on a GPU, cuDNN); layer_norm
    through ``aten.native_layer_norm``, and its backward through
    ``native_layer_norm_backward`` after it (the contract's backward gets x,
    not the saved statistics, so both compute them); gelu through
    ``aten.gelu`` and ``aten.gelu_backward``.
``torch[fused]``, ``torch[foreach]``
    one ``torch.optim`` step with ``fused=True`` (a single kernel over every
    parameter), or ``foreach=True`` (the multi-tensor path), on the same
    parameter, gradient and hyperparameters as the backends. torch offers no
    fused RMSprop or Adadelta: those are skipped, saying so.

Their names put the anchor in brackets after the torch backend whose tensors
and device they use, as the benchmarks name a backend's conv algorithms, so
the grids, the smoke test and the tables treat them as that backend's.

This module defines no ``time_``/``track_`` names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import common

#: The torch backends the anchors run on.
TORCH_BACKENDS: tuple[str, ...] = ("torch", "torch-cuda")
ATEN_ANCHOR = "aten"
OPTIMIZER_ANCHORS: tuple[str, ...] = ("fused", "foreach")

#: What each anchor is, for the tables' notes.
DESCRIPTIONS: dict[str, str] = {
    ATEN_ANCHOR: "torch.ops.aten without autograd (conv2d backward: "
    "aten.convolution_backward, no forward recomputed; layer_norm: "
    "native_layer_norm, backward native_layer_norm_backward after it; gelu: "
    "aten.gelu, aten.gelu_backward)",
    "fused": "torch.optim with fused=True",
    "foreach": "torch.optim with foreach=True",
}


def _adam_arguments(h: dict[str, Any]) -> dict[str, Any]:
    """Adam's and AdamW's keyword arguments (``weight_decay``: L2, resp. decoupled)."""
    return {
        "lr": h["lr"],
        "betas": (h["beta1"], h["beta2"]),
        "eps": h["eps"],
        "weight_decay": h["weight_decay"],
    }


#: The torch.optim class and the keyword arguments of each optimizer.
_TORCH_OPTIM: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "sgd": (
        "SGD",
        lambda h: {
            "lr": h["lr"],
            "momentum": h["momentum"],
            "nesterov": h["nesterov"],
            "weight_decay": h["weight_decay"],
        },
    ),
    "adagrad": ("Adagrad", lambda h: {"lr": h["lr"], "eps": h["eps"]}),
    "rmsprop": (
        "RMSprop",
        lambda h: {"lr": h["lr"], "alpha": h["alpha"], "eps": h["eps"]},
    ),
    "adadelta": (
        "Adadelta",
        lambda h: {"lr": h["lr"], "rho": h["rho"], "eps": h["eps"]},
    ),
    "adam": ("Adam", _adam_arguments),
    "adamw": ("AdamW", _adam_arguments),
}


def anchor_names(device: str, anchors: tuple[str, ...]) -> tuple[str, ...]:
    """``torch[aten]`` and the like, for the torch backend on ``device``."""
    return tuple(
        common.implementation_name(spec, anchor)
        for spec in common.backends_on(device)
        if spec in TORCH_BACKENDS
        for anchor in anchors
    )


def is_anchor(implementation: str) -> bool:
    backend, anchor = common.split_implementation(implementation)
    return backend in TORCH_BACKENDS and anchor in DESCRIPTIONS


def conv2d_backward(backend: Any, layer: common.ConvLayer) -> Callable:
    """``call(dout, x, w, b)``: dx, dw, db by ``aten.convolution_backward``."""
    import torch

    stride = [layer.stride, layer.stride]
    padding = [layer.padding, layer.padding]

    def call(dout: Any, x: Any, w: Any, b: Any) -> Any:
        return torch.ops.aten.convolution_backward(
            dout,
            x,
            w,
            [b.shape[0]],
            stride,
            padding,
            [1, 1],  # dilation
            False,  # transposed
            [0, 0],  # output padding
            1,  # groups
            [True, True, True],  # dx, dw, db
        )

    del backend  # the tensors already live on its device
    return call


def optimizer_step(
    backend: Any, anchor: str, config: common.OptimizerConfig, param: Any, grad: Any
) -> Callable[[], None]:
    """``step()``: one torch.optim step with ``anchor`` (fused or foreach).

    ``NotImplementedError`` (asv's skip) where torch has no such path for
    this optimizer on this device.
    """
    import torch

    class_name, arguments = _TORCH_OPTIM[config.name]
    own = param.detach().clone()
    own.grad = grad.detach().clone()
    try:
        optimizer = getattr(torch.optim, class_name)(
            [own], **arguments(config.hyper), **{anchor: True}
        )
        optimizer.step()  # builds the state; also where an unsupported path raises
    except (RuntimeError, TypeError, ValueError) as error:
        raise NotImplementedError(
            f"torch.optim.{class_name}({anchor}=True) on {backend.name}: {error}"
        ) from None
    return optimizer.step


def transformer_call(
    backend: Any, workload: common.TransformerWorkload, direction: str
) -> Callable:
    """``call(*inputs)`` (backward: ``call(dout, *inputs)``) through torch.ops.aten.

    The inputs are the workload's (:attr:`common.TransformerWorkload.input_shapes`).
    """
    import torch

    aten = torch.ops.aten
    hyper = workload.hyper
    del backend  # the tensors already live on its device
    if workload.operation == "gelu":
        if direction == "forward":
            return lambda x: aten.gelu(x, approximate=hyper["approximate"])
        return lambda dout, x: aten.gelu_backward(
            dout, x, approximate=hyper["approximate"]
        )
    if workload.operation != "layer_norm":
        raise ValueError(f"no aten anchor for {workload.operation!r}")
    normalized = list(workload.parameter_shape)

    def forward(x: Any, gamma: Any, beta: Any) -> Any:
        return aten.native_layer_norm(x, normalized, gamma, beta, hyper["eps"])

    def backward(dout: Any, x: Any, gamma: Any, beta: Any) -> Any:
        _, mean, rstd = forward(x, gamma, beta)
        return aten.native_layer_norm_backward(
            dout, x, normalized, mean, rstd, gamma, beta, [True, True, True]
        )

    return forward if direction == "forward" else backward
