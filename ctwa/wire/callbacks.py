"""What a BSP sends back to CleverTap: status (DLR) callbacks and inbound message callbacks."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from ctwa.wire.codes import CALLBACK_ERRORS
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
            notes.rename(entry, "ts", "timestamp", path, errata=11)
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
        if isinstance(entry, ClickedStatus) and entry.timestamp is None:
            problems.append(Problem("warning", json_path(["statuses", i]), "clicked status "
                                    "without a timestamp", hint="add timestamp (epoch seconds "
                                    "as a string)", errata=11))
    return problems


def check_inbound(callback: Any) -> list[Problem]:
    if callback.context is not None:
        return check_msg_id(callback.context.id, ["context", "id"])
    return []
