"""GAN training for ContraGAN (2C), C-SupConGAN, O2C-GAN, OC-SupConGAN and a hinge-only control.

Chung, Lee & Jung (DCASE 2023), Eq. (6), with the step order of PyTorch-StudioGAN (docs/reference.md,
section 6): every iteration is one D step followed by one G step,

* D step: ``L_D = mean(relu(1 - D(x))) + mean(relu(1 + D(G(z, c')))) + w * l_C(h(D1(x)), c, e(c)[, f(x)])``
  (real data in the contrastive term, ``G(z, c')`` detached);
* G step: ``L_G = -mean(D(G(z, c))) + w * l_C(h(D1(G(z, c))), c, e(c)[, f(x_i)])`` with a new ``z``;

where ``l_C`` is 2C, C-SupCon, O2C (Eq. 3) or OC-SupCon (Eq. 5) (``occ.train.losses.contrastive_terms``) and
``w = train.contrastive_weight`` (1 in the paper); loss ``"none"`` drops the contrastive term. The
class embeddings ``e`` belong to D and are updated by D's optimiser only. ``f`` is the frozen
SupCon encoder (eval mode, no parameter gradients). The G step's source ``f(x_i)`` is read as
``train.d2s_source`` says: ``"generated"``, ``f(G(z, c))``, its gradient flowing through ``f`` into G; or
``"paired_real"``, ``f`` of the step's real clip ``x_i``, whose class the generated sample ``i`` takes
(docs/reference.md, section 6, sets out both readings).

Fake classes are drawn uniformly over the classes, real batches uniformly at random (with
replacement) from the training clips; every draw (real indices, ``z``, fake classes, D
augmentation) comes from one CPU ``torch.Generator`` whose state is saved in the checkpoints, so
draws are the same on CPU and CUDA and a resumed run is exact: on CPU a run stopped at step k and
resumed ends bit-identical to an uninterrupted one.

Files in ``out_dir``: ``step0.pt`` (the untrained models, written before the first step: the
"step 0" reference), ``checkpoint.pt`` (every ``train.ckpt_every`` steps and at the end, written
atomically; a diverged run never overwrites it) and ``log.csv`` (one row per step, see
:data:`LOG_COLUMNS`). The run set-up (lock, restart, device, rank-0 saving, the divergence check) is
``occ.train.run_setup``'s. :func:`train_stage` is the train stage's call of :func:`train_gan` (the one
``notebooks/03_train.ipynb`` and ``occ train`` make).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from occ.checkpoint import TrainLog
from occ.config import SUPCON_KINDS, ModelConfig, Params, TrainConfig, to_dict
from occ.data.audio import N_FRAMES, N_MELS
from occ.data.checks import data_digest, module_digest
from occ.data.datasets import FeatureCache, normalize_mel
from occ.device import use_threads
from occ.errors import ConfigError
from occ.nets.discriminator import Discriminator
from occ.nets.generator import Generator
from occ.nets.models import build_discriminator, initial_generator, load_encoder
from occ.paths import Layout
from occ.seeding import derived_seed, make_generator
from occ.train.diffaugment import DAugmentParams, apply_d_augment, draw_d_augment
from occ.train.distributed import World, gather, sync_batchnorm, wrap
from occ.train.losses import ContrastiveTerms, contrastive_terms, d_hinge_loss, g_hinge_loss
from occ.train.run_setup import Expect, StepLoop, checkpoint_payload, open_run, restore_run

__all__ = ["LOG_COLUMNS", "TRAIN_MAY_DIFFER", "GANRun", "Nets", "Draws", "draw_step", "train_gan", "train_stage",
           "d_step", "g_step", "ema_update"]

#: Columns of ``log.csv``: hinge terms of D (real, fake, their sum), contrastive terms, G's
#: adversarial loss, D's accuracy on real (logit > 0) and fake (logit < 0) samples, what the contrastive numerator of
#: the D and the G step is made of (the class term's share ``mean_i(d2c_i / numerator_i)`` and the source term's
#: ``mean_i(d2s_i / numerator_i)``: :func:`occ.train.losses.contrastive_terms`; NaN where the loss has no such term),
#: step time in s.
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
    "d_class_share",
    "d_source_share",
    "g_class_share",
    "g_source_share",
    "seconds",
)
#: Training keys that may change when resuming (``steps`` to continue training).
TRAIN_MAY_DIFFER = ("steps", "ckpt_every", "bf16")
#: The setting a divergence message suspects, by the loss term or network that ran away (``occ.train.guard``): huge
#: adversarial terms come from D's logits, so from D's weights; G's output is bounded (tanh), so runaway G weights
#: show in the weights, not the losses; a contrastive term is at most ``w * (1 / tau_d + 1 / tau_c + ln(2 * batch))``.
SUSPECTS = {"d_adv": "train.lr_d", "g_adv": "train.lr_d",
            "d_contrastive": "train.contrastive_weight, train.tau_d or train.tau_c",
            "g_contrastive": "train.contrastive_weight, train.tau_d or train.tau_c",
            "G": "train.lr_g", "EMA G": "train.lr_g", "D": "train.lr_d"}

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


@dataclass
class Nets:
    """The networks and optimisers of a GAN run.

    ``g`` and ``d`` are the networks themselves (checkpointed); ``g_train`` and ``d_train`` are what the
    updates call: the same networks, wrapped in DistributedDataParallel in a parallel run.
    """

    g: Generator
    d: Discriminator
    g_ema: Generator | None
    f: nn.Module | None
    g_optim: torch.optim.Optimizer
    d_optim: torch.optim.Optimizer
    g_train: nn.Module
    d_train: nn.Module


@dataclass
class Draws:
    """The random draws of one step, for this process's rows of the global batch.

    ``y_real`` and ``y_gen`` are kept whole (every process knows the classes of the global batch); the
    ``*_rows`` tensors are this process's rows. The augmentation parameters are ``None`` without
    ``train.augment``.
    """

    x_real: torch.Tensor
    y_real: torch.Tensor
    z_fake: torch.Tensor
    y_fake: torch.Tensor
    z_gen: torch.Tensor
    y_gen: torch.Tensor
    aug_real: DAugmentParams | None
    aug_fake: DAugmentParams | None
    aug_gen: DAugmentParams | None
    rows: slice


def draw_step(sampler: torch.Generator, mels: torch.Tensor, labels: torch.Tensor, *, batch_size: int,
              n_classes: int, z_dim: int, augment: bool, w: World, device: torch.device) -> Draws:
    """Draw a step's global batch from the one seeded stream, in a fixed order, and keep this process's rows.

    Order: real clip indices, ``z`` and classes of the D step's fakes, then (with ``augment``) the
    augmentation of the real and fake halves, then ``z`` and classes of the G step, then its augmentation.
    Every process draws the whole batch, so the stream and the checkpointed sampler state do not depend on
    the number of processes.
    """
    b, rows = batch_size, w.rows(batch_size)

    def aug() -> DAugmentParams | None:
        if not augment:
            return None
        p = draw_d_augment(b, height=N_MELS, width=N_FRAMES, generator=sampler)
        return replace(p, shift_f=p.shift_f[rows], shift_t=p.shift_t[rows], cut_f=p.cut_f[rows], cut_t=p.cut_t[rows])

    idx = torch.randint(0, mels.shape[0], (b,), generator=sampler)
    z_fake = torch.randn(b, z_dim, generator=sampler)
    y_fake = torch.randint(0, n_classes, (b,), generator=sampler)
    aug_real, aug_fake = aug(), aug()
    z_gen = torch.randn(b, z_dim, generator=sampler)
    y_gen = torch.randint(0, n_classes, (b,), generator=sampler)
    aug_gen = aug()
    return Draws(
        x_real=mels[idx[rows]].unsqueeze(1).to(device, non_blocking=True),
        y_real=labels[idx].to(device, non_blocking=True),
        z_fake=z_fake[rows].to(device, non_blocking=True),
        y_fake=y_fake.to(device, non_blocking=True),
        z_gen=z_gen[rows].to(device, non_blocking=True),
        y_gen=y_gen.to(device, non_blocking=True),
        aug_real=aug_real, aug_fake=aug_fake, aug_gen=aug_gen, rows=rows,
    )


class _DForward(nn.Module):
    """D's forward plus the class embeddings ``e(y_con)``, so that DDP sees every parameter the D step uses."""

    def __init__(self, d: Discriminator) -> None:
        super().__init__()
        self.d = d

    def forward(self, x: torch.Tensor, y: torch.Tensor, y_con: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.d(x, y)
        return out.logits, out.embedding, self.d.class_embedding(y_con)


def d_step(nets: Nets, draws: Draws, train: TrainConfig, *, autocast: Any,
           check: Callable[..., None]) -> dict[str, float]:
    """One update of D (and its class embeddings):
    ``L_D = mean(relu(1 - D(x))) + mean(relu(1 + D(G(z, c')))) + w * l_C(h(D1(x)), c, e(c)[, f(x)])``.

    The contrastive term is computed on the global batch (embeddings gathered over processes). ``check(L_D,
    what=..., parts=...)`` runs before the update and raises to stop the run (the trainer passes
    :meth:`StepLoop.stop_if_diverged <occ.train.run_setup.StepLoop.stop_if_diverged>`). Returns the D half of the
    log row, for this process's rows.
    """
    rows = draws.rows
    y_real, y_fake = draws.y_real[rows], draws.y_fake[rows]
    nets.d.requires_grad_(True)
    with autocast:
        with torch.no_grad():
            x_fake = nets.g(draws.z_fake, y_fake).float()
        d_in_real, d_in_fake = draws.x_real, x_fake
        if train.augment:
            d_in_real = apply_d_augment(draws.x_real, draws.aug_real)
            d_in_fake = apply_d_augment(x_fake, draws.aug_fake)
        logits, embedding, class_emb = nets.d_train(torch.cat([d_in_real, d_in_fake]), torch.cat([y_real, y_fake]),
                                                    y_real)
        n = y_real.shape[0]
        real_logits, fake_logits = logits[:n].float(), logits[n:].float()
        d_adv = d_hinge_loss(real_logits, fake_logits)
        d_con, d_class_share, d_source_share = _contrastive_term(nets, train, embedding[:n], draws.y_real, class_emb,
                                                                 draws.x_real, through_f=False)
        d_loss = d_adv + train.contrastive_weight * d_con
    check(d_loss, what="discriminator loss L_D", parts={"d_adv": d_adv, "d_contrastive": d_con})
    nets.d_optim.zero_grad(set_to_none=True)
    d_loss.backward()
    nets.d_optim.step()
    with torch.no_grad():
        return {
            "d_loss_real": F.relu(1.0 - real_logits).mean().item(),
            "d_loss_fake": F.relu(1.0 + fake_logits).mean().item(),
            "d_adv": d_adv.item(),
            "d_contrastive": d_con.item(),
            "d_acc_real": (real_logits > 0).float().mean().item(),
            "d_acc_fake": (fake_logits < 0).float().mean().item(),
            "d_class_share": d_class_share,
            "d_source_share": d_source_share,
        }


def g_step(nets: Nets, draws: Draws, train: TrainConfig, *, autocast: Any,
           check: Callable[..., None]) -> dict[str, float]:
    """One update of G: ``L_G = -mean(D(G(z, c))) + w * l_C(h(D1(G(z, c))), c, e(c)[, f(x_i)])``.

    D and e are not updated here (their parameters stop requiring gradients). The source term of the SupCon losses
    reads ``f(x_i)`` as ``train.d2s_source`` says: ``"generated"``, ``f(G(z, c))``, the gradient flowing through the
    frozen ``f`` into G, with the step's own drawn classes ``c``; ``"paired_real"``, ``f`` of the step's real clips
    ``x_i`` (no gradient), the generated batch taking their classes (``c_i`` of ``x_i``; the drawn classes are drawn
    all the same, so the seeded stream is the one of ``"generated"``). ``check`` as in :func:`d_step`. Returns the G
    half of the log row.
    """
    paired = train.d2s_source == "paired_real"
    labels = draws.y_real if paired else draws.y_gen  # the global batch's classes
    y = labels[draws.rows]
    nets.d.requires_grad_(False)  # D (and e) are updated by D's optimiser only
    with autocast:
        x_gen = nets.g_train(draws.z_gen, y).float()
        d_in = apply_d_augment(x_gen, draws.aug_gen) if train.augment else x_gen
        out = nets.d(d_in, y)
        g_adv = g_hinge_loss(out.logits.float())
        g_con, g_class_share, g_source_share = _contrastive_term(
            nets, train, out.embedding, labels, nets.d.class_embedding(y), draws.x_real if paired else x_gen,
            through_f=not paired)
        g_loss = g_adv + train.contrastive_weight * g_con
    check(g_loss, what="generator loss L_G", parts={"g_adv": g_adv, "g_contrastive": g_con})
    nets.g_optim.zero_grad(set_to_none=True)
    g_loss.backward()
    nets.g_optim.step()
    nets.d.requires_grad_(True)
    return {"g_adv": g_adv.item(), "g_contrastive": g_con.item(), "g_class_share": g_class_share,
            "g_source_share": g_source_share}


def _contrastive_term(nets: Nets, train: TrainConfig, embedding: torch.Tensor, labels: torch.Tensor,
                      class_emb: torch.Tensor, x: torch.Tensor, *, through_f: bool) -> ContrastiveTerms:
    """The contrastive term ``l_C(h(D1(x)), c, e(c)[, f(x)])`` of a D or G step, on the global batch, and its class
    and source terms' shares of the numerator (a zero loss and NaN shares for loss ``"none"``).

    ``embedding`` (h) and ``class_emb`` (e(c)) hold this process's rows, ``labels`` the classes of the global batch,
    ``x`` this process's clips for the frozen encoder f (SupCon losses). The gradient flows through f only when
    ``through_f`` (the G step's ``f(G(z, c))``, which depends on G).
    """
    if train.loss == "none":
        return ContrastiveTerms(torch.zeros((), device=embedding.device), float("nan"), float("nan"))
    source = None
    if nets.f is not None:
        with nullcontext() if through_f else torch.no_grad():
            source = gather(nets.f.embed(x).float())
    return contrastive_terms(
        gather(embedding.float()), labels, gather(class_emb.float()),
        kind=train.loss, tau_d=train.tau_d, tau_c=train.tau_c, source_emb=source,
    )


@torch.no_grad()
def ema_update(g_ema: nn.Module, g: nn.Module, *, decay: float, step: int) -> None:
    """EMA of G's parameters with a warm-up, ``min(decay, (1 + step) / (10 + step))``; buffers copied.

    The warm-up (as in TensorFlow's ``ExponentialMovingAverage(num_updates=...)``) keeps short runs
    from averaging in the untrained initial weights.
    """
    beta = min(decay, (1.0 + step) / (10.0 + step))
    for p_ema, p in zip(g_ema.parameters(), g.parameters()):
        p_ema.lerp_(p.detach(), 1.0 - beta)
    for b_ema, b in zip(g_ema.buffers(), g.buffers()):
        b_ema.copy_(b)


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
        A loss or weight became NaN or infinite, or ran past the divergence guard's bounds (``occ.train.guard``);
        ``checkpoint.pt`` keeps the last state that passed the guard.
    """
    with open_run(out_dir, who="train_gan", device=device, progress=progress, checkpoint=CHECKPOINT_NAME, log=LOG_NAME,
                  columns=LOG_COLUMNS, on_config_change=on_config_change) as run:
        mels, labels = run.check_inputs(mels, labels, n_classes=n_classes, configs=(model, train))
        w, dev, ckpt_path = run.w, run.device, run.checkpoint
        w.local_batch(train.batch_size)
        f = _frozen_encoder(encoder, device=dev, loss=train.loss) if train.loss in SUPCON_KINDS else None
        step0_path = run.out_dir / STEP0_NAME
        run_info = {
            "seed": int(seed),
            "n_clips": int(mels.shape[0]),
            "data_digest": data_digest(mels, labels),
            "encoder_digest": module_digest(f) if f is not None else "",
        }
        payload = run.load_checkpoint(  # validate before building anything
            kind="gan", model=model, n_classes=n_classes, folder="run folder", missing_ok=True,
            expect_train=to_dict(train), train_may_differ=TRAIN_MAY_DIFFER,
            checks=[Expect("run", run_info, "run (seed, training data, encoder)")],
        )

        sampler = make_generator(derived_seed(seed, 1))
        nets = _build_nets(model, train, n_classes=n_classes, seed=seed, payload=payload, f=f, w=w, device=dev)
        g, d, g_ema = nets.g, nets.d, nets.g_ema

        def checkpoint_at(step: int) -> dict[str, Any]:
            return checkpoint_payload(
                "gan", model=model, train=train, run=run_info, step=step, sampler=sampler,
                n_classes=int(n_classes),
                class_names=list(class_names) if class_names is not None else None,
                g=g.state_dict(),
                d=d.state_dict(),
                g_ema=g_ema.state_dict() if g_ema is not None else None,
                g_optim=nets.g_optim.state_dict(),
                d_optim=nets.d_optim.state_dict(),
            )

        start, resumed_from = restore_run(payload, log=run.log, sampler=sampler,
                                          optimizers={"g_optim": nets.g_optim, "d_optim": nets.d_optim})
        if payload is None:
            run.save(step0_path, lambda: checkpoint_at(0))
        del payload

        autocast = (torch.autocast(device_type="cuda", dtype=torch.bfloat16) if train.bf16 and dev.type == "cuda"
                    else nullcontext())
        advice = (f"To retry, lower train.lr_d / train.lr_g (or raise train.tau_d / train.tau_c) and delete "
                  f"{run.out_dir} first: resuming with the same settings would repeat the same steps.")
        postfix = lambda row: {"d_adv": f"{row['d_adv']:.3f}", "g_adv": f"{row['g_adv']:.3f}",  # noqa: E731
                               "d_con": f"{row['d_contrastive']:.3f}", "g_con": f"{row['g_contrastive']:.3f}"}
        with StepLoop(start=start, steps=train.steps, log=run.log, progress=run.progress, desc=f"GAN {train.loss}",
                      postfix=postfix, ckpt_every=train.ckpt_every, stop_after=stop_after, checkpoint=ckpt_path,
                      task="training", advice=advice, step0=step0_path, suspects=SUSPECTS,
                      watch={"G": g, "D": d, "EMA G": g_ema}) as loop:
            for step in loop:
                g.train()
                d.train()
                draws = draw_step(sampler, mels, labels, batch_size=train.batch_size, n_classes=n_classes,
                                  z_dim=g.z_dim, augment=train.augment, w=w, device=dev)
                row = d_step(nets, draws, train, autocast=autocast, check=loop.stop_if_diverged)
                row.update(g_step(nets, draws, train, autocast=autocast, check=loop.stop_if_diverged))
                if g_ema is not None:
                    ema_update(g_ema, g, decay=train.ema_decay, step=step)
                loop.record({"step": step, **w.mean(row)})
                if loop.checkpoint_due:
                    loop.check_weights(g, d, g_ema)
                    run.save(ckpt_path, lambda: checkpoint_at(step))
                    loop.saved()
        done = loop.done()
        g.eval()
        d.eval()
        return GANRun(
            out_dir=run.out_dir,
            checkpoint_path=ckpt_path,
            step0_path=step0_path,
            log_path=run.out_dir / LOG_NAME,
            step=done.step,
            steps=train.steps,
            finished=done.finished,
            resumed_from=resumed_from,
            seconds=done.seconds,
            generator=g_ema if g_ema is not None else g,
            discriminator=d,
        )


def _build_nets(model: ModelConfig, train: TrainConfig, *, n_classes: int, seed: int,
                payload: Mapping[str, Any] | None, f: nn.Module | None, w: World, device: torch.device) -> Nets:
    """G (seeded: :func:`~occ.nets.models.initial_generator`), D, the EMA copy of G and their optimisers, with the
    weights of ``payload`` when resuming, placed on ``device`` and wrapped for a parallel run. The optimisers' state
    is :func:`~occ.train.run_setup.restore_run`'s to load."""
    g = initial_generator(model, n_classes=n_classes, seed=seed)  # seeds every generator, then builds G
    d = build_discriminator(model, n_classes=n_classes)
    g_ema = copy.deepcopy(g) if train.ema_decay > 0 else None
    if payload is not None:
        g.load_state_dict(payload["g"])
        d.load_state_dict(payload["d"])
        if g_ema is not None:
            g_ema.load_state_dict(payload["g_ema"])
    for module in (g, d, g_ema):
        if module is not None:
            module.to(device)
    if g_ema is not None:
        g_ema.eval().requires_grad_(False)
    if w.parallel:
        sync_batchnorm(g)  # BatchNorm over the global batch, as in one process
    g_optim = torch.optim.Adam(g.parameters(), lr=train.lr_g, betas=(train.beta1, train.beta2))
    d_optim = torch.optim.Adam(d.parameters(), lr=train.lr_d, betas=(train.beta1, train.beta2))
    return Nets(g=g, d=d, g_ema=g_ema, f=f, g_optim=g_optim, d_optim=d_optim,
                g_train=wrap(g, w, device), d_train=wrap(_DForward(d), w, device))


def train_stage(layout: Layout, params: Params, cache: FeatureCache, *, variant: str, seed: int,
                progress: bool | None = None) -> GANRun:
    """The train stage's run of ``variant`` and ``seed``: the call of ``notebooks/03_train.ipynb`` and ``occ train``.

    :func:`train_gan` on the training clips of ``cache`` (normalised), with ``params.model``, ``params.train`` and
    ``params.device``, on ``params.train.threads`` torch threads, into ``layout.train_run(variant, seed)``, with the encoder f of the supcon stage
    (``runs/supcon/encoder.pt``, read by the SupCon losses only). A changed configuration starts a fresh run
    there (``on_config_change="restart"``); an unchanged one resumes.

    Parameters
    ----------
    layout : Layout
        The project's folders.
    params : Params
        ``params.yaml`` loaded for ``variant``.
    cache : FeatureCache
        The log-mel feature cache (``params.data.cache``).
    variant : str
        The variant's name (its run folder).
    seed : int
        The training seed.
    progress : bool, optional
        Show a progress bar; default: when stderr is a terminal.

    Returns
    -------
    GANRun
    """
    params.check_seed(seed)
    use_threads(params.train.threads)
    clips = cache.train()
    return train_gan(normalize_mel(clips.mels), clips.labels, n_classes=len(cache.class_names), model=params.model,
                     train=params.train, out_dir=layout.train_run(variant, seed), seed=seed, device=params.device,
                     encoder=layout.supcon_run / "encoder.pt", class_names=cache.class_names, progress=progress,
                     on_config_change="restart")


def _frozen_encoder(encoder: nn.Module | str | Path | None, *, device: torch.device, loss: str) -> nn.Module:
    if encoder is None:
        raise ConfigError(
            f"train.loss = {loss!r} needs the SupCon encoder f: pass encoder= (an Encoder or the path of "
            "encoder.pt written by the supcon stage: dvc repro supcon), or choose train.loss '2c', 'o2c' or 'none'."
        )
    if isinstance(encoder, (str, Path)):
        encoder = load_encoder(encoder, device=device)
    encoder = encoder.to(device).eval()
    encoder.requires_grad_(False)
    return encoder
