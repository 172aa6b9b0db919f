"""HiFi-GAN V1 generator (Kong et al. 2020), the vocoder of the DCASE 2023 Task 7 baseline (docs/reference.md, section 3).

Architecture (config V1): ``conv_pre`` (80 -> 512, kernel 7), four transposed-convolution upsamplers
(rates 8, 8, 2, 2; kernels 16, 16, 4, 4; channels halve each time), after each one the average of three
multi-receptive-field residual blocks of type "1" (kernels 3, 7, 11; dilations 1, 3, 5), leaky ReLU with
slope 0.1 inside, a final leaky ReLU with PyTorch's default slope 0.01, ``conv_post`` (-> 1, kernel 7) and
``tanh``. 256 output samples per mel frame.

On the CPU, :class:`HiFiGANBF16` runs the same network with its up-sampling and residual-block
convolutions in bfloat16 (the residual sums, the first and the last convolution and ``tanh`` in float32),
about twice as fast where the CPU has native bf16 arithmetic (AVX512-BF16 or AMX, see
:func:`native_bf16`); its output differs from float32 by a few 1e-2 at most (max abs sample) and its
re-synthesis L1 by far less (``benchmarks/bench_eval.py`` measures both).

The network is built without weight normalisation. Checkpoints written with weight normalisation (the
jik876 ``g_XXXXXXXX`` files: ``{'generator': state_dict}`` with ``weight_g`` / ``weight_v``; or the newer
``parametrizations.weight.original0/1`` keys) are folded into plain weights on load,
``w = g * v / ||v||`` with the norm over every dimension but the first, which is what
``remove_weight_norm`` does.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from occ.checkpoint import check_finite_state
from occ.errors import CheckpointError

__all__ = [
    "HiFiGANConfig", "ResBlock1", "HiFiGANGenerator", "HiFiGANBF16", "native_bf16", "fold_weight_norm",
    "load_generator_state",
]

LRELU_SLOPE = 0.1  # slope of the leaky ReLUs inside the generator


@dataclass(frozen=True)
class HiFiGANConfig:
    """Generator hyperparameters; the defaults are HiFi-GAN V1 (the DCASE baseline and universal checkpoints)."""

    n_mels: int = 80  # input mel bands
    upsample_rates: tuple[int, ...] = (8, 8, 2, 2)  # product = hop size (256 samples per frame)
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 4, 4)
    upsample_initial_channel: int = 512
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = field(
        default_factory=lambda: ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    )

    @property
    def hop(self) -> int:
        """Output samples per input frame."""
        out = 1
        for r in self.upsample_rates:
            out *= r
        return out


def _padding(kernel_size: int, dilation: int = 1) -> int:
    """'Same' padding of a stride-1 dilated convolution with an odd kernel."""
    return (kernel_size * dilation - dilation) // 2


class ResBlock1(nn.Module):
    """Residual block of type "1": three (dilated conv, conv) pairs, each with a skip connection.

    Parameters
    ----------
    channels : int
        Channels in and out.
    kernel_size : int
        Kernel size of every convolution in the block.
    dilations : tuple of int
        Dilations of the first convolution of each pair (the second is undilated).
    """

    def __init__(self, *, channels: int, kernel_size: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, 1, dilation=d, padding=_padding(kernel_size, d))
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, 1, dilation=1, padding=_padding(kernel_size, 1))
            for _ in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (N, channels, T) -> (N, channels, T)."""
        for c1, c2 in zip(self.convs1, self.convs2):
            xt = c1(F.leaky_relu(x, LRELU_SLOPE))
            xt = c2(F.leaky_relu(xt, LRELU_SLOPE))
            x = x + xt
        return x


class HiFiGANGenerator(nn.Module):
    """HiFi-GAN generator: log-mel (N, 80, T) -> waveform (N, 1, T * 256) in [-1, 1].

    Parameters
    ----------
    config : HiFiGANConfig
        Hyperparameters (V1 by default).
    """

    def __init__(self, *, config: HiFiGANConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or HiFiGANConfig()
        ch = config.upsample_initial_channel
        self.num_kernels = len(config.resblock_kernel_sizes)
        self.conv_pre = nn.Conv1d(config.n_mels, ch, 7, 1, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (u, k) in enumerate(zip(config.upsample_rates, config.upsample_kernel_sizes)):
            c_in, c_out = ch // (2**i), ch // (2 ** (i + 1))
            self.ups.append(nn.ConvTranspose1d(c_in, c_out, k, u, padding=(k - u) // 2))
            for ks, dil in zip(config.resblock_kernel_sizes, config.resblock_dilation_sizes):
                self.resblocks.append(ResBlock1(channels=c_out, kernel_size=ks, dilations=tuple(dil)))
        self.conv_post = nn.Conv1d(ch // (2 ** len(config.upsample_rates)), 1, 7, 1, padding=3)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """Synthesise audio.

        Parameters
        ----------
        mel : torch.Tensor [shape=(N, 80, T)]
            Natural-log mel magnitudes (docs/reference.md, section 2), not normalised.

        Returns
        -------
        torch.Tensor [shape=(N, 1, T * 256)]
            Waveform in [-1, 1] at 22,050 Hz.
        """
        x = self.conv_pre(mel)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            xs = self.resblocks[i * self.num_kernels](x)
            for j in range(1, self.num_kernels):
                xs = xs + self.resblocks[i * self.num_kernels + j](x)
            x = xs / self.num_kernels
        x = self.conv_post(F.leaky_relu(x))  # default slope 0.01, as in the original
        return torch.tanh(x)


def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX tiles), which makes :class:`HiFiGANBF16` pay.

    Without them oneDNN emulates bf16, slower than float32.
    """
    cpu = getattr(torch, "cpu", None)
    try:
        return bool(cpu._is_avx512_bf16_supported() or cpu._is_amx_tile_supported())
    except AttributeError:  # a torch without these probes
        return False


class HiFiGANBF16(nn.Module):
    """A HiFi-GAN generator with its up-sampling and residual-block convolutions in bfloat16 (CPU inference).

    Those convolutions hold all but about 1 % of the arithmetic. Their inputs are cast to bf16 and
    their outputs back to float32, so the residual sums, the averages of the three blocks, ``conv_pre``,
    ``conv_post`` and ``tanh`` stay in float32 (a bf16 waveform would carry only 8 significant bits).

    Parameters
    ----------
    generator : HiFiGANGenerator
        The float32 network; its weights are copied (later changes to it are not seen).
    dtype : torch.dtype
        The low precision (bfloat16).
    """

    def __init__(self, generator: HiFiGANGenerator, *, dtype: torch.dtype = torch.bfloat16) -> None:
        super().__init__()
        self.dtype = dtype
        self.num_kernels = generator.num_kernels
        self.conv_pre = copy.deepcopy(generator.conv_pre).float()
        self.ups = copy.deepcopy(generator.ups).to(dtype)
        self.resblocks = copy.deepcopy(generator.resblocks).to(dtype)
        self.conv_post = copy.deepcopy(generator.conv_post).float()
        self.eval().requires_grad_(False)

    def _resblock(self, block: ResBlock1, x: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(block.convs1, block.convs2):
            xt = c1(F.leaky_relu(x, LRELU_SLOPE).to(self.dtype))
            xt = c2(F.leaky_relu(xt, LRELU_SLOPE))
            x = x + xt.float()
        return x

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """As :meth:`HiFiGANGenerator.forward`: log-mel (N, 80, T) -> waveform (N, 1, T * 256), float32."""
        x = self.conv_pre(mel.float())
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE).to(self.dtype)).float()
            xs = self._resblock(self.resblocks[i * self.num_kernels], x)
            for j in range(1, self.num_kernels):
                xs = xs + self._resblock(self.resblocks[i * self.num_kernels + j], x)
            x = xs / self.num_kernels
        x = self.conv_post(F.leaky_relu(x))
        return torch.tanh(x)


def fold_weight_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace weight-normalised parameter pairs by plain weights.

    ``<prefix>.weight_g`` / ``<prefix>.weight_v`` (``torch.nn.utils.weight_norm``) and
    ``<prefix>.parametrizations.weight.original0`` / ``original1`` (``torch.nn.utils.parametrizations``)
    become ``<prefix>.weight = g * v / ||v||``, the norm taken over every dimension but the first.
    Other keys are kept.

    Parameters
    ----------
    state : dict of str to torch.Tensor
        A state dict.

    Returns
    -------
    dict of str to torch.Tensor
        A new state dict without weight-norm keys.
    """
    pairs = {
        ".weight_g": ".weight_v",
        ".parametrizations.weight.original0": ".parametrizations.weight.original1",
    }
    out: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for key, value in state.items():
        for g_suffix, v_suffix in pairs.items():
            if key.endswith(g_suffix):
                prefix = key[: -len(g_suffix)]
                v_key = prefix + v_suffix
                if v_key not in state:
                    break
                g, v = value.float(), state[v_key].float()
                dims = tuple(range(1, v.ndim))
                out[prefix + ".weight"] = g * v / v.norm(dim=dims, keepdim=True)
                used.update((key, v_key))
                break
    for key, value in state.items():
        if key not in used and not key.endswith(tuple(pairs.values())):
            out[key] = value
    return out


def load_generator_state(model: HiFiGANGenerator, state: dict[str, torch.Tensor], *, source: str) -> None:
    """Load a (possibly weight-normalised) generator state dict, checking every key and shape.

    Parameters
    ----------
    model : HiFiGANGenerator
        The network to fill.
    state : dict of str to torch.Tensor
        The checkpoint's generator state dict.
    source : str
        Where the state dict comes from, for error messages.

    Raises
    ------
    CheckpointError
        Keys are missing or unexpected, or shapes differ (the message lists them): the checkpoint
        was written by another architecture or configuration.
    """
    plain = fold_weight_norm(state)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(plain))
    unexpected = sorted(set(plain) - set(expected))
    mismatched = [
        f"{k}: checkpoint {tuple(plain[k].shape)} vs HiFi-GAN V1 {tuple(expected[k].shape)}"
        for k in expected
        if k in plain and tuple(plain[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or mismatched:
        def _short(items: list[str]) -> str:
            return ", ".join(items[:8]) + (f" ... ({len(items)} in all)" if len(items) > 8 else "")

        parts = []
        if missing:
            parts.append(f"missing keys: {_short(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_short(unexpected)}")
        if mismatched:
            parts.append(f"shape mismatches: {_short(mismatched)}")
        raise CheckpointError(
            f"{source} is not a HiFi-GAN V1 generator checkpoint ({'; '.join(parts)}). "
            "Use a jik876/hifi-gan V1 generator file (g_XXXXXXXX with a 'generator' entry), "
            "e.g. the DCASE baseline g_00935000, or the default 'universal' checkpoint."
        )
    check_finite_state(plain, where=source, advice="the file is damaged: download it again, or use the default "
                       "'universal' checkpoint")
    model.load_state_dict({k: plain[k].to(expected[k].dtype) for k in expected}, strict=True)
