"""Precision, recall, density and coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics
for Generative Models", ICML) in an embedding space, per class.

With ``r_i`` the real and ``f_j`` the fake embeddings (one per clip: the mean over its windows),
``NND_k(x)`` the distance from ``x`` to its k-th nearest neighbour in its own set (itself excluded) and
``B(x, r)`` the closed ball:

* precision = (1/M) sum_j 1[f_j in some B(r_i, NND_k(r_i))]
* recall    = (1/N) sum_i 1[r_i in some B(f_j, NND_k(f_j))]
* density   = (1/(kM)) sum_j sum_i 1[f_j in B(r_i, NND_k(r_i))]
* coverage  = (1/N) sum_i 1[min_j d(r_i, f_j) <= NND_k(r_i)]

Euclidean distances; k = 5 by default (the paper's choice).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd
from scipy.spatial.distance import cdist

from occ.errors import ConfigError

__all__ = ["clip_embeddings", "knn_radii", "prdc", "prdc_per_class"]


def clip_embeddings(emb: np.ndarray) -> np.ndarray:
    """One embedding per clip: (n, W, D) -> mean over windows (n, D); (n, D) unchanged."""
    e = np.asarray(emb, dtype=np.float64)
    return e.mean(axis=1) if e.ndim == 3 else e


def knn_radii(x: np.ndarray, *, k: int) -> np.ndarray:
    """Distance from each row of ``x`` (n, D) to its k-th nearest other row, (n,)."""
    d = cdist(x, x)
    return np.partition(d, k, axis=1)[:, k]  # column 0 is the point itself (distance 0)


def prdc(real: np.ndarray, fake: np.ndarray, *, k: int = 5) -> dict[str, float]:
    """Precision, recall, density and coverage of ``fake`` against ``real``.

    Parameters
    ----------
    real : np.ndarray [shape=(N, D)]
        Real embeddings (N > k).
    fake : np.ndarray [shape=(M, D)]
        Generated embeddings (M > k).
    k : int
        Neighbourhood size.

    Returns
    -------
    dict
        ``precision``, ``recall``, ``coverage`` in [0, 1]; ``density`` >= 0 (1 on average for matched
        distributions).
    """
    r, f = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if r.ndim != 2 or f.ndim != 2 or r.shape[1] != f.shape[1]:
        raise ConfigError(f"prdc: expected real (N, D) and fake (M, D) with equal D, got {r.shape} and {f.shape}")
    if k < 1 or r.shape[0] <= k or f.shape[0] <= k:
        raise ConfigError(f"prdc: k={k} needs more than k real and fake samples (got {r.shape[0]} and {f.shape[0]})")
    r_rad, f_rad = knn_radii(r, k=k), knn_radii(f, k=k)
    d = cdist(r, f)  # (N, M)
    inside_real = d <= r_rad[:, None]  # f_j in B(r_i)
    return {
        "precision": float(inside_real.any(axis=0).mean()),
        "recall": float((d <= f_rad[None, :]).any(axis=1).mean()),
        "density": float(inside_real.sum() / (k * f.shape[0])),
        "coverage": float((d.min(axis=1) <= r_rad).mean()),
    }


def prdc_per_class(real_emb: Mapping[str, np.ndarray], fake_emb: Mapping[str, np.ndarray], *, k: int = 5) -> pd.DataFrame:
    """:func:`prdc` per class on per-clip mean embeddings, plus the plain mean over classes.

    Parameters
    ----------
    real_emb, fake_emb : mapping of str to np.ndarray [shape=(n, W, D) or (n, D)]
        Class -> embeddings.
    k : int

    Returns
    -------
    pandas.DataFrame
        Index: classes then ``"Average"``; columns precision, recall, density, coverage.
    """
    missing = [c for c in fake_emb if c not in real_emb]
    if missing:
        raise ConfigError(f"prdc_per_class: no real embeddings for classes {missing}")
    rows = {c: prdc(clip_embeddings(real_emb[c]), clip_embeddings(e), k=k) for c, e in fake_emb.items()}
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.loc["Average"] = df.mean(axis=0)
    df.index.name = "class"
    return df
