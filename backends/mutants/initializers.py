"""Initializer mutants: the NumPy backend with one initializer's scale wrong.

Each draws from the same generator as the correct initializer and rescales
the draw, so only the standard deviation (or the bound) is off.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from backends.numpy_backend import NumpyBackend

__all__ = ["HeNormalWithoutGain", "UniformBoundFromNormalStd", "XavierNormalNotesTypo"]


def _fans(shape: Sequence[int]) -> tuple[int, int]:
    dims = tuple(int(d) for d in shape)
    receptive_field = math.prod(dims[2:])
    return dims[1] * receptive_field, dims[0] * receptive_field


class XavierNormalNotesTypo(NumpyBackend):
    """xavier_normal draws with std ``sqrt(2) / (fan_in + fan_out)``: the notes' typo.

    The bug: the lecture notes print the Glorot normal standard deviation as
    ``sqrt(2) / (n_in + n_out)``; the formula is ``sqrt(2 / (n_in + n_out))``.
    Copied literally, the std is ``sqrt(fan_in + fan_out)`` times too small (8x
    for a 32x32 layer) and a deep tanh stack's activations vanish.

    Caught by: variance (the sample variance of ``xavier_normal`` against its
    formula; the Xavier/tanh deep stack) and agreement (the catalog's sanity
    check of ``initialize``'s sample standard deviation).
    """

    name = "mutant-init-xavier-normal-notes-typo"
    family = "initializers"
    expected_killers = ("variance", "agreement")

    @staticmethod
    def live_call(backend: NumpyBackend) -> Any:
        return backend.initialize("xavier_normal", (8, 8), seed=1, dtype="float64")

    def initialize(
        self, name: str, shape: Sequence[int], *, seed: int, dtype: str, **hyper: float
    ) -> Any:
        w = super().initialize(name, shape, seed=seed, dtype=dtype, **hyper)
        if name != "xavier_normal":
            return w
        fan_in, fan_out = _fans(shape)
        # sqrt(2) / (fi + fo) = sqrt(2 / (fi + fo)) / sqrt(fi + fo)
        return w * (1.0 / math.sqrt(fan_in + fan_out))


class HeNormalWithoutGain(NumpyBackend):
    """he_normal draws with std ``1 / sqrt(fan_in)``: the ReLU gain sqrt(2) is lost.

    The bug: the standard deviation off by a constant, LeCun's initialization
    under He's name (a gain of 1 for ReLU, as ``nn.init.kaiming_normal_`` with
    ``nonlinearity="linear"``): each ReLU layer halves the activation variance,
    which vanishes as 2^-L through a deep stack.

    Caught by: variance (the sample variance of ``he_normal``; the He/ReLU deep
    stack's forward variance collapses) and agreement (the catalog's sanity
    check of ``initialize``'s sample standard deviation).
    """

    name = "mutant-init-he-normal-no-gain"
    family = "initializers"
    expected_killers = ("variance", "agreement")

    @staticmethod
    def live_call(backend: NumpyBackend) -> Any:
        return backend.initialize("he_normal", (8, 8), seed=1, dtype="float64")

    def initialize(
        self, name: str, shape: Sequence[int], *, seed: int, dtype: str, **hyper: float
    ) -> Any:
        w = super().initialize(name, shape, seed=seed, dtype=dtype, **hyper)
        if name != "he_normal":
            return w
        return super().initialize("lecun_normal", shape, seed=seed, dtype=dtype)


class UniformBoundFromNormalStd(NumpyBackend):
    """xavier_uniform draws from U(±sqrt(2 / (fan_in + fan_out))): the std as the bound.

    The bug: the normal initializer's standard deviation used as the uniform
    bound, forgetting that U(-a, a) has variance a^2 / 3; the Glorot bound is
    ``sqrt(6 / (fan_in + fan_out))``. The variance is 3 times too small.

    Caught by: variance (the sample variance of ``xavier_uniform`` against its
    formula) and agreement (the catalog's sanity check of ``initialize``'s
    sample standard deviation).
    """

    name = "mutant-init-xavier-uniform-bound-as-std"
    family = "initializers"
    expected_killers = ("variance", "agreement")

    @staticmethod
    def live_call(backend: NumpyBackend) -> Any:
        return backend.initialize("xavier_uniform", (8, 8), seed=1, dtype="float64")

    def initialize(
        self, name: str, shape: Sequence[int], *, seed: int, dtype: str, **hyper: float
    ) -> Any:
        w = super().initialize(name, shape, seed=seed, dtype=dtype, **hyper)
        if name != "xavier_uniform":
            return w
        return w * (1.0 / math.sqrt(3.0))


xavier_normal_notes_typo = XavierNormalNotesTypo()
he_normal_no_gain = HeNormalWithoutGain()
xavier_uniform_bound_as_std = UniformBoundFromNormalStd()
