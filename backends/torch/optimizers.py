"""Optimizers on torch: ``torch.optim``, one single-tensor optimizer per state.

``init_state`` builds a ``torch.optim`` optimizer (``foreach=False``, torch's
reference math) over a private copy of the parameter; every ``*_step`` sets the
hyperparameters on its param group and runs ``optimizer.step()``.
``clip_grad_norm`` is written in torch ops. Where torch's convention differs
from the contract:

* Optimizers: ``torch.optim`` keys its state by the parameter tensor object; the
  contract lets the caller pass any tensor holding the values, so the state owns
  its own parameter tensor and copies the caller's values into it when needed.
* ``clip_grad_norm``: ``torch.nn.utils.clip_grad_norm_`` scales by
  ``max_norm / (total_norm + 1e-6)`` and clips in place; the contract scales by
  exactly ``max_norm / total_norm`` when ``total_norm > max_norm`` and mutates
  nothing, so it is computed here with torch ops.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from backends.torch.core import Tensor, TorchCore, torch
from reference import optimizers
from reference._checks import require_positive, require_shape

# init_state's names -> the torch.optim class that steps them.
_OPTIMIZER_CLASSES = {
    "sgd": "SGD",
    "adagrad": "Adagrad",
    "rmsprop": "RMSprop",
    "adadelta": "Adadelta",
    "adam": "Adam",
    "adamw": "AdamW",
}


def _adam_hyperparameters(
    lr: float, beta1: float, beta2: float, eps: float, weight_decay: float
) -> dict[str, Any]:
    """The param group of torch.optim.Adam and AdamW (their ``weight_decay``
    differs: L2 in the gradient for Adam, decoupled for AdamW)."""
    return {
        "lr": lr,
        "betas": (beta1, beta2),
        "eps": eps,
        "weight_decay": weight_decay,
        "amsgrad": False,
    }


class Optimizers(TorchCore):
    """init_state, the *_step functions and clip_grad_norm."""

    def init_state(self, name: str, param: Tensor) -> dict[str, Any]:
        """A ``torch.optim`` optimizer over a private copy of ``param``.

        torch.optim keys its state by the parameter tensor object, while the
        contract lets the caller pass any tensor holding the parameter's values.
        So the state owns the tensor the optimizer updates (``state["param"]``);
        each step copies the caller's values into it unless the caller passed
        that very tensor (the one the previous step returned), and returns it.
        """
        if name not in _OPTIMIZER_CLASSES:
            raise ValueError(
                f"name must be one of {tuple(_OPTIMIZER_CLASSES)}, got {name!r}"
            )
        own = self._float_tensor("param", param).detach().clone()
        optimizer_class = getattr(torch.optim, _OPTIMIZER_CLASSES[name])
        # Single-tensor code path (foreach=False): torch.optim's reference math.
        # The hyperparameters are set on the param group at every step.
        optimizer = optimizer_class([own], foreach=False)
        return {"name": name, "param": own, "optimizer": optimizer}

    def _optimizer_step(
        self,
        name: str,
        param: Tensor,
        grad: Tensor,
        state: dict[str, Any],
        hyper: dict[str, Any],
    ) -> tuple[Tensor, dict[str, Any]]:
        if not isinstance(state, dict) or state.get("name") != name:
            raise ValueError(
                f"state must come from init_state({name!r}, param), got "
                f"{type(state).__name__} for "
                f"{state.get('name') if isinstance(state, dict) else None!r}"
            )
        own: Tensor = state["param"]
        param = self._float_tensor("param", param)
        grad = self._float_tensor("grad", grad)
        require_shape("param", param, tuple(own.shape))
        require_shape("grad", grad, tuple(own.shape))
        if param is not own:
            # A different tensor object (a copy, a round trip through NumPy):
            # torch.optim's state is keyed by `own`, so copy the values in.
            with torch.no_grad():
                own.copy_(param)
        optimizer = state["optimizer"]
        optimizer.param_groups[0].update(hyper)
        # torch.optim reads .grad; its single-tensor steps never write to it.
        own.grad = grad.to(own.dtype) if grad.dtype != own.dtype else grad
        try:
            optimizer.step()
        finally:
            own.grad = None  # do not keep the caller's gradient alive
        return own, state

    def sgd_step(
        self,
        param: Tensor,
        grad: Tensor,
        state: dict[str, Any],
        *,
        lr: float,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> tuple[Tensor, dict[str, Any]]:
        lr, momentum, nesterov, weight_decay = optimizers.sgd_hyperparameters(
            lr, momentum, nesterov, weight_decay
        )
        hyper = {
            "lr": lr,
            "momentum": momentum,
            "dampening": 0.0,
            "nesterov": nesterov,
            "weight_decay": weight_decay,
        }
        return self._optimizer_step("sgd", param, grad, state, hyper)

    def adagrad_step(
        self,
        param: Tensor,
        grad: Tensor,
        state: dict[str, Any],
        *,
        lr: float,
        eps: float = 1e-10,
    ) -> tuple[Tensor, dict[str, Any]]:
        lr, eps = optimizers.adagrad_hyperparameters(lr, eps)
        hyper = {
            "lr": lr,
            "eps": eps,
            "lr_decay": 0.0,
            "weight_decay": 0.0,
        }
        return self._optimizer_step("adagrad", param, grad, state, hyper)

    def rmsprop_step(
        self,
        param: Tensor,
        grad: Tensor,
        state: dict[str, Any],
        *,
        lr: float,
        alpha: float = 0.99,
        eps: float = 1e-8,
    ) -> tuple[Tensor, dict[str, Any]]:
        lr, alpha, eps = optimizers.rmsprop_hyperparameters(lr, alpha, eps)
        hyper = {
            "lr": lr,
            "alpha": alpha,
            "eps": eps,
            "momentum": 0.0,
            "centered": False,
            "weight_decay": 0.0,
        }
        return self._optimizer_step("rmsprop", param, grad, state, hyper)

    def adadelta_step(
        self,
        param: Tensor,
        grad: Tensor,
        state: dict[str, Any],
        *,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
    ) -> tuple[Tensor, dict[str, Any]]:
        lr, rho, eps = optimizers.adadelta_hyperparameters(lr, rho, eps)
        hyper = {
            "lr": lr,
            "rho": rho,
            "eps": eps,
            "weight_decay": 0.0,
        }
        return self._optimizer_step("adadelta", param, grad, state, hyper)

    def adam_step(
        self,
        param: Tensor,
        grad: Tensor,
        state: dict[str, Any],
        *,
        lr: float,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> tuple[Tensor, dict[str, Any]]:
        # torch.optim.Adam's weight_decay is L2 added to the gradient (not AdamW),
        # the contract's.
        lr, beta1, beta2, eps, weight_decay = optimizers.adam_hyperparameters(
            lr, beta1, beta2, eps, weight_decay
        )
        hyper = _adam_hyperparameters(lr, beta1, beta2, eps, weight_decay)
        return self._optimizer_step("adam", param, grad, state, hyper)

    def adamw_step(
        self,
        param: Tensor,
        grad: Tensor,
        state: dict[str, Any],
        *,
        lr: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ) -> tuple[Tensor, dict[str, Any]]:
        # torch.optim.AdamW: param *= 1 - lr weight_decay, then Adam's step.
        lr, beta1, beta2, eps, weight_decay = optimizers.adamw_hyperparameters(
            lr, beta1, beta2, eps, weight_decay
        )
        hyper = _adam_hyperparameters(lr, beta1, beta2, eps, weight_decay)
        return self._optimizer_step("adamw", param, grad, state, hyper)

    def clip_grad_norm(
        self, grads: Sequence[Tensor], *, max_norm: float
    ) -> tuple[list[Tensor], float]:
        """Clip by the global L2 norm, scaling by exactly ``max_norm / total_norm``.

        torch.nn.utils.clip_grad_norm_ scales by ``max_norm / (total_norm + 1e-6)``
        (clamped at 1) and clips in place; the contract has no ``1e-6`` and
        mutates nothing, so the same norm-of-norms is computed here (accumulated
        in float64) and the scaled copies are returned.
        """
        max_norm = require_positive("max_norm", max_norm)
        grads = optimizers.require_gradient_list(grads)
        tensors = [self._float_tensor(f"grads[{i}]", g) for i, g in enumerate(grads)]
        if not tensors:
            return [], 0.0
        norms = torch.stack(
            [
                torch.linalg.vector_norm(g.to(self._torch_device), dtype=torch.float64)
                for g in tensors
            ]
        )
        total_norm = float(torch.linalg.vector_norm(norms))
        if total_norm > max_norm:
            scale = max_norm / total_norm
            return [g * scale for g in tensors], total_norm
        return [g.clone() for g in tensors], total_norm
