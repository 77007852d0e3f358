r"""Weight initializers: the readable reference (NumPy, float64 draws).

``initialize(name, shape, *, seed, dtype="float64", **hyper)`` draws a weight
array for a linear layer, shape ``(out_features, in_features)``, or a conv layer,
shape ``(C_out, C_in, kH, kW)``. The fans are those of ``torch.nn.init``:

.. math::

    \text{fan\_in} = \text{in\_features} \quad\text{or}\quad C_{in} k_H k_W

    \text{fan\_out} = \text{out\_features} \quad\text{or}\quad C_{out} k_H k_W

Every initializer has mean 0. Their scales (a standard deviation :math:`\sigma`
for the normal ones, a bound :math:`a` of :math:`U(-a, a)` for the uniform ones,
whose variance is :math:`a^2 / 3`):

- ``zeros``: every weight 0; variance 0.
- ``normal``: :math:`N(0, \sigma^2)`, ``std`` :math:`\sigma` = 0.01 by default;
  variance :math:`\sigma^2`.
- ``uniform_fan_in``: :math:`a = 1/\sqrt{\text{fan\_in}}`;
  variance :math:`1 / (3\,\text{fan\_in})`.
- ``lecun_normal``: :math:`\sigma = 1/\sqrt{\text{fan\_in}}`;
  variance :math:`1/\text{fan\_in}`.
- ``xavier_normal``: :math:`\sigma = \sqrt{2/(\text{fan\_in}+\text{fan\_out})}`;
  variance :math:`2/(\text{fan\_in}+\text{fan\_out})`.
- ``xavier_uniform``: :math:`a = \sqrt{6/(\text{fan\_in}+\text{fan\_out})}`;
  variance :math:`2/(\text{fan\_in}+\text{fan\_out})`.
- ``he_normal``: :math:`\sigma = g/\sqrt{\text{fan\_in}}`;
  variance :math:`g^2/\text{fan\_in}`.
- ``he_uniform``: :math:`a = g\sqrt{3/\text{fan\_in}}`;
  variance :math:`g^2/\text{fan\_in}`.

with the leaky-ReLU gain :math:`g = \sqrt{2 / (1 + \alpha^2)}`,
:math:`\alpha` = ``negative_slope`` (0 for ReLU, :math:`g = \sqrt 2`), as
``torch.nn.init.kaiming_*`` in fan-in mode.

Sources and corrections to the lecture notes
--------------------------------------------
- Notes 002 ("Weight initialization", ideas 1-4) give ``N(0, sigma)`` small,
  ``Uniform(-1/sqrt(fan-in), 1/sqrt(fan-in))``, Xavier/Glorot and He.
- TYPO in notes 002: the Xavier normal std is written
  :math:`\sigma = \sqrt{2}/(\text{fan\_in}+\text{fan\_out})`; the correct value
  (Glorot & Bengio, 2010) is :math:`\sqrt{2/(\text{fan\_in}+\text{fan\_out})}`.
  Its variance then equals that of the Xavier uniform bound
  :math:`\sqrt{6/(\text{fan\_in}+\text{fan\_out})}`, which the notes give right.
- Notes 001 call ``std = 1/sqrt(Din)`` "Xavier initialization" (cs231n's
  simplification); here it is ``lecun_normal`` (LeCun et al., 1998), and
  ``xavier_*`` use both fans.
- He et al. (2015): notes 002's ``sqrt(2)/sqrt(fan-in)`` and
  ``U(+-sqrt(6)/sqrt(fan-in))`` are the ``negative_slope = 0`` case here.

Randomness comes only from the integer ``seed``: draws are made in float64 by
``numpy.random.default_rng(seed)`` and then rounded to ``dtype``, so a seed
reproduces the array exactly, and the float32 array is the float64 one rounded.

The lecture notes cited as "notes 000" … "notes 004" are described in
``docs/bibliography.md``, with the papers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from reference._checks import (
    ArgumentKindError,
    require_array_fits,
    require_finite,
    require_int,
    require_non_negative,
    require_seed,
)

__all__ = [
    "DTYPES",
    "INITIALIZERS",
    "check_arguments",
    "expected_moments",
    "fans",
    "initialize",
]

#: The initializers of the contract: name -> a short description.
INITIALIZERS: dict[str, str] = {
    "zeros": "all weights 0 (breaks nothing, learns nothing: symmetric neurons)",
    "normal": "N(0, std**2), std = 0.01 by default (notes 002 idea 1, cs231n)",
    "uniform_fan_in": "U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (notes 002 idea 2)",
    "lecun_normal": "N(0, 1/fan_in) (LeCun 1998; the 'Xavier' of notes 001)",
    "xavier_normal": "N(0, 2/(fan_in + fan_out)) (Glorot & Bengio 2010)",
    "xavier_uniform": "U(+-sqrt(6/(fan_in + fan_out))) (Glorot & Bengio 2010)",
    "he_normal": "N(0, gain**2/fan_in), gain = sqrt(2/(1 + negative_slope**2))",
    "he_uniform": "U(+-gain*sqrt(3/fan_in)), gain = sqrt(2/(1 + negative_slope**2))",
}

#: The dtypes an initializer can return.
DTYPES: tuple[str, ...] = ("float32", "float64")

#: The hyperparameters each initializer accepts, with their defaults.
HYPER_DEFAULTS: dict[str, dict[str, float]] = {
    "zeros": {},
    "normal": {"std": 0.01},
    "uniform_fan_in": {},
    "lecun_normal": {},
    "xavier_normal": {},
    "xavier_uniform": {},
    "he_normal": {"negative_slope": 0.0},
    "he_uniform": {"negative_slope": 0.0},
}

#: The initializers that draw from a uniform distribution.
UNIFORM_INITIALIZERS = frozenset({"uniform_fan_in", "xavier_uniform", "he_uniform"})


def _check_name(name: object) -> str:
    if name not in INITIALIZERS:
        raise ValueError(f"name must be one of {', '.join(INITIALIZERS)}, got {name!r}")
    return str(name)


def _check_shape(shape: object) -> tuple[int, ...]:
    """A 2-d or 4-d shape of positive ints whose float64 draw fits in memory."""
    if isinstance(shape, str) or not isinstance(shape, Sequence):
        raise ArgumentKindError(f"shape must be a tuple of 2 or 4 ints, got {shape!r}")
    dims = tuple(shape)
    if len(dims) not in (2, 4):
        raise ValueError(
            "shape must be 2-d (out_features, in_features) or 4-d "
            f"(C_out, C_in, kH, kW), got {dims!r}"
        )
    dims = tuple(require_int("shape", d, minimum=1, maximum=None) for d in dims)
    require_array_fits("shape", dims, 8, f"the float64 draw of shape {dims}")
    return dims


def _check_hyper(name: str, hyper: dict[str, object]) -> dict[str, float]:
    """The hyperparameters of ``name``, defaults filled in, each validated."""
    defaults = HYPER_DEFAULTS[name]
    for key in hyper:
        if key not in defaults:
            accepted = ", ".join(defaults) or "none"
            raise ValueError(
                f"{key} is not a hyperparameter of initializer {name!r} "
                f"(accepted: {accepted})"
            )
    values = {**defaults, **hyper}
    if "std" in values:
        values["std"] = require_non_negative("std", values["std"])
    if "negative_slope" in values:
        values["negative_slope"] = require_finite(
            "negative_slope", values["negative_slope"]
        )
    return values


def check_arguments(
    name: object,
    shape: object,
    seed: object,
    dtype: object,
    hyper: dict[str, object],
    dtypes: Sequence[str] = DTYPES,
) -> tuple[str, tuple[int, ...], int, str, dict[str, float]]:
    """Every argument of :func:`initialize`, checked: the reference's and backends'.

    Returns ``(name, shape, seed, dtype, hyper)`` with the hyperparameters'
    defaults filled in; ``dtypes`` are the dtypes the caller can return.
    """
    name = _check_name(name)
    dims = _check_shape(shape)
    seed = require_seed(seed)
    if dtype not in dtypes:
        raise ValueError(f"dtype must be one of {', '.join(dtypes)}, got {dtype!r}")
    return name, dims, seed, str(dtype), _check_hyper(name, hyper)


def fans(shape: Sequence[int]) -> tuple[int, int]:
    r"""``(fan_in, fan_out)`` of a linear or conv weight shape.

    .. math::

        (\text{fan\_in}, \text{fan\_out}) = (D_{in}, D_{out})
        \quad\text{for}\quad (D_{out}, D_{in})

        (\text{fan\_in}, \text{fan\_out}) = (C_{in} k_H k_W, C_{out} k_H k_W)
        \quad\text{for}\quad (C_{out}, C_{in}, k_H, k_W)

    As ``torch.nn.init._calculate_fan_in_and_fan_out``. Notes 002 draw the same
    idea for one neuron: fan-in = incoming edges, fan-out = outgoing edges.

    Raises
    ------
    ValueError
        If ``shape`` is not a 2-d or 4-d shape of positive ints.
    """
    dims = _check_shape(shape)
    receptive_field = math.prod(dims[2:])
    return dims[1] * receptive_field, dims[0] * receptive_field


def _gain(negative_slope: float) -> float:
    """Leaky-ReLU gain of He et al. (2015): ``sqrt(2 / (1 + a**2))``."""
    return math.sqrt(2.0 / (1.0 + negative_slope**2))


def _scale(name: str, fan_in: int, fan_out: int, hyper: dict[str, float]) -> float:
    """The std (normal initializers) or bound ``a`` of ``U(-a, a)`` (uniform ones)."""
    if name == "zeros":
        return 0.0
    if name == "normal":
        return hyper["std"]
    if name == "uniform_fan_in":
        return 1.0 / math.sqrt(fan_in)
    if name == "lecun_normal":
        return 1.0 / math.sqrt(fan_in)
    if name == "xavier_normal":
        return math.sqrt(2.0 / (fan_in + fan_out))
    if name == "xavier_uniform":
        return math.sqrt(6.0 / (fan_in + fan_out))
    if name == "he_normal":
        return _gain(hyper["negative_slope"]) / math.sqrt(fan_in)
    if name == "he_uniform":
        return _gain(hyper["negative_slope"]) * math.sqrt(3.0 / fan_in)
    raise AssertionError(name)  # unreachable: _check_name ran first


def initialize(
    name: str,
    shape: Sequence[int],
    *,
    seed: int,
    dtype: str = "float64",
    **hyper: float,
) -> np.ndarray:
    r"""Draw an initial weight array.

    .. math::

        W_{ij} \sim N(0, \sigma^2) \quad\text{or}\quad W_{ij} \sim U(-a, a)

    with :math:`\sigma` or :math:`a` from the table in the module docstring.

    Parameters
    ----------
    name : str
        One of :data:`INITIALIZERS`.
    shape : tuple of int
        ``(out_features, in_features)`` or ``(C_out, C_in, kH, kW)``, sizes >= 1.
    seed : int
        Non-negative integer; the only source of randomness
        (``numpy.random.default_rng(seed)``).
    dtype : {"float64", "float32"}, default "float64"
        Dtype of the result; the draw is made in float64 and rounded.
    **hyper
        ``std`` (>= 0, default 0.01) for ``normal``; ``negative_slope``
        (default 0.0) for ``he_normal`` and ``he_uniform``. Nothing else.

    Returns
    -------
    w : ndarray of shape ``shape`` and dtype ``dtype``

    Raises
    ------
    ValueError
        Naming ``name``, ``shape``, ``seed``, ``dtype`` or the hyperparameter
        when it is unknown or invalid (an unknown name, a 3-d shape, a float or
        bool seed, ``std < 0``, a hyperparameter the initializer does not take).
    """
    name, dims, seed, dtype, values = check_arguments(name, shape, seed, dtype, hyper)
    fan_in, fan_out = fans(dims)
    scale = _scale(name, fan_in, fan_out, values)
    rng = np.random.default_rng(int(seed))
    if name == "zeros":
        draw = np.zeros(dims)
    elif name in UNIFORM_INITIALIZERS:
        draw = rng.uniform(-scale, scale, size=dims)
    else:
        draw = scale * rng.standard_normal(size=dims)
    return draw.astype(dtype)


def expected_moments(
    name: str, shape: Sequence[int], **hyper: float
) -> tuple[float, float]:
    r"""Mean and variance of the distribution ``initialize`` draws each weight from.

    .. math::

        \mathrm{E}[W] = 0

        \mathrm{Var}[W] = \sigma^2 \quad (N(0, \sigma^2))

        \mathrm{Var}[W] = a^2 / 3 \quad (U(-a, a))

    The formula's variance, not a sample variance: a property compares the sample
    variance of a draw against it within a statistical bound.

    Raises
    ------
    ValueError
        As :func:`initialize`, for ``name``, ``shape`` and the hyperparameters.
    """
    name = _check_name(name)
    dims = _check_shape(shape)
    values = _check_hyper(name, hyper)
    fan_in, fan_out = fans(dims)
    scale = _scale(name, fan_in, fan_out, values)
    if name in UNIFORM_INITIALIZERS:
        return 0.0, scale**2 / 3.0
    return 0.0, scale**2
