"""Tests of the DVC pipeline files: every stage depends on all the code it runs, and the committed results are
exactly the outputs recorded in dvc.lock (the run that produced them)."""

from __future__ import annotations

import ast
import hashlib
import json
import tempfile
from pathlib import Path

import pytest
import yaml
from test_imports import _imports, _module_names

ROOT = Path(__file__).resolve().parents[1]
MODULES = _module_names(ROOT / "occ")


def _occ_imports(source: str) -> set[str]:
    """Files of the `occ` package imported by Python source (``occ.data.audio`` -> ``occ/data/audio.py``)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "source.py"
        path.write_text(source)
        found = _imports("__source__", path, set(MODULES))
    return {MODULES[m].relative_to(ROOT).as_posix() for m in found}


def _closure(files: set[str]) -> set[str]:
    """``files`` and every `occ` file they import, directly or not (a package's ``__init__`` holds no code)."""
    seen, todo = set(), list(files)
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        todo.extend(_occ_imports((ROOT / f).read_text()) - seen)
    return {f for f in seen if not (f.endswith("/__init__.py") and f != "occ/__init__.py")}


def _notebook_source(path: Path) -> str:
    nb = json.loads(path.read_text())
    cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    return "\n".join(line for cell in cells for line in cell.splitlines() if not line.lstrip().startswith(("%", "!")))


def _stages() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("stage", sorted(_stages()))
def test_stage_depends_on_every_module_it_imports(stage):
    spec = _stages()[stage]
    spec = spec.get("do", spec)
    deps = {str(d) for d in spec["deps"]}
    notebooks = [d for d in deps if d.startswith("notebooks/")]
    assert len(notebooks) == 1, f"{stage}: one notebook dep expected, got {notebooks}"
    needed = _closure(_occ_imports(_notebook_source(ROOT / notebooks[0])))
    missing = sorted(needed - deps)
    assert not missing, f"dvc.yaml stage {stage!r} runs code it does not depend on: add {missing} to its deps"
    stale = sorted(d for d in deps - needed if d.startswith("occ/"))
    assert not stale, f"dvc.yaml stage {stage!r} depends on modules its notebook no longer imports: remove {stale}"


def _lock_outputs() -> dict[str, str]:
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())
    outs = {}
    for stage in lock["stages"].values():
        for out in stage.get("outs", []):
            outs[out["path"]] = out.get("md5")
    return outs


def test_committed_results_are_the_outputs_recorded_in_dvc_lock():
    outs = {p: md5 for p, md5 in _lock_outputs().items() if p.startswith("results/")}
    assert outs, "dvc.lock records no results/ outputs"
    for rel, md5 in sorted(outs.items()):
        path = ROOT / rel
        assert path.is_file(), f"{rel} is in dvc.lock but not committed: run `dvc repro` and commit results/ with dvc.lock"
        assert hashlib.md5(path.read_bytes()).hexdigest() == md5, (
            f"{rel} differs from the file dvc.lock records: results/ must be exactly what `dvc repro` wrote"
        )
    on_disk = {p.relative_to(ROOT).as_posix() for p in (ROOT / "results").rglob("*") if p.is_file()}
    stray = sorted(on_disk - set(outs))
    assert not stray, f"files in results/ that no stage wrote (not in dvc.lock): {stray}"


def test_dvc_lock_records_the_current_code_and_notebooks():
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())
    stale = []
    for name, stage in lock["stages"].items():
        for dep in stage.get("deps", []):
            path = ROOT / dep["path"]
            if dep["path"].startswith(("occ/", "notebooks/")) and path.is_file():
                if hashlib.md5(path.read_bytes()).hexdigest() != dep["md5"]:
                    stale.append(f"{name}: {dep['path']}")
    assert not stale, f"code changed since the committed run (rerun `dvc repro`, commit results/ and dvc.lock): {stale}"
