"""Every contract operation, written once over an array namespace ``xp``.

:class:`ArrayBackend` holds the fast implementation shared by the NumPy backend
(``xp = numpy``) and the CuPy backend (``xp = cupy``): vectorised, float32-first
(outputs keep the dtype of the float inputs: Python scalars only, never float64
NumPy scalars, meet the arrays), no Python loop over pixels or batch elements.
The only loops are over the kernel offsets of a window (pooling, col2im), the
phases of an upsampling factor and the arrays of a list (gradient clipping).

It is composed of one mixin per op family, each in the module of that name,
the names of :mod:`reference`'s modules:

* :mod:`backends.array.core`: construction, moving arrays, the argument
  checks, padding and the threads every family uses (:class:`ArrayCore`);
* :mod:`backends.array.activations`, :mod:`backends.array.layers` (linear,
  pooling, flatten, softmax, maxout, upsampling),
  :mod:`backends.array.conv` (conv2d's algorithm table),
  :mod:`backends.array.normalization` (batch norm, layer norm, dropout),
  :mod:`backends.array.losses` (losses and penalties),
  :mod:`backends.array.initializers`, :mod:`backends.array.optimizers`.

Subclasses override only what differs between array libraries: moving arrays
between host and device (``asarray``, ``to_numpy``, ``_from_host``), waiting
for the device (``synchronize``), strided views (``_as_strided``), the random
generator (``_uniform``) and the optimizer updates (``_<name>_update``).
"""

from __future__ import annotations

from backends.array.activations import ActivationOps
from backends.array.conv import (
    CONV_ALGORITHMS,
    ConvAlgorithm,
    ConvGeometry,
    ConvOps,
    register_conv_algorithm,
)
from backends.array.core import ArrayCore
from backends.array.initializers import InitializerOps
from backends.array.layers import LayerOps
from backends.array.losses import LossOps
from backends.array.normalization import NormalizationOps
from backends.array.optimizers import OptimizerOps

__all__ = [
    "CONV_ALGORITHMS",
    "ArrayBackend",
    "ArrayCore",
    "ConvAlgorithm",
    "ConvGeometry",
    "register_conv_algorithm",
]


class ArrayBackend(
    LossOps,  # before the two families it builds on, as the MRO requires
    ActivationOps,
    LayerOps,
    ConvOps,
    NormalizationOps,
    InitializerOps,
    OptimizerOps,
):
    """The contract's operations over the array namespace ``xp``.

    Attributes that tune it (instance attributes, safe to change):

    * ``conv_algorithm``: ``"auto"`` (default) or the name of a registered conv
      algorithm to use for every shape;
    * ``conv_preference``: the order in which ``"auto"`` tries the algorithms
      (each only where ``worthwhile``, unless none is);
    * ``conv_workspace_limit``: the most extra bytes ``"auto"`` lets an
      algorithm use; when every algorithm needs more, the one needing least wins;
    * ``conv_chunk_bytes``, ``conv_chunk_min_columns``, ``conv_chunk_parts``:
      the workspace of one batch chunk of im2col and Winograd, the fewest
      GEMM columns a chunk keeps, and the fewest chunks the batch of the
      chunk-parallel algorithms is cut into where the columns allow
      (``conv_chunk_bytes = None``: the whole batch at once);
    * ``threads``: threads for what BLAS does not run (the optimizer passes,
      the copies of the conv algorithms) and for the batch chunks of the
      Winograd and im2col convs (each chunk on one thread, BLAS
      held to one thread meanwhile, where threadpoolctl is installed),
      ``None`` (default) for as many as
      NumPy's BLAS uses now (:func:`backends.array.blocked.blas_threads`);
      ``parallel_min_elements``: copies smaller than this stay on one thread;
    * ``optimizer_block_bytes``: bytes of each array in one optimizer block;
    * ``accelerator``: ``"numba"`` runs the optimizer updates and im2col's
      copies (and its forward for few output channels) as the compiled
      kernels of :mod:`backends.array.fused` (the default on NumPy where numba is
      installed, unless ``NNSPEC_NUMPY_ACCEL=0``), ``None`` the plain NumPy
      path. The optimizer updates give the same bits either way.
    """
