"""Tests of occ.synthesis.submission: the DCASE layout and each format check."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from occ.errors import DataError, WriteError
from occ.data.classes import class_folder
from occ.synthesis.submission import check_submission, submission_problems, write_clip, write_submission
from test_audio import disk_full_after


def _wavs(n: int, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal((n, 88200))).astype(np.float32)


def test_folder_names():
    assert class_folder("GunShot") == "gunshot"
    assert class_folder("Sneeze_Cough") == "sneeze_cough"
    assert class_folder("MovingMotorVehicle") == "moving_motor_vehicle"
    assert class_folder("dog_bark") == "dog_bark"
    assert class_folder("MetalClank") == "metal_clank"


def test_write_and_check_roundtrip(tmp_path):
    wavs = {"DogBark": _wavs(3), "Rain": _wavs(3, 1)}
    out = write_submission(tmp_path, wavs, n_per_class=3)
    assert sorted(p.name for p in out.values()) == ["dog_bark", "rain"]
    files = sorted((tmp_path / "dog_bark").iterdir())
    assert [f.name for f in files] == ["00.wav", "01.wav", "02.wav"]
    info = sf.info(str(files[0]))
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (22050, 1, 88200, "PCM_16")
    back, _ = sf.read(str(files[1]), dtype="int16")
    np.testing.assert_array_equal(back, np.round(wavs["DogBark"][1].astype(np.float64) * 32768).astype(np.int16))
    assert check_submission(tmp_path, n_per_class=3, classes=["DogBark", "Rain"]) == {"dog_bark": 3, "rain": 3}
    write_submission(tmp_path, {"DogBark": _wavs(3, 5)}, n_per_class=3)  # replacing a folder keeps it valid
    assert check_submission(tmp_path, n_per_class=3, classes=["DogBark"]) == {"dog_bark": 3}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_write_rejects_wrong_shapes(tmp_path):
    with pytest.raises(DataError, match="2 clips; the submission needs 3"):
        write_submission(tmp_path, {"Rain": _wavs(2)}, n_per_class=3)
    with pytest.raises(DataError, match=r"expected \(n, 88200\)"):
        write_submission(tmp_path, {"Rain": np.zeros((3, 88064))}, n_per_class=3)


@pytest.fixture()
def good(tmp_path):
    write_submission(tmp_path, {"Rain": _wavs(2)}, n_per_class=2)
    return tmp_path


def test_missing_folder(good):
    with pytest.raises(DataError, match="footstep is missing"):
        check_submission(good, n_per_class=2, classes=["Rain", "Footstep"])


def test_wrong_count(good):
    (good / "rain" / "01.wav").unlink()
    with pytest.raises(DataError, match="holds 1 WAV files; DCASE requires exactly 2"):
        check_submission(good, n_per_class=2, classes=["Rain"])


@pytest.mark.parametrize(
    "data, sr, subtype, message",
    [
        (np.zeros(88100), 22050, "PCM_16", "88100 samples"),
        (np.zeros((88200, 2)), 22050, "PCM_16", "2 channels"),
        (np.zeros(88200), 16000, "PCM_16", "sampling rate 16000"),
        (np.zeros(88200), 22050, "FLOAT", "sample format FLOAT"),
    ],
)
def test_bad_file_is_named(good, data, sr, subtype, message):
    sf.write(str(good / "rain" / "01.wav"), data, sr, subtype=subtype)
    with pytest.raises(DataError, match=rf"01\.wav does not meet the DCASE format: .*{message}"):
        check_submission(good, n_per_class=2, classes=["Rain"])


def test_unreadable_file(good):
    (good / "rain" / "00.wav").write_bytes(b"RIFF nonsense")
    with pytest.raises(DataError, match=r"00\.wav cannot be read"):
        check_submission(good, n_per_class=2, classes=["Rain"])


def test_class_folders_respect_the_umask(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        out = write_submission(tmp_path, {"Rain": _wavs(2)}, n_per_class=2)
    finally:
        os.umask(old)
    assert stat.S_IMODE(out["Rain"].stat().st_mode) == 0o755


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_write_refuses_non_finite_waveforms(tmp_path, value):
    wavs = _wavs(3)
    wavs = np.array(wavs, dtype=np.float32)
    wavs[1, 500] = value
    with pytest.raises(DataError, match=r"class 'Rain' has 1 clip\(s\) with NaN or infinite samples \(first: clip 1\)"):
        write_submission(tmp_path, {"DogBark": _wavs(3), "Rain": wavs}, n_per_class=3)
    assert not any(tmp_path.iterdir())  # nothing written, not even the good class


def test_leftovers_of_a_killed_write_are_removed(tmp_path):
    folder = class_folder("Rain")
    half = tmp_path / f".{folder}.k3j9x2.tmp"  # a write killed while filling the new folder
    half.mkdir()
    (half / "00.wav").write_bytes(b"RIFF")
    old = tmp_path / f".{folder}.old-4242"  # a write killed between the two renames
    old.mkdir()
    out = write_submission(tmp_path, {"Rain": _wavs(2)}, n_per_class=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [out["Rain"].name]


def test_every_problem_is_listed(good):
    """submission_problems goes on past the first problem; check_submission raises that first one."""
    sf.write(str(good / "rain" / "01.wav"), np.zeros(88100), 16000, subtype="FLOAT")
    (good / "rain" / "00.wav").write_bytes(b"RIFF nonsense")
    (good / "rain" / "02.wav").write_bytes(b"")
    problems, counts = submission_problems(good, n_per_class=2, classes=["Rain", "Footstep", "DogBark"])
    assert counts == {"rain": 3}
    assert len(problems) == 6, problems
    assert "holds 3 WAV files" in problems[0]
    assert "00.wav cannot be read" in problems[1] and "02.wav cannot be read" in problems[3]
    assert all(s in problems[2] for s in ("01.wav", "88100 samples", "sampling rate 16000", "sample format FLOAT"))
    assert "footstep is missing" in problems[4] and "dog_bark is missing" in problems[5]
    with pytest.raises(DataError, match="holds 3 WAV files"):
        check_submission(good, n_per_class=2, classes=["Rain", "Footstep", "DogBark"])
    assert submission_problems(good / "nothere")[0][0].endswith("does not exist; write it with occ.synthesis.submission.write_submission")


def test_a_full_disk_names_the_clip_and_leaves_no_partial_file_or_folder(tmp_path, monkeypatch):
    write_submission(tmp_path / "sub", {"Rain": _wavs(2)}, n_per_class=2)
    before = {p: p.read_bytes() for p in (tmp_path / "sub" / "rain").iterdir()}
    disk_full_after(monkeypatch, 10_000)
    with pytest.raises(WriteError, match=r"cannot write .*one\.wav: the disk is full") as info:
        write_clip(tmp_path / "one.wav", _wavs(1)[0])
    assert str(tmp_path / "one.wav") in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub"]
    with pytest.raises(WriteError, match=r"the disk is full") as info:
        write_submission(tmp_path / "sub", {"Rain": _wavs(2, 1), "DogBark": _wavs(2, 2)}, n_per_class=2)
    assert str(tmp_path / "sub" / "rain" / "00.wav") in str(info.value) and ".tmp" not in str(info.value)
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["rain"]  # no half-written class folder
    assert {p: p.read_bytes() for p in (tmp_path / "sub" / "rain").iterdir()} == before  # the old one kept
