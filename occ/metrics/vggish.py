"""VGGish (Hershey et al. 2017), the embedding network of the DCASE 2023 Task 7 FAD (docs/reference.md, section 4).

VGG-like: 3x3 convolutions 64 | 128 | 256, 256 | 512, 512 with ReLU, 2x2 max-pools after each stage,
on a (1, 96, 64) log-mel example; the (512, 6, 4) map is flattened in TensorFlow's channels-last
order and passed through fully connected layers 12288 -> 4096 -> 4096 -> 128. The FAD uses the
128-d PRE-activation of the last layer (``vggish/embedding``): no final ReLU, no PCA, no quantisation.

Weights: the PyTorch port of the TF checkpoint, ``vggish-10086976.pth`` from the torchvggish releases,
whose keys are ``features.{0,3,6,8,11,13}.{weight,bias}`` and ``embeddings.{0,2,4}.{weight,bias}`` (the
module layout below keeps those indices). Not on PyPI: from a path, or downloaded once when online.
"""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import torch
from torch import nn

from occ.atomic import atomic_open
from occ.checkpoint import check_finite_state
from occ.errors import CheckpointError, WeightsNotFoundError

__all__ = ["VGGISH_URL", "VGGISH_FILE", "VGGish", "cache_dir", "load_vggish"]

VGGISH_URL = "https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish-10086976.pth"
VGGISH_FILE = "vggish-10086976.pth"


def cache_dir() -> Path:
    """Download cache: ``$OCC_CACHE`` or ``~/.cache/occ``."""
    return Path(os.environ.get("OCC_CACHE") or Path.home() / ".cache" / "occ")


class VGGish(nn.Module):
    """VGGish network; ``forward`` returns the 128-d pre-activation embedding."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for spec in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M"):
            if spec == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c_in, int(spec), 3, 1, 1), nn.ReLU(inplace=True)]
                c_in = int(spec)
        self.features = nn.Sequential(*layers)  # conv indices 0, 3, 6, 8, 11, 13
        self.embeddings = nn.Sequential(
            nn.Linear(512 * 6 * 4, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, 128),  # no final ReLU: the FAD embedding is the pre-activation
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed log-mel examples.

        Parameters
        ----------
        x : torch.Tensor [shape=(N, 96, 64) or (N, 1, 96, 64)]
            VGGish examples (frames x mel bands), e.g. :func:`occ.metrics.vggish_frontend.dcase_vggish_examples`.

        Returns
        -------
        torch.Tensor [shape=(N, 128)]
        """
        if x.ndim == 3:
            x = x[:, None]
        x = self.features(x)  # (N, 512, 6, 4)
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # channels-last flatten, as TF
        return self.embeddings(x)


def _download(dest: Path, *, timeout: float) -> None:
    """Fetch VGGISH_URL to ``dest`` atomically."""
    with atomic_open(dest, suffix=".part") as fh, urllib.request.urlopen(VGGISH_URL, timeout=timeout) as resp:
        while chunk := resp.read(1 << 20):
            fh.write(chunk)


def load_vggish(
    weights: str | os.PathLike | None = None,
    *,
    device: str | torch.device = "cpu",
    download: bool = True,
    timeout: float = 30.0,
) -> VGGish:
    """VGGish with pretrained weights, in eval mode.

    Parameters
    ----------
    weights : path-like, optional
        ``vggish-10086976.pth``. Default: ``$OCC_VGGISH_WEIGHTS``, else the cached copy in
        :func:`cache_dir`, else a download from :data:`VGGISH_URL` (when ``download``).
    device : str or torch.device
    download : bool
        Try the download when no file is found.
    timeout : float
        Network timeout of the download, s.

    Returns
    -------
    VGGish

    Raises
    ------
    WeightsNotFoundError
        No weights file and the download is off or failed; the message says where to get the file.
    CheckpointError
        The file cannot be read or holds another architecture's keys.
    """
    hint = (
        f"run `occ fetch-weights --vggish` where a network is reached (it downloads {VGGISH_URL} into "
        f"{cache_dir()}), or download that file and pass its path as `weights=` (get_embedder('vggish', weights=...)), "
        "set `eval.vggish_weights` in params.yaml, or set the OCC_VGGISH_WEIGHTS environment variable"
    )
    weights = weights or os.environ.get("OCC_VGGISH_WEIGHTS") or None
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise WeightsNotFoundError(f"VGGish weights {path} do not exist; {hint}")
    else:
        path = cache_dir() / VGGISH_FILE
        if not path.is_file():
            if not download:
                raise WeightsNotFoundError(f"VGGish weights are not in {path} and downloading is off; {hint}")
            try:
                _download(path, timeout=timeout)
            except Exception as exc:
                raise WeightsNotFoundError(
                    f"VGGish weights could not be downloaded to {path} ({type(exc).__name__}: {exc}); {hint}"
                ) from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"VGGish weights {path} cannot be read ({type(exc).__name__}); download the file again") from None
    model = VGGish()
    expected = model.state_dict()
    state = {k: v for k, v in state.items() if not k.startswith("pproc")} if isinstance(state, dict) else state
    if not isinstance(state, dict) or set(state) != set(expected) or any(
        tuple(state[k].shape) != tuple(expected[k].shape) for k in expected
    ):
        got = sorted(state)[:6] if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(
            f"VGGish weights {path} do not match the torchvggish layout (expected keys {sorted(expected)}, got {got}); {hint}"
        )
    check_finite_state(state, where=f"VGGish weights {path}", advice=f"the file is damaged: {hint}")
    model.load_state_dict(state)
    return model.to(device).eval().requires_grad_(False)
