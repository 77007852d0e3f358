r"""Data preprocessing: centering, standardising, PCA, PCA and ZCA whitening.

Data ``x`` has shape ``(N, D)``: N samples (rows) of D features (columns), as
cs231n's ``X``. Every statistic is over the samples (axis 0).

Conventions
-----------
- Covariance with :math:`1/N` (the maximum-likelihood, biased estimate), as
  cs231n's ``np.dot(X.T, X) / X.shape[0]``; the standard deviation of
  :func:`standardize` matches it (``ddof=0``).
- PCA components are the eigenvectors of that covariance, sorted by decreasing
  eigenvalue (variance), orthonormal. An eigenvector's sign is arbitrary, so the
  reference fixes it: the entry of largest magnitude of each component is
  positive (the first such entry on ties). Eigenvalues below 0 (round-off of a
  singular covariance) are set to 0.
- Whitening divides by :math:`\sqrt{\lambda + \epsilon}`; ``eps`` (default
  1e-5, cs231n's value) keeps directions of (near) zero variance from blowing up.
  With :math:`\epsilon > 0` the whitened covariance is
  :math:`\mathrm{diag}(\lambda / (\lambda + \epsilon))`, close to but not exactly
  the identity; with ``eps=0`` it is the identity, and every kept variance must
  then be positive.

Sources
-------
Notes 001 ("Data preprocessing": zero-mean data; "In practice, we may also see
PCA and Whitening"; rule of thumb for images: center only) and notes 000
("Decorrelation": the covariance becomes diagonal; "Whitening": additionally unit
variance). The formulas are those of cs231n, "Neural Networks Part 2: data
preprocessing"; ZCA is Bell & Sejnowski (1997), see Kessy, Lewin & Strimmer
(2018), "Optimal whitening and decorrelation".

The lecture notes cited as "notes 000" … "notes 004" are described in
``docs/bibliography.md``, with the papers.
"""

from __future__ import annotations

import numbers

import numpy as np

from reference._checks import as_float64, require_non_negative

__all__ = [
    "center",
    "covariance",
    "pca",
    "pca_whiten",
    "standardize",
    "zca_whiten",
]


def _data(x: object) -> np.ndarray:
    """``x`` as float64 of shape ``(N, D)`` with ``N >= 1`` and ``D >= 1``."""
    data = as_float64("x", x, ndim=2)
    if data.shape[0] < 1 or data.shape[1] < 1:
        raise ValueError(
            f"x must have N >= 1 samples and D >= 1 features, got {data.shape}"
        )
    return data


def center(x: np.ndarray) -> np.ndarray:
    r"""Subtract the per-feature mean.

    .. math::

        \mu_d = \frac{1}{N} \sum_{n} x_{nd}

        \tilde x_{nd} = x_{nd} - \mu_d

    Parameters
    ----------
    x : ndarray of shape `(N, D)`

    Returns
    -------
    x_centered : ndarray of shape `(N, D)`, every column of mean 0.
    """
    x = _data(x)
    return x - np.mean(x, axis=0)


def standardize(x: np.ndarray, *, eps: float = 0.0) -> np.ndarray:
    r"""Center and scale every feature to unit variance.

    .. math::

        \sigma_d^2 = \frac{1}{N} \sum_{n} (x_{nd} - \mu_d)^2

        \hat x_{nd} = \frac{x_{nd} - \mu_d}{\sqrt{\sigma_d^2 + \epsilon}}

    Parameters
    ----------
    x : ndarray of shape `(N, D)`
    eps : float, default 0.0
        :math:`\epsilon \ge 0`. With the default, a constant feature
        (:math:`\sigma_d = 0`) is an error; pass ``eps > 0`` to allow it.

    Returns
    -------
    x_standardized : ndarray of shape `(N, D)`
        Mean 0 and (with ``eps=0``) variance 1 per column.
    """
    eps = require_non_negative("eps", eps)
    x = _data(x)
    variance = np.var(x, axis=0)
    if np.any(variance + eps <= 0.0):
        raise ValueError("x has a constant feature (variance 0): pass eps > 0")
    return (x - np.mean(x, axis=0)) / np.sqrt(variance + eps)


def covariance(x: np.ndarray) -> np.ndarray:
    r"""Covariance matrix of the features, with :math:`1/N`.

    .. math::

        \Sigma = \frac{1}{N} \tilde X^\top \tilde X

    with :math:`\tilde X` the centered data.

    Parameters
    ----------
    x : ndarray of shape `(N, D)`

    Returns
    -------
    sigma : ndarray of shape `(D, D)`, symmetric positive semi-definite.
    """
    centered = center(x)
    return centered.T @ centered / centered.shape[0]


def _num_components(num_components: object, d: int) -> int:
    if num_components is None:
        return d
    if (
        isinstance(num_components, bool)
        or not isinstance(num_components, numbers.Integral)
        or not 1 <= num_components <= d
    ):
        raise ValueError(
            f"num_components must be an int in [1, {d}], got {num_components!r}"
        )
    return int(num_components)


def pca(
    x: np.ndarray, *, num_components: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Principal component analysis: project centered data on the top components.

    .. math::

        \Sigma = U \Lambda U^\top, \quad \lambda_1 \ge \lambda_2 \ge \dots \ge \lambda_D

        x^{rot}_n = U_k^\top \tilde x_n

    Parameters
    ----------
    x : ndarray of shape `(N, D)`
    num_components : int, optional
        :math:`k \in [1, D]`, the number of components kept; all D by default.

    Returns
    -------
    x_rot : ndarray of shape `(N, k)`
        Coordinates of the centered data on the components; column ``i`` has
        variance ``variances[i]`` and the columns are uncorrelated (decorrelation,
        notes 000).
    components : ndarray of shape `(k, D)`
        The principal directions as ROWS (``components @ components.T`` is the
        identity), sorted by decreasing variance, signs fixed so that each row's
        entry of largest magnitude is positive.
    variances : ndarray of shape `(k,)`
        The eigenvalues :math:`\lambda_1 \ge \dots \ge \lambda_k \ge 0`.

    Notes
    -----
    cs231n computes ``U, S, V = np.linalg.svd(cov)`` and ``Xrot = X @ U``; the
    reference uses ``np.linalg.eigh`` of the symmetric covariance, the same
    subspace, and fixes the sign and order explicitly.
    """
    x = _data(x)
    k = _num_components(num_components, x.shape[1])
    centered = center(x)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance(x))
    order = np.argsort(eigenvalues, kind="stable")[::-1]
    variances = np.maximum(eigenvalues[order], 0.0)[:k]
    components = eigenvectors[:, order].T[:k]
    largest = np.argmax(np.abs(components), axis=1)
    signs = np.sign(components[np.arange(k), largest])
    components = components * signs[:, None]
    return centered @ components.T, components, variances


def pca_whiten(
    x: np.ndarray, *, eps: float = 1e-5, num_components: int | None = None
) -> np.ndarray:
    r"""PCA whitening: rotate onto the principal components, scale to unit variance.

    .. math::

        x^{white}_{ni} = \frac{x^{rot}_{ni}}{\sqrt{\lambda_i + \epsilon}}

    Parameters
    ----------
    x : ndarray of shape `(N, D)`
    eps : float, default 1e-5
        :math:`\epsilon \ge 0` added to each variance (cs231n's ``1e-5``).
    num_components : int, optional
        As :func:`pca`.

    Returns
    -------
    x_white : ndarray of shape `(N, k)`
        Covariance :math:`\mathrm{diag}(\lambda_i / (\lambda_i + \epsilon))`:
        the identity when ``eps=0``.

    Raises
    ------
    ValueError
        Naming ``eps`` if ``eps=0`` and a kept variance is 0.
    """
    eps = require_non_negative("eps", eps)
    x_rot, _, variances = pca(x, num_components=num_components)
    if np.any(variances + eps <= 0.0):
        raise ValueError("eps must be > 0 when a kept variance of x is 0")
    return x_rot / np.sqrt(variances + eps)


def zca_whiten(x: np.ndarray, *, eps: float = 1e-5) -> np.ndarray:
    r"""ZCA (zero-phase, Mahalanobis) whitening: PCA whitening rotated back.

    .. math::

        x^{zca}_n = U (\Lambda + \epsilon I)^{-1/2} U^\top \tilde x_n

    Parameters
    ----------
    x : ndarray of shape `(N, D)`
    eps : float, default 1e-5
        :math:`\epsilon \ge 0` added to each eigenvalue before the inverse square
        root. It regularises directions of tiny variance (in images, mostly
        noise): larger values whiten less and keep more of the original look.

    Returns
    -------
    x_zca : ndarray of shape `(N, D)`
        Covariance :math:`U \mathrm{diag}(\lambda / (\lambda + \epsilon)) U^\top`:
        the identity when ``eps=0``. Of all whitenings of the data, ZCA's output is
        the closest to the centered input (Kessy et al., 2018); it does not depend
        on the eigenvectors' signs.

    Raises
    ------
    ValueError
        Naming ``eps`` if ``eps=0`` and a variance of x is 0.
    """
    eps = require_non_negative("eps", eps)
    x_rot, components, variances = pca(x)
    if np.any(variances + eps <= 0.0):
        raise ValueError("eps must be > 0 when a variance of x is 0")
    return (x_rot / np.sqrt(variances + eps)) @ components
