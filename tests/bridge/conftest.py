"""The bridge between a small Meta Cloud API stand-in and a recording CleverTap, all real
servers on 127.0.0.1 (the end-to-end tests use the sandbox's strict Meta mock instead)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ctwa.bridge.config import BridgeSecrets, BridgeSettings
from ctwa.bridge.run import BridgeThread
from ctwa.bridge.webhooks import sign
from tests.conftest import EXAMPLES, LiveServer

PASSWORD = "pw-CANARY-7f3a"
TOKEN = "tok-CANARY-91bd"
APP_SECRET = "app-secret-for-tests"
VERIFY = "verify-me"
PNID = "106540352242922"
WABA_ID = "102290129340398"
TO = "919876543210"


def meta_error(code: int, message: str, status: int = 400) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"message": message, "type": "OAuthException", "code": code,
                              "fbtrace_id": "AbCdEf"}}


@dataclass
class FakeMeta:
    """Meta's /messages, message_templates and media as documented; ``answers`` decides
    per request (a callable given the body, returning (status, JSON or bytes))."""

    templates: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    auth: list[str] = field(default_factory=list)
    answers: Callable[[dict[str, Any]], tuple[int, Any]] | None = None
    delay: float = 0.0
    url: str = ""
    count: int = 0
    times: list[float] = field(default_factory=list)  # monotonic, at each send's arrival

    def app(self) -> Starlette:
        async def messages(request: Request) -> Response:
            self.times.append(time.monotonic())
            self.auth.append(request.headers.get("authorization", ""))
            body = json.loads(await request.body())
            self.requests.append(body)
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.answers is not None:
                status, answer = self.answers(body)
                if isinstance(answer, bytes):
                    return Response(answer, status_code=status, media_type="text/html")
                return JSONResponse(answer, status_code=status)
            self.count += 1
            return JSONResponse({"messaging_product": "whatsapp",
                                 "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                                 "messages": [{"id": f"wamid.T{self.count}"}]})

        async def templates(request: Request) -> Response:
            limit = int(request.query_params.get("limit", "25"))
            start = int(request.query_params.get("after") or 0)
            page = self.templates[start:start + limit]
            paging: dict[str, Any] = {"cursors": {"before": str(start),
                                                  "after": str(start + limit)}}
            if start + limit < len(self.templates):
                paging["next"] = (f"{self.url}/{WABA_ID}/message_templates?limit={limit}"
                                  f"&after={start + limit}")
            return JSONResponse({"data": page, "paging": paging})

        async def media(request: Request) -> Response:
            media_id = request.path_params["media_id"]
            if request.headers.get("authorization") != f"Bearer {TOKEN}":
                return JSONResponse({"error": {"code": 190}}, status_code=401)
            return JSONResponse({"url": f"{self.url}/download/{media_id}",
                                 "mime_type": "image/jpeg", "id": media_id})

        async def download(request: Request) -> Response:
            if request.headers.get("authorization") != f"Bearer {TOKEN}":
                return PlainTextResponse("no", status_code=401)
            return Response(b"JPEG-" + request.path_params["media_id"].encode(),
                            media_type="image/jpeg")

        return Starlette(routes=[
            Route(f"/{PNID}/messages", messages, methods=["POST"]),
            Route(f"/{WABA_ID}/message_templates", templates, methods=["GET"]),
            Route("/download/{media_id}", download, methods=["GET"]),
            Route("/{media_id}", media, methods=["GET"]),
        ])

    def webhook(self, statuses: list[dict[str, Any]] | None = None,
                messages: list[dict[str, Any]] | None = None) -> bytes:
        value: dict[str, Any] = {"messaging_product": "whatsapp", "metadata": {
            "display_phone_number": "15550001111", "phone_number_id": PNID}}
        if statuses:
            value["statuses"] = statuses
        if messages:
            value["messages"] = messages
        return json.dumps({"object": "whatsapp_business_account", "entry": [
            {"id": WABA_ID, "changes": [{"field": "messages", "value": value}]}]}).encode()


@dataclass
class FakeCleverTap:
    """CleverTap's status and inbound callback URLs, recording; ``down`` answers 503."""

    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    down: bool = False
    refused: int = 0
    url: str = ""

    def app(self) -> Starlette:
        async def callback(request: Request) -> Response:
            if self.down:
                self.refused += 1
                return PlainTextResponse("down", status_code=503)
            self.received.append((request.path_params["route"],
                                  json.loads(await request.body())))
            return JSONResponse({"status": "success"})

        return Starlette(routes=[Route("/{route}", callback, methods=["POST"])])

    def statuses(self) -> list[tuple[str, str]]:
        return [(s["msgId"], s["status"]) for route, body in self.received
                if route == "status" for s in body["statuses"]]


def wait_until(check: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what or check}")


@dataclass
class Harness:
    meta: FakeMeta
    clevertap: FakeCleverTap
    running: BridgeThread
    client: httpx.Client

    @property
    def url(self) -> str:
        return self.running.url

    def post(self, payload: Any, auth: tuple[str, str] | None = ("clevertap", PASSWORD),
             **kwargs: Any) -> httpx.Response:
        if "content" not in kwargs:
            kwargs["json"] = payload
        return self.client.post(f"{self.url}/messages", auth=auth, **kwargs)

    def webhook(self, body: bytes, signature: str | None = "good") -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        if signature == "good":
            headers["X-Hub-Signature-256"] = sign(APP_SECRET, body)
        elif signature:
            headers["X-Hub-Signature-256"] = signature
        return self.client.post(f"{self.url}/webhook", content=body, headers=headers)


def example_templates() -> list[dict[str, Any]]:
    out = []
    for path in sorted((EXAMPLES / "templates").glob("*.json")):
        doc = json.loads(path.read_text())
        out += doc if isinstance(doc, list) else [doc]
    return out


def settings_for(meta: FakeMeta, clevertap: FakeCleverTap, state: Path,
                 **overrides: Any) -> BridgeSettings:
    settings = BridgeSettings(
        phone_number_id=PNID, waba_id=WABA_ID, status_url=f"{clevertap.url}/status",
        inbound_url=f"{clevertap.url}/inbound", username="clevertap", listen="127.0.0.1:0",
        graph_url=meta.url, state=str(state), mps=200.0, callback_max_backoff=0.5,
        unmapped_wait=2.0)
    for key, value in overrides.items():
        setattr(settings, key, value)
    return settings


SECRETS = BridgeSecrets(PASSWORD, TOKEN, APP_SECRET, VERIFY)


@pytest.fixture
def harness(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Harness]:
    overrides = getattr(request, "param", {}) or {}
    meta = FakeMeta(templates=example_templates())
    clevertap = FakeCleverTap()
    with LiveServer(meta.app()) as meta_server, LiveServer(clevertap.app()) as ct_server:
        meta.url, clevertap.url = meta_server.url, ct_server.url
        settings = settings_for(meta, clevertap, tmp_path / "bridge.sqlite3", **overrides)
        with BridgeThread(settings, SECRETS) as running, httpx.Client(timeout=10) as client:
            wait_until(lambda: running.bridge.last_sync, what="the template sync")
            yield Harness(meta, clevertap, running, client)
