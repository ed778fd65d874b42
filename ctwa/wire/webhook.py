"""Meta's WhatsApp Cloud API webhooks: recognised wherever a CleverTap callback is expected.

BSP engineers start from Meta's webhooks (``object`` / ``entry`` / ``changes`` / ``value`` with
``statuses[]`` and ``messages[]``) and must turn them into CleverTap's callbacks. A webhook sent
as it is looks close enough to fool a glance (both have ``statuses``) yet CleverTap drops it,
so lint, the listener and replay name the format and every difference instead of a generic
schema error. ``ctwa.callbacks.convert`` does the translation.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ctwa.wire.codes import CALLBACK_ERRORS
from ctwa.wire.common import PathPart, Problem, json_path

KIND = "meta-webhook"
TITLE = "Meta WhatsApp Cloud API webhook (not a CleverTap callback)"
CONVERT_HINT = "turn it into CleverTap callbacks with `ctwa callback convert FILE`"

#: Meta (Cloud API) error code -> CleverTap callback error code (1000-1010). One table, kept
#: in the README; codes not listed map to 1009 ("Other") with a warning.
META_ERROR_CODES: dict[int, int] = {
    0: 1000,        # AuthException: the access token could not be validated
    10: 1000,       # permission denied
    190: 1000,      # access token expired
    200: 1000,      # API permission missing
    4: 1004,        # API too many calls (app)
    80007: 1004,    # rate limit issues (WABA)
    130429: 1004,   # rate limit hit (throughput)
    131048: 1004,   # spam rate limit hit
    131056: 1004,   # (business, consumer) pair rate limit hit
    100: 1001,      # invalid parameter
    131008: 1001,   # required parameter is missing
    131009: 1001,   # parameter value is not valid
    132000: 1001,   # number of parameters does not match the template
    132001: 1001,   # template does not exist in that language
    132005: 1001,   # translated text too long
    132007: 1001,   # template format character policy violated
    132012: 1001,   # parameter format does not match the template
    132015: 1001,   # template is paused
    132016: 1001,   # template is disabled
    131021: 1002,   # recipient cannot be the sender
    131030: 1005,   # recipient not in the allowed list (test numbers)
    131026: 1007,   # message undeliverable (not on WhatsApp, old app, terms not accepted)
    131047: 1008,   # re-engagement: more than 24 hours since the user last replied
    131050: 1006,   # the user stopped marketing messages from the business
    131049: 1010,   # Meta chose not to deliver (ecosystem engagement)
    130472: 1010,   # the user's number is part of an experiment
    130497: 1010,   # the business cannot message users in this country
    131031: 1010,   # the business account is locked
    368: 1010,      # temporarily blocked for policy violations
    131000: 1009,   # something went wrong
    131016: 1009,   # service unavailable
    131042: 1009,   # business eligibility: payment issue
    131051: 1009,   # unsupported message type
    131052: 1009,   # media download error
    131053: 1009,   # media upload error
    133010: 1009,   # the business phone number is not registered
}

#: Meta statuses CleverTap has a callback for; the others (``played``, ``deleted``,
#: ``warning``) have none and are left out, each named.
STATUS_MAP = {"sent": "sent", "delivered": "delivered", "read": "read", "failed": "failed"}


def clevertap_code(meta_code: Any) -> tuple[int, bool]:
    """The CleverTap callback code for a Meta error code, and whether the table knew it."""
    if isinstance(meta_code, int) and meta_code in META_ERROR_CODES:
        return META_ERROR_CODES[meta_code], True
    return 1009, False


def _is_value(doc: dict[str, Any]) -> bool:
    """A ``changes[].value``: Meta tags it with ``messaging_product`` and ``metadata``."""
    return doc.get("messaging_product") == "whatsapp" or (
        isinstance(doc.get("metadata"), dict)
        and ("statuses" in doc or "messages" in doc or "contacts" in doc))


def _meta_entries(items: Any, marker: str) -> bool:
    """A list whose items are Meta's, not CleverTap's: Meta's have ``id`` (the wamid) and
    ``recipient_id`` (statuses) or ``id`` and ``from`` (messages), never ``msgId``."""
    if not isinstance(items, list) or not items:
        return False
    first = items[0]
    return isinstance(first, dict) and "msgId" not in first and "id" in first and marker in first


def is_meta_webhook(doc: Any) -> bool:
    """Meta's envelope, a bare ``value``, or bare ``statuses[]`` / ``messages[]`` of Meta's."""
    if not isinstance(doc, dict):
        return False
    if doc.get("object") == "whatsapp_business_account" or (
            "entry" in doc and isinstance(doc.get("entry"), list)
            and set(doc) <= {"object", "entry"}):
        return True
    if _is_value(doc):
        return True
    return (_meta_entries(doc.get("statuses"), "recipient_id")
            or (_meta_entries(doc.get("messages"), "from") and "payloadVersion" not in doc))


def values(doc: dict[str, Any]) -> Iterator[tuple[list[PathPart], dict[str, Any]]]:
    """Every ``value`` in a webhook (however much of the envelope is there), with its path."""
    entries = doc.get("entry")
    if isinstance(entries, list):
        for e, entry in enumerate(entries):
            changes = entry.get("changes") if isinstance(entry, dict) else None
            for c, change in enumerate(changes if isinstance(changes, list) else []):
                value = change.get("value") if isinstance(change, dict) else None
                if isinstance(value, dict):
                    yield ["entry", e, "changes", c, "value"], value
        return
    yield [], doc


def explain(doc: dict[str, Any]) -> list[Problem]:
    """Why a Meta webhook is not a CleverTap callback: the format, then each difference once
    (at the first place it shows), so a user sees what to change rather than a schema dump."""
    problems = [Problem("error", "$", "this is Meta's WhatsApp Cloud API webhook format, not "
                        "CleverTap's callback format", hint=CONVERT_HINT)]
    said: set[str] = set()

    def once(key: str, path: list[PathPart], message: str, hint: str | None = None) -> None:
        if key not in said:
            said.add(key)
            problems.append(Problem("error", json_path(path), message, hint))

    for base, value in values(doc):
        for s, status in enumerate(value.get("statuses") or []):
            if not isinstance(status, dict):
                continue
            where = [*base, "statuses", s]
            if "id" in status:
                once("id", [*where, "id"], "Meta's `id` is the provider's message id (a wamid), "
                     "not the msgId CleverTap sent", hint="send CleverTap's msgId as `msgId`: "
                     "keep a map from your message id to it (`convert --msgid-map`)")
            if "recipient_id" in status:
                once("recipient", [*where, "recipient_id"], "`recipient_id` is not part of a "
                     "CleverTap status", hint="leave it out")
            if status.get("status") not in (*STATUS_MAP, None):
                once(f"status-{status.get('status')}", [*where, "status"],
                     f"CleverTap has no status {status.get('status')!r}",
                     hint="send sent, delivered, read or failed only")
            for r, error in enumerate(status.get("errors") or []):
                code = error.get("code") if isinstance(error, dict) else None
                mapped, known = clevertap_code(code)
                once(f"code-{code}", [*where, "errors", r, "code"],
                     f"Meta's error code {code} is not a CleverTap code (1000-1010)",
                     hint=f"send error: {{code: {mapped}, title: {CALLBACK_ERRORS[mapped]!r}}}"
                     + ("" if known else " (not in ctwa's table: 1009 'Other')"))
        if isinstance(value.get("metadata"), dict):
            once("metadata", [*base, "metadata"], "Meta's `metadata.display_phone_number` is "
                 "CleverTap's `wabaNumber`", hint="send wabaNumber at the top level")
        for m, message in enumerate(value.get("messages") or []):
            if not isinstance(message, dict):
                continue
            where = [*base, "messages", m]
            once("messages", where, "Meta batches messages in `messages[]`; CleverTap takes one "
                 "inbound message per callback, with payloadVersion, from, wabaNumber, "
                 "timestamp and type at the top level")
            kind = message.get("type")
            media = message.get(kind) if isinstance(kind, str) else None
            if isinstance(kind, str) and isinstance(media, dict) and "id" in media \
                    and "url" not in media:
                once("media", [*where, kind, "id"], "Meta gives a media id; CleverTap needs "
                     "`mediaURL`, a URL it can fetch", hint="download the media from the Graph "
                     "API and give its URL")
            if kind == "document":
                once("document", [*where, "type"], 'Meta\'s type "document" is "file" in '
                     "CleverTap's format", hint='write "type": "file"')
            context = message.get("context")
            if isinstance(context, dict) and "id" in context:
                once("context", [*where, "context", "id"], "Meta's `context.id` is the wamid "
                     "of the message replied to", hint="send the msgId CleverTap sent instead")
    return problems


#: the statuses Meta's webhooks carry (Cloud API webhook reference: ``statuses[].status``)
META_STATUSES = ("sent", "delivered", "read", "failed", "deleted", "warning", "played")
#: message types whose content sits under a key of the type's own name (``"type": "text"``
#: with ``"text": {...}``); ``contacts`` is a list, the rest objects. ``unsupported``,
#: ``unknown`` and ``request_welcome`` carry no content key.
META_CONTENT_TYPES = ("text", "image", "audio", "video", "document", "sticker", "location",
                      "contacts", "button", "interactive", "reaction", "order", "system")
META_MESSAGE_TYPES = (*META_CONTENT_TYPES, "unsupported", "unknown", "request_welcome")


def check(doc: Any) -> list[Problem]:
    """A document judged as what it is, Meta's webhook: its envelope (``object``, ``entry[].id``,
    ``changes[].field`` and ``value``), each ``value``'s ``messaging_product`` and
    ``metadata``, and each status and message Meta sends. A correct webhook has no problems;
    that it is not CleverTap's format is :func:`explain`'s subject, for where a callback is
    expected (``--kind status``, the listener, replay)."""
    if not is_meta_webhook(doc):
        return [Problem("error", "$", "not a Meta WhatsApp Cloud API webhook (no `object`, "
                        "`entry`, `value` or Meta's `statuses[]` / `messages[]`)",
                        hint="lint it without --kind to have its format detected")]
    problems: list[Problem] = []

    def error(path: list[PathPart], message: str, hint: str | None = None) -> None:
        problems.append(Problem("error", json_path(path), message, hint))

    def text(node: dict[str, Any], key: str, where: list[PathPart]) -> None:
        if key not in node:
            error([*where, key], f"missing `{key}`", hint=f"Meta always sends `{key}`")
        elif not isinstance(node[key], str) or not node[key]:
            error([*where, key], f"`{key}` must be a non-empty string, got "
                  f"{_shown(node[key])}")

    def epoch(node: dict[str, Any], where: list[PathPart]) -> None:
        value = node.get("timestamp")
        if "timestamp" not in node:
            error([*where, "timestamp"], "missing `timestamp`", hint="Meta sends epoch seconds "
                  'as a string, e.g. "1750263770"')
        elif not (isinstance(value, str) and value.isdecimal()):
            error([*where, "timestamp"], "`timestamp` must be epoch seconds as a string, got "
                  f"{_shown(value)}", hint='e.g. "1750263770"')

    enveloped = "entry" in doc or "object" in doc
    if enveloped:
        if doc.get("object") != "whatsapp_business_account":
            error(["object"], "missing `object`" if "object" not in doc else
                  f"`object` must be \"whatsapp_business_account\", got "
                  f"{_shown(doc['object'])}", hint='write "object": '
                  '"whatsapp_business_account"')
        entries = doc.get("entry")
        if not isinstance(entries, list) or not entries:
            error(["entry"], "`entry` must be a non-empty list of entries")
            entries = []
        for e, entry in enumerate(entries):
            if not isinstance(entry, dict):
                error(["entry", e], f"an entry must be an object, got {_shown(entry)}")
                continue
            text(entry, "id", ["entry", e])  # the WhatsApp Business Account id
            changes = entry.get("changes")
            if not isinstance(changes, list) or not changes:
                error(["entry", e, "changes"], "`changes` must be a non-empty list")
                continue
            for c, change in enumerate(changes):
                where: list[PathPart] = ["entry", e, "changes", c]
                if not isinstance(change, dict):
                    error(where, f"a change must be an object, got {_shown(change)}")
                    continue
                text(change, "field", where)
                if not isinstance(change.get("value"), dict):
                    error([*where, "value"], "`value` must be an object, got "
                          f"{_shown(change.get('value'))}")
    for base, value in values(doc):
        parent = _change(doc, base)
        if parent is not None and parent.get("field") != "messages":
            continue  # another webhook field (template updates, account events): not read here
        if base or "messaging_product" in value or "metadata" in value:
            _check_value_header(value, base, error, text)
        for s, status in enumerate(_listed(value, "statuses", base, error)):
            where = [*base, "statuses", s]
            if not isinstance(status, dict):
                error(where, f"a status must be an object, got {_shown(status)}")
                continue
            text(status, "id", where)
            text(status, "recipient_id", where)
            epoch(status, where)
            if "status" not in status:
                error([*where, "status"], "missing `status`",
                      hint=f"one of {', '.join(META_STATUSES)}")
            elif status["status"] not in META_STATUSES:
                error([*where, "status"], f"`status` {_shown(status['status'])} is not "
                      "one Meta sends", hint=f"one of {', '.join(META_STATUSES)}")
            errors = status.get("errors")
            if status.get("status") == "failed" and not (isinstance(errors, list) and errors):
                error([*where, "errors"], "a failed status without `errors`", hint="Meta "
                      "gives the reason as errors: [{code, title}]")
            for r, item in enumerate(errors if isinstance(errors, list) else []):
                if not isinstance(item, dict) or not isinstance(item.get("code"), int) \
                        or isinstance(item.get("code"), bool):
                    error([*where, "errors", r, "code"], "each error needs an integer `code`, "
                          "Meta's error code")
        for m, message in enumerate(_listed(value, "messages", base, error)):
            where = [*base, "messages", m]
            if not isinstance(message, dict):
                error(where, f"a message must be an object, got {_shown(message)}")
                continue
            for key in ("from", "id", "type"):
                text(message, key, where)
            epoch(message, where)
            kind = message.get("type")
            if isinstance(kind, str) and kind and kind not in META_MESSAGE_TYPES:
                problems.append(Problem("warning", json_path([*where, "type"]), f"message "
                                        f"type {kind!r} is not one ctwa knows",
                                        hint=f"Meta's are {', '.join(META_MESSAGE_TYPES)}"))
            if kind in META_CONTENT_TYPES:
                content = message.get(kind)
                wanted = list if kind == "contacts" else dict
                if not isinstance(content, wanted):
                    error([*where, kind], f"a {kind} message carries its content in "
                          f"`{kind}`, " + ("missing" if content is None else
                                           f"got {_shown(content)}"))
    return problems


def _check_value_header(value: dict[str, Any], base: list[PathPart], error: Any,
                        text: Any) -> None:
    if value.get("messaging_product") != "whatsapp":
        error([*base, "messaging_product"], "`messaging_product` must be \"whatsapp\", got "
              f"{_shown(value.get('messaging_product'))}")
    metadata = value.get("metadata")
    if not isinstance(metadata, dict):
        error([*base, "metadata"], "`metadata` must be an object with display_phone_number "
              f"and phone_number_id, got {_shown(metadata)}")
        return
    for key in ("display_phone_number", "phone_number_id"):
        text(metadata, key, [*base, "metadata"])


def _listed(value: dict[str, Any], key: str, base: list[PathPart], error: Any) -> list[Any]:
    items = value.get(key)
    if items is None:
        return []
    if not isinstance(items, list):
        error([*base, key], f"`{key}` must be a list, got {_shown(items)}")
        return []
    return items


def _change(doc: dict[str, Any], base: list[PathPart]) -> dict[str, Any] | None:
    """The ``changes[]`` item a value sits in (None for a bare value)."""
    if len(base) < 4:
        return None
    change = doc["entry"][base[1]]["changes"][base[3]]
    return change if isinstance(change, dict) else None


def _shown(value: Any) -> str:
    import json

    return "nothing" if value is None else json.dumps(value, ensure_ascii=False, default=str)[:60]
