"""The helpers the benchmark scripts share: FAD split into its terms, the time blur of fad_bounds, the lever
benchmarks' results-file sections and compile break-even arithmetic (lever_common)."""

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
from lever_common import break_even_steps, max_rel_diff, run_ratio, write_section  # noqa: E402


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


def test_write_section_replaces_only_its_own_section(tmp_path):
    md = tmp_path / "levers.md"
    write_section(md, "step", "step v1", title="# Title")
    write_section(md, "eval", "eval v1", title="# ignored: the file exists")
    text = write_section(md, "step", "step v2\n| a | b |")
    assert text.startswith("# Title\n")
    assert "step v1" not in text and "step v2\n| a | b |" in text
    assert "eval v1" in text and "ignored" not in text
    assert text.index("begin step") < text.index("begin eval")  # replaced in place, not appended
    assert text.count("<!-- begin step -->") == 1 and text.count("<!-- end step -->") == 1
    with pytest.raises(ValueError):
        write_section(md, "bad name", "x")


def test_write_section_body_with_backslashes_is_kept_verbatim(tmp_path):
    md = tmp_path / "r.md"
    write_section(md, "s", "old")
    assert "a \\1 \\g<0> b" in write_section(md, "s", "a \\1 \\g<0> b")


def test_break_even_and_run_ratio():
    assert break_even_steps(100.0, 0.5, 0.3) == pytest.approx(500.0)
    assert break_even_steps(100.0, 0.3, 0.3) == float("inf")
    assert run_ratio(500, 100.0, 0.5, 0.3) == pytest.approx(1.0)  # at break-even both runs take as long
    assert run_ratio(1000, 0.0, 0.5, 0.25) == pytest.approx(2.0)


def test_max_rel_diff_uses_a_floor_near_zero():
    a = [{"x": 1.0, "y": 0.0}, {"x": 2.0, "y": 1e-6}]
    b = [{"x": 1.1, "y": 1e-5}, {"x": 2.0, "y": 0.0}]
    rel, ab = max_rel_diff(a, b, ("x", "y"), floor=1e-3)
    assert rel == pytest.approx(0.1 / 1.1)
    assert ab == pytest.approx(0.1)


def test_learning_curve_compares_two_recipes_paired_over_seeds():
    from learning_curve import _table, comparison

    def row(recipe, seed, probe, fad, share=None):
        return {"recipe": recipe, "seed": seed, "steps": 800, "cpu_s": 1.0, "wall_s": 1.0, "probe": probe,
                "fad": fad, "encoder": None, "mi_bits": 1.0, "mi_null95": 0.1, "relabelled": probe + 0.1,
                "own_label_classes": 3, "g_class_share": share, "g_source_share": None}

    rows = [row("generated", s, p, 300.0, 0.1) for s, p in enumerate((0.1, 0.2, 0.0))]
    rows += [row("paired_real", s, p, 290.0 + s, 0.5) for s, p in enumerate((0.5, 0.7, 0.4))]
    rows.append({**row("paired_real", 0, 0.0, 0.0), "steps": 400})  # an earlier point: not compared
    text = comparison(rows, "generated", "paired_real")
    probe = next(line for line in text.splitlines() if line.startswith("| probe accuracy"))
    # differences 0.4, 0.5, 0.4: mean 0.4333, s = 0.0577, t(0.975, 2) = 4.3027 -> half-width 0.1434
    assert probe == "| probe accuracy | 0.100, 0.200, 0.000 | 0.500, 0.700, 0.400 | +0.433 [+0.290, +0.577] (higher) |"
    fad = next(line for line in text.splitlines() if line.startswith("| mean FAD"))
    assert fad.endswith("(lower) |")  # -10, -9, -8
    assert text.startswith("At 800 steps, seeds 0, 1, 2; difference = paired_real - generated")
    assert "| generated | 0 | 800 |" in _table(rows)


def test_the_label_in_d_is_decided_by_the_declared_pooled_rule():
    """benchmarks/d_projection.py: per seed the mean over the six variants of B - A, then a t interval over seeds;
    B wins when better on one measure and not worse on the other (docs/recipe.md, "The label in D")."""
    import math

    import d_projection as dp

    def runs(probe, fad, variants):
        return {v: {s: {"probe_accuracy": probe[s] + 0.01 * k, "fad_mean": fad[s] + k} for s in dp.SEEDS}
                for k, v in enumerate(variants)}

    before = runs([0.2, 0.3, 0.1], [300.0, 310.0, 320.0], dp.VARIANTS + ("hinge_only",))
    after = runs([0.6, 0.55, 0.6], [300.0, 330.0, 300.0], dp.VARIANTS + ("projection_cgan",))
    after["projection_cgan"] = {s: {"probe_accuracy": 0.9, "fad_mean": 1.0} for s in dp.SEEDS}
    result = dp.compare(before, after)
    probe, fad = result["pooled"]["probe_accuracy"], result["pooled"]["fad_mean"]
    assert probe["per_seed"] == pytest.approx([0.4, 0.25, 0.5]) and fad["per_seed"] == pytest.approx([0.0, 20.0, -20.0])
    m = 1.15 / 3
    half = 4.302652729911275 * math.sqrt(((0.4 - m) ** 2 + (0.25 - m) ** 2 + (0.5 - m) ** 2) / 2 / 3)
    assert probe["difference"] == pytest.approx(m) and probe["low"] == pytest.approx(m - half) and m - half > 0
    assert result["decision"] == "B"  # probe better, FAD's interval contains 0
    assert result["rows"]["controls"]["a"] == "hinge_only" and result["rows"]["controls"]["b"] == "projection_cgan"
    assert result["rows"]["o2c"]["fad_mean"]["difference"] == pytest.approx(0.0)
    worse = {"probe_accuracy": {"low": 0.1, "high": 0.5}, "fad_mean": {"low": 5.0, "high": 9.0}}
    assert dp.decide(worse) == "A"  # better labels, worse FAD: not better
    assert dp.decide({"probe_accuracy": {"low": -0.1, "high": 0.2}, "fad_mean": {"low": -9.0, "high": -1.0}}) == "B"
    assert dp.decide({"probe_accuracy": {"low": -0.1, "high": 0.2}, "fad_mean": {"low": -9.0, "high": 1.0}}) == "A"
    assert "Decision: B" in dp.markdown(result, "abc")
