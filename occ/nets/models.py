"""Building and loading the networks: G, D (``occ.train.gan_train`` trains them) and the encoder f (``occ.train.supcon_train``).

The layout of each network comes from ``model.preset`` (``occ.nets.layers.WIDTHS``: ``embedded`` or ``paper``)
with the widths and sizes of :class:`~occ.config.ModelConfig`. Checkpoints store that ``ModelConfig``, so a
loader rebuilds exactly the network that was trained (docs/reference.md, "Checkpoints").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from occ.checkpoint import load_checkpoint
from occ.config import ModelConfig
from occ.device import resolve_device
from occ.errors import CheckpointError, ConfigError
from occ.nets.discriminator import Discriminator
from occ.nets.encoder import Encoder
from occ.nets.generator import Generator
from occ.nets.layers import WIDTHS
from occ.seeding import seed_everything

__all__ = [
    "model_preset",
    "build_generator",
    "build_discriminator",
    "build_encoder",
    "load_generator",
    "load_discriminator",
    "load_encoder",
]


def model_preset(model: ModelConfig) -> dict[str, dict[str, Any]]:
    """The keyword arguments of G, D and the encoder for ``model.preset`` (``occ.nets.layers.WIDTHS``)."""
    preset = getattr(model, "preset", "embedded")
    if preset not in WIDTHS:
        raise ConfigError(f"model.preset = {preset!r} is not one of {sorted(WIDTHS)}.")
    return WIDTHS[preset]


def build_generator(model: ModelConfig, *, n_classes: int) -> Generator:
    """G of the architecture ``model``: the layout of ``WIDTHS[model.preset]`` with ``z_dim``, ``g_ch``, ``g_noise``."""
    kwargs = {**model_preset(model)["generator"], "ch": model.g_ch, "z_dim": model.z_dim, "noise": model.g_noise}
    return Generator(n_classes=n_classes, **kwargs)


def initial_generator(model: ModelConfig, *, n_classes: int, seed: int) -> Generator:
    """G as a training run of ``seed`` starts: seeded, then built (every variant of one seed starts from it).

    :func:`occ.train.gan_train.train_gan` builds its G with this function, so the step-0 generator depends only on
    the seed and the architecture: one evaluation of it (``04_step0``) serves every variant, and ``05_evaluate``
    checks each run's ``step0.pt`` against it.
    """
    seed_everything(seed)
    return build_generator(model, n_classes=n_classes)


def build_discriminator(model: ModelConfig, *, n_classes: int) -> Discriminator:
    """D of the architecture ``model``: ``WIDTHS[model.preset]`` with ``d_ch``, ``proj_dim``, ``d_projection``."""
    kwargs = {**model_preset(model)["discriminator"], "ch": model.d_ch, "proj_dim": model.proj_dim,
              "projection": model.d_projection}
    return Discriminator(n_classes=n_classes, **kwargs)


def build_encoder(model: ModelConfig, *, n_classes: int) -> Encoder:
    """The encoder of the architecture ``model``: ``WIDTHS[model.preset]`` with ``enc_width``, ``enc_stem``, ``proj_dim``."""
    kwargs = {**model_preset(model)["encoder"], "width": model.enc_width, "proj_dim": model.proj_dim}
    if hasattr(model, "enc_stem"):
        kwargs["stem"] = model.enc_stem
    return Encoder(n_classes=n_classes, **kwargs)


def _model_config(payload: dict, path: str | Path, *, rerun: str) -> ModelConfig:
    try:
        return ModelConfig(**payload["model"])
    except (KeyError, TypeError) as exc:
        raise CheckpointError(
            f"{path}: its architecture entry {payload.get('model')!r} does not match this version's ModelConfig "
            f"({exc}); {rerun}."
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
    model = _model_config(payload, path, rerun="rerun the train stage (dvc repro train@<variant>-<seed>)")
    g = build_generator(model, n_classes=int(payload["n_classes"]))
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
    model = _model_config(payload, path, rerun="rerun the train stage (dvc repro train@<variant>-<seed>)")
    d = build_discriminator(model, n_classes=int(payload["n_classes"]))
    d.load_state_dict(payload["d"])
    d.to(dev).eval().requires_grad_(False)
    return d, payload


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
    model = _model_config(payload, path, rerun="rerun the supcon stage (dvc repro supcon)")
    enc = build_encoder(model, n_classes=int(payload["n_classes"]))
    enc.load_state_dict(payload["encoder"])
    enc.stage = payload.get("stage", "")
    return enc.to(resolve_device(device)).eval().requires_grad_(False)
