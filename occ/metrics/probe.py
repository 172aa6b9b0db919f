"""The recognisability probe: does a generated clip sound like its class, to a judge that is not part of the GAN?

A linear classifier (standardised features, multinomial logistic regression, scikit-learn) is fitted on the
embeddings of the real *training* clips (``eval.embedding``, aiSFX by default; one feature vector per clip: the
mean over the embedding's windows). Its accuracy is then read on

* the held-out real clips (the ceiling: how well the probe itself tells the classes apart), raw and after
  log-mel + the vocoder, the path every generated clip takes;
* the generated clips, per class and on average.

Unlike the fine-tuned SupCon encoder, the probe shares no weights or training signal with G, D or ``f``, so it
favours no variant. Chance is ``1 / n_classes``. The fitted probe is stored as plain arrays (``.npz``), not as
a pickle. :func:`encoder_accuracy` is the other judge: the fine-tuned encoder's classifier on the clips' mels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from occ.atomic import atomic_open
from occ.data.datasets import normalized_log_mel
from occ.errors import DataError
from occ.nets.encoder import classification_accuracy

__all__ = ["LinearProbe", "fit_probe", "load_probe", "clip_features", "encoder_accuracy"]


def clip_features(emb: np.ndarray) -> np.ndarray:
    """One vector per clip: the mean over windows of ``(N, W, D)`` embeddings -> ``(N, D)`` float64."""
    emb = np.asarray(emb, dtype=np.float64)
    if emb.ndim == 2:
        return emb
    if emb.ndim != 3:
        raise DataError(f"probe: expected embeddings of shape (N, W, D) or (N, D), got {emb.shape}")
    return emb.mean(axis=1)


@dataclass
class LinearProbe:
    """A fitted linear probe: ``argmax((x - mean) / scale @ coef.T + intercept)``.

    Attributes
    ----------
    class_names : list of str
        Classes in label order.
    mean, scale : np.ndarray [shape=(D,)]
        Feature standardisation fitted on the training clips.
    coef : np.ndarray [shape=(C, D)]
    intercept : np.ndarray [shape=(C,)]
    train_accuracy : float
        Accuracy on the clips it was fitted on.
    """

    class_names: list[str]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    train_accuracy: float

    def logits(self, emb: np.ndarray) -> np.ndarray:
        """Class scores of ``(N, W, D)`` or ``(N, D)`` embeddings -> ``(N, C)``."""
        x = clip_features(emb)
        if x.shape[1] != self.coef.shape[1]:
            raise DataError(f"probe: embeddings have {x.shape[1]} features, the probe was fitted on {self.coef.shape[1]}; "
                            "fit it on the same embedding (eval.embedding)")
        return ((x - self.mean) / self.scale) @ self.coef.T + self.intercept

    def predict(self, emb: np.ndarray) -> np.ndarray:
        """Predicted class indices ``(N,)``."""
        return np.argmax(self.logits(emb), axis=1)

    def accuracy(self, emb_by_class: dict[str, np.ndarray]) -> pd.Series:
        """Accuracy per class and their plain mean (index: the classes present, then ``"Average"``).

        Parameters
        ----------
        emb_by_class : dict
            class name -> embeddings of clips of that class, ``(n, W, D)``.
        """
        out = {}
        for name, emb in emb_by_class.items():
            if name not in self.class_names:
                raise DataError(f"probe: class {name!r} is not one the probe knows ({self.class_names})")
            if len(emb) == 0:
                raise DataError(f"probe: no clips of class {name!r}")
            out[name] = float(np.mean(self.predict(emb) == self.class_names.index(name)))
        series = pd.Series(out, dtype=float)
        series["Average"] = float(series.mean())
        return series

    @property
    def chance(self) -> float:
        """Accuracy of guessing: ``1 / n_classes``."""
        return 1.0 / len(self.class_names)

    def save(self, path: str | Path) -> None:
        """Write the probe as ``.npz`` (atomically)."""
        with atomic_open(path, "wb") as handle:
            np.savez(handle, class_names=np.array(self.class_names), mean=self.mean, scale=self.scale,
                     coef=self.coef, intercept=self.intercept, train_accuracy=np.array(self.train_accuracy))


def load_probe(path: str | Path) -> LinearProbe:
    """Read a probe written by :meth:`LinearProbe.save`.

    Raises
    ------
    DataError
        The file is missing or not a probe.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no probe; run the `reference` stage (notebooks/04_reference.ipynb) first.")
    try:
        with np.load(path, allow_pickle=False) as z:
            probe = LinearProbe([str(c) for c in z["class_names"]], z["mean"], z["scale"], z["coef"], z["intercept"],
                                float(z["train_accuracy"]))
    except (KeyError, ValueError, OSError) as exc:
        raise DataError(f"{path}: not a probe file ({exc}); rerun the `reference` stage.") from exc
    bad = [name for name in ("mean", "scale", "coef", "intercept") if not np.isfinite(getattr(probe, name)).all()]
    if bad:
        raise DataError(f"{path}: the probe's {', '.join(bad)} hold NaN or infinite values (a damaged file); rerun "
                        "the `reference` stage.")
    return probe


def fit_probe(emb_by_class: dict[str, np.ndarray], *, c: float = 1.0, max_iter: int = 2000) -> LinearProbe:
    """Fit the probe on the embeddings of real training clips.

    Parameters
    ----------
    emb_by_class : dict
        class name -> ``(n, W, D)`` embeddings, in label order (the dict's order is the class order).
    c : float
        Inverse L2 regularisation strength of the logistic regression.
    max_iter : int
        Iterations of the L-BFGS solver.

    Returns
    -------
    LinearProbe
    """
    from sklearn.linear_model import LogisticRegression

    names = list(emb_by_class)
    if len(names) < 2:
        raise DataError(f"probe: needs at least 2 classes, got {names}")
    feats = [clip_features(emb_by_class[n]) for n in names]
    if any(len(f) == 0 for f in feats):
        raise DataError("probe: a class has no training clips")
    x = np.concatenate(feats)
    y = np.concatenate([np.full(len(f), i) for i, f in enumerate(feats)])
    if not np.isfinite(x).all():
        raise DataError("probe: the training embeddings hold NaN or infinite values")
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-12] = 1.0
    clf = LogisticRegression(C=c, max_iter=max_iter)
    clf.fit((x - mean) / scale, y)
    coef, intercept = clf.coef_.astype(np.float64), clf.intercept_.astype(np.float64)
    if len(names) == 2:  # scikit-learn keeps one row for two classes: class 1 against class 0
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], intercept])
    probe = LinearProbe(names, mean, scale, coef, intercept, 0.0)
    probe.train_accuracy = float(np.mean(probe.predict(x) == y))
    return probe


def encoder_accuracy(encoder: torch.nn.Module, wavs: np.ndarray, labels: torch.Tensor, *,
                     device: str | torch.device = "cpu", batch_size: int = 64) -> float:
    """Accuracy of the fine-tuned encoder's classifier on clips: :func:`occ.nets.encoder.classification_accuracy` of
    their log-mels (normalised, as for real clips), computed ``batch_size`` clips at a time."""
    with torch.no_grad():
        mels = torch.cat([normalized_log_mel(torch.as_tensor(wavs[i:i + batch_size]).to(device))
                          for i in range(0, len(wavs), batch_size)])
    return classification_accuracy(encoder, mels, labels, batch_size=batch_size, device=device)
