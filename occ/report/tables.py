"""The paper's Tables 1-3: its reported numbers beside this run's, every run number a mean over seeds.

Each of this run's quantities is a mean over the seeds with its 95% Student t interval across seeds
(`occ.report.intervals.t_interval`), in the columns of `interval_columns`; `occ.report.markdown` writes the
tables' CSV and Markdown files. The headers say which numbers are the paper's (DCASE evaluation set, VGGish) and
which are this run's (its own dataset and embedding), so the two are never mistaken for each other. The paper's
rows are labelled by what the paper ran (`occ.report.paper.PAPER_RUNS`), this run's by what its runs recorded
(`occ.report.results.variant_settings`): a variant run at other temperatures says so in its name, DT and CT.
"""

from __future__ import annotations

import math
from typing import Mapping

import pandas as pd

from occ.data.classes import DCASE_CLASSES
from occ.report.intervals import by_seed, t_interval
from occ.report.paper import (PAPER_RUNS, REPORTED_BASELINE, REPORTED_LABEL, REPORTED_TABLE1, REPORTED_TABLE2,
                              TABLE1_TEMPERATURES, TABLE1_VARIANTS, TABLE2_VARIANTS, TABLE3_VARIANTS, in_variant_order,
                              model_name)
from occ.report.results import model_names, variant_settings

__all__ = ["CLIP_BOOTSTRAP_NOTE", "interval_columns", "table1", "table2", "table3", "table1_title", "table3_title"]

CLIP_BOOTSTRAP_NOTE = (
    "Each run's bootstrap over its generated clips (`fad_mean_ci_low` / `fad_mean_ci_high` in "
    "`evaluate/<variant>/seed<k>/metrics.json`; `clip_bootstrap_width` in `tables/table1.csv`, its width averaged "
    "over seeds) measures the sample of clips only, not the model: it says how much FAD would move with other "
    "clips from the same trained generator, not with another training run. It is a basic (bias-corrected) "
    "bootstrap interval, so it lies below the point estimate: FAD from a few clips is biased upwards. The model's "
    "uncertainty is the interval across seeds."
)


def interval_columns(base: str, values: Mapping[int, float], *, seeds: list[int] | None = None) -> dict:
    """The CSV columns of one quantity over seeds: mean, t interval, half-width, n and the per-seed values.

    Parameters
    ----------
    base : str
        Column stem, e.g. "fad".
    values : mapping of int to float
        seed -> value.
    seeds : list of int, optional
        Seeds to give a ``<base>_seed<k>`` column (NaN where `values` lacks one), so that rows with
        different seeds share columns; default: the seeds of `values`.

    Returns
    -------
    dict
        ``base``, ``base_low``, ``base_high``, ``base_halfwidth``, ``base_n``, ``base_seed<k>``.
    """
    iv = t_interval([values[s] for s in sorted(values)])
    row = {base: iv.mean, f"{base}_low": iv.low, f"{base}_high": iv.high, f"{base}_halfwidth": iv.half_width,
           f"{base}_n": iv.n}
    for s in sorted(values) if seeds is None else seeds:
        row[f"{base}_seed{s}"] = float(values[s]) if s in values else math.nan
    return row


def table1(metrics: Mapping[str, Mapping[int, dict]]) -> pd.DataFrame:
    """Table 1: mean FAD of the four models at tau 0.1/0.1 plus the controls, over seeds.

    The controls are the runs without contrastive term (loss "none", as their runs recorded it): hinge only, and the
    projection cGAN where its D read the label; each named by its settings (`occ.report.paper.model_name`).

    Parameters
    ----------
    metrics : dict
        variant -> seed -> the metrics dict of that run's evaluation (keys `fad_mean`, `fad_mean_step0`,
        optionally `probe_accuracy`, `encoder_accuracy_on_generated`, `fad_mean_ci_low` / `_high`,
        `n_classes`).

    Returns
    -------
    pandas.DataFrame
        One row per model: model, variant, seeds, fad_reported, then per quantity the columns of
        `interval_columns` for fad, fad_step0, trained_over_step0 (per seed), probe_accuracy and
        encoder_accuracy, and clip_bootstrap_width (the clip bootstrap interval's width, mean over seeds: clip
        sampling only; see `CLIP_BOOTSTRAP_NOTE`).
    """
    settings = variant_settings(metrics)
    controls = [v for v in in_variant_order(settings) if settings[v]["loss"] == "none"]
    variants = [v for v in TABLE1_VARIANTS if metrics.get(v)] + controls
    seeds = _all_seeds(metrics[v] for v in variants)
    names = model_names(metrics)
    rows = []
    for v in variants:
        runs = metrics[v]
        fad = by_seed(runs, "fad_mean")
        step0 = by_seed(runs, "fad_mean_step0")
        row = {"model": names[v], "variant": v, "seeds": _seed_text(runs),
               "fad_reported": REPORTED_TABLE1.get(v, math.nan)}
        row.update(interval_columns("fad", fad, seeds=seeds))
        row.update(interval_columns("fad_step0", step0, seeds=seeds))
        row.update(interval_columns("trained_over_step0", {s: fad[s] / step0[s] for s in fad if s in step0},
                                    seeds=seeds))
        row.update(interval_columns("probe_accuracy", by_seed(runs, "probe_accuracy"), seeds=seeds))
        row.update(interval_columns("encoder_accuracy", by_seed(runs, "encoder_accuracy_on_generated"), seeds=seeds))
        widths = [m["fad_mean_ci_high"] - m["fad_mean_ci_low"] for m in runs.values()
                  if m.get("fad_mean_ci_low") is not None and m.get("fad_mean_ci_high") is not None]
        row["clip_bootstrap_width"] = sum(widths) / len(widths) if widths else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def table1_title(metrics: Mapping[str, Mapping[int, dict]], *, n_classes: int) -> str:
    """Table 1's title: its temperatures when every model ran at the paper's (tau_d = tau_c = 0.1), else where to
    read them (each model's name)."""
    settings = variant_settings({v: metrics.get(v) or {} for v in TABLE1_VARIANTS})
    at_table1 = all((s["tau_d"], s["tau_c"]) == TABLE1_TEMPERATURES for s in settings.values())
    temperatures = "tau_d = tau_c = 0.1" if at_table1 else "each model at the temperatures its name says; the paper's: 0.1"
    return f"Table 1: mean FAD over {n_classes} classes ({temperatures}) and recognisability, over seeds"


def table2(per_class: Mapping[str, Mapping[int, pd.Series]], *, label: str, classes: list[str] = DCASE_CLASSES,
           per_class_step0: Mapping[str, Mapping[int, pd.Series]] | None = None,
           metrics: Mapping[str, Mapping[int, dict]] | None = None) -> pd.DataFrame:
    """Table 2: per-class FAD, CT 0.1 vs CT 1.0, for O2C-GAN and OC-SupConGAN (reported beside this run).

    Parameters
    ----------
    per_class : dict
        variant -> seed -> per-class FAD (index: the classes, optionally "Average").
    label : str
        This run's label (the "numbers" column of its rows).
    classes : list of str
        Class order of the columns.
    per_class_step0 : dict, optional
        The same for the untrained generator of each seed (`fad.csv` column `fad_step0`); adds, per
        model, a step-0 row and a trained / step-0 row (ratio per seed, then averaged).
    metrics : dict, optional
        variant -> seed -> metrics dict: what made this run's rows (`occ.report.results.variant_settings`);
        needed for every variant with runs in ``per_class``.

    Returns
    -------
    pandas.DataFrame
        Rows: per model the reported numbers (DT and CT: the paper's), this run's mean over seeds (and step 0, the
        ratio; DT and CT: the run's); columns method, DT, CT, numbers, seeds, then per class and "Average" the
        columns of `interval_columns`.
    """
    rows = []
    seeds = _all_seeds(per_class.get(v, {}) for v in TABLE2_VARIANTS)
    settings = variant_settings(metrics or {})
    for variant in TABLE2_VARIANTS:
        rows.append(_reported_row(_head(PAPER_RUNS[variant], name_temperatures=False), REPORTED_TABLE2[variant],
                                  classes))
        runs = per_class.get(variant) or {}
        if not runs:
            continue
        head = _head(_settings_of(settings, variant), name_temperatures=False)
        trained = _class_values(runs, classes)
        rows.append(_run_row(head, label, runs, trained, classes, seeds))
        step0_runs = (per_class_step0 or {}).get(variant) or {}
        if step0_runs:
            step0 = _class_values(step0_runs, classes)
            rows.append(_run_row(head, "untrained G (step 0)", step0_runs, step0, classes, seeds))
            ratio = {c: {s: trained[c][s] / step0[c][s] for s in trained[c] if s in step0[c]} for c in trained}
            rows.append(_run_row(head, "trained / step 0", runs, ratio, classes, seeds))
    return pd.DataFrame(rows)


def table3(per_class: Mapping[str, Mapping[int, pd.Series]], *, label: str, classes: list[str] = DCASE_CLASSES,
           metrics: Mapping[str, Mapping[int, dict]] | None = None) -> pd.DataFrame:
    """Table 3: the DCASE baseline's reported per-class FAD beside the CT 1.0 models (reported and this run; labels
    as in `table2`, the model's name with its temperatures)."""
    head0 = {"method": "DCASE baseline (VQ-VAE + PixelSNAIL)", "DT": None, "CT": None}
    rows = [_reported_row(head0, REPORTED_BASELINE, classes)]
    seeds = _all_seeds(per_class.get(v, {}) for v in TABLE3_VARIANTS)
    settings = variant_settings(metrics or {})
    for variant in TABLE3_VARIANTS:
        rows.append(_reported_row(_head(PAPER_RUNS[variant]), REPORTED_TABLE2[variant], classes))
        runs = per_class.get(variant) or {}
        if runs:
            head = _head(_settings_of(settings, variant))
            rows.append(_run_row(head, label, runs, _class_values(runs, classes), classes, seeds))
    return pd.DataFrame(rows)


def table3_title(t3: pd.DataFrame) -> str:
    """Table 3's title: "the CT 1.0 models", and this run's CT where its runs of those models had another."""
    title = "Table 3: per-class FAD, DCASE baseline (reported) and the CT 1.0 models, over seeds"
    ours = t3[(t3["numbers"] != REPORTED_LABEL) & t3["CT"].notna()]
    other = [m for m, ct in zip(ours["method"], ours["CT"]) if ct != 1.0]
    return title + (f" (this run: {'; '.join(other)})" if other else "")


def _head(settings: Mapping, *, name_temperatures: bool = True) -> dict:
    """The method, DT and CT cells of a row made with ``settings`` (the temperatures in the name too, or not)."""
    name = model_name(settings if name_temperatures else {**settings, "tau_d": TABLE1_TEMPERATURES[0],
                                                            "tau_c": TABLE1_TEMPERATURES[1]})
    return {"method": name, "DT": settings["tau_d"], "CT": settings["tau_c"]}


def _settings_of(settings: Mapping[str, Mapping], variant: str) -> Mapping:
    if variant not in settings:
        raise ValueError(f"{variant}: per-class FAD without the runs' metrics (what made them); pass metrics=")
    return settings[variant]


def _all_seeds(groups) -> list[int]:
    return sorted({int(s) for g in groups for s in g})


def _seed_text(runs: Mapping) -> str:
    return ", ".join(str(s) for s in sorted(runs))


def _class_values(runs: Mapping[int, pd.Series], classes: list[str]) -> dict[str, dict[int, float]]:
    """class (and "Average") -> seed -> value; "Average" is the series' own, else the mean of the classes."""
    out: dict[str, dict[int, float]] = {c: {} for c in [*classes, "Average"]}
    for s, series in runs.items():
        vals = [float(series[c]) for c in classes]
        for c, v in zip(classes, vals):
            out[c][int(s)] = v
        out["Average"][int(s)] = float(series["Average"]) if "Average" in series.index else sum(vals) / len(vals)
    return out


def _reported_row(head: dict, values: list[float], classes: list[str]) -> dict:
    row = {**head, "numbers": REPORTED_LABEL, "seeds": ""}
    row.update({c: v for c, v in zip([*classes, "Average"], values)})
    return row


def _run_row(head: dict, numbers: str, runs: Mapping, values: dict[str, dict[int, float]], classes: list[str],
             seeds: list[int]) -> dict:
    row = {**head, "numbers": numbers, "seeds": _seed_text(runs)}
    for c in [*classes, "Average"]:
        row.update(interval_columns(c, values[c], seeds=seeds))
    return row
