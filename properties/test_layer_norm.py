r"""Layer normalization: what each sample's output must satisfy.

The contract (reference/normalization.py): each sample (an index into the
leading axes) is normalized over its last ``normalized_ndim`` axes by its own
mean and *biased* variance, :math:`\varepsilon` inside the square root, then
scaled by ``gamma`` and shifted by ``beta`` elementwise.

The properties (on every backend in float32 and float64, and on the reference):

* with :math:`\gamma = 1, \beta = 0` every sample of the output has mean 0 and
  biased variance :math:`s^2 / (s^2 + \varepsilon)`, :math:`s^2` the sample's
  biased variance;
* adding a constant to a sample changes nothing;
* multiplying a sample by :math:`a > 0` and :math:`\varepsilon` by
  :math:`a^2` changes nothing: :math:`(a x - a \mu) / \sqrt{a^2 s^2 + a^2
  \varepsilon} = (x - \mu) / \sqrt{s^2 + \varepsilon}` exactly, so no
  :math:`\varepsilon \to 0` limit is needed.

The tolerances are rounding bounds, as in ``test_batchnorm.py``: with
:math:`M` values per sample and :math:`\sigma = \sqrt{s^2 + \varepsilon}`, a
computed :math:`\hat x` errs by at most about :math:`(M + 4) u (\max|x| /
\sigma + 1)` (Higham's :math:`M u` for the sums of the mean and the variance,
relative to the spread, plus the subtraction and the division), times
:data:`SAFETY`. A transformed input rounded to the dtype adds its own
:math:`u \max|x'| / \sigma'` to that bound. Each bug named below is off by far
more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from properties import strategies
from properties import tolerance as tol
from properties.assertions import (
    Context,
    assert_close,
    call_backend,
    fixtures_shared,
    require_operations,
    to_numpy,
)

#: Multiplies the rounding bounds (each a sum of first-order terms).
SAFETY = 8.0

_EPS = st.sampled_from([1e-5, 1e-3, 1e-1])


@dataclass
class Samples:
    """One layer_norm call's inputs (float64); every sample has exact moments."""

    x: np.ndarray
    gamma: np.ndarray
    beta: np.ndarray
    normalized_ndim: int
    eps: float
    seed: int

    @property
    def axes(self) -> tuple[int, ...]:
        return tuple(range(self.x.ndim - self.normalized_ndim, self.x.ndim))

    @property
    def m(self) -> int:
        return self.gamma.size

    def rows(self, values: np.ndarray) -> np.ndarray:
        """``(samples, M)``: each sample's ``M`` normalized values."""
        return np.asarray(values).reshape(-1, self.m)


@st.composite
def samples(draw: st.DrawFn, affine: bool) -> Samples:
    r"""Samples whose means and standard deviations are drawn, at least 2 values each.

    Sample ``n`` has standard deviation ``scale_n`` in ``[1e-2, 1e2]``
    (log-uniform) and mean in ``[-5, 5] * scale_n``, exactly (each sample is
    standardised), so :math:`\varepsilon` matters at the small scales. With
    ``affine`` the parameters are drawn (``|gamma|`` in ``[0.5, 2]`` of either
    sign, ``beta`` in ``[-3, 3]``), else they are 1 and 0.
    """
    normalized_ndim = draw(st.integers(1, 3))
    leading = draw(st.lists(st.integers(1, 4), min_size=0, max_size=2))
    normalized = draw(
        st.lists(
            st.integers(1, 5), min_size=normalized_ndim, max_size=normalized_ndim
        ).filter(lambda sides: math.prod(sides) >= 2)
    )
    shape = (*leading, *normalized)
    count, m = math.prod(leading), math.prod(normalized)
    seed = draw(strategies.seeds())
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((count, m))
    z = (z - z.mean(axis=1, keepdims=True)) / z.std(axis=1, keepdims=True)
    scales = 10.0 ** np.array(
        [draw(strategies.floats(-2.0, 2.0)) for _ in range(count)]
    )
    offsets = (
        np.array([draw(strategies.floats(-5.0, 5.0)) for _ in range(count)]) * scales
    )
    x = (offsets[:, None] + scales[:, None] * z).reshape(shape)
    if affine:
        gamma = rng.uniform(0.5, 2.0, normalized) * rng.choice([-1.0, 1.0], normalized)
        beta = rng.uniform(-3.0, 3.0, normalized)
    else:
        gamma, beta = np.ones(normalized), np.zeros(normalized)
    return Samples(x, gamma, beta, normalized_ndim, draw(_EPS), seed)


def _layer_norm(
    impl: Any, dtype: str, x: np.ndarray, case: Samples, eps: float, variant: str
) -> tuple[np.ndarray, Context]:
    """The backend's layer_norm of ``x`` (already exact in ``dtype``), in float64."""
    hyper = {"normalized_ndim": case.normalized_ndim, "eps": eps}
    context = Context(
        "layer_norm",
        impl.name,
        dtype,
        {"x": x, "gamma": case.gamma, "beta": case.beta},
        {**hyper, "seed": case.seed},
        variant,
    )
    arguments = [impl.asarray(a, dtype) for a in (x, case.gamma, case.beta)]
    y = to_numpy(impl, call_backend(impl, "layer_norm", arguments, hyper, context),
                 "layer_norm output", context)  # fmt: skip
    if y.shape != x.shape or y.dtype != np.dtype(dtype):
        raise context.fail(
            f"layer_norm output: got {y.dtype}{list(y.shape)}, expected "
            f"{dtype}{list(x.shape)}"
        )
    return y.astype(np.float64), context


def _x_hat_bound(case: Samples, x: np.ndarray, eps: float, dtype: str) -> np.ndarray:
    r"""Per sample, :data:`SAFETY` :math:`(M + 4) u (\max|x| / \sigma + 1)`."""
    rows = case.rows(x)
    sigma = np.sqrt(rows.var(axis=1) + eps)
    return (
        SAFETY
        * tol.UNIT_ROUNDOFF[dtype]
        * (case.m + 4)
        * (np.abs(rows).max(axis=1) / sigma + 1.0)
    )


def _rounded(case: Samples, dtype: str) -> Samples:
    def r(a: np.ndarray) -> np.ndarray:
        return a.astype(dtype).astype(np.float64)

    return Samples(
        r(case.x), r(case.gamma), r(case.beta), case.normalized_ndim, case.eps,
        case.seed,
    )  # fmt: skip


# ---------------------------------------------------------------------------
# Each sample normalized
# ---------------------------------------------------------------------------


def check_normalizes(impl: Any, dtype: str, case: Samples) -> None:
    r"""With :math:`\gamma = 1, \beta = 0`, each sample has mean 0, variance
    :math:`s^2 / (s^2 + \varepsilon)`.

    Tolerance per sample: the :math:`\hat x` bound :math:`b` of the module for
    the mean, :math:`2 b (\max|\hat x| + b)` for the variance.

    Bugs caught: the unbiased variance (off by :math:`(M - 1)/M`, half with two
    values), :math:`\varepsilon` outside the square root or missing (visible
    at sample scales of 1e-2), statistics over the wrong axes (the batch, the
    last axis only), no centring.
    """
    case = _rounded(case, dtype)
    y, context = _layer_norm(impl, dtype, case.x, case, case.eps, "gamma 1, beta 0")
    bounds = _x_hat_bound(case, case.x, case.eps, dtype)
    for n, (values, x_hat) in enumerate(
        zip(case.rows(case.x), case.rows(y), strict=True)
    ):
        variance = values.var()
        expected_variance = variance / (variance + case.eps)
        bound = bounds[n]
        mean, var = float(x_hat.mean()), float(x_hat.var())
        details = (
            f"sample {n} of {len(bounds)}: M = {case.m} values, mean "
            f"{values.mean():.6g}, biased variance s**2 = {variance:.6g}",
            f"output: mean {mean:.6g}, biased variance {var:.8g} (expected "
            f"s**2/(s**2+eps) = {expected_variance:.8g})",
            f"tolerance {bound:.3g} (8 u (M + 4) (max|x|/sigma + 1))",
        )
        if abs(mean) > bound:
            raise context.fail(
                f"layer norm: sample {n} has mean {mean:.6g}, not 0", *details
            )
        if abs(var - expected_variance) > 2 * bound * (np.abs(x_hat).max() + bound):
            raise context.fail(
                f"layer norm: sample {n} has variance {var:.8g}, not "
                f"s**2/(s**2+eps) = {expected_variance:.8g}",
                *details,
            )


@pytest.mark.reference_too
@fixtures_shared
@given(case=samples(affine=False))
def test_layer_norm_normalizes(backend: Any, dtype: str, case: Samples) -> None:
    """See :func:`check_normalizes`."""
    require_operations(backend, "layer_norm")
    check_normalizes(backend, dtype, case)


# ---------------------------------------------------------------------------
# Invariance to shifting and scaling a sample
# ---------------------------------------------------------------------------


def check_invariance(
    impl: Any, dtype: str, case: Samples, transform: str, factors: np.ndarray
) -> None:
    r"""layer_norm of a shifted (or scaled, with :math:`a^2 \varepsilon`) input
    equals layer_norm of the input.

    ``factors`` holds one number per sample, in units of that sample's
    standard deviation for a shift (``x + c``) and as the factor ``a > 0``
    for a scale (``a x``, with ``eps`` times ``a**2``). The transformed
    input is rounded to the dtype.

    Tolerance per element: :math:`|\gamma| (b + b')` with :math:`b, b'` the
    :math:`\hat x` bounds of the two inputs, plus :math:`4 u (|\gamma|
    \max|\hat x| + |\beta|)` for the affine step.

    Bugs caught: statistics that mix samples (over the leading axes, or over
    everything), a one-pass variance :math:`E[x^2] - E[x]^2` (its cancellation
    grows with the square of the offset), :math:`\varepsilon` outside the
    square root (:math:`\sigma + \varepsilon` does not scale with
    :math:`a`), no centring.
    """
    case = _rounded(case, dtype)
    rows = case.rows(case.x)
    if transform == "shift":
        moved = rows + (factors * rows.std(axis=1))[:, None]
        eps = case.eps
    else:
        moved = rows * factors[:, None]
        eps = None
    moved = moved.reshape(case.x.shape).astype(dtype).astype(np.float64)
    y, context = _layer_norm(impl, dtype, case.x, case, case.eps, "original")
    if transform == "shift":
        y_moved, _ = _layer_norm(impl, dtype, moved, case, eps, "shifted")
        bound_moved = _x_hat_bound(case, moved, eps, dtype)
    else:
        # One call per sample: each has its own a**2 eps.
        y_moved = np.empty_like(y)
        bound_moved = np.empty(len(factors))
        leading = case.x.shape[: case.x.ndim - case.normalized_ndim]
        for n, a in enumerate(factors):
            index = np.unravel_index(n, leading) if leading else ()
            # eps stays a Python float, as everywhere else: a NumPy float64
            # scalar promotes float32 to float64 in some libraries (JAX).
            one = Samples(
                moved[index], case.gamma, case.beta, case.normalized_ndim,
                float(case.eps * a * a), case.seed,
            )  # fmt: skip
            y_moved[index], _ = _layer_norm(
                impl, dtype, one.x, one, one.eps, f"sample {n} scaled by {a:.6g}"
            )
            bound_moved[n] = _x_hat_bound(one, one.x, one.eps, dtype)[0]
    u = tol.UNIT_ROUNDOFF[dtype]
    x_hat_bound = _x_hat_bound(case, case.x, case.eps, dtype) + bound_moved
    gamma = np.abs(case.gamma).reshape(1, -1)
    beta = np.abs(case.beta).reshape(1, -1)
    x_hat = np.abs(case.rows(y) - case.beta.reshape(1, -1)) / gamma
    allowed = gamma * x_hat_bound[:, None] + 4 * u * (
        gamma * x_hat.max(axis=1, keepdims=True) + beta
    )
    what = "x + c (c per sample)" if transform == "shift" else "a x with a**2 eps"
    assert_close(
        case.rows(y_moved).astype(dtype),  # values exact in the dtype
        case.rows(y),
        dtype=dtype,
        what=f"layer_norm({what})",
        context=context,
        allowed=allowed,
        actual_label=f"layer_norm({what})",
        expected_label="layer_norm(x)",
        explain=f"factors per sample {np.array2string(factors, precision=4)}",
    )


@st.composite
def factors(draw: st.DrawFn, case: Samples, transform: str) -> np.ndarray:
    """Per sample: a shift in ``[-100, 100]`` standard deviations, or a scale
    in ``[1e-2, 1e2]`` (log-uniform)."""
    count = case.x.size // case.m
    if transform == "shift":
        return np.array([draw(strategies.floats(-100.0, 100.0)) for _ in range(count)])
    return 10.0 ** np.array([draw(strategies.floats(-2.0, 2.0)) for _ in range(count)])


@pytest.mark.reference_too
@pytest.mark.parametrize("transform", ["shift", "scale"])
@fixtures_shared
@given(data=st.data())
def test_layer_norm_invariance(backend: Any, dtype: str, transform: str, data) -> None:
    """See :func:`check_invariance`."""
    require_operations(backend, "layer_norm")
    case = data.draw(samples(affine=True))
    check_invariance(
        backend, dtype, case, transform, data.draw(factors(case, transform))
    )
