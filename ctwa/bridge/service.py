"""The running bridge: its state, its HTTP clients, and the four workers behind the app.

- **sender**: claims queued sends, marks each in flight, then takes its slot from the
  number's token bucket (shared by every replica through the state, paced by
  ``ctwa.bridge.state.pacing.Pacer``: a late slot is forfeited, never sent in a burst, and a
  one-second window on top) and sends it at once; records Meta's answer: a wamid, a failed
  DLR with the 1000-1010 code of ``ctwa.wire.webhook.META_ERROR_CODES`` (the ``callback
  convert`` table), or a retry. The slot comes after ``mark_in_flight`` because that write
  is grouped with others and commits when it can (tens of ms, seconds on a loaded machine):
  taken before it, slots passed while the commit waited and its sends left together, up to
  1,929 in one second at ``--mps`` 1000. At most :data:`LOOKAHEAD` seconds of sends wait
  for their slot marked in flight (the crash rule fails them too, never resends them).
  ``CTWA_BRIDGE_SEND_TRACE=FILE`` appends one line per request to Meta (``time.monotonic()``
  as it leaves, and the msgId) for measuring the rate from the outside.
- **webhook processor**: turns stored webhooks into CleverTap callbacks (``webhooks.py``).
- **callback deliverer**: posts callbacks to CleverTap's status and inbound URLs; a refusal
  or an unreachable CleverTap is retried with backoff (capped, never given up: CleverTap down
  for ten minutes loses nothing), each message's callbacks in order (the state hands out only
  a message's next one).
- **template sync**: ``GET /{waba-id}/message_templates`` (every page) into the state's cache
  (developers.facebook.com/docs/whatsapp/business-management-api/message-templates).

What each Meta answer to a send does (Cloud API error codes:
developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes):

============================================  ================================================
answer                                        outcome
============================================  ================================================
200 with ``messages[0].id``                   sent: the wamid is recorded with the msgId
rate limits (4, 80007, 130429, 131056, 429)   retried with backoff; every replica slowed down
connection refused before sending             retried with backoff (nothing reached Meta)
5xx, or an answer that is not Meta's JSON     retried with backoff up to :data:`RETRY_LIMIT`
(an HTML error page, a proxy's)               attempts, then failed 1009 naming the answer
no answer within ``meta_timeout``             failed 1009: Meta may have sent it, and Meta has
                                              no idempotency key, so it is never resent
any other Meta error                          failed with its 1000-1010 code (1009 if unknown)
============================================  ================================================

A send in flight when the bridge died follows the state's crash rule (``ctwa.bridge.state.base``):
never resent; *in doubt* until a status from Meta names its msgId (``biz_opaque_callback_data``;
the webhook processor then records its wamid and its statuses go to CleverTap) or until
``in_doubt_window`` has passed (then failed with 1009 naming the crash). A status naming a
message already failed is recorded, logged and counted (``ctwa_bridge_late_statuses``), not
forwarded: the failed DLR was that message's one outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from ctwa.bridge.config import BridgeSecrets, BridgeSettings, media_link
from ctwa.bridge.metrics import Metrics
from ctwa.bridge.payloads import Refusal, read_payload
from ctwa.bridge.state import (
    BridgeState,
    CallbackItem,
    CallbackSpec,
    SendItem,
    StateError,
    StateUnavailable,
    WebhookItem,
)
from ctwa.bridge.translate import ClickSettings, UnsendableRequest, translate
from ctwa.bridge.webhooks import (
    convert_webhook,
    named_msg_ids,
    status_entries,
    status_wamids,
    wamids,
)
from ctwa.wire.codes import CALLBACK_ERRORS
from ctwa.wire.meta import MetaTemplate
from ctwa.wire.webhook import clevertap_code

log = logging.getLogger("ctwa.bridge")

#: Attempts for a send Meta answered with a server error before it is failed with 1009.
RETRY_LIMIT = 5
#: How long a claim is held; heartbeats renew it, so it only runs out when a replica dies.
LEASE = 15.0
HEARTBEAT = 3.0
#: How many seconds of sends (at ``--mps``) may be marked in flight waiting for their slot.
LOOKAHEAD = 0.25
TEMPLATE_CACHE_SECONDS = 10.0
MEDIA_CHUNK = 64 * 1024


def now() -> float:
    return time.time()


def failed_dlr(msg_id: str, code: int) -> dict[str, Any]:
    """CleverTap's failed status callback for a message the bridge could not send."""
    return {"payloadVersion": "0.1", "statuses": [{
        "msgId": msg_id, "status": "failed", "timestamp": str(int(now())),
        "error": {"code": code, "title": CALLBACK_ERRORS[code]}}]}


def backoff(attempt: int, cap: float, base: float = 0.5) -> float:
    """Exponential backoff with jitter: base * 2**attempt, capped, +-20%."""
    delay = min(cap, base * (2 ** min(attempt, 20)))
    return delay * random.uniform(0.8, 1.2)


@dataclass
class MetaAnswer:
    """What one send to Meta came to."""

    outcome: str  # "sent" | "retry" | "failed"
    wamid: str | None = None
    code: int = 1009  # CleverTap's 1000-1010 for "failed"
    reason: str = ""
    delay: float = 0.0
    slow_down: bool = False


def judge_meta_answer(status: int, body: bytes, attempts: int) -> MetaAnswer:
    """The outcome of one send from Meta's answer (the table in the module docstring), read
    with the one Cloud API model (:func:`ctwa.wire.cloudapi.read_answer`)."""
    from ctwa.wire.cloudapi import RATE_LIMIT_CODES, TRANSIENT_CODES, read_answer

    answer = read_answer(status, body)
    if answer.wamid:
        return MetaAnswer("sent", answer.wamid)
    error = answer.error
    if status == 429 or (error is not None and error.code in RATE_LIMIT_CODES):
        return MetaAnswer("retry", reason=describe(answer), delay=backoff(attempts, 30.0, 1.0),
                          slow_down=True)
    if error is None or error.code in TRANSIENT_CODES:
        reason = describe(answer)
        if attempts + 1 >= RETRY_LIMIT:
            return MetaAnswer("failed", code=1009, reason=f"{reason} (gave up after "
                              f"{attempts + 1} attempts)")
        return MetaAnswer("retry", reason=reason, delay=backoff(attempts, 30.0, 1.0))
    mapped, _ = clevertap_code(error.code)
    return MetaAnswer("failed", code=mapped, reason=describe(answer))


def describe(answer: Any) -> str:
    """One line for a Meta answer that is not a success (remote text capped, escaped)."""
    from ctwa.bridge.app import safe_text

    if answer.error is None:
        return str(answer.unreadable or f"HTTP {answer.status}")
    error = answer.error
    details = ""
    data = getattr(error, "error_data", None)
    if data is not None and getattr(data, "details", None):
        details = f" ({data.details})"
    return safe_text(f"HTTP {answer.status}, Meta error {error.code}: {error.message or ''}"
                     f"{details}", 300)


def meta_code(status: int, body: bytes) -> int:
    from ctwa.wire.cloudapi import read_answer

    error = read_answer(status, body).error
    return int(error.code) if error is not None and error.code is not None else 0


class SecondWindow:
    """At most ``mps`` sends in any one second from this replica. The shared bucket spaces
    sends ``1/mps`` apart; when the loop falls behind (a pause, a slow state call) the late
    slots would all go at once: this window makes them wait instead, so Meta never sees more
    than ``mps`` in a second."""

    def __init__(self, mps: float) -> None:
        import collections
        import math

        self.limit = max(1, math.floor(mps))
        self.sent: collections.deque[float] = collections.deque()

    async def admit(self) -> None:
        while True:
            now = time.monotonic()
            while self.sent and now - self.sent[0] >= 1.0:
                self.sent.popleft()
            if len(self.sent) < self.limit:
                self.sent.append(now)
                return
            await asyncio.sleep(self.sent[0] + 1.0 - now)


class _Turn:
    """One send's place in the sender's lookahead: released once its slot is taken (or the
    send ends before), and the moment written to the send trace."""

    def __init__(self, ahead: asyncio.Semaphore, trace: Any) -> None:
        self.ahead, self.trace, self.held = ahead, trace, True
        self.left = False  # the request to Meta has left

    def taken(self, msg_id: str) -> None:
        self.left = True
        if self.trace is not None:
            self.trace.write(f"{time.monotonic():.6f} {msg_id}\n")
        self.done()

    def done(self) -> None:
        if self.held:
            self.held = False
            self.ahead.release()


def _send_trace() -> Any:
    """``CTWA_BRIDGE_SEND_TRACE``: a file to append each request's departure to (line by
    line, so that a ``kill -9`` loses none written), or None."""
    import os
    from pathlib import Path

    path = os.environ.get("CTWA_BRIDGE_SEND_TRACE")
    if not path:
        return None
    try:
        return Path(path).open("a", buffering=1, encoding="utf-8")
    except OSError as exc:
        log.error("CTWA_BRIDGE_SEND_TRACE: cannot write %s (%s); no trace",
                  path, exc.strerror or exc)
        return None


@dataclass
class Bridge:
    settings: BridgeSettings
    secrets: BridgeSecrets
    state: BridgeState
    metrics: Metrics = field(default_factory=Metrics)
    replica: str = ""
    last_meta_answer: float | None = None
    last_sync: float | None = None
    sync_error: str | None = None
    _templates: dict[tuple[str, str], tuple[float, MetaTemplate | None]] = field(
        default_factory=dict)
    _wake: dict[str, asyncio.Event] = field(default_factory=dict)
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _pools: dict[str, Any] = field(default_factory=dict)
    _stopping: bool = False
    pacer: Any = None
    _window: Any = None
    #: routes whose last delivery CleverTap did not take, and when each route's waiting
    #: callbacks were last hastened (see _deliver)
    _refusing: set[str] = field(default_factory=set)
    _hastened: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.replica = self.replica or self.settings.replica_name()

    @property
    def clicks(self) -> ClickSettings:
        """Tracked buttons are those on the bridge's own base URL (known once it listens)."""
        return ClickSettings(self.settings.base_url(), dict(self.settings.clicks))

    # --- the app's helpers ---------------------------------------------------------------

    def wake(self, queue: str) -> None:
        event = self._wake.get(queue)
        if event is not None:
            event.set()

    async def _idle(self, queue: str, timeout: float) -> None:
        """Until this replica enqueued work on ``queue``, another one did (the state's
        wait_for_work), or ``timeout``."""
        event = self._wake.setdefault(queue, asyncio.Event())
        if event.is_set():
            event.clear()
            return
        local = asyncio.ensure_future(event.wait())
        remote = asyncio.ensure_future(self.state.wait_for_work(queue, timeout))  # type: ignore[arg-type]
        try:
            await asyncio.wait({local, remote}, timeout=timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (local, remote):
                task.cancel()
            event.clear()

    async def template(self, name: str, language: str) -> MetaTemplate | None:
        key = (name, language)
        cached = self._templates.get(key)
        if cached is not None and time.monotonic() - cached[0] < TEMPLATE_CACHE_SECONDS:
            return cached[1]
        doc = await self.state.get_template(name, language)
        template = MetaTemplate.model_validate(doc) if doc is not None else None
        self._templates[key] = (time.monotonic(), template)
        return template

    def media_link(self, media_id: str) -> str:
        return media_link(self.settings, self.secrets.link_key(), media_id)

    async def health(self) -> dict[str, Any]:
        state_ok, state_error = True, None
        try:
            await asyncio.wait_for(self.state.depths(), 2.0)
        except (StateError, asyncio.TimeoutError) as exc:
            state_ok, state_error = False, str(exc) or "no answer within 2 s"
        age = None if self.last_meta_answer is None else now() - self.last_meta_answer
        meta_ok = age is not None and age <= self.settings.meta_silence
        report: dict[str, Any] = {"ready": state_ok and meta_ok, "replica": self.replica,
                                  "state": {"ok": state_ok, "backend": self.state.backend},
                                  "meta": {"ok": meta_ok, "last_answer_age": age,
                                           "templates_synced_at": self.last_sync,
                                           "sync_error": self.sync_error}}
        if state_error:
            report["state"]["error"] = state_error
        return report

    async def refresh_depths(self) -> None:
        try:
            depths = await self.state.depths()
        except StateError:
            return
        self.metrics.outbox.labels("sends").set(depths.sends_queued + depths.sends_claimed
                                                + depths.sends_in_flight
                                                + depths.sends_in_doubt)
        self.metrics.in_doubt.set(depths.sends_in_doubt)
        self.metrics.outbox.labels("webhooks").set(depths.webhooks_pending)
        self.metrics.outbox.labels("callbacks").set(depths.callbacks_pending)

    async def media(self, media_id: str) -> Any:
        """Stream a media file from Meta with the token, which never leaves the bridge."""
        from starlette.responses import PlainTextResponse, StreamingResponse

        from ctwa.http import Auth, make_async_client
        from ctwa.infra.errors import CtwaError

        graph = self.settings.graph_url.rstrip("/")
        auth = Auth("bearer", secret=self.secrets.meta_token)
        try:
            async with make_async_client(auth=auth, origin=graph, max_connections=4,
                                         timeout=self.settings.meta_timeout) as client:
                answer = await client.get(f"{graph}/{media_id}")
            url = answer.json().get("url") if answer.status_code == 200 else None
        except (CtwaError, ValueError, OSError) as exc:
            log.warning("GET /media/%s: Meta's media API failed: %s", media_id, exc)
            return PlainTextResponse("Meta did not give the media", status_code=502)
        except Exception as exc:  # httpx's transport errors
            log.warning("GET /media/%s: Meta's media API failed: %s", media_id,
                        type(exc).__name__)
            return PlainTextResponse("Meta did not give the media", status_code=502)
        if not isinstance(url, str) or not _meta_media_host(url, graph):
            return PlainTextResponse("Meta did not give a media URL", status_code=502)
        client = make_async_client(auth=auth, origin=url, max_connections=4,
                                   timeout=self.settings.meta_timeout)
        try:
            request = client.build_request("GET", url)
            response = await client.send(request, stream=True)
        except Exception as exc:
            await client.aclose()
            log.warning("GET /media/%s: download failed: %s", media_id, type(exc).__name__)
            return PlainTextResponse("Meta did not give the media", status_code=502)
        if response.status_code != 200:
            await response.aclose()
            await client.aclose()
            return PlainTextResponse("Meta did not give the media", status_code=502)

        async def body() -> AsyncIterator[bytes]:
            try:
                async for chunk in response.aiter_bytes(MEDIA_CHUNK):
                    yield chunk
            finally:
                await response.aclose()
                await client.aclose()

        kind = response.headers.get("content-type", "application/octet-stream")
        return StreamingResponse(body(), media_type=kind)

    # --- lifecycle -----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    async def start(self) -> None:
        from ctwa.http import load_headers
        from ctwa.http.raw import Pool
        from ctwa.infra.masking import register_secret

        register_secret(self.secrets.meta_token)
        s = self.settings
        graph = s.graph_url.rstrip("/")
        meta_headers = {"Authorization": f"Bearer {self.secrets.meta_token}",
                        "Content-Type": "application/json",
                        "User-Agent": load_headers(None, None)["User-Agent"]}
        size = int(min(1000, max(16, s.mps * 2)))
        self._pools["meta"] = Pool(f"{graph}/{s.phone_number_id}/messages", meta_headers,
                                   size=size, timeout=s.meta_timeout)
        for route, url in (("status", s.status_url), ("inbound", s.inbound_url)):
            self._pools[route] = Pool(url, load_headers(None, None), size=200,
                                      timeout=s.callback_timeout)
        for queue in ("sends", "webhooks", "callbacks"):
            self._wake[queue] = asyncio.Event()
        self.state.in_doubt_window = s.in_doubt_window  # the crash rule's window
        await self.state.heartbeat(self.replica, self._info())
        for worker in (self._heartbeats, self._sender, self._webhook_processor,
                       self._callback_deliverer, self._template_sync):
            self._tasks.append(asyncio.ensure_future(self._forever(worker)))

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for pool in self._pools.values():
            pool.close()

    def _info(self) -> dict[str, Any]:
        from ctwa import __version__

        return {"listen": self.settings.listen, "version": __version__,
                "mps": self.settings.mps, "phone_number_id": self.settings.phone_number_id}

    async def _forever(self, worker: Any) -> None:
        """Run a worker; a failure is logged and the worker starts again a moment later."""
        while not self._stopping:
            try:
                await worker()
            except asyncio.CancelledError:
                raise
            except StateError as exc:
                log.error("%s: the state failed: %s; again in 1 s", worker.__name__, exc)
                await asyncio.sleep(1.0)
            except Exception:
                log.exception("%s failed; again in 1 s", worker.__name__)
                await asyncio.sleep(1.0)

    async def _heartbeats(self) -> None:
        while True:
            await self.state.heartbeat(self.replica, self._info())
            await self.refresh_depths()
            await asyncio.sleep(HEARTBEAT)

    # --- sender --------------------------------------------------------------------------

    async def _sender(self) -> None:
        from ctwa.bridge.state.pacing import Pacer

        s = self.settings
        batch = int(max(1, min(500, s.mps / 4)))
        in_flight: set[asyncio.Task[Any]] = set()
        gate = asyncio.Semaphore(int(max(16, min(2000, s.mps * 2))))
        # the shared bucket, each slot used on time or forfeited (every replica together
        # stays at or under --mps), and this replica's own one-second window on top
        self.pacer = Pacer(self.state, s.phone_number_id, s.mps)
        self._window = SecondWindow(s.mps)
        ahead = asyncio.Semaphore(int(max(4, s.mps * LOOKAHEAD)))
        trace = _send_trace()
        try:
            while True:
                items = await self.state.claim_sends(self.replica, batch, LEASE)
                if not items:
                    await self._idle("sends", 1.0)
                    continue
                for item in items:
                    await ahead.acquire()
                    await gate.acquire()
                    turn = _Turn(ahead, trace)
                    task = asyncio.ensure_future(self._send_one(item, turn))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                    task.add_done_callback(lambda _: gate.release())
        finally:
            if trace is not None:
                trace.close()

    async def _send_one(self, item: SendItem, turn: _Turn | None = None) -> None:
        try:
            await self._send(item, turn)
        except asyncio.CancelledError:
            raise
        except StateError as exc:
            if turn is not None and not turn.left:
                # nothing went to Meta: back to the queue now (this replica is alive, so its
                # heartbeats would hold the claim, and the send with it, until it stops)
                await self._give_back(item, exc)
            else:
                log.error("send %s: the state failed: %s (the crash rule takes it when this "
                          "replica stops)", item.msg_id, exc)
        except Exception:
            log.exception("send %s failed in the bridge", item.msg_id)
        finally:
            if turn is not None:
                turn.done()

    async def _give_back(self, item: SendItem, error: StateError) -> None:
        """A send the state failed for before its request left: queued again in a moment,
        asked again with backoff while the claim holds."""
        deadline = time.monotonic() + LEASE
        attempt = 0
        while True:
            try:
                await self.state.retry_send(item.id, now() + 1.0)
                log.warning("send %s: the state failed before the request (%s); queued again",
                            item.msg_id, error)
                self.wake("sends")
                return
            except StateUnavailable as exc:
                attempt += 1
                pause = backoff(attempt, 2.0, 0.1)
                if time.monotonic() + pause > deadline:
                    log.error("send %s: the state failed (%s) and could not queue it again "
                              "(%s); it goes on when this replica restarts", item.msg_id,
                              error, exc)
                    return
                await asyncio.sleep(pause)

    async def _send(self, item: SendItem, turn: _Turn | None = None) -> None:
        from ctwa.http.raw import HttpError

        try:
            payload = read_payload(item.payload)
            template = None
            if payload.kind == "template":
                template = await self.template(payload.model.template.namespace,
                                               payload.model.template.languageCode)
            translation = translate(payload.model, template, self.clicks)
        except Refusal as refusal:  # accepted by an older bridge, refused by this one
            await self._fail(item, 1001, f"no longer fits: {refusal.message}")
            return
        except UnsendableRequest as exc:
            await self._fail(item, 1001, str(exc))
            return
        for click in translation.clicks:
            await self.state.put_click(click.token, item.msg_id, click.destination)
        body = orjson.dumps(translation.body)
        await self.state.mark_in_flight(item.id)
        # the slot now, when nothing but the request is left (see the module's docstring)
        await self.pacer.turn()
        await self._window.admit()
        if turn is not None:
            turn.taken(item.msg_id)
        self.metrics.sends.inc()
        pool = self._pools["meta"]
        try:
            status, answer = await pool.post(body)
        except HttpError as exc:
            text = str(exc)
            if text.startswith("could not connect"):  # nothing reached Meta: safe to retry
                self.metrics.meta_answers.labels("none", "connect").inc()
                await self.state.retry_send(item.id, now() + backoff(item.attempts, 30.0, 1.0))
                self.metrics.send_outcomes.labels("retried").inc()
                return
            self.metrics.meta_answers.labels("none", "timeout").inc()
            await self._fail(item, 1009, f"Meta did not answer ({text}); not resent, so it "
                             "cannot arrive twice")
            return
        self.last_meta_answer = now()
        if log.isEnabledFor(logging.DEBUG):  # -v: what went to Meta and what came back
            from ctwa.bridge.app import safe_text

            log.debug("send %s: > POST /%s/messages %s", item.msg_id,
                      self.settings.phone_number_id, safe_text(body.decode(), 600))
            log.debug("send %s: < HTTP %d %s", item.msg_id, status,
                      safe_text(answer.decode("utf-8", "replace"), 300))
        verdict = judge_meta_answer(status, answer, item.attempts)
        self.metrics.meta_answers.labels(str(status), str(meta_code(status, answer))).inc()
        if verdict.outcome == "sent":
            assert verdict.wamid is not None
            await self._record_wamid(item, verdict.wamid)
            self.metrics.send_outcomes.labels("sent").inc()
        elif verdict.outcome == "retry":
            if verdict.slow_down:  # Meta said: too fast; every replica waits
                await self.pacer.pause(verdict.delay)
            await self.state.retry_send(item.id, now() + verdict.delay)
            self.metrics.send_outcomes.labels("retried").inc()
            log.info("send %s: %s; again in %.1f s", item.msg_id, verdict.reason,
                     verdict.delay)
        else:
            await self._fail(item, verdict.code, verdict.reason)

    async def _record_wamid(self, item: SendItem, wamid: str) -> None:
        """Meta took the message: its wamid must be recorded, or Meta's statuses for it find
        no msgId. A state that did not answer in time (a loaded machine: the statement's
        own timeout) is asked again, with backoff, while this replica's heartbeats still hold
        the claim (:data:`LEASE`); ``complete_send`` is idempotent. After that the error
        goes up and the crash rule takes the send (never resent)."""
        deadline = time.monotonic() + LEASE
        attempt = 0
        while True:
            try:
                await self.state.complete_send(item.id, wamid)
                return
            except StateUnavailable as exc:
                attempt += 1
                pause = backoff(attempt, 2.0, 0.1)
                if time.monotonic() + pause > deadline:
                    raise
                log.warning("send %s: recording its wamid failed (%s); again in %.1f s",
                            item.msg_id, exc, pause)
                await asyncio.sleep(pause)

    async def _fail(self, item: SendItem, code: int, reason: str) -> None:
        await self.state.fail_send(item.id, code, reason, failed_dlr(item.msg_id, code))
        self.metrics.send_outcomes.labels("failed").inc()
        self.wake("callbacks")
        log.info("send %s failed with %d: %s", item.msg_id, code, reason)

    # --- webhooks ------------------------------------------------------------------------

    async def _webhook_processor(self) -> None:
        while True:
            items = await self.state.claim_webhooks(self.replica, 100, LEASE)
            if not items:
                await self._idle("webhooks", 1.0)
                continue
            await asyncio.gather(*(self._webhook_or_defer(item) for item in items))

    async def _webhook_or_defer(self, item: WebhookItem) -> None:
        """A webhook the state failed for is put back for a moment later: left claimed, a
        live replica's heartbeats would hold it, and its statuses, until the replica stops
        (a cluster run lost 1,783 'read' callbacks so)."""
        try:
            await self._webhook(item)
        except StateError as exc:
            log.error("webhook %d: the state failed: %s; again in 1 s", item.id, exc)
            with contextlib.suppress(StateError):
                await self.state.defer_webhook(item.id, now() + 1.0)

    async def _webhook(self, item: WebhookItem) -> None:
        try:
            doc = json.loads(item.raw_body)
        except (ValueError, UnicodeDecodeError):
            log.warning("webhook %d is not JSON; kept, no callbacks", item.id)
            await self.state.finish_webhook(item.id, [])
            return
        found: dict[str, str] = {}
        late: set[str] = set()
        for wamid in wamids(doc):
            mapped = await self.state.lookup_wamid(wamid)
            if mapped is not None:
                found[wamid] = mapped.msg_id
                if mapped.late:
                    late.add(wamid)
        missing = status_wamids(doc) - set(found)
        open_send = bool(missing) and await self._named_sends(doc, missing, found, late)
        missing -= set(found)
        waited = now() - item.received_at
        if missing and (waited < self.settings.unmapped_wait
                        or (open_send and waited < self.settings.unmapped_wait + 2 * LEASE)):
            # Meta's webhook can overtake the commit of the send's wamid, or the send it names
            # was in flight on a replica that died (its lease, then the crash rule, settles
            # it): look again soon
            await self.state.defer_webhook(item.id, now() + 0.5)
            return
        for status in status_entries(doc):
            if str(status["id"]) in late:
                self.metrics.late_statuses.labels(str(status["status"])).inc()
                log.warning("webhook %d: Meta's %s status for msgId %s (wamid %s) came after "
                            "the bridge had failed that message; recorded, not forwarded "
                            "(its failed DLR was its one outcome)", item.id, status["status"],
                            found.get(str(status["id"]), "?"), status["id"])
        callbacks, notes = convert_webhook(doc, found, self.media_link,
                                           self.settings.waba_number or None, late)
        for note in notes:
            log.info("webhook %d: %s", item.id, note)
        self.metrics.skipped.inc(sum(1 for n in notes if "no CleverTap" in n
                                     or "did not send" in n))
        specs = [CallbackSpec(c.msg_id, c.route, c.body, c.rank)  # type: ignore[arg-type]
                 for c in callbacks]
        await self.state.finish_webhook(item.id, specs)
        if specs:
            self.wake("callbacks")

    async def _named_sends(self, doc: Any, missing: set[str], found: dict[str, str],
                           late: set[str]) -> bool:
        """Statuses whose wamid is not in the map, resolved by the msgId their
        ``biz_opaque_callback_data`` names (the crash rule, ctwa.bridge.state.base): a send
        in doubt is completed with that wamid (Meta took it); for a failed one the wamid is
        recorded late. Adds what it resolves to ``found`` (and ``late``); True when a named
        send is still open (queued, claimed, in flight), so the webhook should wait."""
        named = named_msg_ids(doc)
        still_open = False
        for wamid in sorted(missing):
            msg_id = named.get(wamid)
            send = await self.state.accepted(msg_id) if msg_id else None
            if send is None or msg_id is None:
                continue  # not a message this bridge accepted
            if send.state in ("queued", "claimed", "in_flight"):
                still_open = True
            elif send.state == "in_doubt":
                if await self.state.complete_send(send.id, wamid):
                    self.metrics.in_doubt_settled.inc()
                    self.metrics.send_outcomes.labels("sent").inc()
                    log.warning("send %s: in doubt since a bridge stopped while sending it; "
                                "Meta's status names it (wamid %s): recorded as sent, its "
                                "statuses go to CleverTap", msg_id, wamid)
                else:  # settled meanwhile: by another status of it, or failed by the window
                    mapped = await self.state.lookup_wamid(wamid)
                    if mapped is None or mapped.late:
                        late.add(wamid)
                found[wamid] = msg_id
            elif send.state == "failed" and send.wamid in (None, wamid):
                await self.state.complete_send(send.id, wamid)  # recorded, marked late
                found[wamid] = msg_id
                late.add(wamid)
        return still_open

    # --- callbacks -----------------------------------------------------------------------

    async def _callback_deliverer(self) -> None:
        while True:
            items = await self.state.claim_callbacks(self.replica, 200, LEASE)
            if not items:
                await self._idle("callbacks", 0.5)
                continue
            await asyncio.gather(*(self._deliver_or_retry(item) for item in items))

    async def _deliver_or_retry(self, item: CallbackItem) -> None:
        """As for webhooks: a callback the state failed for is put back, not left claimed
        (delivered again if it was delivered: callbacks are at least once)."""
        try:
            await self._deliver(item)
        except StateError as exc:
            log.error("callback %s: the state failed: %s; again in 1 s", item.msg_id, exc)
            with contextlib.suppress(StateError):
                await self.state.retry_callback(item.id, now() + 1.0,
                                                f"the state failed: {exc}"[:300])

    async def _deliver(self, item: CallbackItem) -> None:
        from ctwa.http.raw import HttpError

        pool = self._pools[item.route]
        body = orjson.dumps(item.payload)
        try:
            status, answer = await pool.post(body)
            error = None if 200 <= status < 300 else (
                f"HTTP {status}: {answer[:120].decode('utf-8', 'replace')}")
        except HttpError as exc:
            error = str(exc)
        if error is None:
            log.debug("callback %s (%s) delivered to CleverTap: %s", item.msg_id, item.route,
                      body[:300].decode("utf-8", "replace"))
            await self.state.complete_callback(item.id)
            self.metrics.callbacks.labels(item.route).inc()
            self.metrics.callback_lag.observe(max(0.0, now() - item.created_at))
            # CleverTap is back after refusals: the backlog goes now, not over the backoff cap
            # (at most once per cap, so one callback CleverTap keeps refusing among others
            # it takes is not retried faster than its backoff)
            cap = self.settings.callback_max_backoff
            if item.route in self._refusing and \
                    now() - self._hastened.get(item.route, -cap) >= cap:
                self._refusing.discard(item.route)
                self._hastened[item.route] = now()
                hastened = await self.state.hasten_callbacks(item.route)
                if hastened:
                    log.info("CleverTap's %s URL takes callbacks again: %d waiting ones "
                             "sent now", item.route, hastened)
                    self.wake("callbacks")
            return
        self._refusing.add(item.route)
        self.metrics.callback_failures.labels(item.route).inc()
        # the cap holds after the jitter too: once CleverTap is back, each waiting callback
        # is tried again within callback_max_backoff, however long it was down
        cap = self.settings.callback_max_backoff
        delay = min(cap, backoff(item.attempts, cap))
        if item.attempts == 0 or item.attempts % 10 == 0:
            log.warning("callback %s to CleverTap's %s URL: %s; again in %.1f s",
                        item.msg_id, item.route, error, delay)
        await self.state.retry_callback(item.id, now() + delay, error[:300])

    # --- templates -----------------------------------------------------------------------

    async def sync_templates(self) -> int:
        """Every template of the WABA from Meta into the state's cache; how many."""
        from ctwa.http import Auth, make_async_client, send_async
        from ctwa.infra.errors import CtwaError

        graph = self.settings.graph_url.rstrip("/")
        url: str | None = (f"{graph}/{self.settings.waba_id}/message_templates?limit=100")
        templates: list[dict[str, Any]] = []
        auth = Auth("bearer", secret=self.secrets.meta_token)
        async with make_async_client(auth=auth, origin=graph, max_connections=2,
                                     timeout=self.settings.meta_timeout) as client:
            pages = 0
            while url and pages < 1000:
                pages += 1
                exchange = await send_async(client, "GET", url)
                response = exchange.response
                if response.status_code != 200:
                    from ctwa.wire.cloudapi import read_answer

                    answer = read_answer(response.status_code, response.content)
                    raise CtwaError(f"template sync: {describe(answer)}")
                try:
                    page = response.json()
                except ValueError:
                    raise CtwaError("template sync: Meta's answer is not JSON") from None
                data = page.get("data") if isinstance(page, dict) else None
                if not isinstance(data, list):
                    raise CtwaError("template sync: Meta's answer has no data[]")
                templates += [t for t in data if isinstance(t, dict) and t.get("name")
                              and t.get("language")]
                paging = page.get("paging") if isinstance(page.get("paging"), dict) else {}
                following = paging.get("next")
                url = following if isinstance(following, str) and following.startswith(
                    graph) else None
        kept = await self.state.replace_templates(templates)
        self._templates.clear()
        self.last_sync = now()
        self.last_meta_answer = now()
        self.sync_error = None
        return kept

    async def _template_sync(self) -> None:
        from ctwa.infra.errors import CtwaError

        while True:
            try:
                kept = await self.sync_templates()
                log.info("templates synced from Meta: %d", kept)
                await asyncio.sleep(self.settings.template_sync_every)
            except CtwaError as exc:
                self.sync_error = exc.message
                log.warning("%s; again in 30 s", exc.message)
                await asyncio.sleep(min(30.0, self.settings.template_sync_every))


def _meta_media_host(url: str, graph: str) -> bool:
    """Meta's media URLs are on its CDN (lookaside.fbsbx.com) or the Graph host itself (the
    sandbox): the token goes to no other host."""
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").lower()
    graph_host = (urlsplit(graph).hostname or "").lower()
    on_cdn = url.startswith("https://") and (host.endswith(".fbsbx.com")
                                             or host.endswith(".facebook.com"))
    return on_cdn or host == graph_host
