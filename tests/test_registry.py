"""The one registry of the pipeline's stages (``occ.registry.STAGES``) is the pipeline of ``dvc.yaml``: each stage in
both, running the same notebook, with the same papermill parameters, declaring the params section whose threads its
call sets, writing under its results folder; each call takes ``(layout, params, **axes)``; and each notebook makes its
stage's call."""

from __future__ import annotations

import ast
import inspect
import json
import re
from pathlib import Path

import pytest
import yaml

from occ.registry import STAGES, stage, stage_threads

ROOT = Path(__file__).resolve().parents[1]


def _dvc_stages() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def test_the_registry_and_dvc_yaml_name_the_same_stages():
    assert list(STAGES) == list(_dvc_stages())


@pytest.mark.parametrize("name", list(STAGES))
def test_each_stage_runs_its_notebook_with_its_axes_and_declares_its_threads(name):
    spec = _dvc_stages()[name]
    spec = spec.get("do", spec)
    entry = STAGES[name]
    cmd = spec["cmd"]
    assert f"notebooks/{entry.notebook}.ipynb {entry.results}/" in cmd, (name, cmd)
    assert tuple(re.findall(r"-p (\w+) ", cmd)) == entry.axes, (name, cmd)
    declared = {str(p) for p in spec.get("params", [])}
    if entry.threads_section is not None:  # the threads the call sets are a parameter of the stage
        assert entry.threads_section in declared or f"{entry.threads_section}.threads" in declared, (name, declared)
    outs = [next(iter(o)) if isinstance(o, dict) else o for key in ("outs", "metrics", "plots") for o in spec.get(key, [])]
    results = [o for o in outs if o.startswith("results/")]
    assert results and all(o.startswith(entry.results + "/") or o == "results/README.md" for o in results), results


@pytest.mark.parametrize("name", list(STAGES))
def test_each_call_takes_layout_params_and_its_axes_and_its_notebook_makes_it(name):
    entry = STAGES[name]
    function = entry.function()
    signature = inspect.signature(function)
    assert list(signature.parameters)[:2] == ["layout", "params"]
    assert [p for p in list(signature.parameters)[2:]] == list(entry.axes)
    cells = json.loads((ROOT / "notebooks" / f"{entry.notebook}.ipynb").read_text())["cells"]
    tree = ast.parse("\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code"))
    called = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == function.__name__]
    assert len(called) == 1, f"{entry.notebook} makes the call {function.__name__} once"
    assert [ast.unparse(a) for a in called[0].args] == ["layout", "params"]
    assert [k.arg for k in called[0].keywords] == list(entry.axes)


def test_stage_threads_reads_the_section_of_the_stage():
    from types import SimpleNamespace

    params = SimpleNamespace(supcon=SimpleNamespace(threads=2), train=SimpleNamespace(threads=3),
                             eval=SimpleNamespace(threads=4))
    assert {n: stage_threads(params, n) for n in STAGES} == {
        "data": 1, "supcon": 2, "train": 3, "reference": 4, "step0": 4, "evaluate": 4, "tables": 1, "figures": 4}
    assert stage("train@o2c-0") is STAGES["train"]
    with pytest.raises(KeyError, match="no stage 'nope'"):
        stage("nope")


def test_the_figures_stage_writes_the_files_dvc_yaml_declares():
    from occ.stages.figures import CAPTIONS, FIGURE_FILES

    spec = _dvc_stages()["figures"]
    outs = {next(iter(o)) if isinstance(o, dict) else o for o in spec["outs"]}
    assert outs == {f"results/figures/{f}" for f in FIGURE_FILES} | {"results/figures/07_figures.ipynb"}
    assert {f.removesuffix(".png") for f in FIGURE_FILES if f.endswith(".png")} == set(CAPTIONS)


def test_every_file_the_results_readme_names_is_an_output_of_the_tables_or_figures_stage():
    """`occ.report.readme` names the tables' and figures' files in its text; each is one dvc.yaml declares (a renamed
    output fails here, not in a reader's browser)."""
    stages = _dvc_stages()
    outs = {next(iter(o)) if isinstance(o, dict) else o for name in ("tables", "figures")
            for o in stages[name]["outs"]}
    declared = {out.removeprefix("results/") for out in outs}
    folders = {out for out in declared if "." not in out.rsplit("/", 1)[-1]}  # an output folder: files inside count
    named = set(re.findall(r"`((?:tables|figures)/[\w./-]+)`", (ROOT / "results/README.md").read_text()))
    assert len(named) > 10
    undeclared = [n for n in named if n not in declared and not any(n.startswith(f + "/") for f in folders)]
    assert not undeclared, f"results/README.md names files no stage declares: {undeclared}"
