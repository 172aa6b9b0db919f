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
:data:`LOG_COLUMNS`). One step (the draws, the D and G updates, the EMA) is ``occ.train.gan_step``'s, the run
folder (lock, restart, device, rank-0 saving) ``occ.train.run_folder``'s, the step loop and its divergence check
``occ.train.step_loop``'s. :func:`train_for_stage` is the run of
:func:`train_gan` that the train stage (``occ.stages.train.train_stage``) and ``occ train`` make.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from occ.checkpoint import TrainLog
from occ.config import SUPCON_KINDS, ModelConfig, Params, TrainConfig, to_dict
from occ.data.checks import data_digest, module_digest
from occ.data.datasets import FeatureCache, normalize_mel
from occ.device import use_threads
from occ.errors import ConfigError
from occ.guard import gan_loss_bound, gan_weight_bound
from occ.nets.discriminator import Discriminator
from occ.nets.generator import Generator
from occ.nets.models import build_discriminator, initial_generator, load_encoder
from occ.paths import Layout
from occ.registry import stage_threads
from occ.seeding import derived_seed, make_generator
from occ.train.distributed import World, sync_batchnorm, wrap
from occ.train.gan_step import DForward, Nets, d_step, draw_step, ema_update, g_step
from occ.train.run_folder import Expect, checkpoint_payload, open_run, restore_run
from occ.train.step_loop import StepLoop

__all__ = ["LOG_COLUMNS", "TRAIN_MAY_DIFFER", "GANRun", "train_gan", "train_for_stage"]

#: Columns of ``log.csv``: hinge terms of D (real, fake, their sum), contrastive terms, G's
#: adversarial loss, D's accuracy on real (logit > 0) and fake (logit < 0) samples, what the contrastive numerator of
#: the D and the G step is made of (the class term's share ``mean_i(d2c_i / numerator_i)`` and the source term's
#: ``mean_i(d2s_i / numerator_i)``: :func:`occ.train.losses.contrastive_terms`; NaN where the loss has no such term),
#: the share of G's numerator held by anchors of the class asked for and the pull-to-push weight tau_d / tau_c times
#: it (:func:`occ.train.gan_step.anchored_share`), step time in s.
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
    "g_label_share",
    "g_pull_push",
    "seconds",
)
#: Training keys that may change when resuming (``steps`` to continue training).
TRAIN_MAY_DIFFER = ("steps", "ckpt_every", "bf16")
#: The settings a divergence message suspects, by the loss term or network that ran away (``occ.guard``), and whose
#: change its advice names (``occ.guard.remedy``): huge adversarial terms come from D's logits, so from D's weights;
#: G's output is bounded (tanh), so runaway G weights show in the weights, not the losses; a contrastive term is at
#: most ``w * (2 / min(tau_d, tau_c) + ln(2 * batch))`` (``occ.guard.contrastive_ceiling``).
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
        A loss or weight became NaN or infinite, or ran past the divergence guard's bounds (``occ.guard``);
        ``checkpoint.pt`` keeps the last state that passed the guard.
    """
    with open_run(out_dir, who="train_gan", device=device, progress=progress, checkpoint=CHECKPOINT_NAME, log=LOG_NAME,
                  columns=LOG_COLUMNS, on_config_change=on_config_change) as run:
        # the inputs, and what the run is: its seed, data and encoder, checked against the folder's checkpoint
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

        # the networks, their optimisers and the one seeded stream of draws, fresh or as the checkpoint left them
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

        # the steps: D then G (Eq. 6), the EMA, a log row; a checkpoint every train.ckpt_every steps and at the end
        autocast = (torch.autocast(device_type="cuda", dtype=torch.bfloat16) if train.bf16 and dev.type == "cuda"
                    else nullcontext())
        advice = (f"To retry, {{remedy}} and delete {run.out_dir} first: resuming with the same settings would repeat "
                  "the same steps.")
        postfix = lambda row: {"d_adv": f"{row['d_adv']:.3f}", "g_adv": f"{row['g_adv']:.3f}",  # noqa: E731
                               "d_con": f"{row['d_contrastive']:.3f}", "g_con": f"{row['g_contrastive']:.3f}"}
        with StepLoop(start=start, steps=train.steps, log=run.log, progress=run.progress, desc=f"GAN {train.loss}",
                      postfix=postfix, ckpt_every=train.ckpt_every, stop_after=stop_after, checkpoint=ckpt_path,
                      task="training", advice=advice, step0=step0_path, suspects=SUSPECTS,
                      watch={"G": g, "D": d, "EMA G": g_ema}, loss_bound=gan_loss_bound(train),
                      weight_bound=gan_weight_bound(train)) as loop:
            for step in loop:
                g.train()
                d.train()
                draws = draw_step(sampler, mels, labels, batch_size=train.batch_size, n_classes=n_classes,
                                  z_dim=g.z_dim, augment=train.augment, w=w, device=dev)
                row = d_step(nets, draws, train, autocast=autocast, check=loop.check_loss)
                row.update(g_step(nets, draws, train, autocast=autocast, check=loop.check_loss))
                if g_ema is not None:
                    ema_update(g_ema, g, decay=train.ema_decay, step=step)
                loop.record({"step": step, **w.mean(row)})
                if loop.checkpoint_due:
                    loop.check_before_saving(g, d, g_ema)
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
    is :func:`~occ.train.run_folder.restore_run`'s to load."""
    g = initial_generator(model, n_classes=n_classes, seed=seed)  # seeds every generator, then builds G
    d = build_discriminator(model, n_classes=n_classes, projection=train.d_projection)
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
                g_train=wrap(g, w, device), d_train=wrap(DForward(d), w, device))


def train_for_stage(layout: Layout, params: Params, cache: FeatureCache, *, variant: str, seed: int,
                    progress: bool | None = None) -> GANRun:
    """The train stage's run of ``variant`` and ``seed``: what ``occ.stages.train.train_stage`` and ``occ train``
    train.

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
    use_threads(stage_threads(params, "train"))
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
