"""`occ supcon` and `occ train` under torchrun on the smoke profile, then the train stage's notebook resumes the run.

The documented multi-process path of a pipeline stage: train with torchrun, then let the stage's notebook
find the finished run (same configuration: it resumes with nothing left to do) and write its results.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], cwd: Path) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    shutil.copy(ROOT / "params.yaml", root / "params.yaml")
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    py = sys.executable
    _run([py, "-m", "occ.pipeline.run_notebook", "notebooks/01_data.ipynb", "results/data/01_data.ipynb",
          "-p", "profile", "smoke"], root)
    torchrun = [py, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "occ"]
    _run([*torchrun, "supcon", "--profile", "smoke", "-q"], root)
    out = _run([*torchrun, "train", "--variant", "ocsupcon", "--seed", "0", "--profile", "smoke", "-q"], root)
    return root, out


def test_torchrun_trains_the_run_of_the_stage_once(project):
    root, out = project
    assert out.count("occ train: ocsupcon seed 0: step 3 of 3 on 2 process(es)") == 1  # rank 0 alone reports
    run = root / "runs" / "train" / "ocsupcon" / "seed0"
    assert pd.read_csv(run / "log.csv")["step"].tolist() == [1, 2, 3]  # one log, written once
    assert (root / "runs" / "supcon" / "encoder.pt").is_file()
    assert not list(run.glob(".*.tmp")) and not (run / ".lock").exists()


def test_the_stage_notebook_then_resumes_it_with_nothing_to_do(project):
    root, _ = project
    ckpt = root / "runs" / "train" / "ocsupcon" / "seed0" / "checkpoint.pt"
    before = (ckpt.stat().st_mtime_ns, torch.load(ckpt, weights_only=False)["g"])
    _run([sys.executable, "-m", "occ.pipeline.run_notebook", "notebooks/03_train.ipynb",
          "results/train/ocsupcon/seed0/03_train.ipynb", "-p", "variant", "ocsupcon", "-p", "seed", "0",
          "-p", "profile", "smoke"], root)
    assert ckpt.stat().st_mtime_ns == before[0]  # not trained again, not rewritten
    after = torch.load(ckpt, weights_only=False)["g"]
    assert all(torch.equal(after[k], before[1][k]) for k in after)
    assert (root / "results" / "train" / "ocsupcon" / "seed0" / "losses.png").is_file()
    assert "step 3 of 3" in (root / "results" / "train" / "ocsupcon" / "seed0" / "03_train.ipynb").read_text()


def test_occ_train_names_a_bad_variant(project, capsys):
    from occ.cli.main import main

    root, _ = project
    assert main(["train", "--variant", "nope", "--seed", "0", "--profile", "smoke", "--project", str(root)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("occ train: error:") and "nope" in err and err.count("\n") == 1
