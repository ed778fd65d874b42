"""Send one payload to a messaging endpoint exactly as CleverTap would, and judge the answer."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from ctwa.http import DEFAULT_TIMEOUT, MAX_BSP_ANSWER, Trace, make_client, send
from ctwa.infra.errors import ExitCode, RemoteUnreachable
from ctwa.infra.masking import redact_header_value, redact_url
from ctwa.infra.safetext import safe_text, safe_value
from ctwa.send.endpoint import Endpoint
from ctwa.send.judge import DEFAULT_DEADLINE, Verdict, judge

BODY_PREVIEW = 4096
CONTENT_TYPE = "application/json"


def encode(payload: Any) -> bytes:
    """UTF-8 JSON, as CleverTap sends it (spec: Payload Essentials)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass
class SendResult:
    url: str
    payload: Any
    request_headers: dict[str, str]
    verdict: Verdict
    response_status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: Any = None
    warnings: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> ExitCode:
        if self.verdict.outcome == "unreachable":
            return ExitCode.UNREACHABLE
        return ExitCode.OK if self.verdict.accepted else ExitCode.FAILED

    def as_dict(self) -> dict[str, Any]:
        return {
            "request": {"method": "POST", "url": self.url, "headers": self.request_headers,
                        "body": self.payload},
            "response": None if self.response_status is None else {
                "status": self.response_status, "headers": self.response_headers,
                "body": self.response_body},
            "verdict": self.verdict.as_dict(),
            "warnings": self.warnings,
        }


def _masked_headers(headers: httpx.Headers) -> dict[str, str]:
    """Headers as they enter a report: secret ones masked, every name and value made safe
    (a server may send any byte in a header; httpx decodes them as latin-1)."""
    return {safe_text(k, keep_lines=False): safe_text(redact_header_value(k, v),
                                                      keep_lines=False)
            for k, v in headers.items()}


def _body_for_report(content: bytes) -> Any:
    """The answer's body as it enters every writer: the JSON document with each string made
    safe (lone surrogates replaced, control characters escaped, secrets masked), or the text
    of what is not JSON, the same way, capped."""
    try:
        return safe_value(json.loads(content))
    except (ValueError, UnicodeDecodeError, RecursionError):  # also 5000-digit numbers
        text = content[:BODY_PREVIEW].decode("utf-8", errors="replace")
        return safe_text(text + ("..." if len(content) > BODY_PREVIEW else ""))


def deliver(
    endpoint: Endpoint,
    payload: Any,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    deadline: float = DEFAULT_DEADLINE,
    trace: Trace | None = None,
    client: httpx.Client | None = None,
) -> SendResult:
    """POST ``payload`` once (never retried: a repeat could send a WhatsApp message twice)."""
    own = client is None
    client = client or make_client(auth=endpoint.auth, headers=endpoint.headers,
                                   timeout=timeout, trace=trace, origin=endpoint.url)
    url = redact_url(endpoint.url)
    try:
        try:
            exchange = send(client, "POST", endpoint.url, content=encode(payload),
                            headers={"Content-Type": CONTENT_TYPE}, max_answer=MAX_BSP_ANSWER)
        except RemoteUnreachable as exc:
            verdict = Verdict("unreachable", False, str(exc))
            sent = endpoint.auth.apply({**client.headers, **dict(endpoint.headers)})
            headers = {k: redact_header_value(k, v) for k, v in sent.items()}
            return SendResult(url, payload, headers, verdict)
        response = exchange.response
        verdict = judge(response.status_code, response.content, exchange.elapsed, deadline,
                        response.headers.get("Location"))
        return SendResult(
            url, payload, _masked_headers(exchange.request.headers), verdict,
            response.status_code, _masked_headers(response.headers),
            _body_for_report(response.content),
        )
    finally:
        if own:
            client.close()
