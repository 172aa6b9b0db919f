"""The paper's models under this project's variant names, the numbers the paper reports, and a run's model name.

Reported numbers are FAD on the DCASE 2023 Task 7 evaluation set with VGGish embeddings (Tables 1-3 of the
paper); this run's numbers come from whatever dataset and embedding the run used, so every table labels the two
apart (`REPORTED_LABEL`, `occ.report.results.this_run_label`).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

__all__ = ["REPORTED_LABEL", "REPORTED_TABLE1", "REPORTED_TABLE2", "REPORTED_BASELINE", "LOSS_MODELS", "PAPER_SOURCE",
           "PAPER_D_PROJECTION", "PROJECTION_CGAN", "PAPER_RUNS", "TABLE1_TEMPERATURES", "VARIANT_ORDER",
           "CLASS_BLIND_LOSSES", "TABLE1_VARIANTS", "TABLE2_VARIANTS", "TABLE3_VARIANTS", "OCC_PAIRS", "CT_PAIRS",
           "CONTROL_VARIANTS",
           "in_variant_order", "is_class_blind", "model_name", "d_reading", "settings_text",
           "departs_from_paper"]

REPORTED_LABEL = "reported (DCASE eval set, VGGish)"

# Table 1 (tau_d = tau_c = 0.1): mean FAD over the 7 classes.
REPORTED_TABLE1 = {"contragan": 12.667, "csupcongan": 12.552, "o2c": 5.480, "ocsupcon": 5.230}

# Table 2: per-class FAD (the classes of `occ.data.classes.DCASE_CLASSES`, then the average); keys are this
# project's variant names (DT 0.1; CT 0.1 or 1.0).
REPORTED_TABLE2 = {
    "o2c": [2.784, 4.370, 4.667, 3.555, 17.511, 3.899, 1.577, 5.480],
    "o2c_ct1": [3.348, 3.990, 3.495, 4.074, 14.861, 3.529, 1.865, 5.023],
    "ocsupcon": [2.616, 3.739, 6.322, 4.089, 14.172, 4.304, 1.371, 5.230],
    "ocsupcon_ct1": [4.854, 3.103, 4.790, 3.665, 13.604, 3.727, 1.435, 5.026],
}

# Table 3: the official DCASE baseline (VQ-VAE + PixelSNAIL), per class and average.
REPORTED_BASELINE = [13.412, 8.108, 7.952, 5.230, 16.107, 13.338, 3.771, 9.702]

#: The paper's name of the model each contrastive loss makes (``train.loss``; "none": this project's control).
LOSS_MODELS = {
    "2c": "ContraGAN (2C)",
    "csupcon": "C-SupConGAN (C-SupCon)",
    "o2c": "O2C-GAN",
    "ocsupcon": "OC-SupConGAN",
    "none": "hinge only (control, no contrastive term)",
}
#: The name of a run without contrastive term whose D reads the label (loss "none", ``d_projection`` true).
PROJECTION_CGAN = "projection cGAN (control: label in D, no contrastive term)"
#: What the paper ran for each of its numbers, under this project's variant names: the loss and the temperatures
#: tau_d (DT) and tau_c (CT), 0.1 and 0.1 throughout (Table 1, Section 4, Figure 2) but for the CT 1.0 rows of Tables 2
#: and 3. They label the paper's numbers and say what the paper compared; this run's numbers are labelled by what
#: each run recorded (``metrics.json``: `occ.report.results.variant_settings`).
#: The reading of the source term of generated clips (``train.d2s_source``) the paper's text favours: f of the real
#: clip that shares the generated sample's index and class (docs/reference.md section 6). A SupCon run's name says
#: its reading only where it departs from this one.
PAPER_SOURCE = "paired_real"
#: Whether D reads the label (``train.d_projection``, the projection term in D2) in the reading of Eq. (1) the
#: paper's text favours: ``D(x_i, c_i)``, "using label information" (Section 2.1). A run's name says its D reading
#: only where it departs from this one.
PAPER_D_PROJECTION = True
PAPER_RUNS = {
    "contragan": {"loss": "2c", "tau_d": 0.1, "tau_c": 0.1, "d_projection": PAPER_D_PROJECTION},
    "csupcongan": {"loss": "csupcon", "tau_d": 0.1, "tau_c": 0.1, "d_projection": PAPER_D_PROJECTION,
                   "d2s_source": PAPER_SOURCE},
    "o2c": {"loss": "o2c", "tau_d": 0.1, "tau_c": 0.1, "d_projection": PAPER_D_PROJECTION},
    "o2c_ct1": {"loss": "o2c", "tau_d": 0.1, "tau_c": 1.0, "d_projection": PAPER_D_PROJECTION},
    "ocsupcon": {"loss": "ocsupcon", "tau_d": 0.1, "tau_c": 0.1, "d_projection": PAPER_D_PROJECTION,
                 "d2s_source": PAPER_SOURCE},
    "ocsupcon_ct1": {"loss": "ocsupcon", "tau_d": 0.1, "tau_c": 1.0, "d_projection": PAPER_D_PROJECTION,
                     "d2s_source": PAPER_SOURCE},
}
#: Table 1's temperatures (tau_d, tau_c): a model's name says where its run departs from them.
TABLE1_TEMPERATURES = (0.1, 0.1)
#: The models of each of the paper's tables, in its row order, under this project's variant names; derived from the
#: numbers it reports: Table 1 its four models, Table 2 the O2C-GAN and OC-SupConGAN rows at CT 0.1 and 1.0, Table 3
#: the CT 1.0 ones beside the DCASE baseline.
TABLE1_VARIANTS = tuple(REPORTED_TABLE1)
TABLE2_VARIANTS = tuple(REPORTED_TABLE2)
TABLE3_VARIANTS = tuple(v for v in REPORTED_TABLE2 if PAPER_RUNS[v]["tau_c"] == 1.0)
#: The paper's with / without OCC pairs, (without, with): each OCC loss beside the loss it changes (Table 1's pairs,
#: claims C1, C3 and C4, Figure 1's panels). Without OCC a figure draws dashed, with OCC solid (`occ_line_style`).
OCC_PAIRS = (("contragan", "o2c"), ("csupcongan", "ocsupcon"))
#: The paper's CT pairs, (CT 0.1, CT 1.0): each CT 1.0 model of Table 3 beside the Table 2 model of the same loss at
#: CT 0.1 (claim C2).
CT_PAIRS = tuple((next(b for b in TABLE2_VARIANTS if PAPER_RUNS[b]["loss"] == PAPER_RUNS[v]["loss"]
                       and PAPER_RUNS[b]["tau_c"] == TABLE1_TEMPERATURES[1]), v) for v in TABLE3_VARIANTS)
#: This project's controls (no contrastive term): beside the paper's models in Table 1 and the figures.
CONTROL_VARIANTS = ("hinge_only", "projection_cgan")
VARIANT_ORDER = ("contragan", "csupcongan", "o2c", "o2c_ct1", "ocsupcon", "ocsupcon_ct1", "hinge_only",
                 "projection_cgan")
#: Losses that never see the class. A run is class-blind (`is_class_blind`: its clips are expected to be recognised
#: at chance) when its loss is one of these and its D does not read the label either.
CLASS_BLIND_LOSSES = ("none",)


def in_variant_order(variants: Iterable[str]) -> list[str]:
    """The variants in `VARIANT_ORDER`, then any others in their own order (rows of the checks and the figures)."""
    variants = list(variants)
    return [v for v in VARIANT_ORDER if v in variants] + [v for v in variants if v not in VARIANT_ORDER]


def is_class_blind(settings: Mapping[str, Any]) -> bool:
    """Whether a run never sees the class: a loss of `CLASS_BLIND_LOSSES` and a D without the label (a run that
    recorded no ``d_projection`` predates it: D without the label)."""
    return settings["loss"] in CLASS_BLIND_LOSSES and not settings.get("d_projection", False)


def model_name(settings: Mapping[str, Any]) -> str:
    """The name of the model a run trained, from its settings: the paper's name of its loss (`LOSS_MODELS`), then
    each temperature that departs from Table 1's (``"O2C-GAN, CT 1.0"``), a D reading other than the one the paper's
    text favours (`PAPER_D_PROJECTION`: ``", D without label"``) and a source reading other than the one it favours
    (`PAPER_SOURCE`: ``", source generated"``). Without contrastive term (loss "none") a run is a control: hinge only
    where D ignores the label, the projection cGAN (`PROJECTION_CGAN`) where D reads it.

    Parameters
    ----------
    settings : mapping
        ``loss``, ``tau_d``, ``tau_c`` and optionally ``d_projection`` (absent: false, a run made before it was
        recorded) and ``d2s_source`` (a run's record, or `PAPER_RUNS`' entry).
    """
    loss = settings["loss"]
    projection = bool(settings.get("d_projection", False))
    if loss in CLASS_BLIND_LOSSES:
        return PROJECTION_CGAN if projection else LOSS_MODELS.get(loss, loss)
    name = LOSS_MODELS.get(loss, loss)
    for label, key, table1 in (("DT", "tau_d", TABLE1_TEMPERATURES[0]), ("CT", "tau_c", TABLE1_TEMPERATURES[1])):
        if settings[key] != table1:
            name += f", {label} {settings[key]!r}"
    if projection != PAPER_D_PROJECTION:
        name += ", D with label" if projection else ", D without label"
    if settings.get("d2s_source", PAPER_SOURCE) != PAPER_SOURCE:
        name += f", source {settings['d2s_source']}"
    return name


def d_reading(settings: Mapping[str, Any]) -> str:
    """A run's D reading in words: ``"label in D"`` or ``"D without label"`` (absent ``d_projection``: without)."""
    return "label in D" if settings.get("d_projection", False) else "D without label"


def settings_text(settings: Mapping[str, Any]) -> str:
    """A run's temperatures, D reading (and source reading) in words: ``"tau_d 0.1, tau_c 0.5, label in D"``."""
    text = f"tau_d {settings['tau_d']!r}, tau_c {settings['tau_c']!r}, {d_reading(settings)}"
    return text + (f", source {settings['d2s_source']}" if "d2s_source" in settings else "")


def departs_from_paper(variant: str, settings: Mapping[str, Any] | None) -> bool:
    """Whether a run's settings differ from what the paper ran under the same variant name (`PAPER_RUNS`; a run
    that recorded no ``d_projection`` had a D without the label)."""
    paper = PAPER_RUNS.get(variant)
    return bool(paper and settings) and any(settings.get(k, False if k == "d_projection" else None) != v
                                            for k, v in paper.items())
