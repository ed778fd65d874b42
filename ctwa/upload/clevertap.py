"""One batch to CleverTap's ``/1/upload``, and its answer matched back to CSV rows (FACTS.md)."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx

from ctwa.http import MAX_UPLOAD_ANSWER, RetryPolicy, send
from ctwa.infra.errors import ConfigError, RemoteUnreachable
from ctwa.infra.safetext import safe_value
from ctwa.upload.rules import Checked, body_of
from ctwa.wire.limits import IDENTITY_KEYS

#: Profile uploads are upserts, so repeating one is safe: retry read errors too.
UPLOAD_RETRY = RetryPolicy(attempts=5, base_delay=0.5, max_delay=10.0, total_time=120.0,
                           statuses=frozenset({429, 500, 502, 503, 504}),
                           retry_read_errors=True)
_RECORD_NUMBER = re.compile(r"record number\s*:?\s*(\d+)", re.IGNORECASE)


@dataclass
class Refusal:
    row: Checked
    code: int | None
    message: str


@dataclass
class BatchAnswer:
    uploaded: list[Checked] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    not_uploaded: list[Checked] = field(default_factory=list)
    error: str | None = None
    unreachable: bool = False
    notes: list[str] = field(default_factory=list)


def _identity(record: Any) -> str | None:
    if isinstance(record, str):
        try:
            record = json.loads(record)
        except json.JSONDecodeError:
            return None
    if isinstance(record, dict):
        for key in IDENTITY_KEYS:
            if record.get(key):
                return str(record[key])
    return None


def match_answer(rows: list[Checked], answer: dict[str, Any]) -> BatchAnswer:
    """Which rows CleverTap refused: by the record's identity, else by its record number."""
    by_identity: dict[str, list[int]] = defaultdict(list)
    for index, row in enumerate(rows):
        by_identity[row.identity or ""].append(index)
    refused: dict[int, Refusal] = {}
    unmatched = 0
    entries = answer.get("unprocessed") or []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            unmatched += 1
            continue
        code = entry.get("code") if isinstance(entry.get("code"), int) else None
        message = str(entry.get("error") or entry.get("status") or "refused")
        position: int | None = None
        identity = _identity(entry.get("record"))
        candidates = [p for p in by_identity.get(identity or "", []) if p not in refused]
        if identity and candidates:
            position = candidates[0]
        else:
            number = _RECORD_NUMBER.search(message)
            if number and 1 <= int(number.group(1)) <= len(rows):
                position = int(number.group(1)) - 1
        if position is None or position in refused:
            unmatched += 1
            continue
        refused[position] = Refusal(rows[position], code, message)
    remaining = [r for p, r in enumerate(rows) if p not in refused]
    result = BatchAnswer(refused=list(refused.values()), uploaded=remaining)
    if unmatched:
        result.notes.append(f"{unmatched} refusal(s) in CleverTap's answer could not be matched "
                            "to a row")
    processed = answer.get("processed")
    status = answer.get("status")
    if isinstance(processed, int) and not isinstance(processed, bool):
        confirmed = processed
    else:  # no count: only a plain success confirms the rows it did not refuse
        confirmed = len(remaining) if status == "success" else 0
    if confirmed > len(remaining):
        result.notes.append(f"CleverTap says {processed} processed; ctwa counts "
                            f"{len(remaining)}")
    elif confirmed < len(remaining):
        # which rows CleverTap did not take it does not say: none of them is confirmed, and
        # --resume sends the batch again (profile uploads are upserts)
        said = f"status {str(status)[:40]!r}" if status is not None else "no status"
        count = f"processed {confirmed}" if isinstance(processed, int) else "no processed count"
        result.uploaded = []
        result.not_uploaded = remaining
        result.error = (f"CleverTap's answer ({said}, {count}) confirms {confirmed} of "
                        f"{len(remaining)} row(s) and names no reason for the rest")
    return result


def post_batch(client: httpx.Client, url: str, rows: list[Checked]) -> BatchAnswer:
    """Upload one batch; every row comes back uploaded, refused, or not uploaded with why."""
    try:
        exchange = send(client, "POST", url, content=body_of(rows),
                        headers={"Content-Type": "application/json; charset=utf-8"},
                        max_answer=MAX_UPLOAD_ANSWER)
    except RemoteUnreachable as exc:
        return BatchAnswer(not_uploaded=rows, error=str(exc), unreachable=True)
    response = exchange.response
    try:  # CleverTap's words made safe where they enter (surrogates, controls, secrets)
        answer = safe_value(json.loads(response.content), keep_lines=False, limit=2000)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        answer = None
    if response.status_code == 401:
        detail = answer.get("error") if isinstance(answer, dict) else None
        raise ConfigError(f"CleverTap refused the account id or passcode (HTTP 401"
                          f"{': ' + str(detail) if detail else ''})",
                          hint="check --account-id, --passcode / CTWA_PASSCODE and --region "
                          f"or --base-url (this went to {url})")
    if response.status_code != 200 or not isinstance(answer, dict):
        what = f"HTTP {response.status_code}"
        if isinstance(answer, dict) and answer.get("error"):
            what += f": {answer['error']}"
        elif answer is None:
            what += ": the answer is not JSON"
        tries = f" after {exchange.attempts} attempts" if exchange.attempts > 1 else ""
        return BatchAnswer(not_uploaded=rows, error=what + tries)
    return match_answer(rows, answer)
