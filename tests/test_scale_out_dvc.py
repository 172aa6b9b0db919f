"""The torchrun workflow of docs/scale-out.md through real `dvc repro`: DVC keeps the runs the `occ` command trained.

DVC empties a stage's outputs before running it unless they are `persist`. Both run folders are `persist`:
`runs/supcon`, so `occ supcon && dvc repro supcon` keeps the encoder f the command pretrained (the stage resumes the
finished SupCon pretraining with nothing left to do and fine-tunes the classification head again in one process),
and `runs/train/<variant>/seed<k>`, so `occ train ... && dvc repro train@<variant>-<seed>` keeps the GAN run the
command trained and the stage only writes its results. A changed configuration starts the run afresh in the stage
(`on_config_change="restart"`). The slow test runs the commands in one process (what torchrun changes is tested in
test_cli_train.py); what it checks is DVC's part, which does not depend on the number of processes.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
import torch
import yaml
from test_pipeline_smoke import _run, smoke_repo

ROOT = Path(__file__).resolve().parents[1]


def _outs(stage: dict) -> dict[str, dict]:
    """A stage's outputs as path -> options (``{}`` for a bare path)."""
    stage = stage.get("do", stage)
    return {k: (v or {}) for out in stage["outs"] for k, v in (out.items() if isinstance(out, dict) else [(out, {})])}


def test_the_run_folders_persist():
    """DVC must not delete a run folder before its stage runs: the stage resumes the run `occ supcon` or `occ train`
    (torchrun) finished. A changed configuration is the trainers' to handle (they restart: supcon_for_stage and
    train_for_stage pass on_config_change="restart"), not DVC's."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert _outs(stages["train"])["runs/train/${item.variant}/seed${item.seed}"].get("persist") is True
    assert _outs(stages["supcon"])["runs/supcon"].get("persist") is True


def _files(folder: Path) -> dict[str, tuple[int, str]]:
    """File name -> (mtime in ns, SHA-256) of every file in ``folder``."""
    return {p.name: (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(folder.iterdir()) if p.is_file()}


def _clean(repo: Path, env: dict, *stages: str) -> None:
    status = _run(["dvc", "status", "--json", *stages], repo, env)
    assert json.loads(status or "{}") == {}, status


@pytest.mark.slow
def test_dvc_repro_keeps_the_runs_occ_trained_and_restarts_on_a_changed_configuration(tmp_path):
    repo = tmp_path / "repo"
    params, env = smoke_repo(repo, seeds=[0], run_variants=["ocsupcon"])  # ocsupcon: its GAN run reads f
    env["OMP_NUM_THREADS"] = "1"
    py = sys.executable
    _run(["dvc", "repro", "data"], repo, env)

    # `occ supcon`, then `dvc repro supcon`: the pretraining is kept, the head fine-tuned again, the stage recorded
    _run([py, "-m", "occ", "supcon", "-q"], repo, env)
    supcon = repo / "runs" / "supcon"
    before = _files(supcon)
    assert {"supcon.pt", "encoder.pt", "supcon_log.csv"} <= set(before)
    log = _run(["dvc", "repro", "supcon"], repo, env)
    assert "Running stage 'supcon'" in log
    after = _files(supcon)
    assert after["supcon.pt"] == before["supcon.pt"], "the stage pretrained f again"  # bytes and mtime
    assert after["supcon_log.csv"][1] == before["supcon_log.csv"][1]  # resumed: the log rewritten with the same rows
    assert after["encoder.pt"][0] > before["encoder.pt"][0], "the stage did not fine-tune the head again"
    assert after["encoder.pt"][1] == before["encoder.pt"][1], "the fine-tuning is not deterministic"
    assert (repo / "results" / "supcon" / "metrics.json").is_file()
    _clean(repo, env, "supcon")

    # `occ train` of a SupCon variant with that f, then `dvc repro train@ocsupcon-0`: the persisted run is kept
    _run([py, "-m", "occ", "train", "--variant", "ocsupcon", "--seed", "0", "-q"], repo, env)
    run = repo / "runs" / "train" / "ocsupcon" / "seed0"
    before = _files(run)
    assert "checkpoint.pt" in before
    log = _run(["dvc", "repro", "train@ocsupcon-0"], repo, env)
    assert "Running stage 'train@ocsupcon-0'" in log and "Running stage 'supcon'" not in log
    after = _files(run)
    assert after["checkpoint.pt"] == before["checkpoint.pt"], "the GAN run was trained again"  # bytes and mtime
    assert after["step0.pt"] == before["step0.pt"]
    # the resumed run may rewrite log.csv (up to the checkpoint's step), with the same rows
    assert {k: v[1] for k, v in after.items()} == {k: v[1] for k, v in before.items()}
    assert (repo / "results" / "train" / "ocsupcon" / "seed0" / "losses.png").is_file()
    _clean(repo, env, "supcon", "train@ocsupcon-0")

    # a changed configuration: `dvc repro supcon` empties runs/supcon and pretrains f afresh
    pretrained = _files(supcon)["supcon.pt"]
    params["supcon"]["temperature"] = 0.2
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    log = _run(["dvc", "repro", "supcon"], repo, env)
    assert "Running stage 'supcon'" in log
    retrained = _files(supcon)["supcon.pt"]
    assert retrained[0] > pretrained[0] and retrained[1] != pretrained[1], "f was not pretrained afresh"
    payload = torch.load(supcon / "supcon.pt", map_location="cpu", weights_only=False)
    assert payload["train"]["temperature"] == 0.2 and payload["step"] == payload["train"]["steps"]
    _clean(repo, env, "supcon")
