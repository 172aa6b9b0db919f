"""A cheaper GAN step on the CPU: torch.compile, channels_last, Adam foreach / fused, against today.

One training step is today's: ``occ.train.gan_step.draw_step`` + ``d_step`` + ``g_step`` + ``ema_update``, as
``train_gan`` calls them, with the embedded profile's G, D (and, for the SupCon kinds, the encoder f, untrained: the
same cost) on stand-in data of the training set's shape. For each loss kind and batch size, these paths run
interleaved in rounds (so drifting load hits them alike), after a warm-up, from the same weights and draws:

* eager (today: default Adam, contiguous tensors, no compilation);
* channels_last for G and D; Adam ``foreach=True``; Adam ``fused=True``; ``torch.compile`` of G and D
  (mode default, ``dynamic=False``);
* the best combination: every single lever that beat eager by more than 2 %, together (a second interleaved pass,
  again against eager).

torch.compile's cost is measured in two fresh processes sharing one ``TORCHINDUCTOR_CACHE_DIR`` (a new temporary
folder): the first compiles with a cold cache, the second with the cache the first left (a rerun of a stage).
Compile seconds = the first three compiled steps minus three steady compiled steps. The second process also trains
``--agree-steps`` steps eager and compiled from the same start and reports the largest relative difference of the
logged losses. Break-even: steps after which the saving per step has paid the compile time, and the whole-run ratio
(eager run / compiled run including compilation) for runs of 350, 800 and 1500 steps.

Run (from the repository root; ~20 min on 2 cores, most of it compilation)::

    .venv/bin/python benchmarks/bench_step_levers.py --threads 1 --kinds o2c,ocsupcon --batches 16,32 --rounds 3 --per-round 4

Writes the section ``step`` of ``benchmarks/results/levers.md`` and ``benchmarks/results/step_levers.csv``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from lever_common import (LEVERS_MD, LEVERS_TITLE, RESULTS, Levers, break_even_steps, gan_setup,  # noqa: E402
                          gan_step, load_embedded_params, machine_line, max_rel_diff, stand_in_data, write_section)

LOSS_KEYS = ("d_loss_real", "d_loss_fake", "d_adv", "d_contrastive", "g_adv", "g_contrastive")
RUN_LENGTHS = (350, 800, 1500)
SINGLES = [Levers(), Levers(channels_last=True), Levers(adam="foreach"), Levers(adam="fused"), Levers(compile=True)]


def fused_supported() -> tuple[bool, str]:
    """Whether Adam(fused=True) steps on CPU tensors in this torch."""
    try:
        p = torch.nn.Parameter(torch.zeros(3))
        opt = torch.optim.Adam([p], lr=1e-3, fused=True)
        p.grad = torch.ones(3)
        opt.step()
        return True, ""
    except Exception as exc:  # noqa: BLE001
        return False, f"{type(exc).__name__}: {exc}"


def timed_steps(setup, n: int) -> list[tuple[float, float]]:
    out = []
    for _ in range(n):
        w0, c0 = time.perf_counter(), time.process_time()
        gan_step(setup)
        out.append((time.perf_counter() - w0, time.process_time() - c0))
    return out


def measure(configs: list[Levers], kind: str, batch: int, *, warmup: int, rounds: int, per_round: int, data,
            encoder) -> dict[str, dict]:
    """Median wall and CPU s/step of each lever set, interleaved in rounds; compile seconds of compiled ones."""
    res: dict[str, dict] = {}
    setups = {}
    for lv in configs:
        try:
            s = gan_setup(kind, batch, lv, data=data, encoder=encoder)
            first = timed_steps(s, warmup)
            setups[lv.name] = s
            res[lv.name] = {"levers": lv, "warmup": first, "wall": [], "cpu": [], "error": ""}
        except Exception as exc:  # noqa: BLE001
            res[lv.name] = {"levers": lv, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
            print(f"  {kind} b{batch} {lv.name}: FAILED {res[lv.name]['error']}", flush=True)
    for r in range(rounds):
        for name, s in setups.items():
            for w, c in timed_steps(s, per_round):
                res[name]["wall"].append(w)
                res[name]["cpu"].append(c)
    for name, r in res.items():
        if r["error"]:
            continue
        r["wall_s"] = statistics.median(r["wall"])
        r["cpu_s"] = statistics.median(r["cpu"])
        r["warmup_extra_s"] = sum(w for w, _ in r["warmup"]) - len(r["warmup"]) * r["wall_s"]
        print(f"  {kind} b{batch} {name:40s} {r['wall_s']:.3f} s/step wall {r['cpu_s']:.3f} CPU "
              f"(warm-up extra {r['warmup_extra_s']:.1f} s)", flush=True)
    return res


# ------------------------------------------------------------------------------------------- compile probe

def probe(args) -> None:
    """Fresh-process compile timing (and, with --agree-steps, the eager/compiled loss agreement); prints JSON."""
    torch.set_num_threads(args.threads)
    out: dict = {"cache_dir": os.environ.get("TORCHINDUCTOR_CACHE_DIR", ""), "batches": {}, "agree": {}}
    data = stand_in_data()
    for batch in args.batch_list:
        try:
            s = gan_setup("o2c", batch, Levers(compile=True), data=data)
            t0 = time.perf_counter()
            first = timed_steps(s, 3)
            steady = timed_steps(s, 5)
            med = statistics.median(w for w, _ in steady)
            out["batches"][str(batch)] = {"compile_s": sum(w for w, _ in first) - 3 * med, "first3_s": sum(
                w for w, _ in first), "steady_s": med, "wall_s": time.perf_counter() - t0, "error": ""}
        except Exception as exc:  # noqa: BLE001
            out["batches"][str(batch)] = {"error": f"{type(exc).__name__}: {exc}"[:2000],
                                          "traceback": traceback.format_exc()[-3000:]}
        print(f"probe batch {batch}: {out['batches'][str(batch)]}", file=sys.stderr, flush=True)
    if args.agree_steps:
        batch = args.batch_list[0]
        for kind in args.kind_list:
            try:
                rows = {}
                for lv in (Levers(), Levers(compile=True)):
                    s = gan_setup(kind, batch, lv, data=data)
                    rows[lv.name] = [gan_step(s) for _ in range(args.agree_steps)]
                rel, ab = max_rel_diff(rows["eager (today)"], rows["compile"], LOSS_KEYS)
                first_rel, _ = max_rel_diff(rows["eager (today)"][:1], rows["compile"][:1], LOSS_KEYS)
                out["agree"][kind] = {"steps": args.agree_steps, "batch": batch, "max_rel": rel, "max_abs": ab,
                                      "first_step_max_rel": first_rel, "error": ""}
            except Exception as exc:  # noqa: BLE001
                out["agree"][kind] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
            print(f"agree {kind}: {out['agree'][kind]}", file=sys.stderr, flush=True)
    print("PROBE-JSON " + json.dumps(out), flush=True)


def run_probe(cache_dir: str, args, *, agree: bool) -> dict:
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache_dir, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, __file__, "--probe", "--threads", str(args.threads), "--batches", args.batches,
           "--kinds", args.kinds, "--agree-steps", str(args.agree_steps if agree else 0)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.probe_timeout)
    wall = time.perf_counter() - t0
    sys.stderr.write(proc.stderr[-4000:])
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("PROBE-JSON ")), None)
    if line is None:
        return {"error": f"probe exited {proc.returncode}: {proc.stderr[-1500:]}", "process_wall_s": wall}
    out = json.loads(line[len("PROBE-JSON "):])
    out["process_wall_s"] = wall
    return out


# ---------------------------------------------------------------------------------------------------- main

def main() -> None:
    params = load_embedded_params()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kinds", default="o2c,ocsupcon", help="comma-separated loss kinds")
    ap.add_argument("--batches", default=f"{params.train.batch_size},32", help="comma-separated batch sizes")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the issue: 1)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps per path (compilation happens here)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    ap.add_argument("--per-round", type=int, default=4, help="timed steps per path per round")
    ap.add_argument("--agree-steps", type=int, default=20, help="steps of the eager/compiled loss comparison")
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile (paths and probes)")
    ap.add_argument("--probe-timeout", type=int, default=900)
    ap.add_argument("--cache-dir", default=None, help="TORCHINDUCTOR_CACHE_DIR (default: a new empty temporary folder, "
                    "so the first probe compiles from scratch)")
    ap.add_argument("--md", default=str(LEVERS_MD), help="Markdown results file (section 'step')")
    ap.add_argument("--csv", default=str(RESULTS / "step_levers.csv"))
    ap.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.kind_list = [k for k in args.kinds.split(",") if k]
    args.batch_list = [int(b) for b in args.batches.split(",") if b]
    if args.probe:
        probe(args)
        return

    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    header = machine_line(args.threads)
    print(header, flush=True)
    fused_ok, fused_err = fused_supported()
    singles = [lv for lv in SINGLES if (lv.adam != "fused" or fused_ok) and not (lv.compile and args.no_compile)]

    probes = {}
    cache_dir = args.cache_dir or tempfile.mkdtemp(prefix="occ-inductor-")
    if not args.no_compile:
        for label, agree in (("first run (cold cache)", False), ("second process (warm cache)", True)):
            print(f"compile probe: {label}, TORCHINDUCTOR_CACHE_DIR={cache_dir}", flush=True)
            probes[label] = run_probe(cache_dir, args, agree=agree)
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache_dir  # the main process finds the probes' graphs

    data = stand_in_data()
    torch.manual_seed(1234)
    from occ.nets.models import build_encoder

    encoder = build_encoder(params.model, n_classes=7)

    def report(done: bool) -> None:
        # ---------------------------------------------------------------------------------------------- tables
        lines = [f"### Training step, {args.threads} thread(s)", "",
                 f"Command: `.venv/bin/python benchmarks/bench_step_levers.py --threads {args.threads} --kinds "
                 f"{args.kinds} --batches {args.batches} --rounds {args.rounds} --per-round {args.per_round}`", "",
                 header, "",
                 f"Median of {args.rounds} x {args.per_round} steps per path after {args.warmup} warm-up steps, paths "
                 "interleaved. Ratio = eager s/step / this path's (>1: faster). The best-combination row is timed in a "
                 "second interleaved pass with its own eager reference."
                 + ("" if fused_ok else f" Adam fused=True is not available here: {fused_err}."), "",
                 "| kind | batch | path | wall s/step | CPU s/step | ratio to eager (wall) | ratio (CPU) |",
                 "|---|---|---|---|---|---|---|"]
        csv = ["kind,batch,path,wall_s_per_step,cpu_s_per_step,ratio_wall,ratio_cpu,error"]
        for (kind, batch), res in results.items():
            e = res["eager (today)"]
            for name, r in res.items():
                if r["error"]:
                    lines.append(f"| {kind} | {batch} | {name} | failed: {r['error']} | | | |")
                    csv.append(f"{kind},{batch},{name},,,,,\"{r['error']}\"")
                    continue
                ratio = r.get("ratio_override", e["wall_s"] / r["wall_s"])
                cratio = r.get("cpu_ratio_override", e["cpu_s"] / r["cpu_s"])
                lines.append(f"| {kind} | {batch} | {name} | {r['wall_s']:.3f} | {r['cpu_s']:.3f} | {ratio:.2f}x | "
                             f"{cratio:.2f}x |")
                csv.append(f"{kind},{batch},{name},{r['wall_s']:.5f},{r['cpu_s']:.5f},{ratio:.4f},{cratio:.4f},")

        if not args.no_compile:
            lines += ["", "#### torch.compile: compile time, break-even, whole-run ratio", "",
                      "Compile seconds of G and D (o2c; the SupCon kinds compile the same graphs, f stays eager) in two "
                      "fresh processes sharing one new `TORCHINDUCTOR_CACHE_DIR`: the first run with a cold cache, the "
                      "second with the first's cache. Break-even = compile s / (eager - compiled s/step); run ratio = "
                      "eager run / (compile + compiled run).", ""]
            cold = probes.get("first run (cold cache)", {})
            warm = probes.get("second process (warm cache)", {})
            for label, p in probes.items():
                if p.get("error"):
                    lines.append(f"- {label}: probe failed: `{p['error'][:500]}`")
                for b, v in p.get("batches", {}).items():
                    if v.get("error"):
                        lines.append(f"- {label}, batch {b}: torch.compile failed: `{v['error'][:500]}`")
            lines += ["", "| kind | batch | eager s/step | compiled s/step | compile s, cold cache | compile s, warm cache | "
                      "break-even steps (cold / warm) | " + " | ".join(f"run ratio {n} steps (cold / warm)"
                                                                       for n in RUN_LENGTHS) + " |",
                      "|---|---|---|---|---|---|---|" + "---|" * len(RUN_LENGTHS)]
            for (kind, batch), res in results.items():
                c = res.get("compile", {})
                cb, wb = cold.get("batches", {}).get(str(batch), {}), warm.get("batches", {}).get(str(batch), {})
                if not c or c.get("error") or "compile_s" not in cb or "compile_s" not in wb:
                    continue
                e, t = res["eager (today)"]["wall_s"], c["wall_s"]
                be = [break_even_steps(x, e, t) for x in (cb["compile_s"], wb["compile_s"])]
                ratios = [" / ".join(f"{n * e / (x + n * t):.2f}x" for x in (cb["compile_s"], wb["compile_s"]))
                          for n in RUN_LENGTHS]
                lines.append(f"| {kind} | {batch} | {e:.3f} | {t:.3f} | {cb['compile_s']:.0f} | {wb['compile_s']:.0f} | "
                             f"{be[0]:.0f} / {be[1]:.0f} | " + " | ".join(ratios) + " |")
                csv.append(f"{kind},{batch},compile_s_cold,{cb['compile_s']:.2f},,,,")
                csv.append(f"{kind},{batch},compile_s_warm,{wb['compile_s']:.2f},,,,")
            combos = [(k, b, n, r) for (k, b), res in results.items() for n, r in res.items()
                      if r.get("best") and r["levers"].compile]
            if combos:
                lines += ["", "In-process compile seconds of the best combination (its graphs differ from compile-only "
                          "ones when channels_last is in it, so the cache was cold for them at the first batch size):"]
                for k, b, n, r in combos:
                    lines.append(f"- {k}, batch {b}, {n}: {r['warmup_extra_s']:.0f} s")
            agree = warm.get("agree", {})
            if agree:
                lines += ["", f"#### Compiled against eager: the logged losses ({', '.join(LOSS_KEYS)})", "",
                          "Same weights and draws, eager and compiled, in the warm-cache process. Relative difference = "
                          "|a - b| / max(|a|, |b|, 1e-3), the largest over the steps and the losses.", "",
                          "| kind | batch | steps | max relative difference | max absolute difference | "
                          "at step 1 (max relative) |", "|---|---|---|---|---|---|"]
                for kind, v in agree.items():
                    if v.get("error"):
                        lines.append(f"| {kind} | | | failed: {v['error'][:300]} | | |")
                    else:
                        lines.append(f"| {kind} | {v['batch']} | {v['steps']} | {v['max_rel']:.2e} | {v['max_abs']:.2e} "
                                     f"| {v['first_step_max_rel']:.2e} |")
        lines += ["", f"Whole benchmark: {time.perf_counter() - t_start:.0f} s" + ("." if done else " so far (PARTIAL: still running).")]
        body = "\n".join(lines)
        if done:
            print("\n" + body)
        write_section(args.md, "step", body, title=LEVERS_TITLE)
        Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
        Path(args.csv).write_text("\n".join(csv) + "\n")

    results = {}
    for kind in args.kind_list:
        for batch in args.batch_list:
            res = measure(singles, kind, batch, warmup=args.warmup, rounds=args.rounds, per_round=args.per_round,
                          data=data, encoder=encoder)
            eager = res["eager (today)"]["wall_s"]
            good = [res[lv.name]["levers"] for lv in singles[1:]
                    if not res[lv.name]["error"] and eager / res[lv.name]["wall_s"] > 1.02]
            adams = sorted((res[lv.name]["wall_s"], lv.adam) for lv in good if lv.adam != "default")
            adam = adams[0][1] if adams else "default"  # the faster of foreach / fused
            combo = Levers(channels_last=any(lv.channels_last for lv in good), adam=adam,
                           compile=any(lv.compile for lv in good))
            if combo.name not in res:  # a combination of two or more levers (Adam's paths exclude each other)
                res2 = measure([Levers(), combo], kind, batch, warmup=args.warmup, rounds=args.rounds,
                               per_round=args.per_round, data=data, encoder=encoder)
                if not res2[combo.name]["error"]:
                    r = res2[combo.name]
                    r["ratio_override"] = res2["eager (today)"]["wall_s"] / r["wall_s"]
                    r["cpu_ratio_override"] = res2["eager (today)"]["cpu_s"] / r["cpu_s"]
                    r["best"] = True
                    res[combo.name + " (best combination)"] = r
            results[(kind, batch)] = res
            report(False)

    report(True)
    print(f"\nwrote {args.md} (section 'step') and {args.csv}")


if __name__ == "__main__":
    main()
