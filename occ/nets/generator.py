"""Class-conditional generator G(z, c) -> normalised 80 x 344 log-mel, BigGAN-style.

Chung, Lee & Jung (DCASE 2023), Sec. 2: the generator of O2C-GAN / OC-SupConGAN is ContraGAN's
BigGAN generator (Kang & Park 2020; Brock et al. 2019): z ~ N(0, I) is split into chunks; the first
feeds a linear layer to the bottom feature map, every residual up-sampling block gets
``[shared_embedding(c), z_chunk]`` for its class-conditional BatchNorm layers, and the output layer
is BN - ReLU - conv3x3 - tanh.

80 x 344 is neither square nor a power of two (80 = 5 * 2^4, 344 = 43 * 2^3), so G starts from a
5 x 43 map and up-samples x16 in frequency and x8 in time with per-axis scale factors
(2, 2), (2, 2), (2, 2), (2, 1). The output lies in [-1, 1], the normalised log-mel space
(-1 = silence).

``WIDTHS`` (defined in ``occ.nets.layers``) is re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from occ.data.audio import N_FRAMES, N_MELS
from occ.errors import ConfigError, DataError
from occ.nets.layers import WIDTHS, GBlock, check_resample, maybe_sn, orthogonal_init

__all__ = ["Generator", "WIDTHS", "N_MELS", "N_FRAMES", "depth_to_space"]

#: The constructor's defaults: the ``"embedded"`` layout, the one place the base width and layout are set.
_DEFAULTS = WIDTHS["embedded"]["generator"]


class Generator(nn.Module):
    """BigGAN-style class-conditional generator of normalised log-mels.

    The defaults are the lean architecture of ``WIDTHS["embedded"]`` (three residual blocks to
    40 x 344 and a sub-pixel output layer for the last x2 in frequency, resampling between the
    convolutions); ``WIDTHS["paper"]["generator"]`` gives BigGAN's four blocks
    (2, 2), (2, 2), (2, 2), (2, 1) with its own resampling.

    Parameters
    ----------
    n_classes : int
        Number of sound classes (7 in DCASE 2023 Task 7).
    z_dim : int
        Size of the latent ``z`` ~ N(0, I); split into ``len(scales) + 1`` nearly equal chunks.
    ch : int
        Base width; block ``i`` has ``ch * ch_mult[i]`` input channels. Default: the embedded
        width (``WIDTHS["embedded"]["generator"]["ch"]``); the pipeline passes ``model.g_ch``.
    shared_dim : int
        Size of the shared class embedding concatenated with each z chunk.
    ch_mult : sequence of int
        Channel multipliers, one per block plus one for the last block's output
        (``len(scales) + 1`` entries).
    scales : sequence of (int, int)
        Per-block up-sampling factors (frequency, time); their products must turn the
        ``bottom`` map into 80 x 344.
    bottom : (int, int)
        Size of the first feature map (frequency, time).
    sn : bool
        Spectral normalisation on every convolution and linear layer (BigGAN's G uses it).
    resample : {"standard", "between"}
        Where each block up-samples (see ``occ.nets.layers.GBlock``).
    out_upsample : (int, int)
        Sub-pixel factors (frequency, time) of the output layer: the output convolution produces
        ``out_upsample[0] * out_upsample[1]`` channels that ``depth_to_space`` rearranges into a
        finer map, so the last up-sampling is learned without a block at full resolution (the
        "light last block" of the embedded width). (1, 1): plain BigGAN output layer.
    channels_last : bool
        Run the convolutions in channels-last memory format (faster on some CPUs).
    noise : float
        Initial scale of a per-feature noise input added to the last block's output (StyleGAN's noise
        inputs, one learned scale per channel), so that G has a direct source of the fine, random
        time-frequency texture of real log-mels. 0: off (BigGAN). The noise is part of the latent:
        with it on, G takes ``z`` of size ``self.z_dim = z_dim + noise_dim`` (``noise_dim`` = channels x
        height x width of the last block's output), the first ``z_dim`` entries as before and the rest the
        noise, so that G stays a function of ``(z, y)`` and every seeded sample is reproducible.
    """

    def __init__(
        self,
        *,
        n_classes: int,
        z_dim: int = 128,
        ch: int = _DEFAULTS["ch"],
        shared_dim: int = 128,
        ch_mult: Sequence[int] = _DEFAULTS["ch_mult"],
        scales: Sequence[tuple[int, int]] = _DEFAULTS["scales"],
        bottom: tuple[int, int] = (5, 43),
        sn: bool = True,
        resample: str = _DEFAULTS["resample"],
        out_upsample: tuple[int, int] = _DEFAULTS["out_upsample"],
        channels_last: bool = _DEFAULTS["channels_last"],
        noise: float = 0.0,
    ) -> None:
        super().__init__()
        if n_classes < 1:
            raise ConfigError(f"Generator: n_classes={n_classes} must be >= 1.")
        if ch < 1:
            raise ConfigError(f"Generator: ch={ch} must be >= 1.")
        scales = tuple(tuple(int(v) for v in s) for s in scales)
        if len(ch_mult) != len(scales) + 1:
            raise ConfigError(
                f"Generator: ch_mult has {len(ch_mult)} entries; it needs len(scales) + 1 = "
                f"{len(scales) + 1} (one per block input plus the output)."
            )
        if z_dim < len(scales) + 1:
            raise ConfigError(
                f"Generator: z_dim={z_dim} cannot be split into {len(scales) + 1} chunks; use "
                f"z_dim >= {len(scales) + 1}."
            )
        out_upsample = tuple(int(v) for v in out_upsample)
        out_f, out_t = bottom[0] * out_upsample[0], bottom[1] * out_upsample[1]
        for s in scales:
            out_f, out_t = out_f * s[0], out_t * s[1]
        if (out_f, out_t) != (N_MELS, N_FRAMES):
            raise ConfigError(
                f"Generator: bottom={tuple(bottom)} with scales={scales} and "
                f"out_upsample={out_upsample} gives {out_f} x {out_t}, not {N_MELS} x {N_FRAMES}; "
                "change bottom, scales or out_upsample."
            )
        check_resample(resample, owner="Generator")
        if not noise >= 0.0:
            raise ConfigError(f"Generator: noise={noise!r} must be >= 0 (0: no noise input).")
        self.n_classes = n_classes
        self.latent_dim = z_dim
        self.bottom = tuple(bottom)
        self.out_upsample = out_upsample
        self.channels_last = channels_last
        self.n_chunks = len(scales) + 1
        chunk_dims = [len(c) for c in torch.tensor_split(torch.arange(z_dim), self.n_chunks)]
        chans = [ch * m for m in ch_mult]

        self.shared = nn.Embedding(n_classes, shared_dim)
        self.linear = maybe_sn(
            nn.Linear(chunk_dims[0], chans[0] * bottom[0] * bottom[1]), enabled=sn
        )
        self.blocks = nn.ModuleList(
            GBlock(
                in_ch=chans[i],
                out_ch=chans[i + 1],
                cond_dim=shared_dim + chunk_dims[i + 1],
                scale=scales[i],
                sn=sn,
                resample=resample,
            )
            for i in range(len(scales))
        )
        self.noise_shape = (chans[-1], out_f // out_upsample[0], out_t // out_upsample[1])
        self.noise_dim = self.noise_shape[0] * self.noise_shape[1] * self.noise_shape[2] if noise > 0 else 0
        self.noise_scale = nn.Parameter(torch.full((chans[-1],), float(noise))) if noise > 0 else None
        #: Size of the input vector ``z``: the latent proper plus the noise input (when on).
        self.z_dim = z_dim + self.noise_dim
        self.out_bn = nn.BatchNorm2d(chans[-1], eps=1e-4)
        self.out_conv = maybe_sn(
            nn.Conv2d(chans[-1], out_upsample[0] * out_upsample[1], 3, padding=1), enabled=sn
        )
        orthogonal_init(self)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Generate normalised log-mels.

        Parameters
        ----------
        z : torch.Tensor [shape=(N, z_dim)]
            Latents drawn from N(0, I).
        y : torch.Tensor [shape=(N,), dtype=int64]
            Class indices in ``[0, n_classes)``.

        Returns
        -------
        torch.Tensor [shape=(N, 1, 80, 344)]
            Log-mels in [-1, 1] (tanh output; -1 = silence).
        """
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise DataError(
                f"Generator.forward: z must have shape (N, {self.z_dim}), got {tuple(z.shape)}."
            )
        if y.shape != (z.shape[0],):
            raise DataError(
                f"Generator.forward: y must have shape ({z.shape[0]},) to match z, got "
                f"{tuple(y.shape)}."
            )
        chunks = torch.tensor_split(z[:, : self.latent_dim], self.n_chunks, dim=1)
        shared = self.shared(y)
        h = self.linear(chunks[0]).view(z.shape[0], -1, *self.bottom)
        if self.channels_last:
            h = h.contiguous(memory_format=torch.channels_last)
        for block, chunk in zip(self.blocks, chunks[1:]):
            h = block(h, torch.cat([shared, chunk], dim=1))
        if self.noise_scale is not None:
            noise = z[:, self.latent_dim:].reshape(z.shape[0], *self.noise_shape)
            h = h + self.noise_scale.view(1, -1, 1, 1) * noise
        h = self.out_conv(F.relu(self.out_bn(h)))
        return torch.tanh(depth_to_space(h, factors=self.out_upsample)).contiguous()


def depth_to_space(x: torch.Tensor, *, factors: tuple[int, int]) -> torch.Tensor:
    """Sub-pixel rearrangement: (N, a * b, H, W) -> (N, 1, H * a, W * b), ``factors`` = (a, b).

    Channel ``i * b + j`` becomes the sub-pixel at row offset ``i`` and column offset ``j``.
    """
    a, b = factors
    if (a, b) == (1, 1):
        return x
    n, _, h, w = x.shape
    x = x.reshape(n, a, b, h, w).permute(0, 3, 1, 4, 2)
    return x.reshape(n, 1, h * a, w * b)
