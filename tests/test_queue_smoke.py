"""The experiment grid on DVC's queue (docs/grid.md), in a temporary copy, with the `smoke` profile.

One variant, one seed committed (its `dvc repro` also runs the tables and figures on a single seed and a single
variant); then two queued experiments, an extra seed and another tau_c, run by two workers. Checks that each
reran only its own runs, the tables and the figures, and that `dvc exp show --json` lists both with their
params and the per-run metrics the tables use. And that first `dvc repro`, one stage at a time, wrote for the stages
it shares with the suite's `occ repro -j 2` run (two stages at once) what that run wrote, apart from timings.
"""

import json
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from test_pipeline_smoke import _run, smoke_repo  # puts benchmarks/ on sys.path: shared

from shared import output_files, same_apart_from_timings  # noqa: E402

pytestmark = pytest.mark.slow

#: Per-run metrics (results/evaluate/<variant>/seed<k>/metrics.json) that Table 1 and the checks read.
TABLE_METRICS = ("fad_mean", "fad_mean_step0", "probe_accuracy", "d_within_class_distance")


def _wait_for_queue(repo, env, timeout: float = 1800.0) -> str:
    """Poll `dvc queue status` until no experiment is queued or running; returns the last status text."""
    deadline = time.monotonic() + timeout
    while True:
        status = _run(["dvc", "queue", "status"], repo, env)
        if not any(word in status for word in ("Queued", "Running")):
            return status
        assert time.monotonic() < deadline, f"the queue did not finish in {timeout:.0f} s:\n{status}"
        time.sleep(5)


def _experiments(shown: list) -> dict[str, dict]:
    """name -> {"params": ..., "metrics": ...} of every experiment in `dvc exp show --json` output."""
    found = {}
    for rev in shown:
        for exp in rev.get("experiments") or []:
            for run in exp.get("revs") or []:
                data = run.get("data") or {}
                found[run.get("name")] = {
                    "params": (data.get("params") or {}).get("params.yaml", {}).get("data", {}),
                    "metrics": {path: (m.get("data") or {}) for path, m in (data.get("metrics") or {}).items()},
                }
    return found


def test_queue_grid_smoke(tmp_path, request):
    repo = tmp_path / "repo"
    _, env = smoke_repo(repo, seeds=[0], run_variants=["o2c"])
    _run(["dvc", "repro"], repo, env)
    # one seed of one variant: the tables say "not established" / "(1 seed)" instead of inventing an interval
    checks = pd.read_csv(repo / "results/tables/checks.csv")
    assert set(checks["result"]) <= {"not established"}, checks[["check", "result"]]
    assert (pd.read_csv(repo / "results/tables/claims.csv")["verdict"] == "not established").all()
    assert "(1 seed)" in (repo / "results/tables/table1.md").read_text()
    _run(["git", "add", "-A"], repo, env)
    _run(["git", "commit", "-qm", "one seed of o2c"], repo, env)

    _run(["dvc", "exp", "run", "--queue", "-n", "extra-seed", "-S", "seeds=[0,1]"], repo, env)
    _run(["dvc", "exp", "run", "--queue", "-n", "tau-c-05", "-S", "variants.o2c.tau_c=0.5"], repo, env)
    _run(["dvc", "queue", "start", "-j", "2"], repo, env)
    status = _wait_for_queue(repo, env)
    assert status.count("Success") == 2 and "Failed" not in status, status

    ran = {}
    for name in ("extra-seed", "tau-c-05"):
        log = _run(["dvc", "queue", "logs", name], repo, env)
        ran[name] = {line.split("'")[1] for line in log.splitlines() if line.startswith("Running stage '")}
    assert ran["extra-seed"] == {"step0@1", "train@o2c-1", "evaluate@o2c-1", "tables", "figures"}, ran
    assert ran["tau-c-05"] == {"train@o2c-0", "evaluate@o2c-0", "tables", "figures"}, ran

    shown = json.loads(subprocess.run(["dvc", "exp", "show", "--json"], cwd=repo, env=env, capture_output=True,
                                      text=True, check=True).stdout)
    exps = _experiments(shown)
    assert {"extra-seed", "tau-c-05"} <= set(exps), sorted(exps)
    assert exps["extra-seed"]["params"]["seeds"] == [0, 1]
    assert exps["tau-c-05"]["params"]["variants"]["o2c"]["tau_c"] == 0.5
    for name, seeds in (("extra-seed", (0, 1)), ("tau-c-05", (0,))):
        for s in seeds:
            m = exps[name]["metrics"][f"results/evaluate/o2c/seed{s}/metrics.json"]
            assert all(key in m for key in TABLE_METRICS), (name, s, sorted(m))
    diff = _run(["dvc", "metrics", "diff", "HEAD", "tau-c-05", "--json"], repo, env)
    assert "results/evaluate/o2c/seed0/metrics.json" in diff

    # The queue ran its experiments in copies; the workspace still holds the first, sequential `dvc repro`. The
    # suite's shared parallel run is asked for only now, so that this test runs beside its build, not after it.
    _same_as_the_parallel_run(repo, request.getfixturevalue("smoke_pipeline"))


def _same_as_the_parallel_run(repo: Path, smoke_pipeline) -> None:
    """The stages that both runs hold (o2c seed 0, its step 0, data, encoder, reference): every output the same,
    file by file, apart from timings, whether `dvc repro` ran them one at a time (in `repo`) or `occ repro -j 2` two
    at once (the suite's shared run)."""
    seq = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    par = yaml.safe_load((smoke_pipeline.repo / "dvc.lock").read_text())["stages"]
    shared = ["data", "supcon", "reference", "step0@0", "train@o2c-0", "evaluate@o2c-0"]
    assert set(shared) <= set(seq) and set(shared) <= set(par)
    differ, same_hash = [], 0
    for stage in shared:
        outs_seq = {o["path"]: o.get("md5") for o in seq[stage].get("outs", [])}
        outs_par = {o["path"]: o.get("md5") for o in par[stage].get("outs", [])}
        assert outs_seq.keys() == outs_par.keys(), stage
        for out, md5 in outs_seq.items():
            if md5 == outs_par[out]:
                same_hash += 1
                continue
            files = output_files(repo, out)
            assert files == output_files(smoke_pipeline.repo, out), f"{stage}: {out} holds other files"
            differ += [f"{stage}: {why}" for f in files
                       if (why := same_apart_from_timings(repo / f, smoke_pipeline.repo / f))]
    assert not differ, "sequential and parallel runs differ beyond timings:\n" + "\n".join(differ)
    assert same_hash > 0
