"""Serving the bridge: open the state, build the app, run uvicorn until a signal.

The CLI calls :func:`serve`; tests call :func:`serve` in a subprocess or :class:`BridgeThread`
in-process. Nothing here knows of Typer or rich.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ctwa.bridge.config import BridgeSecrets, BridgeSettings
from ctwa.infra.masking import scrub

log = logging.getLogger("ctwa.bridge")


class _Scrub(logging.Filter):
    """Every log line passes through ctwa's secret masking (-v included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg, record.args = scrub(message), ()
        return True


def setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s",
                                           "%H:%M:%S"))
    handler.addFilter(_Scrub())
    logger = logging.getLogger("ctwa.bridge")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False


@dataclass
class Summary:
    """What one run of the bridge did (printed at Ctrl-C)."""

    accepted: int
    sent: int
    failed: int
    retried: int
    callbacks: int
    seconds: float


def summary_of(bridge: Any, started: float) -> Summary:
    # every family, the workers process's counts included when it ran apart
    # (ctwa.bridge.workers.MergedMetrics)
    m = bridge.metrics
    families = {f.name: f for f in (m.collect() if hasattr(m, "collect")
                                    else m.registry.collect())}

    def total(name: str) -> int:
        family = families.get(name)
        return int(sum(s.value for s in family.samples if s.name.endswith("_total"))
                   if family is not None else 0)

    outcomes = dict.fromkeys(("sent", "failed", "retried"), 0)
    family = families.get("ctwa_bridge_send_outcomes")
    for sample in family.samples if family is not None else []:
        if sample.name.endswith("_total"):
            outcomes[sample.labels["outcome"]] = int(sample.value)
    return Summary(total("ctwa_bridge_messages_accepted"), outcomes["sent"], outcomes["failed"],
                   outcomes["retried"], total("ctwa_bridge_callbacks_delivered"),
                   time.monotonic() - started)


def tune_gc() -> None:
    """Fewer, later collections: 1500 requests in flight allocate enough young objects to run
    the collector hundreds of times a second (30-50% of the accept path's time, measured);
    what start-up made is frozen out of every later collection."""
    import gc

    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


async def open_bridge(settings: BridgeSettings, secrets: BridgeSecrets,
                      migrate: bool = True) -> Any:
    from ctwa.bridge.service import Bridge
    from ctwa.bridge.state import open_state

    state = await open_state(settings.state)
    if migrate:
        await state.migrate()
    return Bridge(settings, secrets, state)


def _server(app: Any, settings: BridgeSettings) -> Any:
    import uvicorn

    host, port = settings.host_port()
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                            lifespan="on", backlog=4096, timeout_keep_alive=75,
                            limit_concurrency=None)
    return uvicorn.Server(config)


async def _serve(settings: BridgeSettings, secrets: BridgeSecrets,
                 on_ready: Callable[[Any, tuple[str, int]], None] | None,
                 holder: dict[str, Any], workers_process: bool = False) -> None:
    from ctwa.bridge.app import make_app

    if workers_process:  # the accept path here, the workers in a child (bridge/workers.py)
        from ctwa.bridge.workers import open_front
        from ctwa.infra.ports import free_port

        host, port = settings.host_port()
        if port == 0:  # the workers' links need the real port before either process starts
            settings.listen = f"{host}:{free_port(host)}"
        bridge = await open_front(settings, secrets)
        holder["bridge"] = bridge
        try:
            await bridge.start()
        except BaseException:
            await bridge.stop()
            await bridge.state.close()
            raise
    else:
        bridge = await open_bridge(settings, secrets)
    holder["bridge"] = bridge
    server = _server(make_app(bridge), settings)
    holder["server"] = server

    async def announce() -> None:
        while not server.started:
            await asyncio.sleep(0.02)
        sock = server.servers[0].sockets[0].getsockname()
        tune_gc()
        if settings.host_port()[1] == 0:  # a free port was asked for: links use the real one
            settings.listen = f"{sock[0]}:{sock[1]}"
        if on_ready is not None:
            on_ready(bridge, (str(sock[0]), int(sock[1])))

    watcher = asyncio.ensure_future(announce())
    try:
        await server.serve()
    finally:
        watcher.cancel()
        await bridge.state.close()


def _sigterm_as_interrupt() -> Callable[[], None]:
    """SIGTERM (systemd, Docker, Kubernetes) ends the bridge as Ctrl-C does. uvicorn catches
    both and shuts down gracefully (no new requests, workers stopped, claims left to their
    leases), then raises the signal again under the handler it found: for SIGTERM that was
    the default one, which killed the process before the summary. Found as this handler, it
    becomes the KeyboardInterrupt :func:`serve` ends on. What undoes it is returned."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    return restore


def serve(settings: BridgeSettings, secrets: BridgeSecrets,
          on_ready: Callable[[Any, tuple[str, int]], None] | None = None,
          workers_process: bool = False) -> Summary:
    """Run the bridge in this thread until SIGINT/SIGTERM; what it did. With
    ``workers_process`` the sender, webhook processor, callback deliverer and template sync
    run in a child process (:mod:`ctwa.bridge.workers`), this one only accepts."""
    started = time.monotonic()
    holder: dict[str, Any] = {}
    try:
        import uvloop

        runner_loop: Any = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - Windows
        runner_loop = asyncio.new_event_loop
    loop = runner_loop()
    restore = _sigterm_as_interrupt()
    try:
        loop.run_until_complete(_serve(settings, secrets, on_ready, holder, workers_process))
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C (or SIGTERM) it shut down for
        pass
    finally:
        restore()
        loop.close()
    bridge = holder.get("bridge")
    return summary_of(bridge, started) if bridge else Summary(0, 0, 0, 0, 0, 0.0)


class BridgeThread:
    """The bridge on a background thread (tests, the demo): ``with BridgeThread(...) as b``
    gives the running :class:`~ctwa.bridge.service.Bridge`; ``b_url`` its base URL."""

    def __init__(self, settings: BridgeSettings, secrets: BridgeSecrets,
                 workers_process: bool = False) -> None:
        self.settings, self.secrets = settings, secrets
        self.workers_process = workers_process
        self.holder: dict[str, Any] = {}
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.address: tuple[str, int] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._run, name="ctwa-bridge", daemon=True)

    def _run(self) -> None:
        def ready(bridge: Any, address: tuple[str, int]) -> None:
            self.address = address
            self.ready.set()

        loop = asyncio.new_event_loop()
        self.loop = loop
        try:
            loop.run_until_complete(_serve(self.settings, self.secrets, ready, self.holder,
                                           self.workers_process))
        except BaseException as exc:
            self.error = exc
            self.ready.set()
        finally:
            loop.close()

    @property
    def url(self) -> str:
        assert self.address is not None
        return f"http://{self.address[0]}:{self.address[1]}"

    @property
    def bridge(self) -> Any:
        return self.holder["bridge"]

    def __enter__(self) -> BridgeThread:
        self.thread.start()
        if not self.ready.wait(20):
            raise RuntimeError("the bridge did not start")
        if self.error is not None:
            raise self.error
        return self

    def __exit__(self, *_: object) -> None:
        server = self.holder.get("server")
        if server is not None:
            server.should_exit = True
        self.thread.join(timeout=20)
