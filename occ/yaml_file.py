"""``params.yaml`` read strictly: a key given twice is an error (YAML would keep the last one silently), and ``1e-4``
is a number (as in YAML 1.2), not text. :mod:`occ.config` turns what :func:`read_yaml` returns into the validated
configuration.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from occ.errors import ConfigError

__all__ = ["read_yaml"]


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader that rejects duplicate keys and reads `1e-4` as a number (as YAML 1.2 does)."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`: its keys may be overridden
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(
                    f"{self.name}: key {key!r} is given twice (lines {seen[key]} and {line}); "
                    "YAML would silently keep the last one: delete one of them."
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


# YAML 1.1 needs a dot in a float (`1.0e-4`); accept `1e-4` and `1E+3` too.
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def read_yaml(path: str | Path) -> Any:
    """Parse a params file with duplicate keys rejected and `1e-4` read as a number.

    Raises
    ------
    ConfigError
        The file is not valid YAML or repeats a key.
    """
    path = Path(path)
    text = path.read_text()
    loader = _StrictLoader(text)
    loader.name = str(path)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc}).") from exc
    finally:
        loader.dispose()
