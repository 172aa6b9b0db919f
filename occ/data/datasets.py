"""The held-out split, the log-mel feature cache, clip selection, and the GAN's log-mel normalisation.

Both layouts of a dataset share one code path after :func:`occ.data.scan.scan_dataset`.
The feature cache holds the log-mels (:func:`occ.data.audio.log_mel`, 80 x 344 per 4-s clip) of a whole
dataset, the labels, the file list, and a deterministic per-class split into training clips and a
held-out reference set for FAD (100 per class by default, the size of the DCASE evaluation set).
It is keyed by a hash of the front-end settings and the split settings, and by a fingerprint of the
file list, so that stale caches are rebuilt rather than silently reused.

The networks read normalised log-mels: :func:`normalize_mel` maps the natural-log mel to [-1, 1],
:func:`denormalize_mel` maps G's output back for the vocoders, and :func:`normalized_log_mel` turns audio
into the networks' input (the encoder's embeddings and accuracy on clips).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm  # the text bar: no notebook-widget import, no IProgress warning in a kernel

from occ.atomic import atomic_open, remove_stale_temporaries
from occ.data.audio import LOG_FLOOR, N_FRAMES, N_MELS, frontend_settings, load_clip, log_mel
from occ.data.scan import Dataset, scan_dataset, warn_data
from occ.errors import ConfigError, DataError

SILENCE_PEAK = 1.0 / 32768.0  # a clip whose peak |x| is at most one 16-bit step is reported as silent

LOG_MEL_MIN = math.log(LOG_FLOOR)  # -11.5129: the floor of every log-mel (digital silence)
LOG_MEL_MAX = 2.5  # top of the normalised range; real and synthetic 4-s clips stay below (values above clamp)

SPLIT_RULE = "per-class-sorted-permutation-v1"
CACHE_FORMAT = 2  # 2: with a checksum

__all__ = [
    "LOG_MEL_MIN", "LOG_MEL_MAX", "split_heldout", "FeatureCache", "build_feature_cache",
    "load_feature_cache", "feature_cache", "settings_hash", "normalize_mel", "denormalize_mel", "normalized_log_mel",
    "spread_over_classes",
]


# ----------------------------------------------------------------------------- split
def split_heldout(files: list[str], labels: np.ndarray, *, n_classes: int, heldout_per_class: int = 100,
                  seed: int = 0, class_names: list[str] | None = None) -> np.ndarray:
    """Deterministic per-class split into training clips and a held-out FAD reference set.

    Rule: the clips of each class are sorted by relative path, permuted with a generator seeded by
    ``(seed, crc32(class index))``, and the first ``h`` of the permutation are held out, where
    ``h = heldout_per_class`` if the class has at least ``2 * heldout_per_class`` clips, else
    ``h = floor(n / 2)`` (with a warning). The result depends neither on the file order on disk nor on
    the other classes.

    Parameters
    ----------
    files : list[str]
        Relative file paths (used for the sort only).
    labels : np.ndarray [shape=(n,), int]
        Class index per file.
    n_classes : int
        Number of classes.
    heldout_per_class : int
        Clips held out per class (0: no held-out set).
    seed : int
        Split seed.
    class_names : list[str], optional
        Names used in the warning.

    Returns
    -------
    np.ndarray [shape=(n,), bool]
        True for held-out clips.
    """
    if heldout_per_class < 0:
        raise ConfigError(f"heldout_per_class must be >= 0, got {heldout_per_class}")
    labels = np.asarray(labels)
    mask = np.zeros(labels.shape[0], dtype=bool)
    for c in range(n_classes):
        idx = np.flatnonzero(labels == c)
        idx = idx[np.argsort(np.asarray([files[i] for i in idx], dtype=object), kind="stable")]
        n = idx.shape[0]
        h = heldout_per_class
        if n < 2 * heldout_per_class:
            h = n // 2
            name = class_names[c] if class_names else str(c)
            warn_data(f"class {name} has {n} clips (< 2 x heldout_per_class = {2 * heldout_per_class}): "
                  f"holding out {h} for the FAD reference and training on {n - h}")
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(str(c).encode())]))
        mask[idx[rng.permutation(n)[:h]]] = True
    return mask


# ----------------------------------------------------------------------------- hashing
def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def settings_hash(*, heldout_per_class: int = 100, split_seed: int = 0) -> str:
    """Hash of the front-end settings (:func:`occ.data.audio.frontend_settings`) and of the split settings."""
    return _hash({"frontend": frontend_settings(), "split": _split_settings(heldout_per_class, split_seed)})


def _split_settings(heldout_per_class: int, split_seed: int) -> dict:
    return {"heldout_per_class": int(heldout_per_class), "split_seed": int(split_seed), "rule": SPLIT_RULE}


def _fingerprint(ds: Dataset) -> str:
    """Hash of the layout, classes, relative file list with sizes, and the synthesiser marker if any."""
    marker = ds.root / ".occ_synth.json"
    items = [(rel, int(lab), p.stat().st_size) for rel, lab, p in zip(ds.relative_files(), ds.labels, ds.files)]
    return _hash({"layout": ds.layout, "classes": ds.class_names, "files": items,
                  "synth": marker.read_text() if marker.is_file() else None})


# ----------------------------------------------------------------------------- feature cache
@dataclass
class FeatureCache:
    """Log-mels of a whole dataset with labels, file list and held-out split.

    Attributes
    ----------
    mels : torch.Tensor [shape=(n, 80, 344), float32]
        Natural-log mel energies (:func:`occ.data.audio.log_mel`).
    labels : torch.Tensor [shape=(n,), int64]
    files : list[str]
        Paths relative to the dataset root.
    class_names : list[str]
    heldout_mask : torch.Tensor [shape=(n,), bool]
        True for the held-out FAD reference clips.
    root : str
        Dataset root the cache was built from.
    layout : str
    settings_hash : str
        :func:`settings_hash` of the front end and split the cache was built with.
    fingerprint : str
        Hash of the dataset's file list (rebuild trigger).
    skipped : list[tuple[str, str]]
        Files left out (relative path, reason).
    silent : list[str]
        Files kept although silent.
    """

    mels: torch.Tensor
    labels: torch.Tensor
    files: list[str]
    class_names: list[str]
    heldout_mask: torch.Tensor
    root: str = ""
    layout: str = "dcase"
    settings_hash: str = ""
    fingerprint: str = ""
    skipped: list = field(default_factory=list)
    silent: list = field(default_factory=list)

    def __len__(self) -> int:
        return self.mels.shape[0]

    def train_indices(self) -> np.ndarray:
        """Indices (int64) of the training clips."""
        return np.flatnonzero(~self.heldout_mask.numpy())

    def heldout_indices(self) -> np.ndarray:
        """Indices (int64) of the held-out clips."""
        return np.flatnonzero(self.heldout_mask.numpy())

    def subset(self, idx: np.ndarray) -> "FeatureCache":
        """A new cache holding the clips ``idx`` (tensors are copied)."""
        idx_t = torch.as_tensor(np.asarray(idx, dtype=np.int64))
        return FeatureCache(
            mels=self.mels[idx_t], labels=self.labels[idx_t], files=[self.files[i] for i in idx_t.tolist()],
            class_names=list(self.class_names), heldout_mask=self.heldout_mask[idx_t], root=self.root,
            layout=self.layout, settings_hash=self.settings_hash, fingerprint=self.fingerprint,
            skipped=list(self.skipped), silent=list(self.silent))

    def train(self) -> "FeatureCache":
        """The training clips."""
        return self.subset(self.train_indices())

    def heldout(self) -> "FeatureCache":
        """The held-out FAD reference clips."""
        return self.subset(self.heldout_indices())

    def first_per_class(self, n: int) -> "FeatureCache":
        """The first ``n`` clips of each class, class by class (a fixed, seed-free choice)."""
        labels = self.labels.numpy()
        return self.subset(np.concatenate([np.flatnonzero(labels == c)[:n] for c in range(len(self.class_names))]))

    def class_counts(self) -> dict[str, int]:
        """Clips per class name."""
        counts = np.bincount(self.labels.numpy(), minlength=len(self.class_names))
        return {c: int(n) for c, n in zip(self.class_names, counts)}

    def to_dict(self) -> dict:
        """The dictionary written by :func:`build_feature_cache` (``torch.save``)."""
        return {
            "format": CACHE_FORMAT, "mels": self.mels, "labels": self.labels, "files": list(self.files),
            "class_names": list(self.class_names), "heldout": self.heldout_mask, "root": self.root,
            "layout": self.layout, "settings_hash": self.settings_hash, "fingerprint": self.fingerprint,
            "frontend": frontend_settings(), "skipped": [list(s) for s in self.skipped],
            "silent": list(self.silent), "checksum": self.checksum(),
        }

    def checksum(self) -> str:
        """SHA-256 of the mels, labels, held-out mask, file list and class names (stored in the cache file)."""
        h = hashlib.sha256()
        for t in (self.mels, self.labels, self.heldout_mask):
            a = np.ascontiguousarray(t.detach().cpu().numpy())
            h.update(f"{a.dtype}{a.shape}".encode())
            h.update(a.data)
        h.update(json.dumps([list(self.files), list(self.class_names)]).encode())
        return h.hexdigest()

    def check(self, where: str = "feature cache") -> None:
        """Shapes, dtypes and ranges of the parts, consistent with each other.

        Raises
        ------
        DataError
            The first inconsistency, naming ``where``.
        """
        n = self.mels.shape[0] if self.mels.ndim else -1
        problems = []
        if tuple(self.mels.shape[1:]) != (N_MELS, N_FRAMES) or self.mels.ndim != 3:
            problems.append(f"mels of shape {tuple(self.mels.shape)}, expected (n, {N_MELS}, {N_FRAMES})")
        if self.mels.dtype != torch.float32:
            problems.append(f"mels of dtype {self.mels.dtype}, expected float32")
        if tuple(self.labels.shape) != (n,) or self.labels.dtype != torch.int64:
            problems.append(f"labels of shape {tuple(self.labels.shape)} ({self.labels.dtype}) for {n} clips")
        elif n and not (0 <= int(self.labels.min()) and int(self.labels.max()) < len(self.class_names)):
            problems.append(f"labels outside [0, {len(self.class_names)}) for {len(self.class_names)} classes")
        if tuple(self.heldout_mask.shape) != (n,) or self.heldout_mask.dtype != torch.bool:
            problems.append(f"a held-out mask of shape {tuple(self.heldout_mask.shape)} for {n} clips")
        if len(self.files) != n:
            problems.append(f"{len(self.files)} file names for {n} clips")
        if not self.class_names:
            problems.append("no class names")
        if problems:
            raise DataError(f"{where} holds {'; '.join(problems)}; delete it and rebuild it (dvc repro data)")


def _load_checked(path: Path) -> tuple[np.ndarray | None, str | None]:
    """(clip, None) for a usable file, (None, reason) for one to skip."""
    try:
        return load_clip(path), None
    except DataError as exc:
        return None, str(exc)


def _as_dataset(dataset_or_path: Dataset | str | os.PathLike, layout: str) -> Dataset:
    if isinstance(dataset_or_path, Dataset):
        return dataset_or_path
    return scan_dataset(dataset_or_path, layout=layout)


def build_feature_cache(dataset_or_path: Dataset | str | os.PathLike, cache_path: str | os.PathLike, *,
                        layout: str = "dcase", heldout_per_class: int = 100, split_seed: int = 0,
                        batch_size: int = 32, n_jobs: int = 2, progress: bool | None = None) -> FeatureCache:
    """Compute the log-mels of a whole dataset once and store them with labels, file list and split.

    Clips are read by ``n_jobs`` threads (:func:`occ.data.audio.load_clip`: mono, 22,050 Hz, 88,200
    samples) and turned into log-mels in batches of ``batch_size``. Unusable files (unreadable,
    empty, zero-length, NaN/inf) are skipped with a one-line warning each; silent clips are kept
    and reported. The cache is written atomically (temporary file, then rename).

    Parameters
    ----------
    dataset_or_path : Dataset or path-like
        A :class:`Dataset` or a dataset folder (scanned with ``layout``).
    cache_path : path-like
        Output file (``torch.save`` of :meth:`FeatureCache.to_dict`); parent folders are created.
    layout : {"dcase", "folders"}
        Layout used when a path is given.
    heldout_per_class : int
        Held-out clips per class (see :func:`split_heldout`).
    split_seed : int
        Split seed.
    batch_size : int
        Clips per log-mel batch.
    n_jobs : int
        Loader threads.
    progress : bool, optional
        Show a progress bar; default: only when stderr is a terminal (never in a saved notebook).

    Returns
    -------
    FeatureCache
    """
    if batch_size < 1 or n_jobs < 1:
        raise ConfigError(f"build_feature_cache: batch_size and n_jobs must be >= 1, got {batch_size}, {n_jobs}")
    ds = _as_dataset(dataset_or_path, layout)
    rel = ds.relative_files()
    n = len(ds)
    mels = torch.empty((n, N_MELS, N_FRAMES), dtype=torch.float32)
    ok = np.zeros(n, dtype=bool)
    skipped: list[tuple[str, str]] = []
    silent: list[str] = []
    bar = tqdm(total=n, desc="log-mel features", unit="clip",
               disable=not (sys.stderr.isatty() if progress is None else progress))
    with ThreadPoolExecutor(max_workers=int(n_jobs)) as pool:
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            results = list(pool.map(_load_checked, ds.files[start:stop]))
            clips, where = [], []
            for i, (x, reason) in zip(range(start, stop), results):
                if x is None:
                    skipped.append((rel[i], reason))
                    warn_data(f"skipped {ds.files[i]}: {reason}")
                    continue
                if float(np.max(np.abs(x))) <= SILENCE_PEAK:
                    silent.append(rel[i])
                    warn_data(f"kept silent clip {ds.files[i]} (peak <= 1/32768)")
                clips.append(x)
                where.append(i)
            if clips:
                mels[where] = log_mel(np.stack(clips))
                ok[where] = True
            bar.update(stop - start)
    bar.close()
    keep = np.flatnonzero(ok)
    labels = ds.labels[keep]
    lost = [c for i, c in enumerate(ds.class_names) if not np.any(labels == i)]
    if lost:
        raise DataError(f"dataset {ds.root}: every file of class(es) {lost} was unusable (see the warnings); "
                        f"fix or remove those files")
    files = [rel[i] for i in keep]
    mask = split_heldout(files, labels, n_classes=len(ds.class_names), heldout_per_class=heldout_per_class,
                         seed=split_seed, class_names=ds.class_names)
    cache = FeatureCache(
        mels=mels[torch.as_tensor(keep)] if keep.shape[0] < n else mels, labels=torch.as_tensor(labels),
        files=files, class_names=list(ds.class_names), heldout_mask=torch.as_tensor(mask), root=str(ds.root),
        layout=ds.layout, settings_hash=settings_hash(heldout_per_class=heldout_per_class, split_seed=split_seed),
        fingerprint=_fingerprint(ds), skipped=skipped, silent=silent)
    saved = cache.to_dict()
    saved["root"] = _stored_root(ds.root, Path(cache_path))
    with atomic_open(cache_path) as fh:
        torch.save(saved, fh)
    return cache


_REQUIRED = ("mels", "labels", "files", "class_names", "heldout", "settings_hash", "fingerprint", "checksum")


def _stored_root(root: Path, cache_path: Path) -> str:
    """The dataset root as the cache file stores it: relative to the cache's folder when it lies inside it
    (``foley`` for ``data/foley`` and ``data/features.pt``), so the file does not depend on where the project sits;
    else absolute."""
    root, folder = Path(root).resolve(), cache_path.resolve().parent
    return root.relative_to(folder).as_posix() if root.is_relative_to(folder) else str(root)


def _loaded_root(stored: str, cache_path: Path) -> str:
    """Inverse of :func:`_stored_root`: an absolute path (a relative one is resolved against the cache's folder)."""
    if not stored:
        return stored
    root = Path(stored)
    return str(root if root.is_absolute() else cache_path.resolve().parent / root)


def _a_folder(path: Path) -> DataError:
    return DataError(f"feature cache {path} is a folder, not a file: pass the cache file itself (params.yaml "
                     "data.cache, e.g. data/features.pt)")


def _remove_stale_temporaries(path: Path) -> None:
    """Remove the temporaries a killed rebuild of the cache ``path`` left beside it (whichever call next touches the
    cache, a load or a rebuild, does; :func:`occ.atomic.remove_stale_temporaries`); a folder this process cannot write
    (a read-only copy of the data) keeps them."""
    try:
        remove_stale_temporaries(path)
    except OSError:
        pass


def load_feature_cache(cache_path: str | os.PathLike, *, expect_hash: str | None = None) -> FeatureCache:
    """Load a feature cache written by :func:`build_feature_cache`.

    The temporaries a rebuild killed mid-way left beside the cache are removed first (a write still running on this
    machine keeps its own).

    Parameters
    ----------
    cache_path : path-like
        The cache file.
    expect_hash : str, optional
        If given, the cache's :func:`settings_hash` must equal it.

    Returns
    -------
    FeatureCache

    Raises
    ------
    DataError
        The file is missing (or a folder), unreadable, not a feature cache, built with other settings, holds parts of
        inconsistent shapes (e.g. 3 labels for 9 clips, mels that are not 80 x 344) or fails its checksum.
    """
    path = Path(cache_path)
    if path.is_dir():
        raise _a_folder(path)
    _remove_stale_temporaries(path)
    if not path.is_file():
        raise DataError(f"feature cache {path} does not exist; build it with occ.data.datasets.feature_cache() "
                        f"(the data stage: dvc repro data)")
    try:
        d = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DataError(f"feature cache {path} cannot be read ({type(exc).__name__}: {exc}); delete it and "
                        f"rebuild it (the data stage: dvc repro data)") from None
    if not isinstance(d, dict) or any(k not in d for k in _REQUIRED):
        raise DataError(f"feature cache {path} is not an occ feature cache of this version (missing keys); delete it "
                        "and rebuild it (dvc repro data)")
    if expect_hash is not None and d["settings_hash"] != expect_hash:
        raise DataError(f"feature cache {path} was built with other front-end or split settings "
                        f"(hash {d['settings_hash']}, expected {expect_hash}); rebuild it (the data stage: dvc repro data)")
    if not all(isinstance(d[k], torch.Tensor) for k in ("mels", "labels", "heldout")):
        raise DataError(f"feature cache {path} is not an occ feature cache (mels, labels or held-out mask is not "
                        "a tensor); delete it and rebuild it (dvc repro data)")
    cache = FeatureCache(
        mels=d["mels"], labels=d["labels"], files=list(d["files"]), class_names=list(d["class_names"]),
        heldout_mask=d["heldout"], root=_loaded_root(d.get("root", ""), path), layout=d.get("layout", "dcase"),
        settings_hash=d["settings_hash"], fingerprint=d["fingerprint"],
        skipped=[tuple(s) for s in d.get("skipped", [])], silent=list(d.get("silent", [])))
    cache.check(f"feature cache {path}")
    if cache.checksum() != d["checksum"]:
        raise DataError(f"feature cache {path} fails its checksum (its contents changed after it was written: a "
                        "damaged disk or copy); delete it and rebuild it (dvc repro data)")
    return cache


def feature_cache(dataset_or_path: Dataset | str | os.PathLike, cache_path: str | os.PathLike, *,
                  layout: str = "dcase", heldout_per_class: int = 100, split_seed: int = 0, batch_size: int = 32,
                  n_jobs: int = 2, progress: bool | None = None, rebuild: bool = False) -> FeatureCache:
    """Load the feature cache if it matches the dataset and settings, else (re)build it.

    The cache is reused when its settings hash (front end + split) equals :func:`settings_hash` of the
    arguments and its file fingerprint (layout, classes, relative paths, file sizes, synthesiser marker)
    equals the dataset's. Edits that keep every path and size (e.g. a re-recorded file of the same
    length) are not detected: pass ``rebuild=True`` or delete the cache.

    Parameters are those of :func:`build_feature_cache`; ``rebuild=True`` forces a rebuild.

    Returns
    -------
    FeatureCache
    """
    path = Path(cache_path)
    if path.is_dir():  # before minutes of building
        raise _a_folder(path)
    ds = _as_dataset(dataset_or_path, layout)
    want = settings_hash(heldout_per_class=heldout_per_class, split_seed=split_seed)
    if path.is_file() and not rebuild:
        try:
            cache = load_feature_cache(path)
        except DataError as exc:
            warn_data(f"rebuilding the feature cache: {exc}")
        else:
            if cache.settings_hash == want and cache.fingerprint == _fingerprint(ds):
                return cache
    return build_feature_cache(ds, path, heldout_per_class=heldout_per_class, split_seed=split_seed,
                               batch_size=batch_size, n_jobs=n_jobs, progress=progress)


# ----------------------------------------------------------------------------- normalisation
def normalize_mel(m: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """Map log-mel values linearly from [LOG_MEL_MIN, LOG_MEL_MAX] = [ln(1e-5), 2.5] to [-1, 1].

    Values above LOG_MEL_MAX are clamped to 1 (values below LOG_MEL_MIN cannot occur after the floor
    and are clamped to -1). Same type and shape as the input.
    """
    x = (m - LOG_MEL_MIN) * (2.0 / (LOG_MEL_MAX - LOG_MEL_MIN)) - 1.0
    return x.clamp(-1.0, 1.0) if isinstance(x, torch.Tensor) else np.clip(x, -1.0, 1.0)


def denormalize_mel(x: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """Inverse of :func:`normalize_mel`: [-1, 1] -> [ln(1e-5), 2.5] (inputs clamped to [-1, 1] first)."""
    x = x.clamp(-1.0, 1.0) if isinstance(x, torch.Tensor) else np.clip(x, -1.0, 1.0)
    return (x + 1.0) * ((LOG_MEL_MAX - LOG_MEL_MIN) / 2.0) + LOG_MEL_MIN


def normalized_log_mel(wavs: torch.Tensor) -> torch.Tensor:
    """Waveforms as the networks read them (G's output space, D's and f's input): ``normalize_mel(log_mel(wavs))``.

    Parameters
    ----------
    wavs : torch.Tensor [shape=(..., n_samples)]
        Waveforms at 22,050 Hz in [-1, 1], on the device to compute on.

    Returns
    -------
    torch.Tensor [shape=(..., 80, n_frames), float32]
        Log-mels in [-1, 1], on the waveforms' device.
    """
    return normalize_mel(log_mel(wavs))


# ----------------------------------------------------------------------------- clip selection
def spread_over_classes(labels: np.ndarray | torch.Tensor, n: int) -> np.ndarray:
    """`n` indices taken round-robin over the classes (first clip of each class, then the second, ...)."""
    labels = np.asarray(labels)
    rank = np.empty(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rank[idx] = np.arange(len(idx))
    order = np.lexsort((labels, rank))
    return order[:n]
