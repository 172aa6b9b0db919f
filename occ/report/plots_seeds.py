"""Figures over training seeds: D's loss with and without OCC as a mean with a band, and every seed's FAD and
probe accuracy per model with the mean, its 95% interval and the paper's numbers beside them.

Kept apart from `occ.report.plots` (which the training notebooks import) so that only the stages that summarise
seeds depend on the intervals over seeds, the paper's numbers and the read-back results. Each model is named by what
its runs recorded (`occ.report.results.model_names`). Every function returns a matplotlib Figure and works headless
(Agg); notebooks save and show them.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from occ.report.intervals import by_seed, t_interval  # noqa: E402
from occ.report.markdown import format_interval  # noqa: E402
from occ.report.paper import (CONTROL_VARIANTS, CT_PAIRS, OCC_PAIRS, PAPER_RUNS, REPORTED_TABLE1,  # noqa: E402
                              REPORTED_TABLE2, TABLE3_VARIANTS, departs_from_paper, in_variant_order, settings_text)
from occ.report.results import model_names, n_classes_of, variant_settings  # noqa: E402

__all__ = ["VARIANT_STYLE", "occ_line_style", "smoothed_over_seeds", "plot_loss_over_seeds", "plot_shares_over_seeds", "plot_by_seed",
           "plot_fad_by_seed", "plot_probe_by_seed"]

# Colour per variant, from the paper's lists (`occ.report.paper`): a pair without / with OCC (`OCC_PAIRS`) shares one
# colour, a CT 1.0 model (`CT_PAIRS`) has a lighter or darker one of its family, a control a grey; the line style is
# `occ_line_style`'s (without OCC dashed, with OCC solid), each control's its own.
_PAIR_COLOURS, _CT1_COLOURS = ("tab:blue", "tab:orange"), ("tab:cyan", "tab:red")
_CONTROL_LOOKS = (("0.45", ":"), ("0.15", "-."))
_COLOURS = {**{v: colour for pair, colour in zip(OCC_PAIRS, _PAIR_COLOURS) for v in pair},
            **{ct1: colour for (_, ct1), colour in zip(CT_PAIRS, _CT1_COLOURS)},
            **{v: colour for v, (colour, _) in zip(CONTROL_VARIANTS, _CONTROL_LOOKS)}}
_CONTROL_STYLES = {v: style for v, (_, style) in zip(CONTROL_VARIANTS, _CONTROL_LOOKS)}


def occ_line_style(variant: str) -> str:
    """A variant's line style: dashed without OCC (the first of a pair of `OCC_PAIRS`), a control's own, else solid."""
    if variant in _CONTROL_STYLES:
        return _CONTROL_STYLES[variant]
    return "--" if variant in {without for without, _ in OCC_PAIRS} else "-"


VARIANT_STYLE = {v: (colour, occ_line_style(v)) for v, colour in _COLOURS.items()}


def smoothed_over_seeds(runs: dict[int, pd.DataFrame] | pd.DataFrame, *, column: str = "d_adv", smooth: int = 20,
                        band: str = "minmax") -> pd.DataFrame:
    """One log column averaged over seeds, each seed smoothed first, with a band across seeds.

    Parameters
    ----------
    runs : dict of int to pandas.DataFrame, or pandas.DataFrame
        seed -> training log (columns `step` and `column`); a single DataFrame is one seed.
    column : str
        Log column, e.g. "d_adv" (D's hinge loss).
    smooth : int
        Trailing moving-average window in steps, applied to each seed before averaging.
    band : str
        "minmax": the lowest and highest smoothed seed at each step; "t": the 95% Student t interval of the
        mean over seeds at each step.

    Returns
    -------
    pandas.DataFrame
        Indexed by step (the steps every seed logged): mean, low, high, n (seeds). With one seed low and
        high are NaN.
    """
    if band not in ("minmax", "t"):
        raise ValueError(f"band = {band!r} is not 'minmax' or 't'")
    if isinstance(runs, pd.DataFrame):
        runs = {0: runs}
    curves = pd.concat({s: df.set_index("step")[column].rolling(max(1, smooth), min_periods=1).mean()
                        for s, df in sorted(runs.items())}, axis=1).dropna()
    n = curves.shape[1]
    out = pd.DataFrame({"mean": curves.mean(axis=1), "n": n}, index=curves.index)
    if n < 2:
        out["low"] = out["high"] = np.nan
    elif band == "minmax":
        out["low"], out["high"] = curves.min(axis=1), curves.max(axis=1)
    else:
        ivs = [t_interval(row) for row in curves.to_numpy()]
        out["low"], out["high"] = [iv.low for iv in ivs], [iv.high for iv in ivs]
    return out[["mean", "low", "high", "n"]]


def plot_loss_over_seeds(logs: dict[str, dict[int, pd.DataFrame]], *, names: dict[str, str], column: str = "d_adv",
                         smooth: int = 20, band: str = "minmax", title: str = "") -> plt.Figure:
    """Curves of one log column per variant, the mean over seeds with a band, e.g. D's adversarial loss.

    Parameters
    ----------
    logs : dict
        variant -> seed -> training log; a variant with no seeds is left out.
    names : dict
        variant -> the model's name in the legend (`occ.report.results.model_names`).
    column, smooth, band :
        As in `smoothed_over_seeds`: each seed is smoothed over `smooth` steps, then averaged; the band is
        min-max over seeds ("minmax") or the 95% t interval of the mean ("t"). A variant run from one seed
        is drawn without a band.

    Returns
    -------
    matplotlib.figure.Figure
        Without OCC dashed, with OCC solid, a pair in one colour; the legend says how many seeds each line
        averages and the title what the band is.
    """
    fig, ax = plt.subplots(figsize=(8, 4.5))
    _draw_over_seeds(ax, logs, names=names, column=column, smooth=smooth, band=band, title=title)
    fig.tight_layout()
    return fig


def plot_shares_over_seeds(logs: dict[str, dict[int, pd.DataFrame]], *, names: dict[str, str], smooth: int = 20,
                           band: str = "minmax") -> plt.Figure:
    """What ties the clips to their labels in the contrastive numerator, against the step, per variant; each curve
    the mean over seeds with a band (as :func:`plot_loss_over_seeds`, ``names`` in the legend).

    Top row: the class term's share, d2c / numerator, for the D step (real clips) and the G step (generated clips).
    Bottom row, log y axis: G's label-anchored share (log column ``g_label_share``: the class term, plus the source
    term where it is a real clip of the class asked for) and its pull-to-push weight (``g_pull_push``, tau_d / tau_c
    times that share; a dotted line at 1, where the pull toward the anchors equals the push from the other samples).
    Variants without a class term in their logs (no contrastive loss) are left out, and from the bottom row the logs
    written before its columns existed."""
    logs = {name: runs for name, runs in logs.items()
            if runs and any("g_class_share" in log and log["g_class_share"].notna().any() for log in runs.values())}
    fig, axes = plt.subplots(2, 2, figsize=(12, 9), sharey="row")
    for ax, step in zip(axes[0], ("d", "g")):
        _draw_over_seeds(ax, logs, names=names, column=f"{step}_class_share", smooth=smooth, band=band,
                         title=f"{'D step, real clips' if step == 'd' else 'G step, generated clips'}: d2c / numerator",
                         ylabel=f"class term's share (moving average over {smooth} steps)")
        ax.set_ylim(-0.02, 1.02)
    for ax, column, what in ((axes[1, 0], "g_label_share", "label-anchored share"),
                             (axes[1, 1], "g_pull_push", "pull-to-push weight")):
        with_column = {name: {s: log for s, log in runs.items() if column in log} for name, runs in logs.items()}
        _draw_over_seeds(ax, {name: runs for name, runs in with_column.items() if runs}, names=names, column=column,
                         smooth=smooth, band=band, ylabel=f"{what}, log scale (moving average over {smooth} steps)",
                         title=f"G step: {what}" + (" of the numerator" if column == "g_label_share"
                                                    else ", tau_d / tau_c x that share"))
        ax.set_yscale("log")
    axes[1, 1].axhline(1.0, color="k", ls=":", lw=1)
    fig.tight_layout()
    return fig


def _draw_over_seeds(ax: plt.Axes, logs: dict[str, dict[int, pd.DataFrame]], *, names: dict[str, str], column: str,
                     smooth: int, band: str, title: str, ylabel: str | None = None) -> None:
    """One log column per variant on ``ax``: the mean over seeds with a band, the legend counting the seeds."""
    band_text = "band: min-max over seeds" if band == "minmax" else "band: 95% t interval over seeds"
    for name, runs in logs.items():
        if runs is None or len(runs) == 0:
            continue
        curve = smoothed_over_seeds(runs, column=column, smooth=smooth, band=band)
        color, ls = VARIANT_STYLE.get(name, (None, "-"))
        n = int(curve["n"].iloc[0]) if len(curve) else 0
        line, = ax.plot(curve.index, curve["mean"], lw=1.6, ls=ls, color=color,
                        label=f"{names.get(name, name)} ({n} seed{'s' if n != 1 else ''})")
        if n >= 2:
            ax.fill_between(curve.index, curve["low"], curve["high"], color=line.get_color(), alpha=0.15, lw=0)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel or f"{column} (moving average over {smooth} steps)")
    ax.set_title((title or column) + f"\nmean over seeds; {band_text}", fontsize=11)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # no variant drawn (e.g. logs older than the column): no empty legend
        ax.legend(fontsize=8)


def plot_by_seed(metrics: dict[str, dict[int, dict]], *, key: str = "fad_mean",
                 reported: dict[str, float] | None = None, variants: list[str] | None = None,
                 chance: float | None = None, lower_is_better: bool = True, xlabel: str = "",
                 title: str = "") -> plt.Figure:
    """Per model, the value of every seed as a dot with the mean and its 95% interval over seeds.

    Parameters
    ----------
    metrics : dict
        variant -> seed -> metrics dict (the value is `metrics[variant][seed][key]`).
    key : str
        Metric to plot, e.g. "fad_mean" or "probe_accuracy".
    reported : dict, optional
        variant -> the paper's number; adds a right-hand panel with the paper's values and ranks, rows
        aligned with this run's.
    variants : list of str, optional
        Rows from top to bottom; default every variant of `metrics` in the project's order. A variant with no
        run (or no value) gets an empty row marked "not run".
    chance : float, optional
        Draws a vertical chance line (for accuracies).
    lower_is_better : bool
        Direction of the ranks written beside the means ("#1" = best).

    The rows are named by what each variant's runs recorded; a paper's number beside a run made with other settings
    than the paper's says which it was made with.

    Returns
    -------
    matplotlib.figure.Figure
        Left panel this run: coloured dots = seeds, black diamond = mean and bar = 95% Student t interval over
        seeds (neither with one seed); the mean ± half-width, the number of seeds and the rank are written at
        the right edge.
    """
    # each model's values, interval over seeds and rank
    order = variants or in_variant_order(metrics)
    names, settings = model_names(metrics, variants=order), variant_settings(metrics)
    values = {v: by_seed(metrics.get(v) or {}, key) for v in order}
    ivs = {v: t_interval([vals[s] for s in sorted(vals)]) for v, vals in values.items()}
    ranks = _ranks({v: iv.mean for v, iv in ivs.items() if iv.n}, lower_is_better)
    with_paper = reported is not None
    fig, axes = plt.subplots(1, 2 if with_paper else 1, figsize=(11 if with_paper else 7.5, 0.55 * len(order) + 1.6),
                             squeeze=False, gridspec_kw={"width_ratios": [3, 1.3]} if with_paper else None)
    # this run: a dot per seed, the mean and its interval, the numbers written at the right
    ax = axes[0, 0]
    ys = np.arange(len(order))[::-1]
    rng = np.random.default_rng(0)
    for y, v in zip(ys, order):
        vals, iv = values[v], ivs[v]
        if not vals:
            ax.text(0.02, y, "not run", transform=ax.get_yaxis_transform(), va="center", color="0.5", fontsize=9)
            continue
        seeds = sorted(vals)
        jitter = rng.uniform(-0.12, 0.12, len(seeds))
        ax.scatter([vals[s] for s in seeds], y + jitter, s=28, color=VARIANT_STYLE.get(v, ("0.4", ""))[0],
                   alpha=0.65, edgecolors="none", zorder=3)
        if iv.n >= 2:
            ax.errorbar(iv.mean, y, xerr=iv.half_width, fmt="none", ecolor="k", elinewidth=1.6, capsize=5, zorder=4)
            ax.scatter([iv.mean], [y], marker="D", s=40, color="k", zorder=5)
        note = f"{format_interval(iv.mean, iv.half_width, iv.n).replace(' (1 seed)', '')}  n={iv.n}  #{ranks[v]}"
        ax.annotate(note, (1.0, y), xycoords=("axes fraction", "data"), xytext=(-4, 0), textcoords="offset points",
                    ha="right", va="center", fontsize=8)
    if chance is not None:
        ax.axvline(chance, color="tab:red", ls="--", lw=1)
        ax.annotate(f"chance {chance:.3f}", (chance, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -10),
                    textcoords="offset points", color="tab:red", fontsize=8)
    lows = [min(min(values[v].values()), ivs[v].low if ivs[v].n >= 2 else np.inf) for v in order if values[v]]
    highs = [max(max(values[v].values()), ivs[v].high if ivs[v].n >= 2 else -np.inf) for v in order if values[v]]
    if lows:
        lo, hi = min(lows + ([chance] if chance is not None else [])), max(highs + ([chance] if chance is not None else []))
        span = (hi - lo) or abs(hi) or 1.0
        ax.set_xlim(lo - 0.08 * span, hi + 0.55 * span)  # room on the right for the written means
    ax.set_yticks(ys)
    ax.set_yticklabels([names[v] for v in order], fontsize=9)
    ax.set_ylim(-0.7, len(order) - 0.3)
    ax.set_xlabel(xlabel or key)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("this run: dots = seeds, ◆ = mean, bar = 95% t interval"
                 + ("; #1 = lowest" if lower_is_better else "; #1 = highest"), fontsize=9)
    # the paper's numbers and ranks in a panel of their own, row for row
    if with_paper:
        pax = axes[0, 1]
        paper_ranks = _ranks({v: reported[v] for v in order if v in reported}, lower_is_better)
        for y, v in zip(ys, order):
            if v in reported:
                pax.barh(y, reported[v], color="0.75", height=0.5)
                made = f" ({settings_text(PAPER_RUNS[v])})" if departs_from_paper(v, settings.get(v)) else ""
                pax.annotate(f"{reported[v]:.3f}  #{paper_ranks[v]}{made}", (reported[v], y), xytext=(3, 0),
                             textcoords="offset points", va="center", fontsize=8)
            else:
                pax.text(0.02, y, "not in the paper", transform=pax.get_yaxis_transform(), va="center",
                         color="0.5", fontsize=8)
        pax.set_yticks(ys)
        pax.set_yticklabels([])
        pax.set_ylim(ax.get_ylim())
        top = max([reported[v] for v in order if v in reported], default=1.0)
        pax.set_xlim(0, top * 1.6)
        pax.set_title("the paper (its data and embedding)", fontsize=9)
        pax.set_xlabel("reported")
    fig.suptitle(title or key)
    fig.tight_layout()
    return fig


def plot_fad_by_seed(metrics: dict[str, dict[int, dict]], *, variants: list[str] | None = None,
                     label: str = "this run", title: str = "") -> plt.Figure:
    """FAD of every seed per model with the mean and its 95% interval, the paper's FAD and ranks beside it.

    The paper's numbers are Table 1's (and Table 2's averages for the CT 1.0 models); see `plot_by_seed`.
    """
    reported = {**REPORTED_TABLE1, **{v: REPORTED_TABLE2[v][-1] for v in TABLE3_VARIANTS}}
    return plot_by_seed(metrics, key="fad_mean", reported=reported, variants=variants, xlabel=f"mean FAD, {label}",
                        title=title or "Mean FAD per model over seeds (lower is better), beside the paper's")


def plot_probe_by_seed(metrics: dict[str, dict[int, dict]], *, key: str = "probe_accuracy",
                       variants: list[str] | None = None, n_classes: int | None = None,
                       title: str = "") -> plt.Figure:
    """Probe accuracy on the generated clips of every seed per model, with the mean, its interval and chance.

    Chance is 1 / `n_classes` (default: the runs' `n_classes`, else the seven DCASE classes). The hinge-only
    control never sees the class: its clips are expected at chance.
    """
    if n_classes is None:
        n_classes = n_classes_of(m for runs in metrics.values() for m in (runs or {}).values())
    return plot_by_seed(metrics, key=key, variants=variants, chance=1.0 / n_classes, lower_is_better=False,
                        xlabel=f"{key.replace('_', ' ')} on generated clips",
                        title=title or "Are the generated clips recognisable? (control: expected at chance)")


def _ranks(values: dict[str, float], lower_is_better: bool) -> dict[str, int]:
    """variant -> rank (1 = best) of its value."""
    order = sorted(values, key=lambda v: values[v] if lower_is_better else -values[v])
    return {v: i + 1 for i, v in enumerate(order)}
