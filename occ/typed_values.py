"""Typed values read from YAML: each checked against the dataclass field it fills, with errors naming the key.

The readers :mod:`occ.config` builds its sections with: a mapping (:func:`mapping`), a dataclass from it
(:func:`build`, unknown keys refused), each value as its field's type (:func:`typed`: an int is a float where a float
is asked, never a bool, text or a non-finite number), the range checks :func:`one_of`, :func:`at_least` and
:func:`in_range`, and the error of an unknown key (:func:`unknown_key`: it names the closest known key).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from typing import Any

from occ.errors import ConfigError

__all__ = ["mapping", "build", "typed", "one_of", "at_least", "in_range", "unknown_key", "check_known_keys"]



def mapping(value: Any, key: str) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"{key} must be a mapping of keys to values, got {type(value).__name__}.")
    return value


def build(cls: type, values: dict, prefix: str):
    values = mapping(values, prefix)
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in values:
        if key not in names:
            raise unknown_key(key, names, prefix=prefix)
    return cls(**{key: typed(f"{prefix}.{key}", value, hints[key]) for key, value in values.items()})


def typed(key: str, value: Any, kind: Any) -> Any:
    if isinstance(kind, types.UnionType):
        kind = next(k for k in typing.get_args(kind) if k is not type(None))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is float and isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key} = {value!r} must be a finite number.")
    if kind is bool and not isinstance(value, bool):
        raise ConfigError(f"{key} = {value!r} must be true or false.")
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{key} = {value!r} must be a whole number.")
    if kind is float and isinstance(value, str):
        raise ConfigError(f"{key} = {value!r} is text, not a number: write it without quotes (e.g. 1.0e-4).")
    if kind in (float, str) and not isinstance(value, kind):
        raise ConfigError(f"{key} = {value!r} must be a {kind.__name__}.")
    return value


def one_of(key: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ConfigError(f"{key} = {value!r} is not one of {list(choices)}.")


def at_least(key: str, value: float, low: float) -> None:
    if not math.isfinite(value):  # whoever built the dataclass: params.yaml's values are checked when read
        raise ConfigError(f"{key} = {value!r} must be a finite number.")
    if not value >= low:
        raise ConfigError(f"{key} = {value!r} is out of range: use a value >= {low}.")


def in_range(key: str, value: float, low: float, high: float, why: str = "") -> None:
    """``low <= value <= high``, else a ConfigError naming ``key``, the value and the range (``why`` follows)."""
    if not math.isfinite(value):
        raise ConfigError(f"{key} = {value!r} must be a finite number.")
    if not low <= value <= high:
        raise ConfigError(f"{key} = {value!r} is out of range: use a value in [{low:g}, {high:g}]{why}.")


def unknown_key(key: Any, known: Any, *, prefix: str = "", source: str = "") -> ConfigError:
    """The ConfigError of an unknown key ``key`` under ``prefix`` (``""``: the top level), read from ``source``: it
    names the key, the closest of ``known`` ("did you mean `eval.gl_iters`?", when one is close) and every known key.
    """
    known = sorted(str(k) for k in known)
    full = f"{prefix}.{key}" if prefix else str(key)
    close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
    hint = f" did you mean `{prefix + '.' if prefix else ''}{close[0]}`?" if close else ""
    scope = f"of `{prefix}`" if prefix else "at the top level"
    return ConfigError(f"{source + ': ' if source else ''}{full} is not a known key;{hint} known keys {scope}: {known}.")


def check_known_keys(tree: Any, schema: Any, *, prefix: str = "", source: str = "") -> None:
    """Every key of the nested mapping ``tree``, at every level, is one that ``schema`` knows, else the ConfigError of
    :func:`unknown_key`, raised before anything else is read (so a misspelt key is named, not the key it misses).

    ``schema`` maps each known key to the schema of its value: ``None`` for a value not read as a mapping here, a
    dict for a mapping, or ``("each", sub)`` for a mapping of free names (variants, profiles) whose values follow
    ``sub``. Values that are not mappings are left to the type checks.
    """
    if not isinstance(tree, dict):
        return
    if isinstance(schema, tuple):
        for name, value in tree.items():
            check_known_keys(value, schema[1], prefix=f"{prefix}.{name}" if prefix else str(name), source=source)
        return
    for key, value in tree.items():
        if key not in schema:
            raise unknown_key(key, schema, prefix=prefix, source=source)
        if schema[key] is not None:
            check_known_keys(value, schema[key], prefix=f"{prefix}.{key}" if prefix else str(key), source=source)
