"""Atomic file and folder writes: a temporary file (or folder) beside the target, then one rename.

Every file the project writes (checkpoints, feature caches, WAVs, embeddings, tables, logs) goes through
:func:`atomic_open`, so an interrupted run leaves either the previous file or the new one, never half of one.
The file gets the permissions a plain ``open`` would give it (``0o666`` less the umask), and a write that
fails because the disk is full or the folder is not writable raises :class:`~occ.errors.WriteError` naming
the target, not the hidden temporary file. Whole folders (a submission's class folder, the synthetic
dataset) are built under a temporary name and swapped in by :func:`atomic_folder`.

Every writer creates its output folder with :func:`make_folder`, which turns a folder that is not writable, a
read-only file system or a file standing where a folder should be into a :class:`~occ.errors.WriteError` naming
the path and what to do. A temporary is named ``.<target name>.<pid>-<random><suffix>`` beside its target; the
next write of the same target removes the temporaries whose writer is no longer running on this machine (a write
killed with ``kill -9``: :func:`remove_stale_temporaries`), so they never pile up.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

from occ.errors import WriteError

__all__ = ["atomic_folder", "atomic_open", "atomic_write_text", "make_folder", "new_folder_beside", "output_folder",
           "remove_stale_temporaries", "swap_folder_in", "temporary_prefix", "umask_mode", "write_csv", "write_error",
           "write_json"]

_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}


def umask_mode(mode: int = 0o666) -> int:
    """``mode`` less the process umask: what ``open`` (0o666) or ``mkdir`` (0o777) would give."""
    mask = os.umask(0)
    os.umask(mask)
    return mode & ~mask


def write_error(path: str | os.PathLike, exc: OSError, *, folder: bool = False) -> WriteError:
    """A :class:`WriteError` naming ``path`` and saying what happened (disk full, not writable, read-only, a file in
    the way) and what to do; ``folder``: ``path`` is a folder being created, not a file being written."""
    path = Path(path)
    where = path if folder else path.parent
    if exc.errno in _DISK_FULL:
        what = (f"the disk is full ({exc.strerror}); free space on the disk holding {where} and rerun "
                "(the previous file, if any, is unchanged)")
    elif exc.errno == errno.EROFS:
        what = f"the file system holding {where} is read-only; write elsewhere or remount it writable"
    elif exc.errno in _NOT_WRITABLE:
        what = (f"the folder {_existing(where)} is not writable ({exc.strerror}); fix its permissions or write "
                "elsewhere")
    elif exc.errno == errno.EISDIR and not folder:
        what = f"{path} is a folder, not a file; remove or rename it, or write elsewhere"
    elif exc.errno in (errno.ENOTDIR, errno.EEXIST) and (blocker := _blocking_file(where)) is not None:
        what = f"{blocker} is a file, not a folder; remove or rename it, or write elsewhere"
    else:
        what = f"{exc.strerror or exc}; check the folder {where}"
    return WriteError(exc.errno, f"cannot {'create the folder' if folder else 'write'} {path}: {what}.")


def _existing(folder: Path) -> Path:
    """``folder`` or its nearest ancestor that exists (the one whose permissions decide)."""
    while not os.path.exists(folder) and folder.parent != folder:  # os.path: False, not an error, when unreadable
        folder = folder.parent
    return folder


def _blocking_file(folder: Path) -> Path | None:
    """The file (not a folder) that stands at ``folder`` or at one of its ancestors, if any."""
    for candidate in (folder, *folder.parents):
        if os.path.lexists(candidate):
            return None if os.path.isdir(candidate) else candidate
    return None


def make_folder(path: str | os.PathLike) -> Path:
    """Create the folder ``path`` with its parents (nothing when it exists): how every writer makes its output folder.

    Raises
    ------
    WriteError
        The folder cannot be created: a parent is not writable, the file system is read-only, a file stands at
        ``path`` or at a parent, or the disk is full. The message names ``path`` and what to do.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(path, exc, folder=True) from exc
    return path


@contextmanager
def output_folder(path: str | os.PathLike) -> Iterator[Path]:
    """:func:`make_folder` for a ``with`` block: the folders it created that are still empty at the block's end are
    removed again, so a writer that stops before writing anything (bad input) leaves no empty folder behind."""
    path = Path(path)
    created = []
    for folder in (path, *path.parents):
        if os.path.lexists(folder):
            break
        created.append(folder)  # deepest first
    make_folder(path)
    try:
        yield path
    finally:
        for folder in created:
            try:
                folder.rmdir()
            except OSError:  # not empty (the run wrote something), or gone: keep the rest
                break


def temporary_prefix(target: str | os.PathLike) -> str:
    """The name prefix of this process's temporaries of ``target``: ``.<name>.<pid>-`` (the pid lets a later writer
    tell a temporary of a running write from one a killed write left)."""
    return f".{Path(target).name}.{os.getpid()}-"


def _temporary_pattern(name: str) -> re.Pattern:
    """Names of the temporaries of a target called ``name``: this version's (``.<name>.<pid>-<random><suffix>``)
    and those of earlier versions, which carried no pid (``.<name>.<random>.tmp``, ``.partial-``, ``.old-``)."""
    ours = r"(?P<pid>[0-9]+)-[a-z0-9_]+(?:\.[a-z]+)+"
    earlier = r"[a-z0-9_]+\.(?:tmp|part)|(?:partial|old)-[a-z0-9_]+"
    return re.compile(rf"\.{re.escape(name)}\.(?:{ours}|{earlier})")


def _running(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (this process counts as running)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process, or no way to tell: keep its files
        return True
    return True


def remove_stale_temporaries(target: str | os.PathLike) -> list[Path]:
    """Remove the temporaries of ``target`` beside it whose writer no longer runs, and return them.

    A write killed mid-way (``kill -9``, a lost machine) leaves its hidden temporary file or folder, up to the size
    of the target, beside the target; every atomic writer calls this before it writes, so the next write of the same
    target removes them. A temporary of a write still running on this machine (its pid in the name) is kept;
    temporaries named by earlier versions of this code, without a pid, count as stale. Writers on other machines
    sharing the folder are not seen, so a target is written from one machine at a time.
    """
    target = Path(target)
    pattern, removed = _temporary_pattern(target.name), []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None or (match["pid"] is not None and _running(int(match["pid"]))):
            continue
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", *, suffix: str = ".tmp", fsync: bool = True,
                **open_kwargs) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on a clean exit it replaces ``path``, on an error it is removed.

    Parameters
    ----------
    path : path-like
        The file to write; its folder is created (:func:`make_folder`), and the temporaries a killed write of it
        left are removed (:func:`remove_stale_temporaries`).
    mode : {"wb", "w"}
        Binary or text.
    suffix : str
        Suffix of the temporary file (``.<name>.<pid>-<random><suffix>``).
    fsync : bool
        Flush to disk before the rename (checkpoints survive a crash right after the write).
    **open_kwargs
        Passed to :func:`os.fdopen` (e.g. ``newline=""``).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open: mode={mode!r}; use 'wb' or 'w'")
    path = Path(path)
    make_folder(path.parent)
    remove_stale_temporaries(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=temporary_prefix(path), suffix=suffix, dir=path.parent)
    except OSError as exc:
        raise write_error(path, exc) from exc
    try:
        with os.fdopen(fd, mode, **open_kwargs) as handle:
            os.fchmod(handle.fileno(), umask_mode(0o666))  # mkstemp makes it owner-only
            yield handle
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        try:
            os.replace(tmp, path)
        except IsADirectoryError as exc:
            raise write_error(path, exc) from exc
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
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on a clean exit it replaces ``path``, on an error it is removed.

    The folder gets a plain folder's permissions (``0o777`` less the umask). An existing ``path`` is
    first moved into a hidden folder beside it, then the new folder is renamed into place and the old one deleted
    (:func:`swap_folder_in`), so a reader sees the old folder or the new one, never a half-written one; a killed
    write leaves only hidden folders (the temporary one or the old one), which the next write of ``path`` removes.

    Parameters
    ----------
    path : path-like
        The folder to write; its parent is created.

    Yields
    ------
    Path
        The temporary folder to fill (:func:`new_folder_beside`).
    """
    path = Path(path)
    tmp = new_folder_beside(path)
    try:
        yield tmp
        swap_folder_in(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def new_folder_beside(path: str | os.PathLike) -> Path:
    """A new, empty temporary folder ``.<name>.<pid>-<random>.tmp`` beside ``path`` (same file system, so the final
    rename is atomic), with a plain folder's permissions; ``path``'s parent is created and the temporaries a killed
    write of ``path`` left are removed first.

    Raises
    ------
    WriteError
        The parent cannot be created or written (the message names ``path``).
    """
    path = Path(path)
    make_folder(path.parent)
    remove_stale_temporaries(path)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=temporary_prefix(path), suffix=".tmp", dir=path.parent))
    except OSError as exc:
        raise write_error(path, exc, folder=True) from exc
    os.chmod(tmp, umask_mode(0o777))  # mkdtemp makes it owner-only
    return tmp


def swap_folder_in(tmp: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Rename the finished folder ``tmp`` to ``path``, replacing an existing ``path`` (moved aside into a hidden
    ``.<name>.<pid>-<random>.old`` folder first, deleted last)."""
    tmp, path = Path(tmp), Path(path)
    trash = None
    try:
        if path.exists():
            trash = Path(tempfile.mkdtemp(prefix=temporary_prefix(path), suffix=".old", dir=path.parent))
            os.replace(path, trash / "old")
        os.replace(tmp, path)
    except OSError as exc:
        if trash is not None and (trash / "old").exists() and not path.exists():
            os.replace(trash / "old", path)  # put the previous folder back
        raise write_error(path, exc, folder=True) from exc
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)
    return path


def write_csv(path: str | os.PathLike, table, **to_csv) -> Path:
    """Write a pandas table as CSV atomically: the bytes ``table.to_csv(path, **to_csv)`` would write."""
    return atomic_write_text(path, table.to_csv(**to_csv))
