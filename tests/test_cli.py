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
from occ.config import ModelConfig, SupConConfig, TrainConfig, load_params
from occ.train.gan_train import train_gan
from occ.nets.models import load_generator

REPO = Path(__file__).resolve().parents[1]
CLASSES = ["DogBark", "Footstep", "GunShot"]
MODEL = ModelConfig(z_dim=16, g_ch=4, d_ch=4, proj_dim=8, enc_width=4)
RUN_SEED = 1  # the checkpoint's training seed k (runs/train/o2c/seed1/): not the evaluation's base seed
EVAL_SEED = load_params(REPO / "params.yaml").seed  # params.yaml's seed: 05_evaluate's base_seed, `occ generate`'s default


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


def _project(root: Path, **top) -> Path:
    """A project folder: the repository's params.yaml with top-level values ``top`` (e.g. ``seed=5``)."""
    import yaml

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params.update(top)
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    """The checkpoint of run seed 1 in a project (runs/train/o2c/seed1/) whose params.yaml is the repository's."""
    gen = torch.Generator().manual_seed(0)
    mels = torch.rand(12, 80, 344, generator=gen) * 2 - 1
    out = _project(tmp_path_factory.mktemp("project")) / "runs" / "train" / "o2c" / f"seed{RUN_SEED}"
    train_gan(mels, torch.arange(12) % 3, n_classes=3, class_names=CLASSES, model=MODEL,
              train=TrainConfig(loss="o2c", steps=2, batch_size=4, ckpt_every=2), out_dir=out, seed=RUN_SEED,
              progress=False)
    return out / "checkpoint.pt"


@pytest.fixture(scope="module")
def encoder_ckpt(tmp_path_factory) -> Path:
    """A tiny, untrained SupCon encoder checkpoint for ``--embedding encoder``."""
    from occ.checkpoint import save_checkpoint
    from occ.train.run_folder import checkpoint_payload
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
                             ("heldout", "occ heldout "), ("check-submission", "occ check-submission ")):
        code, out, _ = run(capsys, command, "--help")
        assert code == 0 and "examples:" in out and example in out.split("examples:")[1], command


def test_generate_help_names_todays_run_folders(capsys):
    code, out, _ = run(capsys, "generate", "--help")
    text = " ".join(out.split())  # argparse wraps at spaces
    assert code == 0 and "runs/train/<variant>/seed<k>/checkpoint.pt" in text and "runs/train/o2c/seed0/checkpoint.pt" in text
    assert "runs/train/<variant>/checkpoint.pt" not in text


# ----------------------------------------------------------------------------- generate
def test_generate_is_reproducible_and_is_the_evaluations_clip(ckpt, tmp_path):
    """Two runs give the same bytes; each file is the evaluation's WAV of that (class, index): by default with the
    evaluation's base seed (params.yaml's seed), not the checkpoint's training seed, and its vocoder settings and
    threads (eval.*)."""
    assert EVAL_SEED != RUN_SEED  # else this test could not tell the two apart
    a, b = tmp_path / "a", tmp_path / "b"
    proc = occ("generate", "--checkpoint", ckpt, "--class", "footstep", "--first", 1, "-n", 2, "--out", a)
    assert proc.returncode == 0, proc.stderr
    assert main(["generate", "--checkpoint", str(ckpt), "--class", "Footstep", "--first", "1", "-n", "2",
                 "--out", str(b)]) == 0
    names = sorted(p.name for p in a.glob("*.wav"))
    assert names == [f"footstep-seed{EVAL_SEED}-0001.wav", f"footstep-seed{EVAL_SEED}-0002.wav"]
    for name in names + ["clips.csv"]:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    info = sf.info(str(a / names[0]))
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (22050, 1, 88200, "PCM_16")
    assert "latent_seed" in (a / "clips.csv").read_text() and str(EVAL_SEED + 1_000_000 + 2) in (a / "clips.csv").read_text()

    # The pipeline's evaluation of the same checkpoint, as notebooks/05_evaluate.ipynb calls it: base_seed=params.seed
    # of the project's params.yaml (whatever the run's training seed), Griffin-Lim 16 iterations.
    from occ.metrics.evaluate import evaluate_generator
    from test_evaluate import _StubEmbedder

    from occ.device import torch_threads

    params = load_params(ckpt.parents[4] / "params.yaml")
    g, _ = load_generator(ckpt)
    ref = {name: np.random.default_rng(c).standard_normal((5, 1, 4)) for c, name in enumerate(CLASSES)}
    with torch_threads(params.eval.threads):  # as the notebook: use_threads(params.eval.threads)
        evaluate_generator(g, class_names=CLASSES, n_per_class=3, base_seed=params.seed, embedder=_StubEmbedder(),
                           reference=ref, vocoder=params.eval.vocoder, gl_iters=params.eval.gl_iters, prdc_k=1,
                           wav_dir=tmp_path / "eval")
    assert (a / names[0]).read_bytes() == (tmp_path / "eval" / "footstep" / "01.wav").read_bytes()
    assert (a / names[1]).read_bytes() == (tmp_path / "eval" / "footstep" / "02.wav").read_bytes()
    assert (a / names[1]).read_bytes() != (tmp_path / "eval" / "footstep" / "01.wav").read_bytes()


def test_generate_default_seed_is_the_params_seed_of_the_checkpoints_project(ckpt, tmp_path, capsys, monkeypatch):
    """Without --seed: the seed of the params.yaml of the project holding the checkpoint (a profile may set it), or
    of --project; outside any project, an error that says what to pass."""
    import shutil

    import yaml

    other = _project(tmp_path / "other", seed=5)
    params = yaml.safe_load((other / "params.yaml").read_text())
    params["profiles"]["seven"] = {"seed": 7}
    (other / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run_dir = other / "runs" / "train" / "o2c" / "seed1"
    run_dir.mkdir(parents=True)
    shutil.copy(ckpt, run_dir / "checkpoint.pt")
    fast = ["--class", "gunshot", "--gl-iters", 1, "-q"]
    code, _, err = run(capsys, "generate", "--checkpoint", run_dir / "checkpoint.pt", *fast, "--out", tmp_path / "o5")
    assert code == 0, err
    assert [p.name for p in (tmp_path / "o5").glob("*.wav")] == ["gunshot-seed5-0000.wav"]
    assert ", seed 5, vocoder griffinlim (gl_iters 1), 1 thread, device cpu; defaults: the evaluation's (seed, " \
           f"eval.threads, eval.vocoder, device of {other / 'params.yaml'}, profile embedded)" in err
    from occ.cli.generate import evaluation_settings

    assert evaluation_settings(run_dir / "checkpoint.pt", profile="seven")[0]["seed"] == 7
    assert evaluation_settings(run_dir / "checkpoint.pt", project=REPO)[0]["seed"] == EVAL_SEED
    # a checkpoint outside any project, run outside any project: nothing to read the evaluation's seed from
    lone = tmp_path / "lone" / "checkpoint.pt"
    lone.parent.mkdir()
    shutil.copy(ckpt, lone)
    monkeypatch.chdir(tmp_path / "lone")
    code, _, err = run(capsys, "generate", "--checkpoint", lone, *fast, "--out", tmp_path / "o")
    assert code == 1 and "no params.yaml at or above" in err and "--project DIR" in err and "--seed S" in err
    assert not (tmp_path / "o").exists()
    # with --seed, the other settings are the embedded profile's
    code, _, err = run(capsys, "generate", "--checkpoint", lone, *fast, "--seed", 3, "--out", tmp_path / "o3")
    assert code == 0 and "seed 3, vocoder griffinlim (gl_iters 1), 1 thread, device cpu; defaults: no params.yaml " \
                         "found, so threads, vocoder, device as in params.yaml's embedded profile" in err, err


def test_generate_runs_on_the_evaluations_threads_and_records_them(ckpt, tmp_path, capsys, monkeypatch):
    """Without --threads: eval.threads of the checkpoint's project, whatever torch's count was; --threads N
    overrides it; clips.csv records the count; the caller's count is left as it was."""
    import csv

    import yaml

    from occ.device import torch_threads

    project = ckpt.parents[4]
    two = _project(tmp_path / "two")
    params = yaml.safe_load((two / "params.yaml").read_text())
    params["eval"]["threads"] = 2
    (two / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    fast = ["--checkpoint", ckpt, "--class", "dog_bark", "--gl-iters", 2, "-q"]

    def rows(folder):
        with open(folder / "clips.csv") as fh:
            return list(csv.DictReader(fh))

    from occ.synthesis import generate

    seen = []
    real = generate.generate_clips

    def spy(*a, **k):
        seen.append(torch.get_num_threads())
        return real(*a, **k)

    monkeypatch.setattr(generate, "generate_clips", spy)
    with torch_threads(3):
        for args, out in (([], "own"), (["--project", two], "two"), (["--threads", 4], "four")):
            code, _, err = run(capsys, "generate", *fast, *args, "--out", tmp_path / "out" / out)
            assert code == 0, err
        assert torch.get_num_threads() == 3
    declared = load_params(project / "params.yaml").eval.threads
    assert seen == [declared, 2, 4]
    assert [rows(tmp_path / "out" / out)[0]["threads"] for out in ("own", "two", "four")] == [str(declared), "2", "4"]
    assert rows(tmp_path / "out" / "own")[0]["device"] == "cpu"
    code, _, err = run(capsys, "generate", *fast, "--threads", 0, "--out", tmp_path / "zero")
    assert code == 1 and "--threads 0: use at least 1 thread" in err and not (tmp_path / "zero").exists()


@pytest.mark.slow
def test_generate_by_default_writes_the_evaluations_wavs_on_the_smoke_run(smoke_pipeline, tmp_path):
    """On the smoke run, `occ generate` with no setting given writes the evaluate stage's WAVs byte for byte, while
    the environment asks torch for another thread count than the one the stage declares (eval.threads); that count,
    given with --threads, changes the bytes."""
    import csv

    from occ.data.classes import class_folder

    repo = smoke_pipeline.repo
    params = load_params(repo / "params.yaml")  # the smoke profile
    declared, other = params.eval.threads, params.eval.threads + 1
    variant, seed = params.run_variants[0], params.seeds[0]
    env = dict(smoke_pipeline.env, OMP_NUM_THREADS=str(other), MKL_NUM_THREADS=str(other))

    def generate(out: Path, *options) -> list[dict]:
        proc = subprocess.run([sys.executable, "-m", "occ", "generate", "--checkpoint",
                               f"runs/train/{variant}/seed{seed}/checkpoint.pt", "--class", "all", "-n",
                               str(params.eval.clips_per_class), "-q", "--out", str(out), *options],
                              cwd=repo, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
        with open(out / "clips.csv") as fh:
            return list(csv.DictReader(fh))

    evaluation = repo / "runs" / "generated" / variant / f"seed{seed}"  # the evaluate stage's WAVs, <class>/NN.wav

    def same(out: Path, rows: list[dict]) -> list[bool]:
        return [(out / r["file"]).read_bytes()
                == (evaluation / class_folder(r["class"]) / f"{int(r['index']):02d}.wav").read_bytes() for r in rows]

    rows = generate(tmp_path / "default")
    assert len(rows) == len(list(evaluation.glob("*/*.wav"))) and {r["threads"] for r in rows} == {str(declared)}
    assert all(same(tmp_path / "default", rows)), "occ generate's default clips are not the evaluation's WAVs"
    rows = generate(tmp_path / "other", "--threads", str(other))
    assert {r["threads"] for r in rows} == {str(other)}
    assert not all(same(tmp_path / "other", rows)), "the thread count does not change the bytes: this test tells nothing"


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
    from occ.cli.common import CliError

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


def _embedded(folder: Path, encoder_ckpt: Path) -> np.ndarray:
    """The encoder embeddings of a folder's clips, as ``occ fad --embedding encoder`` computes them."""
    from occ.data.audio import load_clip
    from occ.metrics.embeddings import get_embedder
    from occ.nets.models import load_encoder

    emb = get_embedder("encoder", encoder=load_encoder(encoder_ckpt))
    return emb.embed(np.stack([load_clip(f) for f in sorted(folder.glob("*.wav"))]))


def test_fad_of_one_class_folder_against_another_is_one_line(folders, encoder_ckpt, capsys):
    """One class's clips (a flat folder) against that class's reference folder: one FAD, on one line."""
    from occ.metrics.fad import fad_per_class

    gen, ref = folders / "gen" / "dog_bark", folders / "ref" / "Dogbark"
    enc = ["--embedding", "encoder", "--encoder", encoder_ckpt]
    code, out, err = run(capsys, "fad", gen, ref, *enc)
    assert code == 0, err
    expected = fad_per_class({"dog_bark": _embedded(gen, encoder_ckpt)},
                             {"dog_bark": _embedded(ref, encoder_ckpt)}).loc["dog_bark", "fad"]
    (line,) = out.strip().splitlines()
    head, _, tail = line.partition(": ")
    assert head == f"FAD (encoder embeddings, 1 thread) of {gen} against {ref}"  # eval.threads of this project
    assert tail.endswith("(4 clips, 5 reference clips)")
    assert float(tail.split()[0]) == pytest.approx(expected, rel=1e-5) and expected > 1e-3
    code, out, _ = run(capsys, "fad", gen, ref, *enc, "--json")
    report = json.loads(out)
    assert code == 0 and list(report["classes"]) == ["dog_bark"] and report["threads"] == 1
    assert report["mean"]["fad"] == pytest.approx(expected, rel=1e-6)


def test_fad_runs_on_the_stages_threads(folders, encoder_ckpt, capsys, monkeypatch, tmp_path):
    """Without --threads: eval.threads of the working folder's project (1 outside any), whatever torch's count was;
    --threads N overrides it; the output records the count; the caller's count is left as it was."""
    import yaml

    from occ.device import torch_threads
    from occ.metrics.embeddings import Embedder

    seen = []
    real = Embedder.embed

    def spy(self, *a, **k):
        seen.append(torch.get_num_threads())
        return real(self, *a, **k)

    monkeypatch.setattr(Embedder, "embed", spy)
    two = _project(tmp_path / "two")
    params = yaml.safe_load((two / "params.yaml").read_text())
    params["eval"]["threads"] = 2
    (two / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (tmp_path / "nowhere").mkdir()
    gen, ref = folders / "gen" / "dog_bark", folders / "ref" / "Dogbark"
    enc = ["--embedding", "encoder", "--encoder", encoder_ckpt]
    counts = {}
    with torch_threads(3):
        for name, where, args in (("here", REPO, []), ("two", tmp_path, ["--project", two]),
                                  ("outside", tmp_path / "nowhere", []), ("given", REPO, ["--threads", 4])):
            monkeypatch.chdir(where)
            seen.clear()
            code, out, err = run(capsys, "fad", gen, ref, *enc, *args, "--json")
            assert code == 0, err
            counts[name] = (json.loads(out)["threads"], set(seen))
        assert torch.get_num_threads() == 3
    declared = load_params(REPO / "params.yaml").eval.threads
    assert counts == {"here": (declared, {declared}), "two": (2, {2}), "outside": (1, {1}), "given": (4, {4})}
    code, out, _ = run(capsys, "fad", gen, ref, *enc, "--threads", 2)
    assert code == 0 and out.startswith(f"FAD (encoder embeddings, 2 threads) of {gen} against {ref}: ")


def test_fad_names_both_folders_when_one_is_flat_and_the_other_has_class_folders(folders, encoder_ckpt, capsys):
    enc = ["--embedding", "encoder", "--encoder", encoder_ckpt]
    flat_gen, flat_ref = folders / "gen" / "dog_bark", folders / "ref" / "Rain"
    code, out, err = run(capsys, "fad", flat_gen, folders / "ref", *enc)
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert f"GENERATED {flat_gen} is a flat folder of clips but REFERENCE {folders / 'ref'} has class folders" in err
    assert str(folders / "ref" / "Dogbark") in err  # the class folder to give instead
    code, out, err = run(capsys, "fad", folders / "gen", flat_ref, *enc)
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert f"GENERATED {folders / 'gen'} has class folders (dog_bark, rain) but REFERENCE {flat_ref} is a flat" in err
    assert "occ heldout" in err


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


# ----------------------------------------------------------------------------- heldout
@pytest.fixture(scope="module")
def prepared(tmp_path_factory, small_foley_dataset) -> Path:
    """A project after its data stage (smoke profile): its own copy of a small DCASE-layout dataset in data/foley and
    the feature cache data/features.pt built from it as notebooks/01_data.ipynb builds it."""
    import shutil
    import warnings

    from occ.data import datasets
    from occ.paths import Layout

    root = _project(tmp_path_factory.mktemp("prepared"), profile="smoke")
    shutil.copytree(small_foley_dataset, root / "data" / "foley")
    layout, params = Layout(root), load_params(root / "params.yaml")
    assert (params.data.path, params.data.cache, params.data.heldout_per_class) == ("data/foley", "data/features.pt", 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        datasets.feature_cache(layout.data(params.data.path), layout.data(params.data.cache), layout=params.data.layout,
                               heldout_per_class=params.data.heldout_per_class, split_seed=params.seed, n_jobs=1)
    return root


def test_heldout_writes_the_reference_stages_clips(prepared, encoder_ckpt, tmp_path, capsys):
    """OUT_DIR/<Class>/<file>: exactly the held-out clips the reference stage embeds, byte for byte the dataset's."""
    from occ.data.datasets import load_feature_cache

    out = tmp_path / "heldout"
    code, stdout, err = run(capsys, "heldout", out, "--project", prepared)
    assert code == 0, err
    held = load_feature_cache(prepared / "data" / "features.pt").heldout()  # what reference_embeddings reads
    expected = {(held.class_names[y], Path(f).name): prepared / "data" / "foley" / f
                for f, y in zip(held.files, held.labels.tolist())}
    written = {(p.parent.name, p.name): p for p in out.rglob("*") if p.is_file()}
    assert sorted(written) == sorted(expected) and len(written) == 7 * 3
    assert all(written[k].read_bytes() == expected[k].read_bytes() for k in expected)
    assert f"wrote 21 held-out clips to {out}/" in stdout and "DogBark 3" in stdout
    assert _siblings(out) == ["heldout"]  # no temporary folder left
    # ready for `occ fad`: one class folder against itself scores 0, on one line
    code, stdout, err = run(capsys, "fad", out / "DogBark", out / "DogBark", "--embedding", "encoder", "--encoder",
                            encoder_ckpt)
    assert code == 0 and len(stdout.strip().splitlines()) == 1 and abs(float(stdout.split(": ")[1].split()[0])) < 1e-6, err


def test_heldout_of_a_moved_project_reads_its_own_dataset_folder(prepared, tmp_path, capsys):
    """The cache stores the dataset's absolute path; a project moved elsewhere reads data.path of its own."""
    moved = tmp_path / "moved"
    prepared.rename(moved)
    try:
        code, _, err = run(capsys, "heldout", tmp_path / "out", "--project", moved)
    finally:
        moved.rename(prepared)
    assert code == 0, err
    assert len(list((tmp_path / "out").rglob("*.wav"))) == 21


def test_heldout_errors_name_the_cause_and_write_nothing(prepared, tmp_path, capsys, monkeypatch):
    out = tmp_path / "target" / "heldout"
    # the data stage has not run: say so
    bare = _project(tmp_path / "bare", profile="smoke")
    code, _, err = run(capsys, "heldout", out, "--project", bare)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert f"no feature cache {bare / 'data' / 'features.pt'}" in err and "run `dvc repro data`" in err
    # the cache holds another split than the profile asks for (embedded: 100 held-out clips per class)
    code, _, err = run(capsys, "heldout", out, "--project", prepared, "--profile", "embedded")
    assert code == 1 and "another held-out split" in err and "dvc repro data" in err
    # a held-out file gone from the dataset
    from occ.data.datasets import load_feature_cache

    gone = prepared / "data" / "foley" / load_feature_cache(prepared / "data" / "features.pt").heldout().files[4]
    gone.rename(gone.with_suffix(".bak"))
    try:
        code, _, err = run(capsys, "heldout", out, "--project", prepared)
    finally:
        gone.with_suffix(".bak").rename(gone)
    assert code == 1 and str(gone) in err and "dvc repro --force data" in err
    # a failure half-way through the copies (a full disk): no partial folder
    calls = []

    def copy_then_fail(src, dst, *a, **k):
        calls.append(src)
        if len(calls) > 5:
            raise OSError(28, "No space left on device")
        return real_copy(src, dst, *a, **k)

    import shutil

    real_copy = shutil.copyfile
    monkeypatch.setattr(shutil, "copyfile", copy_then_fail)
    code, _, err = run(capsys, "heldout", out, "--project", prepared)
    monkeypatch.undo()
    assert code == 1 and "No space left on device" in err and len(calls) == 6
    assert _siblings(out) == []
    # a used folder is kept unless --overwrite
    out.mkdir()
    (out / "keep.txt").write_text("x")
    code, _, err = run(capsys, "heldout", out, "--project", prepared)
    assert code == 1 and "OUT_DIR" in err and "pass --overwrite" in err and (out / "keep.txt").exists()
    code, _, err = run(capsys, "heldout", out, "--project", prepared, "--overwrite")
    assert code == 0 and not (out / "keep.txt").exists() and len(list(out.rglob("*.wav"))) == 21, err
    assert _siblings(out) == ["heldout"]


def test_the_defaults_outside_a_project_are_the_embedded_profiles_evaluation_settings():
    """One source of the evaluation's defaults: params.yaml. Outside a project, ``occ generate`` and ``occ fad`` use
    what ``occ.config.clip_settings`` reads from its embedded profile; the dataclass defaults are the same values."""
    from occ.cli.common import OUTSIDE_A_PROJECT
    from occ.config import EvalConfig, clip_settings

    params = load_params(REPO / "params.yaml", profile="embedded")
    settings = clip_settings(params, REPO)
    assert OUTSIDE_A_PROJECT == {k: v for k, v in settings.items() if k != "seed"}
    assert EvalConfig() == params.eval
