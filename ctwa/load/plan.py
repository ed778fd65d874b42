"""What a load run sends: one payload, a fresh msgId and a recipient per message."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

CAMPAIGN_CONCURRENCY = 1500  # CleverTap's default (spec: API Concurrency; ERRATA 15)


@dataclass(frozen=True)
class LoadPlan:
    url: str
    headers: dict[str, str]
    payload: dict[str, Any]
    recipients: tuple[str, ...]
    count: int | None = None
    duration: float | None = None
    rate: float | None = None
    concurrency: int = CAMPAIGN_CONCURRENCY
    workers: int = 1
    deadline: float = 1.0
    timeout: float = 10.0
    wrapped: bool = False  # the payload is {"body": {...}}: fill in the inner object
    record: bool = False  # keep each message's outcome for the store (the round trip)
    campaign: int = field(default_factory=lambda: int(time.time()))
    account: int = field(default_factory=lambda: random.randint(10_000_000, 99_999_999))

    def __post_init__(self) -> None:
        if (self.count is None) == (self.duration is None):
            raise ValueError("a load plan needs exactly one of count and duration")
        if not self.recipients:
            raise ValueError("a load plan needs at least one recipient")

    def share(self, worker: int) -> WorkerShare:
        """This worker's part: every workers-th message, a slice of concurrency and rate."""
        n = self.workers
        count = None if self.count is None else self.count // n + (worker < self.count % n)
        concurrency = max(1, self.concurrency // n + (worker < self.concurrency % n))
        rate = None if self.rate is None else self.rate / n
        return WorkerShare(worker, count, concurrency, rate)

    @property
    def prefix(self) -> str:
        """What every msgId of this run starts with."""
        return f"{self.account}|{self.campaign}|"

    def msg_id(self, index: int) -> str:
        batch = time.strftime("%Y%m%d", time.gmtime(self.campaign))
        return f"{self.account}|{self.campaign}|{batch}|{index + 1}|0"

    def body(self, index: int, dumps: Any) -> bytes:
        """The message's body, encoded once (``dumps`` is orjson's, or json's as bytes)."""
        inner = dict(self.payload["body"] if self.wrapped else self.payload)
        inner["to"] = self.recipients[index % len(self.recipients)]
        inner["msgId"] = self.msg_id(index)
        return dumps({"body": inner} if self.wrapped else inner)


@dataclass(frozen=True)
class WorkerShare:
    worker: int
    count: int | None
    concurrency: int
    rate: float | None
