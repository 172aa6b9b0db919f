"""The pipeline's stages, one registry: name -> the stage's call, its notebook, the ``params.yaml`` section it runs
under and the torch threads it declares, its results folder.

Every DVC stage of ``dvc.yaml`` is one call, ``<stage>_stage(layout, params, **axes)``: it loads its own inputs, sets
its threads, writes every ``results/`` file through :mod:`occ.atomic` and returns what its notebook shows; the
notebook only calls and shows. The calls are named here by their import path (``"occ.stages.train:train_stage"``),
so this module imports nothing: the stages' calls (:func:`stage_threads`), ``occ repro`` (which counts each stage's
threads when it fills the cores: :mod:`occ.pipeline.parallel`), the command line (``occ generate`` and ``occ fad``
run on the evaluation's threads) and the notebooks (:func:`occ.report.notebook.open_notebook`: the results folder)
all read this one table, in ``dvc.yaml``'s order. A test (``tests/test_registry.py``) reads ``dvc.yaml`` and finds
each stage in both, with the same notebook, axes and threads.

The threads are declared, not taken from the machine, because torch's results depend on the thread count
(docs/parallel.md). A stage without a thread section (``data``, ``tables``: light work, no training or embedding)
runs on one thread, the count ``occ repro`` gives it; the data stage's log-mels are the same bytes on one thread and
on two.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["Stage", "STAGES", "stage", "stage_threads"]


@dataclass(frozen=True)
class Stage:
    """One DVC stage.

    Attributes
    ----------
    name : str
        The stage's name in ``dvc.yaml`` (``train`` for every ``train@<variant>-<seed>``), also its results folder
        ``results/<name>``.
    call : str
        ``"module:function"``, the stage's call, ``function(layout, params, **axes)``.
    notebook : str
        The notebook that makes the call and shows what it returns (``notebooks/<notebook>.ipynb``).
    threads_section : str or None
        The ``params.yaml`` section whose ``threads`` the stage runs torch on; None: one thread.
    axes : tuple of str
        The stage's papermill parameters besides ``profile`` (``variant``, ``seed``), its call's keyword arguments.
    """

    name: str
    call: str
    notebook: str
    threads_section: str | None = None
    axes: tuple[str, ...] = ()

    @property
    def results(self) -> str:
        """The stage's results folder, relative to the project root (``results/<name>``)."""
        return f"results/{self.name}"

    def threads(self, params: Any) -> int:
        """The torch threads the stage declares in ``params`` (an ``occ.config.Params``); 1 without a section."""
        return 1 if self.threads_section is None else int(getattr(params, self.threads_section).threads)

    def function(self) -> Callable[..., Any]:
        """The stage's call, imported."""
        module, name = self.call.split(":")
        return getattr(importlib.import_module(module), name)


STAGES: dict[str, Stage] = {s.name: s for s in (
    Stage("data", "occ.stages.data:data_stage", "01_data"),
    Stage("supcon", "occ.stages.supcon:supcon_stage", "02_supcon", "supcon"),
    Stage("reference", "occ.stages.reference:reference_stage", "04_reference", "eval"),
    Stage("step0", "occ.stages.evaluate:step0_stage", "04_step0", "eval", ("seed",)),
    Stage("train", "occ.stages.train:train_stage", "03_train", "train", ("variant", "seed")),
    Stage("evaluate", "occ.stages.evaluate:evaluate_stage", "05_evaluate", "eval", ("variant", "seed")),
    Stage("tables", "occ.stages.tables:tables_stage", "06_tables"),
    Stage("figures", "occ.stages.figures:figures_stage", "07_figures", "eval"),
)}


def stage(name: str) -> Stage:
    """The stage ``name`` (``train``, or as DVC names one item, ``train@o2c-0``)."""
    kind = name.split("@")[0]
    if kind not in STAGES:
        raise KeyError(f"no stage {kind!r}; the stages: {', '.join(STAGES)}")
    return STAGES[kind]


def stage_threads(params: Any, name: str) -> int:
    """The torch threads the stage ``name`` declares in ``params``: what its call sets and ``occ repro`` counts."""
    return stage(name).threads(params)
