"""Tests of occ.train.run_setup: checkpoint validation order, resume of optimisers and sampler, payload layout, step loop."""

from __future__ import annotations

import dataclasses
import io

import pandas as pd
import pytest
import torch

import occ.train.run_setup as run_state
from occ.checkpoint import TrainLog, load_checkpoint, save_checkpoint
from occ.config import ModelConfig, TrainConfig, to_dict
from occ.errors import CheckpointError
from occ.train.run_setup import (
    Expect,
    StepsDone,
    checkpoint_payload,
    default_progress,
    kept_message,
    load_run_checkpoint,
    restore_run,
    run_files,
    StepLoop,
)
from occ.seeding import make_generator

MODEL = ModelConfig(z_dim=16, g_ch=4, d_ch=4, proj_dim=8, enc_width=4)
TRAIN = TrainConfig(loss="o2c", steps=4, batch_size=4, ckpt_every=2)
RUN = {"seed": 3, "n_clips": 12, "data_digest": "abc"}


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

    monkeypatch.setattr(run_state.sys, "stderr", Terminal())
    assert default_progress(None) is True
    assert default_progress(False) is False
    monkeypatch.setattr(run_state.sys, "stderr", io.StringIO())
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


def _drive(step_fn, *, save=None, **kwargs):
    """A trainer's loop over StepLoop: call step_fn(step, last_saved), record, save when due."""
    with StepLoop(**kwargs) as loop:
        for step in loop:
            loop.record(step_fn(step, loop.last_saved))
            if save is not None and loop.checkpoint_due:
                save(step, loop.last_saved)
                loop.saved()
    return loop.done()


def test_step_loop_logs_checkpoints_and_stops(tmp_path):
    log = TrainLog(tmp_path / "log.csv", ("step", "loss", "seconds"))
    log.start(resume_step=None)
    calls, saves = [], []

    def step_fn(step, last_saved):
        calls.append((step, last_saved))
        return {"step": step, "loss": 1.0 / step}

    done = _drive(step_fn, start=0, steps=5, log=log, progress=False, desc="t",
                  postfix=lambda row: {"loss": f"{row['loss']:.2f}"}, save=lambda s, last: saves.append((s, last)),
                  ckpt_every=2, stop_after=3)
    assert calls == [(1, 0), (2, 0), (3, 2)] and saves == [(2, 0)]
    assert done == StepsDone(step=3, steps=5, last_saved=2, seconds=done.seconds) and not done.finished
    assert done.seconds > 0
    done = _drive(step_fn, start=3, steps=5, log=log, progress=False, desc="t",
                  save=lambda s, last: saves.append((s, last)), ckpt_every=2)
    assert calls[3:] == [(4, 3), (5, 4)] and saves[1:] == [(4, 3), (5, 4)]  # every 2nd step and the last
    assert done.step == 5 and done.last_saved == 5 and done.finished
    log_df = pd.read_csv(log.path)
    assert log_df["step"].tolist() == [1, 2, 3, 4, 5] and list(log_df.columns) == ["step", "loss", "seconds"]
    again = _drive(step_fn, start=5, steps=5, log=log, progress=False, desc="t")
    assert again.step == 5 and again.seconds == 0.0 and len(calls) == 5
    unsaved = _drive(lambda s, _: {"step": s, "loss": 0.0}, start=0, steps=2, log=log, progress=False, desc="t")
    assert unsaved.step == 2 and unsaved.last_saved == 0 and not unsaved.finished


def test_step_loop_propagates_errors_and_needs_a_record(tmp_path):
    log = TrainLog(tmp_path / "log.csv", ("step", "seconds"))
    log.start(resume_step=None)

    def failing(step, last_saved):
        raise RuntimeError(f"step {step} after {last_saved}")

    with pytest.raises(RuntimeError, match="step 3 after 2"):
        _drive(failing, start=2, steps=4, log=log, progress=False, desc="t")
    with pytest.raises(RuntimeError, match="ended without StepLoop.record"):
        with StepLoop(start=0, steps=2, log=None, progress=False, desc="t") as loop:
            for _ in loop:
                pass


def test_check_finite_names_the_loss_its_parts_and_what_to_do():
    from occ.errors import TrainingDivergedError
    from occ.train.run_setup import check_finite

    check_finite(torch.tensor(1.0), what="x", advice="a", kept="k")
    with pytest.raises(TrainingDivergedError) as info:
        check_finite(torch.tensor(float("nan")), what="diverged at step 3: the loss L", parts={"p": torch.tensor(2.0)},
                     advice="Lower the rate.", kept="")
    assert str(info.value) == "diverged at step 3: the loss L is nan (p=2.0). Lower the rate."


def test_kept_message(tmp_path):
    ckpt = tmp_path / "checkpoint.pt"
    assert kept_message(ckpt, 4) == f"The last good checkpoint {ckpt} (step 4) was kept."
    assert kept_message(ckpt, 4, step0_path=tmp_path / "step0.pt") == kept_message(ckpt, 4)
    assert kept_message(ckpt, 0) == "No checkpoint had been written yet."
    assert kept_message(ckpt, 0, step0_path=tmp_path / "step0.pt") == (
        f"No checkpoint had been written yet ({tmp_path / 'step0.pt'} holds step 0)."
    )
