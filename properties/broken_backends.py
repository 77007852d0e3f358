"""Deliberately broken backends: the suite must fail them, fairly and readably.

Each backend below is the correct example backend :mod:`examples.tiny` with one
kind of bug in one or two operations. They are not mutants (``backends/mutants``
hold *plausible numerical* bugs the properties must catch); they are contract
violations a third-party backend commits on its first day, and
``properties/test_suite_robustness.py`` runs the suite against each to prove
that it

* fails exactly the broken operation, with a message naming the operation, the
  backend and the problem (an exception, a shape, a dtype, a NaN, a backward
  that returns no tuple), and keeps going: no internal or collection error;
* passes the healthy operations of the same backend;
* skips what the backend lacks as "not implemented";
* skips an unavailable backend with its reason;
* reports as "unsupported" what a backend declines (``NotImplementedError``),
  and still finds a bug in the options it supports
  (:class:`DecliningBugBackend`, the declining example with two bugs).

A backend spec that cannot be loaded is covered by a nonexistent import path.

The names avoid hyphens so that a test id such as ``relu-broken_raises-float32``
splits unambiguously, except :class:`OddlyNamedBackend`'s, which holds what a
shell and a ``-k`` expression trip on (spaces, parentheses, ``<``, ``::``,
brackets): its failures' reproduce commands must still rerun exactly one check.
"""

from __future__ import annotations

import numpy as np

from examples.declining import DecliningBackend
from examples.tiny import TinyBackend


class RaisingBackend(TinyBackend):
    """``relu`` (forward) and ``sigmoid_backward`` (backward) raise ``TypeError``."""

    name = "broken_raises"

    def relu(self, x):
        raise TypeError("unsupported operand type(s) for max(): 'array' and 'int'")

    def sigmoid_backward(self, dout, x):
        raise TypeError("cannot multiply: operands are not arrays")


class WrongShapeBackend(TinyBackend):
    """``linear`` and ``tanh_backward`` return an extra trailing axis."""

    name = "broken_shape"

    def linear(self, x, w, b):
        return super().linear(x, w, b)[..., np.newaxis]

    def tanh_backward(self, dout, x):
        (dx,) = super().tanh_backward(dout, x)
        return (dx[..., np.newaxis],)


class WrongDtypeBackend(TinyBackend):
    """``sigmoid`` and ``mse_loss_backward`` return float64 for float32 inputs.

    In float64 they are correct: only their float32 checks may fail.
    """

    name = "broken_dtype"

    def sigmoid(self, x):
        return super().sigmoid(x).astype(np.float64)

    def mse_loss_backward(self, dout, pred, target):
        gradients = super().mse_loss_backward(dout, pred, target)
        return tuple(gradient.astype(np.float64) for gradient in gradients)


class NaNBackend(TinyBackend):
    """``tanh`` and ``softmax_backward`` put a NaN in their first element."""

    name = "broken_nan"

    @staticmethod
    def _poison(array):
        array = np.array(array, copy=True)
        if array.size:
            array.flat[0] = np.nan
        return array

    def tanh(self, x):
        return self._poison(super().tanh(x))

    def softmax_backward(self, dout, x, *, axis=-1):
        (dx,) = super().softmax_backward(dout, x, axis=axis)
        return (self._poison(dx),)


class BareBackwardBackend(TinyBackend):
    """``relu_backward`` and ``softmax_backward`` return ``dx``, not ``(dx,)``.

    The values are right: a suite that indexes the result (``result[0]``) or
    unpacks it (``(dx,) = result`` works on a length-1 array) would be fooled.
    """

    name = "broken_tuple"

    def relu_backward(self, dout, x):
        return super().relu_backward(dout, x)[0]

    def softmax_backward(self, dout, x, *, axis=-1):
        return super().softmax_backward(dout, x, axis=axis)[0]


class DoutMutatingBackend(TinyBackend):
    """``relu_backward`` masks ``dout`` in place and returns it.

    The values are right; the caller's upstream gradient is zeroed where
    ``x <= 0``, which breaks every other consumer of the same ``dout``.
    """

    name = "broken_mutates_dout"

    def relu_backward(self, dout, x):
        dout[x <= 0] = 0
        return (dout,)


class GradMutatingBackend(TinyBackend):
    """Plain SGD that builds its update in ``grad``'s memory.

    The weight decay is added to ``grad`` and the sum scaled by the learning
    rate in place, so every step (with or without weight decay) overwrites the
    gradient. ``param`` and the state may change, the gradient may not: the
    caller may still use it (for logging, for a second optimizer, for clipping).
    """

    name = "broken_mutates_grad"

    def init_state(self, name, param, **hyper):
        if name != "sgd":
            raise NotImplementedError(f"only plain SGD, not {name!r}")
        return {}

    def sgd_step(
        self, param, grad, state, *, lr, momentum=0.0, nesterov=False, weight_decay=0.0
    ):
        if momentum or nesterov:
            raise NotImplementedError("plain SGD only: no momentum, no Nesterov")
        grad += param.dtype.type(weight_decay) * param
        grad *= param.dtype.type(lr)
        param -= grad
        return param, state


class DecliningBugBackend(DecliningBackend):
    """The declining example with a bug in what it supports.

    ``softmax`` (declined except over the last axis) forgets the max shift and
    adds 1e-3 to its denominator: Hypothesis must still find the bug among the
    supported examples. ``mse_loss_backward`` (no gradient for the target)
    forgets the factor 2 of the gradient it does give.
    """

    name = "broken_declining"

    def softmax(self, x, *, axis=-1):
        y = super().softmax(x, axis=axis)
        return (y / (1 + 1e-3)).astype(x.dtype)

    def mse_loss_backward(self, dout, pred, target):
        dpred, dtarget = super().mse_loss_backward(dout, pred, target)
        return dpred / 2, dtarget


class UnavailableBackend(TinyBackend):
    """A correct backend that cannot run here: every test must skip with the reason."""

    name = "broken_unavailable"
    device = "gpu"
    unavailable_reason = "needs the NullGPU driver, which is not installed"


class OddlyNamedBackend(RaisingBackend):
    """The raising backend under a name a shell and ``pytest -k`` both trip on."""

    name = "broken (v2) <raises> a::b [x]"


raises = RaisingBackend()
oddly_named = OddlyNamedBackend()
wrong_shape = WrongShapeBackend()
wrong_dtype = WrongDtypeBackend()
nan = NaNBackend()
bare_backward = BareBackwardBackend()
unavailable = UnavailableBackend()
mutates_dout = DoutMutatingBackend()
mutates_grad = GradMutatingBackend()
declining_bug = DecliningBugBackend()

#: Import path of each backend above, by attribute name.
SPECS: dict[str, str] = {
    attribute: f"{__name__}:{attribute}"
    for attribute in (
        "raises",
        "wrong_shape",
        "wrong_dtype",
        "nan",
        "bare_backward",
        "unavailable",
        "mutates_dout",
        "mutates_grad",
        "declining_bug",
        "oddly_named",
    )
}

#: An import path that names nothing: loading it must fail every test clearly.
NONEXISTENT_SPEC = "nnspec_no_such_package.backend:backend"
