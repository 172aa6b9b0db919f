"""Shared fixtures: a tiny synthetic foley dataset in the DCASE layout, and the smoke profile's whole pipeline run
(each built once per test session)."""

from __future__ import annotations

import signal
import sys
from dataclasses import dataclass
from pathlib import Path

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


@pytest.fixture(scope="session")
def smoke_pipeline(tmp_path_factory: pytest.TempPathFactory) -> SmokeRun:
    """The smoke profile's whole pipeline (seeds 0 and 1, every variant) by `occ repro -j 2`, once per test session.

    The one smoke pipeline run of the suite: tests/test_pipeline_smoke.py checks it (and then changes it with a DVC
    experiment), tests/test_doc_commands.py runs the documentation's commands in a copy of it, and
    tests/test_queue_smoke.py compares it with a sequential `dvc repro` of the same stages.
    """
    from test_pipeline_smoke import _run, smoke_repo

    repo = tmp_path_factory.mktemp("smoke") / "repo"
    params, env = smoke_repo(repo, seeds=[0, 1])
    _run([sys.executable, "-m", "occ.pipeline.parallel", "-j", "2"], repo, env)  # the README's `occ repro -j 2`
    return SmokeRun(repo, params, env)


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(items):
    """Under pytest-xdist (``--dist loadgroup``), every test that reads the smoke pipeline's run goes to one worker,
    so the session runs that pipeline once."""
    for item in items:
        if "smoke_pipeline" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("smoke_pipeline"))
