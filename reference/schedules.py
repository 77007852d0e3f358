r"""Learning-rate schedules: the readable reference.

Each schedule is a pure function ``name(step, *, lr0, ...) -> float`` giving the
learning rate :math:`\eta_t` to use at step (or epoch) :math:`t = ` ``step``,
counted from 0, with :math:`\eta_0 = ` ``lr0``. The caller decides whether a step
is an iteration or an epoch.

Sources
-------
Notes 001 ("Learning rate decay") only point to the slides (pages 98-103 of the
cs231n lecture "Training Neural Networks"); notes 002 use a constant
:math:`\eta` throughout (and Adagrad's per-weight decay). The formulas below are
those of cs231n (course notes "Neural Networks Part 3: annealing the learning
rate" and the lecture slides) and of ``torch.optim.lr_scheduler``:

- step decay: ``StepLR``;
- exponential decay :math:`\eta_0 e^{-kt}`: ``ExponentialLR`` with
  :math:`\gamma = e^{-k}`;
- 1/t decay :math:`\eta_0 / (1 + kt)`: cs231n (torch has no closed form of it);
- cosine annealing: ``CosineAnnealingLR`` (Loshchilov & Hutter, 2017).

Linear warm-up is not in the notes and is not provided.

The lecture notes cited as "notes 000" … "notes 004" are described in
``docs/bibliography.md``, with the papers.
"""

from __future__ import annotations

import math
import numbers

from reference._checks import require_in_range, require_non_negative, require_positive

__all__ = [
    "cosine_annealing",
    "exponential_decay",
    "inverse_time_decay",
    "step_decay",
]


def _count(name: str, value: object, *, minimum: int) -> int:
    """An int (not a bool) that is at least ``minimum``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value < minimum
    ):
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def step_decay(step: int, *, lr0: float, step_size: int, gamma: float = 0.1) -> float:
    r"""Step decay: multiply the rate by :math:`\gamma` every ``step_size`` steps.

    .. math::

        \eta_t = \eta_0 \, \gamma^{\lfloor t / s \rfloor}

    Parameters
    ----------
    step : int
        :math:`t \ge 0`.
    lr0 : float
        :math:`\eta_0 > 0`.
    step_size : int
        :math:`s \ge 1`, the steps between two decays.
    gamma : float, default 0.1
        :math:`\gamma \in (0, 1]` (torch's ``StepLR`` default; cs231n's examples
        are 0.5 every 5 epochs or 0.1 every 20).

    Returns
    -------
    lr : float
    """
    t = _count("step", step, minimum=0)
    lr0 = require_positive("lr0", lr0)
    s = _count("step_size", step_size, minimum=1)
    gamma = require_in_range(
        "gamma", gamma, 0.0, 1.0, low_inclusive=False, high_inclusive=True
    )
    return lr0 * gamma ** (t // s)


def exponential_decay(step: int, *, lr0: float, decay_rate: float) -> float:
    r"""Exponential decay.

    .. math::

        \eta_t = \eta_0 \, e^{-k t}

    Parameters
    ----------
    step : int
        :math:`t \ge 0`.
    lr0 : float
        :math:`\eta_0 > 0`.
    decay_rate : float
        :math:`k \ge 0` (cs231n's form; torch's ``ExponentialLR`` multiplies by
        :math:`\gamma = e^{-k}` each step, the same sequence).

    Returns
    -------
    lr : float
    """
    t = _count("step", step, minimum=0)
    lr0 = require_positive("lr0", lr0)
    k = require_non_negative("decay_rate", decay_rate)
    return lr0 * math.exp(-k * t)


def inverse_time_decay(step: int, *, lr0: float, decay_rate: float) -> float:
    r"""1/t (inverse time) decay.

    .. math::

        \eta_t = \frac{\eta_0}{1 + k t}

    Parameters
    ----------
    step : int
        :math:`t \ge 0`.
    lr0 : float
        :math:`\eta_0 > 0`.
    decay_rate : float
        :math:`k \ge 0`.

    Returns
    -------
    lr : float

    Notes
    -----
    cs231n ("1/t decay"); TensorFlow's ``InverseTimeDecay`` with
    ``decay_steps=1``. It satisfies the Robbins-Monro conditions
    :math:`\sum \eta_t = \infty`, :math:`\sum \eta_t^2 < \infty` for :math:`k > 0`.
    """
    t = _count("step", step, minimum=0)
    lr0 = require_positive("lr0", lr0)
    k = require_non_negative("decay_rate", decay_rate)
    return lr0 / (1.0 + k * t)


def cosine_annealing(
    step: int, *, lr0: float, total_steps: int, lr_min: float = 0.0
) -> float:
    r"""Cosine annealing from :math:`\eta_0` down to :math:`\eta_{min}` in T steps.

    .. math::

        \eta_t = \eta_{min} + \frac{1}{2} (\eta_0 - \eta_{min})
            \left(1 + \cos\frac{\pi t}{T}\right)

    Parameters
    ----------
    step : int
        :math:`0 \le t \le T`.
    lr0 : float
        :math:`\eta_0 > 0`.
    total_steps : int
        :math:`T \ge 1`; :math:`\eta_T = \eta_{min}`.
    lr_min : float, default 0.0
        :math:`\eta_{min} \in [0, \eta_0]` (torch's ``eta_min``; cs231n's slide has
        :math:`\eta_{min} = 0`).

    Returns
    -------
    lr : float

    Notes
    -----
    Loshchilov & Hutter (2017), SGDR without restarts; the closed form of
    ``torch.optim.lr_scheduler.CosineAnnealingLR`` for :math:`t \le T` (beyond
    :math:`T` torch's cosine rises again; here a step past :math:`T` is refused).
    """
    t = _count("step", step, minimum=0)
    lr0 = require_positive("lr0", lr0)
    T = _count("total_steps", total_steps, minimum=1)
    if t > T:
        raise ValueError(f"step must be <= total_steps ({T}), got {t}")
    lr_min = require_in_range("lr_min", lr_min, 0.0, lr0, high_inclusive=True)
    return lr_min + 0.5 * (lr0 - lr_min) * (1.0 + math.cos(math.pi * t / T))
