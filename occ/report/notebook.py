"""The set-up every notebook makes first, in one call: :func:`open_notebook`."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from occ.config import Params, load_params
from occ.paths import Layout
from occ.registry import stage as registered
from occ.report.display import setup_notebook

__all__ = ["Notebook", "open_notebook"]


class Notebook(NamedTuple):
    """A stage's notebook, opened: the project's folders, its parameters and the stage's results folder."""

    layout: Layout
    params: Params
    out: Path


def open_notebook(stage: str, *, profile: str = "", variant: str | None = None, seed: int | None = None) -> Notebook:
    """Set up a stage's notebook: clean output (:func:`occ.report.display.setup_notebook`), the project found from
    the working folder (the root or ``notebooks/``), ``params.yaml`` with ``profile`` (empty: the file's switch) and
    ``variant`` applied, ``seed`` checked, and ``results/<stage>[/<variant>][/seed<k>]`` created.

    Parameters
    ----------
    stage : str
        The stage's name in :data:`occ.registry.STAGES` (its results folder).
    profile, variant, seed :
        The notebook's papermill parameters.
    """
    setup_notebook()
    layout = Layout.find()
    params = load_params(layout.params, variant=variant, profile=profile or None)
    if seed is not None:
        params.check_seed(seed)
    return Notebook(layout, params, layout.results(registered(stage).name, variant, seed))
