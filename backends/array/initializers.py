"""The weight initializers of the array backend.

Every initializer but zeros draws on the host, in float64, from
``numpy.random.default_rng(seed)``, exactly as the reference does, then rounds
to the requested dtype and moves the result to the device: the same seed gives
the same weights on every backend built on :class:`backends.array.ArrayBackend`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from backends.array.core import Array, ArrayCore
from reference import initializers as reference_initializers
from reference.initializers import UNIFORM_INITIALIZERS

__all__ = ["InitializerOps"]


class InitializerOps(ArrayCore):
    """``initialize``: the reference's draw, rounded to the dtype."""

    def initialize(
        self, name: str, shape: Sequence[int], *, seed: int, dtype: str, **hyper: float
    ) -> Array:
        """Weights drawn on the host by ``numpy.random.default_rng(seed)`` in float64.

        The draw is the reference's, rounded to ``dtype``: the same seed gives
        the same weights on every backend built on this class.
        """
        name, dims, seed, dtype, values = reference_initializers.check_arguments(
            name, shape, seed, dtype, hyper, self.dtypes
        )
        receptive_field = math.prod(dims[2:])
        fan_in, fan_out = dims[1] * receptive_field, dims[0] * receptive_field
        gain = 1.0
        if "negative_slope" in values:
            gain = math.sqrt(2.0 / (1.0 + values["negative_slope"] ** 2))
        scale = {
            "zeros": 0.0,
            "normal": values.get("std", 0.0),
            "uniform_fan_in": 1.0 / math.sqrt(fan_in),
            "lecun_normal": 1.0 / math.sqrt(fan_in),
            "xavier_normal": math.sqrt(2.0 / (fan_in + fan_out)),
            "xavier_uniform": math.sqrt(6.0 / (fan_in + fan_out)),
            "he_normal": gain / math.sqrt(fan_in),
            "he_uniform": gain * math.sqrt(3.0 / fan_in),
        }[name]
        if name == "zeros":
            return self.xp.zeros(dims, dtype=dtype)
        rng = np.random.default_rng(seed)
        if name in UNIFORM_INITIALIZERS:
            draw = rng.uniform(-scale, scale, size=dims)
        else:
            draw = scale * rng.standard_normal(size=dims)
        return self._from_host(draw.astype(dtype))
