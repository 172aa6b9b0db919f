"""Where an evaluation's time goes, and what batching and sharing would save.

Profiles today's ``occ.metrics.evaluate.evaluate_generator`` at the embedded settings of params.yaml
(``eval.clips_per_class`` x 7 clips, Griffin-Lim ``eval.gl_iters`` iterations, aiSFX, ``eval.n_bootstrap``, PRDC, the
encoder's accuracy, the probe) by running its body phase by phase with timers (and checking that this replica gives
the same FAD table as one call of ``evaluate_generator`` itself, which is timed too), plus what the evaluate stage's
process pays around it: imports, loading aiSFX and the encoder, the vocoder's pseudo-inverse, D's within-class
distance.

Stand-ins where no ``dvc repro`` has run: G is the seed-0 untrained embedded generator (``initial_generator``; a
trained run of the same architecture costs the same), the encoder is untrained, the reference embeddings and the
probe's training embeddings are Gaussian (same shapes: ``data.heldout_per_class`` x 3 x 512 per class). With
``--run DIR`` (a training run folder) and a finished reference stage, the real ones are used.

Candidate savings, each timed against today's path in the same invocation, with whether the numbers stay the same:

* Griffin-Lim batch size (today: 16) on ``--subset`` clips; Griffin-Lim with fewer / more iterations (report only:
  changes the numbers);
* aiSFX batching (today: one call per class, batch 32): one batch per class, all clips in one call at larger
  batches;
* FAD against precomputed reference statistics ``(mu, sigma)`` (computable once per pipeline) instead of raw
  reference embeddings; PRDC's reference k-NN radii (the same for every run);
* per-process costs (imports, model loads, the pseudo-inverse) paid once per pipeline instead of once per stage.

Run: ``.venv/bin/python benchmarks/bench_eval_profile.py --threads 2 --subset 64``
Writes the section ``eval`` of ``benchmarks/results/levers.md`` and ``benchmarks/results/eval_profile.csv``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from lever_common import LEVERS_MD, LEVERS_TITLE, RESULTS, load_embedded_params, machine_line, write_section  # noqa: E402

IMPORTS = ("import occ.metrics.evaluate, occ.metrics.embeddings, occ.metrics.d_embeddings, occ.metrics.probe, "
           "occ.nets.models, occ.report.plots, occ.report.display, occ.synthesis.generate, pandas")


class Timer:
    def __init__(self) -> None:
        self.rows: list[tuple[str, float]] = []

    def __call__(self, name: str, fn, *a, **k):
        t0 = time.perf_counter()
        out = fn(*a, **k)
        self.rows.append((name, time.perf_counter() - t0))
        print(f"  {name}: {self.rows[-1][1]:.2f} s", flush=True)
        return out


def best_of(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _padded(n: int, batch: int) -> int:
    """Clips the vocoder computes for ``n`` clips at ``batch`` (the last batch is padded to full size)."""
    return -(-n // batch) * batch


def import_seconds(threads: int) -> float:
    code = (f"import time; t=time.perf_counter(); import torch; torch.set_num_threads({threads}); {IMPORTS}; "
            "print(time.perf_counter()-t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                         cwd=Path(__file__).resolve().parents[1])
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="torch threads (today's stages: every core)")
    ap.add_argument("--n-per-class", type=int, default=None, help="default: eval.clips_per_class")
    ap.add_argument("--subset", type=int, default=64, help="clips of the Griffin-Lim / aiSFX batching comparisons")
    ap.add_argument("--repeats", type=int, default=1, help="repeats of the FAD candidates (fastest counts)")
    ap.add_argument("--aisfx-classes", type=int, default=2, help="classes of the aiSFX batching comparisons")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds of the Griffin-Lim / aiSFX candidates")
    ap.add_argument("--skip-reference-call", action="store_true",
                    help="do not time evaluate_generator itself (saves one evaluation)")
    ap.add_argument("--run", default=None, help="a training run folder (checkpoint.pt) instead of the untrained G")
    ap.add_argument("--md", default=str(LEVERS_MD))
    ap.add_argument("--csv", default=str(RESULTS / "eval_profile.csv"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    header = machine_line(args.threads)
    print(header, flush=True)

    from occ.data.classes import DCASE_CLASSES
    from occ.data.datasets import denormalize_mel
    from occ.metrics import d_embeddings
    from occ.metrics.aisfx import load_aisfx
    from occ.metrics.diversity import clip_embeddings, knn_radii, prdc_per_class
    from occ.metrics.embeddings import AisfxEmbedder
    from occ.metrics.evaluate import evaluate_generator
    from occ.metrics.fad import fad_per_class
    from occ.metrics.probe import encoder_accuracy, fit_probe
    from occ.nets import models
    from occ.synthesis import vocoder as voc
    from occ.synthesis.generate import eval_seeds, generate_mels, standing_stats
    from occ.synthesis.submission import check_submission, write_submission

    params = load_embedded_params()
    ev = params.eval
    n_per = args.n_per_class or ev.clips_per_class
    names = list(DCASE_CLASSES)
    base_seed = params.seed
    rng = np.random.default_rng(0)
    if args.run:
        generator, payload = models.load_generator(Path(args.run) / "checkpoint.pt")
        discriminator, _ = models.load_discriminator(Path(args.run) / "checkpoint.pt")
        names = payload["class_names"]
        what = f"trained run {args.run} (step {payload['step']})"
    else:
        generator = models.initial_generator(params.model, n_classes=len(names), seed=0)
        discriminator = models.build_discriminator(params.model, n_classes=len(names))
        what = "untrained seed-0 embedded G (stand-in)"
    torch.manual_seed(0)
    encoder = models.build_encoder(params.model, n_classes=len(names)).eval()
    reference = {c: rng.normal(size=(params.data.heldout_per_class, 3, 512)).astype(np.float32) for c in names}
    probe = fit_probe({c: rng.normal(size=(max(ev.probe_clips_per_class, 10), 3, 512)).astype(np.float32)
                       for c in names})
    enc_file = Path(tempfile.mkdtemp(prefix="occ-evalprof-")) / "encoder.pt"
    torch.save(encoder.state_dict(), enc_file)

    # ------------------------------------------------------------------------- per-process (stage) costs
    print("per-process costs:", flush=True)
    fixed = Timer()
    fixed("imports (fresh process)", lambda: None)
    fixed.rows[-1] = ("imports of the evaluate notebook (fresh process)", import_seconds(args.threads))
    model = fixed("aiSFX: load the network from the cached wheel", load_aisfx)
    fixed("encoder: load weights", lambda: encoder.load_state_dict(torch.load(enc_file, weights_only=True)))
    voc._PINV.clear()
    fixed("vocoder: mel pseudo-inverse", lambda: voc.mel_to_linear(torch.zeros(1, 80, 2)))
    embedder = AisfxEmbedder(model=model)

    # ------------------------------------------------------------------------- today's phases
    print(f"today's evaluate_generator, phase by phase ({n_per} x {len(names)} clips):", flush=True)
    tm = Timer()
    labels, seeds = tm("eval_seeds", eval_seeds, n_per, len(names), base_seed=base_seed)
    g = tm("standing statistics of G (16 x 64 samples)", standing_stats, generator, seed=base_seed)
    mels_n = tm("generation (G forward, batch 64)", generate_mels, g, labels, seeds)
    mels = denormalize_mel(mels_n).cpu()
    wavs_t = tm(f"Griffin-Lim {ev.gl_iters} it (batch 16)", voc.vocode, mels, method="griffinlim",
                n_iter=ev.gl_iters)
    wavs = np.asarray(wavs_t.cpu(), dtype=np.float32)
    lab = labels.numpy()
    by_class = {name: wavs[lab == c] for c, name in enumerate(names)}
    wav_dir = tempfile.mkdtemp(prefix="occ-evalprof-wavs-")
    tm("write the submission WAVs", write_submission, wav_dir, by_class, n_per_class=n_per)
    tm("check the submission", check_submission, wav_dir, n_per_class=n_per, classes=names)
    emb = tm("aiSFX embedding (per class, batch 32)", lambda: {n: embedder.embed(w) for n, w in by_class.items()})
    fad = tm(f"FAD per class ({ev.n_bootstrap} bootstrap)", fad_per_class, emb, reference,
             n_bootstrap=ev.n_bootstrap, seed=base_seed)
    prdc = tm(f"precision/recall/density/coverage (k {ev.prdc_k})", prdc_per_class, reference, emb, k=ev.prdc_k)
    acc = tm("encoder accuracy on the clips", encoder_accuracy, encoder, wavs, labels)
    tm("probe accuracy", probe.accuracy, emb)
    inside = sum(s for _, s in tm.rows)
    t0 = time.perf_counter()
    standing_stats(generator, seed=base_seed)
    standing_again = time.perf_counter() - t0
    print(f"  standing statistics again (second call in this process): {standing_again:.2f} s", flush=True)
    notebook = Timer()
    notebook("D's within-class distance (notebook, outside evaluate_generator)", d_embeddings.within_class_distance,
             discriminator, mels, labels)
    notebook("step-0 check: same_weights(initial_generator(seed))", lambda: models.initial_generator(
        params.model, n_classes=len(names), seed=0))

    ref_call = None
    if not args.skip_reference_call:
        print("evaluate_generator itself (today):", flush=True)
        t0 = time.perf_counter()
        res = evaluate_generator(generator, class_names=names, n_per_class=n_per, base_seed=base_seed,
                                 embedder=embedder, reference=reference, vocoder=ev.vocoder, gl_iters=ev.gl_iters,
                                 n_bootstrap=ev.n_bootstrap, prdc_k=ev.prdc_k, encoder=encoder,
                                 wav_dir=tempfile.mkdtemp(prefix="occ-evalprof-wavs2-"), probe=probe)
        ref_call = time.perf_counter() - t0
        same = (np.array_equal(res.fad["fad"].to_numpy(), fad["fad"].to_numpy()) and res.accuracy == acc
                and np.array_equal(res.prdc.to_numpy(), prdc.to_numpy()))
        print(f"  {ref_call:.1f} s; replica's numbers identical: {same}", flush=True)

    # ------------------------------------------------------------------------- candidates
    print("candidates:", flush=True)
    cands: list[dict] = []
    k = min(args.subset, len(mels))
    sub = mels[:k]

    def gl(batch, iters=ev.gl_iters):
        return lambda: voc.vocode(sub, method="griffinlim", n_iter=iters, batch_size=batch)

    cand_classes = dict(list(by_class.items())[:args.aisfx_classes])  # the aiSFX comparisons' clips
    cand_wavs = np.concatenate(list(cand_classes.values()))

    def aisfx_per_class(batch):
        return lambda: np.concatenate([AisfxEmbedder(model=model, batch_size=batch).embed(w)
                                       for w in cand_classes.values()])

    def aisfx_one_call(batch):
        return lambda: AisfxEmbedder(model=model, batch_size=batch).embed(cand_wavs)

    gl_phase = dict(tm.rows)[f"Griffin-Lim {ev.gl_iters} it (batch 16)"]
    emb_phase = dict(tm.rows)["aiSFX embedding (per class, batch 32)"]
    groups = {  # phase -> (today's path, {candidate: (fn, changes the numbers?)})
        "griffinlim": (gl(16), {f"Griffin-Lim batch {b} (today 16, on {k} clips)": (gl(b), False)
                                for b in sorted({4, 8, 32, k} - {16})}
                       | {f"Griffin-Lim {it} iterations (today {ev.gl_iters}, on {k} clips)": (gl(16, it), True)
                          for it in (8, 32)}),
        "aisfx": (aisfx_per_class(32), {
            f"aiSFX one batch per class (batch {n_per}; today: per class, batch 32)": (aisfx_per_class(n_per), False),
            "aiSFX all clips in one call, batch 16 (today: per class, batch 32)": (aisfx_one_call(16), False),
            "aiSFX all clips in one call, batch 64 (today: per class, batch 32)": (aisfx_one_call(64), False),
            "aiSFX all clips in one call, batch 80 (today: per class, batch 32)": (aisfx_one_call(80), False),
        }),
    }
    phase_s = {"griffinlim": gl_phase, "aisfx": emb_phase}
    gl_batch = {c: (int(c.split("batch ")[1].split(" ")[0]) if "batch" in c else 16) for c in groups["griffinlim"][1]}
    for phase, (base_fn, cand_fns) in groups.items():
        times = {"today": [], **{c: [] for c in cand_fns}}
        outs = {}
        for _ in range(args.rounds):  # interleaved: today's path is re-measured in every round
            for name, fn in [("today", base_fn)] + [(c, f) for c, (f, _) in cand_fns.items()]:
                t0 = time.perf_counter()
                outs[name] = fn()
                times[name].append(time.perf_counter() - t0)
        base = min(times["today"])
        for c, (_, changes) in cand_fns.items():
            a, b = outs["today"], outs[c]
            diff = float(np.abs(np.asarray(a) - np.asarray(b)).max())
            unit = "sample" if phase == "griffinlim" else "embedding"
            cand = {"change": c, "phase": phase, "base": base, "new": min(times[c]),
                    "identical": diff == 0.0 and not changes, "diff": f"max abs {unit} diff {diff:.1e}",
                    "phase_s": phase_s[phase]}
            if phase == "griffinlim":  # the vocoder pads the last batch: scale per clip to the evaluation's padding
                b = gl_batch[c]
                n_all = len(mels)
                cand["scale"] = (min(times[c]) / _padded(k, b) * _padded(n_all, b)) / (base / _padded(k, 16)
                                                                                    * _padded(n_all, 16))
            cands.append(cand)
            print(f"  {c}: {min(times[c]):.2f} s vs today {base:.2f} s, diff {diff:.1e}", flush=True)

    # FAD against precomputed reference statistics (once per pipeline)
    def ref_stats():
        out = {}
        for c, r in reference.items():
            x = np.asarray(r, np.float64).reshape(-1, r.shape[-1])
            out[c] = (x.mean(axis=0), np.cov(x, rowvar=False))
        return out

    t_stats, stats = best_of(ref_stats, 1)
    fad_phase = dict(tm.rows)[f"FAD per class ({ev.n_bootstrap} bootstrap)"]
    t_fad_stats, fad2 = best_of(lambda: fad_per_class(emb, stats, n_bootstrap=ev.n_bootstrap, seed=base_seed),
                                args.repeats)
    t_fad_raw, _ = best_of(lambda: fad_per_class(emb, reference, n_bootstrap=ev.n_bootstrap, seed=base_seed),
                           args.repeats)
    dfad = float(np.abs(fad2["fad"].to_numpy() - fad["fad"].to_numpy()).max())
    cands.append({"change": f"FAD against reference (mu, sigma) computed once per pipeline ({t_stats:.2f} s once)",
                  "phase": "fad", "base": t_fad_raw, "new": t_fad_stats, "identical": dfad == 0.0,
                  "diff": f"max abs FAD diff {dfad:.1e}", "phase_s": fad_phase})
    print(f"  FAD with ref stats: {t_fad_stats:.2f} s vs {t_fad_raw:.2f} s, diff {dfad:.1e}", flush=True)
    prdc_phase = dict(tm.rows)[f"precision/recall/density/coverage (k {ev.prdc_k})"]
    t_radii, _ = best_of(lambda: [knn_radii(clip_embeddings(r), k=ev.prdc_k) for r in reference.values()],
                         args.repeats)
    cands.append({"change": "PRDC: reference k-NN radii once per pipeline", "phase": "prdc", "base": prdc_phase,
                  "new": max(prdc_phase - t_radii, 0.0), "identical": True,
                  "diff": f"the same radii (measured share {t_radii:.3f} s)", "phase_s": prdc_phase})

    fixed_total = sum(s for _, s in fixed.rows)
    nb_total = sum(s for _, s in notebook.rows)
    today_total = inside + fixed_total + nb_total

    # ------------------------------------------------------------------------- tables
    lines = ["### Evaluation of one run: per-phase seconds and candidate savings", "",
             f"Command: `.venv/bin/python benchmarks/bench_eval_profile.py --threads {args.threads} --subset "
             f"{args.subset} --rounds {args.rounds} --aisfx-classes {args.aisfx_classes}"
             + (" --skip-reference-call" if args.skip_reference_call else "") + "`", "", header, "",
             f"Generator: {what}; {n_per} x {len(names)} clips, Griffin-Lim {ev.gl_iters} it, aiSFX, "
             f"{ev.n_bootstrap} bootstrap, k {ev.prdc_k}; reference and probe embeddings: "
             f"{'Gaussian stand-ins' if not args.run else 'stand-ins'} of the real shapes.", "",
             "| phase | seconds | share of the stage's work |", "|---|---|---|"]
    csv = ["section,name,seconds,base_s,new_s,phase_ratio,evaluation_ratio,identical,detail"]
    for group, timer in (("evaluate_generator", tm), ("notebook", notebook), ("process", fixed)):
        for name, s in timer.rows:
            lines.append(f"| {group}: {name} | {s:.2f} | {s / today_total:.0%} |")
            csv.append(f"phase,\"{group}: {name}\",{s:.4f},,,,,,")
    lines.append(f"| **evaluate_generator, sum of phases** | **{inside:.1f}** | {inside / today_total:.0%} |")
    if ref_call is not None:
        lines.append(f"| evaluate_generator itself, one call (same numbers as the replica: {same}) | {ref_call:.1f} | |")
    lines.append(f"| **stage work: phases + notebook + per-process costs** | **{today_total:.1f}** | 100% |")
    lines += ["", f"Standing statistics called a second time in the same process: {standing_again:.2f} s (the "
              "first call of G in a process also pays one-time kernel set-up)."]
    lines += ["", "Candidate savings, each interleaved with today's path in every round (fastest round counts). Phase "
              f"ratio = today's / the candidate's seconds on the same clips; Griffin-Lim on {k} clips, per clip "
              f"computed (the vocoder pads the last batch) and scaled to the {len(mels)} clips' padding; aiSFX on the "
              f"clips of {args.aisfx_classes} classes; evaluation ratio = what the stage work above would become with the phase scaled by "
              "that ratio.", "",
              "| change | today s | candidate s | phase ratio | evaluation ratio | numbers identical? |",
              "|---|---|---|---|---|---|"]
    for c in cands:
        ratio = 1 / c["scale"] if "scale" in c else (c["base"] / c["new"] if c["new"] > 0 else float("inf"))
        saved = c["phase_s"] * (1 - 1 / ratio) if np.isfinite(ratio) else c["phase_s"]
        eratio = today_total / (today_total - saved)
        c["eratio"], c["saved"] = eratio, saved
        lines.append(f"| {c['change']} | {c['base']:.2f} | {c['new']:.2f} | {ratio:.2f}x | {eratio:.3f}x | "
                     f"{'yes' if c['identical'] else 'no'} ({c['diff']}) |")
        csv.append(f"candidate,\"{c['change']}\",,{c['base']:.4f},{c['new']:.4f},{ratio:.4f},{eratio:.4f},"
                   f"{c['identical']},\"{c['diff']}\"")
    lines.append(f"| per-process costs once per pipeline (one process evaluates every run) | {fixed_total:.2f} | "
                 f"0 | - | {today_total / (today_total - fixed_total):.3f}x | yes (the same computations) |")
    csv.append(f"candidate,per-process costs once per pipeline,,{fixed_total:.4f},0,,"
               f"{today_total / (today_total - fixed_total):.4f},True,")
    # best identical combination: the best identical candidate of each phase, plus the per-process costs
    best: dict[str, dict] = {}
    for c in cands:
        if c["identical"] and c["saved"] > 0 and c["saved"] > best.get(c["phase"], {"saved": 0})["saved"]:
            best[c["phase"]] = c
    saved = sum(c["saved"] for c in best.values()) + fixed_total
    lines += ["", f"All identical-number savings together (best of each phase + per-process costs once): "
              f"{today_total:.1f} s -> {today_total - saved:.1f} s per evaluation = "
              f"**{today_total / (today_total - saved):.2f}x** (sum of the measured savings; "
              f"{', '.join(c['change'] for c in best.values()) or 'no phase candidate'})."]
    gl8 = next((c for c in cands if c["change"].startswith("Griffin-Lim 8 iterations")), None)
    if gl8:
        s8 = saved + gl8["saved"]
        lines.append(f"With Griffin-Lim 8 iterations on top (changes the numbers): {today_total - s8:.1f} s = "
                     f"{today_total / (today_total - s8):.2f}x.")
    lines += ["", f"Whole benchmark: {time.perf_counter() - t_start:.0f} s."]
    body = "\n".join(lines)
    print("\n" + body)
    write_section(args.md, "eval", body, title=LEVERS_TITLE)
    Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
    Path(args.csv).write_text("\n".join(csv) + "\n")
    print(f"\nwrote {args.md} (section 'eval') and {args.csv}")


if __name__ == "__main__":
    main()
