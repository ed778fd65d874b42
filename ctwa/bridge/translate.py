"""CleverTap's payloads -> Meta's WhatsApp Cloud API ``POST /{phone-number-id}/messages`` bodies.

Pure functions: a payload (a ``ctwa.wire.outbound`` model), the number's synced template when
there is one, and the bridge's click settings in; the request body Meta documents out. The
shapes follow Meta's pages:

- messages reference: developers.facebook.com/docs/whatsapp/cloud-api/reference/messages
  (``messaging_product``, ``recipient_type``, ``to``, ``type`` and one object of that type;
  media by ``link``; ``document.filename``; ``text.preview_url``)
- send message templates: developers.facebook.com/docs/whatsapp/cloud-api/guides/
  send-message-templates (``template.name``, ``template.language.code``, ``components[]`` of
  ``header``/``body``/``button`` with ``parameters[]``; a button's ``sub_type`` ``url``,
  ``quick_reply`` (``payload`` parameter) or ``copy_code`` (``coupon_code`` parameter) and its
  ``index`` as a string; NAMED templates give each body parameter its ``parameter_name``)
- limited-time offer templates: developers.facebook.com/docs/whatsapp/business-management-api/
  message-templates/limited-time-offer-templates (``{"type": "limited_time_offer",
  "parameters": [{"type": "limited_time_offer", "limited_time_offer":
  {"expiration_time_ms": ...}}]}``)
- media card carousel templates: developers.facebook.com/docs/whatsapp/business-management-api/
  message-templates/media-card-carousel-templates (``{"type": "carousel", "cards":
  [{"card_index": 0, "components": [...]}]}``)

What CleverTap sends that Meta does not take: the footer, static URL and call buttons are fixed
in the approved template (Meta refuses parameters for them), so they are checked, not sent;
``customProps`` are CleverTap's own key-values and stay in the bridge's outbox (they are part of
the stored payload), never sent to Meta. A dynamic URL button's parameter is the suffix Meta
appends to the template's URL; CleverTap samples also show the whole URL, so a value that starts
with the template's URL before ``{{1}}`` is cut to its suffix.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ctwa.wire import outbound as out
from ctwa.wire.meta import PLACEHOLDER, MetaComponent, MetaTemplate, is_approved

MESSAGING_PRODUCT = "whatsapp"
#: Click tokens: 16 URL-safe characters (96 bits), short enough for a button suffix.
TOKEN_BYTES = 12


class TemplateMismatch(ValueError):
    """The payload does not fit the number's approved template (CleverTap's 2001)."""


@dataclass(frozen=True)
class Click:
    """A tracked URL button: the token put in the button's URL and where it leads."""

    token: str
    destination: str
    button: int


@dataclass
class Translation:
    """Meta's request body, and the click tokens to store before it is sent."""

    body: dict[str, Any]
    clicks: list[Click] = field(default_factory=list)


@dataclass(frozen=True)
class ClickSettings:
    """URL buttons on the bridge's own ``{public_url}/c/{{1}}``: the redirect destinations per
    template name, ``{value}`` in a destination replaced by the value CleverTap sent."""

    public_url: str | None = None
    destinations: dict[str, str] = field(default_factory=dict)
    new_token: Callable[[], str] = field(
        default=lambda: secrets.token_urlsafe(TOKEN_BYTES))

    def tracked_prefix(self) -> str | None:
        return f"{self.public_url.rstrip('/')}/c/" if self.public_url else None


def meta_number(to: str) -> str:
    """Meta's ``to``: the number with its country code, digits only."""
    return re.sub(r"\D", "", to)


# --- freeform --------------------------------------------------------------------------------


def freeform_request(payload: out.FreeformBase) -> dict[str, Any]:
    """A freeform payload as Meta's text, image, video, audio or document message."""
    body: dict[str, Any] = {"messaging_product": MESSAGING_PRODUCT,
                            "recipient_type": "individual", "to": meta_number(payload.to)}
    if isinstance(payload, out.FreeformText):
        body["type"] = "text"
        body["text"] = {"preview_url": False, "body": payload.text.body}
    elif isinstance(payload, (out.FreeformImage, out.FreeformVideo)):
        kind = payload.type
        media = payload.image if isinstance(payload, out.FreeformImage) else payload.video
        body["type"] = kind
        body[kind] = _media(media.mediaURL, caption=media.caption)
    elif isinstance(payload, out.FreeformAudio):
        body["type"] = "audio"
        body["audio"] = {"link": payload.audio.mediaURL}
    elif isinstance(payload, out.FreeformFile):
        body["type"] = "document"
        body["document"] = _media(payload.file.mediaURL, caption=payload.file.caption,
                                  filename=payload.file.filename)
    else:  # pragma: no cover - the union is closed
        raise TypeError(f"not a freeform payload: {type(payload).__name__}")
    return body


def _media(link: str, **extra: str | None) -> dict[str, Any]:
    media: dict[str, Any] = {"link": link}
    media.update({k: v for k, v in extra.items() if v})
    return media


# --- templates -------------------------------------------------------------------------------


def _placeholders(text: str | None) -> list[str]:
    """A template text's placeholder keys in parameter order: numbers sorted, names in order
    of first use (Meta's rule for POSITIONAL and NAMED templates)."""
    keys: list[str] = []
    for match in PLACEHOLDER.finditer(text or ""):
        key = match.group(1)
        key = str(int(key)) if key.isdecimal() else key
        if key not in keys:
            keys.append(key)
    if keys and all(k.isdecimal() for k in keys):
        keys.sort(key=int)
    return keys


def _is_named(template: MetaTemplate) -> bool:
    from ctwa.send.build import is_named

    return is_named(template)


@dataclass
class _Shape:
    """What the synced template expects: placeholders per part and its URL buttons."""

    header_format: str | None = None
    header_keys: list[str] = field(default_factory=list)
    body_keys: list[str] | None = None
    buttons: list[Any] = field(default_factory=list)  # MetaButton, in index order
    cards: list[_Shape] = field(default_factory=list)
    has_carousel: bool = False


def _shape(components: list[MetaComponent]) -> _Shape:
    shape = _Shape()
    for comp in components:
        kind = comp.type.upper()
        if kind == "HEADER":
            shape.header_format = (comp.format or "TEXT").upper()
            if shape.header_format == "TEXT":
                shape.header_keys = _placeholders(comp.text)
        elif kind == "BODY":
            shape.body_keys = _placeholders(comp.text)
        elif kind == "BUTTONS":
            shape.buttons += list(comp.buttons or [])
        elif kind == "CAROUSEL":
            shape.has_carousel = True
            shape.cards = [_shape(card.components) for card in comp.cards or []]
    return shape


def _count(what: str, given: int, expected: int, name: str) -> None:
    if given != expected:
        raise TemplateMismatch(f"template {name!r}: {what} has {given} parameter(s); the "
                               f"approved template takes {expected}")


_HEADER_FORMATS: dict[type, str] = {
    out.TextHeader: "TEXT", out.ImageHeader: "IMAGE", out.VideoHeader: "VIDEO",
    out.FileHeader: "DOCUMENT", out.LocationHeader: "LOCATION"}


def check_against_template(payload: out.TemplatePayload, template: MetaTemplate | None) -> None:
    """Raise :class:`TemplateMismatch` naming what does not fit the approved template: none
    of that name and language, not APPROVED, a wrong number of parameters, a header of
    another kind, a button that is not there or of another kind, a missing carousel card."""
    name, language = payload.template.namespace, payload.template.languageCode
    if template is None:
        raise TemplateMismatch(f"template {name!r} ({language}) is not a template of this "
                               "WhatsApp Business Account (synced from Meta)")
    if not is_approved(template.status):
        raise TemplateMismatch(f"template {name!r} ({language}) is {template.status}, not "
                               "APPROVED")
    _check_components(payload.components, _shape(template.components), name, "")


def _check_components(components: list[Any], shape: _Shape, name: str, where: str) -> None:
    for comp in components:
        if isinstance(comp, out.HeaderComponent):
            fmt = _HEADER_FORMATS[type(comp.header)]
            if shape.header_format is None:
                raise TemplateMismatch(f"template {name!r}: {where}the approved template has "
                                       "no header")
            if fmt != shape.header_format:
                raise TemplateMismatch(f"template {name!r}: {where}header is {fmt.lower()}; "
                                       f"the approved template's is "
                                       f"{shape.header_format.lower()}")
            if isinstance(comp.header, out.TextHeader):
                _count(f"{where}header", len(comp.header.text.parameters or []),
                       len(shape.header_keys), name)
        elif isinstance(comp, out.BodyComponent):
            if shape.body_keys is not None:
                _count(f"{where}body", len(comp.body.parameters or []), len(shape.body_keys),
                       name)
        elif isinstance(comp, out.ButtonComponent):
            _check_button(comp, shape, name, where)
        elif isinstance(comp, out.CarouselComponent):
            if not shape.has_carousel:
                raise TemplateMismatch(f"template {name!r}: the approved template has no "
                                       "carousel")
            if len(comp.cards) != len(shape.cards):
                raise TemplateMismatch(f"template {name!r}: {len(comp.cards)} carousel "
                                       f"card(s); the approved template has "
                                       f"{len(shape.cards)}")
            for i, card in enumerate(comp.cards):
                _check_components(card.components, shape.cards[i], name, f"card {i} ")


_BUTTON_TYPES = {"dynamicUrl": "URL", "staticUrl": "URL", "quickReply": "QUICK_REPLY",
                 "callPhone": "PHONE_NUMBER", "copy_code": "COPY_CODE"}


def _check_button(comp: out.ButtonComponent, shape: _Shape, name: str, where: str) -> None:
    if comp.index >= len(shape.buttons):
        raise TemplateMismatch(f"template {name!r}: {where}button {comp.index} is not in the "
                               f"approved template ({len(shape.buttons)} button(s))")
    button = shape.buttons[comp.index]
    expected = button.type.upper()
    if _BUTTON_TYPES[comp.subType] != expected:
        raise TemplateMismatch(f"template {name!r}: {where}button {comp.index} is "
                               f"{comp.subType}; the approved template's is {expected}")
    dynamic = bool(PLACEHOLDER.search(button.url or ""))
    if comp.subType == "dynamicUrl" and expected == "URL" and not dynamic:
        raise TemplateMismatch(f"template {name!r}: {where}button {comp.index} is a static URL "
                               "in the approved template; send it as staticUrl")


def template_request(payload: out.TemplatePayload, template: MetaTemplate | None,
                     clicks: ClickSettings | None = None) -> Translation:
    """A template payload as Meta's template message. ``template`` (the synced one) gives
    NAMED parameters their names and the URL buttons their prefix; without it the payload
    is translated as it stands (POSITIONAL)."""
    named = template is not None and _is_named(template)
    shape = _shape(template.components) if template is not None else _Shape()
    translation = Translation({})
    settings = clicks or ClickSettings()
    context = _Context(payload.template.namespace, named, settings, translation)
    components = context.components(payload.components, shape)
    tmpl: dict[str, Any] = {"name": payload.template.namespace,
                            "language": {"code": payload.template.languageCode}}
    if components:
        tmpl["components"] = components
    translation.body = {"messaging_product": MESSAGING_PRODUCT, "recipient_type": "individual",
                        "to": meta_number(payload.to), "type": "template", "template": tmpl}
    return translation


@dataclass
class _Context:
    name: str
    named: bool
    clicks: ClickSettings
    result: Translation

    def _text_parameters(self, block: out.TextBlock, keys: list[str]) -> list[dict[str, Any]]:
        params: list[dict[str, Any]] = []
        for i, param in enumerate(block.parameters or []):
            item: dict[str, Any] = {"type": "text", "text": param.text}
            if self.named and i < len(keys):
                item["parameter_name"] = keys[i]
            params.append(item)
        return params

    def header(self, header: Any, shape: _Shape) -> dict[str, Any] | None:
        if isinstance(header, out.TextHeader):
            params = self._text_parameters(header.text, shape.header_keys)
            return {"type": "header", "parameters": params} if params else None
        if isinstance(header, out.ImageHeader):
            param = {"type": "image", "image": {"link": header.image.mediaURL}}
        elif isinstance(header, out.VideoHeader):
            param = {"type": "video", "video": {"link": header.video.mediaURL}}
        elif isinstance(header, out.FileHeader):
            param = {"type": "document", "document": _media(header.file.mediaURL,
                                                            filename=header.file.filename)}
        else:
            loc = header.location
            param = {"type": "location", "location": {
                "latitude": loc.latitude, "longitude": loc.longitude,
                **{k: v for k, v in (("name", loc.name), ("address", loc.address)) if v}}}
        return {"type": "header", "parameters": [param]}

    def button(self, comp: out.ButtonComponent, shape: _Shape) -> dict[str, Any] | None:
        base = {"type": "button", "index": str(comp.index)}
        if comp.subType == "quickReply":
            return {**base, "sub_type": "quick_reply",
                    "parameters": [{"type": "payload", "payload": comp.buttonText}]}
        param = comp.parameters[0] if comp.parameters else None
        if comp.subType == "copy_code" and isinstance(param, out.CouponParameter):
            return {**base, "sub_type": "copy_code",
                    "parameters": [{"type": "coupon_code", "coupon_code": param.coupon_code}]}
        if comp.subType == "dynamicUrl" and isinstance(param, out.TextParameter):
            url = (shape.buttons[comp.index].url or "") if comp.index < len(shape.buttons) \
                else ""
            suffix = self._suffix(param.text, url, comp.index)
            return {**base, "sub_type": "url", "parameters": [{"type": "text", "text": suffix}]}
        return None  # staticUrl, callPhone: fixed in the approved template

    def _suffix(self, value: str, url: str, index: int) -> str:
        prefix = url.split("{{", 1)[0] if url else ""
        tracked = self.clicks.tracked_prefix()
        if tracked and prefix and prefix == tracked:
            destination = self.clicks.destinations.get(self.name)
            if destination:
                token = self.clicks.new_token()
                target = destination.replace("{value}", value)
                self.result.clicks.append(Click(token, target, index))
                return token
        if prefix and value.startswith(prefix) and len(value) > len(prefix):
            return value[len(prefix):]
        return value

    def components(self, components: list[Any], shape: _Shape) -> list[dict[str, Any]]:
        made: list[dict[str, Any]] = []
        for comp in components:
            if isinstance(comp, out.HeaderComponent):
                header = self.header(comp.header, shape)
                if header:
                    made.append(header)
            elif isinstance(comp, out.BodyComponent):
                params = self._text_parameters(comp.body, shape.body_keys or [])
                if params:
                    made.append({"type": "body", "parameters": params})
            elif isinstance(comp, out.ButtonComponent):
                button = self.button(comp, shape)
                if button:
                    made.append(button)
            elif isinstance(comp, out.OfferComponent):
                if comp.parameters:
                    expiry = comp.parameters[0].limited_time_offer.expiration_time_ms
                    made.append({"type": "limited_time_offer", "parameters": [
                        {"type": "limited_time_offer",
                         "limited_time_offer": {"expiration_time_ms": expiry}}]})
            elif isinstance(comp, out.CarouselComponent):
                cards = []
                for i, card in enumerate(comp.cards):
                    card_shape = shape.cards[i] if i < len(shape.cards) else _Shape()
                    cards.append({"card_index": i,
                                  "components": self.components(card.components, card_shape)})
                made.append({"type": "carousel", "cards": cards})
            # footer: fixed in the template; customProps: CleverTap's own, kept locally
        return made


class UnsendableRequest(ValueError):
    """The translated request is not one Meta accepts (``ctwa.wire.cloudapi``'s model)."""


def translate(payload: out.TemplatePayload | out.FreeformBase, template: MetaTemplate | None,
              clicks: ClickSettings | None = None) -> Translation:
    """Any payload CleverTap sends (template or freeform) as Meta's request body, checked
    with the one Cloud API model (:mod:`ctwa.wire.cloudapi`): :class:`UnsendableRequest`
    names Meta's objection (a coupon over 15 characters, a caption over 1024, ...).

    CleverTap's msgId rides along as ``biz_opaque_callback_data``, which Meta returns in every
    status webhook of the message (cloud-api/reference/messages)."""
    from ctwa.wire.cloudapi import MAX_OPAQUE, request_problems

    if isinstance(payload, out.TemplatePayload):
        result = template_request(payload, template, clicks)
    else:
        result = Translation(freeform_request(payload))
    if len(payload.msgId) <= MAX_OPAQUE:
        result.body["biz_opaque_callback_data"] = payload.msgId
    problems = request_problems(result.body)
    if problems:
        code, details = problems[0]
        raise UnsendableRequest(f"Meta would refuse it ({code}): {details}")
    return result
