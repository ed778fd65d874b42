"""Batched writes from a background thread, so the store never slows a hot path.

A listener taking thousands of callbacks a second hands each record to a queue (a few hundred
nanoseconds) and goes on; the thread writes whatever has gathered in one transaction, at most
every FLUSH_SECONDS. A write that fails is counted and its first error kept, never raised into
the server that called ``put``."""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path
from typing import Any

from ctwa.store.db import Store
from ctwa.store.records import CallbackRecord, SendRecord

FLUSH_SECONDS = 0.05
MAX_BATCH = 5000
#: Callbacks about messages the store never saw sent, kept per writer; past it they are only
#: counted, so a flood of them (a BSP replaying another system's traffic) cannot fill the disk.
ORPHAN_LIMIT = 10_000


class BatchWriter:
    def __init__(self, path: Path | None = None, orphan_limit: int = ORPHAN_LIMIT) -> None:
        self.store = Store(path)  # opened (and migrated) here: a bad store fails at once
        self.path = self.store.path
        self.orphan_limit = orphan_limit
        self.orphans_kept = 0
        self.orphans_dropped = 0
        self._prefixes: tuple[str, ...] = ()
        self._prefixes_at = 0.0
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.written = 0
        self.lost = 0
        self.error: str | None = None
        self._pending = 0
        self._idle = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="ctwa-store", daemon=True)
        self._thread.start()

    def put(self, record: CallbackRecord | SendRecord) -> None:
        with self._idle:
            self._pending += 1
        self._queue.put(record)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything put so far is written (or lost); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def close(self) -> None:
        self.flush()
        self._queue.put(None)
        self._thread.join(timeout=10)
        self.store.close()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch = [self._queue.get()]
            deadline = time.monotonic() + FLUSH_SECONDS
            while len(batch) < MAX_BATCH:
                left = deadline - time.monotonic()
                try:
                    batch.append(self._queue.get(timeout=max(left, 0.0)) if left > 0
                                 else self._queue.get_nowait())
                except queue.Empty:
                    break
            if None in batch:
                stopping = True
                batch = [r for r in batch if r is not None]
            self._write(batch)

    def _write(self, batch: list[Any]) -> None:
        if not batch:
            return
        callbacks = [r for r in batch if isinstance(r, CallbackRecord)]
        sends = [r for r in batch if isinstance(r, SendRecord)]
        try:
            if callbacks:
                callbacks = self._bound_orphans(callbacks)
                self.store.add_callbacks(callbacks)
            if sends:
                self.store.add_sends(sends)
            self.written += len(batch)
        except Exception as exc:  # counted and said once by the owner; never crash it
            self.lost += len(batch)
            self.error = self.error or str(exc)
        with self._idle:
            self._pending -= len(batch)
            self._idle.notify_all()

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
        sent = self.store.sent_among([r.msg_id for r in unknown if r.msg_id is not None])
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
