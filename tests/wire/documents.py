"""Minimal valid CleverTap callbacks for the wire tests, each field overridable."""

from __future__ import annotations

from typing import Any


def status(**entry: Any) -> dict[str, Any]:
    base = {"msgId": "1|2|3|4", "status": "delivered", "timestamp": "1647441774"}
    base.update(entry)
    return {"payloadVersion": "0.1", "statuses": [base]}


def inbound(**over: Any) -> dict[str, Any]:
    doc = {"payloadVersion": "0.1", "from": "919999999999", "wabaNumber": "9199",
           "timestamp": "1647441774", "type": "text", "text": {"body": "hi"}}
    doc.update(over)
    return doc
