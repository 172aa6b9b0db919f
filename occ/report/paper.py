"""The paper's models under this project's variant names, and the numbers the paper reports.

Reported numbers are FAD on the DCASE 2023 Task 7 evaluation set with VGGish embeddings (Tables 1-3 of the
paper); this run's numbers come from whatever dataset and embedding the run used, so every table labels the two
apart (`REPORTED_LABEL`, `occ.report.results.this_run_label`).
"""

from __future__ import annotations

from typing import Iterable

__all__ = ["REPORTED_LABEL", "REPORTED_TABLE1", "REPORTED_TABLE2", "REPORTED_BASELINE", "MODEL_NAMES",
           "TEMPERATURES", "VARIANT_ORDER", "CLASS_BLIND", "in_variant_order"]

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

MODEL_NAMES = {
    "contragan": "ContraGAN (2C)",
    "csupcongan": "C-SupConGAN (C-SupCon)",
    "o2c": "O2C-GAN",
    "o2c_ct1": "O2C-GAN, CT 1.0",
    "ocsupcon": "OC-SupConGAN",
    "ocsupcon_ct1": "OC-SupConGAN, CT 1.0",
    "hinge_only": "hinge only (control, no contrastive term)",
}
# (tau_d, tau_c) of each variant: the DT and CT columns of Tables 2 and 3.
TEMPERATURES = {
    "contragan": (0.1, 0.1), "csupcongan": (0.1, 0.1), "o2c": (0.1, 0.1), "o2c_ct1": (0.1, 1.0),
    "ocsupcon": (0.1, 0.1), "ocsupcon_ct1": (0.1, 1.0), "hinge_only": (None, None),
}
VARIANT_ORDER = ("contragan", "csupcongan", "o2c", "o2c_ct1", "ocsupcon", "ocsupcon_ct1", "hinge_only")
# Variants whose losses never see the class: their clips are expected to be recognised at chance.
CLASS_BLIND = ("hinge_only",)


def in_variant_order(variants: Iterable[str]) -> list[str]:
    """The variants in `VARIANT_ORDER`, then any others in their own order (rows of the checks and the figures)."""
    variants = list(variants)
    return [v for v in VARIANT_ORDER if v in variants] + [v for v in variants if v not in VARIANT_ORDER]
