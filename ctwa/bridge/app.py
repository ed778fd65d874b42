"""The bridge's HTTP side (starlette): what CleverTap and Meta call.

- ``POST /messages``: CleverTap's messaging endpoint (spec: "Messaging Endpoint"; Basic auth,
  answers ``{"status": "success"}`` or ``{"status": "failure", "error": {code, message}}``
  with 2000-2004, well inside CleverTap's 1 s). Only the durable enqueue stands between the
  request and the answer; Meta is called later by the sender.
- ``GET /webhook``: Meta's verification request; ``POST /webhook``: Meta's signed events,
  stored durably, then 200 (Graph API webhooks: developers.facebook.com/docs/graph-api/
  webhooks/getting-started).
- ``GET /templates``: the spec's vendor template import endpoint (Meta's list format with
  ``limit``/``after`` cursor paging), from the synced templates; same Basic auth.
- ``GET /media/{id}``: an expiring signed link (made for inbound media) streamed from Meta
  with the token (Cloud API media: developers.facebook.com/docs/whatsapp/cloud-api/reference/
  media: ``GET /{media-id}`` gives a ``url`` that is fetched with the same bearer token).
- ``GET /c/{token}``: a tracked URL button: redirect, and a ``clicked`` status to CleverTap.
- ``GET /health``, ``GET /metrics``.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from ctwa.bridge.payloads import Refusal, read_payload
from ctwa.bridge.throttle import ThrottledLog
from ctwa.bridge.translate import TemplateMismatch, check_against_template
from ctwa.bridge.webhooks import SIGNATURE_HEADER, signature_ok
from ctwa.infra.asgi import BodyTooLarge, read_limited
from ctwa.wire.responses import failure_body, success_body

SUCCESS = json.dumps(success_body()).encode()

if TYPE_CHECKING:
    from ctwa.bridge.service import Bridge

log = logging.getLogger("ctwa.bridge")

#: Meta's list page size when CleverTap's import gives none (the spec's first call: 50).
DEFAULT_PAGE = 50
MAX_PAGE = 500
USER_AGENT_MAX = 512


def _failure_bytes(code: int, message: str, status: int = 200) -> tuple[int, bytes]:
    """A failure answer to CleverTap: its HTTP status and JSON body."""
    return status, orjson.dumps(failure_body(code, message))


def safe_text(text: str, limit: int) -> str:
    """Remote text made safe where it enters: control characters escaped, size capped."""
    cleaned = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
    return cleaned[:limit]


def make_app(bridge: Bridge) -> Callable[..., Awaitable[None]]:
    """The bridge's ASGI app: Starlette's routes, with POST /messages and POST /webhook taken
    first, straight on ASGI."""
    settings, secrets, metrics = bridge.settings, bridge.secrets, bridge.metrics
    unavailable = ThrottledLog(log)  # one line per 5 s of refusals, not one per request
    expected_user = settings.username.encode()
    expected_password = secrets.password.encode()

    def authorized(request: Request) -> bool:
        return authorized_header(request.headers.get("authorization", ""))

    def authorized_header(header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, sep, password = base64.b64decode(encoded, validate=True).partition(b":")
        except ValueError:
            return False
        # both compared, always: the time taken tells nothing about which one was wrong
        ok_user = hmac.compare_digest(user, expected_user)
        ok_password = hmac.compare_digest(password, expected_password)
        return bool(sep) and ok_user and ok_password

    async def messages(request: Request) -> Response:
        """POST /messages through Starlette (the ASGI fast path below takes it first)."""
        started = time.perf_counter()
        try:
            async def body() -> bytes:
                return await read_limited(request, settings.body_limit)

            status, content = await _messages(request.headers.get("authorization", ""), body)
            return Response(content, status_code=status, media_type="application/json")
        finally:
            metrics.answer_seconds.observe(time.perf_counter() - started)

    async def _messages(authorization: str,
                        read_body: Callable[[], Awaitable[bytes]]) -> tuple[int, bytes]:
        """CleverTap's messaging endpoint: the answer's status and JSON body."""
        from ctwa.bridge.state import StateUnavailable

        if not authorized_header(authorization):
            metrics.refused.labels("2000").inc()
            return _failure_bytes(2000, "invalid credentials: Basic auth with the bridge's "
                                  "username and CTWA_BRIDGE_PASSWORD", 401)
        try:
            raw = await read_body()
        except BodyTooLarge:
            metrics.refused.labels("2004").inc()
            return _failure_bytes(2004, f"the body is over {settings.body_limit} bytes", 413)
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            metrics.refused.labels("2004").inc()
            try:
                json.loads(raw)
                where = ""
            except (ValueError, UnicodeDecodeError) as exc:  # for its line and column
                where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(
                    exc, json.JSONDecodeError) else ""
            return _failure_bytes(2004, f"the body is not JSON{where}", 400)
        try:
            payload = read_payload(doc)
            if payload.kind == "validation":
                return 200, SUCCESS  # never forwarded
            template = None
            if payload.kind == "template":
                template = await bridge.template(payload.model.template.namespace,
                                                 payload.model.template.languageCode)
                if template is None and bridge.last_sync is None and bridge.sync_error:
                    # not "unknown template": this bridge could not ask Meta yet
                    raise Refusal(2004, "the bridge could not sync the templates from Meta "
                                  f"yet ({bridge.sync_error})")
                try:
                    check_against_template(payload.model, template)
                except TemplateMismatch as exc:
                    raise Refusal(2001, str(exc)) from None
            # Meta's own model checks the translated request when it is sent (a refusal is
            # a failed DLR 1001 naming Meta's objection): checking it here too would cost
            # 0.13 ms a request, a fifth of what 1500 in flight leave for each answer
            assert payload.msg_id is not None
            queued = await bridge.state.enqueue_send(payload.msg_id, payload.kind, doc)
        except Refusal as refusal:
            metrics.refused.labels(str(refusal.code)).inc()
            return _failure_bytes(refusal.code, refusal.message)
        except StateUnavailable as exc:
            metrics.refused.labels("2004").inc()
            unavailable.error("POST /messages: the state is unavailable: %s", exc)
            return _failure_bytes(2004, "the bridge cannot store the message now; try again",
                                  503)
        log.debug("POST /messages: %s %s accepted", payload.kind, payload.msg_id)
        if queued.duplicate:
            log.info("msgId %s was accepted before; not queued again", payload.msg_id)
        else:
            metrics.accepted.labels(payload.kind).inc()
            bridge.wake("sends")
        return 200, SUCCESS

    async def webhook_verify(request: Request) -> Response:
        params = request.query_params
        token = params.get("hub.verify_token", "")
        if params.get("hub.mode") == "subscribe" and secrets.verify_token and \
                hmac.compare_digest(token.encode(), secrets.verify_token.encode()):
            return PlainTextResponse(params.get("hub.challenge", ""))
        return PlainTextResponse("verify token mismatch", status_code=403)

    async def webhook(request: Request) -> Response:
        """POST /webhook through Starlette (the ASGI fast path below takes it first)."""
        async def body() -> bytes:
            return await read_limited(request, settings.body_limit * 4)

        status, content = await _webhook(request.headers.get(SIGNATURE_HEADER), body)
        return PlainTextResponse(content, status_code=status)

    async def _webhook(signature: str | None,
                       read_body: Callable[[], Awaitable[bytes]]) -> tuple[int, bytes]:
        """Meta's signed events: stored durably, then 200."""
        from ctwa.bridge.state import StateUnavailable

        try:
            raw = await read_body()
        except BodyTooLarge:
            return 413, b"body too large"
        if not signature_ok(secrets.app_secret, raw, signature):
            metrics.signature_failures.inc()
            log.warning("POST /webhook: %s missing or wrong; refused",
                        SIGNATURE_HEADER)
            return 401, b"signature missing or wrong"
        try:
            await bridge.state.store_webhook(raw)
        except StateUnavailable as exc:
            unavailable.error("POST /webhook: the state is unavailable: %s", exc)
            return 503, b"try again"  # Meta retries
        metrics.webhooks.inc()
        bridge.wake("webhooks")
        return 200, b"ok"

    async def templates(request: Request) -> Response:
        if not authorized(request):
            return JSONResponse({"error": {"message": "invalid credentials"}}, status_code=401)
        try:
            limit = int(request.query_params.get("limit") or DEFAULT_PAGE)
        except ValueError:
            return JSONResponse({"error": {"message": "limit must be a number"}},
                                status_code=400)
        limit = max(1, min(limit, MAX_PAGE))
        after = (request.query_params.get("after") or "").strip('"') or None
        page = await bridge.state.list_templates(limit, after)
        paging: dict[str, Any] = {"cursors": {"before": "", "after": page.after or ""}}
        if page.after:
            base = str(request.url.replace(query=""))
            paging["next"] = f"{base}?{urlencode({'limit': limit, 'after': page.after})}"
        return JSONResponse({"data": page.templates, "paging": paging})

    async def media(request: Request) -> Response:
        from ctwa.bridge.config import link_ok

        media_id = request.path_params["media_id"]
        why = link_ok(secrets.link_key(), media_id, request.query_params.get("e"),
                      request.query_params.get("s"))
        if why:
            return PlainTextResponse(why, status_code=403)
        return await bridge.media(media_id)

    async def click(request: Request) -> Response:
        token = request.path_params["token"]
        found = await bridge.state.get_click(token)
        if found is None:
            return PlainTextResponse("unknown link", status_code=404)
        agent = safe_text(request.headers.get("user-agent", ""), USER_AGENT_MAX)
        entry: dict[str, Any] = {"msgId": found.msg_id, "status": "clicked",
                                 "timestamp": str(int(time.time())),
                                 "url": found.destination}
        if agent:
            entry["userAgent"] = agent
        from ctwa.bridge.state import RANK

        await bridge.state.enqueue_callback(found.msg_id, "status",
                                            {"payloadVersion": "0.1", "statuses": [entry]},
                                            RANK["clicked"], dedupe=False)
        metrics.clicks.inc()
        bridge.wake("callbacks")
        return RedirectResponse(found.destination, status_code=302)

    async def health(request: Request) -> Response:
        report = await bridge.health()
        return JSONResponse(report, status_code=200 if report["ready"] else 503)

    async def metrics_route(request: Request) -> Response:
        await bridge.refresh_depths()
        from ctwa.bridge.metrics import CONTENT_TYPE

        return Response(metrics.render(), media_type=CONTENT_TYPE)

    async def gone(request: Request, exc: Exception) -> Response:
        return Response(status_code=400)

    async def state_failed(request: Request, exc: Exception) -> Response:
        log.error("%s %s: the state failed: %s", request.method, request.url.path, exc)
        return PlainTextResponse("the bridge's state is unavailable; try again",
                                 status_code=503)

    routes = [
        Route("/messages", messages, methods=["POST"]),
        Route("/webhook", webhook_verify, methods=["GET"]),
        Route("/webhook", webhook, methods=["POST"]),
        Route("/templates", templates, methods=["GET"]),
        Route("/media/{media_id}", media, methods=["GET"]),
        Route("/c/{token}", click, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", metrics_route, methods=["GET"]),
    ]
    from ctwa.bridge.state import StateError

    app = Starlette(routes=routes, lifespan=bridge.lifespan,
                    exception_handlers={ClientDisconnect: gone, StateError: state_failed})
    JSON, TEXT = b"application/json", b"text/plain; charset=utf-8"
    signature_header = SIGNATURE_HEADER.lower().encode()

    async def fast(scope: Any, receive: Any, send: Any, limit: int,
                   handle: Callable[[dict[bytes, bytes], Callable[[], Awaitable[bytes]]],
                                    Awaitable[tuple[int, bytes, bytes]]]) -> None:
        """A route straight on ASGI: the two that CleverTap and Meta call at campaign rate
        (POST /messages, and POST /webhook twice a message) skip Starlette's request object,
        router and middleware layers (15% of the accept path's time under load, measured with
        py-spy); the answers are the same."""
        wanted = (b"authorization", b"content-length", signature_header)
        headers: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:  # the first of each, as Starlette reads them
            if name in wanted and name not in headers:
                headers[name] = value
        declared = headers.get(b"content-length")

        async def body() -> bytes:
            if declared is not None and declared.isdigit() and (
                    len(declared) > 9 or int(declared) > limit):
                raise BodyTooLarge
            chunks: list[bytes] = []
            size = 0
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientDisconnect
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return chunks[0] if len(chunks) == 1 else b"".join(chunks)

        try:
            status, content, kind = await handle(headers, body)
        except ClientDisconnect:
            status, content, kind = 400, b"", TEXT
        except StateError as exc:  # as the app's handler answers it
            log.error("POST %s: the state failed: %s", scope["path"], exc)
            status, content, kind = 503, b"the bridge's state is unavailable; try again", TEXT
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", kind),
                                (b"content-length", str(len(content)).encode())]})
        await send({"type": "http.response.body", "body": content})

    async def raw_messages(headers: dict[bytes, bytes],
                           body: Callable[[], Awaitable[bytes]]) -> tuple[int, bytes, bytes]:
        started = time.perf_counter()
        try:
            status, content = await _messages(
                headers.get(b"authorization", b"").decode("latin-1"), body)
            return status, content, JSON
        finally:
            metrics.answer_seconds.observe(time.perf_counter() - started)

    async def raw_webhook(headers: dict[bytes, bytes],
                          body: Callable[[], Awaitable[bytes]]) -> tuple[int, bytes, bytes]:
        signature = headers.get(signature_header)
        status, content = await _webhook(
            signature.decode("latin-1") if signature is not None else None, body)
        return status, content, TEXT

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        post = scope["type"] == "http" and scope["method"] == "POST"
        if post and scope["path"] == "/messages":
            await fast(scope, receive, send, settings.body_limit, raw_messages)
        elif post and scope["path"] == "/webhook":
            await fast(scope, receive, send, settings.body_limit * 4, raw_webhook)
        else:
            await app(scope, receive, send)

    return asgi
