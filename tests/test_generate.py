"""Tests of occ.synthesis.generate: per-sample seeds make samples independent of batch size and order; standing
statistics; G -> mels -> audio as the evaluation makes it; the class names of a run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from occ.data.datasets import denormalize_mel
from occ.errors import ConfigError, DataError
from occ.synthesis.generate import (SEED_STRIDE, chosen_seeds, class_names_of, eval_seeds, evaluation_mels, generate_clips,
                                    generate_mels, latents, standing_stats)
from occ.synthesis.vocoder import vocode
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


def test_chosen_seeds_are_the_evaluations_in_the_order_asked():
    labels, seeds, index = chosen_seeds([2, 0], first=1, n=2, n_classes=3, base_seed=10)
    assert labels.tolist() == [2, 2, 0, 0] and index.tolist() == [1, 2, 1, 2]
    all_labels, all_seeds = eval_seeds(3, 3, base_seed=10)
    evaluation = {(int(c), i % 3): int(s) for i, (c, s) in enumerate(zip(all_labels, all_seeds))}
    assert seeds.tolist() == [evaluation[(int(c), int(i))] for c, i in zip(labels, index)]


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


def test_standing_stats_replace_the_initial_statistics_and_leave_g_alone():
    torch.manual_seed(0)
    g = Generator(n_classes=3, z_dim=16, ch=4)
    before = {k: v.clone() for k, v in g.state_dict().items()}
    calibrated = standing_stats(g, n_batches=2, batch_size=8, seed=1)
    # the original generator is untouched
    for k, v in g.state_dict().items():
        assert torch.equal(v, before[k]), k
    bn_means = [m.running_mean for m in calibrated.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert bn_means and any(m.abs().sum() > 0 for m in bn_means)  # no longer the initial zeros
    # deterministic for a seed, and samples stay independent of the batch size
    again = standing_stats(g, n_batches=2, batch_size=8, seed=1)
    labels, seeds = eval_seeds(2, 3, base_seed=0)
    a = generate_mels(calibrated, labels, seeds, batch_size=6)
    b = generate_mels(again, labels, seeds, batch_size=1)
    torch.testing.assert_close(a, b)


def test_evaluation_mels_and_clips_are_standing_stats_then_generation_then_the_vocoder(generator):
    """One path from G to audio: the normalised mels D reads, their natural-log mels and the vocoder's audio."""
    labels, seeds = eval_seeds(2, 3, base_seed=4)
    want = generate_mels(standing_stats(generator, seed=4), labels, seeds)
    x = evaluation_mels(generator, labels, seeds, base_seed=4)
    assert torch.equal(x, want) and x.min() >= -1 and x.max() <= 1
    mels, wavs = generate_clips(generator, labels, seeds, base_seed=4, gl_iters=2)
    assert torch.equal(mels, denormalize_mel(want))
    assert wavs.dtype == np.float32 and wavs.shape == (6, 88200)
    assert np.array_equal(wavs, vocode(mels, method="griffinlim", n_iter=2, device="cpu").numpy())


def test_class_names_of_a_run(tmp_path):
    from occ.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "checkpoint.pt", {"kind": "gan", "step": 0, "n_classes": 2, "class_names": ["Rain", "Dog"]})
    assert class_names_of(tmp_path) == ["Rain", "Dog"]
    save_checkpoint(tmp_path / "checkpoint.pt", {"kind": "gan", "step": 0, "n_classes": 2, "class_names": None})
    assert class_names_of(tmp_path) == ["class 0", "class 1"]
