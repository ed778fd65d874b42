"""Batched writes from a background thread, so the store never slows a hot path.

A sender appends each record to a list (tens of nanoseconds) and goes on (``put``); the thread
writes whatever has gathered in one transaction, at most every FLUSH_SECONDS. A write that
fails is counted and its first error kept, never raised into the server that called ``put``.

A listener that answers 2xx only once a callback is durable uses ``keep`` instead: it gets a
future resolved when the transaction holding the records has committed (group commit: every
callback that arrived while the last transaction was being written goes in the next one, so a
burst costs a few transactions, not one each). A record the store cannot take (text that is
not valid Unicode) is refused alone: its own future says why, the rest of its transaction is
written."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctwa.store.db import Store
from ctwa.store.records import CallbackRecord, SendRecord

FLUSH_SECONDS = 0.05
MAX_BATCH = 5000
#: Callbacks about messages the store never saw sent, kept per writer; past it they are only
#: counted, so a flood of them (a BSP replaying another system's traffic) cannot fill the disk.
ORPHAN_LIMIT = 10_000


@dataclass
class _Ticket:
    """Records that must be durable before their sender is answered."""

    records: list[CallbackRecord]
    future: asyncio.Future[str | None]
    loop: asyncio.AbstractEventLoop


#: Why the store refuses a record for what it holds (not for the store's own failure).
NOT_UNICODE = "holds text that is not valid Unicode (a lone surrogate, half an emoji?)"
TOO_LARGE = "holds a number too large for the store"
RECORD_REFUSALS = frozenset({NOT_UNICODE, TOO_LARGE})


def refusal(exc: Exception) -> str:
    """Why the store could not take a record, in one line."""
    if isinstance(exc, UnicodeEncodeError):
        return NOT_UNICODE
    if isinstance(exc, OverflowError):
        return TOO_LARGE
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


class BatchWriter:
    def __init__(self, path: Path | None = None, orphan_limit: int = ORPHAN_LIMIT) -> None:
        self.store = Store(path)  # opened (and migrated) here: a bad store fails at once
        self.path = self.store.path
        self.orphan_limit = orphan_limit
        self.orphans_kept = 0
        self.orphans_dropped = 0
        self._prefixes: tuple[str, ...] = ()
        self._prefixes_at = 0.0
        self.written = 0
        self.lost = 0
        self.error: str | None = None
        # ``put`` and ``keep`` append to a deque (atomic: no lock on the caller's path); the
        # thread takes what is there from the other end and writes it
        self._buffer: deque[CallbackRecord | SendRecord] = deque()
        self._tickets: deque[_Ticket] = deque()
        self._wake = threading.Event()
        self._put_count = 0
        self._done_count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ctwa-store", daemon=True)
        self._thread.start()

    def put(self, record: CallbackRecord | SendRecord) -> None:
        self._put_count += 1
        self._buffer.append(record)

    def keep(self, records: list[CallbackRecord]) -> asyncio.Future[str | None]:
        """On the event loop: a future that becomes None once ``records`` are committed, or
        the reason they were refused (the store failed, or a record it cannot take)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str | None] = loop.create_future()
        if not self._thread.is_alive():
            future.set_result("the store writer has stopped")
            return future
        self._put_count += len(records)
        self._tickets.append(_Ticket(records, future, loop))
        self._wake.set()
        return future

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything put so far is written (or lost); False on timeout."""
        wanted = self._put_count
        deadline = time.monotonic() + timeout
        while self._done_count < wanted:
            if time.monotonic() > deadline or not self._thread.is_alive():
                return False
            time.sleep(FLUSH_SECONDS / 5)
        return True

    def close(self) -> None:
        self.flush()
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)
        self.store.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(FLUSH_SECONDS)  # at once when someone waits for a commit
            self._wake.clear()
            while self._buffer or self._tickets:
                if self._tickets:
                    tickets = _take(self._tickets)
                    self._commit(tickets)
                if self._buffer:
                    batch = _take(self._buffer)
                    for start in range(0, len(batch), MAX_BATCH):
                        self._write(batch[start:start + MAX_BATCH])
        closed: str | None = "the store closed"
        for ticket in self._tickets:  # closed with callbacks still waiting: never "kept"
            with contextlib.suppress(RuntimeError):
                ticket.loop.call_soon_threadsafe(_settle, [(ticket.future, closed)])

    def _write(self, batch: list[Any]) -> None:
        callbacks = [r for r in batch if isinstance(r, CallbackRecord)]
        sends = [r for r in batch if isinstance(r, SendRecord)]
        if callbacks:
            kept = self._guarded(self._bound_orphans, callbacks) or []
            self._insert(self.store.add_callbacks, kept)
        if sends:
            self._insert(self.store.add_sends, sends)
        self._done_count += len(batch)

    def _insert(self, add: Any, records: list[Any]) -> list[str | None]:
        """Write records in one transaction; if it fails, each alone, so that one record the
        store cannot take is lost alone, not with its batch. Each record's error, or None."""
        try:
            add(records)
        except Exception:  # counted and said once by the owner; never crash it
            errors: list[str | None] = []
            for record in records:
                try:
                    add([record])
                except Exception as exc:
                    self.lost += 1
                    self.error = self.error or refusal(exc)
                    errors.append(refusal(exc))
                else:
                    self.written += 1
                    errors.append(None)
            return errors
        self.written += len(records)
        return [None] * len(records)

    def _all_or_none(self, records: list[CallbackRecord]) -> str | None:
        """One callback's records in their own transaction: all kept, or none and why."""
        if not records:
            return None
        try:
            self.store.add_callbacks(records)
        except Exception as exc:
            self.lost += len(records)
            self.error = self.error or refusal(exc)
            return refusal(exc)
        self.written += len(records)
        return None

    def _guarded(self, func: Any, *args: Any) -> Any:
        try:
            return func(*args)
        except Exception as exc:
            self.error = self.error or refusal(exc)
            return None

    def _commit(self, tickets: list[_Ticket]) -> None:
        """One transaction for every ticket's records (each ticket refused alone if that
        fails), then each waiting sender told, one call per event loop."""
        everything = [r for ticket in tickets for r in ticket.records]
        kept = self._guarded(self._bound_orphans, everything)
        outcome: list[tuple[asyncio.Future[str | None], str | None]] = []
        if kept is None:  # the store cannot be read: nothing is written
            outcome = [(t.future, self.error) for t in tickets]
            self.lost += len(everything)
        else:
            chosen = {id(r) for r in kept}
            groups = [[r for r in t.records if id(r) in chosen] for t in tickets]
            try:
                self.store.add_callbacks([r for group in groups for r in group])
            except Exception:
                for ticket, group in zip(tickets, groups, strict=True):
                    outcome.append((ticket.future, self._all_or_none(group)))
            else:
                self.written += len(kept)
                outcome = [(t.future, None) for t in tickets]
        self._done_count += len(everything)
        by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        for ticket, (future, reason) in zip(tickets, outcome, strict=True):
            by_loop.setdefault(ticket.loop, []).append((future, reason))
        for loop, results in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_settle, results)

    def _bound_orphans(self, callbacks: list[CallbackRecord]) -> list[CallbackRecord]:
        """Keep callbacks about messages the store knows; keep the others up to the limit."""
        now = time.monotonic()
        if now - self._prefixes_at > 1.0:
            self._prefixes = tuple(self.store.known_prefixes())
            self._prefixes_at = now
        unknown = [r for r in callbacks
                   if r.msg_id is None or not r.msg_id.startswith(self._prefixes or ("\0",))]
        if not unknown:
            return callbacks
        sent = self.store.sent_among([r.msg_id for r in unknown
                                      if r.msg_id is not None and _encodable(r.msg_id)])
        kept = []
        for record in callbacks:
            if record.msg_id is not None and (record.msg_id in sent or (
                    self._prefixes and record.msg_id.startswith(self._prefixes))):
                kept.append(record)
            elif self.orphans_kept < self.orphan_limit:
                self.orphans_kept += 1
                kept.append(record)
            else:
                self.orphans_dropped += 1
        return kept


def _take(queue: deque[Any]) -> list[Any]:
    """What is in the queue now, taken from its left while others append on its right
    (deque's append and popleft are atomic; swapping a list for an empty one is not: an
    append that had already looked up the old list landed after it was written, and was
    lost)."""
    return [queue.popleft() for _ in range(len(queue))]


def _settle(results: list[tuple[asyncio.Future[str | None], str | None]]) -> None:
    for future, reason in results:
        if not future.done():
            future.set_result(reason)


def _encodable(text: str) -> bool:
    """Whether SQLite can take this text (a lone surrogate cannot be encoded as UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
