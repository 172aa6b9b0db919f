"""The building blocks of the procedural foley synthesiser (:mod:`occ.data.synth`): filters, resonators, coloured
and smooth noises, impulse and burst tracks, reverb, harmonic and formant sources, and the finish every clip gets
(DC removed, a background below the foreground, a random peak level). Each works on whole 4-s tracks at once.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import butter, fftconvolve, lfilter, sosfilt

from occ.data.audio import SR

__all__ = ["lerp", "band", "lowpass", "highpass", "resonator", "colored_noise", "smooth_noise", "impulses", "burst_track", "place", "reverb", "harmonic", "formant_harmonics", "formant_gain", "finish"]


def lerp(a: float, b: float, w: float) -> float:
    return a + (b - a) * w


def band(x: np.ndarray, lo: float, hi: float, *, order: int = 2) -> np.ndarray:
    """Butterworth band-pass (``lo``..``hi`` Hz); degenerates to a low- or high-pass at the edges."""
    nyq = SR / 2
    lo = max(lo, 0.0)
    hi = min(hi, nyq * 0.95)
    if lo <= 20.0:
        sos = butter(order, hi, btype="lowpass", fs=SR, output="sos")
    elif hi >= nyq * 0.95:
        sos = butter(order, lo, btype="highpass", fs=SR, output="sos")
    else:
        sos = butter(order, [lo, max(hi, lo * 1.05)], btype="bandpass", fs=SR, output="sos")
    return sosfilt(sos, x, axis=-1)


def lowpass(x: np.ndarray, fc: float, *, order: int = 2) -> np.ndarray:
    return sosfilt(butter(order, min(fc, SR * 0.47), btype="lowpass", fs=SR, output="sos"), x, axis=-1)


def highpass(x: np.ndarray, fc: float, *, order: int = 2) -> np.ndarray:
    return sosfilt(butter(order, fc, btype="highpass", fs=SR, output="sos"), x, axis=-1)


def resonator(x: np.ndarray, freq: float, tau: float) -> np.ndarray:
    """Two-pole resonator: an impulse becomes ``sin(2 pi freq t) exp(-t / tau)`` (peak gain about 1)."""
    r = math.exp(-1.0 / (tau * SR))
    w = 2 * math.pi * min(freq, SR * 0.45) / SR
    return lfilter([math.sin(w)], [1.0, -2 * r * math.cos(w), r * r], x)


def colored_noise(rng: np.random.Generator, n: int, slope: float) -> np.ndarray:
    """Gaussian noise with power spectrum ~ f^(-slope) (0 white, 1 pink, 2 brown), unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spec.shape[0], dtype=np.float64)
    f[0] = 1.0
    spec *= f ** (-slope / 2)
    spec[0] = 0.0
    y = np.fft.irfft(spec, n)
    return y / (np.sqrt(np.mean(y * y)) + 1e-12)


def smooth_noise(rng: np.random.Generator, n: int, rate_hz: float) -> np.ndarray:
    """Slowly varying random curve, unit standard deviation, variations at about ``rate_hz``."""
    n_knots = max(int(n / SR * rate_hz) + 2, 2)
    knots = rng.standard_normal(n_knots)
    return np.interp(np.linspace(0, n_knots - 1, n), np.arange(n_knots), knots)


def impulses(n: int, times: np.ndarray, amps: np.ndarray) -> np.ndarray:
    """Impulse track of length ``n`` with amplitude ``amps[i]`` at ``times[i]`` seconds (outside times dropped)."""
    out = np.zeros(n)
    idx = np.round(np.asarray(times) * SR).astype(np.int64)
    ok = (idx >= 0) & (idx < n)
    np.add.at(out, idx[ok], np.asarray(amps, dtype=np.float64)[ok])
    return out


def burst_track(rng: np.random.Generator, n: int, times: np.ndarray, amps: np.ndarray, tau: float) -> np.ndarray:
    """Noise bursts decaying as ``exp(-t / tau)`` (tau in s) at ``times``: a one-pole envelope times fresh noise."""
    env = lfilter([1.0], [1.0, -math.exp(-1.0 / (tau * SR))], impulses(n, times, amps))
    return env * rng.standard_normal(n)


def place(out: np.ndarray, event: np.ndarray, start_s: float) -> None:
    """Add ``event`` into ``out`` starting at ``start_s`` seconds (cut at the end)."""
    s = int(round(start_s * SR))
    if s >= out.shape[0] or s + event.shape[0] <= 0:
        return
    e = min(out.shape[0], s + event.shape[0])
    out[max(s, 0):e] += event[max(-s, 0):e - s]


def reverb(rng: np.random.Generator, x: np.ndarray, *, rt60: float, wet: float, damp_hz: float = 6000.0,
            predelay: float = 0.01) -> np.ndarray:
    """Dry signal plus an exponentially decaying, low-passed noise tail (RT60 in s), energy-normalised."""
    length = int(min(rt60 * 1.2, 3.0) * SR)
    t = np.arange(length) / SR
    ir = rng.standard_normal(length) * np.exp(-6.9 * t / rt60)
    ir = lowpass(ir, damp_hz)
    ir[: int(predelay * SR)] = 0.0
    ir /= np.sqrt(np.sum(ir * ir)) + 1e-12
    return x + wet * fftconvolve(x, ir)[: x.shape[0]]


def harmonic(phase: np.ndarray, amps: np.ndarray, *, step: int = 1) -> np.ndarray:
    """Sum of harmonics ``sum_k amps[k-1, t] sin(k phase[t])``.

    ``amps`` is (K, 1) for fixed amplitudes or (K, ceil(n / step)) for amplitudes given every ``step``
    samples (held in between). ``sin(k phase)`` comes from the Chebyshev recurrence
    ``sin((k+1) p) = 2 cos(p) sin(k p) - sin((k-1) p)``, which costs a multiply-add per harmonic.
    """
    n = phase.shape[0]

    def row(k: int) -> np.ndarray | float:
        a = amps[k]
        return a[0] if a.shape[0] == 1 else np.repeat(a, step)[:n]

    c2 = 2.0 * np.cos(phase)
    s_prev = np.zeros(n)
    s_cur = np.sin(phase)
    out = row(0) * s_cur
    for k in range(1, amps.shape[0]):
        s_prev, s_cur = s_cur, c2 * s_cur - s_prev
        out += row(k) * s_cur
    return out


def formant_harmonics(f0: np.ndarray, formants: list[tuple[float, float, float]], *, max_harm: int,
                       f_top: float, tilt: float, step: int = 32) -> np.ndarray:
    """Harmonic source at pitch ``f0`` (Hz, per sample) whose harmonics are weighted by a formant envelope.

    Harmonic ``k`` has amplitude ``formant_gain(k f0) / k**tilt`` (0 above ``f_top`` Hz), evaluated every
    ``step`` samples.
    """
    phase = 2 * np.pi * np.cumsum(f0) / SR
    n_harm = int(max(1, min(max_harm, f_top / f0.max())))
    k = np.arange(1, n_harm + 1, dtype=np.float64)[:, None]
    freqs = k * f0[None, ::step]
    amps = formant_gain(freqs, formants) * (freqs < f_top) / k ** tilt
    return harmonic(phase, amps, step=step)


def formant_gain(freqs: np.ndarray, formants: list[tuple[float, float, float]]) -> np.ndarray:
    """Spectral envelope at ``freqs`` (Hz): sum of Gaussian bumps (centre, bandwidth, gain) plus a floor."""
    g = np.full(freqs.shape, 0.03)
    for fc, bw, gain in formants:
        g += gain * np.exp(-0.5 * ((freqs - fc) / bw) ** 2)
    return g


def finish(rng: np.random.Generator, fg: np.ndarray, *, peak: tuple[float, float], bg_slope: float,
            bg_db: tuple[float, float], bg_band: tuple[float, float] = (40.0, 9000.0)) -> np.ndarray:
    """Remove DC, add a background at a random level below the foreground peak, scale to a random peak."""
    fg = highpass(fg, 25.0)
    fg = fg / (np.max(np.abs(fg)) + 1e-12)
    bg = band(colored_noise(rng, fg.shape[0], bg_slope), *bg_band)
    bg = bg / (np.max(np.abs(bg)) + 1e-12)
    bg_level = 10 ** (rng.uniform(*bg_db) / 20)
    x = fg + bg_level * bg * (1 + 0.3 * smooth_noise(rng, fg.shape[0], 0.5)).clip(0.3, None)
    x = x / (np.max(np.abs(x)) + 1e-12) * rng.uniform(*peak)
    return x.astype(np.float32)
