"""Meta webhooks -> CleverTap callbacks on the bridge, and the webhook signature."""

from __future__ import annotations

import json
from typing import Any

from ctwa.bridge.webhooks import RANKS, convert_webhook, sign, signature_ok, wamids
from ctwa.wire.lint import lint_document

WABA = "15550001111"
MAP = {"wamid.A": "1|2|3|4", "wamid.B": "1|2|3|5"}


def envelope(value: dict[str, Any]) -> dict[str, Any]:
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": WABA, "phone_number_id": "106540352242922"},
             **value}
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [{"field": "messages",
                                                               "value": value}]}]}


def message(kind: str, content: Any, **extra: Any) -> dict[str, Any]:
    return {"from": "919876543210", "id": f"wamid.in.{kind}", "timestamp": "1700000000",
            "type": kind, kind: content, **extra}


def link(media_id: str) -> str:
    return f"https://bridge.example/media/{media_id}?e=1&s=x"


def test_signature_is_hmac_sha256_of_the_raw_body() -> None:
    body = b'{"object":"whatsapp_business_account"}'
    header = sign("app-secret", body)
    assert header.startswith("sha256=") and len(header) == 71
    assert signature_ok("app-secret", body, header)
    assert not signature_ok("app-secret", body + b" ", header)
    assert not signature_ok("other", body, header)
    assert not signature_ok("app-secret", body, None)


def test_statuses_become_one_dlr_each_with_clevertap_msgid_and_rank() -> None:
    doc = envelope({"statuses": [
        {"id": "wamid.A", "status": "sent", "timestamp": "1700000001",
         "recipient_id": "919876543210"},
        {"id": "wamid.B", "status": "failed", "timestamp": "1700000002",
         "recipient_id": "919876543210",
         "errors": [{"code": 131047, "title": "Re-engagement message"}]},
        {"id": "wamid.UNKNOWN", "status": "delivered", "timestamp": "1700000003",
         "recipient_id": "919876543210"}]})
    assert wamids(doc) == {"wamid.A", "wamid.B", "wamid.UNKNOWN"}
    callbacks, notes = convert_webhook(doc, MAP, link)
    assert [(c.route, c.msg_id, c.rank) for c in callbacks] == [
        ("status", "1|2|3|4", RANKS["sent"]), ("status", "1|2|3|5", RANKS["failed"])]
    failed = callbacks[1].body["statuses"][0]
    assert failed["error"] == {"code": 1008, "title":
                               "This message is sent outside of the WhatsApp chat window"}
    assert any("wamid.UNKNOWN" in n for n in notes)
    for c in callbacks:
        assert lint_document(c.body, "status").ok


def test_every_inbound_kind_has_a_clevertap_form_with_context() -> None:
    ctx = {"context": {"from": WABA, "id": "wamid.A"}}
    messages = [
        message("text", {"body": "hi"}, **ctx),
        message("image", {"id": "IMG1", "mime_type": "image/jpeg", "caption": "c"}, **ctx),
        message("video", {"id": "VID1", "mime_type": "video/mp4"}, **ctx),
        message("audio", {"id": "AUD1", "mime_type": "audio/ogg"}, **ctx),
        message("document", {"id": "DOC1", "mime_type": "application/pdf",
                             "filename": "a.pdf"}, **ctx),
        message("location", {"latitude": 1.5, "longitude": 2.5, "name": "Here"}, **ctx),
        message("button", {"text": "Yes", "payload": "Yes"}, **ctx),
        message("interactive", {"type": "button_reply",
                                "button_reply": {"id": "b1", "title": "Choose"}}, **ctx),
        message("reaction", {"message_id": "wamid.B", "emoji": "👍"}),
        message("sticker", {"id": "STK1", "mime_type": "image/webp"}, **ctx),
        {"from": "919876543210", "id": "wamid.in.contacts", "timestamp": "1700000000",
         "type": "contacts", "contacts": [{"name": {"formatted_name": "Asha K"},
                                           "phones": [{"phone": "+91 98765 43210"}]}], **ctx},
    ]
    callbacks, notes = convert_webhook(envelope({"messages": messages}), MAP, link)
    assert len(callbacks) == len(messages), notes
    got = [(c.body["type"], c.body.get("context", {}).get("id")) for c in callbacks]
    assert got == [("text", "1|2|3|4"), ("image", "1|2|3|4"), ("video", "1|2|3|4"),
                   ("audio", "1|2|3|4"), ("file", "1|2|3|4"), ("location", "1|2|3|4"),
                   ("text", "1|2|3|4"), ("text", "1|2|3|4"), ("text", "1|2|3|5"),
                   ("image", "1|2|3|4"), ("text", "1|2|3|4")]
    assert callbacks[1].body["image"]["mediaURL"] == link("IMG1")
    assert callbacks[4].body["document"]["mediaURL"] == link("DOC1")
    assert callbacks[7].body["text"] == {"body": "Choose"}
    assert callbacks[8].body["text"] == {"body": "👍"}
    assert callbacks[10].body["text"]["body"] == "Asha K +91 98765 43210"
    for c in callbacks:
        assert c.route == "inbound" and c.msg_id.startswith("in:wamid.in.")
        result = lint_document(c.body, "inbound")
        assert result.ok, (c.body, [p.message for p in result.errors])


def test_reply_to_a_message_the_bridge_did_not_send_has_no_context() -> None:
    doc = envelope({"messages": [message("text", {"body": "hi"},
                                         context={"from": WABA, "id": "wamid.OTHER"})]})
    callbacks, _ = convert_webhook(doc, MAP, link)
    assert "context" not in callbacks[0].body


def test_kinds_without_a_form_are_skipped_and_named() -> None:
    doc = envelope({"messages": [message("order", {"catalog_id": "1"}),
                                 message("reaction", {"message_id": "wamid.A"})]})
    callbacks, notes = convert_webhook(doc, MAP, link)
    assert callbacks == []
    assert len(notes) == 2 and any("order" in n for n in notes)


def test_a_body_that_is_not_a_webhook_gives_no_callbacks_and_says_why() -> None:
    callbacks, notes = convert_webhook(json.loads('{"statuses": []}'), MAP, link)
    assert callbacks == [] and notes
