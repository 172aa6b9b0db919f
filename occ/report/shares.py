"""What ties the clips to their labels in the contrastive numerator, per model: the label-anchored share and the
pull-to-push weight, over seeds.

Each GAN run logs, per step, the class term's share of the contrastive numerator, ``mean_i(d2c_i / numerator_i)``,
and the source term's, ``mean_i(d2s_i / numerator_i)``, for the D step (real clips) and the G step (generated clips)
(``log.csv`` columns ``d_class_share``, ``d_source_share``, ``g_class_share``, ``g_source_share``;
:func:`occ.train.losses.contrastive_terms`). The anchors of the class asked for are what tie a clip to its label:
the class term, and the source term where it is f of a real clip of that class (``train.d2s_source: paired_real``).
Their share of G's numerator is the label-anchored share (``g_label_share``); by the loss's gradient the pull toward
them weighs ``tau_d / tau_c`` times it against the push from the other samples, the pull-to-push weight
(``g_pull_push``). The rest of the numerator (same-class generated clips in 2C and C-SupCon, the source term under
``generated``) is satisfied whatever the clips' labels. :func:`share_table` averages the last steps of every seed;
:func:`share_sentences` says it in one sentence per model.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from occ.report.paper import in_variant_order
from occ.report.tables import interval_columns

__all__ = ["SHARE_COLUMNS", "LABEL_COLUMNS", "LAST_STEPS", "share_table", "share_sentences"]

#: The log columns of the label-anchored share and the pull-to-push weight, first in the table (NaN in logs written
#: before they existed).
LABEL_COLUMNS = ("g_label_share", "g_pull_push")
#: The log columns of the terms' shares, after them; a log without these is left out.
SHARE_COLUMNS = ("g_class_share", "g_source_share", "d_class_share", "d_source_share")
#: Each run's shares are averaged over its last steps (the end of training, not its start).
LAST_STEPS = 100


def share_table(logs: Mapping[str, Mapping[int, pd.DataFrame]], *, names: Mapping[str, str],
                last: int = LAST_STEPS) -> pd.DataFrame:
    """Per model, the label-anchored share, the pull-to-push weight and each term's share, averaged over the last
    ``last`` steps of every seed, then over seeds.

    Parameters
    ----------
    logs : mapping
        variant -> seed -> training log (``log.csv``).
    names : mapping
        variant -> the model's name (`occ.report.results.model_names`).
    last : int
        Steps at the end of each run that are averaged.

    Returns
    -------
    pandas.DataFrame
        One row per model (``model``, ``variant``, ``seeds``), and per column of `LABEL_COLUMNS` and `SHARE_COLUMNS`
        the table columns of a quantity over seeds (:func:`occ.report.tables.interval_columns`: mean, 95 % t
        interval, per-seed values). Variants whose logs hold no class term (no contrastive loss, or logs written
        before the columns existed) are left out; a share that does not apply to a loss (the source term of 2C and
        O2C) is NaN.
    """
    rows = []
    for v in in_variant_order(logs):
        ends = {int(s): log[log["step"] > log["step"].max() - last] for s, log in sorted(logs[v].items())
                if log is not None and set(SHARE_COLUMNS) <= set(log)}
        if not ends or all(end["g_class_share"].isna().all() for end in ends.values()):
            continue
        row = {"model": names.get(v, v), "variant": v, "seeds": len(ends)}
        for col in (*LABEL_COLUMNS, *SHARE_COLUMNS):
            row.update(interval_columns(col, {s: float(end[col].mean()) if col in end else np.nan
                                              for s, end in ends.items()}))
        rows.append(row)
    return pd.DataFrame(rows)


def share_sentences(table: pd.DataFrame, *, last: int = LAST_STEPS) -> list[str]:
    """One sentence per model of :func:`share_table`: G's label-anchored share and pull-to-push weight, then what
    the numerator is made of."""
    sentences = []
    for _, r in table.iterrows():
        label, c, s = r["g_label_share"], r["g_class_share"], r["g_source_share"]
        seeds = ", ".join(_pct(x) for x in r[[k for k in r.index if k.startswith("g_label_share_seed")]])
        text = (f"{r['model']}: over the last {last} steps the anchors of the class asked for hold {_pct(label)} of "
                f"G's contrastive numerator (by seed: {seeds}), a pull-to-push weight of {_number(r['g_pull_push'])}; "
                f"the class term is {_pct(c)}")
        if np.isnan(s):
            rest = 1.0 - c
        else:
            anchored = not np.isnan(label) and abs(label - c - s) < abs(label - c)
            text += (f", the source term {_pct(s)} ("
                     + ("a real clip of the class asked for" if anchored else "the generated clip itself") + ")")
            rest = 1.0 - c - s
        text += (f", the same-class generated clips {_pct(rest)}" if rest >= 5e-4 else "")
        sentences.append(text + f" (in the D step, on real clips, the class term is {_pct(r['d_class_share'])}).")
    return sentences


def _pct(x: float) -> str:
    return "-" if np.isnan(x) else f"{100 * x:.1f} %"


def _number(x: float) -> str:
    return "-" if np.isnan(x) else f"{x:.3g}"
