"""Digests of tiny GAN runs, one per loss kind, recorded before a change to the training step and compared after it.

``python tests/gan_reference.py --record`` writes ``tests/data/gan_digests.json`` (the digests and the machine they
were taken on); ``tests/test_gan_digests.py`` retrains the same runs and compares. Results are bit-identical only on
the same CPU model, PyTorch build and thread count, so the comparison runs where the machine matches the recorded one.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from pathlib import Path

import torch

from occ.checkpoint import load_checkpoint
from occ.config import ModelConfig, TrainConfig
from occ.nets.models import build_encoder
from occ.train.gan_train import train_gan

DIGESTS = Path(__file__).parent / "data" / "gan_digests.json"
N_CLASSES = 3
MODEL = ModelConfig(z_dim=16, g_ch=4, d_ch=4, proj_dim=8, enc_width=4)
KINDS = ("2c", "csupcon", "o2c", "ocsupcon", "none")
#: the checkpoint's trained state: networks, optimisers, the sampler's stream
PARTS = ("g", "d", "g_ema", "g_optim", "d_optim", "rng")


def machine() -> dict[str, str]:
    """What bit-identity depends on: CPU model, PyTorch build, the CPU kernels it picked, the thread count."""
    info: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                info.setdefault(key.strip(), value.strip())  # the first processor's
    except OSError:
        pass
    cpu = f"{info.get('model name', platform.processor())}, family {info.get('cpu family', '?')} model {info.get('model', '?')}"
    return {"cpu": cpu, "torch": torch.__version__, "capability": torch.backends.cpu.get_cpu_capability(),
            "threads": "1"}


def _feed(h, obj) -> None:
    if isinstance(obj, torch.Tensor):
        h.update(str((obj.dtype, tuple(obj.shape))).encode())
        h.update(obj.detach().cpu().contiguous().numpy().tobytes())
    elif isinstance(obj, dict):
        for key in sorted(obj, key=str):
            h.update(str(key).encode())
            _feed(h, obj[key])
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            _feed(h, item)
    else:
        h.update(repr(obj).encode())


def state_digest(payload: dict) -> str:
    """SHA-256 of a checkpoint's trained state (:data:`PARTS`), independent of the configuration it stores."""
    h = hashlib.sha256()
    for part in PARTS:
        h.update(part.encode())
        _feed(h, payload.get(part))
    return h.hexdigest()


def run_digest(kind: str, out_dir: Path, **train_keys) -> str:
    """Train the tiny run of ``kind`` (4 steps, one thread) into ``out_dir`` and digest its checkpoint."""
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    mels = torch.rand(12, 80, 344, generator=gen) * 2 - 1
    labels = torch.arange(12) % N_CLASSES
    torch.manual_seed(5)
    encoder = build_encoder(MODEL, n_classes=N_CLASSES)
    train = TrainConfig(loss=kind, steps=4, batch_size=4, ckpt_every=2, ema_decay=0.9, **train_keys)
    train_gan(mels, labels, n_classes=N_CLASSES, model=MODEL, train=train, out_dir=out_dir, seed=3,
              encoder=encoder if kind in ("csupcon", "ocsupcon") else None, progress=False)
    return state_digest(load_checkpoint(out_dir / "checkpoint.pt", kind="gan"))


def main() -> None:
    import tempfile

    if sys.argv[1:] != ["--record"]:
        raise SystemExit("usage: python tests/gan_reference.py --record")
    with tempfile.TemporaryDirectory() as tmp:
        digests = {kind: run_digest(kind, Path(tmp) / kind) for kind in KINDS}
    DIGESTS.write_text(json.dumps({"machine": machine(), "digests": digests}, indent=1) + "\n")
    print(DIGESTS.read_text())


if __name__ == "__main__":
    main()
