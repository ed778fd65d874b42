"""The store on the hot paths: (a) ``ctwa callback listen`` taking a flood of status callbacks
and keeping every one in the store, beside the same listener with ``--no-store`` and a bare
uvicorn app that only answers 200 (the peer: what the web server alone can do); (b) load mode
against nginx with and without per-message recording, same run.

Run: ``python benchmarks/store.py [CALLBACKS] [SECONDS]`` (defaults 50000 and 10). (b) needs
nginx with the echo module, as ``benchmarks/load.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from _servers import free_port, serve

CONNECTIONS = 100


def status_body(i: int) -> bytes:
    return json.dumps({"payloadVersion": "0.1", "statuses": [{
        "msgId": f"11111111|1700000000|20231114|{i}|0", "status": "sent",
        "timestamp": "1700000000"}]}).encode()


async def flood(url: str, total: int) -> tuple[float, int]:
    """Post ``total`` callbacks over CONNECTIONS keep-alive connections; (seconds, 2xx)."""
    from ctwa.http.raw import Pool

    pool = Pool(url, {"Content-Type": "application/json"}, size=CONNECTIONS, timeout=30)
    await pool.fill()
    ok = 0
    next_i = 0

    async def sender() -> None:
        nonlocal ok, next_i
        while next_i < total:
            i = next_i
            next_i += 1
            status, _ = await pool.post(status_body(i))
            ok += 200 <= status < 300

    began = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(CONNECTIONS)))
    pool.close()
    return time.perf_counter() - began, ok


def start_listener(extra: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    ctwa = str(Path(sys.executable).with_name("ctwa"))
    proc = subprocess.Popen([ctwa, "--json", "callback", "listen", "--port", str(port), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    import socket

    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"http://127.0.0.1:{port}/status"
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("the listener did not start") from None
            time.sleep(0.05)


def listener_case(total: int) -> None:
    from ctwa.store.db import Store
    from ctwa.store.records import LoadRunRecord

    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "store.sqlite3"
        env = {**os.environ, "CTWA_STORE": str(store), "CTWA_CONFIG_DIR": folder}
        with Store(store) as db:  # the callbacks are about a run the store knows: all kept
            db.add_load_run(LoadRunRecord("bench", time.time(), "-", "11111111|1700000000|",
                                          ["919000000001"], b"", b"", b""))
        for label, extra in (("ctwa listen (store)", []), ("ctwa listen --no-store",
                                                            ["--no-store"])):
            proc, url = start_listener(extra, env)
            seconds, ok = asyncio.run(flood(url, total))
            time.sleep(0.5)
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=60)
            written = json.loads(out).get("store", {}).get("written", "-")
            kept = "-"
            if not extra:
                kept = sqlite3.connect(store).execute("SELECT COUNT(*) FROM callbacks")\
                    .fetchone()[0]
            print(f"  {label:24} {total / seconds:9,.0f} callbacks/s  2xx {ok:,}  "
                  f"written {written}  rows in the store {kept}")
    with serve("app", "from starlette.applications import Starlette\n"
               "from starlette.responses import Response\n"
               "from starlette.routing import Route\n"
               "async def ok(request):\n    await request.body()\n"
               "    return Response(b'{\"status\":\"accepted\"}')\n"
               "app = Starlette(routes=[Route('/status', ok, methods=['POST'])])") as base:
        seconds, ok = asyncio.run(flood(f"{base}/status", total))
        print(f"  {'bare starlette (peer)':24} {total / seconds:9,.0f} callbacks/s  2xx {ok:,}")


def load_case(seconds: int) -> None:
    import load as load_bench

    from ctwa.load.engine import run_load
    from ctwa.load.plan import LoadPlan
    from ctwa.send.samples import load_sample

    with tempfile.TemporaryDirectory() as folder:
        nginx, port = load_bench.start_nginx(Path(folder))
        try:
            for record in (False, True, False, True):
                plan = LoadPlan(f"http://127.0.0.1:{port}/ok",
                                {"Content-Type": "application/json"}, load_sample("lto"),
                                ("919000000001",), duration=seconds, concurrency=1500,
                                workers=2, record=record)
                report = run_load(plan, on_progress=lambda _: None)
                print(f"  load mode, recording {'on ' if record else 'off'}: "
                      f"{report.requests_per_second:9,.0f} req/s  p99 "
                      f"{report.latency_ms['p99']} ms  messages kept "
                      f"{len(report.outcomes) if report.outcomes else 0:,}")
        finally:
            nginx.send_signal(signal.SIGQUIT)
            nginx.wait(timeout=10)


def main() -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    print(f"(a) {total:,} status callbacks over {CONNECTIONS} connections, "
          f"{os.cpu_count()} cores")
    listener_case(total)
    print(f"(b) load mode against nginx, 1500 in flight, {seconds} s each, 2 workers")
    load_case(seconds)


if __name__ == "__main__":
    main()
