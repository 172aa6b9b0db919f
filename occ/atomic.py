"""Atomic file and folder writes: a temporary file (or folder) beside the target, then one rename.

Every file the project writes (checkpoints, feature caches, WAVs, embeddings, tables, logs) goes through
:func:`atomic_open`, so an interrupted run leaves either the previous file or the new one, never half of one.
The file gets the permissions a plain ``open`` would give it (``0o666`` less the umask), and a write that
fails because the disk is full or the folder is not writable raises :class:`~occ.errors.WriteError` naming
the target, not the hidden temporary file. Whole folders (a submission's class folder, the synthetic
dataset) are built under a temporary name and swapped in by :func:`atomic_folder`.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

from occ.errors import WriteError

__all__ = ["atomic_folder", "atomic_open", "atomic_write_text", "umask_mode", "write_csv", "write_error", "write_json"]

_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}


def umask_mode(mode: int = 0o666) -> int:
    """``mode`` less the process umask: what ``open`` (0o666) or ``mkdir`` (0o777) would give."""
    mask = os.umask(0)
    os.umask(mask)
    return mode & ~mask


def write_error(path: str | os.PathLike, exc: OSError) -> WriteError:
    """A :class:`WriteError` naming ``path`` and saying what happened (disk full, not writable, ...)."""
    path = Path(path)
    if exc.errno in _DISK_FULL:
        what = (f"the disk is full ({exc.strerror}); free space on the disk holding {path.parent} and rerun "
                "(the previous file, if any, is unchanged)")
    elif exc.errno == errno.EROFS:
        what = f"the file system holding {path.parent} is read-only; write elsewhere or remount it writable"
    elif exc.errno in _NOT_WRITABLE:
        what = f"the folder {path.parent} is not writable ({exc.strerror}); fix its permissions or write elsewhere"
    else:
        what = f"{exc.strerror or exc}; check the folder {path.parent}"
    return WriteError(exc.errno, f"cannot write {path}: {what}.")


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", *, suffix: str = ".tmp", fsync: bool = True,
                **open_kwargs) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on a clean exit it replaces ``path``, on an error it is removed.

    Parameters
    ----------
    path : path-like
        The file to write; its folder is created.
    mode : {"wb", "w"}
        Binary or text.
    suffix : str
        Suffix of the temporary file (``.<name>.<random><suffix>``).
    fsync : bool
        Flush to disk before the rename (checkpoints survive a crash right after the write).
    **open_kwargs
        Passed to :func:`os.fdopen` (e.g. ``newline=""``).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open: mode={mode!r}; use 'wb' or 'w'")
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    except OSError as exc:
        raise write_error(path, exc) from exc
    try:
        with os.fdopen(fd, mode, **open_kwargs) as handle:
            os.fchmod(handle.fileno(), umask_mode(0o666))  # mkstemp makes it owner-only
            yield handle
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, WriteError) or exc.errno not in _DISK_FULL | _NOT_WRITABLE:
            raise
        raise write_error(path, exc) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (newlines as given)."""
    with atomic_open(path, "w", newline="") as handle:
        handle.write(text)
    return Path(path)


def write_json(path: str | os.PathLike, obj: dict) -> Path:
    """Write a JSON file atomically, keys sorted, full float precision."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


@contextmanager
def atomic_folder(path: str | os.PathLike, *, prefix: str | None = None, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on a clean exit it replaces ``path``, on an error it is removed.

    The folder gets a plain folder's permissions (``0o777`` less the umask). An existing ``path`` is
    first moved into a hidden ``.<name>.old-<random>`` folder beside it, then the new folder is renamed
    into place and the old one deleted, so a reader sees the old folder or the new one, never a half-written
    one; a killed write leaves only hidden folders (the temporary one or the old one), which the caller
    may clear on its next run.

    Parameters
    ----------
    path : path-like
        The folder to write; its parent is created.
    prefix : str, optional
        Name prefix of the temporary folder; default ``.<name>.partial-``.
    suffix : str
        Name suffix of the temporary folder.

    Yields
    ------
    Path
        The temporary folder to fill.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}.partial-" if prefix is None else prefix
    tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=path.parent))
    os.chmod(tmp, umask_mode(0o777))  # mkdtemp makes it owner-only
    try:
        yield tmp
        trash = None
        if path.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.replace(path, trash / "old")
        os.replace(tmp, path)
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_csv(path: str | os.PathLike, table, **to_csv) -> Path:
    """Write a pandas table as CSV atomically: the bytes ``table.to_csv(path, **to_csv)`` would write."""
    return atomic_write_text(path, table.to_csv(**to_csv))
