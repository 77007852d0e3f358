"""The PyTorch backends, ``"torch"`` and ``"torch-cuda"``."""

from backends.torch.core import TorchBackend, backend, cuda_backend

__all__ = ["TorchBackend", "backend", "cuda_backend"]
