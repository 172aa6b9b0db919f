"""What made a run, as its evaluation records it in ``metrics.json``: the tables, claims, checks and figures name
each model by these settings (``occ.report.results.variant_settings``), never by its variant's name alone."""

from __future__ import annotations

from collections.abc import Mapping

from occ.config import SUPCON_KINDS

__all__ = ["RUN_SETTINGS", "run_settings_of"]

#: The loss, its temperatures, whether D read the label (``d_projection``), and the source reading ``d2s_source``
#: where the loss has a source term (the SupCon kinds): the keys of a run's ``metrics.json`` that say what made it.
RUN_SETTINGS = ("loss", "tau_d", "tau_c", "d_projection", "d2s_source")


def run_settings_of(train: Mapping) -> dict:
    """What made a run (:data:`RUN_SETTINGS`), from the training configuration its checkpoint stores
    (``payload["train"]``): what trained it, whatever ``params.yaml`` says now."""
    out = {key: train[key] for key in RUN_SETTINGS if key not in ("d_projection", "d2s_source")}
    out["d_projection"] = bool(train.get("d_projection", False))  # a run made before the setting was recorded: False
    if "d2s_source" in train and train["loss"] in SUPCON_KINDS:
        out["d2s_source"] = train["d2s_source"]
    return out
