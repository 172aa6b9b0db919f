"""Building blocks shared by the generator and the discriminator, and the two width presets.

The blocks follow BigGAN (Brock et al. 2019) as used by ContraGAN (Kang & Park 2020, PyTorch-StudioGAN
``big_resnet``) and by the paper (Chung, Lee & Jung, DCASE 2023, Sec. 2): residual up-sampling blocks
with class-conditional BatchNorm in G, residual down-sampling blocks with spectral normalisation
(Miyato et al. 2018) in D. Scale factors are per axis, because 80 = 5 * 2^4 and 344 = 43 * 2^3:
G starts from a 5 x 43 map. Departures used by the ``"embedded"`` width, all for speed on 80 x 344
log-mels on a CPU and all keeping the blocks residual (no 3 x 3 convolution with more than one
channel runs at the full 80 x 344 resolution):

* ``resample="between"`` moves the up-/down-sampling of the main path between the two 3 x 3
  convolutions (BigGAN: up-sample before the first convolution in G, down-sample after the second
  in D), so that one of the two convolutions runs at the lower resolution;
* G's last x2 in frequency is a sub-pixel output layer (``Generator(out_upsample=(2, 1))``) instead
  of a fourth block at 80 x 344;
* D starts with a lossless 2 x 2 space-to-depth of the input (``Discriminator(space_to_depth=(2,
  2))``), i.e. the first block down-samples immediately;
* channels-last memory format (measured faster for these shapes on a 2-core CPU).

``WIDTHS`` holds the two presets of the project: ``"embedded"`` (trains on a 2-core CPU) and
``"paper"`` (BigGAN-like widths, GPU scale).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

__all__ = [
    "WIDTHS",
    "maybe_sn",
    "orthogonal_init",
    "ConditionalBatchNorm2d",
    "GBlock",
    "DBlock",
]

#: Keyword arguments of ``Generator``, ``Discriminator`` and ``Encoder`` for the two widths,
#: keyed ``"generator"``, ``"discriminator"``, ``"encoder"`` (``n_classes`` is added by the caller).
#:
#: ``"embedded"`` (a D+G step of batch 16 in well under a second on a 2-core CPU):
#:   G: base width 8, channels 64-32-16-8 over three (2, 2) blocks from 5 x 43 to 40 x 344, the last
#:   x2 in frequency learned by a sub-pixel output layer; D: 2 x 2 space-to-depth of the input,
#:   channels 8-16-32-64 (three (2, 2) down-sampling blocks and one block at 5 x 21); resampling
#:   between the two convolutions of each block; channels-last memory format; ResNet18 encoder of
#:   width 16 with a stride-2 stem.
#: ``"paper"`` (GPU scale, BigGAN-like): G 64 x (8, 4, 2, 1, 1) over four blocks (2, 2), (2, 2), (2, 2),
#:   (2, 1); D 64 x (1, 2, 4, 8, 8); BigGAN's resampling; ResNet18 of width 64 with the CIFAR stem.
WIDTHS: dict[str, dict[str, dict[str, Any]]] = {
    "embedded": {
        "generator": {
            "ch": 8,
            "ch_mult": (8, 4, 2, 1),
            "scales": ((2, 2), (2, 2), (2, 2)),
            "out_upsample": (2, 1),
            "resample": "between",
            "channels_last": True,
        },
        "discriminator": {
            "ch": 8,
            "ch_mult": (1, 2, 4, 8),
            "downs": ((2, 2), (2, 2), (2, 2), None),
            "space_to_depth": (2, 2),
            "resample": "between",
            "channels_last": True,
        },
        "encoder": {"width": 16, "stem": "strided", "channels_last": True},
    },
    "paper": {
        "generator": {
            "ch": 64,
            "ch_mult": (8, 4, 2, 1, 1),
            "scales": ((2, 2), (2, 2), (2, 2), (2, 1)),
            "out_upsample": (1, 1),
            "resample": "standard",
            "channels_last": False,
        },
        "discriminator": {
            "ch": 64,
            "ch_mult": (1, 2, 4, 8, 8),
            "downs": ((2, 2), (2, 2), (2, 2), (2, 2), None),
            "space_to_depth": (1, 1),
            "resample": "standard",
            "channels_last": False,
        },
        "encoder": {"width": 64, "stem": "cifar", "channels_last": False},
    },
}

RESAMPLE_MODES = ("standard", "between")


def orthogonal_init(module: nn.Module) -> nn.Module:
    """BigGAN / StudioGAN initialisation: orthogonal weights and zero biases for every convolution and linear layer.

    Spectrally normalised layers are initialised through their original (un-normalised) weight. Layers are
    visited in ``module.modules()`` order, so the result depends only on the torch seed.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            w = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
            nn.init.orthogonal_(w)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


def maybe_sn(module: nn.Module, *, enabled: bool) -> nn.Module:
    """Wrap ``module`` in spectral normalisation (one power iteration per training forward).

    Parameters
    ----------
    module : torch.nn.Module
        A ``Conv2d``, ``Linear`` or ``Embedding``.
    enabled : bool
        Apply spectral normalisation or return ``module`` unchanged.

    Returns
    -------
    torch.nn.Module
        ``module``, parametrised so that ``module.weight`` has largest singular value ~1.
    """
    return spectral_norm(module, eps=1e-6) if enabled else module


def check_resample(resample: str, *, owner: str) -> None:
    """Raise ``ConfigError`` unless ``resample`` is one of ``RESAMPLE_MODES``."""
    if resample not in RESAMPLE_MODES:
        from occ.errors import ConfigError

        raise ConfigError(f"{owner}: resample={resample!r} is unknown; use one of {RESAMPLE_MODES}.")


class ConditionalBatchNorm2d(nn.Module):
    """Class-conditional BatchNorm (BigGAN): ``BN(x) * (1 + gain(c)) + bias(c)``.

    Parameters
    ----------
    num_features : int
        Channels of the input.
    cond_dim : int
        Size of the conditioning vector (shared class embedding concatenated with a z chunk).
    sn : bool
        Spectral-normalise the two linear maps (as BigGAN's G).
    """

    def __init__(self, *, num_features: int, cond_dim: int, sn: bool = True) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features, affine=False, eps=1e-4, momentum=0.1)
        self.gain = maybe_sn(nn.Linear(cond_dim, num_features, bias=False), enabled=sn)
        self.bias = maybe_sn(nn.Linear(cond_dim, num_features, bias=False), enabled=sn)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` [shape=(N, C, H, W)] with the per-sample affine of ``cond`` [shape=(N, cond_dim)]."""
        gain = (1.0 + self.gain(cond)).unsqueeze(-1).unsqueeze(-1)
        bias = self.bias(cond).unsqueeze(-1).unsqueeze(-1)
        return self.bn(x) * gain + bias


class GBlock(nn.Module):
    """BigGAN residual up-sampling block with conditional BatchNorm.

    Main path: cBN - ReLU - up - conv3x3 - cBN - ReLU - conv3x3 (``resample="standard"``) or
    cBN - ReLU - conv3x3 - up - cBN - ReLU - conv3x3 (``"between"``); shortcut: up - conv1x1.
    Up-sampling is nearest-neighbour by ``scale`` = (frequency, time) factors.

    Parameters
    ----------
    in_ch, out_ch : int
        Channels in and out.
    cond_dim : int
        Size of the conditioning vector of the two cBN layers.
    scale : tuple of int
        Up-sampling factors (frequency, time), e.g. (2, 2) or (2, 1).
    sn : bool
        Spectral-normalise the convolutions and the cBN linear maps.
    resample : {"standard", "between"}
        Where the main path up-samples (see the module docstring).
    """

    def __init__(
        self,
        *,
        in_ch: int,
        out_ch: int,
        cond_dim: int,
        scale: tuple[int, int] = (2, 2),
        sn: bool = True,
        resample: str = "standard",
    ) -> None:
        super().__init__()
        check_resample(resample, owner="GBlock")
        self.scale = tuple(int(s) for s in scale)
        self.resample = resample
        self.bn1 = ConditionalBatchNorm2d(num_features=in_ch, cond_dim=cond_dim, sn=sn)
        self.conv1 = maybe_sn(nn.Conv2d(in_ch, out_ch, 3, padding=1), enabled=sn)
        self.bn2 = ConditionalBatchNorm2d(num_features=out_ch, cond_dim=cond_dim, sn=sn)
        self.conv2 = maybe_sn(nn.Conv2d(out_ch, out_ch, 3, padding=1), enabled=sn)
        self.shortcut = maybe_sn(nn.Conv2d(in_ch, out_ch, 1), enabled=sn)

    def _up(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale == (1, 1):
            return x
        return F.interpolate(x, scale_factor=self.scale, mode="nearest")

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Map ``x`` [shape=(N, in_ch, H, W)] to [shape=(N, out_ch, H * scale[0], W * scale[1])]."""
        h = F.relu(self.bn1(x, cond))
        if self.resample == "standard":
            h = self.conv1(self._up(h))
        else:
            h = self._up(self.conv1(h))
        h = self.conv2(F.relu(self.bn2(h, cond)))
        return h + self._up(self.shortcut(x))


class DBlock(nn.Module):
    """BigGAN residual down-sampling block with spectral normalisation on every layer.

    Main path: [ReLU] - conv3x3 - ReLU - conv3x3 - avgpool (``resample="standard"``) or
    [ReLU] - conv3x3 - avgpool - ReLU - conv3x3 (``"between"``); the leading ReLU is left out in
    the first block (``preactivation=False``, BigGAN's "optimised" block on the raw input).
    Shortcut: conv1x1 - avgpool (pool first in the first block, as BigGAN), or identity when the
    block neither changes channels nor resolution.

    Parameters
    ----------
    in_ch, out_ch : int
        Channels in and out.
    down : tuple of int or None
        Average-pooling factors (frequency, time); ``None`` keeps the resolution.
    preactivation : bool
        Start the main path with a ReLU (False for the first block).
    sn : bool
        Spectral-normalise every convolution.
    resample : {"standard", "between"}
        Where the main path down-samples.
    """

    def __init__(
        self,
        *,
        in_ch: int,
        out_ch: int,
        down: tuple[int, int] | None = (2, 2),
        preactivation: bool = True,
        sn: bool = True,
        resample: str = "standard",
    ) -> None:
        super().__init__()
        check_resample(resample, owner="DBlock")
        self.down = None if down is None else tuple(int(s) for s in down)
        self.preactivation = preactivation
        self.resample = resample
        self.conv1 = maybe_sn(nn.Conv2d(in_ch, out_ch, 3, padding=1), enabled=sn)
        self.conv2 = maybe_sn(nn.Conv2d(out_ch, out_ch, 3, padding=1), enabled=sn)
        self.learnable_sc = in_ch != out_ch or self.down is not None
        self.shortcut = (
            maybe_sn(nn.Conv2d(in_ch, out_ch, 1), enabled=sn) if self.learnable_sc else None
        )

    def _down(self, x: torch.Tensor) -> torch.Tensor:
        if self.down is None:
            return x
        return F.avg_pool2d(x, kernel_size=self.down, stride=self.down)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``x`` [shape=(N, in_ch, H, W)] to [shape=(N, out_ch, H // down[0], W // down[1])]."""
        h = F.relu(x) if self.preactivation else x
        h = self.conv1(h)
        if self.resample == "standard":
            h = self._down(self.conv2(F.relu(h)))
        else:
            h = self.conv2(F.relu(self._down(h)))
        if self.shortcut is None:
            return h + x
        if self.preactivation:
            sc = self._down(self.shortcut(x))
        else:
            sc = self.shortcut(self._down(x))
        return h + sc
