"""A tiny third-party backend: six operations, written as an outsider would.

This module is what you write to hold your own implementation (a framework, a
kernel library, a course assignment) to nnspec. It imports nothing of nnspec:
a backend is any object with the attributes below and some of the operations
of the contract (the README lists them, with their signatures). The suite
checks every operation your backend has against the reference, in every dtype
it declares, and reports every operation it lacks as "not implemented" (a
skip, never a failure), so you can start with one op and grow.

Writing a backend
-----------------
1. Make an object with

   * ``name``: a short unique name, used in test ids and reports;
   * ``dtypes``: the dtypes you support, drawn from ``("float32", "float64")``;
   * ``device``: ``"cpu"`` or ``"gpu"``;
   * ``unavailable_reason``: ``None``, or a sentence saying why the backend
     cannot run on this machine (no GPU, library missing); the suite then
     skips it with that sentence instead of failing;
   * ``asarray(a, dtype)``: a NumPy array in, your native array out;
   * ``to_numpy(a)``: your native array out to a NumPy array (a view is
     fine: the suite copies what it keeps);
   * ``synchronize(*arrays)``: wait for queued device work, on ``arrays`` if
     given (nothing to do on a CPU).

2. Add operations as methods, with the contract's names and signatures:
   arrays are positional, hyperparameters keyword-only
   (``softmax(x, *, axis=-1)``). Outputs have the dtype of the float inputs,
   and no operation changes its inputs.

3. Give every differentiable ``f(*arrays, **hyper)`` its
   ``f_backward(dout, *arrays, **hyper)``: it takes the upstream gradient and
   the *same inputs as the forward* (no cache, no hidden state) and returns a
   **tuple** with one gradient per array argument, in order, even for one
   input: ``relu_backward(dout, x) -> (dx,)``. Each gradient has the shape and
   dtype of its input (``None`` for integer arguments such as labels).

4. Losses reduce by the mean over the batch (axis 0) and return a 0-d array;
   their backward takes ``dout`` as a 0-d array or a Python float.

5. Expose the object as a module attribute (here ``backend``) and point the
   suite at it by import path, ``package.module:attribute``::

       nox -s verify -- --backend examples.tiny:backend

   or, without nox, from the repository root (your package must be importable)::

       pytest properties --backend examples.tiny:backend
       NNSPEC_BACKENDS=examples.tiny:backend pytest properties

   ``--backend`` may be repeated to compare several backends in one run. A
   failure names the operation, the backend, the dtype, the shapes, the
   hyperparameters and the mismatch, prints the Hypothesis example, and ends
   with a ``reproduce:`` command that reruns that one check.

6. An option your library lacks (an axis, a mode, a hyperparameter value):
   raise ``NotImplementedError`` for it. The suite declines those examples
   instead of failing them and reports a check it could not run at all as
   *unsupported*; :mod:`examples.declining` shows how.

The operations below compute natively in the input's dtype, as a real float32
kernel would, and use the numerically careful forms (``sigmoid`` without
overflow, the tanh and sigmoid derivatives without cancellation), because the
suite compares float32 results with float32 tolerances.
"""

from __future__ import annotations

import numpy as np


def _check_float(name: str, array: np.ndarray) -> None:
    if array.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be float32 or float64, got {array.dtype}")


def _check_dout(dout: np.ndarray, shape: tuple[int, ...]) -> None:
    """The upstream gradient has the shape of the forward's output."""
    if np.shape(dout) != tuple(shape):
        raise ValueError(f"dout must have shape {tuple(shape)}, got {np.shape(dout)}")


def _scalar_like(value: object, like: np.ndarray) -> np.ndarray:
    """``dout`` of a loss (0-d array or Python float) in the dtype of ``like``."""
    _check_dout(value, ())
    return np.asarray(value, dtype=like.dtype)


class TinyBackend:
    """Six operations with their backwards, in float32 and float64, on the CPU."""

    name = "tiny"
    dtypes = ("float32", "float64")
    device = "cpu"
    unavailable_reason = None

    # -- the protocol ---------------------------------------------------------

    def asarray(self, a: np.ndarray, dtype: str) -> np.ndarray:
        return np.array(a, dtype=dtype)

    def to_numpy(self, a: np.ndarray) -> np.ndarray:
        return np.asarray(a)

    def synchronize(self, *arrays: np.ndarray) -> None:
        """Nothing to wait for: NumPy is synchronous."""

    # -- activations ----------------------------------------------------------

    def relu(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(x, 0).astype(x.dtype, copy=False)

    def relu_backward(self, dout: np.ndarray, x: np.ndarray) -> tuple[np.ndarray]:
        _check_dout(dout, x.shape)
        return (np.where(x > 0, dout, 0).astype(x.dtype, copy=False),)

    def sigmoid(self, x: np.ndarray) -> np.ndarray:
        # exp of a non-positive number only: no overflow for large |x|.
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)

    def sigmoid_backward(self, dout: np.ndarray, x: np.ndarray) -> tuple[np.ndarray]:
        _check_dout(dout, x.shape)
        # s(x) * (1 - s(x)) = s(x) * s(-x): 1 - s(x) would cancel for large x.
        return ((dout * self.sigmoid(x) * self.sigmoid(-x)).astype(x.dtype),)

    def tanh(self, x: np.ndarray) -> np.ndarray:
        return np.tanh(x)

    def tanh_backward(self, dout: np.ndarray, x: np.ndarray) -> tuple[np.ndarray]:
        _check_dout(dout, x.shape)
        # 1 - tanh(x)**2 = 4 e / (1 + e)**2 with e = exp(-2|x|): no cancellation.
        e = np.exp(-2 * np.abs(x))
        return ((dout * (4 * e / (1 + e) ** 2)).astype(x.dtype),)

    # -- layers ---------------------------------------------------------------

    def linear(self, x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``x (N, D_in) @ w (D_out, D_in).T + b (D_out,) -> (N, D_out)``."""
        self._check_linear(x, w, b)
        return x @ w.T + b

    def linear_backward(
        self, dout: np.ndarray, x: np.ndarray, w: np.ndarray, b: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self._check_linear(x, w, b)
        _check_dout(dout, (x.shape[0], w.shape[0]))
        return dout @ w, dout.T @ x, dout.sum(axis=0)

    @staticmethod
    def _check_linear(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> None:
        for name, array in (("x", x), ("w", w), ("b", b)):
            _check_float(name, array)
        if x.ndim != 2 or w.ndim != 2 or w.shape[1] != x.shape[1]:
            raise ValueError(
                f"x must be (N, D_in) and w (D_out, D_in), got x {x.shape}, w {w.shape}"
            )
        if b.shape != (w.shape[0],):
            raise ValueError(f"b must have shape ({w.shape[0]},), got {b.shape}")

    def softmax(self, x: np.ndarray, *, axis: int = -1) -> np.ndarray:
        # Shift by the max: exp never overflows, the result is unchanged.
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)

    def softmax_backward(
        self, dout: np.ndarray, x: np.ndarray, *, axis: int = -1
    ) -> tuple[np.ndarray]:
        _check_dout(dout, x.shape)
        s = self.softmax(x, axis=axis)
        return (s * (dout - (dout * s).sum(axis=axis, keepdims=True)),)

    # -- losses ---------------------------------------------------------------

    def mse_loss(self, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
        """``(1/N) * sum((pred - target)**2)``: summed, then averaged over the batch."""
        self._check_pair(pred, target)
        difference = pred - target
        return np.asarray(np.sum(difference * difference) / pred.shape[0])

    def mse_loss_backward(
        self, dout: np.ndarray | float, pred: np.ndarray, target: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        self._check_pair(pred, target)
        scale = _scalar_like(dout, pred) * pred.dtype.type(2 / pred.shape[0])
        dpred = scale * (pred - target)
        return dpred, -dpred

    @staticmethod
    def _check_pair(pred: np.ndarray, target: np.ndarray) -> None:
        _check_float("pred", pred)
        _check_float("target", target)
        if pred.ndim < 1 or pred.shape[0] == 0:
            raise ValueError(f"pred must have a non-empty batch axis, got {pred.shape}")
        if target.shape != pred.shape:
            raise ValueError(
                f"target must have the shape of pred {pred.shape}, got {target.shape}"
            )


backend = TinyBackend()
