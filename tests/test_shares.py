"""What the contrastive numerator is made of, per model: the table over seeds, its sentences, the figure and the
README section (occ.report.shares, occ.report.plots_seeds.plot_shares_over_seeds, occ.report.readme)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from occ.report.plots_seeds import plot_shares_over_seeds
from occ.report.shares import share_sentences, share_table


def _log(steps: int, g_class: float, g_source: float = math.nan, d_class: float = 0.5,
         d_source: float = math.nan, *, anchored: bool = False, ratio: float = 1.0) -> pd.DataFrame:
    """A log whose last half holds the given shares (the first half other values, which must not count); G's
    label-anchored share is the class term's, plus the source term's where ``anchored`` (paired_real), and the
    pull-to-push weight ``ratio`` (tau_d / tau_c) times it, as the training loop logs them."""
    half = steps // 2
    col = lambda late: [0.0 if late == late else late] * half + [late] * (steps - half)  # noqa: E731 (NaN: all NaN)
    label = g_class + g_source if anchored else g_class
    return pd.DataFrame({"step": np.arange(1, steps + 1), "d_adv": 1.0, "g_class_share": col(g_class),
                         "g_source_share": col(g_source), "d_class_share": col(d_class),
                         "d_source_share": col(d_source), "g_label_share": col(label),
                         "g_pull_push": col(ratio * label)})


LOGS = {
    "o2c": {0: _log(200, 1.0, d_class=1.0), 1: _log(200, 1.0, d_class=1.0)},
    "contragan": {0: _log(200, 0.1), 1: _log(200, 0.3)},
    "ocsupcon": {0: _log(200, 0.2, 0.8, 0.4, 0.6, anchored=True), 1: _log(200, 0.4, 0.6, 0.4, 0.6, anchored=True)},
    "ocsupcon_ct1": {0: _log(200, 0.002, 0.5, anchored=False, ratio=0.1),
                     1: _log(200, 0.004, 0.5, anchored=False, ratio=0.1)},
    "hinge_only": {0: _log(200, math.nan, d_class=math.nan), 1: _log(200, math.nan, d_class=math.nan)},
    "old": {0: pd.DataFrame({"step": [1, 2], "d_adv": [1.0, 1.0]})},  # written before the columns existed
}
#: The models' names (what their runs recorded: occ.report.results.model_names).
NAMES = {"o2c": "O2C-GAN", "contragan": "ContraGAN (2C)", "ocsupcon": "OC-SupConGAN",
         "ocsupcon_ct1": "OC-SupConGAN, CT 1.0, source generated"}


def test_share_table_averages_the_last_steps_then_the_seeds():
    t = share_table(LOGS, names=NAMES, last=100).set_index("variant")
    assert list(t.index) == ["contragan", "o2c", "ocsupcon", "ocsupcon_ct1"]  # the paper's order; no class term /
    # no columns: out
    assert t.loc["contragan", "g_class_share"] == pytest.approx(0.2)
    assert t.loc["contragan", "g_class_share_seed0"] == pytest.approx(0.1)
    assert t.loc["contragan", "g_class_share_halfwidth"] == pytest.approx(12.706204736174707 * 0.1, rel=1e-9)
    assert t.loc["o2c", "g_class_share"] == 1.0 and math.isnan(t.loc["o2c", "g_source_share"])
    assert t.loc["ocsupcon", "g_source_share"] == pytest.approx(0.7)
    assert t.loc["ocsupcon", "seeds"] == 2
    # the label-anchored share: class + source term under paired_real (0.2 + 0.8, 0.4 + 0.6), the class term alone
    # under generated; the pull-to-push weight tau_d / tau_c times it (0.1 at CT 1.0)
    assert t.loc["ocsupcon", "g_label_share"] == pytest.approx(1.0)
    assert t.loc["ocsupcon_ct1", "g_label_share"] == pytest.approx(0.003)
    assert t.loc["ocsupcon_ct1", "g_pull_push"] == pytest.approx(0.0003)
    assert t.loc["ocsupcon_ct1", "g_pull_push_seed1"] == pytest.approx(0.0004)
    assert t.loc["contragan", "g_pull_push"] == pytest.approx(0.2)
    # a log written before the label columns existed: its row stays, those two are NaN
    pre = {0: LOGS["contragan"][0].drop(columns=["g_label_share", "g_pull_push"])}
    row = share_table({"contragan": pre}, names=NAMES).iloc[0]
    assert row["g_class_share"] == pytest.approx(0.1) and math.isnan(row["g_label_share"]) and row["g_pull_push_n"] == 0
    assert share_table(LOGS, names=NAMES, last=101).loc[0, "g_class_share"] != pytest.approx(0.2)  # a 0 of the first
    # half counts


def test_share_sentences_say_what_the_rest_of_the_numerator_is():
    text = dict(zip(["contragan", "o2c", "ocsupcon", "ocsupcon_ct1"],
                    share_sentences(share_table(LOGS, names=NAMES, last=100))))
    assert text["o2c"] == ("O2C-GAN: over the last 100 steps the anchors of the class asked for hold 100.0 % of G's "
                           "contrastive numerator (by seed: 100.0 %, 100.0 %), a pull-to-push weight of 1; the class "
                           "term is 100.0 % (in the D step, on real clips, the class term is 100.0 %).")
    assert "(by seed: 10.0 %, 30.0 %)" in text["contragan"]
    assert "the class term is 20.0 %, the same-class generated clips 80.0 % (in the D step" in text["contragan"]
    assert "hold 100.0 %" in text["ocsupcon"]
    assert "the source term 70.0 % (a real clip of the class asked for) (in the D step" in text["ocsupcon"]
    assert "hold 0.3 %" in text["ocsupcon_ct1"] and "a pull-to-push weight of 0.0003;" in text["ocsupcon_ct1"]
    assert ("the source term 50.0 % (the generated clip itself), the same-class generated clips 49.7 %"
            in text["ocsupcon_ct1"])


def test_the_figure_draws_the_class_share_of_both_steps_per_variant():
    fig = plot_shares_over_seeds(LOGS, names=NAMES, smooth=1)
    d_ax, g_ax, label_ax, pull_ax = fig.axes
    assert "D step" in d_ax.get_title() and "G step" in g_ax.get_title()
    labels = [t.get_text() for t in g_ax.get_legend().get_texts()]
    assert labels == ["O2C-GAN (2 seeds)", "ContraGAN (2C) (2 seeds)", "OC-SupConGAN (2 seeds)",
                      "OC-SupConGAN, CT 1.0, source generated (2 seeds)"]
    contragan = g_ax.get_lines()[1].get_ydata()
    assert contragan[-1] == pytest.approx(0.2) and contragan[0] == 0.0
    # the label-anchored share and the pull-to-push weight, on log axes, with the line where pull equals push
    assert "label-anchored share" in label_ax.get_title() and "pull-to-push" in pull_ax.get_title()
    assert label_ax.get_yscale() == pull_ax.get_yscale() == "log"
    assert label_ax.get_lines()[2].get_ydata()[-1] == pytest.approx(1.0)  # OC-SupConGAN: 0.2 + 0.8, 0.4 + 0.6
    assert pull_ax.get_lines()[3].get_ydata()[-1] == pytest.approx(0.0003)
    assert any(list(line.get_ydata()) == [1.0, 1.0] for line in pull_ax.get_lines())


def test_the_readme_has_one_sentence_per_model():
    from occ.config import Params
    from occ.report.readme import results_readme

    empty = pd.DataFrame()
    table = share_table(LOGS, names=NAMES, last=100)
    kw = dict(label="this run", params=Params())
    text = results_readme(empty, empty, empty, empty, empty, empty, shares=table, **kw)
    section = text.split("### What ties the clips to their labels")[1].split("## Table 1")[0]
    assert sum(line.startswith("- ") for line in section.splitlines()) == 4
    assert "the only part of the contrastive numerator" not in text
    assert "label-anchored share (log column `g_label_share`)" in section and "`g_pull_push`" in section
    assert "### What ties" not in results_readme(empty, empty, empty, empty, empty, empty, **kw)
