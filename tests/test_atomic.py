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

    from occ import tables
    from occ.atomic import write_json

    path = write_json(tmp_path / "m.json", {"b": 1 / 3, "a": [1, 2]})
    assert json.loads(path.read_text()) == {"a": [1, 2], "b": 1 / 3}
    assert path.read_text().index('"a"') < path.read_text().index('"b"')
    assert tables.write_json is write_json  # the notebooks' older import keeps working
