"""Training of the source encoder f: SupCon pretraining, then classification fine-tuning.

Chung, Lee & Jung (DCASE 2023), Sec. 2.2 (REFERENCE sections 1 and 7): ``f`` is a ResNet18 trained
with the supervised contrastive loss of Khosla et al. (2020) on two augmented views of each clip
(fade in/out + time masking, ``occ.encoder.augment``), then fine-tuned for classification, and kept
frozen while the GAN trains.

* :func:`pretrain_supcon`: Adam on ``supcon_loss`` of the normalised projections ``embed(view)`` of
  two views per clip, ``base_temperature = temperature`` (the loss is not rescaled). Batches are
  drawn uniformly at random from the clips; batch indices and augmentation parameters come from one
  seeded CPU ``torch.Generator`` saved in the checkpoint, so resume is exact (as in
  ``occ.gan_train``). Files: ``supcon.pt`` (checkpoint, kind "encoder") and ``supcon_log.csv``
  (``step, loss, seconds``).
* :func:`finetune_classifier`: cross-entropy on the classification head only, over the frozen
  backbone's features, as in SupCon's linear-evaluation stage. Choosing the head keeps the backbone
  and the SupCon projection head exactly as pretrained, so ``embed`` (the ``f(x_i)`` of the
  C-SupCon / OC-SupCon losses) is the SupCon embedding. The features are computed once (eval mode,
  un-augmented clips), which makes the stage cheap. Files: ``encoder.pt`` (kind "encoder", stage
  "finetuned": the encoder the GAN stage loads) and ``finetune_log.csv`` (``step, loss, accuracy,
  seconds``).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from occ.checkpoint import TrainLog, check_config, cpu_state, load_checkpoint, save_checkpoint
from occ.config import ModelConfig, SupConConfig, to_dict
from occ.encoder import Encoder, augment
from occ.errors import CheckpointError, TrainingDivergedError
from occ.gan_train import check_training_data, data_digest, model_preset
from occ.losses import supcon_loss
from occ.seeding import derived_seed, make_generator, resolve_device, rng_state, seed_everything, set_rng_state

__all__ = [
    "SUPCON_LOG_COLUMNS",
    "FINETUNE_LOG_COLUMNS",
    "SUPCON_MAY_DIFFER",
    "EncoderRun",
    "build_encoder",
    "pretrain_supcon",
    "finetune_classifier",
    "classification_accuracy",
    "encode_mels",
    "load_encoder",
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


def build_encoder(model: ModelConfig, *, n_classes: int) -> Encoder:
    """The encoder of the architecture ``model``: ``WIDTHS[model.preset]`` with ``enc_width``, ``enc_stem``, ``proj_dim``."""
    kwargs = {**model_preset(model)["encoder"], "width": model.enc_width, "proj_dim": model.proj_dim}
    if hasattr(model, "enc_stem"):
        kwargs["stem"] = model.enc_stem
    return Encoder(n_classes=n_classes, **kwargs)


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

    Returns
    -------
    EncoderRun

    Raises
    ------
    CheckpointError
        ``supcon.pt`` is corrupt or from another architecture, configuration, seed or data.
    TrainingDivergedError
        The loss became NaN or infinite (``supcon.pt`` keeps the last good state).
    """
    model.check()
    cfg.check()
    if progress is None:
        progress = sys.stderr.isatty()
    mels, labels = check_training_data(mels, labels, n_classes=n_classes)
    dev = resolve_device(device)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = out_dir / SUPCON_NAME
    log = TrainLog(out_dir / SUPCON_LOG_NAME, SUPCON_LOG_COLUMNS)
    run_info = {"seed": int(seed), "n_clips": int(mels.shape[0]), "data_digest": data_digest(mels, labels)}

    payload = None
    if ckpt_path.exists():  # validate before building anything
        payload = _load_encoder_payload(ckpt_path, model=model, n_classes=n_classes)
        check_config(payload.get("train") or {}, to_dict(cfg), what="SupCon configuration (supcon)",
                     path=ckpt_path, ignore=SUPCON_MAY_DIFFER)
        check_config(payload.get("run") or {}, run_info, what="run (seed, training data)", path=ckpt_path)
    seed_everything(seed)
    sampler = make_generator(derived_seed(seed, 2))
    enc = build_encoder(model, n_classes=n_classes)
    if payload is not None:
        enc.load_state_dict(payload["encoder"])
    enc.to(dev)
    optim = torch.optim.Adam(enc.parameters(), lr=cfg.lr)
    if payload is not None:
        optim.load_state_dict(payload["optim"])
        set_rng_state(payload["rng"], generators={"sampler": sampler})
        start = int(payload["step"])
        resumed_from: int | None = start
        log.start(resume_step=start)
    else:
        start, resumed_from = 0, None
        log.start(resume_step=None)
    del payload

    def make_payload(step: int) -> dict[str, Any]:
        return {
            "kind": "encoder",
            "stage": "supcon",
            "model": to_dict(model),
            "train": to_dict(cfg),
            "run": dict(run_info),
            "step": int(step),
            "n_classes": int(n_classes),
            "encoder": cpu_state(enc.state_dict()),
            "optim": cpu_state(optim.state_dict()),
            "rng": rng_state(generators={"sampler": sampler}),
        }

    n, bsz = mels.shape[0], cfg.batch_size
    step, last_saved, ran, seconds = start, start, 0, 0.0
    bar = tqdm(total=cfg.steps, initial=min(start, cfg.steps), disable=not progress, desc="SupCon", unit="step",
               dynamic_ncols=True)
    try:
        while step < cfg.steps:
            if stop_after is not None and ran >= stop_after:
                break
            t0 = time.perf_counter()
            enc.train()
            idx = torch.randint(0, n, (bsz,), generator=sampler)
            x = mels[idx].unsqueeze(1)
            views = torch.cat([augment(x, generator=sampler), augment(x, generator=sampler)]).to(dev)
            y = labels[idx].to(dev)
            z = enc.embed(views).float()  # (2B, D), view-major
            feats = torch.stack([z[:bsz], z[bsz:]], dim=1)  # (B, 2, D)
            loss = supcon_loss(feats, y, temperature=cfg.temperature, base_temperature=cfg.temperature)
            if not bool(torch.isfinite(loss.detach())):
                raise TrainingDivergedError(
                    f"SupCon pretraining diverged at step {step + 1}: the loss is {loss.item()!r}. "
                    f"{_kept(ckpt_path, last_saved)} To retry, lower supcon.lr or raise supcon.temperature and delete "
                    f"{ckpt_path} first (resuming with the same settings would repeat the same steps)."
                )
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            step += 1
            ran += 1
            dt = time.perf_counter() - t0
            seconds += dt
            log.append({"step": step, "loss": loss.item(), "seconds": dt})
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
            if step % cfg.ckpt_every == 0 or step == cfg.steps:
                save_checkpoint(ckpt_path, make_payload(step))
                last_saved = step
    finally:
        bar.close()
    enc.eval()
    return EncoderRun(
        out_dir=out_dir, checkpoint_path=ckpt_path, log_path=log.path, step=step, steps=cfg.steps,
        finished=step >= cfg.steps and last_saved == step, resumed_from=resumed_from, seconds=seconds, encoder=enc,
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
    model.check()
    cfg.check()
    if progress is None:
        progress = sys.stderr.isatty()
    mels, labels = check_training_data(mels, labels, n_classes=n_classes)
    dev = resolve_device(device)
    out_dir = Path(out_dir)
    supcon_path = out_dir / SUPCON_NAME
    payload = _load_encoder_payload(supcon_path, model=model, n_classes=n_classes)
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
    log = TrainLog(out_dir / FINETUNE_LOG_NAME, FINETUNE_LOG_COLUMNS)
    log.start(resume_step=None)
    n, bsz = feats.shape[0], cfg.batch_size
    seconds = 0.0
    for step in tqdm(range(1, cfg.finetune_steps + 1), disable=not progress, desc="fine-tune", unit="step"):
        t0 = time.perf_counter()
        idx = torch.randint(0, n, (bsz,), generator=sampler)
        logits = head(feats[idx].to(dev))
        y = labels[idx].to(dev)
        loss = F.cross_entropy(logits, y)
        if not bool(torch.isfinite(loss.detach())):
            raise TrainingDivergedError(
                f"classification fine-tuning diverged at step {step}: the loss is {loss.item()!r}; "
                "lower supcon.finetune_lr and rerun."
            )
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        dt = time.perf_counter() - t0
        seconds += dt
        acc = (logits.argmax(dim=1) == y).float().mean().item()
        log.append({"step": step, "loss": loss.item(), "accuracy": acc, "seconds": dt})
    head.requires_grad_(False)
    with torch.no_grad():
        train_acc = float((head(feats.to(dev)).argmax(dim=1).cpu() == labels).float().mean())
    enc_path = out_dir / ENCODER_NAME
    save_checkpoint(enc_path, {
        "kind": "encoder",
        "stage": "finetuned",
        "model": to_dict(model),
        "train": to_dict(cfg),
        "run": {**payload.get("run", {}), "finetune_seed": int(seed)},
        "step": int(cfg.finetune_steps),
        "supcon_step": int(payload["step"]),
        "n_classes": int(n_classes),
        "class_names": list(class_names) if class_names is not None else None,
        "encoder": cpu_state(enc.state_dict()),
        "train_accuracy": train_acc,
    })
    return EncoderRun(
        out_dir=out_dir, checkpoint_path=enc_path, log_path=log.path, step=cfg.finetune_steps,
        steps=cfg.finetune_steps, finished=True, resumed_from=None, seconds=seconds, encoder=enc,
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


def load_encoder(path: str | Path, *, device: str | torch.device = "cpu") -> Encoder:
    """Load an encoder checkpoint (``encoder.pt`` or ``supcon.pt``) frozen, in eval mode.

    Parameters
    ----------
    path : str or Path
        The checkpoint.
    device : {"auto", "cpu", "cuda"} or torch.device
        Where to put it.

    Returns
    -------
    Encoder
        Eval mode, no parameter gradients; its checkpoint payload's ``stage`` in ``encoder.stage``.

    Raises
    ------
    CheckpointError
        Missing, corrupt, or not an encoder checkpoint.
    """
    payload = load_checkpoint(path, kind="encoder")
    try:
        model = ModelConfig(**payload["model"])
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: its architecture entry does not match this version's ModelConfig ({exc}); "
                              "rerun the encoder stage.") from exc
    enc = build_encoder(model, n_classes=int(payload["n_classes"]))
    enc.load_state_dict(payload["encoder"])
    enc.stage = payload.get("stage", "")
    return enc.to(resolve_device(device)).eval().requires_grad_(False)


def _load_encoder_payload(path: Path, *, model: ModelConfig, n_classes: int) -> dict:
    payload = load_checkpoint(path, kind="encoder", expect=to_dict(model))
    if payload.get("n_classes") != n_classes:
        raise CheckpointError(
            f"{path}: written for n_classes={payload.get('n_classes')!r}, requested {n_classes}; use the same "
            "data or delete the stage folder to start afresh."
        )
    return payload


def _kept(ckpt_path: Path, last_saved: int) -> str:
    if last_saved > 0:
        return f"The last good checkpoint {ckpt_path} (step {last_saved}) was kept."
    return "No checkpoint had been written yet."
