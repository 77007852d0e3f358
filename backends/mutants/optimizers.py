"""Optimizer mutants: the NumPy backend with one optimizer step wrong."""

from __future__ import annotations

from typing import Any

import numpy as np

from backends.mutants.probes import optimizer_steps
from backends.numpy_backend import NumpyBackend
from reference import optimizers

__all__ = [
    "AdagradAccumulatesAfterStep",
    "AdamWithoutBiasCorrection",
    "AdamwDecayInGradient",
    "RmspropDecayComplement",
    "SgdMomentumDampened",
]


class AdamWithoutBiasCorrection(NumpyBackend):
    """adam_step uses the raw moving averages: the forgotten bias correction.

    The bug: ``p -= lr m / (sqrt(v) + eps)`` without dividing ``m`` by ``1 -
    beta1^t`` and ``v`` by ``1 - beta2^t``. The averages start at 0, so early
    steps are off by ``(1 - beta1) / sqrt(1 - beta2)``: about 3.16 lr instead of
    lr on the first step with the defaults.

    Caught by: optimizers (Adam's first step has size about lr; the
    ``adam_step`` trajectory against the reference).
    """

    name = "mutant-adam-no-bias-correction"
    family = "optimizers"
    expected_killers = ("optimizers",)
    live_call = staticmethod(optimizer_steps("adam", lr=0.1))

    def adam_step(
        self,
        param: Any,
        grad: Any,
        state: dict[str, Any],
        *,
        lr: float,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> tuple[Any, dict[str, Any]]:
        param, grad = self._check_step("adam", param, grad, state)
        lr, beta1, beta2, eps, weight_decay = optimizers.adam_hyperparameters(
            lr, beta1, beta2, eps, weight_decay
        )
        state["step"] += 1
        self._adam_update(param, grad, state, lr, beta1, beta2, eps, 1.0, weight_decay)
        return param, state


class AdamwDecayInGradient(NumpyBackend):
    """adamw_step adds ``wd w`` to the gradient: Adam's L2 decay, not AdamW's.

    The bug: the weight decay coupled to the gradient, ``g + wd w``, so it
    passes through the moments and is divided by ``sqrt(v_hat)`` (what
    ``adam_step(weight_decay=wd)`` computes), where AdamW shrinks the weights
    directly, ``w *= 1 - lr wd``. Exact at ``wd = 0``.

    Caught by: optimizers (the ``adamw_step`` trajectory against the
    reference, the step's independence of the gradient's scale, the
    difference from Adam with L2 decay).
    """

    name = "mutant-adamw-decay-in-gradient"
    family = "optimizers"
    expected_killers = ("optimizers",)
    live_call = staticmethod(optimizer_steps("adamw", lr=0.1, weight_decay=0.1))

    def adamw_step(
        self,
        param: Any,
        grad: Any,
        state: dict[str, Any],
        *,
        lr: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ) -> tuple[Any, dict[str, Any]]:
        param, grad = self._check_step("adamw", param, grad, state)
        lr, beta1, beta2, eps, weight_decay = optimizers.adamw_hyperparameters(
            lr, beta1, beta2, eps, weight_decay
        )
        # Adam's step with weight_decay as its L2 term, no decoupled decay.
        self._adam_step(param, grad, state, lr, beta1, beta2, eps, weight_decay)
        return param, state


class SgdMomentumDampened(NumpyBackend):
    """sgd_step's momentum buffer is an average: ``b = mu b + (1 - mu) g``.

    The bug: the exponential-moving-average form of momentum (as in some course
    notes and in torch with ``dampening=momentum``) where the contract is
    torch's default ``b = mu b + g`` (dampening 0): every step is ``1 - mu``
    times too small (10x with mu = 0.9). Invisible with momentum 0.

    Caught by: optimizers (the ``sgd_step`` trajectory with momentum against
    the reference, momentum forms).
    """

    name = "mutant-sgd-momentum-dampened"
    family = "optimizers"
    expected_killers = ("optimizers",)
    live_call = staticmethod(optimizer_steps("sgd", lr=0.1, momentum=0.9))

    def sgd_step(
        self,
        param: Any,
        grad: Any,
        state: dict[str, Any],
        *,
        lr: float,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> tuple[Any, dict[str, Any]]:
        param, grad = self._check_step("sgd", param, grad, state)
        lr, momentum, nesterov, weight_decay = optimizers.sgd_hyperparameters(
            lr, momentum, nesterov, weight_decay
        )
        direction = grad + param * weight_decay if weight_decay else grad
        if momentum:
            buffer = state["momentum_buffer"]
            buffer *= momentum
            buffer += direction * (1 - momentum)
            direction = direction + buffer * momentum if nesterov else buffer
        param -= direction * lr
        return param, state


class AdagradAccumulatesAfterStep(NumpyBackend):
    """adagrad_step divides by the accumulator before adding the current g^2.

    The bug: the two lines of the update in the wrong order, ``p -= lr g /
    (sqrt(G) + eps); G += g^2``: the first step divides by ``eps`` alone (a step
    of 1e10 times the gradient), later ones by the previous steps' sum.

    Caught by: optimizers (the ``adagrad_step`` trajectory against the
    reference, convergence on a quadratic).
    """

    name = "mutant-adagrad-accumulates-after-step"
    family = "optimizers"
    expected_killers = ("optimizers",)
    live_call = staticmethod(optimizer_steps("adagrad", lr=0.1))

    def adagrad_step(
        self,
        param: Any,
        grad: Any,
        state: dict[str, Any],
        *,
        lr: float,
        eps: float = 1e-10,
    ) -> tuple[Any, dict[str, Any]]:
        param, grad = self._check_step("adagrad", param, grad, state)
        lr, eps = optimizers.adagrad_hyperparameters(lr, eps)
        total = state["sum"]
        with np.errstate(over="ignore", invalid="ignore"):
            param -= grad / (np.sqrt(total) + eps) * lr
        total += grad * grad
        return param, state


class RmspropDecayComplement(NumpyBackend):
    """rmsprop_step weighs the new g^2 by ``alpha`` and the average by ``1 - alpha``.

    The bug: the decay rate and its complement swapped, ``v = (1 - alpha) v +
    alpha g^2`` instead of ``v = alpha v + (1 - alpha) g^2``: with alpha = 0.99
    the average forgets its history at once, and the first step is about
    lr instead of 10 lr. Invisible at alpha = 0.5.

    Caught by: optimizers (the ``rmsprop_step`` trajectory against the
    reference).
    """

    name = "mutant-rmsprop-decay-complement"
    family = "optimizers"
    expected_killers = ("optimizers",)
    live_call = staticmethod(optimizer_steps("rmsprop", lr=0.1))

    def rmsprop_step(
        self,
        param: Any,
        grad: Any,
        state: dict[str, Any],
        *,
        lr: float,
        alpha: float = 0.99,
        eps: float = 1e-8,
    ) -> tuple[Any, dict[str, Any]]:
        param, grad = self._check_step("rmsprop", param, grad, state)
        lr, alpha, eps = optimizers.rmsprop_hyperparameters(lr, alpha, eps)
        square_avg = state["square_avg"]
        square_avg *= 1 - alpha
        square_avg += grad * grad * alpha
        param -= grad / (np.sqrt(square_avg) + eps) * lr
        return param, state


adam_no_bias_correction = AdamWithoutBiasCorrection()
adamw_decay_in_gradient = AdamwDecayInGradient()
sgd_momentum_dampened = SgdMomentumDampened()
adagrad_accumulates_after_step = AdagradAccumulatesAfterStep()
rmsprop_decay_complement = RmspropDecayComplement()
