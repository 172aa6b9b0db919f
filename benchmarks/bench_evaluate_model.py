"""End-to-end cost of evaluating one trained generator, the way the `evaluate` stage does it.

Runs ``occ.metrics.evaluate.evaluate_generator`` on a training run's checkpoint with ``--n-per-class`` clips per class
(default 100, the DCASE count): standing statistics, generation, vocoding, the DCASE submission layout
(written and checked), the embedding, per-class FAD against the reference embeddings of the `reference`
stage (with the bootstrap), precision/recall/density/coverage and the encoder's accuracy. The whole call is
timed, with Griffin-Lim (``eval.gl_iters`` iterations). HiFi-GAN is timed on ``--hifigan-clips`` generated
mels and the full-evaluation time with it is the measured Griffin-Lim evaluation plus the measured per-clip
difference of the two vocoders times the clip count (the line says so).

Needs a finished `dvc repro` (or at least the data, supcon, train@<variant> and reference stages).

Run: ``python benchmarks/bench_evaluate_model.py [--variant o2c] [--n-per-class 100] [--hifigan-clips 4]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from occ.metrics import embedding_files, evaluate

from occ.nets import models
from occ.config import load_params
from occ.data.datasets import denormalize_mel
from occ.metrics.embeddings import get_embedder
from occ.synthesis.generate import eval_seeds, generate_mels, standing_stats
from occ.paths import Layout
from occ.synthesis.vocoder import vocode

BUDGET_S = 300.0  # issue target: one trained model, 100 clips per class, Griffin-Lim, under 5 minutes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default="o2c")
    ap.add_argument("--n-per-class", type=int, default=100)
    ap.add_argument("--hifigan-clips", type=int, default=4)
    args = ap.parse_args()

    layout = Layout.find()
    params = load_params(layout.params, variant=args.variant)
    generator, payload = models.load_generator(layout.train_run(args.variant) / "checkpoint.pt")
    names = payload["class_names"]
    encoder = models.load_encoder(layout.supcon_run / "encoder.pt")
    embedder = get_embedder(params.eval.embedding, weights=params.eval.vggish_weights or None, encoder=encoder)
    reference = embedding_files.load_embeddings(layout.reference / "embeddings.npz")
    n = args.n_per_class * len(names)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.2f}, "
          f"variant {args.variant} (step {payload['step']}), {n} clips ({args.n_per_class} x {len(names)}), "
          f"Griffin-Lim {params.eval.gl_iters} it, embedding {params.eval.embedding}, "
          f"{params.eval.n_bootstrap} bootstraps", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = evaluate.evaluate_generator(
            generator, class_names=names, n_per_class=args.n_per_class, base_seed=params.seed, embedder=embedder,
            reference=reference, vocoder="griffinlim", gl_iters=params.eval.gl_iters,
            n_bootstrap=params.eval.n_bootstrap, prdc_k=params.eval.prdc_k, encoder=encoder, wav_dir=tmp,
        )
        total_gl = time.perf_counter() - t0
    print(f"evaluation with Griffin-Lim: {total_gl:.1f} s ({total_gl / 60:.2f} min) = {total_gl / BUDGET_S:.2f} x the "
          f"{BUDGET_S:.0f}-s target; mean FAD {result.fad.loc['Average', 'fad']:.1f}", flush=True)

    k = min(args.hifigan_clips, n)
    labels, seeds = eval_seeds(1, len(names), base_seed=params.seed)
    g = standing_stats(generator, seed=params.seed)
    mels = denormalize_mel(generate_mels(g, labels.repeat(k)[:k], seeds.repeat(k)[:k])).cpu()
    t0 = time.perf_counter()
    vocode(mels, method="griffinlim", n_iter=params.eval.gl_iters)
    gl_per_clip = (time.perf_counter() - t0) / k
    t0 = time.perf_counter()
    vocode(mels, method="hifigan")
    hifi_per_clip = (time.perf_counter() - t0) / k
    total_hifi = total_gl + (hifi_per_clip - gl_per_clip) * n
    print(f"per clip: Griffin-Lim {gl_per_clip:.3f} s, HiFi-GAN {hifi_per_clip:.2f} s (measured on {k} clips)")
    print(f"evaluation with HiFi-GAN (EXTRAPOLATED from the per-clip times): {total_hifi:.0f} s "
          f"({total_hifi / 60:.1f} min)")


if __name__ == "__main__":
    main()
