"""Catalog entries of the activations (``reference/activations.py``).

Every activation is elementwise: no sums, so no rounding bound (a few ulps,
inside ``rtol``), except PReLU's ``dalpha``, which sums over every position
that shares a slope. An elementwise ``f(x, **hyper)`` with
``f_backward(dout, x, **hyper) -> (dx,)`` is one :func:`elementwise` line in
:data:`ENTRIES`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import strategies as st

from properties import strategies
from properties.catalog.entry import OpInfo, Sample

#: The domain of the ops drawn with ``kink=True`` (see :func:`elementwise_samples`).
AWAY_FROM_KINK = "inputs at least 1e-3 from the kink at 0"


def elementwise_samples(
    *, low: float = -6.0, high: float = 6.0, kink: bool = False, **hyper: Any
) -> Callable[[str | None], st.SearchStrategy[Sample]]:
    """Samples of an elementwise activation: any small shape, values in [low, high].

    ``kink``: keep every value at least 1e-3 from 0, where the derivative
    jumps (finite differences across it are meaningless). ``hyper``: a
    strategy per hyperparameter (``s.optional`` ones may be left out).
    """

    @st.composite
    def samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
        x = draw(
            strategies.arrays(
                draw(strategies.shapes(max_dims=4, max_side=3)), low, high
            )
        )
        if kink:
            x = strategies.away_from(x)
        return Sample((x,), draw(strategies.hyperparameters(**hyper)))

    return samples


def elementwise(
    name: str,
    samples: Callable[[str | None], st.SearchStrategy[Sample]],
    domain: str,
) -> OpInfo:
    """An elementwise activation ``f(x, **hyper)`` with ``f_backward -> (dx,)``."""
    return OpInfo(
        name=name,
        family="activation",
        kind="deterministic",
        arguments=("x",),
        gradients=("x",),
        samples=samples,
        domain=domain,
    )


# -- prelu: a learned slope per channel (or one shared) ----------------------


@st.composite
def _prelu_samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
    shape = draw(strategies.shapes(min_dims=2, max_dims=4, max_side=3))
    x = strategies.away_from(draw(strategies.arrays(shape, -6.0, 6.0)))
    channels = draw(st.sampled_from([(1,), (shape[1],)]))
    alpha = draw(strategies.arrays(channels, -1.0, 1.0))
    return Sample((x, alpha))


def _prelu_rounding(sample: Sample, dout: np.ndarray | None) -> dict[str, Any]:
    """``dalpha`` sums ``dout * x`` over every position sharing the slope."""
    if dout is None:
        return {}
    x, alpha = sample.arguments
    products = np.abs(dout * x)
    if alpha.shape == (1,):
        return {"dalpha": x.size * products.sum(keepdims=True).reshape(1)}
    axes = tuple(axis for axis in range(x.ndim) if axis != 1)
    return {"dalpha": (x.size // x.shape[1]) * products.sum(axis=axes)}


PRELU = OpInfo(
    name="prelu",
    family="activation",
    kind="deterministic",
    arguments=("x", "alpha"),
    gradients=("x", "alpha"),
    samples=_prelu_samples,
    domain=AWAY_FROM_KINK + "; x has 2 to 4 axes, alpha (1,) or (C,) in [-1, 1]",
    rounding=_prelu_rounding,
)


# -- gelu: the exact form and the tanh approximation ------------------------

GELU_APPROXIMATIONS = ("none", "tanh")


@st.composite
def _gelu_samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
    (x,) = draw(elementwise_samples()()).arguments
    return Sample((x,), {"approximate": variant or "none"})


GELU = OpInfo(
    name="gelu",
    family="activation",
    kind="deterministic",
    arguments=("x",),
    gradients=("x",),
    samples=_gelu_samples,
    domain="x in [-6, 6]",
    variants=GELU_APPROXIMATIONS,
)


ENTRIES: tuple[OpInfo, ...] = (
    elementwise("relu", elementwise_samples(kink=True), AWAY_FROM_KINK),
    elementwise(
        "leaky_relu",
        elementwise_samples(
            kink=True, alpha=strategies.optional(strategies.floats(0.0, 0.5))
        ),
        AWAY_FROM_KINK + "; alpha in [0, 0.5] or default",
    ),
    PRELU,
    elementwise(
        "elu",
        elementwise_samples(
            kink=True, alpha=strategies.optional(strategies.floats(0.05, 2.0))
        ),
        AWAY_FROM_KINK
        + " (the derivative jumps there unless alpha = 1); alpha in [0.05, 2]",
    ),
    elementwise("selu", elementwise_samples(kink=True), AWAY_FROM_KINK),
    elementwise("sigmoid", elementwise_samples(), "x in [-6, 6]"),
    elementwise("tanh", elementwise_samples(), "x in [-6, 6]"),
    elementwise("softplus", elementwise_samples(), "x in [-6, 6]"),
    elementwise("abs_rectify", elementwise_samples(kink=True), AWAY_FROM_KINK),
    GELU,
    elementwise("silu", elementwise_samples(), "x in [-6, 6]"),
)

#: The elementwise activations ``f(x, **hyper)``, for the tests that call each
#: one on a fixed input.
ELEMENTWISE: tuple[str, ...] = tuple(
    op.name for op in ENTRIES if op.arguments == ("x",)
)
