"""The training clips both trainers take: validation and the digests stored in checkpoints.

A checkpoint records a digest of the data it was trained on (:func:`data_digest`) and, for the SupCon GAN
losses, of the frozen encoder (:func:`module_digest`); resuming on other data or another encoder is an error.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
import torch.nn as nn

from occ.data.audio import N_FRAMES, N_MELS
from occ.errors import ConfigError, DataError

__all__ = ["check_training_data", "data_digest", "module_digest"]


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
        raise DataError(f"mels must be normalised log-mels in [-1, 1], got values in [{lo:.3f}, {hi:.3f}]; pass occ.data.datasets.normalize_mel(log_mels).")
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
