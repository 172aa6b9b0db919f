"""The whole pipeline, sequential against parallel: `dvc repro` and `occ repro -j N` on the same stages, one after
the other, each in a fresh copy of the project (no data/, runs/ or DVC cache), and the ratio of their wall times.

Both copies share nothing but the aiSFX wheel cache. The stages are those of ``--profile`` with ``--variants`` and
``--seeds`` (default: the smoke profile, every variant, seeds 0 and 1, as the test suite runs it); ``--steps``
overrides ``train.steps``. After both runs, every output the two wrote is compared file by file (apart from timings,
as ``tests/test_queue_smoke.py`` does): the parallel run must not change a number.

Writes the section ``pipeline`` of ``benchmarks/results/levers.md`` (with the CPU model) and prints it.

Run: ``python benchmarks/bench_pipeline.py --jobs 2`` (smoke, a few minutes), or e.g.
``python benchmarks/bench_pipeline.py --profile embedded --variants o2c,ocsupcon --seeds 0 --steps 100``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lever_common import LEVERS_MD, machine_line, write_section  # noqa: E402
from shared import output_files, project_copy, same_apart_from_timings  # noqa: E402



def make_copy(repo: Path, *, profile: str, variants: list[str] | None, seeds: list[int], steps: int | None,
              threads: int | None = None) -> dict:
    """A fresh git repository at ``repo`` holding the project with the chosen profile, variants, seeds, steps and
    (when given) thread count of every stage (``shared.project_copy``, with these changes); returns its environment."""
    def edit(params: dict) -> None:
        if steps is not None:
            params["train"]["steps"] = steps
            params["profiles"].setdefault(profile, {}).setdefault("train", {})["steps"] = steps
        if threads is not None:
            for section in ("supcon", "train", "eval"):
                params[section]["threads"] = threads

    top = {"run_variants": variants} if variants else {}
    return project_copy(repo, edit=edit, profile=profile, seeds=seeds, **top)[1]


def timed(cmd: list[str], repo: Path, env: dict) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed in {repo}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0


def compare(seq: Path, par: Path) -> list[str]:
    """What differs, apart from timings, between the outputs the two runs recorded in dvc.lock."""
    a = yaml.safe_load((seq / "dvc.lock").read_text())["stages"]
    b = yaml.safe_load((par / "dvc.lock").read_text())["stages"]
    if set(a) != set(b):
        return [f"other stages: {sorted(set(a) ^ set(b))}"]
    differ = []
    for stage in a:
        outs_b = {o["path"]: o.get("md5") for o in b[stage].get("outs", [])}
        for out in a[stage].get("outs", []):
            if out.get("md5") == outs_b.get(out["path"]):
                continue
            for f in output_files(seq, out["path"]):
                why = same_apart_from_timings(seq / f, par / f) if (par / f).is_file() else f"{f} missing"
                if why:
                    differ.append(f"{stage}: {why}")
    return differ


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--variants", default="", help="comma-separated run_variants (default: params.yaml's)")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--steps", type=int, default=None, help="train.steps of every run (default: the profile's)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seq-threads", type=int, default=None,
                    help="threads of every stage of the sequential run (default: the declared ones; another count "
                         "measures the path of one stage at a time on every core, and the outputs are not compared)")
    ap.add_argument("--keep", default=None, help="keep the two copies under this folder (default: deleted)")
    args = ap.parse_args()
    variants = [v for v in args.variants.split(",") if v] or None
    seeds = [int(s) for s in args.seeds.split(",")]
    head = machine_line()
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="occ-bench-pipeline-"))
    times = {}
    try:
        seq_name = "sequential `dvc repro`" + (f", {args.seq_threads} threads per stage" if args.seq_threads else "")
        for name, cmd in ((seq_name, ["dvc", "repro"]),
                          (f"`occ repro -j {args.jobs}`", [sys.executable, "-m", "occ", "repro", "-j",
                                                           str(args.jobs)])):
            repo = base / ("seq" if "dvc" in name else "par")
            env = make_copy(repo, profile=args.profile, variants=variants, seeds=seeds, steps=args.steps,
                            threads=args.seq_threads if repo.name == "seq" else None)
            times[name] = (repo, timed(cmd, repo, env))
            print(f"{name}: {times[name][1]:.1f} s", flush=True)
        (seq, t_seq), (par, t_par) = times.values()
        differ = compare(seq, par) if args.seq_threads is None else None
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    what = f"profile {args.profile}, variants {','.join(variants) if variants else 'all'}, seeds {args.seeds}" + (
        f", {args.steps} steps" if args.steps else "")
    body = "\n".join([
        f"### The whole pipeline: sequential against {args.jobs} stages at once",
        "",
        f"Command: `python benchmarks/bench_pipeline.py {' '.join(sys.argv[1:])}`",
        "",
        head,
        "",
        f"Each from a fresh copy (no data/, runs/ or DVC cache), one after the other; {what}.",
        "",
        "| run | wall s | ratio |",
        "|---|---|---|",
        *[f"| {k} | {t:.1f} | {t_seq / t:.2f}x |" for k, (_, t) in times.items()],
        "",
        "Outputs compared file by file apart from timings: " + (
            "not compared (other thread counts)." if differ is None else
            "identical." if not differ else f"{len(differ)} differ: " + "; ".join(differ[:5])),
    ])
    write_section(LEVERS_MD, "pipeline", body)
    print(body)
    if differ:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
