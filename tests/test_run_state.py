"""Tests of occ.train.run_setup: the run set-up (lock, restart, saving), checkpoint validation order, resume of
optimisers and sampler, payload layout, the step loop and the divergence check."""

from __future__ import annotations

import dataclasses
import io

import pandas as pd
import pytest
import torch

import occ.train.run_setup as run_setup
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

    monkeypatch.setattr(run_setup.sys, "stderr", Terminal())
    assert default_progress(None) is True
    assert default_progress(False) is False
    monkeypatch.setattr(run_setup.sys, "stderr", io.StringIO())
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


@dataclasses.dataclass(frozen=True)
class _World(run_setup.World):
    """A process of a parallel run without a process group: ``others_finite`` is what the other processes saw."""

    others_finite: bool = True
    barriers: list = dataclasses.field(default_factory=list)

    def all_true(self, flag: bool) -> bool:
        return flag and self.others_finite

    def barrier(self) -> None:
        self.barriers.append(self.rank)


def test_stop_if_diverged_stops_every_process_and_names_what_diverged():
    from occ.errors import TrainingDivergedError
    from occ.train.run_setup import stop_if_diverged

    kw = dict(what="training diverged at step 3: the loss L", advice="Lower the rate.", kept="Step 2 was kept.")
    stop_if_diverged(torch.tensor(1.0), w=_World(rank=0, size=2), **kw)  # finite everywhere: go on
    with pytest.raises(TrainingDivergedError) as here:  # this process's loss: its value and its terms
        stop_if_diverged(torch.tensor(float("inf")), w=_World(rank=1, size=2, others_finite=False),
                         parts={"p": torch.tensor(2.0)}, **kw)
    assert str(here.value) == ("training diverged at step 3: the loss L is inf (p=2.0). Step 2 was kept. "
                               "Lower the rate.")
    with pytest.raises(TrainingDivergedError) as other:  # finite here, not on another process: stop here too
        stop_if_diverged(torch.tensor(1.0), w=_World(rank=0, size=2, others_finite=False), **kw)
    assert str(other.value) == ("training diverged at step 3: the loss L is not finite or past 10000 on another "
                                "process. Step 2 was kept. Lower the rate.")
    with pytest.raises(TrainingDivergedError, match=r"^x is nan\. a$"):  # one process: check_finite
        stop_if_diverged(torch.tensor(float("nan")), w=run_setup.World(), what="x", advice="a", kept="")


def test_step_loop_divergence_check_reads_the_loops_counters(tmp_path):
    from occ.errors import TrainingDivergedError

    ckpt, step0 = tmp_path / "checkpoint.pt", tmp_path / "step0.pt"
    kw = dict(steps=6, log=None, progress=False, desc="t", ckpt_every=2, checkpoint=ckpt, task="SupCon pretraining",
              advice="Lower supcon.lr.")
    nan = torch.tensor(float("nan"))
    with pytest.raises(TrainingDivergedError) as info:
        with StepLoop(start=0, step0=step0, **kw) as loop:
            for step in loop:
                loop.stop_if_diverged(torch.tensor(1.0), what="loss")
                loop.record({"step": step})
                if loop.checkpoint_due:
                    loop.check_weights(torch.nn.Linear(2, 2))
                    loop.saved()
                if step == 2:
                    with pytest.raises(TrainingDivergedError) as first:  # the step in progress, not the last one done
                        loop.stop_if_diverged(nan, what="loss")
                    assert str(first.value) == ("SupCon pretraining diverged at step 3: the loss is nan. The last "
                                                f"good checkpoint {ckpt} (step 2) was kept. Lower supcon.lr.")
                if step == 3:
                    bad = torch.nn.Linear(2, 2)
                    with torch.no_grad():
                        bad.weight.fill_(float("nan"))
                    loop.check_weights(bad)
    assert str(info.value) == (f"training diverged at step 3: Linear weight 'weight' is not finite, so no checkpoint "
                               f"was written. The last good checkpoint {ckpt} (step 2) was kept. Lower supcon.lr.")
    with pytest.raises(TrainingDivergedError, match=rf"at step 1: the loss is nan \(a=1\.0\)\. No checkpoint had been "
                                                    rf"written yet \({step0} holds step 0\)\. Lower supcon\.lr\.$"):
        with StepLoop(start=0, step0=step0, **kw) as loop:
            for _ in loop:
                loop.stop_if_diverged(nan, what="loss", parts={"a": torch.tensor(1.0)})
    with pytest.raises(TrainingDivergedError, match=r"^fine-tuning diverged at step 5: the loss is nan\. Rerun\.$"):
        with StepLoop(start=4, steps=6, log=None, progress=False, desc="t", task="fine-tuning",
                      advice="Rerun.") as loop:  # no checkpoint: nothing to say about one
            for _ in loop:
                loop.stop_if_diverged(nan, what="loss")


def _open(out_dir, **kw):
    return run_setup.open_run(out_dir, who="trainer", device="cpu", progress=None, checkpoint="checkpoint.pt",
                              log="log.csv", columns=("step", "loss"), **kw)


def test_open_run_locks_the_folder_and_names_the_run(tmp_path):
    from occ.errors import ConfigError, RunLockedError

    with _open(tmp_path / "run") as run:
        assert (tmp_path / "run" / run_setup.LOCK_NAME).is_file()  # created and locked
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
    assert not (tmp_path / "run" / run_setup.LOCK_NAME).exists()
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
        assert sorted(p.name for p in tmp_path.iterdir()) == [run_setup.LOCK_NAME]  # emptied, still locked
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
        run = run_setup.RunSetup(w=w, device=torch.device("cpu"), progress=False, out_dir=tmp_path,
                                 checkpoint=tmp_path / "c.pt", log=None, who="t", on_config_change="error")
        run.save(run.checkpoint, payload)
        assert w.barriers == [rank]
        assert (tmp_path / "c.pt").exists() == (rank == 0) and len(built) == (rank == 0)  # rank 1 builds nothing
    assert load_checkpoint(tmp_path / "c.pt")["step"] == 1
