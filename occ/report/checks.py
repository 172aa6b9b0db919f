""""Is the training real?": the pipeline's checks per model, over seeds.

Each trained model's FAD against its own untrained generator (step 0, same seed), its clips' recognisability
against chance, and (profile `paper` only) the trained / step-0 FAD ratio against one half. Each check is one row
of the checks table, indexed by a key such as ``fad_below_step0_o2c`` or ``recognisable_hinge_only`` (the check,
then the variant), which is also its key in the DVC metrics file (`occ.report.dvc_metrics`).

Where a model is not recognisable, `clips_table` says what each of its runs makes instead, per seed, from the
probe's confusion matrix (`occ.metrics.confusion`): class-blind clips, or class-distinct clips under their own or
under other labels.
"""

from __future__ import annotations

from typing import Mapping

import pandas as pd

from occ.metrics.confusion import reading
from occ.report.intervals import by_seed, paired_comparison, t_interval
from occ.report.markdown import bracket_text, short_number
from occ.report.paper import CLASS_BLIND_LOSSES, in_variant_order
from occ.report.results import model_names, n_classes_of, variant_settings

__all__ = ["checks_table", "clips_table", "recognisable_sentences", "CLIPS_NOTE", "RECOGNISABLE_PROBE"]

CLIPS_NOTE = ("A low probe accuracy has two readings, told apart by the probe's confusion matrix on each run's clips "
              "(`evaluate/<variant>/seed<k>/probe_confusion.csv`). \"class-blind\": the mutual information (MI) "
              "between the class asked for and the class recognised is no higher than the 95th percentile of 200 "
              "shuffles of the classes asked for. Otherwise the clips are class-distinct, \"mostly under their own "
              "labels\" when more than half of the classes are most often recognised as themselves, \"mostly under "
              "other labels\" when not; the accuracy under the best one-to-one relabelling of the classes says how "
              "distinct they are. A run is recognisable when its probe accuracy is at least 0.5: then the "
              "probe names the class asked for in at least half of its clips.")

#: The probe accuracy from which a run's clips count as recognisable in `clips_table` (per seed).
RECOGNISABLE_PROBE = 0.5


def checks_table(metrics: Mapping[str, Mapping[int, dict]], *, profile: str = "embedded",
                 n_classes: int | None = None, accuracy_key: str = "probe_accuracy") -> pd.DataFrame:
    """"The training is real": pipeline checks per model, over seeds.

    * FAD (``fad_below_step0_<variant>``): the paired difference trained - step 0 (the untrained generator of
      the same seed, the one that seed's training starts from) has a 95% interval entirely below 0.
    * Recognisability (``recognisable_<variant>``): the interval of `accuracy_key` (default the independent
      probe's accuracy) over seeds lies above chance, 1 / n_classes. The class-blind control (hinge only) is
      expected at chance; its row says so instead of passing or failing.
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
            if settings[v]["loss"] in CLASS_BLIND_LOSSES:
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


def clips_table(metrics: Mapping[str, Mapping[int, dict]], *, n_classes: int | None = None) -> pd.DataFrame:
    """What each run's clips are, per seed: one row per (variant, seed) with the probe's accuracy, the mutual
    information between the class asked for and the class recognised with its shuffled-class null, the accuracy
    under the best relabelling, the classes most often recognised as themselves, and the reading
    (`occ.metrics.confusion.reading`). Runs whose metrics lack these (an older evaluation) are left out."""
    rows = []
    names = model_names(metrics)
    for v in in_variant_order(metrics):
        for s in sorted(metrics[v]):
            m = metrics[v][s]
            if "probe_mi_bits" not in m:
                continue
            k = n_classes or n_classes_of([m])
            rows.append({"model": names[v], "variant": v, "seed": int(s),
                         "probe_accuracy": m["probe_accuracy"], "mi_bits": m["probe_mi_bits"],
                         "mi_null95": m["probe_mi_null95"], "relabelled_accuracy": m["probe_relabelled_accuracy"],
                         "own_label_classes": f"{m['probe_own_label_classes']} of {k}",
                         "clips": reading(m["probe_mi_bits"], m["probe_mi_null95"], m["probe_own_label_classes"], k),
                         "recognisable": "yes" if m["probe_accuracy"] >= RECOGNISABLE_PROBE else "no"})
    return pd.DataFrame(rows)


def recognisable_sentences(clips: pd.DataFrame) -> list[str]:
    """One sentence per model of `clips_table`: in which seeds its clips are recognisable (probe accuracy at least
    :data:`RECOGNISABLE_PROBE`), e.g. "O2C-GAN: recognisable in 3 of 3 seeds (0, 1, 2)."."""
    out = []
    for model, runs in clips.groupby("model", sort=False):
        yes = [int(s) for s, r in zip(runs["seed"], runs["recognisable"]) if r == "yes"]
        which = f" ({', '.join(map(str, yes))})" if yes else ""
        out.append(f"{model}: recognisable in {len(yes)} of {len(runs)} seeds{which}.")
    return out
