"""Evaluating a generator: the assembly of generation (``occ.synthesis``) and the metrics of ``occ.metrics``.

The steps DCASE 2023 Task 7 ran on a submission (docs/reference.md, section 4), on this project's models:
per-sample seeds (so clips do not depend on the batch size), natural-log mel -> waveform with the chosen
vocoder (:func:`occ.synthesis.generate.generate_clips`), 16-bit WAVs in the submission layout (checked as
DCASE checked them, :mod:`occ.synthesis.submission`), embeddings of every clip
(:mod:`occ.metrics.embeddings`), then per-class FAD against the held-out clips of the same class with a
bootstrap interval (:mod:`occ.metrics.fad`). Beyond the paper: precision / recall / density / coverage per
class (:mod:`occ.metrics.diversity`), the recognisability probe and the fine-tuned encoder's accuracy on the
generated clips (:mod:`occ.metrics.probe`: does each class still sound like itself?).

Here: :func:`evaluate_generator` runs those steps on one generator; :func:`metrics_of` and
:func:`step0_metrics` are the numbers a run's and a seed's step-0 evaluation write; :func:`same_weights` tells
whether a run started from the seed's shared step-0 generator (then its evaluation reads the step-0 results
instead of measuring them again). Embeddings on disk: :mod:`occ.metrics.embedding_files`; D's embedding space
and its t-SNE (Figure 2): :mod:`occ.metrics.d_embeddings`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from occ.metrics.diversity import prdc_per_class
from occ.metrics.embeddings import Embedder
from occ.metrics.fad import fad_label_free, fad_per_class
from occ.metrics.probe import encoder_accuracy
from occ.synthesis.generate import eval_seeds, generate_clips
from occ.synthesis.submission import check_submission, write_submission


@dataclass
class GeneratorEval:
    """What `evaluate_generator` measured.

    Attributes
    ----------
    fad : pandas.DataFrame
        Per-class FAD with the "Average" row (columns fad, n_clips, ci_low, ci_high).
    fad_label_free : float
        The FAD of all clips against all reference clips, whatever their class (`occ.metrics.fad.fad_label_free`).
    prdc : pandas.DataFrame
        Per-class precision, recall, density, coverage (and their mean).
    accuracy : float or None
        The fine-tuned encoder's classification accuracy on the generated clips.
    probe : pandas.Series or None
        The recognisability probe's accuracy per class and "Average" (`occ.metrics.probe`), when a probe was given.
    mels : torch.Tensor [shape=(N, 80, 344)]
        Generated natural-log mels.
    labels : torch.Tensor [shape=(N,)]
    wavs : np.ndarray [shape=(N, 88200)]
    """

    fad: pd.DataFrame
    prdc: pd.DataFrame
    accuracy: float | None
    mels: torch.Tensor
    labels: torch.Tensor
    wavs: np.ndarray
    embeddings: dict[str, np.ndarray]
    probe: pd.Series | None = None
    fad_label_free: float = float("nan")

    def table(self, *, probe: bool = False) -> pd.DataFrame:
        """Per-class FAD (with its interval) joined with precision / recall / density / coverage.

        With ``probe=True`` also the probe's accuracy per class, column ``probe`` (the table a run's and a
        step-0 evaluation write to ``fad.csv``).
        """
        table = self.fad.join(self.prdc, how="left")
        return table.join(self.probe.rename("probe")) if probe else table


def evaluate_generator(
    generator: torch.nn.Module,
    *,
    class_names: list[str],
    n_per_class: int,
    base_seed: int,
    embedder: Embedder,
    reference: dict[str, np.ndarray],
    vocoder: str = "griffinlim",
    gl_iters: int = 32,
    n_bootstrap: int = 0,
    prdc_k: int = 5,
    encoder: torch.nn.Module | None = None,
    wav_dir: str | Path | None = None,
    probe=None,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> GeneratorEval:
    """Generate `n_per_class` clips per class and measure them against the reference embeddings.

    Parameters
    ----------
    generator : occ.nets.generator.Generator
        Evaluated in eval mode after `occ.synthesis.generate.standing_stats`, so samples do not depend on the batch.
    class_names : list of str
        Classes in label order (the checkpoint's).
    n_per_class : int
        Clips per class (DCASE: 100).
    base_seed : int
        Seed offset of the per-sample seeds (`occ.synthesis.generate.eval_seeds`).
    embedder : Embedder
        `occ.metrics.embeddings.get_embedder(eval.embedding)`.
    reference : dict
        class -> reference embeddings (`occ.metrics.embeddings.reference_embeddings`).
    vocoder : str
        `eval.vocoder`: "griffinlim", "hifigan" or a HiFi-GAN checkpoint path.
    wav_dir : path-like, optional
        Where to write the clips in the DCASE submission layout (checked after writing).
    probe : occ.metrics.probe.LinearProbe, optional
        The recognisability probe (fitted on the same embedding); its accuracy lands in `GeneratorEval.probe`.
    """
    labels, seeds = eval_seeds(n_per_class, len(class_names), base_seed=base_seed)
    mels, wavs = generate_clips(generator, labels, seeds, base_seed=base_seed, vocoder=vocoder, gl_iters=gl_iters,
                                device=device, progress=progress)
    lab = labels.numpy()
    by_class = {name: wavs[lab == c] for c, name in enumerate(class_names)}
    if wav_dir is not None:
        write_submission(wav_dir, by_class, n_per_class=n_per_class)
        check_submission(wav_dir, n_per_class=n_per_class, classes=class_names)
    emb = {name: embedder.embed(w, progress=progress) for name, w in by_class.items()}
    fad = fad_per_class(emb, reference, n_bootstrap=n_bootstrap, seed=base_seed)
    label_free = fad_label_free(emb, reference)
    diversity = prdc_per_class(reference, emb, k=prdc_k)
    accuracy = None
    if encoder is not None:
        accuracy = encoder_accuracy(encoder, wavs, labels, device=device)
    probe_acc = probe.accuracy(emb) if probe is not None else None
    return GeneratorEval(fad=fad, prdc=diversity, accuracy=accuracy, mels=mels, labels=labels, wavs=wavs,
                         embeddings=emb, probe=probe_acc, fad_label_free=label_free)


def metrics_of(table: pd.DataFrame, step0: pd.DataFrame, *, accuracy: float | None = None,
               step0_accuracy: float | None = None, probe: float | None = None, step0_probe: float | None = None,
               fad_label_free: float | None = None, step0_fad_label_free: float | None = None,
               extra: dict | None = None) -> dict:
    """The flat metrics dict of one variant (`results/evaluate/<variant>/metrics.json`).

    Parameters
    ----------
    table, step0 : pandas.DataFrame
        `GeneratorEval.table()` of the trained generator and of the same generator at step 0.
    fad_label_free, step0_fad_label_free : float, optional
        `GeneratorEval.fad_label_free` of both (keys ``fad_label_free``, ``fad_label_free_step0``).
    """
    avg = table.loc["Average"]
    m = {
        "fad_mean": float(avg["fad"]),
        "fad_mean_step0": float(step0.loc["Average", "fad"]),
        "n_clips_per_class": int(table.drop("Average")["n_clips"].iloc[0]),
    }
    if "ci_low" in table:
        m.update(fad_mean_ci_low=float(avg["ci_low"]), fad_mean_ci_high=float(avg["ci_high"]))
    for col in ("precision", "recall", "density", "coverage"):
        if col in table:
            m[f"{col}_mean"] = float(avg[col])
            m[f"{col}_mean_step0"] = float(step0.loc["Average", col])
    if accuracy is not None:
        m["encoder_accuracy_on_generated"] = accuracy
    if step0_accuracy is not None:
        m["encoder_accuracy_on_generated_step0"] = step0_accuracy
    if fad_label_free is not None:
        m["fad_label_free"] = float(fad_label_free)
    if step0_fad_label_free is not None:
        m["fad_label_free_step0"] = float(step0_fad_label_free)
    if probe is not None:
        m["probe_accuracy"] = float(probe)
    if step0_probe is not None:
        m["probe_accuracy_step0"] = float(step0_probe)
    m.update(extra or {})
    return m


def step0_metrics(step0: GeneratorEval) -> dict:
    """The numbers of a seed's step-0 evaluation that every run's evaluation compares with.

    ``results/step0/seed<k>/metrics.json`` holds them (with the seed and the time taken); a run whose step-0
    generator is not the seed's shared one measures its own and uses the same numbers.

    Returns
    -------
    dict
        ``fad_mean`` (the "Average" FAD), ``fad_label_free``, ``encoder_accuracy`` and ``probe_accuracy`` (the
        probe's "Average").
    """
    return {"fad_mean": float(step0.fad.loc["Average", "fad"]), "fad_label_free": step0.fad_label_free,
            "encoder_accuracy": step0.accuracy, "probe_accuracy": float(step0.probe["Average"])}


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """Whether two modules hold bit-identical parameters and buffers."""
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k].cpu(), sb[k].cpu()) for k in sa)
