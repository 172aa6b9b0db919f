"""The G step's default reading of the source term (``train.d2s_source: generated``) trains exactly as before the
reading became a parameter: tiny runs of every loss kind against digests recorded before the change
(tests/gan_reference.py), where the machine matches the one they were recorded on."""

from __future__ import annotations

import json

import pytest

from gan_reference import DIGESTS, KINDS, machine, run_digest

RECORDED = json.loads(DIGESTS.read_text())


@pytest.mark.skipif(machine() != RECORDED["machine"],
                    reason=f"bit-identity holds on the recording machine only: {RECORDED['machine']}")
@pytest.mark.parametrize("kind", KINDS)
def test_default_reading_trains_as_recorded(kind, tmp_path):
    assert run_digest(kind, tmp_path) == RECORDED["digests"][kind]


def test_recorded_machine_is_described():
    assert set(RECORDED["machine"]) == {"cpu", "torch", "capability", "threads"}
    assert set(RECORDED["digests"]) == set(KINDS)
