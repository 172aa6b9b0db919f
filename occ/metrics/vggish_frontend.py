"""The VGGish front end of the DCASE 2023 Task 7 evaluation, with its quirks (the network is :mod:`occ.metrics.vggish`).

:func:`dcase_vggish_examples`: raw int16 sample values, peak normalisation by the positive maximum
(``x / max(0.1, max(x))``), no resampling (22,050 Hz samples are treated as 16 kHz), 16,000-sample windows
with a step of 8,000 (10 per 4-s clip), VGGish log-mel (25 ms / 10 ms at "16 kHz", periodic Hann,
512-point FFT magnitude, 64 HTK mel bands 125-7500 Hz with the DC bin zeroed (:func:`vggish_mel_matrix`),
``log(mel + 0.01)``), one 96 x 64 example per window.
"""

from __future__ import annotations

import numpy as np

from occ.errors import DataError

__all__ = ["vggish_mel_matrix", "dcase_vggish_examples"]

VGGISH_SR = 16000  # the rate VGGish assumes (DCASE feeds 22,050 Hz samples without resampling)
WINDOW = 16000  # samples per embedding window
STEP = 8000  # samples between windows
STFT_WIN = 400  # 25 ms at 16 kHz
STFT_HOP = 160  # 10 ms at 16 kHz
FFT = 512
N_BANDS = 64
EXAMPLE_FRAMES = 96
_MEL: np.ndarray | None = None


def vggish_mel_matrix() -> np.ndarray:
    """VGGish's mel matrix (``mel_features.spectrogram_to_mel_matrix``): HTK ``1127 ln(1 + f / 700)``,
    64 bands from 125 to 7500 Hz over the 257 bins of a 512-point FFT at 16 kHz, DC row zeroed.

    Returns
    -------
    np.ndarray [shape=(257, 64), float64]
        Post-multiplies magnitude frames (frames x bins).
    """
    global _MEL
    if _MEL is None:
        def mel(f):
            return 1127.0 * np.log(1.0 + np.asarray(f, np.float64) / 700.0)

        bins_mel = mel(np.linspace(0.0, VGGISH_SR / 2.0, FFT // 2 + 1))
        edges = np.linspace(mel(125.0), mel(7500.0), N_BANDS + 2)
        lower = (bins_mel[:, None] - edges[None, :-2]) / (edges[1:-1] - edges[:-2])[None, :]
        upper = (edges[None, 2:] - bins_mel[:, None]) / (edges[2:] - edges[1:-1])[None, :]
        m = np.maximum(0.0, np.minimum(lower, upper))
        m[0, :] = 0.0
        _MEL = m
    return _MEL


def dcase_vggish_examples(samples: np.ndarray) -> np.ndarray:
    """VGGish input examples of clips, as the DCASE 2023 evaluation computed them.

    Parameters
    ----------
    samples : np.ndarray [shape=(n_samples,) or (N, n_samples)]
        Raw sample values as ``scipy.io.wavfile`` reads a 16-bit file (int16 values, NOT scaled to [-1, 1]);
        float input is used as is. At least 16,000 samples.

    Returns
    -------
    np.ndarray [shape=(n_windows, 96, 64) or (N, n_windows, 96, 64), float32]
        Log-mel examples; ``n_windows = 1 + (n_samples - 16000) // 8000`` (10 for 88,200 samples).
    """
    x = np.asarray(samples, dtype=np.float64)
    single = x.ndim == 1
    if single:
        x = x[None]
    if x.ndim != 2 or x.shape[1] < WINDOW:
        raise DataError(f"dcase_vggish_examples: expected (n_samples,) or (N, n_samples) with >= {WINDOW} samples, got {x.shape}")
    x = x / np.maximum(0.1, x.max(axis=1, keepdims=True))  # positive max, as the DCASE code
    n_win = 1 + (x.shape[1] - WINDOW) // STEP
    windows = np.lib.stride_tricks.sliding_window_view(x, WINDOW, axis=1)[:, ::STEP][:, :n_win]  # (N, W, 16000)
    n_frames = 1 + (WINDOW - STFT_WIN) // STFT_HOP  # 98
    frames = np.lib.stride_tricks.sliding_window_view(windows, STFT_WIN, axis=2)[:, :, ::STFT_HOP][:, :, :n_frames]
    hann = 0.5 - 0.5 * np.cos(2.0 * np.pi / STFT_WIN * np.arange(STFT_WIN))  # periodic
    mag = np.abs(np.fft.rfft(frames * hann, FFT, axis=-1))  # (N, W, 98, 257)
    log_mel = np.log(mag @ vggish_mel_matrix() + 0.01)  # (N, W, 98, 64)
    n_ex = 1 + (n_frames - EXAMPLE_FRAMES) // EXAMPLE_FRAMES  # 1 example of 96 frames per window
    out = log_mel[:, :, : n_ex * EXAMPLE_FRAMES].reshape(x.shape[0], n_win * n_ex, EXAMPLE_FRAMES, N_BANDS)
    out = out.astype(np.float32)
    return out[0] if single else out
