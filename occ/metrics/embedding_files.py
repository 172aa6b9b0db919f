"""Per-class embeddings on disk: one npz file, written atomically, class order kept.

The reference stage saves the held-out clips' embeddings here (``runs/reference/embeddings.npz``); the
evaluation stages read them back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from occ.atomic import atomic_open
from occ.errors import DataError

__all__ = ["save_embeddings", "load_embeddings"]


def save_embeddings(path: str | Path, emb: dict[str, np.ndarray]) -> None:
    """Save per-class embeddings (npz, atomically); class order is kept."""
    with atomic_open(path) as fh:
        np.savez(fh, __classes__=np.array(list(emb)), **{f"c{i}": v for i, v in enumerate(emb.values())})


def load_embeddings(path: str | Path) -> dict[str, np.ndarray]:
    """Inverse of `save_embeddings`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no reference embeddings; run the `reference` stage (notebooks/04_reference.ipynb) first.")
    with np.load(path) as z:
        return {str(name): z[f"c{i}"] for i, name in enumerate(z["__classes__"])}
