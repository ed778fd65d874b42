"""SQLite: CleverTap's answer for a message and whether it is stored always agree.

The writer thread begins a transaction with ``BEGIN IMMEDIATE``, which waits for another
process's lock (a second bridge process on the same file, ``--workers-process``), and commits
with ``synchronous=FULL``, which waits for the disk. A caller whose transaction has begun is
waited for, so it is told "stored" when it is (it used to be told 2004 at its deadline while the
row committed behind it, and a worker could claim and send it before the withdrawal); a caller
whose job is still queued when its time is up is abandoned, and that job never runs."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

from ctwa.bridge.state import StateUnavailable, open_state


def _hold_lock(path: Path, seconds: float, held: threading.Event) -> threading.Thread:
    """Another process's writer: holds the file's write lock for ``seconds``."""
    def run() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(seconds)
        conn.execute("COMMIT")
        conn.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_caller_whose_transaction_has_begun_is_told_the_outcome(tmp_path: Path) -> None:
    """The write itself is slow once the lock is held (on a loaded machine: the fsync of
    ``synchronous=FULL``): past the ack deadline and the old bound, the caller gets the
    write's own answer instead of "not stored" for a row that then commits."""
    path = tmp_path / "state.sqlite3"

    def slow_write(conn: sqlite3.Connection) -> str:
        time.sleep(1.6)
        conn.execute("CREATE TABLE IF NOT EXISTS slow (x INTEGER)")
        conn.execute("INSERT INTO slow VALUES (1)")
        return "stored"

    async def body() -> tuple[str, float, int]:
        state = await open_state(str(path), ack_timeout=0.2)
        await state.migrate()
        try:
            started = time.monotonic()
            answer = await state._call(slow_write, ack=True)  # type: ignore[attr-defined]
            waited = time.monotonic() - started
        finally:
            await state.close()
        rows = sqlite3.connect(path).execute("SELECT count(*) FROM slow").fetchone()[0]
        return answer, waited, rows

    answer, waited, rows = asyncio.run(asyncio.wait_for(body(), 30))
    assert answer == "stored" and rows == 1  # told what the disk holds
    assert waited > 1.2  # past the ack deadline (0.2 s) and the old bound (1.2 s)


def test_a_send_given_up_while_another_process_holds_the_lock_never_lands(
        tmp_path: Path) -> None:
    """Waiting for another process's lock is not a begun write: the caller is answered
    within its deadline (CleverTap gets 2004 in time) and the send is never stored."""
    path = tmp_path / "state.sqlite3"

    async def body() -> tuple[BaseException | None, float, list[str]]:
        state = await open_state(str(path), ack_timeout=0.2)
        await state.migrate()
        try:
            held = threading.Event()
            locker = _hold_lock(path, 1.0, held)
            held.wait(5)
            error: BaseException | None = None
            started = time.monotonic()
            try:
                await state.enqueue_send("m1", "freeform", {"msgId": "m1"})
            except StateUnavailable as exc:
                error = exc
            answered = time.monotonic() - started
            locker.join(5)
            await state.enqueue_send("m2", "freeform", {"msgId": "m2"})
            claimed = [item.msg_id for item in await state.claim_sends("r1", 10, 15.0)]
        finally:
            await state.close()
        return error, answered, claimed

    error, answered, claimed = asyncio.run(asyncio.wait_for(body(), 30))
    assert isinstance(error, StateUnavailable)  # told "not stored" (2004) ...
    assert answered < 0.9  # ... within CleverTap's second
    assert claimed == ["m2"]  # and m1 never landed once the lock was free
