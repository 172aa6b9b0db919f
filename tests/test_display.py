"""The notebook display helpers: the PNG shown is the file written, tables are rounded, players are MP3,
and the package's own warnings print as one line without machine paths."""

import io
import warnings

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import soundfile as sf  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from occ.report import display as occ_display  # noqa: E402


@pytest.fixture
def shown(monkeypatch):
    calls = []
    monkeypatch.setattr(occ_display, "display", lambda *objs, **kw: calls.extend((o, kw) for o in objs))
    return calls


def _figure(width=12.0):
    fig = Figure(figsize=(width, 3))
    ax = fig.subplots()
    ax.imshow(np.random.default_rng(0).normal(size=(80, 344)), aspect="auto", cmap="magma")
    return fig


def test_a_saved_figure_is_the_png_shown_under_its_caption(tmp_path, shown, monkeypatch):
    (tmp_path / "params.yaml").write_text("seed: 0\n")
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "results" / "figures" / "a.png"
    fig = _figure()
    fig.axes[0].set_title("what it says")
    occ_display.show_saved(occ_display.save_figure(fig, path, caption="look **here**"))
    (caption, _), (image, kw) = shown
    assert caption.data == "look **here** (`results/figures/a.png`)"
    assert path.read_bytes() == image.data and image.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert kw["metadata"]["occ"]["file"] == "results/figures/a.png"
    assert "what it says" in kw["metadata"]["occ"]["text"]  # the figure's text as drawn, for the tests of a stage
    assert image.width == occ_display.FIGURE_WIDTH  # 1200 px wide figure, shown at the laptop width
    assert not list(path.parent.glob(".*"))  # no temporary file left behind


def test_the_palette_shrinks_the_file_and_keeps_the_size(tmp_path, shown):
    occ_display.show_saved(occ_display.save_figure(_figure(4.0), tmp_path / "p.png", caption="c"))
    occ_display.show_saved(occ_display.save_figure(_figure(4.0), tmp_path / "r.png", caption="c", palette=False))
    from PIL import Image

    with Image.open(tmp_path / "p.png") as p, Image.open(tmp_path / "r.png") as r:
        assert p.mode == "P" and p.size == r.size == (400, 300)
    assert (tmp_path / "p.png").stat().st_size < (tmp_path / "r.png").stat().st_size
    assert shown[1][0].width == 400  # narrower than the cap: its own width


def test_a_figure_wants_a_one_line_caption(tmp_path, shown):
    with pytest.raises(ValueError):
        occ_display.save_figure(_figure(), tmp_path / "a.png", caption="")
    with pytest.raises(ValueError):
        occ_display.save_figure(_figure(), tmp_path / "a.png", caption="one\ntwo")
    assert not (tmp_path / "a.png").exists()


def test_show_table_rounds_for_reading_and_keeps_integers(shown):
    frame = pd.DataFrame({"fad": [332.01329, 5.4801], "accuracy": [0.553571, 0.15], "n": [40, 280]})
    occ_display.show_table(frame, digits={"fad": 1}, caption="Table")
    (caption, _), (table, _) = shown
    assert caption.data == "Table"
    assert table["fad"].tolist() == [332.0, 5.5] and table["accuracy"].tolist() == [0.554, 0.15]
    assert table["n"].tolist() == [40, 280] and frame["fad"].iloc[0] == 332.01329  # the input is untouched
    occ_display.show_table(pd.DataFrame({"vocoder": ["HiFi-GAN", "Griffin-Lim"], "L1": [0.23808, 0.08879]}))
    by_name = shown[-1][0]
    assert list(by_name.index) == ["HiFi-GAN", "Griffin-Lim"] and by_name["L1"].tolist() == [0.238, 0.089]
    occ_display.show_table({"train_accuracy": 0.996429, "supcon_steps": 300, "variant": "o2c"}, name="f")
    metrics = shown[-1][0]
    occ_display.show_table({"train_accuracy": 0.996429, "supcon_steps": 300})
    assert shown[-1][0]["value"].tolist() == [0.996, 300] and isinstance(shown[-1][0]["value"].iloc[1], int)
    assert list(metrics.columns) == ["f"]
    assert metrics["f"].tolist() == [0.996, 300, "o2c"] and isinstance(metrics["f"].iloc[1], int)


def test_show_audio_embeds_an_mp3_of_the_clip(shown):
    rate = 22050
    clip = 0.1 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)
    occ_display.show_audio(clip, rate, caption="**DogBark**")
    (caption, _), (player, _) = shown
    assert caption.data == "**DogBark**" and player.mimetype == "audio/mpeg"
    assert "data:audio/mpeg;base64," in player._repr_html_()
    decoded, sr = sf.read(io.BytesIO(player.data))
    assert sr == rate and abs(len(decoded) - rate) < 0.05 * rate
    assert 0.8 < np.max(np.abs(decoded)) < 1.0  # peak-normalised as IPython's player is
    assert len(player.data) < 0.5 * 2 * rate  # well under the 16-bit WAV


def test_show_audio_puts_several_clips_side_by_side(shown):
    rate = 8000
    clips = {name: 0.1 * np.sin(2 * np.pi * f * np.arange(rate) / rate) for name, f in
             [("original", 200), ("HiFi-GAN", 300), ("Griffin-Lim", 400), ("fourth", 500)]}
    occ_display.show_audio(clips, rate)
    (row, _), = shown
    html = row._repr_html_()
    assert html.count("<audio") == 4 and html.count("<tr>") == 2  # three to a row
    assert "Griffin-Lim" in html and "data:audio/mpeg;base64," in html
    assert repr(row) == "audio: original, HiFi-GAN, Griffin-Lim, fourth"
    occ_display.show_audio(np.stack(list(clips.values()))[:2], rate, caption="**Rain**")
    assert shown[1][0].data == "**Rain**" and shown[2][0]._repr_html_().count("<audio") == 2


def test_setup_notebook_prints_the_package_warnings_in_one_line(tmp_path, monkeypatch, capsys):
    from occ.data.scan import DataWarning

    (tmp_path / "params.yaml").write_text("seed: 0\n")
    monkeypatch.chdir(tmp_path)
    passed_on = []
    monkeypatch.setattr(occ_display, "_original_showwarning", None)
    with warnings.catch_warnings(), matplotlib.rc_context():
        warnings.simplefilter("always")
        warnings.showwarning = lambda message, category, *args, **kw: passed_on.append(category)
        occ_display.setup_notebook()
        warnings.warn(f"skipped {tmp_path}/data/x.wav: unreadable", DataWarning)
        warnings.warn("a library's warning", UserWarning)
        warnings.warn("IProgress not found. Please update jupyter and ipywidgets.", _tqdm_warning())
    assert capsys.readouterr().err == "DataWarning: skipped data/x.wav: unreadable\n"
    assert passed_on == [UserWarning]  # other libraries' warnings still show; the tqdm noise does not


def _tqdm_warning():
    from tqdm.std import TqdmWarning

    return TqdmWarning
