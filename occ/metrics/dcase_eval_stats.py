"""The official DCASE 2023 Task 7 evaluation-set statistics, read without TensorFlow.

* :func:`load_dcase_reference`: one statistics file, a pickled dict of TensorFlow ``Feature`` protobufs,
  decoded from their wire bytes (a restricted unpickler and a small protobuf decoder).
* :func:`dcase_eval_reference`: the copies shipped in ``occ/metrics/dcase2023_eval_vggish_stats/`` (one
  ``<class folder>.pkl`` per class).
"""

from __future__ import annotations

import io
import os
import pickle
import struct
from pathlib import Path

import numpy as np

from occ.data.classes import DCASE_SNAKE, class_folder
from occ.errors import DataError

__all__ = ["load_dcase_reference", "dcase_eval_reference", "DCASE_EVAL_STATS"]


class _Feature:
    """Stand-in for ``tensorflow.core.example.feature_pb2.Feature``: keeps the serialised bytes."""

    def __init__(self, *args, **kwargs) -> None:
        self.serialized = b""

    def __setstate__(self, state) -> None:  # protobuf messages pickle as {'serialized': bytes}
        if isinstance(state, dict) and "serialized" in state:
            self.serialized = bytes(state["serialized"])
        else:
            raise pickle.UnpicklingError("protobuf state without a 'serialized' entry")


class _StatsUnpickler(pickle.Unpickler):
    """Unpickles only plain containers and TF Feature protobufs (as :class:`_Feature`)."""

    def find_class(self, module: str, name: str):
        if name == "Feature" and module.endswith("feature_pb2"):
            return _Feature
        if module == "builtins" and name in {"dict", "list", "tuple", "bytes", "str", "int", "float"}:
            return getattr(__import__("builtins"), name)
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in a statistics pickle")


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode a protobuf varint at ``pos``; returns (value, next position)."""
    out, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        out |= (b & 0x7F) << shift
        if not b & 0x80:
            return out, pos
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int, bytes | int]]:
    """(field number, wire type, payload) of every field of a protobuf message."""
    out, pos = [], 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        num, wire = key >> 3, key & 7
        if wire == 2:
            n, pos = _varint(buf, pos)
            if pos + n > len(buf):
                raise ValueError("truncated length-delimited field")
            out.append((num, wire, buf[pos : pos + n]))
            pos += n
        elif wire == 0:
            v, pos = _varint(buf, pos)
            out.append((num, wire, v))
        elif wire == 5:
            out.append((num, wire, buf[pos : pos + 4]))
            pos += 4
        elif wire == 1:
            out.append((num, wire, buf[pos : pos + 8]))
            pos += 8
        else:
            raise ValueError(f"unsupported wire type {wire}")
    return out


def _decode_feature(buf: bytes) -> np.ndarray:
    """tf.train.Feature bytes -> float32 values (float_list, field 2) or int64 values (int64_list, field 3)."""
    for num, wire, payload in _fields(buf):
        if num == 2 and wire == 2:  # FloatList
            values: list[float] = []
            for vnum, vwire, vpay in _fields(payload):
                if vnum == 1 and vwire == 2:  # packed
                    values.extend(struct.unpack(f"<{len(vpay) // 4}f", vpay))
                elif vnum == 1 and vwire == 5:
                    values.append(struct.unpack("<f", vpay)[0])
            return np.asarray(values, dtype=np.float32)
        if num == 3 and wire == 2:  # Int64List
            ints: list[int] = []
            for vnum, vwire, vpay in _fields(payload):
                if vnum == 1 and vwire == 2:
                    p = 0
                    while p < len(vpay):
                        v, p = _varint(vpay, p)
                        ints.append(v - (1 << 64) if v >= 1 << 63 else v)
                elif vnum == 1 and vwire == 0:
                    ints.append(vpay - (1 << 64) if vpay >= 1 << 63 else vpay)
            return np.asarray(ints, dtype=np.int64)
    raise ValueError("Feature holds neither a float_list nor an int64_list")


def load_dcase_reference(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read official DCASE 2023 Task 7 evaluation-set statistics (``<class>.pkl`` / ``gt_embedding.pkl``).

    The file is a pickled dict ``{'embedding_count', 'embedding_length', 'mu', 'sigma'}`` of
    ``tensorflow.core.example.feature_pb2.Feature`` messages; they are decoded from their protobuf wire
    bytes, so TensorFlow is not needed.

    Parameters
    ----------
    path : path-like
        The pickle.

    Returns
    -------
    mu : np.ndarray [shape=(D,), float64]
    sigma : np.ndarray [shape=(D, D), float64]
        D = ``embedding_length`` (128 for VGGish).

    Raises
    ------
    DataError
        The file is missing or is not such a pickle.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"DCASE reference statistics {path} do not exist; copy the official <class>.pkl files "
            "(dcase2023_task7_eval_fad data/eval/<class>/gt_embedding.pkl) there"
        )
    try:
        raw = _StatsUnpickler(io.BytesIO(path.read_bytes())).load()
        feats = {k: _decode_feature(v.serialized) for k, v in raw.items()}
        dim = int(feats["embedding_length"][0])
        mu = feats["mu"].astype(np.float64)
        sigma = feats["sigma"].astype(np.float64).reshape(dim, dim)
        if mu.shape != (dim,):
            raise ValueError(f"mu has {mu.shape[0]} values, embedding_length is {dim}")
    except Exception as exc:
        raise DataError(
            f"{path} is not a DCASE FAD statistics pickle (a dict of TF Feature protobufs with embedding_length, "
            f"mu and sigma): {type(exc).__name__}: {exc}"
        ) from None
    return mu, sigma


DCASE_EVAL_STATS = "dcase2023_eval_vggish_stats"  # package data folder of the official statistics


def dcase_eval_reference(classes=None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The official DCASE 2023 Task 7 evaluation-set VGGish statistics, shipped with the package.

    Parameters
    ----------
    classes : iterable of str, optional
        DCASE class names in any spelling :func:`occ.data.classes.class_folder` accepts (``"DogBark"``,
        ``"dog_bark"``); default: all seven.

    Returns
    -------
    dict of str to (mu, sigma)
        Class folder name (``"dog_bark"``, ...) -> :func:`load_dcase_reference` of its statistics
        (128-d: the DCASE VGGish embedding, so only FAD with ``vggish`` embeddings is comparable).

    Raises
    ------
    DataError
        A class that is not one of the seven DCASE classes (the message lists them).
    """
    from importlib.resources import as_file, files

    known = list(DCASE_SNAKE.values())
    names = known if classes is None else [class_folder(c) for c in classes]
    out = {}
    for name in names:
        if name not in known:
            raise DataError(f"the DCASE 2023 evaluation statistics have no class {name!r}; they hold {', '.join(known)}")
        with as_file(files("occ.metrics") / DCASE_EVAL_STATS / f"{name}.pkl") as path:
            out[name] = load_dcase_reference(path)
    return out
