"""Building and loading the networks: G, D (``occ.train.gan_train`` trains them) and the encoder f (``occ.train.supcon_train``).

The layout of each network comes from ``model.preset`` (``occ.nets.layers.WIDTHS``: ``embedded`` or ``paper``)
with the widths and sizes of :class:`~occ.config.ModelConfig`. Checkpoints store that ``ModelConfig``, so a
loader rebuilds exactly the network that was trained (docs/reference.md, "Checkpoints").
"""

from __future__ import annotations

from collections.abc import Callable
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
    "d_projection_of",
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


def build_discriminator(model: ModelConfig, *, n_classes: int, projection: bool = False) -> Discriminator:
    """D of the architecture ``model``: ``WIDTHS[model.preset]`` with ``d_ch`` and ``proj_dim``; ``projection``
    (``train.d_projection``) adds the class term to D2, so that D reads the label (Eq. (1)'s ``D(x, c)``)."""
    kwargs = {**model_preset(model)["discriminator"], "ch": model.d_ch, "proj_dim": model.proj_dim,
              "projection": projection}
    return Discriminator(n_classes=n_classes, **kwargs)


def build_encoder(model: ModelConfig, *, n_classes: int) -> Encoder:
    """The encoder of the architecture ``model``: ``WIDTHS[model.preset]`` with ``enc_width``, ``enc_stem``, ``proj_dim``."""
    kwargs = {**model_preset(model)["encoder"], "width": model.enc_width, "proj_dim": model.proj_dim}
    if hasattr(model, "enc_stem"):
        kwargs["stem"] = model.enc_stem
    return Encoder(n_classes=n_classes, **kwargs)


#: What rebuilds each kind of checkpoint, named when its architecture entry no longer fits.
_RERUN = {"gan": "rerun the train stage (dvc repro train@<variant>-<seed>)",
          "encoder": "rerun the supcon stage (dvc repro supcon)"}


def _load_net(path: str | Path, *, kind: str, build: Callable[..., torch.nn.Module], key: str,
              device: str | torch.device, fallback: str | None = None,
              extra: Callable[[dict], dict] | None = None) -> tuple[torch.nn.Module, dict]:
    """The network ``build(model, n_classes=...)`` of a checkpoint of ``kind``, with the weights stored under ``key``
    (under ``fallback`` when ``key`` holds none), on ``device``, in eval mode without parameter gradients; and the
    checkpoint payload. ``extra(payload)`` gives further keyword arguments of ``build``."""
    dev = resolve_device(device)
    payload = load_checkpoint(path, kind=kind)
    try:
        model = ModelConfig(**{k: v for k, v in payload["model"].items() if k != "d_projection"})
    except (KeyError, TypeError) as exc:
        raise CheckpointError(
            f"{path}: its architecture entry {payload.get('model')!r} does not match this version's ModelConfig "
            f"({exc}); {_RERUN[kind]}."
        ) from exc
    net = build(model, n_classes=int(payload["n_classes"]), **extra(payload) if extra else {})
    net.load_state_dict(payload[key] if fallback is None or payload.get(key) is not None else payload[fallback])
    net.to(dev).eval().requires_grad_(False)
    return net, payload


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
    return _load_net(path, kind="gan", build=build_generator, key="g_ema" if ema else "g", fallback="g", device=device)


def load_discriminator(path: str | Path, *, device: str | torch.device = "cpu") -> tuple[Discriminator, dict]:
    """Load D from a GAN checkpoint, in eval mode; returns ``(Discriminator, payload)``.

    Raises
    ------
    CheckpointError
        Missing, corrupt, or not a GAN checkpoint.
    """
    return _load_net(path, kind="gan", build=build_discriminator, key="d", device=device,
                     extra=lambda payload: {"projection": d_projection_of(payload)})


def d_projection_of(payload: dict) -> bool:
    """Whether the D of a GAN checkpoint reads the label (``train.d_projection``; a checkpoint written before the
    setting moved to ``train`` keeps it in its architecture entry)."""
    return bool((payload.get("train") or {}).get("d_projection", (payload.get("model") or {}).get("d_projection", False)))


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
    enc, payload = _load_net(path, kind="encoder", build=build_encoder, key="encoder", device=device)
    enc.stage = payload.get("stage", "")
    return enc
