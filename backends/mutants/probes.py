"""Inputs on which the mutants' bugs show, shared by their ``live_call``.

Each mutant's ``live_call(backend)`` runs one call of the contract on inputs
that exercise its bug; ``properties/test_mutants_registry.py`` checks that the
mutant's answer there differs from the NumPy backend's. The inputs several
families use live here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from backends.numpy_backend import NumpyBackend

_RNG = np.random.default_rng(0)
#: An NCHW batch of generic values.
X4 = _RNG.standard_normal((2, 2, 5, 5))
#: An asymmetric 3x3 kernel for ``X4``'s two channels.
W4 = _RNG.standard_normal((3, 2, 3, 3))
#: One 2x4 image whose 2x2 pooling windows have tied maxima.
TIES = np.array([[[[1.0, 1.0, 0.0, -1.0], [1.0, 0.5, -1.0, -1.0]]]])
#: One 4x4 image of values all below -0.5.
NEGATIVE = -np.abs(_RNG.standard_normal((1, 1, 4, 4))) - 0.5
#: A batch of four samples of three features, mean about 1 and spread about 2.
BN_X = _RNG.standard_normal((4, 3)) * 2 + 1
#: batch_norm's gamma, beta, running mean and running variance for ``BN_X``.
BN_PARAMS = (np.ones(3), np.zeros(3), np.zeros(3), np.ones(3))
#: A dropout mask for a 2x3 input.
MASK = np.array([[True, False, True], [False, True, True]])
#: Two rows of logits: moderate ones, and ones of magnitude 1000.
LOGITS = np.array([[3.0, -1.0, 0.5], [1000.0, -1000.0, 0.0]])
#: A class label per row of ``LOGITS``.
LABELS = np.array([0, 2])


def optimizer_steps(
    optimizer: str, **hyper: float
) -> Callable[[NumpyBackend], list[np.ndarray]]:
    """Two steps of ``optimizer`` from its initial state: the parameters after each."""

    def run(backend: NumpyBackend) -> list[np.ndarray]:
        param = np.array([1.0, -2.0, 0.5])
        state = backend.init_state(optimizer, param)
        trajectory = []
        for grad in (np.array([0.3, -0.1, 2.0]), np.array([-0.2, 0.4, 1.0])):
            param, state = getattr(backend, f"{optimizer}_step")(
                param, grad, state, **hyper
            )
            trajectory.append(np.array(param, copy=True))
        return trajectory

    return run
