"""YAML loading that remembers where every mapping and key came from, so fixture errors can
name the file, the line and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ctwa.infra.errors import InputError
from ctwa.infra.textfiles import (
    YAML_NODE_BUDGET,
    YamlTooBig,
    bounded_loader,
    read_text,
    yaml_error,
)


class Located(dict[str, Any]):
    """A mapping that knows its own line and the line of each key (1-based)."""

    line: int = 0
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class _Loader(bounded_loader(yaml.SafeLoader)):  # type: ignore[misc]
    pass


def _mapping(loader: _Loader, node: yaml.MappingNode) -> Located:
    loader.flatten_mapping(node)
    out = Located()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float, bool)):
            raise InputError(f"line {key_node.start_mark.line + 1}: keys must be plain values")
        out[str(key) if not isinstance(key, str) else key] = loader.construct_object(
            value_node, deep=True)
        out.key_lines[str(key)] = key_node.start_mark.line + 1
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_located(path: Path) -> Any:
    text = read_text(path)
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: safe
    except YamlTooBig:
        raise InputError(f"{path}: the YAML expands past {YAML_NODE_BUDGET:,} values (aliases "
                         "used over and over)", hint="write the events out, or use a volume "
                         "event (messages: N)") from None
    except yaml.YAMLError as exc:
        raise yaml_error(path, exc) from exc
    except RecursionError:
        raise InputError(f"{path}: the YAML is nested too deeply") from None
