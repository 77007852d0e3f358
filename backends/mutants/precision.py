"""A precision mutant: the NumPy backend computing its float64 column in float32.

Every operation casts its float64 inputs down to float32, computes there and
casts the results back up: the outputs have the right dtype (float64), the
right shape and values correct to float32's precision, about 1e-7 relative,
where the float64 column promises 1e-16. A backend that lists ``float64``
among its dtypes while its kernels only exist in float32 does exactly this.
Its float32 column is the NumPy backend's, unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from backends import contract
from backends.numpy_backend import NumpyBackend

__all__ = ["Float64InFloat32"]


def _down(value: Any) -> Any:
    """float64 arrays (also inside lists) as float32 copies."""
    if isinstance(value, np.ndarray) and value.dtype == np.float64:
        return value.astype(np.float32)
    if isinstance(value, (list, tuple)):
        return type(value)(_down(item) for item in value)
    return value


def _up(value: Any) -> Any:
    """float32 arrays (also inside tuples and lists) as float64."""
    if isinstance(value, np.ndarray) and value.dtype == np.float32:
        return value.astype(np.float64)
    if isinstance(value, (list, tuple)):
        return type(value)(_up(item) for item in value)
    return value


def _wide(value: Any) -> bool:
    """Whether ``value`` is, or holds, a float64 array."""
    if isinstance(value, np.ndarray):
        return value.dtype == np.float64
    return isinstance(value, (list, tuple)) and any(_wide(item) for item in value)


def _in_float32(operation: str) -> Callable[..., Any]:
    """``operation`` of the NumPy backend, computed in float32 for float64 inputs."""

    def run(self: NumpyBackend, *arguments: Any, **hyper: Any) -> Any:
        method = getattr(super(Float64InFloat32, self), operation)
        if hyper.get("dtype") == "float64":
            hyper = {**hyper, "dtype": "float32"}
        elif not _wide(arguments):
            return method(*arguments, **hyper)
        if operation.endswith("_step"):
            # param and grad go down; the state stays float32 between steps.
            param, grad, state = arguments
            param, state = method(_down(param), _down(grad), state, **hyper)
            return _up(param), state
        return _up(method(*_down(list(arguments)), **hyper))

    run.__name__ = run.__qualname__ = operation
    run.__doc__ = f"``{operation}``, computed in float32 for float64 inputs."
    return run


def _init_state_in_float32(self: NumpyBackend, name: str, param: Any) -> dict:
    """``init_state`` with float32 buffers for a float64 ``param``."""
    return NumpyBackend.init_state(self, name, _down(param))


class Float64InFloat32(NumpyBackend):
    """Every operation computes its float64 inputs in float32.

    The bug: ``x.astype(float32)``, the float32 kernel, ``.astype(float64)``:
    float64 results carry float32's rounding errors, up to 1e-7 relative.

    Caught by: agreement (every op's float64 check: 1e-7 is a million times
    float64's tolerance; the float64 draws of ``initialize`` are all
    float32 numbers) in every op family.
    """

    name = "mutant-float64-in-float32"
    family = "precision"
    expected_killers = ("agreement",)

    @staticmethod
    def live_call(backend: NumpyBackend) -> Any:
        # 1e8 + 1 is not a float32: computed in float32, the sum cancels to 0, not 1.
        return backend.linear(np.array([[1e8 + 1]]), np.ones((1, 1)), np.array([-1e8]))


for _operation in contract.OPERATIONS + contract.BACKWARD_OPERATIONS:
    if _operation in ("dropout_mask",):
        continue  # a boolean mask has no precision to lose
    setattr(Float64InFloat32, _operation, _in_float32(_operation))
Float64InFloat32.init_state = _init_state_in_float32
del _operation

float64_in_float32 = Float64InFloat32()
