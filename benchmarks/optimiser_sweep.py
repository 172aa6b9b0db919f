"""The embedded profile's optimiser choice, rerunnable: train one variant with several optimisers and step counts.

Each setting trains ``--variant`` from the same seed in its own folder under ``--out`` (resumable: a longer
``--steps`` list continues the same run) and evaluates it as the `evaluate` stage does, without the bootstrap
(40 clips per class by default, Griffin-Lim, the embedding of params.yaml, the `reference` stage's embeddings).
The settings, as measured for the README: the paper's Adam (lr 1e-4, betas 0.5 / 0.999), lr 4e-4 with beta1 0.5
and with beta1 0, lr_g 2e-4 / lr_d 4e-4, lr 8e-4, and lr 4e-4 with D augmentation.

Needs the `data` and `reference` stages (and `supcon` for the SupCon variants). A setting costs about 2 minutes
of training per 300 steps and 1.5 minutes of evaluation on a 2-core CPU.

Run: ``python benchmarks/optimiser_sweep.py [--variant o2c] [--steps 300,600,900] [--only b0]``
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from occ import datasets, evaluate, gan_train, supcon_train
from occ.config import SUPCON_KINDS, load_params
from occ.embeddings import get_embedder
from occ.paths import Layout

SETTINGS = {
    "paper": dict(lr_g=1e-4, lr_d=1e-4, beta1=0.5),
    "lr4": dict(lr_g=4e-4, lr_d=4e-4, beta1=0.5),
    "b0": dict(lr_g=4e-4, lr_d=4e-4, beta1=0.0),
    "ttur": dict(lr_g=2e-4, lr_d=4e-4, beta1=0.0),
    "lr8": dict(lr_g=8e-4, lr_d=8e-4, beta1=0.0),
    "augment": dict(lr_g=4e-4, lr_d=4e-4, beta1=0.0, augment=True),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default="o2c")
    ap.add_argument("--steps", default="300", help="comma-separated step counts, evaluated in turn")
    ap.add_argument("--only", default=",".join(SETTINGS), help="comma-separated settings of " + ", ".join(SETTINGS))
    ap.add_argument("--n-per-class", type=int, default=40)
    ap.add_argument("--out", default="runs/optimiser_sweep")
    args = ap.parse_args()
    layout = Layout.find()
    params = load_params(layout.params, variant=args.variant)
    cache = datasets.load_feature_cache(layout.data(params.data.cache))
    train = cache.train()
    reference = evaluate.load_embeddings(layout.reference / "embeddings.npz")
    embedder = get_embedder(params.eval.embedding, weights=params.eval.vggish_weights or None)
    encoder = (supcon_train.load_encoder(layout.supcon_run / "encoder.pt")
               if params.train.loss in SUPCON_KINDS else None)
    print(f"| setting | steps | train s | mean FAD ({args.n_per_class} clips/class) |")
    print("|---|---|---|---|")
    for name in args.only.split(","):
        for steps in (int(s) for s in args.steps.split(",")):
            cfg = dataclasses.replace(params.train, steps=steps, **SETTINGS[name])
            run_dir = Path(args.out) / args.variant / name
            t0 = time.perf_counter()
            gan_train.train_gan(datasets.normalize_mel(train.mels), train.labels, n_classes=len(cache.class_names),
                                model=params.model, train=cfg, out_dir=run_dir, seed=params.seed,
                                encoder=encoder, class_names=cache.class_names, progress=False)
            seconds = time.perf_counter() - t0
            g, _ = gan_train.load_generator(run_dir / "checkpoint.pt")
            r = evaluate.evaluate_generator(g, class_names=cache.class_names, n_per_class=args.n_per_class,
                                            base_seed=params.seed, embedder=embedder, reference=reference,
                                            vocoder=params.eval.vocoder, gl_iters=params.eval.gl_iters)
            print(f"| {name} | {steps} | {seconds:.0f} | {r.fad.loc['Average', 'fad']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
