"""Normalization mutants: the NumPy backend with one bug in batch_norm (or its
backward) or in layer_norm."""

from __future__ import annotations

from typing import Any

import numpy as np

from backends.mutants.probes import BN_PARAMS, BN_X
from backends.numpy_backend import NumpyBackend

__all__ = [
    "BackwardWithoutProjection",
    "BiasedRunningVariance",
    "EvalUsesBatchStatistics",
    "LayerNormUnbiasedVariance",
    "MomentumSwapped",
]


class BiasedRunningVariance(NumpyBackend):
    """The running variance is updated with the biased batch variance (1/m).

    The bug: ``running_var = (1 - momentum) running_var + momentum var`` with
    the variance used for normalising (``x.var()``, ddof 0) where torch uses
    the unbiased ``m / (m - 1)`` correction. Small for large batches, a factor
    of 2 for a batch of two.

    Caught by: batchnorm (the running statistics follow the momentum rule with
    the unbiased variance) and agreement (``batch_norm``'s ``running_var``).
    """

    name = "mutant-bn-biased-running-var"
    family = "batchnorm"
    expected_killers = ("batchnorm", "agreement")

    @staticmethod
    def live_call(backend: NumpyBackend) -> Any:
        return backend.batch_norm(BN_X, *BN_PARAMS, training=True)

    def batch_norm(
        self,
        x: Any,
        gamma: Any,
        beta: Any,
        running_mean: Any,
        running_var: Any,
        *,
        training: bool,
        momentum: float = 0.1,
        eps: float = 1e-5,
    ) -> tuple[Any, Any, Any]:
        y, new_mean, new_var = super().batch_norm(
            x, gamma, beta, running_mean, running_var,
            training=training, momentum=momentum, eps=eps,
        )  # fmt: skip
        if training:
            x = self._float("x", x)
            axes, _ = self._channel_axes(x)
            var = x.var(axis=axes)
            new_var = self._float("running_var", running_var) * (1 - momentum)
            new_var = new_var + var * momentum
        return y, new_mean, new_var


class EvalUsesBatchStatistics(NumpyBackend):
    """In eval mode, batch_norm still normalises with the batch's own statistics.

    The bug: the train/eval mix-up, a ``training`` flag that only switches the
    running-statistics update off (as forgetting ``model.eval()`` does): the
    output of one sample then depends on the rest of the batch, and a batch of
    one is normalised to ``beta``.

    Caught by: batchnorm (eval uses the running statistics, does not depend on
    the other samples) and agreement (``batch_norm`` in eval mode).
    """

    name = "mutant-bn-eval-uses-batch-stats"
    family = "batchnorm"
    expected_killers = ("batchnorm", "agreement")

    @staticmethod
    def live_call(backend: NumpyBackend) -> Any:
        return backend.batch_norm(BN_X, *BN_PARAMS, training=False)

    def batch_norm(
        self,
        x: Any,
        gamma: Any,
        beta: Any,
        running_mean: Any,
        running_var: Any,
        *,
        training: bool,
        momentum: float = 0.1,
        eps: float = 1e-5,
    ) -> tuple[Any, Any, Any]:
        if training:
            return super().batch_norm(
                x, gamma, beta, running_mean, running_var,
                training=True, momentum=momentum, eps=eps,
            )  # fmt: skip
        xp = self.xp
        x, gamma, beta, running_mean, running_var = self._check_batch_norm(
            x, gamma, beta, running_mean, running_var, training, momentum, eps
        )
        axes, shape = self._channel_axes(x)
        mean = x.mean(axis=axes)
        var = x.var(axis=axes)
        y = (x - mean.reshape(shape)) / xp.sqrt(var + eps).reshape(shape)
        y = y * gamma.reshape(shape) + beta.reshape(shape)
        return y, running_mean.copy(), running_var.copy()


class MomentumSwapped(NumpyBackend):
    """The running statistics keep ``momentum`` of the old value, not ``1 - momentum``.

    The bug: Keras' convention (``moving = momentum * moving + (1 - momentum)
    batch``, momentum 0.99) in a backend whose contract is torch's
    (``(1 - momentum) running + momentum batch``, momentum 0.1). Invisible at
    momentum 0.5.

    Caught by: batchnorm (the momentum rule) and agreement (the running
    statistics returned by ``batch_norm``).
    """

    name = "mutant-bn-momentum-swapped"
    family = "batchnorm"
    expected_killers = ("batchnorm", "agreement")

    @staticmethod
    def live_call(backend: NumpyBackend) -> Any:
        return backend.batch_norm(BN_X, *BN_PARAMS, training=True)

    def batch_norm(
        self,
        x: Any,
        gamma: Any,
        beta: Any,
        running_mean: Any,
        running_var: Any,
        *,
        training: bool,
        momentum: float = 0.1,
        eps: float = 1e-5,
    ) -> tuple[Any, Any, Any]:
        # The correct update with momentum' = 1 - momentum is the swapped rule.
        swapped = 1.0 - momentum if training else momentum
        return super().batch_norm(
            x, gamma, beta, running_mean, running_var,
            training=training, momentum=swapped, eps=eps,
        )  # fmt: skip


class BackwardWithoutProjection(NumpyBackend):
    """batch_norm_backward in training drops the term through the batch variance.

    The bug: ``dx = gamma / sigma * (dy - mean(dy))``, the gradient as if the
    variance were a constant (only the mean's dependence on x kept), where it
    is ``gamma / sigma * (dy - mean(dy) - x_hat mean(dy x_hat))``. Small when
    ``dy`` is uncorrelated with ``x_hat``, never zero.

    Caught by: agreement (``batch_norm_backward``'s ``dx`` in training) and
    batchnorm (its gradient check).
    """

    name = "mutant-bn-backward-no-variance-term"
    family = "batchnorm"
    expected_killers = ("agreement", "batchnorm")

    @staticmethod
    def live_call(backend: NumpyBackend) -> Any:
        return backend.batch_norm_backward(
            BN_X[::-1] ** 2, BN_X, *BN_PARAMS, training=True
        )

    def batch_norm_backward(
        self,
        dout: Any,
        x: Any,
        gamma: Any,
        beta: Any,
        running_mean: Any,
        running_var: Any,
        *,
        training: bool,
        momentum: float = 0.1,
        eps: float = 1e-5,
    ) -> tuple[Any, Any, Any]:
        dx, dgamma, dbeta = super().batch_norm_backward(
            dout, x, gamma, beta, running_mean, running_var,
            training=training, momentum=momentum, eps=eps,
        )  # fmt: skip
        if not training:
            return dx, dgamma, dbeta
        x = self._float("x", x)
        dout = self._float("dout", dout)
        axes, shape = self._channel_axes(x)
        var = x.var(axis=axes)
        scale = self._float("gamma", gamma) / self.xp.sqrt(var + eps)
        dx = (dout - dout.mean(axis=axes).reshape(shape)) * scale.reshape(shape)
        return dx, dgamma, dbeta


class LayerNormUnbiasedVariance(NumpyBackend):
    """layer_norm normalizes by the unbiased variance (``ddof=1``).

    The bug: ``x.var(ddof=1)`` or ``torch.var``'s default (unbiased) in place
    of the biased variance that ``F.layer_norm`` uses: each sample's output
    variance is ``(M - 1)/M`` of the contract's, a factor of 1/2 with two
    normalized values.

    Caught by: layer_norm (each sample's variance before the affine step is
    ``s**2/(s**2 + eps)``), agreement and conventions (``layer_norm``).
    """

    name = "mutant-layer-norm-unbiased-variance"
    family = "batchnorm"
    expected_killers = ("layer_norm", "agreement", "conventions")

    @staticmethod
    def live_call(backend: NumpyBackend) -> Any:
        return backend.layer_norm(
            BN_X, np.ones(BN_X.shape[1:]), np.zeros(BN_X.shape[1:]), normalized_ndim=1
        )

    def layer_norm(
        self,
        x: Any,
        gamma: Any,
        beta: Any,
        *,
        normalized_ndim: int,
        eps: float = 1e-5,
    ) -> Any:
        xp = self.xp
        x, gamma, beta, axes, eps = self._check_layer_norm(
            x, gamma, beta, normalized_ndim, eps
        )
        centred = x - x.mean(axis=axes, keepdims=True)
        variance = xp.square(centred).sum(axis=axes, keepdims=True) / (
            gamma.size - 1 if gamma.size > 1 else 1
        )
        return centred / xp.sqrt(variance + eps) * gamma + beta


biased_running_var = BiasedRunningVariance()
eval_uses_batch_stats = EvalUsesBatchStatistics()
momentum_swapped = MomentumSwapped()
backward_no_variance_term = BackwardWithoutProjection()
layer_norm_unbiased_variance = LayerNormUnbiasedVariance()
