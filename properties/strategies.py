"""Shared Hypothesis strategies: shapes, bounded arrays, valid geometries, labels.

Everything here draws *valid inputs by construction*: a conv or pool geometry
always has an output of at least one cell, labels lie in ``[0, C)``, and the
domain repairs (:func:`away_from`, :func:`separated`, :func:`spread_channels`,
:func:`separate_maxout`, :func:`separate_hinge`) move drawn values out of the
places where an op has a kink or a tie instead of rejecting the example, so no
test filters with ``assume`` and the ``filter_too_much`` health check never
fires.

Arrays are float64 and small (a conv input is at most 2x3x8x8), so the ``ci``
profile runs the whole catalog quickly on two cores. Each float array is drawn
either element by element by Hypothesis (edge values, repeated values, zeros:
what it shrinks towards) or from a seeded generator (generic values with no
structure, the inputs that expose a transposed kernel or a wrong axis), with
equal chance.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

#: How far the repairs keep inputs from a kink or a tie. Finite differences
#: step by at most ~1e-5 (see test_gradients.py) and float32 rounding moves an
#: input of magnitude <= 10 by <= 6e-7, both far below this gap.
KINK_GAP = 1e-3


# -- numbers -----------------------------------------------------------------


@functools.cache
def floats(low: float, high: float) -> st.SearchStrategy[float]:
    """Finite float64 numbers in ``[low, high]``, no subnormals.

    Built once per range (a strategy is validated on first use, and the
    per-channel draws ask for the same range many times).
    """
    return st.floats(
        low, high, allow_nan=False, allow_infinity=False, allow_subnormal=False
    )


def seeds() -> st.SearchStrategy[int]:
    """Integer seeds for NumPy's default generator and for the backends."""
    return st.integers(0, 2**31 - 1)


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``strategy`` or :data:`OMITTED` (the hyperparameter keeps its default)."""
    return st.one_of(st.just(OMITTED), strategy)


class _Omitted:
    def __repr__(self) -> str:
        return "OMITTED"


#: Marks a hyperparameter left out of the call, so its default is exercised.
OMITTED: Any = _Omitted()


def hyperparameters(**strategies: st.SearchStrategy[Any]) -> st.SearchStrategy[dict]:
    """A dict of hyperparameters; keys whose draw is :data:`OMITTED` are left out."""
    return st.fixed_dictionaries(strategies).map(
        lambda drawn: {
            key: value for key, value in drawn.items() if value is not OMITTED
        }
    )


def int_or_pair(low: int, high: int) -> st.SearchStrategy[int | tuple[int, int]]:
    """An int, or an ``(h, w)`` pair of ints, each in ``[low, high]``."""
    side = st.integers(low, high)
    return st.one_of(side, st.tuples(side, side))


def as_pair(value: int | Sequence[int]) -> tuple[int, int]:
    """``value`` (an int or a pair) as a pair."""
    if isinstance(value, int):
        return value, value
    first, second = value
    return int(first), int(second)


# -- shapes ------------------------------------------------------------------


def shapes(
    *, min_dims: int = 1, max_dims: int = 3, min_side: int = 1, max_side: int = 4
) -> st.SearchStrategy[tuple[int, ...]]:
    """Small array shapes: at most ``max_side ** max_dims`` elements (64 by default)."""
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


# -- arrays ------------------------------------------------------------------


def arrays(
    shape: Sequence[int], low: float = -3.0, high: float = 3.0
) -> st.SearchStrategy[np.ndarray]:
    """float64 arrays of ``shape`` with values in ``[low, high]``.

    Half of the draws are Hypothesis's own (it shrinks them to simple numbers),
    half are uniform values from a seeded generator (no repeated values).
    """
    shape = tuple(int(d) for d in shape)
    elementwise = hnp.arrays(np.float64, shape, elements=floats(low, high))
    generic = seeds().map(
        lambda seed: np.random.default_rng(seed).uniform(low, high, size=shape)
    )
    return st.one_of(elementwise, generic)


def signed_magnitudes(
    shape: Sequence[int], low_exponent: float, high_exponent: float
) -> st.SearchStrategy[np.ndarray]:
    """float64 arrays of ``shape``, ``10**low_exponent <= |x| <= 10**high_exponent``.

    Magnitudes log-uniform, signs random, from a seeded generator: every
    value lies in the band (none near 0), the inputs of a property whose
    bound needs a floor and a ceiling on ``|x|``.
    """
    shape = tuple(int(d) for d in shape)

    def draw(seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        magnitude = 10.0 ** rng.uniform(low_exponent, high_exponent, shape)
        return magnitude * rng.choice([-1.0, 1.0], shape)

    return seeds().map(draw)


def upstream(shape: Sequence[int]) -> st.SearchStrategy[np.ndarray]:
    """A random upstream gradient of ``shape`` (``()`` for a loss).

    Standard normal values from a seeded generator: never all ones, never
    constant, so a backward that is right only for ``dout = 1`` (``sum`` of a
    softmax has gradient 0) cannot pass.
    """
    shape = tuple(int(d) for d in shape)
    return seeds().map(
        lambda seed: np.asarray(np.random.default_rng(seed).standard_normal(shape))
    )


def labels(batch: int, classes: int) -> st.SearchStrategy[np.ndarray]:
    """Integer class ids, shape ``(batch,)``, in ``[0, classes)``, dtype int64."""
    return hnp.arrays(np.int64, (batch,), elements=st.integers(0, classes - 1))


def masks(shape: Sequence[int]) -> st.SearchStrategy[np.ndarray]:
    """Bool dropout masks of ``shape`` (True = kept)."""
    return hnp.arrays(np.bool_, tuple(shape), elements=st.booleans())


def binary_or_soft_targets(shape: Sequence[int]) -> st.SearchStrategy[np.ndarray]:
    """Targets in ``[0, 1]``: hard 0/1 labels or soft probabilities."""
    hard = hnp.arrays(np.float64, tuple(shape), elements=st.sampled_from([0.0, 1.0]))
    return st.one_of(hard, arrays(shape, 0.0, 1.0))


# -- geometries --------------------------------------------------------------


@st.composite
def conv_geometries(draw: st.DrawFn) -> dict[str, Any]:
    """A valid conv2d geometry: sizes, kernel, ``stride`` and ``padding``.

    ``H + 2 p >= kH`` (and the same for the width) by construction, so the
    output has at least one cell. At most ``N, C_in = 2, 3`` and ``8x8``.
    """
    kernel_h, kernel_w = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = draw(int_or_pair(1, 3))
    padding = draw(int_or_pair(0, 2))
    pad_h, pad_w = as_pair(padding)
    return {
        "batch": draw(st.integers(1, 2)),
        "in_channels": draw(st.integers(1, 3)),
        "out_channels": draw(st.integers(1, 3)),
        "height": draw(st.integers(max(1, kernel_h - 2 * pad_h), 8)),
        "width": draw(st.integers(max(1, kernel_w - 2 * pad_w), 8)),
        "kernel": (kernel_h, kernel_w),
        "stride": stride,
        "padding": padding,
    }


@st.composite
def pool_geometries(draw: st.DrawFn, *, padded: bool) -> dict[str, Any]:
    """A valid pooling geometry: sizes and the hyperparameters of the call.

    ``kernel_size`` is an int or a pair; ``stride`` is omitted (it defaults to
    the kernel) or an int or a pair; when ``padded``, ``padding`` is omitted
    (0) or at most ``kernel_size // 2`` per axis, as max pooling requires.
    ``H + 2 p >= kH`` by construction, so every output has a cell.
    """
    kernel_size = draw(int_or_pair(1, 3))
    kernel_h, kernel_w = as_pair(kernel_size)
    hyper: dict[str, Any] = {"kernel_size": kernel_size}
    stride = draw(optional(int_or_pair(1, 3)))
    if stride is not OMITTED:
        hyper["stride"] = stride
    pad_h = pad_w = 0
    if padded:
        pad_h = draw(st.integers(0, kernel_h // 2))
        pad_w = draw(st.integers(0, kernel_w // 2))
        if pad_h == pad_w:
            padding = draw(st.sampled_from([OMITTED, pad_h, (pad_h, pad_w)]))
            if padding is OMITTED and pad_h != 0:
                padding = pad_h
        else:
            padding = (pad_h, pad_w)
        if padding is not OMITTED:
            hyper["padding"] = padding
    return {
        "batch": draw(st.integers(1, 2)),
        "channels": draw(st.integers(1, 3)),
        "height": draw(st.integers(max(1, kernel_h - 2 * pad_h), 6)),
        "width": draw(st.integers(max(1, kernel_w - 2 * pad_w), 6)),
        "hyper": hyper,
    }


# -- domain repairs ----------------------------------------------------------


def away_from(x: np.ndarray, point: float = 0.0, gap: float = KINK_GAP) -> np.ndarray:
    """``x`` with every value within ``gap`` of ``point`` pushed out to ``gap``.

    Values keep their side of ``point`` (``point`` itself goes up), so the
    result is as close to the draw as a valid input can be.
    """
    x = np.array(x, dtype=np.float64)
    offset = x - point
    near = np.abs(offset) < gap
    x[near] = point + np.where(offset[near] < 0, -gap, gap)
    return x


def separated(x: np.ndarray, gap: float = KINK_GAP) -> np.ndarray:
    """``x`` with any two values at least ``gap`` apart, in the drawn order.

    Sorting and pushing each value up to ``gap`` above its predecessor keeps
    the order of the draw (ties broken by position), so max pooling has a
    unique maximum in every window, far from a tie.
    """
    x = np.array(x, dtype=np.float64)
    flat = x.reshape(-1)
    order = np.argsort(flat, kind="stable")
    values = flat[order]
    for i in range(1, values.size):
        values[i] = max(values[i], values[i - 1] + gap)
    flat[order] = values
    return x


def spread_channels(x: np.ndarray, *, min_std: float = 0.25) -> np.ndarray:
    """``x`` with every channel (axis 1) spread to a standard deviation >= ~0.3.

    A channel of a batch-norm input whose values (almost) agree has a variance
    near 0, where the normalisation divides by ``sqrt(eps)`` and float32
    results lose every digit; adding a fixed ramp to such a channel keeps the
    op well-conditioned (``std(x + ramp) >= std(ramp) - std(x) >= 0.33``).
    """
    x = np.array(x, dtype=np.float64)
    moved = np.moveaxis(x, 1, 0)
    for channel in range(x.shape[1]):
        values = moved[channel]
        if values.size >= 2 and values.std() < min_std:
            ramp = np.linspace(-1.0, 1.0, values.size)
            ramp = np.roll(ramp, channel)  # channels differ
            values += ramp.reshape(values.shape)
    return x


def separate_maxout(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, gap: float = 10 * KINK_GAP
) -> np.ndarray:
    """A bias ``b`` for which every maxout output has a winning piece ``gap`` clear.

    Each round lifts the winner of the first near-tie (over all samples) by
    ``2 gap``; a handful of rounds settle every example drawn here. Should
    the rounds run out, pieces are staggered by ``k`` times a spacing larger
    than the spread of ``x @ w[k].T``, which always separates them.
    """
    b = np.array(b, dtype=np.float64)
    k = w.shape[0]
    if k == 1:
        return b
    for _ in range(64):
        pieces = np.einsum("ni,koi->kno", x, w) + b[:, None, :]
        ordered = np.sort(pieces, axis=0)
        margins = ordered[-1] - ordered[-2]
        close = np.argwhere(margins < gap)
        if close.size == 0:
            return b
        n, o = close[0]
        b[pieces[:, n, o].argmax(), o] += 2 * gap
    spread = np.einsum("ni,koi->kno", np.abs(x), np.abs(w)).max() * 2 + gap
    return b + (np.arange(k) * 2 * spread)[:, None]


def separate_hinge(
    scores: np.ndarray, labels: np.ndarray, margin: float, gap: float = KINK_GAP
) -> np.ndarray:
    """``scores`` with no hinge term ``s_j - s_y + margin`` within ``gap`` of 0.

    Each wrong-class score ``s_j`` near its kink moves by ``2 gap`` (only its
    own term depends on it), so the subgradient convention at 0 never matters.
    """
    scores = np.array(scores, dtype=np.float64)
    rows = np.arange(scores.shape[0])
    correct = scores[rows, labels][:, None]
    term = scores - correct + margin
    near = np.abs(term) < gap
    near[rows, labels] = False
    scores[near] += np.where(term[near] < 0, -2 * gap, 2 * gap)
    return scores
