"""Tests of occ.metrics.diversity: PRDC against a brute-force restatement and on degenerate cases."""

from __future__ import annotations

import numpy as np
import pytest

from occ.metrics.diversity import prdc, prdc_per_class


def _brute(real, fake, k):
    def radii(x):
        out = []
        for i in range(len(x)):
            d = sorted(np.linalg.norm(x[i] - x[j]) for j in range(len(x)) if j != i)
            out.append(d[k - 1])
        return np.array(out)

    rr, fr = radii(real), radii(fake)
    n, m = len(real), len(fake)
    prec = np.mean([any(np.linalg.norm(f - r) <= rr[i] for i, r in enumerate(real)) for f in fake])
    rec = np.mean([any(np.linalg.norm(r - f) <= fr[j] for j, f in enumerate(fake)) for r in real])
    dens = sum(np.linalg.norm(f - r) <= rr[i] for f in fake for i, r in enumerate(real)) / (k * m)
    cov = np.mean([min(np.linalg.norm(r - f) for f in fake) <= rr[i] for i, r in enumerate(real)])
    return {"precision": prec, "recall": rec, "density": dens, "coverage": cov}


@pytest.mark.parametrize("seed", range(3))
def test_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    real, fake = rng.standard_normal((30, 4)), rng.standard_normal((25, 4)) * 1.3 + 0.3
    got, want = prdc(real, fake, k=3), _brute(real, fake, 3)
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=1e-12), key


def test_identical_sets():
    real = np.random.default_rng(0).standard_normal((40, 5))
    res = prdc(real, real.copy(), k=5)
    assert res["precision"] == res["recall"] == res["coverage"] == 1.0


def test_mode_collapse():
    rng = np.random.default_rng(1)
    real = rng.standard_normal((100, 5))
    fake = np.repeat(real[:1], 50, axis=0)  # every fake at one real point
    res = prdc(real, fake, k=5)
    assert res["precision"] == 1.0
    assert res["recall"] <= 0.02 and res["coverage"] <= 0.1


def test_per_class_uses_clip_means():
    rng = np.random.default_rng(2)
    real = {"a": rng.standard_normal((20, 3, 4))}
    fake = {"a": rng.standard_normal((20, 3, 4))}
    df = prdc_per_class(real, fake, k=3)
    assert list(df.index) == ["a", "Average"]
    assert df.loc["a", "precision"] == pytest.approx(prdc(real["a"].mean(1), fake["a"].mean(1), k=3)["precision"])
