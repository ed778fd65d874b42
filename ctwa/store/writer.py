"""Batched writes from a background thread, so the store never slows a hot path.

A listener taking thousands of callbacks a second appends each record to a list (tens of
nanoseconds) and goes on; the thread writes whatever has gathered in one transaction, at most
every FLUSH_SECONDS. A write that fails is counted and its first error kept, never raised into
the server that called ``put``."""

from __future__ import annotations

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
        self.written = 0
        self.lost = 0
        self.error: str | None = None
        # ``put`` appends to a list (one bytecode, atomic under the GIL: no lock, no queue on
        # the caller's path); the thread swaps the list for an empty one and writes it
        self._buffer: list[CallbackRecord | SendRecord] = []
        self._put_count = 0
        self._done_count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ctwa-store", daemon=True)
        self._thread.start()

    def put(self, record: CallbackRecord | SendRecord) -> None:
        self._put_count += 1
        self._buffer.append(record)

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
        self._thread.join(timeout=10)
        self.store.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._stop.wait(FLUSH_SECONDS)
            while self._buffer:
                batch, self._buffer = self._buffer, []
                for start in range(0, len(batch), MAX_BATCH):
                    self._write(batch[start:start + MAX_BATCH])

    def _write(self, batch: list[Any]) -> None:
        callbacks = [r for r in batch if isinstance(r, CallbackRecord)]
        sends = [r for r in batch if isinstance(r, SendRecord)]
        try:
            if callbacks:
                kept = self._bound_orphans(callbacks)
                self.store.add_callbacks(kept)
                self.written += len(kept)
            if sends:
                self.store.add_sends(sends)
                self.written += len(sends)
        except Exception as exc:  # counted and said once by the owner; never crash it
            self.lost += len(batch)
            self.error = self.error or str(exc)
        self._done_count += len(batch)

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
