"""A mock BSP messaging endpoint: accepts CleverTap's payloads, checks them with the same models
ctwa sends with, answers per the contract, and sends DLR and inbound callbacks afterwards."""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ctwa.wire.callbacks import CALLBACK_VERSION
from ctwa.wire.codes import CALLBACK_ERRORS, MESSAGING_ERRORS
from ctwa.wire.kinds import detect_kind
from ctwa.wire.lint import lint_document
from ctwa.wire.outbound import VALIDATION_NAMESPACE

#: The ways the mock BSP can misbehave, as real BSPs do when they are wrong (``--misbehave``),
#: each with the real failure it models (README, "The sandbox").
FAULTS = {
    "slow": "answers after 1.2 s, over CleverTap's deadline",
    "slow-ceiling": "handles at most N messages a second (slow-ceiling=N, default 20), so "
                    "answers queue and latency grows with load",
    "late-dlr": "sends the sent status after 11 s",
    "no-dlr": "sends no callback at all for one message in five",
    "no-read": "never sends read",
    "duplicate-dlr": "sends delivered twice",
    "out-of-order": "sends delivered before sent",
    "meta-format": "sends Meta's Cloud API webhook shape instead of CleverTap's",
    "wrong-msgid": "uses its own message ids instead of CleverTap's msgId",
    "no-msgid-dlr": "sends delivered and read without a msgId",
    "no-context": "replies without context (and replies to every message)",
    "bad-codes": "fails one message in five with Meta's code 131026 instead of 1000-1010",
    "wrong-codes": "fails one message in five with a title that contradicts its code (1004 "
                   "\"Invalid phone number\") or a code outside 1000-1010 (404)",
    "date-timestamps": "writes timestamps as dates (\"2023-06-05 13:16:18\"), not epoch "
                       "seconds",
    "wrapped-callbacks": "posts each callback wrapped as {\"url\": ..., \"payload\": "
                         "<the callback>}",
    "bad-callback-query": "posts callbacks to the callback URL with ?a=undefined in its query",
    "accept-then-drop": "accepts every message, then sends nothing for templates and non-text "
                        "freeform (a worker that crashes on them)",
    "empty-200": "answers HTTP 200 with an empty body (and still sends the callbacks)",
    "no-auth": "accepts any credentials, or none",
    "validation-error": "answers the validation payload with HTTP 500",
}
SLOW_SECONDS = 1.2
LATE_DLR_SECONDS = 11.0
#: no-dlr, bad-codes and wrong-codes hit every this-many-th message unless given a share.
FAULT_EVERY = 5
DEFAULT_SHARES = {"no-dlr": 1 / FAULT_EVERY, "bad-codes": 1 / FAULT_EVERY,
                  "wrong-codes": 1 / FAULT_EVERY}
#: slow-ceiling's messages a second unless given (slow-ceiling=50).
DEFAULT_CEILING = 20.0
#: What wrong-codes sends, in turn: a title that names another code's meaning (ERRATA 19,
#: as a real middleware mapped them), and a code outside the table.
WRONG_CODES = ((1004, "Invalid phone number"), (1006, "Too many send requests"),
               (404, "Recipient not found"))


def check_faults(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The faults named, each known (one clear line with the list otherwise)."""
    return parse_faults(names)[0]


def parse_faults(names: list[str] | tuple[str, ...]) -> tuple[tuple[str, ...], dict[str, float]]:
    """``FAULT[=SHARE]`` items (comma-separated too): the faults, and the share of messages
    each hits (``wrong-msgid=10%``, ``no-dlr=0.5``; for slow-ceiling, messages a second)."""
    from ctwa.infra.errors import InputError

    wanted: dict[str, None] = {}
    shares: dict[str, float] = {}
    for item in (n.strip() for name in names for n in name.split(",")):
        if not item:
            continue
        name, _, value = item.partition("=")
        name = name.strip()
        if name not in FAULTS:
            raise InputError(f"--misbehave {name!r}: not a fault the sandbox knows",
                             hint="one or more of " + ", ".join(FAULTS))
        wanted[name] = None
        if value.strip():
            shares[name] = _share(name, value.strip())
    return tuple(wanted), shares


def _share(name: str, value: str) -> float:
    from ctwa.infra.errors import InputError

    text = value.removesuffix("%").removesuffix("/s").strip()
    try:
        number = float(text)
    except ValueError:
        number = -1.0
    if name == "slow-ceiling":
        if not 0 < number < 1e6:
            raise InputError(f"--misbehave {name}={value}: expected messages a second, e.g. "
                             f"{name}=50")
        return number
    share = number / 100 if value.endswith("%") else number
    if not 0 < share <= 1:
        raise InputError(f"--misbehave {name}={value}: expected a share of messages, e.g. "
                         f"{name}=10% or {name}=0.1")
    return share


@dataclass
class BspSettings:
    username: str | None = "ctwa"
    password: str | None = "sandbox"
    latency: tuple[float, float] = (0.0, 0.0)  # seconds, uniform between the two
    fail_rates: dict[int, float] = field(default_factory=dict)  # 2000-2004 -> probability
    max_concurrency: int = 2000  # past this many in flight: 429
    unsubscribed: tuple[str, ...] = ("0003",)  # numbers ending so: 2003
    dlr_failures: dict[str, int] = field(default_factory=lambda: {"0006": 1006, "0009": 1009})
    status_url: str | None = None
    inbound_url: str | None = None
    dlr_delays: tuple[float, float, float] = (0.05, 0.15, 0.3)  # sent, delivered, read
    reply_rate: float = 0.0
    seed: int | None = None
    misbehave: tuple[str, ...] = ()
    #: The share of messages each fault hits (default: all, one in five for no-dlr,
    #: bad-codes and wrong-codes); for slow-ceiling, its messages a second.
    shares: dict[str, float] = field(default_factory=dict)
    #: A simulated user behind every number: replies to each template (the first copy it
    #: gets) with every inbound kind (with context) and taps its URL buttons; what
    #: `ctwa certify` asks a human tester to do.
    simulated_user: bool = False


@dataclass
class BspState:
    received: int = 0
    accepted: int = 0
    refused: dict[int, int] = field(default_factory=dict)
    throttled: int = 0
    in_flight: int = 0
    callbacks_sent: int = 0
    callbacks_failed: int = 0
    last_payload: Any = None
    statuses_sent: dict[str, int] = field(default_factory=dict)  # by status, as delivered
    replies_sent: int = 0


def _failure(code: int, message: str | None = None) -> JSONResponse:
    return JSONResponse({"status": "failure", "error": {
        "code": code, "message": message or MESSAGING_ERRORS[code]}})


class MockBsp:
    def __init__(self, settings: BspSettings) -> None:
        self.settings = settings
        self.state = BspState()
        self.random = random.Random(settings.seed)
        self._pools: dict[str, Any] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._expected: str | None = None
        self._counts: dict[str, int] = {}  # messages each fault was considered for
        self._next_slot = 0.0  # slow-ceiling: when the next message can be handled
        self._wrong_codes = 0  # wrong-codes sends WRONG_CODES in turn
        self._answered: set[tuple[str, str]] = set()  # (number, template) the user answered
        self.disconnects: Any = None  # the sandbox's count of clients that left mid-request
        if settings.username is not None:
            token = f"{settings.username}:{settings.password}".encode()
            self._expected = "Basic " + base64.b64encode(token).decode()

    def routes(self) -> list[Route]:
        return [Route("/messages", self.messages, methods=["POST"]),
                Route("/stats", self.stats, methods=["GET"])]

    async def stats(self, request: Request) -> JSONResponse:
        """What the mock BSP has seen and sent: handy while building against it."""
        state = self.state
        return JSONResponse({
            "received": state.received, "accepted": state.accepted,
            "refused": {str(k): v for k, v in sorted(state.refused.items())},
            "throttled": state.throttled, "in_flight": state.in_flight,
            "callbacks_sent": state.callbacks_sent, "callbacks_failed": state.callbacks_failed,
            "statuses_sent": dict(sorted(state.statuses_sent.items())),
            "replies_sent": state.replies_sent, "misbehave": list(self.settings.misbehave),
            "disconnected": self.disconnects.count if self.disconnects is not None else 0,
            "last_payload": state.last_payload,
            "callbacks_to": {"status": self.settings.status_url,
                             "inbound": self.settings.inbound_url}})

    async def messages(self, request: Request) -> Response:
        state = self.state
        state.received += 1
        if state.in_flight >= self.settings.max_concurrency:
            state.throttled += 1
            return JSONResponse({"message": "Too many requests to process"}, status_code=429)
        state.in_flight += 1
        try:
            low, high = self.settings.latency
            if "slow-ceiling" in self.settings.misbehave:
                await asyncio.sleep(self._queue())
            if self._hit("slow"):
                await asyncio.sleep(SLOW_SECONDS)
            elif high > 0:
                await asyncio.sleep(self.random.uniform(low, high))
            return self._answer(request, await request.body())
        finally:
            state.in_flight -= 1

    def _hit(self, fault: str) -> bool:
        """Whether this fault hits the message now considered: exactly its share of them,
        spread evenly (a share of 10% hits the 10th, 20th, ...)."""
        if fault not in self.settings.misbehave:
            return False
        share = self.settings.shares.get(fault, DEFAULT_SHARES.get(fault, 1.0))
        n = self._counts[fault] = self._counts.get(fault, 0) + 1
        return int(round(n * share, 9)) > int(round((n - 1) * share, 9))

    def _queue(self) -> float:
        """slow-ceiling: how long this message waits for its turn at N messages a second."""
        rate = self.settings.shares.get("slow-ceiling", DEFAULT_CEILING)
        now = time.monotonic()
        slot = max(now, self._next_slot)
        self._next_slot = slot + 1.0 / rate
        return slot - now

    def _refuse(self, code: int, message: str | None = None) -> JSONResponse:
        self.state.refused[code] = self.state.refused.get(code, 0) + 1
        return _failure(code, message)

    def _answer(self, request: Request, body: bytes) -> Response:
        given = request.headers.get("authorization", "")
        if self._expected and not hmac.compare_digest(given.encode(), self._expected.encode()) \
                and not self._hit("no-auth"):
            return self._refuse(2000)
        try:
            document = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return self._refuse(2004, "the body is not JSON")
        kind = detect_kind(document)
        if kind not in ("template", "freeform", "validation"):
            return self._refuse(2004, "not a CleverTap message payload")
        result = lint_document(document, kind)
        if not result.ok:
            first = result.errors[0]
            return self._refuse(2001, f"{first.path}: {first.message}")
        payload = result.value
        self.state.last_payload = payload.to_wire()
        digits = payload.to.lstrip("+")
        if not digits.isdecimal() or not 8 <= len(digits) <= 15:
            return self._refuse(2002)
        if digits.endswith(self.settings.unsubscribed):
            return self._refuse(2003)
        for code, rate in sorted(self.settings.fail_rates.items()):
            if self.random.random() < rate:
                return self._refuse(code)
        self.state.accepted += 1
        is_validation = (kind == "validation" or getattr(getattr(payload, "template", None),
                                                         "namespace", "") == VALIDATION_NAMESPACE)
        if is_validation and "validation-error" in self.settings.misbehave:
            return JSONResponse({"error": "internal error"}, status_code=500)
        if not is_validation and self.settings.status_url:
            buttons = _url_buttons(document) if kind == "template" else 0
            # the simulated user answers a template once, as a person would, not every copy
            # of a campaign
            name = str(getattr(getattr(payload, "template", None), "namespace", ""))
            answers = kind == "template" and (digits, name) not in self._answered
            if answers:
                self._answered.add((digits, name))
            self._spawn(self._callbacks(payload.msgId, digits, payload.wabaNumber,
                                        template=answers, url_buttons=buttons,
                                        kind=_message_kind(document, kind)))
        if self._hit("empty-200"):
            return Response(b"", status_code=200)
        return JSONResponse({"status": "success"})

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, url: str, body: dict[str, Any]) -> bool:
        """Deliver one callback. Campaign-sized bursts of callbacks go through the load-mode
        client: httpx's pool slows to tens of requests a second under them."""
        from ctwa.http import load_headers
        from ctwa.http.raw import HttpError, Pool

        pool = self._pools.get(url)
        if pool is None:
            pool = self._pools[url] = Pool(url, load_headers(None, None), size=50, timeout=10)
        try:
            status, _ = await pool.post(json.dumps(body).encode())
            ok = 200 <= status < 300
        except HttpError:  # a callback that cannot be delivered is counted, not raised
            ok = False
        if ok:
            self.state.callbacks_sent += 1
        else:
            self.state.callbacks_failed += 1
        return ok

    def _steps(self, number: str, hits: set[str]) -> tuple[list[str], int | None, str | None]:
        """The statuses one message gets, its failure code and title: the rules by number,
        then the faults that hit it."""
        failure = next((code for suffix, code in self.settings.dlr_failures.items()
                        if number.endswith(suffix)), None)
        title = None
        if failure is None and not _possible(number):
            failure = 1002  # accepted, then failed as WhatsApp does for a number it cannot use
        if "bad-codes" in hits or ("bad-codes" in self.settings.misbehave
                                   and failure is not None):
            failure = 131026
        if "wrong-codes" in hits:
            failure, title = WRONG_CODES[self._wrong_codes % len(WRONG_CODES)]
            self._wrong_codes += 1
        if "no-dlr" in hits:
            return [], None, None
        if failure is not None:
            return ["sent", "failed"], failure, title
        steps = ["sent", "delivered"] + ([] if "no-read" in hits else ["read"])
        if "out-of-order" in hits:
            steps[0], steps[1] = steps[1], steps[0]
        if "duplicate-dlr" in hits:
            steps.insert(steps.index("delivered") + 1, "delivered")
        return steps, None, None

    def _faults_for(self, kind: str) -> set[str]:
        """The faults that hit the next message, each counted once."""
        hits = {fault for fault in self.settings.misbehave
                if fault not in ("accept-then-drop", "slow", "slow-ceiling", "empty-200",
                                 "no-auth", "validation-error") and self._hit(fault)}
        if kind != "text" and self._hit("accept-then-drop"):
            hits.add("accept-then-drop")
        return hits

    async def _callbacks(self, msg_id: str, number: str, waba: str, template: bool = False,
                         url_buttons: int = 0, kind: str = "template") -> None:
        """sent, then delivered and read (or failed, for numbers matching a rule), bent by
        the faults the sandbox was asked to show."""
        url = self.settings.status_url
        assert url is not None
        hits = self._faults_for(kind)
        if "accept-then-drop" in hits:
            return  # the worker crashed on this message: nothing is ever sent
        steps, failure, title = self._steps(number, hits)
        if "wrong-msgid" in hits:
            msg_id = f"wamid.{self.random.getrandbits(64):016x}"
        if "bad-callback-query" in hits:
            url += ("&" if "?" in url else "?") + "a=undefined"
        delays = list(self.settings.dlr_delays)
        delays += [delays[-1] + 0.05 * n for n in range(1, len(steps) - len(delays) + 1)]
        if "late-dlr" in hits:
            delays = [d + LATE_DLR_SECONDS for d in delays]
        previous = 0.0
        for step, delay in zip(steps, delays, strict=False):
            await asyncio.sleep(max(0.0, delay - previous))
            previous = delay
            entry: dict[str, Any] = {"msgId": msg_id, "status": step,
                                     "timestamp": _timestamp(hits)}
            if "no-msgid-dlr" in hits and step in ("delivered", "read"):
                del entry["msgId"]
            if step == "failed" and failure is not None:
                entry["error"] = {"code": failure, "title": title or CALLBACK_ERRORS.get(
                    failure, "Message failed")}
            body = (_meta_status(entry, number, waba) if "meta-format" in hits
                    else {"payloadVersion": CALLBACK_VERSION, "statuses": [entry]})
            if await self._post(url, _wrapped(body, url, hits)):
                self.state.statuses_sent[step] = self.state.statuses_sent.get(step, 0) + 1
        if failure is None and steps and self.settings.simulated_user and template:
            await self._simulated_user(msg_id, number, waba, url_buttons)
            return
        replies = self.settings.reply_rate or (1.0 if "no-context" in hits else 0.0)
        if (failure is None and steps and self.settings.inbound_url
                and self.random.random() < replies):
            reply: dict[str, Any] = {
                "payloadVersion": CALLBACK_VERSION, "from": number, "wabaNumber": waba,
                "timestamp": _timestamp(hits), "type": "text",
                "text": {"body": "Yes, please!"}}
            if "no-context" not in hits:
                reply["context"] = {"id": msg_id}
            inbound = self.settings.inbound_url
            if "bad-callback-query" in hits:
                inbound += ("&" if "?" in inbound else "?") + "a=undefined"
            if await self._post(inbound, _wrapped(reply, inbound, hits)):
                self.state.replies_sent += 1

    async def _simulated_user(self, msg_id: str, number: str, waba: str,
                              url_buttons: int) -> None:
        """The tester's phone: taps each tracked button, then replies with every kind."""
        url = self.settings.status_url
        assert url is not None
        for _ in range(url_buttons):
            entry = {"msgId": msg_id, "status": "clicked", "timestamp": str(int(time.time())),
                     "url": "https://example.com/tapped"}
            if await self._post(url, {"payloadVersion": CALLBACK_VERSION, "statuses": [entry]}):
                self.state.statuses_sent["clicked"] = self.state.statuses_sent.get(
                    "clicked", 0) + 1
        if not self.settings.inbound_url:
            return
        for kind, content in SIMULATED_REPLIES.items():
            reply: dict[str, Any] = {
                "payloadVersion": CALLBACK_VERSION, "from": number, "wabaNumber": waba,
                "timestamp": str(int(time.time())), "type": kind, **content}
            if "no-context" not in self.settings.misbehave:
                reply["context"] = {"id": msg_id}
            if await self._post(self.settings.inbound_url, reply):
                self.state.replies_sent += 1

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for pool in self._pools.values():
            pool.close()


def _timestamp(hits: set[str]) -> str:
    """Now as the contract writes it (epoch seconds), or as date-timestamps does."""
    if "date-timestamps" in hits:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    return str(int(time.time()))


def _wrapped(body: dict[str, Any], url: str, hits: set[str]) -> dict[str, Any]:
    """The callback as wrapped-callbacks posts it: ``{"url": ..., "payload": ...}``."""
    return {"url": url, "payload": body} if "wrapped-callbacks" in hits else body


def _message_kind(document: dict[str, Any], kind: str) -> str:
    """template, or the freeform message's type (text, image, ...)."""
    if kind != "freeform":
        return "template"
    return str(document.get("type") or "freeform")


def _meta_status(entry: dict[str, Any], number: str, waba: str) -> dict[str, Any]:
    """One status in the shape of Meta's Cloud API webhook, which some BSPs pass on as is."""
    status: dict[str, Any] = {"id": entry["msgId"], "status": entry["status"],
                              "timestamp": entry["timestamp"], "recipient_id": number}
    if "error" in entry:
        status["errors"] = [{"code": entry["error"]["code"], "title": entry["error"]["title"]}]
    return {"object": "whatsapp_business_account", "entry": [{"id": "0", "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": waba, "phone_number_id": "0"},
            "statuses": [status]}}]}]}


#: What the simulated user sends back: one message of every inbound kind.
SIMULATED_REPLIES: dict[str, dict[str, Any]] = {
    "text": {"text": {"body": "Yes, please!"}},
    "image": {"image": {"mediaURL": "https://media.example.com/photo.jpeg",
                        "mimetype": "image/jpeg", "caption": "a photo"}},
    "file": {"document": {"mediaURL": "https://media.example.com/invoice.pdf",
                          "mimeType": "application/pdf", "filename": "invoice.pdf"}},
    "location": {"location": {"latitude": "12.9716", "longitude": "77.5946", "name": "Home"}},
    "audio": {"audio": {"mediaURL": "https://media.example.com/note.ogg",
                        "mimetype": "audio/ogg"}},
    "video": {"video": {"mediaURL": "https://media.example.com/clip.mp4",
                        "mimetype": "video/mp4"}},
}


def _possible(number: str) -> bool:
    """Whether WhatsApp could deliver to this number at all (a real country, a possible
    length); the sandbox's test numbers (91 9xxx...) are."""
    import phonenumbers

    try:
        parsed = phonenumbers.parse("+" + number)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_possible_number(parsed)


def _url_buttons(document: dict[str, Any]) -> int:
    """URL buttons in a template payload: the ones a user can tap."""
    count = 0
    for component in document.get("components") or []:
        if isinstance(component, dict) and str(component.get("type", "")).lower() == "button" \
                and "url" in str(component.get("subType", component.get("sub_type", ""))).lower():
            count += 1
    return count
