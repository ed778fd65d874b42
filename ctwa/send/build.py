"""Meta-format template + parameters -> the CleverTap template payload, as CleverTap builds it.

The mapping (component by component) is the one in the send issue and the spec's samples:
HEADER TEXT/IMAGE/VIDEO/DOCUMENT/LOCATION, BODY with its parameters, FOOTER, each button as its
own component indexed from 0, LIMITED_TIME_OFFER, CAROUSEL cards, and customProps last. Every
missing value is collected and reported together, each named by where it goes.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from ctwa.infra.errors import InputError
from ctwa.send.params import CardParams, TemplateParams
from ctwa.wire import outbound as out
from ctwa.wire.media import expired_note, is_http_url, looks_like_upload_handle
from ctwa.wire.meta import (
    COPY_CODE_LABEL,
    PLACEHOLDER,
    MetaButton,
    MetaComponent,
    MetaTemplate,
    is_approved,
    unsendable_parts,
)
from ctwa.wire.numbers import check_phone

DAY_MS = 86_400_000


class UnsupportedTemplate(InputError):
    """The template has parts CleverTap's Generic integration cannot send."""


class UnapprovedTemplate(InputError):
    """WhatsApp delivers only APPROVED templates; sending another one fails in delivery."""


class MissingParameters(InputError):
    def __init__(self, template: str, missing: list[str]) -> None:
        super().__init__(f"template {template!r} needs values for: {'; '.join(missing)}",
                         hint="give them with --var/--header-var/--header-media/--button/"
                         "--coupon/--offer-expires/--params, or --examples")
        self.missing = missing


def placeholders(text: str | None, named: bool) -> list[str]:
    """The template's placeholder keys, in parameter order (numeric order, or first use)."""
    keys: list[str] = []
    for match in PLACEHOLDER.finditer(text or ""):
        key = match.group(1)
        if key.isdecimal():
            key = str(int(key))
        if key not in keys:
            keys.append(key)
    if not named and all(k.isdecimal() for k in keys):
        keys.sort(key=int)
    return keys


def is_named(template: MetaTemplate) -> bool:
    """Whether placeholders are names (``{{first_name}}``): Meta's ``parameter_format``, or a
    placeholder that is not a number."""
    return (template.parameter_format or "").upper() == "NAMED" or any(
        not key.isdecimal() for comp in template.components
        for key in placeholders(comp.text, True))


def given_value(key: str, position: int, given: dict[str, str]) -> str | None:
    """The value given for a placeholder: by its name or number, or for a named placeholder,
    by its position in sending order (a bare ``--var John`` fills the first name)."""
    if key in given:
        return given[key]
    if not key.isdecimal():
        return given.get(str(position))
    return None


def fill(text: str, values: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        key = str(int(key)) if key.isdecimal() else key
        return values.get(key, match.group(0))

    return PLACEHOLDER.sub(replace, text)


def _first(value: Any) -> str | None:
    while isinstance(value, list):
        if not value:
            return None
        value = value[0]
    return None if value is None else str(value)


@dataclass
class _Builder:
    template: MetaTemplate
    params: TemplateParams
    use_examples: bool
    named: bool
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    # --- text with placeholders --------------------------------------------------------------

    def _example_values(self, comp: MetaComponent, kind: str) -> dict[str, str]:
        example = comp.example or {}
        if self.named:
            pairs = example.get(f"{kind}_text_named_params") or []
            return {str(p.get("param_name")): str(p.get("example")) for p in pairs
                    if isinstance(p, dict)}
        raw = example.get(f"{kind}_text")
        if kind == "body" and isinstance(raw, list) and raw and isinstance(raw[0], list):
            raw = raw[0]
        if isinstance(raw, str):
            raw = [raw]
        return {str(i + 1): str(v) for i, v in enumerate(raw or [])}

    def text_block(self, comp: MetaComponent, kind: str, given: dict[str, str],
                   where: str) -> out.TextBlock:
        text = comp.text or ""
        keys = placeholders(text, self.named)
        examples = self._example_values(comp, kind) if self.use_examples else {}
        values: dict[str, str] = {}
        for position, key in enumerate(keys, start=1):
            value = given_value(key, position, given)
            if value is not None:
                values[key] = value
            elif key in examples:
                values[key] = examples[key]
            else:
                self.missing.append(f"{where} {{{{{key}}}}}")
        return out.TextBlock(text=fill(text, values),
                             parameters=[out.TextParameter(text=values.get(k, "")) for k in keys])

    def _example_media(self, example: str | None, where: str, flag: str) -> str | None:
        """The template's header example as a media URL, when it is one: Meta's upload
        handles and anything else that is not an http(s) URL are refused by name."""
        if example is None:
            return None
        if is_http_url(example):
            return example
        what = ("a Meta upload handle (4::...), not a URL" if looks_like_upload_handle(example)
                else f"{example[:40]!r}, not an http(s) URL")
        self.missing.append(f"{where} media URL ({flag}): the template's example is {what}")
        return "-"

    # --- components --------------------------------------------------------------------------

    def header(self, comp: MetaComponent, media: str | None, where: str,
               card: bool = False) -> out.HeaderComponent | None:
        fmt = (comp.format or "TEXT").upper()
        if fmt == "TEXT":
            given = self.params.header_vars
            return out.HeaderComponent(header=out.TextHeader(
                text=self.text_block(comp, "header", given, where)))
        if fmt == "LOCATION":
            loc = self.params.location
            if loc is None:
                self.missing.append(f"{where} location (--location LAT,LONG)")
                loc_model = out.Location(latitude="0", longitude="0")
            else:
                loc_model = out.Location(latitude=loc.latitude, longitude=loc.longitude,
                                         name=loc.name, address=loc.address)
            return out.HeaderComponent(header=out.LocationHeader(location=loc_model))
        url = media
        flag = "cards[].header_media in --params" if card else "--header-media URL"
        if url is None and self.use_examples:
            url = self._example_media(_first((comp.example or {}).get("header_handle")),
                                      where, flag)
        if not url:
            self.missing.append(f"{where} media URL ({flag})")
            url = "-"
        else:
            expired = expired_note(url)
            if expired:
                self.notes.append(f"{where} media URL: {expired}; pass {flag}")
        if fmt == "IMAGE":
            return out.HeaderComponent(header=out.ImageHeader(image=out.Media(mediaURL=url)))
        if fmt == "VIDEO":
            return out.HeaderComponent(header=out.VideoHeader(video=out.Media(mediaURL=url)))
        if fmt == "DOCUMENT":
            return out.HeaderComponent(header=out.FileHeader(file=out.FileMedia(
                mediaURL=url, filename=self.params.header_filename)))
        raise UnsupportedTemplate(f"template {self.template.name!r}: {where} format {fmt!r} "
                                  "cannot be sent through CleverTap")

    def button(self, button: MetaButton, index: int, given: dict[int, str],
               where: str) -> out.ButtonComponent:
        kind = button.type.upper()
        text = button.text or ""
        if kind == "QUICK_REPLY":
            return out.ButtonComponent(index=index, subType="quickReply", buttonText=text)
        if kind == "PHONE_NUMBER":
            return out.ButtonComponent(index=index, subType="callPhone", buttonText=text,
                                       parameters=[out.TextParameter(
                                           text=button.phone_number or "")])
        if kind == "COPY_CODE":
            code = self.params.coupon or given.get(index)
            if code is None and self.use_examples:
                code = _first(button.example)
            if not code:
                self.missing.append(f"{where} coupon code (--coupon)")
            return out.ButtonComponent(index=index, subType="copy_code",
                                       buttonText=text or COPY_CODE_LABEL,
                                       parameters=[out.CouponParameter(coupon_code=code or "-")])
        if kind == "URL":
            url = button.url or ""
            if not PLACEHOLDER.search(url):
                return out.ButtonComponent(index=index, subType="staticUrl", buttonText=text,
                                           parameters=[out.TextParameter(text=url)])
            suffix = given.get(index)
            if suffix is None and self.use_examples:
                example = _first(button.example)
                suffix = _example_suffix(url, example)
                if example is not None and suffix is None:
                    self.missing.append(
                        f"{where} URL suffix (--button {index}=...): the template's example "
                        f"{example[:60]!r} does not start with the URL before {{{{1}}}} "
                        f"({url.split('{{', 1)[0]!r})")
                    suffix = "-"
            if suffix is None:
                self.missing.append(f"{where} URL suffix (--button {index}=...)")
            return out.ButtonComponent(index=index, subType="dynamicUrl", buttonText=text,
                                       parameters=[out.TextParameter(text=suffix or "")])
        raise UnsupportedTemplate(f"template {self.template.name!r}: {where} type {kind} "
                                  "cannot be sent through CleverTap")

    def buttons(self, comp: MetaComponent, start: int, given: dict[int, str],
                prefix: str) -> list[out.ButtonComponent]:
        made = []
        for offset, button in enumerate(comp.buttons or []):
            index = start + offset
            made.append(self.button(button, index, given, f"{prefix}button {index}"))
        return made

    def offer(self, comp: MetaComponent) -> out.OfferComponent:
        offer = comp.limited_time_offer or {}
        expires = self.params.offer_expires_ms
        if offer.get("has_expiration") and expires is None:
            if self.use_examples:
                expires = int(time.time() * 1000) + DAY_MS
            else:
                self.missing.append("offer expiration (--offer-expires)")
                expires = 0
        params = ([out.OfferParameter(limited_time_offer=out.OfferExpiry(
            expiration_time_ms=expires))] if expires is not None else [])
        return out.OfferComponent(text=str(offer.get("text", "")), parameters=params)

    def card(self, index: int, card_comps: list[MetaComponent]) -> out.CarouselCard:
        given = (self.params.cards[index] if index < len(self.params.cards)
                 else CardParams())
        prefix = f"card {index} "
        made: list[Any] = []
        next_button = 0
        for comp in card_comps:
            kind = comp.type.upper()
            if kind == "HEADER":
                header = self.header(comp, given.header_media, f"{prefix}header", card=True)
                made.append(header)
            elif kind == "BODY":
                made.append(out.BodyComponent(body=self.text_block(
                    comp, "body", given.vars, f"{prefix}body")))
            elif kind == "BUTTONS":
                buttons = self.buttons(comp, next_button, given.buttons, prefix)
                next_button += len(buttons)
                made += buttons
        return out.CarouselCard(components=made)

    def components(self) -> list[Any]:
        """Components in the template's order, except the limited-time offer: Meta's templates
        put it before the body, the spec's sample (what CleverTap sends) right after it."""
        made: list[Any] = []
        next_button = 0
        offer: out.OfferComponent | None = None
        for comp in self.template.components:
            kind = comp.type.upper()
            if kind == "HEADER":
                made.append(self.header(comp, self.params.header_media, "header"))
            elif kind == "BODY":
                made.append(out.BodyComponent(body=self.text_block(
                    comp, "body", self.params.vars, "body")))
            elif kind == "FOOTER":
                made.append(out.FooterComponent(footer=comp.text or ""))
            elif kind == "BUTTONS":
                buttons = self.buttons(comp, next_button, self.params.buttons, "")
                next_button += len(buttons)
                made += buttons
            elif kind == "LIMITED_TIME_OFFER":
                offer = self.offer(comp)
            elif kind == "CAROUSEL":
                cards = [self.card(i, card.components) for i, card in enumerate(comp.cards or [])]
                made.append(out.CarouselComponent(cards=cards))
            else:
                raise UnsupportedTemplate(f"template {self.template.name!r}: component "
                                          f"{comp.type} cannot be sent through CleverTap")
        if offer is not None:
            bodies = [i for i, c in enumerate(made) if isinstance(c, out.BodyComponent)]
            made.insert(bodies[0] + 1 if bodies else len(made), offer)
        if self.params.props:
            made.append(out.CustomPropsComponent(
                customProps=[{k: v} for k, v in self.params.props.items()]))
        return made


def _example_suffix(url: str, example: str | None) -> str | None:
    """Meta gives the full example URL; CleverTap sends only the dynamic suffix: what the
    example adds to the URL before ``{{1}}``. An example that is not a URL at all is that
    suffix already (Meta's own carousel documentation writes ``BLUE_ELF`` for
    ``https://www.luckyshrub.com/rare-succulents/{{1}}``). None when the example is a whole
    URL that does not start with the button's (sending it would double the URL)."""
    if example is None:
        return None
    prefix = url.split("{{", 1)[0]
    if example.startswith(prefix):
        return example[len(prefix):]
    if not _looks_like_url(example):
        return example
    return None


def _looks_like_url(text: str) -> bool:
    lowered = text.strip().lower()
    return lowered.startswith(("http://", "https://", "www.")) or "://" in lowered


def parse_template(template: dict[str, Any] | MetaTemplate,
                   source: str = "template") -> MetaTemplate:
    if isinstance(template, MetaTemplate):
        return template
    from ctwa.wire.lint import read_document

    model, _ = read_document(template, "meta-template", source)
    return model


def build_template_payload(
    template: dict[str, Any] | MetaTemplate,
    params: TemplateParams,
    *,
    to: str,
    waba: str,
    msg_id: str,
    use_examples: bool = False,
    allow_unapproved: bool = False,
) -> tuple[out.TemplatePayload, list[str]]:
    """The payload CleverTap would send for this template, and notes on unused values."""
    meta = parse_template(template)
    if not allow_unapproved and not is_approved(meta.status):
        shown = (meta.status or "").strip().upper() or "without a status"
        raise UnapprovedTemplate(
            f"template {meta.name!r} ({meta.language}) is {shown}, not "
            "APPROVED: WhatsApp would not deliver it",
            hint="re-import once it is approved, or pass --allow-unapproved to send it anyway")
    refused = unsendable_parts(meta)
    if refused:
        raise UnsupportedTemplate(f"template {meta.name!r} has parts CleverTap cannot send: "
                                  f"{', '.join(refused)}")
    named = is_named(meta)
    builder = _Builder(meta, params, use_examples, named)
    components = builder.components()
    if builder.missing:
        raise MissingParameters(meta.name, builder.missing)
    payload = out.TemplatePayload(
        to=check_phone(to), wabaNumber=waba, msgId=msg_id,
        template=out.TemplateRef(namespace=meta.name, languageCode=meta.language),
        components=components,
    )
    body_keys = _body_keys(meta, named)
    used = body_keys | {str(n) for n in range(1, len(body_keys) + 1)} if named else body_keys
    notes = list(builder.notes)
    notes += [f"--var {key} is not used by the template" for key in
              sorted(set(params.vars) - used)]
    notes += [f"--button {i} is not a dynamic URL button of the template"
              for i in sorted(set(params.buttons) - _dynamic_buttons(meta))]
    return payload, notes


def _body_keys(meta: MetaTemplate, named: bool) -> set[str]:
    return {key for comp in meta.components if comp.type.upper() == "BODY"
            for key in placeholders(comp.text, named)}


def _dynamic_buttons(meta: MetaTemplate) -> set[int]:
    indexes: set[int] = set()
    index = 0
    for comp in meta.components:
        for button in comp.buttons or []:
            if button.type.upper() in ("URL", "COPY_CODE"):
                indexes.add(index)
            index += 1
    return indexes
