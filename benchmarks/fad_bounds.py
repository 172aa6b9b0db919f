"""What bounds the embedded FAD: real clips through the generated clips' path, and a stationary baseline.

Per class, against the reference embeddings of the `reference` stage (the held-out clips), with
``--n-per-class`` clips (the `evaluate` stage's 40 by default):

* the training clips' own audio (the floor of the embedding and the sample size);
* the training clips' log-mels through Griffin-Lim (``eval.gl_iters``), the path every generated clip takes;
* a stationary stand-in: each class's mean log-mel spectrum held for 4 s, through Griffin-Lim.

Needs the `data` and `reference` stages. Run: ``python benchmarks/fad_bounds.py [--n-per-class 40]``
"""

from __future__ import annotations

import argparse

import numpy as np

from occ.audio import load_clip
from occ.config import load_params
from occ.datasets import load_feature_cache
from occ.embeddings import get_embedder
from occ.evaluate import load_embeddings
from occ.fad import fad_per_class
from occ.paths import Layout
from occ.vocoder import vocode


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
    rows = {"training clips, audio": {}, f"training clips, log-mel -> Griffin-Lim {params.eval.gl_iters}": {},
            "class-mean log-mel held for 4 s -> Griffin-Lim": {}}
    keys = list(rows)
    for c, name in enumerate(cache.class_names):
        idx = np.flatnonzero(train.labels.numpy() == c)[: args.n_per_class]
        wavs = np.stack([load_clip(f"{cache.root}/{train.files[i]}") for i in idx])
        rows[keys[0]][name] = embedder.embed(wavs)
        gl = vocode(train.mels[idx], method="griffinlim", n_iter=params.eval.gl_iters)
        rows[keys[1]][name] = embedder.embed(np.asarray(gl))
        mean = train.mels[train.labels == c].mean(dim=(0, 2))
        flat = mean[None, :, None].expand(len(idx), -1, train.mels.shape[-1]).contiguous()
        rows[keys[2]][name] = embedder.embed(np.asarray(vocode(flat, method="griffinlim", n_iter=params.eval.gl_iters)))
        print(f"  {name} done", flush=True)
    print(f"\n| clips ({args.n_per_class} per class, {params.eval.embedding}) | mean FAD | per class |")
    print("|---|---|---|")
    for label, emb in rows.items():
        fad = fad_per_class(emb, reference)["fad"]
        per = ", ".join(f"{k} {v:.0f}" for k, v in fad.drop("Average").items())
        print(f"| {label} | {fad['Average']:.1f} | {per} |")


if __name__ == "__main__":
    main()
