r"""Batch normalization in training and in eval.

The contract (reference/normalization.py): per feature of an
``(N, D)`` input, per channel over ``(N, H, W)`` of an ``(N, C, H, W)`` one,
training normalises by the batch mean and the *biased* batch variance and
updates ``running = (1 - momentum) running + momentum batch`` with the
*unbiased* variance; eval uses the running statistics and returns copies of
them; backward returns ``(dx, dgamma, dbeta)``.

The properties (each runs for the 1d and the 2d layout, on every backend in
float32 and float64, and on the reference):

* training output, before the affine step, has per-channel mean 0 and
  variance :math:`s^2/(s^2+\varepsilon)` (1 up to eps), and is an increasing
  affine function of the input within a channel;
* the running statistics follow the momentum rule with the unbiased variance
  over several steps, and the inputs are not modified;
* eval uses the running statistics, is deterministic, and a sample's output
  does not depend on the rest of the batch;
* training output does depend on the rest of the batch;
* folding eval batch norm into the preceding conv (2d) or linear (1d) layer's
  weights and bias gives the same output;
* training gradients include the batch-statistics terms: per channel
  :math:`\sum_i dx_i = 0` and
  :math:`\sum_i dx_i (x_i - \mu) = \gamma \varepsilon/(s^2+\varepsilon)\, d\gamma`;
  eval gradients are :math:`\gamma\,dout/\sqrt{v+\varepsilon}`.

None is statistical: every draw is fixed by a Hypothesis-drawn seed and the
tolerances are rounding bounds (units of roundoff times the sizes of the sums
involved), so a correct backend never fails, and each bug named below is off
by far more than the tolerance.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from properties import strategies
from properties.assertions import (
    Context,
    assert_close,
    assert_unchanged,
    call_backend,
    expect_tuple,
    fixtures_shared,
    require_operations,
    to_numpy,
)
from properties.tolerance import ATOL, DERIVED_FACTOR, RTOL, UNIT_ROUNDOFF
from reference import layers as reference_layers

LAYOUTS = ("1d", "2d")


@functools.cache
def _integers(low: int, high: int) -> st.SearchStrategy[int]:
    return st.integers(low, high)


_SIGNS = st.sampled_from([-1.0, 1.0])
_EPS = st.sampled_from([1e-5, 1e-3, 1e-1])
_MOMENTUM = st.one_of(
    st.just(0.1), st.sampled_from([0.0, 1.0]), strategies.floats(0.05, 1.0)
)


def _axes(x: np.ndarray) -> tuple[int, ...]:
    return (0,) if x.ndim == 2 else (0, 2, 3)


def _per_channel(values: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.asarray(values).reshape((1, -1) + (1,) * (x.ndim - 2))


def _channel_rows(x: np.ndarray) -> np.ndarray:
    """``(C, m)``: each channel's ``m`` values."""
    return np.moveaxis(x, 1, 0).reshape(x.shape[1], -1)


@dataclass
class Batch:
    """One batch-norm call's inputs (float64, already rounded to the dtype)."""

    x: np.ndarray
    gamma: np.ndarray
    beta: np.ndarray
    running_mean: np.ndarray
    running_var: np.ndarray
    eps: float
    momentum: float
    seed: int

    @property
    def m(self) -> int:
        return self.x.size // self.x.shape[1]

    def hyper(self, training: bool) -> dict[str, Any]:
        return {"training": training, "momentum": self.momentum, "eps": self.eps}

    def rounded(self, dtype: str) -> Batch:
        def r(a: np.ndarray) -> np.ndarray:
            return a.astype(dtype).astype(np.float64)

        return replace(
            self,
            x=r(self.x),
            gamma=r(self.gamma),
            beta=r(self.beta),
            running_mean=r(self.running_mean),
            running_var=r(self.running_var),
        )

    def native(self, impl: Any, dtype: str) -> list[Any]:
        return [
            impl.asarray(a, dtype)
            for a in (
                self.x,
                self.gamma,
                self.beta,
                self.running_mean,
                self.running_var,
            )
        ]


def _shape(draw: st.DrawFn, layout: str, min_batch: int) -> tuple[int, ...]:
    channels = draw(_integers(1, 4))
    if layout == "1d":
        return (draw(_integers(max(min_batch, 2), 48)), channels)
    height, width = draw(_integers(1, 6)), draw(_integers(1, 6))
    least = max(min_batch, 1 if height * width >= 2 else 2)
    return (draw(_integers(least, 4)), channels, height, width)


def _channel_values(rng: np.random.Generator, shape, offsets, scales) -> np.ndarray:
    """Values whose channel ``c`` has mean ``offsets[c]``, std ``scales[c]`` exactly."""
    z = rng.standard_normal(shape)
    axes = (0,) if len(shape) == 2 else (0, 2, 3)
    z = (z - z.mean(axis=axes, keepdims=True)) / z.std(axis=axes, keepdims=True)
    return np.asarray(offsets).reshape((1, -1) + (1,) * (len(shape) - 2)) + (
        np.asarray(scales).reshape((1, -1) + (1,) * (len(shape) - 2)) * z
    )


@st.composite
def batches(draw: st.DrawFn, layout: str, min_batch: int = 1) -> Batch:
    r"""A batch whose channels have drawn means and standard deviations.

    Channel ``c`` has mean in ``[-5, 5] * scale_c`` and standard deviation
    ``scale_c`` in ``[1e-2, 1e2]`` (log-uniform) exactly (the draw is
    standardised), so :math:`\varepsilon` matters at the small scales (where
    an eps outside the square root, or none, is visible) and the mean offset
    is at most 5 standard deviations (float32 keeps ~6 digits of
    :math:`x - \mu`).
    """
    shape = _shape(draw, layout, min_batch)
    channels = shape[1]

    def per_channel(low: float, high: float) -> np.ndarray:
        return np.array([draw(strategies.floats(low, high)) for _ in range(channels)])

    scales = 10.0 ** per_channel(-2.0, 2.0)
    offsets = per_channel(-5.0, 5.0) * scales
    seed = draw(strategies.seeds())
    rng = np.random.default_rng(seed)
    x = _channel_values(rng, shape, offsets, scales)
    signs = np.array([draw(_SIGNS) for _ in range(channels)])
    gamma = signs * per_channel(0.5, 2.0)
    beta = per_channel(-3.0, 3.0)
    running_mean = offsets + scales * per_channel(-1.0, 1.0)
    running_var = scales**2 * 10.0 ** per_channel(-1.0, 1.0)
    eps = draw(_EPS)
    momentum = draw(_MOMENTUM)
    return Batch(x, gamma, beta, running_mean, running_var, eps, momentum, seed)


def _context(
    impl: Any, dtype: str, op: str, batch: Batch, variant: str, **extra
) -> Context:
    return Context(
        op=op,
        backend=impl.name,
        dtype=dtype,
        inputs={"x": batch.x.shape},
        hyper={
            "eps": batch.eps,
            "momentum": batch.momentum,
            "seed": batch.seed,
            **extra,
        },
        variant=variant,
    )


def _forward(impl: Any, dtype: str, batch: Batch, training: bool, context: Context):
    """``(y, new_running_mean, new_running_var)`` on the host."""
    result = call_backend(
        impl, "batch_norm", batch.native(impl, dtype), batch.hyper(training), context
    )
    result = expect_tuple(result, 3, "batch_norm", impl.name, "batch_norm", context)
    return tuple(
        to_numpy(impl, value, "batch_norm output", context) for value in result
    )


# ---------------------------------------------------------------------------
# Training normalises
# ---------------------------------------------------------------------------


def check_train_normalizes(impl: Any, dtype: str, layout: str, batch: Batch) -> None:
    r"""Before the affine step, each training channel has mean 0 and variance ~1.

    From the output, :math:`\hat x = (y - \beta)/\gamma` (in float64) must
    have, per channel over its :math:`m` values, mean 0 and biased variance
    :math:`s^2/(s^2+\varepsilon)` where :math:`s^2` is the channel's biased
    batch variance (1 up to :math:`\varepsilon`), and be an increasing affine
    function of :math:`x` (least-squares residual 0, positive slope).

    Tolerance per channel: :math:`8u(m+4)(\max|x|/\sigma + \max|\beta/\gamma|
    + 1)` with :math:`\sigma = \sqrt{s^2+\varepsilon}`: the float32 error of a
    mean over :math:`m` values relative to the spread, of the division, and of
    the affine step undone (Higham's :math:`m u` bound for a sum).

    Bugs caught: normalising by the unbiased variance (variance off by
    :math:`(m-1)/m`), :math:`\varepsilon` outside the square root or missing
    (visible at channel scales of 1e-2), statistics over the wrong axes (2d
    per pixel over ``N`` only, or over ``C``: not one affine map per channel),
    ``gamma`` and ``beta`` swapped, the affine step missing, running
    statistics used in training.
    """
    batch = batch.rounded(dtype)
    context = _context(impl, dtype, "batch_norm", batch, f"{layout}-train")
    y, _, _ = _forward(impl, dtype, batch, True, context)
    if y.shape != batch.x.shape or y.dtype != np.dtype(dtype):
        raise context.fail(
            f"batch_norm output: got {y.dtype}{list(y.shape)}, expected "
            f"{dtype}{list(batch.x.shape)}"
        )
    x_rows = _channel_rows(batch.x)
    x_hat_rows = _channel_rows(
        (y.astype(np.float64) - _per_channel(batch.beta, y))
        / _per_channel(batch.gamma, y)
    )
    u = UNIT_ROUNDOFF[dtype]
    for c in range(batch.x.shape[1]):
        values, x_hat = x_rows[c], x_hat_rows[c]
        variance = values.var()
        sigma = math.sqrt(variance + batch.eps)
        bound = (
            DERIVED_FACTOR
            * u
            * (batch.m + 4)
            * (np.abs(values).max() / sigma + abs(batch.beta[c] / batch.gamma[c]) + 1.0)
        )
        expected_variance = variance / (variance + batch.eps)
        mean, var = float(x_hat.mean()), float(x_hat.var())
        centred = values - values.mean()
        slope = float(centred @ x_hat / (centred @ centred))
        residual = float(np.abs(x_hat - x_hat.mean() - slope * centred).max())
        details = (
            f"channel {c} of {batch.x.shape[1]}: m = {batch.m} values, batch mean "
            f"{values.mean():.6g}, biased batch variance s**2 = {variance:.6g}, "
            f"gamma {batch.gamma[c]:.6g}, beta {batch.beta[c]:.6g}",
            f"x_hat = (y - beta) / gamma: mean {mean:.6g}, biased variance {var:.8g} "
            f"(expected s**2/(s**2+eps) = {expected_variance:.8g}), affine residual "
            f"{residual:.3g}, slope {slope:.6g} (expected "
            f"1/sqrt(s**2+eps) = {1 / sigma:.6g})",
            f"tolerance {bound:.3g} (8 u (m + 4) (max|x|/sigma + |beta/gamma| + 1))",
        )
        if abs(mean) > bound:
            raise context.fail(
                f"batch norm train: channel {c} mean before the affine step is "
                f"{mean:.6g}, not 0",
                *details,
            )
        if abs(var - expected_variance) > 2 * bound * (np.abs(x_hat).max() + bound):
            raise context.fail(
                f"batch norm train: channel {c} variance before the affine step is "
                f"{var:.8g}, not s**2/(s**2+eps) = {expected_variance:.8g}",
                *details,
            )
        if residual > 2 * bound or slope <= 0:
            raise context.fail(
                f"batch norm train: channel {c} is not one increasing affine map of "
                f"x (residual {residual:.3g}, slope {slope:.6g})",
                *details,
            )


@pytest.mark.reference_too
@pytest.mark.parametrize("layout", LAYOUTS)
@fixtures_shared
@given(data=st.data())
def test_batch_norm_train_normalizes(
    backend: Any, dtype: str, layout: str, data
) -> None:
    """See :func:`check_train_normalizes`."""
    require_operations(backend, "batch_norm")
    check_train_normalizes(backend, dtype, layout, data.draw(batches(layout)))


# ---------------------------------------------------------------------------
# Running statistics
# ---------------------------------------------------------------------------


def check_running_statistics(
    impl: Any, dtype: str, layout: str, steps: list[Batch]
) -> None:
    r"""Over several training steps, the running statistics follow the momentum rule.

    Starting from the first batch's ``running_mean`` and ``running_var`` and
    threading the returned statistics into the next call (as the native
    arrays returned), after each step:

    .. math::

        \mu_r \leftarrow (1 - \alpha)\mu_r + \alpha\,\mu_B, \qquad
        v_r \leftarrow (1 - \alpha) v_r + \alpha \frac{m}{m-1} s^2_B

    (:math:`\alpha` = ``momentum``, :math:`s^2_B` the biased batch variance),
    computed here in float64. Tolerance: the dtype's plus
    :math:`8 u (m + t)` times the magnitudes involved after :math:`t` steps.
    The arrays passed in must come back unchanged (no in-place update).

    Bugs caught: the biased variance in the running update (off by
    :math:`m/(m-1)`), the momentum complement (Keras' convention,
    :math:`\alpha \leftrightarrow 1-\alpha`), running statistics not updated
    or not returned, updated in place (torch's ``F.batch_norm`` habit), the
    variance updated with the standard deviation, the mean and the variance
    swapped.
    """
    first = steps[0].rounded(dtype)
    context = _context(
        impl, dtype, "batch_norm", first, f"{layout}-train", steps=len(steps)
    )
    u = UNIT_ROUNDOFF[dtype]
    running_mean_native = impl.asarray(first.running_mean, dtype)
    running_var_native = impl.asarray(first.running_var, dtype)
    expected_mean, expected_var = first.running_mean, first.running_var
    magnitude_mean = np.abs(expected_mean)
    magnitude_var = np.abs(expected_var)
    for t, raw in enumerate(steps, start=1):
        batch = raw.rounded(dtype)
        rows = _channel_rows(batch.x)
        m = batch.m
        alpha = first.momentum
        passed_mean = to_numpy(impl, running_mean_native, "running_mean", context)
        passed_var = to_numpy(impl, running_var_native, "running_var", context)
        arguments = [
            impl.asarray(batch.x, dtype),
            impl.asarray(batch.gamma, dtype),
            impl.asarray(batch.beta, dtype),
            running_mean_native,
            running_var_native,
        ]
        result = call_backend(
            impl,
            "batch_norm",
            arguments,
            {"training": True, "momentum": alpha, "eps": batch.eps},
            context,
        )
        _, new_mean_native, new_var_native = expect_tuple(
            result, 3, "batch_norm", impl.name, "batch_norm", context
        )
        assert_unchanged(
            passed_mean,
            to_numpy(impl, running_mean_native, "running_mean", context),
            "running_mean",
            impl.name,
            context,
        )
        assert_unchanged(
            passed_var,
            to_numpy(impl, running_var_native, "running_var", context),
            "running_var",
            impl.name,
            context,
        )
        batch_mean = rows.mean(axis=1)
        batch_var = rows.var(axis=1)
        expected_mean = (1 - alpha) * expected_mean + alpha * batch_mean
        expected_var = (1 - alpha) * expected_var + alpha * batch_var * m / (m - 1)
        magnitude_mean = magnitude_mean + np.abs(rows).max(axis=1)
        magnitude_var = (
            magnitude_var + 2 * np.abs(rows - batch_mean[:, None]).max(axis=1) ** 2
        )
        what = f"after step {t} of {len(steps)} (m = {m}, momentum {alpha})"
        explain = (
            f"expected: new = (1 - momentum) old + momentum batch, the variance "
            f"unbiased (m/(m-1) = {m / (m - 1):.6g} times the biased one); tolerance "
            f"atol + rtol |expected| + 8 u (m + t) sum of magnitudes"
        )
        for name, native, expected, magnitude in (
            ("running_mean", new_mean_native, expected_mean, magnitude_mean),
            ("running_var", new_var_native, expected_var, magnitude_var),
        ):
            actual = to_numpy(impl, native, name, context)
            allowed = (
                ATOL[dtype]
                + RTOL[dtype] * np.abs(expected)
                + DERIVED_FACTOR * u * (m + t) * magnitude
            )
            assert_close(
                actual,
                expected,
                dtype=dtype,
                what=f"{name} {what}",
                context=context,
                allowed=allowed,
                expected_label="momentum rule",
                explain=explain,
            )
        running_mean_native, running_var_native = new_mean_native, new_var_native


@st.composite
def step_sequences(draw: st.DrawFn, layout: str) -> list[Batch]:
    """1 to 5 batches of one shape (the running statistics of the first start)."""
    first = draw(batches(layout))
    count = draw(_integers(1, 5))
    steps = [first]
    for _ in range(count - 1):
        seed = draw(strategies.seeds())
        scales = 10.0 ** np.array(
            [draw(strategies.floats(-2.0, 2.0)) for _ in range(first.x.shape[1])]
        )
        offsets = (
            np.array([draw(strategies.floats(-5.0, 5.0)) for _ in scales]) * scales
        )
        x = _channel_values(np.random.default_rng(seed), first.x.shape, offsets, scales)
        steps.append(replace(first, x=x, seed=seed))
    return steps


@pytest.mark.reference_too
@pytest.mark.parametrize("layout", LAYOUTS)
@fixtures_shared
@given(data=st.data())
def test_batch_norm_running_statistics(
    backend: Any, dtype: str, layout: str, data
) -> None:
    """See :func:`check_running_statistics`."""
    require_operations(backend, "batch_norm")
    check_running_statistics(backend, dtype, layout, data.draw(step_sequences(layout)))


# ---------------------------------------------------------------------------
# Eval
# ---------------------------------------------------------------------------


def _eval_expected(batch: Batch) -> tuple[np.ndarray, np.ndarray]:
    """The eval output, and the rounding bound ``B`` of its computation (float64)."""
    x = batch.x
    scale = _per_channel(batch.gamma / np.sqrt(batch.running_var + batch.eps), x)
    centred = x - _per_channel(batch.running_mean, x)
    y = scale * centred + _per_channel(batch.beta, x)
    magnitude = np.abs(scale) * (
        np.abs(x) + _per_channel(np.abs(batch.running_mean), x)
    )
    return y, 4.0 * (magnitude + _per_channel(np.abs(batch.beta), x))


def _rows_changed(x: np.ndarray, keep: int, seed: int) -> np.ndarray:
    """``x`` with every sample but ``keep`` replaced by others (shifted and scaled)."""
    rng = np.random.default_rng([seed, 3])
    other = np.array(x, copy=True)
    for i in range(x.shape[0]):
        if i != keep:
            other[i] = (
                3.0 * x[i] + rng.standard_normal(x[i].shape) * np.abs(x).max() + 7.0
            )
    return other


def check_eval(impl: Any, dtype: str, layout: str, batch: Batch) -> None:
    r"""Eval uses the running statistics, is deterministic and per-sample.

    * ``y = gamma (x - running_mean) / sqrt(running_var + eps) + beta``
      within the dtype's tolerance widened by the magnitudes of the terms;
    * a second call gives bitwise the same output;
    * the returned running statistics equal the ones passed in, which are
      unchanged;
    * each sample's output, computed alone (a batch of 1) and inside a batch
      whose other samples were replaced, equals its output in the original
      batch (within the same tolerance).

    Bugs caught: eval that uses the batch statistics (the output of a sample
    then moves with the other samples, and a batch of 1 is normalised to
    ``beta``), eval that updates the running statistics, eval that ignores
    ``eps`` or uses ``sqrt(var) + eps``, eval that draws anything random.
    """
    batch = batch.rounded(dtype)
    context = _context(impl, dtype, "batch_norm", batch, f"{layout}-eval")
    expected, rounding = _eval_expected(batch)
    y, new_mean, new_var = _forward(impl, dtype, batch, False, context)
    assert_close(
        y,
        expected,
        dtype=dtype,
        what="eval output",
        context=context,
        rounding=rounding,
        expected_label="running-statistics formula",
    )
    again, _, _ = _forward(impl, dtype, batch, False, context)
    if not np.array_equal(y, again):
        raise context.fail(
            "batch norm eval is not deterministic: two calls with the same inputs "
            f"differ at {int(np.count_nonzero(y != again))} of {y.size} elements",
        )
    for name, returned, passed in (
        ("running_mean", new_mean, batch.running_mean),
        ("running_var", new_var, batch.running_var),
    ):
        assert_close(
            returned,
            passed,
            dtype=dtype,
            what=f"eval returns {name} unchanged",
            context=context,
            allowed=np.zeros(passed.shape),
            expected_label="input",
            explain="eval must return copies of the running statistics (tolerance 0)",
        )
    keep = batch.x.shape[0] - 1
    alone = replace(batch, x=batch.x[keep : keep + 1])
    y_alone, _, _ = _forward(impl, dtype, alone, False, context)
    assert_close(
        y_alone,
        y[keep : keep + 1].astype(np.float64),
        dtype=dtype,
        what=f"eval output of sample {keep} computed alone (a batch of 1)",
        context=context,
        rounding=rounding[keep : keep + 1],
        expected_label="same sample in the full batch",
    )
    if batch.x.shape[0] >= 2:
        changed = replace(
            batch,
            x=_rows_changed(batch.x, keep, batch.seed).astype(dtype).astype(np.float64),
        )
        y_changed, _, _ = _forward(impl, dtype, changed, False, context)
        assert_close(
            y_changed[keep],
            y[keep].astype(np.float64),
            dtype=dtype,
            what=f"eval output of sample {keep} after the other samples changed",
            context=context,
            rounding=rounding[keep],
            expected_label="same sample in the original batch",
        )


@pytest.mark.reference_too
@pytest.mark.parametrize("layout", LAYOUTS)
@fixtures_shared
@given(data=st.data())
def test_batch_norm_eval(backend: Any, dtype: str, layout: str, data) -> None:
    """See :func:`check_eval`."""
    require_operations(backend, "batch_norm")
    check_eval(backend, dtype, layout, data.draw(batches(layout)))


# ---------------------------------------------------------------------------
# Training depends on the batch
# ---------------------------------------------------------------------------


def _normalized(x: np.ndarray, eps: float) -> np.ndarray:
    axes = _axes(x)
    mean = x.mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(x.var(axis=axes, keepdims=True) + eps)


def check_train_depends_on_batch(
    impl: Any, dtype: str, layout: str, batch: Batch
) -> None:
    r"""In training, changing the other samples changes a sample's output.

    Sample 0 is kept; every other sample of channel ``c`` is shifted by
    :math:`\pm 10 s_c` (the sign chosen, from the formula, so that
    :math:`\hat x` of sample 0 moves by at least 0.5 in every channel:
    the two signs move it to opposite sides). The backend's output for sample
    0 must move by at least half of the formula's change, per channel (times
    :math:`|\gamma|`), far above rounding.

    Bugs caught: training that normalises with the running statistics (the
    eval path), or each sample by itself (instance or layer normalisation:
    the output of a sample then ignores the batch).
    """
    batch = batch.rounded(dtype)
    context = _context(impl, dtype, "batch_norm", batch, f"{layout}-train")
    x = batch.x
    channels = x.shape[1]
    rows = _channel_rows(x)
    spread = np.sqrt(rows.var(axis=1) + batch.eps)
    before = _normalized(x, batch.eps)[0]
    shifted = np.array(x, copy=True)
    predicted = np.empty(channels)
    for c in range(channels):
        best = None
        for sign in (1.0, -1.0):
            trial = np.array(x, copy=True)
            trial[1:, c] += sign * 10.0 * spread[c]
            change = np.abs(_normalized(trial, batch.eps)[0][c] - before[c]).min()
            if best is None or change > best[0]:
                best = (change, sign)
        predicted[c] = best[0]
        shifted[1:, c] += best[1] * 10.0 * spread[c]
    changed = replace(batch, x=shifted.astype(dtype).astype(np.float64))
    y, _, _ = _forward(impl, dtype, batch, True, context)
    y_changed, _, _ = _forward(impl, dtype, changed, True, context)
    moved = np.abs(y_changed[0].astype(np.float64) - y[0].astype(np.float64))
    moved = moved.reshape(channels, -1).min(axis=1) / np.abs(batch.gamma)
    weak = moved < 0.5 * predicted
    if weak.any():
        c = int(np.argmax(weak))
        raise context.fail(
            f"batch norm train: the output of sample 0, channel {c}, moved by only "
            f"{moved[c]:.4g} (in units of gamma) when the other samples were shifted "
            f"by {10 * spread[c]:.4g}; the batch statistics move it by "
            f"{predicted[c]:.4g}",
            "training must normalise with the statistics of the whole batch",
        )


@pytest.mark.reference_too
@pytest.mark.parametrize("layout", LAYOUTS)
@fixtures_shared
@given(data=st.data())
def test_batch_norm_train_depends_on_batch(
    backend: Any, dtype: str, layout: str, data
) -> None:
    """See :func:`check_train_depends_on_batch`."""
    require_operations(backend, "batch_norm")
    check_train_depends_on_batch(
        backend, dtype, layout, data.draw(batches(layout, min_batch=2))
    )


# ---------------------------------------------------------------------------
# Folding eval batch norm into the preceding layer
# ---------------------------------------------------------------------------


@st.composite
def folding_cases(draw: st.DrawFn, layout: str) -> dict[str, Any]:
    """A linear (1d) or conv (2d) layer's input, weights and bias, and BN parameters."""
    seed = draw(strategies.seeds())
    rng = np.random.default_rng(seed)
    channels = draw(_integers(1, 4))
    if layout == "1d":
        batch, features = draw(_integers(1, 6)), draw(_integers(1, 8))
        x = rng.standard_normal((batch, features))
        w = rng.standard_normal((channels, features))
        hyper: dict[str, Any] = {}
    else:
        geometry = draw(strategies.conv_geometries())
        x = rng.standard_normal(
            (
                geometry["batch"],
                geometry["in_channels"],
                geometry["height"],
                geometry["width"],
            )
        )
        w = rng.standard_normal(
            (channels, geometry["in_channels"], *geometry["kernel"])
        )
        hyper = {"stride": geometry["stride"], "padding": geometry["padding"]}
    b = rng.standard_normal(channels)
    gamma = rng.uniform(0.5, 2.0, channels) * rng.choice([-1.0, 1.0], channels)
    beta = rng.uniform(-2.0, 2.0, channels)
    running_mean = rng.uniform(-2.0, 2.0, channels)
    running_var = 10.0 ** rng.uniform(-3.0, 1.0, channels)
    eps = draw(st.sampled_from([1e-5, 1e-3]))
    return {
        "x": x,
        "w": w,
        "b": b,
        "gamma": gamma,
        "beta": beta,
        "running_mean": running_mean,
        "running_var": running_var,
        "eps": eps,
        "hyper": hyper,
        "seed": seed,
    }


def check_folding(impl: Any, dtype: str, layout: str, case: dict[str, Any]) -> None:
    r"""Eval batch norm after a conv (or linear) layer equals the folded layer.

    With :math:`k = \gamma/\sqrt{v_r + \varepsilon}` per output channel,

    .. math::

        \mathrm{BN}_{eval}(W * x + b) = (k W) * x + (k (b - \mu_r) + \beta)

    (notes 001: batch norm "has zero overhead at test-time (can be fused with
    conv)"). Both sides are computed by the backend (``conv2d`` or
    ``linear``, then ``batch_norm`` in eval; and the layer with the folded
    weights and bias, folded in float64 and rounded to the dtype). Tolerance:
    the dtype's, widened by :math:`2u` times twice :math:`n\sum|x||kW|` (the
    two convolutions' sums of :math:`n` terms) plus the magnitudes of the
    bias terms.

    Bugs caught: eval batch norm that uses the batch statistics, or ignores
    ``gamma``, ``beta`` or ``eps``, or uses :math:`\sqrt{v}+\varepsilon`, or
    the standard deviation where the variance belongs (visible as
    ``running_var`` ranges over 1e-3..10).
    """
    layer = "linear" if layout == "1d" else "conv2d"
    require_operations(impl, "batch_norm", layer)

    def r(a: np.ndarray) -> np.ndarray:
        return a.astype(dtype).astype(np.float64)

    x, w, b = r(case["x"]), r(case["w"]), r(case["b"])
    gamma, beta = r(case["gamma"]), r(case["beta"])
    running_mean, running_var = r(case["running_mean"]), r(case["running_var"])
    eps, hyper = case["eps"], case["hyper"]
    context = Context(
        op="batch_norm",
        backend=impl.name,
        dtype=dtype,
        inputs={"x": x.shape, "w": w.shape},
        hyper={"eps": eps, "training": False, "seed": case["seed"], **hyper},
        variant=f"{layout}-eval folded into {layer}",
    )
    k = gamma / np.sqrt(running_var + eps)
    w_folded = r(w * k.reshape((-1,) + (1,) * (w.ndim - 1)))
    b_folded = r(k * (b - running_mean) + beta)
    z = call_backend(
        impl, layer, [impl.asarray(a, dtype) for a in (x, w, b)], hyper, context
    )
    bn_arguments = [z] + [
        impl.asarray(a, dtype) for a in (gamma, beta, running_mean, running_var)
    ]
    result = call_backend(
        impl,
        "batch_norm",
        bn_arguments,
        {"training": False, "momentum": 0.1, "eps": eps},
        context,
    )
    y, _, _ = expect_tuple(result, 3, "batch_norm", impl.name, "batch_norm", context)
    folded = call_backend(
        impl,
        layer,
        [impl.asarray(a, dtype) for a in (x, w_folded, b_folded)],
        hyper,
        context,
    )
    unfolded = to_numpy(impl, y, "batch_norm(conv) output", context).astype(np.float64)
    folded = to_numpy(impl, folded, "folded layer output", context)
    terms = math.prod(w.shape[1:])
    reference_layer = getattr(reference_layers, layer)
    absolute = reference_layer(np.abs(x), np.abs(w_folded), np.zeros(len(k)), **hyper)
    bias_terms = np.abs(k) * (np.abs(b) + np.abs(running_mean)) + np.abs(beta)
    rounding = 2.0 * terms * absolute + 4.0 * _per_channel(bias_terms, absolute)
    assert_close(
        folded,
        unfolded,
        dtype=dtype,
        what=f"{layer} with folded weights and bias",
        context=context,
        rounding=rounding,
        actual_label="folded layer",
        expected_label=f"batch_norm(eval) after {layer}",
    )


@pytest.mark.reference_too
@pytest.mark.parametrize("layout", LAYOUTS)
@fixtures_shared
@given(data=st.data())
def test_batch_norm_folds_into_layer(
    backend: Any, dtype: str, layout: str, data
) -> None:
    """See :func:`check_folding`."""
    check_folding(backend, dtype, layout, data.draw(folding_cases(layout)))


# ---------------------------------------------------------------------------
# Gradients
# ---------------------------------------------------------------------------


def check_gradients(
    impl: Any, dtype: str, layout: str, batch: Batch, seed: int
) -> None:
    r"""Training gradients carry the batch-statistics terms; eval ones do not.

    Training: the output is invariant to adding a constant to a channel, so
    :math:`\sum_i dx_{i,c} = 0`; and, differentiating along
    :math:`x - \mu`,

    .. math::

        \sum_i dx_{i,c} (x_{i,c} - \mu_c)
            = \gamma_c \frac{\varepsilon}{s_c^2 + \varepsilon}
              \sum_i dout_{i,c}\, \hat x_{i,c}

    (0 at :math:`\varepsilon = 0`: the output is also scale invariant). Eval:
    :math:`dx = \gamma\, dout / \sqrt{v_r + \varepsilon}` elementwise, the
    running statistics being constants. ``dout`` is random normal, never all
    ones.

    Tolerance per channel for the sums: :math:`8u(m+4)` times
    :math:`\frac{|\gamma|}{\sigma}\big(\sum|dout| + \max|\hat x|\sum|dout\,\hat
    x| \big)(1 + \max|x|/\sigma)`, and :math:`\sigma \max|\hat x|` times that
    for the second identity: the float32 error of the backward's two
    reductions over :math:`m` values and of the mean it subtracts.

    Bugs caught: the eval gradient :math:`\gamma\,dout/\sigma` used in training
    (no batch terms: :math:`\sum_i dx_i \ne 0`), the mean term dropped, the
    variance term dropped (second identity off by :math:`\gamma\,d\gamma`), an
    unbiased variance in the backward, batch terms in the eval gradient.
    """
    batch = batch.rounded(dtype)
    require_operations(impl, "batch_norm_backward")
    rng = np.random.default_rng([seed, 5])
    dout = rng.standard_normal(batch.x.shape).astype(dtype).astype(np.float64)
    u = UNIT_ROUNDOFF[dtype]
    for training in (True, False):
        mode = "train" if training else "eval"
        context = _context(
            impl, dtype, "batch_norm_backward", batch, f"{layout}-{mode}"
        )
        result = call_backend(
            impl,
            "batch_norm_backward",
            [impl.asarray(dout, dtype), *batch.native(impl, dtype)],
            batch.hyper(training),
            context,
        )
        dx, _, _ = expect_tuple(
            result, 3, "batch_norm_backward", impl.name, "batch_norm_backward", context
        )
        dx = to_numpy(impl, dx, "dx", context, gradient=True)
        if dx.shape != batch.x.shape or dx.dtype != np.dtype(dtype):
            raise context.fail(
                f"dx: got {dx.dtype}{list(dx.shape)}, expected {dtype}"
                f"{list(batch.x.shape)}"
            )
        if not training:
            scale = _per_channel(
                batch.gamma / np.sqrt(batch.running_var + batch.eps), dout
            )
            assert_close(
                dx,
                scale * dout,
                dtype=dtype,
                what="eval dx = gamma dout / sqrt(running_var + eps)",
                context=context,
                expected_label="formula",
            )
            continue
        x_rows, d_rows, dx_rows = (
            _channel_rows(batch.x),
            _channel_rows(dout),
            _channel_rows(dx.astype(np.float64)),
        )
        for c in range(batch.x.shape[1]):
            values, d, g = x_rows[c], d_rows[c], dx_rows[c]
            centred = values - values.mean()
            variance = values.var()
            sigma = math.sqrt(variance + batch.eps)
            x_hat = centred / sigma
            dgamma = float(d @ x_hat)
            size = (
                abs(batch.gamma[c])
                / sigma
                * (np.abs(d).sum() + np.abs(x_hat).max() * np.abs(d * x_hat).sum())
                * (1.0 + np.abs(values).max() / sigma)
            )
            bound_shift = DERIVED_FACTOR * u * (batch.m + 4) * size
            bound_scale = bound_shift * sigma * max(np.abs(x_hat).max(), 1.0)
            shift_sum = float(g.sum())
            scale_sum = float(g @ centred)
            expected_scale = (
                batch.gamma[c] * batch.eps / (variance + batch.eps) * dgamma
            )
            details = (
                f"channel {c}: m = {batch.m}, biased batch variance {variance:.6g}, "
                f"gamma {batch.gamma[c]:.6g}, dgamma = sum dout x_hat = {dgamma:.6g}",
                f"sum dx = {shift_sum:.6g} (expected 0, tolerance {bound_shift:.3g}); "
                f"sum dx (x - mean) = {scale_sum:.6g} (expected gamma eps/(s**2+eps) "
                f"dgamma = {expected_scale:.6g}, tolerance {bound_scale:.3g})",
                f"the eval-style gradient would give sum dx = "
                f"{batch.gamma[c] / sigma * d.sum():.6g}",
            )
            if abs(shift_sum) > bound_shift:
                raise context.fail(
                    f"batch norm train gradient: channel {c} sum of dx is "
                    f"{shift_sum:.6g}, not 0 (the batch-mean term is missing)",
                    *details,
                )
            if abs(scale_sum - expected_scale) > bound_scale:
                raise context.fail(
                    f"batch norm train gradient: channel {c} sum of dx (x - mean) is "
                    f"{scale_sum:.6g}, not {expected_scale:.6g} (the batch-variance "
                    "term is missing or wrong)",
                    *details,
                )


@pytest.mark.reference_too
@pytest.mark.parametrize("layout", LAYOUTS)
@fixtures_shared
@given(data=st.data(), seed=strategies.seeds())
def test_batch_norm_gradients(
    backend: Any, dtype: str, layout: str, data, seed
) -> None:
    """See :func:`check_gradients`."""
    require_operations(backend, "batch_norm_backward")
    check_gradients(backend, dtype, layout, data.draw(batches(layout)), seed)
