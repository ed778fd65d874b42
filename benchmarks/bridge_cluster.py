"""The bridge's answers to CleverTap at 1500 in flight: one replica vs two, SQLite vs
PostgreSQL, in the same run.

Each configuration: the sandbox's Meta in its own process, ``ctwa bridge`` replicas (their own
processes) behind the round-robin proxy of the cluster tests, a recording CleverTap; COUNT
text payloads POSTed once each with 1500 in flight (tests/bridge/cluster/test_cluster.py's
client: a pooled raw HTTP client, never retrying). Reported: answers/s, p50/p99/max of the
answer time, how many were over CleverTap's 1 s deadline, how many were refused (2004/503,
the state not taking the message within the deadline). PostgreSQL is a throw-away cluster with
fsync on; SQLite a file (WAL, synchronous=FULL).

    .venv/bin/python benchmarks/bridge_cluster.py [COUNT]
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from ctwa.bridge.state.throwaway import start_cluster
from tests.bridge.cluster.test_cluster import Cluster, payloads, send_all

CONCURRENCY = 1500
MPS = 1000.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def one(state: str, replicas: int, count: int) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="ctwa-bench-"))
    try:
        with Cluster(tmp, state, replicas=replicas, mps=MPS) as cluster:
            send_all(cluster.proxy.url, payloads(500), 500)  # warm: connections, imports
            import time

            started = time.perf_counter()
            run = send_all(cluster.proxy.url, [
                {**p, "msgId": p["msgId"].replace("|2700|", "|2701|")} for p in payloads(count)],
                CONCURRENCY)
            elapsed = time.perf_counter() - started
        lat = run.latencies
        return {"per_s": len(lat) / elapsed, "p50": pct(lat, 0.5) * 1000,
                "p99": pct(lat, 0.99) * 1000, "max": max(lat) * 1000,
                "late": sum(1 for x in lat if x > 1.0), "refused": len(run.refused),
                "unanswered": len(run.unanswered)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    rows = {}
    tmp = Path(tempfile.mkdtemp(prefix="ctwa-bench-sqlite-"))
    try:
        rows["sqlite, 1 replica"] = one(str(tmp / "bridge.db"), 1, count)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    pg = start_cluster(fsync=True)
    try:
        for replicas in (1, 2):
            import psycopg

            schema = f"bench{replicas}"
            with psycopg.connect(pg.url, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {schema}")
            url = f"{pg.url}?options=-csearch_path%3D{schema}"
            rows[f"postgresql, {replicas} replica{'s' if replicas > 1 else ''}"] = one(
                url, replicas, count)
    finally:
        pg.destroy()
    print(f"{count} payloads at {CONCURRENCY} in flight, --mps {MPS:g}")
    for name, r in rows.items():
        print(f"  {name:24s} {r['per_s']:7.0f} answers/s  p50 {r['p50']:6.1f} ms  p99 "
              f"{r['p99']:6.1f} ms  max {r['max']:6.1f} ms  over 1 s: {r['late']:.0f}  "
              f"refused 2004: {r['refused']:.0f}  unanswered: {r['unanswered']:.0f}")


if __name__ == "__main__":
    main()
