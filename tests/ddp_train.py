"""Trainings under torchrun for tests/test_distributed.py (a helper, not a test module).

``python -m torch.distributed.run --standalone --nproc_per_node 2 tests/ddp_train.py JOB [JOB ...]`` runs the
jobs in order, each ``KIND,OUT,STEPS[,STOP_AFTER[,ENCODER]]``: KIND is a GAN loss (``o2c``, ``ocsupcon``, ...;
``ocsupcon_paired`` is ``ocsupcon`` with ``d2s_source: paired_real``),
``supcon`` (SupCon pretraining), ``machinery`` (float64 checks of the gather and the global-batch BatchNorm,
written to OUT) or ``diverge`` (an o2c run whose loss is NaN on rank 1 only; each rank writes its error message
to ``OUT.<rank>``). The data and configurations are those of :func:`smoke_setup`, so a one-process run in the
test sees the same clips.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from occ.config import ModelConfig, SupConConfig, TrainConfig

MODEL = ModelConfig(g_ch=4, d_ch=4, enc_width=8, proj_dim=8)


def smoke_setup(kind: str, steps: int) -> tuple[torch.Tensor, torch.Tensor, TrainConfig | SupConConfig]:
    """24 random clips of 3 classes and the configuration of a batch-16 run of ``steps`` steps."""
    gen = torch.Generator().manual_seed(5)
    mels = torch.rand(24, 80, 344, generator=gen) * 2 - 1
    labels = torch.arange(24) % 3
    if kind == "supcon":
        cfg = SupConConfig(steps=steps, batch_size=16, lr=3e-3, temperature=0.1, finetune_steps=4, finetune_lr=1e-2,
                           ckpt_every=2)
    else:
        loss, _, reading = kind.partition("_")
        cfg = TrainConfig(loss=loss, steps=steps, batch_size=16, ckpt_every=2, augment=True, ema_decay=0.999,
                          d2s_source="paired_real" if reading == "paired" else "generated")
    return mels, labels, cfg


def run(kind: str, out: str, steps: int, stop_after: int | None = None, encoder: str | None = None) -> None:
    """Train ``kind`` in ``out`` (resuming when it holds a checkpoint)."""
    mels, labels, cfg = smoke_setup(kind, steps)
    if kind == "supcon":
        from occ.train.supcon_train import pretrain_supcon

        pretrain_supcon(mels, labels, n_classes=3, model=MODEL, cfg=cfg, out_dir=out, seed=1, progress=False,
                        stop_after=stop_after)
    else:
        from occ.train.gan_train import train_gan

        train_gan(mels, labels, n_classes=3, model=MODEL, train=cfg, out_dir=out, seed=2, encoder=encoder,
                  progress=False, stop_after=stop_after)


def machinery_reference() -> tuple[torch.Tensor, torch.nn.Module]:
    """Inputs (8 rows) and a float64 conv + BatchNorm net whose loss needs the whole batch."""
    torch.manual_seed(0)
    x = torch.randn(8, 2, 3, 4, dtype=torch.float64)
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 1), torch.nn.BatchNorm2d(3)).double()
    return x, net


def machinery_loss(net: torch.nn.Module, x: torch.Tensor, gather=lambda t: t) -> torch.Tensor:
    """A loss of the global batch: softmax over all pairs of rows of the pooled features (as a contrastive loss)."""
    h = gather(net(x).mean(dim=(2, 3)))
    return torch.logsumexp(h @ h.T, dim=1).mean() + (h ** 2).mean()


def machinery(out: str) -> None:
    """Gradients and running statistics of :func:`machinery_loss` over 2 processes (rank 0 writes them)."""
    import torch.distributed as dist

    from occ.train.distributed import gather, setup, sync_batchnorm, wrap

    w = setup(torch.device("cpu"))
    x, net = machinery_reference()
    sync_batchnorm(net)
    ddp = wrap(net, w, torch.device("cpu"))
    loss = machinery_loss(ddp, x[w.rows(8)], gather)
    loss.backward()
    if w.main:
        bn = net[1]
        Path(out).write_text(json.dumps({
            "loss": loss.item(), "grads": {n: p.grad.tolist() for n, p in net.named_parameters()},
            "running_mean": bn.running_mean.tolist(), "running_var": bn.running_var.tolist(),
        }))
    dist.barrier()


def diverge(out: str, steps: int) -> None:
    """Train o2c for ``steps`` steps with a NaN contrastive loss on rank 1 in the D step of the last step: every rank
    must stop there (the divergence check agrees over the processes); each writes its message to ``OUT.<rank>``."""
    import occ.train.gan_step as gan_step
    from occ.errors import TrainingDivergedError
    from occ.train.distributed import setup

    w = setup(torch.device("cpu"))
    real, calls = gan_step.contrastive_terms, []

    def poisoned(*args, **kwargs):  # two calls per step (D, G)
        calls.append(1)
        terms = real(*args, **kwargs)
        return terms._replace(loss=terms.loss * float("nan")) if w.rank == 1 and len(calls) == 2 * steps - 1 else terms

    gan_step.contrastive_terms = poisoned
    try:
        run("o2c", out, steps)
        message = "no error"
    except TrainingDivergedError as exc:
        message = str(exc)
    finally:
        gan_step.contrastive_terms = real
    Path(f"{out}.{w.rank}").write_text(message)


if __name__ == "__main__":
    torch.set_num_threads(1)
    for job in sys.argv[1:]:
        kind, out, *rest = job.split(",")
        if kind == "machinery":
            machinery(out)
            continue
        if kind == "diverge":
            diverge(out, int(rest[0]))
            continue
        steps = int(rest[0])
        stop_after = int(rest[1]) if len(rest) > 1 and rest[1] else None
        run(kind, out, steps, stop_after, rest[2] if len(rest) > 2 else None)
