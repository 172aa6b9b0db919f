"""Data parallelism for the trainers: one training over N processes started by ``torchrun``.

``torchrun --nproc_per_node N -m occ train ...`` (or any script calling a trainer) starts N processes; :func:`setup` reads torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``) and joins
the process group (NCCL on CUDA, gloo on the CPU). Without torchrun the world has one process and every
helper here is the identity, so a single-process run computes exactly what it computed before.

The rules that make a global step independent of N (docs/scale-out.md):

* **One seeded stream.** Every process draws the whole global batch (clip indices, ``z``, classes,
  augmentation parameters) from the same CPU generator and keeps its rows (:meth:`World.rows`), so the
  streams stay in step and a checkpoint's sampler state is the same on every rank.
* **Gradients** are averaged by :class:`torch.nn.parallel.DistributedDataParallel`; a per-process loss is
  a mean over the process's rows, so the average is the gradient of the global mean.
* **BatchNorm** in training mode normalises with the statistics of the global batch
  (:class:`SyncBatchNorm2d`, as BigGAN syncs them across devices): per-process statistics of B/N clips
  would make the run depend on N and add noise that grows with N.
* **Contrastive losses** need the whole batch: the embeddings are gathered (:func:`gather`, whose backward
  sums the gradients of every rank and keeps this rank's rows, as StudioGAN's gather layer does), and
  every rank computes the loss of the global batch.
* Logged numbers are means over the ranks (:meth:`World.mean`); rank 0 alone writes checkpoints (atomically),
  logs and progress bars; every rank resumes from the same checkpoint.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn

from occ.errors import ConfigError

__all__ = ["World", "setup", "world", "gather", "SyncBatchNorm2d", "sync_batchnorm", "wrap"]


@dataclass(frozen=True)
class World:
    """This process's place in the training: ``rank`` of ``size`` processes.

    Attributes
    ----------
    rank : int
        0 .. size - 1; rank 0 writes files.
    size : int
        Number of processes (1 without torchrun).
    local_rank : int
        Rank on this machine (the CUDA device index under torchrun).
    """

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """True on the process that writes checkpoints, logs and progress bars."""
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        """More than one process."""
        return self.size > 1

    def local_batch(self, batch_size: int, *, name: str = "train.batch_size") -> int:
        """The rows of a global batch each process takes; ``batch_size`` must divide by ``size``."""
        if batch_size % self.size:
            raise ConfigError(
                f"{name} = {batch_size} does not divide over {self.size} processes; choose a batch size that is "
                f"a multiple of --nproc_per_node ({self.size})."
            )
        return batch_size // self.size

    def rows(self, batch_size: int) -> slice:
        """This process's rows of a global batch of ``batch_size``."""
        b = self.local_batch(batch_size)
        return slice(self.rank * b, (self.rank + 1) * b)

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """Means over the processes of per-process numbers (the numbers themselves in one process)."""
        if not self.parallel:
            return values
        keys = sorted(values)
        t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=_comm_device())
        dist.all_reduce(t)
        return {k: float(v) / self.size for k, v in zip(keys, t.tolist())}

    def all_true(self, flag: bool) -> bool:
        """Whether ``flag`` holds on every process (the flag itself in one process)."""
        if not self.parallel:
            return flag
        t = torch.tensor([0 if flag else 1], dtype=torch.int64, device=_comm_device())
        dist.all_reduce(t)
        return int(t.item()) == 0

    def place(self, device: torch.device) -> torch.device:
        """This process's device: ``cuda:LOCAL_RANK`` for CUDA in a parallel run (whatever index ``device`` names),
        else ``device``."""
        return torch.device("cuda", self.local_rank) if self.parallel and device.type == "cuda" else device

    def barrier(self) -> None:
        """Wait for every process (nothing in one process)."""
        if self.parallel:
            dist.barrier()


_WORLD = World()


def world() -> World:
    """The world of this process (one process unless :func:`setup` joined a torchrun group)."""
    return _WORLD


def setup(device: torch.device) -> World:
    """Join torchrun's process group when the environment names one; returns this process's :class:`World`.

    Parameters
    ----------
    device : torch.device
        Where this process trains: CUDA uses NCCL, each process on ``cuda:LOCAL_RANK`` (made the current
        device, so ``"cuda"`` means that GPU; choose the GPUs with ``CUDA_VISIBLE_DEVICES``); the CPU uses gloo.

    Returns
    -------
    World
        ``World()`` (one process) when ``WORLD_SIZE`` is unset or 1.
    """
    global _WORLD
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return _WORLD
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))
    _WORLD = World(rank=dist.get_rank(), size=dist.get_world_size(), local_rank=int(os.environ.get("LOCAL_RANK", "0")))
    return _WORLD


def _comm_device() -> torch.device:
    if dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


class _Gather(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.rank, ctx.n = dist.get_rank(), x.shape[0]
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)  # every rank's loss depends on this rank's rows
        return grad[ctx.rank * ctx.n:(ctx.rank + 1) * ctx.n]


def gather(x: torch.Tensor) -> torch.Tensor:
    """The rows of every process concatenated in rank order (``x`` itself in one process), with gradients.

    Every process has the same number of rows. The backward pass sums the gradients of all ranks and keeps
    this rank's rows: with DDP's average over ranks, the gradient of a loss that every rank computes on the
    gathered batch equals the single-process gradient.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    return _Gather.apply(x)


class _AllReduceSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad


class SyncBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm whose training-mode statistics are those of the global batch over all processes.

    Works with gloo (the CPU) and NCCL. In one process, in eval mode, or outside a process group it is
    :class:`torch.nn.BatchNorm2d` exactly; the state dict is the same, so checkpoints load either way.
    The running variance is updated with the unbiased variance of the global batch, as BatchNorm does.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        c = x.shape[1]
        xf = x.to(torch.promote_types(x.dtype, torch.float32))  # bf16 under autocast: statistics in float32
        # Two passes, as BatchNorm itself: the mean of the global batch, then the mean squared deviation from it.
        local = torch.cat([xf.sum(dim=(0, 2, 3)), xf.new_full((1,), float(x.numel() // c))])
        total = _AllReduceSum.apply(local)
        count = total[-1]
        mean = total[:c] / count
        var = _AllReduceSum.apply(((xf - mean.view(1, c, 1, 1)) ** 2).sum(dim=(0, 2, 3))) / count
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * count / (count - 1), alpha=m)
        shape = (1, c, 1, 1)
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def sync_batchnorm(module: nn.Module) -> nn.Module:
    """Make every :class:`torch.nn.BatchNorm2d` in ``module`` a :class:`SyncBatchNorm2d` (in place; same state)."""
    for m in module.modules():
        if type(m) is nn.BatchNorm2d:
            m.__class__ = SyncBatchNorm2d
    return module


def wrap(module: nn.Module, w: World, device: torch.device) -> nn.Module:
    """``module`` in :class:`~torch.nn.parallel.DistributedDataParallel` when ``w`` is parallel, else itself.

    Buffers are not broadcast: the global-batch BatchNorm and the identical weights keep them equal on every
    rank. ``find_unused_parameters`` is on, since a variant may leave a parameter out of its loss (the
    hinge-only control leaves the class embeddings unused).
    """
    if not w.parallel:
        return module
    ids = [w.place(device).index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids, broadcast_buffers=False,
                                               find_unused_parameters=True)

