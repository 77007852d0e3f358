"""Normalization on torch: batch_norm, layer_norm, dropout_mask, dropout.

batch_norm is ``F.batch_norm``; its backward is autograd's vector-Jacobian
product of the normalised output, the running statistics held constant.
layer_norm is ``F.layer_norm`` over ``x.shape[-normalized_ndim:]``, its backward
autograd's.
dropout_mask draws float64 uniforms from a ``torch.Generator`` seeded by
``seed``. Where torch's convention differs from the contract:

* ``batch_norm``: ``F.batch_norm`` updates the running statistics in place; the
  contract forbids mutating inputs, so it works on clones and returns them.
* ``dropout``: ``F.dropout`` draws its own mask; the contract passes the mask in,
  so dropout is ``x * mask / (1 - p)`` and the mask comes from ``torch.rand``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from backends.torch.core import (
    F,
    Tensor,
    TorchCore,
    holds_everywhere,
    numpy_kind,
    torch,
)
from reference._checks import (
    require_bool_kind,
    require_non_negative_values,
    require_shape,
)
from reference.shapes import (
    BATCH_NORM_PARAMETERS,
    LAYER_NORM_PARAMETERS,
    batch_norm_hyper,
    dropout_hyper,
    dropout_mask_hyper,
    layer_norm_hyper,
)


def _batch_norm_output(
    x: Tensor,
    gamma: Tensor,
    beta: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
    training: bool,
    momentum: float,
    eps: float,
) -> Tensor:
    """The normalised output alone, for the backward (running stats untouched)."""
    if training:
        # Without running stats F.batch_norm normalises by the batch statistics
        # and updates nothing.
        return F.batch_norm(x, None, None, gamma, beta, True, momentum, eps)
    return F.batch_norm(x, running_mean, running_var, gamma, beta, False, momentum, eps)


def _dropout(x: Tensor, mask: Tensor, p: float, training: bool) -> Tensor:
    # F.dropout draws its own mask; the contract passes it in (inverted dropout).
    if not training:
        return x.clone()
    return x * mask.to(x.dtype) / (1.0 - p)


class Normalization(TorchCore):
    """batch_norm, layer_norm, dropout_mask, dropout."""

    def _batch_norm_args(
        self,
        x: Tensor,
        gamma: Tensor,
        beta: Tensor,
        running_mean: Tensor,
        running_var: Tensor,
        training: object,
        momentum: float,
        eps: float,
    ) -> tuple[list[Tensor], bool, float, float]:
        x = self._float_tensor("x", x, ndim=(2, 4))
        arrays = [x] + [
            self._float_tensor(name, value, ndim=1)
            for name, value in zip(
                BATCH_NORM_PARAMETERS,
                (gamma, beta, running_mean, running_var),
                strict=True,
            )
        ]
        training, momentum, eps = batch_norm_hyper(
            tuple(x.shape),
            [tuple(a.shape) for a in arrays[1:]],
            training,
            momentum,
            eps,
        )
        require_non_negative_values("running_var", holds_everywhere(arrays[4] >= 0))
        return arrays, training, momentum, eps

    def batch_norm(
        self,
        x: Tensor,
        gamma: Tensor,
        beta: Tensor,
        running_mean: Tensor,
        running_var: Tensor,
        *,
        training: bool,
        momentum: float = 0.1,
        eps: float = 1e-5,
    ) -> tuple[Tensor, Tensor, Tensor]:
        arrays, training, momentum, eps = self._batch_norm_args(
            x, gamma, beta, running_mean, running_var, training, momentum, eps
        )
        x, gamma, beta, running_mean, running_var = arrays
        # F.batch_norm updates running_mean and running_var IN PLACE (with the
        # unbiased batch variance and new = (1 - momentum) * old + momentum *
        # batch, the contract's convention); the contract forbids mutating
        # inputs, so it updates clones, which are returned. In eval it reads them
        # only, and the clones are the contract's copies.
        dtype = self._common_dtype(x, gamma, beta, running_mean, running_var)
        new_mean = running_mean.to(dtype, copy=True)
        new_var = running_var.to(dtype, copy=True)
        with torch.no_grad():
            y = F.batch_norm(
                x.to(dtype),
                new_mean,
                new_var,
                gamma.to(dtype),
                beta.to(dtype),
                training,
                momentum,
                eps,
            )
        return y, new_mean, new_var

    def batch_norm_backward(
        self,
        dout: Tensor,
        x: Tensor,
        gamma: Tensor,
        beta: Tensor,
        running_mean: Tensor,
        running_var: Tensor,
        *,
        training: bool,
        momentum: float = 0.1,
        eps: float = 1e-5,
    ) -> tuple[Tensor, Tensor, Tensor]:
        arrays, training, momentum, eps = self._batch_norm_args(
            x, gamma, beta, running_mean, running_var, training, momentum, eps
        )

        def function(
            x: Tensor, gamma: Tensor, beta: Tensor, mean: Tensor, var: Tensor
        ) -> Tensor:
            return _batch_norm_output(
                x, gamma, beta, mean, var, training, momentum, eps
            )

        # The running statistics are constants: no gradient, none returned.
        grads = self._backward(
            function,
            dout,
            *arrays,
            differentiable=(True, True, True, False, False),
        )
        return grads[:3]

    def _layer_norm_args(
        self,
        x: Tensor,
        gamma: Tensor,
        beta: Tensor,
        normalized_ndim: object,
        eps: float,
    ) -> tuple[list[Tensor], Callable]:
        arrays = [
            self._float_tensor(name, value)
            for name, value in zip(
                ("x", *LAYER_NORM_PARAMETERS), (x, gamma, beta), strict=True
            )
        ]
        normalized_ndim, eps = layer_norm_hyper(
            tuple(arrays[0].shape),
            [tuple(a.shape) for a in arrays[1:]],
            normalized_ndim,
            eps,
        )

        def function(x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
            return F.layer_norm(x, x.shape[-normalized_ndim:], gamma, beta, eps)

        return arrays, function

    def layer_norm(
        self,
        x: Tensor,
        gamma: Tensor,
        beta: Tensor,
        *,
        normalized_ndim: int,
        eps: float = 1e-5,
    ) -> Tensor:
        arrays, function = self._layer_norm_args(x, gamma, beta, normalized_ndim, eps)
        return self._forward(function, *arrays)

    def layer_norm_backward(
        self,
        dout: Tensor,
        x: Tensor,
        gamma: Tensor,
        beta: Tensor,
        *,
        normalized_ndim: int,
        eps: float = 1e-5,
    ) -> tuple[Tensor, Tensor, Tensor]:
        arrays, function = self._layer_norm_args(x, gamma, beta, normalized_ndim, eps)
        return self._backward(function, dout, *arrays)

    def dropout_mask(self, shape: Sequence[int], *, p: float, seed: int) -> Tensor:
        """True where kept: ``u >= p`` for ``u ~ U[0, 1)`` from a seeded generator."""
        dims, p, seed = dropout_mask_hyper(shape, p, seed)
        generator = self._generator(seed)
        # float64 uniforms, so P(u >= p) is 1 - p to within 2**-53.
        uniform = torch.rand(
            dims,
            generator=generator,
            dtype=torch.float64,
            device=self._torch_device,
        )
        return uniform >= p

    def _dropout_args(
        self, x: Tensor, mask: Tensor, p: float, training: object
    ) -> tuple[Tensor, Tensor, Callable]:
        x = self._float_tensor("x", x)
        mask = self._tensor("mask", mask)
        require_bool_kind("mask", numpy_kind(mask), mask.dtype)
        require_shape("mask", mask, tuple(x.shape))
        p, training = dropout_hyper(p, training)

        def function(x: Tensor, mask: Tensor) -> Tensor:
            return _dropout(x, mask, p, training)

        return x, mask, function

    def dropout(self, x: Tensor, mask: Tensor, *, p: float, training: bool) -> Tensor:
        x, mask, function = self._dropout_args(x, mask, p, training)
        return self._forward(function, x, mask)

    def dropout_backward(
        self, dout: Tensor, x: Tensor, mask: Tensor, *, p: float, training: bool
    ) -> tuple[Tensor, None]:
        x, mask, function = self._dropout_args(x, mask, p, training)
        return self._backward(function, dout, x, mask)
