"""The evaluation's assembly: generation and metrics of one generator, the step-0 numbers, embeddings on disk."""

import numpy as np
import pytest
import pandas as pd
import torch

from occ.metrics.frechet import embedding_stats, frechet_distance
from occ.metrics.embedding_files import load_embeddings, save_embeddings
from occ.metrics.embeddings import Embedder
from occ.metrics.evaluate import evaluate_generator, metrics_of, same_weights, step0_metrics
from occ.metrics.probe import fit_probe
from occ.synthesis.generate import eval_seeds, generate_clips
from occ.nets.generator import Generator


def test_embeddings_round_trip(tmp_path):
    emb = {"b": np.random.rand(3, 2, 4), "a": np.random.rand(2, 2, 4)}
    save_embeddings(tmp_path / "e.npz", emb)
    back = load_embeddings(tmp_path / "e.npz")
    assert list(back) == ["b", "a"]
    for k in emb:
        np.testing.assert_array_equal(back[k], emb[k])


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


def test_the_tables_and_step0_numbers_an_evaluation_writes():
    """`table(probe=True)` is the fad.csv table; `step0_metrics` the step-0 numbers every run compares with."""
    torch.manual_seed(0)
    g = Generator(n_classes=3, z_dim=16, ch=4)
    names = ["A", "B", "C"]
    rng = np.random.default_rng(0)
    ref = {name: rng.standard_normal((6, 1, 4)) for name in names}
    probe = fit_probe({name: rng.standard_normal((6, 1, 4)) + 3 * c for c, name in enumerate(names)})
    result = evaluate_generator(g, class_names=names, n_per_class=3, base_seed=5, embedder=_StubEmbedder(),
                                reference=ref, gl_iters=2, prdc_k=1, probe=probe)
    table = result.table(probe=True)
    assert list(table.columns) == [*result.table().columns, "probe"]
    pd.testing.assert_series_equal(table["probe"], result.probe.rename("probe").reindex(table.index), check_names=False)
    numbers = step0_metrics(result)
    assert numbers == {"fad_mean": float(result.fad.loc["Average", "fad"]), "encoder_accuracy": None,
                       "probe_accuracy": float(result.probe["Average"]), "fad_label_free": result.fad_label_free}
    pooled = np.concatenate([result.embeddings[n].reshape(-1, 4) for n in names])
    assert result.fad_label_free == pytest.approx(
        frechet_distance(*embedding_stats(np.concatenate([ref[n].reshape(-1, 4) for n in names])),
                         *embedding_stats(pooled)), rel=1e-9)
    m = metrics_of(result.table(), table, accuracy=0.5, step0_accuracy=numbers["encoder_accuracy"],
                   probe=float(result.probe["Average"]), step0_probe=numbers["probe_accuracy"],
                   fad_label_free=result.fad_label_free, step0_fad_label_free=numbers["fad_label_free"])
    assert m["fad_label_free"] == m["fad_label_free_step0"] == result.fad_label_free
    assert m["fad_mean"] == m["fad_mean_step0"] == numbers["fad_mean"] and m["n_clips_per_class"] == 3
    assert m["probe_accuracy_step0"] == numbers["probe_accuracy"] and "encoder_accuracy_on_generated_step0" not in m


def test_same_weights_is_bit_identity():
    torch.manual_seed(0)
    a = Generator(n_classes=3, z_dim=16, ch=4)
    b = Generator(n_classes=3, z_dim=16, ch=4)
    b.load_state_dict(a.state_dict())
    assert same_weights(a, b)
    with torch.no_grad():
        next(b.parameters()).view(-1)[0] += 1e-7
    assert not same_weights(a, b)
