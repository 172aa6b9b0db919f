"""A run folder has one writer, no stray temporaries, a complete log, a fresh start on a changed
configuration under the pipeline, and a clean stop on Ctrl-C."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
import torch

from occ.checkpoint import TrainLog, load_checkpoint
from occ.config import ModelConfig, TrainConfig
from occ.errors import CheckpointError, ConfigChangedError, RunLockedError, TrainingInterrupted
from occ.train.gan_train import train_gan
from occ.train.run_folder import LOCK_NAME, StepLoop, run_lock

N_CLASSES = 3
MODEL = ModelConfig(z_dim=16, g_ch=4, d_ch=4, proj_dim=8, enc_width=4)
TRAIN = TrainConfig(loss="o2c", steps=4, batch_size=4, ckpt_every=2)


@pytest.fixture(scope="module")
def data():
    gen = torch.Generator().manual_seed(0)
    return torch.rand(12, 80, 344, generator=gen) * 2 - 1, torch.arange(12) % N_CLASSES


def _train(data, out, train=TRAIN, **kw):
    return train_gan(*data, n_classes=N_CLASSES, model=MODEL, train=train, out_dir=out, seed=3, progress=False, **kw)


HOLDER = textwrap.dedent("""
    import fcntl, os, sys, time
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, str(os.getpid()).encode())
    print("held", flush=True)
    time.sleep(60)
""")


def test_a_second_trainer_on_the_same_folder_is_refused(data, tmp_path):
    tmp_path.mkdir(exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / LOCK_NAME)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLockedError, match=rf"{tmp_path}: another training \(pid {holder.pid}\)"):
            _train(data, tmp_path)
        assert not (tmp_path / "log.csv").exists()  # refused before writing anything
    finally:
        holder.kill()
        holder.wait()
    # the holder died (as with kill -9): its lock file is still there, and is taken over
    assert (tmp_path / LOCK_NAME).read_text() == str(holder.pid)
    run = _train(data, tmp_path)
    assert run.finished and not (tmp_path / LOCK_NAME).exists()


def test_the_lock_is_per_folder_and_released_on_error(tmp_path):
    with run_lock(tmp_path / "a"):
        with pytest.raises(RunLockedError, match=rf"pid {os.getpid()}"):
            with run_lock(tmp_path / "a"):
                pass
        with run_lock(tmp_path / "b"):
            pass
    with pytest.raises(RuntimeError):
        with run_lock(tmp_path / "a"):
            raise RuntimeError
    with run_lock(tmp_path / "a"):
        pass


def test_stray_checkpoint_temporaries_are_removed_on_resume(data, tmp_path):
    _train(data, tmp_path, stop_after=2)
    stray = tmp_path / ".checkpoint.pt.k2j4x9ab.tmp"  # what kill -9 during a checkpoint write leaves
    stray.write_bytes(b"\0" * 1000)
    run = _train(data, tmp_path)
    assert run.resumed_from == 2 and run.finished
    assert not stray.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "log.csv", "step0.pt"]


@pytest.mark.parametrize("damage", ["delete", "cut"])
def test_a_missing_or_short_log_before_a_resume_is_an_error(data, tmp_path, damage):
    _train(data, tmp_path, stop_after=2)
    log = tmp_path / "log.csv"
    if damage == "delete":
        log.unlink()
    else:
        log.write_text("".join(log.read_text().splitlines(keepends=True)[:2]))  # header and step 1
    with pytest.raises(CheckpointError, match=r"log\.csv .*checkpoint beside it is at step 2"):
        _train(data, tmp_path)


def test_trainlog_accepts_exactly_the_steps_up_to_the_checkpoint(tmp_path):
    log = TrainLog(tmp_path / "log.csv", ["step", "loss"])
    (tmp_path / "log.csv").write_text("step,loss\n1,0.5\n3,0.4\n")
    with pytest.raises(CheckpointError, match="2 rows for steps 1..3"):
        log.start(resume_step=3)
    (tmp_path / "log.csv").write_text("step,loss\n1,0.5\n2,0.4\n3,0.3\n4,0.2\n4,0.2\n")
    log.start(resume_step=3)
    assert pd.read_csv(tmp_path / "log.csv")["step"].tolist() == [1, 2, 3]


def test_a_changed_configuration_restarts_under_the_pipeline(data, tmp_path, capsys):
    _train(data, tmp_path, stop_after=2)
    changed = dataclasses.replace(TRAIN, tau_c=0.5)
    with pytest.raises(ConfigChangedError, match="tau_c: checkpoint 0.1 vs requested 0.5"):
        _train(data, tmp_path, train=changed)
    run = _train(data, tmp_path, train=changed, on_config_change="restart")
    assert run.resumed_from is None and run.finished
    assert "tau_c: checkpoint 0.1 vs requested 0.5; starting a fresh run" in capsys.readouterr().err
    assert load_checkpoint(tmp_path / "checkpoint.pt")["train"]["tau_c"] == 0.5
    assert pd.read_csv(tmp_path / "log.csv")["step"].tolist() == [1, 2, 3, 4]
    fresh = _train(data, tmp_path / "fresh", train=changed)
    a, b = load_checkpoint(tmp_path / "checkpoint.pt")["g"], load_checkpoint(fresh.checkpoint_path)["g"]
    assert all(torch.equal(a[k], b[k]) for k in a)  # the restarted run is the fresh run
    # same configuration: resume stays a resume
    more = dataclasses.replace(changed, steps=6)
    assert _train(data, tmp_path, train=more, on_config_change="restart").resumed_from == 4


def test_ctrl_c_stops_cleanly_and_keeps_the_checkpoint(tmp_path):
    log = TrainLog(tmp_path / "log.csv", ["step"])
    log.start(resume_step=None)
    saved = []

    def step(n, _last):
        if n == 4:
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C in the terminal
        return {"step": n}

    with pytest.raises(TrainingInterrupted) as info:
        with StepLoop(start=0, steps=6, log=log, progress=False, desc="GAN o2c", ckpt_every=2,
                      checkpoint=tmp_path / "checkpoint.pt") as loop:
            for n in loop:
                loop.record(step(n, loop.last_saved))
                if loop.checkpoint_due:
                    saved.append(n)
                    loop.saved()
    message = str(info.value)
    assert "\n" not in message and saved == [2]
    assert message == (f"GAN o2c: interrupted (Ctrl-C) in step 4 of 6; {tmp_path / 'checkpoint.pt'} (step 2) "
                       "was kept; rerun to resume from it.")
    assert info.value.__suppress_context__


def test_ctrl_c_in_a_real_training_keeps_a_resumable_run(data, tmp_path, monkeypatch):
    import occ.train.gan_train as gan_train

    real = gan_train.g_step
    calls = []

    def interrupted(nets, draws, train, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # the G step of step 3
            raise KeyboardInterrupt
        return real(nets, draws, train, **kwargs)

    monkeypatch.setattr(gan_train, "g_step", interrupted)
    with pytest.raises(TrainingInterrupted, match="checkpoint.pt \\(step 2\\) was kept"):
        _train(data, tmp_path)
    assert not (tmp_path / LOCK_NAME).exists()
    monkeypatch.setattr(gan_train, "g_step", real)
    assert _train(data, tmp_path).resumed_from == 2


def test_a_checkpoint_of_another_format_version_restarts_under_the_pipeline(data, tmp_path):
    from occ.checkpoint import save_checkpoint

    _train(data, tmp_path, stop_after=2)
    payload = load_checkpoint(tmp_path / "checkpoint.pt")
    payload["version"] = 0  # as written by an older version of the code
    save_checkpoint(tmp_path / "checkpoint.pt", payload)
    with pytest.raises(ConfigChangedError, match="format version 0"):
        _train(data, tmp_path)
    run = _train(data, tmp_path, on_config_change="restart")
    assert run.resumed_from is None and run.finished
