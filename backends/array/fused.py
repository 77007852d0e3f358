"""Compiled kernels for the NumPy backend, used when numba is installed.

The plain NumPy path needs NumPy alone; each kernel here computes what a
part of it computes, in fewer passes over memory:

* the optimizer updates (:mod:`backends.array.blocked`: a handful of ``out=``
  ufunc passes per cache-sized block, Adam twelve): one pass doing each
  element's whole step, through the very operations of the ufunc kernel,
  in the same order and dtype (the hyperparameters rounded to it as NumPy
  rounds a Python float meeting an array), without fused multiply-adds
  (``fastmath=False``): the plain path's results bit for bit;
* im2col's copies (:mod:`backends.array.conv`): the windows gathered
  into columns and their gradients added back (col2im) in one loop each,
  with no padded buffer for col2im;
* a direct conv at stride 1 (:func:`direct_conv`) that im2col's forward
  uses for few output channels, where copying the columns costs more than
  the GEMM saves: blocks of output pixels and channels summed in vector
  registers over every tap.

Every kernel releases the GIL (``nogil=True``) and runs on the backend's
own threads, over the blocks or channel ranges the plain path splits its
work into; each is compiled on first use and cached on disk
(``cache=True``). :func:`available` says whether numba is installed; the
environment variable ``NNSPEC_NUMPY_ACCEL=0`` (or a backend's
``accelerator = None``) keeps the plain path. The suite checks both paths.
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "ACCEL_VARIABLE",
    "DTYPES",
    "add_windows",
    "available",
    "default_accelerator",
    "direct_conv",
    "direct_weights",
    "gather_windows",
    "optimizer_kernel",
    "same_float_dtype",
]

#: ``NNSPEC_NUMPY_ACCEL=0`` keeps the NumPy backend on its plain path.
ACCEL_VARIABLE = "NNSPEC_NUMPY_ACCEL"

_numba_state: dict[str, Any] = {}


def _numba() -> Any:
    """The numba module, imported on first use (a quarter second), or None."""
    if "module" not in _numba_state:
        try:
            import numba
        except ImportError:  # the plain path needs NumPy alone
            numba = None
        _numba_state["module"] = numba
    return _numba_state["module"]


def available() -> bool:
    """Whether numba is installed (found without importing it)."""
    return importlib.util.find_spec("numba") is not None


#: The dtypes the kernels are compiled for: every array of a call in one of them.
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def same_float_dtype(*arrays: Any) -> bool:
    """Whether the arrays share one dtype of :data:`DTYPES` (what the kernels take)."""
    dtypes = {a.dtype for a in arrays}
    return len(dtypes) == 1 and dtypes.pop() in DTYPES


def default_accelerator() -> str | None:
    """``"numba"`` when numba is installed and ``NNSPEC_NUMPY_ACCEL`` is not ``0``."""
    if os.environ.get(ACCEL_VARIABLE, "").strip().lower() in ("0", "false", "no"):
        return None
    return "numba" if available() else None


def _jit(function: Callable) -> Callable:
    return _numba().njit(nogil=True, cache=True, fastmath=False, error_model="numpy")(
        function
    )


# ---------------------------------------------------------------------------
# Optimizer updates: the ufunc kernels of backends.array.blocked, one element at a
# time. ``p``, ``g`` and the state are equally long 1-d arrays; every scalar
# comes in the arrays' dtype.
# ---------------------------------------------------------------------------


def _sgd(p, g, buf, lr, momentum, nesterov, weight_decay, use_momentum, use_decay):
    for i in range(p.shape[0]):
        d = g[i]
        if use_decay:
            d = p[i] * weight_decay + d
        if use_momentum:
            b = buf[i] * momentum + d
            buf[i] = b
            if nesterov:
                step = (d + b * momentum) * lr
            else:
                step = b * lr
        else:
            step = d * lr
        p[i] = p[i] - step


def _adagrad(p, g, total, lr, eps):
    for i in range(p.shape[0]):
        gi = g[i]
        s = total[i] + gi * gi
        total[i] = s
        p[i] = p[i] - gi / (np.sqrt(s) + eps) * lr


def _rmsprop(p, g, square_avg, lr, alpha, one_minus_alpha, eps):
    for i in range(p.shape[0]):
        gi = g[i]
        v = square_avg[i] * alpha + gi * gi * one_minus_alpha
        square_avg[i] = v
        p[i] = p[i] - gi / (np.sqrt(v) + eps) * lr


def _adadelta(p, g, square_avg, acc_delta, lr, rho, one_minus_rho, eps, use_lr):
    for i in range(p.shape[0]):
        gi = g[i]
        v = square_avg[i] * rho + gi * gi * one_minus_rho
        square_avg[i] = v
        std = np.sqrt(v + eps)
        delta = np.sqrt(acc_delta[i] + eps) / std * gi
        acc_delta[i] = acc_delta[i] * rho + delta * delta * one_minus_rho
        if use_lr:
            delta = delta * lr
        p[i] = p[i] - delta


def _adam(p, g, exp_avg, exp_avg_sq, one_minus_beta1, beta1, root, beta2, scale,
          shift, wd, use_decay, decay, use_decoupled):  # fmt: skip
    for i in range(p.shape[0]):
        pi = p[i]
        if use_decoupled:
            pi = pi * decay
        gi = g[i]
        if use_decay:
            gi = pi * wd + gi
        m = exp_avg[i] * beta1 + gi * one_minus_beta1
        exp_avg[i] = m
        r = gi * root
        v = exp_avg_sq[i] * beta2 + r * r
        exp_avg_sq[i] = v
        p[i] = pi - m / (np.sqrt(v) * scale + shift)


def _sgd_args(dtype, lr, momentum, nesterov, weight_decay) -> tuple:
    f = dtype.type
    return (f(lr), f(momentum), bool(nesterov), f(weight_decay),
            bool(momentum), bool(weight_decay))  # fmt: skip


def _adagrad_args(dtype, lr, eps) -> tuple:
    return (dtype.type(lr), dtype.type(eps))


def _rmsprop_args(dtype, lr, alpha, eps) -> tuple:
    f = dtype.type
    return (f(lr), f(alpha), f(1 - alpha), f(eps))


def _adadelta_args(dtype, lr, rho, eps) -> tuple:
    f = dtype.type
    return (f(lr), f(rho), f(1 - rho), f(eps), lr != 1.0)


def _adam_args(dtype, step_size, beta1, beta2, eps, bc2_sqrt, wd, decay) -> tuple:
    # The scalars of blocked.adam, computed as there, then rounded to dtype.
    f = dtype.type
    return (
        f(1 - beta1),
        f(beta1),
        f(math.sqrt(1 - beta2)),
        f(beta2),
        f(1.0 / (bc2_sqrt * step_size)),
        f(eps / step_size),
        f(wd),
        bool(wd),
        f(decay),
        decay != 1.0,
    )


_OPTIMIZERS: dict[str, tuple[Callable, Callable]] = {
    "sgd": (_sgd, _sgd_args),
    "adagrad": (_adagrad, _adagrad_args),
    "rmsprop": (_rmsprop, _rmsprop_args),
    "adadelta": (_adadelta, _adadelta_args),
    "adam": (_adam, _adam_args),
}
_compiled: dict[Any, Callable] = {}


def _compiled_kernel(key: Any, function: Callable) -> Callable:
    if _numba() is None:
        raise RuntimeError(
            f"numba is installed but does not import; set {ACCEL_VARIABLE}=0 "
            "for the plain NumPy path"
        )
    kernel = _compiled.get(key)
    if kernel is None:
        kernel = _compiled[key] = _jit(function)
    return kernel


def optimizer_kernel(
    name: str, dtype: Any, args: tuple
) -> tuple[Callable, tuple] | None:
    """The compiled update for optimizer ``name`` and its scalar arguments.

    ``args`` are the hyperparameters the ufunc kernel of :mod:`backends.array.blocked`
    takes; the returned kernel takes ``(param, grad, *state, *scalars)``.
    None when numba does not import (the caller keeps the plain path).
    """
    if _numba() is None:
        return None
    function, convert = _OPTIMIZERS[name]
    return _compiled_kernel(name, function), convert(np.dtype(dtype), *args)


# ---------------------------------------------------------------------------
# Direct convolution at stride 1, for layers with few output channels
# ---------------------------------------------------------------------------

#: Output channels per vector of the direct conv (one AVX2 register of float32),
#: and output pixels per register block: ``pixels`` accumulator vectors stay
#: in registers over all ``C kH kW`` taps. ``DIRECT_PIXELS`` is the block
#: where no other divides the output row (:func:`direct_shape`).
DIRECT_LANES = 8
DIRECT_PIXELS = 5
#: Lanes for layers of more than :data:`DIRECT_LANES` output channels where
#: the CPU has AVX-512: one vector of 16 loads each input value once for all
#: 16 channels, where two tiles of 8 load it twice.
DIRECT_WIDE_LANES = 16
#: Blocks of pixels tried, largest first: the first that divides the output
#: row leaves no pixel to the slow one-pixel loop. Measured at one thread on
#: LeNet (64 images): C3 (16 channels, 10-pixel rows) 0.23 ms in 16 lanes by
#: 10 pixels against 0.43 ms in 8 by 5; C1 (6 channels, 28-pixel rows) 0.30 ms
#: in 8 by 7 against 0.39 ms in 8 by 5.
DIRECT_BLOCKS = (10, 7, DIRECT_PIXELS)


def direct_shape(out_channels: int, out_width: int) -> tuple[int, int]:
    """``(lanes, pixels)`` of the direct conv's register block for a layer.

    16 lanes only on AVX-512 (32 vector registers: 10 pixels of 16 float32
    lanes are 10 of them; on AVX2 they would be 20 of 16 and spill).
    """
    lanes = DIRECT_LANES
    if out_channels > DIRECT_LANES and _has_avx512():
        lanes = DIRECT_WIDE_LANES
    fits = [p for p in DIRECT_BLOCKS if out_width % p == 0]
    return lanes, fits[0] if fits else DIRECT_PIXELS


def _has_avx512() -> bool:
    if "avx512" not in _numba_state:
        try:
            import llvmlite.binding as llvm

            features = llvm.get_host_cpu_features()
            _numba_state["avx512"] = bool(features.get("avx512f"))
        except Exception:  # no llvmlite, or no feature map: the narrow lanes
            _numba_state["avx512"] = False
    return _numba_state["avx512"]


def _stack_buffer(size: int) -> Callable:
    """An intrinsic: ``size`` elements of ``like``'s dtype on the stack.

    A fixed-size stack buffer read and written at constant offsets only is
    promoted to registers by LLVM (numba's arrays live on the heap, where it
    cannot be): the accumulators of :func:`_direct`.
    """
    numba = _numba()
    from numba.core import cgutils

    @numba.extending.intrinsic
    def stack_buffer(typingctx, like):
        def codegen(context, builder, signature, args):
            element = context.get_value_type(like.dtype)
            return cgutils.alloca_once(builder, element, size=size)

        return numba.types.CPointer(like.dtype)(like), codegen

    return stack_buffer


def _vector_fmuladd(width: int) -> Callable:
    """An intrinsic: ``acc[o:o+width] += value * weights[s:s+width]``, one vector op.

    numba leaves LLVM's straight-line (SLP) vectorizer off, so a loop of
    ``width`` scalar updates stays scalar; this emits the vector load,
    broadcast and ``llvm.fmuladd`` (fused where the CPU has FMA) itself.
    """
    numba = _numba()
    from llvmlite import ir
    from numba.core import cgutils

    @numba.extending.intrinsic
    def fmuladd_row(typingctx, acc, offset, weights, start, value):
        def codegen(context, builder, signature, args):
            acc_pointer, acc_offset, array, weights_start, scalar = args
            element = context.get_value_type(weights.dtype)
            vector = ir.VectorType(element, width)
            align = weights.dtype.bitwidth // 8
            data = context.make_array(weights)(context, builder, array).data
            w_pointer = builder.gep(data, [weights_start])
            w_vector = builder.load(
                builder.bitcast(w_pointer, vector.as_pointer()), align=align
            )
            a_pointer = builder.bitcast(
                builder.gep(acc_pointer, [acc_offset]), vector.as_pointer()
            )
            a_vector = builder.load(a_pointer, align=align)
            lane0 = ir.Constant(ir.IntType(32), 0)
            splat = builder.insert_element(ir.Constant(vector, None), scalar, lane0)
            splat = builder.shuffle_vector(
                splat,
                ir.Constant(vector, None),
                ir.Constant(ir.VectorType(ir.IntType(32), width), None),
            )
            name = f"llvm.fmuladd.v{width}f{weights.dtype.bitwidth}"
            fmuladd = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(vector, [vector] * 3), name
            )
            total = builder.call(fmuladd, [splat, w_vector, a_vector])
            builder.store(total, a_pointer, align=align)
            return context.get_dummy_value()

        signature = numba.types.void(acc, offset, weights, start, value)
        return signature, codegen

    return fmuladd_row


def _direct_kernel(lanes: int, pixels: int) -> Callable:
    """The direct conv of ``lanes`` by ``pixels`` (see :func:`direct_conv`)."""
    block_buffer = _stack_buffer(lanes * pixels)
    pixel_buffer = _stack_buffer(lanes)
    fmuladd_row = _vector_fmuladd(lanes)

    def direct(x, w_tiles, b, y, n0, n1):
        tiles, c_in, kh, kw, _ = w_tiles.shape
        k_out, ho, wo = y.shape[1], y.shape[2], y.shape[3]
        hp, wp = x.shape[2], x.shape[3]
        xf = x.ravel()
        wf = w_tiles.ravel()
        acc = block_buffer(w_tiles)  # (pixels, lanes), constant offsets only
        one = pixel_buffer(w_tiles)
        for n in range(n0, n1):
            for tile in range(tiles):
                k0 = tile * lanes
                for r in range(ho):
                    # Blocks of pixels in registers, then the row's last pixels.
                    for s0 in range(0, wo - pixels + 1, pixels):
                        for q in range(pixels):
                            for k in range(lanes):
                                acc[q * lanes + k] = b[k0 + k]
                        for c in range(c_in):
                            for i in range(kh):
                                row = ((n * c_in + c) * hp + r + i) * wp + s0
                                taps = ((tile * c_in + c) * kh + i) * kw
                                for j in range(kw):
                                    tap = (taps + j) * lanes
                                    for q in range(pixels):
                                        v = xf[np.uintp(row + q + j)]
                                        fmuladd_row(acc, q * lanes, wf, tap, v)
                        for q in range(pixels):
                            for k in range(lanes):  # constant offsets into acc
                                if k0 + k < k_out:
                                    y[n, k0 + k, r, s0 + q] = acc[q * lanes + k]
                    for s in range(wo - wo % pixels, wo):
                        for k in range(lanes):
                            one[k] = b[k0 + k]
                        for c in range(c_in):
                            for i in range(kh):
                                row = ((n * c_in + c) * hp + r + i) * wp + s
                                taps = ((tile * c_in + c) * kh + i) * kw
                                for j in range(kw):
                                    tap = (taps + j) * lanes
                                    fmuladd_row(one, 0, wf, tap, xf[np.uintp(row + j)])
                        for k in range(lanes):
                            if k0 + k < k_out:
                                y[n, k0 + k, r, s] = one[k]

    return direct


def direct_weights(
    w: np.ndarray, b: np.ndarray, lanes: int = DIRECT_LANES
) -> tuple[np.ndarray, np.ndarray]:
    """``w`` (K, C, kH, kW) and ``b`` as :func:`direct_conv` takes them.

    The output channels cut into tiles of ``lanes`` (the last one padded with
    zeros), innermost: ``(tiles, C, kH, kW, lanes)``.
    """
    k_out = w.shape[0]
    tiles = -(-k_out // lanes)
    padded = np.zeros((tiles * lanes, *w.shape[1:]), dtype=w.dtype)
    padded[:k_out] = w
    w_tiles = padded.reshape(tiles, lanes, *w.shape[1:]).transpose(0, 2, 3, 4, 1)
    bias = np.zeros(tiles * lanes, dtype=b.dtype)
    bias[:k_out] = b
    return np.ascontiguousarray(w_tiles), bias


def direct_conv(
    x_padded: np.ndarray,
    w_tiles: np.ndarray,
    b: np.ndarray,
    y: np.ndarray,
    images: slice,
    pixels: int = DIRECT_PIXELS,
) -> None:
    """``y[images] =`` conv2d of the padded input ``x_padded`` at stride 1, + ``b``.

    ``w_tiles`` and ``b`` come from :func:`direct_weights`; ``x_padded`` must
    be C-contiguous. For each output row, blocks of ``pixels`` pixels times
    ``lanes`` output channels (the last axis of ``w_tiles``) are summed in
    registers over every tap ``(c, i, j)`` (one vector multiply-add per
    pixel and tap, the weights of a tap a contiguous vector), then stored;
    :func:`direct_shape` chooses both.
    """
    lanes = w_tiles.shape[-1]
    key = ("direct", lanes, pixels)
    kernel = _compiled.get(key)
    if kernel is None:
        kernel = _compiled_kernel(key, _direct_kernel(lanes, pixels))
    kernel(x_padded, w_tiles, b, y, images.start, images.stop)


# ---------------------------------------------------------------------------
# im2col: the windows copied to columns, their gradients added back
# ---------------------------------------------------------------------------


def _gather_windows(x, stride_h, stride_w, columns, c0, c1):
    """``columns[c, i, j, n, r, s] = x[n, c, r sh + i, s sw + j]`` for ``c0:c1``."""
    _, kh, kw, n_images, ho, wo = columns.shape
    for c in range(c0, c1):
        for i in range(kh):
            for j in range(kw):
                for n in range(n_images):
                    for r in range(ho):
                        target = columns[c, i, j, n, r]
                        source = x[n, c, r * stride_h + i]
                        for s in range(wo):
                            target[np.uintp(s)] = source[np.uintp(s * stride_w + j)]


def _add_windows(dcolumns, ph, pw, stride_h, stride_w, dx, c0, c1):
    """``dx[:, c] = sum`` of the window gradients over the taps, for ``c0:c1``.

    Taps in order ``(i, j)``, each added where it meets the input (padding
    dropped), onto zeros: the sums of the plain col2im, in its order.
    """
    _, kh, kw, n_images, ho, wo = dcolumns.shape
    h, width = dx.shape[2], dx.shape[3]
    for c in range(c0, c1):
        for n in range(n_images):
            for r in range(h):
                for s in range(width):
                    dx[n, c, r, s] = 0
        for i in range(kh):
            for j in range(kw):
                # Outputs whose tap (i, j) lands inside: s_lo <= s < s_hi.
                s_lo = max(0, (pw - j + stride_w - 1) // stride_w)
                s_hi = min(wo, (width - 1 + pw - j) // stride_w + 1)
                for n in range(n_images):
                    for r in range(ho):
                        row = r * stride_h + i - ph
                        if row < 0 or row >= h:
                            continue
                        source = dcolumns[c, i, j, n, r]
                        target = dx[n, c, row]
                        for s in range(s_lo, s_hi):
                            target[np.uintp(s * stride_w + j - pw)] += source[
                                np.uintp(s)
                            ]


def gather_windows(
    x_padded: np.ndarray, stride: tuple[int, int], columns: np.ndarray, part: slice
) -> None:
    """Fill im2col ``columns`` (C, kH, kW, N, H_out, W_out) for channels ``part``."""
    kernel = _compiled_kernel("gather_windows", _gather_windows)
    kernel(x_padded, *stride, columns, part.start, part.stop)


def add_windows(
    dcolumns: np.ndarray,
    padding: tuple[int, int],
    stride: tuple[int, int],
    dx: np.ndarray,
    part: slice,
) -> None:
    """``dx[:, part] =`` col2im of ``dcolumns`` (C, kH, kW, N, H_out, W_out)."""
    kernel = _compiled_kernel("add_windows", _add_windows)
    kernel(dcolumns, *padding, *stride, dx, part.start, part.stop)
