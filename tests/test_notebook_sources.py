"""The notebooks tell the story and leave the work to ``occ``: one parameters cell, the shared set-up in one call
(``open_notebook``), no logic cell over 15 lines, no definitions, no file written by the notebook itself (its stage's
call writes them), and every thread count from the one table
(``occ.registry.STAGES``), which ``occ repro`` reads too."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
#: The longest code cell that does more than import.
MAX_LOGIC_LINES = 15
#: Calls that write a file: a notebook makes none of them, its stage's call writes every file.
WRITERS = {"write_json", "write_csv", "write_table", "atomic_write_text", "atomic_open", "to_csv", "to_json", "savefig",
           "save_figure", "open"}


def _code_cells(path: Path) -> list[tuple[list[str], str]]:
    """(tags, source) of each code cell."""
    cells = json.loads(path.read_text())["cells"]
    return [(c.get("metadata", {}).get("tags", []), "".join(c["source"])) for c in cells if c["cell_type"] == "code"]


def _imports_only(source: str) -> bool:
    return all(isinstance(node, (ast.Import, ast.ImportFrom)) for node in ast.parse(source).body)


def logic_cell_problems(path: Path) -> list[str]:
    """What breaks the rules above in one notebook (empty: nothing)."""
    problems = []
    cells = _code_cells(path)
    parameters = [source for tags, source in cells if "parameters" in tags]
    if len(parameters) != 1:
        problems.append(f"{len(parameters)} parameters cells (one expected)")
    for tags, source in cells:
        if "parameters" in tags or _imports_only(source):
            continue
        lines = source.splitlines()
        if len(lines) > MAX_LOGIC_LINES:
            problems.append(f"a logic cell of {len(lines)} lines (at most {MAX_LOGIC_LINES}): {lines[0]!r}")
        tree = ast.parse(source)
        if any(isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.Lambda)) for n in ast.walk(tree)):
            problems.append(f"a definition in a cell starting {lines[0]!r}: it belongs in occ/")
        for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
            name = getattr(call.func, "attr", getattr(call.func, "id", ""))
            if name in WRITERS:
                problems.append(f"{ast.unparse(call)}: a notebook writes no file itself (its stage's call does)")
            if name in ("load_params", "setup_notebook", "find"):
                problems.append(f"{name}() in a cell: the set-up is open_notebook()'s")
            if name == "use_threads" and not (call.args and "stage_threads" in ast.unparse(call.args[0])):
                problems.append(f"{ast.unparse(call)}: a stage's threads come from occ.registry.stage_threads")
    sources = "\n".join(source for _, source in cells)
    if sources.count("open_notebook(") != 1:
        problems.append("the set-up is not one open_notebook() call")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_each_notebook_sets_up_in_one_call_and_keeps_its_cells_short(path):
    assert not logic_cell_problems(path), f"{path.name}: " + "; ".join(logic_cell_problems(path))


def test_the_check_names_each_problem(tmp_path):
    def notebook(*cells):
        path = tmp_path / "nb.ipynb"
        path.write_text(json.dumps({"cells": [
            {"cell_type": "code", "metadata": {"tags": tags}, "source": source} for tags, source in cells]}))
        return path

    good = notebook((["parameters"], "seed = 0"), ([], "import os\n" * 20),
                    ([], "layout, params, out = open_notebook('x')\nuse_threads(stage_threads(params, 'x'))"))
    assert logic_cell_problems(good) == []
    bad = notebook(([], "x = 1\n" * 16), ([], "def f():\n    pass"), ([], "use_threads(params.eval.threads)"),
                   ([], "params = load_params('params.yaml')"), ([], "log.to_csv(out / 'log.csv')"))
    found = "; ".join(logic_cell_problems(bad))
    for part in ("0 parameters cells", "a logic cell of 16 lines", "a definition", "use_threads(params.eval.threads)",
                 "load_params() in a cell", "not one open_notebook() call", "writes no file itself"):
        assert part in found, (part, found)


def test_the_evaluation_stages_own_their_threads_and_occ_repro_reads_the_same_table(monkeypatch, tmp_path):
    """Each evaluation stage's call sets the threads the table declares for it; `occ repro` counts the same."""
    import yaml

    import occ.stages.evaluate as evaluate_stage
    import occ.stages.reference as reference_stage
    from occ.config import load_params
    from occ.paths import Layout
    from occ.pipeline.parallel import declared_threads
    from occ.registry import STAGES

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["eval"]["threads"], raw["train"]["threads"] = 3, 2
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    params = load_params(tmp_path / "params.yaml")
    assert declared_threads(tmp_path) == {name: {"train": 2, "eval": 3}.get(s.threads_section, 1)
                                          for name, s in STAGES.items()}

    class Set(Exception):
        pass

    def use_threads(n):  # stop the stage right after it set its threads
        raise Set(n)

    for module, call in ((reference_stage, lambda: reference_stage.reference_stage(Layout(tmp_path), params)),
                         (evaluate_stage, lambda: evaluate_stage.step0_stage(Layout(tmp_path), params, seed=0)),
                         (evaluate_stage, lambda: evaluate_stage.evaluate_stage(Layout(tmp_path), params, variant="o2c",
                                                                                  seed=0))):
        monkeypatch.setattr(module, "use_threads", use_threads)
        with pytest.raises(Set) as set_to:
            call()
        assert set_to.value.args == (3,)
