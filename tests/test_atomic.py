"""Tests of occ.atomic: a write replaces the file whole, or leaves the old one and no temporary file."""

from __future__ import annotations

from pathlib import Path

import pytest

from occ.atomic import atomic_open, atomic_write_text


def test_atomic_write_text_creates_folders_and_replaces(tmp_path: Path):
    target = tmp_path / "a" / "b" / "t.csv"
    atomic_write_text(target, "x\r\n1\n")
    assert target.read_bytes() == b"x\r\n1\n"  # newlines kept as given
    atomic_write_text(target, "y\n")
    assert target.read_text() == "y\n"
    assert [p.name for p in target.parent.iterdir()] == ["t.csv"]


def test_atomic_open_failure_keeps_old_file_and_removes_temporary(tmp_path: Path):
    target = tmp_path / "ckpt.pt"
    target.write_bytes(b"good")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_open(target) as fh:
            fh.write(b"half")
            raise RuntimeError("boom")
    assert target.read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def test_atomic_open_rejects_other_modes(tmp_path: Path):
    with pytest.raises(ValueError, match="mode"):
        with atomic_open(tmp_path / "x", "a"):
            pass


def test_write_json_round_trips_at_full_precision(tmp_path):
    import json

    from occ.atomic import write_json

    path = write_json(tmp_path / "m.json", {"b": 1 / 3, "a": [1, 2]})
    assert json.loads(path.read_text()) == {"a": [1, 2], "b": 1 / 3}
    assert path.read_text().index('"a"') < path.read_text().index('"b"')


# --- permissions as a plain write; disk full and unwritable folders named by the target ---------------------------

import errno
import os
import stat

import occ.atomic
from occ.errors import WriteError


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_written_files_respect_the_umask(tmp_path: Path, umask_027):
    target = atomic_write_text(tmp_path / "t.csv", "x\n")
    assert _mode(target) == 0o640  # 0o666 less the umask, not mkstemp's 0o600
    os.umask(0o022)
    with atomic_open(tmp_path / "b.bin") as fh:
        fh.write(b"1")
    assert _mode(tmp_path / "b.bin") == 0o644


def test_a_full_disk_names_the_target_and_keeps_the_old_file(tmp_path: Path, monkeypatch):
    target = tmp_path / "ckpt.pt"
    target.write_bytes(b"good")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(occ.atomic.os, "fsync", full)
    with pytest.raises(WriteError, match=r"cannot write .*ckpt\.pt: the disk is full") as info:
        atomic_write_text(target, "new")
    assert info.value.errno == errno.ENOSPC and str(target) in str(info.value)
    assert target.read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def test_an_unwritable_folder_names_the_target_not_the_temporary(tmp_path: Path, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(tmp_path / ".t.csv.abc.tmp"))

    monkeypatch.setattr(occ.atomic.tempfile, "mkstemp", denied)
    with pytest.raises(WriteError, match=r"cannot write .*t\.csv: the folder .* is not writable") as info:
        atomic_write_text(tmp_path / "t.csv", "x")
    assert ".tmp" not in str(info.value)


# --- whole folders: atomic_folder ------------------------------------------------------------------------------------

from occ.atomic import atomic_folder


def test_atomic_folder_creates_then_replaces_leaving_nothing_hidden(tmp_path: Path, umask_027):
    target = tmp_path / "sub" / "d"
    with atomic_folder(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(f".d.{os.getpid()}-") and not target.exists()
        (tmp / "a.txt").write_text("1")
    assert (target / "a.txt").read_text() == "1" and _mode(target) == 0o750  # 0o777 less the umask
    with atomic_folder(target) as tmp:
        assert tmp.name.endswith(".tmp")
        (tmp / "b.txt").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]  # the old folder is replaced whole
    assert sorted(p.name for p in target.parent.iterdir()) == ["d"]  # no temporary or old folder left


def test_atomic_folder_failure_keeps_the_old_folder_and_removes_the_temporary(tmp_path: Path):
    target = tmp_path / "d"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_folder(target) as tmp:
            (tmp / "new.txt").write_text("new")
            raise RuntimeError("boom")
    assert sorted(p.name for p in target.iterdir()) == ["old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]
