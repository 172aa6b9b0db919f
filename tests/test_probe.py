"""The recognisability probe: its predictions equal scikit-learn's own, it survives a save/load, and it fails loudly."""

import numpy as np
import pytest
import torch

from occ.errors import DataError
from occ.metrics.d_embeddings import within_class_distance
from occ.metrics.probe import clip_features, encoder_accuracy, fit_probe, load_probe


def _clusters(rng, n_classes=4, n=30, w=3, d=16, sep=4.0):
    centres = rng.normal(size=(n_classes, d)) * sep
    return {f"class{c}": centres[c] + rng.normal(size=(n, w, d)) for c in range(n_classes)}


def test_predictions_match_scikit_learn_on_the_same_features():
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    train = _clusters(rng, sep=0.1)  # overlapping classes: some clips are misclassified
    probe = fit_probe(train)
    x = np.concatenate([e.mean(axis=1) for e in train.values()])
    y = np.concatenate([np.full(len(e), i) for i, e in enumerate(train.values())])
    scaler = StandardScaler().fit(x)
    clf = LogisticRegression(C=1.0, max_iter=2000).fit(scaler.transform(x), y)
    test = _clusters(np.random.default_rng(1), sep=0.1)
    xt = np.concatenate([e.mean(axis=1) for e in test.values()])
    np.testing.assert_array_equal(probe.predict(np.concatenate(list(test.values()))), clf.predict(scaler.transform(xt)))
    assert probe.train_accuracy == pytest.approx(clf.score(scaler.transform(x), y))
    assert 0.25 < probe.train_accuracy < 1.0


def test_accuracy_per_class_and_average():
    rng = np.random.default_rng(2)
    train = _clusters(rng)
    probe = fit_probe(train)
    acc = probe.accuracy(train)
    assert list(acc.index) == list(train) + ["Average"]
    assert acc["Average"] == pytest.approx(acc.drop("Average").mean())
    assert acc["Average"] == 1.0  # well separated
    # every clip of class0 relabelled as class1: none recognised
    swapped = probe.accuracy({"class1": train["class0"]})
    assert swapped["class1"] == 0.0
    assert probe.chance == 0.25


def test_two_classes():
    rng = np.random.default_rng(3)
    train = _clusters(rng, n_classes=2)
    probe = fit_probe(train)
    assert probe.coef.shape[0] == 2
    assert probe.accuracy(train)["Average"] == 1.0


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(4)
    train = _clusters(rng, sep=1.0)
    probe = fit_probe(train)
    probe.save(tmp_path / "probe.npz")
    again = load_probe(tmp_path / "probe.npz")
    x = np.concatenate(list(train.values()))
    np.testing.assert_array_equal(again.logits(x), probe.logits(x))
    assert again.class_names == probe.class_names and again.train_accuracy == probe.train_accuracy


def test_errors(tmp_path):
    rng = np.random.default_rng(5)
    probe = fit_probe(_clusters(rng))
    with pytest.raises(DataError, match="no probe"):
        load_probe(tmp_path / "missing.npz")
    (tmp_path / "bad.npz").write_bytes(b"not an npz")
    with pytest.raises(DataError, match="not a probe"):
        load_probe(tmp_path / "bad.npz")
    with pytest.raises(DataError, match="features"):
        probe.predict(np.zeros((2, 3, 8)))
    with pytest.raises(DataError, match="not one the probe knows"):
        probe.accuracy({"dog": np.zeros((2, 3, 16))})
    with pytest.raises(DataError, match="at least 2 classes"):
        fit_probe({"a": np.zeros((3, 1, 4))})
    with pytest.raises(DataError, match="NaN"):
        fit_probe({"a": np.full((3, 1, 4), np.nan), "b": np.zeros((3, 1, 4))})
    with pytest.raises(DataError):
        clip_features(np.zeros(5))


class _FakeD(torch.nn.Module):
    """D whose embedding is the first 3 mel values of the first frame (so the test knows them)."""

    def forward(self, x, y):
        return type("Out", (), {"embedding": x[:, 0, :3, 0]})()


def test_within_class_distance_against_brute_force():
    rng = np.random.default_rng(6)
    mels = torch.from_numpy(rng.normal(size=(9, 80, 4)).astype(np.float32))
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 1, 2, 2])
    got = within_class_distance(_FakeD(), mels, labels, batch_size=4)
    from occ.data.datasets import normalize_mel

    emb = normalize_mel(mels)[:, :3, 0].double().numpy()
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    per_class = []
    for c in range(3):
        e = emb[labels.numpy() == c]
        d = [np.linalg.norm(e[i] - e[j]) for i in range(len(e)) for j in range(len(e)) if i != j]
        per_class.append(np.mean(d))
    assert got == pytest.approx(np.mean(per_class), rel=1e-6)  # embeddings normalised in float32


def test_encoder_accuracy_reads_the_classifier_on_the_clips_normalised_mels():
    """The fine-tuned encoder's judgement of clips: argmax of its classifier on normalize_mel(log_mel(clip))."""
    from occ.config import ModelConfig
    from occ.data.datasets import normalized_log_mel
    from occ.nets.models import build_encoder

    torch.manual_seed(0)
    encoder = build_encoder(ModelConfig(enc_width=4, proj_dim=8), n_classes=3).eval()
    wavs = np.random.default_rng(1).uniform(-0.3, 0.3, (5, 88200)).astype(np.float32)
    with torch.no_grad():
        pred = encoder.classify(normalized_log_mel(torch.from_numpy(wavs))[:, None]).argmax(dim=1)
    for labels in (pred, (pred + 1) % 3, torch.tensor([int(pred[0]), 0, 1, 2, int(pred[4])])):
        want = float((pred == labels).float().mean())
        assert encoder_accuracy(encoder, wavs, labels) == pytest.approx(want)
        assert encoder_accuracy(encoder, wavs, labels, batch_size=2) == pytest.approx(want)
    # one computation of the encoder's accuracy, whether on clips or on log-mels (the supcon stage's): the same number
    from occ.nets.encoder import classification_accuracy

    labels = torch.tensor([int(pred[0]), 0, 1, 2, int(pred[4])])
    mels = normalized_log_mel(torch.from_numpy(wavs))
    assert encoder_accuracy(encoder, wavs, labels) == classification_accuracy(encoder, mels, labels)
    assert classification_accuracy(encoder, mels, labels) == int((pred == labels).sum()) / 5  # a count over n
