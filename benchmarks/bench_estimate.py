"""How good `occ repro`'s estimate of the time left is: a finished run replayed stage by stage.

The run's timeline is its executed notebooks' own record (papermill's start time and duration of every stage in
``--run``'s ``results/``). At each stage's end, the driver's estimate is computed as it would have been then
(``occ.pipeline.parallel.Scheduler.estimate``: the recorded times of ``--records``' ``results/``, scaled by the stages
finished so far, laid out on ``--jobs`` slots and ``--cores`` cores) and set beside the time that was really left and
beside the estimate of the driver before this change (each kind's mean time so far, all over the jobs).

With ``--records`` the run itself, the records are exact and the replay measures the layout alone; with the committed
run as records and another run (another profile, another machine), it measures the scaling too.

Run: ``python benchmarks/bench_estimate.py`` (the committed run against its own records), or e.g.
``python benchmarks/bench_estimate.py --run /path/to/smoke-copy --records . --jobs 1 --cores 1``.
Writes the section ``estimate`` of ``benchmarks/results/levers.md`` (``--section``) and prints it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lever_common import LEVERS_MD, write_section  # noqa: E402
from occ.pipeline.estimate import recorded_times  # noqa: E402
from occ.pipeline.parallel import Scheduler, stage_graph  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def timeline(root: Path, notebooks: dict[str, str]) -> dict[str, tuple[float, float]]:
    """Stage -> (start, end) in seconds from the first start, from its executed notebook's papermill record."""
    spans = {}
    for stage, rel in notebooks.items():
        try:
            meta = json.loads((root / rel).read_text())["metadata"]["papermill"]
            start = datetime.fromisoformat(meta["start_time"]).timestamp()
            spans[stage] = (start, start + float(meta["duration"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    t0 = min(s for s, _ in spans.values())
    return {stage: (s - t0, e - t0) for stage, (s, e) in spans.items()}


def old_estimate(done: dict[str, float], todo: list[str], running: dict[str, float], now: float, jobs: int) -> float:
    """The estimate before this change: each unfinished stage at the mean time of its kind's finished stages (else
    of all), less what a running one has run, all over ``jobs``."""
    overall = sum(done.values()) / len(done)
    by_kind: dict[str, list[float]] = {}
    for s, t in done.items():
        by_kind.setdefault(s.split("@")[0], []).append(t)
    left = 0.0
    for s in todo:
        if s in done:
            continue
        times = by_kind.get(s.split("@")[0])
        guess = sum(times) / len(times) if times else overall
        left += max(0.0, guess - (now - running[s])) if s in running else guess
    return left / max(1, min(jobs, len(todo) - len(done)))


def replay(run: Path, records: Path, *, jobs: int, cores: int | None) -> list[dict]:
    """One row per stage end: the stage, the elapsed time, the time really left, the new and the old estimate."""
    graph = stage_graph(run)
    spans = timeline(run, graph.notebooks)
    todo = [s for s in graph.upstream if s in spans]
    end_of_run = max(e for _, e in spans.values())
    recorded = recorded_times(records, graph.notebooks)
    rows = []
    for stage, (_, end) in sorted(spans.items(), key=lambda kv: kv[1][1]):
        done = {s: e - b for s, (b, e) in spans.items() if e <= end}
        running = {s: b for s, (b, e) in spans.items() if b < end < e}
        sched = Scheduler(graph, todo, jobs, cores=cores, recorded=recorded, running=running, done=done)
        if len(done) == len(todo):
            break
        rows.append({"stage": stage, "elapsed": end, "left": end_of_run - end, "new": sched.estimate(end),
                     "old": old_estimate(done, todo, running, end, jobs)})
    return rows


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default=str(ROOT), help="the project whose results/ hold the run replayed")
    ap.add_argument("--records", default=str(ROOT), help="the project whose results/ are the recorded times")
    ap.add_argument("--jobs", type=int, default=2, help="the run's stages at once (the committed run: 2)")
    ap.add_argument("--cores", type=int, default=2, help="the run's cores (the committed run: 2)")
    ap.add_argument("--section", default="estimate", help="section of benchmarks/results/levers.md to write")
    args = ap.parse_args()
    rows = replay(Path(args.run), Path(args.records), jobs=args.jobs, cores=args.cores)
    errors = {k: [abs(r[k] - r["left"]) / r["left"] for r in rows if r["left"] > 0] for k in ("new", "old")}
    first = rows[0]
    name = {ROOT: "the committed run"}
    run, records = (name.get(Path(a).resolve(), "--" + k) for k, a in (("run", args.run), ("records", args.records)))
    body = "\n".join([
        f"### The time left of `occ repro`, replayed: `python benchmarks/bench_estimate.py {' '.join(sys.argv[1:])}`",
        "",
        f"Run replayed: {run}'s results/ ({len(rows) + 1} stages, {_minutes(rows[-1]['elapsed'] + rows[-1]['left'])} "
        f"min); records: {records}'s results/; {args.jobs} stage(s) at once on {args.cores} core(s). Times from the "
        "notebooks' papermill records.",
        "",
        f"After the first stage ({first['stage']}, {_minutes(first['elapsed'])} min): "
        f"{_minutes(first['left'])} min left; estimated {_minutes(first['new'])} (before this change: "
        f"{_minutes(first['old'])}).",
        "",
        "| estimate | median error | 90th percentile | largest |",
        "|---|---|---|---|",
        *[f"| {name} | {100 * statistics.median(e):.0f} % | {100 * sorted(e)[int(0.9 * (len(e) - 1))]:.0f} % | "
          f"{100 * max(e):.0f} % |" for name, e in (("recorded times, scaled, laid out (now)", errors["new"]),
                                                    ("mean per kind over the jobs (before)", errors["old"]))],
        "",
        "| after stage | elapsed, min | left, min | estimated now | estimated before |",
        "|---|---|---|---|---|",
        *[f"| {r['stage']} | {_minutes(r['elapsed'])} | {_minutes(r['left'])} | {_minutes(r['new'])} | "
          f"{_minutes(r['old'])} |" for r in rows],
    ])
    write_section(LEVERS_MD, args.section, body)
    print(body)


if __name__ == "__main__":
    main()
