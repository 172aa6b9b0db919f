"""Shared fixtures: a tiny synthetic foley dataset in the DCASE layout (built once per test session)."""

from __future__ import annotations

import signal
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
