"""Plain tests of the reference activations, layers and normalization.

Two kinds: every invalid shape or hyperparameter raises ``ValueError`` naming the
argument, and a few values computed by hand. Gradients against finite
differences are the catalog's generic property, not repeated here.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable

import numpy as np
import pytest

from properties import catalog
from properties.catalog.activations import ELEMENTWISE
from reference import activations, layers, normalization
from reference.activations import (
    SELU_ALPHA,
    SELU_LAMBDA,
    abs_rectify,
    elu,
    leaky_relu,
    prelu,
    prelu_backward,
    relu,
    relu_backward,
    selu,
    sigmoid,
    softplus,
    tanh,
)
from reference.layers import (
    avg_pool2d,
    avg_pool2d_backward,
    conv2d,
    flatten,
    linear,
    log_softmax,
    max_pool2d,
    max_pool2d_backward,
    maxout,
    maxout_backward,
    softmax,
    upsample2d,
)
from reference.normalization import (
    batch_norm,
    batch_norm_backward,
    dropout,
    dropout_backward,
    dropout_mask,
)

RNG = np.random.default_rng(20240712)


def _normal(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape)


IMAGE = _normal(2, 3, 5, 5)
KERNEL = _normal(4, 3, 3, 3)
BIAS = _normal(4)
CHANNELS = 3
GAMMA, BETA = _normal(CHANNELS), _normal(CHANNELS)
RUNNING_MEAN, RUNNING_VAR = _normal(CHANNELS), RNG.random(CHANNELS) + 0.5
MASK = dropout_mask((2, 3, 5, 5), p=0.5, seed=0)


def _raises_naming(argument: str, call: Callable[[], object]) -> None:
    """``call()`` raises ValueError and the message names ``argument``."""
    with pytest.raises(ValueError) as caught:
        call()
    message = str(caught.value)
    assert re.search(rf"\b{re.escape(argument)}\b", message), (
        f"ValueError message {message!r} does not name the argument {argument!r}"
    )


# ---------------------------------------------------------------------------
# Invalid arguments: (argument the message must name, the failing call)
# ---------------------------------------------------------------------------

INVALID: dict[str, tuple[str, Callable[[], object]]] = {
    # activations
    "leaky_relu negative alpha": ("alpha", lambda: leaky_relu(IMAGE, alpha=-0.1)),
    "elu negative alpha": ("alpha", lambda: elu(IMAGE, alpha=-1.0)),
    "elu nan alpha": ("alpha", lambda: elu(IMAGE, alpha=float("nan"))),
    "gelu unknown approximation": (
        "approximate",
        lambda: activations.gelu(IMAGE, approximate="erf"),
    ),
    "prelu alpha (C+1,)": ("alpha", lambda: prelu(IMAGE, np.ones(CHANNELS + 1))),
    "prelu alpha 2-d": ("alpha", lambda: prelu(IMAGE, np.ones((1, CHANNELS)))),
    "prelu alpha (C,) on 1-d x": ("alpha", lambda: prelu(np.ones(3), np.ones(3))),
    "prelu_backward alpha": (
        "alpha",
        lambda: prelu_backward(IMAGE, IMAGE, np.ones(2)),
    ),
    # linear
    "linear x 1-d": ("x", lambda: linear(np.ones(3), np.ones((2, 3)), np.ones(2))),
    "linear w D_in": (
        "w",
        lambda: linear(np.ones((4, 3)), np.ones((2, 4)), np.ones(2)),
    ),
    "linear b shape": (
        "b",
        lambda: linear(np.ones((4, 3)), np.ones((2, 3)), np.ones(3)),
    ),
    # conv2d
    "conv2d negative padding": (
        "padding",
        lambda: conv2d(IMAGE, KERNEL, BIAS, padding=-1),
    ),
    "conv2d negative padding pair": (
        "padding",
        lambda: conv2d(IMAGE, KERNEL, BIAS, padding=(0, -1)),
    ),
    "conv2d stride 0": ("stride", lambda: conv2d(IMAGE, KERNEL, BIAS, stride=0)),
    "conv2d stride triple": (
        "stride",
        lambda: conv2d(IMAGE, KERNEL, BIAS, stride=(1, 1, 1)),
    ),
    "conv2d kernel larger than padded input": (
        "w",
        lambda: conv2d(IMAGE, _normal(4, 3, 8, 3), BIAS, padding=1),
    ),
    "conv2d kernel wider than padded input": (
        "w",
        lambda: conv2d(IMAGE, _normal(4, 3, 1, 6), BIAS),
    ),
    "conv2d channel mismatch": ("w", lambda: conv2d(IMAGE, _normal(4, 2, 3, 3), BIAS)),
    "conv2d empty kernel": ("w", lambda: conv2d(IMAGE, np.ones((4, 3, 0, 3)), BIAS)),
    "conv2d bias shape": ("b", lambda: conv2d(IMAGE, KERNEL, np.ones(5))),
    "conv2d bias 2-d": ("b", lambda: conv2d(IMAGE, KERNEL, np.ones((4, 1)))),
    "conv2d x 3-d": ("x", lambda: conv2d(IMAGE[0], KERNEL, BIAS)),
    "conv2d w 3-d": ("w", lambda: conv2d(IMAGE, KERNEL[0], BIAS)),
    # layer norm: gamma/beta of x.shape[-normalized_ndim:]
    "layer_norm gamma shape": (
        "gamma",
        lambda: normalization.layer_norm(
            IMAGE, np.ones(4), np.zeros(IMAGE.shape[-1]), normalized_ndim=1
        ),
    ),
    "layer_norm normalized_ndim too large": (
        "normalized_ndim",
        lambda: normalization.layer_norm(
            IMAGE, np.ones(IMAGE.shape), np.zeros(IMAGE.shape), normalized_ndim=5
        ),
    ),
    "layer_norm eps 0": (
        "eps",
        lambda: normalization.layer_norm(
            IMAGE,
            np.ones(IMAGE.shape[-2:]),
            np.zeros(IMAGE.shape[-2:]),
            normalized_ndim=2,
            eps=0.0,
        ),
    ),
    # pooling
    "max_pool2d kernel_size 0": (
        "kernel_size",
        lambda: max_pool2d(IMAGE, kernel_size=0),
    ),
    "max_pool2d kernel_size negative": (
        "kernel_size",
        lambda: max_pool2d(IMAGE, kernel_size=(2, -2)),
    ),
    "max_pool2d stride 0": (
        "stride",
        lambda: max_pool2d(IMAGE, kernel_size=2, stride=0),
    ),
    "max_pool2d padding > kernel_size // 2": (
        "padding",
        lambda: max_pool2d(IMAGE, kernel_size=3, padding=2),
    ),
    "max_pool2d padding > kernel_size // 2, kernel 1": (
        "padding",
        lambda: max_pool2d(IMAGE, kernel_size=1, padding=1),
    ),
    "max_pool2d negative padding": (
        "padding",
        lambda: max_pool2d(IMAGE, kernel_size=2, padding=-1),
    ),
    "max_pool2d kernel larger than input": (
        "kernel_size",
        lambda: max_pool2d(IMAGE, kernel_size=(6, 2)),
    ),
    "max_pool2d x 2-d": ("x", lambda: max_pool2d(np.ones((4, 4)), kernel_size=2)),
    "avg_pool2d kernel_size 0": (
        "kernel_size",
        lambda: avg_pool2d(IMAGE, kernel_size=0),
    ),
    "avg_pool2d kernel larger than input": (
        "kernel_size",
        lambda: avg_pool2d(IMAGE, kernel_size=6),
    ),
    "avg_pool2d stride 0": (
        "stride",
        lambda: avg_pool2d(IMAGE, kernel_size=2, stride=0),
    ),
    # flatten, softmax
    "flatten x 1-d": ("x", lambda: flatten(np.ones(3))),
    "softmax axis too large": ("axis", lambda: softmax(np.ones((2, 3)), axis=2)),
    "softmax axis too small": ("axis", lambda: softmax(np.ones((2, 3)), axis=-3)),
    "softmax axis float": ("axis", lambda: softmax(np.ones((2, 3)), axis=1.0)),
    "log_softmax axis too large": ("axis", lambda: log_softmax(np.ones(3), axis=1)),
    "softmax x 0-d": ("x", lambda: softmax(np.float64(1.0))),
    # maxout
    "maxout w D_in": (
        "w",
        lambda: maxout(np.ones((4, 3)), np.ones((2, 5, 4)), np.ones((2, 5))),
    ),
    "maxout w no pieces": (
        "w",
        lambda: maxout(np.ones((4, 3)), np.ones((0, 5, 3)), np.ones((0, 5))),
    ),
    "maxout b shape": (
        "b",
        lambda: maxout(np.ones((4, 3)), np.ones((2, 5, 3)), np.ones((5, 2))),
    ),
    # upsample
    "upsample2d bad mode": (
        "mode",
        lambda: upsample2d(IMAGE, scale_factor=2, mode="bicubic"),
    ),
    "upsample2d scale_factor 0": (
        "scale_factor",
        lambda: upsample2d(IMAGE, scale_factor=0, mode="nearest"),
    ),
    "upsample2d scale_factor negative": (
        "scale_factor",
        lambda: upsample2d(IMAGE, scale_factor=-2, mode="nearest"),
    ),
    "upsample2d scale_factor float": (
        "scale_factor",
        lambda: upsample2d(IMAGE, scale_factor=1.5, mode="bilinear"),
    ),
    "upsample2d scale_factor bool": (
        "scale_factor",
        lambda: upsample2d(IMAGE, scale_factor=True, mode="nearest"),
    ),
    # batch norm
    "batch_norm gamma shape": (
        "gamma",
        lambda: batch_norm(
            IMAGE, np.ones(4), BETA, RUNNING_MEAN, RUNNING_VAR, training=True
        ),
    ),
    "batch_norm beta shape": (
        "beta",
        lambda: batch_norm(
            IMAGE, GAMMA, np.ones((3, 1)), RUNNING_MEAN, RUNNING_VAR, training=True
        ),
    ),
    "batch_norm running_mean shape": (
        "running_mean",
        lambda: batch_norm(IMAGE, GAMMA, BETA, np.ones(2), RUNNING_VAR, training=False),
    ),
    "batch_norm running_var shape": (
        "running_var",
        lambda: batch_norm(
            IMAGE, GAMMA, BETA, RUNNING_MEAN, np.ones(5), training=False
        ),
    ),
    "batch_norm running_var negative": (
        "running_var",
        lambda: batch_norm(
            IMAGE, GAMMA, BETA, RUNNING_MEAN, -RUNNING_VAR, training=False
        ),
    ),
    "batch_norm x 3-d": (
        "x",
        lambda: batch_norm(
            IMAGE[0], GAMMA, BETA, RUNNING_MEAN, RUNNING_VAR, training=True
        ),
    ),
    "batch_norm N=1 in training": (
        "x",
        lambda: batch_norm(
            np.ones((1, 3)), GAMMA, BETA, RUNNING_MEAN, RUNNING_VAR, training=True
        ),
    ),
    "batch_norm N=1, 1x1 image in training": (
        "x",
        lambda: batch_norm(
            np.ones((1, 3, 1, 1)), GAMMA, BETA, RUNNING_MEAN, RUNNING_VAR, training=True
        ),
    ),
    "batch_norm momentum > 1": (
        "momentum",
        lambda: batch_norm(
            IMAGE, GAMMA, BETA, RUNNING_MEAN, RUNNING_VAR, training=True, momentum=1.5
        ),
    ),
    "batch_norm eps 0": (
        "eps",
        lambda: batch_norm(
            IMAGE, GAMMA, BETA, RUNNING_MEAN, RUNNING_VAR, training=True, eps=0.0
        ),
    ),
    "batch_norm training not bool": (
        "training",
        lambda: batch_norm(
            IMAGE, GAMMA, BETA, RUNNING_MEAN, RUNNING_VAR, training="yes"
        ),
    ),
    "batch_norm_backward gamma shape": (
        "gamma",
        lambda: batch_norm_backward(
            IMAGE, IMAGE, np.ones(2), BETA, RUNNING_MEAN, RUNNING_VAR, training=True
        ),
    ),
    "batch_norm_backward N=1 in training": (
        "x",
        lambda: batch_norm_backward(
            np.ones((1, 3)),
            np.ones((1, 3)),
            GAMMA,
            BETA,
            RUNNING_MEAN,
            RUNNING_VAR,
            training=True,
        ),
    ),
    # dropout
    "dropout_mask p = 1": ("p", lambda: dropout_mask((3, 4), p=1.0, seed=0)),
    "dropout_mask p < 0": ("p", lambda: dropout_mask((3, 4), p=-0.1, seed=0)),
    "dropout_mask negative seed": (
        "seed",
        lambda: dropout_mask((3, 4), p=0.5, seed=-1),
    ),
    "dropout_mask float seed": ("seed", lambda: dropout_mask((3, 4), p=0.5, seed=1.5)),
    "dropout_mask negative shape": (
        "shape",
        lambda: dropout_mask((3, -4), p=0.5, seed=0),
    ),
    "dropout p = 1": ("p", lambda: dropout(IMAGE, MASK, p=1.0, training=True)),
    "dropout p > 1": ("p", lambda: dropout(IMAGE, MASK, p=1.5, training=False)),
    "dropout mask shape": (
        "mask",
        lambda: dropout(IMAGE, MASK[0], p=0.5, training=True),
    ),
    "dropout mask not bool": (
        "mask",
        lambda: dropout(IMAGE, MASK.astype(float), p=0.5, training=True),
    ),
    "dropout training not bool": (
        "training",
        lambda: dropout(IMAGE, MASK, p=0.5, training=1),
    ),
    "dropout_backward p = 1": (
        "p",
        lambda: dropout_backward(IMAGE, IMAGE, MASK, p=1.0, training=True),
    ),
}


@pytest.mark.parametrize(("argument", "call"), INVALID.values(), ids=INVALID.keys())
def test_invalid_argument_raises_value_error_naming_it(
    argument: str, call: Callable[[], object]
) -> None:
    _raises_naming(argument, call)


# ---------------------------------------------------------------------------
# Every backward: tuple arity, gradient shapes, and dout of the wrong shape
# ---------------------------------------------------------------------------

X_LINEAR, W_LINEAR, B_LINEAR = _normal(4, 3), _normal(5, 3), _normal(5)
W_MAXOUT, B_MAXOUT = _normal(2, 5, 3), _normal(2, 5)

#: name -> (forward, backward, array arguments, hyperparameters, output index)
BACKWARD_CASES: dict[str, tuple[Callable, Callable, tuple, dict, int | None]] = {
    **{
        name: (
            getattr(activations, name),
            getattr(activations, f"{name}_backward"),
            (IMAGE,),
            {},
            None,
        )
        for name in ELEMENTWISE
    },
    "prelu": (prelu, prelu_backward, (IMAGE, RNG.random(CHANNELS)), {}, None),
    "prelu shared": (prelu, prelu_backward, (IMAGE, RNG.random(1)), {}, None),
    "linear": (
        linear,
        layers.linear_backward,
        (X_LINEAR, W_LINEAR, B_LINEAR),
        {},
        None,
    ),
    "conv2d": (
        conv2d,
        layers.conv2d_backward,
        (IMAGE, KERNEL, BIAS),
        {"stride": 2, "padding": 1},
        None,
    ),
    "max_pool2d": (
        max_pool2d,
        max_pool2d_backward,
        (IMAGE,),
        {"kernel_size": 3, "stride": 2, "padding": 1},
        None,
    ),
    "avg_pool2d": (avg_pool2d, avg_pool2d_backward, (IMAGE,), {"kernel_size": 2}, None),
    "flatten": (flatten, layers.flatten_backward, (IMAGE,), {}, None),
    "softmax": (softmax, layers.softmax_backward, (IMAGE,), {"axis": 1}, None),
    "log_softmax": (log_softmax, layers.log_softmax_backward, (IMAGE,), {}, None),
    "maxout": (maxout, maxout_backward, (X_LINEAR, W_MAXOUT, B_MAXOUT), {}, None),
    "upsample2d nearest": (
        upsample2d,
        layers.upsample2d_backward,
        (IMAGE,),
        {"scale_factor": 2, "mode": "nearest"},
        None,
    ),
    "upsample2d bilinear": (
        upsample2d,
        layers.upsample2d_backward,
        (IMAGE,),
        {"scale_factor": 3, "mode": "bilinear"},
        None,
    ),
    **{
        f"batch_norm {'training' if training else 'eval'} {x.ndim}-d": (
            batch_norm,
            batch_norm_backward,
            (x, GAMMA, BETA, RUNNING_MEAN, RUNNING_VAR),
            {"training": training},
            0,
        )
        for training in (True, False)
        for x in (IMAGE, _normal(6, CHANNELS))
    },
    **{
        f"layer_norm over {count} axes": (
            normalization.layer_norm,
            normalization.layer_norm_backward,
            (IMAGE, _normal(*IMAGE.shape[-count:]), _normal(*IMAGE.shape[-count:])),
            {"normalized_ndim": count},
            None,
        )
        for count in (1, 3)
    },
    **{
        f"dropout {'training' if training else 'eval'}": (
            dropout,
            dropout_backward,
            (IMAGE, MASK),
            {"p": 0.5, "training": training},
            None,
        )
        for training in (True, False)
    },
}


#: The catalog's entries whose reference is tested here.
COVERED = tuple(
    op
    for op in catalog.CATALOG
    if op.family in ("activation", "layer", "normalization")
)


def _op_of(case: str) -> str:
    """The op a case of :data:`INVALID` or :data:`BACKWARD_CASES` names first."""
    return case.split()[0].removesuffix("_backward")


def test_every_differentiable_op_has_a_backward_case() -> None:
    wanted = {op.name for op in COVERED if op.gradients}
    present = {_op_of(case) for case in BACKWARD_CASES}
    assert wanted <= present, f"no BACKWARD_CASES for {sorted(wanted - present)}"


def test_every_op_with_something_to_reject_has_an_invalid_case() -> None:
    """Ops with a hyperparameter or several arrays (shapes that must match)."""
    wanted = {
        op.name
        for op in COVERED
        if len(op.arguments) > 1
        or any(
            p.kind is inspect.Parameter.KEYWORD_ONLY
            for p in inspect.signature(op.forward).parameters.values()
        )
    }
    present = {_op_of(case) for case in INVALID}
    assert wanted <= present, f"no INVALID case for {sorted(wanted - present)}"


def test_the_tables_name_catalog_ops() -> None:
    names = {op.name for op in COVERED}
    stale = {_op_of(case) for case in (*INVALID, *BACKWARD_CASES)} - names
    assert not stale, f"INVALID or BACKWARD_CASES name unknown ops {sorted(stale)}"


def _expected_gradient_shapes(name: str, arrays: tuple) -> list[tuple[int, ...] | None]:
    if name.startswith("batch_norm"):
        return [arrays[0].shape, (CHANNELS,), (CHANNELS,)]
    if name.startswith("dropout"):
        return [arrays[0].shape, None]
    return [np.shape(a) for a in arrays]


@pytest.mark.parametrize(
    ("name", "forward", "backward", "arrays", "hyper", "output"),
    [(name, *case) for name, case in BACKWARD_CASES.items()],
    ids=BACKWARD_CASES.keys(),
)
def test_backward_returns_one_gradient_per_array_and_checks_dout(
    name: str,
    forward: Callable,
    backward: Callable,
    arrays: tuple,
    hyper: dict,
    output: int | None,
) -> None:
    before = [np.array(a, copy=True) for a in arrays]
    y = forward(*arrays, **hyper)
    y = y if output is None else y[output]
    dout = RNG.standard_normal(y.shape)
    grads = backward(dout, *arrays, **hyper)
    assert isinstance(grads, tuple), f"{name}_backward returned {type(grads).__name__}"
    shapes = [None if g is None else g.shape for g in grads]
    expected = _expected_gradient_shapes(name, arrays)
    assert shapes == expected, (
        f"{name}_backward {hyper}: gradient shapes {shapes}, expected {expected}"
    )
    assert all(g is None or g.dtype == np.float64 for g in grads), (
        f"{name}_backward {hyper}: gradient dtypes "
        f"{[getattr(g, 'dtype', None) for g in grads]}"
    )
    for original, array in zip(before, arrays, strict=True):
        np.testing.assert_array_equal(
            array, original, err_msg=f"{name} or its backward mutated an input"
        )
    _raises_naming("dout", lambda: backward(dout[..., :-1], *arrays, **hyper))
    _raises_naming("dout", lambda: backward(dout[None], *arrays, **hyper))


# ---------------------------------------------------------------------------
# Values computed by hand
# ---------------------------------------------------------------------------

#: The 3 x 3 image [[1, 2, 3], [4, 5, 6], [7, 8, 9]] as (1, 1, 3, 3).
COUNTING_IMAGE = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)


def test_conv2d_one_channel_by_hand() -> None:
    kernel = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 1, 2, 2)
    y = conv2d(COUNTING_IMAGE, kernel, np.array([0.5]))
    # y[h, w] = 1 x[h, w] + 2 x[h, w+1] + 3 x[h+1, w] + 4 x[h+1, w+1] + 0.5 (no flip)
    expected = np.array(
        [[1 + 4 + 12 + 20, 2 + 6 + 15 + 24], [4 + 10 + 21 + 32, 5 + 12 + 24 + 36]]
    )
    np.testing.assert_array_equal(
        y, expected.reshape(1, 1, 2, 2) + 0.5, err_msg="conv2d, 1 channel, stride 1"
    )


def test_conv2d_padding_and_stride_by_hand() -> None:
    kernel = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 1, 2, 2)
    y = conv2d(COUNTING_IMAGE, kernel, np.array([0.0]), stride=2, padding=1)
    # windows of the zero-padded 5 x 5 image at rows/cols {0, 2}:
    # [[0, 0], [0, 1]], [[0, 0], [2, 3]], [[0, 4], [0, 7]], [[5, 6], [8, 9]]
    expected = np.array([[4 * 1, 3 * 2 + 4 * 3], [2 * 4 + 4 * 7, 5 + 12 + 24 + 36]])
    np.testing.assert_array_equal(
        y, expected.reshape(1, 1, 2, 2), err_msg="conv2d, stride 2, padding 1"
    )


def test_conv2d_sums_over_input_channels() -> None:
    x = np.stack([COUNTING_IMAGE[0, 0], 10 * COUNTING_IMAGE[0, 0]])[None]
    kernel = np.array([1.0, -0.5]).reshape(1, 2, 1, 1)
    y = conv2d(x, kernel, np.array([1.0]))
    np.testing.assert_array_equal(
        y, 1.0 - 4 * COUNTING_IMAGE, err_msg="conv2d, 2 input channels, 1 x 1 kernel"
    )


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "padding"),
    [
        (5, 3, 1, 0),
        (5, 3, 2, 1),
        (7, 2, 3, 0),
        (6, 4, 4, 2),
        (4, 1, 3, 0),
        (3, 5, 1, 1),
    ],
)
def test_output_size_formula(size: int, kernel: int, stride: int, padding: int) -> None:
    expected = (size + 2 * padding - kernel) // stride + 1
    x = _normal(1, 1, size, size + 1)
    w = _normal(2, 1, kernel, kernel)
    y = conv2d(x, w, np.zeros(2), stride=stride, padding=padding)
    expected_shape = (1, 2, expected, (size + 1 + 2 * padding - kernel) // stride + 1)
    assert y.shape == expected_shape, (
        f"conv2d H={size} k={kernel} s={stride} p={padding}: shape {y.shape}, "
        f"expected {expected_shape}"
    )
    if padding <= kernel // 2:
        pooled = max_pool2d(x, kernel_size=kernel, stride=stride, padding=padding)
        assert pooled.shape == (1, 1, *expected_shape[2:]), (
            f"max_pool2d H={size} k={kernel} s={stride} p={padding}: "
            f"shape {pooled.shape}"
        )


def test_max_pool2d_padding_counts_as_minus_infinity() -> None:
    x = -COUNTING_IMAGE  # every value negative: zero padding would win every window
    y = max_pool2d(x, kernel_size=2, stride=2, padding=1)
    # windows of the padded image: {-1}, {-2, -3}, {-4, -7}, {-5, -6, -8, -9}
    np.testing.assert_array_equal(
        y,
        np.array([[-1.0, -2.0], [-4.0, -5.0]]).reshape(1, 1, 2, 2),
        err_msg="max_pool2d kernel 2, stride 2, padding 1",
    )
    (dx,) = max_pool2d_backward(
        np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 1, 2, 2),
        x,
        kernel_size=2,
        stride=2,
        padding=1,
    )
    expected = np.array([[1.0, 2.0, 0.0], [3.0, 4.0, 0.0], [0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(
        dx, expected.reshape(1, 1, 3, 3), err_msg="max_pool2d_backward routing"
    )


def test_max_pool2d_backward_ties_go_to_first_maximum_and_overlaps_add() -> None:
    x = np.zeros((1, 1, 3, 3))
    (dx,) = max_pool2d_backward(np.ones((1, 1, 2, 2)), x, kernel_size=2, stride=1)
    # every window is a tie; each sends its gradient to its top-left cell
    expected = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(
        dx, expected.reshape(1, 1, 3, 3), err_msg="max_pool2d_backward on ties"
    )
    (dx,) = max_pool2d_backward(
        np.ones((1, 1, 2, 2)), COUNTING_IMAGE, kernel_size=2, stride=1
    )
    # each window's maximum (5, 6, 8, 9) is its bottom-right cell
    expected = np.array([[0.0, 0.0, 0.0], [0.0, 1.0, 1.0], [0.0, 1.0, 1.0]])
    np.testing.assert_array_equal(
        dx, expected.reshape(1, 1, 3, 3), err_msg="max_pool2d_backward overlapping"
    )


def test_avg_pool2d_by_hand() -> None:
    y = avg_pool2d(COUNTING_IMAGE, kernel_size=2, stride=1)
    expected = np.array([[3.0, 4.0], [6.0, 7.0]])  # (1+2+4+5)/4, ...
    np.testing.assert_array_equal(y, expected.reshape(1, 1, 2, 2), err_msg="avg_pool2d")
    (dx,) = avg_pool2d_backward(
        np.ones((1, 1, 2, 2)), COUNTING_IMAGE, kernel_size=2, stride=1
    )
    coverage = np.array([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]])
    np.testing.assert_array_equal(
        dx, coverage.reshape(1, 1, 3, 3) / 4, err_msg="avg_pool2d_backward"
    )


def test_upsample2d_bilinear_2x2_by_hand() -> None:
    x = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 1, 2, 2)
    y = upsample2d(x, scale_factor=2, mode="bilinear")
    # source coordinates (o + 0.5) / 2 - 0.5 = -0.25 -> 0 (clamped), 0.25, 0.75, 1.25;
    # rows interpolate [1, 2] to [1, 1.25, 1.75, 2], then columns likewise
    expected = np.array(
        [
            [1.0, 1.25, 1.75, 2.0],
            [1.5, 1.75, 2.25, 2.5],
            [2.5, 2.75, 3.25, 3.5],
            [3.0, 3.25, 3.75, 4.0],
        ]
    )
    np.testing.assert_allclose(
        y, expected.reshape(1, 1, 4, 4), rtol=0, atol=1e-15, err_msg="bilinear x2"
    )


def test_upsample2d_nearest_by_hand() -> None:
    x = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 1, 2, 2)
    y = upsample2d(x, scale_factor=3, mode="nearest")
    expected = np.kron(np.array([[1.0, 2.0], [3.0, 4.0]]), np.ones((3, 3)))
    np.testing.assert_array_equal(y, expected.reshape(1, 1, 6, 6), err_msg="nearest x3")


def test_linear_and_flatten_by_hand() -> None:
    y = linear(
        np.array([[1.0, 2.0]]),
        np.array([[1.0, 0.0], [1.0, -1.0], [2.0, 3.0]]),
        np.ones(3),
    )
    np.testing.assert_array_equal(y, np.array([[2.0, 0.0, 9.0]]), err_msg="linear")
    np.testing.assert_array_equal(
        flatten(COUNTING_IMAGE), np.arange(1.0, 10.0)[None], err_msg="flatten"
    )


def test_maxout_by_hand() -> None:
    # two pieces on one input: z1 = x, z2 = -x + 1, i.e. max(x, 1 - x)
    w, b = np.array([1.0, -1.0]).reshape(2, 1, 1), np.array([[0.0], [1.0]])
    x = np.array([[-1.0], [0.5], [2.0]])
    np.testing.assert_array_equal(maxout(x, w, b), np.array([[2.0], [0.5], [2.0]]))
    dx, dw, db = maxout_backward(np.ones((3, 1)), x, w, b)
    # winners: piece 2, tie (piece 1 first), piece 1
    np.testing.assert_array_equal(
        dx, np.array([[-1.0], [1.0], [1.0]]), err_msg="maxout dx"
    )
    np.testing.assert_array_equal(dw.ravel(), [2.5, -1.0], err_msg="maxout dw")
    np.testing.assert_array_equal(db.ravel(), [2.0, 1.0], err_msg="maxout db")


def test_softmax_values_and_stability() -> None:
    np.testing.assert_allclose(
        softmax(np.array([0.0, np.log(3.0)])),
        [0.25, 0.75],
        rtol=1e-15,
        err_msg="softmax",
    )
    big = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4]])
    np.testing.assert_array_equal(
        softmax(big), [[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]]
    )
    np.testing.assert_allclose(
        log_softmax(big),
        [[0.0, -1e4, -2e4], [-np.log(3.0)] * 3],
        rtol=1e-15,
        err_msg="log_softmax of logits of magnitude 1e4",
    )


def test_activations_by_hand() -> None:
    x = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_array_equal(relu(x), [0.0, 0.0, 3.0])
    np.testing.assert_array_equal(leaky_relu(x, alpha=0.5), [-1.0, 0.0, 3.0])
    np.testing.assert_array_equal(abs_rectify(x), [2.0, 0.0, 3.0])
    np.testing.assert_allclose(elu(x, alpha=2.0), [2.0 * np.expm1(-2.0), 0.0, 3.0])
    np.testing.assert_allclose(tanh(x), 2 * sigmoid(2 * x) - 1, rtol=1e-15, atol=1e-16)
    np.testing.assert_array_equal(
        relu_backward(np.ones(3), x), (np.array([0.0, 0.0, 1.0]),)
    )
    alpha = np.array([0.1, 0.2])
    image = np.array([[-1.0, -1.0], [1.0, -3.0]])  # (N=2, C=2)
    np.testing.assert_allclose(prelu(image, alpha), [[-0.1, -0.2], [1.0, -0.6]])
    dx, dalpha = prelu_backward(np.ones((2, 2)), image, alpha)
    np.testing.assert_allclose(dx, [[0.1, 0.2], [1.0, 0.2]])
    np.testing.assert_allclose(dalpha, [-1.0, -4.0])


def test_selu_constants() -> None:
    assert SELU_LAMBDA == 1.0507009873554804934193349852946
    assert SELU_ALPHA == 1.6732632423543772848170429916717
    np.testing.assert_array_equal(selu(np.array([1.0, 0.0])), [SELU_LAMBDA, 0.0])
    np.testing.assert_allclose(selu(np.array([-50.0])), [-SELU_LAMBDA * SELU_ALPHA])


def test_sigmoid_and_softplus_are_stable_at_1e4() -> None:
    # pyproject turns RuntimeWarnings from reference.* into errors, so an overflow
    # fails here
    x = np.array([-1e4, -800.0, 0.0, 800.0, 1e4])
    np.testing.assert_array_equal(sigmoid(x), [0.0, 0.0, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(
        softplus(x), [0.0, 0.0, np.log(2.0), 800.0, 1e4], rtol=1e-15
    )


def test_batch_norm_training_by_hand() -> None:
    x = np.array([[1.0], [3.0]])  # mean 2, biased variance 1, unbiased variance 2
    y, running_mean, running_var = batch_norm(
        x,
        np.array([2.0]),
        np.array([0.5]),
        np.array([0.0]),
        np.array([1.0]),
        training=True,
        momentum=0.1,
        eps=1e-5,
    )
    np.testing.assert_allclose(
        y, 2.0 * np.array([[-1.0], [1.0]]) / np.sqrt(1 + 1e-5) + 0.5
    )
    np.testing.assert_allclose(running_mean, [0.9 * 0.0 + 0.1 * 2.0], rtol=1e-15)
    np.testing.assert_allclose(running_var, [0.9 * 1.0 + 0.1 * 2.0], rtol=1e-15)


def test_batch_norm_eval_uses_running_statistics_by_hand() -> None:
    running_mean, running_var = np.array([1.0, -1.0]), np.array([4.0, 0.25])
    x = np.array([[3.0, 0.0], [1.0, -1.0]])
    y, new_mean, new_var = batch_norm(
        x, np.ones(2), np.zeros(2), running_mean, running_var, training=False, eps=1e-12
    )
    np.testing.assert_allclose(y, [[1.0, 2.0], [0.0, 0.0]], rtol=1e-10)
    np.testing.assert_array_equal(new_mean, running_mean)
    np.testing.assert_array_equal(new_var, running_var)
    assert new_mean is not running_mean and new_var is not running_var, (
        "batch_norm in eval must return copies of the running statistics"
    )


def test_batch_norm_image_with_one_sample_trains() -> None:
    x = _normal(1, CHANNELS, 2, 2)  # N = 1 but 4 values per channel
    y, _, _ = batch_norm(
        x,
        np.ones(CHANNELS),
        np.zeros(CHANNELS),
        RUNNING_MEAN,
        RUNNING_VAR,
        training=True,
    )
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0.0, atol=1e-12)


def test_dropout_by_hand() -> None:
    mask = dropout_mask((4, 5), p=0.25, seed=7)
    np.testing.assert_array_equal(mask, dropout_mask((4, 5), p=0.25, seed=7))
    assert mask.dtype == np.bool_ and mask.shape == (4, 5)
    assert dropout_mask((4, 5), p=0.0, seed=7).all(), "p = 0 must keep every unit"
    u = np.random.default_rng(7).random((4, 5))
    np.testing.assert_array_equal(mask, u >= 0.25, err_msg="mask = (u >= p)")
    x = np.full((4, 5), 3.0)
    np.testing.assert_array_equal(dropout(x, mask, p=0.25, training=True), 4.0 * mask)
    np.testing.assert_array_equal(dropout(x, mask, p=0.25, training=False), x)
    dx, dmask = dropout_backward(np.ones((4, 5)), x, mask, p=0.25, training=True)
    np.testing.assert_array_equal(dx, mask / 0.75)
    assert dmask is None
