"""The paper's tables and claims: its reported numbers beside this run's, every run number a mean over seeds.

Reported numbers are FAD on the DCASE 2023 Task 7 evaluation set with VGGish embeddings. This run's numbers
come from one evaluation per (variant, seed), on whatever dataset and embedding the run used; the headers say
which, so the two are never mistaken for each other.

Each of this run's quantities is a mean over the seeds with its 95% Student t interval across seeds
(`occ.report.intervals.t_interval`). In the CSV a quantity ``q`` takes the columns ``q`` (the mean), ``q_low``, ``q_high``,
``q_halfwidth``, ``q_n`` (seeds counted) and ``q_seed<k>`` (the value from seed k), at full precision; the
Markdown view (`readable`) shows ``mean ± half-width`` rounded for reading. The paper's claims are paired
comparisons over seeds (`occ.report.intervals.paired_comparison`), each with one of three verdicts.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import pandas as pd

from occ.atomic import atomic_write_text, write_json  # noqa: F401  (write_json: kept importable from here)
from occ.data.classes import DCASE_CLASSES
from occ.report.intervals import by_seed, paired_comparison, t_interval

CLASSES = DCASE_CLASSES  # the rows of Tables 2 and 3
REPORTED_LABEL = "reported (DCASE eval set, VGGish)"

# Table 1 (tau_d = tau_c = 0.1): mean FAD over the 7 classes.
REPORTED_TABLE1 = {"contragan": 12.667, "csupcongan": 12.552, "o2c": 5.480, "ocsupcon": 5.230}

# Table 2: per-class FAD; keys are this project's variant names (DT 0.1; CT 0.1 or 1.0).
REPORTED_TABLE2 = {
    "o2c": [2.784, 4.370, 4.667, 3.555, 17.511, 3.899, 1.577, 5.480],
    "o2c_ct1": [3.348, 3.990, 3.495, 4.074, 14.861, 3.529, 1.865, 5.023],
    "ocsupcon": [2.616, 3.739, 6.322, 4.089, 14.172, 4.304, 1.371, 5.230],
    "ocsupcon_ct1": [4.854, 3.103, 4.790, 3.665, 13.604, 3.727, 1.435, 5.026],
}

# Table 3: the official DCASE baseline (VQ-VAE + PixelSNAIL), per class and average.
REPORTED_BASELINE = [13.412, 8.108, 7.952, 5.230, 16.107, 13.338, 3.771, 9.702]

MODEL_NAMES = {
    "contragan": "ContraGAN (2C)",
    "csupcongan": "C-SupConGAN (C-SupCon)",
    "o2c": "O2C-GAN",
    "o2c_ct1": "O2C-GAN, CT 1.0",
    "ocsupcon": "OC-SupConGAN",
    "ocsupcon_ct1": "OC-SupConGAN, CT 1.0",
    "hinge_only": "hinge only (control, no contrastive term)",
}
TEMPERATURES = {
    "contragan": (0.1, 0.1), "csupcongan": (0.1, 0.1), "o2c": (0.1, 0.1), "o2c_ct1": (0.1, 1.0),
    "ocsupcon": (0.1, 0.1), "ocsupcon_ct1": (0.1, 1.0), "hinge_only": (None, None),
}
VARIANT_ORDER = ("contragan", "csupcongan", "o2c", "o2c_ct1", "ocsupcon", "ocsupcon_ct1", "hinge_only")
# Variants whose losses never see the class: their clips are expected to be recognised at chance.
CLASS_BLIND = ("hinge_only",)

VERDICT_MEANING = (
    '"reproduced": the 95% interval of the mean paired difference (same seed, Student t over the seeds) lies '
    'entirely on the paper\'s side of 0; "contradicted": entirely on the other side; "not established": it '
    "contains 0 or fewer than two seeds were paired. The detectable difference is the interval's half-width: "
    "a true difference smaller than about that cannot be told from none with these seeds."
)
CLIP_BOOTSTRAP_NOTE = (
    "Each run's bootstrap over its generated clips (`fad_mean_ci_low` / `fad_mean_ci_high` in "
    "`evaluate/<variant>/seed<k>/metrics.json`; `clip_bootstrap_width` in `tables/table1.csv`, its width averaged "
    "over seeds) measures the sample of clips only, not the model: it says how much FAD would move with other "
    "clips from the same trained generator, not with another training run. It is a basic (bias-corrected) "
    "bootstrap interval, so it lies below the point estimate: FAD from a few clips is biased upwards. The model's "
    "uncertainty is the interval across seeds."
)

# Markdown headers of the CSV columns shown by `readable` ("{label}" is this run's label).
HEADERS = {
    "model": "model",
    "seeds": "seeds",
    "fad_reported": f"FAD {REPORTED_LABEL}",
    "fad": "FAD, {label}",
    "fad_step0": "step-0 FAD (untrained G)",
    "trained_over_step0": "trained / step-0",
    "probe_accuracy": "probe accuracy (chance {chance})",
    "encoder_accuracy": "encoder accuracy",
    "method": "method",
    "DT": "DT",
    "CT": "CT",
    "numbers": "numbers",
    "claim": "claim",
    "paper": "paper",
    "difference": "mean paired difference [95% CI]",
    "n_seeds": "seeds paired",
    "detectable_difference": "detectable difference",
    "verdict": "verdict",
    "check": "check",
    "value": "measured [95% CI]",
    "criterion": "passes when",
    "result": "result",
}
# CSV-only columns (kept at full precision, not shown in Markdown).
CSV_ONLY = ("variant", "clip_bootstrap_width", "measure", "reading", "paired_seeds")
# Quantities shown as "mean [low, high]" instead of "mean ± half-width" (where the side of 0 matters).
BRACKETED = ("difference", "value")
_SUFFIXES = ("_low", "_high", "_halfwidth", "_n")


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


def summary(base: str, values: Mapping[int, float], *, seeds: list[int] | None = None) -> dict:
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
    """Table 1: mean FAD of the four models at tau 0.1/0.1 plus the hinge-only control, over seeds.

    Parameters
    ----------
    metrics : dict
        variant -> seed -> the metrics dict of that run's evaluation (keys `fad_mean`, `fad_mean_step0`,
        optionally `probe_accuracy`, `encoder_accuracy_on_generated`, `fad_mean_ci_low` / `_high`,
        `n_classes`).

    Returns
    -------
    pandas.DataFrame
        One row per model: model, variant, seeds, fad_reported, then per quantity the columns of `summary`
        for fad, fad_step0, trained_over_step0 (per seed), probe_accuracy and encoder_accuracy, and
        clip_bootstrap_width (the clip bootstrap interval's width, mean over seeds: clip sampling only).
    """
    variants = [v for v in ("contragan", "csupcongan", "o2c", "ocsupcon", "hinge_only") if metrics.get(v)]
    seeds = _all_seeds(metrics[v] for v in variants)
    rows = []
    for v in variants:
        runs = metrics[v]
        fad = by_seed(runs, "fad_mean")
        step0 = by_seed(runs, "fad_mean_step0")
        row = {"model": MODEL_NAMES.get(v, v), "variant": v, "seeds": _seed_text(runs),
               "fad_reported": REPORTED_TABLE1.get(v, math.nan)}
        row.update(summary("fad", fad, seeds=seeds))
        row.update(summary("fad_step0", step0, seeds=seeds))
        row.update(summary("trained_over_step0", {s: fad[s] / step0[s] for s in fad if s in step0}, seeds=seeds))
        row.update(summary("probe_accuracy", by_seed(runs, "probe_accuracy"), seeds=seeds))
        row.update(summary("encoder_accuracy", by_seed(runs, "encoder_accuracy_on_generated"), seeds=seeds))
        widths = [m["fad_mean_ci_high"] - m["fad_mean_ci_low"] for m in runs.values()
                  if m.get("fad_mean_ci_low") is not None and m.get("fad_mean_ci_high") is not None]
        row["clip_bootstrap_width"] = sum(widths) / len(widths) if widths else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def table2(per_class: Mapping[str, Mapping[int, pd.Series]], *, label: str, classes: list[str] = CLASSES,
           per_class_step0: Mapping[str, Mapping[int, pd.Series]] | None = None) -> pd.DataFrame:
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

    Returns
    -------
    pandas.DataFrame
        Rows: per model the reported numbers, this run's mean over seeds (and step 0, the ratio); columns
        method, DT, CT, numbers, seeds, then per class and "Average" the columns of `summary`.
    """
    rows = []
    seeds = _all_seeds(per_class.get(v, {}) for v in REPORTED_TABLE2)
    for variant in ("o2c", "o2c_ct1", "ocsupcon", "ocsupcon_ct1"):
        method = MODEL_NAMES[variant.replace("_ct1", "")]
        head = dict(zip(("method", "DT", "CT"), (method, *TEMPERATURES[variant])))
        rows.append(_reported_row(head, REPORTED_TABLE2[variant], classes))
        runs = per_class.get(variant) or {}
        if not runs:
            continue
        trained = _class_values(runs, classes)
        rows.append(_run_row(head, label, runs, trained, classes, seeds))
        step0_runs = (per_class_step0 or {}).get(variant) or {}
        if step0_runs:
            step0 = _class_values(step0_runs, classes)
            rows.append(_run_row(head, "untrained G (step 0)", step0_runs, step0, classes, seeds))
            ratio = {c: {s: trained[c][s] / step0[c][s] for s in trained[c] if s in step0[c]} for c in trained}
            rows.append(_run_row(head, "trained / step 0", runs, ratio, classes, seeds))
    return pd.DataFrame(rows)


def table3(per_class: Mapping[str, Mapping[int, pd.Series]], *, label: str, classes: list[str] = CLASSES) -> pd.DataFrame:
    """Table 3: the DCASE baseline's reported per-class FAD beside the CT 1.0 models (reported and this run)."""
    head0 = {"method": "DCASE baseline (VQ-VAE + PixelSNAIL)", "DT": None, "CT": None}
    rows = [_reported_row(head0, REPORTED_BASELINE, classes)]
    seeds = _all_seeds(per_class.get(v, {}) for v in ("o2c_ct1", "ocsupcon_ct1"))
    for variant in ("o2c_ct1", "ocsupcon_ct1"):
        head = dict(zip(("method", "DT", "CT"), (MODEL_NAMES[variant], *TEMPERATURES[variant])))
        rows.append(_reported_row(head, REPORTED_TABLE2[variant], classes))
        runs = per_class.get(variant) or {}
        if runs:
            rows.append(_run_row(head, label, runs, _class_values(runs, classes), classes, seeds))
    return pd.DataFrame(rows)


def d_loss_tail(log: pd.DataFrame, *, column: str = "d_adv", fraction: float = 0.2) -> float:
    """Mean of a log column over the last `fraction` of the steps (how far D's loss has fallen)."""
    n = max(1, int(round(len(log) * fraction)))
    return float(log[column].iloc[-n:].mean())


# (claim id, a, b, the side of 0 on which the paper puts a - b, quantity compared)
CLAIMS = (
    ("C1", "o2c", "contragan", "less", "fad"),
    ("C1", "ocsupcon", "csupcongan", "less", "fad"),
    ("C2", "o2c_ct1", "o2c", "less", "fad"),
    ("C2", "ocsupcon_ct1", "ocsupcon", "less", "fad"),
    ("C3", "contragan", "o2c", "less", "d_loss"),
    ("C3", "csupcongan", "ocsupcon", "less", "d_loss"),
    ("C4", "o2c", "contragan", "greater", "spread"),
    ("C4", "ocsupcon", "csupcongan", "greater", "spread"),
)
QUANTITIES = {
    "fad": "mean FAD",
    "d_loss": "D's hinge loss over the last 20 % of steps",
    "spread": "mean within-class distance of D's unit embeddings of generated clips",
}


def claims(metrics: Mapping[str, Mapping[int, dict]], logs: Mapping[str, Mapping[int, pd.DataFrame]]) -> pd.DataFrame:
    """The paper's claims C1-C4, each decided by a paired comparison over seeds.

    C1: OCC lowers FAD (O2C-GAN < ContraGAN, OC-SupConGAN < C-SupConGAN; Table 1). C2: CT 1.0 beats CT 0.1
    (for O2C-GAN and for OC-SupConGAN; Table 2). C3: without OCC D's adversarial loss ends lower
    (`d_loss_tail` of `d_adv`: ContraGAN < O2C-GAN, C-SupConGAN < OC-SupConGAN; Section 4). C4: OCC spreads
    same-class embeddings in D's space (`d_within_class_distance`: O2C-GAN > ContraGAN, OC-SupConGAN >
    C-SupConGAN; Figure 2).

    Parameters
    ----------
    metrics : dict
        variant -> seed -> metrics dict (keys `fad_mean`, `d_within_class_distance`).
    logs : dict
        variant -> seed -> training log (column `d_adv`).

    Returns
    -------
    pandas.DataFrame
        One row per comparison, all eight always present (a comparison without paired seeds is "not
        established"): claim, paper, measure, difference (mean of a - b) with ``_low``, ``_high``,
        ``_halfwidth``, ``_n``, n_seeds, paired_seeds, detectable_difference (the half-width), verdict (one of
        `occ.report.intervals.VERDICTS`) and reading (one plain sentence).
    """
    rows = []
    for cid, a, b, side, quantity in CLAIMS:
        va, vb = _claim_values(quantity, a, metrics, logs), _claim_values(quantity, b, metrics, logs)
        p = paired_comparison(va, vb, paper_side=side)
        rows.append({
            "claim": f"{cid} {_claim_text(cid, a, b)}",
            "paper": _paper_text(cid, a, b),
            "measure": f"{QUANTITIES[quantity]}: {MODEL_NAMES[a]} - {MODEL_NAMES[b]}",
            "difference": p.mean, "difference_low": p.low, "difference_high": p.high,
            "difference_halfwidth": p.half_width, "difference_n": p.n,
            "n_seeds": p.n,
            "paired_seeds": ", ".join(map(str, p.seeds)),
            "detectable_difference": p.half_width,
            "verdict": p.verdict,
            "reading": _reading(p, a, b, quantity),
        })
    return pd.DataFrame(rows)


def checks(metrics: Mapping[str, Mapping[int, dict]], *, profile: str = "embedded",
           n_classes: int | None = None, accuracy_key: str = "probe_accuracy") -> pd.DataFrame:
    """"The training is real": pipeline checks per model, over seeds.

    * FAD: the paired difference trained - step 0 (the untrained generator of the same seed, the one that
      seed's training starts from) has a 95% interval entirely below 0.
    * Recognisability: the interval of `accuracy_key` (default the independent probe's accuracy) over seeds
      lies above chance, 1 / n_classes. The class-blind control (hinge only) is expected at chance; its row
      says so instead of passing or failing.
    * Profile `paper` only: the trained / step-0 ratio's interval lies at or below 0.5 ("at most half").

    Returns
    -------
    pandas.DataFrame
        check, variant, value (with ``_low``, ``_high``, ``_halfwidth``, ``_n``), criterion, result
        ("passed", "failed", "not established" or, for the control's recognisability, "expected at chance"),
        reading.
    """
    rows = []
    for v in _ordered(metrics):
        runs = metrics[v]
        if not runs:
            continue
        name = MODEL_NAMES.get(v, v)
        p = paired_comparison(by_seed(runs, "fad_mean"), by_seed(runs, "fad_mean_step0"), paper_side="less")
        result = {"reproduced": "passed", "contradicted": "failed"}.get(p.verdict, "not established")
        rows.append(_check_row(
            f"training is real: {name} FAD below its step-0 FAD", v, p, "the interval of trained - step-0 FAD "
            "(same seed) lies below 0", result,
            f"Trained minus untrained FAD over {p.n} seed(s): {_num(p.mean)}" + _bracket(p.low, p.high) + "."))
        acc = by_seed(runs, accuracy_key)
        if acc:
            k = n_classes or _n_classes(runs)
            chance = 1.0 / k
            iv = t_interval([acc[s] for s in sorted(acc)])
            if v in CLASS_BLIND:
                if iv.n < 2:
                    where = "with one seed there is no interval to hold against"
                elif iv.low <= chance <= iv.high:
                    where = "its interval contains"
                else:
                    where = "its interval does not contain"
                result = "expected at chance (control: its losses never see the class)"
                reading = (f"The control's losses never see the class, so its clips are expected to be recognised at "
                           f"chance ({chance:.3f}), not a failure; {where} chance.")
            else:
                result = ("passed" if iv.low > chance else "failed" if iv.high < chance else "not established") \
                    if iv.n >= 2 else "not established"
                reading = f"{accuracy_key.replace('_', ' ')} over {iv.n} seed(s): {_num(iv.mean)}" \
                          + _bracket(iv.low, iv.high) + f"; chance is {chance:.3f}."
            what = accuracy_key.replace("_", " ")
            if v in CLASS_BLIND:
                rows.append(_check_row(f"recognisable: {name} {what} (control: expected at chance)", v, iv,
                                       f"no pass/fail: expected at chance (1/{k} = {chance:.3f})", result, reading))
            else:
                rows.append(_check_row(f"recognisable: {name} {what} above chance", v, iv,
                                       f"the interval lies above chance (1/{k} = {chance:.3f})", result, reading))
        if profile == "paper":
            fad, step0 = by_seed(runs, "fad_mean"), by_seed(runs, "fad_mean_step0")
            iv = t_interval([fad[s] / step0[s] for s in sorted(fad) if s in step0])
            result = ("passed" if iv.high <= 0.5 else "failed" if iv.low > 0.5 else "not established") \
                if iv.n >= 2 else "not established"
            rows.append(_check_row(f"training is real: {name} FAD at most half its step-0 FAD", v, iv,
                                   "the interval of trained / step-0 lies at or below 0.5", result,
                                   f"trained / step-0 FAD over {iv.n} seed(s): {_num(iv.mean)}"
                                   + _bracket(iv.low, iv.high) + "."))
    return pd.DataFrame(rows)


def readable(df: pd.DataFrame, *, label: str = "this run", chance: float | None = None) -> pd.DataFrame:
    """The Markdown view of a table: each quantity over seeds as one rounded cell, CSV-only columns dropped.

    A column ``q`` with ``q_low`` / ``q_high`` / ``q_halfwidth`` / ``q_n`` beside it becomes one text cell:
    "332.0 ± 12.3" (the half-width of the 95% interval over seeds), "-4.1 [-9.0, 0.8]" for the quantities in
    `BRACKETED`, "332.0 (1 seed)" when only one seed ran, the plain number where the row has no seeds (the
    paper's). Per-seed and interval columns, `CSV_ONLY` columns and quantities no run measured are dropped;
    known columns are renamed by `HEADERS`.
    """
    out = pd.DataFrame(index=df.index)
    derived = {f"{c}{s}" for c in df.columns for s in _SUFFIXES} | {c for c in df.columns if _is_seed_column(c, df)}
    for c in df.columns:
        if c in derived or c in CSV_ONLY:
            continue
        if f"{c}_low" in df.columns and f"{c}_n" in df.columns:
            if (df[f"{c}_n"].fillna(0) == 0).all() and df[c].isna().all():
                continue  # measured by no run (e.g. a metric this evaluation did not write)
            cells = [_cell(r[c], r[f"{c}_low"], r[f"{c}_high"], r[f"{c}_halfwidth"], r[f"{c}_n"], c in BRACKETED)
                     for _, r in df.iterrows()]
        else:
            cells = list(df[c])
        header = HEADERS.get(c, c).format(label=label, chance="" if chance is None else f"{chance:.3f}")
        out[header.replace(" (chance )", "")] = cells
    return out


def to_markdown(df: pd.DataFrame, *, digits: int = 3) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency); floats with `digits` decimals."""
    def cell(v):
        if v is None or (isinstance(v, float) and pd.isna(v)):
            return ""
        return f"{v:.{digits}f}" if isinstance(v, float) else str(v)

    header = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


def write_table(df: pd.DataFrame, stem: str | Path, *, title: str = "", label: str = "this run",
                chance: float | None = None, note: str = "") -> None:
    """Write `<stem>.csv` (every column, full precision) and `<stem>.md` (`readable`, rounded) atomically."""
    stem = Path(stem)
    atomic_write_text(stem.with_suffix(".csv"), df.to_csv(index=False))
    md = (f"# {title}\n\n" if title else "") + (f"{note}\n\n" if note else "")
    atomic_write_text(stem.with_suffix(".md"), md + to_markdown(readable(df, label=label, chance=chance)))


def results_readme(verdicts: pd.DataFrame, checks_table: pd.DataFrame, t1: pd.DataFrame, t2: pd.DataFrame,
                   t3: pd.DataFrame, *, label: str, params, metrics: Mapping[str, Mapping[int, dict]] | None = None,
                   chance: float | None = None, tsne_seed: int | None = None) -> str:
    """`results/README.md`: the verdicts with their intervals first, one sentence per claim, then the tables.

    Parameters
    ----------
    verdicts, checks_table : pandas.DataFrame
        `claims(...)` and `checks(...)`.
    t1, t2, t3 : pandas.DataFrame
        `table1`, `table2`, `table3`.
    label : str
        This run's label.
    params : occ.config.Params
        The run's parameters (profile, data, train, model, eval).
    metrics : dict, optional
        variant -> seed -> metrics, to say how many seeds each variant ran.
    chance : float, optional
        1 / number of classes, shown in Table 1's probe-accuracy header.
    tsne_seed : int, optional
        The seed whose runs Figure 2 shows.
    """
    counts = {v: len(runs) for v, runs in (metrics or {}).items() if runs}
    lines = [
        "# Results of the last `dvc repro`",
        "",
        "Everything in this folder is written by the pipeline (`dvc repro`); nothing is edited by hand.",
        f"Run: profile `{params.profile}`, data `{params.data.source}` ({params.data.layout} layout), "
        f"{params.train.steps} GAN steps per run at batch {params.train.batch_size}, "
        f"generator width {params.model.g_ch}, discriminator width {params.model.d_ch}, "
        f"{params.eval.clips_per_class} generated clips per class, vocoder `{params.eval.vocoder}`, "
        f"FAD embedding `{params.eval.embedding}`. {_seed_sentence(counts)}",
        "",
        "## The paper's claims, decided over seeds",
        "",
        "Each claim is a paired comparison: the two models trained from the same seed are compared, and the "
        "differences (first-named model minus second) are averaged over the seeds. " + VERDICT_MEANING,
        "",
        to_markdown(readable(verdicts, label=label)),
        *[f"- {r.claim}: {r.reading}" for r in verdicts.itertuples()],
        "",
        "The paper's third comparison, both CT 1.0 models against the DCASE baseline (Table 3), is not tested: "
        "the baseline is not trained here; its reported numbers are shown beside ours.",
        "",
        "## Is the training real?",
        "",
        "Each run's step-0 generator is the untrained generator that its seed's training starts from, so trained and "
        "step-0 FAD are compared as a pair per seed. Recognisability is the accuracy of an independent linear probe "
        "on the generated clips, against chance (one over the number of classes)."
        + (" Profile `paper` also asks for a trained FAD at most half of step 0." if params.profile == "paper" else ""),
        "",
        to_markdown(readable(checks_table, label=label)),
        "## Table 1: mean FAD and recognisability, over seeds",
        "",
        f"The paper's numbers are FAD on the DCASE 2023 evaluation set with VGGish; this run's are {label}. "
        "Absolute values are not comparable between the two; the orderings are what a reproduction can test. "
        "Cells are mean ± half-width of the 95% interval over seeds (Student t); the per-seed values are in the CSV.",
        "",
        to_markdown(readable(t1, label=label, chance=chance)),
        CLIP_BOOTSTRAP_NOTE,
        "",
        "## Table 2: per-class FAD, CT 0.1 vs 1.0",
        "",
        to_markdown(readable(t2, label=label)),
        "## Table 3: per-class FAD beside the DCASE baseline",
        "",
        to_markdown(readable(t3, label=label)),
        "Tables: `tables/table1.md`, `tables/table2.md`, `tables/table3.md` (CSV beside them, full precision and "
        "the per-seed values; `tables/claims.csv`, `tables/checks.csv`). Figures: `figures/fad_by_seed.png` (every "
        "seed's FAD per model beside the paper's), `figures/probe_by_seed.png`, `figures/d_loss_with_without_occ.png` "
        "(mean over seeds with a band), `figures/figure1_push_pull.png`, `figures/figure2_tsne.png` (one seed per "
        f"model{'' if tsne_seed is None else f', seed {tsne_seed}'}; C4 above measures every seed). Per-run "
        "metrics: `evaluate/<variant>/seed<k>/metrics.json`.",
        "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------
def _ordered(d: Mapping) -> list[str]:
    return [v for v in VARIANT_ORDER if v in d] + [v for v in d if v not in VARIANT_ORDER]


def _all_seeds(groups) -> list[int]:
    return sorted({int(s) for g in groups for s in g})


def _seed_text(runs: Mapping) -> str:
    return ", ".join(str(s) for s in sorted(runs))


def _n_classes(runs: Mapping[int, dict]) -> int:
    ks = {int(m["n_classes"]) for m in runs.values() if m.get("n_classes")}
    return ks.pop() if len(ks) == 1 else len(CLASSES)


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
        row.update(summary(c, values[c], seeds=seeds))
    return row


def _claim_values(quantity: str, variant: str, metrics: Mapping, logs: Mapping) -> dict[int, float]:
    if quantity == "d_loss":
        return {int(s): d_loss_tail(log) for s, log in (logs.get(variant) or {}).items() if len(log)}
    key = "fad_mean" if quantity == "fad" else "d_within_class_distance"
    return by_seed(metrics.get(variant) or {}, key)


def _claim_text(cid: str, a: str, b: str) -> str:
    A, B = MODEL_NAMES[a], MODEL_NAMES[b]
    return {
        "C1": f"OCC lowers FAD: {A} < {B}",
        "C2": f"tau_c 1.0 beats 0.1: {A} < {B}",
        "C3": f"without OCC D's adversarial loss ends lower: {A} < {B}",
        "C4": f"OCC spreads same-class embeddings in D's space: {A} > {B}",
    }[cid]


def _paper_text(cid: str, a: str, b: str) -> str:
    if cid == "C1":
        return f"{REPORTED_TABLE1[a]:.3f} < {REPORTED_TABLE1[b]:.3f} (Table 1)"
    if cid == "C2":
        return f"{REPORTED_TABLE2[a][-1]:.3f} < {REPORTED_TABLE2[b][-1]:.3f} (Table 2)"
    if cid == "C3":
        return "observed (Section 4), no number"
    return "shown (Figure 2, t-SNE), no number"


def _reading(p, a: str, b: str, quantity: str) -> str:
    A, B = MODEL_NAMES[a], MODEL_NAMES[b]
    q = QUANTITIES[quantity]
    if p.n < 2:
        return (f"Only {p.n} seed(s) with both runs: no interval, nothing decided." if p.n
                else "No seed with both runs: nothing decided.")
    size = (f"by {_num(abs(p.mean))} on average over {p.n} seeds (difference {_num(p.mean)}, 95% CI {_num(p.low)} "
            f"to {_num(p.high)})")
    if p.verdict == "reproduced":
        return f"{A}'s {q} is {'lower' if p.paper_side == 'less' else 'higher'} than {B}'s {size}, as the paper reports."
    if p.verdict == "contradicted":
        return (f"{A}'s {q} is {'higher' if p.paper_side == 'less' else 'lower'} than {B}'s {size}, "
                "the opposite of what the paper reports.")
    return (f"{A} minus {B} in {q} averages {_num(p.mean)} over {p.n} seeds, within ±{_num(p.half_width)} of 0: "
            "a true difference smaller than about that cannot be told from none with these seeds.")


def _check_row(check: str, variant: str, iv, criterion: str, result: str, reading: str) -> dict:
    return {"check": check, "variant": variant, "value": iv.mean, "value_low": iv.low, "value_high": iv.high,
            "value_halfwidth": iv.half_width, "value_n": iv.n, "criterion": criterion, "result": result,
            "reading": reading}


def _seed_sentence(counts: dict[str, int]) -> str:
    if not counts:
        return ""
    most = max(counts.values())
    fewer = [f"{MODEL_NAMES.get(v, v)} {k}" for v, k in counts.items() if k < most]
    text = f"Every model was trained and evaluated from {most} seed{'s' if most != 1 else ''}"
    return text + (f" (fewer: {', '.join(fewer)})." if fewer else ".")


def _is_seed_column(c: str, df: pd.DataFrame) -> bool:
    stem, sep, tail = c.rpartition("_seed")
    return bool(sep) and tail.isdigit() and stem in df.columns


def _decimals(half_width: float) -> int:
    """Decimals that show the half-width to two significant digits (at least 1 decimal, at most 4)."""
    if not half_width or math.isnan(half_width) or half_width <= 1e-9:
        return 3
    return max(1, min(4, 1 - math.floor(math.log10(half_width))))


def _cell(mean, low, high, half, n, bracketed: bool) -> str:
    if mean is None or pd.isna(mean):
        return ""
    if bracketed and not pd.isna(n) and int(n) >= 2:
        d = _decimals(half if half > 1e-12 * max(1.0, abs(mean)) else 0.0)
        return f"{mean:.{d}f} [{low:.{d}f}, {high:.{d}f}]"
    return format_interval(mean, half, n)  # a plain number where n is NaN (the paper's)


def format_interval(mean: float, half_width: float, n: int) -> str:
    """A mean over seeds for reading: "332.0 ± 12.3" (decimals from the half-width), "332.013 (1 seed)" when n = 1."""
    if mean is None or pd.isna(mean):
        return ""
    if pd.isna(n) or int(n) < 2:
        return f"{mean:.3f} (1 seed)" if not pd.isna(n) and int(n) == 1 else f"{mean:.3f}"
    d = _decimals(half_width if half_width > 1e-12 * max(1.0, abs(mean)) else 0.0)
    return f"{mean:.{d}f} ± {half_width:.{d}f}"


def _num(x: float) -> str:
    if x is None or math.isnan(x):
        return "n/a"
    return f"{x:.3g}" if abs(x) < 10 else f"{x:.1f}"


def _bracket(low: float, high: float) -> str:
    return "" if low is None or math.isnan(low) else f" [{_num(low)}, {_num(high)}]"
