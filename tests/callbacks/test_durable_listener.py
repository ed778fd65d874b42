"""The listener answers 2xx only once a callback is in the store (issue 25.1): one record the
store cannot take is refused alone, never its batch, and ``kill -9`` during a burst loses
nothing that was acknowledged."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import LiveServer


def _status(msg_id: str) -> bytes:
    # json.dumps escapes a lone surrogate as "\ud83d": valid JSON, and json.loads gives it back
    return json.dumps({"payloadVersion": "0.1", "statuses": [{
        "msgId": msg_id, "status": "sent", "timestamp": "1700000000"}]}).encode()


async def _burst(url: str, bodies: list[tuple[str, bytes]], connections: int = 50,
                 acked: list[str] | None = None) -> dict[str, int]:
    """POST every body over ``connections`` keep-alive connections; msgId -> HTTP status
    (0: no answer). Acknowledged msgIds are appended to ``acked`` as their answers come."""
    from ctwa.http.raw import HttpError, Pool

    pool = Pool(url, {"Content-Type": "application/json"}, size=connections, timeout=10)
    answers: dict[str, int] = {}
    queue = list(reversed(bodies))

    async def sender() -> None:
        while queue:
            msg_id, body = queue.pop()
            try:
                status, _ = await pool.post(body)
            except HttpError:
                status = 0
            answers[msg_id] = status
            if acked is not None and 200 <= status < 300:
                acked.append(msg_id)

    try:
        await asyncio.gather(*(sender() for _ in range(connections)))
    finally:
        pool.close()
    return answers


def test_lone_surrogates_are_refused_alone_and_every_valid_callback_is_kept(tmp_path) -> None:
    from ctwa.callbacks.listener import Listener
    from ctwa.store.db import Store
    from ctwa.store.writer import BatchWriter

    store_file = tmp_path / "store.sqlite3"
    writer = BatchWriter(store_file)
    listener = Listener(store=writer)
    bodies = [(f"good|{i}", _status(f"good|{i}")) for i in range(2000)]
    for i in range(50):  # mixed in, so they share transactions with good ones
        bodies.insert(i * 40 + 7, (f"bad|{i}", _status(f"bad|{i}|\ud83d")))
    with LiveServer(listener.app()) as server:
        answers = asyncio.run(_burst(f"{server.url}/status", bodies))
        stats = httpx.get(f"{server.url}/stats").json()
    writer.close()
    good = {k: v for k, v in answers.items() if k.startswith("good")}
    bad = {k: v for k, v in answers.items() if k.startswith("bad")}
    assert set(good.values()) == {200} and len(good) == 2000
    assert set(bad.values()) == {400}, bad  # refused, not acknowledged and then lost
    assert stats["valid"] == 2000
    with Store(store_file) as store:
        assert store.info()["callbacks"] == 2000
    assert writer.lost == 50 and "not valid Unicode" in (writer.error or "")


def test_a_refused_record_answers_with_the_reason(tmp_path) -> None:
    from ctwa.callbacks.listener import Listener
    from ctwa.store.writer import BatchWriter

    writer = BatchWriter(tmp_path / "store.sqlite3")
    with LiveServer(Listener(store=writer).app()) as server:
        answer = httpx.post(f"{server.url}/status", content=_status("x|\udc00"),
                            headers={"Content-Type": "application/json"})
    writer.close()
    assert answer.status_code == 400
    assert "not kept in the store" in answer.json()["error"]


def _listen(port: int, store: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "ctwa", "callback", "listen", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**env, "CTWA_STORE": str(store)})


def test_kill_9_during_a_burst_loses_nothing_acknowledged(tmp_path) -> None:
    from ctwa.infra.ports import free_port

    port = free_port()
    store = tmp_path / "store.sqlite3"
    proc = _listen(port, store, dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{url}/stats", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        acked: list[str] = []
        bodies = [(f"m|{i}", _status(f"m|{i}")) for i in range(30000)]

        async def burst_and_kill() -> None:
            sending = asyncio.ensure_future(_burst(f"{url}/status", bodies, 100, acked))
            while len(acked) < 1500 and not sending.done():
                await asyncio.sleep(0.01)
            proc.send_signal(signal.SIGKILL)  # mid-burst: callbacks in every stage
            await sending

        asyncio.run(burst_and_kill())
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert 1500 <= len(acked) < 30000
    db = sqlite3.connect(store)
    kept = {row[0] for row in db.execute("SELECT msg_id FROM callbacks")}
    db.close()
    lost = [m for m in acked if m not in kept]
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged callbacks lost"


def test_every_keep_is_answered_while_the_writer_takes_batches(tmp_path) -> None:
    """Appends racing the writer thread's take: none may fall between two batches (a list
    swapped for an empty one lost the append that had already looked the old one up, and
    that callback's sender waited forever)."""
    from ctwa.store.records import CallbackRecord
    from ctwa.store.writer import BatchWriter

    writer = BatchWriter(tmp_path / "store.sqlite3", orphan_limit=10**6)

    async def many() -> list[str | None]:
        async def one(i: int) -> str | None:
            await asyncio.sleep(0)
            record = CallbackRecord(at=0.0, route="/status", kind="status", msg_id=f"k|{i}",
                                    status="sent")
            return await writer.keep([record])

        return await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(30000))), 60)

    try:
        results = asyncio.run(many())
    finally:
        writer.close()
    assert results == [None] * 30000 and writer.written == 30000
