"""What bounds the embedded FAD: real clips through the generated clips' path, and a stationary baseline.

Per class, against the reference embeddings of the `reference` stage (the held-out clips), with
``--n-per-class`` clips (the `evaluate` stage's 40 by default):

* the training clips' own audio (the floor of the embedding and the sample size);
* the training clips' log-mels through Griffin-Lim (``eval.gl_iters``), the path every generated clip takes;
* the training clips' log-mels blurred along time (a Gaussian of 1 and of 2 frames), through Griffin-Lim: what
  the missing fine time structure of generated log-mels costs by itself;
* a stationary stand-in: each class's mean log-mel spectrum held for 4 s, through Griffin-Lim;
* a class-blind stand-in: the same clips of every class through Griffin-Lim, pooled (an equal share of each
  class), scored against each class: what a generator that ignores its class input but reproduces the whole
  training set perfectly would score. The hinge-only control is such a generator: its D has no class term and
  it has no contrastive term, so nothing in its losses depends on the class.

Each row prints the mean FAD, its mean term ``|mu_g - mu_r|^2`` and ``tr(S_g)`` (``fad_terms``) and the class FADs.

Needs the `data` and `reference` stages. Run: ``python benchmarks/fad_bounds.py [--n-per-class 40]``
"""

from __future__ import annotations

import argparse

import numpy as np

import torch
import torch.nn.functional as F

from occ.data.audio import load_clip
from occ.config import load_params
from occ.data.datasets import load_feature_cache
from occ.metrics.embeddings import get_embedder
from occ.metrics.embedding_files import load_embeddings
from occ.paths import Layout
from occ.synthesis.vocoder import vocode

from fad_terms import fad_terms  # benchmarks/fad_terms.py

#: Gaussian widths (frames) of the time-blurred rows.
BLURS = (1.0, 2.0)


def blur_time(log_mel: torch.Tensor, sigma: float) -> torch.Tensor:
    """Log-mels [shape=(N, 80, T)] convolved along time with a Gaussian of ``sigma`` frames (edges replicated)."""
    half = int(3 * sigma + 0.5)
    k = torch.exp(-0.5 * (torch.arange(-half, half + 1, dtype=log_mel.dtype) / sigma) ** 2)
    x = F.pad(log_mel.unsqueeze(1), (half, half, 0, 0), mode="replicate")
    return F.conv2d(x, (k / k.sum()).view(1, 1, 1, -1)).squeeze(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-per-class", type=int, default=40)
    args = ap.parse_args()
    layout = Layout.find()
    params = load_params(layout.params)
    cache = load_feature_cache(layout.data(params.data.cache))
    train = cache.train()
    reference = load_embeddings(layout.reference / "embeddings.npz")
    embedder = get_embedder(params.eval.embedding, weights=params.eval.vggish_weights or None)
    gl = f"Griffin-Lim {params.eval.gl_iters}"
    blurred = [f"training clips, log-mel blurred over {s:g} frame(s) -> {gl}" for s in BLURS]
    rows = {"training clips, audio": {}, f"training clips, log-mel -> {gl}": {},
            **{k: {} for k in blurred}, f"class-mean log-mel held for 4 s -> {gl}": {}}
    keys = list(rows)
    pooled = f"training clips of all classes pooled, log-mel -> {gl} (class-blind)"

    def through_gl(log_mels: torch.Tensor) -> np.ndarray:
        return embedder.embed(np.asarray(vocode(log_mels, method="griffinlim", n_iter=params.eval.gl_iters)))

    for c, name in enumerate(cache.class_names):
        idx = np.flatnonzero(train.labels.numpy() == c)[: args.n_per_class]
        wavs = np.stack([load_clip(f"{cache.root}/{train.files[i]}") for i in idx])
        rows[keys[0]][name] = embedder.embed(wavs)
        rows[keys[1]][name] = through_gl(train.mels[idx])
        for key, sigma in zip(blurred, BLURS):
            rows[key][name] = through_gl(blur_time(train.mels[idx], sigma))
        mean = train.mels[train.labels == c].mean(dim=(0, 2))
        rows[keys[-1]][name] = through_gl(mean[None, :, None].expand(len(idx), -1, train.mels.shape[-1]).contiguous())
        print(f"  {name} done", flush=True)
    share = -(-args.n_per_class // len(cache.class_names))  # ceil: an equal share of every class
    mixture = np.concatenate([emb[:share] for emb in rows[keys[1]].values()])
    rows[pooled] = {name: mixture for name in cache.class_names}
    print(f"\n| clips ({args.n_per_class} per class, {params.eval.embedding}) | mean FAD | mean term | tr(S_g) | per class |")
    print("|---|---|---|---|---|")
    for label, emb in rows.items():
        t = fad_terms(emb, reference)
        per = ", ".join(f"{k} {v:.0f}" for k, v in t["fad"].drop("Average").items())
        avg = t.loc["Average"]
        print(f"| {label} | {avg['fad']:.1f} | {avg['mean_term']:.1f} | {avg['trace_gen']:.1f} | {per} |")


if __name__ == "__main__":
    main()
