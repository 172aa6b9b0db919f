"""``occ fad`` (FAD of folders of clips, as the pipeline computes it) and ``occ heldout`` (the held-out reference clips).

``occ fad`` reads clips with :func:`occ.data.audio.load_clip`, embeds them with
:func:`occ.metrics.embeddings.get_embedder` and scores them with :func:`occ.metrics.fad.fad_per_class`;
``occ heldout`` copies the audio files of the feature cache's held-out clips (``FeatureCache.heldout``), the set the
reference stage embeds, into a folder written whole or not at all.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path
from typing import Any

from occ.cli.common import (OUTSIDE_A_PROJECT, CliError, add_project_arguments, at_least_one_thread, check_target,
                            find_project, key, show_progress, threads_phrase)

__all__ = ["add_fad_parser", "add_heldout_parser", "cmd_fad", "cmd_heldout", "clip_sets", "fad_report",
           "heldout_sources", "evaluation_threads"]


def _audio_files(folder: Path) -> list[Path]:
    from occ.data.scan import AUDIO_EXTENSIONS

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
    from occ.data.scan import AUDIO_EXTENSIONS

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
    by_key = {key(r): r for r in ref}
    missing = [g for g in gen if key(g) not in by_key]
    if missing:
        raise CliError(f"GENERATED classes {', '.join(missing)} have no folder in REFERENCE {ref_root} "
                       f"(it has {', '.join(ref)}); class folders are matched by name, case and '_' ignored")
    return {g: by_key[key(g)] for g in gen}


def fad_report(gen_emb: dict, ref: dict, *, n_ref: dict[str, int | None]) -> dict:
    """FAD per class and the mean, with clip counts, from embeddings (``occ.metrics.fad.fad_per_class``)."""
    from occ.metrics.fad import fad_per_class

    table = fad_per_class(gen_emb, ref)
    classes = {name: {"fad": float(table.loc[name, "fad"]), "n_clips": int(table.loc[name, "n_clips"]),
                      "n_reference_clips": n_ref[name]} for name in gen_emb}
    return {"classes": classes, "mean": {"fad": float(table.loc["Average", "fad"]), "n_classes": len(classes),
                                         "n_clips": int(table.loc["Average", "n_clips"])}}


def evaluation_threads(args) -> int:
    """``--threads``, else ``eval.threads`` of the project's params.yaml (``--project``, else the working folder's):
    the thread count of the stages that embed clips (reference, evaluate); outside any project, 1 (the embedded
    profile's)."""
    from occ.config import clip_settings, load_params

    if args.threads is not None:
        return at_least_one_thread(args.threads)
    try:
        root = find_project(args.project)
    except CliError:
        if args.project is not None:
            raise
        return OUTSIDE_A_PROJECT["threads"]
    return clip_settings(load_params(root / "params.yaml", profile=args.profile), root)["threads"]


def cmd_fad(args) -> int:
    from occ.metrics.embeddings import get_embedder
    from occ.device import resolve_device, torch_threads

    # the embedding and the two sides: class folders matched by name, or the official DCASE statistics
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

    # every clip embedded (each reference class once), then FAD per class and the mean
    device = resolve_device(args.device)
    threads = evaluation_threads(args)
    encoder = None
    if embedding == "encoder":
        from occ.nets.models import load_encoder

        encoder = load_encoder(args.encoder, device=device)
    embedder = get_embedder(embedding, weights=args.vggish_weights, device=device, encoder=encoder)
    progress = show_progress(args)
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
    # the answer: JSON, one line for one set, or the classes and the mean
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    ref_name = "the DCASE 2023 evaluation set" if dcase else args.reference
    rows = report["classes"]
    if list(gen) == [""]:  # one set against another: one line
        (row,) = rows.values()
        print(f"FAD ({embedding} embeddings, {threads_phrase(threads)}) of {gen_root} against {ref_name}: "
              f"{row['fad']:.6g} "
              f"({row['n_clips']} clips, {row['n_reference_clips']} reference clips)")
        return 0
    print(f"FAD ({embedding} embeddings, {threads_phrase(threads)}) of {gen_root} against {ref_name}")
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
    check_target(target, overwrite=args.overwrite, option="OUT_DIR")
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
        for name, src in tqdm(clips, desc="copy held-out clips", unit="clip", disable=not show_progress(args)):
            dst = tmp / name / src.name
            if dst.exists():
                raise DataError(f"two held-out clips of class {name} are named {src.name}; rename one in the dataset")
            make_folder(dst.parent)
            shutil.copyfile(src, dst)
    counts = {name: sum(c == name for c, _ in clips) for name in dict.fromkeys(c for c, _ in clips)}
    print(f"wrote {len(clips)} held-out clips to {target}/ ({', '.join(f'{c} {n}' for c, n in counts.items())}): the "
          f"reference stage's FAD reference set; e.g. `occ fad GENERATED {target / next(iter(counts))}`")
    return 0


def add_fad_parser(sub: Any, *, common: argparse.ArgumentParser, fmt: type) -> None:
    """Register ``fad`` on the ``occ`` command's sub-parsers."""
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


def add_heldout_parser(sub: Any, *, common: argparse.ArgumentParser, fmt: type) -> None:
    """Register ``heldout`` on the ``occ`` command's sub-parsers."""
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
