"""``ctwa bridge`` at campaign load, in one run, every server in its own process.

    .venv/bin/python benchmarks/bridge.py [--count 20000] [--mps 1000] [--slow-mps 80]

1. ``ctwa send-template --sample lto --count N --concurrency 1500`` at the bridge: p50/p99 of
   its answers to CleverTap and how many were over CleverTap's 1 s deadline.
2. The outbox drain, read from the sandbox's Meta mock once a second: the sends/s in each
   full second, and the most within any one second (it must never pass ``--mps``).
3. Callback delivery lag (from a DLR entering the bridge's callback outbox to CleverTap's
   2xx, the bridge's own ``ctwa_bridge_callback_lag_seconds``): p50/p99 from its buckets.
4. Webhook intake: N signed status events posted to ``/webhook`` over 200 connections:
   events/s acknowledged (each stored durably before its 200).
The same is then done at the slow ``--slow-mps`` with a tenth of the messages (the drain at
80/s is what is measured there). CleverTap is ``ctwa callback listen --no-store``. The peer,
in the same run and under the same load: the sandbox's mock BSP endpoint (in memory, nothing
durable, no calls to Meta or back), answering the same ``send-template`` run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

from ctwa.infra.ports import free_port

PASSWORD = "bench-bridge-password"
SANDBOX = """
import signal, sys, time
from ctwa.sandbox.meta import MetaSettings
from ctwa.sandbox.server import RunningSandbox, SandboxSettings
meta = MetaSettings(webhook_url={webhook!r}, mps={mps}, status_delays=(0.05, 0.15, 0.3),
                    read=False)
with RunningSandbox(SandboxSettings(port={port}, meta=meta, store_callbacks=False)) as box:
    print("ready", flush=True)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    while True:
        time.sleep(1)
"""


def _wait_http(url: str, proc: subprocess.Popen[Any], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


@contextmanager
def process(args: list[str], ready_url: str, env: dict[str, str] | None = None,
            log: Path | None = None) -> Any:
    handle = log.open("wb") if log else subprocess.DEVNULL
    proc = subprocess.Popen(args, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                            stderr=handle)
    try:
        _wait_http(ready_url, proc)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def meta_stats(sandbox: str) -> dict[str, Any]:
    return dict(httpx.get(f"{sandbox}/meta/stats", timeout=30).json())


def histogram_quantiles(metrics: str, name: str, qs: tuple[float, ...]) -> dict[float, float]:
    buckets: list[tuple[float, float]] = []
    for line in metrics.splitlines():
        if line.startswith(f"{name}_bucket"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float("inf") if bound == "+Inf" else float(bound),
                            float(line.rsplit(" ", 1)[1])))
    total = buckets[-1][1] if buckets else 0
    out = {}
    for q in qs:
        out[q] = next((bound for bound, count in buckets if total and count >= q * total),
                      float("nan"))
    return out


async def post_webhooks(url: str, secret: str, count: int) -> float:
    from ctwa.bridge.webhooks import sign
    from ctwa.http.raw import Pool

    async def one_pool() -> float:
        pool = Pool(url, {"Content-Type": "application/json"}, size=200, timeout=10)
        bodies = []
        for n in range(count):
            body = json.dumps({"object": "whatsapp_business_account", "entry": [{
                "id": "1", "changes": [{"field": "messages", "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "1", "phone_number_id": "1"},
                    "statuses": [{"id": f"wamid.bench{n}", "status": "delivered",
                                  "timestamp": "1", "recipient_id": "1"}]}}]}]}).encode()
            bodies.append(body)
        gate = asyncio.Semaphore(200)
        ok = 0
        head = pool.head

        async def send(body: bytes) -> None:
            nonlocal ok
            async with gate:
                pool.head = head.replace(b"\r\nContent-Type", b"\r\nX-Hub-Signature-256: "
                                         + sign(secret, body).encode() + b"\r\nContent-Type")
                status, _ = await pool.post(body)
                ok += status == 200

        started = time.perf_counter()
        await asyncio.gather(*(send(b) for b in bodies))
        took = time.perf_counter() - started
        pool.close()
        if ok != count:
            print(f"  webhook intake: only {ok} of {count} answered 200")
        return count / took

    return await one_pool()


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def tree(pid: int) -> list[int]:
    """A process and all its descendants."""
    out = [pid]
    for child in children(pid):
        out += tree(child)
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def bridge_env(tmp: Path) -> dict[str, str]:
    """The environment of every process a bridge benchmark starts: its own config and data
    folders under ``tmp``, and the bridge's and the sandbox's secrets (never on argv)."""
    return {"CTWA_DATA_DIR": str(tmp / "data"), "CTWA_CONFIG_DIR": str(tmp / "config"),
            "CTWA_BRIDGE_PASSWORD": PASSWORD, "CTWA_META_TOKEN": "sandbox-meta-token",
            "CTWA_META_APP_SECRET": "sandbox-app-secret", "CTWA_META_VERIFY_TOKEN": "v",
            "CTWA_PASSWORD": PASSWORD}


def run(count: int, mps: float, tmp: Path, webhooks: int, extra: list[str] | None = None,
        profile: Path | None = None, state_url: str | None = None) -> dict[str, Any]:
    bridge_port, sandbox_port, listen_port = free_port(), free_port(), free_port()
    bridge = f"http://127.0.0.1:{bridge_port}"
    sandbox = f"http://127.0.0.1:{sandbox_port}"
    env = bridge_env(tmp)
    numbers = tmp / "numbers.txt"
    numbers.write_text("".join(f"9190000{n:05d}\n" for n in range(1, 1001)
                               if not str(n).endswith(("26", "50", "47"))))
    state = state_url or str(tmp / f"bridge-{int(mps)}.sqlite3")
    with ExitStack() as stack:
        stack.enter_context(process(
            [sys.executable, "-m", "ctwa", "callback", "listen", "--port", str(listen_port),
             "--no-store"], f"http://127.0.0.1:{listen_port}/stats", env))
        sandbox_proc = stack.enter_context(process(
            [sys.executable, "-c", SANDBOX.format(webhook=f"{bridge}/webhook", mps=0,
                                                  port=sandbox_port)],
            f"{sandbox}/meta/stats"))
        bridge_proc = stack.enter_context(process(
            [sys.executable, "-m", "ctwa", "bridge", "--listen", f"127.0.0.1:{bridge_port}",
             "--graph-url", f"{sandbox}/meta/v21.0", "--phone-number-id", "100000000000001",
             "--waba-id", "200000000000001", "--status-url",
             f"http://127.0.0.1:{listen_port}/status", "--inbound-url",
             f"http://127.0.0.1:{listen_port}/inbound", "--username", "clevertap",
             "--state", state, "--mps", str(mps), *(extra or [])], f"{bridge}/health",
            env, log=tmp / f"bridge-{int(mps)}.log"))
        # the peer first, same run, same load: the sandbox's mock BSP (answers from memory, keeps
        # nothing durable, calls nobody back); what it costs is the sandbox's CPU meanwhile
        peer_cpu = cpu_seconds(sandbox_proc.pid)
        peer_run = subprocess.run(
            [sys.executable, "-m", "ctwa", "--json", "send-template", "--sample", "lto",
             "--to-file", str(numbers), "--count", str(count), "--concurrency", "1500",
             "--endpoint", f"{sandbox}/bsp/messages", "--username", "ctwa"],
            env={**os.environ, **env, "CTWA_PASSWORD": "sandbox"}, capture_output=True,
            text=True)
        peer_report = json.loads(peer_run.stdout) if peer_run.stdout.strip() else {}
        peer_cpu = cpu_seconds(sandbox_proc.pid) - peer_cpu
        time.sleep(1.0)
        spies = []
        if profile is not None:  # py-spy (pip install py-spy) on every bridge process
            pids = [bridge_proc.pid, *children(bridge_proc.pid)]
            for pid in pids:
                spies.append(subprocess.Popen(
                    [shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"),
                     "record", "--pid", str(pid), "--rate", "200", "--format", "raw",
                     "--duration", "30", "--nonblocking", "-o",
                     str(profile / f"bridge-{int(mps)}-{pid}.txt")],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        accepted_per_second: list[float] = []
        load = subprocess.Popen(
            [sys.executable, "-m", "ctwa", "--json", "send-template", "--sample", "lto",
             "--to-file", str(numbers), "--count", str(count), "--concurrency", "1500",
             "--endpoint", f"{bridge}/messages", "--username", "clevertap"],
            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        last = meta_stats(sandbox)["accepted"]
        began = at = time.monotonic()
        # CPU each side spent on this run: the bridge's processes, the load generator's
        bridge_pids = [bridge_proc.pid, *children(bridge_proc.pid)]
        cpu_before = {pid: cpu_seconds(pid) for pid in bridge_pids}
        client_cpu: dict[int, float] = {}  # the load generator's processes (it forks workers)
        still = 0
        while True:
            for pid in tree(load.pid):
                client_cpu[pid] = max(client_cpu.get(pid, 0.0), cpu_seconds(pid))
            time.sleep(1.0)
            now = meta_stats(sandbox)
            # per second of the time that really passed (a starved mock answers slowly)
            elapsed, at = time.monotonic() - at, time.monotonic()
            accepted_per_second.append((now["accepted"] - last) / elapsed)
            still = still + 1 if now["accepted"] == last else 0
            last = now["accepted"]
            # done when all arrived, or (some were refused: 2004 when the state was too
            # slow to take them) when nothing more came for 5 s after the load ended
            if load.poll() is not None and (last >= count or still >= 5):
                break
            if time.monotonic() - began > 900:
                break
        out, err = load.communicate()
        for spy in spies:
            spy.wait(60)
        report = json.loads(out) if out.strip() else {"error": err[-500:]}
        meta = meta_stats(sandbox)
        drained_at = time.monotonic()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            metrics = httpx.get(f"{bridge}/metrics", timeout=30).text
            delivered = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                            if line.startswith("ctwa_bridge_callbacks_delivered_total"))
            if delivered >= 2 * meta["accepted"]:  # sent and delivered for each
                break
            time.sleep(0.5)
        bridge_cpu = {pid: round(cpu_seconds(pid) - cpu_before[pid], 2) for pid in bridge_pids}
        wall = drained_at - began
        refused = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                      if line.startswith("ctwa_bridge_messages_refused_total"))
        lag = histogram_quantiles(metrics, "ctwa_bridge_callback_lag_seconds", (0.5, 0.99))
        full = [n for n in accepted_per_second if n] or [0.0]
        steady = full[1:-1] or full
        intake = asyncio.run(post_webhooks(f"{bridge}/webhook", "sandbox-app-secret",
                                           webhooks)) if webhooks else None
    return {"mps": mps, "count": count, "bridge_args": extra or [], "uptime": uptime(),
            "state": "postgresql" if state_url else "sqlite",
            "latency_ms": report.get("latency_ms"),
            "too_slow": report.get("too_slow"), "sent": report.get("sent"),
            "accepted": report.get("accepted"),
            "refused_by_bridge": int(refused), "meta_accepted": meta["accepted"],
            "meta_duplicates": meta["duplicates"],
            "max_per_second": meta["max_per_second"],
            "drain_median_per_s": round(statistics.median(steady)),
            "drain_seconds": len(full),
            "bridge_cpu_s": list(bridge_cpu.values()),
            "bridge_cpu_ms_per_message": round(1000 * sum(bridge_cpu.values()) / count, 3),
            "client_cpu_s": round(sum(client_cpu.values()), 2), "wall_s": round(wall, 1),
            "callback_lag_s": {"p50": lag[0.5], "p99": lag[0.99]},
            "webhook_intake_per_s": round(intake) if intake else None,
            "peer_mock_bsp": {"latency_ms": peer_report.get("latency_ms"),
                              "cpu_ms_per_request": round(1000 * peer_cpu / count, 3),
                              "too_slow": peer_report.get("too_slow")}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--mps", type=float, default=1000)
    parser.add_argument("--slow-mps", type=float, default=80)
    parser.add_argument("--webhooks", type=int, default=20000)
    parser.add_argument("--no-slow", action="store_true", help="skip the --slow-mps run")
    parser.add_argument("--profile", type=Path, help="py-spy raw profiles of the bridge's "
                        "processes into this folder (30 s from the start of the load)")
    parser.add_argument("--compare", action="append", default=[], metavar="ARGS",
                        help="also run the bridge with these extra options, alternately "
                        "(e.g. --compare=--no-workers-process)")
    parser.add_argument("--repeat", type=int, default=1, help="run the variants this many "
                        "times, alternately")
    parser.add_argument("--postgres", action="store_true", help="the state on a throw-away "
                        "PostgreSQL cluster (fsync on), a schema per run, instead of SQLite")
    parser.add_argument("--keep", type=Path, help="keep the runs' logs and state in this "
                        "folder (default: a temporary one, deleted)")
    args = parser.parse_args()
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    variants = [[]] + [a.split() for a in args.compare]
    runs = [(args.count, args.mps, args.webhooks)]
    if not args.no_slow:
        runs.append((max(1000, args.count // 10), args.slow_mps, 0))
    print(uptime(), flush=True)
    with tempfile.TemporaryDirectory(prefix="ctwa-bench-bridge-") as folder, \
            ExitStack() as stack:
        tmp = Path(folder)
        if args.keep:
            tmp = args.keep
            tmp.mkdir(parents=True, exist_ok=True)
        cluster = None
        if args.postgres:
            from ctwa.bridge.state.throwaway import start_cluster

            cluster = start_cluster(fsync=True)
            stack.callback(cluster.destroy)
        for n, (count, mps, hooks) in enumerate(runs):
            for v, extra in enumerate(variants * args.repeat):
                sub = tmp / f"{n}-{v}"
                sub.mkdir()
                state_url = None
                if cluster is not None:
                    import psycopg

                    schema = f"bench{n}_{v}"
                    with psycopg.connect(cluster.url, autocommit=True) as conn:
                        conn.execute(f"CREATE SCHEMA {schema}")
                    state_url = f"{cluster.url}?options=-csearch_path%3D{schema}"
                result = run(count, mps, sub, hooks, extra, args.profile, state_url)
                print(json.dumps(result, indent=None), flush=True)


if __name__ == "__main__":
    main()
