"""What a BSP sends back to CleverTap: status (DLR) callbacks and inbound message callbacks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field

from ctwa.wire.codes import CALLBACK_ERRORS, contradicting_title
from ctwa.wire.common import (
    Notes,
    PathPart,
    Problem,
    WireModel,
    as_dict,
    as_list,
    json_path,
    tree_copy,
)
from ctwa.wire.outbound import check_msg_id

CALLBACK_VERSION = "0.1"
STATUSES = ("sent", "delivered", "read", "failed", "clicked")
INBOUND_TYPES = ("text", "image", "file", "audio", "video", "location")

NonEmpty = Annotated[str, Field(min_length=1)]
EpochText = Annotated[str, Field(pattern=r"^\d{9,13}$")]


# --- status callbacks ------------------------------------------------------------------------


class StatusError(WireModel):
    code: Annotated[int, Field(ge=1000, le=1010)]
    title: str


class _Status(WireModel):
    msgId: NonEmpty
    timestamp: EpochText


class SentStatus(_Status):
    status: Literal["sent"] = "sent"


class DeliveredStatus(_Status):
    status: Literal["delivered"] = "delivered"


class ReadStatus(_Status):
    status: Literal["read"] = "read"


class FailedStatus(_Status):
    status: Literal["failed"] = "failed"
    error: StatusError


class ClickedStatus(WireModel):
    msgId: NonEmpty
    status: Literal["clicked"] = "clicked"
    timestamp: EpochText | None = None
    url: NonEmpty
    shortUrl: str | None = None
    userAgent: str | None = None


StatusEntry = Annotated[
    SentStatus | DeliveredStatus | ReadStatus | FailedStatus | ClickedStatus,
    Field(discriminator="status"),
]


class StatusCallback(WireModel):
    payloadVersion: str = CALLBACK_VERSION
    statuses: Annotated[list[StatusEntry], Field(min_length=1)]


# --- inbound callbacks -----------------------------------------------------------------------


class Context(WireModel):
    id: NonEmpty


class InboundText(WireModel):
    body: str


class InboundMedia(WireModel):
    mediaURL: NonEmpty
    mimetype: str | None = None
    caption: str | None = None


class InboundAudioMedia(WireModel):
    mediaURL: NonEmpty
    mimetype: str | None = None


class InboundDocumentMedia(WireModel):
    mediaURL: NonEmpty
    mimeType: str | None = None
    caption: str | None = None
    filename: str | None = None


class InboundLocationData(WireModel):
    latitude: NonEmpty
    longitude: NonEmpty
    name: str | None = None
    address: str | None = None
    url: str | None = None


class _Inbound(WireModel):
    payloadVersion: str = CALLBACK_VERSION
    from_: NonEmpty = Field(alias="from")
    wabaNumber: NonEmpty
    timestamp: EpochText
    context: Context | None = None


class InboundTextMessage(_Inbound):
    type: Literal["text"] = "text"
    text: InboundText


class InboundImageMessage(_Inbound):
    type: Literal["image"] = "image"
    image: InboundMedia


class InboundVideoMessage(_Inbound):
    type: Literal["video"] = "video"
    video: InboundMedia


class InboundAudioMessage(_Inbound):
    type: Literal["audio"] = "audio"
    audio: InboundAudioMedia


class InboundFileMessage(_Inbound):
    """A document: ``type: file`` with the object under ``document`` (ERRATA 8, as sampled)."""

    type: Literal["file"] = "file"
    document: InboundDocumentMedia


class InboundLocationMessage(_Inbound):
    type: Literal["location"] = "location"
    location: InboundLocationData


InboundCallback = Annotated[
    InboundTextMessage | InboundImageMessage | InboundVideoMessage | InboundAudioMessage
    | InboundFileMessage | InboundLocationMessage,
    Field(discriminator="type"),
]


# --- readers ---------------------------------------------------------------------------------


def _normalize_version(doc: dict[str, Any], notes: Notes) -> None:
    notes.rename(doc, "payloadversion", "payloadVersion", [], errata=2)
    notes.stringify(doc, "payloadVersion", [], errata=2, what="payloadVersion")


def normalize_status(raw: Any) -> tuple[Any, Notes]:
    """Rewrite published status-callback variants (ERRATA 2, 11, 12) into the canonical form."""
    notes = Notes()
    doc = as_dict(raw)
    if doc is None:
        return raw, notes
    doc = tree_copy(doc)
    _normalize_version(doc, notes)
    for i, entry in enumerate(as_list(doc.get("statuses"))):
        if not isinstance(entry, dict):
            continue
        path: list[PathPart] = ["statuses", i]
        status = entry.get("status")
        if isinstance(status, str) and status != status.lower() and status.lower() in STATUSES:
            entry["status"] = status.lower()
            notes.warn([*path, "status"], f'status "{status}" is capitalised; the canonical '
                       f'form is "{status.lower()}"', hint=f'write "{status.lower()}"', errata=11)
        if "ts" in entry and "timestamp" not in entry:
            # the warnings name the key as written: `ts`, a number in the spec's sample
            notes.stringify(entry, "ts", path, errata=12, what="`ts` (the timestamp)")
            notes.rename(entry, "ts", "timestamp", path, errata=11)
        else:
            notes.stringify(entry, "timestamp", path, errata=12, what="timestamp")
        error = as_dict(entry.get("error"))
        if error is not None:
            code = error.get("code")
            # a string of thousands of digits stays a string (and an error): int() of it
            # raises, and no table has such a code
            if isinstance(code, str) and code.strip().isdecimal() and len(code.strip()) <= 9:
                error["code"] = int(code)
                notes.warn([*path, "error", "code"], "error.code is a string; the canonical "
                           "form is a number", hint=f"write {int(code)}")
    return doc, notes


def normalize_inbound(raw: Any) -> tuple[Any, Notes]:
    """Rewrite published inbound-callback variants (ERRATA 2, 8, 9, 12) into canonical form."""
    notes = Notes()
    doc = as_dict(raw)
    if doc is None:
        return raw, notes
    doc = tree_copy(doc)
    _normalize_version(doc, notes)
    notes.stringify(doc, "timestamp", [], errata=12, what="timestamp")
    if doc.get("type") == "document":
        doc["type"] = "file"
        notes.warn(["type"], 'type "document" is not in the contract; documents arrive as '
                   '"file"', hint='write "type": "file"', errata=8)
    if doc.get("type") == "file":
        notes.rename(doc, "file", "document", [], errata=8)
        document = as_dict(doc.get("document"))
        if document is not None:
            notes.rename(document, "mimetype", "mimeType", ["document"], errata=8)
    location = as_dict(doc.get("location"))
    if location is not None:
        notes.rename(location, "lattitude", "latitude", ["location"], errata=9)
        notes.rename(location, "Longitude", "longitude", ["location"], errata=9)
        for key in ("latitude", "longitude"):
            notes.stringify(location, key, ["location"], errata=9, what=key)
    return doc, notes


# --- checks ----------------------------------------------------------------------------------


def check_status(callback: StatusCallback) -> list[Problem]:
    problems: list[Problem] = []
    for i, entry in enumerate(callback.statuses):
        problems += check_msg_id(entry.msgId, ["statuses", i, "msgId"])
        if isinstance(entry, FailedStatus):
            expected = CALLBACK_ERRORS.get(entry.error.code)
            if expected and not entry.error.title.strip():
                problems.append(Problem("warning", json_path(["statuses", i, "error", "title"]),
                                        "empty error title", hint=f'e.g. "{expected}"'))
            belongs = contradicting_title(entry.error.code, entry.error.title)
            if expected and belongs is not None:
                problems.append(Problem(
                    "warning", json_path(["statuses", i, "error", "title"]),
                    f'title "{entry.error.title[:80]}" is the meaning of {belongs} '
                    f'("{CALLBACK_ERRORS[belongs]}"), not of {entry.error.code} ("{expected}"): '
                    "CleverTap counts the failure by its code",
                    hint=f"send code {belongs} for this failure (or the title of "
                    f"{entry.error.code} if the code is right)", errata=19))
        if isinstance(entry, ClickedStatus) and entry.timestamp is None:
            problems.append(Problem("warning", json_path(["statuses", i]), "clicked status "
                                    "without a timestamp", hint="add timestamp (epoch seconds "
                                    "as a string)", errata=11))
    return problems


def check_inbound(callback: Any) -> list[Problem]:
    if callback.context is not None:
        return check_msg_id(callback.context.id, ["context", "id"])
    return []


# --- wrappers and callback URLs --------------------------------------------------------------

#: Envelopes middlewares put around a callback instead of posting it as it is: the keys the
#: envelope may have besides the one holding the callback.
WRAPPER_KEYS = ("payload", "body", "data", "callback", "message", "event")
WRAPPER_EXTRAS = frozenset({"url", "callbackUrl", "callback_url", "endpoint", "target",
                            "headers", "method", "type", "event", "id", "timestamp",
                            "retry", "attempt", "attempts"})


@dataclass(frozen=True)
class Wrapped:
    """A callback found inside a known envelope: ``{url, payload}``, ``{body}``, ..."""

    key: str  # the key holding the callback
    keys: tuple[str, ...]  # the envelope's keys as written
    inner: Any  # the callback itself
    encoded: bool = False  # the callback was a JSON string inside the envelope

    @property
    def shape(self) -> str:
        return "{" + ", ".join(self.keys) + "}"

    def problem(self) -> Problem:
        how = " as a JSON string" if self.encoded else ""
        return Problem("error", "$", f"the callback is wrapped in `{self.shape}`{how}: "
                       "CleverTap reads the body as the callback itself, so it drops this one",
                       hint=f"post the inner object (the value of `{self.key}`) as the body")


def _callback_like(value: Any) -> bool:
    return isinstance(value, dict) and ("statuses" in value or "from" in value
                                        or "entry" in value)


def find_wrapper(doc: Any, depth: int = 0) -> Wrapped | None:
    """The callback inside a known envelope (nested envelopes too), or None."""
    import json

    if not isinstance(doc, dict) or depth > 3 or "statuses" in doc or "from" in doc:
        return None
    for key in WRAPPER_KEYS:
        if key not in doc or not set(doc) - {key} <= WRAPPER_EXTRAS | set(WRAPPER_KEYS):
            continue
        value, encoded = doc[key], False
        if isinstance(value, str) and value.lstrip().startswith("{") and len(value) < 1 << 20:
            try:
                value, encoded = json.loads(value), True
            except (ValueError, RecursionError):
                continue
        if _callback_like(value):
            return Wrapped(key, tuple(str(k) for k in doc), value, encoded)
        deeper = find_wrapper(value, depth + 1)
        if deeper is not None:
            keys = (*(str(k) for k in doc),)
            return Wrapped(key, keys, deeper.inner, deeper.encoded or encoded)
    return None


#: Query values that mean the URL was built from a variable that was never set.
PLACEHOLDER_VALUES = frozenset({"", "undefined", "null", "none", "nan", "nil",
                                "[object object]"})


def check_callback_url(url: str, where: str = "the callback URL") -> list[Problem]:
    """Warnings for a callback URL whose query has empty or ``undefined``/``null`` values:
    CleverTap's callback URLs carry the account in the query, so such a callback reaches
    no account."""
    from urllib.parse import parse_qsl, urlsplit

    try:
        query = urlsplit(url).query
    except ValueError:
        return []
    problems = []
    for key, value in parse_qsl(query, keep_blank_values=True):
        if value.strip().lower() in PLACEHOLDER_VALUES:
            shown = f"{key}={value}" if value else f"{key}= (empty)"
            problems.append(Problem(
                "warning", f"?{key}", f"{where} has `{shown}` in its query: CleverTap's "
                "callback URLs carry the account in the query, so this callback reaches none",
                hint="post to the callback URL exactly as CleverTap gave it (the variable "
                f"that fills `{key}` was never set)"))
    return problems
