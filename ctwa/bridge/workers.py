"""The bridge's workers in their own process (``ctwa bridge --workers-process``).

The process that listens keeps the accept path only (``POST /messages`` and ``POST
/webhook``: auth, parse, checks, durable enqueue, answer; and the other routes); the sender,
the webhook processor, the callback deliverer, template sync and the heartbeats run in a
child process it starts, on the same state (a SQLite file in WAL mode or PostgreSQL: both
already take several processes and replicas, every claim held under a lease). Answering
CleverTap then never waits behind sending to Meta: each process has a core.

The two talk over one Unix socket pair:

- accept -> workers: one byte per queue that got work (``s`` sends, ``w`` webhooks, ``c``
  callbacks), at most one write per turn of the loop however many requests came in, so an
  idle worker wakes at once (SQLite has no NOTIFY; without this it would see new work only at
  its next poll, a second later); ``q`` asks the workers to stop;
- workers -> accept: a JSON line twice a second, and a last one when they stop: Meta's and
  template sync's status (``/health``, the "could not sync yet" refusal, the template cache)
  and the samples of their metrics, which ``/metrics`` and the summary add to the accept
  side's own.

Crashes: the workers process dying (``kill -9``) is logged and it is started again a second
later; what it had claimed comes back when the leases run out (a send in flight follows the
state's crash rule: failed with 1009, never resent). The accept process dying closes the
socket: the workers stop at once, their claims likewise. Ctrl-C and SIGTERM are the accept
process's (the workers ignore SIGINT, which a terminal sends to the whole group): it stops
taking requests, tells the workers to stop, waits for them, and prints one summary with both
processes' counts. Nothing here knows of Typer or rich.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from ctwa.bridge.config import BridgeSecrets, BridgeSettings
from ctwa.bridge.metrics import Metrics
from ctwa.bridge.service import Bridge
from ctwa.bridge.state import StateError

log = logging.getLogger("ctwa.bridge")

#: queue -> the byte that wakes it in the workers process
WAKE = {"sends": b"s", "webhooks": b"w", "callbacks": b"c"}
STOP = b"q"
#: how often the workers report their status and metrics
REPORT_EVERY = 0.5
#: how long the workers may take to start, and to stop once asked
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
RESTART_DELAY = 1.0
#: the longest report line read (its metrics grow with Meta's distinct answers: kilobytes)
REPORT_LIMIT = 16 * 1024 * 1024


class WorkersFailed(StateError):
    """The workers process could not be started (a clear line, no traceback)."""


# --- metrics across the two processes ---------------------------------------------------------

def metric_samples(metrics: Metrics) -> dict[str, list[list[Any]]]:
    """What one process's counters and histograms hold, by family (gauges are left out:
    the outbox depths are read from the state by whoever serves /metrics)."""
    out: dict[str, list[list[Any]]] = {}
    for family in metrics.registry.collect():
        if family.type == "gauge":
            continue
        out[family.name] = [[s.name, s.labels, s.value] for s in family.samples
                            if not s.name.endswith("_created")]
    return out


class MergedMetrics(Metrics):
    """The accept process's metrics plus the workers' last report, rendered as one."""

    def __init__(self) -> None:
        super().__init__()
        #: the running workers process's last report
        self.theirs: dict[str, list[list[Any]]] = {}
        #: what workers processes that died or were restarted had counted
        self.retired: dict[str, list[list[Any]]] = {}

    def retire(self) -> None:
        """The workers process is gone: keep its counts (the next one starts from zero)."""
        self.retired = _added(self.retired, self.theirs)
        self.theirs = {}

    def merged(self) -> list[Any]:
        from prometheus_client.metrics_core import Metric

        theirs = _added(self.retired, self.theirs)
        families = []
        for family in self.registry.collect():
            extra = theirs.get(family.name)
            if family.type == "gauge" or not extra:
                families.append(family)
                continue
            added = {(name, tuple(sorted(labels.items()))): value
                     for name, labels, value in extra}
            merged = Metric(family.name, family.documentation, family.type, family.unit)
            for s in family.samples:
                key = (s.name, tuple(sorted(s.labels.items())))
                value = s.value if s.name.endswith("_created") else s.value + added.pop(key, 0)
                merged.add_sample(s.name, s.labels, value)
            for (name, labels), value in added.items():
                merged.add_sample(name, dict(labels), value)
            families.append(merged)
        return families

    def collect(self) -> list[Any]:
        return self.merged()

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self)


def _added(a: dict[str, list[list[Any]]],
           b: dict[str, list[list[Any]]]) -> dict[str, list[list[Any]]]:
    """Two processes' samples, family by family, summed."""
    out: dict[str, list[list[Any]]] = {}
    for name in {*a, *b}:
        totals: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for sample, labels, value in [*a.get(name, []), *b.get(name, [])]:
            key = (sample, tuple(sorted(labels.items())))
            totals[key] = totals.get(key, 0.0) + value
        out[name] = [[sample, dict(labels), value] for (sample, labels), value in totals.items()]
    return out


# --- the accept side --------------------------------------------------------------------------

@dataclass
class FrontBridge(Bridge):
    """The bridge as the listening process sees it when its workers run apart: the app's
    helpers are Bridge's own; starting it starts the workers process instead of the workers."""

    metrics: Metrics = field(default_factory=MergedMetrics)
    link: WorkersLink | None = None

    def wake(self, queue: str) -> None:
        if self.link is not None:
            self.link.wake(queue)

    async def start(self) -> None:
        """Start the workers process (once: :func:`ctwa.bridge.run` starts it before it
        listens, so a failure is one line and an exit code, not uvicorn's lifespan error)."""
        from ctwa.infra.masking import register_secret

        if self.link is not None:
            return
        register_secret(self.secrets.meta_token)
        self.link = WorkersLink(self)
        await self.link.start()

    async def stop(self) -> None:
        self._stopping = True
        if self.link is not None:
            await self.link.stop()

    async def health(self) -> dict[str, Any]:
        report = await super().health()
        alive = self.link is not None and self.link.alive
        report["workers"] = {"ok": alive, "process": "separate",
                             "pid": self.link.pid if self.link is not None else None,
                             "restarts": self.link.restarts if self.link is not None else 0}
        report["ready"] = bool(report["ready"] and alive)
        return report


def workers_command(fd: int) -> list[str]:
    """How the workers process is started (its end of the socket pair is ``fd``)."""
    return [sys.executable, "-m", "ctwa.bridge.workers", str(fd)]


class WorkersLink:
    """Starts the workers process, forwards wake-ups to it, takes in its reports, starts it
    again when it dies, and stops it."""

    def __init__(self, front: FrontBridge) -> None:
        self.front = front
        self.process: subprocess.Popen[bytes] | None = None
        self.alive = False
        self.restarts = 0
        self._writer: asyncio.StreamWriter | None = None
        self._pending = bytearray()
        self._flush_scheduled = False
        self._stopping = False
        self._supervisor: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    # wake-ups: coalesced, one write per loop turn
    def wake(self, queue: str) -> None:
        byte = WAKE.get(queue)
        if byte is None or byte in self._pending:
            return
        self._pending += byte
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        data, self._pending = bytes(self._pending), bytearray()
        if data and self._writer is not None and not self._writer.is_closing():
            self._writer.write(data)  # a dead peer is found by the reader, not here

    # the process
    def _spawn(self) -> socket.socket:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        front = self.front
        config = {"settings": dataclasses.asdict(front.settings),
                  "secrets": dataclasses.asdict(front.secrets),
                  "replica": front.replica,
                  "verbose": logging.getLogger("ctwa.bridge").isEnabledFor(logging.DEBUG)}
        try:
            self.process = subprocess.Popen(
                workers_command(theirs.fileno()),
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, pass_fds=[theirs.fileno()],
                start_new_session=False)
            assert self.process.stdin is not None
            # the secrets go through a pipe, never argv or the environment of a new name
            self.process.stdin.write(orjson.dumps(config))
            self.process.stdin.close()
        except OSError as exc:
            ours.close()
            raise WorkersFailed(f"could not start the bridge's workers process: {exc}",
                                hint="run without --workers-process") from exc
        finally:
            theirs.close()
        return ours

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        self._supervisor = asyncio.ensure_future(self._supervise())
        await asyncio.wait({self._ready, self._supervisor}, timeout=START_TIMEOUT,
                           return_when=asyncio.FIRST_COMPLETED)
        if self._ready.done() and not self._ready.exception():
            return
        self._stopping = True
        self._supervisor.cancel()
        self._kill()
        why = (str(self._ready.exception()) if self._ready.done() else
               f"it did not start within {START_TIMEOUT:g} s")
        raise WorkersFailed(f"the bridge's workers process failed: {why}",
                            hint="its log lines above say why; or run without "
                            "--workers-process")

    async def _supervise(self) -> None:
        while not self._stopping:
            try:
                sock = self._spawn()
            except WorkersFailed as exc:
                if self._ready is not None and not self._ready.done():
                    self._ready.set_exception(exc)
                    return
                log.error("%s; again in %g s", exc.message, RESTART_DELAY * 5)
                await asyncio.sleep(RESTART_DELAY * 5)
                continue
            reader, self._writer = await asyncio.open_unix_connection(sock=sock,
                                                                      limit=REPORT_LIMIT)
            if self._pending:
                self._flush()
            await self._read(reader)
            self.alive = False
            if isinstance(self.front.metrics, MergedMetrics):
                self.front.metrics.retire()
            code = await self._reap()
            self._writer.close()
            self._writer = None
            if self._stopping:
                return
            if self._ready is not None and not self._ready.done():
                self._ready.set_exception(WorkersFailed(f"it exited ({describe_exit(code)}) "
                                                        "before it was ready"))
                return
            self.restarts += 1
            log.error("the workers process exited (%s): starting it again; what it had "
                      "claimed comes back when the leases run out", describe_exit(code))
            await asyncio.sleep(RESTART_DELAY)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                line = await reader.readline()
            except (OSError, ValueError):  # reset, or a line past the stream's limit
                return
            if not line:
                return
            try:
                report = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            self._take(report)

    def _take(self, report: dict[str, Any]) -> None:
        front = self.front
        if report.get("last_sync") != front.last_sync:
            front._templates.clear()  # the workers synced: look the templates up again
        front.last_meta_answer = report.get("last_meta_answer")
        front.last_sync = report.get("last_sync")
        front.sync_error = report.get("sync_error")
        if isinstance(front.metrics, MergedMetrics):
            front.metrics.theirs = report.get("metrics") or {}
        if report.get("ready"):
            self.alive = True
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(None)

    async def _reap(self) -> int | None:
        process = self.process
        if process is None:
            return None
        deadline = time.monotonic() + STOP_TIMEOUT
        while process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if process.poll() is None:
            log.error("the workers process did not stop within %g s: killed", STOP_TIMEOUT)
            process.kill()
            process.wait(5)
        return process.returncode

    def _kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(5)

    async def stop(self) -> None:
        """Ask the workers to stop and wait for them (and their last report)."""
        self._stopping = True
        if self._writer is not None and not self._writer.is_closing():
            with contextlib.suppress(OSError, RuntimeError):
                self._writer.write(STOP)
        if self._supervisor is not None:
            _, pending = await asyncio.wait({self._supervisor}, timeout=STOP_TIMEOUT + 5)
            for task in pending:
                task.cancel()
        self._kill()


def describe_exit(code: int | None) -> str:
    if code is None:
        return "unknown status"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"exit code {code}"


async def open_front(settings: BridgeSettings, secrets: BridgeSecrets) -> FrontBridge:
    """The listening side's bridge: the state opened and migrated (once, here: the workers
    open it after)."""
    from ctwa.bridge.state import open_state

    state = await open_state(settings.state)
    await state.migrate()
    return FrontBridge(settings, secrets, state)


# --- the workers process ----------------------------------------------------------------------

def _report(bridge: Bridge, ready: bool) -> bytes:
    return orjson.dumps({"ready": ready, "pid": os.getpid(),
                         "last_meta_answer": bridge.last_meta_answer,
                         "last_sync": bridge.last_sync, "sync_error": bridge.sync_error,
                         "metrics": metric_samples(bridge.metrics)}) + b"\n"


async def _work(settings: BridgeSettings, secrets: BridgeSecrets, replica: str,
                fd: int) -> None:
    from ctwa.bridge.run import tune_gc
    from ctwa.bridge.state import open_state

    loop = asyncio.get_running_loop()
    sock = socket.socket(fileno=fd)
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    state = await open_state(settings.state)
    # a name of its own for each workers process: the claims of one that was killed come
    # back only once its name is silent (a restarted one under the same name would keep
    # them claimed, and keep heartbeating for them, for ever)
    bridge = Bridge(settings, secrets, state, replica=f"{replica}:workers:{os.getpid()}")
    await bridge.start()
    tune_gc()

    def send(ready: bool) -> None:
        if not writer.is_closing():
            writer.write(_report(bridge, ready))

    async def listen() -> None:
        while True:
            try:
                data = await reader.read(4096)
            except OSError:
                data = b""
            if not data:  # the accept process is gone: stop now
                log.debug("workers: the accept process closed the link; stopping")
                stop.set()
                return
            for queue, byte in WAKE.items():
                if byte in data:
                    bridge.wake(queue)
            if STOP in data:
                stop.set()
                return

    async def reports() -> None:
        while True:
            await asyncio.sleep(REPORT_EVERY)
            send(True)

    send(True)
    tasks = [asyncio.ensure_future(listen()), asyncio.ensure_future(reports())]
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await bridge.stop()
        with contextlib.suppress(OSError, RuntimeError):
            send(True)
            await writer.drain()
        await state.close()
        writer.close()


def main() -> None:
    """``python -m ctwa.bridge.workers FD``: the settings and secrets as JSON on stdin."""
    from ctwa.bridge.run import setup_logging
    from ctwa.infra.masking import register_secret

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the accept process's to handle
    fd = int(sys.argv[1])
    config = orjson.loads(sys.stdin.buffer.read())
    secrets = BridgeSecrets(**config["secrets"])
    for value in dataclasses.astuple(secrets):
        register_secret(value)
    settings = BridgeSettings(**config["settings"])
    setup_logging(bool(config.get("verbose")))
    loop: asyncio.AbstractEventLoop
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - Windows
        loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(_work(settings, secrets, str(config["replica"]), fd))
    except StateError as exc:
        log.error("workers: the state failed: %s", exc)
        sys.exit(1)
    finally:
        loop.close()


if __name__ == "__main__":
    main()
