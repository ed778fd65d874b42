"""Reading the text files users hand ctwa, with one clear error for each way it goes wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ctwa.infra.errors import InputError


def read_text(path: Path) -> str:
    """The file as text (UTF-8, a BOM allowed), or an InputError naming the file."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def yaml_error(path: Path, exc: Any) -> InputError:
    """A YAML parse error as 'file:line: not valid YAML: what'."""
    mark = getattr(exc, "problem_mark", None)
    where = f":{mark.line + 1}" if mark else ""
    problem = getattr(exc, "problem", None) or str(exc)
    return InputError(f"{path}{where}: not valid YAML: {problem}")


# --- YAML with a node budget ---------------------------------------------------------------
#
# YAML aliases let a few hundred bytes stand for billions of nodes ("billion laughs"): PyYAML
# shares the objects, so loading is quick, but everything that walks the result afterwards
# (lint, json.dumps, a fixture's references) runs for hours. Every YAML document a user hands
# ctwa is measured as it would be expanded before it is built.

#: Nodes a document may expand to, aliases counted each time they are used.
YAML_NODE_BUDGET = 1_000_000


class YamlTooBig(Exception):
    """A YAML document expands past the node budget."""


def _expanded_size(root: Any, budget: int) -> int:
    import yaml

    sizes: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        if isinstance(node, yaml.ScalarNode):
            sizes[id(node)] = 1
            continue
        children = ([n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode)
                    else list(node.value))
        if children_done:
            total = 1 + sum(sizes.get(id(c), 1) for c in children)
            if total > budget:
                raise YamlTooBig(total)
            sizes[id(node)] = total
        else:
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes.get(id(root), 1)


#: Digits of the longest number a YAML file may hold (Python's own limit is 4300).
MAX_INT_DIGITS = 4000


def bounded_loader(base: Any) -> Any:
    """A subclass of the YAML loader ``base`` that refuses documents past the node budget."""

    import yaml

    class Bounded(base):
        def construct_document(self, node: Any) -> Any:
            _expanded_size(node, YAML_NODE_BUDGET)
            return super().construct_document(node)

        def construct_yaml_int(self, node: Any) -> Any:
            # Python refuses to build an int from more than 4300 digits, with a ValueError
            # no YAML handler expects; no file ctwa reads means such a number
            if len(str(node.value)) > MAX_INT_DIGITS:
                raise yaml.constructor.ConstructorError(
                    None, None, f"a number of {len(str(node.value)):,} digits (ctwa reads "
                    f"numbers of at most {MAX_INT_DIGITS:,})", node.start_mark)
            return super().construct_yaml_int(node)

    Bounded.add_constructor("tag:yaml.org,2002:int", Bounded.construct_yaml_int)
    return Bounded


def load_yaml_all(text: str, source: str) -> list[Any]:
    """Every document of a YAML text (safe, bounded), or one clear line naming the source."""
    import yaml

    try:
        return list(yaml.load_all(text, Loader=bounded_loader(yaml.SafeLoader)))
    except YamlTooBig:
        raise InputError(f"{source}: the YAML expands past {YAML_NODE_BUDGET:,} values "
                         "(aliases used over and over)", hint="write the data out without "
                         "nested aliases") from None
    except yaml.YAMLError as exc:
        raise yaml_error(Path(source), exc) from exc
    except RecursionError:
        raise InputError(f"{source}: the YAML is nested too deeply") from None


def load_yaml(text: str, source: str) -> Any:
    """The one document of a YAML text (safe, bounded); None when it is empty."""
    documents = load_yaml_all(text, source)
    return documents[0] if documents else None


def open_private(path: Path, mode: str = "w", newline: str | None = None) -> Any:
    """Open a file only its owner can read (0600): rejects, journals and recordings hold
    people's phone numbers and messages. An existing file keeps its content for ``a``."""
    import os
    import stat

    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode.startswith("a") else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    if stat.S_ISREG(os.fstat(fd).st_mode):  # never /dev/null's or /dev/full's permissions
        os.fchmod(fd, 0o600)  # a file created earlier with wider permissions is narrowed too
    return os.fdopen(fd, mode, encoding="utf-8", newline=newline)
