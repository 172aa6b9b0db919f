"""Execute a notebook with papermill so that its output is written whole or not at all.

``python -m occ.pipeline.run_notebook NOTEBOOK OUTPUT [-p NAME VALUE ...]`` is what the DVC stages run. papermill
writes the executed notebook cell by cell; here it writes into a temporary file beside ``OUTPUT``, which
replaces ``OUTPUT`` only when every cell ran. When a cell fails (or the run is interrupted with Ctrl-C),
``OUTPUT`` keeps its previous content, the half-executed notebook is kept at ``<OUTPUT stem>.failed.ipynb``
for reading (and what the kernel printed to stderr at ``<OUTPUT stem>.failed.log``), and the command exits
non-zero with one line saying which cell failed and why.

A parameter that the notebook's ``parameters`` cell does not define is refused before anything runs
(papermill itself only warns and injects it anyway).

The kernel runs numpy's and scipy's linear algebra on one thread (``SINGLE_THREADED``), whatever the environment
says, and each stage's call sets torch's thread count that ``occ.registry.STAGES`` declares for it from ``params.yaml``
(``occ.device.use_threads``): a stage's numbers then depend on its declared parameters, not on the machine's cores or
on how many stages run at once.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator, Sequence

from occ.atomic import make_folder, remove_stale_temporaries, temporary_prefix, umask_mode, write_error
from occ.errors import OccError

__all__ = ["NotebookFailed", "failed_path", "run_notebook", "main", "SINGLE_THREADED"]

#: Thread-count variables of the math libraries, set to 1 for the kernel (torch's own count is set per stage).
SINGLE_THREADED = {var: "1" for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}


class NotebookFailed(OccError, RuntimeError):
    """A notebook run stopped: a cell raised, the kernel died, or the run was interrupted."""


def failed_path(output: str | os.PathLike) -> Path:
    """Where a failed run's notebook is kept: ``results/train/o2c/03_train.ipynb`` -> ``.../03_train.failed.ipynb``."""
    output = Path(output)
    return output.with_name(f"{output.stem}.failed.ipynb")


def _check_parameters(notebook: Path, parameters: dict[str, Any]) -> None:
    import papermill

    declared = papermill.inspect_notebook(str(notebook))
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise NotebookFailed(
            f"{notebook}: no parameter named {', '.join(unknown)} in its parameters cell "
            f"(parameters: {', '.join(sorted(declared)) or 'none'}); fix the -p name."
        )


def run_notebook(notebook: str | os.PathLike, output: str | os.PathLike, parameters: dict[str, Any] | None = None, *,
                 kernel: str = "python3", cwd: str | os.PathLike | None = None) -> Path:
    """Execute ``notebook`` into ``output`` atomically.

    Parameters
    ----------
    notebook : str or PathLike
        The notebook to run.
    output : str or PathLike
        The executed notebook; its folder is created. Replaced only when every cell ran.
    parameters : dict, optional
        Values for the notebook's ``parameters`` cell; each name must be defined there.
    kernel : str
        The Jupyter kernel.
    cwd : str or PathLike, optional
        Working directory of the kernel (default: the current one).

    Returns
    -------
    Path
        ``output``.

    Raises
    ------
    NotebookFailed
        An unknown parameter, a failing cell, a dead kernel or Ctrl-C. ``output`` is left as it was and the
        executed part is kept at :func:`failed_path` (``output`` with ``.failed.ipynb``).
    """
    import papermill

    notebook, output = Path(notebook), Path(output)
    parameters = dict(parameters or {})
    if not notebook.is_file():
        raise NotebookFailed(f"{notebook}: no such notebook; run from the repository root.")
    _check_parameters(notebook, parameters)
    make_folder(output.parent)
    remove_stale_temporaries(output)  # a run killed with kill -9 leaves its half-executed notebook
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=temporary_prefix(output), suffix=".running.ipynb", dir=output.parent)
    except OSError as exc:
        raise write_error(output, exc) from exc
    os.close(fd)
    tmp = Path(tmp_name)
    failed = failed_path(output)
    log = tempfile.TemporaryFile()
    try:
        with _stderr_to(log):  # the kernel's own log (and its traceback on Ctrl-C) is kept, not shown, on failure
            papermill.execute_notebook(str(notebook), str(tmp), parameters=parameters, kernel_name=kernel,
                                       progress_bar=False, cwd=None if cwd is None else str(cwd))
    except BaseException as exc:
        if tmp.exists() and tmp.stat().st_size > 0:
            os.chmod(tmp, umask_mode(0o666))
            os.replace(tmp, failed)
            kept = f"the executed part is in {failed}"
        else:
            tmp.unlink(missing_ok=True)
            kept = "nothing was executed"
        log.seek(0)
        text = log.read()
        log.close()
        if text.strip():
            from occ.atomic import atomic_open

            with atomic_open(failed.with_suffix(".log")) as fh:
                fh.write(text)
            kept += f" (kernel messages in {failed.with_suffix('.log')})"
        if isinstance(exc, KeyboardInterrupt):
            why = "interrupted (Ctrl-C)"
        elif isinstance(exc, papermill.PapermillExecutionError):
            first = (str(exc.evalue).strip().splitlines() or [""])[0].rstrip(".")
            why = f"cell {exc.exec_count} raised {exc.ename}: {first}"
        else:
            first = (str(exc).strip().splitlines() or [""])[0].rstrip(".")
            why = f"{type(exc).__name__}: {first}"
        raise NotebookFailed(f"{notebook} failed: {why}; {output} was not touched, {kept}.") from exc
    log.seek(0)
    sys.stderr.buffer.write(log.read())  # success: the messages papermill and the kernel printed, as they were
    sys.stderr.flush()
    log.close()
    _record_paths(tmp, notebook=notebook, output=output)
    os.chmod(tmp, umask_mode(0o666))
    os.replace(tmp, output)
    failed.unlink(missing_ok=True)  # stale ones from an earlier failure would mislead
    failed.with_suffix(".log").unlink(missing_ok=True)
    return output


@contextlib.contextmanager
def _stderr_to(handle) -> Iterator[None]:
    """Point file descriptor 2 (this process's and the kernel's it starts) at ``handle`` for a while."""
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(handle.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _value(text: str) -> Any:
    """A ``-p`` value as papermill's command line reads it (int, float, bool, None or str)."""
    from papermill.cli import _resolve_type

    return _resolve_type(text)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m occ.pipeline.run_notebook NOTEBOOK OUTPUT [-p NAME VALUE ...] [-k KERNEL]``."""
    parser = argparse.ArgumentParser(prog="python -m occ.pipeline.run_notebook", description=__doc__.splitlines()[0])
    parser.add_argument("notebook")
    parser.add_argument("output")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    parser.add_argument("-k", "--kernel", default="python3")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("papermill").setLevel(logging.WARNING)
    os.environ.update(SINGLE_THREADED)  # inherited by the kernel
    try:
        run_notebook(args.notebook, args.output, {name: _value(value) for name, value in args.parameter},
                     kernel=args.kernel)
    except NotebookFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0



def _record_paths(path: Path, *, notebook: Path, output: Path) -> None:
    """Record the paths as given (not the temporary file's absolute path) in the notebook's papermill metadata."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    meta = nb.metadata.setdefault("papermill", {})
    meta["input_path"], meta["output_path"] = str(notebook), str(output)
    nbformat.write(nb, path)


if __name__ == "__main__":
    sys.exit(main())
