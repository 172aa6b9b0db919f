"""Generated audio in the DCASE 2023 Task 7 submission layout, and the DCASE format checks (docs/reference.md, section 2).

Layout: one folder per class, named in snake_case (``dog_bark, footstep, gunshot, keyboard,
moving_motor_vehicle, rain, sneeze_cough``), each holding exactly ``n`` (100) mono WAV files of exactly
88,200 samples at 22,050 Hz, 16-bit PCM, named ``00.wav``, ``01.wav``, ... (zero-padded to at least two
digits). Each class folder is written to a temporary folder beside it and renamed into place, so a
folder is either complete or absent. :func:`write_clip_list` writes the other layout, ``occ generate``'s: one flat
folder of ``<class>-seed<s>-<index>.wav`` files with ``clips.csv`` saying what made each.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import soundfile as sf
import torch

from occ.atomic import atomic_folder, make_folder, write_error
from occ.data.audio import N_SAMPLES, SR, write_pcm16
from occ.data.classes import DCASE_SNAKE, class_folder
from occ.errors import DataError, WriteError

__all__ = ["write_clip", "write_clip_list", "write_submission", "submission_problems", "check_submission"]


def _to_int16(x: np.ndarray) -> np.ndarray:
    """[-1, 1] float -> int16 as DCASE reads it back (x = int16 / 32768); clipped, NaN -> 0."""
    x = np.nan_to_num(np.asarray(x, dtype=np.float64), nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)


def write_clip(path: str | os.PathLike, clip: np.ndarray, *, sample_rate: int = SR) -> Path:
    """Write one clip as the submission writes it: mono 16-bit PCM WAV, ``round(x * 32768)`` clipped to int16.

    The file is written atomically (:func:`occ.data.audio.write_pcm16`: a full disk raises
    :class:`~occ.errors.WriteError` naming ``path`` and leaves no partial file); a set of clips is made
    whole by writing into a temporary folder that is renamed into place, as :func:`write_submission` does.

    Parameters
    ----------
    path : path-like
        Destination file.
    clip : np.ndarray [shape=(n_samples,)]
        Waveform in [-1, 1] (values outside are clipped, NaN becomes 0).
    sample_rate : int
        Sampling rate written in the header, Hz.

    Returns
    -------
    Path
    """
    return write_pcm16(path, _to_int16(clip), sample_rate)


def write_clip_list(folder: str | os.PathLike, wavs: np.ndarray, labels: torch.Tensor, seeds: torch.Tensor,
                    index: torch.Tensor, *, class_names: list[str], base_seed: int, **made_by) -> list[dict]:
    """Write clips as ``<class>-seed<base_seed>-<index>.wav`` into ``folder`` and list them in ``clips.csv``.

    The index is zero-padded to at least four digits (to the width of the largest). Write into a temporary
    folder (:func:`occ.atomic.atomic_folder`) to make the set whole.

    Parameters
    ----------
    folder : path-like
        An existing folder.
    wavs : np.ndarray [shape=(N, n_samples)]
        The clips.
    labels, seeds, index : torch.Tensor [shape=(N,)]
        Class, latent seed and clip index of each clip (:func:`occ.synthesis.generate.chosen_seeds`).
    class_names : list of str
        Class names by label.
    base_seed : int
        The base seed of the clips (in each file name).
    **made_by
        Further columns of ``clips.csv``, the same for every clip (``vocoder``, ``gl_iters``, ``threads``,
        ``device``, ``checkpoint``, ``step``).

    Returns
    -------
    list of dict
        The rows of ``clips.csv``: file, class, index, seed, latent_seed, then ``made_by``.
    """
    folder = Path(folder)
    width = max(4, len(str(int(index.max()))))
    rows = []
    for k in range(len(labels)):
        name = class_names[int(labels[k])]
        fname = f"{class_folder(name)}-seed{base_seed}-{int(index[k]):0{width}d}.wav"
        write_clip(folder / fname, wavs[k])
        rows.append({"file": fname, "class": name, "index": int(index[k]), "seed": base_seed,
                     "latent_seed": int(seeds[k]), **made_by})
    with open(folder / "clips.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows


def write_submission(
    out_dir: str | os.PathLike,
    wavs_by_class: Mapping[str, np.ndarray | torch.Tensor],
    *,
    n_per_class: int | None = 100,
    sample_rate: int = SR,
    n_samples: int = N_SAMPLES,
) -> dict[str, Path]:
    """Write generated clips in the DCASE submission layout.

    Parameters
    ----------
    out_dir : path-like
        Submission root; created if needed. Existing class folders are replaced.
    wavs_by_class : mapping of str to array [shape=(n, 88200)]
        Class name (DCASE or other, see :func:`class_folder`) -> waveforms in [-1, 1] at 22,050 Hz.
        Values outside [-1, 1] are clipped; samples are stored as ``round(x * 32768)`` in int16. NaN or
        infinite samples are refused.
    n_per_class : int or None
        Required clips per class (DCASE: 100); None accepts any number >= 1.
    sample_rate : int
        Sampling rate written in the headers, Hz.
    n_samples : int
        Required samples per clip.

    Returns
    -------
    dict of str to Path
        Class name -> its folder.

    Raises
    ------
    DataError
        A class has the wrong number of clips or a wrong clip length, or two classes map to one folder.
    WriteError
        The disk is full or the folder is not writable; the message names the clip's file in the submission,
        and the class folder being written is left as it was (absent, or the previous one).
    """
    out = Path(out_dir)
    folders = {name: class_folder(name) for name in wavs_by_class}
    if len(set(folders.values())) != len(folders):
        raise DataError(f"write_submission: two classes map to the same folder in {out}: {folders}")
    arrays = {}
    for name, wavs in wavs_by_class.items():
        a = wavs.detach().cpu().numpy() if isinstance(wavs, torch.Tensor) else np.asarray(wavs)
        if a.ndim != 2 or a.shape[1] != n_samples:
            raise DataError(
                f"write_submission: class {name!r} has waveforms of shape {a.shape}; expected (n, {n_samples}) "
                f"(vocode with length={n_samples})"
            )
        if n_per_class is not None and a.shape[0] != n_per_class:
            raise DataError(
                f"write_submission: class {name!r} has {a.shape[0]} clips; the submission needs {n_per_class} "
                "(eval.clips_per_class)"
            )
        if a.shape[0] == 0:
            raise DataError(f"write_submission: class {name!r} has no clips")
        bad = np.flatnonzero(~np.isfinite(a).all(axis=1))
        if bad.size:
            raise DataError(
                f"write_submission: class {name!r} has {bad.size} clip(s) with NaN or infinite samples (first: clip "
                f"{int(bad[0])}); they would be written as silence. The generator or vocoder diverged: check the "
                "checkpoint and the vocoder's input; nothing was written."
            )
        arrays[name] = a
    make_folder(out)
    written = {}
    for name, a in arrays.items():
        target = out / folders[name]
        width = max(2, len(str(a.shape[0] - 1)))
        with atomic_folder(target) as tmp:  # also removes what a killed write of this class folder left
            for i, clip in enumerate(a):
                fname = f"{i:0{width}d}.wav"
                try:
                    write_clip(tmp / fname, clip, sample_rate=sample_rate)
                except WriteError as exc:  # name the submission's file, not the temporary folder's
                    raise write_error(target / fname, exc.__cause__ or exc) from exc
        written[name] = target
    return written


def submission_problems(
    directory: str | os.PathLike,
    *,
    n_per_class: int = 100,
    classes: Iterable[str] | None = None,
    sample_rate: int = SR,
    n_samples: int = N_SAMPLES,
) -> tuple[list[str], dict[str, int]]:
    """Every DCASE 2023 Task 7 format problem of a submission folder, not only the first.

    Parameters
    ----------
    directory, n_per_class, classes, sample_rate, n_samples
        As in :func:`check_submission`.

    Returns
    -------
    problems : list of str
        One message per problem, each naming the folder or file, in the order :func:`check_submission`
        meets them (a missing folder; then per folder its file count and each file's format). Empty
        when the folder passes.
    counts : dict of str to int
        Folder name -> number of WAV files found (missing folders are absent).
    """
    root = Path(directory)
    if not root.is_dir():
        return [f"submission folder {root} does not exist; write it with occ.synthesis.submission.write_submission"], {}
    names = [class_folder(c) for c in classes] if classes is not None else list(DCASE_SNAKE.values())
    problems: list[str] = []
    counts = {}
    for folder in names:
        d = root / folder
        if not d.is_dir():
            problems.append(f"submission class folder {d} is missing; every class needs its own snake_case folder")
            continue
        files = sorted(p for p in d.iterdir() if p.suffix.lower() == ".wav" and not p.name.startswith("."))
        counts[folder] = len(files)
        if len(files) != n_per_class:
            problems.append(f"submission class folder {d} holds {len(files)} WAV files; DCASE requires exactly {n_per_class}")
        for f in files:
            try:
                info = sf.info(str(f))
            except Exception as exc:
                problems.append(f"submission file {f} cannot be read as audio ({exc}); regenerate it")
                continue
            wrong = []
            if info.samplerate != sample_rate:
                wrong.append(f"sampling rate {info.samplerate} Hz (required {sample_rate} Hz)")
            if info.channels != 1:
                wrong.append(f"{info.channels} channels (required mono)")
            if info.frames != n_samples:
                wrong.append(f"{info.frames} samples (required exactly {n_samples})")
            if info.subtype != "PCM_16":
                wrong.append(f"sample format {info.subtype} (required 16-bit PCM, PCM_16)")
            if info.format != "WAV":
                wrong.append(f"container {info.format} (required WAV)")
            if wrong:
                problems.append(f"submission file {f} does not meet the DCASE format: {'; '.join(wrong)}")
    return problems, counts


def check_submission(
    directory: str | os.PathLike,
    *,
    n_per_class: int = 100,
    classes: Iterable[str] | None = None,
    sample_rate: int = SR,
    n_samples: int = N_SAMPLES,
) -> dict[str, int]:
    """Run the DCASE 2023 Task 7 format checks on a submission folder.

    Parameters
    ----------
    directory : path-like
        Submission root.
    n_per_class : int
        Required WAV files per class folder (DCASE: 100).
    classes : iterable of str, optional
        Class names or folder names to check (default: the seven DCASE folders).
    sample_rate : int
        Required sampling rate, Hz.
    n_samples : int
        Required samples per file.

    Returns
    -------
    dict of str to int
        Folder name -> number of files checked.

    Raises
    ------
    DataError
        The first problem found, naming the folder or file: missing folder, wrong number of WAV files,
        unreadable file, wrong sampling rate, channel count, length or sample format (must be PCM_16).
        :func:`submission_problems` lists all of them.
    """
    problems, counts = submission_problems(directory, n_per_class=n_per_class, classes=classes,
                                           sample_rate=sample_rate, n_samples=n_samples)
    if problems:
        raise DataError(problems[0])
    return counts
