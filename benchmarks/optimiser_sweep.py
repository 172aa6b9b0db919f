"""The embedded profile's training settings, rerunnable: train one variant with several settings and step counts.

Each setting trains ``--variant`` from ``--seed`` in its own folder under ``--out`` (resumable: a longer
``--steps`` list continues the same run) and evaluates it as the `evaluate` stage does, without the bootstrap
(40 clips per class by default, Griffin-Lim only, the embedding of params.yaml, the `reference` stage's embeddings).
Besides the mean FAD it prints the mean term ``|mu_g - mu_r|^2`` and ``tr(S_g)`` averaged over the classes
(``fad_terms``). The settings, as measured for the README: the paper's Adam (lr 1e-4, betas 0.5 / 0.999), lr 4e-4
with beta1 0.5 and with beta1 0, lr_g 2e-4 / lr_d 4e-4, lr 8e-4, and on top of lr 4e-4 / beta1 0: D augmentation,
an EMA of G (decay 0.99), D of width 16, batch 8 (run it with twice the steps for the same time), the projection
term in D2, and G's noise input at scale 0.3 (``noise``: the embedded default; the others run without it).

Needs the `data` and `reference` stages (and `supcon` for the SupCon variants). A setting costs about 2 minutes
of training per 300 steps and 1.5 minutes of evaluation on a 2-core CPU.

Run: ``python benchmarks/optimiser_sweep.py [--variant o2c] [--steps 300,600,900] [--only b0]``
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from occ.data import datasets

from occ.metrics import embedding_files

from occ.nets import models

from occ.train import gan_train
from occ.config import SUPCON_KINDS, load_params
from occ.data.datasets import denormalize_mel
from occ.metrics.embeddings import get_embedder
from occ.synthesis.generate import eval_seeds, generate_mels, standing_stats
from occ.paths import Layout
from occ.synthesis.vocoder import vocode

from fad_terms import fad_terms  # benchmarks/fad_terms.py

_B0 = dict(lr_g=4e-4, lr_d=4e-4, beta1=0.0)
_PLAIN = dict(g_noise=0.0)  # G without its noise input, as every setting but "noise" was measured
#: name -> (overrides of `train`, overrides of `model`)
SETTINGS = {
    "paper": (dict(lr_g=1e-4, lr_d=1e-4, beta1=0.5), _PLAIN),
    "lr4": (dict(lr_g=4e-4, lr_d=4e-4, beta1=0.5), _PLAIN),
    "b0": (_B0, _PLAIN),
    "ttur": (dict(lr_g=2e-4, lr_d=4e-4, beta1=0.0), _PLAIN),
    "lr8": (dict(lr_g=8e-4, lr_d=8e-4, beta1=0.0), _PLAIN),
    "augment": (dict(_B0, augment=True), _PLAIN),
    "ema": (dict(_B0, ema_decay=0.99), _PLAIN),
    "d16": (_B0, dict(_PLAIN, d_ch=16)),
    "batch8": (dict(_B0, batch_size=8), _PLAIN),
    "dproj": (_B0, dict(_PLAIN, d_projection=True)),
    "noise": (_B0, dict(g_noise=0.3)),  # the embedded default
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default="o2c")
    ap.add_argument("--steps", default="300", help="comma-separated step counts, evaluated in turn")
    ap.add_argument("--only", default=",".join(SETTINGS), help="comma-separated settings of " + ", ".join(SETTINGS))
    ap.add_argument("--seed", type=int, default=None, help="training seed (default: params.yaml's)")
    ap.add_argument("--n-per-class", type=int, default=40)
    ap.add_argument("--out", default="runs/optimiser_sweep")
    args = ap.parse_args()
    layout = Layout.find()
    params = load_params(layout.params, variant=args.variant)
    cache = datasets.load_feature_cache(layout.data(params.data.cache))
    train = cache.train()
    reference = embedding_files.load_embeddings(layout.reference / "embeddings.npz")
    embedder = get_embedder(params.eval.embedding, weights=params.eval.vggish_weights or None)
    encoder = (models.load_encoder(layout.supcon_run / "encoder.pt")
               if params.train.loss in SUPCON_KINDS else None)
    seed = params.seed if args.seed is None else args.seed
    print(f"| setting | seed | steps | train s | mean FAD ({args.n_per_class} clips/class) | mean term | tr(S_g) |")
    print("|---|---|---|---|---|---|---|")
    for name in args.only.split(","):
        if name not in SETTINGS:
            raise SystemExit(f"--only: unknown setting {name!r}; known: {', '.join(SETTINGS)}")
        train_over, model_over = SETTINGS[name]
        model = dataclasses.replace(params.model, **model_over)
        for steps in (int(s) for s in args.steps.split(",")):
            cfg = dataclasses.replace(params.train, steps=steps, **train_over)
            run_dir = Path(args.out) / args.variant / (name if seed == params.seed else f"{name}-seed{seed}")
            t0 = time.perf_counter()
            gan_train.train_gan(datasets.normalize_mel(train.mels), train.labels, n_classes=len(cache.class_names),
                                model=model, train=cfg, out_dir=run_dir, seed=seed,
                                encoder=encoder, class_names=cache.class_names, progress=False)
            seconds = time.perf_counter() - t0
            g, _ = models.load_generator(run_dir / "checkpoint.pt")
            labels, seeds = eval_seeds(args.n_per_class, len(cache.class_names), base_seed=params.seed)
            g = standing_stats(g, seed=params.seed)
            mels = denormalize_mel(generate_mels(g, labels, seeds))
            wavs = np.asarray(vocode(mels, method="griffinlim", n_iter=params.eval.gl_iters), dtype=np.float32)
            lab = labels.numpy()
            terms = fad_terms({c: embedder.embed(wavs[lab == i]) for i, c in enumerate(cache.class_names)},
                              reference).loc["Average"]
            print(f"| {name} | {seed} | {steps} | {seconds:.0f} | {terms['fad']:.1f} | {terms['mean_term']:.1f} | "
                  f"{terms['trace_gen']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
