"""The paper's claims C1-C4, each decided by a paired comparison of two models over the seeds.

A claim "A < B" (or "A > B") is decided by the differences A - B of the runs trained from the same seed, with
the verdict rule of `occ.report.intervals.paired_comparison`: "reproduced", "contradicted" or "not established"
(`VERDICT_MEANING` says it in one paragraph). Each comparison is one row of the claims table, indexed by a key
such as ``C1_o2c_vs_contragan`` (the claim, then the two variants in the order they are subtracted), which is
also its key in the DVC metrics file (`occ.report.dvc_metrics`). Each model is named by what its runs recorded
(`occ.report.results.model_names`); where a run departs from what the paper ran under that name (other temperatures,
another source reading), the claim says what was compared instead.
"""

from __future__ import annotations

from typing import Mapping

import pandas as pd

from occ.report.intervals import by_seed, paired_comparison
from occ.report.markdown import short_number
from occ.report.paper import PAPER_RUNS, REPORTED_TABLE1, REPORTED_TABLE2, departs_from_paper, settings_text
from occ.report.results import model_names, variant_settings

__all__ = ["CLAIMS", "QUANTITIES", "VERDICT_MEANING", "claims_table", "d_loss_tail"]

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
VERDICT_MEANING = (
    '"reproduced": the 95% interval of the mean paired difference (same seed, Student t over the seeds) lies '
    'entirely on the paper\'s side of 0; "contradicted": entirely on the other side; "not established": it '
    "contains 0 or fewer than two seeds were paired. The detectable difference is the interval's half-width: "
    "a true difference smaller than about that cannot be told from none with these seeds."
)


def claims_table(metrics: Mapping[str, Mapping[int, dict]],
                 logs: Mapping[str, Mapping[int, pd.DataFrame]]) -> pd.DataFrame:
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
        established"), indexed ``<claim>_<a>_vs_<b>``: claim, paper, measure, difference (mean of a - b) with
        ``_low``, ``_high``, ``_halfwidth``, ``_n``, n_seeds, paired_seeds, detectable_difference (the
        half-width), verdict (one of `occ.report.intervals.VERDICTS`) and reading (one plain sentence).
    """
    names = model_names(metrics, variants=[v for claim in CLAIMS for v in claim[1:3]])
    settings = variant_settings(metrics)
    rows, keys = [], []
    for cid, a, b, side, quantity in CLAIMS:
        va, vb = _claim_values(quantity, a, metrics, logs), _claim_values(quantity, b, metrics, logs)
        p = paired_comparison(va, vb, paper_side=side)
        A, B = names[a], names[b]
        keys.append(f"{cid}_{a}_vs_{b}")
        rows.append({
            "claim": f"{cid} {_claim_text(cid, A, B)}{_compared(a, b, settings)}",
            "paper": _paper_text(cid, a, b),
            "measure": f"{QUANTITIES[quantity]}: {A} - {B}",
            "difference": p.mean, "difference_low": p.low, "difference_high": p.high,
            "difference_halfwidth": p.half_width, "difference_n": p.n,
            "n_seeds": p.n,
            "paired_seeds": ", ".join(map(str, p.seeds)),
            "detectable_difference": p.half_width,
            "verdict": p.verdict,
            "reading": _reading(p, A, B, quantity),
        })
    return pd.DataFrame(rows, index=keys)


def d_loss_tail(log: pd.DataFrame, *, column: str = "d_adv", fraction: float = 0.2) -> float:
    """Mean of a log column over the last `fraction` of the steps (how far D's loss has fallen; claim C3)."""
    n = max(1, int(round(len(log) * fraction)))
    return float(log[column].iloc[-n:].mean())


def _claim_values(quantity: str, variant: str, metrics: Mapping, logs: Mapping) -> dict[int, float]:
    if quantity == "d_loss":
        return {int(s): d_loss_tail(log) for s, log in (logs.get(variant) or {}).items() if len(log)}
    key = "fad_mean" if quantity == "fad" else "d_within_class_distance"
    return by_seed(metrics.get(variant) or {}, key)


def _claim_text(cid: str, A: str, B: str) -> str:
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


def _compared(a: str, b: str, settings: Mapping[str, Mapping]) -> str:
    """Empty when both models' runs are what the paper ran under their names; else what was compared instead."""
    if not (departs_from_paper(a, settings.get(a)) or departs_from_paper(b, settings.get(b))):
        return ""
    ours, paper = (f"{settings_text(s.get(a) or PAPER_RUNS[a])} against {settings_text(s.get(b) or PAPER_RUNS[b])}"
                   for s in (settings, PAPER_RUNS))
    return f" (compared here: {ours}; the paper compared {paper})"


def _reading(p, A: str, B: str, quantity: str) -> str:
    q = QUANTITIES[quantity]
    if p.n < 2:
        return (f"Only {p.n} seed(s) with both runs: no interval, nothing decided." if p.n
                else "No seed with both runs: nothing decided.")
    size = (f"by {short_number(abs(p.mean))} on average over {p.n} seeds (difference {short_number(p.mean)}, "
            f"95% CI {short_number(p.low)} to {short_number(p.high)})")
    if p.verdict == "reproduced":
        return f"{A}'s {q} is {'lower' if p.paper_side == 'less' else 'higher'} than {B}'s {size}, as the paper reports."
    if p.verdict == "contradicted":
        return (f"{A}'s {q} is {'higher' if p.paper_side == 'less' else 'lower'} than {B}'s {size}, "
                "the opposite of what the paper reports.")
    return (f"{A} minus {B} in {q} averages {short_number(p.mean)} over {p.n} seeds, within "
            f"±{short_number(p.half_width)} of 0: a true difference smaller than about that cannot be told from none "
            "with these seeds.")
