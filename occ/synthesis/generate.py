"""Generation of evaluation log-mels with per-sample seeds.

As in NVlabs' EDM / StyleGAN3 (docs/reference.md, "Seeds and randomness"), every generated sample has its own seed: the latent
``z_i ~ N(0, I)`` of sample ``i`` is drawn from a ``torch.Generator`` seeded with ``seeds[i]`` on the
CPU, so a sample depends only on (generator weights, class, seed), not on the batch size, the order
of generation or the device. :func:`eval_seeds` gives each (class, index) pair a fixed seed, so the
``k``-th clip of a class is the same whether 10 or 100 clips per class are asked for. Every forward
pass of :func:`generate_mels` has the same shape (the last batch is padded), so a sample is the same
to the bit whichever other samples share its batch: CPU kernels are chosen by shape, and a batch of 5
can round differently from a batch of 64.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import torch
import torch.nn as nn
from tqdm import tqdm  # the text bar: no notebook-widget import, no IProgress warning in a kernel

from occ.errors import ConfigError, DataError
from occ.device import resolve_device

__all__ = ["SEED_STRIDE", "eval_seeds", "latents", "generate_mels"]

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
        ``G(z, y) -> (N, 1, 80, 344)`` (e.g. from :func:`occ.train.gan_train.load_generator`). Run in eval
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
