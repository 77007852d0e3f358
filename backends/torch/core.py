"""What every family of the torch backend shares: :class:`TorchCore`.

Construction on a device ("cpu" or "cuda"), the reason the backend cannot run
(torch missing or broken, CUDA absent), moving arrays to and from the device,
turning an argument into a (floating-point) tensor on the device with the
shared checks of :mod:`reference._checks` (fed NumPy's dtype kind letters by
:func:`numpy_kind`), the seeded ``torch.Generator``, the promotion of
float arguments to their common dtype, and the two ways an op runs:
:meth:`TorchCore._forward` under ``no_grad`` and :meth:`TorchCore._backward`,
the vector-Jacobian product of that same forward through
``torch.autograd.grad`` with the caller's ``dout``.

``torch`` and ``F`` (``torch.nn.functional``) are ``None`` when torch cannot be
imported; the family modules import them from here, so the import and its
failure are handled once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from reference._checks import (
    ArgumentKindError,
    require_array_fits,
    require_float_kind,
    require_given,
    require_ndim,
    require_shape,
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

# torch.Generator.manual_seed takes seeds below 2**64; larger ones are folded.
_TORCH_SEED_LIMIT = 2**64


def _torch_seed(seed: int) -> int:
    """A checked seed as torch.Generator takes it (below 2**64; larger ones folded)."""
    if seed >= _TORCH_SEED_LIMIT:
        seed = int(np.random.SeedSequence(seed).generate_state(1, np.uint64)[0])
    return seed


def numpy_kind(tensor: Tensor) -> str:
    """NumPy's kind letter for a tensor's dtype: what the shared checks read."""
    dtype = tensor.dtype
    if dtype == torch.bool:
        return "b"
    if dtype.is_floating_point:
        return "f"
    if dtype.is_complex:
        return "c"
    return "i" if dtype.is_signed else "u"


def holds_everywhere(condition: Tensor) -> bool:
    """Whether ``condition`` holds everywhere (one read-back on a GPU)."""
    return bool(condition.all())


class TorchCore:
    """Construction, device handling, argument checks and the autograd helpers."""

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
        self._torch_device = torch.device(device) if torch is not None else None

    def __repr__(self) -> str:
        state = (
            f"unavailable: {self.unavailable_reason}"
            if self.unavailable_reason
            else "available"
        )
        return f"<{type(self).__name__} {self.name!r} ({state})>"

    # ------------------------------------------------------------ the object

    def asarray(self, a: np.ndarray, dtype: str | None = None) -> Tensor:
        """A tensor on this backend's device holding a copy of ``a``."""
        if self.unavailable_reason is not None:
            raise RuntimeError(f"backend {self.name!r}: {self.unavailable_reason}")
        # np.array copies, so the tensor never shares memory with the caller's array.
        host = np.array(a, dtype=dtype, copy=True, order="C")
        return torch.from_numpy(host).to(self._torch_device)

    def to_numpy(self, a: Tensor) -> np.ndarray:
        """A host copy of ``a`` (0-d tensors give 0-d arrays)."""
        if torch is not None and isinstance(a, torch.Tensor):
            return np.array(a.detach().cpu().numpy(), copy=True)
        return np.asarray(a)

    def synchronize(self) -> None:
        if self.torch_device_name == "cuda" and self.unavailable_reason is None:
            torch.cuda.synchronize()

    # --------------------------------------------------------- argument checks

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
        if value.device.type != self._torch_device.type:
            value = value.to(self._torch_device)
        return value

    def _float_tensor(
        self, name: str, value: object, ndim: int | Sequence[int] | None = None
    ) -> Tensor:
        """``value`` as a floating-point tensor (the shared checks)."""
        tensor = self._tensor(name, value)
        require_float_kind(name, numpy_kind(tensor), tensor.dtype)
        if ndim is not None:
            require_ndim(name, tuple(tensor.shape), ndim)
        require_array_fits(name, tuple(tensor.shape), tensor.element_size())
        return tensor

    def _generator(self, seed: object) -> Any:
        """A generator on this device seeded by ``seed``, the only randomness."""
        return torch.Generator(device=self._torch_device).manual_seed(_torch_seed(seed))

    # --------------------------------------------------- forward and backward

    @staticmethod
    def _common_dtype(*arrays: Tensor) -> Any:
        dtype = arrays[0].dtype
        for array in arrays[1:]:
            dtype = torch.promote_types(dtype, array.dtype)
        return dtype

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

    def _forward(self, function: Callable[..., Tensor], *arrays: Any) -> Any:
        """``function`` at ``arrays`` (floats promoted), without recording a graph."""
        with torch.no_grad():
            return function(*self._promoted(arrays))

    def _dout(self, dout: object, out: Tensor) -> Tensor:
        """The caller's ``dout``, checked against ``out``'s shape, in its dtype."""
        gradient = self._float_tensor("dout", dout)
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
