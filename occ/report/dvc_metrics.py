"""The claims' and checks' numbers as DVC metrics: `results/tables/claims.json` and `checks.json`.

The tables stage declares both under ``metrics:`` in dvc.yaml, so `dvc metrics show` and `dvc exp show` list
them beside the per-run metrics. Each file is one JSON object: a key per row of its table (the table's index,
e.g. ``C1_o2c_vs_contragan`` or ``recognisable_o2c``) holding the row's numbers, read as columns such as
``C1_o2c_vs_contragan.difference``:

* claims: ``difference`` (mean of a - b over the paired seeds), ``low``, ``high`` (its 95% interval),
  ``halfwidth`` (the detectable difference), ``n_seeds``, ``verdict`` (1 reproduced, 0 not established,
  -1 contradicted) and ``verdict_text``;
* checks: ``value``, ``low``, ``high``, ``halfwidth``, ``n_seeds``, ``result`` (1 passed, -1 failed, 0 neither:
  not established, or the class-blind control, which is expected at chance) and ``result_text``.

A number that does not exist (no interval from fewer than two seeds) is ``null``, which DVC leaves out.
"""

from __future__ import annotations

import math

import pandas as pd

__all__ = ["VERDICT_CODES", "RESULT_CODES", "claims_metrics", "checks_metrics"]

VERDICT_CODES = {"reproduced": 1, "not established": 0, "contradicted": -1}
RESULT_CODES = {"passed": 1, "failed": -1}  # any other result (not established, expected at chance): 0


def claims_metrics(verdicts: pd.DataFrame) -> dict:
    """The claims table (`occ.report.claims.claims_table`) as the DVC metrics of `claims.json`."""
    return {key: {**_interval(row, "difference"), "verdict": VERDICT_CODES[row["verdict"]],
                  "verdict_text": row["verdict"]} for key, row in verdicts.iterrows()}


def checks_metrics(checks: pd.DataFrame) -> dict:
    """The checks table (`occ.report.checks.checks_table`) as the DVC metrics of `checks.json`."""
    return {key: {**_interval(row, "value"), "result": RESULT_CODES.get(row["result"], 0),
                  "result_text": row["result"]} for key, row in checks.iterrows()}


def _interval(row: pd.Series, quantity: str) -> dict:
    """A quantity's mean (under its own name), low, high, halfwidth and n_seeds; NaN as None."""
    values = {quantity: row[quantity], "low": row[f"{quantity}_low"], "high": row[f"{quantity}_high"],
              "halfwidth": row[f"{quantity}_halfwidth"]}
    out = {k: None if math.isnan(v) else float(v) for k, v in values.items()}
    out["n_seeds"] = int(row[f"{quantity}_n"])
    return out
