"""The PyTorch backend: ``torch.nn.functional``, ``torch.nn.init``, ``torch.optim``.

Forwards call ``torch.nn.functional`` (or plain tensor ops where torch has no
primitive), every backward is the vector-Jacobian product of that same forward
through ``torch.autograd.grad`` with the caller's ``dout``, the initializers are
``torch.nn.init`` with a ``torch.Generator`` seeded by ``seed``, and the optimizer
steps are ``torch.optim`` itself, one single-tensor optimizer per ``init_state``.

Two backends live here: :data:`backend` (``"torch"``, on the CPU) and
:data:`cuda_backend` (``"torch-cuda"``, on ``torch.device("cuda")``). Both load
when torch is missing or CUDA is absent, and then say why in
``unavailable_reason``.

Where torch's convention differs from the contract, the backend adapts, with a
comment at the place. In short:

* ``mse_loss`` and both binary cross-entropies: torch means over every element;
  the contract sums over the non-batch axes and means over the batch, so they
  use ``reduction="sum"`` divided by ``N``.
* ``binary_cross_entropy_backward``: torch's gradient divides by
  ``max(p (1 - p), 1e-12)``, which is not the derivative of its clamped forward
  within 1e-12 of 0 and 1; the backward differentiates the same clamped logs
  written in torch ops instead.
* ``softplus``: ``F.softplus`` returns ``x`` past ``threshold=20``, off by up to
  ``2e-9`` in float64; float64 uses ``threshold=40``, where it is exact.
* ``multiclass_hinge_loss``: ``F.multi_margin_loss`` (``p=1``) divides each
  sample's sum over the wrong classes by the class count ``C``; the contract does
  not, so the sum is multiplied back by ``C`` (and divided by ``N``).
* ``clip_grad_norm``: ``torch.nn.utils.clip_grad_norm_`` scales by
  ``max_norm / (total_norm + 1e-6)`` and clips in place; the contract scales by
  exactly ``max_norm / total_norm`` when ``total_norm > max_norm`` and mutates
  nothing, so it is computed here with torch ops.
* ``batch_norm``: ``F.batch_norm`` updates the running statistics in place; the
  contract forbids mutating inputs, so it works on clones and returns them.
* ``dropout``: ``F.dropout`` draws its own mask; the contract passes the mask in,
  so dropout is ``x * mask / (1 - p)`` and the mask comes from ``torch.rand``.
* ``maxout``: torch has no primitive; it is one ``F.linear`` over the stacked
  pieces and a max over them.
* Optimizers: ``torch.optim`` keys its state by the parameter tensor object; the
  contract lets the caller pass any tensor holding the values, so the state owns
  its own parameter tensor and copies the caller's values into it when needed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from reference import initializers, optimizers
from reference._checks import (
    ArgumentKindError,
    require_array_fits,
    require_bool_kind,
    require_float_kind,
    require_given,
    require_integer_kind,
    require_labels_in_range,
    require_labels_shape,
    require_ndim,
    require_non_negative,
    require_non_negative_values,
    require_positive,
    require_probabilities,
    require_shape,
)
from reference.shapes import (
    BATCH_NORM_PARAMETERS,
    batch_norm_hyper,
    conv2d_geometry,
    dropout_hyper,
    dropout_mask_hyper,
    linear_shapes,
    max_pool2d_geometry,
    maxout_shapes,
    pool2d_geometry,
    prelu_alpha_shape,
    require_batch,
    require_min_ndim,
    require_scores,
    softmax_axis,
    upsample2d_geometry,
)

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the backend still loads, and says why it cannot run
    torch = None  # type: ignore[assignment]
    F = None  # type: ignore[assignment]
    _IMPORT_ERROR: str | None = "PyTorch is not installed"
except OSError as error:  # a broken install (missing shared library)
    torch = None  # type: ignore[assignment]
    F = None  # type: ignore[assignment]
    _IMPORT_ERROR = f"PyTorch cannot be imported: {error}"
else:
    _IMPORT_ERROR = None

Tensor = Any  # torch.Tensor when torch is installed

_OPTIMIZER_CLASSES = {
    "sgd": "SGD",
    "adagrad": "Adagrad",
    "rmsprop": "RMSprop",
    "adadelta": "Adadelta",
    "adam": "Adam",
}
# Binary cross-entropy clamps log p at -100 (torch's and the contract's choice).
_LOG_CLAMP = -100.0
_SMALLEST_PROBABILITY = math.exp(_LOG_CLAMP)
# torch.Generator.manual_seed takes seeds below 2**64; larger ones are folded.
_TORCH_SEED_LIMIT = 2**64


# --------------------------------------------------------------------- checks


def _torch_seed(seed: int) -> int:
    """A checked seed as torch.Generator takes it (below 2**64; larger ones folded)."""
    if seed >= _TORCH_SEED_LIMIT:
        seed = int(np.random.SeedSequence(seed).generate_state(1, np.uint64)[0])
    return seed


def _dtype_kind(tensor: Tensor) -> str:
    """NumPy's kind letter for a tensor's dtype: what the shared checks read."""
    dtype = tensor.dtype
    if dtype == torch.bool:
        return "b"
    if dtype.is_floating_point:
        return "f"
    if dtype.is_complex:
        return "c"
    return "i" if dtype.is_signed else "u"


def _all(condition: Tensor) -> bool:
    """Whether ``condition`` holds everywhere (one read-back on a GPU)."""
    return bool(condition.all())


# ---------------------------------------------------------- pure computations
# Each takes validated tensors and returns the op's output; the forward runs it
# under no_grad, the backward differentiates it with autograd.


def _maxout(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    # No torch primitive: the k linear pieces as one F.linear over the stacked
    # (k * D_out, D_in) weights, then the max over k. torch.max over a dim sends
    # the gradient to the first maximal piece, as the contract says.
    pieces, out_features, in_features = w.shape
    stacked = F.linear(x, w.reshape(pieces * out_features, in_features), b.reshape(-1))
    return stacked.reshape(x.shape[0], pieces, out_features).max(dim=1).values


def _softplus(x: Tensor) -> Tensor:
    # F.softplus returns x itself (derivative 1) above its threshold, 20 by
    # default, where the contract's log(1 + e^x) differs by e^-x: below float32's
    # resolution, but up to 2e-9 (1e-9 relative, in the gradient) in float64. A
    # threshold of 40 for float64 puts the switch where e^-40 < 2**-53 and
    # e^40 is still far from overflow, so both branches agree to the last bit.
    threshold = 40.0 if x.dtype == torch.float64 else 20.0
    return F.softplus(x, beta=1.0, threshold=threshold)


def _dropout(x: Tensor, mask: Tensor, p: float, training: bool) -> Tensor:
    # F.dropout draws its own mask; the contract passes it in (inverted dropout).
    if not training:
        return x.clone()
    return x * mask.to(x.dtype) / (1.0 - p)


def _flatten(x: Tensor) -> Tensor:
    # A copy, not torch.flatten's view: the output never aliases the input.
    return torch.flatten(x, 1).clone()


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


def _mse_loss(pred: Tensor, target: Tensor) -> Tensor:
    # torch's default reduction="mean" divides by the element count; the contract
    # sums over the non-batch axes and means over the batch.
    return F.mse_loss(pred, target, reduction="sum") / pred.shape[0]


def _binary_cross_entropy(prob: Tensor, target: Tensor) -> Tensor:
    # Same adaptation as mse_loss: sum, then divide by the batch size. torch
    # clamps each log at -100, as the contract does.
    return F.binary_cross_entropy(prob, target, reduction="sum") / prob.shape[0]


def _binary_cross_entropy_for_gradient(prob: Tensor, target: Tensor) -> Tensor:
    """The function of :func:`_binary_cross_entropy`, written for its gradient.

    F.binary_cross_entropy's backward is ``(p - t) / max(p (1 - p), 1e-12)``: not
    the derivative of its forward where ``p`` or ``1 - p`` is below 1e-12 (at
    ``p = 0`` and ``t = 1`` it gives -1e12, where the clamped log is constant and
    the contract's derivative is 0). The same clamped logs in torch ops give
    autograd the exact derivative: ``t / p`` while ``p >= e^-100``, else 0.

    The log is clamped, not the probability: in float32, ``e^-100`` is a
    subnormal (3.7e-44 held with 6 significant bits), whose log is -99.983, so
    clamping ``p`` at it gave a target gradient of 99.983 instead of 100 at
    ``p = 0`` and ``p = 1``. The ``where`` feeds the log 1 where the clamp
    applies, so its unselected branch has a finite gradient (no 0 * inf).
    """
    return (
        -(target * _clamped_log(prob) + (1.0 - target) * _clamped_log(1.0 - prob)).sum()
        / prob.shape[0]
    )


def _clamped_log(p: Tensor) -> Tensor:
    """``max(log p, -100)``, differentiable everywhere with derivative 0 below."""
    above = p >= _SMALLEST_PROBABILITY
    return torch.where(above, torch.log(torch.where(above, p, 1.0)), _LOG_CLAMP)


def _binary_cross_entropy_with_logits(logits: Tensor, target: Tensor) -> Tensor:
    # Same adaptation as mse_loss: sum, then divide by the batch size.
    return (
        F.binary_cross_entropy_with_logits(logits, target, reduction="sum")
        / logits.shape[0]
    )


def _softmax_cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    return F.cross_entropy(logits, labels, reduction="sum") / logits.shape[0]


def _multiclass_hinge_loss(scores: Tensor, labels: Tensor, margin: float) -> Tensor:
    # F.multi_margin_loss with p=1 is, per sample,
    # sum_{j != y} max(0, margin - s_y + s_j) / C: the hinge of the notes divided
    # by the class count C. The contract has no 1/C, so multiply it back, and
    # mean over the batch.
    batch, classes = scores.shape
    total = F.multi_margin_loss(scores, labels, p=1, margin=margin, reduction="sum")
    return total * classes / batch


def _l1_penalty(w: Tensor) -> Tensor:
    return w.abs().sum()


def _l2_penalty(w: Tensor) -> Tensor:
    return (w * w).sum()


def _elastic_net_penalty(w: Tensor, beta: float) -> Tensor:
    return (beta * (w * w) + w.abs()).sum()


# ------------------------------------------------------------------ backend


class TorchBackend:
    """The contract's operations on torch tensors, on ``device`` "cpu" or "cuda"."""

    dtypes: tuple[str, ...] = ("float32", "float64")

    def __init__(self, device: str) -> None:
        if device not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
        self.torch_device_name = device
        self.name = "torch" if device == "cpu" else "torch-cuda"
        self.device = "cpu" if device == "cpu" else "gpu"
        self.unavailable_reason: str | None = _IMPORT_ERROR
        if self.unavailable_reason is None and device == "cuda":
            if not torch.cuda.is_available():
                self.unavailable_reason = "CUDA is not available to torch"
        self._device = torch.device(device) if torch is not None else None

    def __repr__(self) -> str:
        state = (
            f"unavailable: {self.unavailable_reason}"
            if self.unavailable_reason
            else "available"
        )
        return f"<TorchBackend {self.name!r} ({state})>"

    # ------------------------------------------------------------ the object

    def asarray(self, a: np.ndarray, dtype: str | None = None) -> Tensor:
        """A tensor on this backend's device holding a copy of ``a``."""
        if self.unavailable_reason is not None:
            raise RuntimeError(f"backend {self.name!r}: {self.unavailable_reason}")
        # np.array copies, so the tensor never shares memory with the caller's array.
        host = np.array(a, dtype=dtype, copy=True, order="C")
        return torch.from_numpy(host).to(self._device)

    def to_numpy(self, a: Tensor) -> np.ndarray:
        """A host copy of ``a`` (0-d tensors give 0-d arrays)."""
        if torch is not None and isinstance(a, torch.Tensor):
            return np.array(a.detach().cpu().numpy(), copy=True)
        return np.asarray(a)

    def synchronize(self) -> None:
        if self.torch_device_name == "cuda" and self.unavailable_reason is None:
            torch.cuda.synchronize()

    # -------------------------------------------------------------- helpers

    def _tensor(self, name: str, value: object) -> Tensor:
        """``value`` as a tensor on this device; numbers and NumPy arrays are taken."""
        require_given(name, value)
        if not isinstance(value, torch.Tensor):
            array = np.asarray(value)
            if array.dtype.kind not in "biufc":
                raise ArgumentKindError(
                    f"{name} must be an array of numbers, got dtype {array.dtype}"
                )
            value = torch.as_tensor(array)
        if value.device.type != self._device.type:
            value = value.to(self._device)
        return value

    def _float(
        self, name: str, value: object, ndim: int | Sequence[int] | None = None
    ) -> Tensor:
        """``value`` as a floating-point tensor (the shared checks)."""
        tensor = self._tensor(name, value)
        require_float_kind(name, _dtype_kind(tensor), tensor.dtype)
        if ndim is not None:
            require_ndim(name, tuple(tensor.shape), ndim)
        require_array_fits(name, tuple(tensor.shape), tensor.element_size())
        return tensor

    def _labels(self, name: str, value: object, batch: int, classes: int) -> Tensor:
        labels = self._tensor(name, value)
        require_labels_shape(name, tuple(labels.shape), batch)
        require_integer_kind(name, _dtype_kind(labels), labels.dtype)
        require_labels_in_range(name, _all((labels >= 0) & (labels < classes)), classes)
        # F.cross_entropy and F.multi_margin_loss want int64 class ids.
        return labels.to(torch.long)

    def _generator(self, seed: object) -> Any:
        """A generator on this device seeded by ``seed``, the only randomness."""
        return torch.Generator(device=self._device).manual_seed(_torch_seed(seed))

    def _mask(self, value: object, shape: tuple[int, ...]) -> Tensor:
        mask = self._tensor("mask", value)
        require_bool_kind("mask", _dtype_kind(mask), mask.dtype)
        require_shape("mask", mask, shape)
        return mask

    @staticmethod
    def _common_dtype(*arrays: Tensor) -> Any:
        dtype = arrays[0].dtype
        for array in arrays[1:]:
            dtype = torch.promote_types(dtype, array.dtype)
        return dtype

    def _forward(self, function: Callable[..., Tensor], *arrays: Any) -> Any:
        with torch.no_grad():
            return function(*self._promoted(arrays))

    def _promoted(self, arrays: Sequence[Any]) -> list[Any]:
        """Float arguments cast to their common dtype (a no-op when they agree)."""
        floats = [
            a for a in arrays if isinstance(a, torch.Tensor) and a.is_floating_point()
        ]
        if not floats:
            return list(arrays)
        dtype = self._common_dtype(*floats)
        return [
            a.to(dtype) if isinstance(a, torch.Tensor) and a.is_floating_point() else a
            for a in arrays
        ]

    def _dout(self, dout: object, out: Tensor) -> Tensor:
        gradient = self._float("dout", dout)
        if out.ndim == 0 and gradient.numel() == 1:
            gradient = gradient.reshape(())
        require_shape("dout", gradient, tuple(out.shape))
        return gradient.to(out.dtype)

    def _backward(
        self,
        function: Callable[..., Tensor],
        dout: object,
        *arrays: Any,
        differentiable: Sequence[bool] | None = None,
    ) -> tuple[Tensor | None, ...]:
        """The vector-Jacobian product of ``function`` at ``arrays`` with ``dout``.

        One entry per array: the gradient (shape and dtype of the array) for the
        differentiable ones, ``None`` for the others (labels, masks).
        """
        if differentiable is None:
            differentiable = [
                isinstance(a, torch.Tensor) and a.is_floating_point() for a in arrays
            ]
        # Fresh leaves that share storage with the inputs; autograd never writes
        # to them. The cast to the common dtype happens inside the graph, so each
        # gradient comes back in the dtype of its own input.
        leaves = [
            a.detach().requires_grad_(True) if wanted else a
            for a, wanted in zip(arrays, differentiable, strict=True)
        ]
        with torch.enable_grad():
            out = function(*self._promoted(leaves))
        gradient = self._dout(dout, out)
        inputs = [
            leaf for leaf, wanted in zip(leaves, differentiable, strict=True) if wanted
        ]
        if out.requires_grad:
            grads = list(
                torch.autograd.grad(
                    out, inputs, grad_outputs=gradient, allow_unused=True
                )
            )
        else:
            grads = [None] * len(inputs)
        grads = [
            torch.zeros_like(leaf) if grad is None else grad
            for leaf, grad in zip(inputs, grads, strict=True)
        ]
        result: list[Tensor | None] = []
        for wanted in differentiable:
            result.append(grads.pop(0).detach() if wanted else None)
        return tuple(result)

    # ---------------------------------------------------------- activations

    def relu(self, x: Tensor) -> Tensor:
        return self._forward(F.relu, self._float("x", x))

    def relu_backward(self, dout: Tensor, x: Tensor) -> tuple[Tensor]:
        return self._backward(F.relu, dout, self._float("x", x))

    def _leaky_relu_args(self, x: Tensor, alpha: float) -> tuple[Tensor, Callable]:
        alpha = require_non_negative("alpha", alpha)
        return self._float("x", x), lambda x: F.leaky_relu(x, negative_slope=alpha)

    def leaky_relu(self, x: Tensor, *, alpha: float = 0.01) -> Tensor:
        x, function = self._leaky_relu_args(x, alpha)
        return self._forward(function, x)

    def leaky_relu_backward(
        self, dout: Tensor, x: Tensor, *, alpha: float = 0.01
    ) -> tuple[Tensor]:
        x, function = self._leaky_relu_args(x, alpha)
        return self._backward(function, dout, x)

    def _prelu_args(self, x: Tensor, alpha: Tensor) -> tuple[Tensor, Tensor]:
        x = self._float("x", x)
        alpha = self._float("alpha", alpha, ndim=1)
        # F.prelu applies a (C,) alpha over axis 1.
        prelu_alpha_shape(tuple(x.shape), tuple(alpha.shape))
        return x, alpha

    def prelu(self, x: Tensor, alpha: Tensor) -> Tensor:
        return self._forward(F.prelu, *self._prelu_args(x, alpha))

    def prelu_backward(
        self, dout: Tensor, x: Tensor, alpha: Tensor
    ) -> tuple[Tensor, Tensor]:
        return self._backward(F.prelu, dout, *self._prelu_args(x, alpha))

    def _elu_args(self, x: Tensor, alpha: float) -> tuple[Tensor, Callable]:
        alpha = require_non_negative("alpha", alpha)
        return self._float("x", x), lambda x: F.elu(x, alpha=alpha)

    def elu(self, x: Tensor, *, alpha: float = 1.0) -> Tensor:
        x, function = self._elu_args(x, alpha)
        return self._forward(function, x)

    def elu_backward(
        self, dout: Tensor, x: Tensor, *, alpha: float = 1.0
    ) -> tuple[Tensor]:
        x, function = self._elu_args(x, alpha)
        return self._backward(function, dout, x)

    def selu(self, x: Tensor) -> Tensor:
        return self._forward(F.selu, self._float("x", x))

    def selu_backward(self, dout: Tensor, x: Tensor) -> tuple[Tensor]:
        return self._backward(F.selu, dout, self._float("x", x))

    def sigmoid(self, x: Tensor) -> Tensor:
        return self._forward(torch.sigmoid, self._float("x", x))

    def sigmoid_backward(self, dout: Tensor, x: Tensor) -> tuple[Tensor]:
        return self._backward(torch.sigmoid, dout, self._float("x", x))

    def tanh(self, x: Tensor) -> Tensor:
        return self._forward(torch.tanh, self._float("x", x))

    def tanh_backward(self, dout: Tensor, x: Tensor) -> tuple[Tensor]:
        return self._backward(torch.tanh, dout, self._float("x", x))

    def softplus(self, x: Tensor) -> Tensor:
        return self._forward(_softplus, self._float("x", x))

    def softplus_backward(self, dout: Tensor, x: Tensor) -> tuple[Tensor]:
        return self._backward(_softplus, dout, self._float("x", x))

    def abs_rectify(self, x: Tensor) -> Tensor:
        return self._forward(torch.abs, self._float("x", x))

    def abs_rectify_backward(self, dout: Tensor, x: Tensor) -> tuple[Tensor]:
        # autograd's derivative of |x| is sign(x), 0 at x = 0.
        return self._backward(torch.abs, dout, self._float("x", x))

    # --------------------------------------------------------------- layers

    def _linear_args(self, x: Tensor, w: Tensor, b: Tensor) -> list[Tensor]:
        x = self._float("x", x, ndim=2)
        w = self._float("w", w, ndim=2)
        b = self._float("b", b, ndim=1)
        linear_shapes(tuple(x.shape), tuple(w.shape), tuple(b.shape), x.element_size())
        return [x, w, b]

    def linear(self, x: Tensor, w: Tensor, b: Tensor) -> Tensor:
        return self._forward(F.linear, *self._linear_args(x, w, b))

    def linear_backward(
        self, dout: Tensor, x: Tensor, w: Tensor, b: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        return self._backward(F.linear, dout, *self._linear_args(x, w, b))

    def _conv2d_args(
        self, x: Tensor, w: Tensor, b: Tensor, stride: Any, padding: Any
    ) -> tuple[list[Tensor], Callable]:
        x = self._float("x", x, ndim=4)
        w = self._float("w", w, ndim=4)
        b = self._float("b", b, ndim=1)
        stride, padding, _ = conv2d_geometry(
            tuple(x.shape),
            tuple(w.shape),
            tuple(b.shape),
            stride,
            padding,
            x.element_size(),
        )

        def function(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
            return F.conv2d(x, w, b, stride=stride, padding=padding)

        return [x, w, b], function

    def conv2d(
        self, x: Tensor, w: Tensor, b: Tensor, *, stride: Any = 1, padding: Any = 0
    ) -> Tensor:
        arrays, function = self._conv2d_args(x, w, b, stride, padding)
        return self._forward(function, *arrays)

    def conv2d_backward(
        self,
        dout: Tensor,
        x: Tensor,
        w: Tensor,
        b: Tensor,
        *,
        stride: Any = 1,
        padding: Any = 0,
    ) -> tuple[Tensor, Tensor, Tensor]:
        arrays, function = self._conv2d_args(x, w, b, stride, padding)
        return self._backward(function, dout, *arrays)

    def _max_pool2d_args(
        self, x: Tensor, kernel_size: Any, stride: Any, padding: Any
    ) -> tuple[Tensor, Callable]:
        x = self._float("x", x, ndim=4)
        # stride None means the kernel size, as in torch.
        kernel, step, pad, _ = max_pool2d_geometry(
            tuple(x.shape), kernel_size, stride, padding, x.element_size()
        )

        # F.max_pool2d pads with -inf and sends the gradient to the first maximum
        # of each window in row-major order, as the contract says.
        def function(x: Tensor) -> Tensor:
            return F.max_pool2d(x, kernel, step, pad)

        return x, function

    def max_pool2d(
        self, x: Tensor, *, kernel_size: Any, stride: Any = None, padding: Any = 0
    ) -> Tensor:
        x, function = self._max_pool2d_args(x, kernel_size, stride, padding)
        return self._forward(function, x)

    def max_pool2d_backward(
        self,
        dout: Tensor,
        x: Tensor,
        *,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
    ) -> tuple[Tensor]:
        x, function = self._max_pool2d_args(x, kernel_size, stride, padding)
        return self._backward(function, dout, x)

    def _avg_pool2d_args(
        self, x: Tensor, kernel_size: Any, stride: Any
    ) -> tuple[Tensor, Callable]:
        x = self._float("x", x, ndim=4)
        kernel, step, _, _ = pool2d_geometry(
            tuple(x.shape), kernel_size, stride, 0, x.element_size()
        )

        def function(x: Tensor) -> Tensor:
            return F.avg_pool2d(x, kernel, step)

        return x, function

    def avg_pool2d(self, x: Tensor, *, kernel_size: Any, stride: Any = None) -> Tensor:
        x, function = self._avg_pool2d_args(x, kernel_size, stride)
        return self._forward(function, x)

    def avg_pool2d_backward(
        self, dout: Tensor, x: Tensor, *, kernel_size: Any, stride: Any = None
    ) -> tuple[Tensor]:
        x, function = self._avg_pool2d_args(x, kernel_size, stride)
        return self._backward(function, dout, x)

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
        x = self._float("x", x, ndim=(2, 4))
        arrays = [x] + [
            self._float(name, value, ndim=1)
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
        require_non_negative_values("running_var", _all(arrays[4] >= 0))
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

    def dropout_mask(self, shape: Sequence[int], *, p: float, seed: int) -> Tensor:
        """True where kept: ``u >= p`` for ``u ~ U[0, 1)`` from a seeded generator."""
        dims, p, seed = dropout_mask_hyper(shape, p, seed)
        generator = self._generator(seed)
        # float64 uniforms, so P(u >= p) is 1 - p to within 2**-53.
        uniform = torch.rand(
            dims,
            generator=generator,
            dtype=torch.float64,
            device=self._device,
        )
        return uniform >= p

    def _dropout_args(
        self, x: Tensor, mask: Tensor, p: float, training: object
    ) -> tuple[Tensor, Tensor, Callable]:
        x = self._float("x", x)
        mask = self._mask(mask, tuple(x.shape))
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

    def flatten(self, x: Tensor) -> Tensor:
        x = self._float("x", x)
        require_min_ndim("x", tuple(x.shape), 2)
        return self._forward(_flatten, x)

    def flatten_backward(self, dout: Tensor, x: Tensor) -> tuple[Tensor]:
        x = self._float("x", x)
        require_min_ndim("x", tuple(x.shape), 2)
        return self._backward(_flatten, dout, x)

    def _axis_args(self, x: Tensor, axis: object) -> tuple[Tensor, int]:
        x = self._float("x", x)
        return x, softmax_axis(tuple(x.shape), axis)

    def softmax(self, x: Tensor, *, axis: int = -1) -> Tensor:
        x, axis = self._axis_args(x, axis)
        return self._forward(lambda x: F.softmax(x, dim=axis), x)

    def softmax_backward(
        self, dout: Tensor, x: Tensor, *, axis: int = -1
    ) -> tuple[Tensor]:
        x, axis = self._axis_args(x, axis)
        return self._backward(lambda x: F.softmax(x, dim=axis), dout, x)

    def log_softmax(self, x: Tensor, *, axis: int = -1) -> Tensor:
        x, axis = self._axis_args(x, axis)
        return self._forward(lambda x: F.log_softmax(x, dim=axis), x)

    def log_softmax_backward(
        self, dout: Tensor, x: Tensor, *, axis: int = -1
    ) -> tuple[Tensor]:
        x, axis = self._axis_args(x, axis)
        return self._backward(lambda x: F.log_softmax(x, dim=axis), dout, x)

    def _maxout_args(self, x: Tensor, w: Tensor, b: Tensor) -> list[Tensor]:
        x = self._float("x", x, ndim=2)
        w = self._float("w", w, ndim=3)
        b = self._float("b", b, ndim=2)
        maxout_shapes(tuple(x.shape), tuple(w.shape), tuple(b.shape), x.element_size())
        return [x, w, b]

    def maxout(self, x: Tensor, w: Tensor, b: Tensor) -> Tensor:
        return self._forward(_maxout, *self._maxout_args(x, w, b))

    def maxout_backward(
        self, dout: Tensor, x: Tensor, w: Tensor, b: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        return self._backward(_maxout, dout, *self._maxout_args(x, w, b))

    def _upsample2d_args(
        self, x: Tensor, scale_factor: object, mode: object
    ) -> tuple[Tensor, Callable]:
        x = self._float("x", x, ndim=4)
        factor, mode = upsample2d_geometry(
            tuple(x.shape), scale_factor, mode, x.element_size()
        )
        if mode == "bilinear":
            # Half-pixel centres, source coordinate clamped at 0: torch's
            # align_corners=False is the contract's convention.
            def function(x: Tensor) -> Tensor:
                return F.interpolate(
                    x, scale_factor=factor, mode="bilinear", align_corners=False
                )
        else:
            # "nearest" picks source floor(i / factor), i.e. each pixel repeated.
            def function(x: Tensor) -> Tensor:
                return F.interpolate(x, scale_factor=factor, mode="nearest")

        return x, function

    def upsample2d(self, x: Tensor, *, scale_factor: int, mode: str) -> Tensor:
        x, function = self._upsample2d_args(x, scale_factor, mode)
        return self._forward(function, x)

    def upsample2d_backward(
        self, dout: Tensor, x: Tensor, *, scale_factor: int, mode: str
    ) -> tuple[Tensor]:
        x, function = self._upsample2d_args(x, scale_factor, mode)
        return self._backward(function, dout, x)

    # --------------------------------------------------------------- losses

    def _pair_args(
        self, first_name: str, first: Tensor, target: Tensor
    ) -> list[Tensor]:
        first = self._float(first_name, first)
        require_batch(first_name, tuple(first.shape))
        target = self._float("target", target)
        require_shape("target", target, tuple(first.shape))
        return [first, target]

    def mse_loss(self, pred: Tensor, target: Tensor) -> Tensor:
        return self._forward(_mse_loss, *self._pair_args("pred", pred, target))

    def mse_loss_backward(
        self, dout: Tensor, pred: Tensor, target: Tensor
    ) -> tuple[Tensor, Tensor]:
        return self._backward(_mse_loss, dout, *self._pair_args("pred", pred, target))

    def _binary_cross_entropy_args(self, prob: Tensor, target: Tensor) -> list[Tensor]:
        prob, target = self._pair_args("prob", prob, target)
        # F.binary_cross_entropy raises RuntimeError for prob outside [0, 1] and
        # accepts any target; the reference refuses both with a ValueError.
        self._require_probabilities("prob", prob)
        self._require_probabilities("target", target)
        return [prob, target]

    def _binary_cross_entropy_with_logits_args(
        self, logits: Tensor, target: Tensor
    ) -> list[Tensor]:
        logits, target = self._pair_args("logits", logits, target)
        self._require_probabilities("target", target)
        return [logits, target]

    @staticmethod
    def _require_probabilities(name: str, array: Tensor) -> None:
        require_probabilities(name, _all((array >= 0) & (array <= 1)))

    def binary_cross_entropy(self, prob: Tensor, target: Tensor) -> Tensor:
        return self._forward(
            _binary_cross_entropy, *self._binary_cross_entropy_args(prob, target)
        )

    def binary_cross_entropy_backward(
        self, dout: Tensor, prob: Tensor, target: Tensor
    ) -> tuple[Tensor, Tensor]:
        return self._backward(
            _binary_cross_entropy_for_gradient,
            dout,
            *self._binary_cross_entropy_args(prob, target),
        )

    def binary_cross_entropy_with_logits(
        self, logits: Tensor, target: Tensor
    ) -> Tensor:
        return self._forward(
            _binary_cross_entropy_with_logits,
            *self._binary_cross_entropy_with_logits_args(logits, target),
        )

    def binary_cross_entropy_with_logits_backward(
        self, dout: Tensor, logits: Tensor, target: Tensor
    ) -> tuple[Tensor, Tensor]:
        return self._backward(
            _binary_cross_entropy_with_logits,
            dout,
            *self._binary_cross_entropy_with_logits_args(logits, target),
        )

    def _classification_args(
        self, name: str, scores: Tensor, labels: Tensor
    ) -> list[Tensor]:
        scores = self._float(name, scores, ndim=2)
        batch, classes = require_scores(name, tuple(scores.shape))
        return [scores, self._labels("labels", labels, batch, classes)]

    def softmax_cross_entropy(self, logits: Tensor, labels: Tensor) -> Tensor:
        return self._forward(
            _softmax_cross_entropy,
            *self._classification_args("logits", logits, labels),
        )

    def softmax_cross_entropy_backward(
        self, dout: Tensor, logits: Tensor, labels: Tensor
    ) -> tuple[Tensor, None]:
        return self._backward(
            _softmax_cross_entropy,
            dout,
            *self._classification_args("logits", logits, labels),
        )

    def _hinge_args(
        self, scores: Tensor, labels: Tensor, margin: float
    ) -> tuple[list[Tensor], Callable]:
        arrays = self._classification_args("scores", scores, labels)
        margin = require_non_negative("margin", margin)

        def function(scores: Tensor, labels: Tensor) -> Tensor:
            return _multiclass_hinge_loss(scores, labels, margin)

        return arrays, function

    def multiclass_hinge_loss(
        self, scores: Tensor, labels: Tensor, *, margin: float = 1.0
    ) -> Tensor:
        arrays, function = self._hinge_args(scores, labels, margin)
        return self._forward(function, *arrays)

    def multiclass_hinge_loss_backward(
        self, dout: Tensor, scores: Tensor, labels: Tensor, *, margin: float = 1.0
    ) -> tuple[Tensor, None]:
        arrays, function = self._hinge_args(scores, labels, margin)
        return self._backward(function, dout, *arrays)

    def l1_penalty(self, w: Tensor) -> Tensor:
        return self._forward(_l1_penalty, self._float("w", w))

    def l1_penalty_backward(self, dout: Tensor, w: Tensor) -> tuple[Tensor]:
        # autograd's derivative of |w| is sign(w), 0 at w = 0.
        return self._backward(_l1_penalty, dout, self._float("w", w))

    def l2_penalty(self, w: Tensor) -> Tensor:
        return self._forward(_l2_penalty, self._float("w", w))

    def l2_penalty_backward(self, dout: Tensor, w: Tensor) -> tuple[Tensor]:
        return self._backward(_l2_penalty, dout, self._float("w", w))

    def _elastic_net_args(self, w: Tensor, beta: float) -> tuple[Tensor, Callable]:
        beta = require_non_negative("beta", beta)
        return self._float("w", w), lambda w: _elastic_net_penalty(w, beta)

    def elastic_net_penalty(self, w: Tensor, *, beta: float) -> Tensor:
        w, function = self._elastic_net_args(w, beta)
        return self._forward(function, w)

    def elastic_net_penalty_backward(
        self, dout: Tensor, w: Tensor, *, beta: float
    ) -> tuple[Tensor]:
        w, function = self._elastic_net_args(w, beta)
        return self._backward(function, dout, w)

    # ---------------------------------------------------------- initializers

    def initialize(
        self,
        name: str,
        shape: Sequence[int],
        *,
        seed: int,
        dtype: str = "float64",
        **hyper: float,
    ) -> Tensor:
        """``torch.nn.init`` on a fresh tensor, randomness from ``seed`` only.

        torch's fans (``_calculate_fan_in_and_fan_out``) are the contract's:
        ``fan_in = shape[1] * kH * kW`` and ``fan_out = shape[0] * kH * kW``.
        """
        name, dims, seed, dtype, values = initializers.check_arguments(
            name, shape, seed, dtype, hyper, self.dtypes
        )
        generator = self._generator(seed)
        tensor = torch.empty(
            dims,
            dtype=getattr(torch, dtype),
            device=self._device,
        )
        init = torch.nn.init
        if name == "zeros":
            init.zeros_(tensor)
        elif name == "normal":
            std = values["std"]
            init.normal_(tensor, mean=0.0, std=std, generator=generator)
        elif name == "uniform_fan_in":
            # torch's own default for nn.Linear and nn.Conv2d: kaiming_uniform_
            # with a = sqrt(5) has gain sqrt(2 / (1 + 5)) = sqrt(1/3), so its bound
            # gain * sqrt(3 / fan_in) is 1 / sqrt(fan_in), the contract's.
            init.kaiming_uniform_(tensor, a=math.sqrt(5), generator=generator)
        elif name == "lecun_normal":
            # gain 1 ("linear"), std = 1 / sqrt(fan_in).
            init.kaiming_normal_(
                tensor, mode="fan_in", nonlinearity="linear", generator=generator
            )
        elif name == "xavier_normal":
            # std = gain * sqrt(2 / (fan_in + fan_out)) with gain 1.
            init.xavier_normal_(tensor, gain=1.0, generator=generator)
        elif name == "xavier_uniform":
            # bound = gain * sqrt(3) * sqrt(2 / (fan_in + fan_out)) with gain 1,
            # i.e. sqrt(6 / (fan_in + fan_out)).
            init.xavier_uniform_(tensor, gain=1.0, generator=generator)
        else:
            # torch's leaky_relu gain is sqrt(2 / (1 + a**2)), the contract's; a
            # float a is always passed, since a=None would mean torch's 0.01.
            slope = values["negative_slope"]
            if name == "he_normal":
                # std = gain / sqrt(fan_in)
                init.kaiming_normal_(
                    tensor,
                    a=slope,
                    mode="fan_in",
                    nonlinearity="leaky_relu",
                    generator=generator,
                )
            else:
                # bound = gain * sqrt(3 / fan_in)
                init.kaiming_uniform_(
                    tensor,
                    a=slope,
                    mode="fan_in",
                    nonlinearity="leaky_relu",
                    generator=generator,
                )
        return tensor

    # ------------------------------------------------------------ optimizers

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
        own = self._float("param", param).detach().clone()
        optimizer_class = getattr(torch.optim, _OPTIMIZER_CLASSES[name])
        # Single-tensor code path (foreach=False): torch.optim's reference math.
        # The hyperparameters are set on the param group at every step.
        optimizer = optimizer_class([own], foreach=False)
        return {"name": name, "param": own, "optimizer": optimizer}

    def _step(
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
        param = self._float("param", param)
        grad = self._float("grad", grad)
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
        return self._step("sgd", param, grad, state, hyper)

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
        return self._step("adagrad", param, grad, state, hyper)

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
        return self._step("rmsprop", param, grad, state, hyper)

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
        return self._step("adadelta", param, grad, state, hyper)

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
        hyper = {
            "lr": lr,
            "betas": (beta1, beta2),
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": False,
        }
        return self._step("adam", param, grad, state, hyper)

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
        tensors = [self._float(f"grads[{i}]", g) for i, g in enumerate(grads)]
        if not tensors:
            return [], 0.0
        norms = torch.stack(
            [
                torch.linalg.vector_norm(g.to(self._device), dtype=torch.float64)
                for g in tensors
            ]
        )
        total_norm = float(torch.linalg.vector_norm(norms))
        if total_norm > max_norm:
            scale = max_norm / total_norm
            return [g * scale for g in tensors], total_norm
        return [g.clone() for g in tensors], total_norm


backend = TorchBackend("cpu")
cuda_backend = TorchBackend("cuda")
