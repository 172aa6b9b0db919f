"""Fréchet distance between Gaussians fitted to embeddings, as DCASE 2023 Task 7 computed it (docs/reference.md, section 4).

* :func:`frechet_distance`: ``|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr(sqrtm(S1 S2))`` with
  ``scipy.linalg.sqrtm``; if the square root is not finite, retried with 1e-7 added to both diagonals;
  an error if an imaginary part on its diagonal exceeds 1e-3, else the real part (dcase2023_task7_eval_fad,
  ``fad_utils.py``). :func:`frechet_distance_eig` is an independent symmetric-eigendecomposition path
  (``tr sqrt(S1^1/2 S2 S1^1/2)``) used to cross-check it.
* :func:`embedding_stats`: float64 mean and unbiased covariance; :func:`as_stats`: statistics of a reference
  given as embeddings or as ``(mu, sigma)``; :func:`check_finite`: the error naming a broken input.
* :class:`FastFD`: the exact eigenvalue path against one fixed reference, for the large-D point estimate
  and the bootstrap of :func:`occ.metrics.fad.fad_per_class`.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from occ.errors import ConfigError, DataError

__all__ = ["frechet_distance", "frechet_distance_eig", "embedding_stats", "as_stats", "check_finite", "FastFD"]


def _check_stats(mu1, sigma1, mu2, sigma2) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.ndim != 1 or mu1.shape != mu2.shape:
        raise ConfigError(f"frechet_distance: means must be 1-D of equal length, got {mu1.shape} and {mu2.shape}")
    d = mu1.shape[0]
    if sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ConfigError(
            f"frechet_distance: covariances must be ({d}, {d}), got {sigma1.shape} and {sigma2.shape} "
            "(statistics from different embeddings?)"
        )
    for name, value in (("mu1", mu1), ("sigma1", sigma1), ("mu2", mu2), ("sigma2", sigma2)):
        check_finite(value, f"frechet_distance: {name}")
    return mu1, sigma1, mu2, sigma2


def check_finite(value: np.ndarray, what: str) -> None:
    """DataError naming ``what`` when ``value`` holds NaN or infinite entries."""
    bad = ~np.isfinite(value)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DataError(
            f"{what} holds {int(bad.sum())} NaN or infinite value(s) (first at {list(first)}); the FAD would be "
            "meaningless. The embeddings or statistics behind it are broken: recompute them (a diverged "
            "generator or a damaged statistics file)."
        )


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, *, eps: float = 1e-7) -> float:
    """Fréchet distance between two Gaussians, computed exactly as the DCASE evaluation did.

    Parameters
    ----------
    mu1, mu2 : np.ndarray [shape=(D,)]
        Means.
    sigma1, sigma2 : np.ndarray [shape=(D, D)]
        Covariances.
    eps : float
        Diagonal offset of the retry when ``sqrtm(S1 @ S2)`` is not finite.

    Returns
    -------
    float
        ``|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr(sqrtm(S1 @ S2))``.

    Raises
    ------
    ValueError (ConfigError)
        Shapes differ, or the square root has an imaginary diagonal entry larger than 1e-3.
    DataError
        A mean or covariance holds NaN or infinite values (the message names which).
    """
    mu1, sigma1, mu2, sigma2 = _check_stats(mu1, sigma1, mu2, sigma2)
    root = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if isinstance(root, tuple):  # older scipy: (root, error) when disp=False
        root = root[0]
    if not np.isfinite(root).all():
        offset = np.eye(sigma1.shape[0]) * eps
        root = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
        if isinstance(root, tuple):
            root = root[0]
    if np.iscomplexobj(root):
        if not np.allclose(np.diagonal(root).imag, 0, atol=1e-3):
            raise ConfigError(
                f"frechet_distance: sqrtm(S1 S2) has imaginary diagonal entries up to "
                f"{np.abs(np.diagonal(root).imag).max():.3g} (> 1e-3); the covariances are badly conditioned "
                "(too few embeddings for the dimension?)"
            )
        root = root.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(root))


def frechet_distance_eig(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance by symmetric eigendecompositions (a cross-check of :func:`frechet_distance`).

    ``tr sqrtm(S1 S2) = tr sqrt(S1^1/2 S2 S1^1/2)``, both square roots taken with ``numpy.linalg.eigh``
    (negative eigenvalues from round-off clamped to 0).

    Parameters
    ----------
    mu1, mu2 : np.ndarray [shape=(D,)]
    sigma1, sigma2 : np.ndarray [shape=(D, D)], symmetric positive semi-definite

    Returns
    -------
    float
    """
    mu1, sigma1, mu2, sigma2 = _check_stats(mu1, sigma1, mu2, sigma2)
    w, v = np.linalg.eigh((sigma1 + sigma1.T) / 2.0)
    half = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    inner = half @ sigma2 @ half
    lam = np.linalg.eigvalsh((inner + inner.T) / 2.0)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.sqrt(np.clip(lam, 0.0, None)).sum())


def embedding_stats(emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance of embeddings, float64.

    Parameters
    ----------
    emb : np.ndarray [shape=(n, D) or (n, W, D)]
        Embeddings; windows are pooled (``reshape(-1, D)``) as FAD uses every window.

    Returns
    -------
    mu : np.ndarray [shape=(D,), float64]
    sigma : np.ndarray [shape=(D, D), float64]
        ``np.cov(emb, rowvar=False)`` (divides by n - 1).
    """
    e = np.asarray(emb, dtype=np.float64)
    e = e.reshape(-1, e.shape[-1])
    if e.shape[0] < 2:
        raise DataError(f"embedding_stats: need at least 2 embeddings for a covariance, got {e.shape[0]}")
    return e.mean(axis=0), np.cov(e, rowvar=False)


class FastFD:
    """Fréchet distance of many embedding sets against one fixed reference (the bootstrap, 512-d embeddings).

    Exact, by eigenvalues: ``tr sqrtm(S_r S_g) = sum sqrt(eig(S_r^1/2 S_g S_r^1/2))``; with ``X`` the
    centred generated embeddings (m, D) and ``m <= D`` the non-zero eigenvalues equal those of the
    small Gram matrix ``X S_r X^T / (m - 1)``. About 100x faster than ``scipy.linalg.sqrtm`` at D = 512.
    """

    def __init__(self, mu: np.ndarray, sigma: np.ndarray) -> None:
        self.mu, self.sigma = mu, sigma
        self.trace = float(np.trace(sigma))
        self._half: np.ndarray | None = None  # S_r^1/2, computed when first needed (m > D)

    @property
    def half(self) -> np.ndarray:
        if self._half is None:
            w, v = np.linalg.eigh((self.sigma + self.sigma.T) / 2.0)
            self._half = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
        return self._half

    def __call__(self, emb: np.ndarray) -> float:
        e = emb.reshape(-1, emb.shape[-1])
        m = e.shape[0]
        mu = e.mean(axis=0)
        xc = e - mu
        if m <= e.shape[1]:
            gram = xc @ self.sigma @ xc.T / (m - 1)
        else:
            y = xc @ self.half
            gram = y.T @ y / (m - 1)
        lam = np.linalg.eigvalsh((gram + gram.T) / 2.0)
        diff = mu - self.mu
        tr_g = float((xc * xc).sum() / (m - 1))
        return float(diff @ diff + self.trace + tr_g - 2.0 * np.sqrt(np.clip(lam, 0.0, None)).sum())


def as_stats(ref) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) from a (mu, sigma) pair or from embeddings."""
    if isinstance(ref, tuple) and len(ref) == 2 and np.ndim(ref[1]) == 2 and np.ndim(ref[0]) == 1:
        return np.asarray(ref[0], np.float64), np.asarray(ref[1], np.float64)
    return embedding_stats(np.asarray(ref))
