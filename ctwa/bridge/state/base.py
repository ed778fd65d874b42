"""The bridge's durable state: one asyncio interface, two backends (SQLite, PostgreSQL).

Why one interface: a single ``ctwa bridge`` on a SQLite file serves one machine; several
replicas behind a load balancer share the same queues, maps, template cache and rate limit
through PostgreSQL (issue 27). The bridge app only ever talks to :class:`BridgeState`, so the
two run the same code and pass the same test suite (tests/bridge/state/).

What the bridge relies on, whichever backend:

* **Durable before acknowledged.** ``enqueue_send`` and ``store_webhook`` return only after
  the row is committed (SQLite: WAL with ``synchronous=FULL``; PostgreSQL: a normal commit).
  Concurrent calls are grouped into one commit by a writer, so 1500 callers in flight cost a
  few fsyncs, not 1500.
* **Bounded.** Every operation either finishes or raises :class:`StateUnavailable` within the
  backend's timeout (``ack_timeout`` for the two acknowledging writes, so the app can still answer
  CleverTap ``2004``/503 inside its 1 s deadline); nothing hangs on a lost database, and the
  next call after it is back simply works.
* **Exactly one outcome per accepted message.** A send is queued, claimed by one replica (a
  lease), marked in flight just before the HTTP call to Meta, then completed (its wamid recorded
  in the same transaction) or failed (its failed DLR enqueued in the same transaction). A
  lease that runs out returns the item to the queue, so a dead replica's work is done by
  another. **The crash rule:** an item whose lease ran out while it was *in flight* (its replica
  died between asking Meta and recording the answer) is never resent (Meta's Cloud API has no
  idempotency key to make a resend safe). It becomes *in doubt*: Meta may or may not have
  taken it. Every send carries its msgId as ``biz_opaque_callback_data``, which Meta returns in
  each status webhook, so a status for an unknown wamid naming an in-doubt msgId (looked up
  with ``accepted``) settles it: ``complete_send`` records its wamid and it is sent, its
  statuses flowing to CleverTap as any other's. One still in doubt ``in_doubt_window`` after
  the crash (:data:`IN_DOUBT_SECONDS` by default; no status came, so Meta most likely never
  took it) is failed with code 1009 and a reason naming the crash, its failed DLR enqueued in
  the same transaction. A wamid recorded for a send already failed (a status later than the
  window, or a dead replica's answer recorded late) is kept in the map marked *late*
  (:class:`Mapped`): replies still find the msgId, but the bridge forwards no status of it
  (the failed DLR was the message's one outcome).
* **Leases live as long as their replica.** An item's lease runs out only when its own lease
  time has passed AND its replica has not called ``heartbeat`` within that lease length, so a
  slow but live replica keeps its work and only a replica that stopped heartbeating loses it.
  (Heartbeats write the replica's one row, never the items: renewing costs nothing and takes
  no lock on rows the replica's workers are updating.) A lease must be longer than the
  heartbeat period and than the Meta request timeout.
* **Callbacks in order per message.** Each callback has an order key (the CleverTap msgId for
  statuses) and a rank (:data:`RANK`): sent < delivered < read < clicked < failed. A claim hands
  out, per key, only the next one (lowest rank, then oldest) and only when no other callback
  of that key is claimed, across all replicas. Meta's webhooks can arrive out of order and on
  different replicas, so a callback that implies an earlier one (:data:`EXPECTS`: delivered
  implies sent, read delivered, clicked read, failed sent) waits for that one to appear, until
  :data:`ORDER_SETTLE_SECONDS` have passed (Meta's retry of a webhook a replica could not
  take at once comes about then) and every webhook received before that settling time was
  over has been processed (the earlier status, if Meta sent it, was in one of them: a webhook
  deferred because its wamid was not mapped yet, or claimed by a replica that died, is still
  unprocessed), or at most :data:`ORDER_HOLD_SECONDS`; then it goes anyway (nothing is lost
  for a status Meta never sent, e.g. a failure without "sent", or read receipts turned off).
  A status that comes after a later one was already delivered is still delivered (late, not
  dropped). Callbacks are delivered at least once: a replica dying between CleverTap's
  answer and ``complete_callback`` means another replica delivers that one again.
* **One rate limit per number.** ``take_tokens`` reserves send slots from one bucket per
  phone-number id kept in the database (the database's clock, so replicas on several machines
  agree), spaced ``1/mps`` apart with no burst: N replicas together stay at ``mps``.
  ``slow_down`` pushes the bucket back for everyone (Meta's rate-limit answer).

Compatible changes only after the first commit; a change that is not says so here. Schema 2
(the in-doubt rule) only adds columns and an index: a replica of the older code already
running keeps working on it (it refuses to start on it), but only replicas of this code
settle or fail sends in doubt, so upgrade every replica.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import orjson

from ctwa.infra.errors import CtwaError, ExitCode

# --- errors ----------------------------------------------------------------------------------


class StateError(CtwaError):
    """The state cannot be used as it is (one clear line; the CLI exits 4)."""

    exit_code = ExitCode.CONFIG


class StateUnavailable(StateError):
    """The database cannot be reached, or stopped answering within the timeout.

    Raised at open (the CLI exits 4) and by any operation while it is lost (the app answers
    CleverTap 2004/503); the backend reconnects by itself, so the next call can succeed."""


class SchemaMismatch(StateError):
    """The schema is newer than this ctwa (refused, naming both versions), or not migrated."""


# --- ranks and names -------------------------------------------------------------------------

Route = Literal["status", "inbound"]
SendState = Literal["queued", "claimed", "in_flight", "in_doubt", "sent", "failed"]
Queue = Literal["sends", "webhooks", "callbacks"]

#: Order of the callbacks of one message. ``clicked`` comes after ``read`` (a tap on a button
#: means the message was read, though Meta may not say so); ``failed`` last (Meta fails a message
#: after ``sent``; a failure decided by the bridge itself is the message's only callback).
#: Inbound callbacks use rank 0 and are ordered by arrival within their key.
RANK: dict[str, int] = {"inbound": 0, "sent": 10, "delivered": 20, "read": 30,
                        "clicked": 40, "failed": 50}

#: The status each status implies came before it (Meta sends it first, but its webhook may
#: land later or on another replica).
EXPECTS: dict[int, int] = {RANK["delivered"]: RANK["sent"], RANK["read"]: RANK["delivered"],
                           RANK["clicked"]: RANK["read"], RANK["failed"]: RANK["sent"]}

#: How long a callback that implies an earlier one waits for it at most (see the module
#: docstring): longer than a webhook can stay unprocessed for a known reason (the bridge defers
#: one with an unmapped wamid for up to 30 s; a dead replica's claim comes back after its 15 s
#: lease), so those delays never reorder.
ORDER_HOLD_SECONDS = 60.0
#: The least a callback missing the status it implies waits for it (see the docstring).
ORDER_SETTLE_SECONDS = 3.0

#: The code and title of the DLR for a send in flight at a crash (the crash rule).
CRASH_CODE = 1009
#: How long a send in flight at a crash stays in doubt, waiting for a status from Meta that
#: names its msgId, before the crash rule fails it (the bridge's ``in_doubt_window``). Meta
#: sends ``sent`` within seconds of taking a message; its webhook retries run longer, which
#: is why a late status is still recorded (and counted), though no longer forwarded.
IN_DOUBT_SECONDS = 120.0


# --- records ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Enqueued:
    """What ``enqueue_send`` did: ``duplicate`` when that msg_id was already accepted (then
    nothing new was queued and ``id`` is the existing item's)."""

    id: int
    duplicate: bool


@dataclass(frozen=True)
class SendItem:
    id: int
    msg_id: str
    kind: str  # "template" | "freeform" (the CleverTap payload's kind)
    payload: dict[str, Any]
    attempts: int  # how many times it was claimed before this claim
    created_at: float  # epoch seconds, when CleverTap's payload was accepted


@dataclass(frozen=True)
class Accepted:
    """What the state knows of one accepted msgId (``accepted``)."""

    id: int
    msg_id: str
    kind: str
    state: SendState
    wamid: str | None
    code: int | None  # CleverTap's 1000-1010 when failed
    reason: str | None
    created_at: float
    doubt_until: float | None  # in doubt: when the crash rule fails it (epoch seconds)


@dataclass(frozen=True)
class Mapped:
    """A wamid's entry in the map: the msgId it was sent for, and ``late`` when it was recorded
    after the send had been failed (its statuses are not forwarded; see the crash rule)."""

    msg_id: str
    late: bool = False


@dataclass(frozen=True)
class WebhookItem:
    id: int
    raw_body: bytes  # exactly the bytes Meta signed
    received_at: float
    attempts: int


@dataclass(frozen=True)
class CallbackSpec:
    """A callback to enqueue: ``msg_id`` is its order key (the CleverTap msgId for statuses;
    for inbound messages whatever keeps one user's messages in order, e.g. ``from:<wa_id>``).
    ``dedupe``: a second callback with the same key, route and rank is not enqueued (Meta
    redelivers webhooks); off for what may really happen twice (clicks)."""

    msg_id: str
    route: Route
    payload: dict[str, Any]
    rank: int
    dedupe: bool = True


@dataclass(frozen=True)
class CallbackItem:
    id: int
    msg_id: str
    route: Route
    payload: dict[str, Any]
    rank: int
    attempts: int  # deliveries tried before this claim
    created_at: float
    last_error: str | None


@dataclass(frozen=True)
class Click:
    token: str
    msg_id: str
    destination: str
    created_at: float


@dataclass(frozen=True)
class Depths:
    """Rows not yet finished, by queue and state (what /metrics and ``bridge status`` show)."""

    sends_queued: int = 0  # waiting (including those waiting for a retry time)
    sends_claimed: int = 0
    sends_in_flight: int = 0
    webhooks_pending: int = 0  # stored, not yet turned into callbacks
    callbacks_pending: int = 0  # not yet delivered to CleverTap (claimed included)
    sends_in_doubt: int = 0  # in flight at a crash, waiting for Meta's status (crash rule)


@dataclass(frozen=True)
class Replica:
    name: str
    info: dict[str, Any]
    last_seen: float  # epoch seconds
    age: float  # seconds since last_seen, by the database's clock


@dataclass(frozen=True)
class ClusterStatus:
    backend: str  # "sqlite" | "postgresql"
    schema_version: int
    replicas: list[Replica]
    depths: Depths
    oldest_send_age: float | None  # seconds the oldest unfinished send has waited
    callback_lag: float | None  # seconds the oldest undelivered callback has waited
    sent: int = 0  # sends finished with a wamid
    failed: int = 0  # sends finished with a failed DLR
    callbacks_delivered: int = 0


@dataclass(frozen=True)
class Migrated:
    before: int  # 0 for a new database
    after: int


@dataclass
class TemplatePage:
    templates: list[dict[str, Any]] = field(default_factory=list)
    after: str | None = None  # cursor of the next page, None on the last one


# --- the interface ---------------------------------------------------------------------------


@runtime_checkable
class BridgeState(Protocol):
    backend: str
    url: str  # shown to users: a path or a URL without its password
    #: seconds a send in flight at a crash stays in doubt (the crash rule; the bridge sets it
    #: from its ``in_doubt_window``)
    in_doubt_window: float

    # lifecycle
    async def migrate(self) -> Migrated:
        """Bring the schema to this code's version (idempotent; refuses a newer one)."""
        ...

    async def schema_version(self) -> int: ...

    async def close(self) -> None: ...

    async def wait_for_work(self, queue: Queue, timeout: float) -> None:
        """Return when work may have arrived on ``queue`` (any replica's enqueue: NOTIFY on
        PostgreSQL) or after ``timeout`` seconds, so idle workers neither spin nor sleep long."""
        ...

    # send outbox
    async def enqueue_send(self, msg_id: str, kind: str, payload: dict[str, Any]) -> Enqueued:
        """Durably queue CleverTap's payload; a msg_id seen before is not queued twice."""
        ...

    async def claim_sends(self, replica: str, limit: int, lease: float) -> list[SendItem]:
        """Up to ``limit`` queued sends (oldest first, due ones only) for this replica alone.
        Also applies expired leases first (back to the queue, or the crash rule: in flight ->
        in doubt, and in doubt past its window -> failed with its DLR)."""
        ...

    async def mark_in_flight(self, id: int) -> None:
        """Just before the HTTP call to Meta: from now on a crash fails it (never a resend)."""
        ...

    async def complete_send(self, id: int, wamid: str) -> bool:
        """Meta accepted it: record the wamid <-> msg_id map and finish it in one transaction
        (an in-doubt send too: Meta's status named it). False when the item had already been
        finished (failed by the crash rule, or sent); the map is recorded anyway, marked late
        for a failed one (:class:`Mapped`)."""
        ...

    async def fail_send(self, id: int, code: int, reason: str,
                        dlr_payload: dict[str, Any]) -> None:
        """Finish it as failed and enqueue its failed DLR (``dlr_payload``) in one transaction."""
        ...

    async def retry_send(self, id: int, not_before: float) -> None:
        """Back to the queue, due at epoch ``not_before`` (rate limits, Meta 5xx before sending)."""
        ...

    async def lookup_msg_id(self, wamid: str) -> str | None: ...

    async def lookup_wamid(self, wamid: str) -> Mapped | None:
        """The map's entry for ``wamid`` (its msgId, and whether it was recorded late)."""
        ...

    async def accepted(self, msg_id: str) -> Accepted | None:
        """The send accepted for CleverTap's ``msg_id``, whatever its state; None if none."""
        ...

    # webhook inbox
    async def store_webhook(self, raw_body: bytes) -> int:
        """Durably keep Meta's (already verified) webhook body; return only after the commit."""
        ...

    async def claim_webhooks(self, replica: str, limit: int, lease: float) -> list[WebhookItem]:
        ...

    async def finish_webhook(self, id: int, callbacks: list[CallbackSpec]) -> int:
        """Mark it done and enqueue its callbacks atomically; returns how many were enqueued
        (duplicates are not)."""
        ...

    async def defer_webhook(self, id: int, not_before: float) -> None:
        """Put it back for later (a status whose wamid is not mapped yet: the send's commit
        may land a moment after Meta's webhook)."""
        ...

    # callback outbox
    async def enqueue_callback(self, msg_id: str, route: Route, payload: dict[str, Any],
                               rank: int, *, dedupe: bool = True) -> bool:
        """Queue one callback to CleverTap (see :class:`CallbackSpec`); False for a duplicate."""
        ...

    async def claim_callbacks(self, replica: str, limit: int,
                              lease: float) -> list[CallbackItem]:
        """Due callbacks, at most one per order key and only each key's next one."""
        ...

    async def complete_callback(self, id: int) -> None: ...

    async def retry_callback(self, id: int, not_before: float, error: str) -> None: ...

    async def hasten_callbacks(self, route: Route) -> int:
        """CleverTap took a callback on ``route`` again after refusals: every callback of that
        route waiting out a retry delay (grown while CleverTap was down) is due now, so the
        backlog drains at once rather than over the backoff cap. Returns how many."""
        ...

    # templates cache
    async def replace_templates(self, templates: list[dict[str, Any]]) -> int:
        """Replace the whole cache with Meta-format templates (``name``, ``language``) in one
        transaction; returns how many are kept."""
        ...

    async def get_template(self, name: str, language: str) -> dict[str, Any] | None: ...

    async def list_templates(self, limit: int, after: str | None = None) -> TemplatePage:
        """A page in (name, language) order; ``after`` is the previous page's cursor."""
        ...

    # click tokens
    async def put_click(self, token: str, msg_id: str, destination: str) -> None: ...

    async def get_click(self, token: str) -> Click | None: ...

    # the number's rate limit
    async def take_tokens(self, number_id: str, n: int, mps: float) -> float:
        """Reserve ``n`` consecutive send slots; returns the seconds to wait before the first.
        The k-th (0-based) may go at ``wait + k / mps``: slots are spaced, never a burst.
        A slot used late overlaps the slots other replicas use on time, so the sum goes
        over ``mps``: senders should use :class:`ctwa.bridge.state.pacing.Pacer`, which
        forfeits late slots."""
        ...

    async def slow_down(self, number_id: str, seconds: float) -> None:
        """No slot for anyone on this number for ``seconds`` from now (Meta said: too fast)."""
        ...

    # the cluster
    async def heartbeat(self, replica: str, info: dict[str, Any]) -> None:
        """Say this replica is alive (``info``: its listen address, version, mps ...) and
        renew every lease it holds."""
        ...

    async def cluster_status(self) -> ClusterStatus: ...

    async def depths(self) -> Depths: ...


# --- helpers shared by the backends ----------------------------------------------------------


def crash_dlr(msg_id: str, reason: str, now: float | None = None) -> dict[str, Any]:
    """The failed DLR the crash rule enqueues, in CleverTap's status callback format (its
    timestamp in epoch seconds, as the spec's samples and the bridge's other DLRs have it)."""
    from ctwa.wire.callbacks import StatusCallback

    stamp = str(int(time.time() if now is None else now))
    callback = StatusCallback.model_validate({"statuses": [{
        "msgId": msg_id, "status": "failed", "timestamp": stamp,
        "error": {"code": CRASH_CODE, "title": reason[:200]}}]})
    return callback.model_dump(mode="json", exclude_none=True)


def crash_reason(replica: str | None, window: float | None = None) -> str:
    """The reason the crash rule records (and the DLR's error title carries)."""
    waited = "" if window is None else f" and Meta sent no status for it within {window:g} s"
    return (f"bridge replica {replica or '?'} stopped while sending this message to Meta"
            f"{waited}; not resent, so it is never sent twice")


def new_replica_id(label: str = "") -> str:
    """A replica name unique to this process run: host, pid and a random part. Unique per run
    matters: heartbeats renew every lease held under the name, so a restarted process reusing
    its old name would keep the dead run's in-flight sends from ever meeting the crash rule."""
    import os
    import secrets
    import socket

    parts = [socket.gethostname(), str(os.getpid()), secrets.token_hex(3)]
    if label:
        parts.insert(1, label)
    return ":".join(parts)


def encode_cursor(name: str, language: str) -> str:
    """The opaque ``after`` cursor of GET /templates paging (URL-safe)."""
    import base64

    raw = orjson.dumps([name, language])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    import base64
    import binascii

    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        name, language = orjson.loads(raw)
        if isinstance(name, str) and isinstance(language, str):
            return name, language
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        pass
    raise InvalidCursor(f"after={cursor[:40]!r} is not a cursor this endpoint gave out")


class InvalidCursor(StateError):
    """An ``after`` cursor that was not made by ``list_templates`` (the app answers 400)."""

    exit_code = ExitCode.USAGE


def expected_before(rank: int) -> int | None:
    """The rank a callback of this rank waits for (ORDER_HOLD_SECONDS at most), if any."""
    return EXPECTS.get(rank)


def implies_earlier(rank: int) -> bool:
    """Whether a callback of this rank waits (ORDER_HOLD_SECONDS) for an earlier one."""
    return expected_before(rank) is not None


def safe_url(url: str) -> str:
    """The state URL as it may be printed: a password in it is replaced by ``***``."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username or ''}:***@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


async def open_state(url: str, *, timeout: float = 5.0, ack_timeout: float = 0.8) -> BridgeState:
    """Open the state at ``url``: a path or ``sqlite:///path`` -> SQLite, ``postgresql://...``
    (or ``postgres://``) -> PostgreSQL. Checks that the database answers (else
    :class:`StateUnavailable`) and that its schema is not newer than this code (else
    :class:`SchemaMismatch`); call ``migrate()`` to create or upgrade it.

    ``timeout`` bounds every operation; ``ack_timeout`` bounds ``enqueue_send`` and
    ``store_webhook``, which the app answers inside CleverTap's deadline."""
    if url.startswith(("postgresql://", "postgres://")):
        from ctwa.bridge.state.postgres import PostgresState

        return await PostgresState.open(url, timeout=timeout, ack_timeout=ack_timeout)
    if "://" in url and not url.startswith("sqlite://"):
        scheme = url.split("://", 1)[0]
        raise StateError(f"--state {safe_url(url)}: unknown scheme {scheme!r}; use a file path, "
                         "sqlite:///path or postgresql://user@host/db")
    from ctwa.bridge.state.sqlite import SqliteState

    return await SqliteState.open(url, timeout=timeout, ack_timeout=ack_timeout)
