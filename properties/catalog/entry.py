"""What one catalog entry is: :class:`Sample` (one drawn input) and :class:`OpInfo`.

The family modules (``activations``, ``layers``, ...) build their entries with
these; :mod:`properties.catalog` assembles them into its ``CATALOG``. The
constants here (families, kinds, where the reference functions live, the
uniform initializers) are the vocabulary of the entries; an optimizer
trajectory's length belongs to its family module
(:data:`properties.catalog.optimizers.TRAJECTORY_STEPS`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from hypothesis import strategies as st

from properties.catalog.bounds import RoundingBound
from reference import initializers as reference_initializers

FAMILIES: tuple[str, ...] = (
    "activation",
    "layer",
    "normalization",
    "loss",
    "penalty",
    "initializer",
    "optimizer",
    "clipping",
)
KINDS: tuple[str, ...] = ("deterministic", "random", "optimizer", "clipping")

#: Where the reference functions live, searched in this order.
REFERENCE_MODULES: tuple[str, ...] = (
    "reference.activations",
    "reference.layers",
    "reference.normalization",
    "reference.losses",
    "reference.initializers",
    "reference.optimizers",
)

#: The uniform initializers (the others draw from a normal distribution),
#: as the reference defines them.
UNIFORM_INITIALIZERS = reference_initializers.UNIFORM_INITIALIZERS


# -- samples -----------------------------------------------------------------


def _round_value(value: Any, dtype: str) -> Any:
    if isinstance(value, np.ndarray) and value.dtype == np.float64:
        return value.astype(dtype).astype(np.float64)
    if isinstance(value, list):
        return [_round_value(item, dtype) for item in value]
    return value


def _describe_value(value: Any) -> str:
    if isinstance(value, np.ndarray):
        text = np.array2string(
            value, separator=", ", floatmode="unique", threshold=1000, max_line_width=88
        )
        return f"array({text}, dtype={value.dtype.name}, shape={value.shape})"
    if isinstance(value, list):
        return "[" + ", ".join(_describe_value(item) for item in value) + "]"
    return repr(value)


def summarize(value: Any) -> str:
    """A one-line summary of an argument: shape and dtype, or the value."""
    if isinstance(value, np.ndarray):
        return f"{value.dtype.name}{list(value.shape)}"
    if isinstance(value, list):
        return "[" + ", ".join(summarize(item) for item in value) + "]"
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        return f"{type(value).__name__}(dtype={dtype}, shape={tuple(shape)})"
    return repr(value)


@dataclass(frozen=True, repr=False)
class Sample:
    """One call of an op: positional arguments, hyperparameters, optimizer steps.

    ``arguments`` are float64 arrays (the differentiable ones), integer labels,
    bool masks, or plain values (an initializer's name, a shape, a list of
    gradients for clipping). ``steps`` holds the gradient of each step of an
    optimizer trajectory.
    """

    arguments: tuple[Any, ...]
    hyper: Mapping[str, Any] = field(default_factory=dict)
    steps: tuple[np.ndarray, ...] = ()

    def rounded(self, dtype: str) -> Sample:
        """The sample with every float64 array rounded through ``dtype``.

        Backend and reference then see the same numbers: the reference computes
        in float64 on the rounded inputs, the backend in ``dtype`` on the same.
        """
        return replace(
            self,
            arguments=tuple(_round_value(a, dtype) for a in self.arguments),
            steps=tuple(_round_value(g, dtype) for g in self.steps),
        )

    def __repr__(self) -> str:
        parts = [f"arguments=({', '.join(map(_describe_value, self.arguments))},)"]
        parts.append(f"hyper={dict(self.hyper)!r}")
        if self.steps:
            parts.append(f"steps=({', '.join(map(_describe_value, self.steps))},)")
        return "Sample(" + ", ".join(parts) + ")"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """Hypothesis prints the falsifying sample with every digit."""
        printer.text(repr(self))


# -- reference lookup --------------------------------------------------------


def reference_function(name: str) -> Callable[..., Any]:
    """The reference function ``name``, from the first module that defines it."""
    problems = []
    for module_name in REFERENCE_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            problems.append(f"{module_name}: {error}")
            continue
        function = getattr(module, name, None)
        if callable(function):
            return function
    detail = f" (import errors: {'; '.join(problems)})" if problems else ""
    raise LookupError(
        f"no reference function {name!r} in {', '.join(REFERENCE_MODULES)}{detail}"
    )


# -- the entry ---------------------------------------------------------------

Sanity = Callable[[Sample, np.ndarray, str, Callable[..., np.ndarray]], list[str]]


@dataclass(frozen=True, repr=False)
class OpInfo:
    """One operation of the contract (see the module docstring).

    Fields
    ------
    name : the contract's forward name (``conv2d``; the backward is
        ``conv2d_backward``).
    family, kind : see :data:`FAMILIES`, :data:`KINDS`.
    arguments : names of the positional arguments, in order.
    samples : ``variant -> strategy of Sample``.
    domain : the inputs drawn, in words (what is excluded and why).
    gradients : one entry per backward output: the argument it is the gradient
        of, or ``None`` where the backward returns ``None`` (labels, masks).
        Empty for the ops without a backward.
    outputs : the names of the forward's outputs (several: a tuple is returned).
    rounding : the rounding bound ``(sample, dout) -> {output: B}`` (see
        :mod:`properties.catalog.bounds`); gradient outputs are named
        ``"d" + argument``. ``None``: elementwise, no bound needed.
    argument_ranges : the closed interval an argument must stay in, for the
        arguments that have one (finite differences step one-sided at its ends).
    variants : the cases each test runs; ``variant`` is the one of this case.
    sanity : for ``random`` ops, ``(sample, result, dtype, rerun) -> problems``,
        ``rerun(**hyper)`` calling the op again with some hyperparameters changed.
    takes_dtype : the op takes a ``dtype`` keyword (``initialize``).
    optimizer : for optimizer steps, the optimizer's name.
    """

    name: str
    family: str
    kind: str
    arguments: tuple[str, ...]
    samples: Callable[[str | None], st.SearchStrategy[Sample]]
    domain: str
    gradients: tuple[str | None, ...] = ()
    outputs: tuple[str, ...] = ("output",)
    rounding: RoundingBound | None = None
    argument_ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    variants: tuple[str, ...] = ()
    variant: str | None = None
    sanity: Sanity | None = None
    takes_dtype: bool = False
    optimizer: str | None = None

    def __repr__(self) -> str:
        return f"OpInfo({self.id!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    @property
    def id(self) -> str:
        """The test id of this case: the name, and the variant if any."""
        return f"{self.name}-{self.variant}" if self.variant else self.name

    @property
    def backward_name(self) -> str | None:
        return f"{self.name}_backward" if self.gradients else None

    @property
    def differentiable(self) -> tuple[str, ...]:
        """The arguments with a gradient."""
        return tuple(g for g in self.gradients if g is not None)

    @property
    def forward(self) -> Callable[..., Any]:
        """The reference forward (for optimizers: the step; for clipping: the clip)."""
        return reference_function(self.name)

    @property
    def backward(self) -> Callable[..., Any] | None:
        """The reference backward, or ``None`` for the ops without one."""
        return reference_function(self.backward_name) if self.backward_name else None

    def cases(self) -> tuple[OpInfo, ...]:
        """One entry per variant (the entry itself when it has none)."""
        if not self.variants:
            return (self,)
        return tuple(replace(self, variant=variant) for variant in self.variants)

    def strategy(self) -> st.SearchStrategy[Sample]:
        """The samples of this case."""
        return self.samples(self.variant)

    def reference_outputs(self, sample: Sample) -> tuple[np.ndarray, ...]:
        """The reference forward on ``sample``, always as a tuple of outputs."""
        result = self.forward(*sample.arguments, **sample.hyper)
        if len(self.outputs) == 1:
            return (np.asarray(result),)
        return tuple(np.asarray(r) for r in result)

    def reference_gradients(
        self, dout: np.ndarray, sample: Sample
    ) -> tuple[np.ndarray | None, ...]:
        """The reference backward on ``sample`` with upstream gradient ``dout``."""
        assert self.backward is not None, f"{self.name} has no backward"
        return tuple(self.backward(dout, *sample.arguments, **sample.hyper))

    def rounding_bounds(
        self, sample: Sample, dout: np.ndarray | None
    ) -> dict[str, Any]:
        """The rounding bounds ``B`` of this sample (empty: elementwise op)."""
        return self.rounding(sample, dout) if self.rounding else {}
