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
