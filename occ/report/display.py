"""What an executed notebook shows its reader: figures inline, tables rounded, audio players, no run noise.

Every notebook calls :func:`setup_notebook` in its first code cell. A stage's call writes each figure with
:func:`save_figure` (the PNG, atomically) and its notebook shows it with :func:`show_saved`: the very same bytes
inline under a one-line caption saying what to look for; the output's metadata names the file
(``metadata["occ"]["file"]``, relative to the project root) and lists the figure's text as drawn (``metadata["occ"]["text"]``: titles, axis and tick labels,
legends, annotations), so a test can check that every declared figure is shown and what it says. Tables go through
:func:`show_table` (rounded for reading; full precision stays in the CSV / JSON files) and clips through
:func:`show_audio` (MP3 players, a quarter of the size of WAV players or less).
"""

from __future__ import annotations

import io
import os
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from IPython.display import Audio, Image, Markdown, display

from occ.atomic import atomic_open
from occ.paths import project_root

__all__ = ["FIGURE_WIDTH", "PLAYERS_PER_ROW", "SavedFigure", "setup_notebook", "save_figure", "show_saved", "show_table",
           "show_audio", "relative_name"]

FIGURE_WIDTH = 900
"""Largest inline width of a figure in CSS pixels: the text column of a notebook on a laptop screen."""

PLAYERS_PER_ROW = 3
"""Audio players side by side in one row (a player is about 300 px wide)."""

_MP3 = dict(format="MP3", subtype="MPEG_LAYER_III", bitrate_mode="VARIABLE", compression_level=0.0)
_original_showwarning = None


def setup_notebook() -> None:
    """Make an executed notebook read cleanly: no progress bars, no known library noise, readable figures.

    - Progress bars: every loop of the package shows its bar only when stderr is a terminal (a notebook
      kernel's is not), so none reaches the saved notebook; a run's progress is not the reader's business.
    - Known noise: tqdm's "IProgress not found" warning (tqdm.auto in a kernel without ipywidgets; it also
      prints the install path of the library) is ignored. Every other library warning still shows.
    - The package's own warnings (e.g. a skipped audio file) print as one line, ``DataWarning: <message>``,
      without the source location and with paths relative to the project root.
    - matplotlib: figures drawn with pyplot defaults are 9 x 5 inches at 100 dpi.

    Calling it twice is harmless.
    """
    global _original_showwarning
    from tqdm.std import TqdmWarning

    warnings.filterwarnings("ignore", message="IProgress not found", category=TqdmWarning)
    if _original_showwarning is None:
        _original_showwarning = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if category.__module__.split(".")[0] != "occ":
                return _original_showwarning(message, category, filename, lineno, file, line)
            stream = file if file is not None else sys.stderr
            stream.write(f"{category.__name__}: {_strip_root(str(message))}\n")

        warnings.showwarning = show

    import matplotlib

    matplotlib.rcParams.update({"figure.figsize": (9.0, 5.0), "figure.dpi": 100})


class SavedFigure(NamedTuple):
    """A figure written as PNG by :func:`save_figure`, to be shown by :func:`show_saved`: its file, the PNG's bytes,
    its text as drawn and the one-line caption saying what to look for."""

    path: Path
    png: bytes
    text: list
    caption: str


def save_figure(fig, path: str | os.PathLike, *, caption: str, dpi: int = 100, palette: bool = True) -> SavedFigure:
    """Save a figure as PNG (atomically) for :func:`show_saved` to show: what a stage's call does with each figure.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure; a pyplot-managed one is closed afterwards (it is not shown a second time).
    path : path-like
        The PNG file to write.
    caption : str
        One line of markdown saying what to look for (e.g. "without OCC each class is one tight cluster").
    dpi : int
        Resolution of the PNG. A figure wider than :data:`FIGURE_WIDTH` pixels is scaled down inline, so its
        text reads at the same size whatever the dpi (about ``pt * FIGURE_WIDTH / (72 * width_in)`` pixels):
        figures meant to be read inline are at most about 10 inches wide, and a lower dpi only makes the file
        smaller.
    palette : bool
        Store the PNG with a 256-colour palette (no dithering): log-mel grids shrink about 4.5-fold, with no
        difference visible at screen size. ``False`` keeps 8-bit RGBA.
    """
    from matplotlib.text import Text

    if not caption or "\n" in caption.strip():
        raise ValueError("save_figure: the caption is one line saying what to look for")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    png = _palette_png(buffer.getvalue()) if palette else buffer.getvalue()
    text = [t.get_text() for t in fig.findobj(Text) if t.get_visible() and t.get_text()]
    path = Path(path)
    with atomic_open(path, "wb") as handle:
        handle.write(png)
    _close(fig)
    return SavedFigure(path, png, text, caption.strip())


def show_saved(figure: SavedFigure, *, width: int | None = None) -> None:
    """Show a figure :func:`save_figure` wrote: the very same bytes inline, under its caption.

    The caption line reads ``<caption> (`<file>`)``, the file relative to the project root.

    Parameters
    ----------
    figure : SavedFigure
    width : int, optional
        Inline width in CSS pixels; default the PNG's own width, at most :data:`FIGURE_WIDTH`.
    """
    natural = int.from_bytes(figure.png[16:20], "big")  # IHDR width
    name = relative_name(figure.path)
    display(Markdown(f"{figure.caption} (`{name}`)"))
    display(Image(data=figure.png, format="png", width=int(width or min(natural, FIGURE_WIDTH))),
            metadata={"occ": {"file": name, "text": figure.text}})


def show_table(table: pd.DataFrame | pd.Series | Mapping, *, digits: int | Mapping[str, int] = 3,
               caption: str | None = None, name: str = "value") -> None:
    """Show a table with its numbers rounded for reading (the files keep full precision).

    Parameters
    ----------
    table : DataFrame, Series or mapping
        A Series or a mapping (e.g. a metrics dict; integers stay integers) is shown as a one-column table
        headed by the Series' name, or ``name``. A DataFrame with a default (0, 1, ...) index shows its
        first text column as the index instead.
    digits : int or mapping
        Decimals kept: one number for every column, or a mapping column -> decimals (columns not named
        keep 3).
    caption : str, optional
        One line of markdown shown above the table.
    name : str
        Column header of a mapping, or of a Series without a name.
    """
    if isinstance(table, Mapping):
        table = pd.Series(dict(table), dtype=object, name=name)
    if isinstance(table, pd.Series):
        frame = table.to_frame(name=table.name if table.name is not None else name)
    else:
        frame = table.copy()
        first = frame.columns[0] if frame.shape[1] > 1 else None
        if isinstance(frame.index, pd.RangeIndex) and first is not None and not pd.api.types.is_numeric_dtype(
                frame[first]):
            frame = frame.set_index(first)
    for column in frame.columns:
        decimals = digits.get(column, 3) if isinstance(digits, Mapping) else digits
        values = frame[column]
        if pd.api.types.is_float_dtype(values):
            frame[column] = values.round(decimals)
        elif values.dtype == object:  # built as objects: integers beside floats stay integers
            frame[column] = pd.Series([round(float(v), decimals) if isinstance(v, (float, np.floating)) else v
                                       for v in values], index=frame.index, dtype=object)
    if caption:
        display(Markdown(caption.strip()))
    display(frame)


def show_audio(clips, rate: int, *, caption: str | None = None) -> None:
    """Show audio players, embedded as MP3 (VBR, best quality) rather than WAV: a quarter of the size or less.

    Each clip is peak-normalised as IPython's own player does; the WAV files the pipeline writes are untouched.

    Parameters
    ----------
    clips : array-like, sequence of array-like, or mapping label -> array-like
        One mono clip (1-D) gives one player; several clips (a sequence, a 2-D array, or a mapping whose
        keys label the players) are shown side by side, :data:`PLAYERS_PER_ROW` to a row.
    rate : int
        Sample rate in Hz.
    caption : str, optional
        One line of markdown above the player(s) (e.g. the class name).
    """
    if isinstance(clips, Mapping):
        labelled = [(str(k), v) for k, v in clips.items()]
    elif np.ndim(clips[0]) == 0:
        labelled = [("", clips)]
    else:
        labelled = [("", c) for c in clips]
    if caption:
        display(Markdown(caption.strip()))
    if len(labelled) == 1 and not labelled[0][0]:
        player = Audio(data=_mp3(labelled[0][1], rate))
        player.mimetype = "audio/mpeg"
        display(player)
        return
    display(_PlayerRow([(label, _mp3(clip, rate)) for label, clip in labelled]))


class _PlayerRow:
    """MP3 players in a table, PLAYERS_PER_ROW to a row, each under its label (plain text names the labels)."""

    def __init__(self, players: list[tuple[str, bytes]]):
        self.players = players

    def _repr_html_(self) -> str:
        import base64
        import html

        cells = [
            f'<td style="text-align:left;padding:0 12px 4px 0">{html.escape(label) + "<br>" if label else ""}'
            f'<audio controls="controls"><source src="data:audio/mpeg;base64,{base64.b64encode(data).decode()}" '
            f'type="audio/mpeg" /></audio></td>'
            for label, data in self.players]
        rows = ["<tr>" + "".join(cells[i:i + PLAYERS_PER_ROW]) + "</tr>" for i in range(0, len(cells), PLAYERS_PER_ROW)]
        return f"<table>{''.join(rows)}</table>"

    def __repr__(self) -> str:
        return "audio: " + ", ".join(label or "clip" for label, _ in self.players)


def _mp3(clip, rate: int) -> bytes:
    import soundfile as sf

    x = np.asarray(clip, dtype=np.float32).reshape(-1)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > 0:
        x = 0.9 * x / peak
    buffer = io.BytesIO()
    sf.write(buffer, x, int(rate), **_MP3)
    return buffer.getvalue()


def _palette_png(png: bytes) -> bytes:
    from PIL import Image as PILImage

    with PILImage.open(io.BytesIO(png)) as image:
        rgb = image.convert("RGB")
    indexed = rgb.quantize(256, method=PILImage.Quantize.FASTOCTREE, dither=PILImage.Dither.NONE)
    out = io.BytesIO()
    indexed.save(out, format="PNG", optimize=True)
    return out.getvalue()


def relative_name(path: str | os.PathLike) -> str:
    """``path`` relative to the project root (POSIX), or its file name when it lies outside the project."""
    path = Path(path).resolve()
    try:
        return path.relative_to(project_root(path.parent)).as_posix()
    except (FileNotFoundError, ValueError):
        return path.name


def _strip_root(text: str) -> str:
    try:
        root = str(project_root())
    except FileNotFoundError:
        return text
    return text.replace(root + os.sep, "").replace(root, ".")


def _close(fig) -> None:
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close(fig)
