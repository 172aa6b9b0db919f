"""The data stage as a call (:func:`data_stage`): the dataset (synthesised first when ``data.source`` is
``synthetic``), the log-mel feature cache, ``results/data/dataset.json`` and the class overview figure."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from occ.atomic import write_json
from occ.config import Params
from occ.data import audio, datasets, scan, synth
from occ.device import use_threads
from occ.paths import Layout
from occ.registry import stage_threads
from occ.report import plots_data
from occ.report.display import SavedFigure, save_figure

__all__ = ["DataStage", "data_stage"]

OVERVIEW_CAPTION = ("One row per class, four random clips each: each class has its own time-frequency pattern "
                    "(harmonic stacks, short broadband hits, dense clicks or steady texture), "
                    "the structure a class-conditional generator has to reproduce.")


class DataStage(NamedTuple):
    """What the data stage shows: the dataset scanned, its feature cache, the clips per class and split, the class
    overview figure, and the first two clips of each class (class name -> clips)."""

    dataset: scan.Dataset
    cache: datasets.FeatureCache
    summary: pd.DataFrame
    overview: SavedFigure
    examples: dict[str, list[np.ndarray]]


def data_stage(layout: Layout, params: Params) -> DataStage:
    """The data stage: the call of ``notebooks/01_data.ipynb``.

    Synthesises the embedded dataset at ``data.path`` when ``data.source`` is ``synthetic``, scans it, builds the
    feature cache at ``data.cache`` (held-out split of ``data.heldout_per_class`` per class, seeded by ``seed``), and
    writes ``results/data/dataset.json`` and ``class_overview.png``, on the one thread the stage declares (it has no
    thread section: :data:`occ.registry.STAGES`).
    """
    use_threads(stage_threads(params, "data"))
    out = layout.results("data")
    dataset_root = layout.data(params.data.path)
    if params.data.source == "synthetic":
        synth.synthesize_dataset(dataset_root, clips_per_class=params.data.clips_per_class, seed=params.seed)
    dataset = scan.scan_dataset(dataset_root, layout=params.data.layout)
    cache = datasets.feature_cache(dataset, layout.data(params.data.cache), layout=params.data.layout,
                                   heldout_per_class=params.data.heldout_per_class, split_seed=params.seed)
    heldout = cache.heldout_mask.numpy()
    summary = pd.DataFrame({
        "training clips": pd.Series(cache.labels.numpy()[~heldout]).value_counts().sort_index().values,
        "held-out clips (FAD reference)": pd.Series(cache.labels.numpy()[heldout]).value_counts().sort_index().values,
    }, index=cache.class_names)
    write_json(out / "dataset.json", {
        "source": params.data.source, "layout": params.data.layout, "n_clips": len(cache),
        "n_skipped": len(cache.skipped), "n_silent": len(cache.silent),
        "per_class": {c: {"train": int(r.iloc[0]), "heldout": int(r.iloc[1])} for c, r in summary.iterrows()},
    })
    overview = save_figure(plots_data.plot_class_overview(cache, n_per_class=4, seed=params.seed),
                           out / "class_overview.png", caption=OVERVIEW_CAPTION)
    examples = {name: [audio.load_clip(f) for f in [f for f, y in zip(dataset.files, dataset.labels) if y == c][:2]]
                for c, name in enumerate(dataset.class_names)}
    return DataStage(dataset, cache, summary, overview, examples)
