"""The bridge's answers to CleverTap at 1500 in flight: one replica vs two, SQLite vs
PostgreSQL, in the same run, every server in its own process.

Per configuration: the sandbox's Meta (no rate limit of its own), ``ctwa callback listen
--no-store`` as CleverTap, ``ctwa bridge`` replicas at ``--mps`` 1000 behind the cluster
tests' round-robin TCP proxy (also in front of a single replica, so the configurations differ
only in the bridge), and ``ctwa send-template --sample lto --count N --concurrency 1500`` as
CleverTap's sender. Reported: p50/p99 of the answers, how many CleverTap would count as
timeouts (over 1 s), how many were accepted. PostgreSQL is a throw-away cluster with fsync on,
each configuration in a schema of its own; SQLite a file (WAL, synchronous=FULL).

    .venv/bin/python benchmarks/bridge_cluster.py [COUNT]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge import SANDBOX, bridge_env, process

from ctwa.bridge.state.throwaway import start_cluster
from ctwa.infra.ports import free_port

CONCURRENCY = 1500
MPS = 1000


def run(state: str, replicas: int, count: int, tmp: Path,
        direct: bool = False) -> dict[str, Any]:
    """``direct``: one replica without the proxy before it (what the proxy itself costs)."""
    ports = [free_port() for _ in range(replicas)]
    proxy_port, sandbox_port, listen_port = free_port(), free_port(), free_port()
    front = f"http://127.0.0.1:{ports[0] if direct else proxy_port}"
    sandbox = f"http://127.0.0.1:{sandbox_port}"
    env = {**bridge_env(tmp), "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    numbers = tmp / "numbers.txt"
    numbers.write_text("".join(f"9190000{n:05d}\n" for n in range(1, 1001)
                               if not str(n).endswith(("26", "50", "47"))))
    with ExitStack() as stack:
        stack.enter_context(process(
            [sys.executable, "-m", "ctwa", "callback", "listen", "--port", str(listen_port),
             "--no-store"], f"http://127.0.0.1:{listen_port}/stats", env))
        stack.enter_context(process(
            [sys.executable, "-c", SANDBOX.format(webhook=f"{front}/webhook", mps=0,
                                                  port=sandbox_port)], f"{sandbox}/meta/stats"))
        proxy = subprocess.Popen([sys.executable, "-m", "tests.bridge.cluster.proxy",
                                  str(proxy_port), *map(str, ports)],
                                 env={**os.environ, **env}, stdout=subprocess.PIPE, text=True)
        stack.callback(proxy.kill)
        assert proxy.stdout is not None
        proxy.stdout.readline()
        for index, port in enumerate(ports):
            stack.enter_context(process(
                [sys.executable, "-m", "ctwa", "bridge", "--listen", f"127.0.0.1:{port}",
                 "--graph-url", f"{sandbox}/meta/v21.0", "--phone-number-id",
                 "100000000000001", "--waba-id", "200000000000001", "--status-url",
                 f"http://127.0.0.1:{listen_port}/status", "--inbound-url",
                 f"http://127.0.0.1:{listen_port}/inbound", "--username", "clevertap",
                 "--state", state, "--mps", str(MPS)], f"http://127.0.0.1:{port}/health",
                env, log=tmp / f"bridge-{index}.log"))
        time.sleep(1.0)
        load = subprocess.run(
            [sys.executable, "-m", "ctwa", "--json", "send-template", "--sample", "lto",
             "--to-file", str(numbers), "--count", str(count), "--concurrency",
             str(CONCURRENCY), "--endpoint", f"{front}/messages", "--username", "clevertap"],
            env={**os.environ, **env}, capture_output=True, text=True, timeout=900)
        report = json.loads(load.stdout) if load.stdout.strip() else {"error": load.stderr}
    return {"latency_ms": report.get("latency_ms"), "too_slow": report.get("too_slow"),
            "accepted": report.get("accepted"), "error": report.get("error")}


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        rows["sqlite, 1 replica"] = run(str(Path(tmp) / "bridge.db"), 1, count,
                                        Path(tmp))
    with tempfile.TemporaryDirectory() as tmp:
        rows["sqlite, 1, no proxy"] = run(str(Path(tmp) / "bridge.db"), 1, count, Path(tmp),
                                          direct=True)
    cluster = start_cluster(fsync=True)
    try:
        import psycopg

        for replicas in (1, 2):
            schema = f"bench{replicas}"
            with psycopg.connect(cluster.url, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {schema}")
            with tempfile.TemporaryDirectory() as tmp:
                rows[f"postgresql, {replicas} replica{'s' if replicas > 1 else ''}"] = run(
                    f"{cluster.url}?options=-csearch_path%3D{schema}", replicas, count,
                    Path(tmp))
    finally:
        cluster.destroy()
    print(f"{count} LTO payloads at {CONCURRENCY} in flight, --mps {MPS}")
    for name, row in rows.items():
        print(f"  {name:24s} {json.dumps(row)}")


if __name__ == "__main__":
    main()
