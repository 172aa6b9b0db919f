"""Audio front end: clip loading, the log-mel features the GAN generates, and WAV writing (atomic, :func:`write_pcm16`).

The features are the DCASE 2023 Task 7 baseline / HiFi-GAN mel spectrogram (docs/reference.md, section 2):
reflect padding of (N_FFT - HOP) / 2 = 384 samples on each side, STFT with ``center=False`` and a
periodic Hann window of 1024 samples, hop 256, magnitude ``sqrt(re^2 + im^2 + 1e-9)`` (not power),
Slaney mel filterbank (80 bands, 0-8000 Hz, the ``librosa.filters.mel`` defaults), then
``log(clamp(mel, 1e-5))`` with the natural log. A 4-s clip of 88,200 samples gives 80 x 344.
"""

from __future__ import annotations

import io
import math
import os
import struct
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from scipy.signal import resample_poly

from occ.atomic import atomic_open
from occ.errors import DataError

SR = 22050  # sampling rate, Hz
N_SAMPLES = 88200  # samples per clip (4 s)
N_FFT = 1024  # FFT size, samples
HOP = 256  # hop size, samples
WIN = 1024  # window length, samples (periodic Hann)
N_MELS = 80  # mel bands
FMIN = 0.0  # lowest mel filter edge, Hz
FMAX = 8000.0  # highest mel filter edge, Hz
N_FRAMES = 344  # frames of a 4-s clip: 1 + (N_SAMPLES + 2 * PAD - N_FFT) // HOP
LOG_FLOOR = 1e-5  # mel energies are clamped here before the log; silence = ln(1e-5) = -11.513
MAG_EPS = 1e-9  # added to re^2 + im^2 inside the square root
PAD = (N_FFT - HOP) // 2  # reflect padding on each side, samples (384)
FRONTEND_VERSION = "hifigan-mel-v1"  # bump when the feature computation changes

__all__ = [
    "SR", "N_SAMPLES", "N_FFT", "HOP", "WIN", "N_MELS", "FMIN", "FMAX", "N_FRAMES", "LOG_FLOOR",
    "FRONTEND_VERSION", "frontend_settings", "n_frames", "mel_filterbank", "log_mel",
    "load_clip", "fit_length", "write_pcm16", "write_wav",
]


def frontend_settings() -> dict:
    """Every constant the features depend on, for cache keys.

    Returns
    -------
    dict
        ``{"SR", "N_FFT", "HOP", "WIN", "N_MELS", "FMIN", "FMAX", "LOG_FLOOR", "N_SAMPLES",
        "MAG_EPS", "version"}``.
    """
    return {
        "SR": SR, "N_FFT": N_FFT, "HOP": HOP, "WIN": WIN, "N_MELS": N_MELS, "FMIN": FMIN,
        "FMAX": FMAX, "LOG_FLOOR": LOG_FLOOR, "N_SAMPLES": N_SAMPLES, "MAG_EPS": MAG_EPS,
        "version": FRONTEND_VERSION,
    }


def n_frames(n_samples: int) -> int:
    """Number of log-mel frames for a signal of ``n_samples`` samples: ``1 + (n + 768 - 1024) // 256``."""
    return 1 + (n_samples + 2 * PAD - N_FFT) // HOP


# ----------------------------------------------------------------------------- mel filterbank
# Slaney's mel scale: linear (_F_SP Hz per mel) below _MIN_LOG_HZ, logarithmic (_LOGSTEP per mel) above.
_F_SP = 200.0 / 3.0
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = math.log(6.4) / 27.0


def _hz_to_mel_slaney(f: np.ndarray) -> np.ndarray:
    """Slaney's auditory-toolbox mel scale: linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    lin = f / _F_SP
    with np.errstate(divide="ignore"):
        log = _MIN_LOG_MEL + np.log(np.maximum(f, 1e-12) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(f >= _MIN_LOG_HZ, log, lin)


def _mel_to_hz_slaney(m: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_hz_to_mel_slaney`."""
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= _MIN_LOG_MEL, _MIN_LOG_HZ * np.exp(_LOGSTEP * (m - _MIN_LOG_MEL)), _F_SP * m)


def mel_filterbank(
    *, sr: int = SR, n_fft: int = N_FFT, n_mels: int = N_MELS, fmin: float = FMIN, fmax: float = FMAX
) -> np.ndarray:
    """Slaney-style, area-normalised triangular mel filterbank (the ``librosa.filters.mel`` default).

    Parameters
    ----------
    sr : int
        Sampling rate in Hz.
    n_fft : int
        FFT size; the filterbank acts on the ``n_fft // 2 + 1`` non-negative frequency bins.
    n_mels : int
        Number of mel bands.
    fmin, fmax : float
        Lowest and highest filter edge in Hz.

    Returns
    -------
    np.ndarray [shape=(n_mels, n_fft // 2 + 1), float64]
        Filter weights; row ``m`` is triangle ``m`` scaled by ``2 / (f_{m+2} - f_m)``.
    """
    fft_freqs = np.linspace(0.0, sr / 2.0, n_fft // 2 + 1)
    mel_pts = np.linspace(_hz_to_mel_slaney(fmin), _hz_to_mel_slaney(fmax), n_mels + 2)
    hz_pts = _mel_to_hz_slaney(mel_pts)
    widths = np.diff(hz_pts)
    ramps = hz_pts[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (hz_pts[2:] - hz_pts[:-2]))[:, None]
    return weights


_CACHE: dict[tuple[str, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}


def _window_and_filters(device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Periodic Hann window (N_FFT,) and mel filterbank (N_MELS, N_FFT // 2 + 1), cached per device and dtype."""
    key = (str(device), dtype)
    if key not in _CACHE:
        window = torch.hann_window(WIN, periodic=True, dtype=torch.float64)
        filters = torch.from_numpy(mel_filterbank())
        _CACHE[key] = (window.to(device=device, dtype=dtype), filters.to(device=device, dtype=dtype))
    return _CACHE[key]


def log_mel(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Log-mel spectrogram of the DCASE baseline / HiFi-GAN front end (docs/reference.md, section 2).

    Parameters
    ----------
    x : np.ndarray or torch.Tensor [shape=(..., n_samples)]
        Waveform(s) at 22,050 Hz, amplitude in [-1, 1]; any number of leading batch dimensions;
        ``n_samples > 384`` (the reflect padding needs more samples than it adds). A CUDA tensor is
        processed on its GPU. float64 input is computed in float64.

    Returns
    -------
    torch.Tensor [shape=(..., 80, n_frames), float32]
        Natural-log mel energies, floored at ``ln(1e-5)``; ``n_frames = 1 + (n_samples + 768 - 1024) // 256``
        (344 for 88,200 samples). On the input's device.
    """
    t = torch.as_tensor(x)
    if t.ndim == 0:
        raise DataError("log_mel: expected a waveform of shape (..., n_samples), got a scalar")
    if not torch.is_floating_point(t):
        t = t.to(torch.float32)
    compute_dtype = torch.float64 if t.dtype == torch.float64 else torch.float32
    t = t.to(compute_dtype)
    n = t.shape[-1]
    if n <= PAD:
        raise DataError(
            f"log_mel: the waveform has {n} samples; at least {PAD + 1} are needed "
            f"(reflect padding of {PAD} samples); zero-pad short clips to {N_SAMPLES} samples first"
        )
    lead = t.shape[:-1]
    flat = t.reshape(-1, 1, n)
    padded = torch.nn.functional.pad(flat, (PAD, PAD), mode="reflect").squeeze(1)
    window, filters = _window_and_filters(t.device, compute_dtype)
    spec = torch.stft(
        padded, n_fft=N_FFT, hop_length=HOP, win_length=WIN, window=window, center=False,
        normalized=False, onesided=True, return_complex=True,
    )  # (B, 513, frames)
    mag = torch.sqrt(spec.real.square() + spec.imag.square() + MAG_EPS)
    mel = torch.matmul(filters, mag)  # (B, 80, frames)
    out = torch.log(torch.clamp(mel, min=LOG_FLOOR)).to(torch.float32)
    return out.reshape(*lead, N_MELS, out.shape[-1])


# ----------------------------------------------------------------------------- loading and writing
def fit_length(x: np.ndarray, n: int = N_SAMPLES) -> np.ndarray:
    """Cut ``x`` (shape (..., samples)) to ``n`` samples or zero-pad it at the end."""
    if x.shape[-1] >= n:
        return x[..., :n]
    pad = [(0, 0)] * (x.ndim - 1) + [(0, n - x.shape[-1])]
    return np.pad(x, pad)


def wav_shortfall(path: str | os.PathLike) -> tuple[int, int] | None:
    """For a RIFF/WAVE file cut short (header intact, data missing): ``(declared, present)`` data bytes.

    An interrupted download or copy keeps the header, which still announces the full ``data`` chunk;
    libsndfile then reads what is there, and the rest of the clip would be padded with zeros. Returns
    ``None`` for a complete WAV, a WAV whose writer left the size open (0 or 0xFFFFFFFF, as streaming
    writers do), or a file that is not RIFF/WAVE.
    """
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            head = fh.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            offset = 12
            while offset + 8 <= size:
                fh.seek(offset)
                chunk_id, chunk_size = struct.unpack("<4sI", fh.read(8))
                if chunk_id == b"data":
                    if chunk_size in (0, 0xFFFFFFFF):
                        return None
                    present = size - offset - 8
                    return (chunk_size, present) if present < chunk_size else None
                offset += 8 + chunk_size + (chunk_size & 1)
    except OSError:
        return None
    return None


def _open_error(path: Path) -> OSError | None:
    """Why the operating system will not open ``path`` for reading (permissions, a folder), or ``None``."""
    try:
        with open(path, "rb") as fh:
            fh.read(1)
    except OSError as exc:
        return exc
    return None


def load_clip(path: str | os.PathLike, *, n_samples: int = N_SAMPLES) -> np.ndarray:
    """Read one audio file as the model sees it: float32, mono, 22,050 Hz, exactly ``n_samples`` samples.

    Any format soundfile reads (WAV, FLAC, OGG, AIFF, MP3 with libsndfile >= 1.1). Integer PCM is scaled
    by 1 / 2**(bits-1) (int16 / 32768, as the DCASE baseline), without peak normalisation. Stereo
    (and more channels) are averaged; other sampling rates are resampled with a polyphase filter
    (``scipy.signal.resample_poly`` at the exact rational ratio); longer clips are cut, shorter ones
    zero-padded at the end.

    Parameters
    ----------
    path : path-like
        Audio file.
    n_samples : int
        Output length in samples (88,200 = 4 s by default).

    Returns
    -------
    np.ndarray [shape=(n_samples,), float32]

    Raises
    ------
    DataError
        The file cannot be read (missing, empty, corrupt, unknown format), is a WAV cut short (its
        header announces more data than the file holds), holds no samples, or holds NaN or infinite
        samples. The message names the file.
    """
    path = Path(path)
    short = wav_shortfall(path)
    if short is not None:
        declared, present = short
        raise DataError(f"audio file {path} is cut short: its header announces {declared} bytes of audio, the file "
                        f"holds {max(present, 0)} (an interrupted download or copy?); replace it")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError, TypeError...
        cause = _open_error(path)  # libsndfile says only "System error" when the system will not open the file
        if cause is None:
            what = "is empty (0 bytes)" if path.stat().st_size == 0 else f"cannot be read as audio ({exc})"
        elif isinstance(cause, FileNotFoundError):
            what = "does not exist"
        else:
            fix = ("it is a folder, not a file" if isinstance(cause, IsADirectoryError)
                   else "fix its permissions (or its folder's), or remove or replace it")
            raise DataError(f"audio file {path} cannot be opened ({cause.strerror}): {fix}") from None
        raise DataError(f"audio file {path} {what}; remove or replace it") from None
    if data.shape[0] == 0:
        raise DataError(f"audio file {path} holds no samples (zero-length audio); remove or replace it")
    if not np.isfinite(data).all():
        raise DataError(f"audio file {path} holds NaN or infinite samples; remove or replace it")
    x = data.mean(axis=1, dtype=np.float64) if data.shape[1] > 1 else data[:, 0].astype(np.float64)
    if sr != SR:
        ratio = Fraction(SR, int(sr))
        # only the part that survives the cut is resampled, plus a margin wider than the filter's
        # half-length (10 * max(1, sr / SR) input samples for resample_poly's default window)
        keep = min(x.shape[0], int(math.ceil(n_samples * sr / SR)) + 16 * int(math.ceil(sr / SR)) + 64)
        x = resample_poly(x[:keep], ratio.numerator, ratio.denominator)
    return fit_length(x, n_samples).astype(np.float32)


def write_pcm16(path: str | os.PathLike, samples: np.ndarray, sr: int) -> Path:
    """Write samples as a mono 16-bit PCM WAV file, atomically: every WAV the package writes goes through here.

    The file is encoded in memory (``soundfile``, the bytes it writes to a file), then written through
    :func:`occ.atomic.atomic_open`, so a full disk or a folder that is not writable raises
    :class:`~occ.errors.WriteError` naming ``path``, and no partial file is left.

    Parameters
    ----------
    path : path-like
        Destination; parent folders are created.
    samples : np.ndarray [shape=(n_samples,)]
        int16 sample values, or floats in [-1, 1] (converted by libsndfile).
    sr : int
        Sampling rate in Hz.

    Returns
    -------
    Path
        ``path``.
    """
    encoded = io.BytesIO()
    sf.write(encoded, samples, sr, subtype="PCM_16", format="WAV")
    with atomic_open(path, fsync=False) as fh:
        fh.write(encoded.getbuffer())
    return Path(path)


def write_wav(path: str | os.PathLike, x: np.ndarray | torch.Tensor, *, sr: int = SR) -> Path:
    """Write a mono 16-bit PCM WAV atomically (:func:`write_pcm16`).

    Parameters
    ----------
    path : path-like
        Destination; parent folders are created.
    x : np.ndarray or torch.Tensor [shape=(n_samples,)] (or (1, n_samples))
        Waveform in [-1, 1]; values outside are clipped; NaN is written as 0.
    sr : int
        Sampling rate in Hz (22,050).

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2 and 1 in x.shape:
        x = x.reshape(-1)
    if x.ndim != 1:
        raise DataError(f"write_wav({path}): expected a mono waveform of shape (n_samples,), got {x.shape}")
    x = np.clip(np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)
    return write_pcm16(path, x, sr)
