"""Catalog entry of ``initialize`` (``reference/initializers.py``).

One case per initializer of :data:`backends.contract.INITIALIZER_NAMES`.

A random op: its weights are never compared by value but held to the
distribution sanity check :func:`properties.catalog.sanity.initialize_sanity`
(moments within bounds a correct draw leaves with probability below 1e-9), on
at least 2304 weights so that the check can tell a truncated or mis-scaled
distribution.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from backends import contract
from properties import strategies
from properties.catalog.entry import OpInfo, Sample
from properties.catalog.sanity import initialize_sanity

INITIALIZER_HYPER: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "normal": {"std": strategies.optional(strategies.floats(1e-3, 2.0))},
    "he_normal": {"negative_slope": strategies.optional(strategies.floats(0.0, 1.0))},
    "he_uniform": {"negative_slope": strategies.optional(strategies.floats(0.0, 1.0))},
}


@st.composite
def _initialize_samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
    name = variant or "normal"
    if draw(st.booleans()):  # at least 2304 weights (see initialize_sanity)
        shape: tuple[int, ...] = (draw(st.integers(48, 96)), draw(st.integers(48, 96)))
    else:
        shape = (
            draw(st.integers(16, 32)),
            draw(st.integers(16, 32)),
            draw(st.integers(3, 5)),
            draw(st.integers(3, 5)),
        )
    hyper = {"seed": draw(strategies.seeds())} | draw(
        strategies.hyperparameters(**INITIALIZER_HYPER.get(name, {}))
    )
    return Sample((name, shape), hyper)


INITIALIZE = OpInfo(
    name="initialize",
    family="initializer",
    kind="random",
    arguments=("name", "shape"),
    samples=_initialize_samples,
    domain=(
        "(out, in) from 48x48 to 96x96 or (C_out, C_in, kH, kW) from 16x16x3x3 "
        "to 32x32x5x5 (2304 weights or more); any seed"
    ),
    variants=contract.INITIALIZER_NAMES,
    sanity=initialize_sanity,
    takes_dtype=True,
)

ENTRIES: tuple[OpInfo, ...] = (INITIALIZE,)
