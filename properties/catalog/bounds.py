"""Rounding-error bounds: how much the comparison tolerance widens for an op's sums.

The comparisons (``properties/assertions.py``) accept

    ``|actual - expected| <= atol + rtol |expected| + 2 u B``

with the dtype's ``rtol`` and ``atol`` and its unit roundoff ``u`` (all from
``properties/tolerance.py``) and ``B = entry.rounding(sample, dout)[output]``:
a bound, elementwise or scalar, on ``n * sum(|terms|)`` over the longest sum
(of ``n`` terms) that the output involves. ``n u sum|terms|`` is the classical
bound on the rounding error of any summation order (Higham, *Accuracy and
Stability of Numerical Algorithms*, 2nd ed., eq. (4.4)), so a backend may sum
sequentially, pairwise, blocked or in a BLAS kernel and still pass.

Elementwise outputs have no rounding bound (``B = 0``): a few ulps, inside
``rtol``. The others get theirs from one of two places:

* multilinear ops (linear, conv2d, pooling, upsampling) exactly, by running the
  reference on absolute values (:func:`by_absolute_values`);
* the rest from the formula written beside the op's entry in its family module
  (``properties/catalog/layers.py``, ``losses.py``, ``normalization.py``, ...),
  the losses with :func:`same_sign_sum_bound`.

A bound names its outputs as the entry does: the forward's outputs by their
names (``"output"`` for a single one), the gradients ``"d" + argument``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from properties.catalog import Sample

#: An op's rounding bound: ``(sample, dout) -> {output name: B}``; ``dout`` is
#: ``None`` when only the forward is compared.
RoundingBound = Callable[["Sample", "np.ndarray | None"], dict[str, Any]]


def _absolute_floats(value: Any) -> Any:
    """``|value|`` for a float64 array; anything else (labels, masks) unchanged."""
    if isinstance(value, np.ndarray) and value.dtype == np.float64:
        return np.abs(value)
    return value


def by_absolute_values(
    forward: Callable[..., Any],
    backward: Callable[..., tuple[Any, ...]],
    gradients: tuple[str, ...],
    lengths: Callable[[Sample], Mapping[str, int]],
    *,
    absolute: tuple[bool, ...] | None = None,
) -> RoundingBound:
    """``B`` of an op linear in each float argument (conv, linear, pooling...).

    Running the reference ``forward`` and ``backward`` on absolute values gives,
    for every output element, exactly ``sum(|terms|)`` of the sum that computes
    it (the terms are products of the arguments); ``lengths(sample)`` gives
    each output's ``n`` (an output it leaves out gets no bound). ``gradients``
    names the backward's outputs in order (the arguments they are the
    gradients of). ``absolute[i]`` False keeps argument ``i`` as drawn (max
    pooling's input: it selects, it is not summed).
    """

    def rounding(sample: Sample, dout: np.ndarray | None) -> dict[str, Any]:
        n = lengths(sample)
        arguments = tuple(
            _absolute_floats(a) if absolute is None or absolute[i] else a
            for i, a in enumerate(sample.arguments)
        )
        bounds: dict[str, Any] = {}
        if n.get("output"):
            bounds["output"] = n["output"] * np.abs(forward(*arguments, **sample.hyper))
        if dout is not None:
            results = backward(np.abs(dout), *arguments, **sample.hyper)
            for argument, gradient in zip(gradients, results, strict=True):
                key = f"d{argument}"
                if n.get(key):
                    bounds[key] = n[key] * np.abs(gradient)
        return bounds

    return rounding


def same_sign_sum_bound(
    total: np.ndarray | float, count: int, term_errors: float | np.ndarray = 0.0
) -> Any:
    """``B`` of a sum of ``count`` terms of one sign: a loss or a penalty.

    The terms share a sign, so ``sum(|terms|) = |total|``: the summation's
    bound is ``count |total|``, and the ``+ 2`` covers the roundings after it
    (dividing by the batch size, a scaling). ``term_errors`` adds the errors of
    the terms themselves (a log, an exp), bounded beside each op's entry.
    """
    return (count + 2) * np.abs(total) + np.sum(term_errors)
