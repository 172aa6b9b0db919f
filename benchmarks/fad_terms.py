"""The two parts of each class's FAD, for the benchmarks: how far the means are and how wide the clouds are.

``FAD = |mu_g - mu_r|^2 + tr(S_g) + tr(S_r) - 2 tr((S_g S_r)^(1/2))``. A generator whose clips all share an
artefact pays in the first term (the mean term) whatever its variety; one that collapses pays at most
``tr(S_r)`` in the others.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from occ.metrics.fad import fad_per_class
from occ.metrics.frechet import embedding_stats


def fad_terms(gen_emb: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Per class and ``"Average"``: ``fad`` (as `occ.metrics.fad.fad_per_class`), ``mean_term``, ``trace_gen``, ``trace_ref``."""
    out = fad_per_class(gen_emb, reference)[["fad"]].copy()
    for name, emb in gen_emb.items():
        mu_g, s_g = embedding_stats(emb)
        mu_r, s_r = embedding_stats(reference[name])
        out.loc[name, ["mean_term", "trace_gen", "trace_ref"]] = [
            float(np.sum((mu_g - mu_r) ** 2)), float(np.trace(s_g)), float(np.trace(s_r))]
    out.loc["Average", ["mean_term", "trace_gen", "trace_ref"]] = out.drop(index="Average")[
        ["mean_term", "trace_gen", "trace_ref"]].mean()
    return out
