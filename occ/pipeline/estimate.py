"""``occ repro``'s estimate of the time left: the stages' recorded times, scaled by what this machine has shown, laid
out as the driver lays out stages.

Recorded times: each stage's executed notebook in ``results/`` records how long it ran (papermill's
``metadata.papermill.duration``): the committed run's, or the last run's on this machine. They are read once,
before any stage overwrites them (:func:`recorded_times`). A stage without a record counts as the mean of its kind's
records (``train@*``, ``evaluate@*``, ...), else as the mean of all. Without any record (a fresh copy), the times of
the stages run so far are the records.

Scale: once stages have run here, every record is scaled by how long this machine took against the record, per kind
where a stage of that kind has run, else over every stage run so far (a faster machine, a smaller profile); stages
DVC skipped as up to date count neither way.

Layout (:func:`time_left`): the running stages finish their scaled time (at least a second more), then the waiting
ones start as the driver starts them, each when its upstream stages are done and it fits in the free stage slots and
cores, the heaviest first; the estimate is when the last one ends. It counts the stages still to check as stages to
run, so a run of mostly up-to-date stages ends sooner than said. docs/parallel.md says how close it came.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

__all__ = ["recorded_times", "scaled_times", "time_left"]


def recorded_times(root: str | os.PathLike, notebooks: Mapping[str, str]) -> dict[str, float]:
    """Stage -> the seconds its executed notebook (``notebooks[stage]``, relative to ``root``) records having run;
    stages whose notebook is missing or unreadable, or records no duration, are left out."""
    out = {}
    for stage, rel in notebooks.items():
        try:
            meta = json.loads((Path(root) / rel).read_text())["metadata"]["papermill"]
            out[stage] = float(meta["duration"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return out


def scaled_times(stages: Sequence[str], recorded: Mapping[str, float], ran: Mapping[str, float],
                 kind: Callable[[str], str]) -> dict[str, float]:
    """Stage -> its expected seconds on this machine: its record (else its kind's mean record, else the mean of all),
    times this machine's ratio of time taken to time recorded over the stages of ``ran`` (stage -> seconds it took
    here) of the same kind, else over all of them (1 while none has run). Without records, ``ran`` is the record."""
    recorded = recorded or ran
    by_kind: dict[str, list[float]] = {}
    for stage, seconds in recorded.items():
        by_kind.setdefault(kind(stage), []).append(seconds)
    overall = sum(recorded.values()) / len(recorded) if recorded else 0.0

    def prior(stage: str) -> float:
        if stage in recorded:
            return recorded[stage]
        same = by_kind.get(kind(stage))
        return sum(same) / len(same) if same else overall

    def ratio(stages_run: list[str]) -> float | None:
        expected = sum(prior(s) for s in stages_run)
        return sum(ran[s] for s in stages_run) / expected if stages_run and expected > 0 else None

    everything = ratio(list(ran))
    out = {}
    for stage in stages:
        r = ratio([s for s in ran if kind(s) == kind(stage)])
        out[stage] = prior(stage) * (r if r is not None else everything if everything is not None else 1.0)
    return out


def time_left(expected: Mapping[str, float], *, upstream: Mapping[str, set[str]], waiting: Sequence[str],
              running: Mapping[str, float], done: set[str], jobs: int, cores: int | None,
              cost: Callable[[str], int], order: Callable[[str], float]) -> float:
    """Seconds until the last of ``waiting`` and ``running`` stages ends, laid out as the driver starts stages.

    Parameters
    ----------
    expected : mapping
        Stage -> its expected seconds (:func:`scaled_times`).
    upstream : mapping
        Stage -> the stages it waits for (only those still to run count).
    waiting : sequence of str
        Stages not started yet.
    running : mapping
        Stage -> seconds it has run so far.
    done : set of str
        Stages finished (or failed: nothing waits for them any more).
    jobs, cores :
        The driver's limits: stages at once, and the cores their threads may take together (None: no limit).
    cost : callable
        Stage -> the cores it takes.
    order : callable
        Stage -> its priority key (lower starts first among the ready ones).
    """
    clock = 0.0
    ends = {s: max(1.0, expected.get(s, 0.0) - took) for s, took in running.items()}  # stage -> seconds from now
    finished, pending = set(done), list(waiting)
    while pending or ends:
        used = sum(cost(s) for s in ends)
        for stage in sorted((s for s in pending if upstream.get(s, set()) <= finished | set(done)), key=order):
            if len(ends) >= jobs:
                break
            if cores is None or used + cost(stage) <= cores:
                ends[stage] = clock + expected.get(stage, 0.0)
                used += cost(stage)
                pending.remove(stage)
        if not ends:  # what is left waits on stages that are neither running nor planned
            break
        stage = min(ends, key=ends.get)
        clock = ends.pop(stage)
        finished.add(stage)
    return clock
