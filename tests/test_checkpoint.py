"""Tests of occ.checkpoint and occ.seeding: atomic writes, every unusable checkpoint is a CheckpointError, RNG round trip."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

import occ.checkpoint as checkpoint
from occ.checkpoint import TrainLog, config_differences, load_checkpoint, save_checkpoint
from occ.errors import CheckpointError, ConfigError
from occ.device import resolve_device
from occ.seeding import derived_seed, make_generator, rng_state, seed_everything, set_rng_state

MODEL = {"z_dim": 16, "g_ch": 4, "d_ch": 4, "proj_dim": 8, "d_projection": False, "enc_width": 4}


def _payload(**over):
    base = {"kind": "gan", "model": dict(MODEL), "train": {"loss": "o2c", "steps": 10, "tau_c": 0.1},
            "step": 3, "n_classes": 3, "g": {"w": torch.arange(6.0)}}
    base.update(over)
    return base


def test_round_trip_and_kind(tmp_path):
    path = save_checkpoint(tmp_path / "sub" / "c.pt", _payload())
    p = load_checkpoint(path, kind="gan", expect=MODEL)
    assert p["version"] == checkpoint.CHECKPOINT_VERSION and torch.equal(p["g"]["w"], torch.arange(6.0))
    assert [f.name for f in path.parent.iterdir()] == ["c.pt"]  # no temporary file left behind
    with pytest.raises(CheckpointError, match=r"'gan' checkpoint .* but a 'encoder' checkpoint"):
        load_checkpoint(path, kind="encoder")
    with pytest.raises(CheckpointError, match="kind"):
        save_checkpoint(tmp_path / "x.pt", {"kind": "other"})


def test_missing_and_corrupt(tmp_path):
    with pytest.raises(CheckpointError, match=r"nope\.pt: no such checkpoint; run GAN training"):
        load_checkpoint(tmp_path / "nope.pt", kind="gan")
    path = save_checkpoint(tmp_path / "c.pt", _payload())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path)
    path.write_bytes(b"hello")
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path)
    torch.save({"g": torch.zeros(1)}, path)
    with pytest.raises(CheckpointError, match="not an occ checkpoint"):
        load_checkpoint(path)
    torch.save({"kind": "gan", "version": 99}, path)
    with pytest.raises(CheckpointError, match="version 99"):
        load_checkpoint(path)


def test_other_architecture_or_config_names_the_keys(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", _payload())
    with pytest.raises(CheckpointError, match=r"d_ch: checkpoint 4 vs requested 32; g_ch: checkpoint 4 vs requested 32"):
        load_checkpoint(path, expect={**MODEL, "g_ch": 32, "d_ch": 32})
    with pytest.raises(CheckpointError, match=r"enc_stem: checkpoint '<absent>' vs requested 'cifar'"):
        load_checkpoint(path, expect={**MODEL, "enc_stem": "cifar"})
    with pytest.raises(CheckpointError, match=r"loss: checkpoint 'o2c' vs requested 'ocsupcon'"):
        load_checkpoint(path, expect_train={"loss": "ocsupcon", "steps": 10, "tau_c": 0.1})
    # Keys allowed to differ (more steps to continue training) pass.
    load_checkpoint(path, expect_train={"loss": "o2c", "steps": 50, "tau_c": 0.1}, train_may_differ=("steps",))
    assert config_differences({"a": [1, 2]}, {"a": (1, 2)}) == []
    assert config_differences({"a": 1.0}, {"a": 1.5}) == [("a", 1.0, 1.5)]


def test_failed_write_keeps_previous_file(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "c.pt", _payload(step=1))

    def broken_save(obj, handle):
        handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, _payload(step=2))
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert sorted(f.name for f in tmp_path.iterdir()) == ["c.pt"]


def test_train_log_resume_drops_later_rows(tmp_path):
    log = TrainLog(tmp_path / "log.csv", ["step", "loss"])
    log.start(resume_step=None)
    for s in range(1, 6):
        log.append({"step": s, "loss": 0.1 * s})
    with (tmp_path / "log.csv").open("a") as handle:
        handle.write("6,0.6")  # a partial line, as after a kill mid-write
    log.start(resume_step=3)
    df = log.read()
    assert df["step"].tolist() == [1, 2, 3] and df["loss"].tolist() == [0.1, 0.2, 0.30000000000000004]
    log.start(resume_step=None)
    assert log.read().empty
    with pytest.raises(ValueError, match="lacks columns"):
        log.append({"step": 1})


def test_rng_state_round_trip():
    seed_everything(5)
    gen = make_generator(7)
    state = rng_state(generators={"sampler": gen})
    a = (random.random(), np.random.rand(), torch.rand(2), torch.rand(2, generator=gen))
    set_rng_state(state, generators={"sampler": gen})
    b = (random.random(), np.random.rand(), torch.rand(2), torch.rand(2, generator=gen))
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2]) and torch.equal(a[3], b[3])
    with pytest.raises(CheckpointError, match="no generator 'other'"):
        set_rng_state(state, generators={"other": torch.Generator()})
    assert derived_seed(0, 1) != derived_seed(0, 2) and derived_seed(0, 1) == derived_seed(0, 1)


def test_seed_and_device_validation():
    with pytest.raises(ConfigError, match="seed"):
        seed_everything(-1)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ConfigError, match="not one of"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            resolve_device("cuda")


def test_a_full_disk_while_saving_names_the_checkpoint(tmp_path, monkeypatch):
    import errno
    import os

    import occ.atomic
    from occ.errors import WriteError

    target = tmp_path / "checkpoint.pt"
    save_checkpoint(target, {"kind": "gan", "step": 1})
    before = target.read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(occ.atomic.os, "fsync", full)
    with pytest.raises(WriteError, match=r"cannot write .*checkpoint\.pt: the disk is full"):
        save_checkpoint(target, {"kind": "gan", "step": 2})
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


def test_a_full_disk_while_logging_names_the_log():
    from occ.errors import WriteError

    log = TrainLog("/dev/full", ["step", "loss"])  # every write to /dev/full fails with "no space left"
    with pytest.raises(WriteError, match=r"cannot write /dev/full: the disk is full"):
        log.append({"step": 1, "loss": 0.5})
