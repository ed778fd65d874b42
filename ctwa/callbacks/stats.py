"""Per-message state from status callbacks, the way CleverTap's campaign stats see it.

sent -> delivered -> read is the normal path; failed ends a message; clicked comes after
delivery. Callbacks that arrive in an impossible order are flagged, not dropped, because a BSP
engineer needs to see them.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

_RANK = {"sent": 1, "delivered": 2, "read": 3}


@dataclass
class Message:
    statuses: list[str] = field(default_factory=list)
    failed_code: int | None = None
    clicks: int = 0


@dataclass
class CampaignStats:
    callbacks: int = 0
    valid: int = 0
    invalid: int = 0
    variants: int = 0
    messages: dict[str, Message] = field(default_factory=dict)
    inbound: Counter[str] = field(default_factory=Counter)
    replies: int = 0
    anomalies: deque[str] = field(default_factory=lambda: deque(maxlen=1000))  # the latest
    anomaly_count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def status(self, msg_id: str, status: str, code: int | None = None) -> str | None:
        """Record one status; returns a note when it is out of the possible order."""
        with self._lock:
            message = self.messages.setdefault(msg_id, Message())
            note = self._check(message, status)
            message.statuses.append(status)
            if status == "failed":
                message.failed_code = code
            elif status == "clicked":
                message.clicks += 1
            if note:
                self.anomalies.append(f"{msg_id}: {note}")
                self.anomaly_count += 1
            return note

    @staticmethod
    def _check(message: Message, status: str) -> str | None:
        seen = message.statuses
        if message.failed_code is not None or "failed" in seen:
            return f"{status} after the message failed"
        if status in _RANK:
            if status in seen:
                return f"{status} received twice"
            higher = [s for s in seen if _RANK.get(s, 0) > _RANK[status]]
            if higher:
                return f"{status} after {higher[-1]}"
            if status != "sent" and "sent" not in seen:
                return f"{status} before sent"
        if status == "clicked" and not any(s in seen for s in ("delivered", "read")):
            return "clicked before delivered"
        if status == "failed" and "delivered" in seen:
            return "failed after delivered"
        return None

    def reply(self, kind: str, context: str | None) -> None:
        with self._lock:
            self.inbound[kind] += 1
            if context:
                self.replies += 1

    def tallies(self) -> dict[str, Any]:
        with self._lock:
            reached: Counter[str] = Counter()
            failed: Counter[str] = Counter()
            clicked = 0
            for message in self.messages.values():
                for status in set(message.statuses) - {"failed", "clicked"}:
                    reached[status] += 1
                if message.failed_code is not None or "failed" in message.statuses:
                    failed[str(message.failed_code)] += 1
                clicked += bool(message.clicks)
            return {
                "callbacks": self.callbacks, "valid": self.valid, "invalid": self.invalid,
                "with_variants": self.variants, "messages": len(self.messages),
                "sent": reached["sent"], "delivered": reached["delivered"],
                "read": reached["read"], "failed": dict(sorted(failed.items())),
                "clicked": clicked, "inbound": dict(self.inbound), "replies": self.replies,
                "anomalies": list(self.anomalies)[-100:],
                "anomaly_count": self.anomaly_count,
            }
