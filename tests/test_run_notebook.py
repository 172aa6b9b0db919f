"""python -m occ.run_notebook: an executed notebook replaces its output only when every cell ran."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from occ.run_notebook import NotebookFailed, failed_path, run_notebook

ROOT = Path(__file__).resolve().parents[1]


def _notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("fail = False\nvalue = 1")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("if fail:\n    raise ValueError('bad input\\nsecond line')\nprint(value * 2)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def _outputs(path: Path) -> str:
    return json.dumps([c.get("outputs") for c in json.loads(path.read_text())["cells"]])


@pytest.fixture(scope="module")
def nb(tmp_path_factory) -> Path:
    return _notebook(tmp_path_factory.mktemp("nb") / "demo.ipynb")


def test_a_failed_run_keeps_the_previous_output_and_the_failed_notebook_aside(nb, tmp_path):
    out = tmp_path / "results" / "demo.ipynb"
    run_notebook(nb, out, {"value": 21})
    assert "42" in _outputs(out)
    before = out.read_bytes()
    proc = subprocess.run([sys.executable, "-m", "occ.run_notebook", str(nb), str(out), "-p", "fail", "True"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert "ValueError: bad input" in last and str(out) in last and "second line" not in last
    assert out.read_bytes() == before  # the committed result survives
    failed = failed_path(out)
    assert failed.name == "demo.failed.ipynb" and "ValueError" in _outputs(failed)
    assert sorted(p.name for p in out.parent.iterdir()) == ["demo.failed.ipynb", "demo.ipynb"]  # no temporary left
    run_notebook(nb, out, {"value": 5})  # success replaces the output and removes the stale failed notebook
    assert "10" in _outputs(out) and not failed.exists()


def test_a_parameter_missing_from_the_parameters_cell_is_refused(nb, tmp_path):
    with pytest.raises(NotebookFailed, match="no parameter named varient"):
        run_notebook(nb, tmp_path / "o.ipynb", {"varient": "o2c"})
    assert not any(tmp_path.iterdir())
