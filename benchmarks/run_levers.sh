#!/usr/bin/env bash
# Regenerates benchmarks/results/levers.md (and its CSVs): the issue-22 lever measurements, one benchmark at a time
# (never two at once: each measures the whole machine). About 30 minutes on 2 cores. Run from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
"$PY" benchmarks/bench_parallel.py --train-steps 30 --eval-units 4
"$PY" benchmarks/bench_eval_profile.py --threads 2 --subset 32 --rounds 1 --aisfx-classes 2 --skip-reference-call
"$PY" benchmarks/bench_step_levers.py --threads 1 --kinds o2c,ocsupcon --batches 16,32 --rounds 3 --per-round 4
