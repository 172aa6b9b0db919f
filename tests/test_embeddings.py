"""Tests of occ.metrics.vggish, occ.metrics.aisfx and occ.metrics.embeddings (CPU, synthetic audio)."""

from __future__ import annotations

import sys
import zipfile

import numpy as np
import pytest
import torch

from occ.errors import ConfigError, WeightsNotFoundError
from occ.metrics.embeddings import AisfxEmbedder, VGGishEmbedder, get_embedder
from occ.metrics.vggish import VGGISH_URL, VGGish, load_vggish
from test_cli import encoder_ckpt  # noqa: F401 (a fixture: a tiny SupCon encoder checkpoint)
from test_evaluate import _StubEmbedder

TORCHVGGISH_KEYS = sorted(
    [f"features.{i}.{p}" for i in (0, 3, 6, 8, 11, 13) for p in ("weight", "bias")]
    + [f"embeddings.{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")]
)


def test_vggish_layout_and_shapes():
    net = VGGish().eval()
    sd = net.state_dict()
    assert sorted(sd) == TORCHVGGISH_KEYS
    assert sd["embeddings.0.weight"].shape == (4096, 12288) and sd["features.13.weight"].shape == (512, 512, 3, 3)
    with torch.no_grad():
        out = net(torch.randn(3, 96, 64))
    assert out.shape == (3, 128) and (out < 0).any()  # pre-activation: no final ReLU


def test_vggish_embedder_with_random_weights():
    emb = VGGishEmbedder(model=VGGish())
    wav = (0.1 * np.random.default_rng(0).standard_normal((2, 88200))).astype(np.float32)
    out = emb.embed(wav)
    assert out.shape == (2, 10, 128) and emb.windows_per_clip == 10 and emb.dim == 128


def test_vggish_missing_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("OCC_CACHE", str(tmp_path))
    monkeypatch.delenv("OCC_VGGISH_WEIGHTS", raising=False)
    with pytest.raises(WeightsNotFoundError, match="vggish-10086976.pth.*weights="):
        load_vggish(tmp_path / "missing.pth")
    with pytest.raises(WeightsNotFoundError, match="downloading is off.*eval.vggish_weights") as missing:
        load_vggish(download=False)
    assert f"run `occ fetch-weights --vggish` where a network is reached (it downloads {VGGISH_URL} into {tmp_path})" \
        in str(missing.value)  # the command that fetches them


def test_vggish_weights_file_roundtrip(tmp_path):
    net = VGGish()
    path = tmp_path / "vggish-10086976.pth"
    torch.save(net.state_dict(), path)
    loaded = load_vggish(path)
    x = torch.randn(2, 96, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net.eval()(x))


def test_unknown_embedder_and_encoder_needs_model():
    with pytest.raises(ConfigError, match="unknown"):
        get_embedder("openl3")
    with pytest.raises(ConfigError, match="encoder="):
        get_embedder("encoder")


def test_encoder_embedder():
    from occ.nets.encoder import Encoder

    enc = Encoder(n_classes=2, width=8, proj_dim=16)
    emb = get_embedder("encoder", encoder=enc)
    out = emb.embed(np.zeros((2, 88200), np.float32))
    assert out.shape == (2, 1, emb.dim) and emb.dim == 64


def test_aisfx_missing_wheel_message(tmp_path):
    from occ.metrics.aisfx import ensure_wheel

    with pytest.raises(WeightsNotFoundError, match=r"pip download --no-deps aisfx==0\.1\.2 -d") as missing:
        ensure_wheel(cache=tmp_path, download=False)
    assert "run `occ fetch-weights` (the set-up's last step" in str(missing.value)  # the command that fetches it


@pytest.fixture(scope="module")
def aisfx_wheel(tmp_path_factory):
    from occ.metrics.aisfx import ensure_wheel

    try:
        wheel = ensure_wheel()
    except WeightsNotFoundError as exc:
        pytest.skip(f"aisfx wheel unavailable: {exc}")
    folder = tmp_path_factory.mktemp("aisfx_wheel")
    zipfile.ZipFile(wheel).extractall(folder)
    return folder


def test_aisfx_matches_wheel_code(aisfx_wheel, tmp_path):
    import soundfile as sf

    from occ.metrics.aisfx import aisfx_front_end, load_aisfx

    sys.path.insert(0, str(aisfx_wheel))
    try:
        from aisfx.models.cnn2d import EmbeddingNet
        from aisfx.spectrogram.spectrogram_librosa import compute_spectrogram
    finally:
        sys.path.remove(str(aisfx_wheel))
    weights = torch.load(aisfx_wheel / "aisfx" / "models" / "checkpoint.pth", map_location="cpu", weights_only=False)[0]
    ref = EmbeddingNet("max", 3, 1, 64)
    ref.load_state_dict({k[len("embedding_net."):]: v for k, v in weights.items() if k.startswith("embedding_net.")})
    ours = load_aisfx()
    x = torch.rand(2, 100, 96)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref.eval()(x), atol=1e-4, rtol=1e-4)
    y = (0.3 * np.random.default_rng(0).standard_normal(44100)).astype(np.float32)
    sf.write(str(tmp_path / "a.wav"), y, 44100, subtype="FLOAT")
    spec_ref = compute_spectrogram(str(tmp_path / "a.wav"), 44100, 2048, 1024, 96, 0.0, 22050.0).T / 9.457798957824707
    spec = aisfx_front_end(torch.from_numpy(y)[None], sr=44100)[0].numpy()
    np.testing.assert_allclose(spec, spec_ref, atol=1e-5)


def _two_kinds(n: int, n_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic 'barks' vs. broadband 'steps' with random pitch, timing and level over background noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / 22050
    clips, labels = [], []
    for i in range(n):
        x = 0.01 * rng.standard_normal(n_samples)
        onset = rng.integers(0, n_samples // 2)
        env = np.exp(-np.clip(t - t[onset], 0, None) * rng.uniform(5, 15)) * (t >= t[onset])
        if i % 2 == 0:
            f0 = rng.uniform(300, 700)
            x += env * sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 6)) * rng.uniform(0.1, 0.5)
        else:
            click = rng.standard_normal(n_samples) * env
            x += np.convolve(click, np.ones(8) / 8, mode="same") * rng.uniform(0.2, 0.8)
        clips.append(x)
        labels.append(i % 2)
    return np.stack(clips).astype(np.float32), np.array(labels)


def _loo_1nn(e: np.ndarray, y: np.ndarray) -> float:
    e = e / np.linalg.norm(e, axis=1, keepdims=True)
    d = -e @ e.T
    np.fill_diagonal(d, np.inf)
    return float((y[d.argmin(axis=1)] == y).mean())


def test_aisfx_pretrained_separates_better_than_random(aisfx_wheel):
    from occ.metrics.aisfx import AisfxNet

    x, y = _two_kinds(16, 50000, seed=0)  # 2.27 s: 98 frames, one block per clip
    pre = AisfxEmbedder()
    rnd = AisfxEmbedder(model=AisfxNet())
    torch.manual_seed(0)
    e_pre, e_rnd = pre.embed(x), rnd.embed(x)
    assert e_pre.shape == (16, 1, 512)
    acc_pre, acc_rnd = _loo_1nn(e_pre[:, 0], y), _loo_1nn(e_rnd[:, 0], y)
    assert acc_pre >= 0.9 and acc_pre >= acc_rnd, (acc_pre, acc_rnd)


def test_aisfx_blocks_per_clip():
    from occ.metrics.aisfx import aisfx_blocks

    f = torch.arange(173, dtype=torch.float32)[None, :, None].expand(1, 173, 96)
    b = aisfx_blocks(f)
    assert b.shape == (1, 3, 100, 96)
    assert b[0, 1, 0, 0] == 50 and b[0, 2, 0, 0] == 100 and b[0, 2, -1, 0] == 0  # last block zero-padded
    assert aisfx_blocks(f, hop=100).shape == (1, 2, 100, 96)


def test_eval_embedder_loads_the_encoder_and_embeds_with_it(encoder_ckpt):
    from occ.metrics.embeddings import EncoderEmbedder, eval_embedder
    from occ.nets.models import load_encoder

    embedder, encoder = eval_embedder("encoder", vggish_weights="", encoder=encoder_ckpt, device="cpu")
    assert isinstance(embedder, EncoderEmbedder) and embedder.model is encoder
    wavs = np.random.default_rng(0).uniform(-0.3, 0.3, (3, 88200)).astype(np.float32)
    want = get_embedder("encoder", encoder=load_encoder(encoder_ckpt, device="cpu")).embed(wavs)
    np.testing.assert_array_equal(embedder.embed(wavs), want)


def test_embed_clips_reads_the_audio_files_and_can_take_the_vocoder_path(small_foley_dataset, tmp_path):
    from pathlib import Path

    from occ.data.audio import load_clip
    from occ.data.datasets import build_feature_cache
    from occ.errors import DataError
    from occ.metrics.embeddings import embed_clips, reference_embeddings
    from occ.synthesis.vocoder import resynthesize

    cache = build_feature_cache(small_foley_dataset, tmp_path / "f.pt", heldout_per_class=2, progress=False)
    held, stub = cache.heldout(), _StubEmbedder()
    ref = reference_embeddings(cache, embedder=stub)
    assert list(ref) == cache.class_names
    for c, name in enumerate(cache.class_names):
        files = [f for f, y in zip(held.files, held.labels.tolist()) if y == c]
        np.testing.assert_array_equal(ref[name], stub.embed(np.stack([load_clip(Path(held.root) / f) for f in files])))
    part = held.first_per_class(1)
    vocoded = embed_clips(part, embedder=stub, what="held-out", through_vocoder={"vocoder": "griffinlim", "gl_iters": 2})
    for c, name in enumerate(cache.class_names):
        _, rec = resynthesize(load_clip(Path(part.root) / part.files[c]), method="griffinlim", n_iter=2)
        np.testing.assert_array_equal(vocoded[name], stub.embed(rec.numpy()))
    with pytest.raises(DataError, match="has no held-out clips"):
        embed_clips(part.subset(np.array([0])), embedder=stub, what="held-out")
