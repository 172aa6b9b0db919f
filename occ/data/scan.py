"""A dataset folder scanned: its audio files and their classes, in one of two layouts (no audio is read).

* ``"dcase"``: the DCASE 2023 Task 7 development set, ``DCASEFoleySoundSynthesisDevSet/<Class>/*.wav``
  with the official class map (docs/reference.md, section 2); the older folder name ``Sneeze`` is read as
  ``Sneeze_Cough``. The embedded synthetic set (:mod:`occ.data.synth`) has the same layout.
* ``"folders"``: any folder with one sub-folder per class; classes are the sub-folder names, sorted.

:func:`scan_dataset` lists them (:class:`Dataset`); every later step (:mod:`occ.data.datasets`: the held-out split,
the feature cache) shares one code path. A skipped or odd file is a :class:`DataWarning`, and the run goes on.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from occ.data.classes import DCASE_ALIASES, DCASE_CLASS_MAP, DCASE_CLASSES
from occ.errors import ConfigError, DataError

__all__ = ["LAYOUTS", "AUDIO_EXTENSIONS", "DataWarning", "Dataset", "scan_dataset", "warn_data", "listed"]

LAYOUTS = ("dcase", "folders")

AUDIO_EXTENSIONS = frozenset(
    [".wav", ".wave", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".aifc"]
    + ([".mp3"] if "MP3" in sf.available_formats() else [])
)


class DataWarning(UserWarning):
    """A file or folder of a dataset was skipped or looks odd (silent clip); the run goes on."""


def warn_data(msg: str) -> None:
    """A :class:`DataWarning` pointing at the caller of the function that calls this."""
    warnings.warn(msg, DataWarning, stacklevel=3)


def listed(paths: list[Path], *, limit: int = 10) -> str:
    """The first ``limit`` of ``paths``, comma-separated, and how many more there are."""
    shown = ", ".join(str(p) for p in paths[:limit])
    return shown + (f" (+{len(paths) - limit} more)" if len(paths) > limit else "")


@dataclass(frozen=True)
class Dataset:
    """The audio files of a dataset and their classes.

    Attributes
    ----------
    files : list[Path]
        Audio files, sorted by class then file name.
    labels : np.ndarray [shape=(n_files,), int64]
        Class index of each file (index into ``class_names``).
    class_names : list[str]
        Class names; for the ``"dcase"`` layout always :data:`occ.data.classes.DCASE_CLASSES`.
    root : Path
        The dataset folder (``files`` lie below it).
    layout : str
        ``"dcase"`` or ``"folders"``.
    """

    files: list[Path]
    labels: np.ndarray
    class_names: list[str]
    root: Path = field(default=Path("."))
    layout: str = "dcase"

    def __len__(self) -> int:
        return len(self.files)

    def relative_files(self) -> list[str]:
        """File paths relative to ``root``, with forward slashes."""
        return [p.relative_to(self.root).as_posix() for p in self.files]


def _missing_path_error(path: Path) -> DataError:
    return DataError(
        f"dataset folder {path} does not exist: set data.path in params.yaml to the "
        f"DCASEFoleySoundSynthesisDevSet folder (layout 'dcase') or to a folder with one sub-folder per "
        f"class (layout 'folders'), or run the data stage (dvc repro data) to synthesise the embedded dataset"
    )


def scan_dataset(path: str | os.PathLike, *, layout: str = "dcase") -> Dataset:
    """List the audio files of a dataset folder and their labels (no audio is read).

    Parameters
    ----------
    path : path-like
        Dataset root: ``DCASEFoleySoundSynthesisDevSet`` (layout ``"dcase"``) or any folder with one
        sub-folder per class (layout ``"folders"``).
    layout : {"dcase", "folders"}
        ``"dcase"``: the 7 DCASE class folders, labels from the official class map; ``Sneeze`` is
        read as ``Sneeze_Cough``. ``"folders"``: one class per sub-folder, classes sorted by name.

    Returns
    -------
    Dataset

    Raises
    ------
    ConfigError
        Unknown ``layout``.
    DataError
        The folder is missing or holds no class folders; (``"dcase"``) a folder is not a DCASE class,
        a class is missing, or a class folder holds no audio file; (any layout) no audio at all.

    Warns
    -----
    DataWarning
        One line naming the files that were skipped because they are not audio (by extension) or are
        nested folders, and (``"folders"``) each empty class folder, which is left out.
        Hidden files and folders (name starting with ".") are ignored silently.
    """
    # the folder and its class folders
    if layout not in LAYOUTS:
        raise ConfigError(f"scan_dataset: layout must be one of {LAYOUTS}, got {layout!r} (data.layout)")
    root = Path(path)
    if not root.exists():
        raise _missing_path_error(root)
    if not root.is_dir():
        raise DataError(f"dataset path {root} is a file, not a folder; set data.path to the dataset folder")
    entries = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    class_dirs = [p for p in entries if p.is_dir()]
    skipped = [p for p in entries if not p.is_dir()]
    if not class_dirs:
        raise DataError(f"dataset folder {root} holds no class sub-folders; expected <root>/<class>/*.wav")

    # each class folder's label: the DCASE class map, or the sorted folder names
    if layout == "dcase":
        unknown = [d.name for d in class_dirs if DCASE_ALIASES.get(d.name, d.name) not in DCASE_CLASS_MAP]
        if unknown:
            raise DataError(f"dataset folder {root}: {', '.join(repr(u) for u in unknown)} is not a DCASE 2023 "
                            f"Task 7 class folder; expected {DCASE_CLASSES} (use layout 'folders' for other "
                            f"collections)")
        class_names = list(DCASE_CLASSES)
        dir_label = {d: DCASE_CLASS_MAP[DCASE_ALIASES.get(d.name, d.name)] for d in class_dirs}
        missing = [c for i, c in enumerate(class_names) if i not in dir_label.values()]
        if missing:
            raise DataError(f"dataset folder {root} lacks the class folder(s) {missing}; the DCASE layout needs "
                            f"all of {DCASE_CLASSES}")
    else:
        class_names = [d.name for d in class_dirs]
        dir_label = {d: i for i, d in enumerate(class_dirs)}

    # the audio files of each class (hidden ones ignored, others skipped with one warning)
    per_label: dict[int, list[Path]] = {i: [] for i in range(len(class_names))}
    for d in class_dirs:
        for p in sorted(d.iterdir()):
            if p.name.startswith("."):
                continue
            if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS:
                per_label[dir_label[d]].append(p)
            else:
                skipped.append(p)
    if skipped:
        warn_data(f"skipped {len(skipped)} non-audio file(s) or folder(s) in {root}: {listed(skipped)}")

    # empty classes: an error in the DCASE layout, left out in a folder collection
    empty = [class_names[i] for i, fs in per_label.items() if not fs]
    if empty and layout == "dcase":
        raise DataError(f"dataset folder {root}: class folder(s) {empty} hold no audio files "
                        f"({', '.join(sorted(AUDIO_EXTENSIONS))})")
    if empty:
        warn_data(f"dataset folder {root}: empty class folder(s) {empty} left out")
        keep = [i for i in range(len(class_names)) if per_label[i]]
        per_label = {j: per_label[i] for j, i in enumerate(keep)}
        class_names = [class_names[i] for i in keep]
    if not class_names:
        raise DataError(f"dataset folder {root} holds no audio files")
    files, labels = [], []
    for i in range(len(class_names)):
        fs = sorted(per_label[i], key=lambda p: (p.parent.name, p.name))
        files += fs
        labels += [i] * len(fs)
    return Dataset(files=files, labels=np.asarray(labels, dtype=np.int64), class_names=class_names,
                   root=root, layout=layout)
