""""Is the training real?": the pipeline's checks per model, over seeds.

Each trained model's FAD against its own untrained generator (step 0, same seed), its clips' recognisability
against chance and against the paired class-blind control (hinge only, the same seed: a model's probe accuracy
minus the control's), and (profile `paper` only) the trained / step-0 FAD ratio against one half. Each check is one
row of the checks table, indexed by a key such as ``fad_below_step0_o2c``, ``recognisable_hinge_only`` or
``recognisable_vs_control_o2c`` (the check, then the variant), which is also its key in the DVC metrics file
(`occ.report.dvc_metrics`).

Where a model is not recognisable, `clips_table` says what each of its runs makes instead, per seed, from the
probe's confusion matrix (`occ.metrics.confusion`): class-blind clips, or class-distinct clips under their own or
under other labels; `probe_comparisons` holds each model's probe accuracy against chance and against the paired
control.
"""

from __future__ import annotations

import math
from typing import Mapping

import pandas as pd

from occ.metrics.confusion import reading
from occ.report.intervals import by_seed, paired_comparison, t_interval
from occ.report.markdown import bracket_text, short_number
from occ.report.paper import in_variant_order, is_class_blind
from occ.report.results import model_names, n_classes_of, variant_settings

__all__ = ["checks_table", "clips_table", "probe_comparisons", "control_variant", "recognisable_sentences",
           "CLIPS_NOTE", "RECOGNISABLE_PROBE"]

CLIPS_NOTE = ("A low probe accuracy has two readings, told apart by the probe's confusion matrix on each run's clips "
              "(`evaluate/<variant>/seed<k>/probe_confusion.csv`). \"class-blind\": the mutual information (MI) "
              "between the class asked for and the class recognised is no higher than the 95th percentile of 200 "
              "shuffles of the classes asked for. Otherwise the clips are class-distinct, \"mostly under their own "
              "labels\" when more than half of the classes are most often recognised as themselves, \"mostly under "
              "other labels\" when not; the accuracy under the best one-to-one relabelling of the classes says how "
              "distinct they are. A run is recognisable when its probe accuracy is at least 0.5: then the "
              "probe names the class asked for in at least half of its clips. Beside chance, each model's probe "
              "accuracy is held against the paired control's (hinge only: no loss of it and not its D sees the "
              "class; same seed): the control's clips differ by class through the data alone, so a model binds its "
              "labels only as far as it beats the control.")

#: The probe accuracy from which a run's clips count as recognisable in `clips_table` (per seed).
RECOGNISABLE_PROBE = 0.5


def checks_table(metrics: Mapping[str, Mapping[int, dict]], *, profile: str = "embedded",
                 n_classes: int | None = None, accuracy_key: str = "probe_accuracy") -> pd.DataFrame:
    """"The training is real": pipeline checks per model, over seeds.

    * FAD (``fad_below_step0_<variant>``): the paired difference trained - step 0 (the untrained generator of
      the same seed, the one that seed's training starts from) has a 95% interval entirely below 0.
    * Recognisability (``recognisable_<variant>``): the interval of `accuracy_key` (default the independent
      probe's accuracy) over seeds lies above chance, 1 / n_classes. The class-blind control (hinge only:
      `occ.report.paper.is_class_blind`) is expected at chance; its row says so instead of passing or failing.
    * Recognisability against the control (``recognisable_vs_control_<variant>``, every other model where a
      class-blind control ran): the 95% interval of the paired difference model - control (same seed) lies above 0.
    * Profile `paper` only (``fad_at_most_half_step0_<variant>``): the trained / step-0 ratio's interval lies at
      or below 0.5 ("at most half").

    Returns
    -------
    pandas.DataFrame
        Indexed by the keys above: check, variant, value (with ``_low``, ``_high``, ``_halfwidth``, ``_n``),
        criterion, result ("passed", "failed", "not established" or, for the control's recognisability,
        "expected at chance"), reading.
    """
    rows = {}
    names, settings = model_names(metrics), variant_settings(metrics)
    control = control_variant(metrics)
    for v in in_variant_order(metrics):
        runs = metrics[v]
        if not runs:
            continue
        name = names[v]
        # the training is real: trained FAD below the same seed's step-0 FAD
        p = paired_comparison(by_seed(runs, "fad_mean"), by_seed(runs, "fad_mean_step0"), paper_side="less")
        result = {"reproduced": "passed", "contradicted": "failed"}.get(p.verdict, "not established")
        rows[f"fad_below_step0_{v}"] = _check_row(
            f"training is real: {name} FAD below its step-0 FAD", v, p, "the interval of trained - step-0 FAD "
            "(same seed) lies below 0", result,
            f"Trained minus untrained FAD over {p.n} seed(s): {short_number(p.mean)}" + bracket_text(p.low, p.high)
            + ".")
        # recognisable: the accuracy's interval above chance (the class-blind control: expected at chance)
        acc = by_seed(runs, accuracy_key)
        if acc:
            k = n_classes or n_classes_of(runs.values())
            chance = 1.0 / k
            iv = t_interval([acc[s] for s in sorted(acc)])
            what = accuracy_key.replace("_", " ")
            if is_class_blind(settings[v]):
                if iv.n < 2:
                    where = "with one seed there is no interval to hold against"
                elif iv.low <= chance <= iv.high:
                    where = "its interval contains"
                else:
                    where = "its interval does not contain"
                rows[f"recognisable_{v}"] = _check_row(
                    f"recognisable: {name} {what} (control: expected at chance)", v, iv,
                    f"no pass/fail: expected at chance (1/{k} = {chance:.3f})",
                    "expected at chance (control: its losses never see the class)",
                    f"The control's losses never see the class, so its clips are expected to be recognised at "
                    f"chance ({chance:.3f}), not a failure; {where} chance.")
            else:
                result = ("passed" if iv.low > chance else "failed" if iv.high < chance else "not established") \
                    if iv.n >= 2 else "not established"
                rows[f"recognisable_{v}"] = _check_row(
                    f"recognisable: {name} {what} above chance", v, iv,
                    f"the interval lies above chance (1/{k} = {chance:.3f})", result,
                    f"{what} over {iv.n} seed(s): {short_number(iv.mean)}" + bracket_text(iv.low, iv.high)
                    + f"; chance is {chance:.3f}.")
                if control is not None:
                    p = paired_comparison(acc, by_seed(metrics[control], accuracy_key), paper_side="greater")
                    result = {"reproduced": "passed", "contradicted": "failed"}.get(p.verdict, "not established")
                    rows[f"recognisable_vs_control_{v}"] = _check_row(
                        f"recognisable: {name} {what} above the paired control", v, p,
                        f"the interval of model - control ({names[control]}, same seed) lies above 0", result,
                        f"{name} minus the control in {what} over {p.n} seed(s): {short_number(p.mean)}"
                        + bracket_text(p.low, p.high) + ".")
        # profile paper: trained FAD at most half of step 0's
        if profile == "paper":
            fad, step0 = by_seed(runs, "fad_mean"), by_seed(runs, "fad_mean_step0")
            iv = t_interval([fad[s] / step0[s] for s in sorted(fad) if s in step0])
            result = ("passed" if iv.high <= 0.5 else "failed" if iv.low > 0.5 else "not established") \
                if iv.n >= 2 else "not established"
            rows[f"fad_at_most_half_step0_{v}"] = _check_row(
                f"training is real: {name} FAD at most half its step-0 FAD", v, iv,
                "the interval of trained / step-0 lies at or below 0.5", result,
                f"trained / step-0 FAD over {iv.n} seed(s): {short_number(iv.mean)}" + bracket_text(iv.low, iv.high)
                + ".")
    return pd.DataFrame(list(rows.values()), index=list(rows))


def _check_row(check: str, variant: str, iv, criterion: str, result: str, reading: str) -> dict:
    return {"check": check, "variant": variant, "value": iv.mean, "value_low": iv.low, "value_high": iv.high,
            "value_halfwidth": iv.half_width, "value_n": iv.n, "criterion": criterion, "result": result,
            "reading": reading}


def control_variant(metrics: Mapping[str, Mapping[int, dict]]) -> str | None:
    """The class-blind control among the variants with runs (`occ.report.paper.is_class_blind`: loss "none" and no
    label in D; the first in the project's order), or None where none ran."""
    settings = variant_settings(metrics)
    return next((v for v in in_variant_order(settings) if is_class_blind(settings[v])), None)


def clips_table(metrics: Mapping[str, Mapping[int, dict]], *, n_classes: int | None = None) -> pd.DataFrame:
    """What each run's clips are, per seed: one row per (variant, seed) with the probe's accuracy, the paired
    control's (`control_variant`, the same seed; NaN for the control itself or where it did not run that seed) and
    the difference, the mutual information between the class asked for and the class recognised with its
    shuffled-class null, the accuracy under the best relabelling, the classes most often recognised as themselves,
    and the reading (`occ.metrics.confusion.reading`). Runs whose metrics lack these (an older evaluation) are left
    out."""
    rows = []
    names, control = model_names(metrics), control_variant(metrics)
    for v in in_variant_order(metrics):
        for s in sorted(metrics[v]):
            m = metrics[v][s]
            if "probe_mi_bits" not in m:
                continue
            k = n_classes or n_classes_of([m])
            paired = (metrics[control].get(s) or {}).get("probe_accuracy") if control not in (None, v) else None
            paired = math.nan if paired is None else float(paired)
            rows.append({"model": names[v], "variant": v, "seed": int(s),
                         "probe_accuracy": m["probe_accuracy"], "control_probe_accuracy": paired,
                         "minus_control": m["probe_accuracy"] - paired, "mi_bits": m["probe_mi_bits"],
                         "mi_null95": m["probe_mi_null95"], "relabelled_accuracy": m["probe_relabelled_accuracy"],
                         "own_label_classes": f"{m['probe_own_label_classes']} of {k}",
                         "clips": reading(m["probe_mi_bits"], m["probe_mi_null95"], m["probe_own_label_classes"], k),
                         "recognisable": "yes" if m["probe_accuracy"] >= RECOGNISABLE_PROBE else "no"})
    return pd.DataFrame(rows)


def probe_comparisons(metrics: Mapping[str, Mapping[int, dict]], *, n_classes: int | None = None) -> pd.DataFrame:
    """Each model's probe accuracy over seeds against chance and against the paired control.

    Returns
    -------
    pandas.DataFrame
        One row per model with runs: model, variant, ``probe_accuracy`` with ``_low``, ``_high``, ``_halfwidth``,
        ``_n`` (mean and t interval over seeds; the per-seed values are in `clips_table`), ``vs_chance`` ("above",
        "below" or "not established": where the interval lies against 1 / n_classes), ``minus_control`` with ``_low``, ``_high``, ``_halfwidth``, ``_n``
        (the mean paired difference model - control, same seed, and its 95% t interval; NaN for the control and
        where none ran) and ``vs_control`` (the same words for that interval against 0; "control" on its own row).
    """
    rows = []
    names, control = model_names(metrics), control_variant(metrics)
    for v in in_variant_order(metrics):
        acc = by_seed(metrics[v] or {}, "probe_accuracy")
        if not acc:
            continue
        chance = 1.0 / (n_classes or n_classes_of(metrics[v].values()))
        iv = t_interval([acc[s] for s in sorted(acc)])
        row = {"model": names[v], "variant": v, "probe_accuracy": iv.mean, "probe_accuracy_low": iv.low,
               "probe_accuracy_high": iv.high, "probe_accuracy_halfwidth": iv.half_width, "probe_accuracy_n": iv.n,
               "vs_chance": _side(iv.low - chance, iv.high - chance, iv.n)}
        p = paired_comparison(acc, by_seed(metrics[control], "probe_accuracy") if control not in (None, v) else {},
                              paper_side="greater")
        row.update({"minus_control": p.mean, "minus_control_low": p.low, "minus_control_high": p.high,
                    "minus_control_halfwidth": p.half_width, "minus_control_n": p.n,
                    "vs_control": "control" if v == control else _side(p.low, p.high, p.n)})
        rows.append(row)
    return pd.DataFrame(rows)


def recognisable_sentences(clips: pd.DataFrame) -> list[str]:
    """One sentence per model of `clips_table`: in which seeds its clips are recognisable (probe accuracy at least
    :data:`RECOGNISABLE_PROBE`) and, where the paired control ran, in how many its probe accuracy is above the
    control's, e.g. "O2C-GAN: recognisable in 3 of 3 seeds (0, 1, 2); above the paired control in 3 of 3."."""
    out = []
    for model, runs in clips.groupby("model", sort=False):
        yes = [int(s) for s, r in zip(runs["seed"], runs["recognisable"]) if r == "yes"]
        which = f" ({', '.join(map(str, yes))})" if yes else ""
        paired = runs["minus_control"].dropna() if "minus_control" in runs else pd.Series(dtype=float)
        above = f"; above the paired control in {int((paired > 0).sum())} of {len(paired)}" if len(paired) else ""
        out.append(f"{model}: recognisable in {len(yes)} of {len(runs)} seeds{which}{above}.")
    return out


def _side(low: float, high: float, n: int) -> str:
    """Where an interval lies against 0: "above", "below" or "not established" (it contains 0, or n < 2)."""
    if n < 2 or math.isnan(low):
        return "not established"
    return "above" if low > 0 else "below" if high < 0 else "not established"
