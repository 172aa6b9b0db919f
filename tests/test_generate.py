"""Tests of occ.synthesis.generate: per-sample seeds make samples independent of batch size and order."""

from __future__ import annotations

import pytest
import torch

from occ.errors import ConfigError, DataError
from occ.synthesis.generate import SEED_STRIDE, eval_seeds, generate_mels, latents
from occ.nets.generator import Generator


@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(0)
    g = Generator(n_classes=3, z_dim=16, ch=4)
    # Put non-trivial running statistics in the BatchNorm layers (eval mode uses them).
    g.train()
    with torch.no_grad():
        g(torch.randn(8, 16), torch.arange(8) % 3)
    return g


def test_eval_seeds_fixed_per_class_and_index():
    labels, seeds = eval_seeds(4, 3, base_seed=10)
    assert labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert seeds[:4].tolist() == [10, 11, 12, 13] and seeds[4] == 10 + SEED_STRIDE
    assert len(set(seeds.tolist())) == 12
    labels2, seeds2 = eval_seeds(2, 3, base_seed=10)
    assert seeds2.tolist() == [s for s, i in zip(seeds.tolist(), list(range(4)) * 3) if i < 2]
    with pytest.raises(ConfigError, match="n_per_class"):
        eval_seeds(0, 3, base_seed=0)


def test_generation_independent_of_batch_size_and_order(generator):
    labels, seeds = eval_seeds(3, 3, base_seed=0)
    a = generate_mels(generator, labels, seeds, z_dim=16, batch_size=9)
    b = generate_mels(generator, labels, seeds, z_dim=16, batch_size=2)
    c = generate_mels(generator, labels, seeds, batch_size=1)  # z_dim from the generator
    assert a.shape == (9, 80, 344) and a.dtype == torch.float32
    assert a.min() >= -1 and a.max() <= 1
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    torch.testing.assert_close(a, c, atol=1e-5, rtol=0)
    perm = torch.tensor([8, 0, 4, 2, 7, 1, 3, 6, 5])
    d = generate_mels(generator, labels[perm], seeds[perm], z_dim=16, batch_size=4)
    torch.testing.assert_close(d, a[perm], atol=1e-5, rtol=0)
    # Different seeds, different samples; the generator's mode is restored.
    assert not torch.allclose(a[0], a[1])
    assert generator.training


def test_latents_and_errors(generator):
    z = latents([5, 5, 6], z_dim=16)
    assert torch.equal(z[0], z[1]) and not torch.equal(z[0], z[2])
    assert torch.equal(z[0], torch.randn(16, generator=torch.Generator().manual_seed(5)))
    with pytest.raises(DataError, match="one seed per sample"):
        generate_mels(generator, [0, 1], [1], z_dim=16)
    with pytest.raises(DataError, match=r"labels must lie in \[0, 3\)"):
        generate_mels(generator, [0, 3], [1, 2], z_dim=16)


def test_a_sample_is_bit_identical_whatever_shares_its_batch(generator):
    """Every forward pass has the same shape, so one clip asked for alone is the clip of the full set."""
    labels, seeds = eval_seeds(30, 3, base_seed=7)
    full = generate_mels(generator, labels, seeds, batch_size=64)  # batches of 64 and 26 (padded)
    for k in (0, 31, 89):
        alone = generate_mels(generator, labels[k:k + 1], seeds[k:k + 1], batch_size=64)
        assert torch.equal(alone[0], full[k])
    part = generate_mels(generator, labels[40:50], seeds[40:50], batch_size=64)
    assert torch.equal(part, full[40:50])
