"""The registry of wire formats: name, model, reader, checks, and how to recognise each.

Pydantic adapters are built lazily and cached, so importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import TypeAdapter

from ctwa.wire import callbacks, meta, outbound, profiles, responses, webhook
from ctwa.wire.common import Notes, Problem


def _as_is(raw: Any) -> tuple[Any, Notes]:
    return raw, Notes()


def _no_checks(_: Any) -> list[Problem]:
    return []


@dataclass(frozen=True)
class Kind:
    name: str
    title: str
    model: Any  # a pydantic model class or an annotated union
    normalize: Callable[[Any], tuple[Any, Notes]] = _as_is
    check: Callable[[Any], list[Problem]] = _no_checks

    @property
    def adapter(self) -> TypeAdapter[Any]:
        return _adapter(self.name)

    def json_schema(self) -> dict[str, Any]:
        from pydantic.json_schema import GenerateJsonSchema

        class _NoAutoTitles(GenerateJsonSchema):
            """pydantic titles each field after its name ("Msgid"): noise, left out."""

            def field_title_should_be_set(self, schema: Any) -> bool:
                return False

        schema = self.adapter.json_schema(by_alias=True, schema_generator=_NoAutoTitles)
        schema.setdefault("title", self.title)
        return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("template", "CleverTap template message payload", outbound.TemplatePayload,
             outbound.normalize_outbound, outbound.check_template),
        Kind("freeform", "CleverTap freeform message payload", outbound.FreeformPayload,
             outbound.normalize_outbound, outbound.check_freeform),
        Kind("validation", "CleverTap endpoint validation payload", outbound.TemplatePayload,
             outbound.unwrap_validation, outbound.check_template),
        Kind("response", "Messaging endpoint response", responses.EndpointAnswer,
             check=responses.check_response),
        Kind("status", "Status (DLR) callback", callbacks.StatusCallback,
             callbacks.normalize_status, callbacks.check_status),
        Kind("inbound", "Inbound message callback", callbacks.InboundCallback,
             callbacks.normalize_inbound, callbacks.check_inbound),
        Kind("meta-template", "Meta WhatsApp message template", meta.MetaTemplate,
             check=meta.check_template),
        Kind("meta-page", "Meta template list page (vendor import answer)",
             meta.MetaTemplatePage, check=meta.check_page),
        Kind("upload", "CleverTap profile upload request", profiles.UploadRequest,
             check=profiles.check_request),
        Kind("upload-response", "CleverTap profile upload response", profiles.UploadResponse,
             check=profiles.check_response),
    )
}


@cache
def _adapter(name: str) -> TypeAdapter[Any]:
    return TypeAdapter(KINDS[name].model)


def detect_kind(doc: Any) -> str | None:
    """Guess a document's wire format from its top-level keys, or None if nothing fits."""
    if not isinstance(doc, dict):
        return None
    if webhook.is_meta_webhook(doc):
        return webhook.KIND
    keys = set(doc)
    if keys == {"body"} and isinstance(doc["body"], dict):
        return "validation"
    if "statuses" in keys:
        return "status"
    if "from" in keys:
        return "inbound"
    if "d" in keys:
        return "upload"
    if "processed" in keys or "unprocessed" in keys:
        return "upload-response"
    if doc.get("status") == "fail" and ("error" in keys or "code" in keys):
        return "upload-response"  # CleverTap's refusal, e.g. the 401 body
    if "data" in keys and isinstance(doc["data"], list):
        return "meta-page"
    if {"name", "language", "components"} <= keys:
        return "meta-template"
    if "isTemplate" in keys or {"to", "wabaNumber"} <= keys:
        if doc.get("isTemplate") is False or ("type" in keys and "components" not in keys):
            return "freeform"
        template = doc.get("template")
        if isinstance(template, dict) and template.get("namespace") == (
            outbound.VALIDATION_NAMESPACE
        ):
            return "validation"
        return "template"
    if "status" in keys and doc.get("status") in ("success", "failure"):
        return "response"
    if keys == {"message"}:
        return "response"
    return None
