"""The probe's confusion measures (occ.metrics.confusion) against brute force, and the per-seed reading of a
run's clips (occ.report.checks.clips_table)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from occ.metrics.confusion import (CLASS_BLIND, OTHER_LABELS, OWN_LABELS, confusion, confusion_metrics, mi_null95,
                                   mutual_information, own_label_classes, probe_confusion, reading,
                                   relabelled_accuracy)
from occ.metrics.probe import LinearProbe
from occ.report.checks import clips_table, recognisable_sentences
from occ.report.markdown import readable, to_markdown


def _shifted(n=4, per_class=10, seed=0):
    """Predictions mostly one class off the requested one: class-distinct, under other labels."""
    rng = np.random.default_rng(seed)
    req = np.repeat(np.arange(n), per_class)
    pred = np.where(rng.random(len(req)) < 0.7, (req + 1) % n, rng.integers(0, n, len(req)))
    return req, pred, rng


def test_measures_against_brute_force():
    n = 4
    req, pred, rng = _shifted(n)
    conf = confusion(req, pred, n)
    assert conf.sum() == 40
    assert all(conf[r, p] == np.sum((req == r) & (pred == p)) for r in range(n) for p in range(n))
    # MI by the definition, from the joint and marginal frequencies of the samples
    p_rp = {(r, p): np.mean((req == r) & (pred == p)) for r in range(n) for p in range(n)}
    mi = sum(v * math.log2(v / (np.mean(req == r) * np.mean(pred == p))) for (r, p), v in p_rp.items() if v > 0)
    assert mutual_information(conf) == pytest.approx(mi)
    # best relabelling by trying all n! of them
    best = max(sum(conf[r, perm[r]] for r in range(n)) for perm in itertools.permutations(range(n))) / 40
    assert relabelled_accuracy(conf) == pytest.approx(best)
    assert relabelled_accuracy(conf) > float((req == pred).mean())
    # classes most often predicted as themselves, row by row
    assert own_label_classes(conf) == sum(int(conf[r, r] > max(conf[r, p] for p in range(n) if p != r))
                                          for r in range(n))
    # predictions that ignore the requested class: MI within the shuffled null; dependent ones far above it
    blind = rng.integers(0, n, 40)
    assert mutual_information(confusion(req, blind, n)) <= mi_null95(req, blind, n) + 0.05
    assert mutual_information(conf) > mi_null95(req, pred, n)


def test_null_is_the_95th_percentile_of_shuffled_mi():
    req, pred, _ = _shifted()
    rng = np.random.default_rng(3)
    shuffled = [mutual_information(confusion(rng.permutation(req), pred, 4)) for _ in range(50)]
    assert mi_null95(req, pred, 4, permutations=50, seed=3) == pytest.approx(np.quantile(shuffled, 0.95))


def test_metrics_from_the_matrix_equal_those_from_the_samples():
    req, pred, _ = _shifted()
    conf = confusion(req, pred, 4)
    m = confusion_metrics(conf, permutations=50)
    assert m["probe_mi_bits"] == pytest.approx(mutual_information(conf))
    # the null from the matrix rebuilds the same (requested, predicted) multiset; a permutation of it gives the
    # same distribution of shuffled MIs, so compare against the samples sorted by requested class
    order = np.lexsort((pred, req))
    assert m["probe_mi_null95"] == pytest.approx(mi_null95(req[order], pred[order], 4, permutations=50))
    assert m["probe_relabelled_accuracy"] == pytest.approx(relabelled_accuracy(conf))
    assert m["probe_own_label_classes"] == own_label_classes(conf) == 0
    assert all(isinstance(v, (int, float)) for v in m.values())  # DVC metrics: numbers only


def test_reading_tells_the_three_cases_apart():
    assert reading(0.1, 0.12, 7, 7) == CLASS_BLIND  # MI not above the null, whatever the diagonal
    assert reading(1.5, 0.1, 4, 7) == OWN_LABELS
    assert reading(1.5, 0.1, 3, 7) == OTHER_LABELS
    identity = confusion(np.repeat(np.arange(5), 8), np.repeat(np.arange(5), 8), 5)
    m = confusion_metrics(identity, permutations=20)
    assert m["probe_relabelled_accuracy"] == 1.0 and m["probe_own_label_classes"] == 5
    assert reading(m["probe_mi_bits"], m["probe_mi_null95"], 5, 5) == OWN_LABELS
    assert m["probe_mi_bits"] == pytest.approx(math.log2(5))


def test_probe_confusion_counts_the_probes_predictions():
    names = ["a", "b", "c"]
    # a probe on 1-d features that predicts class round(x) (logits -(x - k)^2 up to a constant: linear in x)
    k = np.arange(3.0)
    probe = LinearProbe(names, mean=np.zeros(1), scale=np.ones(1), coef=(2 * k)[:, None], intercept=-k ** 2,
                        train_accuracy=1.0)
    emb = {"a": np.array([[0.0], [1.1], [0.2]]), "b": np.array([[2.0], [2.1]]), "c": np.array([[1.9], [0.9]])}
    conf = probe_confusion(probe, emb)
    assert list(conf.index) == names and list(conf.columns) == names and conf.index.name == "requested"
    assert conf.to_numpy().tolist() == [[2, 1, 0], [0, 0, 2], [0, 1, 1]]


def test_clips_table_reads_each_seed():
    def m(acc, mi, null, own, loss):
        return {"probe_accuracy": acc, "probe_mi_bits": mi, "probe_mi_null95": null, "loss": loss, "tau_d": 0.1,
                "tau_c": 0.1, "probe_relabelled_accuracy": max(acc, 0.5), "probe_own_label_classes": own,
                "n_classes": 7, "d_projection": loss != "none"}

    metrics = {"contragan": {1: m(0.1, 1.4, 0.1, 1, "2c"), 0: m(0.05, 0.05, 0.1, 0, "2c")},
               "o2c": {0: m(0.6, 1.5, 0.1, 5, "o2c"),
                       2: {"probe_accuracy": 0.5, "loss": "o2c", "tau_d": 0.1, "tau_c": 0.1,
                           "d_projection": True}}}  # 2: without the MI
    t = clips_table(metrics)
    assert [(r.variant, r.seed) for r in t.itertuples()] == [("contragan", 0), ("contragan", 1), ("o2c", 0)]
    assert list(t["clips"]) == [CLASS_BLIND, OTHER_LABELS, OWN_LABELS]
    assert list(t["own_label_classes"]) == ["0 of 7", "1 of 7", "5 of 7"]
    assert list(t["recognisable"]) == ["no", "no", "yes"]  # probe accuracy at least 0.5
    assert recognisable_sentences(t) == ["ContraGAN (2C): recognisable in 0 of 2 seeds.",
                                         "O2C-GAN: recognisable in 1 of 1 seeds (0)."]
    md = to_markdown(readable(t))
    assert "the clips are" in md and "classes recognised as themselves" in md and "recognisable (probe >= 0.5)" in md and "| O2C-GAN | 0 |" in md
