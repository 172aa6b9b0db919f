"""Messages that used to mislead: the list of defined profiles, a folder where a file is expected, an audio file the
system will not open."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from occ.atomic import atomic_write_text
from occ.config import resolve_params
from occ.errors import CheckpointError, ConfigError, DataError, WriteError

ROOT = Path(__file__).resolve().parents[1]


def test_the_defined_profiles_are_listed_once_each():
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    with pytest.raises(ConfigError) as info:
        resolve_params(raw, profile="papper")
    assert str(info.value).endswith("is not defined under `profiles` (defined: ['embedded', 'paper', 'smoke']).")


def test_a_folder_where_a_feature_cache_or_checkpoint_file_is_expected_is_named_as_a_folder(tmp_path,
                                                                                            small_foley_dataset):
    from occ.checkpoint import load_checkpoint
    from occ.data.datasets import feature_cache, load_feature_cache
    from occ.nets.models import load_generator

    folder = tmp_path / "features.pt"
    folder.mkdir()
    for load in (lambda: load_feature_cache(folder), lambda: feature_cache(small_foley_dataset, folder)):
        with pytest.raises(DataError, match=rf"feature cache {folder} is a folder, not a file: pass the cache file"):
            load()
    with pytest.raises(CheckpointError, match=rf"{tmp_path} is a folder, not a checkpoint file: pass the file itself "
                                              rf"\(e\.g\. {tmp_path / 'checkpoint.pt'}\)"):
        load_generator(tmp_path)
    with pytest.raises(CheckpointError, match="is a folder, not a checkpoint file"):
        load_checkpoint(folder, kind="encoder")
    with pytest.raises(WriteError, match=rf"cannot write {folder}: {folder} is a folder, not a file"):
        atomic_write_text(folder, "x")


@pytest.fixture
def open_folder():
    """A folder every user may enter (pytest's own tmp_path lies in an owner-only folder)."""
    folder = Path(tempfile.mkdtemp(prefix="occ-test-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def test_an_audio_file_the_system_will_not_open_names_the_cause(open_folder):
    """libsndfile says only "System error"; the message gives the operating system's reason."""
    from occ.data.audio import load_clip, write_wav

    clip = write_wav(open_folder / "locked.wav", np.zeros(100))
    clip.chmod(0)
    if os.geteuid() != 0:
        with pytest.raises(DataError) as info:
            load_clip(clip)
        message = str(info.value)
    else:  # root reads any file: read it as an unprivileged user
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: cannot read as an unprivileged user")
        code = (f"from occ.data.audio import load_clip\ntry:\n    load_clip({str(clip)!r})\n"
                "except Exception as exc:\n    print(type(exc).__name__, exc)\n")
        out = subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code],
                             capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd="/")
        message = out.stdout.strip()
        assert message.startswith("DataError "), out.stderr[-2000:]
    assert f"audio file {clip} cannot be opened (Permission denied): fix its permissions" in message, message
    assert "System error" not in message
