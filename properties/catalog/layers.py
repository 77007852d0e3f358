"""Catalog entries of the layers (``reference/layers.py``).

Linear, convolution, pooling, flatten, softmax and log-softmax, maxout and
upsampling. The multilinear ones (linear, conv2d, the poolings, upsampling) get
their rounding bound exactly from the reference on absolute values
(:func:`~properties.catalog.bounds.by_absolute_values`, given each output's
sum length); softmax, log-softmax and maxout from the formulas beside them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from properties import strategies
from properties.catalog.bounds import by_absolute_values
from properties.catalog.entry import OpInfo, Sample
from reference import layers as reference_layers


def _layer(name: str, arguments: tuple[str, ...], **fields: Any) -> OpInfo:
    """A deterministic layer entry with a gradient for every argument."""
    return OpInfo(
        name=name,
        family="layer",
        kind="deterministic",
        arguments=arguments,
        gradients=arguments,
        **fields,
    )


# -- linear ------------------------------------------------------------------


@st.composite
def _linear_samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
    n, d_in, d_out = (draw(st.integers(1, 5)) for _ in range(3))
    x = draw(strategies.arrays((n, d_in)))
    w = draw(strategies.arrays((d_out, d_in)))
    b = draw(strategies.arrays((d_out,)))
    return Sample((x, w, b))


def _linear_sum_lengths(sample: Sample) -> dict[str, int]:
    x, w, _ = sample.arguments
    return {
        "output": x.shape[1] + 1,
        "dx": w.shape[0],
        "dw": x.shape[0],
        "db": x.shape[0],
    }


LINEAR = _layer(
    "linear",
    ("x", "w", "b"),
    samples=_linear_samples,
    domain="N, D_in, D_out in 1..5, values in [-3, 3]",
    rounding=by_absolute_values(
        reference_layers.linear,
        reference_layers.linear_backward,
        ("x", "w", "b"),
        _linear_sum_lengths,
    ),
)


# -- conv2d ------------------------------------------------------------------


@st.composite
def _conv2d_samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
    g = draw(strategies.conv_geometries())
    x = draw(strategies.arrays((g["batch"], g["in_channels"], g["height"], g["width"])))
    w = draw(
        strategies.arrays(
            (g["out_channels"], g["in_channels"], *g["kernel"]), -2.0, 2.0
        )
    )
    b = draw(strategies.arrays((g["out_channels"],)))
    hyper = {}
    for key, default in (("stride", 1), ("padding", 0)):
        value = g[key]
        if value != default or draw(st.booleans()):
            hyper[key] = value
    return Sample((x, w, b), hyper)


def _conv2d_sum_lengths(sample: Sample) -> dict[str, int]:
    c_out, c_in, kernel_h, kernel_w = sample.arguments[1].shape
    outputs = reference_layers.conv2d(*sample.arguments, **sample.hyper).shape
    per_image = outputs[0] * outputs[2] * outputs[3]
    return {
        "output": c_in * kernel_h * kernel_w + 1,
        "dx": c_out * kernel_h * kernel_w,
        "dw": per_image,
        "db": per_image,
    }


CONV2D = _layer(
    "conv2d",
    ("x", "w", "b"),
    samples=_conv2d_samples,
    domain=(
        "N <= 2, C_in, C_out <= 3, H, W <= 8, kernel 1..3, stride 1..3 and "
        "padding 0..2 (ints or pairs) with H + 2p >= k"
    ),
    rounding=by_absolute_values(
        reference_layers.conv2d,
        reference_layers.conv2d_backward,
        ("x", "w", "b"),
        _conv2d_sum_lengths,
    ),
)


# -- max_pool2d, avg_pool2d --------------------------------------------------


def _pool_samples(*, padded: bool, distinct: bool):
    """Pooling samples; ``distinct``: values 1e-3 apart, so no window has a tie."""

    @st.composite
    def samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
        g = draw(strategies.pool_geometries(padded=padded))
        x = draw(
            strategies.arrays((g["batch"], g["channels"], g["height"], g["width"]))
        )
        if distinct:
            x = strategies.separated(x)
        return Sample((x,), g["hyper"])

    return samples


def _window_size(sample: Sample) -> int:
    kernel_h, kernel_w = strategies.as_pair(sample.hyper["kernel_size"])
    return kernel_h * kernel_w


MAX_POOL2D = _layer(
    "max_pool2d",
    ("x",),
    samples=_pool_samples(padded=True, distinct=True),
    domain=(
        "all values at least 1e-3 apart (no ties, so every window has one "
        "maximum); padding <= kernel // 2"
    ),
    # The forward selects (no sum); the backward sums overlapping windows.
    rounding=by_absolute_values(
        reference_layers.max_pool2d,
        reference_layers.max_pool2d_backward,
        ("x",),
        lambda sample: {"dx": _window_size(sample)},
        absolute=(False,),
    ),
)

AVG_POOL2D = _layer(
    "avg_pool2d",
    ("x",),
    samples=_pool_samples(padded=False, distinct=False),
    domain="kernel 1..3, stride 1..3 or default, no padding",
    rounding=by_absolute_values(
        reference_layers.avg_pool2d,
        reference_layers.avg_pool2d_backward,
        ("x",),
        lambda sample: {"output": _window_size(sample) + 1, "dx": _window_size(sample)},
    ),
)


# -- flatten -----------------------------------------------------------------


@st.composite
def _flatten_samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
    return Sample(
        (
            draw(
                strategies.arrays(
                    draw(strategies.shapes(min_dims=2, max_dims=4, max_side=3))
                )
            ),
        )
    )


FLATTEN = _layer(
    "flatten",
    ("x",),
    samples=_flatten_samples,
    domain="2 to 4 axes",
)


# -- softmax, log_softmax ----------------------------------------------------


_SOFTMAX_DOMAIN = "1 to 3 axes, any axis (or the default), values in [-6, 6]"


@st.composite
def _softmax_samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
    shape = draw(strategies.shapes(max_dims=3, max_side=4))
    x = draw(strategies.arrays(shape, -6.0, 6.0))
    axis = draw(strategies.optional(st.integers(-len(shape), len(shape) - 1)))
    return Sample((x,), {} if axis is strategies.OMITTED else {"axis": axis})


def _softmax_rounding(sample: Sample, dout: np.ndarray | None) -> dict[str, Any]:
    """The normalizing sum has ``classes`` terms; ``dx`` sums ``y * dout`` too."""
    (x,) = sample.arguments
    axis = sample.hyper.get("axis", -1)
    classes = x.shape[axis]
    y = reference_layers.softmax(x, axis=axis)
    bounds: dict[str, Any] = {"output": (classes + 2) * y}
    if dout is not None:
        d = np.abs(dout)
        weighted = (y * d).sum(axis=axis, keepdims=True)
        bounds["dx"] = 2 * (classes + 2) * y * (d + weighted)
    return bounds


SOFTMAX = _layer(
    "softmax",
    ("x",),
    samples=_softmax_samples,
    domain=_SOFTMAX_DOMAIN,
    rounding=_softmax_rounding,
)


def _log_softmax_rounding(sample: Sample, dout: np.ndarray | None) -> dict[str, Any]:
    """``x - max - log(sum exp)``: the shifted inputs' size, plus the log-sum."""
    (x,) = sample.arguments
    axis = sample.hyper.get("axis", -1)
    classes = x.shape[axis]
    largest = np.abs(x).max(axis=axis, keepdims=True)
    bounds: dict[str, Any] = {"output": 2 * (np.abs(x) + largest) + classes + 2}
    if dout is not None:
        d = np.abs(dout)
        y = np.exp(reference_layers.log_softmax(x, axis=axis))
        bounds["dx"] = (classes + 2) * (d + y * d.sum(axis=axis, keepdims=True))
    return bounds


LOG_SOFTMAX = _layer(
    "log_softmax",
    ("x",),
    samples=_softmax_samples,
    domain=_SOFTMAX_DOMAIN,
    rounding=_log_softmax_rounding,
)


# -- maxout ------------------------------------------------------------------


@st.composite
def _maxout_samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
    n, d_in, d_out = (draw(st.integers(1, 4)) for _ in range(3))
    pieces = draw(st.integers(1, 3))
    x = draw(strategies.arrays((n, d_in), -2.0, 2.0))
    w = draw(strategies.arrays((pieces, d_out, d_in), -2.0, 2.0))
    b = strategies.separate_maxout(
        x, w, draw(strategies.arrays((pieces, d_out), -2.0, 2.0))
    )
    return Sample((x, w, b))


def _maxout_rounding(sample: Sample, dout: np.ndarray | None) -> dict[str, Any]:
    """Each piece is a linear layer: on absolute values the largest one bounds the
    winning piece's ``sum(|terms|)``."""
    x, w, b = sample.arguments
    bounds: dict[str, Any] = {
        "output": (x.shape[1] + 1)
        * reference_layers.maxout(np.abs(x), np.abs(w), np.abs(b))
    }
    if dout is not None:
        d = np.abs(dout)
        bounds["dx"] = w.shape[1] * d @ np.abs(w).max(axis=0)
        bounds["dw"] = x.shape[0] * (d.T @ np.abs(x))[None]
        bounds["db"] = x.shape[0] * d.sum(axis=0)[None]
    return bounds


MAXOUT = _layer(
    "maxout",
    ("x", "w", "b"),
    samples=_maxout_samples,
    domain="k in 1..3 pieces; the winning piece leads by >= 1e-2 everywhere",
    rounding=_maxout_rounding,
)


# -- upsample2d --------------------------------------------------------------

UPSAMPLE_MODES = ("nearest", "bilinear")


@st.composite
def _upsample_samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
    shape = (
        draw(st.integers(1, 2)),
        draw(st.integers(1, 2)),
        draw(st.integers(1, 4)),
        draw(st.integers(1, 4)),
    )
    x = draw(strategies.arrays(shape))
    hyper = {"scale_factor": draw(st.integers(1, 3)), "mode": variant or "nearest"}
    return Sample((x,), hyper)


def _upsample_sum_lengths(sample: Sample) -> dict[str, int]:
    factor = sample.hyper["scale_factor"]
    if sample.hyper["mode"] == "nearest":
        return {"dx": factor * factor}
    return {"output": 6, "dx": 4 * factor * factor + 4}


UPSAMPLE2D = _layer(
    "upsample2d",
    ("x",),
    samples=_upsample_samples,
    domain="H, W <= 4, scale_factor 1..3",
    rounding=by_absolute_values(
        reference_layers.upsample2d,
        reference_layers.upsample2d_backward,
        ("x",),
        _upsample_sum_lengths,
    ),
    variants=UPSAMPLE_MODES,
)


ENTRIES: tuple[OpInfo, ...] = (
    LINEAR,
    CONV2D,
    MAX_POOL2D,
    AVG_POOL2D,
    FLATTEN,
    SOFTMAX,
    LOG_SOFTMAX,
    MAXOUT,
    UPSAMPLE2D,
)
