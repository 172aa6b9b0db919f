"""The torchrun workflow of docs/scale-out.md through real `dvc repro`: what DVC keeps of a run the `occ` command trained.

DVC empties a stage's outputs before running it unless they are `persist`. The GAN run folders
(`runs/train/<variant>/seed<k>`) are `persist`, so `occ train ... && dvc repro train@<variant>-<seed>` keeps the run
the command trained and the stage only writes its results. `runs/supcon` is not: under DVC the supcon stage trains
f itself in one process, and `dvc repro supcon` after `occ supcon` trains f again (the docs and `occ supcon --help`
say so). The slow test runs the commands in one process (what torchrun changes is tested in test_cli_train.py);
what it checks is DVC's part, which does not depend on the number of processes.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
import yaml
from test_pipeline_smoke import _run, smoke_repo

ROOT = Path(__file__).resolve().parents[1]


def _outs(stage: dict) -> dict[str, dict]:
    """A stage's outputs as path -> options (``{}`` for a bare path)."""
    stage = stage.get("do", stage)
    return {k: (v or {}) for out in stage["outs"] for k, v in (out.items() if isinstance(out, dict) else [(out, {})])}


def test_gan_run_folders_persist_and_the_supcon_run_folder_does_not():
    """DVC must not delete runs/train/<variant>/seed<k> before its stage runs: the stage resumes a run `occ train`
    (torchrun) finished. runs/supcon is deliberately not persist: a persisted folder would make the supcon stage
    resume whatever it holds, so a changed supcon/model/seed/data/profile would stop it with ConfigChangedError and a
    smaller supcon.steps would silently keep a longer pretraining (occ/train/supcon_train.py does not restart a run
    on a changed configuration). The docs say `dvc repro supcon` trains f again in one process."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert _outs(stages["train"])["runs/train/${item.variant}/seed${item.seed}"].get("persist") is True
    assert not _outs(stages["supcon"])["runs/supcon"].get("persist")


def _files(folder: Path) -> dict[str, tuple[int, str]]:
    """File name -> (mtime in ns, SHA-256) of every file in ``folder``."""
    return {p.name: (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.slow
def test_dvc_repro_retrains_occ_supcons_encoder_and_keeps_occ_trains_gan_run(tmp_path):
    repo = tmp_path / "repo"
    _, env = smoke_repo(repo, seeds=[0], run_variants=["o2c"])  # o2c: its GAN run does not read the encoder f
    env["OMP_NUM_THREADS"] = "1"
    py = sys.executable
    _run(["dvc", "repro", "data"], repo, env)

    # `occ supcon`, then `dvc repro supcon`: DVC deletes runs/supcon and the stage trains f again in one process
    _run([py, "-m", "occ", "supcon", "-q"], repo, env)
    supcon = repo / "runs" / "supcon"
    before = _files(supcon)
    assert {"supcon.pt", "encoder.pt"} <= set(before)
    (supcon / "marker").write_text("written after occ supcon")
    log = _run(["dvc", "repro", "supcon"], repo, env)
    assert "Running stage 'supcon'" in log
    assert not (supcon / "marker").exists(), "DVC kept runs/supcon (persist?): the stage did not start afresh"
    after = _files(supcon)
    for name in ("supcon.pt", "encoder.pt"):
        assert after[name][0] > before[name][0], f"the stage did not train {name} again"
    assert (repo / "results" / "supcon" / "metrics.json").is_file()

    # `occ train` of a variant without f, then `dvc repro train@o2c-0`: the persisted run is kept as trained
    _run([py, "-m", "occ", "train", "--variant", "o2c", "--seed", "0", "-q"], repo, env)
    run = repo / "runs" / "train" / "o2c" / "seed0"
    before = _files(run)
    assert "checkpoint.pt" in before
    log = _run(["dvc", "repro", "train@o2c-0"], repo, env)
    assert "Running stage 'train@o2c-0'" in log and "Running stage 'supcon'" not in log
    after = _files(run)
    assert after["checkpoint.pt"] == before["checkpoint.pt"], "the GAN run was trained again"  # bytes and mtime
    assert after["step0.pt"] == before["step0.pt"]
    # the resumed run may rewrite log.csv (up to the checkpoint's step), with the same rows
    assert {k: v[1] for k, v in after.items()} == {k: v[1] for k, v in before.items()}
    assert (repo / "results" / "train" / "o2c" / "seed0" / "losses.png").is_file()
    status = _run(["dvc", "status", "--json", "supcon", "train@o2c-0"], repo, env)
    assert json.loads(status or "{}") == {}, status
