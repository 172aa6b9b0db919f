"""Tests of occ.data.audio: the log-mel front end against an independent numpy/librosa path, loading and writing."""

from __future__ import annotations

import math
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch
from scipy.signal import chirp

from occ.data import audio
from occ.errors import DataError

SR = 22050


# ----------------------------------------------------------------------------- independent reference
def reference_mel(x: np.ndarray) -> np.ndarray:
    """docs/reference.md, section 2 in float64: reflect pad 384, frames of 1024 every 256, periodic Hann, numpy rfft,
    magnitude sqrt(re^2 + im^2 + 1e-9), librosa Slaney mel filters; returns the mel energies (80, frames)."""
    x = np.asarray(x, dtype=np.float64)
    padded = np.pad(x, (384, 384), mode="reflect")
    n_frames = 1 + (padded.shape[0] - 1024) // 256
    frames = padded[np.arange(n_frames)[:, None] * 256 + np.arange(1024)[None, :]]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(1024) / 1024)
    spec = np.fft.rfft(frames * window, axis=-1)
    mag = np.sqrt(spec.real**2 + spec.imag**2 + 1e-9).T
    filters = librosa.filters.mel(sr=22050, n_fft=1024, n_mels=80, fmin=0, fmax=8000).astype(np.float64)
    return filters @ mag


def _signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    t = np.arange(88200) / SR
    clicks = np.zeros(88200)
    clicks[rng.choice(88200, 40, replace=False)] = rng.uniform(-1, 1, 40)
    return {
        "noise": 0.3 * rng.standard_normal(88200),
        "quiet_noise": 1e-3 * rng.standard_normal(88200),
        "sine_100": 0.5 * np.sin(2 * np.pi * 100 * t),
        "sine_1000": 0.8 * np.sin(2 * np.pi * 1000 * t + 0.3),
        "sine_5000": 0.2 * np.sin(2 * np.pi * 5000 * t),
        "chirp": 0.6 * chirp(t, f0=50, f1=10000, t1=4.0, method="logarithmic"),
        "clicks": clicks,
        "silence": np.zeros(88200),
    }


@pytest.mark.parametrize("name", list(_signals()))
def test_log_mel_matches_independent_reference(name):
    x = _signals()[name].astype(np.float32)
    ref_mel = reference_mel(x)
    ref = np.log(np.maximum(ref_mel, 1e-5))
    got = audio.log_mel(x).numpy()
    assert got.shape == (80, 344) and got.dtype == np.float32
    diff = np.abs(got - ref)
    assert diff.max() <= 1e-2
    loud = ref_mel > 1e-3
    if loud.any():
        assert diff[loud].max() <= 1e-4


def test_mel_filterbank_matches_librosa():
    ref = librosa.filters.mel(sr=22050, n_fft=1024, n_mels=80, fmin=0, fmax=8000)
    got = audio.mel_filterbank()
    assert got.shape == (80, 513)
    np.testing.assert_allclose(got, ref, atol=1e-7, rtol=1e-5)


def test_1khz_sine_peaks_in_its_mel_band():
    centres = librosa.mel_frequencies(n_mels=82, fmin=0, fmax=8000, htk=False)[1:-1]
    x = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(88200) / SR)
    band = int(audio.log_mel(x).mean(-1).argmax())
    assert band == int(np.argmin(np.abs(centres - 1000)))
    assert abs(centres[band] - 1000) < 60


def test_silence_sits_on_the_floor():
    m = audio.log_mel(np.zeros(88200, dtype=np.float32))
    assert torch.all(m == torch.tensor(math.log(1e-5), dtype=torch.float32))
    assert abs(float(m[0, 0]) - (-11.5129)) < 1e-3


def test_batch_shapes_and_consistency():
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal((2, 3, 88200))).astype(np.float32)
    m = audio.log_mel(x)
    assert m.shape == (2, 3, 80, 344)
    single = audio.log_mel(x[1, 2])
    torch.testing.assert_close(m[1, 2], single, atol=1e-5, rtol=0)


def test_numpy_and_torch_inputs_agree():
    rng = np.random.default_rng(3)
    x = (0.2 * rng.standard_normal(88200)).astype(np.float32)
    a = audio.log_mel(x)
    b = audio.log_mel(torch.from_numpy(x))
    assert a.dtype == b.dtype == torch.float32
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    c = audio.log_mel(x.astype(np.float64))  # float64 path: same numbers within float32 rounding
    torch.testing.assert_close(a, c, atol=1e-4, rtol=0)


@pytest.mark.parametrize("n", [385, 1000, 1024, 4410, 22050, 88199, 88200, 100000])
def test_short_and_long_inputs_frame_count(n):
    x = np.random.default_rng(n).standard_normal(n).astype(np.float32) * 0.1
    m = audio.log_mel(x)
    assert m.shape == (80, 1 + (n + 768 - 1024) // 256) == (80, audio.n_frames(n))
    ref = np.log(np.maximum(reference_mel(x), 1e-5))
    assert np.abs(m.numpy() - ref).max() <= 1e-2


def test_too_short_input_is_a_clear_error():
    with pytest.raises(DataError, match="384"):
        audio.log_mel(np.zeros(300, dtype=np.float32))


def test_constants():
    got = (audio.SR, audio.N_SAMPLES, audio.N_FFT, audio.HOP, audio.WIN, audio.N_MELS)
    assert got == (22050, 88200, 1024, 256, 1024, 80)
    assert (audio.FMIN, audio.FMAX, audio.N_FRAMES, audio.LOG_FLOOR) == (0, 8000, 344, 1e-5)
    assert audio.n_frames(audio.N_SAMPLES) == audio.N_FRAMES


# ----------------------------------------------------------------------------- load_clip
def test_load_int16_scaled_by_32768_without_normalisation(tmp_path: Path):
    values = np.array([0, 1, -1, 16384, -32768, 32767, 100] * 1000, dtype=np.int16)
    sf.write(tmp_path / "a.wav", values, SR, subtype="PCM_16")
    x = audio.load_clip(tmp_path / "a.wav")
    assert x.dtype == np.float32 and x.shape == (88200,)
    np.testing.assert_array_equal(x[: values.shape[0]], values.astype(np.float32) / 32768)
    assert np.all(x[values.shape[0]:] == 0)  # zero-padded at the end


def test_load_cuts_long_clips(tmp_path: Path):
    x = np.random.default_rng(0).uniform(-0.5, 0.5, 100000)
    sf.write(tmp_path / "long.flac", x, SR, subtype="PCM_16")
    y = audio.load_clip(tmp_path / "long.flac")
    assert y.shape == (88200,)
    np.testing.assert_allclose(y, x[:88200], atol=1 / 32768 + 1e-7)


def test_load_stereo_is_averaged(tmp_path: Path):
    rng = np.random.default_rng(0)
    st = rng.uniform(-0.5, 0.5, (88200, 2)).astype(np.float32)
    sf.write(tmp_path / "st.wav", st, SR, subtype="FLOAT")
    y = audio.load_clip(tmp_path / "st.wav")
    np.testing.assert_allclose(y, st.mean(axis=1), atol=1e-7)


@pytest.mark.parametrize("sr", [44100, 16000, 48000])
def test_load_resamples_other_rates(tmp_path: Path, sr: int):
    t = np.arange(int(4 * sr)) / sr
    sf.write(tmp_path / "r.wav", 0.5 * np.sin(2 * np.pi * 440 * t), sr, subtype="PCM_16")
    y = audio.load_clip(tmp_path / "r.wav")
    assert y.shape == (88200,)
    expected = 0.5 * np.sin(2 * np.pi * 440 * np.arange(88200) / SR)
    mid = slice(2000, 86000)  # away from the filter's edge effects
    assert np.abs(y[mid] - expected[mid]).max() < 5e-3
    assert float(np.abs(np.fft.rfft(y)).argmax()) == pytest.approx(440 * 4, abs=1)


def test_load_errors_name_the_file(tmp_path: Path):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "junk.wav").write_bytes(b"RIFF" + bytes(range(200)))
    sf.write(tmp_path / "zero.wav", np.zeros(0), SR, subtype="PCM_16")
    nan = np.zeros(1000, dtype=np.float32)
    nan[10] = np.nan
    sf.write(tmp_path / "nan.wav", nan, SR, subtype="FLOAT")
    for name, pattern in [("missing.wav", "does not exist"), ("empty.wav", "empty"), ("junk.wav", "cannot be read"),
                          ("zero.wav", "no samples"), ("nan.wav", "NaN")]:
        with pytest.raises(DataError, match=pattern) as info:
            audio.load_clip(tmp_path / name)
        assert name in str(info.value)


# ----------------------------------------------------------------------------- write_wav
def test_write_wav_16bit_mono_clipped_atomic(tmp_path: Path):
    x = np.linspace(-2, 2, 88200)
    out = audio.write_wav(tmp_path / "sub" / "dir" / "y.wav", torch.from_numpy(x))
    info = sf.info(out)
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (22050, 1, "PCM_16", 88200)
    y, _ = sf.read(out, dtype="float32")
    assert y.min() >= -1.0 and y.max() <= 1.0
    assert y[0] == -1.0 and y[-1] >= 32766 / 32768
    mid = np.abs(x) < 0.99
    np.testing.assert_allclose(y[mid], x[mid], atol=2 / 32768)
    assert sorted(p.name for p in out.parent.iterdir()) == ["y.wav"]  # no temporary file left
    with pytest.raises(DataError):
        audio.write_wav(tmp_path / "bad.wav", np.zeros((2, 100)))


def disk_full_after(monkeypatch, n_bytes: int) -> None:
    """Make every file that ``occ.atomic.atomic_open`` opens take ``n_bytes`` bytes, then fail with ENOSPC."""
    import errno
    import os

    import occ.atomic

    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, handle):
            self.handle, self.room = handle, n_bytes

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def fileno(self):
            return self.handle.fileno()

        def flush(self):
            self.handle.flush()

        def write(self, data):
            data = bytes(data)
            self.handle.write(data[:self.room])
            self.handle.flush()  # the partial file is on disk
            if len(data) > self.room:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.room -= len(data)
            return len(data)

    monkeypatch.setattr(occ.atomic.os, "fdopen", lambda fd, *a, **kw: FullDisk(real_fdopen(fd, *a, **kw)))


def test_write_pcm16_writes_what_soundfile_writes(tmp_path: Path):
    x = np.random.default_rng(0).integers(-32768, 32767, 1000).astype(np.int16)
    sf.write(tmp_path / "direct.wav", x, 22050, subtype="PCM_16", format="WAV")
    assert audio.write_pcm16(tmp_path / "a" / "x.wav", x, 22050) == tmp_path / "a" / "x.wav"
    assert (tmp_path / "a" / "x.wav").read_bytes() == (tmp_path / "direct.wav").read_bytes()


def test_a_full_disk_in_a_wav_write_names_the_target_and_leaves_no_partial_file(tmp_path: Path, monkeypatch):
    from occ.errors import WriteError

    (tmp_path / "old.wav").write_bytes(b"old")
    disk_full_after(monkeypatch, 4096)
    for name, write in (("new.wav", lambda p: audio.write_wav(p, np.zeros(88200))),
                        ("old.wav", lambda p: audio.write_pcm16(p, np.zeros(88200, np.int16), 22050))):
        with pytest.raises(WriteError, match=r"cannot write .*: the disk is full") as info:
            write(tmp_path / name)
        assert str(tmp_path / name) in str(info.value) and ".tmp" not in str(info.value)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["old.wav"]  # no partial file, the old one kept
        assert (tmp_path / "old.wav").read_bytes() == b"old"


@pytest.mark.parametrize("sr", [44100, 96000])
def test_resampling_only_the_kept_part_matches_resampling_all(tmp_path: Path, sr: int):
    from scipy.signal import resample_poly

    x = np.random.default_rng(sr).uniform(-0.5, 0.5, 6 * sr).astype(np.float32)
    sf.write(tmp_path / "long.wav", x, sr, subtype="FLOAT")
    full = resample_poly(x.astype(np.float64), 22050 // np.gcd(22050, sr), sr // np.gcd(22050, sr))[:88200]
    np.testing.assert_allclose(audio.load_clip(tmp_path / "long.wav"), full, atol=1e-6)
