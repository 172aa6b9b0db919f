"""Class-blind or mislabelled? The recognisability probe's confusion matrix on one run's generated clips.

The probe's accuracy (:mod:`occ.metrics.probe`) is the share of generated clips assigned to the class G was asked
for. A low accuracy has two readings. Either G ignores its class (every class's clips sound alike, so the probe's
predictions do not depend on the class asked for), or G makes class-distinct clips that sound like other classes
(the predictions depend on the class asked for, through the wrong mapping). The confusion matrix tells them apart:

* ``mi_bits``: the mutual information between the requested and the predicted class, in bits (at most
  log2 n_classes), with ``mi_null95``, its 95th percentile when the requested classes are shuffled
  (`permutations` shuffles, a fixed seed): an MI above it means the clips depend on the class asked for;
* ``relabelled_accuracy``: the accuracy under the best one-to-one relabelling of the classes (Hungarian); high
  beside a low accuracy means class-distinct but mislabelled clips;
* ``own_label_classes``: how many classes' clips are most often recognised as their own class.

`reading` turns these into one phrase per run: "class-blind", "class-distinct, mostly under their own labels" or
"class-distinct, mostly under other labels".
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

__all__ = ["confusion", "mutual_information", "mi_null95", "relabelled_accuracy", "own_label_classes",
           "probe_confusion", "confusion_metrics", "reading", "CLASS_BLIND", "OWN_LABELS", "OTHER_LABELS"]

CLASS_BLIND = "class-blind"
OWN_LABELS = "class-distinct, mostly under their own labels"
OTHER_LABELS = "class-distinct, mostly under other labels"


def confusion(requested: np.ndarray, predicted: np.ndarray, n: int) -> np.ndarray:
    """Counts ``conf[requested, predicted]`` of ``n`` classes (int64, ``(n, n)``)."""
    conf = np.zeros((n, n), dtype=np.int64)
    np.add.at(conf, (np.asarray(requested), np.asarray(predicted)), 1)
    return conf


def mutual_information(conf: np.ndarray) -> float:
    """Mutual information in bits of a contingency table ``conf[requested, predicted]`` of counts."""
    p = conf / conf.sum()
    pr, pp = p.sum(1, keepdims=True), p.sum(0, keepdims=True)
    nz = p > 0
    return float((p[nz] * np.log2(p[nz] / (pr @ pp)[nz])).sum())


def mi_null95(requested: np.ndarray, predicted: np.ndarray, n: int, *, permutations: int = 200,
              seed: int = 0) -> float:
    """95th percentile of the mutual information with the requested classes shuffled (`permutations` times)."""
    rng = np.random.default_rng(seed)
    return float(np.quantile([mutual_information(confusion(rng.permutation(requested), predicted, n))
                              for _ in range(permutations)], 0.95))


def relabelled_accuracy(conf: np.ndarray) -> float:
    """Accuracy under the one-to-one relabelling of the predicted classes that maximises it."""
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(-conf)
    return float(conf[rows, cols].sum() / conf.sum())


def own_label_classes(conf: np.ndarray) -> int:
    """How many requested classes are most often predicted as themselves (ties count as not)."""
    diag = np.diag(conf)
    others = np.where(np.eye(len(conf), dtype=bool), -1, conf).max(axis=1)
    return int((diag > others).sum())


def probe_confusion(probe, emb_by_class: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """The probe's confusion matrix on clips grouped by requested class.

    Parameters
    ----------
    probe : occ.metrics.probe.LinearProbe
    emb_by_class : dict
        requested class name -> embeddings of its clips, as `occ.metrics.evaluate.GeneratorEval.embeddings`.

    Returns
    -------
    pandas.DataFrame
        Counts; rows: requested class (index name ``requested``), columns: predicted class, both in the probe's
        class order.
    """
    names = list(probe.class_names)
    requested, predicted = [], []
    for name, emb in emb_by_class.items():
        requested += [names.index(name)] * len(emb)
        predicted += probe.predict(emb).tolist()
    conf = confusion(np.array(requested), np.array(predicted), len(names))
    return pd.DataFrame(conf, index=pd.Index(names, name="requested"), columns=names)


def confusion_metrics(conf: pd.DataFrame | np.ndarray, *, permutations: int = 200, seed: int = 0) -> dict:
    """The measures above of a confusion matrix of counts, keyed ``probe_mi_bits``, ``probe_mi_null95``,
    ``probe_relabelled_accuracy`` and ``probe_own_label_classes`` (numbers only: a run's DVC metrics)."""
    c = np.asarray(conf, dtype=np.int64)
    n = len(c)
    req = np.repeat(np.arange(n), c.sum(1))
    pred = np.concatenate([np.repeat(np.arange(n), row) for row in c])
    m = {"probe_mi_bits": mutual_information(c), "probe_mi_null95": mi_null95(req, pred, n, permutations=permutations,
                                                                             seed=seed),
         "probe_relabelled_accuracy": relabelled_accuracy(c), "probe_own_label_classes": own_label_classes(c)}
    return m


def reading(mi_bits: float, mi_null95: float, own_label: int, n_classes: int) -> str:
    """One run's clips in a phrase: class-blind (MI not above the shuffled null), else whether more than half of
    the classes are most often recognised as themselves."""
    if mi_bits <= mi_null95:
        return CLASS_BLIND
    return OWN_LABELS if own_label > n_classes / 2 else OTHER_LABELS

