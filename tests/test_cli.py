"""Tests of the ``occ`` command (occ.cli.main): each sub-command end to end on the CPU, on a smoke checkpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from occ.cli.main import main
from occ.config import ModelConfig, SupConConfig, TrainConfig
from occ.train.gan_train import train_gan
from occ.nets.models import load_generator

REPO = Path(__file__).resolve().parents[1]
CLASSES = ["DogBark", "Footstep", "GunShot"]
MODEL = ModelConfig(z_dim=16, g_ch=4, d_ch=4, proj_dim=8, enc_width=4)
RUN_SEED = 3  # the checkpoint's run seed: `occ generate`'s default --seed, the evaluation's base seed


def occ(*args: str) -> subprocess.CompletedProcess:
    """``python -m occ ARGS`` in a fresh interpreter, importing this checkout's package.

    It runs with this process's number of torch threads: CPU kernels sum in another order with another thread
    count, so a clip is byte-identical for the same machine and thread count.
    """
    import torch

    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(torch.get_num_threads())}
    return subprocess.run([sys.executable, "-m", "occ", *map(str, args)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


def run(capsys, *args) -> tuple[int, str, str]:
    """``occ ARGS`` in this process (same code path as the console script): (exit code, stdout, stderr)."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:  # argparse: --help, usage errors
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    gen = torch.Generator().manual_seed(0)
    mels = torch.rand(12, 80, 344, generator=gen) * 2 - 1
    out = tmp_path_factory.mktemp("run")
    train_gan(mels, torch.arange(12) % 3, n_classes=3, class_names=CLASSES, model=MODEL,
              train=TrainConfig(loss="o2c", steps=2, batch_size=4, ckpt_every=2), out_dir=out, seed=RUN_SEED,
              progress=False)
    return out / "checkpoint.pt"


@pytest.fixture(scope="module")
def encoder_ckpt(tmp_path_factory) -> Path:
    """A tiny, untrained SupCon encoder checkpoint for ``--embedding encoder``."""
    from occ.checkpoint import save_checkpoint
    from occ.train.run_setup import checkpoint_payload
    from occ.nets.models import build_encoder

    torch.manual_seed(0)
    enc = build_encoder(MODEL, n_classes=3)
    path = tmp_path_factory.mktemp("enc") / "encoder.pt"
    save_checkpoint(path, checkpoint_payload("encoder", stage="finetuned", model=MODEL, train=SupConConfig(),
                                             run={"seed": 0}, step=0, n_classes=3, class_names=CLASSES,
                                             encoder=enc.state_dict()))
    return path


def _clips(folder: Path, n: int, seed: int, *, sr: int = 22050) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    t = np.arange(88200) / 22050
    for i in range(n):
        x = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 3000) * t) * np.exp(-t * rng.uniform(0.5, 5))
        sf.write(str(folder / f"{i:02d}.wav"), x + 0.01 * rng.standard_normal(len(t)), sr, subtype="PCM_16")
    return folder


def _siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


# ----------------------------------------------------------------------------- help
def test_help_of_every_command_has_an_example(capsys):
    proc = occ("--help")
    assert proc.returncode == 0 and "occ generate --checkpoint" in proc.stdout and "examples:" in proc.stdout
    for command, example in (("generate", "occ generate --checkpoint"), ("fad", "occ fad "),
                             ("check-submission", "occ check-submission ")):
        code, out, _ = run(capsys, command, "--help")
        assert code == 0 and "examples:" in out and example in out.split("examples:")[1], command


def test_generate_help_names_todays_run_folders(capsys):
    code, out, _ = run(capsys, "generate", "--help")
    text = " ".join(out.split())  # argparse wraps at spaces
    assert code == 0 and "runs/train/<variant>/seed<k>/checkpoint.pt" in text and "runs/train/o2c/seed0/checkpoint.pt" in text
    assert "runs/train/<variant>/checkpoint.pt" not in text


# ----------------------------------------------------------------------------- generate
def test_generate_is_reproducible_and_is_the_evaluations_clip(ckpt, tmp_path):
    """Two runs give the same bytes; each file is the evaluation's WAV of that (class, index)."""
    a, b = tmp_path / "a", tmp_path / "b"
    proc = occ("generate", "--checkpoint", ckpt, "--class", "footstep", "--first", 1, "-n", 2, "--out", a)
    assert proc.returncode == 0, proc.stderr
    assert main(["generate", "--checkpoint", str(ckpt), "--class", "Footstep", "--first", "1", "-n", "2",
                 "--out", str(b)]) == 0
    names = sorted(p.name for p in a.glob("*.wav"))
    assert names == ["footstep-seed3-0001.wav", "footstep-seed3-0002.wav"]
    for name in names + ["clips.csv"]:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    info = sf.info(str(a / names[0]))
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (22050, 1, 88200, "PCM_16")
    assert "latent_seed" in (a / "clips.csv").read_text() and str(RUN_SEED + 1_000_000 + 2) in (a / "clips.csv").read_text()

    # The pipeline's evaluation of the same checkpoint (base seed = the run seed, Griffin-Lim 16 iterations).
    from occ.metrics.evaluate import evaluate_generator
    from test_evaluate import _StubEmbedder

    g, _ = load_generator(ckpt)
    ref = {name: np.random.default_rng(c).standard_normal((5, 1, 4)) for c, name in enumerate(CLASSES)}
    evaluate_generator(g, class_names=CLASSES, n_per_class=3, base_seed=RUN_SEED, embedder=_StubEmbedder(),
                       reference=ref, gl_iters=16, prdc_k=1, wav_dir=tmp_path / "eval")
    assert (a / names[0]).read_bytes() == (tmp_path / "eval" / "footstep" / "01.wav").read_bytes()
    assert (a / names[1]).read_bytes() == (tmp_path / "eval" / "footstep" / "02.wav").read_bytes()
    assert (a / names[1]).read_bytes() != (tmp_path / "eval" / "footstep" / "01.wav").read_bytes()


def test_generate_submission_then_check_submission(ckpt, tmp_path, capsys):
    sub = tmp_path / "submission"
    code, out, err = run(capsys, "generate", "--checkpoint", ckpt, "--class", "all", "-n", 2, "--submission", sub)
    assert code == 0, err
    assert sorted(p.name for p in sub.iterdir()) == ["dog_bark", "footstep", "gunshot"]
    assert sorted(p.name for p in (sub / "gunshot").iterdir()) == ["00.wav", "01.wav"]
    code, out, err = run(capsys, "check-submission", sub, "-n", 2, "--classes", "dog_bark,footstep,gunshot")
    assert code == 0 and "passes the DCASE 2023 Task 7 format checks" in out, err
    # Two broken files and the four DCASE classes that are missing: every problem listed, exit code 1.
    (sub / "footstep" / "00.wav").write_bytes(b"RIFF garbage")
    sf.write(str(sub / "gunshot" / "01.wav"), np.zeros(1000), 16000, subtype="PCM_16")
    code, out, err = run(capsys, "check-submission", sub, "-n", 2)
    lines = out.strip().splitlines()
    assert code == 1 and "fails the DCASE checks (6 problems)" in err
    assert len(lines) == 6 and "00.wav cannot be read" in lines[0] and "1000 samples" in lines[1]
    assert sum("is missing" in line for line in lines) == 4


@pytest.mark.parametrize("args, message", [
    (["--class", "Cat"], "--class 'Cat' is not a class of this checkpoint; use one of: DogBark, Footstep, GunShot"),
    (["--class", "rain"], "use one of: DogBark, Footstep, GunShot"),
    (["--class", "dog_bark", "-n", "0"], "-n 0: give at least 1 clip per class"),
    (["--class", "dog_bark", "--vocoder", "nothere.pt"], "--vocoder nothere.pt: not griffinlim or hifigan"),
])
def test_generate_bad_input_is_one_line_and_writes_nothing(ckpt, tmp_path, capsys, args, message):
    out = tmp_path / "out"
    code, _, err = run(capsys, "generate", "--checkpoint", ckpt, *args, "--out", out)
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1
    assert _siblings(out) == []  # no output folder, no temporary folder


def test_generate_missing_checkpoint_and_used_folder(ckpt, tmp_path, capsys):
    code, _, err = run(capsys, "generate", "--checkpoint", tmp_path / "nope.pt", "--class", "all", "--out", tmp_path / "o")
    assert code == 1 and "--checkpoint" in err and "nope.pt does not exist" in err
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("x")
    code, _, err = run(capsys, "generate", "--checkpoint", ckpt, "--class", "all", "--out", used)
    assert code == 1 and "already exists and is not empty; choose a new folder or pass --overwrite" in err
    assert _siblings(used) == ["used"] and (used / "keep.txt").exists()
    # In a fresh interpreter, as the console script: one line, no traceback; --debug shows it.
    proc = occ("generate", "--checkpoint", ckpt, "--class", "Cat", "--out", tmp_path / "o")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    from occ.cli.main import CliError

    with pytest.raises(CliError, match="'Cat' is not a class"):
        main(["generate", "--checkpoint", str(ckpt), "--class", "Cat", "--out", str(tmp_path / "o"), "--debug"])
    code, _, err = run(capsys, "generate", "--class", "all", "--out", tmp_path / "o")
    assert code == 2 and "the following arguments are required: --checkpoint" in err


def test_generate_with_hifigan_float32(ckpt, tmp_path, capsys):
    code, _, err = run(capsys, "generate", "--checkpoint", ckpt, "--class", "GUN_SHOT", "--seed", 9, "--vocoder",
                       "hifigan", "--precision", "float32", "--out", tmp_path / "h")
    assert code == 0, err
    x, sr = sf.read(str(tmp_path / "h" / "gunshot-seed9-0000.wav"))
    assert sr == 22050 and x.shape == (88200,) and np.abs(x).max() > 0


# ----------------------------------------------------------------------------- fad
@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("fad")
    for c, name in enumerate(["dog_bark", "rain"]):
        _clips(root / "gen" / name, 4, seed=c)
        _clips(root / "ref" / name.replace("_", "").capitalize(), 5, seed=10 + c)  # "Dogbark", "Rain"
    return root


def test_fad_of_a_folder_against_itself_is_zero(folders, encoder_ckpt, capsys):
    code, out, err = run(capsys, "fad", folders / "gen", folders / "gen", "--embedding", "encoder", "--encoder",
                         encoder_ckpt, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert set(report["classes"]) == {"dog_bark", "rain"}
    for row in report["classes"].values():
        assert abs(row["fad"]) < 1e-6 and row["n_clips"] == 4 and row["n_reference_clips"] == 4
    assert abs(report["mean"]["fad"]) < 1e-6


def test_fad_agrees_with_fad_per_class(folders, encoder_ckpt, capsys):
    from occ.data.audio import load_clip
    from occ.metrics.embeddings import get_embedder
    from occ.metrics.fad import fad_per_class
    from occ.nets.models import load_encoder

    code, out, err = run(capsys, "fad", folders / "gen", folders / "ref", "--embedding", "encoder", "--encoder",
                         encoder_ckpt, "--json")
    assert code == 0, err
    report = json.loads(out)
    emb = get_embedder("encoder", encoder=load_encoder(encoder_ckpt))

    def embed(folder):
        return emb.embed(np.stack([load_clip(f) for f in sorted(folder.glob("*.wav"))]))

    expected = fad_per_class({"dog_bark": embed(folders / "gen" / "dog_bark"), "rain": embed(folders / "gen" / "rain")},
                             {"dog_bark": embed(folders / "ref" / "Dogbark"), "rain": embed(folders / "ref" / "Rain")})
    for name in ("dog_bark", "rain"):
        assert report["classes"][name]["fad"] == pytest.approx(expected.loc[name, "fad"], rel=1e-6)
        assert report["classes"][name]["n_reference_clips"] == 5
    assert report["mean"]["fad"] == pytest.approx(expected.loc["Average", "fad"], rel=1e-6)
    assert report["mean"]["fad"] > 1e-3
    # The text form: a row per class with the clip counts, then the mean.
    code, out, _ = run(capsys, "fad", folders / "gen", folders / "ref", "--embedding", "encoder", "--encoder",
                       encoder_ckpt, "--per-class")
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:4]}
    assert code == 0 and rows["rain"][1:3] == ["4", "5"]
    assert float(rows["rain"][3]) == pytest.approx(expected.loc["rain", "fad"], rel=1e-5)
    assert float(out.splitlines()[-1].split()[-1]) == pytest.approx(expected.loc["Average", "fad"], rel=1e-5)


def test_fad_bad_folders(folders, encoder_ckpt, tmp_path, capsys):
    enc = ["--embedding", "encoder", "--encoder", encoder_ckpt]
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "fad", tmp_path / "empty", folders / "ref", *enc)
    assert code == 1 and "GENERATED folder" in err and "holds no audio files" in err
    code, _, err = run(capsys, "fad", folders / "gen", tmp_path / "nothere", *enc)
    assert code == 1 and "REFERENCE folder" in err and "nothere does not exist" in err
    bad = _clips(tmp_path / "bad", 3, seed=5)
    (bad / "01.wav").write_bytes(b"RIFF\x00\x00not a wav")
    code, _, err = run(capsys, "fad", bad, folders / "ref" / "Rain", *enc)
    assert code == 1 and "01.wav cannot be read as audio" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "fad", folders / "gen", folders / "ref", "--embedding", "encoder")
    assert code == 1 and "--embedding encoder needs --encoder PATH" in err
    code, _, err = run(capsys, "fad", folders / "gen", "dcase-eval", "--embedding", "aisfx")
    assert code == 1 and "use --embedding vggish" in err
    other = _clips(tmp_path / "cls" / "keyboard", 2, seed=1).parent
    code, _, err = run(capsys, "fad", other, folders / "ref", *enc)
    assert code == 1 and "GENERATED classes keyboard have no folder in REFERENCE" in err


def test_fad_against_dcase_eval_with_vggish(folders, capsys, monkeypatch, tmp_path):
    """dcase-eval reads the shipped statistics; without VGGish weights, the embedder's own message."""
    from occ.metrics.embeddings import VGGishEmbedder
    from occ.errors import WeightsNotFoundError
    from occ.metrics.dcase_eval_stats import dcase_eval_reference
    from occ.metrics.fad import fad_per_class

    from occ.metrics.vggish import load_vggish

    missing = tmp_path / "vggish-10086976.pth"
    with pytest.raises(WeightsNotFoundError) as today:  # the message the pipeline gives
        load_vggish(missing)
    code, _, err = run(capsys, "fad", folders / "gen", "dcase-eval", "--vggish-weights", missing)
    assert code == 1 and err.strip() == f"occ fad: error: {today.value}"

    class TinyVGGish(torch.nn.Module):  # stands in for the weights: 96 x 64 example -> 128-d
        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Linear(64, 128)

        def forward(self, x):
            return self.proj(x.mean(1))

    torch.manual_seed(0)
    net = TinyVGGish()
    monkeypatch.setattr("occ.metrics.vggish.load_vggish", lambda *a, **k: net)
    code, out, err = run(capsys, "fad", folders / "gen", "dcase-eval", "--json")
    assert code == 0, err
    report = json.loads(out)
    from occ.data.audio import load_clip

    emb = VGGishEmbedder(model=net)
    gen = {n: emb.embed(np.stack([load_clip(f) for f in sorted((folders / "gen" / n).glob("*.wav"))]))
           for n in ("dog_bark", "rain")}
    expected = fad_per_class(gen, dcase_eval_reference(["dog_bark", "rain"]))
    assert report["mean"]["fad"] == pytest.approx(expected.loc["Average", "fad"], rel=1e-6)
    assert report["classes"]["rain"]["n_reference_clips"] is None
