"""Training of the source encoder f: SupCon pretraining, then classification fine-tuning.

Chung, Lee & Jung (DCASE 2023), Sec. 2.2 (docs/reference.md, sections 1 and 7): ``f`` is a ResNet18 trained
with the supervised contrastive loss of Khosla et al. (2020) on two augmented views of each clip
(fade in/out + time masking, ``occ.nets.encoder.augment``), then fine-tuned for classification, and kept
frozen while the GAN trains.

* :func:`pretrain_supcon`: Adam on ``supcon_loss`` of the normalised projections ``embed(view)`` of
  two views per clip, ``base_temperature = temperature`` (the loss is not rescaled). Batches are
  drawn uniformly at random from the clips; batch indices and augmentation parameters come from one
  seeded CPU ``torch.Generator`` saved in the checkpoint, so resume is exact (as in
  ``occ.train.gan_train``). Files: ``supcon.pt`` (checkpoint, kind "encoder") and ``supcon_log.csv``
  (``step, loss, seconds``).
* :func:`finetune_classifier`: cross-entropy on the classification head only, over the frozen
  backbone's features, as in SupCon's linear-evaluation stage. Choosing the head keeps the backbone
  and the SupCon projection head exactly as pretrained, so ``embed`` (the ``f(x_i)`` of the
  C-SupCon / OC-SupCon losses) is the SupCon embedding. The features are computed once (eval mode,
  un-augmented clips), which makes the stage cheap. Files: ``encoder.pt`` (kind "encoder", stage
  "finetuned": the encoder the train stage loads) and ``finetune_log.csv`` (``step, loss, accuracy,
  seconds``).
* :func:`supcon_for_stage`: the supcon stage's calls of both (the ones ``occ.stages.supcon.supcon_stage`` and
  ``occ supcon`` make).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from occ.checkpoint import check_config
from occ.config import ModelConfig, Params, SupConConfig, to_dict
from occ.data.checks import data_digest
from occ.data.datasets import FeatureCache, normalize_mel
from occ.device import use_threads
from occ.errors import CheckpointError
from occ.guard import encoder_weight_bound, supcon_loss_bound
from occ.nets.encoder import Encoder, apply_augment, draw_augment_params, encode_mels
from occ.nets.models import build_encoder
from occ.paths import Layout
from occ.registry import stage_threads
from occ.seeding import derived_seed, make_generator, seed_everything
from occ.train.distributed import gather, sync_batchnorm, wrap
from occ.train.losses import supcon_loss
from occ.train.run_folder import Expect, checkpoint_payload, open_run, restore_run
from occ.train.step_loop import StepLoop

__all__ = [
    "SUPCON_LOG_COLUMNS",
    "FINETUNE_LOG_COLUMNS",
    "SUPCON_MAY_DIFFER",
    "EncoderRun",
    "pretrain_supcon",
    "finetune_classifier",
    "supcon_for_stage",
]

SUPCON_LOG_COLUMNS = ("step", "loss", "seconds")
FINETUNE_LOG_COLUMNS = ("step", "loss", "accuracy", "seconds")
#: SupCon keys that may change when resuming pretraining (or that only concern fine-tuning).
SUPCON_MAY_DIFFER = ("steps", "ckpt_every", "finetune_steps", "finetune_lr")

SUPCON_NAME = "supcon.pt"
ENCODER_NAME = "encoder.pt"
SUPCON_LOG_NAME = "supcon_log.csv"
FINETUNE_LOG_NAME = "finetune_log.csv"


@dataclass
class EncoderRun:
    """Outcome of :func:`pretrain_supcon` or :func:`finetune_classifier`.

    Attributes
    ----------
    out_dir : Path
        The stage folder.
    checkpoint_path : Path
        ``supcon.pt`` (pretraining) or ``encoder.pt`` (fine-tuning).
    log_path : Path
        ``supcon_log.csv`` or ``finetune_log.csv``.
    step, steps : int
        Steps done and requested.
    finished : bool
        All steps done and the final file written.
    resumed_from : int or None
        Checkpoint step a pretraining run resumed from.
    seconds : float
        Wall time of the steps run in this call, s.
    encoder : Encoder
        The encoder (eval mode).
    train_accuracy : float or None
        Fine-tuning only: accuracy of the classification head on the training clips.
    """

    out_dir: Path
    checkpoint_path: Path
    log_path: Path
    step: int
    steps: int
    finished: bool
    resumed_from: int | None
    seconds: float
    encoder: Encoder
    train_accuracy: float | None = None

    def log(self):
        """The stage's log as a ``pandas.DataFrame``."""
        import pandas as pd

        return pd.read_csv(self.log_path)


def pretrain_supcon(
    mels: torch.Tensor,
    labels: torch.Tensor,
    *,
    n_classes: int,
    model: ModelConfig,
    cfg: SupConConfig,
    out_dir: str | Path,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool | None = None,
    stop_after: int | None = None,
    on_config_change: str = "error",
) -> EncoderRun:
    """SupCon pretraining of the encoder (two augmented views per clip), resumable.

    Parameters
    ----------
    mels : torch.Tensor [shape=(N, 80, 344), dtype=float32]
        Normalised log-mels of the training clips, in [-1, 1].
    labels : torch.Tensor [shape=(N,), dtype=int64]
        Classes, in ``[0, n_classes)``.
    n_classes : int
        Number of classes.
    model : ModelConfig
        Architecture (``enc_width``, ``proj_dim``).
    cfg : SupConConfig
        ``steps``, ``batch_size``, ``lr``, ``temperature``, ``ckpt_every``.
    out_dir : str or Path
        Stage folder; if it holds ``supcon.pt``, pretraining resumes from it.
    seed : int
        Seeds initialisation, batch sampling and augmentation.
    device : {"auto", "cpu", "cuda"} or torch.device
        Where to train.
    progress : bool, optional
        Progress bar; default: when stderr is a terminal.
    stop_after : int, optional
        Stop, as if killed, after this many steps of this call (for testing resume).
    on_config_change : {"error", "restart"}
        What to do when ``supcon.pt`` was written with another configuration, seed or data: raise
        :class:`~occ.errors.ConfigChangedError`, or empty the folder and train afresh (as ``occ.train.gan_train.train_gan``).

    Returns
    -------
    EncoderRun

    Raises
    ------
    CheckpointError
        ``supcon.pt`` is corrupt or from another architecture, configuration, seed or data, or
        ``supcon_log.csv`` does not hold the steps up to it.
    RunLockedError
        Another process is training in ``out_dir``.
    TrainingInterrupted
        Ctrl-C: the last checkpoint is kept and a rerun resumes from it.
    TrainingDivergedError
        The loss became NaN or infinite (``supcon.pt`` keeps the last good state).
    """
    with open_run(out_dir, who="pretrain_supcon", device=device, progress=progress, checkpoint=SUPCON_NAME,
                  log=SUPCON_LOG_NAME, columns=SUPCON_LOG_COLUMNS, on_config_change=on_config_change) as run:
        mels, labels = run.check_inputs(mels, labels, n_classes=n_classes, configs=(model, cfg))
        w, dev, ckpt_path = run.w, run.device, run.checkpoint
        w.local_batch(cfg.batch_size, name="supcon.batch_size")
        # what the run is (seed, data), checked against the folder's checkpoint
        run_info = {"seed": int(seed), "n_clips": int(mels.shape[0]), "data_digest": data_digest(mels, labels)}
        payload = run.load_checkpoint(  # validate before building anything
            kind="encoder", model=model, n_classes=n_classes, folder="stage folder", missing_ok=True,
            checks=[Expect("train", to_dict(cfg), "SupCon configuration (supcon)", SUPCON_MAY_DIFFER),
                    Expect("run", run_info, "run (seed, training data)")],
        )
        seed_everything(seed)
        # the encoder, its optimiser and the seeded stream, fresh or as the checkpoint left them
        sampler = make_generator(derived_seed(seed, 2))
        enc = build_encoder(model, n_classes=n_classes)
        if payload is not None:
            enc.load_state_dict(payload["encoder"])
        enc.to(dev)
        if w.parallel:
            sync_batchnorm(enc)  # BatchNorm over the global batch (both views), as in one process
        enc_train = wrap(enc, w, dev)  # its forward is embed
        optim = torch.optim.Adam(enc.parameters(), lr=cfg.lr)
        start, resumed_from = restore_run(payload, log=run.log, sampler=sampler, optimizers={"optim": optim})
        del payload
        # the steps: the SupCon loss on two augmented views of each clip; a checkpoint every supcon.ckpt_every steps
        n, bsz, rows = mels.shape[0], cfg.batch_size, w.rows(cfg.batch_size)
        advice = (f"To retry, {{remedy}} and delete {ckpt_path} first (resuming with the same settings would repeat "
                  "the same steps).")

        with StepLoop(start=start, steps=cfg.steps, log=run.log, progress=run.progress, desc="SupCon",
                      postfix=lambda row: {"loss": f"{row['loss']:.4f}"}, ckpt_every=cfg.ckpt_every,
                      stop_after=stop_after, checkpoint=ckpt_path, task="SupCon pretraining", advice=advice,
                      suspects={"loss": "supcon.lr or supcon.temperature", "f": "supcon.lr"}, watch={"f": enc},
                      loss_bound=supcon_loss_bound(cfg), weight_bound=encoder_weight_bound(cfg)) as loop:
            for step in loop:
                enc.train()
                # One global batch from the seeded stream (indices, then each view's augmentation); this process's rows.
                idx = torch.randint(0, n, (bsz,), generator=sampler)
                x = mels[idx[rows]].unsqueeze(1)
                views = [apply_augment(x, {k: (v[rows] if v.ndim else v) for k, v in
                                           draw_augment_params(bsz, n_frames=x.shape[-1], generator=sampler).items()})
                         for _ in range(2)]
                y = labels[idx].to(dev)
                z = enc_train(torch.cat(views).to(dev)).float()  # (2b, D), view-major
                b = z.shape[0] // 2
                feats = gather(torch.stack([z[:b], z[b:]], dim=1))  # (B, 2, D): the global batch in order
                loss = supcon_loss(feats, y, temperature=cfg.temperature, base_temperature=cfg.temperature)
                loop.check_loss(loss, what="loss")
                optim.zero_grad(set_to_none=True)
                loss.backward()
                optim.step()
                loop.record({"step": step, "loss": loss.item()})
                if loop.checkpoint_due:
                    run.save(ckpt_path, lambda: checkpoint_payload(
                        "encoder", stage="supcon", model=model, train=cfg, run=run_info, step=step, sampler=sampler,
                        n_classes=int(n_classes), encoder=enc.state_dict(), optim=optim.state_dict()))
                    loop.saved()
        done = loop.done()
        enc.eval()
        return EncoderRun(
            out_dir=run.out_dir, checkpoint_path=ckpt_path, log_path=run.out_dir / SUPCON_LOG_NAME, step=done.step,
            steps=cfg.steps, finished=done.finished, resumed_from=resumed_from, seconds=done.seconds, encoder=enc,
        )


def finetune_classifier(
    mels: torch.Tensor,
    labels: torch.Tensor,
    *,
    n_classes: int,
    model: ModelConfig,
    cfg: SupConConfig,
    out_dir: str | Path,
    seed: int = 0,
    device: str | torch.device = "cpu",
    class_names: list[str] | None = None,
    batch_size: int = 64,
    progress: bool | None = None,
) -> EncoderRun:
    """Fine-tune the classification head on the frozen SupCon encoder and write ``encoder.pt``.

    Reads ``out_dir/supcon.pt`` (a finished :func:`pretrain_supcon`), trains only
    ``encoder.classifier`` with cross-entropy (Adam, ``cfg.finetune_lr``, ``cfg.finetune_steps``
    mini-batches of ``cfg.batch_size`` features drawn at random) on features computed once in eval
    mode, and writes ``out_dir/encoder.pt``. The backbone and the SupCon projection head are
    unchanged, so ``embed`` is the pretrained SupCon embedding.

    Parameters
    ----------
    mels, labels, n_classes, model, cfg, out_dir, seed, device, progress
        As in :func:`pretrain_supcon` (the same training clips).
    class_names : list of str, optional
        Stored in ``encoder.pt``.
    batch_size : int
        Clips per forward pass when computing the features (memory only).

    Returns
    -------
    EncoderRun
        With ``train_accuracy`` on the training clips.

    Raises
    ------
    CheckpointError
        ``supcon.pt`` is missing, unfinished, or from another architecture or data.
    """
    with open_run(out_dir, who="finetune_classifier", device=device, progress=progress, checkpoint=ENCODER_NAME,
                  log=FINETUNE_LOG_NAME, columns=FINETUNE_LOG_COLUMNS) as run:
        mels, labels = run.check_inputs(mels, labels, n_classes=n_classes, configs=(model, cfg))
        dev = run.device
        # the finished pretraining, for these clips
        supcon_path = run.out_dir / SUPCON_NAME
        payload = run.load_checkpoint(supcon_path, kind="encoder", model=model, n_classes=n_classes,
                                      folder="stage folder")
        if int(payload["step"]) < cfg.steps:
            raise CheckpointError(
                f"{supcon_path}: SupCon pretraining stopped at step {payload['step']} of supcon.steps = {cfg.steps}; "
                "run pretrain_supcon (it resumes) before fine-tuning."
            )
        check_config(payload.get("run") or {}, {**payload.get("run", {}), "n_clips": int(mels.shape[0]),
                     "data_digest": data_digest(mels, labels)}, what="training data", path=supcon_path)
        enc = build_encoder(model, n_classes=n_classes)
        enc.load_state_dict(payload["encoder"])
        enc.to(dev).eval().requires_grad_(False)
        # the frozen backbone's features, once; then the classification head alone is trained on them
        feats = encode_mels(enc, mels, batch_size=batch_size, device=dev, which="features")  # (N, F) on the CPU

        seed_everything(seed)
        sampler = make_generator(derived_seed(seed, 3))
        head = enc.classifier
        head.requires_grad_(True)
        optim = torch.optim.Adam(head.parameters(), lr=cfg.finetune_lr)
        if run.log is not None:
            run.log.start(resume_step=None)
        n, bsz = feats.shape[0], cfg.batch_size

        with StepLoop(start=0, steps=cfg.finetune_steps, log=run.log, progress=run.progress, desc="fine-tune",
                      task="classification fine-tuning", advice="To retry, {remedy} and rerun.",
                      suspects={"loss": "supcon.finetune_lr", "f": "supcon.finetune_lr"}, watch={"f": head},
                      loss_bound=supcon_loss_bound(cfg), weight_bound=encoder_weight_bound(cfg)) as loop:
            for step in loop:
                idx = torch.randint(0, n, (bsz,), generator=sampler)
                logits = head(feats[idx].to(dev))
                y = labels[idx].to(dev)
                loss = F.cross_entropy(logits, y)
                loop.check_loss(loss, what="loss")
                optim.zero_grad(set_to_none=True)
                loss.backward()
                optim.step()
                acc = (logits.argmax(dim=1) == y).float().mean().item()
                loop.record({"step": step, "loss": loss.item(), "accuracy": acc})
        done = loop.done()
        head.requires_grad_(False)
        with torch.no_grad():
            train_acc = float((head(feats.to(dev)).argmax(dim=1).cpu() == labels).float().mean())
        run.save(run.checkpoint, lambda: checkpoint_payload(
            "encoder", stage="finetuned", model=model, train=cfg,
            run={**payload.get("run", {}), "finetune_seed": int(seed)},
            step=cfg.finetune_steps,
            supcon_step=int(payload["step"]),
            n_classes=int(n_classes),
            class_names=list(class_names) if class_names is not None else None,
            encoder=enc.state_dict(),
            train_accuracy=train_acc,
        ))
        return EncoderRun(
            out_dir=run.out_dir, checkpoint_path=run.checkpoint, log_path=run.out_dir / FINETUNE_LOG_NAME,
            step=cfg.finetune_steps, steps=cfg.finetune_steps, finished=True, resumed_from=None, seconds=done.seconds,
            encoder=enc, train_accuracy=train_acc,
        )


def supcon_for_stage(layout: Layout, params: Params, cache: FeatureCache, *,
                     progress: bool | None = None) -> tuple[EncoderRun, EncoderRun]:
    """The supcon stage's training: what ``occ.stages.supcon.supcon_stage`` and ``occ supcon`` train.

    :func:`pretrain_supcon`, then :func:`finetune_classifier`, on the training clips of ``cache`` (normalised), with
    ``params.model``, ``params.supcon`` (on its ``threads``), ``params.seed`` and ``params.device``, in
    ``layout.supcon_run``. The pretraining resumes a run of the same configuration (``runs/supcon`` persists
    between DVC runs, so one that ``occ supcon`` trained under torchrun is kept) and starts afresh after a changed
    one.

    Parameters
    ----------
    layout : Layout
        The project's folders.
    params : Params
        ``params.yaml``, loaded.
    cache : FeatureCache
        The log-mel feature cache (``params.data.cache``).
    progress : bool, optional
        Show progress bars; default: when stderr is a terminal.

    Returns
    -------
    (EncoderRun, EncoderRun)
        The pretraining and the fine-tuning.
    """
    clips = cache.train()
    x, n_classes = normalize_mel(clips.mels), len(cache.class_names)
    use_threads(stage_threads(params, "supcon"))
    pre = pretrain_supcon(x, clips.labels, n_classes=n_classes, model=params.model, cfg=params.supcon,
                          out_dir=layout.supcon_run, seed=params.seed, device=params.device, progress=progress,
                          on_config_change="restart")
    fine = finetune_classifier(x, clips.labels, n_classes=n_classes, model=params.model, cfg=params.supcon,
                               out_dir=layout.supcon_run, seed=params.seed, device=params.device,
                               class_names=cache.class_names, progress=progress)
    return pre, fine
