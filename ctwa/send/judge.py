"""Judge a messaging endpoint's answer the way CleverTap would (spec: Expected API Response).

CleverTap reads the body only on ``200 OK``; ``{"status": "success"}`` is accepted, ``failure``
carries a 2000-2004 code, and an answer later than one second is a timeout in campaign stats,
whatever it says.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ctwa.infra.safetext import safe_text
from ctwa.wire.codes import messaging_error_meaning

#: The most of a BSP's error message a verdict keeps (its whole body is in the exchange).
MESSAGE_LIMIT = 1000

DEFAULT_DEADLINE = 1.0
#: An error code longer than this is no code (the contract's are four digits).
MAX_CODE_DIGITS = 9

Outcome = Literal["accepted", "rejected", "http-error", "contract-violation", "too-slow",
                  "unreachable"]


@dataclass
class Verdict:
    outcome: Outcome
    accepted: bool
    summary: str
    latency_ms: float | None = None
    status_code: int | None = None
    error_code: int | None = None
    error_meaning: str | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _json_body(content: bytes) -> tuple[Any, str | None]:
    if not content.strip():
        return None, "the body is empty"
    try:
        return json.loads(content), None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None, "the body is not JSON"
    except (ValueError, RecursionError):  # a 5000-digit number, nesting past Python's stack
        return None, "the body is JSON ctwa cannot read (a number of thousands of digits, " \
            "or nested too deeply)"


def _message_of(body: Any) -> str | None:
    """The BSP's own words, made safe where they enter a verdict (one line, masked, capped)."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return _safe(error["message"])
        if body.get("message"):
            return _safe(body["message"])
        if isinstance(error, str):
            return _safe(error)
    return None


def _safe(message: Any) -> str:
    return safe_text(str(message), keep_lines=False, limit=MESSAGE_LIMIT)


def judge(status_code: int, content: bytes, latency: float,
          deadline: float = DEFAULT_DEADLINE, location: str | None = None) -> Verdict:
    """The verdict on one answer: accepted only if 200, ``status: success`` and in time."""
    latency_ms = round(latency * 1000, 1)
    body, body_problem = _json_body(content)
    verdict = _judge_body(status_code, body, body_problem, location)
    verdict.latency_ms = latency_ms
    verdict.status_code = status_code
    if latency > deadline:
        verdict.notes.append(verdict.summary)
        verdict.outcome, verdict.accepted = "too-slow", False
        verdict.summary = (f"answered in {latency_ms:g} ms, over the {deadline:g} s deadline: "
                           "CleverTap would count this as a timeout")
    return verdict


def _judge_body(status_code: int, body: Any, body_problem: str | None,
                location: str | None) -> Verdict:
    if 300 <= status_code < 400:
        where = f" to {location}" if location else ""
        return Verdict("http-error", False, f"HTTP {status_code} redirect{where}; CleverTap "
                       "expects a 200 answer from the endpoint itself")
    if status_code != 200:
        message = _message_of(body)
        detail = f": {message}" if message else ""
        if 200 <= status_code < 300:
            return Verdict("contract-violation", False, f"HTTP {status_code}{detail}; "
                           "CleverTap reads the answer only on 200 OK")
        return Verdict("http-error", False, f"HTTP {status_code}{detail}")
    if body_problem:
        return Verdict("contract-violation", False, f"HTTP 200 but {body_problem}; the "
                       'contract expects {"status": "success"} or a failure object')
    if not isinstance(body, dict) or "status" not in body:
        return Verdict("contract-violation", False, 'HTTP 200 but the JSON has no "status"; '
                       'the contract expects {"status": "success"} or a failure object')
    status = body["status"]
    if status == "success":
        return Verdict("accepted", True, "accepted")
    if status == "failure":
        error: dict[str, Any] = body["error"] if isinstance(body.get("error"), dict) else {}
        code = error.get("code")
        if isinstance(code, str) and code.isdecimal() and len(code) <= MAX_CODE_DIGITS:
            code = int(code)
        if not isinstance(code, int) or isinstance(code, bool) or not (
                0 <= code < 10 ** MAX_CODE_DIGITS):
            code = None  # no code, or none a table could hold (a 5000-digit one)
        meaning = messaging_error_meaning(code)
        message = _safe(error["message"]) if error.get("message") else None
        text = f"failure {code}: {meaning}" if code is not None else f"failure ({meaning})"
        if message:
            text += f" - {message}"
        return Verdict("rejected", False, text, error_code=code, error_meaning=meaning)
    return Verdict("contract-violation", False, f'HTTP 200 with "status": {json.dumps(status)}; '
                   'the contract allows only "success" or "failure"')
