"""Tests of occ.nets.discriminator: D1 / D2 / h / e split, shapes, spectral norm, gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from occ.data.audio import N_FRAMES, N_MELS
from occ.nets.discriminator import DiscOutput, Discriminator, space_to_depth
from occ.errors import ConfigError, DataError
from occ.nets.layers import WIDTHS

from net_checks import assert_every_parameter_gets_gradient, n_params, spectral_norm_sigmas

N_CLASSES = 7


def _batch(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, N_MELS, N_FRAMES, generator=g) * 2 - 1
    y = torch.randint(0, N_CLASSES, (n,), generator=g)
    return x, y


@pytest.mark.parametrize("width", ["embedded", "paper"])
def test_output_shapes_and_parts(width):
    torch.manual_seed(0)
    # The layout of each width, at a narrow base width to stay fast.
    d = Discriminator(
        n_classes=N_CLASSES, proj_dim=128, **{**WIDTHS[width]["discriminator"], "ch": 4}
    )
    x, y = _batch(2)
    out = d(x, y)
    assert isinstance(out, DiscOutput)
    f = d.feature_dim
    assert out.logits.shape == (2,)
    assert out.embedding.shape == (2, 128)
    assert out.features.shape == (2, f)
    assert d.class_embedding(y).shape == (2, 128)
    assert isinstance(d.class_embed, nn.Embedding) and d.class_embed.weight.shape == (N_CLASSES, 128)
    # The parts compose as in the paper: logits = D2(D1(x)), embedding = h(D1(x)).
    d.eval()
    with torch.no_grad():
        out = d(x, y)
        feats = d.d1(x)
        assert torch.allclose(out.features, feats)
        assert torch.allclose(out.logits, d.d2(feats, y))
        assert torch.allclose(out.embedding, d.head(feats))
    # Sum pooling of non-negative activations: features are >= 0.
    assert (out.features >= 0).all()
    assert f == 4 * WIDTHS[width]["discriminator"]["ch_mult"][-1]


def test_parameter_counts_of_both_widths():
    small = Discriminator(n_classes=N_CLASSES, **WIDTHS["embedded"]["discriminator"])
    big = Discriminator(n_classes=N_CLASSES, **WIDTHS["paper"]["discriminator"])
    print(f"\nDiscriminator parameters: embedded {n_params(small):,}  paper {n_params(big):,}")
    assert n_params(big) > 20 * n_params(small)
    assert small.feature_dim == 64 and big.feature_dim == 512


@pytest.mark.parametrize("projection", [False, True])
def test_gradients_reach_every_parameter(projection):
    torch.manual_seed(0)
    d = Discriminator(
        n_classes=N_CLASSES, projection=projection, **WIDTHS["embedded"]["discriminator"]
    )
    x, y = _batch(8, seed=1)
    y = torch.arange(8) % N_CLASSES  # every class, so every class-embedding row gets a gradient
    out = d(x, y)
    loss = (
        out.logits.sum()
        + (out.embedding * torch.randn_like(out.embedding)).sum()
        + (d.class_embedding(y) * torch.randn(8, 128)).sum()
    )
    loss.backward()
    assert_every_parameter_gets_gradient(d)
    assert (d.d2.embed is not None) == projection


def test_projection_makes_logits_depend_on_class():
    torch.manual_seed(0)
    x, _ = _batch(3, seed=2)
    for projection in (False, True):
        d = Discriminator(n_classes=N_CLASSES, ch=4, projection=projection).eval()
        with torch.no_grad():
            a = d(x, torch.tensor([0, 0, 0])).logits
            b = d(x, torch.tensor([4, 4, 4])).logits
        assert torch.equal(a, b) != projection


def test_spectral_norm_everywhere_and_sigma_one():
    torch.manual_seed(0)
    d = Discriminator(n_classes=N_CLASSES, ch=4, projection=True)
    d.train()
    with torch.no_grad():
        for _ in range(3):
            d(*_batch(2))
    sigmas = dict(spectral_norm_sigmas(d))
    convs_and_linears = [
        n for n, m in d.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding))
    ]
    # Every layer of D1, D2 and h is spectrally normalised; e (class_embed) is a plain embedding.
    assert set(convs_and_linears) - set(sigmas) == {"class_embed"}
    for name, sigma in sigmas.items():
        assert sigma == pytest.approx(1.0, abs=0.05), name


def test_space_to_depth_is_a_lossless_rearrangement():
    x = torch.arange(2 * 1 * 4 * 6, dtype=torch.float32).view(2, 1, 4, 6)
    y = space_to_depth(x, factors=(2, 2))
    assert y.shape == (2, 4, 2, 3)
    assert torch.equal(y[:, 0], x[:, 0, 0::2, 0::2])
    assert torch.equal(y[:, 1], x[:, 0, 0::2, 1::2])
    assert torch.equal(y[:, 3], x[:, 0, 1::2, 1::2])
    assert torch.equal(y.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3)))


def test_bad_configuration_and_inputs():
    with pytest.raises(ConfigError, match="ch_mult"):
        Discriminator(n_classes=2, ch_mult=(1, 2), downs=((2, 2),))
    with pytest.raises(ConfigError, match="resample"):
        Discriminator(n_classes=2, resample="strided")
    d = Discriminator(n_classes=2, ch=2)
    with pytest.raises(DataError, match="x must"):
        d(torch.zeros(2, 80, 344), torch.tensor([0, 1]))
    with pytest.raises(DataError, match="y must"):
        d(torch.zeros(2, 1, 80, 344), torch.tensor([0]))
