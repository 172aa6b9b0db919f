"""`occ repro` (occ.cli.repro over the driver occ.pipeline.parallel): several DVC stages at once, leaving what a
plain `dvc repro` leaves.

A tiny DVC repository of shell stages (no torch): a diamond a -> (b1, b2) -> c plus an independent d. Checks that
independent stages overlap in time, that afterwards `dvc status` is clean and `dvc repro` does nothing, that a
failing stage is named with its log while the finished ones stay recorded, that Ctrl-C stops every worker and a
second invocation resumes, and the planning and estimate on their own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from occ.pipeline.parallel import Scheduler, StageGraph, plan

ENV = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", DVC_NO_ANALYTICS="1",
           GIT_AUTHOR_NAME="occ", GIT_AUTHOR_EMAIL="occ@localhost", GIT_COMMITTER_NAME="occ",
           GIT_COMMITTER_EMAIL="occ@localhost")


def _stage(cmd: str, deps: list[str], out: str) -> dict:
    return {"cmd": cmd, "deps": deps, "outs": [out]}


def _write(cmd_out: str, sleep: float) -> str:
    """A stage command: note start and end times in log/, sleep, write its output."""
    name = Path(cmd_out).stem
    return (f"python -c \"import time,pathlib; p=pathlib.Path('log'); p.mkdir(exist_ok=True); "
            f"(p/'{name}.start').write_text(str(time.time())); time.sleep({sleep}); "
            f"pathlib.Path('{cmd_out}').write_text('{name} ' + open('input.txt').read()); "
            f"(p/'{name}.end').write_text(str(time.time()))\"")


def _repo(tmp_path: Path, sleep: float = 1.5, fail: str | None = None) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "input.txt").write_text("v1")
    stages = {
        "a": _stage(_write("a.txt", 0.1), ["input.txt"], "a.txt"),
        "b1": _stage(_write("b1.txt", sleep), ["a.txt"], "b1.txt"),
        "b2": _stage(_write("b2.txt", sleep), ["a.txt"], "b2.txt"),
        "c": _stage(_write("c.txt", 0.1), ["b1.txt", "b2.txt"], "c.txt"),
        "d": _stage(_write("d.txt", 2 * sleep), ["input.txt"], "d.txt"),
    }
    if fail:
        stages[fail]["cmd"] = "python -c \"import sys; print('boom: bad input'); sys.exit(3)\""
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    (repo / ".gitignore").write_text("log/\n")
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "init"]):
        subprocess.run(cmd, cwd=repo, env=ENV, check=True, capture_output=True)
    return repo


def _occ_repro(repo: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "occ", "repro", *args], cwd=repo, env=ENV,
                          capture_output=True, text=True, **kw)


def _dvc(repo: Path, *args: str) -> str:
    return subprocess.run(["dvc", *args], cwd=repo, env=ENV, capture_output=True, text=True, check=True).stdout


def _span(repo: Path, name: str) -> tuple[float, float]:
    return float((repo / "log" / f"{name}.start").read_text()), float((repo / "log" / f"{name}.end").read_text())


def test_independent_stages_overlap_and_the_repository_ends_as_dvc_repro_leaves_it(tmp_path):
    repo = _repo(tmp_path, sleep=2)
    proc = _occ_repro(repo, "-j", "3")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    b1, b2, d = _span(repo, "b1"), _span(repo, "b2"), _span(repo, "d")
    assert max(b1[0], b2[0]) < min(b1[1], b2[1]), "b1 and b2 did not run at the same time"
    assert d[0] < b1[1] and b1[0] < d[1], "d (independent of a) did not run beside b1"
    assert _span(repo, "c")[0] >= max(b1[1], b2[1]), "c started before both of its upstream stages finished"
    assert json.loads(_dvc(repo, "status", "--json") or "{}") == {}
    again = _dvc(repo, "repro")
    assert "Running stage" not in again, again
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    assert set(lock["stages"]) == {"a", "b1", "b2", "c", "d"}
    lines = proc.stdout.splitlines()
    assert sum("start " in ln for ln in lines) == 5 and any("5/5 done" in ln for ln in lines)
    assert "all 5 stage(s) done" in lines[-1]
    # a second invocation finds nothing to do
    proc = _occ_repro(repo)
    assert proc.returncode == 0 and "every stage is up to date" in proc.stdout


def test_a_stage_declaring_both_cores_runs_alone_and_the_others_fill_the_cores_around_it(tmp_path, monkeypatch):
    from occ.pipeline.parallel import run_parallel

    monkeypatch.setenv("PATH", ENV["PATH"])  # the driver runs here, in-process, and starts `dvc` from PATH
    repo = _repo(tmp_path, sleep=1.5)
    said: list[str] = []
    code = run_parallel(repo, jobs=2, cores=2, threads={"b1": 2}, say=said.append, poll=0.1)
    assert code == 0, "\n".join(said)
    spans = {s: _span(repo, s) for s in ("a", "b1", "b2", "c", "d")}
    b1 = spans["b1"]
    for other in ("a", "b2", "c", "d"):
        s = spans[other]
        assert s[1] <= b1[0] or s[0] >= b1[1], f"{other} ran beside b1, which declares both cores"
    b2, d = spans["b2"], spans["d"]
    assert max(b2[0], d[0]) < min(b2[1], d[1]), "b2 and d (one core each) did not run side by side"
    assert "on 2 core(s)" in said[0]
    assert json.loads(_dvc(repo, "status", "--json") or "{}") == {}


def test_only_what_changed_and_what_it_feeds_runs_again(tmp_path):
    repo = _repo(tmp_path, sleep=0.1)
    assert _occ_repro(repo, "-j", "2").returncode == 0
    lock = (repo / "dvc.lock").read_text()
    (repo / "dvc.yaml").write_text((repo / "dvc.yaml").read_text().replace("time.sleep(0.1); pathlib.Path('b1.txt')",
                                                                          "time.sleep(0.2); pathlib.Path('b1.txt')", 1))
    proc = _occ_repro(repo, "-j", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    started = {ln.split()[2] for ln in proc.stdout.splitlines() if " start " in ln}
    assert started == {"b1", "c"}, proc.stdout
    assert lock != (repo / "dvc.lock").read_text()
    assert json.loads(_dvc(repo, "status", "--json") or "{}") == {}


def test_with_targets_it_reports_on_the_targets_not_on_every_stage(tmp_path):
    """An up-to-date target while another stage is out of date: the message names the target and what it depends on,
    and the stage left out of date; "every stage is up to date" only when the whole pipeline was asked for."""
    repo = _repo(tmp_path, sleep=0.1)
    assert _occ_repro(repo, "-j", "2").returncode == 0
    (repo / "dvc.yaml").write_text((repo / "dvc.yaml").read_text().replace("time.sleep(0.2); pathlib.Path('d.txt')",
                                                                          "time.sleep(0.3); pathlib.Path('d.txt')", 1))
    assert set(json.loads(_dvc(repo, "status", "--json") or "{}")) == {"d"}
    proc = _occ_repro(repo, "c")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "every stage is up to date" not in proc.stdout, proc.stdout
    assert "c and what it depends on (4 stage(s)) are up to date; 1 other stage(s) are out of date (d)" in proc.stdout
    proc = _occ_repro(repo, "a", "d")
    started = {ln.split()[2] for ln in proc.stdout.splitlines() if " start " in ln}
    assert proc.returncode == 0 and started == {"d"}, proc.stdout
    proc = _occ_repro(repo, "b1")
    assert "b1 and what it depends on (2 stage(s)) are up to date; so is every other stage" in proc.stdout, proc.stdout
    proc = _occ_repro(repo)
    assert proc.returncode == 0 and "every stage is up to date (dvc status is clean)" in proc.stdout, proc.stdout


def test_a_failing_stage_is_named_with_its_log_and_the_finished_ones_are_kept(tmp_path):
    repo = _repo(tmp_path, sleep=0.5, fail="b2")
    proc = _occ_repro(repo, "-j", "2")
    assert proc.returncode == 1
    assert "FAILED b2" in proc.stdout and "boom: bad input" in proc.stdout
    assert ".dvc/tmp/occ-repro/b2.log" in proc.stdout and (repo / ".dvc/tmp/occ-repro/b2.log").is_file()
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    assert {"a", "b1"} <= set(lock["stages"]) and "b2" not in lock["stages"] and "c" not in lock["stages"]
    assert not (repo / "c.txt").exists(), "a stage downstream of the failure ran"


def test_ctrl_c_stops_every_worker_keeps_the_finished_stages_and_a_second_run_resumes(tmp_path):
    repo = _repo(tmp_path, sleep=8)
    proc = subprocess.Popen([sys.executable, "-m", "occ", "repro", "-j", "3"], cwd=repo, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 60
    while not all((repo / "log" / f"{s}.start").exists() for s in ("b1", "b2", "d")) and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert "interrupted; stopping 3 running stage(s)" in out
    assert "1 finished stage(s) are recorded" in out, out
    time.sleep(0.5)
    assert subprocess.run(["pgrep", "-f", "time.sleep\\((8|16)\\)"], capture_output=True).returncode != 0, "a worker lives on"
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    assert set(lock["stages"]) == {"a"}
    proc = _occ_repro(repo, "-j", "3")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    started = {ln.split()[2] for ln in proc.stdout.splitlines() if " start " in ln}
    assert started == {"b1", "b2", "c", "d"}
    assert json.loads(_dvc(repo, "status", "--json") or "{}") == {}


GRAPH = StageGraph({"data": set(), "supcon": {"data"}, "train@a-0": {"data", "supcon"}, "train@b-0": {"data"},
                    "evaluate@a-0": {"train@a-0"}, "tables": {"evaluate@a-0", "train@b-0"}})


def test_plan_takes_the_changed_stages_and_everything_downstream_in_file_order():
    assert plan(GRAPH, {"supcon"}) == ["supcon", "train@a-0", "evaluate@a-0", "tables"]
    assert plan(GRAPH, set()) == []
    assert plan(GRAPH, {"data"}, targets=["train@b-0"]) == ["data", "train@b-0"]
    with pytest.raises(SystemExit, match="no stage named nope"):
        plan(GRAPH, {"data"}, targets=["nope"])


def test_ready_stages_wait_for_their_planned_upstream_and_the_heaviest_go_first():
    sched = Scheduler(GRAPH, plan(GRAPH, {"data"}), jobs=2)
    assert sched.ready() == ["data"]
    sched.done["data"] = 1.0
    assert sched.ready() == ["supcon", "train@b-0"]  # supcon feeds three stages, train@b-0 one
    sched.done["supcon"] = 1.0
    sched.running["train@a-0"] = 0.0
    assert sched.ready() == ["train@b-0"]


def test_the_estimate_lays_out_the_stages_left_as_the_driver_starts_them():
    sched = Scheduler(GRAPH, plan(GRAPH, {"data"}), jobs=2)
    assert sched.estimate(0.0) != sched.estimate(0.0)  # no record and nothing finished: no estimate (NaN)
    sched.done.update({"data": 10.0, "supcon": 20.0, "train@b-0": 100.0})
    sched.running["train@a-0"] = 0.0
    # no records: the stages run here are the records. train@a-0: a train, 100 s, 30 s of it run; then the chain
    # evaluate@a-0 -> tables, each the mean of all (130 / 3 s), one after the other (a slot is free, nothing else to run)
    assert sched.estimate(30.0) == pytest.approx(70.0 + 2 * 130.0 / 3)


def test_the_estimate_scales_the_recorded_times_by_what_this_machine_took():
    """After the data stage (recorded 60 s, 30 s here: everything at half its record): supcon and train@b-0 side by
    side, train@a-0 after supcon, then evaluate@a-0 and tables (the old estimate: 5 stages x 30 s over 2 jobs = 75 s)."""
    recorded = {"data": 60.0, "supcon": 120.0, "train@a-0": 600.0, "train@b-0": 600.0, "evaluate@a-0": 120.0,
                "tables": 10.0}
    sched = Scheduler(GRAPH, plan(GRAPH, {"data"}), jobs=2, recorded=recorded)
    assert sched.estimate(0.0) == pytest.approx(60 + 120 + 600 + 120 + 10)  # before anything ran: the records
    sched.done["data"] = 30.0
    assert sched.estimate(30.0) == pytest.approx(60 + 300 + 60 + 5)
    sched.running.update({"supcon": 30.0, "train@b-0": 30.0})
    assert sched.estimate(30.0 + 50) == pytest.approx(10 + 300 + 60 + 5)  # 50 s into both: supcon ends in 10 s
    # a kind that has run sets its own scale: the trains at half their record, the others at the overall ratio
    # (supcon took 3 x its record): 30 + 360 + 300 s for 60 + 120 + 600 recorded
    sched.done.update({"supcon": 360.0, "train@b-0": 300.0})
    sched.running = {"train@a-0": 390.0}
    overall = (30 + 360 + 300) / (60 + 120 + 600)
    assert sched.estimate(390.0) == pytest.approx(300 + (120 + 10) * overall)
    # a stage DVC found up to date counts neither as a time nor in the scale: the trains then take the overall ratio
    sched.done["train@b-0"], sched.skipped = 1.0, {"train@b-0"}
    overall = (30 + 360) / (60 + 120)
    assert sched.estimate(390.0) == pytest.approx((600 + 120 + 10) * overall)


WIDE = StageGraph({"data": set(), "train@a-0": {"data"}, "train@b-0": {"data"}, "train@c-0": {"data"},
                   "evaluate@a-0": {"train@a-0"}, "evaluate@b-0": {"train@b-0"},
                   "tables": {"evaluate@a-0", "evaluate@b-0"}})


def _running(sched: Scheduler, *stages: str) -> None:
    for s in stages:
        sched.running[s] = 0.0


def test_stages_start_as_their_declared_threads_fit_in_the_cores():
    todo = plan(WIDE, {"data"})
    threads = {"train": 1, "evaluate": 2}
    sched = Scheduler(WIDE, todo, jobs=2, cores=2, threads=threads)
    sched.done["data"] = 1.0
    assert sched.admit() == ["train@a-0", "train@b-0"]  # one thread each: two side by side
    _running(sched, "train@a-0", "train@b-0")
    assert sched.admit() == []  # the cores are full
    sched.done["train@a-0"] = sched.running.pop("train@a-0")
    # evaluate@a-0 goes first (tables waits on it) but its two threads do not fit beside train@b-0;
    # train@c-0 (one thread) behind it does, and is not held back
    assert sched.ready() == ["evaluate@a-0", "train@c-0"]
    assert sched.admit() == ["train@c-0"]
    _running(sched, "train@c-0")
    sched.done["train@b-0"] = sched.running.pop("train@b-0")
    assert sched.admit() == []  # one core free; both evaluations need two
    sched.done["train@c-0"] = sched.running.pop("train@c-0")
    assert sched.admit() == ["evaluate@a-0"]  # alone on both cores; evaluate@b-0 waits for it
    assert sched.cost("evaluate@a-0") == 2 and sched.cost("data") == 1  # an undeclared kind counts as one


def test_a_stage_declaring_more_threads_than_cores_runs_alone_and_jobs_still_caps_the_count():
    sched = Scheduler(WIDE, plan(WIDE, {"data"}), jobs=2, cores=2, threads={"train": 4})
    sched.done["data"] = 1.0
    assert sched.cost("train@a-0") == 2
    assert sched.admit() == ["train@a-0"]
    assert Scheduler(WIDE, sched.todo, jobs=1, cores=8, threads={"train": 1}, done={"data": 1.0}).admit() == [
        "train@a-0"]
    # no core limit (`-j` alone): jobs stages whatever their threads, as before the core count
    free = Scheduler(WIDE, sched.todo, jobs=3, threads={"train": 4}, done={"data": 1.0})
    assert free.admit() == ["train@a-0", "train@b-0", "train@c-0"]


def test_declared_threads_reads_each_kinds_declared_threads_from_params(tmp_path):
    import shutil

    from occ.pipeline.parallel import declared_threads

    assert declared_threads(tmp_path) == {}
    root = Path(__file__).resolve().parents[1]
    text = (root / "params.yaml").read_text()
    shutil.copy(root / "params.yaml", tmp_path / "params.yaml")
    got = declared_threads(tmp_path)
    assert set(got) == {"data", "supcon", "train", "reference", "step0", "evaluate", "tables", "figures"}
    assert got == {k: 1 for k in got}  # the committed embedded profile: one thread each
    params = yaml.safe_load(text)
    params["eval"]["threads"] = 2
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    got = declared_threads(tmp_path)
    assert got["evaluate"] == got["reference"] == got["step0"] == got["figures"] == 2 and got["train"] == 1


def test_the_recorded_times_are_the_committed_notebooks_durations(tmp_path):
    """Every stage of the project names its executed notebook, and the committed one records how long it ran."""
    from occ.pipeline.estimate import recorded_times
    from occ.pipeline.parallel import stage_graph

    root = Path(__file__).resolve().parents[1]
    graph = stage_graph(root)
    assert set(graph.notebooks) == set(graph.upstream)
    assert graph.notebooks["evaluate@o2c-0"] == "results/evaluate/o2c/seed0/05_evaluate.ipynb"
    recorded = recorded_times(root, graph.notebooks)
    assert set(recorded) == set(graph.upstream) and all(t > 0 for t in recorded.values())
    (tmp_path / "bad.ipynb").write_text("{}")
    assert recorded_times(tmp_path, {"a": "bad.ipynb", "b": "missing.ipynb"}) == {}

