"""The simulated WhatsApp user behind every number: what it sends back, in Meta's shapes.

Each message follows cloud-api/webhooks/components ("messages" object) and the fixtures of
Meta's webhook examples: ``from``, ``id`` (a wamid), ``timestamp``, ``type`` and the object
named by the type; a reply carries ``context: {"from": <business number>, "id": <wamid
answered>}``. Media comes as an ``id`` (with ``mime_type``, ``sha256``), which the mock
serves at ``GET /{media-id}``. A reaction is the exception Meta makes: it has no ``context``;
``reaction.message_id`` is the wamid it reacts to.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

#: Every kind the simulated user replies with, in this order.
REPLY_KINDS = ("text", "image", "document", "audio", "video", "location", "contacts",
               "button", "interactive_button", "interactive_list", "reaction")

USER_NAME = "Sandbox User"


@dataclass(frozen=True)
class Media:
    content: bytes
    mime_type: str
    filename: str | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


#: Small files standing in for what a user sends (the bytes start as such files do).
SAMPLE_MEDIA: dict[str, Media] = {
    "image": Media(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 240 + b"\xff\xd9",
                   "image/jpeg"),
    "document": Media(b"%PDF-1.4\n% ctwa sandbox invoice\n%%EOF\n", "application/pdf",
                      "invoice.pdf"),
    "audio": Media(b"OggS\x00\x02" + b"\x00" * 200, "audio/ogg; codecs=opus"),
    "video": Media(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 300, "video/mp4"),
}


def reply_content(kind: str, media_id: str | None, answered: str,
                  quick_reply: str | None) -> tuple[str, dict[str, Any]]:
    """Meta's ``type`` and content object for one reply of ``kind``."""
    if kind == "text":
        return "text", {"text": {"body": "Yes, please!"}}
    if kind in SAMPLE_MEDIA:
        media = SAMPLE_MEDIA[kind]
        content: dict[str, Any] = {"mime_type": media.mime_type, "sha256": media.sha256,
                                   "id": media_id}
        if kind == "image":
            content["caption"] = "a photo"
        if kind == "video":
            content["caption"] = "a clip"
        if kind == "document":
            content["filename"] = media.filename
            content["caption"] = "the invoice"
        if kind == "audio":
            content["voice"] = True
        return kind, {kind: content}
    if kind == "location":
        return "location", {"location": {"latitude": 12.9716, "longitude": 77.5946,
                                         "name": "Home", "address": "MG Road, Bengaluru"}}
    if kind == "contacts":
        return "contacts", {"contacts": [{
            "name": {"formatted_name": "Ann Lee", "first_name": "Ann", "last_name": "Lee"},
            "phones": [{"phone": "+91 90000 00042", "wa_id": "919000000042", "type": "CELL"}]}]}
    if kind == "button":
        text = quick_reply or "Yes"
        return "button", {"button": {"payload": text, "text": text}}
    if kind == "interactive_button":
        return "interactive", {"interactive": {"type": "button_reply", "button_reply": {
            "id": "confirm", "title": "Confirm"}}}
    if kind == "interactive_list":
        return "interactive", {"interactive": {"type": "list_reply", "list_reply": {
            "id": "slot-2", "title": "Tomorrow 10:00", "description": "a morning slot"}}}
    if kind == "reaction":
        return "reaction", {"reaction": {"message_id": answered, "emoji": "\U0001f44d"}}
    raise ValueError(f"unknown reply kind {kind!r}")
