"""``occ generate`` (foley clips from a checkpoint, as the evaluation makes them) and ``occ check-submission``.

``occ generate`` makes its clips with :func:`occ.synthesis.generate.generate_clips` (standing statistics, per-clip
seeds of :func:`occ.synthesis.generate.eval_seeds`, the vocoder) and writes them with
:func:`occ.synthesis.submission.write_clip`, so the clip of (class, index, seed) is byte for byte the one the
evaluation writes; its base seed, vocoder, Griffin-Lim iterations, thread count and device are by default the
evaluation's (params.yaml's ``seed``, ``eval.vocoder``, ``eval.gl_iters``, ``eval.threads``, ``device``). The output
folder is written into a temporary folder beside the target and renamed into place at the end, so a failed or
interrupted run leaves no partial folder. ``occ check-submission`` lists
:func:`occ.synthesis.submission.submission_problems`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from occ.cli.common import (OUTSIDE_A_PROJECT, CliError, at_least_one_thread, check_target, find_project, key,
                            show_progress, threads_phrase)

__all__ = ["add_generate_parser", "add_check_submission_parser", "cmd_generate", "cmd_check_submission", "resolve_classes",
           "evaluation_settings", "generate_settings", "EVALUATION_SETTINGS"]

VOCODER_HELP = "griffinlim (fast), hifigan (the universal HiFi-GAN V1) or the path of a HiFi-GAN generator checkpoint"


def resolve_classes(requested: list[str], class_names: list[str]) -> list[int]:
    """Class indices of names given on the command line.

    Parameters
    ----------
    requested : list of str
        Names in any case, in CamelCase, snake_case or as DCASE submission folders (``DogBark``,
        ``dog_bark``, ``dogbark``), or ``all``.
    class_names : list of str
        The checkpoint's classes, in label order.

    Returns
    -------
    list of int
        Label indices, in the order asked for, without repeats.

    Raises
    ------
    CliError
        An unknown name; the message lists the known ones.
    """
    from occ.data.classes import DCASE_ALIASES, class_folder

    lookup = {}
    for i, name in enumerate(class_names):
        lookup[key(name)] = i
        lookup[key(class_folder(name))] = i
    for alias, name in DCASE_ALIASES.items():
        if key(name) in lookup:
            lookup.setdefault(key(alias), lookup[key(name)])
    out: list[int] = []
    for raw in requested:
        for name in (n for n in raw.split(",") if n.strip()):
            if name.strip().lower() == "all":
                idx = list(range(len(class_names)))
            elif key(name) in lookup:
                idx = [lookup[key(name)]]
            else:
                known = ", ".join(class_names)
                raise CliError(f"--class {name!r} is not a class of this checkpoint; use one of: {known} (any case, "
                               "snake_case works too), or all")
            out.extend(i for i in idx if i not in out)
    if not out:
        raise CliError("--class is empty; name a class or use --class all")
    return out


#: What ``occ generate`` takes from the evaluation: option -> the ``params.yaml`` key it comes from
#: (:func:`occ.config.clip_settings`, the evaluation's own).
EVALUATION_SETTINGS = {"seed": "seed", "threads": "eval.threads", "vocoder": "eval.vocoder",
                       "gl_iters": "eval.gl_iters", "device": "device"}


def evaluation_settings(checkpoint: Path, *, project: str | None = None,
                        profile: str | None = None) -> tuple[dict, str]:
    """The settings the pipeline's evaluation generates every run's clips with (:func:`occ.config.clip_settings`),
    and where they were read: the params file of ``project``, else of the project holding ``checkpoint``, else of the
    working folder's.

    Returns
    -------
    (dict, str)
        The keys of :data:`EVALUATION_SETTINGS` with their values, and a phrase naming the params file and profile.
    """
    from occ.config import clip_settings, load_params

    root = find_project(project, near=(checkpoint.resolve().parent,))
    params = load_params(root / "params.yaml", profile=profile)
    return clip_settings(params, root), f"{root / 'params.yaml'}, profile {params.profile}"


def generate_settings(args, checkpoint: Path) -> tuple[dict, str]:
    """``occ generate``'s seed, threads, vocoder, Griffin-Lim iterations and device: each given option, else the
    evaluation's (:func:`evaluation_settings`); outside any project, :data:`occ.cli.common.OUTSIDE_A_PROJECT`
    (``--seed`` is then required). Also a phrase saying where the defaults came from."""
    given = {option: getattr(args, option) for option in EVALUATION_SETTINGS}
    missing = [option for option, value in given.items() if value is None]
    if not missing:
        return given, "all given on the command line"
    try:
        found, source = evaluation_settings(checkpoint, project=args.project, profile=args.profile)
        source = f"the evaluation's ({', '.join(EVALUATION_SETTINGS[k] for k in missing)} of {source})"
    except CliError as exc:
        if given["seed"] is None:
            raise CliError(f"{exc}; or give the base seed with --seed S") from None
        found = OUTSIDE_A_PROJECT
        source = f"no params.yaml found, so {', '.join(missing)} as in params.yaml's embedded profile"
    return {option: found[option] if value is None else value for option, value in given.items()}, source


def cmd_generate(args) -> int:
    import numpy as np

    from occ.atomic import atomic_folder
    from occ.device import resolve_device, torch_threads
    from occ.nets.models import load_generator
    from occ.synthesis.generate import SEED_STRIDE, chosen_seeds, generate_clips
    from occ.synthesis.submission import check_submission, write_clip_list, write_submission

    # the options, checked before anything is loaded
    target = Path(args.submission if args.submission is not None else args.out)
    option = "--submission" if args.submission is not None else "--out"
    n = args.n if args.n is not None else (100 if args.submission is not None else 1)
    if n < 1:
        raise CliError(f"-n {n}: give at least 1 clip per class")
    if args.first < 0 or args.first + n > SEED_STRIDE:
        raise CliError(f"--first {args.first} with -n {n}: clip indices must lie in [0, {SEED_STRIDE})")
    if args.submission is not None and args.first != 0:
        raise CliError("--first cannot be used with --submission: a submission holds clips 0 .. n-1 of each class")
    if args.gl_iters is not None and args.gl_iters < 1:
        raise CliError(f"--gl-iters {args.gl_iters}: use at least 1 Griffin-Lim iteration")
    if args.threads is not None:
        at_least_one_thread(args.threads)
    if args.vocoder not in (None, "griffinlim", "hifigan") and not Path(args.vocoder).is_file():
        raise CliError(f"--vocoder {args.vocoder}: not griffinlim or hifigan, and no such checkpoint file; "
                       "give the path of a HiFi-GAN generator checkpoint (e.g. g_00935000)")
    check_target(target, overwrite=args.overwrite, option=option)
    checkpoint = Path(args.checkpoint)
    if not checkpoint.exists():  # a folder is named as such by load_generator
        raise CliError(f"--checkpoint {checkpoint} does not exist; give a GAN checkpoint such as "
                       "runs/train/<variant>/seed<k>/checkpoint.pt (train one with `dvc repro train@<variant>-<seed>`)")
    if args.seed is not None and args.seed < 0:
        raise CliError(f"--seed {args.seed}: use a seed >= 0")
    # the settings (the evaluation's unless given), the generator and the classes asked for
    settings, source = generate_settings(args, checkpoint)
    base_seed, threads, vocoder, gl_iters = (settings[k] for k in ("seed", "threads", "vocoder", "gl_iters"))
    device = resolve_device(settings["device"])
    generator, payload = load_generator(checkpoint, device=device)
    n_classes = int(payload["n_classes"])
    class_names = list(payload.get("class_names") or [f"class{i}" for i in range(n_classes)])
    chosen = resolve_classes(args.classes, class_names)

    # the evaluation's clips of those classes and indices, written whole or not at all
    labels, seeds, index = chosen_seeds(chosen, first=args.first, n=n, n_classes=n_classes, base_seed=base_seed)
    iters = f" (gl_iters {gl_iters})" if vocoder == "griffinlim" else ""
    print(f"occ generate: {len(labels)} clips ({n} per class: {', '.join(class_names[c] for c in chosen)}), "
          f"seed {base_seed}, vocoder {vocoder}{iters}, {threads_phrase(threads)}, device {device}; "
          f"defaults: {source}", file=sys.stderr)
    with torch_threads(threads):  # the evaluation's sums, in the evaluation's order
        _, wavs = generate_clips(generator, labels, seeds, base_seed=base_seed, vocoder=vocoder, gl_iters=gl_iters,
                                 device=device, progress=show_progress(args), precision=args.precision)
    with atomic_folder(target) as tmp:
        if args.submission is not None:
            by_class = {class_names[c]: wavs[(labels == c).numpy()] for c in chosen}
            write_submission(tmp, by_class, n_per_class=n)
            check_submission(tmp, n_per_class=n, classes=list(by_class))
        else:
            write_clip_list(tmp, wavs, labels, seeds, index, class_names=class_names, base_seed=base_seed,
                            vocoder=vocoder, gl_iters=gl_iters if vocoder == "griffinlim" else "", threads=threads,
                            device=str(device), checkpoint=str(checkpoint), step=int(payload.get("step", 0)))
    what = "DCASE submission (checked)" if args.submission is not None else "WAV files + clips.csv"
    clipped = float((np.abs(wavs) > 1).mean())
    print(f"wrote {len(labels)} clips to {target}/ ({what})"
          + (f"; {clipped:.1%} of the samples exceeded [-1, 1] and were clipped" if clipped else ""))
    return 0


def cmd_check_submission(args) -> int:
    from occ.synthesis.submission import submission_problems

    classes = [c for raw in args.classes for c in raw.split(",") if c.strip()] if args.classes else None
    if args.n < 1:
        raise CliError(f"-n {args.n}: a submission needs at least 1 clip per class")
    problems, counts = submission_problems(args.directory, n_per_class=args.n, classes=classes)
    if problems:
        for p in problems:
            print(p)
        print(f"occ check-submission: {args.directory} fails the DCASE checks ({len(problems)} problem"
              f"{'s' if len(problems) != 1 else ''})", file=sys.stderr)
        return 1
    print(f"{args.directory}: {len(counts)} class folders, {sum(counts.values())} WAV files; "
          "passes the DCASE 2023 Task 7 format checks")
    return 0


def add_generate_parser(sub: Any, *, common: argparse.ArgumentParser, fmt: type) -> None:
    """Register ``generate`` on the ``occ`` command's sub-parsers."""
    g = sub.add_parser(
        "generate", parents=[common], formatter_class=fmt, help="write generated clips as WAV files",
        description="Generate 4-s clips (22,050 Hz, 16-bit mono WAV) of one or more classes from a GAN checkpoint.\n\n"
                    "Clip i of class c with seed s is the clip the pipeline's evaluation writes for (c, i) with\n"
                    "base seed s, vocoder, Griffin-Lim iterations, thread count and device alike: its latent seed\n"
                    "is s + c * 1,000,000 + i. Each of these defaults to the evaluation's, read from params.yaml:\n"
                    "seed (05_evaluate's base_seed=params.seed, one for every run, not the training seed k),\n"
                    "eval.vocoder, eval.gl_iters, eval.threads and device; so by default the files are the\n"
                    "evaluation's WAVs, byte for byte, on the same machine. Files are named <class>-seed<s>-<i>.wav;\n"
                    "clips.csv lists class, index, seeds, vocoder, threads, device and checkpoint. Regenerate one\n"
                    "clip with --first i -n 1.",
        epilog="examples:\n"
               "  occ generate --checkpoint runs/train/o2c_ct1/seed0/checkpoint.pt --class DogBark -n 20 --out barks/\n"
               "  occ generate --checkpoint ckpt.pt --class dog_bark,rain -n 5 --seed 3 --vocoder hifigan --out clips/\n"
               "  occ generate --checkpoint ckpt.pt --class dog_bark --first 17 -n 1 --out clip17/   # clip 17 again\n"
               "  occ generate --checkpoint ckpt.pt --class all --submission submission/   # 100 per class, checked")
    g.add_argument("--checkpoint", required=True, metavar="PATH",
                   help="GAN checkpoint of a training run (runs/train/<variant>/seed<k>/checkpoint.pt, e.g. "
                        "runs/train/o2c/seed0/checkpoint.pt)")
    g.add_argument("--class", dest="classes", action="append", required=True, metavar="NAME",
                   help="class name (DogBark, dog_bark, ...; case-insensitive), comma-separated names, or all; repeatable")
    g.add_argument("-n", type=int, default=None, metavar="N",
                   help="clips per class (default 1; 100 with --submission, the DCASE count)")
    g.add_argument("--first", type=int, default=0, metavar="I", help="index of the first clip (default 0)")
    g.add_argument("--seed", type=int, default=None, metavar="S",
                   help="base seed (default: the evaluation's, params.yaml's top-level seed, the same for every run "
                        "whatever its training seed k; read from the project holding the checkpoint, else from the "
                        "working folder's; outside any project this option is required)")
    g.add_argument("--project", default=None, metavar="DIR",
                   help="project whose params.yaml gives the defaults of --seed, --threads, --vocoder, --gl-iters and "
                        "--device (default: found from the checkpoint, else from here)")
    g.add_argument("--profile", default=None, metavar="P",
                   help="params.yaml profile for those defaults (default: the file's switch)")
    target = g.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", metavar="DIR", help="folder to write the WAV files into (must be new or empty)")
    target.add_argument("--submission", metavar="DIR",
                        help="write the DCASE 2023 Task 7 submission layout (<class>/00.wav ...) and check it")
    g.add_argument("--vocoder", default=None, metavar="V",
                   help=f"{VOCODER_HELP} (default: the evaluation's, params.yaml's eval.vocoder)")
    g.add_argument("--gl-iters", type=int, default=None, metavar="N",
                   help="Griffin-Lim iterations (default: the evaluation's, params.yaml's eval.gl_iters)")
    g.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch threads (default: the evaluation's, params.yaml's eval.threads; the clips' bytes depend "
                        "on it)")
    g.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default="auto",
                   help="HiFi-GAN arithmetic: auto = mixed bf16 on a CPU with native bf16, else float32 (default auto)")
    g.add_argument("--device", default=None,
                   help="auto, cpu, cuda or cuda:N (GPU N; default: the evaluation's, params.yaml's device)")
    g.add_argument("--overwrite", action="store_true", help="replace the output folder if it exists")
    g.set_defaults(func=cmd_generate)


def add_check_submission_parser(sub: Any, *, common: argparse.ArgumentParser, fmt: type) -> None:
    """Register ``check-submission`` on the ``occ`` command's sub-parsers."""
    c = sub.add_parser(
        "check-submission", parents=[common], formatter_class=fmt, help="run the DCASE submission format checks",
        description="Check a folder against the DCASE 2023 Task 7 submission format: one snake_case folder per\n"
                    "class, exactly N mono 16-bit PCM WAV files of 88,200 samples at 22,050 Hz in each. Every\n"
                    "problem is listed; exit code 0 when the folder passes, 1 otherwise.",
        epilog="examples:\n"
               "  occ check-submission submission/\n"
               "  occ check-submission clips/ -n 5 --classes dog_bark,rain")
    c.add_argument("directory", metavar="DIR", help="the submission folder")
    c.add_argument("-n", type=int, default=100, metavar="N", help="clips required per class (default 100)")
    c.add_argument("--classes", action="append", metavar="NAMES",
                   help="comma-separated classes to check (default: the seven DCASE classes)")
    c.set_defaults(func=cmd_check_submission)
