"""Meta's WhatsApp Cloud API webhooks -> the CleverTap callbacks they correspond to.

What a BSP's webhook handler has to do, done once by a tool so the engineer can compare: each
``value.statuses[]`` becomes a status callback (sent, delivered, read, failed with its Meta
error code mapped to 1000-1010 through :data:`ctwa.wire.webhook.META_ERROR_CODES`), each
``value.messages[]`` an inbound callback. What CleverTap cannot represent (``played``,
reactions, contacts, interactive replies, ...) is left out and named; nothing is dropped
silently. Meta's ids are the provider's (wamids): a msgid map turns them into the msgIds
CleverTap sent, and without one they become ``unmapped|<wamid>`` placeholders that ctwa names.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ctwa.infra.errors import InputError
from ctwa.infra.textfiles import read_text
from ctwa.wire.callbacks import CALLBACK_VERSION
from ctwa.wire.codes import CALLBACK_ERRORS
from ctwa.wire.outbound import MSG_ID_MAX
from ctwa.wire.webhook import STATUS_MAP, clevertap_code, is_meta_webhook, values

PLACEHOLDER_PREFIX = "unmapped|"
PLACEHOLDER_MEDIA = "https://media.invalid/meta-media/"
#: Meta message types CleverTap's inbound format has no form for.
UNREPRESENTABLE = ("reaction", "contacts", "interactive", "sticker", "order", "system",
                   "unsupported", "request_welcome", "referral")


@dataclass
class Callback:
    """One CleverTap callback: where it goes (``status`` or ``inbound``) and its body."""

    to: str
    body: dict[str, Any]


@dataclass
class Conversion:
    callbacks: list[Callback] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # what has no CleverTap form, named
    placeholders: int = 0  # msgIds and context ids not found in the map

    def as_dict(self) -> dict[str, Any]:
        return {"callbacks": [{"to": c.to, "body": c.body} for c in self.callbacks],
                "warnings": self.warnings, "skipped": self.skipped,
                "placeholders": self.placeholders}


def load_msgid_map(path: Path) -> dict[str, str]:
    """Provider id -> CleverTap msgId, from a CSV (two columns, a header allowed), or a JSON
    or YAML mapping."""
    text = read_text(path)
    if path.suffix.lower() == ".csv":
        mapping: dict[str, str] = {}
        for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
            if not row or (number == 1 and not row[0].startswith("wamid") and len(row) == 2
                           and "|" not in row[1]):
                continue  # an empty line, or the header
            if len(row) != 2:
                raise InputError(f"{path}: row {number}: expected two columns, provider id "
                                 "and msgId", hint="e.g. wamid.HBgL...,i|123|456|1|0")
            mapping[row[0].strip()] = row[1].strip()
        return mapping
    from ctwa.infra.textfiles import load_yaml

    data = load_yaml(text, str(path))
    if not isinstance(data, dict) or not all(isinstance(v, (str, int)) for v in data.values()):
        raise InputError(f"{path}: expected a mapping of provider id to msgId",
                         hint='e.g. {"wamid.HBgL...": "i|123|456|1|0"}, or a CSV file')
    return {str(k): str(v) for k, v in data.items()}


@dataclass
class Converter:
    msgid_map: dict[str, str] = field(default_factory=dict)
    waba: str | None = None
    result: Conversion = field(default_factory=Conversion)

    def convert(self, doc: Any, source: str) -> None:
        """Add the callbacks of one webhook document (a JSON array of them is several)."""
        docs = doc if isinstance(doc, list) else [doc]
        for n, item in enumerate(docs):
            where = source if len(docs) == 1 else f"{source}[{n}]"
            if not is_meta_webhook(item):
                from ctwa.wire.kinds import detect_kind

                kind = detect_kind(item)
                said = (f"it is already a CleverTap {kind} callback" if kind in
                        ("status", "inbound") else "it is not Meta's webhook format")
                raise InputError(f"{where}: nothing to convert: {said}",
                                 hint="give Meta's WhatsApp Cloud API webhook (object, entry, "
                                 "changes, value), a value, or its statuses/messages")
            for path, value in values(item):
                self._value(value, f"{where}: ${_dotted(path)}")

    def _id(self, provider_id: Any) -> str:
        text = str(provider_id)
        if text in self.msgid_map:
            return self.msgid_map[text]
        self.result.placeholders += 1
        # the tail of a wamid is its unique part; the whole placeholder stays within the 60
        # characters CleverTap's msgIds take, so the output lints clean
        return PLACEHOLDER_PREFIX + text[-(MSG_ID_MAX - len(PLACEHOLDER_PREFIX)):]

    def _value(self, value: dict[str, Any], where: str) -> None:
        metadata: dict[str, Any] = (value["metadata"] if isinstance(value.get("metadata"), dict)
                                    else {})
        waba = self.waba or str(metadata.get("display_phone_number") or "") or None
        statuses = [self._status(s, f"{where}.statuses[{i}]")
                    for i, s in enumerate(value.get("statuses") or [])]
        entries = [s for s in statuses if s is not None]
        if entries:
            self.result.callbacks.append(Callback("status", {"payloadVersion": CALLBACK_VERSION,
                                                             "statuses": entries}))
        for i, message in enumerate(value.get("messages") or []):
            body = self._message(message, waba, f"{where}.messages[{i}]")
            if body is not None:
                self.result.callbacks.append(Callback("inbound", body))

    def _status(self, status: Any, where: str) -> dict[str, Any] | None:
        if not isinstance(status, dict):
            self.result.skipped.append(f"{where}: not an object")
            return None
        kind = status.get("status")
        if kind not in STATUS_MAP:
            self.result.skipped.append(f"{where}: status {kind!r} has no CleverTap callback "
                                       "(CleverTap knows sent, delivered, read, failed)")
            return None
        entry: dict[str, Any] = {"msgId": self._id(status.get("id")),
                                 "status": STATUS_MAP[kind],
                                 "timestamp": str(status.get("timestamp") or "")}
        if kind == "failed":
            errors = status.get("errors") if isinstance(status.get("errors"), list) else []
            first = errors[0] if errors and isinstance(errors[0], dict) else {}
            code, known = clevertap_code(first.get("code"))
            if not known:
                self.result.warnings.append(
                    f"{where}: Meta error code {first.get('code')} is not in ctwa's table; "
                    "sent as 1009 (Other)")
            entry["error"] = {"code": code, "title": CALLBACK_ERRORS[code]}
        return entry

    def _message(self, message: Any, waba: str | None, where: str) -> dict[str, Any] | None:
        if not isinstance(message, dict):
            self.result.skipped.append(f"{where}: not an object")
            return None
        kind = str(message.get("type"))
        if kind in UNREPRESENTABLE or kind not in _CONTENT:
            article = "an" if kind[:1] in "aeiou" else "a"
            self.result.skipped.append(f"{where}: {article} {kind} message has no CleverTap "
                                       "inbound form (CleverTap takes text, image, file, "
                                       "audio, video and location)")
            return None
        if not waba:
            raise InputError(f"{where}: no business number: the webhook has no "
                             "metadata.display_phone_number", hint="pass --waba NUMBER")
        body: dict[str, Any] = {"payloadVersion": CALLBACK_VERSION,
                                "from": str(message.get("from", "")), "wabaNumber": waba,
                                "timestamp": str(message.get("timestamp") or "")}
        context = message.get("context")
        if isinstance(context, dict) and context.get("id"):
            body["context"] = {"id": self._id(context["id"])}
        ct_type, key, content = _CONTENT[kind](self, message.get(kind) or {}, where)
        body["type"] = ct_type
        body[key] = content
        return body

    def _media(self, media: dict[str, Any], where: str) -> str:
        if isinstance(media.get("url"), str) and media["url"]:
            return str(media["url"])
        self.result.warnings.append(f"{where}: Meta gives media id {media.get('id')}, not a "
                                    "URL; mediaURL is a placeholder: CleverTap needs a URL it "
                                    "can fetch")
        return PLACEHOLDER_MEDIA + str(media.get("id", "unknown"))


def _text(conv: Converter, content: Any, where: str) -> tuple[str, str, dict[str, Any]]:
    return "text", "text", {"body": str(content.get("body", ""))}


def _button(conv: Converter, content: Any, where: str) -> tuple[str, str, dict[str, Any]]:
    """A tap on a template's quick-reply button: CleverTap receives it as text."""
    conv.result.warnings.append(f"{where}: a quick-reply button tap is sent as a text message "
                                "with the button's text")
    return "text", "text", {"body": str(content.get("text") or content.get("payload") or "")}


def _visual(kind: str) -> Any:
    def convert(conv: Converter, content: Any, where: str) -> tuple[str, str, dict[str, Any]]:
        out = {"mediaURL": conv._media(content, where)}
        if content.get("mime_type"):
            out["mimetype"] = str(content["mime_type"])
        if content.get("caption") and kind != "audio":
            out["caption"] = str(content["caption"])
        return kind, kind, out

    return convert


def _document(conv: Converter, content: Any, where: str) -> tuple[str, str, dict[str, Any]]:
    out = {"mediaURL": conv._media(content, where)}
    for meta_key, key in (("mime_type", "mimeType"), ("caption", "caption"),
                          ("filename", "filename")):
        if content.get(meta_key):
            out[key] = str(content[meta_key])
    return "file", "document", out


def _location(conv: Converter, content: Any, where: str) -> tuple[str, str, dict[str, Any]]:
    out = {"latitude": str(content.get("latitude", "")),
           "longitude": str(content.get("longitude", ""))}
    for key in ("name", "address", "url"):
        if content.get(key):
            out[key] = str(content[key])
    return "location", "location", out


_CONTENT = {"text": _text, "button": _button, "image": _visual("image"),
            "video": _visual("video"), "audio": _visual("audio"), "document": _document,
            "location": _location}


def _dotted(path: list[Any]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def to_yaml(conversion: Conversion, sources: list[str]) -> str:
    """The callbacks as a YAML stream, one document each: ``ctwa lint`` checks it as it is
    and ``ctwa callback replay`` sends it as it is (each to its route, values literal)."""
    header = ("# CleverTap callbacks converted by `ctwa callback convert` from "
              f"{', '.join(sources)}\n")
    if not conversion.callbacks:
        return header
    return header + yaml.safe_dump_all([c.body for c in conversion.callbacks],
                                       allow_unicode=True, sort_keys=False,
                                       explicit_start=True, width=1000)
