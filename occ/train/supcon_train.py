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
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from occ.checkpoint import check_config, save_checkpoint
from occ.config import ModelConfig, SupConConfig, to_dict
from occ.train.distributed import gather, setup, sync_batchnorm, world, wrap
from occ.nets.encoder import Encoder, apply_augment, draw_augment_params
from occ.errors import CheckpointError, TrainingDivergedError
from occ.train.losses import supcon_loss
from occ.nets.models import build_encoder
from occ.train.run_setup import (Expect, StepLoop, check_finite, checkpoint_payload, default_progress, guarded_run,
                           kept_message, load_run_checkpoint, restore_run, run_files)
from occ.device import resolve_device
from occ.seeding import derived_seed, make_generator, seed_everything
from occ.data.checks import check_training_data, data_digest

__all__ = [
    "SUPCON_LOG_COLUMNS",
    "FINETUNE_LOG_COLUMNS",
    "SUPCON_MAY_DIFFER",
    "EncoderRun",
    "pretrain_supcon",
    "finetune_classifier",
    "classification_accuracy",
    "encode_mels",
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
    kwargs = dict(n_classes=n_classes, model=model, cfg=cfg, seed=seed, device=device, progress=progress,
                  stop_after=stop_after)
    setup(resolve_device(device))  # join torchrun's process group, if any, before rank 0 locks the folder
    return guarded_run(_pretrain_supcon, mels, labels, out_dir=out_dir, on_config_change=on_config_change,
                       who="pretrain_supcon", **kwargs)


def _pretrain_supcon(mels: torch.Tensor, labels: torch.Tensor, *, n_classes: int, model: ModelConfig,
                     cfg: SupConConfig, out_dir: str | Path, seed: int, device: str | torch.device,
                     progress: bool | None, stop_after: int | None) -> EncoderRun:
    """The body of :func:`pretrain_supcon`: set-up, then the loop of SupCon steps, log and checkpoint."""
    model.check()
    cfg.check()
    mels, labels = check_training_data(mels, labels, n_classes=n_classes)
    w = world()
    dev = w.place(resolve_device(device))
    w.local_batch(cfg.batch_size, name="supcon.batch_size")
    progress = default_progress(progress) and w.main
    out_dir, ckpt_path, log = run_files(out_dir, SUPCON_NAME, SUPCON_LOG_NAME, SUPCON_LOG_COLUMNS, create=w.main)
    log = log if w.main else None
    run_info = {"seed": int(seed), "n_clips": int(mels.shape[0]), "data_digest": data_digest(mels, labels)}
    payload = load_run_checkpoint(  # validate before building anything
        ckpt_path, kind="encoder", model=model, n_classes=n_classes, folder="stage folder", missing_ok=True,
        checks=[Expect("train", to_dict(cfg), "SupCon configuration (supcon)", SUPCON_MAY_DIFFER),
                Expect("run", run_info, "run (seed, training data)")],
    )
    seed_everything(seed)
    sampler = make_generator(derived_seed(seed, 2))
    enc = build_encoder(model, n_classes=n_classes)
    if payload is not None:
        enc.load_state_dict(payload["encoder"])
    enc.to(dev)
    if w.parallel:
        sync_batchnorm(enc)  # BatchNorm over the global batch (both views), as in one process
    enc_train = wrap(enc, w, dev)  # its forward is embed
    optim = torch.optim.Adam(enc.parameters(), lr=cfg.lr)
    start, resumed_from = restore_run(payload, log=log, sampler=sampler, optimizers={"optim": optim})
    del payload
    n, bsz, rows = mels.shape[0], cfg.batch_size, w.rows(cfg.batch_size)

    with StepLoop(start=start, steps=cfg.steps, log=log, progress=progress, desc="SupCon",
                  postfix=lambda row: {"loss": f"{row['loss']:.4f}"}, ckpt_every=cfg.ckpt_every,
                  stop_after=stop_after, checkpoint=ckpt_path) as loop:
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
            finite = w.all_true(bool(torch.isfinite(loss.detach())))
            if not finite:
                what = f"SupCon pretraining diverged at step {step}: the loss"
                advice = (f"To retry, lower supcon.lr or raise supcon.temperature and delete {ckpt_path} first "
                          "(resuming with the same settings would repeat the same steps).")
                check_finite(loss, what=what, advice=advice, kept=kept_message(ckpt_path, loop.last_saved))
                raise TrainingDivergedError(f"{what} is not finite on another process. {advice}")
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            loop.record({"step": step, "loss": loss.item()})
            if loop.checkpoint_due:
                if w.main:
                    save_checkpoint(ckpt_path, checkpoint_payload(
                        "encoder", stage="supcon", model=model, train=cfg, run=run_info, step=step, sampler=sampler,
                        n_classes=int(n_classes), encoder=enc.state_dict(), optim=optim.state_dict()))
                w.barrier()
                loop.saved()
    done = loop.done()
    enc.eval()
    return EncoderRun(
        out_dir=out_dir, checkpoint_path=ckpt_path, log_path=out_dir / SUPCON_LOG_NAME, step=done.step,
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
    kwargs = dict(n_classes=n_classes, model=model, cfg=cfg, seed=seed, device=device, class_names=class_names,
                  batch_size=batch_size, progress=progress)
    setup(resolve_device(device))  # join torchrun's process group, if any, before rank 0 locks the folder
    return guarded_run(_finetune_classifier, mels, labels, out_dir=out_dir, on_config_change="error",
                       who="finetune_classifier", **kwargs)


def _finetune_classifier(mels: torch.Tensor, labels: torch.Tensor, *, n_classes: int, model: ModelConfig,
                         cfg: SupConConfig, out_dir: str | Path, seed: int, device: str | torch.device,
                         class_names: list[str] | None, batch_size: int, progress: bool | None) -> EncoderRun:
    """The body of :func:`finetune_classifier`. Under torchrun every process fits the same head on the same
    features (it is tiny; no gradients are exchanged) and rank 0 alone writes the log and ``encoder.pt``."""
    model.check()
    cfg.check()
    mels, labels = check_training_data(mels, labels, n_classes=n_classes)
    w = world()
    dev = w.place(resolve_device(device))
    progress = default_progress(progress) and w.main
    out_dir, enc_path, log = run_files(out_dir, ENCODER_NAME, FINETUNE_LOG_NAME, FINETUNE_LOG_COLUMNS, create=False)
    supcon_path = out_dir / SUPCON_NAME
    payload = load_run_checkpoint(supcon_path, kind="encoder", model=model, n_classes=n_classes, folder="stage folder")
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
    feats = encode_mels(enc, mels, batch_size=batch_size, device=dev, which="features")  # (N, F) on the CPU

    seed_everything(seed)
    sampler = make_generator(derived_seed(seed, 3))
    head = enc.classifier
    head.requires_grad_(True)
    optim = torch.optim.Adam(head.parameters(), lr=cfg.finetune_lr)
    log = log if w.main else None
    if log is not None:
        log.start(resume_step=None)
    n, bsz = feats.shape[0], cfg.batch_size

    with StepLoop(start=0, steps=cfg.finetune_steps, log=log, progress=progress, desc="fine-tune") as loop:
        for step in loop:
            idx = torch.randint(0, n, (bsz,), generator=sampler)
            logits = head(feats[idx].to(dev))
            y = labels[idx].to(dev)
            loss = F.cross_entropy(logits, y)
            check_finite(loss, what=f"classification fine-tuning diverged at step {step}: the loss",
                         advice="Lower supcon.finetune_lr and rerun.", kept="")
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            acc = (logits.argmax(dim=1) == y).float().mean().item()
            loop.record({"step": step, "loss": loss.item(), "accuracy": acc})
    done = loop.done()
    head.requires_grad_(False)
    with torch.no_grad():
        train_acc = float((head(feats.to(dev)).argmax(dim=1).cpu() == labels).float().mean())
    if w.main:
        save_checkpoint(enc_path, checkpoint_payload(
            "encoder", stage="finetuned", model=model, train=cfg,
            run={**payload.get("run", {}), "finetune_seed": int(seed)},
            step=cfg.finetune_steps,
            supcon_step=int(payload["step"]),
            n_classes=int(n_classes),
            class_names=list(class_names) if class_names is not None else None,
            encoder=enc.state_dict(),
            train_accuracy=train_acc,
        ))
    w.barrier()
    return EncoderRun(
        out_dir=out_dir, checkpoint_path=enc_path, log_path=out_dir / FINETUNE_LOG_NAME, step=cfg.finetune_steps,
        steps=cfg.finetune_steps, finished=True, resumed_from=None, seconds=done.seconds, encoder=enc,
        train_accuracy=train_acc,
    )


@torch.no_grad()
def encode_mels(
    encoder: Encoder,
    mels: torch.Tensor,
    *,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    which: str = "embed",
) -> torch.Tensor:
    """Embeddings of log-mels by a (frozen) encoder, in eval mode.

    Parameters
    ----------
    encoder : Encoder
        The encoder (moved to ``device``; its mode is restored afterwards).
    mels : torch.Tensor [shape=(N, 80, 344)]
        Normalised log-mels.
    batch_size : int
        Clips per forward pass.
    device : {"auto", "cpu", "cuda"} or torch.device
        Where to run.
    which : {"embed", "features", "logits"}
        The normalised SupCon embedding ``f(x)`` (N, proj_dim), the pooled backbone feature
        (N, 8 * width) or the class logits (N, n_classes).

    Returns
    -------
    torch.Tensor
        float32, on the CPU.
    """
    fn = {"embed": encoder.embed, "features": encoder.features, "logits": encoder.classify}.get(which)
    if fn is None:
        raise ValueError(f"encode_mels: which={which!r} is not 'embed', 'features' or 'logits'.")
    dev = resolve_device(device)
    was_training = encoder.training
    encoder.to(dev).eval()
    outs = []
    try:
        for start in range(0, mels.shape[0], batch_size):
            x = mels[start:start + batch_size].unsqueeze(1).to(dev, torch.float32)
            outs.append(fn(x).float().cpu())
    finally:
        encoder.train(was_training)
    return torch.cat(outs) if outs else torch.empty(0)


def classification_accuracy(
    encoder: Encoder,
    mels: torch.Tensor,
    labels: torch.Tensor,
    *,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
) -> float:
    """Fraction of clips whose arg-max class logit equals the label (eval mode).

    Parameters
    ----------
    encoder : Encoder
        A fine-tuned encoder.
    mels : torch.Tensor [shape=(N, 80, 344)]
        Normalised log-mels.
    labels : torch.Tensor [shape=(N,)]
        Classes.
    batch_size : int
        Clips per forward pass.
    device : {"auto", "cpu", "cuda"} or torch.device
        Where to run.

    Returns
    -------
    float
        Accuracy in [0, 1].
    """
    logits = encode_mels(encoder, mels, batch_size=batch_size, device=device, which="logits")
    return float((logits.argmax(dim=1) == labels.cpu().long()).float().mean())
