"""DLR completeness and anomalies for a set of sent messages, from the callbacks the store
holds: of N accepted, how far each got (a partition: the counts add up to N), how long each
status took, and every way the callbacks broke the contract or the possible order."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

RANK = {"sent": 1, "delivered": 2, "read": 3}
#: Until which status a message is awaited; each includes the ones after it, and failed.
UNTIL = {"sent": ("sent", "delivered", "read", "failed"),
         "delivered": ("delivered", "read", "failed"),
         "read": ("read", "failed")}
#: A "sent" status later than this after the send is reported as late.
LATE_SENT_SECONDS = 10.0
PERCENTILES = (50, 90, 99)


@dataclass
class RoundTrip:
    accepted: int = 0
    furthest: dict[str, int] = field(default_factory=dict)  # read/delivered/sent/failed/none
    reached: dict[str, int] = field(default_factory=dict)  # messages that got each status
    failed_codes: dict[str, int] = field(default_factory=dict)
    time_to_status_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    anomalies: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    callbacks: int = 0
    replies: int = 0
    until: str = "delivered"
    complete: int = 0  # messages that reached ``until`` (or failed)
    only_invalid: int = 0  # messages whose every callback broke the format
    #: What was seen, what it means and what to change: one dict per cause found
    #: (ctwa.roundtrip.diagnose.Diagnosis.as_dict), the first the likeliest.
    diagnoses: list[dict[str, Any]] = field(default_factory=list)

    @property
    def problems(self) -> int:
        return sum(self.anomalies.values())

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "problems": self.problems}


ANOMALY_TEXT = {
    "none": "accepted but no callback at all, not even an invalid one",
    "missing_terminal": "no delivered, read or failed status",
    "duplicates": "the same status twice",
    "downgrades": "a status after a later one (out of order)",
    "failed_after_delivered": "failed after delivered",
    "wrong_format": "callbacks that break CleverTap's format",
    "orphans": "callbacks for msgIds that were never sent",
    "no_msgid": "status callbacks without a msgId",
    "unreadable": "requests to the callback URL that are not callbacks (not JSON, an array...)",
    "bad_callback_url": "callbacks posted to a URL with empty or undefined query values",
    "no_context": "inbound replies without context",
    "late": f"sent status later than {LATE_SENT_SECONDS:g} s",
    "missing_until": "did not reach the awaited status in time",
}


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    values.sort()
    n = len(values)
    out = {f"p{p}": round(values[min(n - 1, int(p / 100 * n))], 1) for p in PERCENTILES}
    out["max"] = round(values[-1], 1)
    return out


def analyze(sent_at: dict[str, float], callbacks: list[dict[str, Any]], until: str = "delivered",
            others: list[dict[str, Any]] | None = None, kinds: dict[str, str] | None = None,
            where: str | None = None) -> RoundTrip:
    """``sent_at``: each accepted msgId and when it was written (wall-clock seconds);
    ``callbacks``: store rows about them, in arrival order; ``others``: the rows received
    meanwhile that were about no message of ours (orphans, replies without context);
    ``kinds``: what each message was (template, text, image...), to tell a BSP that drops
    some kinds; ``where``: the listener's URL, for the hint when nothing arrived."""
    from ctwa.roundtrip.diagnose import Evidence, diagnose

    evidence = Evidence(where=where)
    trip = RoundTrip(accepted=len(sent_at), until=until)
    anomalies: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}

    def note(kind: str, text: str, n: int = 1) -> None:
        anomalies[kind] += n
        found = examples.setdefault(kind, [])
        if len(found) < 3:
            found.append(text)

    seen: dict[str, list[str]] = {}
    first_at: dict[str, dict[str, float]] = {}
    codes: dict[str, int | None] = {}
    for row in callbacks:
        msg_id, status = row["msg_id"], row["status"]
        if msg_id not in sent_at and row["kind"] != "inbound":
            if msg_id is not None and kinds and msg_id in kinds:
                evidence.answered_kinds.add(kinds[msg_id])  # sent, not awaited: it answers
            elif msg_id is not None:
                evidence.unaccepted.add(msg_id)
            continue
        trip.callbacks += 1
        if row["kind"] == "inbound":
            trip.replies += 1
            continue
        problems = json.loads(row["problems"] or "[]")
        if not row["valid"]:  # lost at CleverTap: noted, and it reaches no status
            errors = [p for p in problems if not p.startswith("warning: ")]
            note("wrong_format", f"{msg_id}: {errors[0] if errors else 'invalid'}")
            evidence.invalid(msg_id, errors)
            continue
        warnings = [p.removeprefix("warning: ") for p in problems if p.startswith("warning: ")]
        evidence.warned(warnings)
        if any(w.startswith("?") for w in warnings):  # lost at CleverTap: no account
            note("bad_callback_url", f"{msg_id}: {next(w for w in warnings if w[0] == '?')}")
        evidence.arrived.add(msg_id)
        if status is None:
            continue
        history = seen.setdefault(msg_id, [])
        _check_order(msg_id, status, history, note)
        history.append(status)
        first_at.setdefault(msg_id, {}).setdefault(status, row["at"])
        if status == "failed":
            codes[msg_id] = row["code"]
    for row in others or []:
        if row["kind"] == "inbound" and row["msg_id"] is None:
            note("no_context", f"inbound {row['status'] or '?'} reply without context")
        elif row["msg_id"] is None and row["status"] is None:  # not JSON, an array, ...
            problems = json.loads(row["problems"] or "[]")
            note("unreadable", f"{row['route']}: {problems[0] if problems else 'unreadable'}")
            evidence.unreadable(problems[0] if problems else "not a callback")
        elif row["kind"] != "inbound" and row["msg_id"] is None:
            note("no_msgid", f"{row['status']} without a msgId")
            evidence.no_msgid[row["status"]] += 1
        elif row["kind"] != "inbound":
            note("orphans", f"{row['status'] or '?'} for a msgId never sent: {row['msg_id']!r}")
            evidence.orphans.append(row["msg_id"])

    furthest: Counter[str] = Counter()
    reached: Counter[str] = Counter()
    failed_codes: Counter[str] = Counter()
    delays: dict[str, list[float]] = {}
    awaited = UNTIL[until]
    for msg_id, at in sent_at.items():
        history = seen.get(msg_id, [])
        statuses = set(history)
        for status in statuses:
            reached[status] += 1
        for status, when in first_at.get(msg_id, {}).items():
            delays.setdefault(status, []).append(max(0.0, (when - at) * 1000))
        if "failed" in statuses:
            furthest["failed"] += 1
            failed_codes[str(codes.get(msg_id))] += 1
        else:
            top = max((RANK[s] for s in statuses if s in RANK), default=0)
            furthest[{0: "none", 1: "sent", 2: "delivered", 3: "read"}[top]] += 1
        if not history and msg_id not in evidence.invalid_for:
            note("none", f"{msg_id}: no callback")
            evidence.silent.append(msg_id)
        elif not history:
            trip.only_invalid += 1
        elif not statuses & {"delivered", "read", "failed"}:
            note("missing_terminal", f"{msg_id}: only {', '.join(history)}")
        sent_when = first_at.get(msg_id, {}).get("sent")
        if sent_when is not None and sent_when - at > LATE_SENT_SECONDS:
            note("late", f"{msg_id}: sent after {sent_when - at:.1f} s")
        if statuses & set(awaited):
            trip.complete += 1
        elif history:
            note("missing_until", f"{msg_id}: no {until} status")
    trip.furthest = {k: furthest[k] for k in ("read", "delivered", "sent", "failed", "none")}
    trip.reached = dict(sorted(reached.items()))
    trip.failed_codes = dict(sorted(failed_codes.items()))
    order = ("sent", "delivered", "read", "failed", "clicked")
    trip.time_to_status_ms = {s: _percentiles(delays[s]) for s in sorted(
        delays, key=lambda s: order.index(s) if s in order else len(order))}
    trip.anomalies = dict(sorted(anomalies.items()))
    trip.examples = examples
    awaited_kinds = {m: k for m, k in (kinds or {}).items() if m in sent_at}
    trip.diagnoses = [d.as_dict() for d in diagnose(trip, evidence, awaited_kinds)]
    return trip


def _check_order(msg_id: str, status: str, history: list[str], note: Any) -> None:
    if status in history and status != "clicked":
        note("duplicates", f"{msg_id}: {status} twice")
        return
    if status in RANK:
        later = [s for s in history if RANK.get(s, 0) > RANK[status]]
        if later:
            note("downgrades", f"{msg_id}: {status} after {later[-1]}")
    if status == "failed" and ("delivered" in history or "read" in history):
        note("failed_after_delivered", f"{msg_id}: failed after delivered")
