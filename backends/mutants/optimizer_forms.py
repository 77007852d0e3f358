"""SGD mutants wrong only where momentum matters: Nesterov, momentum with decay.

Both are exact with momentum 0 and nearly exact with a momentum of 1e-100;
only a strategy that draws momentum >= 0.1 (with Nesterov, with weight decay)
sees them (``properties/draws.py`` counts those draws).
"""

from __future__ import annotations

from typing import Any

from backends.mutants.probes import optimizer_steps
from backends.numpy_backend import NumpyBackend
from reference import optimizers

__all__ = ["SgdDecayOutsideMomentum", "SgdNesterovOnOldBuffer"]


def _validated(backend, param, grad, state, lr, momentum, nesterov, weight_decay):
    """The NumPy backend's argument checks of ``sgd_step`` (the shared ones)."""
    param, grad = backend._check_step("sgd", param, grad, state)
    return (
        param,
        grad,
        *optimizers.sgd_hyperparameters(lr, momentum, nesterov, weight_decay),
    )


class SgdNesterovOnOldBuffer(NumpyBackend):
    """Nesterov SGD looks ahead with the buffer before its update: ``g + mu b_old``.

    The bug: torch's Nesterov step is ``b = mu b + g; w -= lr (g + mu b)`` with
    the new buffer; this one reads the buffer before updating it, so every
    step lacks ``mu^2 b_old + mu g``. Invisible with a tiny momentum.

    Caught by: optimizers (the ``sgd_step`` trajectories, which draw
    Nesterov with momentum >= 0.1).
    """

    name = "mutant-sgd-nesterov-old-buffer"
    family = "optimizers"
    expected_killers = ("optimizers",)
    live_call = staticmethod(
        optimizer_steps("sgd", lr=0.1, momentum=0.9, nesterov=True)
    )

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
        param, grad, lr, momentum, nesterov, weight_decay = _validated(
            self, param, grad, state, lr, momentum, nesterov, weight_decay
        )
        direction = grad + param * weight_decay if weight_decay else grad
        if momentum:
            buffer = state["momentum_buffer"]
            lookahead = direction + buffer * momentum
            buffer *= momentum
            buffer += direction
            direction = lookahead if nesterov else buffer
        param -= direction * lr
        return param, state


class SgdDecayOutsideMomentum(NumpyBackend):
    """SGD adds weight decay after the momentum: ``w -= lr (b + wd w)``.

    The bug: decay kept out of the momentum buffer (decoupled, as in some
    hand-written loops), where torch adds ``wd w`` to the gradient first.
    Exact without momentum or without decay.

    Caught by: optimizers (the ``sgd_step`` trajectories, which draw
    momentum >= 0.1 together with weight decay >= 1e-3).
    """

    name = "mutant-sgd-decay-outside-momentum"
    family = "optimizers"
    expected_killers = ("optimizers",)
    live_call = staticmethod(
        optimizer_steps("sgd", lr=0.1, momentum=0.9, weight_decay=0.1)
    )

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
        param, grad, lr, momentum, nesterov, weight_decay = _validated(
            self, param, grad, state, lr, momentum, nesterov, weight_decay
        )
        direction = grad
        if momentum:
            buffer = state["momentum_buffer"]
            buffer *= momentum
            buffer += grad
            direction = grad + buffer * momentum if nesterov else buffer
        direction = direction + param * weight_decay
        param -= direction * lr
        return param, state


sgd_nesterov_old_buffer = SgdNesterovOnOldBuffer()
sgd_decay_outside_momentum = SgdDecayOutsideMomentum()
