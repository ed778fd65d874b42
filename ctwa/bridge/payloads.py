"""What arrives on ``POST /messages``, read with ctwa's own wire models.

One function, :func:`read_payload`, tells the three payloads CleverTap sends apart (the
validation payload, plain or wrapped in ``{"body": ...}`` (ERRATA 13); template; freeform) and
reads them as ``ctwa lint`` does (the spec's published variants accepted, ERRATA rows 1-7).
Anything else is a :class:`Refusal` carrying the messaging error code CleverTap understands
(2001 invalid template parameters, 2002 invalid phone number, 2004 other) and one line saying
what is wrong, where.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ctwa.wire import outbound as out

Kind = Literal["validation", "template", "freeform"]


class Refusal(Exception):
    """A payload the bridge answers with ``{"status": "failure", "error": {code, message}}``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Payload:
    kind: Kind
    model: Any  # TemplatePayload or a Freeform* model; None for validation
    msg_id: str | None
    raw: dict[str, Any]


def _kind_of(doc: dict[str, Any]) -> Kind | None:
    if out.is_wrapped(doc) and isinstance(doc["body"], dict):
        return "validation"
    template = doc.get("template")
    if isinstance(template, dict) and template.get("namespace") == out.VALIDATION_NAMESPACE:
        return "validation"
    if doc.get("isTemplate") is True or "components" in doc or "template" in doc:
        return "template"
    if doc.get("isTemplate") is False or "type" in doc:
        return "freeform"
    return None


def is_possible_number(number: str) -> bool:
    """Whether a number could be anyone's: digits with an assigned country code and a
    possible length for it (phonenumbers' rule), without ``parse``'s cost: the country code
    is read off the digits (at most one of 1, 2 or 3 digits is assigned, as ITU allots them)."""
    import phonenumbers
    from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

    digits = number.strip().removeprefix("+")
    if not digits.isdecimal() or not 6 <= len(digits) <= 15 or digits[0] == "0":
        return False
    for size in (1, 2, 3):
        code = int(digits[:size])
        if code in COUNTRY_CODE_TO_REGION_CODE:
            national = digits[size:]
            if not national:
                return False
            candidate = phonenumbers.PhoneNumber(country_code=code,
                                                 national_number=int(national))
            return bool(phonenumbers.is_possible_number(candidate))
    return False


def _fast_read(doc: dict[str, Any], kind: Kind) -> Any:
    """The model of a payload already in the canonical form, checked for what ``lint``
    calls errors, at a fraction of ``lint_document``'s cost (its warnings, such as
    ``check_media_urls``, walk the whole tree: 0.5 ms a payload, which 1500 in flight turn
    into a second). None when the full reader must decide: a published variant to
    normalise, or an error to describe."""
    from pydantic import ValidationError

    from ctwa.wire.kinds import KINDS

    try:
        model = KINDS[kind].adapter.validate_python(doc)
    except ValidationError:
        return None
    if kind == "template":
        problems = out._check_components(model.components, ["components"])
        if any(p.severity == "error" for p in problems):
            return None
    return model


def read_payload(doc: Any) -> Payload:
    """Read one ``POST /messages`` body; raise :class:`Refusal` when it cannot be sent."""
    from ctwa.wire.lint import lint_document

    if not isinstance(doc, dict):
        raise Refusal(2004, "the body is not a JSON object (CleverTap sends a template, "
                      "freeform or validation payload)")
    kind = _kind_of(doc)
    if kind is None:
        raise Refusal(2004, "unknown payload: neither a template (isTemplate true, template, "
                      "components) nor a freeform message (isTemplate false, type)")
    if kind == "validation":
        inner = out.inner_payload(doc)
        return Payload("validation", None, str(inner.get("msgId") or "") or None, doc)
    number = doc.get("to")
    if isinstance(number, str) and number and not is_possible_number(number):
        raise Refusal(2002, f"`to` {number[:40]!r} is not a possible phone number (digits "
                      "with an assigned country code)")
    model = _fast_read(doc, kind)
    if model is not None:
        return Payload(kind, model, model.msgId, doc)
    result = lint_document(doc, kind, "payload")
    if not result.ok:
        first = result.errors[0]
        code = 2002 if first.path == "$.to" else 2001 if kind == "template" else 2004
        more = f" (+{len(result.errors) - 1} more)" if len(result.errors) > 1 else ""
        raise Refusal(code, f"{kind} payload: {first.path}: {first.message}{more}")
    model = result.value
    return Payload(kind, model, model.msgId, doc)
