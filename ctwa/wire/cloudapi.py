"""Meta's WhatsApp Cloud API on the send side: ``POST /{phone-number-id}/messages`` request
bodies, the success answer, Graph's error body and the error codes that matter.

One model for both ends: the bridge builds its requests with :class:`SendRequest` (so what it
sends is what Meta documents), and the sandbox's mock Cloud API (:mod:`ctwa.sandbox.meta`)
validates what it receives with the same model and answers with :func:`error_body` /
:func:`success_body`. Shapes follow Meta's pages (developers.facebook.com/docs/whatsapp/...):

- cloud-api/reference/messages: the request object (``messaging_product``,
  ``recipient_type``, ``to``, ``type``, ``context``, ``biz_opaque_callback_data`` and one content
  object named by ``type``); text (``body`` up to 4096, ``preview_url``); media objects by
  ``id`` or ``link`` (caption up to 1024 for image, video, document; ``filename`` for document;
  audio has neither).
- cloud-api/guides/send-message-templates (and .../template-messages, "named parameters"):
  ``template`` with ``name``, ``language.code`` (``policy: deterministic``) and ``components``:
  ``header`` (text, image, video, document, location), ``body`` (text, currency, date_time;
  ``parameter_name`` for NAMED templates), ``button`` (``sub_type`` quick_reply with a
  ``payload``, url with the ``text`` suffix, copy_code with ``coupon_code`` of up to 15
  characters; ``index`` 0-9), ``carousel`` (``cards[]`` with ``card_index`` and their own
  header/body/button components), ``limited_time_offer`` (``expiration_time_ms``).
- cloud-api/reference/messages, "Response": ``{"messaging_product", "contacts": [{"input",
  "wa_id"}], "messages": [{"id": "wamid...", "message_status"}]}``.
- cloud-api/support/error-codes: ``{"error": {"message": "(#CODE) Title", "type",
  "code", "error_subcode", "error_data": {"messaging_product", "details"}, "fbtrace_id"}}``,
  the HTTP status each code comes with, and which codes come synchronously (the answer to the
  request) or asynchronously (a ``failed`` status webhook): see :data:`ERRORS`.

The models are strict (``extra="forbid"``), as the Graph API is: an unknown key is answered
``(#100) Unexpected key``. :func:`request_problems` turns pydantic's errors into Meta's codes
and messages, never pydantic's own wording.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from ctwa.wire.common import OpenModel, WireModel

#: The Graph API version the bridge talks by default and the mock serves (any ``v<N>.<M>``
#: is accepted by the mock).
GRAPH_VERSION = "v21.0"

MAX_TEXT_BODY = 4096
MAX_CAPTION = 1024
MAX_COUPON = 15
MAX_BUTTON_INDEX = 9
MAX_CARDS = 10
MAX_OPAQUE = 512

MessageType = Literal["text", "image", "audio", "video", "document", "template"]
CONTENT_TYPES: tuple[str, ...] = ("text", "image", "audio", "video", "document", "template")

Text = Annotated[str, Field(min_length=1)]


# --- message content ----------------------------------------------------------------------

class TextContent(WireModel):
    body: Annotated[str, Field(min_length=1, max_length=MAX_TEXT_BODY)]
    preview_url: bool | None = None


class _Media(WireModel):
    """A media object: an uploaded media ``id`` or a public ``link``, exactly one."""

    id: Text | None = None
    link: Text | None = None

    @model_validator(mode="after")
    def _one_source(self) -> _Media:
        if (self.id is None) == (self.link is None):
            raise ValueError("media_source")
        return self


class ImageContent(_Media):
    caption: Annotated[str, Field(max_length=MAX_CAPTION)] | None = None


class VideoContent(_Media):
    caption: Annotated[str, Field(max_length=MAX_CAPTION)] | None = None


class AudioContent(_Media):
    pass


class DocumentContent(_Media):
    caption: Annotated[str, Field(max_length=MAX_CAPTION)] | None = None
    filename: Text | None = None


class Context(WireModel):
    """A reply to an earlier message: ``message_id`` is its wamid."""

    message_id: Text


# --- template parameters ------------------------------------------------------------------

class TextParameter(WireModel):
    type: Literal["text"]
    text: Text
    #: NAMED templates (``parameter_format: NAMED``) name each body/header parameter.
    parameter_name: Annotated[str, Field(pattern=r"^[a-z0-9_]+$")] | None = None


class Currency(WireModel):
    fallback_value: Text
    code: Annotated[str, Field(min_length=3, max_length=3)]
    amount_1000: int


class CurrencyParameter(WireModel):
    type: Literal["currency"]
    currency: Currency
    parameter_name: str | None = None


class DateTime(WireModel):
    fallback_value: Text


class DateTimeParameter(WireModel):
    type: Literal["date_time"]
    date_time: DateTime
    parameter_name: str | None = None


class MediaLink(_Media):
    pass


class DocumentLink(_Media):
    filename: Text | None = None


class ImageParameter(WireModel):
    type: Literal["image"]
    image: MediaLink


class VideoParameter(WireModel):
    type: Literal["video"]
    video: MediaLink


class DocumentParameter(WireModel):
    type: Literal["document"]
    document: DocumentLink


class Location(WireModel):
    latitude: float | str
    longitude: float | str
    name: str | None = None
    address: str | None = None


class LocationParameter(WireModel):
    type: Literal["location"]
    location: Location


class PayloadParameter(WireModel):
    type: Literal["payload"]
    payload: Text


class CouponParameter(WireModel):
    type: Literal["coupon_code"]
    coupon_code: Annotated[str, Field(min_length=1, max_length=MAX_COUPON)]


class LimitedTimeOffer(WireModel):
    expiration_time_ms: int


class OfferParameter(WireModel):
    type: Literal["limited_time_offer"]
    limited_time_offer: LimitedTimeOffer


HeaderParameter = Annotated[TextParameter | ImageParameter | VideoParameter | DocumentParameter
                            | LocationParameter, Field(discriminator="type")]
BodyParameter = Annotated[TextParameter | CurrencyParameter | DateTimeParameter,
                          Field(discriminator="type")]
ButtonParameter = Annotated[TextParameter | PayloadParameter | CouponParameter,
                            Field(discriminator="type")]

#: What each button ``sub_type`` takes as its one parameter.
BUTTON_PARAMETER = {"quick_reply": "payload", "url": "text", "copy_code": "coupon_code"}


# --- template components ------------------------------------------------------------------

class HeaderComponent(WireModel):
    type: Literal["header"]
    parameters: Annotated[list[HeaderParameter], Field(min_length=1, max_length=1)]


class BodyComponent(WireModel):
    type: Literal["body"]
    parameters: Annotated[list[BodyParameter], Field(min_length=1)]


class ButtonComponent(WireModel):
    type: Literal["button"]
    sub_type: Literal["quick_reply", "url", "copy_code"]
    index: int | str  # Meta's examples write "0"; both are taken
    parameters: Annotated[list[ButtonParameter], Field(min_length=1, max_length=1)]

    @model_validator(mode="after")
    def _parameter_fits(self) -> ButtonComponent:
        text = str(self.index)
        if isinstance(self.index, bool) or not text.isdecimal() or int(text) > MAX_BUTTON_INDEX:
            raise ValueError("button_index")
        wanted = BUTTON_PARAMETER[self.sub_type]
        if self.parameters[0].type != wanted:
            raise ValueError(f"button_parameter:{self.sub_type}:{wanted}")
        return self

    @property
    def position(self) -> int:
        return int(self.index)


class OfferComponent(WireModel):
    type: Literal["limited_time_offer"]
    parameters: Annotated[list[OfferParameter], Field(min_length=1, max_length=1)]


CardComponent = Annotated[HeaderComponent | BodyComponent | ButtonComponent,
                          Field(discriminator="type")]


class Card(WireModel):
    card_index: Annotated[int, Field(ge=0, lt=MAX_CARDS)]
    components: Annotated[list[CardComponent], Field(min_length=1)]


class CarouselComponent(WireModel):
    type: Literal["carousel"]
    cards: Annotated[list[Card], Field(min_length=1, max_length=MAX_CARDS)]


Component = Annotated[HeaderComponent | BodyComponent | ButtonComponent | OfferComponent
                      | CarouselComponent, Field(discriminator="type")]


class Language(WireModel):
    code: Annotated[str, Field(min_length=2, max_length=15)]
    policy: Literal["deterministic"] | None = None


class TemplateContent(WireModel):
    name: Annotated[str, Field(min_length=1, max_length=512)]
    language: Language
    components: list[Component] | None = None


# --- the request --------------------------------------------------------------------------

class SendRequest(WireModel):
    """The body of ``POST /{phone-number-id}/messages``: one message to one user.

    ``biz_opaque_callback_data`` (up to 512 characters) comes back in every status webhook of
    the message; the bridge puts CleverTap's msgId there, and the mock counts requests by it.
    """

    messaging_product: Literal["whatsapp"]
    recipient_type: Literal["individual"] | None = None
    to: Annotated[str, Field(min_length=1, max_length=32)]
    type: MessageType = "text"  # Meta's default when type is left out
    context: Context | None = None
    biz_opaque_callback_data: Annotated[str, Field(max_length=MAX_OPAQUE)] | None = None
    text: TextContent | None = None
    image: ImageContent | None = None
    audio: AudioContent | None = None
    video: VideoContent | None = None
    document: DocumentContent | None = None
    template: TemplateContent | None = None

    @model_validator(mode="after")
    def _content_matches_type(self) -> SendRequest:
        if getattr(self, self.type) is None:
            raise ValueError(f"content_missing:{self.type}")
        extra = [kind for kind in CONTENT_TYPES if kind != self.type
                 and getattr(self, kind) is not None]
        if extra:
            raise ValueError(f"content_extra:{self.type}:{extra[0]}")
        return self

    def to_json(self) -> bytes:
        return json.dumps(self.to_wire(), separators=(",", ":"), ensure_ascii=False).encode()


class MarkRead(WireModel):
    """``POST /{phone-number-id}/messages`` marking a user's message read (the blue ticks):
    cloud-api/guides/mark-message-as-read. Meta answers ``{"success": true}``."""

    messaging_product: Literal["whatsapp"]
    status: Literal["read"]
    message_id: Text


# --- answers ------------------------------------------------------------------------------

class SendContact(OpenModel):
    input: str
    wa_id: str


class SentMessage(OpenModel):
    id: Annotated[str, Field(min_length=1)]
    #: ``accepted``, ``held_for_quality_assessment`` or ``paused`` (marketing messages).
    message_status: str | None = None


class SendResponse(OpenModel):
    """Meta's 200 answer to a send."""

    messaging_product: str
    contacts: list[SendContact] = Field(default_factory=list)
    messages: Annotated[list[SentMessage], Field(min_length=1)]

    @property
    def wamid(self) -> str:
        return self.messages[0].id


class ErrorData(OpenModel):
    messaging_product: str | None = None
    details: str | None = None


class GraphError(OpenModel):
    message: str
    type: str | None = None
    code: int
    error_subcode: int | None = None
    error_data: ErrorData | None = None
    fbtrace_id: str | None = None

    @property
    def details(self) -> str:
        return (self.error_data.details if self.error_data else None) or self.message


class ErrorBody(OpenModel):
    """Graph's error answer: ``{"error": {...}}``."""

    error: GraphError


class MediaInfo(OpenModel):
    """``GET /{media-id}``: where to download the media (with the same bearer token)."""

    messaging_product: str | None = None
    url: str
    mime_type: str
    sha256: str
    file_size: int
    id: str


# --- error codes --------------------------------------------------------------------------

@dataclass(frozen=True)
class MetaCode:
    """One Cloud API error code (cloud-api/support/error-codes)."""

    title: str
    http_status: int
    details: str
    #: "sync": the answer to the request; "async": a ``failed`` status webhook after a 200
    #: with a wamid, as Meta documents for the code.
    delivery: Literal["sync", "async"] = "sync"
    type: str = "OAuthException"


ERRORS: dict[int, MetaCode] = {
    0: MetaCode("AuthException", 401, "We were unable to authenticate the app user."),
    100: MetaCode("Invalid parameter", 400, "The request included one or more unsupported or "
                  "misspelled parameters."),
    190: MetaCode("Access token has expired", 401, "Invalid OAuth access token - Cannot "
                  "parse access token"),
    4: MetaCode("API Too Many Calls", 429, "The app has reached its API call rate limit."),
    80007: MetaCode("Rate limit issues", 400, "The WhatsApp Business Account has reached its "
                    "rate limit."),
    130429: MetaCode("Rate limit hit", 400, "Message failed to send because there were too "
                     "many messages sent from this phone number in a short period of time"),
    131056: MetaCode("(Business Account, Consumer Account) pair rate limit hit", 400,
                     "Message failed to send because there were too many messages sent from "
                     "this phone number to the same phone number in a short period of time"),
    131000: MetaCode("Something went wrong", 500, "Message failed to send due to an unknown "
                     "error."),
    131008: MetaCode("Required parameter is missing", 400, "The request is missing a "
                     "required parameter."),
    131009: MetaCode("Parameter value is not valid", 400, "One or more parameter values are "
                     "invalid."),
    131026: MetaCode("Message undeliverable", 400, "Message failed to send because the "
                     "recipient's phone number is not a WhatsApp phone number, or the "
                     "recipient has not accepted the new Terms of Service and Privacy Policy, "
                     "or uses an old WhatsApp version.", delivery="async"),
    131047: MetaCode("Re-engagement message", 400, "Message failed to send because more than "
                     "24 hours have passed since the customer last replied to this number.",
                     delivery="async"),
    131051: MetaCode("Unsupported message type", 400, "Unsupported message type."),
    132000: MetaCode("Number of parameters does not match the expected number of params", 400,
                     "The number of variable parameter values included in the request did not "
                     "match the number of variable parameters defined in the template."),
    132001: MetaCode("Template name does not exist in the translation", 404, "The template "
                     "does not exist in the specified language or the template has not been "
                     "approved."),
    132012: MetaCode("Parameter format does not match format in the created template", 400,
                     "Variable parameter values formatted incorrectly."),
    132015: MetaCode("Template is Paused", 400, "Template is paused due to low quality so it "
                     "cannot be sent in a template message."),
    132016: MetaCode("Template is Disabled", 400, "Template has been paused too many times due "
                     "to low quality and is now permanently disabled."),
}

#: Codes that mean "too fast, try again later": the bridge retries them with backoff and
#: slows down, it does not fail the message.
RATE_LIMIT_CODES = frozenset({4, 80007, 130429, 131056})
#: The token was refused: every further send will be refused the same way.
AUTH_CODES = frozenset({0, 190})
#: Meta's own trouble: retry later (cloud-api/support/error-codes: 1, 2, 131000, 131016).
TRANSIENT_CODES = frozenset({1, 2, 131000, 131016})
HREF = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"


def fbtrace_id() -> str:
    return secrets.token_urlsafe(16)[:22]


def error_body(code: int, details: str | None = None, *, title: str | None = None,
               subcode: int | None = None) -> dict[str, Any]:
    """Graph's error answer for ``code``: ``message`` is "(#code) Title" as Meta writes it,
    ``details`` what was wrong (the parameter, the template, the number)."""
    known = ERRORS.get(code)
    name = title or (known.title if known else "Unknown error")
    error: dict[str, Any] = {
        "message": f"(#{code}) {name}", "type": known.type if known else "OAuthException",
        "code": code,
        "error_data": {"messaging_product": "whatsapp",
                       "details": details or (known.details if known else name)},
        "fbtrace_id": fbtrace_id()}
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}


def http_status(code: int) -> int:
    known = ERRORS.get(code)
    return known.http_status if known else 400


def status_error(code: int, details: str | None = None) -> dict[str, Any]:
    """One ``statuses[].errors[]`` item of a ``failed`` status webhook, as Meta sends it."""
    known = ERRORS.get(code)
    title = known.title if known else "Unknown error"
    return {"code": code, "title": title, "message": title,
            "error_data": {"details": details or (known.details if known else title)},
            "href": HREF}


def success_body(to: str, wamid: str, wa_id: str | None = None,
                 message_status: str | None = "accepted") -> dict[str, Any]:
    message: dict[str, Any] = {"id": wamid}
    if message_status:
        message["message_status"] = message_status
    return {"messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": wa_id or to.lstrip("+")}],
            "messages": [message]}


def new_wamid() -> str:
    """A wamid shaped like Meta's (``wamid.`` and base64 of an opaque id)."""
    import base64

    return "wamid." + base64.b64encode(b"\x15\x02\x00\x11\x18\x12" + secrets.token_bytes(18)
                                       ).decode()


# --- reading Meta's answer (the bridge) ---------------------------------------------------

@dataclass(frozen=True)
class Answer:
    """What one answer from Meta means: a wamid, a Graph error, or nothing readable."""

    status: int
    wamid: str | None = None
    error: GraphError | None = None
    unreadable: str | None = None  # why the answer could not be read (HTML, empty, ...)

    @property
    def rate_limited(self) -> bool:
        return self.error is not None and self.error.code in RATE_LIMIT_CODES


#: The longest text of Meta's error kept (message, details): they are one line on Meta.
MAX_ERROR_TEXT = 1000


def _safe(error: GraphError) -> GraphError:
    """Meta's words made safe once, here where they enter (control characters escaped,
    secrets masked, capped), so logs, DLRs and reports can take them as they are."""
    from ctwa.infra.safetext import safe_text

    def clean(text: str) -> str:
        return safe_text(text, keep_lines=False, limit=MAX_ERROR_TEXT)

    data = error.error_data
    if data is not None and data.details is not None:
        data = data.model_copy(update={"details": clean(data.details)})
    return error.model_copy(update={"message": clean(error.message), "error_data": data,
                                    "type": clean(error.type) if error.type else error.type})


def read_answer(status: int, body: bytes) -> Answer:
    """Meta's answer to a send, read by the one model: a 2xx with ``messages[0].id``, or
    ``{"error": ...}`` with a code (its texts made safe); anything else (an HTML error page
    from a proxy, an empty body) is ``unreadable`` with a short reason, never an exception."""
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        kind = "HTML" if body.lstrip()[:1] == b"<" else "not JSON"
        return Answer(status, unreadable=f"HTTP {status}, {kind} ({len(body)} bytes)")
    try:
        if 200 <= status < 300:
            return Answer(status, wamid=SendResponse.model_validate(document).wamid)
        return Answer(status, error=_safe(ErrorBody.model_validate(document).error))
    except ValidationError:
        return Answer(status, unreadable=f"HTTP {status}, JSON without "
                      + ("messages[0].id" if 200 <= status < 300 else "error.code"))


# --- validation as Meta answers it (the mock) ---------------------------------------------

def _where(loc: tuple[Any, ...], document: Any) -> str:
    return _format(_parts(loc, document))


def _format(parts: list[str]) -> str:
    if not parts:
        return "body"
    return parts[0] + "".join(f"[{p}]" for p in parts[1:])


def _parts(loc: tuple[Any, ...], document: Any) -> list[str]:
    parts: list[str] = []
    node, owner, field = document, None, ""
    after_index = False
    for n, part in enumerate(loc):
        last = n == len(loc) - 1
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and part < len(node) else None
            parts.append(str(part))
            after_index = True
            continue
        if after_index and _tagged(field, owner) and (
                not isinstance(node, dict) or part == node.get("type") or part not in node):
            after_index = False  # the union's tag pydantic puts after a list index
            continue
        after_index = False
        if isinstance(node, dict) and part in node:
            owner, field, node = node, str(part), node[part]
            parts.append(str(part))
        elif last and isinstance(node, dict) and not (
                isinstance(part, str) and (part in ("int", "str") or "[" in part)):
            parts.append(str(part))  # a key the document lacks: what is missing
    return parts


def _tagged(field: str, owner: Any) -> bool:
    """Whether the list in ``owner[field]`` holds a union pydantic tags: components and
    parameters do, but cards and a limited-time offer's parameters are of one kind."""
    if field == "parameters":
        return not (isinstance(owner, dict) and owner.get("type") == "limited_time_offer")
    return field == "components"


_KINDS = {"int": "an integer", "string": "a string", "bool": "true or false",
          "float": "a number", "dict": "an object", "model": "an object", "list": "an array"}


def _one(error: Any, document: Any) -> tuple[int, str]:
    kind, loc, message = error["type"], tuple(error["loc"]), str(error.get("msg", ""))
    where = _where(loc, document)
    if kind == "extra_forbidden":
        parent = _format(_parts(loc, document)[:-1])
        return 100, f"Unexpected key \"{loc[-1]}\" on param \"{parent}\"."
    if kind == "missing":
        return (131008 if len(loc) > 1 else 100), f"The parameter {where} is required."
    if kind in ("literal_error", "union_tag_invalid", "union_tag_not_found"):
        expected = error.get("ctx", {}).get("expected_tags") or error.get("ctx", {}).get(
            "expected", "")
        if kind == "union_tag_not_found":
            return 131008, f"The parameter {where}[type] is required."
        if kind == "union_tag_invalid":
            where += "[type]"
        return 100, f"Param {where} must be one of {{{expected}}}".replace("'", "")
    if kind.startswith("string_too_long") or kind == "too_long":
        limit = error.get("ctx", {}).get("max_length")
        return 131009, f"Param {where} is too long (at most {limit})."
    if kind.startswith("string_too_short") or kind == "too_short":
        return 131008, f"The parameter {where} is required and must not be empty."
    if kind == "value_error":
        return _custom(message.removeprefix("Value error, "), where)
    if kind.endswith("_type") or kind.endswith("_parsing"):
        wanted = _KINDS.get(kind.split("_")[0], "of another type")
        return 100, f"Param {where} must be {wanted}."
    return 131009, f"Param {where} is not valid."


def _custom(code: str, where: str) -> tuple[int, str]:
    name, _, rest = code.partition(":")
    if name == "media_source":
        return 100, f"Param {where} must have exactly one of id or link."
    if name == "content_missing":
        return 131008, f"The parameter {rest} is required for a message of type {rest}."
    if name == "content_extra":
        kind, _, other = rest.partition(":")
        return 100, f"Unexpected key \"{other}\" on a message of type {kind}."
    if name == "button_index":
        return 131009, f"Param {where}[index] must be a button position, 0 to {MAX_BUTTON_INDEX}."
    if name == "button_parameter":
        sub_type, _, wanted = rest.partition(":")
        return 131009, (f"Param {where}[parameters][0][type] must be {wanted} for a "
                        f"{sub_type} button.")
    return 131009, f"Param {where} is not valid."


def parse_request(document: Any) -> tuple[SendRequest | None, list[tuple[int, str]]]:
    """``document`` as a send request, or None and why Meta refuses it: (Meta code, details)
    per problem, the first the one Meta answers with."""
    if not isinstance(document, dict):
        return None, [(100, "The request body must be a JSON object.")]
    try:
        return SendRequest.model_validate(document), []
    except ValidationError as exc:
        return None, list(dict.fromkeys(_one(error, document) for error in exc.errors()))


def request_problems(document: Any) -> list[tuple[int, str]]:
    """Why ``document`` is not a send request Meta accepts; empty when it is one."""
    return parse_request(document)[1]


# --- webhook signatures -------------------------------------------------------------------

def sign(app_secret: str, body: bytes) -> str:
    """``X-Hub-Signature-256``'s value: ``sha256=`` and the hex HMAC-SHA256 of the raw body
    with the app secret (graph-api/webhooks/getting-started, "Validating Payloads")."""
    import hashlib
    import hmac

    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(app_secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` signs ``body`` (constant-time; a missing header does not)."""
    import hmac

    return bool(header) and hmac.compare_digest(sign(app_secret, body).encode(),
                                                str(header).strip().encode())
