"""This run's per-run results, read back from `results/` for the tables and the figures.

One evaluation per (variant, seed) (`evaluate/<variant>/seed<k>/{metrics.json,fad.csv}`) and one training log
(`train/<variant>/seed<k>/log.csv`), gathered into :class:`SeedRuns`; the label that names this run's numbers
beside the paper's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from occ.data.classes import DCASE_CLASSES

__all__ = ["SeedRuns", "load_seed_runs", "this_run_label", "n_classes_of"]


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


def load_seed_runs(results: str | Path, variants: list[str], seeds: list[int]) -> SeedRuns:
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

    Returns
    -------
    SeedRuns
        Every variant is a key of every dict, possibly with no seeds.
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
    return out


def this_run_label(dataset: str, embedding: str) -> str:
    """Column label for this run's numbers, e.g. "this run (synthetic foley, aisfx)"."""
    return f"this run ({dataset}, {embedding})"


def n_classes_of(run_metrics: Iterable[Mapping]) -> int:
    """The number of classes the runs' metrics agree on (`n_classes`), else the seven DCASE classes."""
    counts = {int(m["n_classes"]) for m in run_metrics if m.get("n_classes")}
    return counts.pop() if len(counts) == 1 else len(DCASE_CLASSES)
