"""``occ train`` and ``occ supcon``: one pipeline training run from the command line, for ``torchrun``.

::

    torchrun --nproc_per_node 8 -m occ supcon && dvc repro supcon       # the encoder f; the stage keeps it
    torchrun --nproc_per_node 8 -m occ train --variant ocsupcon --seed 0   # a SupCon variant with that encoder
    dvc repro train@ocsupcon-0                                          # the stage finds the finished run
    torchrun --nproc_per_node 8 -m occ train --variant o2c --seed 1 && dvc repro train@o2c-1

Each command trains what the stage's call trains (``occ.stages.supcon.supcon_stage``,
``occ.stages.train.train_stage``), through the same function (``occ.train.supcon_train.supcon_for_stage``,
``occ.train.gan_train.train_for_stage``): the same ``params.yaml`` sections, feature cache, run folder (``runs/supcon``, ``runs/train/<variant>/seed<k>``) and seed. A run trained here is
therefore the run the stage would train.

DVC keeps both run folders when their stage runs (``persist`` in dvc.yaml). ``dvc repro supcon`` after ``occ
supcon`` resumes the finished SupCon pretraining with nothing left to do (``supcon.pt`` is kept), fine-tunes the
classification head again in one process (seconds; on the CPU the same ``encoder.pt``, bit for bit) and records the
stage. ``dvc repro train@<variant>-<seed>`` after ``occ train`` resumes the GAN run with nothing left to do and
writes its notebook, log and figures. A GAN run of a SupCon variant (``csupcongan``, ``ocsupcon``,
``ocsupcon_ct1``) records the digest of the encoder it was trained with: train it after ``dvc repro supcon``. A
changed configuration (``supcon``, ``model``, ``seed``, the training clips; for a GAN run its ``train`` and
variant, and the encoder) starts that run afresh instead, in the stage's one process. Under torchrun the global
batch of ``params.yaml`` is split over the processes (``occ.train.distributed``); in one process (plain ``occ
train``) nothing changes. Interrupted runs resume where their last checkpoint stopped; rank 0 alone writes files
and shows the progress bar.
"""

from __future__ import annotations

import argparse
from typing import Any

from occ.cli.common import add_project_arguments

__all__ = ["add_train_parser", "add_supcon_parser", "cmd_train", "cmd_supcon"]


def add_train_parser(sub: Any, *, common: argparse.ArgumentParser, fmt: type) -> None:
    """Register ``train`` on the ``occ`` command's sub-parsers."""
    t = sub.add_parser(
        "train", parents=[common], formatter_class=fmt, help="train one GAN run of the pipeline (torchrun-ready)",
        description="Train the GAN of one (variant, seed) of params.yaml exactly as the pipeline's stage\n"
                    "train@<variant>-<seed> does, into runs/train/<variant>/seed<k>. Start it with torchrun to\n"
                    "split the global batch over several processes (GPUs: one per process; CPU: gloo). The\n"
                    "stage run afterwards (dvc repro train@<variant>-<seed>; DVC keeps the run folder, persist in\n"
                    "dvc.yaml) finds the finished run and only writes its results. SupCon variants (csupcongan,\n"
                    "ocsupcon, ocsupcon_ct1) read runs/supcon/encoder.pt and record its digest: run `dvc repro\n"
                    "supcon` first (after `occ supcon` under torchrun it keeps that encoder), so the stage finds\n"
                    "the run trained with the encoder DVC records. A changed configuration or encoder starts\n"
                    "the run afresh.",
        epilog="examples:\n"
               "  occ train --variant o2c --seed 0\n"
               "  torchrun --nproc_per_node 4 -m occ train --variant o2c --seed 1 && dvc repro train@o2c-1\n"
               "  torchrun --nproc_per_node 4 -m occ supcon && dvc repro supcon\n"
               "  torchrun --nproc_per_node 4 -m occ train --variant ocsupcon --seed 1 && dvc repro train@ocsupcon-1\n"
               "  CUDA_VISIBLE_DEVICES=4,5,6,7 torchrun --nproc_per_node 4 -m occ train --variant o2c --seed 2")
    t.add_argument("--variant", required=True, metavar="NAME", help="a key of `variants` in params.yaml")
    t.add_argument("--seed", required=True, type=int, metavar="K", help="a training seed, one of `seeds`")
    add_project_arguments(t)
    t.set_defaults(func=cmd_train)


def add_supcon_parser(sub: Any, *, common: argparse.ArgumentParser, fmt: type) -> None:
    """Register ``supcon`` on the ``occ`` command's sub-parsers."""
    s = sub.add_parser(
        "supcon", parents=[common], formatter_class=fmt, help="train the SupCon encoder f of the pipeline",
        description="SupCon pretraining and classifier fine-tuning of the encoder f exactly as the pipeline's\n"
                    "supcon stage does, into runs/supcon. torchrun splits the SupCon batch over processes.\n"
                    "The stage run afterwards (dvc repro supcon; DVC keeps runs/supcon, persist in dvc.yaml)\n"
                    "resumes the finished pretraining with nothing left to do, fine-tunes the classifier head\n"
                    "again in one process (seconds) and records the encoder. Run it before `occ train` of a\n"
                    "SupCon variant (csupcongan, ocsupcon...): a GAN run records the encoder it was trained with.\n"
                    "A changed configuration (supcon, model, seed, training clips) starts f afresh: in the\n"
                    "stage's one process, or here first. See docs/scale-out.md.",
        epilog="examples:\n"
               "  torchrun --nproc_per_node 2 -m occ supcon && dvc repro supcon   # the stage keeps this f\n"
               "  torchrun --nproc_per_node 2 -m occ train --variant ocsupcon --seed 0   # with that encoder\n"
               "  dvc repro train@ocsupcon-0\n"
               "  dvc repro supcon    # without torchrun: the stage trains f in one process")
    add_project_arguments(s)
    s.set_defaults(func=cmd_supcon)


def _project(args: argparse.Namespace, *, variant: str | None = None) -> tuple[Any, Any, Any]:
    """The layout, params and feature cache, as the notebooks load them."""
    from occ.config import load_params
    from occ.data import datasets
    from occ.paths import Layout

    layout = Layout.find(args.project)
    params = load_params(layout.params, variant=variant, profile=args.profile)
    return layout, params, datasets.load_feature_cache(layout.data(params.data.cache))


def cmd_train(args: argparse.Namespace) -> int:
    """``occ train``: the training of the train stage (``train@<variant>-<seed>``) for ``--variant`` and ``--seed``."""
    from occ.train.distributed import world
    from occ.train.gan_train import train_for_stage

    layout, params, cache = _project(args, variant=args.variant)
    run = train_for_stage(layout, params, cache, variant=args.variant, seed=args.seed,
                          progress=None if not args.quiet else False)
    w = world()
    if w.main:
        print(f"occ train: {args.variant} seed {args.seed}: step {run.step} of {run.steps} on {w.size} process(es) "
              f"in {run.seconds / 60:.1f} min -> {run.checkpoint_path}")
    return 0 if run.finished else 1


def cmd_supcon(args: argparse.Namespace) -> int:
    """``occ supcon``: the training of the supcon stage (pretraining, then fine-tuning)."""
    from occ.train.distributed import world
    from occ.train.supcon_train import supcon_for_stage

    layout, params, cache = _project(args)
    pre, fine = supcon_for_stage(layout, params, cache, progress=None if not args.quiet else False)
    w = world()
    if w.main:
        print(f"occ supcon: {pre.step} SupCon steps on {w.size} process(es), fine-tuned head at training accuracy "
              f"{fine.train_accuracy:.3f} -> {fine.checkpoint_path}")
    return 0 if pre.finished else 1
