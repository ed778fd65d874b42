"""A template send checked against the mock's own templates, as Meta checks it.

Following cloud-api/guides/send-message-templates and cloud-api/support/error-codes: the
template must exist in that language (132001, which also covers "not approved"), not be paused
(132015) or disabled (132016); each component's parameters must match the template's
placeholders in number (132000) and kind (132012): header text placeholders or the header's
media/location format, body placeholders (by ``parameter_name`` for NAMED templates), a URL
button's ``{{1}}`` suffix, a copy-code button's coupon, the limited-time offer's expiry when
the template has one, and every carousel card the same way.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from ctwa.send.build import is_named
from ctwa.send.build import placeholders as _placeholders
from ctwa.wire.cloudapi import (
    BodyComponent,
    ButtonComponent,
    CarouselComponent,
    HeaderComponent,
    OfferComponent,
    TemplateContent,
)
from ctwa.wire.meta import MetaComponent, MetaTemplate

Refusal = tuple[int, str]
_HEADER_KINDS = {"IMAGE": "image", "VIDEO": "video", "DOCUMENT": "document",
                 "LOCATION": "location"}
_BUTTON_SUBTYPES = {"QUICK_REPLY": "quick_reply", "URL": "url", "COPY_CODE": "copy_code"}


@functools.lru_cache(maxsize=4096)
def placeholders(text: str | None, named: bool) -> tuple[str, ...]:
    """The template text's placeholder keys (cached: a campaign checks one template many
    times)."""
    return tuple(_placeholders(text, named))


class TemplateBook:
    """The mock's templates by (name, language), parsed once."""

    def __init__(self, templates: Sequence[dict[str, Any]]) -> None:
        self.raw = list(templates)
        self.by_key: dict[tuple[str, str], MetaTemplate] = {}
        self.named: dict[tuple[str, str], bool] = {}
        for item in templates:
            template = MetaTemplate.model_validate(item)
            self.by_key[(template.name, template.language)] = template
            self.named[(template.name, template.language)] = is_named(template)

    def find(self, name: str, language: str) -> MetaTemplate | None:
        return self.by_key.get((name, language))


def check_send(content: TemplateContent, book: TemplateBook) -> Refusal | None:
    """Meta's refusal of this template send, or None when Meta would accept it."""
    template = book.find(content.name, content.language.code)
    if template is None:
        return 132001, (f"template name ({content.name}) does not exist in "
                        f"{content.language.code}")
    status = (template.status or "APPROVED").upper()
    if status == "PAUSED":
        return 132015, f"template {content.name} is paused due to low quality"
    if status == "DISABLED":
        return 132016, f"template {content.name} is disabled"
    if status != "APPROVED":
        return 132001, (f"template name ({content.name}) is {status.lower()} in "
                        f"{content.language.code}, not approved")
    given = list(content.components or [])
    carousels = [c for c in given if isinstance(c, CarouselComponent)]
    offers = [c for c in given if isinstance(c, OfferComponent)]
    own = [c for c in given if isinstance(c, (HeaderComponent, BodyComponent, ButtonComponent))]
    named = book.named[(template.name, template.language)]
    problem = _check_parts(template.components, own, named, "")
    if problem:
        return problem
    offer = next((c for c in template.components if c.type.upper() == "LIMITED_TIME_OFFER"),
                 None)
    if offer is None and offers:
        return 132000, "limited_time_offer: the template has no limited-time offer"
    expires = bool((offer.limited_time_offer or {}).get("has_expiration")) if offer else False
    if expires and not offers:
        return 132000, ("limited_time_offer: number of params (0) does not match the expected "
                        "number of params (1): the offer has an expiration")
    carousel = next((c for c in template.components if c.type.upper() == "CAROUSEL"), None)
    if carousel is None:
        return (132000, "carousel: the template has no carousel") if carousels else None
    cards = carousel.cards or []
    sent = carousels[0].cards if carousels else []
    if len(sent) != len(cards):
        return 132000, (f"carousel: number of cards ({len(sent)}) does not match the template's "
                        f"({len(cards)})")
    for card in sorted(sent, key=lambda c: c.card_index):
        if card.card_index >= len(cards):
            return 132000, f"carousel: card_index {card.card_index} is not in the template"
        problem = _check_parts(cards[card.card_index].components, list(card.components),
                               named, f"card {card.card_index} ")
        if problem:
            return problem
    return None


def _check_parts(components: list[MetaComponent], given: list[Any], named: bool,
                 where: str) -> Refusal | None:
    headers = [c for c in given if isinstance(c, HeaderComponent)]
    bodies = [c for c in given if isinstance(c, BodyComponent)]
    buttons = [c for c in given if isinstance(c, ButtonComponent)]
    if len(headers) > 1 or len(bodies) > 1:
        return 100, f"{where}components: header and body may each be given once"
    header = next((c for c in components if c.type.upper() == "HEADER"), None)
    problem = _check_header(header, headers[0] if headers else None, named, where)
    if problem:
        return problem
    body = next((c for c in components if c.type.upper() == "BODY"), None)
    problem = _check_text_params("body", body.text if body else None,
                                 bodies[0].parameters if bodies else [], named, where)
    if problem:
        return problem
    return _check_buttons(components, buttons, where)


def _check_header(header: MetaComponent | None, given: HeaderComponent | None, named: bool,
                  where: str) -> Refusal | None:
    fmt = (header.format or "TEXT").upper() if header else None
    if fmt is None or fmt == "TEXT":
        if given is not None and given.parameters[0].type != "text":
            return 132012, (f"{where}header: Format mismatch, expected TEXT, received "
                            f"{given.parameters[0].type.upper()}")
        return _check_text_params("header", header.text if header else None,
                                  given.parameters if given else [], named, where)
    wanted = _HEADER_KINDS.get(fmt)
    if given is None:
        return 132000, (f"{where}header: number of params (0) does not match the expected "
                        f"number of params (1): the template's header is {fmt}")
    kind = given.parameters[0].type
    if kind != wanted:
        return 132012, f"{where}header: Format mismatch, expected {fmt}, received {kind.upper()}"
    return None


def _check_text_params(part: str, text: str | None, params: list[Any], named: bool,
                       where: str) -> Refusal | None:
    keys = placeholders(text, named)
    if len(params) != len(keys):
        return 132000, (f"{where}{part}: number of localizable_params ({len(params)}) does not "
                        f"match the expected number of params ({len(keys)})")
    if named:
        names = [getattr(p, "parameter_name", None) for p in params]
        if any(not n for n in names):
            return 132012, (f"{where}{part}: a NAMED template needs parameter_name on every "
                            "parameter")
        missing = [k for k in keys if k not in names]
        if missing:
            return 132012, (f"{where}{part}: parameter_name {missing[0]} is missing (the "
                            f"template names {', '.join(keys)})")
    return None


def _check_buttons(components: list[MetaComponent], given: list[ButtonComponent],
                   where: str) -> Refusal | None:
    defined = [b for c in components if c.type.upper() == "BUTTONS" for b in c.buttons or []]
    seen: set[int] = set()
    for component in given:
        index = component.position
        if index in seen:
            return 100, f"{where}buttons: index {index} is given twice"
        seen.add(index)
        if index >= len(defined):
            return 132000, (f"{where}buttons: the template has no button at index {index} "
                            f"({len(defined)} buttons)")
        button = defined[index]
        expected = _BUTTON_SUBTYPES.get(button.type.upper())
        if expected != component.sub_type:
            return 132012, (f"{where}button at index {index} is {button.type}, not "
                            f"{component.sub_type}")
        if expected == "url" and not placeholders(button.url, False):
            return 132000, (f"{where}button at index {index}: the URL {button.url} has no "
                            "variable, so it takes no parameter")
    for index, button in enumerate(defined):
        kind = button.type.upper()
        needs = (kind == "URL" and bool(placeholders(button.url, False))) or kind == "COPY_CODE"
        if needs and index not in seen:
            return 132000, (f"{where}buttons: number of params does not match: button at "
                            f"index {index} ({kind}) needs a parameter")
    return None
