"""This run's per-run results, read back from `results/` for the tables and the figures.

One evaluation per (variant, seed) (`evaluate/<variant>/seed<k>/{metrics.json,fad.csv}`) and one training log
(`train/<variant>/seed<k>/log.csv`), gathered into :class:`SeedRuns`; what made each variant's runs, as they
recorded it (`variant_settings`), and the names the tables, claims, checks and figures give them (`model_names`);
the label that names this run's numbers beside the paper's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from occ.data.classes import DCASE_CLASSES
from occ.errors import DataError
from occ.metrics.run_settings import RUN_SETTINGS
from occ.report.paper import PAPER_RUNS, model_name

__all__ = ["SeedRuns", "load_seed_runs", "variant_settings", "model_names", "this_run_label", "n_classes_of"]


@dataclass
class SeedRuns:
    """Every (variant, seed) result the tables and figures read, in the shapes they take.

    Attributes
    ----------
    metrics : dict
        variant -> seed -> the run's `metrics.json`.
    per_class : dict
        variant -> seed -> per-class FAD (`fad.csv` column `fad`; index the classes and "Average").
    per_class_step0 : dict
        variant -> seed -> the same for the untrained generator (`fad.csv` column `fad_step0`), where present.
    logs : dict
        variant -> seed -> training log (`log.csv`).
    """

    metrics: dict
    per_class: dict
    per_class_step0: dict
    logs: dict

    def seeds(self) -> dict[str, list[int]]:
        """variant -> the seeds whose evaluation was found."""
        return {v: sorted(runs) for v, runs in self.metrics.items()}

    def class_names(self) -> list[str]:
        """The classes of the per-class FAD (the first run's ``fad.csv``, "Average" left out)."""
        first = next(series for runs in self.per_class.values() for series in runs.values())
        return list(first.drop("Average").index)


def load_seed_runs(results: str | Path, variants: list[str], seeds: list[int], *, complete: bool = False) -> SeedRuns:
    """Read `evaluate/<variant>/seed<k>/{metrics.json,fad.csv}` and `train/<variant>/seed<k>/log.csv` under `results`.

    Parameters
    ----------
    results : path-like
        The project's `results/` folder.
    variants : list of str
        Variants to read (`params.yaml: variants`).
    seeds : list of int
        Seeds to read (`params.yaml: seeds`); a (variant, seed) whose evaluation is absent is left out (a
        variant run from fewer seeds, such as the control), and folders of seeds not listed are ignored.
    complete : bool
        Every variant must have at least one evaluation.

    Returns
    -------
    SeedRuns
        Every variant is a key of every dict, possibly with no seeds.

    Raises
    ------
    DataError
        ``complete`` and a variant without any evaluation (the message names them).
    """
    results = Path(results)
    out = SeedRuns({}, {}, {}, {})
    for v in variants:
        for d in (out.metrics, out.per_class, out.per_class_step0, out.logs):
            d[v] = {}
        for k in seeds:
            ev = results / "evaluate" / v / f"seed{k}"
            if not (ev / "metrics.json").is_file():
                continue
            out.metrics[v][k] = json.loads((ev / "metrics.json").read_text())
            if (ev / "fad.csv").is_file():
                fad = pd.read_csv(ev / "fad.csv", index_col="class")
                out.per_class[v][k] = fad["fad"]
                if "fad_step0" in fad:
                    out.per_class_step0[v][k] = fad["fad_step0"]
            log = results / "train" / v / f"seed{k}" / "log.csv"
            if log.is_file():
                out.logs[v][k] = pd.read_csv(log)
    missing = [v for v, found in out.seeds().items() if not found]
    if complete and missing:
        raise DataError(f"no evaluation found for {missing} (seeds {list(seeds)}) in {results}; run `dvc repro`")
    return out


def variant_settings(metrics: Mapping[str, Mapping[int, Mapping]]) -> dict[str, dict]:
    """variant -> what made its runs (the `RUN_SETTINGS` each run's ``metrics.json`` records), the same for every seed.

    A variant without runs is left out. A run that recorded no ``d_projection`` (an evaluation made before D could
    read the label) reads as a D without the label (false).

    Raises
    ------
    DataError
        A run's metrics lack the settings (an evaluation older than this code: rerun it), or two seeds of one variant
        were made with different settings (their mean would mix two models: rerun the stale ones).
    """
    out = {}
    for variant, runs in metrics.items():
        found = {}
        for seed, m in sorted((runs or {}).items()):
            if "loss" not in m:
                raise DataError(f"evaluate/{variant}/seed{seed}/metrics.json does not say what made the run (loss, "
                                f"tau_d, tau_c): it predates this code; rerun it (`dvc repro --force "
                                f"evaluate@{variant}-{seed}`).")
            found[seed] = {"d_projection": False, **{k: m[k] for k in RUN_SETTINGS if k in m}}  # unrecorded: no label
        kinds = {tuple(sorted(v.items())) for v in found.values()}
        if len(kinds) > 1:
            told = "; ".join(f"seed {s}: {v}" for s, v in found.items())
            raise DataError(f"the runs of {variant} were made with different settings ({told}): their mean would mix "
                            f"two models; rerun the stale ones (`dvc repro --glob 'train@{variant}-*'` and evaluate).")
        if found:
            out[variant] = next(iter(found.values()))
    return out


def model_names(metrics: Mapping[str, Mapping[int, Mapping]], variants=()) -> dict[str, str]:
    """variant -> the name its runs go by (`occ.report.paper.model_name` of `variant_settings`), for the variants of
    ``metrics`` and ``variants``; a variant without runs is named as the paper's model of that name, else by its key."""
    settings = variant_settings(metrics)
    return {v: model_name(settings[v]) if v in settings else model_name(PAPER_RUNS[v]) if v in PAPER_RUNS else v
            for v in [*metrics, *variants]}


def this_run_label(params) -> str:
    """Column label for this run's numbers, its data and FAD embedding, e.g. "this run (synthetic foley, aisfx)"."""
    dataset = "synthetic foley" if params.data.source == "synthetic" else f"{params.data.layout} data"
    return f"this run ({dataset}, {params.eval.embedding})"


def n_classes_of(run_metrics: Iterable[Mapping]) -> int:
    """The number of classes the runs' metrics agree on (`n_classes`), else the seven DCASE classes."""
    counts = {int(m["n_classes"]) for m in run_metrics if m.get("n_classes")}
    return counts.pop() if len(counts) == 1 else len(DCASE_CLASSES)
