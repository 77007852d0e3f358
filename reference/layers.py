r"""Layers: linear, convolution, pooling, flatten, softmax, maxout, upsampling.

Each forward is followed by its backward. A backward ``f_backward(dout, *arrays,
**hyper)`` takes the upstream gradient ``dout`` (shaped like the forward's
output) and the forward's own inputs, recomputes what it needs (no cache), and
returns a tuple with one gradient per array argument, in order.

Conventions (the README's "Conventions every backend follows"):

* images are NCHW; ``linear`` weights are ``(D_out, D_in)``; ``conv2d`` weights
  are ``(C_out, C_in, kH, kW)``;
* ``conv2d`` is a cross-correlation (the kernel is not flipped), as in every
  deep-learning library;
* ``stride`` and ``padding`` are an int or an ``(h, w)`` pair; padding adds
  zeros (``-inf`` for max pooling) on both sides; the output size is
  :math:`\lfloor (H + 2p - k) / s \rfloor + 1`, and input rows past the last
  full window are ignored.

This is an oracle written to be read: convolution and pooling are loops over
the kernel offsets :math:`(i, j)`, each offset one strided slice of the input.

The lecture notes cited as "notes 000" … "notes 004" are described in
``docs/bibliography.md``, with the papers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from numpy.typing import ArrayLike

from reference._checks import as_float64, upstream
from reference.shapes import (
    conv2d_geometry,
    linear_shapes,
    max_pool2d_geometry,
    maxout_shapes,
    pool2d_geometry,
    require_min_ndim,
    softmax_axis,
    upsample2d_geometry,
)

__all__ = [
    "avg_pool2d",
    "avg_pool2d_backward",
    "conv2d",
    "conv2d_backward",
    "flatten",
    "flatten_backward",
    "linear",
    "linear_backward",
    "log_softmax",
    "log_softmax_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "maxout",
    "maxout_backward",
    "softmax",
    "softmax_backward",
    "upsample2d",
    "upsample2d_backward",
]

IntPair = int | Sequence[int]


# ---------------------------------------------------------------------------
# Shared checks and window geometry
# ---------------------------------------------------------------------------


def _offset_slice(offset: int, stride: int, size_out: int) -> slice:
    """The input rows ``offset + stride * o`` for the output rows ``o < size_out``."""
    return slice(offset, offset + stride * (size_out - 1) + 1, stride)


def _kernel_offsets(
    kernel: tuple[int, int], stride: tuple[int, int], size_out: tuple[int, int]
) -> Iterator[tuple[int, int, slice, slice]]:
    """Each kernel offset ``(i, j)`` in row-major order, with the input window it meets.

    ``x[:, :, rows, cols]`` is the ``(N, C, H_out, W_out)`` array of the input
    elements that offset ``(i, j)`` of every output window touches.
    """
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            rows = _offset_slice(i, stride[0], size_out[0])
            cols = _offset_slice(j, stride[1], size_out[1])
            yield i, j, rows, cols


def _pad(x: np.ndarray, padding: tuple[int, int], value: float = 0.0) -> np.ndarray:
    """``x`` (NCHW) with ``padding`` rows and columns of ``value`` on both sides."""
    ph, pw = padding
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def _crop(x_padded: np.ndarray, padding: tuple[int, int]) -> np.ndarray:
    """The inverse of :func:`_pad`: drop the padded rows and columns."""
    ph, pw = padding
    height, width = x_padded.shape[2] - 2 * ph, x_padded.shape[3] - 2 * pw
    return x_padded[:, :, ph : ph + height, pw : pw + width]


# ---------------------------------------------------------------------------
# Linear (fully connected)
# ---------------------------------------------------------------------------


def _check_linear(
    x: ArrayLike, w: ArrayLike, b: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = as_float64("x", x, ndim=2)
    w = as_float64("w", w, ndim=2)
    b = as_float64("b", b, ndim=1)
    linear_shapes(x.shape, w.shape, b.shape)
    return x, w, b


def linear(x: ArrayLike, w: ArrayLike, b: ArrayLike) -> np.ndarray:
    r"""Fully connected (affine) layer.

    .. math::

        y = x W^{\top} + b

        y_{n,o} = \sum_{i} x_{n,i} W_{o,i} + b_{o}

    Convention: one sample per row of ``x`` and one output neuron per row of
    ``W`` ("every single neuron has its weights in a row of W", notes 003), so
    the notes' column form :math:`s = W x` becomes :math:`x W^{\top}`.

    Parameters
    ----------
    x : array_like, shape ``(N, D_in)``
        The inputs, one per row.
    w : array_like, shape ``(D_out, D_in)``
        The weights (torch's ``nn.Linear`` layout).
    b : array_like, shape ``(D_out,)``
        The biases.

    Returns
    -------
    y : ndarray, shape ``(N, D_out)``, float64

    References
    ----------
    notes 003 ("Example Feed-forward Computation"), notes 004.
    """
    x, w, b = _check_linear(x, w, b)
    return x @ w.T + b


def linear_backward(
    dout: ArrayLike, x: ArrayLike, w: ArrayLike, b: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Gradient of :func:`linear`.

    .. math::

        \frac{\partial L}{\partial x} = \frac{\partial L}{\partial y} W

        \frac{\partial L}{\partial W} = \Big(\frac{\partial L}{\partial y}\Big)^{\top} x

        \frac{\partial L}{\partial b_{o}} = \sum_{n} \frac{\partial L}{\partial y_{n,o}}

    Parameters
    ----------
    dout : array_like, shape ``(N, D_out)``
        Upstream gradient.
    x, w, b : array_like
        The forward's inputs (shapes as in :func:`linear`).

    Returns
    -------
    (dx, dw, db) : tuple of ndarrays, shapes of ``x``, ``w``, ``b``
    """
    x, w, b = _check_linear(x, w, b)
    dout = upstream(dout, (x.shape[0], w.shape[0]))
    dx = dout @ w
    dw = dout.T @ x
    db = dout.sum(axis=0)
    return dx, dw, db


# ---------------------------------------------------------------------------
# 2-d convolution (cross-correlation)
# ---------------------------------------------------------------------------


def _check_conv2d(
    x: ArrayLike, w: ArrayLike, b: ArrayLike, stride: IntPair, padding: IntPair
) -> tuple[
    np.ndarray,
    np.ndarray,
    np.ndarray,
    tuple[int, int],
    tuple[int, int],
    tuple[int, int],
]:
    """The checked arrays, stride, padding and output ``(H_out, W_out)``."""
    x = as_float64("x", x, ndim=4)
    w = as_float64("w", w, ndim=4)
    b = as_float64("b", b, ndim=1)
    stride, padding, size_out = conv2d_geometry(
        x.shape, w.shape, b.shape, stride, padding
    )
    return x, w, b, stride, padding, size_out


def conv2d(
    x: ArrayLike,
    w: ArrayLike,
    b: ArrayLike,
    *,
    stride: IntPair = 1,
    padding: IntPair = 0,
) -> np.ndarray:
    r"""2-d convolution layer (a cross-correlation), NCHW.

    .. math::

        \tilde{x} = \operatorname{pad}_{p}(x) \quad \text{(zeros on both sides)}

        y_{n,o,h,w} = b_{o} + \sum_{i=0}^{k_H-1} \sum_{j=0}^{k_W-1} \sum_{c}
            W_{o,c,i,j} \, \tilde{x}_{n,c,\, s_H h + i,\, s_W w + j}

        H_{out} = \lfloor (H + 2 p_H - k_H) / s_H \rfloor + 1,
        \quad W_{out} = \lfloor (W + 2 p_W - k_W) / s_W \rfloor + 1

    Written as a sum over the kernel offsets :math:`(i, j)`: each offset
    contributes one contraction over the input channels (an ``einsum``) of a
    strided slice of :math:`\tilde{x}`. No im2col: clarity over speed.

    Convention: cross-correlation, the kernel is *not* flipped. notes 004
    says so ("ML libraries implement cross-correlation, don't flip the
    kernel"); its formula is garbled by OCR and reads
    :math:`S(i, j) = \sum_{m} \sum_{n} X(i + m, j + n) W(m, n)`. The sum
    :math:`(f * g)(n) = \sum_k f(k) g(n - k)` of notes 000 is the true
    (flipped) convolution, which this is not. The output size combines the
    two formulas of notes 002, :math:`n - k + 2p + 1` (stride 1) and
    :math:`\lfloor (n - k) / s \rfloor + 1` (no padding). The weight count of
    notes 000 has a stray :math:`\times` in front: it is
    :math:`k_H k_W C_{in} C_{out}` (plus :math:`C_{out}` biases).

    Parameters
    ----------
    x : array_like, shape ``(N, C_in, H, W)``
        The input images.
    w : array_like, shape ``(C_out, C_in, kH, kW)``
        The kernels, one 3-tensor per output channel.
    b : array_like, shape ``(C_out,)``
        The biases (required).
    stride : int or (int, int), default 1
        Step between windows, at least 1.
    padding : int or (int, int), default 0
        Zero rows/columns added on each side, at least 0.

    Returns
    -------
    y : ndarray, shape ``(N, C_out, H_out, W_out)``, float64

    References
    ----------
    notes 000, notes 002, notes 004. LeCun, Y., Bottou, L., Bengio, Y.
    and Haffner, P. (1998). "Gradient-based learning applied to document
    recognition." Proc. IEEE. Dumoulin, V. and Visin, F. (2016). "A guide to
    convolution arithmetic for deep learning." arXiv:1603.07285.
    """
    x, w, b, stride, padding, size_out = _check_conv2d(x, w, b, stride, padding)
    x_padded = _pad(x, padding)
    y = np.zeros((x.shape[0], w.shape[0], *size_out))
    for i, j, rows, cols in _kernel_offsets(w.shape[2:], stride, size_out):
        y += np.einsum("nchw,oc->nohw", x_padded[:, :, rows, cols], w[:, :, i, j])
    return y + b.reshape(1, -1, 1, 1)


def conv2d_backward(
    dout: ArrayLike,
    x: ArrayLike,
    w: ArrayLike,
    b: ArrayLike,
    *,
    stride: IntPair = 1,
    padding: IntPair = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Gradient of :func:`conv2d`.

    For each kernel offset :math:`(i, j)`, in the notation of the forward:

    .. math::

        \frac{\partial L}{\partial \tilde{x}_{n,c,\, s_H h + i,\, s_W w + j}}
            \mathrel{+}= \sum_{o} \frac{\partial L}{\partial y_{n,o,h,w}} W_{o,c,i,j}

        \frac{\partial L}{\partial W_{o,c,i,j}} = \sum_{n,h,w}
            \frac{\partial L}{\partial y_{n,o,h,w}}
            \, \tilde{x}_{n,c,\, s_H h + i,\, s_W w + j}

        \frac{\partial L}{\partial b_{o}} = \sum_{n,h,w}
            \frac{\partial L}{\partial y_{n,o,h,w}}

    and :math:`\partial L / \partial x` is :math:`\partial L / \partial \tilde{x}`
    with the padding cropped off (padded cells and rows past the last window
    get no gradient).

    Parameters
    ----------
    dout : array_like, shape ``(N, C_out, H_out, W_out)``
        Upstream gradient.
    x, w, b : array_like
        The forward's inputs (shapes as in :func:`conv2d`).
    stride, padding : int or (int, int)
        As in :func:`conv2d`.

    Returns
    -------
    (dx, dw, db) : tuple of ndarrays, shapes of ``x``, ``w``, ``b``
    """
    x, w, b, stride, padding, size_out = _check_conv2d(x, w, b, stride, padding)
    dout = upstream(dout, (x.shape[0], w.shape[0], *size_out))
    x_padded = _pad(x, padding)
    dx_padded = np.zeros_like(x_padded)
    dw = np.zeros_like(w)
    for i, j, rows, cols in _kernel_offsets(w.shape[2:], stride, size_out):
        dx_padded[:, :, rows, cols] += np.einsum("nohw,oc->nchw", dout, w[:, :, i, j])
        dw[:, :, i, j] = np.einsum("nohw,nchw->oc", dout, x_padded[:, :, rows, cols])
    db = dout.sum(axis=(0, 2, 3))
    return _crop(dx_padded, padding), dw, db


# ---------------------------------------------------------------------------
# Max pooling
# ---------------------------------------------------------------------------


def _check_pool(
    x: ArrayLike,
    kernel_size: IntPair,
    stride: IntPair | None,
    padding: IntPair,
    *,
    max_pool: bool = False,
) -> tuple[np.ndarray, tuple[int, int], tuple[int, int], tuple[int, int], tuple]:
    """The checked input, kernel, stride, padding and output ``(H_out, W_out)``."""
    x = as_float64("x", x, ndim=4)
    geometry = max_pool2d_geometry if max_pool else pool2d_geometry
    return (x, *geometry(x.shape, kernel_size, stride, padding))


def max_pool2d(
    x: ArrayLike,
    *,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
) -> np.ndarray:
    r"""2-d max pooling, NCHW, each channel on its own.

    .. math::

        \tilde{x} = \operatorname{pad}_{p}(x) \quad \text{(with } -\infty \text{)}

        y_{n,c,h,w} = \max_{0 \le i < k_H,\ 0 \le j < k_W}
            \tilde{x}_{n,c,\, s_H h + i,\, s_W w + j}

    with the output size of :func:`conv2d`.

    Convention (torch's): ``stride`` defaults to ``kernel_size``; padded cells
    count as :math:`-\infty`, so they never win; ``padding`` must be at most
    ``kernel_size // 2``, which keeps at least one real cell in every window.

    Parameters
    ----------
    x : array_like, shape ``(N, C, H, W)``
        The input images.
    kernel_size : int or (int, int)
        Window size, at least 1.
    stride : int or (int, int), optional
        Step between windows, at least 1; default ``kernel_size``.
    padding : int or (int, int), default 0
        :math:`-\infty` rows/columns added on each side, at most
        ``kernel_size // 2``.

    Returns
    -------
    y : ndarray, shape ``(N, C, H_out, W_out)``, float64

    References
    ----------
    notes 000 ("Max Pooling (e.g on a 2x2 Window)"), notes 002.
    """
    x, kernel, stride, padding, size_out = _check_pool(
        x, kernel_size, stride, padding, max_pool=True
    )
    x_padded = _pad(x, padding, value=-np.inf)
    y = np.full((*x.shape[:2], *size_out), -np.inf)
    for _, _, rows, cols in _kernel_offsets(kernel, stride, size_out):
        y = np.maximum(y, x_padded[:, :, rows, cols])
    return y


def max_pool2d_backward(
    dout: ArrayLike,
    x: ArrayLike,
    *,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
) -> tuple[np.ndarray]:
    r"""Gradient of :func:`max_pool2d`: each window's gradient goes to its maximum.

    .. math::

        \frac{\partial y_{n,c,h,w}}{\partial \tilde{x}_{n,c,\, s_H h + i,\, s_W w + j}}
            = \mathbb{1}[(i, j) = (i^{*}, j^{*})_{n,c,h,w}]

        \frac{\partial L}{\partial \tilde{x}_{n,c,\, s_H h + i^{*},\, s_W w + j^{*}}}
            \mathrel{+}= \frac{\partial L}{\partial y_{n,c,h,w}}

    where :math:`(i^{*}, j^{*})` is the offset of the *first* maximum of the
    window in row-major order (overlapping windows add up). notes 002
    writes this derivative upside down, ":math:`\partial x / \partial y_i = 1`
    if :math:`y_i = \max(y)`"; it is :math:`\partial \max(y) / \partial y_i`.

    Convention: ties go to the first maximum in row-major order (the suite
    accepts any maximum; the reference picks the first).

    Parameters
    ----------
    dout : array_like, shape ``(N, C, H_out, W_out)``
        Upstream gradient.
    x : array_like, shape ``(N, C, H, W)``
        The forward's input.
    kernel_size, stride, padding
        As in :func:`max_pool2d`.

    Returns
    -------
    (dx,) : tuple of one ndarray, shape of ``x``
    """
    x, kernel, stride, padding, size_out = _check_pool(
        x, kernel_size, stride, padding, max_pool=True
    )
    dout = upstream(dout, (*x.shape[:2], *size_out))
    x_padded = _pad(x, padding, value=-np.inf)
    offsets = list(_kernel_offsets(kernel, stride, size_out))
    # First pass: the offset number (row-major) of each window's first maximum.
    best = np.full(dout.shape, -np.inf)
    first_maximum = np.zeros(dout.shape, dtype=np.intp)
    for number, (_, _, rows, cols) in enumerate(offsets):
        better = x_padded[:, :, rows, cols] > best
        best = np.where(better, x_padded[:, :, rows, cols], best)
        first_maximum = np.where(better, number, first_maximum)
    # Second pass: route each window's gradient to that offset.
    dx_padded = np.zeros_like(x_padded)
    for number, (_, _, rows, cols) in enumerate(offsets):
        dx_padded[:, :, rows, cols] += dout * (first_maximum == number)
    return (_crop(dx_padded, padding),)


# ---------------------------------------------------------------------------
# Average pooling
# ---------------------------------------------------------------------------


def avg_pool2d(
    x: ArrayLike, *, kernel_size: IntPair, stride: IntPair | None = None
) -> np.ndarray:
    r"""2-d average pooling, NCHW, each channel on its own, no padding.

    .. math::

        y_{n,c,h,w} = \frac{1}{k_H k_W} \sum_{i=0}^{k_H-1} \sum_{j=0}^{k_W-1}
            x_{n,c,\, s_H h + i,\, s_W w + j}

        H_{out} = \lfloor (H - k_H) / s_H \rfloor + 1,
        \quad W_{out} = \lfloor (W - k_W) / s_W \rfloor + 1

    Convention: ``stride`` defaults to ``kernel_size`` (as torch); no padding.

    Parameters
    ----------
    x : array_like, shape ``(N, C, H, W)``
        The input images.
    kernel_size : int or (int, int)
        Window size, at least 1, at most the input size.
    stride : int or (int, int), optional
        Step between windows, at least 1; default ``kernel_size``.

    Returns
    -------
    y : ndarray, shape ``(N, C, H_out, W_out)``, float64

    References
    ----------
    notes 004 (LeNet-5 uses ``AvgPool2d(kernel_size=2)``). LeCun et al. (1998).
    """
    x, kernel, stride, _, size_out = _check_pool(x, kernel_size, stride, 0)
    y = np.zeros((*x.shape[:2], *size_out))
    for _, _, rows, cols in _kernel_offsets(kernel, stride, size_out):
        y += x[:, :, rows, cols]
    return y / (kernel[0] * kernel[1])


def avg_pool2d_backward(
    dout: ArrayLike,
    x: ArrayLike,
    *,
    kernel_size: IntPair,
    stride: IntPair | None = None,
) -> tuple[np.ndarray]:
    r"""Gradient of :func:`avg_pool2d`: each window shares its gradient equally.

    .. math::

        \frac{\partial L}{\partial x_{n,c,\, s_H h + i,\, s_W w + j}}
            \mathrel{+}= \frac{1}{k_H k_W} \frac{\partial L}{\partial y_{n,c,h,w}}

    for every offset :math:`(i, j)` (overlapping windows add up).

    Parameters
    ----------
    dout : array_like, shape ``(N, C, H_out, W_out)``
        Upstream gradient.
    x : array_like, shape ``(N, C, H, W)``
        The forward's input.
    kernel_size, stride
        As in :func:`avg_pool2d`.

    Returns
    -------
    (dx,) : tuple of one ndarray, shape of ``x``
    """
    x, kernel, stride, _, size_out = _check_pool(x, kernel_size, stride, 0)
    dout = upstream(dout, (*x.shape[:2], *size_out))
    dx = np.zeros_like(x)
    for _, _, rows, cols in _kernel_offsets(kernel, stride, size_out):
        dx[:, :, rows, cols] += dout / (kernel[0] * kernel[1])
    return (dx,)


# ---------------------------------------------------------------------------
# Flatten
# ---------------------------------------------------------------------------


def _check_flatten(x: ArrayLike) -> np.ndarray:
    x = as_float64("x", x)
    require_min_ndim("x", x.shape, 2)
    return x


def flatten(x: ArrayLike) -> np.ndarray:
    r"""Flatten every axis but the batch axis (conv to fully connected).

    .. math::

        y_{n,\, \operatorname{ravel}(c, h, w, \dots)} = x_{n,c,h,w,\dots}

    in C (row-major) order, as ``torch.flatten(x, 1)``. notes 000 flattens
    NHWC; with NCHW the channel is the slowest index.

    Parameters
    ----------
    x : array_like, shape ``(N, d_1, ..., d_k)``, k >= 1

    Returns
    -------
    y : ndarray, shape ``(N, d_1 * ... * d_k)``, float64 (a new array)

    References
    ----------
    notes 000 ("Conv to FC"), notes 004 (``torch.flatten(x, 1)`` in LeNet-5).
    """
    x = _check_flatten(x)
    return x.reshape(x.shape[0], -1).copy()


def flatten_backward(dout: ArrayLike, x: ArrayLike) -> tuple[np.ndarray]:
    r"""Gradient of :func:`flatten`: the upstream gradient reshaped back.

    .. math::

        \frac{\partial L}{\partial x_{n,c,h,w,\dots}}
            = \frac{\partial L}{\partial y_{n,\, \operatorname{ravel}(c, h, w, \dots)}}

    Parameters
    ----------
    dout : array_like, shape ``(N, d_1 * ... * d_k)``
        Upstream gradient.
    x : array_like, shape ``(N, d_1, ..., d_k)``
        The forward's input.

    Returns
    -------
    (dx,) : tuple of one ndarray, shape of ``x``
    """
    x = _check_flatten(x)
    dout = upstream(dout, (x.shape[0], int(np.prod(x.shape[1:]))))
    return (dout.reshape(x.shape).copy(),)


# ---------------------------------------------------------------------------
# Softmax and log-softmax
# ---------------------------------------------------------------------------


def _check_axis(x: ArrayLike, axis: int) -> tuple[np.ndarray, int]:
    x = as_float64("x", x)
    return x, softmax_axis(x.shape, axis)


def softmax(x: ArrayLike, *, axis: int = -1) -> np.ndarray:
    r"""Softmax along ``axis``, computed stably.

    .. math::

        \operatorname{softmax}(x)_{k} = \frac{e^{x_k}}{\sum_{j} e^{x_j}}
            = \frac{e^{x_k - m}}{\sum_{j} e^{x_j - m}},
        \quad m = \max_{j} x_{j}

    Subtracting the maximum leaves the value unchanged (softmax is shift
    invariant) and keeps every exponent :math:`\le 0`, so logits of magnitude
    1e4 neither overflow nor give ``nan``.

    Parameters
    ----------
    x : array_like, at least 1-d
        The logits.
    axis : int, default -1
        The axis that sums to 1, in ``[-x.ndim, x.ndim)``.

    Returns
    -------
    y : ndarray, shape of ``x``, float64, non-negative, summing to 1 along ``axis``

    References
    ----------
    notes 002 ("Softmax classifier"), notes 004. Bridle, J. (1990).
    "Probabilistic interpretation of feedforward classification network
    outputs." Neurocomputing.
    """
    x, axis = _check_axis(x, axis)
    exponentials = np.exp(x - x.max(axis=axis, keepdims=True))
    return exponentials / exponentials.sum(axis=axis, keepdims=True)


def softmax_backward(
    dout: ArrayLike, x: ArrayLike, *, axis: int = -1
) -> tuple[np.ndarray]:
    r"""Gradient of :func:`softmax` (the Jacobian-vector product, never the Jacobian).

    With :math:`y = \operatorname{softmax}(x)` and
    :math:`\partial y_k / \partial x_i = y_k (\delta_{ki} - y_i)`:

    .. math::

        \frac{\partial L}{\partial x_{i}} = y_{i} \Big(
            \frac{\partial L}{\partial y_{i}}
            - \sum_{k} \frac{\partial L}{\partial y_{k}} y_{k} \Big)

    Parameters
    ----------
    dout : array_like, shape of ``x``
        Upstream gradient.
    x : array_like, at least 1-d
        The forward's input.
    axis : int, default -1
        As in :func:`softmax`.

    Returns
    -------
    (dx,) : tuple of one ndarray, shape of ``x``
    """
    x, axis = _check_axis(x, axis)
    dout = upstream(dout, x.shape)
    y = softmax(x, axis=axis)
    return (y * (dout - (dout * y).sum(axis=axis, keepdims=True)),)


def log_softmax(x: ArrayLike, *, axis: int = -1) -> np.ndarray:
    r"""Logarithm of :func:`softmax` along ``axis``, computed stably.

    .. math::

        \operatorname{log\_softmax}(x)_{k} = x_{k} - \log \sum_{j} e^{x_j}
            = (x_{k} - m) - \log \sum_{j} e^{x_j - m},
        \quad m = \max_{j} x_{j}

    Never takes the log of a rounded-to-zero probability: logits of magnitude
    1e4 give finite values.

    Parameters
    ----------
    x : array_like, at least 1-d
        The logits.
    axis : int, default -1
        In ``[-x.ndim, x.ndim)``.

    Returns
    -------
    y : ndarray, shape of ``x``, float64, non-positive

    References
    ----------
    notes 002 (the multi-class log-loss uses :math:`\log p_{ij}`), notes 004
    ("prefer logits, as probability output may yield numerical issues").
    """
    x, axis = _check_axis(x, axis)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def log_softmax_backward(
    dout: ArrayLike, x: ArrayLike, *, axis: int = -1
) -> tuple[np.ndarray]:
    r"""Gradient of :func:`log_softmax`.

    With :math:`\partial \log y_k / \partial x_i = \delta_{ki} - y_i`,
    :math:`y = \operatorname{softmax}(x)`:

    .. math::

        \frac{\partial L}{\partial x_{i}} = \frac{\partial L}{\partial z_{i}}
            - y_{i} \sum_{k} \frac{\partial L}{\partial z_{k}}

    where :math:`z = \operatorname{log\_softmax}(x)`.

    Parameters
    ----------
    dout : array_like, shape of ``x``
        Upstream gradient.
    x : array_like, at least 1-d
        The forward's input.
    axis : int, default -1
        As in :func:`log_softmax`.

    Returns
    -------
    (dx,) : tuple of one ndarray, shape of ``x``
    """
    x, axis = _check_axis(x, axis)
    dout = upstream(dout, x.shape)
    y = softmax(x, axis=axis)
    return (dout - y * dout.sum(axis=axis, keepdims=True),)


# ---------------------------------------------------------------------------
# Maxout
# ---------------------------------------------------------------------------


def _check_maxout(
    x: ArrayLike, w: ArrayLike, b: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = as_float64("x", x, ndim=2)
    w = as_float64("w", w, ndim=3)
    b = as_float64("b", b, ndim=2)
    maxout_shapes(x.shape, w.shape, b.shape)
    return x, w, b


def _maxout_pieces(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The k affine pieces ``x @ w[k].T + b[k]``, shape ``(k, N, D_out)``."""
    return np.einsum("ni,koi->kno", x, w) + b[:, None, :]


def maxout(x: ArrayLike, w: ArrayLike, b: ArrayLike) -> np.ndarray:
    r"""Maxout layer: the maximum of k affine pieces.

    .. math::

        z^{(k)} = x W^{(k)\top} + b^{(k)}

        y_{n,o} = \max_{k} z^{(k)}_{n,o}

    Parameters
    ----------
    x : array_like, shape ``(N, D_in)``
        The inputs, one per row.
    w : array_like, shape ``(k, D_out, D_in)``
        One :func:`linear` weight per piece, k >= 1.
    b : array_like, shape ``(k, D_out)``
        One bias per piece.

    Returns
    -------
    y : ndarray, shape ``(N, D_out)``, float64

    References
    ----------
    notes 003 (":math:`f(x) = \max(w_1^T x + b_1, w_2^T x + b_2)`",
    generalises ReLU and leaky ReLU). Goodfellow, I., Warde-Farley, D.,
    Mirza, M., Courville, A. and Bengio, Y. (2013). "Maxout networks." ICML.
    """
    x, w, b = _check_maxout(x, w, b)
    return _maxout_pieces(x, w, b).max(axis=0)


def maxout_backward(
    dout: ArrayLike, x: ArrayLike, w: ArrayLike, b: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Gradient of :func:`maxout`: the gradient flows through the winning piece.

    With :math:`k^{*}_{n,o}` the first (lowest k) maximal piece:

    .. math::

        \frac{\partial L}{\partial z^{(k)}_{n,o}}
            = \frac{\partial L}{\partial y_{n,o}} \, \mathbb{1}[k = k^{*}_{n,o}]

        \frac{\partial L}{\partial x} = \sum_{k}
            \frac{\partial L}{\partial z^{(k)}} W^{(k)}

        \frac{\partial L}{\partial W^{(k)}}
            = \Big(\frac{\partial L}{\partial z^{(k)}}\Big)^{\top} x

        \frac{\partial L}{\partial b^{(k)}_{o}}
            = \sum_{n} \frac{\partial L}{\partial z^{(k)}_{n,o}}

    Convention: ties go to the first maximal piece.

    Parameters
    ----------
    dout : array_like, shape ``(N, D_out)``
        Upstream gradient.
    x, w, b : array_like
        The forward's inputs (shapes as in :func:`maxout`).

    Returns
    -------
    (dx, dw, db) : tuple of ndarrays, shapes of ``x``, ``w``, ``b``
    """
    x, w, b = _check_maxout(x, w, b)
    dout = upstream(dout, (x.shape[0], w.shape[1]))
    pieces = _maxout_pieces(x, w, b)
    winner = pieces.argmax(axis=0)
    dpieces = dout * (np.arange(w.shape[0])[:, None, None] == winner)
    dx = np.einsum("kno,koi->ni", dpieces, w)
    dw = np.einsum("kno,ni->koi", dpieces, x)
    db = dpieces.sum(axis=1)
    return dx, dw, db


# ---------------------------------------------------------------------------
# Upsampling
# ---------------------------------------------------------------------------


def _check_upsample2d(x: ArrayLike, scale_factor: int, mode: str) -> np.ndarray:
    x = as_float64("x", x, ndim=4)
    upsample2d_geometry(x.shape, scale_factor, mode)
    return x


def _interpolation_matrix(size: int, scale_factor: int, mode: str) -> np.ndarray:
    r"""The ``(size * scale_factor, size)`` matrix :math:`A` of 1-d upsampling.

    Output cell :math:`o` reads the input at

    * ``nearest``: :math:`\lfloor o / s \rfloor`, weight 1;
    * ``bilinear``: the half-pixel source coordinate
      :math:`u = \max((o + \tfrac12) / s - \tfrac12,\ 0)`, split between
      :math:`\lfloor u \rfloor` (weight :math:`1 - (u - \lfloor u \rfloor)`) and
      :math:`\min(\lfloor u \rfloor + 1, \text{size} - 1)`
      (weight :math:`u - \lfloor u \rfloor`).
    """
    out = np.arange(size * scale_factor)
    matrix = np.zeros((size * scale_factor, size))
    if mode == "nearest":
        matrix[out, out // scale_factor] = 1.0
        return matrix
    source = np.maximum((out + 0.5) / scale_factor - 0.5, 0.0)
    low = np.floor(source).astype(np.intp)
    high = np.minimum(low + 1, size - 1)
    weight_high = source - low
    np.add.at(matrix, (out, low), 1.0 - weight_high)
    np.add.at(matrix, (out, high), weight_high)
    return matrix


def upsample2d(x: ArrayLike, *, scale_factor: int, mode: str) -> np.ndarray:
    r"""2-d upsampling by an integer factor, nearest or bilinear, NCHW.

    Both modes are separable and linear: with the 1-d interpolation matrices
    :math:`A^{H}` (shape :math:`(sH, H)`) and :math:`A^{W}` (shape :math:`(sW, W)`),

    .. math::

        y_{n,c} = A^{H} \, x_{n,c} \, A^{W\top}

        \text{nearest:} \quad A_{o,h} = \mathbb{1}[h = \lfloor o / s \rfloor]

        \text{bilinear:} \quad u_{o} = \max\big((o + \tfrac12) / s - \tfrac12,\ 0\big),
        \quad \lambda_{o} = u_{o} - \lfloor u_{o} \rfloor

        A_{o,\lfloor u_o \rfloor} \mathrel{+}= 1 - \lambda_{o},
        \quad A_{o,\min(\lfloor u_o \rfloor + 1,\, H - 1)} \mathrel{+}= \lambda_{o}

    Convention (torch's ``interpolate``): bilinear uses half-pixel centres
    (``align_corners=False``) and clamps the source coordinate at 0, so the
    border rows and columns repeat the edge values.

    Parameters
    ----------
    x : array_like, shape ``(N, C, H, W)``
        The input images.
    scale_factor : int
        Upsampling factor s >= 1, the same for both axes.
    mode : {"nearest", "bilinear"}

    Returns
    -------
    y : ndarray, shape ``(N, C, s H, s W)``, float64

    References
    ----------
    notes 004 ("Linear upsampling/downsampling" among the components).
    PyTorch documentation, ``torch.nn.functional.interpolate``.
    """
    x = _check_upsample2d(x, scale_factor, mode)
    rows = _interpolation_matrix(x.shape[2], scale_factor, mode)
    cols = _interpolation_matrix(x.shape[3], scale_factor, mode)
    return np.einsum("oh,nchw,pw->ncop", rows, x, cols)


def upsample2d_backward(
    dout: ArrayLike, x: ArrayLike, *, scale_factor: int, mode: str
) -> tuple[np.ndarray]:
    r"""Gradient of :func:`upsample2d`: the transposed interpolation.

    .. math::

        \frac{\partial L}{\partial x_{n,c}} = A^{H\top}
            \, \frac{\partial L}{\partial y_{n,c}} \, A^{W}

    (for ``nearest``: the sum of each :math:`s \times s` block of ``dout``).

    Parameters
    ----------
    dout : array_like, shape ``(N, C, s H, s W)``
        Upstream gradient.
    x : array_like, shape ``(N, C, H, W)``
        The forward's input.
    scale_factor, mode
        As in :func:`upsample2d`.

    Returns
    -------
    (dx,) : tuple of one ndarray, shape of ``x``
    """
    x = _check_upsample2d(x, scale_factor, mode)
    n, c, height, width = x.shape
    dout = upstream(dout, (n, c, height * scale_factor, width * scale_factor))
    rows = _interpolation_matrix(height, scale_factor, mode)
    cols = _interpolation_matrix(width, scale_factor, mode)
    return (np.einsum("oh,ncop,pw->nchw", rows, dout, cols),)
