"""The op catalog: every operation of the contract described once.

In the spirit of PyTorch's ``OpInfo``, one :class:`OpInfo` entry per forward
operation of :data:`backends.contract.OPERATIONS` says

* which reference functions define it (found by name in the ``reference``
  modules; the backward, where there is one, is a field of the same entry);
* its family and its ``kind``, which tells the generic tests how to drive it:
  ``"deterministic"`` (forward values and every backward output),
  ``"random"`` (``dropout_mask``, ``initialize``: shape, dtype and a
  distributional sanity check, never values), ``"optimizer"`` (a trajectory
  of several steps, the state threaded through) and ``"clipping"``;
* its positional arguments, which of them have a gradient (``gradients``:
  one entry per backward output, the argument's name or ``None`` where the
  backward must return ``None``), and its forward outputs;
* a Hypothesis strategy of :class:`Sample` s (float64 arrays, integer labels,
  bool masks, hyperparameters) that are valid *by construction* and lie in the
  op's domain (``domain`` says which: probabilities in (0, 1), inputs away from
  the kinks of ReLU and abs, no ties in max pooling and maxout, no hinge term
  at its kink, batch-norm channels that are not constant), so that central
  finite differences are valid and float32 and float64 pick the same branch;
* how the comparison tolerances widen with the length of the sums it
  computes (``summation``, below);
* ``variants`` that must each be exercised (batch norm 1d/2d x train/eval,
  dropout train/eval, the two upsampling modes, each initializer, each
  optimizer's initial state): the tests run one case per variant.

Adding an operation is adding one entry to :data:`CATALOG`.

Tolerances. The comparisons (``properties/assertions.py``) use
``|actual - expected| <= atol + rtol |expected| + 2 u B`` with the dtype's
``rtol``/``atol`` (float32 1.3e-6/1e-5, float64 1e-7/1e-7), ``u`` its unit
roundoff, and ``B = summation(sample, dout)[output]``: a bound, elementwise or
scalar, on ``n * sum(|terms|)`` over the longest sum (of ``n`` terms) that the
output involves. ``n u sum|terms|`` is the classical bound on the rounding error
of any summation order (Higham, *Accuracy and Stability of Numerical
Algorithms*, 2nd ed., eq. (4.4)); multilinear ops get it exactly by running
the reference on absolute values, the others from the formulas beside them.
Elementwise outputs have ``B = 0``: a few ulps, inside ``rtol``.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from hypothesis import strategies as st

from backends import contract
from properties import draws, statistics
from properties import strategies as s

FAMILIES: tuple[str, ...] = (
    "activation",
    "layer",
    "normalization",
    "loss",
    "penalty",
    "initializer",
    "optimizer",
    "clipping",
)
KINDS: tuple[str, ...] = ("deterministic", "random", "optimizer", "clipping")

#: Where the reference functions live, searched in this order.
REFERENCE_MODULES: tuple[str, ...] = (
    "reference.activations",
    "reference.layers",
    "reference.normalization",
    "reference.losses",
    "reference.initializers",
    "reference.optimizers",
)

#: The uniform initializers (the others draw from a normal distribution).
UNIFORM_INITIALIZERS: frozenset[str] = frozenset(
    {"uniform_fan_in", "xavier_uniform", "he_uniform"}
)

#: How many steps an optimizer trajectory runs.
TRAJECTORY_STEPS = 5


# -- samples -----------------------------------------------------------------


def _round_value(value: Any, dtype: str) -> Any:
    if isinstance(value, np.ndarray) and value.dtype == np.float64:
        return value.astype(dtype).astype(np.float64)
    if isinstance(value, list):
        return [_round_value(item, dtype) for item in value]
    return value


def _describe_value(value: Any) -> str:
    if isinstance(value, np.ndarray):
        text = np.array2string(
            value, separator=", ", floatmode="unique", threshold=1000, max_line_width=88
        )
        return f"array({text}, dtype={value.dtype.name}, shape={value.shape})"
    if isinstance(value, list):
        return "[" + ", ".join(_describe_value(item) for item in value) + "]"
    return repr(value)


def summarize(value: Any) -> str:
    """A one-line summary of an argument: shape and dtype, or the value."""
    if isinstance(value, np.ndarray):
        return f"{value.dtype.name}{list(value.shape)}"
    if isinstance(value, list):
        return "[" + ", ".join(summarize(item) for item in value) + "]"
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        return f"{type(value).__name__}(dtype={dtype}, shape={tuple(shape)})"
    return repr(value)


@dataclass(frozen=True, repr=False)
class Sample:
    """One call of an op: positional arguments, hyperparameters, optimizer steps.

    ``arguments`` are float64 arrays (the differentiable ones), integer labels,
    bool masks, or plain values (an initializer's name, a shape, a list of
    gradients for clipping). ``steps`` holds the gradient of each step of an
    optimizer trajectory.
    """

    arguments: tuple[Any, ...]
    hyper: Mapping[str, Any] = field(default_factory=dict)
    steps: tuple[np.ndarray, ...] = ()

    def rounded(self, dtype: str) -> Sample:
        """The sample with every float64 array rounded through ``dtype``.

        Backend and reference then see the same numbers: the reference computes
        in float64 on the rounded inputs, the backend in ``dtype`` on the same.
        """
        return replace(
            self,
            arguments=tuple(_round_value(a, dtype) for a in self.arguments),
            steps=tuple(_round_value(g, dtype) for g in self.steps),
        )

    def __repr__(self) -> str:
        parts = [f"arguments=({', '.join(map(_describe_value, self.arguments))},)"]
        parts.append(f"hyper={dict(self.hyper)!r}")
        if self.steps:
            parts.append(f"steps=({', '.join(map(_describe_value, self.steps))},)")
        return "Sample(" + ", ".join(parts) + ")"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """Hypothesis prints the falsifying sample with every digit."""
        printer.text(repr(self))


# -- reference lookup --------------------------------------------------------


def reference_function(name: str) -> Callable[..., Any]:
    """The reference function ``name``, from the first module that defines it."""
    problems = []
    for module_name in REFERENCE_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            problems.append(f"{module_name}: {error}")
            continue
        function = getattr(module, name, None)
        if callable(function):
            return function
    detail = f" (import errors: {'; '.join(problems)})" if problems else ""
    raise LookupError(
        f"no reference function {name!r} in {', '.join(REFERENCE_MODULES)}{detail}"
    )


# -- the entry ---------------------------------------------------------------

Summation = Callable[[Sample, "np.ndarray | None"], dict[str, Any]]
Sanity = Callable[[Sample, np.ndarray, str, Callable[..., np.ndarray]], list[str]]


@dataclass(frozen=True, repr=False)
class OpInfo:
    """One operation of the contract (see the module docstring).

    Fields
    ------
    name : the contract's forward name (``conv2d``; the backward is
        ``conv2d_backward``).
    family, kind : see :data:`FAMILIES`, :data:`KINDS`.
    arguments : names of the positional arguments, in order.
    samples : ``variant -> strategy of Sample``.
    domain : the inputs drawn, in words (what is excluded and why).
    gradients : one entry per backward output: the argument it is the gradient
        of, or ``None`` where the backward returns ``None`` (labels, masks).
        Empty for the ops without a backward.
    outputs : the names of the forward's outputs (several: a tuple is returned).
    summation : ``(sample, dout) -> {output: B}``, see the module docstring;
        gradient outputs are named ``"d" + argument``.
    bounds : the closed interval each argument must stay in (finite
        differences step one-sided at its ends).
    variants : the cases each test runs; ``variant`` is the one of this case.
    sanity : for ``random`` ops, ``(sample, result, dtype, rerun) -> problems``,
        ``rerun(**hyper)`` calling the op again with some hyperparameters changed.
    takes_dtype : the op takes a ``dtype`` keyword (``initialize``).
    optimizer : for optimizer steps, the optimizer's name.
    """

    name: str
    family: str
    kind: str
    arguments: tuple[str, ...]
    samples: Callable[[str | None], st.SearchStrategy[Sample]]
    domain: str
    gradients: tuple[str | None, ...] = ()
    outputs: tuple[str, ...] = ("output",)
    summation: Summation | None = None
    bounds: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    variants: tuple[str, ...] = ()
    variant: str | None = None
    sanity: Sanity | None = None
    takes_dtype: bool = False
    optimizer: str | None = None

    def __repr__(self) -> str:
        return f"OpInfo({self.id!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    @property
    def id(self) -> str:
        """The test id of this case: the name, and the variant if any."""
        return f"{self.name}-{self.variant}" if self.variant else self.name

    @property
    def backward_name(self) -> str | None:
        return f"{self.name}_backward" if self.gradients else None

    @property
    def differentiable(self) -> tuple[str, ...]:
        """The arguments with a gradient."""
        return tuple(g for g in self.gradients if g is not None)

    @property
    def forward(self) -> Callable[..., Any]:
        """The reference forward (for optimizers: the step; for clipping: the clip)."""
        return reference_function(self.name)

    @property
    def backward(self) -> Callable[..., Any] | None:
        """The reference backward, or ``None`` for the ops without one."""
        return reference_function(self.backward_name) if self.backward_name else None

    def cases(self) -> tuple[OpInfo, ...]:
        """One entry per variant (the entry itself when it has none)."""
        if not self.variants:
            return (self,)
        return tuple(replace(self, variant=variant) for variant in self.variants)

    def strategy(self) -> st.SearchStrategy[Sample]:
        """The samples of this case."""
        return self.samples(self.variant)

    def reference_outputs(self, sample: Sample) -> tuple[np.ndarray, ...]:
        """The reference forward on ``sample``, always as a tuple of outputs."""
        result = self.forward(*sample.arguments, **sample.hyper)
        if len(self.outputs) == 1:
            return (np.asarray(result),)
        return tuple(np.asarray(r) for r in result)

    def reference_gradients(
        self, dout: np.ndarray, sample: Sample
    ) -> tuple[np.ndarray | None, ...]:
        """The reference backward on ``sample`` with upstream gradient ``dout``."""
        assert self.backward is not None, f"{self.name} has no backward"
        return tuple(self.backward(dout, *sample.arguments, **sample.hyper))

    def bounds_of(self, sample: Sample, dout: np.ndarray | None) -> dict[str, Any]:
        """The summation bounds ``B`` of this sample (empty: elementwise op)."""
        return self.summation(sample, dout) if self.summation else {}


# -- summation bounds --------------------------------------------------------


def _absolute(value: Any) -> Any:
    if isinstance(value, np.ndarray) and value.dtype == np.float64:
        return np.abs(value)
    return value


def _linear_bounds(
    name: str,
    lengths: Callable[[Sample], Mapping[str, int]],
    *,
    absolute: tuple[bool, ...] | None = None,
) -> Summation:
    """``B`` of an op linear in each float argument (conv, linear, pooling...).

    Running the reference on absolute values gives, for every output element,
    exactly ``sum(|terms|)`` of the sum that computes it (the terms are
    products of the arguments); ``lengths`` gives each output's ``n``.
    ``absolute[i]`` False keeps argument ``i`` as drawn (max pooling's input:
    it selects, it is not summed).
    """

    def summation(sample: Sample, dout: np.ndarray | None) -> dict[str, Any]:
        n = lengths(sample)
        arguments = tuple(
            _absolute(a) if absolute is None or absolute[i] else a
            for i, a in enumerate(sample.arguments)
        )
        entry = BY_NAME[name]
        bounds: dict[str, Any] = {}
        if n.get("output"):
            forward = entry.forward(*arguments, **sample.hyper)
            bounds["output"] = n["output"] * np.abs(forward)
        if dout is not None:
            gradients = entry.backward(np.abs(dout), *arguments, **sample.hyper)
            for argument, gradient in zip(entry.gradients, gradients, strict=True):
                key = f"d{argument}"
                if argument is not None and n.get(key):
                    bounds[key] = n[key] * np.abs(gradient)
        return bounds

    return summation


def _conv_lengths(sample: Sample) -> dict[str, int]:
    c_out, c_in, kernel_h, kernel_w = sample.arguments[1].shape
    outputs = BY_NAME["conv2d"].forward(*sample.arguments, **sample.hyper).shape
    per_image = outputs[0] * outputs[2] * outputs[3]
    return {
        "output": c_in * kernel_h * kernel_w + 1,
        "dx": c_out * kernel_h * kernel_w,
        "dw": per_image,
        "db": per_image,
    }


def _linear_lengths(sample: Sample) -> dict[str, int]:
    x, w, _ = sample.arguments
    return {
        "output": x.shape[1] + 1,
        "dx": w.shape[0],
        "dw": x.shape[0],
        "db": x.shape[0],
    }


def _window(sample: Sample) -> int:
    kernel_h, kernel_w = s.as_pair(sample.hyper["kernel_size"])
    return kernel_h * kernel_w


def _upsample_lengths(sample: Sample) -> dict[str, int]:
    factor = sample.hyper["scale_factor"]
    if sample.hyper["mode"] == "nearest":
        return {"dx": factor * factor}
    return {"output": 6, "dx": 4 * factor * factor + 4}


def _prelu_summation(sample: Sample, dout: np.ndarray | None) -> dict[str, Any]:
    if dout is None:
        return {}
    x, alpha = sample.arguments
    products = np.abs(dout * x)
    if alpha.shape == (1,):
        return {"dalpha": x.size * products.sum(keepdims=True).reshape(1)}
    axes = tuple(axis for axis in range(x.ndim) if axis != 1)
    return {"dalpha": (x.size // x.shape[1]) * products.sum(axis=axes)}


def _maxout_summation(sample: Sample, dout: np.ndarray | None) -> dict[str, Any]:
    x, w, b = sample.arguments
    bounds: dict[str, Any] = {
        "output": (x.shape[1] + 1)
        * BY_NAME["maxout"].forward(np.abs(x), np.abs(w), np.abs(b))
    }
    if dout is not None:
        d = np.abs(dout)
        bounds["dx"] = w.shape[1] * d @ np.abs(w).max(axis=0)
        bounds["dw"] = x.shape[0] * (d.T @ np.abs(x))[None]
        bounds["db"] = x.shape[0] * d.sum(axis=0)[None]
    return bounds


def _along(axis: int, values: np.ndarray) -> np.ndarray:
    return values.sum(axis=axis, keepdims=True)


def _softmax_summation(sample: Sample, dout: np.ndarray | None) -> dict[str, Any]:
    (x,) = sample.arguments
    axis = sample.hyper.get("axis", -1)
    classes = x.shape[axis]
    y = BY_NAME["softmax"].forward(x, axis=axis)
    bounds: dict[str, Any] = {"output": (classes + 2) * y}
    if dout is not None:
        d = np.abs(dout)
        bounds["dx"] = 2 * (classes + 2) * y * (d + _along(axis, y * d))
    return bounds


def _log_softmax_summation(sample: Sample, dout: np.ndarray | None) -> dict[str, Any]:
    (x,) = sample.arguments
    axis = sample.hyper.get("axis", -1)
    classes = x.shape[axis]
    largest = np.abs(x).max(axis=axis, keepdims=True)
    bounds: dict[str, Any] = {"output": 2 * (np.abs(x) + largest) + classes + 2}
    if dout is not None:
        d = np.abs(dout)
        y = np.exp(BY_NAME["log_softmax"].forward(x, axis=axis))
        bounds["dx"] = (classes + 2) * (d + y * _along(axis, d))
    return bounds


def _batch_norm_summation(sample: Sample, dout: np.ndarray | None) -> dict[str, Any]:
    """Batch norm's rounding bound (see the module docstring).

    Per channel of ``m`` values with ``R = max|x| / sigma`` (how much the mean's
    and the variance's rounding is magnified in ``x_hat``): the mean and the
    variance carry ``m u`` relative errors of ``max|x|`` and of the variance,
    ``x_hat`` an error of ``m u (R + |x_hat|)``, and each output inherits it
    through the formula that computes it.
    """
    x, gamma, beta, running_mean, running_var = sample.arguments
    training = sample.hyper["training"]
    momentum = sample.hyper.get("momentum", 0.1)
    eps = sample.hyper.get("eps", 1e-5)
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    m = x.size // x.shape[1]

    def channel(values: np.ndarray) -> np.ndarray:
        return values.reshape(shape)

    if training:
        mean = x.mean(axis=axes)
        variance = x.var(axis=axes)
    else:
        mean, variance = running_mean, running_var
    sigma = np.sqrt(variance + eps)
    x_hat = (x - channel(mean)) / channel(sigma)
    g, b = channel(np.abs(gamma)), channel(np.abs(beta))
    bounds: dict[str, Any] = {}
    if training:
        ratio = channel(np.abs(x).max(axis=axes) / sigma)
        bounds["y"] = (m + 2) * g * (ratio + np.abs(x_hat)) + b
        bounds["running_mean"] = np.abs(running_mean) + momentum * m * np.abs(x).max(
            axis=axes
        )
        unbiased = variance * m / (m - 1)
        bounds["running_var"] = np.abs(running_var) + momentum * (m + 2) * unbiased * (
            2 + 2 * ratio.reshape(-1)
        )
    else:
        ratio = channel((np.abs(x).max(axis=axes) + np.abs(mean)) / sigma)
        bounds["y"] = 4 * (g * (np.abs(x) + channel(np.abs(mean))) / channel(sigma) + b)
    if dout is not None:
        d = np.abs(dout)
        bounds["dbeta"] = m * d.sum(axis=axes)
        bounds["dgamma"] = (m + 2) * (d * (2 * np.abs(x_hat) + ratio)).sum(axis=axes)
        if training:
            mean_d = channel(d.mean(axis=axes))
            mean_dx = channel((d * (np.abs(x_hat) + ratio)).mean(axis=axes))
            bounds["dx"] = (
                (m + 2)
                * g
                / channel(sigma)
                * (1 + ratio)
                * (d + mean_d + (np.abs(x_hat) + ratio) * mean_dx)
            )
    return bounds


def _terms_bound(total: np.ndarray, count: int, elementwise: float | np.ndarray = 0.0):
    """``B`` of a loss: ``(n + 2) |sum of same-sign terms|`` plus their own errors."""
    return (count + 2) * np.abs(total) + np.sum(elementwise)


def _mse_summation(sample: Sample, dout: np.ndarray | None) -> dict[str, Any]:
    pred, target = sample.arguments
    loss = BY_NAME["mse_loss"].forward(pred, target)
    return {"output": _terms_bound(loss, pred.size + 1)}


def _bce_summation(sample: Sample, dout: np.ndarray | None) -> dict[str, Any]:
    prob, target = sample.arguments
    n = prob.shape[0]
    logs = np.abs(np.log(prob)) + np.abs(np.log1p(-prob)) + 2
    loss = BY_NAME["binary_cross_entropy"].forward(prob, target)
    bounds: dict[str, Any] = {"output": _terms_bound(loss, prob.size, logs / n)}
    if dout is not None:
        scale = np.abs(dout) / n
        bounds["dprob"] = 4 * scale * (target / prob + (1 - target) / (1 - prob))
        bounds["dtarget"] = 2 * scale * logs
    return bounds


def _bce_logits_summation(sample: Sample, dout: np.ndarray | None) -> dict[str, Any]:
    logits, target = sample.arguments
    n = logits.shape[0]
    terms = 2 * (np.abs(logits) * (1 + np.abs(target)) + 1)
    loss = BY_NAME["binary_cross_entropy_with_logits"].forward(logits, target)
    bounds: dict[str, Any] = {"output": _terms_bound(loss, logits.size, terms / n)}
    if dout is not None:
        sigmoid = 0.5 * (1 + np.tanh(logits / 2))  # no overflow for any logit
        bounds["dlogits"] = 4 * np.abs(dout) / n * (sigmoid + np.abs(target))
    return bounds


def _cross_entropy_summation(sample: Sample, dout: np.ndarray | None) -> dict[str, Any]:
    logits, labels = sample.arguments
    n, classes = logits.shape
    rows = classes + 2 * np.abs(logits).max(axis=1) + 2
    loss = BY_NAME["softmax_cross_entropy"].forward(logits, labels)
    bounds: dict[str, Any] = {"output": _terms_bound(loss, n, rows / n)}
    if dout is not None:
        softmax = np.exp(logits - logits.max(axis=1, keepdims=True))
        softmax /= softmax.sum(axis=1, keepdims=True)
        one_hot = np.eye(classes)[labels]
        bounds["dlogits"] = (classes + 2) * np.abs(dout) / n * (softmax + one_hot)
    return bounds


def _hinge_summation(sample: Sample, dout: np.ndarray | None) -> dict[str, Any]:
    scores, labels = sample.arguments
    margin = sample.hyper.get("margin", 1.0)
    n = scores.shape[0]
    correct = np.abs(scores[np.arange(n), labels])[:, None]
    terms = 2 * (np.abs(scores) + correct + margin)
    loss = BY_NAME["multiclass_hinge_loss"].forward(scores, labels, **sample.hyper)
    return {"output": _terms_bound(loss, scores.size, terms / n)}


def _penalty_summation(name: str, extra: int) -> Summation:
    def summation(sample: Sample, dout: np.ndarray | None) -> dict[str, Any]:
        (w,) = sample.arguments
        loss = BY_NAME[name].forward(w, **sample.hyper)
        return {"output": _terms_bound(loss, w.size + extra)}

    return summation


# -- samples of each op ------------------------------------------------------


def _activation(
    *, low: float = -6.0, high: float = 6.0, kink: bool = False, **hyper: Any
) -> Callable[[str | None], st.SearchStrategy[Sample]]:
    """Samples of an elementwise activation: any small shape."""

    @st.composite
    def samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
        x = draw(s.arrays(draw(s.shapes(max_dims=4, max_side=3)), low, high))
        if kink:
            x = s.away_from(x)
        return Sample((x,), draw(s.hyperparameters(**hyper)))

    return samples


@st.composite
def _prelu_samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
    shape = draw(s.shapes(min_dims=2, max_dims=4, max_side=3))
    x = s.away_from(draw(s.arrays(shape, -6.0, 6.0)))
    channels = draw(st.sampled_from([(1,), (shape[1],)]))
    alpha = draw(s.arrays(channels, -1.0, 1.0))
    return Sample((x, alpha))


@st.composite
def _linear_samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
    n, d_in, d_out = (draw(st.integers(1, 5)) for _ in range(3))
    x = draw(s.arrays((n, d_in)))
    w = draw(s.arrays((d_out, d_in)))
    b = draw(s.arrays((d_out,)))
    return Sample((x, w, b))


@st.composite
def _conv2d_samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
    g = draw(s.conv_geometries())
    x = draw(s.arrays((g["batch"], g["in_channels"], g["height"], g["width"])))
    w = draw(s.arrays((g["out_channels"], g["in_channels"], *g["kernel"]), -2.0, 2.0))
    b = draw(s.arrays((g["out_channels"],)))
    hyper = {}
    for key, default in (("stride", 1), ("padding", 0)):
        value = g[key]
        if value != default or draw(st.booleans()):
            hyper[key] = value
    return Sample((x, w, b), hyper)


def _pool_samples(*, padded: bool, distinct: bool):
    @st.composite
    def samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
        g = draw(s.pool_geometries(padded=padded))
        x = draw(s.arrays((g["batch"], g["channels"], g["height"], g["width"])))
        if distinct:
            x = s.separated(x)
        return Sample((x,), g["hyper"])

    return samples


BATCH_NORM_VARIANTS = ("1d-train", "1d-eval", "2d-train", "2d-eval")


@st.composite
def _batch_norm_samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
    layout, mode = (variant or "2d-train").split("-")
    training = mode == "train"
    channels = draw(st.integers(1, 3))
    if layout == "1d":
        shape: tuple[int, ...] = (draw(st.integers(2 if training else 1, 8)), channels)
    else:
        height, width = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        least = 1 if height * width >= 2 or not training else 2
        shape = (draw(st.integers(least, 3)), channels, height, width)
    x = s.spread_channels(draw(s.arrays(shape, -4.0, 4.0)))
    gamma = draw(s.arrays((channels,), -2.0, 2.0))
    beta = draw(s.arrays((channels,), -2.0, 2.0))
    running_mean = draw(s.arrays((channels,), -2.0, 2.0))
    running_var = draw(s.arrays((channels,), 0.05, 4.0))
    hyper = {"training": training} | draw(
        s.hyperparameters(
            momentum=s.optional(s.floats(0.0, 1.0)),
            eps=s.optional(
                st.one_of(st.sampled_from([1e-5, 1e-3]), s.floats(1e-6, 0.5))
            ),
        )
    )
    return Sample((x, gamma, beta, running_mean, running_var), hyper)


DROPOUT_VARIANTS = ("train", "eval")


def _drop_probabilities() -> st.SearchStrategy[float]:
    return st.one_of(st.just(0.0), s.floats(0.0, 0.9))


@st.composite
def _dropout_samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
    shape = draw(s.shapes(max_dims=4, max_side=3))
    x = draw(s.arrays(shape, -4.0, 4.0))
    mask = draw(s.masks(shape))
    hyper = {"p": draw(_drop_probabilities()), "training": variant != "eval"}
    return Sample((x, mask), hyper)


@st.composite
def _dropout_mask_samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
    shape = draw(s.shapes(max_dims=3, max_side=12))
    hyper = {
        "p": draw(st.one_of(_drop_probabilities(), s.floats(0.0, 0.99))),
        "seed": draw(s.seeds()),
    }
    return Sample((shape,), hyper)


@st.composite
def _flatten_samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
    return Sample((draw(s.arrays(draw(s.shapes(min_dims=2, max_dims=4, max_side=3)))),))


@st.composite
def _softmax_samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
    shape = draw(s.shapes(max_dims=3, max_side=4))
    x = draw(s.arrays(shape, -6.0, 6.0))
    axis = draw(s.optional(st.integers(-len(shape), len(shape) - 1)))
    return Sample((x,), {} if axis is s.OMITTED else {"axis": axis})


@st.composite
def _maxout_samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
    n, d_in, d_out = (draw(st.integers(1, 4)) for _ in range(3))
    pieces = draw(st.integers(1, 3))
    x = draw(s.arrays((n, d_in), -2.0, 2.0))
    w = draw(s.arrays((pieces, d_out, d_in), -2.0, 2.0))
    b = s.separate_maxout(x, w, draw(s.arrays((pieces, d_out), -2.0, 2.0)))
    return Sample((x, w, b))


UPSAMPLE_MODES = ("nearest", "bilinear")


@st.composite
def _upsample_samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
    shape = (
        draw(st.integers(1, 2)),
        draw(st.integers(1, 2)),
        draw(st.integers(1, 4)),
        draw(st.integers(1, 4)),
    )
    x = draw(s.arrays(shape))
    hyper = {"scale_factor": draw(st.integers(1, 3)), "mode": variant or "nearest"}
    return Sample((x,), hyper)


def _batched_shapes() -> st.SearchStrategy[tuple[int, ...]]:
    return s.shapes(min_dims=1, max_dims=3, max_side=4)


@st.composite
def _mse_samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
    shape = draw(_batched_shapes())
    return Sample((draw(s.arrays(shape)), draw(s.arrays(shape))))


@st.composite
def _bce_samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
    shape = draw(_batched_shapes())
    prob = draw(s.arrays(shape, 0.05, 0.95))
    return Sample((prob, draw(s.binary_or_soft_targets(shape))))


@st.composite
def _bce_logits_samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
    shape = draw(_batched_shapes())
    logits = draw(s.arrays(shape, -8.0, 8.0))
    return Sample((logits, draw(s.binary_or_soft_targets(shape))))


@st.composite
def _cross_entropy_samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
    n, classes = draw(st.integers(1, 5)), draw(st.integers(1, 6))
    logits = draw(s.arrays((n, classes), -6.0, 6.0))
    return Sample((logits, draw(s.labels(n, classes))))


@st.composite
def _hinge_samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
    n, classes = draw(st.integers(1, 5)), draw(st.integers(1, 6))
    labels = draw(s.labels(n, classes))
    hyper = draw(s.hyperparameters(margin=s.optional(s.floats(0.0, 2.0))))
    scores = draw(s.arrays((n, classes)))
    scores = s.separate_hinge(scores, labels, hyper.get("margin", 1.0))
    return Sample((scores, labels), hyper)


def _penalty_samples(*, kink: bool, **hyper: st.SearchStrategy[Any]):
    @st.composite
    def samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
        w = draw(s.arrays(draw(s.shapes(max_dims=4, max_side=3))))
        if kink:
            w = s.away_from(w)
        return Sample((w,), draw(s.hyperparameters(**hyper)))

    return samples


INITIALIZER_HYPER: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "normal": {"std": s.optional(s.floats(1e-3, 2.0))},
    "he_normal": {"negative_slope": s.optional(s.floats(0.0, 1.0))},
    "he_uniform": {"negative_slope": s.optional(s.floats(0.0, 1.0))},
}


@st.composite
def _initialize_samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
    name = variant or "normal"
    if draw(st.booleans()):  # at least 2304 weights (see _initialize_sanity)
        shape: tuple[int, ...] = (draw(st.integers(48, 96)), draw(st.integers(48, 96)))
    else:
        shape = (
            draw(st.integers(16, 32)),
            draw(st.integers(16, 32)),
            draw(st.integers(3, 5)),
            draw(st.integers(3, 5)),
        )
    hyper = {"seed": draw(s.seeds())} | draw(
        s.hyperparameters(**INITIALIZER_HYPER.get(name, {}))
    )
    return Sample((name, shape), hyper)


def _weight_decay() -> st.SearchStrategy[Any]:
    """In [1e-3, 0.1] (a decay whose effect shows), left out, or exactly 0.

    ``floats(0, 0.1)`` would mostly draw values like 1e-300, indistinguishable
    from 0 within any tolerance. The decay comes first: Hypothesis prefers the
    first branch in a derandomized run, and decay is what needs covering.
    """
    return st.one_of(s.floats(1e-3, 0.1), st.just(s.OMITTED), st.just(0.0))


OPTIMIZER_HYPER: dict[str, Callable[[], st.SearchStrategy[dict]]] = {
    "adagrad": lambda: s.hyperparameters(
        lr=s.floats(1e-3, 1.0), eps=s.optional(s.floats(1e-10, 1e-6))
    ),
    "rmsprop": lambda: s.hyperparameters(
        lr=s.floats(1e-3, 1.0),
        alpha=s.optional(s.floats(0.5, 0.999)),
        eps=s.optional(s.floats(1e-8, 1e-4)),
    ),
    "adadelta": lambda: s.hyperparameters(
        lr=s.optional(s.floats(0.1, 2.0)),
        rho=s.optional(s.floats(0.5, 0.99)),
        eps=s.optional(s.floats(1e-6, 1e-3)),
    ),
    "adam": lambda: s.hyperparameters(
        lr=s.floats(1e-4, 1.0),
        beta1=s.optional(s.floats(0.0, 0.99)),
        beta2=s.optional(s.floats(0.9, 0.9999)),
        eps=s.optional(s.floats(1e-8, 1e-4)),
        weight_decay=_weight_decay(),
    ),
}


#: The SGD forms, in Hypothesis' order of preference: the first is what the
#: simplest examples (and a shrunk counterexample) use, and in a derandomized
#: run it is drawn more often than the others, so the forms that need
#: covering come first and plain SGD, the special case of both, last.
SGD_FORMS: tuple[str, ...] = ("momentum", "nesterov", "plain")


@st.composite
def _sgd_hyper(draw: st.DrawFn) -> dict[str, Any]:
    """SGD's hyperparameters: plain, heavy-ball momentum or Nesterov, each with decay.

    The form is drawn first, so each appears in about a third of the
    examples; momentum, where there is some, is at least 0.1 (a smaller one
    changes a short trajectory by less than the tolerance, so a wrong
    Nesterov or momentum formula would pass); ``plain`` leaves momentum out or
    sets it to exactly 0. Weight decay is drawn independently of the form
    (:func:`_weight_decay`), so momentum with decay is common.
    """
    form = draw(st.sampled_from(SGD_FORMS))
    hyper: dict[str, Any] = {"lr": draw(s.floats(1e-3, 1.0))}
    if form == "plain":
        momentum = draw(st.one_of(st.just(s.OMITTED), st.just(0.0)))
        if momentum is not s.OMITTED:
            hyper["momentum"] = momentum
            if draw(st.booleans()):
                hyper["nesterov"] = False
    else:
        hyper["momentum"] = draw(s.floats(0.1, 0.95))
        if form == "nesterov":
            hyper["nesterov"] = True
        elif draw(st.booleans()):
            hyper["nesterov"] = False
    weight_decay = draw(_weight_decay())
    if weight_decay is not s.OMITTED:
        hyper["weight_decay"] = weight_decay
    return hyper


OPTIMIZER_HYPER["sgd"] = _sgd_hyper


def optimizer_hyper(name: str) -> st.SearchStrategy[dict[str, Any]]:
    """The hyperparameters of optimizer ``name``, each draw counted for coverage.

    :mod:`properties.draws` tallies them by category (Nesterov with momentum,
    momentum with weight decay, ...) for ``--nnspec-coverage``.
    """
    return OPTIMIZER_HYPER[name]().map(lambda hyper: draws.record(name, hyper))


def _gradient_values(shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    """A step's gradient: values in [-3, 3], exact zeros, or tiny values.

    Gradients of order 1e-4 make the squared averages small enough for
    ``eps`` to matter, where ``sqrt(v) + eps`` and ``sqrt(v + eps)`` differ.
    """
    return st.one_of(
        s.arrays(shape), st.just(np.zeros(shape)), s.arrays(shape, -3e-4, 3e-4)
    )


def _optimizer_samples(fixed: str | None):
    @st.composite
    def samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
        name = fixed or variant or "sgd"
        shape = draw(s.shapes(max_dims=2, max_side=4))
        param = draw(s.arrays(shape))
        steps = tuple(draw(_gradient_values(shape)) for _ in range(TRAJECTORY_STEPS))
        return Sample((param,), draw(optimizer_hyper(name)), steps)

    return samples


@st.composite
def _clip_samples(draw: st.DrawFn, variant: str | None = None) -> Sample:
    count = draw(st.integers(1, 3))
    grads = [
        draw(s.arrays(draw(s.shapes(max_dims=3, max_side=4)))) for _ in range(count)
    ]
    total = math.sqrt(sum(float(np.sum(g**2)) for g in grads))
    # Relative to the actual norm, so both regimes (clipped, untouched) occur.
    factor = draw(st.one_of(s.floats(0.1, 0.95), s.floats(1.05, 3.0)))
    max_norm = factor * total if total > 0 else factor
    return Sample((grads,), {"max_norm": max_norm})


# -- sanity checks of the random ops -----------------------------------------


def _dropout_mask_sanity(
    sample: Sample, mask: np.ndarray, dtype: str, rerun: Callable[..., np.ndarray]
) -> list[str]:
    """Shape, bool dtype, ``p = 0`` keeps all, the kept count is binomial.

    Every example also draws the mask again with ``p = 0``, which must keep
    every unit.

    The kept count is binomial: Bernstein's inequality bounds
    ``|kept - n (1 - p)|`` by ``t = x / 3 + sqrt(x**2 / 9 + 2 x n p (1 - p))``
    except with probability ``2 exp(-x)``; ``x = ln(2 / 1e-9)`` (a false
    alarm below 1e-9 per example for every ``n`` and ``p``, 3e-7 per test at
    the nightly profile's 300 examples, where a normal approximation would
    fail small ``n p``).
    A mask that keeps with probability p (the classic inversion) fails it
    for p >= 0.8 on 100 units, one that keeps everything for p >= 0.5 on 200.
    """
    (shape,) = sample.arguments
    p = sample.hyper["p"]
    problems = []
    if mask.dtype != np.bool_:
        problems.append(f"dtype: the mask has dtype {mask.dtype}, expected bool")
    if mask.shape != tuple(shape):
        problems.append(
            f"shape: the mask has shape {mask.shape}, expected {tuple(shape)}"
        )
        return problems
    n = mask.size
    kept = int(np.count_nonzero(mask))
    everything = rerun(p=0.0)
    if everything.shape != mask.shape or not np.all(everything):
        problems.append(
            f"p = 0 must keep every unit: the mask keeps "
            f"{int(np.count_nonzero(everything))} of {everything.size}"
        )
    allowed = statistics.bernstein_deviation(
        n * p * (1 - p), 1.0, statistics.EXAMPLE_FAILURE_PROBABILITY
    )
    if abs(kept - n * (1 - p)) > allowed:
        problems.append(
            f"kept {kept} of {n} units with p = {p}: expected {n * (1 - p):.1f} "
            f"+- {allowed:.1f} (Bernstein's bound, false alarm below 1e-9)"
        )
    return problems


#: The false-alarm budget of each of the two statistical checks of
#: :func:`_initialize_sanity`, per example.
INITIALIZE_SANITY_DELTA = statistics.split(statistics.EXAMPLE_FAILURE_PROBABILITY, 2)


def initialize_sanity_bounds(
    name: str, n: int, variance: float, delta: float = INITIALIZE_SANITY_DELTA
) -> tuple[float, float, float]:
    """``(low, high, mean_bound)``: the mean-square interval and the mean's bound.

    See :func:`_initialize_sanity`; each bound fails a correct draw of ``n``
    weights with probability at most ``delta``.
    """
    if name in UNIFORM_INITIALIZERS:
        a = math.sqrt(3.0 * variance)
        mean_bound = statistics.bernstein_deviation(n * variance, a, delta) / n
        spread = statistics.bernstein_deviation(
            n * 4.0 * a**4 / 45.0, 2.0 * a * a / 3.0, delta
        )
        return variance - spread / n, variance + spread / n, mean_bound
    z = statistics.normal_two_sided_quantile(delta)
    chi_low, chi_high = statistics.chi_square_acceptance(n, delta)
    return variance * chi_low / n, variance * chi_high / n, z * math.sqrt(variance / n)


def _initialize_sanity(
    sample: Sample, w: np.ndarray, dtype: str, rerun: Callable[..., np.ndarray]
) -> list[str]:
    r"""Shape, dtype, bounds, the sample mean and mean square, and the seed's effect.

    Two statistical checks per example, each at
    :math:`\delta = 5 \cdot 10^{-10}` (:data:`INITIALIZE_SANITY_DELTA`): a
    correct initializer fails an example with probability at most
    :math:`10^{-9}`, a test of the nightly profile's 300 examples at most
    :math:`3 \cdot 10^{-7}` (the union bound;
    ``test_statistical_checks_false_alarm_bounds`` recomputes it):

    * mean: normal draws have an exactly normal mean, accepted within
      :math:`z(\delta)\sigma/\sqrt n`; uniform ones, within Bernstein's
      deviation (terms of variance :math:`\sigma^2`, bounded by
      :math:`a = \sqrt 3 \sigma`);
    * mean square: for normal draws :math:`\sum w^2/\sigma^2` is
      :math:`\chi^2_n`, accepted in the Laurent-Massart interval
      (:func:`~properties.statistics.chi_square_acceptance`); for uniform
      ones Bernstein's inequality for the sum of the :math:`w^2` (variance
      :math:`4a^4/45` each, within :math:`2a^2/3` of their mean).

    The samples (:func:`_initialize_samples`) have at least 2304 weights, so
    the mean-square floor is above :math:`0.80\sigma^2`: a normal truncated at
    :math:`2\sigma` without rescaling (:math:`0.774\sigma^2`) fails, as do a
    missing gain or a wrong fan. Uniform draws must also lie in
    ``[-a, a]``, and another seed must give another draw (identical
    continuous draws have probability 0). The shape of the distribution is
    ``properties/test_variance.py``'s (a Kolmogorov test).
    """
    name, shape = sample.arguments
    hyper = {k: v for k, v in sample.hyper.items() if k != "seed"}
    mean, variance = reference_function("expected_moments")(name, shape, **hyper)
    problems = []
    if w.dtype != np.dtype(dtype):
        problems.append(f"dtype: the weights have dtype {w.dtype}, expected {dtype}")
    if w.shape != tuple(shape):
        problems.append(
            f"shape: the weights have shape {w.shape}, expected {tuple(shape)}"
        )
        return problems
    values = w.astype(np.float64)
    if not np.all(np.isfinite(values)):
        problems.append("the weights hold NaN or inf")
        return problems
    n = values.size
    if variance == 0:
        if np.any(values != 0):
            problems.append(f"{name} must give zeros, max |w| = {np.abs(values).max()}")
        return problems
    sigma = math.sqrt(variance)
    low, high, mean_bound = initialize_sanity_bounds(name, n, variance)
    sample_mean = float(values.mean())
    slack = 1e-6 * variance  # float32 rounding of the draws
    if abs(sample_mean - mean) > mean_bound + 1e-6 * sigma:
        problems.append(
            f"sample mean {sample_mean:.4g} of {n} weights is more than "
            f"{mean_bound:.3g} from {mean} (false alarm <= {INITIALIZE_SANITY_DELTA:g})"
        )
    mean_square = float(np.mean((values - mean) ** 2))
    if not low - slack <= mean_square <= high + slack:
        problems.append(
            f"mean square {mean_square:.4g} of {n} weights lies outside "
            f"[{low:.4g}, {high:.4g}] around the expected variance {variance:.4g} "
            f"(false alarm <= {INITIALIZE_SANITY_DELTA:g})"
        )
    if n >= 2 and np.array_equal(rerun(seed=sample.hyper["seed"] + 1), w):
        problems.append("seeds seed and seed + 1 gave the same weights")
    if name in UNIFORM_INITIALIZERS:
        bound = math.sqrt(3 * variance) * (1 + 1e-6)
        if np.abs(values).max() > bound:
            problems.append(
                f"uniform draws must lie in [-{bound:.6g}, {bound:.6g}], "
                f"max |w| = {np.abs(values).max():.6g}"
            )
    return problems


# -- the catalog -------------------------------------------------------------

_KINK = "inputs at least 1e-3 from the kink at 0"


def _activation_entry(name: str, samples, domain: str) -> OpInfo:
    """An elementwise activation ``f(x, **hyper)`` with ``f_backward -> (dx,)``."""
    return OpInfo(
        name=name,
        family="activation",
        kind="deterministic",
        arguments=("x",),
        gradients=("x",),
        samples=samples,
        domain=domain,
    )


CATALOG: tuple[OpInfo, ...] = (
    # -- activations (elementwise: no sums, rtol covers a few ulps) ----------
    _activation_entry("relu", _activation(kink=True), _KINK),
    _activation_entry(
        "leaky_relu",
        _activation(kink=True, alpha=s.optional(s.floats(0.0, 0.5))),
        _KINK + "; alpha in [0, 0.5] or default",
    ),
    OpInfo(
        name="prelu",
        family="activation",
        kind="deterministic",
        arguments=("x", "alpha"),
        gradients=("x", "alpha"),
        samples=_prelu_samples,
        domain=_KINK + "; x has 2 to 4 axes, alpha (1,) or (C,) in [-1, 1]",
        summation=_prelu_summation,
    ),
    _activation_entry(
        "elu",
        _activation(kink=True, alpha=s.optional(s.floats(0.05, 2.0))),
        _KINK + " (the derivative jumps there unless alpha = 1); alpha in [0.05, 2]",
    ),
    _activation_entry("selu", _activation(kink=True), _KINK),
    _activation_entry("sigmoid", _activation(), "x in [-6, 6]"),
    _activation_entry("tanh", _activation(), "x in [-6, 6]"),
    _activation_entry("softplus", _activation(), "x in [-6, 6]"),
    _activation_entry("abs_rectify", _activation(kink=True), _KINK),
    # -- layers --------------------------------------------------------------
    OpInfo(
        name="linear",
        family="layer",
        kind="deterministic",
        arguments=("x", "w", "b"),
        gradients=("x", "w", "b"),
        samples=_linear_samples,
        domain="N, D_in, D_out in 1..5, values in [-3, 3]",
        summation=_linear_bounds("linear", _linear_lengths),
    ),
    OpInfo(
        name="conv2d",
        family="layer",
        kind="deterministic",
        arguments=("x", "w", "b"),
        gradients=("x", "w", "b"),
        samples=_conv2d_samples,
        domain=(
            "N <= 2, C_in, C_out <= 3, H, W <= 8, kernel 1..3, stride 1..3 and "
            "padding 0..2 (ints or pairs) with H + 2p >= k"
        ),
        summation=_linear_bounds("conv2d", _conv_lengths),
    ),
    OpInfo(
        name="max_pool2d",
        family="layer",
        kind="deterministic",
        arguments=("x",),
        gradients=("x",),
        samples=_pool_samples(padded=True, distinct=True),
        domain=(
            "all values at least 1e-3 apart (no ties, so every window has one "
            "maximum); padding <= kernel // 2"
        ),
        summation=_linear_bounds(
            "max_pool2d", lambda sample: {"dx": _window(sample)}, absolute=(False,)
        ),
    ),
    OpInfo(
        name="avg_pool2d",
        family="layer",
        kind="deterministic",
        arguments=("x",),
        gradients=("x",),
        samples=_pool_samples(padded=False, distinct=False),
        domain="kernel 1..3, stride 1..3 or default, no padding",
        summation=_linear_bounds(
            "avg_pool2d",
            lambda sample: {"output": _window(sample) + 1, "dx": _window(sample)},
        ),
    ),
    OpInfo(
        name="batch_norm",
        family="normalization",
        kind="deterministic",
        arguments=("x", "gamma", "beta", "running_mean", "running_var"),
        gradients=("x", "gamma", "beta"),
        outputs=("y", "running_mean", "running_var"),
        samples=_batch_norm_samples,
        domain=(
            "(N, C) or (N, C, H, W), >= 2 values per channel in training; every "
            "channel's std >= 0.3 (well-conditioned); running_var in [0.05, 4]"
        ),
        summation=_batch_norm_summation,
        bounds={"running_var": (0.0, math.inf)},
        variants=BATCH_NORM_VARIANTS,
    ),
    OpInfo(
        name="dropout_mask",
        family="layer",
        kind="random",
        arguments=("shape",),
        samples=_dropout_mask_samples,
        domain="shapes up to 12x12x12, p in [0, 0.99), any seed",
        sanity=_dropout_mask_sanity,
    ),
    OpInfo(
        name="dropout",
        family="layer",
        kind="deterministic",
        arguments=("x", "mask"),
        gradients=("x", None),
        samples=_dropout_samples,
        domain="any bool mask, p in [0, 0.9] (0 often)",
        variants=DROPOUT_VARIANTS,
    ),
    OpInfo(
        name="flatten",
        family="layer",
        kind="deterministic",
        arguments=("x",),
        gradients=("x",),
        samples=_flatten_samples,
        domain="2 to 4 axes",
    ),
    OpInfo(
        name="softmax",
        family="layer",
        kind="deterministic",
        arguments=("x",),
        gradients=("x",),
        samples=_softmax_samples,
        domain="1 to 3 axes, any axis (or the default), values in [-6, 6]",
        summation=_softmax_summation,
    ),
    OpInfo(
        name="log_softmax",
        family="layer",
        kind="deterministic",
        arguments=("x",),
        gradients=("x",),
        samples=_softmax_samples,
        domain="1 to 3 axes, any axis (or the default), values in [-6, 6]",
        summation=_log_softmax_summation,
    ),
    OpInfo(
        name="maxout",
        family="layer",
        kind="deterministic",
        arguments=("x", "w", "b"),
        gradients=("x", "w", "b"),
        samples=_maxout_samples,
        domain="k in 1..3 pieces; the winning piece leads by >= 1e-2 everywhere",
        summation=_maxout_summation,
    ),
    OpInfo(
        name="upsample2d",
        family="layer",
        kind="deterministic",
        arguments=("x",),
        gradients=("x",),
        samples=_upsample_samples,
        domain="H, W <= 4, scale_factor 1..3",
        summation=_linear_bounds("upsample2d", _upsample_lengths),
        variants=UPSAMPLE_MODES,
    ),
    # -- losses --------------------------------------------------------------
    OpInfo(
        name="mse_loss",
        family="loss",
        kind="deterministic",
        arguments=("pred", "target"),
        gradients=("pred", "target"),
        samples=_mse_samples,
        domain="(N, ...) with 1 to 3 axes, values in [-3, 3]",
        summation=_mse_summation,
    ),
    OpInfo(
        name="binary_cross_entropy",
        family="loss",
        kind="deterministic",
        arguments=("prob", "target"),
        gradients=("prob", "target"),
        samples=_bce_samples,
        domain=(
            "prob in [0.05, 0.95] (away from the log's poles); target 0/1 or in [0, 1]"
        ),
        summation=_bce_summation,
        bounds={"prob": (0.0, 1.0), "target": (0.0, 1.0)},
    ),
    OpInfo(
        name="binary_cross_entropy_with_logits",
        family="loss",
        kind="deterministic",
        arguments=("logits", "target"),
        gradients=("logits", "target"),
        samples=_bce_logits_samples,
        domain="logits in [-8, 8]; target 0/1 or in [0, 1]",
        summation=_bce_logits_summation,
        bounds={"target": (0.0, 1.0)},
    ),
    OpInfo(
        name="softmax_cross_entropy",
        family="loss",
        kind="deterministic",
        arguments=("logits", "labels"),
        gradients=("logits", None),
        samples=_cross_entropy_samples,
        domain="N in 1..5, C in 1..6, logits in [-6, 6], int64 labels",
        summation=_cross_entropy_summation,
    ),
    OpInfo(
        name="multiclass_hinge_loss",
        family="loss",
        kind="deterministic",
        arguments=("scores", "labels"),
        gradients=("scores", None),
        samples=_hinge_samples,
        domain="no term s_j - s_y + margin within 1e-3 of its kink; margin in [0, 2]",
        summation=_hinge_summation,
    ),
    OpInfo(
        name="l1_penalty",
        family="penalty",
        kind="deterministic",
        arguments=("w",),
        gradients=("w",),
        samples=_penalty_samples(kink=True),
        domain=_KINK,
        summation=_penalty_summation("l1_penalty", 1),
    ),
    OpInfo(
        name="l2_penalty",
        family="penalty",
        kind="deterministic",
        arguments=("w",),
        gradients=("w",),
        samples=_penalty_samples(kink=False),
        domain="values in [-3, 3]",
        summation=_penalty_summation("l2_penalty", 2),
    ),
    OpInfo(
        name="elastic_net_penalty",
        family="penalty",
        kind="deterministic",
        arguments=("w",),
        gradients=("w",),
        samples=_penalty_samples(kink=True, beta=s.floats(0.0, 2.0)),
        domain=_KINK + " (|w|); beta in [0, 2]",
        summation=_penalty_summation("elastic_net_penalty", 3),
    ),
    # -- initializers --------------------------------------------------------
    OpInfo(
        name="initialize",
        family="initializer",
        kind="random",
        arguments=("name", "shape"),
        samples=_initialize_samples,
        domain=(
            "(out, in) from 48x48 to 96x96 or (C_out, C_in, kH, kW) from 16x16x3x3 "
            "to 32x32x5x5 (2304 weights or more); any seed"
        ),
        variants=contract.INITIALIZER_NAMES,
        sanity=_initialize_sanity,
        takes_dtype=True,
    ),
    # -- optimizers ----------------------------------------------------------
    OpInfo(
        name="init_state",
        family="optimizer",
        kind="optimizer",
        arguments=("param",),
        samples=_optimizer_samples(None),
        domain="each optimizer's initial state, checked by the steps taken from it",
        variants=contract.OPTIMIZER_NAMES,
    ),
    *(
        OpInfo(
            name=f"{name}_step",
            family="optimizer",
            kind="optimizer",
            arguments=("param",),
            samples=_optimizer_samples(name),
            domain=(
                f"{TRAJECTORY_STEPS} steps, params and gradients in [-3, 3] (zero "
                "and ~1e-4 gradients too), hyperparameters drawn or default"
            ),
            optimizer=name,
        )
        for name in contract.OPTIMIZER_NAMES
    ),
    OpInfo(
        name="clip_grad_norm",
        family="clipping",
        kind="clipping",
        arguments=("grads",),
        samples=_clip_samples,
        domain="1 to 3 gradients; max_norm from 0.1 to 3 times their global norm",
    ),
)

#: The entries by operation name.
BY_NAME: dict[str, OpInfo] = {op.name: op for op in CATALOG}

#: Every case the tests run: one per entry, one per variant where there are any.
CASES: tuple[OpInfo, ...] = tuple(case for op in CATALOG for case in op.cases())


def cases(*kinds: str, differentiable: bool = False) -> tuple[OpInfo, ...]:
    """The cases of the given kinds (all when none), optionally only with a backward."""
    return tuple(
        case
        for case in CASES
        if (not kinds or case.kind in kinds) and (not differentiable or case.gradients)
    )
