"""The paper's tables: its reported numbers, and builders that put this run's numbers beside them.

Reported numbers are FAD on the DCASE 2023 Task 7 evaluation set with VGGish embeddings (REFERENCE
section 1). This run's numbers come from `results/eval/<variant>/fad.csv`, on whatever dataset and
embedding the run used; the column headers say which, so the two are never mistaken for each other.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from occ.atomic import atomic_write_text

CLASSES = ["DogBark", "Footstep", "GunShot", "Keyboard", "MovingMotorVehicle", "Rain", "Sneeze_Cough"]
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


def this_run_label(dataset: str, embedding: str) -> str:
    """Column label for this run's numbers, e.g. "this run (synthetic foley, aisfx)"."""
    return f"this run ({dataset}, {embedding})"


def table1(metrics: dict[str, dict], *, label: str) -> pd.DataFrame:
    """Table 1: mean FAD of the four models at tau 0.1/0.1 plus the hinge-only control.

    Parameters
    ----------
    metrics : dict
        variant -> the metrics dict written by the evaluation notebook (keys `fad_mean`,
        `fad_mean_ci_low`, `fad_mean_ci_high`, `fad_mean_step0`).
    label : str
        Header of this run's column.
    """
    rows = []
    for variant in ("contragan", "csupcongan", "o2c", "ocsupcon", "hinge_only"):
        if variant not in metrics:
            continue
        m = metrics[variant]
        rows.append({
            "model": MODEL_NAMES[variant],
            "variant": variant,
            REPORTED_LABEL: REPORTED_TABLE1.get(variant),
            label: m["fad_mean"],
            "95% CI": _ci(m),
            "step-0 FAD (same generator, untrained)": m["fad_mean_step0"],
            "trained / step-0": m["fad_mean"] / m["fad_mean_step0"],
        })
    return pd.DataFrame(rows)


def table2(per_class: dict[str, pd.Series], *, label: str, classes: list[str] = CLASSES) -> pd.DataFrame:
    """Table 2: per-class FAD, CT 0.1 vs CT 1.0, for O2C-GAN and OC-SupConGAN (reported beside this run)."""
    rows = []
    for variant in ("o2c", "o2c_ct1", "ocsupcon", "ocsupcon_ct1"):
        dt, ct = TEMPERATURES[variant]
        rows.append(_per_class_row(MODEL_NAMES[variant.replace("_ct1", "")], dt, ct, REPORTED_LABEL, REPORTED_TABLE2[variant], classes))
        if variant in per_class:
            rows.append(_per_class_row(MODEL_NAMES[variant.replace("_ct1", "")], dt, ct, label, _values(per_class[variant], classes), classes))
    return pd.DataFrame(rows)


def table3(per_class: dict[str, pd.Series], *, label: str, classes: list[str] = CLASSES) -> pd.DataFrame:
    """Table 3: the DCASE baseline's reported per-class FAD beside the CT 1.0 models (reported and this run)."""
    rows = [_per_class_row("DCASE baseline (VQ-VAE + PixelSNAIL)", None, None, REPORTED_LABEL, REPORTED_BASELINE, classes)]
    for variant in ("o2c_ct1", "ocsupcon_ct1"):
        rows.append(_per_class_row(MODEL_NAMES[variant], *TEMPERATURES[variant], REPORTED_LABEL, REPORTED_TABLE2[variant], classes))
        if variant in per_class:
            rows.append(_per_class_row(MODEL_NAMES[variant], *TEMPERATURES[variant], label, _values(per_class[variant], classes), classes))
    return pd.DataFrame(rows)


def to_markdown(df: pd.DataFrame, *, digits: int = 3) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""
    def cell(v):
        if v is None or (isinstance(v, float) and pd.isna(v)):
            return ""
        return f"{v:.{digits}f}" if isinstance(v, float) else str(v)

    header = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


def write_table(df: pd.DataFrame, stem: str | Path, *, title: str = "") -> None:
    """Write `<stem>.csv` and `<stem>.md` atomically."""
    stem = Path(stem)
    atomic_write_text(stem.with_suffix(".csv"), df.to_csv(index=False))
    atomic_write_text(stem.with_suffix(".md"), (f"# {title}\n\n" if title else "") + to_markdown(df))


def write_json(path: str | Path, obj: dict) -> None:
    """Write a JSON file atomically, full float precision."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def _ci(m: dict) -> str:
    low, high = m.get("fad_mean_ci_low"), m.get("fad_mean_ci_high")
    return "" if low is None or high is None else f"[{low:.3f}, {high:.3f}]"


def _values(series: pd.Series, classes: list[str]) -> list[float]:
    vals = [float(series[c]) for c in classes]
    return vals + [sum(vals) / len(vals)]


def _per_class_row(method, dt, ct, source, values, classes) -> dict:
    row = {"method": method, "DT": dt, "CT": ct, "numbers": source}
    row.update({c: v for c, v in zip([*classes, "Average"], values)})
    return row


def d_loss_tail(log: pd.DataFrame, *, column: str = "d_adv", fraction: float = 0.2) -> float:
    """Mean of a log column over the last `fraction` of the steps (how far D's loss has fallen)."""
    n = max(1, int(round(len(log) * fraction)))
    return float(log[column].iloc[-n:].mean())


def claims(metrics: dict[str, dict], logs: dict[str, pd.DataFrame], *, label: str) -> pd.DataFrame:
    """The paper's claims, each checked against this run's numbers.

    Every row holds the claim, what the paper reports, what this run measured and whether this run
    reproduces it ("yes", "no" or "not testable here"), computed from `metrics` (evaluation) and `logs`
    (training logs); nothing in the verdict is typed by hand.
    """
    rows = []

    def fad(v):
        return metrics[v]["fad_mean"] if v in metrics else None

    for ocv, base in (("o2c", "contragan"), ("ocsupcon", "csupcongan")):
        if fad(ocv) is not None and fad(base) is not None:
            rows.append({
                "claim": f"OCC lowers FAD: {MODEL_NAMES[ocv]} < {MODEL_NAMES[base]} (Table 1)",
                "paper": f"{REPORTED_TABLE1[ocv]:.3f} < {REPORTED_TABLE1[base]:.3f}",
                label: f"{fad(ocv):.3f} vs {fad(base):.3f}",
                "reproduced": "yes" if fad(ocv) < fad(base) else "no",
            })
    for ct1, ct01 in (("o2c_ct1", "o2c"), ("ocsupcon_ct1", "ocsupcon")):
        if fad(ct1) is not None and fad(ct01) is not None:
            rows.append({
                "claim": f"tau_c 1.0 beats 0.1 on average: {MODEL_NAMES[ct1]} < {MODEL_NAMES[ct01]} (Table 2)",
                "paper": f"{REPORTED_TABLE2[ct1][-1]:.3f} < {REPORTED_TABLE2[ct01][-1]:.3f}",
                label: f"{fad(ct1):.3f} vs {fad(ct01):.3f}",
                "reproduced": "yes" if fad(ct1) < fad(ct01) else "no",
            })
    rows.append({
        "claim": "O2C-GAN and OC-SupConGAN (CT 1.0) beat the DCASE baseline (Table 3)",
        "paper": f"{REPORTED_TABLE2['o2c_ct1'][-1]:.3f}, {REPORTED_TABLE2['ocsupcon_ct1'][-1]:.3f} < {REPORTED_BASELINE[-1]:.3f}",
        label: "the baseline (VQ-VAE + PixelSNAIL) is not trained here; its reported numbers are shown for reference",
        "reproduced": "not testable here",
    })
    for ocv, base in (("o2c", "contragan"), ("ocsupcon", "csupcongan")):
        if ocv in logs and base in logs:
            a, b = d_loss_tail(logs[ocv]), d_loss_tail(logs[base])
            rows.append({
                "claim": f"without OCC D's adversarial loss falls further: {MODEL_NAMES[base]} below {MODEL_NAMES[ocv]} "
                         "(mean D hinge loss, last 20 % of steps)",
                "paper": "observed (Section 4), no number reported",
                label: f"{b:.3f} vs {a:.3f}",
                "reproduced": "yes" if b < a else "no",
            })
    for ocv, base in (("o2c", "contragan"), ("ocsupcon", "csupcongan")):
        if ocv in metrics and base in metrics and "recall_mean" in metrics[ocv]:
            a, b = metrics[ocv]["recall_mean"], metrics[base]["recall_mean"]
            rows.append({
                "claim": f"OCC makes samples more diverse: recall {MODEL_NAMES[ocv]} > {MODEL_NAMES[base]} (beyond the paper)",
                "paper": "claimed qualitatively (Figure 2), no number reported",
                label: f"{a:.3f} vs {b:.3f}",
                "reproduced": "yes" if a > b else "no",
            })
    for v, m in metrics.items():
        rows.append({
            "claim": f"training is real: {MODEL_NAMES.get(v, v)} FAD at most half its step-0 FAD",
            "paper": "(pipeline check)",
            label: f"{m['fad_mean']:.3f} vs {m['fad_mean_step0']:.3f} at step 0",
            "reproduced": "yes" if m["fad_mean"] <= 0.5 * m["fad_mean_step0"] else "no",
        })
    return pd.DataFrame(rows)


def results_readme(verdicts: pd.DataFrame, t1: pd.DataFrame, *, label: str, params) -> str:
    """`results/README.md`: what this run is, Table 1, and the claims with their verdicts, in plain words."""
    yes = int((verdicts["reproduced"] == "yes").sum())
    no = int((verdicts["reproduced"] == "no").sum())
    lines = [
        "# Results of the last `dvc repro`",
        "",
        "Everything in this folder is written by the pipeline (`dvc repro`); nothing is edited by hand.",
        f"Run: profile `{params.profile}`, data `{params.data.source}` ({params.data.layout} layout), "
        f"{params.train.steps} GAN steps per variant at batch {params.train.batch_size}, "
        f"generator width {params.model.g_ch}, discriminator width {params.model.d_ch}, "
        f"{params.eval.clips_per_class} generated clips per class, vocoder `{params.eval.vocoder}`, "
        f"FAD embedding `{params.eval.embedding}`.",
        "",
        f"The paper's numbers are FAD on the DCASE 2023 evaluation set with VGGish; this run's column is {label}. "
        "Absolute values are not comparable between the two; the orderings are what a reproduction can test.",
        "",
        "## Table 1",
        "",
        to_markdown(t1),
        f"## The paper's claims against this run ({yes} reproduced, {no} not reproduced)",
        "",
        to_markdown(verdicts),
        "Tables: `tables/table1.md`, `tables/table2.md`, `tables/table3.md` (CSV beside them). "
        "Figures: `figures/figure1_push_pull.png`, `figures/figure2_tsne.png`, "
        "`figures/d_loss_with_without_occ.png`. Per-variant metrics: `evaluate/<variant>/metrics.json`.",
        "",
    ]
    return "\n".join(lines)
