"""Gradient-clipping mutants: the NumPy backend with ``clip_grad_norm`` wrong."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from backends.numpy_backend import NumpyBackend

__all__ = ["ClipAlwaysRescales", "ClipPerTensor"]


class ClipPerTensor(NumpyBackend):
    """clip_grad_norm clips each gradient by its own norm, not by the global norm.

    The bug: ``g * min(1, max_norm / ||g||)`` per parameter (``clip_by_norm``
    applied tensor by tensor) where the contract, like ``clip_grad_norm_``,
    scales every gradient by the same factor from the global norm: the
    direction of the whole update changes, and the global norm may exceed
    ``max_norm`` by ``sqrt(number of tensors)``. The returned total norm is
    right. Invisible with a single gradient.

    Caught by: optimizers (clipping keeps the direction and caps the norm,
    ``clip_grad_norm`` with several gradients against the reference).
    """

    name = "mutant-clip-per-tensor"
    family = "clipping"
    expected_killers = ("optimizers",)

    @staticmethod
    def live_call(backend: NumpyBackend) -> Any:
        return backend.clip_grad_norm(
            [np.array([3.0, 4.0]), np.array([0.1])], max_norm=1.0
        )[0]

    def clip_grad_norm(self, grads: list, *, max_norm: float) -> tuple[list, float]:
        _, total_norm = super().clip_grad_norm(grads, max_norm=max_norm)
        clipped = []
        for i, g in enumerate(grads):
            g = self._float(f"grads[{i}]", g)
            norm = math.sqrt(float(self.xp.square(g).sum(dtype=self.xp.float64)))
            clipped.append(g * (max_norm / norm) if norm > max_norm else g.copy())
        return clipped, total_norm


class ClipAlwaysRescales(NumpyBackend):
    """clip_grad_norm rescales to ``max_norm`` even when the norm is already below it.

    The bug: ``g * max_norm / total_norm`` unconditionally (normalising instead
    of clipping; the ``min(1, .)`` forgotten): small gradients are scaled up to
    norm ``max_norm``.

    Caught by: optimizers (clipping leaves gradients under the cap unchanged,
    ``clip_grad_norm`` with ``max_norm`` above the norm).
    """

    name = "mutant-clip-always-rescales"
    family = "clipping"
    expected_killers = ("optimizers",)

    @staticmethod
    def live_call(backend: NumpyBackend) -> Any:
        return backend.clip_grad_norm([np.array([0.3, 0.4])], max_norm=1.0)[0]

    def clip_grad_norm(self, grads: list, *, max_norm: float) -> tuple[list, float]:
        _, total_norm = super().clip_grad_norm(grads, max_norm=max_norm)
        arrays = [self._float(f"grads[{i}]", g) for i, g in enumerate(grads)]
        if total_norm == 0.0:
            return [g.copy() for g in arrays], total_norm
        scale = max_norm / total_norm
        return [g * scale for g in arrays], total_norm


per_tensor = ClipPerTensor()
always_rescales = ClipAlwaysRescales()
