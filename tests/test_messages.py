"""Every DVC stage a message recommends exists: the stage names quoted in occ's strings against dvc.yaml."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PATTERNS = [
    re.compile(r"dvc repro ([A-Za-z_][\w-]*(?:@[\w<>-]+)?)"),
    re.compile(r"stage `([A-Za-z_][\w-]*)`"),
    re.compile(r"`([A-Za-z_][\w-]*)` stage"),
    re.compile(r"\bthe ([A-Za-z_][\w-]*) stage\b"),
]


def _strings(path: Path) -> list[str]:
    """The string literals of a module (f-string parts included), docstrings left out."""
    tree = ast.parse(path.read_text())
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                docstrings.add(id(first.value))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            out.append(node.value)
    # adjacent literals and f-string parts concatenated by the parser are single constants already; join
    # consecutive pieces of an f-string too, so a name split by a placeholder is not half-read
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            out.append("".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values))
    return out


def quoted_stages() -> dict[str, list[str]]:
    """Stage name -> the modules whose messages name it."""
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "occ").rglob("*.py")):
        for text in _strings(path):
            for pattern in PATTERNS:
                for name in pattern.findall(text):
                    found.setdefault(name, []).append(path.relative_to(ROOT).as_posix())
    return found


def test_messages_name_only_stages_that_exist():
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    stages = dvc["stages"]
    variants = yaml.safe_load((ROOT / "params.yaml").read_text())["variants"]
    found = quoted_stages()
    assert "data" in found and "supcon" in found  # the scan sees the messages
    wrong = {}
    for name, where in found.items():
        base, _, key = name.partition("@")
        stage = stages.get(base)
        if stage is None or (key and "foreach" not in stage and "matrix" not in stage):
            wrong[name] = where
        elif key and "matrix" in stage and key.count("-") != len(stage["matrix"]) - 1:
            wrong[name] = where  # a matrix stage is named by all its axes: train@<variant>-<seed>
        elif key and not key.startswith("<") and key.split("-")[0] not in variants and key not in variants:
            wrong[name] = where
    assert not wrong, f"messages recommend stages that dvc.yaml does not define: {wrong}"
