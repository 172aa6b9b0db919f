"""Which device a run uses: ``params.yaml: device`` turned into a ``torch.device``, in one place.

:func:`check_device` is the one check of its spelling (``occ.config`` validates ``params.yaml`` with it); torch is
imported only where a device is resolved, so the check costs nothing.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

from occ.errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = ["resolve_device", "check_device", "use_threads", "torch_threads", "DEVICE_CHOICES", "DEVICE_PATTERN"]

DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N")
#: Every accepted spelling of ``params.yaml: device`` (``cuda:N``: GPU N, counted from 0 as ``nvidia-smi`` does).
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(?::(0|[1-9][0-9]*))?")


def check_device(device: str, *, given: object = None) -> re.Match:
    """The match of ``device`` against :data:`DEVICE_PATTERN` (group 1: the GPU index of ``cuda:N``).

    Raises
    ------
    ConfigError
        Not an accepted spelling; the message names the value (``given``, default ``device``) and where to fix it.
    """
    match = DEVICE_PATTERN.fullmatch(device)
    if match is None:
        raise ConfigError(f"device = {device if given is None else given!r} is not one of {list(DEVICE_CHOICES)} (N: "
                          "a GPU index, 0 first); fix `device` in params.yaml (or the experiment's `-S device=...`).")
    return match


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (``params.yaml: device``) into a ``torch.device``.

    ``"cuda:N"`` also makes GPU N torch's current device, so code that asks for plain ``"cuda"`` lands there
    too: a queued experiment run with ``-S device=cuda:1`` uses GPU 1 only (docs/grid.md).

    Parameters
    ----------
    device : {"auto", "cpu", "cuda", "cuda:N"} or torch.device
        ``"auto"`` picks CUDA when present, else the CPU; ``"cuda"`` is torch's current GPU (GPU 0 unless set);
        ``"cuda:N"`` is GPU N.

    Returns
    -------
    torch.device

    Raises
    ------
    ConfigError
        An unknown name (naming ``device``), CUDA asked for on a machine without a usable CUDA device, or a
        GPU index the machine does not have.
    """
    import torch

    name = str(device) if isinstance(device, torch.device) else str(device).strip().lower()
    match = check_device(name, given=device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError(
            f"device = {device!r} but no CUDA device is available; set `device: auto` or `device: cpu` in params.yaml "
            "(or queue the experiment with `-S device=cpu`)."
        )
    if match.group(1) is None:
        return torch.device("cuda")
    index, count = int(match.group(1)), torch.cuda.device_count()
    if index >= count:
        raise ConfigError(
            f"device = {device!r} but this machine has {count} CUDA device(s) (cuda:0 to cuda:{count - 1}); "
            f"set `device` in params.yaml (or the experiment's `-S device=...`) to one of them, or to `cuda`."
        )
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def use_threads(threads: int) -> int:
    """Run torch's CPU kernels of this process on ``threads`` threads (``params.yaml``: ``train.threads`` etc.).

    A stage's numbers depend on its thread count (the kernels split their sums by thread), so every stage sets the
    count it declares instead of taking the machine's cores: the same machine then gives the same bytes whether
    one stage runs at a time (``dvc repro``) or several (``occ repro``).

    Parameters
    ----------
    threads : int
        At least 1.

    Returns
    -------
    int
        ``threads``.
    """
    import torch

    if int(threads) < 1:
        raise ConfigError(f"threads = {threads!r} must be at least 1; fix the `threads` key in params.yaml.")
    torch.set_num_threads(int(threads))
    return int(threads)


@contextmanager
def torch_threads(threads: int) -> Iterator[int]:
    """:func:`use_threads` for a block: torch's thread count is ``threads`` inside it and what it was after it.

    For code that computes what a stage computes but runs inside another program (``occ generate`` called as
    ``occ.cli.main.main([...])``), so the caller's thread count is left as it was.
    """
    import torch

    before = torch.get_num_threads()
    try:
        yield use_threads(threads)
    finally:
        torch.set_num_threads(before)
