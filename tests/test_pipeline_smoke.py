"""The whole pipeline through `dvc repro`, in a temporary copy, with the `smoke` profile (tiny data, few steps).

Checks that every output declared in dvc.yaml exists and parses, and that a second `dvc repro` does nothing.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COPY = ["occ", "notebooks", "params.yaml", "dvc.yaml", ".dvc/config", ".dvcignore", ".gitignore"]

pytestmark = pytest.mark.slow


def _run(cmd, cwd, env):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
    return proc.stdout + proc.stderr


def _declared_outputs(dvc_yaml: dict, variants: list[str]) -> list[str]:
    paths = []
    for name, stage in dvc_yaml["stages"].items():
        bodies = [(v, stage["do"]) for v in variants] if "foreach" in stage else [(None, stage)]
        for key, body in bodies:
            for section in ("outs", "metrics", "plots"):
                for entry in body.get(section, []):
                    path = entry if isinstance(entry, str) else next(iter(entry))
                    paths.append(path.replace("${key}", key) if key else path)
    return paths


def _parses(path: Path) -> None:
    if path.is_dir():
        assert any(path.iterdir()), f"{path} is empty"
    elif path.suffix == ".ipynb":
        nb = nbformat.read(path, as_version=4)
        errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{path} holds an error output"
    elif path.suffix == ".json":
        json.loads(path.read_text())
    elif path.suffix == ".csv":
        assert len(pd.read_csv(path)) > 0, f"{path} has no rows"
    elif path.suffix == ".png":
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    elif path.suffix == ".md":
        assert path.read_text().strip(), f"{path} is empty"
    else:
        assert path.stat().st_size > 0, f"{path} is empty"


def test_dvc_repro_smoke(tmp_path):
    repo = tmp_path / "repo"
    for item in COPY:
        src = ROOT / item
        dst = repo / item
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["profile"] = "smoke"
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               PYTHONPATH=str(repo), DVC_NO_ANALYTICS="1", GIT_AUTHOR_NAME="occ", GIT_AUTHOR_EMAIL="occ@localhost",
               GIT_COMMITTER_NAME="occ", GIT_COMMITTER_EMAIL="occ@localhost")
    _run(["git", "init", "-q"], repo, env)
    _run(["dvc", "repro"], repo, env)
    variants = list(params["variants"])
    for out in _declared_outputs(yaml.safe_load((repo / "dvc.yaml").read_text()), variants):
        assert (repo / out).exists(), f"declared output {out} was not written"
        _parses(repo / out)
    again = _run(["dvc", "repro"], repo, env)
    assert "didn't change" in again or "up to date" in again, again[-2000:]
    metrics = _run(["dvc", "metrics", "show", "--json"], repo, env)
    assert "fad_mean" in metrics
