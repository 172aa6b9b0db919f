"""Fréchet Audio Distance per class as DCASE 2023 Task 7 computed it (docs/reference.md, section 4).

:func:`fad_per_class`: the class FADs, their plain mean and bootstrap confidence intervals
(:func:`basic_interval`). The Fréchet distance and the embedding statistics live in :mod:`occ.metrics.frechet`,
the official evaluation-set statistics in :mod:`occ.metrics.dcase_eval_stats`, the DCASE VGGish front end in
:mod:`occ.metrics.vggish_frontend`.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from occ.errors import ConfigError
from occ.metrics.frechet import FastFD, as_stats, check_finite, embedding_stats, frechet_distance

__all__ = ["fad_per_class", "fad_label_free", "basic_interval"]


def fad_per_class(
    gen_emb: Mapping[str, np.ndarray],
    ref: Mapping[str, np.ndarray | tuple[np.ndarray, np.ndarray]],
    *,
    n_bootstrap: int = 0,
    seed: int = 0,
    ci: float = 0.95,
    method: str = "auto",
) -> pd.DataFrame:
    """FAD per class, their plain mean, and optional bootstrap confidence intervals.

    Parameters
    ----------
    gen_emb : mapping of str to np.ndarray [shape=(n, W, D) or (n, D)]
        Class -> embeddings of the generated clips (W windows per clip, all used).
    ref : mapping of str to np.ndarray or (mu, sigma)
        Class -> reference embeddings (same layout) or statistics
        (e.g. :func:`occ.metrics.dcase_eval_stats.load_dcase_reference`).
    n_bootstrap : int
        Bootstrap resamples (generated clips drawn with replacement, all windows of a clip kept);
        0 skips the intervals. The point estimate uses the DCASE ``sqrtm`` path; resamples use an exact
        eigenvalue path (same value to round-off, about 100x faster at D = 512).
    seed : int
        Seed of the bootstrap.
    ci : float
        Coverage of the interval (:func:`basic_interval`, bias-corrected: an interval for the generator's
        FAD with infinitely many clips; FAD from finitely many clips is biased upwards, so the interval can
        lie below the point estimate).
    method : {"auto", "dcase", "eig"}
        Point estimate: ``"dcase"`` = :func:`frechet_distance` (``scipy.linalg.sqrtm``, the DCASE code
        path); ``"eig"`` = the exact eigenvalue path (equal to round-off, about 100x faster at D = 512);
        ``"auto"`` = ``"dcase"`` for D <= 128 (VGGish, the DCASE metric), ``"eig"`` above (aiSFX, 512-d).

    Returns
    -------
    pandas.DataFrame
        Index: the classes then ``"Average"`` (the plain mean of the class FADs, as DCASE reported).
        Columns ``fad``, ``n_clips``; with bootstrap also ``ci_low``, ``ci_high`` (for ``"Average"``
        the interval of the mean over classes, resampled jointly).
    """
    missing = [c for c in gen_emb if c not in ref]
    if missing:
        raise ConfigError(f"fad_per_class: no reference for classes {missing} (reference has {sorted(ref)})")
    _check_method("fad_per_class", method)
    rng = np.random.default_rng(seed)
    rows, boots = {}, []
    for cls, emb in gen_emb.items():
        e = _windows(emb)
        check_finite(e, f"fad_per_class: the generated embeddings of class {cls!r}")
        ref_cls = ref[cls]
        if isinstance(ref_cls, tuple):
            check_finite(np.asarray(ref_cls[0], np.float64), f"fad_per_class: the reference mean of class {cls!r}")
            check_finite(np.asarray(ref_cls[1], np.float64), f"fad_per_class: the reference covariance of class {cls!r}")
        else:
            check_finite(np.asarray(ref_cls, np.float64), f"fad_per_class: the reference embeddings of class {cls!r}")
        mu_r, sigma_r = as_stats(ref_cls)
        use_eig = _uses_eig(method, e.shape[-1])
        fast = FastFD(mu_r, sigma_r) if (use_eig or n_bootstrap > 0) else None
        fad = fast(e) if use_eig else frechet_distance(mu_r, sigma_r, *embedding_stats(e))
        row = {"fad": fad, "n_clips": e.shape[0]}
        if n_bootstrap > 0:
            vals = np.empty(n_bootstrap)
            for b in range(n_bootstrap):
                idx = rng.integers(0, e.shape[0], size=e.shape[0])
                vals[b] = fast(e[idx])
            boots.append(vals)
            lo, hi = basic_interval(fad, vals, ci=ci)
            row.update(ci_low=lo, ci_high=hi)
        rows[cls] = row
    df = pd.DataFrame.from_dict(rows, orient="index")
    avg = {"fad": float(df["fad"].mean()), "n_clips": int(df["n_clips"].sum())}
    if n_bootstrap > 0:
        lo, hi = basic_interval(avg["fad"], np.mean(np.stack(boots), axis=0), ci=ci)
        avg.update(ci_low=lo, ci_high=hi)
    df.loc["Average"] = avg
    df["n_clips"] = df["n_clips"].astype(int)
    df.index.name = "class"
    return df


def fad_label_free(gen_emb: Mapping[str, np.ndarray], ref: Mapping[str, np.ndarray | tuple[np.ndarray, np.ndarray]],
                   *, method: str = "auto") -> float:
    """The FAD of all generated clips against all reference clips, whatever their class: how the clips sound as a
    set, blind to the labels they were made under (per-class FAD also punishes a good clip made under another
    label).

    Parameters
    ----------
    gen_emb, ref : mapping
        As :func:`fad_per_class`: class -> embeddings (or, for ``ref``, ``(mu, sigma)``); the reference classes used
        are those of ``gen_emb``. Embeddings are pooled; statistics are pooled as an equal mixture of the classes
        (mean of the means; mean of ``sigma + mu mu^T`` minus the pooled ``mu mu^T``).
    method : {"auto", "dcase", "eig"}
        As :func:`fad_per_class`.
    """
    missing = [c for c in gen_emb if c not in ref]
    if missing:
        raise ConfigError(f"fad_label_free: no reference for classes {missing} (reference has {sorted(ref)})")
    _check_method("fad_label_free", method)
    gen = np.concatenate([_windows(gen_emb[c]) for c in gen_emb])
    check_finite(gen, "fad_label_free: the generated embeddings")
    refs = [ref[c] for c in gen_emb]
    if any(isinstance(r, tuple) for r in refs):
        stats = [as_stats(r) for r in refs]
        mu = np.mean([m for m, _ in stats], axis=0)
        sigma = np.mean([s + np.outer(m, m) for m, s in stats], axis=0) - np.outer(mu, mu)
    else:
        pooled = np.concatenate([_windows(r) for r in refs])
        check_finite(pooled, "fad_label_free: the reference embeddings")
        mu, sigma = embedding_stats(pooled)
    if _uses_eig(method, gen.shape[-1]):
        return float(FastFD(mu, sigma)(gen))
    return float(frechet_distance(mu, sigma, *embedding_stats(gen)))


def _check_method(who: str, method: str) -> None:
    if method not in ("auto", "dcase", "eig"):
        raise ConfigError(f"{who}: method={method!r} is unknown; use 'auto', 'dcase' or 'eig'")


def _uses_eig(method: str, dim: int) -> bool:
    """Whether the point estimate takes the eigenvalue path: ``"eig"``, or ``"auto"`` above 128 dimensions."""
    return method == "eig" or (method == "auto" and dim > 128)


def _windows(emb: np.ndarray) -> np.ndarray:
    """Embeddings as (clips, windows, D) float64."""
    e = np.asarray(emb, dtype=np.float64)
    return e[:, None, :] if e.ndim == 2 else e


def basic_interval(point: float, boot: np.ndarray, *, ci: float = 0.95) -> tuple[float, float]:
    """The basic (reverse-percentile) bootstrap interval ``[2 t - q_hi, 2 t - q_lo]``.

    Percentile intervals inherit the bootstrap's bias: FAD of a resample with repeated clips is larger
    than FAD of the clips, so a percentile interval can lie entirely above the estimate ``t``. The
    basic interval reflects the bootstrap quantiles ``q_lo, q_hi`` (at ``(1 - ci) / 2`` and
    ``(1 + ci) / 2``) around ``t``, which removes that bias to first order (Davison & Hinkley 1997, 5.2).
    FAD from ``n`` clips is itself biased upwards (the bootstrap measures by how much), so where that bias
    exceeds half the spread the interval lies entirely below ``t``: it bounds the FAD of infinitely many
    clips, not the estimate.
    """
    if not 0.0 < ci < 1.0:
        raise ConfigError(f"basic_interval: ci={ci} must lie in (0, 1)")
    q_lo, q_hi = np.percentile(np.asarray(boot, dtype=np.float64), [50 * (1 - ci), 100 - 50 * (1 - ci)])
    return float(2 * point - q_hi), float(2 * point - q_lo)
