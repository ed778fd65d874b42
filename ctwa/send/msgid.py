"""Message ids in CleverTap's ``i|campaignID|batchID|j|variant`` shape (ERRATA 14, FACTS.md).

Every message gets its own id: callbacks are matched to messages by it, so two messages with
one id would make a BSP's DLRs ambiguous.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from dataclasses import dataclass, field


@dataclass
class MsgIdFactory:
    """Ids for one run: a fixed run prefix and a counter, unique within and across runs."""

    campaign: int = field(default_factory=lambda: int(time.time()))
    batch: str = field(default_factory=lambda: time.strftime("%Y%m%d", time.gmtime()))
    account: int = field(default_factory=lambda: random.randint(10_000_000, 99_999_999))
    variant: str = "0"
    _counter: itertools.count = field(default_factory=lambda: itertools.count(1), repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def next(self) -> str:
        with self._lock:
            j = next(self._counter)
        return f"{self.account}|{self.campaign}|{self.batch}|{j}|{self.variant}"
