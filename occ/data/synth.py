"""Procedural foley synthesiser: an embedded stand-in for the DCASE 2023 Task 7 development set.

The DCASE dev set (docs/reference.md, section 2) is a folder per class, ``<root>/<Class>/*.wav``, with 4-s,
22,050 Hz, 16-bit mono clips of 7 classes. :func:`synthesize_dataset` writes the same layout from
physically-motivated recipes, so that the whole pipeline (features, GAN training, FAD) runs without
downloading anything. Every clip is drawn from its own random generator seeded by
``(seed, class index, clip index)``, so the output depends on the seed only (not on ``n_jobs``), and
every class varies within itself (event count, timing, pitch, spectral colour, level, background) so
that diversity and mode collapse are measurable.

All recipes are vectorised: events are placed as impulse or envelope tracks on the 4-s timeline and
each track is filtered once (resonators, Butterworth band-passes, FFT convolution for reverb: the building blocks
of :mod:`occ.data.synth_blocks`).
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm  # the text bar: no notebook-widget import, no IProgress warning in a kernel

from occ.atomic import atomic_folder, make_folder
from occ.data.audio import N_SAMPLES, SR, write_pcm16
from occ.data.classes import DCASE_CLASSES
from occ.data.synth_blocks import (band, burst_track, colored_noise, finish, formant_harmonics, harmonic, impulses, lerp,
                                   lowpass, place, resonator, reverb, smooth_noise)
from occ.errors import ConfigError, DataError

SYNTH_VERSION = "1"
MARKER = ".occ_synth.json"  # written last into a finished dataset folder
CLASSES = DCASE_CLASSES  # the synthesiser makes every DCASE class
DEFAULT_CLIPS_PER_CLASS = 260  # 160 for training + 100 held out per class

__all__ = ["CLASSES", "SYNTH_VERSION", "DEFAULT_CLIPS_PER_CLASS", "synthesize_clip", "synthesize_dataset",
           "clip_rng"]

_T = np.arange(N_SAMPLES) / SR  # time axis of a clip, s


# ----------------------------------------------------------------------------- class recipes
def _dog_bark(rng: np.random.Generator) -> np.ndarray:
    """1-4 barks: harmonic source with a falling pitch, shaped by dog-size formants, plus breath noise."""
    n = N_SAMPLES
    size = rng.uniform()  # 0 small dog ... 1 large dog
    f0_base = math.exp(lerp(math.log(750), math.log(260), size)) * rng.uniform(0.85, 1.15)
    fs = rng.uniform(0.85, 1.15)
    formants = [(lerp(1100, 550, size) * fs, rng.uniform(120, 250), 1.0),
                (lerp(2100, 1250, size) * fs, rng.uniform(150, 300), rng.uniform(0.4, 0.9)),
                (lerp(3400, 2500, size) * fs, rng.uniform(200, 400), rng.uniform(0.2, 0.6))]
    noise_mix = rng.uniform(0.05, 0.4)
    out = np.zeros(n)
    t0 = rng.uniform(0.05, 1.0)
    for _ in range(int(rng.integers(1, 5))):
        dur = rng.uniform(0.09, 0.28) * lerp(0.8, 1.4, size)
        m = int(dur * SR)
        tt = np.arange(m) / SR
        rise = rng.uniform(0.15, 0.6)
        f0 = f0_base * rng.uniform(0.9, 1.1) * (1 + rise * np.exp(-tt / (0.25 * dur))) * (1 - 0.3 * tt / dur)
        f0 *= 1 + 0.02 * np.sin(2 * np.pi * rng.uniform(20, 40) * tt)  # growl roughness
        voice = formant_harmonics(f0, formants, max_harm=40, f_top=7800, tilt=0.5, step=16)
        breath = band(rng.standard_normal(m), formants[0][0] * 0.6, formants[2][0] * 1.2)
        src = voice / (np.abs(voice).max() + 1e-12) + noise_mix * breath / (np.abs(breath).max() + 1e-12)
        env = (1 - np.exp(-tt / rng.uniform(0.004, 0.015))) * np.exp(-tt / (dur * rng.uniform(0.3, 0.6)))
        env *= np.clip((dur - tt) / 0.01, 0, 1)
        place(out, src * env * rng.uniform(0.5, 1.0), t0)
        t0 += dur + rng.uniform(0.12, 0.7)
        if t0 > 3.75:
            break
    out = reverb(rng, out, rt60=rng.uniform(0.2, 0.8), wet=rng.uniform(0.05, 0.4), damp_hz=rng.uniform(3000, 7000))
    return finish(rng, out, peak=(0.2, 0.85), bg_slope=rng.uniform(0.5, 1.5), bg_db=(-50, -25))


_SURFACES = {
    # name: (thump Hz, thump tau s, click band Hz, click tau s, grain band Hz, grain rate /s, grain span s)
    "wood": ((90, 160), (0.02, 0.05), (300, 2500), (0.004, 0.012), (400, 3000), 0, 0.0),
    "concrete": ((60, 120), (0.01, 0.03), (1000, 7000), (0.002, 0.006), (1500, 7000), 0, 0.0),
    "gravel": ((60, 110), (0.015, 0.03), (600, 5000), (0.003, 0.008), (900, 7500), 900, 0.18),
    "grass": ((50, 90), (0.02, 0.04), (300, 2500), (0.008, 0.02), (500, 4500), 500, 0.22),
    "snow": ((50, 100), (0.02, 0.04), (200, 1800), (0.006, 0.015), (300, 2500), 700, 0.25),
}


def _footstep(rng: np.random.Generator) -> np.ndarray:
    """A walking sequence: each step a heel then a toe impact (thump + click + surface grains)."""
    n = N_SAMPLES
    name = list(_SURFACES)[int(rng.integers(len(_SURFACES)))]
    thump_f, thump_tau, click_band, click_tau, grain_band, grain_rate, grain_span = _SURFACES[name]
    rate = rng.uniform(1.4, 2.4)  # steps per second
    first = rng.uniform(0.0, 0.6)
    n_steps = int(rng.integers(3, 10))
    steps = first + np.arange(n_steps) / rate + rng.normal(0, 0.02, n_steps)
    steps = steps[steps < 3.9]
    trend = np.linspace(rng.uniform(0.4, 1.0), rng.uniform(0.4, 1.0), steps.shape[0])  # approach / recede
    heel_amp = trend * rng.uniform(0.7, 1.0, steps.shape[0])
    toe_t = steps + rng.uniform(0.05, 0.13)
    toe_amp = heel_amp * rng.uniform(0.25, 0.7, steps.shape[0])
    times = np.concatenate([steps, toe_t])
    amps = np.concatenate([heel_amp, toe_amp])
    low = resonator(impulses(n, steps, heel_amp), rng.uniform(*thump_f), rng.uniform(*thump_tau))
    click = band(burst_track(rng, n, times, amps, rng.uniform(*click_tau)), *click_band)
    ratio = rng.uniform(0.3, 1.0)
    out = low / (np.abs(low).max() + 1e-12) * ratio + click / (np.abs(click).max() + 1e-12)
    if grain_rate:
        # Poisson grains within grain_span after each impact (crunch of gravel, grass, snow)
        n_grains = rng.poisson(grain_rate * grain_span, times.shape[0])
        owner = np.repeat(np.arange(times.shape[0]), n_grains)
        g_t = times[owner] + rng.exponential(grain_span / 3, owner.shape[0])
        g_a = amps[owner] * rng.lognormal(0, 0.6, owner.shape[0])
        grains = band(burst_track(rng, n, g_t, g_a, rng.uniform(0.001, 0.003)), *grain_band)
        out += grains / (np.abs(grains).max() + 1e-12) * rng.uniform(0.4, 1.0)
    out = reverb(rng, out, rt60=rng.uniform(0.1, 0.9), wet=rng.uniform(0.05, 0.5))
    return finish(rng, out, peak=(0.15, 0.8), bg_slope=rng.uniform(0.5, 2.0), bg_db=(-45, -20))


def _gunshot(rng: np.random.Generator) -> np.ndarray:
    """1-3 shots: broadband crack, low boom, and a long reverberant tail; distance low-passes everything."""
    n = N_SAMPLES
    n_shots = int(rng.integers(1, 4))
    start = rng.uniform(0.05, 1.0)
    gaps = rng.uniform(0.12, 1.2, n_shots - 1) if rng.uniform() < 0.5 else np.full(n_shots - 1, rng.uniform(0.1, 0.3))
    times = start + np.concatenate([[0.0], np.cumsum(gaps)])
    amps = rng.uniform(0.7, 1.0, n_shots)
    distance = rng.uniform()  # 0 near ... 1 far
    crack = burst_track(rng, n, times, amps, rng.uniform(0.002, 0.008))
    boom = resonator(impulses(n, times, amps), rng.uniform(40, 110), rng.uniform(0.04, 0.15))
    body = lowpass(burst_track(rng, n, times + 0.002, amps, rng.uniform(0.03, 0.12)), rng.uniform(300, 1200))
    dry = (crack / (np.abs(crack).max() + 1e-12) * lerp(1.0, 0.3, distance)
           + boom / (np.abs(boom).max() + 1e-12) * rng.uniform(0.4, 1.0)
           + body / (np.abs(body).max() + 1e-12) * rng.uniform(0.3, 0.8))
    out = reverb(rng, dry, rt60=rng.uniform(0.6, 2.6), wet=lerp(0.8, 3.0, distance) * rng.uniform(0.7, 1.3),
                  damp_hz=rng.uniform(1500, 6000), predelay=rng.uniform(0.005, 0.06))
    out = lowpass(out, lerp(10000, 2000, distance))
    return finish(rng, out, peak=(0.4, 0.9), bg_slope=rng.uniform(0.5, 2.0), bg_db=(-55, -30))


def _keyboard(rng: np.random.Generator) -> np.ndarray:
    """Typing bursts of short resonant key clicks with release clicks and an occasional space bar."""
    n = N_SAMPLES
    rate = rng.uniform(5, 12)  # keys per second within a burst
    times = []
    t = rng.uniform(0.0, 0.5)
    while t < 3.9:
        for _ in range(int(rng.integers(3, 16))):
            times.append(t)
            t += rng.uniform(0.5, 1.5) / rate
            if t >= 3.9:
                break
        t += rng.uniform(0.15, 1.0)
    times = np.asarray(times)
    is_space = rng.uniform(size=times.shape[0]) < rng.uniform(0.03, 0.15)
    amps = rng.uniform(0.4, 1.0, times.shape[0])
    press_tau = rng.uniform(0.002, 0.008)
    key_exc = burst_track(rng, n, times[~is_space], amps[~is_space], press_tau)
    rel_t = times + rng.uniform(0.06, 0.15, times.shape[0])
    rel_exc = burst_track(rng, n, rel_t, amps * rng.uniform(0.1, 0.5), press_tau * 0.7)
    key_res = [(rng.uniform(1800, 6500), rng.uniform(0.001, 0.005)),
               (rng.uniform(700, 2000), rng.uniform(0.002, 0.006))]
    keys = sum(resonator(key_exc + rel_exc, f, tau) * w for (f, tau), w in zip(key_res, (1.0, rng.uniform(0.3, 1.0))))
    keys = keys + band(key_exc, 2000, 9000) * rng.uniform(0.05, 0.3)
    thud = resonator(impulses(n, times, amps), rng.uniform(120, 400), rng.uniform(0.005, 0.015))
    out = keys / (np.abs(keys).max() + 1e-12) + thud / (np.abs(thud).max() + 1e-12) * rng.uniform(0.1, 0.5)
    if is_space.any():
        sp_exc = burst_track(rng, n, times[is_space], amps[is_space] * 1.3, rng.uniform(0.006, 0.015))
        space = resonator(sp_exc, rng.uniform(350, 1200), rng.uniform(0.01, 0.03)) + band(sp_exc, 500, 4000)
        out += space / (np.abs(space).max() + 1e-12) * rng.uniform(0.6, 1.2)
    out = reverb(rng, out, rt60=rng.uniform(0.15, 0.6), wet=rng.uniform(0.05, 0.4))
    return finish(rng, out, peak=(0.1, 0.7), bg_slope=rng.uniform(0.5, 1.5), bg_db=(-50, -25))


def _vehicle(rng: np.random.Generator) -> np.ndarray:
    """Engine harmonics with RPM drift, a pass-by level swell with Doppler shift, and road/tyre noise."""
    n = N_SAMPLES
    t = _T
    cyl = int(rng.choice([2, 4, 6, 8]))
    rpm = rng.uniform(800, 3500) * (1 + 0.08 * smooth_noise(rng, n, 1.0)) * (1 + rng.uniform(-0.25, 0.35) * t / 4)
    f_fire = rpm / 60 * cyl / 2
    scenario = rng.choice(["passby", "passby", "approach", "recede", "steady"])
    speed = rng.uniform(8, 30)  # m/s
    dist = rng.uniform(3, 25)  # closest distance, m
    t_mid = {"passby": rng.uniform(1.0, 3.0), "approach": rng.uniform(4.5, 8.0),
             "recede": rng.uniform(-4.0, -0.5), "steady": 0.0}[scenario]
    v = 0.0 if scenario == "steady" else speed
    x = v * (t - t_mid) if scenario != "steady" else np.full(n, dist * rng.uniform(0.5, 2.0))
    r = np.sqrt(x * x + dist * dist)
    v_radial = v * x / r
    doppler = 343.0 / (343.0 + v_radial)
    gain = dist / r
    f_eng = f_fire * doppler
    phase = 2 * np.pi * np.cumsum(f_eng) / SR
    n_harm = int(min(24, 5000 / f_eng.max()))
    k = np.arange(1, n_harm + 1)
    tilt = rng.uniform(0.6, 1.6)
    amps = (k ** -tilt * rng.lognormal(0, 0.5, n_harm))[:, None]
    # half-order components (engine imbalance) through a phase at half the firing rate
    engine = harmonic(phase, amps) + rng.uniform(0.1, 0.5) * np.sin(0.5 * phase)
    pulse = (1 + 0.8 * np.sin(phase)) ** 2
    combustion = band(rng.standard_normal(n), 200, rng.uniform(1500, 4000)) * pulse
    road = band(colored_noise(rng, n, rng.uniform(0.5, 1.5)), rng.uniform(150, 400), rng.uniform(2000, 6000))
    mix_road = rng.uniform(0.2, 1.2) * (speed / 30 if scenario != "steady" else 0.3)
    out = (engine / (np.abs(engine).max() + 1e-12)
           + rng.uniform(0.1, 0.5) * combustion / (np.abs(combustion).max() + 1e-12)
           + mix_road * road / (np.abs(road).max() + 1e-12)) * gain
    out = lowpass(out, rng.uniform(3000, 9000))
    return finish(rng, out, peak=(0.2, 0.85), bg_slope=rng.uniform(1.0, 2.0), bg_db=(-40, -15))


def _rain(rng: np.random.Generator) -> np.ndarray:
    """Dense random drops (resonant ticks on a random surface) over a filtered noise bed of varying intensity."""
    n = N_SAMPLES
    intensity = rng.uniform()
    envelope = np.clip(1 + rng.uniform(0.1, 0.5) * smooth_noise(rng, n, rng.uniform(0.3, 1.5)), 0.2, None)
    bed = band(colored_noise(rng, n, rng.uniform(0.0, 1.2)), rng.uniform(150, 900), rng.uniform(3000, 10000))
    bed = bed / (np.abs(bed).max() + 1e-12) * envelope
    rate = lerp(150, 2500, intensity)  # drops per second
    drops = np.zeros(n)
    n_pop = 6  # drop populations of different pitch: leaves, roof, puddle...
    for _ in range(n_pop):
        count = rng.poisson(rate * 4 / n_pop)
        d_t = rng.uniform(0, 4, count)
        d_a = rng.lognormal(0, 0.7, count) * np.interp(d_t, _T, envelope)
        track = impulses(n, d_t, d_a)
        drops += resonator(track, rng.uniform(600, 8000), rng.uniform(0.0005, 0.003)) * rng.uniform(0.3, 1.0)
    drops = drops / (np.abs(drops).max() + 1e-12)
    out = bed * lerp(0.3, 1.0, intensity) * rng.uniform(0.5, 1.5) + drops * rng.uniform(0.4, 1.2)
    return finish(rng, out, peak=(0.1, 0.6), bg_slope=rng.uniform(1.0, 2.0), bg_db=(-40, -20))


def _voice_track(f0: np.ndarray, env: np.ndarray, formants: list[tuple[float, float, float]]) -> np.ndarray:
    """A voiced track with envelope ``env``, computed only where the envelope is non-zero."""
    out = np.zeros(env.shape[0])
    nz = np.flatnonzero(env)
    if nz.size:
        a, b = nz[0], nz[-1] + 1
        out[a:b] = formant_harmonics(f0[a:b], formants, max_harm=30, f_top=6000, tilt=1.0) * env[a:b]
    return out


def _formant_noise(x: np.ndarray, formants: list[tuple[float, float, float]]) -> np.ndarray:
    """Parallel band-pass bank (one Butterworth band per formant) applied to a noise track."""
    return sum(g * band(x, fc - bw, fc + bw) for fc, bw, g in formants)


def _sneeze_cough(rng: np.random.Generator) -> np.ndarray:
    """Coughs (formant-filtered noise bursts with a voiced tail) or sneezes (inhale, then explosive burst)."""
    n = N_SAMPLES
    t = _T
    fs = rng.uniform(0.85, 1.2)  # vocal-tract scale
    f0_base = rng.uniform(100, 260)
    noise_env = np.zeros(n)
    voice_env = np.zeros(n)
    hiss_env = np.zeros(n)
    if rng.uniform() < 0.6:  # a bout of 1-4 coughs
        formants = [(rng.uniform(500, 900) * fs, rng.uniform(100, 200), 1.0),
                    (rng.uniform(1200, 1900) * fs, rng.uniform(150, 300), rng.uniform(0.4, 0.9)),
                    (rng.uniform(2400, 3300) * fs, rng.uniform(200, 400), rng.uniform(0.2, 0.6))]
        start = rng.uniform(0.05, 1.2)
        for _ in range(int(rng.integers(1, 5))):
            dur = rng.uniform(0.15, 0.4)
            tt = t - start
            on = (tt >= 0) & (tt < dur)
            shape = np.where(on, (1 - np.exp(-np.maximum(tt, 0) / rng.uniform(0.004, 0.012)))
                             * np.exp(-np.maximum(tt, 0) / rng.uniform(0.05, 0.15)), 0.0)
            level = rng.uniform(0.5, 1.0)
            noise_env += shape * level
            voice_env += shape * level * rng.uniform(0.0, 0.6) * np.clip(tt / 0.05, 0, 1)
            start += dur + rng.uniform(0.08, 0.5)
            if start > 3.7:
                break
    else:  # a sneeze: inhale "ah-", gap, explosive "-choo"
        formants = [(rng.uniform(300, 450) * fs, rng.uniform(80, 150), 1.0),
                    (rng.uniform(750, 1100) * fs, rng.uniform(100, 200), rng.uniform(0.5, 0.9)),
                    (rng.uniform(2300, 3000) * fs, rng.uniform(200, 400), rng.uniform(0.2, 0.5))]
        start = rng.uniform(0.05, 1.5)
        inhale = rng.uniform(0.3, 0.8)
        tt = t - start
        ramp = np.where((tt >= 0) & (tt < inhale), (np.clip(tt, 0, None) / inhale) ** 2, 0.0)
        hiss_env += ramp * rng.uniform(0.1, 0.3)
        voice_env += ramp * rng.uniform(0.05, 0.3)
        burst_t = start + inhale + rng.uniform(0.03, 0.2)
        tb = t - burst_t
        burst = np.where(tb >= 0, np.minimum(np.clip(tb, 0, None) / 0.004, 1)
                         * np.exp(-np.clip(tb, 0, None) / rng.uniform(0.08, 0.2)), 0.0)
        noise_env += burst
        hiss_env += burst * rng.uniform(0.5, 1.2)
        voice_env += burst * rng.uniform(0.1, 0.4)
    f0 = f0_base * (1 + 0.1 * smooth_noise(rng, n, 3.0)) * np.linspace(1.1, 0.85, n)
    noise = _formant_noise(rng.standard_normal(n) * noise_env, formants)
    hiss = band(rng.standard_normal(n) * hiss_env, rng.uniform(2500, 4000), rng.uniform(7000, 10000))
    voice = _voice_track(f0, voice_env, formants)
    out = (noise / (np.abs(noise).max() + 1e-12) + hiss / (np.abs(hiss).max() + 1e-12) * rng.uniform(0.2, 0.8)
           + voice / (np.abs(voice).max() + 1e-12) * rng.uniform(0.1, 0.6))
    out = reverb(rng, out, rt60=rng.uniform(0.2, 0.8), wet=rng.uniform(0.05, 0.4))
    return finish(rng, out, peak=(0.2, 0.85), bg_slope=rng.uniform(0.5, 1.5), bg_db=(-50, -25))


_RECIPES: dict[str, Callable[[np.random.Generator], np.ndarray]] = {
    "DogBark": _dog_bark, "Footstep": _footstep, "GunShot": _gunshot, "Keyboard": _keyboard,
    "MovingMotorVehicle": _vehicle, "Rain": _rain, "Sneeze_Cough": _sneeze_cough,
}


# ----------------------------------------------------------------------------- public API
def clip_rng(seed: int, class_name: str, index: int) -> np.random.Generator:
    """The random generator of clip ``index`` of ``class_name``: seeded by ``(seed, class index, index)``."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), CLASSES.index(class_name), int(index)]))


def synthesize_clip(class_name: str, *, rng: np.random.Generator) -> np.ndarray:
    """One 4-s foley clip of ``class_name``.

    Parameters
    ----------
    class_name : str
        One of :data:`CLASSES` (DCASE 2023 Task 7 folder names).
    rng : np.random.Generator
        Source of every random parameter (use :func:`clip_rng` for the dataset's per-clip seeds).

    Returns
    -------
    np.ndarray [shape=(88200,), float32]
        Waveform at 22,050 Hz with its peak in [0.1, 0.9].
    """
    if class_name not in _RECIPES:
        raise ConfigError(f"synthesize_clip: unknown class {class_name!r}; expected one of {CLASSES}")
    x = _RECIPES[class_name](rng)
    if not np.isfinite(x).all():  # cannot happen with the recipes above; guard the dataset anyway
        raise DataError(f"synthesize_clip({class_name!r}) produced non-finite samples")
    return x


def _params(clips_per_class: int, seed: int) -> dict:
    return {"generator": "occ.data.synth", "version": SYNTH_VERSION, "clips_per_class": int(clips_per_class),
            "seed": int(seed), "sr": SR, "n_samples": N_SAMPLES, "classes": CLASSES}


def _write_chunk(folder: str, seed: int, jobs: list[tuple[str, int]]) -> int:
    """Synthesise and write ``jobs`` = [(class, index), ...] into ``folder/<class>/<index>.wav``."""
    for cls, i in jobs:
        x = synthesize_clip(cls, rng=clip_rng(seed, cls, i))
        write_pcm16(os.path.join(folder, cls, f"{i:04d}.wav"), x, SR)  # a full disk: WriteError naming the file
    return len(jobs)


def read_marker(root: str | os.PathLike) -> dict | None:
    """The parameters a finished synthetic dataset was written with, or None if ``root`` is not one."""
    marker = Path(root) / MARKER
    if not marker.is_file():
        return None
    try:
        return json.loads(marker.read_text())
    except (OSError, ValueError):
        return None


def synthesize_dataset(root: str | os.PathLike, *, clips_per_class: int = DEFAULT_CLIPS_PER_CLASS, seed: int = 0,
                       n_jobs: int = 2, progress: bool | None = None) -> Path:
    """Write the synthetic foley dataset in the DCASE dev-set layout ``<root>/<Class>/NNNN.wav``.

    Clips are 4 s, 22,050 Hz, 16-bit mono WAVs. The folder is built under a temporary name next to
    ``root`` and renamed into place when complete, with a marker file (``.occ_synth.json``) holding the
    parameters; a killed run leaves no folder that looks complete. If ``root`` already holds a
    finished dataset with the same parameters, nothing is done; with other parameters it is replaced.

    Parameters
    ----------
    root : path-like
        Dataset folder (the counterpart of ``DCASEFoleySoundSynthesisDevSet``).
    clips_per_class : int
        Clips per class (260 = 160 for training + 100 held out).
    seed : int
        Dataset seed; clip ``i`` of class ``c`` uses :func:`clip_rng` ``(seed, c, i)``.
    n_jobs : int
        Worker processes (the output does not depend on it).
    progress : bool, optional
        Show a progress bar; default: only when stderr is a terminal (never in a saved notebook).

    Returns
    -------
    Path
        ``root``.

    Raises
    ------
    ConfigError
        ``clips_per_class < 1`` or ``n_jobs < 1``.
    DataError
        ``root`` exists, is not empty and was not written by this function.
    """
    if int(clips_per_class) < 1:
        raise ConfigError(f"synthesize_dataset: clips_per_class must be >= 1, got {clips_per_class}")
    if int(n_jobs) < 1:
        raise ConfigError(f"synthesize_dataset: n_jobs must be >= 1, got {n_jobs}")
    root = Path(root)
    params = _params(clips_per_class, seed)
    if root.exists():
        old = read_marker(root)
        if old == params:
            return root
        if old is None and (not root.is_dir() or any(root.iterdir())):
            raise DataError(f"{root} exists and is not a synthetic dataset written by occ.data.synth; "
                            f"choose another data folder or remove it")
    with atomic_folder(root) as tmp:
        for cls in CLASSES:
            make_folder(tmp / cls)
        jobs = [(cls, i) for cls in CLASSES for i in range(int(clips_per_class))]
        bar = tqdm(total=len(jobs), desc="synthesising foley", unit="clip",
                   disable=not (sys.stderr.isatty() if progress is None else progress))
        if n_jobs == 1:
            for start in range(0, len(jobs), 16):
                bar.update(_write_chunk(str(tmp), seed, jobs[start:start + 16]))
        else:
            chunk = max(4, min(32, len(jobs) // (4 * n_jobs) or 1))
            # fork on Linux (as torch's DataLoader: workers start at once and only run numpy/scipy code);
            # spawn elsewhere
            ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
            with ProcessPoolExecutor(max_workers=int(n_jobs), mp_context=ctx) as pool:
                futures = [pool.submit(_write_chunk, str(tmp), seed, jobs[s:s + chunk])
                           for s in range(0, len(jobs), chunk)]
                for fut in as_completed(futures):
                    bar.update(fut.result())
        bar.close()
        (tmp / MARKER).write_text(json.dumps(params, indent=1))
    return root
