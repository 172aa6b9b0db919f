"""What the contrastive numerator is made of, per model: the class term's share, over seeds.

Each GAN run logs, per step, the class term's share of the contrastive numerator, ``mean_i(d2c_i / numerator_i)``,
and the source term's, ``mean_i(d2s_i / numerator_i)``, for the D step (real clips) and the G step (generated clips)
(``log.csv`` columns ``d_class_share``, ``d_source_share``, ``g_class_share``, ``g_source_share``;
:func:`occ.train.losses.contrastive_terms`). The class term is what ties a clip to its label: where the rest of the
numerator (same-class clips in 2C and C-SupCon, the source term in the SupCon kinds) outweighs it, the loss is
satisfied whatever the clips' labels. :func:`share_table` averages the last steps of every seed;
:func:`share_sentences` says it in one sentence per model.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from occ.report.paper import in_variant_order
from occ.report.tables import interval_columns

__all__ = ["SHARE_COLUMNS", "LAST_STEPS", "share_table", "share_sentences"]

#: The log columns of the shares, in the order of the table.
SHARE_COLUMNS = ("g_class_share", "g_source_share", "d_class_share", "d_source_share")
#: Each run's shares are averaged over its last steps (the end of training, not its start).
LAST_STEPS = 100


def share_table(logs: Mapping[str, Mapping[int, pd.DataFrame]], *, names: Mapping[str, str],
                last: int = LAST_STEPS) -> pd.DataFrame:
    """Per model, each share averaged over the last ``last`` steps of every seed, then over seeds.

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
        One row per model (``model``, ``variant``, ``seeds``), and per share column the table columns of a
        quantity over seeds (:func:`occ.report.tables.interval_columns`: mean, 95 % t interval, per-seed values).
        Variants whose logs hold no class term (no contrastive loss, or logs written before the columns existed)
        are left out; a share that does not apply to a loss (the source term of 2C and O2C) is NaN.
    """
    rows = []
    for v in in_variant_order(logs):
        ends = {int(s): log[log["step"] > log["step"].max() - last] for s, log in sorted(logs[v].items())
                if log is not None and set(SHARE_COLUMNS) <= set(log)}
        if not ends or all(end["g_class_share"].isna().all() for end in ends.values()):
            continue
        row = {"model": names.get(v, v), "variant": v, "seeds": len(ends)}
        for col in SHARE_COLUMNS:
            row.update(interval_columns(col, {s: float(end[col].mean()) for s, end in ends.items()}))
        rows.append(row)
    return pd.DataFrame(rows)


def share_sentences(table: pd.DataFrame, *, last: int = LAST_STEPS) -> list[str]:
    """One sentence per model of :func:`share_table`: the class term's share of G's numerator, and what the rest is."""
    sentences = []
    for _, r in table.iterrows():
        c, s = r["g_class_share"], r["g_source_share"]
        seeds = ", ".join(_pct(x) for x in r[[k for k in r.index if k.startswith("g_class_share_seed")]])
        text = (f"{r['model']}: over the last {last} steps the class term is {_pct(c)} of G's contrastive numerator "
                f"(by seed: {seeds}; in the D step, on real clips: {_pct(r['d_class_share'])})")
        if np.isnan(s):
            rest = 1.0 - c
            text += (", the whole of it." if rest < 5e-4 else
                     f"; the other {_pct(rest)} is the same-class generated clips.")
        else:
            rest = 1.0 - c - s
            text += f"; the source term is {_pct(s)}" + (f" and the same-class generated clips {_pct(rest)}."
                                                         if rest >= 5e-4 else ".")
        sentences.append(text)
    return sentences


def _pct(x: float) -> str:
    return "-" if np.isnan(x) else f"{100 * x:.1f} %"
