"""The op catalog: every operation of the contract described once.

In the spirit of PyTorch's ``OpInfo``, one :class:`OpInfo` entry per forward
operation of :data:`backends.contract.OPERATIONS` says

* which reference functions define it (found by name in the ``reference``
  modules; the backward, where there is one, is a field of the same entry);
* its family and its ``kind``, which tells the generic tests how to drive it:
  ``"deterministic"`` (forward values and every backward output),
  ``"random"`` (``dropout_mask``, ``initialize``: shape, dtype and a
  distributional sanity check, never values), ``"optimizer"`` (a trajectory
  of several steps, the state threaded through) and ``"clipping"``;
* its positional arguments, which of them have a gradient (``gradients``:
  one entry per backward output, the argument's name or ``None`` where the
  backward must return ``None``), and its forward outputs;
* a Hypothesis strategy of :class:`Sample` s (float64 arrays, integer labels,
  bool masks, hyperparameters) that are valid *by construction* and lie in the
  op's domain (``domain`` says which: probabilities in (0, 1), inputs away from
  the kinks of ReLU and abs, no ties in max pooling and maxout, no hinge term
  at its kink, batch-norm channels that are not constant), so that central
  finite differences are valid and float32 and float64 pick the same branch;
* how the comparison tolerances widen with the length of the sums it
  computes (``rounding``, explained in :mod:`properties.catalog.bounds`);
* ``variants`` that must each be exercised (batch norm 1d/2d x train/eval,
  dropout train/eval, the two upsampling modes, each initializer, each
  optimizer's initial state): the tests run one case per variant.

The entries live in one module per family, as ``reference/`` has them:
``activations``, ``layers``, ``normalization``, ``losses`` (penalties too),
``initializers``, ``optimizers`` (clipping too), each op's sample strategy and
rounding bound right above its entry; :mod:`~properties.catalog.sanity` holds
the distribution checks of the random ops. Adding an operation is adding one
entry to its family module's ``ENTRIES``; this module assembles
:data:`CATALOG` from them.
"""

from __future__ import annotations

from properties.catalog import (
    activations,
    initializers,
    layers,
    losses,
    normalization,
    optimizers,
)
from properties.catalog.entry import (
    FAMILIES,
    KINDS,
    REFERENCE_MODULES,
    UNIFORM_INITIALIZERS,
    OpInfo,
    Sample,
    reference_function,
    summarize,
)
from properties.catalog.optimizers import TRAJECTORY_STEPS

__all__ = [
    "BY_NAME",
    "CASES",
    "CATALOG",
    "FAMILIES",
    "KINDS",
    "REFERENCE_MODULES",
    "TRAJECTORY_STEPS",
    "UNIFORM_INITIALIZERS",
    "OpInfo",
    "Sample",
    "cases",
    "reference_function",
    "summarize",
]

#: Every entry, family by family.
CATALOG: tuple[OpInfo, ...] = (
    *activations.ENTRIES,
    *layers.ENTRIES,
    *normalization.ENTRIES,
    *losses.ENTRIES,
    *initializers.ENTRIES,
    *optimizers.ENTRIES,
)

#: The entries by operation name.
BY_NAME: dict[str, OpInfo] = {op.name: op for op in CATALOG}

#: Every case the tests run: one per entry, one per variant where there are any.
CASES: tuple[OpInfo, ...] = tuple(case for op in CATALOG for case in op.cases())


def cases(*kinds: str, differentiable: bool = False) -> tuple[OpInfo, ...]:
    """The cases of the given kinds (all when none), optionally only with a backward."""
    return tuple(
        case
        for case in CASES
        if (not kinds or case.kind in kinds) and (not differentiable or case.gradients)
    )
