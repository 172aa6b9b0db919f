"""Intervals over training seeds and the verdict rule for the paper's claims.

A GAN trained from another seed lands somewhere else, so one run per model decides nothing. Every model is
trained and evaluated once per seed; a number is reported as its mean over seeds with a Student t interval
(n - 1 degrees of freedom), and a claim "A < B" is decided by the paired differences A - B over the seeds
both were run with (same seed: same initial generator, same training draws up to the loss, same evaluation
latents):

* "reproduced": the 95% interval of the mean paired difference lies entirely on the paper's side of 0;
* "contradicted": it lies entirely on the other side;
* "not established": it contains 0, or fewer than two seeds are paired.

The interval's half-width is the smallest mean difference this design could have told from 0; a claim that
is "not established" is one whose true effect, if any, is smaller than about that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd
from scipy import stats as _scipy_stats

__all__ = ["VERDICTS", "Interval", "Paired", "t_interval", "paired_comparison", "by_seed"]

VERDICTS = ("reproduced", "contradicted", "not established")


@dataclass(frozen=True)
class Interval:
    """Mean of a sample with its Student t confidence interval.

    Attributes
    ----------
    mean : float
        Sample mean (NaN for an empty sample).
    low, high : float
        Bounds of the interval; NaN when n < 2.
    half_width : float
        t_{(1 + confidence) / 2, n - 1} * s / sqrt(n); NaN when n < 2.
    n : int
        Number of values (NaN values are dropped first).
    """

    mean: float
    low: float
    high: float
    half_width: float
    n: int


@dataclass(frozen=True)
class Paired:
    """A paired comparison of two models over the seeds both were run with.

    Attributes
    ----------
    mean, low, high, half_width, n :
        The t interval of the per-seed differences a - b (see `Interval`).
    seeds : tuple of int
        The seeds that were paired, sorted.
    differences : tuple of float
        a - b per paired seed, in the order of `seeds`.
    paper_side : str
        "less" (the paper reports a < b) or "greater" (a > b).
    verdict : str
        One of `VERDICTS`.
    """

    mean: float
    low: float
    high: float
    half_width: float
    n: int
    seeds: tuple
    differences: tuple
    paper_side: str
    verdict: str


def t_interval(values, confidence: float = 0.95) -> Interval:
    """Mean and Student t interval (n - 1 degrees of freedom) of a sample.

    Parameters
    ----------
    values : array-like of float
        One value per seed; NaN values are ignored.
    confidence : float
        Two-sided coverage, in (0, 1).

    Returns
    -------
    Interval
        With n = 1 the mean is the value and the bounds and half-width are NaN; with n = 0 everything is NaN.
        With n >= 2 and no spread the interval has zero width.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence = {confidence} is not in (0, 1)")
    x = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=float).ravel()
    x = x[~np.isnan(x)]
    n = int(x.size)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if n == 1:
        return Interval(mean, math.nan, math.nan, math.nan, 1)
    sem = float(x.std(ddof=1)) / math.sqrt(n)
    half = float(_scipy_stats.t.ppf(0.5 + confidence / 2.0, n - 1)) * sem
    return Interval(mean, mean - half, mean + half, half, n)


def paired_comparison(a: Mapping[int, float], b: Mapping[int, float], *, paper_side: str = "less",
                      confidence: float = 0.95) -> Paired:
    """The mean paired difference a - b over the seeds present in both, its t interval and the verdict.

    Parameters
    ----------
    a, b : mapping of int to float
        seed -> value of one model (a dict or a pandas Series indexed by seed). Seeds missing from either
        side, and NaN values, are left out of the pairing.
    paper_side : str
        "less" when the paper reports a < b (a difference below 0 agrees with it), "greater" when it
        reports a > b.
    confidence : float
        Coverage of the interval.

    Returns
    -------
    Paired
        verdict "reproduced" when the interval lies entirely on the paper's side of 0, "contradicted" when
        it lies entirely on the other side, "not established" when it contains 0 or fewer than two seeds
        are paired.
    """
    if paper_side not in ("less", "greater"):
        raise ValueError(f"paper_side = {paper_side!r} is not 'less' or 'greater'")
    a, b = dict(a.items()), dict(b.items())
    seeds = tuple(sorted(s for s in set(a) & set(b) if not (_isnan(a[s]) or _isnan(b[s]))))
    diffs = tuple(float(a[s]) - float(b[s]) for s in seeds)
    iv = t_interval(diffs, confidence)
    verdict = "not established"
    if iv.n >= 2 and not math.isnan(iv.low):
        below, above = iv.high < 0.0, iv.low > 0.0
        agrees, disagrees = (below, above) if paper_side == "less" else (above, below)
        if agrees:
            verdict = "reproduced"
        elif disagrees:
            verdict = "contradicted"
    return Paired(iv.mean, iv.low, iv.high, iv.half_width, iv.n, seeds, diffs, paper_side, verdict)


def by_seed(per_seed: Mapping[int, Mapping], key: str) -> dict[int, float]:
    """seed -> `per_seed[seed][key]`, for the seeds whose dict (or Series) holds the key with a number (not None/NaN)."""
    out = {}
    for seed, d in per_seed.items():
        v = d.get(key) if hasattr(d, "get") else None
        if not _isnan(v):
            out[int(seed)] = float(v)
    return out


def _isnan(v) -> bool:
    try:
        return v is None or bool(pd.isna(v))
    except (TypeError, ValueError):
        return False
