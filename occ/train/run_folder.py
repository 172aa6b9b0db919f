"""The run folder both trainers open (``occ.train.gan_train``, ``occ.train.supcon_train``): lock, restart on a changed
configuration, checkpoint loading and saving, resume.

A resumable training stage follows one pattern (its steps are :class:`occ.train.step_loop.StepLoop`'s)::

    with open_run(out_dir, who="train_gan", device=device, progress=progress, checkpoint="checkpoint.pt", ...) as run:
        mels, labels = run.check_inputs(mels, labels, n_classes=n_classes, configs=(model, train))
        payload = run.load_checkpoint(kind="gan", ...)      # validate before building anything
        ...build the models and optimisers, load their weights from payload...
        start, resumed_from = restore_run(payload, log=run.log, sampler=sampler, optimizers={...})
        ...the steps, saving with run.save(run.checkpoint, lambda: checkpoint_payload(...))...

:func:`open_run` joins torchrun's process group (if any), locks the run folder on rank 0
(:func:`run_lock`), places this process on its device and names the run's files (:class:`RunFolder`).
:meth:`RunFolder.load_checkpoint` validates the checkpoint there (:func:`load_run_checkpoint`) and, under
``on_config_change="restart"``, empties a folder whose checkpoint was written with another configuration and
starts afresh. :func:`restore_run` restores the optimisers and the batch sampler's random state or starts a
fresh log. :meth:`RunFolder.save` writes a checkpoint (:func:`checkpoint_payload`) on rank 0 while every process
waits. None of these helpers draws a random number: the draws, and so the trained weights and the exactness of
resume, are the caller's alone.

A run folder has one writer at a time (:func:`run_lock`: a second one gets :class:`~occ.errors.RunLockedError`
naming the folder and the holder's pid; the lock of a process that died is released by the system), and the
lock's holder removes the temporary files a killed checkpoint write left behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch

from occ.atomic import make_folder, output_folder, umask_mode, write_error
from occ.checkpoint import TrainLog, check_config, cpu_state, load_checkpoint, save_checkpoint
from occ.config import to_dict
from occ.data.checks import check_training_data
from occ.device import resolve_device
from occ.errors import ConfigChangedError, ConfigError, RunLockedError
from occ.seeding import rng_state, set_rng_state
from occ.train.distributed import World, setup, world

try:
    import fcntl
except ImportError:  # not POSIX: no locking
    fcntl = None

#: What the trainers use; the rest (``run_lock``, ``load_run_checkpoint``, ...) are the parts these are made of.
__all__ = ["Expect", "RunFolder", "open_run", "restore_run", "checkpoint_payload"]

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
        make_folder(out_dir)
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
    w = world()
    changed = payload = None
    try:
        if not (missing_ok and not path.exists()):
            payload = load_checkpoint(path, kind=kind, expect=to_dict(model), **load_kwargs)
            if payload.get("n_classes") != n_classes:
                raise ConfigChangedError(
                    f"{path}: written for n_classes={payload.get('n_classes')!r}, requested {n_classes}; use the "
                    f"same data or delete the {folder} to start afresh."
                )
            for part, values, what, ignore in checks:
                check_config(payload.get(part) or {}, values, what=what, path=path, ignore=ignore)
    except ConfigChangedError as exc:
        if not w.parallel:
            raise
        changed = exc
    # In a parallel run every rank reads the same file before any rank may empty the folder: agree first.
    if w.parallel and not w.all_true(changed is None):
        raise changed or ConfigChangedError(f"{path}: another process of this run found it written with another "
                                            f"configuration; delete the {folder} to start afresh.")
    return payload


def restore_run(payload: Mapping[str, Any] | None, *, log: TrainLog | None, sampler: torch.Generator,
                optimizers: Mapping[str, torch.optim.Optimizer]) -> tuple[int, int | None]:
    """Resume from ``payload`` (optimisers, then every random state) or start afresh, and start the log.

    The models' weights are the caller's to load (before moving them to the device).

    Parameters
    ----------
    payload : mapping or None
        The checkpoint to resume from, ``None`` for a fresh run.
    log : TrainLog or None
        The run's log: on resume its rows past the checkpoint's step are dropped, else it is emptied
        (``None``: the processes of a parallel run other than rank 0, which write no log).
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
        if log is not None:
            log.start(resume_step=None)
        return 0, None
    for name, optim in optimizers.items():
        optim.load_state_dict(payload[name])
    set_rng_state(payload["rng"], generators={SAMPLER: sampler})
    start = int(payload["step"])
    if log is not None:
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



@contextlib.contextmanager
def run_lock(out_dir: str | Path) -> Iterator[Path]:
    """Hold the run folder ``out_dir`` for this process: one writer at a time.

    The lock is an exclusive ``flock`` on ``out_dir / .lock`` (which holds the pid), so the lock of a
    process that died, even by ``kill -9``, is free again and is taken over. While holding it, the
    temporary files of an interrupted checkpoint or log write (``.<name>.*.tmp``) are removed.

    Parameters
    ----------
    out_dir : str or Path
        The run folder, created when missing (:func:`occ.atomic.output_folder`: removed again, with the parents it
        needed, when the run wrote nothing into it).

    Yields
    ------
    Path
        ``out_dir``.

    Raises
    ------
    RunLockedError
        Another process (or another call in this process) holds the folder.
    WriteError
        The folder cannot be created or written (not writable, read-only, a file in the way).
    """
    with output_folder(out_dir) as out_dir:  # bad input stops before anything is written: no empty folder is left
        if fcntl is None:
            yield out_dir
        else:
            with _locked(out_dir) as locked:
                yield locked


@contextlib.contextmanager
def _locked(out_dir: Path) -> Iterator[Path]:
    """The lock of :func:`run_lock` on the existing folder ``out_dir``."""
    path = out_dir / LOCK_NAME
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, umask_mode(0o666))
        except OSError as exc:
            raise write_error(path, exc) from exc
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


@dataclass
class RunFolder:
    """A trainer's run as :func:`open_run` opened it: where this process trains and the run folder's files.

    Attributes
    ----------
    w : World
        This process's place in the run (rank 0 alone locks, logs and writes checkpoints).
    device : torch.device
        Where this process trains (``cuda:LOCAL_RANK`` for CUDA under torchrun).
    progress : bool
        Show a progress bar (rank 0 only).
    out_dir : Path
        The run folder, locked by rank 0 while the run is open.
    checkpoint : Path
        The run's checkpoint in ``out_dir``.
    log : TrainLog or None
        The run's per-step log, not started yet (:func:`restore_run` starts it); ``None`` on the processes of a
        parallel run other than rank 0.
    who : str
        The trainer's name in messages.
    on_config_change : {"error", "restart"}
        What :meth:`load_checkpoint` does with a checkpoint written with another configuration.
    """

    w: World
    device: torch.device
    progress: bool
    out_dir: Path
    checkpoint: Path
    log: TrainLog | None
    who: str
    on_config_change: str

    def check_inputs(self, mels: torch.Tensor, labels: torch.Tensor, *, n_classes: int,
                     configs: Iterable[Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """Check each of ``configs`` (its ``check()``), then the training clips; returns the clips as the trainer
        uses them (:func:`occ.data.checks.check_training_data`)."""
        for cfg in configs:
            cfg.check()
        return check_training_data(mels, labels, n_classes=n_classes)

    def load_checkpoint(self, path: Path | None = None, *, kind: str, model: Any, n_classes: int, folder: str,
                        checks: Sequence[Expect] = (), missing_ok: bool = False,
                        **load_kwargs: Any) -> dict[str, Any] | None:
        """:func:`load_run_checkpoint` of ``path`` (default: the run's checkpoint); restarts on a changed configuration.

        When the checkpoint was written with another configuration (:class:`~occ.errors.ConfigChangedError`) and the
        run was opened with ``on_config_change="restart"`` (the pipeline's choice: a changed parameter means a new
        run), rank 0 empties the run folder and says so in one line on stderr, every process waits for it, and the
        run starts afresh (``None``). With ``"error"`` the error is raised. An unchanged configuration resumes exactly
        either way.
        """
        path = self.checkpoint if path is None else path
        try:
            return load_run_checkpoint(path, kind=kind, model=model, n_classes=n_classes, folder=folder, checks=checks,
                                       missing_ok=missing_ok, **load_kwargs)
        except ConfigChangedError as exc:
            if self.on_config_change != "restart":
                raise
            if self.w.main:
                removed = clear_run_folder(self.out_dir)
                what = re.split(r"[.;] [Uu]se ", str(exc))[0]  # the differences, without the advice to delete
                print(f"{self.who}: {what}; starting a fresh run there (removed {', '.join(removed)}).",
                      file=sys.stderr)
            self.w.barrier()
            return None

    def save(self, path: Path, payload: Callable[[], Mapping[str, Any]]) -> None:
        """Write the checkpoint ``payload()`` to ``path`` on rank 0 (atomically) while every process waits for it."""
        if self.w.main:
            save_checkpoint(path, payload())
        self.w.barrier()


@contextlib.contextmanager
def open_run(out_dir: str | Path, *, who: str, device: str | torch.device, progress: bool | None, checkpoint: str,
             log: str, columns: Iterable[str], on_config_change: str = "error") -> Iterator[RunFolder]:
    """Open a trainer's run for the ``with`` block: the one run set-up of both trainers.

    In order: join torchrun's process group, if any (:func:`occ.train.distributed.setup`, before rank 0 locks the
    folder); lock the run folder on rank 0 (:func:`run_lock`; the only writer of a parallel run), for the whole
    block; place this process on its device; name the run's checkpoint and log (:func:`run_files`).

    Parameters
    ----------
    out_dir : str or Path
        The run folder (created by rank 0 when missing).
    who : str
        The trainer's name in messages.
    device : {"auto", "cpu", "cuda", "cuda:N"} or torch.device
        Where to train (:func:`occ.device.resolve_device`).
    progress : bool or None
        Show a progress bar (:func:`default_progress`; rank 0 only).
    checkpoint, log : str
        File names of the checkpoint and of the CSV log in ``out_dir``.
    columns : iterable of str
        The log's columns.
    on_config_change : {"error", "restart"}
        See :meth:`RunFolder.load_checkpoint`.

    Yields
    ------
    RunFolder

    Raises
    ------
    ConfigError
        An unknown ``device`` or ``on_config_change``.
    RunLockedError
        Another process is training in ``out_dir``.
    """
    dev = resolve_device(device)
    w = setup(dev)  # join torchrun's process group, if any, before rank 0 locks the folder
    if on_config_change not in ("error", "restart"):
        raise ConfigError(f"{who}: on_config_change={on_config_change!r}; use 'error' or 'restart'.")
    with run_lock(out_dir) if w.main else contextlib.nullcontext():
        out_dir, ckpt_path, run_log = run_files(out_dir, checkpoint, log, columns, create=False)  # the lock made it
        yield RunFolder(w=w, device=w.place(dev), progress=default_progress(progress) and w.main, out_dir=out_dir,
                       checkpoint=ckpt_path, log=run_log if w.main else None, who=who,
                       on_config_change=on_config_change)
