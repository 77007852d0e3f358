"""Distribution mutants: the right moments, the wrong shape.

Each draws from a distribution whose mean (and, where said, variance) is the
contract's, so the moment checks pass; only a test of the distribution's
shape (``properties/test_variance.py``, ``properties/test_dropout.py``:
Kolmogorov tests with the DKW bound) tells them apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from backends.numpy_backend import NumpyBackend
from reference.initializers import expected_moments

__all__ = [
    "DropoutMaskFixedCountPerRow",
    "NormalTruncatedAtTwoSigma",
    "NormalTruncatedRescaled",
]

#: The variance of N(0, 1) truncated to [-2, 2].
TRUNCATED_VARIANCE = 1.0 - 4.0 * math.exp(-2.0) / math.sqrt(2.0 * math.pi) / math.erf(
    2.0 / math.sqrt(2.0)
)

NORMAL_INITIALIZERS = frozenset(
    {"normal", "lecun_normal", "xavier_normal", "he_normal"}
)


def _truncated_normal(seed: int, size: int) -> np.ndarray:
    """``size`` draws of N(0, 1) conditioned on ``|z| <= 2`` (by rejection)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(size)
    outside = np.abs(z) > 2.0
    while outside.any():
        z[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(z) > 2.0
    return z


def _truncated_like(
    w: np.ndarray, name: str, seed: int, hyper: dict[str, float], *, rescale: bool
) -> np.ndarray:
    """A 2-std-truncated normal draw in place of the normal draw ``w``."""
    if name not in NORMAL_INITIALIZERS:
        return w
    _, variance = expected_moments(name, tuple(w.shape), **hyper)
    std = math.sqrt(variance / (TRUNCATED_VARIANCE if rescale else 1.0))
    z = _truncated_normal(seed, w.size).reshape(w.shape)
    return (z * std).astype(w.dtype)


class NormalTruncatedAtTwoSigma(NumpyBackend):
    """The normal initializers draw from N(0, std^2) truncated at 2 std, not rescaled.

    The bug: ``trunc_normal_(std=s, a=-2s, b=2s)`` (TensorFlow's
    ``truncated_normal``) where the contract says normal: the variance is
    0.774 std^2, the tails are gone.

    Caught by: variance (the distribution's Kolmogorov test; the mean square
    on large draws) and agreement (the catalog's mean-square check on at
    least 2304 weights).
    """

    name = "mutant-init-normal-truncated"
    family = "initializers"
    expected_killers = ("variance", "agreement")

    @staticmethod
    def live_call(backend: NumpyBackend) -> Any:
        return backend.initialize("he_normal", (64, 64), seed=1, dtype="float64")

    def initialize(
        self, name: str, shape: Sequence[int], *, seed: int, dtype: str, **hyper: float
    ) -> Any:
        w = super().initialize(name, shape, seed=seed, dtype=dtype, **hyper)
        return _truncated_like(w, name, seed, hyper, rescale=False)


class NormalTruncatedRescaled(NumpyBackend):
    """The normal initializers draw a 2-std-truncated normal rescaled to the variance.

    The bug: a truncated normal with its std corrected (Keras'
    ``TruncatedNormal`` variance scaling): mean and variance are the
    contract's, but no weight exceeds 2.27 std (torch's reach 4.5 std in
    65,536 draws). Every moment check passes.

    Caught by: variance (the distribution's Kolmogorov test only).
    """

    name = "mutant-init-normal-truncated-rescaled"
    family = "initializers"
    expected_killers = ("variance",)

    @staticmethod
    def live_call(backend: NumpyBackend) -> Any:
        return backend.initialize("he_normal", (64, 64), seed=1, dtype="float64")

    def initialize(
        self, name: str, shape: Sequence[int], *, seed: int, dtype: str, **hyper: float
    ) -> Any:
        w = super().initialize(name, shape, seed=seed, dtype=dtype, **hyper)
        return _truncated_like(w, name, seed, hyper, rescale=True)


class DropoutMaskFixedCountPerRow(NumpyBackend):
    """dropout_mask keeps exactly ``round((1 - p) C)`` units in each row of ``C``.

    The bug: a shuffled fixed count per row (a random permutation, the first
    ``k`` kept) instead of independent units: the keep rate is right, the
    total count passes a binomial test, but no row deviates from ``k``.

    Caught by: dropout (each row's count against Binomial(C, 1 - p)).
    """

    name = "mutant-dropout-mask-fixed-count-per-row"
    family = "dropout"
    expected_killers = ("dropout",)

    @staticmethod
    def live_call(backend: NumpyBackend) -> Any:
        return backend.dropout_mask((64, 8), p=0.5, seed=1)

    def dropout_mask(self, shape: Any, *, p: float, seed: int) -> Any:
        mask = super().dropout_mask(shape, p=p, seed=seed)
        if mask.ndim == 0 or mask.size == 0:
            return mask
        units = mask.shape[-1]
        rows = mask.reshape(-1, units)
        kept = round((1.0 - p) * units)
        order = np.argsort(np.random.default_rng(seed).random(rows.shape), axis=1)
        fixed = np.zeros(rows.shape, dtype=bool)
        np.put_along_axis(fixed, order[:, :kept], True, axis=1)
        return fixed.reshape(mask.shape)


normal_truncated = NormalTruncatedAtTwoSigma()
normal_truncated_rescaled = NormalTruncatedRescaled()
dropout_mask_fixed_count_per_row = DropoutMaskFixedCountPerRow()
