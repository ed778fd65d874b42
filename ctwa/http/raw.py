"""A keep-alive HTTP/1.1 client for load mode: asyncio protocols and httptools' C parser.

Load mode must not be the bottleneck it measures. On this project's 2-core machine, with 750
connections to a local nginx, aiohttp on uvloop does about 5,000 requests/s per process and
stock httpx about 40; this client does about 100,000, as wrk does, because each request is one
pre-built buffer written to an open connection and one parse of the answer. It speaks only what
CleverTap's sender needs: POST of a body, keep-alive, Content-Length or chunked answers, TLS.
"""

from __future__ import annotations

import asyncio
import errno
import ssl
import time
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httptools

from ctwa.infra.errors import InputError


class HttpError(Exception):
    """A request that got no usable answer (refused, reset, timed out, unparsable)."""


class AnswerTooLarge(HttpError):
    """The endpoint answered with more than MAX_ANSWER bytes: CleverTap reads a small JSON
    document, and buffering whole answers at 1500 in flight would take gigabytes."""


class ClientLimit(HttpError):
    """The client, not the endpoint, failed (no file descriptors left, no memory)."""


#: What is read of one answer; the contract's answers are a few dozen bytes.
MAX_ANSWER = 64 * 1024


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    tls: bool
    path: str
    host_header: str

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError(f"bad URL {url!r}", hint="use an http:// or https:// URL")
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
        default = port == (443 if tls else 80)
        host_header = parts.hostname if default else f"{parts.hostname}:{port}"
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(parts.hostname, port, tls, path, host_header)


def request_head(target: Target, headers: dict[str, str], method: str = "POST") -> bytes:
    """Everything before Content-Length, built once per run."""
    lines = [f"{method} {target.path} HTTP/1.1", f"Host: {target.host_header}"]
    for name, value in headers.items():
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
            raise InputError(f"header {name!r} holds a line break")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n").encode("latin-1")


class _Connection(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.body: list[bytes] = []
        self.size = 0
        self.reusable = True
        self.served = 0  # answers this connection has carried
        self.got_bytes = False  # any byte of the current answer
        self.written_at = 0.0  # perf_counter() when the current request was written

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(HttpError(f"unparsable answer: {exc}"))

    def on_message_begin(self) -> None:
        self.body = []
        self.size = 0

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > MAX_ANSWER:
            self._fail(AnswerTooLarge(f"answer too large (over {MAX_ANSWER // 1024} KiB)"))
            return
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.served += 1
        if not self.parser.should_keep_alive():
            self.reusable = False
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((self.parser.get_status_code(), b"".join(self.body)))
        if not self.reusable and self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        self._fail(HttpError(f"connection closed: {exc}" if exc else "connection closed"))

    def _fail(self, error: Exception) -> None:
        self.reusable = False
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        if self.transport is not None:
            self.transport.close()

    def send(self, data: bytes, timeout: float) -> asyncio.Future[tuple[int, bytes]]:
        """Write one request; the future gets its answer or an HttpError.

        A connection the peer reset can be closed before ``connection_lost`` runs (uvloop
        closes the handle first and calls the protocol on the next turn of the loop): such a
        connection, or a write that fails, is this request's connection error, never an
        exception out of the run."""
        waiter = self.loop.create_future()
        self.got_bytes = False
        self.written_at = time.perf_counter()
        transport = self.transport
        if transport is None or transport.is_closing():
            self.reusable = False
            waiter.set_exception(HttpError("connection closed"))
            return waiter
        self.waiter = waiter
        try:
            transport.write(data)
        except (RuntimeError, OSError) as exc:  # uvloop: "the handler is closed"
            self._fail(HttpError(f"connection closed: {exc}"))
            return waiter
        handle = self.loop.call_later(timeout, self._expire, waiter, timeout)
        waiter.add_done_callback(lambda _: handle.cancel())
        return waiter

    @property
    def usable(self) -> bool:
        """Open and fit for another request (not closed under it since its last answer)."""
        transport = self.transport
        return self.reusable and transport is not None and not transport.is_closing()

    def _expire(self, waiter: asyncio.Future[Any], timeout: float) -> None:
        if self.waiter is waiter:
            self._fail(HttpError(f"no answer within {timeout:g} s"))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Pool:
    """Up to ``size`` keep-alive connections to one target, shared by many coroutines."""

    def __init__(self, url: str, headers: dict[str, str], *, size: int, timeout: float,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.target = Target.parse(url)
        self.head = request_head(self.target, headers)
        self.size, self.timeout = size, timeout
        self.idle: deque[_Connection] = deque()
        self.opened = 0
        self.waiting: deque[asyncio.Future[None]] = deque()
        self.all: set[_Connection] = set()
        self._ssl = ssl_context

    def message(self, body: bytes) -> bytes:
        """One request's bytes: the fixed head, its Content-Length, the body."""
        return self.head + b"Content-Length: %d\r\n\r\n" % len(body) + body

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            try:
                import certifi

                self._ssl = ssl.create_default_context(cafile=certifi.where())
            except ImportError:  # pragma: no cover - certifi comes with httpx
                self._ssl = ssl.create_default_context()
        return self._ssl

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        target = self.target
        try:
            _, connection = await asyncio.wait_for(loop.create_connection(
                lambda: _Connection(loop), target.host, target.port,
                ssl=self._tls() if target.tls else None,
                server_hostname=target.host if target.tls else None), self.timeout)
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                raise ClientLimit(f"ctwa ran out of {(exc.strerror or 'resources').lower()}: lower "
                                  "--concurrency or raise `ulimit -n`") from exc
            raise HttpError(f"could not connect: {exc or type(exc).__name__}") from exc
        except (asyncio.TimeoutError, ssl.SSLError) as exc:
            raise HttpError(f"could not connect: {exc or type(exc).__name__}") from exc
        self.all.add(connection)
        return connection

    async def fill(self, on_open: Any = None, parallel: int = 100) -> list[HttpError]:
        """Open every connection of the pool before the run, ``parallel`` at a time, calling
        ``on_open(seconds)`` with each one's set-up time.

        CleverTap's sender keeps its connections alive; opening 750 of them in the first
        request's path made the first 2% of a run's requests wait for a burst of handshakes,
        and that burst, not the endpoint, was the p99 load mode reported. A connection that
        cannot be opened here is left for the run to try again (and count)."""
        loop = asyncio.get_running_loop()
        errors: list[HttpError] = []
        gate = asyncio.Semaphore(parallel)

        async def one() -> None:
            async with gate:
                if errors:  # an endpoint that refuses or ignores one will do so for all
                    return
                began = loop.time()
                try:
                    connection = await self._open()
                except HttpError as exc:
                    errors.append(exc)
                    return
                self.opened += 1
                self.idle.append(connection)
                if on_open is not None:
                    on_open(loop.time() - began)

        await asyncio.gather(*(one() for _ in range(self.size - self.opened)))
        return errors

    async def _acquire(self, fresh: bool = False) -> _Connection:
        """An idle connection, or a new one; ``fresh``: always a new one (an idle one is
        closed to make room), for a request whose kept-alive connection went stale."""
        while True:
            while self.idle:
                connection = self.idle.pop()
                if connection.usable and not fresh:
                    return connection
                self._forget(connection)
                if fresh:
                    break
            if self.opened < self.size:
                self.opened += 1
                try:
                    return await self._open()
                except BaseException:
                    self.opened -= 1
                    self._wake()
                    raise
            waiter = asyncio.get_running_loop().create_future()
            self.waiting.append(waiter)
            await waiter

    def _release(self, connection: _Connection) -> None:
        if connection.usable:
            self.idle.append(connection)
        else:
            self._forget(connection)
        self._wake()

    def _forget(self, connection: _Connection) -> None:
        connection.close()
        if connection in self.all:
            self.all.discard(connection)
            self.opened -= 1

    def _wake(self) -> None:
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def post(self, body: bytes) -> tuple[int, bytes]:
        """POST one body; (status, answer body), or HttpError."""
        status, content, _ = await self.post_timed(body)
        return status, content

    async def post_timed(self, body: bytes) -> tuple[int, bytes, float]:
        """POST one body; (status, answer body, perf_counter() when it was written), or
        HttpError.

        A kept-alive connection the server closed while it sat idle (a server that closes
        after each answer without saying ``Connection: close``) fails before any byte of an
        answer: that is ctwa's stale connection, not the endpoint's error, and the request
        goes again, once, on a fresh connection."""
        message = self.message(body)
        for attempt in (1, 2):
            connection = await self._acquire(fresh=attempt == 2)
            try:
                status, content = await connection.send(message, self.timeout)
                return status, content, connection.written_at
            except HttpError as exc:
                stale = (connection.served > 0 and not connection.got_bytes
                         and not isinstance(exc, (AnswerTooLarge, ClientLimit))
                         and "no answer within" not in str(exc))
                if attempt == 2 or not stale:
                    raise
            finally:
                self._release(connection)
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        for connection in list(self.all):
            connection.close()
        self.all.clear()
        self.idle.clear()
        self.opened = 0
