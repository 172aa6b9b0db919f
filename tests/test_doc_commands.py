"""The commands and Python snippets of README.md and docs/*.md work as written.

How the documents are read, the ``# needs: gpu|dcase|network|minutes`` marker and what each check does are in
``tests/doc_commands.py``. Without a pipeline run (seconds): every shell command of every document is parsed by the
real ``occ``, DVC and torchrun parsers and checked against ``dvc.yaml``, ``params.yaml`` and the repository's files;
a command no check knows fails; every Python snippet compiles. With the smoke pipeline (``slow``; the one run of the
session fixture ``smoke_pipeline``, which tests/test_pipeline_smoke.py checks): in a copy of that run, the README's
``occ`` commands run in document order (``dvc repro`` itself is the fixture's run, the README's ``dvc exp run -S``
ablation is run by tests/test_pipeline_smoke.py), and each document's Python snippets run in order in one interpreter.
A command marked ``needs: ...`` never runs, nor does one that reads what such a command would have written.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import doc_commands as dc

DOCS = dc.doc_files()
DOC_IDS = [dc._rel(p) for p in DOCS]
#: The kinds of command the README's execution runs (after the fixture's `dvc repro`, as a user would).
RUN_KINDS = {"occ generate", "occ heldout", "occ fad", "occ check-submission"}
#: Documents whose shell commands are executed (the others are parsed and checked only).
RUN_DOCS = ("README.md",)
#: Seconds a run command may take before the test gives up on it.
COMMAND_TIMEOUT = 600


@pytest.fixture(scope="module")
def checked() -> dict[str, list[dc.Checked]]:
    return {dc._rel(p): dc.check_commands(p) for p in DOCS}


def test_the_documents_are_read():
    """README.md and every docs/*.md, including the command references docs/cli.md and docs/scale-out.md."""
    assert {"README.md", "docs/cli.md", "docs/scale-out.md", "docs/package.md"} <= set(DOC_IDS)
    readme = dc.commands(dc.ROOT / "README.md")
    assert any(c.text.startswith("occ generate") for c in readme), "no `occ generate` read from README.md"
    assert any(s.doc == "docs/package.md" for p in DOCS for s in dc.snippets(p)), "no Python snippet read"


def test_after_the_set_up_the_quickstart_needs_no_network():
    """The quickstart's set-up lines download (and say so); the commands after them, the pipeline's main command
    among them, need no network: the set-up leaves nothing to fetch (tests/test_setup.py runs it offline)."""
    readme = (dc.ROOT / "README.md").read_text()
    first = readme.index("## Quickstart")
    quick = [c for c in dc.commands(dc.ROOT / "README.md") if c.line > readme[:first].count("\n")][:5]
    set_up = [c for c in quick if "needs: network" in c.comment]
    assert set_up and any("occ fetch-weights" in c.text for c in set_up), [str(c) for c in quick]
    after = [c for c in quick[quick.index(set_up[-1]) + 1:] if c.text.split()[0] in ("occ", "dvc", "python")]
    assert any(c.text.startswith("occ repro") for c in after), [str(c) for c in after]
    assert not [str(c) for c in after if "network" in c.needs]


@pytest.mark.parametrize("doc", DOC_IDS)
def test_doc_commands_parse_and_name_what_exists(doc, checked):
    problems = [f"{c.command}: {p}" for c in checked[doc] for p in c.problems]
    assert not problems, f"{len(problems)} problem(s) in the commands of {doc}:\n" + "\n".join(problems)


def test_needs_markers_are_known():
    unknown = [f"{c}: needs {', '.join(sorted(c.needs - set(dc.NEEDS)))} (known: {', '.join(dc.NEEDS)})"
               for p in DOCS for c in dc.commands(p) if c.needs - set(dc.NEEDS)]
    assert not unknown, "\n".join(unknown)


@pytest.mark.parametrize("doc", DOC_IDS)
def test_python_snippets_compile(doc):
    for sn in dc.snippets(dc.ROOT / doc):
        compile("\n" * (sn.line - 1) + sn.code, sn.doc, "exec")


def test_the_checks_catch_broken_commands(tmp_path):
    """Each kind of mistake in a made-up document is reported, naming the document's line."""
    doc = tmp_path / "broken.md"
    doc.write_text(textwrap.dedent("""\
        # Broken

        ```bash
        occ generate --checkpoint runs/train/o2c/seed0/checkpoint.pt --class DogBark --out x/ --bogus
        occ generate --checkpoint runs/train/o2c/seed0/checkpoint.pt --class Thunder --out y/
        occ fad y/ nowhere/
        dvc repro train@o2c-9
        dvc exp run -S 'train.stepz=5'
        dvc exp run -S 'variants.o2c.tau_c=0'
        dvc queue logs unnamed-exp
        python -m occ.pipeline.run_notebook notebooks/03_train.ipynb results/x.ipynb -p varient o2c
        python benchmarks/learning_curve.py --recipez no_ema
        python benchmarks/no_such_script.py
        CUDA_VISIBLE_DEVICES=0 occ train --variant o2c --seed 0
        cat results/no/such/file.csv
        torchrun --nproc_per_node 2 -m occ train --variant nope --seed 0   # needs: gpu
        ```

        ```console
        $ occ check-submission y/   # needs: typo
        ```
        """))
    found = {c.command.line: " | ".join(c.problems) for c in dc.check_commands(doc)}
    expected = {
        4: "unrecognized arguments: --bogus",
        5: "'Thunder' is not a class",
        6: "nowhere/: not in the repository",
        7: "'train@o2c-9' is not a stage",
        8: "no key 'train.stepz'",
        9: "variants.o2c.tau_c",
        10: "'unnamed-exp' is named by no earlier",
        11: "-p varient: not a parameter",
        12: "has no option --recipez",
        13: "benchmarks/no_such_script.py: not in the repository",
        14: "needs gpu but its comment does not say",
        15: "no check knows `cat results/no/such/file.csv`",
        16: "--variant nope: not a key of `variants`",
    }
    for line, text in expected.items():
        assert text in found.get(line, ""), f"broken.md:{line}: expected a problem with {text!r}, got {found.get(line)!r}"
    assert "results/no/such/file.csv: not in the repository" in found[15]
    assert found[20] == "" and {c.needs for c in dc.commands(doc) if c.line == 20} == {frozenset({"typo"})}


# ----------------------------------------------------------------------------- run on the smoke pipeline
def _ignore_for_copy(root: Path):
    skip = {root / ".git", root / ".dvc" / "cache", root / "runs" / "generated"}
    return lambda folder, names: [n for n in names if Path(folder) / n in skip]


@pytest.fixture(scope="module")
def doc_repo(smoke_pipeline, tmp_path_factory) -> Path:
    """A copy of the smoke run (without git, the DVC cache and the evaluation's WAVs) for the documents' commands."""
    repo = tmp_path_factory.mktemp("doc_commands") / "repo"
    shutil.copytree(smoke_pipeline.repo, repo, ignore=_ignore_for_copy(smoke_pipeline.repo), symlinks=True)
    return repo


def _aisfx_available() -> bool:
    """The aiSFX wheel is cached or can be fetched (the first `occ fad` would fetch it: network, once)."""
    from occ.errors import WeightsNotFoundError
    from occ.metrics.aisfx import ensure_wheel

    try:
        ensure_wheel()
    except WeightsNotFoundError:
        return False
    return True


def _plan(checked: list[dc.Checked]) -> list[tuple[dc.Command, str]]:
    """``(command, why not)`` per command line, in order; ``why not`` empty for a command to run."""
    plan, unavailable = [], set()
    by_line: dict[dc.Command, list[dc.Checked]] = {}
    for c in checked:
        by_line.setdefault(c.command, []).append(c)
    for command, parts in by_line.items():
        reads = {dc._norm(r) for c in parts for r in c.reads}
        why = ""
        if command.needs:
            why = f"needs {', '.join(sorted(command.needs))}"
        elif not all(c.kind in RUN_KINDS for c in parts):
            why = "not a kind this test runs: " + ", ".join(sorted({c.kind for c in parts} - RUN_KINDS))
        elif any(dc._under(r, unavailable) for r in reads):
            why = "reads what a command that did not run writes"
        elif any(c.kind == "occ fad" and c.parsed is not None and c.parsed.reference != "dcase-eval" and c.parsed.embedding in (None, "aisfx")
                 for c in parts) and not _aisfx_available():
            why = "the aiSFX wheel is not cached and cannot be fetched"
        if why:
            unavailable.update(dc._norm(w) for c in parts for w in c.writes)
        plan.append((command, why))
    return plan


@pytest.mark.slow
@pytest.mark.parametrize("doc", RUN_DOCS)
def test_doc_commands_run_on_the_smoke_run(doc, doc_repo, smoke_pipeline, checked):
    plan = _plan(checked[doc])
    ran, log = 0, []
    for command, why in plan:
        if why:
            log.append(f"not run: {command} ({why})")
            continue
        start = time.monotonic()
        proc = subprocess.run(["bash", "-c", command.text], cwd=doc_repo, env=smoke_pipeline.env, capture_output=True,
                              text=True, timeout=COMMAND_TIMEOUT)
        assert proc.returncode == 0, (f"{command} failed (exit {proc.returncode}) in a copy of the smoke run:\n"
                                      f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        ran += 1
        log.append(f"ran in {time.monotonic() - start:.1f} s: {command}")
    print("\n".join(log))
    assert ran, f"no command of {doc} ran:\n" + "\n".join(log)


RUN_SNIPPETS = """
import json, sys
ns = {"__name__": "__doc_snippets__"}
for doc, line, code in json.load(sys.stdin):
    exec(compile("\\n" * (line - 1) + code, doc, "exec"), ns)
"""


@pytest.mark.slow
@pytest.mark.parametrize("doc", [d for d in DOC_IDS if dc.snippets(dc.ROOT / d)])
def test_python_snippets_run_on_the_smoke_run(doc, doc_repo, smoke_pipeline):
    """A document's ``python`` blocks, in order, in one interpreter, in the project folder of the smoke run."""
    parts = [(sn.doc, sn.line, sn.code) for sn in dc.snippets(dc.ROOT / doc)]
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", RUN_SNIPPETS], input=json.dumps(parts), cwd=doc_repo,
                          env=smoke_pipeline.env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    assert proc.returncode == 0, f"the Python snippets of {doc} failed on the smoke run:\n{proc.stderr[-5000:]}"
    print(f"{doc}: {len(parts)} snippets in {time.monotonic() - start:.1f} s")
