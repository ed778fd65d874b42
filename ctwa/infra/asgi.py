"""What ctwa's servers (the sandbox, the callback listener, the bridge) do with a body past
their limit (refuse it without reading on) and with a client that goes away mid-request:
count it and move on. Uvicorn would print an ASGI traceback for every
client that disconnects, which is what a Ctrl-C of a load test against the sandbox does a
thousand times; a disconnect is an event, not an error in ctwa."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response


class BodyTooLarge(Exception):
    """The request's body is (or says it is) longer than the server takes."""


async def read_limited(request: Request, limit: int) -> bytes:
    """The body, or :class:`BodyTooLarge` as soon as it passes ``limit`` bytes: at once when
    its Content-Length says so (a length of ten digits or more never fits), else while it
    streams."""
    declared = request.headers.get("content-length")
    if declared and declared.isdecimal() and (len(declared) > 9 or int(declared) > limit):
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class Disconnects:
    """How many clients left before their answer (thread-safe; read by stats endpoints)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.count += 1

    def handlers(self) -> dict[Any, Callable[[Request, Exception], Awaitable[Response]]]:
        """Starlette ``exception_handlers`` for an app: a disconnect is counted and answered
        with nothing anyone will read."""

        async def gone(request: Request, exc: Exception) -> Response:
            self.add()
            return Response(status_code=400)

        return {ClientDisconnect: gone}
