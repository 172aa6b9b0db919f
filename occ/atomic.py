"""Atomic file writes: a temporary file in the target's folder, then one rename.

Every file the project writes (checkpoints, feature caches, WAVs, embeddings, tables, logs) goes through
:func:`atomic_open`, so an interrupted run leaves either the previous file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

__all__ = ["atomic_open", "atomic_write_text", "write_json"]


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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        with os.fdopen(fd, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
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
