"""Catalog entries of the optimizers and clipping (``reference/optimizers.py``).

``init_state`` has one case per optimizer, each ``<name>_step`` an entry of its
own; both are run as a trajectory of :data:`TRAJECTORY_STEPS` steps, the state
threaded through (``test_optimizers.py`` compares the steps' trajectories
with the reference's, step by step).
The hyperparameter strategies (:data:`OPTIMIZER_HYPER`) draw the forms that
need covering first (momentum, Nesterov, weight decay), and
:func:`optimizer_hyper` tallies every draw for ``--nnspec-coverage``.
``clip_grad_norm`` clips a list of gradients by their global norm.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import strategies as st

from backends import contract
from properties import draws, strategies
from properties.catalog.entry import OpInfo, Sample

#: Steps of an optimizer trajectory: enough for a wrong accumulator or bias
#: correction to compound well past the first few steps, and at least 3, so
#: that a momentum buffer or an accumulator is read after it was written.
TRAJECTORY_STEPS = 50

# -- init_state and the steps ------------------------------------------------


def _weight_decay() -> st.SearchStrategy[Any]:
    """In [1e-3, 0.1] (a decay whose effect shows), left out, or exactly 0.

    ``floats(0, 0.1)`` would mostly draw values like 1e-300, indistinguishable
    from 0 within any tolerance. The decay comes first: Hypothesis prefers the
    first branch in a derandomized run, and decay is what needs covering.
    """
    return st.one_of(
        strategies.floats(1e-3, 0.1), st.just(strategies.OMITTED), st.just(0.0)
    )


def adam_moments(
    eps_low: float = 1e-8, eps_high: float = 1e-4
) -> dict[str, st.SearchStrategy[Any]]:
    """Strategies of Adam's ``beta1``, ``beta2`` and ``eps``, each drawn or omitted.

    For :func:`properties.strategies.hyperparameters`; ``eps`` in
    ``[eps_low, eps_high]``.
    """
    return {
        "beta1": strategies.optional(strategies.floats(0.0, 0.99)),
        "beta2": strategies.optional(strategies.floats(0.9, 0.9999)),
        "eps": strategies.optional(strategies.floats(eps_low, eps_high)),
    }


def _adam_hyper(lr: st.SearchStrategy[Any]) -> st.SearchStrategy[dict]:
    """Adam's and AdamW's hyperparameters, ``lr`` drawn by ``lr``; decay first."""
    return strategies.hyperparameters(
        lr=lr, **adam_moments(), weight_decay=_weight_decay()
    )


OPTIMIZER_HYPER: dict[str, Callable[[], st.SearchStrategy[dict]]] = {
    "adagrad": lambda: strategies.hyperparameters(
        lr=strategies.floats(1e-3, 1.0),
        eps=strategies.optional(strategies.floats(1e-10, 1e-6)),
    ),
    "rmsprop": lambda: strategies.hyperparameters(
        lr=strategies.floats(1e-3, 1.0),
        alpha=strategies.optional(strategies.floats(0.5, 0.999)),
        eps=strategies.optional(strategies.floats(1e-8, 1e-4)),
    ),
    "adadelta": lambda: strategies.hyperparameters(
        lr=strategies.optional(strategies.floats(0.1, 2.0)),
        rho=strategies.optional(strategies.floats(0.5, 0.99)),
        eps=strategies.optional(strategies.floats(1e-6, 1e-3)),
    ),
    "adam": lambda: _adam_hyper(strategies.floats(1e-4, 1.0)),
    # AdamW's lr has a default (1e-3), and so has its decay (1e-2): an omitted
    # weight_decay still decays.
    "adamw": lambda: _adam_hyper(
        st.one_of(strategies.floats(1e-4, 1.0), st.just(strategies.OMITTED))
    ),
}


#: The SGD forms, in Hypothesis' order of preference: the first is what the
#: simplest examples (and a shrunk counterexample) use, and in a derandomized
#: run it is drawn more often than the others, so the forms that need
#: covering come first and plain SGD, the special case of both, last.
SGD_FORMS: tuple[str, ...] = ("momentum", "nesterov", "plain")


@st.composite
def _sgd_hyper(draw: st.DrawFn) -> dict[str, Any]:
    """SGD's hyperparameters: plain, heavy-ball momentum or Nesterov, each with decay.

    The form is drawn first, so each appears in about a third of the
    examples; momentum, where there is some, is at least 0.1 (a smaller one
    changes a short trajectory by less than the tolerance, so a wrong
    Nesterov or momentum formula would pass); ``plain`` leaves momentum out or
    sets it to exactly 0. Weight decay is drawn independently of the form
    (:func:`_weight_decay`), so momentum with decay is common.
    """
    form = draw(st.sampled_from(SGD_FORMS))
    hyper: dict[str, Any] = {"lr": draw(strategies.floats(1e-3, 1.0))}
    if form == "plain":
        momentum = draw(st.one_of(st.just(strategies.OMITTED), st.just(0.0)))
        if momentum is not strategies.OMITTED:
            hyper["momentum"] = momentum
            if draw(st.booleans()):
                hyper["nesterov"] = False
    else:
        hyper["momentum"] = draw(strategies.floats(0.1, 0.95))
        if form == "nesterov":
            hyper["nesterov"] = True
        elif draw(st.booleans()):
            hyper["nesterov"] = False
    weight_decay = draw(_weight_decay())
    if weight_decay is not strategies.OMITTED:
        hyper["weight_decay"] = weight_decay
    return hyper


OPTIMIZER_HYPER["sgd"] = _sgd_hyper


def optimizer_hyper(name: str) -> st.SearchStrategy[dict[str, Any]]:
    """The hyperparameters of optimizer ``name``, each draw counted for coverage.

    :mod:`properties.draws` tallies them by category (Nesterov with momentum,
    momentum with weight decay, ...) for ``--nnspec-coverage``.
    """
    return OPTIMIZER_HYPER[name]().map(lambda hyper: draws.record(name, hyper))


@st.composite
def _trajectory(draw: st.DrawFn, name: str) -> Sample:
    """A parameter, :data:`TRAJECTORY_STEPS` gradients and ``name``'s hyperparameters.

    The gradients are one drawn ``(TRAJECTORY_STEPS, *shape)`` array with
    values in [-3, 3] (element by element or from a seeded generator), with
    some steps set to exact zeros (a parameter that gets no gradient for a
    while) and some scaled to 1e-4 (squared averages small enough for ``eps``
    to matter, where ``sqrt(v) + eps`` and ``sqrt(v + eps)`` differ).
    """
    shape = draw(strategies.shapes(max_dims=2, max_side=4))
    grads = draw(strategies.arrays((TRAJECTORY_STEPS, *shape)))
    every_step = st.integers(0, TRAJECTORY_STEPS - 1)
    for step in draw(st.sets(every_step, max_size=TRAJECTORY_STEPS // 5)):
        grads[step] = 0.0
    for step in draw(st.sets(every_step, max_size=TRAJECTORY_STEPS // 2)):
        grads[step] *= 1e-4
    param = draw(strategies.arrays(shape))
    return Sample((param,), draw(optimizer_hyper(name)), tuple(grads))


def _optimizer_samples(fixed: str | None):
    def samples(variant: str | None = None) -> st.SearchStrategy[Sample]:
        return _trajectory(fixed or variant or "sgd")

    return samples


INIT_STATE = OpInfo(
    name="init_state",
    family="optimizer",
    kind="optimizer",
    arguments=("param",),
    samples=_optimizer_samples(None),
    domain="each optimizer's initial state, checked by the steps taken from it",
    variants=contract.OPTIMIZER_NAMES,
)

STEPS: tuple[OpInfo, ...] = tuple(
    OpInfo(
        name=f"{name}_step",
        family="optimizer",
        kind="optimizer",
        arguments=("param",),
        samples=_optimizer_samples(name),
        domain=(
            f"{TRAJECTORY_STEPS} steps, params and gradients in [-3, 3] (zero "
            "and ~1e-4 gradients too), hyperparameters drawn or default"
        ),
        optimizer=name,
    )
    for name in contract.OPTIMIZER_NAMES
)


# -- clip_grad_norm ----------------------------------------------------------


#: Powers of ten of the gradients' scale: ordinary ones, and exploding ones
#: (1e20, 1e30: their squares overflow float32, not float64), the case
#: clipping exists for.
CLIPPING_SCALES = st.one_of(st.integers(-4, 3), st.sampled_from([20, 30]))


@st.composite
def _clip_samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
    """1 to 3 gradients at a scale from 1e-4 to 1e3, or 1e20 or 1e30.

    ``max_norm`` is 0.1 to 0.95 or 1.05 to 3 times their global norm, so
    both regimes (clipped, untouched) occur and rounding never decides which.
    """
    count = draw(st.integers(1, 3))
    scale = 10.0 ** draw(CLIPPING_SCALES)
    grads = [
        scale * draw(strategies.arrays(draw(strategies.shapes(max_dims=3, max_side=4))))
        for _ in range(count)
    ]
    total = math.sqrt(sum(float(np.sum(g**2)) for g in grads))
    factor = draw(st.one_of(strategies.floats(0.1, 0.95), strategies.floats(1.05, 3.0)))
    max_norm = factor * total if total > 0 else factor
    return Sample((grads,), {"max_norm": max_norm})


CLIP_GRAD_NORM = OpInfo(
    name="clip_grad_norm",
    family="clipping",
    kind="clipping",
    arguments=("grads",),
    samples=_clip_samples,
    domain=(
        "1 to 3 gradients at a scale of 1e-4 to 1e3, 1e20 or 1e30; max_norm "
        "0.1 to 0.95 or 1.05 to 3 times their global norm"
    ),
)

ENTRIES: tuple[OpInfo, ...] = (INIT_STATE, *STEPS, CLIP_GRAD_NORM)
