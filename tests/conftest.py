"""Shared fixtures: a tiny synthetic foley dataset in the DCASE layout, and the smoke profile's whole pipeline run
(each built once per test session)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

# Ctrl-C as in a terminal, even when the suite is started in the background (where SIGINT is ignored): the
# tests of interruption send SIGINT to this process and to the processes it starts.
signal.signal(signal.SIGINT, signal.default_int_handler)

SMALL_CLIPS_PER_CLASS = 6


@pytest.fixture(scope="session")
def small_foley_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``<tmp>/DCASEFoleySoundSynthesisDevSet/<Class>/NNNN.wav``, 6 clips per class, seed 0 (read-only use)."""
    from occ.data.synth import synthesize_dataset

    root = tmp_path_factory.mktemp("foley") / "DCASEFoleySoundSynthesisDevSet"
    return synthesize_dataset(root, clips_per_class=SMALL_CLIPS_PER_CLASS, seed=0, n_jobs=1, progress=False)


@dataclass(frozen=True)
class SmokeRun:
    """A temporary copy of the project after `occ repro -j 2` (several stages at once) with the smoke profile."""

    repo: Path
    params: dict  # the params.yaml written (do not change it: copy it)
    env: dict  # environment for dvc, git and occ there


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created) across processes."""
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def smoke_pipeline(tmp_path_factory: pytest.TempPathFactory) -> SmokeRun:
    """The smoke profile's whole pipeline (seeds 0 and 1, every variant) by `occ repro -j 2`, run once per test run.

    The one smoke pipeline run of the suite, shared by pytest-xdist's workers (the first to need it builds it under a
    file lock, the others wait for it): tests/test_pipeline_smoke.py checks a copy of it (and changes that copy with a
    DVC experiment), tests/test_doc_commands.py runs the documentation's commands in another copy, and
    tests/test_queue_smoke.py compares it with a sequential `dvc repro` of the same stages. Read-only.
    """
    from test_pipeline_smoke import _run, smoke_env, smoke_repo

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # each worker's base folder sits in the run's common one
        shared = shared.parent
    repo, done = shared / "smoke-pipeline" / "repo", shared / "smoke-pipeline" / "params.json"
    with _exclusive(shared / "smoke-pipeline.lock"):
        if not done.is_file():
            shutil.rmtree(repo.parent, ignore_errors=True)
            params, env = smoke_repo(repo, seeds=[0, 1])
            _run([sys.executable, "-m", "occ", "repro", "-j", "2"], repo, env)  # the README's `occ repro -j 2`
            done.write_text(json.dumps(params))
    return SmokeRun(repo, json.loads(done.read_text()), smoke_env())
