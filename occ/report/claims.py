"""The paper's claims C1-C4, each decided by a paired comparison of two models over the seeds.

A claim "A < B" (or "A > B") is decided by the differences A - B of the runs trained from the same seed, with
the verdict rule of `occ.report.intervals.paired_comparison`: "reproduced", "contradicted" or "not established"
(`VERDICT_MEANING` says it in one paragraph). Each comparison is one row of the claims table, indexed by a key
such as ``C1_o2c_vs_contragan`` (the claim, then the two variants in the order they are subtracted), which is
also its key in the DVC metrics file (`occ.report.dvc_metrics`). Each model is named by what its runs recorded
(`occ.report.results.model_names`); where a run departs from what the paper ran under that name (other temperatures,
another D reading or source reading), the claim says what was compared instead. The ``role`` column tells the
eight claims ("claim") from the rows that say where a difference comes from ("split") and from each claim pooled
over both families ("pooled").
"""

from __future__ import annotations

from typing import Mapping

import pandas as pd

from occ.report.intervals import by_seed, paired_comparison
from occ.report.markdown import short_number
from occ.report.paper import (CT_PAIRS, OCC_PAIRS, PAPER_RUNS, REPORTED_TABLE1, REPORTED_TABLE2, departs_from_paper,
                              settings_text)
from occ.report.results import model_names, variant_settings

__all__ = ["CLAIMS", "SPLITS", "FAMILIES", "QUANTITIES", "SHORT_QUANTITIES", "VERDICT_MEANING", "claims_table",
           "d_loss_tail", "d_loss_early"]

# (claim id, a, b, the side of 0 on which the paper puts a - b, quantity compared): the eight comparisons, each
# measured as the paper states its claim, over the paper's pairs (`occ.report.paper`: OCC_PAIRS, CT_PAIRS). C3 is a
# speed ("falls too quickly", "drops rapidly"): D's adversarial loss over the first quarter of the steps.
CLAIMS = (
    *(("C1", with_occ, without, "less", "fad") for without, with_occ in OCC_PAIRS),
    *(("C2", ct1, ct01, "less", "fad") for ct01, ct1 in CT_PAIRS),
    *(("C3", without, with_occ, "less", "d_loss_early") for without, with_occ in OCC_PAIRS),
    *(("C4", with_occ, without, "greater", "spread") for without, with_occ in OCC_PAIRS),
)
#: Beside a claim's own measure, the rows that say where a difference comes from, each with the side on which the
#: model the paper favours lies: C1 and C2 (per-class FAD) split into sound (the label-free FAD of all clips against
#: all held-out clips) and labels (the probe's accuracy); C3 keeps the end level it was measured by before.
SPLITS = {
    "C1": (("fad_label_free", "less"), ("probe", "greater")),
    "C2": (("fad_label_free", "less"), ("probe", "greater")),
    "C3": (("d_loss", "less"),),
    "C4": (),
}
#: The two families whose pairs each claim compares: (2C, O2C) and (C-SupCon, OC-SupCon). A pooled row takes the
#: paired differences of both families together (six pairs from three seeds, each seed counted once per family).
FAMILIES = ("2C / O2C", "C-SupCon / OC-SupCon")
QUANTITIES = {
    "fad": "mean FAD",
    "fad_label_free": "label-free FAD (all clips against all held-out clips)",
    "probe": "probe accuracy",
    "d_loss_early": "D's hinge loss over the first 25 % of steps",
    "d_loss": "D's hinge loss over the last 20 % of steps",
    "spread": "mean within-class distance of D's unit embeddings of generated clips",
}
#: The quantities in a few words, in the claim column of the split rows.
SHORT_QUANTITIES = {"fad": "mean FAD", "fad_label_free": "label-free FAD", "probe": "probe accuracy",
                    "d_loss_early": "D's loss over the first 25 % of steps",
                    "d_loss": "D's loss over the last 20 % of steps", "spread": "within-class spread"}
#: The fraction of the steps over which C3's speed is measured, fixed before the runs.
EARLY_FRACTION = 0.25
VERDICT_MEANING = (
    '"reproduced": the 95% interval of the mean paired difference (same seed, Student t over the seeds) lies '
    'entirely on the paper\'s side of 0; "contradicted": entirely on the other side; "not established": it '
    "contains 0 or fewer than two seeds were paired. The detectable difference is the interval's half-width: "
    "a true difference smaller than about that cannot be told from none with these seeds. A pooled row takes both "
    "families' paired differences (two per seed) as one sample; a split row's side is that of the model the paper "
    "favours."
)


def claims_table(metrics: Mapping[str, Mapping[int, dict]],
                 logs: Mapping[str, Mapping[int, pd.DataFrame]]) -> pd.DataFrame:
    """The paper's claims C1-C4, each decided by a paired comparison over seeds, with its splits and pooled rows.

    C1: OCC lowers FAD (O2C-GAN < ContraGAN, OC-SupConGAN < C-SupConGAN; Table 1). C2: CT 1.0 beats CT 0.1
    (for O2C-GAN and for OC-SupConGAN; Table 2). C3: without OCC D's adversarial loss falls faster
    (`d_loss_early` of `d_adv`: ContraGAN < O2C-GAN, C-SupConGAN < OC-SupConGAN; Section 4). C4: OCC spreads
    same-class embeddings in D's space (`d_within_class_distance`: O2C-GAN > ContraGAN, OC-SupConGAN >
    C-SupConGAN; Figure 2). `SPLITS` adds the label-free FAD and the probe beside C1's and C2's per-class FAD,
    and C3's end level; each claim and each split gets a pooled row over both families.

    Parameters
    ----------
    metrics : dict
        variant -> seed -> metrics dict (keys `fad_mean`, `fad_label_free`, `probe_accuracy`,
        `d_within_class_distance`).
    logs : dict
        variant -> seed -> training log (column `d_adv`).

    Returns
    -------
    pandas.DataFrame
        One row per comparison, all always present (a comparison without paired seeds is "not established"):
        first the eight claims, indexed ``<claim>_<a>_vs_<b>``, then each claim's splits
        (``<claim>_<a>_vs_<b>_<quantity>``), then the pooled rows (``<claim>_pooled`` and
        ``<claim>_pooled_<quantity>``). Columns: claim, role ("claim", "split" or "pooled"), paper, measure,
        difference (mean of a - b) with ``_low``, ``_high``, ``_halfwidth``, ``_n``, n_seeds, paired_seeds,
        detectable_difference (the half-width), verdict (one of `occ.report.intervals.VERDICTS`) and reading.
    """
    names = model_names(metrics, variants=[v for claim in CLAIMS for v in claim[1:3]])
    settings = variant_settings(metrics)
    rows: dict[str, dict] = {}
    pooled: dict[tuple[str, str, str], tuple[dict, dict]] = {}
    for role in ("claim", "split"):
        for index, (cid, a, b, side, quantity) in enumerate(CLAIMS):
            family = [c[0] for c in CLAIMS[:index]].count(cid)  # the pair's place in its claim: 0 (2C / O2C), 1
            measures = [(quantity, side)] if role == "claim" else list(SPLITS[cid])
            for q, q_side in measures:
                va, vb = _claim_values(q, a, metrics, logs), _claim_values(q, b, metrics, logs)
                p = paired_comparison(va, vb, paper_side=q_side)
                A, B = names[a], names[b]
                key = f"{cid}_{a}_vs_{b}" + ("" if role == "claim" else f"_{q}")
                text = _claim_text(cid, A, B) if role == "claim" else _split_text(q, q_side, A, B)
                rows[key] = _row(p, f"{cid} {text}{_compared(a, b, settings)}", role,
                                 _paper_text(cid, a, b) if role == "claim" else f"a split of {cid}, no number",
                                 f"{QUANTITIES[q]}: {A} - {B}", A, B, q)
                both = pooled.setdefault((cid, q, q_side), ({}, {}))
                both[0].update({(family, s): v for s, v in va.items()})
                both[1].update({(family, s): v for s, v in vb.items()})
    for (cid, q, q_side), (va, vb) in pooled.items():
        p = paired_comparison(va, vb, paper_side=q_side)
        claim_q = next(c[4] for c in CLAIMS if c[0] == cid)
        key = f"{cid}_pooled" + ("" if q == claim_q else f"_{q}")
        with_occ, without = _pooled_sides(cid, settings)
        text = _claim_text(cid, with_occ, without) if q == claim_q else _split_text(q, q_side, with_occ, without)
        rows[key] = _row(p, f"{cid} {text}, both families pooled", "pooled",
                         "pooled over both families, no number", f"{QUANTITIES[q]}: {with_occ} - {without}",
                         with_occ, without, q, seeds_text=", ".join(f"{FAMILIES[f].split(' / ')[0]} s{s}"
                                                                     for f, s in p.seeds))
    return pd.DataFrame(list(rows.values()), index=list(rows))


def _steps_in(log: pd.DataFrame, fraction: float) -> int:
    """How many of the log's steps make up ``fraction`` of them (at least one)."""
    return max(1, int(round(len(log) * fraction)))


def d_loss_tail(log: pd.DataFrame, *, column: str = "d_adv", fraction: float = 0.2) -> float:
    """Mean of a log column over the last `fraction` of the steps (how far D's loss has fallen; C3's end level)."""
    return float(log[column].iloc[-_steps_in(log, fraction):].mean())


def d_loss_early(log: pd.DataFrame, *, column: str = "d_adv", fraction: float = EARLY_FRACTION) -> float:
    """Mean of a log column over the first `fraction` of the steps: how fast D's loss falls (claim C3, a speed;
    the lower, the faster)."""
    return float(log[column].iloc[:_steps_in(log, fraction)].mean())


def _row(p, claim: str, role: str, paper: str, measure: str, A: str, B: str, quantity: str, *,
         seeds_text: str | None = None) -> dict:
    return {
        "claim": claim, "role": role, "paper": paper, "measure": measure,
        "difference": p.mean, "difference_low": p.low, "difference_high": p.high,
        "difference_halfwidth": p.half_width, "difference_n": p.n,
        "n_seeds": p.n,
        "paired_seeds": seeds_text if seeds_text is not None else ", ".join(map(str, p.seeds)),
        "detectable_difference": p.half_width,
        "verdict": p.verdict,
        "reading": _reading(p, A, B, quantity, unit="seeds" if seeds_text is None else "pairs"),
    }


def _pooled_sides(cid: str, settings: Mapping[str, Mapping]) -> tuple[str, str]:
    """The two sides of a claim's pooled row, in words; C2's name the class temperatures its runs used
    (``"CT 1.0"``, ``"CT 0.1"``; ``"CT 0.5 / 1.0"`` where the two families differ)."""
    if cid == "C2":
        return tuple(_class_temperatures([pair[side] for pair in CT_PAIRS], settings) for side in (1, 0))
    return {"C1": ("with OCC", "without OCC"), "C3": ("without OCC", "with OCC"),
            "C4": ("with OCC", "without OCC")}[cid]


def _class_temperatures(variants: list[str], settings: Mapping[str, Mapping]) -> str:
    """``"CT <tau_c>"`` of ``variants``' runs (the paper's where a variant has none), each value once, in order."""
    taus = dict.fromkeys(str((settings.get(v) or PAPER_RUNS[v])["tau_c"]) for v in variants)
    return f"CT {' / '.join(taus)}"


def _claim_values(quantity: str, variant: str, metrics: Mapping, logs: Mapping) -> dict[int, float]:
    if quantity in ("d_loss", "d_loss_early"):
        level = d_loss_tail if quantity == "d_loss" else d_loss_early
        return {int(s): level(log) for s, log in (logs.get(variant) or {}).items() if len(log)}
    key = {"fad": "fad_mean", "fad_label_free": "fad_label_free", "probe": "probe_accuracy",
           "spread": "d_within_class_distance"}[quantity]
    return by_seed(metrics.get(variant) or {}, key)


def _claim_text(cid: str, A: str, B: str) -> str:
    return {
        "C1": f"OCC lowers FAD: {A} < {B}",
        "C2": f"tau_c 1.0 beats 0.1: {A} < {B}",
        "C3": f"without OCC D's adversarial loss falls faster: {A} < {B}",
        "C4": f"OCC spreads same-class embeddings in D's space: {A} > {B}",
    }[cid]


def _split_text(quantity: str, side: str, A: str, B: str) -> str:
    """A split row's claim: what it is measured by and the side on which the paper's favoured model lies."""
    return f"split by {SHORT_QUANTITIES[quantity]}: {A} {'<' if side == 'less' else '>'} {B}"


def _paper_text(cid: str, a: str, b: str) -> str:
    if cid == "C1":
        return f"{REPORTED_TABLE1[a]:.3f} < {REPORTED_TABLE1[b]:.3f} (Table 1)"
    if cid == "C2":
        return f"{REPORTED_TABLE2[a][-1]:.3f} < {REPORTED_TABLE2[b][-1]:.3f} (Table 2)"
    if cid == "C3":
        return "observed (Section 4), no number"
    return "shown (Figure 2, t-SNE), no number"


def _compared(a: str, b: str, settings: Mapping[str, Mapping]) -> str:
    """Empty when both models' runs are what the paper ran under their names; else what was compared instead."""
    if not (departs_from_paper(a, settings.get(a)) or departs_from_paper(b, settings.get(b))):
        return ""
    ours, paper = (f"{settings_text(s.get(a) or PAPER_RUNS[a])} against {settings_text(s.get(b) or PAPER_RUNS[b])}"
                   for s in (settings, PAPER_RUNS))
    return f" (compared here: {ours}; the paper compared {paper})"


def _reading(p, A: str, B: str, quantity: str, *, unit: str = "seeds") -> str:
    """The row's sentence; ``unit`` names what was paired: "seeds" (one family) or "pairs" (a pooled row)."""
    q = QUANTITIES[quantity]
    if p.n < 2:
        return (f"Only {p.n} {unit[:-1]}(s) with both runs: no interval, nothing decided." if p.n
                else f"No {unit[:-1]} with both runs: nothing decided.")
    size = (f"by {short_number(abs(p.mean))} on average over {p.n} {unit} (difference {short_number(p.mean)}, "
            f"95% CI {short_number(p.low)} to {short_number(p.high)})")
    if p.verdict == "reproduced":
        return (f"{A}'s {q} is {'lower' if p.paper_side == 'less' else 'higher'} than {B}'s {size}, as the paper "
                "reports.")
    if p.verdict == "contradicted":
        return (f"{A}'s {q} is {'higher' if p.paper_side == 'less' else 'lower'} than {B}'s {size}, "
                "the opposite of what the paper reports.")
    return (f"{A} minus {B} in {q} averages {short_number(p.mean)} over {p.n} {unit}, within "
            f"±{short_number(p.half_width)} of 0: a true difference smaller than about that cannot be told from none "
            f"with these {unit}.")
