"""Figures of the training data: a class overview grid of log-mel spectrograms.

Figures are built with :class:`matplotlib.figure.Figure` and the Agg canvas directly (no pyplot
state), so they work headless and in notebooks alike.
"""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from occ.data.audio import HOP, LOG_FLOOR, SR
from occ.data.datasets import LOG_MEL_MAX, FeatureCache

__all__ = ["plot_class_overview"]


def plot_class_overview(cache: FeatureCache, *, n_per_class: int = 4, seed: int = 0,
                        cell_size: tuple[float, float] = (1.8, 1.1)) -> Figure:
    """Grid of log-mel spectrograms: one row per class, ``n_per_class`` random clips per row.

    Sized to be read at its own size on a laptop screen (about 960 px wide at 100 dpi for 4 clips):
    class names horizontal at the left, 9-10 pt text, no per-panel titles.

    Parameters
    ----------
    cache : FeatureCache
        Features to show (all clips, training and held-out).
    n_per_class : int
        Clips per class (fewer where a class has fewer clips).
    seed : int
        Seed of the clip choice.
    cell_size : (float, float)
        Width and height of one panel in inches.

    Returns
    -------
    matplotlib.figure.Figure
        Rows labelled with the class names; x axis time in s, y axis mel bin; one shared colour bar
        in ln(mel energy), from ln(1e-5) to the normalisation ceiling.
    """
    rng = np.random.default_rng(seed)
    labels = cache.labels.numpy()
    n_classes = len(cache.class_names)
    fig = Figure(figsize=(cell_size[0] * n_per_class + 2.4, cell_size[1] * n_classes + 0.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_classes, n_per_class, squeeze=False, sharex=True, sharey=True)
    vmin, vmax = float(np.log(LOG_FLOOR)), LOG_MEL_MAX
    image = None
    for c, name in enumerate(cache.class_names):
        idx = np.flatnonzero(labels == c)
        chosen = np.sort(rng.choice(idx, size=min(n_per_class, idx.shape[0]), replace=False)) if idx.size else []
        for j in range(n_per_class):
            ax = axes[c, j]
            if j < len(chosen):
                m = cache.mels[chosen[j]].numpy()
                duration = m.shape[-1] * HOP / SR
                image = ax.imshow(m, origin="lower", aspect="auto", cmap="magma", vmin=vmin, vmax=vmax,
                                  extent=(0.0, duration, -0.5, m.shape[0] - 0.5), interpolation="nearest")
            else:
                ax.set_axis_off()
            if j == 0:
                ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=10, fontweight="bold", labelpad=10)
            if c == n_classes - 1:
                ax.set_xlabel("time (s)", fontsize=9)
            ax.tick_params(labelsize=8)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.5, label="ln mel energy")
    fig.suptitle("Log-mel spectrograms (y: mel bin, x: time), random clips per class", fontsize=11)
    return fig
