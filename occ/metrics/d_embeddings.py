"""Generated data in D's embedding space (Figure 2): D's unit-length embeddings, their t-SNE, the within-class distance.

:func:`unit_embeddings` is the one batched pass ``h(D1(x))`` behind :func:`discriminator_embeddings` (the
points of the t-SNE, :func:`tsne_of_generated`) and :func:`within_class_distance` (the number behind it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from occ.data.datasets import normalize_mel
from occ.errors import DataError
from occ.nets.models import load_discriminator, load_generator
from occ.synthesis.generate import eval_seeds, evaluation_mels

__all__ = ["unit_embeddings", "discriminator_embeddings", "tsne_of_generated", "within_class_distance"]


@torch.no_grad()
def unit_embeddings(discriminator: torch.nn.Module, x: torch.Tensor, labels: torch.Tensor, *,
                    device: str | torch.device = "cpu", batch_size: int = 64) -> torch.Tensor:
    """D's unit-length embeddings h(D1(x)) of log-mels, in batches.

    Parameters
    ----------
    discriminator : torch.nn.Module
        Returns an output with an ``embedding`` field (:class:`occ.nets.discriminator.DiscOutput`).
    x : torch.Tensor [shape=(N, 80, 344)]
        Log-mels as D reads them.
    labels : torch.Tensor [shape=(N,)]
        Their classes.
    device : str or torch.device
        Where D runs.
    batch_size : int
        Clips per forward pass.

    Returns
    -------
    torch.Tensor [shape=(N, proj_dim), float32, CPU]
    """
    emb = []
    for i in range(0, len(labels), batch_size):
        out = discriminator(x[i:i + batch_size, None].to(device), labels[i:i + batch_size].to(device))
        emb.append(torch.nn.functional.normalize(out.embedding.float(), dim=1).cpu())
    return torch.cat(emb)


@torch.no_grad()
def discriminator_embeddings(generator: torch.nn.Module, discriminator: torch.nn.Module, *, n_classes: int,
                             per_class: int, base_seed: int, device: str | torch.device = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Unit-length h(D1(G(z, c))) of generated data, `per_class` per class (Figure 2's points)."""
    labels, seeds = eval_seeds(per_class, n_classes, base_seed=base_seed)
    mels = evaluation_mels(generator, labels, seeds, base_seed=base_seed, device=device)
    return unit_embeddings(discriminator, mels, labels, device=device).numpy(), labels.numpy()


def tsne_of_generated(layout, variants: list[str], *, per_class: int, seed: int, train_seed: int | None = None,
                      device: str | torch.device = "cpu") -> pd.DataFrame:
    """2-D t-SNE of D-space embeddings of generated data, one t-SNE per variant (Figure 2).

    `seed` seeds the evaluation latents and the t-SNE; `train_seed` picks which training run of each variant
    (`runs/train/<variant>/seed<k>`; ``None``: the folder without a seed level).
    """
    from sklearn.manifold import TSNE

    frames = []
    for v in variants:
        ckpt = layout.train_run(v, train_seed) / "checkpoint.pt"
        g, payload = load_generator(ckpt, device=device)
        d, _ = load_discriminator(ckpt, device=device)
        emb, labels = discriminator_embeddings(g, d, n_classes=int(payload["n_classes"]), per_class=per_class,
                                               base_seed=seed, device=device)
        xy = TSNE(n_components=2, perplexity=min(30.0, (len(emb) - 1) / 3), init="pca",
                  random_state=seed).fit_transform(emb)
        frames.append(pd.DataFrame({"variant": v, "label": labels, "x": xy[:, 0], "y": xy[:, 1]}))
    return pd.concat(frames, ignore_index=True)


@torch.no_grad()
def within_class_distance(discriminator: torch.nn.Module, mels: torch.Tensor, labels: torch.Tensor, *,
                          device: str | torch.device = "cpu", batch_size: int = 64) -> float:
    """Mean pairwise Euclidean distance between D's unit-length embeddings h(D1(x)) of clips of the same class.

    The number behind Figure 2: without OCC, D maps each class's generated clips to one tight cluster (small
    distance); the paper's claim is that OCC spreads them. `mels` are natural-log mels (as generated), labels
    their classes; the distance is averaged over the pairs of each class, then over the classes.

    The evaluation passes ``GeneratorEval.mels``, G's output mapped to natural-log mels for the vocoder, and they
    are normalised again here: in float32 that round trip is not the identity to the bit (many values move by
    a unit in the last place), so it is kept and the committed distances stay what they are.
    """
    emb = unit_embeddings(discriminator, normalize_mel(mels), labels, device=device, batch_size=batch_size).double()
    lab = torch.as_tensor(labels)
    per_class = []
    for c in torch.unique(lab):
        e = emb[lab == c]
        n = len(e)
        if n < 2:
            continue
        dist = torch.cdist(e, e)
        per_class.append(float(dist.sum() / (n * (n - 1))))
    if not per_class:
        raise DataError("within_class_distance: every class has fewer than 2 clips")
    return float(np.mean(per_class))
