"""The backend contract: the operation names, the protocol, and loading.

A backend is any object with the attributes of :class:`Backend` and some of the
operations in :data:`OPERATIONS`. The suite checks every operation a backend has
against the reference and reports every one it lacks as "not implemented".

Backends are loaded by built-in name (``numpy``, ``torch``, ``torch-cuda``,
``cupy``) or by import path ``package.module:attribute``. A backend that cannot
run on this machine (a GPU backend without a GPU, a library that is not
installed) still loads; its ``unavailable_reason`` says why, and the suite skips
it with that reason.

What the suite enforces, besides the values (the README says the same):

* **Declining.** An operation raises ``NotImplementedError`` for an option the
  backend does not have (a hyperparameter value, a mode, a shape): that
  example is declined, not failed, and the search goes on in the supported
  space; a check with every example declined is reported as *unsupported*.
  A backward may return ``None`` for a float argument's gradient it cannot
  compute; the gradients it returns are checked.
* **Backwards** ``f_backward(dout, *arrays, **hyper)`` return a tuple with one
  entry per array argument (``None`` for integer and boolean ones).
* **No input is modified**, ``dout``, labels, targets, masks, an optimizer
  step's ``grad`` and ``clip_grad_norm``'s gradients included. Only an
  optimizer step's ``param`` and ``state`` may be updated in place; the step
  returns ``(param, state)``.
* ``init_state(name, param, **hyper)`` returns a ``dict``; the suite passes
  the step's hyperparameters when the signature accepts them.
* ``clip_grad_norm(grads, *, max_norm)`` returns ``(list of new arrays,
  total_norm)`` with ``total_norm`` a Python ``float``.
* Outputs are native arrays of the float inputs' dtype; losses are 0-d.
* Precision: ``atol + rtol |expected|`` plus the rounding of the sums
  involved; ``rtol, atol`` (:data:`RTOL`, :data:`ATOL`) = 1.3e-6, 1e-5 in
  float32 and the same numbers of units of roundoff in float64 (2.42e-15,
  1.86e-14). Subnormals may be flushed to zero.
* ``to_numpy`` may return a view; ``synchronize(*arrays)`` may be called with
  the arrays about to be read, or none (wait for everything).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

from reference import optimizers as reference_optimizers

#: The operations of the contract, by section. Every differentiable operation
#: ``f`` also has ``f_backward`` (listed in :data:`BACKWARD_OPERATIONS`).
ACTIVATIONS: tuple[str, ...] = (
    "relu",
    "leaky_relu",
    "prelu",
    "elu",
    "selu",
    "sigmoid",
    "tanh",
    "softplus",
    "abs_rectify",
    "gelu",
    "silu",
)
LAYERS: tuple[str, ...] = (
    "linear",
    "conv2d",
    "max_pool2d",
    "avg_pool2d",
    "batch_norm",
    "layer_norm",
    "dropout_mask",
    "dropout",
    "flatten",
    "softmax",
    "log_softmax",
    "maxout",
    "upsample2d",
)
LOSSES: tuple[str, ...] = (
    "mse_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "softmax_cross_entropy",
    "multiclass_hinge_loss",
    "l1_penalty",
    "l2_penalty",
    "elastic_net_penalty",
)
INITIALIZERS: tuple[str, ...] = ("initialize",)
INITIALIZER_NAMES: tuple[str, ...] = (
    "zeros",
    "normal",
    "uniform_fan_in",
    "lecun_normal",
    "xavier_normal",
    "xavier_uniform",
    "he_normal",
    "he_uniform",
)
#: The reference's optimizers less its notes-only momentum form.
OPTIMIZER_NAMES: tuple[str, ...] = reference_optimizers.CONTRACT_OPTIMIZER_NAMES
OPTIMIZERS: tuple[str, ...] = (
    "init_state",
    *(f"{name}_step" for name in OPTIMIZER_NAMES),
    "clip_grad_norm",
)

#: Operations without a backward: random draws, the optimizer machinery.
NOT_DIFFERENTIABLE: frozenset[str] = frozenset(
    {"dropout_mask", "initialize", *OPTIMIZERS}
)

#: Every forward operation of the contract, in the README's order.
OPERATIONS: tuple[str, ...] = ACTIVATIONS + LAYERS + LOSSES + INITIALIZERS + OPTIMIZERS

#: The backward of every differentiable operation.
BACKWARD_OPERATIONS: tuple[str, ...] = tuple(
    f"{name}_backward" for name in OPERATIONS if name not in NOT_DIFFERENTIABLE
)

DTYPES: tuple[str, ...] = ("float32", "float64")

#: The precision promised above, by dtype: float32's ``rtol``/``atol`` are
#: ``torch.testing.assert_close``'s (about 22 and 168 units of roundoff at 1);
#: float64's are the same numbers of float64 units of roundoff (float32's times
#: ``2**-53 / 2**-24``). The suite's comparisons (``properties/tolerance.py``)
#: take them from here.
RTOL: dict[str, float] = {"float32": 1.3e-6, "float64": 1.3e-6 * 2.0**-29}
ATOL: dict[str, float] = {"float32": 1e-5, "float64": 1e-5 * 2.0**-29}
DEVICES: tuple[str, ...] = ("cpu", "gpu")

#: Built-in backends: name -> import path of the backend object.
BUILTIN: dict[str, str] = {
    "numpy": "backends.numpy_backend:backend",
    "torch": "backends.torch:backend",
    "torch-cuda": "backends.torch:cuda_backend",
    "cupy": "backends.cupy_backend:backend",
}

ENVIRONMENT_VARIABLE = "NNSPEC_BACKENDS"


@runtime_checkable
class Backend(Protocol):
    """What every backend has; the operations themselves are optional."""

    name: str
    dtypes: tuple[str, ...]
    device: str

    def asarray(self, a: np.ndarray, dtype: str) -> Any:
        """A host array in, a native array of ``dtype`` out (it may share memory)."""
        ...

    def to_numpy(self, a: Any) -> np.ndarray:
        """A native array out to the host (a view is allowed: callers copy)."""
        ...

    def synchronize(self, *arrays: Any) -> None:
        """Wait for queued device work: on ``arrays`` if given, else on everything.

        A backend whose library waits only for the whole device ignores
        ``arrays``; one that can only wait per array waits for those given.
        Declaring ``synchronize(self)`` without parameters is accepted too:
        callers pass arrays only to a backend whose signature takes them.
        """
        ...


class BackendError(ValueError):
    """A backend spec that names nothing loadable, or an object that is no backend."""


def unavailable_reason(backend: Any) -> str | None:
    """Why ``backend`` cannot run here, or ``None`` if it can.

    A backend says so through an optional ``unavailable_reason`` attribute
    (a string, or ``None`` when it is usable).
    """
    return getattr(backend, "unavailable_reason", None)


def implements(backend: Any, operation: str) -> bool:
    """Whether ``backend`` provides ``operation`` (a forward or a backward name)."""
    return callable(getattr(backend, operation, None))


def missing_operations(backend: Any) -> list[str]:
    """The contract operations (forward and backward) that ``backend`` lacks."""
    return [
        op for op in OPERATIONS + BACKWARD_OPERATIONS if not implements(backend, op)
    ]


def _import_attribute(path: str) -> Any:
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise BackendError(
            f"backend spec {path!r} is neither a built-in name "
            f"({', '.join(BUILTIN)}) nor an import path 'package.module:attribute'"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise BackendError(
            f"backend spec {path!r}: cannot import module {module_name!r}: {error}"
        ) from error
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise BackendError(
                f"backend spec {path!r}: module {module_name!r} has no attribute "
                f"{attribute!r}"
            ) from None
    return target


def validate(backend: Any, spec: str = "") -> Any:
    """Check the mandatory attributes of ``backend``; return it unchanged."""
    where = f"backend {spec!r}" if spec else "backend"
    problems = []
    name = getattr(backend, "name", None)
    if not isinstance(name, str) or not name:
        problems.append("'name' must be a non-empty str")
    dtypes = getattr(backend, "dtypes", None)
    if not isinstance(dtypes, tuple) or not dtypes or set(dtypes) - set(DTYPES):
        problems.append(f"'dtypes' must be a non-empty tuple drawn from {DTYPES}")
    if getattr(backend, "device", None) not in DEVICES:
        problems.append(f"'device' must be one of {DEVICES}")
    for method in ("asarray", "to_numpy", "synchronize"):
        if not callable(getattr(backend, method, None)):
            problems.append(f"'{method}' must be callable")
    if problems:
        raise BackendError(f"{where} is not a backend: " + "; ".join(problems))
    return backend


def load(spec: str) -> Any:
    """Return the backend named by ``spec``.

    ``spec`` is a built-in name (see :data:`BUILTIN`) or an import path
    ``package.module:attribute``; if the attribute is a class or a function
    taking no arguments, it is called to build the backend.
    """
    spec = spec.strip()
    path = BUILTIN.get(spec, spec)
    target = _import_attribute(path)
    if isinstance(target, type) or (
        callable(target)
        and not hasattr(target, "name")
        and not hasattr(target, "asarray")
    ):
        target = target()
    return validate(target, spec)


def available() -> list[str]:
    """The built-in backend names usable on this machine."""
    names = []
    for name in BUILTIN:
        try:
            backend = load(name)
        except BackendError:
            continue
        if unavailable_reason(backend) is None:
            names.append(name)
    return names


def selected(specs: list[str] | None = None) -> list[str]:
    """The backend specs a run uses.

    In order of precedence: ``specs`` (from ``--backend``), the comma-separated
    environment variable ``NNSPEC_BACKENDS``, else every built-in name (the
    unavailable ones are then reported as skipped with their reason).
    """
    if specs:
        return list(dict.fromkeys(specs))
    from_environment = os.environ.get(ENVIRONMENT_VARIABLE, "")
    names = [part.strip() for part in from_environment.split(",") if part.strip()]
    return list(dict.fromkeys(names)) if names else list(BUILTIN)


Operation = Callable[..., Any]
