"""The ``occ`` command: foley clips from a checkpoint, FAD of folders of clips, the held-out reference clips, the
DCASE submission checks.

::

    occ generate --checkpoint runs/train/o2c_ct1/seed0/checkpoint.pt --class DogBark -n 20 --out barks/
    occ heldout heldout/                   # the FAD reference clips of the pipeline, heldout/<Class>/
    occ fad barks/ heldout/DogBark/        # one class: one FAD; class folders against class folders: per class
    occ check-submission submission/
    torchrun --nproc_per_node 4 -m occ train --variant o2c --seed 0    # occ.cli.train

Each sub-command calls the package's own functions, the ones the pipeline's notebooks call:
``occ generate`` makes its clips with :func:`occ.synthesis.generate.generate_clips` (standing statistics, per-clip
seeds of :func:`occ.synthesis.generate.eval_seeds`, the vocoder) and writes them with
:func:`occ.synthesis.submission.write_clip`, so the clip of (class, index, seed) is byte for byte the one the
evaluation writes, its base seed by default the evaluation's (params.yaml's ``seed``, as ``05_evaluate``);
``occ fad`` reads clips with :func:`occ.data.audio.load_clip`, embeds them with
:func:`occ.metrics.embeddings.get_embedder` and scores them with :func:`occ.metrics.fad.fad_per_class`;
``occ heldout`` copies the audio files of the feature cache's held-out clips (``FeatureCache.heldout``), the set the
reference stage embeds; ``occ check-submission`` lists :func:`occ.synthesis.submission.submission_problems`.

Bad input ends with one line on stderr naming the file or option and what to do, and exit code 1 (2 for
a malformed command line); ``--debug`` shows the traceback instead. Output folders are written into a
temporary folder beside the target and renamed into place at the end, so a failed or interrupted run
leaves no partial folder.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import sys
from pathlib import Path

__all__ = ["main", "build_parser", "resolve_classes", "clip_sets", "find_project", "evaluation_settings",
           "heldout_sources"]

VOCODER_HELP = "griffinlim (fast), hifigan (the universal HiFi-GAN V1) or the path of a HiFi-GAN generator checkpoint"


class CliError(Exception):
    """Bad input found by the command itself (printed as one line, exit code 1)."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr (exit code 2)."""

    def error(self, message: str) -> None:  # noqa: D102 (argparse API)
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


# ----------------------------------------------------------------------------- helpers
def _key(name: str) -> str:
    """Spelling-free key of a class name: ``DogBark``, ``dog_bark``, ``DOG-BARK`` -> ``dogbark``."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


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
        lookup[_key(name)] = i
        lookup[_key(class_folder(name))] = i
    for alias, name in DCASE_ALIASES.items():
        if _key(name) in lookup:
            lookup.setdefault(_key(alias), lookup[_key(name)])
    out: list[int] = []
    for raw in requested:
        for name in (n for n in raw.split(",") if n.strip()):
            if name.strip().lower() == "all":
                idx = list(range(len(class_names)))
            elif _key(name) in lookup:
                idx = [lookup[_key(name)]]
            else:
                known = ", ".join(class_names)
                raise CliError(f"--class {name!r} is not a class of this checkpoint; use one of: {known} (any case, "
                               "snake_case works too), or all")
            out.extend(i for i in idx if i not in out)
    if not out:
        raise CliError("--class is empty; name a class or use --class all")
    return out


def _audio_files(folder: Path) -> list[Path]:
    from occ.data.datasets import AUDIO_EXTENSIONS

    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS and not p.name.startswith("."))


def clip_sets(folder: str | os.PathLike, *, what: str) -> dict[str, list[Path]]:
    """The clips of a folder: its class sub-folders (class -> files), or its own files as one set ``""``.

    Parameters
    ----------
    folder : path-like
        A folder of audio files, or of class folders of audio files (hidden files are skipped).
    what : str
        What the folder is, for messages (``"GENERATED"``).

    Returns
    -------
    dict of str to list of Path
        Sub-folder name -> its audio files, sorted; ``{"": files}`` for a flat folder.

    Raises
    ------
    CliError
        The folder is missing, or holds no audio files and no class folders with audio files.
    """
    from occ.data.datasets import AUDIO_EXTENSIONS

    root = Path(folder)
    if not root.is_dir():
        raise CliError(f"{what} folder {root} does not exist (or is not a folder)")
    subs = {d.name: _audio_files(d) for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")}
    subs = {k: v for k, v in subs.items() if v}
    if subs:
        return subs
    files = _audio_files(root)
    if not files:
        raise CliError(f"{what} folder {root} holds no audio files ({', '.join(sorted(AUDIO_EXTENSIONS))}) and no "
                       "class folders with audio files; point it at a folder of clips")
    return {"": files}


def _load_clips(files: list[Path], *, desc: str, progress: bool):
    import numpy as np
    from tqdm.auto import tqdm

    from occ.data.audio import load_clip

    return np.stack([load_clip(f) for f in tqdm(files, desc=desc, unit="clip", disable=not progress)])


def _threads(n: int) -> str:
    return f"{n} thread{'s' if n != 1 else ''}"


def _at_least_one_thread(threads: int) -> int:
    if threads < 1:
        raise CliError(f"--threads {threads}: use at least 1 thread")
    return threads


def _progress(args) -> bool:
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


def _fresh_sibling(target: Path) -> Path:
    """A new temporary folder beside ``target`` (same file system, so the final rename is atomic)."""
    from occ.atomic import new_folder_beside

    return new_folder_beside(target)


def _check_target(target: Path, *, overwrite: bool, option: str) -> None:
    if target.exists() and not target.is_dir():
        raise CliError(f"{option} {target} is a file; give a folder path")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise CliError(f"{option} {target} already exists and is not empty; choose a new folder or pass --overwrite")


def _move_into_place(tmp: Path, target: Path) -> None:
    """Rename the finished temporary folder to ``target``, replacing an existing one."""
    from occ.atomic import swap_folder_in

    swap_folder_in(tmp, target)


# ----------------------------------------------------------------------------- occ generate
def find_project(project: str | os.PathLike | None, *, near: tuple[Path, ...] = ()) -> Path:
    """The project root whose ``params.yaml`` a command reads.

    Parameters
    ----------
    project : path-like, optional
        ``--project``: a folder at or below the project root. When given, only it is searched.
    near : tuple of Path
        Folders searched in order when ``project`` is not given (the working folder is searched last).

    Returns
    -------
    Path
        The nearest folder at or above a searched folder that holds ``params.yaml``.

    Raises
    ------
    CliError
        No ``params.yaml`` at or above any searched folder.
    """
    from occ.paths import project_root

    starts = [Path(project)] if project is not None else [*near, Path.cwd()]
    for start in starts:
        try:
            return project_root(start)
        except FileNotFoundError:
            continue
    where = " or ".join(str(s) for s in dict.fromkeys(starts))
    raise CliError(f"no params.yaml at or above {where}: run the command inside the occ project, or pass "
                   "--project DIR (the project's root folder)")


#: What ``occ generate`` takes from the evaluation: option -> how the evaluation reads it from ``params.yaml``.
EVALUATION_SETTINGS = {"seed": "seed", "threads": "eval.threads", "vocoder": "eval.vocoder",
                       "gl_iters": "eval.gl_iters", "device": "device"}
#: Their values outside any project, where only ``--seed`` has none (the embedded profile's, ``params.yaml``).
OUTSIDE_A_PROJECT = {"threads": 1, "vocoder": "griffinlim", "gl_iters": 16, "device": "auto"}


def evaluation_settings(checkpoint: Path, *, project: str | None = None,
                        profile: str | None = None) -> tuple[dict, str]:
    """The settings the pipeline's evaluation generates every run's clips with, and where they were read.

    ``notebooks/05_evaluate.ipynb`` runs on ``eval.threads`` torch threads on ``device`` and passes
    ``base_seed=params.seed`` (params.yaml's top-level ``seed``, with the profile applied; whatever the run's
    training seed is), ``vocoder=eval.vocoder`` and ``gl_iters=eval.gl_iters`` to ``evaluate_generator``. The params
    file is that of ``project``, else of the project holding ``checkpoint``, else of the working folder's.

    Returns
    -------
    (dict, str)
        The keys of :data:`EVALUATION_SETTINGS` with their values, and a phrase naming the params file and profile.
    """
    from occ.config import load_params

    root = find_project(project, near=(checkpoint.resolve().parent,))
    params = load_params(root / "params.yaml", profile=profile)
    vocoder = params.eval.vocoder  # a checkpoint path is relative to the project root, where the stages run
    if vocoder not in ("griffinlim", "hifigan") and not Path(vocoder).expanduser().is_absolute():
        vocoder = str(root / vocoder)
    found = {"seed": params.seed, "threads": params.eval.threads, "vocoder": vocoder,
             "gl_iters": params.eval.gl_iters, "device": params.device}
    return found, f"{root / 'params.yaml'}, profile {params.profile}"


def generate_settings(args, checkpoint: Path) -> tuple[dict, str]:
    """``occ generate``'s seed, threads, vocoder, Griffin-Lim iterations and device: each given option, else the
    evaluation's (:func:`evaluation_settings`); outside any project, :data:`OUTSIDE_A_PROJECT` (``--seed`` is then
    required). Also a phrase saying where the defaults came from."""
    given = {key: getattr(args, key) for key in EVALUATION_SETTINGS}
    missing = [key for key, value in given.items() if value is None]
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
    return {key: found[key] if value is None else value for key, value in given.items()}, source


def evaluation_threads(args) -> int:
    """``--threads``, else ``eval.threads`` of the project's params.yaml (``--project``, else the working folder's):
    the thread count of the stages that embed clips (reference, evaluate); outside any project, 1 (the embedded
    profile's)."""
    from occ.config import load_params

    if args.threads is not None:
        return _at_least_one_thread(args.threads)
    try:
        root = find_project(args.project)
    except CliError:
        if args.project is not None:
            raise
        return OUTSIDE_A_PROJECT["threads"]
    return load_params(root / "params.yaml", profile=args.profile).eval.threads


def cmd_generate(args) -> int:
    import numpy as np
    import torch

    from occ.nets.models import load_generator
    from occ.synthesis.generate import SEED_STRIDE, eval_seeds, generate_clips
    from occ.device import resolve_device, torch_threads
    from occ.data.classes import class_folder
    from occ.synthesis.submission import check_submission, write_clip, write_submission

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
        _at_least_one_thread(args.threads)
    if args.vocoder not in (None, "griffinlim", "hifigan") and not Path(args.vocoder).is_file():
        raise CliError(f"--vocoder {args.vocoder}: not griffinlim or hifigan, and no such checkpoint file; "
                       "give the path of a HiFi-GAN generator checkpoint (e.g. g_00935000)")
    _check_target(target, overwrite=args.overwrite, option=option)
    checkpoint = Path(args.checkpoint)
    if not checkpoint.exists():  # a folder is named as such by load_generator
        raise CliError(f"--checkpoint {checkpoint} does not exist; give a GAN checkpoint such as "
                       "runs/train/<variant>/seed<k>/checkpoint.pt (train one with `dvc repro train@<variant>-<seed>`)")
    if args.seed is not None and args.seed < 0:
        raise CliError(f"--seed {args.seed}: use a seed >= 0")
    settings, source = generate_settings(args, checkpoint)
    base_seed, threads, vocoder, gl_iters = (settings[k] for k in ("seed", "threads", "vocoder", "gl_iters"))
    device = resolve_device(settings["device"])
    generator, payload = load_generator(checkpoint, device=device)
    n_classes = int(payload["n_classes"])
    class_names = list(payload.get("class_names") or [f"class{i}" for i in range(n_classes)])
    chosen = resolve_classes(args.classes, class_names)

    # The evaluation's (class, index) -> seed map, restricted to the chosen classes and indices.
    labels, seeds = eval_seeds(args.first + n, n_classes, base_seed=base_seed)
    index = torch.arange(args.first + n).repeat(n_classes)
    keep = torch.isin(labels, torch.tensor(chosen)) & (index >= args.first)
    order = torch.cat([torch.nonzero(keep & (labels == c)).reshape(-1) for c in chosen])  # classes as asked
    labels, seeds, index = labels[order], seeds[order], index[order]
    iters = f" (gl_iters {gl_iters})" if vocoder == "griffinlim" else ""
    print(f"occ generate: {len(labels)} clips ({n} per class: {', '.join(class_names[c] for c in chosen)}), "
          f"seed {base_seed}, vocoder {vocoder}{iters}, {_threads(threads)}, device {device}; "
          f"defaults: {source}", file=sys.stderr)
    with torch_threads(threads):  # the evaluation's sums, in the evaluation's order
        _, wavs = generate_clips(generator, labels, seeds, base_seed=base_seed, vocoder=vocoder, gl_iters=gl_iters,
                                 device=device, progress=_progress(args), precision=args.precision)

    tmp = _fresh_sibling(target)
    try:
        if args.submission is not None:
            by_class = {class_names[c]: wavs[(labels == c).numpy()] for c in chosen}
            write_submission(tmp, by_class, n_per_class=n)
            check_submission(tmp, n_per_class=n, classes=list(by_class))
        else:
            width = max(4, len(str(args.first + n - 1)))
            rows = []
            for k in range(len(labels)):
                name = class_names[int(labels[k])]
                fname = f"{class_folder(name)}-seed{base_seed}-{int(index[k]):0{width}d}.wav"
                write_clip(tmp / fname, wavs[k])
                rows.append({"file": fname, "class": name, "index": int(index[k]), "seed": base_seed,
                             "latent_seed": int(seeds[k]), "vocoder": vocoder,
                             "gl_iters": gl_iters if vocoder == "griffinlim" else "", "threads": threads,
                             "device": str(device), "checkpoint": str(checkpoint),
                             "step": int(payload.get("step", 0))})
            with open(tmp / "clips.csv", "w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
        _move_into_place(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    what = "DCASE submission (checked)" if args.submission is not None else "WAV files + clips.csv"
    clipped = float((np.abs(wavs) > 1).mean())
    print(f"wrote {len(labels)} clips to {target}/ ({what})"
          + (f"; {clipped:.1%} of the samples exceeded [-1, 1] and were clipped" if clipped else ""))
    return 0


# ----------------------------------------------------------------------------- occ fad
def _match(gen: dict, ref: dict, *, gen_root: Path, ref_root: str) -> dict[str, str]:
    """Generated class -> reference class: one flat folder against another (one set, ``{"": ""}``), or class
    folders against class folders, matched by spelling-free name.

    Raises
    ------
    CliError
        One folder is flat and the other has class folders (the message names both), or a generated class has
        no reference folder.
    """
    flat_gen, flat_ref = list(gen) == [""], list(ref) == [""]
    if flat_gen and flat_ref:
        return {"": ""}
    if flat_gen:
        raise CliError(f"GENERATED {gen_root} is a flat folder of clips but REFERENCE {ref_root} has class folders "
                       f"({', '.join(ref)}): give the class folder of those clips as REFERENCE (e.g. "
                       f"{Path(ref_root) / next(iter(ref))}), or give GENERATED the same class folders")
    if flat_ref:
        raise CliError(f"GENERATED {gen_root} has class folders ({', '.join(gen)}) but REFERENCE {ref_root} is a flat "
                       f"folder of clips: give REFERENCE the same class folders (`occ heldout DIR` writes the "
                       f"held-out clips so), or compare one class folder (e.g. {gen_root / next(iter(gen))}) with it")
    by_key = {_key(r): r for r in ref}
    missing = [g for g in gen if _key(g) not in by_key]
    if missing:
        raise CliError(f"GENERATED classes {', '.join(missing)} have no folder in REFERENCE {ref_root} "
                       f"(it has {', '.join(ref)}); class folders are matched by name, case and '_' ignored")
    return {g: by_key[_key(g)] for g in gen}


def fad_report(gen_emb: dict, ref: dict, *, n_ref: dict[str, int | None]) -> dict:
    """FAD per class and the mean, with clip counts, from embeddings (``occ.metrics.fad.fad_per_class``)."""
    from occ.metrics.fad import fad_per_class

    table = fad_per_class(gen_emb, ref)
    classes = {name: {"fad": float(table.loc[name, "fad"]), "n_clips": int(table.loc[name, "n_clips"]),
                      "n_reference_clips": n_ref[name]} for name in gen_emb}
    return {"classes": classes, "mean": {"fad": float(table.loc["Average", "fad"]), "n_classes": len(classes),
                                         "n_clips": int(table.loc["Average", "n_clips"])}}


def cmd_fad(args) -> int:
    from occ.metrics.embeddings import get_embedder
    from occ.device import resolve_device, torch_threads

    dcase = args.reference == "dcase-eval"
    embedding = args.embedding or ("vggish" if dcase else "aisfx")
    if dcase and embedding != "vggish":
        raise CliError(f"--embedding {embedding} with dcase-eval: the DCASE statistics are VGGish embeddings; "
                       "use --embedding vggish (the default with dcase-eval)")
    if embedding == "encoder" and not args.encoder:
        raise CliError("--embedding encoder needs --encoder PATH, the SupCon encoder checkpoint (runs/supcon/encoder.pt)")
    gen_root = Path(args.generated)
    gen = clip_sets(gen_root, what="GENERATED")
    if dcase:
        from occ.metrics.dcase_eval_stats import dcase_eval_reference
        from occ.data.classes import class_folder

        if list(gen) == [""]:
            raise CliError(f"GENERATED {gen_root} is a flat folder; dcase-eval needs one folder per DCASE class "
                           "(dog_bark, footstep, ...), as `occ generate --submission` writes")
        ref_files = None
        ref = dcase_eval_reference([class_folder(g) for g in gen])
        pairs = {g: class_folder(g) for g in gen}
    else:
        ref_files = clip_sets(args.reference, what="REFERENCE")
        pairs = _match(gen, ref_files, gen_root=gen_root, ref_root=args.reference)
    for name, files in list(gen.items()) + list((ref_files or {}).items()):
        if embedding == "encoder" and len(files) < 2:
            raise CliError(f"class {name or 'all'!r} has {len(files)} clip; FAD with one embedding per clip needs at least 2")

    device = resolve_device(args.device)
    threads = evaluation_threads(args)
    encoder = None
    if embedding == "encoder":
        from occ.nets.models import load_encoder

        encoder = load_encoder(args.encoder, device=device)
    embedder = get_embedder(embedding, weights=args.vggish_weights, device=device, encoder=encoder)
    progress = _progress(args)
    label = {g: (g or gen_root.resolve().name) for g in gen}
    gen_emb, ref_emb, n_ref = {}, {}, {}
    with torch_threads(threads):  # the stages' sums, in the stages' order
        for g, files in gen.items():
            gen_emb[label[g]] = embedder.embed(_load_clips(files, desc=f"read {label[g]}", progress=progress),
                                               progress=progress)
            r = pairs[g]
            if dcase:
                ref_emb[label[g]], n_ref[label[g]] = ref[r], None
            else:
                if r not in ref_emb:
                    ref_emb[r] = embedder.embed(_load_clips(ref_files[r], desc=f"read reference {r or 'clips'}",
                                                            progress=progress), progress=progress)
                n_ref[label[g]] = len(ref_files[r])
    reference = {label[g]: ref_emb[label[g]] if dcase else ref_emb[pairs[g]] for g in gen}
    report = fad_report(gen_emb, reference, n_ref=n_ref)
    report.update(embedding=embedding, threads=threads, generated=str(gen_root), reference=args.reference)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    ref_name = "the DCASE 2023 evaluation set" if dcase else args.reference
    rows = report["classes"]
    if list(gen) == [""]:  # one set against another: one line
        (row,) = rows.values()
        print(f"FAD ({embedding} embeddings, {_threads(threads)}) of {gen_root} against {ref_name}: {row['fad']:.6g} "
              f"({row['n_clips']} clips, {row['n_reference_clips']} reference clips)")
        return 0
    print(f"FAD ({embedding} embeddings, {_threads(threads)}) of {gen_root} against {ref_name}")
    if args.per_class or len(rows) == 1:
        width = max(len("class"), *(len(c) for c in rows))
        print(f"{'class':<{width}}  {'clips':>6}  {'ref clips':>9}  {'FAD':>12}")
        for name, row in rows.items():
            nr = "-" if row["n_reference_clips"] is None else row["n_reference_clips"]
            print(f"{name:<{width}}  {row['n_clips']:>6}  {nr:>9}  {row['fad']:>12.6g}")
    mean = report["mean"]
    print(f"mean FAD over {mean['n_classes']} class{'es' if mean['n_classes'] != 1 else ''} "
          f"({mean['n_clips']} clips): {mean['fad']:.6g}")
    return 0


# ----------------------------------------------------------------------------- occ heldout
def heldout_sources(cache, *, root: Path) -> list[tuple[str, Path]]:
    """The held-out clips of a feature cache as (class name, audio file), in the cache's order.

    These are the clips the reference stage embeds as the FAD reference set
    (``occ.metrics.embeddings.reference_embeddings``: ``cache.heldout()``, read from their audio files).

    Parameters
    ----------
    cache : occ.data.datasets.FeatureCache
        The pipeline's feature cache (``data.cache``).
    root : Path
        The dataset folder the cache's relative file paths start from.

    Raises
    ------
    DataError
        The cache holds no held-out clip, or a held-out clip's audio file is missing.
    """
    from occ.errors import DataError

    held = cache.heldout()
    if len(held) == 0:
        raise DataError("the feature cache holds no held-out clips (data.heldout_per_class is 0 in params.yaml): "
                        "set it and run `dvc repro data`")
    out = [(held.class_names[int(y)], root / f) for f, y in zip(held.files, held.labels.tolist())]
    missing = [str(path) for _, path in out if not path.is_file()]
    if missing:
        raise DataError(f"{len(missing)} held-out clip(s) of the feature cache are missing from the dataset folder "
                        f"{root} (first: {missing[0]}): the dataset changed or is gone since the data stage ran; "
                        "run `dvc repro --force data` (DVC does not track the dataset folder itself)")
    return out


def cmd_heldout(args) -> int:
    from tqdm.auto import tqdm

    from occ.atomic import atomic_folder, make_folder
    from occ.config import load_params
    from occ.data.datasets import load_feature_cache, settings_hash
    from occ.errors import DataError
    from occ.paths import Layout

    target = Path(args.out_dir)
    _check_target(target, overwrite=args.overwrite, option="OUT_DIR")
    layout = Layout(find_project(args.project))
    params = load_params(layout.params, profile=args.profile)
    cache_path = layout.data(params.data.cache)
    if not cache_path.exists():  # a folder is named as such by load_feature_cache
        raise CliError(f"the data are not prepared: no feature cache {cache_path} (params.yaml data.cache); run "
                       f"`dvc repro data` in {layout.root} first")
    cache = load_feature_cache(cache_path)
    if cache.settings_hash != settings_hash(heldout_per_class=params.data.heldout_per_class, split_seed=params.seed):
        raise DataError(f"feature cache {cache_path} was built with another held-out split than params.yaml asks for "
                        "(data.heldout_per_class, seed); run `dvc repro data` first")
    root = layout.data(cache.root)  # where the data stage read the clips; else this project's data.path (a moved copy)
    clips = heldout_sources(cache, root=root if root.is_dir() else layout.data(params.data.path))
    with atomic_folder(target) as tmp:
        for name, src in tqdm(clips, desc="copy held-out clips", unit="clip", disable=not _progress(args)):
            dst = tmp / name / src.name
            if dst.exists():
                raise DataError(f"two held-out clips of class {name} are named {src.name}; rename one in the dataset")
            make_folder(dst.parent)
            shutil.copyfile(src, dst)
    counts = {name: sum(c == name for c, _ in clips) for name in dict.fromkeys(c for c, _ in clips)}
    print(f"wrote {len(clips)} held-out clips to {target}/ ({', '.join(f'{c} {n}' for c, n in counts.items())}): the "
          f"reference stage's FAD reference set; e.g. `occ fad GENERATED {target / next(iter(counts))}`")
    return 0


# ----------------------------------------------------------------------------- occ check-submission
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


# ----------------------------------------------------------------------------- parser
def cmd_repro(args) -> int:
    from occ.pipeline.parallel import run_from_args

    if not Path("dvc.yaml").is_file():
        raise CliError(f"no dvc.yaml in {Path.cwd()}: run `occ repro` in the repository's root folder")
    return run_from_args(args)


def build_parser() -> argparse.ArgumentParser:
    """The ``occ`` argument parser (sub-commands generate, fad, heldout, check-submission, repro, train, supcon,
    fetch-weights)."""
    from occ import __version__
    from occ.cli.fetch import add_parser as add_fetch_parser
    from occ.cli.train import add_parsers, add_project_arguments

    fmt = argparse.RawDescriptionHelpFormatter
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    parser = _Parser(prog="occ", formatter_class=fmt,
                     description="Foley sound synthesis with the O2C-GAN / OC-SupConGAN models of this project, "
                                 "FAD as DCASE 2023 Task 7 computed it, and the DCASE submission checks.",
                     epilog="examples:\n"
                            "  occ generate --checkpoint runs/train/o2c_ct1/seed0/checkpoint.pt --class DogBark -n 20 --out barks/\n"
                            "  occ heldout heldout/ && occ fad barks/ heldout/DogBark/\n"
                            "  occ check-submission submission/\n"
                            "  torchrun --nproc_per_node 4 -m occ train --variant o2c --seed 0\n\n"
                            "`occ COMMAND --help` describes each command.")
    parser.add_argument("--version", action="version", version=f"occ {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser, required=True)

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

    f = sub.add_parser(
        "fad", parents=[common], formatter_class=fmt, help="Frechet Audio Distance of a folder of clips",
        description="FAD of the clips in GENERATED against REFERENCE, computed as the DCASE 2023 Task 7\n"
                    "evaluation did (mean and covariance of all embedding windows).\n\n"
                    "Two folders of audio files (one class's clips against that class's reference clips): one FAD.\n"
                    "Two folders of class folders: a FAD per class and the mean; class folders are matched by\n"
                    "name, ignoring case and '_'. One flat folder against class folders is an error. REFERENCE\n"
                    "may also be dcase-eval, the official DCASE 2023 evaluation-set VGGish statistics (shipped\n"
                    "with occ). `occ heldout DIR` writes the pipeline's reference clips as DIR/<Class>/.\n"
                    "Clips are read as the model sees them: mono, 22,050 Hz, cut or padded to 4 s, and embedded on\n"
                    "the threads of the stages that embed clips (params.yaml's eval.threads; --threads), which the\n"
                    "output records. Only vggish against dcase-eval is on the paper's scale; aisfx values rank models.",
        epilog="examples:\n"
               "  occ heldout heldout/ && occ fad barks/ heldout/DogBark/   # one class: one FAD\n"
               "  occ fad generated/ heldout/ --per-class                    # class folders by name\n"
               "  occ fad submission/ dcase-eval --vggish-weights vggish-10086976.pth --per-class\n"
               "  occ fad a/ b/ --embedding encoder --encoder runs/supcon/encoder.pt --json")
    f.add_argument("generated", metavar="GENERATED", help="folder of clips, or of class folders of clips")
    f.add_argument("reference", metavar="REFERENCE",
                   help="the same layout as GENERATED (folder of clips, or of class folders), or dcase-eval")
    f.add_argument("--embedding", choices=("aisfx", "vggish", "encoder"), default=None,
                   help="aisfx (default), vggish (the DCASE metric; default with dcase-eval) or encoder")
    f.add_argument("--vggish-weights", metavar="PATH", default=None,
                   help="vggish-10086976.pth (default: $OCC_VGGISH_WEIGHTS, the cache, or a download)")
    f.add_argument("--encoder", metavar="PATH", default=None, help="SupCon encoder checkpoint for --embedding encoder")
    f.add_argument("--per-class", action="store_true", help="print each class's FAD, not only the mean")
    f.add_argument("--json", action="store_true", help="print the result as JSON (always per class)")
    f.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch threads (default: params.yaml's eval.threads, those of the stages that embed clips; "
                        "1 outside any project)")
    f.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (GPU N; default auto)")
    add_project_arguments(f)
    f.set_defaults(func=cmd_fad)

    h = sub.add_parser(
        "heldout", parents=[common], formatter_class=fmt, help="write the held-out reference clips as audio files",
        description="Copy the dataset's held-out clips, the FAD reference set the pipeline's reference stage\n"
                    "embeds, into OUT_DIR/<Class>/<file> (the original audio files, unchanged), ready for\n"
                    "`occ fad`. The clips are those of the feature cache (params.yaml data.cache) that the data\n"
                    "stage wrote: run `dvc repro data` first. OUT_DIR is written whole or not at all.",
        epilog="examples:\n"
               "  occ heldout heldout/\n"
               "  occ fad barks/ heldout/DogBark/            # one class's generated clips: one FAD\n"
               "  occ fad generated/ heldout/ --per-class    # class folders, matched by name\n"
               "  occ heldout heldout-smoke/ --profile smoke --project ~/occ")
    h.add_argument("out_dir", metavar="OUT_DIR", help="folder to write (must be new or empty)")
    add_project_arguments(h)
    h.add_argument("--overwrite", action="store_true", help="replace OUT_DIR if it exists")
    h.set_defaults(func=cmd_heldout)

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

    from occ.pipeline.parallel import add_arguments as add_repro_arguments

    r = sub.add_parser(
        "repro", parents=[common], formatter_class=fmt, help="regenerate every result, several stages at once",
        description="Run the DVC pipeline with several stages at once (`dvc --wait-for-lock repro --single-item` per\n"
                    "stage, each started when its upstream stages are done). Afterwards `dvc repro` does nothing and\n"
                    "`dvc status` is clean, as after a plain `dvc repro`. Ctrl-C stops every stage and keeps the\n"
                    "finished ones; the same command resumes. Run it in the repository's root folder.",
        epilog="examples:\n"
               "  occ repro                 # every core busy: stages on their declared threads, as the cores hold\n"
               "  occ repro -j 2            # two stages at once, whatever their threads\n"
               "  occ repro 'evaluate@o2c-0' # one stage and what it needs")
    add_repro_arguments(r)
    r.set_defaults(func=cmd_repro)

    add_parsers(sub, common=common, fmt=fmt)
    add_fetch_parser(sub, common=common, fmt=fmt)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``occ`` command; returns the exit code (0 success, 1 bad input or failed check, 2 usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from occ.errors import OccError

    try:
        return args.func(args)
    except (CliError, OccError) as exc:
        if args.debug:
            raise
        print(f"occ {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"occ {args.command}: interrupted; nothing was left half-written", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug or an unforeseen condition: still one line, the traceback on request
        if args.debug:
            raise
        print(f"occ {args.command}: error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
