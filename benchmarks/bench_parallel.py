"""Parallel throughput of this CPU: two one-thread processes side by side against one process.

For two workloads, the machine's throughput (units per second, all processes together) in three layouts:

* one process, 1 thread (the reference);
* one process, ``--cores`` threads (what a stage gets today: nothing sets the thread count, so torch takes every
  core);
* ``--cores`` processes of 1 thread each, side by side (what N parallel stages with a fixed thread count do).

Workloads, each today's code path:

* ``train``: one GAN training step of the embedded profile (``draw_step`` + ``d_step`` + ``g_step`` + EMA, o2c,
  the params.yaml batch), unit = one step;
* ``eval``: Griffin-Lim (``eval.gl_iters`` iterations, the vocoder's default batch) of 16 generated log-mels from
  the (untrained) embedded G, then their aiSFX embedding, unit = 16 clips: the two phases that dominate an
  evaluation.

Every process builds its workload and warms up, then all start timing together (a go signal on stdin) and run the
same number of units. Throughput = units of all processes / the slowest process's wall time.

Run: ``.venv/bin/python benchmarks/bench_parallel.py --train-steps 40 --eval-units 6``
Writes the section ``parallel`` of ``benchmarks/results/levers.md`` and ``benchmarks/results/parallel.csv``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

EVAL_CLIPS = 16


def worker(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    from lever_common import Levers, gan_setup, gan_step, load_embedded_params

    params = load_embedded_params()
    if args.worker == "train":
        s = gan_setup("o2c", params.train.batch_size, Levers())
        for _ in range(3):
            gan_step(s)

        def unit():
            gan_step(s)
    else:
        from occ.data.datasets import denormalize_mel
        from occ.metrics.embeddings import AisfxEmbedder
        from occ.nets.models import initial_generator
        from occ.synthesis.generate import eval_seeds, generate_mels
        from occ.synthesis.vocoder import vocode

        g = initial_generator(params.model, n_classes=7, seed=0)
        labels, seeds = eval_seeds(EVAL_CLIPS // 7 + 1, 7, base_seed=0)
        mels = denormalize_mel(generate_mels(g, labels[:EVAL_CLIPS], seeds[:EVAL_CLIPS]))
        emb = AisfxEmbedder()

        def unit():
            wavs = vocode(mels, method="griffinlim", n_iter=params.eval.gl_iters)
            emb.embed(wavs.numpy())

        unit()
    print("READY", flush=True)
    sys.stdin.readline()
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(args.units):
        unit()
    print("RESULT " + json.dumps({"wall": time.perf_counter() - w0, "cpu": time.process_time() - c0,
                                  "units": args.units, "threads": torch.get_num_threads()}), flush=True)


def run_layout(workload: str, processes: int, threads: int, units: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, __file__, "--worker", workload, "--threads", str(threads), "--units", str(units)]
    procs = [subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(processes)]
    for p in procs:
        line = p.stdout.readline()
        while line and not line.startswith("READY"):
            line = p.stdout.readline()
        if not line:
            raise RuntimeError(f"worker exited before READY (code {p.wait()})")
    for p in procs:  # go: all start their timed units together
        p.stdin.write("go\n")
        p.stdin.flush()
    outs = []
    for p in procs:
        out, _ = p.communicate(timeout=3600)
        line = next(ln for ln in out.splitlines() if ln.startswith("RESULT "))
        outs.append(json.loads(line[len("RESULT "):]))
    wall = max(o["wall"] for o in outs)
    total = sum(o["units"] for o in outs)
    return {"processes": processes, "threads": threads, "units": total, "wall": wall,
            "cpu": sum(o["cpu"] for o in outs), "throughput": total / wall}


def main() -> None:
    from lever_common import LEVERS_MD, LEVERS_TITLE, RESULTS, load_embedded_params, machine_line, write_section

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cores", type=int, default=os.cpu_count(), help="threads / processes of the parallel layouts")
    ap.add_argument("--train-steps", type=int, default=40, help="timed training steps per process")
    ap.add_argument("--eval-units", type=int, default=6, help=f"timed units of {EVAL_CLIPS} clips per process")
    ap.add_argument("--workloads", default="train,eval")
    ap.add_argument("--md", default=str(LEVERS_MD))
    ap.add_argument("--csv", default=str(RESULTS / "parallel.csv"))
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--units", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    t_start = time.perf_counter()
    params = load_embedded_params()
    header = machine_line("1 or " + str(args.cores) + " per process, as in each row")
    print(header, flush=True)
    n = args.cores
    layouts = [(1, 1, "1 process x 1 thread (reference)"), (1, n, f"1 process x {n} threads (today: torch's default)"),
               (n, 1, f"{n} processes x 1 thread, side by side")]
    units = {"train": args.train_steps, "eval": args.eval_units}
    unit_name = {"train": f"steps (o2c, batch {params.train.batch_size})",
                 "eval": f"units of {EVAL_CLIPS} clips (Griffin-Lim {params.eval.gl_iters} it + aiSFX)"}
    rows = []
    for workload in [w for w in args.workloads.split(",") if w]:
        res = {}
        for procs, threads, label in layouts:
            r = run_layout(workload, procs, threads, units[workload])
            res[label] = r
            print(f"  {workload}: {label}: {r['throughput']:.3f} units/s ({r['units']} units in {r['wall']:.1f} s, "
                  f"CPU {r['cpu']:.1f} s)", flush=True)
        ref = res[layouts[0][2]]["throughput"]
        one_n = res[layouts[1][2]]["throughput"]
        for procs, threads, label in layouts:
            r = res[label]
            rows.append((workload, unit_name[workload], label, r, r["throughput"] / ref, r["throughput"] / one_n))
    lines = ["### Parallel throughput: processes x threads", "",
             f"Command: `.venv/bin/python benchmarks/bench_parallel.py --cores {args.cores} --train-steps "
             f"{args.train_steps} --eval-units {args.eval_units}`", "", header, "",
             "Throughput = units of all processes / wall time of the slowest (every process starts timing at one "
             "go signal, after building and warming up). Each process runs the same number of units.", "",
             "| workload | layout | units | wall s | units/s (machine) | vs 1 x 1 thread | vs 1 x "
             f"{n} threads |", "|---|---|---|---|---|---|---|"]
    csv = ["workload,layout,processes,threads,units,wall_s,cpu_s,units_per_s,ratio_vs_1x1,ratio_vs_1xN"]
    for workload, uname, label, r, a, b in rows:
        lines.append(f"| {workload}: {uname} | {label} | {r['units']} | {r['wall']:.1f} | {r['throughput']:.3f} | "
                     f"{a:.2f}x | {b:.2f}x |")
        csv.append(f"{workload},{label},{r['processes']},{r['threads']},{r['units']},{r['wall']:.3f},{r['cpu']:.3f},"
                   f"{r['throughput']:.5f},{a:.4f},{b:.4f}")
    lines += ["", f"Whole benchmark: {time.perf_counter() - t_start:.0f} s."]
    body = "\n".join(lines)
    print("\n" + body)
    write_section(args.md, "parallel", body, title=LEVERS_TITLE)
    Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
    Path(args.csv).write_text("\n".join(csv) + "\n")
    print(f"\nwrote {args.md} (section 'parallel') and {args.csv}")


if __name__ == "__main__":
    main()
