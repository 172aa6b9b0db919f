"""aiSFX: a pretrained sound-effects embedding that can be had offline (Ma & Lerch, ISMIR 2022; docs/reference.md, section 5).

The weights (CC BY 4.0) ship inside the PyPI wheel ``aisfx==0.1.2`` as ``aisfx/models/checkpoint.pth``;
the wheel pins numpy 1.23.0 (no build for Python 3.11), librosa 0.9.2, tqdm 4.62.3 and argparse 1.1, so it cannot be
installed beside this project: ``occ fetch-weights`` (the README's set-up line runs it) fetches it with
``python -m pip download --no-deps aisfx==0.1.2`` into ``$OCC_CACHE`` (default ``~/.cache/occ``) and the
weights are read from the zip. The network and front end here are written from the wheel's facts:

* Front end (``aisfx.inference`` constants and ``spectrogram_librosa.py``): audio at 44,100 Hz (we
  resample 22,050 -> 44,100 with ``torchaudio.functional.resample``), peak-normalised by the absolute
  maximum, power STFT n_fft = window = 2048 (Hann), hop 1024, centred with zero padding, 96 HTK mel bands
  0-22,050 Hz with unit-sum (L1) filters, ``log10(10000 * mel + 1)``, divided by 9.457798957824707 (the
  'original' min-max normalisation, min 0), frames x bands.
* Blocks of 100 frames (about 2.3 s) with a hop of 50 (half a block, the paper's 1-s hop), the last
  partial block zero-padded: 3 blocks per 4-s clip.
* Network (``EmbeddingNet('max', 3, 1, 64)``): four conv blocks (two 3x3 conv + BatchNorm + ReLU each;
  64, 128, 256, 512 channels; 2x2 max-pool after the first three), mean over frequency, max over time:
  a 512-d embedding per block. The classification heads of the checkpoint are not used.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from occ.atomic import make_folder
from occ.checkpoint import check_finite_state
from occ.errors import CheckpointError, WeightsNotFoundError

__all__ = [
    "AISFX_VERSION", "AISFX_SR", "cache_dir", "ensure_wheel", "AisfxNet", "aisfx_front_end", "aisfx_blocks",
    "load_aisfx",
]

AISFX_VERSION = "0.1.2"
AISFX_SR = 44100  # Hz
N_FFT = 2048
HOP = 1024
N_BANDS = 96
LOG_MAX = 9.457798957824707  # 'original' normalisation: (spec - 0) / (9.4578 - 0)
BLOCK = 100  # frames per embedding block
BLOCK_HOP = 50  # frames between blocks
CHECKPOINT_IN_WHEEL = "aisfx/models/checkpoint.pth"


def cache_dir() -> Path:
    """Wheel cache: ``$OCC_CACHE`` or ``~/.cache/occ``."""
    return Path(os.environ.get("OCC_CACHE") or Path.home() / ".cache" / "occ")


def _manual_command(folder: Path) -> str:
    return f"{sys.executable} -m pip download --no-deps aisfx=={AISFX_VERSION} -d {folder}"


def ensure_wheel(*, cache: str | os.PathLike | None = None, download: bool = True, timeout: float = 300.0) -> Path:
    """Path of the cached ``aisfx-0.1.2`` wheel, downloading it with pip if needed.

    Parameters
    ----------
    cache : path-like, optional
        Folder of the wheel (default :func:`cache_dir`).
    download : bool
        Run ``pip download`` when the wheel is not cached.
    timeout : float
        Limit of the pip run, s.

    Returns
    -------
    Path

    Raises
    ------
    WeightsNotFoundError
        The wheel is not cached and could not be downloaded; the message gives the manual command.
    """
    folder = Path(cache) if cache is not None else cache_dir()
    found = sorted(folder.glob(f"aisfx-{AISFX_VERSION}-*.whl")) if folder.is_dir() else []
    if found:
        return found[0]
    hint = (f"run `occ fetch-weights` (the set-up's last step: it fetches the wheel into {cache_dir()}), or "
            f"`{_manual_command(folder)}`, or set OCC_CACHE to a folder holding the wheel")
    if not download:
        raise WeightsNotFoundError(f"the aisfx {AISFX_VERSION} wheel is not in {folder} and downloading is off; {hint}")
    make_folder(folder)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q",
           f"aisfx=={AISFX_VERSION}", "-d", str(folder)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise WeightsNotFoundError(f"pip download of aisfx failed ({type(exc).__name__}); {hint}") from None
    found = sorted(folder.glob(f"aisfx-{AISFX_VERSION}-*.whl"))
    if res.returncode != 0 or not found:
        said = " ".join(res.stderr.split())[-300:]  # pip's last words, on one line
        raise WeightsNotFoundError(f"pip download of aisfx failed ({said}); {hint}")
    return found[0]


class _ConvBlock(nn.Module):
    """Two 3x3 conv (no bias) + BatchNorm + ReLU, then a max-pool."""

    def __init__(self, *, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.bn2 = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor, *, pool: int) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.max_pool2d(x, pool) if pool > 1 else x


class AisfxNet(nn.Module):
    """The aiSFX embedding CNN: (N, 100, 96) normalised log-mel blocks -> (N, 512)."""

    def __init__(self, *, width: int = 64) -> None:
        super().__init__()
        self.conv_block1 = _ConvBlock(c_in=1, c_out=width)
        self.conv_block2 = _ConvBlock(c_in=width, c_out=2 * width)
        self.conv_block3 = _ConvBlock(c_in=2 * width, c_out=4 * width)
        self.conv_block4 = _ConvBlock(c_in=4 * width, c_out=8 * width)
        self.dim = 8 * width

    def forward(self, blocks: torch.Tensor) -> torch.Tensor:
        """``blocks`` (N, frames, bands) -> embeddings (N, 512): mean over bands, max over frames."""
        x = blocks[:, None].contiguous(memory_format=torch.channels_last)  # ~20 % faster on CPU
        x = self.conv_block1(x, pool=2)
        x = self.conv_block2(x, pool=2)
        x = self.conv_block3(x, pool=2)
        x = self.conv_block4(x, pool=1)
        return x.mean(dim=3).amax(dim=2)


_FB: dict[tuple[str, torch.dtype], torch.Tensor] = {}


def _filterbank(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """HTK mel filters, unit sum (librosa ``norm=1``), (96, 1025)."""
    key = (str(device), dtype)
    if key not in _FB:
        import librosa

        fb = librosa.filters.mel(sr=AISFX_SR, n_fft=N_FFT, n_mels=N_BANDS, fmin=0.0, fmax=AISFX_SR / 2, htk=True, norm=1.0)
        _FB[key] = torch.from_numpy(fb).to(device=device, dtype=dtype)
    return _FB[key]


def aisfx_front_end(wavs: torch.Tensor, *, sr: int = 22050) -> torch.Tensor:
    """aiSFX input features.

    Parameters
    ----------
    wavs : torch.Tensor [shape=(N, n_samples)]
        Waveforms at ``sr`` Hz (any scale: they are peak-normalised).
    sr : int
        Their sampling rate; resampled to 44,100 Hz when different.

    Returns
    -------
    torch.Tensor [shape=(N, frames, 96), float32]
        ``log10(1e4 * mel + 1) / 9.4578``; ``frames = 1 + n_44k // 1024`` (173 for 4 s).
    """
    import torchaudio

    x = wavs.float()
    if sr != AISFX_SR:
        x = torchaudio.functional.resample(x, sr, AISFX_SR)
    peak = x.abs().amax(dim=-1, keepdim=True)
    x = x / torch.where(peak > 0, peak, torch.ones_like(peak))
    window = torch.hann_window(N_FFT, periodic=True, device=x.device)
    spec = torch.stft(x, N_FFT, HOP, N_FFT, window=window, center=True, pad_mode="constant", return_complex=True)
    power = spec.real.square() + spec.imag.square()  # (N, 1025, frames)
    mel = _filterbank(x.device, x.dtype) @ power
    return (torch.log10(mel * 1e4 + 1.0) / LOG_MAX).transpose(1, 2).contiguous()


def aisfx_blocks(features: torch.Tensor, *, hop: int = BLOCK_HOP) -> torch.Tensor:
    """Cut features into blocks of 100 frames, hop 50, last partial block zero-padded.

    Parameters
    ----------
    features : torch.Tensor [shape=(N, frames, 96)]
    hop : int
        Frames between blocks (50: the paper's 1-s hop, 3 blocks per 4-s clip; 100: no overlap,
        2 blocks, a third less compute).

    Returns
    -------
    torch.Tensor [shape=(N, n_blocks, 100, 96)]
        ``n_blocks = max(1, ceil((frames - 100) / hop) + 1)`` (3 for 173 frames and hop 50).
    """
    n_frames = features.shape[1]
    n_blocks = max(1, int(np.ceil((n_frames - BLOCK) / hop)) + 1)
    need = (n_blocks - 1) * hop + BLOCK
    f = F.pad(features, (0, 0, 0, max(0, need - n_frames)))
    return f.unfold(1, BLOCK, hop).transpose(2, 3)[:, :n_blocks]


def load_aisfx(*, device: str | torch.device = "cpu", cache: str | os.PathLike | None = None, download: bool = True) -> AisfxNet:
    """The pretrained aiSFX embedding network (eval mode), weights read from the cached wheel.

    Raises
    ------
    WeightsNotFoundError
        The wheel cannot be obtained (the message gives the manual pip command).
    CheckpointError
        The wheel holds no readable checkpoint with the expected keys.
    """
    wheel = ensure_wheel(cache=cache, download=download)
    try:
        with zipfile.ZipFile(wheel) as z:
            raw = z.read(CHECKPOINT_IN_WHEEL)
        safe = [(np._core.multiarray.scalar, "numpy.core.multiarray.scalar"), np.dtype, np.dtypes.Int64DType]
        with torch.serialization.safe_globals(safe):
            ckpt = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
        state = ckpt[0] if isinstance(ckpt, (tuple, list)) else ckpt
        state = {k[len("embedding_net."):]: v for k, v in state.items() if k.startswith("embedding_net.")}
    except Exception as exc:
        raise CheckpointError(
            f"{wheel} holds no readable {CHECKPOINT_IN_WHEEL} ({type(exc).__name__}: {exc}); delete the wheel and "
            f"run `{_manual_command(wheel.parent)}`"
        ) from None
    check_finite_state(state, where=f"{wheel}: the aisfx checkpoint",
                       advice=f"the wheel is damaged: delete it and run `{_manual_command(wheel.parent)}`")
    model = AisfxNet()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{wheel}: the aisfx checkpoint does not match the network ({exc})") from None
    return model.to(device=device, memory_format=torch.channels_last).eval().requires_grad_(False)
