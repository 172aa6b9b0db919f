"""Figures are drawn headless, and Figure 1's push/pull roles follow the loss equations."""

import numpy as np
import pandas as pd
import pytest

from occ.report.plots import plot_loss_curves, plot_push_pull, plot_tsne_panels, push_pull_roles


def test_push_pull_roles_follow_the_numerators():
    # 2C and C-SupCon keep same-class data in the numerator (pulled); OCC drops them (pushed).
    assert push_pull_roles("2c")["same-class data"] == "pull"
    assert push_pull_roles("csupcon")["same-class data"] == "pull"
    assert push_pull_roles("o2c")["same-class data"] == "push"
    assert push_pull_roles("ocsupcon")["same-class data"] == "push"
    assert "source" in push_pull_roles("ocsupcon") and "source" not in push_pull_roles("o2c")
    for kind in ("2c", "o2c", "csupcon", "ocsupcon"):
        assert push_pull_roles(kind)["other-class data"] == "push"
        assert push_pull_roles(kind)["class"] == "pull"
    with pytest.raises(ValueError):
        push_pull_roles("3c")


def test_figures_draw(tmp_path):
    figs = [plot_push_pull()]
    log = pd.DataFrame({"step": np.arange(50), "d_adv": np.linspace(2, 0, 50)})
    figs.append(plot_loss_curves({"o2c": log, "contragan": log * 0.5}, column="d_adv"))
    rng = np.random.default_rng(0)
    figs.append(plot_tsne_panels({"a": rng.normal(size=(20, 2)), "b": rng.normal(size=(20, 2))},
                                 {"a": np.arange(20) % 2, "b": np.arange(20) % 2}, ["x", "y"]))
    for i, fig in enumerate(figs):
        fig.savefig(tmp_path / f"{i}.png")
        assert (tmp_path / f"{i}.png").stat().st_size > 1000
