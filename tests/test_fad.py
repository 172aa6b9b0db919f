"""Tests of occ.metrics.fad and the modules beside it: Fréchet distance closed forms (occ.metrics.frechet), the DCASE
reference pickles (occ.metrics.dcase_eval_stats), the VGGish front end (occ.metrics.vggish_frontend)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from occ.metrics.dcase_eval_stats import dcase_eval_reference, load_dcase_reference
from occ.errors import ConfigError, DataError
from occ.metrics import fad
from occ.metrics.fad import basic_interval, fad_per_class
from occ.metrics.frechet import embedding_stats, frechet_distance, frechet_distance_eig
from occ.metrics.vggish_frontend import dcase_vggish_examples

REF_DIR = Path(__file__).resolve().parents[2] / "shared" / "reference" / "dcase2023_eval_vggish_stats"


def _spd(rng, d):
    a = rng.standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_identical_is_zero():
    rng = np.random.default_rng(0)
    s, mu = _spd(rng, 16), rng.standard_normal(16)
    assert abs(frechet_distance(mu, s, mu, s)) < 1e-8


def test_mean_shift_only():
    rng = np.random.default_rng(1)
    s = _spd(rng, 8)
    mu1, mu2 = rng.standard_normal(8), rng.standard_normal(8)
    assert frechet_distance(mu1, s, mu2, s) == pytest.approx(np.sum((mu1 - mu2) ** 2), abs=1e-8)


def test_diagonal_closed_form_and_symmetry():
    rng = np.random.default_rng(2)
    a, b = rng.uniform(0.1, 3, 10), rng.uniform(0.1, 3, 10)
    mu1, mu2 = rng.standard_normal(10), rng.standard_normal(10)
    expected = np.sum((np.sqrt(a) - np.sqrt(b)) ** 2) + np.sum((mu1 - mu2) ** 2)
    fd = frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
    assert fd == pytest.approx(expected, rel=1e-10)
    assert frechet_distance(mu2, np.diag(b), mu1, np.diag(a)) == pytest.approx(fd, rel=1e-10)
    assert frechet_distance_eig(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("seed", range(5))
def test_sqrtm_and_eig_paths_agree(seed):
    rng = np.random.default_rng(seed)
    d = 32
    s1, s2 = _spd(rng, d), _spd(rng, d)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(frechet_distance_eig(mu1, s1, mu2, s2), rel=1e-8)


def test_singular_covariances_retry_is_finite():
    rng = np.random.default_rng(3)
    e = rng.standard_normal((5, 20))  # rank-4 covariance in 20 dimensions
    mu, s = embedding_stats(e)
    fd = frechet_distance(mu, s, mu + 1.0, s)
    assert np.isfinite(fd) and fd == pytest.approx(20.0, abs=1e-2)


def test_embedding_stats_unbiased_float64():
    rng = np.random.default_rng(4)
    e = rng.standard_normal((50, 3, 6)).astype(np.float32)
    mu, s = embedding_stats(e)
    flat = e.reshape(-1, 6).astype(np.float64)
    assert mu.dtype == np.float64 and s.dtype == np.float64
    np.testing.assert_allclose(s, (flat - flat.mean(0)).T @ (flat - flat.mean(0)) / (len(flat) - 1), rtol=1e-10)


@pytest.mark.skipif(not REF_DIR.is_dir(), reason="DCASE reference statistics not available")
def test_dcase_reference_pickles_decode():
    for pkl in sorted(REF_DIR.glob("*.pkl")):
        mu, sigma = load_dcase_reference(pkl)
        ref = np.load(pkl.with_suffix(".npz"))
        assert mu.shape == (128,) and sigma.shape == (128, 128)
        np.testing.assert_array_equal(mu, ref["mu"])
        np.testing.assert_array_equal(sigma, ref["sigma"])
    a = load_dcase_reference(REF_DIR / "dog_bark.pkl")
    b = load_dcase_reference(REF_DIR / "footstep.pkl")
    assert frechet_distance(*a, *b) == pytest.approx(14.3663, abs=1e-3)
    assert frechet_distance_eig(*a, *b) == pytest.approx(14.3663, abs=1e-3)


def test_shipped_dcase_statistics():
    """The package's copy of the official statistics: seven classes, 128-d, FD(dog_bark, footstep) = 14.3663."""
    ref = dcase_eval_reference()
    assert list(ref) == ["dog_bark", "footstep", "gunshot", "keyboard", "moving_motor_vehicle", "rain", "sneeze_cough"]
    assert all(mu.shape == (128,) and sigma.shape == (128, 128) for mu, sigma in ref.values())
    assert frechet_distance(*ref["dog_bark"], *ref["footstep"]) == pytest.approx(14.3663, abs=1e-3)
    assert list(dcase_eval_reference(["GunShot", "sneeze_cough"])) == ["gunshot", "sneeze_cough"]
    with pytest.raises(DataError, match="no class 'metal_clank'; they hold dog_bark, footstep"):
        dcase_eval_reference(["MetalClank"])
    if REF_DIR.is_dir():
        for name, (mu, sigma) in ref.items():
            np.testing.assert_array_equal(mu, np.load(REF_DIR / f"{name}.npz")["mu"])
            np.testing.assert_array_equal(sigma, np.load(REF_DIR / f"{name}.npz")["sigma"])


def test_reference_errors(tmp_path):
    with pytest.raises(DataError, match="nope.pkl do not exist"):
        load_dcase_reference(tmp_path / "nope.pkl")
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(pickle.dumps({"mu": [1.0, 2.0]}))
    with pytest.raises(DataError, match="bad.pkl"):
        load_dcase_reference(bad)
    junk = tmp_path / "junk.pkl"
    junk.write_bytes(b"not a pickle at all")
    with pytest.raises(DataError, match="junk.pkl"):
        load_dcase_reference(junk)


def _reference_examples(x: np.ndarray) -> np.ndarray:
    """Independent restatement of the DCASE / VGGish front end, one window and frame at a time."""
    x = x.astype(np.float64)
    x = x / max(0.1, x.max())
    hz2mel = lambda f: 1127.0 * np.log(1.0 + f / 700.0)
    bins = hz2mel(np.linspace(0, 8000, 257))
    edges = np.linspace(hz2mel(125.0), hz2mel(7500.0), 66)
    mel = np.zeros((257, 64))
    for i in range(64):
        lo, c, hi = edges[i : i + 3]
        for j in range(257):
            mel[j, i] = max(0.0, min((bins[j] - lo) / (c - lo), (hi - bins[j]) / (hi - c)))
    mel[0] = 0.0
    win = np.array([0.5 - 0.5 * np.cos(2 * np.pi * n / 400) for n in range(400)])
    out = []
    for start in range(0, len(x) - 16000 + 1, 8000):
        w = x[start : start + 16000]
        frames = [np.abs(np.fft.rfft(w[i * 160 : i * 160 + 400] * win, 512)) for i in range(1 + (16000 - 400) // 160)]
        lm = np.log(np.array(frames) @ mel + 0.01)
        out.append(lm[:96])
    return np.stack(out)


def test_vggish_front_end_matches_restatement():
    rng = np.random.default_rng(5)
    t = np.arange(88200) / 22050
    x = np.round(8000 * np.sin(2 * np.pi * 440 * t) + 500 * rng.standard_normal(88200)).astype(np.int16)
    ex = dcase_vggish_examples(x)
    assert ex.shape == (10, 96, 64) and ex.dtype == np.float32
    np.testing.assert_allclose(ex, _reference_examples(x), atol=1e-4)
    batch = dcase_vggish_examples(np.stack([x.astype(np.int32), 2 * x.astype(np.int32)]))
    assert batch.shape == (2, 10, 96, 64)
    np.testing.assert_allclose(batch[1], batch[0], atol=1e-5)  # positive-peak normalisation: scale invariant


def test_fad_per_class_average_and_bootstrap():
    rng = np.random.default_rng(6)
    ref = {c: rng.standard_normal((60, 2, 4)) for c in "ab"}
    gen = {"a": rng.standard_normal((40, 2, 4)), "b": rng.standard_normal((40, 2, 4)) + 1.0}
    df = fad_per_class(gen, ref, n_bootstrap=50, seed=0)
    assert isinstance(df, pd.DataFrame) and list(df.index) == ["a", "b", "Average"]
    assert df.loc["Average", "fad"] == pytest.approx(df.loc[["a", "b"], "fad"].mean())
    assert df.loc["b", "fad"] > df.loc["a", "fad"] + 2.0
    assert (df["ci_low"] <= df["ci_high"]).all()
    stats = {c: embedding_stats(v) for c, v in ref.items()}
    df2 = fad_per_class(gen, stats)
    np.testing.assert_allclose(df2["fad"].to_numpy(), df["fad"].to_numpy())
    df3 = fad_per_class(gen, stats, method="eig")
    np.testing.assert_allclose(df3["fad"].to_numpy(), df["fad"].to_numpy(), rtol=1e-8)


def test_basic_interval_matches_its_definition():
    rng = np.random.default_rng(11)
    boot = rng.gamma(2.0, 3.0, size=999) + 10.0  # skewed, biased upwards like FAD resamples
    lo, hi = basic_interval(9.0, boot, ci=0.9)
    s = np.sort(boot)
    q = lambda p: np.interp(p * (len(s) - 1), np.arange(len(s)), s)  # numpy's linear percentile, restated
    assert lo == pytest.approx(2 * 9.0 - q(0.95)) and hi == pytest.approx(2 * 9.0 - q(0.05))
    assert lo < hi
    with pytest.raises(ConfigError, match="ci"):
        basic_interval(1.0, boot, ci=1.5)


def test_bootstrap_interval_is_shifted_down_by_the_small_sample_bias():
    rng = np.random.default_rng(12)
    ref = {"a": rng.standard_normal((4000, 6))}
    few = fad_per_class({"a": rng.standard_normal((15, 6))}, ref, n_bootstrap=200, seed=0)
    many = fad_per_class({"a": rng.standard_normal((3000, 6))}, ref, n_bootstrap=200, seed=0)
    # same distribution: FAD of 15 clips is biased far upwards and the interval corrects it downwards
    assert few.loc["a", "ci_high"] < few.loc["a", "fad"]
    # with many clips the bias is small and the interval covers the estimate
    assert many.loc["a", "ci_low"] <= many.loc["a", "fad"] <= many.loc["a", "ci_high"]


@pytest.mark.parametrize("m", [20, 300])
def test_fast_bootstrap_path_equals_dcase_path(m):
    from occ.metrics.frechet import FastFD

    rng = np.random.default_rng(8)
    d = 64
    ref = rng.standard_normal((400, d))
    mu_r, s_r = embedding_stats(ref)
    gen = rng.standard_normal((m, d)) * 1.2 + 0.1
    want = frechet_distance(mu_r, s_r, *embedding_stats(gen))
    assert FastFD(mu_r, s_r)(gen) == pytest.approx(want, rel=1e-6)


# --- non-finite statistics are errors naming the input -----------------------------------------------------------
@pytest.mark.parametrize("which", ["mu1", "sigma1", "mu2", "sigma2"])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_statistics_name_the_input(which, value):
    from occ.errors import DataError
    from occ.metrics.frechet import frechet_distance, frechet_distance_eig

    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4))
    stats = {"mu1": x.mean(0), "sigma1": np.cov(x, rowvar=False), "mu2": x.mean(0) + 1, "sigma2": np.cov(x, rowvar=False)}
    stats[which] = stats[which].copy()
    stats[which].flat[1] = value
    for fd in (frechet_distance, frechet_distance_eig):
        with pytest.raises(DataError, match=rf"{which} holds 1 NaN or infinite value"):
            fd(stats["mu1"], stats["sigma1"], stats["mu2"], stats["sigma2"])


def test_fad_per_class_names_the_class_and_side():
    from occ.errors import DataError
    from occ.metrics.fad import fad_per_class

    rng = np.random.default_rng(0)
    gen = {"Rain": rng.normal(size=(10, 2, 4)), "Dog": rng.normal(size=(10, 2, 4))}
    ref = {"Rain": rng.normal(size=(10, 2, 4)), "Dog": rng.normal(size=(10, 2, 4))}
    gen["Dog"][3, 1, 2] = np.nan
    with pytest.raises(DataError, match="generated embeddings of class 'Dog'"):
        fad_per_class(gen, ref, method="eig")
    gen["Dog"][3, 1, 2] = 0.0
    mu, sigma = ref["Rain"].reshape(-1, 4).mean(0), np.cov(ref["Rain"].reshape(-1, 4), rowvar=False)
    sigma[0, 0] = np.inf
    with pytest.raises(DataError, match="reference covariance of class 'Rain'"):
        fad_per_class(gen, {**ref, "Rain": (mu, sigma)})


def test_fad_uses_only_public_names_and_re_exports_nothing():
    """Each name is imported from the module that defines it: fad takes frechet's public API and passes nothing on."""
    import ast

    import occ.metrics.fad as fad

    tree = ast.parse(Path(fad.__file__).read_text())
    imported = [(node.module, a.name) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                and (node.module or "").startswith("occ.") for a in node.names]
    assert imported and not [name for _, name in imported if name.startswith("_")], imported
    assert sorted(fad.__all__) == ["basic_interval", "fad_label_free", "fad_per_class"]
    defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    assert set(fad.__all__) <= defined


def test_label_free_fad_pools_every_class_against_every_reference_clip():
    """The label-free FAD is the Fréchet distance of all generated clips against all reference clips (brute force:
    concatenate, then the DCASE sqrtm path); relabelling the generated clips leaves it unchanged, while it moves the
    per-class FAD; a reference given as statistics is pooled as the classes' equal mixture."""
    rng = np.random.default_rng(3)
    ref = {c: rng.standard_normal((40, 6)) + 2.0 * k for k, c in enumerate("ABC")}
    gen = {c: rng.standard_normal((30, 6)) + 2.0 * k + 0.3 for k, c in enumerate("ABC")}
    brute = frechet_distance(*embedding_stats(np.concatenate(list(ref.values()))),
                             *embedding_stats(np.concatenate(list(gen.values()))))
    assert fad.fad_label_free(gen, ref) == pytest.approx(brute, rel=1e-9)
    assert fad.fad_label_free(gen, ref, method="eig") == pytest.approx(brute, rel=1e-6)
    swapped = {"A": gen["B"], "B": gen["C"], "C": gen["A"]}
    assert fad.fad_label_free(swapped, ref) == pytest.approx(brute, rel=1e-9)
    assert fad.fad_per_class(swapped, ref).loc["Average", "fad"] > 5 * fad.fad_per_class(gen, ref).loc["Average", "fad"]
    # statistics: the equal mixture, written out by hand from the population moments of each class
    stats = {c: (e.mean(0), np.cov(e, rowvar=False, ddof=0)) for c, e in ref.items()}
    pooled = np.concatenate(list(ref.values()))
    mixture = (pooled.mean(0), np.cov(pooled, rowvar=False, ddof=0))
    expected = frechet_distance(*mixture, *embedding_stats(np.concatenate(list(gen.values()))))
    assert fad.fad_label_free(gen, stats) == pytest.approx(expected, rel=1e-9)
    with pytest.raises(ConfigError, match="no reference for classes"):
        fad.fad_label_free({"Z": gen["A"]}, ref)
