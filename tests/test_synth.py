"""Tests of occ.data.synth: determinism, layout, levels, within-class variety and between-class separability."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from occ.data import synth
from occ.data.audio import log_mel
from occ.errors import ConfigError, DataError

N_PER_CLASS = 6


@pytest.fixture(scope="module")
def clips() -> dict[str, np.ndarray]:
    """N_PER_CLASS clips per class with the dataset's per-clip seeds (seed 7)."""
    return {c: np.stack([synth.synthesize_clip(c, rng=synth.clip_rng(7, c, i)) for i in range(N_PER_CLASS)])
            for c in synth.CLASSES}


@pytest.fixture(scope="module")
def mels(clips) -> dict[str, np.ndarray]:
    return {c: log_mel(x).numpy() for c, x in clips.items()}


def _digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.wav"))}


def test_clip_shape_dtype_and_levels(clips):
    for c, x in clips.items():
        assert x.shape == (N_PER_CLASS, 88200) and x.dtype == np.float32, c
        assert np.isfinite(x).all(), c
        peaks = np.abs(x).max(axis=1)
        assert np.all((peaks >= 0.1) & (peaks <= 0.9)), (c, peaks)
        assert np.all(np.abs(x.mean(axis=1)) < 0.01), c  # no DC offset


def test_clip_is_deterministic_for_its_seed():
    for c in synth.CLASSES:
        a = synth.synthesize_clip(c, rng=synth.clip_rng(3, c, 5))
        b = synth.synthesize_clip(c, rng=synth.clip_rng(3, c, 5))
        d = synth.synthesize_clip(c, rng=synth.clip_rng(4, c, 5))
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, d)


def test_unknown_class_is_an_error():
    with pytest.raises(ConfigError, match="Dog"):
        synth.synthesize_clip("Dog", rng=np.random.default_rng(0))


def test_within_class_variety(mels):
    """Every class varies: mean pairwise log-mel L1 distance within a class is well above zero."""
    for c, m in mels.items():
        d = np.abs(m[:, None] - m[None, :]).mean(axis=(2, 3))
        off = d[~np.eye(N_PER_CLASS, dtype=bool)]
        assert off.min() > 0.3, (c, off.min())
        assert off.mean() > 0.6, (c, off.mean())


def test_between_class_separability(mels):
    """Leave-one-out nearest-centroid on long-term average spectra (log of the time-mean mel energy)
    is far above chance (1/7)."""
    feats = np.concatenate([np.log(np.exp(m).mean(axis=-1)) for m in mels.values()])  # (7 * N, 80)
    labels = np.repeat(np.arange(len(mels)), N_PER_CLASS)
    correct = 0
    for i in range(feats.shape[0]):
        keep = np.arange(feats.shape[0]) != i
        centroids = np.stack([feats[keep & (labels == c)].mean(0) for c in range(len(mels))])
        correct += int(np.argmin(((centroids - feats[i]) ** 2).sum(1)) == labels[i])
    assert correct / feats.shape[0] >= 0.5  # 3.5 x chance


def test_dataset_layout_and_format(small_foley_dataset: Path):
    root = small_foley_dataset
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == sorted(synth.CLASSES)
    for c in synth.CLASSES:
        files = sorted((root / c).glob("*.wav"))
        assert len(files) == 6
        info = sf.info(files[0])
        assert (info.samplerate, info.channels, info.subtype, info.frames) == (22050, 1, "PCM_16", 88200)
    marker = json.loads((root / synth.MARKER).read_text())
    assert marker["clips_per_class"] == 6 and marker["seed"] == 0
    # the files hold the per-clip seeded clips
    x, _ = sf.read(root / "Rain" / "0003.wav", dtype="float32")
    ref = synth.synthesize_clip("Rain", rng=synth.clip_rng(0, "Rain", 3))
    np.testing.assert_allclose(x, ref, atol=1.5 / 32768)


def test_dataset_independent_of_n_jobs_and_seeded(tmp_path: Path):
    a = synth.synthesize_dataset(tmp_path / "a", clips_per_class=2, seed=1, n_jobs=1, progress=False)
    b = synth.synthesize_dataset(tmp_path / "b", clips_per_class=2, seed=1, n_jobs=2, progress=False)
    c = synth.synthesize_dataset(tmp_path / "c", clips_per_class=2, seed=2, n_jobs=1, progress=False)
    da, db, dc = _digest(a), _digest(b), _digest(c)
    assert len(da) == 14 and da == db
    assert all(da[k] != dc[k] for k in da)


def test_dataset_skips_existing_and_replaces_other_params(tmp_path: Path):
    root = synth.synthesize_dataset(tmp_path / "d", clips_per_class=1, seed=0, n_jobs=1, progress=False)
    stamp = (root / "Rain" / "0000.wav").stat().st_mtime_ns
    synth.synthesize_dataset(root, clips_per_class=1, seed=0, n_jobs=1, progress=False)
    assert (root / "Rain" / "0000.wav").stat().st_mtime_ns == stamp  # nothing rewritten
    synth.synthesize_dataset(root, clips_per_class=2, seed=0, n_jobs=1, progress=False)
    assert len(list((root / "Rain").glob("*.wav"))) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # no partial or old folders left


def test_killed_run_leaves_nothing_that_looks_complete(tmp_path: Path, monkeypatch):
    calls = {"n": 0}
    real = synth._write_chunk

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 1:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(synth, "_write_chunk", dying)
    with pytest.raises(KeyboardInterrupt):
        synth.synthesize_dataset(tmp_path / "k", clips_per_class=3, seed=0, n_jobs=1, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_foreign_folder(tmp_path: Path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="mine"):
        synth.synthesize_dataset(tmp_path / "mine", clips_per_class=1, n_jobs=1, progress=False)
    with pytest.raises(ConfigError):
        synth.synthesize_dataset(tmp_path / "x", clips_per_class=0, progress=False)


def test_dataset_folder_respects_the_umask(tmp_path: Path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        root = synth.synthesize_dataset(tmp_path / "perm", clips_per_class=1, seed=0, n_jobs=1, progress=False)
    finally:
        os.umask(old)
    assert stat.S_IMODE(root.stat().st_mode) == 0o755  # as mkdir makes it, not mkdtemp's 0o700
