"""The local template library: one Meta-format JSON file per (name, language), plus an index.

``import-templates`` fills it and ``send-template --template NAME`` reads from it. Files are
written atomically (temp file, then rename) so an interrupted import never leaves half a file.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctwa.infra.config import data_dir
from ctwa.infra.errors import InputError
from ctwa.wire.meta import is_approved

INDEX_FILE = "index.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9._()-]+")


def default_root(profile: str | None) -> Path:
    return data_dir() / "templates" / (profile or "default")


def file_name(name: str, language: str) -> str:
    """A safe, stable file name, one per (name, language): a readable part (lower case, so
    names that differ only by case, ``/``, ``_`` or spaces cannot share a file on macOS or
    Windows) and a digest of the exact pair that keeps them apart. The true name and language
    live inside the file."""
    import hashlib

    digest = hashlib.sha256(f"{name}\0{language}".encode()).hexdigest()[:12]
    readable = _UNSAFE.sub("_", name).lower()[:80]
    return f"{readable}__{_UNSAFE.sub('_', language).lower()[:20]}__{digest}.json"


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def serialise(template: dict[str, Any]) -> str:
    """One line of JSON: json's C encoder only runs without indent, and imports write
    thousands of these (``templates show --json`` pretty-prints one when asked)."""
    return json.dumps(template, ensure_ascii=False) + "\n"


@dataclass
class Entry:
    name: str
    language: str
    file: str
    status: str | None = None
    category: str | None = None
    sendable: bool = True  # no part CleverTap cannot send
    tracked_buttons: list[int] = field(default_factory=list)

    @property
    def can_send(self) -> bool:
        """CleverTap can send it (no unsendable parts) and WhatsApp will (approved)."""
        return self.sendable and is_approved(self.status)


class TemplateLibrary:
    def __init__(self, root: Path) -> None:
        self.root = root

    def index(self) -> dict[str, Entry]:
        path = self.root / INDEX_FILE
        if not path.exists():
            return {}
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"{path}: the template index is unreadable ({exc})",
                             hint="re-run `ctwa import-templates`") from exc
        known = set(Entry.__dataclass_fields__)
        return {key: Entry(**{k: v for k, v in value.items() if k in known})
                for key, value in raw.get("templates", {}).items()}

    def save_index(self, entries: dict[str, Entry]) -> None:
        data = {"templates": {k: vars(v) for k, v in sorted(entries.items())}}
        write_atomic(self.root / INDEX_FILE, json.dumps(data, indent=1, ensure_ascii=False))

    def path_of(self, name: str, language: str) -> Path:
        return self.root / file_name(name, language)

    def put(self, template: dict[str, Any], text: str | None = None) -> Path:
        """Store a template; ``text`` is its serialised form when the caller already has it."""
        path = self.path_of(template["name"], template["language"])
        write_atomic(path, text if text is not None else serialise(template))
        return path

    def get(self, name: str, language: str | None = None) -> dict[str, Any]:
        """The template named ``name`` (in ``language``, required when there are several)."""
        matches = [e for e in self.index().values() if e.name == name]
        chosen = [e for e in matches if language is None or e.language == language]
        if not chosen:
            known = sorted({e.language for e in matches})
            where = f" in {language!r}" if language else ""
            close = difflib.get_close_matches(name, sorted({e.name for e in
                                                            self.index().values()}), n=1)
            hint = (f"languages available: {', '.join(known)}" if known
                    else f"did you mean {close[0]!r}?" if close
                    else "import it with `ctwa import-templates`, or pass --template-file")
            raise InputError(f"no template {name!r}{where} in the library at {self.root}",
                             hint=hint)
        if len(chosen) > 1:
            langs = ", ".join(sorted(e.language for e in chosen))
            raise InputError(f"template {name!r} exists in several languages ({langs})",
                             hint="pass --language")
        path = self.root / chosen[0].file
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"{path}: cannot read the template ({exc})") from exc


def pick_template(source: str, documents: list[Any], name: str | None,
                  language: str | None) -> dict[str, Any]:
    """The one template a file holds: a template, or (picked by ``name``) one of a list page,
    a bare JSON array of templates, or a multi-document YAML file."""
    candidates: list[Any] = []
    for doc in documents:
        if isinstance(doc, dict) and isinstance(doc.get("data"), list):
            candidates += doc["data"]
        elif isinstance(doc, dict) and isinstance(doc.get("waba_templates"), list):
            candidates += doc["waba_templates"]  # 360dialog's list answer
        elif isinstance(doc, list):
            candidates += doc
        else:
            candidates.append(doc)
    templates = [c for c in candidates if isinstance(c, dict)]
    if not templates:
        raise InputError(f"{source}: holds no Meta-format template",
                         hint="a template is a JSON object with name, language and components")
    if name is not None:
        templates = [t for t in templates if t.get("name") == name
                     and (language is None or t.get("language") == language)]
        if not templates:
            where = f" in {language!r}" if language else ""
            names = sorted({str(c.get("name")) for c in candidates if isinstance(c, dict)})
            raise InputError(f"{source}: no template {name!r}{where}",
                             hint=f"it holds: {_some(names)}")
    if len(templates) > 1:
        names = [f"{t.get('name')} ({t.get('language')})" for t in templates]
        shape = ("a template list page" if any(isinstance(d, dict) and not {"data",
                 "waba_templates"}.isdisjoint(d) for d in documents) else "a list of templates")
        pick = "--language LANG" if name is not None else "--template NAME"
        raise InputError(f"{source} is {shape} holding {len(templates)} templates: "
                         f"{_some(names)}", hint=f"pick one with {pick}, or import them all "
                         "with `ctwa import-templates`")
    return templates[0]


def _some(names: list[str], limit: int = 8) -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more
