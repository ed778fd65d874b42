"""The mock Cloud API: routes, the send path, templates, media, and what it has seen."""

from __future__ import annotations

import asyncio
import base64
import bisect
import functools
import hmac
import json
import random
import re
import secrets
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ctwa.sandbox.meta.templates import TemplateBook, check_send
from ctwa.sandbox.meta.user import REPLY_KINDS, SAMPLE_MEDIA, USER_NAME, Media, reply_content
from ctwa.sandbox.meta.webhooks import Update, WebhookSender
from ctwa.wire.cloudapi import (
    ERRORS,
    GRAPH_VERSION,
    ButtonComponent,
    MarkRead,
    SendRequest,
    error_body,
    http_status,
    new_wamid,
    parse_request,
    status_error,
    success_body,
)

VERSION = re.compile(r"^v\d{1,2}\.\d$")
#: The ways the mock Cloud API can fail a send as Meta (or what stands in front of it) does,
#: each for a share of sends (``faults``): the bridge's bad-weather cases.
FAULTS = {
    "html": "answers HTTP 502 with an HTML page (a proxy in front of Graph); not sent",
    "hang": "sends the message (its statuses come) but answers only after hang_seconds, so "
            "the client times out not knowing",
    "slow": "answers after slow_seconds",
    "500": "answers 131000 (something went wrong) with HTTP 500; not sent",
}
HTML_PAGE = (b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>"
             b"<h1>Bad Gateway</h1></body></html>")
#: Requests bigger than this are refused (Graph refuses large bodies too).
MAX_BODY = 256 * 1024
MAX_PAGE = 500
TICK = 0.01  # the timing wheel's slot, seconds
DAY = 24 * 3600


@dataclass
class MetaSettings:
    """Everything the mock can be told; defaults are a working sandbox number."""

    token: str = "sandbox-meta-token"
    app_secret: str = "sandbox-app-secret"
    phone_number_id: str = "100000000000001"
    display_phone_number: str = "919999999998"
    waba_id: str = "200000000000001"
    #: Where signed webhooks go (the bridge's ``/webhook``); None: none are sent.
    webhook_url: str | None = None
    #: With it, the webhook URL is first verified as Meta does (hub.challenge); None: not.
    verify_token: str | None = None
    #: Messages/s the number may send (Meta's default throughput is 80); 0: no limit.
    mps: float = 80.0
    #: Token-bucket depth: how many may come at once after a quiet spell (default: ``mps``).
    burst: float | None = None
    #: Seconds between two messages to the same user before 131056; 0: off (Meta enforces
    #: about one per 6 s per pair; the sandbox leaves it off so campaigns to one tester pass).
    pair_interval: float = 0.0
    #: Answer delay range, seconds.
    latency: tuple[float, float] = (0.0, 0.0)
    #: Delays of sent, delivered and read after the send is accepted, seconds.
    status_delays: tuple[float, float, float] = (0.05, 0.15, 0.3)
    read: bool = True  # users with read receipts on
    #: Post each message's statuses newest first (read, delivered, sent): Meta does not
    #: promise the order webhooks arrive in, so a receiver must order them itself.
    out_of_order: bool = False
    #: Number suffix -> Meta error code, sent asynchronously as a failed status (131026:
    #: not on WhatsApp; 131050: the user stopped marketing messages).
    failing_numbers: dict[str, int] = field(
        default_factory=lambda: {"0026": 131026, "0050": 131050})
    #: The 24-hour customer service window for non-template messages: "open" (open for every
    #: number but those ending in ``closed_window``), or "strict" (open only after the user
    #: wrote, as on Meta).
    window: str = "open"
    closed_window: tuple[str, ...] = ("0047",)
    #: Meta code -> share of accepted-looking sends failed with it (sync codes in the
    #: answer, async ones as a failed status).
    fail_rates: dict[int, float] = field(default_factory=dict)
    #: Fault name (:data:`FAULTS`) -> share of sends it hits.
    faults: dict[str, float] = field(default_factory=dict)
    hang_seconds: float = 30.0
    slow_seconds: float = 2.0
    #: The user behind each number replies to each template (once per number and template)
    #: with every kind, and taps URL buttons whose URL starts with one of ``tap_prefixes``.
    simulated_user: bool = False
    tap_prefixes: tuple[str, ...] = ()
    reply_delay: float = 0.05
    #: The app's webhook version (App Dashboard > Webhooks): from v24.0 statuses carry
    #: ``pricing.type`` and no ``conversation`` (status webhook reference).
    webhook_version: str = GRAPH_VERSION
    #: Updates per webhook POST at most: what has queued up goes together (Meta sends one at
    #: a time when it keeps up, several in one ``value`` under load), and a POST may also
    #: wait up to ``webhook_batch_wait`` seconds for more (0: it never waits).
    webhook_batch: int = 100
    webhook_batch_wait: float = 0.0
    webhook_concurrency: int = 16
    webhook_timeout: float = 10.0
    webhook_retry_base: float = 0.5
    webhook_retry_max: float = 30.0
    webhook_retry_for: float = 900.0
    seed: int | None = None


@dataclass
class SentRecord:
    wamid: str
    to: str
    type: str
    key: str  # biz_opaque_callback_data, or a digest of the body
    at: float  # time.monotonic() when accepted
    template: str | None = None
    failure: int | None = None


@dataclass
class MetaState:
    """Counters for tests (read from any thread; written by the server's loop only)."""

    requests: int = 0
    accepted: int = 0
    refused: Counter[int] = field(default_factory=Counter)  # Meta code -> count
    sends_by_key: Counter[str] = field(default_factory=Counter)  # accepted, by key
    requests_by_key: Counter[str] = field(default_factory=Counter)  # valid requests, by
    # biz_opaque_callback_data (refused ones too: a 130429 retried counts each time)
    sent: dict[str, SentRecord] = field(default_factory=dict)  # by wamid
    accepted_at: list[float] = field(default_factory=list)  # monotonic, in order
    statuses_queued: Counter[str] = field(default_factory=Counter)
    replies_queued: int = 0
    taps: list[dict[str, Any]] = field(default_factory=list)
    media_downloads: int = 0
    template_pages: int = 0
    faults: Counter[str] = field(default_factory=Counter)  # faults shown, by name
    marked_read: set[str] = field(default_factory=set)  # user messages marked read
    last_request: Any = None

    def duplicates(self) -> dict[str, int]:
        """Keys (CleverTap msgIds, when the sender puts them in biz_opaque_callback_data)
        accepted more than once."""
        return {key: n for key, n in list(self.sends_by_key.items()) if n > 1}  # a snapshot:
        # tests read it from their thread while the server's loop writes

    def requests_per_wamid(self) -> dict[str, int]:
        """For each wamid handed out: how many times the message it answered was accepted
        (its key's count; more than 1 is a message sent twice)."""
        return {wamid: self.sends_by_key[record.key] for wamid, record in list(self.sent.items())}

    def per_second(self) -> list[int]:
        """Accepted sends in each whole second since the first."""
        if not self.accepted_at:
            return []
        first = self.accepted_at[0]
        counts = Counter(int(t - first) for t in self.accepted_at)
        return [counts.get(s, 0) for s in range(max(counts) + 1)]

    def max_in_window(self, seconds: float = 1.0) -> int:
        """The most sends accepted within any window of ``seconds`` (a sliding window)."""
        times = list(self.accepted_at)
        best = 0
        for i, start in enumerate(times):
            best = max(best, bisect.bisect_left(times, start + seconds, lo=i) - i)
        return best


class _Bucket:
    def __init__(self, rate: float, depth: float) -> None:
        self.rate, self.depth = rate, depth
        self.tokens, self.at = depth, time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.depth, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


def _graph_error(code: int, details: str | None = None, **kwargs: Any) -> JSONResponse:
    return JSONResponse(error_body(code, details, **kwargs), status_code=http_status(code))


class MockMeta:
    """The Cloud API's send, templates and media endpoints, and its webhooks."""

    def __init__(self, settings: MetaSettings, templates: Sequence[dict[str, Any]]) -> None:
        self.settings = settings
        self.book = TemplateBook(templates)
        self.state = MetaState()
        self.random = random.Random(settings.seed)
        self.media: dict[str, Media] = {}
        self.bucket = (_Bucket(settings.mps, max(1.0, settings.burst or settings.mps))
                       if settings.mps > 0 else None)
        self.last_to: dict[str, float] = {}
        self.wrote_at: dict[str, float] = {}  # number -> when the user last wrote
        self.inbound: set[str] = set()  # wamids of the messages users sent
        self.answered: set[tuple[str, str]] = set()
        self.conversations: dict[tuple[str, str], tuple[str, float]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.wheel: dict[int, list[tuple[Any, ...]]] = {}  # slot -> statuses due in it
        self.scheduled = 0
        self.ticker: asyncio.Future[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.sender: WebhookSender | None = None
        self._tap_client: Any = None
        self._expected = f"Bearer {settings.token}".encode()
        match = re.match(r"^v(\d+)", settings.webhook_version)
        self.webhook_major = int(match.group(1)) if match else 0

    # --- routes ---------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [Route("/stats", self.stats, methods=["GET"]),
                Route("/media-download/{media_id}", self.download, methods=["GET"]),
                Route("/{version}/{node}/messages", self.messages, methods=["POST"]),
                Route("/{version}/{node}/message_templates", self.templates, methods=["GET"]),
                Route("/{version}/{node}", self.node, methods=["GET"]),
                Route("/{path:path}", self.unknown,
                      methods=["GET", "POST", "PUT", "DELETE", "PATCH"])]

    def _authorised(self, request: Request) -> bool:
        given = request.headers.get("authorization", "").encode()
        return hmac.compare_digest(given, self._expected)

    def _node_error(self, version: str, node: str, expected: str) -> JSONResponse | None:
        if not VERSION.match(version):
            return _graph_error(100, f"Unknown path components: /{version}/{node}",
                                title="Invalid parameter")
        if node != expected:
            return _graph_error(100, f"Unsupported request. Object with ID '{node}' does not "
                                "exist, cannot be loaded due to missing permissions, or does "
                                "not support this operation", subcode=33)
        return None

    async def messages(self, request: Request) -> Response:
        self.loop = asyncio.get_running_loop()
        state = self.state
        state.requests += 1
        low, high = self.settings.latency
        if high > 0:
            await asyncio.sleep(self.random.uniform(low, high))
        refusal = (_graph_error(190) if not self._authorised(request) else self._node_error(
            request.path_params["version"], request.path_params["node"],
            self.settings.phone_number_id))  # Graph checks the token first
        if refusal is not None:
            return self._count(refusal)
        body = await request.body()
        if len(body) > MAX_BODY:
            return self._refuse(100, f"The request body is {len(body)} bytes; at most "
                                f"{MAX_BODY} are taken")
        try:
            document = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return self._refuse(100, "The request body is not valid JSON")
        state.last_request = document
        if isinstance(document, dict) and "status" in document and "to" not in document:
            return self._mark_read(document)
        send, problems = parse_request(document)
        if send is None:
            return self._refuse(*problems[0])
        if send.biz_opaque_callback_data:
            state.requests_by_key[send.biz_opaque_callback_data] += 1
        digits = send.to.lstrip("+").replace(" ", "").replace("-", "")
        if not digits.isdecimal():
            return self._refuse(100, f"Param to ({send.to}) is not a phone number")
        if self.bucket is not None and not self.bucket.take():
            return self._refuse(130429)
        if self.settings.pair_interval > 0:
            now = time.monotonic()
            if now - self.last_to.get(digits, -1e9) < self.settings.pair_interval:
                return self._refuse(131056)
            self.last_to[digits] = now
        fault = self._fault()
        if fault == "html":
            return Response(HTML_PAGE, status_code=502, media_type="text/html")
        if fault == "500":
            return self._refuse(131000)
        if fault == "slow":
            await asyncio.sleep(self.settings.slow_seconds)
        failure = self._chance()
        if failure is not None and ERRORS[failure].delivery == "sync":
            return self._refuse(failure)
        if send.type == "template":
            assert send.template is not None
            problem = check_send(send.template, self.book)
            if problem:
                return self._refuse(*problem)
        else:
            missing = self._missing_media(send)
            if missing:
                return self._refuse(131009, f"media id {missing} does not exist")
        answer = self._accept(send, digits, body, failure)
        if fault == "hang":
            await asyncio.sleep(self.settings.hang_seconds)
        return answer

    def _mark_read(self, document: dict[str, Any]) -> Response:
        """A user's message marked read: it must be one the user sent."""
        from pydantic import ValidationError

        try:
            mark = MarkRead.model_validate(document)
        except ValidationError:
            return self._refuse(100, "Param status must be read, with messaging_product and "
                                "message_id")
        if mark.message_id not in self.inbound:
            return self._refuse(100, f"Param message_id ({mark.message_id}) is not a message "
                                "this number received")
        self.state.marked_read.add(mark.message_id)
        return JSONResponse({"success": True})

    async def unknown(self, request: Request) -> Response:
        """Any other Graph path: Graph's own answer for one it does not have."""
        return self._refuse(100, f"Unsupported {request.method.lower()} request. Object with "
                            f"ID '{request.path_params.get('path', '')}' does not exist, cannot "
                            "be loaded due to missing permissions, or does not support this "
                            "operation")

    def _fault(self) -> str | None:
        for name, rate in sorted(self.settings.faults.items()):
            if self.random.random() < rate:
                self.state.faults[name] += 1
                return name
        return None

    def _chance(self) -> int | None:
        for code, rate in sorted(self.settings.fail_rates.items()):
            if self.random.random() < rate:
                return code
        return None

    def _missing_media(self, send: SendRequest) -> str | None:
        content = getattr(send, send.type)
        media_id = getattr(content, "id", None)
        return media_id if media_id is not None and media_id not in self.media else None

    def _count(self, response: JSONResponse) -> JSONResponse:
        code = json.loads(bytes(response.body))["error"]["code"]
        self.state.refused[code] += 1
        return response

    def _refuse(self, code: int, details: str | None = None) -> JSONResponse:
        self.state.refused[code] += 1
        return _graph_error(code, details)

    def _accept(self, send: SendRequest, digits: str, body: bytes,
                failure: int | None) -> JSONResponse:
        import hashlib

        state = self.state
        wamid = new_wamid()
        key = send.biz_opaque_callback_data or hashlib.sha256(body).hexdigest()[:32]
        template = send.template.name if send.template else None
        if failure is None:
            failure = self._async_failure(send, digits)
        record = SentRecord(wamid, digits, send.type, key, time.monotonic(), template, failure)
        state.accepted += 1
        state.sends_by_key[key] += 1
        state.sent[wamid] = record
        state.accepted_at.append(record.at)
        self._lifecycle(send, record)
        return JSONResponse(success_body(send.to, wamid, digits))

    def _async_failure(self, send: SendRequest, digits: str) -> int | None:
        for suffix, code in self.settings.failing_numbers.items():
            if digits.endswith(suffix):
                return code
        if not _possible(digits):
            return 131026
        if send.type != "template" and not self._window_open(digits):
            return 131047
        return None

    def _window_open(self, digits: str) -> bool:
        if self.settings.window == "strict":
            return time.time() - self.wrote_at.get(digits, -1e12) < DAY
        return not digits.endswith(self.settings.closed_window) or (
            time.time() - self.wrote_at.get(digits, -1e12) < DAY)

    # --- after a send: statuses, the user -----------------------------------------------

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _webhooks(self) -> WebhookSender | None:
        s = self.settings
        if s.webhook_url is None:
            return None
        if self.sender is None:
            self.sender = WebhookSender(
                s.webhook_url, s.app_secret, {"waba_id": s.waba_id, "metadata": {
                    "display_phone_number": s.display_phone_number,
                    "phone_number_id": s.phone_number_id}},
                batch=s.webhook_batch, concurrency=s.webhook_concurrency,
                timeout=s.webhook_timeout, retry_base=s.webhook_retry_base,
                retry_max=s.webhook_retry_max, retry_for=s.webhook_retry_for,
                batch_wait=s.webhook_batch_wait, verify_token=s.verify_token)
        return self.sender

    def _conversation(self, digits: str, category: str) -> tuple[str, float]:
        key = (digits, category)
        now = time.time()
        current = self.conversations.get(key)
        if current is None or current[1] < now:
            current = (secrets.token_hex(16), now + DAY)
            self.conversations[key] = current
        return current

    def _status(self, record: SentRecord, send: SendRequest, status: str,
                category: str) -> dict[str, Any]:
        item: dict[str, Any] = {"id": record.wamid, "status": status,
                                "timestamp": str(int(time.time())), "recipient_id": record.to}
        if status == "failed" and record.failure is not None:
            item["errors"] = [status_error(record.failure)]
        else:
            # per-message pricing since July 2025 (pricing_model PMP); webhooks v24.0 and
            # later add pricing.type and leave the conversation object out
            free = category == "service"
            item["pricing"] = {"billable": not free, "pricing_model": "PMP",
                               "category": category}
            if self.webhook_major >= 24:
                item["pricing"]["type"] = "free_customer_service" if free else "regular"
            else:
                conversation, expires = self._conversation(record.to, category)
                item["conversation"] = {"id": conversation, "origin": {"type": category}}
                if status == "sent":
                    item["conversation"]["expiration_timestamp"] = str(int(expires))
        if send.biz_opaque_callback_data:
            item["biz_opaque_callback_data"] = send.biz_opaque_callback_data
        return item

    def _lifecycle(self, send: SendRequest, record: SentRecord) -> None:
        """Schedule the message's statuses (and, after the last, the simulated user)."""
        category = "service"
        meta_template = None
        if send.template is not None:
            meta_template = self.book.find(send.template.name, send.template.language.code)
            category = ((meta_template.category if meta_template else None) or
                        "marketing").lower()
        steps = (["failed"] if record.failure is not None else
                 ["sent", "delivered"] + (["read"] if self.settings.read else []))
        if self.settings.out_of_order:
            steps.reverse()
        now = time.monotonic()
        for n, (step, delay) in enumerate(zip(steps, self.settings.status_delays,
                                              strict=False)):
            last = n == len(steps) - 1
            self._at(now + delay, (record, send, step, category, meta_template if last else None))

    def _at(self, due: float, entry: tuple[Any, ...]) -> None:
        """One timing wheel for every status instead of a task and three timers a message:
        at 1000 messages/s the event loop's timer heap was the mock's bottleneck."""
        slot = int(due / TICK)
        self.wheel.setdefault(slot, []).append(entry)
        self.scheduled += 1
        if self.ticker is None or self.ticker.done():
            self.ticker = asyncio.ensure_future(self._tick())

    async def _tick(self) -> None:
        while self.wheel:
            await asyncio.sleep(TICK)
            now = int(time.monotonic() / TICK)
            for slot in sorted(s for s in self.wheel if s <= now):
                for entry in self.wheel.pop(slot):
                    self.scheduled -= 1
                    self._emit(*entry)

    def _emit(self, record: SentRecord, send: SendRequest, step: str, category: str,
              meta_template: Any) -> None:
        self.state.statuses_queued[step] += 1
        sender = self._webhooks()
        if sender is not None:
            sender.submit(Update("statuses", self._status(record, send, step, category)))
        if meta_template is None or record.failure is not None or send.template is None \
                or not self.settings.simulated_user:
            return
        if (record.to, send.template.name) in self.answered:
            return  # a person answers a template once, not every copy of a campaign
        self.answered.add((record.to, send.template.name))
        self._spawn(self._user(send, record, meta_template))

    async def _user(self, send: SendRequest, record: SentRecord, meta_template: Any) -> None:
        await self._taps(send, meta_template)
        await self._replies(record, meta_template)

    async def _taps(self, send: SendRequest, meta_template: Any) -> None:
        from ctwa.send.build import fill

        prefixes = self.settings.tap_prefixes
        if not prefixes:
            return
        assert send.template is not None
        suffixes = {c.position: str(getattr(c.parameters[0], "text", ""))
                    for c in send.template.components or []
                    if isinstance(c, ButtonComponent) and c.sub_type == "url"}
        buttons = [b for c in meta_template.components if c.type.upper() == "BUTTONS"
                   for b in c.buttons or []]
        for index, button in enumerate(buttons):
            if button.type.upper() != "URL" or not button.url:
                continue
            url = fill(button.url, {"1": suffixes[index]}) if index in suffixes else button.url
            if url.startswith(prefixes):
                await self._tap(url)

    async def _tap(self, url: str) -> None:
        """The user's phone opens the link: a GET with a phone's User-Agent, no redirect
        followed (where it points is the business's site)."""
        import httpx

        from ctwa.http import make_async_client
        from ctwa.infra.safetext import safe_text

        if self._tap_client is None:
            self._tap_client = make_async_client(timeout=10.0, max_connections=20)
        agent = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like "
                 "Gecko) Chrome/124.0 Mobile Safari/537.36 WhatsApp/2.24")
        try:
            answer = await self._tap_client.get(url, headers={"User-Agent": agent})
            location = answer.headers.get("location")
            self.state.taps.append({"url": url, "status": answer.status_code, "location":
                                    safe_text(location, keep_lines=False, limit=2000)
                                    if location else None})
        except httpx.HTTPError as exc:  # a tap that fails is counted, not raised
            self.state.taps.append({"url": url, "status": None, "error": safe_text(
                str(exc), keep_lines=False, limit=200)})

    async def _replies(self, record: SentRecord, meta_template: Any) -> None:
        quick = next((b.text for c in meta_template.components if c.type.upper() == "BUTTONS"
                      for b in c.buttons or [] if b.type.upper() == "QUICK_REPLY"), None)
        for kind in REPLY_KINDS:
            await asyncio.sleep(self.settings.reply_delay)
            self.user_message(record.to, kind, answers=record.wamid, quick_reply=quick)

    def user_message(self, number: str, kind: str = "text", answers: str | None = None,
                     quick_reply: str | None = None, text: str | None = None) -> str:
        """The user behind ``number`` sends a message of ``kind`` (one of
        :data:`~ctwa.sandbox.meta.user.REPLY_KINDS`), replying to the wamid ``answers``;
        call it on the server's loop (see :meth:`inject`). Returns the message's wamid."""
        media_id = None
        if kind in SAMPLE_MEDIA:
            media_id = str(self.random.randrange(10**15, 10**16))
            self.media[media_id] = SAMPLE_MEDIA[kind]
        meta_type, content = reply_content(kind, media_id, answers or "", quick_reply)
        if text is not None and meta_type == "text":
            content = {"text": {"body": text}}
        wamid = new_wamid()
        message: dict[str, Any] = {"from": number, "id": wamid,
                                   "timestamp": str(int(time.time())), "type": meta_type,
                                   **content}
        if answers and meta_type != "reaction":
            message["context"] = {"from": self.settings.display_phone_number, "id": answers}
        self.wrote_at[number] = time.time()
        self.inbound.add(wamid)
        self.state.replies_queued += 1
        sender = self._webhooks()
        if sender is not None:
            sender.submit(Update("messages", message, {"profile": {"name": USER_NAME},
                                                       "wa_id": number}))
        return wamid

    def inject(self, number: str, kind: str = "text", answers: str | None = None,
               text: str | None = None, timeout: float = 5.0) -> str:
        """:meth:`user_message` from another thread (a test): the user writes now."""
        if self.loop is None:
            raise RuntimeError("the mock has not served a request yet")

        async def write() -> str:
            return self.user_message(number, kind, answers, text=text)

        return asyncio.run_coroutine_threadsafe(write(), self.loop).result(timeout)

    # --- templates and media ------------------------------------------------------------

    async def templates(self, request: Request) -> Response:
        """``GET /{waba-id}/message_templates``: Meta's cursor paging (``limit``, ``after``,
        ``before``; ``paging.cursors.before/after``, ``paging.next`` while more remain) and
        its ``name``, ``status`` and ``language`` filters."""
        self.loop = asyncio.get_running_loop()
        refusal = (_graph_error(190) if not self._authorised(request) else self._node_error(
            request.path_params["version"], request.path_params["node"],
            self.settings.waba_id))
        if refusal is not None:
            return self._count(refusal)
        query = request.query_params
        try:
            limit = int(query.get("limit", "25"))
        except ValueError:
            return self._refuse(100, "Param limit must be an integer")
        if not 1 <= limit <= MAX_PAGE:
            return self._refuse(100, f"Param limit must be between 1 and {MAX_PAGE}")
        items = [t for t in self.book.raw if _matches(t, query)]
        start = 0
        if "after" in query:
            start = _offset(query["after"])
        elif "before" in query:
            start = max(0, _offset(query["before"]) - limit)
        if start < 0:
            return self._refuse(100, "Param after/before is not a valid cursor")
        chunk = items[start:start + limit]
        self.state.template_pages += 1
        page: dict[str, Any] = {"data": chunk}
        if chunk:
            page["paging"] = {"cursors": {"before": _cursor(start),
                                          "after": _cursor(start + len(chunk))}}
            if start + len(chunk) < len(items):
                page["paging"]["next"] = str(request.url.remove_query_params(
                    ["after", "before"]).include_query_params(
                        limit=limit, after=_cursor(start + len(chunk))))
        return JSONResponse(page)

    async def node(self, request: Request) -> Response:
        """``GET /{media-id}``: the media's URL (valid for a few minutes, as Meta's) and what
        it is; ``GET /{phone-number-id}``: the number (a cheap "is Meta there" check)."""
        version, media_id = request.path_params["version"], request.path_params["node"]
        if not VERSION.match(version):
            return self._refuse(100, f"Unknown path components: /{version}/{media_id}")
        if not self._authorised(request):
            return self._count(_graph_error(190))
        if media_id == self.settings.phone_number_id:  # cloud-api/reference/phone-numbers
            return JSONResponse({"verified_name": "ctwa sandbox",
                                 "display_phone_number": self.settings.display_phone_number,
                                 "id": media_id, "quality_rating": "GREEN",
                                 "code_verification_status": "VERIFIED",
                                 "platform_type": "CLOUD_API", "throughput": {
                                     "level": "STANDARD" if self.settings.mps <= 80
                                     else "HIGH"}})
        media = self.media.get(media_id)
        if media is None:
            return self._refuse(100, f"Unsupported get request. Object with ID '{media_id}' "
                                "does not exist, cannot be loaded due to missing permissions, "
                                "or does not support this operation")
        root = str(request.base_url).rstrip("/") + request.scope.get("root_path", "")
        url = f"{root}/media-download/{media_id}?mid={media_id}&ext={int(time.time())}"
        return JSONResponse({"messaging_product": "whatsapp", "url": url,
                             "mime_type": media.mime_type, "sha256": media.sha256,
                             "file_size": len(media.content), "id": media_id})

    async def download(self, request: Request) -> Response:
        """The media's bytes, only with the access token (Meta answers 401/404 without)."""
        if not self._authorised(request):
            return Response(status_code=401)
        media = self.media.get(request.path_params["media_id"])
        if media is None:
            return Response(status_code=404)
        self.state.media_downloads += 1
        return Response(media.content, media_type=media.mime_type.split(";")[0])

    def add_media(self, content: bytes, mime_type: str) -> str:
        """A media object the mock knows (as if uploaded); its id."""
        media_id = str(self.random.randrange(10**15, 10**16))
        self.media[media_id] = Media(content, mime_type)
        return media_id

    # --- what it has seen ---------------------------------------------------------------

    def counters(self) -> dict[str, Any]:
        state = self.state
        hooks = self.sender.stats if self.sender else None
        return {
            "requests": state.requests, "accepted": state.accepted,
            "refused": {str(k): v for k, v in sorted(state.refused.items())},
            "duplicates": len(state.duplicates()),
            "max_per_second": state.max_in_window(1.0),
            "statuses_queued": dict(state.statuses_queued),
            "replies_queued": state.replies_queued,
            "webhooks": {"posted": hooks.posted, "delivered": dict(hooks.updates),
                         "failed_attempts": hooks.failures, "retries": hooks.retries,
                         "given_up": hooks.given_up, "verification": hooks.verification,
                         "pending": self.sender.pending
                         if self.sender else 0, "last_error": hooks.last_error}
            if hooks else None,
            "taps": len(state.taps), "media_downloads": state.media_downloads,
            "faults": dict(state.faults),
            "template_pages": state.template_pages}

    async def stats(self, request: Request) -> JSONResponse:
        return JSONResponse(self.counters())

    async def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every status and reply is queued and posted."""
        deadline = time.monotonic() + timeout
        while self.tasks or self.scheduled:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        if self.sender is None:
            return True
        return await self.sender.drain(max(0.0, deadline - time.monotonic()))

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """:meth:`drain` from another thread (a test)."""
        if self.loop is None:
            return True
        return asyncio.run_coroutine_threadsafe(self.drain(timeout), self.loop).result(
            timeout + 1)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        if self.ticker is not None:
            self.ticker.cancel()
        if self.sender is not None:
            await self.sender.close()
        if self._tap_client is not None:
            await self._tap_client.aclose()


def _matches(template: dict[str, Any], query: Any) -> bool:
    for key in ("name", "status", "language"):
        wanted = query.get(key)
        if wanted and str(template.get(key, "")).lower() != wanted.lower():
            return False
    return True


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _offset(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return -1
    kind, _, number = text.partition(":")
    return int(number) if kind == "offset" and number.isdecimal() else -1


@functools.lru_cache(maxsize=65536)
def _possible(number: str) -> bool:
    import phonenumbers

    try:
        return phonenumbers.is_possible_number(phonenumbers.parse("+" + number))
    except phonenumbers.NumberParseException:
        return False
