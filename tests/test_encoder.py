"""Tests of occ.nets.encoder: ResNet18 shapes, unit embeddings, gradients, and replayable augmentations."""

from __future__ import annotations

import pytest
import torch
import torchaudio

from occ.nets.encoder import SILENCE, Encoder, apply_augment, augment, draw_augment_params
from occ.errors import ConfigError, DataError
from occ.nets.generator import WIDTHS

from net_checks import assert_every_parameter_gets_gradient, n_params

N_CLASSES = 7


def _x(n: int, seed: int = 0, frames: int = 344) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 80, frames, generator=g) * 2 - 1


@pytest.mark.parametrize("stem", ["cifar", "strided"])
def test_shapes_and_unit_embeddings(stem):
    torch.manual_seed(0)
    enc = Encoder(n_classes=N_CLASSES, width=4, proj_dim=128, stem=stem)
    x = _x(3)
    assert enc.features(x).shape == (3, 32)
    emb = enc.embed(x)
    assert emb.shape == (3, 128)
    assert torch.allclose(emb.norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.equal(enc(x), emb)
    assert enc.classify(x).shape == (3, N_CLASSES)


def test_parameter_counts_of_both_widths():
    small = Encoder(n_classes=N_CLASSES, **WIDTHS["embedded"]["encoder"])
    big = Encoder(n_classes=N_CLASSES, **WIDTHS["paper"]["encoder"])
    print(f"\nEncoder parameters: embedded {n_params(small):,}  paper {n_params(big):,}")
    assert small.feature_dim == 8 * WIDTHS["embedded"]["encoder"]["width"]
    assert big.feature_dim == 512  # ResNet18 at width 64
    # ResNet18 body (11.2 M with 3 input channels) + heads (512*512+512 + 512*128+128 + 512*7+7).
    assert 11_000_000 < n_params(big) < 11_600_000


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    enc = Encoder(n_classes=N_CLASSES, **WIDTHS["embedded"]["encoder"])
    x = _x(4, seed=1)
    loss = (enc.embed(x) * torch.randn(4, 128)).sum() + (
        enc.classify(x) * torch.randn(4, N_CLASSES)
    ).sum()
    loss.backward()
    assert_every_parameter_gets_gradient(enc)


def test_input_shape_and_config_errors():
    with pytest.raises(ConfigError, match="stem"):
        Encoder(n_classes=2, stem="imagenet7x7")
    enc = Encoder(n_classes=2, width=2)
    with pytest.raises(DataError, match="x must"):
        enc.embed(torch.zeros(2, 80, 344))


def test_augment_replay_and_seeds():
    x = _x(6)
    p1 = draw_augment_params(6, n_frames=344, generator=torch.Generator().manual_seed(3))
    p2 = draw_augment_params(6, n_frames=344, generator=torch.Generator().manual_seed(3))
    for k in p1:
        assert torch.equal(p1[k], p2[k])
    assert torch.equal(apply_augment(x, p1), apply_augment(x, p2))
    a = augment(x, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, apply_augment(x, p1))
    b = augment(x, generator=torch.Generator().manual_seed(4))
    assert not torch.equal(a, b)
    # Parameters vary per sample.
    assert len(set(p1["fade_in"].tolist())) > 1 or len(set(p1["mask_len"].tolist())) > 1


def test_augment_params_ranges():
    p = draw_augment_params(500, n_frames=344, generator=torch.Generator().manual_seed(0))
    assert p["fade_in"].min() >= 0 and p["fade_in"].max() <= 86
    assert p["fade_out"].max() <= 86
    assert p["mask_len"].max() <= 43
    assert p["mask_start"].min() >= 0
    assert (p["mask_start"] + p["mask_len"]).max() <= 344
    assert p["fade_in"].dtype == torch.int64


def test_fade_matches_torchaudio_with_silence_fill():
    x = _x(3, seed=2)
    fi, fo = [0, 17, 86], [30, 0, 1]
    params = {
        "fade_in": torch.tensor(fi),
        "fade_out": torch.tensor(fo),
        "mask_start": torch.zeros(3, dtype=torch.int64),
        "mask_len": torch.zeros(3, dtype=torch.int64),
    }
    got = apply_augment(x, params)
    for i in range(3):
        fade = torchaudio.transforms.Fade(fade_in_len=fi[i], fade_out_len=fo[i])
        want = fade(x[i] - SILENCE) + SILENCE
        assert torch.allclose(got[i], want, atol=1e-6)


def test_mask_fills_with_silence_and_leaves_the_rest():
    x = _x(2, seed=3)
    params = {
        "fade_in": torch.zeros(2, dtype=torch.int64),
        "fade_out": torch.zeros(2, dtype=torch.int64),
        "mask_start": torch.tensor([10, 300]),
        "mask_len": torch.tensor([5, 44]),
    }
    y = apply_augment(x, params)
    assert (y[0, ..., 10:15] == -1.0).all() and torch.equal(y[0, ..., :10], x[0, ..., :10])
    assert torch.equal(y[0, ..., 15:], x[0, ..., 15:])
    assert (y[1, ..., 300:] == -1.0).all() and torch.equal(y[1, ..., :300], x[1, ..., :300])
    # Works on (N, n_mels, T) too, and on float64.
    y2 = apply_augment(x[:, 0].double(), params)
    assert y2.dtype == torch.float64 and torch.allclose(y2.float(), y[:, 0])


def test_augment_errors():
    x = _x(2)
    p = draw_augment_params(3, n_frames=344, generator=torch.Generator().manual_seed(0))
    with pytest.raises(DataError, match="n=2"):
        apply_augment(x, p)
    p = draw_augment_params(2, n_frames=100, generator=torch.Generator().manual_seed(0))
    with pytest.raises(DataError, match="n_frames=344"):
        apply_augment(x, p)
    with pytest.raises(ConfigError, match="params lacks"):
        apply_augment(x, {"fade_in": torch.zeros(2)})
    with pytest.raises(ConfigError, match="max_fade"):
        draw_augment_params(2, n_frames=10, generator=torch.Generator(), max_fade=11)
