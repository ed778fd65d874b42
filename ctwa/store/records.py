"""The rows the store keeps, as plain data the sender, listener and analyses share."""

from __future__ import annotations

from dataclasses import dataclass, field

#: A load run's per-message outcome, one byte each (new ones only ever appended: the bytes
#: of runs already kept must keep their meaning).
VERDICTS = ("none", "accepted", "too-slow", "rejected", "violation", "connection-error",
            "timeout", "client-error")
VERDICT_CODE = {name: code for code, name in enumerate(VERDICTS)}


@dataclass
class SendRecord:
    msg_id: str
    at: float
    recipient: str | None = None
    kind: str | None = None
    template: str | None = None
    latency_ms: float | None = None
    verdict: str | None = None
    http_status: int | None = None
    request: str | None = None
    answer: str | None = None
    url: str | None = None


@dataclass
class CallbackRecord:
    at: float
    route: str
    kind: str
    msg_id: str | None
    status: str | None
    code: int | None = None
    valid: bool = True
    problems: list[str] = field(default_factory=list)
    body: str = ""


@dataclass
class LoadRunRecord:
    id: str
    at: float
    url: str
    prefix: str
    recipients: list[str]
    offsets: bytes
    latencies: bytes
    verdicts: bytes
    kind: str | None = None
    template: str | None = None

    @property
    def messages(self) -> int:
        return len(self.verdicts)
