"""python -m occ.pipeline.run_notebook: an executed notebook replaces its output only when every cell ran."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from occ.pipeline.run_notebook import NotebookFailed, failed_path, run_notebook

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
    proc = subprocess.run([sys.executable, "-m", "occ.pipeline.run_notebook", str(nb), str(out), "-p", "fail", "True"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert "ValueError: bad input" in last and str(out) in last and "second line" not in last
    assert out.read_bytes() == before  # the committed result survives
    failed = failed_path(out)
    assert failed.name == "demo.failed.ipynb" and "ValueError" in _outputs(failed)
    assert {p.name for p in out.parent.iterdir()} <= {"demo.failed.ipynb", "demo.failed.log", "demo.ipynb"}  # no temporary
    run_notebook(nb, out, {"value": 5})  # success replaces the output and removes the stale failed notebook
    assert "10" in _outputs(out) and not failed.exists() and not failed.with_suffix(".log").exists()


def test_a_parameter_missing_from_the_parameters_cell_is_refused(nb, tmp_path):
    with pytest.raises(NotebookFailed, match="no parameter named varient"):
        run_notebook(nb, tmp_path / "o.ipynb", {"varient": "o2c"})
    assert not any(tmp_path.iterdir())


def _ctrl_c_delivered() -> None:
    """In the child: Ctrl-C as in a terminal, even when the test runner was started with SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_keeps_the_output_and_says_so_in_one_line(tmp_path):
    import time

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("seconds = 60")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("import time\ntime.sleep(seconds)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "slow.ipynb")
    out = tmp_path / "results" / "slow.ipynb"
    out.parent.mkdir()
    out.write_text("committed")
    proc = subprocess.Popen([sys.executable, "-m", "occ.pipeline.run_notebook", str(tmp_path / "slow.ipynb"), str(out)],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_ctrl_c_delivered)
    deadline = time.monotonic() + 60
    while not any(out.parent.glob(".slow.*.running.ipynb")) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(3)  # the sleeping cell runs
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert err.strip().splitlines() == [err.strip()]  # one line, no traceback (the kernel's log is kept aside)
    assert err.startswith("error: ") and "interrupted (Ctrl-C)" in err and str(out) in err
    assert out.read_text() == "committed" and failed_path(out).exists()
    assert not list(out.parent.glob(".slow.*"))


def test_the_recorded_paths_are_the_ones_given_not_the_temporary_file(nb, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.ipynb").write_text(nb.read_text())
    run_notebook("in.ipynb", "out/demo.ipynb", {"value": 2})
    meta = json.loads((tmp_path / "out" / "demo.ipynb").read_text())["metadata"]["papermill"]
    assert (meta["input_path"], meta["output_path"]) == ("in.ipynb", "out/demo.ipynb")


def test_the_temporary_a_killed_run_left_is_removed_by_the_next_run(nb, tmp_path):
    out = tmp_path / "results" / "demo.ipynb"
    out.parent.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    left = out.parent / f".demo.ipynb.{dead.pid}-abcd1234.running.ipynb"  # a run killed with kill -9
    left.write_text("{}")
    run_notebook(nb, out, {"value": 2})
    assert sorted(p.name for p in out.parent.iterdir()) == ["demo.ipynb"]
