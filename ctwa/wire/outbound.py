"""What CleverTap sends to a messaging endpoint: template, freeform and validation payloads."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, model_validator

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

PAYLOAD_VERSION = 0.1
VALIDATION_NAMESPACE = "whatsapp:hsm:technology:generic:verify"
MSG_ID_MAX = 60  # FACTS.md: the newest docs cap msgId at 60 characters
_PLACEHOLDER = re.compile(r"\{\{\s*[\w.]+\s*\}\}")

NonEmpty = Annotated[str, Field(min_length=1)]


# --- parameters ------------------------------------------------------------------------------


class TextParameter(WireModel):
    type: Literal["text"] = "text"
    text: str


class CouponParameter(WireModel):
    type: Literal["coupon_code"] = "coupon_code"
    coupon_code: NonEmpty


ButtonParameter = Annotated[TextParameter | CouponParameter, Field(discriminator="type")]


# --- header ----------------------------------------------------------------------------------


class TextBlock(WireModel):
    text: str
    parameters: list[TextParameter] | None = None


class Media(WireModel):
    mediaURL: NonEmpty


class FileMedia(WireModel):
    mediaURL: NonEmpty
    filename: str | None = None


class Location(WireModel):
    latitude: NonEmpty
    longitude: NonEmpty
    name: str | None = None
    address: str | None = None


class TextHeader(WireModel):
    type: Literal["text"] = "text"
    text: TextBlock


class ImageHeader(WireModel):
    type: Literal["image"] = "image"
    image: Media


class VideoHeader(WireModel):
    type: Literal["video"] = "video"
    video: Media


class FileHeader(WireModel):
    type: Literal["file"] = "file"
    file: FileMedia


class LocationHeader(WireModel):
    type: Literal["location"] = "location"
    location: Location


Header = Annotated[
    TextHeader | ImageHeader | VideoHeader | FileHeader | LocationHeader,
    Field(discriminator="type"),
]


# --- components ------------------------------------------------------------------------------


class HeaderComponent(WireModel):
    type: Literal["header"] = "header"
    header: Header


class BodyComponent(WireModel):
    type: Literal["body"] = "body"
    body: TextBlock


class FooterComponent(WireModel):
    type: Literal["footer"] = "footer"
    footer: str


ButtonSubType = Literal["dynamicUrl", "staticUrl", "quickReply", "callPhone", "copy_code"]


class ButtonComponent(WireModel):
    type: Literal["button"] = "button"
    index: Annotated[int, Field(ge=0)]
    subType: ButtonSubType
    buttonText: str
    parameters: list[ButtonParameter] | None = None

    @model_validator(mode="after")
    def _parameters_fit_subtype(self) -> ButtonComponent:
        params = self.parameters or []
        if self.subType == "quickReply":
            if params:
                raise ValueError("a quickReply button carries no parameters; remove them")
        elif self.subType == "copy_code":
            if len(params) != 1 or not isinstance(params[0], CouponParameter):
                raise ValueError(
                    "a copy_code button needs exactly one "
                    '{"type": "coupon_code", "coupon_code": "..."} parameter'
                )
        elif len(params) != 1 or not isinstance(params[0], TextParameter):
            raise ValueError(
                f'a {self.subType} button needs exactly one {{"type": "text", "text": "..."}} '
                "parameter"
            )
        return self


class OfferExpiry(WireModel):
    expiration_time_ms: Annotated[int, Field(ge=0)]


class OfferParameter(WireModel):
    type: Literal["limited_time_offer"] = "limited_time_offer"
    limited_time_offer: OfferExpiry


class OfferComponent(WireModel):
    type: Literal["limited_time_offer"] = "limited_time_offer"
    text: str
    parameters: Annotated[list[OfferParameter], Field(default_factory=list, max_length=1)]


CardComponent = Annotated[
    HeaderComponent | BodyComponent | ButtonComponent, Field(discriminator="type")
]


class CarouselCard(WireModel):
    components: Annotated[list[CardComponent], Field(min_length=1)]


class CarouselComponent(WireModel):
    type: Literal["carousel"] = "carousel"
    cards: Annotated[list[CarouselCard], Field(min_length=1, max_length=10)]


class CustomPropsComponent(WireModel):
    """Custom key-values, as the last element of ``components`` (ERRATA 7)."""

    customProps: list[dict[str, str]]


def _component_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        if "customProps" in value and "type" not in value:
            return "customProps"
        tag = value.get("type")
        return tag if isinstance(tag, str) else None
    if isinstance(value, CustomPropsComponent):
        return "customProps"
    return getattr(value, "type", None)


Component = Annotated[
    Annotated[HeaderComponent, Tag("header")]
    | Annotated[BodyComponent, Tag("body")]
    | Annotated[FooterComponent, Tag("footer")]
    | Annotated[ButtonComponent, Tag("button")]
    | Annotated[OfferComponent, Tag("limited_time_offer")]
    | Annotated[CarouselComponent, Tag("carousel")]
    | Annotated[CustomPropsComponent, Tag("customProps")],
    Discriminator(
        _component_tag,
        custom_error_type="invalid_component",
        custom_error_message="unknown component: `type` must be header, body, footer, button, "
        "limited_time_offer or carousel (or a {customProps: [...]} element)",
    ),
]


# --- payloads --------------------------------------------------------------------------------


class TemplateRef(WireModel):
    namespace: NonEmpty
    languageCode: NonEmpty


class TemplatePayload(WireModel):
    """A template message: what CleverTap posts for campaigns, tests and template saves."""

    payloadVersion: float = PAYLOAD_VERSION
    to: NonEmpty
    wabaNumber: NonEmpty
    isTemplate: Literal[True] = True
    msgId: NonEmpty
    template: TemplateRef
    components: list[Component]


class FreeformBase(WireModel):
    payloadVersion: float = PAYLOAD_VERSION
    to: NonEmpty
    wabaNumber: NonEmpty
    msgId: NonEmpty
    isTemplate: Literal[False] = False


class TextBody(WireModel):
    body: NonEmpty


class CaptionedMedia(WireModel):
    mediaURL: NonEmpty
    caption: str | None = None


class CaptionedFile(WireModel):
    mediaURL: NonEmpty
    caption: str | None = None
    filename: str | None = None


class FreeformText(FreeformBase):
    type: Literal["text"] = "text"
    text: TextBody


class FreeformImage(FreeformBase):
    type: Literal["image"] = "image"
    image: CaptionedMedia


class FreeformVideo(FreeformBase):
    type: Literal["video"] = "video"
    video: CaptionedMedia


class FreeformAudio(FreeformBase):
    type: Literal["audio"] = "audio"
    audio: Media


class FreeformFile(FreeformBase):
    type: Literal["file"] = "file"
    file: CaptionedFile


FreeformPayload = Annotated[
    FreeformText | FreeformImage | FreeformVideo | FreeformAudio | FreeformFile,
    Field(discriminator="type"),
]

FREEFORM_TYPES = ("text", "image", "audio", "video", "file")


def validation_payload(
    to: str = "9189XXXXXXXX", waba: str = "9199XXXXXXXX", msg_id: str = "0|0|0|0"
) -> TemplatePayload:
    """The dummy payload CleverTap sends when a provider is saved (spec: Validation Payload)."""
    return TemplatePayload(
        to=to,
        wabaNumber=waba,
        msgId=msg_id,
        template=TemplateRef(namespace=VALIDATION_NAMESPACE, languageCode="en"),
        components=[
            BodyComponent(
                body=TextBlock(
                    text="1 code: 2.Valid for 3 minutes.",
                    parameters=[TextParameter(text=v) for v in ("1", "2", "3")],
                )
            )
        ],
    )


# --- readers: ERRATA variants -> canonical form ----------------------------------------------


def _normalize_version(doc: dict[str, Any], notes: Notes, path: list[PathPart]) -> None:
    notes.rename(doc, "payloadversion", "payloadVersion", path, errata=1)
    version = doc.get("payloadVersion")
    if isinstance(version, str):
        try:
            doc["payloadVersion"] = float(version)
        except ValueError:
            return
        notes.warn([*path, "payloadVersion"], "payloadVersion is a string in an outbound "
                   "payload; the canonical form is the number 0.1", hint="write 0.1", errata=1)


def _normalize_components(components: list[Any], notes: Notes, path: list[PathPart]) -> None:
    for i, component in enumerate(components):
        comp = as_dict(component)
        if comp is None:
            continue
        if comp.get("type") == "footer":
            notes.rename(comp, "footertext", "footer", [*path, i], errata=4)
        if comp.get("type") == "carousel":
            for c, card in enumerate(as_list(comp.get("cards"))):
                if as_dict(card):
                    _normalize_components(as_list(card.get("components")),
                                          notes, [*path, i, "cards", c, "components"])


def normalize_outbound(raw: Any) -> tuple[Any, Notes]:
    """Rewrite published variants of template and freeform payloads into the canonical form."""
    notes = Notes()
    doc = as_dict(raw)
    if doc is None:
        return raw, notes
    doc = tree_copy(doc)
    _normalize_version(doc, notes, [])
    notes.rename(doc, "msg_id", "msgId", [], errata=3)
    components = doc.get("components")
    if isinstance(components, list):
        _normalize_components(components, notes, ["components"])
        if "customProps" in doc:
            props = doc.pop("customProps")
            components.append({"customProps": props})
            notes.warn(["customProps"], "customProps at the top level is the spec table's "
                       "form; the canonical place is a last element of `components`",
                       hint='move it into components as {"customProps": [...]}', errata=7)
    return doc, notes


def is_wrapped(payload: Any) -> bool:
    """The spec's ``{"body": {...}}`` form of a payload (ERRATA 13)."""
    return isinstance(payload, dict) and set(payload) == {"body"}


def inner_payload(payload: Any) -> Any:
    """The object a payload's fields (msgId, to, template) live in: the inner one of the
    wrapped form, or the payload itself."""
    return payload["body"] if is_wrapped(payload) else payload


def unwrap_validation(raw: Any) -> tuple[Any, Notes]:
    """Accept the spec's ``{"body": {...}}`` wrapping of the validation payload (ERRATA 13)."""
    doc = as_dict(raw)
    if doc is not None and set(doc) == {"body"} and isinstance(doc["body"], dict):
        inner, notes = normalize_outbound(doc["body"])
        notes.problems.insert(0, Problem(
            "warning", "$.body", "the validation payload is wrapped in {\"body\": ...}; "
            "CleverTap's canonical form is the inner object, like every other payload",
            hint="send the inner object (ctwa validate-endpoint --wrapped sends this form)",
            errata=13))
        return inner, notes
    return normalize_outbound(raw)


# --- checks beyond the schema ----------------------------------------------------------------


def check_msg_id(msg_id: str, path: list[PathPart]) -> list[Problem]:
    problems: list[Problem] = []
    if "|" not in msg_id:
        problems.append(Problem("warning", json_path(path), "msgId has no `|`; CleverTap's ids "
                                "look like i|campaignID|batchID|j|variant", errata=14))
    if len(msg_id) > MSG_ID_MAX:
        problems.append(Problem("warning", json_path(path),
                                f"msgId is {len(msg_id)} characters; CleverTap's are at most "
                                f"{MSG_ID_MAX}"))
    return problems


def _check_buttons(components: list[Any], path: list[PathPart]) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[int, int] = {}
    expected = 0
    for i, comp in enumerate(components):
        if not isinstance(comp, ButtonComponent):
            continue
        where = json_path([*path, i, "index"])
        if comp.index in seen:
            problems.append(Problem(
                "error", where, f"button index {comp.index} is used twice (also at "
                f"{json_path([*path, seen[comp.index]])})",
                hint="number buttons 0, 1, 2... in order", errata=6))
        elif comp.index != expected:
            problems.append(Problem("warning", where, f"button index {comp.index} is out of "
                                    f"order; expected {expected}",
                                    hint="number buttons 0, 1, 2... in order"))
        seen.setdefault(comp.index, i)
        expected += 1
    return problems


def _check_filled(block: TextBlock, path: list[PathPart]) -> list[Problem]:
    if _PLACEHOLDER.search(block.text):
        return [Problem("warning", json_path([*path, "text"]), "the text still holds a "
                        "{{placeholder}}; CleverTap sends it with the parameters filled in",
                        hint="fill every placeholder with its parameter value")]
    return []


def _check_components(components: list[Any], path: list[PathPart]) -> list[Problem]:
    problems = _check_buttons(components, path)
    for i, comp in enumerate(components):
        if isinstance(comp, BodyComponent):
            problems += _check_filled(comp.body, [*path, i, "body"])
        elif isinstance(comp, HeaderComponent) and isinstance(comp.header, TextHeader):
            problems += _check_filled(comp.header.text, [*path, i, "header", "text"])
        elif isinstance(comp, CarouselComponent):
            for c, card in enumerate(comp.cards):
                problems += _check_components(card.components,
                                              [*path, i, "cards", c, "components"])
        elif isinstance(comp, CustomPropsComponent) and i != len(components) - 1:
            problems.append(Problem("warning", json_path([*path, i]), "customProps is not the "
                                    "last element of components", errata=7))
    return problems


def check_media_urls(wire: Any, path: list[PathPart] | None = None) -> list[Problem]:
    """Media URLs that are not http(s) or whose signed link has expired (Meta's CDN links
    carry their expiry in ``oe``): valid to the schema, but WhatsApp cannot fetch them."""
    from ctwa.wire.media import expired_note, is_http_url

    where = path or []
    problems: list[Problem] = []
    if isinstance(wire, dict):
        for key, value in wire.items():
            if key == "mediaURL" and isinstance(value, str):
                if not is_http_url(value):
                    problems.append(Problem("warning", json_path([*where, key]),
                                            f"mediaURL {value[:60]!r} is not an http(s) URL",
                                            hint="give a URL WhatsApp can fetch"))
                elif expired_note(value):
                    problems.append(Problem("warning", json_path([*where, key]),
                                            f"mediaURL: {expired_note(value)}",
                                            hint="give a fresh or permanent URL"))
            else:
                problems += check_media_urls(value, [*where, key])
    elif isinstance(wire, list):
        for i, value in enumerate(wire):
            problems += check_media_urls(value, [*where, i])
    return problems


def check_template(payload: TemplatePayload) -> list[Problem]:
    problems = check_msg_id(payload.msgId, ["msgId"])
    problems += _check_components(payload.components, ["components"])
    problems += check_media_urls(payload.to_wire())
    if not any(isinstance(c, BodyComponent) for c in payload.components):
        problems.append(Problem("warning", "$.components", "no body component; every "
                                "WhatsApp template has a body"))
    return problems


def check_freeform(payload: FreeformBase) -> list[Problem]:
    return check_msg_id(payload.msgId, ["msgId"]) + check_media_urls(payload.to_wire())
