"""The module lists in the documentation match the package: README.md's layout and docs/architecture.md's
module map name every module of occ/, and the map's "imports from occ" column is the one the source has."""

from __future__ import annotations

import ast
import re
import tempfile
from pathlib import Path

from test_imports import ROOT, _imports, _module_names

MODULES = _module_names(ROOT / "occ")


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
    lazy = everything - module_level
    column = ", ".join(sorted(_short(m) for m in module_level))
    if lazy:
        column += (", " if column else "") + "*" + ", ".join(sorted(_short(m) for m in lazy)) + "*"
    return column or "—"


def test_readme_layout_names_every_module_and_readme_stays_short():
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout"):]
    missing = sorted(p.name for p in MODULES.values() if p.parent.name == "occ" and p.name not in layout)
    assert not missing, f"README.md's layout does not name {missing}"
    assert len(readme.splitlines()) <= 200, "README.md is over 200 lines: move detail into docs/"


def test_architecture_module_map_is_the_package():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    rows = dict(re.findall(r"^\| `([a-z_0-9]+)` \| .* \| (.*) \|$", doc[:doc.index("## Pipeline")], re.M))
    assert sorted(rows) == sorted(_short(m) for m in MODULES), "docs/architecture.md's module map is not occ/'s modules"
    wrong = {short: (rows[short], col) for short, col in ((_short(m), _imports_column(m)) for m in MODULES)
             if rows[short] != col}
    assert not wrong, f"docs/architecture.md: imports column (written, from the source): {wrong}"
