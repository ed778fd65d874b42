"""Judging every answer shape the spec shows, through the real sending path (respx)."""

from __future__ import annotations

import time

import httpx
import pytest
import respx

from ctwa.http import Auth
from ctwa.infra.errors import ExitCode
from ctwa.send.endpoint import Endpoint
from ctwa.send.messaging import deliver

URL = "https://bsp.example/clevertap"
PAYLOAD = {"to": "919999999999", "msgId": "1|2|3|4|5"}


def run(response: httpx.Response | Exception, deadline: float = 1.0, **kw):
    with respx.mock:
        if isinstance(response, Exception):
            respx.post(URL).mock(side_effect=response)
        else:
            respx.post(URL).mock(return_value=response)
        return deliver(Endpoint(URL, **kw), PAYLOAD, deadline=deadline)


def test_success() -> None:
    result = run(httpx.Response(200, json={"status": "success"}))
    assert result.verdict.accepted and result.verdict.outcome == "accepted"
    assert result.exit_code == ExitCode.OK and result.response_body == {"status": "success"}


@pytest.mark.parametrize(("code", "meaning"), [
    (2000, "invalid credentials"), (2001, "invalid template parameters"),
    (2002, "invalid phone number"), (2003, "phone number not subscribed"), (2004, "other")])
def test_failure_codes_carry_their_meaning(code: int, meaning: str) -> None:
    result = run(httpx.Response(200, json={"status": "failure",
                                           "error": {"code": code, "message": "nope"}}))
    verdict = result.verdict
    assert verdict.outcome == "rejected" and not verdict.accepted
    assert verdict.error_code == code and verdict.error_meaning.startswith(meaning)
    assert verdict.summary.startswith(f"failure {code}: {meaning}")
    assert result.exit_code == ExitCode.FAILED


def test_unknown_failure_code() -> None:
    result = run(httpx.Response(200, json={"status": "failure", "error": {"code": 42}}))
    assert "unknown code 42" in result.verdict.summary


@pytest.mark.parametrize(("status", "body", "summary"), [
    (500, {"status": "failure", "error": {"message": "Unable to process the request"}},
     "HTTP 500: Unable to process the request"),
    (429, {"message": "Too many requests to process"}, "HTTP 429: Too many requests to process"),
    (403, {"message": "Bad Request"}, "HTTP 403: Bad Request"),
    (401, None, "HTTP 401"),
])
def test_error_statuses(status: int, body, summary: str) -> None:
    response = httpx.Response(status, json=body) if body else httpx.Response(status)
    result = run(response)
    assert result.verdict.outcome == "http-error" and result.verdict.summary == summary


@pytest.mark.parametrize(("content", "words"), [
    (b"OK", "the body is not JSON"), (b"", "the body is empty"),
    (b'{"ok": true}', 'has no "status"'), (b'["success"]', 'has no "status"'),
    (b'{"status": "queued"}', '"status": "queued"'),
    (b"\xff\xfe", "not JSON"),
])
def test_contract_violations(content: bytes, words: str) -> None:
    result = run(httpx.Response(200, content=content))
    assert result.verdict.outcome == "contract-violation" and words in result.verdict.summary


def test_accepted_but_not_200() -> None:
    result = run(httpx.Response(202, json={"status": "success"}))
    assert result.verdict.outcome == "contract-violation"
    assert "only on 200 OK" in result.verdict.summary


def test_redirect_is_not_followed() -> None:
    result = run(httpx.Response(302, headers={"Location": "https://elsewhere.example/"}))
    assert result.verdict.outcome == "http-error"
    assert "redirect to https://elsewhere.example/" in result.verdict.summary


def test_slow_answer_counts_as_a_clevertap_timeout() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        time.sleep(0.05)
        return httpx.Response(200, json={"status": "success"})

    with respx.mock:
        respx.post(URL).mock(side_effect=slow)
        result = deliver(Endpoint(URL), PAYLOAD, deadline=0.01)
    verdict = result.verdict
    assert verdict.outcome == "too-slow" and not verdict.accepted
    assert "CleverTap would count this as a timeout" in verdict.summary
    assert verdict.notes == ["accepted"] and verdict.latency_ms >= 50


def test_unreachable_is_a_verdict_with_exit_3() -> None:
    result = run(httpx.ConnectError("[Errno 111] Connection refused"))
    assert result.verdict.outcome == "unreachable" and result.exit_code == ExitCode.UNREACHABLE
    assert result.response_status is None
    assert "connection refused" in result.verdict.summary


def test_no_retry_of_a_message() -> None:
    with respx.mock:
        route = respx.post(URL).mock(return_value=httpx.Response(503))
        deliver(Endpoint(URL), PAYLOAD)
    assert route.call_count == 1


def test_request_is_utf8_json_with_masked_report() -> None:
    with respx.mock:
        route = respx.post(URL).respond(200, json={"status": "success"})
        result = deliver(Endpoint(URL, Auth("bearer", secret="tok-CANARY-91bd")),
                         {"text": "नमस्ते"})
    request = route.calls.last.request
    assert request.headers["Content-Type"] == "application/json"
    assert request.content == '{"text":"नमस्ते"}'.encode()
    assert result.request_headers["authorization"] == "Bearer ****"
    assert "tok-CANARY-91bd" not in str(result.as_dict())


def test_words_say_what_happened_once() -> None:
    """No "invalid credentials - invalid credentials", no "accepted: accepted": a message that
    repeats the code's meaning adds nothing, and the outcome is named once."""
    from ctwa.send.judge import judge

    same = judge(200, b'{"status":"failure","error":{"code":2000,"message":"Invalid '
                 b'credentials."}}', 0.01)
    assert same.summary == "failure 2000: invalid credentials"
    assert same.describe() == "refused: failure 2000: invalid credentials"
    more = judge(200, b'{"status":"failure","error":{"code":2002,"message":"bad number"}}',
                 0.01)
    assert more.summary == "failure 2002: invalid phone number - bad number"
    ok = judge(200, b'{"status":"success"}', 0.012)
    assert ok.describe() == "accepted in 12 ms"
    late = judge(200, b'{"status":"success"}', 1.5)
    assert late.describe().startswith("answered in 1500 ms, over the 1 s deadline")
    assert judge(500, b"{}", 0.01).describe() == "refused: HTTP 500"
