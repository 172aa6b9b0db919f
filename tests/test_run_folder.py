"""Tests of occ.train.run_folder: a run folder has one writer, no stray temporaries, a complete log, a fresh start on
a changed configuration under the pipeline, and a clean stop on Ctrl-C; the run set-up's parts (checkpoint validation
order, resume of optimisers and sampler, payload layout, rank-0 saving)."""

from __future__ import annotations

import dataclasses
import io
import os
import signal
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
import torch

import occ.train.run_folder as run_folder
from occ.checkpoint import TrainLog, load_checkpoint, save_checkpoint
from occ.config import ModelConfig, TrainConfig, to_dict
from occ.errors import CheckpointError, ConfigChangedError, RunLockedError, TrainingInterrupted
from occ.seeding import make_generator
from occ.train.gan_train import train_gan
from occ.train.run_folder import (LOCK_NAME, Expect, checkpoint_payload, default_progress, load_run_checkpoint,
                                  restore_run, run_files, run_lock)
from occ.train.step_loop import StepLoop
from test_step_loop import _World

N_CLASSES = 3
MODEL = ModelConfig(z_dim=16, g_ch=4, d_ch=4, proj_dim=8, enc_width=4)
TRAIN = TrainConfig(loss="o2c", steps=4, batch_size=4, ckpt_every=2)
RUN = {"seed": 3, "n_clips": 12, "data_digest": "abc"}


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


def _trained_linear():
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    optim = torch.optim.Adam(net.parameters(), lr=1e-2)
    net(torch.randn(4, 3)).sum().backward()
    optim.step()
    return net, optim


def _write(tmp_path, **over):
    net, optim = _trained_linear()
    payload = checkpoint_payload("gan", model=MODEL, train=TRAIN, run=RUN, step=2, sampler=make_generator(7),
                                 n_classes=3, g=net.state_dict(), g_optim=optim.state_dict())
    payload.update(over)
    return save_checkpoint(tmp_path / "checkpoint.pt", payload)


def test_default_progress(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(run_folder.sys, "stderr", Terminal())
    assert default_progress(None) is True
    assert default_progress(False) is False
    monkeypatch.setattr(run_folder.sys, "stderr", io.StringIO())
    assert default_progress(None) is False
    assert default_progress(True) is True


def test_run_files(tmp_path):
    out_dir, ckpt, log = run_files(tmp_path / "a" / "b", "c.pt", "log.csv", ("step", "loss"))
    assert out_dir.is_dir() and ckpt == out_dir / "c.pt"
    assert log.path == out_dir / "log.csv" and log.columns == ["step", "loss"] and not log.path.exists()
    out_dir, _, _ = run_files(tmp_path / "none", "c.pt", "log.csv", ("step",), create=False)
    assert not out_dir.exists()


def test_checkpoint_payload_layout_and_copies():
    net, optim = _trained_linear()
    sampler = make_generator(1)
    payload = checkpoint_payload("encoder", stage="supcon", model=MODEL, train=TRAIN, run=RUN, step=5.0,
                                 sampler=sampler, n_classes=3, encoder=net.state_dict(), optim=optim.state_dict())
    assert list(payload) == ["kind", "stage", "model", "train", "run", "step", "n_classes", "encoder", "optim", "rng"]
    assert payload["model"] == to_dict(MODEL) and payload["train"] == to_dict(TRAIN)
    assert payload["run"] == RUN and payload["run"] is not RUN
    assert payload["step"] == 5 and isinstance(payload["step"], int)
    assert torch.equal(payload["rng"]["generators"]["sampler"], sampler.get_state())
    with torch.no_grad():
        net.weight.add_(1.0)  # the payload holds copies
    assert not torch.equal(payload["encoder"]["weight"], net.weight)
    assert not payload["encoder"]["weight"].requires_grad
    plain = checkpoint_payload("gan", model=MODEL, train=TRAIN, run=RUN, step=0, g_ema=None, class_names=["a"])
    assert list(plain) == ["kind", "model", "train", "run", "step", "g_ema", "class_names"]


def test_load_run_checkpoint_order_of_checks(tmp_path):
    assert load_run_checkpoint(tmp_path / "checkpoint.pt", kind="gan", model=MODEL, n_classes=3, folder="run folder",
                               missing_ok=True) is None
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_run_checkpoint(tmp_path / "checkpoint.pt", kind="gan", model=MODEL, n_classes=3, folder="run folder")
    path = _write(tmp_path)
    kw = dict(kind="gan", model=MODEL, folder="stage folder")
    payload = load_run_checkpoint(path, n_classes=3, checks=[Expect("run", RUN, "run (seed)")], **kw)
    assert payload["step"] == 2
    with pytest.raises(CheckpointError, match=r"written for n_classes=3, requested 4; use the same data or delete "
                                              r"the stage folder to start afresh\."):
        load_run_checkpoint(path, n_classes=4, **kw)
    with pytest.raises(CheckpointError, match=r"g_ch: checkpoint 4 vs requested 8"):  # architecture first
        load_run_checkpoint(path, kind="gan", model=dataclasses.replace(MODEL, g_ch=8), n_classes=4, folder="x")
    other_train = to_dict(dataclasses.replace(TRAIN, loss="2c"))
    # load_kwargs are checked by load_checkpoint, before n_classes ...
    with pytest.raises(CheckpointError, match=r"training configuration \(train\): loss"):
        load_run_checkpoint(path, n_classes=4, expect_train=other_train, **kw)
    # ... ``checks`` after it, in their order.
    with pytest.raises(CheckpointError, match="n_classes=3, requested 4"):
        load_run_checkpoint(path, n_classes=4, checks=[Expect("train", other_train, "T")], **kw)
    bad_run = {**RUN, "seed": 4}
    with pytest.raises(CheckpointError, match=r"another T: loss: checkpoint 'o2c' vs requested '2c'"):
        load_run_checkpoint(path, n_classes=3, checks=[Expect("train", other_train, "T"), Expect("run", bad_run, "R")],
                            **kw)
    with pytest.raises(CheckpointError, match=r"another R: seed: checkpoint 3 vs requested 4"):
        load_run_checkpoint(path, n_classes=3, checks=[Expect("train", other_train, "T", ("loss",)),
                                                       Expect("run", bad_run, "R")], **kw)


def test_restore_run_fresh_and_resumed(tmp_path):
    log = TrainLog(tmp_path / "log.csv", ("step", "loss"))
    (tmp_path / "log.csv").write_text("step,loss\n1,0.5\n2,0.25\n3,0.125\n")
    optim = torch.optim.Adam(torch.nn.Linear(3, 2).parameters(), lr=1e-2)
    assert restore_run(None, log=log, sampler=make_generator(0), optimizers={"g_optim": optim}) == (0, None)
    assert optim.state_dict()["state"] == {}  # a fresh run loads nothing
    assert pd.read_csv(log.path)["step"].tolist() == []

    (tmp_path / "log.csv").write_text("step,loss\n1,0.5\n2,0.25\n3,0.125\n")
    payload = load_checkpoint(_write(tmp_path))
    sampler = make_generator(0)
    fresh_net = torch.nn.Linear(3, 2)
    fresh_optim = torch.optim.Adam(fresh_net.parameters(), lr=1e-2)
    assert restore_run(payload, log=log, sampler=sampler, optimizers={"g_optim": fresh_optim}) == (2, 2)
    assert pd.read_csv(log.path)["step"].tolist() == [1, 2]  # the row past the checkpoint is dropped
    assert torch.equal(torch.randint(0, 1000, (5,), generator=sampler),
                       torch.randint(0, 1000, (5,), generator=make_generator(7)))
    _, trained_optim = _trained_linear()
    for a, b in zip(fresh_optim.state_dict()["state"].values(), trained_optim.state_dict()["state"].values()):
        assert all(torch.equal(a[k], b[k]) for k in a)
    del payload["rng"]["generators"]["sampler"]
    with pytest.raises(CheckpointError, match="no generator 'sampler'"):
        restore_run(payload, log=log, sampler=sampler, optimizers={})


def _open(out_dir, **kw):
    return run_folder.open_run(out_dir, who="trainer", device="cpu", progress=None, checkpoint="checkpoint.pt",
                              log="log.csv", columns=("step", "loss"), **kw)


def test_open_run_locks_the_folder_and_names_the_run(tmp_path):
    from occ.errors import ConfigError, RunLockedError

    with _open(tmp_path / "run") as run:
        assert (tmp_path / "run" / run_folder.LOCK_NAME).is_file()  # created and locked
        assert run.checkpoint == tmp_path / "run" / "checkpoint.pt" and run.out_dir == tmp_path / "run"
        assert run.log.path == tmp_path / "run" / "log.csv" and not run.log.path.exists()  # not started yet
        assert run.device == torch.device("cpu") and run.progress is False and run.w.main
        with pytest.raises(RunLockedError, match="another training"):
            with _open(tmp_path / "run"):
                pass
        mels, labels = run.check_inputs(torch.zeros(2, 80, 344, dtype=torch.float64), torch.tensor([0, 1]),
                                        n_classes=2, configs=(MODEL, TRAIN))
        assert mels.dtype == torch.float32 and labels.dtype == torch.int64
        with pytest.raises(ConfigError, match="train.batch_size"):
            run.check_inputs(mels, labels, n_classes=2, configs=(MODEL, dataclasses.replace(TRAIN, batch_size=0)))
    assert not (tmp_path / "run" / run_folder.LOCK_NAME).exists()
    with pytest.raises(ConfigError, match=r"trainer: on_config_change='maybe'"):
        with _open(tmp_path / "run", on_config_change="maybe"):
            pass


def test_a_changed_configuration_restarts_only_when_asked(tmp_path, capsys):
    from occ.errors import ConfigChangedError

    kw = dict(kind="gan", model=MODEL, n_classes=3, folder="run folder", missing_ok=True)
    other = [Expect("run", {**RUN, "seed": 4}, "run (seed)")]
    with _open(tmp_path) as run:
        assert run.load_checkpoint(**kw) is None  # nothing there: a fresh run
        _write(tmp_path)
        (tmp_path / "log.csv").write_text("step,loss\n1,0.5\n2,0.25\n")
        assert run.load_checkpoint(checks=[Expect("run", RUN, "run (seed)")], **kw)["step"] == 2  # same: resume
        with pytest.raises(ConfigChangedError, match="seed: checkpoint 3 vs requested 4"):
            run.load_checkpoint(checks=other, **kw)
    assert (tmp_path / "checkpoint.pt").is_file()
    with _open(tmp_path, on_config_change="restart") as run:
        assert run.load_checkpoint(checks=other, **kw) is None
        assert sorted(p.name for p in tmp_path.iterdir()) == [run_folder.LOCK_NAME]  # emptied, still locked
    assert capsys.readouterr().err == (f"trainer: {tmp_path / 'checkpoint.pt'}: written with another run (seed): seed: "
                                       "checkpoint 3 vs requested 4; starting a fresh run there (removed "
                                       "checkpoint.pt, log.csv).\n")


def test_save_writes_on_rank_0_and_every_process_waits(tmp_path):
    built = []

    def payload():
        built.append(1)
        return checkpoint_payload("gan", model=MODEL, train=TRAIN, run=RUN, step=1)

    for rank in (1, 0):
        w = _World(rank=rank, size=2)
        run = run_folder.RunFolder(w=w, device=torch.device("cpu"), progress=False, out_dir=tmp_path,
                                 checkpoint=tmp_path / "c.pt", log=None, who="t", on_config_change="error")
        run.save(run.checkpoint, payload)
        assert w.barriers == [rank]
        assert (tmp_path / "c.pt").exists() == (rank == 0) and len(built) == (rank == 0)  # rank 1 builds nothing
    assert load_checkpoint(tmp_path / "c.pt")["step"] == 1
