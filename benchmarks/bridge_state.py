"""The bridge's state, SQLite vs PostgreSQL in the same run.

(a) ``enqueue_send`` at 1500 concurrent callers (what 1500 CleverTap requests in flight do to
    the bridge's hot path): each caller enqueues, waits for its durable answer, and enqueues
    again, until TOTAL are accepted; per-call latency p50/p99 and accepted/s.
(b) claims: ``claim_sends`` in batches of 50 until the queue is empty (claimed/s), then the
    worker's whole cycle per message (claim, mark_in_flight, complete_send with its wamid) with
    64 concurrent senders (messages/s).

PostgreSQL is a throw-away cluster on 127.0.0.1 (ctwa.bridge.state.throwaway) with fsync on, as
in production; SQLite a file in a temp dir (WAL, synchronous=FULL). Both durable per answer.

    .venv/bin/python benchmarks/bridge_state.py [TOTAL]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from ctwa.bridge.state import BridgeState, open_state
from ctwa.bridge.state.throwaway import start_cluster

CALLERS = 1500
PAYLOAD = {"msgId": "x", "to": "919876543210", "template": {
    "namespace": "lto", "languageCode": "en", "components": [
        {"type": "body", "parameters": [{"type": "text", "text": "Asha"}]}]}}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def enqueue_run(state: BridgeState, total: int, tag: str) -> dict[str, float]:
    latencies: list[float] = []
    counter = iter(range(total))

    async def caller() -> None:
        for n in counter:
            started = time.perf_counter()
            await state.enqueue_send(f"{tag}|{n}", "template", PAYLOAD)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(CALLERS)))
    elapsed = time.perf_counter() - started
    return {"per_s": total / elapsed, "p50_ms": pct(latencies, 0.5) * 1000,
            "p99_ms": pct(latencies, 0.99) * 1000, "max_ms": max(latencies) * 1000}


async def claim_run(state: BridgeState, total: int) -> float:
    started = time.perf_counter()
    claimed = 0
    while True:
        items = await state.claim_sends("bench", 50, 60)
        if not items:
            break
        claimed += len(items)
    assert claimed == total, (claimed, total)
    return claimed / (time.perf_counter() - started)


async def cycle_run(state: BridgeState, total: int) -> float:
    await asyncio.gather(*(state.enqueue_send(f"cycle|{n}", "template", PAYLOAD)
                           for n in range(total)))
    done = 0

    gate = asyncio.Semaphore(64)

    async def one(item_id: int) -> None:
        nonlocal done
        try:
            await state.mark_in_flight(item_id)
            await state.complete_send(item_id, f"wamid.{item_id}")
            done += 1
        finally:
            gate.release()

    async def sender() -> None:  # as the bridge's sender: claim a batch, send each
        tasks = []
        while True:
            items = await state.claim_sends("bench2", 50, 60)
            if not items:
                break
            for item in items:
                await gate.acquire()
                tasks.append(asyncio.ensure_future(one(item.id)))
        await asyncio.gather(*tasks)

    started = time.perf_counter()
    await sender()
    assert done == total, (done, total)
    return done / (time.perf_counter() - started)


async def bench(url: str, total: int) -> dict[str, float]:
    state = await open_state(url, ack_timeout=5.0, timeout=10.0)
    await state.migrate()
    try:
        await enqueue_run(state, 3000, "warm")  # connections, caches
        await claim_run(state, 3000)
        result = await enqueue_run(state, total, "run")
        result["claims_per_s"] = await claim_run(state, total)
        result["cycle_per_s"] = await cycle_run(state, min(total, 5000))
        return result
    finally:
        await state.close()


def main() -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 15000
    backends = sys.argv[2:] or ["sqlite", "postgresql"]
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    rows = {}
    if "sqlite" in backends:
        with tempfile.TemporaryDirectory() as tmp:
            rows["sqlite"] = asyncio.run(bench(str(Path(tmp) / "bridge.db"), total))
    if "postgresql" in backends:
        cluster = start_cluster(fsync=True)
        try:
            rows["postgresql"] = asyncio.run(bench(cluster.url, total))
        finally:
            cluster.destroy()
    print(f"enqueue_send, {total} accepted by {CALLERS} concurrent callers; claims")
    for name, r in rows.items():
        print(f"  {name:10s} {r['per_s']:8.0f} accepted/s  p50 {r['p50_ms']:6.1f} ms  "
              f"p99 {r['p99_ms']:6.1f} ms  max {r['max_ms']:6.1f} ms  |  claims "
              f"{r['claims_per_s']:7.0f}/s (batches of 50)  claim+in-flight+complete "
              f"{r['cycle_per_s']:6.0f}/s (64 in flight)")


if __name__ == "__main__":
    main()
