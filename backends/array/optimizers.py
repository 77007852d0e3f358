"""The optimizer steps and gradient clipping of the array backend.

init_state, sgd_step, adagrad_step, rmsprop_step, adadelta_step, adam_step,
adamw_step (torch.optim's update rules) and clip_grad_norm. The steps update ``param``
and the state in place. The arguments are checked here; the update itself is
``_<name>_update``, which a subclass for another array library overrides
(the CuPy backend: one fused kernel each). Here it is the kernel of
:mod:`backends.array.blocked` (``out=`` ufuncs, run block by block so that a step's
passes stay in the L2 cache, on as many threads as NumPy's BLAS), or, where
numba is installed (``accelerator = "numba"``), the same update compiled into
one pass per block (:mod:`backends.array.fused`), with the same bits.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from backends.array import blocked, fused
from backends.array.core import Array, ArrayCore
from reference import optimizers as reference_optimizers
from reference._checks import require_positive, require_shape

__all__ = ["OPTIMIZER_BUFFERS", "OptimizerOps"]

#: The state arrays of each optimizer (torch's names) besides scratch buffers.
OPTIMIZER_BUFFERS: dict[str, tuple[str, ...]] = {
    name: reference_optimizers.STATE_ARRAYS[name]
    for name in reference_optimizers.CONTRACT_OPTIMIZER_NAMES
}


class OptimizerOps(ArrayCore):
    """The optimizer steps and clip_grad_norm (see the module).

    ``optimizer_block_bytes`` (bytes of each array in one block of a step)
    tunes the blocked updates.
    """

    #: Whether the optimizer states carry scratch rows (the ufunc updates).
    scratch_buffers: bool = True

    def __init__(self, xp: Any) -> None:
        super().__init__(xp)
        self.optimizer_block_bytes = blocked.BLOCK_BYTES

    # -- optimizers -----------------------------------------------------------

    def init_state(self, name: str, param: Array) -> dict[str, Array]:
        """Zero buffers shaped like ``param`` (torch's names), Adam's and AdamW's
        step count.

        ``step`` is a 0-d int64 host array updated in place (the bias
        correction is computed on the host). Where the updates are ufunc
        passes (``scratch_buffers``), ``scratch`` holds each thread's block
        of scratch rows, ``(threads, rows, block)``: a few hundred KiB
        whatever the size of ``param``, never a full-size temporary.
        """
        if name not in OPTIMIZER_BUFFERS:
            raise ValueError(
                f"name must be one of {', '.join(OPTIMIZER_BUFFERS)}, got {name!r}"
            )
        param = self._float("param", param)
        state: dict[str, Array] = {
            key: self.xp.zeros_like(param) for key in OPTIMIZER_BUFFERS[name]
        }
        if self.scratch_buffers:
            self._block_scratch(state, name, param)
        if name in ("adam", "adamw"):
            state["step"] = np.zeros((), dtype=np.int64)
        return state

    def _check_step(
        self, name: str, param: Any, grad: Any, state: Any
    ) -> tuple[Array, Array]:
        param = self._float("param", param)
        grad = self._float("grad", grad)
        require_shape("grad", grad, param.shape)
        if not isinstance(state, dict):
            raise ValueError(f"state must be the dict of init_state({name!r}, param)")
        for key in OPTIMIZER_BUFFERS[name]:
            if key not in state:
                raise ValueError(
                    f"state must be the dict of init_state({name!r}, param): "
                    f"missing {key!r}"
                )
            require_shape(f"state[{key!r}]", state[key], param.shape)
        return param, grad

    # -- running the updates ----------------------------------------------------

    def _block_length(self, param: Array) -> int:
        return blocked.block_length(param.dtype.itemsize, self.optimizer_block_bytes)

    def _block_scratch(
        self, state: dict[str, Array], name: str, param: Array, threads: int = 0
    ) -> Array:
        """``state["scratch"]``: ``(threads, rows, block)`` rows, made or enlarged here.

        init_state makes it; a state built elsewhere (holding only the
        optimizer's own buffers), a larger thread count or another dtype
        replace it on the next step.
        """
        threads = max(threads, self.thread_count())
        rows = blocked.SCRATCH_ROWS[name]
        length = max(1, min(self._block_length(param), param.size))
        scratch = state.get("scratch")
        fits = (
            isinstance(scratch, np.ndarray)
            and scratch.ndim == 3
            and scratch.dtype == param.dtype
            and scratch.shape[0] >= threads
            and scratch.shape[1] >= rows
            and scratch.shape[2] >= length
        )
        if not fits:
            scratch = state["scratch"] = np.empty((threads, rows, length), param.dtype)
        return scratch

    def _update(
        self,
        name: str,
        param: Array,
        grad: Array,
        state: dict[str, Array],
        buffers: tuple[Array, ...],
        args: tuple,
    ) -> None:
        """Apply ``blocked.KERNELS[name]`` to param, grad and ``buffers`` in place.

        NumPy arrays that are C-contiguous go block by block (on
        :meth:`thread_count` threads); anything else (strided views,
        another array library) takes the same kernel over the whole arrays,
        with full-size scratch made for the call.
        """
        kernel = blocked.KERNELS[name]
        rows = blocked.SCRATCH_ROWS[name]
        arrays = (param, grad, *buffers)
        flat = self.xp is np and all(
            isinstance(a, np.ndarray) and a.flags.c_contiguous for a in arrays
        )
        if not flat or param.size == 0:
            scratch = [self.xp.empty_like(param) for _ in range(rows)]
            kernel(*arrays, *scratch, *args)
            return
        threads = self.thread_count()
        flat_arrays = [a.reshape(-1) for a in arrays]
        compiled = None
        if self.accelerator == "numba" and fused.same_float_dtype(*arrays):
            compiled = fused.optimizer_kernel(name, param.dtype, args)
        if compiled is not None:
            # One compiled pass per block, no scratch rows.
            kernel, args = compiled
            no_rows = np.empty((threads, 0, 0), param.dtype)
            length = self._block_length(param)
            blocked.run(
                kernel, flat_arrays, no_rows, args, block=length, threads=threads
            )
            return
        scratch = self._block_scratch(state, name, param, threads)
        length = min(self._block_length(param), scratch.shape[2])
        blocked.run(
            kernel,
            flat_arrays,
            scratch[:threads, :rows, :length],
            args,
            block=length,
            threads=threads,
        )

    def sgd_step(
        self,
        param: Array,
        grad: Array,
        state: dict[str, Array],
        *,
        lr: float,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> tuple[Array, dict[str, Array]]:
        param, grad = self._check_step("sgd", param, grad, state)
        lr, momentum, nesterov, weight_decay = reference_optimizers.sgd_hyperparameters(
            lr, momentum, nesterov, weight_decay
        )
        self._sgd_update(param, grad, state, lr, momentum, nesterov, weight_decay)
        return param, state

    def _sgd_update(
        self,
        param: Array,
        grad: Array,
        state: dict[str, Array],
        lr: float,
        momentum: float,
        nesterov: bool,
        weight_decay: float,
    ) -> None:
        buffer = state["momentum_buffer"]
        args = (lr, momentum, nesterov, weight_decay)
        self._update("sgd", param, grad, state, (buffer,), args)

    def adagrad_step(
        self,
        param: Array,
        grad: Array,
        state: dict[str, Array],
        *,
        lr: float,
        eps: float = 1e-10,
    ) -> tuple[Array, dict[str, Array]]:
        param, grad = self._check_step("adagrad", param, grad, state)
        lr, eps = reference_optimizers.adagrad_hyperparameters(lr, eps)
        self._adagrad_update(param, grad, state, lr, eps)
        return param, state

    def _adagrad_update(
        self, param: Array, grad: Array, state: dict[str, Array], lr: float, eps: float
    ) -> None:
        self._update("adagrad", param, grad, state, (state["sum"],), (lr, eps))

    def rmsprop_step(
        self,
        param: Array,
        grad: Array,
        state: dict[str, Array],
        *,
        lr: float,
        alpha: float = 0.99,
        eps: float = 1e-8,
    ) -> tuple[Array, dict[str, Array]]:
        param, grad = self._check_step("rmsprop", param, grad, state)
        lr, alpha, eps = reference_optimizers.rmsprop_hyperparameters(lr, alpha, eps)
        self._rmsprop_update(param, grad, state, lr, alpha, eps)
        return param, state

    def _rmsprop_update(
        self,
        param: Array,
        grad: Array,
        state: dict[str, Array],
        lr: float,
        alpha: float,
        eps: float,
    ) -> None:
        buffers = (state["square_avg"],)
        self._update("rmsprop", param, grad, state, buffers, (lr, alpha, eps))

    def adadelta_step(
        self,
        param: Array,
        grad: Array,
        state: dict[str, Array],
        *,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
    ) -> tuple[Array, dict[str, Array]]:
        param, grad = self._check_step("adadelta", param, grad, state)
        lr, rho, eps = reference_optimizers.adadelta_hyperparameters(lr, rho, eps)
        self._adadelta_update(param, grad, state, lr, rho, eps)
        return param, state

    def _adadelta_update(
        self,
        param: Array,
        grad: Array,
        state: dict[str, Array],
        lr: float,
        rho: float,
        eps: float,
    ) -> None:
        buffers = (state["square_avg"], state["acc_delta"])
        self._update("adadelta", param, grad, state, buffers, (lr, rho, eps))

    def adam_step(
        self,
        param: Array,
        grad: Array,
        state: dict[str, Array],
        *,
        lr: float,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> tuple[Array, dict[str, Array]]:
        param, grad = self._check_step("adam", param, grad, state)
        lr, beta1, beta2, eps, weight_decay = reference_optimizers.adam_hyperparameters(
            lr, beta1, beta2, eps, weight_decay
        )
        self._adam_step(param, grad, state, lr, beta1, beta2, eps, weight_decay)
        return param, state

    def _adam_count_step(
        self, state: dict[str, Array], lr: float, beta1: float, beta2: float
    ) -> tuple[float, float]:
        """Count the step in ``state["step"]``; torch's ``step_size`` and
        ``bias_correction2_sqrt`` at that step (Adam's and AdamW's)."""
        step = state.get("step")
        if step is None or np.ndim(step) != 0 or int(step) < 0:
            raise ValueError(
                f"state['step'] must be a non-negative count, got {step!r}"
            )
        state["step"] += 1
        t = int(state["step"])
        # As torch: step_size = lr / (1 - beta1^t), denominator
        # sqrt(v) / sqrt(1 - beta2^t) + eps.
        return lr / (1.0 - beta1**t), math.sqrt(1.0 - beta2**t)

    def _adam_step(
        self,
        param: Array,
        grad: Array,
        state: dict[str, Array],
        lr: float,
        beta1: float,
        beta2: float,
        eps: float,
        weight_decay: float,
        decay: float = 1.0,
    ) -> None:
        """Count the step, then Adam's update with L2 ``weight_decay`` after
        ``param *= decay``."""
        step_size, bias_correction2_sqrt = self._adam_count_step(
            state, lr, beta1, beta2
        )
        scalars = (step_size, beta1, beta2, eps, bias_correction2_sqrt)
        self._adam_update(param, grad, state, *scalars, weight_decay, decay)

    def _adam_update(
        self,
        param: Array,
        grad: Array,
        state: dict[str, Array],
        step_size: float,
        beta1: float,
        beta2: float,
        eps: float,
        bias_correction2_sqrt: float,
        weight_decay: float,
        decay: float = 1.0,
    ) -> None:
        """Adam's update with L2 ``weight_decay``, after ``param *= decay``
        (AdamW's decoupled decay; 1 for Adam)."""
        buffers = (state["exp_avg"], state["exp_avg_sq"])
        args = (step_size, beta1, beta2, eps, bias_correction2_sqrt, weight_decay)
        self._update("adam", param, grad, state, buffers, (*args, decay))

    def adamw_step(
        self,
        param: Array,
        grad: Array,
        state: dict[str, Array],
        *,
        lr: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ) -> tuple[Array, dict[str, Array]]:
        """Adam's update with no L2 term, after ``param *= 1 - lr weight_decay``."""
        param, grad = self._check_step("adamw", param, grad, state)
        lr, beta1, beta2, eps, weight_decay = (
            reference_optimizers.adamw_hyperparameters(
                lr, beta1, beta2, eps, weight_decay
            )
        )
        decay = 1.0 - lr * weight_decay
        self._adam_step(param, grad, state, lr, beta1, beta2, eps, 0.0, decay)
        return param, state

    def clip_grad_norm(self, grads: list, *, max_norm: float) -> tuple[list, float]:
        """Scale by ``max_norm / total_norm`` when the global norm exceeds ``max_norm``.

        Returns new arrays (the inputs are not modified) and the global L2 norm,
        accumulated in float64.
        """
        xp = self.xp
        max_norm = require_positive("max_norm", max_norm)
        grads = reference_optimizers.require_gradient_list(grads)
        arrays = [self._float(f"grads[{i}]", g) for i, g in enumerate(grads)]
        # Squared in float64: float32 squares overflow from |g| ~ 2e19 on.
        squares = [xp.square(g, dtype=xp.float64).sum() for g in arrays]
        total_norm = math.sqrt(float(sum(squares))) if squares else 0.0
        if total_norm > max_norm:
            scale = max_norm / total_norm
            return [g * scale for g in arrays], total_norm
        return [g.copy() for g in arrays], total_norm
