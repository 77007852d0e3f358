r"""The small models of the lecture notes, built from the reference ops.

Every model is a pure function of an input batch and a parameter dict (name ->
array), composed of :mod:`reference.layers` and :mod:`reference.activations`;
its ``_backward`` takes the upstream gradient and the same inputs and returns
``(dx, dparams)``, ``dparams`` a dict with the keys of ``params``. Nothing is
cached: the backward recomputes the forward it needs.

- :func:`two_layer_mlp`, :func:`three_layer_mlp`: notes 003's
  :math:`s = W_2 \max(0, W_1 x)` and :math:`s = W_3 \max(0, W_2 \max(0, W_1 x))`
  (with biases), rows as samples.
- :func:`lenet5`: the LeNet-5 of notes 004 (conv-tanh-avgpool twice, conv, two
  fully connected layers).
- :func:`residual_block`: the ResNet basic block of notes 000 and 002 without
  its batch norms: conv-ReLU-conv, plus the identity, then ReLU.
- Counting: :func:`parameter_count`, :func:`mlp_parameter_count`,
  :func:`conv2d_multiply_adds` reproduce the notes' 26 and 41 (notes 003) and
  LeNet-5's 61,706 (notes 004). For the 3x3 conv from 3 to 64 channels on 32x32
  of notes 000 they give 1,769,472 multiply-adds: the notes' product
  :math:`32 \cdot 32 \cdot 3 \cdot 3 \cdot 3 \cdot 64` is right but its value,
  printed as 1,179,648, is an arithmetic slip (1,179,648 is the same product with
  2 input channels).

The lecture notes cited as "notes 000" … "notes 004" are described in
``docs/bibliography.md``, with the papers.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from reference._checks import as_float64, pair, require_shape
from reference.activations import relu, relu_backward, tanh
from reference.layers import (
    avg_pool2d,
    conv2d,
    conv2d_backward,
    flatten,
    linear,
    linear_backward,
)

__all__ = [
    "LENET5_INPUT_SHAPE",
    "conv2d_multiply_adds",
    "lenet5",
    "lenet5_parameter_shapes",
    "mlp_parameter_count",
    "mlp_parameter_shapes",
    "parameter_count",
    "residual_block",
    "residual_block_backward",
    "residual_block_parameter_shapes",
    "three_layer_mlp",
    "three_layer_mlp_backward",
    "two_layer_mlp",
    "two_layer_mlp_backward",
]

#: LeNet-5 reads one 32 x 32 grey image per sample: ``(C, H, W)``.
LENET5_INPUT_SHAPE: tuple[int, int, int] = (1, 32, 32)


# ------------------------------------------------------------------------- checks


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _parameters(
    params: object, shapes: Mapping[str, tuple[int, ...]]
) -> dict[str, np.ndarray]:
    """``params`` as float64 arrays, with exactly the keys and shapes of ``shapes``."""
    if not isinstance(params, Mapping) or set(params) != set(shapes):
        keys = sorted(params) if isinstance(params, Mapping) else type(params).__name__
        raise ValueError(f"params must have the keys {sorted(shapes)}, got {keys}")
    arrays = {}
    for name, shape in shapes.items():
        arrays[name] = as_float64(f"params[{name!r}]", params[name])
        require_shape(f"params[{name!r}]", arrays[name], shape)
    return arrays


def _mlp_parameters(
    x: object, params: object, num_layers: int
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Input ``(N, D_0)`` and the parameters of an MLP, widths read from ``w1..wL``."""
    x = as_float64("x", x, ndim=2)
    if not isinstance(params, Mapping):
        raise ValueError(
            f"params must be a dict of arrays, got {type(params).__name__}"
        )
    sizes = [x.shape[1]]
    for layer in range(1, num_layers + 1):
        w = params.get(f"w{layer}")
        width = np.shape(w)[0] if w is not None and np.ndim(w) == 2 else None
        if width is None:
            raise ValueError(f"params['w{layer}'] must be a 2-d array, got {w!r}")
        sizes.append(width)
    return x, _parameters(params, mlp_parameter_shapes(sizes))


# --------------------------------------------------------------------------- MLPs


def two_layer_mlp(x: np.ndarray, params: Mapping[str, np.ndarray]) -> np.ndarray:
    r"""Two-layer MLP (one hidden ReLU layer), class scores out.

    .. math::

        h = \max(0, x W_1^\top + b_1)

        s = h W_2^\top + b_2

    Parameters
    ----------
    x : ndarray of shape `(N, D_0)`
    params : dict
        ``w1`` `(D_1, D_0)`, ``b1`` `(D_1,)`, ``w2`` `(D_2, D_1)`, ``b2`` `(D_2,)`.

    Returns
    -------
    scores : ndarray of shape `(N, D_2)`
        No output activation: scores (logits) for a loss of
        :mod:`reference.losses`.

    Notes
    -----
    Notes 003, "Two Layer example network": :math:`s = W_2 \max(0, W_1 x)` for a
    column :math:`x`, here with a batch in rows and the biases of its code. The
    notes' example has sizes 3-4-2: ``mlp_parameter_count([3, 4, 2]) == 26``
    (3x4+4 + 4x2+2). Its code uses a sigmoid everywhere, output included; the
    reference follows the formula (ReLU hidden, linear output).
    """
    x, p = _mlp_parameters(x, params, 2)
    h1 = relu(linear(x, p["w1"], p["b1"]))
    return linear(h1, p["w2"], p["b2"])


def two_layer_mlp_backward(
    dscores: np.ndarray, x: np.ndarray, params: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    r"""Gradient of :func:`two_layer_mlp` (backpropagation: chain rule, notes 002).

    .. math::

        \frac{\partial L}{\partial h} = \frac{\partial L}{\partial s} W_2

        \frac{\partial L}{\partial z_1} = \frac{\partial L}{\partial h} \odot 1[z_1 > 0]

        \frac{\partial L}{\partial x} = \frac{\partial L}{\partial z_1} W_1

    with :math:`z_1 = x W_1^\top + b_1`; each layer's weight gradients come from
    :func:`reference.layers.linear_backward`.

    Returns
    -------
    (dx, dparams) : dx of shape `(N, D_0)`, dparams with the keys of ``params``.
    """
    x, p = _mlp_parameters(x, params, 2)
    z1 = linear(x, p["w1"], p["b1"])
    h1 = relu(z1)
    dh1, dw2, db2 = linear_backward(dscores, h1, p["w2"], p["b2"])
    (dz1,) = relu_backward(dh1, z1)
    dx, dw1, db1 = linear_backward(dz1, x, p["w1"], p["b1"])
    return dx, {"w1": dw1, "b1": db1, "w2": dw2, "b2": db2}


def three_layer_mlp(x: np.ndarray, params: Mapping[str, np.ndarray]) -> np.ndarray:
    r"""Three-layer MLP (two hidden ReLU layers), class scores out.

    .. math::

        h_1 = \max(0, x W_1^\top + b_1)

        h_2 = \max(0, h_1 W_2^\top + b_2)

        s = h_2 W_3^\top + b_3

    Parameters
    ----------
    x : ndarray of shape `(N, D_0)`
    params : dict
        ``w1`` `(D_1, D_0)`, ``b1``, ``w2`` `(D_2, D_1)`, ``b2``, ``w3``
        `(D_3, D_2)`, ``b3``.

    Returns
    -------
    scores : ndarray of shape `(N, D_3)`

    Notes
    -----
    Notes 003, "Three Layer example network":
    :math:`s = W_3 \max(0, W_2 \max(0, W_1 x))`, sizes 3-4-4-1 there:
    ``mlp_parameter_count([3, 4, 4, 1]) == 41`` (3x4+4 + 4x4+4 + 4x1+1).
    """
    x, p = _mlp_parameters(x, params, 3)
    h1 = relu(linear(x, p["w1"], p["b1"]))
    h2 = relu(linear(h1, p["w2"], p["b2"]))
    return linear(h2, p["w3"], p["b3"])


def three_layer_mlp_backward(
    dscores: np.ndarray, x: np.ndarray, params: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    r"""Gradient of :func:`three_layer_mlp`.

    .. math::

        \frac{\partial L}{\partial z_2} = \frac{\partial L}{\partial s} W_3
            \odot 1[z_2 > 0]

        \frac{\partial L}{\partial z_1} = \frac{\partial L}{\partial z_2} W_2
            \odot 1[z_1 > 0]

        \frac{\partial L}{\partial x} = \frac{\partial L}{\partial z_1} W_1

    Returns
    -------
    (dx, dparams) : dx of shape `(N, D_0)`, dparams with the keys of ``params``.
    """
    x, p = _mlp_parameters(x, params, 3)
    z1 = linear(x, p["w1"], p["b1"])
    h1 = relu(z1)
    z2 = linear(h1, p["w2"], p["b2"])
    h2 = relu(z2)
    dh2, dw3, db3 = linear_backward(dscores, h2, p["w3"], p["b3"])
    (dz2,) = relu_backward(dh2, z2)
    dh1, dw2, db2 = linear_backward(dz2, h1, p["w2"], p["b2"])
    (dz1,) = relu_backward(dh1, z1)
    dx, dw1, db1 = linear_backward(dz1, x, p["w1"], p["b1"])
    grads = {"w1": dw1, "b1": db1, "w2": dw2, "b2": db2, "w3": dw3, "b3": db3}
    return dx, grads


# ------------------------------------------------------------------------ LeNet-5


def lenet5_parameter_shapes(*, num_classes: int = 10) -> dict[str, tuple[int, ...]]:
    r"""The parameter layout of :func:`lenet5`: name -> shape, in forward order.

    - ``conv1``: Conv2d(1, 6, 5), w (6, 1, 5, 5) + b (6,): 156
    - ``conv2``: Conv2d(6, 16, 5), w (16, 6, 5, 5) + b (16,): 2,416
    - ``conv3``: Conv2d(16, 120, 5), w (120, 16, 5, 5) + b (120,): 48,120
    - ``fc1``: Linear(120, 84), w (84, 120) + b (84,): 10,164
    - ``fc2``: Linear(84, num_classes), w (10, 84) + b (10,): 850

    Total 61,706 for ``num_classes=10``: ``parameter_count(lenet5_parameter_shapes())``.

    Parameters
    ----------
    num_classes : int, default 10
        Width of the output layer (``n_classes`` of the notes' ``LeNet5``).

    Returns
    -------
    shapes : dict
        ``conv1_w``, ``conv1_b``, ``conv2_w``, ``conv2_b``, ``conv3_w``,
        ``conv3_b``, ``fc1_w``, ``fc1_b``, ``fc2_w``, ``fc2_b``.

    Notes
    -----
    The notes (004) do not print the count; 61,706 is what their ``LeNet5`` class
    has with ``n_classes=10``. It is more than LeCun et al. (1998)'s 60,000
    because the notes' second conv connects all 6 input maps to all 16 outputs
    (LeCun's C3 used a sparse connection table, 1,516 parameters instead of 2,416)
    and their pooling layers have no trainable coefficients.
    """
    if not _is_int(num_classes) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    return {
        "conv1_w": (6, 1, 5, 5),
        "conv1_b": (6,),
        "conv2_w": (16, 6, 5, 5),
        "conv2_b": (16,),
        "conv3_w": (120, 16, 5, 5),
        "conv3_b": (120,),
        "fc1_w": (84, 120),
        "fc1_b": (84,),
        "fc2_w": (int(num_classes), 84),
        "fc2_b": (int(num_classes),),
    }


def lenet5(x: np.ndarray, params: Mapping[str, np.ndarray]) -> np.ndarray:
    r"""LeNet-5 as in notes 004: logits of a batch of 32 x 32 grey images.

    .. math::

        a_1 = \mathrm{avgpool}_2(\tanh(\mathrm{conv}_5(x; W_1, b_1)))
            \quad (N, 6, 14, 14)

        a_2 = \mathrm{avgpool}_2(\tanh(\mathrm{conv}_5(a_1; W_2, b_2)))
            \quad (N, 16, 5, 5)

        a_3 = \mathrm{flatten}(\tanh(\mathrm{conv}_5(a_2; W_3, b_3)))
            \quad (N, 120)

        a_4 = \tanh(a_3 W_4^\top + b_4) \quad (N, 84)

        z = a_4 W_5^\top + b_5 \quad (N, \text{num\_classes})

    Convolutions have stride 1 and no padding; pooling is 2 x 2 average pooling
    with stride 2.

    Parameters
    ----------
    x : ndarray of shape `(N, 1, 32, 32)`
    params : dict
        The layout of :func:`lenet5_parameter_shapes` (``num_classes`` read from
        ``fc2_w``).

    Returns
    -------
    logits : ndarray of shape `(N, num_classes)`
        The notes' ``forward`` also returns ``probs = softmax(logits)``; apply
        :func:`reference.layers.softmax` for that.
    """
    x = as_float64("x", x, ndim=4)
    if x.shape[1:] != LENET5_INPUT_SHAPE:
        raise ValueError(f"x must have shape (N, 1, 32, 32) for LeNet-5, got {x.shape}")
    fc2_w = params.get("fc2_w") if isinstance(params, Mapping) else None
    num_classes = np.shape(fc2_w)[0] if np.ndim(fc2_w) == 2 else 0
    if num_classes < 1:
        raise ValueError(f"params['fc2_w'] must be a 2-d array, got {fc2_w!r}")
    p = _parameters(params, lenet5_parameter_shapes(num_classes=num_classes))
    a1 = avg_pool2d(tanh(conv2d(x, p["conv1_w"], p["conv1_b"])), kernel_size=2)
    a2 = avg_pool2d(tanh(conv2d(a1, p["conv2_w"], p["conv2_b"])), kernel_size=2)
    a3 = flatten(tanh(conv2d(a2, p["conv3_w"], p["conv3_b"])))
    a4 = tanh(linear(a3, p["fc1_w"], p["fc1_b"]))
    return linear(a4, p["fc2_w"], p["fc2_b"])


# ------------------------------------------------------------------ residual block


def residual_block_parameter_shapes(
    channels: int, *, kernel_size: int = 3
) -> dict[str, tuple[int, ...]]:
    """The parameters of :func:`residual_block`: two ``channels -> channels`` convs.

    ``w1``, ``w2`` of shape ``(channels, channels, kernel_size, kernel_size)`` and
    ``b1``, ``b2`` of shape ``(channels,)``; ``kernel_size`` odd (for "same"
    padding).
    """
    if not _is_int(channels) or channels < 1:
        raise ValueError(f"channels must be a positive int, got {channels!r}")
    if not _is_int(kernel_size) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd int, got {kernel_size!r}")
    k = int(kernel_size)
    c = int(channels)
    return {"w1": (c, c, k, k), "b1": (c,), "w2": (c, c, k, k), "b2": (c,)}


def _residual_parameters(
    x: object, params: object
) -> tuple[np.ndarray, dict[str, np.ndarray], int]:
    """The input ``(N, C, H, W)``, parameters and "same" padding of a block."""
    x = as_float64("x", x, ndim=4)
    w1 = params.get("w1") if isinstance(params, Mapping) else None
    if np.ndim(w1) != 4:
        raise ValueError(f"params['w1'] must be a 4-d array, got {w1!r}")
    kernel_size = np.shape(w1)[-1]
    if kernel_size % 2 == 0:
        raise ValueError(
            f"params['w1'] must have an odd kernel size, got shape {np.shape(w1)}"
        )
    shapes = residual_block_parameter_shapes(x.shape[1], kernel_size=kernel_size)
    return x, _parameters(params, shapes), kernel_size // 2


def residual_block(x: np.ndarray, params: Mapping[str, np.ndarray]) -> np.ndarray:
    r"""ResNet basic block with an identity shortcut (batch norms left out).

    .. math::

        z_1 = \mathrm{conv}(x; W_1, b_1)

        h = \max(0, z_1)

        z_2 = \mathrm{conv}(h; W_2, b_2)

        y = \max(0, z_2 + x)

    Both convs: stride 1, "same" padding :math:`k // 2`, ``C -> C`` channels, so
    the shortcut :math:`x` has the shape of :math:`z_2`.

    Parameters
    ----------
    x : ndarray of shape `(N, C, H, W)`
    params : dict
        ``w1``, ``w2`` `(C, C, k, k)` with odd k, ``b1``, ``b2`` `(C,)`.

    Returns
    -------
    y : ndarray of shape `(N, C, H, W)`

    Notes
    -----
    Notes 000's ``residual_block`` (Keras-style: Conv2D-BN-ReLU-Conv2D-BN, add the
    shortcut, ReLU; He et al., 2016) without the ``BatchNormalization`` layers,
    and with the default ``stride=1`` (a stride > 1 would need a projection
    shortcut). Notes 002: if both convs' weights become 0, :math:`y = \max(0, x)`,
    the block "skips" (for :math:`x \ge 0`, the output of a previous ReLU, it is
    the identity).
    """
    x, p, padding = _residual_parameters(x, params)
    h = relu(conv2d(x, p["w1"], p["b1"], stride=1, padding=padding))
    z2 = conv2d(h, p["w2"], p["b2"], stride=1, padding=padding)
    return relu(z2 + x)


def residual_block_backward(
    dout: np.ndarray, x: np.ndarray, params: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    r"""Gradient of :func:`residual_block`.

    .. math::

        \frac{\partial L}{\partial u} = \frac{\partial L}{\partial y} \odot 1[u > 0],
            \quad u = z_2 + x

        \frac{\partial L}{\partial h} = \mathrm{conv}^\top_{W_2}
            \left(\frac{\partial L}{\partial u}\right)

        \frac{\partial L}{\partial z_1} = \frac{\partial L}{\partial h} \odot 1[z_1 > 0]

        \frac{\partial L}{\partial x} = \mathrm{conv}^\top_{W_1}
            \left(\frac{\partial L}{\partial z_1}\right)
            + \frac{\partial L}{\partial u}

    The last term is the shortcut: the gradient reaches :math:`x` directly, which
    is why deep residual nets train (notes 002, "ResNet").

    Returns
    -------
    (dx, dparams) : dx of shape `(N, C, H, W)`, dparams with keys ``w1``, ``b1``,
        ``w2``, ``b2``.
    """
    x, p, padding = _residual_parameters(x, params)
    z1 = conv2d(x, p["w1"], p["b1"], stride=1, padding=padding)
    h = relu(z1)
    u = conv2d(h, p["w2"], p["b2"], stride=1, padding=padding) + x
    (du,) = relu_backward(dout, u)
    dh, dw2, db2 = conv2d_backward(du, h, p["w2"], p["b2"], stride=1, padding=padding)
    (dz1,) = relu_backward(dh, z1)
    dx_conv, dw1, db1 = conv2d_backward(
        dz1, x, p["w1"], p["b1"], stride=1, padding=padding
    )
    dx = dx_conv + du
    return dx, {"w1": dw1, "b1": db1, "w2": dw2, "b2": db2}


# ---------------------------------------------------------------------- counting


def parameter_count(
    shapes: Mapping[str, Sequence[int]] | Iterable[Sequence[int]],
) -> int:
    r"""Number of scalars in a set of parameter arrays.

    .. math::

        P = \sum_{p} \prod_{d} \mathrm{shape}(p)_d

    Parameters
    ----------
    shapes : dict of name -> shape, or an iterable of shapes
        For example :func:`mlp_parameter_shapes` or
        :func:`lenet5_parameter_shapes`.

    Returns
    -------
    count : int
    """
    values = shapes.values() if isinstance(shapes, Mapping) else shapes
    total = 0
    for shape in values:
        dims = (shape,) if _is_int(shape) else tuple(shape)
        if not all(_is_int(d) and d >= 0 for d in dims):
            raise ValueError(
                f"shapes must hold shapes of non-negative ints, got {shape!r}"
            )
        total += math.prod(int(d) for d in dims)
    return total


def mlp_parameter_shapes(layer_sizes: Sequence[int]) -> dict[str, tuple[int, ...]]:
    r"""The parameters of an MLP with widths ``D_0, ..., D_L``: name -> shape.

    .. math::

        W_l \in \mathbb{R}^{D_l \times D_{l-1}}, \quad b_l \in \mathbb{R}^{D_l},
            \quad l = 1 \dots L

    Returns
    -------
    shapes : dict
        ``w1`` `(D_1, D_0)`, ``b1`` `(D_1,)`, ..., ``wL``, ``bL``: the layout of
        :func:`two_layer_mlp` (L = 2) and :func:`three_layer_mlp` (L = 3).
    """
    if (
        isinstance(layer_sizes, (str, bytes))
        or not isinstance(layer_sizes, Sequence)
        or len(layer_sizes) < 2
        or not all(_is_int(d) and d >= 1 for d in layer_sizes)
    ):
        raise ValueError(
            "layer_sizes must be a sequence of at least 2 positive ints "
            f"(input width first), got {layer_sizes!r}"
        )
    shapes: dict[str, tuple[int, ...]] = {}
    for layer in range(1, len(layer_sizes)):
        shapes[f"w{layer}"] = (int(layer_sizes[layer]), int(layer_sizes[layer - 1]))
        shapes[f"b{layer}"] = (int(layer_sizes[layer]),)
    return shapes


def mlp_parameter_count(layer_sizes: Sequence[int]) -> int:
    r"""Weights and biases of a fully connected net with widths ``D_0, ..., D_L``.

    .. math::

        P = \sum_{l=1}^{L} (D_{l-1} D_l + D_l)

    Examples from the notes
    -----------------------
    - notes 003, two-layer net 3-4-2: ``mlp_parameter_count([3, 4, 2]) == 26``
      (3x4+4 + 4x2+2);
    - notes 003, three-layer net 3-4-4-1: ``mlp_parameter_count([3, 4, 4, 1])
      == 41`` (3x4+4 + 4x4+4 + 4x1+1);
    - notes 004's exercise, a 4032 x 3024 RGB photo to 1000 hidden to 10:
      ``mlp_parameter_count([4032 * 3024 * 3, 1000, 10]) == 36_578_315_010``
      (the notes' "36 B").
    """
    return parameter_count(mlp_parameter_shapes(layer_sizes))


def conv2d_multiply_adds(
    input_shape: Sequence[int],
    weight_shape: Sequence[int],
    *,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
) -> int:
    r"""Multiply-adds of one :func:`reference.layers.conv2d` (bias adds excluded).

    .. math::

        H' = \lfloor (H + 2 p_H - k_H) / s_H \rfloor + 1, \quad
            W' = \lfloor (W + 2 p_W - k_W) / s_W \rfloor + 1

        \text{MACs} = N \cdot H' W' \cdot k_H k_W C_{in} \cdot C_{out}

    Parameters
    ----------
    input_shape : (N, C_in, H, W)
    weight_shape : (C_out, C_in, kH, kW)
    stride, padding : int or (h, w) pair
        As :func:`reference.layers.conv2d`.

    Returns
    -------
    count : int

    Notes
    -----
    The notes' formula (notes 000, "Power of small filters"):
    :math:`H' \times W' \times K_H \times K_W \times C_{in} \times C_{out}`.
    Their example, a 3x3 conv from 3 to 64 channels on a 32x32 RGB image with a
    32x32 output (so padding 1, "same"), is
    ``conv2d_multiply_adds((1, 3, 32, 32), (64, 3, 3, 3), padding=1)``
    :math:`= 32 \cdot 32 \cdot 3 \cdot 3 \cdot 3 \cdot 64 = 1{,}769{,}472`.

    ARITHMETIC ERROR in notes 000: they print this product as 1,179,648, which is
    :math:`32 \cdot 32 \cdot 3 \cdot 3 \cdot 2 \cdot 64` (2 input channels, or
    two thirds of the true value). The reference computes the product, not the
    printed number. Also, the notes' "Number of Weights = x K_H x K_W x C_in x
    C_out" has a stray leading "x": the weights are :math:`k_H k_W C_{in}
    C_{out}` = 1,728 here, plus 64 biases.
    """
    dims_in = tuple(input_shape)
    dims_w = tuple(weight_shape)
    if len(dims_in) != 4 or not all(_is_int(d) and d >= 1 for d in dims_in):
        raise ValueError(
            f"input_shape must be (N, C_in, H, W) positive ints, got {input_shape!r}"
        )
    if len(dims_w) != 4 or not all(_is_int(d) and d >= 1 for d in dims_w):
        raise ValueError(
            "weight_shape must be (C_out, C_in, kH, kW) positive ints, "
            f"got {weight_shape!r}"
        )
    if dims_w[1] != dims_in[1]:
        raise ValueError(
            f"weight_shape must have C_in = input_shape[1] = {dims_in[1]}, "
            f"got {dims_w!r}"
        )
    s_h, s_w = pair("stride", stride, minimum=1)
    p_h, p_w = pair("padding", padding, minimum=0)
    n, c_in, height, width = dims_in
    c_out, _, k_h, k_w = dims_w
    if height + 2 * p_h < k_h or width + 2 * p_w < k_w:
        raise ValueError(
            f"weight_shape's kernel {k_h}x{k_w} must fit the padded input "
            f"{height + 2 * p_h}x{width + 2 * p_w}"
        )
    out_h = (height + 2 * p_h - k_h) // s_h + 1
    out_w = (width + 2 * p_w - k_w) // s_w + 1
    return n * out_h * out_w * k_h * k_w * c_in * c_out
