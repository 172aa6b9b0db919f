"""The tables stage as a call (:func:`tables_stage`): every run's results over seeds as the paper's Tables 1-3, the
claims, the checks, what each run's clips are and the numerator shares (``results/tables/``), and
``results/README.md``."""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd

from occ.atomic import atomic_write_text, write_json
from occ.config import Params
from occ.device import use_threads
from occ.paths import Layout
from occ.registry import stage_threads
from occ.report.checks import CLIPS_NOTE, checks_table, clips_table, probe_comparisons
from occ.report.claims import VERDICT_MEANING, claims_table
from occ.report.dvc_metrics import checks_metrics, claims_metrics
from occ.report.markdown import readable, to_markdown, write_table
from occ.report.readme import results_readme
from occ.report.results import load_seed_runs, model_names, this_run_label
from occ.report.shares import share_table
from occ.report.tables import CLIP_BOOTSTRAP_NOTE, table1, table1_title, table2, table3, table3_title

__all__ = ["Tables", "tables_stage"]

INTERVAL_NOTE = "Cells of this run: mean ± half-width of the 95% Student t interval over seeds; per-seed values in {}."
SHARES_NOTE = ("G's label-anchored share (the anchors of the class asked for: the class term d2c, plus the source term "
               "d2s where it is a real clip of that class) of each sample's contrastive numerator, its pull-to-push "
               "weight (tau_d / tau_c times it), and each term's share, averaged over the batch and the last 100 "
               "steps of each run; mean over seeds, per-seed values in shares.csv.")


class Tables(NamedTuple):
    """What the tables stage shows, each table as written (``readable`` views them with ``label`` and ``chance``)."""

    label: str
    seeds: dict
    chance: float
    claims: pd.DataFrame
    checks: pd.DataFrame
    probes: pd.DataFrame
    clips: pd.DataFrame
    table1: pd.DataFrame
    table2: pd.DataFrame
    table3: pd.DataFrame
    shares: pd.DataFrame
    readme: str


def tables_stage(layout: Layout, params: Params) -> Tables:
    """The tables stage: the call of ``notebooks/06_tables.ipynb``.

    Reads every run of ``run_variants`` x ``seeds`` from ``results/`` (all of them: a missing run is an error) and
    writes ``results/tables/``: ``claims``, ``checks``, ``clips``, ``table1``-``table3``, ``shares`` (``.csv`` and
    ``.md``), the DVC metrics ``claims.json`` and ``checks.json``, and ``results/README.md``, on the one thread the stage
    declares (it has no thread section: :data:`occ.registry.STAGES`).
    """
    use_threads(stage_threads(params, "tables"))
    out = layout.results("tables")
    runs = load_seed_runs(layout.root / "results", list(params.run_variants), list(params.seeds), complete=True)
    metrics, per_class, logs = runs.metrics, runs.per_class, runs.logs
    label, class_names = this_run_label(params), runs.class_names()
    chance = 1.0 / len(class_names)
    verdicts = claims_table(metrics, logs)
    checks = checks_table(metrics, profile=params.profile, n_classes=len(class_names))
    write_table(verdicts, out / "claims", label=label, title="The paper's claims, decided over seeds", note=VERDICT_MEANING)
    write_table(checks, out / "checks", label=label, title="Is the training real? (over seeds)")
    write_json(out / "claims.json", claims_metrics(verdicts))  # DVC metrics: `dvc metrics show`, `dvc exp show`
    write_json(out / "checks.json", checks_metrics(checks))
    clips = clips_table(metrics, n_classes=len(class_names))
    probes = probe_comparisons(metrics, n_classes=len(class_names))
    write_table(clips, out / "clips", label=label, title="What each run's clips are (per seed)",
                note=CLIPS_NOTE + "\n\n## Probe accuracy against chance and the paired control, over seeds\n\n"
                + to_markdown(readable(probes, label=label, chance=chance)) + "\n## Per seed")
    t1 = table1(metrics)
    write_table(t1, out / "table1", label=label, chance=chance,
                title=table1_title(metrics, n_classes=len(class_names)),
                note="Cells: mean ± half-width of the 95% Student t interval over seeds; per-seed values in table1.csv. "
                     + CLIP_BOOTSTRAP_NOTE)
    t2 = table2(per_class, label=label, classes=class_names, per_class_step0=runs.per_class_step0, metrics=metrics)
    write_table(t2, out / "table2", label=label, title="Table 2: per-class FAD, DT = tau_d, CT = tau_c, over seeds",
                note=INTERVAL_NOTE.format("table2.csv"))
    t3 = table3(per_class, label=label, classes=class_names, metrics=metrics)
    write_table(t3, out / "table3", label=label, title=table3_title(t3), note=INTERVAL_NOTE.format("table3.csv"))
    shares = share_table(logs, names=model_names(metrics))
    write_table(shares, out / "shares", label=label,
                title="What ties the clips to their labels (last 100 steps, over seeds)", note=SHARES_NOTE)
    readme = results_readme(verdicts, checks, clips, t1, t2, t3, label=label, params=params, metrics=metrics,
                            chance=chance, tsne_seed=list(params.seeds)[0], shares=shares, probes=probes)
    atomic_write_text(layout.root / "results" / "README.md", readme)
    return Tables(label, {v: sorted(s) for v, s in runs.seeds().items()}, chance, verdicts, checks, probes, clips,
                  t1, t2, t3, shares, readme)
