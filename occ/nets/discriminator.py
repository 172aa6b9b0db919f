"""Discriminator of O2C-GAN / OC-SupConGAN: trunk D1, adversarial head D2, projection head h, class embeddings e.

Chung, Lee & Jung (DCASE 2023), Sec. 2 and Fig. 1: the discriminator is split into D1, which maps a
log-mel to a feature vector, and D2, which maps that vector to the adversarial logit; the data
embedding of the contrastive losses is ``d_i = h(D1(x_i))`` with a 2-layer projection head ``h`` to
128 dimensions, and each class has a learned embedding ``e(c)`` (ContraGAN, Kang & Park 2020).

* D1: BigGAN residual down-sampling blocks, spectral norm on every layer, ReLU, global SUM pooling.
* D2: a spectral-normed linear layer, unconditional as in ContraGAN (the class enters through the
  contrastive term); ``projection=True`` adds the projection-discriminator term
  ``<embed(y), D1(x)>`` (Miyato & Koyama 2018).
* h: spectral-normed Linear(F, F) - ReLU - spectral-normed Linear(F, proj_dim) (every D layer is
  spectrally normalised, as in ContraGAN).
* e: ``nn.Embedding(n_classes, proj_dim)``; the contrastive losses normalise it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from occ.data.audio import N_FRAMES, N_MELS
from occ.errors import ConfigError, DataError
from occ.nets.layers import WIDTHS, DBlock, check_resample, maybe_sn, orthogonal_init

__all__ = ["space_to_depth", "DiscOutput", "DiscTrunk", "AdversarialHead", "ProjectionHead", "Discriminator"]

#: The constructor's defaults: the ``"embedded"`` layout, the one place the base width and layout are set.
_DEFAULTS = WIDTHS["embedded"]["discriminator"]


class DiscOutput(NamedTuple):
    """What the discriminator returns for a batch of N log-mels.

    Attributes
    ----------
    logits : torch.Tensor [shape=(N,)]
        Adversarial logits ``D2(D1(x))`` (hinge loss).
    embedding : torch.Tensor [shape=(N, proj_dim)]
        Data embeddings ``d = h(D1(x))``, not normalised (the contrastive losses normalise).
    features : torch.Tensor [shape=(N, F)]
        Sum-pooled trunk features ``D1(x)`` (e.g. for t-SNE, Fig. 2).
    """

    logits: torch.Tensor
    embedding: torch.Tensor
    features: torch.Tensor


class DiscTrunk(nn.Module):
    """D1: residual down-sampling trunk with spectral norm, ReLU and global sum pooling.

    Parameters
    ----------
    ch : int
        Base width; block ``i`` outputs ``ch * ch_mult[i]`` channels.
    ch_mult : sequence of int
        Output-channel multipliers, one per block.
    downs : sequence of (int, int) or None
        Per-block average-pooling factors (frequency, time); ``None`` keeps the resolution.
    sn : bool
        Spectral normalisation on every convolution.
    resample : {"standard", "between"}
        Where each block down-samples (see ``occ.nets.layers.DBlock``).
    space_to_depth : (int, int)
        Lossless down-sampling of the input before the first block: each (a, b) patch becomes
        ``a * b`` channels, so no convolution runs at the full 80 x 344 resolution (the first
        block "down-samples immediately"). (1, 1): plain BigGAN input.
    channels_last : bool
        Run the convolutions in channels-last memory format.
    """

    def __init__(
        self,
        *,
        ch: int,
        ch_mult: Sequence[int],
        downs: Sequence[tuple[int, int] | None],
        sn: bool = True,
        resample: str = "standard",
        space_to_depth: tuple[int, int] = (1, 1),
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.space_to_depth = tuple(int(v) for v in space_to_depth)
        self.channels_last = channels_last
        if len(ch_mult) != len(downs):
            raise ConfigError(
                f"Discriminator: ch_mult has {len(ch_mult)} entries and downs {len(downs)}; give "
                "one of each per block."
            )
        chans = [self.space_to_depth[0] * self.space_to_depth[1]] + [ch * m for m in ch_mult]
        self.blocks = nn.ModuleList(
            DBlock(
                in_ch=chans[i],
                out_ch=chans[i + 1],
                down=downs[i],
                preactivation=i > 0,
                sn=sn,
                resample=resample,
            )
            for i in range(len(downs))
        )
        self.out_dim = chans[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map log-mels [shape=(N, 1, 80, 344)] to features [shape=(N, out_dim)]."""
        h = space_to_depth(x, factors=self.space_to_depth)
        if self.channels_last:
            h = h.contiguous(memory_format=torch.channels_last)
        for block in self.blocks:
            h = block(h)
        return F.relu(h).sum(dim=(2, 3))


def space_to_depth(x: torch.Tensor, *, factors: tuple[int, int]) -> torch.Tensor:
    """Rearrange (N, C, H, W) into (N, C * a * b, H // a, W // b), ``factors`` = (a, b).

    Rows and columns beyond a multiple of the factor are dropped (none for 80 x 344 and (2, 2)).
    """
    a, b = factors
    if (a, b) == (1, 1):
        return x
    n, c, h, w = x.shape
    x = x[:, :, : h - h % a, : w - w % b]
    x = x.reshape(n, c, h // a, a, w // b, b).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(n, c * a * b, h // a, w // b)


class AdversarialHead(nn.Module):
    """D2: spectral-normed linear logit, plus ``<embed(y), feature>`` when ``projection``.

    Parameters
    ----------
    in_dim : int
        Size of the D1 feature.
    n_classes : int
        Number of classes (used only with ``projection``).
    projection : bool
        Add the projection-discriminator class term.
    sn : bool
        Spectral normalisation on the linear layer and the projection embedding.
    """

    def __init__(self, *, in_dim: int, n_classes: int, projection: bool, sn: bool = True) -> None:
        super().__init__()
        self.linear = maybe_sn(nn.Linear(in_dim, 1), enabled=sn)
        self.embed = (
            maybe_sn(nn.Embedding(n_classes, in_dim), enabled=sn) if projection else None
        )

    def forward(self, features: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Logits [shape=(N,)] from features [shape=(N, in_dim)] and classes [shape=(N,)]."""
        out = self.linear(features).squeeze(1)
        if self.embed is not None:
            out = out + (self.embed(y) * features).sum(dim=1)
        return out


class ProjectionHead(nn.Module):
    """h: spectral-normed Linear(in_dim, in_dim) - ReLU - spectral-normed Linear(in_dim, proj_dim)."""

    def __init__(self, *, in_dim: int, proj_dim: int, sn: bool = True) -> None:
        super().__init__()
        self.fc1 = maybe_sn(nn.Linear(in_dim, in_dim), enabled=sn)
        self.fc2 = maybe_sn(nn.Linear(in_dim, proj_dim), enabled=sn)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Embeddings [shape=(N, proj_dim)] from features [shape=(N, in_dim)]."""
        return self.fc2(F.relu(self.fc1(features)))


class Discriminator(nn.Module):
    """ContraGAN-style discriminator for 80 x 344 log-mels: D1, D2, h and e.

    The defaults are the lean trunk of ``WIDTHS["embedded"]`` (2 x 2 space-to-depth input, three
    (2, 2) down-sampling blocks and one block at 5 x 21, pooling between the convolutions);
    ``WIDTHS["paper"]["discriminator"]`` gives BigGAN's five blocks on the raw input.

    Parameters
    ----------
    n_classes : int
        Number of sound classes.
    ch : int
        Base width of D1. Default: the embedded width (``WIDTHS["embedded"]["discriminator"]["ch"]``);
        the pipeline passes ``model.d_ch``.
    proj_dim : int
        Size of the data and class embeddings (128 in the paper).
    projection : bool
        Add the projection term ``<embed(y), D1(x)>`` to the logit (off in ContraGAN).
    ch_mult : sequence of int
        Output-channel multipliers of D1's blocks.
    downs : sequence of (int, int) or None
        Pooling factors of D1's blocks.
    sn : bool
        Spectral normalisation on every layer of D1, D2 and h.
    resample : {"standard", "between"}
        Where D1's blocks down-sample.
    space_to_depth : (int, int)
        Lossless input down-sampling before D1's first block (see ``DiscTrunk``).
    channels_last : bool
        Run D1's convolutions in channels-last memory format.

    Attributes
    ----------
    d1 : DiscTrunk
    d2 : AdversarialHead
    head : ProjectionHead
    class_embed : torch.nn.Embedding
    """

    def __init__(
        self,
        *,
        n_classes: int,
        ch: int = _DEFAULTS["ch"],
        proj_dim: int = 128,
        projection: bool = False,
        ch_mult: Sequence[int] = _DEFAULTS["ch_mult"],
        downs: Sequence[tuple[int, int] | None] = _DEFAULTS["downs"],
        sn: bool = True,
        resample: str = _DEFAULTS["resample"],
        space_to_depth: tuple[int, int] = _DEFAULTS["space_to_depth"],
        channels_last: bool = _DEFAULTS["channels_last"],
    ) -> None:
        super().__init__()
        if n_classes < 1:
            raise ConfigError(f"Discriminator: n_classes={n_classes} must be >= 1.")
        if ch < 1 or proj_dim < 1:
            raise ConfigError(f"Discriminator: ch={ch} and proj_dim={proj_dim} must be >= 1.")
        check_resample(resample, owner="Discriminator")
        self.n_classes = n_classes
        self.proj_dim = proj_dim
        self.d1 = DiscTrunk(
            ch=ch,
            ch_mult=ch_mult,
            downs=downs,
            sn=sn,
            resample=resample,
            space_to_depth=space_to_depth,
            channels_last=channels_last,
        )
        self.d2 = AdversarialHead(
            in_dim=self.d1.out_dim, n_classes=n_classes, projection=projection, sn=sn
        )
        self.head = ProjectionHead(in_dim=self.d1.out_dim, proj_dim=proj_dim, sn=sn)
        self.class_embed = nn.Embedding(n_classes, proj_dim)
        orthogonal_init(self)

    @property
    def feature_dim(self) -> int:
        """Size ``F`` of the D1 feature."""
        return self.d1.out_dim

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> DiscOutput:
        """Score log-mels and embed them.

        Parameters
        ----------
        x : torch.Tensor [shape=(N, 1, 80, 344)]
            Normalised log-mels in [-1, 1].
        y : torch.Tensor [shape=(N,), dtype=int64]
            Class indices (used by D2 only with ``projection``).

        Returns
        -------
        DiscOutput
            ``logits`` (N,), ``embedding`` (N, proj_dim), ``features`` (N, F).
        """
        if x.ndim != 4 or x.shape[1] != 1:
            raise DataError(
                f"Discriminator.forward: x must have shape (N, 1, {N_MELS}, {N_FRAMES}), got "
                f"{tuple(x.shape)}."
            )
        if y.shape != (x.shape[0],):
            raise DataError(
                f"Discriminator.forward: y must have shape ({x.shape[0]},) to match x, got "
                f"{tuple(y.shape)}."
            )
        features = self.d1(x)
        return DiscOutput(
            logits=self.d2(features, y), embedding=self.head(features), features=features
        )

    def class_embedding(self, y: torch.Tensor) -> torch.Tensor:
        """Class embeddings ``e(y)`` [shape=(N, proj_dim)] of classes ``y`` [shape=(N,)] (not normalised)."""
        return self.class_embed(y)
