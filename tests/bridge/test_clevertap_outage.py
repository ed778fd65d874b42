"""CleverTap down for ten minutes loses nothing and gets each message's DLRs in order when it
is back (issue 26): a real ``ctwa bridge`` process in front of the sandbox's Meta, CleverTap's
callback URLs refusing (503) and then unreachable (nothing listening) for the whole outage.

``CTWA_TEST_CLEVERTAP_OUTAGE`` (seconds, read at import) shortens the outage for a local run;
the suite runs the full ten minutes."""

from __future__ import annotations

import itertools
import json
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ctwa.infra.ports import free_port
from ctwa.infra.threadserver import ThreadServer
from ctwa.sandbox.meta import MetaSettings
from ctwa.sandbox.server import RunningSandbox, SandboxSettings
from tests.bridge.conftest import wait_until
from tests.bridge.test_e2e import PASSWORD, start_bridge

OUTAGE = float(os.environ.get("CTWA_TEST_CLEVERTAP_OUTAGE", "600"))
#: the bridge's default callback_max_backoff: the longest wait between two deliveries
CAP = 30.0
ORDER = {"sent": 0, "delivered": 1, "read": 2}


@dataclass
class CleverTap:
    """CleverTap's status and inbound URLs on a fixed port, recording each status with its
    arrival time; ``down`` answers 503; ``stop``/``start`` make it unreachable and back."""

    port: int
    down: bool = False
    refused: int = 0
    got: list[tuple[float, str, str]] = field(default_factory=list)  # (time, msgId, status)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadServer | None = None

    def app(self) -> Starlette:
        async def callback(request: Request) -> Response:
            if self.down:
                self.refused += 1
                return PlainTextResponse("down", status_code=503)
            body = json.loads(await request.body())
            if request.path_params["route"] == "status":
                with self.lock:
                    for entry in body["statuses"]:
                        self.got.append((time.monotonic(), entry["msgId"], entry["status"]))
            return JSONResponse({"status": "success"})

        return Starlette(routes=[Route("/{route}", callback, methods=["POST"])])

    placeholder: socket.socket | None = None

    def start(self) -> None:
        if self.placeholder is not None:
            self.placeholder.close()
            self.placeholder = None
        self.server = ThreadServer(self.app(), "127.0.0.1", self.port)
        self.server.start()

    def stop(self, *, hold_port: bool = False) -> None:
        """Stop listening; with ``hold_port`` the port stays bound (not listening, so a
        connection is refused) and no other socket can take it during the outage: an
        outgoing connection's ephemeral port could, and the restart would then fail."""
        if self.server is not None:
            self.server.stop()
            self.server = None
        if hold_port and self.placeholder is None:
            self.placeholder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.placeholder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.placeholder.bind(("127.0.0.1", self.port))
        elif not hold_port and self.placeholder is not None:
            self.placeholder.close()
            self.placeholder = None

    def statuses(self) -> dict[str, list[str]]:
        seen: dict[str, list[str]] = {}
        with self.lock:
            for _, msg_id, status in self.got:
                seen.setdefault(msg_id, []).append(status)
        return seen


def text(n: int) -> dict[str, Any]:
    # numbers ending in 1: none of the sandbox's failing suffixes (0026, 0047, 0050)
    return {"payloadVersion": 0.1, "to": f"9190001{n:03d}1", "wabaNumber": "919999999998",
            "msgId": f"1|888|20260101|{n}", "isTemplate": False, "type": "text",
            "text": {"body": f"message {n}"}}


def test_clevertap_down_ten_minutes_loses_nothing_and_keeps_order(tmp_path: Path) -> None:
    port = free_port()
    clevertap = CleverTap(free_port())
    clevertap.start()
    meta = MetaSettings(webhook_url=f"http://127.0.0.1:{port}/webhook", mps=0,
                        status_delays=(0.05, 0.1, 0.15))
    base = f"http://127.0.0.1:{clevertap.port}"
    accepted: list[str] = []
    try:
        with RunningSandbox(SandboxSettings(port=0, meta=meta, store_callbacks=False)) as box:
            bridge = start_bridge(port, box, f"{base}/status", f"{base}/inbound",
                                  tmp_path / "b.sqlite3", tmp_path, mps=80)
            try:
                with httpx.Client(timeout=10, auth=("clevertap", PASSWORD)) as client:
                    def send(numbers: range) -> None:
                        for n in numbers:
                            answer = client.post(f"{bridge.url}/messages", json=text(n))
                            assert answer.json() == {"status": "success"}, answer.text
                            accepted.append(text(n)["msgId"])

                    send(range(0, 40))  # before: some DLRs get through, most queue
                    clevertap.down = True
                    start = time.monotonic()
                    batches = iter(range(40, 1000, 10))
                    unreachable = False
                    while (elapsed := time.monotonic() - start) < OUTAGE:
                        if not unreachable and elapsed >= OUTAGE / 2:
                            clevertap.stop(hold_port=True)  # refusing, then nobody listening
                            unreachable = True
                        first = next(batches)
                        send(range(first, first + 10))  # during: Meta's statuses keep coming
                        time.sleep(min(OUTAGE / 10, max(0.0, OUTAGE - elapsed)))
                    delivered_before = len(clevertap.got)
                    assert clevertap.refused > 0
                    box.meta.wait_idle(30)  # every status Meta had reached the bridge
                    clevertap.down = False
                    clevertap.start()
                    back = time.monotonic()

                    def complete() -> bool:
                        seen = clevertap.statuses()
                        return all(set(ORDER) <= set(seen.get(m, ())) for m in accepted)

                    wait_until(complete, timeout=CAP * 4 + 60,
                               what="every message's sent, delivered and read")
            finally:
                bridge.stop()
    finally:
        clevertap.stop()
    after = [t for t, _, _ in clevertap.got[delivered_before:]]
    first_lag, last_lag = after[0] - back, after[-1] - back
    print(f"\nCleverTap outage {OUTAGE:.0f} s, {len(accepted)} messages: first DLR "
          f"{first_lag:.1f} s and last {last_lag:.1f} s after it was back; "
          f"{clevertap.refused} deliveries refused during it")
    seen = clevertap.statuses()
    for msg_id in accepted:
        statuses = seen[msg_id]
        firsts = sorted(set(statuses), key=statuses.index)
        assert firsts == ["sent", "delivered", "read"], (msg_id, statuses)
    assert set(seen) == set(accepted)  # nothing CleverTap did not send
    # the deliverer's backoff is capped: delivery resumed within the cap (plus one claim round
    # and a loaded machine's slack), not after a backoff grown over ten minutes
    assert first_lag <= CAP + 15, first_lag
    assert last_lag <= CAP + 15, last_lag  # the backlog followed at once (hasten_callbacks)


# --- the same schedule in simulated time ------------------------------------------------------


@dataclass
class Clock:
    """Epoch seconds that move only when told to (the bridge's ``now`` and the state's)."""

    t: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


@dataclass
class OutagePool:
    """CleverTap's callback URL as the deliverer's pool: refusing (503) in the first half of
    the outage, unreachable in the second, taking everything outside it; every attempt kept."""

    clock: Clock
    start: float
    end: float
    attempts: list[tuple[float, str, str, bool]] = field(default_factory=list)

    async def post(self, body: bytes) -> tuple[int, bytes]:
        from ctwa.http.raw import HttpError

        entry = json.loads(body)["statuses"][0]
        now = self.clock()
        up = not self.start <= now < self.end
        self.attempts.append((now, entry["msgId"], entry["status"], up))
        if up:
            return 200, b'{"status": "success"}'
        if now < (self.start + self.end) / 2:
            return 503, b"down"
        raise HttpError("could not connect to 127.0.0.1:9: connection refused")

    def close(self) -> None:
        pass


def test_retry_schedule_in_simulated_time_caps_backoff_never_gives_up_keeps_order(
        tmp_path: Path, monkeypatch: Any) -> None:
    import asyncio
    import random

    from ctwa.bridge import service
    from ctwa.bridge.config import BridgeSecrets, BridgeSettings
    from ctwa.bridge.state import RANK
    from ctwa.bridge.state.sqlite import SqliteState

    clock = Clock()
    monkeypatch.setattr(service, "now", clock)
    start, outage = clock.t, 600.0
    pool = OutagePool(clock, start, start + outage)
    random.seed(26)

    async def body() -> None:
        state = await SqliteState.open(str(tmp_path / "b.sqlite3"))
        state.clock = clock
        await state.migrate()
        settings = BridgeSettings(callback_max_backoff=CAP, listen="127.0.0.1:1")
        bridge = service.Bridge(settings, BridgeSecrets(), state)
        bridge._pools = {"status": pool, "inbound": pool}
        messages = [f"m{n}" for n in range(30)]

        async def enqueue(batch: list[str]) -> None:
            # Meta's webhooks come in any order: each message's statuses shuffled
            for msg_id in batch:
                kinds = list(ORDER)
                random.shuffle(kinds)
                for kind in kinds:
                    await state.enqueue_callback(msg_id, "status", {"statuses": [{
                        "msgId": msg_id, "status": kind,
                        "timestamp": str(int(clock()))}]}, RANK[kind])

        def next_due(conn: Any) -> float | None:
            return conn.execute("SELECT MIN(not_before) FROM bridge_callbacks WHERE "
                                "state = 'pending' AND not_before > ?",
                                (clock(),)).fetchone()[0]

        await enqueue(messages[:10])  # before the outage, as it begins
        later = messages[10:]
        replicas = iter(lambda: random.choice(["replica-a", "replica-b"]), None)
        try:
            while clock() < start + outage + 10 * CAP:
                if later and clock() >= start + 120:
                    await enqueue(later)  # during it
                    later = []
                items = await state.claim_callbacks(next(replicas), 7, service.LEASE)
                if items:
                    await asyncio.gather(*(bridge._deliver(item) for item in items))
                    continue
                due = await state._call(next_due)  # nothing due now: on to the next one
                if due is None and not later:
                    break
                clock.t = min(due or start + 120, start + 120 if later else due)
        finally:
            await state.close()

    asyncio.run(body())
    ok = [(t, m, s) for t, m, s, up in pool.attempts if up]
    # nothing lost, nothing given up: every status of every message delivered, after the end
    assert sorted((m, s) for _, m, s in ok) == sorted(
        (f"m{n}", s) for n in range(30) for s in ORDER)
    assert all(t >= start + outage for t, _, _ in ok)
    # the cap: no callback waited longer than callback_max_backoff between two attempts
    tried: dict[tuple[str, str], list[float]] = {}
    for t, m, s, _ in pool.attempts:
        tried.setdefault((m, s), []).append(t)
    gaps = [b - a for times in tried.values() for a, b in itertools.pairwise(times)]
    assert max(gaps) <= CAP + 0.01 and max(gaps) >= CAP * 0.8  # it grew to the cap
    assert all(len(times) > 1 for (m, s), times in tried.items() if s == "sent")
    # order per message, across replicas and retries: a status is tried only once the one
    # before it was delivered (claims hand out each message's next callback only)
    for n in range(30):
        msg = [(t, s, up) for t, m, s, up in pool.attempts if m == f"m{n}"]
        delivered = [s for _, s, up in msg if up]
        assert delivered == ["sent", "delivered", "read"], (n, msg)
        assert all(s == "sent" for _, s, up in msg if not up)
    lag = max(t for t, _, _ in ok) - (start + outage)
    first = min(t for t, _, _ in ok) - (start + outage)
    # the first callback CleverTap takes again hastens the whole backlog (hasten_callbacks):
    # the rest follows at once, not over another backoff
    assert first <= CAP + 0.01 and lag <= first + 1.0, (first, lag)
    print(f"\nsimulated {outage:.0f} s outage: first DLR {first:.1f} s, last {lag:.1f} s "
          f"after CleverTap was back; {len(pool.attempts) - len(ok)} attempts refused")
