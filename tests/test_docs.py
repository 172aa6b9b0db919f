"""The module lists in the documentation match the package: README.md's layout and docs/architecture.md's
module map name every module of occ/, and the map's "imports from occ" column is the one the source has."""

from __future__ import annotations

import ast
import re
import tempfile
from pathlib import Path

from test_imports import ROOT, _imports, _module_names

MODULES = _module_names(ROOT / "occ")
#: The layers (subpackages): their ``__init__`` holds only a docstring, so importing one imports nothing else.
LAYER_PACKAGES = {m for m, p in MODULES.items() if p.name == "__init__.py" and m != "occ"}


def _short(name: str) -> str:
    return name.partition(".")[2] or "__init__"


def _imports_column(name: str) -> str:
    """``a, b, *c, d*``: module-level imports, then (in italics) those made only inside functions."""
    path = MODULES[name]
    everything = _imports(name, path, set(MODULES))
    tree = ast.parse(path.read_text())
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    top += [n for block in tree.body if isinstance(block, (ast.If, ast.Try)) for n in ast.walk(block)
            if isinstance(n, (ast.Import, ast.ImportFrom))]
    module_level = set()
    if top:
        with tempfile.TemporaryDirectory() as tmp:  # the module-level imports alone, resolved as the module's
            stub = Path(tmp) / path.name
            stub.write_text(ast.unparse(ast.Module(body=top, type_ignores=[])))
            module_level = _imports(name, stub, set(MODULES))
    everything -= LAYER_PACKAGES
    module_level -= LAYER_PACKAGES
    lazy = everything - module_level
    column = ", ".join(sorted(_short(m) for m in module_level))
    if lazy:
        column += (", " if column else "") + "*" + ", ".join(sorted(_short(m) for m in lazy)) + "*"
    return column or "—"


def _layer(name: str) -> str:
    """``occ.data.audio`` -> ``occ.data``; a top-level module (``occ.errors``, ``occ``) -> ``occ``."""
    parts = name.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 or (len(parts) == 2 and name in LAYER_PACKAGES) else "occ"


def test_readme_layout_names_every_module_and_readme_stays_short():
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout"):]
    block = layout[layout.index("```") + 3:]
    block = block[:block.index("```")]
    rows, key = {}, None
    for line in block.splitlines():  # `occ/` and `  data/` lines (and their continuations) name a layer's modules
        head = line.split()[0] if line.strip() else ""
        if head == "occ/" or (line.startswith("  ") and head.endswith("/") and f"occ.{head[:-1]}" in LAYER_PACKAGES):
            key = "occ" if head == "occ/" else f"occ.{head[:-1]}"
            rows[key] = line
        elif key and line.startswith(" " * 16):
            rows[key] += " " + line
        else:
            key = None
    missing = sorted(m for m in MODULES if m not in LAYER_PACKAGES and m != "occ"
                     and _short(m).rpartition(".")[2] not in re.findall(r"[a-z_0-9]+", rows.get(_layer(m), "")))
    assert not missing, f"README.md's layout does not name {missing} on its layer's line"
    assert len(readme.splitlines()) <= 200, "README.md is over 200 lines: move detail into docs/"


def test_architecture_module_map_is_the_package():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    doc = doc[doc.index("## Module map"):doc.index("## Pipeline")]
    sections = re.split(r"^### ", doc, flags=re.M)[1:]
    rows = {}
    for section in sections:
        heading = re.match(r"`(occ(?:/[a-z_]+)?)/?`", section)
        assert heading, f"docs/architecture.md: a module-map section heading is not a layer: {section.splitlines()[0]}"
        layer = heading.group(1).replace("/", ".")
        for short, column in re.findall(r"^\| `([a-z_0-9]+)` \| .* \| (.*) \|$", section, re.M):
            rows[f"{layer}.{short}" if short != "__init__" or layer != "occ" else "occ"] = column
    expected = {m: _imports_column(m) for m in MODULES if m not in LAYER_PACKAGES}
    assert sorted(rows) == sorted(expected), (
        f"docs/architecture.md's module map is not occ/'s modules: missing {sorted(set(expected) - set(rows))}, "
        f"extra {sorted(set(rows) - set(expected))}")
    wrong = {m: (rows[m], col) for m, col in expected.items() if rows[m] != col}
    assert not wrong, f"docs/architecture.md: imports column (written, from the source): {wrong}"
