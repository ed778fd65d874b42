"""A small round-robin TCP proxy on 127.0.0.1 (a layer-4 load balancer, as in front of
replicas in production): each new connection goes to the next backend; a backend that refuses
is skipped for that connection, so a dead replica's share moves to the live ones."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections import Counter


class RoundRobinProxy:
    def __init__(self, backends: list[tuple[str, int]]) -> None:
        self.backends = backends
        self.port = 0
        self.listen_port = 0  # 0: any free port
        self.connections: Counter[int] = Counter()  # backend index -> connections made
        self._next = itertools.cycle(range(len(backends)))
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="rr-proxy", daemon=True)

    def __enter__(self) -> RoundRobinProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._client, "127.0.0.1", self.listen_port,
                                            backlog=4096)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()
            server.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = None
        for _ in range(len(self.backends)):
            index = next(self._next)
            host, port = self.backends[index]
            try:
                upstream = await asyncio.wait_for(asyncio.open_connection(host, port), 2)
                self.connections[index] += 1
                break
            except (OSError, asyncio.TimeoutError):
                continue
        if upstream is None:
            writer.close()
            return
        up_reader, up_writer = upstream
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            writer.close()


def main() -> None:
    """``python -m tests.bridge.cluster.proxy PORT BACKEND_PORT...`` (benchmarks: the proxy in
    a process of its own); serves until killed."""
    import sys
    import time

    port, backends = int(sys.argv[1]), [("127.0.0.1", int(p)) for p in sys.argv[2:]]
    proxy = RoundRobinProxy(backends)
    proxy.listen_port = port
    with proxy:
        print(proxy.url, flush=True)
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    main()
