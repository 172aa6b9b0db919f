"""The whole pipeline through `dvc repro`, in a temporary copy, with the `smoke` profile (tiny data, few steps).

Two training seeds, every variant: the session fixture `smoke_pipeline` (tests/conftest.py) runs it once, and
tests/test_doc_commands.py runs the documentation's commands in a copy of the same run. Checks that every output of every stage exists and parses, that a second
`dvc repro` does nothing, and that adding a seed to `seeds` makes only that seed's stages, the tables and the
figures out of date.
"""

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import nbformat
import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from shared import copy_env, project_copy  # noqa: E402

pytestmark = pytest.mark.slow


def _run(cmd, cwd, env):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
    return proc.stdout + proc.stderr


def _expected_stages(params: dict) -> set[str]:
    """The stage names dvc.yaml resolves to: one train/evaluate per (variant, seed), one step0 per seed."""
    names = {"data", "supcon", "reference", "tables", "figures"} | {f"step0@{s}" for s in params["seeds"]}
    for v in params["run_variants"]:
        for s in params["seeds"]:
            names |= {f"train@{v}-{s}", f"evaluate@{v}-{s}"}
    return names


def _locked_outputs(lock: dict) -> list[str]:
    return [out["path"] for stage in lock["stages"].values() for out in stage.get("outs", [])]


def _out_of_date(status_json: str) -> set[str]:
    return set(json.loads(status_json or "{}"))


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


def smoke_repo(repo: Path, *, edit: Callable[[dict], None] | None = None, **overrides) -> tuple[dict, dict]:
    """Copy the project into ``repo`` (a fresh git repository) with the smoke profile and ``overrides``
    (``shared.project_copy``, which the benchmarks use too).

    Parameters
    ----------
    repo : Path
        Folder to create.
    edit : callable, optional
        ``edit(params)`` changes the parsed params.yaml in place after the overrides (a section's key, a profile's).
    **overrides
        Top-level params.yaml values (``seeds=[0, 1]``, ``run_variants=["o2c"]``; ``profile`` other than smoke).

    Returns
    -------
    params : dict
        The params.yaml written.
    env : dict
        Environment for ``dvc`` and ``git`` there (this interpreter's ``dvc`` first on PATH).
    """
    return project_copy(repo, edit=edit, **overrides)


def smoke_env() -> dict:
    """Environment for ``dvc``, ``git`` and ``occ`` in a smoke copy (this interpreter's ``dvc`` first on PATH)."""
    return copy_env()


def test_dvc_repro_smoke(smoke_pipeline, tmp_path):
    repo, env = tmp_path / "repo", smoke_pipeline.env
    shutil.copytree(smoke_pipeline.repo, repo, symlinks=True)  # the shared run stays as it is for the other tests
    params = copy.deepcopy(smoke_pipeline.params)
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    assert set(lock["stages"]) == _expected_stages(params)
    for out in _locked_outputs(lock):
        assert (repo / out).exists(), f"declared output {out} was not written"
        _parses(repo / out)
    for v in params["run_variants"]:
        for s in params["seeds"]:
            m = json.loads((repo / f"results/evaluate/{v}/seed{s}/metrics.json").read_text())
            assert m["seed"] == s and m["variant"] == v and 0 <= m["probe_accuracy"] <= 1
            # the declared thread counts, recorded (smoke and embedded: 1 each)
            assert m["threads"] == m["train_threads"] == 1, (m["threads"], m["train_threads"])
            made = {key: params["variants"][v].get(key, params["train"][key]) for key in ("loss", "tau_d", "tau_c")}
            assert {key: m[key] for key in made} == made  # what made the run, recorded beside its numbers
    again = _run(["dvc", "repro"], repo, env)
    assert "didn't change" in again or "up to date" in again, again[-2000:]
    metrics = _run(["dvc", "metrics", "show", "--json"], repo, env)
    assert "fad_mean" in metrics and "probe_accuracy" in metrics
    # a new seed: only its runs, its step 0, the tables and the figures are out of date
    params["seeds"] = [0, 1, 2]
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    stale = _out_of_date(subprocess.run(["dvc", "status", "--json"], cwd=repo, env=env, capture_output=True,
                                        text=True).stdout)
    new = {"step0@2", "tables", "figures"} | {f"{k}@{v}-2" for k in ("train", "evaluate") for v in params["run_variants"]}
    assert stale == new, f"out of date after adding seed 2: {sorted(stale)}"
    params["seeds"] = [0, 1]
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    # the README's ablation: one variant's tau_c changed as a DVC experiment reruns that variant's runs and what they feed
    _run(["git", "add", "-A"], repo, env)
    _run(["git", "commit", "-qm", "smoke run"], repo, env)
    log = _run(["dvc", "exp", "run", "-S", "variants.o2c_ct1.tau_c=0.5"], repo, env)
    ran = {line.split("'")[1] for line in log.splitlines() if line.startswith("Running stage '")}
    assert ran == {"train@o2c_ct1-0", "train@o2c_ct1-1", "evaluate@o2c_ct1-0", "evaluate@o2c_ct1-1", "tables",
                   "figures"}, sorted(ran)
    shown = json.loads(subprocess.run(["dvc", "exp", "show", "--json"], cwd=repo, env=env, capture_output=True,
                                      text=True, check=True).stdout)
    exps = [e for rev in shown for e in (rev.get("experiments") or [])]
    assert exps, "dvc exp show lists no experiment"
    text = json.dumps(exps)
    assert "probe_accuracy" in text and '"tau_c": 0.5' in text
    _labelled_by_the_runs(repo)


def _labelled_by_the_runs(repo: Path) -> None:
    """After `-S variants.o2c_ct1.tau_c=0.5`: every table, claim, check and figure says 0.5 (not the variant's 1.0)."""
    results = repo / "results"
    for s in (0, 1):
        m = json.loads((results / f"evaluate/o2c_ct1/seed{s}/metrics.json").read_text())
        assert (m["loss"], m["tau_d"], m["tau_c"]) == ("o2c", 0.1, 0.5)
    t2 = pd.read_csv(results / "tables/table2.csv")
    ours = t2[~t2["numbers"].str.startswith("reported") & (t2["method"] == "O2C-GAN")]
    assert set(ours["CT"]) == {0.1, 0.5}, ours[["method", "CT", "numbers"]]
    t3 = pd.read_csv(results / "tables/table3.csv")
    assert (t3.loc[~t3["numbers"].str.startswith("reported"), "method"] == "O2C-GAN, CT 0.5").any()
    assert "(this run: O2C-GAN, CT 0.5)" in (results / "tables/table3.md").read_text()
    table = pd.read_csv(results / "tables/claims.csv")
    claims = table.loc[table["role"] == "claim", "claim"]  # the claims themselves, not their splits or pooled rows
    c2 = [c for c in claims if c.startswith("C2") and ": O2C-GAN" in c]
    assert len(c2) == 1 and "O2C-GAN, CT 0.5 < O2C-GAN" in c2[0], claims.tolist()
    assert "compared here: tau_d 0.1, tau_c 0.5, label in D against" in c2[0], c2
    checks = pd.read_csv(results / "tables/checks.csv")
    assert checks.loc[checks["variant"] == "o2c_ct1", "check"].str.contains("O2C-GAN, CT 0.5").all()
    readme = (results / "README.md").read_text()
    assert "O2C-GAN, CT 0.5 < O2C-GAN" in readme and "O2C-GAN, CT 1.0 <" not in readme
    assert "## Table 2: per-class FAD, CT 0.1 vs 0.5 vs 1.0" in readme
    nb = nbformat.read(results / "figures/07_figures.ipynb", as_version=4)
    drawn = {o["metadata"]["occ"]["file"]: o["metadata"]["occ"]["text"] for c in nb.cells for o in c.get("outputs", [])
             if "occ" in o.get("metadata", {})}
    for figure in ("results/figures/fad_by_seed.png", "results/figures/probe_by_seed.png"):
        assert "O2C-GAN, CT 0.5" in drawn[figure] and "O2C-GAN, CT 1.0" not in drawn[figure], drawn[figure]
