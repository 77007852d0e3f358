"""Catalog entries of batch and layer normalization and dropout
(``reference/normalization.py``).

Batch norm has four variants (1d/2d x training/eval) and a rounding bound
derived beside it; dropout two (training/eval) and no sums. ``dropout_mask`` is
a random op: never compared by value, it is held to the distribution sanity
check :func:`properties.catalog.sanity.dropout_mask_sanity`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import strategies as st

from properties import strategies
from properties.catalog.entry import OpInfo, Sample
from properties.catalog.sanity import dropout_mask_sanity

# -- batch_norm --------------------------------------------------------------

BATCH_NORM_VARIANTS = ("1d-train", "1d-eval", "2d-train", "2d-eval")


@st.composite
def _batch_norm_samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
    layout, mode = (variant or "2d-train").split("-")
    training = mode == "train"
    channels = draw(st.integers(1, 3))
    if layout == "1d":
        shape: tuple[int, ...] = (draw(st.integers(2 if training else 1, 8)), channels)
    else:
        height, width = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        least = 1 if height * width >= 2 or not training else 2
        shape = (draw(st.integers(least, 3)), channels, height, width)
    x = strategies.spread_channels(draw(strategies.arrays(shape, -4.0, 4.0)))
    gamma = draw(strategies.arrays((channels,), -2.0, 2.0))
    beta = draw(strategies.arrays((channels,), -2.0, 2.0))
    running_mean = draw(strategies.arrays((channels,), -2.0, 2.0))
    running_var = draw(strategies.arrays((channels,), 0.05, 4.0))
    hyper = {"training": training} | draw(
        strategies.hyperparameters(
            momentum=strategies.optional(strategies.floats(0.0, 1.0)),
            eps=strategies.optional(
                st.one_of(st.sampled_from([1e-5, 1e-3]), strategies.floats(1e-6, 0.5))
            ),
        )
    )
    return Sample((x, gamma, beta, running_mean, running_var), hyper)


def _batch_norm_rounding(sample: Sample, dout: np.ndarray | None) -> dict[str, Any]:
    """Batch norm's rounding bound (``properties/catalog/bounds.py``).

    Per channel of ``m`` values with ``R = max|x| / sigma`` (how much the mean's
    and the variance's rounding is magnified in ``x_hat``): the mean and the
    variance carry ``m u`` relative errors of ``max|x|`` and of the variance,
    ``x_hat`` an error of ``m u (R + |x_hat|)``, and each output inherits it
    through the formula that computes it.
    """
    x, gamma, beta, running_mean, running_var = sample.arguments
    training = sample.hyper["training"]
    momentum = sample.hyper.get("momentum", 0.1)
    eps = sample.hyper.get("eps", 1e-5)
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    m = x.size // x.shape[1]

    def channel(values: np.ndarray) -> np.ndarray:
        return values.reshape(shape)

    if training:
        mean = x.mean(axis=axes)
        variance = x.var(axis=axes)
    else:
        mean, variance = running_mean, running_var
    sigma = np.sqrt(variance + eps)
    x_hat = (x - channel(mean)) / channel(sigma)
    g, b = channel(np.abs(gamma)), channel(np.abs(beta))
    bounds: dict[str, Any] = {}
    if training:
        ratio = channel(np.abs(x).max(axis=axes) / sigma)
        bounds["y"] = (m + 2) * g * (ratio + np.abs(x_hat)) + b
        bounds["running_mean"] = np.abs(running_mean) + momentum * m * np.abs(x).max(
            axis=axes
        )
        unbiased = variance * m / (m - 1)
        bounds["running_var"] = np.abs(running_var) + momentum * (m + 2) * unbiased * (
            2 + 2 * ratio.reshape(-1)
        )
    else:
        ratio = channel((np.abs(x).max(axis=axes) + np.abs(mean)) / sigma)
        bounds["y"] = 4 * (g * (np.abs(x) + channel(np.abs(mean))) / channel(sigma) + b)
    if dout is not None:
        d = np.abs(dout)
        bounds["dbeta"] = m * d.sum(axis=axes)
        bounds["dgamma"] = (m + 2) * (d * (2 * np.abs(x_hat) + ratio)).sum(axis=axes)
        if training:
            mean_d = channel(d.mean(axis=axes))
            mean_dx = channel((d * (np.abs(x_hat) + ratio)).mean(axis=axes))
            bounds["dx"] = (
                (m + 2)
                * g
                / channel(sigma)
                * (1 + ratio)
                * (d + mean_d + (np.abs(x_hat) + ratio) * mean_dx)
            )
    return bounds


BATCH_NORM = OpInfo(
    name="batch_norm",
    family="normalization",
    kind="deterministic",
    arguments=("x", "gamma", "beta", "running_mean", "running_var"),
    gradients=("x", "gamma", "beta"),
    outputs=("y", "running_mean", "running_var"),
    samples=_batch_norm_samples,
    domain=(
        "(N, C) or (N, C, H, W), >= 2 values per channel in training; every "
        "channel's std >= 0.3 (well-conditioned); running_var in [0.05, 4]"
    ),
    rounding=_batch_norm_rounding,
    argument_ranges={"running_var": (0.0, math.inf)},
    variants=BATCH_NORM_VARIANTS,
)


# -- layer_norm --------------------------------------------------------------


@st.composite
def _layer_norm_samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
    """1 to 3 normalized axes holding >= 2 values, 0 to 2 leading axes; every
    sample spread to a std >= ~0.3 (as batch norm's channels)."""
    normalized_ndim = draw(st.integers(1, 3))
    leading = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    normalized = tuple(
        draw(
            st.lists(
                st.integers(1, 4), min_size=normalized_ndim, max_size=normalized_ndim
            ).filter(lambda sides: math.prod(sides) >= 2)
        )
    )
    x = draw(strategies.arrays(leading + normalized, -4.0, 4.0))
    # Viewed as (1, samples, M), each sample is a "channel" on axis 1.
    samples = x.reshape(1, -1, math.prod(normalized))
    x = strategies.spread_channels(samples).reshape(leading + normalized)
    gamma = draw(strategies.arrays(normalized, -2.0, 2.0))
    beta = draw(strategies.arrays(normalized, -2.0, 2.0))
    hyper = {"normalized_ndim": normalized_ndim} | draw(
        strategies.hyperparameters(
            eps=strategies.optional(
                st.one_of(st.sampled_from([1e-5, 1e-3]), strategies.floats(1e-6, 0.5))
            )
        )
    )
    return Sample((x, gamma, beta), hyper)


def _layer_norm_rounding(sample: Sample, dout: np.ndarray | None) -> dict[str, Any]:
    """Layer norm's rounding bound: batch norm's, per sample instead of per channel.

    Per sample of ``M`` values with ``R = max|x| / sigma``: ``x_hat`` errs by
    ``(M + 2) u (R + |x_hat|)``. ``dx`` is a difference of terms of size
    ``|gamma dout|`` (its own, the sample's mean of them, ``x_hat`` times the
    mean of ``gamma dout x_hat``), each carrying that error, times
    ``1 / sigma``: with two normalized values it is pure cancellation (the
    exact ``dx`` is ``(g_1 - g_2)/2`` times a tiny factor or 0), so the bound
    scales with those terms, not with ``dx``. The parameters' gradients sum
    over the ``N`` samples.
    """
    x, gamma, beta = sample.arguments
    eps = sample.hyper.get("eps", 1e-5)
    axes = tuple(range(x.ndim - sample.hyper["normalized_ndim"], x.ndim))
    leading = tuple(range(x.ndim - len(axes)))
    m = gamma.size
    n = x.size // m
    sigma = np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    x_hat = np.abs(x - x.mean(axis=axes, keepdims=True)) / sigma
    ratio = np.abs(x).max(axis=axes, keepdims=True) / sigma
    bounds: dict[str, Any] = {
        "output": (m + 2) * np.abs(gamma) * (ratio + x_hat) + np.abs(beta)
    }
    if dout is not None:
        d = np.abs(dout)
        g = np.abs(gamma) * d
        bounds["dbeta"] = n * d.sum(axis=leading)
        bounds["dgamma"] = (m + n + 2) * (d * (2 * x_hat + ratio)).sum(axis=leading)
        bounds["dx"] = (
            (m + 2)
            / sigma
            * (1 + ratio)
            * (
                g
                + g.mean(axis=axes, keepdims=True)
                + (x_hat + ratio) * (g * (x_hat + ratio)).mean(axis=axes, keepdims=True)
            )
        )
    return bounds


LAYER_NORM = OpInfo(
    name="layer_norm",
    family="normalization",
    kind="deterministic",
    arguments=("x", "gamma", "beta"),
    gradients=("x", "gamma", "beta"),
    samples=_layer_norm_samples,
    domain=(
        "0 to 2 leading axes, normalized_ndim 1 to 3 holding >= 2 values; every "
        "sample's std >= 0.3 (not constant); gamma, beta in [-2, 2]"
    ),
    rounding=_layer_norm_rounding,
)


# -- dropout_mask, dropout ---------------------------------------------------

DROPOUT_VARIANTS = ("train", "eval")


def _drop_probabilities() -> st.SearchStrategy[float]:
    return st.one_of(st.just(0.0), strategies.floats(0.0, 0.9))


@st.composite
def _dropout_samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
    shape = draw(strategies.shapes(max_dims=4, max_side=3))
    x = draw(strategies.arrays(shape, -4.0, 4.0))
    mask = draw(strategies.masks(shape))
    hyper = {"p": draw(_drop_probabilities()), "training": variant != "eval"}
    return Sample((x, mask), hyper)


@st.composite
def _dropout_mask_samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
    shape = draw(strategies.shapes(max_dims=3, max_side=12))
    hyper = {
        "p": draw(st.one_of(_drop_probabilities(), strategies.floats(0.0, 0.99))),
        "seed": draw(strategies.seeds()),
    }
    return Sample((shape,), hyper)


DROPOUT_MASK = OpInfo(
    name="dropout_mask",
    family="normalization",
    kind="random",
    arguments=("shape",),
    samples=_dropout_mask_samples,
    domain="shapes up to 12x12x12, p in [0, 0.99), any seed",
    sanity=dropout_mask_sanity,
)

DROPOUT = OpInfo(
    name="dropout",
    family="normalization",
    kind="deterministic",
    arguments=("x", "mask"),
    gradients=("x", None),
    samples=_dropout_samples,
    domain="any bool mask, p in [0, 0.9] (0 often)",
    variants=DROPOUT_VARIANTS,
)


ENTRIES: tuple[OpInfo, ...] = (BATCH_NORM, LAYER_NORM, DROPOUT_MASK, DROPOUT)
