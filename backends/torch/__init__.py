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

:class:`TorchBackend` is composed of one class per family of ops, each in the
module named after :mod:`reference`'s: :mod:`~backends.torch.activations`,
:mod:`~backends.torch.layers` (conv2d included: it is one ``F.conv2d`` call),
:mod:`~backends.torch.normalization`, :mod:`~backends.torch.losses`,
:mod:`~backends.torch.initializers` and :mod:`~backends.torch.optimizers`, all
on :class:`~backends.torch.core.TorchCore` (construction, device and dtype
handling, the argument checks, the autograd helper). Where torch's convention
differs from the contract the backend adapts, with a comment at the place; each
family module's docstring lists its adaptations.
"""

from __future__ import annotations

from backends.torch.activations import Activations
from backends.torch.initializers import Initializers
from backends.torch.layers import Layers
from backends.torch.losses import Losses
from backends.torch.normalization import Normalization
from backends.torch.optimizers import Optimizers


class TorchBackend(
    Activations, Layers, Normalization, Losses, Initializers, Optimizers
):
    """The contract's operations on torch tensors, on ``device`` "cpu" or "cuda"."""


backend = TorchBackend("cpu")
cuda_backend = TorchBackend("cuda")

__all__ = ["TorchBackend", "backend", "cuda_backend"]
