"""Helpers shared by the lever benchmarks (bench_step_levers, bench_parallel, bench_eval_profile).

* :func:`machine_line`: the CPU model (lscpu's ``Model name``, or /proc/cpuinfo's ``model name``), its family and
  model numbers, the CPU count, the load average and the torch version, as one Markdown line;
* :func:`write_section`: replace (or append) one named section of a Markdown results file, leaving the other
  sections as they are, so each benchmark regenerates only its own part of ``benchmarks/results/levers.md``;
* :func:`gan_setup` / :func:`gan_step`: today's GAN training step (``occ.train.gan_step.draw_step`` +
  ``d_step`` + ``g_step`` + ``ema_update``, as ``train_gan`` calls them) on stand-in data, with optional levers
  (channels_last, Adam foreach / fused, torch.compile of G and D);
* :func:`break_even_steps`, :func:`run_ratio`: what compile time costs a run of N steps.
"""

from __future__ import annotations

import copy
import os
import platform
import re
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

N_CLASSES = 7
N_TRAIN_CLIPS = 160 * N_CLASSES  # the embedded profile's training clips (160 per class)
RESULTS = Path(__file__).resolve().parent / "results"
LEVERS_MD = RESULTS / "levers.md"


def cpu_facts() -> dict[str, str]:
    """``model``, ``family``, ``model_number``, ``cpus`` from lscpu (falling back on /proc/cpuinfo)."""
    facts = {"model": "", "family": "", "model_number": "", "cpus": str(os.cpu_count())}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    keys = {"Model name": "model", "CPU family": "family", "Model": "model_number"}
    for line in out.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in keys and not facts[keys[key.strip()]]:
            facts[keys[key.strip()]] = value.strip()
    if not facts["model"] and os.path.exists("/proc/cpuinfo"):
        cpuinfo = {"model name": "model", "cpu family": "family", "model": "model_number"}
        for line in open("/proc/cpuinfo"):
            key, _, value = line.partition(":")
            if key.strip() in cpuinfo and not facts[cpuinfo[key.strip()]]:
                facts[cpuinfo[key.strip()]] = value.strip()
    facts["model"] = facts["model"] or platform.processor() or "unknown CPU"
    return facts


def machine_line(threads: int | str | None = None) -> str:
    """One Markdown line: CPU model, family/model, CPU count, torch version, threads, load average."""
    f = cpu_facts()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    thr = f", torch threads {threads}" if threads is not None else ""
    return (f"CPU: {f['model']} (family {f['family']}, model {f['model_number']}), {f['cpus']} CPUs; "
            f"torch {torch.__version__}{thr}; load average at start {load:.2f}")


_BEGIN = "<!-- begin {} -->"
_END = "<!-- end {} -->"


def write_section(path: str | os.PathLike, name: str, body: str, *, title: str = "") -> str:
    """Put ``body`` between ``<!-- begin name -->`` and ``<!-- end name -->`` in the Markdown file ``path``.

    An existing section of that name is replaced in place; a new one is appended. Text outside the
    markers (other sections, ``title``) is kept; ``title`` is written only when the file is new or empty.
    Returns the file's new text.
    """
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"section name {name!r}: use letters, digits, '_', '.', '-'")
    path = Path(path)
    old = path.read_text() if path.exists() else ""
    if not old.strip() and title:
        old = title.rstrip("\n") + "\n"
    block = f"{_BEGIN.format(name)}\n{body.strip()}\n{_END.format(name)}"
    pattern = re.compile(re.escape(_BEGIN.format(name)) + r".*?" + re.escape(_END.format(name)), re.S)
    if pattern.search(old):
        new = pattern.sub(lambda _: block, old, count=1)
    else:
        new = (old.rstrip("\n") + "\n\n" if old.strip() else "") + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new)
    return new


LEVERS_TITLE = """# Levers for a cheaper CPU pipeline: measured ratios against today's path

Regenerate everything: `bash benchmarks/run_levers.sh` (the three benchmarks one after another). Every number below
is written by the script named at the top of its section; each section is regenerated on
its own (`benchmarks/lever_common.write_section`). Ratios are against today's path measured in the same
invocation; absolute seconds depend on the machine and its load.
"""


def break_even_steps(compile_s: float, eager_step_s: float, compiled_step_s: float) -> float:
    """Steps after which a compiled run has paid back its compile time (inf when compiled steps are not faster)."""
    saving = eager_step_s - compiled_step_s
    return compile_s / saving if saving > 0 else float("inf")


def run_ratio(steps: int, compile_s: float, eager_step_s: float, compiled_step_s: float) -> float:
    """Eager run time / compiled run time (compile included) for a run of ``steps`` steps."""
    return steps * eager_step_s / (compile_s + steps * compiled_step_s)


# --------------------------------------------------------------------------------------------- the GAN step

@dataclass
class Levers:
    channels_last: bool = False
    adam: str = "default"  # "default" (today: torch's choice), "foreach" or "fused"
    compile: bool = False

    @property
    def name(self) -> str:
        parts = [p for p, on in (("compile", self.compile), ("channels_last", self.channels_last)) if on]
        if self.adam != "default":
            parts.append(f"Adam {self.adam}")
        return " + ".join(parts) if parts else "eager (today)"


def load_embedded_params(variant: str = "o2c"):
    from occ.config import load_params

    root = Path(__file__).resolve().parents[1]
    return load_params(root / "params.yaml", variant=variant, profile="embedded")


def stand_in_data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised-log-mel-shaped training data (N, 80, 344) in [-1, 1] and labels: the timing does not depend on it."""
    from occ.data.audio import N_FRAMES, N_MELS

    g = torch.Generator().manual_seed(seed)
    mels = torch.rand(N_TRAIN_CLIPS, N_MELS, N_FRAMES, generator=g) * 2 - 1
    labels = torch.arange(N_CLASSES).repeat_interleave(N_TRAIN_CLIPS // N_CLASSES)
    return mels, labels


@dataclass
class GanSetup:
    nets: Any
    train: Any
    sampler: torch.Generator
    mels: torch.Tensor
    labels: torch.Tensor
    step: int = 0


def gan_setup(kind: str, batch_size: int, levers: Levers, *, seed: int = 0, data=None,
              encoder: torch.nn.Module | None = None) -> GanSetup:
    """Today's networks and optimisers of a run (``_build_nets``' layout) with ``levers`` applied.

    Same seed, same initial weights and same draws for every lever, so losses can be compared step by step.
    """
    from occ.config import SUPCON_KINDS
    from occ.nets.models import build_discriminator, build_encoder, initial_generator
    from occ.seeding import derived_seed, make_generator
    from occ.train.gan_step import DForward, Nets

    params = load_embedded_params()
    model = params.model
    train = replace(params.train, loss=kind, batch_size=batch_size)
    g = initial_generator(model, n_classes=N_CLASSES, seed=seed)
    d = build_discriminator(model, n_classes=N_CLASSES)
    g_ema = copy.deepcopy(g) if train.ema_decay > 0 else None
    if g_ema is not None:
        g_ema.eval().requires_grad_(False)
    f = None
    if kind in SUPCON_KINDS:
        if encoder is None:
            torch.manual_seed(1234)
            encoder = build_encoder(model, n_classes=N_CLASSES)
        f = encoder.eval().requires_grad_(False)
    if levers.channels_last:
        g = g.to(memory_format=torch.channels_last)
        d = d.to(memory_format=torch.channels_last)
    opt_kw: dict[str, Any] = {}
    if levers.adam == "foreach":
        opt_kw["foreach"] = True
    elif levers.adam == "fused":
        opt_kw["fused"] = True
    g_optim = torch.optim.Adam(g.parameters(), lr=train.lr_g, betas=(train.beta1, train.beta2), **opt_kw)
    d_optim = torch.optim.Adam(d.parameters(), lr=train.lr_d, betas=(train.beta1, train.beta2), **opt_kw)
    g_run, d_run = g, d
    if levers.compile:
        g_run = torch.compile(g, dynamic=False)
        d_run = torch.compile(d, dynamic=False)
    nets = Nets(g=g_run, d=d_run, g_ema=g_ema, f=f, g_optim=g_optim, d_optim=d_optim, g_train=g_run,
                d_train=DForward(d_run))
    nets.g_plain = g  # the un-wrapped G, for the EMA update
    mels, labels = data if data is not None else stand_in_data(seed)
    return GanSetup(nets=nets, train=train, sampler=make_generator(derived_seed(seed, 1)), mels=mels, labels=labels)


def gan_step(s: GanSetup) -> dict[str, float]:
    """One training step as ``train_gan`` runs it: draws, D step, G step, EMA update. Returns the log row."""
    from occ.train.distributed import World
    from occ.train.gan_step import d_step, draw_step, ema_update
    from occ.train.gan_step import g_step as _g_step

    nets, train = s.nets, s.train
    nets.g.train()
    nets.d.train()
    draws = draw_step(s.sampler, s.mels, s.labels, batch_size=train.batch_size, n_classes=N_CLASSES,
                      z_dim=nets.g_plain.z_dim, augment=train.augment, w=World(), device=_CPU)
    no_check = lambda *a, **k: None  # noqa: E731
    row = d_step(nets, draws, train, autocast=_NULL, check=no_check)
    row.update(_g_step(nets, draws, train, autocast=_NULL, check=no_check))
    if nets.g_ema is not None:
        ema_update(nets.g_ema, nets.g_plain, decay=train.ema_decay, step=s.step)
    s.step += 1
    return row


class _Null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


_NULL = _Null()
_CPU = torch.device("cpu")




def max_rel_diff(a: list[dict[str, float]], b: list[dict[str, float]], keys: tuple[str, ...],
                 floor: float = 1e-3) -> tuple[float, float]:
    """Max over steps and ``keys`` of ``|a - b| / max(|a|, |b|, floor)``, and the max absolute difference."""
    rel, ab = 0.0, 0.0
    for ra, rb in zip(a, b, strict=True):
        for k in keys:
            x, y = float(ra[k]), float(rb[k])
            ab = max(ab, abs(x - y))
            rel = max(rel, abs(x - y) / max(abs(x), abs(y), floor))
    return rel, ab
