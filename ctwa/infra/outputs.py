"""Output paths checked before a run starts: a file ctwa writes must not be one it reads,
the store, a folder, or another output of the same run (``--rejects users.csv`` overwrote the
input; ``--rejects`` set to the store destroyed it)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path

from ctwa.infra.errors import InputError


def _same(a: Path, b: Path) -> bool:
    with contextlib.suppress(OSError):
        if a.exists() and b.exists():
            return a.samefile(b)
    return a.expanduser().resolve() == b.expanduser().resolve()


def _store_files() -> list[Path]:
    from ctwa.store.db import store_path

    store = store_path()
    return [store, Path(f"{store}-wal"), Path(f"{store}-shm"), Path(f"{store}-journal")]


def check_outputs(outputs: dict[str, Path | None], inputs: Iterable[Path] = ()) -> None:
    """Refuse, in one line naming the option, an output that cannot or must not be written:
    a folder, one whose folder does not exist, an input, the store, or one given twice.
    Devices (``/dev/null``, ``/dev/stdout``) are allowed; a write that fails there is said
    when it happens."""
    given = {name: path for name, path in outputs.items() if path is not None}
    seen: list[tuple[str, Path]] = []
    for name, path in given.items():
        if path.is_dir():
            raise InputError(f"{name} {path}: is a folder", hint="give a file name")
        if not path.parent.is_dir():
            raise InputError(f"{name} {path}: the folder {path.parent} does not exist")
        for source in inputs:
            if _same(path, source):
                raise InputError(f"{name} {path}: is an input of this run; writing it would "
                                 "destroy it", hint="give another file name")
        for store in _store_files():
            if _same(path, store):
                raise InputError(f"{name} {path}: is ctwa's store; writing it would destroy "
                                 "it", hint="give another file name")
        for other, earlier in seen:
            if _same(path, earlier) and not path.is_char_device():
                raise InputError(f"{name} {path}: is also given as {other}",
                                 hint="give each output its own file")
        seen.append((name, path))
