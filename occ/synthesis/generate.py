"""Generation: G -> log-mels -> audio, with per-sample seeds, as the evaluation and ``occ generate`` make clips.

As in NVlabs' EDM / StyleGAN3 (docs/reference.md, "Seeds and randomness"), every generated sample has its own seed: the latent
``z_i ~ N(0, I)`` of sample ``i`` is drawn from a ``torch.Generator`` seeded with ``seeds[i]`` on the
CPU, so a sample depends only on (generator weights, class, seed), not on the batch size, the order
of generation or the device. :func:`eval_seeds` gives each (class, index) pair a fixed seed, so the
``k``-th clip of a class is the same whether 10 or 100 clips per class are asked for (:func:`chosen_seeds`: those of
chosen classes and indices, as ``occ generate`` makes them). Every forward
pass of :func:`generate_mels` has the same shape (the last batch is padded), so a sample is the same
to the bit whichever other samples share its batch: CPU kernels are chosen by shape, and a batch of 5
can round differently from a batch of 64.

Before generating, the evaluation re-estimates G's BatchNorm statistics from its own samples
(:func:`standing_stats`); :func:`evaluation_mels` is that calibrated G's normalised log-mels (what D reads),
:func:`generate_clips` their natural-log mels and audio (what the vocoder, the submission and the embeddings
get). :func:`class_names_of` reads the class names a training run's generator was trained on.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from tqdm import tqdm  # the text bar: no notebook-widget import, no IProgress warning in a kernel

from occ.checkpoint import load_checkpoint
from occ.data.datasets import denormalize_mel
from occ.device import resolve_device
from occ.errors import ConfigError, DataError
from occ.synthesis.vocoder import vocode, vocoder_method

__all__ = ["SEED_STRIDE", "eval_seeds", "chosen_seeds", "latents", "generate_mels", "standing_stats", "evaluation_mels",
           "generate_clips", "class_names_of"]

#: Seeds of class ``c`` are ``base_seed + c * SEED_STRIDE + index``; at most this many clips per class.
SEED_STRIDE = 1_000_000


def eval_seeds(n_per_class: int, n_classes: int, *, base_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Classes and per-sample seeds of an evaluation set of ``n_per_class`` clips per class.

    Sample ``index`` of class ``c`` gets seed ``base_seed + c * SEED_STRIDE + index``, whatever
    ``n_per_class`` is.

    Parameters
    ----------
    n_per_class : int
        Clips per class (DCASE: 100), ``1 <= n_per_class <= SEED_STRIDE``.
    n_classes : int
        Number of classes.
    base_seed : int
        Offset of every seed (e.g. the run seed), ``>= 0``.

    Returns
    -------
    labels : torch.Tensor [shape=(n_classes * n_per_class,), dtype=int64]
        Class of each sample, class-major (all of class 0, then class 1, ...).
    seeds : torch.Tensor [shape=(n_classes * n_per_class,), dtype=int64]
        Seed of each sample.
    """
    if not 1 <= n_per_class <= SEED_STRIDE:
        raise ConfigError(f"eval_seeds: n_per_class={n_per_class!r} must lie in [1, {SEED_STRIDE}] (eval.clips_per_class).")
    if n_classes < 1:
        raise ConfigError(f"eval_seeds: n_classes={n_classes!r} must be >= 1.")
    if base_seed < 0 or base_seed + n_classes * SEED_STRIDE >= 2**63:
        raise ConfigError(f"eval_seeds: base_seed={base_seed!r} must be >= 0 and leave room for {n_classes} classes.")
    labels = torch.arange(n_classes, dtype=torch.int64).repeat_interleave(n_per_class)
    index = torch.arange(n_per_class, dtype=torch.int64).repeat(n_classes)
    seeds = int(base_seed) + labels * SEED_STRIDE + index
    return labels, seeds


def chosen_seeds(classes: Sequence[int], *, first: int, n: int, n_classes: int,
                 base_seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The evaluation's clips ``first .. first + n - 1`` of the chosen classes (:func:`eval_seeds`' map, restricted).

    Parameters
    ----------
    classes : sequence of int
        The chosen classes, in the order their clips are wanted.
    first, n : int
        The first clip index and the number of clips per class.
    n_classes : int
        Number of classes of the generator.
    base_seed : int
        As in :func:`eval_seeds`.

    Returns
    -------
    labels, seeds, index : torch.Tensor [shape=(len(classes) * n,), dtype=int64]
        Class, latent seed and clip index of each clip, class by class in the order of ``classes``; the seed of
        (class, index) is the one the evaluation gives it.
    """
    labels, seeds = eval_seeds(first + n, n_classes, base_seed=base_seed)
    index = torch.arange(first + n).repeat(n_classes)
    keep = torch.isin(labels, torch.tensor(list(classes))) & (index >= first)
    order = torch.cat([torch.nonzero(keep & (labels == c)).reshape(-1) for c in classes])  # classes as asked
    return labels[order], seeds[order], index[order]


def latents(seeds: Sequence[int] | torch.Tensor, *, z_dim: int) -> torch.Tensor:
    """Latents ``z_i ~ N(0, I)`` [shape=(N, z_dim)], ``z_i`` drawn on the CPU from a generator seeded with ``seeds[i]``."""
    seeds = torch.as_tensor(seeds, dtype=torch.int64).reshape(-1)
    out = torch.empty(len(seeds), z_dim)
    gen = torch.Generator(device="cpu")
    for i, s in enumerate(seeds.tolist()):
        if s < 0:
            raise ConfigError(f"latents: seeds[{i}] = {s} must be >= 0.")
        gen.manual_seed(s)
        out[i] = torch.randn(z_dim, generator=gen)
    return out


@torch.no_grad()
def generate_mels(
    generator: nn.Module,
    labels: Sequence[int] | torch.Tensor,
    seeds: Sequence[int] | torch.Tensor,
    *,
    z_dim: int | None = None,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    progress: bool | None = None,
) -> torch.Tensor:
    """Generate one normalised log-mel per (class, seed), independently of ``batch_size``.

    Parameters
    ----------
    generator : nn.Module
        ``G(z, y) -> (N, 1, 80, 344)`` (e.g. from :func:`occ.nets.models.load_generator`). Run in eval
        mode (BatchNorm running statistics) under ``no_grad``; its mode is restored afterwards.
    labels : sequence of int or torch.Tensor [shape=(N,)]
        Class of each sample.
    seeds : sequence of int or torch.Tensor [shape=(N,)]
        Seed of each sample's latent (see :func:`eval_seeds`).
    z_dim : int, optional
        Latent size; default ``generator.z_dim``.
    batch_size : int
        Samples per forward pass. Every pass has exactly this many (the last batch is padded with
        class-0 zero latents, which are dropped), so the output for a (class, seed) is bit-identical
        however many samples are asked for; a different ``batch_size`` agrees to round-off.
    device : {"auto", "cpu", "cuda"} or torch.device
        Where G runs; G is moved there.
    progress : bool, optional
        Progress bar; default: when stderr is a terminal.

    Returns
    -------
    torch.Tensor [shape=(N, 80, 344), dtype=float32]
        Normalised log-mels in [-1, 1], on the CPU.
    """
    labels = torch.as_tensor(labels, dtype=torch.int64).reshape(-1)
    seeds = torch.as_tensor(seeds, dtype=torch.int64).reshape(-1)
    if labels.shape != seeds.shape:
        raise DataError(f"generate_mels: {labels.numel()} labels but {seeds.numel()} seeds; give one seed per sample.")
    if z_dim is None:
        z_dim = getattr(generator, "z_dim", None)
        if z_dim is None:
            raise ConfigError("generate_mels: pass z_dim (model.z_dim); the generator has no z_dim attribute.")
    if batch_size < 1:
        raise ConfigError(f"generate_mels: batch_size={batch_size!r} must be >= 1.")
    if progress is None:
        progress = sys.stderr.isatty()
    n_classes = getattr(generator, "n_classes", None)
    if n_classes is not None and labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise DataError(f"generate_mels: labels must lie in [0, {n_classes}), got [{int(labels.min())}, {int(labels.max())}].")
    dev = resolve_device(device)
    z_all = latents(seeds, z_dim=int(z_dim))
    was_training = generator.training
    generator.to(dev).eval()
    outs = []
    try:
        for start in tqdm(range(0, len(labels), batch_size), disable=not progress, desc="generate", unit="batch"):
            z = z_all[start:start + batch_size]
            y = labels[start:start + batch_size]
            n = len(y)
            if n < batch_size:  # fixed shapes: the same kernels, hence the same bits, for every sample
                z = torch.cat([z, z.new_zeros(batch_size - n, z.shape[1])])
                y = torch.cat([y, y.new_zeros(batch_size - n)])
            x = generator(z.to(dev), y.to(dev)).float()
            outs.append(x[:n].squeeze(1).cpu())
    finally:
        generator.train(was_training)
    if not outs:
        return torch.empty(0, 80, 344)
    return torch.cat(outs)


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


def evaluation_mels(generator: torch.nn.Module, labels: torch.Tensor, seeds: torch.Tensor, *, base_seed: int,
                    device: str | torch.device = "cpu", progress: bool | None = None) -> torch.Tensor:
    """Normalised log-mels of (class, seed) pairs as the evaluation generates them (what D reads).

    ``standing_stats(generator, seed=base_seed)``, then :func:`generate_mels`. A mel depends only on the
    weights, its class and seed, ``base_seed`` (through the standing statistics) and the device.

    Parameters
    ----------
    generator : occ.nets.generator.Generator
        Left unchanged (the standing statistics are computed on a copy).
    labels, seeds : torch.Tensor [shape=(N,)]
        Class and latent seed of each clip (:func:`eval_seeds` gives the evaluation's).
    base_seed : int
        Seed of the standing statistics (the evaluation passes its ``base_seed``).
    device : str or torch.device
    progress : bool, optional
        Progress bar; default: when stderr is a terminal.

    Returns
    -------
    torch.Tensor [shape=(N, 80, 344)]
        Log-mels in [-1, 1], on the CPU.
    """
    generator = standing_stats(generator, seed=base_seed, device=device)
    return generate_mels(generator, labels, seeds, device=device, progress=progress)


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

    :func:`evaluation_mels` (standing statistics, then every forward pass of the same shape),
    ``denormalize_mel`` and :func:`occ.synthesis.vocoder.vocode`. A clip depends only on the weights, its
    class and seed, ``base_seed`` (through the standing statistics), the vocoder and the device: asking for
    one clip of an evaluation set gives the evaluation's clip.

    Parameters
    ----------
    generator, labels, seeds, base_seed
        As in :func:`evaluation_mels`.
    vocoder : str
        ``eval.vocoder``: "griffinlim", "hifigan" or a HiFi-GAN checkpoint path
        (:func:`occ.synthesis.vocoder.vocoder_method`).
    gl_iters : int
        Griffin-Lim iterations.
    device : str or torch.device
    progress : bool
        Progress bars.
    precision : {"auto", "float32", "bfloat16"}
        HiFi-GAN arithmetic (:func:`occ.synthesis.vocoder.vocode`); the evaluation uses "auto".

    Returns
    -------
    mels : torch.Tensor [shape=(N, 80, 344)]
        Natural-log mels, on the CPU.
    wavs : np.ndarray [shape=(N, 88200), float32]
    """
    mels = evaluation_mels(generator, labels, seeds, base_seed=base_seed, device=device, progress=progress)
    mels = denormalize_mel(mels).cpu()
    method, checkpoint = vocoder_method(vocoder)
    wavs = vocode(mels, method=method, vocoder=checkpoint, n_iter=gl_iters, device=device, progress=progress,
                  precision=precision)
    return mels, np.asarray(wavs.cpu(), dtype=np.float32)


def class_names_of(run_dir: str | Path) -> list[str]:
    """The class names, in label order, of the generator a training run saved (its ``checkpoint.pt``)."""
    payload = load_checkpoint(Path(run_dir) / "checkpoint.pt", kind="gan")
    n = int(payload["n_classes"])
    return list(payload.get("class_names") or [f"class {i}" for i in range(n)])
