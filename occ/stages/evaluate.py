"""The step-0 and evaluate stages as calls (``04_step0``, ``05_evaluate``), as training has its stages:
:func:`step0_stage` measures a seed's untrained generator, :func:`evaluate_stage` a trained run, the same way.

Each sets the process's torch threads to the count its stage declares (``occ.registry.stage_threads``, the table ``occ
repro`` reads too), loads what it needs from the project's folders, writes the stage's files (``runs/generated/``,
``results/step0/``, ``results/evaluate/``, the figure ``generated.png`` included) and returns what the notebook shows.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from occ.atomic import write_csv, write_json
from occ.config import Params, clip_settings
from occ.data import datasets
from occ.device import resolve_device, use_threads
from occ.metrics import confusion, d_embeddings, embedding_files, embeddings, evaluate
from occ.metrics.probe import load_probe
from occ.metrics.run_settings import run_settings_of
from occ.nets import models
from occ.paths import Layout
from occ.registry import stage_threads
from occ.report.display import SavedFigure, save_figure
from occ.report.plots import plot_generated_vs_real

__all__ = ["EvaluateStage", "step0_stage", "evaluate_stage"]

GENERATED_CAPTION = ("Each class's generated clips (left four) should have the shape, level and variety of its real "
                     "clips (right four), and the rows should differ from each other.")


@dataclass
class EvaluateStage:
    """What the evaluate stage measured and its notebook shows.

    Attributes
    ----------
    result : occ.metrics.evaluate.GeneratorEval
        The trained generator's clips and measures.
    fad : pandas.DataFrame
        Per class: FAD, diversity and the probe, beside step 0's (``fad.csv``).
    metrics : dict
        ``metrics.json``.
    probe_confusion : pandas.DataFrame
        Clips per (class asked for, class the probe recognises) (``probe_confusion.csv``).
    class_names : list of str
    generated : SavedFigure
        Each class's generated log-mels beside real ones (``generated.png``).
    """

    result: Any
    fad: pd.DataFrame
    metrics: dict
    probe_confusion: pd.DataFrame
    class_names: list
    generated: SavedFigure


def step0_stage(layout: Layout, params: Params, *, seed: int) -> pd.DataFrame:
    """The step-0 stage of ``seed``: the untrained generator every variant trained from ``seed`` starts from,
    measured exactly as a trained one (:func:`evaluate_stage`). Writes ``results/step0/seed<k>/`` (``fad.csv``,
    ``metrics.json``) and returns the table of ``fad.csv``."""
    params.check_seed(seed)
    use_threads(stage_threads(params, "step0"))
    device = resolve_device(params.device)
    out = layout.results("step0", None, seed)
    class_names = datasets.load_feature_cache(layout.data(params.data.cache)).class_names
    settings = _evaluation(layout, params, class_names=class_names, device=device)
    t0 = time.perf_counter()
    generator0 = models.initial_generator(params.model, n_classes=len(class_names), seed=seed).eval()
    step0 = evaluate.evaluate_generator(generator0, n_bootstrap=0, **settings)
    table = step0.table(probe=True)
    write_csv(out / "fad.csv", table)
    write_json(out / "metrics.json", {"seed": seed, **evaluate.step0_metrics(step0),
                                      "seconds_evaluation": time.perf_counter() - t0,
                                      "threads": stage_threads(params, "step0")})
    return table


def evaluate_stage(layout: Layout, params: Params, *, variant: str, seed: int) -> EvaluateStage:
    """The evaluate stage of one run (``variant``, ``seed``).

    The run's generator makes ``eval.clips_per_class`` clips per class (the same latents for every run), written in
    the DCASE layout to ``runs/generated/<variant>/seed<k>/``; FAD, diversity, the probe and the encoder measure
    them; D's within-class spread of their embeddings is claim C4's number. Step 0 is the seed's shared step-0
    results when the run started from that generator, else measured here. Writes
    ``results/evaluate/<variant>/seed<k>/`` (``fad.csv``, ``metrics.json`` with what made the run, read from its
    checkpoint, and ``probe_confusion.csv``).
    """
    params.check_seed(seed)
    threads = use_threads(stage_threads(params, "evaluate"))
    device = resolve_device(params.device)
    out, run_dir = layout.results("evaluate", variant, seed), layout.train_run(variant, seed)
    generator, payload = models.load_generator(run_dir / "checkpoint.pt", device=device)
    discriminator, _ = models.load_discriminator(run_dir / "checkpoint.pt", device=device)
    generator0, _ = models.load_generator(run_dir / "step0.pt", device=device)
    class_names = payload["class_names"]
    settings = _evaluation(layout, params, class_names=class_names, device=device)
    # the trained generator, and D's spread of its clips
    t0 = time.perf_counter()
    result = evaluate.evaluate_generator(generator, n_bootstrap=params.eval.n_bootstrap,
                                         wav_dir=layout.generated(variant, seed), **settings)
    seconds = time.perf_counter() - t0
    spread = d_embeddings.within_class_distance(discriminator, result.mels, result.labels, device=device)
    # step 0: the seed's shared results, or this run folder's own untrained generator (another architecture)
    initial = models.initial_generator(params.model, n_classes=len(class_names), seed=seed)
    shared_step0 = evaluate.same_weights(generator0, initial)
    if shared_step0:
        step0_table = pd.read_csv(layout.results("step0", None, seed) / "fad.csv", index_col="class")
        step0_metrics = json.loads((layout.results("step0", None, seed) / "metrics.json").read_text())
    else:
        step0 = evaluate.evaluate_generator(generator0, n_bootstrap=0, **settings)
        step0_table, step0_metrics = step0.table(probe=True), evaluate.step0_metrics(step0)
    # the files
    table = result.table(probe=True)
    fad = table.join(step0_table[["fad", "probe"]].rename(columns={"fad": "fad_step0", "probe": "probe_step0"}))
    write_csv(out / "fad.csv", fad)
    metrics = evaluate.metrics_of(result.table(), step0_table, accuracy=result.accuracy,
                                  step0_accuracy=step0_metrics["encoder_accuracy"],
                                  probe=float(result.probe["Average"]), step0_probe=step0_metrics["probe_accuracy"],
                                  fad_label_free=result.fad_label_free,
                                  step0_fad_label_free=step0_metrics["fad_label_free"],
                                  extra={"variant": variant, "seed": int(seed), "step": int(payload["step"]),
                                         "n_classes": len(class_names), "d_within_class_distance": spread,
                                         "probe_chance": settings["probe"].chance, "seconds_evaluation": seconds,
                                         "step0_shared": shared_step0, "threads": threads,
                                         "train_threads": payload["train"].get("threads"),
                                         **run_settings_of(payload["train"])})
    probe_confusion = confusion.probe_confusion(settings["probe"], result.embeddings)
    metrics.update(confusion.confusion_metrics(probe_confusion))
    write_csv(out / "probe_confusion.csv", probe_confusion)
    write_json(out / "metrics.json", metrics)
    held = datasets.load_feature_cache(layout.data(params.data.cache)).heldout()
    fig = plot_generated_vs_real(result.mels.numpy(), result.labels.numpy(), held.mels.numpy(), held.labels.numpy(),
                                 class_names, per_class=4, title=f"{variant}, seed {seed}: generated (left) and real (right)")
    generated = save_figure(fig, out / "generated.png", dpi=75, caption=GENERATED_CAPTION)
    return EvaluateStage(result, fad, metrics, probe_confusion, class_names, generated)


def _evaluation(layout: Layout, params: Params, *, class_names: list, device: torch.device) -> dict:
    """What every generator of a project is measured with (``evaluate_generator``'s settings): the embedder and the
    encoder, the reference stage's embeddings and probe, ``eval``'s clips and diversity settings, and how the clips
    are made (:func:`occ.config.clip_settings`: base seed, vocoder, Griffin-Lim iterations; ``occ generate``'s
    defaults)."""
    ev, clips = params.eval, clip_settings(params, layout.root)
    embedder, encoder = embeddings.eval_embedder(ev.embedding, vggish_weights=ev.vggish_weights,
                                                 encoder=layout.supcon_run / "encoder.pt", device=device)
    return dict(class_names=class_names, n_per_class=ev.clips_per_class, base_seed=clips["seed"], embedder=embedder,
                reference=embedding_files.load_embeddings(layout.reference / "embeddings.npz"),
                vocoder=clips["vocoder"], gl_iters=clips["gl_iters"], prdc_k=ev.prdc_k, encoder=encoder,
                probe=load_probe(layout.reference / "probe.npz"), device=device)
