"""Issue 27: two ``ctwa bridge`` replicas on one PostgreSQL behind a round-robin proxy, in
front of the sandbox's Meta mock, with a recording CleverTap, at the issue's size: 20,000
messages at 1500 in flight, ``--mps`` 1000 (the rate check means something only if the
replicas have more to send than ``--mps`` allows; at 1000 they have 20 s of it).

Every accepted message is sent to Meta exactly once (the mock counts sends by the msgId the
bridge puts in ``biz_opaque_callback_data``), every status Meta sent reaches CleverTap once
and in order (sent, delivered, read). Then the same with ``kill -9`` of one replica in the
middle: nothing is lost, nothing is sent twice (a send in flight at the kill is in doubt,
never resent: its statuses go to CleverTap if Meta got it, else it is failed with 1009 once
``in_doubt_window``, 20 s here, has passed).

The rate, measured on both sides on the machine's one monotonic clock:

* **Sender side, strict**: each replica writes the moment every request leaves
  (``CTWA_BRIDGE_SEND_TRACE``); both traces together have at most ``--mps`` requests in any
  sliding second. This is what the bridge controls, and it is checked with no slack.
* **At the mock, the exact bound**: the mock stamps a send when its handler runs, after the
  request crossed the loopback and waited for the mock's event loop (one process serving
  ~1000 connections and posting the webhooks, on 2 shared cores: it stalls for 100s of ms
  and then handles the backlog at once). With ``transit`` = accept time - departure time
  per message, everything accepted within one second left within ``1 + (max transit - min
  transit)`` seconds, so the mock's busiest second is checked against the senders' busiest
  window of that length. Measured at full size: the senders' busiest second at or under
  ``--mps`` while the mock saw more in its busiest second (benchmarks/README.md, "The
  bridge's state and replicas"); that excess is the mock's clock, not the senders.

Before the fix the sender took its slot before ``mark_in_flight``, a grouped write that
commits when it can; the sends whose slots passed while it waited then left together
(1,929 in one second at Meta at ``--mps`` 1000). It now takes the slot after it.

Size and time: ``CTWA_TEST_CLUSTER_MESSAGES`` (default 20,000),
``CTWA_TEST_CLUSTER_CONCURRENCY`` (1500), ``CTWA_TEST_CLUSTER_MPS`` (1000); each test takes
about 2 minutes on the project's 2-core machine and fails with where things stand past
:data:`SEND_DEADLINE` for the sending and :data:`SETTLE` for the statuses.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from ctwa.infra.ports import free_port
from tests.bridge.cluster.proxy import RoundRobinProxy
from tests.bridge.state import pg
from tests.bridge.test_e2e import PASSWORD, BridgeProcess, start_bridge
from tests.conftest import LiveServer

MESSAGES = int(os.environ.get("CTWA_TEST_CLUSTER_MESSAGES", "20000"))
CONCURRENCY = int(os.environ.get("CTWA_TEST_CLUSTER_CONCURRENCY", "1500"))
MPS = float(os.environ.get("CTWA_TEST_CLUSTER_MPS", "1000"))
#: CleverTap's side: every payload answered within this (the bridge answers within its ack
#: deadline, 2004 when the state cannot take a message in time).
SEND_DEADLINE = 30 + MESSAGES / 200
#: How long the statuses may take to reach CleverTap after the last message was answered:
#: the machine is shared, and a killed replica's claims come back after its lease (15 s).
SETTLE = 60 + MESSAGES / MPS * 3
#: Accepted messages, at least: a 2004 under overload is the contract's honest answer (the
#: message is not stored, CleverTap counts it an error) and how many come depends on the
#: machine's load (0-13% in full-size runs), so this is no throughput target; it keeps the
#: test from passing on a bridge that refuses most of what it is sent and so tests little
#: of the sending.
ACCEPTED_FLOOR = 0.5
ORDER = ("sent", "delivered", "read")
IN_DOUBT = 20
WEBHOOK_BATCH = 10  # statuses per webhook POST at most, as Meta gathers them under load


@pytest.fixture
def pg_state() -> Iterator[str]:
    url, schema = pg.fresh_schema_url()
    yield url
    pg.drop_schema(schema)


@dataclass
class MetaBox:
    """What start_bridge needs of a sandbox, read from the Meta process."""

    urls_: dict[str, str] = field(default_factory=dict)
    credentials_: dict[str, str] = field(default_factory=dict)

    def __init__(self, urls: dict[str, str], credentials: dict[str, str]) -> None:
        self.urls_, self.credentials_ = urls, credentials

    def urls(self) -> dict[str, str]:
        return self.urls_

    def credentials(self) -> dict[str, str]:
        return self.credentials_


@dataclass
class Run:
    accepted: list[str] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)  # the connection broke: unknown
    refused: list[tuple[str, int, bytes]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)


def payloads(total: int) -> list[dict[str, Any]]:
    return [{"payloadVersion": 0.1, "to": f"9190001{n:05d}", "wabaNumber": "919999999998",
             "msgId": f"1|2700|20261201|{n}", "isTemplate": False, "type": "text",
             "text": {"body": f"message {n}"}} for n in range(total)]


def send_all(url: str, items: list[dict[str, Any]], concurrency: int,
             on_accepted: Any = None) -> Run:
    """CleverTap: every payload POSTed once (never retried), ``concurrency`` in flight."""
    run = Run()

    async def go() -> None:
        from ctwa.http import Auth, load_headers
        from ctwa.http.raw import HttpError, Pool

        headers = load_headers(Auth("basic", "clevertap", PASSWORD), None)
        pool = Pool(f"{url}/messages", headers, size=concurrency, timeout=10)
        gate = asyncio.Semaphore(concurrency)

        async def one(payload: dict[str, Any]) -> None:
            async with gate:
                started = time.perf_counter()
                try:
                    status, body = await pool.post(json.dumps(payload).encode())
                except HttpError:
                    run.unanswered.append(payload["msgId"])
                    return
                run.latencies.append(time.perf_counter() - started)
                if status == 200 and json.loads(body) == {"status": "success"}:
                    run.accepted.append(payload["msgId"])
                    if on_accepted is not None:
                        on_accepted(len(run.accepted))
                else:
                    run.refused.append((payload["msgId"], status, body[:200]))

        try:
            await asyncio.wait_for(asyncio.gather(*(one(p) for p in items)), SEND_DEADLINE)
        except asyncio.TimeoutError:
            raise AssertionError(
                f"CleverTap's {len(items)} sends not all answered within {SEND_DEADLINE:g} s: "
                f"{len(run.accepted)} accepted, {len(run.refused)} refused, "
                f"{len(run.unanswered)} unanswered") from None
        finally:
            pool.close()

    asyncio.run(go())
    return run


def busiest(times: list[float], seconds: float) -> int:
    """The most of ``times`` within any window ``[t, t + seconds)`` (a sliding window)."""
    times = sorted(times)
    return max((bisect.bisect_left(times, t + seconds, lo=i) - i
                for i, t in enumerate(times)), default=0)


@dataclass
class Rate:
    """The send rate on both sides: the replicas' departures and the mock's accepts."""

    sender: int  # the replicas' busiest second together
    meta: int  # the mock's busiest second
    jitter: float  # max - min of accept minus departure, over the messages
    sender_over_jitter: int  # the replicas' busiest window of 1 + jitter seconds
    transit: tuple[float, float, float]  # p50, p99, max of accept minus departure

    def __str__(self) -> str:
        p50, p99, most = self.transit
        return (f"busiest second: {self.sender} leaving the replicas, {self.meta} at the mock "
                f"(--mps {MPS:g}); transit p50 {p50 * 1000:.0f} / p99 {p99 * 1000:.0f} / max "
                f"{most * 1000:.0f} ms, spread {self.jitter * 1000:.0f} ms, replicas' busiest "
                f"{1 + self.jitter:.3f} s: {self.sender_over_jitter}")


def measure_rate(traces: list[Path], accept_times: Path) -> Rate:
    left: dict[str, float] = {}
    for trace in traces:
        for line in trace.read_text(encoding="utf-8").splitlines():
            at, msg_id = line.split(" ", 1)
            left[msg_id] = float(at)  # a retried send: its last departure
    accepted = [line.split(" ", 1) for line in
                accept_times.read_text(encoding="utf-8").splitlines()]
    transit = sorted(float(at) - left[key] for at, key in accepted)
    assert transit and transit[0] >= 0, "the mock accepted a send before it left"
    jitter = transit[-1] - transit[0]
    return Rate(sender=busiest(list(left.values()), 1.0),
                meta=busiest([float(at) for at, _ in accepted], 1.0), jitter=jitter,
                sender_over_jitter=busiest(list(left.values()), 1.0 + jitter + 1e-5),
                transit=(transit[len(transit) // 2], transit[int(len(transit) * 0.99)],
                         transit[-1]))


def check_rate(rate: Rate) -> None:
    """The replicas together: at most --mps in any second, strictly. At the mock: what the
    replicas sent within 1 s plus the transit's spread (the module's docstring says why)."""
    print(f"\ncluster rate: {rate}")  # the figures, with -s
    assert rate.sender <= MPS, f"the replicas went over --mps: {rate}"
    assert rate.meta <= rate.sender_over_jitter, f"the mock saw more than was sent: {rate}"


class Cluster:
    """The sandbox's Meta, a recording CleverTap, two replicas and the proxy before them."""

    def __init__(self, tmp: Path, state: str, replicas: int = 2, mps: float = MPS) -> None:
        from ctwa.callbacks.listener import Listener

        self.tmp, self.state, self.mps = tmp, state, mps
        self.received: list[Any] = []
        self.listener = Listener(on_receive=self.received.append)
        self.ports = [free_port() for _ in range(replicas)]
        self.proxy = RoundRobinProxy([("127.0.0.1", p) for p in self.ports])
        self.replicas: list[BridgeProcess] = []
        self.traces: list[Path] = []

    def __enter__(self) -> Cluster:
        self.proxy.__enter__()
        self.ct = LiveServer(self.listener.app()).__enter__()
        # statuses gathered a few per webhook POST, as Meta does under load
        self.accept_times = self.tmp / "meta-accepts.txt"
        meta = {"webhook_url": f"{self.proxy.url}/webhook", "mps": 0,
                "accept_times": str(self.accept_times),
                "status_delays": [0.05, 0.1, 0.15], "read": True, "webhook_concurrency": 16,
                "webhook_batch": WEBHOOK_BATCH, "webhook_batch_wait": 0.05,
                "failing_numbers": {},
                "closed_window": []}
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
        self.meta = subprocess.Popen([sys.executable, "-m", "tests.bridge.cluster.meta_process",
                                      json.dumps(meta)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)
        assert self.meta.stdout is not None
        self.box = MetaBox(**json.loads(self.meta.stdout.readline()))
        for index, port in enumerate(self.ports):
            self.replicas.append(self.start(index, port))
        return self

    def start(self, index: int, port: int) -> BridgeProcess:
        # the crash rule: a send in flight at a kill is in doubt this long, waiting for a
        # status from Meta naming it, before its failed DLR (2m by default; shorter here)
        config = self.tmp / "bridge.yaml"
        config.write_text(f"in_doubt_window: {IN_DOUBT}s\n")
        trace = self.tmp / f"replica{index}-{time.monotonic_ns()}.sends"
        self.traces.append(trace)
        os.environ["CTWA_BRIDGE_SEND_TRACE"] = str(trace)
        try:
            return start_bridge(port, self.box, f"{self.ct.url}/status",  # type: ignore[arg-type]
                                f"{self.ct.url}/inbound", self.state,  # type: ignore[arg-type]
                                self.tmp, mps=self.mps, config=config,
                                log_name=f"replica{index}-{time.monotonic_ns()}.log")
        finally:
            del os.environ["CTWA_BRIDGE_SEND_TRACE"]

    def rate(self) -> Rate:
        """After the cluster stopped (the mock writes its accept times when it ends)."""
        return measure_rate(self.traces, self.accept_times)

    def __exit__(self, *exc: Any) -> None:
        for replica in self.replicas:
            replica.stop()
        if self.meta.stdin is not None:
            self.meta.stdin.close()
        try:
            self.meta.wait(15)
        except subprocess.TimeoutExpired:
            self.meta.kill()
        self.ct.__exit__(*exc)
        self.proxy.__exit__(*exc)

    def counters(self) -> dict[str, Any]:
        return dict(httpx.get(self.box.urls()["meta_stats"], timeout=10).json())

    def statuses(self) -> dict[str, list[str]]:
        """Per CleverTap msgId, the statuses CleverTap got, in the order it got them."""
        seen: dict[str, list[str]] = defaultdict(list)
        for item in list(self.received):
            if item.ok and item.kind == "status":
                for entry in item.result.value.statuses:
                    seen[entry.msgId].append(entry.status)
        return seen

    def failures(self) -> dict[str, int]:
        codes = {}
        for item in list(self.received):
            if item.ok and item.kind == "status":
                for entry in item.result.value.statuses:
                    if entry.status == "failed":
                        codes[entry.msgId] = entry.error.code
        return codes

    def logs(self) -> str:
        return "\n".join(f"--- {r.log.name}\n{r.log.read_text()[-1500:]}" for r in self.replicas)

    def wait_settled(self, accepted: list[str], done: Any, what: str) -> None:
        """Until ``done(statuses of one message)`` holds for every accepted message; on a
        timeout, the assertion says where things stand."""
        deadline = time.monotonic() + SETTLE
        while time.monotonic() < deadline:
            seen = self.statuses()
            if all(done(seen.get(m, [])) for m in accepted):
                return
            time.sleep(0.2)
        seen = self.statuses()
        short = [m for m in accepted if not done(seen.get(m, []))]
        raise AssertionError(f"timed out waiting for {what}: {len(short)} of {len(accepted)} "
                             f"not there, e.g. {[(m, seen.get(m)) for m in short[:3]]}; "
                             f"Meta: {self.counters()}\n{self.logs()}")


def _collapse_repeats(statuses: list[str]) -> list[str]:
    out: list[str] = []
    for status in statuses:
        if not out or out[-1] != status:
            out.append(status)
    return out


def test_two_replicas_send_each_message_once_within_mps_and_statuses_in_order(
        pg_state: str, tmp_path: Path) -> None:
    with Cluster(tmp_path, pg_state) as cluster:
        run = send_all(cluster.proxy.url, payloads(MESSAGES), CONCURRENCY)
        assert run.unanswered == []
        # an answer is 200 success, or 2004/503 when the state could not take the message
        # within CleverTap's deadline (the machine is shared): never anything else
        assert all(status == 503 and b'"code":2004' in body for _, status, body in run.refused)
        assert len(run.accepted) >= MESSAGES * ACCEPTED_FLOOR, f"{len(run.refused)} refused"
        assert min(cluster.proxy.connections.values()) > 0, "both replicas took requests"
        cluster.wait_settled(run.accepted, lambda got: len(got) >= 3, "every status")
        time.sleep(0.5)  # a duplicate would come now
        meta = cluster.counters()
        seen = cluster.statuses()
        logs = cluster.logs()
    # Meta got exactly the accepted messages, each once (a refused one is never sent; each
    # accepted one has Meta's statuses, so Meta sent it)
    assert meta["duplicates"] == 0, "a message was sent to Meta twice"
    assert meta["accepted"] == meta["requests"] == len(run.accepted)
    wrong = {m: s for m, s in seen.items() if s != list(ORDER)}
    assert wrong == {}, (list(wrong.items())[:5], logs)
    invalid = [r for r in cluster.received if not r.ok]
    assert invalid == []
    print(f"\ncluster: {len(run.accepted)} accepted, {len(run.refused)} answered 2004")
    check_rate(cluster.rate())


def test_kill_9_of_one_replica_loses_nothing_and_sends_nothing_twice(
        pg_state: str, tmp_path: Path) -> None:
    with Cluster(tmp_path, pg_state) as cluster:
        victim = cluster.replicas[0]
        killed = False

        def kill_at_half(count: int) -> None:
            nonlocal killed
            if count >= MESSAGES // 2 and not killed:
                killed = True
                victim.process.send_signal(signal.SIGKILL)

        run = send_all(cluster.proxy.url, payloads(MESSAGES), CONCURRENCY,
                       on_accepted=kill_at_half)
        victim.process.wait(10)
        assert victim.process.returncode == -signal.SIGKILL
        assert all(status == 503 and b'"code":2004' in body for _, status, body in run.refused)
        assert len(run.accepted) >= MESSAGES // 2
        # the victim's claims come back when its lease (15 s) runs out
        cluster.wait_settled(run.accepted, lambda got: "read" in got or "failed" in got,
                             "every accepted message to end at CleverTap")
        time.sleep(0.5)
        meta = cluster.counters()
        seen = cluster.statuses()
        failures = cluster.failures()
        logs = cluster.logs()
    assert meta["duplicates"] == 0, "a message was sent to Meta twice"
    accepted = set(run.accepted)
    failed = {m for m in accepted if m in failures}
    # each accepted message ended: Meta's statuses (so Meta sent it), or a failed DLR, and
    # the only failure is the crash rule's, for a send in flight at the kill
    assert all(failures[m] == 1009 for m in failed), "only the crash rule fails here"
    assert len(failed) < CONCURRENCY, "more failed than could have been in flight"
    # nothing reached Meta that CleverTap did not send (a request whose answer the kill cut
    # off may have been stored, as CleverTap's timeout would leave it)
    assert meta["accepted"] <= len(accepted) + len(run.unanswered)
    assert meta["accepted"] >= len(accepted) - len(failed)
    late = []
    for msg_id in accepted - failed:
        # every status, once; a callback the victim delivered but had not recorded may come
        # twice (callbacks are delivered at least once)
        got = _collapse_repeats(seen[msg_id])
        assert set(got) == set(ORDER), (msg_id, seen[msg_id], logs)
        if got != list(ORDER):
            late.append((msg_id, seen[msg_id]))
    # in order, but for the bridge's documented exception (ctwa.bridge.state.base): a status
    # in a webhook the victim took in but had not stored when it died comes in Meta's retry
    # of that webhook; if that is after the settling time the later statuses went ahead,
    # and it is delivered late, not dropped. Only those can be late: at most the statuses
    # of the webhooks Meta had to send again.
    retried = meta["webhooks"]["retries"]
    assert len(late) <= retried * WEBHOOK_BATCH, (late[:5], meta["webhooks"], logs)
    print(f"\ncluster: {len(accepted)} accepted, {len(run.refused)} answered 2004, "
          f"{len(failed)} failed 1009 by the crash rule, {len(run.unanswered)} cut off, "
          f"{len(late)} with a status late (of {retried} webhooks Meta sent again)")
    check_rate(cluster.rate())
