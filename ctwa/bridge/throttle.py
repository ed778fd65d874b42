"""One log line per stretch of trouble, not one per request.

Under overload every request that the state cannot take within CleverTap's deadline is refused
with 2004; logging each would write thousands of identical ERROR lines a second (and cost the
CPU the answers need). The first is logged at once, the rest are counted and summed up in the
next line, at most one per ``every`` seconds; the metric ``ctwa_bridge_refused_total`` keeps
the exact count."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class ThrottledLog:
    def __init__(self, log: logging.Logger, every: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.log = log
        self.every = every
        self.clock = clock
        self._last = float("-inf")
        self._held = 0

    def error(self, message: str, *args: object) -> None:
        now = self.clock()
        if now - self._last < self.every:
            self._held += 1
            return
        if self._held:
            message += f" (and {self._held} more like it in the last {now - self._last:.0f} s)"
        self._last, self._held = now, 0
        self.log.error(message, *args)
