"""Evaluation glue: standing statistics, round-robin picks, embeddings on disk."""

import numpy as np
import torch

from occ.metrics.embedding_files import load_embeddings, save_embeddings
from occ.metrics.embeddings import Embedder
from occ.metrics.evaluate import evaluate_generator, generate_clips, spread_over_classes, standing_stats
from occ.synthesis.generate import eval_seeds, generate_mels
from occ.nets.generator import Generator


def test_spread_over_classes_is_round_robin():
    labels = np.array([0, 0, 0, 1, 1, 2])
    assert spread_over_classes(labels, 3).tolist() == [0, 3, 5]
    assert spread_over_classes(labels, 5).tolist() == [0, 3, 5, 1, 4]
    assert sorted(spread_over_classes(labels, 6).tolist()) == list(range(6))


def test_embeddings_round_trip(tmp_path):
    emb = {"b": np.random.rand(3, 2, 4), "a": np.random.rand(2, 2, 4)}
    save_embeddings(tmp_path / "e.npz", emb)
    back = load_embeddings(tmp_path / "e.npz")
    assert list(back) == ["b", "a"]
    for k in emb:
        np.testing.assert_array_equal(back[k], emb[k])


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


class _StubEmbedder(Embedder):
    """Four summary statistics of each clip (enough for a covariance)."""

    name, dim, windows_per_clip = "stub", 4, 1

    def _embed_batch(self, wavs):
        return torch.stack([wavs.mean(1), wavs.std(1), wavs.abs().max(1).values, wavs[:, ::2].std(1)], dim=1)[:, None]


def test_generate_clips_gives_the_evaluations_clip(tmp_path):
    """One clip asked for alone (the CLI's path) is the clip the evaluation generated and wrote."""
    from occ.synthesis.submission import write_clip

    torch.manual_seed(0)
    g = Generator(n_classes=3, z_dim=16, ch=4)
    ref = {name: np.random.default_rng(c).standard_normal((5, 1, 4)) for c, name in enumerate(["A", "B", "C"])}
    result = evaluate_generator(g, class_names=["A", "B", "C"], n_per_class=3, base_seed=5, embedder=_StubEmbedder(),
                                reference=ref, gl_iters=2, prdc_k=1, wav_dir=tmp_path / "eval")
    labels, seeds = eval_seeds(3, 3, base_seed=5)
    mels, wavs = generate_clips(g, labels[[4]], seeds[[4]], base_seed=5, gl_iters=2)
    assert torch.equal(mels[0], result.mels[4]) and np.array_equal(wavs[0], result.wavs[4])
    write_clip(tmp_path / "one.wav", wavs[0])
    assert (tmp_path / "one.wav").read_bytes() == (tmp_path / "eval" / "b" / "01.wav").read_bytes()
    _, other = generate_clips(g, labels[[4]], seeds[[4]], base_seed=6, gl_iters=2)  # other standing statistics
    assert not np.array_equal(other[0], wavs[0])
