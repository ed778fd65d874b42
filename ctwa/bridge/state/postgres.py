"""The PostgreSQL backend (psycopg 3): the state several bridge replicas share.

* **Claims** use ``SELECT ... FOR UPDATE SKIP LOCKED``: two replicas claiming at once get
  disjoint rows without waiting on each other.
* **Clock**: every time (leases, due times, the token bucket) is the database's
  (``clock_timestamp()``/``statement_timestamp()``), so replicas on machines whose clocks
  disagree still agree on who holds what and when the next send slot is.
* **Group commit**: the acknowledging writes (``enqueue_send``, ``store_webhook``) and the
  small state changes of the workers (in flight, complete, fail, retry, callback done) are
  gathered by writer tasks and committed together: one fsync for many callers, each caller
  answered only after its commit. If a grouped transaction fails, each operation is retried
  alone, so one bad operation cannot fail its neighbours.
* **Wake-ups**: writes ``NOTIFY`` a channel per queue in their transaction; one connection per
  replica ``LISTEN``s and wakes that replica's idle workers. Lost notifications (the listening
  connection was down) only cost a poll interval, never work.
* **Bounded**: the pool waits at most ``timeout`` (``ack_timeout`` for acknowledging writes)
  for a connection, statements time out server-side at ``timeout``, and every call is bounded
  on the client as well, so a lost database gives :class:`StateUnavailable` quickly, and the
  pool reconnects in the background so the first call after it is back works again. One
  exception: an ``enqueue_send`` whose commit has begun by its ack deadline waits for the
  commit's outcome (up to ``timeout``), so that "not stored" is never said of a stored row.
* The rate-limit bucket and heartbeats are written with ``synchronous_commit = off``: losing
  their last few hundred milliseconds in a database crash costs nothing, and they are the
  only writes made many times a second that no one acknowledges.

Passwords: put them in ``PGPASSWORD`` or ``~/.pgpass`` (libpq reads both), not in the URL on a
command line; a URL's password is never printed (:func:`safe_url`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
import psycopg
import psycopg.errors
from psycopg.types.json import Jsonb, set_json_dumps, set_json_loads
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ctwa.bridge.state._wait import bounded, settle
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
    safe_url,
)

T = TypeVar("T")
Conn = psycopg.AsyncConnection[Any]

POOL_SIZE = 8
MAX_GROUP = 500
#: ``enqueue_send`` tells its caller "not stored" this long after its ack deadline unless the
#: row's commit has begun (then the caller waits for the commit's outcome); a row whose
#: caller was told so, or will be within ``COMMIT_MARGIN``, is removed in its own
#: transaction rather than committed. (Told 2004, then committed and sent all the same:
#: 1,069-1,120 of 20,000 in loaded cluster runs, when the writer's own deadline cut off
#: commits in flight and when a worker claimed a row before its withdrawal.)
GIVE_UP_AFTER = 0.5
COMMIT_MARGIN = 0.3
GROUP_WRITERS = 2
SEND_WRITERS = 2
REAP_EVERY = 0.25
CHANNELS = {"sends": "ctwa_bridge_sends", "webhooks": "ctwa_bridge_webhooks",
            "callbacks": "ctwa_bridge_callbacks"}
#: "now" in seconds since the epoch, fixed for one statement / read at the moment of use.
NOW = "extract(epoch from statement_timestamp())::float8"
CLOCK = "extract(epoch from clock_timestamp())::float8"

set_json_dumps(orjson.dumps)
set_json_loads(orjson.loads)

MIGRATIONS: list[tuple[int, str]] = [
    (1, """
CREATE TABLE bridge_sends (
    id BIGSERIAL PRIMARY KEY,
    msg_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    payload JSONB NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    replica TEXT,
    lease_until DOUBLE PRECISION,
    lease_seconds DOUBLE PRECISION,
    not_before DOUBLE PRECISION NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    wamid TEXT,
    code INTEGER,
    reason TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    finished_at DOUBLE PRECISION
);
CREATE INDEX bridge_sends_due ON bridge_sends (not_before, id) WHERE state = 'queued';
CREATE INDEX bridge_sends_leased ON bridge_sends (lease_until)
    WHERE state IN ('claimed', 'in_flight');
CREATE INDEX bridge_sends_replica ON bridge_sends (replica)
    WHERE state IN ('claimed', 'in_flight');
CREATE INDEX bridge_sends_open ON bridge_sends (state, created_at)
    WHERE state IN ('queued', 'claimed', 'in_flight');
CREATE TABLE bridge_wamids (
    wamid TEXT PRIMARY KEY,
    msg_id TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE bridge_webhooks (
    id BIGSERIAL PRIMARY KEY,
    body BYTEA NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    replica TEXT,
    lease_until DOUBLE PRECISION,
    lease_seconds DOUBLE PRECISION,
    not_before DOUBLE PRECISION NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    received_at DOUBLE PRECISION NOT NULL,
    finished_at DOUBLE PRECISION
);
CREATE INDEX bridge_webhooks_due ON bridge_webhooks (not_before, id) WHERE state = 'pending';
CREATE INDEX bridge_webhooks_leased ON bridge_webhooks (lease_until) WHERE state = 'claimed';
CREATE INDEX bridge_webhooks_open ON bridge_webhooks (received_at) WHERE state <> 'done';
CREATE TABLE bridge_callbacks (
    id BIGSERIAL PRIMARY KEY,
    msg_id TEXT NOT NULL,
    route TEXT NOT NULL,
    payload JSONB NOT NULL,
    rank INTEGER NOT NULL,
    dedupe_key TEXT UNIQUE,
    state TEXT NOT NULL DEFAULT 'pending',
    replica TEXT,
    lease_until DOUBLE PRECISION,
    lease_seconds DOUBLE PRECISION,
    not_before DOUBLE PRECISION NOT NULL,
    hold_until DOUBLE PRECISION NOT NULL,
    expects_rank INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    delivered_at DOUBLE PRECISION
);
CREATE INDEX bridge_callbacks_key ON bridge_callbacks (msg_id, rank, id);
CREATE INDEX bridge_callbacks_due ON bridge_callbacks (id) WHERE state = 'pending';
CREATE INDEX bridge_callbacks_open ON bridge_callbacks (msg_id)
    WHERE state IN ('pending', 'claimed');
CREATE INDEX bridge_callbacks_leased ON bridge_callbacks (lease_until) WHERE state = 'claimed';
CREATE TABLE bridge_templates (
    name TEXT NOT NULL,
    language TEXT NOT NULL,
    body JSONB NOT NULL,
    PRIMARY KEY (name, language)
);
CREATE TABLE bridge_clicks (
    token TEXT PRIMARY KEY,
    msg_id TEXT NOT NULL,
    destination TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE bridge_buckets (
    number_id TEXT PRIMARY KEY,
    tat DOUBLE PRECISION NOT NULL,
    paused_until DOUBLE PRECISION NOT NULL
);
CREATE TABLE bridge_replicas (
    name TEXT PRIMARY KEY,
    info JSONB NOT NULL,
    last_seen DOUBLE PRECISION NOT NULL
);
"""),
    # the crash rule's in-doubt sends (base.py): until when one waits for Meta's status, and
    # wamids recorded after their send was failed (their statuses are not forwarded)
    (2, """
ALTER TABLE bridge_sends ADD COLUMN doubt_until DOUBLE PRECISION;
ALTER TABLE bridge_wamids ADD COLUMN late BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX bridge_sends_doubt ON bridge_sends (doubt_until) WHERE state = 'in_doubt';
"""),
]
VERSION = MIGRATIONS[-1][0]
#: Serialises concurrent ``migrate()`` calls of several replicas (any constant works).
MIGRATE_LOCK = 0x63747761


def _statements(script: str) -> list[str]:
    return [part for part in script.split(";") if part.strip()]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


@dataclass
class _Op:
    fn: Callable[[Conn], Awaitable[Any]] | None
    future: asyncio.Future[Any]
    deadline: float
    notify: tuple[str, ...]
    #: ops of one kind done by one statement for the whole group (see _BATCHED)
    batch: str | None = None
    arg: Any = None


class PostgresState:
    backend = "postgresql"

    def __init__(self, url: str, timeout: float, ack_timeout: float) -> None:
        self._dsn = url
        self.url = safe_url(url)
        self.timeout = timeout
        self.ack_timeout = ack_timeout
        self._pool: AsyncConnectionPool[Any] | None = None
        self._fast: AsyncConnectionPool[Any] | None = None
        #: the acknowledging writes' own connections: never waiting behind workers' reads
        self._ackpool: AsyncConnectionPool[Any] | None = None
        self._lookups: asyncio.Queue[tuple[str, asyncio.Future[Mapped | None], float]] = (
            asyncio.Queue())
        self._ops: asyncio.Queue[_Op] = asyncio.Queue()
        self._acks: asyncio.Queue[_Op] = asyncio.Queue()  # never behind the workers' ops
        #: msg_id, kind, payload, the caller's future, its ack deadline, and a flag the writer
        #: sets when the row's commit begins (the caller then waits for its outcome)
        self._sends: asyncio.Queue[tuple[str, str, bytes, asyncio.Future[Enqueued], float,
                                         list[bool]]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._listener: asyncio.Task[None] | None = None
        self._events: dict[str, asyncio.Event] = {}
        self._reaped_at = {"sends": 0.0, "webhooks": 0.0, "callbacks": 0.0}
        self._closed = False
        #: see base.ORDER_HOLD_SECONDS; tests shorten it
        self.order_hold = ORDER_HOLD_SECONDS
        #: see base.ORDER_SETTLE_SECONDS; tests shorten it
        self.order_settle = ORDER_SETTLE_SECONDS
        #: see base.IN_DOUBT_SECONDS; the bridge sets its in_doubt_window
        self.in_doubt_window = IN_DOUBT_SECONDS

    # --- lifecycle ---------------------------------------------------------------------------

    def _unavailable(self, exc: BaseException | None = None) -> StateUnavailable:
        why = "did not answer in time" if exc is None or isinstance(
            exc, (asyncio.TimeoutError, PoolTimeout, psycopg.errors.QueryCanceled)) else \
            _first_line(exc)
        return StateUnavailable(f"PostgreSQL at {self.url} is unreachable: {why}",
                                hint="check that it runs and --state; ctwa retries by itself")

    @classmethod
    async def open(cls, url: str, *, timeout: float = 5.0,
                   ack_timeout: float = 0.8) -> PostgresState:
        state = cls(url, timeout, ack_timeout)
        connect_timeout = max(1, round(timeout))
        try:
            probe = await asyncio.wait_for(psycopg.AsyncConnection.connect(
                url, autocommit=True, connect_timeout=connect_timeout), timeout + 1)
        except (psycopg.Error, OSError, asyncio.TimeoutError) as exc:
            raise state._unavailable(exc) from None
        try:
            version = await state._read_version(probe)
        finally:
            await probe.close()
        if version > VERSION:
            raise SchemaMismatch(
                f"PostgreSQL at {state.url} has bridge schema version {version}, newer than "
                f"this ctwa's {VERSION}", hint="upgrade ctwa on every replica")

        statement_ms = int(timeout * 1000)

        async def configure(conn: Conn) -> None:
            await conn.execute(f"SET statement_timeout = {statement_ms}")
            await conn.execute(f"SET lock_timeout = {statement_ms}")
            await conn.commit()

        async def configure_fast(conn: Conn) -> None:
            await configure(conn)
            await conn.execute("SET synchronous_commit = off")
            await conn.commit()

        kwargs = {"connect_timeout": connect_timeout}
        state._pool = AsyncConnectionPool(url, min_size=2, max_size=POOL_SIZE, open=False,
                                          timeout=timeout, kwargs=kwargs, configure=configure,
                                          name="ctwa-bridge")
        state._fast = AsyncConnectionPool(url, min_size=1, max_size=2, open=False,
                                          timeout=timeout, kwargs=kwargs,
                                          configure=configure_fast, name="ctwa-bridge-fast")
        state._ackpool = AsyncConnectionPool(url, min_size=SEND_WRITERS + 1,
                                             max_size=SEND_WRITERS + 1, open=False,
                                             timeout=ack_timeout, kwargs=kwargs,
                                             configure=configure, name="ctwa-bridge-ack")
        try:
            await state._pool.open(wait=True, timeout=timeout)
            await state._fast.open(wait=True, timeout=timeout)
            await state._ackpool.open(wait=True, timeout=timeout)
        except (PoolTimeout, psycopg.Error, OSError) as exc:
            await state._close_pools()
            raise state._unavailable(exc) from None
        return state

    @staticmethod
    async def _read_version(conn: Conn) -> int:
        row = await (await conn.execute(
            "SELECT to_regclass('bridge_schema') IS NOT NULL")).fetchone()
        if not row or not row[0]:
            return 0
        row = await (await conn.execute("SELECT max(version) FROM bridge_schema")).fetchone()
        return int(row[0] or 0) if row else 0

    async def _close_pools(self) -> None:
        for pool in (self._pool, self._fast, self._ackpool):
            if pool is not None:
                with contextlib.suppress(Exception):
                    await pool.close(timeout=2)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # let the group writers finish what they hold, then stop them
        for _ in range(50):
            if self._ops.empty() and self._acks.empty() and self._sends.empty():
                break
            await asyncio.sleep(0.02)
        for task in [*self._tasks, *([self._listener] if self._listener else [])]:
            task.cancel()
        for task in [*self._tasks, *([self._listener] if self._listener else [])]:
            with contextlib.suppress(BaseException):
                await task
        await self._close_pools()

    async def migrate(self) -> Migrated:
        async def run(conn: Conn) -> Migrated:
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
            await conn.execute("CREATE TABLE IF NOT EXISTS bridge_schema ("
                               "version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL "
                               "DEFAULT now())")
            before = await self._read_version(conn)
            if before > VERSION:
                raise SchemaMismatch(
                    f"PostgreSQL at {self.url} has bridge schema version {before}, newer than "
                    f"this ctwa's {VERSION}", hint="upgrade ctwa on every replica")
            for version, script in MIGRATIONS:
                if version > before:
                    for statement in _statements(script):
                        await conn.execute(statement)
                    await conn.execute("INSERT INTO bridge_schema (version) VALUES (%s)",
                                       (version,))
            return Migrated(before, VERSION)

        return await self._direct(run)

    async def schema_version(self) -> int:
        return await self._direct(self._read_version)

    # --- running operations ------------------------------------------------------------------

    async def _direct(self, fn: Callable[[Conn], Awaitable[T]], *, fast: bool = False,
                      limit: float | None = None, ack: bool = False) -> T:
        """One operation in its own transaction, bounded by ``limit`` (default ``timeout``)."""
        if self._closed or self._pool is None or self._fast is None or self._ackpool is None:
            raise StateUnavailable(f"state {self.url} is closed")
        pool = self._ackpool if ack else self._fast if fast else self._pool
        budget = self.timeout if limit is None else limit

        async def run() -> T:
            for attempt in range(3):
                broken = False
                try:
                    async with pool.connection(timeout=budget) as conn:
                        try:
                            return await fn(conn)
                        except psycopg.OperationalError:
                            broken = conn.broken
                            raise
                except psycopg.errors.TransactionRollback:  # deadlock or serialization
                    if attempt == 2:
                        raise
                    await asyncio.sleep(0.01 * (attempt + 1))
                except psycopg.OperationalError:
                    # a pooled connection the server dropped (a restart): the pool discards it;
                    # try once more on a fresh one (what failed was not committed, or, for a
                    # commit cut off in flight, is applied again: every write here is
                    # idempotent or guarded by its row's state)
                    if not broken or attempt == 2:
                        raise
            raise AssertionError("unreachable")

        try:
            return await asyncio.wait_for(run(), budget)
        except StateError:
            raise
        except psycopg.errors.UndefinedTable as exc:
            raise SchemaMismatch(f"PostgreSQL at {self.url} is not migrated",
                                 hint=f"run `ctwa bridge migrate --state {self.url}`") from exc
        except (psycopg.OperationalError, psycopg.errors.QueryCanceled, PoolTimeout,
                asyncio.TimeoutError, OSError) as exc:
            raise self._unavailable(exc) from None
        except psycopg.Error as exc:
            raise StateError(f"PostgreSQL at {self.url}: {_first_line(exc)}") from exc

    async def _grouped(self, fn: Callable[[Conn], Awaitable[T]] | None, *, ack: bool = False,
                       notify: tuple[str, ...] = (), batch: str | None = None,
                       arg: Any = None) -> T:
        """Run ``fn`` (or the ``batch`` kind's statement with ``arg``) in a transaction shared
        with other callers' (see the module docstring)."""
        if self._closed:
            raise StateUnavailable(f"state {self.url} is closed")
        self._start_writers()
        limit = self.ack_timeout if ack else self.timeout
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        (self._acks if ack else self._ops).put_nowait(
            _Op(fn, future, time.monotonic() + limit, notify, batch, arg))
        return await bounded(future, limit + 0.5, self._unavailable)

    def _start_writers(self) -> None:
        if not self._tasks:
            for _ in range(GROUP_WRITERS):
                self._tasks.append(asyncio.create_task(self._op_writer(self._ops)))
            self._tasks.append(asyncio.create_task(self._op_writer(self._acks, ack=True)))
            self._tasks.append(asyncio.create_task(self._lookup_reader()))
            for _ in range(SEND_WRITERS):
                self._tasks.append(asyncio.create_task(self._send_writer()))

    async def _op_writer(self, queue: asyncio.Queue[_Op], ack: bool = False) -> None:
        while True:
            batch = [await queue.get()]
            while len(batch) < MAX_GROUP and not queue.empty():
                batch.append(queue.get_nowait())
            now = time.monotonic()
            live = []
            for op in batch:
                if op.deadline < now:
                    settle(op.future, None, self._unavailable())
                else:
                    live.append(op)
            if not live:
                continue
            limit = max(0.05, min(op.deadline for op in live) - now)
            notify = sorted({channel for op in live for channel in op.notify})

            async def together(conn: Conn, ops: list[_Op] = live,
                               channels: list[str] = notify) -> list[Any]:
                return await self._run_ops(conn, ops, channels)

            try:
                values = await self._direct(together, limit=limit, ack=ack)
            except StateUnavailable as exc:
                for op in live:
                    settle(op.future, None, exc)
                continue
            except BaseException as exc:
                if isinstance(exc, asyncio.CancelledError):
                    for op in live:
                        settle(op.future, None, self._unavailable())
                    raise
                if len(live) == 1:
                    settle(live[0].future, None, exc)
                    continue
                await self._one_by_one(live)
                continue
            for op, (value, error) in zip(live, values, strict=True):
                settle(op.future, value, error)

    async def _run_ops(self, conn: Conn, ops: list[_Op],
                       channels: list[str]) -> list[tuple[Any, BaseException | None]]:
        """Each op's (value, refusal): a StateError an op raises is raised before it wrote
        anything, so it fails that op alone; any other error fails the transaction."""
        outcomes: dict[int, tuple[Any, BaseException | None]] = {}
        kinds: dict[str, list[int]] = {}
        for index, op in enumerate(ops):
            if op.batch is not None:
                kinds.setdefault(op.batch, []).append(index)
                continue
            assert op.fn is not None
            try:
                outcomes[index] = (await op.fn(conn), None)
            except StateError as exc:
                outcomes[index] = (None, exc)
        for kind, indexes in kinds.items():
            results = await _BATCHED[kind](conn, [ops[i].arg for i in indexes])
            for index, result in zip(indexes, results, strict=True):
                outcomes[index] = (None, result) if isinstance(result, StateError) else (
                    result, None)
        for channel in channels:
            await conn.execute("SELECT pg_notify(%s, '')", (CHANNELS[channel],))
        return [outcomes[i] for i in range(len(ops))]

    async def _one_by_one(self, ops: list[_Op]) -> None:
        for op in ops:
            async def alone(conn: Conn, op: _Op = op) -> Any:
                return (await self._run_ops(conn, [op], list(op.notify)))[0]

            try:
                value, error = await self._direct(alone)
                settle(op.future, value, error)
            except Exception as exc:
                settle(op.future, None, exc)

    async def _send_writer(self) -> None:
        """``enqueue_send`` calls gathered into one INSERT ... SELECT FROM unnest(...)."""
        while True:
            batch = [await self._sends.get()]
            while len(batch) < MAX_GROUP and not self._sends.empty():
                batch.append(self._sends.get_nowait())
            now = time.monotonic()
            live = []
            for item in batch:
                if item[4] < now:
                    settle(item[3], None, self._unavailable())
                else:
                    live.append(item)
            if not live:
                continue
            async def insert(conn: Conn, items: list[Any] = live) -> dict[str, tuple[int, bool]]:
                cur = await conn.execute(
                    "INSERT INTO bridge_sends (msg_id, kind, payload, not_before, created_at) "
                    f"SELECT m, k, p::jsonb, {NOW}, {NOW} "
                    "FROM unnest(%s::text[], %s::text[], %s::text[]) WITH ORDINALITY "
                    "AS u(m, k, p, o) ORDER BY o ON CONFLICT (msg_id) DO NOTHING "
                    "RETURNING id, msg_id",
                    ([i[0] for i in items], [i[1] for i in items],
                     [i[2].decode() for i in items]))
                fresh = {row[1]: int(row[0]) for row in await cur.fetchall()}
                # a caller answered "not stored" by now, or who will be before the commit
                # is back, is not stored: its row goes in this same transaction (after the
                # commit a worker of another replica could claim it before the withdrawal);
                # the others' callers now wait for the commit's outcome (no await between
                # this check and the flags: a caller's timer runs before or after both)
                late = {i[0] for i in items if i[0] in fresh and (
                    i[3].done() or time.monotonic() > i[4] + GIVE_UP_AFTER - COMMIT_MARGIN)}
                for i in items:
                    if i[0] not in late:
                        i[5][0] = True
                if late:
                    await conn.execute("DELETE FROM bridge_sends WHERE id = ANY(%s)",
                                       ([fresh.pop(m) for m in late],))
                found: dict[str, tuple[int, bool]] = {m: (i, False) for m, i in fresh.items()}
                found.update(dict.fromkeys(late, (0, False)))
                others = [i[0] for i in items if i[0] not in fresh and i[0] not in late]
                if others:
                    cur = await conn.execute("SELECT msg_id, id FROM bridge_sends WHERE "
                                             "msg_id = ANY(%s)", (others,))
                    for msg_id, id_ in await cur.fetchall():
                        found[msg_id] = (int(id_), True)
                if fresh:
                    await conn.execute("SELECT pg_notify(%s, '')", (CHANNELS["sends"],))
                return found

            try:
                # not cut off at the callers' deadline (a commit cut off in flight may have
                # been applied, and its callers told 2004): they are answered by their own
                # timers until the commit begins, and wait for it from then on
                found = await self._direct(insert, ack=True)
            except BaseException as exc:
                error = exc if isinstance(exc, StateError) else self._unavailable(exc)
                for item in live:
                    settle(item[3], None, error)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            seen: set[str] = set()
            given_up: list[int] = []
            for msg_id, _, _, future, _, _ in live:
                id_, duplicate = found.get(msg_id, (0, True))
                if id_ == 0 and not duplicate:  # withdrawn before the commit
                    settle(future, None, self._unavailable())
                    continue
                if future.done() and not duplicate and msg_id not in seen:
                    given_up.append(id_)  # its caller was already told "not stored"
                settle(future, Enqueued(id_, duplicate or msg_id in seen), None)
                seen.add(msg_id)
            if given_up:
                await self._withdraw(given_up)

    async def _withdraw(self, ids: list[int]) -> None:
        """Undo rows committed after their callers timed out (a starved loop can run the
        caller's timer before the commit's answer): CleverTap was answered 2004, so they must
        not be sent. A row a worker claimed in between is sent all the same (rare)."""
        async def run(conn: Conn) -> None:
            await conn.execute("DELETE FROM bridge_sends WHERE id = ANY(%s) AND "
                               "state = 'queued'", (ids,))

        with contextlib.suppress(StateError):
            await self._direct(run, ack=True)

    # --- wake-ups ----------------------------------------------------------------------------

    def _event(self, name: str) -> asyncio.Event:
        event = self._events.get(name)
        if event is None:
            event = self._events[name] = asyncio.Event()
        return event

    async def wait_for_work(self, queue: Queue, timeout: float) -> None:
        if self._listener is None and not self._closed:
            self._listener = asyncio.create_task(self._listen())
        event = self._event(queue)
        if not event.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
        event.clear()

    async def _listen(self) -> None:
        by_channel = {channel: name for name, channel in CHANNELS.items()}
        while not self._closed:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self._dsn, autocommit=True, connect_timeout=max(1, round(self.timeout)))
            except (psycopg.Error, OSError):
                await asyncio.sleep(1.0)
                continue
            try:
                for channel in CHANNELS.values():
                    await conn.execute(f"LISTEN {channel}")
                for name in CHANNELS:  # anything may have come while we were not listening
                    self._event(name).set()
                async for note in conn.notifies():
                    queue = by_channel.get(note.channel)
                    if queue:
                        self._event(queue).set()
            except (psycopg.Error, OSError):
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(Exception):
                    await conn.close()

    # --- expired leases ----------------------------------------------------------------------

    async def _reap(self, conn: Conn, table: str) -> None:
        key = table.removeprefix("bridge_")
        now = time.monotonic()
        if now - self._reaped_at[key] < REAP_EVERY:
            return
        self._reaped_at[key] = now
        back = "queued" if table == "bridge_sends" else "pending"
        await conn.execute(
            f"UPDATE {table} SET state = %s, replica = NULL, lease_until = NULL WHERE id IN ("
            f"SELECT id FROM {table} t WHERE state = 'claimed' AND lease_until < {NOW} "
            f"AND {_REPLICA_SILENT} FOR UPDATE SKIP LOCKED)", (back,))
        if table != "bridge_sends":
            return
        # the crash rule (base.py): in flight at a crash -> in doubt, waiting for Meta's
        # status; still in doubt after the window -> failed with its DLR
        cur = await conn.execute(
            "SELECT id, replica FROM bridge_sends t WHERE state = 'in_flight' "
            f"AND lease_until < {NOW} AND {_REPLICA_SILENT} FOR UPDATE SKIP LOCKED")
        crashed = await cur.fetchall()
        if crashed:
            async with conn.cursor() as many:
                await many.executemany(
                    f"UPDATE bridge_sends SET state = 'in_doubt', doubt_until = {NOW} + %s, "
                    "reason = %s, lease_until = NULL WHERE id = %s",
                    [(self.in_doubt_window, crash_reason(replica), id_)
                     for id_, replica in crashed])
        cur = await conn.execute(
            "SELECT id, msg_id, replica FROM bridge_sends WHERE state = 'in_doubt' "
            f"AND doubt_until <= {NOW} FOR UPDATE SKIP LOCKED")
        doubtful = await cur.fetchall()
        for id_, msg_id, replica in doubtful:
            reason = crash_reason(replica, self.in_doubt_window)
            await conn.execute(
                f"UPDATE bridge_sends SET state = 'failed', code = 1009, reason = %s, "
                f"finished_at = {NOW}, lease_until = NULL WHERE id = %s", (reason, id_))
            await self._insert_callback(conn, msg_id, "status", crash_dlr(msg_id, reason),
                                        RANK["failed"], dedupe=True, hold=False)
        if doubtful:
            await conn.execute("SELECT pg_notify(%s, '')", (CHANNELS["callbacks"],))

    # --- send outbox -------------------------------------------------------------------------

    async def enqueue_send(self, msg_id: str, kind: str, payload: dict[str, Any]) -> Enqueued:
        if self._closed:
            raise StateUnavailable(f"state {self.url} is closed")
        self._start_writers()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Enqueued] = loop.create_future()
        committing = [False]
        self._sends.put_nowait((msg_id, kind, orjson.dumps(payload), future,
                                time.monotonic() + self.ack_timeout, committing))

        def give_up() -> None:  # "not stored", unless its commit has begun: then its outcome
            if not committing[0]:
                settle(future, None, self._unavailable())

        handles = (loop.call_later(self.ack_timeout + GIVE_UP_AFTER, give_up),
                   loop.call_later(self.timeout + 1.0,  # a commit that never answers
                                   lambda: settle(future, None, self._unavailable())))
        try:
            return await future
        finally:
            for handle in handles:
                handle.cancel()

    async def claim_sends(self, replica: str, limit: int, lease: float) -> list[SendItem]:
        async def run(conn: Conn) -> list[SendItem]:
            await self._reap(conn, "bridge_sends")
            cur = await conn.execute(
                f"UPDATE bridge_sends s SET state = 'claimed', replica = %s, "
                f"lease_until = {NOW} + %s, lease_seconds = %s, attempts = s.attempts + 1 "
                "FROM (SELECT id FROM bridge_sends WHERE state = 'queued' AND "
                f"not_before <= {NOW} ORDER BY not_before, id LIMIT %s FOR UPDATE SKIP LOCKED) c "
                "WHERE s.id = c.id RETURNING s.id, s.msg_id, s.kind, s.payload, "
                "s.attempts - 1, s.created_at", (replica, lease, lease, limit))
            rows = sorted(await cur.fetchall())
            return [SendItem(int(r[0]), r[1], r[2], r[3], r[4], r[5]) for r in rows]

        return await self._direct(run)

    async def mark_in_flight(self, id: int) -> None:
        await self._grouped(None, batch="in_flight", arg=id)

    async def complete_send(self, id: int, wamid: str) -> bool:
        return bool(await self._grouped(None, batch="complete_send", arg=(id, wamid)))

    async def fail_send(self, id: int, code: int, reason: str,
                        dlr_payload: dict[str, Any]) -> None:
        async def run(conn: Conn) -> None:
            cur = await conn.execute("SELECT msg_id, state FROM bridge_sends WHERE id = %s "
                                     "FOR UPDATE", (id,))
            row = await cur.fetchone()
            if row is None:
                raise StateError(f"send {id} does not exist")
            if row[1] in ("sent", "failed"):
                return
            await conn.execute(f"UPDATE bridge_sends SET state = 'failed', code = %s, "
                               f"reason = %s, finished_at = {NOW}, replica = NULL, "
                               "lease_until = NULL WHERE id = %s", (code, reason, id))
            await self._insert_callback(conn, row[0], "status", dlr_payload, RANK["failed"],
                                        dedupe=True, hold=False)

        await self._grouped(run, notify=("callbacks",))

    async def retry_send(self, id: int, not_before: float) -> None:
        async def run(conn: Conn) -> None:
            await conn.execute("UPDATE bridge_sends SET state = 'queued', replica = NULL, "
                               "lease_until = NULL, not_before = %s WHERE id = %s AND "
                               "state IN ('claimed', 'in_flight')", (not_before, id))

        await self._grouped(run, notify=("sends",))

    async def lookup_msg_id(self, wamid: str) -> str | None:
        found = await self.lookup_wamid(wamid)
        return None if found is None else found.msg_id

    async def lookup_wamid(self, wamid: str) -> Mapped | None:
        if self._closed:
            raise StateUnavailable(f"state {self.url} is closed")
        self._start_writers()
        future: asyncio.Future[Mapped | None] = asyncio.get_running_loop().create_future()
        self._lookups.put_nowait((wamid, future, time.monotonic() + self.timeout))
        return await bounded(future, self.timeout + 0.5, self._unavailable)

    async def accepted(self, msg_id: str) -> Accepted | None:
        async def run(conn: Conn) -> Accepted | None:
            cur = await conn.execute("SELECT id, msg_id, kind, state, wamid, code, reason, "
                                     "created_at, doubt_until FROM bridge_sends "
                                     "WHERE msg_id = %s", (msg_id,))
            row = await cur.fetchone()
            return None if row is None else Accepted(int(row[0]), *row[1:])

        return await self._direct(run)

    async def _lookup_reader(self) -> None:
        """Concurrent ``lookup_msg_id`` calls (a webhook worker resolving 100 statuses at
        once) answered by one query, not one pooled connection each."""
        while True:
            batch = [await self._lookups.get()]
            while len(batch) < MAX_GROUP and not self._lookups.empty():
                batch.append(self._lookups.get_nowait())

            wamids = [item[0] for item in batch]

            async def run(conn: Conn, wamids: list[str] = wamids) -> dict[str, Mapped]:
                cur = await conn.execute("SELECT wamid, msg_id, late FROM bridge_wamids WHERE "
                                         "wamid = ANY(%s)", (wamids,))
                return {row[0]: Mapped(row[1], bool(row[2])) for row in await cur.fetchall()}

            try:
                found = await self._direct(run)
            except BaseException as exc:
                for _, future, _ in batch:
                    settle(future, None, exc if isinstance(exc, StateError) else
                           self._unavailable(exc))
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for wamid, future, _ in batch:
                settle(future, found.get(wamid), None)

    # --- webhook inbox -----------------------------------------------------------------------

    async def store_webhook(self, raw_body: bytes) -> int:
        async def run(conn: Conn) -> int:
            cur = await conn.execute(
                "INSERT INTO bridge_webhooks (body, not_before, received_at) VALUES "
                f"(%s, {NOW}, {NOW}) RETURNING id", (bytes(raw_body),))
            row = await cur.fetchone()
            assert row is not None
            return int(row[0])

        return int(await self._grouped(run, ack=True, notify=("webhooks",)))

    async def claim_webhooks(self, replica: str, limit: int, lease: float) -> list[WebhookItem]:
        async def run(conn: Conn) -> list[WebhookItem]:
            await self._reap(conn, "bridge_webhooks")
            cur = await conn.execute(
                f"UPDATE bridge_webhooks w SET state = 'claimed', replica = %s, "
                f"lease_until = {NOW} + %s, lease_seconds = %s, attempts = w.attempts + 1 "
                "FROM (SELECT id FROM bridge_webhooks WHERE state = 'pending' AND "
                f"not_before <= {NOW} ORDER BY not_before, id LIMIT %s FOR UPDATE SKIP LOCKED) c "
                "WHERE w.id = c.id RETURNING w.id, w.body, w.received_at, w.attempts - 1",
                (replica, lease, lease, limit))
            rows = sorted(await cur.fetchall())
            return [WebhookItem(int(r[0]), bytes(r[1]), r[2], r[3]) for r in rows]

        return await self._direct(run)

    async def finish_webhook(self, id: int, callbacks: list[CallbackSpec]) -> int:
        async def run(conn: Conn) -> int:
            cur = await conn.execute(
                f"UPDATE bridge_webhooks SET state = 'done', finished_at = {NOW}, "
                "replica = NULL, lease_until = NULL WHERE id = %s AND state != 'done'", (id,))
            if cur.rowcount != 1:
                return 0
            count = 0
            for spec in callbacks:
                count += await self._insert_callback(conn, spec.msg_id, spec.route,
                                                     spec.payload, spec.rank,
                                                     dedupe=spec.dedupe)
            return count

        return int(await self._grouped(run, notify=("callbacks",)))

    async def defer_webhook(self, id: int, not_before: float) -> None:
        async def run(conn: Conn) -> None:
            await conn.execute("UPDATE bridge_webhooks SET state = 'pending', replica = NULL, "
                               "lease_until = NULL, not_before = %s WHERE id = %s AND "
                               "state = 'claimed'", (not_before, id))

        await self._grouped(run)

    # --- callback outbox ---------------------------------------------------------------------

    async def _insert_callback(self, conn: Conn, msg_id: str, route: str, payload: dict[str, Any],
                               rank: int, *, dedupe: bool, hold: bool = True) -> int:
        key = f"{msg_id}\x1f{route}\x1f{rank}" if dedupe else None
        expects = expected_before(rank) if hold else None
        cur = await conn.execute(
            "INSERT INTO bridge_callbacks (msg_id, route, payload, rank, dedupe_key, "
            "not_before, hold_until, expects_rank, created_at) VALUES (%s, %s, %s, %s, %s, "
            f"{NOW}, {NOW} + %s, %s, {NOW}) ON CONFLICT (dedupe_key) DO NOTHING",
            (msg_id, route, Jsonb(payload), rank, key, self.order_hold, expects))
        return int(cur.rowcount == 1)

    async def enqueue_callback(self, msg_id: str, route: Route, payload: dict[str, Any],
                               rank: int, *, dedupe: bool = True) -> bool:
        async def run(conn: Conn) -> int:
            return await self._insert_callback(conn, msg_id, route, payload, rank,
                                               dedupe=dedupe)

        return bool(await self._grouped(run, notify=("callbacks",)))

    async def claim_callbacks(self, replica: str, limit: int,
                              lease: float) -> list[CallbackItem]:
        async def run(conn: Conn) -> list[CallbackItem]:
            await self._reap(conn, "bridge_callbacks")
            cur = await conn.execute(_CLAIM_CALLBACKS, {"replica": replica, "lease": lease,
                                                        "limit": limit,
                                                        "settle": self.order_settle})
            rows = sorted(await cur.fetchall())
            return [CallbackItem(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7])
                    for r in rows]

        return await self._direct(run)

    async def complete_callback(self, id: int) -> None:
        await self._grouped(None, batch="complete_callback", arg=id, notify=("callbacks",))

    async def retry_callback(self, id: int, not_before: float, error: str) -> None:
        async def run(conn: Conn) -> None:
            await conn.execute("UPDATE bridge_callbacks SET state = 'pending', replica = NULL, "
                               "lease_until = NULL, not_before = %s, last_error = %s "
                               "WHERE id = %s AND state = 'claimed'",
                               (not_before, error[:500], id))

        await self._grouped(run)

    async def hasten_callbacks(self, route: Route) -> int:
        async def run(conn: Conn) -> int:
            cur = await conn.execute(f"UPDATE bridge_callbacks SET not_before = {NOW} WHERE "
                                     "state = 'pending' AND route = %s AND "
                                     f"not_before > {NOW} AND attempts > 0", (route,))
            return int(cur.rowcount)

        return int(await self._grouped(run, notify=("callbacks",)))

    # --- templates ---------------------------------------------------------------------------

    async def replace_templates(self, templates: list[dict[str, Any]]) -> int:
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for template in templates:
            name, language = template.get("name"), template.get("language")
            if isinstance(name, str) and isinstance(language, str):
                rows[(name, language)] = template

        async def run(conn: Conn) -> int:
            await conn.execute("LOCK TABLE bridge_templates IN EXCLUSIVE MODE")
            await conn.execute("DELETE FROM bridge_templates")
            async with conn.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO bridge_templates (name, language, body) VALUES (%s, %s, %s)",
                    [(n, lang, Jsonb(body)) for (n, lang), body in rows.items()])
            return len(rows)

        return await self._direct(run)

    async def get_template(self, name: str, language: str) -> dict[str, Any] | None:
        async def run(conn: Conn) -> dict[str, Any] | None:
            cur = await conn.execute("SELECT body FROM bridge_templates WHERE name = %s AND "
                                     "language = %s", (name, language))
            row = await cur.fetchone()
            return None if row is None else dict(row[0])

        return await self._direct(run)

    async def list_templates(self, limit: int, after: str | None = None) -> TemplatePage:
        start = decode_cursor(after) if after else None

        async def run(conn: Conn) -> TemplatePage:
            if start is None:
                cur = await conn.execute("SELECT name, language, body FROM bridge_templates "
                                         "ORDER BY name COLLATE \"C\", language COLLATE \"C\" "
                                         "LIMIT %s", (limit + 1,))
            else:
                cur = await conn.execute(
                    "SELECT name, language, body FROM bridge_templates WHERE "
                    "(name COLLATE \"C\", language COLLATE \"C\") > (%s, %s) "
                    "ORDER BY name COLLATE \"C\", language COLLATE \"C\" LIMIT %s",
                    (*start, limit + 1))
            rows = await cur.fetchall()
            page = rows[:limit]
            more = len(rows) > limit and page
            return TemplatePage([dict(r[2]) for r in page],
                                encode_cursor(page[-1][0], page[-1][1]) if more else None)

        return await self._direct(run)

    # --- clicks ------------------------------------------------------------------------------

    async def put_click(self, token: str, msg_id: str, destination: str) -> None:
        async def run(conn: Conn) -> None:
            await conn.execute(
                "INSERT INTO bridge_clicks (token, msg_id, destination, created_at) VALUES "
                f"(%s, %s, %s, {NOW}) ON CONFLICT (token) DO UPDATE SET "
                "msg_id = excluded.msg_id, destination = excluded.destination",
                (token, msg_id, destination))

        await self._grouped(run)

    async def get_click(self, token: str) -> Click | None:
        async def run(conn: Conn) -> Click | None:
            cur = await conn.execute("SELECT token, msg_id, destination, created_at FROM "
                                     "bridge_clicks WHERE token = %s", (token,))
            row = await cur.fetchone()
            return None if row is None else Click(*row)

        return await self._direct(run)

    # --- the rate limit ----------------------------------------------------------------------

    async def take_tokens(self, number_id: str, n: int, mps: float) -> float:
        if n < 1 or mps <= 0:
            raise ValueError("take_tokens needs n >= 1 and mps > 0")
        span = n / mps

        async def run(conn: Conn) -> float:
            # the clock is read after the row lock is held, so a replica that waited for the
            # lock does not reserve a slot in the past
            cur = await conn.execute(
                "INSERT INTO bridge_buckets AS b (number_id, tat, paused_until) VALUES "
                f"(%(number)s, {CLOCK} + %(span)s, 0) ON CONFLICT (number_id) DO UPDATE SET "
                f"tat = GREATEST(b.tat, {CLOCK}, b.paused_until) + %(span)s "
                f"RETURNING b.tat - %(span)s - {CLOCK}", {"number": number_id, "span": span})
            row = await cur.fetchone()
            assert row is not None
            return max(0.0, float(row[0]))

        return await self._direct(run, fast=True)

    async def slow_down(self, number_id: str, seconds: float) -> None:
        async def run(conn: Conn) -> None:
            await conn.execute(
                "INSERT INTO bridge_buckets AS b (number_id, tat, paused_until) VALUES "
                f"(%(number)s, {CLOCK} + %(s)s, {CLOCK} + %(s)s) ON CONFLICT (number_id) DO "
                "UPDATE SET tat = GREATEST(b.tat, excluded.tat), "
                "paused_until = GREATEST(b.paused_until, excluded.paused_until)",
                {"number": number_id, "s": seconds})

        await self._direct(run, fast=True)

    # --- the cluster -------------------------------------------------------------------------

    async def heartbeat(self, replica: str, info: dict[str, Any]) -> None:
        # one row: the leases of this replica's items count from its last_seen (see
        # _REPLICA_SILENT), so renewing them never touches (nor locks) the items themselves
        async def run(conn: Conn) -> None:
            await conn.execute(
                "INSERT INTO bridge_replicas (name, info, last_seen) VALUES "
                f"(%s, %s, {NOW}) ON CONFLICT (name) DO UPDATE SET info = excluded.info, "
                "last_seen = excluded.last_seen", (replica, Jsonb(info)))

        await self._direct(run, fast=True)

    @staticmethod
    async def _depths(conn: Conn) -> Depths:
        cur = await conn.execute(
            "SELECT state, COUNT(*) FROM bridge_sends WHERE state IN "
            "('queued', 'claimed', 'in_flight') GROUP BY state")
        sends = {state: int(count) for state, count in await cur.fetchall()}
        cur = await conn.execute(
            "SELECT (SELECT COUNT(*) FROM bridge_webhooks WHERE state IN ('pending', 'claimed')),"
            " (SELECT COUNT(*) FROM bridge_callbacks WHERE state IN ('pending', 'claimed')),"
            " (SELECT COUNT(*) FROM bridge_sends WHERE state = 'in_doubt')")
        row = await cur.fetchone()
        assert row is not None
        return Depths(sends.get("queued", 0), sends.get("claimed", 0),
                      sends.get("in_flight", 0), int(row[0]), int(row[1]), int(row[2]))

    async def depths(self) -> Depths:
        return await self._direct(self._depths)

    async def cluster_status(self) -> ClusterStatus:
        async def run(conn: Conn) -> ClusterStatus:
            cur = await conn.execute(f"SELECT name, info, last_seen, {NOW} - last_seen FROM "
                                     "bridge_replicas ORDER BY name")
            replicas = [Replica(r[0], dict(r[1]), r[2], max(0.0, r[3]))
                        for r in await cur.fetchall()]
            cur = await conn.execute(
                f"SELECT {NOW} - (SELECT MIN(created_at) FROM bridge_sends WHERE state IN "
                "('queued', 'claimed', 'in_flight')), "
                f"{NOW} - (SELECT MIN(created_at) FROM bridge_callbacks WHERE state IN "
                "('pending', 'claimed')), "
                "(SELECT COUNT(*) FROM bridge_sends WHERE state = 'sent'), "
                "(SELECT COUNT(*) FROM bridge_sends WHERE state = 'failed'), "
                "(SELECT COUNT(*) FROM bridge_callbacks WHERE state = 'done')")
            row = await cur.fetchone()
            assert row is not None
            version = await self._read_version(conn)
            return ClusterStatus(
                "postgresql", version, replicas, await self._depths(conn),
                None if row[0] is None else max(0.0, row[0]),
                None if row[1] is None else max(0.0, row[1]),
                int(row[2]), int(row[3]), int(row[4]))

        return await self._direct(run)


#: An item's lease has run out only when its replica has not heartbeated within the lease
#: either (``t`` is the item's table): a live replica keeps its claims.
_REPLICA_SILENT = ("NOT EXISTS (SELECT 1 FROM bridge_replicas r WHERE r.name = t.replica "
                   f"AND r.last_seen + t.lease_seconds > {NOW})")


async def _batch_in_flight(conn: Conn, ids: list[int]) -> list[Any]:
    cur = await conn.execute(
        f"UPDATE bridge_sends SET state = 'in_flight', lease_until = {CLOCK} + "
        "COALESCE(lease_seconds, 30) WHERE id = ANY(%s) AND state = 'claimed' RETURNING id",
        (ids,))
    marked = {row[0] for row in await cur.fetchall()}
    return [None if id_ in marked else StateError(
        f"send {id_} is not claimed any more (its lease ran out); not sending it")
        for id_ in ids]


async def _batch_complete_send(conn: Conn, args: list[tuple[int, str]]) -> list[Any]:
    """Record each wamid <-> msg_id and finish the send; an item the crash rule already
    failed stays failed (its result is False), its wamid recorded all the same."""
    unique: dict[int, str] = {}
    for id_, wamid in args:
        unique.setdefault(id_, wamid)
    cur = await conn.execute(f"""
        WITH input AS (SELECT * FROM unnest(%s::bigint[], %s::text[]) AS i(id, wamid)),
        old AS (SELECT s.id, s.msg_id, s.state, input.wamid
                FROM bridge_sends s JOIN input ON input.id = s.id FOR UPDATE OF s),
        upd AS (UPDATE bridge_sends s SET
                    state = CASE WHEN old.state IN ('sent', 'failed') THEN old.state
                                 ELSE 'sent' END,
                    wamid = old.wamid, finished_at = COALESCE(s.finished_at, {NOW}),
                    replica = CASE WHEN old.state = 'failed' THEN s.replica END,
                    lease_until = NULL
                FROM old WHERE s.id = old.id RETURNING old.id, old.state),
        ins AS (INSERT INTO bridge_wamids (wamid, msg_id, created_at, late)
                SELECT wamid, msg_id, {NOW}, old.state = 'failed' FROM old
                ON CONFLICT (wamid) DO NOTHING)
        SELECT id, state FROM upd""", (list(unique), list(unique.values())))
    before = {row[0]: row[1] for row in await cur.fetchall()}
    return [StateError(f"send {id_} does not exist") if id_ not in before
            else before[id_] not in ("sent", "failed") for id_, _ in args]


async def _batch_complete_callback(conn: Conn, ids: list[int]) -> list[Any]:
    await conn.execute(f"UPDATE bridge_callbacks SET state = 'done', delivered_at = {NOW}, "
                       "replica = NULL, lease_until = NULL WHERE id = ANY(%s)", (ids,))
    return [None] * len(ids)


_BATCHED: dict[str, Callable[[Conn, list[Any]], Awaitable[list[Any]]]] = {
    "in_flight": _batch_in_flight,
    "complete_send": _batch_complete_send,
    "complete_callback": _batch_complete_callback,
}


#: Each order key's next callback only (see sqlite.py's twin and base.py): none of its
#: callbacks claimed, none pending before it, and an earlier rank seen or the hold passed.
#: Rows another replica is claiming right now are skipped, not waited for.
_CLAIM_CALLBACKS = f"""
UPDATE bridge_callbacks b SET state = 'claimed', replica = %(replica)s,
    lease_until = {NOW} + %(lease)s, lease_seconds = %(lease)s, attempts = b.attempts + 1
FROM (
    SELECT c.id FROM bridge_callbacks c
    WHERE c.state = 'pending' AND c.not_before <= {NOW}
      AND NOT EXISTS (
        SELECT 1 FROM bridge_callbacks e
        WHERE e.msg_id = c.msg_id AND e.id <> c.id AND e.state IN ('pending', 'claimed')
          AND (e.state = 'claimed' OR (e.rank, e.id) < (c.rank, c.id)))
      AND (c.expects_rank IS NULL OR c.hold_until <= {NOW}
    OR (c.created_at + %(settle)s <= {NOW} AND NOT EXISTS (
    SELECT 1 FROM bridge_webhooks w WHERE w.state <> 'done'
      AND w.received_at <= c.created_at + %(settle)s))
    OR EXISTS (
        SELECT 1 FROM bridge_callbacks p WHERE p.msg_id = c.msg_id
          AND p.rank >= c.expects_rank AND p.rank < c.rank))
    ORDER BY c.id
    LIMIT %(limit)s
    FOR UPDATE OF c SKIP LOCKED
) picked
WHERE b.id = picked.id
RETURNING b.id, b.msg_id, b.route, b.payload, b.rank, b.attempts - 1, b.created_at,
    b.last_error
"""
