"""Every params.yaml key a notebook reads is declared in the ``params:`` of the dvc.yaml stage that runs it.

A read is found statically: the notebook's code cells are parsed (``nbformat``, ``ast``), the object that
``load_params(...)`` returns is followed through attribute reads (``params.train.steps`` -> ``train.steps``,
``getattr(cfg, "preset")``), and where a whole section (or the whole ``params``) is passed to a function of
``occ`` the reads of that function's parameter are followed too, into the functions it passes it on to.
A section used as a whole in any other way (displayed, stored in a checkpoint, given to code outside
``occ``) is a read of the whole section. A declared section covers its keys; ``profile`` and
``profiles.${profile}`` must be declared by every stage (``load_params`` merges the active profile), and a
stage that loads a variant and reads ``train`` must declare ``variants.${item.variant}`` too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

from occ.registry import STAGES
from occ.report.notebook import Notebook
from test_dvc_files import _stages

ROOT = Path(__file__).resolve().parents[1]

#: Where the parameters sit in what ``occ.report.notebook.open_notebook`` returns (it calls ``load_params``; of the
#: parameters it only checks the seed, which names ``seeds`` in its error message only).
NOTEBOOK_PARAMS = Notebook._fields.index("params")
#: Top-level keys of params.yaml that are values, not sections.
TOP_KEYS = {"profile", "seed", "device", "seeds", "run_variants"}
SECTIONS = {"data", "model", "supcon", "train", "eval"}
#: Methods of the params objects and what they read: validation only (a bad value raises, nothing else),
#: and ``check_seed``, which names ``seeds`` in its error message only.
METHOD_READS = {"check": (), "check_seed": ()}
#: Functions that look at a whole section without depending on its values beyond what they return:
#: none; ``to_dict`` and friends are whole reads.
VARIANT_DEP = "variants.${item.variant}"
#: Reads a stage may leave undeclared, with the reason. `05_evaluate` reads `seeds[0]` only to decide which seed's
#: notebook embeds the audio players (presentation, no result); declaring `seeds` would make every evaluation
#: out of date whenever a seed is added, which the smoke pipeline test forbids.
UNDECLARED = {"evaluate": {"seeds"}}


def _module_tree(module: str) -> ast.Module | None:
    path = ROOT / "occ" / f"{module}.py"
    return ast.parse(path.read_text()) if path.is_file() else None


class _Namespace:
    """What the names of a module (or a notebook) refer to: occ modules, occ functions, local functions."""

    def __init__(self, tree: ast.Module, module: str | None) -> None:
        self.module, self.modules, self.functions = module, {}, {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for a in node.names:
                    if node.module == "occ" or node.module.startswith("occ."):
                        sub = "/".join(node.module.split(".")[1:] + [a.name])  # `from occ.data import audio`
                        if (ROOT / "occ" / f"{sub}.py").is_file():
                            self.modules[a.asname or a.name] = sub
                        elif node.module.startswith("occ."):  # `from occ.data.audio import log_mel`
                            self.functions[a.asname or a.name] = ("/".join(node.module.split(".")[1:]), a.name)
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("occ.") and a.asname:
                        self.modules[a.asname] = "/".join(a.name.split(".")[1:])
        if module is not None:
            for node in tree.body:
                if isinstance(node, ast.FunctionDef):
                    self.functions[node.name] = (module, node.name)

    def resolve(self, func: ast.expr) -> tuple[str, str] | None:
        if isinstance(func, ast.Name):
            return self.functions.get(func.id)
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in self.modules:
            return self.modules[func.value.id], func.attr
        return None


_TREES: dict[str, ast.Module | None] = {}


def _function(module: str, name: str) -> tuple[ast.FunctionDef, _Namespace] | None:
    if module not in _TREES:
        _TREES[module] = _module_tree(module)
    tree = _TREES[module]
    if tree is None:
        return None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node, _Namespace(tree, module)
    return None


def _is_leaf(path: tuple[str, ...]) -> bool:
    return len(path) >= 2 or (len(path) == 1 and path[0] in TOP_KEYS)


class _Reads:
    """Collects the params keys read from ``names`` (local name -> path in params.yaml) in a body of code."""

    def __init__(self) -> None:
        self.reads: set[tuple[str, ...]] = set()
        self._done: set[tuple] = set()

    def run(self, body: list[ast.stmt], names: dict[str, tuple[str, ...]], ns: _Namespace) -> None:
        parents = {}
        for stmt in body:
            for node in ast.walk(stmt):
                for child in ast.iter_child_nodes(node):
                    parents[child] = node
        for stmt in body:
            for node in ast.walk(stmt):
                path = self._path(node, names)
                if path is None or isinstance(parents.get(node), ast.Attribute) and parents[node].value is node \
                        and self._path(parents[node], names) is not None:
                    continue  # the inner part of a longer chain
                self._use(node, path, parents, names, ns)

    def _path(self, node: ast.AST, names: dict[str, tuple[str, ...]]) -> tuple[str, ...] | None:
        chain = []
        while isinstance(node, ast.Attribute):
            chain.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name) or node.id not in names or not isinstance(node.ctx, ast.Load):
            return None
        path = names[node.id]
        for attr in reversed(chain):
            if _is_leaf(path):
                break
            path = path + (attr,)
        return path

    def _use(self, node, path, parents, names, ns) -> None:
        parent = parents.get(node)
        if path and path[-1] in METHOD_READS and isinstance(parent, ast.Call) and parent.func is node:
            self.reads.update(METHOD_READS[path[-1]])
            return
        if _is_leaf(path):
            self.reads.add(path[:2])
            return
        if isinstance(parent, ast.keyword):  # f(name=params.x): the call is one level up
            parent = parents[parent]
        if isinstance(parent, ast.Call) and parent.func is not node:
            if isinstance(parent.func, ast.Name) and parent.func.id in ("getattr", "hasattr") \
                    and len(parent.args) >= 2 and isinstance(parent.args[1], ast.Constant):
                self.reads.add(path + (parent.args[1].value,))
                return
            target = ns.resolve(parent.func)
            if target == ("registry", "stage_threads") and len(parent.args) == 2 \
                    and isinstance(parent.args[1], ast.Constant):  # the threads of the stage's section, if any
                section = STAGES[parent.args[1].value].threads_section
                self.reads.update({(section, "threads")} if section else set())
                return
            found = _function(*target) if target else None
            if found is not None and self._follow(found, parent, node, path):
                return
        if isinstance(parent, ast.Assign) and parent.value is node and all(isinstance(t, ast.Name) for t in parent.targets):
            for t in parent.targets:
                names[t.id] = path  # an alias: its reads are found where it is used
            return
        self.reads.add(path)  # used whole

    def _follow(self, found, call: ast.Call, arg: ast.AST, path: tuple[str, ...]) -> bool:
        func, ns = found
        params = [a.arg for a in func.args.posonlyargs + func.args.args]
        name = None
        if arg in call.args:
            i = call.args.index(arg)
            name = params[i] if i < len(params) else None
        else:
            kw = next(k for k in call.keywords if k.value is arg)
            if kw.arg in params + [a.arg for a in func.args.kwonlyargs]:
                name = kw.arg
        if name is None:
            return False
        key = (ns.module, func.name, name, path)
        if key not in self._done:
            self._done.add(key)
            self.run(func.body, {name: path}, ns)
        return True


def _notebook_reads(path: Path) -> tuple[set[tuple[str, ...]], bool]:
    """The params keys a notebook reads, and whether it loads a variant."""
    nb = nbformat.read(path, as_version=4)
    source = "\n".join(
        line for cell in nb.cells if cell.cell_type == "code"
        for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!"))
    )
    tree = ast.parse(source)
    names, with_variant = {}, False
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            func = node.value.func
            called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if called == "load_params":
                names.update({t.id: () for t in node.targets if isinstance(t, ast.Name)})
            elif called == "open_notebook":  # `layout, params, out = open_notebook(...)`: load_params inside
                names.update({t.elts[NOTEBOOK_PARAMS].id: () for t in node.targets
                              if isinstance(t, ast.Tuple) and isinstance(t.elts[NOTEBOOK_PARAMS], ast.Name)})
            else:
                continue
            with_variant |= any(k.arg == "variant" for k in node.value.keywords)
    assert names, (f"{path.name}: no `params = load_params(...)` or `layout, params, out = open_notebook(...)` found; "
                   "teach this test how the notebook reads params")
    reads = _Reads()
    reads.run(tree.body, names, _Namespace(tree, None))
    return reads.reads, with_variant


def _declared_missing(reads: set[tuple[str, ...]], declared: set[str], with_variant: bool) -> list[str]:
    missing = set()
    for path in reads:
        if not path:
            missing.add("(all of params: the whole object is used)")
        elif not any(".".join(path[:i]) in declared for i in range(1, len(path) + 1)):
            missing.add(".".join(path))
        if with_variant and path[:1] == ("train",) and VARIANT_DEP not in declared:
            missing.add(VARIANT_DEP)
    for always in ("profile", "profiles.${profile}"):
        if always not in declared:
            missing.add(always)
    return sorted(missing)


@pytest.mark.parametrize("stage", sorted(_stages()))
def test_stage_declares_every_param_its_notebook_reads(stage):
    spec = _stages()[stage]
    spec = spec.get("do", spec)
    notebook = next(str(d) for d in spec["deps"] if str(d).startswith("notebooks/"))
    reads, with_variant = _notebook_reads(ROOT / notebook)
    assert reads, f"{notebook}: no params read found"
    declared = {str(p) for p in spec.get("params", [])}
    missing = [m for m in _declared_missing(reads, declared, with_variant) if m not in UNDECLARED.get(stage, ())]
    assert not missing, f"dvc.yaml stage {stage!r} runs {notebook}, which reads {missing}: add them to its params"
    stale = sorted(UNDECLARED.get(stage, set()) & declared)
    assert not stale, f"dvc.yaml stage {stage!r} declares {stale}, listed in UNDECLARED: drop one of them"


def _one_cell_reads(tmp_path: Path, src: str) -> tuple[set[tuple[str, ...]], bool]:
    """:func:`_notebook_reads` of a notebook whose one code cell is ``src``."""
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src)]), tmp_path / "n.ipynb")
    return _notebook_reads(tmp_path / "n.ipynb")


def test_reads_are_found_through_attributes_calls_and_aliases(tmp_path):
    src = (
        "from occ.config import load_params\nfrom occ.report import readme\n"
        "params = load_params('p', variant=v)\nx = params.train.steps\ncfg = params.model\nprint(cfg.g_ch)\n"
        "params.check_seed(1)\ny = getattr(params.eval, 'prdc_k')\nparams.data\n"
        "readme.results_readme(1, 2, 3, 4, 5, label='', params=params)\n"
    )
    reads, with_variant = _one_cell_reads(tmp_path, src)
    assert with_variant
    assert {("train", "steps"), ("model", "g_ch"), ("eval", "prdc_k"), ("data",)} <= reads
    assert ("profile",) in reads and ("eval", "vocoder") in reads  # read inside occ.report.readme.results_readme
    assert _declared_missing(reads, {"profile", "profiles.${profile}", "data", "model", "eval", "train"}, True) \
        == [VARIANT_DEP]


def test_a_notebook_opened_by_open_notebook_reads_what_its_stage_call_reads(tmp_path):
    src = (
        "from occ.report.notebook import open_notebook\nfrom occ.registry import stage_threads\n"
        "layout, params, out = open_notebook('train', variant=v, seed=0)\nn = stage_threads(params, 'supcon')\n"
        "x = params.train.steps\n"
    )
    reads, with_variant = _one_cell_reads(tmp_path, src)
    assert with_variant and reads == {("supcon", "threads"), ("train", "steps")}
