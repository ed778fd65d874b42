"""Shared pieces of the wire models: the base model, problems with JSON paths, variant notes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Severity = Literal["error", "warning"]
PathPart = str | int


class WireModel(BaseModel):
    """Strict base: unknown keys are contract violations, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def to_wire(self) -> dict[str, Any]:
        """The canonical JSON-ready form, with the wire's own key spellings."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class OpenModel(WireModel):
    """For formats that grow (Meta templates, third-party answers): extra keys are kept."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


def json_path(parts: Sequence[PathPart]) -> str:
    """``("components", 2, "footer")`` -> ``$.components[2].footer``."""
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.isidentifier():
            out += f".{part}"
        else:
            out += f"[{part!r}]"
    return out


@dataclass(frozen=True)
class Problem:
    """One thing wrong (error) or unusual (warning) in a document, where it is and how to fix it."""

    severity: Severity
    path: str
    message: str
    hint: str | None = None
    errata: int | None = None  # the ERRATA.md row this variant is listed under

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"severity": self.severity, "path": self.path,
                                "message": self.message}
        if self.hint:
            data["hint"] = self.hint
        if self.errata is not None:
            data["errata"] = self.errata
        return data


@dataclass
class Notes:
    """Collects problems while a reader rewrites variants into the canonical form."""

    problems: list[Problem] = field(default_factory=list)

    def warn(self, path: Sequence[PathPart], message: str, hint: str | None = None,
             errata: int | None = None) -> None:
        self.problems.append(Problem("warning", json_path(path), message, hint, errata))

    def error(self, path: Sequence[PathPart], message: str, hint: str | None = None,
              errata: int | None = None) -> None:
        self.problems.append(Problem("error", json_path(path), message, hint, errata))

    def extend(self, problems: Iterable[Problem]) -> None:
        self.problems.extend(problems)

    def rename(self, obj: dict[str, Any], old: str, new: str, path: Sequence[PathPart],
               errata: int) -> None:
        """Move ``obj[old]`` to ``obj[new]`` (keeping key order) and note the variant."""
        if old not in obj:
            return
        if new in obj:
            self.error([*path, old], f"both `{old}` and `{new}` are present",
                       hint=f"keep only `{new}`", errata=errata)
            return
        items = [(new if key == old else key, value) for key, value in obj.items()]
        obj.clear()
        obj.update(items)
        self.warn([*path, old], f"`{old}` is a variant spelling; the canonical key is `{new}`",
                  hint=f"rename `{old}` to `{new}`", errata=errata)

    def stringify(self, obj: dict[str, Any], key: str, path: Sequence[PathPart],
                  errata: int, what: str) -> None:
        """Numbers where the contract wants strings (timestamps, versions): convert and warn."""
        value = obj.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            obj[key] = _number_text(value)
            self.warn([*path, key], f"{what} is a number; the canonical form is a string",
                      hint=f'write "{obj[key]}"', errata=errata)


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def tree_copy(value: Any) -> Any:
    """A copy of a parsed JSON or YAML document, for the readers that rewrite variants in
    place: dicts and lists copied, everything else (immutable in such documents) shared.
    ``copy.deepcopy`` does the same with a memo and dispatch per object, three times slower
    on the listener's path, where every callback is read this way."""
    if isinstance(value, dict):
        return {key: tree_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [tree_copy(item) for item in value]
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    import copy

    return copy.deepcopy(value)  # anything else a YAML file may hold (a set, a date)


def as_dict(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
