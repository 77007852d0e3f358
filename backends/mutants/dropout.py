"""Dropout mutants: the NumPy backend with one bug in the mask, dropout or backward."""

from __future__ import annotations

from typing import Any

import numpy as np

from backends.mutants.probes import MASK
from backends.numpy_backend import NumpyBackend
from reference.shapes import dropout_mask_hyper

__all__ = [
    "BackwardNotRescaled",
    "EvalAppliesMask",
    "MaskKeepsWithProbabilityP",
    "NotRescaled",
]


class NotRescaled(NumpyBackend):
    """dropout in training keeps ``x * mask`` without dividing by ``1 - p``.

    The bug: the missing rescale of inverted dropout (the original paper's
    dropout scales at test time instead; mixing the two conventions drops the
    scale altogether): the expected activation shrinks by ``1 - p`` in training
    and the network sees a different scale at eval.

    Caught by: dropout (inverted scaling keeps the expectation) and agreement
    (``dropout`` in training).
    """

    name = "mutant-dropout-not-rescaled"
    family = "dropout"
    expected_killers = ("dropout", "agreement")

    @staticmethod
    def live_call(backend: NumpyBackend) -> Any:
        return backend.dropout(np.ones((2, 3)), MASK, p=0.5, training=True)

    def dropout(self, x: Any, mask: Any, *, p: float, training: bool) -> Any:
        x, mask, p, training = self._check_dropout(x, mask, p, training)
        if not training:
            return x.copy()
        return x * mask


class EvalAppliesMask(NumpyBackend):
    """dropout in eval mode still applies the mask and the scale.

    The bug: the train/eval mix-up, a ``training`` flag that is accepted and
    ignored (as a model left in ``train()`` for evaluation): eval outputs are
    random and differ from the input.

    Caught by: dropout (eval is the identity) and agreement (``dropout`` in
    eval mode).
    """

    name = "mutant-dropout-eval-applies-mask"
    family = "dropout"
    expected_killers = ("dropout", "agreement")

    @staticmethod
    def live_call(backend: NumpyBackend) -> Any:
        return backend.dropout(np.ones((2, 3)), MASK, p=0.5, training=False)

    def dropout(self, x: Any, mask: Any, *, p: float, training: bool) -> Any:
        self._check_dropout(x, mask, p, training)
        return super().dropout(x, mask, p=p, training=True)


class MaskKeepsWithProbabilityP(NumpyBackend):
    """dropout_mask keeps each unit with probability ``p`` instead of ``1 - p``.

    The bug: ``p`` read as the keep probability (TensorFlow 1's
    ``keep_prob``, Hinton et al.'s retention probability) where the contract,
    like torch, means the drop probability: ``mask = u < p``. Invisible at
    p = 0.5.

    Caught by: dropout (the kept fraction passes a binomial test at ``1 - p``),
    and agreement's sanity check of ``dropout_mask`` where it tests the fraction.
    """

    name = "mutant-dropout-mask-keeps-p"
    family = "dropout"
    expected_killers = ("dropout",)

    @staticmethod
    def live_call(backend: NumpyBackend) -> Any:
        return backend.dropout_mask((64,), p=0.2, seed=1)

    def dropout_mask(self, shape: Any, *, p: float, seed: int) -> Any:
        dims, p, seed = dropout_mask_hyper(shape, p, seed)
        return self._uniform(seed, dims) < p


class BackwardNotRescaled(NumpyBackend):
    """dropout_backward in training returns ``dout * mask`` without the ``1 / (1 - p)``.

    The bug: the forward is inverted dropout, the backward forgets the scale,
    so gradients through dropout are ``1 - p`` times too small.

    Caught by: dropout (backward uses the same mask and scale) and agreement
    (``dropout_backward`` in training).
    """

    name = "mutant-dropout-backward-not-rescaled"
    family = "dropout"
    expected_killers = ("dropout", "agreement")

    @staticmethod
    def live_call(backend: NumpyBackend) -> Any:
        return backend.dropout_backward(
            np.ones((2, 3)), np.ones((2, 3)), MASK, p=0.5, training=True
        )

    def dropout_backward(
        self, dout: Any, x: Any, mask: Any, *, p: float, training: bool
    ) -> tuple[Any, None]:
        x, mask, p, training = self._check_dropout(x, mask, p, training)
        dout = self._upstream(dout, x.shape)
        if not training:
            return dout.copy(), None
        return dout * mask, None


not_rescaled = NotRescaled()
eval_applies_mask = EvalAppliesMask()
mask_keeps_p = MaskKeepsWithProbabilityP()
backward_not_rescaled = BackwardNotRescaled()
