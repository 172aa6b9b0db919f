"""Source encoder f: a ResNet18 pretrained with SupCon on log-mels, and its augmentations.

Chung, Lee & Jung (DCASE 2023), Sec. 2.2: ``f(x_i)`` is the embedding of a ResNet18 pretrained with
the supervised contrastive loss (Khosla et al. 2020) using fade in/out and time masking as
augmentations, then fine-tuned for classification, and kept frozen while the GAN trains; it enters
the C-SupCon and OC-SupCon losses (Eq. 5) through the data-to-source term ``d2s_i``.

The network is SupContrast's CIFAR-style ResNet18 (3 x 3 stem, stride 1, no max-pool; stages of
width w, 2w, 4w, 8w with [2, 2, 2, 2] BasicBlocks and BatchNorm) for one-channel 80 x 344 input,
a global-average-pooled 8w feature, a projection head Linear(8w, 8w) - ReLU - Linear(8w, proj_dim)
whose output is L2-normalised, and a linear classification head for fine-tuning.
``stem="strided"`` is the cheaper stem of the embedded width, the stride-4 stem of the ImageNet
ResNet18 (stride-2 convolution, then 3 x 3 max-pool with stride 2), with the stride-2 convolution
written as a lossless 2 x 2 space-to-depth of the input followed by a 3 x 3 convolution; every stage
then runs on 20 x 86 instead of 80 x 344 (16x fewer positions).

Augmentations act on the time axis and are split into drawing the random parameters
(``draw_augment_params``, from a seeded ``torch.Generator``) and applying them (``apply_augment``),
so that a batch of views can be replayed exactly. Faded and masked regions are filled with the
normalised silence level -1 (the input lives in [-1, 1] with -1 = silence), not with 0, which would
be a mid-level sound in that space. The fade is linear, as ``torchaudio.transforms.Fade``'s default:
``apply_augment`` with no mask equals ``Fade(fade_in_len, fade_out_len)(x + 1) - 1``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from occ.device import resolve_device
from occ.errors import ConfigError, DataError

__all__ = [
    "SILENCE",
    "BasicBlock",
    "Encoder",
    "draw_augment_params",
    "apply_augment",
    "augment",
    "encode_mels",
    "classification_accuracy",
]

#: Normalised log-mel value of silence; fill value of faded and masked regions.
SILENCE = -1.0

_STEMS = ("cifar", "strided")


class BasicBlock(nn.Module):
    """ResNet BasicBlock: conv3x3 - BN - ReLU - conv3x3 - BN, plus a (1x1 conv - BN) shortcut; ReLU.

    Parameters
    ----------
    in_ch, out_ch : int
        Channels in and out.
    stride : int
        Stride of the first convolution and the shortcut.
    """

    def __init__(self, *, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map [shape=(N, in_ch, H, W)] to [shape=(N, out_ch, ceil(H / stride), ceil(W / stride))]."""
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return F.relu(h + self.shortcut(x))


class Encoder(nn.Module):
    """ResNet18 source encoder ``f`` with SupCon projection head and classification head.

    Parameters
    ----------
    n_classes : int
        Number of classes of the classification head.
    width : int
        Width ``w`` of the first stage (64 in ResNet18); the feature has ``8 * width`` dimensions.
    proj_dim : int
        Size of the normalised embedding (128; must equal the discriminator's ``proj_dim``).
    stem : {"cifar", "strided"}
        "cifar": 3 x 3 convolution, stride 1, no max-pool (SupContrast); "strided": 2 x 2
        space-to-depth, 3 x 3 convolution, 3 x 3 max-pool with stride 2 (total stride 4, as the
        ImageNet ResNet18 stem; about 16x cheaper).
    channels_last : bool
        Run the convolutions in channels-last memory format.
    """

    def __init__(
        self,
        *,
        n_classes: int,
        width: int = 64,
        proj_dim: int = 128,
        stem: str = "cifar",
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        if n_classes < 1:
            raise ConfigError(f"Encoder: n_classes={n_classes} must be >= 1.")
        if width < 1 or proj_dim < 1:
            raise ConfigError(f"Encoder: width={width} and proj_dim={proj_dim} must be >= 1.")
        if stem not in _STEMS:
            raise ConfigError(f"Encoder: stem={stem!r} is unknown; use one of {_STEMS}.")
        self.stem_kind = stem
        self.channels_last = channels_last
        in_ch = 4 if stem == "strided" else 1
        stem_layers: list[nn.Module] = [
            nn.Conv2d(in_ch, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
        ]
        if stem == "strided":
            stem_layers.append(nn.MaxPool2d(3, stride=2, padding=1))
        self.stem = nn.Sequential(*stem_layers)
        stages = []
        c_in = width
        for i, c_out in enumerate((width, 2 * width, 4 * width, 8 * width)):
            stride = 1 if i == 0 else 2
            stages.append(
                nn.Sequential(
                    BasicBlock(in_ch=c_in, out_ch=c_out, stride=stride),
                    BasicBlock(in_ch=c_out, out_ch=c_out),
                )
            )
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.feature_dim = 8 * width
        self.proj_dim = proj_dim
        self.projection = nn.Sequential(
            nn.Linear(self.feature_dim, self.feature_dim),
            nn.ReLU(),
            nn.Linear(self.feature_dim, proj_dim),
        )
        self.classifier = nn.Linear(self.feature_dim, n_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled ResNet18 features.

        Parameters
        ----------
        x : torch.Tensor [shape=(N, 1, 80, 344)]
            Normalised log-mels in [-1, 1].

        Returns
        -------
        torch.Tensor [shape=(N, 8 * width)]
        """
        if x.ndim != 4 or x.shape[1] != 1:
            raise DataError(
                f"Encoder: x must have shape (N, 1, n_mels, n_frames), got {tuple(x.shape)}."
            )
        if self.stem_kind == "strided":
            n, _, h, w = x.shape
            x = x[:, :, : h - h % 2, : w - w % 2]
            x = x.reshape(n, 1, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
            x = x.reshape(n, 4, h // 2, w // 2)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        h = self.stages(self.stem(x))
        return h.mean(dim=(2, 3))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """L2-normalised SupCon embedding ``f(x)`` [shape=(N, proj_dim)] of log-mels [shape=(N, 1, 80, 344)]."""
        return F.normalize(self.projection(self.features(x)), dim=1)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits [shape=(N, n_classes)] of log-mels [shape=(N, 1, 80, 344)] (fine-tuning)."""
        return self.classifier(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same as ``embed``."""
        return self.embed(x)


def draw_augment_params(
    n: int,
    *,
    n_frames: int = 344,
    generator: torch.Generator,
    max_fade: int | None = None,
    max_mask: int | None = None,
) -> dict[str, torch.Tensor]:
    """Draw per-sample fade-in/out and time-mask parameters.

    Parameters
    ----------
    n : int
        Number of samples.
    n_frames : int
        Length of the time axis.
    generator : torch.Generator
        Seeded CPU generator; the draw depends only on its state.
    max_fade : int, optional
        Longest fade in and fade out, in frames (default ``n_frames // 4``, 1 s at 344 frames).
    max_mask : int, optional
        Longest time mask, in frames (default ``n_frames // 8``, 0.5 s at 344 frames).

    Returns
    -------
    dict of str to torch.Tensor
        ``fade_in``, ``fade_out``, ``mask_start``, ``mask_len``: int64 [shape=(n,)], in frames
        (uniform in [0, max] for the lengths; the mask lies inside the clip), and ``n_frames``
        (a 0-d int64 tensor).
    """
    if n < 1 or n_frames < 1:
        raise ConfigError(f"draw_augment_params: n={n} and n_frames={n_frames} must be >= 1.")
    max_fade = n_frames // 4 if max_fade is None else int(max_fade)
    max_mask = n_frames // 8 if max_mask is None else int(max_mask)
    if not 0 <= max_fade <= n_frames or not 0 <= max_mask <= n_frames:
        raise ConfigError(
            f"draw_augment_params: max_fade={max_fade} and max_mask={max_mask} must lie in "
            f"[0, n_frames={n_frames}]."
        )
    fade_in = torch.randint(0, max_fade + 1, (n,), generator=generator)
    fade_out = torch.randint(0, max_fade + 1, (n,), generator=generator)
    mask_len = torch.randint(0, max_mask + 1, (n,), generator=generator)
    u = torch.rand(n, generator=generator, dtype=torch.float64)
    mask_start = torch.floor(u * (n_frames - mask_len + 1).double()).long()
    return {
        "fade_in": fade_in,
        "fade_out": fade_out,
        "mask_start": mask_start,
        "mask_len": mask_len,
        "n_frames": torch.tensor(n_frames, dtype=torch.int64),
    }


def apply_augment(
    x: torch.Tensor, params: dict[str, torch.Tensor], *, fill: float = SILENCE
) -> torch.Tensor:
    """Apply drawn fades and time masks on the last (time) axis of ``x``.

    Each sample is faded linearly towards ``fill`` over its first ``fade_in`` and last
    ``fade_out`` frames (``fill + (x - fill) * gain``), then frames
    ``[mask_start, mask_start + mask_len)`` are set to ``fill``.

    Parameters
    ----------
    x : torch.Tensor [shape=(N, ..., n_frames)]
        Normalised log-mels, e.g. (N, 1, 80, 344).
    params : dict of str to torch.Tensor
        Output of ``draw_augment_params`` for ``N`` samples and ``n_frames`` frames.
    fill : float
        Value of faded/masked regions: the normalised silence level -1.

    Returns
    -------
    torch.Tensor
        Augmented copy of ``x``, same shape and dtype.
    """
    keys = ("fade_in", "fade_out", "mask_start", "mask_len")
    missing = [k for k in keys if k not in params]
    if missing:
        raise ConfigError(
            f"apply_augment: params lacks {missing}; pass the dict from draw_augment_params."
        )
    n, t = x.shape[0], x.shape[-1]
    if params["fade_in"].shape != (n,):
        raise DataError(
            f"apply_augment: params were drawn for {params['fade_in'].shape[0]} samples but x "
            f"holds {n}; draw them with n={n}."
        )
    if "n_frames" in params and int(params["n_frames"]) != t:
        raise DataError(
            f"apply_augment: params were drawn for n_frames={int(params['n_frames'])} but x has "
            f"{t} frames on its last axis; draw them with n_frames={t}."
        )
    dev = x.device
    fade_in, fade_out, m0, ml = (params[k].to(dev).unsqueeze(1) for k in keys)  # (N, 1)
    frames = torch.arange(t, device=dev).unsqueeze(0)  # (1, T)
    one = torch.ones((), device=dev)
    # Linear ramps as torchaudio's Fade: linspace(0, 1, fade_in) and linspace(1, 0, fade_out).
    gain_in = torch.where(frames < fade_in, frames / (fade_in - 1).clamp(min=1), one)
    # (torchaudio's one-frame fade-out, 1 - linspace(0, 1, 1), leaves the frame untouched.)
    gain_out = torch.where(
        (frames >= t - fade_out) & (fade_out > 1), (t - 1 - frames) / (fade_out - 1).clamp(min=1), one
    )
    gain = (gain_in * gain_out).to(x.dtype)  # (N, T)
    masked = (frames >= m0) & (frames < m0 + ml)  # (N, T)
    view = (n,) + (1,) * (x.ndim - 2) + (t,)
    out = fill + (x - fill) * gain.view(view)
    return out.masked_fill(masked.view(view), fill)


def augment(x: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
    """Draw and apply one random fade in/out + time mask per sample (one SupCon view).

    Parameters
    ----------
    x : torch.Tensor [shape=(N, ..., n_frames)]
        Normalised log-mels.
    generator : torch.Generator
        Seeded CPU generator.

    Returns
    -------
    torch.Tensor
        Augmented copy of ``x``.
    """
    params = draw_augment_params(x.shape[0], n_frames=x.shape[-1], generator=generator)
    return apply_augment(x, params)


@torch.no_grad()
def encode_mels(
    encoder: Encoder,
    mels: torch.Tensor,
    *,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    which: str = "embed",
) -> torch.Tensor:
    """Embeddings of log-mels by a (frozen) encoder, in eval mode.

    Parameters
    ----------
    encoder : Encoder
        The encoder (moved to ``device``; its mode is restored afterwards).
    mels : torch.Tensor [shape=(N, 80, 344)]
        Normalised log-mels.
    batch_size : int
        Clips per forward pass.
    device : {"auto", "cpu", "cuda"} or torch.device
        Where to run.
    which : {"embed", "features", "logits"}
        The normalised SupCon embedding ``f(x)`` (N, proj_dim), the pooled backbone feature
        (N, 8 * width) or the class logits (N, n_classes).

    Returns
    -------
    torch.Tensor
        float32, on the CPU.
    """
    fn = {"embed": encoder.embed, "features": encoder.features, "logits": encoder.classify}.get(which)
    if fn is None:
        raise ValueError(f"encode_mels: which={which!r} is not 'embed', 'features' or 'logits'.")
    dev = resolve_device(device)
    was_training = encoder.training
    encoder.to(dev).eval()
    outs = []
    try:
        for start in range(0, mels.shape[0], batch_size):
            x = mels[start:start + batch_size].unsqueeze(1).to(dev, torch.float32)
            outs.append(fn(x).float().cpu())
    finally:
        encoder.train(was_training)
    return torch.cat(outs) if outs else torch.empty(0)


def classification_accuracy(
    encoder: Encoder,
    mels: torch.Tensor,
    labels: torch.Tensor,
    *,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
) -> float:
    """Fraction of clips whose arg-max class logit equals the label (eval mode): the fine-tuned encoder's accuracy, on
    the real clips' log-mels (the supcon stage) as on generated clips' (``occ.metrics.probe.encoder_accuracy``).

    Parameters
    ----------
    encoder : Encoder
        A fine-tuned encoder.
    mels : torch.Tensor [shape=(N, 80, 344)]
        Normalised log-mels.
    labels : torch.Tensor [shape=(N,)]
        Classes.
    batch_size : int
        Clips per forward pass.
    device : {"auto", "cpu", "cuda"} or torch.device
        Where to run.

    Returns
    -------
    float
        Accuracy in [0, 1].
    """
    logits = encode_mels(encoder, mels, batch_size=batch_size, device=device, which="logits")
    return int((logits.argmax(dim=1) == labels.cpu().long()).sum()) / len(labels)
