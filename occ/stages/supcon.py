"""The supcon stage as a call (:func:`supcon_stage`): the encoder f pretrained with SupCon and fine-tuned for
classification (``occ.train.supcon_train``), its training log, loss curves and accuracies in ``results/supcon/``."""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd
import torch

from occ.atomic import write_csv, write_json
from occ.config import Params
from occ.data import datasets
from occ.device import resolve_device
from occ.nets import models
from occ.nets.encoder import classification_accuracy
from occ.paths import Layout
from occ.registry import stage_threads
from occ.report.display import SavedFigure, save_figure
from occ.report.plots import plot_loss_curves
from occ.train.supcon_train import EncoderRun, supcon_for_stage

__all__ = ["SupConStage", "supcon_stage"]

LOSSES_CAPTION = ("Both losses should fall: SupCon over pretraining, then the cross-entropy of the "
                  "fine-tuned classifier towards 0 (the paper reaches 100 % training accuracy).")


class SupConStage(NamedTuple):
    """What the supcon stage shows: the pretraining and the fine-tuning, the device they ran on, the loss curves and
    the stage's metrics (``metrics.json``: the encoder's accuracies, steps and threads)."""

    pre: EncoderRun
    fine: EncoderRun
    device: torch.device
    losses: SavedFigure
    metrics: dict


def supcon_stage(layout: Layout, params: Params) -> SupConStage:
    """The supcon stage: the call of ``notebooks/02_supcon.ipynb``.

    Trains f on the feature cache (:func:`occ.train.supcon_train.supcon_for_stage`, on ``supcon.threads`` threads:
    what ``occ supcon`` trains), then writes ``results/supcon/``: ``log.csv`` (both phases' logs, ``phase`` naming
    each), ``losses.png`` and ``metrics.json`` (f's classification accuracy on the training and held-out clips).
    """
    out = layout.results("supcon")
    device = resolve_device(params.device)
    cache = datasets.load_feature_cache(layout.data(params.data.cache))
    pre, fine = supcon_for_stage(layout, params, cache)
    pre_log, fine_log = pre.log(), fine.log()  # each run folder's log, read once
    log = pd.concat([pre_log.assign(phase="supcon"), fine_log.assign(phase="finetune")], ignore_index=True)
    write_csv(out / "log.csv", log, index=False)
    losses = save_figure(plot_loss_curves({"SupCon pretraining": pre_log,
                                           "classifier fine-tuning (cross-entropy)": fine_log},
                                          column="loss", smooth=10, title="Encoder training losses"),
                         out / "losses.png", caption=LOSSES_CAPTION)
    train, heldout = cache.train(), cache.heldout()
    x_train, x_heldout = datasets.normalize_mel(train.mels), datasets.normalize_mel(heldout.mels)
    encoder = models.load_encoder(layout.supcon_run / "encoder.pt", device=device)
    metrics = {
        "train_accuracy": classification_accuracy(encoder, x_train, train.labels, device=device),
        "heldout_accuracy": classification_accuracy(encoder, x_heldout, heldout.labels, device=device),
        "supcon_steps": params.supcon.steps, "finetune_steps": params.supcon.finetune_steps,
        "threads": stage_threads(params, "supcon"),
    }
    write_json(out / "metrics.json", metrics)
    return SupConStage(pre, fine, device, losses, metrics)
