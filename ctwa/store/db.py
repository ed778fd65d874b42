"""Opening the store, migrating it, and every read and write, with SQLite's failures turned
into one line that says what to do.

One file under the platform's data directory (``CTWA_STORE`` or ``--store`` to choose
another), in WAL mode so that listeners and senders in other processes read and write at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import astuple
from pathlib import Path
from typing import Any

from ctwa.infra import envvars
from ctwa.infra.errors import CtwaError, ExitCode
from ctwa.store.records import CallbackRecord, LoadRunRecord, SendRecord
from ctwa.store.schema import MIGRATIONS, VERSION

FILE_NAME = "store.sqlite3"
#: How long a write waits for another process's write to finish.
BUSY_SECONDS = 10.0


class StoreError(CtwaError):
    """The store cannot be opened, read or written."""

    exit_code = ExitCode.USAGE


def store_path() -> Path:
    """``$CTWA_STORE``, or ``store.sqlite3`` in ctwa's data directory."""
    override = os.environ.get(envvars.STORE)
    if override:
        return Path(override).expanduser()
    from ctwa.infra.config import data_dir

    return data_dir() / FILE_NAME


def _explain(path: Path, exc: Exception) -> StoreError:
    text = str(exc).lower()
    where = f"the store {path}"
    if "locked" in text or "busy" in text:
        return StoreError(f"{where} stayed locked by another process for {BUSY_SECONDS:g} s",
                          hint="wait for it to finish, or use another one with --store PATH")
    if "readonly" in text or "read-only" in text or "unable to open" in text or isinstance(
            exc, (PermissionError, FileExistsError, NotADirectoryError, IsADirectoryError)):
        return StoreError(f"{where} cannot be written (read-only disk or no permission)",
                          hint="choose a writable file with --store PATH or CTWA_STORE")
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return StoreError(f"{where} is damaged or not a ctwa store",
                          hint="move it aside (ctwa starts a new one) or use --store PATH")
    if "disk" in text and "full" in text:
        # `ctwa store prune` would fail the same way: deleting needs room in the WAL file
        return StoreError(f"{where}: the disk is full", hint=f"free space on the disk that "
                          f"holds {path.parent} (the store is {_size_of(path)}; prune needs "
                          "free space itself), or use a store on another disk with --store "
                          "PATH")
    return StoreError(f"{where}: {exc}", hint="use another one with --store PATH")


def _size_of(path: Path) -> str:
    total = 0
    for part in (path, Path(f"{path}-wal")):
        with contextlib.suppress(OSError):
            total += part.stat().st_size
    return f"{total / 1e6:.1f} MB"


@contextlib.contextmanager
def _explained(path: Path) -> Iterator[None]:
    try:
        yield
    except (sqlite3.Error, OSError) as exc:
        raise _explain(path, exc) from exc


def _statements(script: str) -> list[str]:
    """A migration's statements, without their comments (``executescript`` would commit the
    transaction the migration must run in)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [part for part in "\n".join(lines).split(";") if part.strip()]


def _chunks(values: list[str], size: int = 500) -> Iterator[tuple[list[str], str]]:
    """The values in pieces small enough for one ``IN (...)`` (SQLite limits the number of
    parameters of a statement), each with its placeholders."""
    for start in range(0, len(values), size):
        chunk = values[start:start + size]
        yield chunk, ",".join("?" * len(chunk))


class Store:
    """One connection to the store. Cheap to open; use one per thread.

    ``readonly``: for commands that only read (``store info``, ``trace``, ``runs list``,
    ``report``): a store on a read-only disk, or one without write permission, is read as it
    is; a store that does not exist yet reads as empty (nothing is created)."""

    def __init__(self, path: Path | None = None, readonly: bool = False) -> None:
        self.path = path or store_path()
        self.readonly = readonly
        if readonly:
            with _explained(self.path):
                self.db = self._open_readonly()
                found = self.db.execute("PRAGMA user_version").fetchone()[0]
            if found > VERSION:
                raise StoreError(f"the store {self.path} was written by a newer ctwa (schema "
                                 f"{found}, this one knows {VERSION})",
                                 hint="upgrade ctwa, or use another store with --store PATH")
            if found < VERSION:
                raise StoreError(f"the store {self.path} is from an older ctwa and must be "
                                 "brought up to date before it can be read",
                                 hint="run any ctwa command that records (where the store "
                                 "can be written) once")
            return
        with _explained(self.path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=BUSY_SECONDS, isolation_level=None,
                                      check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self._migrate()

    def _open_readonly(self) -> sqlite3.Connection:
        """Read-only, never creating or changing a file: ``mode=ro`` (WAL readers see what a
        writer in another process commits); where SQLite cannot even create the WAL's shared
        memory file (a read-only folder), ``immutable=1``, which reads the file as it is."""
        from urllib.parse import quote

        if not self.path.exists():
            db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            for version in range(1, VERSION + 1):
                for statement in _statements(MIGRATIONS[version - 1]):
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {VERSION}")
            return db
        uri = f"file:{quote(str(self.path.resolve()))}"
        for mode in ("mode=ro", "immutable=1"):
            db = sqlite3.connect(f"{uri}?{mode}", uri=True, timeout=BUSY_SECONDS,
                                 isolation_level=None, check_same_thread=False)
            try:
                db.execute("PRAGMA user_version").fetchone()
            except sqlite3.OperationalError:
                db.close()
                if mode == "immutable=1":
                    raise
                continue
            return db
        raise AssertionError("unreachable")  # pragma: no cover

    def _migrate(self) -> None:
        found = self.db.execute("PRAGMA user_version").fetchone()[0]
        if found > VERSION:
            raise StoreError(f"the store {self.path} was written by a newer ctwa (schema "
                             f"{found}, this one knows {VERSION})",
                             hint="upgrade ctwa, or use another store with --store PATH")
        if found == VERSION:
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            found = self.db.execute("PRAGMA user_version").fetchone()[0]  # another process?
            for version in range(found + 1, VERSION + 1):
                for statement in _statements(MIGRATIONS[version - 1]):
                    self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {version}")
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # writes

    def add_sends(self, records: Iterable[SendRecord]) -> None:
        with _explained(self.path), self._transaction():
            self.db.executemany(
                "INSERT INTO sends (msg_id, at, recipient, kind, template, latency_ms, verdict,"
                " http_status, request, answer, url) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (astuple(r) for r in records))

    def add_callbacks(self, records: Iterable[CallbackRecord]) -> None:
        with _explained(self.path), self._transaction():
            self.db.executemany(
                "INSERT INTO callbacks (at, route, kind, msg_id, status, code, valid, problems,"
                " body) VALUES (?,?,?,?,?,?,?,?,?)",
                ((r.at, r.route, r.kind, r.msg_id, r.status, r.code, int(r.valid),
                  json.dumps(r.problems) if r.problems else None, r.body) for r in records))

    def add_load_run(self, run: LoadRunRecord) -> None:
        with _explained(self.path), self._transaction():
            self.db.execute(
                "INSERT INTO load_runs (id, at, url, kind, template, prefix, messages, "
                "recipients, offsets, latencies, verdicts) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (run.id, run.at, run.url, run.kind, run.template, run.prefix, run.messages,
                 json.dumps(run.recipients), run.offsets, run.latencies, run.verdicts))

    def finish_load_run(self, run: LoadRunRecord) -> None:
        """The per-message outcomes, once the run is over (its row exists from the start, so
        that callbacks arriving during the run are known to be its)."""
        with _explained(self.path), self._transaction():
            self.db.execute("UPDATE load_runs SET at=?, messages=?, offsets=?, latencies=?, "
                            "verdicts=? WHERE id=?", (run.at, run.messages, run.offsets,
                                                      run.latencies, run.verdicts, run.id))

    def add_run(self, run_id: str, command: str, passed: bool | None,
                summary: dict[str, Any]) -> None:
        with _explained(self.path), self._transaction():
            self.db.execute("INSERT OR REPLACE INTO runs (id, at, command, passed, summary) "
                            "VALUES (?,?,?,?,?)", (run_id, time.time(), command,
                                                   None if passed is None else int(passed),
                                                   json.dumps(summary, default=str)))

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # reads

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with _explained(self.path):
            cursor = self.db.execute(sql, args)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def send(self, msg_id: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM sends WHERE msg_id = ? ORDER BY at DESC LIMIT 1",
                          (msg_id,))
        return rows[0] if rows else None

    def last_send(self) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM sends ORDER BY at DESC, id DESC LIMIT 1")
        return rows[0] if rows else None

    def load_run_for(self, msg_id: str) -> dict[str, Any] | None:
        """The load run a msgId belongs to (its prefix), if it was one."""
        rows = self._rows("SELECT * FROM load_runs WHERE ? >= prefix AND ? < prefix || '~' "
                          "ORDER BY at DESC LIMIT 1", (msg_id, msg_id))
        return rows[0] if rows else None

    def sent_among(self, msg_ids: list[str]) -> set[str]:
        """Which of these msgIds a single send recorded."""
        found: set[str] = set()
        for chunk, marks in _chunks(msg_ids):
            found.update(r["msg_id"] for r in self._rows(
                f"SELECT msg_id FROM sends WHERE msg_id IN ({marks})", tuple(chunk)))
        return found

    def known_prefixes(self) -> list[str]:
        return [r["prefix"] for r in self._rows("SELECT prefix FROM load_runs")]

    def callbacks_for(self, msg_id: str) -> list[dict[str, Any]]:
        return self._rows(
            "SELECT * FROM callbacks WHERE msg_id = ? ORDER BY at, id", (msg_id,))

    def callbacks_with_prefix(self, prefix: str) -> list[dict[str, Any]]:
        return self._rows(
            "SELECT * FROM callbacks WHERE msg_id >= ? AND msg_id < ? ORDER BY at, id",
            (prefix, prefix + "~"))

    def callbacks_between(self, start: float, end: float) -> list[dict[str, Any]]:
        return self._rows(
            "SELECT * FROM callbacks WHERE at >= ? AND at <= ? ORDER BY at, id", (start, end))

    def count_reached(self, msg_ids: list[str], statuses: tuple[str, ...]) -> int:
        """How many of these msgIds have a valid callback with one of these statuses (an
        invalid one is lost at CleverTap: it reaches nothing)."""
        if not msg_ids:
            return 0
        wanted = ",".join("?" * len(statuses))
        total = 0
        for chunk, marks in _chunks(msg_ids):
            rows = self._rows(
                f"SELECT COUNT(DISTINCT msg_id) AS n FROM callbacks WHERE msg_id IN ({marks}) "
                f"AND status IN ({wanted}) AND valid = 1", (*chunk, *statuses))
            total += rows[0]["n"]
        return total

    def count_reached_prefix(self, prefix: str, statuses: tuple[str, ...]) -> int:
        marks = ",".join("?" * len(statuses))
        rows = self._rows(f"SELECT COUNT(DISTINCT msg_id) AS n FROM callbacks WHERE msg_id >= ?"
                          f" AND msg_id < ? AND status IN ({marks}) AND valid = 1",
                          (prefix, prefix + "~", *statuses))
        return int(rows[0]["n"])

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        return self._rows(
            "SELECT id, at, command, passed FROM runs ORDER BY at DESC LIMIT ?", (limit,))

    def run(self, run_id: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM runs WHERE id = ? OR id LIKE ? ORDER BY at DESC",
                          (run_id, run_id + "%"))
        if len(rows) > 1 and rows[0]["id"] != run_id:
            raise StoreError(f"run id {run_id!r} is ambiguous ({len(rows)} runs start so)",
                             hint="give more of it; `ctwa runs list` shows them")
        return rows[0] if rows else None

    def info(self) -> dict[str, Any]:
        counts = {table: self._rows(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"]
                  for table in ("sends", "load_runs", "callbacks", "runs")}
        size = sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal"))
                   if p.exists())
        oldest = self._rows("SELECT MIN(at) AS t FROM (SELECT at FROM sends UNION ALL "
                            "SELECT at FROM callbacks UNION ALL SELECT at FROM runs)")[0]["t"]
        return {"path": str(self.path), "bytes": size, "schema": VERSION, **counts,
                "oldest": oldest}

    def prune(self, before: float) -> dict[str, int]:
        """Delete everything older than ``before`` (wall-clock seconds); returns counts."""
        removed = {}
        with _explained(self.path):
            with self._transaction():
                for table in ("sends", "load_runs", "callbacks", "runs"):
                    removed[table] = self.db.execute(f"DELETE FROM {table} WHERE at < ?",
                                                     (before,)).rowcount
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            if sum(removed.values()):
                self.db.execute("VACUUM")
        return removed
