"""One GAN step of the trainer (Eq. 6, with PyTorch-StudioGAN's order, docs/reference.md section 6): the step's draws
from the one seeded stream (:func:`draw_step`), the D update (:func:`d_step`), the G update (:func:`g_step`) and the
EMA of G (:func:`ema_update`), on the networks and optimisers of a run (:class:`Nets`).

* D step: ``L_D = mean(relu(1 - D(x))) + mean(relu(1 + D(G(z, c')))) + w * l_C(h(D1(x)), c, e(c)[, f(x)])``
  (real data in the contrastive term, ``G(z, c')`` detached);
* G step: ``L_G = -mean(D(G(z, c))) + w * l_C(h(D1(G(z, c))), c, e(c)[, f(x_i)])`` with a new ``z``.

The run around the steps (checkpoints, resume, the log) is :mod:`occ.train.gan_train`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from occ.config import TrainConfig
from occ.data.audio import N_FRAMES, N_MELS
from occ.nets.discriminator import Discriminator
from occ.nets.generator import Generator
from occ.train.diffaugment import DAugmentParams, apply_d_augment, draw_d_augment
from occ.train.distributed import World, gather
from occ.train.losses import ContrastiveTerms, contrastive_terms, d_hinge_loss, g_hinge_loss

__all__ = ["anchored_share", "Nets", "Draws", "draw_step", "d_step", "g_step", "ema_update", "DForward"]


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


class DForward(nn.Module):
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
    :meth:`StepLoop.check_loss <occ.train.step_loop.StepLoop.check_loss>`). Returns the D half of the
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
    label_share = anchored_share(g_class_share, g_source_share, source_of_class=paired)
    return {"g_adv": g_adv.item(), "g_contrastive": g_con.item(), "g_class_share": g_class_share,
            "g_source_share": g_source_share, "g_label_share": label_share,
            "g_pull_push": train.tau_d / train.tau_c * label_share}


def anchored_share(class_share: float, source_share: float, *, source_of_class: bool) -> float:
    """The share of the contrastive numerator held by anchors of the class asked for: the class term, plus the
    source term where it is f of a real clip of that class (``source_of_class``: the G step under ``paired_real``,
    every D step). NaN where the loss has no class term (``"none"``); a loss without a source term adds nothing.

    Times ``tau_d / tau_c`` it is the weight of the pull toward those anchors against the push from the other
    samples in the gradient of the loss with respect to a sample's embedding (``g_pull_push`` in the log).
    """
    if source_of_class and source_share == source_share:  # not NaN
        return class_share + source_share
    return class_share


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
