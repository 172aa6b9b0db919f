"""Typed values read from YAML: each checked against the dataclass field it fills, with errors naming the key.

The readers :mod:`occ.config` builds its sections with: a mapping (:func:`mapping`), a dataclass from it
(:func:`build`, unknown keys refused), each value as its field's type (:func:`typed`: an int is a float where a float
is asked, never a bool, text or a non-finite number), and the range checks :func:`one_of` and :func:`at_least`.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any

from occ.errors import ConfigError

__all__ = ["mapping", "build", "typed", "one_of", "at_least"]



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
            raise ConfigError(f"{prefix}.{key} is not a known key; known keys of `{prefix.split('.')[0]}`: {sorted(names)}.")
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
