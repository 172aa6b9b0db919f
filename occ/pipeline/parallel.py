"""``occ repro``: the DVC pipeline with several stages running at once, leaving what a plain ``dvc repro`` leaves.

DVC 3 runs one stage at a time. Since DVC 3.61 several ``dvc --wait-for-lock repro --single-item <stage>``
processes can share one repository: each holds the repository lock only to read and to record its stage (every
``dvc.lock`` write re-reads the file under the lock) and releases it while the stage's command runs. This module
is a thin driver over exactly that: it reads the stage graph once, starts every stage whose upstream stages are
finished, as many at a time as the cores hold at the thread count each declares (``params.yaml``), and lets each
``dvc repro --single-item`` decide whether its stage is out of date. Afterwards ``dvc status`` is clean and
``dvc repro`` does nothing, as after a plain ``dvc repro``.

What a user sees: one line per stage started and finished (time, done/total, an estimate of what is left, from the
stages' recorded times: :mod:`occ.pipeline.estimate`); a
failing stage named with its log, the running stages finished and recorded, no new ones started; Ctrl-C stops
every worker (each stage it interrupts is left as DVC leaves an interrupted stage, unrecorded), keeps every
finished stage, and a second invocation resumes. docs/parallel.md says why a driver and not a library.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from occ.atomic import make_folder
from occ.pipeline.estimate import recorded_times, scaled_times, time_left

__all__ = ["StageGraph", "stage_graph", "out_of_date", "plan", "nothing_to_do", "Scheduler", "run_parallel",
           "declared_threads", "machine_cores"]

LOG_DIR = Path(".dvc") / "tmp" / "occ-repro"  # one log per stage run; .dvc/tmp is git-ignored by DVC


@dataclass
class StageGraph:
    """Stage name -> the stages it depends on, in dvc.yaml order (``train@o2c-0``, as ``dvc repro`` names them), and
    stage name -> its executed notebook (the output ending in ``.ipynb``), where it has one."""

    upstream: dict[str, set[str]]
    notebooks: dict[str, str] = field(default_factory=dict)

    def downstream(self, names: set[str]) -> set[str]:
        """``names`` and every stage that depends on one of them, directly or not."""
        out, changed = set(names), True
        while changed:
            changed = False
            for stage, ups in self.upstream.items():
                if stage not in out and ups & out:
                    out.add(stage)
                    changed = True
        return out

    def weight(self, stage: str) -> int:
        """How many stages wait on ``stage`` (started first when several are ready: the long chains go first)."""
        return len(self.downstream({stage})) - 1


def stage_graph(root: str | os.PathLike = ".") -> StageGraph:
    """The pipeline's stages and their dependencies, read with DVC's own parser (matrix stages expanded)."""
    from dvc.repo import Repo

    def name(stage) -> str:  # as `dvc repro` in ``root`` names it (``addressing`` is relative to the cwd)
        return getattr(stage, "name", None) or stage.addressing

    with Repo(os.fspath(root)) as repo:
        graph = repo.index.graph
        order = [name(s) for s in repo.index.stages]
        ups = {name(s): {name(d) for d in graph.successors(s)} for s in graph.nodes}
        notebooks = {name(s): str(o.def_path) for s in repo.index.stages for o in s.outs
                     if str(o.def_path).endswith(".ipynb")}
    return StageGraph({name: ups[name] for name in order if name in ups}, notebooks)


def out_of_date(root: str | os.PathLike = ".", *, env: dict | None = None) -> set[str]:
    """The stages ``dvc status`` reports as changed (their own dependencies, parameters or outputs)."""
    import json

    proc = subprocess.run(["dvc", "status", "--json"], cwd=root, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"`dvc status` failed in {Path(root).resolve()}:\n{proc.stderr.strip()}")
    return set(json.loads(proc.stdout or "{}"))


def plan(graph: StageGraph, changed: set[str], targets: Sequence[str] = ()) -> list[str]:
    """The stages to hand to ``dvc repro --single-item``: the changed ones and everything downstream of them.

    A downstream stage whose inputs turn out unchanged is skipped by DVC in a second; listing it is cheaper than
    guessing. With ``targets``, only those stages and what they depend on (as ``dvc repro TARGET`` would).
    """
    todo = graph.downstream(changed & set(graph.upstream))
    if targets:
        unknown = sorted(set(targets) - set(graph.upstream))
        if unknown:
            raise SystemExit(f"occ repro: no stage named {', '.join(unknown)} in dvc.yaml; `dvc stage list` lists them")
        wanted, frontier = set(), set(targets)
        while frontier:
            wanted |= frontier
            frontier = {u for s in frontier for u in graph.upstream[s]} - wanted
        todo &= wanted
    return [s for s in graph.upstream if s in todo]


def _kind(stage: str) -> str:
    return stage.split("@")[0]


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds < 3600 else f"{seconds // 3600}h{seconds // 60 % 60:02d}"


@dataclass
class Scheduler:
    """Which planned stage may start next; what is done, running, failed; an estimate of the time left."""

    graph: StageGraph
    todo: list[str]
    jobs: int  # stages at once, at most
    cores: int | None = None  # threads of the running stages together, at most (None: no limit but ``jobs``)
    threads: dict[str, int] = field(default_factory=dict)  # stage kind -> its declared threads (default 1)
    recorded: dict[str, float] = field(default_factory=dict)  # stage -> seconds its last recorded run took
    running: dict[str, float] = field(default_factory=dict)  # stage -> start time
    done: dict[str, float] = field(default_factory=dict)  # stage -> seconds it took
    skipped: set[str] = field(default_factory=set)  # done stages DVC found up to date
    failed: list[str] = field(default_factory=list)

    def ready(self) -> list[str]:
        """Planned stages not started whose planned upstream stages are all done, the heaviest first."""
        planned = set(self.todo)
        waiting = [s for s in self.todo if s not in self.done and s not in self.running and s not in self.failed]
        free = [s for s in waiting if all(u in self.done for u in self.graph.upstream[s] & planned)]
        return sorted(free, key=lambda s: -self.graph.weight(s))

    def cost(self, stage: str) -> int:
        """The cores ``stage`` takes: its kind's declared threads, at most all the cores (such a stage runs alone)."""
        n = max(1, self.threads.get(_kind(stage), 1))
        return n if self.cores is None else min(n, self.cores)

    def admit(self) -> list[str]:
        """The ready stages to start now: in :meth:`ready`'s order, each that fits in the free stage slots and the
        free cores; a stage that does not fit is passed over for a lighter one behind it (it starts once enough
        running stages finish)."""
        used = sum(self.cost(s) for s in self.running)
        slots, out = self.jobs - len(self.running), []
        for stage in self.ready():
            if len(out) >= slots:
                break
            if self.cores is None or used + self.cost(stage) <= self.cores:
                out.append(stage)
                used += self.cost(stage)
        return out

    def estimate(self, now: float) -> float:
        """Seconds left (:func:`occ.pipeline.estimate.time_left`): the stages' recorded times scaled by those run here,
        laid out on the slots and cores as :meth:`admit` starts them; NaN while there is neither a record nor a
        stage run."""
        ran = {s: t for s, t in self.done.items() if s not in self.skipped}
        if not self.recorded and not ran:
            return float("nan")
        planned = set(self.todo)
        ended = set(self.done) | set(self.failed)
        return time_left(scaled_times(self.todo, self.recorded, ran, _kind),
                         upstream={s: self.graph.upstream[s] & planned for s in self.todo},
                         waiting=[s for s in self.todo if s not in ended and s not in self.running],
                         running={s: now - t0 for s, t0 in self.running.items()}, done=ended, jobs=self.jobs,
                         cores=self.cores, cost=self.cost, order=lambda s: -self.graph.weight(s))


def declared_threads(root: str | os.PathLike = ".") -> dict[str, int]:
    """Stage -> the torch threads its process declares in ``root``'s ``params.yaml``, as the stage's call sets them
    (:data:`occ.registry.STAGES`); empty without a ``params.yaml`` (every stage then counts as one thread)."""
    from occ.config import load_params
    from occ.registry import STAGES

    path = Path(root) / "params.yaml"
    if not path.is_file():
        return {}
    params = load_params(path)
    return {name: stage.threads(params) for name, stage in STAGES.items()}


def nothing_to_do(graph: StageGraph, changed: set[str], targets: Sequence[str] = ()) -> str:
    """What ``occ repro`` says when none of the stages it was asked for is out of date: with ``targets``, about them
    and what they depend on, and which other stages ``dvc status`` found out of date; else about every stage."""
    if not targets:
        return "occ repro: every stage is up to date (dvc status is clean)"
    checked = plan(graph, set(graph.upstream), targets)
    stale = plan(graph, changed)
    them = "it depends" if len(targets) == 1 else "they depend"
    if stale:
        listed = ", ".join(stale[:4]) + (", ..." if len(stale) > 4 else "")
        rest = (f"; {len(stale)} other stage(s) are out of date ({listed}): `occ repro` without targets brings the "
                "whole pipeline up to date")
    else:
        rest = "; so is every other stage (dvc status is clean)"
    return f"occ repro: {', '.join(targets)} and what {them} on ({len(checked)} stage(s)) are up to date{rest}"


def run_parallel(root: str | os.PathLike = ".", *, jobs: int, targets: Sequence[str] = (),
                 force: bool = False, cores: int | None = None, threads: dict[str, int] | None = None,
                 say: Callable[[str], None] = print, poll: float = 0.5) -> int:
    """Run the out-of-date stages of the pipeline in ``root``, ``jobs`` at a time; 0 when every stage succeeded.

    Parameters
    ----------
    root : path
        The repository (holding ``dvc.yaml``).
    jobs : int
        Stages running at once, at most. Each stage runs on the threads it declares (:data:`occ.registry.STAGES`),
        whatever ``jobs`` is.
    cores : int, optional
        The cores the running stages may take together, each its declared threads (``threads``); None: no limit
        but ``jobs``.
    threads : dict, optional
        Stage kind -> declared threads (:func:`declared_threads`); a kind not in it counts as one.
    targets : sequence of str
        Stage names to bring up to date with what they depend on; empty: the whole pipeline.
    force : bool
        Rerun every planned stage, changed or not (``dvc repro --force``).
    say : callable
        Where the progress lines go.
    """
    if jobs < 1:
        raise SystemExit(f"occ repro: --jobs must be at least 1 (got {jobs})")
    # what to run: the stages out of date and everything downstream of them (or of the targets)
    root = Path(root)
    env = dict(os.environ, DVC_NO_ANALYTICS="1")
    graph = stage_graph(root)
    changed = set(graph.upstream) if force else out_of_date(root, env=env)
    todo = plan(graph, changed, targets)
    if not todo:
        say(nothing_to_do(graph, changed, targets))
        return 0
    # the stages' recorded times, read before any stage overwrites its executed notebook
    sched = Scheduler(graph, todo, jobs, cores=cores, threads=dict(threads or {}),
                      recorded=recorded_times(root, graph.notebooks))
    logs = root / LOG_DIR
    make_folder(logs)
    procs: dict[str, tuple[subprocess.Popen, object]] = {}
    t0 = time.monotonic()
    on = "" if cores is None else f" on {cores} core(s), each stage on its declared threads"
    say(f"occ repro: {len(todo)} stage(s) to check or run, up to {jobs} at a time{on}; logs in {LOG_DIR}/")

    def start(stage: str) -> None:
        log = open(logs / f"{stage}.log", "w")
        cmd = ["dvc", "--wait-for-lock", "repro", "--single-item", stage] + (["--force"] if force else [])
        # a session of its own: Ctrl-C reaches the driver alone, which then stops every worker the same way
        procs[stage] = (subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True), log)
        sched.running[stage] = time.monotonic()
        say(f"[{time.strftime('%H:%M:%S')}] start  {stage}  ({len(sched.done)}/{len(todo)} done, "
            f"{len(sched.running)} running)")

    def reap(stage: str, code: int) -> None:
        proc, log = procs.pop(stage)
        log.close()
        took = time.monotonic() - sched.running.pop(stage)
        text = (logs / f"{stage}.log").read_text(errors="replace")
        if code != 0:
            sched.failed.append(stage)
            say(f"[{time.strftime('%H:%M:%S')}] FAILED {stage} after {_clock(took)} (exit {code}); its log: "
                f"{LOG_DIR / (stage + '.log')}")
            tail = "\n".join(text.strip().splitlines()[-15:])
            say("    " + tail.replace("\n", "\n    "))
            return
        sched.done[stage] = took
        what = "skipped (up to date)" if "didn't change" in text and "Running stage" not in text else "finished"
        if what != "finished":
            sched.skipped.add(stage)
        left = sched.estimate(time.monotonic())
        eta = "" if left != left else f", about {_clock(left)} left"
        say(f"[{time.strftime('%H:%M:%S')}] {what} {stage} in {_clock(took)}  ({len(sched.done)}/{len(todo)} done, "
            f"{_clock(time.monotonic() - t0)} elapsed{eta})")

    def stop_all(sig: int) -> None:
        for proc, _ in procs.values():
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass

    # the driver: reap the finished workers, start what fits, until nothing runs (no new stage after a failure)
    try:
        while True:
            for stage, (proc, _) in list(procs.items()):
                code = proc.poll()
                if code is not None:
                    reap(stage, code)
            if not sched.failed:
                for stage in sched.admit():
                    start(stage)
            if not procs:
                break
            time.sleep(poll)
    except KeyboardInterrupt:  # stop every worker as Ctrl-C stops `dvc repro`; the finished stages stay recorded
        say(f"occ repro: interrupted; stopping {len(procs)} running stage(s): {', '.join(procs)}")
        stop_all(signal.SIGINT)
        deadline = time.monotonic() + 30
        while procs and time.monotonic() < deadline:
            for stage, (proc, log) in list(procs.items()):
                if proc.poll() is not None:
                    log.close()
                    procs.pop(stage)
            time.sleep(0.2)
        stop_all(signal.SIGKILL)
        for proc, log in procs.values():
            proc.wait()
            log.close()
        say(f"occ repro: stopped; {len(sched.done)} finished stage(s) are recorded in dvc.lock; run the same "
            "command again to go on")
        return 130
    waiting = [s for s in todo if s not in sched.done and s not in sched.failed]
    if sched.failed:
        say(f"occ repro: {len(sched.failed)} stage(s) failed: {', '.join(sched.failed)} (logs in {LOG_DIR}/); "
            f"{len(sched.done)} finished and recorded, {len(waiting)} not started. Fix the cause and run the same "
            "command again: finished stages are not rerun.")
        return 1
    say(f"occ repro: all {len(todo)} stage(s) done in {_clock(time.monotonic() - t0)}")
    return 0


def machine_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system tells it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
