"""Tests of occ.train.step_loop (the step loop: log, checkpoint timing, counters) and of the divergence guard's checks
it calls (occ.guard)."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
import torch

from occ.checkpoint import TrainLog
from occ.train.distributed import World
from occ.guard import kept_message
from occ.train.step_loop import StepLoop, StepsDone


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


def test_check_loss_finite_names_the_loss_its_parts_and_what_to_do():
    from occ.errors import TrainingDivergedError
    from occ.guard import check_loss_finite

    check_loss_finite(torch.tensor(1.0), what="x", advice="a", kept="k")
    check_loss_finite(torch.tensor(1e30), what="x", advice="a", kept="k")  # finite: the bound is check_loss_bound's
    with pytest.raises(TrainingDivergedError) as info:
        check_loss_finite(torch.tensor(float("nan")), what="diverged at step 3: the loss L", parts={"p": torch.tensor(2.0)},
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
class _World(World):
    """A process of a parallel run without a process group: ``others_finite`` is what the other processes saw."""

    others_finite: bool = True
    barriers: list = dataclasses.field(default_factory=list)

    def all_true(self, flag: bool) -> bool:
        return flag and self.others_finite

    def barrier(self) -> None:
        self.barriers.append(self.rank)


def test_stop_if_diverged_stops_every_process_and_names_what_diverged():
    from occ.errors import TrainingDivergedError
    from occ.guard import stop_if_diverged

    kw = dict(what="training diverged at step 3: the loss L", advice="Lower the rate.", kept="Step 2 was kept.")
    stop_if_diverged(torch.tensor(1.0), w=_World(rank=0, size=2), **kw)  # finite everywhere: go on
    with pytest.raises(TrainingDivergedError) as here:  # this process's loss: its value and its terms
        stop_if_diverged(torch.tensor(float("inf")), w=_World(rank=1, size=2, others_finite=False),
                         parts={"p": torch.tensor(2.0)}, **kw)
    assert str(here.value) == ("training diverged at step 3: the loss L is inf (p=2.0). Step 2 was kept. "
                               "Lower the rate.")
    with pytest.raises(TrainingDivergedError) as other:  # finite here, not on another process: stop here too
        stop_if_diverged(torch.tensor(1.0), w=_World(rank=0, size=2, others_finite=False), **kw)
    assert str(other.value) == ("training diverged at step 3: the loss L is not finite or past 500 on another "
                                "process. Step 2 was kept. Lower the rate.")
    with pytest.raises(TrainingDivergedError, match=r"^x is nan\. a$"):  # one process: check_loss_finite
        stop_if_diverged(torch.tensor(float("nan")), w=World(), what="x", advice="a", kept="")


def test_step_loop_divergence_check_reads_the_loops_counters(tmp_path):
    from occ.errors import TrainingDivergedError

    ckpt, step0 = tmp_path / "checkpoint.pt", tmp_path / "step0.pt"
    kw = dict(steps=6, log=None, progress=False, desc="t", ckpt_every=2, checkpoint=ckpt, task="SupCon pretraining",
              advice="Lower supcon.lr.")
    nan = torch.tensor(float("nan"))
    with pytest.raises(TrainingDivergedError) as info:
        with StepLoop(start=0, step0=step0, **kw) as loop:
            for step in loop:
                loop.check_loss(torch.tensor(1.0), what="loss")
                loop.record({"step": step})
                if loop.checkpoint_due:
                    loop.check_before_saving(torch.nn.Linear(2, 2))
                    loop.saved()
                if step == 2:
                    with pytest.raises(TrainingDivergedError) as first:  # the step in progress, not the last one done
                        loop.check_loss(nan, what="loss")
                    assert str(first.value) == ("SupCon pretraining diverged at step 3: the loss is nan. The last "
                                                f"good checkpoint {ckpt} (step 2) was kept. Lower supcon.lr.")
                if step == 3:
                    bad = torch.nn.Linear(2, 2)
                    with torch.no_grad():
                        bad.weight.fill_(float("nan"))
                    loop.check_before_saving(bad)
    assert str(info.value) == (f"training diverged at step 3: Linear weight 'weight' is not finite, so no checkpoint "
                               f"was written. The last good checkpoint {ckpt} (step 2) was kept. Lower supcon.lr.")
    with pytest.raises(TrainingDivergedError, match=rf"at step 1: the loss is nan \(a=1\.0\)\. No checkpoint had been "
                                                    rf"written yet \({step0} holds step 0\)\. Lower supcon\.lr\.$"):
        with StepLoop(start=0, step0=step0, **kw) as loop:
            for _ in loop:
                loop.check_loss(nan, what="loss", parts={"a": torch.tensor(1.0)})
    with pytest.raises(TrainingDivergedError, match=r"^fine-tuning diverged at step 5: the loss is nan\. Rerun\.$"):
        with StepLoop(start=4, steps=6, log=None, progress=False, desc="t", task="fine-tuning",
                      advice="Rerun.") as loop:  # no checkpoint: nothing to say about one
            for _ in loop:
                loop.check_loss(nan, what="loss")
