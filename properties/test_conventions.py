r"""Conventions at kinks, ties and ends, defaults and seeds, on every backend.

The generic properties (``test_agreement.py``, ``test_gradients.py``) draw
their inputs away from the places where an op has a choice to make: inputs at
least 1e-3 from the kink at 0, no ties in max pooling and maxout, hinge terms
off their kink, probabilities in [0.05, 0.95]. There the conventions the
reference chose (README, "Conventions the reference chose") are invisible, so
this module puts the inputs exactly on them: ``0.0`` and ``-0.0`` at the
kinks, exact ties, a hinge term exactly at the margin, probabilities exactly 0
and 1, softplus at +-100 and +-1000 in each dtype. It also calls every op
without each keyword and with its documented default (the reference's
signature is the table of defaults), and draws ``dropout_mask`` and
``initialize`` twice from one seed and once from another.

Each convention is one :class:`Convention` entry of :data:`CONVENTIONS`: its
name (the test id), the README's wording and the check. A failure names the
convention it breaks: ``convention 'relu subgradient at 0 is 0' broken:
backend X (float32) returned ...``. Every entry runs on every backend and
dtype, and on the reference (float64), which must keep its own conventions.

The inputs are exact in both dtypes (0, 1, ties of small integers, +-100), so
the backend sees precisely the case the convention is about; values are
compared to the reference with the dtype's tolerance
(:func:`properties.tolerance.allowed`). Where a convention leaves a choice
(which of several tied maxima gets the gradient), every allowed answer is
computed and the backend must give one of them.

A backend that lacks an op the convention needs is skipped ("not
implemented: ..."); one that declines the input (``NotImplementedError``)
is skipped as unsupported.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis.errors import UnsatisfiedAssumption

from backends import contract
from properties import checks
from properties.assertions import (
    Context,
    call_backend,
    require_operations,
    to_numpy,
)
from properties.catalog import reference_function
from properties.reference_backend import REFERENCE
from properties.tolerance import allowed
from reference.initializers import HYPER_DEFAULTS
from reference.losses import LOG_CLAMP


class ConventionBroken(AssertionError):
    """A backend broke a convention (the message names it)."""


@dataclass
class Probe:
    """Calls one implementation in one dtype; checks its answers against a convention.

    ``call`` converts float64 host arrays to the backend's arrays of ``dtype``
    (``int64`` labels and ``bool`` masks keep their kind) and returns host
    arrays (a tuple for a backward); ``expect_close`` and ``fail`` raise a
    :class:`ConventionBroken` that names the convention.
    """

    impl: Any
    dtype: str
    convention: Convention

    def _native(self, value: Any) -> Any:
        if isinstance(value, np.ndarray):
            kind = {"f": self.dtype, "i": "int64", "b": "bool"}[value.dtype.kind]
            return self.impl.asarray(value, kind)
        if isinstance(value, list):
            return [self._native(item) for item in value]
        return value

    def _context(self, op: str, arguments: Sequence[Any], hyper: dict) -> Context:
        inputs = {f"arg{i}": a for i, a in enumerate(arguments)}
        return Context(
            op=op, backend=self.impl.name, dtype=self.dtype, inputs=inputs, hyper=hyper
        )

    def call(self, op: str, *arguments: Any, **hyper: Any) -> Any:
        """``impl.<op>(*arguments, **hyper)`` on native arrays; host arrays back."""
        context = self._context(op, arguments, hyper)
        native = tuple(self._native(a) for a in arguments)
        try:
            result = call_backend(self.impl, op, native, hyper, context)
        except UnsatisfiedAssumption:  # the harness's way of declining
            pytest.skip(
                f"unsupported: backend {self.impl.name} declined {op} for convention "
                f"{self.convention.name!r}"
            )
        except AssertionError as error:
            if isinstance(error.__cause__, NotImplementedError):
                pytest.skip(
                    f"unsupported: backend {self.impl.name} declined {op} for "
                    f"convention {self.convention.name!r}: {error.__cause__}"
                )
            raise
        return self._host(result, op, context)

    def _host(self, result: Any, op: str, context: Context) -> Any:
        if isinstance(result, (tuple, list)):
            return type(result)(self._host(item, op, context) for item in result)
        if result is None or isinstance(result, (dict, float, int)):
            return result
        return to_numpy(self.impl, result, f"the output of {op}", context)

    def fail(self, what: str, *details: str) -> ConventionBroken:
        lines = "\n".join(f"  {line}" for line in details)
        return ConventionBroken(
            f"convention {self.convention.name!r} broken: backend {self.impl.name} "
            f"({self.dtype}) {what}\n{lines}\n  the convention (README): "
            f"{self.convention.readme}\n  reproduce: {checks.reproduce()}"
        )

    def close(self, actual: Any, expected: Any) -> bool:
        """Whether ``actual`` matches ``expected`` in shape and within tolerance."""
        actual = np.asarray(actual)
        expected = np.asarray(expected, dtype=np.float64)
        if actual.shape != expected.shape:
            return False
        values = actual.astype(np.float64)
        if not np.all(np.isfinite(values)):
            return False
        return bool(np.all(np.abs(values - expected) <= allowed(self.dtype, expected)))

    def expect_close(self, what: str, actual: Any, expected: Any) -> None:
        if not self.close(actual, expected):
            raise self.fail(
                f"{what}: returned {_show(actual)}",
                f"expected {_show(expected)} (within the {self.dtype} tolerance)",
            )

    def expect_one_of(
        self, what: str, actual: Sequence[Any], allowed: dict[str, Sequence[Any]]
    ) -> None:
        """``actual`` (several outputs) equals one of the ``allowed`` answers."""
        for answer in allowed.values():
            if all(self.close(a, e) for a, e in zip(actual, answer, strict=True)):
                return
        raise self.fail(
            f"{what}: returned {', '.join(map(_show, actual))}",
            *(
                f"allowed ({choice}): {', '.join(map(_show, answer))}"
                for choice, answer in allowed.items()
            ),
        )


def _show(value: Any) -> str:
    array = np.asarray(value)
    if array.dtype.kind == "f":
        text = np.array2string(array, separator=", ", precision=8, threshold=50)
        return f"{text} ({array.dtype.name}{list(array.shape)})"
    return repr(value)


@dataclass(frozen=True)
class Convention:
    """One convention: its name, the README's words, the ops it needs, the check."""

    name: str
    readme: str
    ops: tuple[str, ...]
    check: Callable[[Probe], None]

    def __repr__(self) -> str:
        return f"Convention({self.name!r})"


def _a(*values: Any) -> np.ndarray:
    return np.array(values, dtype=np.float64)


ONE = np.array(1.0)


# -- kinks -------------------------------------------------------------------

#: 0 and -0: a backend testing ``x >= 0`` or ``copysign`` differs on one of them.
ZEROS = _a(0.0, -0.0)


def _kink(op: str, slope: float, **hyper: Any) -> Callable[[Probe], None]:
    """``op_backward(1, 0)`` is ``slope`` at +0 and at -0, ``op(0) = 0``."""

    def check(probe: Probe) -> None:
        probe.expect_close(f"{op}(0)", probe.call(op, ZEROS, **hyper), np.zeros(2))
        (dx,) = probe.call(f"{op}_backward", np.ones(2), ZEROS, **hyper)
        probe.expect_close(f"{op}_backward(dout=1, x=[0, -0]) (dx)", dx, [slope] * 2)

    return check


def _prelu_at_zero(probe: Probe) -> None:
    x = np.zeros((2, 3, 1))
    alpha = _a(0.25, -0.5, 0.0)
    probe.expect_close("prelu(0)", probe.call("prelu", x, alpha), x)
    dx, dalpha = probe.call("prelu_backward", np.ones_like(x), x, alpha)
    probe.expect_close(
        "prelu_backward at x = 0 (dx)", dx, np.broadcast_to(alpha[:, None], x.shape)
    )
    probe.expect_close("prelu_backward at x = 0 (dalpha)", dalpha, np.zeros(3))


def _penalty_at_zero(op: str, **hyper: Any) -> Callable[[Probe], None]:
    def check(probe: Probe) -> None:
        w = _a(0.0, -0.0, 1.0)
        (dw,) = probe.call(f"{op}_backward", ONE, w, **hyper)
        expected = reference_function(f"{op}_backward")(ONE, w, **hyper)[0]
        probe.expect_close(f"{op}_backward at w = [0, -0, 1] (dw)", dw, expected)

    return check


def _hinge_at_margin(probe: Probe) -> None:
    # Row 0, label 0: class 1 sits exactly at the margin (0 - 1 + 1 = 0, the
    # kink), class 2 is active. Row 1, label 2, margin 0.5: class 0 is exactly
    # at its margin too (1 - 1.5 + 0.5 = 0).
    for scores, labels, hyper in (
        (np.array([[1.0, 0.0, 2.0]]), np.array([0]), {}),
        (np.array([[1.0, -3.0, 1.5]]), np.array([2]), {"margin": 0.5}),
    ):
        loss = probe.call("multiclass_hinge_loss", scores, labels, **hyper)
        expected = reference_function("multiclass_hinge_loss")(scores, labels, **hyper)
        probe.expect_close(f"multiclass_hinge_loss{hyper or ''}", loss, expected)
        dscores, _ = probe.call(
            "multiclass_hinge_loss_backward", ONE, scores, labels, **hyper
        )
        reference = reference_function("multiclass_hinge_loss_backward")
        probe.expect_close(
            f"multiclass_hinge_loss_backward, a term at its margin{hyper or ''}",
            dscores,
            reference(ONE, scores, labels, **hyper)[0],
        )


# -- ties --------------------------------------------------------------------


def _max_pool_ties(probe: Probe) -> None:
    """Each window's gradient goes, whole, to one of its maxima (any one)."""
    # Two 2x2 windows: four equal values, and two maxima of 2 among others.
    x = np.array([[[[1.0, 1.0, 0.5, 2.0], [1.0, 1.0, 2.0, -1.0]]]])
    dout = np.array([[[[3.0, 5.0]]]])
    (dx,) = probe.call("max_pool2d_backward", dout, x, kernel_size=2)
    dx = np.asarray(dx, dtype=np.float64)
    if dx.shape != x.shape:
        raise probe.fail(f"max_pool2d_backward: dx has shape {dx.shape}, not {x.shape}")
    for window, (columns, maxima) in enumerate(
        (((0, 1), {(0, 0), (0, 1), (1, 0), (1, 1)}), ((2, 3), {(0, 3), (1, 2)}))
    ):
        block = dx[0, 0][:, columns[0] : columns[1] + 1]
        nonzero = {(r, columns[0] + c) for r, c in zip(*np.nonzero(block), strict=True)}
        total = float(dout.ravel()[window])
        if (
            len(nonzero) != 1
            or not nonzero <= maxima
            or not math.isclose(float(block.sum()), total, rel_tol=1e-6)
        ):
            raise probe.fail(
                f"max_pool2d_backward on a window with tied maxima gave {_show(block)}",
                f"expected the whole upstream gradient {total} at exactly one of the "
                f"maxima {sorted(maxima)} and 0 elsewhere",
            )


def _maxout_ties(probe: Probe) -> None:
    """A unit whose two pieces tie sends its gradient through one piece, whole."""
    x = _a(1.0, 2.0)[None]
    w = np.array([[[1.0, 0.0]], [[0.0, 0.5]]])  # both pieces give 1.0
    b = np.zeros((2, 1))
    dout = np.array([[1.0]])
    probe.expect_close("maxout at a tie", probe.call("maxout", x, w, b), [[1.0]])
    actual = probe.call("maxout_backward", dout, x, w, b)
    backward = reference_function("maxout_backward")
    allowed = {}
    for piece in range(2):
        nudged = b.copy()
        nudged[piece] += 1.0  # the gradient does not depend on b: only who wins
        allowed[f"through piece {piece}"] = backward(dout, x, w, nudged)
    probe.expect_one_of("maxout_backward at a tie (dx, dw, db)", actual, allowed)


# -- ends --------------------------------------------------------------------


def _bce_clamp(probe: Probe) -> None:
    # p exactly 0 and 1 against targets 1, 0 (the clamp at work: log 0 -> -100),
    # 0, 1 (the clamped term is multiplied by 0) and 0.5.
    prob = np.array([[0.0, 1.0, 0.0, 1.0, 0.0, 1.0]])
    target = np.array([[1.0, 0.0, 0.0, 1.0, 0.5, 0.5]])
    loss = probe.call("binary_cross_entropy", prob, target)
    probe.expect_close(
        "binary_cross_entropy at p = 0 and 1",
        loss,
        reference_function("binary_cross_entropy")(prob, target),
    )
    dprob, dtarget = probe.call("binary_cross_entropy_backward", ONE, prob, target)
    expected = reference_function("binary_cross_entropy_backward")(ONE, prob, target)
    probe.expect_close(
        "binary_cross_entropy_backward at p = 0 and 1 (dprob)", dprob, expected[0]
    )
    probe.expect_close(
        "binary_cross_entropy_backward at p = 0 and 1 (dtarget)", dtarget, expected[1]
    )


FAR_OUT = _a(100.0, -100.0, 1000.0, -1000.0)


def _softplus_far_out(probe: Probe) -> None:
    probe.expect_close(
        "softplus at +-100, +-1000",
        probe.call("softplus", FAR_OUT),
        reference_function("softplus")(FAR_OUT),
    )
    (dx,) = probe.call("softplus_backward", np.ones(4), FAR_OUT)
    probe.expect_close(
        "softplus_backward at +-100, +-1000 (dx)",
        dx,
        reference_function("softplus_backward")(np.ones(4), FAR_OUT)[0],
    )


# -- defaults ----------------------------------------------------------------

_RNG = np.random.default_rng(20240611)


def _small(*shape: int) -> np.ndarray:
    """Fixed generic values, multiples of 1/64 (exact in float32)."""
    return np.round(_RNG.uniform(-2.0, 2.0, shape) * 64) / 64


#: Inputs on which each op's defaults matter: op -> (positional arguments,
#: the keywords every call passes).
DEFAULT_INPUTS: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {
    "leaky_relu": ((_small(2, 5),), {}),
    "elu": ((_small(2, 5),), {}),
    "conv2d": ((_small(1, 2, 5, 5), _small(2, 2, 3, 3), _small(2)), {}),
    "max_pool2d": ((_small(1, 2, 4, 6),), {"kernel_size": 2}),
    "avg_pool2d": ((_small(1, 2, 4, 6),), {"kernel_size": 2}),
    "batch_norm": (
        (_small(6, 3) * 0.01, _small(3), _small(3), _small(3), np.abs(_small(3)) + 0.5),
        {"training": True},
    ),
    "layer_norm": (
        (_small(2, 3, 4) * 0.01, _small(3, 4), _small(3, 4)),
        {"normalized_ndim": 2},
    ),
    "gelu": ((_small(2, 5),), {}),
    "softmax": ((_small(3, 4),), {}),
    "log_softmax": ((_small(3, 4),), {}),
    "multiclass_hinge_loss": ((_small(4, 3), np.array([0, 2, 1, 1])), {}),
}

#: A value of each defaulted keyword that changes the answer (the self-check
#: that the input tells the default apart); ``(op, keyword)`` first, then
#: ``keyword``.
OTHER_VALUE: dict[Any, Any] = {
    ("max_pool2d", "stride"): 1,
    ("avg_pool2d", "stride"): 1,
    ("gelu", "approximate"): "tanh",
    "alpha": 0.3,
    "stride": 2,
    "padding": 1,
    "momentum": 0.5,
    "eps": 1e-2,
    "axis": 0,
    "margin": 0.25,
    "nesterov": True,
    "weight_decay": 0.05,
    "rho": 0.5,
    "lr": 0.5,
    "beta1": 0.5,
    "beta2": 0.9,
    "std": 0.5,
    "negative_slope": 0.5,
}


def other_value(op: str, keyword: str) -> Any:
    if (op, keyword) in OTHER_VALUE:
        return OTHER_VALUE[op, keyword]
    return OTHER_VALUE[keyword]


#: The optimizer cases: 3 steps from one parameter. SGD's and Adadelta's
#: gradients are of order 1 (SGD's hyperparameters scale them; Adadelta's first
#: steps are about sqrt(eps) whatever the gradient); the other adaptive
#: optimizers' are of order 1e-4, small enough for each ``eps`` to show.
OPTIMIZER_PARAM = _small(5)
OPTIMIZER_GRADIENTS = tuple(_small(5) for _ in range(3))
OPTIMIZER_GRADIENT_SCALE = {"sgd": 1.0, "adadelta": 1.0}
OPTIMIZER_REQUIRED: dict[str, dict[str, Any]] = {
    "sgd": {"lr": 0.1},
    "adagrad": {"lr": 0.1},
    "rmsprop": {"lr": 0.01},
    "adadelta": {},
    "adam": {"lr": 0.01},
    "adamw": {},
}


def keyword_defaults(op: str) -> dict[str, Any]:
    """The keyword-only parameters of the reference ``op`` that have defaults."""
    parameters = inspect.signature(reference_function(op)).parameters.values()
    return {
        p.name: p.default
        for p in parameters
        if p.kind is p.KEYWORD_ONLY and p.default is not p.empty and p.name != "dtype"
    }


def _trajectory(call: Callable[..., Any], name: str, hyper: dict[str, Any]) -> list:
    param = OPTIMIZER_PARAM.copy()
    state = call("init_state", name, param)
    trajectory = []
    scale = OPTIMIZER_GRADIENT_SCALE.get(name, 1e-4)
    for grad in OPTIMIZER_GRADIENTS:
        grad = grad * scale
        param, state = call(f"{name}_step", param, grad, state, **hyper)
        trajectory.append(np.array(param, dtype=np.float64, copy=True))
    return trajectory


def _reference_call(op: str, *arguments: Any, **hyper: Any) -> Any:
    return getattr(REFERENCE, op)(*arguments, **hyper)


def _default_check(op: str, keyword: str, default: Any) -> Callable[[Probe], None]:
    """``op`` without ``keyword``, and with ``keyword=default``, equal the reference's.

    The reference on the same input with another value of ``keyword`` must
    differ beyond the tolerance: otherwise the input could not tell the
    default apart, and the check is a bug of the suite.
    """
    optimizer = op.removesuffix("_step") if op.endswith("_step") else None

    def run(call: Callable[..., Any], hyper: dict[str, Any]) -> list:
        if optimizer:
            base = dict(OPTIMIZER_REQUIRED[optimizer])
            if keyword == "nesterov":
                base["momentum"] = 0.9  # Nesterov needs momentum to matter
            return _trajectory(call, optimizer, {**base, **hyper})
        arguments, base = DEFAULT_INPUTS[op]
        result = call(op, *arguments, **base, **hyper)
        return list(result) if isinstance(result, tuple) else [result]

    def check(probe: Probe) -> None:
        expected = run(_reference_call, {})
        other = run(_reference_call, {keyword: other_value(op, keyword)})
        distinct = any(
            not probe.close(o, e) for o, e in zip(other, expected, strict=True)
        )
        assert distinct, (
            f"suite bug: {op}'s input cannot tell {keyword}={default!r} from "
            f"{other_value(op, keyword)!r} in {probe.dtype}"
        )
        for how, hyper in (
            ("omitted", {}),
            (f"{keyword}={default!r}", {keyword: default}),
        ):
            actual = run(probe.call, hyper)
            for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
                probe.expect_close(f"{op} with {keyword} {how} (output {index})", a, e)

    return check


def _initializer_default(
    name: str, keyword: str, default: Any
) -> Callable[[Probe], None]:
    """The same seed with ``keyword`` omitted and ``keyword=default``: the same draw."""

    def check(probe: Probe) -> None:
        shape = (16, 24)

        def draw(**hyper: Any) -> np.ndarray:
            return probe.call(
                "initialize", name, shape, seed=7, dtype=probe.dtype, **hyper
            )

        omitted, explicit = draw(), draw(**{keyword: default})
        if not np.array_equal(omitted, explicit):
            raise probe.fail(
                f"initialize({name!r}) with {keyword} omitted differs from "
                f"{keyword}={default!r} (same seed)",
                f"max |difference| {float(np.max(np.abs(omitted - explicit))):.6g}",
            )
        other = draw(**{keyword: other_value("initialize", keyword)})
        if np.array_equal(other, omitted):
            raise probe.fail(
                f"initialize({name!r}) ignores {keyword}: {keyword}="
                f"{other_value('initialize', keyword)!r} gives the default's draw"
            )

    return check


def _defaults() -> list[Convention]:
    conventions = []
    for op in contract.OPERATIONS:
        if op == "initialize":
            continue
        for keyword, default in keyword_defaults(op).items():
            conventions.append(
                Convention(
                    name=f"default {op} {keyword}={default!r}",
                    readme="a keyword left out takes the reference signature's "
                    f"default: {op}(..., {keyword}={default!r})",
                    ops=(op, "init_state") if op.endswith("_step") else (op,),
                    check=_default_check(op, keyword, default),
                )
            )
    for name, defaults in HYPER_DEFAULTS.items():
        for keyword, default in defaults.items():
            conventions.append(
                Convention(
                    name=f"default initialize {name} {keyword}={default!r}",
                    readme=f"initialize({name!r}, ...) without {keyword} draws as "
                    f"with {keyword}={default!r}",
                    ops=("initialize",),
                    check=_initializer_default(name, keyword, default),
                )
            )
    return conventions


# -- seeds -------------------------------------------------------------------


def _seeded(
    op: str, arguments: tuple, hyper: dict[str, Any]
) -> Callable[[Probe], None]:
    """Seed s twice: identical; seed s + 1: different (probability 0 otherwise)."""

    def check(probe: Probe) -> None:
        def draw(seed: int) -> np.ndarray:
            extra = {"dtype": probe.dtype} if op == "initialize" else {}
            return probe.call(op, *arguments, seed=seed, **hyper, **extra)

        first, again, other = draw(12345), draw(12345), draw(12346)
        if not np.array_equal(first, again):
            raise probe.fail(
                f"{op}{arguments!r}: seed 12345 twice gave different draws "
                f"({int(np.count_nonzero(first != again))} of {first.size} differ)"
            )
        if np.array_equal(first, other):
            raise probe.fail(
                f"{op}{arguments!r}: seeds 12345 and 12346 gave the same draw"
            )

    return check


CONVENTIONS: tuple[Convention, ...] = (
    Convention(
        "relu subgradient at 0 is 0",
        "`relu` at 0: subgradient 0",
        ("relu", "relu_backward"),
        _kink("relu", 0.0),
    ),
    Convention(
        "abs subgradient at 0 is 0",
        "`|x|` at 0: subgradient 0",
        ("abs_rectify", "abs_rectify_backward"),
        _kink("abs_rectify", 0.0),
    ),
    Convention(
        "leaky_relu slope at 0 is alpha",
        "`leaky_relu` and `prelu` at 0: slope `alpha` (the negative branch)",
        ("leaky_relu", "leaky_relu_backward"),
        _kink("leaky_relu", 0.2, alpha=0.2),
    ),
    Convention(
        "leaky_relu slope at 0 is the default alpha",
        "`leaky_relu` and `prelu` at 0: slope `alpha` (the negative branch)",
        ("leaky_relu", "leaky_relu_backward"),
        _kink("leaky_relu", 0.01),
    ),
    Convention(
        "prelu slope at 0 is alpha",
        "`leaky_relu` and `prelu` at 0: slope `alpha` (the negative branch)",
        ("prelu", "prelu_backward"),
        _prelu_at_zero,
    ),
    Convention(
        "elu slope at 0 is alpha",
        "`elu` and `selu` at 0: the negative branch",
        ("elu", "elu_backward"),
        _kink("elu", 0.5, alpha=0.5),
    ),
    Convention(
        "selu slope at 0 is scale * alpha",
        "`elu` and `selu` at 0: the negative branch",
        ("selu", "selu_backward"),
        _kink(
            "selu",
            float(reference_function("selu_backward")(np.ones(1), np.zeros(1))[0][0]),
        ),
    ),
    Convention(
        "l1 and elastic-net subgradient at 0 is 0",
        "`|x|` at 0: subgradient 0",
        ("l1_penalty_backward", "elastic_net_penalty_backward"),
        lambda probe: (
            _penalty_at_zero("l1_penalty")(probe),
            _penalty_at_zero("elastic_net_penalty", beta=0.5)(probe),
        ),
    ),
    Convention(
        "hinge subgradient at the margin is 0",
        "multiclass hinge at a term exactly at its margin: subgradient 0",
        ("multiclass_hinge_loss", "multiclass_hinge_loss_backward"),
        _hinge_at_margin,
    ),
    Convention(
        "max-pool tie sends the gradient to one maximum",
        "max-pool ties: the gradient to one maximum (the reference: the first)",
        ("max_pool2d_backward",),
        _max_pool_ties,
    ),
    Convention(
        "maxout tie sends the gradient through one piece",
        "maxout ties: the gradient through one maximal piece (the reference: the "
        "first)",
        ("maxout", "maxout_backward"),
        _maxout_ties,
    ),
    Convention(
        f"bce logs clamped at {LOG_CLAMP:g}",
        f"BCE at p = 0 and 1: logs clamped below at {LOG_CLAMP:g}, so the loss is "
        "finite and the clamped term's gradient is 0",
        ("binary_cross_entropy", "binary_cross_entropy_backward"),
        _bce_clamp,
    ),
    Convention(
        "softplus far out is x or 0",
        "softplus at +-100 and +-1000: finite, `x` and `exp(x)` (0 past the "
        "underflow), its gradient 1 and 0",
        ("softplus", "softplus_backward"),
        _softplus_far_out,
    ),
    Convention(
        "dropout_mask seeds",
        "seeds: the same seed gives the same draw, another seed another one",
        ("dropout_mask",),
        _seeded("dropout_mask", ((8, 64),), {"p": 0.5}),
    ),
    *(
        Convention(
            f"initialize {name} seeds",
            "seeds: the same seed gives the same draw, another seed another one",
            ("initialize",),
            _seeded("initialize", (name, (16, 24)), {}),
        )
        for name in contract.INITIALIZER_NAMES
        if name != "zeros"
    ),
    *_defaults(),
)


@pytest.mark.reference_too
@pytest.mark.parametrize("convention", CONVENTIONS, ids=lambda c: c.name)
def test_convention(backend: Any, dtype: str, convention: Convention) -> None:
    """The backend keeps the convention (see the module docstring)."""
    require_operations(backend, *convention.ops)
    convention.check(Probe(backend, dtype, convention))


def test_conventions_have_distinct_names() -> None:
    names = [c.name for c in CONVENTIONS]
    assert len(set(names)) == len(names), "two conventions share a name"


def test_every_default_of_the_reference_is_a_convention() -> None:
    """Each keyword default of each contract op has its convention entry."""
    names = {c.name for c in CONVENTIONS}
    missing = [
        f"default {op} {keyword}={default!r}"
        for op in contract.OPERATIONS
        if op != "initialize"
        for keyword, default in keyword_defaults(op).items()
        if f"default {op} {keyword}={default!r}" not in names
    ]
    assert not missing, f"defaults without a convention: {missing}"
