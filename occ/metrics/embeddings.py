"""Audio embeddings for FAD and the diversity metrics, behind one interface (docs/reference.md, sections 4 and 5).

``get_embedder(name, ...)`` returns an object with ``name``, ``dim``, ``windows_per_clip`` and
``embed(wavs) -> (N, W, D)`` for 4-s clips (N, 88200) at 22,050 Hz in [-1, 1]:

* ``"vggish"``: the DCASE 2023 Task 7 FAD embedding. Clips are turned into the int16 sample values DCASE
  read from the WAV files, then :func:`occ.metrics.vggish_frontend.dcase_vggish_examples` (10 windows of 16,000 samples,
  step 8,000, no resampling) and VGGish (128-d pre-activation). Needs ``vggish-10086976.pth``.
* ``"aisfx"``: the aiSFX sound-effects CNN (512-d per 2-s block, 3 blocks per clip); weights from the
  PyPI wheel, so it works offline once cached. Not the DCASE metric: its FADs are not comparable to
  the paper's numbers, only between our models.
* ``"encoder"``: this project's SupCon-pretrained encoder ``f`` (features of the normalised log-mel,
  one window per clip), for diagnostics only: it is biased toward OC-SupConGAN and C-SupConGAN, whose
  discriminators are trained to agree with this very network.

:func:`eval_embedder` is the evaluation notebooks' set-up (the embedder of ``eval.embedding`` and the SupCon
encoder); :func:`embed_clips` and :func:`reference_embeddings` embed the real clips of the feature cache (the
FAD reference set, the probe's training clips), as read from their audio files or after the vocoder.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm  # the text bar: no notebook-widget import, no IProgress warning in a kernel

from occ.data.audio import load_clip
from occ.data.datasets import FeatureCache, normalized_log_mel
from occ.errors import ConfigError, DataError
from occ.nets.models import load_encoder
from occ.synthesis.vocoder import resynthesize, vocoder_method

__all__ = ["Embedder", "VGGishEmbedder", "AisfxEmbedder", "EncoderEmbedder", "get_embedder", "EMBEDDERS",
           "eval_embedder", "embed_clips", "reference_embeddings"]

EMBEDDERS = ("vggish", "aisfx", "encoder")


def _as_wavs(wavs: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(N, n_samples) float32 CPU tensor."""
    t = wavs.detach().cpu() if isinstance(wavs, torch.Tensor) else torch.from_numpy(np.asarray(wavs))
    if t.ndim == 1:
        t = t[None]
    if t.ndim != 2:
        raise DataError(f"embed: expected waveforms of shape (N, n_samples), got {tuple(t.shape)}")
    t = t.float()
    if not torch.isfinite(t).all():
        raise DataError("embed: the waveforms hold NaN or infinite samples")
    return t


class Embedder:
    """Common interface: ``embed(wavs (N, 88200)) -> np.ndarray (N, windows_per_clip, dim)``."""

    name: str = ""
    dim: int = 0
    windows_per_clip: int = 1

    def __init__(self, *, device: str | torch.device = "cpu", batch_size: int = 32) -> None:
        self.device = torch.device(device)
        self.batch_size = batch_size

    def _embed_batch(self, wavs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.inference_mode()
    def embed(self, wavs: np.ndarray | torch.Tensor, *, progress: bool = False) -> np.ndarray:
        """Embed clips.

        Parameters
        ----------
        wavs : np.ndarray or torch.Tensor [shape=(N, 88200)]
            Waveforms at 22,050 Hz in [-1, 1].
        progress : bool
            Show a tqdm bar over batches.

        Returns
        -------
        np.ndarray [shape=(N, windows_per_clip, dim), float32]
        """
        x = _as_wavs(wavs)
        outs = []
        for s in tqdm(range(0, x.shape[0], self.batch_size), desc=f"embed ({self.name})", disable=not progress):
            outs.append(self._embed_batch(x[s : s + self.batch_size]).float().cpu())
        if not outs:
            return np.zeros((0, self.windows_per_clip, self.dim), np.float32)
        return torch.cat(outs).numpy()


class VGGishEmbedder(Embedder):
    """DCASE FAD embedding: int16-scale samples -> DCASE VGGish examples -> VGGish (128-d pre-activation)."""

    name, dim, windows_per_clip = "vggish", 128, 10

    def __init__(self, *, weights: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                 batch_size: int = 32, model: torch.nn.Module | None = None) -> None:
        super().__init__(device=device, batch_size=batch_size)
        from occ.metrics.vggish import load_vggish

        self.model = model.to(self.device).eval() if model is not None else load_vggish(weights, device=self.device)

    def _embed_batch(self, wavs: torch.Tensor) -> torch.Tensor:
        from occ.metrics.vggish_frontend import dcase_vggish_examples

        int16 = np.clip(np.round(wavs.numpy().astype(np.float64) * 32768.0), -32768, 32767)  # as read from the WAV
        ex = dcase_vggish_examples(int16)  # (N, W, 96, 64)
        n, w = ex.shape[:2]
        emb = self.model(torch.from_numpy(ex).reshape(n * w, 96, 64).to(self.device))
        self.windows_per_clip = w
        return emb.reshape(n, w, -1)


class AisfxEmbedder(Embedder):
    """aiSFX embedding: 44.1 kHz log-mel blocks (100 frames, hop 50) -> 512-d per block (3 per clip)."""

    name, dim, windows_per_clip = "aisfx", 512, 3

    def __init__(self, *, device: str | torch.device = "cpu", batch_size: int = 32,
                 model: torch.nn.Module | None = None, block_hop: int = 50) -> None:
        super().__init__(device=device, batch_size=batch_size)
        from occ.metrics.aisfx import load_aisfx

        self.block_hop = block_hop  # frames; 50 = 1-s hop (3 blocks per clip), 100 = 2 blocks, 1/3 cheaper
        self.windows_per_clip = max(1, int(np.ceil((173 - 100) / block_hop)) + 1)  # 173 frames per 4-s clip
        self.model = model.to(self.device).eval() if model is not None else load_aisfx(device=self.device)

    def _embed_batch(self, wavs: torch.Tensor) -> torch.Tensor:
        from occ.metrics.aisfx import aisfx_blocks, aisfx_front_end

        blocks = aisfx_blocks(aisfx_front_end(wavs.to(self.device)), hop=self.block_hop)  # (N, B, 100, 96)
        n, b = blocks.shape[:2]
        self.windows_per_clip = b
        return self.model(blocks.reshape(n * b, *blocks.shape[2:])).reshape(n, b, -1)


class EncoderEmbedder(Embedder):
    """This project's SupCon encoder ``f`` (diagnostic; biased toward the SupCon-conditioned models)."""

    name, windows_per_clip = "encoder", 1

    def __init__(self, *, encoder: torch.nn.Module, device: str | torch.device = "cpu", batch_size: int = 32) -> None:
        super().__init__(device=device, batch_size=batch_size)
        self.model = encoder.to(self.device).eval()
        with torch.inference_mode():
            self.dim = int(self.model.features(torch.zeros(1, 1, 80, 344, device=self.device)).shape[-1])

    def _embed_batch(self, wavs: torch.Tensor) -> torch.Tensor:
        x = normalized_log_mel(wavs.to(self.device))[:, None]
        return self.model.features(x)[:, None]


def get_embedder(
    name: str,
    *,
    weights: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    encoder: torch.nn.Module | None = None,
    batch_size: int = 32,
) -> Embedder:
    """Build an embedder by name.

    Parameters
    ----------
    name : {"vggish", "aisfx", "encoder"}
        Which embedding (``eval.embedding``).
    weights : path-like, optional
        VGGish only: ``vggish-10086976.pth`` (``eval.vggish_weights``); default: cached copy or download.
    device : str or torch.device
    encoder : torch.nn.Module, optional
        Required for ``"encoder"``: a loaded :class:`occ.nets.encoder.Encoder`.
    batch_size : int
        Clips per forward pass.

    Returns
    -------
    Embedder

    Raises
    ------
    ConfigError
        Unknown name, or ``"encoder"`` without ``encoder=``.
    WeightsNotFoundError
        The pretrained weights cannot be found or fetched.
    """
    if name == "vggish":
        return VGGishEmbedder(weights=weights, device=device, batch_size=batch_size)
    if name == "aisfx":
        return AisfxEmbedder(device=device, batch_size=batch_size)
    if name == "encoder":
        if encoder is None:
            raise ConfigError("get_embedder('encoder') needs `encoder=`: a loaded occ.nets.encoder.Encoder (the SupCon encoder f)")
        return EncoderEmbedder(encoder=encoder, device=device, batch_size=batch_size)
    raise ConfigError(f"embedding {name!r} is unknown (eval.embedding): use one of {list(EMBEDDERS)}")


def eval_embedder(embedding: str, *, vggish_weights: str | os.PathLike | None, encoder: str | os.PathLike,
                  device: str | torch.device) -> tuple[Embedder, torch.nn.Module]:
    """The embedder of `eval.embedding` and the fine-tuned SupCon encoder, as the evaluation stages set them up.

    Parameters
    ----------
    embedding : str
        ``eval.embedding``.
    vggish_weights : path-like or None
        ``eval.vggish_weights``; empty or None: the cached copy or a download (VGGish only).
    encoder : path-like
        The fine-tuned encoder checkpoint (``runs/supcon/encoder.pt``); the ``"encoder"`` embedding embeds with it.
    device : str or torch.device

    Returns
    -------
    embedder : Embedder
    encoder : occ.nets.encoder.Encoder
        The loaded encoder (the evaluation also reads its classifier's accuracy on generated clips).
    """
    f = load_encoder(encoder, device=device)
    return get_embedder(embedding, weights=vggish_weights or None, device=device, encoder=f), f


def reference_embeddings(cache: FeatureCache, *, embedder: Embedder, progress: bool = False) -> dict[str, np.ndarray]:
    """Embeddings of the held-out clips per class, from their audio files (the FAD reference set).

    Returns
    -------
    dict
        class name -> np.ndarray [shape=(n, W, D)].
    """
    return embed_clips(cache.heldout(), embedder=embedder, progress=progress, what="held-out")


def embed_clips(part: FeatureCache, *, embedder: Embedder, progress: bool = False, what: str = "training",
                through_vocoder: dict | None = None) -> dict[str, np.ndarray]:
    """Embeddings of the clips of `part` (a subset of the feature cache) per class, from their audio files.

    Parameters
    ----------
    part : FeatureCache
        `cache.train()`, `cache.heldout()` or another subset.
    what : str
        What the clips are, for the message when a class has none.
    through_vocoder : dict, optional
        When given (``{"vocoder": ..., "gl_iters": ...}``, as ``eval.vocoder`` and ``eval.gl_iters``), each clip
        is first turned into its log-mel and back into audio with that vocoder
        (:func:`occ.synthesis.vocoder.resynthesize`), the path generated clips take.

    Returns
    -------
    dict
        class name -> np.ndarray [shape=(n, W, D)].
    """
    root = Path(part.root)
    out = {}
    for c, name in enumerate(part.class_names):
        files = [root / f for f, y in zip(part.files, part.labels.tolist()) if y == c]
        if not files:
            raise DataError(f"class {name!r} has no {what} clips in the feature cache: rebuild it (the `data` stage).")
        wavs = np.stack([load_clip(f) for f in files])
        if through_vocoder is not None:
            method, checkpoint = vocoder_method(through_vocoder["vocoder"])
            _, wavs = resynthesize(wavs, method=method, vocoder=checkpoint, n_iter=through_vocoder.get("gl_iters", 32))
            wavs = np.asarray(wavs.cpu(), dtype=np.float32)
        out[name] = embedder.embed(wavs, progress=progress)
    return out
