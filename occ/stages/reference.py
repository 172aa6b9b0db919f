"""The reference stage as one call (``04_reference``), as training has its stages: :func:`reference_stage`.

It sets the process's torch threads to the count the stage declares (``occ.registry.stage_threads``, the table ``occ
repro`` reads too), embeds the FAD reference set, fits the recognisability probe and reads its ceiling, measures the
vocoders, writes the stage's files (``runs/reference/``, ``results/reference/``) and returns what the notebook shows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from occ.atomic import write_csv, write_json
from occ.config import Params, check_eval_fits, clip_settings
from occ.data import audio, datasets
from occ.device import resolve_device, use_threads
from occ.metrics import embedding_files, embeddings
from occ.metrics.probe import LinearProbe, fit_probe
from occ.paths import Layout
from occ.registry import stage_threads
from occ.synthesis import vocoder

__all__ = ["ReferenceStage", "reference_stage"]


@dataclass
class ReferenceStage:
    """What the reference stage made and its notebook shows.

    Attributes
    ----------
    reference : dict
        class -> embeddings of the held-out clips (the FAD reference set, ``runs/reference/embeddings.npz``).
    probe : LinearProbe
        The recognisability probe (``runs/reference/probe.npz``).
    n_training : int
        Training clips the probe was fitted on.
    ceiling : pandas.DataFrame
        The probe's accuracy per class on the held-out clips, raw and through the vocoder (``probe_ceiling.csv``).
    l1 : pandas.DataFrame
        The vocoders' re-synthesis L1 (``vocoder_l1.csv``).
    wavs : numpy.ndarray
        The held-out clips the L1 was measured on.
    device : torch.device
    """

    reference: dict
    probe: LinearProbe
    n_training: int
    ceiling: pd.DataFrame
    l1: pd.DataFrame
    wavs: np.ndarray
    device: torch.device


def reference_stage(layout: Layout, params: Params) -> ReferenceStage:
    """The reference stage: the FAD reference set, the recognisability probe and its ceiling, the vocoders' L1.

    Embeds the held-out clips of the feature cache with ``eval.embedding``; fits the probe on the embeddings of the
    training clips (the first ``eval.probe_clips_per_class`` of each class, or all); reads its accuracy on the
    held-out clips, raw and through log-mel and the evaluation's vocoder (``eval.vocoder``,
    :func:`occ.config.clip_settings`; as many per class as an evaluation generates, at
    most the held-out clips of the class); measures both vocoders' re-synthesis L1 on ``eval.l1_clips`` held-out
    clips. ``eval.l1_clips`` beyond the held-out clips, or ``eval.probe_clips_per_class`` beyond the training clips
    of a class, is a :class:`~occ.errors.ConfigError` naming both numbers (:func:`occ.config.check_eval_fits`),
    raised before any clip is embedded. Writes ``runs/reference/``
    (``embeddings.npz``, ``probe.npz``) and ``results/reference/`` (``probe_ceiling.csv``, ``vocoder_l1.csv``,
    ``metrics.json``).
    """
    use_threads(stage_threads(params, "reference"))
    device = resolve_device(params.device)
    out, ev = layout.results("reference"), params.eval
    cache = datasets.load_feature_cache(layout.data(params.data.cache))
    held, train_part = cache.heldout(), cache.train()
    check_eval_fits(ev, heldout=len(held), fewest_training=min(train_part.class_counts().values()),
                    cache=params.data.cache)  # before minutes of embedding
    embedder, _ = embeddings.eval_embedder(ev.embedding, vggish_weights=ev.vggish_weights,
                                           encoder=layout.supcon_run / "encoder.pt", device=device)
    # the FAD reference set: the held-out clips' embeddings
    t0 = time.perf_counter()
    reference = embeddings.reference_embeddings(cache, embedder=embedder)
    embedding_files.save_embeddings(layout.reference / "embeddings.npz", reference)
    seconds_reference = time.perf_counter() - t0
    # the probe, fitted on training clips, and its ceiling on held-out clips (raw, and the path generated clips take)
    t0 = time.perf_counter()
    if ev.probe_clips_per_class:  # the first clips of each class (a fixed, seed-free choice)
        train_part = train_part.first_per_class(ev.probe_clips_per_class)
    training = embeddings.embed_clips(train_part, embedder=embedder)
    probe = fit_probe(training)
    probe.save(layout.reference / "probe.npz")
    clips = clip_settings(params, layout.root)  # the vocoder and iterations the evaluation makes clips with
    vocoded = embeddings.embed_clips(held.first_per_class(ev.clips_per_class), embedder=embedder, what="held-out",
                                     through_vocoder={"vocoder": clips["vocoder"], "gl_iters": clips["gl_iters"]})
    ceiling = pd.DataFrame({"held-out clips": probe.accuracy(reference),
                            f"held-out clips via log-mel + {ev.vocoder}": probe.accuracy(vocoded)})
    ceiling.index.name = "class"
    write_csv(out / "probe_ceiling.csv", ceiling)
    seconds_probe = time.perf_counter() - t0
    # the vocoders: mel -> waveform -> mel on held-out clips
    pick = datasets.spread_over_classes(held.labels.numpy(), ev.l1_clips)
    wavs = np.stack([audio.load_clip(layout.data(held.root) / held.files[i]) for i in pick])
    rows = []
    for name, method, kwargs in [("HiFi-GAN V1 (universal checkpoint)", "hifigan", {}),
                                 (f"Griffin-Lim ({ev.gl_iters} iterations)", "griffinlim", {"n_iter": ev.gl_iters})]:
        t0 = time.perf_counter()
        l1 = vocoder.resynthesis_l1(wavs, method=method, device=device, **kwargs)
        rows.append({"vocoder": name, "log-mel L1": l1, "seconds per clip": (time.perf_counter() - t0) / len(wavs),
                     "clips": len(wavs)})
    l1_table = pd.DataFrame(rows)
    write_csv(out / "vocoder_l1.csv", l1_table, index=False)
    n_training = int(sum(len(e) for e in training.values()))
    write_json(out / "metrics.json", {
        "embedding": ev.embedding, "reference_clips": int(sum(len(e) for e in reference.values())),
        "seconds_reference_embedding": seconds_reference, "seconds_probe": seconds_probe,
        "probe_training_clips": n_training, "probe_chance": probe.chance,
        "probe_accuracy_heldout": float(ceiling.iloc[:, 0]["Average"]),
        "probe_accuracy_heldout_vocoded": float(ceiling.iloc[:, 1]["Average"]),
        "l1_hifigan": float(l1_table["log-mel L1"].iloc[0]), "l1_griffinlim": float(l1_table["log-mel L1"].iloc[1]),
    })
    return ReferenceStage(reference, probe, n_training, ceiling, l1_table, wavs, device)
