"""The committed executed notebooks read well: every declared figure is shown inline, under a caption, and
nothing in them is run noise (library warnings, tracebacks, absolute paths); each converts to HTML.

The stages, their executed notebooks and their figures come from dvc.lock (every resolved stage, `foreach`
included, with the outputs of the run that produced results/).
"""

from __future__ import annotations

import ast
import base64
import re
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ABSOLUTE = ("/home/", "/root/", "/tmp/", "/Users/", "site-packages")
ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])/(?:[\w.+-]+/)+[\w.+-]*")  # /a/b/..., not URLs, not relative paths
DATA_URI = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=\s]*")
WARNING_LINE = re.compile(r"\b(\w*Warning):")


def _lock_stages() -> dict[str, list[str]]:
    """Resolved stage name -> its output paths (dvc.lock)."""
    path = ROOT / "dvc.lock"
    if not path.is_file():
        return {}
    stages = yaml.safe_load(path.read_text()).get("stages", {})
    return {name: [out["path"] for out in stage.get("outs", [])] for name, stage in stages.items()}


def _stage_notebook(outs: list[str]) -> str | None:
    notebooks = [p for p in outs if p.endswith(".ipynb")]
    return notebooks[0] if len(notebooks) == 1 else None


STAGES = _lock_stages()
NOTEBOOKS = sorted({nb for outs in STAGES.values() if (nb := _stage_notebook(outs))}
                   | {p.relative_to(ROOT).as_posix() for p in (ROOT / "results").rglob("*.ipynb")})


def _outputs(nb):
    for index, cell in enumerate(nb.cells):
        for position, output in enumerate(cell.get("outputs", [])):
            yield index, position, cell, output


def _images(nb) -> list[tuple[int, int, bytes, dict]]:
    """(cell, position, PNG bytes, metadata) of every inline PNG."""
    found = []
    for index, position, _, output in _outputs(nb):
        data = output.get("data", {})
        if "image/png" in data:
            png = data["image/png"]
            found.append((index, position, base64.b64decode("".join(png) if isinstance(png, list) else png),
                          dict(output.get("metadata", {}))))
    return found


def _text_view(nb) -> list[tuple[str, str]]:
    """(where, text) of everything a reader sees or the file holds, without the base64 payloads."""
    texts = [("notebook metadata", str(nb.metadata))]
    for index, cell in enumerate(nb.cells):
        texts.append((f"cell {index} source", cell.source))
        texts.append((f"cell {index} metadata", str(cell.get("metadata", {}))))
    for index, position, _, output in _outputs(nb):
        where = f"cell {index} output {position} ({output.get('output_type')})"
        if output.get("output_type") == "stream":
            texts.append((where, output.get("text", "")))
        elif output.get("output_type") == "error":
            texts.append((where, "\n".join(output.get("traceback", []))))
        for mime, value in output.get("data", {}).items():
            if mime.startswith(("text/", "application/json")):
                texts.append((f"{where} {mime}", DATA_URI.sub("data:", str(value))))
        texts.append((f"{where} metadata", str(output.get("metadata", {}))))
    return texts


def _project_warnings() -> set[str]:
    """Names of the warning categories the package defines (its own one-line reports)."""
    names = set()
    for path in (ROOT / "occ").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.name.endswith("Warning"):
                names.add(node.name)
    return names


def _read(rel: str):
    path = ROOT / rel
    assert path.is_file(), f"{rel} is recorded in dvc.lock but missing: run `dvc repro` and commit results/"
    return nbformat.read(path, as_version=4)


def test_dvc_lock_names_the_executed_notebooks():
    assert STAGES, "dvc.lock records no stages: run `dvc repro` and commit dvc.lock"
    for name, outs in STAGES.items():
        notebooks = [p for p in outs if p.endswith(".ipynb")]
        assert len(notebooks) == 1, f"stage {name!r} should write one executed notebook, dvc.lock lists {notebooks}"
    assert any(p.endswith(".png") for outs in STAGES.values() for p in outs), "dvc.lock records no figure"


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_declared_figure_is_shown_inline_under_a_caption(stage):
    outs = STAGES[stage]
    rel = _stage_notebook(outs)
    assert rel, f"stage {stage!r} has no single executed notebook"
    nb = _read(rel)
    images = _images(nb)
    shown = {png for _, _, png, _ in images}
    for figure in sorted(p for p in outs if p.endswith(".png")):
        path = ROOT / figure
        assert path.is_file(), f"{figure} is recorded in dvc.lock but missing"
        if path.read_bytes() not in shown:
            named = [m for _, _, _, m in images if m.get("occ", {}).get("file") == figure]
            hint = ("an inline image names it but differs from the file (stale results?)" if named else
                    "no inline image; write it with occ.report.display.save_figure in the stage's call, show it with show_saved")
            pytest.fail(f"{figure} is not shown in {rel}: {hint}")
    declared = sum(p.endswith(".png") for p in outs)
    assert len(images) == declared, (
        f"{rel} shows {len(images)} inline images, stage {stage!r} declares {declared} PNG figures: "
        "show every figure once, with occ.report.display.show_saved, and declare the PNG the stage writes")
    for index, position, _, _ in images:
        before = nb.cells[index].outputs[position - 1] if position else None
        assert before is not None and "text/markdown" in before.get("data", {}), (
            f"{rel}: the image in cell {index} has no markdown caption right above it")


@pytest.mark.parametrize("rel", NOTEBOOKS)
def test_no_absolute_paths_warnings_or_tracebacks(rel):
    nb = _read(rel)
    for key in ("input_path", "output_path"):
        recorded = str(nb.metadata.get("papermill", {}).get(key, ""))
        assert not recorded.startswith("/"), f"{rel}: papermill recorded an absolute {key} ({recorded!r})"
    for where, text in _text_view(nb):
        for needle in ABSOLUTE:
            assert needle not in text, f"{rel}, {where}: an absolute path ({needle!r}) in {text[:300]!r}"
        found = ABSOLUTE_PATH.search(text)
        assert not found, f"{rel}, {where}: an absolute path ({found.group(0)!r})"
    own = _project_warnings()
    for index, position, _, output in _outputs(nb):
        assert output.get("output_type") != "error", f"{rel}: cell {index} ended in an error"
        if output.get("output_type") != "stream":
            continue
        text = output.get("text", "")
        assert "Traceback" not in text, f"{rel}: a traceback in cell {index}: {text[:300]!r}"
        for line in text.splitlines():
            match = WARNING_LINE.search(line)
            if match and not line.startswith(tuple(f"{name}: " for name in own)):
                pytest.fail(f"{rel}: a library warning in cell {index}: {line[:300]!r}")


@pytest.mark.parametrize("rel", NOTEBOOKS)
def test_converts_to_html_with_one_img_per_figure(rel):
    from nbconvert import HTMLExporter

    nb = _read(rel)
    html, _ = HTMLExporter().from_notebook_node(nb)
    assert "<html" in html.lower() and len(html) > 1000, f"{rel}: nbconvert produced no page"
    n_img = len(re.findall(r"<img\b", html))
    assert n_img == len(_images(nb)), f"{rel}: the HTML holds {n_img} <img> for {len(_images(nb))} figures"
