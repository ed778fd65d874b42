"""Run a blocking call that may never return (a hung keyring, a server trickling its answer)
in a daemon thread, and stop waiting for it at a deadline."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class Late(Exception):
    """The call did not finish in time; ``worker`` is the thread still running it."""

    def __init__(self, worker: threading.Thread) -> None:
        super().__init__("the call did not finish in time")
        self.worker = worker


def call_within(func: Callable[[], T], timeout: float, name: str = "ctwa-call",
                cancel: threading.Event | None = None) -> T:
    """``func()``'s result or its exception, or :class:`Late` after ``timeout`` seconds, or
    as soon as ``cancel`` is set (the thread is abandoned: the caller decides how to unblock
    it, if it can)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = func()
        except BaseException as exc:
            box["error"] = exc

    worker = threading.Thread(target=target, name=name, daemon=True)
    worker.start()
    if cancel is None:
        worker.join(timeout)
    else:
        deadline = time.monotonic() + timeout
        while worker.is_alive() and not cancel.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            worker.join(min(remaining, 0.1))
    if worker.is_alive():
        raise Late(worker)
    if "error" in box:
        raise box["error"]
    result: T = box["result"]
    return result
