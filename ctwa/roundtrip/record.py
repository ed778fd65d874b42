"""What the store keeps of a send: one message (a single send, a certification's) or a load
run (its row before the start, its per-message outcomes at the end). Shared by the send
commands and ``ctwa certify``, so both leave the same trace for ``ctwa trace``."""

from __future__ import annotations

import json
import time
from typing import Any

from ctwa.infra.masking import redact_url
from ctwa.store.db import Store
from ctwa.store.records import LoadRunRecord, SendRecord


def template_name(template: Any) -> str | None:
    """The template's name as the payload carries it (the spec's field is ``namespace``)."""
    if not isinstance(template, dict):
        return None
    name = template.get("name") or template.get("namespace")
    return name if isinstance(name, str) else None


def send_record(result: Any, at: float) -> SendRecord | None:
    """The row for one delivered payload (a ctwa.send.messaging.SendResult written at
    ``at``), or None when it carries no msgId to follow."""
    from ctwa.wire.kinds import detect_kind
    from ctwa.wire.outbound import inner_payload

    payload = result.payload
    inner = inner_payload(payload)
    if not isinstance(inner, dict) or not isinstance(inner.get("msgId"), str):
        return None
    return SendRecord(
        msg_id=inner["msgId"], at=at, recipient=inner.get("to"), kind=detect_kind(payload),
        template=template_name(inner.get("template")), latency_ms=result.verdict.latency_ms,
        verdict=result.verdict.outcome, http_status=result.response_status,
        request=json.dumps(payload, ensure_ascii=False),
        answer=None if result.response_body is None else json.dumps(
            result.response_body, ensure_ascii=False), url=result.url)


def start_load_run(store: Store, plan: Any, payload: Any, name: str = "load") -> str:
    """The run's row, written before it starts so its callbacks are known as they come;
    its id."""
    from ctwa.wire.kinds import detect_kind
    from ctwa.wire.outbound import inner_payload

    inner = inner_payload(payload)
    run = LoadRunRecord(
        id=f"{name}-{plan.account}-{plan.campaign}", at=time.time(), url=redact_url(plan.url),
        prefix=plan.prefix, recipients=list(plan.recipients), offsets=b"", latencies=b"",
        verdicts=b"", kind=detect_kind(payload),
        template=template_name(inner.get("template") if isinstance(inner, dict) else None))
    store.add_load_run(run)
    return run.id


def finish_load_run(store: Store, run_id: str, report: Any) -> None:
    """Each message's outcome, once the run (a ctwa.load.engine.LoadReport) is over."""
    outcomes = report.outcomes
    if outcomes is None:
        return
    store.finish_load_run(LoadRunRecord(
        id=run_id, at=outcomes.started_wall, url=redact_url(report.url), prefix="",
        recipients=[],
        offsets=outcomes.offsets.tobytes(), latencies=outcomes.latencies.tobytes(),
        verdicts=bytes(outcomes.verdicts)))


def load_round_trip(store: Store, plan: Any, report: Any, until: str) -> Any:
    """The round trip of a finished load run: its accepted messages and the callbacks about
    them (by the run's msgId prefix), with what else arrived meanwhile."""
    from ctwa.roundtrip.waiting import round_trip

    outcomes = report.outcomes
    sent_at = outcomes.accepted_at(plan.msg_id) if outcomes is not None else {}
    start = outcomes.started_wall if outcomes is not None else report.started_at
    kinds = dict.fromkeys(sent_at, message_kind(plan.payload))
    return round_trip(store, sent_at, until, start, time.time(), prefix=plan.prefix,
                      kinds=kinds)


def message_kind(payload: Any) -> str:
    """What a message is, for telling a BSP that drops some kinds: ``template``, or the
    freeform type (``text``, ``image``, ...)."""
    from ctwa.wire.kinds import detect_kind
    from ctwa.wire.outbound import inner_payload

    kind = detect_kind(payload)
    inner = inner_payload(payload)
    if kind == "freeform" and isinstance(inner, dict) and isinstance(inner.get("type"), str):
        return inner["type"]
    return "template" if kind in ("template", "validation") else str(kind or "message")
