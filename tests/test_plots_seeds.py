"""Figures over seeds: curves averaged per step with a band, and every seed's value per model with its interval."""

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection, PolyCollection

from occ.metrics.run_settings import run_settings_of
from occ.report.plots_seeds import plot_fad_by_seed, plot_loss_over_seeds, plot_probe_by_seed, smoothed_over_seeds


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def _log(values):
    return pd.DataFrame({"step": np.arange(1, len(values) + 1), "d_adv": values})


def test_smoothed_over_seeds_by_hand():
    runs = {0: _log([1.0, 3.0, 5.0]), 1: _log([3.0, 5.0, 7.0]), 2: _log([2.0, 4.0, 9.0])}
    # smooth = 2: seed 0 -> 1, 2, 4; seed 1 -> 3, 4, 6; seed 2 -> 2, 3, 6.5
    c = smoothed_over_seeds(runs, smooth=2)
    assert list(c.index) == [1, 2, 3] and set(c["n"]) == {3}
    assert c["mean"].tolist() == pytest.approx([2.0, 3.0, 5.5])
    assert c["low"].tolist() == pytest.approx([1.0, 2.0, 4.0]) and c["high"].tolist() == pytest.approx([3.0, 4.0, 6.5])
    t = smoothed_over_seeds(runs, smooth=2, band="t")
    assert t.loc[1, "high"] == pytest.approx(2.0 + 4.302652729749464 / math.sqrt(3))  # values 1, 3, 2: s = 1
    # one seed: the curve, no band; a seed that logged fewer steps limits the common steps
    one = smoothed_over_seeds(runs[0], smooth=1)
    assert one["mean"].tolist() == [1.0, 3.0, 5.0] and one["low"].isna().all()
    short = smoothed_over_seeds({0: runs[0], 1: _log([1.0, 1.0])}, smooth=1)
    assert list(short.index) == [1, 2]
    with pytest.raises(ValueError):
        smoothed_over_seeds(runs, band="sd")


#: What made each variant's runs (metrics.json: loss, tau_d, tau_c, d_projection; the SupCon kinds' source reading
#: paired_real).
MADE = {"contragan": ("2c", 0.1, 0.1, True), "o2c": ("o2c", 0.1, 0.1, True), "o2c_ct1": ("o2c", 0.1, 1.0, True),
        "ocsupcon": ("ocsupcon", 0.1, 0.1, True), "hinge_only": ("none", 0.1, 0.1, False),
        "projection_cgan": ("none", 0.1, 0.1, True)}


def _seeded_metrics(**seeds):
    rng = np.random.default_rng(0)
    seeds = seeds or {"contragan": [0, 1, 2], "o2c": [0, 1], "ocsupcon": [0], "hinge_only": [0, 1, 2]}
    return {v: {s: {"fad_mean": 300.0 + 10 * s + rng.normal(), "n_classes": 7,
                    "probe_accuracy": 0.14 if v == "hinge_only" else 0.5 + 0.01 * s,
                    **run_settings_of(dict(zip(("loss", "tau_d", "tau_c", "d_projection"), MADE[v]),
                                         d2s_source="paired_real"))}
                for s in ss}
            for v, ss in seeds.items()}


def test_loss_curves_band_only_with_two_seeds_or_more(tmp_path):
    rng = np.random.default_rng(1)
    logs = {"contragan": {s: _log(np.linspace(2, 0.5, 50) + rng.normal(0, 0.1, 50)) for s in range(3)},
            "o2c": {s: _log(np.linspace(2, 1.0, 50)) for s in range(2)},
            "ocsupcon": {0: _log(np.linspace(2, 1.5, 50))},
            "csupcongan": {}}  # not run
    names = {"contragan": "ContraGAN (2C)", "o2c": "O2C-GAN", "ocsupcon": "OC-SupConGAN"}
    fig = plot_loss_over_seeds(logs, names=names, smooth=5, title="D")
    ax = fig.axes[0]
    assert len(ax.lines) == 3 and sum(isinstance(c, PolyCollection) for c in ax.collections) == 2
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["ContraGAN (2C) (3 seeds)", "O2C-GAN (2 seeds)", "OC-SupConGAN (1 seed)"]
    assert "min-max" in ax.get_title()
    fig.savefig(tmp_path / "d.png")
    plt.close(fig)


@pytest.mark.parametrize("plot", [plot_fad_by_seed, plot_probe_by_seed])
def test_by_seed_figures_with_1_2_3_seeds_and_a_missing_variant(tmp_path, plot):
    metrics = _seeded_metrics()
    variants = ["contragan", "csupcongan", "o2c", "ocsupcon", "hinge_only"]  # csupcongan was not run
    fig = plot(metrics, variants=variants)
    ax = fig.axes[0]
    texts = _texts(fig)
    assert "not run" in texts
    # n is written per run model; an interval bar only where two seeds or more ran (contragan, o2c, hinge_only)
    assert sum("n=3" in t for t in texts) == 2 and sum("n=2" in t for t in texts) == 1 and sum("n=1" in t for t in texts) == 1
    assert len(ax.containers) == 3
    assert [t.get_text() for t in ax.get_yticklabels()][2] == "O2C-GAN"
    dots = sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection))
    assert dots == (3 + 2 + 1 + 3) + 3  # every seed, plus one mean marker per model with an interval
    fig.savefig(tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 1000
    plt.close(fig)


def test_fad_figure_shows_the_paper_beside_this_run():
    fig = plot_fad_by_seed(_seeded_metrics(), variants=["contragan", "o2c", "o2c_ct1", "hinge_only"])
    assert len(fig.axes) == 2
    paper = [t.get_text() for t in fig.axes[1].texts]
    # the paper's numbers with their ranks (lowest FAD first: CT 1.0 5.023, O2C 5.480, ContraGAN 12.667)
    assert "12.667  #3" in paper and "5.480  #2" in paper and "5.023  #1" in paper and "not in the paper" in paper
    plt.close(fig)


def test_by_seed_figures_name_each_model_by_what_its_runs_recorded():
    metrics = _seeded_metrics(o2c=[0, 1], o2c_ct1=[0, 1])
    for run in metrics["o2c_ct1"].values():
        run["tau_c"] = 0.5
    fig = plot_fad_by_seed(metrics, variants=["o2c", "o2c_ct1"])
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["O2C-GAN", "O2C-GAN, CT 0.5"]
    paper = [t.get_text() for t in fig.axes[1].texts]  # beside it, the paper's number says what made it
    assert "5.023  #1 (tau_d 0.1, tau_c 1.0, label in D)" in paper and "5.480  #2" in paper
    for run in metrics["o2c"].values():  # D without the label: the name and the paper's number say so
        run["d_projection"] = False
    fig = plot_fad_by_seed(metrics, variants=["o2c", "o2c_ct1", "projection_cgan"])
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()][0] == "O2C-GAN, D without label"
    assert "5.480  #2 (tau_d 0.1, tau_c 0.1, label in D)" in [t.get_text() for t in fig.axes[1].texts]
    plt.close(fig)


def test_every_variant_of_the_project_has_a_line_style():
    from occ.report.paper import VARIANT_ORDER
    from occ.report.plots_seeds import VARIANT_STYLE

    assert set(VARIANT_ORDER) <= set(VARIANT_STYLE) and "projection_cgan" in VARIANT_ORDER
    assert VARIANT_STYLE["projection_cgan"] != VARIANT_STYLE["hinge_only"]


def test_probe_figure_draws_chance():
    fig = plot_probe_by_seed(_seeded_metrics())
    ax = fig.axes[0]
    assert len(fig.axes) == 1
    assert any(np.allclose(line.get_xdata(), 1 / 7) for line in ax.lines)
    assert any(t.startswith("chance 0.143") for t in _texts(fig))
    plt.close(fig)
