"""The figures stage as a call (:func:`figures_stage`): every seed's FAD and probe accuracy, Figure 1 (push/pull),
Figure 2 (t-SNE of D's embeddings of generated data), D's loss with and without OCC and the numerator shares, each as
PNG (and the CSV of what it plots) in ``results/figures/``."""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd

from occ.atomic import write_csv
from occ.config import Params
from occ.device import resolve_device, use_threads
from occ.metrics import d_embeddings
from occ.paths import Layout
from occ.registry import stage_threads
from occ.report import plots, plots_seeds
from occ.report.display import SavedFigure, save_figure
from occ.report.paper import CONTROL_VARIANTS, OCC_PAIRS
from occ.report.results import load_seed_runs, model_names, this_run_label
from occ.synthesis import generate

__all__ = ["FIGURE_FILES", "figures_stage", "Figures"]

#: The figures stage's files in ``results/figures/``, in the order it writes them (``dvc.yaml``: its ``outs``).
FIGURE_FILES = ("fad_by_seed.csv", "fad_by_seed.png", "probe_by_seed.png", "figure1_push_pull.png", "figure2_tsne.csv",
                "figure2_tsne.png", "d_loss_with_without_occ.csv", "d_loss_with_without_occ.png",
                "numerator_shares.csv", "numerator_shares.png")
#: The log columns of the shares figure's CSV (older logs: the last two empty).
SHARE_COLUMNS = ["step", "d_class_share", "d_source_share", "g_class_share", "g_source_share", "g_label_share",
                 "g_pull_push"]
CAPTIONS = {
    "fad_by_seed": "Every seed's mean FAD per model (dots), the mean and its 95 % interval over seeds (bar), and the "
                   "paper's values and ranking beside them. Lower is better; overlapping bars mean the order is not "
                   "established.",
    "probe_by_seed": "How often the independent probe recognises each model's generated clips, per seed. The dashed "
                     "line is chance; the hinge-only control never sees the class and is expected there.",
    "figure1_push_pull": "Figure 1: what each contrastive loss pulls (green) and pushes (red). O2C and OC-SupCon pull a "
                         "sample only towards its own class embedding instead of towards every same-class sample.",
    "figure2_tsne": "Figure 2 (seed {seed}): in the paper, without OCC each class is one tight cluster and with "
                    "OCC the clusters spread. Claim C4 in results/README.md measures the spread over every seed.",
    "d_loss_with_without_occ": "D's hinge loss, each seed smoothed over 20 steps; line: the mean over seeds, band: min "
                               "to max. The paper observed that without OCC (dashed) D's loss falls further: claim C3 "
                               "tests it.",
    "numerator_shares": "Top: the class term's share of the contrastive numerator (D step: real clips; G step: "
                        "generated). Bottom, log scale: G's label-anchored share (class term, plus the source term "
                        "where it is a real clip of the class asked for) and its pull-to-push weight, tau_d / tau_c "
                        "times it (dotted: pull = push). Each seed smoothed over 20 steps; line: mean over seeds, "
                        "band: min to max.",
}


class Figures(NamedTuple):
    """What the figures stage shows: this run's label, the seed of Figure 2, and its figures (name -> figure)."""

    label: str
    tsne_seed: int
    figures: dict[str, SavedFigure]


def figures_stage(layout: Layout, params: Params) -> Figures:
    """The figures stage: the call of ``notebooks/07_figures.ipynb``, on ``eval.threads`` threads.

    Reads every run's results (``results/evaluate``, ``results/train``) and, for Figure 2, the checkpoints of the
    first seed (``runs/train``); writes the files of :data:`FIGURE_FILES`.
    """
    out = layout.results("figures")
    use_threads(stage_threads(params, "figures"))
    device = resolve_device(params.device)
    variants = list(params.run_variants)
    runs = load_seed_runs(layout.root / "results", variants, list(params.seeds))
    label, names = this_run_label(params), model_names(runs.metrics)
    tsne_seed = list(params.seeds)[0]  # Figure 2 shows one seed per model
    shown = {}

    def save(name: str, fig, **caption) -> None:
        shown[name] = save_figure(fig, out / f"{name}.png", caption=CAPTIONS[name].format(**caption))

    per_seed = pd.DataFrame([{"variant": v, "seed": s, "fad_mean": m.get("fad_mean"),
                              "probe_accuracy": m.get("probe_accuracy")}
                             for v, ms in runs.metrics.items() for s, m in sorted(ms.items())])
    write_csv(out / "fad_by_seed.csv", per_seed, index=False)
    save("fad_by_seed", plots_seeds.plot_fad_by_seed(runs.metrics, variants=variants, label=label))
    save("probe_by_seed", plots_seeds.plot_probe_by_seed(runs.metrics, variants=variants))
    save("figure1_push_pull", plots.plot_push_pull())
    points = d_embeddings.tsne_of_generated(layout, variants, per_class=params.eval.tsne_per_class, seed=params.seed,
                                            train_seed=tsne_seed, device=device)
    write_csv(out / "figure2_tsne.csv", points, index=False)
    class_names = generate.class_names_of(layout.train_run(variants[0], tsne_seed))
    by_variant = points.groupby("variant", sort=False)
    save("figure2_tsne", plots.plot_tsne_panels({v: g[["x", "y"]].to_numpy() for v, g in by_variant},
                                                {v: g["label"].to_numpy() for v, g in by_variant}, class_names,
                                                title=f"Figure 2: t-SNE of h(D1(G(z, c))), generated data, seed {tsne_seed}"),
         seed=tsne_seed)
    paired = [v for pair in OCC_PAIRS for v in pair] + list(CONTROL_VARIANTS)
    logs = {v: runs.logs[v] for v in paired if runs.logs.get(v)}
    curves = pd.concat([log[["step", "d_adv"]].assign(variant=v, seed=s) for v, by in logs.items() for s, log in by.items()])
    write_csv(out / "d_loss_with_without_occ.csv", curves, index=False)
    save("d_loss_with_without_occ", plots_seeds.plot_loss_over_seeds(
        logs, names=names, column="d_adv", smooth=20, band="minmax",
        title="D's hinge loss (dashed: without OCC; solid: with OCC)"))
    shares = {v: runs.logs[v] for v in variants if runs.logs.get(v)}
    share_curves = pd.concat([log.reindex(columns=SHARE_COLUMNS).assign(variant=v, seed=s)
                              for v, by in shares.items() for s, log in by.items()])
    write_csv(out / "numerator_shares.csv", share_curves, index=False)
    save("numerator_shares", plots_seeds.plot_shares_over_seeds(shares, names=names))
    return Figures(label, tsne_seed, shown)
