"""Differentiable augmentation of the discriminator's inputs: translation and cutout.

DiffAugment (Zhao et al., "Differentiable Augmentation for Data-Efficient GAN Training", NeurIPS
2020) applies the same family of random, differentiable transforms to real and generated images
in both the D and the G step, which limits D's over-fitting on small data sets (the paper's
observed failure: D's adversarial loss falls very fast, then mode collapse, docs/reference.md, section 1).

Adapted to log-mel spectrograms (docs/reference.md, section 6: no flips, a horizontal flip is a time
reversal):

* translation: a random shift in time (up to ``translation * 344`` frames) and in frequency (up to
  ``translation * 80`` bands); the uncovered cells are filled with -1, the normalised silence floor;
* cutout: one random rectangle of ``cutout * 80`` bands by ``cutout * 344`` frames set to -1.

Parameters are drawn on the CPU from a caller-owned ``torch.Generator`` (:func:`draw_d_augment`)
and applied separately (:func:`apply_d_augment`), so a draw can be replayed; real and fake batches
get independent draws. Gradients flow to the input through both transforms.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from occ.errors import ConfigError, DataError

__all__ = ["DAugmentParams", "draw_d_augment", "apply_d_augment", "SILENCE"]

#: Value of silence in the normalised log-mel space; fills every uncovered cell.
SILENCE = -1.0


@dataclass
class DAugmentParams:
    """One draw of augmentation parameters for a batch of N spectrograms (all int64, on the CPU).

    Attributes
    ----------
    shift_f, shift_t : torch.Tensor [shape=(N,)]
        Translation in mel bands and in frames (positive: towards higher bands / later frames).
    cut_f, cut_t : torch.Tensor [shape=(N,)]
        First band and first frame of the cutout rectangle (may start before 0: clipped).
    cut_h, cut_w : int
        Cutout height (bands) and width (frames); 0 means no cutout.
    """

    shift_f: torch.Tensor
    shift_t: torch.Tensor
    cut_f: torch.Tensor
    cut_t: torch.Tensor
    cut_h: int
    cut_w: int


def draw_d_augment(
    n: int,
    *,
    height: int,
    width: int,
    generator: torch.Generator,
    translation: float = 0.125,
    cutout: float = 0.5,
) -> DAugmentParams:
    """Draw translation and cutout parameters for ``n`` spectrograms of ``height`` x ``width``.

    Parameters
    ----------
    n : int
        Batch size.
    height, width : int
        Mel bands and frames (80, 344).
    generator : torch.Generator
        A CPU generator; the only source of randomness.
    translation : float
        Largest shift as a fraction of each axis (DiffAugment: 1/8), in ``[0, 1)``.
    cutout : float
        Cutout size as a fraction of each axis (DiffAugment: 1/2), in ``[0, 1]``; 0 turns it off.

    Returns
    -------
    DAugmentParams
    """
    if not 0.0 <= translation < 1.0:
        raise ConfigError(f"draw_d_augment: translation={translation!r} must lie in [0, 1).")
    if not 0.0 <= cutout <= 1.0:
        raise ConfigError(f"draw_d_augment: cutout={cutout!r} must lie in [0, 1].")
    max_f = int(height * translation + 0.5)
    max_t = int(width * translation + 0.5)
    shift_f = torch.randint(-max_f, max_f + 1, (n,), generator=generator)
    shift_t = torch.randint(-max_t, max_t + 1, (n,), generator=generator)
    cut_h = int(height * cutout + 0.5)
    cut_w = int(width * cutout + 0.5)
    # Centre anywhere on the grid, as in DiffAugment; the rectangle is clipped at the borders.
    cut_f = torch.randint(0, height + (1 - cut_h % 2), (n,), generator=generator) - cut_h // 2
    cut_t = torch.randint(0, width + (1 - cut_w % 2), (n,), generator=generator) - cut_w // 2
    return DAugmentParams(shift_f=shift_f, shift_t=shift_t, cut_f=cut_f, cut_t=cut_t, cut_h=cut_h, cut_w=cut_w)


def apply_d_augment(x: torch.Tensor, params: DAugmentParams) -> torch.Tensor:
    """Apply a drawn translation + cutout to spectrograms (differentiable in ``x``).

    Parameters
    ----------
    x : torch.Tensor [shape=(N, C, H, W)]
        Normalised log-mels (C = 1, H = 80 bands, W = 344 frames).
    params : DAugmentParams
        From :func:`draw_d_augment` with ``n = N``.

    Returns
    -------
    torch.Tensor [shape=(N, C, H, W)]
    """
    if x.ndim != 4:
        raise DataError(f"apply_d_augment: x must have shape (N, C, H, W), got {tuple(x.shape)}.")
    n, c, h, w = x.shape
    if params.shift_f.shape != (n,):
        raise DataError(f"apply_d_augment: parameters drawn for {params.shift_f.shape[0]} samples, x holds {n}.")
    dev = x.device
    shift_f = params.shift_f.to(dev)
    shift_t = params.shift_t.to(dev)
    # out[i, j] = x[i - shift_f, j - shift_t] where inside, else silence.
    src_f = torch.arange(h, device=dev).unsqueeze(0) - shift_f.unsqueeze(1)  # (N, H)
    src_t = torch.arange(w, device=dev).unsqueeze(0) - shift_t.unsqueeze(1)  # (N, W)
    ok_f = (src_f >= 0) & (src_f < h)
    ok_t = (src_t >= 0) & (src_t < w)
    idx_f = src_f.clamp(0, h - 1)[:, None, :, None].expand(n, c, h, w)
    idx_t = src_t.clamp(0, w - 1)[:, None, None, :].expand(n, c, h, w)
    out = x.gather(2, idx_f).gather(3, idx_t)
    keep = ok_f[:, None, :, None] & ok_t[:, None, None, :]
    if params.cut_h > 0 and params.cut_w > 0:
        rows = torch.arange(h, device=dev).unsqueeze(0) - params.cut_f.to(dev).unsqueeze(1)
        cols = torch.arange(w, device=dev).unsqueeze(0) - params.cut_t.to(dev).unsqueeze(1)
        in_f = (rows >= 0) & (rows < params.cut_h)
        in_t = (cols >= 0) & (cols < params.cut_w)
        keep = keep & ~(in_f[:, None, :, None] & in_t[:, None, None, :])
    return torch.where(keep, out, torch.full_like(out, SILENCE))

