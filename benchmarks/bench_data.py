"""Benchmark of the data path: foley synthesis speed, and the batched feature cache vs a per-file librosa loop.

Usage::

    python benchmarks/bench_data.py                      # small default (20 clips per class)
    python benchmarks/bench_data.py --clips-per-class 260 --n-jobs 2

Prints clips/s for ``occ.data.synth.synthesize_dataset``, clips/s for ``occ.data.datasets.build_feature_cache``
and for the reference path (``librosa.load`` + reflect padding + ``librosa.feature.melspectrogram``
with the same front end, one file at a time), their ratio, and the largest log-mel difference between
the two paths. Wall-clock and process CPU seconds are both shown (CPU seconds include worker processes).
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _librosa_features(files: list[Path]) -> np.ndarray:
    """Reference path: one file at a time with librosa (same front end as occ.data.audio.log_mel)."""
    import librosa

    from occ.data import audio

    out = []
    for f in files:
        y, _ = librosa.load(f, sr=audio.SR, mono=True)
        y = librosa.util.fix_length(y, size=audio.N_SAMPLES)
        y = np.pad(y, (audio.PAD, audio.PAD), mode="reflect")
        mel = librosa.feature.melspectrogram(
            y=y, sr=audio.SR, n_fft=audio.N_FFT, hop_length=audio.HOP, win_length=audio.WIN, window="hann",
            center=False, power=1.0, n_mels=audio.N_MELS, fmin=audio.FMIN, fmax=audio.FMAX)
        out.append(np.log(np.maximum(mel, audio.LOG_FLOOR)))
    return np.stack(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips-per-class", type=int, default=20, help="clips per class to synthesise")
    parser.add_argument("--n-jobs", type=int, default=2, help="worker processes / loader threads")
    parser.add_argument("--batch-size", type=int, default=32, help="log-mel batch size of the cache")
    parser.add_argument("--workdir", type=Path, default=None, help="folder for the dataset (default: a temp dir)")
    args = parser.parse_args()

    import librosa  # noqa: F401  (import cost outside the timings)
    import torch

    from occ.data.datasets import build_feature_cache
    from occ.data.scan import scan_dataset
    from occ.data.synth import synthesize_dataset

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_data_"))
    root = work / "DCASEFoleySoundSynthesisDevSet"
    if root.exists():
        import shutil

        shutil.rmtree(root)
    n_clips = 7 * args.clips_per_class
    print(f"machine: {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}")

    c0, t0 = _cpu_seconds(), time.perf_counter()
    synthesize_dataset(root, clips_per_class=args.clips_per_class, seed=0, n_jobs=args.n_jobs, progress=False)
    t_syn, c_syn = time.perf_counter() - t0, _cpu_seconds() - c0
    print(f"synthesis      : {n_clips} clips in {t_syn:6.1f} s wall ({n_clips / t_syn:6.1f} clips/s), "
          f"{c_syn:6.1f} CPU s ({1000 * c_syn / n_clips:5.1f} CPU ms/clip) with n_jobs={args.n_jobs}")

    ds = scan_dataset(root, layout="dcase")
    # warm-up of both paths (numba compilation in librosa, torch kernels) outside the timings
    _librosa_features(ds.files[:2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c0, t0 = _cpu_seconds(), time.perf_counter()
        cache = build_feature_cache(ds, work / "features.pt", heldout_per_class=min(100, args.clips_per_class // 2),
                                    batch_size=args.batch_size, n_jobs=args.n_jobs, progress=False)
        t_cache, c_cache = time.perf_counter() - t0, _cpu_seconds() - c0
    c0, t0 = _cpu_seconds(), time.perf_counter()
    ref = _librosa_features(ds.files)
    t_ref, c_ref = time.perf_counter() - t0, _cpu_seconds() - c0
    diff = float(np.abs(cache.mels.numpy() - ref).max())
    print(f"feature cache  : {n_clips} clips in {t_cache:6.1f} s wall ({n_clips / t_cache:6.1f} clips/s), "
          f"{c_cache:6.1f} CPU s (incl. writing {os.path.getsize(work / 'features.pt') / 1e6:.0f} MB)")
    print(f"librosa loop   : {n_clips} clips in {t_ref:6.1f} s wall ({n_clips / t_ref:6.1f} clips/s), "
          f"{c_ref:6.1f} CPU s")
    print(f"speed-up cache / librosa loop: {t_ref / t_cache:.2f}x wall, {c_ref / c_cache:.2f}x CPU; "
          f"max |log-mel difference| {diff:.2e}")


if __name__ == "__main__":
    main()
