"""Tests of occ.nets.generator (and the shared blocks and spectral norm of occ.nets.layers)."""

from __future__ import annotations

import pytest
import torch

from occ.data.audio import N_FRAMES, N_MELS
from occ.nets.discriminator import space_to_depth
from occ.errors import ConfigError, DataError
from occ.nets.generator import WIDTHS, Generator, depth_to_space

from net_checks import assert_every_parameter_gets_gradient, n_params, spectral_norm_sigmas

N_CLASSES = 7


@pytest.fixture(scope="module")
def gen() -> Generator:
    torch.manual_seed(0)
    return Generator(n_classes=N_CLASSES, **WIDTHS["embedded"]["generator"])


def test_shape_and_range(gen):
    z = torch.randn(4, 128)
    y = torch.tensor([0, 3, 6, 1])
    x = gen(z, y)
    assert x.shape == (4, 1, N_MELS, N_FRAMES)
    assert x.is_contiguous()
    assert x.min() >= -1.0 and x.max() <= 1.0
    # Not saturated and not constant at initialisation.
    assert x.std() > 1e-3 and x.abs().max() < 1.0


def test_paper_width_shape_and_parameter_counts():
    torch.manual_seed(0)
    paper = Generator(n_classes=N_CLASSES, **WIDTHS["paper"]["generator"])
    embedded = Generator(n_classes=N_CLASSES, **WIDTHS["embedded"]["generator"])
    print(f"\nGenerator parameters: embedded {n_params(embedded):,}  paper {n_params(paper):,}")
    assert n_params(paper) > 5 * n_params(embedded)
    assert len(paper.blocks) == 4 and len(embedded.blocks) == 3
    # The paper layout (four blocks, BigGAN resampling), run at a narrow width to stay fast.
    narrow = Generator(n_classes=N_CLASSES, **{**WIDTHS["paper"]["generator"], "ch": 4}).eval()
    with torch.no_grad():
        x = narrow(torch.randn(2, 128), torch.tensor([1, 2]))
    assert x.shape == (2, 1, N_MELS, N_FRAMES)
    assert x.abs().max() <= 1.0


def test_changing_only_the_class_changes_the_output(gen):
    gen.eval()
    z = torch.randn(3, 128, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a = gen(z, torch.tensor([0, 0, 0]))
        b = gen(z, torch.tensor([5, 5, 5]))
        c = gen(z, torch.tensor([0, 0, 0]))
    gen.train()
    assert torch.equal(a, c)
    assert (a - b).abs().mean() > 1e-4


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    g = Generator(n_classes=N_CLASSES, **WIDTHS["embedded"]["generator"])
    y = torch.arange(N_CLASSES)
    x = g(torch.randn(N_CLASSES, 128), y)
    (x * torch.randn_like(x)).sum().backward()
    assert_every_parameter_gets_gradient(g)


def test_spectral_norm_sigma_is_one_after_training_forwards():
    torch.manual_seed(0)
    g = Generator(n_classes=N_CLASSES, ch=4)
    g.train()
    with torch.no_grad():
        for _ in range(3):
            g(torch.randn(2, 128), torch.randint(0, N_CLASSES, (2,)))
    sigmas = spectral_norm_sigmas(g)
    assert len(sigmas) > 10
    for name, sigma in sigmas:
        assert sigma == pytest.approx(1.0, abs=0.05), name


def test_without_spectral_norm_has_no_parametrizations():
    g = Generator(n_classes=2, ch=4, sn=False)
    assert spectral_norm_sigmas(g) == []


def test_depth_to_space_inverts_space_to_depth():
    x = torch.randn(2, 1, 8, 12)
    for f in ((2, 1), (2, 2), (1, 3)):
        assert torch.equal(depth_to_space(space_to_depth(x, factors=f), factors=f), x)
    # Channel i * b + j is the sub-pixel (i, j).
    y = torch.arange(4.0).view(1, 4, 1, 1)
    assert depth_to_space(y, factors=(2, 2)).flatten().tolist() == [0.0, 1.0, 2.0, 3.0]


def test_bad_configuration_and_inputs(gen):
    with pytest.raises(ConfigError, match="ch_mult"):
        Generator(n_classes=2, ch_mult=(8, 4, 2))
    with pytest.raises(ConfigError, match="80 x 344|scales"):
        Generator(n_classes=2, scales=((2, 2), (2, 2)), ch_mult=(4, 2, 1))
    with pytest.raises(ConfigError, match="resample"):
        Generator(n_classes=2, resample="bilinear")
    with pytest.raises(DataError, match="z must"):
        gen(torch.randn(2, 64), torch.tensor([0, 1]))
    with pytest.raises(DataError, match="y must"):
        gen(torch.randn(2, 128), torch.tensor([0, 1, 2]))


def _noisy(scale: float = 0.3) -> Generator:
    torch.manual_seed(0)
    return Generator(n_classes=N_CLASSES, **{**WIDTHS["embedded"]["generator"], "ch": 4}, noise=scale)  # train mode: batch statistics


def test_noise_input_is_the_tail_of_z_added_at_the_last_block():
    g = _noisy()
    c, h, w = g.noise_shape
    assert (c, h, w) == (4, N_MELS // 2, N_FRAMES) and g.noise_dim == c * h * w
    assert g.z_dim == 128 + g.noise_dim and g.latent_dim == 128
    z = torch.randn(3, g.z_dim, generator=torch.Generator().manual_seed(2))
    y = torch.tensor([0, 4, 6])
    with torch.no_grad():
        # Spectral norm's power iteration moves its vectors on every training-mode call: both paths start from
        # the same state.
        state = {k: v.clone() for k, v in g.state_dict().items()}
        out = g(z, y)
        g.load_state_dict(state)
        # Brute force: the same layers by hand, the noise added once per feature with its channel's scale.
        chunks = torch.tensor_split(z[:, :128], g.n_chunks, dim=1)
        feat = g.linear(chunks[0]).view(3, -1, *g.bottom)
        for block, chunk in zip(g.blocks, chunks[1:]):
            feat = block(feat, torch.cat([g.shared(y), chunk], dim=1))
        for i in range(3):
            for ch in range(c):
                feat[i, ch] += g.noise_scale[ch] * z[i, 128:].reshape(c, h, w)[ch]
        expected = torch.tanh(depth_to_space(g.out_conv(torch.relu(g.out_bn(feat))), factors=g.out_upsample))
    # float32 rounding differs with the thread count (up to about 1e-5 here); noise read one element off moves
    # the output by up to about 1.
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=1e-3)
    # The noise matters, the rest of the latent is read as before.
    z2 = z.clone()
    z2[:, 128:] = torch.randn(3, g.noise_dim)
    with torch.no_grad():
        assert (g(z2, y) - out).abs().mean() > 1e-4
        g.noise_scale.zero_()
        torch.testing.assert_close(g(z2, y), g(z, y))


def test_noise_off_is_biggan_and_bad_scale_is_refused():
    torch.manual_seed(0)
    plain = Generator(n_classes=N_CLASSES, ch=4)
    torch.manual_seed(0)
    zero = Generator(n_classes=N_CLASSES, ch=4, noise=0.0)
    assert plain.z_dim == zero.z_dim == 128 and zero.noise_scale is None
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), zero.state_dict().values()))
    # Turning the noise on leaves the initial weights of every other layer as they were.
    noisy = _noisy()
    torch.manual_seed(0)
    same = Generator(n_classes=N_CLASSES, **{**WIDTHS["embedded"]["generator"], "ch": 4})
    ref = same.state_dict()
    assert all(torch.equal(v, ref[k]) for k, v in noisy.state_dict().items() if k != "noise_scale")
    for bad in (-0.1, float("nan")):
        with pytest.raises(ConfigError, match="noise"):
            Generator(n_classes=N_CLASSES, ch=4, noise=bad)


def test_noise_scale_gets_gradient():
    g = _noisy()
    x = g(torch.randn(N_CLASSES, g.z_dim), torch.arange(N_CLASSES))
    (x * torch.randn_like(x)).sum().backward()
    assert_every_parameter_gets_gradient(g)


def test_base_width_has_one_source():
    """G's and D's constructor defaults and ``ModelConfig``'s widths are the embedded preset of ``WIDTHS``."""
    import inspect

    from occ.config import ModelConfig
    from occ.nets.discriminator import Discriminator

    embedded = WIDTHS["embedded"]
    for cls, key, field in ((Generator, "generator", "g_ch"), (Discriminator, "discriminator", "d_ch")):
        defaults = {k: p.default for k, p in inspect.signature(cls).parameters.items()}
        for name, value in embedded[key].items():
            assert defaults[name] == value, (cls.__name__, name)
        assert getattr(ModelConfig(), field) == embedded[key]["ch"]
