"""The evidence bundle: a folder of the report, the results, JUnit XML, every exchange with
secrets masked, and a manifest of SHA-256 sums that ``ctwa certify verify`` checks."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

from ctwa.infra.errors import CheckFailed, InputError

MANIFEST = "manifest.json"
#: The contract a certification checks against: CleverTap's Generic WhatsApp integration
#: (payloadVersion 0.1 for messages, callback payloadVersion 0.1), as ERRATA.md reads it.
SPEC_VERSION = "CleverTap Generic WhatsApp integration, payloadVersion 0.1 (ctwa ERRATA 1-17)"


class Exchanges:
    """exchanges.ndjson: one line per request and answer, written as they happen (masked)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = path.open("w", encoding="utf-8")
        self._lock = threading.Lock()
        self.count = 0

    def add(self, step: str, exchange: dict[str, Any]) -> None:
        """One exchange, made safe and masked on its values (never on the serialised line,
        which a mask could break), as one JSON line."""
        from ctwa.infra.safetext import json_ready, safe_value

        line = json.dumps(safe_value(json_ready({"step": step, **exchange})),
                          ensure_ascii=False)
        with self._lock:
            self._handle.write(line + "\n")
            self._handle.flush()
            self.count += 1

    def close(self) -> None:
        self._handle.close()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(folder: Path, started: float, ended: float) -> dict[str, Any]:
    from ctwa import __version__

    files = {p.name: _sha256(p) for p in sorted(folder.iterdir())
             if p.is_file() and p.name != MANIFEST}
    manifest = {"ctwa_version": __version__, "spec": SPEC_VERSION, "started": started,
                "ended": ended, "sha256": files}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def verify(folder: Path) -> dict[str, Any]:
    """Every file the manifest names is there with its sum, and nothing was added."""
    path = folder / MANIFEST
    if not path.is_file():
        raise InputError(f"{folder}: no {MANIFEST}: not a ctwa certify evidence folder")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        sums = dict(manifest["sha256"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a ctwa manifest ({exc})") from exc
    problems = []
    for name, wanted in sums.items():
        file = folder / name
        if not file.is_file():
            problems.append(f"{name} is missing")
        elif _sha256(file) != wanted:
            problems.append(f"{name} was changed (its SHA-256 differs)")
    extra = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != MANIFEST
                   and p.name not in sums)
    problems += [f"{name} is not in the manifest" for name in extra]
    if problems:
        raise CheckFailed(f"{folder}: " + "; ".join(problems))
    return manifest
