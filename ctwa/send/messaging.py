"""Send one payload to a messaging endpoint exactly as CleverTap would, and judge the answer."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from ctwa.http import DEFAULT_TIMEOUT, MAX_BSP_ANSWER, Trace, make_client, send
from ctwa.infra.errors import RemoteTimeout, RemoteUnreachable
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

    deadline: float = DEFAULT_DEADLINE

    @property
    def exit_code(self) -> int:
        return self.run_verdict().exit_code()

    def run_verdict(self, trip: Any = None) -> Any:
        """The send judged as a run (ctwa.report.verdict): did an answer come, did it accept
        the message, was it in time; with --await-callbacks, the round trip too."""
        return send_verdict(self, trip)

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


def send_verdict(result: SendResult, trip: Any = None) -> Any:
    """One send's criteria: ``answered`` (an HTTP answer came: its failure exits 3),
    ``accepted`` (what the answer said), ``deadline`` (in time); ``callbacks`` when awaited
    (``trip``: the round trip's dict)."""
    from ctwa.report.verdict import FAIL, NOT_TESTED, PASS, Criterion, Verdict

    verdict = result.verdict
    limit = f"{result.deadline:g} s"
    if verdict.outcome in ("unreachable", "timeout"):
        kind = "timed out" if verdict.outcome == "timeout" else "no answer"
        criteria = [Criterion("answered", FAIL, f"{kind}: {verdict.summary}", None,
                              "an HTTP answer"),
                    Criterion("accepted", NOT_TESTED, "no answer to judge", None, "success"),
                    Criterion("deadline", FAIL if verdict.outcome == "timeout" else NOT_TESTED,
                              f"no answer within the {limit} deadline: CleverTap counts it as "
                              "a timeout" if verdict.outcome == "timeout" else
                              "no answer to time", None, limit)]
    else:
        late = verdict.outcome == "too-slow"
        said = verdict.notes[0] if late and verdict.notes else verdict.summary
        accepted = verdict.accepted or (late and said == "accepted")
        status = f"HTTP {result.response_status}"
        criteria = [
            Criterion("answered", PASS, f"{status} in {verdict.latency_ms:g} ms",
                      result.response_status, "an HTTP answer"),
            Criterion("accepted", PASS if accepted else FAIL,
                      'answered {"status": "success"}' if accepted else said,
                      verdict.error_code if verdict.error_code is not None else
                      result.response_status, "success"),
            Criterion("deadline", FAIL if late else PASS,
                      f"answered in {verdict.latency_ms:g} ms, over the {limit} deadline: "
                      "CleverTap counts it as a timeout" if late else
                      f"answered in {verdict.latency_ms:g} ms", verdict.latency_ms, limit)]
    if trip is not None:
        from ctwa.load.engine import callbacks_criterion

        criteria.append(callbacks_criterion(trip))
    return Verdict(tuple(criteria))


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
            verdict = Verdict("timeout" if isinstance(exc, RemoteTimeout) else "unreachable",
                              False, str(exc))
            sent = endpoint.auth.apply({**client.headers, **dict(endpoint.headers)})
            headers = {k: redact_header_value(k, v) for k, v in sent.items()}
            return SendResult(url, payload, headers, verdict, deadline=deadline)
        response = exchange.response
        verdict = judge(response.status_code, response.content, exchange.elapsed, deadline,
                        response.headers.get("Location"))
        return SendResult(
            url, payload, _masked_headers(exchange.request.headers), verdict,
            response.status_code, _masked_headers(response.headers),
            _body_for_report(response.content), deadline=deadline,
        )
    finally:
        if own:
            client.close()
