"""What the ``occ`` commands share: the one-line errors, the project a command reads, the output folder checks.

Bad input ends with one line on stderr naming the file or option and what to do, and exit code 1 (2 for a malformed
command line): :class:`CliError` for what a command finds itself, :class:`Parser` for the command line.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

__all__ = ["CliError", "Parser", "key", "show_progress", "threads_phrase", "at_least_one_thread", "check_target",
           "find_project", "add_project_arguments", "OUTSIDE_A_PROJECT"]

#: The evaluation's settings outside any project: what ``occ generate`` and ``occ fad`` use for an option not given
#: when no ``params.yaml`` is found. They are ``occ.config.clip_settings`` of the embedded profile of ``params.yaml``,
#: the one source of the defaults (``tests/test_cli.py`` compares them).
OUTSIDE_A_PROJECT = {"threads": 1, "vocoder": "griffinlim", "gl_iters": 16, "device": "auto"}


class CliError(Exception):
    """Bad input found by the command itself (printed as one line, exit code 1)."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr (exit code 2)."""

    def error(self, message: str) -> None:  # noqa: D102 (argparse API)
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def key(name: str) -> str:
    """Spelling-free key of a class name: ``DogBark``, ``dog_bark``, ``DOG-BARK`` -> ``dogbark``."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def show_progress(args) -> bool:
    """Show progress bars: not ``--quiet``, and stderr is a terminal."""
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


def threads_phrase(n: int) -> str:
    """``1 thread``, ``2 threads``: a thread count in a message."""
    return f"{n} thread{'s' if n != 1 else ''}"


def at_least_one_thread(threads: int) -> int:
    """``--threads``, checked: at least 1."""
    if threads < 1:
        raise CliError(f"--threads {threads}: use at least 1 thread")
    return threads


def check_target(target: Path, *, overwrite: bool, option: str) -> None:
    """An output folder must be new or empty, unless ``--overwrite``; ``option`` names it in the message."""
    if target.exists() and not target.is_dir():
        raise CliError(f"{option} {target} is a file; give a folder path")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise CliError(f"{option} {target} already exists and is not empty; choose a new folder or pass --overwrite")


def find_project(project: str | os.PathLike | None, *, near: tuple[Path, ...] = ()) -> Path:
    """The project root whose ``params.yaml`` a command reads.

    Parameters
    ----------
    project : path-like, optional
        ``--project``: a folder at or below the project root. When given, only it is searched.
    near : tuple of Path
        Folders searched in order when ``project`` is not given (the working folder is searched last).

    Returns
    -------
    Path
        The nearest folder at or above a searched folder that holds ``params.yaml``.

    Raises
    ------
    CliError
        No ``params.yaml`` at or above any searched folder.
    """
    from occ.paths import project_root

    starts = [Path(project)] if project is not None else [*near, Path.cwd()]
    for start in starts:
        try:
            return project_root(start)
        except FileNotFoundError:
            continue
    where = " or ".join(str(s) for s in dict.fromkeys(starts))
    raise CliError(f"no params.yaml at or above {where}: run the command inside the occ project, or pass "
                   "--project DIR (the project's root folder)")


def add_project_arguments(parser: argparse.ArgumentParser) -> None:
    """``--profile`` and ``--project``: which project's ``params.yaml``, and which profile of it, a command reads."""
    parser.add_argument("--profile", default=None, metavar="P", help="params.yaml profile (default: the file's switch)")
    parser.add_argument("--project", default=None, metavar="DIR", help="project root (default: found from here)")
