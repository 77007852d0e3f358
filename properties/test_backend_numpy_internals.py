"""Internals of the NumPy backend that the generic, catalog-driven suite cannot see.

The generic properties compare what an operation returns with the reference.
These tests look behind the interface of :mod:`backends.array`:

* every registered conv algorithm agrees with every other, forward and
  backward, and the per-shape dispatch picks what it promises;
* conv reads its input through strides, so non-contiguous inputs must give
  the contiguous answer;
* max pooling routes each window's gradient to its *first* maximum (the
  generic suite accepts any maximum);
* the optimizer steps update ``param`` and the state arrays in place, return
  those same objects, and allocate no full-size temporary;
* the compiled kernels of :mod:`backends.array.fused` (where numba is installed)
  give the plain NumPy path's results: the optimizer steps bit for bit;
* the CuPy backend imports without CuPy and says why it is unavailable.
"""

from __future__ import annotations

import dataclasses
import importlib
import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from backends import contract
from backends.array import (
    CONV_ALGORITHMS,
    ConvAlgorithm,
    ConvGeometry,
    blocked,
    fused,
    winograd,
    workspace,
)
from backends.array import conv as array_conv
from backends.numpy_backend import NumpyBackend
from properties import tolerance as tol
from reference import layers as reference_layers

DTYPES = ("float32", "float64")
NEEDS_NUMBA = pytest.mark.skipif(
    not fused.available(), reason="numba is not installed: no compiled kernels to check"
)


def _mismatch(got: np.ndarray, want: np.ndarray) -> str:
    got64, want64 = got.astype(np.float64), want.astype(np.float64)
    error = np.abs(got64 - want64)
    relative = error / np.maximum(np.abs(want64), np.finfo(np.float64).tiny)
    return f"max abs error {error.max():.3g}, max rel error {relative.max():.3g}"


def _assert_close(got: np.ndarray, want: np.ndarray, dtype: str, what: str) -> None:
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert got.dtype == np.dtype(dtype), f"{what}: dtype {got.dtype} != {dtype}"
    rtol, atol = tol.REORDERED_SUMS[dtype]
    scale = atol * max(1.0, float(np.abs(want).max(initial=0.0)))
    assert np.allclose(got, want, rtol=rtol, atol=scale), (
        f"{what}: {_mismatch(got, want)}"
    )


# ---------------------------------------------------------------------------
# Convolution algorithms
# ---------------------------------------------------------------------------
#
# Every registered algorithm is held to the reference (float64, on the very
# values the backend received: the dtype-rounded inputs), with a bound on
# the rounding error of what it computes rather than a fixed tolerance:
#
# * GEMM algorithms (im2col, offsets): every output is a sum of n products,
#   whatever the order ``|error| <= (n + 2) u S`` (Higham eq. 3.5; +2 for the
#   rounding of the products and of the bias), with ``S`` the sum of the
#   |terms|: the reference run on absolute values. n is C_in kH kW + 1 for y,
#   C_out kH kW for dx, N H_out W_out for dw and db.
# * Winograd: ``|error| <= f u E`` with ``E`` the algorithm run on absolute
#   values (its transform magnitudes) and ``f`` the summed dot lengths
#   (backends.array.winograd.error_factors; 84 + C_in for the forward of
#   F(4x4, 3x3)). ``E`` is at most 114 ``S`` for F(4x4, 3x3) and 4 ``S`` for
#   F(2x2, 3x3) (``WinogradTiling.amplification``, over the tile window).
#
# Both bounds are first order; the suite's ROUNDING_FACTOR = 2
# (properties.tolerance) covers the second-order terms with a wide margin. A
# wrong term errs by the size of a term, about S / n, far above either bound
# (test_the_winograd_bound_catches_a_wrong_matrix).

GEMM_ALGORITHMS = ("im2col", "offsets")


@st.composite
def conv_cases(draw: st.DrawFn) -> dict:
    """A conv2d geometry (with stride and padding), its arrays and a chunking."""
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    height = draw(st.integers(max(1, kernel[0] - 2 * padding[0]), 11))
    width = draw(st.integers(max(1, kernel[1] - 2 * padding[1]), 11))
    batch, c_in = (draw(st.integers(1, 4)) for _ in range(2))
    # Past fused.DIRECT_LANES: the direct conv's second, zero-padded tile.
    c_out = draw(st.integers(1, 11))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    out_h = (height + 2 * padding[0] - kernel[0]) // stride[0] + 1
    out_w = (width + 2 * padding[1] - kernel[1]) // stride[1] + 1
    return {
        "x": rng.standard_normal((batch, c_in, height, width)),
        "w": rng.standard_normal((c_out, c_in, *kernel)),
        "b": rng.standard_normal(c_out),
        "dout": rng.standard_normal((batch, c_out, out_h, out_w)),
        "stride": stride,
        "padding": padding,
        # None: the whole batch at once; 1: one image per chunk.
        "chunk_bytes": draw(st.sampled_from([None, 1])),
        # Threads for the copies, each split however small.
        "threads": draw(st.sampled_from([1, 3])),
    }


@st.composite
def winograd_cases(draw: st.DrawFn) -> dict:
    """conv_cases restricted to what Winograd computes: 3x3 kernels, stride 1."""
    padding = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    height = draw(st.integers(max(1, 3 - 2 * padding[0]), 13))
    width = draw(st.integers(max(1, 3 - 2 * padding[1]), 13))
    batch, c_in = (draw(st.integers(1, 4)) for _ in range(2))
    # Past fused.DIRECT_LANES: the direct conv's second, zero-padded tile.
    c_out = draw(st.integers(1, 11))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    out_h, out_w = height + 2 * padding[0] - 2, width + 2 * padding[1] - 2
    scale = draw(st.sampled_from([1e-3, 1.0, 1e3]))
    return {
        "x": scale * rng.standard_normal((batch, c_in, height, width)),
        "w": rng.standard_normal((c_out, c_in, 3, 3)),
        "b": rng.standard_normal(c_out),
        "dout": rng.standard_normal((batch, c_out, out_h, out_w)),
        "stride": (1, 1),
        "padding": padding,
        "chunk_bytes": draw(st.sampled_from([None, 1])),
        "threads": draw(st.sampled_from([1, 3])),
    }


def _describe(case: dict, dtype: str, name: str) -> str:
    return (
        f"conv2d algorithm {name!r}, backend numpy, dtype {dtype}, "
        f"x {case['x'].shape}, w {case['w'].shape}, stride {case['stride']}, "
        f"padding {case['padding']}, chunk_bytes {case['chunk_bytes']}, "
        f"threads {case['threads']}"
    )


def _run_conv(
    name: str, case: dict, dtype: str, accelerator: str | None = "as installed"
) -> tuple[np.ndarray, ...]:
    """``(y, dx, dw, db)`` of algorithm ``name`` on the case cast to ``dtype``."""
    backend = NumpyBackend()
    if accelerator != "as installed":
        backend.accelerator = accelerator
    backend.conv_algorithm = name
    backend.conv_chunk_bytes = case["chunk_bytes"]
    backend.conv_chunk_min_columns = 1
    backend.threads = case["threads"]
    backend.parallel_min_elements = 0
    x, w, b, dout = (case[key].astype(dtype) for key in ("x", "w", "b", "dout"))
    hyper = {"stride": case["stride"], "padding": case["padding"]}
    y = backend.conv2d(x, w, b, **hyper)
    return (y, *backend.conv2d_backward(dout, x, w, b, **hyper))


def _reference(case: dict, dtype: str) -> tuple[tuple[np.ndarray, ...], tuple]:
    """The reference on the dtype-rounded inputs, and on their absolute values."""
    arrays = [
        case[key].astype(dtype).astype(np.float64) for key in "x w b dout".split()
    ]
    x, w, b, dout = arrays
    hyper = {"stride": case["stride"], "padding": case["padding"]}
    want = (
        reference_layers.conv2d(x, w, b, **hyper),
        *reference_layers.conv2d_backward(dout, x, w, b, **hyper),
    )
    ax, aw, ab, ad = (np.abs(a) for a in arrays)
    sums = (
        reference_layers.conv2d(ax, aw, ab, **hyper),
        *reference_layers.conv2d_backward(ad, ax, aw, ab, **hyper),
    )
    return want, sums


def _assert_within(
    got: np.ndarray, want: np.ndarray, bound: np.ndarray, dtype: str, what: str
) -> None:
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert got.dtype == np.dtype(dtype), f"{what}: dtype {got.dtype} != {dtype}"
    error = np.abs(got.astype(np.float64) - want)
    allowed = tol.ROUNDING_FACTOR * bound + np.finfo(np.float64).tiny
    worst = np.unravel_index(np.argmax(error / allowed), error.shape)
    assert np.all(error <= allowed), (
        f"{what}: error {error[worst]:.3g} > allowed {allowed[worst]:.3g} at "
        f"{tuple(int(i) for i in worst)} (got {float(got[worst])!r}, reference "
        f"{float(want[worst])!r}); {_mismatch(got, want)}"
    )


@pytest.mark.parametrize(
    "accelerator", [None, pytest.param("numba", marks=NEEDS_NUMBA)]
)
@pytest.mark.parametrize("float_dtype", DTYPES)
@pytest.mark.parametrize("name", GEMM_ALGORITHMS)
@given(case=conv_cases())
def test_gemm_conv_algorithms_agree_with_the_reference(
    name: str, float_dtype: str, accelerator: str | None, case: dict
) -> None:
    """y, dx, dw, db within the summation bound ``(n + 2) u sum|terms|``.

    With numba (``accelerator``), im2col's stride-1 forward with few output
    channels sums the same products in a compiled loop instead.
    """
    _assert_within_summation_bound(name, float_dtype, case, accelerator)


def _assert_within_summation_bound(
    name: str, dtype: str, case: dict, accelerator: str | None
) -> None:
    got = _run_conv(name, case, dtype, accelerator)
    want, sums = _reference(case, dtype)
    n, c_in, _, _ = case["x"].shape
    c_out, _, kh, kw = case["w"].shape
    out_pixels = case["dout"].shape[2] * case["dout"].shape[3]
    lengths = (c_in * kh * kw + 1, c_out * kh * kw, n * out_pixels, n * out_pixels)
    u = tol.UNIT_ROUNDOFF[dtype]
    labels = ("y", "dx", "dw", "db")
    for label, g, wnt, s, length in zip(labels, got, want, sums, lengths, strict=True):
        bound = (length + 2) * u * s
        _assert_within(g, wnt, bound, dtype, f"{_describe(case, dtype, name)}: {label}")


@pytest.mark.parametrize("float_dtype", DTYPES)
@pytest.mark.parametrize("name", ["winograd", "winograd2x2"])
@given(case=winograd_cases())
def test_winograd_agrees_with_the_reference_within_its_bound(
    name: str, float_dtype: str, case: dict
) -> None:
    """y, dx, dw within ``f u E`` (transform magnitudes), db exactly as im2col's."""
    dtype = float_dtype
    tiling = winograd.F4X4_3X3 if name == "winograd" else winograd.F2X2_3X3
    got = _run_conv(name, case, dtype)
    want, sums = _reference(case, dtype)
    x, w, dout = (case[key].astype(dtype) for key in ("x", "w", "dout"))
    e_y, e_dx, e_dw = winograd.absolute_bound(x, w, dout, case["padding"], tiling)
    # The bias: added once, after the output transform.
    e_y = e_y + np.abs(case["b"].astype(dtype)).reshape(1, -1, 1, 1)
    n, c_in = x.shape[:2]
    th, tw = winograd.tile_counts(*dout.shape[2:], tiling)
    factors = winograd.error_factors(tiling, c_in, w.shape[0], n * th * tw)
    u = tol.UNIT_ROUNDOFF[dtype]
    bounds = (
        factors["y"] * u * e_y,
        factors["dx"] * u * e_dx,
        factors["dw"] * u * e_dw,
        (n * dout.shape[2] * dout.shape[3] + 2) * u * sums[3],
    )
    for label, g, wnt, bound in zip(
        ("y", "dx", "dw", "db"), got, want, bounds, strict=True
    ):
        _assert_within(g, wnt, bound, dtype, f"{_describe(case, dtype, name)}: {label}")


@st.composite
def wide_layer_cases(draw: st.DrawFn) -> dict:
    """3x3 stride-1 layers wide enough for automatic Winograd (8 to 40 channels)."""
    padding = draw(st.integers(0, 2))
    size = draw(st.integers(8, 12))
    batch = draw(st.integers(1, 2))
    c_in, c_out = draw(st.integers(8, 40)), draw(st.integers(8, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([1e-2, 1.0, 1e2]))
    out = size + 2 * padding - 2
    return {
        "x": scale * rng.uniform(-1, 1, (batch, c_in, size, size)),
        "w": rng.uniform(-2, 2, (c_out, c_in, 3, 3)),
        "b": rng.uniform(-1, 1, c_out),
        "dout": rng.uniform(-1, 1, (batch, c_out, out, out)),
        "stride": (1, 1),
        "padding": (padding, padding),
        "chunk_bytes": None,
        "threads": 1,
    }


@given(case=wide_layer_cases())
def test_automatic_winograd_stays_within_the_suites_agreement_tolerance(
    case: dict,
) -> None:
    """What ``auto`` picks for wide 3x3 layers passes the suite's float32 tolerance.

    The agreement tolerance (``properties.tolerance.allowed``: atol + rtol
    |y| + 2 u n sum|terms|) is made for direct sums; the Winograd tilings
    ``auto`` uses (F(2x2) from 8 channels, F(4x4) from 32) must stay inside it.
    """
    backend = NumpyBackend()
    geometry = _geometry(backend, case["x"].shape, case["w"].shape, 1, case["padding"])
    chosen = backend.select_conv_algorithm(geometry).name
    got = _run_conv("auto", case, "float32")
    want, sums = _reference(case, "float32")
    n, c_in = case["x"].shape[:2]
    c_out = case["w"].shape[0]
    pixels = case["dout"].shape[2] * case["dout"].shape[3]
    lengths = (c_in * 9 + 1, c_out * 9, n * pixels, n * pixels)
    labels = ("y", "dx", "dw", "db")
    for label, g, wnt, s, length in zip(labels, got, want, sums, lengths, strict=True):
        allowed = tol.allowed("float32", wnt, length * s)
        error = np.abs(g.astype(np.float64) - wnt)
        assert np.all(error <= allowed), (
            f"{_describe(case, 'float32', 'auto')} (chose {chosen!r}): {label} "
            f"error {float((error / allowed).max()):.3g} x the agreement tolerance, "
            f"{_mismatch(g, wnt)}"
        )


def test_the_winograd_bound_catches_a_wrong_matrix() -> None:
    """The Winograd tolerance is not vacuous: one entry of G off by 1% fails it.

    (The bound is a worst case: the correct algorithm errs about 1e3 times
    less; a 1% error in G exceeds it 8 to 23 times, a dropped kernel tap
    about 700 times.)
    """
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 8, 12, 12)).astype(np.float32)
    w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
    b = np.zeros(8, np.float32)
    tiling = winograd.F4X4_3X3
    want = reference_layers.conv2d(
        x.astype(np.float64), w.astype(np.float64), b, padding=1
    )
    e_y = winograd.absolute_bound(x, w, np.zeros_like(want), (1, 1), tiling)[0]
    bound = (
        tol.ROUNDING_FACTOR
        * winograd.error_factors(tiling, 8, 8, 0)["y"]
        * tol.UNIT_ROUNDOFF["float32"]
        * e_y
    )
    good = winograd.conv2d_forward(
        NumpyBackend(),
        x,
        w,
        b,
        _geometry(NumpyBackend(), x.shape, w.shape, padding=1),
        tiling,
    )
    assert np.all(np.abs(good - want) <= bound), (
        "conv2d winograd F(4x4, 3x3), backend numpy, float32, x (2, 8, 12, 12): "
        "the correct algorithm exceeds its own bound, "
        f"{_mismatch(good, want)}"
    )
    g_wrong = tiling.g.copy()
    g_wrong[3, 1] *= 1 + 1e-2
    wrong = winograd.WinogradTiling(
        "F(4x4, 3x3) with a wrong G", tiling.bt, g_wrong, tiling.at
    )
    bad = winograd.conv2d_forward(
        NumpyBackend(),
        x,
        w,
        b,
        _geometry(NumpyBackend(), x.shape, w.shape, padding=1),
        wrong,
    )
    assert np.any(np.abs(bad - want) > bound), (
        "conv2d winograd, backend numpy, float32: a G matrix off by 1% in one "
        f"entry stays within the bound ({_mismatch(bad, want)}): the bound is vacuous"
    )


def test_winograd_amplification_is_as_documented() -> None:
    """E <= amplification x the window's sum of |terms|: 114 (F(4x4)), 4 (F(2x2))."""
    assert round(winograd.F4X4_3X3.amplification, 2) == 113.78, (
        f"F(4x4, 3x3) amplification {winograd.F4X4_3X3.amplification}"
    )
    assert winograd.F2X2_3X3.amplification == 4.0, (
        f"F(2x2, 3x3) amplification {winograd.F2X2_3X3.amplification}"
    )
    # One tile, one channel, all ones: E over the 6x6 window vs the direct sum.
    x = np.ones((1, 1, 6, 6))
    w = np.ones((1, 1, 3, 3))
    e_y = winograd.absolute_bound(
        x, w, np.zeros((1, 1, 4, 4)), (0, 0), winograd.F4X4_3X3
    )[0]
    assert e_y.max() <= winograd.F4X4_3X3.amplification * 36, (
        f"F(4x4, 3x3): E {e_y.max()} above amplification x 36"
    )


@pytest.mark.parametrize("name", sorted(CONV_ALGORITHMS))
def test_conv_reads_non_contiguous_inputs_by_their_strides(name: str) -> None:
    """Strided views of x, w and dout give the answer of their contiguous copies."""
    rng = np.random.default_rng(0)
    x_big = rng.standard_normal((2, 6, 9, 14)).astype(np.float32)
    w_big = rng.standard_normal((3, 4, 3, 3)).astype(np.float32)
    x = x_big[:, ::2, :, ::2]  # (2, 3, 9, 7), every stride unusual
    w = w_big.transpose(1, 0, 2, 3)[:, :, ::-1]  # (4, 3, 3, 3), not C-contiguous
    b = np.arange(4, dtype=np.float32)
    backend = NumpyBackend()
    backend.conv_algorithm = name
    stride = 1 if name.startswith("winograd") else 2
    hyper = {"stride": stride, "padding": 1}
    y = backend.conv2d(x, w, b, **hyper)
    dout = rng.standard_normal(y.shape).astype(np.float32)[..., ::-1]
    got = (y, *backend.conv2d_backward(dout, x, w, b, **hyper))
    contiguous = [np.ascontiguousarray(a) for a in (x, w, b, dout)]
    want_y = backend.conv2d(*contiguous[:3], **hyper)
    want = (want_y, *backend.conv2d_backward(contiguous[3], *contiguous[:3], **hyper))
    for label, g, wnt in zip(("y", "dx", "dw", "db"), got, want, strict=True):
        _assert_close(
            g,
            wnt,
            "float32",
            f"conv2d {name!r}, backend numpy, float32, x view {x.shape} strides "
            f"{x.strides}, w view {w.shape}, {hyper}: {label}",
        )


def _geometry(
    backend: NumpyBackend, x_shape, w_shape, stride: int = 1, padding: int = 0
) -> ConvGeometry:
    x = np.zeros(x_shape, np.float32)
    w = np.zeros(w_shape, np.float32)
    b = np.zeros(w_shape[0], np.float32)
    return backend._check_conv2d(x, w, b, stride, padding)[3]


def test_conv_dispatch_follows_preference_support_worth_and_workspace() -> None:
    """``auto``: the first supporting, worthwhile algorithm within the workspace."""
    backend = NumpyBackend()
    cases = [
        ((2, 32, 10, 10), (32, 32, 3, 3), 1, "winograd"),  # 3x3 stride 1, wide
        ((2, 16, 10, 10), (16, 16, 3, 3), 1, "winograd2x2"),  # F(4x4) needs 32
        ((2, 32, 6, 6), (32, 32, 3, 3), 1, "winograd2x2"),  # a 6x6 output
        ((2, 4, 10, 10), (16, 4, 3, 3), 1, "im2col"),  # too few channels to pay
        ((2, 16, 10, 10), (16, 16, 3, 3), 2, "im2col"),  # stride 2
        ((2, 16, 10, 10), (16, 16, 5, 5), 1, "im2col"),  # 5x5
        ((2, 16, 10, 10), (32, 16, 1, 1), 1, "im2col"),  # 1x1
    ]
    for x_shape, w_shape, stride, expected in cases:
        geometry = _geometry(backend, x_shape, w_shape, stride)
        chosen = backend.select_conv_algorithm(geometry).name
        assert chosen == expected, (
            f"conv2d dispatch, backend numpy: chose {chosen!r} for {geometry}, "
            f"expected {expected!r}"
        )
    geometry = _geometry(backend, (2, 32, 10, 10), (32, 32, 3, 3))
    backend.conv_workspace_limit = 0  # nothing fits: the smallest workspace wins
    smallest = min(
        (CONV_ALGORITHMS[name] for name in backend.conv_preference),
        key=lambda algorithm: algorithm.workspace_bytes(geometry),
    )
    assert backend.select_conv_algorithm(geometry) is smallest, (
        f"conv2d dispatch, backend numpy: choice with no workspace for {geometry}"
    )
    backend.conv_workspace_limit = 1 << 30
    backend.conv_algorithm = "offsets"
    assert backend.select_conv_algorithm(geometry).name == "offsets", (
        "conv2d dispatch, backend numpy: conv_algorithm='offsets' not honoured"
    )
    backend.conv_algorithm = "winograd"
    with pytest.raises(ValueError, match="does not support"):
        backend.select_conv_algorithm(_geometry(backend, (1, 2, 8, 8), (2, 2, 3, 3), 2))
    backend.conv_algorithm = "no-such-algorithm"
    with pytest.raises(ValueError, match="conv_algorithm"):
        backend.select_conv_algorithm(geometry)


def test_a_registered_conv_algorithm_is_used_only_where_it_applies() -> None:
    """A new algorithm first in the preference runs for the shapes it supports."""
    calls: list[str] = []
    im2col = CONV_ALGORITHMS["im2col"]

    def forward(backend, x, w, b, geometry):
        calls.append("forward")
        return im2col.forward(backend, x, w, b, geometry)

    def backward(backend, dout, x, w, geometry):
        calls.append("backward")
        return im2col.backward(backend, dout, x, w, geometry)

    def three_by_three_stride_one(geometry: ConvGeometry) -> bool:
        return geometry.kernel == (3, 3) and geometry.stride == (1, 1)

    spy = ConvAlgorithm("spy", forward, backward, three_by_three_stride_one)
    backend = NumpyBackend()
    backend.conv_algorithms["spy"] = spy
    backend.conv_preference = ("spy", *backend.conv_preference)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 6, 6))
    w3, w2 = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal((4, 3, 2, 2))
    b = rng.standard_normal(4)
    y = backend.conv2d(x, w3, b, padding=1)
    backend.conv2d_backward(np.ones_like(y), x, w3, b, padding=1)
    assert calls == ["forward", "backward"], (
        f"conv2d dispatch, backend numpy: 3x3 stride 1 should use 'spy', calls {calls}"
    )
    backend.conv2d(x, w3, b, stride=2)
    backend.conv2d(x, w2, b)
    assert calls == ["forward", "backward"], (
        f"conv2d dispatch, backend numpy: 'spy' ran on shapes it does not support, "
        f"calls {calls}"
    )
    backend.conv_algorithm = "spy"
    with pytest.raises(ValueError, match="does not support"):
        backend.conv2d(x, w2, b)


def test_conv_algorithm_registry_entries_are_complete() -> None:
    """Every registered algorithm names itself, reports a workspace and its worth."""
    geometry = _geometry(NumpyBackend(), (2, 3, 8, 8), (4, 3, 3, 3))
    for name, algorithm in CONV_ALGORITHMS.items():
        assert algorithm.name == name, (
            f"conv registry: {name!r} holds {algorithm.name!r}"
        )
        assert dataclasses.is_dataclass(algorithm)
        workspace = algorithm.workspace_bytes(geometry)
        assert isinstance(workspace, int) and workspace >= 0, (
            f"conv algorithm {name!r}: workspace_bytes({geometry}) = {workspace!r}"
        )
        worth = algorithm.worthwhile(geometry)
        assert isinstance(worth, bool), (
            f"conv algorithm {name!r}: worthwhile({geometry}) = {worth!r}"
        )


@pytest.mark.parametrize("name", sorted(CONV_ALGORITHMS))
@pytest.mark.parametrize(
    ("x_shape", "w_shape"),
    [((0, 3, 6, 6), (4, 3, 3, 3))],
    ids=["no-images"],
)
def test_conv_with_nothing_to_sum_matches_the_reference(
    name: str, x_shape: tuple, w_shape: tuple
) -> None:
    """An empty batch: the shapes, zero gradients (no channels are refused)."""
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    backend = NumpyBackend()
    backend.conv_algorithm = name
    want_y = reference_layers.conv2d(x, w, b, padding=1)
    dout = rng.standard_normal(want_y.shape)
    want = (want_y, *reference_layers.conv2d_backward(dout, x, w, b, padding=1))
    got = (backend.conv2d(x, w, b, padding=1),)
    got += backend.conv2d_backward(dout, x, w, b, padding=1)
    for label, g, wnt in zip(("y", "dx", "dw", "db"), got, want, strict=True):
        _assert_close(
            g,
            wnt,
            "float64",
            f"conv2d {name!r}, backend numpy, x {x_shape}, w {w_shape}: {label}",
        )


def test_conv_chunks_cover_the_batch_within_the_budget() -> None:
    """Chunks partition the batch, hold at most the budget, and keep enough columns.

    With ``parts``, there are at least that many chunks where the columns allow.
    """
    backend = NumpyBackend()
    geometry = _geometry(backend, (7, 4, 10, 10), (4, 4, 3, 3), padding=1)
    cases = [
        (None, 1, 1),
        (1, 1, 1),
        (3000, 1, 1),
        (3000, 250, 1),
        (10**9, 1, 1),
        (10**9, 1, 4),
        (10**9, 250, 4),
        (3000, 1, 4),
        (None, 1, 4),
    ]
    for budget, min_columns, parts in cases:
        backend.conv_chunk_bytes, backend.conv_chunk_min_columns = budget, min_columns
        backend.conv_chunk_parts = parts
        per_image = 1000
        chunks = list(array_conv._chunks(backend, geometry, per_image))
        covered = [i for part in chunks for i in range(7)[part]]
        what = f"conv2d chunks, budget {budget}, min columns {min_columns}, "
        what += f"parts {parts}: {chunks}"
        assert covered == list(range(7)), f"{what} do not partition the batch of 7"
        sizes = {part.stop - part.start for part in chunks[:-1]} or {chunks[0].stop}
        step = max(sizes)
        if budget is None:
            assert step == 7, f"{what}: no budget, yet not one chunk"
            continue
        needed = -(-min_columns // geometry.pixels)
        fitting = min(budget // per_image, -(-7 // parts))
        assert step == max(1, min(7, max(fitting, needed))), what


@pytest.mark.parametrize("budget", [1, array_conv.CONV_CHUNK_BYTES])
@pytest.mark.parametrize("name", ["winograd", "winograd2x2", "im2col"])
def test_chunked_conv_gives_the_same_bits_on_any_thread_count(
    name: str, budget: int
) -> None:
    """The chunks, and the order dW's terms are added in, do not follow the threads.

    Run on 1 and on 2 and 3 threads (chunk tasks in parallel where
    threadpoolctl is installed), y, dx and dw are the very same bits: with
    one image a chunk, and with the batch cut into ``conv_chunk_parts``.
    """
    rng = np.random.default_rng(5)
    x = rng.standard_normal((16, 8, 12, 12)).astype(np.float32)
    w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    dout = rng.standard_normal((16, 8, 12, 12)).astype(np.float32)
    results = {}
    for threads in (1, 2, 3):
        backend = NumpyBackend()
        backend.conv_algorithm = name
        backend.conv_chunk_bytes, backend.conv_chunk_min_columns = budget, 1
        backend.threads = threads
        y = backend.conv2d(x, w, b, stride=1, padding=1)
        grads = backend.conv2d_backward(dout, x, w, b, stride=1, padding=1)
        results[threads] = (y, *grads)
    for threads in (2, 3):
        pairs = zip(results[threads], results[1], strict=True)
        for label, (got, want) in zip(("y", "dx", "dw", "db"), pairs, strict=True):
            assert np.array_equal(got, want), (
                f"conv2d algorithm {name!r}, backend numpy, x {x.shape}, chunk "
                f"budget {budget}: {label} on {threads} threads differs from 1 "
                f"thread, {_mismatch(got, want)}"
            )


def test_blas_is_held_to_one_thread_for_a_block_of_parallel_tasks() -> None:
    """Inside ``_blas_tasks`` with tasks for every thread, BLAS runs on one thread.

    Its other BLAS calls (a filter transform, a reduction) would otherwise
    wake BLAS's own threads, which spin on the cores the tasks need.
    """
    if blocked.single_threaded_blas() is None:
        pytest.skip("threadpoolctl is not installed: BLAS cannot be held")
    backend = NumpyBackend()
    backend.threads = 2
    ran = []
    with backend._blas_tasks(4) as run:
        inside = blocked.blas_threads()
        run([lambda worker: ran.append(worker.thread_count())] * 4)
    assert inside == 1, f"backend numpy: BLAS on {inside} threads inside the block"
    assert ran == [1, 1, 1, 1], f"backend numpy: the tasks' workers said {ran}"
    with backend._blas_tasks(1) as run:  # too few tasks to share: BLAS's threads
        run([lambda worker: ran.append(worker is backend)])
    assert ran[-1], "backend numpy: a lone task was not given the backend itself"


@NEEDS_NUMBA
@pytest.mark.parametrize("float_dtype", DTYPES)
@pytest.mark.parametrize("lanes", [fused.DIRECT_LANES, fused.DIRECT_WIDE_LANES])
@pytest.mark.parametrize("pixels", sorted(set(fused.DIRECT_BLOCKS)))
def test_every_direct_conv_register_block_matches_the_reference(
    pixels: int, lanes: int, float_dtype: str
) -> None:
    """Each ``(lanes, pixels)`` block the direct conv may be compiled for is right.

    Output rows of a multiple of ``pixels`` and of a multiple plus a tail;
    fewer output channels than lanes and more (a second, zero-padded tile).
    """
    dtype = float_dtype
    rng = np.random.default_rng(pixels * 100 + lanes)
    for out_width, out_channels in [(2 * pixels, lanes - 3), (pixels + 3, lanes + 2)]:
        x = rng.standard_normal((3, 2, 4 + 2, out_width + 2)).astype(dtype)
        w = rng.standard_normal((out_channels, 2, 3, 3)).astype(dtype)
        b = rng.standard_normal(out_channels).astype(dtype)
        w_tiles, bias = fused.direct_weights(w, b, lanes)
        y = np.empty((3, out_channels, 4, out_width), dtype)
        fused.direct_conv(x, w_tiles, bias, y, slice(0, 3), pixels)
        want = reference_layers.conv2d(
            *(a.astype(np.float64) for a in (x, w, b)), stride=1, padding=0
        )
        what = (
            f"direct conv of {lanes} lanes by {pixels} pixels, dtype {dtype}, "
            f"x {x.shape}, w {w.shape}"
        )
        _assert_close(y, want, dtype, what)


def test_the_direct_conv_block_divides_the_row_where_it_can() -> None:
    """:func:`fused.direct_shape`: a block dividing the output row, else the default."""
    for width, pixels in [(10, 10), (20, 10), (28, 7), (14, 7), (13, 5), (5, 5)]:
        got = fused.direct_shape(4, width)
        assert got == (fused.DIRECT_LANES, pixels), (
            f"direct conv block for 4 channels, {width}-pixel rows: {got}"
        )


# ---------------------------------------------------------------------------
# Scratch arrays kept between calls
# ---------------------------------------------------------------------------


def test_scratch_arrays_are_reused_between_loans_and_never_shared_within_one() -> None:
    """A name's memory comes back on the next loan; a name lent twice is a bug."""
    workspace.release()
    with workspace.scratch(np) as first:
        a = first.empty("a", (3, 4), np.float32)
        b = first.zeros("b", (5,), np.float64)
        assert not np.shares_memory(a, b), "scratch: two names share memory"
        assert b.shape == (5,) and b.dtype == np.float64 and not b.any()
        with pytest.raises(RuntimeError, match="'a' is already lent"):
            first.empty("a", (2,), np.float32)
        with workspace.scratch(np) as nested:  # a second caller at the same time
            c = nested.empty("a", (3, 4), np.float32)
            assert not np.shares_memory(a, c), "scratch: two loans share memory"
    with workspace.scratch(np) as again:
        smaller = again.empty("a", (2, 2), np.float32)
        assert np.shares_memory(smaller, a), "scratch: 'a' was not kept"
        too_big = again.empty("big", (workspace.KEEP_BYTES + 1,), np.uint8)
    with workspace.scratch(np) as third:
        assert not np.shares_memory(third.empty("big", (4,), np.uint8), too_big), (
            "scratch: an array above KEEP_BYTES was kept"
        )
    assert workspace.release() > 0, "scratch: release() freed nothing"
    assert workspace.release() == 0, "scratch: release() left memory behind"


#: Every name the conv algorithms ask their scratch for.
SCRATCH_NAMES = (
    "padded gathered transformed product untransformed tiles tiles_hat "
    "columns rows upstream dcolumns"
).split()


def _dirty_scratch() -> None:
    """Fill the kept scratch arrays with NaN (two workspaces: two threads)."""
    with workspace.scratch(np) as one, workspace.scratch(np) as two:
        for lent in (one, two):
            for key in SCRATCH_NAMES:
                lent.empty(key, (1 << 16,), np.float32)[...] = np.nan


def test_conv_gives_the_same_result_on_reused_scratch() -> None:
    """A call on kept, dirty scratch arrays gives a call on fresh ones' bits.

    Padding and zero-filled tiles are written afresh on every call, not
    inherited from the memory's last use, whatever shapes came before.
    """
    backend = NumpyBackend()
    backend.conv_chunk_bytes, backend.conv_chunk_min_columns = 1, 1
    rng = np.random.default_rng(9)
    cases = [((4, 4, 9, 7), 1), ((5, 4, 6, 11), 2), ((4, 4, 9, 7), 0)]
    for name in ("winograd", "winograd2x2", "im2col"):
        backend.conv_algorithm = name
        for shape, padding in cases:
            x = rng.standard_normal(shape).astype(np.float32)
            w = rng.standard_normal((5, 4, 3, 3)).astype(np.float32)
            b = rng.standard_normal(5).astype(np.float32)
            hyper = {"stride": 1, "padding": padding}
            y = backend.conv2d(x, w, b, **hyper)
            dout = rng.standard_normal(y.shape).astype(np.float32)
            results = []
            for prepare in (workspace.release, _dirty_scratch):
                prepare()
                grads = backend.conv2d_backward(dout, x, w, b, **hyper)
                results.append((backend.conv2d(x, w, b, **hyper), *grads))
            for label, fresh, dirty in zip(("y", "dx", "dw"), *results, strict=False):
                assert np.array_equal(fresh, dirty), (
                    f"conv2d algorithm {name!r}, backend numpy, x {shape}, padding "
                    f"{padding}: {label} differs on reused scratch, "
                    f"{_mismatch(dirty, fresh)}"
                )


# ---------------------------------------------------------------------------
# Max pooling routes to the first maximum
# ---------------------------------------------------------------------------


@st.composite
def pool_cases(draw: st.DrawFn) -> dict:
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (
        draw(st.integers(0, kernel[0] // 2)),
        draw(st.integers(0, kernel[1] // 2)),
    )
    height = draw(st.integers(max(1, kernel[0] - 2 * padding[0]), 7))
    width = draw(st.integers(max(1, kernel[1] - 2 * padding[1]), 7))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    # Few distinct values: most windows hold ties.
    x = rng.integers(-1, 2, size=(2, 2, height, width)).astype(np.float64)
    return {"x": x, "kernel_size": kernel, "stride": stride, "padding": padding}


@pytest.mark.parametrize("float_dtype", DTYPES)
@given(case=pool_cases())
def test_max_pool_gradient_goes_to_the_first_maximum(
    float_dtype: str, case: dict
) -> None:
    """With ties, each window's gradient lands on its first maximum, row-major."""
    dtype = float_dtype
    backend = NumpyBackend()
    x = case["x"].astype(dtype)
    hyper = {key: case[key] for key in ("kernel_size", "stride", "padding")}
    y = backend.max_pool2d(x, **hyper)
    dout = np.arange(1, y.size + 1, dtype=dtype).reshape(y.shape)
    (dx,) = backend.max_pool2d_backward(dout, x, **hyper)
    (kh, kw), (sh, sw), (ph, pw) = (
        hyper["kernel_size"],
        hyper["stride"],
        hyper["padding"],
    )
    x_padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    want = np.zeros_like(x_padded)
    for n, c, h, w in np.ndindex(*y.shape):
        window = x_padded[n, c, h * sh : h * sh + kh, w * sw : w * sw + kw]
        i, j = np.unravel_index(np.argmax(window), window.shape)  # the first maximum
        want[n, c, h * sh + i, w * sw + j] += dout[n, c, h, w]
    want = want[:, :, ph : ph + x.shape[2], pw : pw + x.shape[3]]
    assert np.array_equal(dx, want), (
        f"max_pool2d_backward, backend numpy, dtype {dtype}, x {x.shape}, {hyper}: "
        f"gradient not on the first maximum at {np.argwhere(dx != want)[:5].tolist()}"
    )


# ---------------------------------------------------------------------------
# Optimizers update in place
# ---------------------------------------------------------------------------

OPTIMIZER_CASES = [
    ("sgd", {"lr": 0.1}),
    ("sgd", {"lr": 0.1, "weight_decay": 0.01}),
    ("sgd", {"lr": 0.1, "momentum": 0.9}),
    ("sgd", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("sgd", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("adagrad", {"lr": 0.1}),
    ("rmsprop", {"lr": 0.01, "alpha": 0.9}),
    ("adadelta", {}),
    ("adam", {"lr": 0.001}),
    ("adam", {"lr": 0.001, "weight_decay": 0.01}),
    ("adamw", {"lr": 0.01, "weight_decay": 0.1}),
    ("adamw", {"weight_decay": 0.0}),
]
OPTIMIZER_IDS = [
    f"{name}-{'-'.join(map(str, hyper.values()))}" for name, hyper in OPTIMIZER_CASES
]


@pytest.mark.parametrize("float_dtype", DTYPES)
@pytest.mark.parametrize(("name", "hyper"), OPTIMIZER_CASES, ids=OPTIMIZER_IDS)
def test_optimizer_steps_update_param_and_state_in_place(
    name: str, hyper: dict, float_dtype: str
) -> None:
    """The returned param and state are the very objects passed in, updated."""
    dtype = float_dtype
    from reference import optimizers as reference

    backend = NumpyBackend()
    rng = np.random.default_rng(2)
    param = rng.standard_normal((5, 4)).astype(dtype)
    expected = start = param.astype(np.float64)
    trajectory = []
    state = backend.init_state(name, param)
    expected_state = reference.init_state(name, expected)
    step = getattr(backend, f"{name}_step")
    for t in range(5):
        grad = rng.standard_normal(param.shape).astype(dtype)
        grad_before = grad.copy()
        arrays_before = {key: value for key, value in state.items()}
        new_param, new_state = step(param, grad, state, **hyper)
        what = f"{name}_step, backend numpy, dtype {dtype}, {hyper}, step {t + 1}"
        assert new_param is param, f"{what}: returned a new param array"
        assert new_state is state, f"{what}: returned a new state dict"
        for key, value in arrays_before.items():
            assert state[key] is value, f"{what}: state[{key!r}] replaced, not updated"
        assert np.array_equal(grad, grad_before), f"{what}: grad was modified"
        expected, expected_state = getattr(reference, f"{name}_step")(
            expected, grad.astype(np.float64), expected_state, **hyper
        )
        trajectory.append(expected)
        allowed = tol.trajectory(start, trajectory, dtype)[-1]
        assert np.all(np.abs(param - expected) <= allowed), (
            f"{what}: param off the reference, {_mismatch(param, expected)}"
        )


@pytest.mark.parametrize(("name", "hyper"), OPTIMIZER_CASES, ids=OPTIMIZER_IDS)
def test_optimizer_steps_allocate_no_full_size_temporary(
    name: str, hyper: dict
) -> None:
    """After the first step, a step allocates far less than one param's size."""
    backend = NumpyBackend()
    param = np.full(250_000, 0.5, dtype=np.float32)
    grad = np.full_like(param, 0.25)
    state = backend.init_state(name, param)
    step = getattr(backend, f"{name}_step")
    step(param, grad, state, **hyper)  # lazily made buffers come now
    tracemalloc.start()
    try:
        step(param, grad, state, **hyper)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < param.nbytes // 4, (
        f"{name}_step, backend numpy, float32, param {param.shape}, {hyper}: peak "
        f"allocation {peak} bytes during a step, param is {param.nbytes} bytes"
    )


def _steps(
    backend: NumpyBackend, name: str, hyper: dict, param: np.ndarray, grads: list
) -> tuple[np.ndarray, dict]:
    state = backend.init_state(name, param)
    step = getattr(backend, f"{name}_step")
    for grad in grads:
        step(param, grad, state, **hyper)
    return param, state


@pytest.mark.parametrize("float_dtype", DTYPES)
@pytest.mark.parametrize(("name", "hyper"), OPTIMIZER_CASES, ids=OPTIMIZER_IDS)
@given(
    size=st.integers(1, 300),
    block_elements=st.integers(1, 64),
    threads=st.integers(1, 3),
)
def test_blocked_optimizer_steps_equal_the_unblocked_formula(
    name: str,
    hyper: dict,
    float_dtype: str,
    size: int,
    block_elements: int,
    threads: int,
) -> None:
    """Blocks of any length on any number of threads give the very same bits.

    The reference point is the same kernel applied once to the whole arrays
    (``optimizer_block_bytes`` larger than param, one thread): every element
    goes through the same ufunc calls whichever block holds it.
    """
    dtype = np.dtype(float_dtype)
    rng = np.random.default_rng(size * 1000 + block_elements)
    param = rng.standard_normal(size).astype(dtype)
    grads = [rng.standard_normal(size).astype(dtype) for _ in range(3)]
    whole = NumpyBackend()
    whole.threads = 1
    whole.optimizer_block_bytes = 1 << 40
    want, want_state = _steps(whole, name, hyper, param.copy(), grads)
    blocks = NumpyBackend()
    blocks.threads = threads
    blocks.optimizer_block_bytes = block_elements * dtype.itemsize
    got, state = _steps(blocks, name, hyper, param.copy(), grads)
    what = (
        f"{name}_step, backend numpy, dtype {dtype}, {hyper}, param ({size},), "
        f"blocks of {block_elements} on {threads} threads vs one block"
    )
    assert np.array_equal(got, want), f"{what}: param differs, {_mismatch(got, want)}"
    for key in want_state:
        if key != "scratch":
            assert np.array_equal(state[key], want_state[key]), (
                f"{what}: state[{key!r}]"
            )


def test_the_accelerator_follows_numba_and_the_switch(monkeypatch) -> None:
    """numba installed: compiled kernels unless NNSPEC_NUMPY_ACCEL=0."""
    monkeypatch.delenv(fused.ACCEL_VARIABLE, raising=False)
    expected = "numba" if fused.available() else None
    assert NumpyBackend().accelerator == expected, (
        f"backend numpy: accelerator {NumpyBackend().accelerator!r} with numba "
        f"{'installed' if fused.available() else 'missing'}"
    )
    monkeypatch.setenv(fused.ACCEL_VARIABLE, "0")
    assert NumpyBackend().accelerator is None, (
        f"backend numpy: {fused.ACCEL_VARIABLE}=0 did not keep the plain path"
    )


@NEEDS_NUMBA
@pytest.mark.parametrize("float_dtype", DTYPES)
@pytest.mark.parametrize(("name", "hyper"), OPTIMIZER_CASES, ids=OPTIMIZER_IDS)
@given(size=st.integers(1, 300), block_elements=st.integers(1, 64))
def test_compiled_optimizer_steps_equal_the_ufunc_kernels(
    name: str, hyper: dict, float_dtype: str, size: int, block_elements: int
) -> None:
    """The numba update gives the plain path's very bits, param and state."""
    dtype = np.dtype(float_dtype)
    rng = np.random.default_rng(size * 1000 + block_elements)
    param = (rng.standard_normal(size) * 3).astype(dtype)
    grads = [rng.standard_normal(size).astype(dtype) for _ in range(3)]
    plain = NumpyBackend()
    plain.accelerator = None
    want, want_state = _steps(plain, name, hyper, param.copy(), grads)
    compiled = NumpyBackend()
    compiled.accelerator = "numba"
    compiled.threads = 2
    compiled.optimizer_block_bytes = block_elements * dtype.itemsize
    got, state = _steps(compiled, name, hyper, param.copy(), grads)
    what = (
        f"{name}_step, backend numpy, dtype {dtype}, {hyper}, param ({size},), "
        f"numba kernel in blocks of {block_elements} vs the ufunc kernel"
    )
    assert np.array_equal(got, want), f"{what}: param differs, {_mismatch(got, want)}"
    for key in want_state:
        if key != "scratch":
            assert np.array_equal(state[key], want_state[key]), (
                f"{what}: state[{key!r}] differs"
            )


@pytest.mark.parametrize(("name", "hyper"), OPTIMIZER_CASES, ids=OPTIMIZER_IDS)
def test_optimizer_steps_update_strided_views_in_place(name: str, hyper: dict) -> None:
    """A strided view as param (no blocking possible) is still updated in place."""
    backend = NumpyBackend()
    rng = np.random.default_rng(5)
    storage = rng.standard_normal((6, 8)).astype(np.float32)
    param = storage[:, ::2]  # (6, 4), not contiguous
    expected = start = param.astype(np.float64)
    trajectory = []
    state = backend.init_state(name, param)
    from reference import optimizers as reference

    expected_state = reference.init_state(name, expected)
    step = getattr(backend, f"{name}_step")
    for t in range(3):
        grad = rng.standard_normal(param.shape).astype(np.float32)
        new_param, _ = step(param, grad, state, **hyper)
        expected, expected_state = getattr(reference, f"{name}_step")(
            expected, grad.astype(np.float64), expected_state, **hyper
        )
        what = (
            f"{name}_step, backend numpy, float32, strided param, {hyper}, step {t + 1}"
        )
        assert new_param is param, f"{what}: returned a new param array"
        trajectory.append(expected)
        allowed = tol.trajectory(start, trajectory, "float32")[-1]
        assert np.all(np.abs(storage[:, ::2] - expected) <= allowed), (
            f"{what}: the viewed storage is off the reference, "
            f"{_mismatch(storage[:, ::2], expected)}"
        )


def test_thread_count_follow_numpy_blas() -> None:
    """Pinning NumPy's BLAS with threadpoolctl pins the optimizer passes too."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    backend = NumpyBackend()
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        assert backend.thread_count() == 1, (
            "optimizer steps, backend numpy: BLAS pinned to 1 thread, yet "
            f"{backend.thread_count()} threads"
        )
        assert blocked.blas_threads() == 1
    backend.threads = 3
    assert backend.thread_count() == 3, (
        "optimizer steps, backend numpy: backend.threads = 3 not honoured"
    )


def test_clip_grad_norm_returns_new_arrays_and_a_float() -> None:
    backend = NumpyBackend()
    grads = [np.full((3, 4), 2.0, np.float32), np.full(5, -1.0, np.float32)]
    before = [g.copy() for g in grads]
    clipped, total = backend.clip_grad_norm(grads, max_norm=1.0)
    assert type(total) is float, f"clip_grad_norm, backend numpy: total {total!r}"
    assert np.isclose(total, np.sqrt(12 * 4.0 + 5 * 1.0))
    for g, b, c in zip(grads, before, clipped, strict=True):
        assert np.array_equal(g, b), "clip_grad_norm, backend numpy: modified a grad"
        assert c is not g and c.dtype == np.float32, (
            f"clip_grad_norm, backend numpy: returned {c.dtype} alias={c is g}"
        )


# ---------------------------------------------------------------------------
# The CuPy backend without CuPy
# ---------------------------------------------------------------------------


def test_cupy_backend_imports_and_explains_when_unavailable() -> None:
    module = importlib.import_module("backends.cupy_backend")
    backend = contract.load("cupy")
    assert backend is module.backend
    assert (backend.name, backend.device) == ("cupy", "gpu")
    assert contract.missing_operations(backend) == [], (
        f"cupy backend lacks {contract.missing_operations(backend)}"
    )
    try:
        import cupy

        usable = cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        usable = False
    reason = contract.unavailable_reason(backend)
    if usable:
        assert reason is None, (
            f"cupy backend: CuPy and a device are here, yet {reason!r}"
        )
        return
    assert isinstance(reason, str) and reason, "cupy backend: no unavailable_reason"
    assert "CuPy" in reason or "CUDA" in reason, f"cupy backend: reason {reason!r}"
    with pytest.raises(RuntimeError, match="unavailable"):
        backend.relu(np.zeros(3))


# ---------------------------------------------------------------------------
# The float32 erf of the blocked GELU
# ---------------------------------------------------------------------------


def test_float32_erf_is_within_half_a_micro_of_cody() -> None:
    """The float32 rational erf against the float64 one, over [-8, 8] and tiny z.

    Absolute error under 5e-7 (a few float32 ulps of 1): GELU's ``x Phi(x)``
    then errs by under ``2.5e-7 |x|``, inside float32's ``rtol`` where
    ``Phi >= 1/2`` and its ``atol`` in the left tail.
    """
    from backends.array import special

    dense = np.linspace(-8, 8, 400_001)
    tiny = 10.0 ** np.linspace(-30, 0, 3001)
    z = np.concatenate([dense, tiny, -tiny, [0.0, np.inf, -np.inf]]).astype(np.float32)
    got = np.empty_like(z)
    special.erf_float32_into(z, got, np.empty((3, z.size), np.float32))
    want = special.erf(z.astype(np.float64))
    error = np.abs(got - want)
    worst = int(np.argmax(error))
    assert error[worst] <= 5e-7, (
        f"float32 erf: error {error[worst]:.3g} at z = {z[worst]!r} "
        f"(got {got[worst]!r}, Cody {want[worst]!r})"
    )
