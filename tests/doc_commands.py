"""The shell commands and Python snippets of README.md and docs/*.md, and the checks each one gets.

Read by ``tests/test_doc_commands.py``. The conventions the documentation follows:

* A fenced block whose info string is empty, ``bash``, ``sh``, ``shell``, ``zsh`` or ``console`` holds shell
  commands (in a ``console`` block only the lines starting with ``$``); a ``python`` block is a Python snippet;
  any other block (``text``, ``mermaid``, ``yaml``, ...) is not read.
* One command per line; a line ending in ``\\`` continues on the next; ``&&``, ``||``, ``;`` and ``|`` separate
  simple commands; ``#`` after a blank starts the line's comment.
* A command that needs what a test run does not have says so in its comment, anywhere in it:
  ``# needs: gpu`` (a CUDA GPU), ``needs: dcase`` (the DCASE 2023 Task 7 development set), ``needs: network``
  (a download), ``needs: minutes`` (minutes of CPU time, more than the test suite can give one command), several
  separated by commas (``# one run on 4 GPUs; needs: gpu``). A line ``<!-- needs: ... -->`` right before a fence
  marks every command of its block. Such a command is parsed and checked like any other, never run.

Every simple command is handled by one of the checks below (:func:`check_commands`); a command no check knows
fails the suite until a check or an entry of the syntax-only list (:data:`SYNTAX_ONLY`) is added here.

* ``occ ...``, ``python -m occ ...`` and ``torchrun ... -m occ ...``: parsed by the ``occ`` command's own parser
  (``occ.cli.main.build_parser``; torchrun's options by ``torch.distributed.run``'s parser); class names,
  variants, seeds, profiles and stage names checked against ``params.yaml`` and ``dvc.yaml``.
* ``dvc ...``: parsed by DVC's own parser; stage targets checked against the stages ``dvc.yaml`` expands to
  (``train@o2c-0``); ``-S key=value`` keys checked against ``params.yaml`` and each value (every point of a grid)
  loaded with ``occ.config.load_params``; experiment names used after ``-n NAME`` named them.
* ``python -m occ.pipeline.run_notebook`` / ``papermill``: the notebook exists, each ``-p`` name is a parameter
  of its parameters cell, ``variant`` and ``seed`` values are in ``params.yaml``.
* ``python benchmarks/x.py --flag`` (any ``python SCRIPT.py``) and ``bash SCRIPT.sh``: the script exists, each
  flag is an option its ``add_argument`` calls define (read from the source, not run), a shell script passes
  ``bash -n``.
* ``python -m pytest``: its ``-m`` markers are registered, its paths exist.
* Every path a command names under a top-level entry of the repository (``notebooks/``, ``results/``,
  ``benchmarks/``, ``docs/``, ``runs/``, ``data/``, ...), and every folder or file an ``occ`` command reads,
  exists in the repository, is an output of a ``dvc.yaml`` stage, or is written by an earlier command of the
  same document.
* Commands that need a GPU, the DCASE data or a download in a way the checks can see (``CUDA_VISIBLE_DEVICES``,
  ``--device cuda``, ``-S gpu=N``, ``profile=paper``, VGGish weights, ``pip install``, ...) carry the marker.
* Every command passes ``bash -n``.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import fnmatch
import functools
import io
import re
import shlex
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

SHELL_LANGS = {"", "bash", "sh", "shell", "zsh", "console"}
PYTHON_LANGS = {"python", "py"}
NEEDS = ("gpu", "dcase", "network", "minutes")
_NEEDS_LIST = r"([a-z][a-z-]*(?:\s*,\s*[a-z][a-z-]*)*)"
NEEDS_RE = re.compile(r"\bneeds:\s*" + _NEEDS_LIST)
BLOCK_NEEDS_RE = re.compile(r"^\s*<!--\s*needs:\s*" + _NEEDS_LIST + r"\s*-->\s*$")
FENCE_RE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([^\s`]*)")
SEPARATORS = {"&&", "||", ";", "|", "&"}
PYTHON_RE = re.compile(r"^(?:.*/)?python(?:3(?:\.\d+)?)?$")
PIP_RE = re.compile(r"^(?:.*/)?pip3?$")
OCC_RE = re.compile(r"^(?:.*/)?occ$")  # `occ`, or the venv's `.venv/bin/occ` in the set-up line
ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
GIT_REFS = {"HEAD", "main", "master", "workspace"}

#: Command kinds that are only syntax-checked (``bash -n``), with the needs each one always has.
SYNTAX_ONLY = {
    "python -m venv": (),
    "pip install": ("network",),
    "pip download": ("network",),
    "conda env create": ("network",),
    "conda create": ("network",),
    "conda activate": (),
    "source": (),
    "cd": (),
    "git add": (),
    "git commit": (),
    "git clone": ("network",),
    "jupyter lab": (),
}


# ----------------------------------------------------------------------------- reading the documents
@dataclass(frozen=True)
class Command:
    """One command line of a document (continuation lines joined), without its comment."""

    doc: str
    line: int
    text: str
    comment: str
    needs: frozenset

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"

    def __str__(self) -> str:
        return f"{self.where}: `{self.text}`"


@dataclass(frozen=True)
class Snippet:
    """One ``python`` block of a document; ``line`` is the line of its first statement."""

    doc: str
    line: int
    code: str


def doc_files() -> list[Path]:
    """README.md, then docs/*.md in name order."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _rel(path: Path) -> str:
    """The path as the messages name it: relative to the repository (a file outside it: as given)."""
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def _needs(text: str) -> frozenset:
    return frozenset(w.strip() for w in text.split(",") if w.strip())


def blocks(path: Path) -> list[tuple[str, int, list[str], frozenset]]:
    """``(language, line of the first content line, content lines, needs of the whole block)`` per fenced block."""
    lines = path.read_text().splitlines()
    out, i = [], 0
    while i < len(lines):
        m = FENCE_RE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = m.groups()
        j = i - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        marker = BLOCK_NEEDS_RE.match(lines[j]) if j >= 0 else None
        body, k = [], i + 1
        while k < len(lines):
            s = lines[k].strip()
            if s and set(s) == {fence[0]} and len(s) >= len(fence):
                break
            body.append(lines[k][len(indent):] if lines[k].startswith(indent) else lines[k].lstrip())
            k += 1
        out.append((lang.lower(), i + 2, body, _needs(marker.group(1)) if marker else frozenset()))
        i = k + 1
    return out


def split_comment(line: str) -> tuple[str, str]:
    """``(code, comment)`` of a shell line: the comment starts at the first unquoted ``#`` after a blank."""
    quote, i = None, 0
    while i < len(line):
        c = line[i]
        if quote:
            if c == quote:
                quote = None
            elif c == "\\" and quote == '"':
                i += 1
        elif c in "'\"":
            quote = c
        elif c == "\\":
            i += 1
        elif c == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1:].strip()
        i += 1
    return line.rstrip(), ""


def commands(path: Path) -> list[Command]:
    """The shell commands of a document's shell blocks, in document order."""
    out = []
    for lang, first, body, block_needs in blocks(path):
        if lang not in SHELL_LANGS:
            continue
        i = 0
        while i < len(body):
            start, raw = i, body[i]
            i += 1
            if lang == "console":
                if not raw.lstrip().startswith("$"):
                    continue
                raw = raw.lstrip()[1:]
            code, comment = split_comment(raw)
            while code.endswith("\\") and i < len(body):
                more, more_comment = split_comment(body[i])
                code = code[:-1].rstrip() + " " + more.strip()
                comment = " ".join(c for c in (comment, more_comment) if c)
                i += 1
            if code.strip():
                needs = block_needs | frozenset(w for m in NEEDS_RE.finditer(comment) for w in _needs(m.group(1)))
                out.append(Command(_rel(path), first + start, code.strip(), comment, needs))
    return out


def snippets(path: Path) -> list[Snippet]:
    """The ``python`` blocks of a document, in document order."""
    return [Snippet(_rel(path), first, "\n".join(body)) for lang, first, body, _ in blocks(path)
            if lang in PYTHON_LANGS]


@dataclass
class Simple:
    """One simple command: its words (quotes removed), leading ``VAR=value`` words, redirection targets."""

    argv: list[str]
    env: dict = field(default_factory=dict)
    writes: list[str] = field(default_factory=list)
    reads: list[str] = field(default_factory=list)


def simple_commands(text: str) -> list[Simple]:
    """Split a command line at ``&&``, ``||``, ``;``, ``|`` and ``&`` (shell quoting respected)."""
    lex = shlex.shlex(text, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    lex.commenters = ""
    out, cur = [], Simple([])
    tokens = list(lex)
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t in SEPARATORS:
            out.append(cur)
            cur = Simple([])
        elif t in (">", ">>", "<") and i + 1 < len(tokens):
            (cur.reads if t == "<" else cur.writes).append(tokens[i + 1])
            i += 1
        elif not cur.argv and ENV_RE.match(t):
            key, _, value = t.partition("=")
            cur.env[key] = value
        else:
            cur.argv.append(t)
        i += 1
    out.append(cur)
    return [s for s in out if s.argv]


# ----------------------------------------------------------------------------- facts about the repository
@functools.lru_cache(maxsize=None)
def repo_paths() -> frozenset:
    """Files git knows in the working tree (tracked, or new and not ignored), and every folder above them."""
    proc = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    paths = set()
    for f in proc.stdout.splitlines():
        parts = f.split("/")
        paths.update("/".join(parts[:k]) for k in range(1, len(parts) + 1))
    return frozenset(paths)


@functools.lru_cache(maxsize=None)
def dvc_stages() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(stage names, output paths)`` of dvc.yaml as DVC resolves it (``foreach`` and ``matrix`` expanded)."""
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        stages = list(repo.index.stages)
        names = tuple(s.addressing for s in stages)
        outs = tuple(str(o.def_path).rstrip("/") for s in stages for o in s.outs)
    return names, outs


@functools.lru_cache(maxsize=None)
def params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


@functools.lru_cache(maxsize=None)
def top_entries() -> frozenset:
    """First path components that name the repository's own files (``docs``, ``runs``, ``params.yaml``, ...)."""
    tops = {p.split("/")[0] for p in repo_paths() | set(dvc_stages()[1])}
    return frozenset(t for t in tops if not t.startswith("."))


@functools.lru_cache(maxsize=None)
def registered_markers() -> frozenset:
    import tomllib

    ini = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    return frozenset(m.split(":")[0].strip() for m in ini.get("markers", []))


@functools.lru_cache(maxsize=None)
def script_options(script: str) -> frozenset | None:
    """Option strings of a script's ``add_argument`` calls, read from its source (None: it has none)."""
    tree = ast.parse((ROOT / script).read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument":
            found.update(a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)
                         and a.value.startswith("-"))
    has_parser = any(isinstance(n, ast.Attribute) and n.attr == "add_argument" for n in ast.walk(tree))
    return frozenset(found | {"-h", "--help"}) if has_parser else None


@functools.lru_cache(maxsize=None)
def notebook_parameters(notebook: str) -> frozenset:
    import papermill

    return frozenset(papermill.inspect_notebook(str(ROOT / notebook)))


def _captured(fn, *args):
    """``(result, None)`` or ``(None, last line of what fn printed)`` when it exits (argparse) or raises."""
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            return fn(*args), None
    except SystemExit as exc:
        text = (err.getvalue() or out.getvalue()).strip()
        if exc.code in (0, None):
            return None, "prints help and exits instead of running"
        return None, text.splitlines()[-1] if text else f"exit {exc.code}"
    except Exception as exc:  # DVC's parser raises DvcParserError after printing its error
        text = err.getvalue().strip()
        lines = [ln for ln in text.splitlines() if "ERROR" in ln or "error" in ln]
        return None, (lines[-1] if lines else f"{type(exc).__name__}: {exc}")


# ----------------------------------------------------------------------------- the checks
@dataclass
class Checked:
    """What the checks found for one simple command of a document."""

    command: Command
    simple: Simple
    kind: str = ""
    problems: list[str] = field(default_factory=list)
    needs: set = field(default_factory=set)  # what the command needs, as far as the checks can see
    writes: list[str] = field(default_factory=list)
    reads: list[str] = field(default_factory=list)  # inputs checked even outside the repository's entries
    parsed: argparse.Namespace | None = None


class _Doc:
    """State of one document read in order: what earlier commands wrote, the experiments they named."""

    def __init__(self) -> None:
        self.written: set[str] = set()
        self.experiments: set[str] = set()


def _norm(path: str) -> str:
    path = path.strip()
    while path.startswith("./"):
        path = path[2:]
    return path.rstrip("/") or "."


def _under(path: str, roots) -> bool:
    return any(path == r or path.startswith(r + "/") for r in roots)


def known_path(path: str, doc: _Doc) -> bool:
    """In the repository, an output of a dvc.yaml stage, or written by an earlier command of the document."""
    p = _norm(path)
    return p in repo_paths() or _under(p, dvc_stages()[1]) or _under(p, doc.written)


def _is_repo_path(token: str) -> bool:
    if not token or token.startswith("-") or any(c in token for c in "*?[]<>|$"):
        return False
    return _norm(token).split("/")[0] in top_entries()


def _class_names() -> list[str]:
    from occ.data.classes import DCASE_CLASSES

    return list(DCASE_CLASSES)


def _check_occ(c: Checked, argv: list[str]) -> None:
    from occ.cli.common import CliError
    from occ.cli.generate import resolve_classes
    from occ.cli.main import build_parser
    from occ.data.classes import class_folder

    args, error = _captured(build_parser().parse_args, argv)
    c.kind = f"occ {argv[0] if argv else ''}".strip()
    if error:
        c.problems.append(f"`occ` does not parse it: {error}")
        c.writes.extend(v for k, v in zip(argv, argv[1:]) if k in ("--out", "--submission"))  # no knock-on errors
        return
    c.parsed = args
    p = params()
    cmd = args.command
    if cmd == "generate":
        c.reads.append(args.checkpoint)
        c.writes.append(args.submission if args.submission is not None else args.out)
        try:
            resolve_classes(args.classes, _class_names())
        except CliError as exc:
            c.problems.append(str(exc))
    elif cmd == "fad":
        c.reads.append(args.generated)
        if args.reference == "dcase-eval" or args.embedding == "vggish" or args.vggish_weights:
            c.needs.add("network")  # the VGGish weights: a download (torchvggish's release), not in the package
        if args.reference != "dcase-eval":
            c.reads.append(args.reference)
        if args.encoder:
            c.reads.append(args.encoder)
    elif cmd == "check-submission":
        c.reads.append(args.directory)
        folders = {class_folder(n) for n in _class_names()}
        for names in args.classes or []:
            unknown = [n for n in names.split(",") if n and n not in folders]
            if unknown:
                c.problems.append(f"--classes {','.join(unknown)}: not DCASE class folders ({', '.join(sorted(folders))})")
    elif cmd in ("train", "supcon"):
        if getattr(args, "variant", None) is not None and args.variant not in p["variants"]:
            c.problems.append(f"--variant {args.variant}: not a key of `variants` in params.yaml")
        if getattr(args, "seed", None) is not None and args.seed not in p["seeds"]:
            c.problems.append(f"--seed {args.seed}: not one of `seeds` in params.yaml ({p['seeds']})")
        if args.profile is not None and args.profile not in p["profiles"]:
            c.problems.append(f"--profile {args.profile}: not a profile of params.yaml")
    elif cmd == "repro":
        _check_targets(c, args.targets, glob=False)
    elif cmd == "heldout":
        c.writes.append(args.out_dir)
    elif cmd == "fetch-weights":
        c.needs.add("network")  # a download (PyPI; GitHub for --vggish) unless the weights are already in place
    else:  # a command the checks do not know yet (e.g. a new one): every positional folder is its output
        given = {t for t in argv[1:] if not t.startswith("-")}
        c.writes.extend(v for k, v in vars(args).items()
                        if isinstance(v, str) and v in given and k not in ("command",))
    device = getattr(args, "device", None)
    if isinstance(device, str) and device.startswith("cuda"):
        c.needs.add("gpu")


def _check_targets(c: Checked, targets, *, glob: bool) -> None:
    names = dvc_stages()[0]
    for t in targets or []:
        if glob:
            ok = any(fnmatch.fnmatchcase(n, t) for n in names)
        else:
            ok = t in names or (ROOT / t).exists() or t.endswith("dvc.yaml")
        if not ok:
            c.problems.append(f"stage {t!r} is not a stage of dvc.yaml (stages: {', '.join(names[:6])}, ...)")


def _key_exists(tree: dict, key: str) -> bool:
    node = tree
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _set_key(tree: dict, key: str, value) -> None:
    *head, last = key.split(".")
    node = tree
    for part in head:
        node = node[part]
    node[last] = value


def check_set_params(c: Checked, settings: list[str]) -> None:
    """``-S key=value`` of ``dvc exp run``: the key is in params.yaml and every value loads (occ.config)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from occ.config import load_params
    from occ.errors import ConfigError

    for setting in settings:
        if setting.startswith("params.yaml:"):
            setting = setting.split(":", 1)[1]
        try:
            (override,) = OverridesParser.create().parse_overrides([setting])
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            c.problems.append(f"-S {setting}: not a DVC/Hydra override ({type(exc).__name__}: {first})")
            continue
        key = override.key_or_group
        if not _key_exists(params(), key):
            c.problems.append(f"-S {setting}: params.yaml has no key {key!r}")
            continue
        values = list(override.sweep_iterator()) if override.is_sweep_override() else [override.value()]
        for value in values:
            if key == "gpu" and value is not None:
                c.needs.add("gpu")
            if key == "device" and str(value).startswith("cuda"):
                c.needs.add("gpu")
            if key == "profile" and value == "paper":
                c.needs.update({"gpu", "dcase"})
            if key in ("eval.embedding",) and value == "vggish":
                c.needs.add("network")
            tree = copy.deepcopy(params())
            _set_key(tree, key, value)
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "params.yaml"
                path.write_text(yaml.safe_dump(tree, sort_keys=False))
                try:
                    load_params(path)
                    for variant in tree.get("run_variants", []):
                        load_params(path, variant=variant)
                except ConfigError as exc:
                    c.problems.append(f"-S {key}={value!r}: params.yaml with it does not load: {exc}")


def _check_dvc(c: Checked, argv: list[str], doc: _Doc) -> None:
    from dvc.cli import parse_args

    args, error = _captured(parse_args, argv)
    words = [a for a in argv if not a.startswith("-")][:2]
    c.kind = "dvc " + " ".join(words[:2] if words and words[0] in ("exp", "experiments", "queue", "metrics",
                                                                    "plots", "params") else words[:1])
    if error:
        c.problems.append(f"DVC does not parse it: {error}")
        return
    c.parsed = args
    cls = type(args.func).__name__ if not isinstance(args.func, type) else args.func.__name__
    if getattr(args, "targets", None) and cls in ("CmdRepro", "CmdDataStatus", "CmdExperimentsRun"):
        _check_targets(c, args.targets, glob=bool(getattr(args, "glob", False)))
    if cls == "CmdExperimentsRun":
        check_set_params(c, list(args.set_param or []))
        if args.name:
            doc.experiments.add(args.name)
    refs = []
    if cls in ("CmdQueueLogs", "CmdQueueKill"):
        refs = [args.task] if isinstance(args.task, str) else list(args.task or [])
    elif cls in ("CmdExperimentsApply", "CmdExperimentsBranch"):
        refs = [args.experiment]
    elif cls == "CmdExperimentsRemove":
        refs = list(args.experiment or [])
    elif cls == "CmdMetricsDiff" or cls == "CmdParamsDiff":
        refs = [r for r in (args.a_rev, args.b_rev) if r]
    elif cls == "CmdPlotsDiff":
        refs = list(args.revisions or [])
    for ref in refs:
        if ref not in doc.experiments and ref not in GIT_REFS and not re.fullmatch(r"HEAD[~^]\d*", ref):
            c.problems.append(f"experiment {ref!r} is named by no earlier `dvc exp run -n` of {c.command.doc}")


def _check_run_notebook(c: Checked, argv: list[str], doc: _Doc) -> None:
    ap = argparse.ArgumentParser(prog="run_notebook", add_help=False, exit_on_error=False)
    ap.add_argument("notebook")
    ap.add_argument("output")
    ap.add_argument("-p", "--parameter", nargs=2, action="append", default=[])
    ap.add_argument("-k", "--kernel")
    args, error = _captured(ap.parse_args, argv)
    if error:
        c.problems.append(f"does not parse as NOTEBOOK OUTPUT [-p NAME VALUE ...]: {error}")
        return
    c.parsed = args
    c.reads.append(args.notebook)
    c.writes.append(args.output)
    if not known_path(args.notebook, doc):
        return  # reported as a missing path
    declared = notebook_parameters(_norm(args.notebook))
    p = params()
    for name, value in args.parameter:
        if name not in declared:
            c.problems.append(f"-p {name}: not a parameter of {args.notebook} ({', '.join(sorted(declared))})")
        elif name == "variant" and value not in p["variants"]:
            c.problems.append(f"-p variant {value}: not a key of `variants` in params.yaml")
        elif name == "seed" and (not value.isdigit() or int(value) not in p["seeds"]):
            c.problems.append(f"-p seed {value}: not one of `seeds` in params.yaml ({p['seeds']})")


def _check_script(c: Checked, script: str, args: list[str]) -> None:
    c.reads.append(script)
    if not (ROOT / _norm(script)).is_file():
        return  # reported as a missing path
    if script.endswith(".sh"):
        proc = subprocess.run(["bash", "-n", str(ROOT / _norm(script))], capture_output=True, text=True)
        if proc.returncode:
            c.problems.append(f"{script} does not pass `bash -n`: {proc.stderr.strip()}")
        return
    options = script_options(_norm(script))
    flags = [a.split("=")[0] for a in args if re.match(r"^--?[A-Za-z]", a)]
    if flags and options is None:
        c.problems.append(f"{script} takes no options (no add_argument in it), but the command passes {flags}")
    for flag in flags if options else []:
        if flag not in options:
            c.problems.append(f"{script} has no option {flag} (it has {', '.join(sorted(options))})")
    if options:
        for i, a in enumerate(args):  # outputs named by the usual options
            if a in ("--out", "-o", "--png") and i + 1 < len(args):
                c.writes.append(args[i + 1])
            elif a.startswith(("--out=", "--png=")):
                c.writes.append(a.split("=", 1)[1])
    if _norm(script) == "benchmarks/gpu_check.py" and not ({"--device", "cpu"} <= set(args) or "--estimate" in args):
        c.needs.add("gpu")


def _check_pytest(c: Checked, args: list[str]) -> None:
    for i, a in enumerate(args):
        if a == "-m" and i + 1 < len(args):
            words = set(re.findall(r"[A-Za-z_]\w*", args[i + 1])) - {"and", "or", "not"}
            unknown = words - registered_markers()
            if unknown:
                c.problems.append(f"-m {args[i + 1]!r}: markers {sorted(unknown)} are not registered in pyproject.toml")
        elif not a.startswith("-") and (i == 0 or args[i - 1] not in ("-m", "-k", "-p")):
            c.reads.append(a.split("::")[0])


def _syntax_only(c: Checked, kind: str, argv: list[str]) -> None:
    c.kind = f"syntax only: {kind}"
    c.needs.update(SYNTAX_ONLY[kind])
    if kind == "python -m venv":
        c.writes.extend(a for a in argv[3:] if not a.startswith("-"))
    elif kind == "conda activate":
        name = yaml.safe_load((ROOT / "environment.yml").read_text()).get("name")
        if argv[2:] and argv[2] != name:
            c.problems.append(f"conda environment {argv[2]!r}: environment.yml creates {name!r}")
    elif kind == "git clone":
        c.writes.extend(a for a in argv[2:] if not a.startswith("-"))
    elif kind.startswith("pip") and "--no-index" in argv:
        c.needs.discard("network")


def _classify(argv: list[str]) -> tuple[str, list[str]]:
    """``(handler, arguments)`` of a simple command; handler "" for a command no check knows."""
    exe = argv[0]
    if PYTHON_RE.match(exe) and len(argv) > 2 and argv[1] == "-m":
        module = argv[2]
        if module == "occ":
            return "occ", argv[3:]
        if module == "occ.pipeline.run_notebook":
            return "run_notebook", argv[3:]
        if module == "pytest":
            return "pytest", argv[3:]
        if module == "venv":
            return "syntax:python -m venv", argv
        if module == "pip" and len(argv) > 3:
            return f"syntax:pip {argv[3]}", argv
        return "", argv
    if PYTHON_RE.match(exe) and len(argv) > 1 and argv[1].endswith(".py"):
        return "script", argv[1:]
    if exe in ("bash", "sh") and len(argv) > 1 and argv[1].endswith(".sh"):
        return "script", argv[1:]
    if OCC_RE.match(exe):
        return "occ", argv[1:]
    if exe == "dvc":
        return "dvc", argv[1:]
    if exe == "torchrun":
        return "torchrun", argv[1:]
    if exe == "papermill":
        return "run_notebook", argv[1:]
    if PIP_RE.match(exe) and len(argv) > 1:
        return f"syntax:pip {argv[1]}", argv
    two = " ".join(argv[:2])
    three = " ".join(argv[:3])
    for kind in (three, two, exe):
        if kind in SYNTAX_ONLY:
            return f"syntax:{kind}", argv
    return "", argv


def check_commands(path: Path) -> list[Checked]:
    """Every simple command of a document, checked in document order (later commands see earlier outputs)."""
    doc = _Doc()
    out = []
    for command in commands(path):
        syntax = subprocess.run(["bash", "-n", "-c", command.text], capture_output=True, text=True)
        try:
            simple_list = simple_commands(command.text)
        except ValueError as exc:  # shlex: an unclosed quotation
            out.append(Checked(command, Simple([command.text]), "unknown", [f"not valid shell: {exc}"]))
            continue
        for simple in simple_list:
            c = Checked(command, simple)
            if syntax.returncode:
                c.problems.append(f"not valid shell: {syntax.stderr.strip()}")
            handler, args = _classify(simple.argv)
            if "CUDA_VISIBLE_DEVICES" in simple.env:
                c.needs.add("gpu")
            if handler == "occ":
                _check_occ(c, args)
            elif handler == "dvc":
                _check_dvc(c, args, doc)
            elif handler == "torchrun":
                from torch.distributed.run import get_args_parser

                parsed, error = _captured(get_args_parser().parse_args, args)
                c.kind = "torchrun"
                if error:
                    c.problems.append(f"torchrun does not parse it: {error}")
                elif parsed.module and parsed.training_script == "occ":
                    _check_occ(c, list(parsed.training_script_args))
                    c.kind = "torchrun " + c.kind
                elif parsed.module:
                    c.problems.append(f"torchrun -m {parsed.training_script}: the checks know only `-m occ`")
                else:
                    _check_script(c, parsed.training_script, list(parsed.training_script_args))
            elif handler == "run_notebook":
                c.kind = simple.argv[0] if simple.argv[0] == "papermill" else "python -m occ.pipeline.run_notebook"
                _check_run_notebook(c, args, doc)
            elif handler == "script":
                c.kind = f"script {args[0]}"
                _check_script(c, args[0], args[1:])
            elif handler == "pytest":
                c.kind = "python -m pytest"
                _check_pytest(c, args)
            elif handler.startswith("syntax:"):
                _syntax_only(c, handler.split(":", 1)[1], simple.argv)
            else:
                c.kind = "unknown"
                c.problems.append(
                    f"no check knows `{' '.join(simple.argv[:3])}`: add one to tests/doc_commands.py (or, if a syntax "
                    "check is all it can get, its kind to SYNTAX_ONLY there)")
            c.writes.extend(simple.writes)
            c.reads.extend(simple.reads)
            # paths: the inputs the checks named, and every word under a top-level entry of the repository
            written = {_norm(w) for w in c.writes}
            words = [w.split("=", 1)[1] if w.startswith("-") and "=" in w else w for w in simple.argv[1:]]
            candidates = list(dict.fromkeys([*c.reads, *(w for w in words if _is_repo_path(w))]))
            for p in candidates:
                if _norm(p) not in written and not known_path(p, doc):
                    c.problems.append(f"{p}: not in the repository, not an output of a dvc.yaml stage, and not "
                                      f"written by an earlier command of {command.doc}")
            missing = sorted(c.needs - command.needs)
            if missing:
                c.problems.append(f"needs {', '.join(missing)} but its comment does not say "
                                  f"`needs: {', '.join(sorted(c.needs | command.needs))}`")
            doc.written.update(written)
            out.append(c)
    return out
