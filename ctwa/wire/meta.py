"""Meta's WhatsApp template format, as a vendor's import endpoint serves it (FACTS.md).

The format keeps growing, so these models are open: unknown keys are kept, and unknown
statuses, categories, component and button types are flagged by :func:`check_template`, never
rejected by the model.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field

from ctwa.wire.common import OpenModel, Problem, json_path

KNOWN_STATUSES = frozenset({"APPROVED", "PENDING", "REJECTED", "PAUSED", "DISABLED",
                            "IN_APPEAL", "PENDING_DELETION", "DELETED", "LIMIT_EXCEEDED"})
KNOWN_CATEGORIES = frozenset({"AUTHENTICATION", "MARKETING", "UTILITY"})
#: Categories Meta retired in 2023 and still lists on old templates (and in
#: ``previous_category``), with the category Meta files them under now.
LEGACY_CATEGORIES = {
    "TRANSACTIONAL": "UTILITY", "ACCOUNT_UPDATE": "UTILITY", "ALERT_UPDATE": "UTILITY",
    "APPOINTMENT_UPDATE": "UTILITY", "AUTO_REPLY": "UTILITY", "ISSUE_RESOLUTION": "UTILITY",
    "PAYMENT_UPDATE": "UTILITY", "PERSONAL_FINANCE_UPDATE": "UTILITY",
    "RESERVATION_UPDATE": "UTILITY", "SHIPPING_UPDATE": "UTILITY", "TICKET_UPDATE": "UTILITY",
    "TRANSPORTATION_UPDATE": "UTILITY", "OTP": "AUTHENTICATION",
}
#: Meta's limits on a template (FACTS.md): names, buttons in all, URL buttons.
MAX_NAME = 512
MAX_BUTTONS = 10
MAX_URL_BUTTONS = 2
#: Where Meta's GET answers point an authentication template's OTP button: a URL button, not an
#: ``OTP`` one, so it must be recognised by this path.
OTP_URL_PATH = "whatsapp.com/otp/"
KNOWN_COMPONENTS = frozenset({"HEADER", "BODY", "FOOTER", "BUTTONS", "CAROUSEL",
                              "LIMITED_TIME_OFFER"})
KNOWN_BUTTONS = frozenset({"QUICK_REPLY", "URL", "PHONE_NUMBER", "COPY_CODE", "OTP", "FLOW",
                           "CATALOG", "MPM", "SPM"})
KNOWN_HEADER_FORMATS = frozenset({"TEXT", "IMAGE", "VIDEO", "DOCUMENT", "LOCATION", "PRODUCT"})
#: Parts CleverTap's Generic integration cannot send.
UNSENDABLE_BUTTONS = frozenset({"OTP", "FLOW", "CATALOG", "MPM", "SPM"})
UNSENDABLE_HEADERS = frozenset({"PRODUCT"})

#: The label WhatsApp shows on a COPY_CODE button; Meta fixes it and returns no text for it.
COPY_CODE_LABEL = "Copy offer code"

PLACEHOLDER = re.compile(r"\{\{\s*([\w.]+)\s*\}\}")

NonEmpty = Annotated[str, Field(min_length=1)]


class MetaButton(OpenModel):
    type: NonEmpty
    text: str | None = None
    url: str | None = None
    phone_number: str | None = None
    example: list[str] | str | None = None


class MetaComponent(OpenModel):
    type: NonEmpty
    format: str | None = None
    text: str | None = None
    example: dict[str, Any] | None = None
    buttons: list[MetaButton] | None = None
    cards: list[MetaCard] | None = None
    limited_time_offer: dict[str, Any] | None = None


class MetaCard(OpenModel):
    components: list[MetaComponent]


class MetaTemplate(OpenModel):
    name: NonEmpty
    language: NonEmpty
    status: str | None = None
    category: str | None = None
    id: str | None = None
    parameter_format: str | None = None
    components: list[MetaComponent]


class MetaCursors(OpenModel):
    before: str | None = None
    after: str | None = None


class MetaPaging(OpenModel):
    cursors: MetaCursors | None = None
    next: str | None = None


class MetaTemplatePage(OpenModel):
    data: list[MetaTemplate]
    paging: MetaPaging | None = None


MetaComponent.model_rebuild()


def is_approved(status: str | None) -> bool:
    """Only APPROVED templates are delivered by WhatsApp; REJECTED, PENDING, PAUSED, DISABLED,
    IN_APPEAL, ... (any case: 360dialog writes them in lower case) are not. A template with no
    status at all (a hand-written file) is taken as the user gives it."""
    return status is None or status.strip().upper() == "APPROVED"


def is_otp_button(button: MetaButton) -> bool:
    """An OTP button, as created (``type: OTP``) or as Meta's GET returns it (a URL button to
    WhatsApp's one-time-password path)."""
    return button.type.upper() == "OTP" or (
        button.type.upper() == "URL" and OTP_URL_PATH in (button.url or "").lower())


def unsendable_parts(template: MetaTemplate) -> list[str]:
    """What in this template CleverTap cannot send, named for a user ("button 2: FLOW")."""
    parts: list[str] = []

    def visit(components: list[MetaComponent], prefix: str) -> None:
        for comp in components:
            kind = comp.type.upper()
            if kind == "HEADER" and (comp.format or "").upper() in UNSENDABLE_HEADERS:
                parts.append(f"{prefix}header format {comp.format}")
            for b, button in enumerate(comp.buttons or []):
                if button.type.upper() in UNSENDABLE_BUTTONS:
                    parts.append(f"{prefix}button {b}: {button.type}")
                elif is_otp_button(button):
                    parts.append(f"{prefix}button {b}: OTP (a URL to WhatsApp's one-time-"
                                 "password path: an authentication template)")
            for c, card in enumerate(comp.cards or []):
                visit(card.components, f"{prefix}card {c} ")

    visit(template.components, "")
    return parts


def _check_buttons(components: list[MetaComponent], path: list[Any]) -> list[Problem]:
    buttons = [b for comp in components for b in comp.buttons or []]
    problems: list[Problem] = []
    if len(buttons) > MAX_BUTTONS:
        problems.append(Problem("error", json_path(path), f"{len(buttons)} buttons; Meta "
                                f"allows {MAX_BUTTONS}"))
    urls = [b for b in buttons if b.type.upper() == "URL" and not is_otp_button(b)]
    if len(urls) > MAX_URL_BUTTONS:
        problems.append(Problem("error", json_path(path), f"{len(urls)} URL buttons; Meta "
                                f"allows {MAX_URL_BUTTONS}"))
    return problems


def _check_components(components: list[MetaComponent], path: list[Any]) -> list[Problem]:
    problems = _check_buttons(components, path)
    headers = [i for i, c in enumerate(components) if c.type.upper() == "HEADER"]
    if len(headers) > 1:
        problems.append(Problem("error", json_path([*path, headers[1]]), f"{len(headers)} "
                                "HEADER components; a template has at most one",
                                hint="keep one header"))
    for i, comp in enumerate(components):
        where = [*path, i]
        kind = comp.type.upper()
        if kind not in KNOWN_COMPONENTS:
            problems.append(Problem("warning", json_path([*where, "type"]),
                                    f"unknown component type {comp.type!r}; kept as it is"))
        if kind == "HEADER":
            fmt = (comp.format or "").upper()
            if fmt not in KNOWN_HEADER_FORMATS:
                problems.append(Problem("warning", json_path([*where, "format"]),
                                        f"unknown header format {comp.format!r}"))
            if fmt == "TEXT" and comp.text and len(comp.text) > 60:
                problems.append(Problem("error", json_path([*where, "text"]),
                                        f"header text is {len(comp.text)} characters; Meta "
                                        "allows 60"))
        if kind == "BODY":
            if comp.text is None:
                problems.append(Problem("error", json_path([*where, "text"]), "body has no text"))
            elif len(comp.text) > 1024:
                problems.append(Problem("error", json_path([*where, "text"]),
                                        f"body text is {len(comp.text)} characters; Meta "
                                        "allows 1024"))
        if kind == "FOOTER" and comp.text and len(comp.text) > 60:
            problems.append(Problem("error", json_path([*where, "text"]),
                                    f"footer is {len(comp.text)} characters; Meta allows 60"))
        for b, button in enumerate(comp.buttons or []):
            if button.type.upper() not in KNOWN_BUTTONS:
                problems.append(Problem("warning", json_path([*where, "buttons", b, "type"]),
                                        f"unknown button type {button.type!r}; kept as it is"))
            elif button.type.upper() in UNSENDABLE_BUTTONS:
                problems.append(Problem("warning", json_path([*where, "buttons", b, "type"]),
                                        f"CleverTap cannot send {button.type} buttons"))
        if comp.cards is not None and len(comp.cards) > 10:
            problems.append(Problem("error", json_path([*where, "cards"]),
                                    f"{len(comp.cards)} cards; Meta allows 10"))
        for c, card in enumerate(comp.cards or []):
            problems += _check_components(card.components, [*where, "cards", c, "components"])
    return problems


def check_template(template: MetaTemplate, path: list[Any] | None = None) -> list[Problem]:
    base = path or []
    problems: list[Problem] = []
    if template.status and template.status.upper() not in KNOWN_STATUSES:
        problems.append(Problem("warning", json_path([*base, "status"]),
                                f"unknown status {template.status!r}; kept as it is"))
    category = (template.category or "").upper()
    if category in LEGACY_CATEGORIES:
        problems.append(Problem("warning", json_path([*base, "category"]),
                                f"legacy category {template.category!r}: Meta retired it and "
                                f"files such templates under {LEGACY_CATEGORIES[category]}",
                                hint="kept as it is; CleverTap sends it the same way"))
    elif category and category not in KNOWN_CATEGORIES:
        problems.append(Problem("warning", json_path([*base, "category"]),
                                f"unknown category {template.category!r}; kept as it is"))
    if len(template.name) > MAX_NAME:
        problems.append(Problem("error", json_path([*base, "name"]), f"name is "
                                f"{len(template.name)} characters; Meta allows {MAX_NAME}"))
    if not any(c.type.upper() == "BODY" for c in template.components):
        problems.append(Problem("error", json_path([*base, "components"]),
                                "no BODY component"))
    return problems + _check_components(template.components, [*base, "components"])


def check_page(page: MetaTemplatePage) -> list[Problem]:
    problems: list[Problem] = []
    for i, template in enumerate(page.data):
        problems += check_template(template, ["data", i])
    return problems
