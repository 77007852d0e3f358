r"""Optimizer steps: the readable reference (NumPy, float64).

``init_state(name, param) -> state`` and ``<name>_step(param, grad, state, **hyper)
-> (new_param, new_state)``. The update rules and defaults are those of
``torch.optim`` (``SGD``, ``Adagrad``, ``RMSprop``, ``Adadelta``, ``Adam``,
``AdamW``; torch 2.x, ``maximize=False``, ``amsgrad=False``, ``foreach``
irrelevant), written for one parameter array.
Each docstring shows how the rule matches the form in the lecture notes (notes
002, "Optimizers"), and where the notes differ.

Conventions
-----------
- Pure functions: the reference NEVER mutates ``param``, ``grad`` or ``state``; it
  returns a new parameter array and a new state dict of new arrays. (A backend
  may update in place; the contract allows it.)
- The state's keys are this module's own business (torch's names:
  ``momentum_buffer``, ``sum``, ``square_avg``, ``acc_delta``, ``step``,
  ``exp_avg``, ``exp_avg_sq``); the suite treats state as opaque.
- Buffers start at 0. For SGD with momentum torch starts the buffer at the first
  gradient, :math:`b_1 = g_1`; with dampening 0 that is :math:`\mu \cdot 0 + g_1`,
  the same number.
- Notation: :math:`\eta` = ``lr``, :math:`g_t` the gradient at step :math:`t`
  (after weight decay is added, where there is weight decay), all operations
  elementwise.

The lecture notes cited as "notes 000" … "notes 004" are described in
``docs/bibliography.md``, with the papers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from reference._checks import (
    ArgumentKindError,
    as_float64,
    require_flag,
    require_in_range,
    require_non_negative,
    require_positive,
    require_shape,
)

__all__ = [
    "CONTRACT_OPTIMIZER_NAMES",
    "OPTIMIZER_NAMES",
    "STATE_ARRAYS",
    "adadelta_hyperparameters",
    "adadelta_step",
    "adagrad_hyperparameters",
    "adagrad_step",
    "adam_hyperparameters",
    "adam_step",
    "adamw_hyperparameters",
    "adamw_step",
    "clip_grad_norm",
    "init_state",
    "require_gradient_list",
    "rmsprop_hyperparameters",
    "rmsprop_step",
    "sgd_hyperparameters",
    "sgd_momentum_notes_step",
    "sgd_step",
]

#: The optimizers of the contract: every backend steps these.
CONTRACT_OPTIMIZER_NAMES: tuple[str, ...] = (
    "sgd",
    "adagrad",
    "rmsprop",
    "adadelta",
    "adam",
    "adamw",
)
#: The optimizers of the contract, plus the notes' momentum form (reference only).
OPTIMIZER_NAMES: tuple[str, ...] = (*CONTRACT_OPTIMIZER_NAMES, "sgd_momentum_notes")

#: The arrays each optimizer keeps per parameter (``adam`` and ``adamw`` also
#: keep ``step``).
STATE_ARRAYS: dict[str, tuple[str, ...]] = {
    "sgd": ("momentum_buffer",),
    "adagrad": ("sum",),
    "rmsprop": ("square_avg",),
    "adadelta": ("square_avg", "acc_delta"),
    "adam": ("exp_avg", "exp_avg_sq"),
    "adamw": ("exp_avg", "exp_avg_sq"),
    "sgd_momentum_notes": ("velocity",),
}


def init_state(name: str, param: np.ndarray) -> dict[str, np.ndarray | int]:
    r"""The initial state of optimizer ``name`` for ``param``.

    Every buffer is an array of zeros shaped like ``param``; Adam and AdamW also
    count their steps from ``step = 0`` (their bias correction needs :math:`t`).
    AdamW's state is Adam's.

    Parameters
    ----------
    name : str
        One of :data:`OPTIMIZER_NAMES`.
    param : ndarray of any shape

    Returns
    -------
    state : dict
        Fresh arrays; pass it to the first ``<name>_step``.

    Raises
    ------
    ValueError
        If ``name`` is not an optimizer of this module.
    """
    if name not in STATE_ARRAYS:
        raise ValueError(
            f"name must be one of {', '.join(OPTIMIZER_NAMES)}, got {name!r}"
        )
    param = as_float64("param", param)
    state: dict[str, np.ndarray | int] = {
        key: np.zeros_like(param) for key in STATE_ARRAYS[name]
    }
    if name in ("adam", "adamw"):
        state["step"] = 0
    return state


def _param_and_grad(param: object, grad: object) -> tuple[np.ndarray, np.ndarray]:
    """float64 copies of ``param`` and ``grad``, which must have one shape."""
    param = as_float64("param", param)
    grad = as_float64("grad", grad)
    require_shape("grad", grad, param.shape)
    return param, grad


def _buffers(name: str, state: object, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    """The float64 buffers of ``state`` for optimizer ``name``, checked."""
    if not isinstance(state, dict) or any(k not in state for k in STATE_ARRAYS[name]):
        raise ValueError(
            f"state must be a dict with keys {', '.join(STATE_ARRAYS[name])} "
            f"(make it with init_state({name!r}, param)), got {_describe(state)}"
        )
    buffers = {}
    for key in STATE_ARRAYS[name]:
        buffers[key] = as_float64(f"state[{key!r}]", state[key])
        require_shape(f"state[{key!r}]", buffers[key], shape)
    return buffers


def _describe(state: object) -> str:
    """A short description of a bad ``state`` (never the arrays themselves)."""
    if isinstance(state, dict):
        return f"keys {sorted(map(str, state))}"
    return type(state).__name__


def _beta(name: str, value: float) -> float:
    """A decay rate in [0, 1)."""
    return require_in_range(name, value, 0.0, 1.0)


# ---------------------------------------------------------------- hyperparameters
# The checks of every optimizer's hyperparameters, called by the reference and
# by every backend (each returns the values as floats, in the order given).


def sgd_hyperparameters(
    lr: object, momentum: object, nesterov: object, weight_decay: object
) -> tuple[float, float, bool, float]:
    """``lr > 0``, ``momentum`` in [0, 1), ``nesterov`` a bool (Python or NumPy)
    that requires ``momentum > 0``, ``weight_decay >= 0``."""
    lr = require_positive("lr", lr)
    momentum = _beta("momentum", momentum)
    nesterov = require_flag("nesterov", nesterov)
    if nesterov and momentum == 0.0:
        raise ValueError("nesterov requires momentum > 0, got momentum=0")
    weight_decay = require_non_negative("weight_decay", weight_decay)
    return lr, momentum, nesterov, weight_decay


def adagrad_hyperparameters(lr: object, eps: object) -> tuple[float, float]:
    """``lr > 0``, ``eps > 0``."""
    return require_positive("lr", lr), require_positive("eps", eps)


def rmsprop_hyperparameters(
    lr: object, alpha: object, eps: object
) -> tuple[float, float, float]:
    """``lr > 0``, ``alpha`` in [0, 1), ``eps > 0``."""
    return (
        require_positive("lr", lr),
        _beta("alpha", alpha),
        require_positive("eps", eps),
    )


def adadelta_hyperparameters(
    lr: object, rho: object, eps: object
) -> tuple[float, float, float]:
    """``lr > 0``, ``rho`` in [0, 1), ``eps > 0``."""
    return require_positive("lr", lr), _beta("rho", rho), require_positive("eps", eps)


def adam_hyperparameters(
    lr: object, beta1: object, beta2: object, eps: object, weight_decay: object
) -> tuple[float, float, float, float, float]:
    """``lr``, ``eps`` > 0; ``beta1``, ``beta2`` in [0, 1); ``weight_decay >= 0``."""
    return (
        require_positive("lr", lr),
        _beta("beta1", beta1),
        _beta("beta2", beta2),
        require_positive("eps", eps),
        require_non_negative("weight_decay", weight_decay),
    )


def adamw_hyperparameters(
    lr: object, beta1: object, beta2: object, eps: object, weight_decay: object
) -> tuple[float, float, float, float, float]:
    """AdamW's ranges are Adam's (:func:`adam_hyperparameters`): ``lr``, ``eps``
    > 0; ``beta1``, ``beta2`` in [0, 1); ``weight_decay >= 0``."""
    return adam_hyperparameters(lr, beta1, beta2, eps, weight_decay)


def require_gradient_list(grads: object) -> list:
    """``grads`` of :func:`clip_grad_norm`: a list or tuple (of arrays)."""
    if not isinstance(grads, list | tuple):
        raise ArgumentKindError(
            f"grads must be a list of arrays, got {type(grads).__name__}"
        )
    return list(grads)


# ---------------------------------------------------------------------------- SGD


def sgd_step(
    param: np.ndarray,
    grad: np.ndarray,
    state: dict,
    *,
    lr: float,
    momentum: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
) -> tuple[np.ndarray, dict]:
    r"""One step of SGD, with optional (Nesterov) momentum, as ``torch.optim.SGD``.

    .. math::

        g_t = \nabla_w L(w_{t-1}) + \lambda w_{t-1}

        b_t = \mu b_{t-1} + g_t

        d_t = g_t + \mu b_t \quad\text{(Nesterov)} \qquad d_t = b_t \quad\text{(else)}

        w_t = w_{t-1} - \eta d_t

    with :math:`b_0 = 0` (dampening 0). At :math:`\mu = 0` this is plain
    (mini-batch) SGD, :math:`w_t = w_{t-1} - \eta g_t` (notes 002, eqn 1).

    Relation to the notes' momentum (notes 002, "SGD and momentum"):
    the notes write

    .. math::

        v_t = \gamma v_{t-1} + \eta g_t

        w_t = w_{t-1} - v_t

    With a constant :math:`\eta`, set :math:`v_t = \eta b_t` and
    :math:`\gamma = \mu`. Then

    .. math::

        v_t = \eta b_t = \eta (\mu b_{t-1} + g_t) = \mu (\eta b_{t-1}) + \eta g_t
            = \gamma v_{t-1} + \eta g_t

        w_t = w_{t-1} - \eta b_t = w_{t-1} - v_t

    so both produce the same iterates; they differ only when :math:`\eta` changes
    between steps (torch's buffer does not carry the old learning rate). See
    :func:`sgd_momentum_notes_step`.

    Nesterov (torch's form, Sutskever et al. 2013 rewritten at the look-ahead
    point): the step uses :math:`g_t + \mu b_t` instead of :math:`b_t`. The notes
    only sketch NAG in a figure.

    Parameters
    ----------
    param, grad : ndarray, one shape
    state : dict
        From ``init_state("sgd", param)`` or the previous step.
    lr : float
        :math:`\eta > 0`.
    momentum : float, default 0
        :math:`\mu \in [0, 1)`.
    nesterov : bool, default False
        Requires ``momentum > 0``.
    weight_decay : float, default 0
        :math:`\lambda \ge 0`, L2 added to the gradient.

    Returns
    -------
    (param, state) : new arrays; the inputs are not modified.
    """
    param, grad = _param_and_grad(param, grad)
    lr, momentum, nesterov, weight_decay = sgd_hyperparameters(
        lr, momentum, nesterov, weight_decay
    )
    buffer = _buffers("sgd", state, param.shape)["momentum_buffer"]
    g = grad + weight_decay * param
    buffer = momentum * buffer + g
    direction = g + momentum * buffer if nesterov else buffer
    return param - lr * direction, {"momentum_buffer": buffer}


def sgd_momentum_notes_step(
    param: np.ndarray,
    grad: np.ndarray,
    state: dict,
    *,
    lr: float,
    momentum: float,
) -> tuple[np.ndarray, dict]:
    r"""One step of SGD with momentum in the lecture notes' form (reference only).

    .. math::

        v_t = \gamma v_{t-1} + \eta g_t

        w_t = w_{t-1} - v_t

    with :math:`v_0 = 0` and :math:`\gamma` = ``momentum`` (notes 002, "Batch SGD
    with momentum"; the notes suggest :math:`\gamma = 0.9`). At a constant
    ``lr`` it gives the same iterates as :func:`sgd_step` with the same
    ``momentum``, and ``state["velocity"]`` equals ``lr * momentum_buffer`` (the
    derivation is in :func:`sgd_step`). No backend implements it; a property checks
    the equivalence.

    Parameters
    ----------
    param, grad : ndarray, one shape
    state : dict
        From ``init_state("sgd_momentum_notes", param)`` or the previous step.
    lr : float
        :math:`\eta > 0`.
    momentum : float
        :math:`\gamma \in [0, 1)`.

    Returns
    -------
    (param, state) : new arrays.
    """
    param, grad = _param_and_grad(param, grad)
    lr = require_positive("lr", lr)
    momentum = _beta("momentum", momentum)
    velocity = _buffers("sgd_momentum_notes", state, param.shape)["velocity"]
    velocity = momentum * velocity + lr * grad
    return param - velocity, {"velocity": velocity}


# ------------------------------------------------------------------------ Adagrad


def adagrad_step(
    param: np.ndarray,
    grad: np.ndarray,
    state: dict,
    *,
    lr: float,
    eps: float = 1e-10,
) -> tuple[np.ndarray, dict]:
    r"""One step of Adagrad, as ``torch.optim.Adagrad`` (no lr decay, sum from 0).

    .. math::

        d_t = d_{t-1} + g_t^2

        w_t = w_{t-1} - \eta \frac{g_t}{\sqrt{d_t} + \epsilon}

    with :math:`d_0 = 0` (``initial_accumulator_value=0``, ``lr_decay=0``) and
    Duchi et al. (2011).

    Relation to the notes (notes 002, "Adagrad"): the notes write
    :math:`\eta'_t = \eta / \sqrt{d_t + \epsilon}` with
    :math:`d_t = \sum_{i=1}^{t-1} g_i^2`. Two differences:

    - the sum must include the current gradient, :math:`\sum_{i=1}^{t} g_i^2`
      (with the notes' upper limit :math:`t-1` the first step divides by
      :math:`\sqrt{\epsilon}`): an off-by-one in the notes;
    - torch adds :math:`\epsilon` outside the square root. Both are the same
      idea; the values differ by :math:`O(\epsilon)`, and torch's form is the
      contract.

    Parameters
    ----------
    param, grad : ndarray, one shape
    state : dict
        From ``init_state("adagrad", param)``.
    lr : float
        :math:`\eta > 0`.
    eps : float, default 1e-10
        :math:`\epsilon > 0`.

    Returns
    -------
    (param, state) : new arrays.
    """
    param, grad = _param_and_grad(param, grad)
    lr, eps = adagrad_hyperparameters(lr, eps)
    total = _buffers("adagrad", state, param.shape)["sum"]
    total = total + grad**2
    return param - lr * grad / (np.sqrt(total) + eps), {"sum": total}


# ------------------------------------------------------------------------ RMSprop


def rmsprop_step(
    param: np.ndarray,
    grad: np.ndarray,
    state: dict,
    *,
    lr: float,
    alpha: float = 0.99,
    eps: float = 1e-8,
) -> tuple[np.ndarray, dict]:
    r"""One step of RMSprop, as ``torch.optim.RMSprop`` (not centered, no momentum).

    .. math::

        s_t = \alpha s_{t-1} + (1 - \alpha) g_t^2

        w_t = w_{t-1} - \eta \frac{g_t}{\sqrt{s_t} + \epsilon}

    with :math:`s_0 = 0` (Hinton, Coursera lecture 6e, 2012).

    Relation to the notes (notes 002, "AdaDelta and RMS Prop"): the formula the
    notes label "Adadelta",
    :math:`\eta'_t = \eta / \sqrt{\mathrm{eda}_t + \epsilon}` with
    :math:`\mathrm{eda}_t = \gamma\,\mathrm{eda}_{t-1} + (1-\gamma) g_t^2`, is in
    fact RMSprop (:math:`\gamma = \alpha`), with :math:`\epsilon` inside the root
    where torch adds it outside. See :func:`adadelta_step` for Adadelta proper.

    Parameters
    ----------
    param, grad : ndarray, one shape
    state : dict
        From ``init_state("rmsprop", param)``.
    lr : float
        :math:`\eta > 0` (torch's default 0.01 is not assumed: the contract
        requires it).
    alpha : float, default 0.99
        :math:`\alpha \in [0, 1)`.
    eps : float, default 1e-8
        :math:`\epsilon > 0`.

    Returns
    -------
    (param, state) : new arrays.
    """
    param, grad = _param_and_grad(param, grad)
    lr, alpha, eps = rmsprop_hyperparameters(lr, alpha, eps)
    square_avg = _buffers("rmsprop", state, param.shape)["square_avg"]
    square_avg = alpha * square_avg + (1.0 - alpha) * grad**2
    new_param = param - lr * grad / (np.sqrt(square_avg) + eps)
    return new_param, {"square_avg": square_avg}


# ----------------------------------------------------------------------- Adadelta


def adadelta_step(
    param: np.ndarray,
    grad: np.ndarray,
    state: dict,
    *,
    lr: float = 1.0,
    rho: float = 0.9,
    eps: float = 1e-6,
) -> tuple[np.ndarray, dict]:
    r"""One step of Adadelta, as ``torch.optim.Adadelta``.

    .. math::

        s_t = \rho s_{t-1} + (1 - \rho) g_t^2

        \Delta_t = \frac{\sqrt{u_{t-1} + \epsilon}}{\sqrt{s_t + \epsilon}} g_t

        u_t = \rho u_{t-1} + (1 - \rho) \Delta_t^2

        w_t = w_{t-1} - \eta \Delta_t

    with :math:`s_0 = u_0 = 0` (Zeiler, 2012). The ratio of the two running RMS
    replaces a learning rate: the paper has no :math:`\eta` (torch's ``lr=1.0``
    default reproduces it).

    Relation to the notes (notes 002): the formula the notes call "Adadelta" is
    RMSprop (no :math:`u_t`, an explicit :math:`\eta`); see
    :func:`rmsprop_step`. Adadelta adds the running average :math:`u_t` of the
    squared updates in the numerator.

    Parameters
    ----------
    param, grad : ndarray, one shape
    state : dict
        From ``init_state("adadelta", param)``.
    lr : float, default 1.0
        :math:`\eta > 0`.
    rho : float, default 0.9
        :math:`\rho \in [0, 1)`.
    eps : float, default 1e-6
        :math:`\epsilon > 0`.

    Returns
    -------
    (param, state) : new arrays.
    """
    param, grad = _param_and_grad(param, grad)
    lr, rho, eps = adadelta_hyperparameters(lr, rho, eps)
    buffers = _buffers("adadelta", state, param.shape)
    square_avg = rho * buffers["square_avg"] + (1.0 - rho) * grad**2
    delta = np.sqrt(buffers["acc_delta"] + eps) / np.sqrt(square_avg + eps) * grad
    acc_delta = rho * buffers["acc_delta"] + (1.0 - rho) * delta**2
    new_param = param - lr * delta
    return new_param, {"square_avg": square_avg, "acc_delta": acc_delta}


# --------------------------------------------------------------------------- Adam


def adam_step(
    param: np.ndarray,
    grad: np.ndarray,
    state: dict,
    *,
    lr: float,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
) -> tuple[np.ndarray, dict]:
    r"""One step of Adam, as ``torch.optim.Adam`` (L2 weight decay, not AdamW).

    .. math::

        g_t = \nabla_w L(w_{t-1}) + \lambda w_{t-1}

        m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t

        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2

        \hat m_t = m_t / (1 - \beta_1^t)

        \hat v_t = v_t / (1 - \beta_2^t)

        w_t = w_{t-1} - \eta \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}

    with :math:`m_0 = v_0 = 0`, :math:`t` counted from 1 (Kingma & Ba, 2015,
    Algorithm 1). This is exactly the form of notes 002 ("Adam", with
    :math:`\alpha = \eta`, typically 0.001). torch computes the same number as
    :math:`\frac{\eta}{1-\beta_1^t} \cdot m_t / (\sqrt{v_t}/\sqrt{1-\beta_2^t} +
    \epsilon)`; the reference writes the paper's form, which is equal in exact
    arithmetic.

    First step: :math:`\hat m_1 = g_1`, :math:`\hat v_1 = g_1^2`, so
    :math:`w_1 - w_0 = -\eta\, g_1 / (|g_1| + \epsilon) \approx -\eta\,
    \mathrm{sign}(g_1)`: every coordinate moves by about ``lr``.

    Parameters
    ----------
    param, grad : ndarray, one shape
    state : dict
        From ``init_state("adam", param)`` (``step`` counts the steps taken).
    lr : float
        :math:`\eta > 0`.
    beta1, beta2 : float, default 0.9 and 0.999
        Each in [0, 1) (torch's ``betas``).
    eps : float, default 1e-8
        :math:`\epsilon > 0`.
    weight_decay : float, default 0
        :math:`\lambda \ge 0`, L2 added to the gradient (torch's ``Adam``;
        :func:`adamw_step` decays the weights directly).

    Returns
    -------
    (param, state) : new arrays; ``state["step"]`` is one more.
    """
    param, grad = _param_and_grad(param, grad)
    lr, beta1, beta2, eps, weight_decay = adam_hyperparameters(
        lr, beta1, beta2, eps, weight_decay
    )
    g = grad + weight_decay * param
    direction, new_state = _adam_direction("adam", g, state, beta1, beta2, eps)
    return param - lr * direction, new_state


def _adam_direction(
    name: str, g: np.ndarray, state: object, beta1: float, beta2: float, eps: float
) -> tuple[np.ndarray, dict]:
    r"""Adam's direction :math:`\hat m_t / (\sqrt{\hat v_t} + \epsilon)` for the
    gradient ``g``, and the new state; ``state`` is checked as optimizer ``name``'s.
    """
    buffers = _buffers(name, state, g.shape)
    step = state.get("step")
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
        raise ValueError(f"state['step'] must be a non-negative int, got {step!r}")
    t = int(step) + 1
    exp_avg = beta1 * buffers["exp_avg"] + (1.0 - beta1) * g
    exp_avg_sq = beta2 * buffers["exp_avg_sq"] + (1.0 - beta2) * g**2
    m_hat = exp_avg / (1.0 - beta1**t)
    v_hat = exp_avg_sq / (1.0 - beta2**t)
    direction = m_hat / (np.sqrt(v_hat) + eps)
    return direction, {"step": t, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}


# -------------------------------------------------------------------------- AdamW


def adamw_step(
    param: np.ndarray,
    grad: np.ndarray,
    state: dict,
    *,
    lr: float = 1e-3,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
) -> tuple[np.ndarray, dict]:
    r"""One step of AdamW, as ``torch.optim.AdamW``: Adam with decoupled decay.

    .. math::

        m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t

        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2

        \hat m_t = m_t / (1 - \beta_1^t), \qquad \hat v_t = v_t / (1 - \beta_2^t)

        w_t = (1 - \eta \lambda) \, w_{t-1}
            - \eta \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}

    with :math:`g_t = \nabla_w L(w_{t-1})` the plain gradient,
    :math:`m_0 = v_0 = 0` and :math:`t` counted from 1. The moments are
    :func:`adam_step`'s; only the weight decay moves. Adam's L2 term
    :math:`\lambda w` is added to the gradient, so it passes through the
    moments and gets divided by :math:`\sqrt{\hat v_t}`: weights with large
    gradients are decayed less. AdamW shrinks the weights directly, by the same
    factor :math:`1 - \eta \lambda` for every coordinate, as plain SGD's weight
    decay would; for adaptive methods the two are not the same (Loshchilov and
    Hutter 2019, section 2), and decoupling the decay makes the best
    :math:`\lambda` less dependent on :math:`\eta`.

    The paper's Algorithm 2 writes the update as :math:`w_t = w_{t-1} - \eta_t
    (\alpha \hat m_t / (\sqrt{\hat v_t} + \epsilon) + \lambda w_{t-1})`, with a
    schedule multiplier :math:`\eta_t` apart from Adam's rate :math:`\alpha`.
    torch (and this reference) use one rate :math:`\eta` = ``lr`` (the paper's
    :math:`\eta_t \alpha`) for both terms, so torch's :math:`\lambda` is the
    paper's divided by :math:`\alpha`.
    With ``weight_decay = 0`` this is :func:`adam_step` with
    ``weight_decay = 0``, number for number.

    Parameters
    ----------
    param, grad : ndarray, one shape
    state : dict
        From ``init_state("adamw", param)`` (Adam's state; ``step`` counts the
        steps taken).
    lr : float, default 1e-3
        :math:`\eta > 0`.
    beta1, beta2 : float, default 0.9 and 0.999
        Each in [0, 1) (torch's ``betas``).
    eps : float, default 1e-8
        :math:`\epsilon > 0`.
    weight_decay : float, default 1e-2
        :math:`\lambda \ge 0`, the decoupled decay rate (torch's default).

    Returns
    -------
    (param, state) : new arrays; ``state["step"]`` is one more.

    References
    ----------
    Loshchilov, I. and Hutter, F. (2019). "Decoupled weight decay
    regularization." ICLR, Algorithm 2. Kingma and Ba (2015) for the moments.
    """
    param, grad = _param_and_grad(param, grad)
    lr, beta1, beta2, eps, weight_decay = adamw_hyperparameters(
        lr, beta1, beta2, eps, weight_decay
    )
    direction, new_state = _adam_direction("adamw", grad, state, beta1, beta2, eps)
    return param * (1.0 - lr * weight_decay) - lr * direction, new_state


# ----------------------------------------------------------------------- clipping


def clip_grad_norm(
    grads: Sequence[np.ndarray], *, max_norm: float
) -> tuple[list[np.ndarray], float]:
    r"""Clip a list of gradients by their global L2 norm.

    .. math::

        \|G\| = \sqrt{\sum_{i} \sum_{k} g_{ik}^2}

        g_i \leftarrow g_i \cdot \frac{\tau}{\|G\|} \quad\text{if}\quad \|G\| > \tau

    (unchanged otherwise), :math:`\tau` = ``max_norm``. The direction is kept and
    the clipped global norm equals :math:`\tau` exactly.

    Relation to the notes (notes 002, "Gradient monitoring and clipping"): the
    notes write :math:`\mathrm{Grad}_{new} = \mathrm{Grad} \cdot \tau /
    \|\mathrm{Grad}\|_2` without the condition, which would also scale small
    gradients UP to norm :math:`\tau`; and they say the new norm is "always less
    than :math:`\tau`" where it equals :math:`\tau`. Convention here: scale only
    when the norm exceeds :math:`\tau`, by exactly :math:`\tau/\|G\|` (torch's
    ``clip_grad_norm_`` uses :math:`\tau / (\|G\| + 10^{-6})`, clamped at 1; the
    torch backend adapts).

    Parameters
    ----------
    grads : list of ndarray
        The gradients of every parameter (any shapes); may be empty.
    max_norm : float
        :math:`\tau > 0`.

    Returns
    -------
    (grads, total_norm) : a new list of new arrays, and :math:`\|G\|` before
        clipping as a Python float.
    """
    max_norm = require_positive("max_norm", max_norm)
    grads = require_gradient_list(grads)
    arrays = [as_float64(f"grads[{i}]", g) for i, g in enumerate(grads)]
    total_norm = math.sqrt(sum(float(np.sum(g**2)) for g in arrays))
    if total_norm > max_norm:
        scale = max_norm / total_norm
        return [g * scale for g in arrays], total_norm
    return [g.copy() for g in arrays], total_norm
