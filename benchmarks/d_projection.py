"""The label in D, decided by the rule declared before the runs (docs/recipe.md, "The label in D").

Reading A (``train.d_projection: false``, D2 ignores the label) is read from the committed evaluation results of a git
revision (``--before``); reading B (``true``, D2's projection term reads it) from ``results/`` as it is now. Each run's
``metrics.json`` says which reading made it, and a run of the wrong reading is refused. For the six class-conditional
variants, per seed: the probe's accuracy and the mean per-class FAD under both readings, each variant's paired
difference B - A with its 95 % t interval over seeds, and the pooled contrast: per seed the mean over the six variants
of B - A, then its t interval over the seeds. The two controls form the seventh row: the label-free hinge-only control
under A, the projection cGAN (the label in D, no contrastive term) under B.

Writes ``benchmarks/results/d_projection.md`` (the table of docs/recipe.md) and ``d_projection.json``.

Run, after ``occ repro`` made the B runs: ``python benchmarks/d_projection.py --before b1be94c``
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from occ.report.intervals import paired_comparison, t_interval  # noqa: E402

#: The six class-conditional variants the decision pools; then the controls, A's and B's.
VARIANTS = ("contragan", "csupcongan", "o2c", "o2c_ct1", "ocsupcon", "ocsupcon_ct1")
CONTROLS = ("hinge_only", "projection_cgan")
SEEDS = (0, 1, 2)
#: metrics.json key -> (words, the side of B - A that is better)
MEASURES = {"probe_accuracy": ("probe accuracy", "greater"), "fad_mean": ("mean FAD", "less")}


def metrics_before(rev: str, variant: str, seed: int) -> dict:
    """A run's ``metrics.json`` as committed at git revision ``rev``."""
    path = f"results/evaluate/{variant}/seed{seed}/metrics.json"
    out = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"d_projection.py: git revision {rev!r} has no {path} ({out.stderr.strip()}); name the "
                         "commit of the reading-A results with --before.")
    return json.loads(out.stdout)


def metrics_now(variant: str, seed: int) -> dict:
    """A run's ``metrics.json`` in ``results/`` now."""
    path = ROOT / "results" / "evaluate" / variant / f"seed{seed}" / "metrics.json"
    if not path.is_file():
        raise SystemExit(f"d_projection.py: {path.relative_to(ROOT)} is missing: run `occ repro` first.")
    return json.loads(path.read_text())


def reading_of(metrics: dict) -> bool:
    """Whether D read the label in a run (a run made before the setting was recorded did not)."""
    return bool(metrics.get("d_projection", False))


def compare(before: dict, after: dict) -> dict:
    """Per variant and pooled: B - A of each measure, paired by seed."""
    rows = {}
    for variant_a, variant_b in [(v, v) for v in VARIANTS] + [CONTROLS]:
        a, b = before[variant_a], after[variant_b]
        row = {"a": variant_a, "b": variant_b}
        for key, (_, side) in MEASURES.items():
            p = paired_comparison({s: b[s][key] for s in b}, {s: a[s][key] for s in a}, paper_side=side)
            row[key] = {"a": [a[s][key] for s in SEEDS], "b": [b[s][key] for s in SEEDS],
                        "difference": p.mean, "low": p.low, "high": p.high}
        rows[variant_b if variant_a == variant_b else "controls"] = row
    pooled = {}
    for key in MEASURES:
        per_seed = [sum(after[v][s][key] - before[v][s][key] for v in VARIANTS) / len(VARIANTS) for s in SEEDS]
        iv = t_interval(per_seed)
        pooled[key] = {"per_seed": per_seed, "difference": iv.mean, "low": iv.low, "high": iv.high}
    return {"rows": rows, "pooled": pooled, "decision": decide(pooled)}


def decide(pooled: dict) -> str:
    """The declared rule: B is better when it is better on one measure (interval on the better side of 0) and not
    worse on the other (interval entirely on the worse side)."""
    probe, fad = pooled["probe_accuracy"], pooled["fad_mean"]
    probe_better, probe_worse = probe["low"] > 0, probe["high"] < 0
    fad_better, fad_worse = fad["high"] < 0, fad["low"] > 0
    if (probe_better and not fad_worse) or (fad_better and not probe_worse):
        return "B"
    return "A"


def markdown(result: dict, rev: str) -> str:
    """The table of docs/recipe.md."""
    def n(x: float, f: str) -> str:
        return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, f)

    lines = [f"Reading A: `d_projection: false` (git {rev}); B: `d_projection: true` (this run). Seeds "
             f"{', '.join(map(str, SEEDS))}; B - A paired by seed, 95 % t interval over the seeds.", "",
             "| model | probe A | probe B | probe B - A [95 %] | mean FAD A | mean FAD B | FAD B - A [95 %] |",
             "|---|---|---|---|---|---|---|"]
    for name, row in result["rows"].items():
        label = name if name != "controls" else "hinge only (A) / projection cGAN (B)"
        cells = [label]
        for key, f in (("probe_accuracy", ".2f"), ("fad_mean", ".1f")):
            m = row[key]
            cells += [", ".join(n(x, f) for x in m["a"]), ", ".join(n(x, f) for x in m["b"]),
                      f"{n(m['difference'], '+' + f)} [{n(m['low'], '+' + f)}, {n(m['high'], '+' + f)}]"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "| pooled over the six class-conditional variants | per seed (mean of B - A) | B - A [95 %] |",
              "|---|---|---|"]
    for key, (words, _) in MEASURES.items():
        p = result["pooled"][key]
        f = ".3f" if key == "probe_accuracy" else ".1f"
        lines.append(f"| {words} | {', '.join(n(x, '+' + f) for x in p['per_seed'])} | "
                     f"{n(p['difference'], '+' + f)} [{n(p['low'], '+' + f)}, {n(p['high'], '+' + f)}] |")
    verdict = {"B": "B, the label in D, is better by the declared rule", "A": "B is not better by the declared rule: A stays"}
    lines += ["", f"Decision: {verdict[result['decision']]}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="git revision of the committed reading-A results")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="folder of the md and json")
    args = parser.parse_args(argv)
    before = {v: {s: metrics_before(args.before, v, s) for s in SEEDS} for v in VARIANTS + CONTROLS[:1]}
    after = {v: {s: metrics_now(v, s) for s in SEEDS} for v in VARIANTS + CONTROLS[1:]}
    for runs, want, what in ((before, False, f"--before {args.before}"), (after, True, "results/")):
        wrong = [f"{v} seed {s}" for v, per in runs.items() for s, m in per.items()
                 if reading_of(m) != (want if v not in CONTROLS else v == "projection_cgan")]
        if wrong:
            raise SystemExit(f"d_projection.py: the runs of {what} should be reading {'B' if want else 'A'}, but "
                             f"these are not: {wrong}.")
    result = compare(before, after)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "d_projection.json").write_text(json.dumps({"before": args.before, **result}, indent=1) + "\n")
    text = markdown(result, args.before)
    (out / "d_projection.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
