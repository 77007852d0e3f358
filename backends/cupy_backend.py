"""The CuPy backend: :class:`~backends.array.ArrayBackend` over ``cupy``.

The shared implementation runs unchanged with ``xp = cupy``. Convolution uses
the same algorithm table as NumPy: Winograd F(4x4, 3x3) for 3x3 stride-1
layers of 32 channels or more, F(2x2, 3x3) from 8, im2col elsewhere (see
``backends.array.conv.WINOGRAD_MIN_CHANNELS``), every GEMM a cuBLAS call
(``cupy.matmul``; batched GEMMs for the Winograd tile positions) and every
gather or scatter one strided-copy kernel; the whole batch at once (no cache
chunking: ``conv_chunk_bytes = None``). cuDNN is deliberately not used:
CuPy 14 removed its cuDNN bindings, CuPy 13's ``cupyx.cudnn`` is deprecated
and leaves the convolution's math type at the algorithm's default, which
lets cuDNN 8+ compute float32 convolutions in TF32 on Ampere and Hopper
(about 1e-3 relative error, outside the suite's float32 tolerances).

Only what must differ is overridden: moving arrays to and from the device,
synchronising, strided views, the random generator (``cupy.random``), and the
optimizer updates, each one fused ``cupy.ElementwiseKernel`` that reads
``param``, ``grad`` and the state once and writes ``param`` and the state
once: ``3 + 2 k`` array passes for ``k`` state arrays, the least a step can
move.

Not measured here (no GPU on the development machine): the targets are conv2d
within 1.5x of torch's cuDNN time and optimizer steps at 80% or more of the
device's copy bandwidth.

Importing this module never fails: without CuPy, or without a CUDA device,
``backend.unavailable_reason`` says why and the suite skips the backend.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from backends.array import ArrayBackend
from backends.array.core import UnavailableNamespace

__all__ = ["CupyBackend", "backend"]


def _load_cupy() -> tuple[Any, str | None]:
    """``(cupy, None)`` when usable, else ``(cupy or None, why not)``."""
    try:
        import cupy
        import cupy.lib.stride_tricks
    except ModuleNotFoundError as error:
        if error.name == "cupy":
            return None, "CuPy is not installed"
        return None, f"CuPy cannot be imported: {error}"
    except Exception as error:  # a broken install fails in many ways
        return None, f"CuPy cannot be imported: {type(error).__name__}: {error}"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # no driver, no runtime
        return cupy, f"no CUDA device: {type(error).__name__}: {error}"
    if count < 1:
        return cupy, "no CUDA device: cupy.cuda.runtime.getDeviceCount() is 0"
    return cupy, None


# One pass each: the update rules of torch.optim, as in ArrayBackend's updates.
_KERNELS: dict[str, tuple[str, str, str]] = {
    "sgd": (
        "T grad, T lr, T momentum, T weight_decay, int32 nesterov",
        "T param, T momentum_buffer",
        """
        T g = grad + weight_decay * param;
        if (momentum != (T)0) {
            momentum_buffer = momentum * momentum_buffer + g;
            g = nesterov ? g + momentum * momentum_buffer : momentum_buffer;
        }
        param = param - lr * g;
        """,
    ),
    "adagrad": (
        "T grad, T lr, T eps",
        "T param, T accumulator",
        """
        accumulator = accumulator + grad * grad;
        param = param - lr * (grad / (sqrt(accumulator) + eps));
        """,
    ),
    "rmsprop": (
        "T grad, T lr, T alpha, T eps",
        "T param, T square_avg",
        """
        square_avg = alpha * square_avg + ((T)1 - alpha) * grad * grad;
        param = param - lr * (grad / (sqrt(square_avg) + eps));
        """,
    ),
    "adadelta": (
        "T grad, T lr, T rho, T eps",
        "T param, T square_avg, T acc_delta",
        """
        square_avg = rho * square_avg + ((T)1 - rho) * grad * grad;
        T delta = sqrt(acc_delta + eps) / sqrt(square_avg + eps) * grad;
        acc_delta = rho * acc_delta + ((T)1 - rho) * delta * delta;
        param = param - lr * delta;
        """,
    ),
    # AdamW too: decay = 1 - lr wd with weight_decay = 0 (Adam: decay = 1).
    "adam": (
        "T grad, T step_size, T beta1, T beta2, T eps, T bias_correction2_sqrt, "
        "T weight_decay, T decay",
        "T param, T exp_avg, T exp_avg_sq",
        """
        param = decay * param;
        T g = grad + weight_decay * param;
        exp_avg = exp_avg + ((T)1 - beta1) * (g - exp_avg);
        exp_avg_sq = beta2 * exp_avg_sq + ((T)1 - beta2) * g * g;
        T denom = sqrt(exp_avg_sq) / bias_correction2_sqrt + eps;
        param = param - step_size * (exp_avg / denom);
        """,
    ),
}


class CupyBackend(ArrayBackend):
    """The contract's operations in CuPy, on a CUDA GPU, in float32 and float64."""

    name = "cupy"
    device = "gpu"
    dtypes = ("float32", "float64")
    scratch_buffers = False  # the fused kernels need no temporaries

    def __init__(self) -> None:
        cupy, reason = _load_cupy()
        self.unavailable_reason = reason
        super().__init__(cupy if reason is None else UnavailableNamespace(reason))
        # Device memory is not a CPU cache: one pass over the whole batch.
        self.conv_chunk_bytes = None
        self._kernels: dict[str, Any] = {}
        if reason is None:
            self._kernels = {
                name: cupy.ElementwiseKernel(
                    inputs, outputs, body, f"nnspec_{name}_step"
                )
                for name, (inputs, outputs, body) in _KERNELS.items()
            }

    # -- what differs from NumPy --------------------------------------------

    def to_numpy(self, a: Any) -> np.ndarray:
        if isinstance(a, self.xp.ndarray):
            return self.xp.asnumpy(a)
        return np.array(a, copy=True)

    def synchronize(self) -> None:
        self.xp.cuda.get_current_stream().synchronize()

    def _as_strided(self, a: Any, shape: tuple[int, ...], strides: tuple[int, ...]):
        return self.xp.lib.stride_tricks.as_strided(a, shape=shape, strides=strides)

    def _uniform(self, seed: int, shape: tuple[int, ...]) -> Any:
        return self.xp.random.default_rng(seed).random(shape)

    # -- fused optimizer updates ---------------------------------------------

    def _launch(self, name: str, param: Any, grad: Any, scalars: tuple, outputs: tuple):
        cast = param.dtype.type
        grad = grad.astype(param.dtype, copy=False)
        self._kernels[name](grad, *(cast(value) for value in scalars), param, *outputs)

    def _sgd_update(self, param, grad, state, lr, momentum, nesterov, weight_decay):
        kernel = self._kernels["sgd"]
        cast = param.dtype.type
        kernel(
            grad.astype(param.dtype, copy=False),
            cast(lr),
            cast(momentum),
            cast(weight_decay),
            np.int32(nesterov),
            param,
            state["momentum_buffer"],
        )

    def _adagrad_update(self, param, grad, state, lr, eps):
        self._launch("adagrad", param, grad, (lr, eps), (state["sum"],))

    def _rmsprop_update(self, param, grad, state, lr, alpha, eps):
        self._launch("rmsprop", param, grad, (lr, alpha, eps), (state["square_avg"],))

    def _adadelta_update(self, param, grad, state, lr, rho, eps):
        outputs = (state["square_avg"], state["acc_delta"])
        self._launch("adadelta", param, grad, (lr, rho, eps), outputs)

    def _adam_update(
        self,
        param,
        grad,
        state,
        step_size,
        beta1,
        beta2,
        eps,
        bias_correction2_sqrt,
        weight_decay,
        decay=1.0,
    ):
        scalars = (
            step_size,
            beta1,
            beta2,
            eps,
            bias_correction2_sqrt,
            weight_decay,
            decay,
        )
        outputs = (state["exp_avg"], state["exp_avg_sq"])
        self._launch("adam", param, grad, scalars, outputs)


backend = CupyBackend()
