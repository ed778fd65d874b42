"""Run a blocking call that may never return (a hung keyring, a server trickling its answer)
in a daemon thread, and stop waiting for it at a deadline."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class Late(Exception):
    """The call did not finish in time; ``worker`` is the thread still running it."""

    def __init__(self, worker: threading.Thread) -> None:
        super().__init__("the call did not finish in time")
        self.worker = worker


def call_within(func: Callable[[], T], timeout: float, name: str = "ctwa-call") -> T:
    """``func()``'s result or its exception, or :class:`Late` after ``timeout`` seconds (the
    thread is abandoned: the caller decides how to unblock it, if it can)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = func()
        except BaseException as exc:
            box["error"] = exc

    worker = threading.Thread(target=target, name=name, daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise Late(worker)
    if "error" in box:
        raise box["error"]
    result: T = box["result"]
    return result
