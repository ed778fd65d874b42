"""The mock Cloud API's signed webhooks: statuses for every accepted message, failures,
retries, and what ctwa's own readers make of them."""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx
import pytest

from ctwa.callbacks.convert import Converter
from ctwa.sandbox.meta import MetaSettings
from ctwa.sandbox.server import RunningSandbox, SandboxSettings
from ctwa.wire.webhook import is_meta_webhook
from tests.sandbox.templates import GOOD_REQUESTS, order_update, write_templates

FAST = (0.01, 0.03, 0.05)


def sandbox(tmp_path, receiver, **meta) -> RunningSandbox:
    options = {"webhook_url": f"{receiver.url}/webhook", "mps": 0, "status_delays": FAST,
               "webhook_retry_base": 0.05, **meta}
    return RunningSandbox(SandboxSettings(templates=write_templates(tmp_path / "t"),
                                          store_callbacks=False,
                                          meta=MetaSettings(**options)))


def send(box, body) -> str:
    meta = box.settings.meta
    answer = httpx.post(f"{box.urls()['meta_graph']}/{meta.phone_number_id}/messages",
                        json=body, headers={"Authorization": f"Bearer {meta.token}"})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["messages"][0]["id"])


def test_statuses_sent_delivered_read_signed_in_metas_envelope(tmp_path, receiver) -> None:
    with sandbox(tmp_path, receiver) as box:
        wamids = [send(box, order_update(biz_opaque_callback_data="i|1|2|3|0")),
                  send(box, GOOD_REQUESTS["text"])]
        assert box.meta.wait_idle(10)
    secret = box.settings.meta.app_secret.encode()
    for headers, body in receiver.posts:
        expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        assert headers["x-hub-signature-256"] == expected
        assert headers["user-agent"] == "facebookexternalua"
    doc = receiver.documents()[0]
    assert doc["object"] == "whatsapp_business_account" and is_meta_webhook(doc)
    entry = doc["entry"][0]
    assert entry["id"] == box.settings.meta.waba_id
    value = entry["changes"][0]["value"]
    assert entry["changes"][0]["field"] == "messages"
    assert value["messaging_product"] == "whatsapp"
    assert value["metadata"] == {"display_phone_number": "919999999998",
                                 "phone_number_id": box.settings.meta.phone_number_id}
    by_wamid: dict[str, list[dict]] = {}
    for status in receiver.statuses():
        by_wamid.setdefault(status["id"], []).append(status)
    assert set(by_wamid) == set(wamids)
    template_statuses = by_wamid[wamids[0]]
    assert [s["status"] for s in template_statuses] == ["sent", "delivered", "read"]
    sent = template_statuses[0]
    assert sent["recipient_id"] == "919000000001" and sent["timestamp"].isdecimal()
    assert sent["conversation"]["origin"]["type"] == "utility"
    assert "expiration_timestamp" in sent["conversation"]
    assert "expiration_timestamp" not in template_statuses[1]["conversation"]
    assert sent["pricing"] == {"billable": True, "pricing_model": "PMP", "category": "utility"}
    assert all(s["biz_opaque_callback_data"] == "i|1|2|3|0" for s in template_statuses)
    assert by_wamid[wamids[1]][0]["pricing"]["category"] == "service"
    assert box.meta.state.statuses_queued == {"sent": 2, "delivered": 2, "read": 2}
    assert box.meta.sender is not None and box.meta.sender.stats.updates["read"] == 2


def test_they_convert_to_clevertap_callbacks(tmp_path, receiver) -> None:
    with sandbox(tmp_path, receiver, failing_numbers={"0026": 131026}) as box:
        good = send(box, GOOD_REQUESTS["template-positional"])
        bad = send(box, order_update(to="919000000026"))
        assert box.meta.wait_idle(10)
    converter = Converter(msgid_map={good: "i|1|2|3|good", bad: "i|1|2|3|bad"})
    for n, doc in enumerate(receiver.documents()):
        converter.convert(doc, f"webhook {n}")
    result = converter.result
    assert result.placeholders == 0 and not result.warnings
    # a POST may carry both messages' statuses (batched): one callback with several
    seen = [(s["msgId"], s["status"]) for c in result.callbacks for s in c.body["statuses"]]
    assert sorted(seen) == sorted([("i|1|2|3|good", "sent"), ("i|1|2|3|good", "delivered"),
                                   ("i|1|2|3|good", "read"), ("i|1|2|3|bad", "failed")])
    failed = next(s for c in result.callbacks for s in c.body["statuses"]
                  if s["status"] == "failed")
    assert failed["error"]["code"] == 1007  # 131026 in callback convert's table


@pytest.mark.parametrize(("number", "kind", "code"), [
    ("919000000026", "template-positional", 131026),  # not on WhatsApp
    ("99912345678", "template-positional", 131026),  # a number no country has
    ("919000000047", "text", 131047),  # outside the 24-hour window
    ("919000000050", "template-positional", 131050),
])
def test_undeliverable_numbers_are_accepted_then_failed_by_webhook(tmp_path, receiver, number,
                                                                   kind, code) -> None:
    with sandbox(tmp_path, receiver) as box:
        body = dict(GOOD_REQUESTS[kind], to=number)
        wamid = send(box, body)  # Meta answers 200 with a wamid first
        assert box.meta.wait_idle(10)
    statuses = receiver.statuses()
    assert [s["status"] for s in statuses] == ["failed"] and statuses[0]["id"] == wamid
    error = statuses[0]["errors"][0]
    assert error["code"] == code and error["title"] and error["error_data"]["details"]
    assert error["href"].startswith("https://developers.facebook.com/")
    assert "conversation" not in statuses[0] and "pricing" not in statuses[0]


def test_templates_reach_numbers_outside_the_window(tmp_path, receiver) -> None:
    with sandbox(tmp_path, receiver, window="strict") as box:
        send(box, dict(GOOD_REQUESTS["template-positional"], to="919000000005"))
        send(box, dict(GOOD_REQUESTS["text"], to="919000000005"))
        assert box.meta.wait_idle(10)
        assert [s["status"] for s in receiver.statuses()].count("failed") == 1
        box.meta.inject("919000000005", "text")  # the user writes: the window opens
        send(box, dict(GOOD_REQUESTS["text"], to="919000000005"))
        assert box.meta.wait_idle(10)
    statuses = receiver.statuses()
    assert [s["status"] for s in statuses].count("failed") == 1
    assert [s["status"] for s in statuses].count("read") == 2


def test_delivery_is_retried_while_the_webhook_url_is_down(tmp_path, receiver) -> None:
    receiver.refuse = 3
    with sandbox(tmp_path, receiver, read=False) as box:
        send(box, GOOD_REQUESTS["text"])
        assert box.meta.wait_idle(15)
        stats = box.meta.sender.stats
    assert receiver.refused == 3 and stats.retries >= 3 and stats.failures >= 3
    assert sorted(s["status"] for s in receiver.statuses()) == ["delivered", "sent"]
    assert stats.given_up == 0


def test_an_unreachable_webhook_url_is_given_up_after_retry_for(tmp_path, receiver) -> None:
    from ctwa.infra.ports import free_port

    settings = SandboxSettings(templates=write_templates(tmp_path / "t"), store_callbacks=False,
                               meta=MetaSettings(
                                   webhook_url=f"http://127.0.0.1:{free_port()}/webhook",
                                   mps=0, status_delays=FAST, webhook_retry_base=0.05,
                                   webhook_retry_for=0.3, read=False))
    with RunningSandbox(settings) as box:
        send(box, GOOD_REQUESTS["text"])
        assert box.meta.wait_idle(10)
        stats = box.meta.sender.stats
    assert stats.posted == 0 and stats.given_up == 2 and "connect" in stats.last_error


def test_batches_carry_several_statuses_in_one_value(tmp_path, receiver) -> None:
    with sandbox(tmp_path, receiver, webhook_batch=50, webhook_concurrency=1,
                 webhook_batch_wait=0.05, status_delays=(0.2, 0.4, 0.6)) as box:
        for _ in range(5):
            send(box, GOOD_REQUESTS["text"])
        assert box.meta.wait_idle(10)
    assert len(receiver.statuses()) == 15
    assert len(receiver.posts) < 15
    sizes = [len(json.loads(b)["entry"][0]["changes"][0]["value"]["statuses"])
             for _, b in receiver.posts]
    assert max(sizes) > 1


def test_out_of_order_posts_newest_first(tmp_path, receiver) -> None:
    with sandbox(tmp_path, receiver, out_of_order=True, webhook_concurrency=1) as box:
        send(box, GOOD_REQUESTS["text"])
        assert box.meta.wait_idle(10)
    assert [s["status"] for s in receiver.statuses()] == ["read", "delivered", "sent"]


def test_the_legacy_sha1_signature_comes_too(tmp_path, receiver) -> None:
    with sandbox(tmp_path, receiver, read=False) as box:
        send(box, GOOD_REQUESTS["text"])
        assert box.meta.wait_idle(10)
    headers, body = receiver.posts[0]
    secret = box.settings.meta.app_secret.encode()
    assert headers["x-hub-signature"] == "sha1=" + hmac.new(secret, body, "sha1").hexdigest()


@pytest.mark.parametrize(("token", "verdict"), [("vt-1", "passed"),
                                                ("wrong", "failed: HTTP 403, not the challenge")])
def test_the_webhook_url_is_verified_first_as_meta_does(tmp_path, verifying, token,
                                                        verdict) -> None:
    with sandbox(tmp_path, verifying, verify_token=token, read=False) as box:
        send(box, GOOD_REQUESTS["text"])
        send(box, GOOD_REQUESTS["text"])
        assert box.meta.wait_idle(10)
        stats = box.meta.sender.stats
    assert len(verifying.verifications) == 1  # once, not per webhook
    asked = verifying.verifications[0]
    assert asked["hub.mode"] == "subscribe" and asked["hub.verify_token"] == token
    assert asked["hub.challenge"].isdecimal()
    assert stats.verification == verdict
    if verdict == "passed":
        assert len(verifying.statuses()) == 4
    else:  # Meta sends nothing to a URL that failed verification
        assert verifying.posts == [] and stats.given_up == 4
        assert "failed Meta's verification" in stats.last_error


def test_one_status_per_post_while_it_keeps_up(tmp_path, receiver) -> None:
    with sandbox(tmp_path, receiver, status_delays=(0.05, 0.3, 0.6)) as box:
        send(box, GOOD_REQUESTS["text"])
        assert box.meta.wait_idle(10)
    assert len(receiver.posts) == 3 and len(receiver.statuses()) == 3


def test_webhooks_v24_carry_pricing_type_and_no_conversation(tmp_path, receiver) -> None:
    with sandbox(tmp_path, receiver, webhook_version="v24.0", read=False) as box:
        send(box, GOOD_REQUESTS["template-positional"])
        send(box, GOOD_REQUESTS["text"])
        assert box.meta.wait_idle(10)
    pricing = sorted((s["pricing"]["category"], s["pricing"]["type"], s["pricing"]["billable"])
                     for s in receiver.statuses())
    assert pricing == [("service", "free_customer_service", False)] * 2 + [
        ("utility", "regular", True)] * 2
    assert not any("conversation" in s for s in receiver.statuses())
