"""Tests of occ.data.scan (scanning, bad inputs), occ.data.datasets (split, feature cache, normalisation) and
occ.report.plots_data."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from occ.data import datasets as D
from occ.data import scan
from occ.data.classes import DCASE_CLASSES, DCASE_SNAKE
from occ.data.audio import LOG_FLOOR, load_clip, log_mel
from occ.errors import ConfigError, DataError


def _copy_dcase(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _folders_dataset(src: Path, dst: Path, per_class: int = 3) -> Path:
    """A 'folders' collection with classes 'b_rain' and 'a_dog' (sorted: a_dog=0, b_rain=1)."""
    for name, cls in [("b_rain", "Rain"), ("a_dog", "DogBark")]:
        (dst / name).mkdir(parents=True)
        for p in sorted((src / cls).glob("*.wav"))[:per_class]:
            shutil.copy(p, dst / name / p.name)
    return dst


def _messages(record) -> str:
    return "\n".join(str(w.message) for w in record)


# ----------------------------------------------------------------------------- scanning
def test_scan_dcase_layout(small_foley_dataset: Path):
    ds = scan.scan_dataset(small_foley_dataset, layout="dcase")
    assert ds.class_names == DCASE_CLASSES == ["DogBark", "Footstep", "GunShot", "Keyboard",
                                                 "MovingMotorVehicle", "Rain", "Sneeze_Cough"]
    assert len(ds) == 42 and ds.labels.dtype == np.int64
    assert [int(ds.labels[i]) for i in (0, 6, 41)] == [0, 1, 6]
    assert all(f.parent.name == DCASE_CLASSES[lab] for f, lab in zip(ds.files, ds.labels))
    assert ds.relative_files()[0] == "DogBark/0000.wav"
    assert DCASE_SNAKE["MovingMotorVehicle"] == "moving_motor_vehicle" and len(DCASE_SNAKE) == 7


def test_scan_accepts_old_sneeze_folder(small_foley_dataset: Path, tmp_path: Path):
    root = _copy_dcase(small_foley_dataset, tmp_path / "dev")
    (root / "Sneeze_Cough").rename(root / "Sneeze")
    ds = scan.scan_dataset(root)
    assert np.sum(ds.labels == 6) == 6 and ds.class_names[6] == "Sneeze_Cough"


def test_scan_dcase_errors(small_foley_dataset: Path, tmp_path: Path):
    root = _copy_dcase(small_foley_dataset, tmp_path / "dev")
    (root / "Cat").mkdir()
    with pytest.raises(DataError, match="'Cat'.*DogBark"):
        scan.scan_dataset(root)
    shutil.rmtree(root / "Cat")
    shutil.rmtree(root / "Rain")
    with pytest.raises(DataError, match="Rain"):
        scan.scan_dataset(root)
    (root / "Rain").mkdir()
    with pytest.raises(DataError, match="Rain.*no audio"):
        scan.scan_dataset(root)
    with pytest.raises(ConfigError, match="layout"):
        scan.scan_dataset(root, layout="csv")


def test_missing_dataset_path_says_what_to_do(tmp_path: Path):
    with pytest.raises(DataError, match="data.path") as info:
        scan.scan_dataset(tmp_path / "nowhere")
    assert "nowhere" in str(info.value) and "data stage" in str(info.value)


def test_scan_folders_layout_skips_non_audio_and_empty_classes(small_foley_dataset: Path, tmp_path: Path):
    root = _folders_dataset(small_foley_dataset, tmp_path / "coll")
    (root / "c_empty").mkdir()
    (root / "a_dog" / "notes.txt").write_text("hi")
    (root / "a_dog" / ".DS_Store").write_bytes(b"\0")
    with pytest.warns(scan.DataWarning) as record:
        ds = scan.scan_dataset(root, layout="folders")
    text = _messages(record)
    assert "notes.txt" in text and ".DS_Store" not in text and "c_empty" in text
    assert ds.class_names == ["a_dog", "b_rain"]
    assert list(ds.labels) == [0, 0, 0, 1, 1, 1]
    assert all(p.suffix == ".wav" for p in ds.files)


# ----------------------------------------------------------------------------- bad audio and the cache
@pytest.fixture()
def messy_dataset(small_foley_dataset: Path, tmp_path: Path) -> Path:
    """'folders' collection with one file per kind of bad input (plus 3 good clips per class)."""
    root = _folders_dataset(small_foley_dataset, tmp_path / "messy")
    bad = root / "a_dog"
    (bad / "empty.wav").write_bytes(b"")
    (bad / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(50))
    sf.write(bad / "zero.wav", np.zeros(0), 22050, subtype="PCM_16")
    nan = np.full(22050, 0.1, dtype=np.float32)
    nan[100] = np.inf
    sf.write(bad / "nan.wav", nan, 22050, subtype="FLOAT")
    sf.write(bad / "silent.wav", np.zeros(88200), 22050, subtype="PCM_16")
    t = np.arange(2 * 44100) / 44100
    stereo = np.stack([0.5 * np.sin(2 * np.pi * 330 * t), 0.1 * np.sin(2 * np.pi * 660 * t)], axis=1)
    sf.write(root / "b_rain" / "stereo44k.flac", stereo, 44100, subtype="PCM_16")
    return root


def test_bad_inputs_are_skipped_or_reported(messy_dataset: Path, tmp_path: Path):
    cache_path = tmp_path / "cache" / "features.pt"
    with pytest.warns(scan.DataWarning) as record:
        cache = D.build_feature_cache(messy_dataset, cache_path, layout="folders", heldout_per_class=1,
                                      n_jobs=2, progress=False)
    text = _messages(record)
    for name in ("empty.wav", "corrupt.wav", "zero.wav", "nan.wav"):
        assert f"skipped {messy_dataset / 'a_dog' / name}" in text
        assert f"a_dog/{name}" not in cache.files
    assert "kept silent clip" in text and "silent.wav" in text
    assert "a_dog/silent.wav" in cache.files and cache.silent == ["a_dog/silent.wav"]
    assert sorted(s[0] for s in cache.skipped) == ["a_dog/corrupt.wav", "a_dog/empty.wav", "a_dog/nan.wav",
                                                   "a_dog/zero.wav"]
    i = cache.files.index("b_rain/stereo44k.flac")  # resampled and downmixed, kept
    expected = log_mel(load_clip(messy_dataset / "b_rain" / "stereo44k.flac"))
    torch.testing.assert_close(cache.mels[i], expected)
    silent = cache.mels[cache.files.index("a_dog/silent.wav")]
    assert torch.all(silent == torch.tensor(np.log(LOG_FLOOR), dtype=torch.float32))
    assert len(cache) == 8 and cache.class_counts() == {"a_dog": 4, "b_rain": 4}


def test_cache_contents_and_round_trip(small_foley_dataset: Path, tmp_path: Path):
    path = tmp_path / "f.pt"
    with pytest.warns(scan.DataWarning, match="holding out 3"):
        cache = D.build_feature_cache(small_foley_dataset, path, heldout_per_class=4, batch_size=5,
                                      progress=False)
    assert cache.mels.shape == (42, 80, 344) and cache.mels.dtype == torch.float32
    assert cache.labels.dtype == torch.int64 and cache.heldout_mask.dtype == torch.bool
    assert cache.files[7] == "Footstep/0001.wav"
    for i in (0, 17, 41):
        torch.testing.assert_close(cache.mels[i], log_mel(load_clip(small_foley_dataset / cache.files[i])))
    loaded = D.load_feature_cache(path, expect_hash=D.settings_hash(heldout_per_class=4, split_seed=0))
    torch.testing.assert_close(loaded.mels, cache.mels)
    assert loaded.files == cache.files and loaded.class_names == DCASE_CLASSES
    assert torch.equal(loaded.heldout_mask, cache.heldout_mask) and torch.equal(loaded.labels, cache.labels)
    # views: 3 of 6 held out per class (6 < 2 x 4)
    assert len(cache.heldout()) == 21 and len(cache.train()) == 21
    assert set(cache.train_indices()).isdisjoint(cache.heldout_indices())
    assert cache.heldout().heldout_mask.all() and not cache.train().heldout_mask.any()
    with pytest.raises(DataError, match="other front-end or split settings"):
        D.load_feature_cache(path, expect_hash=D.settings_hash(heldout_per_class=5))
    assert [p.name for p in tmp_path.iterdir()] == ["f.pt"]


def test_load_cache_errors(tmp_path: Path):
    with pytest.raises(DataError, match="does not exist"):
        D.load_feature_cache(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a cache")
    with pytest.raises(DataError, match="cannot be read"):
        D.load_feature_cache(tmp_path / "junk.pt")
    torch.save({"mels": torch.zeros(1)}, tmp_path / "partial.pt")
    with pytest.raises(DataError, match="missing keys"):
        D.load_feature_cache(tmp_path / "partial.pt")


def test_feature_cache_reuses_and_rebuilds(small_foley_dataset: Path, tmp_path: Path, monkeypatch):
    root = _folders_dataset(small_foley_dataset, tmp_path / "coll", per_class=4)
    path = tmp_path / "c.pt"
    builds = []
    real = D.build_feature_cache
    monkeypatch.setattr(D, "build_feature_cache", lambda *a, **k: builds.append(1) or real(*a, **k))
    kw = dict(layout="folders", heldout_per_class=2, progress=False)
    first = D.feature_cache(root, path, **kw)
    D.feature_cache(root, path, **kw)
    assert len(builds) == 1  # reused
    D.feature_cache(root, path, **{**kw, "split_seed": 1})
    assert len(builds) == 2  # split settings changed
    shutil.copy(root / "a_dog" / sorted(p.name for p in (root / "a_dog").iterdir())[0], root / "a_dog" / "new.wav")
    again = D.feature_cache(root, path, **{**kw, "split_seed": 1})
    assert len(builds) == 3 and len(again) == len(first) + 1  # file list changed
    path.write_bytes(b"garbage")
    with pytest.warns(scan.DataWarning, match="rebuilding"):
        D.feature_cache(root, path, **kw)
    assert len(builds) == 4


def test_failed_write_leaves_no_cache(small_foley_dataset: Path, tmp_path: Path, monkeypatch):
    root = _folders_dataset(small_foley_dataset, tmp_path / "coll", per_class=2)

    def boom(obj, fh):
        fh.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        D.build_feature_cache(root, tmp_path / "out" / "c.pt", layout="folders", heldout_per_class=1, progress=False)
    assert list((tmp_path / "out").iterdir()) == []


# ----------------------------------------------------------------------------- split
def test_split_rule_deterministic_and_order_independent():
    rng = np.random.default_rng(0)
    files = [f"c{c}/{i:03d}.wav" for c in range(3) for i in range((250, 120, 7)[c])]
    labels = np.array([int(f[1]) for f in files])
    with pytest.warns(scan.DataWarning) as record:
        mask = D.split_heldout(files, labels, n_classes=3, heldout_per_class=100, seed=0,
                               class_names=["x", "y", "z"])
    assert "class y has 120 clips" in _messages(record) and "class z has 7 clips" in _messages(record)
    assert [int(mask[labels == c].sum()) for c in range(3)] == [100, 60, 3]
    perm = rng.permutation(len(files))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mask_p = D.split_heldout([files[i] for i in perm], labels[perm], n_classes=3, heldout_per_class=100, seed=0)
        mask_s = D.split_heldout(files, labels, n_classes=3, heldout_per_class=100, seed=1)
    held = {f for f, m in zip(files, mask) if m}
    assert held == {files[i] for i, m in zip(perm, mask_p) if m}
    assert held != {f for f, m in zip(files, mask_s) if m}
    assert not D.split_heldout(files, labels, n_classes=3, heldout_per_class=0).any()


# ----------------------------------------------------------------------------- normalisation
def test_normalize_mel_range_and_round_trip():
    m = torch.linspace(D.LOG_MEL_MIN, D.LOG_MEL_MAX, 1001)
    x = D.normalize_mel(m)
    assert float(x.min()) == -1.0 and abs(float(x.max()) - 1.0) < 1e-6
    torch.testing.assert_close(D.denormalize_mel(x), m, atol=1e-5, rtol=0)
    assert float(D.normalize_mel(torch.tensor(10.0))) == 1.0  # clamped above
    assert float(D.normalize_mel(torch.tensor(np.log(1e-5), dtype=torch.float32))) == pytest.approx(-1.0, abs=1e-6)
    arr = np.array([D.LOG_MEL_MIN, 0.0, 2.5])
    np.testing.assert_allclose(D.denormalize_mel(D.normalize_mel(arr)), arr, atol=1e-12)
    mid = (D.LOG_MEL_MIN + D.LOG_MEL_MAX) / 2
    assert abs(float(D.normalize_mel(torch.tensor(mid, dtype=torch.float64)))) < 1e-12


def test_plot_class_overview_smoke(tmp_path: Path):
    from occ.report.plots_data import plot_class_overview

    labels = torch.arange(7).repeat_interleave(3)
    cache = D.FeatureCache(mels=torch.rand(21, 80, 344) * 10 - 11, labels=labels,
                           files=[f"{DCASE_CLASSES[c]}/{i:04d}.wav" for i, c in enumerate(labels.tolist())],
                           class_names=list(DCASE_CLASSES), heldout_mask=torch.zeros(21, dtype=torch.bool))
    fig = plot_class_overview(cache, n_per_class=2, seed=0)
    assert len([ax for ax in fig.axes if ax.images]) == 14
    labels_y = [ax.get_ylabel() for ax in fig.axes]
    assert any(lab.startswith("Sneeze_Cough") for lab in labels_y)
    assert any(ax.get_xlabel() == "time (s)" for ax in fig.axes)
    extent = fig.axes[0].images[0].get_extent()
    assert extent[1] == pytest.approx(344 * 256 / 22050)  # time axis in seconds
    fig.savefig(tmp_path / "o.png", dpi=40)
    assert (tmp_path / "o.png").stat().st_size > 5000


# ----------------------------------------------------------------------------- cut files, damaged caches
def test_a_wav_cut_mid_data_is_skipped_with_a_warning(small_foley_dataset: Path, tmp_path: Path):
    root = _folders_dataset(small_foley_dataset, tmp_path / "cut", per_class=3)
    whole = sorted((root / "a_dog").glob("*.wav"))[0].read_bytes()
    (root / "a_dog" / "cut.wav").write_bytes(whole[: len(whole) // 2])  # header intact, half the data
    with pytest.raises(DataError, match=r"cut\.wav is cut short: its header announces 176400 bytes"):
        load_clip(root / "a_dog" / "cut.wav")
    with pytest.warns(scan.DataWarning) as record:
        cache = D.build_feature_cache(root, tmp_path / "c.pt", layout="folders", heldout_per_class=1, progress=False)
    assert f"skipped {root / 'a_dog' / 'cut.wav'}: audio file" in _messages(record)
    assert "a_dog/cut.wav" not in cache.files and len(cache) == 6


@pytest.fixture()
def built_cache(small_foley_dataset: Path, tmp_path: Path) -> Path:
    root = _folders_dataset(small_foley_dataset, tmp_path / "coll", per_class=3)
    path = tmp_path / "features.pt"
    D.build_feature_cache(root, path, layout="folders", heldout_per_class=1, progress=False)
    return path


def test_a_changed_value_in_the_cache_fails_its_checksum(built_cache: Path):
    d = torch.load(built_cache, weights_only=True)
    d["mels"][3, 10, 20] += 2.97
    torch.save(d, built_cache)
    with pytest.raises(DataError, match=r"features\.pt fails its checksum.*dvc repro data"):
        D.load_feature_cache(built_cache)


@pytest.mark.parametrize(
    "edit,needle",
    [
        (lambda d: d.update(mels=d["mels"][:, :, :100].contiguous()), r"mels of shape \(6, 80, 100\)"),
        (lambda d: d.update(labels=d["labels"][:3]), r"labels of shape \(3,\)"),
        (lambda d: d.update(labels=d["labels"] + 5), r"labels outside \[0, 2\)"),
        (lambda d: d.update(heldout=d["heldout"][:2]), r"held-out mask of shape \(2,\)"),
        (lambda d: d.update(files=d["files"][:4]), r"4 file names for 6 clips"),
    ],
)
def test_a_cache_with_inconsistent_shapes_is_refused(built_cache: Path, edit, needle):
    d = torch.load(built_cache, weights_only=True)
    edit(d)
    torch.save(d, built_cache)
    with pytest.raises(DataError, match=needle):
        D.load_feature_cache(built_cache)


def test_normalized_log_mel_is_the_networks_view_of_audio():
    x = torch.from_numpy(np.random.default_rng(0).uniform(-0.5, 0.5, (2, 22050)).astype(np.float32))
    got = D.normalized_log_mel(x)
    assert torch.equal(got, D.normalize_mel(log_mel(x))) and got.shape == (2, 80, 86)
    assert got.min() >= -1 and got.max() <= 1


def test_spread_over_classes_is_round_robin():
    labels = np.array([0, 0, 0, 1, 1, 2])
    assert D.spread_over_classes(labels, 3).tolist() == [0, 3, 5]
    assert D.spread_over_classes(labels, 5).tolist() == [0, 3, 5, 1, 4]
    assert sorted(D.spread_over_classes(labels, 6).tolist()) == list(range(6))
    assert D.spread_over_classes(torch.tensor([1, 0, 1]), 2).tolist() == [1, 0]


def test_first_per_class_keeps_the_first_clips_of_each_class_in_class_order(built_cache: Path):
    cache = D.load_feature_cache(built_cache)
    part = cache.first_per_class(2)
    labels = cache.labels.numpy()
    want = [i for c in range(len(cache.class_names)) for i in np.flatnonzero(labels == c)[:2]]
    assert part.files == [cache.files[i] for i in want] and torch.equal(part.mels, cache.mels[want])
    assert part.class_counts() == {name: 2 for name in cache.class_names}
    assert len(cache.first_per_class(100)) == len(cache)


def test_the_cache_file_does_not_depend_on_where_the_project_sits(small_foley_dataset, tmp_path):
    """The data stage's output is the same bytes in two copies of a project: the dataset root inside the cache's
    folder is stored relative to it, and loading resolves it against the cache's own folder."""
    written = {}
    for name in ("a", "b"):
        data = tmp_path / name / "data"
        shutil.copytree(small_foley_dataset, data / "foley")
        D.build_feature_cache(data / "foley", data / "features.pt", heldout_per_class=2, progress=False, n_jobs=1)
        written[name] = (data / "features.pt").read_bytes()
    assert written["a"] == written["b"]
    assert torch.load(tmp_path / "b" / "data" / "features.pt", weights_only=False)["root"] == "foley"
    moved = tmp_path / "moved"
    shutil.move(tmp_path / "a", moved)
    cache = D.load_feature_cache(moved / "data" / "features.pt")
    assert Path(cache.root) == (moved / "data" / "foley").resolve()
    assert (Path(cache.root) / cache.files[0]).is_file()
    outside = tmp_path / "elsewhere" / "outside.pt"  # a dataset outside the cache's folder keeps its absolute path
    D.build_feature_cache(moved / "data" / "foley", outside, heldout_per_class=2, progress=False, n_jobs=1)
    assert torch.load(outside, weights_only=False)["root"] == str((moved / "data" / "foley").resolve())


def test_a_load_of_the_cache_removes_the_temporaries_a_killed_rebuild_left(tmp_path: Path):
    """Before: only a rebuild removed a stale temporary; a load-only call kept it. Now whichever call
    next touches the cache removes them, keeping a write still running (this process's pid)."""
    path = tmp_path / "features.pt"
    stale = [tmp_path / ".features.pt.999999999-abc123.tmp", tmp_path / ".features.pt.k2j4h5.tmp"]  # killed writes
    running = tmp_path / f".features.pt.{os.getpid()}-abc123.tmp"
    for p in (*stale, running):
        p.write_bytes(b"half a cache")
    with pytest.raises(DataError, match="does not exist"):  # no cache yet: the temporaries go all the same
        D.load_feature_cache(path)
    assert not any(p.exists() for p in stale) and running.exists()
    stale[0].write_bytes(b"half a cache")
    path.write_bytes(b"not a cache")
    with pytest.raises(DataError, match="cannot be read"):
        D.load_feature_cache(path)
    assert not stale[0].exists() and running.exists()
