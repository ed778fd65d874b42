"""One message's story from the store, for ``ctwa trace``: what was sent (a single send, or
one message of a load run), the answer, and every callback about it in arrival order."""

from __future__ import annotations

import contextlib
import json
from array import array
from typing import Any

from ctwa.infra.errors import InputError
from ctwa.store.db import Store
from ctwa.store.records import VERDICTS

#: How long after a send callbacks without a msgId are shown beside its story.
TRACE_WINDOW = 60.0


def story(store: Store, msg_id: str | None, last: bool = False) -> dict[str, Any]:
    if last:
        send = store.last_send()
        if send is None:
            raise InputError(f"no message in the store {store.path} yet",
                             hint="send one, e.g. `ctwa send-template ...`")
        msg_id = send["msg_id"]
    else:
        assert msg_id is not None
        send = store.send(msg_id) or _from_load_run(store, msg_id)
        if send is None:
            raise InputError(f"msgId {msg_id!r} is not in the store {store.path}",
                             hint="ctwa keeps what it sends there; check --store, or "
                             "`ctwa trace --last`")
    assert msg_id is not None
    events = callback_events(store, msg_id, send["at"])
    shown = {k: v for k, v in send.items() if k != "id"}
    for key in ("request", "answer"):
        if isinstance(shown.get(key), str):
            with contextlib.suppress(ValueError):
                shown[key] = json.loads(shown[key])
    return {"msgId": msg_id, "send": shown, "callbacks": events,
            "diagnoses": _diagnoses(store, msg_id, send, shown.get("request"))}


def _diagnoses(store: Store, msg_id: str, send: dict[str, Any], request: Any) -> list[Any]:
    """What this message's callbacks say about the BSP (ctwa.roundtrip.diagnose): only
    for a message that was accepted, and without "nothing arrived" when none has yet."""
    from ctwa.roundtrip.analyze import analyze
    from ctwa.roundtrip.record import message_kind

    if send.get("verdict") not in ("accepted", "too-slow"):
        return []
    kind = message_kind(request) if isinstance(request, dict) else "message"
    # what came without a msgId within a minute of the send may be about it: said as seen
    nearby = [row for row in store.callbacks_between(send["at"], send["at"] + TRACE_WINDOW)
              if row["msg_id"] is None and row["kind"] != "inbound"]
    trip = analyze({msg_id: send["at"]}, store.callbacks_for(msg_id), others=nearby,
                   kinds={msg_id: kind})
    return [d for d in trip.diagnoses if d["cause"] != "nothing"]


def callback_events(store: Store, msg_id: str, sent_at: float) -> list[dict[str, Any]]:
    """Each callback about one message (its replies included), in arrival order, with its
    delay since the send and its problems."""
    return [{"after_ms": round((row["at"] - sent_at) * 1000, 1), "route": row["route"],
             "kind": row["kind"], "status": row["status"], "code": row["code"],
             "valid": bool(row["valid"]), "problems": json.loads(row["problems"] or "[]"),
             "body": row["body"]} for row in store.callbacks_for(msg_id)]


def _from_load_run(store: Store, msg_id: str) -> dict[str, Any] | None:
    run = store.load_run_for(msg_id)
    if run is None:
        return None
    parts = msg_id.split("|")
    if len(parts) < 4 or not parts[3].isdecimal():
        return None
    index = int(parts[3]) - 1
    recipients = json.loads(run["recipients"])
    verdicts = run["verdicts"] or b""
    offsets, latencies = array("I"), array("I")
    offsets.frombytes(run["offsets"] or b"")
    latencies.frombytes(run["latencies"] or b"")
    known = index < len(verdicts)
    return {"msg_id": msg_id, "run": run["id"], "url": run["url"], "kind": run["kind"],
            "template": run["template"],
            "recipient": recipients[index % len(recipients)] if recipients else None,
            "at": run["at"] + (offsets[index] / 1000 if known else 0.0),
            "latency_ms": latencies[index] / 1000 if known and latencies[index] else None,
            "verdict": VERDICTS[verdicts[index]] if known else "not recorded",
            "http_status": None, "answer": None, "request": None}
