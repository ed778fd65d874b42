"""The bridge's routes and workers against real local servers: a Meta stand-in and a
recording CleverTap (tests/bridge/conftest.py)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.bridge.conftest import (
    PASSWORD,
    TO,
    TOKEN,
    VERIFY,
    Harness,
    meta_error,
    wait_until,
)
from tests.conftest import SPEC_SAMPLES


def sample(name: str, **changes: Any) -> dict[str, Any]:
    doc = json.loads((SPEC_SAMPLES / f"{name}.json").read_text())
    doc.update(changes)
    return doc


def lto(msg_id: str = "1|2|3|4") -> dict[str, Any]:
    return sample("template-lto", to=TO, msgId=msg_id)


def text(msg_id: str, to: str = TO) -> dict[str, Any]:
    return {"payloadVersion": 0.1, "to": to, "wabaNumber": "15550001111", "msgId": msg_id,
            "isTemplate": False, "type": "text", "text": {"body": "hello"}}


def status(wamid: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {"id": wamid, "status": kind, "timestamp": str(int(time.time())),
            "recipient_id": TO, **extra}


def test_validation_payload_plain_and_wrapped_is_success_and_never_sent(
        harness: Harness) -> None:
    inner = sample("validation-wrapped")["body"]
    for doc in (inner, {"body": inner}):
        answer = harness.post(doc)
        assert answer.status_code == 200 and answer.json() == {"status": "success"}
    time.sleep(0.3)
    assert harness.meta.requests == []


@pytest.mark.parametrize("auth", [None, ("clevertap", "wrong"), ("other", PASSWORD)])
def test_wrong_credentials_are_failure_2000(harness: Harness, auth: Any) -> None:
    answer = harness.post(lto(), auth=auth)
    assert answer.status_code == 401
    assert answer.json()["status"] == "failure" and answer.json()["error"]["code"] == 2000


def test_template_is_answered_at_once_then_sent_to_meta_translated(harness: Harness) -> None:
    started = time.perf_counter()
    answer = harness.post(lto())
    assert time.perf_counter() - started < 1.0
    assert answer.json() == {"status": "success"}
    wait_until(lambda: harness.meta.requests, what="Meta's request")
    sent = harness.meta.requests[0]
    assert sent["type"] == "template" and sent["to"] == TO
    assert sent["template"]["name"] == "Test_template"
    assert harness.meta.auth[0] == f"Bearer {TOKEN}"
    # the wamid is mapped: Meta's statuses come back to CleverTap with the msgId
    hook = harness.meta.webhook([status("wamid.T1", "sent"), status("wamid.T1", "delivered"),
                                 status("wamid.T1", "read")])
    assert harness.webhook(hook).status_code == 200
    wait_until(lambda: len(harness.clevertap.statuses()) == 3, what="three DLRs")
    assert harness.clevertap.statuses() == [("1|2|3|4", "sent"), ("1|2|3|4", "delivered"),
                                            ("1|2|3|4", "read")]


def test_a_duplicate_msgid_is_answered_success_and_sent_once(harness: Harness) -> None:
    for _ in range(3):
        assert harness.post(text("9|9|9|9")).json() == {"status": "success"}
    wait_until(lambda: harness.meta.requests, what="Meta's request")
    time.sleep(0.3)
    assert len(harness.meta.requests) == 1


def test_unknown_template_and_wrong_parameter_count_are_2001_naming_it(
        harness: Harness) -> None:
    unknown = lto()
    unknown["template"] = {"namespace": "no_such_template", "languageCode": "en"}
    answer = harness.post(unknown).json()
    assert answer["error"]["code"] == 2001 and "no_such_template" in answer["error"]["message"]
    short = lto()
    short["components"][1]["body"]["parameters"] = []
    answer = harness.post(short).json()
    assert answer["error"]["code"] == 2001
    assert "body has 0 parameter(s)" in answer["error"]["message"]


def test_impossible_number_is_2002(harness: Harness) -> None:
    answer = harness.post(text("1|1|1|1", to="99912345678")).json()
    assert answer["status"] == "failure" and answer["error"]["code"] == 2002


def test_malformed_json_too_large_and_unknown_kinds_get_clear_answers(
        harness: Harness) -> None:
    bad = harness.post(None, content=b'{"to": ', headers={"Content-Type": "application/json"})
    assert bad.status_code == 400 and "not JSON" in bad.json()["error"]["message"]
    big = harness.post(None, content=b'{"x": "' + b"a" * 300_000 + b'"}')
    assert big.status_code == 413 and big.json()["error"]["code"] == 2004
    odd = harness.post({"hello": "world"}).json()
    assert odd["error"]["code"] == 2004 and "unknown payload" in odd["error"]["message"]


@pytest.mark.parametrize(("code", "expected"), [(131026, 1007), (131047, 1008),
                                                (132001, 1001), (999999, 1009)])
def test_meta_refusals_become_a_failed_dlr_with_the_convert_code(
        harness: Harness, code: int, expected: int) -> None:
    harness.meta.answers = lambda body: meta_error(code, "refused")
    assert harness.post(text("5|5|5|5")).json() == {"status": "success"}
    wait_until(lambda: harness.clevertap.statuses(), what="the failed DLR")
    route, body = harness.clevertap.received[0]
    entry = body["statuses"][0]
    assert route == "status" and entry["msgId"] == "5|5|5|5" and entry["status"] == "failed"
    assert entry["error"]["code"] == expected
    assert len(harness.meta.requests) == 1


def test_rate_limits_and_html_errors_are_retried_not_failed(harness: Harness) -> None:
    calls: list[int] = []

    def answers(body: dict[str, Any]) -> tuple[int, Any]:
        calls.append(1)
        if len(calls) == 1:
            return meta_error(130429, "Rate limit hit", 400)
        if len(calls) == 2:
            return 502, b"<html><body>Bad Gateway</body></html>"
        return 200, {"messaging_product": "whatsapp", "messages": [{"id": "wamid.R1"}]}

    harness.meta.answers = answers
    assert harness.post(text("7|7|7|7")).json() == {"status": "success"}
    wait_until(lambda: len(calls) >= 3, timeout=15, what="the third attempt")
    hook = harness.meta.webhook([status("wamid.R1", "sent")])
    harness.webhook(hook)
    wait_until(lambda: harness.clevertap.statuses(), what="the sent DLR")
    assert harness.clevertap.statuses() == [("7|7|7|7", "sent")]


@pytest.mark.parametrize("harness", [{"meta_timeout": 0.5}], indirect=True)
def test_meta_timing_out_fails_with_1009_and_is_never_resent(harness: Harness) -> None:
    harness.meta.delay = 1.5
    assert harness.post(text("8|8|8|8")).json() == {"status": "success"}
    wait_until(lambda: harness.clevertap.statuses(), what="the failed DLR")
    entry = harness.clevertap.received[0][1]["statuses"][0]
    assert entry["status"] == "failed" and entry["error"]["code"] == 1009
    time.sleep(0.5)
    assert len(harness.meta.requests) == 1


def test_webhook_signature_missing_or_wrong_is_401_and_counted(harness: Harness) -> None:
    body = harness.meta.webhook([status("wamid.X", "sent")])
    assert harness.webhook(body, signature=None).status_code == 401
    assert harness.webhook(body, signature="sha256=" + "0" * 64).status_code == 401
    metrics = harness.client.get(f"{harness.url}/metrics").text
    assert "ctwa_bridge_webhook_signature_failures_total 2.0" in metrics


def test_webhook_verification(harness: Harness) -> None:
    good = harness.client.get(f"{harness.url}/webhook", params={
        "hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "1158201444"})
    assert good.status_code == 200 and good.text == "1158201444"
    bad = harness.client.get(f"{harness.url}/webhook", params={
        "hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "1"})
    assert bad.status_code == 403


def test_templates_endpoint_pages_in_meta_format(harness: Harness) -> None:
    seen: list[str] = []
    url: str | None = f"{harness.url}/templates?limit=4"
    while url:
        page = harness.client.get(url, auth=("clevertap", PASSWORD)).json()
        seen += [t["name"] for t in page["data"]]
        url = page["paging"].get("next")
    # media.json and text.json are both Sample_Template (en(UK)): one of them is kept
    assert sorted(seen) == sorted({(t["name"], t["language"]): t["name"]
                                   for t in harness.meta.templates}.values())
    assert harness.client.get(f"{harness.url}/templates").status_code == 401


def test_inbound_media_is_a_signed_link_that_streams_from_meta(harness: Harness) -> None:
    harness.post(lto("2|2|2|2"))
    wait_until(lambda: harness.meta.requests, what="Meta's request")
    reply = {"from": TO, "id": "wamid.in1", "timestamp": str(int(time.time())),
             "type": "image", "image": {"id": "MEDIA42", "mime_type": "image/jpeg"},
             "context": {"from": "15550001111", "id": "wamid.T1"}}
    harness.webhook(harness.meta.webhook(messages=[reply]))
    inbound = wait_until(lambda: [b for r, b in harness.clevertap.received if r == "inbound"],
                         what="the inbound callback")[0]
    assert inbound["context"] == {"id": "2|2|2|2"}
    link = inbound["image"]["mediaURL"]
    assert link.startswith(harness.url + "/media/MEDIA42?") and TOKEN not in link
    got = harness.client.get(link)
    assert got.status_code == 200 and got.content == b"JPEG-MEDIA42"
    forged = harness.client.get(link.replace("MEDIA42", "MEDIA43"))
    assert forged.status_code == 403


def test_callbacks_wait_for_clevertap_and_arrive_in_order(harness: Harness) -> None:
    harness.post(text("3|3|3|3"))
    wait_until(lambda: harness.meta.requests, what="Meta's request")
    harness.clevertap.down = True
    # Meta's webhooks out of order: read before delivered before sent
    for kind in ("read", "delivered", "sent"):
        harness.webhook(harness.meta.webhook([status("wamid.T1", kind)]))
    wait_until(lambda: harness.clevertap.refused >= 3, what="refused deliveries")
    harness.clevertap.down = False
    wait_until(lambda: len(harness.clevertap.statuses()) == 3, timeout=15,
               what="every DLR after CleverTap came back")
    assert [s for _, s in harness.clevertap.statuses()] == ["sent", "delivered", "read"]


def test_health_and_metrics(harness: Harness) -> None:
    health = harness.client.get(f"{harness.url}/health")
    assert health.status_code == 200 and health.json()["ready"] is True
    harness.post(text("4|4|4|4"))
    wait_until(lambda: harness.meta.requests, what="Meta's request")
    metrics = wait_until(lambda: (m := harness.client.get(f"{harness.url}/metrics").text)
                         and "ctwa_bridge_sends_total 1.0" in m and m, what="metrics")
    for name in ("ctwa_bridge_outbox_depth", "ctwa_bridge_meta_answers_total",
                 "ctwa_bridge_callback_lag_seconds", "ctwa_bridge_answer_seconds"):
        assert name in metrics


def test_several_messages_from_one_user_all_reach_clevertap_once(harness: Harness) -> None:
    def reply(n: int) -> dict[str, Any]:
        return {"from": TO, "id": f"wamid.in{n}", "timestamp": str(int(time.time())),
                "type": "text", "text": {"body": f"reply {n}"}}

    body = harness.meta.webhook(messages=[reply(n) for n in range(3)])
    harness.webhook(body)
    harness.webhook(body)  # Meta redelivers a webhook it thinks was not taken
    wait_until(lambda: len([r for r, _ in harness.clevertap.received if r == "inbound"]) >= 3,
               what="three inbound callbacks")
    time.sleep(0.5)
    texts = sorted(b["text"]["body"] for r, b in harness.clevertap.received if r == "inbound")
    assert texts == ["reply 0", "reply 1", "reply 2"]


def test_a_tracked_button_tap_redirects_and_sends_clicked(harness: Harness) -> None:
    bridge = harness.running.bridge
    bridge.settings.public_url = harness.url
    bridge.settings.clicks = {"order_update": "https://shop.example/orders/{value}"}
    from tests.bridge.conftest import example_templates

    template = next(t for t in example_templates() if t["name"] == "order_update")
    for comp in template["components"]:
        for button in comp.get("buttons") or []:
            if button["type"] == "URL":
                button["url"] = f"{harness.url}/c/{{{{1}}}}"
    import asyncio

    asyncio.run_coroutine_threadsafe(bridge.state.replace_templates([template]),
                                     harness.running.loop).result(5)
    bridge._templates.clear()
    doc = {"payloadVersion": 0.1, "to": TO, "wabaNumber": "15550001111", "msgId": "6|6|6|6",
           "isTemplate": True, "template": {"namespace": "order_update", "languageCode": "en"},
           "components": [
               {"type": "body", "body": {"text": "Hi John, order 12345", "parameters": [
                   {"type": "text", "text": "John"}, {"type": "text", "text": "12345"}]}},
               {"type": "button", "index": 0, "subType": "dynamicUrl", "buttonText": "Track",
                "parameters": [{"type": "text", "text": "12345"}]}]}
    answer = harness.post(doc).json()
    assert answer == {"status": "success"}, answer
    wait_until(lambda: harness.meta.requests, what="Meta's request")
    button = harness.meta.requests[0]["template"]["components"][1]
    token = button["parameters"][0]["text"]
    assert token != "12345" and len(token) == 16
    tap = harness.client.get(f"{harness.url}/c/{token}",
                             headers={"User-Agent": "Mozilla/5.0 (Linux; Android 14)\tX"})
    assert tap.status_code == 302
    assert tap.headers["location"] == "https://shop.example/orders/12345"
    wait_until(lambda: harness.clevertap.statuses(), what="the clicked status")
    entry = harness.clevertap.received[0][1]["statuses"][0]
    assert entry["status"] == "clicked" and entry["msgId"] == "6|6|6|6"
    assert entry["url"] == "https://shop.example/orders/12345"
    assert entry["userAgent"] == "Mozilla/5.0 (Linux; Android 14)\\x09X"
    assert harness.client.get(f"{harness.url}/c/unknown-token").status_code == 404


def test_a_locked_state_is_answered_2004_within_the_deadline_then_recovers(
        harness: Harness) -> None:
    import sqlite3

    lock = sqlite3.connect(harness.running.settings.state, timeout=0.1)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        started = time.perf_counter()
        answer = harness.post(text("11|11|11|11"))
        took = time.perf_counter() - started
        assert answer.status_code == 503 and answer.json()["error"]["code"] == 2004
        assert took < 5  # it answers (the state's ack timeout), rather than hang
    finally:
        lock.rollback()
        lock.close()
    assert harness.post(text("12|12|12|12")).json() == {"status": "success"}
    wait_until(lambda: any(r.get("biz_opaque_callback_data") == "12|12|12|12"
                           for r in harness.meta.requests), what="the send after the lock")


@pytest.mark.parametrize("harness", [{"mps": 20.0}], indirect=True)
def test_the_outbox_drains_at_mps_never_faster(harness: Harness) -> None:
    for n in range(50):
        assert harness.post(text(f"20|{n}|1|1")).json() == {"status": "success"}
    wait_until(lambda: len(harness.meta.requests) == 50, timeout=20, what="50 sends")
    times = harness.meta.times
    busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    assert busiest <= 21  # 20 a second; one of slack for the arrival's own jitter
    assert times[-1] - times[0] >= (50 - 21) / 20


def test_a_lost_state_is_a_503_on_every_route_not_a_traceback(harness: Harness) -> None:
    import asyncio

    asyncio.run_coroutine_threadsafe(harness.running.bridge.state.close(),
                                     harness.running.loop).result(5)
    templates = harness.client.get(f"{harness.url}/templates", auth=("clevertap", PASSWORD))
    assert templates.status_code == 503 and "state is unavailable" in templates.text
    assert harness.client.get(f"{harness.url}/c/some-token").status_code == 503
    assert harness.post(text("13|13|13|13")).status_code == 503
    assert harness.client.get(f"{harness.url}/health").status_code == 503


def test_templates_never_synced_is_2004_naming_why_not_an_unknown_template(
        harness: Harness) -> None:
    bridge = harness.running.bridge
    bridge.last_sync, bridge.sync_error = None, "template sync: HTTP 401, Meta error 190"
    unknown = lto()
    unknown["template"] = {"namespace": "not_synced_yet", "languageCode": "en"}
    answer = harness.post(unknown).json()
    assert answer["error"]["code"] == 2004 and "Meta error 190" in answer["error"]["message"]


def test_template_sync_follows_every_page_of_meta(harness: Harness) -> None:
    import asyncio
    import copy

    base = next(t for t in harness.meta.templates if t["name"] == "order_update")
    many = []
    for n in range(250):  # three pages of Meta's 100
        template = copy.deepcopy(base)
        template["name"] = f"campaign_{n:03d}"
        many.append(template)
    harness.meta.templates = many
    kept = asyncio.run_coroutine_threadsafe(harness.running.bridge.sync_templates(),
                                            harness.running.loop).result(20)
    assert kept == 250
    page = harness.client.get(f"{harness.url}/templates?limit=500",
                              auth=("clevertap", PASSWORD)).json()
    assert [t["name"] for t in page["data"]] == [f"campaign_{n:03d}" for n in range(250)]
