"""Identities between ops, and the counts of the lecture notes.

Each property relates a backend's ops to each other (``tanh`` to ``sigmoid``,
``sigmoid_backward`` to ``sigmoid``, ``maxout`` to ``relu`` and ``linear``) or
to a structural fact (a max-pool gradient lands on a maximum of its window, a
conv output has ``floor((H + 2p - k) / s) + 1`` rows), so a bug shows up as a
broken identity even where a test against the reference might share the
mistake. The parameter and multiply-add counts of the notes close the module:
26 and 41 parameters for the MLPs of notes 003, 61,706 for LeNet-5, and the
multiply-adds of the 3x3 conv from 3 to 64 channels on 32x32 of notes 000.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from backends import contract
from properties import assertions, strategies
from properties import tolerance as tol
from properties.assertions import fixtures_shared, require_operations
from reference import models


def call(
    backend: Any,
    op: str,
    arguments: list[Any],
    context: assertions.Context,
    **hyper: Any,
):
    return assertions.call_backend(backend, op, arguments, hyper, context)


def host(
    backend: Any, value: Any, what: str, context: assertions.Context
) -> np.ndarray:
    return assertions.to_numpy(backend, value, what, context)


def gradient(
    backend: Any,
    op: str,
    arguments: list[Any],
    count: int,
    context: assertions.Context,
    **hyper,
) -> tuple[Any, ...]:
    """The tuple a backward returns, checked for its length."""
    result = assertions.call_backend(backend, op, arguments, hyper, context)
    return assertions.expect_tuple(result, count, "backward", backend.name, op, context)


def activation_inputs(low: float = -20.0, high: float = 20.0):
    """Small arrays of any shape over the whole useful range of sigmoid and tanh."""
    return strategies.shapes(max_dims=3, max_side=4).flatmap(
        lambda shape: strategies.arrays(shape, low, high)
    )


# -- activations ---------------------------------------------------------------


@pytest.mark.reference_too
@pytest.mark.nnspec_ops("sigmoid", "tanh")
@fixtures_shared
@given(x=activation_inputs())
def test_tanh_is_a_rescaled_sigmoid(backend: Any, dtype: str, x: np.ndarray) -> None:
    """tanh(x) = 2 sigmoid(2x) - 1, backend against itself.

    Catches a sigmoid or a tanh with the wrong slope (``1 / (1 + exp(-2x))``,
    ``tanh(x / 2)``) or the wrong offset (a sigmoid centred at 1/2 instead of
    0), independently of the reference.
    """
    require_operations(backend, "tanh", "sigmoid")
    x = x.astype(dtype).astype(np.float64)
    context = assertions.Context(
        "tanh", backend.name, dtype, {"x": x}, {}, "2 sigmoid(2x) - 1"
    )
    t = host(
        backend,
        call(backend, "tanh", [backend.asarray(x, dtype)], context),
        "tanh",
        context,
    )
    # 2x is exact in floating point: both ops see the same number.
    s2 = call(backend, "sigmoid", [backend.asarray(2 * x, dtype)], context)
    expected = 2 * host(backend, s2, "sigmoid(2x)", context).astype(np.float64) - 1
    # sigmoid errs by a few ulps of a number <= 1; doubling it doubles that.
    allowed = (
        tol.allowed(dtype, expected) + tol.DERIVED_FACTOR * tol.UNIT_ROUNDOFF[dtype]
    )
    assertions.assert_close(
        t,
        expected,
        dtype=dtype,
        what="tanh(x)",
        context=context,
        allowed=allowed,
        actual_label="tanh(x)",
        expected_label="2 sigmoid(2x) - 1",
    )


@pytest.mark.reference_too
@pytest.mark.parametrize("operation", ["sigmoid", "tanh"])
@fixtures_shared
@given(x=activation_inputs(), dout_seed=strategies.seeds())
def test_derivative_from_the_output(
    backend: Any, dtype: str, operation: str, x: np.ndarray, dout_seed: int
) -> None:
    """sigmoid'(x) = s (1 - s) with s = sigmoid(x); tanh'(x) = 1 - t^2 with t = tanh(x).

    The backward of each is compared with the formula applied to the backend's
    own forward output, with a random upstream gradient.

    Catches the classic cache mix-up, the derivative written in terms of the
    input instead of the output (``dout * x * (1 - x)``, ``dout * (1 - x**2)``),
    a missing factor of ``dout``, and a backward that differentiates a
    different forward than the one the backend computes.
    """
    require_operations(backend, operation, f"{operation}_backward")
    x = x.astype(dtype).astype(np.float64)
    dout = np.random.default_rng(dout_seed).standard_normal(x.shape).astype(dtype)
    context = assertions.Context(
        f"{operation}_backward",
        backend.name,
        dtype,
        {"dout": dout, "x": x},
        {},
        "s (1 - s)" if operation == "sigmoid" else "1 - t^2",
    )
    native = backend.asarray(x, dtype)
    y = host(backend, call(backend, operation, [native], context), "forward", context)
    y = y.astype(np.float64)
    derivative = y * (1 - y) if operation == "sigmoid" else (1 - y) * (1 + y)
    expected = dout.astype(np.float64) * derivative
    (dx,) = gradient(
        backend,
        f"{operation}_backward",
        [backend.asarray(dout, dtype), native],
        1,
        context,
    )
    # The backend may compute the derivative in its own precision, with errors of
    # a few ulps of each factor (and 1 - t^2 cancels where |t| -> 1).
    scale = np.abs(dout.astype(np.float64)) * (np.abs(y) + 1) ** 2
    allowed = tol.ATOL[dtype] * np.abs(dout) + tol.RTOL[dtype] * np.abs(expected)
    allowed = allowed + tol.DERIVED_FACTOR * tol.UNIT_ROUNDOFF[dtype] * scale
    assertions.assert_close(
        host(backend, dx, "dx", context),
        expected,
        dtype=dtype,
        what="gradient with respect to x",
        context=context,
        allowed=allowed,
        expected_label="dout * derivative from the forward output",
    )


#: The x-weighted-CDF activations, ``f(x) = x F(x)`` with ``F(x) + F(-x) = 1``:
#: (operation, hyperparameters).
ODD_PART_IS_IDENTITY = [
    ("gelu", {"approximate": "none"}),
    ("gelu", {"approximate": "tanh"}),
    ("silu", {}),
]


@pytest.mark.reference_too
@pytest.mark.parametrize(
    ("operation", "hyper"),
    ODD_PART_IS_IDENTITY,
    ids=["gelu-none", "gelu-tanh", "silu"],
)
@fixtures_shared
@given(x=activation_inputs(), dout_seed=strategies.seeds())
def test_odd_part_is_the_identity(
    backend: Any, dtype: str, operation: str, hyper: dict, x: np.ndarray, dout_seed
) -> None:
    r"""f(x) - f(-x) = x and f'(x) + f'(-x) = 1 for GELU (both forms) and SiLU.

    Each is :math:`x F(x)` with :math:`F` a CDF symmetric about 0
    (:math:`\Phi`, :math:`\sigma(2u)` with :math:`u` odd, :math:`\sigma`), so
    :math:`F(x) + F(-x) = 1`; differentiating gives the second identity, checked
    as ``dx(x) + dx(-x) = dout`` with the same upstream gradient at both points.
    Backend against itself: ``-x`` is exact.

    Tolerance: each side errs by the contract's ``atol + rtol |f|`` plus a few
    units of roundoff of ``|x|`` (the product ``x F(x)``); for the gradients,
    the same with ``|dout| (1 + |x|)`` (the derivative's size, bounded by
    ``1 + |x| F'(x) <= 1 + |x|/2``).

    Catches a missing or doubled ``1/2`` (``x (1 + erf(x / sqrt 2))``), a CDF
    shifted off 0, and a backward that drops the complement
    (``sigma(x) (1 + x sigma(x))`` for SiLU) or a factor of 2 in the tanh
    form's :math:`\sigma(2u) \sigma(-2u)`.
    """
    backward = f"{operation}_backward"
    require_operations(backend, operation, backward)
    x = x.astype(dtype).astype(np.float64)
    dout = np.random.default_rng(dout_seed).standard_normal(x.shape)
    dout = dout.astype(dtype).astype(np.float64)
    context = assertions.Context(
        operation, backend.name, dtype, {"x": x, "dout": dout}, hyper, "odd part"
    )
    u = tol.UNIT_ROUNDOFF[dtype]
    values, gradients = [], []
    for point in (x, -x):
        native = backend.asarray(point, dtype)
        y = call(backend, operation, [native], context, **hyper)
        values.append(host(backend, y, f"{operation}", context).astype(np.float64))
        (dx,) = gradient(
            backend, backward, [backend.asarray(dout, dtype), native], 1, context,
            **hyper,
        )  # fmt: skip
        gradients.append(host(backend, dx, "dx", context).astype(np.float64))
    magnitude = np.abs(values[0]) + np.abs(values[1])
    allowed = 2 * tol.ATOL[dtype] + (tol.RTOL[dtype] + 8 * u) * (magnitude + np.abs(x))
    assertions.assert_close(
        (values[0] - values[1]).astype(dtype),
        x,
        dtype=dtype,
        what=f"{operation}(x) - {operation}(-x)",
        context=context,
        allowed=allowed,
        actual_label=f"{operation}(x) - {operation}(-x)",
        expected_label="x",
    )
    scale = np.abs(dout) * (1 + np.abs(x))
    allowed = 2 * tol.ATOL[dtype] * np.abs(dout) + (tol.RTOL[dtype] + 8 * u) * 2 * scale
    assertions.assert_close(
        (gradients[0] + gradients[1]).astype(dtype),
        dout,
        dtype=dtype,
        what=f"{backward}(dout, x) + {backward}(dout, -x)",
        context=context,
        allowed=allowed,
        actual_label="dx(x) + dx(-x)",
        expected_label="dout",
    )


@pytest.mark.reference_too
@fixtures_shared
@given(x=activation_inputs(-5.0, 5.0))
def test_relu_is_idempotent(backend: Any, dtype: str, x: np.ndarray) -> None:
    """relu(relu(x)) = relu(x) exactly; relu(x) >= 0; relu(x) = x where x > 0.

    Catches a ReLU that leaks negative values (a leaky slope, ``abs``, a
    softplus approximation): none of them is idempotent, or none is exactly
    the identity on positive inputs.
    """
    require_operations(backend, "relu")
    x = x.astype(dtype).astype(np.float64)
    context = assertions.Context(
        "relu", backend.name, dtype, {"x": x}, {}, "idempotent"
    )
    once = call(backend, "relu", [backend.asarray(x, dtype)], context)
    twice = call(backend, "relu", [once], context)
    first = host(backend, once, "relu(x)", context)
    assertions.assert_close(
        host(backend, twice, "relu(relu(x))", context),
        first.astype(np.float64),
        dtype=dtype,
        what="relu(relu(x))",
        context=context,
        allowed=np.zeros(x.shape),
        actual_label="relu(relu(x))",
        expected_label="relu(x)",
        explain="exact equality: ReLU only selects values",
    )
    assertions.assert_close(
        first,
        np.maximum(x, 0.0),
        dtype=dtype,
        what="relu(x)",
        context=context,
        allowed=np.zeros(x.shape),
        expected_label="max(x, 0)",
        explain="exact equality: ReLU only selects values",
    )


@pytest.mark.reference_too
@fixtures_shared
@given(
    x=activation_inputs(-5.0, 5.0),
    alpha=strategies.optional(strategies.floats(1e-3, 1.0)),
    dout_seed=strategies.seeds(),
)
def test_leaky_relu_gradient_is_never_zero(
    backend: Any, dtype: str, x: np.ndarray, alpha: Any, dout_seed: int
) -> None:
    """leaky_relu's gradient is dout where x > 0 and alpha * dout elsewhere: never 0.

    With a nonzero upstream gradient and alpha > 0 (drawn, or the default 0.01),
    no element of dx is 0, at x = 0 included.

    Catches a leaky ReLU whose backward was copied from ReLU's (zero for x < 0:
    the "dying ReLU" the leak exists to prevent) and a slope applied to the
    wrong side.
    """
    require_operations(backend, "leaky_relu_backward")
    hyper = {} if alpha is strategies.OMITTED else {"alpha": alpha}
    slope = hyper.get("alpha", 0.01)
    x = x.astype(dtype).astype(np.float64)
    rng = np.random.default_rng(dout_seed)
    dout = rng.choice([-1.0, 1.0], size=x.shape) * rng.uniform(0.5, 2.0, size=x.shape)
    dout = dout.astype(dtype)
    context = assertions.Context(
        "leaky_relu_backward",
        backend.name,
        dtype,
        {"dout": dout, "x": x},
        hyper,
        "gradient never 0",
    )
    (dx,) = gradient(
        backend,
        "leaky_relu_backward",
        [backend.asarray(dout, dtype), backend.asarray(x, dtype)],
        1,
        context,
        **hyper,
    )
    dx = host(backend, dx, "dx", context)
    zero = dx == 0
    if zero.any():
        index = tuple(int(i) for i in np.argwhere(zero)[0])
        raise context.fail(
            f"leaky_relu_backward returned 0 in {int(zero.sum())} of {zero.size} "
            "elements with a nonzero upstream gradient",
            f"first at index {index}: x {x[index]!r}, dout {dout[index]!r}, "
            f"alpha {slope}",
        )
    expected = np.where(x > 0, 1.0, slope) * dout.astype(np.float64)
    assertions.assert_close(
        dx,
        expected,
        dtype=dtype,
        what="gradient with respect to x",
        context=context,
        expected_label="dout where x > 0, alpha * dout elsewhere",
    )


# -- maxout --------------------------------------------------------------------


@st.composite
def maxout_with_zero_piece(draw: st.DrawFn) -> dict[str, Any]:
    """x, one piece (w0, b0) with no pre-activation within 1e-3 of 0, and the order."""
    n, d_in, d_out = (draw(st.integers(1, 4)) for _ in range(3))
    x = draw(strategies.arrays((n, d_in), -2.0, 2.0))
    rng = np.random.default_rng(draw(strategies.seeds()))
    w0 = rng.uniform(-2.0, 2.0, (d_out, d_in))
    b0 = rng.uniform(-2.0, 2.0, d_out)
    # Move b0 until no pre-activation sits at the kink (float32 and float64 must
    # then agree on every sign).
    for _ in range(64):
        close = np.abs(x @ w0.T + b0) < 10 * strategies.KINK_GAP
        if not close.any():
            break
        b0 = b0 + np.where(close.any(axis=0), 25 * strategies.KINK_GAP, 0.0)
    return {"x": x, "w0": w0, "b0": b0, "zero_first": draw(st.booleans())}


@pytest.mark.reference_too
@pytest.mark.nnspec_ops("maxout", "linear", "relu")
@fixtures_shared
@given(drawn=maxout_with_zero_piece(), dout_seed=strategies.seeds())
def test_maxout_with_a_zero_piece_is_relu(
    backend: Any, dtype: str, drawn: dict[str, Any], dout_seed: int
) -> None:
    """maxout(x) with pieces {(w0, b0), (0, 0)} = relu(linear(x, w0, b0)), both ways.

    Forward against the backend's own relu and linear; backward against the
    chain relu_backward, linear_backward, and the zero piece's gradients
    (dout where the zero piece wins, that is where x w0^T + b0 < 0).

    Catches a maxout that takes the minimum or the wrong axis of the pieces,
    and a backward that routes the gradient to the wrong piece or to all of
    them.
    """
    require_operations(backend, "maxout", "maxout_backward", "relu", "linear")
    x = drawn["x"].astype(dtype).astype(np.float64)
    w0 = drawn["w0"].astype(dtype).astype(np.float64)
    b0 = drawn["b0"].astype(dtype).astype(np.float64)
    live = 1 if drawn["zero_first"] else 0
    w = np.zeros((2, *w0.shape))
    b = np.zeros((2, *b0.shape))
    w[live], b[live] = w0, b0
    dout = np.random.default_rng(dout_seed).standard_normal((x.shape[0], w0.shape[0]))
    dout = dout.astype(dtype).astype(np.float64)
    context = assertions.Context(
        "maxout",
        backend.name,
        dtype,
        {"x": x, "w": w, "b": b},
        {},
        f"piece {1 - live} is zero",
    )
    nx, nw, nb = (backend.asarray(v, dtype) for v in (x, w, b))
    z = call(
        backend,
        "linear",
        [nx, backend.asarray(w0, dtype), backend.asarray(b0, dtype)],
        context,
    )
    expected = host(
        backend, call(backend, "relu", [z], context), "relu(linear)", context
    )
    z64 = x @ w0.T + b0
    bound = np.abs(x) @ np.abs(w0).T + np.abs(b0)
    assertions.assert_close(
        host(
            backend, call(backend, "maxout", [nx, nw, nb], context), "maxout", context
        ),
        expected.astype(np.float64),
        dtype=dtype,
        what="forward",
        context=context,
        rounding=(x.shape[1] + 1) * bound,
        expected_label="relu(linear(x, w0, b0))",
    )
    if not contract.implements(backend, "maxout_backward"):
        return
    dx, dw, db = gradient(
        backend,
        "maxout_backward",
        [backend.asarray(dout, dtype), nx, nw, nb],
        3,
        context,
    )
    positive = z64 > 0
    dz = np.where(positive, dout, 0.0)
    dz_zero = np.where(positive, 0.0, dout)
    expected_dw = np.zeros_like(w)
    expected_db = np.zeros_like(b)
    expected_dw[live], expected_db[live] = dz.T @ x, dz.sum(axis=0)
    expected_dw[1 - live], expected_db[1 - live] = dz_zero.T @ x, dz_zero.sum(axis=0)
    n, d_out = dout.shape
    d_bound = np.abs(dout)
    for what, actual, wanted, rounding in (
        ("dx", dx, dz @ w0, (d_out + 1) * d_bound @ np.abs(w0)),
        (
            "dw",
            dw,
            expected_dw,
            (n + 1) * np.broadcast_to(d_bound.T @ np.abs(x), w.shape),
        ),
        (
            "db",
            db,
            expected_db,
            (n + 1) * np.broadcast_to(d_bound.sum(axis=0), b.shape),
        ),
    ):
        assertions.assert_close(
            host(backend, actual, what, context),
            wanted,
            dtype=dtype,
            what=f"gradient {what} (backward)",
            context=context,
            rounding=rounding,
            expected_label="relu/linear chain",
        )


# -- max pooling ----------------------------------------------------------------


@st.composite
def pooling_inputs(draw: st.DrawFn) -> dict[str, Any]:
    """A max-pool geometry and an input with frequent ties (or none).

    Half of the inputs take values from {-2, -1, 0, 1, 2}, so that most windows
    hold several maxima; the other half are generic. All-negative windows next
    to the padding are common in both.
    """
    g = draw(strategies.pool_geometries(padded=True))
    shape = (g["batch"], g["channels"], g["height"], g["width"])
    ties = hnp.arrays(np.float64, shape, elements=st.integers(-2, 2).map(float))
    x = draw(st.one_of(ties, strategies.arrays(shape, -3.0, 3.0)))
    return {"x": x, "hyper": g["hyper"]}


def _window_slices(
    i: int,
    j: int,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    height: int,
    width: int,
) -> tuple[slice, slice]:
    """The input rows and columns of output cell ``(i, j)``, clipped to the input."""
    top, left = i * stride[0] - padding[0], j * stride[1] - padding[1]
    rows = slice(max(top, 0), min(top + kernel[0], height))
    cols = slice(max(left, 0), min(left + kernel[1], width))
    return rows, cols


@pytest.mark.reference_too
@fixtures_shared
@given(drawn=pooling_inputs(), dout_seed=strategies.seeds())
def test_max_pool_routes_gradient_to_a_maximum(
    backend: Any, dtype: str, drawn: dict[str, Any], dout_seed: int
) -> None:
    """Each output is its window's max; its gradient lands on a max of that window.

    Windows are split into groups that do not overlap (output cells ``(i, j)``
    with the same ``i mod ceil(k/s)`` and ``j mod ceil(k/s)``); each group gets
    its own backward with a nonzero upstream gradient on its windows only.
    Within every window, ``dx`` is nonzero only at cells holding the window's
    maximum, and sums to the window's upstream gradient (ties: any split among
    maxima is accepted); outside the group's windows it is 0. Padded cells
    count as -inf: they are never the maximum.

    Catches a gradient copied to every tied maximum (the window's total
    doubles), one sent to a fixed corner or spread as in average pooling, and
    padding with zeros instead of -inf (an all-negative border window then has
    maximum 0 and loses its gradient to the padding).
    """
    require_operations(backend, "max_pool2d", "max_pool2d_backward")
    x = drawn["x"].astype(dtype).astype(np.float64)
    hyper = dict(drawn["hyper"])
    kernel = strategies.as_pair(hyper["kernel_size"])
    stride = strategies.as_pair(hyper.get("stride", hyper["kernel_size"]))
    padding = strategies.as_pair(hyper.get("padding", 0))
    n, c, height, width = x.shape
    out_h = (height + 2 * padding[0] - kernel[0]) // stride[0] + 1
    out_w = (width + 2 * padding[1] - kernel[1]) // stride[1] + 1
    context = assertions.Context("max_pool2d", backend.name, dtype, {"x": x}, hyper)
    native = backend.asarray(x, dtype)

    y = host(
        backend,
        call(backend, "max_pool2d", [native], context, **hyper),
        "forward",
        context,
    )
    expected = np.empty((n, c, out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            rows, cols = _window_slices(i, j, kernel, stride, padding, height, width)
            expected[:, :, i, j] = x[:, :, rows, cols].max(axis=(2, 3))
    assertions.assert_close(
        y,
        expected,
        dtype=dtype,
        what="forward",
        context=context,
        allowed=np.zeros(expected.shape),
        expected_label="max of the window",
        explain="exact equality: max pooling only selects values",
    )

    rng = np.random.default_rng(dout_seed)
    values = rng.choice([-1.0, 1.0], (n, c, out_h, out_w)) * rng.uniform(
        0.5, 2.0, (n, c, out_h, out_w)
    )
    values = values.astype(dtype).astype(np.float64)
    groups = (math.ceil(kernel[0] / stride[0]), math.ceil(kernel[1] / stride[1]))
    for group_i in range(groups[0]):
        for group_j in range(groups[1]):
            dout = np.zeros_like(values)
            dout[:, :, group_i :: groups[0], group_j :: groups[1]] = values[
                :, :, group_i :: groups[0], group_j :: groups[1]
            ]
            group = (
                f"windows (i mod {groups[0]}, j mod {groups[1]}) = "
                f"({group_i}, {group_j})"
            )
            group_context = assertions.Context(
                "max_pool2d_backward",
                backend.name,
                dtype,
                {"dout": dout, "x": x},
                hyper,
                group,
            )
            (dx,) = gradient(
                backend,
                "max_pool2d_backward",
                [backend.asarray(dout, dtype), native],
                1,
                group_context,
                **hyper,
            )
            dx = host(backend, dx, "dx", group_context).astype(np.float64)
            _check_routing(
                x,
                dx,
                dout,
                group_i,
                group_j,
                groups,
                kernel,
                stride,
                padding,
                group_context,
            )


def _check_routing(
    x: np.ndarray,
    dx: np.ndarray,
    dout: np.ndarray,
    group_i: int,
    group_j: int,
    groups: tuple[int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    context: assertions.Context,
) -> None:
    n, c, height, width = x.shape
    covered = np.zeros(x.shape, dtype=bool)
    for i in range(group_i, dout.shape[2], groups[0]):
        for j in range(group_j, dout.shape[3], groups[1]):
            rows, cols = _window_slices(i, j, kernel, stride, padding, height, width)
            covered[:, :, rows, cols] = True
            for b in range(n):
                for ch in range(c):
                    window = x[b, ch, rows, cols]
                    routed = dx[b, ch, rows, cols]
                    where = f"sample {b}, channel {ch}, output cell ({i}, {j})"
                    not_max = (routed != 0) & (window != window.max())
                    if not_max.any():
                        raise context.fail(
                            "max_pool2d_backward: gradient on a cell that is not "
                            f"a maximum of its window ({where})",
                            f"window {window.tolist()}, its gradient "
                            f"{routed.tolist()}, upstream {dout[b, ch, i, j]!r}",
                        )
                    total, wanted = routed.sum(), dout[b, ch, i, j]
                    # B = 2 |dout|: the shares of tied maxima, then their sum.
                    if abs(total - wanted) > tol.rounding_term(
                        context.dtype, 2 * wanted
                    ):
                        raise context.fail(
                            "max_pool2d_backward: the window's gradient does not "
                            f"sum to its upstream gradient ({where})",
                            f"window {window.tolist()}, its gradient {routed.tolist()} "
                            f"(sum {total!r}), upstream {wanted!r}",
                        )
    stray = ~covered & (dx != 0)
    if stray.any():
        index = tuple(int(i) for i in np.argwhere(stray)[0])
        raise context.fail(
            "max_pool2d_backward: gradient outside every window that received one",
            f"first at input index {index}: {dx[index]!r}",
        )


# -- output sizes and counts ------------------------------------------------------


def _size(size: int, kernel: int, stride: int, padding: int) -> int:
    """The notes' output size: floor((H + 2p - k) / s) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


@pytest.mark.reference_too
@pytest.mark.nnspec_ops("conv2d", "max_pool2d", "avg_pool2d")
@fixtures_shared
@given(
    geometry=strategies.conv_geometries(), pool=strategies.pool_geometries(padded=True)
)
def test_output_size_formula(
    backend: Any, dtype: str, geometry: dict[str, Any], pool: dict[str, Any]
) -> None:
    """conv2d, max_pool2d and avg_pool2d outputs have floor((H + 2p - k) / s) + 1 rows.

    Per axis, with stride and padding drawn as ints or (h, w) pairs.

    Catches ``ceil`` for ``floor`` (an extra partial window), padding applied
    on one side only, stride ignored on one axis, and the height and width
    swapped in a pair.
    """
    require_operations(backend, "conv2d")
    kernel, stride, padding = (
        geometry["kernel"],
        strategies.as_pair(geometry["stride"]),
        strategies.as_pair(geometry["padding"]),
    )
    x = np.zeros(
        (
            geometry["batch"],
            geometry["in_channels"],
            geometry["height"],
            geometry["width"],
        )
    )
    w = np.zeros((geometry["out_channels"], geometry["in_channels"], *kernel))
    b = np.zeros(geometry["out_channels"])
    hyper = {"stride": geometry["stride"], "padding": geometry["padding"]}
    context = assertions.Context(
        "conv2d", backend.name, dtype, {"x": x, "w": w, "b": b}, hyper, "shape"
    )
    y = call(
        backend,
        "conv2d",
        [backend.asarray(v, dtype) for v in (x, w, b)],
        context,
        **hyper,
    )
    expected = (
        x.shape[0],
        w.shape[0],
        _size(x.shape[2], kernel[0], stride[0], padding[0]),
        _size(x.shape[3], kernel[1], stride[1], padding[1]),
    )
    _check_shape(host(backend, y, "forward", context), expected, context)

    px = np.zeros((pool["batch"], pool["channels"], pool["height"], pool["width"]))
    hyper = dict(pool["hyper"])
    kernel = strategies.as_pair(hyper["kernel_size"])
    stride = strategies.as_pair(hyper.get("stride", hyper["kernel_size"]))
    for op in ("max_pool2d", "avg_pool2d"):
        if not contract.implements(backend, op):
            continue
        op_hyper = (
            hyper
            if op == "max_pool2d"
            else {key: value for key, value in hyper.items() if key != "padding"}
        )
        padding = strategies.as_pair(op_hyper.get("padding", 0))
        if any(
            px.shape[2 + axis] + 2 * padding[axis] < kernel[axis] for axis in (0, 1)
        ):
            continue  # the window only fits with padding, which avg_pool2d lacks
        context = assertions.Context(
            op, backend.name, dtype, {"x": px}, op_hyper, "shape"
        )
        y = call(backend, op, [backend.asarray(px, dtype)], context, **op_hyper)
        expected = (
            px.shape[0],
            px.shape[1],
            _size(px.shape[2], kernel[0], stride[0], padding[0]),
            _size(px.shape[3], kernel[1], stride[1], padding[1]),
        )
        _check_shape(host(backend, y, "forward", context), expected, context)


def _check_shape(
    actual: np.ndarray, expected: tuple[int, ...], context: assertions.Context
) -> None:
    if actual.shape != expected:
        raise context.fail(
            f"{context.op}: output shape {actual.shape}, expected {expected} "
            "from floor((H + 2p - k) / s) + 1",
        )


def test_parameter_counts_of_the_notes() -> None:
    """26 and 41 parameters for the MLPs of notes 003; 61,706 for LeNet-5 (notes 004).

    Catches a count that forgets the biases (20, 33, 61,150) or transposes a
    layer's shape.
    """
    assert models.mlp_parameter_count([3, 4, 2]) == 26, (
        "the two-layer net 3-4-2 of notes 003 has 3x4+4 + 4x2+2 = 26 parameters, "
        f"reference says {models.mlp_parameter_count([3, 4, 2])}"
    )
    assert models.mlp_parameter_count([3, 4, 4, 1]) == 41, (
        "the three-layer net 3-4-4-1 of notes 003 has 3x4+4 + 4x4+4 + 4x1+1 = 41 "
        f"parameters, reference says {models.mlp_parameter_count([3, 4, 4, 1])}"
    )
    lenet = models.parameter_count(models.lenet5_parameter_shapes())
    assert lenet == 61_706, (
        f"LeNet-5 of notes 004 has 61,706 parameters, reference says {lenet}"
    )


def test_multiply_adds_of_the_notes() -> None:
    """The 3x3 conv from 3 to 64 channels on 32x32 ("same" padding): 1,769,472 MACs.

    That is 32 * 32 * 3 * 3 * 3 * 64. Notes 000 print 1,179,648, an arithmetic
    slip: it is the same product with 2 input channels, checked here too so the
    explanation in the reference stays true.

    Catches a count that uses the input size instead of the output size with
    padding, or forgets a factor (C_in or C_out).
    """
    same = models.conv2d_multiply_adds((1, 3, 32, 32), (64, 3, 3, 3), padding=1)
    assert same == 32 * 32 * 3 * 3 * 3 * 64 == 1_769_472, (
        f"conv 3x3, 3 -> 64 channels, 32x32 output: expected 1,769,472 multiply-adds, "
        f"reference says {same}"
    )
    two_channels = models.conv2d_multiply_adds((1, 2, 32, 32), (64, 2, 3, 3), padding=1)
    assert two_channels == 1_179_648, (
        "the notes' printed 1,179,648 is the count with 2 input channels; reference "
        f"says {two_channels} for 2 channels"
    )
    valid = models.conv2d_multiply_adds((1, 3, 32, 32), (64, 3, 3, 3))
    assert valid == 30 * 30 * 27 * 64, (
        f"without padding the output is 30x30: expected {30 * 30 * 27 * 64}, "
        f"got {valid}"
    )


@pytest.mark.parametrize("in_channels", [3, 2])
def test_multiply_adds_from_the_backend_conv(
    backend: Any, dtype: str, in_channels: int
) -> None:
    """The MAC count of notes 000 from the backend's own conv: output cells x C_in k^2.

    A (1, C_in, 32, 32) input through a (64, C_in, 3, 3) conv with padding 1 has a
    (1, 64, 32, 32) output; each output cell costs C_in * 3 * 3 multiply-adds:
    1,769,472 for 3 input channels, 1,179,648 (the notes' printed number) for 2.

    Catches a conv whose "same" padding is not the same size (padding on one side
    only gives 31x31), so a count read off the layer disagrees with the formula.
    """
    require_operations(backend, "conv2d")
    x = np.zeros((1, in_channels, 32, 32))
    w = np.zeros((64, in_channels, 3, 3))
    b = np.zeros(64)
    context = assertions.Context(
        "conv2d", backend.name, dtype, {"x": x, "w": w, "b": b}, {"padding": 1}
    )
    y = host(
        backend,
        call(
            backend,
            "conv2d",
            [backend.asarray(v, dtype) for v in (x, w, b)],
            context,
            padding=1,
        ),
        "forward",
        context,
    )
    _check_shape(y, (1, 64, 32, 32), context)
    counted = y.size * in_channels * 3 * 3
    expected = {3: 1_769_472, 2: 1_179_648}[in_channels]
    assert (
        counted == expected == models.conv2d_multiply_adds(x.shape, w.shape, padding=1)
    ), (
        f"conv2d on backend {backend.name}: {y.size} output cells x "
        f"{in_channels * 9} = {counted} multiply-adds, expected {expected}"
    )
