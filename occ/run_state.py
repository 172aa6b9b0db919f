"""The run bookkeeping shared by the training loops of ``occ.gan_train`` and ``occ.supcon_train``.

A resumable training stage follows one pattern: validate the checkpoint in the run folder before
building anything (:func:`load_run_checkpoint`), build the models and optimisers, restore their state
and the batch sampler's random state from the checkpoint or start a fresh log
(:func:`restore_run`), then run the steps, appending one log row per step and writing the
checkpoint (:func:`checkpoint_payload`) every ``ckpt_every`` steps and at the end
(:func:`run_steps`). None of these helpers draws a random number: the draws, and so the trained
weights and the exactness of resume, are the caller's alone.

A run folder has one writer at a time (:func:`run_lock`: a second one gets :class:`~occ.errors.RunLockedError`
naming the folder and the holder's pid; the lock of a process that died is released by the system), and the
lock's holder removes the temporary files a killed checkpoint write left behind. Ctrl-C during the steps
stops cleanly with :class:`~occ.errors.TrainingInterrupted`, the last checkpoint kept.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from tqdm import tqdm  # the text bar: no notebook-widget import, no IProgress warning in a kernel

from occ.checkpoint import TrainLog, check_config, cpu_state, load_checkpoint
from occ.config import to_dict
from occ.atomic import umask_mode
from occ.errors import ConfigChangedError, RunLockedError, TrainingInterrupted
from occ.seeding import rng_state, set_rng_state

try:
    import fcntl
except ImportError:  # not POSIX: no locking
    fcntl = None

__all__ = [
    "SAMPLER",
    "Expect",
    "StepsDone",
    "default_progress",
    "run_files",
    "load_run_checkpoint",
    "restore_run",
    "checkpoint_payload",
    "run_steps",
    "kept_message",
    "LOCK_NAME",
    "run_lock",
    "clear_run_folder",
    "locked",
]

#: The lock file in a run folder (holds the pid of the process training there; removed when it finishes).
LOCK_NAME = ".lock"

#: Name under which a checkpoint's ``rng`` entry stores the state of the loop's batch sampler.
SAMPLER = "sampler"


class Expect(NamedTuple):
    """One part of a checkpoint that must match what the caller will continue with.

    Attributes
    ----------
    part : str
        The payload key holding a flat dict (``"train"``, ``"run"``).
    values : mapping
        The expected values.
    what : str
        How the part is named in the error message.
    ignore : tuple of str
        Keys allowed to differ.
    """

    part: str
    values: Mapping[str, Any]
    what: str
    ignore: tuple[str, ...] = ()


@dataclass
class StepsDone:
    """Outcome of :func:`run_steps`.

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


def default_progress(progress: bool | None) -> bool:
    """``progress``, or when it is ``None``, whether stderr is a terminal (show a progress bar there only)."""
    return sys.stderr.isatty() if progress is None else progress


def run_files(out_dir: str | Path, ckpt_name: str, log_name: str, columns: Iterable[str], *,
              create: bool = True) -> tuple[Path, Path, TrainLog]:
    """The run folder, its checkpoint path and its per-step log (the log file is not touched yet).

    Parameters
    ----------
    out_dir : str or Path
        The run folder.
    ckpt_name, log_name : str
        File names of the checkpoint and of the CSV log in ``out_dir``.
    columns : iterable of str
        The log's columns (``"step"`` first).
    create : bool
        Create ``out_dir`` (with its parents) when missing.

    Returns
    -------
    (Path, Path, TrainLog)
        ``out_dir``, ``out_dir / ckpt_name`` and the log.
    """
    out_dir = Path(out_dir)
    if create:
        out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir, out_dir / ckpt_name, TrainLog(out_dir / log_name, columns)


def load_run_checkpoint(
    path: Path,
    *,
    kind: str,
    model: Any,
    n_classes: int,
    folder: str,
    checks: Sequence[Expect] = (),
    missing_ok: bool = False,
    **load_kwargs: Any,
) -> dict[str, Any] | None:
    """Read a stage's checkpoint and check that it was written for this architecture, data and run.

    The checks run in this order, the first failing one raising: the file and its kind, the
    architecture ``model`` and whatever ``load_kwargs`` ask :func:`occ.checkpoint.load_checkpoint` to
    check; the number of classes; then each of ``checks``.

    Parameters
    ----------
    path : Path
        The checkpoint.
    kind : {"gan", "encoder"}
        The checkpoint kind needed.
    model : ModelConfig
        The architecture the caller will build.
    n_classes : int
        The number of classes the caller trains on.
    folder : str
        What to delete to start afresh, named in the error message (``"run folder"``).
    checks : sequence of Expect
        Further parts that must match, checked in order.
    missing_ok : bool
        Return ``None`` when ``path`` does not exist (a fresh run) instead of raising.
    **load_kwargs
        Passed to :func:`occ.checkpoint.load_checkpoint` (``expect_train``, ``train_may_differ``).

    Returns
    -------
    dict or None
        The payload; ``None`` when ``missing_ok`` and there is no file.

    Raises
    ------
    CheckpointError
        The file is missing (unless ``missing_ok``), unreadable, of another kind, or was written
        for another architecture, number of classes or any part of ``checks``.
    """
    if missing_ok and not path.exists():
        return None
    payload = load_checkpoint(path, kind=kind, expect=to_dict(model), **load_kwargs)
    if payload.get("n_classes") != n_classes:
        raise ConfigChangedError(
            f"{path}: written for n_classes={payload.get('n_classes')!r}, requested {n_classes}; use the same "
            f"data or delete the {folder} to start afresh."
        )
    for part, values, what, ignore in checks:
        check_config(payload.get(part) or {}, values, what=what, path=path, ignore=ignore)
    return payload


def restore_run(payload: Mapping[str, Any] | None, *, log: TrainLog, sampler: torch.Generator,
                optimizers: Mapping[str, torch.optim.Optimizer]) -> tuple[int, int | None]:
    """Resume from ``payload`` (optimisers, then every random state) or start afresh, and start the log.

    The models' weights are the caller's to load (before moving them to the device).

    Parameters
    ----------
    payload : mapping or None
        The checkpoint to resume from, ``None`` for a fresh run.
    log : TrainLog
        The run's log: on resume its rows past the checkpoint's step are dropped, else it is emptied.
    sampler : torch.Generator
        The loop's batch sampler, set to its stored state (stored under :data:`SAMPLER`).
    optimizers : mapping of str to torch.optim.Optimizer
        Each optimiser is loaded from the payload entry of its name, in the mapping's order.

    Returns
    -------
    (int, int or None)
        The step to start from and the step resumed from (``None`` for a fresh run).

    Raises
    ------
    CheckpointError
        The stored random state is malformed or lacks the sampler.
    """
    if payload is None:
        log.start(resume_step=None)
        return 0, None
    for name, optim in optimizers.items():
        optim.load_state_dict(payload[name])
    set_rng_state(payload["rng"], generators={SAMPLER: sampler})
    start = int(payload["step"])
    log.start(resume_step=start)
    return start, start


def checkpoint_payload(kind: str, *, model: Any, train: Any, run: Mapping[str, Any], step: int,
                       stage: str | None = None, sampler: torch.Generator | None = None,
                       **parts: Any) -> dict[str, Any]:
    """A checkpoint dict in the layout of :mod:`occ.checkpoint`, ready for ``save_checkpoint``.

    Parameters
    ----------
    kind : {"gan", "encoder"}
        The checkpoint kind.
    model : ModelConfig
        The architecture (stored as a dict under ``"model"``).
    train : TrainConfig or SupConConfig
        The training configuration (stored as a dict under ``"train"``).
    run : mapping
        Seed and data identity, stored as a copy under ``"run"``.
    step : int
        Steps done.
    stage : str, optional
        Stored under ``"stage"`` (right after ``"kind"``) when given.
    sampler : torch.Generator, optional
        When given, every random state (this sampler's included) is stored last, under ``"rng"``.
    **parts
        Further entries, in order after ``"step"``: state dicts, ``n_classes``, ``class_names``, ...
        Tensors are detached and copied to the CPU.

    Returns
    -------
    dict
    """
    payload: dict[str, Any] = {"kind": kind}
    if stage is not None:
        payload["stage"] = stage
    payload.update(model=to_dict(model), train=to_dict(train), run=dict(run), step=int(step))
    payload.update((name, cpu_state(value)) for name, value in parts.items())
    if sampler is not None:
        payload["rng"] = rng_state(generators={SAMPLER: sampler})
    return payload


def run_steps(
    train_step: Callable[[int, int], dict[str, Any]],
    *,
    start: int,
    steps: int,
    log: TrainLog,
    progress: bool,
    desc: str,
    postfix: Callable[[dict[str, Any]], dict[str, str]] | None = None,
    save: Callable[[int, int], None] | None = None,
    ckpt_every: int | None = None,
    stop_after: int | None = None,
    checkpoint: Path | None = None,
) -> StepsDone:
    """Run steps ``start + 1 .. steps``: time and log each, checkpoint every ``ckpt_every``.

    Parameters
    ----------
    train_step : callable
        ``train_step(step, last_saved)`` runs step ``step`` (counted from 1) and returns its log row
        without ``"seconds"``; ``last_saved`` is the step of the last checkpoint written, for its
        error messages.
    start : int
        Steps already done.
    steps : int
        Steps requested.
    log : TrainLog
        The started log; each row is appended with its wall time under ``"seconds"``.
    progress : bool
        Show a progress bar.
    desc : str
        The bar's label.
    postfix : callable, optional
        ``postfix(row)``: the values shown after the bar.
    save : callable, optional
        ``save(step, last_saved)`` writes the checkpoint; called after every step divisible by
        ``ckpt_every`` and after the last. Without it no checkpoint is written.
    ckpt_every : int, optional
        Checkpoint interval (needed with ``save``).
    stop_after : int, optional
        Stop, as if the process were killed, after this many steps of this call.
    checkpoint : Path, optional
        The file ``save`` writes, named when the run is interrupted.

    Returns
    -------
    StepsDone

    Raises
    ------
    TrainingInterrupted
        Ctrl-C (SIGINT): the step in progress is dropped, the last checkpoint written is kept, and the
        message (one line) says which one.
    """
    step = last_saved = start
    ran = 0
    seconds = 0.0
    bar = tqdm(total=steps, initial=min(start, steps), disable=not progress, desc=desc, unit="step",
               dynamic_ncols=True)
    try:
        while step < steps:
            if stop_after is not None and ran >= stop_after:
                break
            t0 = time.perf_counter()
            row = train_step(step + 1, last_saved)
            step += 1
            ran += 1
            row["seconds"] = time.perf_counter() - t0
            seconds += row["seconds"]
            log.append(row)
            bar.update(1)
            if postfix is not None:
                bar.set_postfix(**postfix(row), refresh=False)
            if save is not None and (step % ckpt_every == 0 or step == steps):
                save(step, last_saved)
                last_saved = step
    except KeyboardInterrupt:
        if save is None or checkpoint is None:
            kept = "nothing was saved; rerun to start it again"
        elif last_saved > 0:
            kept = f"{checkpoint} (step {last_saved}) was kept; rerun to resume from it"
        else:
            kept = "no checkpoint had been written yet; rerun to start afresh"
        raise TrainingInterrupted(f"{desc}: interrupted (Ctrl-C) in step {step + 1} of {steps}; {kept}.") from None
    finally:
        bar.close()
    return StepsDone(step=step, steps=steps, last_saved=last_saved, seconds=seconds)


def kept_message(ckpt_path: Path, last_saved: int, *, step0_path: Path | None = None) -> str:
    """The sentence of a divergence error that says which checkpoint survives.

    Parameters
    ----------
    ckpt_path : Path
        The run's checkpoint.
    last_saved : int
        Step of the last checkpoint written (0: none yet).
    step0_path : Path, optional
        The untrained models' file, named when no checkpoint has been written yet.
    """
    if last_saved > 0:
        return f"The last good checkpoint {ckpt_path} (step {last_saved}) was kept."
    if step0_path is not None:
        return f"No checkpoint had been written yet ({step0_path} holds step 0)."
    return "No checkpoint had been written yet."


@contextlib.contextmanager
def run_lock(out_dir: str | Path) -> Iterator[Path]:
    """Hold the run folder ``out_dir`` for this process: one writer at a time.

    The lock is an exclusive ``flock`` on ``out_dir / .lock`` (which holds the pid), so the lock of a
    process that died, even by ``kill -9``, is free again and is taken over. While holding it, the
    temporary files of an interrupted checkpoint or log write (``.<name>.*.tmp``) are removed.

    Parameters
    ----------
    out_dir : str or Path
        The run folder (created when missing).

    Yields
    ------
    Path
        ``out_dir``.

    Raises
    ------
    RunLockedError
        Another process (or another call in this process) holds the folder.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / LOCK_NAME
    if fcntl is None:
        yield out_dir
        return
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, umask_mode(0o666))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunLockedError(
                f"{out_dir}: another training (pid {holder}) is writing to this run folder; wait for it to end "
                f"or stop it (kill {holder}). Two writers would interleave the log and the checkpoints."
            ) from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder removed the file between our open and flock: lock the new one
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        for stray in out_dir.glob(".*.tmp"):  # left by a write killed mid-way; nobody else writes here now
            stray.unlink(missing_ok=True)
        yield out_dir
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


def clear_run_folder(out_dir: str | Path) -> list[str]:
    """Delete everything in a run folder except its lock, for a fresh run; returns the names deleted."""
    removed = []
    for entry in sorted(Path(out_dir).iterdir()):
        if entry.name == LOCK_NAME:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
        removed.append(entry.name)
    return removed


def locked(fn: Callable) -> Callable:
    """Decorate a training function taking ``out_dir=`` so that it runs inside :func:`run_lock` of that folder."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with run_lock(kwargs["out_dir"]):
            return fn(*args, **kwargs)

    return wrapper
