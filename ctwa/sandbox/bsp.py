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
from starlette.responses import JSONResponse
from starlette.routing import Route

from ctwa.wire.callbacks import CALLBACK_VERSION
from ctwa.wire.codes import CALLBACK_ERRORS, MESSAGING_ERRORS
from ctwa.wire.kinds import detect_kind
from ctwa.wire.lint import lint_document
from ctwa.wire.outbound import VALIDATION_NAMESPACE


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
            "disconnected": self.disconnects.count if self.disconnects is not None else 0,
            "last_payload": state.last_payload})

    async def messages(self, request: Request) -> JSONResponse:
        state = self.state
        state.received += 1
        if state.in_flight >= self.settings.max_concurrency:
            state.throttled += 1
            return JSONResponse({"message": "Too many requests to process"}, status_code=429)
        state.in_flight += 1
        try:
            low, high = self.settings.latency
            if high > 0:
                await asyncio.sleep(self.random.uniform(low, high))
            return self._answer(request, await request.body())
        finally:
            state.in_flight -= 1

    def _refuse(self, code: int, message: str | None = None) -> JSONResponse:
        self.state.refused[code] = self.state.refused.get(code, 0) + 1
        return _failure(code, message)

    def _answer(self, request: Request, body: bytes) -> JSONResponse:
        given = request.headers.get("authorization", "")
        if self._expected and not hmac.compare_digest(given.encode(), self._expected.encode()):
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
        if not is_validation and self.settings.status_url:
            self._spawn(self._callbacks(payload.msgId, digits, payload.wabaNumber))
        return JSONResponse({"status": "success"})

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, url: str, body: dict[str, Any]) -> None:
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

    async def _callbacks(self, msg_id: str, number: str, waba: str) -> None:
        """sent, then delivered and read (or failed, for numbers matching a rule)."""
        url = self.settings.status_url
        assert url is not None
        failure = next((code for suffix, code in self.settings.dlr_failures.items()
                        if number.endswith(suffix)), None)
        steps = ["sent", "failed"] if failure else ["sent", "delivered", "read"]
        delays = self.settings.dlr_delays
        previous = 0.0
        for step, delay in zip(steps, delays, strict=False):
            await asyncio.sleep(max(0.0, delay - previous))
            previous = delay
            entry: dict[str, Any] = {"msgId": msg_id, "status": step,
                                     "timestamp": str(int(time.time()))}
            if step == "failed" and failure is not None:
                entry["error"] = {"code": failure, "title": CALLBACK_ERRORS[failure]}
            await self._post(url, {"payloadVersion": CALLBACK_VERSION, "statuses": [entry]})
        if (failure is None and self.settings.inbound_url
                and self.random.random() < self.settings.reply_rate):
            await self._post(self.settings.inbound_url, {
                "payloadVersion": CALLBACK_VERSION, "from": number, "wabaNumber": waba,
                "timestamp": str(int(time.time())), "type": "text", "context": {"id": msg_id},
                "text": {"body": "Yes, please!"}})

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for pool in self._pools.values():
            pool.close()
