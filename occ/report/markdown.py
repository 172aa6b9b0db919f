"""How a table reads: its Markdown view, its two files, and numbers written for reading.

A table's CSV keeps every column at full precision: a quantity ``q`` over seeds takes the columns ``q`` (the
mean), ``q_low``, ``q_high``, ``q_halfwidth``, ``q_n`` (seeds counted) and ``q_seed<k>`` (the value from seed k;
see `occ.report.tables.interval_columns`). The Markdown view (`readable`) shows each such quantity as one cell,
``mean ± half-width`` rounded to the interval's precision, and drops the per-seed and CSV-only columns.
`write_table` writes both files atomically; `format_interval`, `short_number` and `bracket_text` write numbers
into cells, figure labels and the sentences of the claims and checks.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from occ.atomic import atomic_write_text, write_csv
from occ.report.paper import REPORTED_LABEL

__all__ = ["HEADERS", "CSV_ONLY", "BRACKETED", "readable", "to_markdown", "write_table", "format_interval",
           "short_number", "bracket_text"]

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
    "role": "role",
    "paper": "paper",
    "difference": "mean paired difference [95% CI]",
    "n_seeds": "seeds paired",
    "detectable_difference": "detectable difference",
    "verdict": "verdict",
    "check": "check",
    "value": "measured [95% CI]",
    "criterion": "passes when",
    "result": "result",
    "seed": "seed",
    "mi_bits": "MI, bits",
    "mi_null95": "MI if shuffled (95th pct.)",
    "relabelled_accuracy": "accuracy, best relabelling",
    "own_label_classes": "classes recognised as themselves",
    "clips": "the clips are",
    "recognisable": "recognisable (probe >= 0.5)",
    "control_probe_accuracy": "paired control's probe (same seed)",
    "minus_control": "probe - paired control",
    "vs_chance": "against chance",
    "vs_control": "against the paired control",
    "g_label_share": "G: label-anchored share",
    "g_pull_push": "G: pull-to-push weight",
    "g_class_share": "G: class term's share",
    "g_source_share": "G: source term's share",
    "d_class_share": "D: class term's share",
    "d_source_share": "D: source term's share",
}
# CSV-only columns (kept at full precision, not shown in Markdown).
CSV_ONLY = ("variant", "clip_bootstrap_width", "measure", "reading", "paired_seeds")
# Quantities shown as "mean [low, high]" instead of "mean ± half-width" (where the side of 0 matters).
BRACKETED = ("difference", "value", "minus_control")
_SUFFIXES = ("_low", "_high", "_halfwidth", "_n")


def readable(df: pd.DataFrame, *, label: str = "this run", chance: float | None = None) -> pd.DataFrame:
    """The Markdown view of a table: each quantity over seeds as one rounded cell, CSV-only columns dropped.

    A column ``q`` with ``q_low`` / ``q_high`` / ``q_halfwidth`` / ``q_n`` beside it becomes one text cell:
    "332.0 ± 12.3" (the half-width of the 95% interval over seeds), "-4.1 [-9.0, 0.8]" for the quantities in
    `BRACKETED`, "332.0 (1 seed)" when only one seed ran, the plain number where the row has no seeds (the
    paper's). Per-seed and interval columns, `CSV_ONLY` columns and quantities no run measured are dropped;
    known columns are renamed by `HEADERS`. The index is kept.
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
    """A GitHub-flavoured Markdown table (no extra dependency, no index); floats with `digits` decimals."""
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
    """Write `<stem>.csv` (every column, full precision, no index) and `<stem>.md` (`readable`, rounded) atomically."""
    stem = Path(stem)
    write_csv(stem.with_suffix(".csv"), df, index=False)
    md = (f"# {title}\n\n" if title else "") + (f"{note}\n\n" if note else "")
    atomic_write_text(stem.with_suffix(".md"), md + to_markdown(readable(df, label=label, chance=chance)))


def format_interval(mean: float, half_width: float, n: int) -> str:
    """A mean over seeds for reading: "332.0 ± 12.3" (decimals from the half-width), "332.013 (1 seed)" when n = 1."""
    if mean is None or pd.isna(mean):
        return ""
    if pd.isna(n) or int(n) < 2:
        return f"{mean:.3f} (1 seed)" if not pd.isna(n) and int(n) == 1 else f"{mean:.3f}"
    d = _decimals(half_width if half_width > 1e-12 * max(1.0, abs(mean)) else 0.0)
    return f"{mean:.{d}f} ± {half_width:.{d}f}"


def short_number(x: float) -> str:
    """A number in a sentence: three significant digits below 10, one decimal above; "n/a" for NaN."""
    if x is None or math.isnan(x):
        return "n/a"
    return f"{x:.3g}" if abs(x) < 10 else f"{x:.1f}"


def bracket_text(low: float, high: float) -> str:
    """" [low, high]" in `short_number`s, or nothing where there is no interval."""
    return "" if low is None or math.isnan(low) else f" [{short_number(low)}, {short_number(high)}]"


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
