"""POST /messages is answered straight on ASGI (ctwa/bridge/app.py's fast path), before
Starlette: the answers are those of the route it stands in front of."""

from __future__ import annotations

import json
from collections.abc import Iterator

from tests.bridge.conftest import PASSWORD, TO, Harness


def text(msg_id: str) -> dict[str, object]:
    return {"payloadVersion": 0.1, "to": TO, "wabaNumber": "15550001111", "msgId": msg_id,
            "isTemplate": False, "type": "text", "text": {"body": "hello"}}


def test_a_streamed_body_past_the_limit_is_2004_without_a_length(harness: Harness) -> None:
    limit = harness.running.settings.body_limit

    def chunks() -> Iterator[bytes]:  # chunked: no Content-Length to refuse it early
        for _ in range(limit // 4096 + 2):
            yield b" " * 4096

    big = harness.client.post(f"{harness.url}/messages", content=chunks(),
                              auth=("clevertap", PASSWORD))
    assert big.status_code == 413 and big.json()["error"]["code"] == 2004
    assert big.headers["content-type"] == "application/json"


def test_a_chunked_body_is_read_whole_and_other_methods_stay_starlettes(
        harness: Harness) -> None:
    body = json.dumps(text("5|5|5|5")).encode()

    def chunks() -> Iterator[bytes]:
        yield body[:10]
        yield body[10:]

    answer = harness.client.post(f"{harness.url}/messages", content=chunks(),
                                 auth=("clevertap", PASSWORD))
    assert answer.status_code == 200 and answer.json() == {"status": "success"}
    assert int(answer.headers["content-length"]) == len(answer.content)
    assert harness.client.get(f"{harness.url}/messages").status_code == 405
    metrics = harness.client.get(f"{harness.url}/metrics").text
    assert "ctwa_bridge_answer_seconds_count 1.0" in metrics  # the POST is timed


def test_post_webhook_on_the_fast_path_checks_the_signature_and_the_size(
        harness: Harness) -> None:
    body = harness.meta.webhook(statuses=[{"id": "wamid.none", "status": "delivered",
                                           "timestamp": "1700000000", "recipient_id": TO}])
    good = harness.webhook(body)
    assert good.status_code == 200 and good.text == "ok"
    assert good.headers["content-type"] == "text/plain; charset=utf-8"
    assert harness.webhook(body, signature=None).status_code == 401
    assert harness.webhook(body, signature="sha256=" + "0" * 64).status_code == 401
    limit = harness.running.settings.body_limit * 4

    def chunks() -> Iterator[bytes]:
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    big = harness.client.post(f"{harness.url}/webhook", content=chunks())
    assert big.status_code == 413
    # Meta's verification request is still Starlette's route
    assert harness.client.get(f"{harness.url}/webhook", params={
        "hub.mode": "subscribe", "hub.verify_token": "wrong",
        "hub.challenge": "x"}).status_code == 403
    metrics = harness.client.get(f"{harness.url}/metrics").text
    assert "ctwa_bridge_webhooks_stored_total 1.0" in metrics
    assert "ctwa_bridge_webhook_signature_failures_total 2.0" in metrics
