"""Seeds and random-number-generator state.

One seed in ``params.yaml`` drives every random draw (docs/reference.md, "Seeds and randomness"): model
initialisation, batch sampling, latent codes and augmentations. The full state of every generator
(Python, NumPy, torch CPU, torch CUDA and the ``torch.Generator`` objects a training loop owns) can
be captured with :func:`rng_state` and restored with :func:`set_rng_state`, so a resumed run draws
exactly what an uninterrupted run would have drawn.

The captured state holds only tensors, strings, numbers and tuples, so checkpoints holding it load
with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch

from occ.errors import CheckpointError, ConfigError

__all__ = ["seed_everything", "rng_state", "set_rng_state", "make_generator", "derived_seed"]


def seed_everything(seed: int, *, deterministic: bool = False) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every CUDA device).

    Parameters
    ----------
    seed : int
        The seed (``params.yaml: seed``), ``0 <= seed < 2**32``.
    deterministic : bool
        Also ask torch for deterministic kernels (``torch.use_deterministic_algorithms``, cuDNN
        benchmark off). CPU runs are bit-reproducible without it; on CUDA it costs speed.

    Raises
    ------
    ConfigError
        A seed that is not a whole number in ``[0, 2**32)``.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**32:
        raise ConfigError(f"seed = {seed!r} must be a whole number in [0, 2**32); fix `seed` in params.yaml.")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def make_generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed`` (draws on CPU are identical on every machine)."""
    generator = torch.Generator(device="cpu")
    generator.manual_seed(int(seed))
    return generator


def derived_seed(seed: int, stream: int) -> int:
    """An independent 63-bit seed for random stream ``stream`` of a run seeded with ``seed``.

    Uses NumPy's ``SeedSequence`` so that, e.g., the batch sampler (stream 1) does not replay the
    draws of the model initialisation (the global generator, seeded with ``seed`` itself).
    """
    return int(np.random.SeedSequence([int(seed), int(stream)]).generate_state(1, dtype=np.uint64)[0] >> 1)


def rng_state(*, generators: dict[str, torch.Generator] | None = None) -> dict[str, Any]:
    """Capture the state of every random-number generator.

    Parameters
    ----------
    generators : dict of str to torch.Generator, optional
        Generators owned by the caller (e.g. the batch sampler), stored by name.

    Returns
    -------
    dict
        Keys ``python``, ``numpy``, ``torch``, ``cuda`` (a list, empty without CUDA) and
        ``generators``. Only tensors, numbers, strings and tuples: safe for ``weights_only`` loading.
    """
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (str(kind), torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss), float(cached)),
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
        "generators": {name: gen.get_state() for name, gen in (generators or {}).items()},
    }


def set_rng_state(state: dict[str, Any], *, generators: dict[str, torch.Generator] | None = None) -> None:
    """Restore a state captured by :func:`rng_state`.

    Parameters
    ----------
    state : dict
        As returned by :func:`rng_state`.
    generators : dict of str to torch.Generator, optional
        The caller's generators; each is set to the state stored under its name.

    Raises
    ------
    CheckpointError
        A generator named in ``generators`` has no stored state, or the state is malformed.
    """
    try:
        random.setstate(_as_python_state(state["python"]))
        kind, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), int(pos), int(has_gauss), float(cached)))
        torch.set_rng_state(state["torch"].cpu())
        cuda_states = state.get("cuda") or []
        if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in cuda_states])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"the stored random-number-generator state is malformed ({exc!r}); the checkpoint is "
            "damaged: delete it and rerun the stage that wrote it (supcon or train@<variant>-<seed>)."
        ) from exc
    stored = state.get("generators") or {}
    for name, gen in (generators or {}).items():
        if name not in stored:
            raise CheckpointError(
                f"the stored random-number-generator state has no generator {name!r} (it has "
                f"{sorted(stored)}); the checkpoint was written by another version: rerun the stage that wrote it (supcon or train@<variant>-<seed>)."
            )
        gen.set_state(stored[name].cpu())


def _as_python_state(value: Any) -> tuple:
    """``random.getstate()`` round-trips through checkpoints as nested tuples; lists are converted back."""
    version, internal, gauss = value
    return (int(version), tuple(int(v) for v in internal), gauss)
