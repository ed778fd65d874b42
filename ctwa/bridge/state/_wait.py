"""Waiting for a backend's answer with a bound, cheaply (no task per call, as
``asyncio.wait_for`` makes: 1500 callers in flight make that cost show)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def settle(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    """Answer a caller, unless it already gave up (timed out or was cancelled)."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


def settle_all(answers: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, value, error in answers:
        settle(future, value, error)


async def bounded(future: asyncio.Future[T], limit: float,
                  on_timeout: Callable[[], BaseException]) -> T:
    """``await future``, or raise ``on_timeout()`` after ``limit`` seconds."""
    loop = asyncio.get_running_loop()
    handle = loop.call_later(limit, lambda: settle(future, None, on_timeout()))
    try:
        return await future
    finally:
        handle.cancel()
