"""Internals of the NumPy backend that the generic, catalog-driven suite cannot see.

The generic properties compare what an operation returns with the reference.
These tests look behind the interface of :mod:`backends.array_backend`:

* every registered conv algorithm agrees with every other, forward and
  backward, and the per-shape dispatch picks what it promises;
* conv reads its input through strides, so non-contiguous inputs must give
  the contiguous answer;
* max pooling routes each window's gradient to its *first* maximum (the
  generic suite accepts any maximum);
* the optimizer steps update ``param`` and the state arrays in place, return
  those same objects, and allocate no full-size temporary;
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
from backends.array_backend import CONV_ALGORITHMS, ConvAlgorithm, ConvGeometry
from backends.numpy_backend import NumpyBackend

DTYPES = ("float32", "float64")
# Two algorithms summing the same products in different orders.
TOLERANCE = {"float32": (1e-5, 1e-4), "float64": (1e-12, 1e-12)}


def _mismatch(got: np.ndarray, want: np.ndarray) -> str:
    got64, want64 = got.astype(np.float64), want.astype(np.float64)
    error = np.abs(got64 - want64)
    relative = error / np.maximum(np.abs(want64), np.finfo(np.float64).tiny)
    return f"max abs error {error.max():.3g}, max rel error {relative.max():.3g}"


def _assert_close(got: np.ndarray, want: np.ndarray, dtype: str, what: str) -> None:
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert got.dtype == np.dtype(dtype), f"{what}: dtype {got.dtype} != {dtype}"
    rtol, atol = TOLERANCE[dtype]
    scale = atol * max(1.0, float(np.abs(want).max(initial=0.0)))
    assert np.allclose(got, want, rtol=rtol, atol=scale), (
        f"{what}: {_mismatch(got, want)}"
    )


# ---------------------------------------------------------------------------
# Convolution algorithms
# ---------------------------------------------------------------------------


@st.composite
def conv_cases(draw: st.DrawFn) -> dict:
    """A conv2d geometry (with stride and padding) and its arrays, float64."""
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    height = draw(st.integers(max(1, kernel[0] - 2 * padding[0]), 9))
    width = draw(st.integers(max(1, kernel[1] - 2 * padding[1]), 9))
    batch, c_in, c_out = (draw(st.integers(1, 3)) for _ in range(3))
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
    }


def _describe(case: dict, dtype: str) -> str:
    return (
        f"conv2d, backend numpy, dtype {dtype}, x {case['x'].shape}, "
        f"w {case['w'].shape}, stride {case['stride']}, padding {case['padding']}"
    )


def _run_conv(algorithm: str, case: dict, dtype: str) -> tuple[np.ndarray, ...]:
    backend = NumpyBackend()
    backend.conv_algorithm = algorithm
    x, w, b, dout = (case[key].astype(dtype) for key in ("x", "w", "b", "dout"))
    hyper = {"stride": case["stride"], "padding": case["padding"]}
    y = backend.conv2d(x, w, b, **hyper)
    return (y, *backend.conv2d_backward(dout, x, w, b, **hyper))


@pytest.mark.parametrize("float_dtype", DTYPES)
@given(case=conv_cases())
def test_every_conv_algorithm_agrees_with_im2col(float_dtype: str, case: dict) -> None:
    """Forward, dx, dw and db of each registered algorithm equal im2col's."""
    dtype = float_dtype
    baseline = _run_conv("im2col", case, dtype)
    for name in CONV_ALGORITHMS:
        if name == "im2col":
            continue
        results = _run_conv(name, case, dtype)
        labelled = zip(("y", "dx", "dw", "db"), results, baseline, strict=True)
        for label, got, want in labelled:
            _assert_close(
                got,
                want,
                dtype,
                f"{_describe(case, dtype)}: {label} of {name!r} vs im2col",
            )


@pytest.mark.parametrize("float_dtype", DTYPES)
@given(case=conv_cases())
def test_every_conv_algorithm_agrees_with_a_direct_sum(
    float_dtype: str, case: dict
) -> None:
    """The forward of each algorithm equals the definition, summed in float64."""
    dtype = float_dtype
    x, w, b = case["x"], case["w"], case["b"]
    (ph, pw), (sh, sw) = case["padding"], case["stride"]
    x_padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out_h, out_w = case["dout"].shape[2:]
    want = np.broadcast_to(b[None, :, None, None], case["dout"].shape).copy()
    for i in range(w.shape[2]):
        for j in range(w.shape[3]):
            patch = x_padded[:, :, i : i + sh * out_h : sh, j : j + sw * out_w : sw]
            want += np.einsum("nchw,fc->nfhw", patch, w[:, :, i, j])
    for name in CONV_ALGORITHMS:
        got = _run_conv(name, case, dtype)[0]
        _assert_close(
            got,
            want.astype(dtype),
            dtype,
            f"{_describe(case, dtype)}: forward of {name!r} vs the direct sum",
        )


@pytest.mark.parametrize("name", sorted(CONV_ALGORITHMS))
def test_conv_reads_non_contiguous_inputs_by_their_strides(name: str) -> None:
    """Strided views of x, w and dout give the answer of their contiguous copies."""
    rng = np.random.default_rng(0)
    x_big = rng.standard_normal((2, 6, 9, 14)).astype(np.float32)
    w_big = rng.standard_normal((3, 4, 3, 3)).astype(np.float32)
    x = x_big[:, ::2, :, ::2]  # (2, 3, 9, 7), every stride unusual
    w = w_big.transpose(1, 0, 2, 3)  # (4, 3, 3, 3), not C-contiguous
    b = np.arange(4, dtype=np.float32)
    hyper = {"stride": 2, "padding": 1}
    backend = NumpyBackend()
    backend.conv_algorithm = name
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


def _geometry(backend: NumpyBackend, x_shape, w_shape, **hyper) -> ConvGeometry:
    x = np.zeros(x_shape, np.float32)
    w = np.zeros(w_shape, np.float32)
    return backend._check_conv2d(x, w, np.zeros(w_shape[0], np.float32), 1, 0)[3]


def test_conv_dispatch_follows_preference_support_and_workspace() -> None:
    """``auto`` takes the first supporting algorithm within the workspace limit."""
    backend = NumpyBackend()
    geometry = _geometry(backend, (2, 8, 10, 10), (8, 8, 3, 3))
    assert backend.select_conv_algorithm(geometry).name == "im2col", (
        f"conv2d dispatch, backend numpy: default choice for {geometry}"
    )
    backend.conv_workspace_limit = 0  # nothing fits: the smallest workspace wins
    assert backend.select_conv_algorithm(geometry).name == "offsets", (
        f"conv2d dispatch, backend numpy: choice with no workspace for {geometry}"
    )
    backend.conv_workspace_limit = 1 << 30
    backend.conv_algorithm = "offsets"
    assert backend.select_conv_algorithm(geometry).name == "offsets", (
        "conv2d dispatch, backend numpy: conv_algorithm='offsets' not honoured"
    )
    backend.conv_algorithm = "no-such-algorithm"
    with pytest.raises(ValueError, match="conv_algorithm"):
        backend.select_conv_algorithm(geometry)


def test_a_registered_conv_algorithm_is_used_only_where_it_applies() -> None:
    """A new algorithm first in the preference runs for the shapes it supports."""
    calls: list[str] = []
    im2col = CONV_ALGORITHMS["im2col"]

    def forward(backend, x_padded, w, geometry):
        calls.append("forward")
        return im2col.forward(backend, x_padded, w, geometry)

    def backward(backend, dout, x_padded, w, geometry):
        calls.append("backward")
        return im2col.backward(backend, dout, x_padded, w, geometry)

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
    """Every registered algorithm names itself and reports a workspace size."""
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
    expected = param.astype(np.float64)
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
        rtol = 1e-5 if dtype == "float32" else 1e-12
        assert np.allclose(param, expected, rtol=rtol, atol=rtol), (
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
