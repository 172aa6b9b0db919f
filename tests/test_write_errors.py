"""Output folders and temporaries: every writer creates its folder through occ.atomic.make_folder (a folder that is
not writable, a read-only file system or a file in the way is a WriteError naming the path), bad input leaves no
empty folder, and the next write of a target removes the temporaries a killed write of it left."""

from __future__ import annotations

import errno
import os
import pathlib
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from occ.atomic import atomic_open, atomic_write_text
from occ.config import ModelConfig, TrainConfig
from occ.errors import DataError, WriteError

ROOT = Path(__file__).resolve().parents[1]
MODEL = ModelConfig(z_dim=16, g_ch=4, d_ch=4, proj_dim=8, enc_width=4)
TRAIN = TrainConfig(loss="o2c", steps=1, batch_size=4, ckpt_every=1)


def _data():
    gen = torch.Generator().manual_seed(0)
    return torch.rand(6, 80, 344, generator=gen) * 2 - 1, torch.arange(6) % 3


def _train(out_dir):
    from occ.train.gan_train import train_gan

    return train_gan(*_data(), n_classes=3, model=MODEL, train=TRAIN, out_dir=out_dir, progress=False)


def _submission(out_dir):
    from occ.synthesis.submission import write_submission

    return write_submission(out_dir, {"Rain": np.zeros((2, 88200), np.float32)}, n_per_class=2)


def _wav(out_dir):
    from occ.data.audio import write_wav

    return write_wav(Path(out_dir) / "a.wav", np.zeros(100))


def _checkpoint(out_dir):
    from occ.checkpoint import save_checkpoint

    return save_checkpoint(Path(out_dir) / "c.pt", {"kind": "gan"})


def _results(out_dir):
    from occ.paths import Layout

    return Layout(Path(out_dir)).results("train", "o2c", 0)


def _synth(out_dir):
    from occ.data.synth import synthesize_dataset

    return synthesize_dataset(Path(out_dir) / "foley", clips_per_class=1, n_jobs=1, progress=False)


WRITERS = {"training run folder": _train, "submission": _submission, "WAV": _wav, "checkpoint": _checkpoint,
           "results folder": _results, "synthetic dataset": _synth,
           "text file": lambda out: atomic_write_text(Path(out) / "t.csv", "x\n")}


@pytest.mark.parametrize("writer", WRITERS)
def test_a_file_in_the_way_of_an_output_folder_is_a_write_error_naming_it(tmp_path, writer):
    blocker = tmp_path / "out"
    blocker.write_text("a file, not a folder")
    with pytest.raises(WriteError, match=rf"{re.escape(str(blocker))} is a file, not a folder; remove or rename it"):
        WRITERS[writer](blocker / "sub")
    assert blocker.read_text() == "a file, not a folder"


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("code,what", [(errno.EACCES, "is not writable"), (errno.EROFS, "is read-only")])
def test_an_unwritable_or_read_only_folder_is_a_write_error_naming_the_path(tmp_path, monkeypatch, writer, code, what):
    real = pathlib.Path.mkdir

    def refused(self, *args, **kwargs):  # as a folder without write permission or a read-only mount answers
        if self.is_relative_to(tmp_path / "ro"):
            raise OSError(code, os.strerror(code), str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "mkdir", refused)
    with pytest.raises(WriteError, match=rf"cannot create the folder {re.escape(str(tmp_path / 'ro'))}.*{what}"):
        WRITERS[writer](tmp_path / "ro" / "run")


def test_an_unwritable_run_folder_is_a_write_error_naming_the_lock(tmp_path, monkeypatch):
    real = os.open

    def refused(path, *args, **kwargs):
        if str(path).endswith(".lock"):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refused)
    with pytest.raises(WriteError, match=rf"cannot write {re.escape(str(tmp_path / 'run' / '.lock'))}: the folder "
                                         rf".* is not writable"):
        _train(tmp_path / "run")


def test_every_writer_creates_folders_through_make_folder():
    """No module but occ/atomic.py creates a folder or a temporary itself (one way, one set of error messages)."""
    offenders = []
    for path in sorted((ROOT / "occ").rglob("*.py")):
        if path.name == "atomic.py" and path.parent.name == "occ":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\.mkdir\(|os\.makedirs\(|mkdtemp\(|mkstemp\(", line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    allowed = {"occ/pipeline/run_notebook.py"}  # its .running.ipynb temporary, named by temporary_prefix
    assert [o for o in offenders if o.split(":")[0] not in allowed] == []


def test_bad_training_input_leaves_no_empty_folder(tmp_path):
    mels, labels = _data()
    run = tmp_path / "runs" / "train" / "o2c" / "seed0"
    from occ.train.gan_train import train_gan

    with pytest.raises(DataError):
        train_gan(mels[:, :40], labels, n_classes=3, model=MODEL, train=TRAIN, out_dir=run, progress=False)
    assert list(tmp_path.iterdir()) == []  # neither the run folder nor the parents it needed
    (tmp_path / "kept").mkdir()
    with pytest.raises(DataError):
        train_gan(mels, labels + 5, n_classes=3, model=MODEL, train=TRAIN, out_dir=tmp_path / "kept", progress=False)
    assert (tmp_path / "kept").is_dir() and list((tmp_path / "kept").iterdir()) == []  # it was there before


# --- stale temporaries ---------------------------------------------------------------------------------------------


def test_the_next_write_removes_temporaries_of_dead_writers_only(tmp_path):
    from occ.atomic import remove_stale_temporaries, temporary_prefix

    target = tmp_path / "features.pt"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        live_tmp = tmp_path / f".features.pt.{sleeper.pid}-abcd1234.tmp"
        stale = [tmp_path / f".features.pt.{dead.pid}-abcd1234.tmp",  # a killed write of this version
                 tmp_path / ".features.pt.k3j9x2ab.tmp",  # of an earlier version (no pid)
                 tmp_path / f".features.pt.{dead.pid}-zz99zz99.old"]
        others = [tmp_path / f".other.pt.{dead.pid}-abcd1234.tmp", tmp_path / "features.pt.bak",
                  tmp_path / f".features.pt.x.{dead.pid}-abcd1234.tmp"]
        for path in [live_tmp, *stale, *others]:
            path.write_bytes(b"half")
        stale[2].unlink()
        stale[2].mkdir()  # a folder temporary (atomic_folder's old folder)
        (stale[2] / "old").write_bytes(b"x")
        own = tmp_path / f"{temporary_prefix(target)}abcd1234.tmp"  # this process: a write in progress
        own.write_bytes(b"half")
        with atomic_open(target) as fh:
            fh.write(b"new")
        left = sorted(p.name for p in tmp_path.iterdir())
        assert left == sorted(["features.pt", live_tmp.name, own.name, *(p.name for p in others)])
        sleeper.kill()
        sleeper.wait()
        assert remove_stale_temporaries(target) == [live_tmp]
    finally:
        sleeper.kill()


CHILD = textwrap.dedent("""
    import sys, time
    import torch
    from occ.data.datasets import feature_cache

    def stuck(obj, handle, *args, **kwargs):  # half the cache written, then the process is killed
        handle.write(b"x" * 1_000_000)
        handle.flush()
        print("writing", flush=True)
        time.sleep(120)

    torch.save = stuck
    feature_cache(sys.argv[1], sys.argv[2], heldout_per_class=2, n_jobs=1, progress=False, rebuild=True)
""")


def test_a_feature_cache_rebuild_killed_mid_write_leaves_no_temporary_after_the_next_run(small_foley_dataset, tmp_path):
    from occ.data.datasets import feature_cache

    cache = tmp_path / "features.pt"
    feature_cache(small_foley_dataset, cache, heldout_per_class=2, n_jobs=1, progress=False)
    before = cache.read_bytes()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(small_foley_dataset), str(cache)], stdout=subprocess.PIPE,
                             text=True, env=env)
    try:
        assert child.stdout.readline().strip() == "writing"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    finally:
        child.kill()
    left = [p for p in tmp_path.iterdir() if p.name.startswith(".features.pt.")]
    assert len(left) == 1 and left[0].stat().st_size >= 1_000_000  # what the kill left, as big as it got
    assert cache.read_bytes() == before  # the old cache is whole
    feature_cache(small_foley_dataset, cache, heldout_per_class=2, n_jobs=1, progress=False, rebuild=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features.pt"]
