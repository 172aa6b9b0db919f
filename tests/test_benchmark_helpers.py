"""The helpers the benchmark scripts share: FAD split into its terms, and the time blur of fad_bounds."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.linalg import sqrtm
from scipy.ndimage import gaussian_filter1d

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from fad_bounds import blur_time  # noqa: E402
from fad_terms import fad_terms  # noqa: E402


def test_fad_terms_match_brute_force():
    rng = np.random.default_rng(0)
    gen = {"a": rng.normal(size=(30, 3, 6)), "b": rng.normal(1.0, 2.0, size=(25, 3, 6))}
    ref = {"a": rng.normal(0.5, 1.0, size=(40, 3, 6)), "b": rng.normal(size=(40, 3, 6))}
    t = fad_terms(gen, ref)
    for name in gen:
        g, r = gen[name].reshape(-1, 6), ref[name].reshape(-1, 6)
        sg, sr = np.cov(g, rowvar=False), np.cov(r, rowvar=False)
        mean_term = np.sum((g.mean(0) - r.mean(0)) ** 2)
        fad = mean_term + np.trace(sg) + np.trace(sr) - 2 * np.trace(sqrtm(sg @ sr).real)
        assert t.loc[name, "mean_term"] == pytest.approx(mean_term)
        assert t.loc[name, "trace_gen"] == pytest.approx(np.trace(sg))
        assert t.loc[name, "trace_ref"] == pytest.approx(np.trace(sr))
        assert t.loc[name, "fad"] == pytest.approx(fad, rel=1e-6)
    assert t.loc["Average", "mean_term"] == pytest.approx(t.loc[["a", "b"], "mean_term"].mean())


@pytest.mark.parametrize("sigma", [1.0, 2.0])
def test_blur_time_is_a_gaussian_along_time_only(sigma):
    x = torch.randn(2, 5, 40, dtype=torch.float64)
    expected = gaussian_filter1d(x.numpy(), sigma, axis=-1, mode="nearest", truncate=3.0)
    np.testing.assert_allclose(blur_time(x, sigma).numpy(), expected, atol=1e-12)
