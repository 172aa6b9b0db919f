"""Evaluating trained generators: generation, vocoding, the DCASE layout, embedding, FAD, diversity.

The steps DCASE 2023 Task 7 ran on a submission (docs/reference.md, section 4), on this project's models:
per-sample seeds (so clips do not depend on the batch size), natural-log mel -> waveform with the chosen
vocoder, 16-bit WAVs in the submission layout (checked as DCASE checked them), embeddings of every clip,
then per-class FAD against the held-out clips of the same class with a bootstrap interval. Beyond the
paper: precision / recall / density / coverage per class and the fine-tuned encoder's accuracy on the
generated clips (does each class still sound like itself?). Embeddings on disk: :mod:`occ.metrics.embedding_files`;
D's embedding space and its t-SNE (Figure 2): :mod:`occ.metrics.d_embeddings`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from occ.data.audio import load_clip, log_mel
from occ.data.datasets import FeatureCache, denormalize_mel, normalize_mel
from occ.metrics.diversity import prdc_per_class
from occ.metrics.embeddings import Embedder
from occ.errors import DataError
from occ.metrics.fad import fad_per_class
from occ.synthesis.generate import eval_seeds, generate_mels
from occ.synthesis.submission import check_submission, write_submission
from occ.synthesis.vocoder import vocode


@dataclass
class GeneratorEval:
    """What `evaluate_generator` measured.

    Attributes
    ----------
    fad : pandas.DataFrame
        Per-class FAD with the "Average" row (columns fad, n_clips, ci_low, ci_high).
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

    def table(self) -> pd.DataFrame:
        """Per-class FAD (with its interval) joined with precision / recall / density / coverage."""
        return self.fad.join(self.prdc, how="left")


def vocoder_method(vocoder: str) -> tuple[str, str | None]:
    """`eval.vocoder` -> (method, checkpoint): "griffinlim", "hifigan" (the universal V1) or a checkpoint path."""
    if vocoder == "griffinlim":
        return "griffinlim", None
    if vocoder == "hifigan":
        return "hifigan", None
    return "hifigan", vocoder


def reference_embeddings(cache: FeatureCache, *, embedder: Embedder, progress: bool = False) -> dict[str, np.ndarray]:
    """Embeddings of the held-out clips per class, from their audio files (the FAD reference set).

    Returns
    -------
    dict
        class name -> np.ndarray [shape=(n, W, D)].
    """
    return clip_embeddings(cache.heldout(), embedder=embedder, progress=progress, what="held-out")


def clip_embeddings(part: FeatureCache, *, embedder: Embedder, progress: bool = False, what: str = "training",
                    through_vocoder: dict | None = None) -> dict[str, np.ndarray]:
    """Embeddings of the clips of `part` (a subset of the feature cache) per class, from their audio files.

    Parameters
    ----------
    part : FeatureCache
        `cache.train()`, `cache.heldout()` or another subset.
    through_vocoder : dict, optional
        When given (``{"vocoder": ..., "gl_iters": ...}``), each clip is first turned into its log-mel and
        back into audio with that vocoder, the path generated clips take.

    Returns
    -------
    dict
        class name -> np.ndarray [shape=(n, W, D)].
    """
    root = Path(part.root)
    out = {}
    for c, name in enumerate(part.class_names):
        files = [root / f for f, y in zip(part.files, part.labels.tolist()) if y == c]
        if not files:
            raise DataError(f"class {name!r} has no {what} clips in the feature cache: rebuild it (the `data` stage).")
        wavs = np.stack([load_clip(f) for f in files])
        if through_vocoder is not None:
            method, checkpoint = vocoder_method(through_vocoder["vocoder"])
            mels = log_mel(torch.from_numpy(wavs))
            wavs = vocode(mels, method=method, vocoder=checkpoint, n_iter=through_vocoder.get("gl_iters", 32))
            wavs = np.asarray(wavs.cpu() if torch.is_tensor(wavs) else wavs, dtype=np.float32)
        out[name] = embedder.embed(wavs, progress=progress)
    return out


@torch.no_grad()
def standing_stats(generator: torch.nn.Module, *, n_batches: int = 16, batch_size: int = 64, seed: int = 0,
                   device: str | torch.device = "cpu") -> torch.nn.Module:
    """A copy of G whose BatchNorm running statistics are re-estimated from its own samples ("standing statistics").

    BigGAN's standing statistics: the running mean and variance of every BatchNorm layer are reset and
    accumulated as a plain average over `n_batches` batches of random latents and uniformly drawn classes,
    in train mode without gradients. Applied to every generator before evaluation (the step-0 generator
    too, whose statistics would otherwise be the initial 0 / 1, which no batch ever had), so that
    eval-mode samples are batch-independent and the comparison with step 0 measures training, not
    statistics. Deterministic for a seed.
    """
    g = copy.deepcopy(generator).to(device)
    norms = [m for m in g.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return g.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average over the calibration batches
    gen = torch.Generator().manual_seed(seed)
    g.train()
    for _ in range(n_batches):
        z = torch.randn(batch_size, g.z_dim, generator=gen)
        y = torch.randint(0, g.n_classes, (batch_size,), generator=gen)
        g(z.to(device), y.to(device))
    return g.eval()


def generate_clips(
    generator: torch.nn.Module,
    labels: torch.Tensor,
    seeds: torch.Tensor,
    *,
    base_seed: int,
    vocoder: str = "griffinlim",
    gl_iters: int = 32,
    device: str | torch.device = "cpu",
    progress: bool = False,
    precision: str = "auto",
) -> tuple[torch.Tensor, np.ndarray]:
    """Log-mels and waveforms of (class, seed) pairs, made exactly as the evaluation makes them.

    ``standing_stats(generator, seed=base_seed)``, then :func:`occ.synthesis.generate.generate_mels` (every forward
    pass of the same shape), ``denormalize_mel`` and :func:`occ.synthesis.vocoder.vocode`. A clip depends only on
    the weights, its class and seed, ``base_seed`` (through the standing statistics), the vocoder and the
    device: asking for one clip of an evaluation set gives the evaluation's clip.

    Parameters
    ----------
    generator : occ.nets.generator.Generator
        Left unchanged (the standing statistics are computed on a copy).
    labels, seeds : torch.Tensor [shape=(N,)]
        Class and latent seed of each clip (`occ.synthesis.generate.eval_seeds` gives the evaluation's).
    base_seed : int
        Seed of the standing statistics (the evaluation passes its ``base_seed``).
    vocoder : str
        `eval.vocoder`: "griffinlim", "hifigan" or a HiFi-GAN checkpoint path.
    gl_iters : int
        Griffin-Lim iterations.
    device : str or torch.device
    progress : bool
        Progress bars.
    precision : {"auto", "float32", "bfloat16"}
        HiFi-GAN arithmetic (`occ.synthesis.vocoder.vocode`); the evaluation uses "auto".

    Returns
    -------
    mels : torch.Tensor [shape=(N, 80, 344)]
        Natural-log mels, on the CPU.
    wavs : np.ndarray [shape=(N, 88200), float32]
    """
    generator = standing_stats(generator, seed=base_seed, device=device)
    mels = denormalize_mel(generate_mels(generator, labels, seeds, device=device, progress=progress)).cpu()
    method, checkpoint = vocoder_method(vocoder)
    wavs = vocode(mels, method=method, vocoder=checkpoint, n_iter=gl_iters, device=device, progress=progress,
                  precision=precision)
    wavs = np.asarray(wavs.cpu() if torch.is_tensor(wavs) else wavs, dtype=np.float32)
    return mels, wavs


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
        Evaluated in eval mode after `standing_stats`, so samples do not depend on the batch.
    class_names : list of str
        Classes in label order (the checkpoint's).
    n_per_class : int
        Clips per class (DCASE: 100).
    base_seed : int
        Seed offset of the per-sample seeds (`occ.synthesis.generate.eval_seeds`).
    embedder : Embedder
        `occ.metrics.embeddings.get_embedder(eval.embedding)`.
    reference : dict
        class -> reference embeddings (`reference_embeddings`).
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
    diversity = prdc_per_class(reference, emb, k=prdc_k)
    accuracy = None
    if encoder is not None:
        accuracy = encoder_accuracy(encoder, wavs, labels, device=device)
    probe_acc = probe.accuracy(emb) if probe is not None else None
    return GeneratorEval(fad=fad, prdc=diversity, accuracy=accuracy, mels=mels, labels=labels, wavs=wavs,
                         embeddings=emb, probe=probe_acc)


@torch.no_grad()
def encoder_accuracy(encoder: torch.nn.Module, wavs: np.ndarray, labels: torch.Tensor, *,
                     device: str | torch.device = "cpu", batch_size: int = 64) -> float:
    """Accuracy of the fine-tuned encoder's classifier on clips (mel of the audio, as for real clips)."""
    correct = 0
    for i in range(0, len(wavs), batch_size):
        x = normalize_mel(log_mel(torch.as_tensor(wavs[i:i + batch_size]).to(device)))[:, None]
        pred = encoder.classify(x).argmax(dim=1).cpu()
        correct += int((pred == labels[i:i + batch_size]).sum())
    return correct / len(wavs)


def metrics_of(table: pd.DataFrame, step0: pd.DataFrame, *, accuracy: float | None = None,
               step0_accuracy: float | None = None, probe: float | None = None, step0_probe: float | None = None,
               extra: dict | None = None) -> dict:
    """The flat metrics dict of one variant (`results/evaluate/<variant>/metrics.json`).

    Parameters
    ----------
    table, step0 : pandas.DataFrame
        `GeneratorEval.table()` of the trained generator and of the same generator at step 0.
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
    if probe is not None:
        m["probe_accuracy"] = float(probe)
    if step0_probe is not None:
        m["probe_accuracy_step0"] = float(step0_probe)
    m.update(extra or {})
    return m


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """Whether two modules hold bit-identical parameters and buffers."""
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k].cpu(), sb[k].cpu()) for k in sa)


def class_names_of(run_dir: str | Path) -> list[str]:
    """The class names stored in a training run's checkpoint."""
    from occ.checkpoint import load_checkpoint

    payload = load_checkpoint(Path(run_dir) / "checkpoint.pt", kind="gan")
    n = int(payload["n_classes"])
    return list(payload.get("class_names") or [f"class {i}" for i in range(n)])


def spread_over_classes(labels: np.ndarray | torch.Tensor, n: int) -> np.ndarray:
    """`n` indices taken round-robin over the classes (first clip of each class, then the second, ...)."""
    labels = np.asarray(labels)
    rank = np.empty(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rank[idx] = np.arange(len(idx))
    order = np.lexsort((labels, rank))
    return order[:n]
