"""The step loop of both trainers (:class:`StepLoop`): timing, the log, checkpoint timing and the run's counters.

A trainer's steps read top to bottom (the run folder around them is :mod:`occ.train.run_folder`'s)::

    with StepLoop(start=start, steps=steps, log=run.log, progress=run.progress, desc="GAN o2c", ...) as loop:
        for step in loop:
            loss = ...
            loop.check_loss(loss, what="loss")          # every process stops together
            ...update...
            loop.record({"step": step, ...})            # the watched weights, time, log row, progress bar
            if loop.checkpoint_due:
                loop.check_before_saving(g, d)          # no non-finite weight reaches a checkpoint
                run.save(run.checkpoint, lambda: checkpoint_payload(...))
                loop.saved()
    done = loop.done()                                  # StepsDone

:class:`StepLoop` owns the run's counters (the step done and the step of the last checkpoint), which the divergence
messages name, and calls the divergence guard (:mod:`occ.guard`: the bounds, the checks and their messages) with them.
Ctrl-C during the steps stops cleanly with :class:`~occ.errors.TrainingInterrupted`, the last checkpoint kept. Nothing
here draws a random number.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm  # the text bar: no notebook-widget import, no IProgress warning in a kernel

from occ.checkpoint import TrainLog
from occ.errors import TrainingInterrupted
from occ.guard import (LOSS_FLOOR, advice_for, check_weights_finite, culprit, kept_message, stop_if_diverged,
                       stop_if_weights_run_away, suspect_sentence)
from occ.guard import weight_bound as _weight_bound
from occ.train.distributed import world

__all__ = ["StepLoop", "StepsDone"]


@dataclass
class StepsDone:
    """Outcome of a :class:`StepLoop` (:meth:`StepLoop.done`).

    Attributes
    ----------
    step : int
        Steps done, counting those before a resume.
    steps : int
        Steps requested.
    last_saved : int
        Step of the last checkpoint written (the resume step when none was written in this call).
    seconds : float
        Wall time of the steps run in this call, s.
    """

    step: int
    steps: int
    last_saved: int
    seconds: float

    @property
    def finished(self) -> bool:
        """Every requested step is done and the last one is in the checkpoint."""
        return self.step >= self.steps and self.last_saved == self.step

class StepLoop:
    """Steps ``start + 1 .. steps`` of a training loop: timing, the log, the progress bar, checkpoint timing, the
    divergence check, Ctrl-C; and the run's counters (:attr:`step`, :attr:`last_saved`), kept here alone.

    A trainer reads top to bottom::

        with StepLoop(start=start, steps=steps, log=run.log, ...) as loop:
            for step in loop:
                row = {"step": step, **d_step(..., check=loop.check_loss), **g_step(...)}
                loop.record(row)               # time, log row, progress bar
                if loop.checkpoint_due:
                    run.save(run.checkpoint, lambda: checkpoint_payload(...))
                    loop.saved()
        done = loop.done()

    Parameters
    ----------
    start : int
        Steps already done.
    steps : int
        Steps requested.
    log : TrainLog or None
        The started log; each row is appended with its wall time under ``"seconds"`` (``None``: no log, as on
        the processes of a parallel run other than rank 0).
    progress : bool
        Show a progress bar.
    desc : str
        The bar's label.
    postfix : callable, optional
        ``postfix(row)``: the values shown after the bar.
    ckpt_every : int, optional
        Checkpoint interval; :attr:`checkpoint_due` is true after every step divisible by it and after the
        last. Without it no checkpoint is due.
    stop_after : int, optional
        Stop, as if the process were killed, after this many steps of this loop.
    checkpoint : Path, optional
        The checkpoint file, named when the run is interrupted or diverges.
    task : str
        What diverged, in a divergence message (``"SupCon pretraining"``).
    advice : str
        What to do before retrying, in a divergence message; ``{remedy}`` in it becomes what to do about the suspect
        settings (:func:`occ.guard.advice_for`: ``"lower train.lr_d"``; every suspect setting when the term or network
        that ran away is not known here).
    step0 : Path, optional
        The untrained models' file, named by a divergence message before the first checkpoint.
    suspects : mapping of str to str, optional
        The setting to suspect when a loss term or a watched network runs away, by the term's name in ``parts``
        (``"d_contrastive"``), by ``"loss"`` for a loss without parts, or by the network's key in ``watch``; named
        in the divergence message.
    watch : mapping of str to torch.nn.Module, optional
        The networks whose parameters the guard reads at the end of every step (:func:`occ.guard.stop_if_weights_run_away`,
        from :meth:`record`), by the name a message gives them (``{"G": g, "D": d}``; ``None`` values skipped).
        Their parameters are listed when the loop starts (optimisers update them in place).
    loss_bound : float
        The largest magnitude a checked loss may take (:func:`occ.guard.gan_loss_bound`, ...; default
        :data:`occ.guard.LOSS_FLOOR`).
    weight_bound : float, optional
        The largest magnitude a watched parameter may take (default: :func:`occ.guard.weight_bound` of ``steps``).

    Attributes
    ----------
    step : int
        Steps done (the step in progress is ``step + 1``).
    last_saved : int
        Step of the last checkpoint written (``start`` until one is written).

    Raises
    ------
    TrainingInterrupted
        Ctrl-C (SIGINT) inside the ``with`` block: the step in progress is dropped, the last checkpoint written is
        kept, and the message (one line) says which one.
    """

    def __init__(self, *, start: int, steps: int, log: TrainLog | None, progress: bool, desc: str,
                 postfix: Callable[[dict[str, Any]], dict[str, str]] | None = None, ckpt_every: int | None = None,
                 stop_after: int | None = None, checkpoint: Path | None = None, task: str = "training",
                 advice: str = "", step0: Path | None = None, suspects: Mapping[str, str] | None = None,
                 watch: Mapping[str, torch.nn.Module | None] | None = None, loss_bound: float = LOSS_FLOOR,
                 weight_bound: float | None = None) -> None:
        self.step = self.last_saved = start
        self.steps, self.log, self.desc, self.postfix = steps, log, desc, postfix
        self.ckpt_every, self.stop_after, self.checkpoint = ckpt_every, stop_after, checkpoint
        self.task, self.advice, self.step0 = task, advice, step0
        self.suspects, self.watch = dict(suspects or {}), dict(watch or {})
        self.loss_bound = loss_bound
        self.weight_bound = _weight_bound(steps) if weight_bound is None else weight_bound
        # the parameters themselves (updated in place by the optimisers), listed once
        self._watched = [p for module in self.watch.values() if module is not None for p in module.parameters()]
        self.seconds = 0.0
        self._ran = 0
        self._t0: float | None = None
        self._bar = tqdm(total=steps, initial=min(start, steps), disable=not progress, desc=desc, unit="step",
                         dynamic_ncols=True)

    def __enter__(self) -> StepLoop:
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: Any) -> bool:
        self._bar.close()
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
            if self.ckpt_every is None or self.checkpoint is None:
                kept = "nothing was saved; rerun to start it again"
            elif self.last_saved > 0:
                kept = f"{self.checkpoint} (step {self.last_saved}) was kept; rerun to resume from it"
            else:
                kept = "no checkpoint had been written yet; rerun to start afresh"
            raise TrainingInterrupted(
                f"{self.desc}: interrupted (Ctrl-C) in step {self.step + 1} of {self.steps}; {kept}.") from None
        return False

    def __iter__(self) -> Iterator[int]:
        while self.step < self.steps and (self.stop_after is None or self._ran < self.stop_after):
            self._t0 = time.perf_counter()
            expected = self.step + 1
            yield expected
            if self.step != expected:
                raise RuntimeError(f"{self.desc}: step {expected} ended without StepLoop.record(row).")

    def record(self, row: dict[str, Any]) -> None:
        """End the current step: the watched networks pass the guard (:func:`occ.guard.stop_if_weights_run_away`),
        then the step's wall time goes into ``row["seconds"]``, the row into the log and the bar."""
        if self.watch:
            self._check_weights()
        row["seconds"] = time.perf_counter() - self._t0
        self.seconds += row["seconds"]
        self.step += 1
        self._ran += 1
        if self.log is not None:
            self.log.append(row)
        self._bar.update(1)
        if self.postfix is not None:
            self._bar.set_postfix(**self.postfix(row), refresh=False)

    @property
    def checkpoint_due(self) -> bool:
        """The step just recorded is one to checkpoint (every ``ckpt_every`` and the last)."""
        if self.ckpt_every is None:
            return False
        return self.step % self.ckpt_every == 0 or self.step == self.steps

    def saved(self) -> None:
        """Say that the checkpoint of the step just recorded is written."""
        self.last_saved = self.step

    def done(self) -> StepsDone:
        """Steps done, the last checkpoint's step and the wall time of this loop's steps."""
        return StepsDone(step=self.step, steps=self.steps, last_saved=self.last_saved, seconds=self.seconds)

    def kept(self) -> str:
        """The sentence of a divergence message that says which checkpoint survives (empty when none is written)."""
        if self.ckpt_every is None or self.checkpoint is None:
            return ""
        return kept_message(self.checkpoint, self.last_saved, step0_path=self.step0)

    def check_loss(self, loss: torch.Tensor, *, what: str, parts: Mapping[str, torch.Tensor] | None = None) -> None:
        """The guard's :func:`~occ.guard.stop_if_diverged` in the step in progress: ``"<task> diverged at step <n>:
        the <what> is nan ..."`` (or a finite value past the loop's ``loss_bound``), with the suspect settings (of the
        largest term of ``parts``), the checkpoint kept and the advice.

        Parameters
        ----------
        loss : torch.Tensor
            A 0-d loss of this process.
        what : str
            The loss's name (``"discriminator loss L_D"``).
        parts : mapping of str to torch.Tensor, optional
            The loss's terms, listed in the message.
        """
        key = lambda: culprit(parts) if parts else "loss"  # noqa: E731 (read on failure only)
        stop_if_diverged(loss, w=world(), what=f"{self.task} diverged at step {self.step + 1}: the {what}",
                         parts=parts, advice=lambda: self._advice(key()), kept=self.kept(),
                         suspect=lambda: self._suspect(key()), bound=self.loss_bound,
                         elsewhere=lambda: self._advice(None))

    def _check_weights(self) -> None:
        """The guard's :func:`~occ.guard.stop_if_weights_run_away` on the watched networks, at the end of the step in
        progress."""
        stop_if_weights_run_away(self.watch, w=world(), bound=self.weight_bound, parameters=self._watched,
                                 where=f"{self.task} diverged at step {self.step + 1}: ", suspect=self._suspect,
                                 advice=self._advice, kept=self.kept())

    def _suspect(self, key: str) -> str:
        return suspect_sentence(self.suspects, key)

    def _advice(self, key: str | None) -> str:
        return advice_for(self.advice, self.suspects, key)

    def check_before_saving(self, *modules: torch.nn.Module | None) -> None:
        """The guard's :func:`~occ.guard.check_weights_finite` of the step just recorded, before its checkpoint is
        written."""
        check_weights_finite(*modules, step=self.step, advice=self._advice(None), kept=self.kept())
