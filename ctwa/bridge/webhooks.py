"""Meta's webhooks on the bridge: their signature, and the CleverTap callbacks they become.

- Signature: Meta signs every webhook POST with ``X-Hub-Signature-256: sha256=<hex>``, the
  HMAC-SHA256 of the raw body under the app secret (Graph API webhooks, "Validate payloads":
  developers.facebook.com/docs/graph-api/webhooks/getting-started#validate-payloads).
- Verification: ``GET`` with ``hub.mode=subscribe``, ``hub.verify_token`` and
  ``hub.challenge``; the endpoint echoes the challenge when the token matches
  (same page, "Verification Requests").
- Translation: ``ctwa.callbacks.convert`` (the one Meta-error -> 1000-1010 table and the
  inbound shapes), with the bridge's wamid -> msgId map, media as signed links to the bridge's
  own ``/media/{id}``, and a documented CleverTap form for the kinds convert leaves out
  (webhook reference: developers.facebook.com/docs/whatsapp/cloud-api/webhooks/components):

  ==============  ==================================================================
  Meta type       CleverTap inbound callback
  ==============  ==================================================================
  interactive     ``text`` with the chosen reply's title (button_reply / list_reply;
                  the reply's id is in the title's place when there is no title)
  button          ``text`` with the quick-reply button's text (as convert does)
  reaction        ``text`` with the emoji, ``context`` the message reacted to; a
                  removed reaction (no emoji) is skipped
  contacts        ``text``: each contact's formatted name and phone numbers, one a line
  sticker         ``image`` (``mimetype`` image/webp)
  order, system,  skipped and logged: CleverTap has no form for them
  unsupported,
  request_welcome
  ==============  ==================================================================

  A status for a wamid the bridge never sent (a message sent from Meta's own tools) has no
  CleverTap msgId: it is skipped and logged, never sent with a made-up id. A reply whose
  ``context`` is not in the map is sent without ``context``. A status whose wamid is not in
  the map but whose ``biz_opaque_callback_data`` names a message the bridge accepted follows
  the crash rule (ctwa.bridge.state.base): it settles a send in doubt; for a message already
  failed it is recorded, not forwarded (``late``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ctwa.callbacks.convert import Callback, Converter

SIGNATURE_HEADER = "X-Hub-Signature-256"


def sign(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is Meta's signature of ``body`` (constant-time comparison)."""
    if not header or not secret:
        return False
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().encode())


def wamids(doc: Any) -> set[str]:
    """Every wamid a webhook refers to: statuses' ids, replies' contexts, reactions' targets."""
    from ctwa.wire.webhook import values

    found: set[str] = set()
    if not isinstance(doc, dict):
        return found
    for _, value in values(doc):
        for status in value.get("statuses") or []:
            if isinstance(status, dict) and status.get("id"):
                found.add(str(status["id"]))
        for message in value.get("messages") or []:
            if not isinstance(message, dict):
                continue
            context = message.get("context")
            if isinstance(context, dict) and context.get("id"):
                found.add(str(context["id"]))
            reaction = message.get("reaction")
            if isinstance(reaction, dict) and reaction.get("message_id"):
                found.add(str(reaction["message_id"]))
    return found


def status_entries(doc: Any) -> list[dict[str, Any]]:
    """The webhook's status entries that become CleverTap statuses (an id and a known kind)."""
    from ctwa.wire.webhook import STATUS_MAP, values

    if not isinstance(doc, dict):
        return []
    return [s for _, value in values(doc) for s in value.get("statuses") or []
            if isinstance(s, dict) and s.get("id") and s.get("status") in STATUS_MAP]


def status_wamids(doc: Any) -> set[str]:
    return {str(s["id"]) for s in status_entries(doc)}


def named_msg_ids(doc: Any) -> dict[str, str]:
    """wamid -> the CleverTap msgId its status names in ``biz_opaque_callback_data`` (the
    bridge sends every message with it; Meta returns it in each status webhook)."""
    return {str(s["id"]): str(s["biz_opaque_callback_data"]) for s in status_entries(doc)
            if isinstance(s.get("biz_opaque_callback_data"), str)
            and s["biz_opaque_callback_data"]}


#: Callback order ranks within one order key: the state's (ctwa.bridge.state.base.RANK).
RANKS = {"inbound": 0, "sent": 10, "delivered": 20, "read": 30, "clicked": 40, "failed": 50}


@dataclass
class BridgeCallback:
    """One callback for CleverTap: its route, the msgId it is ordered under, its body."""

    route: str  # "status" or "inbound"
    msg_id: str
    rank: int
    body: dict[str, Any]


@dataclass
class WebhookConverter(Converter):
    """convert's Converter with the bridge's rules (see the module's table)."""

    media_link: Callable[[str], str] = field(default=lambda media_id: media_id)
    #: the wamid of each inbound callback made, in order (its order key)
    inbound_ids: list[str] = field(default_factory=list)
    #: wamids recorded after their message was failed: their statuses are not forwarded
    late: set[str] = field(default_factory=set)

    def _id(self, provider_id: Any) -> str:
        return self.msgid_map.get(str(provider_id), "")

    def _status(self, status: Any, where: str) -> dict[str, Any] | None:
        if isinstance(status, dict) and str(status.get("id")) in self.late:
            return None  # the caller logs and counts these (the crash rule)
        if isinstance(status, dict) and str(status.get("id")) not in self.msgid_map:
            self.result.skipped.append(f"{where}: status for wamid {status.get('id')} that "
                                       "the bridge did not send; no CleverTap msgId")
            return None
        return super()._status(status, where)

    def _message(self, message: Any, waba: str | None, where: str) -> dict[str, Any] | None:
        if not isinstance(message, dict):
            return super()._message(message, waba, where)
        kind = str(message.get("type"))
        extra = _EXTRA.get(kind)
        if extra is None:
            body = super()._message(message, waba, where)
        else:
            content = extra(self, message.get(kind) or {}, where)
            if content is None:
                return None
            ct_type, key, value = content
            body = {"payloadVersion": "0.1", "from": str(message.get("from", "")),
                    "wabaNumber": waba or "", "timestamp": str(message.get("timestamp") or ""),
                    "type": ct_type, key: value}
            target = None
            if kind == "reaction":
                target = (message.get("reaction") or {}).get("message_id")
            elif isinstance(message.get("context"), dict):
                target = message["context"].get("id")
            if target and self._id(target):
                body["context"] = {"id": self._id(target)}
        if body is not None and isinstance(body.get("context"), dict) \
                and not body["context"].get("id"):
            del body["context"]  # a reply to a message the bridge did not send
        if body is not None:
            self.inbound_ids.append(str(message.get("id") or ""))
        return body

    def _media(self, media: dict[str, Any], where: str) -> str:
        if media.get("id"):
            return self.media_link(str(media["id"]))
        return super()._media(media, where)


def _interactive(conv: Converter, content: Any, where: str) -> tuple[str, str, Any] | None:
    reply = content.get("button_reply") or content.get("list_reply") or {}
    text = reply.get("title") or reply.get("id") or ""
    return "text", "text", {"body": str(text)}


def _reaction(conv: Converter, content: Any, where: str) -> tuple[str, str, Any] | None:
    emoji = content.get("emoji")
    if not emoji:
        conv.result.skipped.append(f"{where}: a reaction removed; nothing to tell CleverTap")
        return None
    return "text", "text", {"body": str(emoji)}


def _sticker(conv: Converter, content: Any, where: str) -> tuple[str, str, Any] | None:
    assert isinstance(conv, WebhookConverter)
    out: dict[str, Any] = {"mediaURL": conv._media(content, where)}
    out["mimetype"] = str(content.get("mime_type") or "image/webp")
    return "image", "image", out


_EXTRA: dict[str, Callable[[Converter, Any, str], tuple[str, str, Any] | None]] = {
    "interactive": _interactive, "reaction": _reaction, "sticker": _sticker,
}


def contacts_text(contacts: Any) -> str:
    lines = []
    for contact in contacts if isinstance(contacts, list) else []:
        if not isinstance(contact, dict):
            continue
        name = (contact.get("name") or {}).get("formatted_name") or ""
        phones = [str(p.get("phone") or p.get("wa_id") or "") for p in contact.get("phones") or []
                  if isinstance(p, dict)]
        lines.append(" ".join(x for x in [name, *phones] if x))
    return "\n".join(lines)


def _with_contacts(doc: Any) -> Any:
    """Meta's contacts message keeps its cards in a list under ``contacts``; give it the
    text the table promises before conversion (a copy: the stored body stays as it came)."""
    from ctwa.wire.common import tree_copy
    from ctwa.wire.webhook import values

    if not isinstance(doc, dict):
        return doc
    doc = tree_copy(doc)
    for _, value in values(doc):
        for message in value.get("messages") or []:
            if isinstance(message, dict) and message.get("type") == "contacts":
                message["type"] = "text"
                message["text"] = {"body": contacts_text(message.get("contacts"))}
    return doc


def convert_webhook(doc: Any, msgid_map: dict[str, str], media_link: Callable[[str], str],
                    waba: str | None = None, late: set[str] | None = None,
                    ) -> tuple[list[BridgeCallback], list[str]]:
    """The CleverTap callbacks of one stored webhook, each with the msgId it is ordered
    under and its rank; and what was skipped or noted, named. Statuses of the ``late``
    wamids are left out (their message was failed already)."""
    from ctwa.infra.errors import CtwaError

    converter = WebhookConverter(msgid_map=msgid_map, waba=waba, media_link=media_link,
                                 late=set(late or ()))
    try:
        converter.convert(_with_contacts(doc), "webhook")
    except CtwaError as exc:
        return [], [exc.message]
    made: list[BridgeCallback] = []
    inbound = iter(converter.inbound_ids)
    for callback in converter.result.callbacks:
        made += _split(callback, next(inbound, "") if callback.to == "inbound" else "")
    return made, converter.result.skipped + converter.result.warnings


def _split(callback: Callback, wamid: str) -> list[BridgeCallback]:
    """One status callback per status entry (each is ordered under its own msgId); an
    inbound callback under its own wamid (``in:<wamid>``), so Meta redelivering a webhook
    does not deliver it twice. (Not under its sender: the state keeps one callback per key,
    rank and route, and a user's several messages must all go.)"""
    if callback.to == "inbound":
        key = f"in:{wamid}" if wamid else f"from:{callback.body.get('from', '')}|" \
            f"{callback.body.get('timestamp', '')}"
        return [BridgeCallback("inbound", key, RANKS["inbound"], callback.body)]
    made = []
    for entry in callback.body.get("statuses") or []:
        body = {"payloadVersion": callback.body.get("payloadVersion", "0.1"),
                "statuses": [entry]}
        made.append(BridgeCallback("status", str(entry["msgId"]),
                                   RANKS.get(str(entry["status"]), 9), body))
    return made
