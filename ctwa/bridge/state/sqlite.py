"""The SQLite backend: one file, one writer thread, one commit per batch of operations.

Every operation is a small function run on one thread that owns the connection. The thread
takes every operation waiting (up to MAX_BATCH), runs them in ONE transaction, each inside its
own savepoint (one failing operation fails alone), commits once and only then answers the
callers: with WAL and ``synchronous=FULL`` that commit is on disk, so 1500 concurrent
``enqueue_send`` calls cost a handful of fsyncs and every one of them is durable when it returns.

An operation that waited past its deadline before its turn is not run (it fails with
:class:`StateUnavailable`), so a caller that gave up never has its write land later behind its back.

Several processes may share one file (SQLite's own locking serialises their transactions, and
claims happen inside one transaction), but wake-ups (``wait_for_work``) reach only the process
that enqueued; the others see new work at their next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson

from ctwa.bridge.state._wait import bounded, settle_all
from ctwa.bridge.state.base import (
    IN_DOUBT_SECONDS,
    ORDER_HOLD_SECONDS,
    ORDER_SETTLE_SECONDS,
    RANK,
    Accepted,
    CallbackItem,
    CallbackSpec,
    Click,
    ClusterStatus,
    Depths,
    Enqueued,
    Mapped,
    Migrated,
    Queue,
    Replica,
    Route,
    SchemaMismatch,
    SendItem,
    StateError,
    StateUnavailable,
    TemplatePage,
    WebhookItem,
    crash_dlr,
    crash_reason,
    decode_cursor,
    encode_cursor,
    expected_before,
)

T = TypeVar("T")

MAX_BATCH = 2000
#: How often expired leases are looked for (at most; at claim time).
REAP_EVERY = 0.25

MIGRATIONS: list[tuple[int, str]] = [
    (1, """
CREATE TABLE bridge_sends (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    msg_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    payload BLOB NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    replica TEXT,
    lease_until REAL,
    lease_seconds REAL,
    not_before REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    wamid TEXT,
    code INTEGER,
    reason TEXT,
    created_at REAL NOT NULL,
    finished_at REAL
);
CREATE INDEX bridge_sends_due ON bridge_sends (state, not_before, id);
CREATE INDEX bridge_sends_replica ON bridge_sends (replica) WHERE replica IS NOT NULL;
CREATE TABLE bridge_wamids (
    wamid TEXT PRIMARY KEY,
    msg_id TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE bridge_webhooks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    body BLOB NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    replica TEXT,
    lease_until REAL,
    lease_seconds REAL,
    not_before REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    received_at REAL NOT NULL,
    finished_at REAL
);
CREATE INDEX bridge_webhooks_due ON bridge_webhooks (state, not_before, id);
CREATE INDEX bridge_webhooks_open ON bridge_webhooks (received_at) WHERE state <> 'done';
CREATE TABLE bridge_callbacks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    msg_id TEXT NOT NULL,
    route TEXT NOT NULL,
    payload BLOB NOT NULL,
    rank INTEGER NOT NULL,
    dedupe_key TEXT UNIQUE,
    state TEXT NOT NULL DEFAULT 'pending',
    replica TEXT,
    lease_until REAL,
    lease_seconds REAL,
    not_before REAL NOT NULL,
    hold_until REAL NOT NULL,
    expects_rank INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at REAL NOT NULL,
    delivered_at REAL
);
CREATE INDEX bridge_callbacks_key ON bridge_callbacks (msg_id, state, rank);
CREATE INDEX bridge_callbacks_due ON bridge_callbacks (state, not_before, id);
CREATE TABLE bridge_templates (
    name TEXT NOT NULL,
    language TEXT NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (name, language)
);
CREATE TABLE bridge_clicks (
    token TEXT PRIMARY KEY,
    msg_id TEXT NOT NULL,
    destination TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE bridge_buckets (
    number_id TEXT PRIMARY KEY,
    tat REAL NOT NULL,
    paused_until REAL NOT NULL
);
CREATE TABLE bridge_replicas (
    name TEXT PRIMARY KEY,
    info BLOB NOT NULL,
    last_seen REAL NOT NULL
);
"""),
    # the crash rule's in-doubt sends (base.py): until when one waits for Meta's status, and
    # wamids recorded after their send was failed (their statuses are not forwarded)
    (2, """
ALTER TABLE bridge_sends ADD COLUMN doubt_until REAL;
ALTER TABLE bridge_wamids ADD COLUMN late INTEGER NOT NULL DEFAULT 0;
CREATE INDEX bridge_sends_doubt ON bridge_sends (doubt_until) WHERE state = 'in_doubt';
"""),
]
VERSION = MIGRATIONS[-1][0]


def _statements(script: str) -> list[str]:
    return [part for part in script.split(";") if part.strip()]


def sqlite_path(url: str) -> Path:
    """``sqlite:///abs/path`` -> /abs/path, ``sqlite://rel`` -> rel, a plain path as it is."""
    text = url[len("sqlite://"):] if url.startswith("sqlite://") else url
    if not text:
        raise StateError("--state sqlite:// names no file; write sqlite:///path/to/bridge.db")
    return Path(text).expanduser()


@dataclass
class _Job:
    fn: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    deadline: float


def _explain(path: Path, exc: BaseException, timeout: float) -> StateError:
    text = str(exc).lower()
    where = f"state {path}"
    if "locked" in text or "busy" in text:
        return StateUnavailable(f"{where} stayed locked by another process for {timeout:g} s",
                                hint="is another bridge or tool writing it? stop it, or use "
                                "another --state")
    if "disk" in text and "full" in text:
        return StateUnavailable(f"{where}: the disk is full; nothing new can be accepted",
                                hint="free space; what was acknowledged is kept")
    if "readonly" in text or "read-only" in text or "unable to open" in text or isinstance(
            exc, (PermissionError, NotADirectoryError, IsADirectoryError)):
        return StateError(f"{where} cannot be written (read-only disk, no permission, or a "
                          "directory)", hint="choose a writable file with --state PATH")
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return StateError(f"{where} is damaged or not a bridge state file",
                          hint="move it aside, or use another --state")
    if "no such table" in text:
        return SchemaMismatch(f"{where} is not migrated",
                              hint=f"run `ctwa bridge migrate --state {path}`")
    if "disk i/o" in text:
        return StateUnavailable(f"{where}: disk I/O error", hint="check the disk")
    return StateError(f"{where}: {exc}")


class SqliteState:
    backend = "sqlite"

    def __init__(self, path: Path, timeout: float, ack_timeout: float) -> None:
        self.path = path
        self.url = str(path)
        self.timeout = timeout
        self.ack_timeout = ack_timeout
        #: withdrawals of late enqueues, kept referenced until they end
        self._background: set[asyncio.Task[None]] = set()
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._conn: sqlite3.Connection | None = None
        self._thread: threading.Thread | None = None
        self._events: dict[str, asyncio.Event] = {}
        self._reaped_at = {"sends": 0.0, "webhooks": 0.0, "callbacks": 0.0}
        self._closed = False
        self._error: BaseException | None = None
        #: see base.ORDER_HOLD_SECONDS; tests shorten it
        self.order_hold = ORDER_HOLD_SECONDS
        #: see base.ORDER_SETTLE_SECONDS; tests shorten it
        self.order_settle = ORDER_SETTLE_SECONDS
        #: see base.IN_DOUBT_SECONDS; the bridge sets its in_doubt_window
        self.in_doubt_window = IN_DOUBT_SECONDS
        #: epoch seconds now: every time this backend stores or compares (tests inject one)
        self.clock: Callable[[], float] = time.time
        self._crash_dlrs = False

    # --- lifecycle ---------------------------------------------------------------------------

    @classmethod
    async def open(cls, url: str, *, timeout: float = 5.0,
                   ack_timeout: float = 0.8) -> SqliteState:
        path = sqlite_path(url)
        state = cls(path, timeout, ack_timeout)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.is_dir():
                raise IsADirectoryError(str(path))
            conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False,
                                   timeout=timeout)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except (sqlite3.Error, OSError) as exc:
            raise _explain(path, exc, timeout) from exc
        if version > VERSION:
            conn.close()
            raise SchemaMismatch(
                f"state {path} has schema version {version}, newer than this ctwa's {VERSION}",
                hint="upgrade ctwa, or point --state at another file")
        state._conn = conn
        state._thread = threading.Thread(target=state._run, name="ctwa-bridge-state",
                                         daemon=True)
        state._thread.start()
        return state

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._jobs.put(None)
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 10)
        if self._conn is not None:
            self._conn.close()

    async def migrate(self) -> Migrated:
        def run(conn: sqlite3.Connection) -> Migrated:
            before = conn.execute("PRAGMA user_version").fetchone()[0]
            if before > VERSION:
                raise SchemaMismatch(f"state {self.path} has schema version {before}, newer "
                                     f"than this ctwa's {VERSION}", hint="upgrade ctwa")
            for version, script in MIGRATIONS:
                if version > before:
                    for statement in _statements(script):
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {version}")
            return Migrated(before, VERSION)

        return await self._call(run)

    async def schema_version(self) -> int:
        return int(await self._call(lambda c: c.execute("PRAGMA user_version").fetchone()[0]))

    async def wait_for_work(self, queue: Queue, timeout: float) -> None:
        event = self._event(queue)
        if not event.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
        event.clear()

    def _event(self, name: str) -> asyncio.Event:
        event = self._events.get(name)
        if event is None:
            event = self._events[name] = asyncio.Event()
        return event

    def _wake(self, name: str) -> None:
        self._event(name).set()

    # --- the writer thread -------------------------------------------------------------------

    async def _call(self, fn: Callable[[sqlite3.Connection], T], *, ack: bool = False) -> T:
        if self._closed:
            raise StateUnavailable(f"state {self.path} is closed")
        limit = self.ack_timeout if ack else self.timeout
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put(_Job(fn, future, loop, time.monotonic() + limit))
        # the thread answers every job (run, refused past its deadline, or failed); the extra
        # second only covers a commit that itself stalls on the disk
        return await bounded(future, limit + 1.0, lambda: StateUnavailable(
            f"state {self.path} did not answer within {limit:g} s",
            hint="the disk is stalled or another process holds the lock"))

    def _run(self) -> None:
        assert self._conn is not None
        conn = self._conn
        while True:
            job = self._jobs.get()
            if job is None:
                return
            batch = [job]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    more = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            self._run_batch(conn, batch)
            if stop:
                return

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        now = time.monotonic()
        results: list[tuple[_Job, Any, BaseException | None]] = []
        live = []
        for job in batch:
            if job.deadline < now:
                results.append((job, None, StateUnavailable(
                    f"state {self.path} was too busy to take this within the deadline")))
            else:
                live.append(job)
        if live:
            done = self._transaction(conn, live)
            if done is None:  # one of them failed in the middle: each again, alone
                done = []
                for job in live:
                    alone = self._transaction(conn, [job])
                    done.extend(alone if alone is not None else [(job, None, self._error)])
            results.extend(done)
        by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        for job, value, outcome in results:
            by_loop.setdefault(job.loop, []).append((job.future, value, outcome))
        for loop, answers in by_loop.items():  # one wake-up per loop, not one per job
            with contextlib.suppress(RuntimeError):  # the caller's loop is gone
                loop.call_soon_threadsafe(settle_all, answers)

    def _transaction(self, conn: sqlite3.Connection,
                     jobs: list[_Job]) -> list[tuple[_Job, Any, BaseException | None]] | None:
        """Run ``jobs`` in one transaction. A job may refuse with a StateError raised before
        it wrote anything (that job fails alone); any other failure rolls the whole
        transaction back and returns None (the caller then runs each alone), or, for a single
        job, fails it."""
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            error = _explain(self.path, exc, self.timeout)
            return [(job, None, error) for job in jobs]
        done: list[tuple[_Job, Any, BaseException | None]] = []
        for job in jobs:
            try:
                done.append((job, job.fn(conn), None))
            except StateError as exc:
                done.append((job, None, exc))
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                self._error = exc if not isinstance(exc, (sqlite3.Error, OSError)) else \
                    _explain(self.path, exc, self.timeout)
                if len(jobs) == 1:
                    return [(job, None, self._error)]
                return None
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            lost = _explain(self.path, exc, self.timeout)
            return [(job, None, lost) for job, _, _ in done]
        return done

    # --- expired leases ----------------------------------------------------------------------

    def _reap(self, conn: sqlite3.Connection, table: str, now: float) -> None:
        key = table.removeprefix("bridge_")
        if now - self._reaped_at[key] < REAP_EVERY:
            return
        self._reaped_at[key] = now
        back = "queued" if table == "bridge_sends" else "pending"
        conn.execute(f"UPDATE {table} AS t SET state = ?, replica = NULL, lease_until = NULL "
                     f"WHERE state = 'claimed' AND lease_until < ? AND {_REPLICA_SILENT}",
                     (back, now, now))
        if table != "bridge_sends":
            return
        # the crash rule (base.py): in flight at a crash -> in doubt, waiting for Meta's
        # status; still in doubt after the window -> failed with its DLR
        crashed = conn.execute(
            "SELECT id, replica FROM bridge_sends AS t WHERE state = 'in_flight' "
            f"AND lease_until < ? AND {_REPLICA_SILENT}", (now, now)).fetchall()
        conn.executemany(
            "UPDATE bridge_sends SET state = 'in_doubt', doubt_until = ?, reason = ?, "
            "lease_until = NULL WHERE id = ?",
            [(now + self.in_doubt_window, crash_reason(replica), id_)
             for id_, replica in crashed])
        doubtful = conn.execute(
            "SELECT id, msg_id, replica FROM bridge_sends WHERE state = 'in_doubt' "
            "AND doubt_until <= ?", (now,)).fetchall()
        for id_, msg_id, replica in doubtful:
            reason = crash_reason(replica, self.in_doubt_window)
            conn.execute("UPDATE bridge_sends SET state = 'failed', code = 1009, reason = ?, "
                         "finished_at = ?, lease_until = NULL WHERE id = ?", (reason, now, id_))
            self._insert_callback(conn, msg_id, "status", crash_dlr(msg_id, reason, now),
                                  RANK["failed"], dedupe=True, now=now, hold=False)
        if doubtful:
            self._crash_dlrs = True  # the claim's caller wakes the callback deliverers

    def _claim(self, conn: sqlite3.Connection, table: str, columns: str, replica: str,
               limit: int, lease: float,
               select: Callable[[float], tuple[str, Any]] | None = None) -> list[Sequence[Any]]:
        """Claim rows of a queue under a lease, for ``replica`` alone (inside the caller's
        transaction): expired leases first (``_reap``), then up to ``limit`` waiting rows that
        are due, oldest first (or those of ``select(now)``: a query and its parameters, whose
        first column is ``id``). Returns the rows: ``id`` first, then ``columns``."""
        now = self.clock()
        self._reap(conn, table, now)
        if select is not None:
            query, params = select(now)
        else:
            waiting = "queued" if table == "bridge_sends" else "pending"
            query = (f"SELECT id, {columns} FROM {table} WHERE state = ? AND not_before <= ? "
                     "ORDER BY id LIMIT ?")
            params = (waiting, now, limit)
        rows = conn.execute(query, params).fetchall()
        if rows:
            conn.executemany(
                f"UPDATE {table} SET state = 'claimed', replica = ?, lease_until = ?, "
                "lease_seconds = ?, attempts = attempts + 1 WHERE id = ?",
                [(replica, now + lease, lease, row[0]) for row in rows])
        return rows

    # --- send outbox -------------------------------------------------------------------------

    async def enqueue_send(self, msg_id: str, kind: str, payload: dict[str, Any]) -> Enqueued:
        body = orjson.dumps(payload)

        def run(conn: sqlite3.Connection) -> Enqueued:
            now = self.clock()
            cur = conn.execute(
                "INSERT INTO bridge_sends (msg_id, kind, payload, not_before, created_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (msg_id) DO NOTHING",
                (msg_id, kind, body, now, now))
            if cur.rowcount == 1:
                return Enqueued(int(cur.lastrowid or 0), False)
            row = conn.execute("SELECT id FROM bridge_sends WHERE msg_id = ?",
                               (msg_id,)).fetchone()
            return Enqueued(int(row[0]), True)

        started = self.clock()
        try:
            result = await self._call(run, ack=True)
        except StateUnavailable:
            # the caller answers CleverTap 2004: if the row was committed all the same (the
            # commit's answer came after the timer), take it back so it is never sent
            def withdraw(conn: sqlite3.Connection) -> None:
                conn.execute("DELETE FROM bridge_sends WHERE msg_id = ? AND state = 'queued' "
                             "AND created_at >= ?", (msg_id, started))

            async def withdrawn() -> None:
                with contextlib.suppress(StateError):
                    await self._call(withdraw)

            # in the background: CleverTap is answered 2004 now, not after the state's own
            # timeout (the withdrawal waits for the same lock that made the enqueue late)
            task = asyncio.get_running_loop().create_task(withdrawn())
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            raise
        if not result.duplicate:
            self._wake("sends")
        return result

    async def claim_sends(self, replica: str, limit: int, lease: float) -> list[SendItem]:
        def run(conn: sqlite3.Connection) -> list[SendItem]:
            rows = self._claim(conn, "bridge_sends", "msg_id, kind, payload, attempts, "
                               "created_at", replica, limit, lease)
            return [SendItem(row[0], row[1], row[2], orjson.loads(row[3]), row[4], row[5])
                    for row in rows]

        items = await self._call(run)
        if self._crash_dlrs:
            self._crash_dlrs = False
            self._wake("callbacks")
        return items

    async def mark_in_flight(self, id: int) -> None:
        def run(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                "UPDATE bridge_sends SET state = 'in_flight', "
                "lease_until = ? + COALESCE(lease_seconds, 30) "
                "WHERE id = ? AND state = 'claimed'", (self.clock(), id))
            if cur.rowcount != 1:
                raise StateError(f"send {id} is not claimed any more (its lease ran out); "
                                 "not sending it")

        await self._call(run)

    async def complete_send(self, id: int, wamid: str) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            now = self.clock()
            row = conn.execute("SELECT msg_id, state FROM bridge_sends WHERE id = ?",
                               (id,)).fetchone()
            if row is None:
                raise StateError(f"send {id} does not exist")
            conn.execute("INSERT INTO bridge_wamids (wamid, msg_id, created_at, late) VALUES "
                         "(?, ?, ?, ?) ON CONFLICT (wamid) DO NOTHING",
                         (wamid, row[0], now, int(row[1] == "failed")))
            if row[1] in ("sent", "failed"):
                conn.execute("UPDATE bridge_sends SET wamid = ? WHERE id = ?", (wamid, id))
                return False
            conn.execute("UPDATE bridge_sends SET state = 'sent', wamid = ?, finished_at = ?, "
                         "replica = NULL, lease_until = NULL WHERE id = ?", (wamid, now, id))
            return True

        return await self._call(run)

    async def fail_send(self, id: int, code: int, reason: str,
                        dlr_payload: dict[str, Any]) -> None:
        def run(conn: sqlite3.Connection) -> None:
            now = self.clock()
            row = conn.execute("SELECT msg_id, state FROM bridge_sends WHERE id = ?",
                               (id,)).fetchone()
            if row is None:
                raise StateError(f"send {id} does not exist")
            if row[1] in ("sent", "failed"):
                return
            conn.execute("UPDATE bridge_sends SET state = 'failed', code = ?, reason = ?, "
                         "finished_at = ?, replica = NULL, lease_until = NULL WHERE id = ?",
                         (code, reason, now, id))
            self._insert_callback(conn, row[0], "status", dlr_payload, RANK["failed"],
                                  dedupe=True, now=now, hold=False)

        await self._call(run)
        self._wake("callbacks")

    async def retry_send(self, id: int, not_before: float) -> None:
        await self._call(lambda conn: conn.execute(
            "UPDATE bridge_sends SET state = 'queued', replica = NULL, lease_until = NULL, "
            "not_before = ? WHERE id = ? AND state IN ('claimed', 'in_flight')",
            (not_before, id)))

    async def lookup_msg_id(self, wamid: str) -> str | None:
        found = await self.lookup_wamid(wamid)
        return None if found is None else found.msg_id

    async def lookup_wamid(self, wamid: str) -> Mapped | None:
        def run(conn: sqlite3.Connection) -> Mapped | None:
            row = conn.execute("SELECT msg_id, late FROM bridge_wamids WHERE wamid = ?",
                               (wamid,)).fetchone()
            return None if row is None else Mapped(str(row[0]), bool(row[1]))

        return await self._call(run)

    async def accepted(self, msg_id: str) -> Accepted | None:
        def run(conn: sqlite3.Connection) -> Accepted | None:
            row = conn.execute("SELECT id, msg_id, kind, state, wamid, code, reason, "
                               "created_at, doubt_until FROM bridge_sends WHERE msg_id = ?",
                               (msg_id,)).fetchone()
            return None if row is None else Accepted(*row)

        return await self._call(run)

    # --- webhook inbox -----------------------------------------------------------------------

    async def store_webhook(self, raw_body: bytes) -> int:
        def run(conn: sqlite3.Connection) -> int:
            now = self.clock()
            cur = conn.execute("INSERT INTO bridge_webhooks (body, not_before, received_at) "
                               "VALUES (?, ?, ?)", (bytes(raw_body), now, now))
            return int(cur.lastrowid or 0)

        id_ = await self._call(run, ack=True)
        self._wake("webhooks")
        return id_

    async def claim_webhooks(self, replica: str, limit: int, lease: float) -> list[WebhookItem]:
        def run(conn: sqlite3.Connection) -> list[WebhookItem]:
            rows = self._claim(conn, "bridge_webhooks", "body, received_at, attempts",
                               replica, limit, lease)
            return [WebhookItem(row[0], bytes(row[1]), row[2], row[3]) for row in rows]

        return await self._call(run)

    async def finish_webhook(self, id: int, callbacks: list[CallbackSpec]) -> int:
        def run(conn: sqlite3.Connection) -> int:
            now = self.clock()
            cur = conn.execute("UPDATE bridge_webhooks SET state = 'done', finished_at = ?, "
                               "replica = NULL, lease_until = NULL "
                               "WHERE id = ? AND state != 'done'", (now, id))
            if cur.rowcount != 1:
                return 0  # finished already (by another replica after a lease ran out)
            return sum(self._insert_callback(conn, spec.msg_id, spec.route, spec.payload,
                                             spec.rank, dedupe=spec.dedupe, now=now)
                       for spec in callbacks)

        count = await self._call(run)
        if count:
            self._wake("callbacks")
        return count

    async def defer_webhook(self, id: int, not_before: float) -> None:
        await self._call(lambda conn: conn.execute(
            "UPDATE bridge_webhooks SET state = 'pending', replica = NULL, lease_until = NULL, "
            "not_before = ? WHERE id = ? AND state = 'claimed'", (not_before, id)))

    # --- callback outbox ---------------------------------------------------------------------

    def _insert_callback(self, conn: sqlite3.Connection, msg_id: str, route: str,
                         payload: dict[str, Any], rank: int, *, dedupe: bool, now: float,
                         hold: bool = True) -> int:
        key = f"{msg_id}\x1f{route}\x1f{rank}" if dedupe else None
        expects = expected_before(rank) if hold else None
        cur = conn.execute(
            "INSERT INTO bridge_callbacks (msg_id, route, payload, rank, dedupe_key, "
            "not_before, hold_until, expects_rank, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING",
            (msg_id, route, orjson.dumps(payload), rank, key, now, now + self.order_hold,
             expects, now))
        return int(cur.rowcount == 1)

    async def enqueue_callback(self, msg_id: str, route: Route, payload: dict[str, Any],
                               rank: int, *, dedupe: bool = True) -> bool:
        added = await self._call(lambda conn: self._insert_callback(
            conn, msg_id, route, payload, rank, dedupe=dedupe, now=self.clock()))
        if added:
            self._wake("callbacks")
        return bool(added)

    async def claim_callbacks(self, replica: str, limit: int,
                              lease: float) -> list[CallbackItem]:
        def run(conn: sqlite3.Connection) -> list[CallbackItem]:
            rows = self._claim(conn, "bridge_callbacks", "", replica, limit, lease,
                               select=lambda now: (_CLAIM_CALLBACKS, {
                                   "now": now, "limit": limit, "settle": self.order_settle}))
            return [CallbackItem(row[0], row[1], row[2], orjson.loads(row[3]), row[4], row[5],
                                 row[6], row[7]) for row in rows]

        return await self._call(run)

    async def complete_callback(self, id: int) -> None:
        await self._call(lambda conn: conn.execute(
            "UPDATE bridge_callbacks SET state = 'done', delivered_at = ?, replica = NULL, "
            "lease_until = NULL WHERE id = ?", (self.clock(), id)))
        self._wake("callbacks")  # the message's next callback may be due now

    async def retry_callback(self, id: int, not_before: float, error: str) -> None:
        await self._call(lambda conn: conn.execute(
            "UPDATE bridge_callbacks SET state = 'pending', replica = NULL, lease_until = NULL, "
            "not_before = ?, last_error = ? WHERE id = ? AND state = 'claimed'",
            (not_before, error[:500], id)))

    async def hasten_callbacks(self, route: Route) -> int:
        def run(conn: sqlite3.Connection) -> int:
            now = self.clock()
            cur = conn.execute("UPDATE bridge_callbacks SET not_before = ? WHERE "
                               "state = 'pending' AND route = ? AND not_before > ? "
                               "AND attempts > 0", (now, route, now))
            return int(cur.rowcount)

        count = await self._call(run)
        if count:
            self._wake("callbacks")
        return count

    # --- templates ---------------------------------------------------------------------------

    async def replace_templates(self, templates: list[dict[str, Any]]) -> int:
        rows = {}
        for template in templates:
            name, language = template.get("name"), template.get("language")
            if isinstance(name, str) and isinstance(language, str):
                rows[(name, language)] = orjson.dumps(template)

        def run(conn: sqlite3.Connection) -> int:
            conn.execute("DELETE FROM bridge_templates")
            conn.executemany("INSERT INTO bridge_templates (name, language, body) "
                             "VALUES (?, ?, ?)", [(n, lang, b) for (n, lang), b in rows.items()])
            return len(rows)

        return await self._call(run)

    async def get_template(self, name: str, language: str) -> dict[str, Any] | None:
        def run(conn: sqlite3.Connection) -> dict[str, Any] | None:
            row = conn.execute("SELECT body FROM bridge_templates WHERE name = ? AND "
                               "language = ?", (name, language)).fetchone()
            return None if row is None else orjson.loads(row[0])

        return await self._call(run)

    async def list_templates(self, limit: int, after: str | None = None) -> TemplatePage:
        start = decode_cursor(after) if after else None

        def run(conn: sqlite3.Connection) -> TemplatePage:
            if start is None:
                rows = conn.execute("SELECT name, language, body FROM bridge_templates "
                                    "ORDER BY name, language LIMIT ?", (limit + 1,)).fetchall()
            else:
                rows = conn.execute("SELECT name, language, body FROM bridge_templates "
                                    "WHERE (name, language) > (?, ?) ORDER BY name, language "
                                    "LIMIT ?", (*start, limit + 1)).fetchall()
            page = rows[:limit]
            more = len(rows) > limit and page
            return TemplatePage([orjson.loads(r[2]) for r in page],
                                encode_cursor(page[-1][0], page[-1][1]) if more else None)

        return await self._call(run)

    # --- clicks ------------------------------------------------------------------------------

    async def put_click(self, token: str, msg_id: str, destination: str) -> None:
        await self._call(lambda conn: conn.execute(
            "INSERT INTO bridge_clicks (token, msg_id, destination, created_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (token) DO UPDATE SET msg_id = excluded.msg_id, "
            "destination = excluded.destination", (token, msg_id, destination, self.clock())))

    async def get_click(self, token: str) -> Click | None:
        def run(conn: sqlite3.Connection) -> Click | None:
            row = conn.execute("SELECT token, msg_id, destination, created_at FROM "
                               "bridge_clicks WHERE token = ?", (token,)).fetchone()
            return None if row is None else Click(*row)

        return await self._call(run)

    # --- the rate limit ----------------------------------------------------------------------

    async def take_tokens(self, number_id: str, n: int, mps: float) -> float:
        if n < 1 or mps <= 0:
            raise ValueError("take_tokens needs n >= 1 and mps > 0")

        def run(conn: sqlite3.Connection) -> float:
            now = self.clock()
            row = conn.execute("SELECT tat, paused_until FROM bridge_buckets WHERE "
                               "number_id = ?", (number_id,)).fetchone()
            start = now if row is None else max(row[0], now, row[1])
            conn.execute("INSERT INTO bridge_buckets (number_id, tat, paused_until) VALUES "
                         "(?, ?, 0) ON CONFLICT (number_id) DO UPDATE SET tat = excluded.tat",
                         (number_id, start + n / mps))
            return start - now

        return float(await self._call(run))

    async def slow_down(self, number_id: str, seconds: float) -> None:
        def run(conn: sqlite3.Connection) -> None:
            until = self.clock() + seconds
            conn.execute("INSERT INTO bridge_buckets (number_id, tat, paused_until) VALUES "
                         "(?, ?, ?) ON CONFLICT (number_id) DO UPDATE SET "
                         "tat = MAX(tat, excluded.tat), "
                         "paused_until = MAX(paused_until, excluded.paused_until)",
                         (number_id, until, until))

        await self._call(run)

    # --- the cluster -------------------------------------------------------------------------

    async def heartbeat(self, replica: str, info: dict[str, Any]) -> None:
        body = orjson.dumps(info)

        def run(conn: sqlite3.Connection) -> None:
            # one row: the leases of this replica's items count from its last_seen
            conn.execute("INSERT INTO bridge_replicas (name, info, last_seen) VALUES (?, ?, ?) "
                         "ON CONFLICT (name) DO UPDATE SET info = excluded.info, "
                         "last_seen = excluded.last_seen", (replica, body, self.clock()))

        await self._call(run)

    def _depths(self, conn: sqlite3.Connection) -> Depths:
        sends = dict(conn.execute(
            "SELECT state, COUNT(*) FROM bridge_sends WHERE state IN "
            "('queued', 'claimed', 'in_flight', 'in_doubt') GROUP BY state").fetchall())
        webhooks = conn.execute("SELECT COUNT(*) FROM bridge_webhooks WHERE state IN "
                                "('pending', 'claimed')").fetchone()[0]
        callbacks = conn.execute("SELECT COUNT(*) FROM bridge_callbacks WHERE state IN "
                                 "('pending', 'claimed')").fetchone()[0]
        return Depths(sends.get("queued", 0), sends.get("claimed", 0),
                      sends.get("in_flight", 0), webhooks, callbacks,
                      sends.get("in_doubt", 0))

    async def depths(self) -> Depths:
        return await self._call(self._depths)

    async def cluster_status(self) -> ClusterStatus:
        def run(conn: sqlite3.Connection) -> ClusterStatus:
            now = self.clock()
            replicas = [Replica(name, orjson.loads(info), seen, max(0.0, now - seen))
                        for name, info, seen in conn.execute(
                            "SELECT name, info, last_seen FROM bridge_replicas ORDER BY name")]
            oldest = conn.execute("SELECT MIN(created_at) FROM bridge_sends WHERE state IN "
                                  "('queued', 'claimed', 'in_flight')").fetchone()[0]
            lag = conn.execute("SELECT MIN(created_at) FROM bridge_callbacks WHERE state IN "
                               "('pending', 'claimed')").fetchone()[0]
            done = dict(conn.execute("SELECT state, COUNT(*) FROM bridge_sends WHERE state IN "
                                     "('sent', 'failed') GROUP BY state").fetchall())
            delivered = conn.execute("SELECT COUNT(*) FROM bridge_callbacks WHERE "
                                     "state = 'done'").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            return ClusterStatus(
                "sqlite", version, replicas, self._depths(conn),
                None if oldest is None else max(0.0, now - oldest),
                None if lag is None else max(0.0, now - lag),
                done.get("sent", 0), done.get("failed", 0), delivered)

        return await self._call(run)


#: An item's lease has run out only when its replica has not heartbeated within the lease
#: either (``t`` is the item's table; the parameter is now): a live replica keeps its claims.
_REPLICA_SILENT = ("NOT EXISTS (SELECT 1 FROM bridge_replicas r WHERE r.name = t.replica "
                   "AND r.last_seen + t.lease_seconds > ?)")

#: Each order key's next callback only: none of its callbacks claimed, none pending before it
#: (rank, then arrival), and either an earlier rank exists or the hold for one has passed.
_CLAIM_CALLBACKS = """
SELECT c.id, c.msg_id, c.route, c.payload, c.rank, c.attempts, c.created_at, c.last_error
FROM bridge_callbacks c
WHERE c.state = 'pending' AND c.not_before <= :now
  AND NOT EXISTS (
    SELECT 1 FROM bridge_callbacks e
    WHERE e.msg_id = c.msg_id AND e.id != c.id
      AND (e.state = 'claimed'
           OR (e.state = 'pending' AND (e.rank < c.rank OR (e.rank = c.rank AND e.id < c.id)))))
  AND (c.expects_rank IS NULL OR c.hold_until <= :now
    OR (c.created_at + :settle <= :now AND NOT EXISTS (
    SELECT 1 FROM bridge_webhooks w WHERE w.state <> 'done'
      AND w.received_at <= c.created_at + :settle))
    OR EXISTS (
    SELECT 1 FROM bridge_callbacks p WHERE p.msg_id = c.msg_id
      AND p.rank >= c.expects_rank AND p.rank < c.rank))
ORDER BY c.id
LIMIT :limit
"""

__all__ = ["MIGRATIONS", "VERSION", "SqliteState"]
