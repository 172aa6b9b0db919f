"""Checkpoints and the per-step training log, both safe against interruption.

A checkpoint is a dict of named parts (as in rosinality/stylegan2-pytorch; docs/reference.md, "Checkpoint formats")::

    {"kind": "gan" | "encoder", "version": 1, "model": {...ModelConfig...}, "train": {...},
     "step": int, "n_classes": int, "class_names": [...] | None, "rng": {...},
     "g", "d", "g_ema", "g_optim", "d_optim"        # kind "gan"
     "encoder", "optim"                             # kind "encoder"
     ...}

:func:`save_checkpoint` writes a temporary file in the target folder, syncs it and renames it over
the target, so a reader sees the previous complete file or the new complete file, never a half file.
:func:`load_checkpoint` turns every way a checkpoint can be unusable (missing, truncated, another
kind, another architecture or training configuration) into a :class:`~occ.errors.CheckpointError`
that names the file, the differing keys with both values, and what to do.

:class:`TrainLog` is the CSV log written next to a checkpoint (one row per step, a ``step`` column,
as DVC plots expect). On resume the rows written after the checkpoint's step are dropped, so a
resumed run never holds a step twice.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from occ.atomic import atomic_open, atomic_write_text, write_error
from occ.errors import CheckpointError, ConfigChangedError
from occ.guard import check_checkpoint_weights

__all__ = [
    "CHECKPOINT_VERSION",
    "CHECKPOINT_KINDS",
    "save_checkpoint",
    "load_checkpoint",
    "config_differences",
    "check_config",
    "NETWORK_PARTS",
    "nonfinite_entries",
    "check_finite_state",
    "TrainLog",
    "cpu_state",
]

#: Format version written into every checkpoint; bumped when the payload layout changes.
CHECKPOINT_VERSION = 1
#: The kinds of checkpoint and the stage that writes each (named in error messages).
CHECKPOINT_KINDS = {"gan": "GAN training (occ.train.gan_train.train_gan, stage `train`)",
                    "encoder": "encoder training (occ.train.supcon_train, stage `supcon`)"}
#: The entries of each kind that hold a network's weights (a state dict, or ``None`` for an absent EMA): every load
#: checks that they are finite and inside the divergence guard's weight bound (``occ.guard``).
NETWORK_PARTS = {"gan": ("g", "d", "g_ema"), "encoder": ("encoder",)}


def save_checkpoint(path: str | os.PathLike, payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` to ``path`` atomically.

    The payload goes to a temporary file in the same folder, is flushed to disk and then renamed
    over ``path``; the previous file stays in place, complete, until the rename.

    Parameters
    ----------
    path : str or PathLike
        Target file (its folder is created).
    payload : mapping
        The checkpoint dict; must hold ``"kind"`` (one of :data:`CHECKPOINT_KINDS`). Only tensors,
        numbers, strings, lists, tuples and dicts, so it loads with ``weights_only=True``.

    Returns
    -------
    Path
        The written path.

    Raises
    ------
    CheckpointError
        A payload without a known ``"kind"``.
    WriteError
        The disk is full or the folder is not writable (the message names ``path``; the previous
        checkpoint is unchanged).
    """
    path = Path(path)
    if payload.get("kind") not in CHECKPOINT_KINDS:
        raise CheckpointError(
            f"{path}: refusing to write a checkpoint with kind={payload.get('kind')!r}; use one of {sorted(CHECKPOINT_KINDS)}."
        )
    payload = dict(payload)
    payload.setdefault("version", CHECKPOINT_VERSION)
    buffer = io.BytesIO()  # serialised first: a full disk then fails in a plain write, named by atomic_open
    torch.save(payload, buffer)
    with atomic_open(path) as handle:
        handle.write(buffer.getbuffer())
    return path


def load_checkpoint(
    path: str | os.PathLike,
    *,
    kind: str | None = None,
    expect: Mapping[str, Any] | None = None,
    expect_train: Mapping[str, Any] | None = None,
    train_may_differ: Iterable[str] = (),
    map_location: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Read and validate a checkpoint written by :func:`save_checkpoint`.

    Parameters
    ----------
    path : str or PathLike
        The checkpoint file.
    kind : {"gan", "encoder"}, optional
        The kind the caller needs; another kind is an error.
    expect : mapping, optional
        The architecture the caller will build (``to_dict(ModelConfig)``); compared with the
        stored ``payload["model"]`` key by key.
    expect_train : mapping, optional
        The training configuration the caller will continue with; compared with the stored
        ``payload["train"]`` except for the keys in ``train_may_differ``.
    train_may_differ : iterable of str
        Training keys allowed to change (e.g. ``steps`` to continue training).
    map_location : str or torch.device
        Where tensors are loaded.

    Returns
    -------
    dict
        The payload.

    Raises
    ------
    CheckpointError
        The file is missing, truncated or not a checkpoint, or has another kind, or one of its networks
        (:data:`NETWORK_PARTS`) holds a NaN or infinite weight, or a weight past the divergence guard's bound for
        the run that wrote it (:func:`occ.guard.check_checkpoint_weights`; both checked after the configuration, so
        that a changed configuration is reported as such).
    ConfigChangedError
        A ``CheckpointError``: the file was written by another format version, or with another
        architecture / training configuration (the message lists every differing key with the
        stored and the expected value).
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file: pass the file itself (e.g. "
                              f"{path / ('encoder.pt' if kind == 'encoder' else 'checkpoint.pt')}).")
    if not path.is_file():
        what = CHECKPOINT_KINDS.get(kind or "", "the stage that writes it")
        raise CheckpointError(f"{path}: no such checkpoint; run {what} first, or check the path.")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zip, bad pickle, foreign file: all mean "unusable"
        raise CheckpointError(
            f"{path}: not a readable checkpoint ({type(exc).__name__}: {str(exc)[:200]}); the file is "
            "corrupt or truncated: delete it and rerun the stage that writes it."
        ) from exc
    if not isinstance(payload, dict) or "kind" not in payload:
        raise CheckpointError(
            f"{path}: not an occ checkpoint (no 'kind' entry); pass a file written by occ.train.gan_train or occ.train.supcon_train."
        )
    if kind is not None and payload["kind"] != kind:
        raise CheckpointError(
            f"{path}: this is a {payload['kind']!r} checkpoint written by "
            f"{CHECKPOINT_KINDS.get(payload['kind'], 'an unknown stage')}, but a {kind!r} checkpoint "
            f"from {CHECKPOINT_KINDS.get(kind, kind)} is needed here; pass the right file."
        )
    if payload.get("version") != CHECKPOINT_VERSION:
        raise ConfigChangedError(
            f"{path}: checkpoint format version {payload.get('version')!r}, this code reads version "
            f"{CHECKPOINT_VERSION}; delete it (and its folder's log) and rerun the stage that writes it."
        )
    if expect is not None:
        check_config(payload.get("model") or {}, expect, what="architecture (model)", path=path)
    if expect_train is not None:
        check_config(payload.get("train") or {}, expect_train, what="training configuration (train)",
                     path=path, ignore=tuple(train_may_differ))
    for part in NETWORK_PARTS.get(payload["kind"], ()):
        if isinstance(payload.get(part), Mapping):
            check_finite_state(payload[part], where=f"{path}: network {part!r}",
                               advice="training never saves such weights, so the file was damaged or written "
                                      "elsewhere and can be neither used nor resumed: delete it with its run folder "
                                      f"{path.parent} and rerun {CHECKPOINT_KINDS[payload['kind']]}")
    check_checkpoint_weights(payload, NETWORK_PARTS.get(payload["kind"], ()), path=path,
                             rerun=CHECKPOINT_KINDS.get(payload["kind"], "the stage that writes it"))
    return payload


def nonfinite_entries(state: Mapping[str, Any]) -> list[str]:
    """The names of a state dict's floating-point tensors that hold a NaN or infinite value."""
    return [name for name, value in state.items() if isinstance(value, torch.Tensor) and value.is_floating_point()
            and not bool(torch.isfinite(value).all())]


def check_finite_state(state: Mapping[str, Any], *, where: str, advice: str) -> None:
    """Raise :class:`~occ.errors.CheckpointError` when weights read from a file are not finite (every loader's check).

    Parameters
    ----------
    state : mapping
        A state dict (name -> tensor); entries that are not floating-point tensors are not checked.
    where : str
        The file and the part of it, the message's start (``"runs/.../checkpoint.pt: network 'g'"``).
    advice : str
        What to do, the message's end.
    """
    bad = nonfinite_entries(state)
    if bad:
        listed = ", ".join(repr(name) for name in bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise CheckpointError(f"{where} holds NaN or infinite weights ({listed}); {advice}.")


def config_differences(stored: Mapping[str, Any], expected: Mapping[str, Any], *,
                       ignore: Iterable[str] = ()) -> list[tuple[str, Any, Any]]:
    """Keys whose values differ between two flat config dicts, as ``(key, stored, expected)``.

    A key present on one side only counts as a difference (its missing value is ``"<absent>"``).
    """
    ignore = set(ignore)
    out = []
    for key in sorted(set(stored) | set(expected)):
        if key in ignore:
            continue
        a = stored.get(key, "<absent>")
        b = expected.get(key, "<absent>")
        if not _same(a, b):
            out.append((key, a, b))
    return out


def check_config(stored: Mapping[str, Any], expected: Mapping[str, Any], *, what: str,
                 path: str | os.PathLike, ignore: Iterable[str] = ()) -> None:
    """Raise :class:`~occ.errors.ConfigChangedError` (a ``CheckpointError``) naming every key where ``stored`` and
    ``expected`` differ."""
    diffs = config_differences(stored, expected, ignore=ignore)
    if diffs:
        listed = "; ".join(f"{key}: checkpoint {a!r} vs requested {b!r}" for key, a, b in diffs)
        raise ConfigChangedError(
            f"{path}: written with another {what}: {listed}. Use the configuration it was written "
            "with, or delete the file (and its folder's log) to start afresh."
        )


def cpu_state(state: Any) -> Any:
    """A copy of a (nested) state dict with every tensor detached and on the CPU."""
    if isinstance(state, torch.Tensor):
        return state.detach().to("cpu", copy=True)
    if isinstance(state, dict):
        return {k: cpu_state(v) for k, v in state.items()}
    if isinstance(state, list):
        return [cpu_state(v) for v in state]
    if isinstance(state, tuple):
        return tuple(cpu_state(v) for v in state)
    return state


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


class TrainLog:
    """Per-step CSV log with a fixed header, appended one flushed row at a time.

    Parameters
    ----------
    path : str or PathLike
        The CSV file (``log.csv`` next to the checkpoint).
    columns : sequence of str
        Column names; the first must be ``"step"``.
    """

    def __init__(self, path: str | os.PathLike, columns: Iterable[str]):
        self.path = Path(path)
        self.columns = list(columns)
        if not self.columns or self.columns[0] != "step":
            raise ValueError("TrainLog: the first column must be 'step'.")

    def start(self, *, resume_step: int | None) -> None:
        """Begin a fresh log (``resume_step=None``) or keep the rows with ``step <= resume_step``.

        A partial last line (a run killed mid-write) and rows past the checkpoint are dropped;
        the kept rows are rewritten atomically.

        Raises
        ------
        CheckpointError
            On resume, the log is missing, has another header, or does not hold exactly the steps
            ``1 .. resume_step`` (deleted, cut or written by two runs at once): continuing would leave a
            log that silently lacks steps.
        """
        rows: list[list[str]] = []
        if resume_step is not None:
            if not self.path.is_file():
                raise CheckpointError(self._lost(resume_step, "is missing"))
            with self.path.open(newline="") as handle:
                reader = csv.reader(handle)
                header = next(reader, None)
                if header != self.columns:
                    raise CheckpointError(self._lost(resume_step, f"has the header {header!r}, not {self.columns!r}"))
                for row in reader:
                    if len(row) != len(self.columns):
                        continue
                    try:
                        step = int(row[0])
                    except ValueError:
                        continue
                    if step <= resume_step:
                        rows.append(row)
            steps = [int(row[0]) for row in rows]
            if steps != list(range(1, resume_step + 1)):
                what = (f"holds {len(steps)} rows for steps 1..{resume_step}"
                        + (f" (first {steps[0]}, last {steps[-1]})" if steps else ""))
                raise CheckpointError(self._lost(resume_step, what))
        lines = [self.columns, *rows]
        atomic_write_text(self.path, "".join(_csv_line(r) for r in lines))

    def _lost(self, resume_step: int, what: str) -> str:
        return (f"{self.path} {what}, but the checkpoint beside it is at step {resume_step}: resuming would "
                f"leave a log without those steps. Restore the log, or delete the run folder {self.path.parent} "
                "to train afresh.")

    def append(self, row: Mapping[str, Any]) -> None:
        """Append one row (a dict with every column) and flush it to disk.

        Raises
        ------
        WriteError
            The disk is full or the log is not writable (the message names the log).
        """
        missing = [c for c in self.columns if c not in row]
        if missing:
            raise ValueError(f"TrainLog.append: row lacks columns {missing}.")
        try:
            with self.path.open("a", newline="") as handle:
                handle.write(_csv_line([_fmt(row[c]) for c in self.columns]))
                handle.flush()
        except OSError as exc:
            raise write_error(self.path, exc) from exc

    def read(self):
        """The log as a ``pandas.DataFrame``."""
        import pandas as pd

        return pd.read_csv(self.path)


def _fmt(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        value = value.item()
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _csv_line(fields: list[str]) -> str:
    import io

    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(fields)
    return buffer.getvalue()
