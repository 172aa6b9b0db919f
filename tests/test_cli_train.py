"""`occ supcon` and `occ train` under torchrun on the smoke profile, then the train stage's notebook resumes the run.

The documented multi-process path of a pipeline stage: train with torchrun, then let the stage's notebook
find the finished run (same configuration: it resumes with nothing left to do) and write its results. The
commands and the stages' calls (``occ.stages.train.train_stage``, ``occ.stages.supcon.supcon_stage``, the ones the
notebooks make) train through one function (``train_for_stage``, ``supcon_for_stage``).
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pandas as pd
import pytest
import torch

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], cwd: Path) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    shutil.copy(ROOT / "params.yaml", root / "params.yaml")
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    py = sys.executable
    _run([py, "-m", "occ.pipeline.run_notebook", "notebooks/01_data.ipynb", "results/data/01_data.ipynb",
          "-p", "profile", "smoke"], root)
    torchrun = [py, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "occ"]
    _run([*torchrun, "supcon", "--profile", "smoke", "-q"], root)
    out = _run([*torchrun, "train", "--variant", "ocsupcon", "--seed", "0", "--profile", "smoke", "-q"], root)
    return root, out


def test_torchrun_trains_the_run_of_the_stage_once(project):
    root, out = project
    assert out.count("occ train: ocsupcon seed 0: step 3 of 3 on 2 process(es)") == 1  # rank 0 alone reports
    run = root / "runs" / "train" / "ocsupcon" / "seed0"
    assert pd.read_csv(run / "log.csv")["step"].tolist() == [1, 2, 3]  # one log, written once
    assert (root / "runs" / "supcon" / "encoder.pt").is_file()
    assert not list(run.glob(".*.tmp")) and not (run / ".lock").exists()


def test_the_stage_notebook_then_resumes_it_with_nothing_to_do(project):
    root, _ = project
    ckpt = root / "runs" / "train" / "ocsupcon" / "seed0" / "checkpoint.pt"
    before = (ckpt.stat().st_mtime_ns, torch.load(ckpt, weights_only=False)["g"])
    _run([sys.executable, "-m", "occ.pipeline.run_notebook", "notebooks/03_train.ipynb",
          "results/train/ocsupcon/seed0/03_train.ipynb", "-p", "variant", "ocsupcon", "-p", "seed", "0",
          "-p", "profile", "smoke"], root)
    assert ckpt.stat().st_mtime_ns == before[0]  # not trained again, not rewritten
    after = torch.load(ckpt, weights_only=False)["g"]
    assert all(torch.equal(after[k], before[1][k]) for k in after)
    assert (root / "results" / "train" / "ocsupcon" / "seed0" / "losses.png").is_file()
    assert "step 3 of 3" in (root / "results" / "train" / "ocsupcon" / "seed0" / "03_train.ipynb").read_text()


def test_occ_train_names_a_bad_variant(project, capsys):
    from occ.cli.main import main

    root, _ = project
    assert main(["train", "--variant", "nope", "--seed", "0", "--profile", "smoke", "--project", str(root)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("occ train: error:") and "nope" in err and err.count("\n") == 1


def _calls(source: str, names: tuple[str, ...]) -> list[ast.Call]:
    """The calls of the functions ``names`` in ``source``."""
    tree = ast.parse(source)
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) in names]


def test_the_commands_and_the_notebooks_make_one_call(monkeypatch, capsys):
    import occ.cli.train as cli_train
    import occ.train.gan_train as gan_train
    import occ.train.supcon_train as supcon_train
    from occ.cli.main import main

    # the notebooks: the stage calls, with the notebook's own layout, params, variant and seed
    def notebook(name: str) -> str:
        return "\n".join(c.source for c in nbformat.read(ROOT / "notebooks" / name, as_version=4).cells
                         if c.cell_type == "code")

    (train_call,) = _calls(notebook("03_train.ipynb"), ("train_stage",))
    assert ast.unparse(train_call) == "train_stage(layout, params, variant=variant, seed=seed)"
    (supcon_call,) = _calls(notebook("02_supcon.ipynb"), ("supcon_stage",))
    assert ast.unparse(supcon_call) == "supcon_stage(layout, params)"
    # the stage calls: the training functions, with the feature cache they loaded
    (train_run,) = _calls((ROOT / "occ/stages/train.py").read_text(), ("train_for_stage",))
    assert ast.unparse(train_run) == "train_for_stage(layout, params, cache, variant=variant, seed=seed)"
    (supcon_run,) = _calls((ROOT / "occ/stages/supcon.py").read_text(), ("supcon_for_stage",))
    assert ast.unparse(supcon_run) == "supcon_for_stage(layout, params, cache)"
    # the commands: the same functions, with what they loaded and their arguments
    project = ("layout", "params", "cache")
    seen = []
    monkeypatch.setattr(cli_train, "_project", lambda args, variant=None: seen.append(variant) or project)
    done = SimpleNamespace(step=3, steps=3, seconds=6.0, checkpoint_path="ckpt", finished=True, train_accuracy=1.0)
    monkeypatch.setattr(gan_train, "train_for_stage", lambda *a, **kw: seen.append((a, kw)) or done)
    monkeypatch.setattr(supcon_train, "supcon_for_stage", lambda *a, **kw: seen.append((a, kw)) or (done, done))
    assert main(["train", "--variant", "o2c", "--seed", "2", "-q"]) == 0
    assert seen == ["o2c", (project, {"variant": "o2c", "seed": 2, "progress": False})]
    assert main(["supcon"]) == 0
    assert seen[2:] == [None, (project, {"progress": None})]
    out = capsys.readouterr().out
    assert "occ train: o2c seed 2: step 3 of 3 on 1 process(es) in 0.1 min -> ckpt" in out
    assert "occ supcon: 3 SupCon steps on 1 process(es)" in out
