"""What the generic suite cannot see of the torch backend.

The catalog-driven properties compare every operation with the reference; these
tests hold the places where the torch backend departs from plain
``torch.nn.functional`` / ``torch.optim`` to meet the contract, each against a
float64 NumPy formula of the contract written here (not the reference), and the
torch-specific plumbing:

* loading: the CUDA backend is unavailable with a reason when CUDA is absent,
  and the module loads (both backends unavailable) without torch at all;
* ``asarray`` / ``to_numpy`` round-trip dtype and values, and copy;
* the adapted reductions (``mse_loss``, both BCEs: sum / N instead of torch's
  mean; the hinge: times C instead of ``multi_margin_loss``'s 1 / C), exact
  ``clip_grad_norm`` (no ``+1e-6``), batch-norm running statistics on clones,
  softplus past torch's threshold, the BCE gradient at the clamp;
* backwards use the caller's ``dout`` (not ``.sum()``) and send tied maxima to
  the first maximum;
* ``torch.nn.init``'s fans and gains are the contract's, and the draws have the
  contract's moments;
* optimizer steps reproduce ``torch.optim`` bit for bit when the caller passes
  the returned parameter, a clone of it, or a NumPy round trip of it, and the
  state survives ``copy.deepcopy``;
* no operation mutates its inputs, and float32 stays float32.
"""

from __future__ import annotations

import copy
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from backends import contract
from backends import torch as torch_backend
from properties import catalog
from properties.catalog.activations import ELEMENTWISE
from properties.tolerance import HAND_COMPUTED

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
CPU = torch_backend.backend
CUDA = torch_backend.cuda_backend
BACKEND_NAME = CPU.name
DTYPES = ("float32", "float64")


def _message(op: str, dtype: str, shapes: Any, hyper: Any, mismatch: str) -> str:
    return (
        f"op={op} backend={BACKEND_NAME} dtype={dtype} shapes={shapes} "
        f"hyper={hyper}: {mismatch}"
    )


def _close(
    got: Any, want: np.ndarray, dtype: str, op: str, shapes: Any, hyper: Any
) -> None:
    got = CPU.to_numpy(got)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, _message(
        op, dtype, shapes, hyper, f"shape {got.shape} != expected {want.shape}"
    )
    tolerance = HAND_COMPUTED[dtype]
    error = np.abs(got.astype(np.float64) - want)
    bound = tolerance * (1.0 + np.abs(want))
    assert np.all(error <= bound), _message(
        op,
        dtype,
        shapes,
        hyper,
        f"max abs error {float(error.max())} over tolerance {tolerance} "
        f"(relative); got {got.ravel()[:6]}, expected {want.ravel()[:6]}",
    )


def _arrays(draw_shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(draw_shape)


# ------------------------------------------------------------------- loading


def test_every_contract_operation_is_implemented() -> None:
    for backend in (CPU, CUDA):
        missing = contract.missing_operations(backend)
        assert missing == [], f"backend={backend.name}: missing operations {missing}"


def test_names_devices_and_dtypes() -> None:
    assert (CPU.name, CPU.device, CPU.dtypes) == (
        "torch",
        "cpu",
        ("float32", "float64"),
    ), f"backend torch: got {(CPU.name, CPU.device, CPU.dtypes)}"
    assert (CUDA.name, CUDA.device) == ("torch-cuda", "gpu"), (
        f"backend torch-cuda: got {(CUDA.name, CUDA.device)}"
    )
    assert CPU.unavailable_reason is None, (
        f"backend torch: unavailable with torch installed: {CPU.unavailable_reason}"
    )
    assert contract.load("torch") is CPU and contract.load("torch-cuda") is CUDA


def test_cuda_backend_reports_why_it_is_unavailable() -> None:
    if torch.cuda.is_available():
        assert CUDA.unavailable_reason is None, (
            f"backend torch-cuda: CUDA is available, yet unavailable_reason is "
            f"{CUDA.unavailable_reason!r}"
        )
        CUDA.synchronize()
        x = CUDA.asarray(np.arange(6.0).reshape(2, 3), "float32")
        assert x.device.type == "cuda", f"backend torch-cuda: asarray on {x.device}"
    else:
        assert CUDA.unavailable_reason == "CUDA is not available to torch", (
            f"backend torch-cuda without CUDA: unavailable_reason is "
            f"{CUDA.unavailable_reason!r}"
        )
        assert "torch-cuda" not in contract.available(), (
            f"backends.available() lists torch-cuda without CUDA: "
            f"{contract.available()}"
        )
        CPU.synchronize()  # a no-op on the CPU, never an error


def test_module_loads_and_says_why_without_torch() -> None:
    # `None` in sys.modules makes `import torch` raise ModuleNotFoundError.
    program = (
        "import sys\n"
        "sys.modules['torch'] = None\n"
        "from backends import contract\n"
        "from backends import torch as torch_backend\n"
        "print(repr(torch_backend.backend.unavailable_reason))\n"
        "print(repr(torch_backend.cuda_backend.unavailable_reason))\n"
        "print(contract.load('torch').name, contract.load('torch-cuda').name)\n"
        "print('torch' in contract.available())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, (
        f"backend torch: importing backends.torch without torch failed:\n"
        f"{result.stderr}"
    )
    lines = result.stdout.splitlines()
    assert lines == [
        "'PyTorch is not installed'",
        "'PyTorch is not installed'",
        "torch torch-cuda",
        "False",
    ], f"backend torch without torch: got {lines}"


# --------------------------------------------------------- asarray / to_numpy


@given(
    dtype=st.sampled_from(["float32", "float64", "int64", "int32", "bool"]),
    shape=st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple),
    seed=st.integers(0, 2**32 - 1),
    reverse=st.booleans(),
)
def test_asarray_to_numpy_round_trip(
    dtype: str, shape: tuple[int, ...], seed: int, reverse: bool
) -> None:
    values = np.random.default_rng(seed).standard_normal(shape) * 10
    host = values.astype(dtype)
    if reverse and host.ndim:
        host = host[::-1]  # negative strides, which torch.from_numpy refuses
    tensor = CPU.asarray(host, dtype)
    assert isinstance(tensor, torch.Tensor), _message(
        "asarray", dtype, shape, {}, f"returned {type(tensor).__name__}"
    )
    back = CPU.to_numpy(tensor)
    assert back.dtype == np.dtype(dtype), _message(
        "asarray/to_numpy", dtype, shape, {}, f"dtype {back.dtype} after round trip"
    )
    assert back.shape == host.shape and np.array_equal(back, host), _message(
        "asarray/to_numpy", dtype, shape, {}, "values changed in the round trip"
    )
    if host.size:
        original = back.copy()
        host_copy = np.array(host)
        tensor_again = CPU.asarray(host_copy, dtype)
        host_copy.reshape(-1)[0] = not host_copy.reshape(-1)[0]  # mutate the source
        back.reshape(-1)[0] = not back.reshape(-1)[0]  # mutate the output
        assert np.array_equal(CPU.to_numpy(tensor_again), original), _message(
            "asarray", dtype, shape, {}, "the tensor shares memory with its source"
        )
        assert np.array_equal(CPU.to_numpy(tensor), original), _message(
            "to_numpy", dtype, shape, {}, "the array shares memory with the tensor"
        )


def test_asarray_converts_between_dtypes() -> None:
    host = np.array([[0.1, -2.5], [3.0, 1e-8]])
    for dtype in DTYPES:
        tensor = CPU.asarray(host, dtype)
        assert tensor.dtype == getattr(torch, dtype), _message(
            "asarray", dtype, host.shape, {}, f"tensor dtype {tensor.dtype}"
        )
        assert CPU.to_numpy(tensor).dtype == np.dtype(dtype)
    scalar = CPU.to_numpy(
        CPU.mse_loss(CPU.asarray(host, "float32"), CPU.asarray(host, "float32"))
    )
    assert scalar.shape == () and scalar.dtype == np.float32, _message(
        "mse_loss", "float32", host.shape, {}, f"loss {scalar!r} is not a 0-d float32"
    )


# ----------------------------------------------- every op: dtype, no mutation


#: Activation calls other than ``f(x)`` with the defaults, as ``(scale of x,
#: hyperparameters)``: a hyperparameter set; softplus on inputs past 20, where
#: torch's softplus returns its input.
_ACTIVATION_CALLS: dict[str, tuple[float, dict[str, Any]]] = {
    "leaky_relu": (1.0, {"alpha": 0.1}),
    "elu": (1.0, {"alpha": 0.5}),
    "softplus": (30.0, {}),
}


def _calls_of_every_op(
    rng: np.random.Generator,
) -> list[tuple[str, list[Any], dict[str, Any]]]:
    """Small valid inputs for every differentiable op (labels and masks marked).

    The elementwise activations come from the catalog
    (:data:`properties.catalog.activations.ELEMENTWISE`), each on the same
    input; ``test_every_differentiable_op_has_a_call`` checks that the rest
    covers the catalog.
    """
    x4 = rng.standard_normal((2, 3, 5, 4))
    x2 = rng.standard_normal((4, 3))
    labels = ("labels", np.array([0, 2, 1, 2]))
    mask = ("mask", rng.random(x2.shape) >= 0.3)
    bn = [x4, rng.random(3) + 0.5, rng.standard_normal(3), rng.standard_normal(3)]
    bn.append(rng.random(3) + 0.5)
    activations = []
    for name in ELEMENTWISE:
        scale, hyper = _ACTIVATION_CALLS.get(name, (1.0, {}))
        activations.append((name, [x2 * scale], hyper))
    return [
        *activations,
        ("prelu", [x4, rng.random(3)], {}),
        ("linear", [x2, rng.standard_normal((5, 3)), rng.standard_normal(5)], {}),
        (
            "conv2d",
            [x4, rng.standard_normal((2, 3, 3, 2)), rng.standard_normal(2)],
            {"stride": (2, 1), "padding": 1},
        ),
        ("max_pool2d", [x4], {"kernel_size": 3, "stride": 2, "padding": 1}),
        ("avg_pool2d", [x4], {"kernel_size": 2}),
        ("batch_norm", bn, {"training": True, "momentum": 0.2}),
        ("batch_norm", bn, {"training": False}),
        (
            "layer_norm",
            [
                x4,
                rng.standard_normal(x4.shape[-2:]),
                rng.standard_normal(x4.shape[-2:]),
            ],
            {"normalized_ndim": 2},
        ),
        ("dropout", [x2, mask], {"p": 0.3, "training": True}),
        ("dropout", [x2, mask], {"p": 0.3, "training": False}),
        ("flatten", [x4], {}),
        ("softmax", [x4], {"axis": 1}),
        ("log_softmax", [x2], {}),
        (
            "maxout",
            [x2, rng.standard_normal((3, 2, 3)), rng.standard_normal((3, 2))],
            {},
        ),
        ("upsample2d", [x4], {"scale_factor": 2, "mode": "bilinear"}),
        ("upsample2d", [x4], {"scale_factor": 3, "mode": "nearest"}),
        ("mse_loss", [x2, rng.standard_normal(x2.shape)], {}),
        (
            "binary_cross_entropy",
            [rng.uniform(0.1, 0.9, x2.shape), rng.random(x2.shape)],
            {},
        ),
        ("binary_cross_entropy_with_logits", [x2, rng.random(x2.shape)], {}),
        ("softmax_cross_entropy", [x2, labels], {}),
        ("multiclass_hinge_loss", [x2, labels], {"margin": 1.0}),
        ("l1_penalty", [x2], {}),
        ("l2_penalty", [x2], {}),
        ("elastic_net_penalty", [x2], {"beta": 0.5}),
    ]


def _native(value: Any, dtype: str) -> Any:
    if isinstance(value, tuple):  # ("labels" | "mask", array): not a float input
        return CPU.asarray(value[1], None)
    return CPU.asarray(value, dtype)


def test_every_differentiable_op_has_a_call() -> None:
    called = {op for op, _, _ in _calls_of_every_op(np.random.default_rng(0))}
    wanted = {op.name for op in catalog.cases("deterministic", differentiable=True)}
    assert called == wanted, (
        f"_calls_of_every_op lacks {sorted(wanted - called)} and has "
        f"{sorted(called - wanted)}, which the catalog does not"
    )


def test_every_op_keeps_the_dtype_and_mutates_nothing(dtype: str) -> None:
    rng = np.random.default_rng(7)
    for op, arrays, hyper in _calls_of_every_op(rng):
        inputs = [_native(a, dtype) for a in arrays]
        before = [CPU.to_numpy(t) for t in inputs]
        shapes = [tuple(t.shape) for t in inputs]
        outputs = getattr(CPU, op)(*inputs, **hyper)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        for out in outputs:
            assert out.dtype == getattr(torch, dtype), _message(
                op, dtype, shapes, hyper, f"output dtype {out.dtype}"
            )
        dout = torch.from_numpy(rng.standard_normal(tuple(outputs[0].shape))).to(
            getattr(torch, dtype)
        )
        grads = getattr(CPU, f"{op}_backward")(dout, *inputs, **hyper)
        expected = len(inputs) if op != "batch_norm" else 3
        assert isinstance(grads, tuple) and len(grads) == expected, _message(
            op,
            dtype,
            shapes,
            hyper,
            f"backward returned {type(grads).__name__} "
            f"of length {len(grads)}, expected a tuple of {expected}",
        )
        for value, tensor, grad in zip(arrays, inputs, grads, strict=False):
            if isinstance(value, tuple):
                assert grad is None, _message(
                    op, dtype, shapes, hyper, f"gradient for the {value[0]} is not None"
                )
                continue
            assert grad.dtype == tensor.dtype and grad.shape == tensor.shape, _message(
                op,
                dtype,
                shapes,
                hyper,
                f"gradient {grad.dtype} {tuple(grad.shape)} for an input "
                f"{tensor.dtype} {tuple(tensor.shape)}",
            )
        for index, (tensor, old) in enumerate(zip(inputs, before, strict=True)):
            assert np.array_equal(CPU.to_numpy(tensor), old), _message(
                op, dtype, shapes, hyper, f"input {index} was mutated"
            )
            for out in outputs:
                assert out.data_ptr() != tensor.data_ptr() or out.numel() == 0, (
                    _message(
                        op, dtype, shapes, hyper, f"an output aliases input {index}"
                    )
                )


# ------------------------------------------------------- adapted reductions


@given(
    batch=st.integers(1, 5),
    features=st.lists(st.integers(1, 4), min_size=0, max_size=2).map(tuple),
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from(DTYPES),
)
def test_losses_sum_over_features_and_mean_over_the_batch(
    batch: int, features: tuple[int, ...], seed: int, dtype: str
) -> None:
    rng = np.random.default_rng(seed)
    shape = (batch, *features)
    pred, target = rng.standard_normal(shape), rng.random(shape)
    prob = rng.uniform(0.05, 0.95, shape)
    n = batch
    expected = {
        "mse_loss": ((pred, target), np.sum((pred - target) ** 2) / n),
        "binary_cross_entropy": (
            (prob, target),
            -np.sum(target * np.log(prob) + (1 - target) * np.log(1 - prob)) / n,
        ),
        "binary_cross_entropy_with_logits": (
            (pred, target),
            -np.sum(
                target * np.log(1 / (1 + np.exp(-pred)))
                + (1 - target) * np.log(1 - 1 / (1 + np.exp(-pred)))
            )
            / n,
        ),
    }
    gradients = {
        "mse_loss": 2 * (pred - target) / n,
        "binary_cross_entropy": -(target / prob - (1 - target) / (1 - prob)) / n,
        "binary_cross_entropy_with_logits": (1 / (1 + np.exp(-pred)) - target) / n,
    }
    dout = float(rng.standard_normal())
    for op, (arrays, value) in expected.items():
        inputs = [CPU.asarray(a, dtype) for a in arrays]
        loss = getattr(CPU, op)(*inputs)
        assert loss.ndim == 0, _message(
            op, dtype, shape, {}, f"loss shape {loss.shape}"
        )
        _close(loss, value, dtype, op, shape, {})
        # torch's default reduction="mean" would give value * n / numel.
        grad = getattr(CPU, f"{op}_backward")(
            CPU.asarray(np.array(dout), dtype), *inputs
        )
        _close(grad[0], dout * gradients[op], dtype, f"{op}_backward", shape, {})


@given(
    batch=st.integers(1, 5),
    classes=st.integers(1, 6),
    margin=st.sampled_from([0.0, 0.5, 1.0, 3.0]),
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from(DTYPES),
)
def test_hinge_loss_sums_over_wrong_classes_without_the_class_count(
    batch: int, classes: int, margin: float, seed: int, dtype: str
) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.standard_normal((batch, classes)) * 2
    labels = rng.integers(0, classes, batch)
    correct = scores[np.arange(batch), labels][:, None]
    margins = np.maximum(0.0, scores - correct + margin)
    margins[np.arange(batch), labels] = 0.0
    active = (margins > 0).astype(np.float64)
    active[np.arange(batch), labels] = -active.sum(axis=1)
    hyper = {"margin": margin}
    native = [CPU.asarray(scores, dtype), CPU.asarray(labels, None)]
    loss = CPU.multiclass_hinge_loss(*native, **hyper)
    _close(
        loss, margins.sum() / batch, dtype, "multiclass_hinge_loss", scores.shape, hyper
    )
    dout = float(rng.standard_normal())
    dscores, dlabels = CPU.multiclass_hinge_loss_backward(
        CPU.asarray(np.array(dout), dtype), *native, **hyper
    )
    assert dlabels is None
    _close(
        dscores,
        dout * active / batch,
        dtype,
        "multiclass_hinge_loss_backward",
        scores.shape,
        hyper,
    )


def test_binary_cross_entropy_gradient_at_the_clamp() -> None:
    # torch's own backward is (p - t) / max(p (1 - p), 1e-12): -1e12 at p = 0,
    # t = 1, where the clamped log is constant; the contract's gradient is 0.
    prob = np.array([[0.0, 1.0, 1e-13, 0.5]])
    target = np.array([[1.0, 0.0, 1.0, 0.25]])
    dprob, dtarget = CPU.binary_cross_entropy_backward(
        1.0, CPU.asarray(prob, "float64"), CPU.asarray(target, "float64")
    )
    clamped_log_p = np.log(np.maximum(prob, math.exp(-100)))
    clamped_log_q = np.log(np.maximum(1 - prob, math.exp(-100)))
    want_dprob = [[0.0, 0.0, -1e13, -(0.25 / 0.5 - 0.75 / 0.5)]]
    _close(
        dprob, want_dprob, "float64", "binary_cross_entropy_backward", prob.shape, {}
    )
    _close(
        dtarget,
        -(clamped_log_p - clamped_log_q),
        "float64",
        "binary_cross_entropy_backward",
        prob.shape,
        {},
    )


def test_softplus_is_exact_past_torchs_threshold_in_float64() -> None:
    x = np.array([-40.0, 0.0, 19.5, 20.5, 25.0, 33.0, 39.9, 40.5, 700.0, 1e4])
    native = CPU.asarray(x, "float64")
    want = np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)
    got = CPU.to_numpy(CPU.softplus(native))
    assert np.allclose(got, want, rtol=1e-15, atol=0), _message(
        "softplus", "float64", x.shape, {}, f"got {got}, expected {want}"
    )
    grad = CPU.to_numpy(
        CPU.softplus_backward(CPU.asarray(np.ones_like(x), "float64"), native)[0]
    )
    e = np.exp(-np.abs(x))
    want_grad = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
    assert np.allclose(grad, want_grad, rtol=1e-15, atol=1e-300), _message(
        "softplus_backward", "float64", x.shape, {}, f"got {grad}, expected {want_grad}"
    )


# ------------------------------------------------------------- clipping


@given(
    sizes=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    log_ratio=st.floats(-6, 6),
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from(DTYPES),
)
def test_clip_grad_norm_scales_by_exactly_max_norm_over_total(
    sizes: list[int], log_ratio: float, seed: int, dtype: str
) -> None:
    rng = np.random.default_rng(seed)
    grads = [rng.standard_normal(size) * 1e-3 for size in sizes]
    total = math.sqrt(sum(float(np.sum(g**2)) for g in grads))
    max_norm = total * 10.0**log_ratio
    hyper = {"max_norm": max_norm}
    shapes = [g.shape for g in grads]
    native = [CPU.asarray(g, dtype) for g in grads]
    before = [CPU.to_numpy(t) for t in native]
    clipped, total_norm = CPU.clip_grad_norm(native, max_norm=max_norm)
    native_total = math.sqrt(
        sum(float(np.sum(b.astype(np.float64) ** 2)) for b in before)
    )
    assert isinstance(total_norm, float), _message(
        "clip_grad_norm", dtype, shapes, hyper, f"total_norm is {type(total_norm)}"
    )
    assert math.isclose(total_norm, native_total, rel_tol=1e-12), _message(
        "clip_grad_norm", dtype, shapes, hyper, f"total {total_norm} != {native_total}"
    )
    scale = max_norm / native_total if native_total > max_norm else 1.0
    for got, old in zip(clipped, before, strict=True):
        _close(
            got, old.astype(np.float64) * scale, dtype, "clip_grad_norm", shapes, hyper
        )
    for tensor, old in zip(native, before, strict=True):
        assert np.array_equal(CPU.to_numpy(tensor), old), _message(
            "clip_grad_norm", dtype, shapes, hyper, "a gradient was clipped in place"
        )
    if dtype == "float64" and native_total > max_norm:
        # The contract's clipped norm is max_norm itself; torch's clip_grad_norm_
        # (divisor total + 1e-6) falls short by a relative 1e-6 / total >= 1e-3.
        new_norm = math.sqrt(sum(float(np.sum(CPU.to_numpy(g) ** 2)) for g in clipped))
        assert math.isclose(new_norm, max_norm, rel_tol=1e-12), _message(
            "clip_grad_norm", dtype, shapes, hyper, f"clipped norm {new_norm}"
        )


# ----------------------------------------------------------- batch norm


@given(
    image=st.booleans(),
    training=st.booleans(),
    momentum=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from(DTYPES),
)
def test_batch_norm_running_statistics_on_clones(
    image: bool, training: bool, momentum: float, seed: int, dtype: str
) -> None:
    rng = np.random.default_rng(seed)
    shape = (3, 2, 4, 3) if image else (5, 2)
    x = rng.standard_normal(shape) * 3 + 1
    gamma, beta = rng.standard_normal(2), rng.standard_normal(2)
    mean, var = rng.standard_normal(2), rng.random(2) + 0.5
    eps = 1e-5
    hyper = {"training": training, "momentum": momentum, "eps": eps}
    native = [CPU.asarray(a, dtype) for a in (x, gamma, beta, mean, var)]
    y, new_mean, new_var = CPU.batch_norm(*native, **hyper)
    axes = (0, 2, 3) if image else (0,)
    view = (1, 2, 1, 1) if image else (1, 2)
    if training:
        count = x.size // 2
        batch_mean = x.mean(axis=axes)
        batch_var = x.var(axis=axes)
        x_hat = (x - batch_mean.reshape(view)) / np.sqrt(batch_var.reshape(view) + eps)
        want_mean = (1 - momentum) * mean + momentum * batch_mean
        unbiased = batch_var * count / (count - 1)
        want_var = (1 - momentum) * var + momentum * unbiased
    else:
        x_hat = (x - mean.reshape(view)) / np.sqrt(var.reshape(view) + eps)
        want_mean, want_var = mean, var
    want_y = gamma.reshape(view) * x_hat + beta.reshape(view)
    _close(y, want_y, dtype, "batch_norm", shape, hyper)
    _close(new_mean, want_mean, dtype, "batch_norm[running_mean]", shape, hyper)
    _close(new_var, want_var, dtype, "batch_norm[running_var]", shape, hyper)
    # F.batch_norm writes the running stats in place: the inputs must not move,
    # and the returned ones (copies in eval) must be new tensors.
    _close(native[3], mean, dtype, "batch_norm (input running_mean)", shape, hyper)
    _close(native[4], var, dtype, "batch_norm (input running_var)", shape, hyper)
    assert new_mean.data_ptr() != native[3].data_ptr(), _message(
        "batch_norm", dtype, shape, hyper, "new_running_mean is the input tensor"
    )
    assert new_var.data_ptr() != native[4].data_ptr(), _message(
        "batch_norm", dtype, shape, hyper, "new_running_var is the input tensor"
    )


# --------------------------------------------------- backward plumbing


@given(seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from(DTYPES))
def test_backward_uses_the_given_dout(seed: int, dtype: str) -> None:
    rng = np.random.default_rng(seed)
    x, w, b = (
        rng.standard_normal((4, 3)),
        rng.standard_normal((5, 3)),
        rng.standard_normal(5),
    )
    dout = rng.standard_normal((4, 5))
    native = [CPU.asarray(a, dtype) for a in (x, w, b)]
    dx, dw, db = CPU.linear_backward(CPU.asarray(dout, dtype), *native)
    shapes = (x.shape, w.shape, b.shape)
    _close(dx, dout @ w, dtype, "linear_backward[dx]", shapes, {})
    _close(dw, dout.T @ x, dtype, "linear_backward[dw]", shapes, {})
    _close(db, dout.sum(axis=0), dtype, "linear_backward[db]", shapes, {})
    z = x @ w.T
    (drelu,) = CPU.relu_backward(CPU.asarray(dout, dtype), CPU.asarray(z, dtype))
    _close(drelu, dout * (z > 0), dtype, "relu_backward", dout.shape, {})


def test_ties_send_the_gradient_to_the_first_maximum() -> None:
    x = np.ones((1, 1, 2, 2))
    (dx,) = CPU.max_pool2d_backward(
        CPU.asarray(np.full((1, 1, 1, 1), 3.0), "float64"),
        CPU.asarray(x, "float64"),
        kernel_size=2,
    )
    want = np.array([[[[3.0, 0.0], [0.0, 0.0]]]])
    _close(dx, want, "float64", "max_pool2d_backward", x.shape, {"kernel_size": 2})
    # Two identical maxout pieces: every gradient goes to piece 0.
    xm = np.array([[1.0, -2.0]])
    w = np.stack([np.eye(2), np.eye(2)])
    b = np.zeros((2, 2))
    _, dw, db = CPU.maxout_backward(
        CPU.asarray(np.array([[2.0, 5.0]]), "float64"),
        *(CPU.asarray(a, "float64") for a in (xm, w, b)),
    )
    _close(db, [[2.0, 5.0], [0.0, 0.0]], "float64", "maxout_backward[db]", w.shape, {})
    want_dw = np.stack([np.outer([2.0, 5.0], xm[0]), np.zeros((2, 2))])
    _close(dw, want_dw, "float64", "maxout_backward[dw]", w.shape, {})


@given(
    scale=st.integers(1, 9),
    height=st.integers(1, 40),
    width=st.integers(1, 40),
    seed=st.integers(0, 2**32 - 1),
)
def test_nearest_upsampling_repeats_each_pixel(
    scale: int, height: int, width: int, seed: int
) -> None:
    # F.interpolate(mode="nearest") computes floor(i * (1 / scale)) in float;
    # the contract's floor(i / scale) is an exact repetition.
    x = np.random.default_rng(seed).standard_normal((1, 2, height, width))
    hyper = {"scale_factor": scale, "mode": "nearest"}
    got = CPU.upsample2d(CPU.asarray(x, "float32"), **hyper)
    want = x.repeat(scale, axis=2).repeat(scale, axis=3)
    _close(got, want.astype(np.float32), "float32", "upsample2d", x.shape, hyper)


# --------------------------------------------------------- initializers


@given(
    shape=st.one_of(
        st.tuples(st.integers(1, 50), st.integers(1, 50)),
        st.tuples(*[st.integers(1, 7)] * 4),
    )
)
def test_torch_fans_are_the_contracts(shape: tuple[int, ...]) -> None:
    receptive = math.prod(shape[2:])
    fan_in, fan_out = shape[1] * receptive, shape[0] * receptive
    torch_fans = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    assert torch_fans == (fan_in, fan_out), (
        f"op=initialize backend={BACKEND_NAME} shape={shape}: torch's fans "
        f"{torch_fans} != contract's {(fan_in, fan_out)}"
    )


@given(negative_slope=st.floats(0, 5))
def test_torch_gains_are_the_contracts(negative_slope: float) -> None:
    gain = torch.nn.init.calculate_gain("leaky_relu", negative_slope)
    assert math.isclose(gain, math.sqrt(2 / (1 + negative_slope**2)), rel_tol=1e-14), (
        f"op=initialize backend={BACKEND_NAME} negative_slope={negative_slope}: "
        f"torch's leaky_relu gain {gain}"
    )
    assert torch.nn.init.calculate_gain("linear") == 1.0
    # kaiming_uniform_(a=sqrt(5)), torch's nn.Linear default, is U(+-1/sqrt(fan_in)).
    fifth = torch.nn.init.calculate_gain("leaky_relu", math.sqrt(5))
    assert math.isclose(fifth * math.sqrt(3.0), 1.0, rel_tol=1e-14)


def _contract_bound_or_std(name: str, fan_in: int, fan_out: int, hyper: dict) -> float:
    gain = math.sqrt(2 / (1 + hyper.get("negative_slope", 0.0) ** 2))
    return {
        "normal": hyper.get("std", 0.01),
        "uniform_fan_in": 1 / math.sqrt(fan_in),
        "lecun_normal": 1 / math.sqrt(fan_in),
        "xavier_normal": math.sqrt(2 / (fan_in + fan_out)),
        "xavier_uniform": math.sqrt(6 / (fan_in + fan_out)),
        "he_normal": gain / math.sqrt(fan_in),
        "he_uniform": gain * math.sqrt(3 / fan_in),
    }[name]


@pytest.mark.parametrize(
    ("name", "hyper"),
    [
        ("normal", {}),
        ("normal", {"std": 0.3}),
        ("uniform_fan_in", {}),
        ("lecun_normal", {}),
        ("xavier_normal", {}),
        ("xavier_uniform", {}),
        ("he_normal", {}),
        ("he_normal", {"negative_slope": 0.2}),
        ("he_uniform", {}),
        ("he_uniform", {"negative_slope": 0.2}),
    ],
)
@pytest.mark.parametrize("shape", [(400, 250), (64, 20, 5, 5)])
def test_initializer_moments_match_the_contract(
    name: str, hyper: dict, shape: tuple[int, ...], dtype: str
) -> None:
    receptive = math.prod(shape[2:])
    fan_in, fan_out = shape[1] * receptive, shape[0] * receptive
    scale = _contract_bound_or_std(name, fan_in, fan_out, hyper)
    uniform = name.endswith("uniform") or name == "uniform_fan_in"
    variance = scale**2 / 3 if uniform else scale**2
    w = CPU.to_numpy(CPU.initialize(name, shape, seed=11, dtype=dtype, **hyper))
    n = w.size
    assert w.shape == shape and w.dtype == np.dtype(dtype), _message(
        "initialize", dtype, shape, {"name": name, **hyper}, f"{w.shape} {w.dtype}"
    )
    sample = w.astype(np.float64)
    # Six standard errors: the variance of a sample variance is about
    # (m4 - s^4) / n, with m4 = 9/5 s^4 (uniform) or 3 s^4 (normal).
    kurtosis = 9 / 5 if uniform else 3.0
    variance_error = variance * math.sqrt((kurtosis - 1) / n)
    assert abs(sample.var() - variance) < 6 * variance_error, _message(
        "initialize",
        dtype,
        shape,
        {"name": name, **hyper},
        f"sample variance {sample.var()} vs contract {variance}",
    )
    assert abs(sample.mean()) < 6 * math.sqrt(variance / n), _message(
        "initialize", dtype, shape, {"name": name, **hyper}, f"mean {sample.mean()}"
    )
    if uniform:
        assert np.abs(sample).max() <= scale * (1 + 1e-6), _message(
            "initialize",
            dtype,
            shape,
            {"name": name, **hyper},
            f"max |w| {np.abs(sample).max()} beyond the bound {scale}",
        )
    again = CPU.to_numpy(CPU.initialize(name, shape, seed=11, dtype=dtype, **hyper))
    other = CPU.to_numpy(CPU.initialize(name, shape, seed=12, dtype=dtype, **hyper))
    assert np.array_equal(w, again) and not np.array_equal(w, other), _message(
        "initialize",
        dtype,
        shape,
        {"name": name, **hyper},
        "the draw is not a function of the seed alone",
    )


def test_dropout_mask_is_seeded_and_keeps_one_minus_p() -> None:
    shape = (200, 300)
    for p in (0.0, 0.2, 0.5, 0.9):
        mask = CPU.dropout_mask(shape, p=p, seed=5)
        assert mask.dtype == torch.bool and tuple(mask.shape) == shape
        kept = float(mask.double().mean())
        n = math.prod(shape)
        assert abs(kept - (1 - p)) <= 6 * math.sqrt(p * (1 - p) / n) + 1e-12, _message(
            "dropout_mask", "bool", shape, {"p": p}, f"kept fraction {kept}"
        )
        assert torch.equal(mask, CPU.dropout_mask(shape, p=p, seed=5))
    assert not torch.equal(
        CPU.dropout_mask(shape, p=0.5, seed=5), CPU.dropout_mask(shape, p=0.5, seed=6)
    )


# ------------------------------------------------------------- optimizers

OPTIMIZER_CASES = [
    ("sgd", "SGD", {"lr": 0.1}, {"lr": 0.1}),
    (
        "sgd",
        "SGD",
        {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
        {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
    ),
    ("sgd", "SGD", {"lr": 0.05, "momentum": 0.5}, {"lr": 0.05, "momentum": 0.5}),
    ("adagrad", "Adagrad", {"lr": 0.1}, {"lr": 0.1}),
    ("adagrad", "Adagrad", {"lr": 0.1, "eps": 1e-3}, {"lr": 0.1, "eps": 1e-3}),
    ("rmsprop", "RMSprop", {"lr": 0.01}, {"lr": 0.01}),
    (
        "rmsprop",
        "RMSprop",
        {"lr": 0.01, "alpha": 0.9, "eps": 1e-4},
        {"lr": 0.01, "alpha": 0.9, "eps": 1e-4},
    ),
    ("adadelta", "Adadelta", {}, {}),
    (
        "adadelta",
        "Adadelta",
        {"lr": 0.5, "rho": 0.7, "eps": 1e-4},
        {"lr": 0.5, "rho": 0.7, "eps": 1e-4},
    ),
    ("adam", "Adam", {"lr": 0.01}, {"lr": 0.01}),
    (
        "adam",
        "Adam",
        {"lr": 0.01, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6, "weight_decay": 0.1},
        {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1},
    ),
]


def _torch_optim_trajectory(
    class_name: str, torch_hyper: dict, param: Any, grads: list[Any]
) -> list[Any]:
    own = torch.nn.Parameter(param.clone())
    optimizer = getattr(torch.optim, class_name)([own], foreach=False, **torch_hyper)
    trajectory = []
    for grad in grads:
        own.grad = grad.clone()
        optimizer.step()
        trajectory.append(own.detach().clone())
    return trajectory


@pytest.mark.parametrize(
    ("name", "class_name", "hyper", "torch_hyper"),
    OPTIMIZER_CASES,
    ids=[f"{case[0]}-{i}" for i, case in enumerate(OPTIMIZER_CASES)],
)
def test_optimizer_steps_are_torch_optim_whatever_param_object(
    name: str, class_name: str, hyper: dict, torch_hyper: dict, dtype: str
) -> None:
    rng = np.random.default_rng(3)
    shape = (4, 3)
    param = CPU.asarray(rng.standard_normal(shape), dtype)
    grads = [CPU.asarray(rng.standard_normal(shape), dtype) for _ in range(12)]
    grads_before = [g.clone() for g in grads]
    param_before = param.clone()
    want = _torch_optim_trajectory(class_name, torch_hyper, param, grads)
    op = f"{name}_step"
    # Three callers: one threads the returned param, one passes a clone of it each
    # step, one round-trips it through NumPy; each must follow torch.optim.
    for mode in ("thread", "clone", "numpy"):
        state = CPU.init_state(name, param)
        current = param
        for step, grad in enumerate(grads):
            if mode == "clone":
                current = current.clone()
            elif mode == "numpy":
                current = CPU.asarray(CPU.to_numpy(current), dtype)
            current, state = getattr(CPU, op)(current, grad, state, **hyper)
            assert current.dtype == getattr(torch, dtype), _message(
                op, dtype, shape, hyper, f"param dtype {current.dtype}"
            )
            assert torch.equal(current, want[step]), _message(
                op,
                dtype,
                shape,
                hyper,
                f"caller {mode!r}, step {step + 1}: max difference from torch.optim "
                f"{float((current - want[step]).abs().max())}",
            )
    assert torch.equal(param, param_before), _message(
        op, dtype, shape, hyper, "the caller's first param was mutated"
    )
    for grad, before in zip(grads, grads_before, strict=True):
        assert torch.equal(grad, before), _message(
            op, dtype, shape, hyper, "grad mutated"
        )


def test_optimizer_state_survives_deepcopy() -> None:
    rng = np.random.default_rng(4)
    param = CPU.asarray(rng.standard_normal(5), "float64")
    grads = [CPU.asarray(rng.standard_normal(5), "float64") for _ in range(6)]
    hyper = {"lr": 0.01}
    state = CPU.init_state("adam", param)
    for grad in grads[:3]:
        param, state = CPU.adam_step(param, grad, state, **hyper)
    forked_param, forked_state = copy.deepcopy((param, state))
    for grad in grads[3:]:
        forked_param, forked_state = CPU.adam_step(
            forked_param, grad, forked_state, **hyper
        )
    untouched = param.clone()
    for grad in grads[3:]:
        param, state = CPU.adam_step(param, grad, state, **hyper)
    assert torch.equal(param, forked_param), _message(
        "adam_step", "float64", (5,), hyper, "a deep-copied state took another path"
    )
    assert not torch.equal(untouched, param), "adam_step: the parameter did not move"


def test_optimizer_rejects_a_state_of_another_optimizer() -> None:
    param = CPU.asarray(np.ones(3), "float64")
    state = CPU.init_state("sgd", param)
    with pytest.raises(ValueError, match="state"):
        CPU.adam_step(param, param, state, lr=0.1)
