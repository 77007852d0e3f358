"""Initializers on torch: ``torch.nn.init`` with a seeded ``torch.Generator``.

Every initializer fills a fresh tensor through ``torch.nn.init``, its only
randomness a ``torch.Generator`` on the backend's device seeded by ``seed``.
torch computes fans as the contract does; the comment at each call says which
torch arguments give the contract's distribution.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from backends.torch.core import Tensor, TorchCore, torch
from reference import initializers


class Initializers(TorchCore):
    """initialize."""

    def initialize(
        self,
        name: str,
        shape: Sequence[int],
        *,
        seed: int,
        dtype: str = "float64",
        **hyper: float,
    ) -> Tensor:
        """``torch.nn.init`` on a fresh tensor, randomness from ``seed`` only.

        torch's fans (``_calculate_fan_in_and_fan_out``) are the contract's:
        ``fan_in = shape[1] * kH * kW`` and ``fan_out = shape[0] * kH * kW``.
        """
        name, dims, seed, dtype, values = initializers.check_arguments(
            name, shape, seed, dtype, hyper, self.dtypes
        )
        generator = self._generator(seed)
        tensor = torch.empty(
            dims,
            dtype=getattr(torch, dtype),
            device=self._torch_device,
        )
        init = torch.nn.init
        if name == "zeros":
            init.zeros_(tensor)
        elif name == "normal":
            std = values["std"]
            init.normal_(tensor, mean=0.0, std=std, generator=generator)
        elif name == "uniform_fan_in":
            # torch's own default for nn.Linear and nn.Conv2d: kaiming_uniform_
            # with a = sqrt(5) has gain sqrt(2 / (1 + 5)) = sqrt(1/3), so its bound
            # gain * sqrt(3 / fan_in) is 1 / sqrt(fan_in), the contract's.
            init.kaiming_uniform_(tensor, a=math.sqrt(5), generator=generator)
        elif name == "lecun_normal":
            # gain 1 ("linear"), std = 1 / sqrt(fan_in).
            init.kaiming_normal_(
                tensor, mode="fan_in", nonlinearity="linear", generator=generator
            )
        elif name == "xavier_normal":
            # std = gain * sqrt(2 / (fan_in + fan_out)) with gain 1.
            init.xavier_normal_(tensor, gain=1.0, generator=generator)
        elif name == "xavier_uniform":
            # bound = gain * sqrt(3) * sqrt(2 / (fan_in + fan_out)) with gain 1,
            # i.e. sqrt(6 / (fan_in + fan_out)).
            init.xavier_uniform_(tensor, gain=1.0, generator=generator)
        else:
            # torch's leaky_relu gain is sqrt(2 / (1 + a**2)), the contract's; a
            # float a is always passed, since a=None would mean torch's 0.01.
            slope = values["negative_slope"]
            if name == "he_normal":
                # std = gain / sqrt(fan_in)
                init.kaiming_normal_(
                    tensor,
                    a=slope,
                    mode="fan_in",
                    nonlinearity="leaky_relu",
                    generator=generator,
                )
            else:
                # bound = gain * sqrt(3 / fan_in)
                init.kaiming_uniform_(
                    tensor,
                    a=slope,
                    mode="fan_in",
                    nonlinearity="leaky_relu",
                    generator=generator,
                )
        return tensor
