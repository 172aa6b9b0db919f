"""The import graph of the ``occ`` package has no cycle, no layer imports a later one, each layer imports only what
its ``__init__`` declares ("May import: ..."), and ``occ`` never imports ``benchmarks/``.

Every import counts: module-level and inside functions, ``import occ.x``, ``from occ.x import y``,
``from occ import x`` and relative imports (``from . import x``, ``from .x import y``). A cycle, even one
through a function-level import, means two modules that cannot be understood (or changed) one without the
other; the failure names the modules of each cycle in order.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _module_names(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of ``package`` (``__init__`` names the package)."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that the module ``name`` (file ``path``) imports, anywhere in its source."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base = ".".join(base_parts[: len(base_parts) - (node.level - 1)])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)  # `from occ import gan_train`
    edges = set()
    for target in found:
        while target and target not in known:  # `import occ.x.y` where only occ.x is a module of ours
            target = target.rpartition(".")[0]
        if target and target != name:
            edges.add(target)
    return edges


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports."""
    modules = _module_names(package)
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (modules in import order, the first repeated at the end) per strongly connected component."""
    index, low, on_stack, stack, comps = {}, {}, set(), [], []

    def visit(v: str) -> None:  # Tarjan's algorithm; the package is small enough for recursion
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(set(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    out = []
    for comp in comps:
        start = min(comp)
        path, seen = [start], {start: 0}
        while True:  # walk inside the component until a module repeats: that stretch is a cycle
            nxt = min(w for w in graph[path[-1]] if w in comp)
            if nxt in seen:
                out.append(path[seen[nxt]:] + [nxt])
                break
            seen[nxt] = len(path)
            path.append(nxt)
    return sorted(out)


def test_the_graph_sees_every_kind_of_import(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from . import d\n")
    (pkg / "a.py").write_text("import pkg.b\n")
    (pkg / "b.py").write_text("def f():\n    from pkg.c import thing\n")
    (pkg / "c.py").write_text("from pkg import a\nfrom .sub.d import x\n")
    (pkg / "sub" / "d.py").write_text("from ..e import y\n")
    (pkg / "e.py").write_text("from .sub import d\nimport os\n")
    graph = import_graph(pkg)
    assert graph == {
        "pkg": set(), "pkg.sub": {"pkg.sub.d"}, "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.c"},
        "pkg.c": {"pkg", "pkg.a", "pkg.sub.d"}, "pkg.sub.d": {"pkg.e"}, "pkg.e": {"pkg.sub", "pkg.sub.d"},
    }
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.c", "pkg.a"], ["pkg.e", "pkg.sub", "pkg.sub.d", "pkg.e"]]


def test_occ_has_no_import_cycle():
    graph = import_graph(ROOT / "occ")
    assert "occ.metrics.fad" in graph and "occ.metrics.frechet" in graph["occ.metrics.fad"]  # the graph is the package's
    found = cycles(graph)
    assert not found, "import cycles in occ/ (module-level or function-level imports): " + "; ".join(
        " -> ".join(c) for c in found)


# The layers of occ/, lowest first: a module may import its own layer and the layers before it, never a later
# one. "occ" is the top-level basics (errors, atomic, paths, registry, config, device, seeding, checkpoint, typed_values,
# yaml_file): they import no layer.
LAYERS = ["occ", "occ.data", "occ.nets", "occ.train", "occ.synthesis", "occ.metrics", "occ.report", "occ.stages",
          "occ.pipeline", "occ.cli"]


def layer_of(module: str, layers: list[str]) -> int:
    """Index in ``layers`` of the deepest layer that holds ``module`` (``occ.x`` for a top-level module)."""
    best = -1
    for i, layer in enumerate(layers):
        if module == layer or module.startswith(layer + "."):
            if best < 0 or len(layer) > len(layers[best]):
                best = i
    return best


def layer_violations(graph: dict[str, set[str]], layers: list[str]) -> list[str]:
    """Every import of a later layer from an earlier one, as 'importer imports imported (layer a -> layer b)'."""
    out = []
    for module, targets in sorted(graph.items()):
        own = layer_of(module, layers)
        for target in sorted(targets):
            other = layer_of(target, layers)
            if other > own:
                out.append(f"{module} imports {target} ({layers[own]} may not import {layers[other]}, a later layer)")
    return out


def test_the_layering_check_names_the_import(tmp_path):
    pkg = tmp_path / "pkg"
    for sub in ("low", "high"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "basics.py").write_text("")
    (pkg / "high" / "user.py").write_text("from pkg.low import tool\nfrom pkg import basics\n")
    (pkg / "low" / "tool.py").write_text("def f():\n    from pkg.high.user import thing\n")
    found = layer_violations(import_graph(pkg), ["pkg", "pkg.low", "pkg.high"])
    assert found == ["pkg.low.tool imports pkg.high.user (pkg.low may not import pkg.high, a later layer)"]


def test_every_module_is_in_a_layer_and_no_layer_imports_a_later_one():
    graph = import_graph(ROOT / "occ")
    graph["occ.cli.__main__"] = graph.pop("occ.__main__")  # `python -m occ` is the command line: the cli layer
    subpackages = {f"occ.{p.name}" for p in (ROOT / "occ").iterdir() if (p / "__init__.py").is_file()}
    assert subpackages == set(LAYERS[1:]), f"occ/'s subpackages and LAYERS differ: {sorted(subpackages ^ set(LAYERS[1:]))}"
    found = layer_violations(graph, LAYERS)
    assert not found, "a lower layer imports a higher one:\n" + "\n".join(found)


def test_every_subpackage_says_what_it_holds_and_may_import():
    for layer in LAYERS[1:]:
        init = ROOT / layer.replace(".", "/") / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert "May import" in doc, f"{init.relative_to(ROOT)}: its docstring says what the layer may import"
        assert not [n for n in ast.parse(init.read_text()).body if not isinstance(n, ast.Expr)], (
            f"{init.relative_to(ROOT)} holds only its docstring (importing a layer imports nothing else)")


def declared_imports(layers: list[str], docstrings: dict[str, str]) -> dict[str, set[str]]:
    """Layer -> the layers it may import, read from its ``__init__``'s docstring: after "May import:", "the top-level
    basics" (or a top-level module, ``occ.errors``) is ``occ``, each ``occ.<layer>`` that layer, "every layer below
    it" every earlier layer, and "(and what those may import)" adds what the named layers may import; a layer may
    always import itself."""
    out: dict[str, set[str]] = {}
    for i, layer in enumerate(layers):
        if layer not in docstrings:
            out[layer] = {layer}
            continue
        text = docstrings[layer].split("May import:", 1)[1]
        allowed = {layers[layer_of(name, layers)] for name in re.findall(r"``(occ(?:\.\w+)*)``", text)}
        if "top-level basics" in text:
            allowed.add("occ")
        if "every layer below it" in text:
            allowed.update(layers[:i])
        if "what those may import" in text:
            for name in list(allowed):
                allowed |= out.get(name, set())
        out[layer] = allowed | {layer}
    return out


def undeclared_imports(graph: dict[str, set[str]], allowed: dict[str, set[str]], layers: list[str]) -> list[str]:
    """Every import of a layer its importer's ``__init__`` does not declare, as 'importer imports imported (...)'."""
    out = []
    for module, targets in sorted(graph.items()):
        own = layers[layer_of(module, layers)]
        for target in sorted(targets):
            other = layers[layer_of(target, layers)]
            if other not in allowed[own]:
                out.append(f"{module} imports {target} ({own} declares it may import {sorted(allowed[own])})")
    return out


def _docstrings() -> dict[str, str]:
    return {layer: ast.get_docstring(ast.parse((ROOT / layer.replace(".", "/") / "__init__.py").read_text())) or ""
            for layer in LAYERS[1:]}


def test_the_declared_imports_are_read_from_each_layers_docstring():
    allowed = declared_imports(LAYERS, _docstrings())
    assert allowed["occ.data"] == {"occ", "occ.data"}
    assert allowed["occ.synthesis"] == {"occ", "occ.data", "occ.nets", "occ.synthesis"}  # not occ.train
    assert allowed["occ.report"] == {"occ", "occ.data", "occ.nets", "occ.synthesis", "occ.metrics", "occ.report"}
    assert allowed["occ.pipeline"] == {"occ", "occ.pipeline"}
    assert allowed["occ.cli"] == set(LAYERS)
    graph = {"occ.synthesis.x": {"occ.train.y", "occ.data.z"}, "occ.train.y": set(), "occ.data.z": set()}
    assert undeclared_imports(graph, allowed, LAYERS) == [
        "occ.synthesis.x imports occ.train.y (occ.synthesis declares it may import "
        "['occ', 'occ.data', 'occ.nets', 'occ.synthesis'])"]


def test_every_layer_imports_only_what_its_init_declares():
    graph = import_graph(ROOT / "occ")
    graph["occ.cli.__main__"] = graph.pop("occ.__main__")
    found = undeclared_imports(graph, declared_imports(LAYERS, _docstrings()), LAYERS)
    assert not found, "an import its layer does not declare:\n" + "\n".join(found)


def test_occ_never_imports_the_benchmarks():
    """The package stands alone: nothing in occ/ imports benchmarks/ (by package or by a script's module name)."""
    scripts = {p.stem for p in (ROOT / "benchmarks").glob("*.py")} | {"benchmarks"}
    found = []
    for path in sorted((ROOT / "occ").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            found += [f"{path.relative_to(ROOT)} imports {n}" for n in names if n.split(".")[0] in scripts]
    assert not found, "\n".join(found)
