"""GAN training for ContraGAN (2C), C-SupConGAN, O2C-GAN, OC-SupConGAN and a hinge-only control.

Chung, Lee & Jung (DCASE 2023), Eq. (6), with the step order of PyTorch-StudioGAN (docs/reference.md,
section 6): every iteration is one D step followed by one G step,

* D step: ``L_D = mean(relu(1 - D(x))) + mean(relu(1 + D(G(z, c')))) + w * l_C(h(D1(x)), c, e(c)[, f(x)])``
  (real data in the contrastive term, ``G(z, c')`` detached);
* G step: ``L_G = -mean(D(G(z, c))) + w * l_C(h(D1(G(z, c))), c, e(c)[, f(G(z, c))])`` with a new ``z``;

where ``l_C`` is 2C, C-SupCon, O2C (Eq. 3) or OC-SupCon (Eq. 5) (``occ.losses.contrastive_loss``) and
``w = train.contrastive_weight`` (1 in the paper); loss ``"none"`` drops the contrastive term. The
class embeddings ``e`` belong to D and are updated by D's optimiser only. ``f`` is the frozen
SupCon encoder (eval mode, no parameter gradients); in the G step the gradient of the ``d2s`` term
flows through ``f`` into G, since ``f(G(z, c))`` depends on G.

Fake classes are drawn uniformly over the classes, real batches uniformly at random (with
replacement) from the training clips; every draw (real indices, ``z``, fake classes, D
augmentation) comes from one CPU ``torch.Generator`` whose state is saved in the checkpoints, so
draws are the same on CPU and CUDA and a resumed run is exact: on CPU a run stopped at step k and
resumed ends bit-identical to an uninterrupted one.

Files in ``out_dir``: ``step0.pt`` (the untrained models, written before the first step: the
"step 0" reference), ``checkpoint.pt`` (every ``train.ckpt_every`` steps and at the end, written
atomically; a diverged run never overwrites it) and ``log.csv`` (one row per step, see
:data:`LOG_COLUMNS`).
"""

from __future__ import annotations

import copy
import hashlib
import re
import sys
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from occ.augment_d import augment_d
from occ.checkpoint import TrainLog, load_checkpoint, save_checkpoint
from occ.config import SUPCON_KINDS, ModelConfig, TrainConfig, to_dict
from occ.discriminator import Discriminator
from occ.errors import CheckpointError, ConfigChangedError, ConfigError, DataError, TrainingDivergedError
from occ.generator import N_FRAMES, N_MELS, Generator
from occ.layers import WIDTHS
from occ.losses import contrastive_loss, d_hinge_loss, g_hinge_loss
from occ.run_state import (Expect, checkpoint_payload, clear_run_folder, default_progress, kept_message,
                           load_run_checkpoint, restore_run, run_files, run_lock, run_steps)
from occ.seeding import derived_seed, make_generator, resolve_device, seed_everything

__all__ = [
    "LOG_COLUMNS",
    "TRAIN_MAY_DIFFER",
    "GANRun",
    "train_gan",
    "build_generator",
    "build_discriminator",
    "model_preset",
    "load_generator",
    "load_discriminator",
    "check_training_data",
    "data_digest",
    "module_digest",
]

#: Columns of ``log.csv``: hinge terms of D (real, fake, their sum), contrastive terms, G's
#: adversarial loss, D's accuracy on real (logit > 0) and fake (logit < 0) samples, step time in s.
LOG_COLUMNS = (
    "step",
    "d_loss_real",
    "d_loss_fake",
    "d_adv",
    "d_contrastive",
    "g_adv",
    "g_contrastive",
    "d_acc_real",
    "d_acc_fake",
    "seconds",
)
#: Training keys that may change when resuming (``steps`` to continue training).
TRAIN_MAY_DIFFER = ("steps", "ckpt_every", "bf16")

CHECKPOINT_NAME = "checkpoint.pt"
STEP0_NAME = "step0.pt"
LOG_NAME = "log.csv"


@dataclass
class GANRun:
    """Outcome of :func:`train_gan`.

    Attributes
    ----------
    out_dir, checkpoint_path, step0_path, log_path : Path
        The run folder and its files.
    step : int
        Steps done (the checkpoint's step when training finished).
    steps : int
        Steps requested (``train.steps``).
    finished : bool
        ``step >= steps`` and the final checkpoint is written.
    resumed_from : int or None
        The checkpoint step this call resumed from, ``None`` for a fresh run.
    seconds : float
        Wall time of the steps run in this call, s.
    generator : Generator
        The EMA generator when ``train.ema_decay > 0``, else G (eval mode).
    discriminator : Discriminator
        D (eval mode).
    """

    out_dir: Path
    checkpoint_path: Path
    step0_path: Path
    log_path: Path
    step: int
    steps: int
    finished: bool
    resumed_from: int | None
    seconds: float
    generator: Generator
    discriminator: Discriminator

    def log(self):
        """``log.csv`` as a ``pandas.DataFrame``."""
        return TrainLog(self.log_path, LOG_COLUMNS).read()


def build_generator(model: ModelConfig, *, n_classes: int) -> Generator:
    """G of the architecture ``model``: the layout of ``WIDTHS[model.preset]`` with ``z_dim``, ``g_ch``, ``g_noise``."""
    kwargs = {**model_preset(model)["generator"], "ch": model.g_ch, "z_dim": model.z_dim, "noise": model.g_noise}
    return Generator(n_classes=n_classes, **kwargs)


def build_discriminator(model: ModelConfig, *, n_classes: int) -> Discriminator:
    """D of the architecture ``model``: ``WIDTHS[model.preset]`` with ``d_ch``, ``proj_dim``, ``d_projection``."""
    kwargs = {**model_preset(model)["discriminator"], "ch": model.d_ch, "proj_dim": model.proj_dim,
              "projection": model.d_projection}
    return Discriminator(n_classes=n_classes, **kwargs)


def model_preset(model: ModelConfig) -> dict[str, dict[str, Any]]:
    """The keyword arguments of G, D and the encoder for ``model.preset`` (``occ.layers.WIDTHS``)."""
    preset = getattr(model, "preset", "embedded")
    if preset not in WIDTHS:
        raise ConfigError(f"model.preset = {preset!r} is not one of {sorted(WIDTHS)}.")
    return WIDTHS[preset]


def train_gan(
    mels: torch.Tensor,
    labels: torch.Tensor,
    *,
    n_classes: int,
    model: ModelConfig,
    train: TrainConfig,
    out_dir: str | Path,
    seed: int = 0,
    device: str | torch.device = "cpu",
    encoder: nn.Module | str | Path | None = None,
    class_names: list[str] | None = None,
    progress: bool | None = None,
    stop_after: int | None = None,
    on_config_change: str = "error",
) -> GANRun:
    """Train (or resume training) a class-conditional GAN with the loss ``train.loss``.

    Parameters
    ----------
    mels : torch.Tensor [shape=(N, 80, 344), dtype=float32]
        Normalised log-mels of the training clips, in [-1, 1].
    labels : torch.Tensor [shape=(N,), dtype=int64]
        Class of each clip, in ``[0, n_classes)``.
    n_classes : int
        Number of classes.
    model : ModelConfig
        Architecture of G and D.
    train : TrainConfig
        Loss, temperatures, steps, batch size, optimiser, EMA, augmentation, checkpoint interval.
    out_dir : str or Path
        Run folder, locked while training. If it holds ``checkpoint.pt``, training resumes from it
        (the architecture, loss and other training keys must match; ``steps`` may grow).
    seed : int
        Seeds initialisation and every random draw.
    device : {"auto", "cpu", "cuda"} or torch.device
        Where to train; bf16 autocast (``train.bf16``) is used on CUDA only.
    encoder : Encoder or path, optional
        The frozen SupCon encoder ``f`` (or the path of its ``encoder.pt``); required by the
        SupCon losses ("csupcon", "ocsupcon"), ignored otherwise. It is put in eval mode and its
        parameters stop requiring gradients.
    class_names : list of str, optional
        Stored in the checkpoints.
    progress : bool, optional
        Show a progress bar; default: when stderr is a terminal.
    stop_after : int, optional
        Stop, as if the process were killed, after this many steps of this call (no extra
        checkpoint is written); for testing resume.
    on_config_change : {"error", "restart"}
        What to do when ``checkpoint.pt`` was written with another architecture, training
        configuration (other than ``steps``), seed, data or encoder: ``"error"`` raises
        :class:`~occ.errors.ConfigChangedError`; ``"restart"`` (the pipeline's choice: a changed parameter
        means a new run) empties the run folder, says so in one line on stderr, and trains afresh. An
        unchanged configuration resumes exactly either way.

    Returns
    -------
    GANRun

    Raises
    ------
    ConfigError
        Invalid configuration, or a SupCon loss without an encoder.
    DataError
        Data of the wrong shape, type or range.
    CheckpointError
        ``checkpoint.pt`` is corrupt, or was written with another architecture, loss, seed or data
        (:class:`~occ.errors.ConfigChangedError`, unless ``on_config_change="restart"``), or ``log.csv``
        does not hold the steps up to the checkpoint.
    RunLockedError
        Another process is training in ``out_dir``.
    TrainingInterrupted
        Ctrl-C: the last checkpoint is kept and a rerun resumes from it.
    TrainingDivergedError
        A loss became NaN or infinite; ``checkpoint.pt`` keeps the last good state.
    """
    if on_config_change not in ("error", "restart"):
        raise ConfigError(f"train_gan: on_config_change={on_config_change!r}; use 'error' or 'restart'.")
    kwargs = dict(n_classes=n_classes, model=model, train=train, out_dir=out_dir, seed=seed, device=device,
                  encoder=encoder, class_names=class_names, progress=progress, stop_after=stop_after)
    with run_lock(out_dir):
        try:
            return _train_gan(mels, labels, **kwargs)
        except ConfigChangedError as exc:
            if on_config_change != "restart":
                raise
            removed = clear_run_folder(out_dir)
            what = re.split(r"[.;] [Uu]se ", str(exc))[0]  # the differences, without the advice to delete
            print(f"train_gan: {what}; starting a fresh run there (removed {', '.join(removed)}).", file=sys.stderr)
        return _train_gan(mels, labels, **kwargs)


def _train_gan(
    mels: torch.Tensor,
    labels: torch.Tensor,
    *,
    n_classes: int,
    model: ModelConfig,
    train: TrainConfig,
    out_dir: str | Path,
    seed: int = 0,
    device: str | torch.device = "cpu",
    encoder: nn.Module | str | Path | None = None,
    class_names: list[str] | None = None,
    progress: bool | None = None,
    stop_after: int | None = None,
) -> GANRun:
    """The body of :func:`train_gan`, run with the run folder locked."""
    model.check()
    train.check()
    progress = default_progress(progress)
    mels, labels = check_training_data(mels, labels, n_classes=n_classes)
    dev = resolve_device(device)
    uses_source = train.loss in SUPCON_KINDS
    f = None
    if uses_source:
        f = _frozen_encoder(encoder, device=dev, loss=train.loss)
    out_dir, ckpt_path, log = run_files(out_dir, CHECKPOINT_NAME, LOG_NAME, LOG_COLUMNS)
    step0_path = out_dir / STEP0_NAME
    run_info = {
        "seed": int(seed),
        "n_clips": int(mels.shape[0]),
        "data_digest": data_digest(mels, labels),
        "encoder_digest": module_digest(f) if f is not None else "",
    }
    payload = load_run_checkpoint(  # validate before building anything
        ckpt_path, kind="gan", model=model, n_classes=n_classes, folder="run folder", missing_ok=True,
        expect_train=to_dict(train), train_may_differ=TRAIN_MAY_DIFFER,
        checks=[Expect("run", run_info, "run (seed, training data, encoder)")],
    )

    seed_everything(seed)
    sampler = make_generator(derived_seed(seed, 1))
    g = build_generator(model, n_classes=n_classes)
    d = build_discriminator(model, n_classes=n_classes)
    g_ema = copy.deepcopy(g) if train.ema_decay > 0 else None
    if payload is not None:
        g.load_state_dict(payload["g"])
        d.load_state_dict(payload["d"])
        if g_ema is not None:
            g_ema.load_state_dict(payload["g_ema"])
    for module in (g, d, g_ema):
        if module is not None:
            module.to(dev)
    if g_ema is not None:
        g_ema.eval().requires_grad_(False)
    g_optim = torch.optim.Adam(g.parameters(), lr=train.lr_g, betas=(train.beta1, train.beta2))
    d_optim = torch.optim.Adam(d.parameters(), lr=train.lr_d, betas=(train.beta1, train.beta2))

    def make_payload(step: int) -> dict[str, Any]:
        return checkpoint_payload(
            "gan", model=model, train=train, run=run_info, step=step, sampler=sampler,
            n_classes=int(n_classes),
            class_names=list(class_names) if class_names is not None else None,
            g=g.state_dict(),
            d=d.state_dict(),
            g_ema=g_ema.state_dict() if g_ema is not None else None,
            g_optim=g_optim.state_dict(),
            d_optim=d_optim.state_dict(),
        )

    def save(step: int, last_saved: int) -> None:
        _check_finite_weights(g, d, g_ema, step=step, ckpt_path=ckpt_path, last_saved=last_saved)
        save_checkpoint(ckpt_path, make_payload(step))

    start, resumed_from = restore_run(payload, log=log, sampler=sampler,
                                      optimizers={"g_optim": g_optim, "d_optim": d_optim})
    if payload is None:
        save_checkpoint(step0_path, make_payload(0))
    del payload

    autocast = (
        torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        if train.bf16 and dev.type == "cuda"
        else nullcontext()
    )
    ctx = _StepContext(
        g=g, d=d, g_ema=g_ema, f=f, g_optim=g_optim, d_optim=d_optim, sampler=sampler, mels=mels,
        labels=labels, n_classes=n_classes, z_dim=g.z_dim, train=train, device=dev, autocast=autocast,
        ckpt_path=ckpt_path,
    )
    done = run_steps(
        lambda step, last_saved: _train_step(ctx, step=step, last_saved=last_saved),
        start=start, steps=train.steps, log=log, progress=progress, desc=f"GAN {train.loss}",
        postfix=lambda row: {"d_adv": f"{row['d_adv']:.3f}", "g_adv": f"{row['g_adv']:.3f}",
                             "d_con": f"{row['d_contrastive']:.3f}", "g_con": f"{row['g_contrastive']:.3f}"},
        save=save, ckpt_every=train.ckpt_every, stop_after=stop_after, checkpoint=ckpt_path,
    )
    g.eval()
    d.eval()
    return GANRun(
        out_dir=out_dir,
        checkpoint_path=ckpt_path,
        step0_path=step0_path,
        log_path=log.path,
        step=done.step,
        steps=train.steps,
        finished=done.finished,
        resumed_from=resumed_from,
        seconds=done.seconds,
        generator=g_ema if g_ema is not None else g,
        discriminator=d,
    )


@dataclass
class _StepContext:
    g: Generator
    d: Discriminator
    g_ema: Generator | None
    f: nn.Module | None
    g_optim: torch.optim.Optimizer
    d_optim: torch.optim.Optimizer
    sampler: torch.Generator
    mels: torch.Tensor
    labels: torch.Tensor
    n_classes: int
    z_dim: int
    train: TrainConfig
    device: torch.device
    autocast: Any
    ckpt_path: Path


def _train_step(ctx: _StepContext, *, step: int, last_saved: int) -> dict[str, float]:
    """One D step then one G step; returns the log row (without ``seconds``)."""
    train, dev, gen = ctx.train, ctx.device, ctx.sampler
    n, bsz = ctx.mels.shape[0], train.batch_size
    kind = train.loss
    uses_con = kind != "none"
    g, d = ctx.g, ctx.d
    g.train()
    d.train()

    # ---- D step -------------------------------------------------------------------------------
    idx = torch.randint(0, n, (bsz,), generator=gen)
    x_real = ctx.mels[idx].unsqueeze(1).to(dev, non_blocking=True)
    y_real = ctx.labels[idx].to(dev, non_blocking=True)
    z = torch.randn(bsz, ctx.z_dim, generator=gen).to(dev, non_blocking=True)
    y_fake = torch.randint(0, ctx.n_classes, (bsz,), generator=gen).to(dev, non_blocking=True)
    d.requires_grad_(True)
    with ctx.autocast:
        with torch.no_grad():
            x_fake = g(z, y_fake).float()
        d_in_real, d_in_fake = x_real, x_fake
        if train.augment:
            d_in_real = augment_d(x_real, generator=gen)
            d_in_fake = augment_d(x_fake, generator=gen)
        out = d(torch.cat([d_in_real, d_in_fake]), torch.cat([y_real, y_fake]))
        real_logits = out.logits[:bsz].float()
        fake_logits = out.logits[bsz:].float()
        d_adv = d_hinge_loss(real_logits, fake_logits)
        if uses_con:
            source = None
            if ctx.f is not None:
                with torch.no_grad():
                    source = ctx.f.embed(x_real).float()
            d_con = contrastive_loss(
                out.embedding[:bsz].float(), y_real, d.class_embedding(y_real).float(),
                kind=kind, tau_d=train.tau_d, tau_c=train.tau_c, source_emb=source,
            )
        else:
            d_con = torch.zeros((), device=dev)
        d_loss = d_adv + train.contrastive_weight * d_con
    _check_finite_loss(d_loss, what="discriminator loss L_D", parts={"d_adv": d_adv, "d_contrastive": d_con},
                       step=step, ckpt_path=ctx.ckpt_path, last_saved=last_saved)
    ctx.d_optim.zero_grad(set_to_none=True)
    d_loss.backward()
    ctx.d_optim.step()
    with torch.no_grad():
        row = {
            "step": step,
            "d_loss_real": F.relu(1.0 - real_logits).mean().item(),
            "d_loss_fake": F.relu(1.0 + fake_logits).mean().item(),
            "d_adv": d_adv.item(),
            "d_contrastive": d_con.item(),
            "d_acc_real": (real_logits > 0).float().mean().item(),
            "d_acc_fake": (fake_logits < 0).float().mean().item(),
        }

    # ---- G step -------------------------------------------------------------------------------
    z = torch.randn(bsz, ctx.z_dim, generator=gen).to(dev, non_blocking=True)
    y = torch.randint(0, ctx.n_classes, (bsz,), generator=gen).to(dev, non_blocking=True)
    d.requires_grad_(False)  # D (and e) are updated by D's optimiser only
    with ctx.autocast:
        x_gen = g(z, y).float()
        d_in = augment_d(x_gen, generator=gen) if train.augment else x_gen
        out = d(d_in, y)
        g_adv = g_hinge_loss(out.logits.float())
        if uses_con:
            source = ctx.f.embed(x_gen).float() if ctx.f is not None else None  # gradient flows through f into G
            g_con = contrastive_loss(
                out.embedding.float(), y, d.class_embedding(y).float(),
                kind=kind, tau_d=train.tau_d, tau_c=train.tau_c, source_emb=source,
            )
        else:
            g_con = torch.zeros((), device=dev)
        g_loss = g_adv + train.contrastive_weight * g_con
    _check_finite_loss(g_loss, what="generator loss L_G", parts={"g_adv": g_adv, "g_contrastive": g_con},
                       step=step, ckpt_path=ctx.ckpt_path, last_saved=last_saved)
    ctx.g_optim.zero_grad(set_to_none=True)
    g_loss.backward()
    ctx.g_optim.step()
    d.requires_grad_(True)
    if ctx.g_ema is not None:
        _ema_update(ctx.g_ema, g, decay=train.ema_decay, step=step)
    row["g_adv"] = g_adv.item()
    row["g_contrastive"] = g_con.item()
    return row


@torch.no_grad()
def _ema_update(g_ema: nn.Module, g: nn.Module, *, decay: float, step: int) -> None:
    """EMA of G's parameters with a warm-up, ``min(decay, (1 + step) / (10 + step))``; buffers copied.

    The warm-up (as in TensorFlow's ``ExponentialMovingAverage(num_updates=...)``) keeps short runs
    from averaging in the untrained initial weights.
    """
    beta = min(decay, (1.0 + step) / (10.0 + step))
    for p_ema, p in zip(g_ema.parameters(), g.parameters()):
        p_ema.lerp_(p.detach(), 1.0 - beta)
    for b_ema, b in zip(g_ema.buffers(), g.buffers()):
        b_ema.copy_(b)


def _check_finite_loss(loss: torch.Tensor, *, what: str, parts: dict[str, torch.Tensor], step: int,
                       ckpt_path: Path, last_saved: int) -> None:
    if bool(torch.isfinite(loss.detach())):
        return
    detail = ", ".join(f"{k}={v.item()!r}" for k, v in parts.items())
    raise TrainingDivergedError(
        f"training diverged at step {step}: the {what} is {loss.item()!r} ({detail}). {_kept(ckpt_path, last_saved)} "
        f"{_retry(ckpt_path)}"
    )


def _check_finite_weights(*modules: nn.Module | None, step: int, ckpt_path: Path, last_saved: int) -> None:
    for module in modules:
        if module is None:
            continue
        for name, tensor in module.state_dict().items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise TrainingDivergedError(
                    f"training diverged at step {step}: {type(module).__name__} weight {name!r} is not finite, so "
                    f"no checkpoint was written. {_kept(ckpt_path, last_saved)} {_retry(ckpt_path)}"
                )


def _retry(ckpt_path: Path) -> str:
    return (f"To retry, lower train.lr_d / train.lr_g (or raise train.tau_d / train.tau_c) and delete {ckpt_path.parent} "
            "first: resuming with the same settings would repeat the same steps.")


def _kept(ckpt_path: Path, last_saved: int) -> str:
    return kept_message(ckpt_path, last_saved, step0_path=ckpt_path.parent / STEP0_NAME)


def check_training_data(mels: torch.Tensor, labels: torch.Tensor, *, n_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate training clips; returns them as contiguous CPU float32 log-mels and int64 labels.

    Raises
    ------
    DataError
        Wrong shapes or dtypes, labels outside ``[0, n_classes)``, non-finite values, or mels
        outside the normalised range [-1, 1].
    """
    if isinstance(mels, np.ndarray):
        mels = torch.from_numpy(mels)
    if isinstance(labels, np.ndarray):
        labels = torch.from_numpy(labels)
    if not isinstance(mels, torch.Tensor) or mels.ndim != 3 or tuple(mels.shape[1:]) != (N_MELS, N_FRAMES):
        shape = tuple(mels.shape) if isinstance(mels, torch.Tensor) else type(mels).__name__
        raise DataError(f"mels must be a tensor of shape (N, {N_MELS}, {N_FRAMES}), got {shape}; pass the feature cache's normalised log-mels.")
    if not isinstance(labels, torch.Tensor) or labels.shape != (mels.shape[0],):
        shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise DataError(f"labels must be a tensor of shape ({mels.shape[0]},) matching mels, got {shape}.")
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 1:
        raise ConfigError(f"n_classes = {n_classes!r} must be a whole number >= 1.")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise DataError(f"labels must hold class indices (int64), got dtype {labels.dtype}.")
    labels = labels.detach().cpu().to(torch.int64)
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise DataError(f"labels must lie in [0, {n_classes}), got values in [{int(labels.min())}, {int(labels.max())}].")
    mels = mels.detach().cpu().to(torch.float32).contiguous()
    if mels.shape[0] < 1:
        raise DataError("mels holds no clips; the training set is empty.")
    if not bool(torch.isfinite(mels).all()):
        raise DataError("mels contains NaN or infinite values; rebuild the feature cache.")
    lo, hi = float(mels.min()), float(mels.max())
    if lo < -1.001 or hi > 1.001:
        raise DataError(f"mels must be normalised log-mels in [-1, 1], got values in [{lo:.3f}, {hi:.3f}]; pass occ.datasets.normalize_mel(log_mels).")
    return mels, labels


def data_digest(mels: torch.Tensor, labels: torch.Tensor) -> str:
    """A short hash of the training data (stored in checkpoints; resuming on other data is an error)."""
    h = hashlib.blake2b(digest_size=12)
    h.update(str(tuple(mels.shape)).encode())
    h.update(mels.detach().cpu().contiguous().numpy().tobytes())
    h.update(labels.detach().cpu().to(torch.int64).contiguous().numpy().tobytes())
    return h.hexdigest()


def module_digest(module: nn.Module) -> str:
    """A short hash of a module's state dict (identifies the frozen encoder a run was trained with)."""
    h = hashlib.blake2b(digest_size=12)
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _frozen_encoder(encoder: nn.Module | str | Path | None, *, device: torch.device, loss: str) -> nn.Module:
    if encoder is None:
        raise ConfigError(
            f"train.loss = {loss!r} needs the SupCon encoder f: pass encoder= (an Encoder or the path of "
            "encoder.pt written by the supcon stage: dvc repro supcon), or choose train.loss '2c', 'o2c' or 'none'."
        )
    if isinstance(encoder, (str, Path)):
        from occ.supcon_train import load_encoder

        encoder = load_encoder(encoder, device=device)
    encoder = encoder.to(device).eval()
    encoder.requires_grad_(False)
    return encoder


def _model_config(payload: dict, path: str | Path) -> ModelConfig:
    try:
        return ModelConfig(**payload["model"])
    except (KeyError, TypeError) as exc:
        raise CheckpointError(
            f"{path}: its architecture entry {payload.get('model')!r} does not match this version's ModelConfig "
            f"({exc}); rerun the train stage (dvc repro train@<variant>-<seed>)."
        ) from exc


def load_generator(path: str | Path, *, device: str | torch.device = "cpu", ema: bool = True) -> tuple[Generator, dict]:
    """Load G from a GAN checkpoint (``checkpoint.pt`` or ``step0.pt``), in eval mode.

    Parameters
    ----------
    path : str or Path
        The checkpoint.
    device : {"auto", "cpu", "cuda"} or torch.device
        Where to put G.
    ema : bool
        Load the EMA weights when the checkpoint has them (else G's own weights).

    Returns
    -------
    (Generator, dict)
        G (eval mode, no parameter gradients) and the checkpoint payload.

    Raises
    ------
    CheckpointError
        Missing, corrupt, or not a GAN checkpoint.
    """
    dev = resolve_device(device)
    payload = load_checkpoint(path, kind="gan")
    g = build_generator(_model_config(payload, path), n_classes=int(payload["n_classes"]))
    state = payload.get("g_ema") if ema and payload.get("g_ema") is not None else payload["g"]
    g.load_state_dict(state)
    g.to(dev).eval().requires_grad_(False)
    return g, payload


def load_discriminator(path: str | Path, *, device: str | torch.device = "cpu") -> tuple[Discriminator, dict]:
    """Load D from a GAN checkpoint, in eval mode; returns ``(Discriminator, payload)``.

    Raises
    ------
    CheckpointError
        Missing, corrupt, or not a GAN checkpoint.
    """
    dev = resolve_device(device)
    payload = load_checkpoint(path, kind="gan")
    d = build_discriminator(_model_config(payload, path), n_classes=int(payload["n_classes"]))
    d.load_state_dict(payload["d"])
    d.to(dev).eval().requires_grad_(False)
    return d, payload
